//! The store's own errors: what went wrong, in the store's words, with the error underneath
//! kept as the source. What a user should do about it, in the words of the command line
//! (its flags and commands), is added by `commands`, which knows them.

use std::fmt;
use std::sync::Arc;

/// What kind of failure a store error is; `commands` picks its advice by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Not an autheona database: not SQLite at all, or another application's.
    NotOurs,
    /// An autheona database whose schema is not the one autheona made (planted SQL).
    Tampered,
    /// Written by a newer autheona.
    Newer,
    /// A database with nothing in it yet; only creating a project initialises one.
    Uninitialised,
    /// The location is a directory, a device, a FIFO: not a database file.
    NotAFile,
    /// A symbolic link to nothing.
    DanglingLink,
    /// Another process held the database past the busy timeout.
    Busy,
    Corrupt,
    ReadOnly,
    /// It exists but cannot be read (permissions).
    Unreadable,
    /// It cannot be opened or reached (missing directory, permissions, a server down).
    Unreachable,
    DiskFull,
    /// Reading or writing failed underneath (an I/O error).
    Io,
    /// The server refused the login (the password, or its absence).
    LoginRefused,
    /// The server's access rules (`pg_hba.conf`) admit no such connection.
    NotAdmitted,
    /// The server has no database of that name.
    NoSuchDatabase,
    /// The server cannot be reached, or does not accept connections now.
    ServerDown,
    /// The connection to the server was lost mid-command.
    ConnectionLost,
    /// TLS could not be set up, or the server's certificate is not the one required.
    Tls,
    /// The database user may not do this (create the schema, write a table).
    Permission,
    /// Anything else the engine reported.
    Other,
}

/// A store error: one line of what happened, naming the database, and what caused it. A clone
/// tells another caller of the same failure (each request a failed statement held).
#[derive(Debug, Clone)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    /// About a database on a server rather than a local file (the advice differs).
    on_server: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            on_server: false,
            source: None,
        }
    }

    /// Marks the error as about a database on a server.
    pub fn on_server(mut self) -> Self {
        self.on_server = true;
        self
    }

    pub fn is_on_server(&self) -> bool {
        self.on_server
    }

    /// Keeps `source` as the cause.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
