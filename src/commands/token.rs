//! `autheona token create | list | revoke | rotate | prune`.

use chrono::{DateTime, Utc};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use std::cell::{Cell, RefCell};

use serde::Serialize;

use super::{Context, Each, Outcome, Rows, can_confirm, confirm, print_json_listing};
use crate::cli::{
    ExpiresArg, TokenCommand, TokenCreateArgs, TokenListArgs, TokenPruneArgs, TokenRevokeArgs,
    TokenRotateArgs,
};
use crate::environment::default_from_env;
use crate::error::{Error, Result};
use crate::ops::project;
use crate::ops::token::{
    self, CreatedToken, Expiration, Filter, Grace, OldToken, Status, TokenRequest, TokenSummary,
    validate_description,
};
use crate::store::Store;
use crate::ui::table::{self, Stream, Streamed};
use crate::ui::time::Rfc3339;
use crate::ui::time::{self, Zone};
use crate::ui::{self, prompt};

pub fn run(ctx: &Context, command: TokenCommand) -> Result<Outcome> {
    match command {
        TokenCommand::Create(args) => create(ctx, &args),
        TokenCommand::List(args) => list(ctx, &args),
        TokenCommand::Revoke(args) => revoke(ctx, &args),
        TokenCommand::Rotate(args) => rotate(ctx, &args),
        TokenCommand::Prune(args) => prune(ctx, &args),
    }
}

impl From<ExpiresArg> for Expiration {
    fn from(arg: ExpiresArg) -> Expiration {
        match arg {
            ExpiresArg::Days30 => Expiration::Days30,
            ExpiresArg::Days90 => Expiration::Days90,
            ExpiresArg::Days365 => Expiration::Days365,
            ExpiresArg::Never => Expiration::Never,
        }
    }
}

fn expiration_label(expiration: Expiration) -> String {
    match expiration.days() {
        Some(days) => format!("{days} days"),
        None => "Never expire".to_owned(),
    }
}

fn missing(flag: &str, what: &str) -> Error {
    Error::usage(format!(
        "{flag} is required: no terminal to ask for the {what}"
    ))
    .with_hint(format!(
        "pass {flag}, e.g. autheona token create --project NAME --expires 30"
    ))
}

fn create(ctx: &Context, args: &TokenCreateArgs) -> Result<Outcome> {
    // Check what was given before asking for the rest or touching the database.
    if let Some(text) = &args.description {
        validate_description(text)?;
    }
    let given_project = args.project.clone().or_else(|| {
        // Not UTF-8 cannot be a name; validate_name refuses the replacement character.
        default_from_env("AUTHEONA_PROJECT").map(|name| name.to_string_lossy().into_owned())
    });
    let interactive = ui::is_interactive();
    if !interactive {
        if given_project.is_none() {
            return Err(missing("--project", "project"));
        }
        if args.expires.is_none() {
            return Err(missing("--expires", "expiration"));
        }
    }
    // Before anything is written (a token, its event): a token no one can read is not made.
    refuse_lost_stdout(None)?;
    let store = ctx.open()?;
    let will_ask = interactive && (args.expires.is_none() || args.description.is_none());
    let project = match given_project {
        Some(name) => {
            // Before any prompt: a person should not answer questions for a doomed request.
            // Without one, `token::create` checks it: one lookup, not two (a round trip on a
            // server).
            if will_ask {
                project::require(&*store, &name)?;
            }
            name
        }
        None => ask_project(&*store, ctx.now)?,
    };
    let expiration = match args.expires {
        Some(arg) => arg.into(),
        None => ask_expiration()?,
    };
    let description = match &args.description {
        Some(text) => text.clone(),
        None if interactive => prompt::text("Description (optional)", |text| {
            validate_description(text).map(|_| ())
        })?,
        None => String::new(),
    };
    let request = TokenRequest {
        project: &project,
        expiration,
        description: Some(&description),
    };
    let mut rng = UnwrapErr(SysRng);
    let created = token::create(&*store, &request, ctx.now, &mut rng, |created| {
        deliver(created, args.json, None)
    })?;
    let expires = time::expiry(ctx.zone, created.expires_at);
    ui::status(&format!(
        "Created token {} for project {} ({expires}).",
        created.token.id(),
        created.project
    ));
    shown_once();
    Ok(Outcome::Success)
}

fn shown_once() {
    ui::status(
        "This is the only time the token is shown: store it now, e.g. in a secret manager or an \
         environment variable, and never commit it.",
    );
}

fn ask_project(store: &dyn Store, now: DateTime<Utc>) -> Result<String> {
    let mut names: Vec<String> = project::list(store, now)?
        .into_iter()
        .map(|p| p.name)
        .collect();
    if names.is_empty() {
        return Err(Error::refused("there are no projects yet")
            .with_hint(super::advice::CREATE_A_PROJECT_FIRST));
    }
    let chosen = prompt::select("Project", &names, 0)?;
    Ok(names.swap_remove(chosen))
}

fn ask_expiration() -> Result<Expiration> {
    let labels: Vec<String> = Expiration::ALL
        .iter()
        .map(|&e| expiration_label(e))
        .collect();
    let chosen = prompt::select("Expiration", &labels, 0)?;
    Ok(Expiration::ALL[chosen])
}

#[derive(Serialize)]
struct CreatedJson<'a> {
    id: &'a str,
    project: &'a str,
    token: &'a str,
    description: Option<&'a str>,
    created_at: String,
    expires_at: Option<String>,
    /// The token it replaced, and when that one stops (rotate).
    #[serde(flatten)]
    replaced: Option<ReplacedJson<'a>>,
}

#[derive(Serialize)]
struct ReplacedJson<'a> {
    replaces: &'a str,
    old_token_stops_at: String,
}

/// What a rotation's new token replaces: the old token's id, and when it stops.
struct Replacing<'a> {
    old_id: &'a str,
    stops_at: DateTime<Utc>,
}

/// The error of a new token that could not be shown (and, for a rotation, of the token it
/// replaces, which still works).
fn undelivered(why: &str, replacing: Option<&str>) -> Error {
    let unchanged = match replacing {
        Some(old) => format!("nothing changed: token {old} still works"),
        None => "nothing was created".to_owned(),
    };
    Error::environment(format!("{why}; it was not kept")).with_hint(format!(
        "{unchanged}; run the command again with a working stdout"
    ))
}

/// Refuses a stdout that would lose the token before it is written: a device, a closed
/// stdout, one open for reading only, a pipe whose reader has gone.
fn refuse_lost_stdout(replacing: Option<&str>) -> Result<()> {
    if ui::stdout_loses_output() {
        return Err(undelivered(
            "stdout is a device other than a terminal (such as /dev/null or /dev/zero), was closed, is open for reading only, or has no reader, so the token would be lost",
            replacing,
        ));
    }
    Ok(())
}

/// Shows the new token, once, on stdout. Any failure here means the token is not kept (and, for
/// a rotation, the token it replaces still works).
fn deliver(created: &CreatedToken, json: bool, replacing: Option<&Replacing<'_>>) -> Result<()> {
    let old_id = replacing.map(|old| old.old_id);
    refuse_lost_stdout(old_id)?;
    let token = created.token.reveal();
    let written = if json {
        ui::print_json(&CreatedJson {
            id: created.token.id().as_str(),
            project: &created.project,
            token: token.expose(),
            description: created.description.as_deref(),
            created_at: time::rfc3339(created.created_at),
            expires_at: created.expires_at.map(time::rfc3339),
            replaced: replacing.map(|old| ReplacedJson {
                replaces: old.old_id,
                old_token_stops_at: time::rfc3339(old.stops_at),
            }),
        })
    } else {
        ui::print_line(token.expose())
    };
    written.map_err(|err| {
        undelivered(
            &format!("could not write the token to stdout ({})", err.message()),
            old_id,
        )
    })
}

#[derive(Serialize)]
struct TokenJson {
    id: String,
    project: String,
    description: Option<String>,
    created_at: Rfc3339,
    expires_at: Option<Rfc3339>,
    last_used_at: Option<Rfc3339>,
    status: &'static str,
    /// When it stops, replaced by a rotation with a grace period; else null.
    stops_at: Option<Rfc3339>,
    /// The token that replaced it, while it works on in its grace period; else null.
    replaced_by: Option<String>,
}

impl From<TokenSummary> for TokenJson {
    fn from(t: TokenSummary) -> Self {
        let (stops_at, replaced_by) = match t.ends {
            Some(end) => (Some(Rfc3339(end.stops_at)), Some(end.replaced_by)),
            None => (None, None),
        };
        TokenJson {
            id: t.id,
            project: t.project,
            description: t.description,
            created_at: Rfc3339(t.created_at),
            expires_at: t.expires_at.map(Rfc3339),
            last_used_at: t.last_used_at.map(Rfc3339),
            status: t.status.as_str(),
            stops_at,
            replaced_by,
        }
    }
}

/// Lists the tokens a listing selects as JSON rows, for [`print_json_listing`].
fn json_tokens(
    store: &dyn Store,
    project: Option<&str>,
    filter: &Filter,
    now: chrono::DateTime<chrono::Utc>,
    each: Each<'_, TokenJson>,
) -> Result<()> {
    token::for_each(
        store,
        project,
        filter,
        now,
        &mut [&mut |t| each(TokenJson::from(t))],
    )
}

/// [`json_tokens`] for a prune's dry run: the tokens counted in a first pass over the same
/// snapshot, and `counted` told how many before the first one is handed over, so that its
/// status line comes first (and reaches the person even when stdout is gone).
fn counted_json_tokens(
    store: &dyn Store,
    project: Option<&str>,
    filter: &Filter,
    now: chrono::DateTime<chrono::Utc>,
    counted: &mut dyn FnMut(u64),
    each: Each<'_, TokenJson>,
) -> Result<()> {
    let announce = Announce::new(counted);
    token::for_each(
        store,
        project,
        filter,
        now,
        &mut [
            &mut |_| {
                announce.count();
                Ok(())
            },
            &mut |t| {
                announce.once();
                each(TokenJson::from(t))
            },
        ],
    )?;
    announce.once();
    Ok(())
}

/// Counts rows in a first pass and tells the count once, before the second pass shows any.
struct Announce<'a> {
    rows: Cell<u64>,
    hook: RefCell<Option<&'a mut dyn FnMut(u64)>>,
}

impl<'a> Announce<'a> {
    fn new(hook: &'a mut dyn FnMut(u64)) -> Self {
        Announce {
            rows: Cell::new(0),
            hook: RefCell::new(Some(hook)),
        }
    }

    fn count(&self) {
        self.rows.set(self.rows.get() + 1);
    }

    fn once(&self) {
        if let Some(hook) = self.hook.borrow_mut().take() {
            hook(self.rows.get());
        }
    }
}

/// Streams the tokens from the store to stdout: memory stays flat however many there are.
fn list(ctx: &Context, args: &TokenListArgs) -> Result<Outcome> {
    let filter = Filter {
        expired: args.expired,
        expiring_within: args.expiring_within,
        unused: args.unused,
        unused_for: args.unused_for,
    };
    let store = ctx.open_if_exists()?;
    let project = args.project.as_deref();
    if args.json {
        print_json_listing(
            |each| match &store {
                Some(store) => json_tokens(&**store, project, &filter, ctx.now, each),
                None => Ok(()),
            },
            ui::print_json_streamed,
        )?;
        return Ok(Outcome::Success);
    }
    let shown = match &store {
        Some(store) => stream_table(ctx, &**store, project, &filter, Stream::Stdout, &mut |_| {})?,
        None => 0,
    };
    if shown == 0 {
        ui::status(if filter.is_set() {
            "No tokens match."
        } else {
            "No tokens."
        });
    }
    Ok(Outcome::Success)
}

/// A token's Status cell: its status, when it stops if it was replaced, or how soon it
/// expires.
fn status(zone: Zone, t: &TokenSummary) -> String {
    match (&t.ends, t.expires_soon) {
        (Some(end), _) if t.status == Status::Active => {
            format!("replaced, stops {}", time::for_people(zone, end.stops_at))
        }
        (_, Some(left)) => format!("expiring in {}", time::span(left)),
        _ => t.status.as_str().to_owned(),
    }
}

/// The columns of a token table; Project only when the tokens may be of several.
struct Columns {
    zone: Zone,
    all_projects: bool,
}

impl Columns {
    fn header(&self) -> Vec<&'static str> {
        let mut header = vec!["ID"];
        if self.all_projects {
            header.push("Project");
        }
        header.extend(["Description", "Created", "Expires", "Last used", "Status"]);
        header
    }

    /// The column that wraps on a narrow terminal: the description.
    fn wrapped(&self) -> usize {
        if self.all_projects { 2 } else { 1 }
    }

    /// How wide each of [`Columns::cells`] prints, without making them: the first pass over a
    /// million tokens only measures.
    fn widths(&self, t: &TokenSummary) -> Vec<usize> {
        let mut widths = vec![table::cell_width(&t.id)];
        if self.all_projects {
            widths.push(table::cell_width(&t.project));
        }
        widths.extend([
            t.description.as_deref().map_or(0, table::cell_width),
            time::for_people_width(self.zone, t.created_at),
            time::for_people_or_never_width(self.zone, t.expires_at),
            time::for_people_or_never_width(self.zone, t.last_used_at),
            match (&t.ends, t.expires_soon) {
                (None, None) => t.status.as_str().len(),
                _ => table::cell_width(&status(self.zone, t)),
            },
        ]);
        widths
    }

    fn cells(&self, t: &TokenSummary) -> Vec<String> {
        let status = status(self.zone, t);
        let mut cells = vec![t.id.clone()];
        if self.all_projects {
            cells.push(t.project.clone());
        }
        cells.extend([
            t.description.clone().unwrap_or_default(),
            time::for_people(self.zone, t.created_at),
            time::for_people_or_never(self.zone, t.expires_at),
            time::for_people_or_never(self.zone, t.last_used_at),
            status,
        ]);
        cells
    }
}

/// The tokens `filter` selects as a table, streamed from the store in two passes over one
/// snapshot (the first measures the columns); returns how many rows it printed.
fn stream_table(
    ctx: &Context,
    store: &dyn Store,
    project: Option<&str>,
    filter: &Filter,
    stream: Stream,
    measured: &mut dyn FnMut(u64),
) -> Result<usize> {
    let announce = Announce::new(measured);
    let columns = Columns {
        zone: ctx.zone,
        all_projects: project.is_none(),
    };
    let header = columns.header();
    let table = RefCell::new(Streamed::new(stream, &header, Some(columns.wrapped())));
    token::for_each(
        store,
        project,
        filter,
        ctx.now,
        &mut [
            &mut |t| {
                announce.count();
                table.borrow_mut().measure_widths(&columns.widths(&t));
                Ok(())
            },
            &mut |t| {
                announce.once();
                table.borrow_mut().print(columns.cells(&t))
            },
        ],
    )?;
    announce.once();
    let table = table.into_inner();
    let rows = table.rows();
    table.finish()?;
    Ok(rows)
}

/// Tokens in memory as a table (those a prune is about to revoke).
fn print_table(
    stream: Stream,
    zone: Zone,
    tokens: &[TokenSummary],
    all_projects: bool,
) -> Result<()> {
    let columns = Columns { zone, all_projects };
    let rows = tokens.iter().map(|t| columns.cells(t)).collect();
    table::print_to(stream, &columns.header(), rows, Some(columns.wrapped()))
}

/// How a token is named in a confirmation: id, project, description, creation.
fn describe(zone: Zone, token: &TokenSummary) -> String {
    let description = token
        .description
        .as_deref()
        .map_or_else(String::new, |d| format!(", \"{d}\""));
    format!(
        "token {} (project {}{description}, created {})",
        token.id,
        token.project,
        time::for_people(zone, token.created_at)
    )
}

fn revoke(ctx: &Context, args: &TokenRevokeArgs) -> Result<Outcome> {
    let store = ctx.open()?;
    let found = token::find(&*store, &args.token_id, ctx.now)?;
    confirm(
        args.yes,
        &format!(
            "Revoke {}? It stops working at once and cannot be recovered.",
            describe(ctx.zone, &found)
        ),
        "pass --yes to revoke without asking",
    )?;
    token::revoke(&*store, &found.id, ctx.now)?;
    ui::status(&format!("Revoked token {}.", found.id));
    Ok(Outcome::Success)
}

fn rotate(ctx: &Context, args: &TokenRotateArgs) -> Result<Outcome> {
    let store = ctx.open()?;
    let old = token::find(&*store, &args.token_id, ctx.now)?;
    // Before any question: a person should not answer them for a doomed request.
    token::check_rotation(&old, args.grace.unwrap_or_default())?;
    refuse_lost_stdout(Some(&old.id))?;
    // The grace period is asked after the confirmation, of a person at a terminal who gave
    // none, unless nothing is left to keep working.
    let ask = args.grace.is_none() && !args.yes && old.status == Status::Active;
    let ask = ask && ui::is_interactive();
    let after = match args.grace {
        _ if ask => String::new(),
        Some(grace) if !grace.is_none() => format!(
            ", and it keeps working until {}",
            time::for_people(ctx.zone, token::old_token_stops_at(&old, grace, ctx.now))
        ),
        _ => ", and it stops working at once".to_owned(),
    };
    confirm(
        args.yes,
        &format!(
            "Rotate {}? A new token replaces it{after}.",
            describe(ctx.zone, &old)
        ),
        "pass --yes to rotate without asking",
    )?;
    let grace = match args.grace {
        Some(grace) => grace,
        None if ask => ask_grace()?,
        None => Grace::NONE,
    };
    // A person may answer the questions minutes later: the rotation, and its grace period,
    // count from the answer, not from when the command started.
    let now = match args.yes {
        true => ctx.now,
        false => crate::environment::clock::now()?,
    };
    let stops_at = token::old_token_stops_at(&old, grace, now);
    let replacing = Replacing {
        old_id: &old.id,
        stops_at,
    };
    let mut rng = UnwrapErr(SysRng);
    let rotated = token::rotate(&*store, &old.id, grace, now, &mut rng, |created| {
        deliver(created, args.json, Some(&replacing))
    })?;
    let created = &rotated.created;
    let replacement = format!(
        "Its replacement is token {} for project {} ({}).",
        created.token.id(),
        created.project,
        time::expiry(ctx.zone, created.expires_at)
    );
    match &rotated.old {
        OldToken::Stopped => ui::status(&format!(
            "Rotated token {}: it no longer works. {replacement}",
            rotated.old_id
        )),
        OldToken::StopsAt(at) => ui::status(&format!(
            "Rotated token {}: it keeps working until {}, then stops. {replacement}",
            rotated.old_id,
            time::for_people(ctx.zone, *at)
        )),
        OldToken::RevokedMeanwhile => {
            ui::status(&format!("Rotated token {}. {replacement}", rotated.old_id));
            ui::warning(&format!(
                "token {} was revoked or rotated by another command meanwhile: autheona log --token {} says which",
                rotated.old_id, rotated.old_id
            ));
        }
        OldToken::RotatedMeanwhile(end) => {
            ui::status(&format!("Rotated token {}. {replacement}", rotated.old_id));
            ui::warning(&format!(
                "token {} was rotated by another command meanwhile, into token {}: it stops at {}, as that rotation set",
                rotated.old_id,
                end.replaced_by,
                time::for_people(ctx.zone, end.stops_at)
            ));
        }
    }
    shown_once();
    Ok(Outcome::Success)
}

/// A choice of grace period as offered: `At once`, `In 1 hour`, `In 24 hours`, `In 7 days`
/// (a day is said in hours, as people say "within 24 hours").
fn grace_label(grace: Grace) -> String {
    let minutes = grace.length().num_minutes();
    let (count, unit) = match minutes {
        0 => return "At once".to_owned(),
        m if m % 1440 == 0 && m > 1440 => (m / 1440, "day"),
        m if m % 60 == 0 => (m / 60, "hour"),
        m => (m, "minute"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("In {count} {unit}{plural}")
}

fn ask_grace() -> Result<Grace> {
    let labels: Vec<String> = Grace::CHOICES.iter().map(|&g| grace_label(g)).collect();
    let chosen = prompt::select("When should the old token stop working?", &labels, 0)?;
    Ok(Grace::CHOICES[chosen])
}

#[derive(Serialize)]
struct PruneJson {
    dry_run: bool,
    revoked: u64,
    tokens: Vec<TokenJson>,
}

fn prune(ctx: &Context, args: &TokenPruneArgs) -> Result<Outcome> {
    let filter = Filter {
        expired: args.expired,
        unused_for: args.unused_for,
        ..Filter::default()
    };
    let Some(store) = ctx.open_if_exists()? else {
        return report_pruned(args, &[], 0);
    };
    if args.dry_run {
        return dry_run(ctx, args, &*store, &filter);
    }
    // In memory: they are revoked by id, those still selected when the person agrees. The
    // list leaves out tokens whose grace period is over; `revoke_all` removes them.
    let tokens = token::list(&*store, args.project.as_deref(), &filter, ctx.now)?;
    if tokens.is_empty() {
        // With nothing to ask, a prune still removes them: it is a prune that ran.
        token::remove_stopped(&*store, ctx.now)?;
        return report_pruned(args, &tokens, 0);
    }
    let count = tokens.len();
    let question = if count == 1 {
        "Revoke 1 token? It stops working at once and cannot be recovered.".to_owned()
    } else {
        format!("Revoke {count} tokens? They stop working at once and cannot be recovered.")
    };
    let hint = "pass --yes to prune without asking, or --dry-run to only list them";
    can_confirm(args.yes, &question, hint)?;
    // What would go, before the question: the person answering sees what they agree to. With
    // --json, stdout is for the JSON; a person at a prompt sees the list on stderr.
    let listed = if !args.json {
        print_table(Stream::Stdout, ctx.zone, &tokens, args.project.is_none())
    } else if !args.yes {
        print_table(Stream::Stderr, ctx.zone, &tokens, args.project.is_none())
    } else {
        Ok(())
    };
    if let Err(err) = &listed {
        // Shown to no one (stdout closed), it cannot be agreed to. With --yes or --dry-run the
        // list is only a record, and its failure is reported at the end.
        if !args.yes {
            return Err(Error::environment(format!(
                "could not show the tokens to prune ({}); nothing was revoked",
                err.message()
            ))
            .with_hint("run it again with a working stdout, or with --json"));
        }
    }
    confirm(args.yes, &question, hint)?;
    let revoked = token::revoke_all(&*store, &tokens, args.project.as_deref(), &filter, ctx.now)?;
    report_pruned(args, &tokens, revoked)?;
    // A closed stdout ends quietly; any other failure to write the list is an error.
    listed.map(|()| Outcome::Success)
}

/// A prune's dry run: what would go, streamed from the store like `token list`, and how many.
fn dry_run(
    ctx: &Context,
    args: &TokenPruneArgs,
    store: &dyn Store,
    filter: &Filter,
) -> Result<Outcome> {
    let project = args.project.as_deref();
    // The status line first, once the first pass has counted them.
    let mut status = |found| pruned_status(true, found, 0);
    if args.json {
        #[derive(Serialize)]
        struct DryRun<'r> {
            dry_run: bool,
            revoked: u64,
            tokens: &'r Rows<TokenJson>,
        }
        print_json_listing(
            |each| counted_json_tokens(store, project, filter, ctx.now, &mut status, each),
            |rows| {
                ui::print_json_streamed(&DryRun {
                    dry_run: true,
                    revoked: 0,
                    tokens: rows,
                })
            },
        )?;
    } else {
        stream_table(ctx, store, project, filter, Stream::Stdout, &mut status)?;
    }
    Ok(Outcome::Success)
}

/// The end of a prune: one status line on stderr (first: it must reach the person even when
/// stdout is gone), and the JSON on stdout.
fn report_pruned(args: &TokenPruneArgs, tokens: &[TokenSummary], revoked: u64) -> Result<Outcome> {
    pruned_status(args.dry_run, tokens.len() as u64, revoked);
    if args.json {
        ui::print_json(&PruneJson {
            dry_run: args.dry_run,
            revoked,
            tokens: tokens.iter().cloned().map(TokenJson::from).collect(),
        })?;
    }
    Ok(Outcome::Success)
}

/// The one status line that ends a prune.
fn pruned_status(dry_run: bool, found: u64, revoked: u64) {
    let plural = |n: u64| if n == 1 { "token" } else { "tokens" };
    let unchanged = found - revoked;
    ui::status(&if found == 0 {
        "No tokens to prune.".to_owned()
    } else if dry_run {
        format!(
            "Dry run: {found} {} would be revoked; nothing was changed.",
            plural(found)
        )
    } else if unchanged > 0 {
        format!(
            "Revoked {revoked} {}; {unchanged} listed {} used or revoked meanwhile, and left alone.",
            plural(revoked),
            if unchanged == 1 { "was" } else { "were" }
        )
    } else {
        format!("Revoked {revoked} {}.", plural(revoked))
    });
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};

    use super::*;
    use crate::ops::token::Status;

    /// The first pass of a table measures what the second prints.
    #[test]
    fn widths_are_those_of_the_cells() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let token = |description: Option<&str>, expires_soon, last_used_at| TokenSummary {
            id: "3kTMd9aPq0Zx".into(),
            project: "demo\u{1b}[31m".into(),
            description: description.map(str::to_owned),
            created_at: at(1_764_579_515),
            expires_at: Some(at(253_402_300_799)),
            last_used_at,
            status: Status::Active,
            expires_soon,
            ends: None,
        };
        let replaced = |stops_at: i64| TokenSummary {
            ends: Some(token::ScheduledEnd {
                replaced_by: "Zx0qPa9dMTk3".into(),
                stops_at: at(stops_at),
            }),
            ..token(Some("old"), Some(TimeDelta::hours(2)), None)
        };
        for zone in [Zone::Utc, Zone::Local] {
            for all_projects in [true, false] {
                let columns = Columns { zone, all_projects };
                for t in [
                    token(None, None, None),
                    token(
                        Some("日本語 and \u{202e}"),
                        Some(TimeDelta::hours(3)),
                        Some(at(0)),
                    ),
                    token(Some(""), Some(TimeDelta::days(6)), Some(at(1))),
                    replaced(1_764_583_115),
                    replaced(253_402_300_799),
                ] {
                    let cells: Vec<usize> = columns
                        .cells(&t)
                        .iter()
                        .map(|c| table::cell_width(c))
                        .collect();
                    assert_eq!(columns.widths(&t), cells, "{t:?}");
                }
            }
        }
    }
}
