//! The clock and the time zone, read once at start-up and handed down in the `Context`.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Utc};

use crate::error::{Error, Result};
use crate::ui::time::Zone;

/// The current time. A clock before 1970 or past the year 9999 is refused: times are stored
/// as seconds since 1970 and shown with four-digit years, and a clock that far off is wrong.
pub fn now() -> Result<DateTime<Utc>> {
    let wrong = |reads: String| {
        Error::environment(format!("the system clock reads {reads}"))
            .with_hint("set the system clock to the current date and time")
    };
    let now = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs())
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, since.subsec_nanos())),
        Err(before) => {
            let before = before.duration();
            // Rounded down to the second: 0.2 s before 1970 reads 23:59:59.
            let shown = i64::try_from(before.as_secs())
                .ok()
                .map(|secs| -secs - i64::from(before.subsec_nanos() > 0))
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .map_or_else(
                    || "a time before 1970".to_owned(),
                    |at| format!("{}, before 1970", at.format("%Y-%m-%d %H:%M:%S UTC")),
                );
            return Err(wrong(shown));
        }
    };
    match now {
        Some(now) if now.year() <= 9999 => Ok(now),
        _ => Err(wrong("a time past the year 9999".to_owned())),
    }
}

/// Largest time zone file read: the tz database's largest is under 4 KiB.
const MAX_ZONE_FILE: u64 = 256 * 1024;

/// Smallest time zone file: a TZif header alone is 44 bytes.
const MIN_ZONE_FILE: u64 = 44;

/// Where chrono's `Local` looks for a relative `TZ` name (chrono 0.4, `find_tz_file`).
const ZONE_INFO_DIRECTORIES: [&str; 4] = [
    "/usr/share/zoneinfo",
    "/share/zoneinfo",
    "/etc/zoneinfo",
    "/usr/share/lib/zoneinfo",
];

/// The zone times are shown in: local, unless `TZ` names a file that is not a small, regular
/// time zone file. chrono's `Local` reads such a file whole, so `TZ=/dev/zero` would fill
/// memory and a FIFO or `/dev/urandom` would hang; then the warning says so, and times are
/// shown in UTC. A POSIX rule such as `EST5EDT` or `UTC0` names no file and is left to chrono.
pub fn zone(tz: Option<&OsStr>) -> (Zone, Option<String>) {
    let Some(tz) = tz.filter(|tz| !tz.is_empty()) else {
        return (Zone::Local, None);
    };
    let text = tz.to_string_lossy();
    let name = text.strip_prefix(':').unwrap_or(&text);
    let Some((path, meta)) = zone_file(Path::new(name)) else {
        return (Zone::Local, None);
    };
    match refuse_zone_file(&path, &meta) {
        None => (Zone::Local, None),
        Some(why) => (
            Zone::Utc,
            Some(format!(
                "TZ={text} is ignored: {} {why}; times are shown in UTC",
                path.display()
            )),
        ),
    }
}

/// The file chrono would open for this `TZ` name, with its metadata (links followed): the
/// path itself when absolute, else the first zone info directory that has it. Looked up
/// without opening it, which would block on a FIFO.
fn zone_file(name: &Path) -> Option<(PathBuf, Metadata)> {
    let candidates: Vec<PathBuf> = if name.is_absolute() {
        vec![name.to_owned()]
    } else {
        ZONE_INFO_DIRECTORIES
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .collect()
    };
    candidates
        .into_iter()
        .find_map(|path| std::fs::metadata(&path).ok().map(|meta| (path, meta)))
}

/// Why this file is not to be read as a time zone, if it is not.
fn refuse_zone_file(path: &Path, meta: &Metadata) -> Option<&'static str> {
    if !meta.is_file() {
        return Some("is not a regular file");
    }
    if meta.len() > MAX_ZONE_FILE {
        return Some("is too large for a time zone file");
    }
    // Refused unread: kernel files such as /proc/kmsg are regular, of size 0, and a plain
    // read of one waits for good.
    if meta.len() < MIN_ZONE_FILE {
        return Some("is too small for a time zone file");
    }
    let mut magic = [0; 4];
    // Opened without waiting all the same: a read that would wait fails, and is refused. One
    // that cannot be opened is left to chrono, which then falls back on the system's zone.
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    else {
        return None;
    };
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == b"TZif" => None,
        _ => Some("is not a time zone file"),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    fn zone_of(tz: &str) -> (Zone, Option<String>) {
        zone(Some(OsStr::new(tz)))
    }

    #[test]
    fn rules_and_unset_or_empty_tz_are_local() {
        for tz in ["UTC0", "EST5EDT,M3.2.0,M11.1.0", "<+03>-3", "no/such/zone"] {
            assert_eq!(zone_of(tz), (Zone::Local, None), "{tz}");
        }
        assert_eq!(zone(None), (Zone::Local, None));
        assert_eq!(zone_of(""), (Zone::Local, None));
    }

    #[test]
    fn devices_and_directories_are_refused() {
        for tz in ["/dev/zero", ":/dev/urandom", "/", "../../../dev/zero"] {
            let (zone, warning) = zone_of(tz);
            assert_eq!(zone, Zone::Utc, "{tz}");
            let warning = warning.unwrap();
            assert!(warning.contains("not a regular file"), "{warning}");
        }
    }

    #[test]
    fn files_that_are_not_zones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        File::create(&big)
            .unwrap()
            .set_len(MAX_ZONE_FILE + 1)
            .unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, "not a zone file, though long enough to be one").unwrap();
        let empty = dir.path().join("empty");
        File::create(&empty).unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, b"TZif2").unwrap();
        for (path, why) in [
            (&big, "too large"),
            (&text, "not a time zone file"),
            (&empty, "too small"),
            (&short, "too small"),
        ] {
            let (zone, warning) = zone_of(path.to_str().unwrap());
            assert_eq!(zone, Zone::Utc);
            assert!(warning.unwrap().contains(why));
        }
    }
}
