//! Leases: how `autheona serve` answers a token from a row it read earlier, sparing the store
//! its round trip, and still never admits a token after the command that refused it returned,
//! on any of the servers running on the store.
//!
//! A server may answer from the rows it remembers ([`Known`]) only while it holds a lease in
//! `autheona.servers`, renewed every [`RENEW_EVERY`] for [`LEASE`] on the database's clock;
//! it counts its own lease from before it asked for it, on its boot clock, so that its lease
//! always ends before the database's record of it does, and a lease the database holds as
//! ended is never renewed. Every change that can refuse a token (revoke, rotate, prune, a
//! project deleted, or anyone's `UPDATE` or `DELETE` of those rows) is announced on
//! [`CHANNEL`] by a trigger, in the change's own transaction; a server that hears an
//! announcement forgets every row it remembers. The command that made the change then
//! announces a number of the `autheona.changes` sequence ([`tell_servers`]) and waits until
//! every server whose lease is live has acknowledged that number or a later one. A server,
//! when it hears such an announcement, reads the last number from the database, then forgets
//! its rows, then acknowledges what it read: every change numbered up to it committed before
//! the rows were forgotten (the number in the announcement, which any client may send, is not
//! trusted). A server that has not acknowledged within [`ACK_WAIT`] is marked evicted, so that
//! its lease is never renewed again, and every change waits out the lease it may still hold.
//! So a command returns only once no server can answer from a row read before its change.
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

use super::{Target, statement_error, unanswered};
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
/// How long a statement of the lease's connection may take while the lease is taken or given
/// back: then the connection is given up (and made again).
const RENEW_WAIT: Duration = Duration::from_secs(1);
/// How long a renewal, or the read of the last change it acknowledges, may take: a lease. A
/// slow one only lets the rows lapse meanwhile, since they are answered from until a lease
/// after the last renewal was sent, whenever its answer comes; giving up sooner ends the lease
/// on a machine that is merely busy, and with it every row it read (with a bound of 1 s, the
/// benchmark's server lost its lease 5 times in 8 minutes of full load).
const RENEWAL_WAIT: Duration = LEASE;
/// How long a change waits for the servers to acknowledge it before it evicts those that did
/// not.
pub const ACK_WAIT: Duration = Duration::from_secs(1);
/// How long a server waits to hear its own check on the channel before it concludes that
/// announcements do not reach it.
const HEARING_WAIT: Duration = Duration::from_secs(5);
/// How long the lease's connection may take to be made.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// After a lease could not be had, the next try is this much later.
const RETRY: Duration = Duration::from_secs(1);
/// ... and this much later when announcements were not heard.
const UNHEARD_RETRY: Duration = Duration::from_secs(60);

/// The servers a change may have to wait for: their lease live on the database's clock, or
/// ended less than a second ago (a margin for that clock's steps), evicted or not (an evicted
/// one may still hold the lease it had until that lease ends).
const LIVE: &str = "lease_until > now() - interval '1 second'";

/// How long after this process's eviction returned a server may still be counted: the lease
/// it renewed before, the margin of [`LIVE`], and room for the statements. One counted after
/// that is reported ([`NotTold::Unconfirmed`]).
const STILL_COUNTED: Duration = LEASE.saturating_add(Duration::from_secs(2));

/// Why [`tell_servers`] could not confirm that every server knows of a change.
#[derive(Debug)]
pub enum NotTold {
    /// A statement failed: the connection lost, a role that may not use `autheona.servers`
    /// or `autheona.changes`.
    Statement(postgres::Error),
    /// Servers neither acknowledged nor let their lease end, [`STILL_COUNTED`] after they were
    /// evicted (a database clock that steps back, a lease renewed by hand): this many.
    Unconfirmed(i64),
}

impl From<postgres::Error> for NotTold {
    fn from(err: postgres::Error) -> NotTold {
        NotTold::Statement(err)
    }
}

/// Announces a change that just committed to the servers running on the store, and waits
/// until every one of them knows (the module's comment): a few milliseconds, or about
/// [`ACK_WAIT`] and a [`LEASE`] when a server does not answer. When that cannot be confirmed
/// (a statement failed, or servers are still counted [`STILL_COUNTED`] after the eviction), it
/// waits [`UNTOLD_WAIT`] more instead, then says why: by then every server that heard the
/// change's own announcement has forgotten its rows, and every server that stopped renewing its
/// lease has lost it. (A server that renews its lease and hears nothing, which the check at each
/// lease's start rules out but for a fault that began after it, is then not evicted.)
pub fn tell_servers(client: &mut Client) -> Result<(), NotTold> {
    announce_and_wait(client).inspect_err(|_| std::thread::sleep(UNTOLD_WAIT))
}

/// How long [`tell_servers`] waits when it cannot tell the servers.
const UNTOLD_WAIT: Duration = ACK_WAIT.saturating_add(LEASE);

/// [`tell_servers`]'s work.
fn announce_and_wait(client: &mut Client) -> Result<(), NotTold> {
    let started = Instant::now();
    let row = client.query_typed_one(
        &format!(
            "SELECT n.n, (SELECT count(*) FROM autheona.servers WHERE {LIVE})
             FROM (SELECT nextval('autheona.changes') AS n) n,
                  LATERAL (SELECT pg_notify('{CHANNEL}', n.n::text)) announced"
        ),
        &[],
    )?;
    let (change, mut waiting): (i64, i64) = (row.get(0), row.get(1));
    // Once this process has evicted the servers that did not acknowledge in time: when the
    // eviction returned, and until when it waits out their leases, on its own clock (a
    // server's lease ends within a lease of its last renewal, which came before the eviction
    // returned, however long that took).
    let mut evicted: Option<(Instant, Instant)> = None;
    let mut pause = Duration::from_micros(250);
    loop {
        // Evicted even when the first statement itself took longer than the wait.
        if waiting > 0 && evicted.is_none() && started.elapsed() >= ACK_WAIT {
            let count = client.execute_typed(
                "UPDATE autheona.servers SET evicted = true
                 WHERE lease_until > now() AND acked < $1 AND NOT evicted",
                &[(&change, Type::INT8)],
            )?;
            let at = Instant::now();
            evicted = Some((at, at + if count > 0 { LEASE } else { Duration::ZERO }));
        }
        match evicted {
            None if waiting == 0 => return Ok(()),
            Some((_, until)) if waiting == 0 && Instant::now() >= until => return Ok(()),
            Some((at, _)) if at.elapsed() >= STILL_COUNTED => {
                return Err(NotTold::Unconfirmed(waiting));
            }
            _ => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(4));
        // Those evicted (by this process or another) never acknowledge: they are counted
        // until their lease has ended.
        waiting = client
            .query_typed_one(
                &format!("SELECT count(*) FROM autheona.servers WHERE {LIVE} AND acked < $1"),
                &[(&change, Type::INT8)],
            )?
            .get(0);
    }
}

/// The rows a server may answer from while its lease holds, the least recently used forgotten
/// first.
pub struct Known {
    /// Until when the rows may be used, on [`boot_clock`]; 0: not now.
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
        if !self.holds() {
            return None;
        }
        let mut rows = self.lock()?;
        // Checked again under the lock, which a lapse takes to forget.
        self.holds().then(|| rows.rows.get(id).cloned()).flatten()
    }

    /// What to hand [`Known::remember`] with a row whose lookup is asked now.
    pub fn generation(&self) -> Option<u64> {
        if !self.holds() {
            return None;
        }
        self.lock().map(|rows| rows.generation)
    }

    /// Remembers `row` as token `id`'s, read by a lookup asked at `generation` (`None`: asked
    /// while the lease did not hold): unless something was forgotten since (the row may be
    /// older than that), or the lease does not hold.
    pub fn remember(&self, id: &str, row: &VerifyRow, generation: Option<u64>) {
        if let Some(generation) = generation
            && let Some(mut rows) = self.lock()
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

    /// The lease holds until `until` ([`boot_clock`]): after forgetting everything if it had
    /// lapsed.
    fn hold_until(&self, until: u64) {
        // Under the lock: no row is remembered between the check and the new end.
        let mut rows = self.lock();
        if let Some(rows) = rows.as_mut().filter(|_| !self.holds()) {
            rows.forget();
        }
        self.until.store(until.max(1), Ordering::Release);
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
        until != 0 && boot_clock() < until
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

/// Nanoseconds on the system's boot clock (`CLOCK_BOOTTIME`), monotonic and, unlike
/// `Instant`'s, counting the time the host was suspended: a lease held when a virtual machine
/// was paused has ended when it resumes.
fn boot_clock() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_BOOTTIME exists on Linux
    // since 2.6.39. Should it fail, every lease counts as ended.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return u64::MAX;
    }
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// `duration` in nanoseconds, for [`boot_clock`].
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
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
    /// A change waited too long for this server (or its lease ran out on the database's
    /// clock): it may not renew it any more.
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
/// whenever one ends, and tells the operator through `say`: once when leases cannot be had
/// (the next try a second later, or a minute when announcements were not heard), once when
/// one is held again.
pub async fn keep(
    target: Target,
    known: std::sync::Arc<Known>,
    mut stopping: watch::Receiver<bool>,
    say: Say,
) {
    let mut failing = false;
    // The row of the lease before, if it may still be there: the next one deletes it, so
    // that no change waits for a lease that nothing holds.
    let mut before = None;
    loop {
        let take = Lease::take(&target, &known, before);
        tokio::pin!(take);
        let taken = tokio::select! {
            taken = &mut take => Some(taken),
            _ = stopping.wait_for(|stop| *stop) => None,
        };
        let Some(taken) = taken else {
            // A lease being taken is let finish (a second at most), so that its connections
            // close as a client's should and its row is given back.
            if let Ok(Ok(lease)) = tokio::time::timeout(RENEW_WAIT, &mut take).await {
                known.lapse();
                lease.end(&Ended::Stopping).await;
            }
            return;
        };
        let ended = match taken {
            Ok(mut lease) => {
                if std::mem::take(&mut failing) {
                    (say.status)("autheona serve: holds a lease on the store again");
                }
                let ended = lease.keep(&known, &mut stopping).await;
                known.lapse();
                before = lease.end(&ended).await;
                ended
            }
            Err(ended) => ended,
        };
        let retry = match ended {
            Ended::Stopping => return,
            Ended::Evicted => {
                (say.warning)(
                    "this server's lease on the store was ended (a change waited a second for \
                     it, or it was not renewed in time): it reads every token's row until it \
                     holds a new one",
                );
                RETRY
            }
            Ended::Unheard => {
                if !std::mem::replace(&mut failing, true) {
                    (say.warning)(&format!(
                        "the store's announcements ({CHANNEL}) do not reach this server (a \
                         transaction pooler in between?): every request reads its token's \
                         row; connect it to the database directly, or through a session pool"
                    ));
                }
                UNHEARD_RETRY
            }
            Ended::Failed(err) => {
                if !std::mem::replace(&mut failing, true) {
                    (say.warning)(&format!(
                        "cannot hold a lease on the store, so every request reads its token's \
                         row until it can: {err}"
                    ));
                }
                RETRY
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
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

/// The last change number, in SQL: what a lease acknowledges once the rows are forgotten.
const LAST_CHANGE: &str =
    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM autheona.changes";

impl Lease {
    /// Connects, listens, checks that an announcement from another connection is heard, and
    /// takes a lease (deleting the row of the one `before`), the rows being forgotten once it
    /// is taken.
    async fn take(target: &Target, known: &Known, before: Option<i64>) -> Result<Lease, Ended> {
        let (client, running, heard) = connected(target, super::connect_listening(target)).await?;
        let mut lease = Lease {
            target: target.clone(),
            client,
            running,
            heard,
            id: 0,
        };
        match lease.set_up(known, before).await {
            Ok(()) => Ok(lease),
            Err(ended) => {
                lease.end(&ended).await;
                Err(ended)
            }
        }
    }

    /// [`Lease::take`]'s work once connected.
    async fn set_up(&mut self, known: &Known, before: Option<i64>) -> Result<(), Ended> {
        let target = &self.target.clone();
        let lease = self;
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
                    return Ok(());
                }
            }
            Err(Ended::Failed(lost(target)))
        };
        tokio::time::timeout(HEARING_WAIT, hearing)
            .await
            .map_err(|_| Ended::Unheard)??;

        // Every change numbered up to the number read here committed before it was read, and
        // so before the rows this lease lets the server keep are read: they are all read after
        // it is taken (the rows are forgotten then).
        let take = format!(
            "WITH gone AS (DELETE FROM autheona.servers
                           WHERE lease_until < now() - interval '1 minute' OR id = {})
             INSERT INTO autheona.servers (lease_until, acked)
             SELECT now() + {LEASE_SQL}, ({LAST_CHANGE})
             RETURNING id",
            before.unwrap_or(0)
        );
        let asked = boot_clock();
        let taken = lease.client.query_typed_one(&take, &[]);
        lease.id = lease.bounded(taken).await?.get(0);
        known.lapse();
        known.hold_until(asked.saturating_add(nanos(LEASE)));
        Ok(())
    }

    /// Renews the lease, and acknowledges the changes it hears, until it ends.
    async fn keep(&mut self, known: &Known, stopping: &mut watch::Receiver<bool>) -> Ended {
        let mut renewals = tokio::time::interval(RENEW_EVERY);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renewals.reset();
        loop {
            let (heard, renewing) = tokio::select! {
                biased;
                _ = stopping.wait_for(|stop| *stop) => return Ended::Stopping,
                // The announcements heard meanwhile go with the renewal: one that takes longer
                // than RENEW_EVERY finds the next tick due at once, and this branch, first,
                // would otherwise keep them unread for as long as renewals are slow.
                _ = renewals.tick() => (self.take_heard(None), true),
                note = self.heard.recv() => {
                    let Some(note) = note else {
                        return Ended::Failed(lost(&self.target));
                    };
                    (self.take_heard(Some(note)), false)
                }
            };
            let numbered = heard == Heard::Numbered;
            if heard == Heard::Unnumbered {
                known.forget();
            }
            if !numbered && !renewing {
                continue;
            }
            let acked = if numbered {
                // The number is read before the rows are forgotten, and from the database, not
                // from the announcement (which anyone connected may send): every change up to
                // it committed before the rows were forgotten.
                let last = self.client.query_typed_one(LAST_CHANGE, &[]);
                let last: i64 = match self.bounded_by(RENEWAL_WAIT, last).await {
                    Ok(row) => row.get(0),
                    Err(ended) => return ended,
                };
                known.forget();
                Some(last)
            } else {
                None
            };
            // A renewal waits up to a lease; a stop does not wait for it.
            let renewed = tokio::select! {
                biased;
                _ = stopping.wait_for(|stop| *stop) => return Ended::Stopping,
                renewed = self.renew(known, acked) => renewed,
            };
            if let Err(ended) = renewed {
                return ended;
            }
        }
    }

    /// What `first` and every announcement already waiting tell, all taken.
    fn take_heard(&mut self, first: Option<Notification>) -> Heard {
        let mut heard = Heard::Nothing;
        let mut note = first.or_else(|| self.heard.try_recv().ok());
        while let Some(taken) = note {
            heard = match change(&taken) {
                Some(Change { numbered: true }) => Heard::Numbered,
                Some(Change { numbered: false }) if heard == Heard::Nothing => Heard::Unnumbered,
                _ => heard,
            };
            note = self.heard.try_recv().ok();
        }
        heard
    }

    /// Renews the lease, acknowledging change number `acked` if given; a lease the database
    /// holds as ended (evicted, or run out on its clock) is not renewed.
    async fn renew(&self, known: &Known, acked: Option<i64>) -> Result<(), Ended> {
        let asked = boot_clock();
        let renew = format!(
            "BEGIN;
             SET LOCAL synchronous_commit = off;
             SET LOCAL statement_timeout = '{}ms';
             UPDATE autheona.servers
             SET lease_until = now() + {LEASE_SQL}, acked = {}
             WHERE id = {} AND NOT evicted AND lease_until > now()
             RETURNING id;
             COMMIT",
            RENEWAL_WAIT.as_millis(),
            acked.map_or_else(|| "acked".to_owned(), |acked| acked.to_string()),
            self.id
        );
        let messages = self
            .bounded_by(RENEWAL_WAIT, self.client.simple_query(&renew))
            .await?;
        if !messages
            .iter()
            .any(|message| matches!(message, SimpleQueryMessage::Row(_)))
        {
            return Err(Ended::Evicted);
        }
        known.hold_until(asked.saturating_add(nanos(LEASE)));
        Ok(())
    }

    /// Gives the lease back when the server stops (a second at most), and closes the
    /// connection; the lease's id if its row may still be there.
    async fn end(self, ended: &Ended) -> Option<i64> {
        let mut left = Some(self.id);
        if matches!(ended, Ended::Stopping) {
            let give_back = format!("DELETE FROM autheona.servers WHERE id = {}", self.id);
            if self
                .bounded(self.client.batch_execute(&give_back))
                .await
                .is_ok()
            {
                left = None;
            }
        }
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.running).await;
        left
    }

    /// What `statement` returns, if the server answers within [`RENEW_WAIT`].
    async fn bounded<T>(&self, statement: impl Future<Output = PgResult<T>>) -> Result<T, Ended> {
        self.bounded_by(RENEW_WAIT, statement).await
    }

    /// What `statement` returns, if the server answers within `wait`.
    async fn bounded_by<T>(
        &self,
        wait: Duration,
        statement: impl Future<Output = PgResult<T>>,
    ) -> Result<T, Ended> {
        match tokio::time::timeout(wait, statement).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(err)) => Err(Ended::Failed(statement_error(&self.target, &err))),
            Err(_) => Err(Ended::Failed(unanswered(&self.target, wait))),
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

/// What the announcements taken at once tell the lease to do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// Nothing changed (none, or only servers' checks that they hear).
    Nothing,
    /// Changes announced by the triggers only: the rows are forgotten.
    Unnumbered,
    /// A command waits for an acknowledgement: the last number is read, the rows forgotten,
    /// and the number acknowledged.
    Numbered,
}

/// A change announced: by the triggers, in the change's own transaction, or by the command
/// that made it (`numbered`), which waits for the servers to acknowledge it.
struct Change {
    numbered: bool,
}

/// The change `note` announces; `None` for a server's check that it hears ([`HEARD`]), which
/// changes nothing.
fn change(note: &Notification) -> Option<Change> {
    let payload = note.payload();
    (!payload.starts_with(HEARD)).then_some(Change {
        numbered: !payload.is_empty(),
    })
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

    /// A minute from now.
    fn later() -> u64 {
        boot_clock() + nanos(Duration::from_secs(60))
    }

    fn held() -> Known {
        let known = Known::new(8);
        known.hold_until(later());
        known
    }

    #[test]
    fn a_row_is_answered_only_while_the_lease_holds() {
        let known = Known::new(8);
        known.remember("a", &row("h"), known.generation());
        assert!(known.row("a").is_none(), "remembered without a lease");
        known.hold_until(later());
        known.remember("a", &row("h"), known.generation());
        assert_eq!(known.row("a").map(|row| row.secret_hash), Some("h".into()));
        known.hold_until(boot_clock());
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
        known.hold_until(boot_clock());
        known.hold_until(later());
        assert!(known.row("a").is_none(), "a row from before the lapse");
        assert_ne!(known.generation(), before);
        // A renewal in time keeps what is known.
        known.remember("b", &row("h"), known.generation());
        known.hold_until(later());
        assert!(known.row("b").is_some());
    }

    #[test]
    fn a_lease_lost_forgets_everything() {
        let known = held();
        let asked = known.generation();
        known.remember("a", &row("h"), asked);
        known.lapse();
        known.hold_until(later());
        assert!(known.row("a").is_none());
        known.remember("a", &row("h"), asked);
        assert!(known.row("a").is_none(), "a lookup from before the loss");
    }

    #[test]
    fn nothing_is_remembered_with_no_room() {
        let known = Known::new(0);
        known.hold_until(later());
        known.remember("a", &row("h"), known.generation());
        assert!(!known.remembers());
        assert!(known.row("a").is_none());
    }
}
