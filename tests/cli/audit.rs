//! The audit log (issue 16): every change leaves exactly one event, written in the same
//! transaction as the change (none for a change refused, cancelled or killed before its
//! commit), events can be neither changed nor deleted, and `autheona log` reads them: newest
//! first, filtered, as a table or JSON, or followed as they are committed.
//!
//! Every event read through `autheona log --json` is checked against the `events` table read
//! by direct SQL ([`logged`]), so that a test of one reads both. What an event says is
//! checked whole ([`assert_event`]): its seven keys, its time within the seconds the command
//! ran, its actor (this process's user, uid and host; on PostgreSQL the server role), and
//! the five fields the test expects.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::ops::RangeInclusive;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Reading the log, both ways.

/// `log ARGS`.
fn log(env: &TestEnv, args: &[&str]) -> Assert {
    env.cmd().arg("log").args(args).assert()
}

/// `log --json ARGS`, which must succeed: its events, as printed (newest first).
fn events(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let assert = log(env, &[&["--json"][..], args].concat()).success();
    let out = stdout(&assert);
    match serde_json::from_str::<Value>(&out) {
        Ok(Value::Array(events)) => events,
        _ => panic!("log --json {args:?}: not a JSON array:\n{out}"),
    }
}

const EVENT_COLUMNS: &str = "at, action, project, token_id, description, detail, actor_user, \
     actor_uid, actor_host, actor_role";

/// The events table by direct SQL, newest first (by insertion), in the shape `log --json`
/// prints.
fn stored_events(sql: &mut StoreSql) -> Vec<Value> {
    let rows = sql.rows(&format!(
        "SELECT {EVENT_COLUMNS} FROM events ORDER BY seq DESC"
    ));
    rows.into_iter()
        .map(|row| {
            let text = |i: usize| row[i].clone().map_or(Value::Null, Value::String);
            let at: i64 = row[0].as_deref().expect("at").parse().expect("at in seconds");
            let detail = row[5].as_deref().expect("a detail");
            json!({
                "at": rfc3339(at),
                "action": text(1),
                "project": text(2),
                "token_id": text(3),
                "description": text(4),
                "detail": serde_json::from_str::<Value>(detail).expect("detail is JSON"),
                "actor": {
                    "user": text(6),
                    "uid": row[7].as_deref().map_or(Value::Null, |uid| json!(uid.parse::<i64>().unwrap())),
                    "host": text(8),
                    "role": text(9),
                },
            })
        })
        .collect()
}

/// The whole log: `log --json`, which must agree with the events table, column by column.
#[track_caller]
fn logged(env: &TestEnv) -> Vec<Value> {
    let printed = events(env, &[]);
    let stored = stored_events(&mut env.read_only_sql());
    let comparable: Vec<Value> = printed
        .iter()
        .map(|event| {
            let mut event = event.clone();
            event["at"] = json!(rfc3339(seconds(&event["at"])));
            event
        })
        .collect();
    assert_eq!(
        comparable, stored,
        "log --json differs from the events table"
    );
    printed
}

/// How many events of each action the table holds, by direct SQL.
#[track_caller]
fn assert_counts(env: &TestEnv, expected: &[(&str, i64)]) {
    let counted: BTreeMap<String, i64> = env
        .read_only_sql()
        .rows("SELECT action, count(*) FROM events GROUP BY action")
        .into_iter()
        .map(|row| {
            (
                row[0].clone().unwrap(),
                row[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<String, i64> = expected
        .iter()
        .map(|(a, n)| ((*a).to_owned(), *n))
        .collect();
    assert_eq!(counted, expected, "events by action");
}

// ---------------------------------------------------------------------------------------------
// What an event must say.

/// The keys of an event, sorted.
const EVENT_KEYS: [&str; 7] = [
    "action",
    "actor",
    "at",
    "description",
    "detail",
    "project",
    "token_id",
];

/// Asserts an event whole: its keys, its time in `window`, the actor of this test process, and
/// `expected`'s action, project, token_id, description and detail (dates compared as instants).
#[track_caller]
fn assert_event(event: &Value, window: &RangeInclusive<i64>, expected: Value) {
    assert_eq!(keys(event), EVENT_KEYS, "the keys of {event}");
    let at = seconds(&event["at"]);
    assert!(
        window.contains(&at),
        "at {} is outside {}..={}: {event}",
        rfc3339(at),
        rfc3339(*window.start()),
        rfc3339(*window.end())
    );
    assert_eq!(event["actor"], actor(), "the actor of {event}");
    let expected = expected.as_object().expect("an object");
    assert_eq!(
        expected.len(),
        5,
        "a test expects action, project, token_id, description and detail"
    );
    for (key, value) in expected {
        assert_eq!(
            dates_as_seconds(&event[key]),
            dates_as_seconds(value),
            "{key} of {event}"
        );
    }
}

/// Who this test runs as: every event's actor. The role is PostgreSQL's `session_user`.
fn actor() -> Value {
    let role = match backend() {
        Backend::Sqlite => Value::Null,
        Backend::Postgres => json!(crate::pg::var("PGUSER")),
    };
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    json!({"user": user_name(uid), "uid": uid, "host": host_name(), "role": role})
}

/// The name of user `uid`, from the password database.
fn user_name(uid: libc::uid_t) -> String {
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    // SAFETY: getpwuid_r(3) fills `pwd` with pointers into `buf`, both alive here.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        assert!(rc == 0 && !found.is_null(), "no user name for uid {uid}");
        std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0, "gethostname");
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `value` with every string that is an RFC 3339 time replaced by its unix seconds.
fn dates_as_seconds(value: &Value) -> Value {
    match value {
        Value::String(s) => {
            DateTime::parse_from_rfc3339(s).map_or_else(|_| value.clone(), |t| json!(t.timestamp()))
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), dates_as_seconds(v)))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// An RFC 3339 time from JSON, in unix seconds.
fn seconds(value: &Value) -> i64 {
    json_date(value).timestamp()
}

fn rfc3339(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .expect("a time")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// Runs `f`; with the seconds it ran in, as events record them.
fn during<T>(f: impl FnOnce() -> T) -> (T, RangeInclusive<i64>) {
    let from = now();
    let result = f();
    (result, from..=now())
}

/// `env.cmd()` with its wall clock stopped at `instant` (libfaketime, absolute; the tests'
/// TZ is UTC); the monotonic clock stays real. On PostgreSQL the command warns that its clock
/// is off, on stderr, which these tests do not read.
fn at(env: &TestEnv, instant: DateTime<Utc>) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.env("FAKETIME", instant.format("%Y-%m-%d %H:%M:%S").to_string())
        .env("DONT_FAKE_MONOTONIC", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("LD_PRELOAD", faketime_lib());
    cmd
}

/// A whole second, `offset` from now.
fn whole_second(offset: TimeDelta) -> DateTime<Utc> {
    DateTime::from_timestamp(now(), 0).unwrap() + offset
}

/// The event of `events` with this action and token id; there must be exactly one.
#[track_caller]
fn only<'a>(events: &'a [Value], action: &str, token_id: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == action && e["token_id"] == token_id)
        .collect();
    assert_eq!(found.len(), 1, "{action} of {token_id} in {events:#?}");
    found[0]
}

// ---------------------------------------------------------------------------------------------
// 1. Each change, exactly its event.

#[test]
fn project_create_and_delete_record_one_event_each() {
    let env = TestEnv::new();
    let ((), created) = during(|| env.project("demo"));
    let first = logged(&env);
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_event(
        &first[0],
        &created,
        json!({"action": "project.create", "project": "demo", "token_id": null,
               "description": null, "detail": {}}),
    );
    assert_counts(&env, &[("project.create", 1)]);

    env.token("demo", "30");
    env.described_token("demo", "never", "CI runner");
    let (_, deleted) = during(|| env.run(&["project", "delete", "demo", "--yes"]).success());
    let all = logged(&env);
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_event(
        &all[0],
        &deleted,
        json!({"action": "project.delete", "project": "demo", "token_id": null,
               "description": null, "detail": {"tokens": 2}}),
    );
    assert_eq!(all[3], first[0], "the project's creation is kept as it was");
    // The tokens went with the project: one event, not a revoke per token.
    assert_counts(
        &env,
        &[
            ("project.create", 1),
            ("project.delete", 1),
            ("token.create", 2),
        ],
    );

    env.project("empty");
    let (_, deleted) = during(|| env.run(&["project", "delete", "empty", "--yes"]).success());
    assert_event(
        &logged(&env)[0],
        &deleted,
        json!({"action": "project.delete", "project": "empty", "token_id": null,
               "description": null, "detail": {"tokens": 0}}),
    );
}

#[test]
fn token_create_records_the_token_its_description_and_its_expiry() {
    let env = TestEnv::new();
    env.project("demo");
    let (plain, plain_window) = during(|| env.token("demo", "30"));
    let (described, described_window) =
        during(|| env.described_token("demo", "never", "CI runner"));
    let all = logged(&env);
    assert_eq!(all.len(), 3, "{all:#?}");
    let expires_at = listed(&env, id_of(&plain))["expires_at"].clone();
    assert!(expires_at.is_string());
    assert_event(
        &all[1],
        &plain_window,
        json!({"action": "token.create", "project": "demo", "token_id": id_of(&plain),
               "description": null, "detail": {"expires_at": expires_at}}),
    );
    assert_event(
        &all[0],
        &described_window,
        json!({"action": "token.create", "project": "demo", "token_id": id_of(&described),
               "description": "CI runner", "detail": {"expires_at": null}}),
    );
    assert_counts(&env, &[("project.create", 1), ("token.create", 2)]);
}

#[test]
fn token_revoke_records_the_token_and_its_description() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.described_token("demo", "30", "Deploy key");
    let kept = env.token("demo", "30");
    let (_, revoked) = during(|| {
        env.run(&["token", "revoke", id_of(&token), "--yes"])
            .success()
    });
    let all = logged(&env);
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_event(
        &all[0],
        &revoked,
        json!({"action": "token.revoke", "project": "demo", "token_id": id_of(&token),
               "description": "Deploy key", "detail": {}}),
    );
    assert_counts(
        &env,
        &[
            ("project.create", 1),
            ("token.create", 2),
            ("token.revoke", 1),
        ],
    );
    assert!(verifies(&env, &kept));
}

#[test]
fn a_rotation_records_the_new_tokens_creation_then_the_old_ones_rotation() {
    let env = TestEnv::new();
    env.project("demo");
    for (flags, grace_seconds) in [
        (&[][..], 0),
        (&["--grace", "0"][..], 0),
        (&["--grace", "1h"][..], 3600),
        (&["--grace", "7d"][..], 7 * 86_400),
    ] {
        let old = env.described_token("demo", "30", "Build box");
        let old_id = id_of(&old);
        let before = logged(&env);
        let (assert, rotated) = during(|| {
            env.cmd()
                .args(["token", "rotate", old_id, "--yes"])
                .args(flags)
                .assert()
                .success()
        });
        let new = created_token(&assert);
        let new_id = id_of(&new);
        let all = logged(&env);
        assert_eq!(all.len(), before.len() + 2, "{flags:?}: {all:#?}");
        assert_eq!(all[2..], before[..], "{flags:?}: earlier events changed");
        let expires_at = listed(&env, new_id)["expires_at"].clone();
        assert_event(
            &all[1],
            &rotated,
            json!({"action": "token.create", "project": "demo", "token_id": new_id,
                   "description": "Build box",
                   "detail": {"expires_at": expires_at, "replaces": old_id}}),
        );
        assert_event(
            &all[0],
            &rotated,
            json!({"action": "token.rotate", "project": "demo", "token_id": old_id,
                   "description": "Build box",
                   "detail": {"replaced_by": new_id, "grace_seconds": grace_seconds}}),
        );
    }
    assert_counts(
        &env,
        &[
            ("project.create", 1),
            ("token.create", 8),
            ("token.rotate", 4),
        ],
    );
}

#[test]
fn a_stopped_token_is_recorded_once_by_the_write_that_removes_it() {
    let env = TestEnv::new();
    env.project("demo");
    let writers: [&[&str]; 3] = [
        &["project", "create", "later"],
        &["token", "prune", "--expired", "--yes"],
        &["token", "create", "-p", "demo", "-e", "30"],
    ];
    for (n, writer) in writers.into_iter().enumerate() {
        let old = env.described_token("demo", "30", "Canary");
        let old_id = id_of(&old);
        let rotation: Value = serde_json::from_str(&stdout(
            &env.run(&[
                "token", "rotate", old_id, "--grace", "1h", "--json", "--yes",
            ])
            .success(),
        ))
        .unwrap();
        let new_id = rotation["id"].as_str().unwrap();
        let stops_at = json_date(&rotation["old_token_stops_at"]);

        // Within the grace period a write removes nothing and records no stop.
        let early = format!("early{n}");
        at(&env, stops_at - TimeDelta::seconds(1))
            .args(["project", "create", &early])
            .assert()
            .success();
        let before = logged(&env);
        assert_eq!(before[0]["action"], "project.create");
        assert!(
            before
                .iter()
                .all(|e| e["action"] != "token.stop" || e["token_id"] != old_id),
            "a stop recorded within the grace period"
        );

        // The first write after the end removes it, and records that, once.
        let stopped = stops_at + TimeDelta::seconds(1);
        let from = now();
        at(&env, stopped).args(writer).assert().success();
        let all = logged(&env);
        let stop = only(&all, "token.stop", old_id);
        // Its time: when the row was removed, by the clock of the command (or the server's).
        assert_event(
            stop,
            &(from..=stopped.timestamp()),
            json!({"action": "token.stop", "project": "demo", "token_id": old_id,
                   "description": "Canary",
                   "detail": {"replaced_by": new_id,
                              "stopped_at": rotation["old_token_stops_at"]}}),
        );
        let added: Vec<&Value> = all[..all.len() - before.len()].iter().collect();
        assert_eq!(
            all[added.len()..],
            before[..],
            "{writer:?}: earlier events changed"
        );
        let mut actions: Vec<&str> = added
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        actions.sort_unstable();
        let own = match writer[..2] {
            ["project", "create"] => vec!["project.create", "token.stop"],
            ["token", "create"] => vec!["token.create", "token.stop"],
            // Nothing else had expired: the prune itself pruned nothing.
            _ => vec!["token.stop"],
        };
        assert_eq!(actions, own, "{writer:?}: {added:#?}");

        // A later write finds nothing more to stop.
        at(&env, stopped + TimeDelta::seconds(1))
            .args(["project", "create", &format!("again{n}")])
            .assert()
            .success();
        only(&logged(&env), "token.stop", old_id);
        assert_eq!(
            env.sql().count(&format!(
                "SELECT count(*) FROM tokens WHERE id = '{old_id}'"
            )),
            0,
            "the stopped token's row"
        );
    }
    let stops = env
        .sql()
        .count("SELECT count(*) FROM events WHERE action = 'token.stop'");
    assert_eq!(stops, 3);
}

/// A token of `project` created with the clock moved by `offset`, described.
fn described_token_at(
    env: &TestEnv,
    offset: &str,
    project: &str,
    expires: &str,
    description: &str,
) -> String {
    let assert = moved_clock(env, offset)
        .args([
            "token",
            "create",
            "-p",
            project,
            "-e",
            expires,
            "-d",
            description,
        ])
        .assert()
        .success();
    without_clock_warning(&stderr(&assert), offset);
    created_token(&assert)
}

#[test]
fn prune_records_one_event_per_token_with_the_selection() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("api");
    let expired_demo = described_token_at(&env, "-40d", "demo", "30", "Old CI");
    let expired_api = token_at(&env, "-40d", "api", "30");
    let stale_demo = described_token_at(&env, "-200d", "demo", "365", "Forgotten");
    let stale_api = token_at(&env, "-200d", "api", "365");
    let fresh = env.token("demo", "30");
    let before = logged(&env);

    env.run(&["token", "prune", "--expired", "--dry-run"])
        .success();
    assert_eq!(logged(&env), before, "a dry run recorded something");

    let (_, pruned) = during(|| env.run(&["token", "prune", "--expired", "--yes"]).success());
    let all = logged(&env);
    assert_eq!(all.len(), before.len() + 2, "{all:#?}");
    assert_eq!(all[2..], before[..]);
    let expired = json!({"selection": {"project": null, "expired": true, "unused_for_days": null}});
    assert_event(
        only(&all[..2], "token.prune", id_of(&expired_demo)),
        &pruned,
        json!({"action": "token.prune", "project": "demo", "token_id": id_of(&expired_demo),
               "description": "Old CI", "detail": expired}),
    );
    assert_event(
        only(&all[..2], "token.prune", id_of(&expired_api)),
        &pruned,
        json!({"action": "token.prune", "project": "api", "token_id": id_of(&expired_api),
               "description": null, "detail": expired}),
    );

    let (_, pruned) = during(|| {
        env.run(&[
            "token",
            "prune",
            "-p",
            "demo",
            "--unused-for",
            "100",
            "--yes",
        ])
        .success()
    });
    let latest = logged(&env);
    assert_eq!(latest.len(), all.len() + 1, "{latest:#?}");
    assert_event(
        &latest[0],
        &pruned,
        json!({"action": "token.prune", "project": "demo", "token_id": id_of(&stale_demo),
               "description": "Forgotten",
               "detail": {"selection": {"project": "demo", "expired": false,
                                        "unused_for_days": 100}}}),
    );

    // A prune that selects nothing records nothing.
    env.run(&["token", "prune", "--expired", "--yes"]).success();
    env.run(&[
        "token",
        "prune",
        "-p",
        "demo",
        "--unused-for",
        "100",
        "--yes",
    ])
    .success();
    assert_eq!(logged(&env), latest);
    assert_counts(
        &env,
        &[
            ("project.create", 2),
            ("token.create", 5),
            ("token.prune", 3),
        ],
    );
    assert!(verifies(&env, &stale_api) && verifies(&env, &fresh));
}

#[test]
fn a_copy_brings_the_sources_log_and_records_itself_last() {
    let env = TestEnv::new();
    let source = env.dir().join("from.db");
    let on_source = |args: &[&str]| {
        env.bare_cmd()
            .env("AUTHEONA_DB", &source)
            .args(args)
            .assert()
            .success()
    };
    on_source(&["project", "create", "demo"]);
    on_source(&["project", "create", "idle"]);
    created_token(&on_source(&[
        "token", "create", "-p", "demo", "-e", "30", "-d", "Kept",
    ]));
    let revoked = created_token(&on_source(&["token", "create", "-p", "demo", "-e", "90"]));
    on_source(&["token", "revoke", id_of(&revoked), "--yes"]);
    let source_log: Vec<Value> =
        serde_json::from_str(&stdout(&on_source(&["log", "--json"]))).unwrap();
    assert_eq!(source_log.len(), 5, "{source_log:#?}");
    let source_bytes = main_and_log(&source);

    // Into the test's store: a new file, or the PostgreSQL pass's database.
    let (_, copied) = during(|| {
        let mut cmd = env.cmd();
        cmd.env_remove("AUTHEONA_DB")
            .args(["store", "copy"])
            .arg(&source)
            .arg(env.db_arg())
            .assert()
            .success()
    });
    let all = logged(&env);
    assert_eq!(all.len(), 6, "{all:#?}");
    assert_eq!(all[1..], source_log[..], "the source's history, as it was");
    let mut copy = all[0].clone();
    let named = copy["detail"]["source"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(named.contains("from.db"), "the source, as named: {copy}");
    copy["detail"]["source"] = json!("SOURCE");
    assert_event(
        &copy,
        &copied,
        json!({"action": "store.copy", "project": null, "token_id": null, "description": null,
               "detail": {"source": "SOURCE", "projects": 2, "tokens": 1, "events": 5}}),
    );
    assert_counts(
        &env,
        &[
            ("project.create", 2),
            ("store.copy", 1),
            ("token.create", 2),
            ("token.revoke", 1),
        ],
    );
    assert_eq!(main_and_log(&source), source_bytes, "the source changed");

    // On again, from the test's store (in the PostgreSQL pass, from the server) to a new file:
    // the whole history travels, the first copy's event included.
    let onward = env.dir().join("onward.db");
    let (_, copied) = during(|| {
        let mut cmd = env.cmd();
        cmd.env_remove("AUTHEONA_DB")
            .args(["store", "copy"])
            .arg(env.db_arg())
            .arg(&onward)
            .assert()
            .success()
    });
    let onward_log: Vec<Value> = serde_json::from_str(&stdout(
        &env.bare_cmd()
            .env("AUTHEONA_DB", &onward)
            .args(["log", "--json"])
            .assert()
            .success(),
    ))
    .unwrap();
    assert_eq!(onward_log.len(), 7, "{onward_log:#?}");
    assert_eq!(onward_log[1..], all[..], "the history, as it was");
    assert_eq!(onward_log[0]["action"], "store.copy");
    assert_eq!(onward_log[0]["detail"]["events"], 6);
    assert!(copied.contains(&seconds(&onward_log[0]["at"])));

    // Refused, into a destination that is not empty: nothing recorded on either side.
    let mut again = env.cmd();
    again
        .env_remove("AUTHEONA_DB")
        .args(["store", "copy"])
        .arg(&source)
        .arg(env.db_arg())
        .assert()
        .code(1);
    assert_eq!(logged(&env), all, "a refused copy was recorded");
    assert_eq!(main_and_log(&source), source_bytes, "the source changed");
}

// ---------------------------------------------------------------------------------------------
// 2. No change, no event.

/// `token create` or `token rotate` with a stdout it cannot deliver to.
fn into_undeliverable(env: &TestEnv, args: &[&str], way: &str) -> std::process::Output {
    let mut cmd = env.std_cmd();
    cmd.args(args);
    match way {
        "closed" => {
            close_stdout_at_exec(&mut cmd);
        }
        "/dev/null" => {
            cmd.stdout(std::fs::File::create("/dev/null").unwrap());
        }
        "reader gone" => {
            cmd.stdout(closed_pipe());
        }
        "read only" => {
            let path = env.dir().join("read-only stdout");
            std::fs::write(&path, "kept\n").unwrap();
            cmd.stdout(std::fs::File::open(&path).unwrap());
        }
        _ => unreachable!(),
    }
    cmd.output().unwrap()
}

#[test]
fn changes_refused_or_cancelled_record_nothing() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.described_token("demo", "30", "Kept");
    let id = id_of(&token);
    token_at(&env, "-40d", "demo", "30");
    let before = logged(&env);

    let cases: &[(&[&str], i32)] = &[
        // Not confirmed, and no terminal to ask.
        (&["token", "revoke", id], 2),
        (&["token", "rotate", id], 2),
        (&["token", "rotate", id, "--grace", "1h"], 2),
        (&["project", "delete", "demo"], 2),
        (&["token", "prune", "--expired"], 2),
        // Refused: unknown or taken names and ids, bad values.
        (&["token", "create", "-p", "nope", "-e", "30"], 1),
        (&["project", "create", "demo"], 1),
        (&["project", "delete", "nope", "--yes"], 1),
        (&["token", "revoke", "AAAAAAAAAAAA", "--yes"], 1),
        (&["token", "rotate", "AAAAAAAAAAAA", "--yes"], 1),
        (&["token", "revoke", "short", "--yes"], 2),
        (&["token", "rotate", &token, "--yes"], 2),
        (&["token", "create", "-p", "demo", "-e", "7"], 2),
        (
            &[
                "token",
                "create",
                "-p",
                "demo",
                "-e",
                "30",
                "-d",
                "bad\u{1b}[2J",
            ],
            2,
        ),
        (&["token", "rotate", id, "--grace", "31d", "--yes"], 2),
        (&["project", "create", ""], 2),
        // Reading, not changing.
        (&["token", "prune", "--expired", "--dry-run"], 0),
        (&["token", "list"], 0),
        (&["project", "list", "--json"], 0),
        (&["log"], 0),
    ];
    for (args, code) in cases {
        env.run(args).code(*code);
        assert_eq!(logged(&env), before, "{args:?} recorded an event");
    }

    // Verifications are not events, valid or not.
    env.verify(&token, &[]).success();
    env.verify(&forge("AAAAAAAAAAAA", &"B".repeat(43)), &[])
        .code(1);
    assert_eq!(logged(&env), before, "a verification recorded an event");

    // A new token that could not be shown is refused before anything is written.
    for args in [
        &["token", "create", "-p", "demo", "-e", "30"][..],
        &["token", "rotate", id, "--yes"],
    ] {
        for way in ["closed", "/dev/null", "reader gone", "read only"] {
            let out = into_undeliverable(&env, args, way);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{args:?}, stdout {way}: {err}");
            assert_eq!(
                logged(&env),
                before,
                "{args:?}, stdout {way}: recorded an event"
            );
        }
    }

    // The store refused the change: busy past its timeout.
    {
        let _lock = env.hold_write_lock();
        env.run(&["token", "revoke", id, "--yes"]).code(3);
    }
    assert_eq!(
        logged(&env),
        before,
        "a change the store refused was recorded"
    );
    assert!(verifies(&env, &token));
    assert_counts(&env, &[("project.create", 1), ("token.create", 2)]);
}

/// Runs `args` at a pty and answers `answer` to its `[y/N]`; returns the exit code.
fn answer_at_a_terminal(env: &TestEnv, args: &[&str], answer: &str) -> i32 {
    let mut cmd = env.std_cmd();
    cmd.env("TERM", "xterm").args(args);
    let mut pty = rexpect::session::spawn_command(cmd, Some(10_000)).expect("spawn on a pty");
    pty.exp_string("[y/N]")
        .unwrap_or_else(|err| panic!("{args:?}: no question: {err}"));
    pty.send(answer).unwrap();
    pty.flush().unwrap();
    let rest = pty
        .exp_eof()
        .unwrap_or_else(|err| panic!("{args:?}: no end: {err}"));
    match pty.process().wait() {
        Ok(rexpect::process::WaitStatus::Exited(_, code)) => code,
        other => panic!("{args:?}: {other:?}\n{rest}"),
    }
}

#[test]
fn a_change_declined_or_not_confirmed_does_not_sweep_a_finished_grace_period() {
    let env = TestEnv::new();
    env.project("demo");
    let kept = env.token("demo", "30");
    token_at(&env, "-40d", "demo", "30");
    // Rotated two hours ago with an hour's grace: stopped an hour ago, its row still there.
    let old = token_at(&env, "-2h", "demo", "30");
    moved_clock(&env, "-2h")
        .args(["token", "rotate", id_of(&old), "--grace", "1h", "--yes"])
        .assert()
        .success();
    let before = logged(&env);
    let unconfirmed: &[&[&str]] = &[
        &["token", "prune", "--expired"],
        &["token", "revoke", id_of(&kept)],
        &["token", "rotate", id_of(&kept)],
        &["project", "delete", "demo"],
    ];
    for args in unconfirmed {
        env.run(args).code(2);
        assert_eq!(
            logged(&env),
            before,
            "{args:?}: not confirmed, yet recorded"
        );
    }
    assert_eq!(
        answer_at_a_terminal(&env, &["token", "prune", "--expired"], "n"),
        1
    );
    assert_eq!(logged(&env), before, "a declined prune recorded");
    // Made, the prune sweeps first: the stop, then the expired token's prune.
    env.run(&["token", "prune", "--expired", "--yes"]).success();
    let after = logged(&env);
    let new: Vec<&str> = after[..after.len() - before.len()]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(new, ["token.prune", "token.stop"], "{after:#?}");
}

#[test]
fn answering_no_at_a_terminal_records_nothing_and_yes_records_the_change() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.described_token("demo", "30", "Kept");
    token_at(&env, "-40d", "demo", "30");
    let before = logged(&env);
    for args in [
        &["token", "revoke", id_of(&token)][..],
        &["token", "rotate", id_of(&token)],
        &["project", "delete", "demo"],
        &["token", "prune", "--expired"],
    ] {
        for answer in ["n", "\r"] {
            assert_eq!(
                answer_at_a_terminal(&env, args, answer),
                1,
                "{args:?}, {answer:?}"
            );
            assert_eq!(logged(&env), before, "{args:?}: declined, yet recorded");
        }
    }
    let (code, revoked) =
        during(|| answer_at_a_terminal(&env, &["token", "revoke", id_of(&token)], "y"));
    assert_eq!(code, 0);
    let all = logged(&env);
    assert_eq!(all.len(), before.len() + 1);
    assert_event(
        &all[0],
        &revoked,
        json!({"action": "token.revoke", "project": "demo", "token_id": id_of(&token),
               "description": "Kept", "detail": {}}),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A change killed at any moment: it and its event, both or neither.

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The store as a killed command left it, once the server (on PostgreSQL) has ended its
/// session.
fn after_the_kill(env: &TestEnv) -> StoreSql {
    let mut sql = env.read_only_sql();
    sql.wait_until_alone();
    sql
}

/// The tokens the table holds: id, and whether its end is scheduled (a rotation with grace).
fn token_rows(sql: &mut StoreSql) -> BTreeMap<String, bool> {
    sql.rows("SELECT id, replaced_by FROM tokens")
        .into_iter()
        .map(|row| (row[0].clone().unwrap(), row[1].is_some()))
        .collect()
}

/// The tokens table is what the events say it should be: every token created and neither
/// revoked nor rotated at once is there, no other; those rotated with a grace period have
/// their end scheduled, no other. Each token has at most one event of each action.
#[track_caller]
fn assert_tokens_match_events(sql: &mut StoreSql, what: &str) {
    let rows = token_rows(sql);
    let mut seen = BTreeSet::new();
    let (mut created, mut gone, mut scheduled) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for row in sql.rows("SELECT action, token_id, detail FROM events WHERE token_id IS NOT NULL") {
        let (action, id) = (row[0].clone().unwrap(), row[1].clone().unwrap());
        let detail: Value = serde_json::from_str(row[2].as_deref().unwrap()).unwrap();
        assert!(
            seen.insert((action.clone(), id.clone())),
            "{what}: two {action} events of {id}"
        );
        match action.as_str() {
            "token.create" => created.insert(id),
            "token.revoke" => gone.insert(id),
            "token.rotate" if detail["grace_seconds"] == 0 => gone.insert(id),
            "token.rotate" => scheduled.insert(id),
            _ => panic!("{what}: an unexpected {action} of {id}"),
        };
    }
    let expected: BTreeSet<&String> = created.difference(&gone).collect();
    let present: BTreeSet<&String> = rows.keys().collect();
    assert_eq!(
        present, expected,
        "{what}: the tokens differ from the events (rows without their event or events \
         without their change)"
    );
    let ends: BTreeSet<&String> = rows.iter().filter(|(_, s)| **s).map(|(id, _)| id).collect();
    let expected_ends: BTreeSet<&String> = scheduled.difference(&gone).collect();
    assert_eq!(
        ends, expected_ends,
        "{what}: scheduled ends and rotations with grace"
    );
}

#[test]
fn a_change_killed_at_any_moment_leaves_it_and_its_event_both_or_neither() {
    const ROUNDS: usize = 30;
    let env = TestEnv::new();
    env.project("P");
    let timed = |args: &[&str]| {
        let started = Instant::now();
        let assert = env.run(args).success();
        (started.elapsed(), assert)
    };
    let (mut creates, mut revokes, mut rotates) = (vec![], vec![], vec![]);
    for _ in 0..3 {
        let (t, created) = timed(&["token", "create", "-p", "P", "-e", "30"]);
        creates.push(t);
        let token = created_token(&created);
        let (t, rotated) = timed(&["token", "rotate", id_of(&token), "--yes"]);
        rotates.push(t);
        revokes.push(timed(&["token", "revoke", id_of(&created_token(&rotated)), "--yes"]).0);
    }
    let window = |samples| median(samples).mul_f64(1.5).as_micros().max(2000) as u64;
    let windows = [window(creates), window(revokes), window(rotates)];
    assert_tokens_match_events(&mut env.read_only_sql(), "after the calibration");

    // Per kind: killed with nothing recorded, killed after some was, finished.
    let mut outcomes = [[0usize; 3]; 3];
    for round in 0..ROUNDS {
        let kind = round % 3;
        let live: Vec<String> = token_rows(&mut env.read_only_sql())
            .into_iter()
            .filter(|(_, scheduled)| !scheduled)
            .map(|(id, _)| id)
            .collect();
        let target = match (kind, live.len()) {
            (0, _) => String::new(),
            (_, 0) => id_of(&env.token("P", "30")).to_owned(),
            (_, n) => live[rand::random_range(0..n)].clone(),
        };
        let mut args = match kind {
            0 => vec!["token", "create", "-p", "P", "-e", "30"],
            1 => vec!["token", "revoke", &target, "--yes"],
            _ => vec!["token", "rotate", &target, "--yes"],
        };
        if kind == 2 && round % 2 == 1 {
            args.extend(["--grace", "1h"]);
        }
        let events_before = env.read_only_sql().count("SELECT count(*) FROM events");
        let delay = Duration::from_micros(rand::random_range(0..windows[kind]));
        let mut cmd = env.std_cmd();
        cmd.args(&args);
        let out = Process::new(cmd).kill_after(delay).run();
        let killed = out.status.signal() == Some(libc::SIGKILL);
        let what = format!(
            "round {round}: `{}` killed after {delay:?} ({}; stderr {:?})",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(killed || out.status.success(), "{what}");
        let mut sql = after_the_kill(&env);
        assert_tokens_match_events(&mut sql, &what);
        let recorded = sql.count("SELECT count(*) FROM events") - events_before;
        outcomes[kind][match (killed, recorded) {
            (true, 0) => 0,
            (true, _) => 1,
            (false, _) => 2,
        }] += 1;
        if !killed {
            assert!(recorded >= 1, "{what}: finished without an event");
        }
    }
    eprintln!(
        "audit/kill: {ROUNDS} rounds; [killed before any event, killed after one, finished] \
         create {:?}, revoke {:?}, rotate {:?}",
        outcomes[0], outcomes[1], outcomes[2]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Append-only.

/// The events table as the raw statements name it: the product's schema on PostgreSQL.
fn events_table() -> &'static str {
    match backend() {
        Backend::Sqlite => "events",
        Backend::Postgres => "autheona.events",
    }
}

/// Every row of the events table, every column, as text.
fn raw_events(env: &TestEnv) -> Vec<Vec<Option<String>>> {
    env.read_only_sql()
        .rows("SELECT * FROM events ORDER BY seq")
}

#[test]
fn the_schema_refuses_to_change_or_delete_an_event() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.described_token("demo", "30", "Deploy key");
    env.run(&["token", "revoke", id_of(&token), "--yes"])
        .success();
    let rows = raw_events(&env);
    let listed = logged(&env);
    assert_eq!(rows.len(), 3);

    let table = events_table();
    let mut statements: Vec<String> = [
        "UPDATE {t} SET action = 'token.create' WHERE action = 'token.revoke'",
        "UPDATE {t} SET actor_user = 'someone else'",
        "UPDATE {t} SET actor_host = NULL",
        "UPDATE {t} SET detail = '{}'",
        "UPDATE {t} SET description = 'Innocent' WHERE description IS NOT NULL",
        "UPDATE {t} SET at = at - 86400",
        "UPDATE {t} SET seq = seq + 100",
        "UPDATE {t} SET project = project",
        "DELETE FROM {t} WHERE action = 'token.revoke'",
        "DELETE FROM {t} WHERE seq = (SELECT max(seq) FROM {t})",
        "DELETE FROM {t}",
    ]
    .iter()
    .map(|s| s.replace("{t}", table))
    .collect();
    if backend() == Backend::Postgres {
        statements.push(format!("TRUNCATE {table}"));
        statements.push(format!("TRUNCATE {table} CASCADE"));
    }
    for statement in &statements {
        let done = env.sql().batch(statement);
        assert!(done.is_err(), "{statement} was allowed");
        assert_eq!(raw_events(&env), rows, "{statement} changed the events");
    }
    assert_eq!(logged(&env), listed);

    // Appending goes on.
    env.project("next");
    assert_eq!(raw_events(&env)[..3], rows[..]);
}

#[test]
fn a_replacing_insert_cannot_rewrite_an_event() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("other");
    let rows = raw_events(&env);
    // The first event written again under its own seq: a delete in disguise on SQLite
    // (REPLACE), an update on PostgreSQL (ON CONFLICT DO UPDATE).
    let table = events_table();
    let statement = match backend() {
        Backend::Sqlite => format!(
            "INSERT OR REPLACE INTO {table} (seq, {EVENT_COLUMNS})
             SELECT seq, at, 'project.delete', project, token_id, description, '{{\"tokens\": 0}}',
                    'someone else', actor_uid, actor_host, actor_role
             FROM {table} WHERE seq = (SELECT min(seq) FROM {table})"
        ),
        Backend::Postgres => format!(
            "INSERT INTO {table} (seq, {EVENT_COLUMNS})
             SELECT seq, at, 'project.delete', project, token_id, description, '{{\"tokens\": 0}}',
                    'someone else', actor_uid, actor_host, actor_role
             FROM {table} WHERE seq = (SELECT min(seq) FROM {table})
             ON CONFLICT (seq) DO UPDATE
             SET action = excluded.action, detail = excluded.detail,
                 actor_user = excluded.actor_user"
        ),
    };
    let done = env.sql().batch(&statement);
    assert!(done.is_err(), "{statement} was allowed");
    assert_eq!(raw_events(&env), rows, "an event was rewritten");
}

// ---------------------------------------------------------------------------------------------
// 5. A deleted project's history stays.

#[test]
fn deleting_a_project_keeps_its_events_and_project_still_finds_them() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("api");
    let kept = env.described_token("demo", "30", "Deploy key");
    let revoked = env.token("demo", "30");
    env.run(&["token", "revoke", id_of(&revoked), "--yes"])
        .success();
    env.token("api", "30");
    let before = logged(&env);
    let demo_before = events(&env, &["--project", "demo"]);
    assert_eq!(demo_before.len(), 4, "{demo_before:#?}");

    env.run(&["project", "delete", "demo", "--yes"]).success();
    let all = logged(&env);
    assert_eq!(
        all[1..],
        before[..],
        "deleting the project changed its events"
    );
    let demo = events(&env, &["--project", "demo"]);
    assert_eq!(demo.len(), 5, "{demo:#?}");
    assert_eq!(demo[0]["action"], "project.delete");
    assert_eq!(demo[0]["detail"], json!({"tokens": 1}));
    assert_eq!(demo[1..], demo_before[..]);
    assert_eq!(
        events(&env, &["--token", id_of(&kept)]),
        [only(&all, "token.create", id_of(&kept)).clone()]
    );
    let table = stdout(&log(&env, &["--project", "demo"]).success());
    assert_eq!(
        table.lines().count(),
        6,
        "a header and five events:\n{table}"
    );

    // A project of the same name later: its events are found by the name too.
    env.project("demo");
    assert_eq!(events(&env, &["--project", "demo"]).len(), 6);
}

// ---------------------------------------------------------------------------------------------
// 6. Filters.

#[test]
fn each_filter_narrows_and_they_combine() {
    let env = TestEnv::new();
    // Ten days ago at 10:00, and nine days ago at 15:00:30, with stopped clocks; then now.
    let midnight = |days: i64| {
        (Utc::now() - TimeDelta::days(days))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    };
    let first = midnight(10) + TimeDelta::hours(10);
    let second = midnight(9) + TimeDelta::seconds(15 * 3600 + 30);
    at(&env, first)
        .args(["project", "create", "demo"])
        .assert()
        .success();
    let early = created_token(
        &at(&env, second)
            .args(["token", "create", "-p", "demo", "-e", "365"])
            .assert()
            .success(),
    );
    env.project("api");
    let rotated = env.described_token("demo", "30", "Box");
    let replacement = created_token(
        &env.run(&["token", "rotate", id_of(&rotated), "--yes"])
            .success(),
    );
    let api = env.token("api", "30");
    env.run(&["token", "revoke", id_of(&api), "--yes"])
        .success();
    env.run(&["token", "revoke", id_of(&early), "--yes"])
        .success();
    let all = logged(&env);
    assert_eq!(all.len(), 9, "{all:#?}");

    // Each filter, and some together, against the whole log filtered here.
    let since = |t: i64| move |e: &Value| seconds(&e["at"]) >= t;
    let project = |p: &'static str| move |e: &Value| e["project"] == p;
    let token = |t: &str| {
        let id = id_of(t).to_owned();
        move |e: &Value| e["token_id"] == id.as_str()
    };
    let action = |a: &'static str| move |e: &Value| e["action"] == a;
    let date = |t: DateTime<Utc>, format: &str| t.format(format).to_string();
    let (day, minute, to_the_second) = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S");
    let (at_second, after_second) = (second.timestamp(), second.timestamp() + 1);
    let next = second + TimeDelta::seconds(1);
    let unknown = forge("AAAAAAAAAAAA", &"B".repeat(43));
    let in_kolkata = (second + TimeDelta::minutes(330))
        .format("%Y-%m-%dT%H:%M:%S+05:30")
        .to_string();
    let week = now() - 7 * 86_400;
    let cases = [
        case(&["--project", "demo"], project("demo"), 6),
        case(&["--project", "api"], project("api"), 3),
        case(&["--project", "none"], project("none"), 0),
        case(&["--token", id_of(&rotated)], token(&rotated), 2),
        case(&["--token", id_of(&replacement)], token(&replacement), 1),
        case(&["--token", id_of(&unknown)], token(&unknown), 0),
        case(&["--action", "token.create"], action("token.create"), 4),
        case(&["--action", "token.revoke"], action("token.revoke"), 2),
        case(&["--action", "store.copy"], action("store.copy"), 0),
        // A date is its midnight, local time (UTC here).
        case(
            &["--since", &date(second, day)],
            since(midnight(9).timestamp()),
            8,
        ),
        case(
            &["--since", &date(first, day)],
            since(midnight(10).timestamp()),
            9,
        ),
        // A date and time, to the minute or the second; the bound is inclusive.
        case(
            &["--since", &date(second, minute)],
            since(at_second - 30),
            8,
        ),
        case(
            &["--since", &date(second, to_the_second)],
            since(at_second),
            8,
        ),
        case(
            &["--since", &date(next, to_the_second)],
            since(after_second),
            7,
        ),
        // RFC 3339, in UTC or with an offset.
        case(&["--since", &rfc3339(at_second)], since(at_second), 8),
        case(&["--since", &rfc3339(after_second)], since(after_second), 7),
        case(&["--since", &in_kolkata], since(at_second), 8),
        // A duration ago.
        case(&["--since", "7d"], since(week), 7),
        case(&["--since", "12h"], since(now() - 12 * 3600), 7),
        case(&["--since", "30m"], since(now() - 1800), 7),
        case(&["--since", "11d"], since(now() - 11 * 86_400), 9),
        // Together: every filter must hold.
        case(
            &["--project", "demo", "--action", "token.create"],
            move |e: &Value| project("demo")(e) && action("token.create")(e),
            3,
        ),
        case(
            &["--project", "api", "--token", id_of(&rotated)],
            |_: &Value| false,
            0,
        ),
        case(
            &["--token", id_of(&early), "--since", "7d"],
            {
                let early = token(&early);
                move |e: &Value| early(e) && seconds(&e["at"]) >= week
            },
            1,
        ),
        case(
            &[
                "--project",
                "demo",
                "--token",
                id_of(&early),
                "--since",
                &date(first, day),
                "--action",
                "token.create",
            ],
            {
                let early = token(&early);
                move |e: &Value| early(e) && action("token.create")(e)
            },
            1,
        ),
    ];
    for (args, filter, count) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let expected: Vec<Value> = all.iter().filter(|e| filter(e)).cloned().collect();
        assert_eq!(expected.len(), *count, "{args:?}: the test's own count");
        assert_eq!(events(&env, &args), expected, "log --json {args:?}");
        let table = log(&env, &args).success();
        if *count == 0 {
            table.stdout("").stderr("No events match.\n");
        } else {
            assert_eq!(
                stdout(&table).lines().count(),
                count + 1,
                "log {args:?}: a header and the events:\n{}",
                stdout(&table)
            );
        }
    }

    // Dates and times are local. In Kiritimati (UTC+14) the day after `first`'s begins at
    // `first`, and the bound holds it.
    let in_kiritimati = |since: String| -> Vec<Value> {
        let assert = env
            .cmd()
            .env("TZ", "Pacific/Kiritimati")
            .args(["log", "--json", &format!("--since={since}")])
            .assert()
            .success();
        serde_json::from_str(&stdout(&assert)).unwrap()
    };
    let local = first + TimeDelta::hours(14);
    assert_eq!(in_kiritimati(date(local, day)), all, "a local date");
    let next_second = date(local + TimeDelta::seconds(1), "%Y-%m-%d %H:%M:%S");
    assert_eq!(
        in_kiritimati(next_second),
        all[..8],
        "a local date and time"
    );
}

/// A filter of `each_filter_narrows_and_they_combine`: the arguments, which events they
/// select, and how many that is.
type Case = (Vec<String>, Box<dyn Fn(&Value) -> bool>, usize);

fn case(args: &[&str], selects: impl Fn(&Value) -> bool + 'static, count: usize) -> Case {
    let args = args.iter().map(|&arg| arg.to_owned()).collect();
    (args, Box::new(selects), count)
}

#[test]
fn invalid_filters_are_usage_errors() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.token("demo", "30");
    for action in [
        "",
        "token",
        "token.created",
        "Token.Create",
        "TOKEN.REVOKE",
        "verify",
        "*",
    ] {
        for json in [false, true] {
            let mut args = vec!["--action", action];
            if json {
                args.push("--json");
            }
            let assert = log(&env, &args).code(2);
            assert_eq!(stdout(&assert), "", "--action {action:?}");
            assert!(
                stderr(&assert).starts_with("error: "),
                "--action {action:?}"
            );
        }
    }
    for id in [
        "",
        "short",
        "AAAAAAAAAAA!",
        "AAAAAAAAAAAAA",
        "AAAAAA AAAAA",
        &token,
    ] {
        let assert = log(&env, &["--token", id]).code(2);
        assert_eq!(stdout(&assert), "", "--token {id:?}");
        let err = stderr(&assert);
        assert!(err.starts_with("error: "), "--token {id:?}: {err}");
        assert!(
            !err.contains(secret_of(&token)),
            "a pasted token was echoed: {err}"
        );
    }
    for when in [
        "",
        "yesterday",
        "7",
        "7w",
        "1y",
        "-7d",
        "7 d",
        "1.5h",
        "2026-13-01",
        "2026-02-30",
        "2026-12-01 25:00",
        "2026-12-01 15:60",
        "2026-12-01T15:00:00",
        "12/01/2026",
        "99999999999999999999d",
    ] {
        let assert = log(&env, &[&format!("--since={when}")]).code(2);
        let err = stderr(&assert);
        assert_eq!(stdout(&assert), "", "--since {when:?}");
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "--since {when:?}: one error line expected:\n{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Order, table and JSON.

#[test]
fn the_log_is_newest_first_by_insertion_not_by_time() {
    let env = TestEnv::new();
    env.project("demo");
    let recent = env.token("demo", "30");
    let back_dated = token_at(&env, "-40d", "demo", "90");
    let last = env.token("demo", "never");
    let order: Vec<(Value, Value)> = logged(&env)
        .iter()
        .map(|e| (e["action"].clone(), e["token_id"].clone()))
        .collect();
    assert_eq!(
        order,
        [
            (json!("token.create"), json!(id_of(&last))),
            (json!("token.create"), json!(id_of(&back_dated))),
            (json!("token.create"), json!(id_of(&recent))),
            (json!("project.create"), Value::Null),
        ]
    );
    let table = stdout(&log(&env, &[]).success());
    let ids_shown: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|line| {
            [&last, &back_dated, &recent]
                .into_iter()
                .map(|t| id_of(t))
                .find(|id| line.contains(id))
                .unwrap_or("-")
        })
        .collect();
    assert_eq!(
        ids_shown,
        [id_of(&last), id_of(&back_dated), id_of(&recent), "-"],
        "{table}"
    );
}

/// A table's cells, by the columns of its header (left-aligned, as autheona's tables are).
fn cells(table: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let names: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
    let starts: Vec<usize> = names
        .iter()
        .scan(0, |from, name| {
            let at = *from + header[*from..].find(name.as_str()).unwrap();
            *from = at + name.len();
            Some(at)
        })
        .collect();
    let rows = lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            (0..starts.len())
                .map(|i| {
                    let end = starts.get(i + 1).copied().unwrap_or(chars.len());
                    let cell: String = chars
                        .get(starts[i].min(chars.len())..end.min(chars.len()))
                        .unwrap_or_default()
                        .iter()
                        .collect();
                    cell.trim().to_owned()
                })
                .collect()
        })
        .collect();
    (names, rows)
}

#[test]
fn the_table_shows_time_action_project_token_description_and_actor() {
    let env = TestEnv::new();
    let instant = whole_second(-TimeDelta::days(1));
    at(&env, instant)
        .args(["project", "create", "demo"])
        .assert()
        .success();
    let token = created_token(
        &at(&env, instant)
            .args([
                "token",
                "create",
                "-p",
                "demo",
                "-e",
                "30",
                "-d",
                "CI runner",
            ])
            .assert()
            .success(),
    );
    let table = stdout(&log(&env, &[]).success());
    let (header, rows) = cells(&table);
    assert_eq!(
        header,
        ["Time", "Action", "Project", "Token", "Description", "Actor"],
        "{table}"
    );
    let expected_actor = match backend() {
        Backend::Sqlite => format!("{}@{}", actor()["user"].as_str().unwrap(), host_name()),
        Backend::Postgres => format!(
            "{}@{} as {}",
            actor()["user"].as_str().unwrap(),
            host_name(),
            crate::pg::var("PGUSER")
        ),
    };
    let time = instant.format("%Y-%m-%d %H:%M:%S").to_string();
    assert_eq!(
        rows,
        [
            vec![
                time.clone(),
                "token.create".into(),
                "demo".into(),
                id_of(&token).into(),
                "CI runner".into(),
                expected_actor.clone()
            ],
            vec![
                time,
                "project.create".into(),
                "demo".into(),
                String::new(),
                String::new(),
                expected_actor
            ],
        ],
        "{table}"
    );
    assert!(!table.contains("aut_"), "{table}");

    // Local time: in Kolkata, 05:30 ahead.
    let kolkata = stdout(
        &env.cmd()
            .env("TZ", "Asia/Kolkata")
            .arg("log")
            .assert()
            .success(),
    );
    let shown = (instant + TimeDelta::minutes(5 * 60 + 30))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert_eq!(cells(&kolkata).1[0][0], shown, "{kolkata}");
}

#[test]
fn json_events_have_exactly_the_documented_keys() {
    let env = TestEnv::new();
    env.project("demo");
    let token = env.described_token("demo", "30", "Shape");
    env.run(&["token", "rotate", id_of(&token), "--yes"])
        .success();
    let out = stdout(&log(&env, &["--json"]).success());
    let all: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(all.len(), 4);
    for event in &all {
        assert_eq!(keys(event), EVENT_KEYS, "{event}");
        assert_eq!(
            keys(&event["actor"]),
            ["host", "role", "uid", "user"],
            "{event}"
        );
        let at = event["at"].as_str().expect("at is a string");
        assert!(
            DateTime::parse_from_rfc3339(at).is_ok_and(|t| t.offset().local_minus_utc() == 0),
            "at is RFC 3339 in UTC: {at}"
        );
        assert!(event["detail"].is_object(), "{event}");
        assert!(event["actor"]["uid"].is_u64(), "{event}");
        for key in ["action", "project"] {
            assert!(event[key].is_string(), "{key}: {event}");
        }
    }
    assert_eq!(
        all[3]["token_id"],
        Value::Null,
        "project.create: {}",
        all[3]
    );
    assert_eq!(
        all[3]["description"],
        Value::Null,
        "project.create: {}",
        all[3]
    );
    assert_eq!(all[0]["description"], "Shape");

    // Nothing matching: an empty array, and nothing else on stdout.
    let none = log(&env, &["--json", "--action", "store.copy"]).success();
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&none)).unwrap(),
        json!([])
    );
}

#[test]
fn text_from_the_store_is_escaped_in_the_table() {
    let env = TestEnv::new();
    env.project("demo");
    // Text no command accepts, written behind autheona's back.
    let statement = format!(
        "INSERT INTO {} ({EVENT_COLUMNS}) VALUES ({}, 'token.revoke', 'evil\u{1b}[2J\u{202e}',
         'AAAAAAAAAAAA', 'desc\u{1b}]0;pwned\u{7}', '{{}}', 'me\u{1b}[31m', 0, 'host\u{8}\u{8}',
         NULL)",
        events_table(),
        now()
    );
    env.sql().batch(&statement).expect("insert an event");
    let table = stdout(&log(&env, &[]).success());
    for raw in ['\u{1b}', '\u{7}', '\u{8}', '\u{202e}'] {
        assert!(!table.contains(raw), "{raw:?} printed raw:\n{table:?}");
    }
    assert!(table.contains("\\u{1b}"), "{table}");
    let follower = Follower::start(&env, &["--since", "1h"]);
    for _ in 0..2 {
        let (line, _) = follower
            .line(Duration::from_secs(3))
            .expect("a line within 3 s");
        for raw in ['\u{1b}', '\u{7}', '\u{8}', '\u{202e}'] {
            assert!(
                !line.contains(raw),
                "--follow printed {raw:?} raw: {line:?}"
            );
        }
    }
    let all = events(&env, &[]);
    assert_eq!(
        all[0]["project"], "evil\u{1b}[2J\u{202e}",
        "JSON keeps the text, escaped"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. --follow.

/// A `log --follow ARGS` running in the background, its stdout read line by line.
struct Follower {
    child: Option<Child>,
    lines: mpsc::Receiver<(String, Instant)>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Follower {
    fn start(env: &TestEnv, args: &[&str]) -> Follower {
        let mut cmd = env.std_cmd();
        cmd.args(["log", "--follow"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start log --follow");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if send.send((line, Instant::now())).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Follower {
            child: Some(child),
            lines,
            stderr: Some(stderr),
        }
    }

    /// The next line printed, if one comes within `wait`, and when it came.
    fn line(&self, wait: Duration) -> Option<(String, Instant)> {
        self.lines.recv_timeout(wait).ok()
    }

    /// The next line as a JSON event, which must come within 3 s.
    #[track_caller]
    fn event(&self) -> (Value, Instant) {
        let (line, when) = self
            .line(Duration::from_secs(3))
            .expect("an event within 3 s");
        let event = serde_json::from_str(&line)
            .unwrap_or_else(|err| panic!("not one JSON object per line ({err}): {line}"));
        (event, when)
    }

    /// Sends SIGINT; how it ended (within 10 s) and its stderr.
    fn interrupt(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let status = wait_for_exit(&mut child, Duration::from_secs(10))
            .expect("log --follow still runs 10 s after SIGINT");
        (status, self.stderr.take().unwrap().join().unwrap())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits up to `limit` for `child` to exit.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn follow_prints_what_another_process_commits_within_a_second() {
    let env = TestEnv::new();
    env.project("before");
    let follower = Follower::start(&env, &["--json"]);

    // It prints only what comes after it started: events until one shows (it is then
    // reading), the ones before it perhaps not, and never the earlier one.
    let mut made = 0;
    let (first, _) = loop {
        assert!(made < 30, "log --follow printed nothing in 3 s of changes");
        env.project(&format!("p{made}"));
        made += 1;
        if let Some(line) = follower.line(Duration::from_millis(100)) {
            break line;
        }
    };
    let first: Value = serde_json::from_str(&first).expect("a JSON line");
    assert_ne!(
        first["project"], "before",
        "an event from before it started"
    );
    let mut next: usize = first["project"].as_str().unwrap()[1..].parse().unwrap();
    while next + 1 < made {
        let (event, _) = follower.event();
        next += 1;
        assert_eq!(
            event["project"],
            format!("p{next}"),
            "in order, none missed"
        );
    }

    // From now on it is reading: each change appears within a second of its commit, oldest
    // first, in the shape of log --json.
    let mut slowest = Duration::ZERO;
    let token = env.described_token("before", "30", "Followed");
    let committed = Instant::now();
    let (event, appeared) = follower.event();
    slowest = slowest.max(appeared.saturating_duration_since(committed));
    assert_eq!(event, logged(&env)[0]);
    env.run(&["token", "rotate", id_of(&token), "--yes"])
        .success();
    let committed = Instant::now();
    let (created, _) = follower.event();
    let (rotated, appeared) = follower.event();
    slowest = slowest.max(appeared.saturating_duration_since(committed));
    assert_eq!([rotated, created], logged(&env)[..2]);
    assert!(
        slowest <= Duration::from_millis(1500),
        "an event took {slowest:?} to appear"
    );
    assert!(
        follower.line(Duration::from_millis(300)).is_none(),
        "an extra line"
    );

    let (status, err) = follower.interrupt();
    assert_eq!(status.code(), Some(130), "{status}: {err}");
    eprintln!("audit/follow: slowest event appeared {slowest:?} after its commit");
}

#[test]
fn follow_since_prints_the_past_oldest_first_then_what_comes() {
    let env = TestEnv::new();
    project_at(&env, "-10d", "old");
    env.project("a");
    env.project("b");
    let follower = Follower::start(&env, &["--json", "--since", "7d"]);
    let past: Vec<Value> = (0..2).map(|_| follower.event().0).collect();
    let all = logged(&env);
    assert_eq!(
        past,
        [all[1].clone(), all[0].clone()],
        "since then, oldest first"
    );
    env.project("c");
    let (event, _) = follower.event();
    assert_eq!(event, logged(&env)[0]);
    let (status, err) = follower.interrupt();
    assert_eq!(status.code(), Some(130), "{status}: {err}");

    // As a table: a row per event as it comes.
    let follower = Follower::start(&env, &["--since", "7d"]);
    let mut shown = String::new();
    while !has_cell(&shown, "c") {
        let (line, _) = follower
            .line(Duration::from_secs(3))
            .expect("a row within 3 s");
        shown.push_str(&line);
        shown.push('\n');
    }
    env.project("fresh");
    loop {
        let (line, _) = follower
            .line(Duration::from_secs(3))
            .expect("a row within 3 s");
        if has_cell(&line, "fresh") {
            assert!(has_cell(&line, "project.create"), "{line}");
            break;
        }
    }
    assert!(!has_cell(&shown, "old"), "before --since:\n{shown}");
    let (status, err) = follower.interrupt();
    assert_eq!(status.code(), Some(130), "{status}: {err}");

    // With filters: only the events that pass them all, past and new.
    let follower = Follower::start(
        &env,
        &[
            "--json",
            "--since",
            "7d",
            "--project",
            "c",
            "--action",
            "token.create",
        ],
    );
    env.project("d");
    env.token("d", "30");
    env.run(&["token", "revoke", id_of(&env.token("c", "30")), "--yes"])
        .success();
    let (event, _) = follower.event();
    assert_eq!(
        event,
        only(
            &logged(&env),
            "token.create",
            event["token_id"].as_str().unwrap()
        )
        .clone()
    );
    assert_eq!(
        (event["project"].as_str(), event["action"].as_str()),
        (Some("c"), Some("token.create"))
    );
    assert!(
        follower.line(Duration::from_millis(500)).is_none(),
        "an event the filters exclude"
    );
    let (status, err) = follower.interrupt();
    assert_eq!(status.code(), Some(130), "{status}: {err}");
}

/// On PostgreSQL, writers are not serialized: a change whose event took its place in the log
/// (its seq) may commit after a later one. A follower must print it all the same. The test
/// makes one change slow to commit after its event is inserted (a trigger of the test's own
/// database sleeps 2 s, as a slow network between the INSERT and the COMMIT would), and
/// another commits meanwhile. On SQLite writers take turns, and both simply come.
#[test]
fn follow_misses_no_event_committed_out_of_order() {
    let env = TestEnv::new();
    env.project("seed");
    let follower = Follower::start(&env, &["--json", "--since", "1h"]);
    assert_eq!(follower.event().0["project"], "seed");
    let postgres = backend() == Backend::Postgres;
    if postgres {
        env.sql()
            .batch(
                "CREATE FUNCTION public.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.project = 'slow' THEN PERFORM pg_sleep(2); END IF;
                     RETURN NULL;
                 END $$;
                 CREATE TRIGGER slow_commit AFTER INSERT ON autheona.events
                 FOR EACH ROW EXECUTE FUNCTION public.slow_commit();",
            )
            .expect("a slow trigger");
    }
    let printed: Vec<Value> = std::thread::scope(|scope| {
        let slow = scope.spawn(|| env.run(&["project", "create", "slow"]).success());
        if postgres {
            // Until the slow change has its seq, and sleeps before its commit.
            let deadline = Instant::now() + HANG_GUARD;
            let mut sql = env.sql();
            while sql.count(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event = 'PgSleep'",
            ) == 0
            {
                assert!(Instant::now() < deadline, "the slow change never started");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        env.project("fast");
        let first = follower.event().0;
        slow.join().unwrap();
        let (second, _) = follower.line(Duration::from_secs(3)).unwrap_or_else(|| {
            panic!(
                "printed only {first}: the other change, committed after a later one, never came"
            )
        });
        vec![first, serde_json::from_str(&second).expect("a JSON line")]
    });
    let mut projects: Vec<&str> = printed
        .iter()
        .map(|e| e["project"].as_str().unwrap())
        .collect();
    projects.sort_unstable();
    assert_eq!(projects, ["fast", "slow"], "{printed:#?}");
    let (status, err) = follower.interrupt();
    assert_eq!(status.code(), Some(130), "{status}: {err}");
}

/// Whether a word of `text` is `cell`.
fn has_cell(text: &str, cell: &str) -> bool {
    text.split_whitespace().any(|word| word == cell)
}

/// `project create NAME` with the clock moved by `offset`.
fn project_at(env: &TestEnv, offset: &str, name: &str) {
    let assert = moved_clock(env, offset)
        .args(["project", "create", name])
        .assert()
        .success();
    without_clock_warning(&stderr(&assert), offset);
}

#[test]
fn follow_ends_quietly_when_its_reader_goes_away() {
    let env = TestEnv::new();
    env.project("demo");
    // The reader gone from the start, and no event coming.
    for args in [
        &[][..],
        &["--json"],
        &["--since", "1h"],
        &["--json", "--since", "1h"],
    ] {
        let mut cmd = env.std_cmd();
        cmd.args(["log", "--follow"]).args(args);
        let run = Process::new(cmd)
            .stdout_closed()
            .kill_after(Duration::from_secs(5))
            .run();
        assert!(!run.killed_at_deadline, "{args:?}: still running 5 s after");
        assert_eq!(run.status.code(), Some(0), "{args:?}: {}", run.status);
        assert_eq!(String::from_utf8_lossy(&run.stderr), "", "{args:?}");
    }

    // No stdout at all (`>&-`): Rust's runtime opens /dev/null on it, where every event would
    // be lost; it ends as if its reader had gone.
    for args in [&[][..], &["--json", "--since", "1h"]] {
        let mut cmd = env.std_cmd();
        cmd.args(["log", "--follow"]).args(args);
        close_stdout_at_exec(&mut cmd);
        let run = Process::new(cmd).kill_after(Duration::from_secs(5)).run();
        assert!(
            !run.killed_at_deadline,
            "{args:?}, closed: still running 5 s after"
        );
        assert_eq!(
            run.status.code(),
            Some(0),
            "{args:?}, closed: {}",
            run.status
        );
        assert_eq!(String::from_utf8_lossy(&run.stderr), "", "{args:?}, closed");
    }

    // The reader goes away while it waits, after the past was printed, no event coming.
    for args in [&["--since", "1h"][..], &["--json", "--since", "1h"]] {
        let mut cmd = env.std_cmd();
        cmd.args(["log", "--follow"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start log --follow");
        let out = child.stdout.take().unwrap();
        let printed = readable_within(&out, Duration::from_secs(3));
        drop(out);
        let status = wait_for_exit(&mut child, Duration::from_secs(5));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(printed, "{args:?}: the past was not printed");
        let status = status.unwrap_or_else(|| panic!("{args:?}: still running 5 s after"));
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {status}: {err}");
        assert_eq!(err, "", "{args:?}");
    }
}

/// Whether something can be read from `pipe` within `limit`.
fn readable_within(pipe: &impl std::os::fd::AsRawFd, limit: Duration) -> bool {
    let mut fds = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll(2) on one pollfd that lives through the call.
    let ready = unsafe { libc::poll(&mut fds, 1, limit.as_millis() as libc::c_int) };
    ready == 1 && fds.revents & libc::POLLIN != 0
}

// ---------------------------------------------------------------------------------------------
// 9. Never a secret.

#[test]
fn no_token_secret_or_hash_is_ever_recorded() {
    let env = TestEnv::new();
    env.project("demo");
    env.project("doomed");
    let mut tokens: Vec<String> = Vec::new();
    let mut hashes: Vec<String> = Vec::new();
    let mut keep = |env: &TestEnv, token: String| {
        let hash = env
            .sql()
            .value(&format!(
                "SELECT secret_hash FROM tokens WHERE id = '{}'",
                id_of(&token)
            ))
            .expect("a hash");
        hashes.push(hash);
        tokens.push(token.clone());
        token
    };
    let first = keep(&env, env.described_token("demo", "30", "Deploy key"));
    let second = keep(&env, env.token("demo", "never"));
    let rotated = keep(
        &env,
        created_token(
            &env.run(&["token", "rotate", id_of(&first), "--yes"])
                .success(),
        ),
    );
    let json: Value = serde_json::from_str(&stdout(
        &env.run(&[
            "token",
            "rotate",
            id_of(&second),
            "--grace",
            "1h",
            "--json",
            "--yes",
        ])
        .success(),
    ))
    .unwrap();
    keep(&env, json["token"].as_str().unwrap().to_owned());
    env.run(&["token", "revoke", id_of(&rotated), "--yes"])
        .success();
    keep(&env, token_at(&env, "-40d", "demo", "30"));
    env.run(&["token", "prune", "--expired", "--yes"]).success();
    keep(&env, token_at(&env, "-200d", "demo", "365"));
    env.run(&["token", "prune", "--unused-for", "100", "--yes"])
        .success();
    keep(&env, env.token("doomed", "30"));
    env.run(&["project", "delete", "doomed", "--yes"]).success();
    at(
        &env,
        json_date(&json["old_token_stops_at"]) + TimeDelta::seconds(1),
    )
    .args(["project", "create", "later"])
    .assert()
    .success();
    let all = logged(&env);
    let actions: BTreeSet<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions.into_iter().collect::<Vec<_>>(),
        [
            "project.create",
            "project.delete",
            "token.create",
            "token.prune",
            "token.revoke",
            "token.rotate",
            "token.stop"
        ]
    );

    let mut dump = String::new();
    for row in env.read_only_sql().rows("SELECT * FROM events") {
        for value in row {
            dump.push_str(value.as_deref().unwrap_or("NULL"));
            dump.push('\n');
        }
    }
    dump.push_str(&stdout(&log(&env, &["--json"]).success()));
    dump.push_str(&stdout(&log(&env, &[]).success()));
    for needle in ["aut_", "$argon2"] {
        assert!(!dump.contains(needle), "{needle} in the events:\n{dump}");
    }
    for token in &tokens {
        assert!(!dump.contains(secret_of(token)), "a secret in the events");
        assert!(!dump.contains(body_of(token)), "a token in the events");
    }
    for hash in &hashes {
        let digest = hash.rsplit('$').next().unwrap();
        let salt = hash.rsplit('$').nth(1).unwrap();
        assert!(!dump.contains(digest), "a hash in the events");
        assert!(!dump.contains(salt), "a hash's salt in the events");
    }
}

// ---------------------------------------------------------------------------------------------
// 10. No store.

/// Without a store: no events, where the store would be a file not there yet. A PostgreSQL
/// database without autheona's schema is refused instead, as by every command but `project
/// create` (exit 3, saying how to start; see `token::list_without_a_database_is_empty`).
#[test]
fn log_without_a_store_says_no_events_and_creates_nothing() {
    let env = TestEnv::new();
    let cases: [(&[&str], &str); 4] = [
        (&[], "No events.\n"),
        (&["--project", "demo"], "No events match.\n"),
        (&["--json"], ""),
        (&["--json", "--action", "token.create"], ""),
    ];
    for (args, said) in cases {
        let assert = log(&env, args);
        match backend() {
            Backend::Sqlite => {
                let assert = assert.success();
                if args.first() == Some(&"--json") {
                    let out = stdout(&assert);
                    assert_eq!(
                        serde_json::from_str::<Value>(&out).ok(),
                        Some(json!([])),
                        "{out}"
                    );
                } else {
                    assert.stdout("").stderr(said.to_owned());
                }
            }
            Backend::Postgres => {
                let hint = assert_error(&assert.code(3), &env.missing_store_error());
                assert_eq!(hint.as_deref(), Some(env.missing_store_hint()), "{args:?}");
            }
        }
    }
    assert!(!env.store_exists(), "log created a store");
}

// ---------------------------------------------------------------------------------------------
// A long log.

/// `count` more events, of a project, by direct SQL (as many as a busy store makes in years).
fn add_events(env: &TestEnv, count: u32) {
    let sql = match backend() {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
             INSERT INTO events (at, action, project, token_id, description, detail, actor_user,
                                 actor_uid, actor_host)
             SELECT 1700000000 + i, 'token.create', 'demo', 'AAAAAAAAAAAA',
                    'a description of some length, as people write them', '{{}}', 'ci', 1000,
                    'build-01'
             FROM n"
        ),
        Backend::Postgres => format!(
            "INSERT INTO autheona.events (at, action, project, token_id, description, detail,
                                          actor_user, actor_uid, actor_host, actor_role)
             SELECT 1700000000 + i, 'token.create', 'demo', 'AAAAAAAAAAAA',
                    'a description of some length, as people write them', '{{}}', 'ci', 1000,
                    'build-01', 'autheona_app'
             FROM generate_series(1, {count}) AS i"
        ),
    };
    env.sql().batch(&sql).unwrap();
}

/// `log` streams the events from the store, as a table (two passes) and as JSON: a log a
/// hundred times longer takes no more memory to read.
#[test]
fn reading_a_long_log_takes_no_more_memory_than_a_short_one() {
    let env = TestEnv::new();
    env.project("demo");
    let peaks = |env: &TestEnv| -> Vec<i64> {
        [&["log"][..], &["log", "--json"]]
            .iter()
            .map(|args| {
                let mut cmd = env.std_cmd();
                cmd.args(*args);
                peak_kib(cmd)
            })
            .collect()
    };
    add_events(&env, 1_000);
    let few = peaks(&env);
    add_events(&env, 99_000);
    let many = peaks(&env);
    for (few, many) in few.iter().zip(&many) {
        assert!(
            many - few < 8 * 1024,
            "1,000 events: {few} KiB at most; 100,000: {many} KiB"
        );
    }
}
