//! autheona's schema in a database: made by the first `project create` only, under a lock
//! that lets first commands race, never downgraded, and guarding its tokens by a trigger.

use super::{
    PgEnv, assert_store_error, finished, has_schema, in_background, projects_in, wait_for,
};
use crate::common::{Run, forge, id_of, output};

/// `args` (with `stdin`) on a fresh database ends in exit 3 with a hint naming `autheona
/// project create`, and leaves the database without an autheona schema.
fn refused_on_a_fresh_database(args: &[&str], stdin: &str) {
    let Some(env) = PgEnv::new() else { return };
    let mut cmd = env.cmd();
    let assert = cmd.args(args).write_stdin(stdin).assert();
    let out = assert.get_output();
    let run = Run {
        status: out.status,
        killed_at_deadline: false,
        stdout: out.stdout.clone(),
        stderr: out.stderr.clone(),
        stdin_written: 0,
    };
    let hint = assert_store_error(&run, "no autheona schema");
    assert!(
        hint.as_deref()
            .is_some_and(|hint| hint.contains("autheona project create")),
        "{hint:?}"
    );
    assert!(!has_schema(&mut env.sql()), "{args:?} made the schema");
}

const SOME_ID: &str = "3kTMd9aPq0Zx";

macro_rules! refused_on_a_fresh_database {
    ($($name:ident: [$($arg:expr),*] $(, stdin $stdin:expr)?;)*) => {$(
        #[test]
        fn $name() {
            #[allow(unused_mut, unused_assignments)]
            let mut stdin = String::new();
            $(stdin = $stdin;)?
            refused_on_a_fresh_database(&[$($arg),*], &stdin);
        }
    )*};
}

refused_on_a_fresh_database! {
    project_list_on_a_fresh_database_says_how_to_start: ["project", "list"];
    project_list_json_on_a_fresh_database_says_how_to_start: ["project", "list", "--json"];
    project_delete_on_a_fresh_database_says_how_to_start: ["project", "delete", "demo", "--yes"];
    token_create_on_a_fresh_database_says_how_to_start:
        ["token", "create", "-p", "demo", "-e", "30"];
    token_list_on_a_fresh_database_says_how_to_start: ["token", "list"];
    token_list_json_on_a_fresh_database_says_how_to_start: ["token", "list", "--json"];
    token_revoke_on_a_fresh_database_says_how_to_start: ["token", "revoke", SOME_ID, "--yes"];
    token_rotate_on_a_fresh_database_says_how_to_start: ["token", "rotate", SOME_ID, "--yes"];
    token_prune_on_a_fresh_database_says_how_to_start:
        ["token", "prune", "--expired", "--yes"];
    verify_on_a_fresh_database_says_how_to_start: ["verify"],
        stdin format!("{}\n", forge(SOME_ID, &"a1B".repeat(15)[..43]));
}

#[test]
fn completion_against_a_fresh_database_creates_nothing() {
    let Some(env) = PgEnv::new() else { return };
    let assert = env
        .cmd()
        .env("COMPLETE", "bash")
        .env("_CLAP_IFS", "\n")
        .env("_CLAP_COMPLETE_INDEX", "3")
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .args(["--", "autheona", "token", "revoke", ""])
        .assert()
        .success();
    let offered = crate::common::stdout(&assert);
    assert!(
        offered.lines().all(|line| line.starts_with("--")),
        "offered more than flags: {offered:?}"
    );
    assert!(!has_schema(&mut env.sql()), "completion made the schema");
}

#[test]
fn eight_first_commands_at_once_make_one_schema() {
    let Some(env) = PgEnv::new() else { return };
    // Creating a schema writes pg_namespace: while another session holds it in SHARE mode,
    // each first command stops where it would create one, so all 8 are on their way at
    // once when it lets go. (Readers of the catalog are not held up.)
    let mut blocker = env.sql();
    blocker
        .batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_namespace IN SHARE MODE")
        .expect("hold pg_namespace");
    let running: Vec<_> = (0..8)
        .map(|n| {
            let mut cmd = env.std_cmd();
            cmd.args(["project", "create", &format!("p{n}")]);
            in_background(cmd)
        })
        .collect();
    let mut admin = env.sql();
    wait_for("all 8 waited for a lock", &running, || {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&env.db],
            )
            .expect("read pg_stat_activity")
            .get(0);
        (waiting == 8).then_some(())
    });
    blocker
        .batch_execute("COMMIT")
        .expect("let go of pg_namespace");
    for run in running.into_iter().map(finished) {
        assert!(
            run.status.success(),
            "a first command failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let mut sql = env.sql();
    assert_eq!(
        projects_in(&mut sql),
        (0..8).map(|n| format!("p{n}")).collect::<Vec<_>>()
    );
    let version: i32 = sql
        .query_one("SELECT version FROM autheona.schema_version", &[])
        .expect("read the schema version")
        .get(0);
    assert_eq!(version, autheona::store::POSTGRES_SCHEMA_VERSION);
}

/// Every table, column and row of the autheona schema, as text.
fn schema_dump(sql: &mut postgres::Client) -> String {
    let mut dump = String::new();
    for row in sql
        .query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns
             WHERE table_schema = 'autheona' ORDER BY 1, 2",
            &[],
        )
        .expect("read columns")
    {
        let (table, column, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        dump.push_str(&format!("{table}.{column} {kind}\n"));
    }
    for table in ["schema_version", "projects", "tokens"] {
        for row in sql
            .query(
                &format!("SELECT row_to_json(t)::text FROM autheona.{table} t ORDER BY 1"),
                &[],
            )
            .expect("read rows")
        {
            dump.push_str(&row.get::<_, String>(0));
            dump.push('\n');
        }
    }
    dump
}

#[test]
fn a_schema_newer_than_the_binary_is_refused_and_left_unchanged() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let mut sql = env.sql();
    sql.execute(
        "UPDATE autheona.schema_version SET version = $1",
        &[&(autheona::store::POSTGRES_SCHEMA_VERSION + 1)],
    )
    .expect("set a newer version");
    let before = schema_dump(&mut sql);
    for args in [
        &["project", "create", "other"][..],
        &["project", "list"],
        &["token", "create", "-p", "demo", "-e", "30"],
        &["token", "list"],
        &["token", "revoke", id_of(&token), "--yes"],
        &["token", "prune", "--expired", "--yes"],
    ] {
        let mut cmd = env.std_cmd();
        cmd.args(args);
        let hint = assert_store_error(&output(cmd), "newer");
        assert!(
            hint.is_some_and(|hint| hint.contains("upgrade")),
            "{args:?}"
        );
    }
    assert_eq!(
        schema_dump(&mut sql),
        before,
        "the newer schema was changed"
    );
}

/// `UPDATE autheona.tokens SET {set}` on the one token of a demo database fails, by the
/// trigger (restrict_violation), and changes nothing.
fn refused_by_the_trigger(set: &str) {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    env.run(&["project", "create", "other"]).success();
    let mut sql = env.sql();
    let before = schema_dump(&mut sql);
    let err = sql
        .execute(&format!("UPDATE autheona.tokens SET {set}"), &[])
        .expect_err("the update was allowed");
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::RESTRICT_VIOLATION),
        "{err}"
    );
    assert_eq!(schema_dump(&mut sql), before);
    assert!(env.verifies(&token));
}

#[test]
fn the_trigger_refuses_a_changed_expiration() {
    refused_by_the_trigger("expires_at = 4102444800");
}

#[test]
fn the_trigger_refuses_a_changed_description() {
    refused_by_the_trigger("description = 'changed'");
}

#[test]
fn the_trigger_refuses_a_changed_project() {
    refused_by_the_trigger("project_id = (SELECT id FROM autheona.projects WHERE name = 'other')");
}

#[test]
fn the_trigger_refuses_a_changed_hash() {
    refused_by_the_trigger("secret_hash = 'not a hash'");
}

#[test]
fn the_trigger_refuses_a_changed_id_or_creation_time() {
    refused_by_the_trigger("id = 'AAAAAAAAAAAA'");
    refused_by_the_trigger("created_at = created_at - 1");
}

#[test]
fn the_trigger_lets_the_last_use_change() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let changed = env
        .sql()
        .execute("UPDATE autheona.tokens SET last_used_at = 1700000000", &[])
        .expect("update last_used_at");
    assert_eq!(changed, 1);
    let listed = crate::common::stdout(&env.run(&["token", "list", "--json"]).success());
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed[0]["id"], id_of(&token));
    assert_eq!(listed[0]["last_used_at"], "2023-11-14T22:13:20Z");
}
