//! The prompts, driven through a real pseudo-terminal: the binary's stdin, stdout and stderr are
//! all the pty, as when a person runs it. Keys are sent only once the prompt they answer is on
//! screen, and every wait has a timeout so a missing prompt fails instead of hanging.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta};
use rexpect::process::WaitStatus;
use rexpect::reader::Regex;
use rexpect::session::{PtySession, spawn_command};
use serde_json::Value;

use crate::common::*;

/// How long any single wait (for a prompt, for the end of output) may take.
const TIMEOUT_MS: u64 = 10_000;

const DOWN: &str = "\x1b[B";
const ENTER: &str = "\r";

/// The binary with the same hermetic environment as `TestEnv::cmd`, for the pty. TERM is fixed
/// too, so the outer terminal type cannot change the rendering.
fn pty_command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = env.std_cmd();
    cmd.env("TERM", "xterm").args(args);
    cmd
}

/// A running autheona on a pty, with everything read from it so far.
struct Pty {
    session: PtySession,
    transcript: String,
}

impl Pty {
    fn spawn(env: &TestEnv, args: &[&str]) -> Pty {
        Pty::spawn_command(pty_command(env, args))
    }

    fn spawn_command(cmd: Command) -> Pty {
        let session = spawn_command(cmd, Some(TIMEOUT_MS)).expect("spawn autheona on a pty");
        Pty {
            session,
            transcript: String::new(),
        }
    }

    /// Waits until `text` (ASCII) appears in the output.
    fn expect(&mut self, text: &str) {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(text);
            }
            Err(err) => panic!(
                "waiting for {text:?}: {err}\n--- output before ---\n{}",
                self.transcript
            ),
        }
    }

    /// Sends keys as they would arrive from a keyboard: one write, flushed at once.
    fn keys(&mut self, keys: &str) {
        self.session.send(keys).expect("write to the pty");
        self.session.flush().expect("flush the pty");
    }

    /// Reads to the end of the output and returns it all with the exit code.
    fn finish(mut self) -> (String, i32) {
        match self.session.exp_eof() {
            Ok(rest) => self.transcript.push_str(&rest),
            Err(err) => panic!(
                "waiting for the end of output: {err}\n--- output before ---\n{}",
                self.transcript
            ),
        }
        let code = match self.session.process().wait() {
            Ok(WaitStatus::Exited(_, code)) => code,
            other => panic!(
                "autheona did not exit normally: {other:?}\n{}",
                self.transcript
            ),
        };
        (self.transcript, code)
    }
}

/// How text appears in the transcript: rexpect turns each byte read into one char, so
/// non-ASCII text has to be compared byte by byte.
fn as_read(text: &str) -> String {
    text.bytes().map(char::from).collect()
}

/// The pty's lines, without the carriage returns the terminal adds.
fn lines(transcript: &str) -> Vec<&str> {
    transcript
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect()
}

/// The one line of output that is a token and nothing else.
fn token_in_transcript(transcript: &str) -> String {
    let shape = Regex::new("^aut_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}$").unwrap();
    let found: Vec<&str> = lines(transcript)
        .into_iter()
        .filter(|line| shape.is_match(line))
        .collect();
    assert_eq!(found.len(), 1, "expected one token line in:\n{transcript}");
    assert_eq!(found[0].len(), 66);
    found[0].to_owned()
}

fn project_names(env: &TestEnv) -> Vec<String> {
    let out = stdout(&env.run(&["project", "list", "--json"]).success());
    serde_json::from_str::<Value>(&out)
        .expect("project list --json")
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn rfc3339(value: &Value) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a date string")).expect("RFC 3339")
}

fn assert_no_longer_verifies(env: &TestEnv, token: &str) {
    let out = stdout(&env.verify(token, &[]).code(1));
    assert_eq!(out.trim_end(), "invalid: unknown");
}

#[test]
fn token_create_asks_for_project_expiration_and_description() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("other");

    let mut pty = Pty::spawn(&env, &["token", "create"]);
    pty.expect("Project:");
    pty.expect("demo");
    pty.expect("other");
    pty.keys(DOWN);
    pty.keys(ENTER);
    pty.expect("Project: other");

    pty.expect("Expiration:");
    pty.expect("Never expire");
    pty.keys(DOWN);
    pty.keys(DOWN);
    pty.keys(ENTER);
    pty.expect("Expiration: 365 days");

    pty.expect("Description (optional): ");
    pty.keys("Laptop 🚀");
    pty.keys(ENTER);
    pty.expect("only time the token is shown");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");

    // The 30-day default was on screen before the choice.
    assert!(transcript.contains("> 30 days"), "{transcript}");
    assert!(
        transcript.contains(&as_read("Description (optional): Laptop 🚀")),
        "{transcript}"
    );
    let token = token_in_transcript(&transcript);
    assert!(
        transcript.contains(&format!(
            "Created token {} for project other",
            id_of(&token)
        )),
        "{transcript}"
    );

    let tokens = list_json(&env, &[]);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let listed = &tokens[0];
    assert_eq!(listed["id"], id_of(&token));
    assert_eq!(listed["project"], "other");
    assert_eq!(listed["description"], "Laptop 🚀");
    assert_eq!(listed["status"], "active");
    assert_eq!(
        rfc3339(&listed["expires_at"]) - rfc3339(&listed["created_at"]),
        TimeDelta::days(365)
    );

    let out = stdout(&env.verify(&token, &["--project", "other"]).success());
    assert!(
        out.starts_with(&format!("valid: token {}", id_of(&token))),
        "{out}"
    );
    env.verify(&token, &["--project", "demo"]).code(1);
}

#[test]
fn token_create_with_flags_asks_only_for_the_description() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("other");

    let mut pty = Pty::spawn(
        &env,
        &["token", "create", "--project", "demo", "--expires", "never"],
    );
    pty.expect("Description (optional): ");
    pty.keys(ENTER);
    pty.expect("never expires");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(
        !transcript.contains("Project:"),
        "asked for the project:\n{transcript}"
    );
    assert!(
        !transcript.contains("Expiration:"),
        "asked for the expiration:\n{transcript}"
    );
    let token = token_in_transcript(&transcript);

    let tokens = list_json(&env, &[]);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["id"], id_of(&token));
    assert_eq!(tokens[0]["project"], "demo");
    assert_eq!(tokens[0]["description"], Value::Null);
    assert_eq!(tokens[0]["expires_at"], Value::Null);
    env.verify(&token, &["--project", "demo"]).success();
}

#[test]
fn token_create_reasks_when_the_description_has_an_escape_character() {
    let env = TestEnv::new();
    env.project("demo");

    let mut pty = Pty::spawn(
        &env,
        &["token", "create", "--project", "demo", "--expires", "30"],
    );
    pty.expect("Description (optional): ");
    // U+009B is the one-character form of ESC [ (CSI); the ESC key itself never reaches the
    // text (dialoguer reads it as a key), so this is the escape a person can type or paste.
    pty.keys("bad\u{9b}31mred");
    pty.keys(ENTER);
    pty.expect("error: the description contains the invisible or control character U+009B");
    pty.expect("Description (optional): ");
    pty.keys("Build server");
    pty.keys(ENTER);
    pty.expect("only time the token is shown");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let token = token_in_transcript(&transcript);

    let tokens = list_json(&env, &[]);
    assert_eq!(
        tokens.len(),
        1,
        "only the accepted answer makes a token: {tokens:?}"
    );
    assert_eq!(tokens[0]["id"], id_of(&token));
    assert_eq!(tokens[0]["description"], "Build server");
    env.verify(&token, &[]).success();
}

#[test]
fn token_create_reasks_when_the_description_holds_a_token() {
    let env = TestEnv::new();
    env.project("demo");
    let pasted = env.token("demo", "30");

    let mut pty = Pty::spawn(
        &env,
        &["token", "create", "--project", "demo", "--expires", "30"],
    );
    pty.expect("Description (optional): ");
    pty.keys(&format!("key {pasted}"));
    pty.keys(ENTER);
    pty.expect("error: the description \"key aut_<redacted>\" holds what looks like a token");
    pty.expect("Description (optional): ");
    pty.keys("Build server");
    pty.keys(ENTER);
    pty.expect("only time the token is shown");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let token = token_in_transcript(&transcript);

    let tokens = list_json(&env, &[]);
    assert_eq!(ids(&tokens), [id_of(&pasted), id_of(&token)]);
    assert_eq!(tokens[1]["description"], "Build server");
}

#[test]
fn token_revoke_asks_first_and_no_is_the_default() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.described_token("demo", "30", "Deploy key");
    let id = id_of(&token).to_owned();

    // Enter takes the default, which is no.
    let mut pty = Pty::spawn(&env, &["token", "revoke", &id]);
    pty.expect(&format!(
        "Revoke token {id} (project demo, \"Deploy key\", created "
    ));
    pty.expect("[y/N]");
    pty.keys(ENTER);
    pty.expect("cancelled; nothing was changed");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 1, "{transcript}");
    assert!(!transcript.contains("Revoked"), "{transcript}");
    env.verify(&token, &[]).success();

    // y revokes at once.
    let mut pty = Pty::spawn(&env, &["token", "revoke", &id]);
    pty.expect(&format!(
        "Revoke token {id} (project demo, \"Deploy key\", created "
    ));
    pty.expect("[y/N]");
    pty.keys("y");
    pty.expect(&format!("Revoked token {id}."));
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert_no_longer_verifies(&env, &token);
}

#[test]
fn project_delete_says_how_many_tokens_it_revokes() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("other");
    let first = env.token("demo", "30");
    let second = env.token("demo", "never");
    let kept = env.token("other", "90");

    // Declining changes nothing.
    let mut pty = Pty::spawn(&env, &["project", "delete", "demo"]);
    pty.expect("Delete project demo and revoke its 2 tokens?");
    pty.expect("[y/N]");
    pty.keys("n");
    pty.expect("cancelled; nothing was changed");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(project_names(&env), ["demo", "other"]);
    env.verify(&first, &[]).success();

    let mut pty = Pty::spawn(&env, &["project", "delete", "demo"]);
    pty.expect("Delete project demo and revoke its 2 tokens?");
    pty.expect("[y/N]");
    pty.keys("y");
    pty.expect("Deleted project demo and revoked 2 tokens.");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");

    assert_eq!(project_names(&env), ["other"]);
    assert_no_longer_verifies(&env, &first);
    assert_no_longer_verifies(&env, &second);
    env.verify(&kept, &["--project", "other"]).success();
}

/// Waits until the program has turned the terminal's echo off, i.e. is reading a secret. On
/// Linux the termios read through the pty's master side are those of the program's terminal.
fn wait_for_echo_off(pty: &Pty) {
    let master = pty.session.process().get_file_handle().expect("pty handle");
    let deadline = Instant::now() + Duration::from_millis(TIMEOUT_MS);
    loop {
        // SAFETY: a zeroed termios is a valid value to be overwritten by tcgetattr.
        let mut termios: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptor is open for the duration of the call.
        let rc = unsafe { libc::tcgetattr(master.as_raw_fd(), &mut termios) };
        assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        if termios.c_lflag & libc::ECHO == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the terminal still echoes while the token is asked for:\n{}",
            pty.transcript
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn verify_at_a_terminal_asks_for_the_token_without_echo() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");

    // rexpect turns the terminal's echo off; turn it back on, as in a person's terminal, so
    // that only autheona itself can keep the token from being shown.
    let mut cmd = pty_command(&env, &["verify"]);
    // SAFETY: the hook only calls tcgetattr and tcsetattr, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut termios: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut termios) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            termios.c_lflag |= libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &termios) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut pty = Pty::spawn_command(cmd);
    pty.expect("Token: ");
    // The secret prompt discards input typed before it turned echo off; wait for that.
    wait_for_echo_off(&pty);
    pty.session.send_line(&token).expect("write to the pty");
    pty.expect(&format!(
        "valid: token {} (project demo, expires ",
        id_of(&token)
    ));
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(
        !transcript.contains(&token),
        "the token was echoed:\n{transcript}"
    );
    assert!(
        !transcript.contains(&token[17..]),
        "the secret was echoed:\n{transcript}"
    );

    // The verification was real: it recorded the use.
    let tokens = list_json(&env, &[]);
    assert_ne!(tokens[0]["last_used_at"], Value::Null, "{tokens:?}");
}

#[test]
fn ctrl_c_at_a_prompt_gives_the_cursor_back() {
    let env = TestEnv::new();
    env.project("demo");
    let mut pty = Pty::spawn(&env, &["token", "create"]);
    pty.expect("Project");
    pty.keys("\x03");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 130, "{transcript}");
    let hidden = transcript
        .rfind("\x1b[?25l")
        .expect("the prompt hides the cursor");
    let shown = transcript
        .rfind("\x1b[?25h")
        .expect("the cursor is shown again");
    assert!(shown > hidden, "{transcript:?}");
    assert!(list_json(&env, &[]).is_empty());
}

#[test]
fn colour_only_without_no_color() {
    let env = TestEnv::new();
    let mut plain = pty_command(&env, &["project", "create", "bad name"]);
    plain.env("NO_COLOR", "1");
    let (transcript, code) = Pty::spawn_command(plain).finish();
    assert_eq!(code, 2);
    assert!(transcript.contains("error: "), "{transcript}");
    assert!(
        !transcript.contains('\x1b'),
        "colour despite NO_COLOR: {transcript:?}"
    );

    let mut coloured = pty_command(&env, &["project", "create", "bad name"]);
    coloured.env_remove("NO_COLOR");
    let (transcript, code) = Pty::spawn_command(coloured).finish();
    assert_eq!(code, 2);
    assert!(
        transcript.contains("\x1b["),
        "no colour at a terminal: {transcript:?}"
    );
}

#[test]
fn an_empty_no_color_leaves_colour_on() {
    let env = TestEnv::new();
    let mut cmd = pty_command(&env, &["project", "create", "bad name"]);
    cmd.env("NO_COLOR", "");
    let (transcript, code) = Pty::spawn_command(cmd).finish();
    assert_eq!(code, 2);
    assert!(
        transcript.contains("\x1b["),
        "no colour with an empty NO_COLOR: {transcript:?}"
    );
}

#[test]
fn an_unknown_project_is_refused_before_any_question() {
    let env = TestEnv::new();
    env.project("demo");
    let (transcript, code) = Pty::spawn(&env, &["token", "create", "--project", "nope"]).finish();
    assert_eq!(code, 1, "{transcript}");
    assert!(
        transcript.contains("no project named 'nope'"),
        "{transcript}"
    );
    assert!(
        !transcript.contains("Expiration"),
        "asked before refusing: {transcript}"
    );
}

/// A terminal on stdin but stderr sent to a file: nobody can see a prompt.
fn without_visible_prompts(env: &TestEnv, args: &[&str]) -> (String, i32, String) {
    let log = env.dir().join("stderr.log");
    let mut cmd = pty_command(env, args);
    cmd.stderr(std::fs::File::create(&log).unwrap());
    let (transcript, code) = Pty::spawn_command(cmd).finish();
    (transcript, code, std::fs::read_to_string(&log).unwrap())
}

#[test]
fn no_prompt_when_stderr_is_not_a_terminal() {
    let env = TestEnv::new();
    env.project("demo");
    let (_, code, err) = without_visible_prompts(&env, &["token", "create"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--project"), "{err}");
    let (_, code, err) = without_visible_prompts(&env, &["verify"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AUTHEONA_TOKEN"), "{err}");
    let token = env.token("demo", "30");
    let (_, code, err) = without_visible_prompts(&env, &["token", "revoke", id_of(&token)]);
    assert_eq!(code, 2, "{err}");
    env.verify(&token, &[]).success();
}

#[test]
fn token_rotate_asks_first_and_only_yes_replaces_the_token() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.described_token("demo", "90", "Deploy key");
    let id = id_of(&old).to_owned();
    let question = format!("Rotate token {id} (project demo, \"Deploy key\", created ");
    let before = list_json(&env, &[]);

    let mut pty = Pty::spawn(&env, &["token", "rotate", &id]);
    pty.expect(&question);
    pty.expect("[y/N]");
    pty.keys("n");
    pty.expect("cancelled; nothing was changed");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 1, "{transcript}");
    assert!(
        !transcript.contains("aut_"),
        "a token was shown:\n{transcript}"
    );
    assert_eq!(list_json(&env, &[]), before);
    env.verify(&old, &[]).success();

    let mut pty = Pty::spawn(&env, &["token", "rotate", &id]);
    pty.expect(&question);
    pty.expect("A new token replaces it.");
    pty.expect("[y/N]");
    pty.keys("y");
    // The grace period is asked after the confirmation; the first choice is at once.
    pty.expect("When should the old token stop working?");
    for choice in ["At once", "In 1 hour", "In 24 hours", "In 7 days"] {
        pty.expect(choice);
    }
    pty.keys(ENTER);
    pty.expect("When should the old token stop working?: At once");
    pty.expect(&format!("Rotated token {id}: it no longer works."));
    pty.expect("only time the token is shown");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let new = token_in_transcript(&without_escapes(&transcript));

    let tokens = list_json(&env, &[]);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["id"], id_of(&new));
    assert_eq!(tokens[0]["description"], "Deploy key");
    assert_eq!(
        rfc3339(&tokens[0]["expires_at"]) - rfc3339(&tokens[0]["created_at"]),
        TimeDelta::days(90)
    );
    env.verify(&new, &["--project", "demo"]).success();
    assert_no_longer_verifies(&env, &old);
}

#[test]
fn token_rotate_at_a_terminal_offers_a_grace_period_and_keeps_the_old_token_working() {
    let env = TestEnv::new();
    env.project("demo");
    let old = env.described_token("demo", "90", "Deploy key");
    let id = id_of(&old).to_owned();

    let mut pty = Pty::spawn(&env, &["token", "rotate", &id]);
    pty.expect("[y/N]");
    pty.keys("y");
    pty.expect("In 24 hours");
    pty.keys(DOWN);
    pty.keys(DOWN);
    pty.keys(ENTER);
    pty.expect("When should the old token stop working?: In 24 hours");
    pty.expect(&format!("Rotated token {id}: it keeps working until "));
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let new = token_in_transcript(&without_escapes(&transcript));

    let row = listed(&env, &id);
    assert_eq!(row["replaced_by"], id_of(&new));
    let grace = json_date(&row["stops_at"]) - chrono::Utc::now();
    assert!(
        grace > TimeDelta::hours(23) && grace <= TimeDelta::hours(24),
        "stops in {grace}"
    );
    env.verify(&old, &[]).success();
    env.verify(&new, &[]).success();

    // --grace answers the question: it is not asked; nor is it for an expired token.
    let other = env.token("demo", "30");
    let mut pty = Pty::spawn(&env, &["token", "rotate", id_of(&other), "--grace", "30m"]);
    pty.expect("A new token replaces it, and it keeps working until ");
    pty.keys("y");
    pty.expect(&format!(
        "Rotated token {}: it keeps working until ",
        id_of(&other)
    ));
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains("When should"), "{transcript}");
    let expired = token_at(&env, "-40d", "demo", "30");
    let mut pty = Pty::spawn(&env, &["token", "rotate", id_of(&expired)]);
    pty.expect("A new token replaces it, and it stops working at once.");
    pty.keys("y");
    pty.expect(&format!(
        "Rotated token {}: it no longer works.",
        id_of(&expired)
    ));
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains("When should"), "{transcript}");
}

#[test]
fn token_prune_lists_then_asks_once_for_all_it_revokes() {
    let env = TestEnv::new();
    env.project("demo");
    let first = token_at(&env, "-40d", "demo", "30");
    let second = token_at(&env, "-100d", "demo", "90");
    let kept = env.token("demo", "30");
    let question = "Revoke 2 tokens? They stop working at once and cannot be recovered.";
    let before = list_json(&env, &[]);

    let mut pty = Pty::spawn_command(sized_terminal(&env, &["token", "prune", "--expired"], 200));
    pty.expect(question);
    pty.expect("[y/N]");
    pty.keys("n");
    pty.expect("cancelled; nothing was changed");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 1, "{transcript}");
    assert!(!transcript.contains("Revoked"), "{transcript}");
    assert_eq!(list_json(&env, &[]), before);

    let mut pty = Pty::spawn_command(sized_terminal(&env, &["token", "prune", "--expired"], 200));
    pty.expect(question);
    pty.expect("[y/N]");
    pty.keys("y");
    pty.expect("Revoked 2 tokens.");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    // What goes is on screen before the one question.
    let asked = transcript.find(question).unwrap();
    for token in [&first, &second] {
        let shown = transcript
            .find(id_of(token))
            .expect("listed before the question");
        assert!(shown < asked, "{transcript}");
    }
    assert!(!transcript[..asked].contains(id_of(&kept)), "{transcript}");
    assert_eq!(transcript.matches("[y/N]").count(), 1, "{transcript}");

    assert_no_longer_verifies(&env, &first);
    assert_no_longer_verifies(&env, &second);
    env.verify(&kept, &[]).success();
}

/// The transcript without the escape sequences (CSI) that hide and show the cursor and clear
/// lines: they share lines with stdout's output on a terminal.
fn without_escapes(transcript: &str) -> String {
    Regex::new("\x1b\\[[0-9;?]*[A-Za-z]")
        .unwrap()
        .replace_all(transcript, "")
        .into_owned()
}

/// `pty_command` on a terminal `columns` wide. rexpect's pty has no size (0 columns), which a
/// person's terminal never has; tables are fitted to the width.
fn sized_terminal(env: &TestEnv, args: &[&str], columns: u16) -> Command {
    let mut cmd = pty_command(env, args);
    // SAFETY: the hook only calls ioctl, which is async-signal-safe, on the pty rexpect made
    // stdin.
    unsafe {
        cmd.pre_exec(move || {
            let size = libc::winsize {
                ws_row: 24,
                ws_col: columns,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            if libc::ioctl(0, libc::TIOCSWINSZ, &size) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// What prune will revoke is shown before it asks, with each token's id whole on one line, so a
/// person can read and copy it: in the classic 80 columns, and where the terminal reports no
/// size at all.
#[test]
fn prune_shows_whole_token_ids_before_asking_at_any_terminal_width() {
    let env = TestEnv::new();
    env.project("demo");
    let expired = [
        token_at(&env, "-40d", "demo", "30"),
        token_at(&env, "-100d", "demo", "90"),
    ];
    for columns in [80, 0] {
        let cmd = sized_terminal(&env, &["token", "prune", "--expired"], columns);
        let mut pty = Pty::spawn_command(cmd);
        pty.expect("[y/N]");
        pty.keys("n");
        let (transcript, code) = pty.finish();
        assert_eq!(code, 1, "{transcript}");
        for token in &expired {
            assert!(
                transcript.contains(id_of(token)),
                "{columns} columns: token id {} is not on one line:\n{transcript}",
                id_of(token)
            );
        }
    }
}

/// A token used while the prune question is open is not revoked: the prune looks again when
/// it revokes.
#[test]
fn prune_keeps_a_token_used_while_it_asked() {
    let env = TestEnv::new();
    env.project("demo");
    let used_meanwhile = token_at(&env, "-100d", "demo", "never");
    let stale = token_at(&env, "-100d", "demo", "never");
    let mut pty = Pty::spawn_command(sized_terminal(
        &env,
        &["token", "prune", "--unused-for", "90"],
        200,
    ));
    pty.expect("Revoke 2 tokens?");
    pty.expect("[y/N]");
    env.verify(&used_meanwhile, &[]).success();
    pty.keys("y");
    pty.expect("Revoked 1 token; 1 listed was used or revoked meanwhile, and left alone.");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    env.verify(&used_meanwhile, &[]).success();
    assert_no_longer_verifies(&env, &stale);
}

/// `scan -` with stdin a terminal would wait for a person to type a file: refused at once.
#[test]
fn scan_of_stdin_at_a_terminal_is_refused_not_awaited() {
    let env = TestEnv::new();
    let mut pty = Pty::spawn_command(pty_command(&env, &["scan", "-"]));
    pty.expect("error: - reads stdin, and stdin is a terminal");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 2, "{transcript}");
}

/// On a terminal narrower than the table, only the description wraps; ids and dates stay
/// whole, and no line is wider than the terminal.
#[test]
fn token_list_wraps_only_the_description_to_fit_the_terminal() {
    let env = TestEnv::new();
    env.project("demo");
    let description = "A long description that says where this token is used, by whom, and why";
    let token = env.described_token("demo", "30", description);
    let mut pty = Pty::spawn_command(sized_terminal(&env, &["token", "list"], 110));
    pty.expect(id_of(&token));
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let text = without_escapes(&transcript);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    assert!(lines.len() > 2, "the description wraps:\n{text}");
    for line in &lines {
        assert!(line.chars().count() <= 110, "{line:?} is wider than 110");
    }
    let row = lines.iter().find(|l| l.contains(id_of(&token))).unwrap();
    assert!(row.contains("Never") && row.contains("active"), "{row}");
    assert!(!text.contains(description), "not on one line:\n{text}");
    let words: Vec<&str> = text.split_whitespace().collect();
    for word in description.split_whitespace() {
        assert!(words.contains(&word), "{word} missing:\n{text}");
    }
}

/// With --json, stdout is for the JSON; a person asked to confirm still sees what would go,
/// before the question.
#[test]
fn prune_json_at_a_terminal_shows_the_tokens_before_asking() {
    let env = TestEnv::new();
    env.project("demo");
    let expired = token_at(&env, "-40d", "demo", "30");
    let mut pty = Pty::spawn_command(sized_terminal(
        &env,
        &["token", "prune", "--expired", "--json"],
        200,
    ));
    pty.expect("Revoke 1 token?");
    pty.keys("y");
    pty.expect("Revoked 1 token.");
    let (transcript, code) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let asked = transcript.find("Revoke 1 token?").unwrap();
    let listed = transcript.find(id_of(&expired)).expect("listed");
    assert!(listed < asked, "{transcript}");
    assert!(transcript.contains("\"revoked\": 1"), "{transcript}");
    assert_no_longer_verifies(&env, &expired);
}
