use super::*;
use crate::store::{Durability, Inserted, NewToken, Store, TokenQuery, TokenRow};

#[test]
fn in_memory_store_has_the_current_schema() {
    let store = Sqlite::in_memory().unwrap();
    let header = header(&store.conn).unwrap();
    assert_eq!(header.application_id, APPLICATION_ID);
    assert_eq!(header.version, SCHEMA_VERSION);
}

#[test]
fn migrating_twice_is_a_no_op() {
    let mut store = Sqlite::in_memory().unwrap();
    store.migrate().unwrap();
    assert!(store.insert_project("demo", 1).unwrap());
    assert!(
        !store.insert_project("demo", 2).unwrap(),
        "names are unique"
    );
}

#[test]
fn open_reports_a_missing_file_as_none_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    assert!(Sqlite::open(&path).unwrap().is_none());
    assert!(!path.exists());
}

#[test]
fn create_then_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/autheona.db");
    let store = Sqlite::create(&path).unwrap();
    store.insert_project("demo", 1).unwrap();
    drop(store);
    let store = Sqlite::open(&path).unwrap().unwrap();
    let mut names = Vec::new();
    store
        .projects(
            0,
            &mut [&mut |row| {
                names.push(row.name);
                std::ops::ControlFlow::Continue(())
            }],
        )
        .unwrap();
    assert_eq!(names, ["demo"]);
}

#[test]
fn deleting_a_project_deletes_its_tokens() {
    let store = Sqlite::in_memory().unwrap();
    store.insert_project("demo", 1).unwrap();
    let token = NewToken {
        id: "AAAAAAAAAAAA",
        project: "demo",
        secret_hash: "hash",
        description: None,
        created_at: 1,
        expires_at: None,
    };
    assert_eq!(
        store.insert_token(&token, Durability::Deferred).unwrap(),
        Inserted::Done
    );
    assert_eq!(
        store.insert_token(&token, Durability::Deferred).unwrap(),
        Inserted::IdTaken,
        "ids are unique"
    );
    assert_eq!(store.delete_project("demo", 0).unwrap(), Some(1));
    assert_eq!(store.delete_project("demo", 0).unwrap(), None);
    assert!(store.token_for_verify("AAAAAAAAAAAA").unwrap().is_none());
}

#[test]
fn record_use_reports_a_vanished_token() {
    let store = Sqlite::in_memory().unwrap();
    assert!(!store.record_use("AAAAAAAAAAAA", 5).unwrap());
}

#[test]
fn connections_enforce_foreign_keys_and_commit_durably() {
    let store = Sqlite::in_memory().unwrap();
    let synchronous = |store: &Sqlite| -> i64 {
        store
            .conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    };
    assert_eq!(synchronous(&store), 2, "FULL");
    let secure_delete: i64 = store
        .conn
        .pragma_query_value(None, "secure_delete", |row| row.get(0))
        .unwrap();
    assert_eq!(secure_delete, 1);
    let orphan = NewToken {
        id: "AAAAAAAAAAAA",
        project: "nowhere",
        secret_hash: "hash",
        description: None,
        created_at: 1,
        expires_at: None,
    };
    assert_eq!(
        store.insert_token(&orphan, Durability::Deferred).unwrap(),
        Inserted::NoProject,
        "a token without its project"
    );
    let dangling = store.conn.execute(
        "INSERT INTO tokens (id, project_id, secret_hash, created_at) VALUES ('B', 42, 'h', 1)",
        [],
    );
    assert!(dangling.is_err(), "foreign keys are enforced");
    // Revocation is durable whatever ran before it on the connection.
    store
        .delete_token("AAAAAAAAAAAA", 0, crate::store::Removal::Revoked)
        .unwrap();
    assert_eq!(synchronous(&store), 2, "FULL for revocation");
}

#[test]
fn many_tokens_go_in_at_once() {
    let store = Sqlite::in_memory().unwrap();
    store.insert_project("demo", 1).unwrap();
    let ids: Vec<String> = (0..100).map(|i| format!("{i:012}")).collect();
    let inserted = store
        .insert_tokens(&mut ids.iter().map(|id| NewToken {
            id,
            project: "demo",
            secret_hash: "shared",
            description: None,
            created_at: 1,
            expires_at: None,
        }))
        .unwrap();
    assert_eq!(inserted, 100);
    assert_eq!(store.project_token_count("demo", 0).unwrap(), Some(100));
}

/// SQLite is built as `.cargo/config.toml` says: without the extensions autheona does not use,
/// and with double-quoted strings refused.
#[test]
fn sqlite_is_built_without_unused_extensions() {
    let store = Sqlite::in_memory().unwrap();
    let options: Vec<String> = store
        .conn
        .prepare("PRAGMA compile_options")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for absent in [
        "ENABLE_FTS3",
        "ENABLE_FTS5",
        "ENABLE_RTREE",
        "ENABLE_DBSTAT_VTAB",
    ] {
        assert!(
            !options.iter().any(|o| o == absent),
            "{absent} in {options:?}"
        );
    }
    for present in ["OMIT_LOAD_EXTENSION", "OMIT_JSON", "DQS=0"] {
        assert!(
            options.iter().any(|o| o == present),
            "{present} not in {options:?}"
        );
    }
    let quoted = store
        .conn
        .query_row(r#"SELECT "not a column""#, [], |_| Ok(()));
    assert!(quoted.is_err(), "a double-quoted string is an identifier");
}

/// The schema each version's migrations make, from an empty file, is the one `schema.rs`
/// expects of that version (`schema-N.txt`). With `AUTHEONA_REGENERATE=1` it writes them.
#[test]
fn expected_schemas_are_what_the_migrations_make() {
    assert_eq!(
        schema::EXPECTED.len(),
        schema::MIGRATIONS.len(),
        "one schema-N.txt per migration"
    );
    let conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    for (index, sql) in schema::MIGRATIONS.iter().enumerate() {
        let version = index as i32 + 1;
        conn.execute_batch(sql).unwrap();
        let dump = schema::dump(&conn).unwrap();
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/store/sqlite")
            .join(format!("schema-{version}.txt"));
        if std::env::var_os("AUTHEONA_REGENERATE").is_some() {
            std::fs::write(&file, &dump).unwrap();
        } else {
            assert!(
                schema::is_expected(version, &dump),
                "{} is stale: AUTHEONA_REGENERATE=1 cargo test --lib expected_schemas",
                file.display()
            );
        }
    }
}

/// A deleted project's id is never given to another: a token whose project was resolved
/// before the delete cannot land in the project created after it.
#[test]
fn a_deleted_projects_id_is_never_reused() {
    let store = Sqlite::in_memory().unwrap();
    store.insert_project("old", 1).unwrap();
    let old_id = project_id(&store.conn, "old");
    store.delete_project("old", 0).unwrap();
    store.insert_project("new", 2).unwrap();
    assert_ne!(project_id(&store.conn, "new"), old_id);
}

fn project_id(conn: &Connection, name: &str) -> i64 {
    conn.query_row("SELECT id FROM projects WHERE name = ?1", [name], |row| {
        row.get(0)
    })
    .unwrap()
}

/// A version 1 file (project ids that could be reused) migrates to version 2 with every
/// project and token as it was, its tokens still cascading with their project and still
/// immutable.
#[test]
fn version_1_migrates_with_every_row_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};
             PRAGMA journal_mode = WAL;
             INSERT INTO projects VALUES (1, 'a', 10), (2, 'b', 20);
             INSERT INTO tokens VALUES ('AAAAAAAAAAAA', 2, 'h1', 'kept', 30, 40, 35);
             INSERT INTO tokens VALUES ('BBBBBBBBBBBB', 1, 'h2', NULL, 31, NULL, NULL);"
        ))
        .unwrap();
    }
    let store = Sqlite::open(&path).unwrap().unwrap();
    assert_eq!(header(&store.conn).unwrap().version, SCHEMA_VERSION);
    let mut listed: Vec<TokenRow> = Vec::new();
    assert!(
        store
            .tokens(
                &TokenQuery::default(),
                &mut [&mut |row| {
                    listed.push(row);
                    std::ops::ControlFlow::Continue(())
                }]
            )
            .unwrap()
    );
    assert_eq!(
        listed
            .iter()
            .map(|t| (t.id.as_str(), t.project.as_str()))
            .collect::<Vec<_>>(),
        [("AAAAAAAAAAAA", "b"), ("BBBBBBBBBBBB", "a")]
    );
    assert_eq!(listed[0].description.as_deref(), Some("kept"));
    assert_eq!(listed[0].last_used_at, Some(35));
    let row = store.token_for_verify("AAAAAAAAAAAA").unwrap().unwrap();
    assert_eq!((row.secret_hash.as_str(), row.expires_at), ("h1", Some(40)));
    assert!(
        store
            .conn
            .execute("UPDATE tokens SET description = 'x'", [])
            .is_err(),
        "still immutable"
    );
    assert_eq!(store.delete_project("b", 0).unwrap(), Some(1));
    assert!(store.token_for_verify("AAAAAAAAAAAA").unwrap().is_none());
    store.insert_project("c", 50).unwrap();
    assert_eq!(project_id(&store.conn, "c"), 3, "id 2 is not reused");
}

/// Anything in the file's schema that autheona did not make is refused on opening, with one
/// line that names it, and the file is left as it was.
#[test]
fn a_schema_autheona_did_not_make_is_refused() {
    let cases = [
        (
            "CREATE TRIGGER keep AFTER DELETE ON tokens BEGIN SELECT 1; END;",
            "an unexpected trigger 'keep'",
        ),
        (
            "DROP TRIGGER tokens_are_immutable;",
            "no trigger 'tokens_are_immutable'",
        ),
        ("CREATE VIEW v AS SELECT 1;", "an unexpected view 'v'"),
        (
            "PRAGMA writable_schema = ON;
             INSERT INTO sqlite_schema (type, name, tbl_name, rootpage, sql)
             VALUES ('trigger', 'sqlite_stat9', 'tokens', 0,
                     'CREATE TRIGGER sqlite_stat9 AFTER DELETE ON tokens BEGIN SELECT 1; END');",
            "an unexpected trigger 'sqlite_stat9'",
        ),
        (
            "CREATE INDEX by_hash ON tokens (secret_hash);",
            "an unexpected index 'by_hash'",
        ),
        (
            "DROP TRIGGER tokens_are_immutable;
             CREATE TRIGGER tokens_are_immutable BEFORE UPDATE OF id ON tokens
             BEGIN SELECT 1; END;",
            "a changed trigger 'tokens_are_immutable'",
        ),
    ];
    for (sql, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        Sqlite::create(&path).unwrap();
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = Sqlite::open(&path).unwrap_err();
        assert_eq!(err.kind(), crate::store::StoreErrorKind::Tampered, "{sql}");
        assert!(err.message().ends_with(named), "{sql}: {}", err.message());
        assert!(!err.message().contains('\n'), "{}", err.message());
        assert!(Sqlite::open_read_only(&path).is_err(), "{sql}: completion");
        assert_eq!(std::fs::read(&path).unwrap(), before, "{sql}: file changed");
    }
}

/// ANALYZE's statistics tables only steer the query planner: a file with them is still ours.
#[test]
fn statistics_tables_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    Sqlite::create(&path).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch("ANALYZE")
        .unwrap();
    assert!(Sqlite::open(&path).unwrap().is_some());
}

/// `serve` makes verify's lookup on every request, on one connection, with another id each
/// time: SQLite must run the statement it prepared, not parse and plan it again.
#[test]
fn the_verify_lookup_is_prepared_once_on_a_connection() {
    let store = Sqlite::in_memory().unwrap();
    for id in ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"] {
        assert!(store.token_for_verify(id).unwrap().is_none());
    }
    let lookup = store.conn.prepare_cached(queries::VERIFY_LOOKUP).unwrap();
    assert_eq!(lookup.get_status(rusqlite::StatementStatus::Run), 3);
    assert_eq!(lookup.get_status(rusqlite::StatementStatus::RePrepare), 0);
}
