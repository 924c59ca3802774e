//! The command surface. Doc comments here are the `--help` text, the man pages and the
//! completions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum, ValueHint};
use clap_complete::engine::ArgValueCandidates;

use crate::complete::{project_names, token_ids};
use crate::ops::token::Grace;

mod lazy;
pub use lazy::Lazy;

/// Manage projects and their access tokens, in an SQLite file or a PostgreSQL database.
///
/// A token is shown once, when it is created; only a hash of its secret is kept. Tokens can be
/// listed (never their value), verified by scripts or by a server, rotated with a grace
/// period, and revoked, immediately and for good. Every change is recorded in an audit log.
#[derive(Debug, Parser)]
#[command(
    name = "autheona",
    version,
    propagate_version = true,
    after_help = root_help(),
    // A missing command is a usage error naming the commands (MissingSubcommand), not the
    // whole help: see ui::usage.
    arg_required_else_help = false,
)]
pub struct Cli {
    /// Database file or postgres:// URL (no password in it), instead of AUTHEONA_DB or the
    /// default ~/.local/share/autheona/autheona.db
    // Listed after each command's own options (deferred, they are defined after it).
    #[arg(long, global = true, value_name = "PATH|URL", display_order = 900)]
    pub db: Option<OsString>,

    #[command(subcommand)]
    pub command: Command,
}

/// Exit codes, for `--help` and the man pages.
pub const EXIT_CODES: [(u8, &str); 5] = [
    (
        0,
        "success; for verify, the token is valid; for scan, none found",
    ),
    (
        1,
        "not valid (verify), tokens found (scan), refused (unknown or taken name or id, declined, a copy's destination not empty)",
    ),
    (
        2,
        "usage: a bad flag or value, or a missing one with no terminal to ask",
    ),
    (
        3,
        "environment: database missing, not autheona's, corrupt, newer, locked, unreachable; scan: unreadable path",
    ),
    (
        130,
        "interrupted (Ctrl-C) at a prompt, or log --follow interrupted",
    ),
];

/// Environment variables autheona reads, for `--help` and the man pages.
pub const ENVIRONMENT: [(&str, &str); 7] = [
    (
        "AUTHEONA_DB",
        "the database file or postgres:// URL (which may hold a password here), instead of the \
         default; --db wins; empty counts as unset",
    ),
    (
        "PG*",
        "what a postgres:// URL leaves out, as for psql: PGHOST, PGPORT, PGUSER, PGDATABASE, \
         PGPASSWORD, PGPASSFILE, PGSSLMODE, PGSSLROOTCERT, PGCONNECT_TIMEOUT, PGAPPNAME",
    ),
    (
        "AUTHEONA_PROJECT",
        "the default --project for token create; empty counts as unset",
    ),
    (
        "AUTHEONA_TOKEN",
        "the token for verify, instead of stdin's first line, even when empty",
    ),
    (
        "NO_COLOR",
        "when set and not empty, no colour in messages and prompts",
    ),
    (
        "TZ",
        "the time zone times are shown in and log --since dates are read in; one autheona \
         cannot read is ignored with a warning",
    ),
    (
        "COMPLETE",
        "set by the completion scripts; not for direct use",
    ),
];

/// Where the database lives, for the man pages.
pub const FILES: &str = "The database is $XDG_DATA_HOME/autheona/autheona.db, or \
~/.local/share/autheona/autheona.db when XDG_DATA_HOME is not set, unless --db or AUTHEONA_DB \
names another file, or a PostgreSQL database by a postgres:// URL. project create makes it, \
with mode 0600 in a directory of mode 0700 (in PostgreSQL: the schema autheona).";

const ROOT_EXAMPLES: &str = "\
Examples:
  autheona project create demo
  TOKEN=$(autheona token create -p demo -e 90 -d 'CI runner')
  printf '%s\\n' \"$TOKEN\" | autheona verify --project demo
  autheona token list --project demo
  autheona token revoke 3kTMd9aPq0Zx";

/// The root command's closing help: examples, exit codes, environment.
fn root_help() -> String {
    let mut help = format!("{ROOT_EXAMPLES}\n\nExit codes:\n");
    for (code, meaning) in EXIT_CODES {
        help.push_str(&format!("  {code:<3}  {meaning}\n"));
    }
    help.push_str("\nEnvironment:\n");
    for (name, meaning) in ENVIRONMENT {
        help.push_str(&format!("  {name:<16}  {meaning}\n"));
    }
    help.pop();
    help
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list and delete projects
    #[command(subcommand, arg_required_else_help = false)]
    Project(Lazy<ProjectCommand>),
    /// Create, list, revoke, rotate and prune access tokens
    #[command(subcommand, arg_required_else_help = false)]
    Token(Lazy<TokenCommand>),
    /// Check a token read from AUTHEONA_TOKEN or stdin (never from the command line)
    #[command(after_help = VERIFY_HELP)]
    Verify(Lazy<VerifyArgs>),
    /// Find tokens in files, directories or stdin, so they stay out of version control
    #[command(after_help = SCAN_HELP)]
    Scan(Lazy<ScanArgs>),
    /// Show the audit log: who created, rotated, revoked and pruned which token, and when
    #[command(after_help = LOG_HELP)]
    Log(Lazy<LogArgs>),
    /// Copy a whole store (projects, tokens and the audit log) to another file or PostgreSQL
    /// database
    #[command(subcommand, arg_required_else_help = false)]
    Store(Lazy<StoreCommand>),
    /// Answer APIs and reverse proxies that ask whether a request's bearer token is valid
    #[command(after_help = SERVE_HELP)]
    Serve(Lazy<ServeArgs>),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(Lazy<CompletionsArgs>),
}

const LOG_HELP: &str = "\
Every change to a project or a token is recorded in the same transaction as the change, with
the operating-system user, the host and, on PostgreSQL, the database role that made it.
Verifications are not recorded. Events cannot be changed or deleted.

Newest first. Filters combine. WHEN is a date (2026-12-01, midnight local time), a date and
time (2026-12-01 15:00, or RFC 3339 such as 2026-12-01T15:00:00Z), or a time ago (30m, 12h,
7d). --follow prints the events committed from then on, oldest first, until interrupted; with
--since, those since then first. With --json, --follow prints one JSON object per line.

Actions: project.create, project.delete, token.create, token.revoke, token.rotate, token.stop,
token.prune, store.copy.

Examples:
  autheona log --token 3kTMd9aPq0Zx
  autheona log --project billing --action token.revoke --since 7d
  autheona log --follow --json";

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the events of this project (a deleted one's too)
    #[arg(short, long, value_name = "NAME", add = ArgValueCandidates::new(project_names))]
    pub project: Option<String>,
    /// Only the events of this token
    #[arg(long, value_name = "ID", add = ArgValueCandidates::new(token_ids))]
    pub token: Option<String>,
    /// Only events at or after WHEN: a date, a date and time, or a time ago (7d, 12h, 30m)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events of this action
    #[arg(long, value_name = "ACTION")]
    pub action: Option<ActionArg>,
    /// Print a JSON array of {at, action, project, token_id, description, detail, actor}
    #[arg(long)]
    pub json: bool,
    /// Keep printing events as they are committed, until interrupted
    #[arg(short, long)]
    pub follow: bool,
}

/// The audit log's actions, by their public names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    #[value(name = "project.create")]
    ProjectCreate,
    #[value(name = "project.delete")]
    ProjectDelete,
    #[value(name = "token.create")]
    TokenCreate,
    #[value(name = "token.revoke")]
    TokenRevoke,
    #[value(name = "token.rotate")]
    TokenRotate,
    #[value(name = "token.stop")]
    TokenStop,
    #[value(name = "token.prune")]
    TokenPrune,
    #[value(name = "store.copy")]
    StoreCopy,
}

const COMPLETIONS_HELP: &str = "\
The script asks autheona for completions on each TAB, so project names and token ids complete
from your database.

Examples:
  echo 'source <(autheona completions bash)' >> ~/.bashrc
  echo 'source <(autheona completions zsh)' >> ~/.zshrc
  autheona completions fish > ~/.config/fish/completions/autheona.fish";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    pub shell: Shell,
}

/// Shells with completion support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Elvish => "elvish",
            Shell::Powershell => "powershell",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project
    #[command(after_help = "Example:\n  autheona project create billing-api")]
    Create(Lazy<ProjectCreateArgs>),
    /// List projects with their token counts
    #[command(after_help = "Examples:\n  autheona project list\n  autheona project list --json")]
    List(Lazy<ProjectListArgs>),
    /// Delete a project and revoke all its tokens
    #[command(
        after_help = "Asks for confirmation at a terminal; elsewhere --yes is required.\n\nExample:\n  autheona project delete old-service --yes"
    )]
    Delete(Lazy<ProjectDeleteArgs>),
}

#[derive(Debug, Args)]
pub struct ProjectCreateArgs {
    /// Project name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ProjectListArgs {
    /// Print a JSON array of {name, created_at, tokens}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProjectDeleteArgs {
    /// The project to delete
    #[arg(add = ArgValueCandidates::new(project_names))]
    pub name: String,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, once
    #[command(after_help = TOKEN_CREATE_HELP)]
    Create(Lazy<TokenCreateArgs>),
    /// List tokens: description, dates, status; never their values
    #[command(after_help = TOKEN_LIST_HELP)]
    List(Lazy<TokenListArgs>),
    /// Revoke a token: it stops working at once and cannot be recovered
    #[command(
        after_help = "Asks for confirmation at a terminal; elsewhere --yes is required.\n\nExample:\n  autheona token revoke 3kTMd9aPq0Zx --yes"
    )]
    Revoke(Lazy<TokenRevokeArgs>),
    /// Replace a token with a new one; the old one stops at once, or after a grace period
    #[command(after_help = TOKEN_ROTATE_HELP)]
    Rotate(Lazy<TokenRotateArgs>),
    /// Revoke every expired token, or every token unused for a while
    #[command(after_help = TOKEN_PRUNE_HELP)]
    Prune(Lazy<TokenPruneArgs>),
}

const TOKEN_LIST_HELP: &str = "\
Filters combine: a token is listed when it matches every one given. A token that expires within
7 days shows as expiring in its Status.

Examples:
  autheona token list
  autheona token list --project demo --json
  autheona token list --expiring-within 30
  autheona token list --unused-for 90";

const TOKEN_ROTATE_HELP: &str = "\
The new token has the old one's project and description, and the same lifetime (30, 90 or 365
days, or never) counted from now. It is saved, then printed once, as by token create; only then
does the old token stop, at once or, with --grace, at the end of the grace period (or at its
own expiry, if sooner). Until then both work, so the new value can be deployed first. If the
new token cannot be written to stdout, nothing changes: the old token still works.

A token already rotated with a grace period cannot be rotated again (rotate its replacement).
An expired token can be rotated into a fresh one, without --grace.

Asks for confirmation and then for the grace period at a terminal; elsewhere --yes is required
and the old token stops at once unless --grace is given.

Examples:
  autheona token rotate 3kTMd9aPq0Zx
  TOKEN=$(autheona token rotate 3kTMd9aPq0Zx --grace 24h --yes)";

const TOKEN_PRUNE_HELP: &str = "\
Lists the tokens it selects, asks once to confirm (at a terminal; elsewhere --yes is required),
revokes them all in one transaction and says how many. --dry-run only lists them.

Examples:
  autheona token prune --expired --dry-run
  autheona token prune --project demo --unused-for 90 --yes";

const TOKEN_CREATE_HELP: &str = "\
At a terminal, autheona asks for each value not given. Elsewhere --project and --expires are
required and a missing --description means none.

The token alone goes to stdout, so it can be captured; it is never shown again.

Examples:
  autheona token create
  TOKEN=$(autheona token create -p demo -e 30 -d 'Staging server')";

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// Project the token belongs to [default: AUTHEONA_PROJECT, unless empty]
    // Not clap's `env`: it takes a set but empty variable as an empty name.
    #[arg(
        add = ArgValueCandidates::new(project_names),
        short,
        long,
        value_name = "NAME"
    )]
    pub project: Option<String>,
    /// When the token expires: 30, 90 or 365 days from now, or never
    #[arg(short, long, value_name = "DAYS")]
    pub expires: Option<ExpiresArg>,
    /// What the token is for, e.g. "Production server" (at most 200 characters, one line)
    #[arg(short, long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Print {id, project, token, description, created_at, expires_at} as JSON
    #[arg(long)]
    pub json: bool,
}

/// Token lifetimes offered at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExpiresArg {
    /// 30 days
    #[value(name = "30", alias = "30d")]
    Days30,
    /// 90 days
    #[value(name = "90", alias = "90d")]
    Days90,
    /// 365 days
    #[value(name = "365", alias = "365d")]
    Days365,
    /// Never expires
    Never,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Only this project's tokens
    #[arg(short, long, value_name = "NAME", add = ArgValueCandidates::new(project_names))]
    pub project: Option<String>,
    /// Only tokens that have expired
    #[arg(long, conflicts_with = "expiring_within")]
    pub expired: bool,
    /// Only tokens that still work and expire within DAYS days
    #[arg(long, value_name = "DAYS", value_parser = days())]
    pub expiring_within: Option<u32>,
    /// Only tokens never used
    #[arg(long)]
    pub unused: bool,
    /// Only tokens not used in the last DAYS days (a never-used token counts from its creation)
    #[arg(long, value_name = "DAYS", value_parser = days())]
    pub unused_for: Option<u32>,
    /// Print a JSON array of {id, project, description, created_at, expires_at, last_used_at,
    /// status, stops_at, replaced_by}
    #[arg(long)]
    pub json: bool,
}

/// A number of days for the filters: 1 to 36500.
fn days() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=36_500)
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (the ID column of `autheona token list`)
    #[arg(add = ArgValueCandidates::new(token_ids))]
    pub token_id: String,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct TokenRotateArgs {
    /// The id of the token to replace (the ID column of `autheona token list`)
    #[arg(add = ArgValueCandidates::new(token_ids))]
    pub token_id: String,
    /// Keep the old token working this long: 30m, 1h, 24h, 7d (at most 30d), or 0 [default:
    /// 0, it stops at once]
    #[arg(long, value_name = "DURATION", value_parser = Grace::parse, allow_hyphen_values = true)]
    pub grace: Option<Grace>,
    /// Do not ask for confirmation (nor for the grace period)
    #[arg(short, long)]
    pub yes: bool,
    /// Print {id, project, token, description, created_at, expires_at, replaces,
    /// old_token_stops_at} as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group = ArgGroup::new("selection").required(true).args(["expired", "unused_for"]))]
pub struct TokenPruneArgs {
    /// Only this project's tokens
    #[arg(short, long, value_name = "NAME", add = ArgValueCandidates::new(project_names))]
    pub project: Option<String>,
    /// Revoke the tokens that have expired
    #[arg(long)]
    pub expired: bool,
    /// Revoke the tokens not used in the last DAYS days (a never-used token counts from its
    /// creation)
    #[arg(long, value_name = "DAYS", value_parser = days())]
    pub unused_for: Option<u32>,
    /// Only list what would be revoked; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
    /// Print {dry_run, revoked, tokens} as JSON, tokens as in token list --json
    #[arg(long)]
    pub json: bool,
}

const VERIFY_HELP: &str = "\
The token is read from the AUTHEONA_TOKEN environment variable when it is set, otherwise from
the first line of stdin (at a terminal, autheona asks for it without echoing).

Exit 0 when valid, 1 when not (malformed, unknown, expired, wrong_project), 2 on usage errors,
3 when the database cannot be used. A valid verification records the token's last-used time;
a valid token that expires within 7 days also gets a warning on stderr, to rotate it in time.

Examples:
  printf '%s\\n' \"$TOKEN\" | autheona verify --project demo --quiet
  AUTHEONA_TOKEN=$TOKEN autheona verify --json";

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also require the token to belong to this project
    #[arg(short, long, value_name = "NAME", add = ArgValueCandidates::new(project_names))]
    pub project: Option<String>,
    /// Print {valid, reason, id, project, expires_at} as JSON
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print nothing on stdout; only the exit code tells (warnings still go to stderr)
    #[arg(short, long)]
    pub quiet: bool,
    /// Caught only to refuse it without echoing it: a token on the command line is visible to
    /// every user of the machine.
    #[arg(hide = true, num_args = 0.., allow_hyphen_values = true)]
    pub token_argument: Vec<String>,
}

const SERVE_HELP: &str = "\
/v1/auth (any method) is for forward auth: nginx auth_request, Caddy forward_auth, Traefik
ForwardAuth, and under /v1/auth/ Envoy ext_authz. The token comes from Authorization: Bearer,
a required project from the query (/v1/auth?project=NAME) or the X-Autheona-Require-Project
header. A valid token is 200 with X-Autheona-Token-Id and
X-Autheona-Project; not valid is 401, another project's 403, and 503 when the store cannot
answer or too much work waits.

POST /v1/verify with {\"token\": \"...\", \"project\": \"...\"} answers what verify --json prints.
GET /healthz is 200 when the store answers, else 503. GET /metrics is for Prometheus.

A token revoked, rotated, pruned or deleted with its project is refused from the next request
on: every request looks its token up in the store, or on PostgreSQL answers from the row it
read while it holds a lease that every such change waits for; argon2's work is cached.
A token in a URL is refused with 400. Last-used times are written at most a second late.
SIGTERM, SIGINT or SIGHUP stops it: requests in flight are answered and last-used times
written.

Examples:
  autheona serve
  autheona serve --listen unix:/run/autheona/autheona.sock --socket-mode 0660
  printf 'Authorization: Bearer %s\\n' \"$TOKEN\" |
    curl -H @- 'http://127.0.0.1:8740/v1/auth?project=demo'";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen: HOST:PORT, or unix:/path/to.sock (repeatable)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8740", action = clap::ArgAction::Append)]
    pub listen: Vec<String>,
    /// Permissions of a unix socket it creates, in octal
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = parse_socket_mode)]
    pub socket_mode: u32,
    /// Log a line per request on stderr: method, path (no query), status, token id, duration
    #[arg(long)]
    pub access_log: bool,
    /// How many verified tokens to remember, sparing their argon2 work, and on PostgreSQL how
    /// many tokens' rows read under the lease (at most 1000000); 0 turns both off
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub cache_size: u32,
    /// Connections open at once; at the limit an idle keep-alive one is closed for each new
    /// one, and with none idle new ones wait to be accepted
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Connections to a PostgreSQL store, each making the lookups that wait for it in one
    /// statement [default: one per core, on each HTTP thread, at most 16]; a file gets one per
    /// core
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub store_connections: Option<u32>,
    /// Seconds a client may take to send a request; a slower one is dropped
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub read_timeout: u64,
    /// Seconds an idle keep-alive connection is kept open
    #[arg(long, value_name = "SECONDS", default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub idle_timeout: u64,
}

/// An octal file mode for a socket: owner read and write at least, nothing beyond 0777.
fn parse_socket_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text, 8)
        .map_err(|_| format!("'{text}' is not an octal mode such as 0600 or 0660"))?;
    if mode > 0o777 {
        return Err(format!("'{text}' is not a mode: at most 0777"));
    }
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "'{text}' would keep the server's owner from using the socket: give at least 0600"
        ));
    }
    Ok(mode)
}

const SCAN_HELP: &str = "\
Directories are scanned recursively. What ignore files leave out is skipped (.gitignore and
git's excludes inside a git repository, .ignore anywhere; --no-ignore scans it too), and so are
the .git directory, symbolic links and binary files (a NUL byte in the first 8000 bytes).
Hidden files such as .env are scanned. A path named on the command line is scanned even when
it is ignored or binary, so naming a repository's files (git ls-files) scans all it holds,
including files committed before .gitignore listed them. After --, every name is a path, even -
or --help. A named device, FIFO or socket, or a link to one, is reported and not read, and so
is a relative path that leaves the current directory through a symbolic link (a committed
x -> / or x -> ..). A file that starts with a UTF-16 byte order mark is scanned as UTF-16 too.

A token is reported only with the right shape and a valid checksum, as PATH:LINE:COLUMN: token
ID, never its secret. With a database, each line says whether the token is active, expired or
unknown there, or unchecked past the scan's limit of secret checks; scanning records no use.

Exit 0 when no token is found, 1 when one is, 2 on usage errors, 3 when a path cannot be read
(the other paths are still scanned; 3 wins over 1).

Examples:
  autheona scan
  autheona scan src config/.env --json
  git ls-files -z | xargs -0 autheona scan --
  git diff --cached -U0 --no-color | grep '^+' | autheona scan -";

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan (default: the current directory); - reads stdin
    #[arg(value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub paths: Vec<PathBuf>,
    /// After --, each name is a path, even - or one that starts with -: for lists of file
    /// names, such as git ls-files gives
    #[arg(last = true, value_name = "NAME", value_hint = ValueHint::AnyPath)]
    pub names: Vec<PathBuf>,
    /// Scan what ignore files (.gitignore, .ignore, git's excludes) would skip, e.g. in a
    /// checkout of staged files
    #[arg(long)]
    pub no_ignore: bool,
    /// Print a JSON array of {path, line, column, id, status, project, replaced_by}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every project and token from one store into a new or empty one
    #[command(after_help = STORE_COPY_HELP)]
    Copy(Lazy<StoreCopyArgs>),
}

const STORE_COPY_HELP: &str = "\
Copies every project and every token, with its hash, description, creation, expiry, last
use and scheduled end, and the whole audit log, so that every token works on DESTINATION as
it did on SOURCE, and token list and log show the same. Each of SOURCE and DESTINATION is an
SQLite file or a postgres:// URL (--db and AUTHEONA_DB are not used; --db is refused).

SOURCE is only read: nothing is written to it, and an older schema is read as it is, not
migrated. DESTINATION must be empty or not exist: a missing file (or a database without
autheona's schema) is created; one that holds anything, an audit log too, is refused
(exit 1) and left unchanged. The copy is one transaction on DESTINATION: if it fails, DESTINATION holds
nothing (a store it created stays, empty).

A URL may not hold a password, since every user of this machine can read the command line:
set PGPASSWORD, or put the passwords in ~/.pgpass (or the file PGPASSFILE names), which
keeps one per server, database and user.

Examples:
  autheona store copy ~/.local/share/autheona/autheona.db postgres://db.internal/autheona
  autheona store copy postgres://db.internal/autheona backup.db
  autheona store copy old.db new.db --json";

#[derive(Debug, Args)]
pub struct StoreCopyArgs {
    /// The store to copy: an autheona database file or a postgres:// URL
    #[arg(value_name = "SOURCE", value_hint = ValueHint::AnyPath)]
    pub source: OsString,
    /// The store to copy into, new or empty: a file path or a postgres:// URL
    #[arg(value_name = "DESTINATION", value_hint = ValueHint::AnyPath)]
    pub destination: OsString,
    /// Print {projects, tokens, events}, the numbers copied, as JSON
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn expires_accepts_days_with_or_without_suffix_and_never() {
        for (given, expected) in [
            ("30", ExpiresArg::Days30),
            ("30d", ExpiresArg::Days30),
            ("90", ExpiresArg::Days90),
            ("90d", ExpiresArg::Days90),
            ("365", ExpiresArg::Days365),
            ("365d", ExpiresArg::Days365),
            ("never", ExpiresArg::Never),
        ] {
            assert_eq!(ExpiresArg::from_str(given, false), Ok(expected), "{given}");
        }
        for bad in ["7", "31", "0", "forever", "", "30 days"] {
            assert!(ExpiresArg::from_str(bad, false).is_err(), "{bad}");
        }
    }
}
