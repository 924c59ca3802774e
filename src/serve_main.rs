use std::process::ExitCode;

use autheona::commands::Server;

/// `autheona` with the HTTP server linked in: what `autheona serve` runs.
fn main() -> ExitCode {
    autheona::process::main(Server::Here(autheona::serve::run))
}
