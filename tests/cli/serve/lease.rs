//! On PostgreSQL, a server answers from the rows it read earlier only while it holds a lease
//! in `autheona.servers`, and a command that refuses a token waits until every live server
//! has acknowledged it (`src/store/postgres/lease.rs`). These are the cases where a server
//! does not acknowledge: stopped, or renewing its lease without hearing anything. The revoke
//! must neither hang on it nor return before it can no longer answer from an old row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::harness::*;
use crate::common::*;

/// The lease a server holds, and how long a change waits for an acknowledgement before it
/// evicts the server that did not give one (`lease::LEASE`, `lease::ACK_WAIT`).
const LEASE: Duration = Duration::from_secs(2);
const ACK_WAIT: Duration = Duration::from_secs(1);
/// A revoke that waits for a server that does not answer takes at most ACK_WAIT and LEASE;
/// room here for a loaded machine.
const WAITED_OUT: Duration = Duration::from_secs(8);

/// How many servers hold a lease that is not evicted.
fn leases(env: &TestEnv) -> u64 {
    env.sql()
        .value("SELECT count(*) FROM servers WHERE NOT evicted")
        .and_then(|count| count.parse().ok())
        .expect("count the leases")
}

/// Waits until `count` servers hold a lease.
pub(super) fn wait_for_leases(env: &TestEnv, count: u64) {
    let started = Instant::now();
    while leases(env) != count {
        assert!(started.elapsed() < HANG_GUARD, "no {count} leases");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// On PostgreSQL only: a store with a project "demo", and `N` servers on it holding leases.
fn leased<const N: usize>() -> Option<(TestEnv, [Server; N])> {
    if backend() != Backend::Postgres {
        return None;
    }
    let env = TestEnv::new();
    env.project("demo");
    let servers = std::array::from_fn(|_| Server::start(&env, &[]));
    wait_for_leases(&env, N as u64);
    Some((env, servers))
}

/// A lease in `autheona.servers` that no server holds, live for `interval` (SQL) and
/// acknowledging nothing; its id.
fn deaf_lease(env: &TestEnv, interval: &str) -> String {
    env.sql()
        .value(&format!(
            "INSERT INTO servers (lease_until, acked) VALUES (now() + interval '{interval}', 0)
             RETURNING id"
        ))
        .expect("a lease")
}

/// Runs `args` and how long it took.
fn timed(env: &TestEnv, args: &[&str]) -> Duration {
    let started = Instant::now();
    env.run(args).success();
    started.elapsed()
}

#[test]
fn a_stopped_server_holds_a_revoke_no_longer_than_its_lease_and_refuses_the_token_after() {
    let Some((env, [running, stopped])) = leased() else {
        return;
    };
    let token = env.token("demo", "30");
    for _ in 0..2 {
        assert_eq!(running.auth(&token, None).status, 200);
        assert_eq!(stopped.auth(&token, None).status, 200);
    }
    // Nothing acknowledged by a server that does not run: its lease, no longer renewed,
    // ends the wait.
    stopped.pause();
    let took = timed(&env, &["token", "revoke", id_of(&token), "--yes"]);
    assert_eq!(running.auth(&token, None).status, 401);
    stopped.resume();
    assert_eq!(
        stopped.auth(&token, None).status,
        401,
        "{}",
        stopped.stderr()
    );
    assert!(took < WAITED_OUT, "the revoke took {took:?}");
    // It takes a lease again, and answers from rows read under it.
    wait_for_leases(&env, 2);
    let token = env.token("demo", "30");
    assert_eq!(stopped.auth(&token, None).status, 200);
    env.run(&["token", "revoke", id_of(&token), "--yes"])
        .success();
    assert_eq!(stopped.auth(&token, None).status, 401);
    // Both acknowledged: the revoke evicted neither (it would have after ACK_WAIT). Not timed:
    // the revoke's own start and login are most of its time, and a busy machine's.
    assert_eq!(
        env.sql()
            .value("SELECT count(*) FROM servers WHERE evicted")
            .as_deref(),
        Some("0"),
        "{}{}",
        running.stderr(),
        stopped.stderr()
    );
}

/// A server whose lease is renewed but which hears no announcement (what a transaction pooler
/// between it and the database could make of it): here a lease renewed by the test itself, as
/// a server renews it. The revoke evicts it after a second, so that it is renewed no more,
/// and waits out the lease it may still hold.
#[test]
fn a_lease_renewed_without_acknowledging_is_evicted_and_waited_out() {
    let Some((env, [server])) = leased() else {
        return;
    };
    let deaf = deaf_lease(&env, "2 seconds");
    let stop = Arc::new(AtomicBool::new(false));
    let renewing = {
        let (mut sql, stop, deaf) = (env.sql(), stop.clone(), deaf.clone());
        std::thread::spawn(move || {
            let mut renewed = 0;
            while !stop.load(Ordering::Relaxed) {
                let renew = format!(
                    "UPDATE servers SET lease_until = now() + interval '2 seconds'
                     WHERE id = {deaf} AND NOT evicted"
                );
                if sql.execute(&renew, &[]).expect("renew the lease") == 0 {
                    return renewed;
                }
                renewed += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("the lease was never evicted");
        })
    };
    let token = env.token("demo", "30");
    assert_eq!(server.auth(&token, None).status, 200);
    let took = timed(&env, &["token", "revoke", id_of(&token), "--yes"]);
    assert_eq!(server.auth(&token, None).status, 401);
    stop.store(true, Ordering::Relaxed);
    assert!(renewing.join().expect("the renewing thread") > 0);
    assert!(
        took >= ACK_WAIT + LEASE && took < WAITED_OUT,
        "the revoke took {took:?}"
    );
    let evicted = env
        .sql()
        .value(&format!("SELECT evicted FROM servers WHERE id = {deaf}"));
    assert_eq!(evicted.as_deref(), Some("t"));
    // The real server acknowledged, and was not evicted.
    assert_eq!(leases(&env), 1);
}

/// A lease renewed by another session, as in the test above, but whose row the eviction
/// finds locked: that session holds it (`FOR UPDATE`) from the revoke's start for 4.5 s (the
/// revoke's lock timeout is 5 s), then renews it once more, so the revoke's eviction returns
/// only after that renewal, about 4.5 s in, and the lease then ends 2 s later. The lease it
/// may hold then is waited out from there, not from the revoke's start: when the revoke
/// returns, the lease has ended on the database's clock.
#[test]
fn an_eviction_that_returns_late_is_still_waited_out() {
    let Some((env, [server])) = leased() else {
        return;
    };
    let deaf = deaf_lease(&env, "1 minute");
    let token = env.token("demo", "30");
    assert_eq!(server.auth(&token, None).status, 200);
    let (held, holding) = std::sync::mpsc::channel();
    let holder = {
        let (mut sql, deaf) = (env.sql(), deaf.clone());
        std::thread::spawn(move || {
            sql.batch(&format!(
                "BEGIN; SELECT id FROM servers WHERE id = {deaf} FOR UPDATE"
            ))
            .expect("hold the lease's row");
            held.send(()).expect("say the row is held");
            std::thread::sleep(Duration::from_millis(4500));
            sql.batch(&format!(
                "UPDATE servers SET lease_until = clock_timestamp() + interval '2 seconds'
                 WHERE id = {deaf};
                 COMMIT"
            ))
            .expect("renew the lease");
        })
    };
    holding.recv().expect("the row held");
    let took = timed(&env, &["token", "revoke", id_of(&token), "--yes"]);
    let ended = env.sql().value(&format!(
        "SELECT lease_until <= now() FROM servers WHERE id = {deaf}"
    ));
    holder.join().expect("the holding thread");
    assert_eq!(
        ended.as_deref(),
        Some("t"),
        "the revoke returned after {took:?}, while the evicted server's lease still held"
    );
    assert_eq!(server.auth(&token, None).status, 401);
    let evicted = env
        .sql()
        .value(&format!("SELECT evicted FROM servers WHERE id = {deaf}"));
    assert_eq!(evicted.as_deref(), Some("t"));
    assert!(took < HANG_GUARD, "the revoke took {took:?}");
}

/// Every renewal of the server's lease takes 0.6 s here (a trigger on `autheona.servers`),
/// longer than the 0.5 s between them, so the next one is due as soon as one returns: the
/// server must still read what it hears between them. A token's row deleted by hand is
/// announced by the trigger alone, and no command waits for the server: it must refuse the
/// token within a renewal or two, not answer it from memory for as long as renewals are slow.
#[test]
fn a_server_whose_renewals_are_slow_still_hears_every_change() {
    let Some((env, [server])) = leased() else {
        return;
    };
    let token = env.token("demo", "30");
    for _ in 0..2 {
        assert_eq!(server.auth(&token, None).status, 200);
    }
    let mut sql = env.sql();
    sql.batch(
        "CREATE FUNCTION public.slow_renewal() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN PERFORM pg_sleep(0.6); RETURN NEW; END $$;
         CREATE TRIGGER slow_renewal BEFORE UPDATE ON servers
             FOR EACH ROW EXECUTE FUNCTION public.slow_renewal();",
    )
    .expect("slow the renewals");
    // Renewals are slow from now on, and the server still holds its lease.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.auth(&token, None).status, 200);
    assert_eq!(leases(&env), 1, "{}", server.stderr());
    sql.execute("DELETE FROM tokens WHERE id = $1", &[id_of(&token)])
        .expect("delete the token's row");
    let deleted = Instant::now();
    while server.auth(&token, None).status == 200 {
        assert!(
            deleted.elapsed() < Duration::from_secs(10),
            "still answered from memory 10 s after its row was deleted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.auth(&token, None).status, 401);
    // It kept its lease through it.
    assert_eq!(leases(&env), 1, "{}", server.stderr());
}

/// A server that stops gives its lease back: no revoke waits for it after.
#[test]
fn a_stop_gives_the_lease_back() {
    let Some((env, [server])) = leased() else {
        return;
    };
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_eq!(
        env.sql().value("SELECT count(*) FROM servers").as_deref(),
        Some("0")
    );
}

/// A role not given the grants on `autheona.servers` and `autheona.changes` (a setup upgraded
/// to schema version 4 without them) still revokes: the running server refuses the token at
/// the next request (the change's own trigger told it), and the revoke says on stderr why it
/// waited the longer way, and what to grant.
#[test]
fn a_revoke_by_a_role_that_may_not_announce_still_refuses_the_token_and_says_why() {
    let Some((env, [server])) = leased() else {
        return;
    };
    let token = env.token("demo", "30");
    for _ in 0..2 {
        assert_eq!(server.auth(&token, None).status, 200);
    }
    let mut sql = env.sql();
    let database = sql
        .value("SELECT current_database()")
        .expect("the database's name");
    let role = Role(format!("{database}_app"), database);
    sql.batch(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}';
         GRANT USAGE ON SCHEMA autheona TO {role};
         GRANT SELECT ON ALL TABLES IN SCHEMA autheona TO {role};
         GRANT INSERT, DELETE ON autheona.projects, autheona.tokens TO {role};
         GRANT UPDATE (last_used_at, stops_at, replaced_by) ON autheona.tokens TO {role};
         GRANT INSERT ON autheona.events TO {role};
         REVOKE SELECT ON autheona.servers FROM {role};",
        role = role.0
    ))
    .expect("a role with the grants of schema version 3, made before autheona.servers");
    let revoke = env
        .cmd()
        .env("PGUSER", &role.0)
        .env("PGPASSWORD", PASSWORD)
        .args(["token", "revoke", id_of(&token), "--yes"])
        .assert()
        .success();
    assert_eq!(server.auth(&token, None).status, 401, "{}", server.stderr());
    // What a revoke prints, and the warning beside it.
    let output = revoke.get_output();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains(&format!("Revoked token {}.", id_of(&token))),
        "{stderr}"
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    for said in [
        "the running `autheona serve`s could not be told of the change, so this waited ",
        " s for their leases to end instead: ",
        "permission denied for table servers",
        "grant the role SELECT, INSERT, UPDATE and DELETE on autheona.servers, and USAGE and \
         SELECT on the sequence autheona.changes",
    ] {
        assert!(warnings[0].contains(said), "{said:?} in {stderr}");
    }
    assert!(!stderr.contains(PASSWORD), "the password shown: {stderr}");
    // The token is gone all the same, for every command.
    assert!(!verifies(&env, &token), "verify accepts the revoked token");

    // Granted what the warning says, the next revoke announces itself, with no warning.
    sql.batch(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON autheona.servers TO {role};
         GRANT USAGE, SELECT ON SEQUENCE autheona.changes TO {role};",
        role = role.0
    ))
    .expect("the grants the warning names");
    let next = env.token("demo", "30");
    assert_eq!(server.auth(&next, None).status, 200);
    let revoke = env
        .cmd()
        .env("PGUSER", &role.0)
        .env("PGPASSWORD", PASSWORD)
        .args(["token", "revoke", id_of(&next), "--yes"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&revoke.get_output().stderr).into_owned();
    assert!(!stderr.contains("warning:"), "{stderr}");
    assert_eq!(server.auth(&next, None).status, 401, "{}", server.stderr());
}

/// The password of the role that may not announce.
const PASSWORD: &str = "not-to-be-shown-5f1c";

/// A role made by a test in its database `.1`, dropped with it (its grants there first); left
/// in the throwaway cluster by a test that failed, whose server may be gone.
struct Role(String, String);

impl Drop for Role {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let Role(role, database) = self;
        let _ = crate::pg::connect(database).batch_execute(&format!("DROP OWNED BY {role}"));
        let _ = crate::pg::admin().batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
    }
}
