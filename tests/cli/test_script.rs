//! `./test`, the one test command: it installs the Debian packages the tests need when it
//! can, says how to get them when it cannot, then runs `cargo test --locked` with its
//! arguments twice: against SQLite, then inside `pg_virtualenv` (a throwaway PostgreSQL
//! cluster) with `AUTHEONA_TEST_STORE=postgres`. Run here on a made-up machine: fake
//! `dpkg-query`, `id`, `sudo`, `apt-get`, `pg_virtualenv` and `cargo` come first on PATH, so
//! nothing is installed, no cluster made and no tests run; the fakes that would change
//! something write their command lines to a log instead.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use tempfile::TempDir;

use crate::common::stderr;

/// Who runs `./test`.
enum User {
    Root,
    /// Not root; `sudo -n` works (true) or asks for a password (false).
    Other {
        passwordless_sudo: bool,
    },
}

struct Machine {
    dir: TempDir,
    missing: &'static [&'static str],
    /// How `cargo` exits in the SQLite pass, and in the PostgreSQL pass.
    cargo_status: u8,
    postgres_cargo_status: u8,
    /// `CI=true` in the environment.
    ci: bool,
    /// PATH holds only the fakes and what the script itself needs, nothing of this machine's
    /// (no dpkg-query, or no pg_virtualenv, when that fake was removed).
    only_fakes: bool,
}

impl Machine {
    fn new(user: User, missing: &'static [&'static str]) -> Machine {
        let dir = tempfile::tempdir().expect("temp dir");
        let (uid, sudo) = match user {
            User::Root => (0, true),
            User::Other { passwordless_sudo } => (1000, passwordless_sudo),
        };
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let fake = |name: &str, body: &str| {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("fake");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("mode");
        };
        // dpkg-query -W -f=FORMAT PACKAGE: a package named in MISSING is not installed.
        fake(
            "dpkg-query",
            r#"for package; do :; done
case " $MISSING " in *" $package "*) echo "no packages found matching $package" >&2; exit 1;; esac
printf installed"#,
        );
        fake("id", &format!(r#"[ "$1" = -u ] && echo {uid}"#));
        fake(
            "sudo",
            &if sudo {
                r#"echo "sudo $*" >> "$LOG"; [ "$1" = -n ] && shift; exec "$@""#.to_owned()
            } else {
                r#"echo "sudo $*" >> "$LOG"; echo "sudo: a password is required" >&2; exit 1"#
                    .to_owned()
            },
        );
        fake(
            "apt-get",
            r#"echo "apt-get $* (DEBIAN_FRONTEND=$DEBIAN_FRONTEND)" >> "$LOG""#,
        );
        // pg_virtualenv [-t] [-o GUC=VALUE] COMMAND...: runs COMMAND with the variables that
        // lead to its cluster, and exits as it does.
        fake(
            "pg_virtualenv",
            r#"echo "pg_virtualenv $*" >> "$LOG"
while getopts to: opt; do :; done
shift $((OPTIND - 1))
PGHOST=localhost PGPORT=5433 PGUSER=postgres PGPASSWORD=secret "$@""#,
        );
        // In the PostgreSQL pass: the store it was given and whether a server is there.
        fake(
            "cargo",
            r#"if [ "$AUTHEONA_TEST_STORE" ]; then
    echo "cargo $* (AUTHEONA_TEST_STORE=$AUTHEONA_TEST_STORE, PGPORT=$PGPORT)" >> "$LOG"
    exit "$POSTGRES_CARGO_STATUS"
fi
echo "cargo $*" >> "$LOG"; exit "$CARGO_STATUS""#,
        );
        Machine {
            dir,
            missing,
            cargo_status: 0,
            postgres_cargo_status: 0,
            ci: false,
            only_fakes: false,
        }
    }

    /// PATH with the fakes and, of this machine's programs, only the bash, dirname and env the
    /// script runs with.
    fn only_fakes(mut self) -> Machine {
        let bin = self.dir.path().join("bin");
        for tool in ["bash", "dirname", "env"] {
            let real = which(tool);
            std::os::unix::fs::symlink(real, bin.join(tool)).expect("link");
        }
        self.only_fakes = true;
        self
    }

    /// A machine without pg_virtualenv (postgresql-common), whatever dpkg says.
    fn without_pg_virtualenv(self) -> Machine {
        std::fs::remove_file(self.dir.path().join("bin/pg_virtualenv")).expect("fake");
        self.only_fakes()
    }

    /// A machine without dpkg: PATH has the fakes but dpkg-query, and the bash, dirname and
    /// env the script runs with.
    fn not_debian(self) -> Machine {
        std::fs::remove_file(self.dir.path().join("bin/dpkg-query")).expect("fake dpkg-query");
        self.only_fakes()
    }

    /// `./test ARGS` with the fakes first on PATH and nothing else from this environment.
    fn run(&self, args: &[&str]) -> Assert {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test");
        let bin = self.dir.path().join("bin");
        let path = if self.only_fakes {
            bin.display().to_string()
        } else {
            format!("{}:/usr/bin:/bin", bin.display())
        };
        let mut cmd = Command::new(script);
        cmd.args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("LOG", self.log_path())
            .env("MISSING", self.missing.join(" "))
            .env("CARGO_STATUS", self.cargo_status.to_string())
            .env(
                "POSTGRES_CARGO_STATUS",
                self.postgres_cargo_status.to_string(),
            );
        if self.ci {
            cmd.env("CI", "true");
        }
        cmd.assert()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The command lines of the fakes that would have changed something, in order.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// Where `tool` is on this machine's own PATH.
fn which(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

#[test]
fn missing_packages_it_cannot_install_are_named_with_the_command_to_get_them() {
    let machine = Machine::new(
        User::Other {
            passwordless_sudo: false,
        },
        &["zsh", "fish"],
    );
    let assert = machine.run(&["scan::"]).code(2).stdout("");
    assert_eq!(
        stderr(&assert),
        "./test: missing Debian packages: zsh fish; get them with: \
         sudo apt-get update && sudo apt-get install -y zsh fish\n"
    );
    assert_eq!(machine.log(), "sudo -n true\n", "installed or ran tests");
}

#[test]
fn as_root_it_installs_what_is_missing_then_runs_the_tests() {
    let machine = Machine::new(User::Root, &["fish"]);
    machine.run(&["scan::"]).success();
    assert_eq!(
        machine.log(),
        "apt-get update -qq (DEBIAN_FRONTEND=noninteractive)\n\
         apt-get install -y -qq --no-install-recommends fish (DEBIAN_FRONTEND=noninteractive)\n\
         cargo test --locked scan::\n\
         pg_virtualenv -t -o max_connections=300 env AUTHEONA_TEST_STORE=postgres cargo test \
         --locked scan::\n\
         cargo test --locked scan:: (AUTHEONA_TEST_STORE=postgres, PGPORT=5433)\n"
    );
}

#[test]
fn with_passwordless_sudo_it_installs_through_sudo() {
    let machine = Machine::new(
        User::Other {
            passwordless_sudo: true,
        },
        &["faketime", "man-db"],
    );
    machine.run(&[]).success();
    assert_eq!(
        machine.log(),
        "sudo -n true\n\
         sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq\n\
         apt-get update -qq (DEBIAN_FRONTEND=noninteractive)\n\
         sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends faketime man-db\n\
         apt-get install -y -qq --no-install-recommends faketime man-db \
         (DEBIAN_FRONTEND=noninteractive)\n\
         cargo test --locked\n\
         pg_virtualenv -t -o max_connections=300 env AUTHEONA_TEST_STORE=postgres cargo test \
         --locked\n\
         cargo test --locked (AUTHEONA_TEST_STORE=postgres, PGPORT=5433)\n"
    );
}

#[test]
fn with_everything_installed_it_only_runs_the_tests_and_exits_as_they_do() {
    let mut machine = Machine::new(
        User::Other {
            passwordless_sudo: false,
        },
        &[],
    );
    machine.cargo_status = 101;
    machine
        .run(&["--no-run", "help::", "--", "--exact"])
        .code(101)
        .stderr("");
    assert_eq!(
        machine.log(),
        "cargo test --locked --no-run help:: -- --exact\n"
    );
}

#[test]
fn without_dpkg_it_names_the_packages_and_runs_the_tests() {
    let machine = Machine::new(User::Root, &["fish"]).not_debian();
    let assert = machine.run(&["help::"]).success();
    assert_eq!(
        stderr(&assert),
        "./test: not Debian (no dpkg-query); the tests need: build-essential faketime bash \
         zsh fish mandoc man-db git tzdata sqlite3 postgresql postgresql-common pgbouncer \
         openssl nginx-light caddy systemd\n"
    );
    assert_eq!(
        machine.log(),
        "cargo test --locked help::\n\
         pg_virtualenv -t -o max_connections=300 env AUTHEONA_TEST_STORE=postgres cargo test \
         --locked help::\n\
         cargo test --locked help:: (AUTHEONA_TEST_STORE=postgres, PGPORT=5433)\n"
    );
}

/// The log of a run whose two passes ran `cargo test --locked ARGS`.
fn both_passes(args: &str) -> String {
    format!(
        "cargo test --locked {args}\n\
         pg_virtualenv -t -o max_connections=300 env AUTHEONA_TEST_STORE=postgres cargo test \
         --locked {args}\n\
         cargo test --locked {args} (AUTHEONA_TEST_STORE=postgres, PGPORT=5433)\n"
    )
}

fn installed(ci: bool) -> Machine {
    let mut machine = Machine::new(
        User::Other {
            passwordless_sudo: false,
        },
        &[],
    );
    machine.ci = ci;
    machine
}

#[test]
fn the_postgresql_pass_runs_the_same_arguments_in_a_throwaway_cluster() {
    let machine = installed(false);
    machine
        .run(&["scan::", "--", "--test-threads", "1"])
        .success()
        .stdout("")
        .stderr("");
    assert_eq!(machine.log(), both_passes("scan:: -- --test-threads 1"));
}

#[test]
fn no_run_builds_once() {
    let machine = installed(false);
    machine.run(&["--no-run"]).success();
    assert_eq!(machine.log(), "cargo test --locked --no-run\n");
    // After `--`, it is an argument of the test binary: both passes run.
    let machine = installed(false);
    machine.run(&["--", "--no-run"]).success();
    assert_eq!(machine.log(), both_passes("-- --no-run"));
}

#[test]
fn a_failing_sqlite_pass_fails_at_once() {
    let mut machine = installed(false);
    machine.cargo_status = 101;
    machine.run(&["help::"]).code(101);
    assert_eq!(machine.log(), "cargo test --locked help::\n");
}

#[test]
fn a_failing_postgresql_pass_fails_the_test_command() {
    let mut machine = installed(true);
    machine.postgres_cargo_status = 101;
    machine.run(&["help::"]).code(101);
    assert_eq!(machine.log(), both_passes("help::"));
}

/// Without pg_virtualenv the PostgreSQL pass is an error, never a skip: under CI and outside.
#[test]
fn without_postgresql_the_second_pass_is_an_error_saying_how_to_get_it() {
    for ci in [true, false] {
        let machine = installed(ci).without_pg_virtualenv();
        let assert = machine.run(&["help::"]).code(2).stdout("");
        assert_eq!(
            stderr(&assert),
            "./test: the PostgreSQL pass needs a PostgreSQL server and pg_virtualenv (Debian \
             packages postgresql and postgresql-common); get them with: sudo apt-get install \
             -y postgresql postgresql-common\n",
            "CI {ci}"
        );
        assert_eq!(machine.log(), "cargo test --locked help::\n", "CI {ci}");
    }
}
