//! The store's connections: one per HTTP thread for a local file, whose calls return
//! in microseconds without waiting on anything else (SQLite readers never wait for a
//! writer), and for a server, connections the requests share ([`Lookups`]), each kept by one
//! HTTP thread and asked by the requests on it, whose statements wait on the network without
//! holding a thread. Each connection is opened again
//! after it fails: a server restarted, or a connection dropped, costs the requests of that
//! moment, never the ones after.

use std::cell::RefCell;

use tokio::sync::Semaphore;

use super::pool::Busy;
use crate::store::{
    self, Location, Lookups, Store, StoreError, StoreErrorKind, StoreResult, VerifyRow,
};

/// Where a request's store calls run.
pub enum Stores {
    /// In place, on the calling thread's own connection (a local file).
    InPlace(Location),
    /// On a server's connections, with room for as many calls at once as `room` has permits.
    Server { lookups: Lookups, room: Semaphore },
}

thread_local! {
    /// This thread's connection, for [`Stores::InPlace`].
    static IN_PLACE: RefCell<Option<StoreSlot>> = const { RefCell::new(None) };
}

impl Stores {
    /// The row of token `id`, for verify; `Busy` when too many calls wait already.
    pub async fn token_for_verify(&self, id: &str) -> Result<StoreResult<Option<VerifyRow>>, Busy> {
        match self {
            Stores::InPlace(location) => Ok(in_place(location, |store| store.token_for_verify(id))),
            Stores::Server { lookups, room } => {
                let _room = room.try_acquire().map_err(|_| Busy)?;
                Ok(lookups.find(id, super::workers::here()).await)
            }
        }
    }

    /// The server's clock (unix seconds), `None` for a local file; `Busy` as above.
    pub async fn clock(&self) -> Result<StoreResult<Option<i64>>, Busy> {
        match self {
            Stores::InPlace(location) => Ok(in_place(location, |store| store.clock())),
            Stores::Server { lookups, room } => {
                let _room = room.try_acquire().map_err(|_| Busy)?;
                Ok(lookups.clock(super::workers::here()).await.map(Some))
            }
        }
    }

    /// Lets a server's connections go, once what runs on them is answered.
    pub async fn close(&self) {
        if let Stores::Server { lookups, .. } = self {
            lookups.close().await;
        }
    }
}

/// Runs `f` on this thread's connection to the file at `location`.
fn in_place<T>(
    location: &Location,
    f: impl FnOnce(&dyn Store) -> StoreResult<T>,
) -> StoreResult<T> {
    IN_PLACE.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| StoreSlot::unopened(location.clone()))
            .call(f)
    })
}

pub struct StoreSlot {
    location: Location,
    store: Option<Box<dyn Store>>,
    /// For a file: the device and inode it had when opened.
    file: Option<(u64, u64)>,
}

/// The device and inode of the file at `location` now, for a local file; `Ok(None)` for a
/// server.
fn file_identity(location: &Location) -> std::io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    match location {
        Location::File(path) => std::fs::metadata(path).map(|meta| Some((meta.dev(), meta.ino()))),
        Location::Postgres(_) => Ok(None),
    }
}

impl StoreSlot {
    /// A slot that connects at its first call.
    pub fn unopened(location: Location) -> StoreSlot {
        StoreSlot {
            location,
            store: None,
            file: None,
        }
    }

    /// Opens the store at `location` for a slot.
    pub fn open(location: &Location) -> StoreResult<StoreSlot> {
        let mut slot = StoreSlot::unopened(location.clone());
        slot.reconnect()?;
        Ok(slot)
    }

    /// Opens the store again, and notes which file it is.
    fn reconnect(&mut self) -> StoreResult<()> {
        self.store = None;
        // Noted before opening: a file replaced between the two is opened again next call.
        self.file = file_identity(&self.location).ok().flatten();
        self.store = Some(Self::connect(&self.location)?);
        Ok(())
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

    /// Runs `f` on the store, connecting first if the last call failed or, for a file, if
    /// the file at its path is another one now (a backup moved into its place: the open
    /// connection would read the old one, where a token revoked since is still there); after
    /// an error the connection is dropped, and the next call makes a new one.
    pub fn call<T>(&mut self, f: impl FnOnce(&dyn Store) -> StoreResult<T>) -> StoreResult<T> {
        let replaced = match file_identity(&self.location) {
            Ok(now) => now != self.file,
            // Gone, or unreadable: the open connection must not answer for it.
            Err(_) => true,
        };
        if self.store.is_none() || replaced {
            self.reconnect()?;
        }
        let store = self.store.as_deref().expect("a store, connected above");
        let result = f(store);
        if result.is_err() {
            self.store = None;
        }
        result
    }
}
