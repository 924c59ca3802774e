//! The PostgreSQL store: a database shared by many hosts. Connecting (as libpq would, in
//! `conninfo`, with TLS in `tls`), the schema and its migrations, and every SQL statement
//! autheona runs on it (`queries`, and verify's lookup, prepared on a connection that repeats
//! it, in `lookup`).
//!
//! Everything here works through PgBouncer in transaction pooling mode: statements are sent
//! unnamed (`query_typed`: parse, bind and execute in one round trip; the one prepared
//! statement goes back to that when it does not stay on the connection), and what a transaction
//! needs (its lock and statement timeouts, whether its commit waits for the disk) it sets
//! itself with `SET LOCAL`, as does verify's last-used write, a query of its own. Session
//! settings are set too, at no extra round trip, for the autocommit reads (verify's lookup);
//! through a pool they may land on another server connection, so nothing that writes relies
//! on them.

pub mod conninfo;
mod lease;
mod lookup;
mod queries;
pub(super) mod tls;
pub mod watch;

use std::cell::RefCell;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, NoTls, SimpleQueryMessage};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Notification};

use conninfo::Host;
pub use conninfo::Target;
pub use lease::Say;
pub use lookup::Lookups;

use super::audit::Acting;
use super::{StoreError, StoreErrorKind as Kind, StoreResult as Result};

/// The schema version this binary makes and reads.
pub const SCHEMA_VERSION: i32 = 4;

/// The migrations, in order: `MIGRATIONS[n]` takes version `n` to `n + 1`.
const MIGRATIONS: [&str; 4] = [
    include_str!("migrate-1.sql"),
    include_str!("migrate-2.sql"),
    include_str!("migrate-3.sql"),
    include_str!("migrate-4.sql"),
];

/// The first version whose tokens may hold a scheduled end (`stops_at`, `replaced_by`).
const SCHEDULED_ENDS: i32 = 2;

/// The first version with an audit log (`events`).
const AUDIT_LOG: i32 = 3;

/// The key of the transaction-level advisory lock under which the schema is made or migrated:
/// "autheona" in ASCII.
const SCHEMA_LOCK: i64 = 0x6175_7468_656f_6e61;

/// The key of the transaction-level advisory lock under which events are appended, so that
/// they commit in the order of the log: "autheonl" in ASCII.
const LOG_LOCK: i64 = 0x6175_7468_656f_6e6c;

/// How long a statement may wait for a lock another transaction holds.
const LOCK_TIMEOUT: &str = "5s";
/// How long a statement may run.
const STATEMENT_TIMEOUT: &str = "30s";
/// How long migrations may wait for another process's (8 first commands at once queue here).
const MIGRATION_LOCK_TIMEOUT: &str = "30s";

/// How long shell completion waits to connect.
const READ_ONLY_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A server that stops answering mid-command is given up on after about this long (TCP
/// keepalives, and unacknowledged data).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection to autheona's schema in a PostgreSQL database.
pub struct Postgres {
    client: RefCell<Client>,
    target: Target,
    /// The server's clock, read when the store was opened (unix seconds).
    server_time: i64,
    acting: Acting,
    lookup: lookup::Lookup,
    /// Where the servers not told of a change are reported ([`super::Store::warn_with`]).
    warn: fn(&super::Untold),
}

/// What the schema in the database is.
enum SchemaState {
    Current,
    /// Made by an older autheona: migrate it.
    Older,
    /// No autheona schema.
    Missing,
}

impl Postgres {
    /// The store at `target`, opened as `opening` says: what [`super::link_postgres`] links.
    pub(super) fn open_boxed(
        target: &Target,
        opening: super::Opening,
    ) -> Result<Option<Box<dyn super::Store>>> {
        let store = match opening {
            super::Opening::Existing => Some(Postgres::open(target)?),
            super::Opening::Create => Some(Postgres::create(target)?),
            super::Opening::ReadOnly => Postgres::open_read_only(target)?,
            super::Opening::AsIs => Some(Postgres::open_as_is(target)?),
        };
        Ok(store.map(|store| Box::new(store) as Box<dyn super::Store>))
    }

    /// Connects and checks the schema, which must be the current one (or older: it is then
    /// migrated).
    pub fn open(target: &Target) -> Result<Postgres> {
        let mut store = Postgres::connect(target)?;
        match store.schema_state()? {
            SchemaState::Current => Ok(store),
            SchemaState::Older => {
                store.migrate(false)?;
                Ok(store)
            }
            SchemaState::Missing => Err(StoreError::new(
                Kind::Uninitialised,
                format!("PostgreSQL database {target} has no autheona schema yet"),
            )
            .on_server()),
        }
    }

    /// Connects, making or migrating the schema if needed.
    pub fn create(target: &Target) -> Result<Postgres> {
        let mut store = Postgres::connect(target)?;
        match store.schema_state()? {
            SchemaState::Current => {}
            SchemaState::Older => store.migrate(false)?,
            SchemaState::Missing => store.migrate(true)?,
        }
        Ok(store)
    }

    /// Connects only to read; `None` when the schema is not the current one. Nothing is made
    /// or migrated. For shell completion, which someone is waiting on at a prompt: a server
    /// that does not answer within 2 s gets no longer.
    pub fn open_read_only(target: &Target) -> Result<Option<Postgres>> {
        let mut target = target.clone();
        target.connect_timeout = Some(
            target
                .connect_timeout
                .map_or(READ_ONLY_CONNECT_TIMEOUT, |t| {
                    t.min(READ_ONLY_CONNECT_TIMEOUT)
                }),
        );
        let mut store = Postgres::connect(&target)?;
        Ok(match store.schema_state()? {
            SchemaState::Current => Some(store),
            SchemaState::Older | SchemaState::Missing => None,
        })
    }

    /// The server's clock when the store was opened, in unix seconds.
    pub fn server_time(&self) -> i64 {
        self.server_time
    }

    fn connect(target: &Target) -> Result<Postgres> {
        let (config, tls_config) = config(target)?;
        let config = postgres::Config::from(config);
        let attempt = move || match tls_config {
            Some(tls_config) => {
                config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config))
            }
            None => config.connect(NoTls),
        };
        let client = match target.connect_timeout {
            Some(timeout) => within(timeout, attempt).ok_or_else(|| no_answer(target, timeout))?,
            None => attempt(),
        };
        let client = client.map_err(|err| connect_error(target, &err))?;
        Ok(Postgres {
            client: RefCell::new(client),
            target: target.clone(),
            server_time: 0,
            acting: Acting::default(),
            warn: |_| {},
            lookup: lookup::Lookup::default(),
        })
    }

    /// Sets the session's timeouts, and reads the schema version and the server's clock: one
    /// round trip.
    fn schema_state(&mut self) -> Result<SchemaState> {
        self.read_schema_state(true)
    }

    /// [`Postgres::schema_state`]; `again`: a schema found made meanwhile may be read once
    /// more.
    fn read_schema_state(&mut self, again: bool) -> Result<SchemaState> {
        let rows = {
            let _watched = watch::arm(&self.target);
            self.client.get_mut().simple_query(&session_query())
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(err)
                if matches!(
                    err.code(),
                    Some(&SqlState::UNDEFINED_TABLE | &SqlState::INVALID_SCHEMA_NAME)
                ) =>
            {
                return self.missing_schema(again);
            }
            Err(err) => return Err(self.error(&err)),
        };
        let [Some((version, server_time))] = session_rows(&rows)[..] else {
            return Err(self.foreign("its autheona.schema_version table has not one row"));
        };
        self.server_time = server_time;
        match version.cmp(&SCHEMA_VERSION) {
            std::cmp::Ordering::Equal => Ok(SchemaState::Current),
            std::cmp::Ordering::Less => Ok(SchemaState::Older),
            std::cmp::Ordering::Greater => Err(StoreError::new(
                Kind::Newer,
                format!(
                    "PostgreSQL database {} holds schema version {version}, newer than this \
                     autheona's ({SCHEMA_VERSION})",
                    self.target
                ),
            )
            .on_server()),
        }
    }

    /// No autheona.schema_version: a database with no autheona schema, or someone else's
    /// schema of that name, or one another process made since the first read (its migration
    /// committed between the two statements): that one is read again, once.
    fn missing_schema(&mut self, again: bool) -> Result<SchemaState> {
        let row = self
            .client
            .get_mut()
            .query_typed_one(
                "SELECT to_regnamespace('autheona') IS NOT NULL,
                        to_regclass('autheona.schema_version') IS NOT NULL,
                        extract(epoch FROM now())::bigint",
                &[],
            )
            .map_err(|err| self.error(&err))?;
        self.server_time = row.get(2);
        match (row.get::<_, bool>(0), row.get::<_, bool>(1)) {
            (false, _) => Ok(SchemaState::Missing),
            (true, true) if again => self.read_schema_state(false),
            _ => Err(self.foreign("it has a schema named autheona without autheona's tables")),
        }
    }

    fn foreign(&self, why: &str) -> StoreError {
        StoreError::new(
            Kind::NotOurs,
            format!(
                "PostgreSQL database {} is not an autheona store: {why}",
                self.target
            ),
        )
        .on_server()
    }

    /// Makes or migrates the schema in one transaction, under an advisory lock taken before
    /// anything else, so that processes racing their first command queue here and all find
    /// one schema. A transaction-level lock, not a session-level one, which PgBouncer's
    /// transaction pooling would hand to another client's session.
    fn migrate(&mut self, fresh: bool) -> Result<()> {
        let target = self.target.clone();
        let client = self.client.get_mut();
        let result = (|| -> std::result::Result<(), postgres::Error> {
            client.batch_execute(&format!(
                "BEGIN;
                 SET LOCAL lock_timeout = '{MIGRATION_LOCK_TIMEOUT}';
                 SET LOCAL synchronous_commit = on;
                 SELECT pg_advisory_xact_lock({SCHEMA_LOCK});"
            ))?;
            // Read from the catalogs with a snapshot taken now, not through to_regclass and
            // to_regnamespace: those use this session's catalog caches, which a transaction
            // refreshes when it starts or locks a table, not when it gets an advisory lock. A
            // schema another process made while this one waited for the lock would still be
            // missing from them ("schema autheona already exists" on making it again).
            let row = client.query_typed_one(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c
                                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                WHERE n.nspname = 'autheona' AND c.relname = 'schema_version'),
                        EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'autheona')",
                &[],
            )?;
            let (has_table, has_schema): (bool, bool) = (row.get(0), row.get(1));
            let version = if has_table {
                client
                    .query_typed_one("SELECT version FROM autheona.schema_version", &[])?
                    .get::<_, i32>(0)
            } else if has_schema {
                client.batch_execute("ROLLBACK")?;
                return Ok(());
            } else {
                0
            };
            for (from, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
                client.batch_execute(migration)?;
                let to = i32::try_from(from + 1).unwrap_or(i32::MAX);
                client.execute_typed(
                    "UPDATE autheona.schema_version SET version = $1",
                    &[(&to, Type::INT4)],
                )?;
            }
            client.batch_execute("COMMIT")
        })();
        if let Err(err) = result {
            let _ = client.batch_execute("ROLLBACK");
            if err.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                let what = if fresh {
                    format!("user {} may not create schemas there", target.user)
                } else {
                    format!(
                        "it must be migrated, and user {} may not alter it: run one command \
                         as the schema's owner",
                        target.user
                    )
                };
                return Err(StoreError::new(
                    Kind::Permission,
                    format!("cannot set up autheona's schema in PostgreSQL {target}: {what}"),
                )
                .on_server()
                .caused_by(err));
            }
            return Err(self.error(&err));
        }
        // Another process's schema may have been there, or a foreign one: read it again.
        match self.schema_state()? {
            SchemaState::Current => Ok(()),
            _ => Err(self.foreign("its schema could not be brought up to date")),
        }
    }

    /// Turns a PostgreSQL error into one line naming the database, keeping it as the cause.
    fn error(&self, err: &postgres::Error) -> StoreError {
        statement_error(&self.target, err)
    }

    /// Connects only to read, as a copy's source: nothing is made or migrated, and an older
    /// schema is read as it is. A database without autheona's schema is an error.
    pub fn open_as_is(target: &Target) -> Result<Postgres> {
        let mut store = Postgres::connect(target)?;
        match store.schema_state()? {
            SchemaState::Current | SchemaState::Older => Ok(store),
            SchemaState::Missing => Err(StoreError::new(
                Kind::Uninitialised,
                format!("PostgreSQL database {target} has no autheona schema"),
            )
            .on_server()),
        }
    }
}

/// What every connection runs first, as one simple query (one round trip): the session's
/// timeouts, then the schema's version and the server's clock. The timeouts come first, as
/// statements of their own: set by the statement that reads `autheona.schema_version`, they
/// would come too late for it, and a lock held on that table (DDL, `VACUUM FULL`) would hold
/// every command for ever.
fn session_query() -> String {
    format!(
        "SET lock_timeout = '{LOCK_TIMEOUT}'; SET statement_timeout = '{STATEMENT_TIMEOUT}';
         SELECT v.version, extract(epoch FROM now())::bigint FROM autheona.schema_version v"
    )
}

/// The rows [`session_query`] answered, each the schema's version and the server's clock
/// (unix seconds), or `None` where they are not integers.
fn session_rows(messages: &[SimpleQueryMessage]) -> Vec<Option<(i32, i64)>> {
    messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .map(|row| Some((row.get(0)?.parse().ok()?, row.get(1)?.parse().ok()?)))
        .collect()
}

/// How to connect to `target`, as libpq would: the client's configuration, and TLS's unless
/// the connection goes without.
fn config(target: &Target) -> Result<(tokio_postgres::Config, Option<rustls::ClientConfig>)> {
    let mut config = tokio_postgres::Config::new();
    match &target.host {
        Host::Tcp(name) => config.host(name),
        Host::Socket(dir) => config.host_path(dir),
    };
    config
        .port(target.port)
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name(&target.application_name)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        .tcp_user_timeout(TCP_USER_TIMEOUT);
    if let Some(timeout) = target.connect_timeout {
        config.connect_timeout(timeout);
    }
    if let Some(password) = &target.password {
        config.password(password.expose());
    }
    let tls = matches!(target.host, Host::Tcp(_)) && target.sslmode != conninfo::SslMode::Disable;
    if !tls {
        config.ssl_mode(SslMode::Disable);
        return Ok((config, None));
    }
    config.ssl_mode(match target.sslmode {
        conninfo::SslMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let tls_config = tls::client_config(target).map_err(|message| {
        StoreError::new(Kind::Tls, format!("PostgreSQL {target}: {message}")).on_server()
    })?;
    Ok((config, Some(tls_config)))
}

/// Connects from async code (`autheona serve`'s [`Lookups`]), as [`Postgres::connect`] does:
/// the client, and its connection running as a task of the runtime this is called in, which
/// ends once the client is dropped (having told the server).
async fn connect_async(
    target: &Target,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    connect_with(target, None).await
}

/// [`connect_async`], the notifications the connection receives (`LISTEN`) sent to the
/// receiver, which ends when the connection does.
async fn connect_listening(
    target: &Target,
) -> Result<(
    tokio_postgres::Client,
    tokio::task::JoinHandle<()>,
    UnboundedReceiver<Notification>,
)> {
    let (heard, hearing) = tokio::sync::mpsc::unbounded_channel();
    let (client, running) = connect_with(target, Some(heard)).await?;
    Ok((client, running, hearing))
}

async fn connect_with(
    target: &Target,
    heard: Option<UnboundedSender<Notification>>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let (config, tls_config) = config(target)?;
    let attempt = async {
        match tls_config {
            Some(tls_config) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
                let (client, connection) = config.connect(tls).await?;
                Ok((client, tokio::spawn(drive(connection, heard))))
            }
            None => {
                let (client, connection) = config.connect(NoTls).await?;
                Ok((client, tokio::spawn(drive(connection, heard))))
            }
        }
    };
    let connected = match target.connect_timeout {
        Some(timeout) => tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| no_answer(target, timeout))?,
        None => attempt.await,
    };
    connected.map_err(|err| connect_error(target, &err))
}

/// Runs `connection` until it ends, sending the notifications it receives to `heard`.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    heard: Option<UnboundedSender<Notification>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(heard) = heard else {
        return drop(connection.await);
    };
    while let Some(Ok(message)) =
        std::future::poll_fn(|context| connection.poll_message(context)).await
    {
        if let AsyncMessage::Notification(note) = message {
            let _ = heard.send(note);
        }
    }
}

/// The error of a server that did not answer a statement within `wait`.
fn unanswered(target: &Target, wait: Duration) -> StoreError {
    StoreError::new(
        Kind::ServerDown,
        format!(
            "PostgreSQL {target} did not answer within {} s",
            wait.as_secs()
        ),
    )
    .on_server()
}

/// The error of a server that did not let a connection be made within `timeout`.
fn no_answer(target: &Target, timeout: Duration) -> StoreError {
    StoreError::new(
        Kind::ServerDown,
        format!(
            "cannot connect to PostgreSQL {target}: no answer within {} s (connect_timeout)",
            timeout.as_secs()
        ),
    )
    .on_server()
}

/// `connect`'s result if it comes within `timeout`. libpq's `connect_timeout` bounds the whole
/// of connecting: TCP, TLS and logging in; tokio-postgres's bounds only the TCP connect, so a
/// server that accepts and never answers would hold a command forever. The connecting thread
/// is left behind when it is late: the command ends with the error, and the process with it.
fn within<T: Send + 'static>(
    timeout: Duration,
    connect: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let _ = sender.send(connect());
    });
    receiver.recv_timeout(timeout).ok()
}

/// An error while connecting and logging in: the host, port, database and user, never the
/// password.
fn connect_error(target: &Target, err: &postgres::Error) -> StoreError {
    let (kind, why) = match err.as_db_error() {
        Some(db) => {
            let kind = match *db.code() {
                SqlState::INVALID_PASSWORD => Kind::LoginRefused,
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION => Kind::NotAdmitted,
                SqlState::INVALID_CATALOG_NAME => Kind::NoSuchDatabase,
                SqlState::TOO_MANY_CONNECTIONS
                | SqlState::CANNOT_CONNECT_NOW
                | SqlState::ADMIN_SHUTDOWN => Kind::ServerDown,
                _ => Kind::Other,
            };
            (kind, one_line(db.message()))
        }
        None => {
            let why = causes(err);
            let kind = if why.contains("TLS") || why.contains("certificate") {
                Kind::Tls
            } else if why.contains("password missing") {
                Kind::LoginRefused
            } else {
                Kind::ServerDown
            };
            (kind, why)
        }
    };
    let why = if kind == Kind::LoginRefused && why.contains("password missing") {
        "the server asks for a password and none was given".to_owned()
    } else {
        why
    };
    StoreError::new(
        kind,
        format!("cannot connect to PostgreSQL {target}: {why}"),
    )
    .on_server()
    .caused_by(Unprinted(why_cause(err)))
}

/// An error from a statement on an open connection.
fn statement_error(target: &Target, err: &postgres::Error) -> StoreError {
    let (kind, message) = match err.as_db_error() {
        Some(db) => {
            let words = one_line(db.message());
            match *db.code() {
                SqlState::LOCK_NOT_AVAILABLE => (
                    Kind::Busy,
                    format!(
                        "PostgreSQL {target} is busy: another transaction held a lock for \
                         more than {LOCK_TIMEOUT}"
                    ),
                ),
                SqlState::QUERY_CANCELED => (
                    Kind::Busy,
                    format!("PostgreSQL {target}: the statement was cancelled ({words})"),
                ),
                SqlState::ADMIN_SHUTDOWN
                | SqlState::CRASH_SHUTDOWN
                | SqlState::CANNOT_CONNECT_NOW
                | SqlState::CONNECTION_FAILURE => (
                    Kind::ConnectionLost,
                    format!("PostgreSQL {target} ended the connection: {words}"),
                ),
                SqlState::INSUFFICIENT_PRIVILEGE => (
                    Kind::Permission,
                    format!("PostgreSQL {target}: permission denied: {words}"),
                ),
                SqlState::READ_ONLY_SQL_TRANSACTION => (
                    Kind::ReadOnly,
                    format!("PostgreSQL {target} is read-only (a replica?): {words}"),
                ),
                SqlState::DISK_FULL => (
                    Kind::DiskFull,
                    format!("PostgreSQL {target} cannot write: its disk is full"),
                ),
                _ => (Kind::Other, format!("PostgreSQL {target}: {words}")),
            }
        }
        None if err.is_closed() || causes(err).contains("communicating") => (
            Kind::ConnectionLost,
            format!(
                "PostgreSQL {target}: the connection was lost ({})",
                causes(err)
            ),
        ),
        None => (Kind::Other, format!("PostgreSQL {target}: {}", causes(err))),
    };
    StoreError::new(kind, message)
        .on_server()
        .caused_by(Unprinted(why_cause(err)))
}

/// tokio-postgres's words for `err` and its causes, on one line: "error connecting to server:
/// Connection refused (os error 111)".
fn causes(err: &postgres::Error) -> String {
    let mut words = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !words.contains(&text) {
            words.push_str(": ");
            words.push_str(&text);
        }
        source = cause.source();
    }
    one_line(&words)
}

fn why_cause(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => one_line(db.message()),
        None => causes(err),
    }
}

/// An engine's message kept as a cause, on one line.
#[derive(Debug)]
struct Unprinted(String);

impl std::fmt::Display for Unprinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unprinted {}

/// The server's words on one line, bounded and escaped: a message may quote stored text.
fn one_line(words: &str) -> String {
    let flat = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut shown: String = flat.chars().take(200).collect();
    if shown.len() < flat.len() {
        shown.push_str("...");
    }
    crate::text::escape_unsafe(&crate::text::redact_tokens(&shown)).into_owned()
}
