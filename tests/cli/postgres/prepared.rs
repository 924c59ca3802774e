//! `autheona serve` prepares its lookup on each of its connections, once: the server then
//! plans the join once per connection instead of once per request; and the lookups that wait
//! for a connection together are made in one statement. Revocation is seen all the same, at the
//! very next request: a statement reads the rows as they are when it runs, and a request's
//! lookup is never in a statement sent before the request came.

use super::{Locked, PgEnv, wait_for};
use crate::common::{HANG_GUARD, created_token, id_of};
use crate::serve::harness::{Addr, Connection, Server, bearer_request, free_port};

/// `autheona serve` on the test's database, with `connections` store connections.
fn serve_on(env: &PgEnv, connections: u32) -> Server {
    let connections = connections.to_string();
    Server::start_cmd(
        env.std_cmd(),
        Addr::Tcp(free_port()),
        &["--store-connections", &connections],
    )
}

#[test]
fn serve_prepares_its_lookup_once_and_still_refuses_a_token_at_once_when_revoked() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let server = serve_on(&env, 1);
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
    // Prepared, and with its generic plan: PostgreSQL would otherwise plan the statement
    // again at every execution while a plan for its values looks cheaper (finding 30).
    assert!(
        last[0].starts_with(
            "SET LOCAL plan_cache_mode = force_generic_plan; EXECUTE autheona_verify_"
        ),
        "the lookup runs prepared, on its generic plan: {:?}",
        last[0]
    );
    env.run(&["token", "revoke", id_of(&token), "--yes"])
        .success();
    assert_eq!(server.auth(&token, None).status, 401, "revoked");
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
}

/// Lookups that wait for serve's connection at the same moment are made in one statement, and
/// each request is answered from its own token's row: a revoked token among them is refused,
/// a valid one gets its own id. Here they wait behind a lock another session holds.
#[test]
fn lookups_that_wait_together_are_made_in_one_statement_each_for_its_own_token() {
    let Some(env) = PgEnv::new() else { return };
    let mut tokens = vec![env.demo_token()];
    for _ in 0..5 {
        tokens.push(created_token(
            &env.run(&["token", "create", "-p", "demo", "-e", "30"])
                .success(),
        ));
    }
    env.run(&["token", "revoke", id_of(&tokens[5]), "--yes"])
        .success();
    let server = serve_on(&env, 1);
    let locked = Locked::take(env.sql());
    let (sent, all_sent) = std::sync::mpsc::channel();
    let asking: Vec<_> = tokens
        .iter()
        .map(|token| {
            let (addr, token, sent) = (server.addr.clone(), token.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut connection = Connection::open(&addr);
                connection
                    .send(&bearer_request(&token))
                    .expect("send the request");
                sent.send(()).expect("the test waits for every request");
                connection.receive().expect("an answer")
            })
        })
        .collect();
    drop(sent);
    let mut admin = env.sql();
    wait_for("serve's lookup waited for the lock", &[], || {
        let waiting = admin
            .query_opt(
                "SELECT 1 FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .expect("read pg_stat_activity");
        waiting.map(|_| ())
    });
    // Every request is sent (a thread on a busy machine can take its time to connect), then
    // read by serve and put behind the waiting lookup meanwhile.
    for _ in &tokens {
        all_sent
            .recv_timeout(HANG_GUARD)
            .expect("a request's thread sent its request");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    locked.release();
    let answers: Vec<_> = asking
        .into_iter()
        .map(|asking| asking.join().expect("a request's thread"))
        .collect();
    for (token, answer) in tokens.iter().zip(&answers).take(5) {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("x-autheona-token-id"), Some(id_of(token)));
    }
    assert_eq!(answers[5].status, 401, "revoked: {:?}", answers[5]);
    let last: String = admin
        .query_one(
            "SELECT query FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND query LIKE '%; EXECUTE autheona_verify_%'",
            &[],
        )
        .expect("serve's lookup connection")
        .get(0);
    let ids = tokens
        .iter()
        .filter(|token| last.contains(id_of(token)))
        .count();
    assert!(
        ids >= 2,
        "the lookups after the lock in one statement: {last}"
    );
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
}

/// serve's lookup connections end as a client's should when it stops: each tells the server
/// (PostgreSQL counts a connection dropped without a word as an abandoned session).
#[test]
fn serve_closes_its_connections_to_the_server_when_it_stops() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let server = serve_on(&env, 3);
    assert_eq!(server.auth(&token, None).status, 200);
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let mut admin = env.sql();
    wait_for("serve's backends to end", &[], || {
        let count: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .expect("read pg_stat_activity")
            .get(0);
        (count == 0).then_some(())
    });
    let abandoned: i64 = admin
        .query_one(
            "SELECT sessions_abandoned FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .expect("read pg_stat_database")
        .get(0);
    assert_eq!(abandoned, 0, "sessions dropped without a word");
}
