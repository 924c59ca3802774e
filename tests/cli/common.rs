//! A hermetic environment per test: its own directory, database path, home and clock zone.
//! Every command starts from an empty environment (as jj's `test_environment.rs`), so nothing
//! from the developer's shell (XDG_CONFIG_HOME, GIT_DIR, COLUMNS, AUTHEONA_*) reaches it.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_autheona");

/// What every command's environment holds, and nothing more; a test adds what it means to.
/// `PATH` is passed through for the programs a test wraps autheona in (setpriv, shells), and
/// `LLVM_PROFILE_FILE` when set, so that a coverage run still counts the binary.
pub const BASE_VARS: &[&str] = &["HOME", "TZ", "NO_COLOR", "PATH", "LLVM_PROFILE_FILE"];

/// The store the tests run against: SQLite files (the first pass of `./test`), or databases
/// on the PostgreSQL server `./test` starts for its second pass (`AUTHEONA_TEST_STORE=postgres`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// This run's store.
pub fn backend() -> Backend {
    if crate::pg::is_postgres_pass() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// At the top of a test about what only an SQLite file has (file modes, -wal and -shm files,
/// damaged or foreign files, the schema check of the file, backups with sqlite3): in the
/// PostgreSQL pass the test says so on stderr and passes without running.
/// `grep -rn 'sqlite_only!' tests/cli` lists them.
macro_rules! sqlite_only {
    () => {
        if $crate::common::backend() == $crate::common::Backend::Postgres {
            eprintln!(
                "sqlite_only: {} is about SQLite files; not run in the PostgreSQL pass",
                std::thread::current().name().unwrap_or("this test")
            );
            return;
        }
    };
}

/// The schema version this autheona makes on this run's store.
pub fn current_schema_version() -> i64 {
    match backend() {
        Backend::Sqlite => autheona::store::SCHEMA_VERSION.into(),
        Backend::Postgres => autheona::store::POSTGRES_SCHEMA_VERSION.into(),
    }
}

pub struct TestEnv {
    dir: TempDir,
    db: PathBuf,
    /// The test's own database on the PostgreSQL server, in the PostgreSQL pass; dropped
    /// with the environment.
    pg: Option<String>,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(name) = &self.pg {
            crate::pg::drop_database(name);
        }
    }
}

impl TestEnv {
    /// A new directory, and in the PostgreSQL pass a new, empty database (without
    /// autheona's schema: `project create` makes it, as it makes the SQLite file).
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("data").join("autheona.db");
        let pg = (backend() == Backend::Postgres).then(|| {
            assert!(crate::pg::available(), "no PostgreSQL server");
            crate::pg::fresh_database()
        });
        TestEnv { dir, db, pg }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file of the SQLite pass (in the PostgreSQL pass, a path nothing uses).
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The test's store as `--db` and `AUTHEONA_DB` take it: the SQLite file's path, or
    /// `postgres:///DATABASE` (the server, user and password come from `PG*` variables).
    pub fn db_arg(&self) -> std::ffi::OsString {
        match &self.pg {
            Some(name) => crate::pg::url(name).into(),
            None => self.db.clone().into_os_string(),
        }
    }

    /// How autheona names the test's store in its messages: the file's path, or
    /// `PostgreSQL HOST:PORT (database NAME, user USER)`.
    pub fn location(&self) -> String {
        match &self.pg {
            Some(name) => crate::pg::location(name),
            None => self.db.display().to_string(),
        }
    }

    /// The error a command that needs the store gives where there is none yet: no file, or
    /// a database without autheona's schema.
    pub fn missing_store_error(&self) -> String {
        match &self.pg {
            Some(name) => format!(
                "PostgreSQL database {} has no autheona schema yet",
                crate::pg::target(name)
            ),
            None => format!("no database at {}", self.db.display()),
        }
    }

    /// The hint that goes with [`TestEnv::missing_store_error`].
    pub fn missing_store_hint(&self) -> &'static str {
        match backend() {
            Backend::Postgres => {
                "hint: `autheona project create NAME` initialises it (as a user that may create \
                 schemas)"
            }
            Backend::Sqlite => "hint: create a project first: autheona project create NAME",
        }
    }

    /// Whether any of the store was made: the SQLite file or its directory, or autheona's
    /// schema in the test's database.
    pub fn store_exists(&self) -> bool {
        match &self.pg {
            Some(_) => {
                let mut sql = self.sql();
                sql.value("SELECT to_regnamespace('autheona') IS NOT NULL")
                    .as_deref()
                    == Some("t")
            }
            None => self.db.exists() || self.db.parent().is_some_and(Path::exists),
        }
    }

    /// The binary with an empty environment but for [`BASE_VARS`] and `AUTHEONA_DB` naming
    /// this test's store (in the PostgreSQL pass with the server's [`crate::pg::PG_VARS`]).
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same as a plain `std::process::Command`, for control over stdio.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = self.bare_std_cmd();
        cmd.env("AUTHEONA_DB", self.db_arg());
        if self.pg.is_some() {
            for var in crate::pg::PG_VARS {
                if let Some(value) = std::env::var_os(var) {
                    cmd.env(var, value);
                }
            }
        }
        cmd
    }

    /// The binary with an empty environment but for [`BASE_VARS`]: no database path set.
    pub fn bare_cmd(&self) -> Command {
        Command::from_std(self.bare_std_cmd())
    }

    pub fn bare_std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear()
            .env("HOME", self.dir.path().join("home"))
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        for var in ["PATH", "LLVM_PROFILE_FILE"] {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
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
        let create = [
            "token",
            "create",
            "--project",
            project,
            "--expires",
            expires,
        ];
        created_token(&self.run(&create).success())
    }

    /// The same with a description.
    pub fn described_token(&self, project: &str, expires: &str, description: &str) -> String {
        let create = [
            "token",
            "create",
            "-p",
            project,
            "-e",
            expires,
            "-d",
            description,
        ];
        created_token(&self.run(&create).success())
    }

    /// `verify` with the token on stdin.
    pub fn verify(&self, token: &str, args: &[&str]) -> Assert {
        self.cmd()
            .arg("verify")
            .args(args)
            .write_stdin(format!("{token}\n"))
            .assert()
    }

    /// A connection of its own to the test's store, for arranging or inspecting it behind
    /// autheona's back.
    pub fn sql(&self) -> StoreSql {
        match &self.pg {
            Some(name) => StoreSql::postgres(name),
            None => {
                StoreSql::Sqlite(rusqlite::Connection::open(&self.db).expect("open test database"))
            }
        }
    }

    /// A connection only to read, that changes nothing, not even on closing: on SQLite a
    /// read-only one, which never checkpoints or deletes the log (waiting up to 10 s for a
    /// lock); on PostgreSQL as [`TestEnv::sql`].
    pub fn read_only_sql(&self) -> StoreSql {
        match &self.pg {
            Some(name) => StoreSql::postgres(name),
            None => {
                let conn = rusqlite::Connection::open_with_flags(
                    &self.db,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .expect("open the database read-only");
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                StoreSql::Sqlite(conn)
            }
        }
    }

    /// Everything the store holds, to compare before and after a command or to search for a
    /// secret: every byte of the SQLite file and its -wal and -shm files, or every row and
    /// schema object of autheona's schema on the server.
    pub fn store_content(&self) -> Vec<u8> {
        match &self.pg {
            Some(_) => self.sql().dump().into_bytes(),
            None => database_bytes(&self.db),
        }
    }

    /// The schema version the store records (SQLite's `user_version`, the
    /// `schema_version` table on PostgreSQL).
    pub fn schema_version(&self) -> i64 {
        let query = match backend() {
            Backend::Sqlite => "PRAGMA user_version",
            Backend::Postgres => "SELECT version FROM schema_version",
        };
        let version = self.sql().value(query).expect("a schema version");
        version.parse().expect("a number")
    }

    /// Records schema version `version` in the store, as a newer autheona would.
    pub fn set_schema_version(&self, version: i64) {
        let statement = match backend() {
            Backend::Sqlite => format!("PRAGMA user_version = {version}"),
            Backend::Postgres => format!("UPDATE schema_version SET version = {version}"),
        };
        self.sql()
            .batch(&statement)
            .expect("set the schema version");
    }

    /// Holds the store's write lock until dropped, as another writer would: SQLite's `BEGIN
    /// IMMEDIATE`, or on PostgreSQL a transaction holding autheona's tables in EXCLUSIVE
    /// mode (readers go on, writers wait for the lock timeout).
    pub fn hold_write_lock(&self) -> WriteLock {
        let mut sql = self.sql();
        let begin = match backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => {
                "BEGIN; LOCK TABLE schema_version, projects, tokens IN EXCLUSIVE MODE"
            }
        };
        sql.batch(begin).expect("take the write lock");
        WriteLock(sql)
    }

    /// Whether the store is sound: see [`StoreSql::integrity`].
    pub fn integrity(&self) -> Vec<String> {
        self.read_only_sql().integrity()
    }
}

/// A connection to a test's store: its SQLite file, or its PostgreSQL database with
/// `autheona` first on the search path, so that one statement names the same tables on both.
/// Parameters are written `$1`, `$2`, ... and bound as text.
pub enum StoreSql {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl StoreSql {
    fn postgres(name: &str) -> StoreSql {
        let mut client = crate::pg::connect(name);
        client
            .batch_execute("SET search_path = autheona, public")
            .expect("set the search path");
        StoreSql::Postgres(client)
    }

    /// Runs one or more statements, without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), String> {
        match self {
            StoreSql::Sqlite(conn) => conn.execute_batch(sql).map_err(|err| err.to_string()),
            StoreSql::Postgres(client) => client.batch_execute(sql).map_err(|err| pg_error(&err)),
        }
    }

    /// Runs one statement with text parameters; how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&str]) -> Result<u64, String> {
        match self {
            StoreSql::Sqlite(conn) => conn
                .execute(
                    &sqlite_placeholders(sql),
                    rusqlite::params_from_iter(params),
                )
                .map(|n| n as u64)
                .map_err(|err| err.to_string()),
            StoreSql::Postgres(client) => {
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                client.execute(sql, &params).map_err(|err| pg_error(&err))
            }
        }
    }

    /// Every row of a query, each value as text (`None` for NULL).
    pub fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            StoreSql::Sqlite(conn) => {
                let mut statement = conn
                    .prepare(sql)
                    .unwrap_or_else(|err| panic!("{sql}: {err}"));
                let columns = statement.column_count();
                statement
                    .query_map([], |row| {
                        (0..columns)
                            .map(|i| {
                                use rusqlite::types::ValueRef;
                                Ok(match row.get_ref(i)? {
                                    ValueRef::Null => None,
                                    ValueRef::Integer(n) => Some(n.to_string()),
                                    ValueRef::Real(x) => Some(x.to_string()),
                                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                                        Some(String::from_utf8_lossy(t).into_owned())
                                    }
                                })
                            })
                            .collect()
                    })
                    .and_then(|rows| rows.collect())
                    .unwrap_or_else(|err| panic!("{sql}: {err}"))
            }
            StoreSql::Postgres(client) => client
                .simple_query(sql)
                .unwrap_or_else(|err| panic!("{sql}: {}", pg_error(&err)))
                .into_iter()
                .filter_map(|message| match message {
                    postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The first value of the first row, if there is one.
    pub fn value(&mut self, sql: &str) -> Option<String> {
        self.rows(sql).into_iter().next()?.into_iter().next()?
    }

    /// A count (the first value of the first row).
    pub fn count(&mut self, sql: &str) -> i64 {
        self.value(sql)
            .unwrap_or_else(|| panic!("{sql}: no value"))
            .parse()
            .expect("a number")
    }

    /// PostgreSQL: waits until this is the only client's session on the test's database, that
    /// is until the server has ended every session of a killed command, committing or rolling back what
    /// it had been sent; what the store holds then is final. Nothing to wait for on SQLite.
    pub fn wait_until_alone(&mut self) {
        if let StoreSql::Sqlite(_) = self {
            return;
        }
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            let others = self.count(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend'",
            );
            if others == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{others} sessions still open on the test's database"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Whether the store is sound: SQLite's `integrity_check` (`["ok"]`), or on PostgreSQL
    /// amcheck's checks of autheona's tables and indexes (`["ok"]`, else what they found).
    pub fn integrity(&mut self) -> Vec<String> {
        if let StoreSql::Sqlite(_) = self {
            return self
                .rows("PRAGMA integrity_check")
                .into_iter()
                .map(|row| row[0].clone().unwrap_or_default())
                .collect();
        }
        self.batch("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")
            .expect("amcheck (in Debian's postgresql package)");
        let mut found: Vec<String> = self
            .rows(
                "SELECT c.relname || ': ' || v.msg
                 FROM pg_class c, public.verify_heapam(c.oid) v
                 WHERE c.relnamespace = 'autheona'::regnamespace AND c.relkind = 'r'",
            )
            .into_iter()
            .map(|row| row[0].clone().unwrap_or_default())
            .collect();
        if let Err(err) = self.batch(
            "SELECT public.bt_index_check(c.oid, true)
             FROM pg_class c
             WHERE c.relnamespace = 'autheona'::regnamespace AND c.relkind = 'i'",
        ) {
            found.push(err);
        }
        if found.is_empty() {
            found.push("ok".to_owned());
        }
        found
    }

    /// PostgreSQL: every object of autheona's schema and every row of its tables, as text.
    fn dump(&mut self) -> String {
        let mut out = String::new();
        let mut add = |sql: &mut StoreSql, what: &str, query: &str| {
            for row in sql.rows(query) {
                let row: Vec<String> = row
                    .into_iter()
                    .map(|v| v.unwrap_or_else(|| "NULL".to_owned()))
                    .collect();
                out.push_str(&format!("{what}: {}\n", row.join(" | ")));
            }
        };
        add(self, "object", POSTGRES_SCHEMA_OBJECTS);
        if self
            .value("SELECT to_regclass('autheona.tokens') IS NOT NULL")
            .as_deref()
            == Some("t")
        {
            add(self, "version", "SELECT * FROM schema_version");
            add(self, "project", "SELECT * FROM projects ORDER BY id");
            add(self, "token", "SELECT * FROM tokens ORDER BY seq");
        }
        out
    }
}

/// The objects of autheona's schema on PostgreSQL, by kind and name, with their definitions:
/// relations (`r` table, `i` index, `S` sequence, `v` view), triggers and functions.
pub const POSTGRES_SCHEMA_OBJECTS: &str = "
    SELECT 'relation ' || c.relkind::text, c.relname, NULL FROM pg_class c
    WHERE c.relnamespace = to_regnamespace('autheona')
    UNION ALL
    SELECT 'trigger', t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = to_regnamespace('autheona') AND NOT t.tgisinternal
    UNION ALL
    SELECT 'function', p.proname, p.prosrc FROM pg_proc p
    WHERE p.pronamespace = to_regnamespace('autheona')
    ORDER BY 1, 2";

/// A PostgreSQL error as the server words it (`postgres::Error` alone says only "db error").
fn pg_error(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => err.to_string(),
    }
}

/// `$1`, `$2`, ... as SQLite's `?1`, `?2`, ...: a `$` followed by a digit.
fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Another writer's lock on a test's store, held until dropped (or [`WriteLock::release`]d).
pub struct WriteLock(StoreSql);

impl WriteLock {
    pub fn release(self) {}
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.batch("ROLLBACK");
    }
}

/// `program` with exactly the environment `like` was given (which starts empty), for wrapping
/// autheona in another program (setpriv, a shell).
pub fn with_env_of(
    program: impl AsRef<std::ffi::OsStr>,
    like: &std::process::Command,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env_clear();
    for (key, value) in like.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd
}

/// The user the unprivileged commands run as, when the tests run as root (as CI does).
pub const NOBODY: u32 = 65534;

pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `cmd` (program, arguments, environment, directory) as the unprivileged user: through
/// setpriv when the tests run as root, for root ignores file modes; else `cmd` as it is.
pub fn unprivileged(cmd: &std::process::Command) -> std::process::Command {
    let mut wrapped = if running_as_root() {
        let nobody = NOBODY.to_string();
        let mut wrapped = with_env_of("setpriv", cmd);
        wrapped
            .arg(format!("--reuid={nobody}"))
            .arg(format!("--regid={nobody}"))
            .args(["--clear-groups", "--"])
            .arg(cmd.get_program());
        wrapped
    } else {
        with_env_of(cmd.get_program(), cmd)
    };
    wrapped.args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

// ---------------------------------------------------------------------------------------------
// The parts of a token: `aut_` ID `_` SECRET CHECKSUM, 4 + 12 + 1 + 43 + 6 = 66 characters.

/// The public id inside a token.
pub fn id_of(token: &str) -> &str {
    &token[4..16]
}

/// The secret inside a token: what must never be shown or stored.
pub fn secret_of(token: &str) -> &str {
    &token[17..60]
}

/// Everything the checksum covers: `aut_ID_SECRET`.
pub fn body_of(token: &str) -> &str {
    &token[..60]
}

pub fn checksum_of(token: &str) -> &str {
    &token[60..]
}

/// The token a command printed: exactly one whole line of 66 characters, starting `aut_`,
/// whose checksum is right; `None` for anything else.
pub fn printed_token(stdout: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(stdout).ok()?.strip_suffix('\n')?;
    let shaped = line.len() == 66
        && line.starts_with("aut_")
        && !line.contains('\n')
        && checksum_of(line) == independent_checksum(body_of(line));
    shaped.then(|| line.to_owned())
}

/// The token a successful `token create` or `token rotate` printed; fails the test otherwise.
pub fn created_token(assert: &Assert) -> String {
    let out = assert.get_output();
    printed_token(&out.stdout).unwrap_or_else(|| {
        panic!(
            "expected one token line on stdout: {:?} (stderr {:?})",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `db` with `suffix` appended to its file name: its `-wal` or `-shm` file.
pub fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push(suffix);
    path.into()
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

/// Every byte of the database and its -wal file: what holds data (the -shm file is an index
/// that readers rebuild).
pub fn main_and_log(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap_or_default();
    let mut log = db.as_os_str().to_owned();
    log.push("-wal");
    bytes.extend(std::fs::read(PathBuf::from(log)).unwrap_or_default());
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

/// libfaketime's preload library (Debian package faketime, which `./test` installs; the
/// library itself is in libfaketime): wherever the multiarch layout puts it, else wherever
/// dpkg says the package put it. Fails with a message naming the package.
pub fn faketime_lib() -> &'static Path {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    const NAME: &str = "libfaketime.so.1";
    let found = FOUND.get_or_init(|| {
        let multiarch = std::fs::read_dir("/usr/lib")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("faketime").join(NAME));
        let plain = ["/usr/lib", "/usr/lib64", "/usr/local/lib"]
            .into_iter()
            .map(|dir| Path::new(dir).join("faketime").join(NAME));
        multiarch
            .chain(plain)
            .find(|path| path.is_file())
            .or_else(|| {
                let listed = std::process::Command::new("dpkg")
                    .args(["-L", "libfaketime"])
                    .output()
                    .ok()?;
                String::from_utf8_lossy(&listed.stdout)
                    .lines()
                    .map(PathBuf::from)
                    .find(|path| path.ends_with(NAME) && path.is_file())
            })
    });
    found.as_deref().unwrap_or_else(|| {
        panic!(
            "{NAME} not found (in /usr/lib/*/faketime/ or where dpkg -L libfaketime says): \
             these tests need libfaketime: apt-get install faketime"
        )
    })
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

// ---------------------------------------------------------------------------------------------
// Rotate, prune and the list filters: moved clocks, verdicts, listed rows.

/// `env.cmd()` with the clock of that one process moved by `offset`, in libfaketime's words:
/// `-40d` is 40 days ago, `+612h` is 25.5 days ahead.
pub fn moved_clock(env: &TestEnv, offset: &str) -> Command {
    let mut cmd = env.cmd();
    cmd.env("FAKETIME", offset)
        .env("LD_PRELOAD", faketime_lib());
    cmd
}

/// Creates a token with the clock moved by `offset` (`-40d`: created 40 days ago); returns it.
pub fn token_at(env: &TestEnv, offset: &str, project: &str, expires: &str) -> String {
    let assert = moved_clock(env, offset)
        .args(["token", "create", "-p", project, "-e", expires])
        .assert()
        .success();
    without_clock_warning(&stderr(&assert), offset);
    created_token(&assert)
}

/// A libfaketime offset in seconds: `-40d`, `+612h`, `+30m`, `-90s`.
fn offset_seconds(offset: &str) -> i64 {
    let (number, unit) = offset.split_at(offset.len() - 1);
    let number: i64 = number
        .parse()
        .unwrap_or_else(|_| panic!("not a relative faketime offset: {offset}"));
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => panic!("not a relative faketime offset: {offset}"),
    };
    number * unit
}

/// The stderr of a command whose clock was moved by `offset`, without the warning the
/// PostgreSQL pass expects on its first line: a host whose clock is that far from the database
/// server's says so (`warning: this host's clock is N s behind the database server's; ...`,
/// N within a second or two of the offset, by how long the command took to reach the server).
/// Fails the test when that line is missing there, or when the SQLite pass has one.
#[track_caller]
pub fn without_clock_warning(stderr: &str, offset: &str) -> String {
    let seconds = offset_seconds(offset);
    let warned = stderr.split_inclusive('\n').next().and_then(|line| {
        let rest = line.strip_prefix("warning: this host's clock is ")?;
        let (apart, rest) = rest.split_once(" s ")?;
        let apart: i64 = apart.parse().ok()?;
        let which = if seconds > 0 { "ahead of" } else { "behind" };
        let tail = format!(
            "{which} the database server's; expiry is judged by this host's clock: keep the \
             clocks of every host in sync (NTP)\n"
        );
        ((apart - seconds.abs()).abs() <= 2 && rest == tail).then_some(line.len())
    });
    match (backend(), warned) {
        (Backend::Postgres, Some(len)) => stderr[len..].to_owned(),
        (Backend::Postgres, None) => panic!(
            "expected the clock warning for a clock moved by {offset} first on stderr:\n{stderr}"
        ),
        (Backend::Sqlite, _) => {
            assert!(
                !stderr.contains("clock is"),
                "a clock warning without a server:\n{stderr}"
            );
            stderr.to_owned()
        }
    }
}

/// Whether `verify` accepts the token now. Any answer but valid (0) or not valid (1) fails.
pub fn verifies(env: &TestEnv, token: &str) -> bool {
    let assert = env.verify(token, &[]);
    match assert.get_output().status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("verify exited {other:?}: {}", stderr(&assert)),
    }
}

/// The token is gone: `verify` says `invalid: unknown`, exit 1.
pub fn assert_gone(env: &TestEnv, token: &str) {
    env.verify(token, &[]).code(1).stdout("invalid: unknown\n");
}

/// The ids of listed tokens (`token list --json` rows), in order.
pub fn ids(tokens: &[serde_json::Value]) -> Vec<String> {
    tokens
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The listed row of the token with this id.
pub fn listed(env: &TestEnv, id: &str) -> serde_json::Value {
    list_json(env, &[])
        .into_iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("token {id} is not listed"))
}

/// A date from autheona's JSON (RFC 3339, UTC).
pub fn json_date(value: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a date string"))
        .expect("RFC 3339")
        .to_utc()
}

/// How long a listed (or created) token lives: expires_at - created_at, or `None` for never.
pub fn lifetime(row: &serde_json::Value) -> Option<chrono::TimeDelta> {
    (!row["expires_at"].is_null())
        .then(|| json_date(&row["expires_at"]) - json_date(&row["created_at"]))
}

/// A JSON date as tables and status lines show it: `YYYY-MM-DD HH:MM`, local time (the tests'
/// TZ is UTC).
pub fn for_people(value: &serde_json::Value) -> String {
    json_date(value).format("%Y-%m-%d %H:%M").to_string()
}

/// Asserts a refusal: nothing on stdout; on stderr one `error: ` line containing `text`,
/// optionally followed by one `hint: ` line, which is returned.
pub fn assert_error(assert: &Assert, text: &str) -> Option<String> {
    let out = stdout(assert);
    let err = stderr(assert);
    assert_eq!(out, "", "stdout of a refusal");
    let lines: Vec<&str> = err.lines().collect();
    let shaped = (lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")))
        && lines[0].starts_with("error: ");
    assert!(
        shaped,
        "expected one error line and at most one hint:\n{err}"
    );
    assert!(lines[0].contains(text), "expected {text:?} in:\n{err}");
    lines.get(1).map(|hint| (*hint).to_owned())
}

// ---------------------------------------------------------------------------------------------
// The one process runner for commands that need more than assert_cmd gives: stdin streamed
// from a thread, a closed stdout, a kill at a chosen moment, and a guard against hangs.

/// Longer than any command may take, even on a loaded machine: a guard against a hang, not a
/// timing requirement.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// What a process gets on stdin.
#[derive(Clone)]
pub enum Stdin {
    /// `/dev/null`.
    Null,
    /// These bytes, then the end of input.
    Bytes(Vec<u8>),
    /// These bytes, then `A`s up to `len` in all, written from a thread until the pipe breaks.
    Endless { head: Vec<u8>, len: usize },
}

/// How a process ended, and everything it wrote.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    /// Killed (SIGKILL) by the runner at its deadline: [`Process::kill_after`] or the hang
    /// guard.
    pub killed_at_deadline: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// How much of stdin was written before the pipe broke or the input ended.
    pub stdin_written: usize,
}

/// A command to run with [`Process::run`].
pub struct Process {
    cmd: std::process::Command,
    stdin: Stdin,
    stdout_closed: bool,
    deadline: Duration,
}

impl Process {
    /// `cmd` with stdin from `/dev/null`, output captured, and [`HANG_GUARD`] as deadline.
    pub fn new(cmd: std::process::Command) -> Process {
        Process {
            cmd,
            stdin: Stdin::Null,
            stdout_closed: false,
            deadline: HANG_GUARD,
        }
    }

    pub fn stdin(mut self, stdin: Stdin) -> Process {
        self.stdin = stdin;
        self
    }

    /// stdout is a pipe whose reader is already gone.
    pub fn stdout_closed(mut self) -> Process {
        self.stdout_closed = true;
        self
    }

    /// Kills the process (SIGKILL) if it still runs after `deadline`.
    pub fn kill_after(mut self, deadline: Duration) -> Process {
        self.deadline = deadline;
        self
    }

    /// Runs the process to its end or its deadline.
    pub fn run(self) -> Run {
        let Process {
            mut cmd,
            stdin,
            stdout_closed,
            deadline,
        } = self;
        cmd.stdin(match stdin {
            Stdin::Null => Stdio::null(),
            _ => Stdio::piped(),
        })
        .stdout(if stdout_closed {
            closed_pipe()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {:?}: {err}", cmd.get_program()));
        let pid = child.id();
        let writer = child
            .stdin
            .take()
            .map(|pipe| std::thread::spawn(move || write_stdin(pipe, stdin)));
        let stdout = child.stdout.take().map(read_all);
        let stderr = child.stderr.take().map(read_all);

        // Waits for the exit without reaping (WNOWAIT): until `child.wait()` the pid stays
        // this child's, so a kill at the deadline can never hit another process.
        let (exited, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            loop {
                // SAFETY: waitid(2) on our own child, with a zeroed siginfo_t it may fill.
                let waited = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOWAIT,
                    )
                };
                if waited == 0 || std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
                    break;
                }
            }
            let _ = exited.send(());
        });
        let killed_at_deadline = ended.recv_timeout(deadline).is_err();
        if killed_at_deadline {
            child.kill().expect("kill the process");
        }
        let status = child.wait().expect("wait for the process");
        let join = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
            reader.map(|r| r.join().unwrap()).unwrap_or_default()
        };
        Run {
            status,
            killed_at_deadline,
            stdout: join(stdout),
            stderr: join(stderr),
            stdin_written: writer.map_or(0, |w| w.join().unwrap()),
        }
    }
}

/// Runs `cmd` with no stdin and captured output; one that outlives [`HANG_GUARD`] is killed
/// and fails the test.
pub fn output(cmd: std::process::Command) -> Run {
    let what = format!("{cmd:?}");
    let run = Process::new(cmd).run();
    assert!(
        !run.killed_at_deadline,
        "ran for more than {HANG_GUARD:?}, killed: {what}"
    );
    run
}

fn write_stdin(mut pipe: std::process::ChildStdin, stdin: Stdin) -> usize {
    let (head, len) = match stdin {
        Stdin::Null => return 0,
        Stdin::Bytes(bytes) => (bytes, 0),
        Stdin::Endless { head, len } => (head, len),
    };
    if pipe.write_all(&head).is_err() {
        return 0;
    }
    let mut written = head.len();
    let chunk = vec![b'A'; 64 << 10];
    while written < len {
        let n = chunk.len().min(len - written);
        if pipe.write_all(&chunk[..n]).is_err() {
            break;
        }
        written += n;
    }
    written
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

// ---------------------------------------------------------------------------------------------
// Whole-output checks, where the output is the contract (tables, error lines).

/// What stands for any time shown to people (`YYYY-MM-DD HH:MM`), as wide as the time, so
/// that the columns of an expected table line up as the real ones do.
pub const ANY_TIME: &str = "YYYY-MM-DD HH:MM";

/// `text` with each `(value, name)` of `names` replaced by its name (use names as wide as the
/// values: `[web tok id]` for a 12-character id), then every `YYYY-MM-DD HH:MM` by
/// [`ANY_TIME`].
pub fn redacted(text: &str, names: &[(&str, &str)]) -> String {
    let mut text = text.to_owned();
    for (value, name) in names {
        text = text.replace(value, name);
    }
    let shape = ANY_TIME.as_bytes();
    let fits = |window: &[u8]| {
        window.iter().zip(shape).all(|(&b, &s)| match s {
            b'Y' | b'M' | b'D' | b'H' => b.is_ascii_digit(),
            _ => b == s,
        })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at >= shape.len() && fits(&bytes[at..at + shape.len()]) {
            out.push_str(ANY_TIME);
            at += shape.len();
        } else {
            let c = text[at..].chars().next().unwrap();
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// An expected output as written in the test, indented like the code: without the newline
/// after the opening quote, the common indentation, and the line of the closing quote.
fn dedented(expected: &str) -> String {
    let expected = expected.strip_prefix('\n').unwrap_or(expected);
    let mut lines: Vec<&str> = expected.split('\n').collect();
    if lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|line| format!("{}\n", line.get(indent..).unwrap_or("")))
        .collect()
}

/// The whole of `actual`, redacted with `names` (see [`redacted`]), is `expected` (written
/// indented, see [`dedented`]); a failure shows both, line by line.
#[track_caller]
pub fn assert_output(actual: &str, names: &[(&str, &str)], expected: &str) {
    let actual = redacted(actual, names);
    let expected = dedented(expected);
    if actual != expected {
        let mut report = String::new();
        let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
        for n in 0..a.len().max(e.len()) {
            match (e.get(n), a.get(n)) {
                (Some(e), Some(a)) if e == a => report.push_str(&format!("   {e}\n")),
                (e, a) => {
                    if let Some(e) = e {
                        report.push_str(&format!(" - {e}\n"));
                    }
                    if let Some(a) = a {
                        report.push_str(&format!(" + {a}\n"));
                    }
                }
            }
        }
        panic!("output differs (- expected, + actual):\n{report}\nactual, redacted: {actual:?}");
    }
}

/// The arguments of `token create -p demo -e 30 -d DESCRIPTION`, the shape the description
/// tests share.
pub fn create_described_args(description: &str) -> [&str; 8] {
    [
        "token",
        "create",
        "-p",
        "demo",
        "-e",
        "30",
        "-d",
        description,
    ]
}

/// A README code block: the first fenced block after `marker`, without its fences.
pub fn readme_block(marker: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let after = &readme[readme.find(marker).expect("marker in README") + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

/// `cmd`'s peak resident memory, in KiB (from wait4); it must succeed.
// wait4 reaps the child, which `Child::wait` would otherwise do.
#[allow(clippy::zombie_processes)]
pub fn peak_kib(mut cmd: std::process::Command) -> i64 {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: wait4(2) on our own child, with a zeroed rusage it fills.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        usage
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed: {status}"
    );
    usage.ru_maxrss
}

/// Makes `cmd` start with no stdout at all (`>&-`): fd 1 closed in the child before exec.
pub fn close_stdout_at_exec(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook only calls close(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::close(1) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}
