//! Error kinds, their exit codes, and the one-line report a user sees.

use std::fmt;
use std::path::Path;

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

/// An error with its kind, a one-line message and an optional hint on what to do.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
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
    pub fn no_database(path: &Path) -> Self {
        Error::environment(format!("no database at {}", path.display()))
            .with_hint("create a project first: autheona project create NAME")
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

impl std::error::Error for Error {}
