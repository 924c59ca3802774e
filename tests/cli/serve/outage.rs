//! A PostgreSQL store that stops answering without closing anything (a host gone, a
//! middlebox that holds the connections): requests get 503 within seconds, never wait on it,
//! and the server answers again once the store does.

use std::time::{Duration, Instant};

use super::harness::*;
use crate::common::*;
use crate::pg::Relay;

/// `autheona serve` on the test's store through `relay`, on one store connection, with a
/// connect timeout (30 s) far beyond what any wait the tests allow.
fn serve_through(relay: &Relay, env: &TestEnv) -> Server {
    let mut cmd = env.std_cmd();
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", relay.port.to_string())
        .env("PGCONNECT_TIMEOUT", "30");
    Server::start_cmd(cmd, Addr::Tcp(free_port()), &["--store-connections", "1"])
}

/// The first two requests asked while the store is silent wait the server's bound of 2 s (for
/// the silent statement, then for the connection being made again), with room here for a
/// loaded machine; neither the connect timeout (30 s here) nor TCP's (15 s) may be what ends
/// the wait. Those after are refused at once: the new connection has taken 2 s already.
const BOUNDED: Duration = Duration::from_secs(5);
const AT_ONCE: Duration = Duration::from_millis(1500);
/// The lease under which a server answers from rows it read earlier (`lease::LEASE`).
const LEASE: Duration = Duration::from_secs(2);

#[test]
fn a_store_that_stops_answering_gets_503_within_seconds_and_the_server_answers_again() {
    if backend() != Backend::Postgres {
        return;
    }
    let (env, token) = demo();
    let relay = Relay::start();
    let server = serve_through(&relay, &env);
    super::lease::wait_for_leases(&env, 1);
    assert_eq!(server.auth(&token, None).status, 200);

    relay.go_silent();
    let silent = Instant::now();
    // While its lease holds (its renewals now meet the silence: 2 s at most), the server may
    // answer from the row it read under it; then the first request meets the silent
    // connection, the next its line making a new one (which the relay never answers), the
    // last ones the line that gave up waiting.
    let mut refused = 0;
    while refused < 4 {
        let started = Instant::now();
        let response = server.auth(&token, None);
        if response.status == 200 {
            assert!(
                started < silent + LEASE,
                "answered from memory {:?} after the store went silent",
                started - silent
            );
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert_eq!(response.status, 503, "{response:?}");
        assert!(response.header("retry-after").is_some(), "{response:?}");
        assert!(
            started.elapsed() < if refused < 2 { BOUNDED } else { AT_ONCE },
            "answered after {:?}",
            started.elapsed()
        );
        refused += 1;
    }
    let started = Instant::now();
    assert_eq!(server.get("/healthz", &[]).status, 503);
    assert!(
        started.elapsed() < AT_ONCE,
        "answered after {:?}",
        started.elapsed()
    );

    relay.speak_again();
    let started = Instant::now();
    loop {
        let status = server.auth(&token, None).status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < HANG_GUARD,
            "the server never answered again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get("/healthz", &[]).status, 200);
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("did not answer within 2 s"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("the store answers again"),
        "{}",
        stopped.stderr
    );
}

/// The last-used times a stop writes wait 8 s at most for a store that does not answer: the
/// stop ends (exit 0, saying so) instead of waiting on it, within the README unit's 20 s.
#[test]
fn a_stop_waits_for_a_silent_store_8_s_at_most_to_write_last_used_times() {
    if backend() != Backend::Postgres {
        return;
    }
    let (env, token) = demo();
    let relay = Relay::start();
    let server = serve_through(&relay, &env);
    // Its lease taken first: a connection still logging in when the relay goes silent would
    // hold a backend in authentication for the server's 60 s (authentication_timeout), and
    // with it every DROP DATABASE of the cluster, this test's own at its end.
    super::lease::wait_for_leases(&env, 1);
    // A use noted, which the writer cannot write before the store is silent: the token's row
    // is held by a session of the test's own (not through the relay) until then. Its write
    // then waits on the silent connection, whether it was sent before or after.
    let mut holder = env.sql();
    holder
        .batch(&format!(
            "BEGIN; SELECT id FROM tokens WHERE id = '{}' FOR UPDATE",
            id_of(&token)
        ))
        .expect("hold the token's row");
    assert_eq!(server.auth(&token, None).status, 200);
    relay.go_silent();
    holder.batch("COMMIT").expect("let the row go");
    let started = Instant::now();
    let stopped = server.stop();
    let took = started.elapsed();
    relay.speak_again();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains(
            "some last-used times could not be written: the store did not answer within 8 s"
        ),
        "{}",
        stopped.stderr
    );
    assert!(took < Duration::from_secs(20), "stopped after {took:?}");
}
