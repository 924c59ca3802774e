//! The rules of projects and tokens. Everything here takes the current time and a [`Store`] as
//! values; nothing here touches the terminal, the environment or the clock.
//!
//! [`Store`]: crate::store::Store

pub mod audit;
pub mod project;
pub mod scan;
pub mod store;
pub mod token;
pub mod verify;

use std::cell::RefCell;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Lets a visitor that can fail (writing a row to stdout) drive a store's listing, which only
/// knows how to stop: the first failure stops it and is kept, to be returned by [`Failure::or`].
#[derive(Default)]
struct Failure(RefCell<Option<Error>>);

impl Failure {
    /// Continue, or keep `err` and stop.
    fn check(&self, result: Result<()>) -> ControlFlow<()> {
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                *self.0.borrow_mut() = Some(err);
                ControlFlow::Break(())
            }
        }
    }

    /// The listing's own result, unless a visitor failed first.
    fn or<T>(self, listed: Result<T>) -> Result<T> {
        match self.0.into_inner() {
            Some(err) => Err(err),
            None => listed,
        }
    }
}

/// Unix seconds as stored, read back as a time.
fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
