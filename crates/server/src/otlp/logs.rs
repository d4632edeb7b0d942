//! OTLP log records as Loki log entries, with Loki's OTLP conventions:
//!
//! * the resource attributes Loki promotes by default (`service.name`,
//!   `service.namespace`, `service.instance.id`, `deployment.environment`,
//!   `k8s.*` names, `cloud.region`, …) plus the gateway's `aigw.service` become
//!   stream labels, dots turned into underscores (`service_name`, …); a
//!   resource without `service.name` gets `service_name="unknown_service"`;
//! * every other resource, scope and record attribute becomes structured
//!   metadata under its sanitized name, as do `trace_id`/`span_id` (hex),
//!   `severity_text` and `severity_number`;
//! * the severity becomes `detected_level` (from the text, else the number);
//! * the body is the line: a string as is, anything else as JSON (values are
//!   rendered as the metric store renders attributes, `render_any_value`);
//! * the time is the record's, else its observed time, else now.

use std::collections::BTreeMap;

use inferscope_metrics::render_any_value;
use inferscope_model::{Labels, Level, LogEntry, PushStream};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::ingest::normalize::labels::sanitize_label_name;
use crate::ingest::normalize::level::{DETECTED_LEVEL, canonical_level};

/// Resource attributes that become stream labels (Loki's default
/// `otlp_config`, plus Envoy AI Gateway's `aigw.service`).
pub const RESOURCE_LABELS: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
    "aigw.service",
];

/// One decoded record with the attributes the access-log path reads.
#[derive(Debug, Clone)]
pub struct Record {
    /// The stream labels from the resource.
    pub labels: Labels,
    /// The resource attributes, dotted keys, values as strings (shared by the
    /// records of one resource).
    pub resource: std::sync::Arc<[(String, String)]>,
    /// The record's own attributes, dotted keys, values as strings.
    pub attributes: Vec<(String, String)>,
    /// The entry as it will be stored.
    pub entry: LogEntry,
}

/// Decodes every record of `request`, in order.
pub fn records(request: &ExportLogsServiceRequest, now_ns: i64) -> Vec<Record> {
    let mut out = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource: std::sync::Arc<[(String, String)]> = resource_logs
            .resource
            .as_ref()
            .map(|r| attributes_as_strings(&r.attributes))
            .unwrap_or_default()
            .into();
        let labels = resource_labels(&resource);
        let resource_metadata: Vec<(String, String)> = resource
            .iter()
            .filter(|(k, _)| !RESOURCE_LABELS.contains(&k.as_str()))
            .map(|(k, v)| (sanitize_label_name(k), v.clone()))
            .collect();
        for scope_logs in &resource_logs.scope_logs {
            let mut scope_metadata = Vec::new();
            if let Some(scope) = &scope_logs.scope {
                if !scope.name.is_empty() {
                    scope_metadata.push(("scope_name".to_string(), scope.name.clone()));
                }
                if !scope.version.is_empty() {
                    scope_metadata.push(("scope_version".to_string(), scope.version.clone()));
                }
                for (k, v) in attributes_as_strings(&scope.attributes) {
                    scope_metadata.push((sanitize_label_name(&k), v));
                }
            }
            for record in &scope_logs.log_records {
                let attributes = attributes_as_strings(&record.attributes);
                let entry = entry_of(
                    record,
                    &attributes,
                    &resource_metadata,
                    &scope_metadata,
                    now_ns,
                );
                out.push(Record {
                    labels: labels.clone(),
                    resource: resource.clone(),
                    attributes,
                    entry,
                });
            }
        }
    }
    out
}

/// Groups records into push streams by their labels.
pub fn into_streams(records: impl IntoIterator<Item = (Labels, LogEntry)>) -> Vec<PushStream> {
    let mut by_labels: BTreeMap<Labels, Vec<LogEntry>> = BTreeMap::new();
    for (labels, entry) in records {
        by_labels.entry(labels).or_default().push(entry);
    }
    by_labels
        .into_iter()
        .map(|(labels, entries)| PushStream { labels, entries })
        .collect()
}

fn resource_labels(resource: &[(String, String)]) -> Labels {
    let mut pairs: Vec<(String, String)> = resource
        .iter()
        .filter(|(k, v)| RESOURCE_LABELS.contains(&k.as_str()) && !v.is_empty())
        .map(|(k, v)| (sanitize_label_name(k), v.clone()))
        .collect();
    if !pairs.iter().any(|(k, _)| k == "service_name") {
        pairs.push(("service_name".into(), "unknown_service".into()));
    }
    Labels::from_pairs(pairs)
}

fn entry_of(
    record: &LogRecord,
    attributes: &[(String, String)],
    resource_metadata: &[(String, String)],
    scope_metadata: &[(String, String)],
    now_ns: i64,
) -> LogEntry {
    let timestamp_ns = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|&t| t > 0)
        .and_then(|t| i64::try_from(t).ok())
        .unwrap_or(now_ns);
    let line = render_any_value(record.body.as_ref());
    let mut metadata: Vec<(String, String)> = Vec::new();
    metadata.extend(resource_metadata.iter().cloned());
    metadata.extend(scope_metadata.iter().cloned());
    for (k, v) in attributes {
        metadata.push((sanitize_label_name(k), v.clone()));
    }
    if !record.trace_id.is_empty() {
        metadata.push(("trace_id".into(), hex(&record.trace_id)));
    }
    if !record.span_id.is_empty() {
        metadata.push(("span_id".into(), hex(&record.span_id)));
    }
    if !record.severity_text.is_empty() {
        metadata.push(("severity_text".into(), record.severity_text.clone()));
    }
    if record.severity_number > 0 {
        metadata.push(("severity_number".into(), record.severity_number.to_string()));
    }
    if let Some(level) = level_of(record) {
        metadata.push((DETECTED_LEVEL.into(), level.as_str().into()));
    }
    // Later duplicates (record attributes) win over earlier ones (resource);
    // empty values are left out. A record has a few dozen pairs at most: a
    // linear scan beats hashing cloned keys.
    let mut keep = vec![true; metadata.len()];
    for (i, (k, v)) in metadata.iter().enumerate() {
        keep[i] = !v.is_empty() && !metadata[i + 1..].iter().any(|(later, _)| later == k);
    }
    let mut flags = keep.into_iter();
    let structured_metadata = metadata
        .into_iter()
        .filter(|_| flags.next().unwrap_or(false))
        .collect();
    LogEntry {
        line_metadata: Vec::new(),
        detected_level: None,
        timestamp_ns,
        line,
        structured_metadata,
    }
}

/// The canonical level of a record: its severity text, else its number's range.
fn level_of(record: &LogRecord) -> Option<Level> {
    if let Some(level) = canonical_level(&record.severity_text) {
        return Some(level);
    }
    Some(match record.severity_number {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        21..=24 => Level::Fatal,
        _ => return None,
    })
}

/// Attributes as `(key, value as string)` pairs; empty values are kept.
pub fn attributes_as_strings(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = render_any_value(kv.value.as_ref());
            (kv.key.clone(), value)
        })
        .collect()
}

/// Trace and span ids as Loki writes them: lowercase hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, InstrumentationScope, KeyValueList, any_value,
    };
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    fn request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "envoyproxy/ai-gateway".into(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn loki_conventions() {
        let req = request(
            vec![
                kv("service.name", s("envoy-ai-gateway")),
                kv("aigw.service", s("my-ai-gateway")),
                kv("service.instance.id", s("pod-1")),
                kv("node_name", s("node-a")),
            ],
            vec![LogRecord {
                time_unix_nano: 1_700_000_000_000_000_000,
                severity_number: 17,
                body: Some(AnyValue {
                    value: Some(s("upstream reset")),
                }),
                attributes: vec![
                    kv("gen_ai.request.model", s("gpt-4o")),
                    kv("response_code", any_value::Value::IntValue(503)),
                ],
                trace_id: vec![0xab; 16],
                ..Default::default()
            }],
        );
        let recs = records(&req, 5);
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(
            r.labels.to_string(),
            r#"{aigw_service="my-ai-gateway", service_instance_id="pod-1", service_name="envoy-ai-gateway"}"#
        );
        assert_eq!(r.entry.timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(r.entry.line, "upstream reset");
        let md: BTreeMap<_, _> = r.entry.structured_metadata.iter().cloned().collect();
        assert_eq!(md["node_name"], "node-a");
        assert_eq!(md["scope_name"], "envoyproxy/ai-gateway");
        assert_eq!(md["gen_ai_request_model"], "gpt-4o");
        assert_eq!(md["response_code"], "503");
        assert_eq!(md["trace_id"], "ab".repeat(16));
        assert_eq!(md["detected_level"], "error");
        assert_eq!(r.attributes[0].0, "gen_ai.request.model");
    }

    #[test]
    fn defaults_and_structured_bodies() {
        let body = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("msg", s("hi")), kv("n", any_value::Value::IntValue(2))],
            })),
        };
        let req = request(
            vec![],
            vec![LogRecord {
                observed_time_unix_nano: 42,
                severity_text: "WARNING".into(),
                body: Some(body),
                ..Default::default()
            }],
        );
        let r = &records(&req, 7)[0];
        assert_eq!(r.labels.get("service_name"), Some("unknown_service"));
        assert_eq!(r.entry.timestamp_ns, 42);
        assert_eq!(r.entry.line, r#"{"msg":"hi","n":2}"#);
        let md: BTreeMap<_, _> = r.entry.structured_metadata.iter().cloned().collect();
        assert_eq!(md["detected_level"], "warn");
        assert_eq!(md["severity_text"], "WARNING");
        let none = request(vec![], vec![LogRecord::default()]);
        assert_eq!(records(&none, 7)[0].entry.timestamp_ns, 7);
    }
}
