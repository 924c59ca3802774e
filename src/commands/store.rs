//! `autheona store copy`.

use std::ffi::OsStr;

use serde::Serialize;

use super::{Outcome, warn_if_exposed};
use crate::cli::{StoreCommand, StoreCopyArgs};
use crate::environment;
use crate::error::{Error, Result, Topic};
use crate::ops::store as copying;
use crate::store::{self, Location, StoreErrorKind};
use crate::ui;

pub fn run(command: StoreCommand) -> Result<Outcome> {
    match command {
        StoreCommand::Copy(args) => copy(&args),
    }
}

/// `--db` with `store copy`, which names both of its stores itself.
pub fn db_given() -> Error {
    Error::usage("store copy names its stores as SOURCE and DESTINATION; --db is not used")
        .with_hint("usage: autheona store copy SOURCE DESTINATION")
}

#[derive(Serialize)]
struct CopiedJson {
    projects: u64,
    tokens: u64,
    /// Of the source's audit log.
    events: u64,
}

/// Opens SOURCE as it is and DESTINATION if it is empty (creating it if there is none), then
/// one `ops` call copies; the one status line says what went where.
///
/// The clock only dates the copy's event in the destination's log (nothing is judged by it),
/// so neither store's is checked against it.
fn copy(args: &StoreCopyArgs) -> Result<Outcome> {
    // Both before anything else: a password must not wait on the other argument's errors.
    environment::refuse_password_in_argument("SOURCE", &args.source)?;
    environment::refuse_password_in_argument("DESTINATION", &args.destination)?;
    environment::refuse_empty("SOURCE", Some(&args.source))?;
    environment::refuse_empty("DESTINATION", Some(&args.destination))?;
    let from = location(&args.source)?;
    let to = location(&args.destination)?;
    let source = store::open_as_is(&from)
        .map_err(|err| advised(Error::from(err), Side::Source))?
        .ok_or_else(|| Error::environment(format!("no database at {from} to copy from")))?;
    warn_if_exposed(&*source);
    let mut destination = store::create_if_empty(&to)
        .map_err(|err| advised(Error::from(err), Side::Destination))?
        .map_err(|held| copying::not_empty(&to, held))?;
    warn_if_exposed(&*destination);
    destination.act_as(environment::actor::who);
    let now = environment::clock::now()?;
    let copied = copying::copy(&*source, &from, &*destination, &to, now)?;
    ui::status(&format!(
        "Copied {}, {} and {} from {from} to {to}.",
        copying::count(copied.projects, "project"),
        copying::count(copied.tokens, "token"),
        copying::count(copied.events, "event")
    ));
    if args.json {
        ui::print_json(&CopiedJson {
            projects: copied.projects,
            tokens: copied.tokens,
            events: copied.events,
        })?;
    }
    Ok(Outcome::Success)
}

/// Where the argument says the store is, warning about what finding it showed.
fn location(given: &OsStr) -> Result<Location> {
    let location = environment::db_location(Some(given))?;
    if let Some(warning) = location.warning() {
        ui::warning(warning);
    }
    Ok(location)
}

#[derive(Clone, Copy)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Source => "SOURCE",
            Side::Destination => "DESTINATION",
        }
    }
}

/// A store error with advice in this command's words where the usual advice would name
/// `--db`, which `store copy` does not use; the rest keeps its usual advice.
fn advised(err: Error, side: Side) -> Error {
    let Some(Topic::Store { kind, on_server }) = err.topic() else {
        return err;
    };
    let name = side.name();
    let hint = match (kind, on_server) {
        (StoreErrorKind::NotOurs, false) => format!("name another {name}; it was left unchanged"),
        (StoreErrorKind::NotOurs, true) => {
            format!("name another database in the URL of {name}; it was left unchanged")
        }
        (StoreErrorKind::NotAFile, _) => format!("name a database file as {name}"),
        (StoreErrorKind::DanglingLink, _) => format!("fix the link, or name another {name}"),
        (StoreErrorKind::Uninitialised, _) if matches!(side, Side::Source) => {
            "there is nothing in it to copy".to_owned()
        }
        (StoreErrorKind::LoginRefused, _) => {
            "check the user, and the password in PGPASSWORD or ~/.pgpass".to_owned()
        }
        _ => return err,
    };
    err.with_hint(hint)
}
