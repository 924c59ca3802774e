//! stderr for a server: its lines (start and stop, warnings, the access log) written by a
//! thread of their own, so that a stderr nobody drains (a log pipe whose reader is stuck)
//! never holds a request, or a SIGTERM. The queue is bounded; past it, lines are dropped and
//! counted. A command's lines go straight to stderr, as written.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

enum Item {
    Line(String),
    /// Answered once every line before it is written.
    Flushed(SyncSender<()>),
}

static BEHIND: OnceLock<SyncSender<Item>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// From now on, lines go to stderr from a thread of their own, with room for `room` waiting.
pub fn write_behind(room: usize) -> std::io::Result<()> {
    let (sender, lines) = sync_channel(room);
    std::thread::Builder::new()
        .name("autheona-stderr".into())
        .spawn(move || {
            for item in lines {
                match item {
                    Item::Line(line) => {
                        let _ = std::io::stderr().write_all(line.as_bytes());
                    }
                    Item::Flushed(done) => {
                        let _ = done.send(());
                    }
                }
            }
        })?;
    let _ = BEHIND.set(sender);
    Ok(())
}

/// Writes `line`, which ends with a newline: at once, or handed to the writer behind (dropped
/// when its room is full).
pub fn write(line: String) {
    match BEHIND.get() {
        Some(sender) => {
            if sender.try_send(Item::Line(line)).is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Lines dropped so far because the writer behind had no room.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits until the lines handed behind are written, `limit` at most: whether they were.
pub fn flush(limit: Duration) -> bool {
    let Some(sender) = BEHIND.get() else {
        return true;
    };
    let deadline = Instant::now() + limit;
    let (done, flushed) = sync_channel(1);
    let mut item = Item::Flushed(done);
    loop {
        match sender.try_send(item) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                item = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
    flushed
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok()
}
