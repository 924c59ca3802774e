//! Statements that change several tokens at once, on different hosts at the same moment, never
//! deadlock: each locks its rows in the order of their ids. Without that, PostgreSQL ends one
//! of two such transactions ("deadlock detected") and its command fails with exit 3.
//!
//! Each test makes the bad interleaving happen on purpose: another session holds one row
//! (`FOR UPDATE`) while both commands start and each takes what it can, then lets go.
//!
//! And a server that stops while its write waits for a row leaves no row locked after it.

use std::process::Command;

use super::{PgEnv, finished, in_background, wait_for};
use crate::common::{created_token, faketime_lib, id_of};

/// How many backends of database `db` wait for a lock.
fn waiting(sql: &mut postgres::Client, db: &str) -> i64 {
    sql.query_one(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = $1 AND wait_event_type = 'Lock'",
        &[&db],
    )
    .expect("read pg_stat_activity")
    .get(0)
}

/// A session holding token `id`'s row until it commits.
pub(super) fn hold_row(env: &PgEnv, id: &str) -> postgres::Client {
    let mut holder = env.sql();
    holder
        .batch_execute("BEGIN")
        .expect("begin the holder's transaction");
    holder
        .query_one(
            "SELECT id FROM autheona.tokens WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .expect("lock the row");
    holder
}

/// 5,000 tokens more in `project`, and fresh statistics: the statements then find rows by
/// their indexes, as on a store of any size, rather than reading the whole small table in the
/// order it is stored in, which would be one order for all.
fn add_other_tokens(sql: &mut postgres::Client, project: &str) {
    sql.execute(
        "INSERT INTO autheona.tokens (id, project_id, secret_hash, created_at)
         SELECT 'other' || n, p.id, 'not a hash', 0
         FROM generate_series(1, 5000) AS n, autheona.projects p WHERE p.name = $1",
        &[&project],
    )
    .expect("add other tokens");
    sql.batch_execute("ANALYZE autheona.tokens")
        .expect("analyze autheona.tokens");
}

/// `project delete` on one host and, on another whose clock is later, a command that first
/// removes the tokens whose grace period is over. Both delete the same two rows: the delete by
/// project (in the order of creation), the removal by end (in the order of `stops_at`, here
/// the other way round).
#[test]
fn a_project_delete_and_another_hosts_removal_of_stopped_tokens_never_deadlock() {
    let Some(env) = PgEnv::new() else { return };
    env.run(&["project", "create", "leaving"]).success();
    let first = created_token(
        &env.run(&["token", "create", "-p", "leaving", "-e", "30"])
            .success(),
    );
    let second = created_token(
        &env.run(&["token", "create", "-p", "leaving", "-e", "30"])
            .success(),
    );
    let (first, second) = (id_of(&first).to_owned(), id_of(&second).to_owned());
    env.run(&["project", "create", "staying"]).success();
    let mut sql = env.sql();
    add_other_tokens(&mut sql, "staying");
    // Both are in a grace period that is not over on this host's clock: the first ends later.
    for (id, in_seconds) in [(&first, 1000), (&second, 500)] {
        sql.execute(
            "UPDATE autheona.tokens
             SET stops_at = extract(epoch FROM now())::bigint + $2, replaced_by = 'elsewhere'
             WHERE id = $1",
            &[id, &i64::from(in_seconds)],
        )
        .expect("schedule the token's end");
    }

    let holder = hold_row(&env, &first);
    let delete = in_background({
        let mut cmd = env.std_cmd();
        cmd.args(["project", "delete", "leaving", "--yes"]);
        cmd
    });
    wait_for(
        "project delete to wait for the held row",
        std::slice::from_ref(&delete),
        || (waiting(&mut sql, &env.db) >= 1).then_some(()),
    );
    // A host whose clock is past both ends: its command removes them first.
    let sweep = in_background({
        let mut cmd: Command = env.std_cmd();
        cmd.args(["project", "create", "arriving"])
            .env("FAKETIME", "+2000s")
            .env("LD_PRELOAD", faketime_lib());
        cmd
    });
    wait_for("the other command to wait too", &[], || {
        (waiting(&mut sql, &env.db) >= 2).then_some(())
    });
    holder.close().expect("commit the holder's transaction");

    let (delete, sweep) = (finished(delete), finished(sweep));
    for (what, run) in [("project delete", &delete), ("project create", &sweep)] {
        assert!(
            run.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let left = sql
        .query_one(
            "SELECT count(*) FROM autheona.tokens WHERE id = ANY($1)",
            &[&vec![first, second]],
        )
        .expect("count the tokens")
        .get::<_, i64>(0);
    assert_eq!(left, 0, "both tokens are gone");
}

/// Two servers (here two connections of the library's store, as each server has its own)
/// writing the last-used times of the same tokens, each in its own order (a server's are in
/// the order of its hash map).
#[test]
fn two_servers_writing_last_used_times_of_the_same_tokens_never_deadlock() {
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let more: Vec<String> = (0..2)
        .map(|_| {
            let token = created_token(
                &env.run(&["token", "create", "-p", "demo", "-e", "30"])
                    .success(),
            );
            id_of(&token).to_owned()
        })
        .collect();
    let (a, held, b) = (id_of(&token).to_owned(), more[0].clone(), more[1].clone());
    add_other_tokens(&mut env.sql(), "demo");
    let at = chrono::Utc::now().timestamp();
    let orders = [
        vec![(a.clone(), at), (held.clone(), at), (b.clone(), at)],
        vec![(b.clone(), at), (held.clone(), at), (a.clone(), at)],
    ];

    let holder = hold_row(&env, &held);
    let url = crate::pg::url(&env.db);
    let writers: Vec<_> = orders
        .into_iter()
        .map(|uses| {
            let url = url.clone();
            std::thread::spawn(move || -> Result<(), String> {
                autheona::store::link_postgres();
                let around = autheona::store::Surroundings {
                    var: &|name| std::env::var(name).ok(),
                    home: None,
                    os_user: &|| None,
                };
                let location = autheona::store::Location::parse(url.as_ref(), &around)?;
                let store = autheona::store::open(&location)
                    .map_err(|err| err.to_string())?
                    .ok_or("no store")?;
                store.record_uses(&uses).map_err(|err| err.to_string())
            })
        })
        .collect();
    let mut sql = env.sql();
    wait_for("both writers to wait", &[], || {
        (waiting(&mut sql, &env.db) >= 2).then_some(())
    });
    holder.close().expect("commit the holder's transaction");
    for writer in writers {
        writer
            .join()
            .expect("the writer's thread")
            .expect("last-used times written");
    }
    let recorded = sql
        .query_one(
            "SELECT count(*) FROM autheona.tokens WHERE last_used_at = $1",
            &[&at],
        )
        .expect("read last-used times")
        .get::<_, i64>(0);
    assert_eq!(recorded, 3);
}

/// A server that stops (here paused) while its write of last-used times waits for a token's
/// row leaves no row locked: the write is one statement, which the database commits once it
/// has run, without a word more from the server. A revoke of the token then goes through,
/// where it would otherwise wait for the lock and fail as busy.
#[test]
fn a_server_paused_during_its_last_used_write_leaves_no_row_locked() {
    use crate::serve::harness::{Addr, Server};
    let Some(env) = PgEnv::new() else { return };
    let token = env.demo_token();
    let server = Server::start_cmd(
        env.std_cmd(),
        Addr::Tcp(crate::serve::harness::free_port()),
        &[],
    );
    let holder = hold_row(&env, id_of(&token));
    assert_eq!(server.auth(&token, None).status, 200);
    let mut sql = env.sql();
    wait_for("serve's last-used write to wait for the row", &[], || {
        (waiting(&mut sql, &env.db) == 1).then_some(())
    });
    server.pause();
    holder.close().expect("commit the holder's transaction");
    wait_for("serve's write to run", &[], || {
        (waiting(&mut sql, &env.db) == 0).then_some(())
    });
    let revoke = env
        .cmd()
        .args(["token", "revoke", id_of(&token), "--yes"])
        .output()
        .expect("run the revoke");
    server.resume();
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    let left: i64 = sql
        .query_one(
            "SELECT count(*) FROM autheona.tokens WHERE id = $1",
            &[&id_of(&token)],
        )
        .expect("read the token's row")
        .get(0);
    assert_eq!(left, 0, "the revoked token's row is gone");
    assert_eq!(server.auth(&token, None).status, 401);
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
}
