//! `autheona serve`: the HTTP server, run by the executable that holds it (an async runtime,
//! an HTTP stack, its metrics): `autheona-serve` ([`super::beside`]).

use super::{Context, Outcome, beside};
use crate::cli::ServeArgs;
use crate::error::Result;
use crate::store::{Location, Store};

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
        Server::Beside => Err(beside::exec("run the server")),
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
