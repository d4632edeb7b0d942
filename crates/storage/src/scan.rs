//! Scan requests and the independent CPU tasks a scan is split into.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{Array, StringArray, UInt64Array};
use inferscope_model::{DETECTED_LEVEL, LabelMatcher, Labels, Level, TimeRange};

use crate::block::reader::LoadedBlock;
use crate::deletes::TaskTombstones;
use crate::error::StorageError;
use crate::head::StreamSnapshot;

/// Keeps or drops a log line before it is handed to the visitor.
pub trait LineFilter: Send + Sync {
    /// Whether `line` should be yielded.
    fn keep(&self, line: &[u8]) -> bool;
}

/// What to scan.
#[derive(Clone)]
pub struct ScanRequest {
    /// Tenant to read.
    pub tenant: String,
    /// Stream selector.
    pub matchers: Vec<LabelMatcher>,
    /// Time range (half-open).
    pub range: TimeRange,
    /// Optional line filter applied before entries are yielded.
    pub line_filter: Option<Arc<dyn LineFilter>>,
    /// `(field, id)`: the caller keeps only entries whose structured
    /// metadata (or a stream label) `field` equals `id`, so the scan may skip
    /// what the id index rules out (`crate::ids`). Streams carrying `field`
    /// as a label are scanned in full. Ignored unless `field` is one of
    /// `ids::ID_FIELDS`. A hint: entries without the id may still be yielded.
    pub id_hint: Option<(String, String)>,
}

/// Structured metadata of an entry, without copying it out of the store.
///
/// Values are stored text, ranges of the entry's line (the line metadata of
/// [`inferscope_model::LineMetadata`]) or a level (the entry's
/// `detected_level`, always the first pair); [`MetadataRef::iter`] yields
/// them all as text, [`MetadataRef::iter_stored`] as they are stored.
#[derive(Debug, Clone)]
pub enum MetadataRef<'a> {
    /// Metadata held as pairs.
    Pairs(&'a [(String, String)]),
    /// Metadata of a head entry: names and values concatenated in `text`;
    /// `bounds` holds the end offset of each name and of each value,
    /// alternating; the first name starts at `text_start`. A pair whose
    /// `in_line` range is not [`NOT_IN_LINE`] has its value in `line`.
    Flat {
        /// The chunk's metadata text.
        text: &'a str,
        /// Where this entry's first name starts in `text`.
        text_start: usize,
        /// End offsets of this entry's names and values, alternating.
        bounds: &'a [usize],
        /// Per pair: the value's range in `line`, or [`NOT_IN_LINE`].
        in_line: &'a [(u32, u32)],
        /// The entry's `detected_level`.
        level: Option<Level>,
        /// The entry's line.
        line: &'a str,
    },
    /// Metadata inside the Arrow map columns of a block.
    Arrow {
        /// Map keys.
        keys: &'a StringArray,
        /// Map values.
        values: &'a StringArray,
        /// This entry's slice of keys/values.
        range: Range<usize>,
        /// The line metadata column, when the block has one.
        line_refs: Option<LineRefs<'a>>,
        /// The entry's `detected_level` (from the block's level column).
        level: Option<Level>,
        /// The entry's line.
        line: &'a str,
    },
}

/// Marks a head metadata pair whose value is stored as text.
pub const NOT_IN_LINE: (u32, u32) = (u32::MAX, u32::MAX);

/// An entry's part of a block's `line_metadata` map column.
#[derive(Debug, Clone)]
pub struct LineRefs<'a> {
    /// Map keys (metadata names).
    pub keys: &'a StringArray,
    /// Map values: `start << 32 | end`, a byte range of the line.
    pub ranges: &'a UInt64Array,
    /// This entry's slice of keys/ranges.
    pub range: Range<usize>,
}

/// A metadata value as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaValue<'a> {
    /// Stored text.
    Text(&'a str),
    /// A byte range of the entry's line.
    Line {
        /// Start offset.
        start: u32,
        /// End offset.
        end: u32,
    },
    /// The entry's `detected_level` (its name is [`DETECTED_LEVEL`]).
    Level(Level),
}

impl<'a> MetadataRef<'a> {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        usize::from(self.level().is_some())
            + match self {
                MetadataRef::Pairs(p) => p.len(),
                MetadataRef::Flat { bounds, .. } => bounds.len() / 2,
                MetadataRef::Arrow {
                    range, line_refs, ..
                } => range.len() + line_refs.as_ref().map_or(0, |r| r.range.len()),
            }
    }

    /// The entry's `detected_level` when it is stored as a level.
    fn level(&self) -> Option<Level> {
        match self {
            MetadataRef::Pairs(_) => None,
            MetadataRef::Flat { level, .. } | MetadataRef::Arrow { level, .. } => *level,
        }
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The (name, value) pairs in stored order.
    pub fn iter(&self) -> MetadataIter<'a> {
        MetadataIter {
            inner: self.clone(),
            pos: 0,
        }
    }

    /// The pairs as stored: line values as ranges, for a writer that keeps
    /// them so.
    pub fn iter_stored(&self) -> StoredIter<'a> {
        StoredIter {
            inner: self.clone(),
            pos: 0,
        }
    }

    /// The value of `name`, if present (first occurrence).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Copies the pairs out.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The entry's line, for resolving line values (empty for `Pairs`).
    fn line(&self) -> &'a str {
        match self {
            MetadataRef::Pairs(_) => "",
            MetadataRef::Flat { line, .. } | MetadataRef::Arrow { line, .. } => line,
        }
    }

    /// Pair `pos` as stored: the level first, when there is one.
    fn stored_at(&self, pos: usize) -> Option<(&'a str, MetaValue<'a>)> {
        let pos = match (self.level(), pos) {
            (None, pos) => pos,
            (Some(level), 0) => return Some((DETECTED_LEVEL, MetaValue::Level(level))),
            (Some(_), pos) => pos - 1,
        };
        match self {
            MetadataRef::Pairs(p) => p
                .get(pos)
                .map(|(k, v)| (k.as_str(), MetaValue::Text(v.as_str()))),
            MetadataRef::Flat {
                text,
                text_start,
                bounds,
                in_line,
                ..
            } => {
                let j = 2 * pos;
                let (&name_end, &value_end) = (bounds.get(j)?, bounds.get(j + 1)?);
                let name_start = if j == 0 { *text_start } else { bounds[j - 1] };
                // The offsets were taken between pushed strings: always
                // char boundaries.
                let name = text.get(name_start..name_end).unwrap_or_default();
                let value = match in_line.get(pos).copied() {
                    Some((start, end)) if (start, end) != NOT_IN_LINE => {
                        MetaValue::Line { start, end }
                    }
                    _ => MetaValue::Text(text.get(name_end..value_end).unwrap_or_default()),
                };
                Some((name, value))
            }
            MetadataRef::Arrow {
                keys,
                values,
                range,
                line_refs,
                ..
            } => {
                if pos < range.len() {
                    let i = range.start + pos;
                    return (i < keys.len() && i < values.len())
                        .then(|| (keys.value(i), MetaValue::Text(values.value(i))));
                }
                let r = line_refs.as_ref()?;
                let i = r.range.start + (pos - range.len());
                (i < r.range.end && i < r.keys.len() && i < r.ranges.len()).then(|| {
                    let packed = r.ranges.value(i);
                    let (start, end) = ((packed >> 32) as u32, packed as u32);
                    (r.keys.value(i), MetaValue::Line { start, end })
                })
            }
        }
    }
}

impl<'a> MetaValue<'a> {
    /// The value as text, a line value read from `line`, its entry's line.
    /// Ranges were checked against their line where they entered the store
    /// (and blocks are CRC-checked); one that does not fit reads as empty.
    pub fn text(self, line: &'a str) -> &'a str {
        match self {
            MetaValue::Text(text) => text,
            MetaValue::Line { start, end } => {
                line.get(start as usize..end as usize).unwrap_or_default()
            }
            MetaValue::Level(level) => level.as_str(),
        }
    }
}

impl<'a> From<&'a str> for MetaValue<'a> {
    fn from(text: &'a str) -> Self {
        MetaValue::Text(text)
    }
}

/// Iterator over [`MetadataRef`] pairs, values as text.
#[derive(Debug, Clone)]
pub struct MetadataIter<'a> {
    inner: MetadataRef<'a>,
    pos: usize,
}

impl<'a> Iterator for MetadataIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, value) = self.inner.stored_at(self.pos)?;
        self.pos += 1;
        Some((name, value.text(self.inner.line())))
    }
}

/// Iterator over [`MetadataRef`] pairs as stored.
#[derive(Debug, Clone)]
pub struct StoredIter<'a> {
    inner: MetadataRef<'a>,
    pos: usize,
}

impl<'a> Iterator for StoredIter<'a> {
    type Item = (&'a str, MetaValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.stored_at(self.pos)?;
        self.pos += 1;
        Some(item)
    }
}

/// One entry handed to a scan visitor.
#[derive(Debug, Clone)]
pub struct EntryRef<'a> {
    /// Timestamp in nanoseconds since the epoch.
    pub timestamp_ns: i64,
    /// The line.
    pub line: &'a str,
    /// Its structured metadata.
    pub structured_metadata: MetadataRef<'a>,
}

/// Work done by a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Line bytes looked at (decompressed).
    pub bytes_scanned: u64,
    /// Lines looked at.
    pub lines_scanned: u64,
    /// Blocks read (0 or 1 per task).
    pub blocks: u64,
    /// Head entries looked at.
    pub head_entries: u64,
}

impl std::ops::AddAssign for ScanStats {
    fn add_assign(&mut self, o: Self) {
        self.bytes_scanned += o.bytes_scanned;
        self.lines_scanned += o.lines_scanned;
        self.blocks += o.blocks;
        self.head_entries += o.head_entries;
    }
}

pub(crate) enum TaskKind {
    Head(StreamSnapshot),
    Block {
        block: Arc<LoadedBlock>,
        /// Whether the metadata column must be decoded.
        with_metadata: bool,
        /// Streams with their row ranges, sorted by row.
        streams: Vec<(Labels, Range<usize>)>,
    },
}

/// An independent unit of CPU work: one head stream snapshot, or some
/// streams' rows of one block already fetched into memory.
pub struct ScanTask {
    pub(crate) kind: TaskKind,
    pub(crate) range: TimeRange,
    pub(crate) filter: Option<Arc<dyn LineFilter>>,
    pub(crate) bounds: (i64, i64),
    /// Delete requests selecting some of the task's streams (`None`: none,
    /// and no cost per entry).
    pub(crate) deletes: Option<Box<TaskTombstones>>,
}

impl std::fmt::Debug for ScanTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            TaskKind::Head(s) => format!("head {}", s.labels),
            TaskKind::Block { block, streams, .. } => {
                format!("block {} ({} streams)", block.key, streams.len())
            }
        };
        f.debug_struct("ScanTask")
            .field("kind", &kind)
            .field("bounds", &self.bounds)
            .finish()
    }
}

impl ScanTask {
    /// Smallest and largest timestamp this task can yield.
    pub fn time_bounds(&self) -> (i64, i64) {
        self.bounds
    }

    /// Whether the task reads a block (as opposed to the head).
    pub fn is_block(&self) -> bool {
        matches!(self.kind, TaskKind::Block { .. })
    }

    /// Yields every entry in the request's range whose line passes the line
    /// filter and that no delete request removes. Entries come in no
    /// particular order. Synchronous and CPU-bound.
    pub fn run(
        &self,
        visit: &mut dyn FnMut(&Labels, EntryRef<'_>),
    ) -> Result<ScanStats, StorageError> {
        let mut stats = ScanStats::default();
        let range = self.range;
        let filter = self.filter.as_deref();
        let deletes = self.deletes.as_deref();
        match &self.kind {
            TaskKind::Head(snap) => {
                for c in &snap.chunks {
                    if !range.overlaps(c.min_ts, c.max_ts) {
                        continue;
                    }
                    for i in 0..c.len() {
                        let ts = c.ts(i);
                        if !range.contains(ts) {
                            continue;
                        }
                        let line = c.line(i);
                        stats.head_entries += 1;
                        stats.lines_scanned += 1;
                        stats.bytes_scanned += line.len() as u64;
                        if deletes.is_some_and(|d| d.hides(0, ts, line.as_bytes())) {
                            continue;
                        }
                        if filter.is_none_or(|f| f.keep(line.as_bytes())) {
                            visit(
                                &snap.labels,
                                EntryRef {
                                    timestamp_ns: ts,
                                    line,
                                    structured_metadata: c.meta(i),
                                },
                            );
                        }
                    }
                }
            }
            TaskKind::Block {
                block,
                streams,
                with_metadata,
            } => {
                stats.blocks = 1;
                let ranges: Vec<Range<usize>> = streams.iter().map(|s| s.1.clone()).collect();
                block.read_ranges(&ranges, *with_metadata, |idx, ts, line, meta| {
                    if !range.contains(ts) {
                        return;
                    }
                    stats.lines_scanned += 1;
                    stats.bytes_scanned += line.len() as u64;
                    if deletes.is_some_and(|d| d.hides(idx, ts, line.as_bytes())) {
                        return;
                    }
                    if filter.is_none_or(|f| f.keep(line.as_bytes())) {
                        visit(
                            &streams[idx].0,
                            EntryRef {
                                timestamp_ns: ts,
                                line,
                                structured_metadata: meta,
                            },
                        );
                    }
                })?;
            }
        }
        Ok(stats)
    }
}
