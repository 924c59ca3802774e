//! `autheona completions SHELL`: the script that hooks autheona into a shell's completion.

use clap_complete::env::Shells;

use super::Outcome;
use crate::cli::CompletionsArgs;
use crate::complete::COMPLETE_VAR;
use crate::error::{Error, Result};

/// The registration script for `shell`. It calls `autheona` on each TAB, so completions always
/// match the installed binary and offer live project names and token ids.
pub fn script(shell: &str) -> Result<Vec<u8>> {
    const SHELLS: Shells<'static> = Shells::builtins();
    let completer = SHELLS
        .completer(shell)
        .ok_or_else(|| Error::usage(format!("no completions for the shell {shell}")))?;
    let mut script = Vec::new();
    completer
        .write_registration(
            COMPLETE_VAR,
            "autheona",
            "autheona",
            "autheona",
            &mut script,
        )
        .map_err(|err| Error::environment(format!("cannot write the script: {err}")))?;
    Ok(script)
}

pub fn run(args: &CompletionsArgs) -> Result<Outcome> {
    let script = script(args.shell.name())?;
    crate::ui::print_bytes(&script)?;
    Ok(Outcome::Success)
}
