//! The PostgreSQL server, and the PgBouncer in front of it, that the benchmark times autheona
//! against: a cluster of its own, made with `initdb` in the work directory at every run,
//! started before the fixtures are built and stopped when the harness ends (also when it
//! panics; a server left by a run that was killed is stopped by the next one).
//!
//! One cluster serves both ways in: its Unix socket, with peer authentication (the role is
//! the harness's own user name, as the operating-system user connecting), and TCP on
//! 127.0.0.1 with SCRAM-SHA-256 (the same role, with [`PASSWORD`]). TLS is on, with a
//! self-signed RSA-2048 certificate made for the run, as a stock Debian cluster has it (its
//! "snakeoil" certificate): autheona's default `sslmode=prefer` then speaks TLS over TCP.
//! PostgreSQL will not run as root: when the harness is root, the server (and PgBouncer)
//! run as the `postgres` user the Debian package makes. PgBouncer listens on a port and a
//! socket of its own, and logs clients in the same two ways.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role's password, for logins over TCP (SCRAM-SHA-256), directly and through PgBouncer.
pub const PASSWORD: &str = "bench-scram-password";

/// A running cluster and PgBouncer; dropping it stops both.
pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    /// The uid and gid the server runs as, when not the harness's own.
    run_as: Option<(u32, u32)>,
    /// The directory of the server's socket (`.s.PGSQL.PORT`).
    pub socket_dir: PathBuf,
    pub port: u16,
    pub bouncer_port: u16,
    /// The role: the harness's operating-system user name.
    pub user: String,
    pub version: String,
    /// PgBouncer's version line.
    pub bouncer_version: String,
    bouncer: Option<Child>,
}

/// The name of the user this process runs as.
pub fn os_user() -> String {
    // SAFETY: getpwuid returns a pointer to static storage, or null; read at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        assert!(!pw.is_null(), "no passwd entry for this process's user");
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// The uid and gid of user `name`.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns a pointer to static storage, or null; read at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// The newest server installed under `/usr/lib/postgresql/VERSION/bin` (Debian's layout), or
/// the directory in `AUTHEONA_BENCH_PG_BIN`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AUTHEONA_BENCH_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).expect(
        "no PostgreSQL server in /usr/lib/postgresql/*/bin: apt-get install postgresql \
         (benches/run does, as root), or set AUTHEONA_BENCH_PG_BIN",
    )
}

/// A port nobody listens on at the moment, on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Runs a program of the server's as the server's user, in `dir`; panics when it fails.
    fn tool(&self, program: &Path, args: &[&str]) {
        let mut c = Command::new(program);
        c.args(args).current_dir(&self.dir).stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        let out = c.output().expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn chown(&self, path: &Path) {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
        }
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write a server file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        self.chown(&path);
        path
    }

    /// Makes a fresh cluster in `work/pg` and starts it and PgBouncer.
    pub fn start(work: &Path) -> Server {
        let bin = bin_dir();
        let dir = work.join("pg");
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(user_ids("postgres").expect(
                "PostgreSQL will not run as root, and there is no user postgres to run it as \
                 (the postgresql package makes one)",
            ))
        } else {
            None
        };
        let mut server = Server {
            data: dir.join("data"),
            socket_dir: dir.clone(),
            dir,
            bin,
            run_as,
            port: free_port(),
            bouncer_port: free_port(),
            user: os_user(),
            version: String::new(),
            bouncer_version: String::new(),
            bouncer: None,
        };
        server.stop_leftovers();
        let _ = std::fs::remove_dir_all(&server.dir);
        std::fs::create_dir_all(&server.dir).expect("server dir");
        server.chown(&server.dir);
        let socket = server
            .socket_dir
            .join(format!(".s.PGSQL.{}", server.port.max(server.bouncer_port)));
        assert!(
            socket.as_os_str().len() < 100,
            "the server's socket path {} is too long for a Unix socket: move the target \
             directory somewhere shorter",
            socket.display()
        );
        let version = Command::new(server.bin.join("postgres"))
            .arg("--version")
            .output()
            .expect("postgres --version");
        server.version = String::from_utf8_lossy(&version.stdout).trim().to_owned();

        // The certificate, as Debian's snakeoil one: self-signed, RSA 2048.
        let (cert, key) = (server.dir.join("server.crt"), server.dir.join("server.key"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed for the server's certificate: apt-get install openssl");
        assert!(made.success(), "openssl could not make a certificate");
        for file in [&cert, &key] {
            server.chown(file);
        }
        let pwfile = server.write("pwfile", PASSWORD, 0o600);

        let data = server.data.to_str().expect("UTF-8 path").to_owned();
        server.tool(
            &server.bin.join("initdb"),
            &[
                "--pgdata",
                &data,
                "--username",
                &server.user,
                &format!("--pwfile={}", pwfile.display()),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                // The cluster is thrown away after the run: initdb need not sync its files.
                "--no-sync",
            ],
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(server.data.join("postgresql.conf"))
            .expect("postgresql.conf");
        // Everything else is initdb's defaults (fsync and synchronous_commit on).
        write!(
            conf,
            "\n# autheona's benchmark\n\
             listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             unix_socket_directories = '{}'\n\
             ssl = on\n\
             ssl_cert_file = '{}'\n\
             ssl_key_file = '{}'\n",
            server.port,
            server.socket_dir.display(),
            cert.display(),
            key.display()
        )
        .expect("write postgresql.conf");
        drop(conf);
        let log = server.dir.join("server.log");
        server.tool(
            &server.bin.join("pg_ctl"),
            &[
                "--pgdata",
                &data,
                "--log",
                log.to_str().expect("UTF-8 path"),
                "--wait",
                "--timeout=60",
                "start",
            ],
        );
        server.start_bouncer(&cert, &key);
        server
    }

    /// PgBouncer in transaction pooling mode on its own port and socket, logging clients in
    /// as the server does (peer over its socket, SCRAM-SHA-256 over TCP, TLS offered with the
    /// server's certificate), so that only the pooling differs. Its `auth_file` holds the
    /// role's SCRAM secret, copied from the server (`pg_authid`), as PgBouncer's documentation
    /// has it: with the password in clear there, PgBouncer would derive the secret (4,096
    /// rounds of PBKDF2) at every login. It logs in to the server over TCP with the password,
    /// once per pooled connection.
    fn start_bouncer(&mut self, cert: &Path, key: &Path) {
        let dir = self.dir.display();
        let secret: String = self
            .connect("postgres")
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&self.user],
            )
            .expect("the role's SCRAM secret")
            .get(0);
        self.write(
            "userlist.txt",
            &format!("\"{}\" \"{secret}\"\n", self.user),
            0o600,
        );
        self.write(
            "hba.conf",
            "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n",
            0o600,
        );
        let ini = self.write(
            "pgbouncer.ini",
            &format!(
                "[databases]\n\
                 * = host=127.0.0.1 port={port} user={user} password={PASSWORD}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {bouncer}\n\
                 unix_socket_dir = {dir}\n\
                 auth_type = hba\n\
                 auth_hba_file = {dir}/hba.conf\n\
                 auth_file = {dir}/userlist.txt\n\
                 pool_mode = transaction\n\
                 default_pool_size = 4\n\
                 client_tls_sslmode = allow\n\
                 client_tls_cert_file = {cert}\n\
                 client_tls_key_file = {key}\n\
                 server_tls_sslmode = prefer\n\
                 logfile = {dir}/pgbouncer.log\n\
                 pidfile = {dir}/pgbouncer.pid\n",
                port = self.port,
                user = self.user,
                bouncer = self.bouncer_port,
                cert = cert.display(),
                key = key.display(),
            ),
            0o600,
        );
        let pgbouncer = std::env::var_os("AUTHEONA_BENCH_PGBOUNCER")
            .map_or_else(|| PathBuf::from("pgbouncer"), PathBuf::from);
        let version = Command::new(&pgbouncer)
            .arg("--version")
            .output()
            .expect("pgbouncer is needed: apt-get install pgbouncer");
        self.bouncer_version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut c = Command::new(pgbouncer);
        c.arg("--quiet")
            .arg(&ini)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        self.bouncer = Some(
            c.spawn()
                .expect("pgbouncer is needed: apt-get install pgbouncer"),
        );
        let started = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.bouncer_port)).is_err() {
            if let Some(Ok(Some(status))) = self.bouncer.as_mut().map(Child::try_wait) {
                panic!(
                    "pgbouncer exited ({status}); see {}",
                    self.dir.join("pgbouncer.log").display()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pgbouncer did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops what an earlier run that was killed left running in this directory: its server
    /// (by its data directory) and its PgBouncer (by the process id in its pid file, if that
    /// process is still a pgbouncer of this directory's).
    fn stop_leftovers(&self) {
        if self.data.join("postmaster.pid").exists() {
            let mut c = Command::new(self.bin.join("pg_ctl"));
            c.arg("--pgdata")
                .arg(&self.data)
                .args(["--mode=immediate", "--wait", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some((uid, gid)) = self.run_as {
                c.uid(uid).gid(gid);
            }
            let _ = c.status();
        }
        let pid: Option<libc::pid_t> = std::fs::read_to_string(self.dir.join("pgbouncer.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse().ok());
        if let Some(pid) = pid {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let ini = self.dir.join("pgbouncer.ini");
            if cmdline.contains("pgbouncer") && cmdline.contains(&*ini.to_string_lossy()) {
                // SAFETY: a signal to one process, found by its pid file and checked above.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }

    /// The postmaster's process id, from its pid file: the parent of every backend.
    pub fn postmaster_pid(&self) -> Option<libc::pid_t> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Connects to database `dbname` over the socket, as the role.
    pub fn connect(&self, dbname: &str) -> postgres::Client {
        connect(&self.socket_dir, self.port, &self.user, dbname)
    }

    /// The server's settings that bear on the timings, for the report.
    pub fn settings(&self) -> String {
        let mut client = self.connect("postgres");
        let show = |client: &mut postgres::Client, name: &str| -> String {
            client
                .query_one(&format!("SHOW {name}"), &[])
                .map(|row| row.get::<_, String>(0))
                .unwrap_or_default()
        };
        let names = [
            "ssl",
            "password_encryption",
            "shared_buffers",
            "synchronous_commit",
            "fsync",
        ];
        names
            .iter()
            .map(|name| format!("{name}={}", show(&mut client, name)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Connects over the socket in `socket_dir`, as `user` (peer authentication).
pub fn connect(socket_dir: &Path, port: u16, user: &str, dbname: &str) -> postgres::Client {
    postgres::Config::new()
        .host_path(socket_dir)
        .port(port)
        .user(user)
        .dbname(dbname)
        .connect(postgres::NoTls)
        .expect("connect to the benchmark's server")
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut bouncer) = self.bouncer.take() {
            // SAFETY: a signal to the one process this harness started.
            unsafe { libc::kill(bouncer.id() as libc::pid_t, libc::SIGTERM) };
            let _ = bouncer.wait();
        }
        let mut c = Command::new(self.bin.join("pg_ctl"));
        c.arg("--pgdata")
            .arg(&self.data)
            .args(["--mode=fast", "--wait", "stop"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        let _ = c.status();
    }
}
