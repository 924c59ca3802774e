//! The process: from its arguments to its exit code, for both executables (`autheona`, and
//! `autheona-serve`, which also holds the HTTP server).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::CompleteEnv;

use crate::cli::Cli;
use crate::commands::{self, Server};
use crate::complete::COMPLETE_VAR;

/// Parses the command line, runs the command and turns the result into the exit code;
/// `serve` is run as `server` says.
pub fn main(server: Server) -> ExitCode {
    // A shell's completion request (COMPLETE set) is answered here and exits. Checked first:
    // clap_complete reads the working directory and the arguments before it looks.
    if std::env::var_os(COMPLETE_VAR).is_some() {
        if !crate::store::postgres_linked() && crate::complete::on_postgres() {
            // Answered by the executable that holds the PostgreSQL client; should it be
            // missing, by this one, without the store's candidates.
            let _ = commands::beside::exec("reach a PostgreSQL store");
        }
        CompleteEnv::with_factory(Cli::command)
            .var(COMPLETE_VAR)
            .bin("autheona")
            .completer("autheona")
            .complete();
    }
    crate::ui::init_colour();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return ExitCode::from(crate::ui::report_clap(&err)),
    };
    ExitCode::from(match commands::run(cli, server) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => crate::ui::report(&err),
    })
}
