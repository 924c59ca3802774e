//! The PostgreSQL server the tests use: the throwaway cluster `./test` starts with
//! `pg_virtualenv`, which sets `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE`.
//! Each test gets a database of its own.

use std::sync::Mutex;
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

/// A new, empty database; its name. The process id alone does not make it unique: one run of
/// the suites starts more processes than a pid_max of 32768 numbers them, so a later test may
/// get the pid of one whose database is still there (a server killed under it, a test that
/// failed); the time does.
pub fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let name = format!(
        "autheona_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    administer(&format!("CREATE DATABASE {name}")).expect("create a test database");
    name
}

/// Drops database `name`, ending any connection still open to it (a test's own connections,
/// a command killed mid-transaction).
pub fn drop_database(name: &str) {
    if let Err(err) = administer(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
        // A leftover database in a throwaway cluster fails no test; say so and go on.
        eprintln!("cannot drop test database {name}: {err}");
    }
}

/// Runs `sql` on the maintenance database through one connection shared by the whole test
/// process: a login costs more than creating a database. A connection found broken (the
/// server restarted) is replaced, once.
fn administer(sql: &str) -> Result<(), postgres::Error> {
    static SHARED: Mutex<Option<postgres::Client>> = Mutex::new(None);
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(client) = shared.as_mut().filter(|client| !client.is_closed()) {
        match client.batch_execute(sql) {
            Err(err) if err.as_db_error().is_none() => {}
            done => return done,
        }
    }
    let client = shared.insert(admin());
    client.batch_execute(sql)
}

/// The URL of database `name` on the test server, the rest coming from [`PG_VARS`].
pub fn url(name: &str) -> String {
    format!("postgres:///{name}")
}

/// How autheona names database `name` on the test server in its messages (as `Location`
/// shows a PostgreSQL store): `PostgreSQL localhost:5432 (database NAME, user postgres)`.
pub fn location(name: &str) -> String {
    format!("PostgreSQL {}", target(name))
}

/// The server, database and user alone, as in "PostgreSQL database TARGET has no autheona
/// schema yet".
pub fn target(name: &str) -> String {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let (host, port, user) = (var("PGHOST"), var("PGPORT"), var("PGUSER"));
    let server = if host.starts_with('/') {
        format!("{host}/.s.PGSQL.{port}")
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    format!("{server} (database {name}, user {user})")
}
