//! libpq's sslmodes against a server of the test's own, with a certificate authority and a
//! server certificate for `localhost` (and no IP address) made here by the `openssl` command:
//! Debian's `ssl-cert`, which the `postgresql` package needs, needs it too, so it is there
//! wherever a server is, and the tests need no crate only for this.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::server::{self, HBA_ANY, HBA_TLS_ONLY, Server};
use super::{
    Locked, assert_store_error, bare_command, finished, has_schema, in_background, projects_in,
    waiting_backend,
};
use crate::common::output;

/// A certificate authority, a second one that signed nothing the server shows, and the
/// server's certificate (for `localhost`, signed by the first) and key.
struct Certs {
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

const CA_CONF: &str = "[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
CN = NAME
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

const SERVER_CONF: &str = "[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An elliptic-curve key and a self-signed CA certificate (for the name `name`), in `dir` as
/// `name`.key and `name`.pem.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    std::fs::write(dir.join("ca.cnf"), CA_CONF.replace("NAME", name)).expect("write ca.cnf");
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-config",
            "ca.cnf",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
        ],
    );
    dir.join(cert)
}

fn make_certs(dir: &Path) -> Certs {
    let ca = make_ca(dir, "ca");
    let other_ca = make_ca(dir, "other-ca");
    std::fs::write(dir.join("server.cnf"), SERVER_CONF).expect("write server.cnf");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            "server.cnf",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "server.cnf",
            "-extensions",
            "server",
            "-out",
            "server.pem",
        ],
    );
    Certs {
        ca,
        other_ca,
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    }
}

/// A server with TLS on (the certificate for `localhost`), pg_hba.conf `hba`, and a database
/// `t`; the directory the test's files (certificates, home) are in.
struct TlsSetup {
    server: Server,
    certs: Certs,
    files: tempfile::TempDir,
}

impl TlsSetup {
    fn new(hba: &str) -> TlsSetup {
        let files = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(files.path().join("home")).expect("home");
        let certs = make_certs(files.path());
        let mut server = Server::new(hba);
        let read = |path: &Path| std::fs::read(path).expect("read a certificate file");
        let cert = server.write_file("server.pem", &read(&certs.server_cert));
        let key = server.write_file("server.key", &read(&certs.server_key));
        server.configure(&[
            "ssl = on".to_owned(),
            format!("ssl_cert_file = '{}'", cert.display()),
            format!("ssl_key_file = '{}'", key.display()),
        ]);
        server.start();
        server.create_database("t");
        TlsSetup {
            server,
            certs,
            files,
        }
    }

    /// The binary, with `AUTHEONA_DB` the URL of database `t` at `host` with these parameters,
    /// and the password in `PGPASSWORD`. Its home has no `~/.postgresql/root.crt`.
    fn cmd(&self, host: &str, params: &str) -> Command {
        let home = self.files.path().join("home");
        let mut cmd = bare_command(&home, self.files.path());
        cmd.env(
            "AUTHEONA_DB",
            format!("postgres://postgres@{host}:{}/t?{params}", self.server.port),
        )
        .env("PGPASSWORD", server::PASSWORD);
        cmd
    }

    fn cmd_with_args(&self, host: &str, params: &str, args: &[&str]) -> Command {
        let mut cmd = self.cmd(host, params);
        cmd.args(args);
        cmd
    }

    fn root(&self, which: &Path) -> String {
        format!("sslrootcert={}", which.display())
    }

    /// `project create demo` at `host` with `params` succeeds, and made the project.
    fn creates_a_project(&self, host: &str, params: &str) {
        let run = output(self.cmd_with_args(host, params, &["project", "create", "demo"]));
        assert!(
            run.status.success(),
            "project create failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(projects_in(&mut self.server.admin("t")), ["demo"]);
    }

    /// `project create demo` at `host` with `params` fails (exit 3, one error line naming the
    /// host) and creates nothing.
    fn refuses(&self, host: &str, params: &str) -> Option<String> {
        let run = output(self.cmd_with_args(host, params, &["project", "create", "demo"]));
        let hint = assert_store_error(&run, &format!("{host}:{}", self.server.port));
        assert!(
            !has_schema(&mut self.server.admin("t")),
            "a refused connection made the schema"
        );
        hint
    }

    /// Whether the backend of a `token list` at `host` with `params` uses TLS, as
    /// `pg_stat_ssl` says while the command waits for a lock.
    fn command_uses_tls(&self, host: &str, params: &str) -> bool {
        let mut admin = self.server.admin("t");
        let run = output(self.cmd_with_args(
            "localhost",
            &format!("sslmode=verify-full&{}", self.root(&self.certs.ca)),
            &["project", "create", "demo"],
        ));
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let locked = Locked::take(self.server.admin("t"));
        let running = in_background(self.cmd_with_args(host, params, &["token", "list"]));
        let pid = waiting_backend(&mut admin, "t", &running);
        let ssl: bool = admin
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = $1", &[&pid])
            .expect("read pg_stat_ssl")
            .get(0);
        locked.release();
        let run = finished(running);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        ssl
    }
}

#[test]
fn verify_full_connects_to_the_host_the_certificate_names() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    let root = setup.root(&setup.certs.ca);
    setup.creates_a_project("localhost", &format!("sslmode=verify-full&{root}"));
}

#[test]
fn verify_full_refuses_an_address_the_certificate_does_not_name() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    let root = setup.root(&setup.certs.ca);
    let hint = setup.refuses("127.0.0.1", &format!("sslmode=verify-full&{root}"));
    assert!(
        hint.as_deref().is_some_and(|hint| hint.contains("sslmode")),
        "{hint:?}"
    );
}

#[test]
fn verify_ca_accepts_the_certificate_at_an_address_it_does_not_name() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    let root = setup.root(&setup.certs.ca);
    setup.creates_a_project("127.0.0.1", &format!("sslmode=verify-ca&{root}"));
}

#[test]
fn verify_full_refuses_a_certificate_another_authority_signed() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    let root = setup.root(&setup.certs.other_ca);
    setup.refuses("localhost", &format!("sslmode=verify-full&{root}"));
}

#[test]
fn verify_ca_refuses_a_certificate_another_authority_signed() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    let root = setup.root(&setup.certs.other_ca);
    setup.refuses("127.0.0.1", &format!("sslmode=verify-ca&{root}"));
}

#[test]
fn require_connects_without_a_root_certificate() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    setup.creates_a_project("127.0.0.1", "sslmode=require");
}

#[test]
fn disable_is_refused_by_a_server_that_requires_tls() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    let hint = setup
        .refuses("localhost", "sslmode=disable")
        .unwrap_or_default();
    assert!(
        hint.contains("pg_hba.conf") && hint.contains("sslmode"),
        "the hint points at the server's access rules, not the password: {hint}"
    );
}

#[test]
fn prefer_uses_tls_when_the_server_offers_it() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_ANY);
    assert!(setup.command_uses_tls("localhost", "sslmode=prefer"));
}

#[test]
fn disable_connects_in_clear_text() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_ANY);
    assert!(!setup.command_uses_tls("localhost", "sslmode=disable"));
}

#[test]
fn pgsslmode_and_pgsslrootcert_apply_to_a_url_without_them() {
    if !crate::pg::available() {
        return;
    }
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    // verify-full from the variables: the address the certificate does not name is refused...
    let mut cmd = setup.cmd_with_args("127.0.0.1", "", &["project", "create", "demo"]);
    cmd.env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &setup.certs.ca);
    assert_store_error(&output(cmd), "127.0.0.1");
    // ...and the name it does is accepted.
    let mut cmd = setup.cmd_with_args("localhost", "", &["project", "create", "demo"]);
    cmd.env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &setup.certs.ca);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn require_checks_the_chain_when_home_has_a_root_certificate() {
    if !crate::pg::available() {
        return;
    }
    // As libpq: `require` with ~/.postgresql/root.crt present checks as `verify-ca` does.
    let setup = TlsSetup::new(HBA_TLS_ONLY);
    let dir = setup.files.path().join("home").join(".postgresql");
    std::fs::create_dir(&dir).expect("mkdir ~/.postgresql");
    std::fs::copy(&setup.certs.other_ca, dir.join("root.crt")).expect("copy a root");
    setup.refuses("127.0.0.1", "sslmode=require");
    std::fs::copy(&setup.certs.ca, dir.join("root.crt")).expect("copy the root");
    setup.creates_a_project("127.0.0.1", "sslmode=require");
}

#[test]
fn prefer_connects_in_clear_text_to_a_server_without_tls() {
    if !crate::pg::available() {
        return;
    }
    let server = Server::started(HBA_ANY);
    server.create_database("t");
    let files = tempfile::tempdir().expect("temp dir");
    let mut cmd = bare_command(&files.path().join("home"), files.path());
    cmd.env(
        "AUTHEONA_DB",
        format!(
            "postgres://postgres@localhost:{}/t?sslmode=prefer",
            server.port
        ),
    )
    .env("PGPASSWORD", server::PASSWORD)
    .args(["project", "create", "demo"]);
    let run = output(cmd);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(projects_in(&mut server.admin("t")), ["demo"]);
}
