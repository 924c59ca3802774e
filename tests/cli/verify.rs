use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

fn json(assert: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_str(&stdout(assert)).unwrap()
}

#[test]
fn valid_token_says_so_on_one_line() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "never");
    let assert = env.verify(&token, &[]).success();
    assert_eq!(
        stdout(&assert),
        format!(
            "valid: token {} (project demo, never expires)\n",
            id_of(&token)
        )
    );
    let dated = env.token("demo", "30");
    let out = stdout(&env.verify(&dated, &["--project", "demo"]).success());
    assert!(
        out.starts_with(&format!(
            "valid: token {} (project demo, expires 20",
            id_of(&dated)
        )),
        "{out}"
    );
}

#[test]
fn quiet_prints_nothing_and_json_has_the_documented_shape() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    env.verify(&token, &["--quiet"])
        .success()
        .stdout("")
        .stderr("");
    env.verify("nonsense", &["-q"]).code(1).stdout("");

    let valid = json(&env.verify(&token, &["--json"]).success());
    assert_eq!(
        keys(&valid),
        ["expires_at", "id", "project", "reason", "valid"]
    );
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["reason"], Value::Null);
    assert_eq!(valid["id"], id_of(&token));
    assert_eq!(valid["project"], "demo");
    assert!(valid["expires_at"].as_str().unwrap().ends_with('Z'));

    let invalid = json(&env.verify("nonsense", &["--json"]).code(1));
    assert_eq!(invalid["valid"], false);
    assert_eq!(invalid["reason"], "malformed");
    assert_eq!(invalid["id"], Value::Null);
}

#[test]
fn reads_autheona_token_before_stdin() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    env.cmd()
        .arg("verify")
        .env("AUTHEONA_TOKEN", &token)
        .write_stdin("garbage\n")
        .assert()
        .success();
    env.cmd()
        .arg("verify")
        .env("AUTHEONA_TOKEN", "")
        .write_stdin(format!("{token}\n"))
        .assert()
        .code(1)
        .stdout("invalid: malformed\n");
}

#[test]
fn the_token_is_never_taken_from_the_command_line() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let assert = env.cmd().args(["verify", &token]).assert().code(2);
    assert!(
        !stderr(&assert).contains(secret_of(&token)),
        "{}",
        stderr(&assert)
    );
}

#[test]
fn a_mistyped_option_is_named_and_a_dashed_token_still_hidden() {
    let env = TestEnv::new();
    env.project("demo");
    let assert = env.cmd().args(["verify", "--jsn"]).assert().code(2);
    assert_eq!(
        stderr(&assert),
        "error: unexpected option '--jsn'\n\
         hint: the options are --project, --json and --quiet: autheona verify --help\n"
    );
    let token = env.token("demo", "30");
    let assert = env
        .cmd()
        .args(["verify", &format!("-{token}")])
        .assert()
        .code(2);
    assert!(
        !stderr(&assert).contains(secret_of(&token)),
        "{}",
        stderr(&assert)
    );
}

#[test]
fn input_is_the_first_line_trimmed() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    for input in [
        token.clone(),
        format!("  {token}\t\r\n"),
        format!("{token}\r\nsecond line ignored\n"),
    ] {
        env.cmd()
            .arg("verify")
            .write_stdin(input.clone())
            .assert()
            .success();
    }
    env.cmd()
        .arg("verify")
        .write_stdin(format!("\n{token}\n"))
        .assert()
        .code(1)
        .stdout("invalid: malformed\n");
}

#[test]
fn malformed_tokens_are_rejected_without_the_database() {
    let env = TestEnv::new();
    let body = format!("aut_{}_{}", "A".repeat(12), "b".repeat(43));
    let good_shape = forge(&"A".repeat(12), &"b".repeat(43));
    let mut flipped = good_shape.clone().into_bytes();
    flipped[20] = b'c';
    let flipped = String::from_utf8(flipped).unwrap();
    for input in [
        String::new(),
        "   \t ".to_owned(),
        "hello".to_owned(),
        format!("tok_{}", &good_shape[4..]),
        good_shape[..65].to_owned(),
        format!("{good_shape}x"),
        flipped,
        format!("{body}000000"),
        "x".repeat(10_000),
    ] {
        // There is no database: a malformed token must not need one.
        let assert = env
            .verify(&input, &[])
            .code(1)
            .stdout("invalid: malformed\n");
        assert!(stderr(&assert).is_empty(), "{}", stderr(&assert));
    }
    assert!(!env.store_exists());
}

#[test]
fn a_well_formed_token_without_a_database_is_an_environment_error() {
    let env = TestEnv::new();
    let token = forge(&"A".repeat(12), &"b".repeat(43));
    let assert = env.verify(&token, &[]).code(3).stdout("");
    assert_error(&assert, &env.missing_store_error());
    assert!(!stderr(&assert).contains(&token));
    assert!(!env.store_exists(), "verify must not create a database");
}

#[test]
fn unknown_id_wrong_secret_and_revoked_give_one_answer() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let unknown_id = forge("ZZZZZZZZZZZZ", secret_of(&token));
    let wrong_secret = forge(id_of(&token), &"q".repeat(43));
    for candidate in [&unknown_id, &wrong_secret] {
        let assert = env
            .verify(candidate, &[])
            .code(1)
            .stdout("invalid: unknown\n");
        assert!(stderr(&assert).is_empty());
        let reply = json(&env.verify(candidate, &["--json"]).code(1));
        assert_eq!(reply["reason"], "unknown");
        assert_eq!(
            reply["project"],
            Value::Null,
            "nothing is told about an unproven token"
        );
    }
    env.run(&["token", "revoke", id_of(&token), "--yes"])
        .success();
    env.verify(&token, &[]).code(1).stdout("invalid: unknown\n");
    let rows = env
        .sql()
        .count("SELECT count(*) FROM tokens WHERE last_used_at IS NOT NULL");
    assert_eq!(rows, 0, "a failed verification recorded a use");
}

#[test]
fn expired_token_is_not_valid() {
    let env = TestEnv::new();
    env.project("demo");
    let token = token_at(&env, "-31d", "demo", "30");
    env.verify(&token, &[]).code(1).stdout("invalid: expired\n");
    let reply = json(&env.verify(&token, &["--json"]).code(1));
    assert_eq!(reply["reason"], "expired");
    assert_eq!(reply["id"], id_of(&token));
    // Still valid 29 days after creation, in that process's clock.
    let still = moved_clock(&env, "-2d")
        .arg("verify")
        .write_stdin(token.clone())
        .assert()
        .success();
    without_clock_warning(&stderr(&still), "-2d");
}

#[test]
fn wrong_project_is_not_valid() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("other");
    let token = env.token("demo", "30");
    env.verify(&token, &["--project", "other"])
        .code(1)
        .stdout("invalid: wrong_project\n");
    let reply = json(&env.verify(&token, &["-p", "other", "--json"]).code(1));
    assert_eq!(reply["reason"], "wrong_project");
    assert_eq!(reply["project"], "demo");
    env.verify(&token, &["-p", "demo"]).success();
}

#[test]
fn a_use_that_cannot_be_recorded_warns_but_stays_valid() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    // Another process holds the write lock for longer than the busy timeout.
    let blocker = env.hold_write_lock();
    let started = Instant::now();
    let assert = env.verify(&token, &[]).success();
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "did not wait for the lock"
    );
    assert!(stdout(&assert).starts_with("valid: "));
    let err = stderr(&assert);
    assert!(
        err.starts_with("warning: ") && err.contains("not recorded"),
        "{err}"
    );
    blocker.release();
}

#[test]
fn a_long_stream_is_read_only_up_to_a_bound() {
    let env = TestEnv::new();
    let huge = "a".repeat(8 << 20);
    env.verify(&huge, &[])
        .code(1)
        .stdout("invalid: malformed\n");
    env.cmd()
        .arg("verify")
        .write_stdin(vec![0xff, 0xfe, b'\n'])
        .assert()
        .code(1)
        .stdout("invalid: malformed\n");
}

#[test]
fn a_closed_stdout_does_not_change_the_verdict() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    for (input, code) in [("garbage".to_owned(), 1), (token, 0)] {
        for args in [&[][..], &["--json"]] {
            let out = env
                .std_cmd()
                .arg("verify")
                .args(args)
                .env("AUTHEONA_TOKEN", &input)
                .stdout(closed_pipe())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(code), "{args:?}");
        }
    }
}

#[test]
fn an_endless_line_is_answered_after_a_bounded_read() {
    use std::io::Write;
    let env = TestEnv::new();
    let mut child = env
        .std_cmd()
        .arg("verify")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Writes until autheona stops reading and exits (then the pipe breaks).
    let writer = std::thread::spawn(move || {
        let chunk = [b'a'; 8192];
        let mut written = 0usize;
        while stdin.write_all(&chunk).is_ok() {
            written += chunk.len();
            assert!(written < (1 << 30), "autheona read a whole GiB");
        }
    });
    // A hang guard, not a timing: the test fails rather than waits forever.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "verify kept reading an endless line"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out, "invalid: malformed\n");
    writer.join().unwrap();
}

#[test]
fn a_byte_order_mark_before_the_token_on_stdin_is_stripped() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    env.cmd()
        .arg("verify")
        .write_stdin(format!("\u{feff}{token}\r\n"))
        .assert()
        .success();
}

#[test]
fn a_byte_order_mark_before_autheona_token_is_stripped() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    env.cmd()
        .arg("verify")
        .env("AUTHEONA_TOKEN", format!("\u{feff}{token}"))
        .assert()
        .success();
}

#[test]
fn only_a_leading_byte_order_mark_is_stripped() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    for input in [
        format!("{token}\u{feff}\n"),
        format!("\u{feff}\u{feff}{token}\n"),
    ] {
        env.cmd()
            .arg("verify")
            .write_stdin(input)
            .assert()
            .code(1)
            .stdout("invalid: malformed\n");
    }
}
