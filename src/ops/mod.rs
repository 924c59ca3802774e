//! The rules of projects and tokens. Everything here takes the current time and a [`Store`] as
//! values; nothing here touches the terminal, the environment or the clock.
//!
//! [`Store`]: crate::store::Store

pub mod project;
pub mod scan;
pub mod token;
pub mod verify;

use chrono::{DateTime, Utc};

/// Unix seconds as stored, read back as a time.
fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
