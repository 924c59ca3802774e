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

/// Why [`span`] refused a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanError {
    /// Not a whole number and `m`, `h` or `d`.
    NotASpan,
    /// Of that form, but longer than any time can be.
    TooLong,
}

/// A length of time written as a whole number of minutes, hours or days: `30m`, `12h`, `7d`
/// (a rotation's grace period, a log's `--since`).
pub fn span(text: &str) -> std::result::Result<chrono::TimeDelta, SpanError> {
    use chrono::TimeDelta;
    let Some(unit) = text.chars().last() else {
        return Err(SpanError::NotASpan);
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    let per_unit = match unit {
        'm' => TimeDelta::minutes(1),
        'h' => TimeDelta::hours(1),
        'd' => TimeDelta::days(1),
        _ => return Err(SpanError::NotASpan),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpanError::NotASpan);
    }
    let count: i32 = digits.parse().map_err(|_| SpanError::TooLong)?;
    per_unit.checked_mul(count).ok_or(SpanError::TooLong)
}

/// Unix seconds as stored, read back as a time.
fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
