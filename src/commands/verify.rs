//! `autheona verify`: the check shell scripts rely on.

use std::io::{BufRead, IsTerminal, Read};

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::{Context, Outcome};
use crate::cli::VerifyArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::ops::verify::{self, Reason, Verification, VerifiedToken};
use crate::secret::Secret;
use crate::token::{self, Token};
use crate::ui;
use crate::ui::time::{self, Zone};

/// Environment variable that carries the token to verify.
pub const TOKEN_VAR: &str = "AUTHEONA_TOKEN";

/// At most this much of stdin is read: far more than a token, and a bounded cost for any input.
const MAX_INPUT: u64 = 4096;

pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<Outcome> {
    // A mistyped option lands here too; it cannot be a token, which starts with `aut_`
    // (errors redact anything shaped like a token all the same).
    if let Some(option) = args.token_argument.iter().find(|arg| arg.starts_with('-')) {
        return Err(Error::usage(format!("unexpected option '{option}'"))
            .with_hint("the options are --project, --json and --quiet: autheona verify --help"));
    }
    if !args.token_argument.is_empty() {
        return Err(Error::usage(
            "verify does not take the token as an argument: other users could see it in the process list",
        )
        .with_hint("pass it on stdin (printf '%s\\n' \"$TOKEN\" | autheona verify) or in AUTHEONA_TOKEN"));
    }
    let input = read_token()?;
    let verification = match Token::parse(token::given(input.expose())) {
        // Shape and checksum are checked before the database is opened.
        Err(_) => Verification::invalid(Reason::Malformed),
        Ok(token) => {
            let store = ctx.open()?;
            verify::verify(&*store, &token, args.project.as_deref(), ctx.now)?
        }
    };
    render(&verification, args, ctx.zone, ctx.now)
}

/// The token from `AUTHEONA_TOKEN`, else the first line of stdin (asked for without echo at a
/// terminal). Never from the command line, where other users could see it.
fn read_token() -> Result<Secret> {
    if let Some(value) = std::env::var_os(TOKEN_VAR) {
        // Not UTF-8 cannot be a token; an empty string parses as malformed.
        return Ok(Secret::new(value.into_string().unwrap_or_default()));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        if std::io::stderr().is_terminal() {
            return ui::prompt::secret("Token");
        }
        // Typing it here would echo it, with no prompt to say what is wanted.
        return Err(
            Error::usage("no token given: stdin is a terminal and there is no prompt")
                .with_hint("pipe the token on stdin or set AUTHEONA_TOKEN"),
        );
    }
    let mut line = Zeroizing::new(Vec::new());
    stdin
        .lock()
        .take(MAX_INPUT)
        .read_until(b'\n', &mut line)
        .map_err(|err| Error::environment(format!("cannot read the token from stdin: {err}")))?;
    let complete = line.ends_with(b"\n") || (line.len() as u64) < MAX_INPUT;
    if !complete {
        return Ok(Secret::new(String::new()));
    }
    Ok(Secret::new(
        String::from_utf8(std::mem::take(&mut *line)).unwrap_or_default(),
    ))
}

fn render(
    verification: &Verification,
    args: &VerifyArgs,
    zone: Zone,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let (reason, token) = match verification {
        Verification::Valid {
            token,
            unrecorded,
            expires_soon,
        } => {
            if let Some(err) = unrecorded {
                ui::warning(&format!(
                    "the token is valid, but its last use was not recorded: {}",
                    err.message()
                ));
            }
            // On stderr even with --quiet: a script's log should show it before the token breaks.
            if let Some(end) = &token.ends {
                ui::warning(&format!(
                    "token {} was replaced by token {} and stops working at {}, in {}: switch to the new token",
                    token.id,
                    end.replaced_by,
                    time::for_people(zone, end.stops_at),
                    time::span(end.stops_at - now)
                ));
            } else if let Some(left) = expires_soon {
                ui::warning(&format!(
                    "token {} {}, in {}; replace it in time: autheona token rotate {}",
                    token.id,
                    time::expiry(zone, token.expires_at),
                    time::span(*left),
                    token.id
                ));
            }
            (None, Some(token))
        }
        Verification::Invalid { reason, token } => (Some(*reason), token.as_ref()),
    };
    let printed = if args.json {
        ui::print_json(&ui::json::VerificationJson::new(reason, token))
    } else if args.quiet {
        Ok(())
    } else {
        ui::print_line(&match (reason, token) {
            (None, Some(token)) => valid_line(zone, token),
            (Some(reason), _) => format!("invalid: {}", reason.as_str()),
            (None, None) => unreachable!("a valid verification always has its token"),
        })
    };
    // Whoever closed stdout still gets the verdict from the exit code.
    match printed {
        Err(err) if err.kind() != ErrorKind::BrokenPipe => return Err(err),
        _ => {}
    }
    Ok(match reason {
        None => Outcome::Success,
        Some(_) => Outcome::NotValid,
    })
}

fn valid_line(zone: Zone, token: &VerifiedToken) -> String {
    let expiry = time::expiry(zone, token.expires_at);
    format!(
        "valid: token {} (project {}, {expiry})",
        token.id,
        ui::safe(&token.project)
    )
}
