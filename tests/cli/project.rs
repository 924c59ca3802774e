use serde_json::Value;

use crate::common::*;

#[test]
fn create_then_list_as_table_and_json() {
    let env = TestEnv::new();
    let created = env.run(&["project", "create", "billing-api"]).success();
    assert_eq!(stdout(&created), "", "project create prints no data");
    assert!(stderr(&created).contains("Created project billing-api"));
    env.project("web.v2_x");
    env.token("web.v2_x", "30");

    let table = stdout(&env.run(&["project", "list"]).success());
    assert_output(
        &table,
        &[],
        r"
        Name         Created           Tokens
        billing-api  YYYY-MM-DD HH:MM  0
        web.v2_x     YYYY-MM-DD HH:MM  1
        ",
    );

    let json: Value =
        serde_json::from_str(&stdout(&env.run(&["project", "list", "--json"]).success())).unwrap();
    let projects = json.as_array().unwrap();
    assert_eq!(projects.len(), 2);
    let web = &projects[1];
    assert_eq!(keys(web), ["created_at", "name", "tokens"]);
    assert_eq!(web["name"], "web.v2_x");
    assert_eq!(web["tokens"], 1);
    let created_at = web["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");
    chrono::DateTime::parse_from_rfc3339(created_at).unwrap();
}

#[test]
fn invalid_names_are_usage_errors_and_create_nothing() {
    let env = TestEnv::new();
    let long = "a".repeat(65);
    for name in [
        "",
        "-leading-dash",
        ".hidden",
        "two words",
        "../x",
        "a/b",
        "ünï",
        &long,
        "x\u{1b}[31m",
    ] {
        let assert = env.run(&["project", "create", "--", name]).code(2);
        let err = stderr(&assert);
        assert!(err.starts_with("error: "), "{name:?}: {err}");
        assert!(err.contains("1-64 characters"), "{err}");
        assert!(
            !err.contains('\u{1b}'),
            "raw escape reached the terminal: {err:?}"
        );
    }
    assert!(
        !env.store_exists(),
        "a refused name must not create the database"
    );
    env.run(&["project", "create", &"a".repeat(64)]).success();
}

#[test]
fn taken_name_is_refused() {
    let env = TestEnv::new();
    env.project("demo");
    let assert = env.run(&["project", "create", "demo"]).code(1).stdout("");
    assert_output(
        &stderr(&assert),
        &[],
        r"
        error: a project named 'demo' already exists
        hint: choose another name; `autheona project list` shows those taken
        ",
    );
}

/// Where the store would be a file not there yet; a PostgreSQL database without autheona's
/// schema is refused instead, as by every command but `project create` (exit 3).
#[test]
fn list_without_a_database_is_empty_with_a_hint_and_creates_nothing() {
    let env = TestEnv::new();
    match backend() {
        Backend::Sqlite => {
            let table = env.run(&["project", "list"]).success();
            assert_eq!(stdout(&table), "");
            assert!(
                stderr(&table).contains("project create"),
                "{}",
                stderr(&table)
            );
            let json = env.run(&["project", "list", "--json"]).success();
            assert_eq!(stdout(&json).trim(), "[]");
        }
        Backend::Postgres => {
            for args in [&["project", "list"][..], &["project", "list", "--json"]] {
                let assert = env.run(args).code(3);
                let hint = assert_error(&assert, &env.missing_store_error());
                assert_eq!(hint.as_deref(), Some(env.missing_store_hint()), "{args:?}");
            }
        }
    }
    assert!(!env.store_exists());
}

#[test]
fn delete_needs_confirmation_without_a_terminal() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "never");
    let assert = env.run(&["project", "delete", "demo"]).code(2);
    let err = stderr(&assert);
    assert!(err.contains("1 token") && err.contains("--yes"), "{err}");
    env.verify(&token, &[]).success();
    assert!(stdout(&env.run(&["project", "list"]).success()).contains("demo"));
}

#[test]
fn delete_with_yes_revokes_its_tokens() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("keep");
    let doomed = [env.token("demo", "30"), env.token("demo", "never")];
    let kept = env.token("keep", "30");
    let assert = env.run(&["project", "delete", "demo", "--yes"]).success();
    assert!(
        stderr(&assert).contains("revoked 2 tokens"),
        "{}",
        stderr(&assert)
    );
    for token in &doomed {
        env.verify(token, &[]).code(1).stdout("invalid: unknown\n");
    }
    env.verify(&kept, &[]).success();
    assert_eq!(env.sql().count("SELECT count(*) FROM tokens"), 1);
    env.run(&["project", "delete", "demo", "-y"]).code(1);
}

#[test]
fn delete_without_a_database_is_an_environment_error() {
    let env = TestEnv::new();
    let assert = env.run(&["project", "delete", "demo", "--yes"]).code(3);
    let hint = assert_error(&assert, &env.missing_store_error());
    assert!(hint.is_some_and(|hint| hint.contains("project create")));
    assert!(!env.store_exists());
}

#[test]
fn a_name_shaped_like_a_token_is_refused_unechoed() {
    let env = TestEnv::new();
    let token = forge(&"Q".repeat(12), &"z".repeat(43));
    for name in [&token[..64], &token[..20], &format!("x-{}", &token[..30])] {
        let assert = env.run(&["project", "create", name]).code(2);
        assert_error(&assert, "looks like a token");
        assert!(
            !stderr(&assert).contains(&token[4..20]),
            "{}",
            stderr(&assert)
        );
    }
    assert!(!env.store_exists());
}

#[test]
fn a_name_holding_a_token_without_its_prefix_is_refused_unechoed() {
    let env = TestEnv::new();
    let token = forge(
        "3kTMd9aPq0Zx",
        "T0kxq8Rw2ZpLm4NvB7cYe1HsJd9GfUa3WiXo5KtQb6E",
    );
    for name in [&token[4..], &token[17..]] {
        let assert = env.run(&["project", "create", name]).code(2);
        assert_error(&assert, "looks like a token");
        assert!(
            !stderr(&assert).contains(&token[17..60]),
            "{}",
            stderr(&assert)
        );
    }
    assert!(!env.store_exists());
    // A name of letters, digits and words stays accepted.
    env.run(&["project", "create", "aut_payments_v2"]).success();
}
