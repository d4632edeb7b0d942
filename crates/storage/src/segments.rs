//! Index-level statistics: what the manifests and the head know about the
//! streams matching a selector, without reading a single line.
//!
//! A *segment* is the smallest unit the index describes: one stream's rows in
//! one block, or one head chunk. Loki's `index/stats` and `index/volume`
//! endpoints are answered from segments, like Loki answers them from its TSDB
//! chunk metas: a segment that overlaps the range counts whole.

use inferscope_model::{LabelMatcher, Labels, TimeRange, matches_all};

use crate::store::Store;

/// One stream's data in one block or one head chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Smallest timestamp.
    pub min_ts: i64,
    /// Largest timestamp.
    pub max_ts: i64,
    /// Entries.
    pub entries: u64,
    /// Sum of line lengths.
    pub bytes: u64,
}

impl Store {
    /// Calls `f` with the labels and the description of every segment of a
    /// stream of `tenant` matching `matchers` that overlaps `range`.
    pub fn for_each_segment(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        range: TimeRange,
        mut f: impl FnMut(&Labels, Segment),
    ) {
        let (heads, blocks) = self.snapshot(tenant);
        for head in heads {
            for stream in head.select(tenant, matchers, range) {
                for chunk in &stream.chunks {
                    if !chunk.is_empty() && range.overlaps(chunk.min_ts, chunk.max_ts) {
                        f(
                            &stream.labels,
                            Segment {
                                min_ts: chunk.min_ts,
                                max_ts: chunk.max_ts,
                                entries: chunk.len() as u64,
                                bytes: chunk.line_bytes() as u64,
                            },
                        );
                    }
                }
            }
        }
        for block in blocks {
            if !range.overlaps(block.meta.min_ts, block.meta.max_ts) {
                continue;
            }
            for (s, labels) in block.meta.streams.iter().zip(&block.labels) {
                if !range.overlaps(s.min_ts, s.max_ts) || !matches_all(matchers, labels) {
                    continue;
                }
                // Older blocks lack per-stream bytes: share the block's by rows.
                let bytes = s.line_bytes.unwrap_or_else(|| {
                    let rows = block.meta.rows.max(1) as u128;
                    (block.meta.line_bytes as u128 * s.row_count as u128 / rows) as u64
                });
                f(
                    labels,
                    Segment {
                        min_ts: s.min_ts,
                        max_ts: s.max_ts,
                        entries: s.row_count,
                        bytes,
                    },
                );
            }
        }
    }
}
