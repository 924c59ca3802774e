//! `autheona project create | list | delete`.

use serde::Serialize;

use super::{Context, Outcome, confirm, print_json_listing};
use crate::cli::{ProjectCommand, ProjectCreateArgs, ProjectDeleteArgs, ProjectListArgs};
use crate::error::Result;
use crate::ops::project;
use crate::ui;
use crate::ui::table;
use crate::ui::time::{self, Rfc3339};

pub fn run(ctx: &Context, command: ProjectCommand) -> Result<Outcome> {
    match command {
        ProjectCommand::Create(args) => create(ctx, &args),
        ProjectCommand::List(args) => list(ctx, &args),
        ProjectCommand::Delete(args) => delete(ctx, &args),
    }
}

fn create(ctx: &Context, args: &ProjectCreateArgs) -> Result<Outcome> {
    // Validate before touching the file system, so a bad name creates no database.
    project::validate_new_name(&args.name)?;
    let store = ctx.create()?;
    let created = project::create(&*store, &args.name, ctx.now)?;
    ui::status(&format!(
        "Created project {}. Next: autheona token create --project {}",
        created.name, created.name
    ));
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct ProjectJson {
    name: String,
    created_at: Rfc3339,
    tokens: u64,
}

/// Streams the projects from the store to stdout: memory stays flat however many there are.
fn list(ctx: &Context, args: &ProjectListArgs) -> Result<Outcome> {
    let store = ctx.open_if_exists()?;
    if args.json {
        print_json_listing(
            |each| match &store {
                Some(store) => project::for_each(
                    &**store,
                    ctx.now,
                    &mut [&mut |p| {
                        each(ProjectJson {
                            name: p.name,
                            created_at: Rfc3339(p.created_at),
                            tokens: p.tokens,
                        })
                    }],
                ),
                None => Ok(()),
            },
            ui::print_json_streamed,
        )?;
        return Ok(Outcome::Success);
    }
    // The table holds the projects (not their tokens) in memory: there are few, and a second
    // pass would count every project's tokens again.
    let projects = match &store {
        Some(store) => project::list(&**store, ctx.now)?,
        None => Vec::new(),
    };
    if projects.is_empty() {
        ui::status("No projects.");
        return Ok(Outcome::Success);
    }
    let rows = projects
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                time::for_people(ctx.zone, p.created_at),
                p.tokens.to_string(),
            ]
        })
        .collect();
    table::print(&["Name", "Created", "Tokens"], rows, None)?;
    Ok(Outcome::Success)
}

fn delete(ctx: &Context, args: &ProjectDeleteArgs) -> Result<Outcome> {
    let store = ctx.open()?;
    let tokens = project::token_count(&*store, &args.name, ctx.now)?;
    confirm(
        args.yes,
        &format!(
            "Delete project {} and revoke its {}?",
            args.name,
            plural(tokens, "token")
        ),
        "pass --yes to delete without asking",
    )?;
    let revoked = project::delete(&*store, &args.name, ctx.now)?;
    ui::status(&format!(
        "Deleted project {} and revoked {}.",
        args.name,
        plural(revoked, "token")
    ));
    Ok(Outcome::Success)
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
