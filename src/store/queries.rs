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

/// A token row to insert. Its project is named, and looked up by the statement that inserts
/// the row: a project id carried from an earlier statement could by then belong to another
/// project.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub id: &'a str,
    pub project: &'a str,
    pub secret_hash: &'a str,
    pub description: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// How [`Store::insert_token`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Done,
    /// The token's id is taken; nothing changed.
    IdTaken,
    /// There is no project of that name (deleted meanwhile); nothing changed.
    NoProject,
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

/// Inserts a token into the project named ?2, if there is one, in the same statement.
const INSERT_TOKEN: &str =
    "INSERT INTO tokens (id, project_id, secret_hash, description, created_at, expires_at)
     SELECT ?1, id, ?3, ?4, ?5, ?6 FROM projects WHERE name = ?2";

/// Inserts a token into the project of the token ?7, if that token still exists and is of
/// the project named ?2, in the same statement.
const INSERT_REPLACEMENT: &str =
    "INSERT INTO tokens (id, project_id, secret_hash, description, created_at, expires_at)
     SELECT ?1, t.project_id, ?3, ?4, ?5, ?6
     FROM tokens t JOIN projects p ON p.id = t.project_id
     WHERE t.id = ?7 AND p.name = ?2";

impl NewToken<'_> {
    /// The values for [`INSERT_TOKEN`], in its order.
    fn params(&self) -> [&dyn rusqlite::ToSql; 6] {
        [
            &self.id,
            &self.project,
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

    /// Whether a project of that name exists.
    pub fn project_exists(&self, name: &str) -> Result<bool> {
        project_id(&self.conn, name)
            .map(|id| id.is_some())
            .map_err(|err| self.error(&err))
    }

    /// How many tokens the project has; `None` when there is no such project.
    pub fn project_token_count(&self, name: &str) -> Result<Option<u64>> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM tokens t WHERE t.project_id = p.id)
                 FROM projects p WHERE p.name = ?1",
                [name],
                |row| row.get::<_, i64>(0).map(i64::unsigned_abs),
            )
            .optional()
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

    /// Inserts a token into its project, if that exists, and commits.
    ///
    /// The commit is visible at once but not yet on disk: the caller shows the token first and
    /// then calls [`Store::sync_log`]. Showing it right after the commit keeps the moment in
    /// which a killed process leaves a token nobody saw as short as it can be; syncing before
    /// the process reports success keeps the token across a power cut.
    pub fn insert_token(&self, token: &NewToken<'_>) -> Result<Inserted> {
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|err| self.error(&err))?;
        match self.conn.execute(INSERT_TOKEN, token.params()) {
            Ok(0) => Ok(Inserted::NoProject),
            Ok(_) => Ok(Inserted::Done),
            Err(err) if is_unique_violation(&err) => Ok(Inserted::IdTaken),
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

    /// Inserts many tokens in one transaction (fixtures and imports); returns how many (those
    /// of a project that does not exist are not).
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
                count += insert.execute(token.params()).map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        // Leave no large log behind for the next process to read.
        self.scrub_log();
        Ok(count)
    }

    /// Tokens, oldest first; of the project named, when one is. `None` when there is no
    /// project of that name. One read transaction, so the project and its tokens are seen at
    /// one moment.
    pub fn tokens(&self, project: Option<&str>) -> Result<Option<Vec<TokenRow>>> {
        let fail = |err: rusqlite::Error| self.error(&err);
        let tx = self.conn.unchecked_transaction().map_err(fail)?;
        if let Some(name) = project
            && project_id(&tx, name).map_err(fail)?.is_none()
        {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}
             WHERE ?1 IS NULL OR p.name = ?1
             ORDER BY t.created_at, t.rowid"
        );
        let rows = tx
            .prepare(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map([project], token_row)
                    .and_then(|rows| rows.collect())
            })
            .map_err(fail)?;
        Ok(Some(rows))
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

    /// Replaces a token with a new one in the old one's project (which must still be the one
    /// `new` names) in one durable transaction, which commits only if `deliver` (showing the
    /// new token) succeeds: otherwise nothing changes.
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
        let [
            id,
            project,
            secret_hash,
            description,
            created_at,
            expires_at,
        ] = new.params();
        let values: [&dyn rusqlite::ToSql; 7] = [
            id,
            project,
            secret_hash,
            description,
            created_at,
            expires_at,
            &old_id,
        ];
        match tx.execute(INSERT_REPLACEMENT, &values[..]) {
            Ok(0) => return Ok(Replaced::Gone),
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => return Ok(Replaced::IdTaken),
            Err(err) => return Err(fail(err)),
        }
        tx.execute("DELETE FROM tokens WHERE id = ?1", [old_id])
            .map_err(&fail)?;
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

    /// Copies the whole log into the database and truncates it, or fails: for a database
    /// that must be whole without its log. No other connection may be reading.
    pub(super) fn checkpoint_all(&self) -> Result<()> {
        let (busy, log, copied): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(|err| self.error(&err))?;
        if busy != 0 || copied != log {
            return Err(crate::error::Error::environment(format!(
                "cannot write database {}: its log could not be copied into it",
                self.path.display()
            ))
            .with_hint("check that the disk has space and works"));
        }
        Ok(())
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
