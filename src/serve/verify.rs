//! A request's verification: the same steps and rules as `autheona verify`
//! ([`crate::ops::verify`]), arranged for a server. The token's row is asked of the store on
//! every request (on PostgreSQL it may answer from a row it read while it holds a lease, which
//! every change that refuses a token waits for: as current as a lookup); only the argon2 work
//! is spared, by the cache, for a token already verified against the very hash its row holds
//! now; the rules are judged with the time of the request; the use is noted for
//! [`super::uses`] to write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::cache::Cache;
use super::metrics::Metrics;
use super::pool::{Busy, Pool};
use super::slot::Stores;
use super::uses::Uses;
use crate::environment;
use crate::error::Error;
use chrono::TimeDelta;

use crate::ops::token::expires_soon;
use crate::ops::verify::{Reason, Verdict, VerifiedToken, judge, secret_matches};
use crate::store::StoreError;
use crate::token::Token;
use crate::ui;

/// What a verification found.
#[derive(Debug)]
pub enum Answer {
    /// Valid; with the time it has left when it expires soon ([`expires_soon`]).
    Valid(VerifiedToken, Option<TimeDelta>),
    /// Not valid, and why; the token, when its secret matched (expired, another project's).
    Invalid(Reason, Option<VerifiedToken>),
}

impl Answer {
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Answer::Valid(..) => None,
            Answer::Invalid(reason, _) => Some(*reason),
        }
    }

    pub fn token(&self) -> Option<&VerifiedToken> {
        match self {
            Answer::Valid(token, _) => Some(token),
            Answer::Invalid(_, token) => token.as_ref(),
        }
    }
}

/// Why there is no answer: every proxy must then refuse the request (503).
#[derive(Debug)]
pub enum Unanswered {
    /// Too much work waits already.
    Busy,
    /// The store could not answer.
    Store(StoreError),
    /// This host's clock cannot be read as a time.
    Clock(Error),
}

impl From<Busy> for Unanswered {
    fn from(_: Busy) -> Unanswered {
        Unanswered::Busy
    }
}

pub struct Verifier {
    pub stores: Stores,
    pub hashing: Pool,
    pub cache: Cache,
    pub uses: Arc<Uses>,
    pub metrics: Metrics,
    /// Whether the store's last lookup failed (so that it is said once, not per request).
    pub store_failing: AtomicBool,
}

impl Verifier {
    /// Verifies `text` as a token, of `project` if one is required, and counts the answer.
    pub async fn verify(&self, text: &str, project: Option<&str>) -> Result<Answer, Unanswered> {
        let started = Instant::now();
        let answer = self.decide(text, project).await;
        match &answer {
            Ok(answer) => self.metrics.verified(answer.reason(), started.elapsed()),
            Err(Unanswered::Busy) => self.metrics.overloaded(),
            Err(_) => self.metrics.store_error(),
        }
        match &answer {
            Err(Unanswered::Store(err)) if !self.store_failing.swap(true, Ordering::Relaxed) => {
                ui::warning(&format!("the store cannot answer, requests get 503: {err}"));
            }
            Ok(_) if self.store_failing.swap(false, Ordering::Relaxed) => {
                ui::status("autheona serve: the store answers again");
            }
            _ => {}
        }
        answer
    }

    async fn decide(&self, text: &str, project: Option<&str>) -> Result<Answer, Unanswered> {
        // Shape and checksum first: a malformed token costs neither the store nor argon2.
        let Ok(token) = Token::parse(text) else {
            return Ok(Answer::Invalid(Reason::Malformed, None));
        };
        let key = self.cache.key(&token);
        let remembered = self.cache.hash_for(&key, token.id().as_str());
        // A token the cache does not know will need argon2 work: room for it is taken before
        // the store is asked, so that a flood of unknown tokens is refused at once and costs
        // the tokens the cache knows neither store calls nor cores.
        let mut ticket = match remembered {
            None => Some(self.hashing.admit()?),
            Some(_) => None,
        };
        let row = self
            .stores
            .token_for_verify(token.id().as_str())
            .await?
            .map_err(Unanswered::Store)?;
        let matched = match (&row, remembered) {
            (Some(row), Some(hash)) if row.secret_hash == hash => {
                self.metrics.cache_hit();
                true
            }
            _ => {
                if row.is_some() {
                    self.metrics.cache_miss();
                }
                let ticket = match ticket.take() {
                    Some(ticket) => ticket,
                    None => self.hashing.admit()?,
                };
                let (checked, against) = (token.clone(), row.clone());
                let matched = self
                    .hashing
                    .run_admitted(ticket, move || secret_matches(&checked, against.as_ref()))
                    .await?;
                if let (true, Some(row)) = (matched, &row) {
                    self.cache
                        .remember(key, token.id().as_str(), &row.secret_hash);
                }
                matched
            }
        };
        let Some(row) = row.filter(|_| matched) else {
            return Ok(Answer::Invalid(Reason::Unknown, None));
        };
        // The time of the answer, not of the request's arrival: expiry is never late either.
        let now = environment::clock::now().map_err(Unanswered::Clock)?;
        Ok(match judge(VerifiedToken::new(&token, row), project, now) {
            Verdict::Valid(verified) => {
                self.uses.note(&verified.id, now.timestamp());
                let left = expires_soon(verified.expires_at, now);
                Answer::Valid(verified, left)
            }
            Verdict::Invalid(reason, verified) => Answer::Invalid(reason, Some(verified)),
            Verdict::Stopped => Answer::Invalid(Reason::Unknown, None),
        })
    }
}
