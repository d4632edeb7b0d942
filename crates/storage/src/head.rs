//! The in-memory head: recent entries per tenant and stream, not yet in a block.
//!
//! Entries live in immutable-once-shared [`Chunk`]s (columnar: timestamps,
//! one concatenated line buffer with end offsets, flattened metadata). A
//! query snapshots a stream by cloning its `Arc<Chunk>` list, so scans never
//! hold a lock while they run; an appender extends the last chunk in place
//! only when no snapshot shares it (`Arc::get_mut`), otherwise starts a new one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use inferscope_model::{
    LabelMatcher, Labels, Level, LogEntry, PushStream, TimeRange, level_code, matches_all,
};
use parking_lot::{Mutex, RwLock};

use crate::scan::{MetadataRef, NOT_IN_LINE};

/// A chunk stops growing in place beyond this many line bytes.
const CHUNK_TARGET_BYTES: usize = 1 << 20;
/// Fixed per-entry bookkeeping counted in head bytes: its timestamp and the
/// end offsets of its line and of its metadata.
pub const ENTRY_OVERHEAD: usize = 24;
/// Per metadata pair, counted in head bytes: the end offsets of its name and
/// value, and its range in the line.
pub const PAIR_OVERHEAD: usize = 24;

/// The bytes `e` takes in a chunk: what `head_max_bytes` weighs. A line
/// value takes only its name (its text is the line's), a level one byte.
pub fn held_bytes(e: &LogEntry) -> usize {
    let owned: usize = e
        .structured_metadata
        .iter()
        .map(|(k, v)| k.len() + v.len() + PAIR_OVERHEAD)
        .sum();
    let in_line: usize = e
        .line_metadata
        .iter()
        .map(|m| m.name.len() + PAIR_OVERHEAD)
        .sum();
    ENTRY_OVERHEAD + e.line.len() + owned + in_line + usize::from(e.detected_level.is_some())
}

/// A columnar run of entries of one stream, in arrival order.
#[derive(Debug, Default, Clone)]
pub struct Chunk {
    ts: Vec<i64>,
    line_ends: Vec<usize>,
    lines: String,
    /// Per entry: how many metadata pairs it and the entries before it hold.
    meta_ends: Vec<usize>,
    /// Every metadata name and value, concatenated (one buffer, not two
    /// `String`s a pair: no allocation per pair on the ingest path).
    meta_text: String,
    /// End offset in `meta_text` of each name and of each value, alternating
    /// (a line value takes no text: its end is its name's).
    meta_bounds: Vec<usize>,
    /// Per pair: the value's byte range in the entry's line (line metadata,
    /// not copied), or `NOT_IN_LINE`.
    meta_in_line: Vec<(u32, u32)>,
    /// How many pairs have their value in the line.
    line_pairs: usize,
    /// Per entry: its `detected_level` code ([`level_code`]; 0 for none);
    /// empty until an entry has a level (the raw push path's never do).
    levels: Vec<u8>,
    /// Smallest timestamp in the chunk.
    pub min_ts: i64,
    /// Largest timestamp in the chunk.
    pub max_ts: i64,
}

impl Chunk {
    /// A chunk sized for `entries` (no reallocation while they are pushed).
    fn for_entries(entries: &[LogEntry], line_bytes: usize) -> Self {
        let (mut meta_bytes, mut meta_pairs) = (0, 0);
        for e in entries {
            // The level has a code of its own, not a pair.
            meta_pairs += e.structured_metadata.len() + e.line_metadata.len();
            for (name, value) in &e.structured_metadata {
                meta_bytes += name.len() + value.len();
            }
            for m in &e.line_metadata {
                meta_bytes += m.name.len();
            }
        }
        Chunk {
            ts: Vec::with_capacity(entries.len()),
            line_ends: Vec::with_capacity(entries.len()),
            lines: String::with_capacity(line_bytes),
            meta_ends: Vec::with_capacity(entries.len()),
            meta_text: String::with_capacity(meta_bytes),
            meta_bounds: Vec::with_capacity(2 * meta_pairs),
            meta_in_line: Vec::with_capacity(meta_pairs),
            line_pairs: 0,
            levels: Vec::new(),
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        }
    }

    fn push(&mut self, e: &LogEntry) {
        self.ts.push(e.timestamp_ns);
        self.lines.push_str(&e.line);
        self.line_ends.push(self.lines.len());
        for (name, value) in &e.structured_metadata {
            self.meta_text.push_str(name);
            self.meta_bounds.push(self.meta_text.len());
            self.meta_text.push_str(value);
            self.meta_bounds.push(self.meta_text.len());
            self.meta_in_line.push(NOT_IN_LINE);
        }
        for m in &e.line_metadata {
            self.meta_text.push_str(m.name);
            // A line value takes no text: its end is its name's.
            self.meta_bounds.push(self.meta_text.len());
            self.meta_bounds.push(self.meta_text.len());
            self.meta_in_line.push((m.start, m.end));
        }
        self.line_pairs += e.line_metadata.len();
        let leveled = !self.levels.is_empty();
        if leveled || e.detected_level.is_some() {
            if !leveled {
                // The entries before the first level have none.
                self.levels.reserve(self.ts.capacity());
                self.levels.resize(self.ts.len() - 1, 0);
            }
            self.levels.push(level_code(e.detected_level));
        }
        self.meta_ends.push(self.meta_bounds.len() / 2);
        self.min_ts = self.min_ts.min(e.timestamp_ns);
        self.max_ts = self.max_ts.max(e.timestamp_ns);
    }

    /// Whether some entry has line metadata.
    pub fn has_line_metadata(&self) -> bool {
        self.line_pairs > 0
    }

    /// Whether some entry has a `detected_level`.
    pub fn has_levels(&self) -> bool {
        !self.levels.is_empty()
    }

    /// Sum of the line lengths.
    pub fn line_bytes(&self) -> usize {
        self.lines.len()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether the chunk holds no entry.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Timestamp of entry `i`.
    pub fn ts(&self, i: usize) -> i64 {
        self.ts[i]
    }

    /// Line of entry `i`.
    pub fn line(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.line_ends[i - 1] };
        &self.lines[start..self.line_ends[i]]
    }

    /// Structured metadata of entry `i`.
    pub fn meta(&self, i: usize) -> MetadataRef<'_> {
        let first = if i == 0 { 0 } else { self.meta_ends[i - 1] };
        let text_start = match first {
            0 => 0,
            n => self.meta_bounds[2 * n - 1],
        };
        MetadataRef::Flat {
            text: &self.meta_text,
            text_start,
            bounds: &self.meta_bounds[2 * first..2 * self.meta_ends[i]],
            in_line: &self.meta_in_line[first..self.meta_ends[i]],
            level: self.levels.get(i).copied().and_then(Level::from_code),
            line: self.line(i),
        }
    }
}

/// One stream in the head.
#[derive(Debug)]
pub struct HeadStream {
    /// The stream's labels.
    pub labels: Labels,
    /// Its chunks, in arrival order.
    pub chunks: Vec<Arc<Chunk>>,
    /// Smallest timestamp.
    pub min_ts: i64,
    /// Largest timestamp.
    pub max_ts: i64,
}

impl HeadStream {
    fn append(&mut self, entries: &[LogEntry]) {
        let line_bytes: usize = entries.iter().map(|e| e.line.len()).sum();
        let reuse = self
            .chunks
            .last_mut()
            .and_then(Arc::get_mut)
            .filter(|c| c.lines.len() + line_bytes <= CHUNK_TARGET_BYTES);
        let chunk = match reuse {
            Some(c) => c,
            None => {
                self.chunks
                    .push(Arc::new(Chunk::for_entries(entries, line_bytes)));
                match self.chunks.last_mut().and_then(Arc::get_mut) {
                    Some(c) => c,
                    None => unreachable!("a fresh Arc is unique"),
                }
            }
        };
        for e in entries {
            chunk.push(e);
        }
        self.min_ts = self.min_ts.min(chunk.min_ts);
        self.max_ts = self.max_ts.max(chunk.max_ts);
    }

    /// The stream as it is now, for a scan task.
    fn snapshot(&self) -> StreamSnapshot {
        StreamSnapshot {
            labels: self.labels.clone(),
            chunks: self.chunks.clone(),
            min_ts: self.min_ts,
            max_ts: self.max_ts,
        }
    }

    /// Every entry of the stream, as (timestamp, chunk index, entry index),
    /// sorted by timestamp (stable: arrival order among equal timestamps).
    pub fn sorted_positions(&self) -> Vec<(i64, u32, u32)> {
        let mut v = Vec::with_capacity(self.chunks.iter().map(|c| c.len()).sum());
        for (ci, c) in self.chunks.iter().enumerate() {
            for (i, &ts) in c.ts.iter().enumerate() {
                v.push((ts, ci as u32, i as u32));
            }
        }
        v.sort_by_key(|p| p.0);
        v
    }
}

/// The head data of one tenant.
#[derive(Debug, Default)]
pub struct TenantHead {
    by_fp: HashMap<u64, Vec<usize>>,
    /// Streams in creation order.
    pub streams: Vec<HeadStream>,
    /// Label name -> values, for unfiltered label queries.
    index: BTreeMap<String, BTreeSet<String>>,
    /// Trace and request ids -> streams (`crate::ids`).
    ids: crate::ids::HeadIds,
}

impl TenantHead {
    fn stream_index(&mut self, labels: &Labels) -> usize {
        let fp = labels.fingerprint();
        let slots = self.by_fp.entry(fp).or_default();
        let found = slots
            .iter()
            .copied()
            .find(|&i| self.streams[i].labels == *labels);
        match found {
            Some(i) => i,
            None => {
                let i = self.streams.len();
                slots.push(i);
                for (k, v) in labels.iter() {
                    self.index
                        .entry(k.to_string())
                        .or_default()
                        .insert(v.to_string());
                }
                self.streams.push(HeadStream {
                    labels: labels.clone(),
                    chunks: Vec::new(),
                    min_ts: i64::MAX,
                    max_ts: i64::MIN,
                });
                i
            }
        }
    }

    /// Appends entries whose id hashes (`crate::ids::entry_hashes`) were
    /// computed before the lock was taken.
    fn append(&mut self, labels: &Labels, entries: &[LogEntry], id_hashes: &[u64]) {
        let idx = self.stream_index(labels);
        self.streams[idx].append(entries);
        self.ids.add_hashes(idx, id_hashes);
    }
}

/// A snapshot of one head stream, for a scan task.
#[derive(Debug, Clone)]
pub struct StreamSnapshot {
    /// The stream's labels.
    pub labels: Labels,
    /// Its chunks at the time of the snapshot.
    pub chunks: Vec<Arc<Chunk>>,
    /// Smallest timestamp.
    pub min_ts: i64,
    /// Largest timestamp.
    pub max_ts: i64,
}

/// An in-memory head (the active one, or a frozen one being flushed).
#[derive(Debug)]
pub struct Head {
    tenants: RwLock<HashMap<String, TenantHead>>,
    bytes: AtomicUsize,
    entries: AtomicUsize,
    first_insert: Mutex<Option<Instant>>,
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

impl Head {
    /// An empty head.
    pub fn new() -> Self {
        Head {
            tenants: RwLock::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
            first_insert: Mutex::new(None),
        }
    }

    /// Adds entries; returns (entries, bytes) added.
    pub fn append(&self, tenant: &str, streams: &[PushStream]) -> (usize, usize) {
        let mut n = 0;
        let mut bytes = 0;
        // The id scan runs before the write lock, so appenders barely wait on it.
        let id_hashes: Vec<Vec<u64>> = streams
            .iter()
            .map(|s| crate::ids::entry_hashes(&s.entries))
            .collect();
        {
            let mut tenants = self.tenants.write();
            let th = match tenants.get_mut(tenant) {
                Some(t) => t,
                None => tenants.entry(tenant.to_string()).or_default(),
            };
            for (s, hashes) in streams.iter().zip(&id_hashes) {
                if s.entries.is_empty() {
                    continue;
                }
                th.append(&s.labels, &s.entries, hashes);
                n += s.entries.len();
                bytes += s.entries.iter().map(held_bytes).sum::<usize>();
            }
        }
        if n > 0 {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
            self.entries.fetch_add(n, Ordering::Relaxed);
            self.first_insert.lock().get_or_insert_with(Instant::now);
        }
        (n, bytes)
    }

    /// Approximate memory held by entries.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Number of streams over all tenants.
    pub fn streams(&self) -> usize {
        self.tenants.read().values().map(|t| t.streams.len()).sum()
    }

    /// When the oldest data still in this head arrived.
    pub fn first_insert(&self) -> Option<Instant> {
        *self.first_insert.lock()
    }

    /// Tenants with data.
    pub fn tenants(&self) -> Vec<String> {
        self.tenants.read().keys().cloned().collect()
    }

    /// Runs `f` on one tenant's head data, if any.
    pub fn with_tenant<R>(&self, tenant: &str, f: impl FnOnce(&TenantHead) -> R) -> Option<R> {
        self.tenants.read().get(tenant).map(f)
    }

    /// Snapshots the streams of `tenant` matching `matchers` with data in `range`.
    pub fn select(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Vec<StreamSnapshot> {
        self.with_tenant(tenant, |th| {
            th.streams
                .iter()
                .filter(|s| range.overlaps(s.min_ts, s.max_ts) && matches_all(matchers, &s.labels))
                .map(HeadStream::snapshot)
                .collect()
        })
        .unwrap_or_default()
    }

    /// Snapshots the streams of `tenant` matching `matchers` with data in
    /// `range` whose id index may hold one of `hashes` (see `crate::ids`),
    /// plus those carrying the label `keep_label`.
    pub fn select_ids(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        hashes: &[u64],
        range: TimeRange,
        keep_label: Option<&str>,
    ) -> Vec<StreamSnapshot> {
        self.with_tenant(tenant, |th| {
            th.streams
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    range.overlaps(s.min_ts, s.max_ts)
                        && matches_all(matchers, &s.labels)
                        && (keep_label.is_some_and(|l| s.labels.get(l).is_some())
                            || th.ids.may_hold(*i, hashes))
                })
                .map(|(_, s)| s.snapshot())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Calls `f` with the labels of each stream of `tenant` matching
    /// `matchers` with data in `range`.
    pub fn for_each_labels(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        range: TimeRange,
        mut f: impl FnMut(&Labels),
    ) {
        self.with_tenant(tenant, |th| {
            for s in &th.streams {
                if range.overlaps(s.min_ts, s.max_ts) && matches_all(matchers, &s.labels) {
                    f(&s.labels);
                }
            }
        });
    }

    /// Label names of `tenant` from the index (no filtering).
    pub fn label_names(&self, tenant: &str, out: &mut BTreeSet<String>) {
        self.with_tenant(tenant, |th| out.extend(th.index.keys().cloned()));
    }

    /// Label values of `name` in `tenant` from the index (no filtering).
    pub fn label_values(&self, tenant: &str, name: &str, out: &mut BTreeSet<String>) {
        self.with_tenant(tenant, |th| {
            if let Some(v) = th.index.get(name) {
                out.extend(v.iter().cloned());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(labels: &[(&str, &str)], ts: &[i64]) -> PushStream {
        PushStream {
            labels: Labels::from_pairs(labels.iter().copied()),
            entries: ts
                .iter()
                .map(|&t| LogEntry::new(t, format!("l{t}")))
                .collect(),
        }
    }

    #[test]
    fn metadata_reads_back_per_entry() {
        let pairs = |n: usize| -> Vec<(String, String)> {
            (0..n)
                .map(|j| {
                    (
                        format!("k{j}é"),
                        if j == 1 {
                            String::new()
                        } else {
                            format!("v{n}-{j}")
                        },
                    )
                })
                .collect()
        };
        let mut stream = push(&[("app", "a")], &[1, 2, 3, 4]);
        for (e, n) in stream.entries.iter_mut().zip([0, 3, 0, 1]) {
            e.structured_metadata = pairs(n);
        }
        // Entries 1 and 2 also carry line metadata: their timestamp digit;
        // entries 2 and 3 a level.
        for i in [1, 2] {
            let e = &mut stream.entries[i];
            let m = inferscope_model::LineMetadata::checked("digit", &e.line, 1, 2);
            e.line_metadata.extend(m);
        }
        for (i, level) in [(2, Level::Error), (3, Level::Unknown)] {
            stream.entries[i].detected_level = Some(level);
        }
        let h = Head::new();
        h.append("t", &[stream.clone()]);
        let snap = h.select("t", &[], TimeRange::all());
        let chunk = &snap[0].chunks[0];
        for (i, e) in stream.entries.iter().enumerate() {
            let meta = chunk.meta(i);
            let expected: Vec<(String, String)> = e
                .metadata()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(meta.len(), e.metadata_len());
            assert_eq!(meta.to_vec(), expected, "entry {i}");
            let in_line = meta
                .iter_stored()
                .filter(|(_, v)| matches!(v, crate::MetaValue::Line { .. }))
                .count();
            assert_eq!(in_line, e.line_metadata.len(), "entry {i}");
            let level = meta.iter_stored().find_map(|(_, v)| match v {
                crate::MetaValue::Level(level) => Some(level),
                _ => None,
            });
            assert_eq!(level, e.detected_level, "entry {i}: stored as a level");
        }
        assert!(chunk.has_levels() && chunk.has_line_metadata());
        assert_eq!(chunk.meta(2).get("detected_level"), Some("error"));
        assert_eq!(chunk.meta(2).get("digit"), Some("3"));
        assert_eq!(chunk.meta(1).get("k2é"), Some("v3-2"));
        assert_eq!(chunk.meta(1).get("k1é"), Some(""));
    }

    /// Head bytes count what a chunk holds: a level is one byte, a line
    /// value only its name, as they are stored.
    #[test]
    fn head_bytes_count_what_the_chunks_hold() {
        let mut stream = push(&[("app", "a")], &[1, 2]);
        let line_len = stream.entries[0].line.len();
        stream.entries[1].detected_level = Some(Level::Info);
        stream.entries[1]
            .structured_metadata
            .push(("pod".into(), "p-1".into()));
        let m = inferscope_model::LineMetadata::checked("digit", &stream.entries[1].line, 1, 2);
        stream.entries[1].line_metadata.extend(m);
        let h = Head::new();
        let (entries, bytes) = h.append("t", &[stream]);
        let plain = ENTRY_OVERHEAD + line_len;
        let with_metadata = plain + 1 + (3 + 3 + PAIR_OVERHEAD) + (5 + PAIR_OVERHEAD);
        assert_eq!((entries, bytes), (2, plain + with_metadata));
        assert_eq!(h.bytes(), bytes);
    }

    #[test]
    fn appends_snapshots_and_sorts() {
        let h = Head::new();
        h.append("t", &[push(&[("app", "a")], &[5, 1, 3])]);
        let snap = h.select("t", &[], TimeRange::all());
        h.append("t", &[push(&[("app", "a")], &[2])]);
        assert_eq!(snap[0].chunks.iter().map(|c| c.len()).sum::<usize>(), 3);
        let th_sorted = h
            .with_tenant("t", |th| th.streams[0].sorted_positions())
            .expect("tenant");
        let ts: Vec<i64> = th_sorted.iter().map(|p| p.0).collect();
        assert_eq!(ts, vec![1, 2, 3, 5]);
        assert_eq!(h.entries(), 4);
        assert!(h.select("other", &[], TimeRange::all()).is_empty());
        assert!(h.select("t", &[], TimeRange::new(6, 10)).is_empty());
        let mut names = BTreeSet::new();
        h.label_names("t", &mut names);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["app"]);
    }
}
