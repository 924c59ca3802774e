use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::*;

/// `url` resolved with exactly the variables `vars`, home `/home/u` and user `osuser`.
fn resolved(url: &str, vars: &[(&str, &str)]) -> Result<Target, String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let var = move |name: &str| vars.get(name).cloned();
    resolve(
        url,
        &Surroundings {
            var: &var,
            home: Some(Path::new("/home/u")),
            os_user: &|| Some("osuser".to_owned()),
        },
    )
}

fn target(url: &str) -> Target {
    resolved(url, &[]).expect("a valid URL")
}

#[test]
fn a_full_url_gives_every_part() {
    let t = target(
        "postgres://alice@db.example:6543/tokens?sslmode=verify-full&sslrootcert=/etc/ca.pem",
    );
    assert_eq!(t.host, Host::Tcp("db.example".into()));
    assert_eq!(t.port, 6543);
    assert_eq!(t.user, "alice");
    assert_eq!(t.dbname, "tokens");
    assert_eq!(t.sslmode, SslMode::VerifyFull);
    assert_eq!(t.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert!(t.root_cert_given);
    assert!(t.password.is_none());
    assert_eq!(
        t.to_string(),
        "db.example:6543 (database tokens, user alice)"
    );
}

#[test]
fn both_schemes_are_accepted() {
    assert_eq!(target("postgresql://h/d").dbname, "d");
    assert_eq!(target("postgres://h/d").dbname, "d");
    assert!(is_url("postgresql://"));
    assert!(!is_url("/var/lib/autheona.db"));
    assert!(!is_url("postgres:/x"));
}

#[test]
fn variables_fill_what_the_url_leaves_out() {
    let vars = [
        ("PGHOST", "pg.internal"),
        ("PGPORT", "5433"),
        ("PGUSER", "bob"),
        ("PGDATABASE", "auth"),
        ("PGSSLMODE", "require"),
        ("PGCONNECT_TIMEOUT", "9"),
        ("PGAPPNAME", "deployer"),
        ("PGPASSWORD", "pw"),
    ];
    let t = resolved("postgres://", &vars).unwrap();
    assert_eq!(t.host, Host::Tcp("pg.internal".into()));
    assert_eq!(t.port, 5433);
    assert_eq!(t.user, "bob");
    assert_eq!(t.dbname, "auth");
    assert_eq!(t.sslmode, SslMode::Require);
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(9)));
    assert_eq!(t.application_name, "deployer");
    assert_eq!(t.password.as_ref().map(Password::expose), Some("pw"));

    // What the URL says wins; PGPORT still applies to a host named without a port.
    let t = resolved("postgres://carol@other/db2?sslmode=disable", &vars).unwrap();
    assert_eq!(t.host, Host::Tcp("other".into()));
    assert_eq!(t.port, 5433);
    assert_eq!((t.user.as_str(), t.dbname.as_str()), ("carol", "db2"));
    assert_eq!(t.sslmode, SslMode::Disable);
}

#[test]
fn empty_variables_count_as_unset() {
    let t = resolved("postgres://", &[("PGUSER", ""), ("PGPORT", "")]).unwrap();
    assert_eq!(t.user, "osuser");
    assert_eq!(t.port, 5432);
}

#[test]
fn libpq_defaults_apply_last() {
    let t = target("postgres://");
    assert!(matches!(t.host, Host::Socket(_)));
    assert_eq!(t.port, 5432);
    assert_eq!(t.user, "osuser");
    assert_eq!(t.dbname, "osuser", "the database is named after the user");
    assert_eq!(t.sslmode, SslMode::Prefer);
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(5)));
    assert_eq!(t.application_name, "autheona");
    assert_eq!(t.passfile.as_deref(), Some(Path::new("/home/u/.pgpass")));
    assert_eq!(
        t.root_cert.as_deref(),
        Some(Path::new("/home/u/.postgresql/root.crt"))
    );
    assert!(!t.root_cert_given);
}

#[test]
fn unix_socket_hosts() {
    let t = target("postgres:///tokens?host=/run/postgresql");
    assert_eq!(t.host, Host::Socket("/run/postgresql".into()));
    assert_eq!(t.dbname, "tokens");
    assert_eq!(
        t.to_string(),
        "/run/postgresql/.s.PGSQL.5432 (database tokens, user osuser)"
    );
    let t = target("postgres://%2Fvar%2Frun%2Fpostgresql/tokens");
    assert_eq!(t.host, Host::Socket("/var/run/postgresql".into()));
    let t = resolved("postgres:///x", &[("PGHOST", "/tmp")]).unwrap();
    assert_eq!(t.host, Host::Socket("/tmp".into()));
}

#[test]
fn ipv6_hosts_and_escapes() {
    let t = target("postgres://[::1]:5439/d%20b");
    assert_eq!(t.host, Host::Tcp("::1".into()));
    assert_eq!(t.port, 5439);
    assert_eq!(t.dbname, "d b");
    assert_eq!(t.to_string(), "[::1]:5439 (database d b, user osuser)");
    assert_eq!(target("postgres://a%40b@h/d").user, "a@b");
}

#[test]
fn passwords_are_found_and_never_shown() {
    for url in [
        "postgres://u:s3cret@h/d",
        "postgres://u:s3cret@h",
        "postgres://h/d?password=s3cret",
        "postgresql://u:s3cret@h:1/d?sslmode=require",
    ] {
        assert!(has_password(url), "{url}");
        let t = target(url);
        assert_eq!(t.password.as_ref().map(Password::expose), Some("s3cret"));
        assert!(!t.to_string().contains("s3cret"));
        assert!(!format!("{t:?}").contains("s3cret"), "Debug hides it too");
    }
    for url in [
        "postgres://u@h/d",
        "postgres://h/d?sslmode=require",
        "postgres://",
    ] {
        assert!(!has_password(url), "{url}");
    }
    // A malformed URL is still told to hold a password, so argv never carries one.
    assert!(has_password("postgres://u:s3cret@h,,:x/d?&&"));
    // So is one whose password holds a '/', '?' or '#' unescaped (base64 has '/').
    for url in [
        "postgres://u:s3c/ret==@h/d",
        "postgres://u:12345/s3cret@h/d",
        "postgres://u:s3c?ret@h/d",
        "postgres://u:s3c#ret@h:1/d",
        "postgres://app:Xy7?port=9z@db.internal/prod",
        "postgres://app:pa55?word=x@db.internal/prod",
    ] {
        assert!(has_password(url), "{url}");
    }
    // An '@' in a parameter's value is not a password's end.
    assert!(!has_password(
        "postgres://h:5432/d?application_name=me@there"
    ));
    assert_eq!(
        target("postgres://h:5432/d?application_name=me@there").port,
        5432
    );
}

#[test]
fn errors_never_quote_the_url() {
    for (url, words) in [
        ("postgres://u:s3cret@h:notaport/d", "not a port number"),
        ("postgres://u:s3cret@h/d?sslmode=maybe", "sslmode"),
        ("postgres://u:s3cret@h/d?color=blue", "does not know"),
        ("postgres://u:s3cret@a,b/d", "several hosts"),
        ("postgres://u:s3cret@[::1/d", "unclosed ["),
        ("postgres://u:s3cret@h/d?sslmode", "no `=value`"),
        (
            "postgres://u:s3cret@h/d?connect_timeout=soon",
            "whole seconds",
        ),
        (
            "postgres://u:s3cret@h/d?sslrootcert=system",
            "not supported",
        ),
        ("postgres://u:s3c/ret==@h/d", "percent-encode"),
        ("postgres://u:12345/s3cret@h/d", "percent-encode"),
        ("postgres://u:s3c?ret@h/d", "percent-encode"),
        (
            "postgres://app:Xy7?port=9z@db.internal/prod",
            "percent-encode",
        ),
    ] {
        let err = resolved(url, &[]).expect_err(url);
        assert!(err.contains(words), "{url}: {err}");
        assert!(!err.contains("s3cret"), "{url}: {err}");
    }
}

#[test]
fn every_libpq_sslmode_is_known() {
    for (mode, expected) in [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Prefer),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        assert_eq!(
            target(&format!("postgres://h?sslmode={mode}")).sslmode,
            expected
        );
    }
}

#[test]
fn connect_timeout_follows_libpq() {
    let timeout = |value: &str| target(&format!("postgres://h?connect_timeout={value}"));
    assert_eq!(timeout("0").connect_timeout, None, "0 waits indefinitely");
    assert_eq!(timeout("1").connect_timeout, Some(Duration::from_secs(2)));
    assert_eq!(timeout("30").connect_timeout, Some(Duration::from_secs(30)));
}

fn passfile(text: &str, mode: u32) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

#[test]
fn the_password_file_is_read_as_libpq_reads_it() {
    let file = passfile(
        "# a comment\n\
         other:5432:*:*:wrong\n\
         db.example:6543:tokens:alice:first\\:half\\\\\n\
         *:*:*:alice:fallback\n",
        0o600,
    );
    let found = |url: &str| {
        let (password, warning) = password_from_file(&target(url), file.path());
        assert!(warning.is_none());
        password.map(|p| p.expose().to_owned())
    };
    assert_eq!(
        found("postgres://alice@db.example:6543/tokens").as_deref(),
        Some("first:half\\")
    );
    assert_eq!(
        found("postgres://alice@db.example:6543/other").as_deref(),
        Some("fallback")
    );
    assert_eq!(found("postgres://bob@db.example:6543/tokens"), None);
    // A socket connection matches the line for localhost.
    let local = passfile("localhost:5432:d:u:viasocket\n", 0o600);
    let (password, _) = password_from_file(&target("postgres://u@%2Ftmp/d"), local.path());
    assert_eq!(
        password.map(|p| p.expose().to_owned()).as_deref(),
        Some("viasocket")
    );
}

#[test]
fn a_password_file_others_may_read_is_ignored_with_a_warning() {
    let file = passfile("*:*:*:*:secret\n", 0o644);
    let (password, warning) = password_from_file(&target("postgres://u@h/d"), file.path());
    assert!(password.is_none());
    let warning = warning.expect("a warning");
    assert!(warning.contains("chmod 0600"), "{warning}");
    assert!(!warning.contains("secret"));
}
