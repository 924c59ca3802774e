//! The tests' own environment: every way they build a command starts from an empty
//! environment, so what the developer's shell exports never reaches autheona.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// What a developer's shell may well export, and what autheona (or a library it uses) would
/// read: git's ignore files through XDG_CONFIG_HOME and GIT_*, table widths through COLUMNS,
/// autheona's own variables, and the libpq variables a PostgreSQL store is completed from
/// (but those that lead to the test server, which the PostgreSQL pass passes on).
const SHELL_VARS: &[(&str, &str)] = &[
    ("XDG_CONFIG_HOME", "/nonexistent/xdg-config"),
    ("XDG_DATA_HOME", "/nonexistent/xdg-data"),
    ("GIT_DIR", "/nonexistent/git-dir"),
    ("GIT_CONFIG_GLOBAL", "/nonexistent/gitconfig"),
    ("COLUMNS", "7"),
    ("AUTHEONA_DB", "/nonexistent/autheona.db"),
    ("AUTHEONA_PROJECT", "from-the-shell"),
    ("AUTHEONA_TOKEN", "from-the-shell"),
    ("CLICOLOR_FORCE", "1"),
    ("PGDATABASE", "from-the-shell"),
    ("PGSSLMODE", "verify-full"),
    ("PGSSLROOTCERT", "/nonexistent/root.crt"),
    ("PGPASSFILE", "/nonexistent/pgpass"),
    ("PGSERVICE", "from-the-shell"),
    ("PGAPPNAME", "from-the-shell"),
    ("PGCONNECT_TIMEOUT", "1"),
];

/// The environment of autheona as `cmd` starts it: read from /proc while `verify` waits for
/// its token on stdin (it reads stdin before anything else), then ended by closing stdin.
fn environment_of(mut cmd: Command) -> BTreeMap<String, OsString> {
    let mut child = cmd
        .arg("verify")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn autheona");
    // spawn may return while the kernel is still laying out the new program's memory (or,
    // through setpriv, while setpriv execs autheona): until then /proc shows no environment,
    // or part of one (the kernel copies the strings last first). Every command here has
    // HOME, and the environment of a process that is waiting on stdin no longer changes:
    // read until it holds HOME and two reads agree.
    let path = format!("/proc/{}/environ", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Vec::new();
    let environ = loop {
        let environ = std::fs::read(&path).expect("read environ");
        let whole = environ
            .split(|&b| b == 0)
            .any(|entry| entry.starts_with(b"HOME="));
        if (whole && environ == last) || Instant::now() > deadline {
            break environ;
        }
        last = environ;
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.stdin.take().unwrap().write_all(b"\n");
    child.wait().expect("wait for autheona");
    environ
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let at = entry.iter().position(|&b| b == b'=').expect("NAME=value");
            let name = String::from_utf8(entry[..at].to_vec()).expect("a UTF-8 name");
            (name, OsString::from_vec(entry[at + 1..].to_vec()))
        })
        .collect()
}

/// The names a command's environment should hold: [`BASE_VARS`] as far as this process has
/// the ones passed through, and `extra`; with the test's store (`AUTHEONA_DB` in `extra`), in
/// the PostgreSQL pass, the variables that lead to the server.
fn expected(extra: &[&str]) -> Vec<String> {
    let server: &[&str] = if extra.contains(&"AUTHEONA_DB") && backend() == Backend::Postgres {
        crate::pg::PG_VARS
    } else {
        &[]
    };
    let mut names: Vec<String> = BASE_VARS
        .iter()
        .filter(|var| {
            !matches!(**var, "PATH" | "LLVM_PROFILE_FILE") || std::env::var_os(var).is_some()
        })
        .chain(extra)
        .chain(server)
        .map(|var| (*var).to_owned())
        .collect();
    names.sort();
    names
}

/// Run by itself and by [`the_developers_shell_does_not_reach_the_binary`], which runs it with
/// [`SHELL_VARS`] set.
#[test]
fn only_the_tests_variables_reach_the_binary() {
    let env = TestEnv::new();
    let builders: [(&str, Command, &[&str]); 4] = [
        ("TestEnv::std_cmd", env.std_cmd(), &["AUTHEONA_DB"]),
        ("TestEnv::bare_std_cmd", env.bare_std_cmd(), &[]),
        (
            "unprivileged(std_cmd)",
            unprivileged(&env.std_cmd()),
            &["AUTHEONA_DB"],
        ),
        (
            "with_env_of(BIN, std_cmd)",
            with_env_of(BIN, &env.std_cmd()),
            &["AUTHEONA_DB"],
        ),
    ];
    for (what, cmd, extra) in builders {
        let seen = environment_of(cmd);
        let names: Vec<String> = seen.keys().cloned().collect();
        assert_eq!(
            names,
            expected(extra),
            "{what}: the variables autheona sees"
        );
        for (var, _) in SHELL_VARS {
            if *var != "AUTHEONA_DB" {
                assert!(!seen.contains_key(*var), "{what}: {var} reached autheona");
            }
        }
        if extra.contains(&"AUTHEONA_DB") {
            assert_eq!(seen["AUTHEONA_DB"], env.db_arg(), "{what}: AUTHEONA_DB");
            if backend() == Backend::Postgres {
                for var in crate::pg::PG_VARS {
                    assert_eq!(
                        Some(&seen[*var]),
                        std::env::var_os(var).as_ref(),
                        "{what}: {var}"
                    );
                }
            }
        }
        assert_eq!(
            seen["HOME"],
            env.dir().join("home").as_os_str(),
            "{what}: HOME"
        );
        assert_eq!(seen["TZ"], "UTC", "{what}: TZ");
    }
}

/// The test above, in a test process whose own environment has [`SHELL_VARS`] set, as a
/// developer's shell would (setting them in this process instead would race the other tests).
#[test]
fn the_developers_shell_does_not_reach_the_binary() {
    let mut inner = Command::new(std::env::current_exe().expect("the test binary"));
    inner
        .args([
            "--exact",
            "hermetic::only_the_tests_variables_reach_the_binary",
        ])
        .args(["--test-threads", "1"])
        .envs(SHELL_VARS.iter().copied());
    let out = inner.output().expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}
