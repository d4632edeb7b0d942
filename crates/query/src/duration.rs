//! Duration and byte-size literals.
//!
//! Durations accept both Prometheus (`5m`, `1d`, `1w`, `1y`) and Go (`250ms`, `1.5s`,
//! `10us`) syntax, as Loki does in range selectors and label filters. Values are kept
//! as integer nanoseconds so printing and re-parsing is exact. Byte sizes follow
//! go-humanize (`20MB` = 20·10⁶, `1KiB` = 1024).

const NS: i64 = 1;
const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;
const D: i64 = 24 * H;
const W: i64 = 7 * D;
const Y: i64 = 365 * D;

/// Parses a duration such as `1h30m`, `250ms`, `1.5s`, `1d` into nanoseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let mult = match unit {
            "ns" => NS,
            "us" | "µs" | "μs" => US,
            "ms" => MS,
            "s" => S,
            "m" => M,
            "h" => H,
            "d" => D,
            "w" => W,
            "y" => Y,
            _ => return None,
        };
        let part = match num.split_once('.') {
            None => num.parse::<i64>().ok()?.checked_mul(mult)?,
            Some((int, frac)) => {
                if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
                    return None;
                }
                let i = if int.is_empty() {
                    0
                } else {
                    int.parse::<i64>().ok()?
                };
                let f: f64 = format!("0.{frac}").parse().ok()?;
                i.checked_mul(mult)?
                    .checked_add((f * mult as f64).round() as i64)?
            }
        };
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(total)
}

/// Formats nanoseconds canonically (`1h30m`, `250ms`, `0s`); [`parse_duration`] inverts it.
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ns.unsigned_abs();
    if ns < 0 {
        out.push('-');
    }
    for (unit, name) in [
        (Y, "y"),
        (W, "w"),
        (D, "d"),
        (H, "h"),
        (M, "m"),
        (S, "s"),
        (MS, "ms"),
        (US, "us"),
        (NS, "ns"),
    ] {
        let unit = unit as u64;
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

/// Parses a go-humanize byte size such as `20MB`, `1KiB`, `5B`, `1.5GB`.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    if num.is_empty() {
        return None;
    }
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "b" | "" => 1,
        "kb" | "k" => 1_000,
        "kib" | "ki" => 1 << 10,
        "mb" | "m" => 1_000_000,
        "mib" | "mi" => 1 << 20,
        "gb" | "g" => 1_000_000_000,
        "gib" | "gi" => 1 << 30,
        "tb" | "t" => 1_000_000_000_000,
        "tib" | "ti" => 1 << 40,
        "pb" | "p" => 1_000_000_000_000_000,
        "pib" | "pi" => 1 << 50,
        "eb" | "e" => 1_000_000_000_000_000_000,
        "eib" | "ei" => 1 << 60,
        _ => return None,
    };
    if unit.is_empty() {
        // A bare number is a NUMBER token, not a byte size.
        return None;
    }
    if num.contains('.') {
        let f: f64 = num.parse().ok()?;
        let v = f * mult as f64;
        (v.is_finite() && v < u64::MAX as f64).then_some(v as u64)
    } else {
        num.parse::<u64>().ok()?.checked_mul(mult)
    }
}

/// Parses a byte size from a label value (also accepts a bare number of bytes).
pub fn parse_bytes_value(text: &str) -> Option<u64> {
    let t = text.trim();
    parse_bytes(t).or_else(|| {
        t.parse::<f64>()
            .ok()
            .filter(|f| *f >= 0.0)
            .map(|f| f as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_go_and_prometheus_durations() {
        assert_eq!(parse_duration("5m"), Some(5 * M));
        assert_eq!(parse_duration("1h30m"), Some(H + 30 * M));
        assert_eq!(parse_duration("250ms"), Some(250 * MS));
        assert_eq!(parse_duration("1.5s"), Some(1500 * MS));
        assert_eq!(parse_duration("1d"), Some(D));
        assert_eq!(parse_duration("1w"), Some(W));
        assert_eq!(parse_duration("1y"), Some(Y));
        assert_eq!(parse_duration("10µs"), Some(10 * US));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("m"), None);
    }

    #[test]
    fn parses_bytes() {
        assert_eq!(parse_bytes("20MB"), Some(20_000_000));
        assert_eq!(parse_bytes("1KiB"), Some(1024));
        assert_eq!(parse_bytes("5B"), Some(5));
        assert_eq!(parse_bytes("1.5kb"), Some(1500));
        assert_eq!(parse_bytes("5"), None);
        assert_eq!(parse_bytes_value("42"), Some(42));
    }

    proptest! {
        #[test]
        fn duration_format_round_trips(ns in 0i64..i64::MAX / 2) {
            prop_assert_eq!(parse_duration(&format_duration(ns)), Some(ns));
        }
    }
}
