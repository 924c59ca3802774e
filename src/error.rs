//! Error kinds, their exit codes, and the one-line report a user sees.

use std::fmt;

use crate::store::{StoreError, StoreErrorKind};

/// What kind of failure this is; each kind has a fixed exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was refused or its subject not found: exit 1.
    Refused,
    /// A bad flag or value, or a required value missing with no terminal to ask: exit 2.
    Usage,
    /// The environment is wrong: database missing, not ours, corrupt, locked, I/O: exit 3.
    Environment,
    /// Stdout was closed by its reader: ends quietly.
    BrokenPipe,
    /// Ctrl-C at a prompt: ends quietly with the shell's code for SIGINT.
    Interrupted,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::BrokenPipe => 0,
            ErrorKind::Refused => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Environment => 3,
            ErrorKind::Interrupted => 130,
        }
    }
}

/// What an error is about, for the layer that words the advice: `ops` and `store` say what
/// happened; `commands` says what to do, in the command line's words (`--db`, `autheona
/// project create`), which only it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// The store failed, or refused the file or database; `on_server` when it is a
    /// database on a server rather than a local file.
    Store {
        kind: StoreErrorKind,
        on_server: bool,
    },
    /// There is no database where one is needed.
    NoDatabase,
    /// No project of that name.
    NoProject,
    /// The project name is taken.
    ProjectNameTaken,
    /// What was given is not a token id.
    NotATokenId,
    /// No token with that id (perhaps revoked).
    NoToken,
    /// This token exists but nobody saw it (its removal failed): it should be revoked.
    UnseenToken(String),
    /// This token was shown but may not survive a power cut: revoke it, make another.
    UnsyncedToken(String),
    /// Token `id`, of `project`, was already rotated with a grace period, into token
    /// `replaced_by`.
    AlreadyRotated {
        id: String,
        project: String,
        replaced_by: String,
    },
    /// A grace period was asked for an expired token.
    GraceForExpired,
    /// Token `id` was rotated and its replacement shown, but it could not be revoked (or its
    /// end scheduled): it still works.
    NotRetired(String),
}

/// An error with its kind, a one-line message and an optional hint on what to do.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    // Boxed: an error is returned on every path, and most have no topic.
    topic: Option<Box<Topic>>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            topic: None,
            source: None,
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Refused, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn environment(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Environment, message)
    }

    /// The database a command needs does not exist yet.
    pub fn no_database(location: &crate::store::Location) -> Self {
        Error::environment(format!("no database at {location}")).about(Topic::NoDatabase)
    }

    /// Writing command output failed; a closed pipe is not worth a message.
    pub fn output(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            Error::new(ErrorKind::BrokenPipe, "stdout closed")
        } else {
            Error::environment(format!("cannot write to stdout: {err}"))
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Keeps `source` as the error underneath this one.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Says what the error is about, for `commands` to advise on.
    pub fn about(mut self, topic: Topic) -> Self {
        self.topic = Some(Box::new(topic));
        self
    }

    pub fn topic(&self) -> Option<&Topic> {
        self.topic.as_deref()
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// A store error as the user sees it: an environment error (exit 3) in the store's words, the
/// store error kept as its source.
impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        Error::environment(err.message())
            .about(Topic::Store {
                kind: err.kind(),
                on_server: err.is_on_server(),
            })
            .caused_by(err)
    }
}
