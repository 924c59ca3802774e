//! Reliability under concurrency and crashes: many processes on one database, processes racing
//! to create it, verify racing revoke, and processes killed (SIGKILL) at random moments.
//!
//! Every command is the real binary in its own process (on PostgreSQL each with a connection
//! of its own, as separate hosts would have). The counts are bounded so that the whole file
//! runs in seconds, alongside the other tests.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::common::{
    Backend, HANG_GUARD, Process, Run, StoreSql, TestEnv, backend, current_schema_version, forge,
    id_of, listed, output, printed_token,
};

fn run(env: &TestEnv, args: &[&str]) -> Run {
    let mut cmd = env.std_cmd();
    cmd.args(args);
    output(cmd)
}

/// `verify` with the token in `AUTHEONA_TOKEN`.
fn verify(env: &TestEnv, token: &str) -> Run {
    let mut cmd = env.std_cmd();
    cmd.arg("verify").env("AUTHEONA_TOKEN", token);
    output(cmd)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A one-line account of a finished command, for assertion messages.
fn describe(what: &str, out: &Run) -> String {
    format!(
        "{what}: {} (stdout {:?}, stderr {:?})",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Whether stderr shows lock contention, in any wording SQLite or autheona uses.
fn mentions_contention(stderr: &[u8]) -> bool {
    let err = text(stderr).to_lowercase();
    err.contains("busy") || err.contains("locked")
}

/// The ids in a `token list --json` output; panics on anything else.
fn ids_in_list(what: &str, out: &Run) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{}: not JSON ({err})", describe(what, out)));
    json.as_array()
        .unwrap_or_else(|| panic!("{}: not a JSON array", describe(what, out)))
        .iter()
        .map(|t| t["id"].as_str().expect("an id string").to_owned())
        .collect()
}

fn token_ids(conn: &mut StoreSql) -> BTreeSet<String> {
    conn.rows("SELECT id FROM tokens")
        .into_iter()
        .map(|row| row[0].clone().expect("an id"))
        .collect()
}

/// The store as a killed command left it: a read-only connection, once the server (on
/// PostgreSQL) has ended the killed command's session, so that nothing it sent can still land.
fn after_the_kill(env: &TestEnv) -> StoreSql {
    let mut conn = env.read_only_sql();
    conn.wait_until_alone();
    conn
}

// ---------------------------------------------------------------------------------------------
// 1. Eight processes at once, mixed operations on one database.

const WORKERS: usize = 8;
const OPS_PER_WORKER: usize = 50;

/// What one worker did: its tokens still in force, those it revoked, and what went wrong.
#[derive(Default)]
struct WorkerLog {
    live: Vec<String>,
    revoked: Vec<String>,
    failures: Vec<String>,
    commands: usize,
    slowest: Duration,
}

impl WorkerLog {
    /// Records a finished command; a failure when its exit code is not `expected` or its
    /// stderr speaks of contention.
    fn check(&mut self, what: &str, out: &Run, expected: i32, started: Instant) -> bool {
        self.commands += 1;
        self.slowest = self.slowest.max(started.elapsed());
        let mut ok = true;
        if out.status.code() != Some(expected) {
            self.failures
                .push(format!("expected exit {expected}: {}", describe(what, out)));
            ok = false;
        }
        if mentions_contention(&out.stderr) {
            self.failures
                .push(format!("lock contention reported: {}", describe(what, out)));
            ok = false;
        }
        ok
    }
}

fn worker(env: &TestEnv, n: usize, start: &Barrier) -> WorkerLog {
    let mut log = WorkerLog::default();
    start.wait();
    for op in 0..OPS_PER_WORKER {
        let roll = rand::random_range(0..100);
        let started = Instant::now();
        if log.live.is_empty() || roll < 35 {
            let out = run(env, &["token", "create", "-p", "P", "-e", "30"]);
            let what = format!("worker {n} op {op}: token create");
            if log.check(&what, &out, 0, started) {
                match printed_token(&out.stdout) {
                    Some(token) => log.live.push(token),
                    None => log.failures.push(format!(
                        "no token line on stdout: {}",
                        describe(&what, &out)
                    )),
                }
            }
        } else if roll < 65 {
            // Mostly a live token of ours; sometimes one we revoked, which must stay dead.
            if !log.revoked.is_empty() && rand::random_range(0..4) == 0 {
                let token = log.revoked[rand::random_range(0..log.revoked.len())].clone();
                let what = format!("worker {n} op {op}: verify revoked {}", id_of(&token));
                let out = verify(env, &token);
                if log.check(&what, &out, 1, started) && out.stdout != b"invalid: unknown\n" {
                    log.failures.push(format!(
                        "a revoked token is not `invalid: unknown`: {}",
                        describe(&what, &out)
                    ));
                }
            } else {
                let token = log.live[rand::random_range(0..log.live.len())].clone();
                let what = format!("worker {n} op {op}: verify live {}", id_of(&token));
                let out = verify(env, &token);
                let expected = format!("valid: token {}", id_of(&token));
                if log.check(&what, &out, 0, started) && !text(&out.stdout).starts_with(&expected) {
                    log.failures.push(format!(
                        "a live token does not verify as `{expected} ...`: {}",
                        describe(&what, &out)
                    ));
                }
            }
        } else if roll < 80 {
            let out = run(env, &["token", "list", "--json"]);
            let what = format!("worker {n} op {op}: token list --json");
            if log.check(&what, &out, 0, started) {
                // Only this worker changes its own tokens, so the list must agree on them.
                let listed: HashSet<String> = ids_in_list(&what, &out).into_iter().collect();
                for token in &log.live {
                    if !listed.contains(id_of(token)) {
                        log.failures.push(format!(
                            "{what}: live token {} is missing from the list",
                            id_of(token)
                        ));
                    }
                }
                for token in &log.revoked {
                    if listed.contains(id_of(token)) {
                        log.failures.push(format!(
                            "{what}: revoked token {} is still listed",
                            id_of(token)
                        ));
                    }
                }
            }
        } else {
            let token = log.live.swap_remove(rand::random_range(0..log.live.len()));
            let what = format!("worker {n} op {op}: token revoke {}", id_of(&token));
            let out = run(env, &["token", "revoke", id_of(&token), "--yes"]);
            if log.check(&what, &out, 0, started) {
                log.revoked.push(token);
            } else {
                // Unknown outcome: neither list may be held to it.
                log.failures.push(format!(
                    "{what}: outcome unknown, token dropped from checks"
                ));
            }
        }
    }
    log
}

#[test]
fn eight_processes_mixing_every_operation_agree_on_the_final_state() {
    let env = TestEnv::new();
    env.project("P");
    let started = Instant::now();
    let barrier = Barrier::new(WORKERS);
    let logs: Vec<WorkerLog> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|n| {
                let env = &env;
                let barrier = &barrier;
                scope.spawn(move || worker(env, n, barrier))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let concurrent = started.elapsed();

    let failures: Vec<&String> = logs.iter().flat_map(|l| &l.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failures among {} concurrent commands; the first ones:\n{}",
        failures.len(),
        logs.iter().map(|l| l.commands).sum::<usize>(),
        failures
            .iter()
            .take(10)
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    let live: Vec<&String> = logs.iter().flat_map(|l| &l.live).collect();
    let revoked: Vec<&String> = logs.iter().flat_map(|l| &l.revoked).collect();

    // The list holds exactly the tokens created and not revoked, each once.
    let out = run(&env, &["token", "list", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("final list", &out)
    );
    let listed = ids_in_list("final list", &out);
    let listed_set: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(
        listed.len(),
        listed_set.len(),
        "the final list repeats an id: {listed:?}"
    );
    let expected: BTreeSet<&str> = live.iter().map(|t| id_of(t)).collect();
    assert_eq!(
        listed_set,
        expected,
        "the final list differs from the tokens created and not revoked: \
         listed but not expected {:?}, expected but not listed {:?}",
        listed_set.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&listed_set).collect::<Vec<_>>()
    );

    // Every live token verifies and every revoked one is unknown, checked in parallel.
    let checks: Vec<(&String, bool)> = live
        .iter()
        .map(|t| (*t, true))
        .chain(revoked.iter().map(|t| (*t, false)))
        .collect();
    let wrong: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = checks
            .chunks(checks.len().div_ceil(4).max(1))
            .map(|chunk| {
                let env = &env;
                scope.spawn(move || {
                    let mut wrong = Vec::new();
                    for (token, valid) in chunk {
                        let out = verify(env, token);
                        let right = if *valid {
                            out.status.code() == Some(0)
                        } else {
                            out.status.code() == Some(1) && out.stdout == b"invalid: unknown\n"
                        };
                        if !right || mentions_contention(&out.stderr) {
                            let state = if *valid { "live" } else { "revoked" };
                            wrong.push(describe(
                                &format!("final verify of {state} token {}", id_of(token)),
                                &out,
                            ));
                        }
                    }
                    wrong
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        wrong.is_empty(),
        "final verification:\n{}",
        wrong.join("\n")
    );
    assert_eq!(env.integrity(), ["ok"], "integrity_check");
    eprintln!(
        "reliability/mixed: {} commands by {WORKERS} processes at once in {concurrent:.2?} \
         (slowest {:.2?}); {} live and {} revoked tokens checked; total {:.2?}",
        logs.iter().map(|l| l.commands).sum::<usize>(),
        logs.iter().map(|l| l.slowest).max().unwrap(),
        live.len(),
        revoked.len(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Eight first commands at once on a database that does not exist yet.

/// How a first command may end, racing `project create p0` on a database that does not exist
/// yet: each either finds no database, or finds it, with or without project p0. (On
/// PostgreSQL, a database without autheona's schema yet, which the listing commands refuse
/// too, as every command but `project create` does.)
fn first_command_ended_as_documented(
    env: &TestEnv,
    what: &str,
    args: &[String],
    out: &Run,
) -> bool {
    let code = out.status.code();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let one_error = |needle: &str| {
        let lines: Vec<&str> = stderr.lines().collect();
        stdout.is_empty()
            && (lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")))
            && lines[0].starts_with("error: ")
            && lines[0].contains(needle)
    };
    let no_database = || code == Some(3) && one_error(&env.missing_store_error());
    let refused_to_list = || backend() == Backend::Postgres && no_database();
    let json = || serde_json::from_slice::<serde_json::Value>(&out.stdout).ok();
    match args.iter().take(2).map(String::as_str).collect::<Vec<_>>()[..] {
        ["project", "create"] => code == Some(0) && stdout.is_empty(),
        ["project", "list"] | ["token", "list"] => {
            (code == Some(0) && json().is_some_and(|json| json.as_array().is_some()))
                || refused_to_list()
        }
        ["token", "prune"] => {
            (code == Some(0) && json().is_some_and(|json| json["dry_run"] == true))
                || refused_to_list()
        }
        ["token", "create"] => {
            no_database()
                || (code == Some(1) && one_error("p0"))
                || (code == Some(0) && stdout.trim_end().len() == 66)
        }
        ["token", "revoke"] => no_database() || (code == Some(1) && one_error("AAAAAAAAAAAA")),
        ["verify", ..] => no_database() || (code == Some(1) && stdout == "invalid: unknown\n"),
        ["scan", ..] => code == Some(1) && stdout.contains("token AAAAAAAAAAAA"),
        _ => panic!("{what}: no expectation for this command"),
    }
}

fn first_command_race(round: usize) {
    let env = TestEnv::new();
    let forged = forge("AAAAAAAAAAAA", &"B".repeat(43));
    std::fs::write(env.dir().join("tokens.txt"), format!("{forged}\n")).unwrap();
    // Eight different commands; only the first creates the database, the others find it or
    // not (racing creators: storage::processes_racing_to_create_a_fresh_database_all_succeed).
    let commands: Vec<Vec<String>> = [
        &["project", "create", "p0"][..],
        &["project", "list", "--json"],
        &["token", "list", "--json"],
        &["token", "prune", "--expired", "--dry-run", "--json"],
        &["token", "create", "-p", "p0", "-e", "30"],
        &["token", "revoke", "AAAAAAAAAAAA", "--yes"],
        &["verify"],
        &["scan", "tokens.txt"],
    ]
    .iter()
    .map(|args| args.iter().map(|&a| a.to_owned()).collect())
    .collect();
    let distinct: HashSet<(&str, &str)> = commands
        .iter()
        .map(|args| (args[0].as_str(), args.get(1).map_or("", String::as_str)))
        .collect();
    assert_eq!(distinct.len(), 8, "eight different commands");
    let barrier = Barrier::new(commands.len());
    let outputs: Vec<(&[String], Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = commands
            .iter()
            .map(|args| {
                let env = &env;
                let barrier = &barrier;
                let forged = &forged;
                scope.spawn(move || {
                    let mut cmd = env.std_cmd();
                    cmd.args(args).env("AUTHEONA_TOKEN", forged);
                    barrier.wait();
                    (&args[..], output(cmd))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut created_tokens = 0;
    for (args, out) in &outputs {
        let what = format!("round {round}: `{}` as a first command", args.join(" "));
        assert!(
            first_command_ended_as_documented(&env, &what, args, out),
            "{}",
            describe(&what, out)
        );
        assert!(
            !mentions_contention(&out.stderr),
            "{}",
            describe(&what, out)
        );
        if args.starts_with(&["token".to_owned(), "create".to_owned()]) && out.status.success() {
            created_tokens += 1;
        }
    }
    let tokens = env.read_only_sql().count("SELECT count(*) FROM tokens");
    assert_eq!(tokens, created_tokens, "round {round}: tokens");

    check_fresh_schema(&env, round);
    if backend() == Backend::Postgres {
        return;
    }

    // The losers of the race leave no scratch file behind.
    let dir = env.db().parent().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("autheona.db"))
        .collect();
    names.sort();
    assert!(
        names.is_empty(),
        "round {round}: files left beside the database: {names:?}"
    );
}

/// One schema, once: version, (on SQLite) application id and WAL, tables, and project p0.
fn check_fresh_schema(env: &TestEnv, round: usize) {
    let mut conn = env.read_only_sql();
    assert_eq!(
        env.schema_version(),
        current_schema_version(),
        "round {round}: schema version"
    );
    let pairs = |conn: &mut StoreSql, query: &str| -> Vec<String> {
        conn.rows(query)
            .into_iter()
            .map(|row| {
                format!(
                    "{} {}",
                    row[0].as_deref().unwrap(),
                    row[1].as_deref().unwrap()
                )
            })
            .collect()
    };
    let (schema, expected) = match backend() {
        Backend::Sqlite => {
            let pragma =
                |conn: &mut StoreSql, name: &str| conn.value(&format!("PRAGMA {name}")).unwrap();
            assert_eq!(
                pragma(&mut conn, "application_id"),
                0x4155_5448.to_string(),
                "round {round}: application_id"
            );
            assert_eq!(
                pragma(&mut conn, "journal_mode"),
                "wal",
                "round {round}: journal mode"
            );
            let schema = pairs(
                &mut conn,
                "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY 1, 2",
            );
            let expected = [
                "index events_by_project",
                "index events_by_token",
                "index tokens_by_creation",
                "index tokens_by_project_and_creation",
                "index tokens_by_stop",
                "table events",
                "table projects",
                "table tokens",
                "trigger events_are_not_deleted",
                "trigger events_are_not_replaced",
                "trigger events_are_not_updated",
                "trigger token_stop_is_set_once",
                "trigger tokens_are_immutable",
            ];
            (schema, expected.to_vec())
        }
        Backend::Postgres => {
            let schema = pairs(&mut conn, crate::common::POSTGRES_SCHEMA_OBJECTS);
            let expected = [
                "function announce_change",
                "function refuse_event_change",
                "function refuse_stop_change",
                "function refuse_token_change",
                "relation S changes",
                "relation S events_seq_seq",
                "relation S projects_id_seq",
                "relation S servers_id_seq",
                "relation S tokens_seq_seq",
                "relation i events_by_project",
                "relation i events_by_token",
                "relation i events_pkey",
                "relation i projects_name_key",
                "relation i projects_pkey",
                "relation i servers_pkey",
                "relation i tokens_by_creation",
                "relation i tokens_by_project_and_creation",
                "relation i tokens_by_stop",
                "relation i tokens_id_key",
                "relation i tokens_pkey",
                "relation r events",
                "relation r projects",
                "relation r schema_version",
                "relation r servers",
                "relation r tokens",
                "trigger events_are_append_only",
                "trigger events_are_not_truncated",
                "trigger projects_change_announced",
                "trigger token_stop_is_set_once",
                "trigger tokens_are_immutable",
                "trigger tokens_change_announced",
                "trigger tokens_truncate_announced",
            ];
            (schema, expected.to_vec())
        }
    };
    assert_eq!(
        schema, expected,
        "round {round}: the schema should exist exactly once"
    );
    let projects: Vec<Option<String>> = conn
        .rows("SELECT name FROM projects ORDER BY name")
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(projects, [Some("p0".to_owned())], "round {round}: projects");
    assert_eq!(conn.integrity(), ["ok"], "round {round}: integrity_check");
}

#[test]
fn eight_different_first_commands_at_once_make_one_database() {
    let started = Instant::now();
    for round in 0..5 {
        first_command_race(round);
    }
    eprintln!(
        "reliability/first-command: 5 rounds of 8 in {:.2?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Verify racing revoke.

struct Attempt {
    spawned: Instant,
    ended: Instant,
    out: Run,
}

/// Sets the flag when dropped, also while unwinding: a failing main thread stops the loop.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Verifies `token` in a loop while the main thread revokes it; returns every attempt with the
/// moments the revoke was started and returned.
fn verify_during_revoke(env: &TestEnv, token: &str) -> (Vec<Attempt>, Instant, Instant) {
    let stop = AtomicBool::new(false);
    let attempts: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
    let (revoke_started, revoke_returned) = std::thread::scope(|scope| {
        let verifier = scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                // Taken before the process exists: "spawned after" is then certain.
                let spawned = Instant::now();
                let out = verify(env, token);
                let ended = Instant::now();
                attempts.lock().unwrap().push(Attempt {
                    spawned,
                    ended,
                    out,
                });
            }
        });
        let _stop = StopOnDrop(&stop);
        let deadline = Instant::now() + HANG_GUARD;
        let wait_for = |what: &str, enough: &dyn Fn(&[Attempt]) -> bool| {
            while !enough(&attempts.lock().unwrap()) {
                assert!(
                    !verifier.is_finished() && Instant::now() < deadline,
                    "the verify loop stopped or stalled while waiting for {what}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        // Let a few verifies succeed, then revoke at a random moment of one of them.
        let before = rand::random_range(3..8);
        wait_for("the first verifies", &|a| a.len() >= before);
        std::thread::sleep(Duration::from_micros(rand::random_range(0..8000)));
        let started = Instant::now();
        let out = run(env, &["token", "revoke", id_of(token), "--yes"]);
        let returned = Instant::now();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            describe("revoke while verify runs", &out)
        );
        // Enough verifies that surely began after the revoke returned.
        wait_for("verifies after the revoke", &|a| {
            a.iter().filter(|a| a.spawned > returned).count() >= 8
        });
        (started, returned)
    });
    (
        attempts.into_inner().unwrap(),
        revoke_started,
        revoke_returned,
    )
}

#[test]
fn no_verify_started_after_revoke_returned_accepts_the_token() {
    let env = TestEnv::new();
    env.project("P");
    let started = Instant::now();
    let mut overlapping = (0, 0);
    for round in 0..5 {
        let token = env.token("P", "30");
        let (attempts, revoke_started, revoke_returned) = verify_during_revoke(&env, &token);
        let id = id_of(&token);
        for (n, a) in attempts.iter().enumerate() {
            let what = format!(
                "round {round}, verify #{n} of {id} (spawned {:?} after the revoke started)",
                a.spawned.saturating_duration_since(revoke_started)
            );
            assert!(
                !mentions_contention(&a.out.stderr),
                "{}",
                describe(&what, &a.out)
            );
            if a.spawned > revoke_returned {
                assert!(
                    a.out.status.code() == Some(1) && a.out.stdout == b"invalid: unknown\n",
                    "a verify spawned {:?} after `token revoke` returned accepted the token: {}",
                    a.spawned - revoke_returned,
                    describe(&what, &a.out)
                );
            } else if a.ended < revoke_started {
                assert_eq!(
                    a.out.status.code(),
                    Some(0),
                    "a verify that ended before the revoke started rejected the token: {}",
                    describe(&what, &a.out)
                );
            } else {
                // Overlapping the revoke: either answer, but only these two.
                match a.out.status.code() {
                    Some(0) => overlapping.0 += 1,
                    Some(1) => {
                        assert_eq!(
                            a.out.stdout,
                            b"invalid: unknown\n",
                            "{}",
                            describe(&what, &a.out)
                        );
                        overlapping.1 += 1;
                    }
                    _ => panic!(
                        "a verify overlapping the revoke failed: {}",
                        describe(&what, &a.out)
                    ),
                }
            }
        }
        assert!(
            attempts
                .iter()
                .any(|a| a.ended < revoke_started && a.out.status.code() == Some(0)),
            "round {round}: no verify succeeded before the revoke, so the race proved nothing"
        );
    }
    eprintln!(
        "reliability/verify-vs-revoke: 5 rounds in {:.2?}; verifies overlapping a revoke: \
         {} valid, {} unknown",
        started.elapsed(),
        overlapping.0,
        overlapping.1
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Processes killed at random moments.

/// What the tests know about a token whose value was printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Never revoked, or a killed revoke left it in place: it must verify.
    Live,
    /// Revoked by a revoke that exited 0, or found gone after a killed revoke: it must never
    /// verify again.
    Gone,
}

const KILL_ROUNDS: usize = 120;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs `args`, kills it (SIGKILL) if it still runs after `delay`, and returns how it ended.
fn run_and_kill(env: &TestEnv, args: &[&str], delay: Duration) -> Run {
    let mut cmd = env.std_cmd();
    cmd.args(args);
    Process::new(cmd).kill_after(delay).run()
}

fn killed(out: &Run) -> bool {
    out.status.signal() == Some(libc::SIGKILL)
}

#[test]
fn processes_killed_at_random_moments_never_corrupt_or_undo() {
    let env = TestEnv::new();
    env.project("P");
    let started = Instant::now();

    // How long the commands take here, so that kills land before, during and after the work.
    // Measured on a database of its own, so that the one under test starts empty.
    let calibration = TestEnv::new();
    calibration.project("P");
    let mut creates = Vec::new();
    let mut revokes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let token = calibration.token("P", "30");
        creates.push(t.elapsed());
        let t = Instant::now();
        calibration
            .run(&["token", "revoke", id_of(&token), "--yes"])
            .success();
        revokes.push(t.elapsed());
    }
    drop(calibration);
    let (create_time, revoke_time) = (median(creates), median(revokes));
    // Half again as long as the command: about two kills in three land while it works.
    let window_us = |time: Duration| time.mul_f64(1.5).as_micros().max(2000) as u64;
    let (create_window, revoke_window) = (window_us(create_time), window_us(revoke_time));

    let mut fates: HashMap<String, Fate> = HashMap::new(); // token -> fate
    let mut printed_ids: HashSet<String> = HashSet::new();
    let mut orphans: Vec<Orphan> = Vec::new();
    let mut known_rows: BTreeSet<String> = BTreeSet::new();
    let (mut create_kills, mut revoke_kills) = (0, 0);
    // Creates killed with nothing to show, killed after printing, finished before the kill.
    let (mut create_killed_silent, mut create_killed_printed, mut create_finished) = (0, 0, 0);
    // Revokes killed before the delete, killed after it, finished before the kill.
    let (mut revoke_killed_kept, mut revoke_killed_deleted, mut revoke_finished) = (0, 0, 0);

    for round in 0..KILL_ROUNDS {
        let creating = round % 2 == 0;
        let window = if creating {
            create_window
        } else {
            revoke_window
        };
        let delay = Duration::from_micros(rand::random_range(0..window));
        let mut target = None;
        let out = if creating {
            create_kills += 1;
            run_and_kill(&env, &["token", "create", "-p", "P", "-e", "30"], delay)
        } else {
            // A live token to revoke; when killed creates left none, make one.
            let live: Vec<&String> = fates
                .iter()
                .filter(|(_, f)| **f == Fate::Live)
                .map(|(t, _)| t)
                .collect();
            let token = if live.is_empty() {
                let token = env.token("P", "30");
                printed_ids.insert(id_of(&token).to_owned());
                known_rows.insert(id_of(&token).to_owned());
                fates.insert(token.clone(), Fate::Live);
                token
            } else {
                live[rand::random_range(0..live.len())].clone()
            };
            revoke_kills += 1;
            let out = run_and_kill(&env, &["token", "revoke", id_of(&token), "--yes"], delay);
            target = Some(token);
            out
        };
        let what = format!(
            "round {round}: `token {}` sent SIGKILL after {delay:?}",
            if creating { "create" } else { "revoke" }
        );
        let was_killed = killed(&out);
        if !was_killed {
            assert_eq!(
                out.status.code(),
                Some(0),
                "a command that was not killed failed: {}",
                describe(&what, &out)
            );
        }
        assert!(
            !mentions_contention(&out.stderr),
            "{}",
            describe(&what, &out)
        );

        // The store is sound after every kill.
        let mut conn = after_the_kill(&env);
        assert_eq!(conn.integrity(), ["ok"], "integrity_check after {what}");
        let rows = token_ids(&mut conn);
        drop(conn);

        let mut touched = Vec::new();
        if creating {
            let printed = printed_token(&out.stdout);
            assert!(
                printed.is_some() || out.stdout.is_empty(),
                "stdout is neither empty nor one whole token: {}",
                describe(&what, &out)
            );
            if !was_killed {
                assert!(printed.is_some(), "{}", describe(&what, &out));
            }
            match (was_killed, printed.is_some()) {
                (false, _) => create_finished += 1,
                (true, true) => create_killed_printed += 1,
                (true, false) => create_killed_silent += 1,
            }
            if let Some(token) = printed {
                assert!(
                    rows.contains(id_of(&token)),
                    "a token printed on stdout has no row: {}",
                    describe(&what, &out)
                );
                printed_ids.insert(id_of(&token).to_owned());
                fates.insert(token.clone(), Fate::Live);
                touched.push(token);
            }
            // Rows that appeared in this round and were never printed came from this process.
            for id in rows.difference(&known_rows) {
                if !printed_ids.contains(id) {
                    assert!(
                        was_killed,
                        "row {id} appeared, its token never reached stdout, and the process \
                         was not killed: {}",
                        describe(&what, &out)
                    );
                    orphans.push(Orphan {
                        id: id.clone(),
                        round,
                        delay,
                        killed: was_killed,
                    });
                }
            }
            known_rows = rows.clone();
        } else {
            let token = target.unwrap();
            let present = rows.contains(id_of(&token));
            if was_killed {
                if present {
                    revoke_killed_kept += 1;
                } else {
                    revoke_killed_deleted += 1;
                }
            } else {
                revoke_finished += 1;
                assert!(
                    !present,
                    "a revoke that exited 0 left its token in the table: {}",
                    describe(&what, &out)
                );
            }
            // A dead process cannot finish later: what is there now is final.
            let fate = if present { Fate::Live } else { Fate::Gone };
            fates.insert(token.clone(), fate);
            let mut others_before = known_rows.clone();
            let mut others_now = rows.clone();
            others_before.remove(id_of(&token));
            others_now.remove(id_of(&token));
            assert_eq!(
                others_before,
                others_now,
                "a revoke of {} changed other rows: {}",
                id_of(&token),
                describe(&what, &out)
            );
            known_rows = rows.clone();
            touched.push(token);
        }

        // Every printed token is where its fate says, in the table...
        for (token, fate) in &fates {
            assert_eq!(
                rows.contains(id_of(token)),
                *fate == Fate::Live,
                "after {what}: token {} should be {fate:?}",
                id_of(token)
            );
        }
        // ...and by `verify`: the tokens of this round, one other live and one gone token.
        for fate in [Fate::Live, Fate::Gone] {
            let others: Vec<&String> = fates
                .iter()
                .filter(|(t, f)| **f == fate && !touched.contains(t))
                .map(|(t, _)| t)
                .collect();
            if !others.is_empty() {
                touched.push(others[rand::random_range(0..others.len())].clone());
            }
        }
        for token in &touched {
            check_verify(&env, token, fates[token], &what);
        }
    }

    // At the end, every printed token by `verify`, and the list agrees with the table.
    for (token, fate) in &fates {
        check_verify(&env, token, *fate, "the end");
    }
    let out = run(&env, &["token", "list", "--json"]);
    let listed: BTreeSet<String> = ids_in_list("final list", &out).into_iter().collect();
    let expected: BTreeSet<String> = fates
        .iter()
        .filter(|(_, f)| **f == Fate::Live)
        .map(|(t, _)| id_of(t).to_owned())
        .chain(orphans.iter().map(|o| o.id.clone()))
        .collect();
    assert_eq!(listed, expected, "final list: live tokens and orphans");

    let killed_creates = create_killed_silent + create_killed_printed;
    eprintln!(
        "reliability/kill: {KILL_ROUNDS} kills in {:.2?}; create takes {create_time:.2?} \
         (kills after 0..{create_window} us), revoke {revoke_time:.2?} (0..{revoke_window} us)\n  \
         creates: {create_kills} kills: {killed_creates} died of SIGKILL ({create_killed_silent} \
         with nothing printed, {create_killed_printed} after printing), {create_finished} had \
         finished\n  revokes: {revoke_kills} kills: {} died of SIGKILL \
         ({revoke_killed_kept} before the delete, {revoke_killed_deleted} after it), \
         {revoke_finished} had finished\n  printed tokens: {}; orphan rows (token never \
         printed): {} = {:.1}% of create kills, {:.1}% of creates that died: {orphans:?}",
        started.elapsed(),
        revoke_killed_kept + revoke_killed_deleted,
        printed_ids.len(),
        orphans.len(),
        100.0 * orphans.len() as f64 / create_kills as f64,
        100.0 * orphans.len() as f64 / killed_creates.max(1) as f64,
    );
    assert!(
        orphans.iter().all(|o| o.killed),
        "orphans from processes that were not killed: {orphans:?}"
    );
}

/// A token row whose value never reached stdout: possible only when the create was killed
/// between its commit and its write to stdout.
#[derive(Debug)]
#[allow(dead_code)] // Read through Debug, in the report.
struct Orphan {
    id: String,
    round: usize,
    delay: Duration,
    killed: bool,
}

/// Runs `verify` on a token of known fate.
fn check_verify(env: &TestEnv, token: &str, fate: Fate, when: &str) {
    let out = verify(env, token);
    let what = format!("verify of {} ({fate:?}) after {when}", id_of(token));
    match fate {
        Fate::Live => assert_eq!(
            out.status.code(),
            Some(0),
            "a printed, unrevoked token does not verify: {}",
            describe(&what, &out)
        ),
        Fate::Gone => assert!(
            out.status.code() == Some(1) && out.stdout == b"invalid: unknown\n",
            "a revoked token verifies again (a revoke was undone): {}",
            describe(&what, &out)
        ),
    }
    assert!(
        !mentions_contention(&out.stderr),
        "{}",
        describe(&what, &out)
    );
}

/// Whether `verify` accepts the token: valid (0) or not (1); anything else fails the test.
fn accepted(env: &TestEnv, token: &str) -> bool {
    let out = verify(env, token);
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("{}", describe("verify", &out)),
    }
}

/// `token rotate` killed at random moments, at once and with a grace period in turn: the
/// database stays sound, every token that reached stdout works, and at least one token of the
/// pair always does, never neither. The rotation inserts the new token (durably), prints it,
/// and only then revokes the old one or schedules its end, so a kill may leave both working:
/// the new one perhaps unseen (a row nobody saw, listed for the user to revoke), never a
/// printed token that does not work.
#[test]
fn rotations_killed_at_random_moments_always_leave_a_working_token() {
    const ROUNDS: usize = 40;
    let env = TestEnv::new();
    env.project("P");
    let calibration: Vec<Duration> = (0..3)
        .map(|_| {
            let token = env.token("P", "30");
            let t = Instant::now();
            env.run(&["token", "rotate", id_of(&token), "--yes"])
                .success();
            t.elapsed()
        })
        .collect();
    let window = median(calibration).mul_f64(1.5).as_micros().max(2000) as u64;
    // Killed with nothing written; with the new token saved but not shown; shown, with the old
    // one not yet retired; finished (or killed once it was all done).
    let (mut unchanged, mut unseen, mut both, mut done) = (0, 0, 0, 0);
    let mut live = env.token("P", "30");
    for round in 0..ROUNDS {
        let grace = round % 2 == 1;
        let rows_before = token_ids(&mut env.read_only_sql());
        let delay = Duration::from_micros(rand::random_range(0..window));
        let mut args = vec!["token", "rotate", id_of(&live), "--yes"];
        if grace {
            args.extend(["--grace", "1h"]);
        }
        let out = run_and_kill(&env, &args, delay);
        let what = describe(
            &format!(
                "round {round}: `{}` sent SIGKILL after {delay:?}",
                args.join(" ")
            ),
            &out,
        );
        if !killed(&out) {
            assert!(out.status.success(), "{what}");
        }
        let mut conn = after_the_kill(&env);
        assert_eq!(conn.integrity(), ["ok"], "integrity_check after {what}");
        let rows = token_ids(&mut conn);
        let added: Vec<&String> = rows.difference(&rows_before).collect();
        assert!(added.len() <= 1, "{what}: rows added {added:?}");
        let old_works = accepted(&env, &live);
        match printed_token(&out.stdout) {
            Some(new) => {
                assert!(
                    accepted(&env, &new),
                    "{what}: the printed token does not work"
                );
                assert_eq!(added, [id_of(&new)], "{what}");
                let retired = if grace {
                    // In its grace period it works on, and shows its replacement.
                    let old = listed(&env, id_of(&live));
                    assert!(old_works, "{what}: the old token stopped within its grace");
                    !old["replaced_by"].is_null()
                } else {
                    !old_works
                };
                match (retired, killed(&out)) {
                    (true, _) => done += 1,
                    (false, true) => both += 1,
                    (false, false) => panic!("{what}: the old token was not retired"),
                }
                live = new;
            }
            None => {
                assert!(killed(&out), "{what}");
                assert!(old_works, "{what}: neither token works");
                assert!(rows.contains(id_of(&live)), "{what}");
                if added.is_empty() {
                    unchanged += 1;
                } else {
                    // Saved, killed before it was shown: nobody holds it, and it is listed.
                    listed(&env, added[0]);
                    unseen += 1;
                }
            }
        }
    }
    eprintln!(
        "{ROUNDS} killed rotations: {unchanged} changed nothing, {unseen} left a token unseen, \
         {both} left both working, {done} finished"
    );
    assert!(
        unchanged > 0 && done > 0,
        "the kills should land both before the insert and after the end"
    );
}

/// 8 `token create -p p` race `project delete p --yes` followed by `project create q`, round
/// after round: no token ever lands in q (which could take p's row id), every create either
/// prints a token of p or is refused with the documented message (exit 1), never exit 3.
#[test]
fn tokens_created_while_their_project_is_deleted_never_land_in_another() {
    let mut refused = 0;
    for round in 0..20 {
        let env = TestEnv::new();
        assert!(run(&env, &["project", "create", "p"]).status.success());
        let start = Barrier::new(9);
        let (creates, swap) = std::thread::scope(|scope| {
            let creates: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        run(&env, &["token", "create", "-p", "p", "-e", "never"])
                    })
                })
                .collect();
            let swap = scope.spawn(|| {
                start.wait();
                let delete = run(&env, &["project", "delete", "p", "--yes"]);
                let create = run(&env, &["project", "create", "q"]);
                (delete, create)
            });
            (
                creates
                    .into_iter()
                    .map(|c| c.join().unwrap())
                    .collect::<Vec<_>>(),
                swap.join().unwrap(),
            )
        });
        assert!(swap.0.status.success(), "{}", describe("delete", &swap.0));
        assert!(swap.1.status.success(), "{}", describe("create q", &swap.1));
        for out in &creates {
            match out.status.code() {
                Some(0) => {
                    let token = printed_token(&out.stdout).expect("a token on stdout");
                    let mut cmd = env.std_cmd();
                    cmd.args(["verify", "--project", "q"])
                        .env("AUTHEONA_TOKEN", &token);
                    let verdict = output(cmd);
                    assert_eq!(
                        text(&verdict.stdout).trim(),
                        "invalid: unknown",
                        "round {round}: a token of p verifies in q"
                    );
                }
                Some(1) => {
                    refused += 1;
                    assert_eq!(
                        text(&out.stderr).lines().next(),
                        Some("error: no project named 'p'"),
                        "round {round}: {}",
                        describe("create", out)
                    );
                }
                _ => panic!("round {round}: {}", describe("create", out)),
            }
        }
        let in_q = env.read_only_sql().count(
            "SELECT count(*) FROM tokens t JOIN projects p ON p.id = t.project_id
             WHERE p.name = 'q'",
        );
        assert_eq!(in_q, 0, "round {round}: tokens in q");
    }
    // The race is real only if some creates lost it.
    assert!(
        refused > 0,
        "no create ever found p gone: the race was not run"
    );
}
