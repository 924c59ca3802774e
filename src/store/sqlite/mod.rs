//! The SQLite store: one file. Opening, pragmas, migrations, and every SQL statement
//! autheona runs on it.

mod queries;
mod schema;

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind as IoErrorKind;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

pub use schema::SCHEMA_VERSION;

use super::audit::Acting;
use super::{StoreError, StoreErrorKind as Kind, StoreResult as Result};

/// `PRAGMA application_id`: "AUTH", so `file(1)` and tools can tell what the file is.
pub const APPLICATION_ID: i32 = 0x4155_5448;

/// Pages the write-ahead log may hold before a write copies it into the database.
const LOG_PAGES: u64 = 32;

/// How long a command waits for another process's write before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The autheona database: one SQLite file.
#[derive(Debug)]
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    acting: Acting,
}

/// What opening found in the file, read before anything is written to it.
enum FileState {
    Current,
    Older,
    /// SQLite with no schema at all (including a zero-length file).
    Empty,
}

/// Who may initialise an empty file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Intent {
    Create,
    Use,
}

impl Sqlite {
    /// Opens the database at `path`, creating it (directory 0700, file 0600) or initialising an
    /// empty file if needed. Only commands that write a project call this.
    pub fn create(path: &Path) -> Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| {
                    StoreError::new(
                        io_kind(&err),
                        format!("cannot create directory {}: {err}", dir.display()),
                    )
                    .caused_by(err)
                })?;
        }
        refuse_dangling_link(path)?;
        if !path.exists() {
            build_fresh(path)?;
        }
        Sqlite::open_file(path, Intent::Create)
    }

    /// Opens an existing database; `None` when there is no file at `path`.
    ///
    /// SQLite opens a file it may not write read-only; writes then fail with a clear error.
    pub fn open(path: &Path) -> Result<Option<Sqlite>> {
        refuse_dangling_link(path)?;
        match path.try_exists() {
            Ok(true) => Sqlite::open_file(path, Intent::Use).map(Some),
            Ok(false) => Ok(None),
            Err(err) => Err(cannot_reach(path, err)),
        }
    }

    /// Opens an existing database only to read it, for shell completion: migrates nothing and
    /// writes nothing to the database or its log. Only the -shm index, a cache SQLite keeps
    /// beside the log, may be rebuilt (or made, when a log has none). `None` when there is no
    /// database of the current schema at `path`.
    pub fn open_read_only(path: &Path) -> Result<Option<Sqlite>> {
        // Missing, a directory, a FIFO: nothing to read.
        if !path.is_file() || matches!(sniff(path)?, Sniff::Empty) {
            return Ok(None);
        }
        let store = Sqlite::connect_to_read(path)?;
        match store.file_state()? {
            FileState::Current => Ok(Some(store)),
            // An older schema is read after the migration a command makes, not before.
            FileState::Older | FileState::Empty => Ok(None),
        }
    }

    /// Opens an existing database only to read it as it is, as a copy's source: writes
    /// nothing, as [`Sqlite::open_read_only`], and reads an older schema without migrating
    /// it (every version so far holds the same columns). `None` when there is no file at
    /// `path`; an empty file, or anything not an autheona database, is an error.
    pub fn open_as_is(path: &Path) -> Result<Option<Sqlite>> {
        refuse_dangling_link(path)?;
        match path.try_exists() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(err) => return Err(cannot_reach(path, err)),
        }
        refuse_non_file(path)?;
        if matches!(sniff(path)?, Sniff::Empty) {
            return Err(empty(path));
        }
        let store = Sqlite::connect_to_read(path)?;
        match store.file_state()? {
            FileState::Current | FileState::Older => Ok(Some(store)),
            FileState::Empty => Err(empty(&store.path)),
        }
    }

    /// A connection that only reads: an ordinary read-only one beside a log, else one that
    /// reads the file as it is.
    fn connect_to_read(path: &Path) -> Result<Sqlite> {
        if sidecar(&real_path(path), "-wal").exists() {
            Sqlite::connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        } else {
            // With no log the file alone is the whole database: read it as it is, creating
            // nothing (a read-only connection would make a -wal and a -shm).
            Sqlite::connect_immutable(path)
        }
    }

    /// Opens a file that exists, in four steps: refuse what is not a file; settle whose file
    /// it is before opening it for writing, so another application's file is never touched
    /// (SQLite would checkpoint its log on close); connect, with private -wal and -shm files;
    /// bring the schema up to date.
    fn open_file(path: &Path, intent: Intent) -> Result<Sqlite> {
        refuse_non_file(path)?;
        settle_ownership(path, intent)?;
        let real = real_path(path);
        let sidecars = [sidecar(&real, "-wal"), sidecar(&real, "-shm")];
        create_private(&real, &sidecars);
        let mut store = if intent == Intent::Use && sidecars.iter().all(|file| !file.exists()) {
            // They cannot be created (a read-only directory), and with no log the file alone
            // is the whole database: read it as it is.
            Sqlite::connect_immutable(path)?
        } else {
            Sqlite::connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?
        };
        store.bring_up_to_date(intent)?;
        keep_private(&sidecars);
        Ok(store)
    }

    /// Migrates an older schema, or initialises an empty file when the intent is to create.
    fn bring_up_to_date(&mut self, intent: Intent) -> Result<()> {
        match self.file_state()? {
            FileState::Current => Ok(()),
            FileState::Older => self.migrate(),
            FileState::Empty if intent == Intent::Use => Err(empty(&self.path)),
            FileState::Empty => {
                self.set_wal()?;
                self.migrate()
            }
        }
    }

    /// A private in-memory database with the current schema, for tests.
    pub fn in_memory() -> Result<Sqlite> {
        let conn =
            Connection::open_in_memory().map_err(|err| error_for(Path::new(":memory:"), &err))?;
        let mut store = Sqlite {
            conn,
            path: PathBuf::from(":memory:"),
            acting: Acting::default(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Raw SQL, for tests that need to arrange what no command does.
    #[cfg(test)]
    pub(crate) fn execute_for_test(&self, sql: &str) {
        self.conn.execute_batch(sql).expect("test SQL");
    }

    /// A read-only connection that reads the file as it is: no locks, no -shm.
    fn connect_immutable(path: &Path) -> Result<Sqlite> {
        let Some(text) = path.to_str() else {
            return Sqlite::connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY);
        };
        let mut uri = String::from("file:");
        for c in text.chars() {
            match c {
                '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
                _ => uri.push(c),
            }
        }
        uri.push_str("?immutable=1");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        Sqlite::configured(
            Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX),
            path,
        )
    }

    fn connect(path: &Path, flags: OpenFlags) -> Result<Sqlite> {
        Sqlite::configured(
            Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX),
            path,
        )
    }

    fn configured(conn: rusqlite::Result<Connection>, path: &Path) -> Result<Sqlite> {
        let store = Sqlite {
            conn: conn.map_err(|err| error_for(path, &err))?,
            path: path.to_owned(),
            acting: Acting::default(),
        };
        store.configure()?;
        Ok(store)
    }

    /// Per-connection settings; none of them writes to the file.
    fn configure(&self) -> Result<()> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| self.conn.pragma_update(None, "foreign_keys", true))
            // Commits wait for the disk unless a write says otherwise (see insert_token).
            .and_then(|()| self.conn.pragma_update(None, "synchronous", "FULL"))
            // A revoked token's hash must not linger in free pages...
            .and_then(|()| self.conn.pragma_update(None, "secure_delete", true))
            // ...nor in old frames past the end of a restarted log.
            .and_then(|()| self.conn.pragma_update(None, "journal_size_limit", 0))
            // Sorting 100,000 tokens for a list spilled megabytes to a temporary file, whose
            // write-back then slowed whichever command came next.
            .and_then(|()| self.conn.pragma_update(None, "temp_store", "MEMORY"))
            // Every command is a short process, usually alone on the file. By default the last
            // connection to close copies the log into the database, syncs both and deletes the
            // -wal and -shm files, which the next process then creates again: a verify would
            // pay for that on every run (see benches/README.md). Instead the log stays, and a
            // write that leaves more than LOG_PAGES in it copies it back and truncates it
            // (`bound_log`), so the next process to open the file reads at most that much to
            // rebuild its index. SQLite's automatic checkpoint is off: with the log kept across
            // processes it copied the log back but never restarted it, and the benchmark found
            // a log of 151 pages that every process read on opening. Set at once, so that a
            // connection dropped on an error (a file refused) does not checkpoint someone
            // else's log.
            .and_then(|()| {
                self.conn
                    .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                    .map(|_| ())
            })
            .and_then(|()| self.conn.pragma_update(None, "wal_autocheckpoint", 0))
            // A plan that does not depend on the values bound. Otherwise SQLite marks a
            // statement whose planning looked at a bound value (verify's lookup, through its
            // join) to be prepared again whenever another value is bound: serve parsed and
            // planned its lookup at every request, with the cache's statement in hand
            // (benches/README.md, finding 26). autheona keeps no statistics that would steer a
            // plan by values either.
            .and_then(|()| {
                self.conn
                    .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
                    .map(|_| ())
            })
            .map_err(|err| self.error(&err))
    }

    /// Reads the header fields that tell whose file this is, refusing anything not ours.
    fn file_state(&self) -> Result<FileState> {
        let header = header(&self.conn).map_err(|err| self.error(&err))?;
        classify(&self.path, header)
    }

    fn set_wal(&self) -> Result<()> {
        // Processes initialising one empty file together can deadlock on the lock upgrade this
        // needs, and SQLite then answers busy at once rather than waiting: try again.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mode = loop {
            match self
                .conn
                .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get::<_, String>(0))
            {
                Ok(mode) => break mode,
                Err(err) if is_busy(&err) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(err) => return Err(self.error(&err)),
            }
        };
        if mode.eq_ignore_ascii_case("wal") {
            Ok(())
        } else {
            Err(StoreError::new(
                Kind::Other,
                format!(
                    "database {}: cannot use write-ahead logging (journal mode stays {mode})",
                    self.path.display()
                ),
            ))
        }
    }

    /// Brings the schema up to [`SCHEMA_VERSION`]. The version is read again inside the
    /// write transaction, so processes racing to open a fresh file each apply a step once.
    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let fail = |err: rusqlite::Error| error_for(&path, &err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let header = header(&tx).map_err(fail)?;
        let version = header.version;
        let from = match classify(&path, header)? {
            FileState::Current => return Ok(()),
            FileState::Empty => 0,
            FileState::Older => version,
        };
        for (step, sql) in schema::MIGRATIONS.iter().enumerate().skip(from as usize) {
            tx.execute_batch(sql).map_err(fail)?;
            tx.pragma_update(None, "user_version", step as i32 + 1)
                .map_err(fail)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    fn error(&self, err: &rusqlite::Error) -> StoreError {
        error_for(&self.path, err)
    }
}

/// A directory, a FIFO or a device is no database (and a FIFO or a device would block or
/// never end).
fn refuse_non_file(path: &Path) -> Result<()> {
    let what = if path.is_dir() {
        "a directory"
    } else if !path.is_file() {
        "not a regular file"
    } else {
        return Ok(());
    };
    Err(StoreError::new(
        Kind::NotAFile,
        format!("{} is {what}, not an autheona database", path.display()),
    ))
}

/// Settles from the file's first bytes, or a read-only look, that it is ours, or empty and
/// allowed to be initialised; refuses anything else before anything is written.
fn settle_ownership(path: &Path, intent: Intent) -> Result<()> {
    match sniff(path)? {
        Sniff::Ours => Ok(()),
        Sniff::Empty if intent == Intent::Use => Err(empty(path)),
        Sniff::Empty => Ok(()),
        Sniff::Unsure => {
            let probe = Sqlite::connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            match probe.file_state()? {
                FileState::Empty if intent == Intent::Use => Err(empty(path)),
                _ => Ok(()),
            }
        }
    }
}

fn cannot_reach(path: &Path, err: std::io::Error) -> StoreError {
    StoreError::new(
        io_kind(&err),
        format!("cannot reach database {}: {err}", path.display()),
    )
    .caused_by(err)
}

fn empty(path: &Path) -> StoreError {
    StoreError::new(
        Kind::Uninitialised,
        format!("{} is empty, not an autheona database", path.display()),
    )
}

/// SQLite gives new -wal and -shm files the database file's mode: a database made read-only
/// (0400) would get read-only ones, which stay so after write permission returns. Creates
/// those missing, 0600, first; best effort (a read-only directory allows none).
fn create_private(database: &Path, sidecars: &[PathBuf]) {
    let mut created = false;
    for file in sidecars {
        created |= OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
            .is_ok();
    }
    if created {
        let dir = database
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let _ = sync_dir(dir);
    }
}

/// SQLite gives an empty -wal or -shm file the database file's mode when it opens it, so a
/// read-only spell of the database (0400) would outlast itself in them: puts back 0600 on
/// those this user owns.
fn keep_private(sidecars: &[PathBuf]) {
    for file in sidecars {
        if let Ok(meta) = std::fs::metadata(file)
            // SAFETY: geteuid has no preconditions and cannot fail.
            && meta.uid() == unsafe { libc::geteuid() }
            && meta.mode() & 0o777 != 0o600
        {
            let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// What kind of store error an I/O error on the way to the database is: a full disk, a
/// place this user may not write, or something else (with no advice to give).
fn io_kind(err: &std::io::Error) -> Kind {
    match err.kind() {
        IoErrorKind::StorageFull => Kind::DiskFull,
        IoErrorKind::PermissionDenied | IoErrorKind::ReadOnlyFilesystem => Kind::Unreachable,
        _ => Kind::Other,
    }
}

/// A symbolic link whose target does not exist is neither a database nor a place to make
/// one: say so, rather than "no database" or "not a regular file".
fn refuse_dangling_link(path: &Path) -> Result<()> {
    if path.is_symlink() && !path.exists() {
        let target = std::fs::read_link(path).unwrap_or_default();
        return Err(StoreError::new(
            Kind::DanglingLink,
            format!(
                "{} is a dangling symbolic link: its target {} does not exist",
                path.display(),
                target.display()
            ),
        ));
    }
    Ok(())
}

/// Builds a complete, empty database beside `path` and moves it into place without replacing
/// anything, so that no process ever sees a half-made file there; when several race, the first
/// wins and the others open that one.
///
/// The file is moved only once it is whole on its own: migrated, its log copied in and gone,
/// and synced, every step checked. On any failure (a full disk, say) nothing is left behind:
/// neither the scratch file nor a log or index beside it.
fn build_fresh(path: &Path) -> Result<()> {
    let cannot = |err: std::io::Error| {
        let kind = io_kind(&err);
        StoreError::new(
            kind,
            format!("cannot create database {}: {err}", path.display()),
        )
        .caused_by(err)
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Mode 0600, before SQLite opens it, so that its -wal and -shm files follow suit.
    let scratch = tempfile::Builder::new()
        .prefix(".autheona-new-")
        .tempfile_in(dir)
        .map_err(cannot)?;
    let sidecars = Sidecars(scratch.path().to_owned());
    // Errors name the database being created, not the scratch file.
    let conn = Connection::open_with_flags(
        scratch.path(),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    );
    let mut store = Sqlite::configured(conn, path)?;
    // No other process knows the file: an exclusive lock keeps the log's index in memory, so
    // no -shm file is made.
    store
        .conn
        .pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(|err| store.error(&err))?;
    store.set_wal()?;
    store.migrate()?;
    store.checkpoint_all()?;
    store
        .conn
        .close()
        .map_err(|(_, err)| error_for(path, &err))?;
    sidecars.remove().map_err(cannot)?;
    scratch.as_file().sync_all().map_err(cannot)?;
    refuse_without_headroom(dir).map_err(cannot)?;
    match scratch.persist_noclobber(path) {
        Ok(_) => sync_dir(dir).map_err(cannot),
        // Another process got there first; its file is as good as ours, which is dropped.
        Err(err) if err.error.kind() == IoErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(cannot(err.error)),
    }
}

/// Free space a new database needs beside it for its first write: the -shm index SQLite makes
/// on opening (32 KiB) and the first transaction's pages in the log (a project and its event:
/// 6 pages of 4 KiB and their headers). With less, the database would be made and its first
/// project not: it is not made.
const HEADROOM: u64 = 64 * 1024;

/// Fails with "no space left" when the disk holding `dir` has less than [`HEADROOM`] free.
fn refuse_without_headroom(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: a zeroed statvfs is a valid value for statvfs(3) to fill in.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    if unsafe { libc::statvfs(dir.as_ptr(), &mut stats) } != 0 {
        // Cannot tell: the first write will say.
        return Ok(());
    }
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    if free < HEADROOM {
        return Err(std::io::Error::from(IoErrorKind::StorageFull));
    }
    Ok(())
}

/// The -wal and -shm files beside a scratch database, removed when this is dropped unless
/// [`Sidecars::remove`] already did.
struct Sidecars(PathBuf);

impl Sidecars {
    /// Removes both, and fails if one cannot be removed (the database would not be whole
    /// without its log).
    fn remove(self) -> std::io::Result<()> {
        for suffix in ["-wal", "-shm"] {
            match std::fs::remove_file(sidecar(&self.0, suffix)) {
                Err(err) if err.kind() != IoErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for Sidecars {
    fn drop(&mut self) {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(sidecar(&self.0, suffix));
        }
    }
}

/// A new or renamed file's name is durable once its directory is synced.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir).and_then(|dir| dir.sync_all())
}

/// What the first bytes of a file say about it, without opening it as a database.
enum Sniff {
    Ours,
    Empty,
    /// SQLite without our application id in the main file: maybe foreign, maybe ours with the
    /// header still in the log. Only SQLite can tell, read-only.
    Unsure,
}

/// Reads the 100-byte SQLite header: magic string, `user_version` at 60 and `application_id`
/// at 68, both big-endian.
fn sniff(path: &Path) -> Result<Sniff> {
    let shown = path.display();
    let mut header = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|file| file.take(100).read_to_end(&mut header))
        .map_err(|err| {
            StoreError::new(
                Kind::Unreadable,
                format!("cannot read database {shown}: {err}"),
            )
            .caused_by(err)
        })?;
    if header.is_empty() {
        // Empty, unless everything is still in a log, which only SQLite can read.
        let logged = std::fs::metadata(sidecar(path, "-wal")).is_ok_and(|m| m.len() > 0);
        return Ok(if logged { Sniff::Unsure } else { Sniff::Empty });
    }
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(StoreError::new(
            Kind::NotOurs,
            format!("{shown} is not an autheona database (not an SQLite file)"),
        ));
    }
    let application_id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    let version = i32::from_be_bytes([header[60], header[61], header[62], header[63]]);
    match application_id {
        // Refused here, before anything is created beside it.
        APPLICATION_ID if version > SCHEMA_VERSION => Err(newer(path, version)),
        APPLICATION_ID => Ok(Sniff::Ours),
        0 => Ok(Sniff::Unsure),
        _ => Err(foreign(path)),
    }
}

fn newer(path: &Path, version: i32) -> StoreError {
    StoreError::new(
        Kind::Newer,
        format!(
            "database {} was written by a newer autheona (schema version {version}; this one knows {SCHEMA_VERSION})",
            path.display()
        ),
    )
}

fn foreign(path: &Path) -> StoreError {
    StoreError::new(
        Kind::NotOurs,
        format!(
            "{} is an SQLite database, but not an autheona one",
            path.display()
        ),
    )
}

fn tampered(path: &Path, difference: &str) -> StoreError {
    StoreError::new(
        Kind::Tampered,
        format!(
            "{} is not an autheona database as autheona made it: its schema has {difference}",
            path.display()
        ),
    )
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(failure, _)
        if matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// The file the database really is: SQLite follows a symbolic link, and the -wal and -shm
/// files live beside the real file.
fn real_path(path: &Path) -> PathBuf {
    if path.is_symlink() {
        path.canonicalize().unwrap_or_else(|_| path.to_owned())
    } else {
        path.to_owned()
    }
}

/// The file beside the database with `suffix` appended to its name (`-wal`, `-shm`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What tells whose file this is, read in one statement so that it is one snapshot: a process
/// initialising the file meanwhile is seen either wholly or not at all.
#[derive(Debug)]
struct Header {
    application_id: i32,
    version: i32,
    /// The whole schema, settled (see [`schema::settle`]); empty when there is none.
    objects: Vec<schema::Object>,
}

fn header(conn: &Connection) -> rusqlite::Result<Header> {
    // The header's two numbers in a row of their own (its type NULL), then every object.
    let mut statement = conn.prepare_cached(
        "SELECT NULL, NULL, NULL, NULL,
                (SELECT application_id FROM pragma_application_id),
                (SELECT user_version FROM pragma_user_version)
         UNION ALL
         SELECT type, name, tbl_name, coalesce(sql, ''), NULL, NULL FROM sqlite_schema",
    )?;
    let mut rows = statement.query([])?;
    let mut header = Header {
        application_id: 0,
        version: 0,
        objects: Vec::new(),
    };
    while let Some(row) = rows.next()? {
        match row.get::<_, Option<String>>(0)? {
            None => {
                header.application_id = row.get(4)?;
                header.version = row.get(5)?;
            }
            Some(kind) => header.objects.push(schema::Object {
                kind,
                name: row.get(1)?,
                table: row.get(2)?,
                sql: row.get(3)?,
            }),
        }
    }
    schema::settle(&mut header.objects);
    Ok(header)
}

/// Tells an autheona file (current or older), an empty one, and anything else (refused). A
/// file of ours must hold exactly the schema its version's migrations make: anything else
/// (planted triggers or views, a dropped trigger, a changed table) is refused.
fn classify(path: &Path, header: Header) -> Result<FileState> {
    let Header {
        application_id,
        version,
        objects,
    } = header;
    if application_id == APPLICATION_ID {
        let state = match version.cmp(&SCHEMA_VERSION) {
            std::cmp::Ordering::Equal => FileState::Current,
            std::cmp::Ordering::Less => FileState::Older,
            std::cmp::Ordering::Greater => return Err(newer(path, version)),
        };
        if !schema::is_expected(version, &schema::render(&objects)) {
            return Err(tampered(path, &schema::difference(&objects, version)));
        }
        return Ok(state);
    }
    if application_id == 0 && version == 0 && objects.is_empty() {
        Ok(FileState::Empty)
    } else {
        Err(foreign(path))
    }
}

/// Turns an SQLite error into one line naming the database, keeping it as the cause.
fn error_for(path: &Path, err: &rusqlite::Error) -> StoreError {
    let path = path.display();
    let code = match err {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    };
    let (kind, message) = match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
            Kind::Busy,
            format!(
                "database {path} is busy: another process held it for more than {} s",
                BUSY_TIMEOUT.as_secs()
            ),
        ),
        Some(ErrorCode::NotADatabase) => (
            Kind::NotOurs,
            format!("{path} is not an autheona database (not an SQLite file)"),
        ),
        Some(ErrorCode::DatabaseCorrupt) => (Kind::Corrupt, format!("database {path} is corrupt")),
        Some(ErrorCode::ReadOnly) => (Kind::ReadOnly, format!("database {path} is read-only")),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            (Kind::Unreachable, format!("cannot open database {path}"))
        }
        Some(ErrorCode::DiskFull) => (
            Kind::DiskFull,
            format!("cannot write database {path}: the disk is full"),
        ),
        Some(ErrorCode::SystemIoFailure) => (
            Kind::Io,
            format!("cannot read or write database {path}: input/output error"),
        ),
        _ => (Kind::Other, format!("database {path}: {}", one_line(err))),
    };
    StoreError::new(kind, message).caused_by(Unprinted(one_line(err)))
}

/// An engine's message kept as a cause, on one line, without the SQL it came from.
#[derive(Debug)]
struct Unprinted(String);

impl std::fmt::Display for Unprinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unprinted {}

/// SQLite's own words for `err`, on one line: never the SQL statement it came from (a batch
/// can be kilobytes long), and escaped, since a message may quote text from the file.
fn one_line(err: &rusqlite::Error) -> String {
    let words = match err {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(failure, Some(msg)) => {
            if msg.is_empty() {
                failure.to_string()
            } else {
                msg.clone()
            }
        }
        other => other.to_string(),
    };
    let flat = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut shown: String = flat.chars().take(200).collect();
    if shown.len() < flat.len() {
        shown.push_str("...");
    }
    crate::text::escape_unsafe(&crate::text::redact_tokens(&shown)).into_owned()
}

#[cfg(test)]
mod tests;
