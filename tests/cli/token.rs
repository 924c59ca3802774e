use chrono::DateTime;
use serde_json::Value;

use crate::common::*;

fn days_between(from: &Value, to: &Value) -> i64 {
    let from = DateTime::parse_from_rfc3339(from.as_str().unwrap()).unwrap();
    let to = DateTime::parse_from_rfc3339(to.as_str().unwrap()).unwrap();
    let delta = to - from;
    assert_eq!(delta.num_seconds() % 86_400, 0, "not whole days");
    delta.num_days()
}

#[test]
fn create_prints_only_the_token_on_stdout() {
    let env = TestEnv::new();
    env.project("demo");
    let assert = create_described(&env, "CI runner").success();
    let out = stdout(&assert);
    assert!(
        out.ends_with('\n') && out.matches('\n').count() == 1,
        "{out:?}"
    );
    let token = out.trim_end();
    assert_eq!(token.len(), 66);
    assert!(token.starts_with("aut_"));
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    );
    assert_eq!(&token[16..17], "_");
    assert!(id_of(token).bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(token[17..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(&token[60..], independent_checksum(&token[..60]));

    let err = stderr(&assert);
    assert!(err.contains("only time"), "{err}");
    assert!(err.contains(id_of(token)), "{err}");
    assert!(err.contains("expires "), "{err}");
    assert!(
        !err.contains(token) && !err.contains(secret_of(token)),
        "secret on stderr"
    );
}

#[test]
fn create_json_has_the_documented_shape() {
    let env = TestEnv::new();
    env.project("demo");
    let out = stdout(
        &env.run(&[
            "token", "create", "-p", "demo", "-e", "90", "-d", "Prod", "--json",
        ])
        .success(),
    );
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        keys(&json),
        [
            "created_at",
            "description",
            "expires_at",
            "id",
            "project",
            "token"
        ]
    );
    let token = json["token"].as_str().unwrap();
    assert_eq!(json["id"], id_of(token));
    assert_eq!(json["project"], "demo");
    assert_eq!(json["description"], "Prod");
    assert!(json["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(days_between(&json["created_at"], &json["expires_at"]), 90);
    env.verify(token, &[]).success();

    let never: Value = serde_json::from_str(&stdout(
        &env.run(&["token", "create", "-p", "demo", "-e", "never", "--json"])
            .success(),
    ))
    .unwrap();
    assert_eq!(never["expires_at"], Value::Null);
    assert_eq!(never["description"], Value::Null);
}

#[test]
fn expiration_is_creation_plus_the_chosen_days() {
    let env = TestEnv::new();
    env.project("demo");
    for (given, days) in [
        ("30", Some(30)),
        ("90d", Some(90)),
        ("365", Some(365)),
        ("365d", Some(365)),
        ("30d", Some(30)),
        ("never", None),
    ] {
        env.run(&["token", "create", "-p", "demo", "--expires", given])
            .success();
        let tokens = list_json(&env, &[]);
        let newest = tokens.last().unwrap();
        match days {
            Some(days) => assert_eq!(
                days_between(&newest["created_at"], &newest["expires_at"]),
                days,
                "{given}"
            ),
            None => assert_eq!(newest["expires_at"], Value::Null),
        }
    }
}

#[test]
fn other_expirations_are_usage_errors() {
    let env = TestEnv::new();
    env.project("demo");
    for bad in ["7", "31", "0", "1y", "forever", "-1", ""] {
        env.run(&["token", "create", "-p", "demo", "-e", bad])
            .code(2)
            .stdout("");
    }
    assert!(list_json(&env, &[]).is_empty());
}

#[test]
fn without_a_terminal_missing_project_or_expiration_is_a_usage_error() {
    let env = TestEnv::new();
    env.project("demo");
    let no_project = env
        .run(&["token", "create", "--expires", "30"])
        .code(2)
        .stdout("");
    assert!(
        stderr(&no_project).contains("--project"),
        "{}",
        stderr(&no_project)
    );
    let no_expiry = env
        .run(&["token", "create", "--project", "demo"])
        .code(2)
        .stdout("");
    assert!(
        stderr(&no_expiry).contains("--expires"),
        "{}",
        stderr(&no_expiry)
    );
    assert!(list_json(&env, &[]).is_empty());
}

#[test]
fn project_falls_back_to_autheona_project() {
    let env = TestEnv::new();
    env.project("demo");
    env.cmd()
        .env("AUTHEONA_PROJECT", "demo")
        .args(["token", "create", "--expires", "30"])
        .assert()
        .success();
    let tokens = list_json(&env, &[]);
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["project"], "demo");
    assert_eq!(
        tokens[0]["description"],
        Value::Null,
        "missing description means none"
    );
}

#[test]
fn descriptions_are_one_line_of_visible_text_up_to_200_characters() {
    let env = TestEnv::new();
    env.project("demo");
    let too_long = "x".repeat(201);
    for bad in [
        too_long.as_str(),
        "two\nlines",
        "carriage\rreturn",
        "tab\there",
        "\u{1b}[31mred",
        "right-to-left \u{202e}override",
        "zero\u{200b}width",
        "line\u{2028}separator",
    ] {
        let assert = create_described(&env, bad).code(2).stdout("");
        let err = stderr(&assert);
        assert!(err.starts_with("error: "), "{err}");
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{202e}'),
            "{err:?}"
        );
    }
    assert!(list_json(&env, &[]).is_empty());
    let longest = "é".repeat(200);
    for good in [
        "Production server 🚀",
        "日本語の説明",
        longest.as_str(),
        "'; DROP TABLE tokens; --",
    ] {
        create_described(&env, good).success();
        assert_eq!(list_json(&env, &[]).last().unwrap()["description"], good);
    }
}

#[test]
fn unknown_project_is_refused() {
    let env = TestEnv::new();
    env.project("demo");
    let assert = env
        .run(&["token", "create", "-p", "nope", "-e", "30"])
        .code(1)
        .stdout("");
    assert!(stderr(&assert).contains("no project named 'nope'"));
    env.run(&["token", "list", "--project", "nope"])
        .code(1)
        .stdout("");
}

#[test]
fn create_without_a_database_creates_nothing() {
    let env = TestEnv::new();
    let assert = env
        .run(&["token", "create", "-p", "demo", "-e", "30"])
        .code(3)
        .stdout("");
    let hint = assert_error(&assert, &env.missing_store_error());
    assert_eq!(hint.as_deref(), Some(env.missing_store_hint()));
    assert!(!env.store_exists());
}

#[test]
fn a_token_that_cannot_be_delivered_is_not_kept() {
    let env = TestEnv::new();
    env.project("demo");
    let closed = env
        .std_cmd()
        .args(["token", "create", "-p", "demo", "-e", "30"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(closed.status.code(), Some(3));
    let err = String::from_utf8(closed.stderr).unwrap();
    assert!(err.contains("not kept"), "{err}");

    let full = env
        .std_cmd()
        .args(["token", "create", "-p", "demo", "-e", "30", "--json"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(3));
    assert!(
        list_json(&env, &[]).is_empty(),
        "an undelivered token was kept"
    );
}

#[test]
fn list_on_a_closed_stdout_ends_quietly() {
    let env = TestEnv::new();
    env.project("demo");
    for _ in 0..3 {
        env.token("demo", "30");
    }
    for args in [
        &["token", "list"][..],
        &["token", "list", "--json"],
        &["project", "list"],
    ] {
        let out = env
            .std_cmd()
            .args(args)
            .stdout(closed_pipe())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8(out.stderr).unwrap(), "", "{args:?}");
    }
}

#[test]
fn list_table_shows_tokens_oldest_first_without_values() {
    let env = TestEnv::new();
    env.project("web");
    env.project("api");
    let first = env.token("web", "30");
    let second = env.described_token("api", "never", "Staging box");
    // Times for people: local time to the minute.
    let ids = [
        (id_of(&first), "[web tok id]"),
        (id_of(&second), "[api tok id]"),
    ];
    let all = stdout(&env.run(&["token", "list"]).success());
    assert_output(
        &all,
        &ids,
        r"
        ID            Project  Description  Created           Expires           Last used  Status
        [web tok id]  web                   YYYY-MM-DD HH:MM  YYYY-MM-DD HH:MM  Never      active
        [api tok id]  api      Staging box  YYYY-MM-DD HH:MM  Never             Never      active
        ",
    );
    assert!(!all.contains(secret_of(&first)), "a secret was listed");

    let web = stdout(&env.run(&["token", "list", "--project", "web"]).success());
    assert_output(
        &web,
        &ids,
        r"
        ID            Description  Created           Expires           Last used  Status
        [web tok id]               YYYY-MM-DD HH:MM  YYYY-MM-DD HH:MM  Never      active
        ",
    );
}

#[test]
fn list_json_has_the_documented_shape_and_records_last_use() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let before = list_json(&env, &["--project", "demo"]);
    assert_eq!(before.len(), 1);
    let row = &before[0];
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
    assert_eq!(row["id"], id_of(&token));
    assert_eq!(row["last_used_at"], Value::Null);
    assert_eq!(row["stops_at"], Value::Null, "not rotated");
    assert_eq!(row["replaced_by"], Value::Null, "not rotated");
    assert_eq!(row["status"], "active");
    env.verify(&token, &[]).success();
    let after = list_json(&env, &[]);
    let used = after[0]["last_used_at"]
        .as_str()
        .expect("last use recorded");
    assert!(used.ends_with('Z'));
    assert!(!stdout(&env.run(&["token", "list"]).success()).contains("Never\n"));
}

/// Without a store, a list is empty where the store would be a file that is not there yet;
/// a PostgreSQL database without autheona's schema is refused, as every command but
/// `project create` refuses it (exit 3, saying how to start).
#[test]
fn list_without_a_database_is_empty() {
    let env = TestEnv::new();
    for args in [&["token", "list", "--json"][..], &["token", "list"]] {
        let assert = env.run(args);
        match backend() {
            Backend::Sqlite => {
                let assert = assert.success();
                let expected = if args.len() == 3 { "[]\n" } else { "" };
                assert_eq!(stdout(&assert), expected, "{args:?}");
                assert!(stderr(&assert).contains("project create"), "{args:?}");
            }
            Backend::Postgres => {
                let hint = assert_error(&assert.code(3), &env.missing_store_error());
                assert_eq!(hint.as_deref(), Some(env.missing_store_hint()), "{args:?}");
            }
        }
    }
    assert!(!env.store_exists());
}

#[test]
fn expired_tokens_show_as_expired() {
    let env = TestEnv::new();
    env.project("demo");
    // Created 40 days ago with a 30-day expiry: libfaketime moves the clock of that one process.
    token_at(&env, "-40d", "demo", "30");
    env.token("demo", "30");
    let tokens = list_json(&env, &[]);
    assert_eq!(tokens[0]["status"], "expired");
    assert_eq!(tokens[1]["status"], "active");
    let table = stdout(&env.run(&["token", "list"]).success());
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .trim_end()
            .ends_with("expired"),
        "{table}"
    );
}

#[test]
fn revoke_with_yes_stops_the_token_at_once() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let other = env.token("demo", "30");
    let assert = env
        .run(&["token", "revoke", id_of(&token), "--yes"])
        .success()
        .stdout("");
    assert!(stderr(&assert).contains(id_of(&token)));
    env.verify(&token, &[]).code(1).stdout("invalid: unknown\n");
    env.verify(&other, &[]).success();
    let ids: Vec<Value> = list_json(&env, &[])
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [Value::from(id_of(&other))]);
    env.run(&["token", "revoke", id_of(&token), "-y"]).code(1);
}

#[test]
fn revoke_without_a_terminal_needs_yes() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let assert = env.run(&["token", "revoke", id_of(&token)]).code(2);
    assert!(stderr(&assert).contains("--yes"));
    env.verify(&token, &[]).success();
}

#[test]
fn revoke_rejects_unknown_and_malformed_ids() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    env.run(&["token", "revoke", "AAAAAAAAAAAA", "--yes"])
        .code(1);
    // A whole token pasted by mistake is refused without being echoed back.
    let pasted = env.run(&["token", "revoke", &token, "--yes"]).code(2);
    assert!(!stderr(&pasted).contains(secret_of(&token)));
    env.run(&["token", "revoke", "short", "--yes"]).code(2);
    env.verify(&token, &[]).success();
}

#[test]
fn revoke_without_a_database_is_an_environment_error() {
    let env = TestEnv::new();
    env.run(&["token", "revoke", "AAAAAAAAAAAA", "--yes"])
        .code(3);
    assert!(!env.store_exists());
}

#[test]
fn user_text_from_the_database_cannot_inject_escape_sequences() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    // Text that validation refuses, written behind autheona's back.
    let mut sql = env.sql();
    sql.batch("UPDATE projects SET name = 'evil\u{1b}[2J\u{202e}'")
        .unwrap();
    // The description cannot be changed, so the row is written anew with it.
    sql.batch(
        "CREATE TEMP TABLE kept AS SELECT * FROM tokens;
         DELETE FROM tokens;",
    )
    .unwrap();
    sql.batch(
        "INSERT INTO tokens (id, project_id, secret_hash, description, created_at, expires_at,
                             last_used_at)
         SELECT id, project_id, secret_hash, 'desc\u{1b}]0;pwned\u{7}', created_at, expires_at,
                last_used_at
         FROM kept",
    )
    .unwrap();
    drop(sql);
    for args in [&["token", "list"][..], &["project", "list"]] {
        let out = stdout(&env.run(args).success());
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}') && !out.contains('\u{7}'),
            "{out:?}"
        );
        assert!(out.contains("\\u{1b}"), "{out}");
    }
    let valid = stdout(&env.verify(&token, &[]).success());
    assert!(!valid.contains('\u{1b}'), "{valid:?}");
}

#[test]
fn the_schema_refuses_edits_to_a_token() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let mut sql = env.sql();
    for edit in [
        "UPDATE tokens SET description = 'changed'",
        "UPDATE tokens SET expires_at = NULL",
        "UPDATE tokens SET project_id = 99",
        "UPDATE tokens SET secret_hash = 'x'",
    ] {
        let err = sql.batch(edit).unwrap_err();
        assert!(err.contains("immutable"), "{edit}: {err}");
    }
    sql.batch("UPDATE tokens SET last_used_at = 1").unwrap();
    drop(sql);
    env.verify(&token, &[]).success();
}

#[test]
fn a_failed_database_write_prints_nothing() {
    let env = TestEnv::new();
    env.project("demo");
    // Another process holds the write lock past the busy timeout.
    let blocker = env.hold_write_lock();
    let assert = env
        .run(&["token", "create", "-p", "demo", "-e", "30"])
        .code(3)
        .stdout("");
    assert!(stderr(&assert).contains("busy"), "{}", stderr(&assert));
    blocker.release();
    assert!(list_json(&env, &[]).is_empty());
}

#[test]
fn tables_show_local_time_json_shows_utc() {
    let env = TestEnv::new();
    env.project("demo");
    env.token("demo", "never");
    let json: Value =
        serde_json::from_str(&stdout(&env.run(&["token", "list", "--json"]).success())).unwrap();
    let created = DateTime::parse_from_rfc3339(json[0]["created_at"].as_str().unwrap()).unwrap();
    let in_kolkata = created + chrono::TimeDelta::minutes(5 * 60 + 30);
    let table = stdout(
        &env.cmd()
            .env("TZ", "Asia/Kolkata")
            .args(["token", "list"])
            .assert()
            .success(),
    );
    let shown = in_kolkata.format("%Y-%m-%d %H:%M").to_string();
    assert!(
        table.contains(&shown),
        "expected {shown} (UTC+05:30) in\n{table}"
    );
}

#[test]
fn a_description_holding_a_token_is_refused_and_redacted() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let description = format!("prod key is {token}");
    let assert = create_described(&env, &description).code(2);
    let hint = assert_error(
        &assert,
        "\"prod key is aut_<redacted>\" holds what looks like a token",
    );
    assert!(hint.is_some_and(|h| h.contains("rotate")));
    assert!(
        !stderr(&assert).contains(&token[4..]),
        "{}",
        stderr(&assert)
    );
    assert_eq!(ids(&list_json(&env, &[])), [id_of(&token)]);
    assert!(!contains(
        &env.store_content(),
        secret_of(&token).as_bytes()
    ));
}

/// A token whose secret mixes upper case, lower case and digits, as virtually every generated
/// one does (fixed, so that no test depends on a draw).
fn mixed_token() -> String {
    forge(
        "3kTMd9aPq0Zx",
        "T0kxq8Rw2ZpLm4NvB7cYe1HsJd9GfUa3WiXo5KtQb6E",
    )
}

#[test]
fn a_description_holding_a_token_without_its_prefix_is_refused_unechoed() {
    let env = TestEnv::new();
    env.project("demo");
    let token = mixed_token();
    let secret = &token[17..60];
    for description in [
        format!("key {}", &token[4..]),
        token[17..].to_owned(),
        format!("AUT_{}", &token[4..]),
        format!("aut-{}", &token[4..]),
        format!("aut_ {}", &token[4..]),
    ] {
        let assert = create_described(&env, &description).code(2);
        assert_error(&assert, "holds what looks like a token");
        assert!(!stderr(&assert).contains(secret), "{}", stderr(&assert));
    }
    assert!(list_json(&env, &[]).is_empty());
    assert!(!contains(&env.store_content(), secret.as_bytes()));
}

#[test]
fn a_description_quoting_a_git_commit_is_accepted() {
    let env = TestEnv::new();
    env.project("demo");
    for description in [
        "deployed at 3f2a9c1e0b7d4a6f8e5c2b1a0d9e8f7a6b5c4d3e",
        "image 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ] {
        create_described(&env, description).success();
    }
    assert_eq!(list_json(&env, &[]).len(), 2);
}

#[test]
fn a_project_option_holding_a_secret_is_not_echoed() {
    let env = TestEnv::new();
    env.project("demo");
    let token = mixed_token();
    for project in [&token[17..], &token[4..]] {
        let assert = env.run(&["token", "list", "-p", project]).failure();
        let err = stderr(&assert);
        assert!(err.starts_with("error: "), "{err}");
        assert!(!err.contains(&token[17..60]), "{err}");
    }
}

#[test]
fn a_description_holding_part_of_a_token_is_refused() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    for part in [&token[..40], &token[..16]] {
        let description = format!("key={part}…");
        let assert = create_described(&env, &description).code(2);
        assert_error(&assert, "key=aut_<redacted>…");
        assert!(!stderr(&assert).contains(&part[4..]), "{}", stderr(&assert));
    }
    assert_eq!(ids(&list_json(&env, &[])), [id_of(&token)]);
}

#[test]
fn a_description_naming_autheona_or_aut_briefly_is_kept() {
    let env = TestEnv::new();
    env.project("demo");
    for good in [
        "autheona token for aut_ci",
        "aut_short",
        "aut_payments_v2 service",
    ] {
        env.described_token("demo", "30", good);
        assert_eq!(list_json(&env, &[]).last().unwrap()["description"], good);
    }
}

/// `token create -d DESCRIPTION` is a usage error naming `text`, and creates nothing.
fn assert_description_refused(description: &str, text: &str) {
    let env = TestEnv::new();
    env.project("demo");
    let assert = create_described(&env, description).code(2);
    assert_error(&assert, text);
    assert!(list_json(&env, &[]).is_empty());
}

#[test]
fn a_description_of_only_spaces_means_none() {
    let env = TestEnv::new();
    env.project("demo");
    let out = stdout(
        &env.run(&[
            "token", "create", "-p", "demo", "-e", "30", "-d", "   ", "--json",
        ])
        .success(),
    );
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["description"], Value::Null);
    assert_eq!(list_json(&env, &[])[0]["description"], Value::Null);
}

#[test]
fn a_description_of_a_hangul_filler_is_refused() {
    assert_description_refused("\u{3164}", "no visible character");
}

#[test]
fn a_description_of_braille_blanks_is_refused() {
    assert_description_refused("\u{2800}\u{2800}\u{2800}", "no visible character");
}

#[test]
fn a_description_of_a_grapheme_joiner_is_refused() {
    assert_description_refused(" \u{34f} ", "no visible character");
}

#[test]
fn a_description_of_emoji_presentation_selectors_is_refused() {
    assert_description_refused(&"\u{fe0f}".repeat(20), "no visible character");
}

#[test]
fn a_letter_with_199_combining_marks_is_refused() {
    let zalgo = format!("a{}", "\u{301}".repeat(199));
    assert_description_refused(&zalgo, "stacks 199 combining marks on one character");
}

#[test]
fn a_letter_with_five_combining_marks_is_refused() {
    assert_description_refused(
        "x\u{300}\u{301}\u{302}\u{303}\u{304}",
        "stacks 5 combining marks",
    );
}

#[test]
fn emoji_and_accented_descriptions_are_kept() {
    let env = TestEnv::new();
    env.project("demo");
    for good in [
        "Deploy 🚀",
        "❤\u{fe0f} prod",
        "👩\u{200d}💻 laptop",
        "👍🏽 ok",
        "1\u{fe0f}\u{20e3} first",
        "🇩🇪 server",
        "Vie\u{323}\u{302}t Nam",
    ] {
        env.described_token("demo", "30", good);
        assert_eq!(list_json(&env, &[]).last().unwrap()["description"], good);
    }
}

#[test]
fn an_empty_autheona_project_counts_as_unset() {
    let env = TestEnv::new();
    env.project("demo");
    let assert = env
        .cmd()
        .env("AUTHEONA_PROJECT", "")
        .args(["token", "create", "--expires", "30"])
        .assert()
        .code(2);
    assert_error(
        &assert,
        "--project is required: no terminal to ask for the project",
    );
    env.cmd()
        .env("AUTHEONA_PROJECT", "")
        .args(["token", "create", "-p", "demo", "--expires", "30"])
        .assert()
        .success();
    assert_eq!(list_json(&env, &[]).len(), 1);
}

#[test]
fn an_empty_project_flag_is_still_a_usage_error() {
    let env = TestEnv::new();
    env.project("demo");
    let assert = env
        .cmd()
        .env("AUTHEONA_PROJECT", "demo")
        .args(["token", "create", "-p", "", "--expires", "30"])
        .assert()
        .code(2);
    assert_error(&assert, "the project name is empty");
    assert!(list_json(&env, &[]).is_empty());
}

/// `token create` with stdout on `device`: refused, exit 3, and no token kept.
fn assert_create_refuses_stdout(device: &str) {
    let env = TestEnv::new();
    env.project("demo");
    let out = env
        .std_cmd()
        .args(["token", "create", "-p", "demo", "-e", "30"])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open(device)
                .unwrap(),
        )
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{device}: {err}");
    assert!(
        err.starts_with("error: stdout is a device other than a terminal")
            && err.contains("it was not kept"),
        "{device}: {err}"
    );
    assert!(
        list_json(&env, &[]).is_empty(),
        "{device}: a lost token was kept"
    );
}

#[test]
fn create_refuses_a_stdout_of_dev_zero() {
    assert_create_refuses_stdout("/dev/zero");
}

#[test]
fn create_refuses_a_stdout_of_dev_urandom() {
    assert_create_refuses_stdout("/dev/urandom");
}

#[test]
fn a_stdout_open_for_reading_only_keeps_no_token_and_fails_every_listing() {
    // `1<file`: every write fails with EBADF, which Rust's own stdout takes as success.
    let env = TestEnv::new();
    env.project("demo");
    env.token("demo", "30");
    let path = env.dir().join("read-only stdout");
    std::fs::write(&path, "kept\n").unwrap();
    let run = |args: &[&str]| {
        env.std_cmd()
            .args(args)
            .stdout(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap()
    };
    for args in [
        &["token", "create", "-p", "demo", "-e", "30"][..],
        &["token", "create", "-p", "demo", "-e", "30", "--json"],
    ] {
        let out = run(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.contains("is open for reading only") && err.contains("it was not kept"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(list_json(&env, &[]).len(), 1, "a token nobody saw was kept");
    for args in [
        &["token", "list"][..],
        &["token", "list", "--json"],
        &["project", "list"],
        &["project", "list", "--json"],
        &["log"],
        &["log", "--json"],
    ] {
        let out = run(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.starts_with("error: cannot write to stdout"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
}

#[test]
fn create_writes_the_token_to_a_regular_file() {
    let env = TestEnv::new();
    env.project("demo");
    let path = env.dir().join("token.txt");
    let status = env
        .std_cmd()
        .args(["token", "create", "-p", "demo", "-e", "30"])
        .stdout(std::fs::File::create(&path).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let token = std::fs::read_to_string(&path).unwrap();
    env.verify(token.trim_end(), &[]).success();
}

/// `token create -p demo -e 30 -d DESCRIPTION`, without a terminal.
fn create_described(env: &TestEnv, description: &str) -> assert_cmd::assert::Assert {
    env.run(&create_described_args(description))
}
