use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = autheona::cli::Cli::parse();
    ExitCode::from(match autheona::commands::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => autheona::ui::report(&err),
    })
}
