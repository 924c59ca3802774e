//! Live values for shell completion: project names and token ids from the user's database.
//!
//! Completion runs on every TAB, so it stays silent and changes nothing: the database is only
//! read (no file is created, nothing migrated), nothing is printed but candidates, and any
//! problem means no candidates. It never sees a secret.
//!
//! A shell puts the candidate it picks on the command line as it is (bash without any quoting),
//! and whoever can write the database file can put any text in a name or an id: `demo;rm -rf ~`,
//! an escape sequence, a line break. So only names `project create` accepts and ids of the token
//! format are offered; anything else in the file is skipped. Hints are shown, never run, and
//! have their unsafe characters escaped.

use std::ffi::OsString;

use clap_complete::engine::CompletionCandidate;

use crate::environment;
use crate::ops;
use crate::store::{self, Store};
use crate::text;
use crate::token::TokenId;

/// The environment variable that switches the binary into completion mode.
pub const COMPLETE_VAR: &str = "COMPLETE";

/// `--db` as typed on the line being completed, else `AUTHEONA_DB`.
fn given() -> Option<OsString> {
    db_from_args(std::env::args_os()).or_else(environment::db_from_env)
}

/// Whether the line being completed names a PostgreSQL store: then the executable that holds
/// its client must answer (`process::main` hands the request to it before anything else).
pub fn on_postgres() -> bool {
    given().is_some_and(|db| store::names_postgres(&db))
}

/// The store the line being completed names ([`given`]), else the default.
fn store() -> Option<Box<dyn Store>> {
    let given = given();
    // A password on the command line is refused, not used.
    environment::refuse_password_in_argv(given.as_deref()).ok()?;
    let location = environment::db_location(given.as_deref()).ok()?;
    store::open_read_only(&location).ok().flatten()
}

/// The last `--db PATH` or `--db=PATH` among the words being completed.
fn db_from_args(args: impl IntoIterator<Item = OsString>) -> Option<OsString> {
    let mut found = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--db" {
            found = args.next();
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--db=")) {
            found = Some(OsString::from(value));
        }
    }
    found
}

/// Project names, for `--project` and `project delete`: those that are valid names.
pub fn project_names() -> Vec<CompletionCandidate> {
    let Some(store) = store() else {
        return Vec::new();
    };
    // The clock only counts tokens here, which completion does not show: a wrong one is fine.
    let now = environment::clock::now().unwrap_or_default();
    ops::project::list(&*store, now)
        .map(|projects| {
            projects
                .into_iter()
                .filter(|p| ops::project::validate_name(&p.name).is_ok())
                .map(|p| CompletionCandidate::new(p.name))
                .collect()
        })
        .unwrap_or_default()
}

/// Token ids that are valid ids, with their project and description as hints, for
/// `token revoke` and `token rotate`.
pub fn token_ids() -> Vec<CompletionCandidate> {
    let Some(store) = store() else {
        return Vec::new();
    };
    // The clock is read here because completion runs outside `commands::run`. A clock that
    // is wrong offers nothing rather than an error in the middle of the command line.
    let Ok(now) = environment::clock::now() else {
        return Vec::new();
    };
    ops::token::list(&*store, None, &ops::token::Filter::default(), now)
        .map(|tokens| {
            tokens
                .into_iter()
                .filter(|t| TokenId::parse(&t.id).is_some())
                .map(|t| {
                    // The token's project may be a planted name: it is shown escaped, too.
                    let project = text::escape_unsafe(&t.project);
                    let hint = match &t.description {
                        Some(d) => format!("{project} · {}", text::escape_unsafe(d)),
                        None => project.into_owned(),
                    };
                    CompletionCandidate::new(t.id).help(Some(hint.into()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn db_is_found_in_either_form_last_wins() {
        assert_eq!(db_from_args(args(&["autheona", "token", "list"])), None);
        assert_eq!(
            db_from_args(args(&["autheona", "--db", "a.db", "token", "--db=b.db"])),
            Some(OsString::from("b.db"))
        );
        assert_eq!(
            db_from_args(args(&["autheona", "--db", "a.db", "token"])),
            Some(OsString::from("a.db"))
        );
        assert_eq!(db_from_args(args(&["autheona", "--db"])), None);
    }
}
