//! The store's connections: one per runtime thread for a local file, whose calls return
//! in microseconds without waiting on anything else (SQLite readers never wait for a
//! writer), and a pool of threads of their own for a server, whose calls wait on the network.
//! Each connection is opened again after it fails: a server restarted, or a connection
//! dropped, costs the requests of that moment, never the ones after.

use std::cell::RefCell;

use super::pool::{Busy, Pool};
use crate::store::{self, Location, Store, StoreError, StoreErrorKind, StoreResult};

/// Where a request's store calls run.
pub enum Stores {
    /// In place, on the calling thread's own connection (a local file).
    InPlace(Location),
    /// On the pool's threads, each with its connection (a server).
    Threads(Pool<StoreSlot>),
}

thread_local! {
    /// This thread's connection, for [`Stores::InPlace`].
    static IN_PLACE: RefCell<Option<StoreSlot>> = const { RefCell::new(None) };
}

impl Stores {
    /// Runs `f` on a connection to the store; `Busy` when too many calls wait already.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Result<StoreResult<T>, Busy> {
        match self {
            Stores::InPlace(location) => Ok(IN_PLACE.with(|slot| {
                let mut slot = slot.borrow_mut();
                slot.get_or_insert_with(|| StoreSlot::unopened(location.clone()))
                    .call(f)
            })),
            Stores::Threads(pool) => pool.run(move |slot| slot.call(f)).await,
        }
    }
}

pub struct StoreSlot {
    location: Location,
    store: Option<Box<dyn Store>>,
}

impl StoreSlot {
    pub fn new(location: Location, store: Box<dyn Store>) -> StoreSlot {
        StoreSlot {
            location,
            store: Some(store),
        }
    }

    /// A slot that connects at its first call.
    pub fn unopened(location: Location) -> StoreSlot {
        StoreSlot {
            location,
            store: None,
        }
    }

    /// Opens the store at `location` for a slot.
    pub fn open(location: &Location) -> StoreResult<StoreSlot> {
        let store = Self::connect(location)?;
        Ok(StoreSlot::new(location.clone(), store))
    }

    fn connect(location: &Location) -> StoreResult<Box<dyn Store>> {
        let mut store = store::open(location)?.ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Unreachable,
                format!("there is no database at {location} any more"),
            )
        })?;
        // The tokens whose grace period ended, removed with last-used times, are recorded
        // as removed by the server's user on its host.
        store.act_as(crate::environment::actor::who);
        Ok(store)
    }

    /// Runs `f` on the store, connecting first if the last call failed; after an error the
    /// connection is dropped, and the next call makes a new one.
    pub fn call<T>(&mut self, f: impl FnOnce(&dyn Store) -> StoreResult<T>) -> StoreResult<T> {
        let store = match self.store.take() {
            Some(store) => store,
            None => Self::connect(&self.location)?,
        };
        let result = f(&*store);
        if result.is_ok() {
            self.store = Some(store);
        }
        result
    }
}
