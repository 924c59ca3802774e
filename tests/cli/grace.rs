//! `token rotate ID --grace DURATION` (issue 15): the old token keeps working beside its
//! replacement until its scheduled end, then is refused everywhere (verify, list, scan,
//! serve) as if revoked at that instant, and its row goes with the next command that writes.
//! The end is set once, by the schema, on both stores.
//!
//! Rotations run with the real clock; what happens around the end is seen with the clock of
//! one process stopped at an absolute instant ([`at`]): the second before the end, the end
//! itself and the second after it.

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::common::*;

use crate::serve::harness;

// ---------------------------------------------------------------------------------------------
// Rotations, clocks and what the commands say.

/// `token rotate ID --yes FLAGS`.
fn rotate(env: &TestEnv, id: &str, flags: &[&str]) -> Assert {
    env.cmd()
        .args(["token", "rotate", id, "--yes"])
        .args(flags)
        .assert()
}

/// A rotation with a grace period, as its `--json` told it.
struct Rotation {
    /// The token rotated, which works until `stops_at`.
    old: String,
    /// Its replacement.
    new: String,
    stops_at: DateTime<Utc>,
    json: Value,
    stderr: String,
}

impl Rotation {
    fn old_id(&self) -> &str {
        id_of(&self.old)
    }

    fn new_id(&self) -> &str {
        id_of(&self.new)
    }

    /// The warning `verify` of the old token prints, with `left` as the time it has left.
    fn warning(&self, left: &str) -> String {
        format!(
            "warning: token {} was replaced by token {} and stops working at {}, in {left}: \
             switch to the new token\n",
            self.old_id(),
            self.new_id(),
            people(self.stops_at)
        )
    }
}

/// Rotates `old` with `--grace GRACE --json`, which must succeed.
fn rotate_with_grace(env: &TestEnv, old: &str, grace: &str) -> Rotation {
    let assert = rotate(env, id_of(old), &["--grace", grace, "--json"]).success();
    let json: Value = serde_json::from_str(&stdout(&assert)).expect("stdout is JSON only");
    Rotation {
        old: old.to_owned(),
        new: json["token"].as_str().expect("a token").to_owned(),
        stops_at: json_date(&json["old_token_stops_at"]),
        stderr: stderr(&assert),
        json,
    }
}

/// A 30-day token of project demo (made here), rotated with `--grace GRACE`.
fn demo_rotated(env: &TestEnv, grace: &str) -> Rotation {
    env.project("demo");
    let old = env.token("demo", "30");
    rotate_with_grace(env, &old, grace)
}

/// A time as tables and status lines show it (the tests' TZ is UTC).
fn people(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M").to_string()
}

fn second(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// `env.cmd()` whose wall clock is stopped at `instant`, to the second: libfaketime's absolute
/// FAKETIME (`YYYY-MM-DD HH:MM:SS`, in the tests' TZ, UTC). The monotonic clock stays real, so
/// that timeouts and waits work as always.
fn at(env: &TestEnv, instant: DateTime<Utc>) -> Command {
    let mut cmd = env.cmd();
    cmd.env("FAKETIME", instant.format("%Y-%m-%d %H:%M:%S").to_string())
        .env("DONT_FAKE_MONOTONIC", "1")
        .env("LD_PRELOAD", faketime_lib());
    cmd
}

/// `args` run with the clock at `instant`, and its stderr without the clock warning.
fn run_at(env: &TestEnv, instant: DateTime<Utc>, args: &[&str]) -> (Assert, String) {
    let assert = at(env, instant).args(args).assert();
    let err = without_clock_warning_at(&stderr(&assert), instant);
    (assert, err)
}

/// `verify FLAGS` of `token` with the clock at `instant`, and its stderr without the clock
/// warning.
fn verify_at(
    env: &TestEnv,
    token: &str,
    instant: DateTime<Utc>,
    flags: &[&str],
) -> (Assert, String) {
    let assert = at(env, instant)
        .arg("verify")
        .args(flags)
        .write_stdin(format!("{token}\n"))
        .assert();
    let err = without_clock_warning_at(&stderr(&assert), instant);
    (assert, err)
}

/// `stderr` of a command whose clock was at `instant`, without the line the PostgreSQL pass
/// prints first when this host's clock is more than 30 s from the database server's
/// (`warning: this host's clock is N s ahead of ...`). The line must be there when the clocks
/// are well apart (over 35 s), may be there near the limit, and is never there on SQLite.
#[track_caller]
fn without_clock_warning_at(stderr: &str, instant: DateTime<Utc>) -> String {
    let apart = (instant - Utc::now()).num_seconds().abs();
    let first = stderr.split_inclusive('\n').next().unwrap_or("");
    let warned = first.starts_with("warning: this host's clock is ");
    match backend() {
        Backend::Postgres => {
            assert!(
                warned || apart <= 35,
                "expected the clock warning for a clock {apart} s off first on stderr:\n{stderr}"
            );
            if warned {
                stderr[first.len()..].to_owned()
            } else {
                stderr.to_owned()
            }
        }
        Backend::Sqlite => {
            assert!(
                !stderr.contains("clock is"),
                "a clock warning without a server:\n{stderr}"
            );
            stderr.to_owned()
        }
    }
}

/// `token list --json` with the clock at `instant`.
fn list_json_at(env: &TestEnv, instant: DateTime<Utc>) -> Vec<Value> {
    let (assert, err) = run_at(env, instant, &["token", "list", "--json"]);
    let assert = assert.success();
    assert_eq!(err, "", "token list");
    serde_json::from_str::<Value>(&stdout(&assert))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Whether `token list --json` rows hold the token with this id.
fn lists(rows: &[Value], id: &str) -> bool {
    rows.iter().any(|row| row["id"] == id)
}

/// How many rows of the store hold the token with this id, whether it is listed or not.
fn rows_of(env: &TestEnv, id: &str) -> i64 {
    env.sql()
        .count(&format!("SELECT count(*) FROM tokens WHERE id = '{id}'"))
}

/// The argon2 hash stored for the token with this id.
fn hash_of(env: &TestEnv, id: &str) -> String {
    env.sql()
        .value(&format!("SELECT secret_hash FROM tokens WHERE id = '{id}'"))
        .expect("the token's hash")
}

/// The token's row has gone from the store, its hash with it: nothing in the database files
/// (or the PostgreSQL schema's rows) holds the hash any more.
#[track_caller]
fn assert_row_deleted(env: &TestEnv, id: &str, hash: &str, after: &str) {
    assert_eq!(rows_of(env, id), 0, "the stopped token's row after {after}");
    let hash_part = hash.rsplit('$').next().unwrap();
    assert!(
        !contains(&env.store_content(), hash_part.as_bytes()),
        "the stopped token's hash lingers after {after}"
    );
}

/// The line of `token list`'s table that starts with this id.
fn table_line(table: &str, id: &str) -> String {
    table
        .lines()
        .find(|line| line.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not in:\n{table}"))
        .to_owned()
}

/// The second line of a `token create`: the "only time the token is shown" line, which a
/// rotation ends with too.
fn shown_once_line(env: &TestEnv) -> String {
    let created = env.run(&["token", "create", "-p", "demo", "-e", "30"]);
    let line = stderr(&created.success())
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(line.contains("only time"), "{line}");
    line
}

/// `project list --json`: the token count of each project, by name.
fn token_counts(env: &TestEnv, instant: DateTime<Utc>) -> Vec<(String, i64)> {
    let (assert, err) = run_at(env, instant, &["project", "list", "--json"]);
    let assert = assert.success();
    assert_eq!(err, "", "project list");
    let projects: Value = serde_json::from_str(&stdout(&assert)).unwrap();
    projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["tokens"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A command line as the writers of a test return it.
fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|&arg| arg.to_owned()).collect()
}

/// The table the raw UPDATEs go to: the product's schema on PostgreSQL, named in full.
fn tokens_table() -> &'static str {
    match backend() {
        Backend::Sqlite => "tokens",
        Backend::Postgres => "autheona.tokens",
    }
}

// ---------------------------------------------------------------------------------------------
// In grace: both tokens work, and everything says until when.

#[test]
fn with_a_grace_period_both_tokens_work_and_every_command_says_until_when() {
    let env = TestEnv::new();
    env.project("demo");
    let shown_once = shown_once_line(&env);
    let old = env.described_token("demo", "90", "CI runner");
    let before = listed(&env, id_of(&old));

    let started = Utc::now();
    let r = rotate_with_grace(&env, &old, "1h");
    let ended = Utc::now();

    // --json: the documented keys, the replacement and the old token's end.
    assert_eq!(
        keys(&r.json),
        [
            "created_at",
            "description",
            "expires_at",
            "id",
            "old_token_stops_at",
            "project",
            "replaces",
            "token"
        ]
    );
    assert_eq!(r.json["id"], r.new_id());
    assert_eq!(r.json["replaces"], r.old_id());
    assert_eq!(r.json["project"], "demo");
    assert_eq!(r.json["description"], "CI runner");
    assert_eq!(lifetime(&r.json), Some(TimeDelta::days(90)));
    assert_eq!(
        r.stops_at,
        json_date(&r.json["created_at"]) + TimeDelta::hours(1),
        "one hour after the rotation"
    );
    let stops = r.stops_at.timestamp();
    assert!(
        started.timestamp() + 3600 <= stops && stops <= ended.timestamp() + 3600,
        "{} is not an hour after the rotation ({started} to {ended})",
        r.stops_at
    );
    assert_eq!(
        r.stderr,
        format!(
            "Rotated token {}: it keeps working until {}, then stops. Its replacement is token \
             {} for project demo (expires {}).\n{shown_once}\n",
            r.old_id(),
            people(r.stops_at),
            r.new_id(),
            for_people(&r.json["expires_at"])
        )
    );

    // verify: both are valid; the old one warns, even with --quiet; the new one does not.
    let verified = env.verify(&old, &[]).success();
    assert_eq!(
        stdout(&verified),
        format!(
            "valid: token {} (project demo, expires {})\n",
            r.old_id(),
            for_people(&before["expires_at"])
        )
    );
    // The time left depends on when verify ran: its wording is checked with a stopped clock
    // (the_old_token_works_until_the_second_before_its_end_and_never_from_its_end).
    let expected = r.warning("LEFT");
    let (head, tail) = expected.split_once("LEFT").unwrap();
    let assert_warned = |assert: &Assert| {
        let warning = stderr(assert);
        assert!(
            warning.starts_with(head) && warning.ends_with(tail) && warning.lines().count() == 1,
            "expected one line {expected:?}, got:\n{warning}"
        );
    };
    assert_warned(&verified);
    assert_warned(&env.verify(&old, &["--quiet"]).success().stdout(""));
    env.verify(&r.new, &["--project", "demo"])
        .success()
        .stderr("")
        .stdout(format!(
            "valid: token {} (project demo, expires {})\n",
            r.new_id(),
            for_people(&r.json["expires_at"])
        ));

    // token list: the old token's status says it is replaced, and until when.
    let table = stdout(&env.run(&["token", "list"]).success());
    let old_line = table_line(&table, r.old_id());
    assert!(
        old_line.ends_with(&format!("  replaced, stops {}", people(r.stops_at))),
        "{table}"
    );
    assert!(
        table_line(&table, r.new_id()).ends_with("  active"),
        "{table}"
    );
    // token list --json: status stays active; stops_at and replaced_by on every row, null
    // unless replaced; nothing else of the old token was edited.
    let rows = list_json(&env, &[]);
    for row in &rows {
        assert_eq!(
            keys(row),
            [
                "created_at",
                "description",
                "expires_at",
                "id",
                "last_used_at",
                "project",
                "replaced_by",
                "status",
                "stops_at"
            ]
        );
    }
    let old_row = listed(&env, r.old_id());
    assert_eq!(old_row["status"], "active");
    assert_eq!(old_row["stops_at"], r.json["old_token_stops_at"]);
    assert_eq!(old_row["replaced_by"], r.new_id());
    for key in ["project", "description", "created_at", "expires_at"] {
        assert_eq!(
            old_row[key], before[key],
            "the old token's {key} was edited"
        );
    }
    let new_row = listed(&env, r.new_id());
    assert_eq!(new_row["status"], "active");
    assert_eq!(new_row["stops_at"], Value::Null);
    assert_eq!(new_row["replaced_by"], Value::Null);
    assert_eq!(before["stops_at"], Value::Null);
    assert_eq!(before["replaced_by"], Value::Null);
}

#[test]
fn the_old_token_works_until_the_second_before_its_end_and_never_from_its_end() {
    let env = TestEnv::new();
    env.project("demo");
    // Refused at the very instant of its end, and a second after it: a token each, for the
    // first verify that refuses one also deletes it.
    for after in [0, 1] {
        let old = env.token("demo", "30");
        let r = rotate_with_grace(&env, &old, "1h");
        let (before, stopped) = (r.stops_at - second(1), r.stops_at + second(after));

        // A second before: valid, with the warning (the time left counted in minutes, at
        // least one), with --quiet too; listed as replaced; the new one valid, silently.
        let (verified, err) = verify_at(&env, &r.old, before, &[]);
        verified.success().stdout(format!(
            "valid: token {} (project demo, expires {})\n",
            r.old_id(),
            for_people(&r.json["expires_at"])
        ));
        assert_eq!(err, r.warning("1 minute"));
        let (quiet, err) = verify_at(&env, &r.old, before, &["--quiet"]);
        quiet.success().stdout("");
        assert_eq!(err, r.warning("1 minute"), "--quiet");
        let (verified, err) = verify_at(&env, &r.old, r.stops_at - TimeDelta::minutes(150), &[]);
        verified.success();
        assert_eq!(err, r.warning("2 hours"), "150 minutes before its end");
        let listed_before = list_json_at(&env, before);
        assert!(
            lists(&listed_before, r.old_id()),
            "not listed a second before its end"
        );
        let (new, err) = verify_at(&env, &r.new, before, &[]);
        new.success();
        assert_eq!(err, "", "the new token warns");

        // From its end: unknown, as a revoked token; not listed; the new one still valid.
        let listed_after = list_json_at(&env, stopped);
        assert!(
            !lists(&listed_after, r.old_id()),
            "listed {after} s after its end"
        );
        assert!(lists(&listed_after, r.new_id()));

        // Nor can it be revoked or rotated any more, though its row is still there: there is
        // no such token.
        assert_eq!(rows_of(&env, r.old_id()), 1);
        for args in [
            vec!["token", "revoke", r.old_id(), "--yes"],
            vec!["token", "rotate", r.old_id(), "--yes"],
            vec!["token", "rotate", r.old_id(), "--yes", "--grace", "1h"],
        ] {
            let (assert, err) = run_at(&env, stopped, &args);
            let assert = assert.code(1);
            assert_eq!(stdout(&assert), "", "{args:?}");
            assert!(
                err.starts_with(&format!("error: no token with id {}\n", r.old_id())),
                "{args:?}, {after} s after its end: {err}"
            );
        }
        let (refused, err) = verify_at(&env, &r.old, stopped, &[]);
        refused.code(1).stdout("invalid: unknown\n");
        assert_eq!(err, "", "{after} s after its end");
        let (refused, err) = verify_at(&env, &r.old, stopped, &["--json"]);
        let json: Value = serde_json::from_str(&stdout(&refused.code(1))).unwrap();
        assert_eq!(json["valid"], false);
        assert_eq!(json["reason"], "unknown");
        assert_eq!(json["id"], Value::Null);
        assert_eq!(json["project"], Value::Null);
        assert_eq!(err, "");
        let (new, err) = verify_at(&env, &r.new, stopped, &["--project", "demo"]);
        new.success();
        assert_eq!(err, "", "the new token after the old one's end");
    }
}

// ---------------------------------------------------------------------------------------------
// After the end: the row waits, unlisted, for the next command that writes.

/// What makes a command that writes, ready to run on the test's store: its arguments.
type Writer = fn(&TestEnv) -> Vec<String>;

#[test]
fn a_stopped_token_stays_unlisted_in_the_store_until_a_command_writes() {
    let env = TestEnv::new();
    env.project("demo");
    let writers: [(&str, Writer); 7] = [
        ("token create", |_| {
            owned(&["token", "create", "-p", "demo", "-e", "30"])
        }),
        ("token revoke of another token", |env| {
            let other = env.token("demo", "30");
            owned(&["token", "revoke", id_of(&other), "--yes"])
        }),
        ("token rotate of another token", |env| {
            let other = env.token("demo", "30");
            owned(&["token", "rotate", id_of(&other), "--yes"])
        }),
        ("project create", |_| {
            owned(&["project", "create", "created"])
        }),
        ("project delete of another project", |env| {
            env.project("doomed");
            owned(&["project", "delete", "doomed", "--yes"])
        }),
        ("token prune --unused-for", |env| {
            token_at(env, "-200d", "demo", "365");
            owned(&["token", "prune", "--unused-for", "100", "--yes"])
        }),
        ("token prune --expired", |env| {
            token_at(env, "-40d", "demo", "30");
            owned(&["token", "prune", "--expired", "--yes"])
        }),
    ];
    for (what, writer) in writers {
        let old = env.token("demo", "30");
        let r = rotate_with_grace(&env, &old, "1h");
        let hash = hash_of(&env, r.old_id());
        let args = writer(&env);
        let stopped = r.stops_at + second(1);

        // To the commands that only read, it is not there; its row is, until a write.
        assert!(!lists(&list_json_at(&env, stopped), r.old_id()));
        let counts = token_counts(&env, stopped);
        let demo = counts.iter().find(|(name, _)| name == "demo").unwrap().1;
        let live = list_json_at(&env, stopped)
            .iter()
            .filter(|t| t["project"] == "demo")
            .count();
        assert_eq!(
            demo, live as i64,
            "{what}: project list counts the stopped token"
        );
        let (dry, _) = run_at(&env, stopped, &["token", "prune", "--expired", "--dry-run"]);
        dry.success();
        assert_eq!(
            rows_of(&env, r.old_id()),
            1,
            "{what}: deleted before any write"
        );

        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (assert, err) = run_at(&env, stopped, &args);
        assert!(assert.get_output().status.success(), "{what}: {err}");
        assert_row_deleted(&env, r.old_id(), &hash, what);
        assert!(verifies(&env, &r.new), "{what}: the replacement");
    }
}

#[test]
fn a_verify_that_presents_a_stopped_token_deletes_its_row() {
    let env = TestEnv::new();
    let r = demo_rotated(&env, "1h");
    let hash = hash_of(&env, r.old_id());
    let stopped = r.stops_at + second(1);
    assert_eq!(rows_of(&env, r.old_id()), 1);
    let (refused, _) = verify_at(&env, &r.old, stopped, &[]);
    refused.code(1).stdout("invalid: unknown\n");
    assert_row_deleted(&env, r.old_id(), &hash, "a verify that presents it");
    assert!(verifies(&env, &r.new));
}

#[test]
fn token_prune_expired_deletes_a_stopped_row_when_nothing_else_has_expired() {
    let env = TestEnv::new();
    let r = demo_rotated(&env, "1h");
    let hash = hash_of(&env, r.old_id());
    let stopped = r.stops_at + second(1);
    let (prune, err) = run_at(&env, stopped, &["token", "prune", "--expired", "--yes"]);
    prune.success();
    assert_eq!(err, "No tokens to prune.\n");
    assert_row_deleted(&env, r.old_id(), &hash, "token prune --expired --yes");
    assert!(verifies(&env, &r.new));
}

// ---------------------------------------------------------------------------------------------
// The end is set once.

#[test]
fn the_schedule_cannot_be_moved_or_cleared_behind_autheonas_back() {
    let env = TestEnv::new();
    let r = demo_rotated(&env, "1h");
    let table = tokens_table();
    let schedule = |env: &TestEnv, id: &str| {
        env.sql().rows(&format!(
            "SELECT stops_at, replaced_by FROM tokens WHERE id = '{id}'"
        ))
    };
    let scheduled = schedule(&env, r.old_id());
    assert_eq!(
        scheduled,
        [[
            Some(r.stops_at.timestamp().to_string()),
            Some(r.new_id().to_owned())
        ]]
    );
    let listed_before = listed(&env, r.old_id());
    for set in [
        "stops_at = stops_at + 86400",
        "stops_at = stops_at - 3000",
        "stops_at = 0",
        "stops_at = NULL",
        "replaced_by = 'AAAAAAAAAAAA'",
        "replaced_by = NULL",
        "stops_at = NULL, replaced_by = NULL",
        "stops_at = stops_at + 1, replaced_by = 'AAAAAAAAAAAA'",
        "stops_at = stops_at",
    ] {
        let statement = format!("UPDATE {table} SET {set} WHERE id = $1");
        let refused = env.sql().execute(&statement, &[r.old_id()]);
        let err = refused.expect_err(&format!("{statement} was allowed"));
        assert!(err.contains("set once"), "{statement}: {err}");
    }
    assert_eq!(schedule(&env, r.old_id()), scheduled);
    assert_eq!(listed(&env, r.old_id()), listed_before);

    // It works on as scheduled: until the second before its end, not from it.
    let (verified, err) = verify_at(&env, &r.old, r.stops_at - second(1), &[]);
    verified.success();
    assert_eq!(err, r.warning("1 minute"));
    let (refused, _) = verify_at(&env, &r.old, r.stops_at, &[]);
    refused.code(1).stdout("invalid: unknown\n");

    // A token not scheduled can be given an end directly only whole: both columns at once.
    let plain = env.token("demo", "30");
    for set in ["stops_at = 4102444800", "replaced_by = 'AAAAAAAAAAAA'"] {
        let statement = format!("UPDATE {table} SET {set} WHERE id = $1");
        let refused = env.sql().execute(&statement, &[id_of(&plain)]);
        assert!(refused.is_err(), "{statement} was allowed");
    }
    assert_eq!(schedule(&env, id_of(&plain)), [[None, None]]);
    let whole = format!(
        "UPDATE {table} SET stops_at = 4102444800, replaced_by = 'AAAAAAAAAAAA' WHERE id = $1"
    );
    assert_eq!(env.sql().execute(&whole, &[id_of(&plain)]), Ok(1));
    let refused = env.sql().execute(
        &format!("UPDATE {table} SET stops_at = 4102444801 WHERE id = $1"),
        &[id_of(&plain)],
    );
    assert!(refused.is_err_and(|err| err.contains("set once")));
}

// ---------------------------------------------------------------------------------------------
// What rotate refuses, and what it still does.

#[test]
fn a_token_in_its_grace_period_is_not_rotated_again_but_can_be_revoked_at_once() {
    let env = TestEnv::new();
    let r = demo_rotated(&env, "1h");
    let before = list_json(&env, &[]);
    for flags in [
        &[][..],
        &["--grace", "0"],
        &["--grace", "1h"],
        &["--grace", "7d", "--json"],
        &["--json"],
    ] {
        let assert = rotate(&env, r.old_id(), flags).code(1);
        let hint = assert_error(
            &assert,
            &format!(
                "error: token {} was already rotated: its replacement is token {}",
                r.old_id(),
                r.new_id()
            ),
        )
        .unwrap_or_else(|| panic!("{flags:?}: no hint"));
        assert!(
            hint.contains(&format!("autheona token revoke {}", r.old_id())),
            "{flags:?}: {hint}"
        );
        assert_eq!(list_json(&env, &[]), before, "{flags:?} changed something");
    }
    let (verified, err) = verify_at(&env, &r.old, r.stops_at - second(1), &[]);
    verified.success();
    assert_eq!(err, r.warning("1 minute"), "its end moved");

    // Its replacement is a token as any other: it can be rotated, with a grace period too.
    let next = rotate_with_grace(&env, &r.new, "24h");
    assert_eq!(next.json["replaces"], r.new_id());
    assert_eq!(listed(&env, r.new_id())["replaced_by"], next.new_id());
    for token in [&r.old, &r.new, &next.new] {
        assert!(verifies(&env, token));
    }

    // Revoked during its grace period, it stops at once; the others work on.
    env.run(&["token", "revoke", r.old_id(), "--yes"]).success();
    assert_gone(&env, &r.old);
    assert_eq!(rows_of(&env, r.old_id()), 0);
    assert!(verifies(&env, &r.new));
    assert!(verifies(&env, &next.new));
    assert_eq!(ids(&list_json(&env, &[])), [r.new_id(), next.new_id()]);
}

#[test]
fn grace_on_an_expired_token_is_a_usage_error_and_without_it_the_rotation_goes_on() {
    let env = TestEnv::new();
    env.project("demo");
    let expired = token_at(&env, "-40d", "demo", "30");
    env.verify(&expired, &[])
        .code(1)
        .stdout("invalid: expired\n");
    let before = list_json(&env, &[]);
    for flags in [&["--grace", "1h"][..], &["--grace", "30m", "--json"]] {
        let assert = rotate(&env, id_of(&expired), flags).code(2);
        let hint = assert_error(
            &assert,
            &format!(
                "error: token {} has expired: nothing is left to keep working, so a grace \
                 period does not apply",
                id_of(&expired)
            ),
        );
        assert_eq!(
            hint.as_deref(),
            Some("hint: rotate it without --grace"),
            "{flags:?}"
        );
        assert_eq!(list_json(&env, &[]), before, "{flags:?} changed something");
    }

    // Without a grace period, or with 0, it is rotated into a fresh token, as always.
    let again = token_at(&env, "-40d", "demo", "30");
    for (old, flags) in [(&expired, &[][..]), (&again, &["--grace", "0"])] {
        let assert = rotate(&env, id_of(old), flags).success();
        let new = created_token(&assert);
        assert!(
            stderr(&assert).starts_with(&format!(
                "Rotated token {}: it no longer works.",
                id_of(old)
            )),
            "{flags:?}: {}",
            stderr(&assert)
        );
        let row = listed(&env, id_of(&new));
        assert_eq!(row["status"], "active");
        assert_eq!(lifetime(&row), Some(TimeDelta::days(30)));
        env.verify(&new, &[]).success().stderr("");
        assert_gone(&env, old);
    }
}

#[test]
fn an_invalid_grace_is_a_usage_error_that_changes_nothing() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "90");
    let before = list_json(&env, &[]);
    for grace in [
        "31d",
        "721h",
        "43201m",
        "99999999999999999999d",
        "1s",
        "1w",
        "abc",
        "",
        "h",
        "1.5h",
        "1H",
        "1 h",
        " 1h",
        "1d1h",
        "+1h",
        "-1h",
        "00",
        "1h\n",
    ] {
        let flag = format!("--grace={grace}");
        for json in [false, true] {
            let mut args = vec![flag.as_str()];
            if json {
                args.push("--json");
            }
            let assert = rotate(&env, id_of(&old), &args).code(2);
            let (out, err) = (stdout(&assert), stderr(&assert));
            assert_eq!(out, "", "{grace:?}");
            assert!(
                err.starts_with("error: ")
                    && err.lines().count() == 1
                    && (err.contains("30m, 1h, 24h or 7d") || err.contains("at most 30 days")),
                "{grace:?}: one clear error line expected:\n{err}"
            );
            assert!(!err.contains("aut_"), "{grace:?}: a token on stderr");
        }
        assert_eq!(list_json(&env, &[]), before, "{grace:?} changed something");
    }
    env.verify(&old, &[]).success().stderr("");

    // At most 30 days, in any unit.
    for grace in ["30d", "720h", "43200m"] {
        let old = env.token("demo", "90");
        let r = rotate_with_grace(&env, &old, grace);
        assert_eq!(
            r.stops_at - json_date(&r.json["created_at"]),
            TimeDelta::days(30),
            "{grace}"
        );
    }
}

#[test]
fn grace_zero_is_the_same_as_no_grace() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "30");
    let assert = rotate(&env, id_of(&old), &["--grace", "0", "--json"]).success();
    let json: Value = serde_json::from_str(&stdout(&assert)).unwrap();
    let new = json["token"].as_str().unwrap();
    assert_eq!(json["replaces"], id_of(&old));
    assert_eq!(
        json["old_token_stops_at"], json["created_at"],
        "grace 0: the old token stops at the rotation"
    );
    assert!(
        stderr(&assert).starts_with(&format!(
            "Rotated token {}: it no longer works. Its replacement is token {}",
            id_of(&old),
            id_of(new)
        )),
        "{}",
        stderr(&assert)
    );
    assert_gone(&env, &old);
    assert_eq!(rows_of(&env, id_of(&old)), 0);
    env.verify(new, &[]).success().stderr("");
    let row = listed(&env, id_of(new));
    assert_eq!(row["stops_at"], Value::Null);
    assert_eq!(row["replaced_by"], Value::Null);

    // Without --grace, the same, and the same JSON keys.
    let assert = rotate(&env, id_of(new), &["--json"]).success();
    let plain: Value = serde_json::from_str(&stdout(&assert)).unwrap();
    assert_eq!(keys(&plain), keys(&json));
    assert_eq!(plain["old_token_stops_at"], plain["created_at"]);
    assert_gone(&env, new);
}

#[test]
fn the_grace_period_ends_at_the_old_tokens_expiry_when_that_is_sooner() {
    let env = TestEnv::new();
    env.project("demo");
    // 30 days created 29 days ago: a day left, less than the 7 days asked.
    let old = token_at(&env, "-29d", "demo", "30");
    let expires_at = json_date(&listed(&env, id_of(&old))["expires_at"]);
    let r = rotate_with_grace(&env, &old, "7d");
    assert_eq!(
        r.stops_at, expires_at,
        "not capped at the old token's expiry"
    );
    assert!(
        r.stderr.starts_with(&format!(
            "Rotated token {}: it keeps working until {}, then stops.",
            r.old_id(),
            people(expires_at)
        )),
        "{}",
        r.stderr
    );
    let row = listed(&env, r.old_id());
    assert_eq!(json_date(&row["stops_at"]), expires_at);
    assert_eq!(
        json_date(&row["expires_at"]),
        expires_at,
        "its expiry moved"
    );
    let (verified, err) = verify_at(&env, &r.old, expires_at - second(1), &[]);
    verified.success();
    assert_eq!(err, r.warning("1 minute"));
    let (refused, _) = verify_at(&env, &r.old, expires_at, &[]);
    refused.code(1).stdout("invalid: unknown\n");

    // A token that never expires keeps the whole grace period.
    let never = env.token("demo", "never");
    let r = rotate_with_grace(&env, &never, "30d");
    assert_eq!(
        r.stops_at - json_date(&r.json["created_at"]),
        TimeDelta::days(30)
    );
    assert_eq!(r.json["expires_at"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// scan and serve.

#[test]
fn scan_reports_a_token_in_grace_as_active_and_a_stopped_one_as_unknown() {
    let env = TestEnv::new();
    let r = demo_rotated(&env, "1h");
    std::fs::write(env.dir().join("deploy.env"), format!("TOKEN={}\n", r.old)).unwrap();
    let scan = |instant: DateTime<Utc>| {
        let (assert, err) = run_at(&env, instant, &["scan", "deploy.env"]);
        let out = stdout(&assert.code(1));
        assert!(!out.contains(secret_of(&r.old)) && !err.contains(secret_of(&r.old)));
        assert!(err.starts_with("Found 1 token in 1 file."), "{err}");
        out
    };
    assert_eq!(
        scan(r.stops_at - second(1)),
        format!(
            "deploy.env:1:7: token {} (active, project demo, replaced by token {})\n",
            r.old_id(),
            r.new_id()
        )
    );
    let (assert, _) = run_at(
        &env,
        r.stops_at - second(1),
        &["scan", "--json", "deploy.env"],
    );
    let found: Vec<serde_json::Value> =
        serde_json::from_str(&stdout(&assert.code(1))).expect("scan's JSON");
    assert_eq!(found[0]["status"], "active");
    assert_eq!(found[0]["replaced_by"], r.new_id());
    // The advice is to end it, not to rotate it: its replacement is already made.
    let (_, err) = run_at(&env, r.stops_at - second(1), &["scan", "deploy.env"]);
    assert_eq!(
        err,
        "Found 1 token in 1 file. Remove it, and as it was replaced but still works, end its \
         grace period now: autheona token revoke ID\n"
    );
    std::fs::write(
        env.dir().join("both.env"),
        format!("OLD={}\nNEW={}\n", r.old, r.new),
    )
    .unwrap();
    let (_, err) = run_at(&env, r.stops_at - second(1), &["scan", "both.env"]);
    assert_eq!(
        err,
        "Found 2 tokens in 1 file. Remove them, and replace any that are active: autheona token \
         rotate ID (one replaced already, in its grace period: autheona token revoke ID)\n"
    );
    assert_eq!(
        scan(r.stops_at),
        format!("deploy.env:1:7: token {} (unknown)\n", r.old_id())
    );
    assert_eq!(
        scan(r.stops_at + second(1)),
        format!("deploy.env:1:7: token {} (unknown)\n", r.old_id())
    );
}

#[test]
fn serve_accepts_the_old_token_with_a_warning_until_its_end_and_refuses_it_from_then() {
    use harness::*;

    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "30");
    // A server whose wall clock libfaketime reads at each call from a file (serve/clock.rs).
    let clock = env.dir().join("faketime");
    std::fs::write(&clock, "+0").unwrap();
    let mut cmd = env.std_cmd();
    cmd.env("LD_PRELOAD", faketime_lib())
        .env("FAKETIME_TIMESTAMP_FILE", &clock)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1");
    let server = Server::start_cmd(cmd, Addr::Tcp(free_port()), &[]);
    let set_clock = |instant: DateTime<Utc>| {
        std::fs::write(&clock, instant.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap();
    };
    // Known to the server (cached) before the rotation.
    let response = server.auth(&old, None);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-autheona-warning"), None);

    let r = rotate_with_grace(&env, &old, "1h");
    let warning = format!(
        "token {} was replaced by token {} and stops working at {}",
        r.old_id(),
        r.new_id(),
        r.json["old_token_stops_at"].as_str().unwrap()
    );
    let check_in_grace = |when: &str| {
        let response = server.auth(&r.old, None);
        assert_eq!(response.status, 200, "{when}: {response:?}");
        assert_eq!(response.header("x-autheona-token-id"), Some(r.old_id()));
        assert_eq!(
            response.header("x-autheona-warning"),
            Some(warning.as_str()),
            "{when}"
        );
        let response = server.verify(&serde_json::json!({ "token": r.old }));
        assert_eq!(response.status, 200, "{when}");
        assert_eq!(response.json()["valid"], true, "{when}");
        assert_eq!(response.json()["id"], r.old_id(), "{when}");
        assert_eq!(
            response.header("x-autheona-warning"),
            Some(warning.as_str()),
            "{when}"
        );
    };
    let check_new = |when: &str| {
        let response = server.auth(&r.new, Some("demo"));
        assert_eq!(response.status, 200, "{when}: the new token");
        assert_eq!(response.header("x-autheona-warning"), None, "{when}");
    };
    check_in_grace("now");
    check_new("now");
    set_clock(r.stops_at - second(1));
    check_in_grace("a second before its end");

    for (instant, when) in [
        (r.stops_at, "at its end"),
        (r.stops_at + second(1), "a second after its end"),
    ] {
        set_clock(instant);
        let response = server.auth(&r.old, None);
        assert_eq!(response.status, 401, "{when}: {response:?}");
        assert_eq!(response.header("x-autheona-warning"), None, "{when}");
        let response = server.verify(&serde_json::json!({ "token": r.old }));
        assert_eq!(response.status, 200, "{when}");
        let json = response.json();
        assert_eq!(json["valid"], false, "{when}: {json}");
        assert_eq!(json["reason"], "unknown", "{when}: {json}");
        assert_eq!(json["id"], Value::Null, "{when}: {json}");
        assert_eq!(response.header("x-autheona-warning"), None, "{when}");
        check_new(when);
    }
}
