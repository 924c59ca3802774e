//! The clock and the time zone: a `TZ` that is unsafe to read, a clock before 1970 or past
//! 9999. Every run has a timeout, so a regression fails instead of hanging.

use std::time::Duration;

use assert_cmd::Command;
use assert_cmd::assert::Assert;

use crate::common::*;

/// Far more than any of these commands takes; a hang or a read of gigabytes fails here.
const PROMPTLY: Duration = Duration::from_secs(15);

/// A database with a project and a dated token; the token and its row as listed.
fn database_with_a_dated_token() -> (TestEnv, String, serde_json::Value) {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    let row = listed(&env, id_of(&token));
    (env, token, row)
}

/// Far more memory than any of these commands needs: a regression that reads a device or a
/// huge file whole fails at this bound instead of taking the machine's memory.
const MEMORY_BOUND: libc::rlim_t = 2 << 30;

/// The test's command with TZ set, a timeout and a bound on its memory.
fn with_tz(env: &TestEnv, tz: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut std_cmd = env.std_cmd();
    std_cmd.env("TZ", tz);
    // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        std_cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_BOUND,
                rlim_max: MEMORY_BOUND,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut cmd = Command::from_std(std_cmd);
    cmd.timeout(PROMPTLY);
    cmd
}

/// One warning line on stderr, naming TZ and saying times are in UTC.
fn assert_one_tz_warning(assert: &Assert, tz: &str) {
    let err = stderr(assert);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one warning expected:\n{err}");
    assert!(
        lines[0].starts_with(&format!("warning: TZ={tz} is ignored: "))
            && lines[0].ends_with("; times are shown in UTC"),
        "{err}"
    );
}

/// `token list` and `verify` of a dated token, with TZ set to `tz`: both end promptly, exit
/// 0, warn once, and show times in UTC.
fn assert_tz_ignored(tz: &str) {
    let (env, token, row) = database_with_a_dated_token();
    let list = with_tz(&env, tz).args(["token", "list"]).assert().success();
    assert_one_tz_warning(&list, tz);
    let table = stdout(&list);
    let created = for_people(&row["created_at"]);
    let expires = for_people(&row["expires_at"]);
    assert!(
        table.contains(&format!("{created}  {expires}")),
        "times in UTC ({created}, {expires}) expected:\n{table}"
    );
    let verify = with_tz(&env, tz)
        .arg("verify")
        .write_stdin(format!("{token}\n"))
        .assert()
        .success();
    assert_one_tz_warning(&verify, tz);
    assert_eq!(
        stdout(&verify),
        format!(
            "valid: token {} (project demo, expires {expires})\n",
            id_of(&token)
        )
    );
}

#[test]
fn tz_naming_dev_zero_is_ignored_with_one_warning() {
    assert_tz_ignored("/dev/zero");
}

#[test]
fn tz_naming_dev_urandom_is_ignored_with_one_warning() {
    assert_tz_ignored(":/dev/urandom");
}

#[test]
fn tz_naming_a_fifo_is_ignored_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("zone");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success());
    assert_tz_ignored(fifo.to_str().unwrap());
}

#[test]
fn tz_naming_a_huge_regular_file_is_ignored_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("zone");
    // Sparse: 4 GiB that take no disk, but that a full read would hold in memory.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    assert_tz_ignored(huge.to_str().unwrap());
}

#[test]
fn tz_naming_a_small_file_that_is_not_a_zone_is_ignored_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("zone");
    std::fs::write(&text, "Europe/Paris\n").unwrap();
    assert_tz_ignored(&format!(":{}", text.display()));
}

#[test]
fn tz_naming_an_empty_file_is_ignored_as_too_small() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("zone");
    std::fs::File::create(&empty).unwrap();
    let tz = empty.to_str().unwrap();
    assert_tz_ignored(tz);
    let (env, _, _) = database_with_a_dated_token();
    let list = with_tz(&env, tz)
        .args(["project", "list"])
        .assert()
        .success();
    assert_eq!(
        stderr(&list),
        format!(
            "warning: TZ={tz} is ignored: {tz} is too small for a time zone file; times are shown in UTC\n"
        )
    );
}

#[test]
fn tz_naming_proc_kmsg_is_ignored_without_waiting_for_it() {
    // A regular file of size 0 whose plain read waits for the kernel's next message.
    if !crate::scan::kmsg_opens() {
        return;
    }
    assert_tz_ignored("/proc/kmsg");
}

#[test]
fn tz_rules_and_zone_names_are_honoured_without_a_warning() {
    let (env, _, row) = database_with_a_dated_token();
    let created = json_date(&row["created_at"]);
    // A POSIX rule names no file: UTC+3 all year.
    let list = with_tz(&env, "XXX-3")
        .args(["token", "list"])
        .assert()
        .success()
        .stderr("");
    let shifted = (created + chrono::TimeDelta::hours(3))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert!(stdout(&list).contains(&shifted), "{}", stdout(&list));
    // A zone file of the tz database, when the machine has it (Debian package tzdata).
    if std::path::Path::new("/usr/share/zoneinfo/Etc/GMT-3").is_file() {
        for tz in ["Etc/GMT-3", ":Etc/GMT-3", "/usr/share/zoneinfo/Etc/GMT-3"] {
            let list = with_tz(&env, tz)
                .args(["token", "list"])
                .assert()
                .success()
                .stderr("");
            assert!(stdout(&list).contains(&shifted), "{tz}: {}", stdout(&list));
        }
    }
}

/// Every command, with what it needs (a token on stdin for verify).
fn every_command(token: &str) -> Vec<(Vec<&'static str>, Option<String>)> {
    let id: &'static str = Box::leak(id_of(token).to_owned().into_boxed_str());
    [
        vec!["project", "create", "other"],
        vec!["project", "list"],
        vec!["project", "delete", "demo", "--yes"],
        vec!["token", "create", "-p", "demo", "-e", "30"],
        vec!["token", "list"],
        vec!["token", "revoke", id, "--yes"],
        vec!["token", "rotate", id, "--yes"],
        vec!["token", "prune", "--expired", "--yes"],
        vec!["scan", "."],
        vec!["completions", "bash"],
    ]
    .into_iter()
    .map(|args| (args, None))
    .chain([(vec!["verify"], Some(format!("{token}\n")))])
    .collect()
}

/// With the clock at `clock` (libfaketime's FAKETIME), every command exits 3 with one error
/// line containing `reads` and a hint, and changes nothing.
fn assert_every_command_refuses_the_clock(clock: &str, reads: &str) {
    let (env, token, _) = database_with_a_dated_token();
    let before = env.store_content();
    for (args, stdin) in every_command(&token) {
        let mut cmd = moved_clock(&env, clock);
        cmd.args(&args).timeout(PROMPTLY);
        if let Some(stdin) = stdin {
            cmd.write_stdin(stdin);
        }
        let assert = cmd.assert().code(3);
        let hint = assert_error(&assert, &format!("error: the system clock reads {reads}"));
        assert_eq!(
            hint.as_deref(),
            Some("hint: set the system clock to the current date and time"),
            "{args:?}"
        );
    }
    assert!(env.store_content() == before, "the database changed");
    assert!(verifies(&env, &token));
}

#[test]
fn a_clock_before_1970_is_an_environment_error_for_every_command() {
    assert_every_command_refuses_the_clock(
        "@1969-12-31 23:59:59",
        "1969-12-31 23:59:59 UTC, before 1970",
    );
}

#[test]
fn a_clock_past_the_year_9999_is_an_environment_error_for_every_command() {
    assert_every_command_refuses_the_clock("+300000y", "a time past the year 9999");
}

#[test]
fn completing_with_a_clock_before_1970_offers_nothing_and_does_not_panic() {
    let (env, token, _) = database_with_a_dated_token();
    let out = completing_revoke(moved_clock(&env, "@1969-12-31 23:59:59"))
        .timeout(PROMPTLY)
        .assert()
        .success()
        .stderr("");
    assert!(!stdout(&out).contains(id_of(&token)), "{}", stdout(&out));
    // The same request with the clock right offers the token: the request is well-formed.
    let right = completing_revoke(env.cmd()).assert().success();
    assert!(stdout(&right).contains(id_of(&token)), "{}", stdout(&right));
}

/// `cmd` as bash's completion asks for the token ids after `autheona token revoke `.
fn completing_revoke(mut cmd: assert_cmd::Command) -> assert_cmd::Command {
    cmd.env("COMPLETE", "bash")
        .env("_CLAP_IFS", "\n")
        .env("_CLAP_COMPLETE_INDEX", "3")
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .args(["--", "autheona", "token", "revoke", ""]);
    cmd
}
