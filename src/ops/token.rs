//! Tokens: create, list, revoke.

use chrono::{DateTime, TimeDelta, Utc};
use rand::CryptoRng;

use super::{project, time};
use crate::error::{Error, Result};
use crate::store::{NewToken, Store, TokenRow};
use crate::token::{Token, TokenId};
use crate::{secret, text};

pub const DESCRIPTION_MAX_LEN: usize = 200;

/// How long a new token lives. Fixed at creation; never changed after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    Days30,
    Days90,
    Days365,
    Never,
}

impl Expiration {
    pub const ALL: [Expiration; 4] = [
        Expiration::Days30,
        Expiration::Days90,
        Expiration::Days365,
        Expiration::Never,
    ];

    pub fn days(self) -> Option<i64> {
        match self {
            Expiration::Days30 => Some(30),
            Expiration::Days90 => Some(90),
            Expiration::Days365 => Some(365),
            Expiration::Never => None,
        }
    }

    /// When a token created at `created` expires: `days` whole days later, or never.
    pub fn expires_at(self, created: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.days().map(|days| created + TimeDelta::days(days))
    }
}

/// Whether a token still works by its dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Expired,
}

impl Status {
    pub fn at(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Status {
        match expires_at {
            Some(expiry) if expiry <= now => Status::Expired,
            _ => Status::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expired => "expired",
        }
    }
}

/// Checks a description: at most 200 characters on one line, with no control or format
/// characters (Unicode Cc, Cf, line and paragraph separators). Empty means none.
pub fn validate_description(text: &str) -> Result<Option<&str>> {
    if text.is_empty() {
        return Ok(None);
    }
    let length = text.chars().count();
    if length > DESCRIPTION_MAX_LEN {
        return Err(Error::usage(format!(
            "the description is {length} characters long; the limit is {DESCRIPTION_MAX_LEN}"
        )));
    }
    if let Some(bad) = text::first_unsafe(text) {
        return Err(Error::usage(format!(
            "the description contains the invisible or control character U+{:04X}; use one line of visible text",
            u32::from(bad)
        )));
    }
    Ok(Some(text))
}

/// What to create.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub project: &'a str,
    pub expiration: Expiration,
    pub description: Option<&'a str>,
}

/// A token just created: the only value that ever holds its secret.
#[derive(Debug)]
pub struct CreatedToken {
    pub token: Token,
    pub project: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// How often a fresh id may collide before giving up (at 62^12 ids, never in practice).
const ID_ATTEMPTS: usize = 8;

/// Creates a token, hands it to `deliver` (which shows it to the user), and keeps it only if
/// delivery succeeded: no token exists that nobody has seen.
///
/// The row is committed before delivery, so a failed database write prints nothing, and made
/// durable after it, before this returns.
///
/// `rng` must be a cryptographically secure generator; the binary passes the operating system's.
pub fn create<R: CryptoRng + ?Sized>(
    store: &Store,
    request: &TokenRequest<'_>,
    now: DateTime<Utc>,
    rng: &mut R,
    deliver: impl FnOnce(&CreatedToken) -> Result<()>,
) -> Result<CreatedToken> {
    let description = match request.description {
        Some(text) => validate_description(text)?,
        None => None,
    };
    let project_id = project::require(store, request.project)?;
    let mut token = Token::generate(rng);
    let secret_hash = secret::hash(token.secret())
        .map_err(|err| Error::environment(format!("cannot hash the new token: {err}")))?;
    let expires_at = request.expiration.expires_at(now);
    let mut attempts = 0;
    loop {
        let row = NewToken {
            id: token.id().as_str(),
            project_id,
            secret_hash: &secret_hash,
            description,
            created_at: now.timestamp(),
            expires_at: expires_at.map(|t| t.timestamp()),
        };
        if store.insert_token(&row)? {
            break;
        }
        attempts += 1;
        if attempts == ID_ATTEMPTS {
            return Err(Error::environment(
                "could not find a free token id; try again",
            ));
        }
        token = token.with_id(TokenId::generate(rng));
    }
    let created = CreatedToken {
        token,
        project: request.project.to_owned(),
        description: description.map(str::to_owned),
        created_at: now,
        expires_at,
    };
    if let Err(err) = deliver(&created) {
        return match store.delete_token(created.token.id().as_str()) {
            Ok(_) => Err(err),
            Err(undo) => Err(Error::environment(format!(
                "{err}; removing the undelivered token {} failed too: {undo}",
                created.token.id()
            ))
            .with_hint(format!(
                "revoke it: autheona token revoke {} --yes",
                created.token.id()
            ))),
        };
    }
    store.sync_log().map_err(|err| {
        Error::environment(format!(
            "the token above was shown but may not survive a power cut: {}",
            err.message()
        ))
        .with_hint(format!(
            "revoke it (autheona token revoke {} --yes) and create another",
            created.token.id()
        ))
    })?;
    Ok(created)
}

/// A token as listed. Never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    pub id: String,
    pub project: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub status: Status,
}

impl TokenSummary {
    fn from_row(row: TokenRow, now: DateTime<Utc>) -> TokenSummary {
        let expires_at = row.expires_at.map(time);
        TokenSummary {
            id: row.id,
            project: row.project,
            description: row.description,
            created_at: time(row.created_at),
            expires_at,
            last_used_at: row.last_used_at.map(time),
            status: Status::at(expires_at, now),
        }
    }
}

/// Tokens oldest first, of one project or all.
pub fn list(store: &Store, project: Option<&str>, now: DateTime<Utc>) -> Result<Vec<TokenSummary>> {
    let project_id = project
        .map(|name| project::require(store, name))
        .transpose()?;
    Ok(store
        .tokens(project_id)?
        .into_iter()
        .map(|row| TokenSummary::from_row(row, now))
        .collect())
}

/// Parses a token id. The input is not echoed: it may be a whole token pasted by mistake.
fn parse_id(id: &str) -> Result<TokenId> {
    TokenId::parse(id).ok_or_else(|| {
        Error::usage("that is not a token id: a token id is 12 characters of 0-9, A-Z and a-z")
            .with_hint("`autheona token list` shows the ids")
    })
}

fn not_found(id: &TokenId) -> Error {
    Error::refused(format!("no token with id {id}"))
        .with_hint("`autheona token list` shows the tokens; a revoked token is gone for good")
}

/// One token, to show before revoking it.
pub fn find(store: &Store, id: &str, now: DateTime<Utc>) -> Result<TokenSummary> {
    let id = parse_id(id)?;
    let row = store.token(id.as_str())?.ok_or_else(|| not_found(&id))?;
    Ok(TokenSummary::from_row(row, now))
}

/// Revokes a token: deletes it for good. From the moment this returns, it does not verify.
pub fn revoke(store: &Store, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    if store.delete_token(id.as_str())? {
        Ok(())
    } else {
        Err(not_found(&id))
    }
}

#[cfg(test)]
mod tests;
