//! Last-used times, written behind: each valid request notes its token's use in memory, and a
//! thread of its own writes what was noted in one transaction at most every second (and once
//! more on shutdown), so that no verification waits for a write. A crash loses at most the
//! last second's times.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::slot::StoreSlot;
use crate::{environment, ui};

/// How often noted uses are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Uses noted and not yet written: each token's latest.
#[derive(Default)]
pub struct Uses(Mutex<HashMap<String, i64>>);

impl Uses {
    /// Notes that token `id` was used at `at` (unix seconds).
    pub fn note(&self, id: &str, at: i64) {
        let mut pending = self.lock();
        match pending.get_mut(id) {
            Some(latest) => *latest = (*latest).max(at),
            None => {
                pending.insert(id.to_owned(), at);
            }
        }
    }

    /// How many tokens' uses wait to be written.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn take(&self) -> HashMap<String, i64> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back uses that could not be written, keeping any later one noted meanwhile.
    fn put_back(&self, uses: HashMap<String, i64>) {
        let mut pending = self.lock();
        for (id, at) in uses {
            let latest = pending.entry(id).or_insert(at);
            *latest = (*latest).max(at);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes the uses noted, every [`FLUSH_EVERY`], on its own connection to the store, and
/// removes the tokens whose grace period is over, until `stop` says so or is dropped; then
/// writes what is left once more. Returns whether everything noted was written in the end.
pub fn write_behind(uses: &Uses, mut slot: StoreSlot, stop: Receiver<()>) -> bool {
    let mut failing = false;
    let mut sweeping = true;
    loop {
        let last = !matches!(
            stop.recv_timeout(FLUSH_EVERY),
            Err(RecvTimeoutError::Timeout)
        );
        let batch = uses.take();
        if !batch.is_empty() {
            let rows: Vec<(String, i64)> = batch.iter().map(|(id, at)| (id.clone(), *at)).collect();
            let written = slot.call(|store| store.record_uses(&rows));
            if written.is_ok() {
                sweeping = sweep(&mut slot, sweeping);
            }
            match written {
                Ok(()) => {
                    if failing {
                        ui::status("autheona serve: last-used times are written again");
                    }
                    failing = false;
                }
                Err(err) => {
                    if !failing {
                        ui::warning(&format!(
                            "last-used times could not be written ({} tokens), retrying every second: {err}",
                            batch.len()
                        ));
                    }
                    failing = true;
                    uses.put_back(batch);
                }
            }
        }
        if last {
            return uses.pending() == 0;
        }
    }
}

/// With last-used times written, the tokens whose grace period is over go, as they do with
/// every command that writes (each was refused from its end on). A failure is said once, and
/// costs the last-used times nothing; the next write tries again. Returns whether it worked.
fn sweep(slot: &mut StoreSlot, worked_last_time: bool) -> bool {
    let Ok(now) = environment::clock::now() else {
        return worked_last_time;
    };
    match slot.call(|store| store.remove_stopped(now.timestamp())) {
        Ok(_) => true,
        Err(err) => {
            if worked_last_time {
                ui::warning(&format!(
                    "tokens whose grace period ended could not be removed, retrying with the next write: {err}"
                ));
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_keeps_its_latest_use() {
        let uses = Uses::default();
        uses.note("a", 5);
        uses.note("a", 3);
        uses.note("b", 4);
        assert_eq!(uses.pending(), 2);
        let taken = uses.take();
        assert_eq!(taken["a"], 5);
        uses.note("a", 7);
        uses.put_back(taken);
        assert_eq!(uses.take()["a"], 7, "a later use noted meanwhile is kept");
    }
}
