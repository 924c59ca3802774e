//! One module per noun: each handler turns arguments into one `ops` call and renders the result.

mod advice;
pub(crate) mod beside;
mod completions;
mod log;
mod project;
mod scan;
mod serve;
mod store;
mod token;
mod verify;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;
use std::sync::mpsc::Receiver;

use chrono::{DateTime, Utc};

use crate::cli::{Cli, Command};
use crate::environment;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Location, Store, StoreErrorKind, Untold};
use crate::ui;

pub use beside::EXECUTABLE as SERVER_EXECUTABLE;
pub use serve::{Server, Start};

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// `verify` said the token is not valid.
    NotValid,
    /// `scan` found tokens.
    TokensFound,
    /// `scan` could not read some paths; each was reported as it was found, and the rest
    /// scanned. Exits as an environment error does.
    Incomplete,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::NotValid | Outcome::TokensFound => 1,
            Outcome::Incomplete => ErrorKind::Environment.exit_code(),
        }
    }
}

/// What every handler gets: where the database is, the time and the zone to show times in,
/// read once at start-up.
pub struct Context {
    db: Option<OsString>,
    now: DateTime<Utc>,
    zone: ui::time::Zone,
}

impl Context {
    /// Where the store is: `--db`, else `AUTHEONA_DB`, else the file in the platform data
    /// directory. Worked out only when a command needs it.
    fn location(&self) -> Result<Location> {
        let location = environment::db_location(self.db.as_deref())?;
        if let Some(warning) = location.warning() {
            ui::warning(warning);
        }
        Ok(location)
    }

    /// Opens the database, which must exist.
    fn open(&self) -> Result<Box<dyn Store>> {
        self.open_at(&self.location()?)
    }

    /// Opens the database at `location`, which must exist.
    fn open_at(&self, location: &Location) -> Result<Box<dyn Store>> {
        let store = crate::store::open(location)?.ok_or_else(|| Error::no_database(location))?;
        Ok(self.ready(store))
    }

    /// Opens the database if there is one (listing commands show nothing without it).
    fn open_if_exists(&self) -> Result<Option<Box<dyn Store>>> {
        let location = self.location()?;
        let store = crate::store::open(&location)?;
        if store.is_none() {
            ui::status(&format!(
                "hint: no database yet at {location}; {}",
                advice::CREATE_A_PROJECT_FIRST
            ));
        }
        Ok(store.map(|store| self.ready(store)))
    }

    /// Opens the database if there is one, with no hint when there is none: for a command
    /// that works without it. No home directory to find the default path in counts as none.
    fn open_quietly(&self) -> Result<Option<Box<dyn Store>>> {
        let Ok(location) = self.location() else {
            return Ok(None);
        };
        let store = crate::store::open(&location)?;
        Ok(store.map(|store| self.ready(store)))
    }

    /// The database given with --db or AUTHEONA_DB, if one was.
    fn db_named(&self) -> Option<&OsStr> {
        self.db.as_deref()
    }

    /// Opens the database, creating it if needed.
    fn create(&self) -> Result<Box<dyn Store>> {
        let store = crate::store::create(&self.location()?)?;
        Ok(self.ready(store))
    }

    /// A store just opened, checked, recording its changes as this user's on this host, and
    /// warning on stderr.
    fn ready(&self, mut store: Box<dyn Store>) -> Box<dyn Store> {
        self.check(&*store);
        store.act_as(environment::actor::who);
        store.warn_with(warn_untold);
        store
    }

    /// Warns about what the store just opened shows: a file others may read, a server whose
    /// clock is not this host's.
    fn check(&self, store: &dyn Store) {
        warn_if_exposed(store);
        if let Some(server) = store.server_time() {
            warn_if_clocks_differ(self.now.timestamp(), server);
        }
    }
}

/// Says that the running servers could not be told of a change, so the command waited for
/// their leases to end instead, and what to grant when that is why.
fn warn_untold(untold: &Untold) {
    let mut warning = format!(
        "the running `autheona serve`s could not be told of the change, so this waited {:.0} s \
         for their leases to end instead: {}",
        untold.waited.as_secs_f64(),
        untold.error.message()
    );
    if untold.error.kind() == StoreErrorKind::Permission {
        warning.push_str(
            "; as the schema's owner, grant the role SELECT, INSERT, UPDATE and DELETE on \
             autheona.servers, and USAGE and SELECT on the sequence autheona.changes",
        );
    }
    ui::warning(&warning);
}

/// Hosts sharing a store each judge expiry by their own clock, so they must agree on the time.
fn warn_if_clocks_differ(host: i64, server: i64) {
    if let Some(warning) = crate::ops::store::clocks_apart(host, server) {
        ui::warning(&warning);
    }
}

/// Warns, as ssh does for keys, when others may read or write the database file.
fn warn_if_exposed(store: &dyn Store) {
    let Some(path) = store.file() else {
        return;
    };
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            ui::warning(&format!(
                "database {} is accessible by other users (mode {:03o}); run: chmod 600 {}",
                path.display(),
                mode & 0o777,
                shell_quoted(&path.display().to_string())
            ));
        }
    }
}

/// `text` as one word for a POSIX shell: as it is when it holds nothing the shell treats
/// specially, else in single quotes (a quote inside written `'\''`).
fn shell_quoted(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs the command (`serve` as `server` says); an error comes back with the advice its topic
/// calls for.
pub fn run(cli: Cli, server: Server) -> Result<Outcome> {
    dispatch(cli, server).map_err(advice::advise)
}

/// A PostgreSQL server that stopped answering in the middle of a command (a hung PgBouncer
/// or proxy: TCP's own timeouts never fire while its kernel acknowledges): exit 3.
fn gave_up(server: &str, waited: std::time::Duration) {
    let err = Error::environment(format!(
        "PostgreSQL {server} did not answer for {} s: it, or a proxy in front of it, stopped \
         answering",
        waited.as_secs()
    ))
    .with_hint(
        "a change under way is made in full or not at all: look (token list, log) before \
         running the command again",
    );
    std::process::exit(i32::from(ui::report(&err)));
}

fn dispatch(cli: Cli, server: Server) -> Result<Outcome> {
    if !matches!(cli.command, Command::Serve(_)) {
        crate::store::give_up_waiting_with(gave_up);
    }
    environment::refuse_empty("--db", cli.db.as_deref())?;
    environment::refuse_password_in_argv(cli.db.as_deref())?;
    // The one command that names its stores itself.
    if let (Command::Store(_), Some(_)) = (&cli.command, &cli.db) {
        return Err(store::db_given());
    }
    let db = cli.db.or_else(environment::db_from_env);
    // The server, and a PostgreSQL store, are run by the executable that holds their code:
    // this process becomes that one now, before it has said or read anything.
    let elsewhere = match (&cli.command, server) {
        (Command::Serve(_), Server::Beside) => Some("run the server"),
        _ if !crate::store::postgres_linked() && on_postgres(&cli.command, db.as_deref()) => {
            Some("reach a PostgreSQL store")
        }
        _ => None,
    };
    if let Some(what) = elsewhere {
        return Err(beside::exec(what));
    }
    let (zone, warning) = environment::clock::zone(std::env::var_os("TZ").as_deref());
    if let Some(warning) = warning {
        ui::warning(&warning);
    }
    let ctx = Context {
        db,
        now: environment::clock::now()?,
        zone,
    };
    match cli.command {
        Command::Project(command) => project::run(&ctx, command.0),
        Command::Token(command) => token::run(&ctx, command.0),
        Command::Verify(args) => verify::run(&ctx, &args),
        Command::Scan(args) => scan::run(&ctx, &args),
        Command::Store(command) => store::run(command.0),
        Command::Log(args) => log::run(&ctx, &args),
        Command::Serve(args) => serve::run(&ctx, &args, server),
        Command::Completions(args) => completions::run(&args),
    }
}

/// Whether `command` works on a PostgreSQL store: `db` is one (`--db`, else `AUTHEONA_DB`),
/// or for `store copy`, its source or destination.
fn on_postgres(command: &Command, db: Option<&OsStr>) -> bool {
    use crate::store::names_postgres;
    match command {
        Command::Store(store) => match &**store {
            crate::cli::StoreCommand::Copy(args) => {
                names_postgres(&args.source) || names_postgres(&args.destination)
            }
        },
        Command::Completions(_) => false,
        _ => db.is_some_and(names_postgres),
    }
}

/// A visitor of listed rows that may fail; its first error stops the listing.
type Each<'a, R> = &'a mut dyn FnMut(R) -> Result<()>;

/// Rows on their way from a listing to the thread that writes them as JSON, in batches;
/// `Err` when the listing failed, so that the writer leaves its array unfinished.
struct Rows<R>(Mutex<Option<Receiver<Batch<R>>>>);

/// Rows, or word that the listing failed.
type Batch<R> = std::result::Result<Vec<R>, ()>;

impl<R: serde::Serialize> serde::Serialize for Rows<R> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let batches = self.0.lock().ok().and_then(|mut rows| rows.take());
        let mut seq = serializer.serialize_seq(None)?;
        for batch in batches.into_iter().flatten() {
            let Ok(rows) = batch else {
                return Err(S::Error::custom("the listing failed"));
            };
            for row in &rows {
                seq.serialize_element(row)?;
            }
        }
        seq.end()
    }
}

/// Writes a listing to stdout as JSON while the store reads it, never whole in memory:
/// `list` runs the store's listing here, handing each row to the visitor it is given, and a
/// second thread runs `write`, which writes a value holding the rows
/// ([`ui::print_json_streamed`]), so that reading (SQLite) and
/// writing (serde) each keep a core busy: a million tokens take about half the time they do
/// in one thread. The channel holds a few batches, so memory stays flat. Returns how many rows
/// were written. A listing that fails leaves nothing on stdout unless it had already filled
/// the writer's 64 KiB buffer.
fn print_json_listing<R: serde::Serialize + Send>(
    list: impl FnOnce(Each<'_, R>) -> Result<()>,
    write: impl FnOnce(&Rows<R>) -> Result<()> + Send,
) -> Result<u64> {
    const BATCH: usize = 256;
    let (sender, receiver) = std::sync::mpsc::sync_channel(4);
    let rows = Rows(Mutex::new(Some(receiver)));
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write(&rows));
        let mut batch = Vec::with_capacity(BATCH);
        let mut count = 0;
        let mut writer_gone = false;
        let listed = list(&mut |row| {
            batch.push(row);
            count += 1;
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if sender.send(Ok(full)).is_err() {
                    // The writer stopped (a closed stdout): its error says why.
                    writer_gone = true;
                    return Err(Error::refused("the JSON writer stopped"));
                }
            }
            Ok(())
        });
        let last = match &listed {
            Ok(()) => Ok(batch),
            Err(_) => Err(()),
        };
        let _ = sender.send(last);
        drop(sender);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Error::environment("the JSON writer failed")));
        match listed {
            Err(err) if !writer_gone => Err(err),
            _ => written.map(|()| count),
        }
    })
}

/// Fails, as [`confirm`] would, when confirmation is needed and no one can give it: for a
/// command that shows something before asking, so that it shows nothing in vain.
fn can_confirm(yes: bool, question: &str, flag_hint: &str) -> Result<()> {
    if yes || ui::is_interactive() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{question} Confirmation is needed, and there is no terminal to ask"
    ))
    .with_hint(flag_hint.to_owned()))
}

/// Asks before a destructive step, or requires `--yes` where no one can answer.
fn confirm(yes: bool, question: &str, flag_hint: &str) -> Result<()> {
    can_confirm(yes, question, flag_hint)?;
    if yes || ui::prompt::confirm(question)? {
        Ok(())
    } else {
        Err(Error::refused("cancelled; nothing was changed"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quoted;

    #[test]
    fn shell_quoting_leaves_plain_paths_alone_and_quotes_the_rest() {
        assert_eq!(shell_quoted("/tmp/a-b_c.db"), "/tmp/a-b_c.db");
        assert_eq!(shell_quoted("/tmp/a b.db"), "'/tmp/a b.db'");
        assert_eq!(shell_quoted("/tmp/it's"), r"'/tmp/it'\''s'");
        assert_eq!(shell_quoted("$(x)"), "'$(x)'");
        assert_eq!(shell_quoted(""), "''");
    }
}
