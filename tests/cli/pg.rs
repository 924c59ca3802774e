//! The PostgreSQL server the tests use: the throwaway cluster `./test` starts with
//! `pg_virtualenv`, which sets `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE`.
//! Each test gets a database of its own.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

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

/// A TCP relay to the test's PostgreSQL server that can go silent: it then keeps every
/// connection open, takes what comes and passes nothing on, and leaves new ones unanswered.
pub struct Relay {
    pub port: u16,
    silent: Arc<AtomicBool>,
    /// Every connection it took, client side, to close when it speaks again.
    taken: Arc<Mutex<Vec<TcpStream>>>,
}

/// One direction of a relayed connection, passed on while the relay is not silent.
fn pass(mut from: impl Read, mut to: impl Write, silent: Arc<AtomicBool>) {
    let mut chunk = [0u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut chunk) {
        if !silent.load(Ordering::SeqCst) && to.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
}

/// Passes `client`'s bytes to `server` and `back`'s (the server's other handle) to `client`.
fn join<S: Read + Write + Send + 'static>(
    client: TcpStream,
    server: S,
    back: S,
    silent: &Arc<AtomicBool>,
) {
    let reader = client.try_clone().unwrap();
    let (up, down) = (silent.clone(), silent.clone());
    std::thread::spawn(move || pass(reader, server, up));
    std::thread::spawn(move || pass(back, client, down));
}

impl Relay {
    pub fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let (host, server_port) = (
            std::env::var("PGHOST").expect("PGHOST"),
            std::env::var("PGPORT").expect("PGPORT"),
        );
        let (quiet, held) = (silent.clone(), taken.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                held.lock().unwrap().push(client.try_clone().unwrap());
                if quiet.load(Ordering::SeqCst) {
                    continue;
                }
                if host.starts_with('/') {
                    let path = format!("{host}/.s.PGSQL.{server_port}");
                    let server = std::os::unix::net::UnixStream::connect(path).unwrap();
                    let back = server.try_clone().unwrap();
                    join(client, server, back, &quiet);
                } else {
                    let server = TcpStream::connect(format!("{host}:{server_port}")).unwrap();
                    let back = server.try_clone().unwrap();
                    join(client, server, back, &quiet);
                }
            }
        });
        Relay {
            port,
            silent,
            taken,
        }
    }

    pub fn go_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Speaks again, for new connections; the ones it held are closed.
    pub fn speak_again(&self) {
        self.silent.store(false, Ordering::SeqCst);
        for stream in self.taken.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}
