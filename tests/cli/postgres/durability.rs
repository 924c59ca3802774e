//! Revoke, project delete, prune and rotate commit with `synchronous_commit = on` whatever
//! the server's default. Seen from outside: on a server with a synchronous standby named
//! that never connects, a commit with `synchronous_commit = on` waits for it (its backend
//! shows wait event `SyncRep`) until the standby is no longer required, while one with `off`
//! (the database's default here) returns at once. Such a server is a test's own.

use std::process::Command;

use super::server::{HBA_ANY, Server};
use super::{finished, in_background, wait_for};
use crate::common::{Run, created_token, faketime_lib, id_of, output};
use crate::pg;

/// A server with database `t` whose default is `synchronous_commit = off`.
struct Setup {
    server: Server,
    files: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let server = Server::started(HBA_ANY);
        server.create_database("t");
        server
            .admin("postgres")
            .batch_execute("ALTER DATABASE t SET synchronous_commit = off")
            .expect("make off the default");
        Setup {
            server,
            files: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = super::bare_command(&self.files.path().join("home"), self.files.path());
        cmd.env(
            "AUTHEONA_DB",
            format!(
                "postgres:///t?host={}&port={}",
                self.server.socket_dir().display(),
                self.server.port
            ),
        )
        .env("PGUSER", "postgres")
        .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let run = output(self.cmd(args));
        assert!(
            run.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        run
    }

    /// A project `demo` with a token that never expires and one that expired 10 days ago.
    fn tokens(&self) -> (String, String) {
        self.run(&["project", "create", "demo"]);
        let working = created_token(
            &assert_cmd::Command::from_std(
                self.cmd(&["token", "create", "-p", "demo", "-e", "never"]),
            )
            .assert()
            .success(),
        );
        let mut old = self.cmd(&["token", "create", "-p", "demo", "-e", "30"]);
        old.env("FAKETIME", "-40d")
            .env("LD_PRELOAD", faketime_lib());
        let expired = created_token(&assert_cmd::Command::from_std(old).assert().success());
        (working, expired)
    }

    /// From now on a commit that asks for `synchronous_commit = on` waits for the standby
    /// "ghost", which never comes. Returns once a probe commit of that kind has been seen
    /// waiting (so the server acts on the setting), and cancelled.
    fn require_a_standby(&self) {
        let mut admin = self.server.admin("postgres");
        admin
            .batch_execute("ALTER SYSTEM SET synchronous_standby_names = 'ghost'")
            .expect("name a synchronous standby");
        self.server
            .reload_until("synchronous_standby_names", "ghost");
        let mut probe = self.server.admin("t");
        let probe_pid: i32 = probe
            .query_one("SELECT pg_backend_pid()", &[])
            .expect("probe pid")
            .get(0);
        let probing = std::thread::spawn(move || {
            probe.batch_execute(
                "SET synchronous_commit = on; CREATE TABLE probe (); DROP TABLE probe",
            )
        });
        let start = std::time::Instant::now();
        while !self.waits_for_the_standby(&mut admin, probe_pid) {
            assert!(
                start.elapsed() < crate::common::HANG_GUARD,
                "the probe never waited"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        admin
            .execute("SELECT pg_cancel_backend($1)", &[&probe_pid])
            .expect("cancel the probe");
        let _ = probing.join();
    }

    fn waits_for_the_standby(&self, admin: &mut postgres::Client, pid: i32) -> bool {
        admin
            .query_opt(
                "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'",
                &[&pid],
            )
            .expect("read pg_stat_activity")
            .is_some()
    }

    /// Runs `args`, which must wait for the standby before it ends; then lets it go (the
    /// standby no longer required) and returns how it ended.
    fn waits_for_the_disk(&self, args: &[&str]) -> Run {
        let running = in_background(self.cmd(args));
        let mut admin = self.server.admin("postgres");
        wait_for(
            "its commit waited for the synchronous standby",
            std::slice::from_ref(&running),
            || {
                admin
                .query_opt(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = 't' AND wait_event = 'SyncRep'",
                    &[],
                )
                .expect("read pg_stat_activity")
            },
        );
        admin
            .batch_execute("ALTER SYSTEM RESET synchronous_standby_names")
            .expect("require no standby");
        self.server.reload_until("synchronous_standby_names", "");
        let run = finished(running);
        assert!(
            run.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        run
    }

    fn ids(&self) -> Vec<String> {
        self.server
            .admin("t")
            .query("SELECT id FROM autheona.tokens ORDER BY seq", &[])
            .expect("read tokens")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }
}

#[test]
fn revoke_commits_with_synchronous_commit_on() {
    if !pg::available() {
        return;
    }
    let setup = Setup::new();
    let (working, expired) = setup.tokens();
    setup.require_a_standby();
    setup.waits_for_the_disk(&["token", "revoke", id_of(&working), "--yes"]);
    assert_eq!(setup.ids(), [id_of(&expired)]);
}

#[test]
fn project_delete_commits_with_synchronous_commit_on() {
    if !pg::available() {
        return;
    }
    let setup = Setup::new();
    setup.tokens();
    setup.require_a_standby();
    setup.waits_for_the_disk(&["project", "delete", "demo", "--yes"]);
    assert_eq!(setup.ids(), Vec::<String>::new());
}

#[test]
fn prune_commits_with_synchronous_commit_on() {
    if !pg::available() {
        return;
    }
    let setup = Setup::new();
    let (working, _) = setup.tokens();
    setup.require_a_standby();
    setup.waits_for_the_disk(&["token", "prune", "--expired", "--yes"]);
    assert_eq!(setup.ids(), [id_of(&working)]);
}

#[test]
fn rotate_commits_with_synchronous_commit_on() {
    if !pg::available() {
        return;
    }
    let setup = Setup::new();
    let (working, expired) = setup.tokens();
    setup.require_a_standby();
    let run = setup.waits_for_the_disk(&["token", "rotate", id_of(&working), "--yes"]);
    let new = crate::common::printed_token(&run.stdout).expect("the new token");
    assert_eq!(setup.ids(), [id_of(&expired), id_of(&new)]);
}
