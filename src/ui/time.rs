//! Times for people (local, to the minute) and for machines (RFC 3339 UTC).

use chrono::{DateTime, Datelike, Local, SecondsFormat, TimeDelta, Timelike, Utc};

/// The zone times are shown in to people. Worked out once at start-up
/// (`environment::clock::zone`): local, unless `TZ` names a file that is unsafe to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Local,
    Utc,
}

/// `YYYY-MM-DD HH:MM` in the given zone.
pub fn for_people(zone: Zone, time: DateTime<Utc>) -> String {
    match zone {
        Zone::Local => minutes(&time.with_timezone(&Local)),
        Zone::Utc => minutes(&time),
    }
}

fn minutes(local: &(impl Datelike + Timelike)) -> String {
    // Written out rather than through `format`, which parses its pattern on every call: a list
    // of 100,000 tokens formats 300,000 times.
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute()
    )
}

/// `YYYY-MM-DD HH:MM:SS` in the given zone: for a log, where the second counts.
pub fn for_people_to_the_second(zone: Zone, time: DateTime<Utc>) -> String {
    fn seconds(t: &(impl Datelike + Timelike)) -> String {
        format!("{}:{:02}", minutes(t), t.second())
    }
    match zone {
        Zone::Local => seconds(&time.with_timezone(&Local)),
        Zone::Utc => seconds(&time),
    }
}

/// How wide [`for_people`] writes `time`, without writing it.
pub fn for_people_width(zone: Zone, time: DateTime<Utc>) -> usize {
    // A year a day away from the ends of 0..=9999 in UTC stays four digits in any zone.
    if (1..=9998).contains(&time.year()) {
        "YYYY-MM-DD HH:MM".len()
    } else {
        for_people(zone, time).len()
    }
}

/// How wide [`for_people_or_never`] writes `time`, without writing it.
pub fn for_people_or_never_width(zone: Zone, time: Option<DateTime<Utc>>) -> usize {
    time.map_or("Never".len(), |time| for_people_width(zone, time))
}

/// `for_people`, or `Never` for none.
pub fn for_people_or_never(zone: Zone, time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(|| "Never".to_owned(), |time| for_people(zone, time))
}

/// `expires YYYY-MM-DD HH:MM` or `never expires`.
pub fn expiry(zone: Zone, expires_at: Option<DateTime<Utc>>) -> String {
    match expires_at {
        Some(at) => format!("expires {}", for_people(zone, at)),
        None => "never expires".to_owned(),
    }
}

/// A length of time for people, in its largest whole unit: `3 days`, `1 hour`, `5 minutes`
/// (at least 1 minute).
pub fn span(length: TimeDelta) -> String {
    let (count, unit) = if length.num_days() >= 1 {
        (length.num_days(), "day")
    } else if length.num_hours() >= 1 {
        (length.num_hours(), "hour")
    } else {
        (length.num_minutes().max(1), "minute")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// RFC 3339 in UTC with a `Z` suffix, to the second.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time as [`rfc3339`] writes it, serialized in JSON without a string of its own: a list
/// of a million tokens writes three million of them.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub DateTime<Utc>);

impl Rfc3339 {
    /// `YYYY-MM-DDTHH:MM:SSZ`, for years of four digits (the rest go through [`rfc3339`]).
    fn bytes(&self) -> Option<[u8; 20]> {
        let time = &self.0;
        let year = u32::try_from(time.year())
            .ok()
            .filter(|&year| year <= 9999)?;
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, digits: usize, mut value: u32| {
            for place in (at..at + digits).rev() {
                out[place] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, time.month());
        put(8, 2, time.day());
        put(11, 2, time.hour());
        put(14, 2, time.minute());
        put(17, 2, time.second());
        Some(out)
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.bytes() {
            Some(bytes) => f.write_str(std::str::from_utf8(&bytes).map_err(|_| std::fmt::Error)?),
            None => f.write_str(&rfc3339(self.0)),
        }
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.bytes() {
            // ASCII digits and separators: always UTF-8.
            Some(bytes) => serializer.serialize_str(std::str::from_utf8(&bytes).unwrap_or("")),
            None => serializer.serialize_str(&rfc3339(self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_written_in_place_is_rfc3339() {
        for seconds in [0, 1_764_579_515, 253_402_300_799, 253_402_300_800] {
            let time = chrono::DateTime::from_timestamp(seconds, 0).unwrap();
            assert_eq!(super::Rfc3339(time).to_string(), super::rfc3339(time));
        }
    }

    use super::*;

    #[test]
    fn for_people_is_local_to_the_minute() {
        let time = DateTime::from_timestamp(1_800_000_059, 0).unwrap();
        let expected = time
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M")
            .to_string();
        assert_eq!(for_people(Zone::Local, time), expected);
        assert_eq!(for_people(Zone::Utc, time), "2027-01-15 08:00");
    }

    #[test]
    fn span_uses_the_largest_whole_unit() {
        for (seconds, expected) in [
            (7 * 86_400, "7 days"),
            (86_400 + 3_599, "1 day"),
            (2 * 86_400 - 1, "1 day"),
            (86_399, "23 hours"),
            (3_600, "1 hour"),
            (3_599, "59 minutes"),
            (61, "1 minute"),
            (5, "1 minute"),
        ] {
            assert_eq!(span(TimeDelta::seconds(seconds)), expected, "{seconds}");
        }
    }

    #[test]
    fn rfc3339_is_utc_with_z() {
        let time = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(rfc3339(time), "2027-01-15T08:00:00Z");
    }
}
