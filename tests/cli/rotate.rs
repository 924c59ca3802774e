//! `token rotate`: a new token in place of an old one, shown once, in one step.

use std::process::Output;

use assert_cmd::assert::Assert;
use chrono::TimeDelta;
use serde_json::Value;

use crate::common::*;

fn rotate(env: &TestEnv, id: &str, flags: &[&str]) -> Assert {
    env.cmd().args(["token", "rotate", id]).args(flags).assert()
}

/// A rotation's stderr is the status lines only, never a token's value.
fn assert_no_token_value(text: &str) {
    assert!(!text.contains("aut_"), "a token value on stderr:\n{text}");
}

#[test]
fn rotate_prints_only_the_new_token_and_the_old_one_stops_working() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.described_token("demo", "90", "CI runner");
    let old_id = id_of(&old).to_owned();
    let created = env.run(&["token", "create", "-p", "demo", "-e", "30"]);
    let shown_once = stderr(&created).lines().nth(1).unwrap().to_owned();
    assert!(shown_once.contains("only time"), "{shown_once}");
    let other = created_token(&created);

    let assert = rotate(&env, &old_id, &["--yes"]).success();
    let new = created_token(&assert);
    let new_id = id_of(&new);
    assert_ne!(new_id, old_id);

    let row = listed(&env, new_id);
    assert_eq!(
        stderr(&assert),
        format!(
            "Rotated token {old_id}: it no longer works. Its replacement is token {new_id} for \
             project demo (expires {}).\n{shown_once}\n",
            for_people(&row["expires_at"])
        )
    );
    assert_no_token_value(&stderr(&assert));

    assert_eq!(
        stdout(&env.verify(&new, &["--project", "demo"]).success()),
        format!(
            "valid: token {new_id} (project demo, expires {})\n",
            for_people(&row["expires_at"])
        )
    );
    assert_gone(&env, &old);
    assert_eq!(
        ids(&list_json(&env, &[])),
        [id_of(&other), new_id],
        "the old token is not listed"
    );
    assert!(verifies(&env, &other), "another token was touched");
}

#[test]
fn the_replacement_keeps_project_description_and_lifetime() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("api");
    for (expires, days) in [
        ("30", Some(30)),
        ("90", Some(90)),
        ("365", Some(365)),
        ("never", None),
    ] {
        let description = format!("Build box, {expires}");
        let old = env.described_token("api", expires, &description);
        let before = listed(&env, id_of(&old));

        let new = created_token(&rotate(&env, id_of(&old), &["--yes"]).success());
        let after = listed(&env, id_of(&new));
        assert_eq!(after["project"], "api", "{expires}");
        assert_eq!(after["description"], description.as_str(), "{expires}");
        assert_eq!(lifetime(&after), days.map(TimeDelta::days), "{expires}");
        assert_eq!(lifetime(&after), lifetime(&before), "{expires}");
        assert!(
            json_date(&after["created_at"]) >= json_date(&before["created_at"]),
            "{expires}"
        );
        env.verify(&new, &["--project", "api"]).success();
        assert_gone(&env, &old);
    }
    assert_eq!(list_json(&env, &[]).len(), 4);
}

#[test]
fn the_replacement_is_a_new_unused_token() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "30");
    let neighbour = env.token("demo", "never");
    env.verify(&old, &[]).success();
    env.verify(&neighbour, &[]).success();
    assert!(!listed(&env, id_of(&old))["last_used_at"].is_null());
    let neighbour_before = listed(&env, id_of(&neighbour));

    let new = created_token(&rotate(&env, id_of(&old), &["--yes"]).success());
    assert_ne!(id_of(&new), id_of(&old));
    assert_ne!(secret_of(&new), secret_of(&old), "the secret was reused");
    let row = listed(&env, id_of(&new));
    assert_eq!(row["last_used_at"], Value::Null, "last use carried over");
    assert_eq!(row["status"], "active");
    assert_eq!(listed(&env, id_of(&neighbour)), neighbour_before);
}

#[test]
fn the_new_lifetime_counts_from_the_rotation() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "30");
    let old_row = listed(&env, id_of(&old));

    // Rotated 10 days after it was created, in the rotating process's clock.
    let assert = moved_clock(&env, "+10d")
        .args(["token", "rotate", id_of(&old), "--yes"])
        .assert()
        .success();
    without_clock_warning(&stderr(&assert), "+10d");
    let new = created_token(&assert);
    let row = listed(&env, id_of(&new));
    let later = json_date(&row["created_at"]) - json_date(&old_row["created_at"]);
    assert!(
        later >= TimeDelta::days(10) && later < TimeDelta::days(10) + TimeDelta::minutes(10),
        "created {later} after the old one"
    );
    assert_eq!(lifetime(&row), Some(TimeDelta::days(30)));
    assert_eq!(
        json_date(&row["expires_at"]) - json_date(&old_row["expires_at"]),
        later,
        "the expiry moved by as much as the creation"
    );
    assert_gone(&env, &old);
}

#[test]
fn an_expired_token_is_rotated_into_a_fresh_one_with_the_same_lifetime() {
    let env = TestEnv::new();
    env.project("demo");
    let old = token_at(&env, "-40d", "demo", "90");
    let expired = token_at(&env, "-40d", "demo", "30");
    env.verify(&expired, &[])
        .code(1)
        .stdout("invalid: expired\n");

    let new = created_token(&rotate(&env, id_of(&expired), &["--yes"]).success());
    let row = listed(&env, id_of(&new));
    assert_eq!(row["status"], "active");
    assert_eq!(lifetime(&row), Some(TimeDelta::days(30)));
    assert!(
        json_date(&row["created_at"]) > json_date(&listed(&env, id_of(&old))["created_at"]),
        "the new lifetime does not count from now"
    );
    env.verify(&new, &[]).success();
    assert_gone(&env, &expired);
    assert!(verifies(&env, &old));
}

#[test]
fn rotate_json_has_the_documented_shape() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.described_token("demo", "365", "Prod");
    let old_id = id_of(&old);

    let assert = rotate(&env, old_id, &["--json", "--yes"]).success();
    let json: Value = serde_json::from_str(&stdout(&assert)).expect("stdout is JSON only");
    assert_eq!(
        keys(&json),
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
    // Without a grace period, the old token stopped at the rotation.
    assert_eq!(json["old_token_stops_at"], json["created_at"]);
    let token = json["token"].as_str().unwrap();
    assert_eq!(token.len(), 66);
    assert_eq!(json["id"], id_of(token));
    assert_eq!(json["replaces"], old_id);
    assert_eq!(json["project"], "demo");
    assert_eq!(json["description"], "Prod");
    assert_eq!(lifetime(&json), Some(TimeDelta::days(365)));
    let row = listed(&env, id_of(token));
    for key in ["created_at", "expires_at", "description", "project"] {
        assert_eq!(json[key], row[key], "{key}");
    }
    assert!(stderr(&assert).starts_with(&format!("Rotated token {old_id}")));
    assert_no_token_value(&stderr(&assert));
    env.verify(token, &[]).success();
    assert_gone(&env, &old);

    let never = env.token("demo", "never");
    let json: Value = serde_json::from_str(&stdout(
        &rotate(&env, id_of(&never), &["--json", "-y"]).success(),
    ))
    .unwrap();
    assert_eq!(json["expires_at"], Value::Null);
    assert_eq!(json["description"], Value::Null);
    assert_eq!(json["replaces"], id_of(&never));
}

#[test]
fn rotate_without_a_terminal_needs_yes_and_changes_nothing() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "30");
    let before = list_json(&env, &[]);
    for flags in [&[][..], &["--json"]] {
        let assert = rotate(&env, id_of(&old), flags).code(2);
        let hint = assert_error(&assert, id_of(&old)).expect("a hint");
        assert!(hint.contains("--yes"), "{hint}");
        assert_eq!(list_json(&env, &[]), before, "{flags:?}");
    }
    assert!(verifies(&env, &old));
}

#[test]
fn rotate_refuses_unknown_and_malformed_ids() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let before = list_json(&env, &[]);

    let unknown = rotate(&env, "AAAAAAAAAAAA", &["--yes"]).code(1);
    assert_error(&unknown, "no token with id AAAAAAAAAAAA");
    for bad in ["short", "AAAAAAAAAAA!", "AAAAAAAAAAAAA", token.as_str()] {
        let assert = rotate(&env, bad, &["--yes"]).code(2);
        assert_error(&assert, "not a token id");
        assert!(
            !stderr(&assert).contains(secret_of(&token)),
            "a pasted token was echoed"
        );
    }
    assert_eq!(list_json(&env, &[]), before);
    assert!(verifies(&env, &token));
}

#[test]
fn rotate_without_a_database_is_an_environment_error() {
    let env = TestEnv::new();
    let assert = rotate(&env, "AAAAAAAAAAAA", &["--yes"]).code(3);
    assert_error(&assert, &env.missing_store_error());
    assert!(!env.store_exists(), "rotate created a database");
}

/// Where a rotation's stdout goes when the new token cannot be delivered.
#[derive(Debug, Clone, Copy)]
enum Undeliverable {
    /// A pipe whose reader has gone: writing fails with EPIPE.
    ReaderGone,
    /// No stdout at all (`>&-`).
    Closed,
    DevNull,
    /// Writing fails with ENOSPC.
    DevFull,
    /// A file open for reading only (`1<file`): writing fails with EBADF, which Rust's own
    /// stdout takes as success.
    ReadOnly,
}

fn rotate_into(env: &TestEnv, id: &str, json: bool, stdout: Undeliverable) -> Output {
    let mut cmd = env.std_cmd();
    cmd.args(["token", "rotate", id, "--yes"]);
    if json {
        cmd.arg("--json");
    }
    match stdout {
        Undeliverable::ReaderGone => {
            cmd.stdout(closed_pipe());
        }
        Undeliverable::Closed => {
            close_stdout_at_exec(&mut cmd);
        }
        Undeliverable::DevNull => {
            cmd.stdout(std::fs::File::create("/dev/null").unwrap());
        }
        Undeliverable::DevFull => {
            cmd.stdout(std::fs::File::create("/dev/full").unwrap());
        }
        Undeliverable::ReadOnly => {
            let path = env.dir().join("read-only stdout");
            std::fs::write(&path, "kept\n").unwrap();
            cmd.stdout(std::fs::File::open(&path).unwrap());
        }
    }
    cmd.output().unwrap()
}

#[test]
fn a_replacement_that_cannot_be_delivered_changes_nothing() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.described_token("demo", "90", "Deploy key");
    let old_id = id_of(&old);
    for way in [
        Undeliverable::ReaderGone,
        Undeliverable::Closed,
        Undeliverable::DevNull,
        Undeliverable::DevFull,
        Undeliverable::ReadOnly,
    ] {
        for json in [false, true] {
            let case = format!("{way:?}, json {json}");
            let before = list_json(&env, &[]);
            let out = rotate_into(&env, old_id, json, way);
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(3), "{case}: {err}");
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 2, "{case}: {err}");
            assert!(
                lines[0].starts_with("error: ") && lines[0].ends_with("it was not kept"),
                "{case}: {err}"
            );
            assert_eq!(
                lines[1],
                format!(
                    "hint: nothing changed: token {old_id} still works; run the command again \
                     with a working stdout"
                ),
                "{case}"
            );
            assert_no_token_value(&err);
            assert_eq!(list_json(&env, &[]), before, "{case}");
            assert!(
                verifies(&env, &old),
                "{case}: the old token stopped working"
            );
        }
    }
    assert_eq!(ids(&list_json(&env, &[])), [old_id]);
}

#[test]
fn a_rotation_into_dev_zero_changes_nothing() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "30");
    let out = env
        .std_cmd()
        .args(["token", "rotate", id_of(&old), "--yes"])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/zero")
                .unwrap(),
        )
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("device other than a terminal"), "{err}");
    assert_eq!(ids(&list_json(&env, &[])), [id_of(&old)]);
    assert!(verifies(&env, &old));
}

#[test]
fn a_rotation_the_database_refuses_shows_no_token_and_keeps_the_old_one() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.token("demo", "30");
    let before = list_json(&env, &[]);
    // Another writer holds the database past the busy timeout.
    let blocker = env.hold_write_lock();
    for flags in [&["--yes"][..], &["--yes", "--json"]] {
        let assert = rotate(&env, id_of(&old), flags).code(3);
        assert_error(&assert, "is busy");
        assert!(stdout(&assert).is_empty(), "{}", stdout(&assert));
        assert_no_token_value(&stderr(&assert));
    }
    blocker.release();
    assert_eq!(list_json(&env, &[]), before);
    assert!(verifies(&env, &old), "the old token stopped working");
}
