//! A running `autheona serve` for a test, and a plain HTTP/1.1 client that sends exactly the
//! bytes a test gives it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// Where a test's server listens.
#[derive(Debug, Clone)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Addr {
    /// As `--listen` takes it.
    pub fn arg(&self) -> String {
        match self {
            Addr::Tcp(addr) => addr.to_string(),
            Addr::Unix(path) => format!("unix:{}", path.display()),
        }
    }

    pub fn connect(&self) -> Stream {
        match self {
            Addr::Tcp(addr) => Stream::Tcp(TcpStream::connect(addr).expect("connect")),
            Addr::Unix(path) => Stream::Unix(UnixStream::connect(path).expect("connect")),
        }
    }
}

/// A store with projects demo and other, and a 30-day token of demo's.
pub fn demo() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.project("demo");
    env.project("other");
    let token = env.token("demo", "30");
    (env, token)
}

/// A port on the loopback that nothing listened on a moment ago.
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, timeout: Duration) {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)).unwrap(),
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)).unwrap(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An HTTP response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The one value of header `name` (any case); `None` when absent. Panics if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next();
        assert!(values.next().is_none(), "header {name} repeated: {self:?}");
        first
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection, kept alive between requests.
pub struct Connection {
    stream: Stream,
    buffered: Vec<u8>,
}

impl Connection {
    pub fn open(addr: &Addr) -> Connection {
        let stream = addr.connect();
        stream.set_read_timeout(HANG_GUARD);
        Connection {
            stream,
            buffered: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// `GET /v1/auth` with `Authorization: Bearer TOKEN` on this connection, and its answer.
    pub fn auth(&mut self, token: &str) -> Response {
        self.send(&bearer_request(token)).expect("send the request");
        self.receive().expect("an answer")
    }

    /// Reads one response; `None` when the server closed the connection before one came.
    pub fn receive(&mut self) -> Option<Response> {
        let head_end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                break at;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = std::str::from_utf8(&self.buffered[..head_end]).expect("ASCII head");
        let (status, headers) = parse_head(head);
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap());
        self.buffered.drain(..head_end + 4);
        let body = match length {
            Some(length) => {
                while self.buffered.len() < length {
                    assert!(self.fill(), "connection closed inside a body");
                }
                self.buffered.drain(..length).collect()
            }
            None => {
                while self.fill() {}
                std::mem::take(&mut self.buffered)
            }
        };
        Some(Response {
            status,
            headers,
            body,
        })
    }

    /// Whether the server closed the connection (reads end) within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(wait);
        let mut byte = [0u8; 1];
        let closed = loop {
            break match self.stream.read(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => err.kind() == ErrorKind::ConnectionReset,
            };
        };
        self.stream.set_read_timeout(HANG_GUARD);
        closed
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buffered.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(err) if err.kind() == ErrorKind::ConnectionReset => return false,
                // A signal for this test process (another test's child ending) is no answer.
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => panic!("reading a response: {err}"),
            }
        }
    }
}

/// A response's head (without its closing blank line): its status and its headers.
pub fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    (status, headers)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A request with these headers (each `Name: value`), no body.
pub fn request(method: &str, target: &str, headers: &[&str]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: autheona.test\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// `GET /v1/auth` with `Authorization: Bearer TOKEN`.
pub fn bearer_request(token: &str) -> Vec<u8> {
    request(
        "GET",
        "/v1/auth",
        &[&format!("Authorization: Bearer {token}")],
    )
}

/// A POST with a body, its length declared.
pub fn post(target: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "POST {target} HTTP/1.1\r\nHost: autheona.test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A running server, stopped with SIGTERM (or killed) by the test, or killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub addr: Addr,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The thread collecting `stderr`, which ends when the server's stderr does (at its exit).
    reader: Option<std::thread::JoinHandle<()>>,
    /// While set, the reader reads nothing: a log pipe whose reader is stuck.
    stalled: Arc<AtomicBool>,
}

/// How a server ended.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub stderr: String,
}

impl Server {
    /// `autheona serve` on the test's store, on a free loopback port, with `args`. The port
    /// was free a moment before serve binds it; when another process took it meanwhile (a
    /// connection's ephemeral port is drawn from the same range), serve starts on another.
    pub fn start(env: &TestEnv, args: &[&str]) -> Server {
        for _ in 0..3 {
            let server = Server::spawn(env.std_cmd(), Addr::Tcp(free_port()), args);
            if server.listening() {
                return server;
            }
        }
        panic!("three free ports were taken before serve could bind them");
    }

    /// `autheona serve` on the test's store, on a unix socket at `path`, with `args`.
    pub fn start_unix(env: &TestEnv, path: PathBuf, args: &[&str]) -> Server {
        Server::start_cmd(env.std_cmd(), Addr::Unix(path), args)
    }

    /// `cmd serve --listen ADDR args...`, waited for until it listens.
    pub fn start_cmd(cmd: std::process::Command, addr: Addr, args: &[&str]) -> Server {
        let server = Server::spawn(cmd, addr, args);
        server.wait_for_stderr("listening on");
        server
    }

    /// Waits until the server listens: `false` if it exited because its port was taken.
    fn listening(&self) -> bool {
        self.written("listening on", Some("another process listens there"))
    }

    /// `cmd serve --listen ADDR args...`, started.
    fn spawn(mut cmd: std::process::Command, addr: Addr, args: &[&str]) -> Server {
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.arg())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start autheona serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        let stalled = Arc::new(AtomicBool::new(false));
        let stuck = stalled.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                while stuck.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => collected.lock().unwrap().extend_from_slice(&chunk[..n]),
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
        Server {
            child: Some(child),
            addr,
            stderr,
            reader: Some(reader),
            stalled,
        }
    }

    /// Waits until the server has written `text` on stderr; panics with what it wrote if it
    /// exits or takes longer than [`HANG_GUARD`].
    pub fn wait_for_stderr(&self, text: &str) {
        self.written(text, None);
    }

    /// Waits until the server has written `text` on stderr: `false` if it ended its stderr
    /// without it but having written `unless`; panics with what it wrote if it ended it
    /// otherwise, or takes longer than [`HANG_GUARD`].
    fn written(&self, text: &str, unless: Option<&str>) -> bool {
        let started = Instant::now();
        loop {
            // Whether it ended, read before what it wrote: all of it, then.
            let ended = self.reader.as_ref().is_none_or(|r| r.is_finished());
            let written = self.stderr();
            if written.contains(text) {
                return true;
            }
            if ended && unless.is_some_and(|unless| written.contains(unless)) {
                return false;
            }
            assert!(
                !ended,
                "the server ended its stderr before {text:?}: {written}"
            );
            assert!(
                started.elapsed() < HANG_GUARD,
                "no {text:?} from the server: {written}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Sends `bytes` on a new connection and reads the response.
    pub fn send(&self, bytes: &[u8]) -> Response {
        let mut connection = Connection::open(&self.addr);
        connection.send(bytes).expect("send the request");
        connection.receive().expect("a response")
    }

    /// `GET target` with these headers.
    pub fn get(&self, target: &str, headers: &[&str]) -> Response {
        self.send(&request("GET", target, headers))
    }

    /// `GET /v1/auth[?project=...]` with `Authorization: Bearer TOKEN`.
    pub fn auth(&self, token: &str, project: Option<&str>) -> Response {
        let target = match project {
            Some(project) => format!("/v1/auth?project={project}"),
            None => "/v1/auth".to_owned(),
        };
        self.get(&target, &[&format!("Authorization: Bearer {token}")])
    }

    /// `POST /v1/verify` with this JSON body.
    pub fn verify(&self, body: &serde_json::Value) -> Response {
        self.send(&post("/v1/verify", body.to_string().as_bytes()))
    }

    /// Sends `signal`, then waits for the exit.
    pub fn signal(mut self, signal: i32) -> Stopped {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > HANG_GUARD {
                let _ = child.kill();
                panic!("the server did not stop: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader thread ends with the pipe, once it has taken the last bytes.
        self.stalled.store(false, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            while !reader.is_finished() {
                assert!(
                    started.elapsed() < HANG_GUARD,
                    "the server's stderr stayed open after its exit"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            reader.join().expect("the stderr reader");
        }
        Stopped {
            status,
            stderr: self.stderr(),
        }
    }

    /// Stops reading the server's stderr, as a stuck log pipe would (until it exits).
    pub fn stall_stderr(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// Stops the process where it is (SIGSTOP), as a host that hangs would.
    pub fn pause(&self) {
        self.kill_with(libc::SIGSTOP);
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.kill_with(libc::SIGCONT);
    }

    fn kill_with(&self, signal: i32) {
        let child = self.child.as_ref().expect("a running server");
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    /// SIGTERM, then the exit.
    pub fn stop(self) -> Stopped {
        self.signal(libc::SIGTERM)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
