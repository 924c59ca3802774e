//! The server's clock: expiry judged at each request with the current time, whatever the cache
//! holds, and on PostgreSQL, a clock far from the database server's reported and warned of.

use std::time::Duration;

use super::harness::*;
use crate::common::*;

/// `autheona serve` whose clock libfaketime reads, at each call, from a file the test rewrites
/// (an offset such as `+0` or `+31d`).
fn server_with_movable_clock(env: &TestEnv, offset: &str) -> (Server, std::path::PathBuf) {
    let file = env.dir().join("faketime");
    std::fs::write(&file, offset).unwrap();
    let mut cmd = env.std_cmd();
    cmd.env("LD_PRELOAD", faketime_lib())
        .env("FAKETIME_TIMESTAMP_FILE", &file)
        .env("FAKETIME_NO_CACHE", "1")
        // Timers and the runtime's waits keep the real clock: only the time of day moves.
        .env("DONT_FAKE_MONOTONIC", "1");
    (Server::start_cmd(cmd, Addr::Tcp(free_port()), &[]), file)
}

#[test]
fn expiry_is_judged_at_each_request_even_for_a_cached_token() {
    let (env, token) = demo();
    let (server, clock) = server_with_movable_clock(&env, "+0");
    // Cached, and the cache holds no verdict: at 29 days it is valid, at 31 expired.
    assert_eq!(server.auth(&token, None).status, 200);
    std::fs::write(&clock, "+29d").unwrap();
    assert_eq!(server.auth(&token, None).status, 200);
    std::fs::write(&clock, "+31d").unwrap();
    let response = server.auth(&token, None);
    assert_eq!(response.status, 401, "{response:?}");
    let json = server.verify(&serde_json::json!({ "token": token })).json();
    assert_eq!(json["reason"], "expired", "{json}");
    std::fs::write(&clock, "+0").unwrap();
    assert_eq!(
        server.auth(&token, None).status,
        200,
        "the clock moved back"
    );
}

#[test]
fn on_postgresql_healthz_reports_the_clock_offset_and_a_large_one_is_warned_of() {
    if backend() != Backend::Postgres {
        return;
    }
    let env = TestEnv::new();
    env.project("demo");
    let (server, clock) = server_with_movable_clock(&env, "+0");
    let offset = server.get("/healthz", &[]).json()["clock_offset_seconds"]
        .as_i64()
        .unwrap();
    assert!(offset.abs() <= 2, "{offset}");
    assert!(!server.stderr().contains("clock"), "{}", server.stderr());
    std::fs::write(&clock, "+120s").unwrap();
    let offset = server.get("/healthz", &[]).json()["clock_offset_seconds"]
        .as_i64()
        .unwrap();
    assert!((118..=122).contains(&offset), "{offset}");
    server.wait_for_stderr("warning: this host's clock is");
    assert!(
        server
            .stderr()
            .contains("s ahead of the database server's; expiry is judged by this host's clock"),
        "{}",
        server.stderr()
    );
    // Said once, not at every check.
    server.get("/healthz", &[]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        server.stderr().matches("clock is").count(),
        1,
        "{}",
        server.stderr()
    );

    // Apart from the start: said as the store is opened, and not again at the first check.
    let (late, _clock) = server_with_movable_clock(&env, "+120s");
    late.wait_for_stderr("warning: this host's clock is");
    late.get("/healthz", &[]);
    late.get("/healthz", &[]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        late.stderr().matches("clock is").count(),
        1,
        "{}",
        late.stderr()
    );
}
