//! Calendar helpers. Dates are whole days since 1970-01-01 ([`Day`]); instants are
//! seconds since the Unix epoch in UTC ([`Ts`]). Plain integers keep the hot loops over
//! events cheap, and chrono is only consulted at the edges (parsing and formatting).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};

/// A calendar date as days since 1970-01-01.
pub type Day = i32;
/// An instant as seconds since 1970-01-01T00:00:00Z.
pub type Ts = i64;

/// Seconds in one day.
pub const SECONDS_PER_DAY: i64 = 86_400;

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The instant at midnight UTC that starts `day`.
pub fn day_start(day: Day) -> Ts {
    i64::from(day) * SECONDS_PER_DAY
}

/// The date (UTC) an instant falls on.
pub fn day_of(ts: Ts) -> Day {
    ts.div_euclid(SECONDS_PER_DAY) as Day
}

/// Converts a chrono date.
pub fn from_naive(date: NaiveDate) -> Day {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

/// Converts to a chrono date.
pub fn to_naive(day: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + UNIX_EPOCH_DAYS_FROM_CE)
        .expect("day within chrono's range")
}

/// Builds a date from year, month and day of month, if it exists.
pub fn ymd(year: i32, month: u32, day: u32) -> Option<Day> {
    NaiveDate::from_ymd_opt(year, month, day).map(from_naive)
}

/// Parses an ISO `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<Day> {
    let b = text.trim().as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    ymd(year as i32, month, day)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Parses an RFC 3339 timestamp (`2024-03-01T12:30:00Z`, `...+02:00`, fractional
/// seconds allowed). Without an offset the time is taken as UTC; a space may stand for
/// the `T`, and a bare date means midnight UTC.
pub fn parse_timestamp(text: &str) -> Option<Ts> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() == 10 {
        return parse_date(t).map(day_start);
    }
    // Fast path for the common `YYYY-MM-DDTHH:MM:SS[Z]` shape.
    if (b.len() == 19 || (b.len() == 20 && (b[19] == b'Z' || b[19] == b'z')))
        && (b[10] == b'T' || b[10] == b' ' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
    {
        let day = parse_date(&t[..10])?;
        let (h, m, s) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        );
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        return Some(day_start(day) + i64::from(h * 3600 + m * 60 + s));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp());
    }
    let normalized = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(dt.timestamp());
    }
    NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|dt| dt.and_utc().timestamp())
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(day: Day) -> String {
    to_naive(day).format("%Y-%m-%d").to_string()
}

/// Formats an instant as RFC 3339 in UTC (`2024-03-01T12:30:00Z`).
pub fn format_timestamp(ts: Ts) -> String {
    DateTime::from_timestamp(ts, 0)
        .map(|dt| dt.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts.to_string())
}

/// The first day of the month `day` falls in.
pub fn month_start(day: Day) -> Day {
    let d = to_naive(day);
    ymd(d.year(), d.month(), 1).expect("first of month exists")
}

/// `day` moved by `months` calendar months, clamped to the end of shorter months
/// (Jan 31 + 1 month = Feb 28/29).
pub fn add_months(day: Day, months: i32) -> Day {
    let d = to_naive(day);
    let total = d.year() * 12 + d.month0() as i32 + months;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12) as u32);
    let mut dom = d.day();
    loop {
        if let Some(x) = ymd(year, month0 + 1, dom) {
            return x;
        }
        dom -= 1;
    }
}

/// A month key `YYYY-MM` for the month `day` falls in (signup cohorts, KPI rows).
pub fn month_key(day: Day) -> String {
    to_naive(day).format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for text in ["1970-01-01", "2024-02-29", "1999-12-31", "2031-07-04"] {
            let day = parse_date(text).unwrap();
            assert_eq!(format_date(day), text);
        }
        assert_eq!(parse_date("1970-01-02"), Some(1));
    }

    #[test]
    fn bad_dates_are_refused() {
        for text in [
            "2024-02-30",
            "2024-13-01",
            "24-01-01",
            "2024/01/01",
            "",
            "2024-01-0x",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

    #[test]
    fn timestamps_parse_with_and_without_offsets() {
        let utc = parse_timestamp("2024-03-01T12:30:00Z").unwrap();
        assert_eq!(parse_timestamp("2024-03-01T12:30:00").unwrap(), utc);
        assert_eq!(parse_timestamp("2024-03-01 12:30:00").unwrap(), utc);
        assert_eq!(parse_timestamp("2024-03-01T14:30:00+02:00").unwrap(), utc);
        assert_eq!(parse_timestamp("2024-03-01T12:30:00.250Z").unwrap(), utc);
        assert_eq!(
            parse_timestamp("2024-03-01").unwrap(),
            day_start(parse_date("2024-03-01").unwrap())
        );
        assert_eq!(format_timestamp(utc), "2024-03-01T12:30:00Z");
        assert_eq!(parse_timestamp("2024-03-01T25:00:00Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn month_arithmetic_clamps() {
        let jan31 = parse_date("2024-01-31").unwrap();
        assert_eq!(format_date(add_months(jan31, 1)), "2024-02-29");
        assert_eq!(format_date(add_months(jan31, -2)), "2023-11-30");
        assert_eq!(format_date(month_start(jan31)), "2024-01-01");
        assert_eq!(month_key(jan31), "2024-01");
        assert_eq!(day_of(-1), -1);
    }
}
