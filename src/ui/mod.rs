//! Everything that faces a person: status lines, tables, JSON, dates, prompts, safe text.

pub mod prompt;
pub mod table;
pub mod time;

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use console::style;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::text::is_unsafe_char;

/// A person is there to answer prompts: stdin and stderr are terminals.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Text that came from a user or a file, made unable to inject terminal escape sequences:
/// control and format characters are shown escaped, like `\u{1b}`.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A status line for people, on stderr. Failing to write it is not worth failing the command.
pub fn status(message: &str) {
    let _ = writeln!(std::io::stderr(), "{}", safe(message));
}

pub fn warning(message: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{} {}",
        style("warning:").yellow().bold().for_stderr(),
        safe(message)
    );
}

/// Reports an error as one `error:` line, plus a hint line when there is one, and gives the
/// exit code. A closed stdout ends quietly.
pub fn report(err: &Error) -> u8 {
    if !matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::Interrupted) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{} {}",
            style("error:").red().bold().for_stderr(),
            safe(err.message())
        );
        if let Some(hint) = err.hint() {
            let _ = writeln!(
                stderr,
                "{} {}",
                style("hint:").cyan().for_stderr(),
                safe(hint)
            );
        }
    }
    err.kind().exit_code()
}

/// Writes one line of data to stdout.
pub fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(Error::output)
}

/// Writes raw bytes to stdout.
pub fn print_bytes(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::output)
}

/// Writes a value to stdout as pretty JSON. The text is wiped afterwards: it may hold a token.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(value)
        .map(zeroize::Zeroizing::new)
        .map_err(|err| Error::environment(format!("cannot encode JSON: {err}")))?;
    print_line(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_escapes_only_unsafe_characters() {
        assert_eq!(safe("plain é 🚀"), "plain é 🚀");
        assert_eq!(safe("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(safe("x\u{202e}y\nz"), "x\\u{202e}y\\u{a}z");
    }
}
