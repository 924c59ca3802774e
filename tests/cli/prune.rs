//! `token prune`: revoke every expired token, or every token unused for a while, in one step.

use assert_cmd::assert::Assert;
use serde_json::{Value, json};

use crate::common::*;

fn prune(env: &TestEnv, flags: &[&str]) -> Assert {
    env.cmd().args(["token", "prune"]).args(flags).assert()
}

/// `token list` (with `flags`) as a table, as prune shows what it selects.
fn list_table(env: &TestEnv, flags: &[&str]) -> String {
    stdout(
        &env.cmd()
            .args(["token", "list"])
            .args(flags)
            .assert()
            .success(),
    )
}

fn parse(assert: &Assert) -> Value {
    serde_json::from_str(&stdout(assert)).expect("stdout is JSON only")
}

/// Two projects; in each, tokens that have expired and tokens that still work.
struct Fixture {
    /// demo, created 40 days ago for 30 days.
    expired: String,
    /// api, created 100 days ago for 90 days.
    api_expired: String,
    /// demo, created 40 days ago for 90 days.
    active_old: String,
    /// demo, created 400 days ago, never expires.
    never: String,
    /// api, created now for 30 days.
    active_new: String,
}

fn fixture(env: &TestEnv) -> Fixture {
    env.project("demo");
    env.project("api");
    Fixture {
        never: token_at(env, "-400d", "demo", "never"),
        api_expired: token_at(env, "-100d", "api", "90"),
        expired: token_at(env, "-40d", "demo", "30"),
        active_old: token_at(env, "-40d", "demo", "90"),
        active_new: env.token("api", "30"),
    }
}

#[test]
fn prune_expired_revokes_only_the_expired_tokens() {
    let env = TestEnv::new();
    let f = fixture(&env);
    let shown = list_table(&env, &["--expired"]);
    assert_eq!(shown.lines().count(), 3, "{shown}");

    let assert = prune(&env, &["--expired", "--yes"]).success();
    assert_eq!(stdout(&assert), shown, "prune lists what it revokes");
    assert_eq!(stderr(&assert), "Revoked 2 tokens.\n");

    assert_gone(&env, &f.expired);
    assert_gone(&env, &f.api_expired);
    for kept in [&f.never, &f.active_old, &f.active_new] {
        assert!(verifies(&env, kept), "{}", id_of(kept));
    }
    assert_eq!(
        ids(&list_json(&env, &[])),
        [id_of(&f.never), id_of(&f.active_old), id_of(&f.active_new)]
    );
}

#[test]
fn prune_expired_judges_by_its_own_clock() {
    let env = TestEnv::new();
    env.project("demo");
    let month = env.token("demo", "30");
    let quarter = env.token("demo", "90");
    // 31 days on, in the pruning process only: the 30-day token has expired there.
    let assert = moved_clock(&env, "+31d")
        .args(["token", "prune", "--expired", "--yes", "--json"])
        .assert()
        .success();
    assert_eq!(
        without_clock_warning(&stderr(&assert), "+31d"),
        "Revoked 1 token.\n"
    );
    assert_eq!(
        ids(parse(&assert)["tokens"].as_array().unwrap()),
        [id_of(&month)]
    );
    assert_gone(&env, &month);
    assert!(verifies(&env, &quarter));
}

#[test]
fn unused_for_counts_from_the_last_use_or_else_the_creation() {
    let env = TestEnv::new();
    env.project("demo");
    let never_used = token_at(&env, "-100d", "demo", "365");
    let used_today = token_at(&env, "-100d", "demo", "365");
    let used_long_ago = token_at(&env, "-100d", "demo", "365");
    let young = token_at(&env, "-60d", "demo", "365");
    env.verify(&used_today, &[]).success();
    let used = moved_clock(&env, "-95d")
        .arg("verify")
        .write_stdin(format!("{used_long_ago}\n"))
        .assert()
        .success();
    assert_eq!(without_clock_warning(&stderr(&used), "-95d"), "");

    let assert = prune(&env, &["--unused-for", "90", "--yes"]).success();
    assert_eq!(stderr(&assert), "Revoked 2 tokens.\n");
    let table = stdout(&assert);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains(id_of(&never_used)) && table.contains(id_of(&used_long_ago)));

    assert_gone(&env, &never_used);
    assert_gone(&env, &used_long_ago);
    assert!(
        verifies(&env, &used_today),
        "a token used today was revoked"
    );
    assert!(verifies(&env, &young), "a token 60 days old was revoked");
}

#[test]
fn project_limits_the_prune_to_that_project() {
    let env = TestEnv::new();
    let f = fixture(&env);
    let shown = list_table(&env, &["--expired", "--project", "demo"]);
    assert!(!shown.contains("Project"), "{shown}");

    let assert = prune(&env, &["--project", "demo", "--expired", "--yes"]).success();
    assert_eq!(stdout(&assert), shown);
    assert_eq!(stderr(&assert), "Revoked 1 token.\n");
    assert_gone(&env, &f.expired);
    assert_eq!(
        ids(&list_json(&env, &["--expired"])),
        [id_of(&f.api_expired)],
        "another project's token was revoked"
    );
}

#[test]
fn dry_run_lists_and_changes_nothing() {
    let env = TestEnv::new();
    let f = fixture(&env);
    let before = list_json(&env, &[]);
    let shown = list_table(&env, &["--expired"]);

    // No --yes and no terminal: a dry run asks nothing.
    let assert = prune(&env, &["--expired", "--dry-run"]).success();
    assert_eq!(stdout(&assert), shown);
    assert_eq!(
        stderr(&assert),
        "Dry run: 2 tokens would be revoked; nothing was changed.\n"
    );
    prune(&env, &["--unused-for", "30", "--dry-run", "--yes"]).success();
    assert_eq!(list_json(&env, &[]), before);

    // The listed tokens are still there: expired, not unknown; the unused ones still verify.
    env.verify(&f.expired, &[])
        .code(1)
        .stdout("invalid: expired\n");
    assert!(verifies(&env, &f.never));
    assert!(verifies(&env, &f.active_old));
}

#[test]
fn json_reports_the_dry_run_and_the_revocation() {
    let env = TestEnv::new();
    let f = fixture(&env);
    let selected = list_json(&env, &["--expired"]);
    assert_eq!(ids(&selected), [id_of(&f.api_expired), id_of(&f.expired)]);
    let before = list_json(&env, &[]);

    let dry = prune(&env, &["--expired", "--dry-run", "--json"]).success();
    assert_eq!(
        parse(&dry),
        json!({"dry_run": true, "revoked": 0, "tokens": selected})
    );
    assert_eq!(
        stderr(&dry),
        "Dry run: 2 tokens would be revoked; nothing was changed.\n"
    );
    assert_eq!(list_json(&env, &[]), before);

    let real = prune(&env, &["--expired", "--json", "--yes"]).success();
    assert_eq!(
        parse(&real),
        json!({"dry_run": false, "revoked": 2, "tokens": selected})
    );
    assert_eq!(stderr(&real), "Revoked 2 tokens.\n");
    assert_eq!(list_json(&env, &["--expired"]), Vec::<Value>::new());
    assert_gone(&env, &f.expired);
}

#[test]
fn without_a_terminal_prune_needs_yes_and_changes_nothing() {
    let env = TestEnv::new();
    fixture(&env);
    let before = list_json(&env, &[]);

    let json = prune(&env, &["--expired", "--json"]).code(2);
    let hint = assert_error(&json, "no terminal").expect("a hint");
    assert!(hint.contains("--yes"), "{hint}");

    // The table goes out first, for the person who would be asked; then the refusal.
    let table = prune(&env, &["--unused-for", "30"]).code(2);
    let err = stderr(&table);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("no terminal"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains("--yes"),
        "{err}"
    );

    assert_eq!(list_json(&env, &[]), before);
}

#[test]
fn nothing_to_prune_is_success_without_asking() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let before = list_json(&env, &[]);
    for flags in [
        &["--expired"][..],
        &["--unused-for", "1"],
        &["--expired", "--dry-run"],
    ] {
        prune(&env, flags)
            .success()
            .stdout("")
            .stderr("No tokens to prune.\n");
    }
    let assert = prune(&env, &["--expired", "--json"]).success();
    assert_eq!(
        parse(&assert),
        json!({"dry_run": false, "revoked": 0, "tokens": []})
    );
    assert_eq!(stderr(&assert), "No tokens to prune.\n");
    let assert = prune(&env, &["--expired", "--json", "--dry-run"]).success();
    assert_eq!(
        parse(&assert),
        json!({"dry_run": true, "revoked": 0, "tokens": []})
    );
    assert_eq!(list_json(&env, &[]), before);
    assert!(verifies(&env, &token));
}

#[test]
fn exactly_one_selection_and_a_positive_number_of_days() {
    let env = TestEnv::new();
    let f = fixture(&env);
    let before = list_json(&env, &[]);
    for (flags, text) in [
        (&["--yes"][..], "required"),
        (&["--dry-run"], "required"),
        (
            &["--expired", "--unused-for", "30", "--yes"],
            "cannot be used with",
        ),
        (&["--unused-for", "0", "--yes"], "invalid value '0'"),
        (&["--unused-for", "abc", "--yes"], "invalid value 'abc'"),
        (&["--unused-for", "-1", "--yes"], "'-1'"),
        (&["--unused-for=-1", "--yes"], "invalid value '-1'"),
        (&["--unused-for", "", "--yes"], "invalid value ''"),
        (&["--unused-for", "1.5", "--yes"], "invalid value '1.5'"),
    ] {
        let assert = prune(&env, flags).code(2);
        assert_error(&assert, text);
        assert_eq!(list_json(&env, &[]), before, "{flags:?}");
    }
    env.verify(&f.expired, &[])
        .code(1)
        .stdout("invalid: expired\n");
}

#[test]
fn an_unknown_project_is_refused() {
    let env = TestEnv::new();
    fixture(&env);
    let before = list_json(&env, &[]);
    for flags in [
        &["--expired", "--yes"][..],
        &["--unused-for", "1", "--dry-run"],
    ] {
        let assert = prune(&env, &[&["--project", "nope"][..], flags].concat()).code(1);
        assert_error(&assert, "no project named 'nope'");
    }
    assert_eq!(list_json(&env, &[]), before);
}

/// Where the store would be a file not there yet. A PostgreSQL database without autheona's
/// schema is refused instead, as by every command but `project create` (exit 3).
#[test]
fn without_a_database_there_is_nothing_to_prune() {
    let env = TestEnv::new();
    if backend() == Backend::Postgres {
        for flags in [
            &["--expired", "--yes"][..],
            &["--unused-for", "5", "--json"],
        ] {
            let assert = prune(&env, flags).code(3);
            let hint = assert_error(&assert, &env.missing_store_error());
            assert_eq!(hint.as_deref(), Some(env.missing_store_hint()), "{flags:?}");
        }
        assert!(!env.store_exists(), "prune created a database");
        return;
    }
    let assert = prune(&env, &["--expired", "--yes"]).success().stdout("");
    let err = stderr(&assert);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("hint: no database yet at ") && lines[0].contains("project create"),
        "{err}"
    );
    assert_eq!(lines[1], "No tokens to prune.");
    let assert = prune(&env, &["--unused-for", "5", "--json"]).success();
    assert_eq!(
        parse(&assert),
        json!({"dry_run": false, "revoked": 0, "tokens": []})
    );
    assert!(!env.store_exists(), "prune created a database");
}

/// Exit 0 from a prune with --yes means the tokens it selected are revoked, even when the
/// table it prints first cannot be written (its reader has gone: `prune ... | head -0`).
/// With --yes nobody needs to read the list before agreeing: a closed stdout does not stop the
/// prune, and the count still reaches stderr. In JSON mode too.
#[test]
fn with_yes_a_closed_stdout_still_prunes_and_reports() {
    for json in [false, true] {
        let env = TestEnv::new();
        let f = fixture(&env);
        let mut cmd = env.std_cmd();
        cmd.args(["token", "prune", "--expired", "--yes"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.stdout(closed_pipe()).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(0), "json {json}: {err}");
        assert_eq!(err, "Revoked 2 tokens.\n", "json {json}");
        assert_gone(&env, &f.expired);
        assert_gone(&env, &f.api_expired);
        assert!(verifies(&env, &f.active_new));
    }
}

#[test]
fn a_database_with_planted_sql_is_refused_and_nothing_is_revoked() {
    sqlite_only!();
    let env = TestEnv::new();
    let f = fixture(&env);
    let before = list_json(&env, &[]);
    // A trigger that would quietly undo the revocation of one token.
    env.sql()
        .batch(&format!(
            "CREATE TRIGGER keep_one AFTER DELETE ON tokens WHEN old.id = '{}'
             BEGIN INSERT INTO tokens SELECT old.id, old.project_id, old.secret_hash,
                   old.description, old.created_at, old.expires_at, old.last_used_at; END;",
            id_of(&f.expired)
        ))
        .unwrap();
    let bytes = main_and_log(env.db());
    let assert = prune(&env, &["--expired", "--yes", "--json"]).code(3);
    assert_error(&assert, "its schema has an unexpected trigger 'keep_one'");
    assert!(stdout(&assert).is_empty());
    assert_eq!(main_and_log(env.db()), bytes, "the file changed");
    env.sql().batch("DROP TRIGGER keep_one").unwrap();
    assert_eq!(list_json(&env, &[]), before);
}

/// A dry run says how many would go before it lists them, on stderr, so that the count reaches
/// the person even when stdout is gone (`| head -1`), and first in the terminal.
#[test]
fn a_dry_run_says_how_many_first_even_when_stdout_is_gone() {
    let env = TestEnv::new();
    fixture(&env);
    for flags in [
        &["--expired", "--dry-run"][..],
        &["--expired", "--dry-run", "--json"],
    ] {
        let out = env
            .std_cmd()
            .args(["token", "prune"])
            .args(flags)
            .stdout(closed_pipe())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flags:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "Dry run: 2 tokens would be revoked; nothing was changed.\n",
            "{flags:?}"
        );
    }
}

/// A dry run of a project that does not exist prints nothing on stdout, JSON included (not
/// the opening of an array).
#[test]
fn a_dry_run_of_an_unknown_project_prints_nothing() {
    let env = TestEnv::new();
    fixture(&env);
    for json in [false, true] {
        let mut flags = vec!["--expired", "--dry-run", "--project", "nope"];
        if json {
            flags.push("--json");
        }
        let assert = prune(&env, &flags).code(1);
        assert_error(&assert, "no project named 'nope'");
    }
}
