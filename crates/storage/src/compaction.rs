//! Compaction: merging a tenant's small blocks of one time window into one.
//!
//! Planning is pure ([`plan`]); the merge decodes the chosen blocks, groups
//! rows by stream and rewrites them sorted by (stream, timestamp), so every
//! entry appears exactly once in the result. The store publishes the result
//! by swapping the block ids in the manifest, then deletes the old files.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use inferscope_model::{Labels, Level};

use crate::block::OptionalColumns;
use crate::block::reader::LoadedBlock;
use crate::block::writer::{BlockBuilder, BuiltBlock};
use crate::deletes::Tombstones;
use crate::error::StorageError;
use crate::manifest::BlockEntry;
use crate::scan::MetaValue;

/// Width of a compaction window.
pub const WINDOW_NS: i64 = 24 * 3600 * 1_000_000_000;
/// Blocks at least this large are never merged further. Compaction is for the
/// many small blocks that age-triggered flushes of quiet tenants leave; a busy
/// tenant's size-triggered flushes are already large (`head_max_bytes` of
/// lines), and merging them would only cost memory and CPU.
pub const SMALL_BLOCK_BYTES: u64 = 8 << 20;
/// A merged block stops growing at this many line bytes.
pub const MAX_MERGED_LINE_BYTES: u64 = 128 << 20;

/// Groups of blocks to merge: blocks smaller than [`SMALL_BLOCK_BYTES`]
/// whose `min_ts` falls in the same [`WINDOW_NS`] window, when a window has
/// at least `min_blocks` of them.
pub fn plan(blocks: &[Arc<BlockEntry>], min_blocks: usize) -> Vec<Vec<Arc<BlockEntry>>> {
    let mut windows: BTreeMap<i64, Vec<Arc<BlockEntry>>> = BTreeMap::new();
    for b in blocks {
        if b.meta.size < SMALL_BLOCK_BYTES {
            windows
                .entry(b.meta.min_ts.div_euclid(WINDOW_NS))
                .or_default()
                .push(b.clone());
        }
    }
    let mut out = Vec::new();
    for (_, mut group) in windows {
        group.sort_by_key(|b| b.meta.min_ts);
        let mut current: Vec<Arc<BlockEntry>> = Vec::new();
        let mut bytes = 0;
        for b in group {
            if bytes + b.meta.line_bytes > MAX_MERGED_LINE_BYTES && !current.is_empty() {
                if current.len() >= min_blocks.max(2) {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
                bytes = 0;
            }
            bytes += b.meta.line_bytes;
            current.push(b);
        }
        if current.len() >= min_blocks.max(2) {
            out.push(current);
        }
    }
    out
}

type Row = (i64, String, Vec<(String, StoredValue)>);

/// A metadata value copied out of an input block, kept as it was stored (a
/// line range stays a range in the merged block).
enum StoredValue {
    Text(String),
    Line { start: u32, end: u32 },
    Level(Level),
}

impl From<MetaValue<'_>> for StoredValue {
    fn from(v: MetaValue<'_>) -> Self {
        match v {
            MetaValue::Text(t) => StoredValue::Text(t.to_string()),
            MetaValue::Line { start, end } => StoredValue::Line { start, end },
            MetaValue::Level(level) => StoredValue::Level(level),
        }
    }
}

impl StoredValue {
    fn as_meta(&self) -> MetaValue<'_> {
        match self {
            StoredValue::Text(t) => MetaValue::Text(t),
            StoredValue::Line { start, end } => MetaValue::Line {
                start: *start,
                end: *end,
            },
            StoredValue::Level(level) => MetaValue::Level(*level),
        }
    }
}
/// A stream of the merged block, with the row ranges (and time bounds) of it
/// in each input.
type StreamParts = BTreeMap<(u64, Labels), Vec<(usize, Range<usize>, (i64, i64))>>;

/// Merges loaded blocks (with their manifest entries) into one new block,
/// leaving out the entries `deletes` removes; returns the block and how many
/// entries were left out. With one input it rewrites a block (delete
/// processing).
///
/// Memory stays bounded by one stream's rows at a time: the union of the
/// inputs' streams is walked in the block order (fingerprint, labels), and
/// each stream's row ranges are read from every input, sorted by time and
/// written before the next stream is read.
pub(crate) fn merge(
    key: &str,
    inputs: &[(Arc<BlockEntry>, Arc<LoadedBlock>)],
    deletes: Option<&Tombstones>,
) -> Result<(BuiltBlock, u64), StorageError> {
    let mut parts: StreamParts = BTreeMap::new();
    for (input, (entry, _)) in inputs.iter().enumerate() {
        for (idx, s) in entry.meta.streams.iter().enumerate() {
            let labels = entry.labels[idx].clone();
            let rows = s.row_start as usize..(s.row_start + s.row_count) as usize;
            parts
                .entry((labels.fingerprint(), labels))
                .or_default()
                .push((input, rows, (s.min_ts, s.max_ts)));
        }
    }
    let columns = inputs
        .iter()
        .fold(OptionalColumns::default(), |c, (_, block)| {
            c.union(block.columns())
        });
    let mut b = BlockBuilder::new(key, columns)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut removed = 0;
    for ((_, labels), ranges) in parts {
        rows.clear();
        let bounds = ranges.iter().fold((i64::MAX, i64::MIN), |b, p| {
            (b.0.min(p.2.0), b.1.max(p.2.1))
        });
        let tombstones = deletes.and_then(|d| d.for_stream(&labels, bounds));
        for (input, range, _) in ranges {
            inputs[input]
                .1
                .read_ranges(&[range], true, |_, ts, line, meta| {
                    if tombstones
                        .as_ref()
                        .is_some_and(|t| t.deletes(ts, line.as_bytes()))
                    {
                        removed += 1;
                        return;
                    }
                    let meta = meta
                        .iter_stored()
                        .map(|(k, v)| (k.to_string(), StoredValue::from(v)))
                        .collect();
                    rows.push((ts, line.to_string(), meta));
                })?;
        }
        // Stable: entries with equal timestamps keep their arrival order.
        rows.sort_by_key(|r| r.0);
        b.begin_stream(&labels);
        for (ts, line, meta) in &rows {
            b.push(
                *ts,
                line,
                meta.iter().map(|(k, v)| (k.as_str(), v.as_meta())),
            )?;
        }
    }
    Ok((b.finish()?, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::BlockMeta;

    fn entry(id: &str, min_ts: i64, size: u64) -> Arc<BlockEntry> {
        BlockEntry::new(BlockMeta {
            id: id.into(),
            path: id.into(),
            min_ts,
            max_ts: min_ts,
            size,
            crc32: 0,
            rows: 1,
            line_bytes: size,
            meta_pairs: None,
            level: 0,
            ids: None,
            streams: vec![],
        })
    }

    #[test]
    fn plans_small_blocks_per_window() {
        let blocks = vec![
            entry("a", 0, 10),
            entry("b", 5, 10),
            entry("c", 7, 10),
            entry("d", WINDOW_NS + 1, 10),
            entry("e", 9, SMALL_BLOCK_BYTES),
        ];
        let p = plan(&blocks, 3);
        assert_eq!(p.len(), 1);
        let ids: Vec<&str> = p[0].iter().map(|b| b.meta.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c"]);
        assert!(plan(&blocks, 4).is_empty());
    }
}
