//! A password never on the command line, and never shown: `--db` with one is refused before
//! anything runs; in `AUTHEONA_DB` it is used; no output of any failure holds it.

use super::{PgEnv, assert_store_error, free_port, has_schema, projects_in};
use crate::common::{Run, output};
use crate::pg;

/// A password to look for in outputs: nothing else prints these words.
const CANARY: &str = "Canary-Pw-7f3a";

/// `postgres://USER:PASSWORD@HOST:PORT/DB` for the test server, with `password` in the URL.
fn url_with_password(env: &PgEnv, password: &str) -> String {
    format!(
        "postgres://{}:{password}@{}:{}/{}",
        pg::var("PGUSER"),
        pg::var("PGHOST"),
        pg::var("PGPORT"),
        env.db
    )
}

#[test]
fn a_password_in_the_db_flag_is_refused_before_anything_runs() {
    let Some(env) = PgEnv::new() else { return };
    // The right password: the command would work, were it not refused.
    let url = url_with_password(&env, &pg::var("PGPASSWORD"));
    let mut cmd = env.bare();
    cmd.args(["--db", &url, "project", "create", "demo"]);
    assert_refused_in_argv(&output(cmd), &pg::var("PGPASSWORD"));
    assert!(!has_schema(&mut env.sql()), "the refused command ran");
}

#[test]
fn a_password_parameter_in_the_db_flag_is_refused_before_anything_runs() {
    let Some(env) = PgEnv::new() else { return };
    let url = format!(
        "postgres://{}@{}:{}/{}?password={}",
        pg::var("PGUSER"),
        pg::var("PGHOST"),
        pg::var("PGPORT"),
        env.db,
        pg::var("PGPASSWORD")
    );
    let mut cmd = env.bare();
    cmd.args(["--db", &url, "project", "create", "demo"]);
    assert_refused_in_argv(&output(cmd), &pg::var("PGPASSWORD"));
    assert!(!has_schema(&mut env.sql()), "the refused command ran");
}

/// Exit 2, nothing on stdout, one line on stderr naming the three places a password may be,
/// and not the password.
#[track_caller]
fn assert_refused_in_argv(run: &Run, password: &str) {
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert_eq!(run.stdout, b"");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for place in ["PGPASSWORD", "~/.pgpass", "AUTHEONA_DB"] {
        assert!(stderr.contains(place), "{place} not named: {stderr}");
    }
    assert!(
        !stderr.contains(password),
        "the password was shown: {stderr}"
    );
}

#[test]
fn a_password_in_autheona_db_is_used() {
    let Some(env) = PgEnv::new() else { return };
    let mut cmd = env.bare();
    cmd.env(
        "AUTHEONA_DB",
        url_with_password(&env, &pg::var("PGPASSWORD")),
    )
    .args(["project", "create", "demo"]);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(projects_in(&mut env.sql()), ["demo"]);
}

/// Neither stdout nor stderr holds the canary password, nor its percent-decoded form.
#[track_caller]
fn assert_not_shown(run: &Run) {
    for output in [&run.stdout, &run.stderr] {
        let text = String::from_utf8_lossy(output);
        for form in [CANARY, "Canary-Pw"] {
            assert!(!text.contains(form), "the password was shown:\n{text}");
        }
    }
}

/// `args` with `AUTHEONA_DB` set to `url` (which holds the canary) and nothing else of the
/// server's.
fn run_with_db(env: &PgEnv, url: &str, args: &[&str]) -> Run {
    let mut cmd = env.bare();
    cmd.env("AUTHEONA_DB", url).args(args);
    output(cmd)
}

#[test]
fn a_wrong_password_is_not_shown() {
    let Some(env) = PgEnv::new() else { return };
    let run = run_with_db(&env, &url_with_password(&env, CANARY), &["token", "list"]);
    assert_store_error(&run, "password authentication failed");
    assert_not_shown(&run);
}

#[test]
fn a_percent_encoded_wrong_password_is_not_shown_decoded() {
    let Some(env) = PgEnv::new() else { return };
    let encoded = CANARY.replace('-', "%2D");
    let run = run_with_db(&env, &url_with_password(&env, &encoded), &["token", "list"]);
    assert_store_error(&run, "password authentication failed");
    assert_not_shown(&run);
    assert!(!String::from_utf8_lossy(&run.stderr).contains(&encoded));
}

#[test]
fn an_unreachable_server_does_not_show_the_password() {
    let Some(env) = PgEnv::new() else { return };
    let url = format!("postgres://someone:{CANARY}@127.0.0.1:{}/db", free_port());
    let run = run_with_db(&env, &url, &["project", "create", "demo"]);
    assert_store_error(&run, "127.0.0.1");
    assert_not_shown(&run);
}

#[test]
fn an_unknown_sslmode_does_not_show_the_password() {
    let Some(env) = PgEnv::new() else { return };
    let url = format!("{}?sslmode=sometimes", url_with_password(&env, CANARY));
    let run = run_with_db(&env, &url, &["project", "list"]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("sslmode"));
    assert_not_shown(&run);
}

#[test]
fn a_url_with_a_bad_port_does_not_show_the_password() {
    let Some(env) = PgEnv::new() else { return };
    let url = format!("postgres://someone:{CANARY}@localhost:54x2/db");
    let run = run_with_db(&env, &url, &["project", "list"]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("port"));
    assert_not_shown(&run);
}

#[test]
fn a_url_with_an_unclosed_bracket_does_not_show_the_password() {
    let Some(env) = PgEnv::new() else { return };
    let url = format!("postgres://someone:{CANARY}@[::1/db");
    let run = run_with_db(&env, &url, &["project", "list"]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_not_shown(&run);
}

#[test]
fn a_url_with_an_unknown_parameter_does_not_show_the_password() {
    let Some(env) = PgEnv::new() else { return };
    let url = format!("{}?colour=blue", url_with_password(&env, CANARY));
    let run = run_with_db(&env, &url, &["project", "list"]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_not_shown(&run);
}

#[test]
fn help_does_not_show_the_password_in_autheona_db() {
    let Some(env) = PgEnv::new() else { return };
    let url = url_with_password(&env, CANARY);
    for args in [
        &["--help"][..],
        &["token", "create", "--help"],
        &["help", "project"],
    ] {
        let run = run_with_db(&env, &url, args);
        assert_eq!(run.status.code(), Some(0), "{args:?}");
        assert!(!run.stdout.is_empty(), "{args:?} printed no help");
        assert_not_shown(&run);
    }
}

#[test]
fn help_does_not_show_the_password_in_the_db_flag() {
    let Some(env) = PgEnv::new() else { return };
    let url = url_with_password(&env, CANARY);
    let mut cmd = env.bare();
    cmd.args(["--db", &url, "token", "list", "--help"]);
    let run = output(cmd);
    assert_not_shown(&run);
}

/// A URL typed where no URL is taken is quoted back by the usage error, its password hidden.
#[test]
fn a_url_typed_in_the_wrong_place_is_quoted_without_its_password() {
    let Some(env) = PgEnv::new() else { return };
    let url = url_with_password(&env, CANARY);
    for args in [
        vec!["token", "list", url.as_str()],
        vec!["store", "copy", "a.db", "b.db", url.as_str()],
        vec!["project", "create", "demo", url.as_str()],
    ] {
        let mut cmd = env.bare();
        cmd.args(&args);
        let run = output(cmd);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains(CANARY), "{args:?}: {stderr}");
        assert!(
            stderr.contains(":<redacted>@"),
            "{args:?}: the URL is quoted, its password hidden: {stderr}"
        );
    }
    assert!(!has_schema(&mut env.sql()), "nothing ran");
}
