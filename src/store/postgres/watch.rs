//! A command's bound on waiting for an answer from a PostgreSQL server. TCP keepalives and
//! the user timeout give up on a host that is gone, and `statement_timeout` on a statement
//! that runs too long, but neither on a connection whose far end still acknowledges every
//! byte and answers none: a PgBouncer or a proxy that hangs. A thread watches each wait on
//! the server; past [`ANSWER_WAIT`] without an answer it calls what the command gave
//! ([`give_up_with`]), which reports and ends the process. `autheona serve` gives nothing:
//! its lookups have their own bound, and it must not end for one slow write.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a command waits for a server's answer: longer than any statement may run
/// (`statement_timeout`) with the lock waits it includes.
pub const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// What is waited for, since when.
struct Waiting {
    since: Instant,
    on: String,
}

static WAITING: Mutex<Option<Waiting>> = Mutex::new(None);
static GIVE_UP: OnceLock<fn(&str, Duration)> = OnceLock::new();
static WATCHING: OnceLock<()> = OnceLock::new();

/// From now on, a wait on a server past [`ANSWER_WAIT`] calls `give_up` with the server's
/// name and the wait, from another thread; it must end the process.
pub fn give_up_with(give_up: fn(&str, Duration)) {
    let _ = GIVE_UP.set(give_up);
}

fn waiting() -> std::sync::MutexGuard<'static, Option<Waiting>> {
    WAITING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A wait on `on` under way until dropped (then the one it interrupted, if any, goes on).
pub struct Armed(Option<Waiting>);

impl Drop for Armed {
    fn drop(&mut self) {
        *waiting() = self.0.take().map(|outer| Waiting {
            since: Instant::now(),
            ..outer
        });
    }
}

/// Watches the waits on the server `on` until the guard is dropped, when a command asked for
/// it; `None` otherwise.
pub fn arm(on: &dyn std::fmt::Display) -> Option<Armed> {
    let give_up = *GIVE_UP.get()?;
    WATCHING.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("autheona-pg-watch".into())
            .spawn(move || watch(give_up));
    });
    let outer = waiting().replace(Waiting {
        since: Instant::now(),
        on: on.to_string(),
    });
    Some(Armed(outer))
}

/// The server answered: the wait under way starts again (a copy's batches, each answered).
pub fn answered() {
    if let Some(waiting) = waiting().as_mut() {
        waiting.since = Instant::now();
    }
}

/// Runs `f`, which waits on something else (a visitor writing to stdout, which a pager may
/// hold), without counting its time as a wait on the server.
pub fn outside<T>(f: impl FnOnce() -> T) -> T {
    let paused = waiting().take();
    let result = f();
    if let Some(paused) = paused {
        *waiting() = Some(Waiting {
            since: Instant::now(),
            ..paused
        });
    }
    result
}

fn watch(give_up: fn(&str, Duration)) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let late = waiting()
            .as_ref()
            .filter(|w| w.since.elapsed() > ANSWER_WAIT)
            .map(|w| w.on.clone());
        if let Some(on) = late {
            give_up(&on, ANSWER_WAIT);
        }
    }
}
