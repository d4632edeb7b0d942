//! OTLP to Prometheus naming, as Prometheus' OTLP translator does it in its
//! `UnderscoreEscapingWithSuffixes` mode.
//!
//! A metric name is split into tokens at every character outside `[a-zA-Z0-9:]`
//! (so `.`, `-` and repeated `_` all become one `_`), the unit suffix from the UCUM
//! unit is appended unless a token already equals it, monotonic sums get `_total`
//! (moved to the end) and gauges with unit `1` get `_ratio`. Histogram and summary
//! series add `_bucket`, `_sum`, `_count` to that base name themselves.
//!
//! Attribute keys become label names the same way (`gen_ai.request.model` →
//! `gen_ai_request_model`, `1x` → `key_1x`), and attribute values are rendered as
//! strings: ints in decimal, doubles in their shortest form, bools `true`/`false`,
//! bytes in base64, arrays and key-value lists as JSON.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

/// The Prometheus kind of the series a metric turns into; it decides the suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A gauge or a non-monotonic sum.
    Gauge,
    /// A monotonic sum: gets `_total`.
    Counter,
    /// An explicit or exponential histogram (base name; `_bucket` etc. added later).
    Histogram,
    /// A summary (base name; `_sum`, `_count` added later).
    Summary,
}

/// The Prometheus metric name of an OTLP metric: tokens joined by `_`, the unit
/// suffix, `_total` for counters, `_ratio` for gauges of unit `1`.
pub fn prometheus_metric_name(name: &str, unit: &str, kind: MetricKind) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let (main, per) = unit_suffixes(unit);
    if let Some(main) = main
        && !tokens.contains(&main)
    {
        tokens.push(main);
    }
    if let Some(per) = per
        && !tokens.contains(&per)
    {
        tokens.push("per".to_string());
        tokens.push(per);
    }
    if kind == MetricKind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".to_string());
    }
    if unit == "1" && kind == MetricKind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".to_string());
    }
    let mut out = tokens.join("_");
    if out.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.insert(0, '_');
    }
    out
}

/// The main and the "per" unit suffix words of a UCUM unit: `s` → `seconds`,
/// `By/s` → (`bytes`, `second`), `{request}` → none, `1` → none (the `_ratio` of
/// gauges is added by [`prometheus_metric_name`]), unknown units as written.
fn unit_suffixes(unit: &str) -> (Option<String>, Option<String>) {
    // Drop `{...}` annotations.
    let mut stripped = String::with_capacity(unit.len());
    let mut depth = 0u32;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => stripped.push(c),
            _ => {}
        }
    }
    let stripped = stripped.trim();
    if stripped.is_empty() || stripped == "1" {
        return (None, None);
    }
    let (main, per) = match stripped.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (stripped, None),
    };
    let main = clean_unit(main_unit_word(main).unwrap_or(main));
    let per = per.and_then(|p| clean_unit(per_unit_word(p).unwrap_or(p)));
    (main, per)
}

/// Non-alphanumeric characters of a unit word become `_`; empty → none.
fn clean_unit(word: &str) -> Option<String> {
    let joined = word
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    (!joined.is_empty()).then_some(joined)
}

fn main_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// The Prometheus label name of an attribute key: characters outside
/// `[a-zA-Z0-9_]` become `_`, runs of `_` collapse (a leading `__` is kept), and a
/// leading digit gets a `key_` prefix.
pub fn sanitize_label_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let keep_double = key.starts_with("__");
    if keep_double {
        out.push_str("__");
    }
    for c in key.chars().skip(if keep_double { 2 } else { 0 }) {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && out.ends_with('_') && !(keep_double && out.len() == 2) {
            continue;
        }
        out.push(c);
    }
    if out.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.insert_str(0, "key_");
    }
    out
}

/// An attribute value rendered as a label value.
pub fn render_any_value(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => base64(b),
        Some(any_value::Value::StringValueStrindex(_)) => String::new(),
        Some(v @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            to_json(Some(v)).to_string()
        }
    }
}

fn to_json(value: Option<&any_value::Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        None | Some(any_value::Value::StringValueStrindex(_)) => J::Null,
        Some(any_value::Value::StringValue(s)) => J::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => J::Bool(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => J::from(*d),
        Some(any_value::Value::BytesValue(b)) => J::String(base64(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|v| to_json(v.value.as_ref())).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        to_json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{
        ArrayValue as ArrayValueMsg, KeyValue, KeyValueList,
    };

    #[test]
    fn metric_names_follow_the_prometheus_otlp_translator() {
        use MetricKind::*;
        let cases = [
            (
                "gen_ai.server.request.duration",
                "s",
                Histogram,
                "gen_ai_server_request_duration_seconds",
            ),
            (
                "gen_ai.client.token.usage",
                "{token}",
                Histogram,
                "gen_ai_client_token_usage",
            ),
            (
                "gen_ai.client.token.usage",
                "token",
                Histogram,
                "gen_ai_client_token_usage",
            ),
            (
                "http.server.active_requests",
                "{request}",
                Gauge,
                "http_server_active_requests",
            ),
            (
                "http.server.request.count",
                "{request}",
                Counter,
                "http_server_request_count_total",
            ),
            ("requests_total", "1", Counter, "requests_total"),
            (
                "system.cpu.utilization",
                "1",
                Gauge,
                "system_cpu_utilization_ratio",
            ),
            ("cpu.ratio.used", "1", Gauge, "cpu_used_ratio"),
            ("latency", "ms", Histogram, "latency_milliseconds"),
            ("latency.seconds", "s", Histogram, "latency_seconds"),
            ("uptime", "min", Gauge, "uptime_minutes"),
            ("age", "h", Gauge, "age_hours"),
            ("age", "d", Gauge, "age_days"),
            ("wait", "us", Gauge, "wait_microseconds"),
            ("wait", "ns", Gauge, "wait_nanoseconds"),
            ("mem.usage", "By", Gauge, "mem_usage_bytes"),
            ("mem.usage", "KiBy", Gauge, "mem_usage_kibibytes"),
            ("mem.usage", "MiBy", Gauge, "mem_usage_mebibytes"),
            ("mem.usage", "GiBy", Gauge, "mem_usage_gibibytes"),
            ("mem.usage", "KBy", Gauge, "mem_usage_kilobytes"),
            ("mem.usage", "MBy", Gauge, "mem_usage_megabytes"),
            ("mem.usage", "GBy", Gauge, "mem_usage_gigabytes"),
            ("disk.used", "%", Gauge, "disk_used_percent"),
            ("net.io", "By/s", Counter, "net_io_bytes_per_second_total"),
            ("tokens.rate", "{token}/s", Gauge, "tokens_rate_per_second"),
            ("widgets", "widget", Counter, "widgets_widget_total"),
            ("a..b__c-d", "", Gauge, "a_b_c_d"),
            ("9lives", "", Gauge, "_9lives"),
            ("ns:metric.x", "", Gauge, "ns:metric_x"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                prometheus_metric_name(name, unit, kind),
                want,
                "{name} {unit} {kind:?}"
            );
        }
    }

    #[test]
    fn label_names_are_sanitized() {
        for (key, want) in [
            ("gen_ai.request.model", "gen_ai_request_model"),
            ("service.instance.id", "service_instance_id"),
            ("k8s.pod.name", "k8s_pod_name"),
            ("1st.key", "key_1st_key"),
            ("a..b", "a_b"),
            ("__meta", "__meta"),
            ("ok_name", "ok_name"),
        ] {
            assert_eq!(sanitize_label_name(key), want);
        }
    }

    #[test]
    fn values_are_rendered_as_strings() {
        fn v(value: any_value::Value) -> AnyValue {
            AnyValue { value: Some(value) }
        }
        use any_value::Value::*;
        assert_eq!(render_any_value(Some(&v(StringValue("x".into())))), "x");
        assert_eq!(render_any_value(Some(&v(IntValue(-42)))), "-42");
        assert_eq!(render_any_value(Some(&v(DoubleValue(0.1)))), "0.1");
        assert_eq!(render_any_value(Some(&v(DoubleValue(3.0)))), "3");
        assert_eq!(render_any_value(Some(&v(BoolValue(true)))), "true");
        assert_eq!(
            render_any_value(Some(&v(BytesValue(b"hi!?".to_vec())))),
            "aGkhPw=="
        );
        let arr = v(ArrayValue(ArrayValueMsg {
            values: vec![v(IntValue(1)), v(StringValue("a".into()))],
        }));
        assert_eq!(render_any_value(Some(&arr)), r#"[1,"a"]"#);
        let kv = v(KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: Some(v(BoolValue(false))),
                ..Default::default()
            }],
        }));
        assert_eq!(render_any_value(Some(&kv)), r#"{"k":false}"#);
        assert_eq!(render_any_value(None), "");
    }
}
