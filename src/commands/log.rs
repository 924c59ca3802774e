//! `autheona log`: the audit log, newest first, or followed as it grows.

use std::time::Duration;

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

use super::{Context, Each, Outcome, print_json_listing};
use crate::cli::{ActionArg, LogArgs};
use crate::error::{Error, Result};
use crate::ops::audit::{self, Event, Filter};
use crate::store::{Action, Store};
use crate::ui;
use crate::ui::table::{Stream, Streamed};
use crate::ui::time::{self, Rfc3339, Zone};

/// How often `--follow` asks the store for new events.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

impl From<ActionArg> for Action {
    fn from(arg: ActionArg) -> Action {
        match arg {
            ActionArg::ProjectCreate => Action::ProjectCreate,
            ActionArg::ProjectDelete => Action::ProjectDelete,
            ActionArg::TokenCreate => Action::TokenCreate,
            ActionArg::TokenRevoke => Action::TokenRevoke,
            ActionArg::TokenRotate => Action::TokenRotate,
            ActionArg::TokenStop => Action::TokenStop,
            ActionArg::TokenPrune => Action::TokenPrune,
            ActionArg::StoreCopy => Action::StoreCopy,
        }
    }
}

pub fn run(ctx: &Context, args: &LogArgs) -> Result<Outcome> {
    let since = args
        .since
        .as_deref()
        .map(|when| parse_when(when, ctx.now, ctx.zone))
        .transpose()?;
    let filter = Filter {
        project: args.project.as_deref(),
        token_id: args.token.as_deref(),
        action: args.action.map(Action::from),
        since,
    };
    let store = ctx.open_quietly()?;
    if args.follow {
        return follow(ctx, args, store, &filter);
    }
    if args.json {
        print_json_listing(
            |each| match &store {
                Some(store) => json_events(&**store, &filter, each),
                None => Ok(()),
            },
            ui::print_json_streamed,
        )?;
        return Ok(Outcome::Success);
    }
    let shown = match &store {
        Some(store) => stream_table(&**store, &filter, ctx.zone)?,
        None => 0,
    };
    if shown == 0 {
        ui::status(if filter.is_set() {
            "No events match."
        } else {
            "No events."
        });
    }
    Ok(Outcome::Success)
}

/// WHEN: a time ago (`30m`, `12h`, `7d`), RFC 3339, a date and time (`2026-12-01 15:00`,
/// seconds optional) or a date (its midnight), the last two in the zone times are shown in.
fn parse_when(when: &str, now: DateTime<Utc>, zone: Zone) -> Result<DateTime<Utc>> {
    let invalid = || {
        Error::usage(format!(
            "'{}' is not a time for --since: give a date (2026-12-01), a date and time \
             (2026-12-01 15:00, or 2026-12-01T15:00:00Z) or a time ago (30m, 12h, 7d)",
            crate::text::redact_tokens(when)
        ))
    };
    match crate::ops::span(when) {
        Ok(ago) => return now.checked_sub_signed(ago).ok_or_else(invalid),
        Err(crate::ops::SpanError::TooLong) => return Err(invalid()),
        Err(crate::ops::SpanError::NotASpan) => {}
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(when) {
        return Ok(at.to_utc());
    }
    let naive = NaiveDateTime::parse_from_str(when, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(when, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(when, "%Y-%m-%d")
                .map(|date| date.and_time(Default::default()))
        })
        .map_err(|_| invalid())?;
    match zone {
        Zone::Utc => Ok(naive.and_utc()),
        // The first of an hour that comes twice; none of an hour skipped.
        Zone::Local => Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|at| at.to_utc())
            .ok_or_else(invalid),
    }
}

#[derive(Serialize)]
struct EventJson {
    at: Rfc3339,
    action: String,
    project: Option<String>,
    token_id: Option<String>,
    description: Option<String>,
    detail: serde_json::Value,
    actor: ActorJson,
}

#[derive(Serialize)]
struct ActorJson {
    user: Option<String>,
    uid: Option<i64>,
    host: Option<String>,
    role: Option<String>,
}

impl From<Event> for EventJson {
    fn from(e: Event) -> EventJson {
        EventJson {
            at: Rfc3339(e.at),
            action: e.action,
            project: e.project,
            token_id: e.token_id,
            description: e.description,
            detail: e.detail,
            actor: ActorJson {
                user: e.actor.user,
                uid: e.actor.uid,
                host: e.actor.host,
                role: e.actor.role,
            },
        }
    }
}

fn json_events(store: &dyn Store, filter: &Filter<'_>, each: Each<'_, EventJson>) -> Result<()> {
    audit::for_each(store, filter, &mut [&mut |e| each(EventJson::from(e))])
}

const HEADER: [&str; 6] = ["Time", "Action", "Project", "Token", "Description", "Actor"];

/// An event's cells: empty where a field does not apply.
fn cells(zone: Zone, e: &Event) -> Vec<String> {
    vec![
        time::for_people_to_the_second(zone, e.at),
        e.action.clone(),
        e.project.clone().unwrap_or_default(),
        e.token_id.clone().unwrap_or_default(),
        e.description.clone().unwrap_or_default(),
        actor(e),
    ]
}

/// `user@host`, and `as ROLE` on a server.
fn actor(e: &Event) -> String {
    let user = match (&e.actor.user, e.actor.uid) {
        (Some(user), _) => user.clone(),
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => "?".to_owned(),
    };
    let mut actor = match &e.actor.host {
        Some(host) => format!("{user}@{host}"),
        None => user,
    };
    if let Some(role) = &e.actor.role {
        actor.push_str(" as ");
        actor.push_str(role);
    }
    actor
}

/// The events as a table, streamed from the store in two passes (the first measures the
/// columns); returns how many rows it printed.
fn stream_table(store: &dyn Store, filter: &Filter<'_>, zone: Zone) -> Result<usize> {
    let table = std::cell::RefCell::new(Streamed::new(Stream::Stdout, &HEADER, Some(4)));
    audit::for_each(
        store,
        filter,
        &mut [
            &mut |e| {
                table.borrow_mut().measure(&cells(zone, &e));
                Ok(())
            },
            &mut |e| table.borrow_mut().print(cells(zone, &e)),
        ],
    )?;
    let table = table.into_inner();
    let rows = table.rows();
    table.finish()?;
    Ok(rows)
}

/// `--follow`: the events committed from now on (or since `--since`), oldest first, as they
/// come, until interrupted (exit 130) or until what is written would be lost (then quietly):
/// stdout's reader has gone, or stdout was closed from the start.
fn follow(
    ctx: &Context,
    args: &LogArgs,
    mut store: Option<Box<dyn Store>>,
    filter: &Filter<'_>,
) -> Result<Outcome> {
    ui::exit_on_interrupt();
    let mut after = match &store {
        Some(_) if filter.since.is_some() => 0,
        Some(store) => audit::end(&**store)?,
        None => 0,
    };
    loop {
        if ui::stdout_loses_output() {
            return Ok(Outcome::Success);
        }
        if store.is_none() {
            // No store yet: one may be made meanwhile.
            store = ctx.open_quietly()?;
        }
        if let Some(store) = &store {
            let printed = audit::after(&**store, filter, after, &mut |e| {
                if args.json {
                    ui::print_json_line(&EventJson::from(e))
                } else {
                    ui::print_line(&follow_line(ctx.zone, &e))
                }
            });
            match printed {
                Ok(last) => after = last,
                Err(err) if err.kind() == crate::error::ErrorKind::BrokenPipe => {
                    return Ok(Outcome::Success);
                }
                Err(err) => return Err(err),
            }
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// One event on one line, for `--follow` (a table cannot be measured ahead): the table's
/// cells, escaped, `-` where a field does not apply, those of a known width padded to it so
/// that lines align up to the description (an action, a project of up to 16 characters, a
/// token id).
fn follow_line(zone: Zone, e: &Event) -> String {
    const WIDTHS: [usize; 6] = [0, 14, 16, 12, 0, 0];
    cells(zone, e)
        .iter()
        .zip(WIDTHS)
        .map(|(cell, width)| {
            let cell = match cell.is_empty() {
                true => "-".to_owned(),
                false => ui::safe(cell).into_owned(),
            };
            let pad = width.saturating_sub(crate::ui::table::cell_width(&cell));
            cell + &" ".repeat(pad)
        })
        .collect::<Vec<_>>()
        .join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_a_date_a_date_and_time_rfc3339_or_a_time_ago() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T15:30:00Z")
            .unwrap()
            .to_utc();
        let at = |text: &str| parse_when(text, now, Zone::Utc).map(|t| t.to_rfc3339());
        assert_eq!(at("2026-11-30").unwrap(), "2026-11-30T00:00:00+00:00");
        assert_eq!(at("2026-11-30 08:15").unwrap(), "2026-11-30T08:15:00+00:00");
        assert_eq!(
            at("2026-11-30 08:15:09").unwrap(),
            "2026-11-30T08:15:09+00:00"
        );
        assert_eq!(
            at("2026-11-30T08:15:09+02:00").unwrap(),
            "2026-11-30T06:15:09+00:00"
        );
        assert_eq!(at("30m").unwrap(), "2026-12-01T15:00:00+00:00");
        assert_eq!(at("12h").unwrap(), "2026-12-01T03:30:00+00:00");
        assert_eq!(at("7d").unwrap(), "2026-11-24T15:30:00+00:00");
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "-7d",
            "2026-13-01",
            "yesterday",
            "99999999999999d",
        ] {
            assert!(at(bad).is_err(), "{bad:?}");
        }
    }
}
