//! The storage boundary: what `ops` may ask of a store, and nothing of how. One trait,
//! [`Store`], with one implementation per engine (an SQLite file in `sqlite/`, a PostgreSQL
//! database in `postgres/`), chosen by the [`Location`] the store is opened at; nothing above
//! this module knows which engine it talks to. Every SQL statement lives below it.

mod audit;
mod error;
mod postgres;
mod sqlite;

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

pub use error::{StoreError, StoreErrorKind, StoreResult};
pub use postgres::conninfo::{Surroundings, has_password, is_url, names_postgres};
pub use postgres::{Lookups, Say};
pub use sqlite::SCHEMA_VERSION;

/// The TLS configuration of a PostgreSQL connection with the default sslmode (`prefer`):
/// the benchmark's floor connects with it, as autheona does.
pub fn postgres_prefer_tls() -> rustls::ClientConfig {
    postgres::tls::prefer_config()
}

/// The schema version of the PostgreSQL store this binary makes and reads.
pub const POSTGRES_SCHEMA_VERSION: i32 = postgres::SCHEMA_VERSION;

/// Where a store is: an SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    Postgres(Box<postgres::Target>),
}

impl Location {
    /// The location `given` names: a `postgres://` or `postgresql://` URL, completed as libpq
    /// completes it from `around`, else a file path. `Err` is one line on what is wrong with
    /// the URL; it never holds the URL, which may hold a password.
    pub fn parse(given: &std::ffi::OsStr, around: &Surroundings<'_>) -> Result<Location, String> {
        match given.to_str() {
            Some(url) if is_url(url) => Ok(Location::Postgres(Box::new(
                postgres::conninfo::resolve(url, around)?,
            ))),
            _ => Ok(Location::File(PathBuf::from(given))),
        }
    }
}

impl Location {
    /// What finding the location gave to warn about (a password file others may read).
    pub fn warning(&self) -> Option<&str> {
        match self {
            Location::File(_) => None,
            Location::Postgres(target) => target.warning.as_deref(),
        }
    }
}

/// A file by its path; a database by host, port, database and user (never a password).
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(target) => write!(f, "PostgreSQL {target}"),
        }
    }
}

/// A change that refuses tokens (this command's, or another process's it found made) whose
/// announcement to the `autheona serve`s running on the store failed (the connection lost, a
/// role without the grants on the servers' table): instead, the store waited long enough for
/// every server's lease to end. The change stands either way, and the command ends as it
/// would have.
#[derive(Debug)]
pub struct Untold {
    pub error: StoreError,
    /// How long the command waited for the servers, in all.
    pub waited: std::time::Duration,
}

/// Who made a change, as the audit log records it: the operating-system user and host (the
/// database role, on a server, is the store's own to add). `None` where it cannot be told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub host: Option<String>,
}

/// Finds out who is making changes: called once, at the first change a store records, so
/// that a command that changes nothing (verify) never asks.
pub type WhoActs = fn() -> Actor;

/// What an audit event records: a public interface, as the exit codes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ProjectCreate,
    ProjectDelete,
    TokenCreate,
    TokenRevoke,
    TokenRotate,
    /// A token's scheduled end (a grace period) was reached, and its row removed.
    TokenStop,
    TokenPrune,
    StoreCopy,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::ProjectCreate,
        Action::ProjectDelete,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::TokenRotate,
        Action::TokenStop,
        Action::TokenPrune,
        Action::StoreCopy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ProjectCreate => "project.create",
            Action::ProjectDelete => "project.delete",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::TokenRotate => "token.rotate",
            Action::TokenStop => "token.stop",
            Action::TokenPrune => "token.prune",
            Action::StoreCopy => "store.copy",
        }
    }
}

/// An event of the audit log, as stored: never a token, a secret or a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Its place in the log: later events have larger numbers.
    pub seq: i64,
    pub at: i64,
    pub action: String,
    pub project: Option<String>,
    pub token_id: Option<String>,
    /// The token's description at the time.
    pub description: Option<String>,
    /// A JSON object.
    pub detail: String,
    pub user: Option<String>,
    pub uid: Option<i64>,
    pub host: Option<String>,
    /// The database role that made the change, on a server.
    pub role: Option<String>,
}

/// Which events [`Store::events`] reads: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery<'a> {
    pub project: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub action: Option<Action>,
    /// At or after this time (unix seconds).
    pub since: Option<i64>,
    /// After this place in the log (to follow it).
    pub after_seq: Option<i64>,
    /// At or before this place in the log (a second pass sees what the first saw).
    pub upto_seq: Option<i64>,
    /// Oldest first, rather than newest first.
    pub oldest_first: bool,
    /// At most this many.
    pub limit: Option<u64>,
}

/// Why a token row is deleted, as its event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Revoked by a person (`token revoke`).
    Revoked,
    /// Created, but its value could not be shown, so it was removed again.
    Undelivered,
}

/// What a prune selected its tokens by, for their events: the person's own words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    pub project: Option<&'a str>,
    pub expired: bool,
    pub unused_for_days: Option<u32>,
}

/// A project as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub name: String,
    pub created_at: i64,
    pub tokens: u64,
}

/// A token's scheduled end, set once by a rotation with a grace period: the token stops at
/// `stops_at` (unix seconds), replaced by token `by`. Never moved or cleared (the schema
/// refuses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub by: String,
    pub stops_at: i64,
}

impl Replacement {
    /// The pair of nullable columns a row holds it in; both set or both null (the schema
    /// checks it).
    fn from_columns(by: Option<String>, stops_at: Option<i64>) -> Option<Replacement> {
        Some(Replacement {
            by: by?,
            stops_at: stops_at?,
        })
    }
}

/// A token as listed: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub project: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub replacement: Option<Replacement>,
}

/// What verifying a token needs from its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRow {
    pub secret_hash: String,
    pub project: String,
    pub expires_at: Option<i64>,
    pub replacement: Option<Replacement>,
}

/// A token row to insert. Its project is named, and looked up by the statement that inserts
/// the row: a project id carried from an earlier statement could by then belong to another
/// project.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub id: &'a str,
    pub project: &'a str,
    pub secret_hash: &'a str,
    pub description: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// How much a store holds. Its events count: a store whose projects were all deleted still
/// holds their history, which a copy would merge with another store's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contents {
    pub projects: u64,
    pub tokens: u64,
    /// Events of its audit log.
    pub events: u64,
}

impl Contents {
    pub fn is_empty(&self) -> bool {
        self.projects == 0 && self.tokens == 0 && self.events == 0
    }
}

/// A row as a copy from store to store carries it ([`Store::export`], [`Store::import`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Project(ProjectRecord),
    Token(TokenRecord),
    /// An event of the source's audit log, oldest first, after every token.
    Event(EventRow),
}

/// A project's whole row, but for its id (which is the store's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub name: String,
    pub created_at: i64,
}

/// A token's whole row, its hash included: only for copying from store to store, never shown
/// (its `Debug` leaves the hash out).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub project: String,
    pub secret_hash: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub replacement: Option<Replacement>,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("project", &self.project)
            .field("secret_hash", &"<redacted>")
            .field("description", &self.description)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .field("replacement", &self.replacement)
            .finish()
    }
}

/// Where [`Store::import`] puts the rows it is handed, inside its transaction: projects
/// first, then tokens, each token of a project handed before it. Tokens are kept in the
/// order handed, which is the order lists show them in among equal creation times.
pub trait Import {
    fn add(&mut self, record: Record) -> StoreResult<()>;
}

/// How [`Store::import`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Committed: this much was added (the source's events, not the copy's own).
    Done(Contents),
    /// The store was not empty (it holds this much); nothing was added.
    NotEmpty(Contents),
}

/// How [`Store::insert_token`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Done,
    /// The token's id is taken; nothing changed.
    IdTaken,
    /// There is no project of that name (deleted meanwhile); nothing changed.
    NoProject,
}

/// How [`Store::retire_token`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retired {
    /// Deleted, or its end scheduled, as asked.
    Done,
    /// The token no longer exists (revoked meanwhile); nothing changed.
    Gone,
    /// Its end was already scheduled (by another rotation meanwhile); nothing changed.
    Scheduled(Replacement),
}

/// When a write must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the write returns: a power cut right after cannot undo it (revocations).
    OnCommit,
    /// At the next [`Store::make_durable`], or whenever the engine gets to it: a power cut may
    /// lose the latest such writes (last-used times; a new token until it is shown).
    Deferred,
}

/// Which tokens a list, or a prune, selects: every condition given must hold. Times are unix
/// seconds, already worked out from "now" by `ops`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenQuery<'a> {
    /// Of this project only.
    pub project: Option<&'a str>,
    /// Expired at this time (its expiration is at or before it).
    pub expired_at: Option<i64>,
    /// Still working at `.0` and expiring by `.1`.
    pub expiring: Option<(i64, i64)>,
    /// Never used.
    pub never_used: bool,
    /// Not used since this time (by its last use, else its creation).
    pub unused_since: Option<i64>,
    /// Still there at this time: not stopped by a scheduled end at or before it. Every list
    /// sets it (a token whose end has come is gone, whether or not its row is removed yet).
    pub live_at: Option<i64>,
}

/// A visitor of listed rows, called once per row in order; `Break` stops the listing.
pub type Visit<'v, T> = &'v mut dyn FnMut(T) -> ControlFlow<()>;

/// What `ops` may ask of a store. Every method is one statement or one transaction: what a
/// method reads and what it changes are seen at one moment.
///
/// Every change to a project or a token appends its event to the audit log in the same
/// transaction: no change without its event, no event without its change. The actor is found
/// out by the [`WhoActs`] given to [`Store::act_as`], at the first change.
pub trait Store: Send {
    /// The local file the store is, if it is one (for the warning about its permissions).
    fn file(&self) -> Option<&Path>;
    /// Who the changes made from now on are recorded as made by.
    fn act_as(&mut self, who: WhoActs);
    /// Where the store reports the running servers it could not tell of a change
    /// ([`Untold`]); by default, nowhere.
    fn warn_with(&mut self, _warn: fn(&Untold)) {}
    /// The database server's clock when the store was opened (unix seconds), for a store on
    /// a server: hosts sharing it must agree on the time, since each judges expiry by its
    /// own clock.
    fn server_time(&self) -> Option<i64> {
        None
    }

    /// Inserts a project (event `project.create`); `false` when the name is taken.
    fn insert_project(&self, name: &str, created_at: i64) -> StoreResult<bool>;
    /// Every project by name, with its count of tokens still there at `live_at` (not stopped
    /// by a scheduled end), handed to each visitor of `passes` in turn, all from one snapshot.
    fn projects(&self, live_at: i64, passes: &mut [Visit<'_, ProjectRow>]) -> StoreResult<()>;
    fn project_exists(&self, name: &str) -> StoreResult<bool>;
    /// How many tokens the project has still there at `live_at`; `None` when there is no such
    /// project.
    fn project_token_count(&self, name: &str, live_at: i64) -> StoreResult<Option<u64>>;
    /// Deletes a project and its tokens (durably; event `project.delete`, at `at`); `None`
    /// when there is no such project, else how many tokens went with it.
    fn delete_project(&self, name: &str, at: i64) -> StoreResult<Option<u64>>;

    /// Inserts a token into its project, if that exists (event `token.create`).
    fn insert_token(&self, token: &NewToken<'_>, durability: Durability) -> StoreResult<Inserted>;
    /// Makes every write so far durable.
    fn make_durable(&self) -> StoreResult<()>;
    /// Inserts many tokens in one transaction, for fixtures (tests and benchmarks), with no
    /// events; returns how many (those of a project that does not exist are not).
    fn insert_tokens(&self, tokens: &mut dyn Iterator<Item = NewToken<'_>>) -> StoreResult<usize>;

    /// The tokens `query` selects, oldest first, handed to each visitor in `passes` in turn,
    /// all from one snapshot (a table measures its columns in a first pass, then prints).
    /// `false` when `query` names a project that does not exist.
    fn tokens(
        &self,
        query: &TokenQuery<'_>,
        passes: &mut [Visit<'_, TokenRow>],
    ) -> StoreResult<bool>;
    fn token(&self, id: &str) -> StoreResult<Option<TokenRow>>;
    /// The row verify needs, by token id: one indexed lookup.
    fn token_for_verify(&self, id: &str) -> StoreResult<Option<VerifyRow>>;
    /// Records a use (durability [`Durability::Deferred`]); `false` when the token no longer
    /// exists.
    fn record_use(&self, id: &str, at: i64) -> StoreResult<bool>;
    /// Records many uses (token id, unix seconds) in one transaction of durability
    /// [`Durability::Deferred`], each only where it is later than the use already recorded
    /// (another process may have recorded a later one); a token that no longer exists is
    /// passed over.
    fn record_uses(&self, uses: &[(String, i64)]) -> StoreResult<()>;
    /// Answers one query, for a health check: the database server's clock now (unix seconds)
    /// for a store on a server, `None` for a file.
    fn clock(&self) -> StoreResult<Option<i64>>;
    /// Deletes a token durably (event `token.revoke` at `at`, saying why); `false` when there
    /// was none.
    fn delete_token(&self, id: &str, at: i64, why: Removal) -> StoreResult<bool>;
    /// Deletes, in one durable transaction, those of the tokens with these ids that `still`
    /// selects at that moment (a token used since it was listed stays), each with its event
    /// `token.prune` at `at`, naming the `selection`; returns how many.
    fn delete_tokens(
        &self,
        ids: &mut dyn Iterator<Item = &str>,
        still: &TokenQuery<'_>,
        at: i64,
        selection: &Selection<'_>,
    ) -> StoreResult<u64>;
    /// Inserts `new`, durably, as the replacement of token `old_id` (event `token.create`,
    /// saying what it replaces): into the old one's project (which must be the one `new`
    /// names), only if the old one still exists and has no scheduled end. `NoProject` when it
    /// does not (revoked, or rotated, meanwhile).
    fn insert_replacement(&self, old_id: &str, new: &NewToken<'_>) -> StoreResult<Inserted>;
    /// Ends token `id` durably, once its replacement `by` is shown (event `token.rotate` at
    /// `at`): deletes it when `stops_at` is `None`, else schedules its end at `stops_at`, if
    /// it has none yet.
    fn retire_token(
        &self,
        id: &str,
        by: &str,
        stops_at: Option<i64>,
        at: i64,
    ) -> StoreResult<Retired>;
    /// Deletes every token whose scheduled end is at or before `now` (durability
    /// [`Durability::Deferred`]: each is refused from that moment whether its row is there
    /// or not), each with its event `token.stop`; returns how many.
    fn remove_stopped(&self, now: i64) -> StoreResult<u64>;

    /// The audit log's events `query` selects, newest first (or oldest first, if it asks),
    /// handed to `visit` as they are read.
    fn events(&self, query: &EventQuery<'_>, visit: Visit<'_, EventRow>) -> StoreResult<()>;

    /// How many projects and tokens the store holds, read in one snapshot.
    fn contents(&self) -> StoreResult<Contents>;
    /// Everything the store holds, for a copy, from one snapshot: every project by name, then
    /// every token with its hash, in the order lists show them (by creation, then as
    /// inserted), then every event of its log, oldest first, each handed to `visit` as it is
    /// read; `Break` stops the export. Works on
    /// a store of an older schema too, opened with [`open_as_is`].
    fn export(&self, visit: Visit<'_, Record>) -> StoreResult<()>;
    /// Fills an empty store in one durable transaction, which holds off other writers: if it
    /// holds anything at that moment, `NotEmpty`, without calling `fill`; else `fill` hands
    /// rows to the [`Import`] it is given, and they are committed when it returns `Ok`, with
    /// the event `store.copy` at `at`, naming the `source`. An error (of `fill` or of the
    /// store) rolls everything back: the store is as it was.
    fn import(
        &self,
        at: i64,
        source: &str,
        fill: &mut dyn FnMut(&mut dyn Import) -> StoreResult<()>,
    ) -> StoreResult<Imported>;
}

/// How a store is opened; each engine has its way of doing each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Existing, migrated if older.
    Existing,
    /// Made, or migrated, if needed.
    Create,
    /// Only read, of the current schema, changing nothing.
    ReadOnly,
    /// Only read, as it is.
    AsIs,
}

/// Opens a PostgreSQL store.
type OpenPostgres = fn(&postgres::Target, Opening) -> StoreResult<Option<Box<dyn Store>>>;

/// The PostgreSQL engine, in the executable whose `main` links it ([`link_postgres`]): only
/// there is its code reachable, and so linked in (the client, TLS, an async runtime). The
/// short-lived commands on an SQLite file start without it (benches/README.md, finding 25).
static POSTGRES: std::sync::OnceLock<OpenPostgres> = std::sync::OnceLock::new();

/// Makes PostgreSQL stores openable in this executable.
pub fn link_postgres() {
    POSTGRES.get_or_init(|| postgres::Postgres::open_boxed);
}

/// From now on a PostgreSQL server that answers nothing for
/// [`ANSWER_WAIT`](postgres::watch::ANSWER_WAIT) in the middle of a call (a hung proxy, whose
/// kernel still acknowledges every byte) makes `give_up` run, with the server's name and the
/// wait, on another thread; it must end the process. For commands, not for the server.
pub fn give_up_waiting_with(give_up: fn(&str, std::time::Duration)) {
    postgres::watch::give_up_with(give_up);
}

/// Whether this executable can open PostgreSQL stores ([`link_postgres`]).
pub fn postgres_linked() -> bool {
    POSTGRES.get().is_some()
}

fn open_postgres(
    target: &postgres::Target,
    opening: Opening,
) -> StoreResult<Option<Box<dyn Store>>> {
    let open = POSTGRES.get().ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Other,
            format!("PostgreSQL {target}: this executable has no PostgreSQL client"),
        )
    })?;
    open(target, opening)
}

/// Opens an existing store; `None` when there is none at `location` (no file; a database
/// without autheona's schema is an error, [`StoreErrorKind::Uninitialised`]).
pub fn open(location: &Location) -> StoreResult<Option<Box<dyn Store>>> {
    match location {
        Location::File(path) => {
            Ok(sqlite::Sqlite::open(path)?.map(|s| Box::new(s) as Box<dyn Store>))
        }
        Location::Postgres(target) => open_postgres(target, Opening::Existing),
    }
}

/// Opens the store at `location`, creating it (or its schema) if needed.
pub fn create(location: &Location) -> StoreResult<Box<dyn Store>> {
    match location {
        Location::File(path) => Ok(Box::new(sqlite::Sqlite::create(path)?)),
        Location::Postgres(target) => open_postgres(target, Opening::Create)?
            .ok_or_else(|| StoreError::new(StoreErrorKind::Other, "no store made")),
    }
}

/// Opens an existing store only to read it, changing nothing (for shell completion); `None`
/// when there is no store of the current schema at `location`.
pub fn open_read_only(location: &Location) -> StoreResult<Option<Box<dyn Store>>> {
    match location {
        Location::File(path) => {
            Ok(sqlite::Sqlite::open_read_only(path)?.map(|s| Box::new(s) as Box<dyn Store>))
        }
        Location::Postgres(target) => open_postgres(target, Opening::ReadOnly),
    }
}

/// Opens an existing store only to read it as it is, as a copy's source: nothing is written to
/// it (as [`open_read_only`]) and an older schema is read in its own form, not migrated (every
/// schema version so far holds the same columns). `None` when there is no file at `location`;
/// an empty file, or a database without autheona's schema, is an error
/// ([`StoreErrorKind::Uninitialised`]), as is anything not autheona's.
pub fn open_as_is(location: &Location) -> StoreResult<Option<Box<dyn Store>>> {
    match location {
        Location::File(path) => {
            Ok(sqlite::Sqlite::open_as_is(path)?.map(|s| Box::new(s) as Box<dyn Store>))
        }
        Location::Postgres(target) => open_postgres(target, Opening::AsIs),
    }
}

/// Opens the store at `location` to copy into, creating it when there is none (or it is an
/// empty file, or a database without autheona's schema). `Err` holds what a store that is not
/// empty holds: then nothing was written to it, not even a migration of its schema.
pub fn create_if_empty(location: &Location) -> StoreResult<Result<Box<dyn Store>, Contents>> {
    match open_as_is(location) {
        Ok(Some(store)) => {
            let held = store.contents()?;
            if !held.is_empty() {
                return Ok(Err(held));
            }
        }
        Ok(None) => {}
        Err(err) if err.kind() == StoreErrorKind::Uninitialised => {}
        Err(err) => return Err(err),
    }
    create(location).map(Ok)
}

/// A private store of the current schema in memory, for tests and benchmarks.
pub fn in_memory() -> Box<dyn Store> {
    Box::new(sqlite::Sqlite::in_memory().expect("an in-memory database"))
}

#[cfg(test)]
pub(crate) use sqlite::Sqlite;

/// A private in-memory store on which a test may run raw SQL (a trigger that fails a write).
#[cfg(test)]
pub(crate) fn in_memory_for_test() -> sqlite::Sqlite {
    sqlite::Sqlite::in_memory().expect("an in-memory database")
}
