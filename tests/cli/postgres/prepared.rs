//! `autheona serve` prepares its lookup on each of its connections, once: the server then
//! plans the join once per connection instead of once per request. Revocation is seen all the
//! same, at the very next request: a prepared statement reads the rows as they are when it
//! runs.

use super::PgEnv;
use crate::common::id_of;
use crate::serve::harness::{Addr, Server, free_port};

#[test]
fn serve_prepares_its_lookup_once_and_still_refuses_a_token_at_once_when_revoked() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let server = Server::start_cmd(
        env.std_cmd(),
        Addr::Tcp(free_port()),
        &["--store-connections", "1"],
    );
    for round in 0..5 {
        let answer = server.auth(&token, Some("demo"));
        assert_eq!(answer.status, 200, "request {round}: {}", server.stderr());
    }
    // What serve's lookup connection ran last, as the server shows it.
    let mut sql = env.sql();
    let last: Vec<String> = sql
        .query(
            "SELECT query FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND query LIKE '%autheona_verify_%'",
            &[],
        )
        .expect("read pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(last.len(), 1, "one lookup connection: {last:?}");
    assert!(
        last[0].starts_with("EXECUTE autheona_verify_"),
        "the lookup runs prepared: {:?}",
        last[0]
    );
    env.run(&["token", "revoke", id_of(&token), "--yes"])
        .success();
    assert_eq!(server.auth(&token, None).status, 401, "revoked");
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
}
