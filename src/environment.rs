//! What the process is given by its environment, read in one place for `commands` and for
//! shell completion (which runs before any command): where the database is, defaults from
//! variables, the clock and the time zone. `ops` and `store` never read any of it.

pub mod actor;
pub mod clock;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::store::{self, Location, Surroundings};

/// An environment variable that gives a default; set but empty counts as unset, as a shell
/// script's `AUTHEONA_PROJECT=$maybe_empty` means. (`AUTHEONA_TOKEN` is not a default but the
/// input itself: empty, it is an empty token.)
pub fn default_from_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

/// `AUTHEONA_DB`.
pub fn db_from_env() -> Option<OsString> {
    default_from_env("AUTHEONA_DB")
}

/// Where the store is: the location given (`--db`, else `AUTHEONA_DB`), else the file in the
/// platform data directory. A `postgres://` URL is completed from the `PG*` variables, the
/// home directory and the user name, as libpq does; a URL that cannot be read is an error of
/// one line that does not repeat it (it may hold a password).
pub fn db_location(given: Option<&OsStr>) -> Result<Location> {
    match given {
        // A path: nothing to complete. Only a URL needs the home directory and the user name,
        // and looking the user name up (NSS: /etc/nsswitch.conf, /etc/passwd) cost every
        // command on an SQLite file 20 system calls and 4% of verify (benches/README.md,
        // finding 18).
        Some(given) if !store::names_postgres(given) => match url_scheme(given) {
            Some(scheme) => Err(not_a_store_url(scheme)),
            None => Ok(Location::File(PathBuf::from(given))),
        },
        Some(given) => {
            let home = std::env::home_dir();
            let around = Surroundings {
                var: &|name| std::env::var(name).ok(),
                home: home.as_deref(),
                os_user: &|| whoami::username().ok(),
            };
            Location::parse(given, &around).map_err(|why| {
                Error::usage(format!("invalid database URL: {why}"))
                    .with_hint("the form is postgres://[user@]host[:port]/database[?param=value]")
            })
        }
        None => directories::ProjectDirs::from("", "", "autheona")
            .map(|dirs| Location::File(dirs.data_dir().join("autheona.db")))
            .ok_or_else(|| {
                Error::environment("cannot find a home directory for the database")
                    .with_hint("pass a file path with --db or AUTHEONA_DB")
            }),
    }
}

/// Refuses a store location given empty (`--db "$UNSET"`): taken as a path it names no file,
/// and falling back to `AUTHEONA_DB` or the default would use a store the script did not name.
pub fn refuse_empty(name: &str, given: Option<&OsStr>) -> Result<()> {
    if given.is_some_and(OsStr::is_empty) {
        return Err(Error::usage(format!(
            "{name} is empty: give an SQLite file's path or a postgres:// URL"
        )));
    }
    Ok(())
}

/// Refuses a database URL holding a password on the command line, where every user of the
/// machine can read it (`ps`, `/proc/PID/cmdline`).
pub fn refuse_password_in_argv(db: Option<&OsStr>) -> Result<()> {
    if db.is_some_and(holds_password) {
        return Err(Error::usage(
            "--db must not hold a password, since every user of this machine can read the \
             command line: set PGPASSWORD, use ~/.pgpass, or put the URL in AUTHEONA_DB",
        ));
    }
    Ok(())
}

/// Refuses, as [`refuse_password_in_argv`] refuses `--db`, a database URL holding a password
/// given as the argument `name` (`SOURCE`, `DESTINATION`); the message never repeats it.
pub fn refuse_password_in_argument(name: &str, given: &OsStr) -> Result<()> {
    if holds_password(given) {
        return Err(Error::usage(format!(
            "{name} must not hold a password, since every user of this machine can read the \
             command line: set PGPASSWORD, or use ~/.pgpass (or the file PGPASSFILE names)"
        )));
    }
    Ok(())
}

fn holds_password(given: &OsStr) -> bool {
    url_scheme(given).is_some() && given.to_str().is_some_and(store::has_password)
}

/// The scheme of a location written as a URL (`SCHEME:/...`, RFC 3986's `ALPHA *( ALPHA /
/// DIGIT / "+" / "-" / "." )`), `postgres://` included: `Postgres://...` or `postgres:/...`,
/// taken for a file path, would make directories named after its user and password.
fn url_scheme(given: &OsStr) -> Option<&str> {
    let (scheme, _) = given.to_str()?.split_once(":/")?;
    let mut chars = scheme.chars();
    let shaped = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    shaped.then_some(scheme)
}

/// A location shaped like a URL that names no store autheona knows. Only its scheme is
/// repeated: the rest may hold a password.
fn not_a_store_url(scheme: &str) -> Error {
    let postgres = ["postgres", "postgresql"]
        .iter()
        .any(|known| scheme.eq_ignore_ascii_case(known));
    let what = if postgres {
        format!(
            "'{scheme}:/...' is not a database URL autheona reads: write postgres:// or \
             postgresql://, in lower case"
        )
    } else {
        format!("'{scheme}:/...' looks like a URL, and autheona reads only postgres:// URLs")
    };
    Error::usage(what).with_hint("a file whose path begins so is written with ./ before it")
}
