//! Log entries as they are pushed and stored.

use crate::Labels;

/// One log line with its timestamp and structured metadata.
///
/// The line is kept exactly as it was received: normalization adds metadata
/// next to it and never rewrites it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Event time in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The original log line, byte for byte.
    pub line: String,
    /// Loki's structured metadata: high-cardinality key/value pairs that are
    /// not part of the stream identity (`trace_id`, `request_id`, ...).
    pub structured_metadata: Vec<(String, String)>,
}

impl LogEntry {
    /// An entry without structured metadata.
    pub fn new(timestamp_ns: i64, line: impl Into<String>) -> Self {
        LogEntry {
            timestamp_ns,
            line: line.into(),
            structured_metadata: Vec::new(),
        }
    }

    /// Bytes this entry accounts for in limits and statistics: the line plus
    /// the names and values of its structured metadata.
    pub fn size_bytes(&self) -> usize {
        self.line.len()
            + self
                .structured_metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
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
