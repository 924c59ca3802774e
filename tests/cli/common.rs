//! A hermetic environment per test: its own directory, database path, home and clock zone,
//! with autheona's own environment variables removed.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_autheona");

/// Variables autheona reads; a test sets the ones it means to.
const TOOL_VARS: &[&str] = &[
    "AUTHEONA_DB",
    "AUTHEONA_PROJECT",
    "AUTHEONA_TOKEN",
    "XDG_DATA_HOME",
];

pub struct TestEnv {
    dir: TempDir,
    db: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("data").join("autheona.db");
        TestEnv { dir, db }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The binary with a clean environment and `AUTHEONA_DB` pointing at this test's database.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same as a plain `std::process::Command`, for control over stdio.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = self.bare_std_cmd();
        cmd.env("AUTHEONA_DB", &self.db);
        cmd
    }

    /// The binary with a clean environment and no database path set.
    pub fn bare_cmd(&self) -> Command {
        Command::from_std(self.bare_std_cmd())
    }

    pub fn bare_std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        for var in TOOL_VARS {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.dir.path().join("home"))
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Assert {
        self.cmd().args(args).assert()
    }

    pub fn project(&self, name: &str) {
        self.run(&["project", "create", name]).success();
    }

    /// Creates a token and returns it, as a script would capture it.
    pub fn token(&self, project: &str, expires: &str) -> String {
        let out = self
            .run(&[
                "token",
                "create",
                "--project",
                project,
                "--expires",
                expires,
            ])
            .success()
            .get_output()
            .stdout
            .clone();
        let token = String::from_utf8(out).expect("utf-8").trim_end().to_owned();
        assert_eq!(token.len(), 66, "{token}");
        token
    }

    /// `verify` with the token on stdin.
    pub fn verify(&self, token: &str, args: &[&str]) -> Assert {
        self.cmd()
            .arg("verify")
            .args(args)
            .write_stdin(format!("{token}\n"))
            .assert()
    }

    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open test database")
    }
}

/// The public id inside a token.
pub fn id_of(token: &str) -> &str {
    &token[4..16]
}

pub fn stdout(assert: &Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("utf-8 stdout")
}

pub fn stderr(assert: &Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8 stderr")
}

/// Every byte of the database and its -wal and -shm files.
pub fn database_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        if let Ok(content) = std::fs::read(PathBuf::from(path)) {
            bytes.extend(content);
        }
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The checksum of a token body, computed here independently of the product's code:
/// zlib's CRC-32 written in base62 (0-9, A-Z, a-z), most significant digit first, 6 digits.
pub fn independent_checksum(body: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = Vec::new();
    for _ in 0..6 {
        digits.push(ALPHABET[(n % 62) as usize]);
        n /= 62;
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

/// A well-formed token (valid checksum) from an id and a secret.
pub fn forge(id: &str, secret: &str) -> String {
    let body = format!("aut_{id}_{secret}");
    let sum = independent_checksum(&body);
    body + &sum
}

/// A pipe whose reader is already gone.
pub fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    std::process::Stdio::from(writer)
}

/// libfaketime's preload library, installed by `.ci/run` (Debian package faketime).
pub fn faketime_lib() -> &'static str {
    const CANDIDATES: &[&str] = &[
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    CANDIDATES
        .iter()
        .copied()
        .find(|path| std::path::Path::new(path).exists())
        .expect("libfaketime is needed: apt-get install faketime")
}

/// `token list --json` (with `args`), parsed.
pub fn list_json(env: &TestEnv, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["token", "list", "--json"];
    all.extend_from_slice(args);
    let out = stdout(&env.run(&all).success());
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A JSON object's keys, sorted.
pub fn keys(value: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
