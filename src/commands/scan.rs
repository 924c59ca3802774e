//! `autheona scan`: finds tokens in files, directories or stdin before they reach version
//! control.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use serde::Serialize;

use super::{Context, Outcome};
use crate::cli::ScanArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::ops::scan::{self, DatabaseStatus, Finding, IgnoreFiles, Scan, Source};
use crate::store::Store;
use crate::{text, ui};

/// How stdin is named on the command line, and in the output.
const STDIN_ARG: &str = "-";
const STDIN_SHOWN: &str = "<stdin>";

pub fn run(ctx: &Context, args: &ScanArgs) -> Result<Outcome> {
    let sources = sources(&args.paths, &args.names)?;
    if sources.contains(&Source::Stdin) && std::io::stdin().is_terminal() {
        // Nobody means to type a file in; it would look like a hang.
        return Err(
            Error::usage("- reads stdin, and stdin is a terminal").with_hint(
                "pipe text into it, e.g. git diff --cached | autheona scan -, or name files",
            ),
        );
    }
    let ignore_files = if args.no_ignore {
        IgnoreFiles::Disregard
    } else {
        IgnoreFiles::Respect
    };
    let store = open_store(ctx);
    let current_dir = std::env::current_dir().ok();
    let result = scan::scan(
        &sources,
        ignore_files,
        current_dir.as_deref(),
        &mut std::io::stdin().lock(),
        store.as_deref(),
        ctx.now,
    );
    render(&result, args.json)
}

/// The sources to scan: `paths`, where `-` is stdin, then the `names` given after `--`, where
/// `-` is a file so named (a repository can hold one).
fn sources(paths: &[PathBuf], names: &[PathBuf]) -> Result<Vec<Source>> {
    let is_stdin = |path: &PathBuf| path.as_os_str() == STDIN_ARG;
    if paths.iter().filter(|path| is_stdin(path)).count() > 1 {
        return Err(Error::usage(
            "- (stdin) is given more than once; stdin can be read only once",
        ));
    }
    Ok(paths
        .iter()
        .map(|path| {
            if is_stdin(path) {
                Source::Stdin
            } else {
                Source::Path(path.clone())
            }
        })
        .chain(names.iter().cloned().map(Source::Path))
        .collect())
}

/// The database, to tell each token's status. Scanning is often done where there is no
/// database, so a missing default one goes unmentioned; one named with --db or AUTHEONA_DB
/// that is missing, or one that cannot be opened, is worth a warning, and the scan goes on.
fn open_store(ctx: &Context) -> Option<Box<dyn Store>> {
    match ctx.open_quietly() {
        Ok(Some(store)) => Some(store),
        Ok(None) => {
            if let Some(location) = ctx.db_named() {
                ui::warning(&format!(
                    "no database at {}; token statuses are not shown",
                    std::path::Path::new(location).display()
                ));
            }
            None
        }
        Err(err) => {
            ui::warning(&format!("token statuses are not shown: {}", err.message()));
            None
        }
    }
}

fn render(result: &Scan, json: bool) -> Result<Outcome> {
    for warning in &result.warnings {
        ui::warning(&format!("ignore rules: {warning}"));
    }
    if let Some(err) = &result.status_error {
        ui::warning(&format!("token statuses are not shown: {}", err.message()));
    }
    let unchecked = result
        .findings
        .iter()
        .filter(|f| f.status == Some(DatabaseStatus::Unchecked))
        .count();
    if unchecked > 0 {
        ui::warning(&format!(
            "{} with an id the database holds left unchecked: a scan checks a limited number of \
             secrets; autheona verify checks one",
            count(unchecked, "token")
        ));
    }
    let findings = &result.findings;
    let printed = if json {
        let json: Vec<FindingJson<'_>> = findings.iter().map(FindingJson::from).collect();
        ui::print_json(&json)
    } else if findings.is_empty() {
        Ok(())
    } else {
        let mut out = String::new();
        for finding in findings {
            out.push_str(&line(finding));
            out.push('\n');
        }
        ui::print_bytes(out.as_bytes())
    };
    // Whoever closed stdout still gets the verdict from the exit code.
    match printed {
        Err(err) if err.kind() != ErrorKind::BrokenPipe => return Err(err),
        _ => {}
    }
    for unreadable in &result.unreadable {
        ui::report(&Error::environment(format!(
            "cannot read {}: {}",
            shown(&unreadable.source),
            unreadable.reason
        )));
    }
    if !findings.is_empty() {
        ui::status(&summary(findings));
    }
    Ok(if !result.unreadable.is_empty() {
        Outcome::Incomplete
    } else if !findings.is_empty() {
        Outcome::TokensFound
    } else {
        Outcome::Success
    })
}

/// A source as printed, in text and in JSON alike. A path may hold anything, escape sequences
/// or even a token, so it is redacted and escaped: bytes that are not UTF-8 show as `\xNN`, a
/// backslash as `\\`, a control character as `\u{1b}`. In JSON too, where an escape such as
/// `\u001b` would decode back to the raw ESC for whoever prints the value.
fn shown(source: &Source) -> String {
    match source {
        Source::Stdin => STDIN_SHOWN.to_owned(),
        Source::Path(path) => {
            let name = text::escape_name_bytes(path.as_os_str().as_bytes());
            ui::safe(&text::redact_tokens(&name)).into_owned()
        }
    }
}

/// `path:line:column: token ID`, and the status when there is a database.
fn line(finding: &Finding) -> String {
    let status = match &finding.status {
        None => String::new(),
        Some(DatabaseStatus::Active {
            project,
            replaced_by: None,
        }) => format!(" (active, project {})", ui::safe(project)),
        Some(DatabaseStatus::Active {
            project,
            replaced_by: Some(by),
        }) => format!(
            " (active, project {}, replaced by token {})",
            ui::safe(project),
            ui::safe(by)
        ),
        Some(DatabaseStatus::Expired { project }) => {
            format!(" (expired, project {})", ui::safe(project))
        }
        Some(DatabaseStatus::Unknown) => " (unknown)".to_owned(),
        Some(DatabaseStatus::Unchecked) => " (unchecked)".to_owned(),
    };
    format!(
        "{}:{}:{}: token {}{status}",
        shown(&finding.source),
        finding.position.line,
        finding.position.column,
        finding.id
    )
}

/// `Found 3 tokens in 2 files. Remove them, ...`: the one line for people, on stderr.
fn summary(findings: &[Finding]) -> String {
    let mut sources: Vec<&Source> = findings.iter().map(|f| &f.source).collect();
    sources.dedup();
    let stdin = sources.contains(&&Source::Stdin);
    let files = sources.len() - usize::from(stdin);
    let place = match (files, stdin) {
        (0, _) => "stdin".to_owned(),
        (n, false) => count(n, "file"),
        (n, true) => format!("{} and stdin", count(n, "file")),
    };
    // A token that was in a file may have leaked: replace it, as the product advises. One
    // replaced already, still working in its grace period, is ended at once instead: its
    // replacement cannot be rotated into place again.
    let replaced = findings.iter().any(|finding| {
        matches!(
            finding.status,
            Some(DatabaseStatus::Active {
                replaced_by: Some(_),
                ..
            })
        )
    });
    let advice = match (findings.len(), replaced) {
        (1, true) => {
            "Remove it, and as it was replaced but still works, end its grace period now: \
             autheona token revoke ID"
        }
        (1, false) => "Remove it, and if it is active, replace it: autheona token rotate ID",
        (_, false) => "Remove them, and replace any that are active: autheona token rotate ID",
        (_, true) => {
            "Remove them, and replace any that are active: autheona token rotate ID (one \
             replaced already, in its grace period: autheona token revoke ID)"
        }
    };
    format!(
        "Found {} in {place}. {advice}",
        count(findings.len(), "token")
    )
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[derive(Serialize)]
struct FindingJson<'a> {
    path: String,
    line: u64,
    column: u64,
    id: &'a str,
    /// `active`, `expired`, `unknown` or `unchecked`; null without a database.
    status: Option<&'static str>,
    /// Known for active and expired tokens.
    project: Option<&'a str>,
    /// The token that replaced an active one still in its grace period (`token list`'s
    /// field of that name): it should be revoked, not rotated.
    replaced_by: Option<&'a str>,
}

impl<'a> From<&'a Finding> for FindingJson<'a> {
    fn from(finding: &'a Finding) -> Self {
        let (status, project, replaced_by) = match &finding.status {
            None => (None, None, None),
            Some(DatabaseStatus::Active {
                project,
                replaced_by,
            }) => (
                Some("active"),
                Some(project.as_str()),
                replaced_by.as_deref(),
            ),
            Some(DatabaseStatus::Expired { project }) => {
                (Some("expired"), Some(project.as_str()), None)
            }
            Some(DatabaseStatus::Unknown) => (Some("unknown"), None, None),
            Some(DatabaseStatus::Unchecked) => (Some("unchecked"), None, None),
        };
        FindingJson {
            path: shown(&finding.source),
            line: finding.position.line,
            column: finding.position.column,
            id: finding.id.as_str(),
            status,
            project,
            replaced_by,
        }
    }
}
