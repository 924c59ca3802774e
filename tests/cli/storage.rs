use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use crate::common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Another connection that stays open, as a long-running reader would: autheona is then not the
/// last to close the database, so its own clean-up must do what closing would, and the -wal
/// and -shm files stay in place to be inspected.
fn bystander(env: &TestEnv) -> StoreSql {
    let mut conn = env.sql();
    conn.count("SELECT count(*) FROM projects");
    conn
}

/// The argon2 hash stored for a token.
fn hash_of(env: &TestEnv, token: &str) -> String {
    let query = format!(
        "SELECT secret_hash FROM tokens WHERE id = '{}'",
        id_of(token)
    );
    env.sql().value(&query).expect("the token's hash")
}

/// Every command, as a user would run it against the database.
fn every_command() -> Vec<Vec<&'static str>> {
    vec![
        vec!["project", "create", "demo"],
        vec!["project", "list"],
        vec!["project", "delete", "demo", "--yes"],
        vec!["token", "create", "-p", "demo", "-e", "30"],
        vec!["token", "list"],
        vec!["token", "revoke", "AAAAAAAAAAAA", "--yes"],
        vec!["verify"],
    ]
}

fn run_with_valid_shape(env: &TestEnv, args: &[&str]) -> assert_cmd::assert::Assert {
    env.cmd()
        .args(args)
        .write_stdin(forge(&"A".repeat(12), &"b".repeat(43)))
        .assert()
}

#[test]
fn created_with_private_modes_and_identified_as_autheona() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    // An open reader keeps the -wal and -shm files in place after autheona exits.
    let bystander = bystander(&env);
    let token = env.token("demo", "30");
    env.verify(&token, &[]).success();
    assert_eq!(mode(env.db().parent().unwrap()), 0o700);
    assert_eq!(mode(env.db()), 0o600);
    for suffix in ["-wal", "-shm"] {
        assert_eq!(mode(&sidecar(env.db(), suffix)), 0o600, "{suffix}");
    }
    drop(bystander);
    let mut sql = env.sql();
    let pragma = |sql: &mut StoreSql, name: &str| sql.value(&format!("PRAGMA {name}")).unwrap();
    assert_eq!(pragma(&mut sql, "application_id"), 0x4155_5448.to_string());
    assert_eq!(
        pragma(&mut sql, "user_version"),
        autheona::store::SCHEMA_VERSION.to_string()
    );
    assert_eq!(pragma(&mut sql, "journal_mode"), "wal");
}

#[test]
fn the_database_never_holds_a_token_or_its_secret() {
    let env = TestEnv::new();
    env.project("demo");
    let bystander = bystander(&env);
    let kept = env.token("demo", "30");
    let revoked = env.token("demo", "never");
    let rotated = env.token("demo", "90");
    let pruned = token_at(&env, "-40d", "demo", "30");
    env.verify(&kept, &[]).success();
    let gone: Vec<String> = [&revoked, &rotated, &pruned]
        .into_iter()
        .map(|token| hash_of(&env, token))
        .collect();
    for hash in &gone {
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
    }
    env.run(&["token", "revoke", id_of(&revoked), "--yes"])
        .success();
    let replacement = stdout(
        &env.run(&["token", "rotate", id_of(&rotated), "--yes"])
            .success(),
    )
    .trim_end()
    .to_owned();
    assert_eq!(replacement.len(), 66, "{replacement}");
    let prune = env.run(&["token", "prune", "--expired", "--yes"]).success();
    assert!(
        stderr(&prune).contains("Revoked 1 token."),
        "{}",
        stderr(&prune)
    );
    assert_gone(&env, &pruned);
    assert_gone(&env, &rotated);
    env.verify(&replacement, &[]).success();
    let bytes = env.store_content();
    for token in [&kept, &revoked, &rotated, &pruned, &replacement] {
        assert!(
            !contains(&bytes, token.as_bytes()),
            "token in the database files"
        );
        assert!(
            !contains(&bytes, secret_of(token).as_bytes()),
            "secret in the database files"
        );
    }
    for (hash, how) in gone.iter().zip(["revoked", "rotated", "pruned"]) {
        let hash_part = hash.rsplit('$').next().unwrap();
        assert!(
            !contains(&bytes, hash_part.as_bytes()),
            "a {how} token's hash lingers"
        );
    }
    drop(bystander);
}

#[test]
fn default_path_is_the_platform_data_directory() {
    sqlite_only!();
    let env = TestEnv::new();
    let xdg = env.dir().join("xdg");
    env.bare_cmd()
        .env("XDG_DATA_HOME", &xdg)
        .args(["project", "create", "demo"])
        .assert()
        .success();
    assert!(xdg.join("autheona/autheona.db").is_file());
    assert_eq!(mode(&xdg.join("autheona")), 0o700);

    env.bare_cmd()
        .args(["project", "create", "demo"])
        .assert()
        .success();
    assert!(
        env.dir()
            .join("home/.local/share/autheona/autheona.db")
            .is_file()
    );
}

#[test]
fn the_db_flag_wins_over_the_environment() {
    let env = TestEnv::new();
    let flagged = env.dir().join("flag.db");
    env.cmd()
        .args([
            "--db",
            flagged.to_str().unwrap(),
            "project",
            "create",
            "demo",
        ])
        .assert()
        .success();
    assert!(flagged.is_file());
    assert!(!env.store_exists());
    // A global flag: also after the subcommand.
    env.cmd()
        .args(["project", "list", "--db", flagged.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicates::str::contains("demo"));
}

/// What a directory holds, names only, for checking that nothing was made in it.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_location_shaped_like_a_url_is_never_taken_for_a_file_path() {
    // Taken for a path, `Postgres://user:password@host/db` made directories named after the
    // user and the password, and a store there, and said it had made a project.
    let env = TestEnv::new();
    let before = names_in(env.dir());
    let cases = [
        (
            "Postgres://app:hunter2@db.internal/tokens",
            "'Postgres:/...' is not a database URL",
        ),
        (
            "POSTGRESQL://app@db.internal/tokens",
            "'POSTGRESQL:/...' is not a database URL",
        ),
        (
            "postgres:/app:hunter2@db.internal/tokens",
            "'postgres:/...' is not a database URL",
        ),
        (
            "postgress://app:hunter2@db.internal/tokens",
            "'postgress:/...' looks like a URL",
        ),
        (
            "sqlite:///var/lib/autheona.db",
            "'sqlite:/...' looks like a URL",
        ),
    ];
    for (location, expected) in cases {
        let from_env = env
            .bare_cmd()
            .env("AUTHEONA_DB", location)
            .args(["project", "create", "demo"])
            .assert()
            .code(2);
        let from_flag = env
            .bare_cmd()
            .args(["--db", location, "project", "list"])
            .assert()
            .code(2);
        let copied = env
            .bare_cmd()
            .args(["store", "copy", "nowhere.db", location])
            .assert()
            .code(2);
        for (how, assert) in [
            ("AUTHEONA_DB", from_env),
            ("--db", from_flag),
            ("copy", copied),
        ] {
            let err = stderr(&assert);
            assert!(!err.contains("hunter2"), "{location}, {how}: {err}");
            // In an argument, a password is refused first, whatever the URL's shape.
            if how != "AUTHEONA_DB" && location.contains(":hunter2@") {
                assert_error(&assert, "must not hold a password");
            } else {
                assert_error(&assert, expected);
            }
        }
    }
    // Written as a path, the same name is a file.
    env.bare_cmd()
        .args(["--db", "./sqlite:/x.db", "project", "list"])
        .assert()
        .success();
    assert_eq!(names_in(env.dir()), before, "something was made for a URL");
}

#[test]
fn an_empty_location_is_refused_rather_than_taken_for_the_default() {
    let env = TestEnv::new();
    env.project("demo");
    let assert = env
        .cmd()
        .args(["--db", "", "project", "list"])
        .assert()
        .code(2);
    assert_error(&assert, "--db is empty");
    let assert = env
        .cmd()
        .args(["--db=", "project", "create", "other"])
        .assert()
        .code(2);
    assert_error(&assert, "--db is empty");
    for (args, name) in [
        (["store", "copy", "", "to.db"], "SOURCE is empty"),
        (["store", "copy", "from.db", ""], "DESTINATION is empty"),
    ] {
        let assert = env.bare_cmd().args(args).assert().code(2);
        assert_error(&assert, name);
    }
    let listed = stdout(&env.run(&["project", "list", "--json"]));
    assert!(
        listed.contains("\"demo\"") && !listed.contains("other"),
        "{listed}"
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_unchanged() {
    sqlite_only!();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.db().parent().unwrap()).unwrap();
    let content = b"just some notes, not a database\n".repeat(200);
    std::fs::write(env.db(), &content).unwrap();
    for args in every_command() {
        let assert = run_with_valid_shape(&env, &args).code(3);
        let err = stderr(&assert);
        assert!(err.contains("not an autheona database"), "{args:?}: {err}");
        assert!(err.contains(&env.db().display().to_string()));
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            content,
            "{args:?} changed the file"
        );
        assert!(!sidecar(env.db(), "-wal").exists());
    }
}

#[test]
fn a_foreign_sqlite_database_is_refused_and_left_unchanged() {
    sqlite_only!();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.db().parent().unwrap()).unwrap();
    let foreign = rusqlite::Connection::open(env.db()).unwrap();
    foreign
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
        .unwrap();
    drop(foreign);
    let before = std::fs::read(env.db()).unwrap();
    for args in every_command() {
        let assert = run_with_valid_shape(&env, &args).code(3);
        assert!(
            stderr(&assert).contains("not an autheona one"),
            "{args:?}: {}",
            stderr(&assert)
        );
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
}

#[test]
fn a_zero_length_file_is_only_initialised_by_project_create() {
    sqlite_only!();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.db().parent().unwrap()).unwrap();
    std::fs::write(env.db(), b"").unwrap();
    for args in every_command().into_iter().skip(1) {
        let assert = run_with_valid_shape(&env, &args).code(3);
        assert!(
            stderr(&assert).contains("empty"),
            "{args:?}: {}",
            stderr(&assert)
        );
        assert_eq!(
            std::fs::metadata(env.db()).unwrap().len(),
            0,
            "{args:?} wrote to it"
        );
    }
    env.project("demo");
    let token = env.token("demo", "30");
    env.verify(&token, &[]).success();
}

#[test]
fn a_database_from_a_newer_autheona_is_refused_not_downgraded() {
    let env = TestEnv::new();
    env.project("demo");
    env.set_schema_version(99);
    let before = env.store_content();
    let newer = match backend() {
        Backend::Sqlite => "was written by a newer autheona (schema version 99; this one knows",
        Backend::Postgres => "holds schema version 99, newer than this autheona's",
    };
    for args in every_command() {
        let assert = run_with_valid_shape(&env, &args).code(3);
        let hint = assert_error(&assert, newer);
        assert!(
            hint.is_some_and(|hint| hint.starts_with("hint: upgrade autheona")),
            "{args:?}"
        );
    }
    assert_eq!(env.schema_version(), 99);
    assert!(env.store_content() == before, "the store changed");
}

#[test]
fn a_directory_is_not_a_database() {
    sqlite_only!();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.db()).unwrap();
    for args in every_command() {
        let assert = run_with_valid_shape(&env, &args).code(3);
        assert!(stderr(&assert).starts_with("error: "), "{args:?}");
    }
}

/// Eight `project create`s at once against the same database; each must succeed, and all
/// eight projects must be there after.
fn race_eight_creates(env: &TestEnv) {
    let children: Vec<_> = (0..8)
        .map(|i| {
            env.std_cmd()
                .args(["project", "create", &format!("p{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json = stdout(&env.run(&["project", "list", "--json"]).success());
    for i in 0..8 {
        assert!(json.contains(&format!("\"p{i}\"")), "{json}");
    }
    assert_eq!(env.schema_version(), current_schema_version());
}

#[test]
fn processes_racing_to_create_a_fresh_database_all_succeed() {
    race_eight_creates(&TestEnv::new());
}

#[test]
fn a_database_others_can_read_is_warned_about() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    env.run(&["project", "list"]).success().stderr("");
    let path = env.db().display().to_string();
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o606, 0o611] {
        std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(mode)).unwrap();
        let assert = env.run(&["project", "list"]).success();
        assert_eq!(
            stderr(&assert),
            format!(
                "warning: database {path} is accessible by other users (mode {mode:03o}); \
                 run: chmod 600 {path}\n"
            ),
            "mode {mode:03o}"
        );
    }
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o600)).unwrap();
    env.run(&["project", "list"]).success().stderr("");
}

#[test]
fn the_chmod_hint_is_quoted_for_the_shell() {
    sqlite_only!();
    let env = TestEnv::new();
    for name in [
        "with space",
        "it's",
        "a\"b$(touch pwned)`x`",
        "-leading dash",
        "semi;colon",
    ] {
        let dir = env.dir().join(name);
        let db = dir.join("autheona.db");
        let run = |args: &[&str]| {
            env.bare_cmd()
                .env("AUTHEONA_DB", &db)
                .args(args)
                .assert()
                .success()
        };
        run(&["project", "create", "demo"]);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = stderr(&run(&["project", "list"]));
        let command = err
            .trim_end()
            .split_once("; run: ")
            .unwrap_or_else(|| panic!("{err}"))
            .1
            .to_owned();
        // The hint, pasted into a POSIX shell, fixes exactly this file.
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(env.dir())
            .status()
            .unwrap();
        assert!(status.success(), "{command}");
        assert_eq!(mode(&db), 0o600, "{name}: {command}");
        assert!(!env.dir().join("pwned").exists(), "{command}");
        run(&["project", "list"]).stderr("");
    }
}

#[test]
fn processes_racing_to_initialise_an_empty_file_all_succeed() {
    sqlite_only!();
    for _ in 0..3 {
        let env = TestEnv::new();
        std::fs::create_dir_all(env.db().parent().unwrap()).unwrap();
        std::fs::write(env.db(), b"").unwrap();
        race_eight_creates(&env);
    }
}

#[test]
fn a_foreign_database_with_a_pending_log_is_left_unchanged() {
    sqlite_only!();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.db().parent().unwrap()).unwrap();
    // Another application's database in WAL mode, its latest writes still only in the -wal
    // file (the copy is taken while its connection is open, as a backup tool would).
    let owner = rusqlite::Connection::open(env.db()).unwrap();
    owner
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('pending');",
        )
        .unwrap();
    let copy = env.dir().join("copy.db");
    std::fs::copy(env.db(), &copy).unwrap();
    std::fs::copy(sidecar(env.db(), "-wal"), sidecar(&copy, "-wal")).unwrap();
    drop(owner);
    let before = (
        std::fs::read(&copy).unwrap(),
        std::fs::read(sidecar(&copy, "-wal")).unwrap(),
    );
    for args in every_command() {
        let assert = env
            .cmd()
            .arg("--db")
            .arg(&copy)
            .args(&args)
            .write_stdin(forge(&"A".repeat(12), &"b".repeat(43)))
            .assert()
            .code(3);
        assert!(
            stderr(&assert).contains("not an autheona one"),
            "{args:?}: {}",
            stderr(&assert)
        );
        let after = (
            std::fs::read(&copy).unwrap(),
            std::fs::read(sidecar(&copy, "-wal")).unwrap(),
        );
        assert!(after == before, "{args:?} changed the database or its log");
    }
}

#[test]
fn a_damaged_database_is_an_environment_error() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    env.token("demo", "30");
    let bytes = std::fs::read(env.db()).unwrap();
    // Keep the header, lose the pages behind it.
    std::fs::write(env.db(), &bytes[..bytes.len().min(1024 + 100)]).unwrap();
    for args in [
        &["token", "list"][..],
        &["project", "list"],
        &["token", "create", "-p", "demo", "-e", "30"],
    ] {
        let assert = env.run(args).code(3).stdout("");
        let err = stderr(&assert);
        assert!(
            err.starts_with("error: ") && err.contains(&env.db().display().to_string()),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn deleting_a_project_leaves_no_hash_behind() {
    let env = TestEnv::new();
    env.project("demo");
    let bystander = bystander(&env);
    let token = env.token("demo", "30");
    let hash = hash_of(&env, &token);
    env.run(&["project", "delete", "demo", "--yes"]).success();
    let bytes = env.store_content();
    assert!(
        !contains(&bytes, hash.rsplit('$').next().unwrap().as_bytes()),
        "the hash lingers"
    );
    drop(bystander);
}

#[test]
fn an_empty_autheona_db_means_the_default() {
    sqlite_only!();
    let env = TestEnv::new();
    env.bare_cmd()
        .env("AUTHEONA_DB", "")
        .args(["project", "create", "demo"])
        .assert()
        .success();
    assert!(
        env.dir()
            .join("home/.local/share/autheona/autheona.db")
            .is_file()
    );
}

#[test]
fn a_symbolic_link_to_the_database_keeps_the_logs_beside_the_real_file() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    let links = env.dir().join("links");
    std::fs::create_dir(&links).unwrap();
    let link = links.join("autheona.db");
    std::os::unix::fs::symlink(env.db(), &link).unwrap();
    let token = created_token(
        &env.cmd()
            .arg("--db")
            .arg(&link)
            .args(["token", "create", "-p", "demo", "-e", "30"])
            .assert()
            .success(),
    );
    env.verify(&token, &[]).success();
    let beside_link: Vec<_> = std::fs::read_dir(&links)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        beside_link,
        ["autheona.db"],
        "log files made beside the link"
    );
    assert!(sidecar(env.db(), "-wal").exists());
}

#[test]
fn a_fifo_is_refused_without_waiting() {
    sqlite_only!();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.db().parent().unwrap()).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(env.db())
        .status()
        .unwrap();
    assert!(status.success());
    for args in [&["token", "list"][..], &["project", "create", "demo"]] {
        let assert = env
            .cmd()
            .args(args)
            .timeout(std::time::Duration::from_secs(20))
            .assert()
            .code(3);
        assert!(
            stderr(&assert).contains("not a regular file"),
            "{args:?}: {}",
            stderr(&assert)
        );
    }
}

#[test]
fn the_write_ahead_log_stays_small_across_processes() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    for _ in 0..50 {
        let token = env.token("demo", "30");
        env.verify(&token, &[]).success();
    }
    // Every process rebuilds its index from the whole log when it opens the file: the log must
    // be truncated as it grows (32 pages of 4 KiB), not left to grow with every write.
    let log = std::fs::metadata(sidecar(env.db(), "-wal")).map_or(0, |m| m.len());
    assert!(log <= 40 * 4120, "the log has grown to {log} bytes");
}

/// A trigger planted in the file that re-inserts a revoked token would make `token revoke`
/// report success while the token still works: such a file is refused before anything runs,
/// with one line naming the trigger, and left unchanged.
#[test]
fn a_planted_trigger_is_refused_and_the_token_is_not_falsely_revoked() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    env.sql()
        .batch(
            "CREATE TRIGGER undying AFTER DELETE ON tokens
             BEGIN INSERT INTO tokens SELECT old.id, old.project_id, old.secret_hash,
                   old.description, old.created_at, old.expires_at, old.last_used_at; END;",
        )
        .unwrap();
    let bytes = main_and_log(env.db());
    for args in [
        &["token", "revoke", id_of(&token), "--yes"][..],
        &["token", "list"],
        &["project", "list"],
        &["project", "create", "other"],
    ] {
        let assert = env.run(args).code(3);
        let hint = assert_error(&assert, "its schema has an unexpected trigger 'undying'");
        assert!(
            hint.is_some_and(|h| h.contains("left unchanged")),
            "{args:?}"
        );
    }
    let verdict = env.verify(&token, &[]).code(3);
    assert!(stderr(&verdict).contains("'undying'"));
    assert_eq!(main_and_log(env.db()), bytes, "the file changed");
}

/// A file whose immutability trigger was dropped is refused: nothing would stop an edit of a
/// token's expiration or project.
#[test]
fn a_dropped_immutability_trigger_is_refused() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    env.sql()
        .batch("DROP TRIGGER tokens_are_immutable")
        .unwrap();
    let assert = env.run(&["token", "list"]).code(3);
    assert_error(&assert, "its schema has no trigger 'tokens_are_immutable'");
    env.verify(&token, &[]).code(3);
}

/// A schema mismatch is reported in one short line, never as the SQL it involves.
#[test]
fn schema_errors_are_one_short_line() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    env.sql()
        .batch("CREATE TABLE extra (x); CREATE VIEW v AS SELECT * FROM extra;")
        .unwrap();
    let assert = env.run(&["project", "list"]).code(3);
    let err = stderr(&assert);
    assert!(err.lines().all(|line| line.len() < 200), "{err}");
    assert!(!err.contains("CREATE"), "{err}");
}

/// `project create` on a disk too small for the database (a tmpfs of a few KiB, mounted in a
/// private mount namespace) fails with exit 3 and leaves nothing behind: no half-made
/// database, no scratch file, no -wal or -shm file. Where it fits, the database works.
#[test]
fn a_full_disk_leaves_no_half_made_database_behind() {
    sqlite_only!();
    let (mut failed, mut made) = (0, 0);
    for kib in (8..=128).step_by(8) {
        let env = TestEnv::new();
        let mount = env.dir().join("small");
        std::fs::create_dir(&mount).unwrap();
        let script = r#"
            mount -t tmpfs -o size="$1"k tmpfs "$2" || exit 99
            "$3" --db "$2/a.db" project create p; echo "create: $?"
            echo "files: $(ls -A "$2" | tr '\n' ' ')"
            "$3" --db "$2/a.db" project list --json; echo "list: $?"
        "#;
        let out = std::process::Command::new("unshare")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", env.dir())
            .env("TZ", "UTC")
            .args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
            .arg(kib.to_string())
            .arg(&mount)
            .arg(env!("CARGO_BIN_EXE_autheona"))
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.code() != Some(99), "cannot mount a tmpfs: {err}");
        if report.contains("create: 0") {
            made += 1;
            assert!(
                report.contains("\"name\": \"p\""),
                "{kib} KiB: {report}{err}"
            );
        } else {
            failed += 1;
            assert!(report.contains("create: 3"), "{kib} KiB: {report}{err}");
            assert!(
                report.contains("files: \n"),
                "{kib} KiB, left behind: {report}"
            );
            let first = err.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("error: ") && first.contains("a.db"),
                "{err}"
            );
            assert!(
                !err.contains(".autheona-new"),
                "names the scratch file: {err}"
            );
        }
    }
    assert!(
        failed > 0,
        "no size was too small: the failure was not exercised"
    );
    assert!(made > 0, "no size was large enough");
}

/// The README's backup (`sqlite3 DB ".backup 'FILE'"`) holds a token that is still only in
/// the write-ahead log, which a copy of the main file alone would lose.
#[test]
fn the_readme_backup_keeps_tokens_still_in_the_log() {
    sqlite_only!();
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "never");
    let backup = env.dir().join("backup.db");
    let status = std::process::Command::new("sqlite3")
        .arg(env.db())
        .arg(format!(".backup '{}'", backup.display()))
        .status()
        .expect("sqlite3 is needed: apt-get install sqlite3");
    assert!(status.success());
    env.cmd()
        .arg("--db")
        .arg(&backup)
        .arg("verify")
        .env("AUTHEONA_TOKEN", &token)
        .assert()
        .success();
}

/// A --db that is a symbolic link to nothing is reported as such, by the commands that need
/// a database and by the one that would create it, and nothing is created at its target.
#[test]
fn a_dangling_db_link_is_named_as_one() {
    sqlite_only!();
    let env = TestEnv::new();
    let link = env.dir().join("link.db");
    let target = env.dir().join("gone/autheona.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for args in [
        &["project", "create", "demo"][..],
        &["project", "list"],
        &["token", "list"],
    ] {
        let assert = env.cmd().arg("--db").arg(&link).args(args).assert().code(3);
        assert_error(&assert, "is a dangling symbolic link");
    }
    let verdict = env
        .cmd()
        .arg("--db")
        .arg(&link)
        .arg("verify")
        .env("AUTHEONA_TOKEN", "aut_x")
        .assert();
    // A malformed token is judged before any database is opened.
    verdict.code(1);
    assert!(!target.exists() && !env.dir().join("gone").exists());
}

/// A database that cannot be made where this user may not write says why, with advice that
/// fits: not "the disk is full".
#[test]
fn a_database_in_a_directory_one_may_not_write_is_refused_with_fitting_advice() {
    sqlite_only!();
    let env = TestEnv::new();
    let dir = env.dir().join("locked");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut cmd = env.std_cmd();
    cmd.arg("--db")
        .arg(dir.join("new.db"))
        .args(["project", "create", "demo"]);
    let out = unprivileged(&cmd).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.starts_with("error: cannot create database "), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        err.contains(
            "hint: check that the file and its directory exist and are readable and writable"
        ),
        "{err}"
    );
    assert!(!err.contains("disk"), "{err}");
}
