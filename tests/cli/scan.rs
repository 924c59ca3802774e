//! `autheona scan`: tokens found in files, trees and stdin, never a secret shown.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::assert::Assert;
use serde_json::Value;

use crate::common::*;

/// A well-formed token (valid checksum) that no database holds; `n` tells them apart.
fn forged(n: u32) -> String {
    forge(&format!("Forged{n:06}"), &format!("Secret{n:037}"))
}

/// Writes a file, making its directories first.
fn write(path: &Path, content: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A directory to scan, apart from the test's database and home.
fn work(env: &TestEnv) -> PathBuf {
    let dir = env.dir().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `autheona scan ARGS` in `dir`, with no database anywhere. Whatever it finds, no secret is
/// shown.
fn scan(env: &TestEnv, dir: &Path, args: &[&str]) -> Assert {
    let assert = env
        .bare_cmd()
        .current_dir(dir)
        .arg("scan")
        .args(args)
        .assert();
    assert_nothing_secret_shaped(&assert);
    assert
}

/// The same with the test's database.
fn scan_with_db(env: &TestEnv, dir: &Path, args: &[&str]) -> Assert {
    let assert = env.cmd().current_dir(dir).arg("scan").args(args).assert();
    assert_nothing_secret_shaped(&assert);
    assert
}

/// A secret's length: 43 letters and digits.
const SECRET_LEN: usize = 43;

/// Neither stream shows anything shaped like a secret: a run of 43 or more letters and digits,
/// as every secret is (the forged ones too). Checked on every scan run by the helpers above,
/// without knowing which tokens the scanned files hold.
fn assert_nothing_secret_shaped(assert: &Assert) {
    for bytes in [&assert.get_output().stdout, &assert.get_output().stderr] {
        let text = String::from_utf8_lossy(bytes);
        let longest = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(
            longest < SECRET_LEN,
            "something shaped like a secret was shown:\n{text}"
        );
    }
}

/// Neither stream shows any of the tokens' secrets.
fn assert_no_secret(assert: &Assert, tokens: &[&str]) {
    let out = String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
        + &String::from_utf8_lossy(&assert.get_output().stderr);
    for token in tokens {
        assert!(
            !out.contains(secret_of(token)),
            "a secret was shown:\n{out}"
        );
    }
}

#[test]
#[should_panic(expected = "shaped like a secret")]
fn the_shared_no_secret_check_catches_a_secret() {
    let output = Process::new("echo")
        .arg(format!("config.py:1:1: {}", forged(1)))
        .output()
        .unwrap();
    assert_nothing_secret_shaped(&Assert::new(output));
}

/// `git init` in `dir`, unaffected by the machine's git configuration.
fn git_init(env: &TestEnv, dir: &Path) {
    let status = tool(env, dir, "git")
        .args(["init", "-q"])
        .status()
        .expect("git is needed");
    assert!(status.success());
}

fn found_paths(assert: &Assert) -> Vec<String> {
    stdout(assert)
        .lines()
        .map(|line| line.split(':').next().unwrap().to_owned())
        .collect()
}

fn json(assert: &Assert) -> Vec<Value> {
    serde_json::from_str::<Value>(&stdout(assert))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn finds_tokens_with_their_line_and_byte_column() {
    let env = TestEnv::new();
    let dir = work(&env);
    let (a, b) = (forged(1), forged(2));
    write(
        &dir.join("config.py"),
        format!("# settings\r\nAPI = \"{a}\"\nx{b} {a}\n"),
    );
    let assert = scan(&env, &dir, &["config.py"]).code(1).stdout(format!(
        "config.py:2:8: token {}\nconfig.py:3:2: token {}\nconfig.py:3:69: token {}\n",
        id_of(&a),
        id_of(&b),
        id_of(&a)
    ));
    assert_eq!(
        stderr(&assert),
        "Found 3 tokens in 1 file. Remove them, and replace any that are active: autheona token rotate ID\n"
    );
    assert_no_secret(&assert, &[&a, &b]);
}

#[test]
fn directories_are_scanned_recursively_in_sorted_order() {
    let env = TestEnv::new();
    let dir = work(&env);
    let (a, b, c) = (forged(1), forged(2), forged(3));
    write(&dir.join("z.txt"), &a);
    write(&dir.join("m/n.txt"), format!("\n\n{b}"));
    write(&dir.join("a/b/c/deep.txt"), format!("  {c}\n"));
    write(&dir.join("a/clean.txt"), "nothing here\n");
    let expected = |prefix: &str| {
        format!(
            "{prefix}a/b/c/deep.txt:1:3: token {}\n{prefix}m/n.txt:3:1: token {}\n{prefix}z.txt:1:1: token {}\n",
            id_of(&c),
            id_of(&b),
            id_of(&a)
        )
    };
    // No path: the current directory, shown without ./ as ripgrep does.
    let assert = scan(&env, &dir, &[]).code(1).stdout(expected(""));
    assert!(
        stderr(&assert).starts_with("Found 3 tokens in 3 files."),
        "{}",
        stderr(&assert)
    );
    assert_no_secret(&assert, &[&a, &b, &c]);
    // Paths are shown as given: `.` keeps its ./, an absolute path stays absolute.
    scan(&env, &dir, &["."]).code(1).stdout(expected("./"));
    let absolute = format!("{}/", dir.display());
    scan(&env, env.dir(), &[dir.to_str().unwrap()])
        .code(1)
        .stdout(expected(&absolute));
}

#[test]
fn ignored_files_are_skipped_unless_named() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let token = forged(1);
    write(&dir.join(".gitignore"), "ignored.txt\nbuild/\n");
    write(&dir.join(".ignore"), "local-only.txt\n");
    let exclude = dir.join(".git/info/exclude");
    let mut excludes = std::fs::read_to_string(&exclude).unwrap_or_default();
    excludes.push_str("\nexcluded.txt\n");
    write(&exclude, excludes);
    write(&env.dir().join("home/.config/git/ignore"), "global.txt\n");
    for name in [
        "kept.txt",
        "ignored.txt",
        "build/out.txt",
        "local-only.txt",
        "excluded.txt",
        "global.txt",
    ] {
        write(&dir.join(name), &token);
    }
    let assert = scan(&env, &dir, &[]).code(1);
    assert_eq!(found_paths(&assert), ["kept.txt"]);
    // Named on the command line, ignored files are scanned, as ripgrep does.
    let assert = scan(
        &env,
        &dir,
        &[
            "ignored.txt",
            "build/out.txt",
            "local-only.txt",
            "excluded.txt",
            "global.txt",
        ],
    )
    .code(1);
    assert_eq!(
        found_paths(&assert),
        [
            "build/out.txt",
            "excluded.txt",
            "global.txt",
            "ignored.txt",
            "local-only.txt"
        ]
    );
    assert_no_secret(&assert, &[&token]);
}

#[test]
fn a_broken_ignore_rule_is_a_warning_and_the_others_still_apply() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let token = forged(1);
    write(&dir.join(".gitignore"), "[z-a]\nskipped.txt\n");
    write(&dir.join("found.txt"), &token);
    write(&dir.join("skipped.txt"), &token);
    let assert = scan(&env, &dir, &[]).code(1);
    assert_eq!(found_paths(&assert), ["found.txt"]);
    let err = stderr(&assert);
    assert!(
        err.starts_with("warning: ignore rules: ")
            && err
                .lines()
                .next()
                .unwrap()
                .contains("error parsing glob '[z-a]'"),
        "{err}"
    );
}

#[test]
fn gitignore_applies_only_inside_a_git_repository() {
    // As for git: outside a repository nothing is about to be committed, and an ignored .env
    // there (a deployment directory, an unpacked archive) is what a scan must see.
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join(".gitignore"), ".env\n");
    write(&dir.join(".env"), format!("TOKEN={token}\n"));
    let assert = scan(&env, &dir, &[]).code(1);
    assert_eq!(found_paths(&assert), [".env"]);
    git_init(&env, &dir);
    scan(&env, &dir, &[]).code(0).stdout("").stderr("");
}

#[test]
fn hidden_files_are_scanned_but_not_the_git_directory() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let token = forged(1);
    write(&dir.join(".env"), format!("AUTHEONA_TOKEN={token}\n"));
    write(
        &dir.join(".config/app.toml"),
        format!("token = '{token}'\n"),
    );
    write(&dir.join(".git/stray-token"), &token);
    write(&dir.join("sub/.git/config"), &token);
    let assert = scan(&env, &dir, &[]).code(1);
    assert_eq!(found_paths(&assert), [".config/app.toml", ".env"]);
    assert_no_secret(&assert, &[&token]);
}

#[test]
fn binary_files_are_skipped_unless_named() {
    let env = TestEnv::new();
    let dir = work(&env);
    let (a, b) = (forged(1), forged(2));
    write(&dir.join("image.png"), format!("\u{89}PNG\r\n\0\0\0{a}"));
    // A NUL past the first 8000 bytes does not make a file binary, as for git.
    write(
        &dir.join("late-nul.txt"),
        format!("{}\n\0{b}\n", "x".repeat(8000)),
    );
    let assert = scan(&env, &dir, &[])
        .code(1)
        .stdout(format!("late-nul.txt:2:2: token {}\n", id_of(&b)));
    assert_no_secret(&assert, &[&a, &b]);
    let assert = scan(&env, &dir, &["image.png"]).code(1);
    assert_eq!(found_paths(&assert), ["image.png"]);
    assert_no_secret(&assert, &[&a]);
}

#[test]
fn symbolic_links_inside_a_tree_are_not_followed_but_named_ones_are() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join("outside/secret.txt"), &token);
    std::fs::create_dir_all(dir.join("tree")).unwrap();
    symlink("../outside/secret.txt", dir.join("tree/file-link")).unwrap();
    symlink("../outside", dir.join("tree/dir-link")).unwrap();
    symlink(".", dir.join("tree/loop")).unwrap();
    symlink("missing", dir.join("tree/dangling")).unwrap();
    scan(&env, &dir, &["tree"]).code(0).stdout("").stderr("");
    let assert = scan(&env, &dir, &["tree/file-link", "tree/dir-link"]).code(1);
    assert_eq!(
        found_paths(&assert),
        ["tree/dir-link/secret.txt", "tree/file-link"]
    );
}

#[test]
fn stdin_is_scanned_with_a_dash() {
    let env = TestEnv::new();
    let dir = work(&env);
    let (a, b) = (forged(1), forged(2));
    write(&dir.join("file.txt"), &b);
    let assert = env
        .bare_cmd()
        .current_dir(&dir)
        .args(["scan", "file.txt", "-"])
        .write_stdin(format!("+ added line\n+  {a}\n"))
        .assert()
        .code(1)
        .stdout(format!(
            "<stdin>:2:4: token {}\nfile.txt:1:1: token {}\n",
            id_of(&a),
            id_of(&b)
        ));
    assert!(
        stderr(&assert).starts_with("Found 2 tokens in 1 file and stdin."),
        "{}",
        stderr(&assert)
    );
    assert_no_secret(&assert, &[&a, &b]);
    // Nothing on stdin: nothing found, nothing said.
    env.bare_cmd()
        .current_dir(&dir)
        .args(["scan", "-"])
        .write_stdin("")
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
}

#[test]
fn a_long_stream_is_scanned_to_its_end_and_across_its_chunks() {
    let env = TestEnv::new();
    let (a, b, c) = (forged(1), forged(2), forged(3));
    // Stdin is read 256 KiB at a time: `a` straddles the first boundary.
    let line = "some ordinary text of a log line, nothing secret in it at all\n";
    let boundary = 256 * 1024;
    let mut input = String::new();
    let mut lines = 0;
    while input.len() + line.len() < boundary - 30 {
        input.push_str(line);
        lines += 1;
    }
    let line_a = lines + 1;
    let column_a = boundary - 30 - input.len() + 1;
    input.push_str(&" ".repeat(column_a - 1));
    input.push_str(&a);
    input.push('\n');
    lines += 1;
    // Then 100 MB more, with `b` in the middle and `c` as the very last bytes.
    let filler = line.repeat(4096);
    let mut line_b = 0;
    while input.len() < 100_000_000 {
        input.push_str(&filler);
        lines += 4096;
        if line_b == 0 && input.len() > 50_000_000 {
            input.push_str(&b);
            input.push('\n');
            lines += 1;
            line_b = lines;
        }
    }
    input.push_str(&c);
    let line_c = lines + 1;
    let assert = env
        .bare_cmd()
        .args(["scan", "-"])
        .write_stdin(input)
        .assert()
        .code(1)
        .stdout(format!(
            "<stdin>:{line_a}:{column_a}: token {}\n<stdin>:{line_b}:1: token {}\n<stdin>:{line_c}:1: token {}\n",
            id_of(&a),
            id_of(&b),
            id_of(&c)
        ));
    assert_no_secret(&assert, &[&a, &b, &c]);
}

#[test]
fn stdin_given_twice_is_a_usage_error() {
    let env = TestEnv::new();
    let assert = env
        .bare_cmd()
        .args(["scan", "-", "-"])
        .write_stdin(forged(1))
        .assert()
        .code(2)
        .stdout("");
    assert!(
        stderr(&assert).starts_with("error: - (stdin) is given more than once"),
        "{}",
        stderr(&assert)
    );
}

#[test]
fn a_missing_path_is_reported_and_the_others_still_scanned() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join("present.txt"), &token);
    let assert = scan(&env, &dir, &["missing.txt", "present.txt"])
        .code(3)
        .stdout(format!("present.txt:1:1: token {}\n", id_of(&token)));
    let err = stderr(&assert);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        ["error: cannot read missing.txt: No such file or directory (os error 2)"]
    );
    assert!(err.contains("Found 1 token in 1 file."), "{err}");
    assert_no_secret(&assert, &[&token]);
    // Nothing found and a path missing: still 3.
    scan(&env, &dir, &["missing.txt"]).code(3).stdout("");
    // With --json the array still comes out, for the paths that could be read.
    let assert = scan(&env, &dir, &["--json", "missing.txt", "present.txt"]).code(3);
    assert_eq!(json(&assert).len(), 1);
}

#[test]
fn unreadable_files_and_directories_are_io_errors() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join("readable.txt"), &token);
    write(&dir.join("locked.txt"), &token);
    write(&dir.join("closed/inner.txt"), &token);
    std::fs::set_permissions(dir.join("locked.txt"), PermissionsExt::from_mode(0o000)).unwrap();
    std::fs::set_permissions(dir.join("closed"), PermissionsExt::from_mode(0o000)).unwrap();
    for path in [env.dir(), dir.as_path()] {
        std::fs::set_permissions(path, PermissionsExt::from_mode(0o755)).unwrap();
    }
    let mut cmd = env.bare_std_cmd();
    cmd.current_dir(&dir).arg("scan");
    // Root reads everything: run as nobody then.
    let mut cmd = unprivileged(&cmd);
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    std::fs::set_permissions(dir.join("closed"), PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!("readable.txt:1:1: token {}\n", id_of(&token))
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [
            "error: cannot read closed: Permission denied (os error 13)",
            "error: cannot read locked.txt: Permission denied (os error 13)"
        ],
        "{stderr}"
    );
}

/// Whether this process may open `/proc/kmsg`, a regular file to a directory walk whose plain
/// read waits for the kernel's next message: root with CAP_SYSLOG, as CI runs.
pub(crate) fn kmsg_opens() -> bool {
    let opens = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/proc/kmsg")
        .is_ok();
    if !opens {
        eprintln!("skipped: /proc/kmsg cannot be opened here (run as root to test it)");
    }
    opens
}

#[test]
fn a_walked_file_that_blocks_a_plain_read_is_not_waited_on() {
    if !kmsg_opens() {
        return;
    }
    let env = TestEnv::new();
    // /proc holds /proc/kmsg, and files that cannot be read at all: those are reported.
    let out = env
        .bare_cmd()
        .args(["scan", "--", "/proc"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "the walk hung or died: {:?}",
        out.status
    );
}

#[test]
fn look_alikes_are_never_reported() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    let mut flipped = token.clone().into_bytes();
    flipped[30] = if flipped[30] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let bad_checksum = format!("{}000000", &token[..60]);
    let cyrillic_prefix = format!("\u{430}{}", &token[1..]);
    let truncated = token[..65].to_owned();
    let dash = format!("{}-{}", &token[..16], &token[17..]);
    let text = [
        flipped.as_str(),
        &bad_checksum,
        &cyrillic_prefix,
        &truncated,
        &dash,
        "aut_ aut_x aut_",
    ]
    .join("\n");
    write(&dir.join("look-alikes.txt"), &text);
    scan(&env, &dir, &[]).code(0).stdout("").stderr("");
    env.bare_cmd()
        .args(["scan", "-"])
        .write_stdin(text)
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    // The same file with the real token added: only that one is reported.
    write(
        &dir.join("look-alikes.txt"),
        format!("{token}\n{flipped}\n"),
    );
    scan(&env, &dir, &[])
        .code(1)
        .stdout(format!("look-alikes.txt:1:1: token {}\n", id_of(&token)));
}

/// A database with an active, an expired and a revoked token, each in a file line of its own,
/// and a forged token on the last line.
fn database_and_tokens(env: &TestEnv) -> (String, String, String, String) {
    env.project("demo");
    env.project("billing");
    let active = env.token("demo", "never");
    // Created 40 days ago with a 30-day expiry: libfaketime moves that one process's clock.
    let expired = token_at(env, "-40d", "billing", "30");
    let revoked = env.token("demo", "30");
    env.run(&["token", "revoke", id_of(&revoked), "--yes"])
        .success();
    let unknown = forged(9);
    write(
        &work(env).join("tokens.txt"),
        format!("{active}\n{expired}\n{revoked}\n{unknown}\n"),
    );
    (active, expired, revoked, unknown)
}

#[test]
fn with_a_database_each_token_says_whether_it_is_active_expired_or_unknown() {
    let env = TestEnv::new();
    let (active, expired, revoked, unknown) = database_and_tokens(&env);
    let assert = scan_with_db(&env, &work(&env), &[]).code(1).stdout(format!(
        "tokens.txt:1:1: token {} (active, project demo)\n\
         tokens.txt:2:1: token {} (expired, project billing)\n\
         tokens.txt:3:1: token {} (unknown)\n\
         tokens.txt:4:1: token {} (unknown)\n",
        id_of(&active),
        id_of(&expired),
        id_of(&revoked),
        id_of(&unknown)
    ));
    assert!(
        stderr(&assert).starts_with("Found 4 tokens in 1 file."),
        "{}",
        stderr(&assert)
    );
    assert_no_secret(&assert, &[&active, &expired, &revoked, &unknown]);
}

#[test]
fn json_has_the_documented_shape() {
    let env = TestEnv::new();
    let (active, expired, revoked, _) = database_and_tokens(&env);
    let assert = scan_with_db(&env, &work(&env), &["--json"]).code(1);
    assert_no_secret(&assert, &[&active, &expired, &revoked]);
    let found = json(&assert);
    assert_eq!(found.len(), 4);
    for finding in &found {
        assert_eq!(
            keys(finding),
            [
                "column",
                "id",
                "line",
                "path",
                "project",
                "replaced_by",
                "status"
            ]
        );
    }
    assert_eq!(
        found[0],
        serde_json::json!({
            "path": "tokens.txt", "line": 1, "column": 1, "id": id_of(&active),
            "status": "active", "project": "demo", "replaced_by": null
        })
    );
    assert_eq!(found[1]["status"], "expired");
    assert_eq!(found[1]["project"], "billing");
    assert_eq!(found[2]["status"], "unknown");
    assert_eq!(found[2]["project"], Value::Null);
    // Without a database: no status, no project.
    let assert = scan(&env, &work(&env), &["--json"]).code(1);
    for finding in json(&assert) {
        assert_eq!(finding["status"], Value::Null);
        assert_eq!(finding["project"], Value::Null);
    }
    // Nothing found: an empty array.
    let empty = env.dir().join("empty");
    std::fs::create_dir(&empty).unwrap();
    scan(&env, &empty, &["--json"])
        .code(0)
        .stdout("[]\n")
        .stderr("");
}

#[test]
fn scanning_records_no_use() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    write(&work(&env).join("a.txt"), &token);
    scan_with_db(&env, &work(&env), &[]).code(1).stdout(format!(
        "a.txt:1:1: token {} (active, project demo)\n",
        id_of(&token)
    ));
    assert_eq!(list_json(&env, &[])[0]["last_used_at"], Value::Null);
    // Whereas a verification does record one.
    env.verify(&token, &["--quiet"]).success();
    assert_ne!(list_json(&env, &[])[0]["last_used_at"], Value::Null);
}

#[test]
fn without_a_database_there_is_no_status_and_no_word_about_it() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join("a.txt"), &token);
    scan(&env, &dir, &[])
        .code(1)
        .stdout(format!("a.txt:1:1: token {}\n", id_of(&token)))
        .stderr(
            "Found 1 token in 1 file. Remove it, and if it is active, replace it: autheona token rotate ID\n",
        );
    assert!(!env.dir().join("home/.local/share/autheona").exists());
}

#[test]
fn a_named_database_that_is_missing_is_a_warning() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join("a.txt"), &token);
    let plain = format!("a.txt:1:1: token {}\n", id_of(&token));
    // AUTHEONA_DB names the test's database, which does not exist (on PostgreSQL: has no
    // autheona schema, which every command but `project create` refuses).
    let assert = scan_with_db(&env, &dir, &[]).code(1).stdout(plain);
    let err = stderr(&assert);
    let warning = match backend() {
        Backend::Sqlite => format!(
            "warning: no database at {}; token statuses are not shown\n",
            env.location()
        ),
        Backend::Postgres => format!(
            "warning: token statuses are not shown: {}\n",
            env.missing_store_error()
        ),
    };
    assert!(err.starts_with(&warning), "{err}");
    assert!(!env.store_exists(), "scan must not create a database");
}

#[test]
fn a_named_file_that_is_not_a_database_is_a_warning() {
    sqlite_only!();
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join("a.txt"), &token);
    let plain = format!("a.txt:1:1: token {}\n", id_of(&token));
    // A file that is not a database: warned about, left alone, and the scan still done.
    write(env.db(), "not a database, just text\n");
    let assert = scan_with_db(&env, &dir, &[]).code(1).stdout(plain);
    let err = stderr(&assert);
    assert!(
        err.starts_with("warning: token statuses are not shown: "),
        "{err}"
    );
    assert_eq!(
        std::fs::read(env.db()).unwrap(),
        b"not a database, just text\n"
    );
}

#[test]
fn paths_are_printed_escaped_and_never_show_a_token() {
    let env = TestEnv::new();
    let dir = work(&env);
    let (a, b) = (forged(1), forged(2));
    write(&dir.join("evil\u{1b}[2J.txt"), &a);
    // A file named after a token: its name is redacted, not printed.
    write(&dir.join(format!("{b}.txt")), &a);
    let assert = scan(&env, &dir, &[]).code(1);
    let out = stdout(&assert);
    assert_eq!(
        out,
        format!(
            "aut_<redacted>.txt:1:1: token {0}\nevil\\u{{1b}}[2J.txt:1:1: token {0}\n",
            id_of(&a)
        )
    );
    assert_no_secret(&assert, &[&a, &b]);
    // In JSON alike: the value decodes to the visible text `\u{1b}`, never to a raw ESC that
    // whoever prints the value would send to a terminal.
    let assert = scan(&env, &dir, &["--json"]).code(1);
    let raw = stdout(&assert);
    assert!(!raw.contains('\u{1b}') && !raw.contains("\\u001b"), "{raw}");
    let paths: Vec<Value> = json(&assert).iter().map(|f| f["path"].clone()).collect();
    assert_eq!(paths, ["aut_<redacted>.txt", "evil\\u{1b}[2J.txt"]);
    assert_no_secret(&assert, &[&a, &b]);
}

#[test]
fn names_that_are_not_utf8_or_hold_a_backslash_stay_apart() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    // The byte 0xE9, the byte 0xE8, and the four characters \xE9.
    for name in [&b"caf\xe9.env"[..], b"caf\xe8.env", br"caf\xE9.env"] {
        write(&dir.join(OsStr::from_bytes(name)), &token);
    }
    // In the order of the names' bytes, as directories are walked.
    let assert = scan(&env, &dir, &[]).code(1);
    let id = id_of(&token);
    assert_eq!(
        stdout(&assert),
        format!(
            "caf\\\\xE9.env:1:1: token {id}\ncaf\\xE8.env:1:1: token {id}\ncaf\\xE9.env:1:1: token {id}\n"
        )
    );
    let assert = scan(&env, &dir, &["--json"]).code(1);
    let paths: Vec<Value> = json(&assert).iter().map(|f| f["path"].clone()).collect();
    assert_eq!(paths, [r"caf\\xE9.env", r"caf\xE8.env", r"caf\xE9.env"]);
}

#[test]
fn a_token_given_as_a_path_is_never_echoed() {
    let env = TestEnv::new();
    let token = forged(1);
    let assert = scan(&env, env.dir(), &[&token]).code(3).stdout("");
    assert!(
        stderr(&assert).contains("aut_<redacted>"),
        "{}",
        stderr(&assert)
    );
    assert_no_secret(&assert, &[&token]);
}

#[test]
fn a_token_without_its_prefix_given_as_a_path_is_never_echoed() {
    let env = TestEnv::new();
    let token = forge(
        "3kTMd9aPq0Zx",
        "T0kxq8Rw2ZpLm4NvB7cYe1HsJd9GfUa3WiXo5KtQb6E",
    );
    // `scan` itself checks that nothing shaped like a secret is shown.
    let assert = scan(&env, env.dir(), &["--", &token[4..], &token[17..]])
        .code(3)
        .stdout("");
    assert!(
        stderr(&assert).contains("<redacted>"),
        "{}",
        stderr(&assert)
    );
}

#[test]
fn an_empty_tree_finds_nothing_and_says_nothing() {
    let env = TestEnv::new();
    let dir = work(&env);
    scan(&env, &dir, &[]).code(0).stdout("").stderr("");
    write(&dir.join("notes.md"), "no tokens, aut_ alone\n");
    scan(&env, &dir, &["."]).code(0).stdout("").stderr("");
}

#[test]
fn a_closed_stdout_does_not_change_the_exit_code() {
    let env = TestEnv::new();
    let dir = work(&env);
    write(&dir.join("a.txt"), forged(1));
    let out = env
        .bare_std_cmd()
        .current_dir(&dir)
        .arg("scan")
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn no_ignore_scans_what_ignore_files_skip_but_never_the_git_directory() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let token = forged(1);
    write(&dir.join(".gitignore"), "ignored.txt\n");
    write(&dir.join(".ignore"), "local-only.txt\n");
    write(&env.dir().join("home/.config/git/ignore"), "global.txt\n");
    for name in ["kept.txt", "ignored.txt", "local-only.txt", "global.txt"] {
        write(&dir.join(name), &token);
    }
    write(&dir.join(".git/description"), &token);
    assert_eq!(found_paths(&scan(&env, &dir, &[]).code(1)), ["kept.txt"]);
    let assert = scan(&env, &dir, &["--no-ignore"]).code(1);
    assert_eq!(
        found_paths(&assert),
        ["global.txt", "ignored.txt", "kept.txt", "local-only.txt"]
    );
    assert_no_secret(&assert, &[&token]);
}

/// A process in `dir` with the tests' environment (`TestEnv::std_cmd` gives it: the test's
/// database and home, nothing from the developer's shell), autheona on the PATH, and no
/// machine-wide git configuration.
fn tool(env: &TestEnv, dir: &Path, program: &str) -> Process {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = with_env_of(program, &env.std_cmd());
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("PATH", path);
    cmd
}

fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> std::process::Output {
    tool(env, dir, "git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git is needed")
}

#[test]
fn the_readme_pre_commit_hook_refuses_staged_tokens_only() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let hook = dir.join(".git/hooks/pre-commit");
    write(&hook, readme_block("save it as `.git/hooks/pre-commit`"));
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let token = forged(1);
    let commit = |message: &str| git(&env, &dir, &["commit", "-q", "-m", message]);

    write(&dir.join("app/main.rs"), "fn main() {}\n");
    write(&dir.join("docs/space name.md"), "no token here\n");
    git(&env, &dir, &["add", "."]);
    let clean = commit("clean");
    assert!(clean.status.success(), "{clean:?}");

    // A staged token is refused, even where a staged .ignore would hide it from a walk.
    write(&dir.join("deploy/.env"), format!("TOKEN={token}\n"));
    write(&dir.join(".ignore"), "deploy/\n");
    git(&env, &dir, &["add", "-f", ".ignore", "deploy/.env"]);
    let refused = commit("leak");
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("deploy/.env:1:7: token Forged000001"),
        "{said}"
    );
    assert!(!said.contains(secret_of(&token)), "{said}");

    // What counts is what is staged, not the working tree.
    write(&dir.join("deploy/.env"), "TOKEN=\n");
    assert_eq!(commit("still staged").status.code(), Some(1));
    git(&env, &dir, &["add", "deploy/.env"]);
    let fixed = commit("fixed");
    assert!(fixed.status.success(), "{fixed:?}");
}

#[test]
fn the_readme_ci_step_finds_a_committed_file_gitignore_lists() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let token = forged(1);
    write(&dir.join(".env"), format!("TOKEN={token}\n"));
    git(&env, &dir, &["add", ".env"]);
    git(&env, &dir, &["commit", "-q", "-m", "oops"]);
    write(&dir.join(".gitignore"), ".env\n");
    // A plain scan walks the tree as git's ignore rules say, and skips it.
    scan(&env, &dir, &[]).code(0);

    let block = readme_block("listed it is scanned too:");
    let step = block
        .lines()
        .find_map(|line| line.trim().strip_prefix("run: "))
        .expect("a run: line");
    let out = tool(&env, &dir, "sh").args(["-c", step]).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(".env:1:7: token Forged000001"), "{said}");
}

/// Names a file list can hold that look like options or stdin to a command line.
const OPTION_LIKE_NAMES: [&str; 5] = ["--help", "-h", "--version", "-V", "-"];

/// In `dir`, a file for each of `OPTION_LIKE_NAMES` holding a token of its own (forged(1) to
/// forged(5)); returns the lines a scan of them prints, in the order printed.
fn option_like_files(dir: &Path) -> Vec<String> {
    let mut lines: Vec<(String, String)> = OPTION_LIKE_NAMES
        .iter()
        .zip(1..)
        .map(|(name, n)| {
            write(&dir.join(name), format!("TOKEN={}\n", forged(n)));
            (
                (*name).to_owned(),
                format!("{name}:1:7: token {}", id_of(&forged(n))),
            )
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, line)| line).collect()
}

fn mkfifo(path: &Path) {
    let status = Process::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn after_a_double_dash_every_name_is_a_path_even_dash_and_option_names() {
    let env = TestEnv::new();
    let dir = work(&env);
    let expected = option_like_files(&dir);
    let mut args = vec!["--"];
    args.extend(OPTION_LIKE_NAMES);
    let assert = scan(&env, &dir, &args).code(1);
    assert_eq!(stdout(&assert), expected.join("\n") + "\n");
    assert!(
        stderr(&assert).starts_with("Found 5 tokens in 5 files."),
        "{}",
        stderr(&assert)
    );
    // Before --, - is stdin; after it, the file.
    let piped = forged(9);
    let assert = env
        .bare_cmd()
        .current_dir(&dir)
        .args(["scan", "-", "--", "-"])
        .write_stdin(piped.clone())
        .assert()
        .code(1)
        .stdout(format!(
            "<stdin>:1:1: token {}\n-:1:7: token {}\n",
            id_of(&piped),
            id_of(&forged(5))
        ));
    assert_no_secret(&assert, &[&piped, &forged(5)]);
    // A file named - that is missing is a missing file, not stdin.
    std::fs::remove_file(dir.join("-")).unwrap();
    let assert = scan(&env, &dir, &["--", "-"]).code(3).stdout("");
    assert_eq!(
        stderr(&assert),
        "error: cannot read -: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_named_device_fifo_or_link_to_one_is_reported_and_not_read() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    write(&dir.join("token.txt"), &token);
    symlink("/dev/zero", dir.join("data.bin")).unwrap();
    mkfifo(&dir.join("fifo"));
    symlink("fifo", dir.join("fifo-link")).unwrap();
    // Each would be read forever, or wait forever for a writer: the timeout tells a hang.
    let assert = env
        .bare_cmd()
        .current_dir(&dir)
        .args([
            "scan",
            "token.txt",
            "data.bin",
            "fifo",
            "fifo-link",
            "/dev/zero",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(3)
        .stdout(format!("token.txt:1:1: token {}\n", id_of(&token)));
    let err = stderr(&assert);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [
            "error: cannot read /dev/zero: a character device, not a regular file",
            "error: cannot read data.bin: a symbolic link to a character device, not to a regular file",
            "error: cannot read fifo: a FIFO, not a regular file (pipe a stream into `autheona scan -`)",
            "error: cannot read fifo-link: a symbolic link to a FIFO, not to a regular file (pipe a stream into `autheona scan -`)",
        ],
        "{err}"
    );
    assert!(err.contains("Found 1 token in 1 file."), "{err}");
    assert_no_secret(&assert, &[&token]);
}

#[test]
fn a_utf16_file_with_a_byte_order_mark_is_scanned_walked_or_named() {
    let env = TestEnv::new();
    let dir = work(&env);
    let token = forged(1);
    let mut bytes = vec![0xFF, 0xFE];
    for unit in format!("é\r\nTOKEN={token}\r\n").encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    write(&dir.join("windows.txt"), &bytes);
    let line = format!("windows.txt:2:7: token {}\n", id_of(&token));
    scan(&env, &dir, &[]).code(1).stdout(line.clone());
    scan(&env, &dir, &["windows.txt"]).code(1).stdout(line);
    // Without the mark, a walk skips it as binary.
    write(&dir.join("windows.txt"), &bytes[2..]);
    scan(&env, &dir, &[]).code(0).stdout("");
}

/// The README's CI step, run in `dir`; fails the test if it runs past a minute.
fn run_ci_step(env: &TestEnv, dir: &Path) -> std::process::Output {
    let block = readme_block("listed it is scanned too:");
    let step = block
        .lines()
        .find_map(|line| line.trim().strip_prefix("run: "))
        .expect("a run: line");
    let out = tool(env, dir, "timeout")
        .args(["60", "sh", "-c", step])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(124), "the step hung: {out:?}");
    out
}

#[test]
fn the_readme_ci_step_scans_committed_files_named_like_options_or_stdin() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let expected = option_like_files(&dir);
    git(&env, &dir, &["add", "--", "."]);
    git(&env, &dir, &["commit", "-q", "-m", "odd names"]);
    let out = run_ci_step(&env, &dir);
    let (said, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // xargs turns autheona's 1 into its own failure; the step fails either way.
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(said, expected.join("\n") + "\n", "{err}");
    assert!(!err.contains("error:"), "{err}");
    for n in 1..=5 {
        assert!(!said.contains(secret_of(&forged(n))) && !err.contains(secret_of(&forged(n))));
    }
}

#[test]
fn the_readme_ci_step_fails_on_a_committed_link_to_dev_zero_and_still_finds_tokens() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let expected = option_like_files(&dir);
    symlink("/dev/zero", dir.join("data.bin")).unwrap();
    git(&env, &dir, &["add", "--", "."]);
    git(&env, &dir, &["commit", "-q", "-m", "a link to /dev/zero"]);
    let out = run_ci_step(&env, &dir);
    let (said, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(said, expected.join("\n") + "\n", "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [
            "error: cannot read data.bin: a symbolic link to a character device, not to a regular file"
        ],
        "{err}"
    );
    // What autheona itself says to those names: 3, as an unreadable path wins over a token.
    let mut names = vec!["--"];
    names.extend(OPTION_LIKE_NAMES);
    names.push("data.bin");
    scan(&env, &dir, &names)
        .code(3)
        .stdout(expected.join("\n") + "\n");
}

#[test]
fn the_readme_ci_step_does_not_follow_committed_links_out_of_the_repository() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    let inside = forged(1);
    write(&dir.join("src/config.env"), format!("TOKEN={inside}\n"));
    // Outside the repository: a token beside it, and a directory with a token and a FIFO.
    write(&env.dir().join("beside.txt"), forged(2));
    let elsewhere = env.dir().join("elsewhere");
    write(&elsewhere.join("token.txt"), forged(3));
    mkfifo(&elsewhere.join("fifo"));
    symlink("..", dir.join("up")).unwrap();
    symlink("/", dir.join("root")).unwrap();
    symlink("/proc", dir.join("proc")).unwrap();
    symlink(&elsewhere, dir.join("elsewhere")).unwrap();
    symlink("../beside.txt", dir.join("beside.txt")).unwrap();
    // A link that stays inside is followed.
    symlink("src", dir.join("source")).unwrap();
    git(&env, &dir, &["add", "--", "."]);
    git(&env, &dir, &["commit", "-q", "-m", "links out"]);
    let out = run_ci_step(&env, &dir);
    let (said, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{out:?}");
    let id = id_of(&inside);
    assert_eq!(
        said,
        format!("source/config.env:1:7: token {id}\nsrc/config.env:1:7: token {id}\n"),
        "{err}"
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    let not_followed = "outside the current directory, not followed";
    assert_eq!(
        errors,
        [
            format!("error: cannot read beside.txt: a symbolic link to a file {not_followed}"),
            format!("error: cannot read elsewhere: a symbolic link to a directory {not_followed}"),
            format!("error: cannot read proc: a symbolic link to a directory {not_followed}"),
            format!("error: cannot read root: a symbolic link to a directory {not_followed}"),
            format!("error: cannot read up: a symbolic link to a directory {not_followed}"),
        ],
        "{err}"
    );
    assert!(!said.contains("Forged000002") && !said.contains("Forged000003"));
}

#[test]
fn a_relative_path_through_a_link_out_of_the_current_directory_is_not_followed() {
    let env = TestEnv::new();
    let dir = work(&env);
    write(&env.dir().join("outside/token.txt"), forged(2));
    symlink("../outside", dir.join("out")).unwrap();
    let assert = scan(&env, &dir, &["--", "out/", "out/.", "out/token.txt"])
        .code(3)
        .stdout("");
    let not_followed = "outside the current directory, not followed";
    assert_eq!(
        stderr(&assert)
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect::<Vec<_>>(),
        [
            format!("error: cannot read out/: a symbolic link to a directory {not_followed}"),
            format!(
                "error: cannot read out/.: a path through a symbolic link to a directory {not_followed}"
            ),
            format!(
                "error: cannot read out/token.txt: a path through a symbolic link to a file {not_followed}"
            ),
        ],
        "{}",
        stderr(&assert)
    );
    // Named as itself, the directory is scanned.
    scan(&env, &dir, &["--", "../outside"]).code(1);
    let absolute = env.dir().join("work/out");
    scan(&env, &dir, &["--", absolute.to_str().unwrap()]).code(1);
}

/// The README's pre-commit hook, installed in `dir` (a git repository).
fn install_hook(dir: &Path) {
    let hook = dir.join(".git/hooks/pre-commit");
    write(&hook, readme_block("save it as `.git/hooks/pre-commit`"));
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Stages everything in `dir` and commits it through the hook; returns git's output and what
/// it said on both streams.
fn commit_all(env: &TestEnv, dir: &Path, message: &str) -> (std::process::Output, String) {
    let added = git(env, dir, &["add", "-A", "--", "."]);
    assert!(added.status.success(), "{added:?}");
    let out = git(env, dir, &["commit", "-q", "-m", message]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out, said)
}

#[test]
fn the_readme_pre_commit_hook_refuses_a_committed_link_made_a_file_holding_a_token() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    install_hook(&dir);
    write(&dir.join("settings.env"), "TOKEN=\n");
    symlink("settings.env", dir.join("local.env")).unwrap();
    let (clean, said) = commit_all(&env, &dir, "a link");
    assert!(clean.status.success(), "{said}");
    // The link replaced by a file: a type change (T) to git, not a modification.
    let token = forged(1);
    std::fs::remove_file(dir.join("local.env")).unwrap();
    write(&dir.join("local.env"), format!("TOKEN={token}\n"));
    let (refused, said) = commit_all(&env, &dir, "leak");
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("./local.env:1:7: token Forged000001"),
        "{said}"
    );
    assert!(!said.contains(secret_of(&token)), "{said}");
}

#[test]
fn the_readme_pre_commit_hook_refuses_a_token_in_a_staged_file_with_a_nul_byte() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    install_hook(&dir);
    let token = forged(1);
    write(&dir.join(".env"), format!("\0TOKEN={token}\n"));
    let (refused, said) = commit_all(&env, &dir, "leak");
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("./.env:1:8: token Forged000001"), "{said}");
    assert!(!said.contains(secret_of(&token)), "{said}");
}

#[test]
fn the_readme_pre_commit_hook_refuses_a_token_in_a_staged_utf16_file() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    install_hook(&dir);
    let token = forged(1);
    let mut bytes = vec![0xFE, 0xFF];
    for unit in format!("TOKEN={token}\r\n").encode_utf16() {
        bytes.extend(unit.to_be_bytes());
    }
    write(&dir.join("config/app.ini"), &bytes);
    let (refused, said) = commit_all(&env, &dir, "leak");
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("./config/app.ini:1:7: token Forged000001"),
        "{said}"
    );
    assert!(!said.contains(secret_of(&token)), "{said}");
}

#[test]
fn the_readme_pre_commit_hook_scans_files_named_like_options_and_passes_over_links() {
    let env = TestEnv::new();
    let dir = work(&env);
    git_init(&env, &dir);
    install_hook(&dir);
    // Clean files under those names, and links (one dangling outside the staged copy, one to
    // /dev/zero): the commit goes through, nothing stalls.
    for name in OPTION_LIKE_NAMES {
        write(&dir.join(name), "nothing here\n");
    }
    symlink("/dev/zero", dir.join("data.bin")).unwrap();
    symlink("../elsewhere/notes.md", dir.join("notes.md")).unwrap();
    let (clean, said) = commit_all(&env, &dir, "clean");
    assert!(clean.status.success(), "{said}");
    // The same names holding tokens: each is found.
    let expected = option_like_files(&dir);
    let (refused, said) = commit_all(&env, &dir, "leak");
    assert_eq!(refused.status.code(), Some(1), "{said}");
    for line in &expected {
        assert!(said.contains(&format!("./{line}")), "{line} in:\n{said}");
    }
    for n in 1..=5 {
        assert!(!said.contains(secret_of(&forged(n))), "{said}");
    }
}

#[test]
fn forged_tokens_that_reuse_a_real_id_are_checked_a_bounded_number_of_times() {
    let env = TestEnv::new();
    env.project("demo");
    let real = env.token("demo", "never");
    let id = id_of(&real);
    let dir = work(&env);
    // 40 forgeries of the real id, then the real token: 16 wrong secrets are checked for an
    // id, and the rest reported unchecked, so 20,000 forgeries cost no more than 16.
    let mut text: String = (0..40)
        .map(|n| forge(id, &format!("{n:0>43}")) + "\n")
        .collect();
    text.push_str(&real);
    write(&dir.join("forged.txt"), &text);
    let assert = scan_with_db(&env, &dir, &["--json"]).code(1);
    assert_no_secret(&assert, &[&real]);
    let statuses: Vec<Value> = json(&assert).iter().map(|f| f["status"].clone()).collect();
    let expected: Vec<&str> = std::iter::repeat_n("unknown", 16)
        .chain(std::iter::repeat_n("unchecked", 25))
        .collect();
    assert_eq!(statuses, expected);
    assert!(json(&assert).iter().all(|f| f["project"] == Value::Null));
    let err = stderr(&assert);
    assert!(
        err.starts_with(
            "warning: 25 tokens with an id the database holds left unchecked: a scan checks a \
             limited number of secrets; autheona verify checks one\n"
        ),
        "{err}"
    );
    // In text, the word is the same.
    let assert = scan_with_db(&env, &dir, &[]).code(1);
    assert!(
        stdout(&assert).ends_with(&format!("forged.txt:41:1: token {id} (unchecked)\n")),
        "{}",
        stdout(&assert)
    );
}
