//! Tokens: create, list, revoke, rotate (at once or with a grace period), prune.

use chrono::{DateTime, TimeDelta, Utc};
use rand::CryptoRng;

use super::Failure;
use super::{project, time};
use crate::error::Topic;
use crate::error::{Error, Result};
use crate::store::{
    Durability, Inserted, NewToken, Removal, Replacement, Retired, Selection, Store, TokenQuery,
    TokenRow, Visit,
};
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

/// A token's scheduled end, set by a rotation with a grace period: it works until `stops_at`,
/// then is refused everywhere as if revoked at that moment. Set once; never moved or cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledEnd {
    /// The id of the token that replaced it.
    pub replaced_by: String,
    pub stops_at: DateTime<Utc>,
}

impl ScheduledEnd {
    pub(super) fn from_row(replacement: Option<Replacement>) -> Option<ScheduledEnd> {
        replacement.map(|r| ScheduledEnd {
            replaced_by: r.by,
            stops_at: time(r.stops_at),
        })
    }

    /// Whether the token has stopped by `now`: from its end on, it is gone.
    pub fn has_come(&self, now: DateTime<Utc>) -> bool {
        self.stops_at <= now
    }
}

/// How long a rotated token keeps working beside its replacement: none (it stops at once), or
/// up to [`Grace::MAX`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grace(TimeDelta);

impl Grace {
    pub const NONE: Grace = Grace(TimeDelta::zero());
    pub const MAX: Grace = Grace(TimeDelta::days(30));
    /// What a person is offered at a terminal.
    pub const CHOICES: [Grace; 4] = [
        Grace::NONE,
        Grace(TimeDelta::hours(1)),
        Grace(TimeDelta::hours(24)),
        Grace(TimeDelta::days(7)),
    ];

    /// Reads `30m`, `1h`, `24h`, `7d` (a whole number of minutes, hours or days, at most 30
    /// days), or `0` for none. `Err` says what is wrong, without echoing more than the unit.
    pub fn parse(text: &str) -> std::result::Result<Grace, String> {
        let usage = "use a number of minutes, hours or days, as 30m, 1h, 24h or 7d, or 0 for none";
        if text == "0" {
            return Ok(Grace::NONE);
        }
        if text.is_empty() {
            return Err(format!("the grace period is empty: {usage}"));
        }
        let too_long = || format!("a grace period of {text} is too long: at most 30 days (30d)");
        match super::span(text) {
            Ok(length) if length > Grace::MAX.0 => Err(too_long()),
            Ok(length) => Ok(Grace(length)),
            Err(super::SpanError::TooLong) => Err(too_long()),
            Err(super::SpanError::NotASpan) => {
                Err(format!("'{text}' is not a grace period: {usage}"))
            }
        }
    }

    pub fn is_none(self) -> bool {
        self.0.is_zero()
    }

    pub fn length(self) -> TimeDelta {
        self.0
    }
}

/// A token that still works is flagged as expiring this long before it stops: in `token list`
/// and as a warning when it is verified, so logs show it before it breaks.
pub const EXPIRY_NOTICE: TimeDelta = TimeDelta::days(7);

/// The time a token has left, when it still works and expires within [`EXPIRY_NOTICE`].
pub fn expires_soon(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<TimeDelta> {
    let left = expires_at? - now;
    (left > TimeDelta::zero() && left <= EXPIRY_NOTICE).then_some(left)
}

/// Which tokens to list or prune. Every condition given must hold; the default selects all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only expired tokens.
    pub expired: bool,
    /// Only tokens that still work and expire within this many days.
    pub expiring_within: Option<u32>,
    /// Only tokens never used.
    pub unused: bool,
    /// Only tokens not used in the last this many days; a never-used token counts from its
    /// creation.
    pub unused_for: Option<u32>,
}

impl Filter {
    /// The store's query for these conditions at `now`, of `project` if one is given.
    pub fn query<'a>(&self, project: Option<&'a str>, now: DateTime<Utc>) -> TokenQuery<'a> {
        let days = |n: u32| TimeDelta::days(i64::from(n));
        TokenQuery {
            project,
            expired_at: self.expired.then_some(now.timestamp()),
            expiring: self
                .expiring_within
                .map(|n| (now.timestamp(), (now + days(n)).timestamp())),
            never_used: self.unused,
            unused_since: self.unused_for.map(|n| (now - days(n)).timestamp()),
            live_at: Some(now.timestamp()),
        }
    }

    /// Whether any condition is set.
    pub fn is_set(&self) -> bool {
        *self != Filter::default()
    }
}

/// The most combining marks a description may stack on one character: more than any common
/// writing needs (Vietnamese uses 2, pointed Hebrew with cantillation 4), fewer than the
/// dozens of "zalgo" text that smears over the lines around it.
pub const DESCRIPTION_MAX_MARKS: usize = 4;

/// Checks a description: at most 200 characters on one line, with no control or format
/// characters (Unicode Cc, Cf, line and paragraph separators), at least one visible
/// character, at most [`DESCRIPTION_MAX_MARKS`] combining marks in a row, and nothing shaped
/// like a token (descriptions are stored and listed in plain text). Empty or only whitespace
/// means none.
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
    if text::has_token_shape(text) {
        // Quoted redacted: the prompt shows this message as it is.
        return Err(Error::usage(format!(
            "the description \"{}\" holds what looks like a token; descriptions are stored and listed in plain text",
            text::redact_tokens(text)
        ))
        .with_hint(
            "say what the token is for, not what it is; a real token typed on a command line is in your shell history: rotate it",
        ));
    }
    if text.chars().all(char::is_whitespace) {
        return Ok(None);
    }
    if !text::has_visible(text) {
        return Err(Error::usage(
            "the description has no visible character; use one line of visible text, or none",
        ));
    }
    let marks = text::longest_mark_run(text);
    if marks > DESCRIPTION_MAX_MARKS {
        return Err(Error::usage(format!(
            "the description stacks {marks} combining marks on one character; the limit is {DESCRIPTION_MAX_MARKS}"
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

/// A new token and the hash of its secret. Hashing is the slow part: done once, before any
/// transaction, and kept if the id has to be drawn again (the hash is of the secret alone).
fn fresh_token<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<(Token, String)> {
    let token = Token::generate(rng);
    let secret_hash = secret::hash(token.secret())
        .map_err(|err| Error::environment(format!("cannot hash the new token: {err}")))?;
    Ok((token, secret_hash))
}

/// How often a fresh id may collide before giving up (at 62^12 ids, never in practice).
const ID_ATTEMPTS: usize = 8;

/// Stores `created` with `store_it`, which answers `false` when the token's id is taken; the
/// id is then drawn again, at most [`ID_ATTEMPTS`] times.
fn store_under_free_id<R: CryptoRng + ?Sized>(
    rng: &mut R,
    created: &mut CreatedToken,
    mut store_it: impl FnMut(&CreatedToken) -> Result<bool>,
) -> Result<()> {
    for attempt in 1..=ID_ATTEMPTS {
        if store_it(created)? {
            return Ok(());
        }
        if attempt < ID_ATTEMPTS {
            created.token.set_id(TokenId::generate(rng));
        }
    }
    Err(Error::environment(
        "could not find a free token id; try again",
    ))
}

/// The row that stores `created`.
fn token_row<'a>(created: &'a CreatedToken, secret_hash: &'a str) -> NewToken<'a> {
    NewToken {
        id: created.token.id().as_str(),
        project: &created.project,
        secret_hash,
        description: created.description.as_deref(),
        created_at: created.created_at.timestamp(),
        expires_at: created.expires_at.map(|t| t.timestamp()),
    }
}

/// Creates a token, hands it to `deliver` (which shows it to the user), and keeps it only if
/// delivery succeeded: no token exists that nobody has seen.
///
/// The row is committed before delivery, so a failed database write prints nothing, and made
/// durable after it, before this returns.
///
/// `rng` must be a cryptographically secure generator; the binary passes the operating system's.
pub fn create<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    request: &TokenRequest<'_>,
    now: DateTime<Utc>,
    rng: &mut R,
    deliver: impl FnOnce(&CreatedToken) -> Result<()>,
) -> Result<CreatedToken> {
    let description = match request.description {
        Some(text) => validate_description(text)?,
        None => None,
    };
    // Checked first so that an unknown project costs no hashing; the insert looks the project
    // up again, in the statement that stores the token, in case it was deleted meanwhile.
    project::require(store, request.project)?;
    let (token, secret_hash) = fresh_token(rng)?;
    let mut created = CreatedToken {
        token,
        project: request.project.to_owned(),
        description: description.map(str::to_owned),
        created_at: now,
        expires_at: request.expiration.expires_at(now),
    };
    remove_stopped(store, now)?;
    store_under_free_id(rng, &mut created, |created| {
        // Durable only once shown (below): the moment in which a killed process leaves a
        // token nobody saw stays as short as it can be.
        match store.insert_token(&token_row(created, &secret_hash), Durability::Deferred)? {
            Inserted::Done => Ok(true),
            Inserted::IdTaken => Ok(false),
            Inserted::NoProject => Err(project::not_found(request.project)),
        }
    })?;
    if let Err(err) = deliver(&created) {
        return Err(undelivered(store, &created, err));
    }
    store.make_durable().map_err(|err| {
        Error::environment(format!(
            "the token above was shown but may not survive a power cut: {}",
            err.message()
        ))
        .about(Topic::UnsyncedToken(created.token.id().to_string()))
        .caused_by(err)
    })?;
    Ok(created)
}

/// `err`, the failure to show `created`, once the token is deleted again: nobody saw it, so
/// nobody may hold it.
fn undelivered(store: &dyn Store, created: &CreatedToken, err: Error) -> Error {
    let id = created.token.id().as_str();
    match store.delete_token(id, created.created_at.timestamp(), Removal::Undelivered) {
        Ok(_) => err,
        Err(undo) => Error::environment(format!(
            "{err}; removing the undelivered token {} failed too: {undo}",
            created.token.id()
        ))
        .about(Topic::UnseenToken(created.token.id().to_string())),
    }
}

/// Deletes the tokens whose scheduled end has come by `now`, rows and hashes. Every command
/// that changes tokens or projects does it first; each such token was refused from its end on
/// whether its row was still there or not.
pub fn remove_stopped(store: &dyn Store, now: DateTime<Utc>) -> Result<u64> {
    Ok(store.remove_stopped(now.timestamp())?)
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
    /// The time left, when it expires within [`EXPIRY_NOTICE`].
    pub expires_soon: Option<TimeDelta>,
    /// When it stops, replaced by a rotation with a grace period.
    pub ends: Option<ScheduledEnd>,
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
            expires_soon: expires_soon(expires_at, now),
            ends: ScheduledEnd::from_row(row.replacement),
        }
    }
}

/// A visitor of listed tokens that may fail (writing to stdout); its first error stops the
/// listing.
pub type Each<'a> = &'a mut dyn FnMut(TokenSummary) -> Result<()>;

/// Hands the tokens `filter` selects, oldest first, of one project or all, to each visitor of
/// `passes` in turn, all of the same moment, as the store reads them: nothing is held in
/// memory here, however many there are.
pub fn for_each(
    store: &dyn Store,
    project: Option<&str>,
    filter: &Filter,
    now: DateTime<Utc>,
    passes: &mut [Each<'_>],
) -> Result<()> {
    if let Some(name) = project {
        project::validate_name(name)?;
    }
    let failure = Failure::default();
    let mut visitors: Vec<_> = passes
        .iter_mut()
        .map(|each| {
            let failure = &failure;
            move |row: TokenRow| failure.check(each(TokenSummary::from_row(row, now)))
        })
        .collect();
    let mut visits: Vec<Visit<'_, TokenRow>> = visitors
        .iter_mut()
        .map(|visit| visit as Visit<'_, TokenRow>)
        .collect();
    let listed = store.tokens(&filter.query(project, now), &mut visits);
    drop(visits);
    drop(visitors);
    match failure.or(listed.map_err(Error::from))? {
        true => Ok(()),
        false => Err(project::not_found(project.unwrap_or_default())),
    }
}

/// The tokens `filter` selects, oldest first, of one project or all, in memory.
pub fn list(
    store: &dyn Store,
    project: Option<&str>,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<Vec<TokenSummary>> {
    let mut tokens = Vec::new();
    for_each(
        store,
        project,
        filter,
        now,
        &mut [&mut |token| {
            tokens.push(token);
            Ok(())
        }],
    )?;
    Ok(tokens)
}

/// Parses a token id. The input is not echoed: it may be a whole token pasted by mistake.
pub(super) fn parse_id(id: &str) -> Result<TokenId> {
    TokenId::parse(id).ok_or_else(|| {
        Error::usage("that is not a token id: a token id is 12 characters of 0-9, A-Z and a-z")
            .about(Topic::NotATokenId)
    })
}

fn not_found(id: impl std::fmt::Display) -> Error {
    Error::refused(format!("no token with id {id}")).about(Topic::NoToken)
}

/// One token, to show before revoking or rotating it. A token whose scheduled end has come
/// by `now` is gone, as if revoked then.
pub fn find(store: &dyn Store, id: &str, now: DateTime<Utc>) -> Result<TokenSummary> {
    let id = parse_id(id)?;
    store
        .token(id.as_str())?
        .map(|row| TokenSummary::from_row(row, now))
        .filter(|token| !token.ends.as_ref().is_some_and(|end| end.has_come(now)))
        .ok_or_else(|| not_found(&id))
}

/// Revokes a token: deletes it for good. From the moment this returns, it does not verify.
/// A token in its grace period stops at once too.
pub fn revoke(store: &dyn Store, id: &str, now: DateTime<Utc>) -> Result<()> {
    let id = parse_id(id)?;
    remove_stopped(store, now)?;
    if store.delete_token(id.as_str(), now.timestamp(), Removal::Revoked)? {
        Ok(())
    } else {
        Err(not_found(&id))
    }
}

/// Revokes, in one transaction, those of `tokens` (selected by `filter` for a prune, of
/// `project` if one was named) that still match it: a token used since it was selected (at a
/// confirmation prompt, say) is kept. Expiry needs no second look: it never changes. Each has
/// its event, which names the selection. Returns how many were revoked.
pub fn revoke_all(
    store: &dyn Store,
    tokens: &[TokenSummary],
    project: Option<&str>,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<u64> {
    remove_stopped(store, now)?;
    let mut ids = tokens.iter().map(|t| t.id.as_str());
    let selection = Selection {
        project,
        expired: filter.expired,
        unused_for_days: filter.unused_for,
    };
    Ok(store.delete_tokens(
        &mut ids,
        &filter.query(None, now),
        now.timestamp(),
        &selection,
    )?)
}

/// Whether `old` may be rotated with `grace`: not when it is already replaced (its end is
/// set once), and not with a grace period when it has expired (nothing is left to keep
/// working). Checked before anything is asked or written.
pub fn check_rotation(old: &TokenSummary, grace: Grace) -> Result<()> {
    if let Some(end) = &old.ends {
        return Err(Error::refused(format!(
            "token {} was already rotated: its replacement is token {}",
            old.id, end.replaced_by
        ))
        .about(Topic::AlreadyRotated {
            id: old.id.clone(),
            project: old.project.clone(),
            replaced_by: end.replaced_by.clone(),
        }));
    }
    if !grace.is_none() && old.status == Status::Expired {
        return Err(Error::usage(format!(
            "token {} has expired: nothing is left to keep working, so a grace period does not apply",
            old.id
        ))
        .about(Topic::GraceForExpired));
    }
    Ok(())
}

/// When `old`, rotated at `now` with `grace`, stops: at once, or at the end of the grace
/// period, or at its own expiry if that comes first (its expiration is never moved).
pub fn old_token_stops_at(old: &TokenSummary, grace: Grace, now: DateTime<Utc>) -> DateTime<Utc> {
    let end = now + grace.length();
    old.expires_at.map_or(end, |expiry| end.min(expiry))
}

/// What became of the old token once its replacement was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldToken {
    /// Revoked: it stopped at the rotation.
    Stopped,
    /// It keeps working until then (the grace period, or its own expiry if that is sooner).
    StopsAt(DateTime<Utc>),
    /// Another command revoked it (or rotated it at once) meanwhile.
    RevokedMeanwhile,
    /// Another rotation scheduled its end meanwhile, which stands.
    RotatedMeanwhile(ScheduledEnd),
}

/// A rotation done: the new token, and what became of the old one.
#[derive(Debug)]
pub struct Rotated {
    pub created: CreatedToken,
    pub old_id: String,
    pub old: OldToken,
}

/// Replaces a token with a new one: same project, same description, the same lifetime counted
/// from `now` (30, 90 or 365 days, or never). In three steps, so that a crash at any moment
/// leaves a token that works, and every token shown works:
/// 1. the new token is inserted and committed durably;
/// 2. it is handed to `deliver` (which shows it to the user); if that fails, it is deleted
///    again and the old token works on, unchanged;
/// 3. the old token is revoked, or with a grace period its end is scheduled at `now + grace`
///    (or its own expiry, if sooner), durably.
///
/// Killed between 1 and 3, both tokens work (the new one perhaps unseen, and listed).
pub fn rotate<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    id: &str,
    grace: Grace,
    now: DateTime<Utc>,
    rng: &mut R,
    deliver: impl FnOnce(&CreatedToken) -> Result<()>,
) -> Result<Rotated> {
    remove_stopped(store, now)?;
    let old = find(store, id, now)?;
    check_rotation(&old, grace)?;
    let lifetime = old.expires_at.map(|at| at - old.created_at);
    let stops_at = (!grace.is_none()).then(|| old_token_stops_at(&old, grace, now));
    let (token, secret_hash) = fresh_token(rng)?;
    let mut created = CreatedToken {
        token,
        project: old.project.clone(),
        description: old.description.clone(),
        created_at: now,
        expires_at: lifetime.map(|lifetime| now + lifetime),
    };
    store_under_free_id(rng, &mut created, |created| {
        match store.insert_replacement(&old.id, &token_row(created, &secret_hash))? {
            Inserted::Done => Ok(true),
            Inserted::IdTaken => Ok(false),
            // Revoked or rotated since it was read: the next look says which.
            Inserted::NoProject => Err(check_rotation(&find(store, &old.id, now)?, grace)
                .err()
                .unwrap_or_else(|| not_found(&old.id))),
        }
    })?;
    if let Err(err) = deliver(&created) {
        return Err(undelivered(store, &created, err));
    }
    let new_id = created.token.id().to_string();
    let retired = store
        .retire_token(
            &old.id,
            &new_id,
            stops_at.map(|at| at.timestamp()),
            now.timestamp(),
        )
        .map_err(|err| {
            let what = if stops_at.is_some() {
                "its end could not be scheduled"
            } else {
                "it could not be revoked"
            };
            Error::environment(format!(
                "the new token above works, but token {} still works too: {what}: {}",
                old.id,
                err.message()
            ))
            .about(Topic::NotRetired(old.id.clone()))
            .caused_by(err)
        })?;
    let old_token = match (retired, stops_at) {
        (Retired::Done, None) => OldToken::Stopped,
        (Retired::Done, Some(at)) => OldToken::StopsAt(at),
        (Retired::Gone, _) => OldToken::RevokedMeanwhile,
        (Retired::Scheduled(replacement), _) => OldToken::RotatedMeanwhile(
            ScheduledEnd::from_row(Some(replacement)).expect("a scheduled end"),
        ),
    };
    Ok(Rotated {
        created,
        old_id: old.id,
        old: old_token,
    })
}

#[cfg(test)]
mod tests;
