//! The SQL for projects and tokens: [`Store`] for [`Sqlite`].
//!
//! Each method runs its statements with rusqlite's own errors and turns them into a
//! [`StoreError`] once, in [`Sqlite::run`] or [`Sqlite::write`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, ToSql, TransactionBehavior, params};

use super::Sqlite;
use crate::store::audit::{NewEvent, created, detail, revoked};
use crate::store::{
    Action, Contents, Durability, EventQuery, EventRow, Import, Imported, Inserted, NewToken,
    ProjectRecord, ProjectRow, Record, Removal, Replacement, Retired, Selection, Store, StoreError,
    StoreErrorKind, StoreResult, TokenQuery, TokenRecord, TokenRow, VerifyRow, Visit, WhoActs,
};

/// Inserts a token into the project named ?2, if there is one, in the same statement.
const INSERT_TOKEN: &str =
    "INSERT INTO tokens (id, project_id, secret_hash, description, created_at, expires_at)
     SELECT ?1, id, ?3, ?4, ?5, ?6 FROM projects WHERE name = ?2";

/// Inserts a token into the project of the token ?7, if that token still exists, has no
/// scheduled end and is of the project named ?2, in the same statement.
const INSERT_REPLACEMENT: &str =
    "INSERT INTO tokens (id, project_id, secret_hash, description, created_at, expires_at)
     SELECT ?1, t.project_id, ?3, ?4, ?5, ?6
     FROM tokens t JOIN projects p ON p.id = t.project_id
     WHERE t.id = ?7 AND p.name = ?2 AND t.stops_at IS NULL";

/// The values for [`INSERT_TOKEN`], in its order.
fn token_params<'a>(token: &'a NewToken<'_>) -> [&'a dyn ToSql; 6] {
    [
        &token.id,
        &token.project,
        &token.secret_hash,
        &token.description,
        &token.created_at,
        &token.expires_at,
    ]
}

const TOKEN_COLUMNS: &str =
    "t.id, p.name, t.description, t.created_at, t.expires_at, t.last_used_at, t.replaced_by,
     t.stops_at
     FROM tokens t JOIN projects p ON p.id = t.project_id";

/// A token still there at ?: not stopped by a scheduled end at or before it.
const LIVE: &str = "(t.stops_at IS NULL OR t.stops_at > ?)";

/// The conditions of a [`TokenQuery`] on `t` (tokens) and `p` (projects), as SQL and its
/// values: only those the query sets, so that an unfiltered list of a million tokens tests
/// none per row. Written once, for listing and for deleting what is still selected.
fn selected<'a>(query: &'a TokenQuery<'_>) -> (String, Vec<Box<dyn ToSql + 'a>>) {
    let mut conditions: Vec<&str> = vec!["1"];
    let mut values: Vec<Box<dyn ToSql + 'a>> = Vec::new();
    if let Some(project) = query.project {
        conditions.push("p.name = ?");
        values.push(Box::new(project));
    }
    if let Some(at) = query.expired_at {
        conditions.push("t.expires_at <= ?");
        values.push(Box::new(at));
    }
    if let Some((now, until)) = query.expiring {
        conditions.push("t.expires_at > ? AND t.expires_at <= ?");
        values.push(Box::new(now));
        values.push(Box::new(until));
    }
    if query.never_used {
        conditions.push("t.last_used_at IS NULL");
    }
    if let Some(since) = query.unused_since {
        conditions.push("coalesce(t.last_used_at, t.created_at) <= ?");
        values.push(Box::new(since));
    }
    if let Some(at) = query.live_at {
        conditions.push(LIVE);
        values.push(Box::new(at));
    }
    (conditions.join(" AND "), values)
}

fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        project: row.get(1)?,
        description: row.get(2)?,
        created_at: row.get(3)?,
        expires_at: row.get(4)?,
        last_used_at: row.get(5)?,
        replacement: Replacement::from_columns(row.get(6)?, row.get(7)?),
    })
}

fn project_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM projects WHERE name = ?1", [name], |row| {
        row.get(0)
    })
    .optional()
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(failure, _)
        if failure.code == ErrorCode::ConstraintViolation
            && failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Hands each row of `rows` to `visit` until it breaks.
fn visit_rows<T>(
    mut rows: rusqlite::Rows<'_>,
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    visit: Visit<'_, T>,
) -> rusqlite::Result<()> {
    while let Some(row) = rows.next()? {
        if visit(read(row)?).is_break() {
            break;
        }
    }
    Ok(())
}

/// Appends an event, with its actor.
const APPEND_EVENT: &str = "INSERT INTO events
         (at, action, project, token_id, description, detail, actor_user, actor_uid, actor_host,
          actor_role)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)";

/// A token's project and description, for the event of its end.
fn token_facts(conn: &Connection, id: &str) -> rusqlite::Result<Option<(String, Option<String>)>> {
    conn.query_row(
        "SELECT p.name, t.description FROM tokens t JOIN projects p ON p.id = t.project_id
         WHERE t.id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()
}

const EVENT_COLUMNS: &str = "seq, at, action, project, token_id, description, detail, \
     actor_user, actor_uid, actor_host, actor_role";

fn event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: row.get(0)?,
        at: row.get(1)?,
        action: row.get(2)?,
        project: row.get(3)?,
        token_id: row.get(4)?,
        description: row.get(5)?,
        detail: row.get(6)?,
        user: row.get(7)?,
        uid: row.get(8)?,
        host: row.get(9)?,
        role: row.get(10)?,
    })
}

/// verify's lookup of a token's row, with its project's name.
pub(super) const VERIFY_LOOKUP: &str =
    "SELECT t.secret_hash, p.name, t.expires_at, t.replaced_by, t.stops_at
     FROM tokens t JOIN projects p ON p.id = t.project_id
     WHERE t.id = ?1";

impl Sqlite {
    /// Appends `event` to the audit log, in the transaction of the change it records.
    fn append(&self, conn: &Connection, event: &NewEvent<'_>) -> rusqlite::Result<()> {
        let actor = self.acting.actor();
        conn.prepare_cached(APPEND_EVENT)?.execute(params![
            event.at,
            event.action.as_str(),
            event.project,
            event.token_id,
            event.description,
            event.detail,
            actor.user,
            actor.uid,
            actor.host,
        ])?;
        Ok(())
    }

    /// Runs `f` on the connection; its error becomes the store's, naming the database.
    fn run<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        f(&self.conn).map_err(|err| self.error(&err))
    }

    /// Runs `f` in a write transaction (taking the write lock at once) that commits when it
    /// returns `Ok(Some(_))`, durably or not as asked; `Ok(None)` rolls it back.
    fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Option<T>>,
    ) -> StoreResult<Option<T>> {
        let synchronous = match durability {
            Durability::OnCommit => "FULL",
            Durability::Deferred => "NORMAL",
        };
        // Who acts is looked up (NSS, perhaps a directory server) before the write lock is
        // taken, not while others wait for it.
        self.acting.actor();
        self.run(|conn| {
            // A per-connection setting, read at each commit: set for this write alone.
            conn.pragma_update(None, "synchronous", synchronous)?;
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let done = f(&tx)?;
            if done.is_some() {
                tx.commit()?;
            }
            Ok(done)
        })
    }

    /// The -wal file beside SQLite's own name for the database (symbolic links resolved).
    fn log_path(&self) -> Option<PathBuf> {
        let database = self.conn.path().filter(|p| !p.is_empty())?;
        Some(super::sidecar(Path::new(database), "-wal"))
    }

    /// After a write: once the log holds more than `LOG_PAGES` pages, copy it into the
    /// database and truncate it, so that the next process reads little of it on opening.
    fn bound_log(&self) {
        const FRAME: u64 = 4096 + 24;
        if self
            .log_path()
            .and_then(|log| std::fs::metadata(log).ok())
            .is_some_and(|meta| meta.len() > super::LOG_PAGES * FRAME)
        {
            // Not worth waiting for: if a reader is in the way, a later write does it.
            self.truncate_log(Duration::ZERO);
        }
    }

    /// Copies the log into the main file and truncates it, so deleted rows' old page images
    /// (hashes included) do not stay in the -wal file. Best effort: another process reading at
    /// that moment holds it back (waited for briefly, not for the full busy timeout); the
    /// hash then stays in the log until the log is next restarted and truncated.
    fn scrub_log(&self) {
        self.truncate_log(Duration::from_millis(200));
    }

    /// Copies the whole log into the database and truncates it, or fails: for a database
    /// that must be whole without its log. No other connection may be reading.
    pub(super) fn checkpoint_all(&self) -> StoreResult<()> {
        let (busy, log, copied): (i64, i64, i64) = self.run(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
        })?;
        if busy != 0 || copied != log {
            return Err(StoreError::new(
                StoreErrorKind::Io,
                format!(
                    "cannot write database {}: its log could not be copied into it",
                    self.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// Copies the log into the database and truncates it, waiting at most `wait` for readers.
    fn truncate_log(&self, wait: Duration) {
        let _ = self.conn.busy_timeout(wait);
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.busy_timeout(super::BUSY_TIMEOUT);
    }
}

impl Store for Sqlite {
    fn file(&self) -> Option<&Path> {
        Some(self.path.as_path()).filter(|path| path.as_os_str() != ":memory:")
    }

    fn act_as(&mut self, who: WhoActs) {
        self.acting.set(who);
    }

    fn insert_project(&self, name: &str, created_at: i64) -> StoreResult<bool> {
        let inserted = self.write(Durability::OnCommit, |tx| {
            match tx.execute(
                "INSERT INTO projects (name, created_at) VALUES (?1, ?2)",
                params![name, created_at],
            ) {
                Ok(_) => {
                    let event = NewEvent::new(created_at, Action::ProjectCreate, detail::none());
                    self.append(tx, &event.project(name))?;
                    Ok(Some(true))
                }
                Err(err) if is_unique_violation(&err) => Ok(None),
                Err(err) => Err(err),
            }
        })?;
        self.bound_log();
        Ok(inserted.is_some())
    }

    fn projects(&self, live_at: i64, passes: &mut [Visit<'_, ProjectRow>]) -> StoreResult<()> {
        self.run(|conn| {
            // One read transaction: every pass sees the same rows.
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
            let mut statement = tx.prepare(&format!(
                "SELECT p.name, p.created_at,
                        (SELECT count(*) FROM tokens t WHERE t.project_id = p.id AND {LIVE})
                 FROM projects p ORDER BY p.name"
            ))?;
            let read = |row: &rusqlite::Row<'_>| {
                Ok(ProjectRow {
                    name: row.get(0)?,
                    created_at: row.get(1)?,
                    tokens: row.get::<_, i64>(2)?.unsigned_abs(),
                })
            };
            for visit in passes.iter_mut() {
                visit_rows(statement.query([live_at])?, read, *visit)?;
            }
            Ok(())
        })
    }

    fn project_exists(&self, name: &str) -> StoreResult<bool> {
        self.run(|conn| project_id(conn, name).map(|id| id.is_some()))
    }

    fn project_token_count(&self, name: &str, live_at: i64) -> StoreResult<Option<u64>> {
        self.run(|conn| {
            conn.query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM tokens t WHERE t.project_id = p.id AND {LIVE})
                     FROM projects p WHERE p.name = ?"
                ),
                params![live_at, name],
                |row| row.get::<_, i64>(0).map(i64::unsigned_abs),
            )
            .optional()
        })
    }

    fn delete_project(&self, name: &str, at: i64) -> StoreResult<Option<u64>> {
        // It revokes tokens: durable.
        let deleted = self.write(Durability::OnCommit, |tx| {
            let Some(project_id) = project_id(tx, name)? else {
                return Ok(None);
            };
            let tokens = tx.execute("DELETE FROM tokens WHERE project_id = ?1", [project_id])?;
            tx.execute("DELETE FROM projects WHERE id = ?1", [project_id])?;
            let event = NewEvent::new(
                at,
                Action::ProjectDelete,
                detail::project_delete(tokens as u64),
            );
            self.append(tx, &event.project(name))?;
            Ok(Some(tokens as u64))
        })?;
        if deleted.is_some() {
            self.scrub_log();
        }
        Ok(deleted)
    }

    fn insert_token(&self, token: &NewToken<'_>, durability: Durability) -> StoreResult<Inserted> {
        let inserted = self.write(durability, |tx| {
            match tx.execute(INSERT_TOKEN, token_params(token)) {
                Ok(0) => Ok(Some(Inserted::NoProject)),
                Ok(_) => {
                    self.append(tx, &created(token, None))?;
                    Ok(Some(Inserted::Done))
                }
                Err(err) if is_unique_violation(&err) => Ok(Some(Inserted::IdTaken)),
                Err(err) => Err(err),
            }
        })?;
        Ok(inserted.unwrap_or(Inserted::NoProject))
    }

    /// Syncs the write-ahead log to disk: every commit so far is then durable.
    fn make_durable(&self) -> StoreResult<()> {
        let Some(log) = self.log_path() else {
            return Ok(()); // in memory: nothing to sync
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(log)
            .and_then(|file| file.sync_data())
            .map_err(|err| {
                StoreError::new(
                    StoreErrorKind::Io,
                    format!(
                        "cannot sync database {} to disk: {err}",
                        self.path.display()
                    ),
                )
                .caused_by(err)
            })?;
        self.bound_log();
        Ok(())
    }

    fn insert_tokens(&self, tokens: &mut dyn Iterator<Item = NewToken<'_>>) -> StoreResult<usize> {
        let count = self.write(Durability::OnCommit, |tx| {
            let mut insert = tx.prepare(INSERT_TOKEN)?;
            let mut count = 0;
            for token in tokens {
                count += insert.execute(token_params(&token))?;
            }
            Ok(Some(count))
        })?;
        // Leave no large log behind for the next process to read.
        self.scrub_log();
        Ok(count.unwrap_or(0))
    }

    fn tokens(
        &self,
        query: &TokenQuery<'_>,
        passes: &mut [Visit<'_, TokenRow>],
    ) -> StoreResult<bool> {
        self.run(|conn| {
            // One read transaction: every pass sees the same rows.
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
            if let Some(name) = query.project
                && project_id(&tx, name)?.is_none()
            {
                return Ok(false);
            }
            let (conditions, values) = selected(query);
            let mut statement = tx.prepare(&format!(
                "SELECT {TOKEN_COLUMNS} WHERE {conditions} ORDER BY t.created_at, t.rowid"
            ))?;
            let values: Vec<&dyn ToSql> = values.iter().map(|v| v.as_ref()).collect();
            for visit in passes.iter_mut() {
                visit_rows(statement.query(&values[..])?, token_row, *visit)?;
            }
            Ok(true)
        })
    }

    fn token(&self, id: &str) -> StoreResult<Option<TokenRow>> {
        self.run(|conn| {
            conn.query_row(
                &format!("SELECT {TOKEN_COLUMNS} WHERE t.id = ?1"),
                [id],
                token_row,
            )
            .optional()
        })
    }

    fn token_for_verify(&self, id: &str) -> StoreResult<Option<VerifyRow>> {
        // Cached: `serve` asks this on every request, on the same connection.
        self.run(|conn| {
            conn.prepare_cached(VERIFY_LOOKUP)?
                .query_row([id], |row| {
                    Ok(VerifyRow {
                        secret_hash: row.get(0)?,
                        project: row.get(1)?,
                        expires_at: row.get(2)?,
                        replacement: Replacement::from_columns(row.get(3)?, row.get(4)?),
                    })
                })
                .optional()
        })
    }

    /// Last-used is a hint, not a promise: it commits without waiting for the disk.
    fn record_use(&self, id: &str, at: i64) -> StoreResult<bool> {
        // One autocommit statement: no transaction is begun and ended around it.
        let changed = self.run(|conn| {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute(
                "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2",
                params![at, id],
            )
        })?;
        self.bound_log();
        Ok(changed == 1)
    }

    fn record_uses(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        self.write(Durability::Deferred, |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE tokens SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
            )?;
            for (id, at) in uses {
                update.execute(params![id, at])?;
            }
            Ok(Some(()))
        })?;
        self.bound_log();
        Ok(())
    }

    fn clock(&self) -> StoreResult<Option<i64>> {
        self.run(|conn| conn.query_row("SELECT 1", [], |_| Ok(None)))
    }

    fn delete_token(&self, id: &str, at: i64, why: Removal) -> StoreResult<bool> {
        let deleted = self
            .write(Durability::OnCommit, |tx| {
                let Some((project, description)) = token_facts(tx, id)? else {
                    return Ok(Some(0));
                };
                let deleted = tx.execute("DELETE FROM tokens WHERE id = ?1", [id])?;
                self.append(tx, &revoked(at, &project, id, description.as_deref(), why))?;
                Ok(Some(deleted))
            })?
            .unwrap_or(0);
        if deleted == 1 {
            self.scrub_log();
        }
        Ok(deleted == 1)
    }

    fn delete_tokens(
        &self,
        ids: &mut dyn Iterator<Item = &str>,
        still: &TokenQuery<'_>,
        at: i64,
        selection: &Selection<'_>,
    ) -> StoreResult<u64> {
        let deleted = self
            .write(Durability::OnCommit, |tx| {
                let (conditions, values) = selected(still);
                // Each token still selected, with what its event names; then deleted by id.
                let mut still_selected = tx.prepare(&format!(
                    "SELECT p.name, t.description FROM tokens t JOIN projects p ON p.id = t.project_id
                     WHERE {conditions} AND t.id = ?"
                ))?;
                let mut delete = tx.prepare("DELETE FROM tokens WHERE id = ?1")?;
                let detail = detail::prune(selection);
                let mut deleted = 0;
                for id in ids {
                    let mut all: Vec<&dyn ToSql> = values.iter().map(|v| v.as_ref()).collect();
                    all.push(&id);
                    let found = still_selected
                        .query_row(&all[..], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
                        })
                        .optional()?;
                    let Some((project, description)) = found else {
                        continue;
                    };
                    deleted += delete.execute([id])? as u64;
                    let event = NewEvent::new(at, Action::TokenPrune, detail.clone());
                    self.append(tx, &event.project(&project).token(id, description.as_deref()))?;
                }
                Ok(Some(deleted))
            })?
            .unwrap_or(0);
        if deleted > 0 {
            self.scrub_log();
        }
        Ok(deleted)
    }

    fn insert_replacement(&self, old_id: &str, new: &NewToken<'_>) -> StoreResult<Inserted> {
        let inserted = self.write(Durability::OnCommit, |tx| {
            // INSERT_TOKEN's values, and the old token's id as ?7.
            let mut values = token_params(new).to_vec();
            values.push(&old_id);
            match tx.execute(INSERT_REPLACEMENT, &values[..]) {
                Ok(0) => Ok(Some(Inserted::NoProject)),
                Ok(_) => {
                    self.append(tx, &created(new, Some(old_id)))?;
                    Ok(Some(Inserted::Done))
                }
                Err(err) if is_unique_violation(&err) => Ok(Some(Inserted::IdTaken)),
                Err(err) => Err(err),
            }
        })?;
        Ok(inserted.unwrap_or(Inserted::NoProject))
    }

    fn retire_token(
        &self,
        id: &str,
        by: &str,
        stops_at: Option<i64>,
        at: i64,
    ) -> StoreResult<Retired> {
        let retired = self.write(Durability::OnCommit, |tx| {
            let facts = token_facts(tx, id)?;
            let changed = match stops_at {
                // Not a token another rotation scheduled meanwhile: its end is set once.
                None => tx.execute(
                    "DELETE FROM tokens WHERE id = ?1 AND stops_at IS NULL",
                    [id],
                )?,
                Some(at) => tx.execute(
                    "UPDATE tokens SET stops_at = ?2, replaced_by = ?3
                     WHERE id = ?1 AND stops_at IS NULL",
                    params![id, at, by],
                )?,
            };
            if let (1, Some((project, description))) = (changed, &facts) {
                let grace = stops_at.map_or(0, |end| end - at);
                let event = NewEvent::new(at, Action::TokenRotate, detail::rotate(by, grace));
                self.append(
                    tx,
                    &event.project(project).token(id, description.as_deref()),
                )?;
                return Ok(Some(Retired::Done));
            }
            let scheduled = tx
                .query_row(
                    "SELECT replaced_by, stops_at FROM tokens WHERE id = ?1",
                    [id],
                    |row| Ok(Replacement::from_columns(row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            Ok(Some(match scheduled {
                Some(Some(replacement)) => Retired::Scheduled(replacement),
                _ => Retired::Gone,
            }))
        })?;
        let retired = retired.unwrap_or(Retired::Gone);
        if retired == Retired::Done && stops_at.is_none() {
            self.scrub_log();
        }
        Ok(retired)
    }

    /// Looks first, in the partial index of scheduled ends: the write lock is taken only when
    /// there is something to delete (nearly never), so that every command's sweep neither
    /// waits for another writer nor fails on a file it may only read.
    fn remove_stopped(&self, now: i64) -> StoreResult<u64> {
        let any: bool = self.run(|conn| {
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE stops_at IS NOT NULL AND stops_at <= ?1)",
            )?
            .query_row([now], |row| row.get(0))
        })?;
        if !any {
            return Ok(0);
        }
        let removed = self
            .write(Durability::Deferred, |tx| {
                let stopped: Vec<(String, String, Option<String>, String, i64)> = tx
                    .prepare(
                        "SELECT t.id, p.name, t.description, t.replaced_by, t.stops_at
                         FROM tokens t JOIN projects p ON p.id = t.project_id
                         WHERE t.stops_at IS NOT NULL AND t.stops_at <= ?1",
                    )?
                    .query_map([now], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                for (id, project, description, by, end) in &stopped {
                    tx.execute("DELETE FROM tokens WHERE id = ?1", [id])?;
                    let event = NewEvent::new(now, Action::TokenStop, detail::stop(by, *end));
                    self.append(
                        tx,
                        &event.project(project).token(id, description.as_deref()),
                    )?;
                }
                Ok(Some(stopped.len() as u64))
            })?
            .unwrap_or(0);
        if removed > 0 {
            self.scrub_log();
        }
        Ok(removed)
    }

    fn events(&self, query: &EventQuery<'_>, visit: Visit<'_, EventRow>) -> StoreResult<()> {
        self.run(|conn| {
            let mut conditions: Vec<&str> = vec!["1"];
            let mut values: Vec<&dyn ToSql> = Vec::new();
            if let Some(project) = &query.project {
                conditions.push("project = ?");
                values.push(project);
            }
            if let Some(id) = &query.token_id {
                conditions.push("token_id = ?");
                values.push(id);
            }
            let action = query.action.map(|action| action.as_str());
            if let Some(action) = &action {
                conditions.push("action = ?");
                values.push(action);
            }
            if let Some(since) = &query.since {
                conditions.push("at >= ?");
                values.push(since);
            }
            if let Some(after) = &query.after_seq {
                conditions.push("seq > ?");
                values.push(after);
            }
            if let Some(upto) = &query.upto_seq {
                conditions.push("seq <= ?");
                values.push(upto);
            }
            let order = if query.oldest_first { "ASC" } else { "DESC" };
            let limit = query
                .limit
                .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
            values.push(&limit);
            let mut statement = conn.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY seq {order} LIMIT ?",
                conditions.join(" AND ")
            ))?;
            visit_rows(statement.query(&values[..])?, event_row, visit)
        })
    }

    fn contents(&self) -> StoreResult<Contents> {
        self.run(contents)
    }

    fn export(&self, visit: Visit<'_, Record>) -> StoreResult<()> {
        self.run(|conn| {
            // One read transaction: the tokens are those of the projects read.
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
            let mut projects = tx.prepare("SELECT name, created_at FROM projects ORDER BY name")?;
            let mut rows = projects.query([])?;
            while let Some(row) = rows.next()? {
                let project = ProjectRecord {
                    name: row.get(0)?,
                    created_at: row.get(1)?,
                };
                if visit(Record::Project(project)).is_break() {
                    return Ok(());
                }
            }
            // An older store's tokens have no scheduled ends.
            let version: i32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            let ends = if version >= super::schema::SCHEDULED_ENDS {
                "t.replaced_by, t.stops_at"
            } else {
                "NULL, NULL"
            };
            // The order of `tokens`, which the copy's insertion order keeps.
            let mut tokens = tx.prepare(&format!(
                "SELECT t.id, p.name, t.secret_hash, t.description, t.created_at, t.expires_at,
                        t.last_used_at, {ends}
                 FROM tokens t JOIN projects p ON p.id = t.project_id
                 ORDER BY t.created_at, t.rowid"
            ))?;
            let mut rows = tokens.query([])?;
            while let Some(row) = rows.next()? {
                let token = TokenRecord {
                    id: row.get(0)?,
                    project: row.get(1)?,
                    secret_hash: row.get(2)?,
                    description: row.get(3)?,
                    created_at: row.get(4)?,
                    expires_at: row.get(5)?,
                    last_used_at: row.get(6)?,
                    replacement: Replacement::from_columns(row.get(7)?, row.get(8)?),
                };
                if visit(Record::Token(token)).is_break() {
                    return Ok(());
                }
            }
            if version < super::schema::AUDIT_LOG {
                return Ok(());
            }
            let mut events =
                tx.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"))?;
            let mut rows = events.query([])?;
            while let Some(row) = rows.next()? {
                if visit(Record::Event(event_row(row)?)).is_break() {
                    return Ok(());
                }
            }
            Ok(())
        })
    }

    fn import(
        &self,
        at: i64,
        source: &str,
        fill: &mut dyn FnMut(&mut dyn Import) -> StoreResult<()>,
    ) -> StoreResult<Imported> {
        // Durable on commit; the write lock, taken at once, holds off other writers until
        // then. Dropped uncommitted, the transaction rolls back.
        self.acting.actor();
        let conn = &self.conn;
        let tx = conn
            .pragma_update(None, "synchronous", "FULL")
            .and_then(|()| {
                rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            })
            .map_err(|err| self.error(&err))?;
        let held = contents(&tx).map_err(|err| self.error(&err))?;
        if !held.is_empty() {
            return Ok(Imported::NotEmpty(held));
        }
        let mut sink = SqliteImport {
            store: self,
            project: tx
                .prepare("INSERT INTO projects (name, created_at) VALUES (?1, ?2)")
                .map_err(|err| self.error(&err))?,
            token: tx.prepare(IMPORT_TOKEN).map_err(|err| self.error(&err))?,
            event: tx.prepare(IMPORT_EVENT).map_err(|err| self.error(&err))?,
            added: Contents::default(),
        };
        fill(&mut sink)?;
        let added = sink.added;
        drop(sink);
        let detail = detail::copy(source, added.projects, added.tokens, added.events);
        self.append(&tx, &NewEvent::new(at, Action::StoreCopy, detail))
            .and_then(|()| tx.commit())
            .map_err(|err| self.error(&err))?;
        // Leave no large log behind for the next process to read.
        self.scrub_log();
        Ok(Imported::Done(added))
    }
}

/// Appends a copied event as it was, actor included, after those already there.
const IMPORT_EVENT: &str = "INSERT INTO events
         (at, action, project, token_id, description, detail, actor_user, actor_uid, actor_host,
          actor_role)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Inserts a copied token, last use and scheduled end included, into the project named ?2.
const IMPORT_TOKEN: &str = "INSERT INTO tokens
         (id, project_id, secret_hash, description, created_at, expires_at, last_used_at,
          replaced_by, stops_at)
     SELECT ?1, id, ?3, ?4, ?5, ?6, ?7, ?8, ?9 FROM projects WHERE name = ?2";

fn contents(conn: &Connection) -> rusqlite::Result<Contents> {
    // An older store, read as it is, has no log.
    let version: i32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let events = if version >= super::schema::AUDIT_LOG {
        "(SELECT count(*) FROM events)"
    } else {
        "0"
    };
    conn.query_row(
        &format!("SELECT (SELECT count(*) FROM projects), (SELECT count(*) FROM tokens), {events}"),
        [],
        |row| {
            Ok(Contents {
                projects: row.get::<_, i64>(0)?.unsigned_abs(),
                tokens: row.get::<_, i64>(1)?.unsigned_abs(),
                events: row.get::<_, i64>(2)?.unsigned_abs(),
            })
        },
    )
}

/// [`Import`] into an SQLite store, within [`Store::import`]'s transaction: one prepared
/// statement per kind of row, run once per row.
struct SqliteImport<'t> {
    store: &'t Sqlite,
    project: rusqlite::Statement<'t>,
    token: rusqlite::Statement<'t>,
    event: rusqlite::Statement<'t>,
    added: Contents,
}

impl Import for SqliteImport<'_> {
    fn add(&mut self, record: Record) -> StoreResult<()> {
        let inserted = match &record {
            Record::Event(e) => self.event.execute(params![
                e.at,
                e.action,
                e.project,
                e.token_id,
                e.description,
                e.detail,
                e.user,
                e.uid,
                e.host,
                e.role
            ]),
            Record::Project(p) => self.project.execute(params![p.name, p.created_at]),
            Record::Token(t) => self.token.execute(params![
                t.id,
                t.project,
                t.secret_hash,
                t.description,
                t.created_at,
                t.expires_at,
                t.last_used_at,
                t.replacement.as_ref().map(|r| &r.by),
                t.replacement.as_ref().map(|r| r.stops_at)
            ]),
        }
        .map_err(|err| self.store.error(&err))?;
        match record {
            Record::Event(_) => self.added.events += 1,
            Record::Project(_) => self.added.projects += 1,
            Record::Token(_) if inserted == 1 => self.added.tokens += 1,
            Record::Token(t) => return Err(orphan(&self.store.path, &t)),
        }
        Ok(())
    }
}

/// A token handed to an import before its project.
fn orphan(database: &Path, token: &TokenRecord) -> StoreError {
    StoreError::new(
        StoreErrorKind::Other,
        format!(
            "database {}: cannot add token {}: its project is not there",
            database.display(),
            token.id
        ),
    )
}
