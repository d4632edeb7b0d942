//! Log entries as they are pushed and stored.

use crate::Labels;
use crate::level::{DETECTED_LEVEL, Level};

/// One log line with its timestamp and structured metadata.
///
/// The line is kept exactly as it was received: normalization adds metadata
/// next to it and never rewrites it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEntry {
    /// Event time in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The original log line, byte for byte.
    pub line: String,
    /// Loki's structured metadata: high-cardinality key/value pairs that are
    /// not part of the stream identity (`trace_id`, `request_id`, ...).
    pub structured_metadata: Vec<(String, String)>,
    /// The `detected_level` pair normalization adds, when its value is one of
    /// Loki's canonical levels: one byte through the WAL, the head and
    /// blocks. Logically it is the first pair; [`LogEntry::metadata`] yields
    /// it as (`detected_level`, value).
    pub detected_level: Option<Level>,
    /// More structured metadata, whose values are parts of `line` (the ids
    /// normalization finds in a JSON line), held as byte ranges so the value
    /// is neither copied nor written twice. Names are interned, so a pair
    /// allocates nothing. Logically it follows `structured_metadata`.
    pub line_metadata: Vec<LineMetadata>,
}

/// A structured metadata pair whose value is a byte range of its entry's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMetadata {
    /// The metadata name ([`crate::intern`]ed: the same few names recur on
    /// every entry).
    pub name: &'static str,
    /// Byte offset of the value in the line (a char boundary).
    pub start: u32,
    /// Byte offset just past the value (a char boundary).
    pub end: u32,
}

impl LineMetadata {
    /// The pair for `value`, a slice borrowed from `line` itself; `None` when
    /// `value` does not lie inside `line` (a decoded copy, say).
    pub fn of_slice(name: &'static str, line: &str, value: &str) -> Option<Self> {
        let start = (value.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
        let end = start.checked_add(value.len())?;
        // `get` checks the range and its char boundaries; the pointer check
        // that it is this very slice, not equal bytes elsewhere.
        let found = line.get(start..end)?;
        (found.as_ptr() == value.as_ptr()).then_some(())?;
        Some(LineMetadata {
            name,
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// Checks a range read back from storage against its line.
    pub fn checked(name: &'static str, line: &str, start: u32, end: u32) -> Option<Self> {
        line.get(start as usize..end as usize)?;
        Some(LineMetadata { name, start, end })
    }

    /// The value, read from `line` (empty if the range does not fit it, which
    /// [`LineMetadata::of_slice`] and [`LineMetadata::checked`] rule out).
    pub fn value<'l>(&self, line: &'l str) -> &'l str {
        line.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// Length of the value in bytes.
    pub fn value_len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }
}

impl LogEntry {
    /// An entry without structured metadata.
    pub fn new(timestamp_ns: i64, line: impl Into<String>) -> Self {
        LogEntry {
            timestamp_ns,
            line: line.into(),
            ..LogEntry::default()
        }
    }

    /// Every structured metadata pair: `detected_level`, then
    /// `structured_metadata`, then `line_metadata` with its values read from
    /// the line.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        let line = self.line.as_str();
        self.detected_level
            .map(|l| (DETECTED_LEVEL, l.as_str()))
            .into_iter()
            .chain(
                self.structured_metadata
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .chain(
                self.line_metadata
                    .iter()
                    .map(move |m| (m.name, m.value(line))),
            )
    }

    /// Number of structured metadata pairs, of every kind.
    pub fn metadata_len(&self) -> usize {
        self.structured_metadata.len()
            + usize::from(self.detected_level.is_some())
            + self.line_metadata.len()
    }

    /// Copies the `line_metadata` values into `structured_metadata`, for code
    /// that may rewrite the line (redaction).
    pub fn materialize_line_metadata(&mut self) {
        if self.line_metadata.is_empty() {
            return;
        }
        let line = &self.line;
        self.structured_metadata.extend(
            self.line_metadata
                .drain(..)
                .map(|m| (m.name.to_string(), m.value(line).to_string())),
        );
    }

    /// Turns every structured metadata pair into an owned one, in
    /// [`LogEntry::metadata`]'s order, for code that may change any of them
    /// (a VRL program).
    pub fn materialize_metadata(&mut self) {
        if let Some(level) = self.detected_level.take() {
            let pair = (DETECTED_LEVEL.to_string(), level.as_str().to_string());
            self.structured_metadata.insert(0, pair);
        }
        self.materialize_line_metadata();
    }

    /// Bytes this entry accounts for in limits and statistics: the line plus
    /// the names and values of its structured metadata.
    pub fn size_bytes(&self) -> usize {
        let text: usize = self
            .structured_metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        let level = self
            .detected_level
            .map_or(0, |l| DETECTED_LEVEL.len() + l.as_str().len());
        let in_line: usize = self
            .line_metadata
            .iter()
            .map(|m| m.name.len() + m.value_len())
            .sum();
        self.line.len() + text + level + in_line
    }
}

/// The entries of one stream in one push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushStream {
    /// The stream's identity.
    pub labels: Labels,
    /// Its entries, in any order.
    pub entries: Vec<LogEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_metadata_refers_to_the_line_itself() {
        let line = r#"{"trace_id":"abc","msg":"abc"}"#;
        let name = "trace_id";
        let value = &line[13..16];
        let m = LineMetadata::of_slice(name, line, value).expect("inside");
        assert_eq!(((m.start, m.end), m.value(line)), ((13, 16), "abc"));
        // Equal bytes elsewhere are not the line's slice.
        let copy = String::from("abc");
        assert_eq!(LineMetadata::of_slice(name, line, &copy), None);
        assert_eq!(LineMetadata::checked(name, line, 13, 99), None);
        assert_eq!(
            LineMetadata::checked(name, "é", 0, 1),
            None,
            "not a char boundary"
        );
    }

    #[test]
    fn metadata_yields_every_kind_and_materializes_in_order() {
        let mut e = LogEntry::new(1, r#"{"trace_id":"abc"}"#);
        e.structured_metadata.push(("pod".into(), "p-1".into()));
        e.detected_level = Some(Level::Info);
        let value = &e.line[13..16];
        let m = LineMetadata::of_slice("trace_id", &e.line, value).expect("inside");
        e.line_metadata.push(m);
        let pairs: Vec<(String, String)> = e
            .metadata()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let expected = [
            ("detected_level", "info"),
            ("pod", "p-1"),
            ("trace_id", "abc"),
        ];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(e.metadata_len(), 3);
        assert_eq!(e.size_bytes(), e.line.len() + 3 + 3 + 14 + 4 + 8 + 3);
        let before = e.size_bytes();

        // Redaction materializes the ranges only; the level stays a level.
        let mut redacted = e.clone();
        redacted.materialize_line_metadata();
        assert!(redacted.line_metadata.is_empty());
        assert_eq!(redacted.detected_level, Some(Level::Info));
        assert_eq!(redacted.size_bytes(), before);
        let order: Vec<(&str, &str)> = redacted.metadata().collect();
        assert_eq!(order, expected);

        // A VRL program gets every pair owned, in the same order.
        e.materialize_metadata();
        assert!(e.line_metadata.is_empty());
        assert_eq!(e.detected_level, None);
        assert_eq!(e.structured_metadata, pairs);
        assert_eq!(e.size_bytes(), before);
    }
}
