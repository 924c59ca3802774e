//! Interactive prompts on stderr (dialoguer). Callers check [`super::is_interactive`] first.

use std::sync::Once;

use console::Term;
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Confirm, Input, Password, Select};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// Prompts hide the cursor; Ctrl-C would leave it hidden. Show it again before exiting.
fn restore_cursor_on_interrupt() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let _ = Term::stderr().show_cursor();
            std::process::exit(130);
        });
    });
}

fn theme() -> Box<dyn Theme> {
    restore_cursor_on_interrupt();
    if console::colors_enabled_stderr() {
        Box::new(ColorfulTheme::default())
    } else {
        Box::new(SimpleTheme)
    }
}

fn terminal_error(err: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = &err;
    if io.kind() == std::io::ErrorKind::Interrupted {
        // Ctrl-C can interrupt the read before the handler above exits.
        let _ = Term::stderr().show_cursor();
        return Error::new(ErrorKind::Interrupted, "interrupted");
    }
    Error::environment(format!("cannot read from the terminal: {err}"))
}

fn cancelled() -> Error {
    Error::refused("cancelled; nothing was changed")
}

/// Picks one of `items`; Esc or `q` cancels.
pub fn select(prompt: &str, items: &[String], default: usize) -> Result<usize> {
    let safe: Vec<String> = items.iter().map(|i| super::safe(i).into_owned()).collect();
    Select::with_theme(&*theme())
        .with_prompt(super::safe(prompt))
        .items(&safe)
        .default(default)
        .interact_opt()
        .map_err(terminal_error)?
        .ok_or_else(cancelled)
}

/// A line of text, re-asked until `validate` accepts it.
pub fn text(prompt: &str, validate: impl Fn(&str) -> Result<()>) -> Result<String> {
    Input::<String>::with_theme(&*theme())
        .with_prompt(super::safe(prompt))
        .allow_empty(true)
        .validate_with(|input: &String| validate(input).map_err(|err| err.message().to_owned()))
        .interact_text()
        .map_err(terminal_error)
}

/// A yes/no question whose default is no.
pub fn confirm(prompt: &str) -> Result<bool> {
    Ok(Confirm::with_theme(&*theme())
        .with_prompt(super::safe(prompt))
        .default(false)
        .interact_opt()
        .map_err(terminal_error)?
        .unwrap_or(false))
}

/// A secret typed without echo.
pub fn secret(prompt: &str) -> Result<Secret> {
    Password::with_theme(&*theme())
        .with_prompt(super::safe(prompt))
        .allow_empty_password(true)
        .interact()
        .map(Secret::new)
        .map_err(terminal_error)
}
