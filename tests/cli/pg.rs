//! The PostgreSQL server the tests use: the throwaway cluster `./test` starts with
//! `pg_virtualenv`, which sets `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE`.
//! Each test gets a database of its own.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variables that lead a command to the test server.
pub const PG_VARS: &[&str] = &["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD"];

/// Whether this run's store is PostgreSQL: `AUTHEONA_TEST_STORE=postgres`, which `./test`
/// sets for its second pass.
pub fn is_postgres_pass() -> bool {
    std::env::var("AUTHEONA_TEST_STORE").as_deref() == Ok("postgres")
}

/// Whether a server is there to test against: the PG variables are set, as `./test` sets
/// them for its PostgreSQL pass (the SQLite pass runs without them, and the tests only
/// PostgreSQL has are left to the other pass). In the PostgreSQL pass a missing server fails
/// the test, and `./test` itself fails when it cannot start one, under `CI=true` or not: it is
/// never skipped silently.
pub fn available() -> bool {
    let set = std::env::var_os("PGPORT").is_some() && std::env::var_os("PGHOST").is_some();
    if !set && is_postgres_pass() {
        panic!("no PostgreSQL server in the PostgreSQL pass: run the tests with ./test");
    }
    set
}

/// A connection to the server's maintenance database, as the superuser `pg_virtualenv` made.
pub fn admin() -> postgres::Client {
    connect("postgres")
}

/// A connection to database `name`.
pub fn connect(name: &str) -> postgres::Client {
    let mut config = postgres::Config::new();
    config
        .host(&var("PGHOST"))
        .port(var("PGPORT").parse().expect("PGPORT"))
        .user(&var("PGUSER"))
        .password(var("PGPASSWORD"))
        .dbname(name);
    config
        .connect(postgres::NoTls)
        .expect("connect to the test server")
}

/// One of the test server's [`PG_VARS`]; it must be set.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// A new, empty database; its name.
pub fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "autheona_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    admin()
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    name
}

/// The URL of database `name` on the test server, the rest coming from [`PG_VARS`].
pub fn url(name: &str) -> String {
    format!("postgres:///{name}")
}
