//! Copying a store: every project and token, hashes included, from one store into another
//! that is empty, so that every token works there as it did.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::store::{Contents, Imported, Location, Store, StoreError};

/// How far this host's clock and the database server's may be apart before it is said.
pub const CLOCK_TOLERANCE: u64 = 30;

/// What to warn of when this host's clock and the database server's (unix seconds) are more
/// than [`CLOCK_TOLERANCE`] apart: hosts sharing a store each judge expiry by their own clock,
/// so they must agree on the time.
pub fn clocks_apart(host: i64, server: i64) -> Option<String> {
    let apart = host.abs_diff(server);
    let which = if host > server { "ahead of" } else { "behind" };
    (apart > CLOCK_TOLERANCE).then(|| {
        format!(
            "this host's clock is {apart} s {which} the database server's; expiry is judged by \
             this host's clock: keep the clocks of every host in sync (NTP)"
        )
    })
}

/// Copies everything in `source` (at `from`) into `destination` (at `named`), which must be
/// empty, in one transaction on it: projects, tokens and the audit log's events, then the event
/// of the copy itself, at `now`. The rows stream from the one into the other, so memory stays
/// flat however many there are. Refused, with nothing written, when `destination` holds
/// anything; on any failure it is left as it was.
pub fn copy(
    source: &dyn Store,
    from: &Location,
    destination: &dyn Store,
    named: &Location,
    now: DateTime<Utc>,
) -> Result<Contents> {
    let imported = destination.import(now.timestamp(), &from.to_string(), &mut |sink| {
        let mut failed: Option<StoreError> = None;
        source.export(&mut |record| match sink.add(record) {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                failed = Some(err);
                ControlFlow::Break(())
            }
        })?;
        failed.map_or(Ok(()), Err)
    })?;
    match imported {
        Imported::Done(added) => Ok(added),
        Imported::NotEmpty(held) => Err(not_empty(named, held)),
    }
}

/// The refusal of a destination that holds something, saying what.
pub fn not_empty(named: &Location, held: Contents) -> Error {
    let refused = Error::refused(format!(
        "{named} is not empty: it holds {}, {} and {}; nothing was copied",
        count(held.projects, "project"),
        count(held.tokens, "token"),
        count(held.events, "event")
    ));
    if held.projects == 0 && held.tokens == 0 {
        // Only a log, which no command can empty: the history of projects since deleted.
        return refused.with_hint(
            "its audit log keeps the history of what it held; copy into a new file, or a database without autheona's schema",
        );
    }
    refused
}

/// `1 project`, `2 projects`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::error::ErrorKind;
    use crate::store::{self, Record, TokenQuery};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn named() -> Location {
        Location::File(PathBuf::from("copy.db"))
    }

    /// Everything a store holds, hashes included, in export order.
    fn everything(store: &dyn Store) -> Vec<Record> {
        let mut records = Vec::new();
        store
            .export(&mut |record| {
                records.push(record);
                ControlFlow::Continue(())
            })
            .unwrap();
        records
    }

    /// A store with two projects, and tokens of both created in one second (their order is
    /// then the order they were inserted in), one used, one described, one never expiring.
    fn filled() -> Box<dyn Store> {
        let store = store::in_memory();
        crate::ops::project::create(&*store, "web", at(1_000)).unwrap();
        crate::ops::project::create(&*store, "api", at(2_000)).unwrap();
        let tokens = [
            ("zzzzzzzzzzz1", "web", Some("first"), Some(9_000)),
            ("aaaaaaaaaaa2", "api", None, None),
            ("mmmmmmmmmmm3", "web", None, Some(9_000)),
        ];
        let inserted = store
            .insert_tokens(
                &mut tokens
                    .iter()
                    .map(|&(id, project, description, expires)| store::NewToken {
                        id,
                        project,
                        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                        description,
                        created_at: 3_000,
                        expires_at: expires,
                    }),
            )
            .unwrap();
        assert_eq!(inserted, 3);
        assert!(store.record_use("aaaaaaaaaaa2", 4_000).unwrap());
        store
    }

    #[test]
    fn a_copy_holds_every_row_in_the_same_order() {
        let source = filled();
        let destination = store::in_memory();
        let copied = copy(&*source, &named(), &*destination, &named(), at(9)).unwrap();
        assert_eq!(
            copied,
            Contents {
                projects: 2,
                tokens: 3,
                events: 2
            }
        );
        // The source's log, and the copy's own event after it.
        let mut copied = everything(&*destination);
        match copied.pop() {
            Some(Record::Event(event)) => {
                assert_eq!(event.action, "store.copy");
                assert_eq!(
                    event.detail,
                    r#"{"events":2,"projects":2,"source":"copy.db","tokens":3}"#
                );
            }
            other => panic!("the copy's event is missing: {other:?}"),
        }
        assert_eq!(copied, everything(&*source));
        let listed = |store: &dyn Store| {
            let mut rows = Vec::new();
            store
                .tokens(
                    &TokenQuery::default(),
                    &mut [&mut |row| {
                        rows.push(row);
                        ControlFlow::Continue(())
                    }],
                )
                .unwrap();
            rows
        };
        let rows = listed(&*destination);
        assert_eq!(rows, listed(&*source));
        let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
        assert_eq!(ids, ["zzzzzzzzzzz1", "aaaaaaaaaaa2", "mmmmmmmmmmm3"]);
        assert_eq!(rows[1].last_used_at, Some(4_000));
        assert_eq!(
            destination.token_for_verify("aaaaaaaaaaa2").unwrap(),
            source.token_for_verify("aaaaaaaaaaa2").unwrap()
        );
    }

    #[test]
    fn an_empty_store_copies_as_nothing() {
        let copied = copy(
            &*store::in_memory(),
            &named(),
            &*store::in_memory(),
            &named(),
            at(9),
        )
        .unwrap();
        assert_eq!(
            copied,
            Contents {
                projects: 0,
                tokens: 0,
                events: 0
            }
        );
    }

    #[test]
    fn a_destination_that_holds_anything_is_refused_and_left_alone() {
        let source = filled();
        let destination = store::in_memory();
        crate::ops::project::create(&*destination, "mine", at(5)).unwrap();
        let before = everything(&*destination);
        let err = copy(&*source, &named(), &*destination, &named(), at(9)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused);
        assert_eq!(
            err.message(),
            "copy.db is not empty: it holds 1 project, 0 tokens and 1 event; nothing was copied"
        );
        assert_eq!(everything(&*destination), before);
    }

    #[test]
    fn a_destination_that_holds_only_a_log_is_refused_and_left_alone() {
        // Its projects deleted: their history stays, and would be merged with the source's.
        let source = filled();
        let destination = store::in_memory();
        crate::ops::project::create(&*destination, "tried", at(5)).unwrap();
        crate::ops::project::delete(&*destination, "tried", at(6)).unwrap();
        let before = everything(&*destination);
        let err = copy(&*source, &named(), &*destination, &named(), at(9)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused);
        assert_eq!(
            err.message(),
            "copy.db is not empty: it holds 0 projects, 0 tokens and 2 events; nothing was copied"
        );
        assert!(err.hint().is_some_and(|hint| hint.contains("audit log")));
        assert_eq!(everything(&*destination), before);
    }

    #[test]
    fn a_copy_that_fails_midway_leaves_the_destination_empty() {
        let source = filled();
        let destination = store::in_memory_for_test();
        // The second token's insert fails, after both projects and one token went in.
        destination.execute_for_test(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.tokens
             WHEN NEW.id = 'aaaaaaaaaaa2' BEGIN SELECT RAISE(ABORT, 'no room'); END;",
        );
        let err = copy(&*source, &named(), &destination, &named(), at(9)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Environment, "{err}");
        assert_eq!(destination.contents().unwrap(), Contents::default());
    }
}
