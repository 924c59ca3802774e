//! What both engines write to the audit log: an event's fields, its `detail` object, and who
//! acts. Each engine appends events in the transaction of the change they record.

use std::cell::OnceCell;

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use super::{Action, Actor, NewToken, Removal, Selection, WhoActs};

/// An event to append, but for its actor (the store's own) and place in the log.
#[derive(Debug, Clone)]
pub(super) struct NewEvent<'a> {
    pub at: i64,
    pub action: Action,
    pub project: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub description: Option<&'a str>,
    /// A JSON object, as text.
    pub detail: String,
}

impl<'a> NewEvent<'a> {
    pub fn new(at: i64, action: Action, detail: Value) -> NewEvent<'a> {
        NewEvent {
            at,
            action,
            project: None,
            token_id: None,
            description: None,
            detail: detail.to_string(),
        }
    }

    pub fn project(mut self, name: &'a str) -> NewEvent<'a> {
        self.project = Some(name);
        self
    }

    pub fn token(mut self, id: &'a str, description: Option<&'a str>) -> NewEvent<'a> {
        self.token_id = Some(id);
        self.description = description;
        self
    }
}

/// The `detail` objects, one per kind of event that has one.
pub(super) mod detail {
    use super::*;

    pub fn none() -> Value {
        json!({})
    }

    pub fn project_delete(tokens: u64) -> Value {
        json!({ "tokens": tokens })
    }

    pub fn token_create(expires_at: Option<i64>, replaces: Option<&str>) -> Value {
        let mut detail = json!({ "expires_at": expires_at.map(rfc3339) });
        if let Some(old) = replaces {
            detail["replaces"] = json!(old);
        }
        detail
    }

    pub fn undelivered() -> Value {
        json!({ "undelivered": true })
    }

    pub fn rotate(replaced_by: &str, grace_seconds: i64) -> Value {
        json!({ "replaced_by": replaced_by, "grace_seconds": grace_seconds })
    }

    pub fn stop(replaced_by: &str, stopped_at: i64) -> Value {
        json!({ "replaced_by": replaced_by, "stopped_at": rfc3339(stopped_at) })
    }

    pub fn prune(selection: &Selection<'_>) -> Value {
        json!({ "selection": {
            "project": selection.project,
            "expired": selection.expired,
            "unused_for_days": selection.unused_for_days,
        }})
    }

    pub fn copy(source: &str, projects: u64, tokens: u64, events: u64) -> Value {
        json!({ "source": source, "projects": projects, "tokens": tokens, "events": events })
    }

    fn rfc3339(seconds: i64) -> String {
        DateTime::from_timestamp(seconds, 0)
            .unwrap_or(DateTime::<chrono::Utc>::MAX_UTC)
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// Who acts, found out once, at the first event a store appends.
#[derive(Debug, Default)]
pub(super) struct Acting {
    who: Option<WhoActs>,
    actor: OnceCell<Actor>,
}

impl Acting {
    pub fn set(&mut self, who: WhoActs) {
        self.who = Some(who);
        self.actor = OnceCell::new();
    }

    /// Who acts; found out at the first call.
    pub fn actor(&self) -> &Actor {
        self.actor
            .get_or_init(|| self.who.map_or_else(Actor::default, |who| who()))
    }
}

/// The event `token.create` of `token`; of a rotation's new token when it `replaces` one.
pub(super) fn created<'a>(token: &NewToken<'a>, replaces: Option<&str>) -> NewEvent<'a> {
    NewEvent::new(
        token.created_at,
        Action::TokenCreate,
        detail::token_create(token.expires_at, replaces),
    )
    .project(token.project)
    .token(token.id, token.description)
}

/// The event `token.revoke` of token `id`, of `project`, at `at`.
pub(super) fn revoked<'a>(
    at: i64,
    project: &'a str,
    id: &'a str,
    description: Option<&'a str>,
    why: Removal,
) -> NewEvent<'a> {
    let detail = match why {
        Removal::Revoked => detail::none(),
        Removal::Undelivered => detail::undelivered(),
    };
    NewEvent::new(at, Action::TokenRevoke, detail)
        .project(project)
        .token(id, description)
}
