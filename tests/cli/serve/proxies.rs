//! Real proxies in front of `autheona serve`, configured as the README shows them ("Behind
//! nginx", "Behind Caddy"): Debian's nginx (package `nginx-light`) with `auth_request`, and
//! Caddy (package `caddy`) with `forward_auth`, each terminating TLS for `api.example.com` in
//! front of a small upstream that echoes the X-Autheona-* headers it was given. The test
//! reads each block from README.md and changes only its ports and file paths; around it goes
//! what a machine's own configuration holds (nginx's main and `http` contexts; Caddy's global
//! options, which keep it to the test's directory, with certificates from its own CA). Every
//! case runs against both proxies, one test each: `nginx::CASE` and `caddy::CASE`. A proxy
//! that is not installed fails its tests with the package to install, never skips them.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::harness::{Response, Server, parse_head};
use crate::common::*;

/// The site the README's configurations serve, which the client asks for.
const SITE: &str = "api.example.com";
/// Where the README's configurations find serve, and the API they protect.
const README_SERVE: &str = "127.0.0.1:8740";
const README_UPSTREAM: &str = "127.0.0.1:8080";
/// The README's prose just before each block.
const NGINX_BLOCK: &str = "In nginx's `http` block";
const CADDY_BLOCK: &str = "Caddy's `forward_auth` (Debian's `caddy` package)";
/// The challenge serve sends with a 401 for a token that is not valid.
const INVALID_TOKEN: &str = r#"Bearer realm="autheona", error="invalid_token""#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
        }
    }

    /// The proxy's executable, where its Debian package puts it; a test without it fails,
    /// naming the package.
    fn executable(self) -> &'static Path {
        let (path, package) = match self {
            Kind::Nginx => ("/usr/sbin/nginx", "nginx-light"),
            Kind::Caddy => ("/usr/bin/caddy", "caddy"),
        };
        let path = Path::new(path);
        assert!(
            path.is_file(),
            "{} is not installed: the proxy tests need Debian's {package} package \
             (./test installs it; or: sudo apt-get install -y {package})",
            path.display()
        );
        path
    }

    /// What it answers when serve cannot be reached: nginx turns the subrequest's 502 into
    /// a 500, Caddy answers 502 itself.
    fn unreachable_status(self) -> u16 {
        match self {
            Kind::Nginx => 500,
            Kind::Caddy => 502,
        }
    }
}

/// `text` with each `(from, to)` replaced; each `from` must be there, so that the README and
/// this test cannot drift apart unnoticed.
fn substituted(text: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = text.to_owned();
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "the README's block no longer holds {from:?}:\n{text}"
        );
        text = text.replace(from, to);
    }
    text
}

/// The API behind the proxy: answers every request 200, its body the X-Autheona-* headers it
/// was given (`name: value` lines, sorted), and counts the requests that reached it.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accepting: Option<JoinHandle<()>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the upstream");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accepting = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = requests.clone();
                    std::thread::spawn(move || answer(stream, &requests));
                }
            })
        };
        Upstream {
            addr,
            requests,
            stop,
            accepting: Some(accepting),
        }
    }

    /// How many requests reached it.
    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread, which then sees the stop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// Answers one request on `stream`, then closes it.
fn answer(stream: TcpStream, requests: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(HANG_GUARD));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    // The request line, then the headers up to the empty line.
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut echoed = Vec::new();
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let name = name.to_ascii_lowercase();
        if name.starts_with("x-autheona-") {
            echoed.push(format!("{name}: {}\n", value.trim()));
        }
        if name == "content-length" {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    requests.fetch_add(1, Ordering::Relaxed);
    echoed.sort();
    let body = echoed.concat();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&stream).write_all(response.as_bytes());
}

/// A proxy running the README's configuration, stopped when dropped.
struct Proxy {
    kind: Kind,
    child: Option<Child>,
    /// Where it serves the site over TLS.
    port: u16,
    /// A TLS client that trusts the site's certificate alone.
    tls: Arc<rustls::ClientConfig>,
    dir: PathBuf,
}

impl Proxy {
    /// `kind` in `dir`, in front of serve at `serve` (`HOST:PORT`) and of `upstream`; waits
    /// until it serves the site. Its ports were free a moment before it binds them; when
    /// another process took one meanwhile (a connection's ephemeral port is drawn from the
    /// same range), it starts again on others.
    fn start(kind: Kind, dir: &Path, serve: &str, upstream: SocketAddr) -> Proxy {
        for _ in 0..3 {
            let (mut proxy, ca) = Proxy::spawn(kind, dir, serve, upstream);
            if proxy.wait_until_serving(&ca) {
                return proxy;
            }
        }
        panic!("{} found its ports taken three times", kind.name());
    }

    /// `kind` started, and where the site's CA certificate will be.
    fn spawn(kind: Kind, dir: &Path, serve: &str, upstream: SocketAddr) -> (Proxy, PathBuf) {
        let executable = kind.executable();
        let dir = dir.join(kind.name());
        std::fs::create_dir_all(&dir).unwrap();
        let [port, http_port] = free_ports();
        let upstream = upstream.to_string();
        let (mut cmd, ca) = match kind {
            Kind::Nginx => nginx(executable, &dir, port, serve, &upstream),
            Kind::Caddy => caddy(executable, &dir, [port, http_port], serve, &upstream),
        };
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", executable.display()));
        // A proxy already, so that it is stopped if it never serves; its client trusts
        // nothing until the site's CA certificate exists.
        let proxy = Proxy {
            kind,
            child: Some(child),
            port,
            tls: Arc::new(client_config(None)),
            dir,
        };
        (proxy, ca)
    }

    /// Waits until the site's CA certificate is there and a TLS handshake with the site
    /// succeeds (Caddy issues its certificate once it runs); `false` when it exited because
    /// a port was taken.
    fn wait_until_serving(&mut self, ca: &Path) -> bool {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                if self
                    .log()
                    .to_ascii_lowercase()
                    .contains("address already in use")
                {
                    return false;
                }
                panic!(
                    "{} exited ({status}) before it served:\n{}",
                    self.kind.name(),
                    self.log()
                );
            }
            if ca.exists() {
                self.tls = Arc::new(client_config(Some(ca)));
                if self.handshake().is_ok() {
                    return true;
                }
            }
            assert!(
                started.elapsed() < HANG_GUARD,
                "{} never served {SITE}:\n{}",
                self.kind.name(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn handshake(&self) -> std::io::Result<()> {
        let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        let mut tls = rustls::ClientConnection::new(self.tls.clone(), site_name())
            .map_err(std::io::Error::other)?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        Ok(())
    }

    /// What it wrote on stdout and stderr.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// `GET target` for the site with `headers` (each `Name: value`), over TLS on a
    /// connection of its own; the answer.
    fn get(&self, target: &str, headers: &[&str]) -> Response {
        self.try_get(target, headers).unwrap_or_else(|err| {
            panic!(
                "GET {target} through {}: {err}\n{}",
                self.kind.name(),
                self.log()
            )
        })
    }

    /// `GET target` with `Authorization: Bearer TOKEN` and `headers`.
    fn with_token(&self, token: &str, target: &str, headers: &[&str]) -> Response {
        let bearer = format!("Authorization: Bearer {token}");
        let mut all = vec![bearer.as_str()];
        all.extend_from_slice(headers);
        self.get(target, &all)
    }

    fn try_get(&self, target: &str, headers: &[&str]) -> std::io::Result<Response> {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        tcp.set_read_timeout(Some(HANG_GUARD))?;
        let tls = rustls::ClientConnection::new(self.tls.clone(), site_name())
            .map_err(std::io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(tls, tcp);
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: {SITE}\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes())?;
        let mut bytes = Vec::new();
        match stream.read_to_end(&mut bytes) {
            Ok(_) => {}
            // Closed without TLS's close_notify: what came before is the whole answer.
            Err(err) if err.kind() == ErrorKind::UnexpectedEof => {}
            Err(err) => return Err(err),
        }
        Ok(parse_response(&bytes))
    }
}

impl Drop for Proxy {
    /// SIGTERM (nginx's master stops its workers first), then SIGKILL if it lingers.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Ports on the loopback that nothing listened on a moment ago, as
/// [`super::harness::free_port`] finds one, all held at once so that they differ: the site's,
/// and Caddy's for plain HTTP.
fn free_ports() -> [u16; 2] {
    let held = [(); 2].map(|()| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap());
    held.map(|listener| listener.local_addr().unwrap().port())
}

fn site_name() -> ServerName<'static> {
    ServerName::try_from(SITE).unwrap()
}

/// A TLS client trusting the certificates in `ca` (none: a placeholder until they exist).
fn client_config(ca: Option<&Path>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_file_iter(ca).expect("the CA's certificate") {
            roots.add(cert.expect("a PEM certificate")).unwrap();
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// An answer read to the end of its connection: status line, headers, body (chunked or not).
fn parse_response(bytes: &[u8]) -> Response {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no whole head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..head_end]).expect("an ASCII head");
    let (status, headers) = parse_head(head);
    let chunked = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked")
    });
    let rest = &bytes[head_end + 4..];
    Response {
        status,
        headers,
        body: if chunked {
            dechunked(rest)
        } else {
            rest.to_vec()
        },
    }
}

fn dechunked(mut bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size = std::str::from_utf8(&bytes[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&bytes[start..start + size]);
        bytes = &bytes[start + size + 2..];
    }
}

/// The README's nginx block, inside a main configuration of the test's own: pid, logs and
/// temporary files in `dir`, one worker; and a certificate for the site made with openssl.
/// Returns the command and the certificate to trust.
fn nginx(
    executable: &Path,
    dir: &Path,
    port: u16,
    serve: &str,
    upstream: &str,
) -> (Command, PathBuf) {
    let (cert, key) = (dir.join("site.pem"), dir.join("site.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={SITE}")])
        .args(["-addext", &format!("subjectAltName=DNS:{SITE}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let site = substituted(
        &readme_block(NGINX_BLOCK),
        &[
            ("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;")),
            (
                "/etc/ssl/certs/api.example.com.pem",
                &cert.to_string_lossy(),
            ),
            (
                "/etc/ssl/private/api.example.com.key",
                &key.to_string_lossy(),
            ),
            (README_SERVE, serve),
            (README_UPSTREAM, upstream),
        ],
    );
    let dir_text = dir.display();
    // As root, nginx would run its workers as nobody, who may not enter the test's directory.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let conf = format!(
        "{user}worker_processes 1;\n\
         pid {dir_text}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         access_log {dir_text}/access.log;\n\
         client_body_temp_path {dir_text}/body;\n\
         proxy_temp_path {dir_text}/proxy;\n\
         fastcgi_temp_path {dir_text}/fastcgi;\n\
         uwsgi_temp_path {dir_text}/uwsgi;\n\
         scgi_temp_path {dir_text}/scgi;\n\
         {site}\n\
         }}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(executable);
    cmd.env_clear()
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off; error_log stderr;"]);
    (cmd, cert)
}

/// The README's Caddyfile site, after global options of the test's own: no admin endpoint,
/// certificates from Caddy's own CA (kept in `dir`, never put in the system's trust store),
/// its own ports, the loopback only. Returns the command and Caddy's root certificate.
fn caddy(
    executable: &Path,
    dir: &Path,
    [port, http_port]: [u16; 2],
    serve: &str,
    upstream: &str,
) -> (Command, PathBuf) {
    let site = substituted(
        &readme_block(CADDY_BLOCK),
        &[(README_SERVE, serve), (README_UPSTREAM, upstream)],
    );
    let conf = format!(
        "{{\n\
         \tadmin off\n\
         \tlocal_certs\n\
         \tskip_install_trust\n\
         \tdefault_bind 127.0.0.1\n\
         \thttp_port {http_port}\n\
         \thttps_port {port}\n\
         }}\n\n{site}"
    );
    let conf_path = dir.join("Caddyfile");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(executable);
    cmd.env_clear()
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .arg("run")
        .arg("--config")
        .arg(&conf_path)
        .args(["--adapter", "caddyfile"]);
    (cmd, dir.join("data/caddy/pki/authorities/local/root.crt"))
}

/// A store with projects billing (the one the README's configurations require) and other,
/// serve on it, the upstream, and the proxy in front of both.
struct Site {
    // Fields drop in this order: the proxy, serve, the upstream, then the store.
    proxy: Proxy,
    serve: Server,
    upstream: Upstream,
    env: TestEnv,
    /// A token of billing.
    token: String,
}

fn site(kind: Kind, serve_args: &[&str]) -> Site {
    let env = TestEnv::new();
    env.project("billing");
    env.project("other");
    let token = env.token("billing", "30");
    let serve = Server::start(&env, serve_args);
    let upstream = Upstream::start();
    let proxy = Proxy::start(kind, env.dir(), &serve.addr.arg(), upstream.addr);
    Site {
        proxy,
        serve,
        upstream,
        env,
        token,
    }
}

impl Site {
    /// `GET target` with `Authorization: Bearer TOKEN` and `headers`.
    fn with_token(&self, token: &str, target: &str, headers: &[&str]) -> Response {
        self.proxy.with_token(token, target, headers)
    }

    /// The body the upstream answers for a valid token of billing with this id.
    fn echoed(&self, token: &str) -> String {
        format!(
            "x-autheona-project: billing\nx-autheona-token-id: {}\n",
            id_of(token)
        )
    }
}

/// Each case below as a test for each proxy: `nginx::CASE` and `caddy::CASE`.
macro_rules! for_each_proxy {
    ($($case:ident),* $(,)?) => {
        mod nginx {
            $(#[test] fn $case() { super::$case(super::Kind::Nginx) })*
        }
        mod caddy {
            $(#[test] fn $case() { super::$case(super::Kind::Caddy) })*
        }
    };
}

for_each_proxy!(
    a_valid_token_reaches_the_upstream_with_its_project_and_id,
    headers_a_client_sets_in_autheonas_names_are_replaced,
    the_requests_own_query_never_reaches_serve,
    an_invalid_token_is_401_with_the_challenge_passed_through,
    no_token_is_401_with_the_plain_challenge,
    another_projects_token_is_403,
    a_token_revoked_with_the_cli_is_refused_by_the_next_request,
    it_fails_closed_when_serve_is_stopped,
    a_connection_serve_closed_when_idle_costs_no_request,
    the_clients_other_headers_never_reach_serve,
);

/// serve reads only `Authorization` and a required project: a client's cookies past serve's
/// 8 KiB of headers (which the proxy itself takes) would be 431, and nginx makes any 4xx of an
/// auth request a 500; a client's own `X-Autheona-Require-Project` a 400.
fn the_clients_other_headers_never_reach_serve(kind: Kind) {
    let site = site(kind, &[]);
    let first = format!("Cookie: session={}", "a".repeat(6000));
    let second = format!("Cookie: theme={}", "b".repeat(4000));
    for headers in [
        &[first.as_str(), second.as_str()][..],
        &["X-Autheona-Require-Project: other"],
        &[
            "X-Autheona-Require-Project: billing",
            "X-Autheona-Require-Project: other",
        ],
    ] {
        let response = site.with_token(&site.token, "/orders", headers);
        assert_eq!(response.status, 200, "{headers:?}: {response:?}");
        // The upstream echoes every X-Autheona-* header: the client's own reach it.
        let echoed = response.text();
        assert!(
            echoed.contains("x-autheona-project: billing\n")
                && echoed.contains(&format!("x-autheona-token-id: {}\n", id_of(&site.token))),
            "{echoed}"
        );
    }
    let wrong_secret = forge(id_of(&site.token), &"x".repeat(43));
    let response = site.with_token(&wrong_secret, "/orders", &[first.as_str()]);
    assert_eq!(response.status, 401, "{response:?}");
}

fn a_valid_token_reaches_the_upstream_with_its_project_and_id(kind: Kind) {
    let site = site(kind, &[]);
    let response = site.with_token(&site.token, "/orders", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.text(), site.echoed(&site.token));
    assert_eq!(site.upstream.requests(), 1);
}

fn headers_a_client_sets_in_autheonas_names_are_replaced(kind: Kind) {
    let site = site(kind, &[]);
    let response = site.with_token(
        &site.token,
        "/orders",
        &[
            "X-Autheona-Project: other",
            "X-Autheona-Token-Id: AAAAAAAAAAAA",
        ],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.text(),
        site.echoed(&site.token),
        "the client's own"
    );
}

/// serve refuses any query parameter but `project`: a proxy that passed the request's own
/// query on would break every request that has one, and let a client name the project.
fn the_requests_own_query_never_reaches_serve(kind: Kind) {
    let site = site(kind, &[]);
    for target in ["/orders?page=2", "/orders?project=other", "/orders?"] {
        let response = site.with_token(&site.token, target, &[]);
        assert_eq!(response.status, 200, "{target}: {response:?}");
        assert_eq!(response.text(), site.echoed(&site.token), "{target}");
    }
}

fn an_invalid_token_is_401_with_the_challenge_passed_through(kind: Kind) {
    let site = site(kind, &[]);
    let wrong_secret = forge(id_of(&site.token), &"x".repeat(43));
    let unknown = forge("AAAAAAAAAAAA", secret_of(&site.token));
    let mut mangled = site.token.clone();
    mangled.pop();
    for bad in [wrong_secret.as_str(), &unknown, &mangled, "aut_nothing"] {
        let response = site.with_token(bad, "/orders", &[]);
        assert_eq!(response.status, 401, "{bad}: {response:?}");
        assert_eq!(
            response.header("www-authenticate"),
            Some(INVALID_TOKEN),
            "{bad}"
        );
    }
    assert_eq!(site.upstream.requests(), 0, "reached the upstream");
}

fn no_token_is_401_with_the_plain_challenge(kind: Kind) {
    let site = site(kind, &[]);
    for headers in [&[][..], &["Authorization: Basic dXNlcjpwYXNz"]] {
        let response = site.proxy.get("/orders", headers);
        assert_eq!(response.status, 401, "{headers:?}: {response:?}");
        assert_eq!(
            response.header("www-authenticate"),
            Some(r#"Bearer realm="autheona""#),
            "{headers:?}"
        );
    }
    assert_eq!(site.upstream.requests(), 0, "reached the upstream");
}

fn another_projects_token_is_403(kind: Kind) {
    let site = site(kind, &[]);
    let other = site.env.token("other", "30");
    let response = site.with_token(&other, "/orders", &[]);
    assert_eq!(response.status, 403, "{response:?}");
    // Caddy passes serve's answer on as it is; nginx sends a challenge only with a 401.
    let challenge = match kind {
        Kind::Caddy => Some(r#"Bearer realm="autheona", error="insufficient_scope""#),
        Kind::Nginx => None,
    };
    assert_eq!(response.header("www-authenticate"), challenge);
    assert_eq!(site.upstream.requests(), 0, "reached the upstream");
}

fn a_token_revoked_with_the_cli_is_refused_by_the_next_request(kind: Kind) {
    let site = site(kind, &[]);
    // Twice: the second is answered from serve's cache, as every later one would be.
    for _ in 0..2 {
        assert_eq!(site.with_token(&site.token, "/orders", &[]).status, 200);
    }
    site.env
        .run(&["token", "revoke", id_of(&site.token), "--yes"])
        .success();
    let response = site.with_token(&site.token, "/orders", &[]);
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.header("www-authenticate"), Some(INVALID_TOKEN));
    assert_eq!(site.upstream.requests(), 2);
}

fn it_fails_closed_when_serve_is_stopped(kind: Kind) {
    // Taken apart to stop serve alone; the store (`_env`) lives to the end.
    let Site {
        proxy,
        serve,
        upstream,
        env: _env,
        token,
    } = site(kind, &[]);
    // The proxy now keeps a connection to serve, which serve closes as it stops.
    assert_eq!(proxy.with_token(&token, "/orders", &[]).status, 200);
    let stopped = serve.stop();
    assert!(stopped.status.success(), "{stopped:?}");
    for _ in 0..3 {
        let response = proxy.with_token(&token, "/orders", &[]);
        assert_eq!(response.status, kind.unreachable_status(), "{response:?}");
    }
    assert_eq!(upstream.requests(), 1, "reached the upstream");
}

/// serve closes a keep-alive connection that stays idle (here after a second); the proxy's
/// next request goes on a new one, and is answered.
fn a_connection_serve_closed_when_idle_costs_no_request(kind: Kind) {
    let site = site(kind, &["--idle-timeout", "1", "--read-timeout", "1"]);
    for round in 0..3 {
        let response = site.with_token(&site.token, "/orders", &[]);
        assert_eq!(response.status, 200, "round {round}: {response:?}");
        std::thread::sleep(Duration::from_millis(1500));
    }
}
