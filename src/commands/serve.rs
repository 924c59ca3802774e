//! `autheona serve`: the HTTP server, run by the executable that holds it.
//!
//! The server (an async runtime, an HTTP stack, its metrics) lives in `autheona-serve`,
//! installed beside `autheona` by the same `cargo install`; `autheona serve` replaces itself
//! with it, handing on its arguments and environment as they are. The short-lived commands,
//! above all `verify`, which a script may start thousands of times, so never load the
//! server's code (benches/README.md, "serve").

use std::os::unix::process::CommandExt;

use super::{Context, Outcome};
use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::store::{Location, Store};

/// The executable that holds the server, beside this one.
pub const SERVER_EXECUTABLE: &str = "autheona-serve";

/// What the server starts from: the store's location, the store opened there (its warnings
/// given), and the command line's arguments.
pub struct Start<'a> {
    pub location: Location,
    pub store: Box<dyn Store>,
    pub args: &'a ServeArgs,
}

/// How `autheona serve` is run.
#[derive(Clone, Copy)]
pub enum Server {
    /// By the executable beside this one, which holds the server.
    Beside,
    /// By this executable, with this server.
    Here(fn(Start<'_>) -> Result<()>),
}

pub fn run(ctx: &Context, args: &ServeArgs, server: Server) -> Result<Outcome> {
    match server {
        Server::Beside => Err(exec_beside()),
        Server::Here(serve) => {
            let location = ctx.location()?;
            let store = ctx.open_at(&location)?;
            serve(Start {
                location,
                store,
                args,
            })?;
            Ok(Outcome::Success)
        }
    }
}

/// Replaces this process with [`SERVER_EXECUTABLE`] from this executable's directory, with
/// the same arguments and environment; returns only the error if that fails.
fn exec_beside() -> Error {
    let beside = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(SERVER_EXECUTABLE),
        Err(err) => {
            return Error::environment(format!("cannot find this executable's directory: {err}"));
        }
    };
    let err = std::process::Command::new(&beside)
        .arg0("autheona")
        .args(std::env::args_os().skip(1))
        .exec();
    Error::environment(format!(
        "cannot run the server, {}: {err}",
        beside.display()
    ))
    .with_hint(format!(
        "{SERVER_EXECUTABLE} is installed beside autheona by the same install: cargo install --locked --path ."
    ))
}
