//! The README's least-privilege setup, run as written on a server of the test's own: the
//! superuser's SQL, then the owner's first `project create` and grants; every command then
//! works as the everyday role, which can neither change a token nor touch the schema.

use std::path::Path;
use std::process::Command;

use super::server::{HBA_ANY, Server};
use super::{PgEnv, has_schema};
use crate::common::{BIN, Run, output, printed_token, readme_block};
use crate::serve::harness::{Addr, Server as Serve, free_port};

/// The README's passwords for the two roles.
const OWNER_PASSWORD: &str = "choose-one";
const APP_PASSWORD: &str = "choose-another";

/// `psql` against `server`, over TCP as `user`, reading SQL on stdin; stops at the first error.
fn psql(server: &Server, user: &str, password: &str, sql: &str) -> Run {
    let mut cmd = Command::new(super::server::bin("psql"));
    cmd.env_clear()
        .env("PGPASSWORD", password)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "localhost"])
        .args(["-p", &server.port.to_string(), "-U", user, "-d", "autheona"]);
    crate::common::Process::new(cmd)
        .stdin(crate::common::Stdin::Bytes(sql.as_bytes().to_vec()))
        .run()
}

#[track_caller]
fn assert_ok(run: &Run, what: &str) {
    assert!(
        run.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn the_readme_least_privilege_setup_works_as_written() {
    let Some(env) = PgEnv::new() else { return };
    let server = Server::started(HBA_ANY);

    // As a superuser: the roles and the database (over the server's socket).
    let superuser_sql = readme_block("As a superuser (`sudo -u postgres psql`):");
    let mut cmd = Command::new(super::server::bin("psql"));
    cmd.env_clear()
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(server.socket_dir())
        .args([
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]);
    let run = crate::common::Process::new(cmd)
        .stdin(crate::common::Stdin::Bytes(superuser_sql.into_bytes()))
        .run();
    assert_ok(&run, "the superuser's SQL");

    // As the owner: the first project, then the grants, with db.internal being this server.
    let owner_steps = readme_block("Then, as the owner, make the schema with the first project")
        .replace("db.internal", "localhost");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let psql_dir = super::server::bin("psql").parent().unwrap().to_owned();
    let mut sh = Command::new("sh");
    sh.env_clear()
        .env("HOME", env.home())
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env(
            "PATH",
            format!(
                "{}:{}:{}",
                bin_dir.display(),
                psql_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("PGPORT", server.port.to_string())
        .env("PGPASSWORD", OWNER_PASSWORD)
        .current_dir(env.dir())
        .args(["-e", "-c", &owner_steps]);
    assert_ok(&output(sh), "the owner's steps");

    // As the everyday role: every command works.
    let url = format!("postgres://autheona_app@localhost:{}/autheona", server.port);
    let app = || -> Command {
        let mut cmd = env.bare();
        cmd.env("PGPASSWORD", APP_PASSWORD).env("AUTHEONA_DB", &url);
        cmd
    };
    let ok = |args: &[&str]| -> Run {
        let mut cmd = app();
        cmd.args(args);
        let run = output(cmd);
        assert_ok(&run, &args.join(" "));
        run
    };
    ok(&["project", "create", "billing"]);
    let create = ok(&["token", "create", "-p", "billing", "-e", "30", "-d", "ci"]);
    let token = printed_token(&create.stdout).expect("a token on stdout");
    let mut verify = app();
    verify.env("AUTHEONA_TOKEN", &token).arg("verify");
    assert_ok(&output(verify), "verify");
    let id = crate::common::id_of(&token).to_owned();
    let listed = ok(&["token", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_ne!(
        listed[0]["last_used_at"],
        serde_json::Value::Null,
        "the use was recorded"
    );
    let rotated = ok(&["token", "rotate", &id, "--yes"]);
    let new_token = printed_token(&rotated.stdout).expect("the new token on stdout");
    let new_id = crate::common::id_of(&new_token).to_owned();
    ok(&["token", "prune", "--expired", "--yes"]);
    ok(&["token", "revoke", &new_id, "--yes"]);
    ok(&["project", "delete", "first", "--yes"]);
    ok(&["project", "list"]);

    // ... serve holds a lease as it, and a revoke by it is acknowledged by that server.
    let kept = ok(&["token", "create", "-p", "billing", "-e", "30"]);
    let kept = printed_token(&kept.stdout).expect("a token on stdout");
    let serve = Serve::start_cmd(app(), Addr::Tcp(free_port()), &[]);
    let count = |sql: &str| -> String {
        let run = psql(
            &server,
            "autheona_app",
            APP_PASSWORD,
            &format!("\\pset tuples_only\n{sql}"),
        );
        assert_ok(&run, sql);
        String::from_utf8_lossy(&run.stdout).trim().to_owned()
    };
    super::wait_for("serve's lease", &[], || {
        (count("SELECT count(*) FROM autheona.servers") == "1").then_some(())
    });
    assert_eq!(serve.auth(&kept, None).status, 200);
    ok(&["token", "revoke", crate::common::id_of(&kept), "--yes"]);
    assert_eq!(serve.auth(&kept, None).status, 401);
    assert_eq!(
        count("SELECT s.acked = c.last_value FROM autheona.servers s, autheona.changes c"),
        "t",
        "the revoke's number, acknowledged"
    );
    let stopped = serve.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_eq!(stopped.stderr.lines().count(), 2, "{}", stopped.stderr);
    assert_eq!(
        count("SELECT count(*) FROM autheona.servers"),
        "0",
        "the lease given back"
    );

    // ... and can neither change a token nor touch the schema.
    ok(&["token", "create", "-p", "billing", "-e", "never"]);
    for sql in [
        "UPDATE autheona.tokens SET expires_at = 1",
        "UPDATE autheona.tokens SET description = 'x'",
        "UPDATE autheona.projects SET name = 'x'",
        "DROP TABLE autheona.tokens",
        "ALTER TABLE autheona.tokens DROP COLUMN description",
        "DROP TRIGGER tokens_are_immutable ON autheona.tokens",
        "TRUNCATE autheona.tokens",
        "CREATE TABLE autheona.planted (x int)",
    ] {
        let run = psql(&server, "autheona_app", APP_PASSWORD, sql);
        assert!(!run.status.success(), "the everyday role may: {sql}");
    }
    let run = psql(
        &server,
        "autheona_app",
        APP_PASSWORD,
        "UPDATE autheona.tokens SET last_used_at = 1",
    );
    assert_ok(&run, "the everyday role records uses");
    // The shared test server was not used.
    assert!(!has_schema(&mut env.sql()));
}
