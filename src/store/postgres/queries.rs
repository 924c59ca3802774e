//! The SQL for projects and tokens: [`Store`] for [`Postgres`], statement for statement what
//! the SQLite store runs.
//!
//! Every statement goes through `query_typed` and its kin: unnamed, with the parameter types
//! given, so parse, bind and execute are one round trip and no prepared statement outlives it
//! (PgBouncer's transaction pooling would send the next one to another server). The one
//! exception, verify's lookup on a connection that repeats it, is in `lookup`.
//!
//! A statement that changes several tokens' rows locks them first, in the order of their ids
//! (`ORDER BY id FOR UPDATE`, in a CTE), whatever plan the rest of it gets: two such statements
//! from different hosts (a project delete and another command's removal of stopped tokens, two
//! servers writing last-used times) then never hold each other's rows, which PostgreSQL would
//! end as a deadlock, failing one command. Events are appended last, under the log's advisory
//! lock (`LOG_LOCK`), which is therefore never held while waiting for a row.

use std::path::Path;

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, Row, SimpleQueryMessage};
use postgres_protocol::escape::escape_literal;

use super::lease::NotTold;
use super::{LOCK_TIMEOUT, Postgres, STATEMENT_TIMEOUT};
use crate::store::audit::{NewEvent, created, detail, revoked};
use crate::store::{
    Action, Contents, Durability, EventQuery, EventRow, Import, Imported, Inserted, NewToken,
    ProjectRecord, ProjectRow, Record, Removal, Replacement, Retired, Selection, Store, StoreError,
    StoreErrorKind, StoreResult, TokenQuery, TokenRecord, TokenRow, Untold, VerifyRow, Visit,
    WhoActs,
};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// A statement's parameter: its value and its type.
type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// Inserts a token into the project named $2, if there is one, in the same statement.
const INSERT_TOKEN: &str = "INSERT INTO autheona.tokens
         (id, project_id, secret_hash, description, created_at, expires_at)
     SELECT $1, id, $3, $4, $5, $6 FROM autheona.projects WHERE name = $2";

/// Inserts a token into the project of the token $7, if that token still exists, has no
/// scheduled end and is of the project named $2, in the same statement.
const INSERT_REPLACEMENT: &str = "INSERT INTO autheona.tokens
         (id, project_id, secret_hash, description, created_at, expires_at)
     SELECT $1, t.project_id, $3, $4, $5, $6
     FROM autheona.tokens t JOIN autheona.projects p ON p.id = t.project_id
     WHERE t.id = $7 AND p.name = $2 AND t.stops_at IS NULL";

/// Inserts many tokens at once, each into its project by name: one statement per batch of
/// rows, not one round trip per token.
const INSERT_TOKENS: &str = "INSERT INTO autheona.tokens
         (id, project_id, secret_hash, description, created_at, expires_at)
     SELECT n.id, p.id, n.secret_hash, n.description, n.created_at, n.expires_at
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[])
              WITH ORDINALITY AS n (id, project, secret_hash, description, created_at,
                                    expires_at, ord)
     JOIN autheona.projects p ON p.name = n.project
     ORDER BY n.ord";

/// Rows per [`INSERT_TOKENS`] statement.
const INSERT_BATCH: usize = 5_000;

/// The values for [`INSERT_TOKEN`], in its order.
fn token_params<'a>(token: &'a NewToken<'_>) -> Vec<Param<'a>> {
    vec![
        (&token.id, Type::TEXT),
        (&token.project, Type::TEXT),
        (&token.secret_hash, Type::TEXT),
        (&token.description, Type::TEXT),
        (&token.created_at, Type::INT8),
        (&token.expires_at, Type::INT8),
    ]
}

const TOKEN_COLUMNS: &str =
    "t.id, p.name, t.description, t.created_at, t.expires_at, t.last_used_at, t.replaced_by,
     t.stops_at
     FROM autheona.tokens t JOIN autheona.projects p ON p.id = t.project_id";

/// A token still there at `at` (a parameter): not stopped by a scheduled end at or before it.
fn live(at: &str) -> String {
    format!("(t.stops_at IS NULL OR t.stops_at > {at})")
}

/// A [`TokenQuery`]'s values, each to be bound once.
struct Selected<'a> {
    conditions: String,
    values: Vec<Param<'a>>,
}

/// The conditions of a [`TokenQuery`] on `t` (tokens) and `p` (projects): only those the
/// query sets, numbered from `$first`. Written once, for listing and for deleting what is
/// still selected.
fn selected<'a>(query: &'a TokenQuery<'_>, first: usize) -> Selected<'a> {
    let mut conditions: Vec<String> = vec!["true".into()];
    let mut values: Vec<Param<'a>> = Vec::new();
    let next = |values: &mut Vec<Param<'a>>, value: Param<'a>| {
        values.push(value);
        format!("${}", first + values.len() - 1)
    };
    if let Some(project) = &query.project {
        let n = next(&mut values, (project, Type::TEXT));
        conditions.push(format!("p.name = {n}"));
    }
    if let Some(at) = &query.expired_at {
        let n = next(&mut values, (at, Type::INT8));
        conditions.push(format!("t.expires_at <= {n}"));
    }
    if let Some((now, until)) = &query.expiring {
        let now = next(&mut values, (now, Type::INT8));
        let until = next(&mut values, (until, Type::INT8));
        conditions.push(format!("t.expires_at > {now} AND t.expires_at <= {until}"));
    }
    if query.never_used {
        conditions.push("t.last_used_at IS NULL".into());
    }
    if let Some(since) = &query.unused_since {
        let n = next(&mut values, (since, Type::INT8));
        conditions.push(format!("coalesce(t.last_used_at, t.created_at) <= {n}"));
    }
    if let Some(at) = &query.live_at {
        let n = next(&mut values, (at, Type::INT8));
        conditions.push(live(&n));
    }
    Selected {
        conditions: conditions.join(" AND "),
        values,
    }
}

fn token_row(row: &Row) -> TokenRow {
    TokenRow {
        id: row.get(0),
        project: row.get(1),
        description: row.get(2),
        created_at: row.get(3),
        expires_at: row.get(4),
        last_used_at: row.get(5),
        replacement: Replacement::from_columns(row.get(6), row.get(7)),
    }
}

fn project_id(client: &mut Client, name: &str) -> PgResult<Option<i64>> {
    Ok(client
        .query_typed_opt(
            "SELECT id FROM autheona.projects WHERE name = $1",
            &[(&name, Type::TEXT)],
        )?
        .map(|row| row.get(0)))
}

fn is_unique_violation(err: &postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Hands each row of the query to `visit` until it breaks, streaming: rows are read from the
/// connection as they are visited, never all held.
fn visit_rows<T>(
    client: &mut Client,
    query: &str,
    values: &[Param<'_>],
    read: impl Fn(&Row) -> T,
    visit: Visit<'_, T>,
) -> PgResult<()> {
    let mut rows = client.query_typed_raw(query, values.iter().map(|(v, t)| (*v, t.clone())))?;
    while let Some(row) = rows.next()? {
        // The visitor may wait on its reader (a pager): not a wait on the server.
        if super::watch::outside(|| visit(read(&row))).is_break() {
            break;
        }
    }
    Ok(())
}

/// Appends an event, with its actor; the database role is the session's. The transaction-level
/// lock, held to the commit, makes the order of the log (`seq`) the order of the commits: a
/// reader following the log never passes an event that commits after a later one. No
/// privilege is needed for it, and it ends with the transaction (PgBouncer's transaction
/// pooling keeps no session state).
const APPEND_EVENTS: &str = "WITH in_order AS (SELECT pg_advisory_xact_lock($10))
     INSERT INTO autheona.events
         (at, action, project, token_id, description, detail, actor_user, actor_uid, actor_host,
          actor_role)
     SELECT n.at, n.action, n.project, n.token_id, n.description, n.detail, $7, $8, $9,
            session_user
     FROM in_order,
          unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
              WITH ORDINALITY AS n (at, action, project, token_id, description, detail, ord)
     ORDER BY n.ord";

const EVENT_COLUMNS: &str = "seq, at, action, project, token_id, description, detail, \
     actor_user, actor_uid, actor_host, actor_role";

fn event_row(row: &Row) -> EventRow {
    EventRow {
        seq: row.get(0),
        at: row.get(1),
        action: row.get(2),
        project: row.get(3),
        token_id: row.get(4),
        description: row.get(5),
        detail: row.get(6),
        user: row.get(7),
        uid: row.get(8),
        host: row.get(9),
        role: row.get(10),
    }
}

/// Whether a transaction's work is kept.
enum End<T> {
    Commit(T),
    Rollback(T),
}

impl Postgres {
    /// Appends `event` to the audit log, in the transaction of the change it records.
    fn append(&self, client: &mut Client, event: &NewEvent<'_>) -> PgResult<()> {
        self.append_all(client, std::slice::from_ref(event))
    }

    /// Appends `events` in this order, in one statement: a prune of many tokens holds the
    /// log's lock for one round trip, not one for each.
    fn append_all(&self, client: &mut Client, events: &[NewEvent<'_>]) -> PgResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let actor = self.acting.actor();
        let uid = actor.uid.map(i64::from);
        let at: Vec<i64> = events.iter().map(|e| e.at).collect();
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        let projects: Vec<Option<&str>> = events.iter().map(|e| e.project).collect();
        let token_ids: Vec<Option<&str>> = events.iter().map(|e| e.token_id).collect();
        let descriptions: Vec<Option<&str>> = events.iter().map(|e| e.description).collect();
        let details: Vec<&str> = events.iter().map(|e| e.detail.as_str()).collect();
        client.execute_typed(
            APPEND_EVENTS,
            &[
                (&at, Type::INT8_ARRAY),
                (&actions, Type::TEXT_ARRAY),
                (&projects, Type::TEXT_ARRAY),
                (&token_ids, Type::TEXT_ARRAY),
                (&descriptions, Type::TEXT_ARRAY),
                (&details, Type::TEXT_ARRAY),
                (&actor.user, Type::TEXT),
                (&uid, Type::INT8),
                (&actor.host, Type::TEXT),
                (&super::LOG_LOCK, Type::INT8),
            ],
        )?;
        Ok(())
    }

    /// After a change that refuses tokens committed (`changed`), or found them gone (another
    /// process's change, which may not have returned yet): waits until every `autheona serve`
    /// running on the store knows ([`super::lease`]); when they cannot be told, it waits
    /// longer instead, and reports why ([`Untold`]).
    fn refused(&self, changed: bool) {
        if !changed {
            return;
        }
        let started = std::time::Instant::now();
        let told = {
            let _watched = super::watch::arm(&self.target);
            super::lease::tell_servers(&mut self.client.borrow_mut())
        };
        let error = match told {
            Ok(()) => return,
            Err(NotTold::Statement(err)) => self.error(&err),
            Err(NotTold::Unconfirmed(servers)) => StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "{servers} server{} on PostgreSQL {} neither acknowledged it nor let a \
                     lease end in time (is the database server's clock stepping back?)",
                    if servers == 1 { "" } else { "s" },
                    self.target
                ),
            )
            .on_server(),
        };
        (self.warn)(&Untold {
            error,
            waited: started.elapsed(),
        });
    }

    /// Runs `f` on the connection; its error becomes the store's, naming the database.
    fn run<T>(&self, f: impl FnOnce(&mut Client) -> PgResult<T>) -> StoreResult<T> {
        let mut client = self.client.borrow_mut();
        let _watched = super::watch::arm(&self.target);
        f(&mut client).map_err(|err| self.error(&err))
    }

    /// Runs `f` in a transaction with its own timeouts, which commits when it returns
    /// `Commit`, waiting for the disk (of the server, and of synchronous replicas) whatever
    /// the server's default if `durability` asks; an error or `Rollback` rolls it back.
    fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Client) -> PgResult<End<T>>,
    ) -> StoreResult<T> {
        let synchronous = match durability {
            Durability::OnCommit => "on",
            Durability::Deferred => "off",
        };
        // Who acts is looked up (NSS, perhaps a directory server) before the transaction
        // holds any lock.
        self.acting.actor();
        self.transaction(
            &format!(
                "BEGIN;
                 SET LOCAL synchronous_commit = {synchronous};
                 SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
                 SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}';"
            ),
            f,
        )
    }

    /// Runs `f` in one read-only snapshot: every statement sees the same rows. No statement
    /// timeout: a list of a million tokens takes as long as its reader (a pager, a pipe); a
    /// server gone meanwhile is noticed by the keepalives.
    fn read<T>(&self, f: impl FnOnce(&mut Client) -> PgResult<T>) -> StoreResult<T> {
        self.transaction(
            &format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
                 SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
                 SET LOCAL statement_timeout = 0;"
            ),
            |client| f(client).map(End::Commit),
        )
    }

    fn transaction<T>(
        &self,
        begin: &str,
        f: impl FnOnce(&mut Client) -> PgResult<End<T>>,
    ) -> StoreResult<T> {
        self.run(|client| {
            client.batch_execute(begin)?;
            match f(client) {
                Ok(End::Commit(value)) => {
                    client.batch_execute("COMMIT")?;
                    Ok(value)
                }
                Ok(End::Rollback(value)) => {
                    client.batch_execute("ROLLBACK")?;
                    Ok(value)
                }
                Err(err) => {
                    // The server rolls back a failed transaction; a lost connection has
                    // nothing left to roll back.
                    let _ = client.batch_execute("ROLLBACK");
                    Err(err)
                }
            }
        })
    }
}

impl Store for Postgres {
    fn file(&self) -> Option<&Path> {
        None
    }

    fn server_time(&self) -> Option<i64> {
        Some(Postgres::server_time(self))
    }

    fn act_as(&mut self, who: WhoActs) {
        self.acting.set(who);
    }

    fn warn_with(&mut self, warn: fn(&Untold)) {
        self.warn = warn;
    }

    fn insert_project(&self, name: &str, created_at: i64) -> StoreResult<bool> {
        self.write(Durability::OnCommit, |client| {
            match client.execute_typed(
                "INSERT INTO autheona.projects (name, created_at) VALUES ($1, $2)",
                &[(&name, Type::TEXT), (&created_at, Type::INT8)],
            ) {
                Ok(_) => {
                    let event = NewEvent::new(created_at, Action::ProjectCreate, detail::none());
                    self.append(client, &event.project(name))?;
                    Ok(End::Commit(true))
                }
                Err(err) if is_unique_violation(&err) => Ok(End::Rollback(false)),
                Err(err) => Err(err),
            }
        })
    }

    fn projects(&self, live_at: i64, passes: &mut [Visit<'_, ProjectRow>]) -> StoreResult<()> {
        self.read(|client| {
            let query = format!(
                "SELECT p.name, p.created_at,
                        (SELECT count(*) FROM autheona.tokens t
                         WHERE t.project_id = p.id AND {})
                 FROM autheona.projects p ORDER BY p.name",
                live("$1")
            );
            let read = |row: &Row| ProjectRow {
                name: row.get(0),
                created_at: row.get(1),
                tokens: row.get::<_, i64>(2).unsigned_abs(),
            };
            for visit in passes.iter_mut() {
                visit_rows(client, &query, &[(&live_at, Type::INT8)], read, *visit)?;
            }
            Ok(())
        })
    }

    fn project_exists(&self, name: &str) -> StoreResult<bool> {
        self.run(|client| project_id(client, name).map(|id| id.is_some()))
    }

    fn project_token_count(&self, name: &str, live_at: i64) -> StoreResult<Option<u64>> {
        self.run(|client| {
            Ok(client
                .query_typed_opt(
                    &format!(
                        "SELECT (SELECT count(*) FROM autheona.tokens t
                                 WHERE t.project_id = p.id AND {})
                         FROM autheona.projects p WHERE p.name = $1",
                        live("$2")
                    ),
                    &[(&name, Type::TEXT), (&live_at, Type::INT8)],
                )?
                .map(|row| row.get::<_, i64>(0).unsigned_abs()))
        })
    }

    fn delete_project(&self, name: &str, at: i64) -> StoreResult<Option<u64>> {
        // It revokes tokens: durable. Its tokens are locked in the order of their ids (the
        // module's rule); the project row is not locked first (`FOR UPDATE` on projects
        // needs an UPDATE privilege the everyday role has not): deleting it locks it, and
        // waits for a token insert into it to commit (whose token the cascade then deletes).
        self.write(Durability::OnCommit, |client| {
            let Some(id) = project_id(client, name)? else {
                return Ok(End::Rollback(None));
            };
            let tokens = client.execute_typed(
                "WITH doomed AS (SELECT id FROM autheona.tokens WHERE project_id = $1
                                 ORDER BY id FOR UPDATE)
                 DELETE FROM autheona.tokens t USING doomed d WHERE t.id = d.id",
                &[(&id, Type::INT8)],
            )?;
            let projects = client.execute_typed(
                "DELETE FROM autheona.projects WHERE id = $1",
                &[(&id, Type::INT8)],
            )?;
            // Deleted meanwhile by another process: it revoked the tokens.
            if projects == 0 {
                return Ok(End::Rollback(None));
            }
            let event = NewEvent::new(at, Action::ProjectDelete, detail::project_delete(tokens));
            self.append(client, &event.project(name))?;
            Ok(End::Commit(Some(tokens)))
        })
        // Deleted meanwhile by another process, it may still be waiting for the servers; so
        // may a revoke of its last token, committed a moment ago.
        .inspect(|_| self.refused(true))
    }

    /// Always durable on commit, whatever `durability` asks: PostgreSQL has no way to make an
    /// asynchronous commit durable later short of another write, and a token is printed only
    /// once its row is as safe as a revocation. So [`Store::make_durable`] has nothing to do.
    fn insert_token(&self, token: &NewToken<'_>, _durability: Durability) -> StoreResult<Inserted> {
        self.write(Durability::OnCommit, |client| {
            match client.execute_typed(INSERT_TOKEN, &token_params(token)) {
                Ok(0) => Ok(End::Rollback(Inserted::NoProject)),
                Ok(_) => {
                    self.append(client, &created(token, None))?;
                    Ok(End::Commit(Inserted::Done))
                }
                Err(err) if is_unique_violation(&err) => Ok(End::Rollback(Inserted::IdTaken)),
                // The project went between the SELECT and the foreign key's check.
                Err(err) if err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                    Ok(End::Rollback(Inserted::NoProject))
                }
                Err(err) => Err(err),
            }
        })
    }

    fn make_durable(&self) -> StoreResult<()> {
        Ok(())
    }

    fn insert_tokens(&self, tokens: &mut dyn Iterator<Item = NewToken<'_>>) -> StoreResult<usize> {
        self.write(Durability::OnCommit, |client| {
            let mut count = 0;
            let mut batch: Vec<NewToken<'_>> = Vec::with_capacity(INSERT_BATCH);
            loop {
                batch.clear();
                batch.extend((&mut *tokens).take(INSERT_BATCH));
                if batch.is_empty() {
                    break;
                }
                let column = |f: fn(&NewToken<'_>) -> Option<String>| -> Vec<Option<String>> {
                    batch.iter().map(f).collect()
                };
                let ids = column(|t| Some(t.id.to_owned()));
                let projects = column(|t| Some(t.project.to_owned()));
                let hashes = column(|t| Some(t.secret_hash.to_owned()));
                let descriptions = column(|t| t.description.map(str::to_owned));
                let created: Vec<i64> = batch.iter().map(|t| t.created_at).collect();
                let expires: Vec<Option<i64>> = batch.iter().map(|t| t.expires_at).collect();
                count += client.execute_typed(
                    INSERT_TOKENS,
                    &[
                        (&ids, Type::TEXT_ARRAY),
                        (&projects, Type::TEXT_ARRAY),
                        (&hashes, Type::TEXT_ARRAY),
                        (&descriptions, Type::TEXT_ARRAY),
                        (&created, Type::INT8_ARRAY),
                        (&expires, Type::INT8_ARRAY),
                    ],
                )? as usize;
            }
            Ok(End::Commit(count))
        })
    }

    fn tokens(
        &self,
        query: &TokenQuery<'_>,
        passes: &mut [Visit<'_, TokenRow>],
    ) -> StoreResult<bool> {
        self.read(|client| {
            if let Some(name) = query.project
                && project_id(client, name)?.is_none()
            {
                return Ok(false);
            }
            let Selected { conditions, values } = selected(query, 1);
            let statement =
                format!("SELECT {TOKEN_COLUMNS} WHERE {conditions} ORDER BY t.created_at, t.seq");
            for visit in passes.iter_mut() {
                visit_rows(client, &statement, &values, token_row, *visit)?;
            }
            Ok(true)
        })
    }

    fn token(&self, id: &str) -> StoreResult<Option<TokenRow>> {
        self.run(|client| {
            Ok(client
                .query_typed_opt(
                    &format!("SELECT {TOKEN_COLUMNS} WHERE t.id = $1"),
                    &[(&id, Type::TEXT)],
                )?
                .map(|row| token_row(&row)))
        })
    }

    fn token_for_verify(&self, id: &str) -> StoreResult<Option<VerifyRow>> {
        self.run(|client| self.lookup.find(client, id))
    }

    /// One query of the simple protocol, so one implicit transaction, committed
    /// asynchronously whatever the server's default ([`Durability::Deferred`]): last-used is a
    /// hint, and a verify must not wait for the server's disk, or a synchronous replica, on
    /// every use (benches/README.md, finding 16). It sets its own lock and statement timeouts
    /// with `SET LOCAL`, in the same round trip: through a transaction pooler it may run on a
    /// server connection where the session's were never set, and a row held by a stalled
    /// transaction would then keep the verify waiting for as long as that transaction lives.
    /// Nothing is left on the session, which PgBouncer may hand to another client.
    fn record_use(&self, id: &str, at: i64) -> StoreResult<bool> {
        let messages = self.run(|client| {
            client.simple_query(&format!(
                "SET LOCAL synchronous_commit = off;
                 SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
                 SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}';
                 UPDATE autheona.tokens SET last_used_at = {at}::int8 WHERE id = {}",
                escape_literal(id)
            ))
        })?;
        // The last command's count is the update's.
        let changed = messages.iter().rev().find_map(|message| match message {
            SimpleQueryMessage::CommandComplete(rows) => Some(*rows),
            _ => None,
        });
        Ok(changed == Some(1))
    }

    /// One query of the simple protocol, so one implicit transaction, committed
    /// asynchronously as [`Store::record_use`]'s, with its own timeouts; its rows locked in
    /// the order of their ids, so that two servers writing the same tokens never deadlock.
    /// Not a transaction of several round trips: the database commits it as soon as it has
    /// run, so a server that stops between two messages (paused, cut off) never leaves a
    /// token's row locked, for a revoke to wait on. The simple protocol takes no parameters:
    /// the ids are quoted as literals by the protocol's own function.
    fn record_uses(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let used = uses
            .iter()
            .map(|(id, at)| format!("({}, {at}::int8)", escape_literal(id)))
            .collect::<Vec<_>>()
            .join(", ");
        self.run(|client| {
            client.batch_execute(&format!(
                "SET LOCAL synchronous_commit = off;
                 SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
                 SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}';
                 WITH used AS (SELECT t.id, u.at
                               FROM autheona.tokens t
                               JOIN (VALUES {used}) AS u (id, at) ON t.id = u.id
                               WHERE t.last_used_at IS NULL OR t.last_used_at < u.at
                               ORDER BY t.id FOR NO KEY UPDATE OF t)
                 UPDATE autheona.tokens t SET last_used_at = used.at FROM used
                 WHERE t.id = used.id"
            ))
        })
    }

    fn clock(&self) -> StoreResult<Option<i64>> {
        self.run(|client| {
            let row = client.query_typed("SELECT extract(epoch FROM now())::int8", &[])?;
            Ok(row.first().map(|row| row.get(0)))
        })
    }

    fn delete_token(&self, id: &str, at: i64, why: Removal) -> StoreResult<bool> {
        self.write(Durability::OnCommit, |client| {
            let Some(gone) = client.query_typed_opt(
                "DELETE FROM autheona.tokens t USING autheona.projects p
                 WHERE p.id = t.project_id AND t.id = $1
                 RETURNING p.name, t.description",
                &[(&id, Type::TEXT)],
            )?
            else {
                return Ok(End::Rollback(false));
            };
            let (project, description): (String, Option<String>) = (gone.get(0), gone.get(1));
            self.append(
                client,
                &revoked(at, &project, id, description.as_deref(), why),
            )?;
            Ok(End::Commit(true))
        })
        // Gone meanwhile (another revoke), that one may still be waiting for the servers.
        .inspect(|_| self.refused(true))
    }

    fn delete_tokens(
        &self,
        ids: &mut dyn Iterator<Item = &str>,
        still: &TokenQuery<'_>,
        at: i64,
        selection: &Selection<'_>,
    ) -> StoreResult<u64> {
        let ids: Vec<&str> = ids.collect();
        let detail = detail::prune(selection);
        self.write(Durability::OnCommit, |client| {
            let Selected {
                conditions,
                mut values,
            } = selected(still, 2);
            values.insert(0, (&ids, Type::TEXT_ARRAY));
            let gone = client.query_typed(
                &format!(
                    "WITH doomed AS (SELECT t.id
                                     FROM autheona.tokens t
                                     JOIN autheona.projects p ON p.id = t.project_id
                                     WHERE {conditions} AND t.id = ANY($1)
                                     ORDER BY t.id FOR UPDATE OF t)
                     DELETE FROM autheona.tokens t USING doomed d, autheona.projects p
                     WHERE t.id = d.id AND p.id = t.project_id
                     RETURNING t.id, p.name, t.description"
                ),
                &values,
            )?;
            let events: Vec<NewEvent<'_>> = gone
                .iter()
                .map(|row| {
                    NewEvent::new(at, Action::TokenPrune, detail.clone())
                        .project(row.get(1))
                        .token(row.get(0), row.get(2))
                })
                .collect();
            self.append_all(client, &events)?;
            Ok(End::Commit(gone.len() as u64))
        })
        .inspect(|&gone| self.refused(gone > 0))
    }

    fn insert_replacement(&self, old_id: &str, new: &NewToken<'_>) -> StoreResult<Inserted> {
        self.write(Durability::OnCommit, |client| {
            // INSERT_TOKEN's values, and the old token's id as $7.
            let mut values = token_params(new);
            values.push((&old_id, Type::TEXT));
            match client.execute_typed(INSERT_REPLACEMENT, &values) {
                Ok(0) => Ok(End::Rollback(Inserted::NoProject)),
                Ok(_) => {
                    self.append(client, &created(new, Some(old_id)))?;
                    Ok(End::Commit(Inserted::Done))
                }
                Err(err) if is_unique_violation(&err) => Ok(End::Rollback(Inserted::IdTaken)),
                // The project went between the SELECT and the foreign key's check.
                Err(err) if err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                    Ok(End::Rollback(Inserted::NoProject))
                }
                Err(err) => Err(err),
            }
        })
    }

    fn retire_token(
        &self,
        id: &str,
        by: &str,
        stops_at: Option<i64>,
        at: i64,
    ) -> StoreResult<Retired> {
        self.write(Durability::OnCommit, |client| {
            let changed = match &stops_at {
                // Not a token another rotation scheduled meanwhile: its end is set once.
                None => client.query_typed_opt(
                    "DELETE FROM autheona.tokens t USING autheona.projects p
                     WHERE p.id = t.project_id AND t.id = $1 AND t.stops_at IS NULL
                     RETURNING p.name, t.description",
                    &[(&id, Type::TEXT)],
                )?,
                Some(end) => client.query_typed_opt(
                    "UPDATE autheona.tokens t SET stops_at = $2, replaced_by = $3
                     FROM autheona.projects p
                     WHERE p.id = t.project_id AND t.id = $1 AND t.stops_at IS NULL
                     RETURNING p.name, t.description",
                    &[(&id, Type::TEXT), (end, Type::INT8), (&by, Type::TEXT)],
                )?,
            };
            if let Some(row) = changed {
                let (project, description): (String, Option<String>) = (row.get(0), row.get(1));
                let grace = stops_at.map_or(0, |end| end - at);
                let event = NewEvent::new(at, Action::TokenRotate, detail::rotate(by, grace));
                self.append(
                    client,
                    &event.project(&project).token(id, description.as_deref()),
                )?;
                return Ok(End::Commit(Retired::Done));
            }
            let scheduled = client
                .query_typed_opt(
                    "SELECT replaced_by, stops_at FROM autheona.tokens WHERE id = $1",
                    &[(&id, Type::TEXT)],
                )?
                .and_then(|row| Replacement::from_columns(row.get(0), row.get(1)));
            Ok(End::Rollback(match scheduled {
                Some(replacement) => Retired::Scheduled(replacement),
                None => Retired::Gone,
            }))
        })
        .inspect(|retired| self.refused(matches!(retired, Retired::Done | Retired::Gone)))
    }

    /// Looks first, in the partial index of scheduled ends (one round trip, and nearly always
    /// all there is); deletes, with the events, in a transaction committed asynchronously.
    fn remove_stopped(&self, now: i64) -> StoreResult<u64> {
        let any: bool = self.run(|client| {
            Ok(client
                .query_typed_one(
                    "SELECT EXISTS (SELECT 1 FROM autheona.tokens
                                    WHERE stops_at IS NOT NULL AND stops_at <= $1)",
                    &[(&now, Type::INT8)],
                )?
                .get(0))
        })?;
        if !any {
            return Ok(0);
        }
        self.write(Durability::Deferred, |client| {
            let gone = client.query_typed(
                "WITH stopped AS (SELECT id FROM autheona.tokens
                                  WHERE stops_at IS NOT NULL AND stops_at <= $1
                                  ORDER BY id FOR UPDATE)
                 DELETE FROM autheona.tokens t USING stopped s, autheona.projects p
                 WHERE t.id = s.id AND p.id = t.project_id
                 RETURNING t.id, p.name, t.description, t.replaced_by, t.stops_at",
                &[(&now, Type::INT8)],
            )?;
            let events: Vec<NewEvent<'_>> = gone
                .iter()
                .map(|row| {
                    NewEvent::new(now, Action::TokenStop, detail::stop(row.get(3), row.get(4)))
                        .project(row.get(1))
                        .token(row.get(0), row.get(2))
                })
                .collect();
            self.append_all(client, &events)?;
            Ok(End::Commit(gone.len() as u64))
        })
    }

    fn events(&self, query: &EventQuery<'_>, visit: Visit<'_, EventRow>) -> StoreResult<()> {
        self.read(|client| {
            let action = query.action.map(|action| action.as_str());
            let given: [(&str, Option<Param<'_>>); 6] = [
                ("project =", query.project.as_ref().map(|v| (v as _, Type::TEXT))),
                ("token_id =", query.token_id.as_ref().map(|v| (v as _, Type::TEXT))),
                ("action =", action.as_ref().map(|v| (v as _, Type::TEXT))),
                ("at >=", query.since.as_ref().map(|v| (v as _, Type::INT8))),
                ("seq >", query.after_seq.as_ref().map(|v| (v as _, Type::INT8))),
                ("seq <=", query.upto_seq.as_ref().map(|v| (v as _, Type::INT8))),
            ];
            let mut conditions: Vec<String> = vec!["true".into()];
            let mut values: Vec<Param<'_>> = Vec::new();
            for (condition, value) in given {
                if let Some(value) = value {
                    values.push(value);
                    conditions.push(format!("{condition} ${}", values.len()));
                }
            }
            let order = if query.oldest_first { "ASC" } else { "DESC" };
            let limit = query
                .limit
                .map_or_else(|| "ALL".to_owned(), |n| n.to_string());
            let statement = format!(
                "SELECT {EVENT_COLUMNS} FROM autheona.events WHERE {} ORDER BY seq {order} LIMIT {limit}",
                conditions.join(" AND ")
            );
            visit_rows(client, &statement, &values, event_row, visit)
        })
    }

    fn contents(&self) -> StoreResult<Contents> {
        self.run(contents)
    }

    fn export(&self, visit: Visit<'_, Record>) -> StoreResult<()> {
        self.read(|client| {
            let projects = "SELECT name, created_at FROM autheona.projects ORDER BY name";
            let read = |row: &Row| {
                Record::Project(ProjectRecord {
                    name: row.get(0),
                    created_at: row.get(1),
                })
            };
            if stream(client, projects, read, visit)?.is_break() {
                return Ok(());
            }
            // An older store's tokens have no scheduled ends.
            let version: i32 = client
                .query_typed_one("SELECT version FROM autheona.schema_version", &[])?
                .get(0);
            let ends = if version >= super::SCHEDULED_ENDS {
                "t.replaced_by, t.stops_at"
            } else {
                "NULL::text, NULL::int8"
            };
            // The order of `tokens`, which the copy's insertion order keeps.
            let tokens = format!(
                "SELECT t.id, p.name, t.secret_hash, t.description, t.created_at,
                        t.expires_at, t.last_used_at, {ends}
                 FROM autheona.tokens t
                 JOIN autheona.projects p ON p.id = t.project_id
                 ORDER BY t.created_at, t.seq"
            );
            let read = |row: &Row| {
                Record::Token(TokenRecord {
                    id: row.get(0),
                    project: row.get(1),
                    secret_hash: row.get(2),
                    description: row.get(3),
                    created_at: row.get(4),
                    expires_at: row.get(5),
                    last_used_at: row.get(6),
                    replacement: Replacement::from_columns(row.get(7), row.get(8)),
                })
            };
            if stream(client, &tokens, read, visit)?.is_break() || version < super::AUDIT_LOG {
                return Ok(());
            }
            let events = format!("SELECT {EVENT_COLUMNS} FROM autheona.events ORDER BY seq");
            stream(client, &events, |row| Record::Event(event_row(row)), visit).map(|_| ())
        })
    }

    /// The tables are locked against other writers (readers may read on) until the commit,
    /// as SQLite's write lock does: no row can come between the check that the store is
    /// empty and the copy.
    fn import(
        &self,
        at: i64,
        source: &str,
        fill: &mut dyn FnMut(&mut dyn Import) -> StoreResult<()>,
    ) -> StoreResult<Imported> {
        self.acting.actor();
        let mut client = self.client.borrow_mut();
        let _watched = super::watch::arm(&self.target);
        let begin = format!(
            "BEGIN;
             SET LOCAL synchronous_commit = on;
             SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
             SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}';
             LOCK TABLE autheona.projects, autheona.tokens IN EXCLUSIVE MODE;
             SELECT pg_advisory_xact_lock({});",
            super::LOG_LOCK
        );
        let held = client
            .batch_execute(&begin)
            .and_then(|()| contents(&mut client));
        let result = match held {
            Ok(held) if !held.is_empty() => Ok(Imported::NotEmpty(held)),
            Ok(_) => {
                let mut sink = PgImport {
                    store: self,
                    client: &mut client,
                    projects: Vec::new(),
                    tokens: Vec::new(),
                    events: Vec::new(),
                    added: Contents::default(),
                };
                fill(&mut sink).and_then(|()| sink.flush()).and_then(|()| {
                    let added = sink.added;
                    let detail = detail::copy(source, added.projects, added.tokens, added.events);
                    self.append(sink.client, &NewEvent::new(at, Action::StoreCopy, detail))
                        .map_err(|err| self.error(&err))?;
                    Ok(Imported::Done(added))
                })
            }
            Err(err) => Err(self.error(&err)),
        };
        match result {
            Ok(Imported::Done(added)) => client
                .batch_execute("COMMIT")
                .map(|()| Imported::Done(added))
                .map_err(|err| self.error(&err)),
            other => {
                // Nothing to keep; a lost connection has nothing left to roll back.
                let _ = client.batch_execute("ROLLBACK");
                other
            }
        }
    }
}

fn contents(client: &mut Client) -> PgResult<Contents> {
    // An older store, read as it is, has no log.
    let version: i32 = client
        .query_typed_one("SELECT version FROM autheona.schema_version", &[])?
        .get(0);
    let events = if version >= super::AUDIT_LOG {
        "(SELECT count(*) FROM autheona.events)"
    } else {
        "0::int8"
    };
    let row = client.query_typed_one(
        &format!(
            "SELECT (SELECT count(*) FROM autheona.projects), \
                    (SELECT count(*) FROM autheona.tokens), {events}"
        ),
        &[],
    )?;
    Ok(Contents {
        projects: row.get::<_, i64>(0).unsigned_abs(),
        tokens: row.get::<_, i64>(1).unsigned_abs(),
        events: row.get::<_, i64>(2).unsigned_abs(),
    })
}

/// Hands each row of `query` to `visit`, streaming, as [`visit_rows`] does; says whether the
/// visitor stopped it.
fn stream<T>(
    client: &mut Client,
    query: &str,
    read: impl Fn(&Row) -> T,
    visit: Visit<'_, T>,
) -> PgResult<std::ops::ControlFlow<()>> {
    let none: [Param<'_>; 0] = [];
    let mut rows = client.query_typed_raw(query, none)?;
    while let Some(row) = rows.next()? {
        if super::watch::outside(|| visit(read(&row))).is_break() {
            return Ok(std::ops::ControlFlow::Break(()));
        }
    }
    Ok(std::ops::ControlFlow::Continue(()))
}

/// Inserts copied projects, a batch at a time.
const IMPORT_PROJECTS: &str = "INSERT INTO autheona.projects (name, created_at)
     SELECT n.name, n.created_at
     FROM unnest($1::text[], $2::int8[]) WITH ORDINALITY AS n (name, created_at, ord)
     ORDER BY n.ord";

/// Inserts copied tokens, last use included, each into its project by name, a batch at a
/// time, in the order given (which `seq` keeps, as [`INSERT_TOKENS`] does).
const IMPORT_TOKENS: &str = "INSERT INTO autheona.tokens
         (id, project_id, secret_hash, description, created_at, expires_at, last_used_at,
          replaced_by, stops_at)
     SELECT n.id, p.id, n.secret_hash, n.description, n.created_at, n.expires_at,
            n.last_used_at, n.replaced_by, n.stops_at
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                 $7::int8[], $8::text[], $9::int8[])
              WITH ORDINALITY AS n (id, project, secret_hash, description, created_at,
                                    expires_at, last_used_at, replaced_by, stops_at, ord)
     JOIN autheona.projects p ON p.name = n.project
     ORDER BY n.ord";

/// Appends copied events as they were, actor included, a batch at a time, in the order given.
const IMPORT_EVENTS: &str = "INSERT INTO autheona.events
         (at, action, project, token_id, description, detail, actor_user, actor_uid, actor_host,
          actor_role)
     SELECT n.at, n.action, n.project, n.token_id, n.description, n.detail, n.actor_user,
            n.actor_uid, n.actor_host, n.actor_role
     FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::int8[], $9::text[], $10::text[])
              WITH ORDINALITY AS n (at, action, project, token_id, description, detail,
                                    actor_user, actor_uid, actor_host, actor_role, ord)
     ORDER BY n.ord";

/// [`Import`] into a PostgreSQL store, within [`Store::import`]'s transaction: rows are held
/// until [`INSERT_BATCH`] of a kind are there (or a token follows projects), then inserted in
/// one statement, so memory stays that of one batch.
struct PgImport<'c> {
    store: &'c Postgres,
    client: &'c mut Client,
    projects: Vec<ProjectRecord>,
    tokens: Vec<TokenRecord>,
    events: Vec<EventRow>,
    added: Contents,
}

impl PgImport<'_> {
    fn flush(&mut self) -> StoreResult<()> {
        self.flush_projects()?;
        self.flush_tokens()?;
        self.flush_events()
    }

    fn flush_events(&mut self) -> StoreResult<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let batch = &self.events;
        let text = |f: fn(&EventRow) -> Option<&str>| -> Vec<Option<&str>> {
            batch.iter().map(f).collect()
        };
        let at: Vec<i64> = batch.iter().map(|e| e.at).collect();
        let actions = text(|e| Some(&e.action));
        let projects = text(|e| e.project.as_deref());
        let token_ids = text(|e| e.token_id.as_deref());
        let descriptions = text(|e| e.description.as_deref());
        let details = text(|e| Some(&e.detail));
        let users = text(|e| e.user.as_deref());
        let uids: Vec<Option<i64>> = batch.iter().map(|e| e.uid).collect();
        let hosts = text(|e| e.host.as_deref());
        let roles = text(|e| e.role.as_deref());
        let added = self
            .client
            .execute_typed(
                IMPORT_EVENTS,
                &[
                    (&at, Type::INT8_ARRAY),
                    (&actions, Type::TEXT_ARRAY),
                    (&projects, Type::TEXT_ARRAY),
                    (&token_ids, Type::TEXT_ARRAY),
                    (&descriptions, Type::TEXT_ARRAY),
                    (&details, Type::TEXT_ARRAY),
                    (&users, Type::TEXT_ARRAY),
                    (&uids, Type::INT8_ARRAY),
                    (&hosts, Type::TEXT_ARRAY),
                    (&roles, Type::TEXT_ARRAY),
                ],
            )
            .map_err(|err| self.store.error(&err))?;
        super::watch::answered();
        self.added.events += added;
        self.events.clear();
        Ok(())
    }

    fn flush_projects(&mut self) -> StoreResult<()> {
        if self.projects.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.projects.iter().map(|p| p.name.as_str()).collect();
        let created: Vec<i64> = self.projects.iter().map(|p| p.created_at).collect();
        let added = self
            .client
            .execute_typed(
                IMPORT_PROJECTS,
                &[(&names, Type::TEXT_ARRAY), (&created, Type::INT8_ARRAY)],
            )
            .map_err(|err| self.store.error(&err))?;
        super::watch::answered();
        self.added.projects += added;
        self.projects.clear();
        Ok(())
    }

    fn flush_tokens(&mut self) -> StoreResult<()> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        let batch = &self.tokens;
        let text = |f: fn(&TokenRecord) -> &str| -> Vec<&str> { batch.iter().map(f).collect() };
        let ids = text(|t| &t.id);
        let projects = text(|t| &t.project);
        let hashes = text(|t| &t.secret_hash);
        let descriptions: Vec<Option<&str>> =
            batch.iter().map(|t| t.description.as_deref()).collect();
        let created: Vec<i64> = batch.iter().map(|t| t.created_at).collect();
        let expires: Vec<Option<i64>> = batch.iter().map(|t| t.expires_at).collect();
        let used: Vec<Option<i64>> = batch.iter().map(|t| t.last_used_at).collect();
        let replaced_by: Vec<Option<&str>> = batch
            .iter()
            .map(|t| t.replacement.as_ref().map(|r| r.by.as_str()))
            .collect();
        let stops_at: Vec<Option<i64>> = batch
            .iter()
            .map(|t| t.replacement.as_ref().map(|r| r.stops_at))
            .collect();
        let added = self
            .client
            .execute_typed(
                IMPORT_TOKENS,
                &[
                    (&ids, Type::TEXT_ARRAY),
                    (&projects, Type::TEXT_ARRAY),
                    (&hashes, Type::TEXT_ARRAY),
                    (&descriptions, Type::TEXT_ARRAY),
                    (&created, Type::INT8_ARRAY),
                    (&expires, Type::INT8_ARRAY),
                    (&used, Type::INT8_ARRAY),
                    (&replaced_by, Type::TEXT_ARRAY),
                    (&stops_at, Type::INT8_ARRAY),
                ],
            )
            .map_err(|err| self.store.error(&err))?;
        super::watch::answered();
        if added != batch.len() as u64 {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "PostgreSQL {}: cannot add {} tokens: their project is not there",
                    self.store.target,
                    batch.len() as u64 - added
                ),
            )
            .on_server());
        }
        self.added.tokens += added;
        self.tokens.clear();
        Ok(())
    }
}

impl Import for PgImport<'_> {
    fn add(&mut self, record: Record) -> StoreResult<()> {
        match record {
            Record::Project(project) => {
                self.projects.push(project);
                if self.projects.len() == INSERT_BATCH {
                    self.flush_projects()?;
                }
            }
            Record::Token(token) => {
                // Its project first.
                self.flush_projects()?;
                self.tokens.push(token);
                if self.tokens.len() == INSERT_BATCH {
                    self.flush_tokens()?;
                }
            }
            Record::Event(event) => {
                self.events.push(event);
                if self.events.len() == INSERT_BATCH {
                    self.flush_events()?;
                }
            }
        }
        Ok(())
    }
}
