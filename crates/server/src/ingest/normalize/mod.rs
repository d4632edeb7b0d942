//! Ingest normalization: what Inferscope derives from a pushed line, after
//! validation and before rate limiting and the WAL. The line itself is never
//! rewritten: everything derived goes next to it.
//!
//! Per entry, a JSON line (first non-blank byte `{`) is scanned once, for the
//! fields wanted only (other values are skipped undecoded); an invalid one is
//! treated as plain text and counted, never refused. From it:
//!
//! * **event time** ([`time`]): the first of `ingest.event_time.fields` replaces
//!   the push time when it parses and lies in the window validation accepts;
//!   otherwise the push time stays and the miss is counted;
//! * **`detected_level`** ([`level`]): structured metadata, as Loki's
//!   `discover_log_levels` adds it;
//! * **structured metadata**: `ingest.labels.structured_metadata_fields`
//!   (`trace_id`, `span_id`, …) copied from the top level of JSON lines unless
//!   the entry carries them already;
//! * **stream labels** ([`labels`]): `service_name` (Loki's
//!   `discover_service_name`), the Kubernetes mapping, and the JSON fields of
//!   `ingest.labels.from_fields` (which split a stream by their values).
//!
//! Additions never push an entry or stream over `limits_config`'s label and
//! structured metadata limits: what does not fit is left out.

pub mod labels;
pub mod level;
pub mod time;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use inferscope_model::{Labels, Level, LineMetadata, LogEntry, PushStream};
use inferscope_query::pipeline::json::{KeyFilter, flatten_only, sanitize_key};

use self::level::{DEFAULT_LEVEL_FIELDS, DETECTED_LEVEL, LevelValue};
use self::time::{Window, parse_event_time};
use crate::config::Config;
use crate::metrics::{EVENT_TIME_FAILURES, EVENT_TIMES_FROM_LINE, INVALID_JSON_LINES, Metrics};

/// Normalizes `streams` of `tenant` as `config` says and counts what happened
/// in `metrics`. The one entry point `ingest::accept` calls.
pub fn normalize_push(
    config: &Config,
    metrics: &Metrics,
    tenant: &str,
    streams: Vec<PushStream>,
    now_ns: i64,
) -> (Vec<PushStream>, NormalizeStats) {
    let normalizer = Normalizer::new(config);
    let (streams, stats) = normalizer.normalize(streams, now_ns);
    stats.record(metrics, tenant);
    (streams, stats)
}

/// What normalization did to one batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NormalizeStats {
    /// Lines that looked like JSON.
    pub json_lines: usize,
    /// Of those, lines that did not parse (treated as plain text).
    pub invalid_json: usize,
    /// Entries whose timestamp was taken from the line.
    pub event_times: usize,
    /// Time fields that did not parse (push time kept).
    pub event_time_unparseable: usize,
    /// Time fields outside the accepted window (push time kept).
    pub event_time_out_of_window: usize,
    /// Entries given a metadata value decoded from JSON escapes: unlike a
    /// verbatim copy, it was not in the (redacted) line as it reads now.
    pub escaped_metadata: usize,
}

impl NormalizeStats {
    /// Adds the counts to the server's counters.
    pub fn record(&self, metrics: &Metrics, tenant: &str) {
        let add = |family, labels: &[(&'static str, &str)], n: usize| {
            if n > 0 {
                metrics.add(family, labels, n as f64);
            }
        };
        add(INVALID_JSON_LINES, &[("tenant", tenant)], self.invalid_json);
        add(
            EVENT_TIMES_FROM_LINE,
            &[("tenant", tenant)],
            self.event_times,
        );
        add(
            EVENT_TIME_FAILURES,
            &[("tenant", tenant), ("reason", "unparseable")],
            self.event_time_unparseable,
        );
        add(
            EVENT_TIME_FAILURES,
            &[("tenant", tenant), ("reason", "out_of_window")],
            self.event_time_out_of_window,
        );
    }
}

/// The normalization settings, compiled from the configuration.
#[derive(Debug, Clone)]
pub struct Normalizer {
    discover_levels: bool,
    /// Level field names as configured (labels, metadata, logfmt keys).
    level_fields: Vec<String>,
    service_name_labels: Vec<String>,
    /// `ingest.labels.from_fields` as flattened JSON keys.
    label_keys: Vec<String>,
    kubernetes: Vec<(String, String)>,
    /// Every JSON key wanted, for the scanner; `None` when there is none.
    wanted: Option<KeyFilter>,
    /// What each wanted key is used for, by its position in `wanted`.
    roles: Vec<KeyRoles>,
    /// Each wanted key, by its position in `wanted`: the name of the line
    /// metadata it becomes (interned: shared by every entry).
    names: Vec<&'static str>,
    window_age_ns: Option<i64>,
    grace_ns: i64,
    max_labels: usize,
    max_label_value_length: usize,
    max_metadata_entries: usize,
    max_metadata_bytes: usize,
}

/// Fields found in one JSON line; time and level borrowed from it.
#[derive(Debug, Default)]
struct Found<'l> {
    /// (rank in `ingest.event_time.fields`, value)
    time: Option<(usize, Cow<'l, str>)>,
    level: Option<Cow<'l, str>>,
    /// Whether a metadata value had JSON escapes (decoded, not verbatim).
    escaped_metadata: bool,
    labels: Vec<(String, String)>,
}

/// A metadata value found in a JSON line.
#[derive(Debug)]
enum FoundMetadata {
    /// Verbatim in the line: kept as its range, not copied.
    InLine(LineMetadata),
    /// Decoded from JSON escapes: a copy (name, value).
    Decoded(String, String),
}

impl FoundMetadata {
    fn name(&self) -> &str {
        match self {
            FoundMetadata::InLine(m) => m.name,
            FoundMetadata::Decoded(name, _) => name,
        }
    }
}

/// What a wanted JSON key is used for (a key may serve several purposes).
#[derive(Debug, Clone, Copy, Default)]
struct KeyRoles {
    /// Rank in `ingest.event_time.fields` (the first listed wins).
    time_rank: Option<usize>,
    level: bool,
    metadata: bool,
    label: bool,
}

/// Pairs and bytes an entry's structured metadata may still grow by.
#[derive(Debug, Clone, Copy)]
struct MetadataRoom {
    pairs: usize,
    bytes: usize,
}

impl MetadataRoom {
    /// Takes room for a pair of `name_len + value_len` bytes; `false` (and
    /// nothing taken) when there is none, or for an empty value.
    fn take(&mut self, name_len: usize, value_len: usize) -> bool {
        let bytes = name_len + value_len;
        if value_len == 0 || self.pairs == 0 || bytes > self.bytes {
            return false;
        }
        self.pairs -= 1;
        self.bytes -= bytes;
        true
    }

    /// Adds a metadata pair when there is room for it (an empty value never).
    fn push<N: AsRef<str> + Into<String>>(&mut self, entry: &mut LogEntry, name: N, value: String) {
        if self.take(name.as_ref().len(), value.len()) {
            entry.structured_metadata.push((name.into(), value));
        }
    }

    /// Adds line metadata when there is room for it (an empty value never).
    fn push_in_line(&mut self, entry: &mut LogEntry, m: LineMetadata) {
        if self.take(m.name.len(), m.value_len()) {
            entry.line_metadata.push(m);
        }
    }
}

/// A change of an entry's `detected_level`.
#[derive(Debug)]
enum LevelUpdate {
    /// The pushed value is a canonical level once spelled so (`WARNING` →
    /// `warn`): it is kept as a [`Level`].
    Canonicalize(Level),
    /// A level detected from the stream, metadata or line: canonical (a
    /// [`Level`], nothing allocated) or, as Loki keeps it, another value.
    Add(LevelValue),
}

impl Normalizer {
    /// Compiles the settings of `config`.
    pub fn new(config: &Config) -> Self {
        let limits = &config.limits_config;
        let ingest = &config.ingest;
        let level_fields: Vec<String> = if limits.log_level_fields.is_empty() {
            DEFAULT_LEVEL_FIELDS.map(String::from).to_vec()
        } else {
            limits.log_level_fields.clone()
        };
        let keys = |names: &[String]| -> Vec<String> {
            let mut out: Vec<String> = Vec::with_capacity(names.len());
            for key in names.iter().map(|n| sanitize_key(n)) {
                if !key.is_empty() && !out.contains(&key) {
                    out.push(key);
                }
            }
            out
        };
        let level_keys = if limits.discover_log_levels {
            keys(&level_fields)
        } else {
            Vec::new()
        };
        let time_keys = if ingest.event_time.enabled {
            keys(&ingest.event_time.fields)
        } else {
            Vec::new()
        };
        let metadata_keys = keys(&ingest.labels.structured_metadata_fields);
        let label_keys = keys(&ingest.labels.from_fields);
        // Every wanted key once, with what it is used for; the scanner reports
        // a key's position in `wanted`, which indexes `roles`.
        let mut wanted: Vec<String> = Vec::new();
        let mut roles: Vec<KeyRoles> = Vec::new();
        fn role_of<'r>(
            wanted: &mut Vec<String>,
            roles: &'r mut Vec<KeyRoles>,
            key: &str,
        ) -> &'r mut KeyRoles {
            let i = match wanted.iter().position(|k| k == key) {
                Some(i) => i,
                None => {
                    wanted.push(key.to_string());
                    roles.push(KeyRoles::default());
                    roles.len() - 1
                }
            };
            &mut roles[i]
        }
        for key in &level_keys {
            role_of(&mut wanted, &mut roles, key).level = true;
        }
        for (rank, key) in time_keys.iter().enumerate() {
            role_of(&mut wanted, &mut roles, key)
                .time_rank
                .get_or_insert(rank);
        }
        for key in &metadata_keys {
            role_of(&mut wanted, &mut roles, key).metadata = true;
        }
        for key in &label_keys {
            role_of(&mut wanted, &mut roles, key).label = true;
        }
        let kubernetes = ingest
            .labels
            .kubernetes
            .iter()
            .map(|(source, target)| (labels::sanitize_label_name(source), target.clone()))
            .collect();
        Normalizer {
            discover_levels: limits.discover_log_levels,
            level_fields,
            service_name_labels: limits.discover_service_name.clone(),
            label_keys,
            kubernetes,
            wanted: (!wanted.is_empty()).then(|| KeyFilter::new(&wanted)),
            roles,
            names: wanted.iter().map(|k| inferscope_model::intern(k)).collect(),
            window_age_ns: limits
                .reject_old_samples
                .then_some(limits.reject_old_samples_max_age.as_nanos() as i64),
            grace_ns: limits.creation_grace_period.as_nanos() as i64,
            max_labels: limits.max_label_names_per_series,
            max_label_value_length: limits.max_label_value_length,
            max_metadata_entries: limits.max_structured_metadata_entries_count,
            max_metadata_bytes: limits.max_structured_metadata_size as usize,
        }
    }

    /// The event times accepted at `now_ns` (validation's window).
    pub fn window(&self, now_ns: i64) -> Window {
        Window {
            oldest_ns: self
                .window_age_ns
                .map_or(i64::MIN, |age| now_ns.saturating_sub(age)),
            newest_ns: now_ns.saturating_add(self.grace_ns),
        }
    }

    /// Normalizes validated `streams`; `now_ns` is the server's clock.
    pub fn normalize(
        &self,
        streams: Vec<PushStream>,
        now_ns: i64,
    ) -> (Vec<PushStream>, NormalizeStats) {
        let window = self.window(now_ns);
        let mut stats = NormalizeStats::default();
        let mut out = Vec::with_capacity(streams.len());
        // The metadata found in a line, one buffer for the whole batch.
        let mut metadata = Vec::new();
        for stream in streams {
            let labels = self.stream_labels(stream.labels);
            let stream_level = self.stream_level(&labels);
            if self.label_keys.is_empty() {
                let mut entries = stream.entries;
                for entry in &mut entries {
                    self.entry(
                        entry,
                        stream_level.as_ref(),
                        window,
                        &mut stats,
                        &mut metadata,
                    );
                }
                out.push(PushStream { labels, entries });
                continue;
            }
            // Lifted fields split the stream by their values.
            let mut split: BTreeMap<Vec<(String, String)>, Vec<LogEntry>> = BTreeMap::new();
            for mut entry in stream.entries {
                let lifted = self.entry(
                    &mut entry,
                    stream_level.as_ref(),
                    window,
                    &mut stats,
                    &mut metadata,
                );
                split.entry(lifted).or_default().push(entry);
            }
            for (lifted, entries) in split {
                let labels = self.with_labels(&labels, lifted);
                out.push(PushStream { labels, entries });
            }
        }
        (out, stats)
    }

    /// The stream's labels with `service_name` and the Kubernetes mapping.
    fn stream_labels(&self, labels: Labels) -> Labels {
        let mut added = labels::kubernetes_labels(&labels, &self.kubernetes);
        // service_name is taken from the mapped labels too, and comes first
        // when the label limit leaves room for only some.
        let with_mapped = if added.is_empty() {
            None
        } else {
            Some(Labels::from_pairs(
                labels
                    .iter()
                    .chain(added.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            ))
        };
        if let Some(service) = labels::discover_service_name(
            with_mapped.as_ref().unwrap_or(&labels),
            &self.service_name_labels,
        ) {
            added.insert(0, (labels::SERVICE_NAME.to_string(), service));
        }
        self.with_labels(&labels, added)
    }

    /// `labels` plus the `added` pairs the label limits leave room for.
    fn with_labels(&self, labels: &Labels, added: Vec<(String, String)>) -> Labels {
        if added.is_empty() {
            return labels.clone();
        }
        let room = self.max_labels.saturating_sub(labels.len());
        let mut pairs = labels.as_pairs().to_vec();
        pairs.extend(
            added
                .into_iter()
                .filter(|(k, v)| labels.get(k).is_none() && v.len() <= self.max_label_value_length)
                .take(room),
        );
        Labels::from_pairs(pairs)
    }

    /// Loki's level from stream labels: the first level field present.
    fn stream_level(&self, labels: &Labels) -> Option<LevelValue> {
        if !self.discover_levels {
            return None;
        }
        self.level_fields
            .iter()
            .find_map(|name| labels.get(name))
            .map(level::normalize_level)
    }

    /// Normalizes one entry; returns the labels lifted from its fields.
    /// `metadata` is a buffer for the metadata found in the line, kept from
    /// one entry to the next (it is left empty).
    fn entry(
        &self,
        entry: &mut LogEntry,
        stream_level: Option<&LevelValue>,
        window: Window,
        stats: &mut NormalizeStats,
        metadata: &mut Vec<FoundMetadata>,
    ) -> Vec<(String, String)> {
        metadata.clear();
        // Everything is read from the line first (time and level borrowed from
        // it, not copied), then the entry is changed.
        let found = if let Some(wanted) = &self.wanted
            && looks_like_json(&entry.line)
        {
            stats.json_lines += 1;
            let found = self.scan_json(wanted, &entry.line, metadata);
            if found.is_none() {
                stats.invalid_json += 1;
                metadata.clear();
            }
            found
        } else {
            None
        };
        let is_json = found.is_some();
        let found = found.unwrap_or_default();
        let event_time = found.time.as_ref().map(|(_, text)| parse_event_time(text));
        let level = if self.discover_levels {
            self.detect_level(entry, stream_level, is_json, found.level.as_deref())
        } else {
            None
        };
        let Found {
            escaped_metadata,
            labels,
            ..
        } = found;
        stats.escaped_metadata += usize::from(escaped_metadata);

        match event_time {
            Some(Some(ns)) if window.contains(ns) => {
                entry.timestamp_ns = ns;
                stats.event_times += 1;
            }
            Some(Some(_)) => stats.event_time_out_of_window += 1,
            Some(None) => stats.event_time_unparseable += 1,
            None => {}
        }
        let mut added = None;
        match level {
            Some(LevelUpdate::Canonicalize(level)) => {
                // The pair `detect_level` read (the first) becomes the level.
                if let Some(i) = entry
                    .structured_metadata
                    .iter()
                    .position(|(k, _)| k == DETECTED_LEVEL)
                {
                    entry.structured_metadata.remove(i);
                }
                entry.detected_level = Some(level);
            }
            Some(LevelUpdate::Add(level)) => added = Some(level),
            None => {}
        }
        let mut room = self.metadata_room(entry);
        entry.line_metadata.reserve(metadata.len());
        match added {
            // A canonical level is a code: nothing to allocate.
            Some(LevelValue::Canonical(level))
                if room.take(DETECTED_LEVEL.len(), level.as_str().len()) =>
            {
                entry.detected_level = Some(level);
            }
            Some(LevelValue::Other(level)) => room.push(entry, DETECTED_LEVEL, level),
            Some(LevelValue::Canonical(_)) | None => {}
        }
        // Only what was pushed or added above can hold a name already: the
        // line's names are unique.
        for found in metadata.drain(..) {
            let name = found.name();
            if entry.structured_metadata.iter().any(|(k, _)| k == name)
                || entry.line_metadata.iter().any(|m| m.name == name)
                || (entry.detected_level.is_some() && name == DETECTED_LEVEL)
            {
                continue;
            }
            match found {
                FoundMetadata::InLine(m) => room.push_in_line(entry, m),
                FoundMetadata::Decoded(name, value) => room.push(entry, name, value),
            }
        }
        labels
    }

    /// What `detected_level` the entry gets, if it changes.
    fn detect_level(
        &self,
        entry: &LogEntry,
        stream_level: Option<&LevelValue>,
        is_json: bool,
        json_level: Option<&str>,
    ) -> Option<LevelUpdate> {
        if let Some((_, value)) = entry
            .structured_metadata
            .iter()
            .find(|(k, _)| k == DETECTED_LEVEL)
        {
            return level::canonical_level(value).map(LevelUpdate::Canonicalize);
        }
        let from_metadata = || {
            self.level_fields.iter().find_map(|name| {
                entry
                    .structured_metadata
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| level::normalize_level(v))
            })
        };
        let detected = match stream_level {
            Some(level) => level.clone(),
            None => match from_metadata() {
                Some(level) => level,
                None if is_json => LevelValue::Canonical(match json_level {
                    Some(value) => level::level_from_field(value, &entry.line),
                    None => level::level_from_words(&entry.line),
                }),
                None => LevelValue::Canonical(level::level_of_plain_text(
                    &entry.line,
                    &self.level_fields,
                )),
            },
        };
        Some(LevelUpdate::Add(detected))
    }

    /// What the limits leave of an entry's structured metadata.
    fn metadata_room(&self, entry: &LogEntry) -> MetadataRoom {
        let used = entry.size_bytes() - entry.line.len();
        MetadataRoom {
            pairs: self
                .max_metadata_entries
                .saturating_sub(entry.metadata_len()),
            bytes: self.max_metadata_bytes.saturating_sub(used),
        }
    }

    /// The wanted fields of a JSON line, `None` when it is not valid JSON;
    /// its metadata goes to `metadata`.
    fn scan_json<'l>(
        &self,
        wanted: &KeyFilter,
        line: &'l str,
        metadata: &mut Vec<FoundMetadata>,
    ) -> Option<Found<'l>> {
        let mut found = Found::default();
        let result = flatten_only(line, Some(wanted), &mut |key, index, value| {
            let Some(roles) = index.and_then(|i| self.roles.get(i)) else {
                return;
            };
            if let Some(rank) = roles.time_rank
                && found.time.as_ref().is_none_or(|(r, _)| rank < *r)
            {
                found.time = Some((rank, value.clone()));
            }
            if roles.level && found.level.is_none() {
                found.level = Some(value.clone());
            }
            if roles.metadata && !metadata.iter().any(|m| m.name() == key) {
                let in_line = match (&value, index.and_then(|i| self.names.get(i).copied())) {
                    (Cow::Borrowed(v), Some(name)) => LineMetadata::of_slice(name, line, v),
                    _ => None,
                };
                metadata.push(match in_line {
                    Some(m) => FoundMetadata::InLine(m),
                    None => {
                        found.escaped_metadata |= matches!(value, Cow::Owned(_));
                        FoundMetadata::Decoded(key.to_string(), value.to_string())
                    }
                });
            }
            if roles.label && !value.is_empty() && !found.labels.iter().any(|(k, _)| k == key) {
                found.labels.push((key.to_string(), value.to_string()));
            }
        });
        result.ok()?;
        found.labels.sort();
        Some(found)
    }
}

/// Whether a line is taken for JSON: its first byte that is not JSON
/// whitespace (space, tab, CR, LF) is `{`.
pub fn looks_like_json(line: &str) -> bool {
    line.bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        == Some(b'{')
}

/// The message of a JSON line: its `message`, `msg` or `event` field (in that
/// order of preference); `None` for other lines or invalid JSON. Borrowed from
/// the line unless the JSON string had escapes.
pub fn message_of(line: &str) -> Option<Cow<'_, str>> {
    const NAMES: [&str; 3] = ["message", "msg", "event"];
    static KEYS: LazyLock<KeyFilter> = LazyLock::new(|| KeyFilter::new(&NAMES));
    if !looks_like_json(line) {
        return None;
    }
    let mut best: Option<(usize, Cow<'_, str>)> = None;
    flatten_only(line, Some(&KEYS), &mut |_, rank, value| {
        if let Some(rank) = rank
            && best.as_ref().is_none_or(|(r, _)| rank < *r)
        {
            best = Some((rank, value));
        }
    })
    .ok()?;
    best.map(|(_, value)| value)
}

#[cfg(test)]
mod tests;
