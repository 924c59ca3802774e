use std::process::ExitCode;

use autheona::commands::Server;

/// Everything but the HTTP server, which `autheona serve` finds in `autheona-serve` beside
/// this executable: the server's code would make every short-lived command start slower.
fn main() -> ExitCode {
    autheona::process::main(Server::Beside)
}
