//! Everything that faces a person: status lines, tables, JSON, dates, prompts, safe text.

pub mod json;
pub mod prompt;
pub mod stderr;
pub mod table;
pub mod time;
mod usage;

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use console::style;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::text;

/// Settles colour before anything is written. Colour follows NO_COLOR as no-color.org defines
/// it: only a non-empty value turns it off. console turns it off for any value, even an empty
/// one, so for an empty one this makes console's choice as if NO_COLOR were unset (a terminal,
/// TERM not dumb, CLICOLOR not 0; or CLICOLOR_FORCE not 0).
pub fn init_colour() {
    if std::env::var_os("NO_COLOR").is_none_or(|value| !value.is_empty()) {
        return;
    }
    let var_is_not = |name: &str, zero: &str| std::env::var(name).map_or(true, |v| v != zero);
    let forced = std::env::var("CLICOLOR_FORCE").is_ok_and(|v| v != "0");
    let wanted =
        |terminal: bool| forced || (terminal && !console::is_dumb() && var_is_not("CLICOLOR", "0"));
    console::set_colors_enabled(wanted(std::io::stdout().is_terminal()));
    console::set_colors_enabled_stderr(wanted(std::io::stderr().is_terminal()));
}

/// A person is there to answer prompts: stdin and stderr are terminals.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Text that came from a user or a file, made unable to inject terminal escape sequences:
/// control and format characters are shown escaped, like `\u{1b}`.
pub fn safe(text: &str) -> Cow<'_, str> {
    text::escape_unsafe(text)
}

/// A status line for people, on stderr. Failing to write it is not worth failing the command.
pub fn status(message: &str) {
    stderr::write(format!("{}\n", safe(&text::redact(message))));
}

pub fn warning(message: &str) {
    stderr::write(format!(
        "{} {}\n",
        style("warning:").yellow().bold().for_stderr(),
        safe(&text::redact(message))
    ));
}

/// Reports an error as one `error:` line, plus a hint line when there is one, and gives the
/// exit code. A closed stdout ends quietly. Anything shaped like a token is redacted: errors
/// may quote what the user typed.
pub fn report(err: &Error) -> u8 {
    if !matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::Interrupted) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{} {}",
            style("error:").red().bold().for_stderr(),
            safe(&text::redact(err.message()))
        );
        if let Some(hint) = err.hint() {
            let _ = writeln!(
                stderr,
                "{} {}",
                style("hint:").cyan().for_stderr(),
                safe(&text::redact(hint))
            );
        }
    }
    err.kind().exit_code()
}

/// Reports a command-line parsing error the same way: one `error:` line and a hint, built
/// from clap's error kind and context (`usage`). Help and version go out as clap prints them.
pub fn report_clap(err: &clap::Error) -> u8 {
    use clap::error::ErrorKind as Clap;
    if matches!(err.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        let _ = err.print();
        return u8::try_from(err.exit_code()).unwrap_or(0);
    }
    report(&usage::from_clap(err))
}

/// Whether stdout would lose what is written: it is a character device other than a terminal
/// (`/dev/null`, `/dev/zero`, `/dev/urandom`, `/dev/full`: nobody reads it back), it was
/// closed when autheona started (Rust's runtime then opens `/dev/null` on it), it is open for
/// reading only (`1<file`: every write fails), or it is a pipe or socket whose reader has
/// gone. Regular files, pipes, sockets and terminals keep it for someone.
pub fn stdout_loses_output() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let stdout = std::io::stdout();
    // SAFETY: fcntl(2) F_GETFL on fd 1 reads its flags and changes nothing.
    let flags = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFL) };
    if flags == -1 || flags & libc::O_ACCMODE == libc::O_RDONLY {
        return true;
    }
    if stdout.is_terminal() {
        return false;
    }
    stdout_reader_gone()
        || stdout
            .as_fd()
            .try_clone_to_owned()
            .and_then(|fd| std::fs::File::from(fd).metadata())
            .is_ok_and(|meta| meta.file_type().is_char_device())
}

/// Whether stdout is a pipe or socket whose reader has gone (closed its end): what is written
/// would fail. Asked without waiting.
fn stdout_reader_gone() -> bool {
    let mut stdout = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    let ready = unsafe { libc::poll(&mut stdout, 1, 0) };
    ready == 1 && stdout.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// stdout as the file it is, for data. Unbuffered: bytes that failed to be written are not
/// written at exit after all, as they would be from std's buffer (a token whose row was
/// removed for the failure). And every failure is an error: std's stdout takes EBADF (a
/// descriptor open for reading only) as success.
pub fn stdout_file() -> Result<std::fs::File> {
    use std::os::fd::AsFd;
    std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(Error::output)
}

/// Writes one line of data to stdout, in one write: the line may be a token, and its copy
/// here is wiped.
pub fn print_line(line: &str) -> Result<()> {
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(line.len() + 1));
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    print_bytes(&bytes)
}

/// Writes raw bytes to stdout.
pub fn print_bytes(bytes: &[u8]) -> Result<()> {
    stdout_file()?.write_all(bytes).map_err(Error::output)
}

/// Writes a value to stdout as pretty JSON as it is serialized, never whole in memory: for
/// listings that read their rows from the store while they are written (a million tokens
/// are 200 MB of JSON). Not for a value holding a secret: see [`print_json`].
pub fn print_json_streamed<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout_file()?);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, json::SafeFormatter::default());
    if let Err(err) = value.serialize(&mut serializer) {
        // What is still buffered is dropped, not flushed: a listing that fails before its
        // first 64 KiB shows nothing on stdout, as one that fails before it starts.
        drop(out.into_parts());
        return Err(match err.io_error_kind() {
            Some(kind) => Error::output(kind.into()),
            None => Error::environment(format!("cannot encode JSON: {err}")),
        });
    }
    out.write_all(b"\n")
        .and_then(|()| out.flush())
        .map_err(Error::output)
}

/// Writes a value to stdout as JSON on one line, with a newline: one record of JSON Lines.
/// Not for a value holding a secret: see [`print_json`].
pub fn print_json_line<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut line = Vec::with_capacity(512);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut line, json::SafeCompactFormatter);
    value
        .serialize(&mut serializer)
        .map_err(|err| Error::environment(format!("cannot encode JSON: {err}")))?;
    line.push(b'\n');
    print_bytes(&line)
}

/// Ends the process with exit code 130 on Ctrl-C (SIGINT), for a command that runs until
/// interrupted.
pub fn exit_on_interrupt() {
    let _ = ctrlc::set_handler(|| std::process::exit(130));
}

/// Writes a value to stdout as pretty JSON. The text is wiped afterwards: it may hold a token.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let json = json::encode(value)
        .map_err(|err| Error::environment(format!("cannot encode JSON: {err}")))?;
    print_bytes(&json)
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
