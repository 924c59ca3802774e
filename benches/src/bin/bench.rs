//! autheona's benchmark: builds its fixtures, times the real binaries as whole processes, and
//! prints each measurement's median and range, each ratio against its target, and pass or miss.
//! Run it with `benches/run`, which builds everything in release mode first.
//!
//! Ratios are taken within one run, with the compared commands interleaved round by round (in a
//! shuffled order), so that a noisy machine slows both sides alike.
//!
//! The PostgreSQL measurements run against a cluster the harness makes and starts itself
//! (`bench/pg.rs`), with PgBouncer in front of it. The `serve` rows (`bench/serve.rs`) come
//! last: `autheona serve` under HTTP load from wrk, beside nginx; `--only serve` runs them
//! alone.

#[path = "bench/pg.rs"]
mod pg;
#[path = "bench/serve.rs"]
mod serve;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autheona::ops::project;
use autheona::ops::token::{self, Expiration, TokenRequest};
use autheona::secret::{self, Secret};
use autheona::store::{self, Location, NewToken, Store, Surroundings};
use autheona::token::{Token, TokenId, checksum};
use chrono::Utc;
use rand::seq::SliceRandom;

/// Token counts the fixtures hold, on SQLite and on PostgreSQL alike.
const SIZES: [usize; 3] = [10, 100_000, 1_000_000];

/// The variables that would lead autheona (or the floors) elsewhere than the harness says:
/// removed from the harness's environment, so that its children never see them.
const FOREIGN_VARIABLES: [&str; 11] = [
    "AUTHEONA_DB",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
];

/// The tree `autheona scan` is timed on: this many text files holding this many bytes in all.
const SCAN_FILES: usize = 3_000;
const SCAN_BYTES: usize = 100_000_000;
/// Valid tokens planted in the tree (the scan exits 1 for them), and look-alikes beside them.
const SCAN_PLANTED: usize = 5;

/// One finished process: wall time, CPU time, peak memory, success.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: i64,
    /// The exit code; `None` when killed by a signal.
    code: Option<i32>,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// CPU time used so far by this process and the children it has reaped.
fn cpu_used() -> Duration {
    let used = |who| {
        // SAFETY: rusage is plain data, which getrusage fills.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        timeval(usage.ru_utime) + timeval(usage.ru_stime)
    };
    used(libc::RUSAGE_SELF) + used(libc::RUSAGE_CHILDREN)
}

/// Runs a command to completion with no stdio, measuring it with `wait4`'s resource usage.
fn run(cmd: Command) -> Sample {
    run_to(cmd, Stdio::null())
}

/// The same with stdout going to `stdout`.
fn run_to(mut cmd: Command, stdout: Stdio) -> Sample {
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null());
    let start = Instant::now();
    // Reaped by wait4 below, which also gives its resource usage (Child::wait would not).
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("spawn a benchmarked command");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we just spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    Sample {
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
    }
}

/// A named command and what it measured.
struct Bench {
    name: String,
    make: Box<dyn Fn() -> Command>,
    samples: Vec<Sample>,
    /// The command is meant to exit 1 (a verify of a bad token, a scan that finds tokens).
    expect_invalid: bool,
    /// A file its stdout is appended to, instead of `/dev/null` (where token create refuses
    /// to print a token).
    stdout: Option<PathBuf>,
}

impl Bench {
    fn new(name: &str, make: impl Fn() -> Command + 'static) -> Bench {
        Bench {
            name: name.to_owned(),
            make: Box::new(make),
            samples: Vec::new(),
            expect_invalid: false,
            stdout: None,
        }
    }

    fn expecting_invalid(mut self) -> Bench {
        self.expect_invalid = true;
        self
    }

    fn with_stdout(mut self, file: PathBuf) -> Bench {
        self.stdout = Some(file);
        self
    }

    /// Runs the command once.
    fn run_once(&self) -> Sample {
        let stdout = match &self.stdout {
            Some(file) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .expect("open the stdout file")
                .into(),
            None => Stdio::null(),
        };
        run_to((self.make)(), stdout)
    }

    fn walls(&self) -> Vec<Duration> {
        let mut walls: Vec<Duration> = self.samples.iter().map(|s| s.wall).collect();
        walls.sort();
        walls
    }

    fn median(&self) -> Duration {
        median(&self.walls())
    }

    fn max_rss_mib(&self) -> f64 {
        let kib = self
            .samples
            .iter()
            .map(|s| s.max_rss_kib)
            .max()
            .unwrap_or(0);
        kib as f64 / 1024.0
    }

    /// Runs that ended otherwise than expected: exit 0, or exactly 1 for a bad token.
    fn failures(&self) -> usize {
        let expected = if self.expect_invalid { 1 } else { 0 };
        self.samples
            .iter()
            .filter(|s| s.code != Some(expected))
            .count()
    }
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n == 0 {
        return Duration::ZERO;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Runs the benches round-robin: `warmup` discarded rounds, then `rounds` measured ones. The
/// order within a round is shuffled, so that no command always follows the same one (a run of
/// htpasswd over a large file, say, leaves caches cold for whatever comes next).
fn measure(benches: &mut [Bench], warmup: usize, rounds: usize) {
    let mut order: Vec<usize> = (0..benches.len()).collect();
    for round in 0..warmup + rounds {
        order.shuffle(&mut rand::rng());
        for &i in &order {
            let sample = benches[i].run_once();
            if round >= warmup {
                benches[i].samples.push(sample);
            }
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One line of the result table.
struct Row {
    what: String,
    value: String,
    range: String,
    ratio: String,
    target: String,
    pass: bool,
}

#[derive(Clone, Copy)]
enum Cmp {
    AtMost,
    AtLeast,
    Above,
}

struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// A timing; it fails when a run ended otherwise than expected.
    fn timing(&mut self, bench: &Bench, note: &str) {
        let walls = bench.walls();
        self.rows.push(Row {
            what: bench.name.clone(),
            value: ms(bench.median()),
            range: format!(
                "{}–{}",
                ms(*walls.first().unwrap_or(&Duration::ZERO)),
                ms(*walls.last().unwrap_or(&Duration::ZERO))
            ),
            ratio: String::new(),
            target: note.to_owned(),
            pass: bench.failures() == 0,
        });
    }

    /// `a / b` must be at most `max` (or, with `at_least`, at least it).
    fn ratio(&mut self, what: &str, a: &Bench, b: &Bench, bound: f64, cmp: Cmp) {
        let ratio = a.median().as_secs_f64() / b.median().as_secs_f64();
        let (pass, sign) = match cmp {
            Cmp::AtMost => (ratio <= bound, "≤"),
            Cmp::AtLeast => (ratio >= bound, "≥"),
            Cmp::Above => (ratio > bound, ">"),
        };
        self.rows.push(Row {
            what: what.to_owned(),
            value: String::new(),
            range: String::new(),
            // Three decimals, so that a ratio just past its bound does not print as equal to it.
            ratio: format!("{ratio:.3}x"),
            target: format!("{sign} {bound:.2}x"),
            pass,
        });
    }

    /// `a / b`, shown for information: no target.
    fn info_ratio(&mut self, what: &str, a: &Bench, b: &Bench) {
        let ratio = a.median().as_secs_f64() / b.median().as_secs_f64();
        self.rows.push(Row {
            what: what.to_owned(),
            value: String::new(),
            range: String::new(),
            ratio: format!("{ratio:.3}x"),
            target: "(information)".into(),
            pass: true,
        });
    }

    fn value(&mut self, what: &str, value: String, target: String, pass: bool) {
        self.rows.push(Row {
            what: what.to_owned(),
            value,
            range: String::new(),
            ratio: String::new(),
            target,
            pass,
        });
    }

    fn markdown(&self) -> String {
        let mut out = String::from(
            "| measurement | median | min–max | ratio | target | result |\n|---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.what,
                row.value,
                row.range,
                row.ratio,
                row.target,
                if row.pass { "pass" } else { "**miss**" }
            );
        }
        out
    }
}

/// A fixture database: one project, `size` tokens, of which `verified` is real and the rest
/// share one precomputed hash.
struct Fixture {
    /// What `--db` names: a file, or a `postgres://` URL.
    db: String,
    token: String,
    /// Well-formed but unknown id, and known id with a wrong secret.
    unknown_id: String,
    wrong_secret: String,
}

impl Fixture {
    fn manifest_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.db, self.token, self.unknown_id, self.wrong_secret
        )
    }

    fn from_manifest_line(line: &str) -> Fixture {
        let parts: Vec<&str> = line.split(' ').collect();
        let [db, token, unknown_id, wrong_secret] = parts.as_slice() else {
            panic!("bad manifest line {line:?}");
        };
        Fixture {
            db: (*db).to_owned(),
            token: (*token).to_owned(),
            unknown_id: (*unknown_id).to_owned(),
            wrong_secret: (*wrong_secret).to_owned(),
        }
    }
}

/// Where the fixture process finds the benchmark's PostgreSQL server: its socket directory,
/// port and role.
struct PgAddress {
    socket_dir: PathBuf,
    port: u16,
    user: String,
}

/// Builds every fixture and writes their manifest: the SQLite ones, then the PostgreSQL ones,
/// each in order of [`SIZES`]. Runs as its own process, so that the harness stays small: Linux
/// reports a child's peak memory as at least its parent's.
fn build_fixtures(work: &Path, floor: &Path, pg: &PgAddress) {
    let timed = |what: &str, build: &dyn Fn() -> Fixture| -> String {
        let started = Instant::now();
        let fixture = build();
        eprintln!("  {what}: {:.1} s", started.elapsed().as_secs_f64());
        fixture.manifest_line()
    };
    // The PostgreSQL server does most of the work of its fixtures in its own process: build
    // them on a second thread, beside the SQLite ones.
    let (mut lines, pg_lines) = std::thread::scope(|scope| {
        let pg_lines = scope.spawn(|| {
            SIZES
                .iter()
                .map(|&n| {
                    timed(&format!("PostgreSQL, {} tokens", thousands(n)), &|| {
                        build_pg_fixture(pg, n)
                    })
                })
                .collect::<Vec<String>>()
        });
        let lines: Vec<String> = SIZES
            .iter()
            .map(|&n| {
                timed(&format!("SQLite, {} tokens", thousands(n)), &|| {
                    build_fixture(work, n)
                })
            })
            .collect();
        (lines, pg_lines.join().expect("PostgreSQL fixtures"))
    });
    lines.extend(pg_lines);
    let floor_db = work.join("floor.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", floor_db.display()));
    }
    assert!(
        run({
            let mut c = Command::new(floor);
            c.arg("setup").arg(&floor_db);
            c
        })
        .code
            == Some(0)
    );
    let entry = Command::new("htpasswd")
        .args(["-nbB", "-C", "5", "bench", "secret"])
        .output()
        .expect("htpasswd is needed: apt-get install apache2-utils");
    let entry = String::from_utf8(entry.stdout).expect("utf-8");
    for &n in &SIZES {
        build_htpasswd(work, n, &entry);
    }
    build_scan_tree(&work.join("scan-tree"));
    std::fs::write(work.join("manifest"), lines.join("\n")).expect("manifest");
}

/// A small, fast generator for the scan tree's text: the same tree on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One line of source code or log, as a repository holds them. Some hold `aut_` inside a
/// longer name (`astronaut_id`), so the scan meets prefixes that start no token.
fn text_line(rng: &mut XorShift, out: &mut Vec<u8>) {
    const WORDS: [&str; 12] = [
        "project",
        "token",
        "request",
        "handler",
        "config",
        "astronaut",
        "value",
        "default",
        "author",
        "cache",
        "session",
        "buffer",
    ];
    let (a, b) = (WORDS[rng.below(WORDS.len())], WORDS[rng.below(WORDS.len())]);
    let n = rng.next() % 100_000;
    let _ = match rng.below(5) {
        0 => writeln!(out, "    let {a}_{n} = {b}::load(&input[{}..])?;", n % 977),
        1 => writeln!(
            out,
            "2026-11-27T18:{:02}:{:02}.{:03}Z INFO {a} id={:016x} path=/api/v1/{b}s/{n} status=200 duration_ms={}",
            n % 60,
            n % 59,
            n % 1000,
            rng.next(),
            n % 350
        ),
        2 => writeln!(
            out,
            "    // Keeps the {a} and its {b} apart, as the {b} may outlive it."
        ),
        3 => writeln!(out, "    {a}_{b}_id: u64, // {n}"),
        _ => writeln!(out, "fn {a}_{b}(&self, {b}: &{a}) -> Result<{n}> {{"),
    };
}

/// A tree of [`SCAN_FILES`] text files of varied sizes, [`SCAN_BYTES`] in all, in 30
/// directories, with [`SCAN_PLANTED`] valid tokens and as many look-alikes (a bad checksum, a
/// truncated token) planted in some of them.
fn build_scan_tree(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let average = SCAN_BYTES / SCAN_FILES;
    let mut content = Vec::with_capacity(2 * average);
    let mut written = 0;
    for i in 0..SCAN_FILES {
        let dir = root.join(format!("module_{:02}", i % 30));
        if i < 30 {
            std::fs::create_dir_all(&dir).expect("scan tree directory");
        }
        // Sizes from 0.1 to 1.9 times the average; the last file makes up the total.
        let size = if i + 1 == SCAN_FILES {
            SCAN_BYTES.saturating_sub(written)
        } else {
            average / 10 + rng.below(average * 18 / 10)
        };
        content.clear();
        while content.len() < size {
            text_line(&mut rng, &mut content);
        }
        if i % (SCAN_FILES / SCAN_PLANTED) == 7 {
            let token = with_checksum(format!("aut_Planted{i:05}_{}", "s".repeat(43)));
            let _ = writeln!(content, "    const TOKEN: &str = \"{token}\";");
            let _ = writeln!(content, "    // not this one: {}000000", &token[..60]);
            let _ = writeln!(content, "    // nor this one: {}", &token[..50]);
        }
        written += content.len();
        std::fs::write(dir.join(format!("file_{i:04}.rs")), &content).expect("scan tree file");
    }
}

fn with_checksum(body: String) -> String {
    let sum = checksum(&body);
    body + std::str::from_utf8(&sum).expect("ascii")
}

/// 1000000 as "1,000,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn build_fixture(dir: &Path, size: usize) -> Fixture {
    let db = dir.join(format!("tokens-{size}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let store = store::create(&Location::File(db.clone())).expect("create fixture database");
    fill(
        &*store,
        size,
        db.to_str().expect("a UTF-8 work directory").to_owned(),
    )
}

/// An SQLite fixture of 10 tokens made by the `--before` autheona through its own command
/// line, in its own schema; its path and a token of it.
fn before_fixture(before: &Path, dir: &Path) -> (String, String) {
    let db = dir.join("before-10.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let run = |args: &[&str]| {
        let out = Command::new(before)
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .expect("run the --before autheona");
        assert!(out.status.success(), "--before autheona {args:?}: {out:?}");
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned()
    };
    run(&["project", "create", "bench"]);
    let tokens: Vec<String> = (0..10)
        .map(|_| run(&["token", "create", "-p", "bench", "-e", "never"]))
        .collect();
    let db = db.to_str().expect("a UTF-8 work directory").to_owned();
    (db, tokens[0].clone())
}

/// `text` percent-encoded for a URL's query, but for the characters a path is made of.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A PostgreSQL fixture: database `bench_SIZE` on the benchmark's server, made afresh, reached
/// over the socket with peer authentication as verify will reach it. Filled as the SQLite
/// ones, then vacuumed and analysed (as autovacuum would leave a table that size) and
/// checkpointed, so that no checkpoint of the fixture's writes lands among the timings.
fn build_pg_fixture(pg: &PgAddress, size: usize) -> Fixture {
    build_pg_fixture_named(pg, &format!("bench_{size}"), size)
}

/// The same in database `dbname`.
fn build_pg_fixture_named(pg: &PgAddress, dbname: &str, size: usize) -> Fixture {
    let mut admin = pg::connect(&pg.socket_dir, pg.port, &pg.user, "postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {dbname}"))
        .expect("drop the fixture database");
    admin
        .batch_execute(&format!("CREATE DATABASE {dbname}"))
        .expect("create the fixture database");
    let url = format!(
        "postgres:///{dbname}?host={}&port={}",
        url_encoded(&pg.socket_dir.to_string_lossy()),
        pg.port
    );
    let around = Surroundings {
        var: &|_| None,
        home: None,
        os_user: &|| Some(pg.user.clone()),
    };
    let location = Location::parse(OsStr::new(&url), &around).expect("the fixture's URL");
    let store = store::create(&location).expect("create the fixture's schema");
    let fixture = fill(&*store, size, url);
    drop(store);
    let mut client = pg::connect(&pg.socket_dir, pg.port, &pg.user, dbname);
    client
        .batch_execute("VACUUM (ANALYZE) autheona.tokens")
        .expect("vacuum");
    client.batch_execute("CHECKPOINT").expect("checkpoint");
    fixture
}

/// Fills a new store: one project, one real token, `size - 1` fillers sharing one hash.
fn fill(store: &dyn Store, size: usize, db: String) -> Fixture {
    let now = Utc::now();
    project::create(store, "bench", now).expect("project");
    let mut rng = rand::rng();
    let request = TokenRequest {
        project: "bench",
        expiration: Expiration::Never,
        description: Some("verified by the benchmark"),
    };
    let mut token = String::new();
    token::create(store, &request, now, &mut rng, |created| {
        token = created.token.reveal().expose().to_owned();
        Ok(())
    })
    .expect("token");
    let shared_hash = secret::hash(&Secret::new("filler".into())).expect("hash");
    let ids: Vec<TokenId> = (1..size).map(|_| TokenId::generate(&mut rng)).collect();
    store
        .insert_tokens(&mut ids.iter().map(|id| NewToken {
            id: id.as_str(),
            project: "bench",
            secret_hash: &shared_hash,
            description: Some("filler"),
            created_at: now.timestamp(),
            expires_at: None,
        }))
        .expect("fillers");
    let unknown_id = with_checksum(format!("aut_{}_{}", "0".repeat(12), &token[17..60]));
    let wrong_secret = with_checksum(format!("aut_{}_{}", &token[4..16], "x".repeat(43)));
    Fixture {
        db,
        token,
        unknown_id,
        wrong_secret,
    }
}

/// An htpasswd file of `size` entries sharing one bcrypt hash (cost 5, htpasswd's default);
/// the user checked is the last line, so htpasswd reads the whole file, as it does for any
/// user near the end.
fn build_htpasswd(dir: &Path, size: usize, entry: &str) {
    let path = dir.join(format!("htpasswd-{size}"));
    let hash = entry.trim().split_once(':').expect("user:hash").1;
    let mut text = String::with_capacity(size * (hash.len() + 12));
    for i in 1..size {
        let _ = writeln!(text, "user{i}:{hash}");
    }
    let _ = writeln!(text, "bench:{hash}");
    std::fs::write(&path, text).expect("write htpasswd file");
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores, {cpu}, Linux {}, {}",
        kernel.trim(),
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    )
}

/// A command to time: `program` with `args`, and `env` added to the environment.
fn command(
    program: &Path,
    args: &[&dyn AsRef<OsStr>],
    env: &[(&str, &str)],
) -> impl Fn() -> Command + 'static + use<> {
    let program = program.to_owned();
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move || {
        let mut c = Command::new(&program);
        c.args(&args).envs(env.iter().map(|(k, v)| (k, v)));
        c
    }
}

fn size_mb(path: &Path) -> String {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    format!("{:.2} MB ({bytes} bytes)", bytes as f64 / 1e6)
}

const USAGE: &str = "usage: bench [--rounds N] [--before PATH] [--only serve | --skip serve] \
                     [--serve-seconds S] [--serve-rounds N]";

fn main() {
    // The fixtures on PostgreSQL are made through the store, as autheona makes them.
    autheona::store::link_postgres();
    // The fast commands take a few milliseconds each, and this machine is noisy: enough rounds
    // that a median holds still from run to run.
    let mut rounds = 200;
    let mut before: Option<PathBuf> = None;
    let mut fixtures_for: Option<PgAddress> = None;
    // The serve section: whether it runs, whether only it runs, and its load points' lengths.
    let (mut with_serve, mut only_serve) = (true, false);
    let mut serve_options = serve::Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds N")
            }
            // Another autheona (an earlier commit's), whose SQLite verify and --version are
            // timed interleaved with this one's.
            "--before" => before = Some(PathBuf::from(args.next().expect("--before PATH"))),
            "--only" => match args.next().as_deref() {
                Some("serve") => only_serve = true,
                other => panic!("--only {other:?}: only `--only serve` is known; {USAGE}"),
            },
            "--skip" => match args.next().as_deref() {
                Some("serve") => with_serve = false,
                other => panic!("--skip {other:?}: only `--skip serve` is known; {USAGE}"),
            },
            // Seconds of wrk's load at each serve load point (default 5).
            "--serve-seconds" => {
                serve_options.seconds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--serve-seconds S, at least 1")
            }
            // Rounds of the serve load points, after one warm-up pass (default 3).
            "--serve-rounds" => {
                serve_options.rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--serve-rounds N, at least 1")
            }
            // The fixture process: `fixtures SOCKET_DIR PORT USER`.
            "fixtures" => {
                let mut next = || args.next().expect("fixtures SOCKET_DIR PORT USER");
                fixtures_for = Some(PgAddress {
                    socket_dir: PathBuf::from(next()),
                    port: next().parse().expect("port"),
                    user: next(),
                });
            }
            other => panic!("unknown argument {other}; {USAGE}"),
        }
    }
    for name in FOREIGN_VARIABLES {
        // SAFETY: at the start of main, before any thread is spawned.
        unsafe { std::env::remove_var(name) };
    }
    let bin_dir = std::env::current_exe()
        .expect("own path")
        .parent()
        .expect("bin dir")
        .to_owned();
    let work = bin_dir.join("bench-work");
    std::fs::create_dir_all(&work).expect("work dir");
    if let Some(pg) = fixtures_for {
        build_fixtures(&work, &bin_dir.join("floor"), &pg);
        return;
    }
    // A server a killed run left would hold its copy busy (and its port).
    serve::stop_leftovers(&work);
    // The binaries are timed as installed: copied, as `cargo install` copies them. A binary
    // the linker has just written sits in the page cache in 4 KiB pieces, each mapped on its
    // own, and it started 5-15% slower than the same bytes copied (finding 10).
    let installed = work.join("bin");
    std::fs::create_dir_all(&installed).expect("bin dir");
    let install = |name: &str| {
        let copy = installed.join(name);
        std::fs::copy(bin_dir.join(name), &copy).expect("copy a binary");
        copy
    };
    let (autheona, floor, floor_pg, hello) = (
        install("autheona"),
        install("floor"),
        install("floor_pg"),
        install("hello"),
    );
    // What `autheona serve`, and every command on PostgreSQL, runs, from beside it.
    install("autheona-serve");
    let before = before.map(|path| {
        let copy = installed.join("autheona-before");
        std::fs::copy(&path, &copy).expect("copy the --before binary");
        (path, copy)
    });

    eprintln!("machine: {}", machine());
    let started = Instant::now();
    let server = pg::Server::start(&work);
    let server_line = format!(
        "{}, {}; {}",
        server.version,
        server.settings(),
        server.bouncer_version
    );
    eprintln!(
        "PostgreSQL started in {:.1} s: socket {}, port {}, PgBouncer on port {}: {server_line}",
        started.elapsed().as_secs_f64(),
        server.socket_dir.display(),
        server.port,
        server.bouncer_port,
    );
    if only_serve {
        let mut report = Report { rows: Vec::new() };
        let printed = serve::run(&serve_options, &work, &autheona, &server, &mut report);
        print_report(&report, &server_line, Some(&printed), "the serve rows only");
        return;
    }
    eprintln!("building fixtures in {} ...", work.display());
    let started = Instant::now();
    let status = Command::new(std::env::current_exe().expect("own path"))
        .arg("fixtures")
        .arg(&server.socket_dir)
        .arg(server.port.to_string())
        .arg(&server.user)
        .status()
        .expect("build fixtures");
    assert!(status.success(), "building fixtures failed");
    let manifest = std::fs::read_to_string(work.join("manifest")).expect("manifest");
    let all: Vec<Fixture> = manifest.lines().map(Fixture::from_manifest_line).collect();
    let (fixtures, pg_fixtures) = all.split_at(SIZES.len());
    let floor_db = work.join("floor.db");
    let htpasswd_files: Vec<PathBuf> = SIZES
        .iter()
        .map(|n| work.join(format!("htpasswd-{n}")))
        .collect();
    eprintln!("fixtures ready in {:.1} s", started.elapsed().as_secs_f64());

    let verify = |fixture: &Fixture, token: &str| {
        let (db, token, autheona) = (fixture.db.clone(), token.to_owned(), autheona.clone());
        move || {
            let mut c = Command::new(&autheona);
            c.arg("--db")
                .arg(&db)
                .arg("verify")
                .env("AUTHEONA_TOKEN", &token);
            c
        }
    };
    let htpasswd = |file: &Path| {
        let file = file.to_owned();
        move || {
            let mut c = Command::new("htpasswd");
            c.arg("-vb").arg(&file).args(["bench", "secret"]);
            c
        }
    };

    // Fast commands, interleaved round by round.
    let mut fast = vec![
        Bench::new("floor", {
            let (floor, db) = (floor.clone(), floor_db.clone());
            move || {
                let mut c = Command::new(&floor);
                c.arg(&db).env("FLOOR_SECRET", "floor-secret");
                c
            }
        }),
        Bench::new(
            "verify, 10 tokens",
            verify(&fixtures[0], &fixtures[0].token),
        ),
        Bench::new(
            "verify, 100,000 tokens",
            verify(&fixtures[1], &fixtures[1].token),
        ),
        Bench::new(
            "verify, 1,000,000 tokens",
            verify(&fixtures[2], &fixtures[2].token),
        ),
        Bench::new("htpasswd -vb, 10 entries", htpasswd(&htpasswd_files[0])),
        Bench::new("token create --expires 30, 100,000 tokens", {
            let (autheona, db) = (autheona.clone(), fixtures[1].db.clone());
            move || {
                let mut c = Command::new(&autheona);
                c.arg("--db")
                    .arg(&db)
                    .args(["token", "create", "-p", "bench", "-e", "30"]);
                c
            }
        })
        .with_stdout(work.join("created-tokens.txt")),
        Bench::new("autheona --version", {
            let autheona = autheona.clone();
            move || {
                let mut c = Command::new(&autheona);
                c.arg("--version");
                c
            }
        }),
        Bench::new("hello world (same profile)", {
            let hello = hello.clone();
            move || Command::new(&hello)
        }),
        Bench::new(
            "verify, unknown id (100,000 tokens)",
            verify(&fixtures[1], &fixtures[1].unknown_id),
        )
        .expecting_invalid(),
        Bench::new(
            "verify, wrong secret (100,000 tokens)",
            verify(&fixtures[1], &fixtures[1].wrong_secret),
        )
        .expecting_invalid(),
    ];
    // PostgreSQL: verify over the socket (peer authentication) and over TCP (SCRAM, TLS),
    // directly and through PgBouncer, each beside a floor that connects the same way; and
    // token create beside SQLite's.
    let user = server.user.clone();
    let tcp_url = |port: u16, dbname: &str| format!("postgres://{user}@127.0.0.1:{port}/{dbname}");
    let pg_verify = |db: &str, password: bool| {
        let token = pg_fixtures[0].token.clone();
        let mut env = vec![("AUTHEONA_TOKEN", token.as_str())];
        if password {
            env.push(("PGPASSWORD", pg::PASSWORD));
        }
        command(&autheona, &[&"--db", &db, &"verify"], &env)
    };
    let parsed = Token::parse(&pg_fixtures[0].token).expect("the fixture's token");
    let (floor_id, floor_secret) = (parsed.id().as_str(), parsed.secret().expose());
    let floor_pg_cmd = |host: &str, port: u16, connect_only: bool| {
        let port = port.to_string();
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&host, &port, &user, &"bench_10"];
        if connect_only {
            args.insert(0, &"--connect-only");
        }
        command(
            &floor_pg,
            &args,
            &[
                ("FLOOR_ID", floor_id),
                ("FLOOR_SECRET", floor_secret),
                ("PGPASSWORD", pg::PASSWORD),
            ],
        )
    };
    let socket_dir = server.socket_dir.to_str().expect("UTF-8 path");
    let (pg_port, bouncer_port) = (server.port, server.bouncer_port);
    fast.extend([
        Bench::new(
            "verify, PostgreSQL socket (peer), 10 tokens",
            command(
                &autheona,
                &[&"--db", &pg_fixtures[0].db, &"verify"],
                &[("AUTHEONA_TOKEN", &pg_fixtures[0].token)],
            ),
        ),
        Bench::new(
            "verify, PostgreSQL socket (peer), 1,000,000 tokens",
            command(
                &autheona,
                &[&"--db", &pg_fixtures[2].db, &"verify"],
                &[("AUTHEONA_TOKEN", &pg_fixtures[2].token)],
            ),
        ),
        Bench::new(
            "floor_pg, socket (peer), 10 tokens",
            floor_pg_cmd(socket_dir, pg_port, false),
        ),
        Bench::new(
            "verify, PostgreSQL TCP (SCRAM, TLS), 10 tokens",
            pg_verify(&tcp_url(pg_port, "bench_10"), true),
        ),
        Bench::new(
            "floor_pg, TCP (SCRAM, TLS), 10 tokens",
            floor_pg_cmd("127.0.0.1", pg_port, false),
        ),
        Bench::new(
            "floor_pg --connect-only, TCP (SCRAM, TLS)",
            floor_pg_cmd("127.0.0.1", pg_port, true),
        ),
        Bench::new(
            "verify, through PgBouncer (SCRAM, TLS), 10 tokens",
            pg_verify(&tcp_url(bouncer_port, "bench_10"), true),
        ),
        Bench::new(
            "floor_pg, through PgBouncer, 10 tokens",
            floor_pg_cmd("127.0.0.1", bouncer_port, false),
        ),
        Bench::new(
            "floor_pg --connect-only, through PgBouncer",
            floor_pg_cmd("127.0.0.1", bouncer_port, true),
        ),
        Bench::new(
            "verify, through PgBouncer socket (peer), 10 tokens",
            pg_verify(
                &format!(
                    "postgres:///bench_10?host={}&port={bouncer_port}",
                    url_encoded(socket_dir)
                ),
                false,
            ),
        ),
        Bench::new(
            "floor_pg, through PgBouncer socket (peer), 10 tokens",
            floor_pg_cmd(socket_dir, bouncer_port, false),
        ),
        Bench::new(
            "token create --expires 30, PostgreSQL socket, 100,000 tokens",
            command(
                &autheona,
                &[
                    &"--db",
                    &pg_fixtures[1].db,
                    &"token",
                    &"create",
                    &"-p",
                    &"bench",
                    &"-e",
                    &"30",
                ],
                &[],
            ),
        )
        .with_stdout(work.join("created-tokens-pg.txt")),
    ]);
    // The earlier autheona, on a fixture of 10 tokens it made itself (a schema of its own
    // version, which a later schema would not be to it): start-up before and after.
    if let Some((_, before)) = &before {
        let (db, token) = before_fixture(before, &work);
        fast.extend([
            Bench::new(
                "verify, 10 tokens (before)",
                command(
                    before,
                    &[&"--db", &db, &"verify"],
                    &[("AUTHEONA_TOKEN", &token)],
                ),
            ),
            Bench::new(
                "autheona --version (before)",
                command(before, &[&"--version"], &[]),
            ),
        ]);
    }
    eprintln!("timing fast commands: {rounds} rounds ...");
    measure(&mut fast, 3, rounds);

    let slow_rounds = (rounds / 20).max(5);
    let list = |fixture: &Fixture, json: bool| {
        let (autheona, db) = (autheona.clone(), fixture.db.clone());
        move || {
            let mut c = Command::new(&autheona);
            c.arg("--db").arg(&db).args(["token", "list"]);
            if json {
                c.arg("--json");
            }
            c
        }
    };
    let mut slow = vec![
        Bench::new(
            "htpasswd -vb, 100,000 entries",
            htpasswd(&htpasswd_files[1]),
        ),
        Bench::new(
            "htpasswd -vb, 1,000,000 entries",
            htpasswd(&htpasswd_files[2]),
        ),
        // Timed again beside htpasswd, so that those ratios come from interleaved runs too.
        Bench::new(
            "verify, 100,000 tokens (beside htpasswd)",
            verify(&fixtures[1], &fixtures[1].token),
        ),
        Bench::new(
            "verify, 1,000,000 tokens (beside htpasswd)",
            verify(&fixtures[2], &fixtures[2].token),
        ),
        Bench::new(
            "token list --json, 100,000 tokens",
            list(&fixtures[1], true),
        ),
        Bench::new(
            "token list (table), 100,000 tokens",
            list(&fixtures[1], false),
        ),
        Bench::new(
            "token list --json, 1,000,000 tokens",
            list(&fixtures[2], true),
        ),
        Bench::new(
            "token list (table), 1,000,000 tokens",
            list(&fixtures[2], false),
        ),
        // With a database, so the planted tokens' statuses are looked up too. Exits 1: found.
        Bench::new("scan, 100 MB in 3,000 files", {
            let (autheona, db) = (autheona.clone(), fixtures[0].db.clone());
            let tree = work.join("scan-tree");
            move || {
                let mut c = Command::new(&autheona);
                c.arg("--db").arg(&db).arg("scan").arg(&tree);
                c
            }
        })
        .expecting_invalid(),
        Bench::new(
            "token list --json, PostgreSQL socket, 100,000 tokens",
            command(
                &autheona,
                &[&"--db", &pg_fixtures[1].db, &"token", &"list", &"--json"],
                &[],
            ),
        ),
    ];
    eprintln!("timing slow commands: {slow_rounds} rounds ...");
    measure(&mut slow, 1, slow_rounds);

    // Concurrency: 8 processes, each verifying 50 times against one database.
    let processes = 8;
    let per_process = 50;
    eprintln!("concurrency: {processes} x {per_process} verifies ...");
    // The CPU time of one verify alone, measured just before and just after the concurrent
    // run, so that the ratio is taken within one stretch of this noisy machine's time. It is
    // what the machine spends per verify: the verify process, and starting and reaping it
    // (as the concurrent run does too); the process's own share is shown beside it.
    let mut alone_own = Vec::new();
    let mut alone_whole = Duration::ZERO;
    let mut alone = |runs: u32| {
        let make = verify(&fixtures[0], &fixtures[0].token);
        let before = cpu_used();
        alone_own.extend((0..runs).map(|_| run(make()).cpu));
        alone_whole += (cpu_used() - before) / runs;
    };
    alone(20);
    let started = Instant::now();
    let threads: Vec<_> = (0..processes)
        .map(|_| {
            let make = verify(&fixtures[0], &fixtures[0].token);
            std::thread::spawn(move || {
                (0..per_process)
                    .filter(|_| run(make()).code != Some(0))
                    .count()
            })
        })
        .collect();
    let failures: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    let concurrent_wall = started.elapsed();
    alone(20);
    alone_own.sort();

    let [
        floor_b,
        v10,
        v100k,
        v1m,
        ht10,
        create,
        version,
        hello_b,
        unknown,
        wrong,
    ] = <[Bench; 10]>::try_from(fast.drain(..10).collect::<Vec<_>>())
        .ok()
        .expect("ten fast benches");
    let [
        pg_socket,
        pg_socket_1m,
        floor_pg_socket,
        pg_tcp,
        floor_pg_tcp,
        connect_tcp,
        pg_bouncer,
        floor_pg_bouncer,
        connect_bouncer,
        pg_bouncer_socket,
        floor_pg_bouncer_socket,
        pg_create,
    ] = <[Bench; 12]>::try_from(fast.drain(..12).collect::<Vec<_>>())
        .ok()
        .expect("twelve PostgreSQL benches");
    // Left: the --before benches, if any.
    let before_benches = <[Bench; 2]>::try_from(fast).ok();
    let [
        ht100k,
        ht1m,
        v100k_beside,
        v1m_beside,
        list_json,
        list_table,
        list_json_1m,
        list_table_1m,
        scan,
        pg_list_json,
    ] = <[Bench; 10]>::try_from(slow)
        .ok()
        .expect("ten slow benches");

    let mut report = Report { rows: Vec::new() };
    for bench in [&floor_b, &v10, &v100k, &v1m, &ht10, &ht100k, &ht1m, &create] {
        report.timing(bench, "");
    }
    report.timing(&v100k_beside, "");
    report.timing(&v1m_beside, "");
    report.ratio(
        "verify (10 tokens) / floor",
        &v10,
        &floor_b,
        1.20,
        Cmp::AtMost,
    );
    report.ratio(
        "verify: 100,000 / 10 tokens",
        &v100k,
        &v10,
        1.05,
        Cmp::AtMost,
    );
    report.ratio(
        "verify: 1,000,000 / 10 tokens",
        &v1m,
        &v10,
        1.10,
        Cmp::AtMost,
    );
    report.ratio("htpasswd / verify, 10", &ht10, &v10, 1.0, Cmp::Above);
    report.ratio(
        "htpasswd / verify, 100,000",
        &ht100k,
        &v100k_beside,
        4.0,
        Cmp::AtLeast,
    );
    report.ratio(
        "htpasswd / verify, 1,000,000",
        &ht1m,
        &v1m_beside,
        30.0,
        Cmp::AtLeast,
    );
    report.ratio(
        "token create (100,000) / floor",
        &create,
        &floor_b,
        2.0,
        Cmp::AtMost,
    );
    report.timing(&list_json, "≤ 500 ms");
    let json_pass = list_json.median() <= Duration::from_millis(500);
    report.rows.last_mut().expect("row").pass &= json_pass;
    report.timing(&list_table, "≤ 1000 ms");
    let table_pass = list_table.median() <= Duration::from_secs(1);
    report.rows.last_mut().expect("row").pass &= table_pass;
    report.timing(&list_json_1m, "≤ 1000 ms");
    let json_1m_pass = list_json_1m.median() <= Duration::from_secs(1);
    report.rows.last_mut().expect("row").pass &= json_1m_pass;
    report.timing(&list_table_1m, "");
    report.timing(&scan, "≤ 1000 ms");
    let scan_pass = scan.median() <= Duration::from_secs(1);
    report.rows.last_mut().expect("row").pass &= scan_pass;
    let scan_peak = scan.max_rss_mib();
    report.value(
        &format!("peak memory, {}", scan.name),
        format!("{scan_peak:.1} MiB"),
        "≤ 20 MiB".into(),
        scan_peak <= 20.0,
    );
    // Lists stream from the store: memory stays flat however many tokens there are.
    for bench in [&list_json, &list_table, &list_json_1m, &list_table_1m] {
        let peak = bench.max_rss_mib();
        report.value(
            &format!("peak memory, {}", bench.name),
            format!("{peak:.1} MiB"),
            "≤ 16 MiB".into(),
            peak <= 16.0,
        );
    }
    let verify_peak = [&v10, &v100k, &v1m]
        .iter()
        .map(|b| b.max_rss_mib())
        .fold(0.0, f64::max);
    report.value(
        "peak memory, verify",
        format!("{verify_peak:.1} MiB"),
        "≤ 10 MiB".into(),
        verify_peak <= 10.0,
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cpu_one = alone_whole.as_secs_f64() / 2.0;
    let throughput = (processes * per_process) as f64 / concurrent_wall.as_secs_f64();
    let needed = 0.8 * cores / cpu_one;
    report.value(
        &format!("concurrency: {processes} x {per_process} verifies, failures"),
        failures.to_string(),
        "0".into(),
        failures == 0,
    );
    report.value(
        "concurrency: verifies per second",
        format!(
            "{throughput:.0}/s (one verify alone: {:.2} ms CPU, {:.2} ms of it in its process)",
            cpu_one * 1000.0,
            median(&alone_own).as_secs_f64() * 1000.0
        ),
        format!("≥ {needed:.0}/s (0.8 x cores / CPU)"),
        throughput >= needed,
    );
    report.timing(&version, "");
    report.timing(&hello_b, "");
    report.ratio(
        "start-up: --version / hello world",
        &version,
        &hello_b,
        1.20,
        Cmp::AtMost,
    );
    report.timing(&unknown, "");
    report.timing(&wrong, "");
    let spread = unknown.median().as_secs_f64() / wrong.median().as_secs_f64();
    report.value(
        "unknown id / wrong secret",
        String::new(),
        "within 10%".into(),
        (0.9..=1.1).contains(&spread),
    );
    report.rows.last_mut().expect("row").ratio = format!("{spread:.2}x");

    // PostgreSQL.
    for bench in [
        &pg_socket,
        &pg_socket_1m,
        &floor_pg_socket,
        &pg_tcp,
        &floor_pg_tcp,
        &connect_tcp,
        &pg_bouncer,
        &floor_pg_bouncer,
        &connect_bouncer,
        &pg_bouncer_socket,
        &floor_pg_bouncer_socket,
        &pg_create,
    ] {
        report.timing(bench, "");
    }
    report.ratio(
        "verify, PostgreSQL socket / SQLite (10 tokens)",
        &pg_socket,
        &v10,
        2.0,
        Cmp::AtMost,
    );
    report.ratio(
        "verify, PostgreSQL socket: 1,000,000 / 10 tokens",
        &pg_socket_1m,
        &pg_socket,
        1.10,
        Cmp::AtMost,
    );
    report.info_ratio(
        "verify / floor_pg, socket (peer)",
        &pg_socket,
        &floor_pg_socket,
    );
    report.ratio(
        "verify / floor_pg, TCP (SCRAM, TLS)",
        &pg_tcp,
        &floor_pg_tcp,
        1.20,
        Cmp::AtMost,
    );
    report.info_ratio(
        "connection's share: connect-only / floor_pg, TCP",
        &connect_tcp,
        &floor_pg_tcp,
    );
    report.info_ratio(
        "verify through PgBouncer / verify TCP direct",
        &pg_bouncer,
        &pg_tcp,
    );
    report.info_ratio(
        "verify / floor_pg, through PgBouncer",
        &pg_bouncer,
        &floor_pg_bouncer,
    );
    report.info_ratio(
        "connection's share: connect-only / floor_pg, through PgBouncer",
        &connect_bouncer,
        &floor_pg_bouncer,
    );
    report.info_ratio(
        "verify through PgBouncer socket (peer) / SQLite (10 tokens)",
        &pg_bouncer_socket,
        &v10,
    );
    report.info_ratio(
        "verify / floor_pg, through PgBouncer socket (peer)",
        &pg_bouncer_socket,
        &floor_pg_bouncer_socket,
    );
    report.info_ratio(
        "token create (100,000), PostgreSQL socket / SQLite",
        &pg_create,
        &create,
    );
    report.timing(&pg_list_json, "");
    report.info_ratio(
        "token list --json (100,000), PostgreSQL socket / SQLite",
        &pg_list_json,
        &list_json,
    );
    let pg_list_peak = pg_list_json.max_rss_mib();
    report.value(
        &format!("peak memory, {}", pg_list_json.name),
        format!("{pg_list_peak:.1} MiB"),
        "(information)".into(),
        true,
    );

    // Start-up for SQLite commands, this build against the --before one.
    report.value(
        "binary size, autheona",
        size_mb(&autheona),
        "(information)".into(),
        true,
    );
    if let (Some((path, copy)), Some([v10_before, version_before])) = (&before, &before_benches) {
        report.value(
            &format!("binary size, autheona before ({})", path.display()),
            size_mb(copy),
            "(information)".into(),
            true,
        );
        report.timing(v10_before, "");
        report.timing(version_before, "");
        report.info_ratio("before: verify (10 tokens) / floor", v10_before, &floor_b);
        let after_ratio = v10.median().as_secs_f64() / floor_b.median().as_secs_f64();
        let before_ratio = v10_before.median().as_secs_f64() / floor_b.median().as_secs_f64();
        let quotient = after_ratio / before_ratio;
        report.value(
            "start-up: (verify / floor) this build / before",
            String::new(),
            "≤ 1.03x".into(),
            quotient <= 1.03,
        );
        report.rows.last_mut().expect("row").ratio =
            format!("{quotient:.3}x ({after_ratio:.3} / {before_ratio:.3})");
        report.info_ratio("--version, this build / before", &version, version_before);
    }

    let printed =
        with_serve.then(|| serve::run(&serve_options, &work, &autheona, &server, &mut report));
    print_report(
        &report,
        &server_line,
        printed.as_ref(),
        &format!("{rounds} rounds of the fast commands, {slow_rounds} of the slow ones"),
    );
}

/// Prints the machine, the PostgreSQL server, the table, the serve section's setup and load
/// points (when it ran), and how many targets were missed.
fn print_report(report: &Report, server_line: &str, serve: Option<&serve::Printed>, runs: &str) {
    let missed = report.rows.iter().filter(|r| !r.pass).count();
    println!("Machine: {}\n", machine());
    println!("Server: {server_line}\n");
    if let Some(serve) = serve {
        println!("Load (serve rows): {}\n", serve.setup);
    }
    println!("{}", report.markdown());
    println!(
        "{runs}; {}",
        if missed == 0 {
            "every target met.".to_owned()
        } else {
            format!("{missed} target(s) missed.")
        }
    );
    if let Some(serve) = serve {
        println!("\nserve's load points (medians of the rounds; counts summed):\n");
        println!("{}", serve.details);
    }
}
