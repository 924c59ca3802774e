//! `store copy SOURCE DESTINATION`: every direction between SQLite and PostgreSQL copies
//! every row as it is (hashes included, so every token verifies on the destination), reads
//! the source without changing it, and refuses, or fails, without writing half of anything.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

use crate::common::*;
use crate::pg;

/// A token's whole row, as stored: id, project, hash, description, created, expires, last used.
type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

/// The rows of a store, by direct SQL: projects (name, created) by name, and tokens in list
/// order (by creation, then insertion).
#[derive(Debug, PartialEq, Eq)]
struct Rows {
    projects: Vec<(String, i64)>,
    tokens: Vec<TokenRow>,
}

const PROJECTS_SQL: &str = "SELECT name, created_at FROM projects ORDER BY name";

/// Ordered as `token list` orders them.
const TOKENS_SQL: &str = "SELECT t.id, p.name, t.secret_hash, t.description, t.created_at, \
     t.expires_at, t.last_used_at FROM tokens t JOIN projects p ON p.id = t.project_id \
     ORDER BY t.created_at, t.rowid";

/// One side of a copy: a file, or a database of its own on the test server.
enum Side {
    File(PathBuf),
    Postgres(String),
}

impl Side {
    fn file(env: &TestEnv, name: &str) -> Side {
        Side::File(env.dir().join(name))
    }

    /// A fresh database on the test server.
    fn postgres() -> Side {
        Side::Postgres(pg::fresh_database())
    }

    /// As the command line names it.
    fn arg(&self) -> OsString {
        match self {
            Side::File(path) => path.clone().into_os_string(),
            Side::Postgres(name) => pg::url(name).into(),
        }
    }

    /// What the copy's status line calls it.
    fn shown(&self) -> String {
        match self {
            Side::File(path) => path.display().to_string(),
            Side::Postgres(name) => format!("(database {name}, user "),
        }
    }

    /// autheona with `AUTHEONA_DB` naming this store.
    fn cmd(&self, env: &TestEnv) -> Command {
        let mut cmd = with_server(env.bare_cmd());
        cmd.env("AUTHEONA_DB", self.arg());
        cmd
    }

    fn run(&self, env: &TestEnv, args: &[&str]) -> String {
        stdout(&self.cmd(env).args(args).assert().success())
    }

    fn rows(&self) -> Rows {
        match self {
            Side::File(path) => {
                // Read-only: closing it checkpoints nothing into the file.
                let sql = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                let projects = sql
                    .prepare(PROJECTS_SQL)
                    .unwrap()
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let tokens = sql
                    .prepare(TOKENS_SQL)
                    .unwrap()
                    .query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                Rows { projects, tokens }
            }
            Side::Postgres(name) => {
                let mut sql = pg::connect(name);
                sql.batch_execute("SET search_path = autheona").unwrap();
                let projects = sql
                    .query(PROJECTS_SQL, &[])
                    .unwrap()
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                let tokens = sql
                    .query(&TOKENS_SQL.replace("t.rowid", "t.seq"), &[])
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (
                            r.get(0),
                            r.get(1),
                            r.get(2),
                            r.get(3),
                            r.get(4),
                            r.get(5),
                            r.get(6),
                        )
                    })
                    .collect();
                Rows { projects, tokens }
            }
        }
    }

    /// The scheduled ends of tokens rotated with a grace period: id, replacement, end.
    fn ends(&self) -> Vec<(String, String, i64)> {
        const ENDS_SQL: &str = "SELECT id, replaced_by, stops_at FROM tokens \
             WHERE stops_at IS NOT NULL ORDER BY id";
        match self {
            Side::File(path) => {
                let sql = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                sql.prepare(ENDS_SQL)
                    .unwrap()
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Side::Postgres(name) => {
                let mut sql = pg::connect(name);
                sql.batch_execute("SET search_path = autheona").unwrap();
                sql.query(ENDS_SQL, &[])
                    .unwrap()
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect()
            }
        }
    }

    /// Every byte that holds its data, for a file (a database is compared by its rows).
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Side::File(path) => Some(main_and_log(path)),
            Side::Postgres(_) => None,
        }
    }
}

/// `cmd` with the variables that lead to the test server, when there is one.
fn with_server(mut cmd: Command) -> Command {
    for var in pg::PG_VARS {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd
}

/// `autheona store copy FROM TO`, with no database of its own.
fn copy(env: &TestEnv, from: &Side, to: &Side) -> Command {
    let mut cmd = with_server(env.bare_cmd());
    cmd.args(["store", "copy"]).arg(from.arg()).arg(to.arg());
    cmd
}

/// `cmd` with its clock stopped at `at` (libfaketime), so that tokens made by several
/// processes share one creation time and only their insertion orders them.
fn stopped_clock(mut cmd: Command, at: &str) -> Command {
    cmd.env("FAKETIME", at)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("LD_PRELOAD", faketime_lib());
    cmd
}

/// Fills `store` as people would: three projects (one without tokens), five tokens of all
/// kinds (four created in the same second, described or not, dated or not, two used), and one
/// revoked, which must not travel. Returns the tokens.
fn fill(env: &TestEnv, store: &Side) -> Vec<String> {
    for name in ["demo", "web", "idle"] {
        store.run(env, &["project", "create", name]);
    }
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut tokens = Vec::new();
    for (project, expires, description) in [
        ("demo", "30", Some("Staging server")),
        ("web", "never", None),
        ("demo", "365", Some("日本語 ✓ \"quoted\"")),
        ("web", "30", Some("CI runner")),
    ] {
        let mut cmd = stopped_clock(store.cmd(env), &yesterday);
        cmd.args(["token", "create", "-p", project, "-e", expires]);
        if let Some(description) = description {
            cmd.args(["-d", description]);
        }
        tokens.push(created_token(&cmd.assert().success()));
    }
    tokens.push(created_token(
        &store
            .cmd(env)
            .args(["token", "create", "-p", "demo", "-e", "never"])
            .assert()
            .success(),
    ));
    let revoked = created_token(
        &store
            .cmd(env)
            .args(["token", "create", "-p", "web", "-e", "90"])
            .assert()
            .success(),
    );
    store.run(env, &["token", "revoke", id_of(&revoked), "--yes"]);
    for used in [&tokens[1], &tokens[4]] {
        store
            .cmd(env)
            .arg("verify")
            .write_stdin(format!("{used}\n"))
            .assert()
            .success();
    }
    tokens
}

/// What `token list` (JSON and table) and `project list --json` print.
fn listings(env: &TestEnv, store: &Side) -> Vec<String> {
    [
        &["token", "list", "--json"][..],
        &["token", "list"],
        &["token", "list", "--project", "demo", "--json"],
        &["project", "list", "--json"],
    ]
    .iter()
    .map(|args| store.run(env, args))
    .collect()
}

/// Copies a filled `from` into `to` and checks everything: one status line, every row equal
/// (hashes by direct SQL), the same listings, the source unchanged, every token verifying on
/// the destination with its value.
fn copies_everything(env: &TestEnv, from: Side, to: Side) {
    let mut tokens = fill(env, &from);
    // One token in the grace period of a rotation: its scheduled end travels with it.
    let replacement = from.run(
        env,
        &[
            "token",
            "rotate",
            id_of(&tokens[0]),
            "--grace",
            "24h",
            "--yes",
        ],
    );
    tokens.push(replacement.trim().to_owned());
    let ends = from.ends();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].1, id_of(&tokens[5]));
    let rows = from.rows();
    assert_eq!(rows.projects.len(), 3);
    assert_eq!(rows.tokens.len(), 6);
    let listed = listings(env, &from);
    let bytes = from.bytes();

    let assert = copy(env, &from, &to).assert().success().stdout("");
    let status = stderr(&assert);
    assert!(
        status.starts_with("Copied 3 projects, 6 tokens and ")
            && status.contains(" events from ")
            && status.ends_with(".\n")
            && status.lines().count() == 1,
        "{status}"
    );
    let (shown_from, shown_to) = status.split_once(" to ").unwrap();
    assert!(shown_from.contains(&from.shown()), "{status}");
    assert!(shown_to.contains(&to.shown()), "{status}");

    assert_eq!(from.bytes(), bytes, "the source file changed");
    assert_eq!(from.rows(), rows, "the source changed");
    assert_eq!(to.rows(), rows, "the copy differs");
    assert_eq!(to.ends(), ends, "the scheduled end did not travel");
    assert_eq!(listings(env, &to), listed);
    for token in &tokens {
        to.cmd(env)
            .arg("verify")
            .write_stdin(format!("{token}\n"))
            .assert()
            .success();
    }
}

#[test]
fn sqlite_to_sqlite_copies_everything() {
    let env = TestEnv::new();
    copies_everything(
        &env,
        Side::file(&env, "from.db"),
        Side::file(&env, "new/to.db"),
    );
}

#[test]
fn sqlite_to_postgres_copies_everything() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    copies_everything(&env, Side::file(&env, "from.db"), Side::postgres());
}

#[test]
fn postgres_to_sqlite_copies_everything() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    copies_everything(&env, Side::postgres(), Side::file(&env, "to.db"));
}

#[test]
fn postgres_to_postgres_copies_everything() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    copies_everything(&env, Side::postgres(), Side::postgres());
}

#[test]
fn json_gives_the_numbers_copied() {
    let env = TestEnv::new();
    let from = Side::file(&env, "from.db");
    from.run(&env, &["project", "create", "demo"]);
    from.run(&env, &["token", "create", "-p", "demo", "-e", "30"]);
    let to = Side::file(&env, "to.db");
    let assert = copy(&env, &from, &to).arg("--json").assert().success();
    let json: serde_json::Value = serde_json::from_str(&stdout(&assert)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"projects": 1, "tokens": 1, "events": 2})
    );
    assert!(stderr(&assert).starts_with("Copied 1 project, 1 token and 2 events from "));
}

/// A destination holding anything is refused with exit 1 and one line saying what it holds;
/// nothing is written to it, and the source is not read past opening.
fn a_destination_that_is_not_empty_is_refused(env: &TestEnv, from: Side, to: Side) {
    fill(env, &from);
    to.run(env, &["project", "create", "mine"]);
    let rows = to.rows();
    let bytes = to.bytes();
    let assert = copy(env, &from, &to).assert().code(1);
    assert_eq!(
        assert_error(
            &assert,
            "is not empty: it holds 1 project, 0 tokens and 1 event"
        ),
        None
    );
    assert!(
        stderr(&assert).ends_with(
            " is not empty: it holds 1 project, 0 tokens and 1 event; nothing was copied\n"
        ),
        "{}",
        stderr(&assert)
    );
    assert!(stderr(&assert).contains(&to.shown()), "{}", stderr(&assert));
    assert_eq!(to.bytes(), bytes, "the destination file changed");
    assert_eq!(to.rows(), rows, "the destination changed");
}

#[test]
fn a_destination_file_that_is_not_empty_is_refused_and_left_unchanged() {
    let env = TestEnv::new();
    a_destination_that_is_not_empty_is_refused(
        &env,
        Side::file(&env, "from.db"),
        Side::file(&env, "to.db"),
    );
}

#[test]
fn a_destination_database_that_is_not_empty_is_refused_and_left_unchanged() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    a_destination_that_is_not_empty_is_refused(&env, Side::file(&env, "from.db"), Side::postgres());
}

/// A store whose projects were all deleted still holds their history, which no command can
/// remove: refused, as a store that holds anything, rather than merging two stores' logs.
fn a_destination_that_holds_only_a_log_is_refused(env: &TestEnv, to: Side) {
    let from = Side::file(env, "from.db");
    fill(env, &from);
    to.run(env, &["project", "create", "gone"]);
    to.run(env, &["project", "delete", "gone", "--yes"]);
    let rows = to.rows();
    let bytes = to.bytes();
    let assert = copy(env, &from, &to).assert().code(1);
    let hint = assert_error(
        &assert,
        "is not empty: it holds 0 projects, 0 tokens and 2 events; nothing was copied",
    );
    assert!(
        hint.as_deref()
            .is_some_and(|hint| hint.contains("audit log")
                && hint.contains("a database without autheona's schema")),
        "{hint:?}"
    );
    assert_eq!(to.bytes(), bytes, "the destination file changed");
    assert_eq!(to.rows(), rows, "the destination changed");
}

#[test]
fn a_destination_file_that_holds_only_a_log_is_refused_and_left_unchanged() {
    let env = TestEnv::new();
    a_destination_that_holds_only_a_log_is_refused(&env, Side::file(&env, "to.db"));
}

#[test]
fn a_destination_database_that_holds_only_a_log_is_refused_and_left_unchanged() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    a_destination_that_holds_only_a_log_is_refused(&env, Side::postgres());
}

/// A zero-length file is no store yet: it is made one and filled.
#[test]
fn a_zero_length_destination_file_is_filled() {
    let env = TestEnv::new();
    let from = Side::file(&env, "from.db");
    fill(&env, &from);
    let to = Side::file(&env, "to.db");
    let Side::File(path) = &to else {
        unreachable!()
    };
    std::fs::write(path, b"").unwrap();
    copy(&env, &from, &to).assert().success();
    assert_eq!(to.rows(), from.rows());
}

#[test]
fn a_missing_source_is_exit_3_naming_it_and_nothing_is_created() {
    let env = TestEnv::new();
    let from = Side::file(&env, "nowhere/from.db");
    let to = Side::file(&env, "to.db");
    let assert = copy(&env, &from, &to).assert().code(3);
    let shown = from.shown();
    assert_eq!(
        assert_error(&assert, &format!("no database at {shown} to copy from")),
        None
    );
    let Side::File(path) = &to else {
        unreachable!()
    };
    assert!(!path.exists(), "the destination was created");
    assert!(
        !env.dir().join("nowhere").exists(),
        "the source was created"
    );
}

#[test]
fn a_zero_length_source_has_nothing_to_copy_and_is_left_alone() {
    let env = TestEnv::new();
    let from = Side::file(&env, "from.db");
    let Side::File(path) = &from else {
        unreachable!()
    };
    std::fs::write(path, b"").unwrap();
    let to = Side::file(&env, "to.db");
    let assert = copy(&env, &from, &to).assert().code(3);
    let hint = assert_error(&assert, "is empty, not an autheona database");
    assert_eq!(
        hint.as_deref(),
        Some("hint: there is nothing in it to copy")
    );
    assert_eq!(std::fs::read(path).unwrap(), b"");
    let listed: Vec<_> = std::fs::read_dir(env.dir()).unwrap().collect();
    assert_eq!(listed.len(), 1, "files were made beside it: {listed:?}");
}

#[test]
fn a_postgres_source_without_autheonas_schema_is_refused_and_left_alone() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    let from = Side::postgres();
    let to = Side::file(&env, "to.db");
    let assert = copy(&env, &from, &to).assert().code(3);
    let hint = assert_error(&assert, "has no autheona schema");
    assert_eq!(
        hint.as_deref(),
        Some("hint: there is nothing in it to copy")
    );
    let Side::Postgres(name) = &from else {
        unreachable!()
    };
    let made: bool = pg::connect(name)
        .query_one("SELECT to_regnamespace('autheona') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!made, "the source's schema was made");
    let Side::File(path) = &to else {
        unreachable!()
    };
    assert!(!path.exists(), "the destination was created");
}

/// A version 1 file, as the first autheona made it, holding `tokens` (made by this one, so
/// that their hashes are real) in the projects they name.
fn version_1_file(path: &Path, env: &TestEnv) -> Vec<String> {
    let scratch = Side::file(env, "scratch.db");
    let tokens = fill(env, &scratch);
    let old = rusqlite::Connection::open(path).unwrap();
    old.execute_batch(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/store/sqlite/migrate-1.sql"
    )))
    .unwrap();
    old.execute_batch(
        "PRAGMA user_version = 1; PRAGMA application_id = 1096111176; PRAGMA journal_mode = WAL;",
    )
    .unwrap();
    let rows = scratch.rows();
    for (name, created_at) in &rows.projects {
        old.execute(
            "INSERT INTO projects (name, created_at) VALUES (?1, ?2)",
            rusqlite::params![name, created_at],
        )
        .unwrap();
    }
    for (id, project, hash, description, created, expires, used) in &rows.tokens {
        old.execute(
            "INSERT INTO tokens (id, project_id, secret_hash, description, created_at, \
             expires_at, last_used_at) SELECT ?1, id, ?3, ?4, ?5, ?6, ?7 FROM projects \
             WHERE name = ?2",
            rusqlite::params![id, project, hash, description, created, expires, used],
        )
        .unwrap();
    }
    drop(old);
    tokens
}

/// A source of an older schema is read as it is: not migrated, not changed, and copied whole
/// into a destination of the current schema.
#[test]
fn a_source_of_an_older_schema_is_copied_without_being_migrated() {
    let env = TestEnv::new();
    let from = Side::file(&env, "old.db");
    let Side::File(path) = &from else {
        unreachable!()
    };
    let tokens = version_1_file(path, &env);
    let rows = from.rows();
    let bytes = from.bytes();
    let to = Side::file(&env, "to.db");
    copy(&env, &from, &to).assert().success();
    assert_eq!(from.bytes(), bytes, "the source file changed");
    let version: i32 = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1, "the source was migrated");
    assert_eq!(to.rows(), rows);
    for token in &tokens {
        to.cmd(&env)
            .arg("verify")
            .write_stdin(format!("{token}\n"))
            .assert()
            .success();
    }
}

/// A destination of an older schema that holds rows is refused without being migrated.
#[test]
fn a_destination_of_an_older_schema_that_is_not_empty_is_not_migrated() {
    let env = TestEnv::new();
    let to = Side::file(&env, "old.db");
    let Side::File(path) = &to else {
        unreachable!()
    };
    version_1_file(path, &env);
    let bytes = to.bytes();
    let from = Side::file(&env, "scratch.db");
    let assert = copy(&env, &from, &to).assert().code(1);
    assert_error(
        &assert,
        "is not empty: it holds 3 projects, 5 tokens and 0 events",
    );
    assert_eq!(to.bytes(), bytes, "the destination file changed");
}

#[test]
fn a_password_in_the_source_url_is_refused() {
    a_password_in_an_argument_is_refused(
        &[
            "store",
            "copy",
            "postgres://u:secret-pw@db.example/autheona",
            "to.db",
        ],
        "SOURCE",
    );
}

#[test]
fn a_password_in_the_destination_url_is_refused() {
    a_password_in_an_argument_is_refused(
        &[
            "store",
            "copy",
            "from.db",
            "postgresql://u:secret-pw@db.example/autheona",
        ],
        "DESTINATION",
    );
}

/// Exit 2 with one line that names the argument and never the password, and nothing read or
/// made (the server named does not exist: it is never reached).
fn a_password_in_an_argument_is_refused(args: &[&str], name: &str) {
    let env = TestEnv::new();
    let assert = env.bare_cmd().args(args).assert().code(2);
    let line = format!(
        "error: {name} must not hold a password, since every user of this machine can read the \
         command line: set PGPASSWORD, or use ~/.pgpass (or the file PGPASSFILE names)\n"
    );
    assert_eq!(stderr(&assert), line);
    assert_eq!(stdout(&assert), "");
    assert!(!env.dir().join("to.db").exists());
}

#[test]
fn the_db_option_is_refused_since_both_stores_are_named() {
    let env = TestEnv::new();
    let assert = env
        .bare_cmd()
        .args(["--db", "x.db", "store", "copy", "from.db", "to.db"])
        .assert()
        .code(2);
    let hint = assert_error(
        &assert,
        "store copy names its stores as SOURCE and DESTINATION",
    );
    assert_eq!(
        hint.as_deref(),
        Some("hint: usage: autheona store copy SOURCE DESTINATION")
    );
    assert_eq!(std::fs::read_dir(env.dir()).unwrap().count(), 0);
}

/// Into a directory this user may not write, the copy fails before anything is made.
#[test]
fn a_destination_in_a_directory_one_may_not_write_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let from = Side::file(&env, "from.db");
    fill(&env, &from);
    let locked = env.dir().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    if running_as_root() {
        // The unprivileged user must reach and read the source (and own it, so that its
        // permissions are not warned about).
        std::fs::set_permissions(env.dir(), std::fs::Permissions::from_mode(0o711)).unwrap();
        for name in ["from.db", "from.db-wal", "from.db-shm"] {
            let path = env.dir().join(name);
            if path.exists() {
                std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
            }
        }
    }
    let mut cmd = env.bare_std_cmd();
    cmd.args(["store", "copy"])
        .arg(from.arg())
        .arg(locked.join("to.db"));
    let run = output(unprivileged(&cmd));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{err}");
    assert!(err.starts_with("error: cannot create database "), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);
}

/// A copy that runs out of disk midway (a tmpfs just large enough for an empty store, in a
/// private mount namespace) fails with exit 3 and keeps nothing: the new store is there,
/// empty, and holds none of the copied rows.
#[test]
fn a_copy_that_fails_midway_leaves_the_destination_empty() {
    let env = TestEnv::new();
    let from = Side::file(&env, "from.db");
    from.run(&env, &["project", "create", "demo"]);
    // Many tokens, by direct SQL (their hashes need not verify here): far more than fit.
    {
        let Side::File(path) = &from else {
            unreachable!()
        };
        let mut sql = rusqlite::Connection::open(path).unwrap();
        let tx = sql.transaction().unwrap();
        for n in 0..3000 {
            tx.execute(
                "INSERT INTO tokens (id, project_id, secret_hash, created_at) \
                 SELECT printf('%012d', ?1), id, ?2, 1800000000 FROM projects",
                rusqlite::params![
                    n,
                    format!("$argon2id$v=19$m=19456,t=2,p=1${}", "h".repeat(80))
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mount = env.dir().join("small");
    std::fs::create_dir(&mount).unwrap();
    let script = r#"
        mount -t tmpfs -o size=160k tmpfs "$2" || exit 99
        "$3" store copy "$1" "$2/to.db"; echo "copy: $?"
        "$3" --db "$2/to.db" project list --json; echo "list: $?"
        "$3" --db "$2/to.db" token list --json; echo "tokens: $?"
    "#;
    let out = std::process::Command::new("unshare")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", env.dir())
        .env("TZ", "UTC")
        .args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(from.arg())
        .arg(&mount)
        .arg(env!("CARGO_BIN_EXE_autheona"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.code() != Some(99), "cannot mount a tmpfs: {err}");
    assert!(report.contains("copy: 3"), "{report}{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains("to.db") && first.contains("full"),
        "{err}"
    );
    assert_eq!(
        report, "copy: 3\n[]\nlist: 0\n[]\ntokens: 0\n",
        "the destination is not empty: {err}"
    );
}

/// A PostgreSQL user that may not create autheona's schema gets one line saying so, and the
/// database is left without it.
#[test]
fn a_postgres_destination_whose_user_may_not_create_schemas_keeps_nothing() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    let from = Side::file(&env, "from.db");
    fill(&env, &from);
    let Side::Postgres(name) = Side::postgres() else {
        unreachable!()
    };
    let user = format!("{name}_user");
    pg::admin()
        .batch_execute(&format!(
            "CREATE ROLE {user} LOGIN PASSWORD 'pw'; GRANT CONNECT ON DATABASE {name} TO {user};"
        ))
        .unwrap();
    let assert = with_server(env.bare_cmd())
        .env("PGPASSWORD", "pw")
        .args(["store", "copy"])
        .arg(from.arg())
        .arg(format!("postgres://{user}@/{name}"))
        .assert()
        .code(3);
    assert_error(
        &assert,
        &format!("user {user} may not create schemas there"),
    );
    let made: bool = pg::connect(&name)
        .query_one("SELECT to_regnamespace('autheona') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!made, "a schema was made");
}

/// A PostgreSQL destination whose user may add projects but not tokens fails at the tokens,
/// after the projects went in: the one transaction keeps none of them.
#[test]
fn a_postgres_copy_that_fails_midway_keeps_nothing() {
    if !pg::available() {
        return;
    }
    let env = TestEnv::new();
    let from = Side::file(&env, "from.db");
    fill(&env, &from);
    let to = Side::postgres();
    let Side::Postgres(name) = &to else {
        unreachable!()
    };
    // The schema, made by its owner, and emptied of the log that made it (as a superuser,
    // past the log's triggers); then a user who may not insert tokens.
    to.run(&env, &["project", "create", "gone"]);
    to.run(&env, &["project", "delete", "gone", "--yes"]);
    let user = format!("{name}_user");
    pg::connect(name)
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             DELETE FROM autheona.events;
             RESET session_replication_role;
             CREATE ROLE {user} LOGIN PASSWORD 'pw';
             GRANT USAGE ON SCHEMA autheona TO {user};
             GRANT SELECT ON autheona.schema_version, autheona.events TO {user};
             GRANT SELECT, INSERT, DELETE ON autheona.projects TO {user};
             GRANT SELECT, DELETE ON autheona.tokens TO {user};"
        ))
        .unwrap();
    let assert = with_server(env.bare_cmd())
        .env("PGPASSWORD", "pw")
        .args(["store", "copy"])
        .arg(from.arg())
        .arg(format!("postgres://{user}@/{name}"))
        .assert()
        .code(3);
    assert_error(&assert, "permission denied for table tokens");
    assert_eq!(
        to.rows(),
        Rows {
            projects: vec![],
            tokens: vec![]
        }
    );
}

/// A file store of `count` tokens, by direct SQL (their hashes need not verify).
fn many_tokens(env: &TestEnv, name: &str, count: u32) -> Side {
    let store = Side::file(env, name);
    store.run(env, &["project", "create", "demo"]);
    let Side::File(path) = &store else {
        unreachable!()
    };
    let mut sql = rusqlite::Connection::open(path).unwrap();
    let tx = sql.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO tokens (id, project_id, secret_hash, description, created_at) \
                 SELECT printf('%012d', ?1), id, ?2, 'A description of some length', \
                 1800000000 FROM projects",
            )
            .unwrap();
        let hash = format!("$argon2id$v=19$m=19456,t=2,p=1${}", "h".repeat(80));
        for n in 0..count {
            insert.execute(rusqlite::params![n, hash]).unwrap();
        }
    }
    tx.commit().unwrap();
    store
}

/// The rows stream from one store into the other: copying ten times as many tokens takes
/// hardly more memory (holding 90,000 more rows would take more than 20 MiB).
#[test]
fn memory_stays_flat_however_many_tokens_there_are() {
    let env = TestEnv::new();
    let peak = |count: u32| {
        let from = many_tokens(&env, &format!("from-{count}.db"), count);
        let mut cmd = env.bare_std_cmd();
        cmd.args(["store", "copy"])
            .arg(from.arg())
            .arg(env.dir().join(format!("to-{count}.db")));
        peak_kib(cmd)
    };
    let (few, many) = (peak(10_000), peak(100_000));
    assert!(
        many - few < 8 * 1024,
        "10,000 tokens: {few} KiB at most; 100,000: {many} KiB"
    );
}
