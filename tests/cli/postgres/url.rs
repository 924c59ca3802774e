//! Where the store is: a `postgres://` or `postgresql://` URL, completed from libpq's
//! variables, a socket directory as host, the password from a password file, and the name
//! the server sees.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::server::{HBA_ANY, Server};
use super::{
    Locked, PgEnv, assert_store_error, finished, has_schema, in_background, projects_in,
    waiting_backend,
};
use crate::common::output;
use crate::pg;

#[test]
fn a_bare_url_takes_host_port_user_password_and_database_from_the_pg_variables() {
    let Some(env) = PgEnv::new() else { return };
    let mut cmd = env.with_server();
    cmd.env("PGDATABASE", &env.db)
        .env("AUTHEONA_DB", "postgres://")
        .args(["project", "create", "demo"]);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(projects_in(&mut env.sql()), ["demo"]);
    assert_no_files(env.dir());
}

#[test]
fn the_postgresql_scheme_names_a_database_too() {
    let Some(env) = PgEnv::new() else { return };
    let mut cmd = env.with_server();
    cmd.env("AUTHEONA_DB", format!("postgresql:///{}", env.db))
        .args(["project", "create", "demo"]);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(projects_in(&mut env.sql()), ["demo"]);
    assert_no_files(env.dir());
}

/// Nothing but the home directory in `dir`: the URL was not taken for a file path.
fn assert_no_files(dir: &Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("read the test's directory")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["home"], "files were made beside the home directory");
}

/// A server of the test's own that listens on its socket only (no TCP at all), letting
/// anyone in there, with a database `t`.
fn socket_only_server() -> Server {
    let mut server = Server::new(HBA_ANY);
    server.configure(&["listen_addresses = ''".to_owned()]);
    server.start();
    server.create_database("t");
    server
}

/// The socket directory the server reports, as an administrator would find it.
fn reported_socket_dir(server: &Server) -> String {
    let dir: String = server
        .admin("t")
        .query_one("SHOW unix_socket_directories", &[])
        .expect("show unix_socket_directories")
        .get(0);
    assert_eq!(Path::new(&dir), server.socket_dir());
    dir
}

/// `project create demo` with the environment `vars` (and `HOME`, `PATH`, ...) succeeds on
/// `server`'s database `t`.
fn creates_a_project_on(server: &Server, vars: &[(&str, String)]) {
    let files = tempfile::tempdir().expect("temp dir");
    let mut cmd = super::bare_command(&files.path().join("home"), files.path());
    cmd.envs(vars.iter().map(|(k, v)| (k, v)))
        .args(["project", "create", "demo"]);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(projects_in(&mut server.admin("t")), ["demo"]);
}

#[test]
fn a_socket_directory_in_the_host_parameter_is_connected_to() {
    if !pg::available() {
        return;
    }
    let server = socket_only_server();
    let dir = reported_socket_dir(&server);
    let url = format!("postgres:///t?host={dir}&port={}", server.port);
    creates_a_project_on(
        &server,
        &[("AUTHEONA_DB", url), ("PGUSER", "postgres".to_owned())],
    );
}

#[test]
fn a_socket_directory_in_pghost_is_connected_to() {
    if !pg::available() {
        return;
    }
    let server = socket_only_server();
    let dir = reported_socket_dir(&server);
    creates_a_project_on(
        &server,
        &[
            ("AUTHEONA_DB", "postgres:///t".to_owned()),
            ("PGHOST", dir),
            ("PGPORT", server.port.to_string()),
            ("PGUSER", "postgres".to_owned()),
        ],
    );
}

#[test]
fn a_percent_encoded_socket_directory_as_the_urls_host_is_connected_to() {
    if !pg::available() {
        return;
    }
    let server = socket_only_server();
    let dir = reported_socket_dir(&server).replace('/', "%2F");
    creates_a_project_on(
        &server,
        &[(
            "AUTHEONA_DB",
            format!("postgres://postgres@{dir}:{}/t", server.port),
        )],
    );
}

/// The password file line for the test server, its user and `db`.
fn passfile_line(db: &str) -> String {
    format!(
        "# the test server\n{}:{}:{db}:{}:{}\n",
        pg::var("PGHOST"),
        pg::var("PGPORT"),
        pg::var("PGUSER"),
        pg::var("PGPASSWORD")
            .replace('\\', "\\\\")
            .replace(':', "\\:")
    )
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write a password file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The command for this test's database, with the test server's variables but the password.
fn without_password(env: &PgEnv) -> std::process::Command {
    let mut cmd = env.bare();
    for var in ["PGHOST", "PGPORT", "PGUSER"] {
        cmd.env(var, pg::var(var));
    }
    cmd.env("AUTHEONA_DB", pg::url(&env.db));
    cmd
}

#[test]
fn the_password_comes_from_the_pgpass_file_in_home() {
    let Some(env) = PgEnv::new() else { return };
    write_mode(&env.home().join(".pgpass"), &passfile_line(&env.db), 0o600);
    let mut cmd = without_password(&env);
    cmd.args(["project", "create", "demo"]);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stderr)
            .matches("warning")
            .count(),
        0
    );
    assert_eq!(projects_in(&mut env.sql()), ["demo"]);
}

#[test]
fn the_password_comes_from_the_file_pgpassfile_names() {
    let Some(env) = PgEnv::new() else { return };
    let file = env.dir().join("passwords");
    write_mode(&file, &passfile_line(&env.db), 0o600);
    let mut cmd = without_password(&env);
    cmd.env("PGPASSFILE", &file)
        .args(["project", "create", "demo"]);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(projects_in(&mut env.sql()), ["demo"]);
}

#[test]
fn a_password_file_others_may_read_is_ignored_with_a_warning() {
    let Some(env) = PgEnv::new() else { return };
    let file = env.home().join(".pgpass");
    write_mode(&file, &passfile_line(&env.db), 0o644);
    let mut cmd = without_password(&env);
    cmd.args(["project", "create", "demo"]);
    let mut run = output(cmd);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    let (warning, rest) = stderr.split_once('\n').expect("more than one line");
    assert!(
        warning.starts_with("warning: ")
            && warning.contains(&file.display().to_string())
            && warning.contains("chmod 0600"),
        "{stderr}"
    );
    assert!(
        !rest.contains("warning"),
        "warned more than once:\n{stderr}"
    );
    // The rest is the failure to log in without a password.
    run.stderr = rest.as_bytes().to_vec();
    assert_store_error(&run, "password");
    assert!(!has_schema(&mut env.sql()));
}

#[test]
fn pgappname_is_the_application_name_the_server_sees() {
    let Some(env) = PgEnv::new() else { return };
    env.demo_token();
    let locked = Locked::take(env.sql());
    let mut cmd = env.std_cmd();
    cmd.env("PGAPPNAME", "deploy-host-7")
        .args(["token", "list"]);
    let running = in_background(cmd);
    let mut admin = env.sql();
    let pid = waiting_backend(&mut admin, &env.db, &running);
    let name: String = admin
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .expect("read pg_stat_activity")
        .get(0);
    locked.release();
    assert_eq!(name, "deploy-host-7");
    assert!(finished(running).status.success());
}

#[test]
fn the_urls_own_parts_win_over_the_pg_variables() {
    let Some(env) = PgEnv::new() else { return };
    let mut cmd = env.bare();
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", super::free_port().to_string())
        .env("PGUSER", "autheona_nobody")
        .env("PGDATABASE", "autheona_no_such_database")
        .env("PGPASSWORD", pg::var("PGPASSWORD"))
        .env(
            "AUTHEONA_DB",
            format!(
                "postgres://{}@{}:{}/{}",
                pg::var("PGUSER"),
                pg::var("PGHOST"),
                pg::var("PGPORT"),
                env.db
            ),
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

#[test]
fn pgport_applies_to_a_url_host_without_a_port() {
    if !pg::available() {
        return;
    }
    // A server of the test's own, on a free port: not 5432, which a wrong default would hit.
    let server = Server::started(HBA_ANY);
    server.create_database("t");
    creates_a_project_on(
        &server,
        &[
            ("AUTHEONA_DB", "postgres://postgres@localhost/t".to_owned()),
            ("PGPORT", server.port.to_string()),
            ("PGPASSWORD", super::server::PASSWORD.to_owned()),
        ],
    );
}
