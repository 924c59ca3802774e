//! Starting and stopping: sockets, warnings, signals under load, a crash, and logs that never
//! hold a secret.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::harness::*;
use crate::common::*;

#[test]
fn autheona_serve_runs_the_server_beside_it_and_logs_one_line_at_start_and_stop() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    assert_eq!(server.auth(&token, None).status, 200);
    let stopped = server.stop();
    assert!(stopped.status.success(), "{stopped:?}");
    let lines: Vec<&str> = stopped.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", stopped.stderr);
    assert!(
        lines[0].starts_with("autheona serve: listening on 127.0.0.1:"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(&env.location()), "{}", lines[0]);
    assert!(
        lines[1].starts_with(
            "autheona serve: stopped by SIGTERM after 1 requests; last-used times written"
        ),
        "{}",
        lines[1]
    );
}

#[test]
fn a_store_that_is_not_there_is_the_usual_error_before_anything_listens() {
    let env = TestEnv::new();
    let addr = free_port();
    let assert = env
        .cmd()
        .args(["serve", "--listen", &addr.to_string()])
        .timeout(HANG_GUARD)
        .assert()
        .code(3);
    assert!(
        stderr(&assert).starts_with(&format!("error: {}", env.missing_store_error())),
        "{}",
        stderr(&assert)
    );
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn bad_listen_addresses_and_modes_are_usage_errors() {
    let (env, _token) = demo();
    for (args, text) in [
        (
            &["--listen", "8740"][..],
            "error: --listen '8740' is not an address to listen on",
        ),
        (
            &["--listen", "example.com:80"],
            "error: --listen 'example.com:80' is not an address",
        ),
        (&["--listen", "unix:"], "error: --listen unix: needs a path"),
        (&["--socket-mode", "0400"], "0400"),
        (&["--socket-mode", "abc"], "abc"),
        // Room for the cache is set aside at start: a number past memory would abort.
        (&["--cache-size", "1000000000"], "is not in 0..=1000000"),
    ] {
        let assert = env
            .cmd()
            .arg("serve")
            .args(args)
            .timeout(HANG_GUARD)
            .assert()
            .code(2);
        assert!(
            stderr(&assert).contains(text),
            "{args:?}: {}",
            stderr(&assert)
        );
    }
    // A port taken by another process, after a socket of its own: the server starts on none
    // of them, and leaves no socket file behind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let socket = env.dir().join("first.sock");
    let assert = env
        .cmd()
        .args(["serve", "--listen", &format!("unix:{}", socket.display())])
        .args(["--listen", &addr])
        .timeout(HANG_GUARD)
        .assert()
        .code(3);
    assert!(
        stderr(&assert).contains(&format!("error: cannot listen on {addr}")),
        "{}",
        stderr(&assert)
    );
    assert!(!socket.exists(), "the socket file was left behind");
}

#[test]
fn a_non_loopback_address_works_with_a_warning() {
    let (env, token) = demo();
    let port = free_port().port();
    let server = Server::start_cmd(
        env.std_cmd(),
        Addr::Tcp(format!("0.0.0.0:{port}").parse().unwrap()),
        &[],
    );
    assert!(
        server.stderr().starts_with(&format!(
            "warning: listening on 0.0.0.0:{port}, reachable from other hosts: tokens cross the \
             network in clear text unless a TLS proxy"
        )),
        "{}",
        server.stderr()
    );
    assert_eq!(server.auth(&token, None).status, 200);
}

#[test]
fn a_unix_socket_is_made_0600_or_as_asked_and_removed_on_exit() {
    let (env, token) = demo();
    let path = env.dir().join("autheona.sock");
    let server = Server::start_unix(&env, path.clone(), &[]);
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(server.auth(&token, None).status, 200);
    // A second server on the same path is refused: the first one is alive.
    let assert = env
        .cmd()
        .args(["serve", "--listen", &format!("unix:{}", path.display())])
        .timeout(HANG_GUARD)
        .assert()
        .code(3);
    assert!(
        stderr(&assert).contains("a server is listening there"),
        "{}",
        stderr(&assert)
    );
    assert!(server.stop().status.success());
    assert!(!path.exists(), "the socket was left behind");

    let server = Server::start_unix(&env, path.clone(), &["--socket-mode", "0660"]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    drop(server);
}

#[test]
fn a_stale_socket_is_replaced_and_anything_else_left_alone() {
    let (env, token) = demo();
    let path = env.dir().join("stale.sock");
    // A socket no one listens on any more.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let server = Server::start_unix(&env, path.clone(), &[]);
    assert_eq!(server.auth(&token, None).status, 200);
    drop(server);
    let file = env.dir().join("file");
    std::fs::write(&file, "keep me").unwrap();
    let assert = env
        .cmd()
        .args(["serve", "--listen", &format!("unix:{}", file.display())])
        .timeout(HANG_GUARD)
        .assert()
        .code(3);
    assert!(
        stderr(&assert).contains("it exists and is not a socket"),
        "{}",
        stderr(&assert)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

/// Clients asking without pause, on their own connections, until stopped; counts answers by
/// status, and requests that got no answer.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    unanswered: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: &Addr, tokens: &[String], clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let unanswered = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|n| {
                let (addr, token) = (addr.clone(), tokens[n % tokens.len()].clone());
                let (stop, ok, unanswered) = (stop.clone(), ok.clone(), unanswered.clone());
                std::thread::spawn(move || {
                    let mut connection = Connection::open(&addr);
                    while !stop.load(Ordering::Relaxed) {
                        let request = bearer_request(&token);
                        if connection.send(&request).is_err() {
                            return;
                        }
                        match connection.receive() {
                            Some(response) if response.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(response) => panic!("under load: {response:?}"),
                            None => {
                                // Closed by a stopping server: a request sent and not answered
                                // counts only if it was in flight; a closed idle connection
                                // reads as none. The server closes only between requests.
                                unanswered.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            unanswered,
            threads,
        }
    }

    fn wait_for(&self, answers: usize) {
        let started = std::time::Instant::now();
        while self.ok.load(Ordering::Relaxed) < answers {
            assert!(started.elapsed() < HANG_GUARD, "the load got no answers");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a client failed");
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.unanswered.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn sigterm_under_load_answers_what_is_in_flight_writes_last_used_and_exits_0() {
    let (env, token) = demo();
    let tokens: Vec<String> = std::iter::once(token)
        .chain((0..3).map(|_| env.token("demo", "30")))
        .collect();
    let server = Server::start(&env, &[]);
    let load = Load::start(&server.addr, &tokens, 8);
    load.wait_for(200);
    let stopped = server.stop();
    let (ok, _unanswered) = load.finish();
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        stopped.stderr.contains("last-used times written"),
        "{}",
        stopped.stderr
    );
    assert!(ok >= 200);
    // Every token's use is in the store, though no second passed since the last flush.
    for token in &tokens {
        assert!(
            !listed(&env, id_of(token))["last_used_at"].is_null(),
            "last use of {} lost",
            id_of(token)
        );
    }
}

#[test]
fn sigint_and_sighup_stop_it_as_sigterm_does() {
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGHUP, "SIGHUP")] {
        let (env, token) = demo();
        let socket = env.dir().join("serve.sock");
        let server = Server::start_unix(&env, socket.clone(), &[]);
        assert_eq!(server.auth(&token, None).status, 200);
        let stopped = server.signal(signal);
        assert!(stopped.status.success(), "{name}: {stopped:?}");
        assert!(
            stopped.stderr.contains(&format!("stopped by {name}")),
            "{}",
            stopped.stderr
        );
        assert!(
            !listed(&env, id_of(&token))["last_used_at"].is_null(),
            "{name}"
        );
        assert!(!socket.exists(), "{name}: the socket file was left");
    }
}

#[test]
fn sigkill_under_load_leaves_the_store_intact_and_a_restarted_server_answers() {
    let (env, token) = demo();
    let other = env.token("demo", "30");
    let server = Server::start(&env, &[]);
    let load = Load::start(&server.addr, &[token.clone(), other.clone()], 8);
    load.wait_for(300);
    let stopped = server.signal(libc::SIGKILL);
    let _ = load.finish();
    assert_eq!(stopped.status.code(), None, "killed");
    assert_eq!(env.integrity(), ["ok"], "integrity check");
    env.run(&["token", "revoke", id_of(&other), "--yes"])
        .success();
    let server = Server::start(&env, &[]);
    assert_eq!(server.auth(&token, None).status, 200);
    assert_eq!(server.auth(&other, None).status, 401);
    assert!(verifies(&env, &token));
}

#[test]
fn the_access_log_has_a_line_per_request_and_no_byte_of_any_secret() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--access-log"]);
    assert_eq!(server.auth(&token, Some("demo")).status, 200);
    assert_eq!(
        server.verify(&serde_json::json!({"token": token})).status,
        200
    );
    let mut wrong = token.clone();
    wrong.replace_range(20..21, if &token[20..21] == "a" { "b" } else { "a" });
    server.auth(&wrong, None);
    server.get(&format!("/v1/auth?x={token}"), &[]);
    server.get(&format!("/{}", secret_of(&token)), &[]);
    server.get("/metrics?secret=hunter2", &[]);
    // The token percent-encoded whole, or one character of its secret, in the path; and the
    // token as the method, which HTTP's grammar allows and `/v1/auth` serves.
    let encoded: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
    let secret = secret_of(&token);
    let split = format!(
        "/{}%{:02X}{}",
        &secret[..20],
        secret.as_bytes()[20],
        &secret[21..]
    );
    for path in [format!("/{encoded}"), split] {
        assert_eq!(server.get(&path, &[]).status, 400, "{path}");
    }
    assert_eq!(server.send(&request(&token, "/v1/auth", &[])).status, 401);
    let stopped = server.stop();
    let log = stopped.stderr;
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("autheona serve:"))
        .collect();
    assert_eq!(requests.len(), 9, "{log}");
    let fields: Vec<&str> = requests[0].split(' ').collect();
    assert_eq!(
        fields[1..],
        [
            "GET",
            "/v1/auth",
            "200",
            &format!("token={}", id_of(&token)),
            fields[5],
            "ms"
        ]
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(fields[0]).is_ok(),
        "{}",
        requests[0]
    );
    assert!(
        requests[1].contains(" POST /v1/verify 200 token="),
        "{}",
        requests[1]
    );
    assert!(
        requests[3].contains(" GET /v1/auth 400 token=- "),
        "{}",
        requests[3]
    );
    for (line, shown) in requests[6..].iter().zip([
        " GET <percent-encoded path> 400 token=- ",
        " GET <percent-encoded path> 400 token=- ",
        " OTHER /v1/auth 401 token=- ",
    ]) {
        assert!(line.contains(shown), "{shown:?} in {line}");
    }
    for secret in [
        token.as_str(),
        secret_of(&token),
        &secret[..20],
        &secret[21..],
        &wrong,
        "hunter2",
        "Bearer",
        "x=",
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    // Every byte, not only the text: nothing of the secret in any encoding of it.
    assert!(!contains(
        log.as_bytes(),
        &secret_of(&token).as_bytes()[..20]
    ));
}

/// `autheona serve` becomes `autheona-serve` before it says anything: a warning about the
/// environment is given once, not once by each executable.
#[test]
fn a_warning_about_the_environment_is_given_once() {
    let (env, _token) = demo();
    let mut cmd = env.std_cmd();
    cmd.env("TZ", "/dev/zero");
    let server = Server::start_cmd(cmd, Addr::Tcp(free_port()), &[]);
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let warnings = stopped
        .stderr
        .lines()
        .filter(|line| line.starts_with("warning: TZ=/dev/zero is ignored"))
        .count();
    assert_eq!(warnings, 1, "{}", stopped.stderr);
}

/// Puts the program `from` at `to`, ready to run. A hard link if it can be. A copy's file is
/// open for writing while it is written, and a process that another test's thread forks in
/// that moment holds it open until it execs: running the copy meanwhile fails with ETXTBSY
/// ("Text file busy"), so the copy is run until it no longer does.
fn runnable_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_ok() {
        return;
    }
    std::fs::copy(from, to).unwrap();
    let start = std::time::Instant::now();
    while let Err(err) = std::process::Command::new(to)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        assert!(
            err.raw_os_error() == Some(libc::ETXTBSY) && start.elapsed() < HANG_GUARD,
            "cannot run {}: {err}",
            to.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `autheona` copied alone into a directory of the test's, run there with `args` in the
/// test's environment; the path it would find `autheona-serve` at.
fn run_alone(env: &TestEnv, args: &[&str]) -> (assert_cmd::assert::Assert, PathBuf) {
    let alone = env.dir().join("bin");
    std::fs::create_dir(&alone).unwrap();
    runnable_copy(Path::new(BIN), &alone.join("autheona"));
    let assert = assert_cmd::Command::new(alone.join("autheona"))
        .envs(
            env.std_cmd()
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .current_dir(env.dir())
        .args(args)
        .timeout(HANG_GUARD)
        .assert();
    (assert, alone.join("autheona-serve"))
}

/// Asserts that `text` says `autheona-serve` at `beside` is missing, to `what`, and how to get it.
#[track_caller]
fn assert_says_how_to_get_it(text: &str, what: &str, beside: &Path) {
    assert!(
        text.starts_with(&format!(
            "error: cannot {what}, {}: No such file or directory",
            beside.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("hint: autheona-serve is installed beside autheona by the same install: cargo install --locked --path ."),
        "{text}"
    );
}

/// The commands on an SQLite file need nothing beside `autheona`; those on a PostgreSQL store
/// run `autheona-serve`, which holds its client, and without it say how to get it.
#[test]
fn without_autheona_serve_beside_it_only_the_commands_on_postgresql_need_it() {
    let (env, _token) = demo();
    let (assert, beside) = run_alone(&env, &["project", "list", "--json"]);
    if !crate::pg::is_postgres_pass() {
        assert!(stdout(&assert.success()).contains("\"demo\""));
        return;
    }
    assert_says_how_to_get_it(
        &stderr(&assert.code(3)),
        "reach a PostgreSQL store",
        &beside,
    );
}

#[test]
fn without_autheona_serve_beside_it_autheona_serve_says_how_to_get_it() {
    let (env, _token) = demo();
    let port = free_port().to_string();
    let (assert, beside) = run_alone(&env, &["serve", "--listen", &port]);
    assert_says_how_to_get_it(&stderr(&assert.code(3)), "run the server", &beside);
}
