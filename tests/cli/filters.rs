//! `token list` filters, the 7-day expiry notice in its Status column, and the warning `verify`
//! gives for a token about to expire.

use assert_cmd::assert::Assert;
use serde_json::Value;

use crate::common::*;

/// Tokens of every kind, created oldest first (the order `token list` shows them), with
/// libfaketime moving the clock of the creating process back.
struct Fixture {
    /// demo, created 100 days ago, never expires, never used.
    never: String,
    /// demo, created 100 days ago for 365 days, used just now.
    used: String,
    /// demo, created 100 days ago for 365 days, last used 60 days ago.
    stale: String,
    /// demo, created 40 days ago for 30 days: expired.
    expired: String,
    /// api, created 40 days ago for 30 days: expired.
    api_expired: String,
    /// api, created 29.75 days ago for 30 days: 6 hours left.
    hours: String,
    /// demo, created 25.5 days ago for 30 days: 4.5 days left.
    soon: String,
    /// demo, created 22.5 days ago for 30 days: 7.5 days left, just outside the notice.
    week: String,
    /// demo, created now for 90 days.
    fresh: String,
}

impl Fixture {
    fn new(env: &TestEnv) -> Fixture {
        env.project("demo");
        env.project("api");
        let f = Fixture {
            never: token_at(env, "-100d", "demo", "never"),
            used: token_at(env, "-100d", "demo", "365"),
            stale: token_at(env, "-100d", "demo", "365"),
            expired: token_at(env, "-40d", "demo", "30"),
            api_expired: token_at(env, "-40d", "api", "30"),
            hours: token_at(env, "-714h", "api", "30"),
            soon: token_at(env, "-612h", "demo", "30"),
            week: token_at(env, "-540h", "demo", "30"),
            fresh: env.token("demo", "90"),
        };
        let used = moved_clock(env, "-60d")
            .arg("verify")
            .write_stdin(format!("{}\n", f.stale))
            .assert()
            .success();
        assert_eq!(without_clock_warning(&stderr(&used), "-60d"), "");
        env.verify(&f.used, &[]).success();
        f
    }

    /// The ids of these tokens, in the fixture's (and the list's) order.
    fn ids(&self, tokens: &[&String]) -> Vec<String> {
        tokens.iter().map(|t| id_of(t).to_owned()).collect()
    }
}

/// The ids in the first column of a `token list` table, under its header.
fn table_ids(table: &str) -> Vec<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("ID "), "no header: {table}");
    lines
        .map(|line| line.split_whitespace().next().unwrap().to_owned())
        .collect()
}

fn list(env: &TestEnv, flags: &[&str]) -> Assert {
    env.cmd().args(["token", "list"]).args(flags).assert()
}

/// Asserts what a filtered list selects, as a table and as JSON.
fn assert_selects(env: &TestEnv, flags: &[&str], expected: &[String]) {
    let json = list_json(env, flags);
    assert_eq!(ids(&json), expected, "--json {flags:?}");
    let table = list(env, flags).success();
    if expected.is_empty() {
        assert_eq!(stdout(&table), "", "{flags:?}");
        assert_eq!(stderr(&table), "No tokens match.\n", "{flags:?}");
    } else {
        assert_eq!(table_ids(&stdout(&table)), expected, "{flags:?}");
        assert_eq!(stderr(&table), "", "{flags:?}");
    }
}

#[test]
fn each_filter_alone_selects_what_it_says() {
    let env = TestEnv::new();
    let f = Fixture::new(&env);
    let all = [
        &f.never,
        &f.used,
        &f.stale,
        &f.expired,
        &f.api_expired,
        &f.hours,
        &f.soon,
        &f.week,
        &f.fresh,
    ];
    assert_selects(&env, &[], &f.ids(&all));
    assert_selects(&env, &["--expired"], &f.ids(&[&f.expired, &f.api_expired]));
    // Only tokens that still work and have an expiry: not the expired, not the never-expiring.
    assert_selects(
        &env,
        &["--expiring-within", "7"],
        &f.ids(&[&f.hours, &f.soon]),
    );
    assert_selects(
        &env,
        &["--expiring-within", "8"],
        &f.ids(&[&f.hours, &f.soon, &f.week]),
    );
    assert_selects(
        &env,
        &["--expiring-within", "36500"],
        &f.ids(&[&f.used, &f.stale, &f.hours, &f.soon, &f.week, &f.fresh]),
    );
    assert_selects(
        &env,
        &["--unused"],
        &f.ids(&[
            &f.never,
            &f.expired,
            &f.api_expired,
            &f.hours,
            &f.soon,
            &f.week,
            &f.fresh,
        ]),
    );
    // Not used in 30 days: by the last use, else by the creation.
    assert_selects(
        &env,
        &["--unused-for", "30"],
        &f.ids(&[&f.never, &f.stale, &f.expired, &f.api_expired]),
    );
    assert_selects(
        &env,
        &["--unused-for", "29"],
        &f.ids(&[&f.never, &f.stale, &f.expired, &f.api_expired, &f.hours]),
    );
    assert_selects(&env, &["--unused-for", "101"], &[]);
}

#[test]
fn filters_combine_and_respect_the_project() {
    let env = TestEnv::new();
    let f = Fixture::new(&env);
    assert_selects(
        &env,
        &["--unused", "--unused-for", "30"],
        &f.ids(&[&f.never, &f.expired, &f.api_expired]),
    );
    assert_selects(
        &env,
        &["--unused-for", "30", "--expired"],
        &f.ids(&[&f.expired, &f.api_expired]),
    );
    assert_selects(
        &env,
        &["--unused", "--expiring-within", "100"],
        &f.ids(&[&f.hours, &f.soon, &f.week, &f.fresh]),
    );
    assert_selects(
        &env,
        &["--unused-for", "90", "--expiring-within", "365"],
        &f.ids(&[]),
    );
    assert_selects(&env, &["--expired", "--unused-for", "50"], &[]);

    assert_selects(
        &env,
        &["--expired", "--project", "demo"],
        &f.ids(&[&f.expired]),
    );
    assert_selects(
        &env,
        &["--project", "api", "--expiring-within", "7"],
        &f.ids(&[&f.hours]),
    );
    assert_selects(
        &env,
        &["-p", "api", "--unused-for", "30", "--expired"],
        &f.ids(&[&f.api_expired]),
    );
    assert_selects(
        &env,
        &["-p", "api", "--unused-for", "30", "--expiring-within", "7"],
        &[],
    );
    let table = stdout(&list(&env, &["--expired", "--project", "demo"]).success());
    assert!(
        !table.lines().next().unwrap().contains("Project"),
        "{table}"
    );

    let unknown = list(&env, &["--project", "nope", "--expired"]).code(1);
    assert_error(&unknown, "no project named 'nope'");
    // JSON too prints nothing, not the opening of an array (assert_error: stdout is empty).
    let unknown = list(&env, &["--project", "nope", "--json"]).code(1);
    assert_error(&unknown, "no project named 'nope'");
    let malformed = list(&env, &["--project", "bad name", "--json"]).code(2);
    assert_error(&malformed, "invalid project name");
}

#[test]
fn nothing_matching_is_not_an_error() {
    let env = TestEnv::new();
    env.project("demo");
    env.token("demo", "30");
    list(&env, &["--expired"])
        .success()
        .stdout("")
        .stderr("No tokens match.\n");
    list(&env, &["--expired", "--json"])
        .success()
        .stdout("[]\n")
        .stderr("");

    // Without a database: the same, after the hint that there is none. (A PostgreSQL database
    // without autheona's schema is refused, as by every command but `project create`.)
    let empty = TestEnv::new();
    match backend() {
        Backend::Sqlite => {
            let assert = list(&empty, &["--unused"]).success().stdout("");
            let err = stderr(&assert);
            assert!(err.starts_with("hint: no database yet at "), "{err}");
            assert!(err.ends_with("\nNo tokens match.\n"), "{err}");
        }
        Backend::Postgres => {
            let assert = list(&empty, &["--unused"]).code(3);
            assert_error(&assert, &empty.missing_store_error());
        }
    }
    assert!(!empty.store_exists());
}

#[test]
fn bad_filter_values_are_usage_errors() {
    let env = TestEnv::new();
    env.project("demo");
    let conflict = list(&env, &["--expired", "--expiring-within", "3"]).code(2);
    assert_error(&conflict, "cannot be used with");
    for flag in ["--expiring-within", "--unused-for"] {
        for (value, text) in [
            ("0", "invalid value '0'"),
            ("-3", "'-3'"),
            ("abc", "invalid value 'abc'"),
            ("2.5", "invalid value '2.5'"),
            ("", "invalid value ''"),
        ] {
            let assert = list(&env, &[flag, value]).code(2);
            assert_error(&assert, text);
            let assert = list(&env, &[&format!("{flag}={value}"), "--json"]).code(2);
            assert_error(&assert, "invalid value");
        }
        let missing = list(&env, &[flag]).code(2);
        assert_error(&missing, flag);
    }
}

/// The row of a token in a `token list` table.
fn table_row<'a>(table: &'a str, token: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.starts_with(id_of(token)))
        .unwrap_or_else(|| panic!("{} is not in\n{table}", id_of(token)))
        .trim_end()
}

#[test]
fn the_table_shows_tokens_expiring_within_7_days_and_json_keeps_them_active() {
    let env = TestEnv::new();
    let f = Fixture::new(&env);
    let table = stdout(&list(&env, &[]).success());
    for (token, status) in [
        (&f.hours, "expiring in 5 hours"),
        (&f.soon, "expiring in 4 days"),
        (&f.week, "active"),
        (&f.fresh, "active"),
        (&f.never, "active"),
        (&f.expired, "expired"),
    ] {
        let row = table_row(&table, token);
        assert!(row.ends_with(&format!("  {status}")), "{status}: {row}");
        assert_eq!(
            row.matches("expiring").count(),
            usize::from(status.starts_with("expiring"))
        );
    }
    let api = stdout(&list(&env, &["--project", "api"]).success());
    assert!(
        table_row(&api, &f.hours).ends_with("  expiring in 5 hours"),
        "{api}"
    );

    let json = list_json(&env, &[]);
    for token in [&f.hours, &f.soon, &f.week] {
        let row = json.iter().find(|t| t["id"] == id_of(token)).unwrap();
        assert_eq!(row["status"], "active", "{row}");
    }
}

/// The warning `verify` gives for a token that expires within 7 days.
fn expiry_warning(env: &TestEnv, token: &str, left: &str) -> String {
    let id = id_of(token);
    let expires = for_people(&listed(env, id)["expires_at"]);
    format!(
        "warning: token {id} expires {expires}, in {left}; replace it in time: autheona token \
         rotate {id}\n"
    )
}

fn valid_line(env: &TestEnv, token: &str) -> String {
    let id = id_of(token);
    let row = listed(env, id);
    format!(
        "valid: token {id} (project {}, expires {})\n",
        row["project"].as_str().unwrap(),
        for_people(&row["expires_at"])
    )
}

#[test]
fn verify_warns_on_stderr_when_the_token_expires_within_7_days() {
    let env = TestEnv::new();
    let f = Fixture::new(&env);
    for (token, left) in [(&f.soon, "4 days"), (&f.hours, "5 hours")] {
        let warning = expiry_warning(&env, token, left);
        env.verify(token, &[])
            .success()
            .stdout(valid_line(&env, token))
            .stderr(warning.clone());
        env.verify(token, &["--quiet"])
            .success()
            .stdout("")
            .stderr(warning.clone());

        let assert = env.verify(token, &["--json"]).success().stderr(warning);
        let json: Value = serde_json::from_str(&stdout(&assert)).unwrap();
        let plain: Value =
            serde_json::from_str(&stdout(&env.verify(&f.fresh, &["--json"]).success())).unwrap();
        assert_eq!(keys(&json), keys(&plain));
        assert_eq!(json["valid"], true);
        assert_eq!(json["reason"], Value::Null);
        assert_eq!(json["id"], id_of(token));
        assert_eq!(json["expires_at"], listed(&env, id_of(token))["expires_at"]);
    }
}

#[test]
fn verify_warns_when_the_clock_reaches_the_last_7_days() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    // 24.5 days on, in the verifying process only: 5.5 days left.
    let soon = moved_clock(&env, "+588h")
        .arg("verify")
        .write_stdin(format!("{token}\n"))
        .assert()
        .success()
        .stdout(valid_line(&env, &token));
    assert_eq!(
        without_clock_warning(&stderr(&soon), "+588h"),
        expiry_warning(&env, &token, "5 days")
    );
    // 22.5 days on: 7.5 days left, no warning yet.
    let later = moved_clock(&env, "+540h")
        .arg("verify")
        .write_stdin(format!("{token}\n"))
        .assert()
        .success();
    assert_eq!(without_clock_warning(&stderr(&later), "+540h"), "");
}

#[test]
fn verify_does_not_warn_with_more_than_7_days_left_never_or_expired() {
    let env = TestEnv::new();
    let f = Fixture::new(&env);
    for token in [&f.week, &f.fresh, &f.used] {
        env.verify(token, &[])
            .success()
            .stdout(valid_line(&env, token))
            .stderr("");
        env.verify(token, &["--json"]).success().stderr("");
    }
    env.verify(&f.never, &[])
        .success()
        .stdout(format!(
            "valid: token {} (project demo, never expires)\n",
            id_of(&f.never)
        ))
        .stderr("");
    env.verify(&f.expired, &[])
        .code(1)
        .stdout("invalid: expired\n")
        .stderr("");
    env.verify(&f.expired, &["--quiet"]).code(1).stderr("");
    // A token expiring soon but of another project is not valid there, and not warned about.
    env.verify(&f.hours, &["--project", "demo"])
        .code(1)
        .stdout("invalid: wrong_project\n")
        .stderr("");
}
