//! The PostgreSQL floor: the least work any verify against a PostgreSQL server must do.
//! Start, connect and log in, read the token's row by key, run one argon2id verification
//! (`secret::verify`, as autheona's verify and the SQLite floor call it), record the use with
//! one autocommit UPDATE, log out, exit.
//!
//! It connects as autheona does: the same crate (`postgres`, over tokio-postgres), and over
//! TCP the same TLS negotiation as autheona's default `sslmode=prefer` (a TLS request; TLS
//! through rustls with the ring provider if the server agrees, the certificate not checked
//! but the handshake's signature checked), then whatever login the server asks for (SCRAM
//! with the password in `PGPASSWORD`). Over a Unix socket (a host starting with `/`) there is
//! no TLS, as with autheona. It sends autheona's SELECT and UPDATE, unnamed
//! (`query_typed`), to autheona's tables, the UPDATE committing asynchronously as autheona's
//! does (the same last-used durability); what it leaves out is what only autheona needs:
//! reading the libpq variables and password file, parsing the command line, checking the
//! schema version and the server's clock, setting the session's timeouts.
//!
//!     floor_pg HOST PORT USER DBNAME            verify FLOOR_SECRET for token id FLOOR_ID
//!     floor_pg --connect-only HOST PORT USER DBNAME   connect, log in, log out: the connection's share
//!
//! Exits 0 when the secret matches (or, with `--connect-only`, when the login succeeded).

use autheona::secret::{self, Secret};
use postgres::types::Type;

fn connect(host: &str, port: u16, user: &str, dbname: &str) -> postgres::Client {
    let mut config = postgres::Config::new();
    if host.starts_with('/') {
        config.host_path(host);
    } else {
        config.host(host);
    }
    config.port(port).user(user).dbname(dbname);
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
    }
    let client = if host.starts_with('/') {
        config.ssl_mode(postgres::config::SslMode::Disable);
        config.connect(postgres::NoTls)
    } else {
        config.ssl_mode(postgres::config::SslMode::Prefer);
        // autheona's own configuration for sslmode=prefer (its verifier, its key exchange).
        let tls = autheona::store::postgres_prefer_tls();
        config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
    };
    client.expect("connect")
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let connect_only = args.first().is_some_and(|a| a == "--connect-only");
    if connect_only {
        args.remove(0);
    }
    let [host, port, user, dbname] = args.as_slice() else {
        panic!("usage: floor_pg [--connect-only] HOST PORT USER DBNAME");
    };
    let port: u16 = port.parse().expect("port");
    let mut client = connect(host, port, user, dbname);
    if connect_only {
        drop(client);
        return;
    }
    let id = std::env::var("FLOOR_ID").unwrap_or_default();
    let secret = Secret::new(std::env::var("FLOOR_SECRET").unwrap_or_default());
    let row = client
        .query_typed_opt(
            "SELECT t.secret_hash, p.name, t.expires_at
             FROM autheona.tokens t JOIN autheona.projects p ON p.id = t.project_id
             WHERE t.id = $1",
            &[(&id, Type::TEXT)],
        )
        .expect("select");
    let valid = row.is_some_and(|row| secret::verify(&secret, row.get(0)));
    if valid {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        client
            .execute_typed(
                "WITH deferred AS (SELECT set_config('synchronous_commit', 'off', true))
                 UPDATE autheona.tokens SET last_used_at = $1 FROM deferred WHERE id = $2",
                &[(&now, Type::INT8), (&id, Type::TEXT)],
            )
            .expect("update");
    }
    // Logged out as autheona logs out: the client's drop sends Terminate.
    drop(client);
    std::process::exit(if valid { 0 } else { 1 });
}
