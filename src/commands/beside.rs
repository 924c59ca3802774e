//! `autheona-serve`, installed beside `autheona` by the same `cargo install`: autheona with
//! the HTTP server and the PostgreSQL client linked in. `autheona` replaces itself with it for
//! `serve` and for every command on a PostgreSQL store, handing on its arguments and
//! environment as they are, before it has read or written anything. The commands on an SQLite
//! file, above all `verify`, which a script may start thousands of times, so never load that
//! code (benches/README.md, "serve" and finding 25).

use std::os::unix::process::CommandExt;

use crate::error::Error;

/// The executable beside this one that holds the server and the PostgreSQL client.
pub const EXECUTABLE: &str = "autheona-serve";

/// Replaces this process with [`EXECUTABLE`] from this executable's directory, with the same
/// arguments and environment, to do `what` (`run the server`); returns only the error if that
/// fails.
pub fn exec(what: &str) -> Error {
    let beside = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(EXECUTABLE),
        Err(err) => {
            return Error::environment(format!("cannot find this executable's directory: {err}"));
        }
    };
    let err = std::process::Command::new(&beside)
        .arg0("autheona")
        .args(std::env::args_os().skip(1))
        .exec();
    Error::environment(format!("cannot {what}, {}: {err}", beside.display())).with_hint(format!(
        "{EXECUTABLE} is installed beside autheona by the same install: cargo install --locked --path ."
    ))
}
