//! One connection to the store, opened again after it fails: a server restarted, or a
//! connection dropped, costs the requests of that moment, never the ones after.

use crate::store::{self, Location, Store, StoreError, StoreErrorKind, StoreResult};

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

    /// Opens the store at `location` for a slot.
    pub fn open(location: &Location) -> StoreResult<StoreSlot> {
        let store = Self::connect(location)?;
        Ok(StoreSlot::new(location.clone(), store))
    }

    fn connect(location: &Location) -> StoreResult<Box<dyn Store>> {
        store::open(location)?.ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Unreachable,
                format!("there is no database at {location} any more"),
            )
        })
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
