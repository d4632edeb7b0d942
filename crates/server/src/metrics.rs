//! The server's own Prometheus metrics, rendered at `GET /metrics` in the
//! text exposition format.
//!
//! A small registry of labelled counters (no dependency needed for this);
//! storage gauges are read from the store's snapshot at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;

use parking_lot::Mutex;

/// A counter family: name, help text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Metric name (Prometheus conventions: `_total` suffix for counters).
    pub name: &'static str,
    /// HELP text.
    pub help: &'static str,
}

/// Lines accepted into storage, by tenant.
pub const LINES_RECEIVED: Family = Family {
    name: "inferscope_ingest_lines_received_total",
    help: "Log lines accepted and stored.",
};
/// Bytes accepted into storage, by tenant.
pub const BYTES_RECEIVED: Family = Family {
    name: "inferscope_ingest_bytes_received_total",
    help: "Bytes of log lines and structured metadata accepted and stored.",
};
/// Lines refused, by tenant and reason.
pub const LINES_DISCARDED: Family = Family {
    name: "inferscope_ingest_lines_discarded_total",
    help: "Log lines refused, by reason.",
};
/// Secrets replaced before storage, by tenant and kind.
pub const REDACTIONS: Family = Family {
    name: "inferscope_redactions_total",
    help: "Secrets replaced by a redaction marker before storage, by kind.",
};
/// Lines (entries) with at least one secret replaced, by tenant.
pub const LINES_REDACTED: Family = Family {
    name: "inferscope_ingest_lines_redacted_total",
    help: "Log entries in which at least one secret was redacted.",
};
/// OTLP records received (log records, metric data points, spans), by signal.
pub const OTLP_RECORDS: Family = Family {
    name: "inferscope_otlp_records_received_total",
    help: "OTLP items received (log records, metric data points, spans), by signal.",
};
/// OTLP metric points refused (NaN, bad buckets, out of order, unknown type).
pub const OTLP_POINTS_REJECTED: Family = Family {
    name: "inferscope_otlp_metric_points_rejected_total",
    help: "OTLP metric data points refused, by tenant (the reasons go to partial_success).",
};
/// AI-gateway access log records by kind and sampling decision.
pub const ACCESS_LOGS: Family = Family {
    name: "inferscope_access_logs_total",
    help: "AI-gateway access log records received over OTLP, by kind (llm, mcp) and sampling decision.",
};
/// LLM access logs whose token counts were missing or not numbers.
pub const ACCESS_LOG_MISSING_TOKENS: Family = Family {
    name: "inferscope_access_log_missing_tokens_total",
    help: "LLM access log records without numeric token counts (kept as ordinary logs).",
};
/// OTLP export requests by signal, transport and outcome.
pub const OTLP_REQUESTS: Family = Family {
    name: "inferscope_otlp_requests_total",
    help: "OTLP export requests, by signal, transport and response code.",
};
/// Push requests by outcome.
pub const PUSH_REQUESTS: Family = Family {
    name: "inferscope_push_requests_total",
    help: "Push requests, by response status code.",
};
/// Queries by endpoint and outcome.
pub const QUERY_REQUESTS: Family = Family {
    name: "inferscope_query_requests_total",
    help: "Query API requests, by endpoint and response status code.",
};
/// Seconds spent answering queries.
pub const QUERY_SECONDS: Family = Family {
    name: "inferscope_query_duration_seconds_total",
    help: "Seconds spent answering query API requests, by endpoint.",
};
/// Bytes scanned by queries.
pub const QUERY_BYTES_SCANNED: Family = Family {
    name: "inferscope_query_scanned_bytes_total",
    help: "Log line bytes scanned by queries.",
};

/// Delete requests accepted, by tenant (Loki's
/// `loki_compactor_delete_requests_received_total`).
pub const DELETE_REQUESTS_RECEIVED: Family = Family {
    name: "inferscope_delete_requests_received_total",
    help: "Log deletion requests accepted, by tenant.",
};

/// JSON-looking lines that did not parse, by tenant (stored as plain text).
pub const INVALID_JSON_LINES: Family = Family {
    name: "inferscope_ingest_invalid_json_lines_total",
    help: "Lines starting with '{' that are not valid JSON (stored as plain text).",
};
/// Entries whose timestamp was taken from the line, by tenant.
pub const EVENT_TIMES_FROM_LINE: Family = Family {
    name: "inferscope_ingest_event_times_from_line_total",
    help: "Entries whose timestamp was taken from the time field of the line.",
};
/// Time fields not used, by tenant and reason (`unparseable`, `out_of_window`).
pub const EVENT_TIME_FAILURES: Family = Family {
    name: "inferscope_timestamp_parse_failures_total",
    help: "Time fields of lines not used (push time kept), by reason.",
};
/// Entries run through a tenant's VRL program, by tenant and outcome
/// (`ok`, `error`: stored unchanged with `vrl_error`, `aborted`: stored unchanged).
pub const VRL_ENTRIES: Family = Family {
    name: "inferscope_vrl_entries_total",
    help: "Entries run through a tenant's VRL transform, by outcome (ok, error, aborted).",
};
/// Trace and request id lookups (`/api/v1/trace/{id}`).
pub const TRACE_LOOKUPS: Family = Family {
    name: "inferscope_trace_lookups_total",
    help: "Trace and request id lookups.",
};
/// Blocks a lookup skipped by the id index, read, or read without index.
pub const TRACE_BLOCKS: Family = Family {
    name: "inferscope_trace_lookup_blocks_total",
    help: "Blocks considered by id lookups, by outcome (skipped by the id index, read, unindexed: read without a usable index).",
};

type SeriesKey = (&'static str, Vec<(&'static str, String)>);

/// Labelled counters.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, &'static str>>,
    counters: Mutex<BTreeMap<SeriesKey, f64>>,
}

impl Metrics {
    /// Adds `value` to the counter `family{labels}`.
    pub fn add(&self, family: Family, labels: &[(&'static str, &str)], value: f64) {
        self.families
            .lock()
            .entry(family.name)
            .or_insert(family.help);
        let key = (
            family.name,
            labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
        );
        *self.counters.lock().entry(key).or_insert(0.0) += value;
    }

    /// The current value of a counter (tests and the demo banner).
    pub fn get(&self, family: Family, labels: &[(&'static str, &str)]) -> f64 {
        let key = (
            family.name,
            labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
        );
        self.counters.lock().get(&key).copied().unwrap_or(0.0)
    }

    /// Renders every counter, then `gauges` (name, help, type, value).
    pub fn render(&self, gauges: &[(&str, &str, &str, f64)]) -> String {
        let mut out = String::new();
        let families = self.families.lock().clone();
        let counters = self.counters.lock().clone();
        for (name, help) in &families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), value) in counters.range((*name, Vec::new())..) {
                if n != name {
                    break;
                }
                let _ = writeln!(out, "{name}{} {value}", render_labels(labels));
            }
        }
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn render_labels(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exposition_format() {
        let m = Metrics::default();
        m.add(LINES_RECEIVED, &[("tenant", "fake")], 3.0);
        m.add(LINES_RECEIVED, &[("tenant", "fake")], 2.0);
        m.add(
            LINES_DISCARDED,
            &[("tenant", "a\"b"), ("reason", "line_too_long")],
            1.0,
        );
        let text = m.render(&[("inferscope_blocks", "Blocks.", "gauge", 4.0)]);
        assert!(text.contains("# TYPE inferscope_ingest_lines_received_total counter\ninferscope_ingest_lines_received_total{tenant=\"fake\"} 5\n"), "{text}");
        assert!(text.contains("inferscope_ingest_lines_discarded_total{tenant=\"a\\\"b\",reason=\"line_too_long\"} 1"), "{text}");
        assert!(
            text.contains("# TYPE inferscope_blocks gauge\ninferscope_blocks 4\n"),
            "{text}"
        );
        assert_eq!(m.get(LINES_RECEIVED, &[("tenant", "fake")]), 5.0);
    }
}
