//! Event time read from a line's time field: RFC 3339 at any precision, or a
//! Unix epoch in seconds, milliseconds, microseconds or nanoseconds (as a JSON
//! number or a numeric string), the unit decided by the magnitude.
//!
//! Times without a UTC offset are refused: the zone they were written in is
//! unknown, and a guess would misplace the entry by hours.

use chrono::DateTime;

/// Magnitudes of the integer part that decide the unit of an epoch number:
/// below 10^11 seconds (until year 5138), below 10^14 milliseconds, below
/// 10^17 microseconds, nanoseconds beyond.
const SECONDS_BELOW: f64 = 1e11;
const MILLIS_BELOW: f64 = 1e14;
const MICROS_BELOW: f64 = 1e17;

/// Parses `value` as an event time, in nanoseconds since the Unix epoch.
/// `None` when it is neither RFC 3339 with an offset nor an epoch number.
pub fn parse_event_time(value: &str) -> Option<i64> {
    let value = value.trim();
    let first = *value.as_bytes().first()?;
    if value.len() >= 20 && first.is_ascii_digit() && value.as_bytes().get(4) == Some(&b'-') {
        return parse_rfc3339(value);
    }
    if first.is_ascii_digit() || (first == b'-' && value.len() > 1) {
        return parse_epoch(value);
    }
    None
}

fn parse_rfc3339(value: &str) -> Option<i64> {
    match rfc3339_common(value.as_bytes()) {
        Some(ns) => ns,
        // chrono accepts `T`, `t` and a space between date and time.
        None => DateTime::parse_from_rfc3339(value)
            .ok()?
            .timestamp_nanos_opt(),
    }
}

/// The common shape of RFC 3339, `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`
/// (`T`, `t` or a space; `Z` or `z`), read without chrono: every JSON log
/// line carries one and chrono's general parser is most of the cost of
/// reading it. `Some(None)` when that shape holds an invalid time, `None`
/// for any other shape (leap seconds, longer fractions, …), which chrono
/// then reads.
fn rfc3339_common(b: &[u8]) -> Option<Option<i64>> {
    let num = |range: std::ops::Range<usize>| decimal(b.get(range)?);
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let (mut i, mut nanos) = (19, 0i64);
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(i + 1..i + 1 + digits)? * 10i64.pow(9 - digits as u32);
        i += 1 + digits;
    }
    let offset_seconds = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return Some(None);
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    if second == 60 {
        return None; // a leap second: chrono's reading
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Some(None);
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    Some(
        seconds
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(nanos)),
    )
}

/// The value of a run of ASCII digits (at most 18), `None` if one is not.
fn decimal(digits: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    let mut all_digits = true;
    for &d in digits {
        all_digits &= d.is_ascii_digit();
        n = n * 10 + i64::from(d.wrapping_sub(b'0'));
    }
    all_digits.then_some(n)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An epoch number. Integers and decimals are converted exactly (digits
/// beyond the nanosecond are cut); exponents go through f64.
fn parse_epoch(value: &str) -> Option<i64> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !int.is_empty() && int.len() <= 30 && all_digits(int) && all_digits(frac) {
        let n: i128 = int.parse().ok()?;
        let scale = unit_scale(n as f64) as i128;
        let mut ns = n.checked_mul(scale)?;
        // The fraction, in units of `scale` nanoseconds, truncated to the ns.
        let mut place = scale;
        for d in frac.bytes().take(18) {
            place /= 10;
            if place == 0 {
                break;
            }
            ns += i128::from(d - b'0') * place;
        }
        let ns = if negative { -ns } else { ns };
        return i64::try_from(ns).ok();
    }
    let x: f64 = value.parse().ok()?;
    if !x.is_finite() {
        return None;
    }
    let ns = (x * unit_scale(x.abs())).round();
    if ns.abs() >= i64::MAX as f64 {
        return None;
    }
    Some(ns as i64)
}

/// Nanoseconds per unit of an epoch number of this magnitude.
fn unit_scale(magnitude: f64) -> f64 {
    if magnitude < SECONDS_BELOW {
        1e9
    } else if magnitude < MILLIS_BELOW {
        1e6
    } else if magnitude < MICROS_BELOW {
        1e3
    } else {
        1.0
    }
}

/// The entry times ingest accepts, as validation applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Oldest accepted time (inclusive).
    pub oldest_ns: i64,
    /// Newest accepted time (inclusive).
    pub newest_ns: i64,
}

impl Window {
    /// Whether `ns` is accepted.
    pub fn contains(&self, ns: i64) -> bool {
        (self.oldest_ns..=self.newest_ns).contains(&ns)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{SecondsFormat, Utc};
    use proptest::prelude::*;

    use super::*;

    const T: i64 = 1_717_573_860_123_456_789; // 2024-06-05T07:51:00.123456789Z

    #[test]
    fn rfc3339_at_any_precision_and_offset() {
        let cases = [
            ("2024-06-05T07:51:00Z", 1_717_573_860_000_000_000),
            ("2024-06-05T07:51:00.123Z", 1_717_573_860_123_000_000),
            ("2024-06-05T07:51:00.123456Z", 1_717_573_860_123_456_000),
            ("2024-06-05T07:51:00.123456789Z", T),
            ("2024-06-05T09:51:00.123456789+02:00", T),
            ("2024-06-05 07:51:00.123456789Z", T),
            ("2024-06-05t07:51:00.123456789z", T),
        ];
        for (text, want) in cases {
            assert_eq!(parse_event_time(text), Some(want), "{text}");
        }
    }

    /// Month lengths and leap years, where the fast reading could differ
    /// from chrono's and random dates rarely land.
    #[test]
    fn calendar_edges_read_as_chrono_does() {
        for text in [
            "2000-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-02-29T23:59:59.999999999Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-12-31T23:59:59+00:00",
            "0000-01-01T00:00:00-23:59",
            "9999-12-31T23:59:59+23:59",
            "1969-12-31T23:59:59.5Z",
            "2024-06-05T07:51:60Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(text)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt());
            assert_eq!(parse_rfc3339(text), chrono, "{text}");
            assert!(rfc3339_common(text.as_bytes()).is_some() || text.contains(":60"));
        }
    }

    #[test]
    fn epochs_by_magnitude() {
        let cases = [
            ("1717573860", 1_717_573_860_000_000_000),
            ("1717573860123", 1_717_573_860_123_000_000),
            ("1717573860123456", 1_717_573_860_123_456_000),
            ("1717573860123456789", T),
            ("1717573860.5", 1_717_573_860_500_000_000),
            ("1717573860.123456789123", T),
            ("-1.5", -1_500_000_000),
            ("1717573860123.5", 1_717_573_860_123_500_000),
            ("1.71757386e9", 1_717_573_860_000_000_000),
            (" 1717573860 ", 1_717_573_860_000_000_000),
        ];
        for (text, want) in cases {
            assert_eq!(parse_event_time(text), Some(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for text in [
            "",
            "yesterday",
            "2024-06-05T07:51:00",     // no offset: the zone is unknown
            "2024-06-05 07:51:00,123", // Python's asctime
            "06-05 07:51:00",
            "NaN",
            "inf",
            "99999999999999999999999999999999",
            "1e300",
        ] {
            assert_eq!(parse_event_time(text), None, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(ns in 0i64..4_102_444_800_000_000_000) {
            let dt = DateTime::<Utc>::from_timestamp_nanos(ns);
            let text = dt.to_rfc3339_opts(SecondsFormat::Nanos, true);
            prop_assert_eq!(parse_event_time(&text), Some(ns));
            let micros = dt.to_rfc3339_opts(SecondsFormat::Micros, true);
            prop_assert_eq!(parse_event_time(&micros), Some(ns / 1_000 * 1_000));
        }

        #[test]
        fn epochs_round_trip(ns in 1_000_000_000_000_000_000i64..4_102_444_800_000_000_000) {
            prop_assert_eq!(parse_event_time(&ns.to_string()), Some(ns));
            let us = ns / 1_000;
            prop_assert_eq!(parse_event_time(&us.to_string()), Some(us * 1_000));
            let ms = ns / 1_000_000;
            prop_assert_eq!(parse_event_time(&ms.to_string()), Some(ms * 1_000_000));
            let s = ns / 1_000_000_000;
            prop_assert_eq!(parse_event_time(&s.to_string()), Some(s * 1_000_000_000));
        }

        /// The fast reading agrees with chrono's on the common shape, at
        /// every precision and offset, and on invalid dates and times.
        #[test]
        fn common_shape_reads_as_chrono_does(
            year in 0i64..10_000,
            month in 0i64..14,
            day in 0i64..33,
            hour in 0i64..25,
            minute in 0i64..61,
            second in 0i64..61,
            fraction in "(\\.[0-9]{1,10})?",
            separator in prop::sample::select(vec!['T', 't', ' ']),
            offset in "[Zz]|[-+]([01][0-9]|2[0-5]):[0-6][0-9]",
        ) {
            let text = format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{offset}"
            );
            let chrono = DateTime::parse_from_rfc3339(&text)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt());
            prop_assert_eq!(parse_rfc3339(&text), chrono, "{}", text);
        }

        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = parse_event_time(&text);
        }
    }
}
