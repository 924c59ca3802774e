//! Finding tokens in files, directories and streams, so that they stay out of version control.
//!
//! A token is found wherever `aut_` starts 66 bytes that parse as one: the right shape and a
//! valid checksum, so look-alikes are never reported. Directories are walked as git sees them:
//! `.gitignore`, `.ignore`, `.git/info/exclude` and git's global excludes apply (the `ignore`
//! crate finds the global file as git does, from HOME or XDG_CONFIG_HOME), hidden files are
//! scanned (`.env` files are where tokens leak), the `.git` directory and symbolic links are
//! not. A path named explicitly is always scanned, even when ignored or binary, if it is a
//! file or a directory (or a link to one): a device, FIFO or socket is reported unread, and so
//! is a relative path that leaves the current directory through a symbolic link (a committed
//! `x -> /`). A file with a UTF-16 byte order mark is scanned as UTF-16 too.
//!
//! Nothing here prints; the time that expiry is judged by comes in as a value.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use ignore::{DirEntry, WalkBuilder, WalkState};
use memchr::{memchr, memchr_iter, memmem, memrchr};

use super::time;
use super::token::Status;
use crate::error::{Error, Result};
use crate::secret;
use crate::store::{Store, VerifyRow};
use crate::token::{PREFIX, TOKEN_LEN, Token, TokenId};

/// Bytes read at a time. Bounds the memory a scan takes per thread whatever a file's size; most
/// source files fit in one read.
const CHUNK: usize = 256 * 1024;

/// What a read keeps of the previous chunk: a token's length less one byte. A token that
/// straddles two chunks is found, and none is looked at twice.
const OVERLAP: usize = TOKEN_LEN - 1;

/// A walked file whose first 8000 bytes hold a NUL is binary and skipped: git's rule for diffs.
const BINARY_SNIFF: usize = 8000;

/// A file named `-`, and how it is given to the walker, which would read stdin for `-`.
const DASH: &str = "-";
const DOT_DASH: &str = "./-";

/// Where scanned bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Stdin,
    /// A file or directory, as named or as walked (relative stays relative).
    Path(PathBuf),
}

/// Where a token starts: line and column from 1, the column counted in bytes (as grep does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

/// What the database says about a token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseStatus {
    Active {
        project: String,
        /// The token that replaced it, while it works on in its grace period.
        replaced_by: Option<String>,
    },
    Expired {
        project: String,
    },
    /// Not in the database, revoked, or a wrong secret: one answer for all three, as verify's.
    Unknown,
    /// The id is in the database, but the secret was not checked: the scan had made as many
    /// argon2 checks as it makes (in all, or of wrong secrets for this id).
    Unchecked,
}

/// A token found: where, its public id, and its status when there is a database to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub source: Source,
    pub position: Position,
    pub id: TokenId,
    pub status: Option<DatabaseStatus>,
}

/// A path (or stdin) that could not be read, with the operating system's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub source: Source,
    pub reason: String,
}

/// What a scan found and what it could not read.
#[derive(Debug, Default)]
pub struct Scan {
    /// Sorted by source, line and column.
    pub findings: Vec<Finding>,
    /// Sorted by source.
    pub unreadable: Vec<Unreadable>,
    /// Ignore files that could not be read or parsed in full; the walk went on without the
    /// rules they broke, so it scanned more, never less.
    pub warnings: Vec<String>,
    /// Set when the database could not be asked; the findings then have no status.
    pub status_error: Option<Error>,
}

/// Whether a directory walk skips what ignore files (`.gitignore`, `.ignore`, git's excludes)
/// leave out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IgnoreFiles {
    #[default]
    Respect,
    /// Everything but the `.git` directory, symbolic links and binary files is scanned: for a
    /// tree that is not the working copy (staged files checked out elsewhere, where a staged
    /// `.ignore` must not hide anything).
    Disregard,
}

/// Scans `sources` (the current directory when there are none), reading `stdin` for
/// [`Source::Stdin`], and asks `store`, when there is one, about each token found. Records no
/// use of any token. `current_dir` is the directory relative paths start from (unknown:
/// `None`); a relative path named that leaves it through a symbolic link is reported, not
/// followed (see [`leaves_through_a_link`]).
pub fn scan(
    sources: &[Source],
    ignore_files: IgnoreFiles,
    current_dir: Option<&Path>,
    stdin: &mut dyn Read,
    store: Option<&dyn Store>,
    now: DateTime<Utc>,
) -> Scan {
    let collected = Mutex::new(Collected::default());
    let mut paths = Vec::new();
    let current_dir = current_dir.and_then(|dir| std::fs::canonicalize(dir).ok());
    for source in sources {
        match source {
            Source::Stdin => scan_stdin(stdin, &collected),
            Source::Path(path) => match leaves_through_a_link(path, current_dir.as_deref()) {
                None => paths.push(path.clone()),
                Some(reason) => Collected::add(&collected, |c| {
                    c.unreadable.push(Unreadable {
                        source: source.clone(),
                        reason,
                    })
                }),
            },
        }
    }
    if sources.is_empty() {
        // Shown as `src/main.rs`, not `./src/main.rs`, as ripgrep does with no path given.
        walk(&[PathBuf::from(".")], true, ignore_files, &collected);
    } else if !paths.is_empty() {
        walk(&paths, false, ignore_files, &collected);
    }
    let Collected {
        mut found,
        mut unreadable,
        warnings,
    } = collected
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    found.sort_by(|a, b| {
        (&a.source, a.position.line, a.position.column).cmp(&(
            &b.source,
            b.position.line,
            b.position.column,
        ))
    });
    // A file reached by two of the paths given under one name (`scan src src/main.rs`) is
    // reported once.
    found.dedup_by(|a, b| a.source == b.source && a.position == b.position);
    unreadable.sort_by(|a, b| a.source.cmp(&b.source));
    unreadable.dedup();
    let (statuses, status_error) = match store.map(|store| statuses(store, &found, now)) {
        None => (None, None),
        Some(Ok(statuses)) => (Some(statuses), None),
        Some(Err(err)) => (None, Some(err)),
    };
    let findings = found
        .into_iter()
        .enumerate()
        .map(|(i, found)| Finding {
            source: found.source,
            position: found.position,
            id: found.token.id().clone(),
            status: statuses.as_ref().map(|s| s[i].clone()),
        })
        .collect();
    Scan {
        findings,
        unreadable,
        warnings,
        status_error,
    }
}

/// A token as found, with its secret: needed to ask the database, dropped (and wiped) after.
struct Found {
    source: Source,
    position: Position,
    token: Token,
}

/// What the walking threads gather.
#[derive(Default)]
struct Collected {
    found: Vec<Found>,
    unreadable: Vec<Unreadable>,
    warnings: Vec<String>,
}

impl Collected {
    fn add(collected: &Mutex<Collected>, change: impl FnOnce(&mut Collected)) {
        // A panicking thread is reported by the walk itself; what it gathered is still good.
        let mut guard = collected
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        change(&mut guard);
    }
}

fn scan_stdin(stdin: &mut dyn Read, collected: &Mutex<Collected>) {
    let mut found = Vec::new();
    // Piped input was named explicitly: scanned even if it looks binary.
    let result = TokenFinder::new().find(stdin, false, &mut |position, token| {
        found.push(Found {
            source: Source::Stdin,
            position,
            token,
        });
    });
    Collected::add(collected, |c| {
        c.found.extend(found);
        if let Err(err) = result {
            c.unreadable.push(Unreadable {
                source: Source::Stdin,
                reason: err.to_string(),
            });
        }
    });
}

/// Walks `paths` on as many threads as there are cores (at most 12, the `ignore` crate's cap).
fn walk(
    paths: &[PathBuf],
    strip_dot: bool,
    ignore_files: IgnoreFiles,
    collected: &Mutex<Collected>,
) {
    // The `ignore` crate reads stdin for a path `-`; a file of that name is walked as `./-`,
    // and shown as it was named.
    let dash = Path::new(DASH);
    let walked: Vec<&Path> = paths
        .iter()
        .map(|path| {
            if path == dash {
                Path::new(DOT_DASH)
            } else {
                path
            }
        })
        .collect();
    let dash_named = paths.iter().any(|path| path == dash);
    let mut builder = WalkBuilder::new(walked[0]);
    for path in &walked[1..] {
        builder.add(path);
    }
    if ignore_files == IgnoreFiles::Disregard {
        // No .gitignore, .ignore, git excludes or parent directories' rules.
        builder.standard_filters(false);
    }
    // Hidden files are scanned; git's own store is not. Symbolic links inside the tree are
    // never followed (the default): they may lead outside it, or in circles.
    builder
        .hidden(false)
        .filter_entry(|entry| entry.file_name() != ".git");
    builder.build_parallel().run(|| {
        let mut finder = TokenFinder::new();
        Box::new(move |entry| {
            visit(entry, &mut finder, strip_dot, dash_named, collected);
            WalkState::Continue
        })
    });
}

fn visit(
    entry: std::result::Result<DirEntry, ignore::Error>,
    finder: &mut TokenFinder,
    strip_dot: bool,
    dash_named: bool,
    collected: &Mutex<Collected>,
) {
    let shown = |path: &Path| -> PathBuf {
        if strip_dot {
            return path.strip_prefix(".").unwrap_or(path).to_owned();
        }
        match path.strip_prefix(DOT_DASH) {
            Ok(rest) if dash_named && rest.as_os_str().is_empty() => PathBuf::from(DASH),
            Ok(rest) if dash_named => Path::new(DASH).join(rest),
            _ => path.to_owned(),
        }
    };
    let entry = match entry {
        Ok(entry) => entry,
        Err(err) => {
            let path = path_of(&err).map(shown);
            Collected::add(collected, |c| match (path, err.io_error()) {
                (Some(path), Some(io)) if !err.is_partial() => c.unreadable.push(Unreadable {
                    source: Source::Path(path),
                    reason: io.to_string(),
                }),
                _ => c
                    .warnings
                    .extend(err.to_string().lines().map(str::to_owned)),
            });
            return;
        }
    };
    if let Some(err) = entry.error() {
        // An ignore file in this directory could not be read or parsed in full.
        let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
        Collected::add(collected, |c| c.warnings.extend(lines));
    }
    let Some(file_type) = entry.file_type() else {
        return;
    };
    let named = entry.depth() == 0;
    // Inside a tree only regular files: a link is not followed, and a FIFO would block. A
    // named path is read when it is a file, or a link to one (see `open_named`).
    if file_type.is_dir() || !(named || file_type.is_file()) {
        return;
    }
    let source = Source::Path(shown(entry.path()));
    let mut found = Vec::new();
    let opened = if named {
        open_named(entry.path()).map(Some)
    } else {
        open_walked(entry.path())
    };
    let result = opened.and_then(|file| {
        let Some(mut file) = file else {
            return Ok(());
        };
        finder
            .find_in_file(&mut file, !named, &mut |position, token| {
                found.push(Found {
                    source: source.clone(),
                    position,
                    token,
                });
            })
            .map(drop)
    });
    match result {
        Ok(_) if found.is_empty() => {}
        Ok(_) => Collected::add(collected, |c| c.found.extend(found)),
        Err(err) => Collected::add(collected, |c| {
            c.unreadable.push(Unreadable {
                source,
                reason: err.to_string(),
            })
        }),
    }
}

/// Opens a file named on the command line, or the file a symbolic link named there leads to.
/// Anything else is refused unread: a device (`/dev/zero` would be read forever), a FIFO (it
/// blocks until something writes to it), a socket, or a link to one of them; a repository can
/// hold such a link, and a scan it could stop would guard nothing. Stdin (`-`) is for streams.
fn open_named(path: &Path) -> io::Result<File> {
    let link = std::fs::symlink_metadata(path)?.file_type().is_symlink();
    let refuse = |kind: std::fs::FileType| -> io::Result<File> {
        let what = kind_name(kind);
        let mut reason = if link {
            format!("a symbolic link to {what}, not to a regular file")
        } else {
            format!("{what}, not a regular file")
        };
        if kind.is_fifo() {
            reason.push_str(" (pipe a stream into `autheona scan -`)");
        }
        Err(io::Error::other(reason))
    };
    let kind = std::fs::metadata(path)?.file_type();
    if !kind.is_file() {
        return refuse(kind);
    }
    // Opened without waiting, and checked again once open: whatever replaced the file
    // meanwhile is refused too, and never blocks the scan.
    let file = open_nonblocking(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return refuse(kind);
    }
    Ok(file)
}

/// Why a path named on the command line is not followed, if it is not: it is relative, and a
/// symbolic link on it leads to a file or directory outside `current_dir`. Such a path comes
/// from a repository (`git ls-files` names a committed link `x -> /`, `x -> ..` or `x -> /proc`
/// so), and following it would walk the host, read what the repository does not hold, or wait
/// on a kernel file. A link whose target stays inside is followed; an absolute path is the
/// caller's own choice, and is. A dangling link, or one to a device, FIFO or socket, is left
/// for the walk and [`open_named`] to report. `current_dir` is canonical.
fn leaves_through_a_link(path: &Path, current_dir: Option<&Path>) -> Option<String> {
    if path.is_absolute() {
        return None;
    }
    let kind = std::fs::metadata(path).ok()?.file_type();
    if !kind.is_file() && !kind.is_dir() {
        return None;
    }
    let target = std::fs::canonicalize(path).ok()?;
    // Without links, the path resolves as it reads: `..` only leaves what it names.
    let through_a_link = current_dir.is_none_or(|dir| target != lexically_joined(dir, path));
    if !through_a_link || current_dir.is_some_and(|dir| target.starts_with(dir)) {
        return None;
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        "a file"
    };
    let itself = std::fs::symlink_metadata(trim_trailing_slashes(path))
        .is_ok_and(|meta| meta.file_type().is_symlink());
    let how = if itself {
        "a symbolic link"
    } else {
        "a path through a symbolic link"
    };
    Some(format!(
        "{how} to {what} outside the current directory, not followed"
    ))
}

/// `dir` joined with `path`, with `.` dropped and `..` taking off the last name, as if no name
/// were a symbolic link.
fn lexically_joined(dir: &Path, path: &Path) -> PathBuf {
    let mut joined = dir.to_owned();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                joined.pop();
            }
            other => joined.push(other),
        }
    }
    joined
}

/// `path` without the slashes it ends with: `x/` names what the link `x` leads to, `x` the
/// link itself.
fn trim_trailing_slashes(path: &Path) -> &Path {
    let bytes = path.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'/').map_or(1, |i| i + 1);
    Path::new(std::ffi::OsStr::from_bytes(&bytes[..end.min(bytes.len())]))
}

/// Opens a regular file met in a directory walk. Opened without waiting, as a named one is:
/// some files are regular to the walk yet block a plain read (`/proc/kmsg` waits for the
/// kernel's next message), and whatever replaced the file since the walk saw it is skipped,
/// never waited on.
fn open_walked(path: &Path) -> io::Result<Option<File>> {
    let file = open_nonblocking(path)?;
    Ok(file.metadata()?.is_file().then_some(file))
}

/// Opens `path` for reading without blocking on it (a FIFO, a terminal, a kernel file) at
/// open or at read: a read that would wait fails instead, and the file is reported unread.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// What a file that is not a regular file is, in words.
fn kind_name(kind: std::fs::FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "something"
    }
}

/// The path an error from the walk is about, if it names one.
fn path_of(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            path_of(err)
        }
        _ => None,
    }
}

/// How many argon2 checks of a secret one scan makes at most. A file can hold any number of
/// forged tokens that reuse a real id (ids are not secret), each a check: 20,000 of them took
/// 8.7 s. This bounds a scan's extra time to about half a second at the current hash cost;
/// the tokens past it are reported, as `unchecked`.
const MAX_SECRET_CHECKS: usize = 1_000;

/// How many wrong secrets are checked for one id at most, so that a flood of forgeries of one
/// id leaves the other ids' checks to the real tokens.
const MAX_WRONG_SECRETS_PER_ID: usize = 16;

/// What one scan knows of an id.
struct IdChecks<'a> {
    row: Option<VerifyRow>,
    /// The secret that matched, once one has: an id has one secret, so any other is wrong.
    matched: bool,
    wrong: usize,
    /// Each distinct token with this id, and its status.
    seen: Vec<(&'a Token, DatabaseStatus)>,
}

/// Each found token's status, in the order found. Each distinct token is looked up once, and
/// never recorded as a use; argon2 checks are bounded per id and per scan.
fn statuses(store: &dyn Store, found: &[Found], now: DateTime<Utc>) -> Result<Vec<DatabaseStatus>> {
    statuses_within(
        store,
        found,
        now,
        MAX_SECRET_CHECKS,
        MAX_WRONG_SECRETS_PER_ID,
    )
}

fn statuses_within(
    store: &dyn Store,
    found: &[Found],
    now: DateTime<Utc>,
    max_checks: usize,
    max_wrong_per_id: usize,
) -> Result<Vec<DatabaseStatus>> {
    // Keyed by id; a forged token can share an id with a real one, so the secrets are compared.
    let mut ids: HashMap<&TokenId, IdChecks<'_>> = HashMap::new();
    let mut checks = 0;
    let mut statuses = Vec::with_capacity(found.len());
    for found in found {
        let token = &found.token;
        let id = match ids.entry(token.id()) {
            Entry::Occupied(entry) => entry.into_mut(),
            // Unlike verify, scan need not hide which ids exist (whoever runs it can read the
            // database), so an unknown id costs no argon2 check: a file of made-up tokens stays
            // as fast to scan as any other.
            Entry::Vacant(entry) => entry.insert(IdChecks {
                // A token whose grace period is over is gone, as if revoked then.
                row: store.token_for_verify(token.id().as_str())?.filter(|row| {
                    row.replacement
                        .as_ref()
                        .is_none_or(|r| time(r.stops_at) > now)
                }),
                matched: false,
                wrong: 0,
                seen: Vec::new(),
            }),
        };
        if let Some((_, status)) = id.seen.iter().find(|(seen, _)| *seen == token) {
            statuses.push(status.clone());
            continue;
        }
        let status = match &id.row {
            None => DatabaseStatus::Unknown,
            Some(_) if id.matched => DatabaseStatus::Unknown,
            Some(_) if checks >= max_checks || id.wrong >= max_wrong_per_id => {
                DatabaseStatus::Unchecked
            }
            Some(row) => {
                checks += 1;
                if secret::verify(token.secret(), &row.secret_hash) {
                    id.matched = true;
                    let project = row.project.clone();
                    match Status::at(row.expires_at.map(time), now) {
                        Status::Active => DatabaseStatus::Active {
                            project,
                            replaced_by: row.replacement.as_ref().map(|r| r.by.clone()),
                        },
                        Status::Expired => DatabaseStatus::Expired { project },
                    }
                } else {
                    id.wrong += 1;
                    DatabaseStatus::Unknown
                }
            }
        };
        id.seen.push((token, status.clone()));
        statuses.push(status);
    }
    Ok(statuses)
}

/// Whether a stream was scanned, or skipped as binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    Text,
    Binary,
}

/// Finds tokens in a stream read in fixed chunks, so that memory stays bounded whatever the
/// stream's size. Keep one per thread: its buffer is reused.
pub struct TokenFinder {
    buf: Vec<u8>,
    chunk: usize,
    prefix: memmem::Finder<'static>,
    /// The last stream's first bytes, to tell a UTF-16 byte order mark.
    head: [u8; 2],
    head_len: usize,
}

impl Default for TokenFinder {
    fn default() -> Self {
        TokenFinder::new()
    }
}

impl TokenFinder {
    pub fn new() -> TokenFinder {
        TokenFinder::with_chunk(CHUNK)
    }

    /// Reads `chunk` bytes at a time (the tests use small chunks to put tokens across them).
    fn with_chunk(chunk: usize) -> TokenFinder {
        TokenFinder {
            buf: Vec::new(),
            chunk,
            prefix: memmem::Finder::new(PREFIX.as_bytes()),
            head: [0; 2],
            head_len: 0,
        }
    }

    /// Reads a file as [`TokenFinder::find`] does, and when it starts with a UTF-16 byte order
    /// mark (Windows editors save text so), reads it again as UTF-16: its tokens are found
    /// too, with columns counting UTF-16 code units after the mark, and only a NUL character
    /// (not the zero half of each ASCII one) makes it binary. The bytes are scanned either
    /// way: a file of other bytes may start as a mark does.
    pub fn find_in_file(
        &mut self,
        file: &mut File,
        skip_binary: bool,
        found: &mut dyn FnMut(Position, Token),
    ) -> io::Result<Scanned> {
        let as_bytes = self.find(file, skip_binary, found)?;
        let Some(order) = ByteOrder::of_mark(&self.head[..self.head_len]) else {
            return Ok(as_bytes);
        };
        file.seek(SeekFrom::Start(2))?;
        let as_utf16 = self.find(&mut Utf16Units::new(file, order), skip_binary, found)?;
        Ok(if as_bytes == Scanned::Text || as_utf16 == Scanned::Text {
            Scanned::Text
        } else {
            Scanned::Binary
        })
    }

    /// Reads `reader` to its end and calls `found` with each token in it, in order; tokens
    /// that overlap or touch are all found. With `skip_binary`, a stream whose first 8000
    /// bytes hold a NUL is read no further: [`Scanned::Binary`]. When a read fails, the tokens
    /// before it have been passed to `found`.
    pub fn find(
        &mut self,
        reader: &mut dyn Read,
        skip_binary: bool,
        found: &mut dyn FnMut(Position, Token),
    ) -> io::Result<Scanned> {
        let TokenFinder {
            buf,
            chunk,
            prefix,
            head,
            head_len,
        } = self;
        // Allocated on first use: a thread that never meets a file costs nothing.
        buf.resize(*chunk + OVERLAP, 0);
        let mut lines = Lines::default();
        // Offset in the stream of buf[0], and how many bytes of the last chunk buf starts with.
        let mut base = 0u64;
        let mut kept = 0;
        loop {
            let (filled, ending) = fill(reader, buf, kept);
            if base == 0 {
                *head_len = filled.min(head.len());
                head[..*head_len].copy_from_slice(&buf[..*head_len]);
            }
            if base == 0 && skip_binary && memchr(0, &buf[..filled.min(BINARY_SNIFF)]).is_some() {
                return Ok(Scanned::Binary);
            }
            let window = &buf[..filled];
            // Tokens starting before `complete` lie wholly in the window; later starts lie in
            // the tail kept for the next round (or, at the end, are too short to be tokens).
            let complete = filled.saturating_sub(TOKEN_LEN - 1);
            let haystack = &window[..filled.min(complete + PREFIX.len() - 1)];
            for at in prefix.find_iter(haystack) {
                let Some(token) = parse(&window[at..at + TOKEN_LEN]) else {
                    continue;
                };
                lines.advance(&window[(lines.counted - base) as usize..at]);
                found(
                    Position {
                        line: lines.line,
                        column: base + at as u64 - lines.line_start + 1,
                    },
                    token,
                );
            }
            match ending {
                Filled::Full => {}
                Filled::End => return Ok(Scanned::Text),
                Filled::Failed(err) => return Err(err),
            }
            let keep_from = filled - OVERLAP;
            lines.advance(&window[(lines.counted - base) as usize..keep_from]);
            buf.copy_within(keep_from..filled, 0);
            base += keep_from as u64;
            kept = OVERLAP;
        }
    }
}

/// The byte order of UTF-16 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    /// The order a stream's first two bytes mark, if they are a byte order mark.
    fn of_mark(head: &[u8]) -> Option<ByteOrder> {
        match head {
            [0xFF, 0xFE] => Some(ByteOrder::Little),
            [0xFE, 0xFF] => Some(ByteOrder::Big),
            _ => None,
        }
    }
}

/// UTF-16 text read as one byte per code unit: an ASCII character as itself, any other unit as
/// 0xFF, which no token holds and which is no newline and no NUL. Tokens, lines and NUL
/// characters are then found as in 8-bit text, with no decoding and no more memory than one
/// chunk's worth of raw bytes.
struct Utf16Units<'a> {
    inner: &'a mut dyn Read,
    order: ByteOrder,
    raw: Vec<u8>,
    /// The first byte of a unit whose second byte is still to be read.
    odd: Option<u8>,
}

/// What a code unit that is not ASCII reads as.
const NOT_ASCII: u8 = 0xFF;

impl<'a> Utf16Units<'a> {
    fn new(inner: &'a mut dyn Read, order: ByteOrder) -> Utf16Units<'a> {
        Utf16Units {
            inner,
            order,
            raw: Vec::new(),
            odd: None,
        }
    }
}

impl Read for Utf16Units<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            self.raw.resize(out.len() * 2, 0);
            let start = match self.odd.take() {
                Some(byte) => {
                    self.raw[0] = byte;
                    1
                }
                None => 0,
            };
            let n = match self.inner.read(&mut self.raw[start..]) {
                Ok(n) => n,
                Err(err) => {
                    self.odd = (start == 1).then_some(self.raw[0]);
                    return Err(err);
                }
            };
            // At the end, half a unit is no character.
            if n == 0 {
                return Ok(0);
            }
            let total = start + n;
            if total % 2 == 1 {
                self.odd = Some(self.raw[total - 1]);
            }
            let units = total / 2;
            for (byte, pair) in out.iter_mut().zip(self.raw[..units * 2].chunks_exact(2)) {
                let unit = match self.order {
                    ByteOrder::Little => u16::from_le_bytes([pair[0], pair[1]]),
                    ByteOrder::Big => u16::from_be_bytes([pair[0], pair[1]]),
                };
                *byte = u8::try_from(unit)
                    .ok()
                    .filter(u8::is_ascii)
                    .unwrap_or(NOT_ASCII);
            }
            if units > 0 {
                return Ok(units);
            }
        }
    }
}

/// How filling the buffer ended.
enum Filled {
    /// The buffer is full; the stream may go on.
    Full,
    End,
    /// A read failed: what came before it is still scanned.
    Failed(io::Error),
}

/// Fills `buf` from `reader` after its first `filled` bytes; says how full it got and why it
/// stopped.
fn fill(reader: &mut dyn Read, buf: &mut [u8], mut filled: usize) -> (usize, Filled) {
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return (filled, Filled::End),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (filled, Filled::Failed(err)),
        }
    }
    (filled, Filled::Full)
}

fn parse(bytes: &[u8]) -> Option<Token> {
    Token::parse(std::str::from_utf8(bytes).ok()?).ok()
}

/// The line count up to an offset in the stream. Newlines are counted once each, only as far
/// as a token or the end of a chunk needs them.
struct Lines {
    /// The line that offset `counted` is on, from 1.
    line: u64,
    /// Where that line starts in the stream.
    line_start: u64,
    /// How far the stream has been counted.
    counted: u64,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            line: 1,
            line_start: 0,
            counted: 0,
        }
    }
}

impl Lines {
    /// Counts `bytes`, the stream's next bytes from offset `counted` on.
    fn advance(&mut self, bytes: &[u8]) {
        if let Some(last) = memrchr(b'\n', bytes) {
            self.line += memchr_iter(b'\n', bytes).count() as u64;
            self.line_start = self.counted + last as u64 + 1;
        }
        self.counted += bytes.len() as u64;
    }
}

#[cfg(test)]
mod tests;
