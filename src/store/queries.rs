//! The SQL for projects and tokens.

use rusqlite::{ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::Store;
use crate::error::Result;

/// A project as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub name: String,
    pub created_at: i64,
    pub tokens: u64,
}

/// A token as listed: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub project: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// What verifying a token needs from its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRow {
    pub secret_hash: String,
    pub project: String,
    pub expires_at: Option<i64>,
}

/// A token row to insert.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub id: &'a str,
    pub project_id: i64,
    pub secret_hash: &'a str,
    pub description: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// How [`Store::replace_token`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The new token replaced the old one.
    Done,
    /// The old token no longer exists (revoked meanwhile); nothing changed.
    Gone,
    /// The new token's id is taken; nothing changed.
    IdTaken,
}

const INSERT_TOKEN: &str =
    "INSERT INTO tokens (id, project_id, secret_hash, description, created_at, expires_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

impl NewToken<'_> {
    /// The values for [`INSERT_TOKEN`], in its order.
    fn params(&self) -> [&dyn rusqlite::ToSql; 6] {
        [
            &self.id,
            &self.project_id,
            &self.secret_hash,
            &self.description,
            &self.created_at,
            &self.expires_at,
        ]
    }
}

const TOKEN_COLUMNS: &str =
    "t.id, p.name, t.description, t.created_at, t.expires_at, t.last_used_at
     FROM tokens t JOIN projects p ON p.id = t.project_id";

fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        project: row.get(1)?,
        description: row.get(2)?,
        created_at: row.get(3)?,
        expires_at: row.get(4)?,
        last_used_at: row.get(5)?,
    })
}

fn project_id(conn: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<i64>> {
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

/// Turns an SQLite error into the user's one line, naming the database.
type Fail = Box<dyn Fn(rusqlite::Error) -> crate::error::Error>;

impl Store {
    /// Begins a write transaction (taking the write lock at once) whose commit waits for the
    /// disk (`synchronous=FULL`): for writes that revoke, which a power cut must not undo.
    fn begin_durable(&mut self) -> Result<(rusqlite::Transaction<'_>, Fail)> {
        let path = self.path.clone();
        let fail: Fail = Box::new(move |err| super::error_for(&path, &err));
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(&fail)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        Ok((tx, fail))
    }

    /// Inserts a project; `false` when the name is taken.
    pub fn insert_project(&self, name: &str, created_at: i64) -> Result<bool> {
        match self.conn.execute(
            "INSERT INTO projects (name, created_at) VALUES (?1, ?2)",
            params![name, created_at],
        ) {
            Ok(_) => {
                self.bound_log();
                Ok(true)
            }
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(self.error(&err)),
        }
    }

    /// All projects by name, with their token counts.
    pub fn projects(&self) -> Result<Vec<ProjectRow>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT p.name, p.created_at,
                        (SELECT count(*) FROM tokens t WHERE t.project_id = p.id)
                 FROM projects p ORDER BY p.name",
            )
            .map_err(|err| self.error(&err))?;
        statement
            .query_map([], |row| {
                Ok(ProjectRow {
                    name: row.get(0)?,
                    created_at: row.get(1)?,
                    tokens: row.get::<_, i64>(2)?.unsigned_abs(),
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|err| self.error(&err))
    }

    pub fn project_id(&self, name: &str) -> Result<Option<i64>> {
        project_id(&self.conn, name).map_err(|err| self.error(&err))
    }

    pub fn project_token_count(&self, project_id: i64) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM tokens WHERE project_id = ?1",
                [project_id],
                |row| row.get::<_, i64>(0).map(i64::unsigned_abs),
            )
            .map_err(|err| self.error(&err))
    }

    /// Deletes a project and its tokens in one transaction; `None` when it does not exist,
    /// else how many tokens went with it.
    pub fn delete_project(&mut self, name: &str) -> Result<Option<u64>> {
        // It revokes tokens: as durable as `delete_token`.
        let (tx, fail) = self.begin_durable()?;
        let Some(project_id) = project_id(&tx, name).map_err(&fail)? else {
            return Ok(None);
        };
        let tokens = tx
            .execute("DELETE FROM tokens WHERE project_id = ?1", [project_id])
            .map_err(&fail)?;
        tx.execute("DELETE FROM projects WHERE id = ?1", [project_id])
            .map_err(&fail)?;
        tx.commit().map_err(&fail)?;
        self.scrub_log();
        Ok(Some(tokens as u64))
    }

    /// Inserts a token and commits; `false` when its id is taken.
    ///
    /// The commit is visible at once but not yet on disk: the caller shows the token first and
    /// then calls [`Store::sync_log`]. Showing it right after the commit keeps the moment in
    /// which a killed process leaves a token nobody saw as short as it can be; syncing before
    /// the process reports success keeps the token across a power cut.
    pub fn insert_token(&self, token: &NewToken<'_>) -> Result<bool> {
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|err| self.error(&err))?;
        match self.conn.execute(INSERT_TOKEN, token.params()) {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(self.error(&err)),
        }
    }

    /// Makes every commit so far durable: syncs the write-ahead log to disk.
    pub fn sync_log(&self) -> Result<()> {
        let Some(log) = self.log_path() else {
            return Ok(()); // in memory: nothing to sync
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(log)
            .and_then(|file| file.sync_data())
            .map_err(|err| {
                crate::error::Error::environment(format!(
                    "cannot sync database {} to disk: {err}",
                    self.path.display()
                ))
            })?;
        self.bound_log();
        Ok(())
    }

    /// The -wal file beside SQLite's own name for the database (symbolic links resolved).
    fn log_path(&self) -> Option<std::path::PathBuf> {
        let database = self.conn.path().filter(|p| !p.is_empty())?;
        Some(super::sidecar(std::path::Path::new(database), "-wal"))
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
            self.truncate_log(std::time::Duration::ZERO);
        }
    }

    /// Inserts many tokens in one transaction (fixtures and imports); returns how many.
    pub fn insert_tokens<'a>(
        &mut self,
        tokens: impl IntoIterator<Item = NewToken<'a>>,
    ) -> Result<usize> {
        let path = self.path.clone();
        let fail = |err: rusqlite::Error| super::error_for(&path, &err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let mut count = 0;
        {
            let mut insert = tx.prepare(INSERT_TOKEN).map_err(fail)?;
            for token in tokens {
                insert.execute(token.params()).map_err(fail)?;
                count += 1;
            }
        }
        tx.commit().map_err(fail)?;
        // Leave no large log behind for the next process to read.
        self.scrub_log();
        Ok(count)
    }

    /// Tokens, oldest first; of one project when `project_id` is given.
    pub fn tokens(&self, project_id: Option<i64>) -> Result<Vec<TokenRow>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}
             WHERE ?1 IS NULL OR t.project_id = ?1
             ORDER BY t.created_at, t.rowid"
        );
        let mut statement = self.conn.prepare(&sql).map_err(|err| self.error(&err))?;
        statement
            .query_map([project_id], token_row)
            .and_then(|rows| rows.collect())
            .map_err(|err| self.error(&err))
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        self.conn
            .query_row(
                &format!("SELECT {TOKEN_COLUMNS} WHERE t.id = ?1"),
                [id],
                token_row,
            )
            .optional()
            .map_err(|err| self.error(&err))
    }

    /// The row verify needs, by token id (one indexed lookup, no transaction held after).
    pub fn token_for_verify(&self, id: &str) -> Result<Option<VerifyRow>> {
        self.conn
            .query_row(
                "SELECT t.secret_hash, p.name, t.expires_at
                 FROM tokens t JOIN projects p ON p.id = t.project_id
                 WHERE t.id = ?1",
                [id],
                |row| {
                    Ok(VerifyRow {
                        secret_hash: row.get(0)?,
                        project: row.get(1)?,
                        expires_at: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|err| self.error(&err))
    }

    /// Records a use; `false` when the token no longer exists (revoked meanwhile).
    ///
    /// Last-used is a hint, not a promise: it commits without waiting for the disk
    /// (`synchronous=NORMAL`), so a power cut may lose the latest one.
    pub fn record_use(&self, id: &str, at: i64) -> Result<bool> {
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .and_then(|()| {
                self.conn.execute(
                    "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2",
                    params![at, id],
                )
            })
            .map(|changed| changed == 1)
            .map_err(|err| self.error(&err))
            .inspect(|_| self.bound_log())
    }

    /// Deletes a token, durably (`synchronous=FULL`), and scrubs its hash from
    /// the write-ahead log; `false` when there was no such token.
    pub fn delete_token(&self, id: &str) -> Result<bool> {
        let deleted = self
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .and_then(|()| self.conn.execute("DELETE FROM tokens WHERE id = ?1", [id]))
            .map_err(|err| self.error(&err))?;
        if deleted == 1 {
            self.scrub_log();
        }
        Ok(deleted == 1)
    }

    /// Deletes the tokens with these ids in one durable transaction (`synchronous=FULL`) and
    /// scrubs their hashes from the log; returns how many were deleted. With `unused_since`,
    /// only those not used since then (by last use, else creation), and with `never_used` only
    /// those never used: a token used after it was selected stays.
    pub fn delete_tokens<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a str>,
        unused_since: Option<i64>,
        never_used: bool,
    ) -> Result<u64> {
        let (tx, fail) = self.begin_durable()?;
        let mut deleted = 0;
        {
            let mut delete = tx
                .prepare(
                    "DELETE FROM tokens WHERE id = ?1
                     AND (?2 IS NULL OR coalesce(last_used_at, created_at) <= ?2)
                     AND (NOT ?3 OR last_used_at IS NULL)",
                )
                .map_err(&fail)?;
            for id in ids {
                deleted += delete
                    .execute(params![id, unused_since, never_used])
                    .map_err(&fail)? as u64;
            }
        }
        tx.commit().map_err(&fail)?;
        if deleted > 0 {
            self.scrub_log();
        }
        Ok(deleted)
    }

    /// Replaces a token with a new one of the same project in one durable transaction, which
    /// commits only if `deliver` (showing the new token) succeeds: otherwise nothing changes.
    ///
    /// The write lock is held while `deliver` runs, so it must be quick (one short write).
    pub fn replace_token(
        &mut self,
        old_id: &str,
        new: &NewToken<'_>,
        deliver: impl FnOnce() -> Result<()>,
    ) -> Result<Replaced> {
        // It revokes a token: as durable as `delete_token`.
        let (tx, fail) = self.begin_durable()?;
        let deleted = tx
            .execute(
                "DELETE FROM tokens WHERE id = ?1 AND project_id = ?2",
                params![old_id, new.project_id],
            )
            .map_err(&fail)?;
        if deleted == 0 {
            return Ok(Replaced::Gone);
        }
        match tx.execute(INSERT_TOKEN, new.params()) {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => return Ok(Replaced::IdTaken),
            Err(err) => return Err(fail(err)),
        }
        // Dropping the transaction on an error rolls it back.
        deliver()?;
        tx.commit().map_err(&fail)?;
        self.scrub_log();
        Ok(Replaced::Done)
    }

    /// Copies the log into the main file and truncates it, so deleted rows' old page images
    /// (hashes included) do not stay in the -wal file. Best effort: another process reading at
    /// that moment holds it back (waited for briefly, not for the full busy timeout); the
    /// hash then stays in the log until the log is next restarted and truncated.
    fn scrub_log(&self) {
        self.truncate_log(std::time::Duration::from_millis(200));
    }

    /// Copies the log into the database and truncates it, waiting at most `wait` for readers.
    fn truncate_log(&self, wait: std::time::Duration) {
        let _ = self.conn.busy_timeout(wait);
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.busy_timeout(super::BUSY_TIMEOUT);
    }
}
