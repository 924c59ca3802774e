//! Failures of the server or the way to it: each ends in exit 3 with one `error:` line (and a
//! hint), within a bound, having written nothing half.

use std::net::TcpListener;
use std::time::Duration;

use super::server::{HBA_ANY, Server};
use super::{
    Locked, PgEnv, assert_store_error, finished, free_port, has_schema, in_background,
    verifies_with, waiting_backend,
};
use crate::common::{created_token, id_of, output};
use crate::pg;

#[test]
fn a_closed_port_ends_in_exit_3_naming_the_server() {
    let Some(env) = PgEnv::new() else { return };
    let port = free_port();
    let mut cmd = env.std_cmd();
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .args(["project", "create", "demo"]);
    let hint = assert_store_error(
        &output(cmd),
        &format!(
            "127.0.0.1:{port} (database {}, user {})",
            env.db,
            pg::var("PGUSER")
        ),
    );
    assert!(hint.is_some_and(|hint| hint.contains("running")));
}

/// A TCP listener that accepts connections and never says a word; its port.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_server_that_never_answers_is_given_up_on_after_pgconnect_timeout() {
    let Some(env) = PgEnv::new() else { return };
    let port = silent_server();
    let mut cmd = env.std_cmd();
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGCONNECT_TIMEOUT", "2")
        .args(["token", "list"]);
    // `output` fails the test if the command outlives the hang guard.
    let hint = assert_store_error(&output(cmd), &format!("127.0.0.1:{port}"));
    assert!(hint.is_some());
}

#[test]
fn a_server_that_never_answers_is_given_up_on_by_default() {
    let Some(env) = PgEnv::new() else { return };
    let port = silent_server();
    let mut cmd = env.bare();
    cmd.env(
        "AUTHEONA_DB",
        format!("postgres://someone@127.0.0.1:{port}/db"),
    )
    .args(["token", "list"]);
    assert_store_error(&output(cmd), &format!("127.0.0.1:{port}"));
}

#[test]
fn a_wrong_password_ends_in_exit_3_and_creates_nothing() {
    let Some(env) = PgEnv::new() else { return };
    let mut cmd = env.std_cmd();
    cmd.env("PGPASSWORD", "not-the-password")
        .args(["project", "create", "demo"]);
    let hint = assert_store_error(&output(cmd), "password authentication failed");
    assert!(hint.is_some_and(|hint| hint.contains("PGPASSWORD")));
    assert!(!has_schema(&mut env.sql()));
}

#[test]
fn a_missing_database_ends_in_exit_3() {
    let Some(env) = PgEnv::new() else { return };
    let mut cmd = env.std_cmd();
    cmd.env("AUTHEONA_DB", pg::url("autheona_no_such_database"))
        .args(["project", "create", "demo"]);
    let hint = assert_store_error(&output(cmd), "autheona_no_such_database");
    assert!(hint.is_some_and(|hint| hint.contains("createdb")));
    let mut admin = pg::admin();
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = 'autheona_no_such_database'",
            &[],
        )
        .expect("read pg_database");
    assert!(exists.is_none(), "the database was created");
}

#[test]
fn a_lock_held_too_long_ends_revoke_as_busy_and_the_token_still_works() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let locked = Locked::take(env.sql());
    let mut cmd = env.std_cmd();
    cmd.args(["token", "revoke", id_of(&token), "--yes"]);
    let hint = assert_store_error(&output(cmd), "busy");
    assert!(hint.is_some());
    locked.release();
    assert!(
        env.verifies(&token),
        "a revoke that failed removed the token"
    );
}

#[test]
fn a_lock_held_on_the_schema_version_ends_every_command_as_busy() {
    // Every connection reads autheona.schema_version first: its timeouts must be set by
    // then, or such a lock holds every command for ever.
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let locked = Locked::table(env.sql(), "autheona.schema_version");
    for args in [
        &["token", "list"][..],
        &["token", "revoke", id_of(&token), "--yes"],
        &["project", "create", "other"],
    ] {
        let mut cmd = env.std_cmd();
        cmd.args(args);
        let hint = assert_store_error(&output(cmd), "busy");
        assert!(hint.is_some(), "{args:?}");
    }
    locked.release();
    assert!(
        env.verifies(&token),
        "a command that failed changed the store"
    );
}

#[test]
fn a_backend_the_server_terminates_mid_rotate_ends_in_exit_3_and_changes_nothing() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let locked = Locked::take(env.sql());
    let mut cmd = env.std_cmd();
    cmd.args(["token", "rotate", id_of(&token), "--yes"]);
    let running = in_background(cmd);
    let mut admin = env.sql();
    let pid = waiting_backend(&mut admin, &env.db, &running);
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .expect("terminate the command's backend");
    let run = finished(running);
    locked.release();
    let hint = assert_store_error(&run, "connection");
    assert!(hint.is_some());
    let ids: Vec<String> = env
        .sql()
        .query("SELECT id FROM autheona.tokens", &[])
        .expect("read tokens")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, [id_of(&token)], "the rotation was half done");
    assert!(env.verifies(&token));
}

#[test]
fn commands_before_and_after_a_server_restart_both_work() {
    if !pg::available() {
        return;
    }
    let mut server = Server::started(HBA_ANY);
    server.create_database("t");
    let files = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "postgres:///t?host={}&port={}",
        server.socket_dir().display(),
        server.port
    );
    let cmd = |args: &[&str]| {
        let mut cmd = super::bare_command(&files.path().join("home"), files.path());
        cmd.env("AUTHEONA_DB", &url)
            .env("PGUSER", "postgres")
            .args(args);
        assert_cmd::Command::from_std(cmd)
    };
    cmd(&["project", "create", "demo"]).assert().success();
    let token = created_token(
        &cmd(&["token", "create", "-p", "demo", "-e", "30"])
            .assert()
            .success(),
    );
    // As a crash would: no shutdown checkpoint; the server recovers from its WAL.
    server.crash();
    server.start();
    assert!(verifies_with(cmd(&[]), &token));
    cmd(&["token", "revoke", id_of(&token), "--yes"])
        .assert()
        .success();
    assert!(!verifies_with(cmd(&[]), &token));
}

#[test]
fn a_server_that_stops_answering_mid_command_ends_it_in_exit_3_within_about_a_minute() {
    // The revoke waits for a lock; the relay goes silent (as a PgBouncer or proxy that hangs,
    // whose kernel still acknowledges every byte, so that TCP's own timeouts never fire); the
    // lock goes and the server answers, into the relay, which passes nothing on. Without a bound of its own the command would
    // wait for ever.
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let relay = pg::Relay::start();
    let locked = Locked::take(env.sql());
    let mut cmd = env.std_cmd();
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", relay.port.to_string())
        .args(["token", "revoke", id_of(&token), "--yes"]);
    let started = std::time::Instant::now();
    let running = std::thread::spawn(move || {
        crate::common::Process::new(cmd)
            .kill_after(Duration::from_secs(150))
            .run()
    });
    let mut admin = env.sql();
    waiting_backend(&mut admin, &env.db, &running);
    relay.go_silent();
    locked.release();
    let run = running.join().expect("the command's thread");
    let waited = started.elapsed();
    assert!(!run.killed_at_deadline, "still waiting after {waited:?}");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{err}");
    assert!(
        err.starts_with("error: PostgreSQL ") && err.contains("did not answer for 60 s"),
        "{err}"
    );
    // Never committed: the token works (its backend, whose connection the relay keeps, holds
    // its row until the relay lets go).
    relay.speak_again();
    assert!(env.verifies(&token), "a revoke never committed took effect");
}
