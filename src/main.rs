use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::CompleteEnv;

use autheona::cli::Cli;
use autheona::commands::{self, complete::COMPLETE_VAR};

fn main() -> ExitCode {
    // Answers a shell's completion request (COMPLETE set) and exits; otherwise does nothing.
    CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .bin("autheona")
        .completer("autheona")
        .complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return ExitCode::from(autheona::ui::report_clap(&err)),
    };
    ExitCode::from(match commands::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => autheona::ui::report(&err),
    })
}
