use super::*;

#[test]
fn in_memory_store_has_the_current_schema() {
    let store = Store::in_memory().unwrap();
    let header = header(&store.conn).unwrap();
    assert_eq!(header.application_id, APPLICATION_ID);
    assert_eq!(header.version, SCHEMA_VERSION);
}

#[test]
fn migrating_twice_is_a_no_op() {
    let mut store = Store::in_memory().unwrap();
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
    assert!(Store::open(&path).unwrap().is_none());
    assert!(!path.exists());
}

#[test]
fn create_then_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/autheona.db");
    let store = Store::create(&path).unwrap();
    store.insert_project("demo", 1).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap().unwrap();
    assert_eq!(store.projects().unwrap()[0].name, "demo");
}

#[test]
fn deleting_a_project_deletes_its_tokens() {
    let mut store = Store::in_memory().unwrap();
    store.insert_project("demo", 1).unwrap();
    let project_id = store.project_id("demo").unwrap().unwrap();
    let token = NewToken {
        id: "AAAAAAAAAAAA",
        project_id,
        secret_hash: "hash",
        description: None,
        created_at: 1,
        expires_at: None,
    };
    assert!(store.insert_token(&token).unwrap());
    assert!(!store.insert_token(&token).unwrap(), "ids are unique");
    assert_eq!(store.delete_project("demo").unwrap(), Some(1));
    assert_eq!(store.delete_project("demo").unwrap(), None);
    assert!(store.token_for_verify("AAAAAAAAAAAA").unwrap().is_none());
}

#[test]
fn record_use_reports_a_vanished_token() {
    let store = Store::in_memory().unwrap();
    assert!(!store.record_use("AAAAAAAAAAAA", 5).unwrap());
}

#[test]
fn connections_enforce_foreign_keys_and_commit_durably() {
    let store = Store::in_memory().unwrap();
    let synchronous = |store: &Store| -> i64 {
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
        project_id: 42,
        secret_hash: "hash",
        description: None,
        created_at: 1,
        expires_at: None,
    };
    assert!(
        store.insert_token(&orphan).is_err(),
        "a token without its project"
    );
    // Revocation is durable whatever ran before it on the connection.
    store.delete_token("AAAAAAAAAAAA").unwrap();
    assert_eq!(synchronous(&store), 2, "FULL for revocation");
}

#[test]
fn many_tokens_go_in_at_once() {
    let mut store = Store::in_memory().unwrap();
    store.insert_project("demo", 1).unwrap();
    let project_id = store.project_id("demo").unwrap().unwrap();
    let ids: Vec<String> = (0..100).map(|i| format!("{i:012}")).collect();
    let inserted = store
        .insert_tokens(ids.iter().map(|id| NewToken {
            id,
            project_id,
            secret_hash: "shared",
            description: None,
            created_at: 1,
            expires_at: None,
        }))
        .unwrap();
    assert_eq!(inserted, 100);
    assert_eq!(store.project_token_count(project_id).unwrap(), 100);
}

/// SQLite is built as `.cargo/config.toml` says: without the extensions autheona does not use,
/// and with double-quoted strings refused.
#[test]
fn sqlite_is_built_without_unused_extensions() {
    let store = Store::in_memory().unwrap();
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
