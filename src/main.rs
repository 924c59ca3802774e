use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::CompleteEnv;

use autheona::cli::Cli;
use autheona::commands;
use autheona::complete::COMPLETE_VAR;

fn main() -> ExitCode {
    // A shell's completion request (COMPLETE set) is answered here and exits. Checked first:
    // clap_complete reads the working directory and the arguments before it looks.
    if std::env::var_os(COMPLETE_VAR).is_some() {
        CompleteEnv::with_factory(Cli::command)
            .var(COMPLETE_VAR)
            .bin("autheona")
            .completer("autheona")
            .complete();
    }
    autheona::ui::init_colour();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return ExitCode::from(autheona::ui::report_clap(&err)),
    };
    ExitCode::from(match commands::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => autheona::ui::report(&err),
    })
}
