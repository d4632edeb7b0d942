//! Human durations and sizes as Loki and Prometheus write them.
//!
//! Durations: `250ms`, `30s`, `5m`, `1h30m`, `168h`, `90d`, `2w`, `1y`, or `0`.
//! Sizes: `256KB`, `3MB`, `1.5GB`, `512KiB`, or a plain number of bytes.
//! Both are accepted in YAML as strings or numbers (a number is seconds for a
//! duration, bytes for a size), through the `serde` helpers below.

use std::time::Duration;

/// Parses a Prometheus-style duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total_ns: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration {text:?}: missing unit"))?;
        if digits == 0 {
            return Err(format!("invalid duration {text:?}"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 7.0 * 86_400e9,
            "y" => 365.0 * 86_400e9,
            unit => return Err(format!("invalid duration {text:?}: unknown unit {unit:?}")),
        };
        total_ns += (number * unit_ns) as u128;
        rest = &rest[unit_len..];
    }
    u64::try_from(total_ns)
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {text:?} is too large"))
}

/// Formats a duration the way Prometheus prints one (`1h30m`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

/// Parses a byte size: `256KB`, `3MB`, `1GiB`, `1024`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number: f64 = t[..split]
        .parse()
        .map_err(|_| format!("invalid size {text:?}"))?;
    let multiplier: f64 = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "kib" | "ki" => 1024.0,
        "mb" | "m" => 1e6,
        "mib" | "mi" => 1024.0 * 1024.0,
        "gb" | "g" => 1e9,
        "gib" | "gi" => 1024.0 * 1024.0 * 1024.0,
        unit => return Err(format!("invalid size {text:?}: unknown unit {unit:?}")),
    };
    Ok((number * multiplier) as u64)
}

/// `serde` adapters so config structs can hold `Duration` and byte counts.
pub mod serde_units {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(f64),
    }

    /// Deserializes a duration from `"5m"` or a number of seconds.
    pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Text(t) => super::parse_duration(&t).map_err(D::Error::custom),
            Raw::Number(n) if n >= 0.0 => Ok(Duration::from_secs_f64(n)),
            Raw::Number(n) => Err(D::Error::custom(format!("negative duration {n}"))),
        }
    }

    /// Deserializes a byte size from `"256KB"` or a number of bytes.
    pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Text(t) => super::parse_bytes(&t).map_err(D::Error::custom),
            Raw::Number(n) if n >= 0.0 => Ok(n as u64),
            Raw::Number(n) => Err(D::Error::custom(format!("negative size {n}"))),
        }
    }

    /// Serializes a duration in Prometheus form.
    pub fn serialize_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("168h"), Ok(Duration::from_secs(168 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256KB"), Ok(256_000));
        assert_eq!(parse_bytes("3MB"), Ok(3_000_000));
        assert_eq!(parse_bytes("1KiB"), Ok(1024));
        assert_eq!(parse_bytes("42"), Ok(42));
        assert!(parse_bytes("3XB").is_err());
    }
}
