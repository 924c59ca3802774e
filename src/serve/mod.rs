//! `autheona serve`: the HTTP adapter over [`crate::ops::verify`], for APIs and reverse
//! proxies. Routes and answers are in `http`; the verification of a request in `verify`, with
//! the verified-secret cache (`cache`) in front of argon2 only: the row is asked of the store
//! at every request (a server store answers it from memory while it holds a lease that every
//! refusing change waits for, which is the store's business);
//! last-used times written behind (`uses`); `/metrics` (`metrics`); the addresses
//! (`listen`). Connections are served by threads that each run a runtime of their own
//! (`workers`). A local file is read on each such thread's own connection, a server asked on
//! connections the requests share, each kept by one thread (`slot`); argon2, blocking work,
//! runs on threads of its own (`pool`).
//!
//! Built into `autheona-serve` only (see `commands::serve`).

mod cache;
mod connection;
mod http;
mod listen;
mod metrics;
mod pool;
mod slot;
mod uses;
mod verify;
mod workers;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, TryAcquireError, watch};

use crate::commands::Start;
use crate::error::{Error, Result};
use crate::store::{Location, Lookups, Say};
use crate::ui;
use listen::{Address, Bound};
use slot::StoreSlot;
use verify::Verifier;

/// The most a request's head may hold.
const MAX_HEAD: usize = 8 * 1024;
/// How long requests in flight get to finish once a stop is asked for.
const DRAIN: Duration = Duration::from_secs(10);
/// How long a stop waits for the last-used times to be written, after [`DRAIN`]: longer than
/// a write waits for SQLite's lock, and the two together within the README unit's
/// `TimeoutStopSec` (20 s).
const LAST_WRITE: Duration = Duration::from_secs(8);
/// Argon2 verifications that may wait for a thread, per thread, before more get 503: about
/// 50 ms of work at most, and more than a proxy's connections to serve usually are.
const HASHING_QUEUE_PER_THREAD: usize = 64;
/// How much the argon2 threads yield the cores to the threads answering cached tokens: a
/// flood of tokens that need argon2 work slows those a little, not to a stop.
const HASHING_NICE: i32 = 10;
/// The most connections to a PostgreSQL store by default (one per HTTP thread up to it):
/// what one host takes of the server's `max_connections` (100 by default) stays small.
const MOST_STORE_CONNECTIONS: usize = 16;
/// Store calls that may wait for the server at once before more get 503.
const STORE_QUEUE: usize = 1024;
/// Files the server keeps open beside its connections, about: its listeners, stdio, a client
/// accepted while it waits for room, a PostgreSQL store's sockets (as many as the cores, at
/// most 16, unless `--store-connections` gives more, which are counted too), and per core
/// [`FILES_PER_CORE`] more.
const FILES_BESIDE_CONNECTIONS: u64 = 48;
/// Files each core's threads keep open: a runtime's reactor and waker, a file store's
/// database, log and shared-memory files.
const FILES_PER_CORE: u64 = 6;

/// What every connection's requests share.
pub struct App {
    verifier: Verifier,
    access_log: bool,
    read_timeout: Duration,
    requests: AtomicU64,
    /// Whether the clocks were last found too far apart (so it is said once, not per check).
    clocks_apart: AtomicBool,
}

impl App {
    fn log_request(
        &self,
        method: &str,
        path: &str,
        status: StatusCode,
        noted: &http::Noted,
        took: Duration,
    ) {
        // The path may hold anything a client sent: nothing shaped like a token, no escapes.
        let path = ui::safe(&crate::text::redact(path)).into_owned();
        let token = noted.token_id.as_deref().unwrap_or("-");
        let line = format!(
            "{} {method} {path} {} token={token} {} ms\n",
            ui::time::rfc3339(chrono::Utc::now()),
            status.as_u16(),
            http::millis(took)
        );
        ui::stderr::write(line);
    }

    /// Warns once when this host's clock and the database server's drift apart.
    fn clock_checked(&self, host: i64, server: i64) {
        let warning = crate::ops::store::clocks_apart(host, server);
        let was = self.clocks_apart.swap(warning.is_some(), Ordering::Relaxed);
        if let (Some(warning), false) = (warning, was) {
            ui::warning(&warning);
        }
    }
}

/// Runs the server until SIGTERM or SIGINT, then lets requests in flight finish, writes the
/// last-used times noted and removes its sockets. Its stderr is written behind
/// ([`ui::stderr`]): a stderr that stops draining holds neither the requests nor the stop,
/// which waits [`LOG_FLUSH`] at most for the last lines.
pub fn run(start: Start<'_>) -> Result<()> {
    ui::stderr::write_behind(LOG_ROOM).map_err(spawn_failed)?;
    let served = serve_until_stopped(start);
    ui::stderr::flush(LOG_FLUSH);
    served
}

/// Lines of stderr that may wait for a stderr slower than the server: past them, lines are
/// dropped (counted in `/metrics`).
const LOG_ROOM: usize = 4096;
/// How long the stop waits for its last lines to be written.
const LOG_FLUSH: Duration = Duration::from_secs(1);

fn serve_until_stopped(start: Start<'_>) -> Result<()> {
    let args = start.args;
    let addresses = args
        .listen
        .iter()
        .map(|text| Address::parse(text))
        .collect::<Result<Vec<_>>>()?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let store_connections = args.store_connections.map_or(0, u64::from);
    let max_connections =
        connections_within_open_files(args.max_connections, cores, store_connections)?;

    // The accept loops and the signals run here, on a runtime of this thread; the connections
    // on the workers, each on its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(spawn_failed)?;
    let workers = workers::Workers::start("autheona-http", cores).map_err(spawn_failed)?;

    // What can fail to start without a store or an address to give back, first.
    let hashing = pool::Pool::start(
        "autheona-argon2",
        cores,
        HASHING_QUEUE_PER_THREAD * cores,
        HASHING_NICE,
    )
    .map_err(spawn_failed)?;
    let cache = cache::Cache::new(args.cache_size as usize)
        .map_err(|err| Error::environment(format!("cannot draw the cache's key: {err}")))?;

    // A local file is read in place by each worker, on a connection of its own; a server is
    // asked on connections the workers' requests share, each kept by one worker, all made
    // now. Either way the store was opened once already, and every address is bound before
    // anything is served: a store that cannot be reached or an address taken is an error
    // first.
    let stores = match &start.location {
        Location::File(_) => slot::Stores::InPlace(start.location.clone()),
        Location::Postgres(target) => {
            // A connection makes the lookups waiting for it in one statement, so one takes a
            // growing load; one per worker spares a request the wake-ups of another thread.
            let connections = args.store_connections.map_or(
                workers.hands().all().len().min(MOST_STORE_CONNECTIONS),
                |n| n as usize,
            );
            slot::Stores::Server {
                lookups: runtime.block_on(Lookups::open(
                    target,
                    connections,
                    workers.hands().all(),
                    args.cache_size as usize,
                    Say {
                        warning: ui::warning,
                        status: ui::status,
                    },
                ))?,
                room: Semaphore::new(STORE_QUEUE),
            }
        }
    };
    // The opening said so already when the clocks were apart: warned once, not again at the
    // first /healthz.
    let clocks_apart = start.store.server_time().is_some_and(|server| {
        crate::ops::store::clocks_apart(chrono::Utc::now().timestamp(), server).is_some()
    });
    drop(start.store);
    let connections = match &stores {
        slot::Stores::InPlace(_) => cores,
        slot::Stores::Server { lookups, .. } => lookups.connections(),
    };
    // A start that fails from here gives back what the store's connections hold (on
    // PostgreSQL a lease, which revokes would otherwise wait out); the writer, told nothing
    // more, ends.
    let uses = Arc::new(uses::Uses::default());
    let (stop_writer, writer_stops) = std::sync::mpsc::channel::<()>();
    let (wrote, written) = std::sync::mpsc::sync_channel::<bool>(1);
    let started = StoreSlot::open(&start.location)
        .map_err(Error::from)
        .and_then(|writer_slot| {
            let uses = uses.clone();
            std::thread::Builder::new()
                .name("autheona-last-used".into())
                .spawn(move || {
                    let _ = wrote.send(uses::write_behind(&uses, writer_slot, writer_stops));
                })
                .map_err(spawn_failed)?;
            listen::bind_all(&addresses, args.socket_mode)
        });
    let bound = match started {
        Ok(bound) => bound,
        Err(err) => {
            runtime.block_on(stores.close());
            return Err(err);
        }
    };
    let sockets = listen::socket_files(&bound);

    let app = Arc::new(App {
        verifier: Verifier {
            stores,
            hashing,
            cache,
            uses,
            metrics: metrics::Metrics::new(),
            store_failing: AtomicBool::new(false),
        },
        access_log: args.access_log,
        read_timeout: Duration::from_secs(args.read_timeout),
        requests: AtomicU64::new(0),
        clocks_apart: AtomicBool::new(clocks_apart),
    });
    let limits = Limits {
        connections: Arc::new(Semaphore::new(max_connections as usize)),
        reclaim: Arc::default(),
        max_connections,
        read_timeout: Duration::from_secs(args.read_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
    };
    let announced = format!(
        "autheona serve: listening on {} (store: {}, {connections} connection{})",
        addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        start.location,
        if connections == 1 { "" } else { "s" },
    );
    for address in &addresses {
        if let Some(warning) = listen::exposure(address) {
            ui::warning(&warning);
        }
    }

    let signal = runtime.block_on(async {
        let signal = serve(bound, &app, &limits, workers.hands(), &announced).await;
        app.verifier.stores.close().await;
        signal
    });
    workers.stop();
    runtime.shutdown_timeout(Duration::from_secs(1));

    // The pools finish what they hold; then the last uses are written.
    let requests = app.requests.load(Ordering::Relaxed);
    drop(app);
    let _ = stop_writer.send(());
    // A store that does not answer (its server gone, the connection held open) does not
    // hold the stop: the writer is left to the process's exit.
    let written = match written.recv_timeout(LAST_WRITE) {
        Ok(true) => "last-used times written".to_owned(),
        Ok(false) | Err(RecvTimeoutError::Disconnected) => {
            "some last-used times could not be written".to_owned()
        }
        Err(RecvTimeoutError::Timeout) => format!(
            "some last-used times could not be written: the store did not answer within {} s",
            LAST_WRITE.as_secs()
        ),
    };
    for socket in &sockets {
        socket.remove();
    }
    ui::status(&format!(
        "autheona serve: stopped by {} after {requests} requests; {written}",
        signal?,
    ));
    Ok(())
}

fn spawn_failed(err: std::io::Error) -> Error {
    Error::environment(format!("cannot start threads: {err}"))
}

/// Serves on every listener until SIGTERM, SIGINT or SIGHUP, whose name it returns once the requests
/// in flight are answered (or [`DRAIN`] is over). `announced` is said once the signals are
/// handled, so that whoever waits for it may stop the server from then on.
async fn serve(
    bound: Vec<Bound>,
    app: &Arc<App>,
    limits: &Limits,
    hands: &workers::Hands,
    announced: &str,
) -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let failed = |err: std::io::Error| Error::environment(format!("cannot handle signals: {err}"));
    let mut term = signal(SignalKind::terminate()).map_err(failed)?;
    let mut int = signal(SignalKind::interrupt()).map_err(failed)?;
    // A terminal closed under it (or a supervisor that hangs up): stopped as by SIGTERM, not
    // ended where it is, its last-used times lost and its socket left behind.
    let mut hup = signal(SignalKind::hangup()).map_err(failed)?;
    let listen_failed = |err: std::io::Error| Error::environment(format!("cannot listen: {err}"));
    let (stop, stopping) = watch::channel(false);
    let mut accepting = Vec::new();
    for bound in bound {
        let (app, limits, stopping) = (app.clone(), limits.clone(), stopping.clone());
        let hands = hands.clone();
        accepting.push(match bound {
            Bound::Tcp(listener) => {
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(listen_failed)?;
                tokio::spawn(accept_loop(listener, stopping, limits, app, hands))
            }
            Bound::Unix(listener, _) => {
                let listener =
                    tokio::net::UnixListener::from_std(listener).map_err(listen_failed)?;
                tokio::spawn(accept_loop(listener, stopping, limits, app, hands))
            }
        });
    }
    ui::status(announced);
    let signal = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = hup.recv() => "SIGHUP",
    };
    let _ = stop.send(true);
    for task in accepting {
        let _ = task.await;
    }
    // Every connection holds a permit until it is closed: all back means all answered.
    let _ = tokio::time::timeout(
        DRAIN,
        limits.connections.acquire_many(limits.max_connections),
    )
    .await;
    Ok(signal)
}

/// The limits every connection is held to.
#[derive(Clone)]
struct Limits {
    connections: Arc<Semaphore>,
    /// Asked once for each client the accept loop has accepted and has no room for: an idle
    /// keep-alive connection closes to make it, or the next to become idle does.
    reclaim: Arc<connection::Reclaim>,
    max_connections: u32,
    read_timeout: Duration,
    idle_timeout: Duration,
}

/// A listener the accept loop takes connections from, each [`Accept::detach`]ed from the
/// accepting runtime, for the worker it is handed to to [`Accept::attach`].
trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A socket no runtime watches.
    type Detached: Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
    fn detach(stream: Self::Stream) -> std::io::Result<Self::Detached>;
    fn attach(detached: Self::Detached) -> std::io::Result<Self::Stream>;
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    type Detached = std::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        let (stream, _) = tokio::net::TcpListener::accept(self).await?;
        // Answers are small and sent whole: Nagle's delay would only add latency.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
    fn detach(stream: Self::Stream) -> std::io::Result<Self::Detached> {
        stream.into_std()
    }
    fn attach(detached: Self::Detached) -> std::io::Result<Self::Stream> {
        tokio::net::TcpStream::from_std(detached)
    }
}

impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    type Detached = std::os::unix::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        Ok(tokio::net::UnixListener::accept(self).await?.0)
    }
    fn detach(stream: Self::Stream) -> std::io::Result<Self::Detached> {
        stream.into_std()
    }
    fn attach(detached: Self::Detached) -> std::io::Result<Self::Stream> {
        tokio::net::UnixStream::from_std(detached)
    }
}

/// Accepts connections until a stop is asked for and hands each, with a connection permit, to
/// a worker in turn. A client accepted at the limit has an idle keep-alive connection closed
/// to make room for it (as nginx does), so that clients which open connections and leave them
/// idle cannot keep others out for the idle timeout; while every connection has a request
/// under way, it waits until one goes idle or closes, and the clients after it wait in the
/// listen queue.
async fn accept_loop<L: Accept>(
    listener: L,
    mut stopping: watch::Receiver<bool>,
    limits: Limits,
    app: Arc<App>,
    hands: workers::Hands,
) {
    let mut complained = false;
    // Said once for this listener: at the open-file limit it may come again and again.
    let mut out_of_files = false;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let stream = match stream.map(L::detach) {
            Ok(Ok(stream)) => stream,
            // A socket that cannot be taken from this runtime's watch (it practically never
            // happens) is closed: that one client is refused, and the loop goes on.
            Ok(Err(_)) => continue,
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) => {
                // Out of files before the connection limit: an idle connection closes to make
                // room, as at the limit (one asked for at a time, however often this comes).
                limits.reclaim.ask_for_files();
                if !out_of_files {
                    ui::warning(&format!(
                        "cannot accept a connection: {err}: idle connections are closed to \
                         make room; raise the open-file limit (ulimit -n, or LimitNOFILE= in a \
                         systemd unit)"
                    ));
                    out_of_files = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(err) => {
                // Say so once, and give it a moment.
                if !complained {
                    ui::warning(&format!("cannot accept a connection: {err}"));
                    complained = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        complained = false;
        limits.reclaim.accepted();
        // Room is asked for only with a client accepted and waiting for it, so that
        // connections idle at the limit are left alone while no one else comes.
        let permit = match limits.reclaim.permit_or_ask(&limits.connections) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return,
            Err(TryAcquireError::NoPermits) => {
                tokio::select! {
                    permit = limits.connections.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                    _ = stopping.wait_for(|stop| *stop) => return,
                }
            }
        };
        let held = limits.reclaim.hold(permit);
        let (app, limits, stopping) = (app.clone(), limits.clone(), stopping.clone());
        hands.next().spawn(async move {
            let mut held = held;
            // Watched by this worker's reactor from now on; a socket it cannot watch (out of
            // memory for it) is closed.
            if let Ok(stream) = L::attach(stream) {
                held.made_room = connection::serve(stream, &app, &limits, stopping).await;
            }
        });
    }
}

/// The connections to serve at most: `asked`, or fewer if the open-file limit (raised first
/// to its hard limit) leaves no room for them beside the files the server needs itself, so that
/// the connections at the limit, not the store's next file, are what waits for room.
fn connections_within_open_files(asked: u32, cores: usize, store: u64) -> Result<u32> {
    let Some(files) = raise_open_files() else {
        return Ok(asked);
    };
    let beside = FILES_BESIDE_CONNECTIONS + FILES_PER_CORE * cores as u64 + store;
    let room = files.saturating_sub(beside);
    if room >= u64::from(asked) {
        return Ok(asked);
    }
    let advice = "raise it (ulimit -n, or LimitNOFILE= in a systemd unit)";
    if room == 0 {
        return Err(Error::environment(format!(
            "the open-file limit ({files}) leaves no room for connections beside the {beside} \
             files serve needs: {advice}"
        )));
    }
    ui::warning(&format!(
        "the open-file limit ({files}) leaves room for {room} connections beside the files \
         serve needs, fewer than --max-connections ({asked}): serving at most {room}; {advice}"
    ));
    Ok(room as u32)
}

/// Raises this process's soft limit on open files to its hard limit, as Go's runtime does:
/// every connection is a file, and the soft limit many systems give (1024) would refuse
/// connections well before `--max-connections`. The limit then in force, if it can be read.
fn raise_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit(2) reads the struct it is given; on failure nothing changes.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
