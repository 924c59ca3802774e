//! autheona through PgBouncer in transaction pooling mode, as a fleet would reach a shared
//! server: each transaction may run on another server connection, and two of them serve
//! every client, so nothing may rest on a session (a named prepared statement, a setting, a
//! session-level lock). PgBouncer (Debian's `pgbouncer`) is started here, in front of the
//! test server, on a free port.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::{as_server_user, server_user};
use super::{PgEnv, finished, free_port, in_background, verifies_with};
use crate::common::{HANG_GUARD, Process, Stdin, created_token, faketime_lib, id_of, output};
use crate::pg;

/// How many server connections PgBouncer keeps for all its clients.
const POOL_SIZE: usize = 2;

struct Bouncer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Bouncer {
    /// PgBouncer in front of the test server's database `db`, users and passwords from an
    /// auth_file holding the test server's. Each transaction goes to the next server
    /// connection in turn (`server_round_robin`), not to the one used last: what relied on its
    /// session would find another's at the next transaction, not by luck.
    fn start(db: &str) -> Bouncer {
        Bouncer::start_with(db, "")
    }

    /// As [`Bouncer::start`], with `settings` (lines of pgbouncer.ini) added to its own.
    fn start_with(db: &str, settings: &str) -> Bouncer {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let port = free_port();
        let file = |name: &str| -> PathBuf { dir.path().join(name) };
        std::fs::write(
            file("userlist.txt"),
            format!("\"{}\" \"{}\"\n", pg::var("PGUSER"), pg::var("PGPASSWORD")),
        )
        .expect("write the auth_file");
        std::fs::write(
            file("pgbouncer.ini"),
            format!(
                "[databases]
{db} = host={host} port={server_port} dbname={db}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {auth_file}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
server_round_robin = 1
max_client_conn = 100
server_tls_sslmode = disable
{settings}",
                host = pg::var("PGHOST"),
                server_port = pg::var("PGPORT"),
                auth_file = file("userlist.txt").display(),
            ),
        )
        .expect("write pgbouncer.ini");
        if let Some((uid, gid)) = server_user() {
            for name in ["", "userlist.txt", "pgbouncer.ini"] {
                std::os::unix::fs::chown(file(name), Some(uid), Some(gid)).expect("chown");
            }
        }
        let child = as_server_user(&PathBuf::from(pgbouncer()))
            .arg(file("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(file("pgbouncer.log")).expect("log"))
            .spawn()
            .expect("start pgbouncer");
        let mut bouncer = Bouncer { dir, port, child };
        bouncer.wait_until_ready(db);
        bouncer
    }

    fn wait_until_ready(&mut self, db: &str) {
        let start = Instant::now();
        loop {
            if self.connect(db).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pgbouncer exited ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < HANG_GUARD,
                "pgbouncer did not start:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Makes PgBouncer open all its [`POOL_SIZE`] server connections (it opens them as clients
    /// need them): as many transactions through it at once.
    fn open_every_server_connection(&self, db: &str) {
        let mut clients: Vec<postgres::Client> = (0..POOL_SIZE)
            .map(|_| self.connect(db).expect("connect to PgBouncer"))
            .collect();
        for client in &mut clients {
            client
                .batch_execute("BEGIN; SELECT 1")
                .expect("a transaction through PgBouncer");
        }
        for client in &mut clients {
            client.batch_execute("COMMIT").expect("commit");
        }
    }

    /// A client of database `db` through PgBouncer.
    fn connect(&self, db: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(&pg::var("PGUSER"))
            .password(pg::var("PGPASSWORD"))
            .dbname(db)
            .connect(postgres::NoTls)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// The binary, reaching `db` through PgBouncer.
    fn cmd(&self, env: &PgEnv, args: &[&str]) -> Command {
        let mut cmd = env.bare();
        cmd.env(
            "AUTHEONA_DB",
            format!(
                "postgres://{}@127.0.0.1:{}/{}",
                pg::var("PGUSER"),
                self.port,
                env.db
            ),
        )
        .env("PGPASSWORD", pg::var("PGPASSWORD"))
        .args(args);
        cmd
    }

    /// A token of `project` made through PgBouncer, expiring in 30 days.
    fn token(&self, env: &PgEnv, project: &str) -> String {
        created_token(
            &assert_cmd::Command::from_std(
                self.cmd(env, &["token", "create", "-p", project, "-e", "30"]),
            )
            .assert()
            .success(),
        )
    }

    fn run(&self, env: &PgEnv, args: &[&str]) -> crate::common::Run {
        let run = output(self.cmd(env, args));
        assert!(
            run.status.success(),
            "{args:?} through PgBouncer: {}\nPgBouncer's log:\n{}",
            String::from_utf8_lossy(&run.stderr),
            self.log()
        );
        run
    }

    /// Runs every one of `commands` at once; their ends, in order.
    fn run_at_once(&self, env: &PgEnv, commands: &[Vec<String>]) -> Vec<crate::common::Run> {
        let running: Vec<_> = commands
            .iter()
            .map(|args| {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                in_background(self.cmd(env, &args))
            })
            .collect();
        running.into_iter().map(finished).collect()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn pgbouncer() -> &'static str {
    let path = "/usr/sbin/pgbouncer";
    assert!(
        std::path::Path::new(path).is_file(),
        "no {path}: these tests need PgBouncer: apt-get install pgbouncer"
    );
    path
}

/// The rows of `token list --json` in a run's stdout.
fn listed(run: &crate::common::Run) -> Vec<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(&run.stdout)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

#[test]
fn every_command_works_through_pgbouncer_in_transaction_mode_several_at_once() {
    let Some(env) = PgEnv::new() else { return };
    let bouncer = Bouncer::start(&env.db);
    bouncer.run(&env, &["project", "create", "demo"]);

    // Three times as many clients as server connections, at once.
    let creates: Vec<Vec<String>> = (0..3 * POOL_SIZE)
        .map(|n| {
            [
                "token",
                "create",
                "-p",
                "demo",
                "-e",
                "90",
                "-d",
                &format!("host {n}"),
            ]
            .map(str::to_owned)
            .to_vec()
        })
        .collect();
    let tokens: Vec<String> = bouncer
        .run_at_once(&env, &creates)
        .iter()
        .map(|run| {
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            crate::common::printed_token(&run.stdout).expect("a token")
        })
        .collect();
    let mut expired = bouncer.cmd(&env, &["token", "create", "-p", "demo", "-e", "30"]);
    expired
        .env("FAKETIME", "-40d")
        .env("LD_PRELOAD", faketime_lib());
    let expired = created_token(&assert_cmd::Command::from_std(expired).assert().success());

    let rows = listed(&bouncer.run(&env, &["token", "list", "--json"]));
    assert_eq!(rows.len(), tokens.len() + 1);

    // Every token verifies, all at once, a few times over; the verifies record their last
    // use. (Many clients on two server connections: a statement that relied on its session
    // would sooner or later find another's.)
    for _ in 0..3 {
        let verifies: Vec<_> = tokens
            .iter()
            .map(|token| {
                let cmd = bouncer.cmd(&env, &[]);
                let token = token.clone();
                std::thread::spawn(move || {
                    verifies_with(assert_cmd::Command::from_std(cmd), &token)
                })
            })
            .collect();
        for verified in verifies {
            assert!(verified.join().expect("verify thread"));
        }
    }
    let rows = listed(&bouncer.run(&env, &["token", "list", "--json", "--unused"]));
    assert_eq!(rows.len(), 1, "only the expired token is unused: {rows:?}");

    // Rotate one and revoke another at once.
    let ends = bouncer.run_at_once(
        &env,
        &[
            ["token", "rotate", id_of(&tokens[0]), "--yes"]
                .map(str::to_owned)
                .to_vec(),
            ["token", "revoke", id_of(&tokens[1]), "--yes"]
                .map(str::to_owned)
                .to_vec(),
        ],
    );
    for run in &ends {
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let rotated = crate::common::printed_token(&ends[0].stdout).expect("the new token");
    assert!(verifies_with(
        assert_cmd::Command::from_std(bouncer.cmd(&env, &[])),
        &rotated
    ));
    for gone in [&tokens[0], &tokens[1]] {
        assert!(!verifies_with(
            assert_cmd::Command::from_std(bouncer.cmd(&env, &[])),
            gone
        ));
    }

    bouncer.run(&env, &["token", "prune", "--expired", "--yes"]);
    assert!(!verifies_with(
        assert_cmd::Command::from_std(bouncer.cmd(&env, &[])),
        &expired
    ));
    let rows = listed(&bouncer.run(&env, &["token", "list", "--json"]));
    assert_eq!(rows.len(), tokens.len() - 1);

    bouncer.run(&env, &["project", "delete", "demo", "--yes"]);
    let run = bouncer.run(&env, &["project", "list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "[]");
}

/// Through a transaction pooler each statement of a verify may run on a server connection its
/// session's timeouts were never set on; here PgBouncer resets every server connection after
/// each transaction (`server_reset_query_always`), so none keeps them. A verify whose
/// last-used write meets a row another transaction holds still gives up after the lock
/// timeout: the token is valid, its use is said to be unrecorded, and the verify does not wait
/// for as long as that transaction lives.
#[test]
fn a_verify_through_a_pooler_never_waits_for_good_on_a_row_another_transaction_holds() {
    let Some(env) = PgEnv::new() else { return };
    let bouncer = Bouncer::start_with(
        &env.db,
        "server_reset_query = RESET ALL\nserver_reset_query_always = 1\n",
    );
    bouncer.run(&env, &["project", "create", "demo"]);
    let token = bouncer.token(&env, "demo");
    let mut holder = super::locks::hold_row(&env, id_of(&token));

    // Far longer than the lock timeout (5 s), far shorter than the holder would wait.
    let run = Process::new(bouncer.cmd(&env, &["verify"]))
        .stdin(Stdin::Bytes(format!("{token}\n").into_bytes()))
        .kill_after(Duration::from_secs(20))
        .run();
    holder.batch_execute("ROLLBACK").expect("let the row go");
    assert!(
        !run.killed_at_deadline,
        "verify waited 20 s for the held row\nPgBouncer's log:\n{}",
        bouncer.log()
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "verify failed: {stderr}");
    assert!(
        stderr.contains("the token is valid, but its last use was not recorded"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&token),
        "the token is in verify's stderr: {stderr}"
    );
}

/// `autheona serve` through PgBouncer: its connections' transactions go to the server
/// connections in turn, so the lookup it prepares on one is missing on the next; every answer
/// is still right, and revocation still takes effect at the next request. The notifications
/// that let a server answer from rows it read earlier (leases) do not go through a transaction
/// pooler: the server finds that out at its start and says so, once, then reads every row.
#[test]
fn serve_answers_every_request_through_pgbouncer_in_transaction_mode() {
    use crate::serve::harness::{Addr, Server, free_port};

    let Some(env) = PgEnv::new() else { return };
    let bouncer = Bouncer::start(&env.db);
    bouncer.run(&env, &["project", "create", "demo"]);
    let token = bouncer.token(&env, "demo");
    bouncer.open_every_server_connection(&env.db);
    let server = Server::start_cmd(
        bouncer.cmd(&env, &[]),
        Addr::Tcp(free_port()),
        &["--store-connections", "1"],
    );
    for round in 0..20 {
        let answer = server.auth(&token, Some("demo"));
        assert_eq!(answer.status, 200, "request {round}: {}", server.stderr());
        assert_eq!(answer.header("X-Autheona-Project"), Some("demo"));
    }
    let unknown = crate::common::forge(id_of(&token), &"x".repeat(43));
    assert_eq!(server.auth(&unknown, None).status, 401);
    bouncer.run(&env, &["token", "revoke", id_of(&token), "--yes"]);
    assert_eq!(server.auth(&token, None).status, 401, "revoked");
    // serve's lookups ask for their generic plan in their own transactions only: none of the
    // server connections, which other clients get next, keeps it.
    let mut client = bouncer.connect(&env.db).expect("connect to PgBouncer");
    for round in 0..2 * POOL_SIZE {
        // Simple queries: a statement prepared on one server connection is not on the next.
        let shown = client
            .simple_query("SHOW plan_cache_mode")
            .expect("SHOW through PgBouncer");
        let mode = shown.iter().find_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(mode.as_deref(), Some("auto"), "transaction {round}");
    }
    // The check that announcements reach it gives up after 5 s.
    server.wait_for_stderr("do not reach this server");
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let lines: Vec<&str> = stopped.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "a line at the start, one of the leases, one at the stop:\n{}",
        stopped.stderr
    );
    assert!(
        lines[1].contains("announcements (autheona_changes) do not reach this server")
            && lines[1].contains("every request reads its token's row"),
        "{}",
        stopped.stderr
    );
}
