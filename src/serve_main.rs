use std::process::ExitCode;

use autheona::commands::Server;

/// `autheona` with the HTTP server and the PostgreSQL client linked in: what `autheona serve`,
/// and every command on a PostgreSQL store, runs.
fn main() -> ExitCode {
    autheona::store::link_postgres();
    autheona::process::main(Server::Here(autheona::serve::run))
}
