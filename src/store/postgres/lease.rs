//! Leases: how `autheona serve` answers a token from a row it read earlier, sparing the store
//! its round trip, and still never admits a token after the command that refused it returned,
//! on any of the servers running on the store.
//!
//! A server may answer from the rows it remembers ([`Known`]) only while it holds a lease in
//! `autheona.servers`, renewed every [`RENEW_EVERY`] for [`LEASE`] on the database's clock;
//! it counts its own lease from before it asked for it, on its own clock, so that its lease
//! always ends before the database's record of it does. Every change that can refuse a token
//! (revoke, rotate, prune, a project deleted, or anyone's `UPDATE` or `DELETE` of those rows)
//! is announced on [`CHANNEL`] by a trigger, in the change's own transaction; a server that
//! hears an announcement forgets every row it remembers. The command that made the change then
//! announces a number of the `autheona.changes` sequence ([`tell_servers`]) and waits until
//! every server whose lease is live has acknowledged that number, which a server does only
//! after it forgot its rows, the change's announcement having reached it first (PostgreSQL
//! delivers notifications in the order their transactions committed). A server that has not
//! acknowledged within [`ACK_WAIT`] is marked evicted, so that its lease is never renewed
//! again, and the command waits out the lease it may still hold. So the command returns only
//! once no server can answer from a row read before the change.
//!
//! A row read for a request is remembered only if nothing was forgotten since the read was
//! asked ([`Known::remember`]): a lookup that started before a change and answered after it
//! cannot put the old row back. A lease that lapsed (a connection lost, a renewal late) is
//! never picked up again as it was: everything is forgotten first, since an announcement may
//! have been missed meanwhile.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lru::LruCache;
use postgres::types::Type;
use postgres::{Client, SimpleQueryMessage};
use rand::TryRng;
use rand::rngs::SysRng;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio_postgres::Notification;

use super::{Target, statement_error};
use crate::store::{StoreError, StoreErrorKind, VerifyRow};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// The channel on which changes are announced.
pub const CHANNEL: &str = "autheona_changes";
/// What a server's check that it hears announcements says on the channel, before a random
/// word.
const HEARD: &str = "heard ";

/// How long a lease lasts once renewed.
pub const LEASE: Duration = Duration::from_secs(2);
/// [`LEASE`], in SQL.
const LEASE_SQL: &str = "interval '2 seconds'";
/// How often a server renews its lease.
const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How long a renewal, or any other statement of the lease's connection, may take: then the
/// connection is given up and made again.
const RENEW_WAIT: Duration = Duration::from_secs(1);
/// How long a change waits for the servers to acknowledge it before it evicts those that did
/// not.
pub const ACK_WAIT: Duration = Duration::from_secs(1);
/// How long a server waits to hear its own check on the channel before it concludes that
/// announcements do not reach it, for good.
const HEARING_WAIT: Duration = Duration::from_secs(5);
/// How long the lease's connection may take to be made.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// After a lease could not be had, the next try is this much later.
const RETRY: Duration = Duration::from_secs(1);

/// The servers a change waits for: not evicted, their lease live on the database's clock (or
/// ended less than a second ago: a margin for that clock's steps).
const LIVE: &str = "NOT evicted AND lease_until > now() - interval '1 second'";

/// Announces a change that just committed to the servers running on the store, and waits
/// until every one of them knows (the module's comment): a few milliseconds, or [`ACK_WAIT`]
/// and a [`LEASE`] when a server does not answer. When the announcement itself fails (the
/// connection lost, a role that may not use `autheona.changes`), the change's own
/// announcement has still reached every server that holds a lease: it waits a [`LEASE`], after
/// which any server that did not hear it has lost its lease.
pub fn tell_servers(client: &mut Client) {
    let started = Instant::now();
    if !matches!(announce_and_wait(client, started), Ok(true)) {
        std::thread::sleep(LEASE);
    }
}

/// [`tell_servers`]'s work: whether every server acknowledged (`false`: one was evicted, its
/// lease to be waited out).
fn announce_and_wait(client: &mut Client, started: Instant) -> PgResult<bool> {
    let row = client.query_typed_one(
        &format!(
            "SELECT n.n, (SELECT count(*) FROM autheona.servers WHERE {LIVE})
             FROM (SELECT nextval('autheona.changes') AS n) n,
                  LATERAL (SELECT pg_notify('{CHANNEL}', n.n::text)) announced"
        ),
        &[],
    )?;
    let (change, mut waiting): (i64, i64) = (row.get(0), row.get(1));
    let mut pause = Duration::from_micros(250);
    while waiting > 0 {
        if started.elapsed() >= ACK_WAIT {
            let evicted = client.execute_typed(
                &format!("UPDATE autheona.servers SET evicted = true WHERE {LIVE} AND acked < $1"),
                &[(&change, Type::INT8)],
            )?;
            return Ok(evicted == 0);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(4));
        waiting = client
            .query_typed_one(
                &format!("SELECT count(*) FROM autheona.servers WHERE {LIVE} AND acked < $1"),
                &[(&change, Type::INT8)],
            )?
            .get(0);
    }
    Ok(true)
}

/// The rows a server may answer from while its lease holds, the least recently used forgotten
/// first.
pub struct Known {
    /// What `until` counts from.
    base: Instant,
    /// Until when the rows may be used, in nanoseconds after `base`; 0: not now.
    until: AtomicU64,
    rows: Option<Mutex<Rows>>,
}

struct Rows {
    /// How many times everything was forgotten.
    generation: u64,
    rows: LruCache<String, VerifyRow>,
}

impl Known {
    /// Room for `size` rows; 0 remembers none.
    pub fn new(size: usize) -> Known {
        Known {
            base: Instant::now(),
            until: AtomicU64::new(0),
            rows: NonZeroUsize::new(size).map(|size| {
                Mutex::new(Rows {
                    generation: 0,
                    rows: LruCache::new(size),
                })
            }),
        }
    }

    /// Whether any row is ever remembered.
    pub fn remembers(&self) -> bool {
        self.rows.is_some()
    }

    /// The row of token `id`, if it is remembered and the lease holds.
    pub fn row(&self, id: &str) -> Option<VerifyRow> {
        let mut rows = self.lock()?;
        if !self.holds() {
            return None;
        }
        rows.rows.get(id).cloned()
    }

    /// What to hand [`Known::remember`] with a row whose lookup is asked now.
    pub fn generation(&self) -> u64 {
        self.lock().map_or(0, |rows| rows.generation)
    }

    /// Remembers `row` as token `id`'s, read by a lookup asked at `generation`: unless
    /// something was forgotten since (the row may be older than that), or the lease does not
    /// hold.
    pub fn remember(&self, id: &str, row: &VerifyRow, generation: u64) {
        if let Some(mut rows) = self.lock()
            && rows.generation == generation
            && self.holds()
        {
            rows.rows.put(id.to_owned(), row.clone());
        }
    }

    /// Forgets every row: a change was announced.
    fn forget(&self) {
        if let Some(mut rows) = self.lock() {
            rows.forget();
        }
    }

    /// The lease holds until `until`: after forgetting everything if it had lapsed.
    fn hold_until(&self, until: Instant) {
        // Under the lock: no row is remembered between the check and the new end.
        let mut rows = self.lock();
        if let Some(rows) = rows.as_mut().filter(|_| !self.holds()) {
            rows.forget();
        }
        let nanos = until.saturating_duration_since(self.base).as_nanos();
        self.until.store(
            u64::try_from(nanos).unwrap_or(u64::MAX).max(1),
            Ordering::Release,
        );
    }

    /// The lease is lost, and everything forgotten.
    fn lapse(&self) {
        let rows = self.lock();
        self.until.store(0, Ordering::Release);
        if let Some(mut rows) = rows {
            rows.forget();
        }
    }

    fn holds(&self) -> bool {
        let until = self.until.load(Ordering::Acquire);
        until != 0 && (self.base.elapsed().as_nanos() as u64) < until
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, Rows>> {
        Some(
            self.rows
                .as_ref()?
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

impl Rows {
    fn forget(&mut self) {
        self.rows.clear();
        self.generation += 1;
    }
}

/// Why a lease ended.
enum Ended {
    /// The server stops.
    Stopping,
    /// A change waited too long for this server, which may not renew its lease any more.
    Evicted,
    /// Announcements do not reach this server's connection (a transaction pooler between).
    Unheard,
    /// The connection failed, or did not answer in time.
    Failed(StoreError),
}

/// How the server's operator is told of its lease: a warning when the rows cannot be used, a
/// status line when they can again.
#[derive(Clone, Copy)]
pub struct Say {
    pub warning: fn(&str),
    pub status: fn(&str),
}

/// Holds a lease for `known` on the store at `target` until `stopping`, taking a new one
/// whenever one ends, and tells the operator through `say`.
pub async fn keep(
    target: Target,
    known: std::sync::Arc<Known>,
    mut stopping: watch::Receiver<bool>,
    say: Say,
) {
    let mut failing = false;
    loop {
        let taken = tokio::select! {
            taken = Lease::take(&target, &known) => taken,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let ended = match taken {
            Ok(mut lease) => {
                if std::mem::take(&mut failing) {
                    (say.status)("autheona serve: holds a lease on the store again");
                }
                let ended = lease.keep(&known, &mut stopping).await;
                known.lapse();
                lease.end(&ended).await;
                ended
            }
            Err(ended) => ended,
        };
        match ended {
            Ended::Stopping => return,
            Ended::Unheard => {
                (say.warning)(&format!(
                    "the store's announcements ({CHANNEL}) do not reach this \
                     server (a transaction pooler in between?): every request reads its \
                     token's row; connect it to the database directly, or through a session \
                     pool"
                ));
                return;
            }
            Ended::Evicted => (say.warning)(
                "a change to the store waited a second for this server: its \
                 lease was ended, and it reads every row again",
            ),
            Ended::Failed(err) if !failing => {
                failing = true;
                (say.warning)(&format!(
                    "cannot hold a lease on the store, so every request reads \
                     its token's row until it can: {err}"
                ));
            }
            Ended::Failed(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// A lease held: its row's id, on a connection that listens for announcements.
struct Lease {
    target: Target,
    client: tokio_postgres::Client,
    running: tokio::task::JoinHandle<()>,
    heard: UnboundedReceiver<Notification>,
    id: i64,
}

impl Lease {
    /// Connects, listens, checks that an announcement from another connection is heard, and
    /// takes a lease, the rows being forgotten once it is taken.
    async fn take(target: &Target, known: &Known) -> Result<Lease, Ended> {
        let (client, running, heard) = connected(target, super::connect_listening(target)).await?;
        let mut lease = Lease {
            target: target.clone(),
            client,
            running,
            heard,
            id: 0,
        };
        let listen = format!("LISTEN {CHANNEL}");
        lease.bounded(lease.client.batch_execute(&listen)).await?;

        let word = format!("{HEARD}{:016x}", SysRng.try_next_u64().unwrap_or_default());
        let (other, other_running) = connected(target, super::connect_async(target)).await?;
        let say = format!("SELECT pg_notify('{CHANNEL}', '{word}')");
        let said = lease.bounded(other.batch_execute(&say)).await;
        // Closed as a client should (not aborted: the server would count an abandoned session).
        drop(other);
        let _ = tokio::time::timeout(RENEW_WAIT, other_running).await;
        said?;
        let hearing = async {
            while let Some(note) = lease.heard.recv().await {
                if note.payload() == word {
                    return true;
                }
            }
            false
        };
        if !matches!(tokio::time::timeout(HEARING_WAIT, hearing).await, Ok(true)) {
            return Err(Ended::Unheard);
        }

        // Everything committed before the number read here is older than the rows this lease
        // lets the server keep: they are all read after it is taken (the rows are forgotten
        // then).
        let take = format!(
            "WITH gone AS (DELETE FROM autheona.servers
                           WHERE lease_until < now() - interval '1 minute')
             INSERT INTO autheona.servers (lease_until, acked)
             SELECT now() + {LEASE_SQL}, CASE WHEN is_called THEN last_value ELSE 0 END
             FROM autheona.changes
             RETURNING id"
        );
        let asked = Instant::now();
        let taken = lease.client.query_typed_one(&take, &[]);
        lease.id = lease.bounded(taken).await?.get(0);
        known.lapse();
        known.hold_until(asked + LEASE);
        Ok(lease)
    }

    /// Renews the lease, and acknowledges what it hears, until it ends.
    async fn keep(&mut self, known: &Known, stopping: &mut watch::Receiver<bool>) -> Ended {
        let mut renewals = tokio::time::interval(RENEW_EVERY);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renewals.reset();
        loop {
            let acked = tokio::select! {
                biased;
                _ = stopping.wait_for(|stop| *stop) => return Ended::Stopping,
                note = self.heard.recv() => {
                    let Some(note) = note else {
                        return Ended::Failed(lost(&self.target));
                    };
                    let mut heard = vec![note];
                    while let Ok(note) = self.heard.try_recv() {
                        heard.push(note);
                    }
                    let changes: Vec<Change> = heard.iter().filter_map(change).collect();
                    if changes.is_empty() {
                        continue;
                    }
                    known.forget();
                    match changes.iter().filter_map(|change| change.0).max() {
                        Some(acked) => Some(acked),
                        None => continue,
                    }
                }
                _ = renewals.tick() => None,
            };
            if let Err(ended) = self.renew(known, acked).await {
                return ended;
            }
        }
    }

    /// Renews the lease, acknowledging change number `acked` if given.
    async fn renew(&self, known: &Known, acked: Option<i64>) -> Result<(), Ended> {
        let asked = Instant::now();
        let renew = format!(
            "BEGIN;
             SET LOCAL synchronous_commit = off;
             UPDATE autheona.servers
             SET lease_until = now() + {LEASE_SQL}, acked = greatest(acked, {})
             WHERE id = {} AND NOT evicted
             RETURNING id;
             COMMIT",
            acked.unwrap_or(0),
            self.id
        );
        let messages = self.bounded(self.client.simple_query(&renew)).await?;
        if !messages
            .iter()
            .any(|message| matches!(message, SimpleQueryMessage::Row(_)))
        {
            return Err(Ended::Evicted);
        }
        known.hold_until(asked + LEASE);
        Ok(())
    }

    /// Gives the lease back when the server stops (a second at most), and closes the
    /// connection.
    async fn end(self, ended: &Ended) {
        if matches!(ended, Ended::Stopping) {
            let give_back = format!("DELETE FROM autheona.servers WHERE id = {}", self.id);
            let _ = self.bounded(self.client.batch_execute(&give_back)).await;
        }
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.running).await;
    }

    /// What `statement` returns, if the server answers within [`RENEW_WAIT`].
    async fn bounded<T>(&self, statement: impl Future<Output = PgResult<T>>) -> Result<T, Ended> {
        match tokio::time::timeout(RENEW_WAIT, statement).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(err)) => Err(Ended::Failed(statement_error(&self.target, &err))),
            Err(_) => Err(Ended::Failed(
                StoreError::new(
                    StoreErrorKind::ServerDown,
                    format!(
                        "PostgreSQL {} did not answer within {} s",
                        self.target,
                        RENEW_WAIT.as_secs()
                    ),
                )
                .on_server(),
            )),
        }
    }
}

/// What `connecting` makes, if it does within [`CONNECT_WAIT`].
async fn connected<T>(
    target: &Target,
    connecting: impl Future<Output = crate::store::StoreResult<T>>,
) -> Result<T, Ended> {
    match tokio::time::timeout(CONNECT_WAIT, connecting).await {
        Ok(made) => made.map_err(Ended::Failed),
        Err(_) => Err(Ended::Failed(
            StoreError::new(
                StoreErrorKind::ServerDown,
                format!(
                    "cannot connect to PostgreSQL {target}: no answer within {} s",
                    CONNECT_WAIT.as_secs()
                ),
            )
            .on_server(),
        )),
    }
}

/// A change announced, with the number to acknowledge if it carries one (`None`: a change's
/// own announcement, from the triggers).
struct Change(Option<i64>);

/// The change `note` announces; `None` for a server's check that it hears ([`HEARD`]), which
/// changes nothing.
fn change(note: &Notification) -> Option<Change> {
    let payload = note.payload();
    (!payload.starts_with(HEARD)).then(|| Change(payload.parse().ok()))
}

fn lost(target: &Target) -> StoreError {
    StoreError::new(
        StoreErrorKind::ConnectionLost,
        format!("the connection to PostgreSQL {target} was lost"),
    )
    .on_server()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hash: &str) -> VerifyRow {
        VerifyRow {
            secret_hash: hash.to_owned(),
            project: "demo".to_owned(),
            expires_at: None,
            replacement: None,
        }
    }

    fn held() -> Known {
        let known = Known::new(8);
        known.hold_until(Instant::now() + Duration::from_secs(60));
        known
    }

    #[test]
    fn a_row_is_answered_only_while_the_lease_holds() {
        let known = Known::new(8);
        known.remember("a", &row("h"), known.generation());
        assert!(known.row("a").is_none(), "remembered without a lease");
        known.hold_until(Instant::now() + Duration::from_secs(60));
        known.remember("a", &row("h"), known.generation());
        assert_eq!(known.row("a").map(|row| row.secret_hash), Some("h".into()));
        known.hold_until(Instant::now());
        assert!(known.row("a").is_none(), "answered after the lease ended");
    }

    #[test]
    fn a_lookup_asked_before_a_change_puts_no_row_back() {
        let known = held();
        let asked = known.generation();
        known.forget();
        known.remember("a", &row("old"), asked);
        assert!(known.row("a").is_none());
        known.remember("a", &row("new"), known.generation());
        assert!(known.row("a").is_some());
    }

    #[test]
    fn a_lease_taken_again_after_it_lapsed_starts_with_nothing() {
        let known = held();
        known.remember("a", &row("h"), known.generation());
        let before = known.generation();
        // It lapsed (a renewal late), then a renewal came through.
        known.hold_until(Instant::now());
        known.hold_until(Instant::now() + Duration::from_secs(60));
        assert!(known.row("a").is_none(), "a row from before the lapse");
        assert_ne!(known.generation(), before);
        // A renewal in time keeps what is known.
        known.remember("b", &row("h"), known.generation());
        known.hold_until(Instant::now() + Duration::from_secs(60));
        assert!(known.row("b").is_some());
    }

    #[test]
    fn a_lease_lost_forgets_everything() {
        let known = held();
        let asked = known.generation();
        known.remember("a", &row("h"), asked);
        known.lapse();
        known.hold_until(Instant::now() + Duration::from_secs(60));
        assert!(known.row("a").is_none());
        known.remember("a", &row("h"), asked);
        assert!(known.row("a").is_none(), "a lookup from before the loss");
    }

    #[test]
    fn nothing_is_remembered_with_no_room() {
        let known = Known::new(0);
        known.hold_until(Instant::now() + Duration::from_secs(60));
        known.remember("a", &row("h"), known.generation());
        assert!(!known.remembers());
        assert!(known.row("a").is_none());
    }
}
