//! What Grafana's Logs Drilldown calls "detected" fields, field values, labels and
//! levels, computed the way Loki computes them.
//!
//! * **Fields** (`/detected_fields`, Loki's `queryrange/detected_fields.go`): over the
//!   sampled lines of a log query, every structured metadata key (parsers `null`), every
//!   label the query's own parsers extracted, and what Loki's `json` parser finds in the
//!   line, or, when the line is not JSON, its non-strict `logfmt` parser. Keys that
//!   collide with a stream label get `_extracted`, as in `| json`. `__error__`,
//!   `__error_details__` and `__preserve_error__` are never fields. The type is detected
//!   from a value in Loki's order: int, float, boolean, duration, bytes, else string
//!   (the last entry seen decides, as in Loki). Cardinality is exact here (Loki
//!   estimates it with HyperLogLog, exact at these sizes).
//! * **Field values** (`/detected_field/{name}/values`): the distinct values of one field
//!   over the same lines; byte sizes are normalised (`10MB`, `1.5kB`) so they can be
//!   pasted back into a query, as Loki does.
//! * **Labels** (`/detected_labels`, Loki's `querier.go`): stream label cardinalities,
//!   dropping labels whose values all look like IDs (numbers or UUIDs; a label with at
//!   most two values that are all `0`/`1` is kept as a boolean), except the static
//!   `cluster`, `namespace`, `instance` and `pod`; internal `__…__` labels are dropped.
//! * **Levels**: Loki's distributor level detection (`field_detection.go`), used to split
//!   patterns by level.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use inferscope_model::Labels;
use inferscope_query::ast::{ParserStage, Stage};
use inferscope_query::pipeline::{json, logfmt};
use inferscope_query::{Pipeline, PipelineError};

use super::log_query::ResultStream;

/// Labels that are never detected fields (Loki's `logqlmodel` error labels).
const ERROR_LABELS: [&str; 3] = ["__error__", "__error_details__", "__preserve_error__"];

/// Loki's default `log_level_fields`.
pub const LOG_LEVEL_FIELDS: [&str; 12] = [
    "level",
    "LEVEL",
    "Level",
    "Severity",
    "severity",
    "SEVERITY",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
];

/// The structured metadata key Loki stores a discovered level under.
pub const DETECTED_LEVEL: &str = "detected_level";

/// Stream labels Loki's detected_labels keeps whatever their values look like.
const STATIC_LABELS: [&str; 4] = ["cluster", "namespace", "instance", "pod"];

/// Loki's `DetectedFieldType`, with its JSON names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Anything else.
    String,
    /// A 64-bit integer (`strconv.ParseInt`).
    Int,
    /// A float (`strconv.ParseFloat`).
    Float,
    /// `true`, `F`, … (`strconv.ParseBool`).
    Boolean,
    /// `150ms`, `1h30m` (`time.ParseDuration`).
    Duration,
    /// `10MB`, `1.5 KiB` (`humanize.ParseBytes`).
    Bytes,
}

impl FieldType {
    /// The name in Loki's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Duration => "duration",
            FieldType::Bytes => "bytes",
        }
    }
}

/// The parser that found a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldParser {
    /// Loki's `json` parser.
    Json,
    /// Loki's `logfmt` parser.
    Logfmt,
}

impl FieldParser {
    /// The name in Loki's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldParser::Json => "json",
            FieldParser::Logfmt => "logfmt",
        }
    }
}

/// One detected field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedField {
    /// The field (label) name.
    pub label: String,
    /// Its type, from the last value seen.
    pub field_type: FieldType,
    /// Distinct values seen.
    pub cardinality: u64,
    /// Parsers that produced it; empty for structured metadata only (`null` in JSON).
    pub parsers: Vec<FieldParser>,
    /// The JSON keys leading to it, when the `json` parser found it.
    pub json_path: Option<Vec<String>>,
}

/// One detected stream label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedLabel {
    /// The label name.
    pub label: String,
    /// Distinct values over the matching streams.
    pub cardinality: u64,
}

/// Why detection cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The built-in parser stages did not compile (a bug, never user input).
    #[error("failed to compile the field detection parsers: {0}")]
    Pipeline(#[from] PipelineError),
}

// ---------------------------------------------------------------------------------------
// Type detection: Go's strconv / time / go-humanize parsers, as Loki calls them.
// ---------------------------------------------------------------------------------------

/// Loki's `determineType`: int, float, boolean, duration, bytes, else string.
pub fn determine_type(value: &str) -> FieldType {
    if go_parse_int(value) {
        FieldType::Int
    } else if go_parse_float(value) {
        FieldType::Float
    } else if go_parse_bool(value) {
        FieldType::Boolean
    } else if go_parse_duration(value) {
        FieldType::Duration
    } else if humanize_parse_bytes(value).is_some() {
        FieldType::Bytes
    } else {
        FieldType::String
    }
}

/// `strconv.ParseInt(v, 10, 64)`: optional sign, decimal digits, in range.
fn go_parse_int(value: &str) -> bool {
    value.parse::<i64>().is_ok()
}

/// `strconv.ParseFloat(v, 64)` for decimal forms (`1.5`, `-2e3`, `.5`, `inf`, `NaN`);
/// out-of-range values are errors in Go. Hex floats are not recognised.
fn go_parse_float(value: &str) -> bool {
    let Ok(parsed) = value.parse::<f64>() else {
        return false;
    };
    if parsed.is_infinite() {
        let unsigned = value.trim_start_matches(['+', '-']).to_ascii_lowercase();
        return unsigned == "inf" || unsigned == "infinity";
    }
    true
}

/// `strconv.ParseBool`.
fn go_parse_bool(value: &str) -> bool {
    matches!(
        value,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    )
}

/// `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with Go's units, or `0`.
fn go_parse_duration(value: &str) -> bool {
    let mut s = value.strip_prefix(['-', '+']).unwrap_or(value);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut total_ns = 0f64;
    while !s.is_empty() {
        let bytes = s.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return false;
        }
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut number = s[..int_len].to_string();
        s = &s[int_len..];
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            number.push('.');
            number.push_str(&rest[..frac_len]);
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return false;
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return false,
        };
        total_ns += number.parse::<f64>().unwrap_or(0.0) * scale;
        if total_ns > i64::MAX as f64 {
            return false;
        }
    }
    true
}

/// go-humanize's unit table (`bytesSizeTable`).
fn bytes_unit(unit: &str) -> Option<u64> {
    const K: u64 = 1000;
    const KI: u64 = 1024;
    Some(match unit {
        "" | "b" => 1,
        "kb" | "k" => K,
        "kib" | "ki" => KI,
        "mb" | "m" => K.pow(2),
        "mib" | "mi" => KI.pow(2),
        "gb" | "g" => K.pow(3),
        "gib" | "gi" => KI.pow(3),
        "tb" | "t" => K.pow(4),
        "tib" | "ti" => KI.pow(4),
        "pb" | "p" => K.pow(5),
        "pib" | "pi" => KI.pow(5),
        "eb" | "e" => K.pow(6),
        "eib" | "ei" => KI.pow(6),
        _ => return None,
    })
}

/// `humanize.ParseBytes`: a number (digits, `.`, `,`) then an optional unit.
fn humanize_parse_bytes(value: &str) -> Option<u64> {
    let number_len = value
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.' || *b == b',')
        .count();
    let number: String = value[..number_len].chars().filter(|c| *c != ',').collect();
    let number: f64 = number.parse().ok()?;
    let unit = value[number_len..].trim().to_ascii_lowercase();
    let bytes = number * bytes_unit(&unit)? as f64;
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `humanize.Bytes`: SI units, one decimal under 10 (`1.5 kB`, `10 MB`, `7 B`).
fn humanize_bytes(bytes: u64) -> String {
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let exponent = ((bytes as f64).ln() / 1000f64.ln()).floor() as usize;
    let exponent = exponent.min(SIZES.len() - 1);
    let value = ((bytes as f64) / 1000f64.powi(exponent as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", SIZES[exponent])
    } else {
        format!("{value:.0} {}", SIZES[exponent])
    }
}

/// go-humanize units Loki accepts as a suffix before normalising a bytes value.
const ALLOWED_BYTES_UNITS: [&str; 25] = [
    "b", "kib", "kb", "mib", "mb", "gib", "gb", "tib", "tb", "pib", "pb", "eib", "eb", "ki", "k",
    "mi", "m", "gi", "g", "ti", "t", "pi", "p", "ei", "e",
];

/// A field value as `/detected_field/{name}/values` returns it: byte sizes rewritten
/// the way Loki does (`1536B` → `1.5kB`) so they paste into a query. Unlike Loki, only
/// values whose own type is bytes are rewritten (Loki also turns the duration `5m`
/// into `5.0MB`).
pub fn normalize_value(value: &str) -> String {
    if determine_type(value) == FieldType::Bytes {
        let lower = value.to_ascii_lowercase();
        if ALLOWED_BYTES_UNITS.iter().any(|u| lower.ends_with(u))
            && let Some(bytes) = humanize_parse_bytes(value)
        {
            return humanize_bytes(bytes).replacen(' ', "", 1);
        }
    }
    value.to_string()
}

// ---------------------------------------------------------------------------------------
// Field extraction from one entry.
// ---------------------------------------------------------------------------------------

/// One value of one field found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineField {
    /// The label name (sanitised, `_extracted` on collision with a stream label).
    pub name: String,
    /// The value.
    pub value: String,
    /// The JSON keys leading to it (json parser only).
    pub json_path: Option<Vec<String>>,
}

/// Runs Loki's detection parsers over lines: `json`, else non-strict `logfmt`.
#[derive(Debug, Clone)]
pub struct FieldExtractor {
    json: Pipeline,
}

impl FieldExtractor {
    /// Compiles the parsers.
    pub fn new() -> Result<Self, DetectError> {
        let json = Pipeline::compile_stages(&[Stage::Parser(ParserStage::Json(Vec::new()))])?;
        Ok(FieldExtractor { json })
    }

    /// The fields of `line` and the parser that found them; `None` when neither parser
    /// applies. `stream` decides `_extracted` renames.
    pub fn extract(&self, line: &str, stream: &Labels) -> (Option<FieldParser>, Vec<LineField>) {
        if let Some(processed) = self.json.process(0, line, stream, &[])
            && !processed.parsed.iter().any(|(k, _)| k == "__error__")
        {
            let paths = json_paths(line);
            let fields = processed
                .parsed
                .into_iter()
                .filter(|(k, _)| !ERROR_LABELS.contains(&k.as_str()))
                .map(|(name, value)| {
                    let key = match name.strip_suffix("_extracted") {
                        Some(base) if stream.get(base).is_some() => base,
                        _ => name.as_str(),
                    };
                    let json_path = paths.get(key).cloned();
                    LineField {
                        name,
                        value,
                        json_path,
                    }
                })
                .collect();
            return (Some(FieldParser::Json), fields);
        }
        // Loki's non-strict logfmt parser never fails: it keeps what it could read.
        let mut fields: Vec<LineField> = Vec::new();
        let _ = logfmt::parse(line, false, &mut |key, value| {
            if value.is_empty() {
                return;
            }
            let mut name = json::sanitize_key(key);
            if name.is_empty() {
                return;
            }
            if stream.get(&name).is_some() {
                name.push_str("_extracted");
            }
            fields.push(LineField {
                name,
                value: value.into_owned(),
                json_path: None,
            });
        });
        (Some(FieldParser::Logfmt), fields)
    }
}

/// Sanitises a nested JSON key the way the `json` parser does (no leading-digit rule).
fn sanitize_nested(key: &str) -> String {
    if key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return key.to_string();
    }
    key.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Flattened label name → original key path, for every scalar leaf of a JSON object.
fn json_paths(line: &str) -> BTreeMap<String, Vec<String>> {
    fn walk(
        object: &serde_json::Map<String, serde_json::Value>,
        prefix: &str,
        path: &mut Vec<String>,
        out: &mut BTreeMap<String, Vec<String>>,
    ) {
        for (key, value) in object {
            let part = if prefix.is_empty() {
                json::sanitize_key(key)
            } else {
                sanitize_nested(key)
            };
            if part.is_empty() {
                continue;
            }
            let name = if prefix.is_empty() {
                part
            } else {
                format!("{prefix}_{part}")
            };
            path.push(key.clone());
            match value {
                serde_json::Value::Object(inner) => walk(inner, &name, path, out),
                serde_json::Value::Array(_) | serde_json::Value::Null => {}
                _ => {
                    out.entry(name).or_insert_with(|| path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str(line) {
        walk(&object, "", &mut Vec::new(), &mut out);
    }
    out
}

/// What detection needs of one query result entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'a> {
    /// The stream labels.
    pub stream: &'a Labels,
    /// Structured metadata.
    pub structured_metadata: &'a [(String, String)],
    /// Labels the query's own parsers extracted.
    pub parsed: &'a [(String, String)],
    /// The line.
    pub line: &'a str,
}

/// The entries of a categorised log query result, in Loki's order (streams as
/// returned, entries in the query's direction).
pub fn entries(streams: &[ResultStream]) -> impl Iterator<Item = EntryView<'_>> {
    streams.iter().flat_map(|s| {
        s.entries.iter().map(move |e| EntryView {
            stream: &s.labels,
            structured_metadata: &e.structured_metadata,
            parsed: &e.parsed,
            line: &e.line,
        })
    })
}

/// Every field of one entry: structured metadata first (no parser), then the query's
/// parsed labels and the detection parsers' finds.
fn entry_fields(
    extractor: &FieldExtractor,
    entry: EntryView<'_>,
    mut visit: impl FnMut(&str, &str, Option<FieldParser>, Option<&[String]>, bool),
) {
    for (k, v) in entry.structured_metadata {
        visit(k, v, None, None, true);
    }
    // Labels parsed by the query itself are not stream labels for the detection parsers.
    let stream = if entry.parsed.is_empty() {
        entry.stream.clone()
    } else {
        Labels::from_pairs(
            entry
                .stream
                .iter()
                .filter(|(k, _)| !entry.parsed.iter().any(|(p, _)| p == k)),
        )
    };
    let (parser, fields) = extractor.extract(entry.line, &stream);
    for (k, v) in entry.parsed {
        if !ERROR_LABELS.contains(&k.as_str()) {
            visit(k, v, parser, None, false);
        }
    }
    for f in &fields {
        visit(&f.name, &f.value, parser, f.json_path.as_deref(), false);
    }
}

#[derive(Debug)]
struct FieldAccumulator {
    values: HashSet<String>,
    field_type: FieldType,
    parsers: Vec<FieldParser>,
    json_path: Option<Vec<String>>,
}

/// Loki's `parseDetectedFields` over the entries, at most `limit` fields (the first
/// ones found), sorted by name.
pub fn detect_fields<'a>(
    entries: impl Iterator<Item = EntryView<'a>>,
    limit: usize,
) -> Result<Vec<DetectedField>, DetectError> {
    let extractor = FieldExtractor::new()?;
    let mut fields: BTreeMap<String, FieldAccumulator> = BTreeMap::new();
    for entry in entries {
        entry_fields(&extractor, entry, |name, value, parser, path, _| {
            if !fields.contains_key(name) {
                if fields.len() >= limit {
                    return;
                }
                fields.insert(
                    name.to_string(),
                    FieldAccumulator {
                        values: HashSet::new(),
                        field_type: FieldType::String,
                        parsers: Vec::new(),
                        json_path: None,
                    },
                );
            }
            let Some(field) = fields.get_mut(name) else {
                return;
            };
            if let Some(p) = parser
                && !field.parsers.contains(&p)
            {
                field.parsers.push(p);
            }
            if field.json_path.is_none()
                && let Some(path) = path
            {
                field.json_path = Some(path.to_vec());
            }
            field.field_type = determine_type(value);
            if !field.values.contains(value) {
                field.values.insert(value.to_string());
            }
        });
    }
    Ok(fields
        .into_iter()
        .map(|(label, f)| DetectedField {
            label,
            field_type: f.field_type,
            cardinality: f.values.len() as u64,
            parsers: f.parsers,
            json_path: f.json_path,
        })
        .collect())
}

/// Loki's `parseDetectedFieldValues`: distinct values of field `name`, normalised,
/// sorted, at most `limit`.
pub fn detect_field_values<'a>(
    entries: impl Iterator<Item = EntryView<'a>>,
    name: &str,
    limit: usize,
) -> Result<Vec<String>, DetectError> {
    let extractor = FieldExtractor::new()?;
    let mut values: BTreeSet<String> = BTreeSet::new();
    for entry in entries {
        if values.len() >= limit {
            break;
        }
        entry_fields(&extractor, entry, |field, value, _, _, metadata| {
            if field == name {
                values.insert(if metadata {
                    value.to_string()
                } else {
                    normalize_value(value)
                });
            }
        });
    }
    Ok(values.into_iter().take(limit).collect())
}

// ---------------------------------------------------------------------------------------
// Detected labels.
// ---------------------------------------------------------------------------------------

/// `uuid.Parse` (google/uuid): 36-char dashed, `{…}`, `urn:uuid:…` or 32 hex digits.
fn is_uuid(value: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let dashed = |s: &str| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    match value.len() {
        32 => hex(value),
        36 => dashed(value),
        38 => value.starts_with('{') && value.ends_with('}') && dashed(&value[1..37]),
        45 => {
            value
                .get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:uuid:"))
                && dashed(&value[9..])
        }
        _ => false,
    }
}

/// Loki's `shouldRejectLabel`: no values, or all values look like IDs (numbers or
/// UUIDs) — except up to two values that are all `0`/`1` (a boolean).
fn should_reject_label(values: &BTreeSet<String>) -> bool {
    if values.is_empty() {
        return true;
    }
    let all_ids = || values.iter().all(|v| go_parse_float(v) || is_uuid(v));
    if values.len() > 2 {
        return all_ids();
    }
    if values.iter().all(|v| v == "0" || v == "1") {
        return false;
    }
    all_ids()
}

/// Loki's `DetectedLabels` over the label sets of the matching streams, sorted by name.
pub fn detect_labels(series: &[Labels]) -> Vec<DetectedLabel> {
    let mut values: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for labels in series {
        for (k, v) in labels.iter() {
            let set = values.entry(k).or_default();
            if !set.contains(v) {
                set.insert(v.to_string());
            }
        }
    }
    values
        .into_iter()
        .filter(|(name, _)| !(name.starts_with("__") && name.ends_with("__")))
        .filter(|(name, vals)| STATIC_LABELS.contains(name) || !should_reject_label(vals))
        .map(|(name, vals)| DetectedLabel {
            label: name.to_string(),
            cardinality: vals.len() as u64,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Levels.
// ---------------------------------------------------------------------------------------

/// Loki's normalisation of a level value; `None` when it is not a known level.
fn known_level(value: &str) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    Some(match lower.as_str() {
        "trace" | "trc" => "trace",
        "debug" | "dbg" => "debug",
        "info" | "inf" => "info",
        "warn" | "wrn" | "warning" => "warn",
        "error" | "err" => "error",
        "critical" => "critical",
        "fatal" => "fatal",
        _ => return None,
    })
}

/// Loki's `detectLevelFromLogLine`: the first of trace, debug, fatal, critical, error,
/// err, warning, warn, info found as a whole word (case-insensitive; like Loki, only
/// the first occurrence of each word is looked at).
fn level_from_words(line: &str) -> &'static str {
    const WORDS: [(&str, &str); 9] = [
        ("trace", "trace"),
        ("debug", "debug"),
        ("fatal", "fatal"),
        ("critical", "critical"),
        ("error", "error"),
        ("err", "error"),
        ("warning", "warn"),
        ("warn", "warn"),
        ("info", "info"),
    ];
    let lower = line.to_ascii_lowercase();
    let boundary = |pos: Option<usize>| {
        pos.and_then(|p| lower.as_bytes().get(p))
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
    };
    for (word, level) in WORDS {
        if let Some(pos) = lower.find(word)
            && boundary(pos.checked_sub(1))
            && boundary(Some(pos + word.len()))
        {
            return level;
        }
    }
    "unknown"
}

/// The level Loki's distributor would store as `detected_level`: an existing
/// `detected_level` metadata, a level stream label or metadata (as is), the level
/// field of a JSON or logfmt line (normalised), else words in the line.
pub fn detect_level(
    stream: &Labels,
    structured_metadata: &[(String, String)],
    line: &str,
) -> String {
    let metadata = |name: &str| {
        structured_metadata
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(level) = metadata(DETECTED_LEVEL) {
        return level.to_string();
    }
    for name in LOG_LEVEL_FIELDS {
        if let Some(level) = stream.get(name) {
            return level.to_string();
        }
    }
    for name in LOG_LEVEL_FIELDS {
        if let Some(level) = metadata(name) {
            return level.to_string();
        }
    }
    let trimmed = line.trim();
    let mut found: Option<String> = None;
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        if let Ok(serde_json::Value::Object(object)) = serde_json::from_str(trimmed) {
            found = LOG_LEVEL_FIELDS
                .iter()
                .find_map(|k| object.get(*k).and_then(|v| v.as_str()).map(str::to_string));
        }
    } else if line.contains('=') {
        let _ = logfmt::parse(line, false, &mut |key, value| {
            if found.is_none() && LOG_LEVEL_FIELDS.contains(&key) {
                found = Some(value.into_owned());
            }
        });
    } else {
        return level_from_words(line).to_string();
    }
    match found.as_deref().and_then(known_level) {
        Some(level) => level.to_string(),
        None => level_from_words(line).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_in_lokis_order() {
        let cases = [
            ("42", FieldType::Int),
            ("-7", FieldType::Int),
            ("1", FieldType::Int),
            ("3.14", FieldType::Float),
            ("1e5", FieldType::Float),
            ("NaN", FieldType::Float),
            ("1e400", FieldType::String),
            ("true", FieldType::Boolean),
            ("F", FieldType::Boolean),
            ("yes", FieldType::String),
            ("150ms", FieldType::Duration),
            ("1h30m", FieldType::Duration),
            ("1.5s", FieldType::Duration),
            ("-2µs", FieldType::Duration),
            ("5 parsecs", FieldType::String),
            ("10MB", FieldType::Bytes),
            ("1.5 KiB", FieldType::Bytes),
            ("1,000", FieldType::Bytes),
            ("12k", FieldType::Bytes),
            ("abc", FieldType::String),
            ("", FieldType::String),
            ("12abc", FieldType::String),
        ];
        for (value, expected) in cases {
            assert_eq!(determine_type(value), expected, "{value:?}");
        }
    }

    #[test]
    fn byte_values_are_normalised_like_loki() {
        assert_eq!(normalize_value("10MB"), "10MB");
        assert_eq!(normalize_value("1536B"), "1.5kB");
        assert_eq!(normalize_value("1.5 KiB"), "1.5kB");
        assert_eq!(normalize_value("5m"), "5m");
        assert_eq!(normalize_value("hello"), "hello");
        assert_eq!(humanize_bytes(7), "7 B");
        assert_eq!(humanize_bytes(82854982), "83 MB");
    }

    fn stream(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn json_lines_flatten_with_paths_and_extracted_renames() {
        let extractor = FieldExtractor::new().expect("compiles");
        let labels = stream(&[("app", "gw")]);
        let (parser, mut fields) = extractor.extract(
            r#"{"app":"x","latency_ms":37,"user":{"id-x":"u1","tags":[1]},"n":null,"ok":true}"#,
            &labels,
        );
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(parser, Some(FieldParser::Json));
        let got: Vec<(&str, &str, Option<Vec<&str>>)> = fields
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.value.as_str(),
                    f.json_path
                        .as_ref()
                        .map(|p| p.iter().map(String::as_str).collect()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("app_extracted", "x", Some(vec!["app"])),
                ("latency_ms", "37", Some(vec!["latency_ms"])),
                ("ok", "true", Some(vec!["ok"])),
                ("user_id_x", "u1", Some(vec!["user", "id-x"])),
            ]
        );
    }

    #[test]
    fn logfmt_lines_and_plain_text() {
        let extractor = FieldExtractor::new().expect("compiles");
        let labels = stream(&[("app", "gw")]);
        let (parser, fields) = extractor.extract(
            r#"level=info msg="request done" took=5ms empty= app=z"#,
            &labels,
        );
        assert_eq!(parser, Some(FieldParser::Logfmt));
        let names: Vec<(&str, &str)> = fields
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("level", "info"),
                ("msg", "request done"),
                ("took", "5ms"),
                ("app_extracted", "z")
            ]
        );
        assert!(fields.iter().all(|f| f.json_path.is_none()));
        let (_, fields) = extractor.extract("GET /api/users 200 12ms", &labels);
        assert!(fields.is_empty());
        // Invalid JSON falls back to logfmt, as in Loki.
        let (parser, fields) = extractor.extract(r#"{"a":1 b=2"#, &labels);
        assert_eq!(parser, Some(FieldParser::Logfmt));
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].name, "b");
    }

    fn result_stream(labels: &[(&str, &str)], lines: &[(&str, &[(&str, &str)])]) -> ResultStream {
        use super::super::log_query::ResultEntry;
        ResultStream {
            labels: stream(labels),
            entries: lines
                .iter()
                .enumerate()
                .map(|(i, (line, metadata))| ResultEntry {
                    timestamp_ns: i as i64,
                    line: line.to_string(),
                    structured_metadata: metadata
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    parsed: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn fields_over_a_result() {
        let streams = vec![result_stream(
            &[("app", "gw")],
            &[
                (r#"{"status":200,"path":"/a"}"#, &[("trace_id", "t1")]),
                (r#"{"status":404,"path":"/a"}"#, &[("trace_id", "t2")]),
                ("status=500 took=5ms", &[]),
                ("plain words", &[]),
            ],
        )];
        let fields = detect_fields(entries(&streams), 100).expect("detect");
        let summary: Vec<(&str, &str, u64, Vec<&str>)> = fields
            .iter()
            .map(|f| {
                (
                    f.label.as_str(),
                    f.field_type.as_str(),
                    f.cardinality,
                    f.parsers.iter().map(|p| p.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("path", "string", 1, vec!["json"]),
                ("status", "int", 3, vec!["json", "logfmt"]),
                ("took", "duration", 1, vec!["logfmt"]),
                ("trace_id", "string", 2, vec![]),
            ]
        );
        assert_eq!(fields[1].json_path, Some(vec!["status".to_string()]));
        assert_eq!(fields[2].json_path, None);
        let limited = detect_fields(entries(&streams), 2).expect("detect");
        assert_eq!(limited.len(), 2);
        let values = detect_field_values(entries(&streams), "status", 100).expect("values");
        assert_eq!(values, vec!["200", "404", "500"]);
        let values = detect_field_values(entries(&streams), "trace_id", 1).expect("values");
        assert_eq!(values, vec!["t1"]);
    }

    #[test]
    fn query_parsed_labels_are_fields_and_errors_are_not() {
        use super::super::log_query::ResultEntry;
        let streams = vec![ResultStream {
            labels: stream(&[("app", "gw")]),
            entries: vec![ResultEntry {
                timestamp_ns: 1,
                line: "not json".into(),
                structured_metadata: vec![],
                parsed: vec![
                    ("__error__".into(), "JSONParserErr".into()),
                    ("custom".into(), "v".into()),
                ],
            }],
        }];
        let fields = detect_fields(entries(&streams), 10).expect("detect");
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].label, "custom");
    }

    #[test]
    fn detected_labels_drop_ids_keep_static_and_booleans() {
        let uuid = |i: u32| format!("123e4567-e89b-12d3-a456-4266141740{i:02}");
        let mut series = Vec::new();
        for i in 0..4u32 {
            series.push(stream(&[
                ("app", if i % 2 == 0 { "gw" } else { "vllm" }),
                ("pod", &format!("{i}")),
                ("request_id", &uuid(i)),
                ("port", &format!("80{i}")),
                ("canary", if i == 0 { "1" } else { "0" }),
                ("env", "prod"),
                ("__stream_shard__", "1"),
            ]));
        }
        let got: Vec<(String, u64)> = detect_labels(&series)
            .into_iter()
            .map(|l| (l.label, l.cardinality))
            .collect();
        assert_eq!(
            got,
            vec![
                ("app".to_string(), 2),
                ("canary".to_string(), 2),
                ("env".to_string(), 1),
                ("pod".to_string(), 4),
            ]
        );
        assert!(is_uuid("{123e4567-e89b-12d3-a456-426614174000}"));
        assert!(is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    }

    #[test]
    fn levels_like_lokis_distributor() {
        let none = stream(&[("app", "x")]);
        assert_eq!(
            detect_level(&none, &[], r#"{"level":"WARNING","m":1}"#),
            "warn"
        );
        assert_eq!(detect_level(&none, &[], "level=dbg msg=hi"), "debug");
        assert_eq!(detect_level(&none, &[], "ts=1 msg=\"an error\""), "error");
        assert_eq!(
            detect_level(&none, &[], "connection refused: ERROR"),
            "error"
        );
        assert_eq!(detect_level(&none, &[], "informational"), "unknown");
        assert_eq!(detect_level(&none, &[], "all good"), "unknown");
        let labelled = stream(&[("level", "INFO")]);
        assert_eq!(detect_level(&labelled, &[], "error"), "INFO");
        let metadata = vec![(DETECTED_LEVEL.to_string(), "fatal".to_string())];
        assert_eq!(detect_level(&labelled, &metadata, "x"), "fatal");
    }
}
