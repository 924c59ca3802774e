//! Times for people (local, to the minute) and for machines (RFC 3339 UTC).

use chrono::{DateTime, Datelike, Local, SecondsFormat, Timelike, Utc};

/// `YYYY-MM-DD HH:MM` in local time.
pub fn for_people(time: DateTime<Utc>) -> String {
    // Written out rather than through `format`, which parses its pattern on every call: a list
    // of 100,000 tokens formats 300,000 times.
    let local = time.with_timezone(&Local);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute()
    )
}

/// `for_people`, or `Never` for none.
pub fn for_people_or_never(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(|| "Never".to_owned(), for_people)
}

/// `expires YYYY-MM-DD HH:MM` or `never expires`.
pub fn expiry(expires_at: Option<DateTime<Utc>>) -> String {
    match expires_at {
        Some(at) => format!("expires {}", for_people(at)),
        None => "never expires".to_owned(),
    }
}

/// RFC 3339 in UTC with a `Z` suffix, to the second.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_people_is_local_to_the_minute() {
        let time = DateTime::from_timestamp(1_800_000_059, 0).unwrap();
        let expected = time
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M")
            .to_string();
        assert_eq!(for_people(time), expected);
    }

    #[test]
    fn rfc3339_is_utc_with_z() {
        let time = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(rfc3339(time), "2027-01-15T08:00:00Z");
    }
}
