//! `autheona token create | list | revoke`.

use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use serde::Serialize;

use super::{Context, Outcome, confirm};
use crate::cli::{ExpiresArg, TokenCommand, TokenCreateArgs, TokenListArgs, TokenRevokeArgs};
use crate::error::{Error, Result};
use crate::ops::project;
use crate::ops::token::{
    self, CreatedToken, Expiration, TokenRequest, TokenSummary, validate_description,
};
use crate::store::Store;
use crate::ui::{self, prompt, table, time};

pub fn run(ctx: &Context, command: TokenCommand) -> Result<Outcome> {
    match command {
        TokenCommand::Create(args) => create(ctx, &args),
        TokenCommand::List(args) => list(ctx, &args),
        TokenCommand::Revoke(args) => revoke(ctx, &args),
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
    let interactive = ui::is_interactive();
    if !interactive {
        if args.project.is_none() {
            return Err(missing("--project", "project"));
        }
        if args.expires.is_none() {
            return Err(missing("--expires", "expiration"));
        }
    }
    let store = ctx.open()?;
    let project = match &args.project {
        Some(name) => {
            // Before any prompt: a person should not answer questions for a doomed request.
            project::require(&store, name)?;
            name.clone()
        }
        None => ask_project(&store)?,
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
    let created = token::create(&store, &request, ctx.now, &mut rng, |created| {
        deliver(created, args.json)
    })?;
    let expires = time::expiry(created.expires_at);
    ui::status(&format!(
        "Created token {} for project {} ({expires}).",
        created.token.id(),
        created.project
    ));
    ui::status(
        "This is the only time the token is shown: store it now, e.g. in a secret manager or an \
         environment variable, and never commit it.",
    );
    Ok(Outcome::Success)
}

fn ask_project(store: &Store) -> Result<String> {
    let mut names: Vec<String> = project::list(store)?.into_iter().map(|p| p.name).collect();
    if names.is_empty() {
        return Err(Error::refused("there are no projects yet")
            .with_hint("create one first: autheona project create NAME"));
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
}

/// Shows the new token, once, on stdout. Any failure here means the token is not kept.
fn deliver(created: &CreatedToken, json: bool) -> Result<()> {
    let token = created.token.reveal();
    let written = if json {
        ui::print_json(&CreatedJson {
            id: created.token.id().as_str(),
            project: &created.project,
            token: token.expose(),
            description: created.description.as_deref(),
            created_at: time::rfc3339(created.created_at),
            expires_at: created.expires_at.map(time::rfc3339),
        })
    } else {
        ui::print_line(token.expose())
    };
    written.map_err(|err| {
        Error::environment(format!(
            "could not write the token to stdout ({}); it was not kept",
            err.message()
        ))
        .with_hint("nothing was created; run the command again with a working stdout")
    })
}

#[derive(Serialize)]
struct TokenJson<'a> {
    id: &'a str,
    project: &'a str,
    description: Option<&'a str>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    status: &'static str,
}

impl<'a> From<&'a TokenSummary> for TokenJson<'a> {
    fn from(t: &'a TokenSummary) -> Self {
        TokenJson {
            id: &t.id,
            project: &t.project,
            description: t.description.as_deref(),
            created_at: time::rfc3339(t.created_at),
            expires_at: t.expires_at.map(time::rfc3339),
            last_used_at: t.last_used_at.map(time::rfc3339),
            status: t.status.as_str(),
        }
    }
}

fn list(ctx: &Context, args: &TokenListArgs) -> Result<Outcome> {
    let tokens = match ctx.open_if_exists()? {
        Some(store) => token::list(&store, args.project.as_deref(), ctx.now)?,
        None => Vec::new(),
    };
    if args.json {
        let json: Vec<TokenJson<'_>> = tokens.iter().map(TokenJson::from).collect();
        return ui::print_json(&json).map(|()| Outcome::Success);
    }
    if tokens.is_empty() {
        ui::status("No tokens.");
        return Ok(Outcome::Success);
    }
    let all_projects = args.project.is_none();
    let mut header = vec!["ID"];
    if all_projects {
        header.push("Project");
    }
    header.extend(["Description", "Created", "Expires", "Last used", "Status"]);
    let rows = tokens
        .into_iter()
        .map(|t| {
            let mut cells = vec![t.id];
            if all_projects {
                cells.push(t.project);
            }
            cells.extend([
                t.description.unwrap_or_default(),
                time::for_people(t.created_at),
                time::for_people_or_never(t.expires_at),
                time::for_people_or_never(t.last_used_at),
                t.status.as_str().to_owned(),
            ]);
            cells
        })
        .collect();
    table::print(&header, rows)?;
    Ok(Outcome::Success)
}

fn revoke(ctx: &Context, args: &TokenRevokeArgs) -> Result<Outcome> {
    let store = ctx.open()?;
    let found = token::find(&store, &args.token_id, ctx.now)?;
    let description = found
        .description
        .as_deref()
        .map_or_else(String::new, |d| format!(", \"{d}\""));
    confirm(
        args.yes,
        &format!(
            "Revoke token {} (project {}{description}, created {})? It stops working at once and cannot be recovered.",
            found.id,
            found.project,
            time::for_people(found.created_at)
        ),
        "pass --yes to revoke without asking",
    )?;
    token::revoke(&store, &found.id)?;
    ui::status(&format!("Revoked token {}.", found.id));
    Ok(Outcome::Success)
}
