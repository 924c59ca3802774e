//! What the process is given by its environment, read in one place for `commands` and for
//! shell completion (which runs before any command): where the database is, defaults from
//! variables, the clock and the time zone. `ops` and `store` never read any of it.

pub mod clock;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An environment variable that gives a default; set but empty counts as unset, as a shell
/// script's `AUTHEONA_PROJECT=$maybe_empty` means. (`AUTHEONA_TOKEN` is not a default but the
/// input itself: empty, it is an empty token.)
pub fn default_from_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

/// `AUTHEONA_DB`.
pub fn db_from_env() -> Option<PathBuf> {
    default_from_env("AUTHEONA_DB").map(PathBuf::from)
}

/// The database path: the one given (`--db`, else `AUTHEONA_DB`), else the platform data
/// directory.
pub fn db_path(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_owned()),
        None => directories::ProjectDirs::from("", "", "autheona")
            .map(|dirs| dirs.data_dir().join("autheona.db"))
            .ok_or_else(|| {
                Error::environment("cannot find a home directory for the database")
                    .with_hint("pass a file path with --db or AUTHEONA_DB")
            }),
    }
}
