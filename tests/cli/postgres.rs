//! What only the PostgreSQL store has: URLs and libpq's variables, passwords kept off the
//! command line, TLS modes, a server that is slow, refuses or goes away, the schema's first
//! creation and its guards, PgBouncer, the clocks of host and server, and commits that wait
//! for the disk. Each test runs when a server is there ([`pg::available`]: under CI it must
//! be), against the real binary.
//!
//! Most use the test server (`./test`'s `pg_virtualenv` cluster), each in a database of its
//! own; those that reconfigure or restart a server start one of their own ([`server`]).

mod bouncer;
mod clock;
mod durability;
mod failure;
mod locks;
mod password;
mod prepared;
mod readme;
mod schema;
mod server;
mod tls;
mod url;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;
use tempfile::TempDir;

use crate::common::{self, HANG_GUARD, Run, created_token};
use crate::pg;

/// A test's own database on the test server, and a directory for its home and files.
pub struct PgEnv {
    dir: TempDir,
    pub db: String,
}

impl Drop for PgEnv {
    fn drop(&mut self) {
        pg::drop_database(&self.db);
    }
}

impl PgEnv {
    /// `None` when there is no server to test against (never under CI: see [`pg::available`]).
    pub fn new() -> Option<PgEnv> {
        if !pg::available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("home")).expect("home dir");
        Some(PgEnv {
            dir,
            db: pg::fresh_database(),
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The binary with an empty environment but for `HOME`, `TZ=UTC`, `NO_COLOR` and `PATH`
    /// (as `common`'s commands): no database, no `PG*` variable.
    pub fn bare(&self) -> Command {
        bare_command(&self.home(), self.dir())
    }

    /// [`PgEnv::bare`] with the test server's `PGHOST`, `PGPORT`, `PGUSER` and `PGPASSWORD`.
    pub fn with_server(&self) -> Command {
        let mut cmd = self.bare();
        for var in pg::PG_VARS {
            cmd.env(var, pg::var(var));
        }
        cmd
    }

    /// [`PgEnv::with_server`] with `AUTHEONA_DB` naming this test's database.
    pub fn std_cmd(&self) -> Command {
        let mut cmd = self.with_server();
        cmd.env("AUTHEONA_DB", pg::url(&self.db));
        cmd
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.std_cmd())
    }

    pub fn run(&self, args: &[&str]) -> Assert {
        self.cmd().args(args).assert()
    }

    /// A project `demo` with one token that never expires; the token.
    pub fn demo_token(&self) -> String {
        self.run(&["project", "create", "demo"]).success();
        created_token(
            &self
                .run(&["token", "create", "-p", "demo", "-e", "never"])
                .success(),
        )
    }

    /// Whether `verify` accepts the token; any answer but valid or not valid fails the test.
    pub fn verifies(&self, token: &str) -> bool {
        verifies_with(self.cmd(), token)
    }

    /// A connection to this test's database, as the server's superuser.
    pub fn sql(&self) -> postgres::Client {
        pg::connect(&self.db)
    }
}

/// The binary with an empty environment but for `HOME`, `TZ=UTC`, `NO_COLOR` and `PATH`.
pub fn bare_command(home: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(common::BIN);
    cmd.env_clear()
        .env("HOME", home)
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .current_dir(dir);
    for var in ["PATH", "LLVM_PROFILE_FILE"] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd
}

/// Whether `verify` (run as `cmd`) accepts the token.
pub fn verifies_with(mut cmd: assert_cmd::Command, token: &str) -> bool {
    let assert = cmd.arg("verify").write_stdin(format!("{token}\n")).assert();
    match assert.get_output().status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("verify exited {other:?}: {}", common::stderr(&assert)),
    }
}

/// The names of the projects in `db` (as the superuser sees them, not through autheona).
pub fn projects_in(client: &mut postgres::Client) -> Vec<String> {
    client
        .query("SELECT name FROM autheona.projects ORDER BY name", &[])
        .expect("read autheona.projects")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Whether database `db` of the server `client` is connected to has a schema `autheona`.
pub fn has_schema(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'autheona'",
            &[],
        )
        .expect("read pg_namespace")
        .get::<_, i64>(0)
        == 1
}

/// Asserts how a command that failed in the store ended: exit 3, nothing on stdout, and on
/// stderr one `error:` line containing `text`, then at most one `hint:` line (returned).
#[track_caller]
pub fn assert_store_error(run: &Run, text: &str) -> Option<String> {
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(3),
        "exit status; stdout {stdout:?}, stderr:\n{stderr}"
    );
    assert_eq!(stdout, "", "stdout of a failure; stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let shaped = (lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")))
        && lines[0].starts_with("error: ");
    assert!(
        shaped,
        "expected one error line and at most one hint:\n{stderr}"
    );
    assert!(lines[0].contains(text), "expected {text:?} in:\n{stderr}");
    lines.get(1).map(|hint| (*hint).to_owned())
}

/// A port nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

/// Runs `cmd` on a thread of its own, to its end or [`HANG_GUARD`].
pub fn in_background(cmd: Command) -> JoinHandle<Run> {
    std::thread::spawn(move || common::output(cmd))
}

/// Polls `found` every few milliseconds until it gives a value; panics when one of the
/// commands `running` ends first (saying `what` never happened), or after [`HANG_GUARD`].
pub fn wait_for<T>(
    what: &str,
    running: &[JoinHandle<Run>],
    mut found: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(
            !running.iter().any(JoinHandle::is_finished),
            "a command ended before {what}"
        );
        assert!(
            start.elapsed() < HANG_GUARD,
            "waited {HANG_GUARD:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A transaction of another session holding `LOCK TABLE autheona.tokens IN ACCESS EXCLUSIVE
/// MODE`, so that any command that reads or writes tokens waits; released by [`Locked::release`]
/// (or when dropped, with the connection).
pub struct Locked(postgres::Client);

impl Locked {
    pub fn take(client: postgres::Client) -> Locked {
        Locked::table(client, "autheona.tokens")
    }

    /// Holds `table` so instead (DDL, `VACUUM FULL` and `REINDEX` take such a lock).
    pub fn table(mut client: postgres::Client, table: &str) -> Locked {
        client
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
            ))
            .unwrap_or_else(|err| panic!("lock {table}: {err}"));
        Locked(client)
    }

    pub fn release(mut self) {
        self.0.batch_execute("COMMIT").expect("release the lock");
    }
}

/// The process id of the backend of database `db` (other than `admin`'s own) that waits for
/// a lock, once there is one: the command's, while `Locked` holds the table.
pub fn waiting_backend(admin: &mut postgres::Client, db: &str, running: &JoinHandle<Run>) -> i32 {
    wait_for(
        "its backend waited for the lock",
        std::slice::from_ref(running),
        || {
            admin
                .query_opt(
                    "SELECT pid FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
                    &[&db],
                )
                .expect("read pg_stat_activity")
                .map(|row| row.get(0))
        },
    )
}

/// The end of a command run with [`in_background`].
pub fn finished(running: JoinHandle<Run>) -> Run {
    running.join().expect("the command's thread")
}
