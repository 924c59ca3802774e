//! Verifying a token: the check scripts rely on.

use chrono::{DateTime, TimeDelta, Utc};

use super::time;
use super::token::{ScheduledEnd, Status, expires_soon};
use crate::error::{Error, Result};
use crate::secret;
use crate::store::{Store, VerifyRow};
use crate::token::Token;

/// Why a token is not valid. `Unknown` covers no such id, revoked, stopped at the end of its
/// grace period, and wrong secret alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Malformed,
    Unknown,
    Expired,
    WrongProject,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::Unknown => "unknown",
            Reason::Expired => "expired",
            Reason::WrongProject => "wrong_project",
        }
    }
}

/// A token whose secret matched: what may be told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub id: String,
    pub project: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when it was rotated with a grace period: it works until then, and its
    /// replacement should be used.
    pub ends: Option<ScheduledEnd>,
}

#[derive(Debug)]
pub enum Verification {
    Valid {
        token: VerifiedToken,
        /// Set when the last-used time could not be recorded; the token is valid all the same.
        unrecorded: Option<Error>,
        /// The time it has left, when it expires within [`EXPIRY_NOTICE`]: time to rotate it.
        ///
        /// [`EXPIRY_NOTICE`]: super::token::EXPIRY_NOTICE
        expires_soon: Option<TimeDelta>,
    },
    Invalid {
        reason: Reason,
        /// Known only when the secret matched (expired, wrong project).
        token: Option<VerifiedToken>,
    },
}

impl Verification {
    pub fn invalid(reason: Reason) -> Verification {
        Verification::Invalid {
            reason,
            token: None,
        }
    }
}

/// Verifies a well-formed token: one indexed lookup, exactly one argon2 verification (against a
/// dummy hash for an unknown id, so both cost the same), then one autocommit update of last-used.
/// No transaction is open while argon2 runs.
pub fn verify(
    store: &dyn Store,
    token: &Token,
    project: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Verification> {
    let Some(verified) = identify(store, token)? else {
        return Ok(Verification::invalid(Reason::Unknown));
    };
    let verified = match judge(verified, project, now) {
        Verdict::Valid(verified) => verified,
        Verdict::Invalid(reason, token) => {
            return Ok(Verification::Invalid {
                reason,
                token: Some(token),
            });
        }
        Verdict::Stopped => {
            // Its row is garbage now: removed here, as by any command that writes. A failure
            // changes nothing in the answer; the next command that writes removes it.
            let _ = store.remove_stopped(now.timestamp());
            return Ok(Verification::invalid(Reason::Unknown));
        }
    };
    let expires_soon = expires_soon(verified.expires_at, now);
    match store.record_use(token.id().as_str(), now.timestamp()) {
        Ok(true) => Ok(Verification::Valid {
            token: verified,
            unrecorded: None,
            expires_soon,
        }),
        // Revoked between the lookup and now: revocation wins.
        Ok(false) => Ok(Verification::invalid(Reason::Unknown)),
        Err(err) => Ok(Verification::Valid {
            token: verified,
            unrecorded: Some(err.into()),
            expires_soon,
        }),
    }
}

/// What is decided about a token whose secret matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(VerifiedToken),
    Invalid(Reason, VerifiedToken),
    /// Its grace period is over: it is refused as a revoked token is ([`Reason::Unknown`]),
    /// and nothing is told about it.
    Stopped,
}

/// The rules a token whose secret matched must still pass, at `now`: not stopped at the end
/// of a grace period, not expired, and of the project required, if one is. The one place they
/// are decided, for `verify` and `serve`.
pub fn judge(verified: VerifiedToken, project: Option<&str>, now: DateTime<Utc>) -> Verdict {
    if verified.ends.as_ref().is_some_and(|end| end.has_come(now)) {
        Verdict::Stopped
    } else if Status::at(verified.expires_at, now) == Status::Expired {
        Verdict::Invalid(Reason::Expired, verified)
    } else if project.is_some_and(|wanted| wanted != verified.project) {
        Verdict::Invalid(Reason::WrongProject, verified)
    } else {
        Verdict::Valid(verified)
    }
}

/// The token whose id and secret these are, if the database holds it; records nothing.
///
/// One indexed lookup and exactly one argon2 verification: against a dummy hash for an unknown
/// id, so that an unknown id and a wrong secret cost the same. Expiry is the caller's to judge.
pub fn identify(store: &dyn Store, token: &Token) -> Result<Option<VerifiedToken>> {
    let row = store.token_for_verify(token.id().as_str())?;
    if !secret_matches(token, row.as_ref()) {
        return Ok(None);
    }
    Ok(row.map(|row| VerifiedToken::new(token, row)))
}

/// Whether the token's secret is the one its row holds the hash of: exactly one argon2
/// verification, against a dummy hash when there is no row, so that an unknown id and a wrong
/// secret cost the same.
pub fn secret_matches(token: &Token, row: Option<&VerifyRow>) -> bool {
    match row {
        Some(row) => secret::verify(token.secret(), &row.secret_hash),
        None => {
            secret::verify_dummy(token.secret());
            false
        }
    }
}

impl VerifiedToken {
    /// What may be told about `token`, whose secret matched the hash in `row`.
    pub fn new(token: &Token, row: VerifyRow) -> VerifiedToken {
        VerifiedToken {
            id: token.id().to_string(),
            project: row.project,
            expires_at: row.expires_at.map(time),
            ends: ScheduledEnd::from_row(row.replacement),
        }
    }
}

#[cfg(test)]
mod tests;
