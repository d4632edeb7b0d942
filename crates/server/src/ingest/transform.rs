//! Per-tenant VRL transforms: a tenant's [Vector Remap Language] program runs
//! on each of its entries at ingest, so a team can move the `remap` transform
//! of its Vector pipeline into the server unchanged.
//!
//! Programs come from `ingest.transforms` (`tenant` + `source` or `file`; `*`
//! for every tenant without a program of its own) and are compiled once at
//! startup: a compile error refuses the configuration with VRL's diagnostic and
//! the tenant named; warnings are logged. The standard library is VRL's
//! `stdlib-base` (parsing, strings, objects, timestamps…), without the
//! environment, system, network and crypto functions.
//!
//! `ingest::accept` calls [`Transforms::transform_push`] after normalization
//! (its `detected_level` and copied ids are visible to the program) and before
//! redaction (a secret a program moves or decodes is still redacted).
//!
//! # The event a program sees
//!
//! What Vector gives a `remap` after a `kubernetes_logs` or `loki` source:
//!
//! | path        | value                                                   |
//! |-------------|---------------------------------------------------------|
//! | `.message`   | the line (string)                                       |
//! | `.timestamp` | the entry's time (timestamp, UTC)                       |
//! | `.labels`    | the stream labels (object of strings)                   |
//! | `.metadata`  | the entry's structured metadata (object of strings)     |
//!
//! # What is stored
//!
//! * line: `.message` when it is a string, else the JSON encoding of the event
//!   without `labels`, `metadata` and `timestamp`;
//! * stream labels: `.labels` (values as strings, objects and arrays as JSON,
//!   null or empty values dropped; names sanitized as the normalizer does,
//!   `app.kubernetes.io/name` → `app_kubernetes_io_name`); an entry whose labels
//!   changed moves to that stream. A missing or non-object `.labels` keeps the
//!   stream's labels;
//! * structured metadata: `.metadata`, values converted as for labels; a missing
//!   or non-object `.metadata` keeps the entry's;
//! * timestamp: `.timestamp` when it is still a timestamp inside the window
//!   validation accepts; otherwise the entry's time is kept.
//!
//! # Errors never lose an entry
//!
//! A runtime error (`parse_json!` on plain text, a failed `!` assertion…), or
//! an output over `limits_config` (line size, label and metadata limits), keeps
//! the entry exactly as it was before the program, plus structured metadata
//! [`VRL_ERROR`] holding the error (at most [`MAX_ERROR_BYTES`]), so
//! `{…} | vrl_error != ""` finds them. `abort` keeps the entry unchanged and
//! unmarked: it is how a program skips an entry on purpose (Vector's
//! `drop_on_abort: false`). Each entry counts once in
//! `inferscope_vrl_entries_total{tenant,outcome="ok|error|aborted"}`.
//!
//! # Cost
//!
//! Compiled once; one [`Runtime`] per batch, cleared between entries. The
//! event is built per entry (line, labels and metadata copied into VRL values),
//! which is most of the cost of a simple program; see the `throughput` test.
//!
//! [Vector Remap Language]: https://vector.dev/docs/reference/vrl/

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat};
use inferscope_model::{Labels, LogEntry, PushStream};
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{ExpressionError, Function, Program, TargetValue, TimeZone};
use vrl::diagnostic::Formatter;
use vrl::value::{KeyString, ObjectMap, Secrets, Value};

use crate::config::{LimitsConfig, TransformConfig};
use crate::ingest::normalize::labels::sanitize_label_name;
use crate::ingest::normalize::time::Window;
use crate::metrics::{Metrics, VRL_ENTRIES};

/// The structured metadata added to an entry whose program failed.
pub const VRL_ERROR: &str = "vrl_error";

/// The longest `vrl_error` value, in bytes.
pub const MAX_ERROR_BYTES: usize = 256;

/// The `tenant` of the program that runs for every tenant without its own.
pub const ANY_TENANT: &str = "*";

/// Why `ingest.transforms` could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("ingest.transforms[{index}] (tenant {tenant:?}): {reason}")]
pub struct TransformError {
    /// Position in `ingest.transforms`.
    pub index: usize,
    /// The tenant the program is for.
    pub tenant: String,
    /// What is wrong, with VRL's diagnostic for a compile error.
    pub reason: String,
}

/// The compiled programs, by tenant. Build once at startup.
pub struct Transforms {
    by_tenant: HashMap<String, Arc<Program>>,
    fallback: Option<Arc<Program>>,
    /// Compiler warnings, one formatted diagnostic per program that has some.
    warnings: Vec<String>,
    timezone: TimeZone,
}

impl fmt::Debug for Transforms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tenants: Vec<&String> = self.by_tenant.keys().collect();
        tenants.sort();
        f.debug_struct("Transforms")
            .field("tenants", &tenants)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

/// What happened to the entries of one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TransformStats {
    /// Entries stored as the program left them.
    pub ok: usize,
    /// Entries stored unchanged with `vrl_error`.
    pub error: usize,
    /// Entries stored unchanged because the program called `abort`.
    pub aborted: usize,
}

impl TransformStats {
    /// Adds the counts to `inferscope_vrl_entries_total`.
    pub fn record(&self, metrics: &Metrics, tenant: &str) {
        for (outcome, n) in [
            ("ok", self.ok),
            ("error", self.error),
            ("aborted", self.aborted),
        ] {
            if n > 0 {
                metrics.add(
                    VRL_ENTRIES,
                    &[("tenant", tenant), ("outcome", outcome)],
                    n as f64,
                );
            }
        }
    }
}

/// The limits a program's output must respect (validation ran before it).
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    max_line_bytes: usize,
    max_labels: usize,
    max_label_name_length: usize,
    max_label_value_length: usize,
    max_metadata_entries: usize,
    max_metadata_bytes: usize,
    window: Window,
}

impl OutputLimits {
    /// The limits of `limits_config`, with the time window validation applied
    /// at `now_ns`.
    pub fn new(limits: &LimitsConfig, now_ns: i64) -> Self {
        let oldest_ns = if limits.reject_old_samples {
            now_ns.saturating_sub(nanos(limits.reject_old_samples_max_age))
        } else {
            i64::MIN
        };
        OutputLimits {
            max_line_bytes: if limits.max_line_size == 0 {
                usize::MAX
            } else {
                usize::try_from(limits.max_line_size).unwrap_or(usize::MAX)
            },
            max_labels: limits.max_label_names_per_series,
            max_label_name_length: limits.max_label_name_length,
            max_label_value_length: limits.max_label_value_length,
            max_metadata_entries: limits.max_structured_metadata_entries_count,
            max_metadata_bytes: usize::try_from(limits.max_structured_metadata_size)
                .unwrap_or(usize::MAX),
            window: Window {
                oldest_ns,
                newest_ns: now_ns.saturating_add(nanos(limits.creation_grace_period)),
            },
        }
    }
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Transforms {
    /// Compiles every program of `configs` (reading `file`s); fails on the
    /// first one that does not compile, naming its tenant.
    pub fn new(configs: &[TransformConfig]) -> Result<Transforms, TransformError> {
        let functions = vrl::stdlib::all();
        let mut by_tenant: HashMap<String, Arc<Program>> = HashMap::new();
        let mut fallback = None;
        let mut warnings = Vec::new();
        for (index, config) in configs.iter().enumerate() {
            let err = |reason: String| TransformError {
                index,
                tenant: config.tenant.clone(),
                reason,
            };
            if config.tenant != ANY_TENANT
                && crate::tenant::check_tenant_id(&config.tenant).is_err()
            {
                return Err(err("`tenant` must be a tenant id or \"*\"".into()));
            }
            let duplicate = if config.tenant == ANY_TENANT {
                fallback.is_some()
            } else {
                by_tenant.contains_key(&config.tenant)
            };
            if duplicate {
                return Err(err("a second program for this tenant".into()));
            }
            let source = match (&config.source, &config.file) {
                (Some(source), None) => source.clone(),
                (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                    err(format!(
                        "failed to read VRL program {}: {e}",
                        path.display()
                    ))
                })?,
                _ => return Err(err("set `source` or `file` (one of them)".into())),
            };
            let (program, warning) = compile(&source, &functions).map_err(err)?;
            if let Some(warning) = warning {
                warnings.push(format!(
                    "ingest.transforms[{index}] (tenant {:?}): {warning}",
                    config.tenant
                ));
            }
            let program = Arc::new(program);
            if config.tenant == ANY_TENANT {
                fallback = Some(program);
            } else {
                by_tenant.insert(config.tenant.clone(), program);
            }
        }
        Ok(Transforms {
            by_tenant,
            fallback,
            warnings,
            timezone: TimeZone::parse("UTC").unwrap_or_default(),
        })
    }

    /// The compiler's warnings, to be logged once at startup.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The program that runs for `tenant`: its own, else the `*` one.
    pub fn program_for(&self, tenant: &str) -> Option<&Program> {
        self.by_tenant
            .get(tenant)
            .or(self.fallback.as_ref())
            .map(Arc::as_ref)
    }

    /// Runs `tenant`'s program (if it has one) on every entry of `streams` and
    /// counts the outcomes in `metrics`. The one call `ingest::accept` makes.
    pub fn transform_push(
        &self,
        limits: &LimitsConfig,
        metrics: &Metrics,
        tenant: &str,
        streams: &mut Vec<PushStream>,
        now_ns: i64,
    ) {
        let Some(program) = self.program_for(tenant) else {
            return;
        };
        let limits = OutputLimits::new(limits, now_ns);
        let stats = self.apply(program, streams, &limits);
        stats.record(metrics, tenant);
    }

    /// Runs `program` on every entry of `streams`, in place: entries whose
    /// labels changed move to a stream of those labels.
    pub fn apply(
        &self,
        program: &Program,
        streams: &mut Vec<PushStream>,
        limits: &OutputLimits,
    ) -> TransformStats {
        let mut stats = TransformStats::default();
        let mut runtime = Runtime::default();
        // The program sees every metadata pair as text and may rewrite the
        // line, which ranges of it would not survive.
        for entry in streams.iter_mut().flat_map(|s| s.entries.iter_mut()) {
            entry.materialize_metadata();
        }
        let mut out: Vec<PushStream> = Vec::with_capacity(streams.len());
        for stream in std::mem::take(streams) {
            let labels_value = labels_value(&stream.labels);
            // The output streams of this input stream, by labels; the first is
            // the stream's own.
            let first = out.len();
            out.push(PushStream {
                labels: stream.labels.clone(),
                entries: Vec::with_capacity(stream.entries.len()),
            });
            let mut moved: HashMap<Labels, usize> = HashMap::new();
            for mut entry in stream.entries {
                let result = self.run(&mut runtime, program, &entry, &labels_value);
                let outcome =
                    result.and_then(|event| output(event, &entry, &stream.labels, limits));
                match outcome {
                    Ok(Output { labels, entry }) => {
                        stats.ok += 1;
                        let index = match labels {
                            Some(labels) if labels != stream.labels => {
                                *moved.entry(labels.clone()).or_insert_with(|| {
                                    out.push(PushStream {
                                        labels,
                                        entries: Vec::new(),
                                    });
                                    out.len() - 1
                                })
                            }
                            _ => first,
                        };
                        out[index].entries.push(entry);
                    }
                    Err(Failure::Aborted) => {
                        stats.aborted += 1;
                        out[first].entries.push(entry);
                    }
                    Err(Failure::Error(message)) => {
                        stats.error += 1;
                        mark_error(&mut entry, &message);
                        out[first].entries.push(entry);
                    }
                }
            }
            if out[first].entries.is_empty() {
                out.remove(first);
            }
        }
        *streams = out;
        stats
    }

    /// Runs `program` on the event of `entry`; the event as the program left it.
    fn run(
        &self,
        runtime: &mut Runtime,
        program: &Program,
        entry: &LogEntry,
        labels: &Value,
    ) -> Result<Value, Failure> {
        let mut target = TargetValue {
            value: event_of(entry, labels),
            metadata: Value::Object(ObjectMap::new()),
            secrets: Secrets::default(),
        };
        let result = runtime.resolve(&mut target, program, &self.timezone);
        runtime.clear();
        match result {
            Ok(_) => Ok(target.value),
            Err(Terminate::Abort(ExpressionError::Abort { .. })) => Err(Failure::Aborted),
            Err(e) => Err(Failure::Error(e.to_string())),
        }
    }
}

/// Compiles `source`: the program and its formatted warnings, or VRL's
/// formatted diagnostic.
fn compile(
    source: &str,
    functions: &[Box<dyn Function>],
) -> Result<(Program, Option<String>), String> {
    let compiled = vrl::compiler::compile(source, functions).map_err(|diagnostics| {
        format!(
            "the VRL program does not compile:\n{}",
            Formatter::new(source, diagnostics)
        )
    })?;
    let warning = (!compiled.warnings.is_empty())
        .then(|| Formatter::new(source, compiled.warnings).to_string());
    Ok((compiled.program, warning))
}

/// Why an entry was stored unchanged.
#[derive(Debug)]
enum Failure {
    /// The program called `abort`.
    Aborted,
    /// A runtime error, or an output the limits refuse.
    Error(String),
}

/// What a program made of an entry.
#[derive(Debug)]
struct Output {
    /// The new stream labels; `None` when `.labels` was not an object.
    labels: Option<Labels>,
    entry: LogEntry,
}

fn bytes_value(text: &str) -> Value {
    Value::Bytes(Bytes::copy_from_slice(text.as_bytes()))
}

/// `.labels` of every entry of a stream.
fn labels_value(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (KeyString::from(k), bytes_value(v)))
            .collect(),
    )
}

/// The event a program sees for `entry` (see the module docs).
fn event_of(entry: &LogEntry, labels: &Value) -> Value {
    let metadata: ObjectMap = entry
        .structured_metadata
        .iter()
        .map(|(k, v)| (KeyString::from(k.as_str()), bytes_value(v)))
        .collect();
    let mut event = ObjectMap::new();
    event.insert("message".into(), bytes_value(&entry.line));
    event.insert(
        "timestamp".into(),
        Value::Timestamp(DateTime::from_timestamp_nanos(entry.timestamp_ns)),
    );
    event.insert("labels".into(), labels.clone());
    event.insert("metadata".into(), Value::Object(metadata));
    Value::Object(event)
}

/// A label or metadata value as text: strings as they are, timestamps in RFC
/// 3339, other values as JSON; `None` for null.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Bytes(_) | Value::String(_) => value.to_str_lossy().map(|s| s.into_owned()),
        Value::Regex(regex) => Some(regex.as_str().to_string()),
        Value::Timestamp(ts) => Some(ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        other => serde_json::to_string(other).ok(),
    }
}

/// The entry the program's `event` describes, checked against `limits`.
fn output(
    event: Value,
    original: &LogEntry,
    stream_labels: &Labels,
    limits: &OutputLimits,
) -> Result<Output, Failure> {
    let Value::Object(mut event) = event else {
        return Err(Failure::Error(format!(
            "the program left `.` a {}, not an object",
            event.kind_str()
        )));
    };
    let labels = match event.remove("labels") {
        Some(Value::Object(map)) => {
            let labels = Labels::from_pairs(map.iter().filter_map(|(name, value)| {
                let name = sanitize_label_name(name.as_str());
                Some((name, text_of(value)?)).filter(|(n, _)| !n.is_empty())
            }));
            if labels.is_empty() {
                return Err(Failure::Error("the program left no stream label".into()));
            }
            Some(labels)
        }
        _ => None,
    };
    let structured_metadata = match event.remove("metadata") {
        Some(Value::Object(map)) => map
            .iter()
            .filter(|(name, _)| !name.is_empty())
            .filter_map(|(name, value)| Some((name.as_str().to_string(), text_of(value)?)))
            .filter(|(_, value)| !value.is_empty())
            .collect(),
        _ => original.structured_metadata.clone(),
    };
    let timestamp_ns = match event.remove("timestamp") {
        Some(Value::Timestamp(ts)) => ts
            .timestamp_nanos_opt()
            .filter(|ns| limits.window.contains(*ns))
            .unwrap_or(original.timestamp_ns),
        _ => original.timestamp_ns,
    };
    let line = match event.get("message") {
        Some(message @ (Value::Bytes(_) | Value::String(_))) => message
            .to_str_lossy()
            .map(|s| s.into_owned())
            .unwrap_or_default(),
        _ => serde_json::to_string(&Value::Object(event))
            .map_err(|e| Failure::Error(format!("the event cannot be encoded as JSON: {e}")))?,
    };
    let entry = LogEntry {
        line_metadata: Vec::new(),
        detected_level: None,
        timestamp_ns,
        line,
        structured_metadata,
    };
    check_limits(&entry, labels.as_ref().unwrap_or(stream_labels), limits)
        .map_err(|what| Failure::Error(format!("the program's output exceeds {what}")))?;
    Ok(Output { labels, entry })
}

/// Which limit of `limits_config` the output breaks, if any.
fn check_limits(entry: &LogEntry, labels: &Labels, limits: &OutputLimits) -> Result<(), String> {
    if entry.line.len() > limits.max_line_bytes {
        return Err(format!("max_line_size ({} bytes)", entry.line.len()));
    }
    if labels.len() > limits.max_labels {
        return Err(format!(
            "max_label_names_per_series ({} labels)",
            labels.len()
        ));
    }
    for (name, value) in labels.iter() {
        if name.len() > limits.max_label_name_length {
            return Err(format!("max_label_name_length (label {name})"));
        }
        if value.len() > limits.max_label_value_length {
            return Err(format!("max_label_value_length (label {name})"));
        }
    }
    let metadata_bytes: usize = entry
        .structured_metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if entry.structured_metadata.len() > limits.max_metadata_entries
        || metadata_bytes > limits.max_metadata_bytes
    {
        return Err(format!(
            "the structured metadata limits ({} entries, {metadata_bytes} bytes)",
            entry.structured_metadata.len()
        ));
    }
    Ok(())
}

/// Marks an entry kept unchanged after an error: `vrl_error` = `message`,
/// truncated to [`MAX_ERROR_BYTES`] on a character boundary.
fn mark_error(entry: &mut LogEntry, message: &str) {
    let mut end = message.len().min(MAX_ERROR_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let message = message[..end].to_string();
    match entry
        .structured_metadata
        .iter_mut()
        .find(|(k, _)| k == VRL_ERROR)
    {
        Some((_, value)) => *value = message,
        None => entry
            .structured_metadata
            .push((VRL_ERROR.to_string(), message)),
    }
}

#[cfg(test)]
mod tests;
