use std::process::ExitCode;

use autheona::commands::Server;

/// Everything but the HTTP server and the PostgreSQL client, which `autheona serve` and the
/// commands on a PostgreSQL store find in `autheona-serve` beside this executable: their code
/// would make every short-lived command on an SQLite file start slower.
fn main() -> ExitCode {
    autheona::process::main(Server::Beside)
}
