//! The host's clock against the database server's: expiry is judged by the host's, so a
//! command says when the two are more than 30 s apart, once.

use super::PgEnv;
use crate::common::{faketime_lib, stderr};

/// `args` with this process's clock moved by `offset` (libfaketime's words); its stderr.
fn with_clock(env: &PgEnv, offset: &str, args: &[&str]) -> String {
    let assert = env
        .cmd()
        .env("FAKETIME", offset)
        .env("LD_PRELOAD", faketime_lib())
        .args(args)
        .assert()
        .success();
    stderr(&assert)
}

fn listing_with_clock(env: &PgEnv, offset: &str) -> String {
    with_clock(env, offset, &["project", "list"])
}

#[test]
fn a_clock_an_hour_ahead_of_the_servers_is_warned_about_once() {
    let Some(env) = PgEnv::new() else { return };
    env.run(&["project", "create", "demo"]).success();
    for args in [
        &["project", "list"][..],
        &["project", "create", "other"],
        &["token", "create", "-p", "demo", "-e", "30"],
        &["token", "list"],
    ] {
        let err = with_clock(&env, "+1h", args);
        let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
        assert_eq!(warnings.len(), 1, "{args:?}: {err}");
        assert!(
            warnings[0].contains("ahead of the database server") && warnings[0].contains("NTP"),
            "{err}"
        );
    }
    assert_eq!(listing_with_clock(&env, "+1h").lines().count(), 1);
}

#[test]
fn a_clock_an_hour_behind_the_servers_is_warned_about_once() {
    let Some(env) = PgEnv::new() else { return };
    env.run(&["project", "create", "demo"]).success();
    let err = listing_with_clock(&env, "-1h");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("warning: ") && err.contains("behind the database server"),
        "{err}"
    );
}

#[test]
fn a_clock_within_30_s_of_the_servers_is_not_warned_about() {
    let Some(env) = PgEnv::new() else { return };
    env.run(&["project", "create", "demo"]).success();
    assert_eq!(listing_with_clock(&env, "+10"), "");
    assert_eq!(listing_with_clock(&env, "-10"), "");
}
