//! The committed completion scripts, loaded and driven in the real shells against a test
//! database. `./test` installs bash, zsh and fish.

use std::path::{Path, PathBuf};
use std::process::Output;

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
    let mut shell = with_env_of(program, &env.std_cmd());
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

/// Bash code that completes the last word of `line` through the committed script, leaving the
/// candidates in `COMPREPLY`, as bash does on TAB.
fn bash_completion(line: &str) -> String {
    format!(
        r#"source {script}
line={line:?}
read -ra COMP_WORDS <<< "$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="$line"; COMP_POINT=${{#line}}
_clap_complete_autheona autheona "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
"#,
        script = script("autheona.bash").display()
    )
}

/// What bash offers for `line` (completing its last word), through the committed script.
fn bash_complete(env: &TestEnv, line: &str) -> Vec<String> {
    let code = bash_completion(line) + r#"printf '%s\n' "${COMPREPLY[@]}""#;
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
            assert!(!offered.contains(secret_of(&token)), "a secret was offered");
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
        other.db_arg().to_str().unwrap()
    );
    assert_eq!(bash_complete(&env, &line), ["gamma"]);
}

#[test]
fn completion_without_a_database_offers_nothing_and_creates_nothing() {
    let env = TestEnv::new();
    assert!(bash_complete(&env, "autheona token create --project ").is_empty());
    assert!(!env.store_exists());
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
    sqlite_only!();
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

/// What zsh offers for `words` (the last one being completed), through the committed script:
/// each a `value:description` line as the script hands it to `_describe`.
fn zsh_complete(env: &TestEnv, words: &str) -> Vec<String> {
    let code = format!(
        r#"compdef() {{ : }}
_describe() {{ print -l -- ${{(P)3}} }}
source {script}
words=({words})
CURRENT=${{#words}}
_clap_dynamic_completer_autheona"#,
        script = script("_autheona").display()
    );
    lines(&shell(env, "zsh", &code))
}

/// The values alone of `zsh_complete`.
fn zsh_values(env: &TestEnv, words: &str) -> Vec<String> {
    zsh_complete(env, words)
        .iter()
        .map(|c| c.split(':').next().unwrap().to_owned())
        .collect()
}

/// What fish offers for `line`, through the committed script: each a `value\tdescription`
/// line (or the value alone).
fn fish_complete(env: &TestEnv, line: &str) -> Vec<String> {
    let code = format!(
        "source {}; complete -C '{line}'",
        script("autheona.fish").display()
    );
    lines(&shell(env, "fish", &code))
}

/// The values alone of `fish_complete`.
fn fish_values(env: &TestEnv, line: &str) -> Vec<String> {
    fish_complete(env, line)
        .iter()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

#[test]
fn zsh_completes_commands_and_live_values() {
    let (env, token) = database_with_projects();
    assert_eq!(zsh_values(&env, "autheona to"), ["token"]);
    assert_eq!(
        zsh_values(&env, "autheona token create --project ''"),
        ["alpha", "beta"]
    );
    let ids = zsh_complete(&env, "autheona token revoke ''");
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
    assert_eq!(fish_values(&env, "autheona to"), ["token"]);
    assert_eq!(
        fish_values(&env, "autheona token create --project "),
        ["alpha", "beta"]
    );
    assert!(fish_values(&env, "autheona token revoke ").contains(&id_of(&token).to_owned()));
}

// ---------------------------------------------------------------------------------------------
// Planted rows: whoever can write the database file can put any text in a name or an id. A
// shell puts a completed value on the command line as it is (bash without quoting), so only
// what `project create` and the token format allow may be offered.

/// A database with projects alpha and beta and a token in alpha, made by autheona, and beside
/// them rows written straight into the file: project names and token ids that autheona would
/// never make, with shell syntax, escape sequences, line breaks and bidi controls in them. Two
/// of the names run `touch MARKER` if a shell ever runs them. One planted token has a
/// well-formed id (so it is offered) in a planted project, with a description full of escapes.
struct Planted {
    env: TestEnv,
    token: String,
    marker: PathBuf,
}

/// The planted token whose id is well formed.
const PLANTED_ID: &str = "Planted00001";

/// The planted project that `PLANTED_ID` belongs to.
const PLANTED_PROJECT: &str = "rtl\u{202e}txt.exe";

impl Planted {
    fn new() -> Planted {
        let (env, token) = database_with_projects();
        let marker = env.dir().join("marker");
        let mut sql = env.sql();
        for name in Planted::names(&marker) {
            sql.execute(
                "INSERT INTO projects (name, created_at) VALUES ($1, 0)",
                &[&name],
            )
            .unwrap();
        }
        for (id, project, description) in [
            (format!("x$(touch {})", marker.display()), "alpha", None),
            ("ABCDEFGHIJ\x1b[".to_owned(), "alpha", None),
            ("abc$(id)xyz1".to_owned(), "alpha", None),
            ("ABCDEFGHIJKLM".to_owned(), "alpha", None),
            ("ABCDEFGHIJ\u{e9}".to_owned(), "alpha", None),
            ("new\nlineABCD".to_owned(), "alpha", None),
            ("ABCDEF\u{202e}GH".to_owned(), "alpha", None),
            (
                PLANTED_ID.to_owned(),
                PLANTED_PROJECT,
                Some("\x1b[2Jwiped\nsecond line"),
            ),
        ] {
            // No description is written as the empty one, which NULLIF makes NULL.
            sql.execute(
                "INSERT INTO tokens (id, project_id, secret_hash, description, created_at)
                 VALUES ($1, (SELECT id FROM projects WHERE name = $2), 'x', NULLIF($3, ''), 0)",
                &[&id, project, description.unwrap_or_default()],
            )
            .unwrap();
        }
        drop(sql);
        Planted { env, token, marker }
    }

    /// Project names `project create` refuses.
    fn names(marker: &Path) -> Vec<String> {
        let mut names = vec![
            format!("demo;touch {};#", marker.display()),
            format!("demo$(touch {})", marker.display()),
            PLANTED_PROJECT.to_owned(),
            "esc\x1b]0;title\x07".to_owned(),
            "bel\x07".to_owned(),
            "new\nline".to_owned(),
            "tab\tname".to_owned(),
            // bash splits candidates at vertical tabs: this would offer `vt` and `gamma`.
            "vt\x0bgamma".to_owned(),
            "space name".to_owned(),
            "quote'name".to_owned(),
            "star*".to_owned(),
            "-rf".to_owned(),
            ".hidden".to_owned(),
            String::new(),
            "a".repeat(65),
        ];
        names.sort();
        names
    }

    /// The ids that may be offered, in the order token list gives them (oldest first).
    fn ids(&self) -> Vec<String> {
        vec![PLANTED_ID.to_owned(), id_of(&self.token).to_owned()]
    }
}

/// The flags `token revoke` and `token rotate` offer after the ids, as bash lists them.
const REVOKE_FLAGS: [&str; 4] = ["--yes", "--db", "--help", "--version"];

fn ids_and_flags(planted: &Planted, flags: &[&str]) -> Vec<String> {
    let mut offered = planted.ids();
    offered.extend(flags.iter().map(|f| (*f).to_owned()));
    offered
}

#[test]
fn bash_offers_no_planted_name_or_id() {
    let planted = Planted::new();
    let env = &planted.env;
    assert_eq!(
        bash_complete(env, "autheona token create --project "),
        ["alpha", "beta"]
    );
    assert_eq!(
        bash_complete(env, "autheona project delete "),
        ["alpha", "beta", "--yes", "--db", "--help", "--version"]
    );
    assert!(bash_complete(env, "autheona verify -p demo").is_empty());
    for command in ["revoke", "rotate"] {
        let offered = bash_complete(env, &format!("autheona token {command} "));
        let mut flags = REVOKE_FLAGS.to_vec();
        if command == "rotate" {
            flags.insert(0, "--grace");
            flags.insert(2, "--json");
        }
        assert_eq!(offered, ids_and_flags(&planted, &flags), "{command}");
    }
}

#[test]
fn zsh_offers_no_planted_name_or_id() {
    let planted = Planted::new();
    let env = &planted.env;
    assert_eq!(
        zsh_values(env, "autheona token create --project ''"),
        ["alpha", "beta"]
    );
    assert_eq!(
        zsh_values(env, "autheona token revoke ''"),
        ids_and_flags(&planted, &REVOKE_FLAGS)
    );
}

#[test]
fn fish_offers_no_planted_name_or_id() {
    let planted = Planted::new();
    let env = &planted.env;
    assert_eq!(
        fish_values(env, "autheona token create --project "),
        ["alpha", "beta"]
    );
    assert_eq!(
        fish_values(env, "autheona token revoke "),
        ids_and_flags(&planted, &REVOKE_FLAGS)
    );
}

/// Readline puts the single candidate for the word in place of it, as it is, and Enter runs the
/// line: each candidate bash offers is run so, and no planted command may run.
#[test]
fn a_planted_command_never_runs_from_a_bash_completion() {
    let planted = Planted::new();
    for (line, command) in [
        (
            "autheona token list --project demo",
            "autheona token list --project",
        ),
        (
            "autheona token list --project ",
            "autheona token list --project",
        ),
        ("autheona token revoke x", "autheona token revoke"),
        ("autheona token revoke ", "autheona token revoke"),
    ] {
        let code = bash_completion(line)
            + &format!(
                r#"for candidate in "${{COMPREPLY[@]}}"; do
    eval "{command} $candidate" >/dev/null 2>&1
done
true"#
            );
        lines(&shell(&planted.env, "bash", &code));
        assert!(
            !planted.marker.exists(),
            "completing `{line}` ran a planted command"
        );
    }
    // Nothing was revoked on the way: without a terminal revoke needs --yes.
    assert!(verifies(&planted.env, &planted.token));
}

/// Hints (zsh and fish show them) give a planted description and project escaped.
#[test]
fn hints_show_planted_text_escaped() {
    let planted = Planted::new();
    let env = &planted.env;
    let zsh = zsh_complete(env, "autheona token revoke ''");
    let fish = fish_complete(env, "autheona token revoke ");
    for (shell, offered, separator) in [("zsh", zsh, ':'), ("fish", fish, '\t')] {
        let hint = offered
            .iter()
            .find_map(|line| line.strip_prefix(&format!("{PLANTED_ID}{separator}")))
            .unwrap_or_else(|| panic!("{shell}: no hint for {PLANTED_ID}: {offered:?}"));
        assert_eq!(
            hint, "rtl\\u{202e}txt.exe · \\u{1b}[2Jwiped\\u{a}second line",
            "{shell}"
        );
        for line in &offered {
            assert!(
                !line
                    .chars()
                    .any(|c| (c.is_control() && c != '\t') || c == '\u{202e}'),
                "{shell} offered a raw control: {line:?}"
            );
        }
    }
}
