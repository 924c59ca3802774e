//! verify's lookup of a token's row, on a connection that makes it again and again (`autheona
//! serve`'s, and `scan`'s for its second token): prepared once, so that the server parses and
//! plans the join once per connection rather than once per request, which was most of the
//! server's work for a cached answer (benches/README.md, finding 24). The first lookup on a
//! connection, all that a command's `verify` makes, is sent unnamed, as every other statement.
//!
//! Prepared with SQL's `PREPARE` under a name no other client uses (a random suffix), and run
//! with `EXECUTE`. Through a transaction pooler (PgBouncer), a later `EXECUTE` may reach a
//! server connection where the statement was never prepared: it then fails ("prepared
//! statement does not exist") and the connection goes back to unnamed statements for good; so
//! it does when the `PREPARE` itself is refused. A statement prepared through a pooler stays on
//! its server connection until the pooler closes that (PgBouncer's `server_lifetime`).
//! It can never run another client's statement of the same name, as the protocol-level names
//! (`s0`, `s1`, ...) that every tokio-postgres client gives its statements could.

use std::cell::Cell;

use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, SimpleQueryMessage};
use rand::TryRng;
use rand::rngs::SysRng;

use crate::store::{Replacement, VerifyRow};

type PgResult<T> = std::result::Result<T, postgres::Error>;

const LOOKUP: &str = "SELECT t.secret_hash, p.name, t.expires_at, t.replaced_by, t.stops_at
     FROM autheona.tokens t JOIN autheona.projects p ON p.id = t.project_id
     WHERE t.id = $1";

/// How this connection looks tokens up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No lookup yet.
    Fresh,
    /// One lookup, unnamed: the next one prepares the statement.
    Again,
    /// Prepared under `autheona_verify_` and this number, in hexadecimal.
    Prepared(u64),
    /// Unnamed for good: a prepared statement did not stay (a pooler), or could not be made.
    Unnamed,
}

/// A connection's way of looking tokens up for verify.
#[derive(Debug)]
pub struct Lookup(Cell<State>);

impl Default for Lookup {
    fn default() -> Lookup {
        Lookup(Cell::new(State::Fresh))
    }
}

impl Lookup {
    /// The row of token `id`, with its project's name.
    pub fn find(&self, client: &mut Client, id: &str) -> PgResult<Option<VerifyRow>> {
        // The id is written into the statement only when it has a token id's shape, which
        // every id verify asks for has: it was parsed from a token first.
        let plain = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
        match self.0.get() {
            State::Fresh => self.0.set(State::Again),
            State::Again if plain => match SysRng.try_next_u64() {
                Ok(suffix) => {
                    let name = name(suffix);
                    let both = format!("PREPARE {name}(text) AS {LOOKUP}; EXECUTE {name}('{id}')");
                    match executed(client, &both) {
                        Ok(row) => {
                            self.0.set(State::Prepared(suffix));
                            return Ok(row);
                        }
                        // Refused by the server or a pooler in between (a pooler that takes
                        // no PREPARE, a name taken): unnamed from now on, and for this lookup
                        // too, which meets any error that was not about preparing.
                        Err(err) if err.as_db_error().is_some() => self.0.set(State::Unnamed),
                        Err(err) => return Err(err),
                    }
                }
                Err(_) => self.0.set(State::Unnamed),
            },
            State::Prepared(suffix) if plain => {
                match executed(client, &format!("EXECUTE {}('{id}')", name(suffix))) {
                    Err(err) if err.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME) => {
                        self.0.set(State::Unnamed);
                    }
                    done => return done,
                }
            }
            State::Again | State::Prepared(_) | State::Unnamed => {}
        }
        unnamed(client, id)
    }
}

fn name(suffix: u64) -> String {
    format!("autheona_verify_{suffix:016x}")
}

fn unnamed(client: &mut Client, id: &str) -> PgResult<Option<VerifyRow>> {
    Ok(client
        .query_typed_opt(LOOKUP, &[(&id, Type::TEXT)])?
        .map(|row| VerifyRow {
            secret_hash: row.get(0),
            project: row.get(1),
            expires_at: row.get(2),
            replacement: Replacement::from_columns(row.get(3), row.get(4)),
        }))
}

/// The row a simple query's last statement returned, read from its text.
fn executed(client: &mut Client, sql: &str) -> PgResult<Option<VerifyRow>> {
    let row = client
        .simple_query(sql)?
        .into_iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
    // A value that does not read as its column's type (never, from these columns) makes no
    // row: the token is then unknown, never valid for longer than it is.
    Ok(row.and_then(|row| {
        let number = |i: usize| match row.get(i) {
            None => Some(None),
            Some(text) => text.parse::<i64>().ok().map(Some),
        };
        Some(VerifyRow {
            secret_hash: row.get(0)?.to_owned(),
            project: row.get(1)?.to_owned(),
            expires_at: number(2)?,
            replacement: Replacement::from_columns(row.get(3).map(str::to_owned), number(4)?),
        })
    }))
}
