//! Query parameters as Loki reads them.
//!
//! Timestamps (`start`, `end`, `time`): an integer of at most 10 digits is
//! seconds, a longer one nanoseconds, a number with a `.` is float seconds,
//! anything else RFC3339 (`2026-11-21T10:00:00.5Z`). Durations (`since`,
//! `step`) are Prometheus durations or float seconds. Parameters come from the
//! URL and, for POST, from a form body; repeated keys (`match[]`) are kept.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::ApiError;
use crate::units::parse_duration;

/// All parameters of a request, in order, repeated keys kept.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses a URL query string and an optional form body.
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = match query {
            Some(q) => serde_urlencoded::from_str(q)
                .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?,
            None => Vec::new(),
        };
        if let Some(body) = form_body.filter(|b| !b.is_empty()) {
            let more: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|e| ApiError::bad_request(format!("invalid form body: {e}")))?;
            pairs.extend(more);
        }
        Ok(Params(pairs))
    }

    /// The last value of `key`, if any and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A timestamp parameter in nanoseconds.
    pub fn time_ns(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                parse_timestamp_ns(v)
                    .map_err(|e| ApiError::bad_request(format!("invalid parameter \"{key}\": {e}")))
            })
            .transpose()
    }

    /// A duration parameter.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        self.get(key)
            .map(|v| {
                parse_duration_param(v)
                    .map_err(|e| ApiError::bad_request(format!("invalid parameter \"{key}\": {e}")))
            })
            .transpose()
    }

    /// An unsigned integer parameter.
    pub fn usize(&self, key: &str) -> Result<Option<usize>, ApiError> {
        self.get(key)
            .map(|v| {
                v.trim().parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid parameter \"{key}\": {v:?} is not a non-negative integer"
                    ))
                })
            })
            .transpose()
    }
}

/// Parses a timestamp the way Loki's `ParseTimestamp` does.
pub fn parse_timestamp_ns(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.contains('.') && t.parse::<f64>().is_ok() {
        let secs: f64 = t
            .parse()
            .map_err(|_| format!("cannot parse {t:?} to a valid timestamp"))?;
        return Ok((secs * 1e9).round() as i64);
    }
    if let Ok(n) = t.parse::<i64>() {
        let digits = t.trim_start_matches('-').len();
        return Ok(if digits <= 10 {
            n.saturating_mul(1_000_000_000)
        } else {
            n
        });
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&Utc)
                .timestamp_nanos_opt()
                .unwrap_or(i64::MAX)
        })
        .map_err(|_| format!("cannot parse {t:?} to a valid timestamp"))
}

/// Parses `5m`, `1h30m` or float seconds (`30`, `0.5`).
pub fn parse_duration_param(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("cannot parse {t:?} to a valid duration"));
    }
    parse_duration(t).map_err(|_| format!("cannot parse {t:?} to a valid duration"))
}

/// RFC3339 with nanoseconds, as Loki prints times in messages.
pub fn format_rfc3339(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The current time in nanoseconds.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_form_loki_accepts() {
        let ns = 1_700_000_000_000_000_000;
        assert_eq!(parse_timestamp_ns("1700000000"), Ok(ns));
        assert_eq!(parse_timestamp_ns("1700000000000000000"), Ok(ns));
        assert_eq!(parse_timestamp_ns("1700000000.5"), Ok(ns + 500_000_000));
        assert_eq!(parse_timestamp_ns("2023-11-14T22:13:20Z"), Ok(ns));
        assert_eq!(
            parse_timestamp_ns("2023-11-14T23:13:20.000000001+01:00"),
            Ok(ns + 1)
        );
        assert!(parse_timestamp_ns("yesterday").is_err());
        assert_eq!(format_rfc3339(ns), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn durations_as_text_or_seconds() {
        assert_eq!(parse_duration_param("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration_param("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration_param("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration_param("-1").is_err());
    }

    #[test]
    fn repeated_keys_and_form_bodies() {
        let p = Params::parse(
            Some("match%5B%5D=%7Ba%3D%22b%22%7D&limit=5"),
            Some(b"match[]={c=\"d\"}&limit=7"),
        )
        .expect("valid");
        assert_eq!(p.all("match[]"), vec!["{a=\"b\"}", "{c=\"d\"}"]);
        assert_eq!(p.usize("limit").expect("int"), Some(7));
        assert!(p.usize("match[]").is_err());
    }
}
