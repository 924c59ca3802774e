//! A PostgreSQL server of a test's own, for what the shared test server must not undergo: TLS
//! with a certificate made for the test, a pg_hba.conf that refuses clear text, a restart,
//! a synchronous standby that never comes. `initdb` into a temporary directory (without
//! fsync: under a second), then `postgres` on a free port, listening on `localhost` and on a
//! socket in that directory, until the test drops it.
//!
//! PostgreSQL (and PgBouncer) refuse to run as root; when the tests do, as CI does, they run
//! as the `postgres` user that Debian's package creates, and own their directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use tempfile::TempDir;

use crate::common::{HANG_GUARD, running_as_root};

/// The password of the `postgres` role over TCP; the socket needs none (`trust`).
pub const PASSWORD: &str = "own-server-password";

/// pg_hba.conf lines that let anyone in over the socket, and over TCP with a password, with
/// or without TLS.
pub const HBA_ANY: &str = "local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
";

/// The same, but TCP only with TLS: a client that will not use TLS is refused.
pub const HBA_TLS_ONLY: &str = "local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
";

pub struct Server {
    dir: TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Server {
    /// A new cluster, not yet started, whose pg_hba.conf is `hba`.
    pub fn new(hba: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the server's directory");
        let server = Server {
            dir,
            port: super::free_port(),
            child: None,
        };
        std::fs::create_dir(server.socket_dir()).expect("socket dir");
        server.give_to_server_user(&server.socket_dir());
        server.give_to_server_user(server.dir.path());
        let initdb = as_server_user(&bin("initdb"))
            .args(["--no-sync", "--auth=trust", "--username=postgres", "-D"])
            .arg(server.data_dir())
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        std::fs::write(server.data_dir().join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        server.configure(&[
            "listen_addresses = 'localhost'".to_owned(),
            format!("port = {}", server.port),
            format!(
                "unix_socket_directories = '{}'",
                server.socket_dir().display()
            ),
            "fsync = off".to_owned(),
            "max_connections = 30".to_owned(),
            "shared_buffers = 16MB".to_owned(),
        ]);
        server
    }

    /// A new cluster with `hba`, started, with [`PASSWORD`] set for TCP.
    pub fn started(hba: &str) -> Server {
        let mut server = Server::new(hba);
        server.start();
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory of the server's socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Appends settings to postgresql.conf (read at the next start, or reload).
    pub fn configure(&self, lines: &[String]) {
        use std::io::Write;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .expect("open postgresql.conf");
        for line in lines {
            writeln!(conf, "{line}").expect("write postgresql.conf");
        }
    }

    /// Writes a file the server reads (a certificate, its key) into its directory, mode 0600,
    /// owned by the user it runs as; its path.
    pub fn write_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write a server file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod a server file");
        self.give_to_server_user(&path);
        path
    }

    fn give_to_server_user(&self, path: &Path) {
        if let Some((uid, gid)) = server_user() {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to postgres");
        }
    }

    /// Starts the server and waits until it takes connections; sets [`PASSWORD`].
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .expect("open the server log");
        let child = as_server_user(&bin("postgres"))
            .arg("-D")
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Ok(mut client) = self.try_admin("postgres") {
                client
                    .batch_execute(&format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'"))
                    .expect("set the password");
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("postgres exited ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < HANG_GUARD,
                "postgres did not start:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops the server as an administrator's `pg_ctl stop -m immediate` does (SIGQUIT): at
    /// once, with no checkpoint, as a crash would; the next start recovers from the WAL.
    pub fn crash(&mut self) {
        self.signal(libc::SIGQUIT);
    }

    fn signal(&mut self, signal: libc::c_int) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own child, not yet reaped, so its pid is still its own.
        unsafe {
            libc::kill(child.id() as libc::pid_t, signal);
        }
        let _ = child.wait();
    }

    /// A connection over the socket as the superuser, to database `name`.
    pub fn admin(&self, name: &str) -> postgres::Client {
        self.try_admin(name).expect("connect to the own server")
    }

    fn try_admin(&self, name: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(self.socket_dir())
            .port(self.port)
            .user("postgres")
            .dbname(name)
            .connect(postgres::NoTls)
    }

    /// Creates database `name`.
    pub fn create_database(&self, name: &str) {
        self.admin("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a database");
    }

    /// `SELECT pg_reload_conf()`, then waits until a new session sees `setting` as `value`.
    pub fn reload_until(&self, setting: &str, value: &str) {
        self.admin("postgres")
            .batch_execute("SELECT pg_reload_conf()")
            .expect("reload");
        let start = Instant::now();
        loop {
            let shown: String = self
                .admin("postgres")
                .query_one(&format!("SHOW {setting}"), &[])
                .expect("show a setting")
                .get(0);
            if shown == value {
                return;
            }
            assert!(start.elapsed() < HANG_GUARD, "{setting} stayed {shown:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Immediate: nothing of it is kept, so nothing needs writing.
        self.crash();
    }
}

/// A program of the newest PostgreSQL installed (Debian's layout).
pub fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin").join(name)))
        })
        .filter(|(_, path)| path.is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, path)| path).unwrap_or_else(|| {
        panic!("no /usr/lib/postgresql/*/bin/{name}: apt-get install postgresql")
    })
}

/// The uid and gid of Debian's `postgres` user, when the tests run as root; else `None` (the
/// servers run as whoever runs the tests).
pub fn server_user() -> Option<(u32, u32)> {
    static USER: std::sync::OnceLock<Option<(u32, u32)>> = std::sync::OnceLock::new();
    *USER.get_or_init(|| {
        if !running_as_root() {
            return None;
        }
        // SAFETY: getpwnam(3) with a NUL-terminated name, called once (this OnceLock), so no
        // other call reuses its static buffer before the fields are read.
        let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        assert!(
            !entry.is_null(),
            "running as root, and there is no postgres user: apt-get install postgresql"
        );
        // SAFETY: not null, as just checked.
        Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
    })
}

/// `program` run as the user servers run as (see [`server_user`]).
pub fn as_server_user(program: &Path) -> Command {
    match server_user() {
        Some(_) => {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
            cmd
        }
        None => Command::new(program),
    }
}
