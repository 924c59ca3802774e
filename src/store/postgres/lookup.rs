//! verify's lookup of a token's row, on a connection that makes it again and again: prepared
//! once, so that the server parses and plans the join once per connection rather than once per
//! request, which was most of the server's work for a cached answer (benches/README.md,
//! finding 24). Two ways in: [`Lookup`], on a blocking connection (`scan`'s, from its second
//! token; the first lookup on a connection, all that a command's `verify` makes, is sent
//! unnamed, as every other statement), and [`Lookups`], `autheona serve`'s connections, used
//! from its async tasks, each prepared as it connects and shared by the requests of the moment
//! (their statements pipelined on it: no thread between a request and the server).
//!
//! Prepared with SQL's `PREPARE` under a name no other client uses (a random suffix), and run
//! with `EXECUTE`. Through a transaction pooler (PgBouncer), a later `EXECUTE` may reach a
//! server connection where the statement was never prepared: it then fails ("prepared
//! statement does not exist") and the connection goes back to unnamed statements for good; so
//! it does when the `PREPARE` itself is refused. A statement prepared through a pooler stays on
//! its server connection until the pooler closes that (PgBouncer's `server_lifetime`).
//! It can never run another client's statement of the same name, as the protocol-level names
//! (`s0`, `s1`, ...) that every tokio-postgres client gives its statements could.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};

use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, Row, SimpleQueryMessage, SimpleQueryRow};
use rand::TryRng;
use rand::rngs::SysRng;

use super::lease::{self, Known};
use super::{SCHEMA_VERSION, Target, statement_error, unanswered};
use crate::store::{Replacement, StoreError, StoreErrorKind, StoreResult, VerifyRow};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// Tokens' rows for verify, each with its id and its project's name, where `$which`.
macro_rules! rows_where {
    ($which:literal) => {
        concat!(
            "SELECT t.id, t.secret_hash, p.name, t.expires_at, t.replaced_by, t.stops_at
             FROM autheona.tokens t JOIN autheona.projects p ON p.id = t.project_id
             WHERE ",
            $which
        )
    };
}

/// The row of the token $1.
const LOOKUP: &str = rows_where!("t.id = $1");
/// The rows of the tokens in the array $1.
const LOOKUP_ALL: &str = rows_where!("t.id = ANY ($1)");

/// How this connection looks tokens up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No lookup yet.
    Fresh,
    /// One lookup, unnamed: the next one prepares the statement.
    Again,
    /// Prepared under `autheona_verify_` and this number, in hexadecimal.
    Prepared(u64),
    /// Unnamed for good: a prepared statement did not stay (a pooler), or could not be made.
    Unnamed,
}

/// A blocking connection's way of looking tokens up for verify.
#[derive(Debug)]
pub struct Lookup(Cell<State>);

impl Default for Lookup {
    fn default() -> Lookup {
        Lookup(Cell::new(State::Fresh))
    }
}

impl Lookup {
    /// The row of token `id`, with its project's name.
    pub fn find(&self, client: &mut Client, id: &str) -> PgResult<Option<VerifyRow>> {
        match self.0.get() {
            State::Fresh => self.0.set(State::Again),
            State::Again if inlinable(id) => match SysRng.try_next_u64() {
                Ok(suffix) => {
                    let name = name(suffix);
                    let both = format!("PREPARE {name}(text) AS {LOOKUP}; EXECUTE {name}('{id}')");
                    match client.simple_query(&both) {
                        Ok(messages) => {
                            self.0.set(State::Prepared(suffix));
                            return Ok(first(simple_rows(&messages)));
                        }
                        // Refused by the server or a pooler in between (a pooler that takes
                        // no PREPARE, a name taken): unnamed from now on, and for this lookup
                        // too, which meets any error that was not about preparing.
                        Err(err) if err.as_db_error().is_some() => self.0.set(State::Unnamed),
                        Err(err) => return Err(err),
                    }
                }
                Err(_) => self.0.set(State::Unnamed),
            },
            State::Prepared(suffix) if inlinable(id) => {
                match client.simple_query(&execute(suffix, id)) {
                    Err(err) if err.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME) => {
                        self.0.set(State::Unnamed);
                    }
                    done => return done.map(|messages| first(simple_rows(&messages))),
                }
            }
            State::Again | State::Prepared(_) | State::Unnamed => {}
        }
        Ok(client
            .query_typed_opt(LOOKUP, &[(&id, Type::TEXT)])?
            .map(|row| typed_row(&row)))
    }
}

/// `autheona serve`'s connections to a PostgreSQL store, for verify's lookup and the server's
/// clock, asked from async tasks. Each connection is a line, a task on one runtime: it takes
/// every lookup that waits for it, all at once, and finds their rows in one statement (`id =
/// ANY (...)`), whose parsing, planning, transaction and round trip are then paid once for all
/// the requests of that moment instead of once each, which is most of what a lookup costs the
/// server (benches/README.md, finding 27). No lookup is answered from a statement already
/// under way: a request's lookup is taken by its line after the request came, and the
/// statement it is in sent after that, so it sees every change that committed before the
/// request came (every revoke that returned), as a lookup of its own would.
///
/// While the server holds a lease on the store ([`super::lease`]), a token whose row a lookup
/// found is answered from that row after, with no statement at all, until a change is
/// announced; every command that can refuse a token waits until each server has heard it.
///
/// A connection that fails is made again for the lookups after: a server restarted, or a
/// connection cut, costs the requests of that moment, never the ones after. A server that
/// stops answering costs each request [`STORE_WAIT`] at most.
pub struct Lookups {
    lines: Vec<UnboundedSender<Ask>>,
    /// The rows the lookups may be answered from, while the server holds a lease.
    known: Arc<Known>,
    /// How many runtimes the lines are spread over.
    homes: usize,
    next: AtomicUsize,
    /// Set to end the lines.
    stop: watch::Sender<bool>,
    /// The lines' tasks, until they are waited for.
    running: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What a request asks of a line, when, and where the answer goes.
struct Ask {
    asked: Instant,
    question: Question,
}

enum Question {
    Find(String, oneshot::Sender<StoreResult<Option<VerifyRow>>>),
    Clock(oneshot::Sender<StoreResult<i64>>),
}

/// The most lookups a line takes at once for one statement (those that gather while its
/// connection is made again all go in the first statement on it).
const MOST_AT_ONCE: usize = 64;

/// The longest a request waits for the store: for the statement its lookup is in, or for its
/// line's connection to be made again; then it gets 503, so that a proxy in front refuses
/// at once instead of waiting on a server that is gone (a host that went away answers
/// nothing, and TCP alone would take its 15 s to say so).
const STORE_WAIT: Duration = Duration::from_secs(2);

/// After a connection could not be made, lookups are refused at once for this long before
/// the next try, the pause doubling at each failure up to [`LONGEST_PAUSE`]; the first
/// success ends it.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

struct Connection {
    client: tokio_postgres::Client,
    /// The connection's own task, which ends once `client` is dropped.
    running: tokio::task::JoinHandle<()>,
    /// The prepared lookup's suffix ([`name`]), if it was made and stayed.
    prepared: Option<u64>,
    /// Whether its statements ask for the generic plan ([`GENERIC`]).
    generic: bool,
}

/// What each prepared lookup is sent after, in the same query: PostgreSQL plans a prepared
/// statement anew at every execution for as long as a plan made for its values looks cheaper
/// than the generic one, and it costs the generic plan of `id = ANY ($1)` for 10 ids, more than
/// most statements hold; so, left to choose, it planned the join again for every statement
/// (benches/README.md, finding 30), the work that preparing was to spare. The generic plan is
/// the one every statement wants (the unique index on the ids, then the project's row).
/// `LOCAL` holds for the query's own transaction only: nothing stays on a connection that a
/// pooler gives to other clients after.
const GENERIC: &str = "SET LOCAL plan_cache_mode = force_generic_plan; ";

impl Lookups {
    /// `connections` lines to the store at `target`, their connections all made now: a store
    /// that cannot be reached is an error at once, not at the first request. Each line runs
    /// on one of `homes` (at least one) in turn (the line `i` on `homes[i % homes.len()]`),
    /// its connection made there: a request asks only the lines of its own runtime, or all
    /// of them when its runtime has none ([`line_for`]).
    pub async fn open(
        target: &Target,
        connections: usize,
        homes: &[tokio::runtime::Handle],
        remember: usize,
        say: lease::Say,
    ) -> StoreResult<Lookups> {
        assert!(!homes.is_empty(), "lines need a runtime to run on");
        let (stop, stopping) = watch::channel(false);
        let lookups = Lookups {
            lines: Vec::new(),
            known: Arc::new(Known::new(remember)),
            homes: homes.len(),
            next: AtomicUsize::new(0),
            stop,
            running: std::sync::Mutex::new(Vec::new()),
        };
        let mut lines = Vec::new();
        for index in 0..connections.max(1) {
            let (asks, taken) = tokio::sync::mpsc::unbounded_channel();
            let (made, connected) = oneshot::channel();
            let (target, stopping) = (target.clone(), stopping.clone());
            let running = homes[index % homes.len()].spawn(async move {
                match Connection::make(&target).await {
                    Ok(connection) => {
                        let _ = made.send(Ok(()));
                        line(target, Some(connection), taken, stopping).await;
                    }
                    Err(err) => drop(made.send(Err(err))),
                }
            });
            lookups
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(running);
            // A line that could not connect is an error; the lines made before it end, and
            // close their connections, once `lines` and `lookups.stop` are dropped.
            connected.await.unwrap_or_else(|_| Err(closed()))?;
            lines.push(asks);
        }
        if lookups.known.remembers() {
            let keeping = lease::keep(target.clone(), lookups.known.clone(), stopping, say);
            let keeping = homes[0].spawn(keeping);
            lookups
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(keeping);
        }
        Ok(Lookups { lines, ..lookups })
    }

    /// How many connections there are.
    pub fn connections(&self) -> usize {
        self.lines.len()
    }

    /// The row of token `id`, with its project's name, asked from the runtime `home` (an
    /// index into the `homes` the lookups were opened with).
    pub async fn find(&self, id: &str, home: usize) -> StoreResult<Option<VerifyRow>> {
        if let Some(row) = self.known.row(id) {
            return Ok(Some(row));
        }
        let generation = self.known.generation();
        let (answer, answered) = oneshot::channel();
        self.ask(Question::Find(id.to_owned(), answer), home);
        let found = answered.await.unwrap_or_else(|_| Err(closed()));
        if let Ok(Some(row)) = &found {
            self.known.remember(id, row, generation);
        }
        found
    }

    /// The server's clock, in unix seconds, asked from the runtime `home`.
    pub async fn clock(&self, home: usize) -> StoreResult<i64> {
        let (answer, answered) = oneshot::channel();
        self.ask(Question::Clock(answer), home);
        answered.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Ends the lines, each once it has answered what it holds, and closes their connections.
    /// What is asked after that is answered with [`closed`].
    pub async fn close(&self) {
        self.stop.send_replace(true);
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|e| e.into_inner()));
        for line in running {
            let _ = line.await;
        }
    }

    /// Hands `ask` to a line, in turn among those that run on `home` (among all, when there
    /// are fewer lines than runtimes); an ask no line takes is answered, by its dropped
    /// sender, with [`closed`].
    fn ask(&self, question: Question, home: usize) {
        let turn = || self.next.fetch_add(1, Ordering::Relaxed);
        let line = &self.lines[line_for(home, turn, self.homes, self.lines.len())];
        let asked = Instant::now();
        let _ = line.send(Ask { asked, question });
    }
}

/// The line a request from runtime `home` asks at its `turn`, of `lines` spread over `homes`
/// runtimes (the line `i` on `i % homes`): its own runtime's lines in turn, or, when that has
/// none, all of them in turn. The turn, a counter all runtimes share, is taken only when there
/// is more than one line to choose from.
fn line_for(home: usize, turn: impl FnOnce() -> usize, homes: usize, lines: usize) -> usize {
    let home = home % homes;
    match lines.saturating_sub(home).div_ceil(homes) {
        0 if lines == 1 => 0,
        0 => turn() % lines,
        1 => home,
        own => home + homes * (turn() % own),
    }
}

/// The answer to a request asked while `autheona serve` stops.
fn closed() -> StoreError {
    StoreError::new(StoreErrorKind::ConnectionLost, "autheona serve is stopping").on_server()
}

/// One line: everything that waits is taken at once (up to [`MOST_AT_ONCE`]) and answered,
/// the lookups in one statement; the connection is made again when it is not there.
async fn line(
    target: Target,
    mut connection: Option<Connection>,
    mut asks: UnboundedReceiver<Ask>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut taken = Vec::with_capacity(MOST_AT_ONCE);
    let mut down = None;
    loop {
        let count = tokio::select! {
            biased;
            count = asks.recv_many(&mut taken, MOST_AT_ONCE) => count,
            _ = stopping.wait_for(|stop| *stop) => 0,
        };
        if count == 0 {
            break;
        }
        let mut open = match connection.take() {
            Some(open) => open,
            None => {
                let again = Reconnect {
                    target: &target,
                    asks: &mut asks,
                    stopping: &mut stopping,
                };
                match again.run(&mut taken, &mut down).await {
                    Some(open) => open,
                    None => continue,
                }
            }
        };
        // A connection that failed is let go: the next lookups get a new one.
        if open.answer(&target, &mut taken).await {
            connection = Some(open);
        } else {
            open.running.abort();
        }
    }
    if let Some(open) = connection {
        open.close().await;
    }
}

/// Why a line has no connection, and until when it does not try again.
struct Down {
    error: StoreError,
    until: Instant,
    pause: Duration,
}

/// A line's connection being made again, while requests keep asking.
struct Reconnect<'a> {
    target: &'a Target,
    asks: &'a mut UnboundedReceiver<Ask>,
    stopping: &'a mut watch::Receiver<bool>,
}

impl Reconnect<'_> {
    /// A new connection for the asks in `taken`, which it answers only when it fails: at once
    /// while the line pauses after a failure (`down`), else when the try fails. Asks that
    /// come meanwhile join `taken`; each waits [`STORE_WAIT`] at most, and once the try has
    /// taken that long the asks that come are refused at once.
    async fn run(self, taken: &mut Vec<Ask>, down: &mut Option<Down>) -> Option<Connection> {
        if let Some(down) = down.as_ref().filter(|down| Instant::now() < down.until) {
            fail_all(taken, &down.error);
            return None;
        }
        if *self.stopping.borrow() {
            fail_all(taken, &closed());
            return None;
        }
        let started = Instant::now();
        let making = Connection::make(self.target);
        tokio::pin!(making);
        let mut open = true;
        loop {
            let oldest = taken.iter().map(|ask| ask.asked).min();
            let late = oldest.map(|asked| tokio::time::Instant::from_std(asked + STORE_WAIT));
            tokio::select! {
                biased;
                made = &mut making => {
                    return match made {
                        Ok(connection) => {
                            *down = None;
                            Some(connection)
                        }
                        Err(error) => {
                            fail_all(taken, &error);
                            let pause = down
                                .as_ref()
                                .map_or(FIRST_PAUSE, |down| (down.pause * 2).min(LONGEST_PAUSE));
                            let until = Instant::now() + pause;
                            *down = Some(Down { error, until, pause });
                            None
                        }
                    };
                }
                _ = self.stopping.wait_for(|stop| *stop) => {
                    fail_all(taken, &closed());
                    return None;
                }
                _ = tokio::time::sleep_until(late.unwrap_or_else(tokio::time::Instant::now)),
                    if late.is_some() =>
                {
                    fail_overdue(taken, self.target);
                }
                count = self.asks.recv_many(taken, MOST_AT_ONCE), if open => {
                    open = count > 0;
                    if started.elapsed() >= STORE_WAIT {
                        let mut fresh = taken.split_off(taken.len() - count);
                        fail_all(&mut fresh, &unanswered(self.target, STORE_WAIT));
                    }
                }
            }
        }
    }
}

/// Answers every ask in `asks`, which it empties, with `err`.
fn fail_all(asks: &mut Vec<Ask>, err: &StoreError) {
    for ask in asks.drain(..) {
        ask.fail(err.clone());
    }
}

/// What `statement`, made for `asks`, returns if the server answers within [`STORE_WAIT`] of
/// its start; meanwhile each ask that has waited [`STORE_WAIT`] since it was asked is failed
/// and taken out of `asks`.
async fn bounded<T>(
    target: &Target,
    asks: &mut Vec<Ask>,
    statement: impl Future<Output = PgResult<T>>,
) -> StoreResult<T> {
    let end = Instant::now() + STORE_WAIT;
    tokio::pin!(statement);
    loop {
        let next = asks
            .iter()
            .map(|ask| ask.asked + STORE_WAIT)
            .fold(end, Instant::min);
        tokio::select! {
            biased;
            done = &mut statement => return done.map_err(|err| statement_error(target, &err)),
            _ = tokio::time::sleep_until(next.into()) => {
                if Instant::now() >= end {
                    return Err(unanswered(target, STORE_WAIT));
                }
                fail_overdue(asks, target);
            }
        }
    }
}

/// Fails, and takes out of `asks`, every ask that has waited [`STORE_WAIT`].
fn fail_overdue(asks: &mut Vec<Ask>, target: &Target) {
    let now = Instant::now();
    let (mut waited, waiting): (Vec<Ask>, Vec<Ask>) = std::mem::take(asks)
        .into_iter()
        .partition(|ask| ask.asked + STORE_WAIT <= now);
    *asks = waiting;
    fail_all(&mut waited, &unanswered(target, STORE_WAIT));
}

impl Ask {
    fn id(&self) -> Option<&str> {
        match &self.question {
            Question::Find(id, _) => Some(id),
            Question::Clock(_) => None,
        }
    }

    fn fail(self, err: StoreError) {
        match self.question {
            Question::Find(_, answer) => drop(answer.send(Err(err))),
            Question::Clock(answer) => drop(answer.send(Err(err))),
        }
    }
}

impl Connection {
    /// Connects, checks the schema's version and sets the session's timeouts, then prepares
    /// the lookup (or, refused, goes without).
    async fn make(target: &Target) -> StoreResult<Connection> {
        let (client, running) = super::connect_async(target).await?;
        // Logged in; what follows is bounded as every statement of a line is.
        match tokio::time::timeout(STORE_WAIT, Self::set_up(target, &client)).await {
            Ok(Ok(prepared)) => Ok(Connection {
                client,
                running,
                prepared,
                generic: true,
            }),
            Ok(Err(err)) => {
                running.abort();
                Err(err)
            }
            Err(_) => {
                running.abort();
                Err(unanswered(target, STORE_WAIT))
            }
        }
    }

    /// Checks the schema's version and sets the session's timeouts, then prepares the
    /// lookup: the suffix of its name, or `None` when the server refused it.
    async fn set_up(target: &Target, client: &tokio_postgres::Client) -> StoreResult<Option<u64>> {
        let failed = |err: postgres::Error| statement_error(target, &err);
        let rows = client
            .simple_query(&super::session_query())
            .await
            .map_err(failed)?;
        let version = super::session_rows(&rows)
            .first()
            .and_then(|row| row.map(|(version, _)| version));
        if version != Some(SCHEMA_VERSION) {
            return Err(StoreError::new(
                StoreErrorKind::NotOurs,
                format!(
                    "PostgreSQL database {target} holds schema version {}, not this autheona's \
                     ({SCHEMA_VERSION}): restart the server with the autheona it was made for",
                    version.map_or_else(|| "none".to_owned(), |v| v.to_string())
                ),
            )
            .on_server());
        }
        let Ok(suffix) = SysRng.try_next_u64() else {
            return Ok(None);
        };
        let prepare = format!("PREPARE {}(text[]) AS {LOOKUP_ALL}", name(suffix));
        match client.simple_query(&prepare).await {
            Ok(_) => Ok(Some(suffix)),
            Err(err) if err.as_db_error().is_some() => Ok(None),
            Err(err) => Err(failed(err)),
        }
    }

    /// Lets the server know the connection ends, and waits until it has (a second at most).
    async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.running).await;
    }

    /// Answers `asks`, which it empties, the lookups in one statement and the clocks in one
    /// more; whether the connection still works. An ask still waiting [`STORE_WAIT`] after it
    /// was asked is failed then; a statement the server does not answer within
    /// [`STORE_WAIT`] fails the asks left, and the connection with it.
    async fn answer(&mut self, target: &Target, asks: &mut Vec<Ask>) -> bool {
        let (mut finds, mut clocks): (Vec<Ask>, Vec<Ask>) = asks
            .drain(..)
            .partition(|ask| matches!(ask.question, Question::Find(..)));
        let mut broken = None;
        if !finds.is_empty() {
            let ids: Vec<String> = finds
                .iter()
                .filter_map(Ask::id)
                .map(str::to_owned)
                .collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let found = bounded(target, &mut finds, self.find_all(&ids)).await;
            match found {
                Ok(rows) => {
                    for ask in finds {
                        if let Question::Find(id, answer) = ask.question {
                            let row = rows.iter().find(|(of, _)| *of == id);
                            let _ = answer.send(Ok(row.map(|(_, row)| row.clone())));
                        }
                    }
                }
                Err(err) => {
                    fail_all(&mut finds, &err);
                    broken = Some(err);
                }
            }
        }
        if !clocks.is_empty() {
            let read = match &broken {
                Some(err) => Err(err.clone()),
                None => {
                    let asked = self
                        .client
                        .query_typed_one("SELECT extract(epoch FROM now())::int8", &[]);
                    bounded(target, &mut clocks, asked).await
                }
            };
            let read = read.map(|row| row.get::<_, i64>(0));
            for ask in clocks {
                if let Question::Clock(answer) = ask.question {
                    let _ = answer.send(read.clone());
                }
            }
            broken = broken.or(read.err());
        }
        broken.is_none()
    }

    /// The rows of the tokens `ids` that exist, each with its id.
    async fn find_all(&mut self, ids: &[&str]) -> PgResult<Vec<(String, VerifyRow)>> {
        while let Some(suffix) = self.prepared
            && ids.iter().all(|id| inlinable(id))
        {
            let execute = format!(
                "{}EXECUTE {}('{{{}}}')",
                if self.generic { GENERIC } else { "" },
                name(suffix),
                ids.join(",")
            );
            match self.client.simple_query(&execute).await {
                Err(err) if err.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME) => {
                    self.prepared = None;
                }
                // A server before PostgreSQL 12 has no plan_cache_mode: it plans as it does.
                Err(err) if self.generic && err.code() == Some(&SqlState::UNDEFINED_OBJECT) => {
                    self.generic = false;
                }
                done => return done.map(|messages| simple_rows(&messages)),
            }
        }
        let rows = self
            .client
            .query_typed(LOOKUP_ALL, &[(&ids, Type::TEXT_ARRAY)])
            .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), typed_row(row)))
            .collect())
    }
}

/// Whether `id` may be written into a statement: only when it has a token id's shape, which
/// every id verify asks for has (it was parsed from a token first).
fn inlinable(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn name(suffix: u64) -> String {
    format!("autheona_verify_{suffix:016x}")
}

/// The prepared lookup of `id`, whose shape [`inlinable`] checked.
fn execute(suffix: u64, id: &str) -> String {
    format!("EXECUTE {}('{id}')", name(suffix))
}

/// A row of [`rows_where`], but its id.
fn typed_row(row: &Row) -> VerifyRow {
    VerifyRow {
        secret_hash: row.get(1),
        project: row.get(2),
        expires_at: row.get(3),
        replacement: Replacement::from_columns(row.get(4), row.get(5)),
    }
}

/// The rows of [`rows_where`] a simple query's statements returned, read from their text,
/// each with its id. A value that does not read as its column's type (never, from these
/// columns) leaves its row out: the token is then unknown, never valid for longer than it is.
fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<(String, VerifyRow)> {
    let read = |row: &SimpleQueryRow| {
        let number = |i: usize| match row.get(i) {
            None => Some(None),
            Some(text) => text.parse::<i64>().ok().map(Some),
        };
        let found = VerifyRow {
            secret_hash: row.get(1)?.to_owned(),
            project: row.get(2)?.to_owned(),
            expires_at: number(3)?,
            replacement: Replacement::from_columns(row.get(4).map(str::to_owned), number(5)?),
        };
        Some((row.get(0)?.to_owned(), found))
    };
    messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => read(row),
            _ => None,
        })
        .collect()
}

/// The one row a lookup of one id returned, if any.
fn first(rows: Vec<(String, VerifyRow)>) -> Option<VerifyRow> {
    rows.into_iter().next().map(|(_, row)| row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::conninfo::{Host, SslMode};
    use std::collections::BTreeSet;

    /// A line to a "server" that closes every connection at once, and how many it took.
    fn line_to_a_closing_server() -> (UnboundedSender<Ask>, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = tries.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        let target = Target {
            host: Host::Tcp("127.0.0.1".into()),
            port,
            user: "someone".into(),
            dbname: "db".into(),
            password: None,
            passfile: None,
            warning: None,
            sslmode: SslMode::Disable,
            root_cert: None,
            root_cert_given: false,
            connect_timeout: Some(Duration::from_secs(5)),
            application_name: "autheona".into(),
        };
        let (asks, taken) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopping) = watch::channel(false);
        tokio::spawn(async move {
            line(target, None, taken, stopping).await;
            drop(stop);
        });
        (asks, tries)
    }

    async fn clock(line: &UnboundedSender<Ask>) -> StoreResult<i64> {
        let (answer, answered) = oneshot::channel();
        let question = Question::Clock(answer);
        line.send(Ask {
            asked: Instant::now(),
            question,
        })
        .unwrap();
        answered.await.unwrap()
    }

    #[tokio::test]
    async fn after_a_failed_connection_a_line_refuses_at_once_for_a_pause_that_doubles() {
        let (line, tries) = line_to_a_closing_server();
        let tried = || tries.load(Ordering::SeqCst);
        assert!(clock(&line).await.is_err());
        assert_eq!(tried(), 1);
        assert!(clock(&line).await.is_err());
        assert_eq!(tried(), 1, "refused within the pause, without a try");
        // Each wait outlasts the pause it follows (a slow machine only makes it longer).
        tokio::time::sleep(FIRST_PAUSE + Duration::from_millis(50)).await;
        assert!(clock(&line).await.is_err());
        assert_eq!(tried(), 2, "tried again after the pause");
        tokio::time::sleep(2 * FIRST_PAUSE + Duration::from_millis(50)).await;
        assert!(clock(&line).await.is_err());
        assert_eq!(tried(), 3, "tried again after the doubled pause");
        // The pause is now four times the first: a wait of one and a half is within it.
        tokio::time::sleep(FIRST_PAUSE + Duration::from_millis(50)).await;
        assert!(clock(&line).await.is_err());
        assert_eq!(tried(), 3, "refused within the pause, which doubled again");
    }

    /// The lines each of `homes` runtimes asks, over many turns.
    fn asked(homes: usize, lines: usize) -> Vec<BTreeSet<usize>> {
        (0..homes)
            .map(|home| {
                (0..100)
                    .map(|turn| line_for(home, || turn, homes, lines))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_request_asks_the_lines_of_its_own_runtime_in_turn() {
        // Two runtimes, four lines: 0 and 2 on the first, 1 and 3 on the second.
        assert_eq!(
            asked(2, 4),
            [BTreeSet::from([0, 2]), BTreeSet::from([1, 3])]
        );
        assert_eq!(asked(2, 2), [BTreeSet::from([0]), BTreeSet::from([1])]);
        assert_eq!(asked(1, 3), [BTreeSet::from([0, 1, 2])]);
        // Lines that do not divide among the runtimes: still each its own.
        assert_eq!(asked(2, 3), [BTreeSet::from([0, 2]), BTreeSet::from([1])]);
    }

    #[test]
    fn with_fewer_lines_than_runtimes_every_line_is_asked() {
        assert_eq!(asked(4, 1), vec![BTreeSet::from([0]); 4]);
        // The fourth runtime has no line: it asks them all; the others their own.
        assert_eq!(
            asked(4, 3),
            [
                BTreeSet::from([0]),
                BTreeSet::from([1]),
                BTreeSet::from([2]),
                BTreeSet::from([0, 1, 2])
            ]
        );
    }
}
