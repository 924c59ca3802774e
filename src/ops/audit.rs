//! The audit log, read: who changed which project or token, and when. The events are written by
//! the store, in the transaction of each change; here they are selected and read.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Failure, project, time};
use crate::error::{Error, Result};
use crate::store::{Action, EventQuery, EventRow, Store};

/// An event of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in the log: later events have larger numbers.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub project: Option<String>,
    pub token_id: Option<String>,
    /// The token's description at the time.
    pub description: Option<String>,
    /// An object: what else there is to say (`{"replaced_by": ID, "grace_seconds": N}`).
    pub detail: Value,
    pub actor: Actor,
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The operating-system user name.
    pub user: Option<String>,
    pub uid: Option<i64>,
    pub host: Option<String>,
    /// The database role, on PostgreSQL.
    pub role: Option<String>,
}

impl Event {
    fn from_row(row: EventRow) -> Event {
        Event {
            seq: row.seq,
            at: time(row.at),
            action: row.action,
            project: row.project,
            token_id: row.token_id,
            description: row.description,
            // Written by autheona as an object; anything else is shown as the text it is.
            detail: serde_json::from_str(&row.detail).unwrap_or(Value::String(row.detail)),
            actor: Actor {
                user: row.user,
                uid: row.uid,
                host: row.host,
                role: row.role,
            },
        }
    }
}

/// Which events to read; every condition given must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter<'a> {
    pub project: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub action: Option<Action>,
    pub since: Option<DateTime<Utc>>,
}

impl Filter<'_> {
    /// Whether any condition is set.
    pub fn is_set(&self) -> bool {
        *self != Filter::default()
    }

    /// Checks what was given: a project name and a token id of the right shape (a deleted
    /// project's events are still found by its name).
    fn check(&self) -> Result<()> {
        if let Some(name) = self.project {
            project::validate_name(name)?;
        }
        if let Some(id) = self.token_id {
            super::token::parse_id(id)?;
        }
        Ok(())
    }

    fn query(&self) -> EventQuery<'_> {
        EventQuery {
            project: self.project,
            token_id: self.token_id,
            action: self.action,
            since: self.since.map(|at| at.timestamp()),
            ..EventQuery::default()
        }
    }
}

/// A visitor of events that may fail (writing to stdout); its first error stops the reading.
pub type Each<'a> = &'a mut dyn FnMut(Event) -> Result<()>;

/// Hands the events `filter` selects, newest first, to each visitor of `passes` in turn, as the
/// store reads them: nothing is held in memory, however long the log. Every pass sees the same
/// events: those up to the newest when the first pass began.
pub fn for_each(store: &dyn Store, filter: &Filter<'_>, passes: &mut [Each<'_>]) -> Result<()> {
    filter.check()?;
    let mut newest = None;
    for each in passes.iter_mut() {
        let failure = Failure::default();
        let query = EventQuery {
            upto_seq: newest,
            ..filter.query()
        };
        let read = store.events(&query, &mut |row| {
            newest = newest.max(Some(row.seq));
            failure.check(each(Event::from_row(row)))
        });
        failure.or(read.map_err(Error::from))?;
        if newest.is_none() {
            // No event: the other passes have nothing to see either.
            break;
        }
    }
    Ok(())
}

/// Where the log ends now: the place of its newest event (0 for an empty log). Following the
/// log starts here.
pub fn end(store: &dyn Store) -> Result<i64> {
    let mut newest = 0;
    let query = EventQuery {
        limit: Some(1),
        ..EventQuery::default()
    };
    store.events(&query, &mut |row| {
        newest = row.seq;
        std::ops::ControlFlow::Break(())
    })?;
    Ok(newest)
}

/// Hands the events `filter` selects that come after place `after` in the log, oldest first,
/// to `each`; returns the place of the last one handed over (`after` when there was none).
pub fn after(store: &dyn Store, filter: &Filter<'_>, after: i64, each: Each<'_>) -> Result<i64> {
    filter.check()?;
    let failure = Failure::default();
    let mut last = after;
    let query = EventQuery {
        after_seq: Some(after),
        oldest_first: true,
        ..filter.query()
    };
    let read = store.events(&query, &mut |row| {
        last = row.seq;
        failure.check(each(Event::from_row(row)))
    });
    failure.or(read.map_err(Error::from))?;
    Ok(last)
}
