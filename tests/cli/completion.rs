//! The committed completion scripts, loaded and driven in the real shells against a test
//! database. `.ci/run` installs bash, zsh and fish.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

fn script(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(file)
}

/// Runs `code` in a shell with the test's environment (`TestEnv::std_cmd` gives it) and the
/// built autheona first on PATH, as the scripts call plain `autheona`.
fn shell(env: &TestEnv, program: &str, code: &str) -> Output {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut shell = Command::new(program);
    for (key, value) in env.std_cmd().get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    let flags: &[&str] = match program {
        "zsh" => &["-f", "-c"],
        "bash" => &["--norc", "--noprofile", "-c"],
        _ => &["--no-config", "-c"],
    };
    shell
        .args(flags)
        .arg(code)
        .env("PATH", path)
        .current_dir(env.dir())
        .output()
        .unwrap_or_else(|err| panic!("{program} is needed (apt-get install {program}): {err}"))
}

fn lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn database_with_projects() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.project("alpha");
    env.project("beta");
    let out = env
        .run(&["token", "create", "-p", "alpha", "-e", "30", "-d", "CI box"])
        .success();
    let token = stdout(&out).trim().to_owned();
    (env, token)
}

#[test]
fn every_script_loads_without_error() {
    let env = TestEnv::new();
    for (program, file, check) in [
        ("bash", "autheona.bash", "complete -p autheona"),
        ("zsh", "_autheona", "print ${_comps[autheona]}"),
        ("fish", "autheona.fish", "complete --command autheona"),
    ] {
        let setup = if program == "zsh" {
            "autoload -U compinit && compinit -u && "
        } else {
            ""
        };
        let code = format!("{setup}source {} && {check}", script(file).display());
        let code = if program == "fish" {
            code.replace("&&", "; and")
        } else {
            code
        };
        let out = shell(&env, program, &code);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "{program}: {err}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("autheona"),
            "{program} registered nothing"
        );
    }
}

/// What bash offers for `line` (completing its last word), through the committed script.
fn bash_complete(env: &TestEnv, line: &str) -> Vec<String> {
    let code = format!(
        r#"source {script}
line={line:?}
read -ra COMP_WORDS <<< "$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="$line"; COMP_POINT=${{#line}}
_clap_complete_autheona autheona "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script = script("autheona.bash").display()
    );
    lines(&shell(env, "bash", &code))
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_commands_flags_and_live_values() {
    let (env, token) = database_with_projects();
    assert_eq!(bash_complete(&env, "autheona to"), ["token"]);
    let subcommands = bash_complete(&env, "autheona token ");
    for expected in ["create", "list", "revoke", "rotate", "prune"] {
        assert!(subcommands.iter().any(|c| c == expected), "{subcommands:?}");
    }
    assert!(
        bash_complete(&env, "autheona token create --desc").contains(&"--description".to_owned())
    );
    assert_eq!(
        bash_complete(&env, "autheona token create --project "),
        ["alpha", "beta"]
    );
    assert_eq!(
        bash_complete(&env, "autheona token create --project b"),
        ["beta"]
    );
    assert_eq!(
        bash_complete(&env, "autheona verify -p "),
        ["alpha", "beta"]
    );
    assert_eq!(
        bash_complete(&env, "autheona project delete "),
        ["alpha", "beta", "--yes", "--db", "--help", "--version"]
    );
    assert_eq!(
        bash_complete(&env, "autheona token create --expires "),
        ["30", "90", "365", "never"]
    );
    assert_eq!(
        bash_complete(&env, "autheona token prune --project "),
        ["alpha", "beta"]
    );
    assert!(
        bash_complete(&env, "autheona token list --exp").contains(&"--expiring-within".to_owned())
    );
    for command in ["revoke", "rotate"] {
        let ids = bash_complete(&env, &format!("autheona token {command} "));
        assert!(
            ids.contains(&id_of(&token).to_owned()),
            "{command}: {ids:?}"
        );
        for offered in &ids {
            assert!(!offered.contains(&token[17..60]), "a secret was offered");
        }
    }
}

#[test]
fn scan_completes_paths() {
    let env = TestEnv::new();
    std::fs::create_dir(env.dir().join("src")).unwrap();
    std::fs::write(env.dir().join("secrets.env"), "").unwrap();
    std::fs::write(env.dir().join("other.txt"), "").unwrap();
    let offered = bash_complete(&env, "autheona scan s");
    assert!(
        offered.iter().any(|c| c == "secrets.env") && offered.iter().any(|c| c.starts_with("src")),
        "{offered:?}"
    );
    assert!(!offered.iter().any(|c| c == "other.txt"), "{offered:?}");
}

#[test]
fn completion_follows_a_typed_db_flag() {
    let (env, _) = database_with_projects();
    let other = TestEnv::new();
    other.project("gamma");
    let line = format!(
        "autheona --db {} token list --project ",
        other.db().display()
    );
    assert_eq!(bash_complete(&env, &line), ["gamma"]);
}

#[test]
fn completion_without_a_database_offers_nothing_and_creates_nothing() {
    let env = TestEnv::new();
    assert!(bash_complete(&env, "autheona token create --project ").is_empty());
    assert!(!env.db().exists());
    // The commands themselves still complete.
    assert_eq!(bash_complete(&env, "autheona ve"), ["verify"]);
}

/// The directory's files, each with a checksum of its bytes, but for the -shm file: a cache
/// beside the log that every connection, a reader too, may rebuild (or make).
fn snapshot(dir: &std::path::Path) -> Vec<(String, u32)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| !entry.file_name().to_string_lossy().ends_with("-shm"))
        .map(|entry| {
            let sum = crc32fast::hash(&std::fs::read(entry.path()).unwrap());
            (entry.file_name().to_string_lossy().into_owned(), sum)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn completion_only_reads_the_database() {
    let (env, token) = database_with_projects();
    let db_dir = env.db().parent().unwrap().to_owned();
    let (log, index) = (
        db_dir.join("autheona.db-wal"),
        db_dir.join("autheona.db-shm"),
    );
    for sidecars in ["both", "no -shm", "none"] {
        match sidecars {
            "both" => assert!(log.exists() && index.exists()),
            "no -shm" => std::fs::remove_file(&index).unwrap(),
            _ => {
                // As after the database file alone was copied: SQLite's last connection to
                // close copies the log back and deletes both files.
                let conn = rusqlite::Connection::open(env.db()).unwrap();
                conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
                    .unwrap();
                drop(conn);
                assert!(!log.exists() && !index.exists());
            }
        }
        let before = snapshot(&db_dir);
        assert_eq!(
            bash_complete(&env, "autheona token list --project "),
            ["alpha", "beta"],
            "{sidecars}"
        );
        assert!(
            bash_complete(&env, "autheona token revoke ").contains(&id_of(&token).to_owned()),
            "{sidecars}"
        );
        assert_eq!(
            snapshot(&db_dir),
            before,
            "completion changed a file ({sidecars})"
        );
    }
    assert!(!index.exists(), "with no log, completion made a -shm");
}

#[test]
fn zsh_completes_commands_and_live_values() {
    let (env, token) = database_with_projects();
    let complete = |words: &str| {
        let code = format!(
            r#"compdef() {{ : }}
_describe() {{ print -l -- ${{(P)3}} }}
source {script}
words=({words})
CURRENT=${{#words}}
_clap_dynamic_completer_autheona"#,
            script = script("_autheona").display()
        );
        lines(&shell(&env, "zsh", &code))
    };
    // zsh gets `value:description`.
    let values = |words: &str| -> Vec<String> {
        complete(words)
            .iter()
            .map(|c| c.split(':').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values("autheona to"), ["token"]);
    assert_eq!(
        values("autheona token create --project ''"),
        ["alpha", "beta"]
    );
    let ids = complete("autheona token revoke ''");
    assert!(
        ids.iter()
            .any(|c| c.starts_with(&format!("{}:", id_of(&token)))),
        "{ids:?}"
    );
    assert!(
        ids.iter().any(|c| c.contains("CI box")),
        "the description is the hint: {ids:?}"
    );
}

#[test]
fn fish_completes_commands_and_live_values() {
    let (env, token) = database_with_projects();
    let complete = |line: &str| {
        let code = format!(
            "source {}; complete -C '{line}'",
            script("autheona.fish").display()
        );
        lines(&shell(&env, "fish", &code))
            .into_iter()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(complete("autheona to"), ["token"]);
    assert_eq!(
        complete("autheona token create --project "),
        ["alpha", "beta"]
    );
    assert!(complete("autheona token revoke ").contains(&id_of(&token).to_owned()));
}
