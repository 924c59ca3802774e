//! Hostile requests, each with its documented answer (README, "Protecting an HTTP API"), and
//! the server still serving after every one.

use std::time::{Duration, Instant};

use super::harness::*;
use crate::common::*;

/// What a hostile request is answered with.
#[derive(Debug)]
enum Expect {
    /// This status (and the connection may stay open).
    Status(u16),
    /// This status, and the connection closed after it.
    StatusThenClosed(u16),
    /// A 401 with this `WWW-Authenticate`.
    Unauthorized(&'static str),
    /// The connection closed, with or without a 4xx first.
    Dropped,
}

#[test]
fn hostile_requests_get_their_documented_answers_and_the_server_keeps_serving() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--read-timeout", "1"]);
    let bearer = format!("Authorization: Bearer {token}");
    let plain = r#"Bearer realm="autheona""#;
    let invalid = r#"Bearer realm="autheona", error="invalid_token""#;
    let huge_header = format!("X-Junk: {}", "a".repeat(1 << 20));
    let ten_mib = vec![b'a'; 10 << 20];
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("no header", request("GET", "/v1/auth", &[]), Expect::Unauthorized(plain)),
        (
            "Bearer with nothing",
            request("GET", "/v1/auth", &["Authorization: Bearer "]),
            Expect::Unauthorized(plain),
        ),
        (
            "two Authorization headers",
            request("GET", "/v1/auth", &[&bearer, &bearer]),
            Expect::Unauthorized(r#"Bearer realm="autheona", error="invalid_request""#),
        ),
        (
            "lower-case bearer (the scheme is case-insensitive)",
            request("GET", "/v1/auth", &[&format!("authorization: bearer {token}")]),
            Expect::Status(200),
        ),
        (
            "a tab after Bearer (as a space)",
            request("GET", "/v1/auth", &[&format!("Authorization: Bearer\t{token}")]),
            Expect::Status(200),
        ),
        (
            "a tab after Bearer, then junk",
            request("GET", "/v1/auth", &["Authorization: Bearer\taut_junk"]),
            Expect::Unauthorized(invalid),
        ),
        (
            "a token with trailing junk",
            request("GET", "/v1/auth", &[&format!("{bearer}x")]),
            Expect::Unauthorized(invalid),
        ),
        (
            "a token and a second word",
            request("GET", "/v1/auth", &[&format!("{bearer} {token}")]),
            Expect::Unauthorized(invalid),
        ),
        (
            "a 1 MiB header",
            request("GET", "/v1/auth", &[&bearer, &huge_header]),
            Expect::StatusThenClosed(431),
        ),
        ("a 10 MiB body", post("/v1/verify", &ten_mib), Expect::StatusThenClosed(413)),
        (
            "chunked garbage",
            b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n"
                .to_vec(),
            Expect::StatusThenClosed(400),
        ),
        (
            "invalid UTF-8 in the header",
            {
                let mut bytes = b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aut_\xff\xfe\r\n\r\n".to_vec();
                bytes.shrink_to_fit();
                bytes
            },
            Expect::Unauthorized(invalid),
        ),
        (
            "invalid UTF-8 in the body",
            post("/v1/verify", b"{\"token\": \"\xc3\x28\"}"),
            Expect::Status(400),
        ),
        ("raw bytes that are not HTTP", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 hello\r\n\r\n".to_vec(), Expect::Dropped),
        (
            "a token in the query",
            request("GET", &format!("/v1/auth?access_token={token}"), &[]),
            Expect::Status(400),
        ),
    ];
    for (what, bytes, expect) in cases {
        let mut connection = Connection::open(&server.addr);
        // A server may refuse before all is sent (a 10 MiB body): that is its right.
        let _ = connection.send(&bytes);
        let response = connection.receive();
        match (&expect, &response) {
            (Expect::Status(status), Some(r)) => assert_eq!(r.status, *status, "{what}: {r:?}"),
            (Expect::StatusThenClosed(status), Some(r)) => {
                assert_eq!(r.status, *status, "{what}: {r:?}");
                assert!(
                    connection.closed_within(Duration::from_secs(10)),
                    "{what}: left open"
                );
            }
            (Expect::Unauthorized(challenge), Some(r)) => {
                assert_eq!(r.status, 401, "{what}: {r:?}");
                assert_eq!(r.header("www-authenticate"), Some(*challenge), "{what}");
            }
            (Expect::Dropped, None) => {}
            (Expect::Dropped, Some(r)) => {
                assert!((400..500).contains(&r.status), "{what}: {r:?}");
                assert!(
                    connection.closed_within(Duration::from_secs(10)),
                    "{what}: left open"
                );
            }
            (_, None) => panic!("{what}: closed without an answer, expected {expect:?}"),
        }
        assert_eq!(server.auth(&token, None).status, 200, "after {what}");
    }
    let stopped = server.stop();
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        !stopped.stderr.contains(secret_of(&token)),
        "{}",
        stopped.stderr
    );
}

#[test]
fn a_slow_client_is_dropped_after_the_read_timeout() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--read-timeout", "1"]);
    // Half a head, then nothing. The clock starts before the connection, so before serve's.
    let started = Instant::now();
    let mut slow = Connection::open(&server.addr);
    slow.send(b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nAuthor")
        .unwrap();
    assert!(slow.closed_within(Duration::from_secs(20)), "never dropped");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "dropped before its time"
    );
    // A body that never comes.
    let mut slow = Connection::open(&server.addr);
    slow.send(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let response = slow.receive();
    assert!(
        response.as_ref().is_none_or(|r| r.status == 408),
        "{response:?}"
    );
    assert!(slow.closed_within(Duration::from_secs(20)));
    assert_eq!(server.auth(&token, None).status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_kept() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--idle-timeout", "1"]);
    let mut connection = Connection::open(&server.addr);
    for _ in 0..3 {
        assert_eq!(connection.auth(&token).status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        connection.closed_within(Duration::from_secs(20)),
        "idle and never closed"
    );
}

/// `count` connections to `server`, each with a request's head begun and not ended.
fn heads_under_way(server: &Server, count: usize) -> Vec<Connection> {
    (0..count)
        .map(|_| {
            let mut connection = Connection::open(&server.addr);
            connection
                .send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            connection
        })
        .collect()
}

/// Connections sending a request's head, at the limit: a client beyond it waits (accepted, for
/// room), and is served in turn once one of them closes.
#[test]
fn connections_beyond_the_limit_wait_for_a_request_under_way_and_are_served_in_turn() {
    let (env, _token) = demo();
    let server = Server::start(&env, &["--max-connections", "2"]);
    let held = heads_under_way(&server, 2);
    // A third waits: no answer while the two stay open.
    let mut third = Connection::open(&server.addr);
    third
        .send(&request("GET", "/healthz", &["Connection: close"]))
        .unwrap();
    assert!(!third.closed_within(Duration::from_millis(500)));
    drop(held);
    assert_eq!(third.receive().expect("served once one closed").status, 200);
}

/// Connections left idle after their answers, at the limit (the default idle timeout is
/// 75 s): a client beyond it is served at once, and one idle connection, not more, is closed
/// for it. Otherwise a client could keep every other out by opening connections and leaving
/// them idle.
#[test]
fn at_the_limit_an_idle_connection_makes_room_for_a_new_one() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--max-connections", "3"]);
    let mut held: Vec<Connection> = (0..3).map(|_| Connection::open(&server.addr)).collect();
    for connection in &mut held {
        assert_eq!(connection.auth(&token).status, 200);
    }
    for round in 0..3 {
        let mut next = Connection::open(&server.addr);
        next.send(&request("GET", "/healthz", &["Connection: close"]))
            .unwrap();
        let started = Instant::now();
        let response = next.receive();
        assert_eq!(
            response.map(|r| r.status),
            Some(200),
            "round {round}: no answer beyond the limit"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "round {round}: waited {:?}",
            started.elapsed()
        );
    }
    // Those held that were not closed for the new ones still serve.
    for connection in &mut held {
        if !connection.closed_within(Duration::from_millis(100)) {
            assert_eq!(connection.auth(&token).status, 200);
        }
    }
}

/// At the limit with no client waiting, idle connections are left alone: a proxy keeping as
/// many keep-alive connections as the limit must not see one closed after each it opens.
#[test]
fn at_the_limit_with_no_one_waiting_no_idle_connection_is_closed() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--max-connections", "2"]);
    let mut held: Vec<Connection> = (0..2).map(|_| Connection::open(&server.addr)).collect();
    for connection in &mut held {
        assert_eq!(connection.auth(&token).status, 200);
    }
    for (n, connection) in held.iter_mut().enumerate() {
        assert!(
            !connection.closed_within(Duration::from_millis(500)),
            "idle connection {n} was closed with no one waiting"
        );
        assert_eq!(connection.auth(&token).status, 200);
    }
}

/// At the limit, room that a connection closing by itself made is not made again: the
/// connection that goes idle next stays open.
#[test]
fn room_a_connection_made_by_closing_is_not_made_again_by_an_idle_one() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--max-connections", "2"]);
    let mut held = heads_under_way(&server, 2);
    let mut third = Connection::open(&server.addr);
    third
        .send(&request("GET", "/healthz", &["Connection: close"]))
        .unwrap();
    // No room for it while both heads are under way; then the first's client goes away.
    assert!(!third.closed_within(Duration::from_millis(500)));
    let mut kept = held.pop().expect("two held");
    drop(held);
    assert_eq!(third.receive().expect("served once one closed").status, 200);
    // The second's request ends; its connection, idle now, is not closed for room made already.
    kept.send(b"\r\n").unwrap();
    assert_eq!(kept.receive().expect("its answer").status, 200);
    assert!(
        !kept.closed_within(Duration::from_millis(500)),
        "an idle connection was closed for room that was made already"
    );
    assert_eq!(kept.auth(&token).status, 200);
}

/// Two clients accepted at the limit, one on each of two listeners, while every connection has
/// a request under way: when those end, an idle connection closes for each client, not one for
/// both.
#[test]
fn at_the_limit_every_client_waiting_on_any_listener_gets_room() {
    let (env, _token) = demo();
    let socket = env.dir().join("second.sock");
    let second = format!("unix:{}", socket.display());
    let server = Server::start(&env, &["--listen", &second, "--max-connections", "2"]);
    let mut held = heads_under_way(&server, 2);
    let mut waiting = [
        Connection::open(&server.addr),
        Connection::open(&Addr::Unix(socket)),
    ];
    // Kept alive once served: the room they are given is made only by idle connections.
    for connection in &mut waiting {
        connection.send(&request("GET", "/healthz", &[])).unwrap();
    }
    // Both accept loops have asked for room by now; then the two requests end, and their
    // connections go idle.
    std::thread::sleep(Duration::from_millis(500));
    let ended = Instant::now();
    for connection in &mut held {
        connection.send(b"\r\n").unwrap();
        assert_eq!(connection.receive().expect("its answer").status, 200);
    }
    for (n, connection) in waiting.iter_mut().enumerate() {
        assert_eq!(
            connection.receive().map(|r| r.status),
            Some(200),
            "waiting client {n} was given no room"
        );
    }
    // Not room made by the idle timeout (75 s).
    assert!(
        ended.elapsed() < Duration::from_secs(20),
        "{:?}",
        ended.elapsed()
    );
}

#[test]
fn an_idle_connection_gets_the_idle_timeout_not_the_read_timeout() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--read-timeout", "1", "--idle-timeout", "4"]);
    let mut connection = Connection::open(&server.addr);
    assert_eq!(connection.auth(&token).status, 200);
    // Idle for twice the read timeout: still open.
    std::thread::sleep(Duration::from_secs(2));
    // The clock starts before the request, so before serve's idle time after its answer.
    let idle = Instant::now();
    assert_eq!(connection.auth(&token).status, 200);
    assert!(connection.closed_within(Duration::from_secs(20)));
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(3500),
        "closed after {waited:?}, before the idle timeout"
    );
}

/// This process's hard limit on open files.
fn hard_open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills the struct it is given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit.rlim_max
}

/// `autheona serve` on the test's store, to start with its open-file limits set to `soft` and
/// `hard`.
fn serve_with_open_files(env: &TestEnv, soft: u64, hard: u64) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = env.std_cmd();
    // SAFETY: the closure only calls setrlimit(2), async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    cmd
}

/// An open-file limit that leaves `room` connections beside the files serve needs itself (48,
/// and 6 a core: serve's own constants, as its README states them).
fn open_files_for(room: u64) -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    room + 48 + 6 * cores
}

/// A soft open-file limit of 64 (systems commonly give 1024, below the default
/// --max-connections): serve raises it to the hard limit, and keeps a hundred connections open.
#[test]
fn serve_raises_its_open_file_limit_to_the_hard_one() {
    let (env, token) = demo();
    let hard = hard_open_files();
    let needed = open_files_for(1024);
    assert!(
        hard >= needed,
        "needs a hard open-file limit of {needed} or more (1024 connections), not {hard}"
    );
    let server = Server::start_cmd(
        serve_with_open_files(&env, 64, hard),
        Addr::Tcp(free_port()),
        &[],
    );
    let mut held: Vec<Connection> = (0..100).map(|_| Connection::open(&server.addr)).collect();
    for (n, connection) in held.iter_mut().enumerate() {
        assert_eq!(connection.auth(&token).status, 200, "connection {n}");
    }
    // None was closed to make room for another.
    for (n, connection) in held.iter_mut().enumerate() {
        assert_eq!(connection.auth(&token).status, 200, "connection {n} again");
    }
    let stopped = server.stop();
    assert!(
        !stopped.stderr.contains("open-file limit"),
        "{}",
        stopped.stderr
    );
}

/// An open-file limit below what --max-connections needs: serve says when it starts how many
/// connections it serves, and at that limit closes an idle connection for each new client,
/// rather than running out of files for them or for its store; with no room at all it does
/// not start.
#[test]
fn an_open_file_limit_lowers_the_connection_limit_with_a_warning() {
    let (env, token) = demo();
    let none = open_files_for(0);
    let refused = serve_with_open_files(&env, none, none)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the open-file limit ({none}) leaves no room for connections"
        )),
        "{stderr}"
    );

    let files = open_files_for(100);
    let server = Server::start_cmd(
        serve_with_open_files(&env, files, files),
        Addr::Tcp(free_port()),
        &[],
    );
    server.wait_for_stderr(&format!(
        "the open-file limit ({files}) leaves room for 100 connections beside the files serve \
         needs, fewer than --max-connections (1024): serving at most 100"
    ));
    let mut held = Vec::new();
    for n in 0..150 {
        let mut connection = Connection::open(&server.addr);
        let started = Instant::now();
        assert_eq!(connection.auth(&token).status, 200, "connection {n}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "connection {n} waited {:?}",
            started.elapsed()
        );
        held.push(connection);
    }
    let stopped = server.stop();
    assert!(stopped.status.success(), "{stopped:?}");
}

/// A stderr nobody drains (a log pipe whose reader is stuck) holds neither the requests nor
/// the stop: the access log's lines past its room are dropped, and counted.
#[test]
fn a_stderr_that_is_not_drained_holds_no_request_and_no_stop() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--access-log"]);
    server.stall_stderr();
    // More lines than a pipe holds (64 KiB here, 1 MiB with 64 KiB pages) and the server
    // keeps waiting (4,096): asked in rounds until some are dropped.
    let mut connection = Connection::open(&server.addr);
    let started = Instant::now();
    let dropped = |server: &Server| -> u64 {
        let metrics = server.get("/metrics", &[]).text();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("autheona_log_lines_dropped_total "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no dropped lines counted in\n{metrics}"))
    };
    let mut requests = 0;
    while dropped(&server) == 0 {
        assert!(requests < 60_000, "{requests} requests, none dropped");
        for _ in 0..2000 {
            assert_eq!(connection.auth(&token).status, 200, "request {requests}");
            requests += 1;
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "{requests} requests took {HANG_GUARD:?}"
        );
    }
    let stopped = server.stop();
    assert!(stopped.status.success(), "{stopped:?}");
}
