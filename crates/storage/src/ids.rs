//! The id index: which entries carry a given trace or request id.
//!
//! Ids are extracted from every entry at ingest (into the head's in-memory
//! set) and when a block is written (into the block's *sidecar*), from
//!
//! * structured metadata whose name is one of [`ID_FIELDS`],
//! * JSON lines (`"trace_id":"…"`, `"trace_id": 123`),
//! * logfmt and `key=value` text (`trace_id=…`, `trace_id="…"`),
//!
//! with a byte scan (`memchr::memmem` for each field name, then the value
//! is read in place), never a full parse, so ingest barely slows down. A
//! field name only counts when the byte before it cannot be part of a longer
//! name (`parent_trace_id` is not `trace_id`).
//!
//! An id is hashed to 64 bits ([`id_hash`], FNV-1a: stable across versions
//! and platforms). A block's sidecar (`<block id>.ids`, format in
//! `FORMAT.md`) lists the sorted `(hash, row)` pairs of the block, so a
//! lookup reads only the rows that may hold the id. Hash collisions only
//! cost a row read: callers confirm every entry with [`IdQuery::matches`].
//!
//! Blocks without a sidecar (written before the index existed) and blocks
//! whose sidecar is missing or corrupt are scanned in full instead (reported
//! once, counted in [`IdLookupStats::blocks_unindexed`]).

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use inferscope_model::hash::FastBuildHasher;
use inferscope_model::{Labels, TimeRange};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};

use crate::deletes::TaskTombstones;
use crate::error::StorageError;
use crate::manifest::BlockEntry;
use crate::scan::{MetadataRef, ScanTask, TaskKind};
use crate::store::Store;

/// Field names whose values are indexed, in lines and structured metadata.
///
/// `trace_id` and `request_id` are what our services and the datagen write;
/// the camel-case spellings are what OpenTelemetry JSON exporters and many
/// JavaScript loggers write. `x-request-id` (a header name) is left out: a
/// service that logs it is expected to log it as `request_id`. Matching is
/// case-sensitive, for names and values.
///
/// `session_id` and `mcp_session_id` are what OTLP access logs carry (`session.id`,
/// `mcp.session.id`, dots turned into underscores), so a user session can be
/// listed like a trace.
pub const ID_FIELDS: &[&str] = &[
    "trace_id",
    "request_id",
    "traceId",
    "requestId",
    "session_id",
    "mcp_session_id",
];

/// Longest id indexed or looked up, in bytes.
pub const MAX_ID_LEN: usize = 128;

const SIDECAR_MAGIC: &[u8; 8] = b"ISCIDS01";
/// Sidecars fetched concurrently by a lookup.
const SIDECAR_FETCH_CONCURRENCY: usize = 8;
/// Bytes per sidecar entry: hash (8) + row (4).
const SIDECAR_ENTRY: usize = 12;

/// The 64-bit hash of an id (FNV-1a).
pub fn id_hash(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The field names grouped by a shared tail (`_id`, `Id`): one `memmem`
/// pass per tail instead of one per name; a hit is then checked backwards
/// against the names ending with it.
struct Anchors {
    groups: Vec<(memchr::memmem::Finder<'static>, Vec<&'static str>)>,
}

fn anchors() -> &'static Anchors {
    static ANCHORS: OnceLock<Anchors> = OnceLock::new();
    ANCHORS.get_or_init(|| {
        let mut groups: Vec<(memchr::memmem::Finder<'static>, Vec<&'static str>)> = Vec::new();
        for name in ID_FIELDS {
            let tail = ["_id", "Id"]
                .into_iter()
                .find(|t| name.ends_with(t))
                .unwrap_or(name);
            match groups
                .iter_mut()
                .find(|(f, _)| f.needle() == tail.as_bytes())
            {
                Some((_, names)) => names.push(name),
                None => groups.push((memchr::memmem::Finder::new(tail.as_bytes()), vec![name])),
            }
        }
        Anchors { groups }
    })
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Whether `b` ends an unquoted value.
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b';' | b')' | b']' | b'}' | b'"' | b'\'' | b'&')
}

fn skip_spaces(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && (line[i] == b' ' || line[i] == b'\t') {
        i += 1;
    }
    i
}

/// Decodes a JSON string body holding escapes; `None` when malformed.
fn unescape_json(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).ok()?;
                // Surrogate pairs do not occur in ids; drop the entry.
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Reads the value following a field name that ends at `i` (exclusive).
/// Accepts `name":"v"`, `name" : 12`, `name=v`, `name="v"`, `name: v`.
fn value_after(line: &str, name_end: usize, quoted_name: bool, f: &mut dyn FnMut(&str)) {
    let b = line.as_bytes();
    let mut i = name_end;
    if quoted_name {
        // JSON key: the closing quote was checked by the caller.
        i += 1;
    }
    i = skip_spaces(b, i);
    match b.get(i) {
        Some(b'=') | Some(b':') => i += 1,
        _ => return,
    }
    i = skip_spaces(b, i);
    if i >= b.len() {
        return;
    }
    if b[i] == b'"' {
        let start = i + 1;
        let mut j = start;
        let mut escaped = false;
        while j < b.len() && j - start <= MAX_ID_LEN * 6 {
            match b[j] {
                b'\\' => {
                    escaped = true;
                    j += 2;
                    continue;
                }
                b'"' => break,
                _ => j += 1,
            }
        }
        if j >= b.len() {
            return; // unterminated
        }
        // `start` and `j` are at ASCII bytes, so they are char boundaries.
        let raw = &line[start..j];
        if escaped {
            if let Some(v) = unescape_json(raw) {
                emit(&v, f);
            }
        } else {
            emit(raw, f);
        }
    } else {
        let start = i;
        let mut j = i;
        while j < b.len() && !ends_value(b[j]) {
            j += 1;
        }
        // Stops at an ASCII byte or the end: a char boundary.
        if line.is_char_boundary(j) {
            emit(&line[start..j], f);
        }
    }
}

fn emit(v: &str, f: &mut dyn FnMut(&str)) {
    if !v.is_empty() && v.len() <= MAX_ID_LEN {
        f(v);
    }
}

/// Calls `f` with every id value found in `line` (JSON or logfmt fields
/// named in [`ID_FIELDS`]). Never panics, whatever the bytes.
pub fn ids_in_line(line: &str, f: &mut dyn FnMut(&str)) {
    let bytes = line.as_bytes();
    for (finder, names) in &anchors().groups {
        for hit in finder.find_iter(bytes) {
            let end = hit + finder.needle().len();
            let Some(name) = names
                .iter()
                .find(|n| end >= n.len() && &bytes[end - n.len()..end] == n.as_bytes())
            else {
                continue;
            };
            let pos = end - name.len();
            let before = if pos == 0 { None } else { Some(bytes[pos - 1]) };
            let quoted = before == Some(b'"');
            if before.is_some_and(|b| !quoted && is_name_byte(b)) {
                continue;
            }
            if quoted && bytes.get(end) != Some(&b'"') {
                continue;
            }
            value_after(line, end, quoted, f);
        }
    }
}

/// Calls `f` with every id of an entry: metadata values first, then line values.
/// A line value equal to one of the entry's metadata ids is left out (ingest
/// copies the line's ids into metadata, so most would be repeats).
pub fn ids_in_entry<'a>(
    line: &str,
    meta: impl Iterator<Item = (&'a str, &'a str)>,
    f: &mut dyn FnMut(&str),
) {
    let mut ids = EntryIds::default();
    for (k, v) in meta {
        ids.metadata(k, v, f);
    }
    ids.line(line, f);
}

/// [`ids_in_entry`] fed one metadata pair at a time, for a caller that walks
/// the pairs anyway (the block writer).
#[derive(Debug, Default)]
pub(crate) struct EntryIds<'a> {
    seen: [&'a str; 4],
    n_seen: usize,
}

impl<'a> EntryIds<'a> {
    /// One metadata pair: `f` gets the value if `name` is an id field.
    pub(crate) fn metadata(&mut self, name: &str, value: &'a str, f: &mut dyn FnMut(&str)) {
        if ID_FIELDS.contains(&name) {
            emit(value, f);
            if self.n_seen < self.seen.len() {
                self.seen[self.n_seen] = value;
                self.n_seen += 1;
            }
        }
    }

    /// Then the line: `f` gets its ids that no metadata pair held.
    pub(crate) fn line(self, line: &str, f: &mut dyn FnMut(&str)) {
        let seen = &self.seen[..self.n_seen];
        ids_in_line(line, &mut |v| {
            if !seen.contains(&v) {
                f(v);
            }
        });
    }
}

/// The ids a lookup wants, with the per-entry confirmation.
#[derive(Debug, Clone)]
pub struct IdQuery {
    ids: Vec<String>,
    hashes: Vec<u64>,
}

impl IdQuery {
    /// A query for any of `ids` (empty or over-long ids are refused).
    pub fn new(ids: &[&str]) -> Result<IdQuery, StorageError> {
        if ids.is_empty() {
            return Err(StorageError::InvalidInput("no id to look up".into()));
        }
        for id in ids {
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Err(StorageError::InvalidInput(format!(
                    "an id must have 1 to {MAX_ID_LEN} bytes"
                )));
            }
        }
        let mut hashes: Vec<u64> = ids.iter().map(|i| id_hash(i)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        Ok(IdQuery {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            hashes,
        })
    }

    /// Sorted, unique hashes of the ids.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// Whether the entry carries one of the ids (exact value equality, in a
    /// metadata field or a line field of [`ID_FIELDS`]).
    pub fn matches(&self, line: &str, meta: &MetadataRef<'_>) -> bool {
        let mut found = false;
        ids_in_entry(line, meta.iter(), &mut |v| {
            found |= self.ids.iter().any(|id| id == v);
        });
        found
    }
}

/// The id hashes of `entries` (duplicates kept), for [`HeadIds::add_hashes`].
pub fn entry_hashes(entries: &[inferscope_model::LogEntry]) -> Vec<u64> {
    let mut out = Vec::new();
    for e in entries {
        ids_in_entry(&e.line, e.metadata(), &mut |v| out.push(id_hash(v)));
    }
    out
}

/// Adds an id found in row `row` to a block's sidecar pairs.
pub(crate) fn push_id(out: &mut Vec<(u64, u32)>, row: u64, id: &str) {
    if let Ok(row) = u32::try_from(row) {
        out.push((id_hash(id), row));
    }
}

/// The decoded sidecar of a block: sorted `(hash, row)` pairs, held as two
/// columns (12 bytes per pair).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlockIds {
    hashes: Vec<u64>,
    rows: Vec<u32>,
}

impl BlockIds {
    /// Sorts and deduplicates pairs into an index.
    pub fn from_pairs(mut pairs: Vec<(u64, u32)>) -> BlockIds {
        pairs.sort_unstable();
        pairs.dedup();
        BlockIds {
            hashes: pairs.iter().map(|p| p.0).collect(),
            rows: pairs.iter().map(|p| p.1).collect(),
        }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Rows holding an id whose hash is `hash`, ascending.
    pub fn rows_of(&self, hash: u64) -> &[u32] {
        let lo = self.hashes.partition_point(|&h| h < hash);
        let hi = self.hashes.partition_point(|&h| h <= hash);
        &self.rows[lo..hi]
    }

    /// The sidecar bytes (see `FORMAT.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.len() * SIDECAR_ENTRY);
        out.extend_from_slice(SIDECAR_MAGIC);
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for (h, r) in self.hashes.iter().zip(&self.rows) {
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&r.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes sidecar bytes; corrupt bytes are an error naming `key`.
    pub fn decode(key: &str, data: &[u8]) -> Result<BlockIds, StorageError> {
        let corrupt = |reason: String| StorageError::BlockCorrupt {
            key: key.to_string(),
            reason,
        };
        if data.len() < 16 || &data[..8] != SIDECAR_MAGIC {
            return Err(corrupt("not an id sidecar (bad magic or too short)".into()));
        }
        let (body, tail) = data.split_at(data.len() - 4);
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let crc = crc32fast::hash(body);
        if crc != stored {
            return Err(corrupt(format!(
                "crc32 {crc:08x} but sidecar says {stored:08x}"
            )));
        }
        let n = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
        let entries = &body[12..];
        if entries.len() != n.saturating_mul(SIDECAR_ENTRY) {
            return Err(corrupt(format!(
                "{} entry bytes for {n} entries",
                entries.len()
            )));
        }
        let mut ids = BlockIds {
            hashes: Vec::with_capacity(n),
            rows: Vec::with_capacity(n),
        };
        for e in entries.chunks_exact(SIDECAR_ENTRY) {
            let mut h = [0u8; 8];
            h.copy_from_slice(&e[..8]);
            ids.hashes.push(u64::from_le_bytes(h));
            ids.rows
                .push(u32::from_le_bytes([e[8], e[9], e[10], e[11]]));
        }
        let sorted = ids
            .hashes
            .iter()
            .zip(&ids.rows)
            .zip(ids.hashes.iter().zip(&ids.rows).skip(1))
            .all(|(a, b)| a < b);
        if !sorted {
            return Err(corrupt("entries are not sorted".into()));
        }
        Ok(ids)
    }
}

/// Object key of a block's id sidecar.
pub fn sidecar_path(tenant: &str, block_id: &str) -> ObjPath {
    ObjPath::from_iter(["tenants", tenant, "blocks", &format!("{block_id}.ids")])
}

/// The head's id index of one tenant: `(hash, stream index)` pairs.
#[derive(Debug, Default)]
pub struct HeadIds {
    pairs: HashSet<(u64, u32), FastBuildHasher>,
}

impl HeadIds {
    /// Indexes id hashes of entries of stream `stream`.
    pub fn add_hashes(&mut self, stream: usize, hashes: &[u64]) {
        let stream = stream as u32;
        self.pairs.extend(hashes.iter().map(|&h| (h, stream)));
    }

    /// Whether stream `stream` may hold an id with one of `hashes`.
    pub fn may_hold(&self, stream: usize, hashes: &[u64]) -> bool {
        let stream = stream as u32;
        hashes.iter().any(|&h| self.pairs.contains(&(h, stream)))
    }
}

/// What a lookup did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdLookupStats {
    /// Blocks overlapping the range.
    pub blocks_considered: u64,
    /// Blocks the index ruled out without fetching them.
    pub blocks_skipped: u64,
    /// Blocks fetched (index hits plus unindexed blocks).
    pub blocks_read: u64,
    /// Blocks without a usable sidecar, scanned in full.
    pub blocks_unindexed: u64,
    /// Rows the index pointed at.
    pub rows_selected: u64,
    /// Head streams selected.
    pub head_streams: u64,
}

/// The in-memory cache of a block's sidecar, kept with its manifest entry.
#[derive(Debug, Default)]
pub struct SidecarCache(OnceLock<Option<Arc<BlockIds>>>);

enum BlockPlan {
    Skip,
    Rows(Vec<(usize, Range<usize>)>),
    All(Vec<usize>),
}

impl Store {
    async fn block_ids(&self, b: &BlockEntry) -> Option<Arc<BlockIds>> {
        let side = b.meta.ids.as_ref()?;
        if let Some(cached) = b.ids_cache.0.get() {
            return cached.clone();
        }
        let path = ObjPath::from(side.path.as_str());
        let fetched = async {
            let r = self.object_store().get(&path).await?;
            r.bytes().await
        }
        .await;
        let decoded = match fetched {
            Ok(data) if data.len() as u64 != side.size => Err(StorageError::BlockCorrupt {
                key: side.path.clone(),
                reason: format!("size {} but manifest says {}", data.len(), side.size),
            }),
            Ok(data) => {
                let key = side.path.clone();
                match tokio::task::spawn_blocking(move || BlockIds::decode(&key, &data)).await {
                    Ok(decoded) => decoded,
                    Err(e) => {
                        tracing::warn!(sidecar = %side.path, error = %e, "id sidecar decoding task failed");
                        return None;
                    }
                }
            }
            Err(e @ object_store::Error::NotFound { .. }) => Err(StorageError::object(&path, e)),
            Err(e) => {
                // Transient: scan the block this time, try the sidecar again later.
                tracing::warn!(sidecar = %side.path, error = %e, "could not fetch id sidecar; scanning the block");
                return None;
            }
        };
        let value = match decoded {
            Ok(ids) => Some(Arc::new(ids)),
            Err(e) => {
                tracing::warn!(sidecar = %side.path, error = %e, "corrupt or missing id sidecar; the block will be scanned in full");
                self.note_bad_sidecar();
                None
            }
        };
        b.ids_cache.0.get_or_init(|| value).clone()
    }

    /// Loads the id sidecar of every block into memory, where the first
    /// lookup reaching a block would otherwise load it: a server started over
    /// much data answers its first lookups as fast as later ones (without it,
    /// 1.6 s instead of 20 ms over 10 GB of logs). Fetches two at a time, to
    /// stay in the background. Returns the sidecars loaded and their bytes.
    pub async fn preload_id_sidecars(&self) -> (usize, u64) {
        let loaded: Vec<u64> = futures::stream::iter(self.all_blocks())
            .map(|b| async move {
                let size = b.meta.ids.as_ref().map_or(0, |side| side.size);
                self.block_ids(&b).await.map(|_| size)
            })
            .buffer_unordered(2)
            .filter_map(|size| async move { size })
            .collect()
            .await;
        (loaded.len(), loaded.iter().sum())
    }

    /// Plans the scan of the entries of `tenant` in `range` that may carry
    /// one of the query's ids: head streams whose index holds an id hash,
    /// and, per block, only the rows its sidecar points at (blocks whose
    /// sidecar holds none of the hashes are not fetched). Run the tasks and
    /// keep the entries for which [`IdQuery::matches`] holds.
    pub async fn lookup_ids(
        &self,
        tenant: &str,
        query: &IdQuery,
        range: TimeRange,
    ) -> Result<(Vec<ScanTask>, IdLookupStats), StorageError> {
        let mut stats = IdLookupStats::default();
        let mut tasks = Vec::new();
        if range.is_empty() {
            return Ok((tasks, stats));
        }
        let clamp = |lo: i64, hi: i64| (lo.max(range.start_ns), hi.min(range.end_ns - 1));
        let _gate = self.fetch_gate_read().await;
        let tombstones = self
            .deletes()
            .for_scan(tenant, range.start_ns, range.end_ns);
        let (heads, blocks) = self.snapshot(tenant);
        for h in heads {
            for snap in h.select_ids(tenant, &[], query.hashes(), range, None) {
                stats.head_streams += 1;
                tasks.push(ScanTask {
                    deletes: TaskTombstones::build(
                        tombstones.heads.as_ref(),
                        std::iter::once(&snap.labels),
                        (snap.min_ts, snap.max_ts),
                    ),
                    bounds: clamp(snap.min_ts, snap.max_ts),
                    kind: TaskKind::Head(snap),
                    range,
                    filter: None,
                });
            }
        }
        let mut wanted: Vec<(Arc<BlockEntry>, BlockPlan)> = Vec::new();
        let blocks: Vec<Arc<BlockEntry>> = blocks
            .into_iter()
            .filter(|b| range.overlaps(b.meta.min_ts, b.meta.max_ts))
            .collect();
        // Sidecars not in memory yet are fetched concurrently (first lookups).
        let with_ids: Vec<(Arc<BlockEntry>, Option<Arc<BlockIds>>)> = futures::stream::iter(blocks)
            .map(|b| async move {
                let ids = self.block_ids(&b).await;
                (b, ids)
            })
            .buffered(SIDECAR_FETCH_CONCURRENCY)
            .collect()
            .await;
        for (b, ids) in with_ids {
            stats.blocks_considered += 1;
            let plan = match ids {
                Some(ids) => plan_rows(&b, &ids, query.hashes(), range),
                None => {
                    stats.blocks_unindexed += 1;
                    BlockPlan::All(
                        (0..b.meta.streams.len())
                            .filter(|&i| {
                                let s = &b.meta.streams[i];
                                range.overlaps(s.min_ts, s.max_ts)
                            })
                            .collect(),
                    )
                }
            };
            match plan {
                BlockPlan::Skip => stats.blocks_skipped += 1,
                BlockPlan::All(v) if v.is_empty() => stats.blocks_skipped += 1,
                p => wanted.push((b, p)),
            }
        }
        for (b, plan) in wanted {
            let Some(loaded) = self.load_block_for_lookup(&b).await else {
                continue;
            };
            stats.blocks_read += 1;
            let streams: Vec<(Labels, Range<usize>)> = match plan {
                BlockPlan::Skip => continue,
                BlockPlan::Rows(rows) => {
                    stats.rows_selected += rows.len() as u64;
                    rows.into_iter()
                        .map(|(i, r)| (b.labels[i].clone(), r))
                        .collect()
                }
                BlockPlan::All(idx) => idx
                    .into_iter()
                    .map(|i| {
                        let s = &b.meta.streams[i];
                        (
                            b.labels[i].clone(),
                            s.row_start as usize..(s.row_start + s.row_count) as usize,
                        )
                    })
                    .collect(),
            };
            let deletes = TaskTombstones::build(
                tombstones.blocks.as_ref(),
                streams.iter().map(|(l, _)| l),
                (b.meta.min_ts, b.meta.max_ts),
            );
            tasks.push(ScanTask {
                deletes,
                kind: TaskKind::Block {
                    block: loaded,
                    with_metadata: b.meta.meta_pairs != Some(0),
                    streams,
                },
                range,
                filter: None,
                bounds: clamp(b.meta.min_ts, b.meta.max_ts),
            });
        }
        Ok((tasks, stats))
    }
}

/// The rows of `b` the sidecar points at for `hashes`, as single-row ranges
/// tagged with their stream, ascending; streams outside `range` left out.
fn plan_rows(b: &BlockEntry, ids: &BlockIds, hashes: &[u64], range: TimeRange) -> BlockPlan {
    let mut rows: Vec<u32> = hashes
        .iter()
        .flat_map(|&h| ids.rows_of(h).iter().copied())
        .collect();
    rows.sort_unstable();
    rows.dedup();
    let streams = &b.meta.streams;
    let mut out: Vec<(usize, Range<usize>)> = Vec::new();
    for row in rows {
        let row = u64::from(row);
        // Streams are in row order.
        let i = streams.partition_point(|s| s.row_start <= row);
        if i == 0 {
            continue;
        }
        let s = &streams[i - 1];
        if row >= s.row_start + s.row_count || !range.overlaps(s.min_ts, s.max_ts) {
            continue;
        }
        let row = row as usize;
        match out.last_mut() {
            Some((si, r)) if *si == i - 1 && r.end == row => r.end = row + 1,
            _ => out.push((i - 1, row..row + 1)),
        }
    }
    if out.is_empty() {
        BlockPlan::Skip
    } else {
        BlockPlan::Rows(out)
    }
}

/// An id hint of a scan (`ScanRequest::id_hint`), checked and hashed.
pub(crate) struct ScanHint {
    field: String,
    hashes: [u64; 1],
}

impl ScanHint {
    /// `None` when the hint cannot be used (a field the index does not
    /// cover, an id the index cannot hold).
    pub(crate) fn new(hint: Option<&(String, String)>) -> Option<ScanHint> {
        let (field, id) = hint?;
        if !ID_FIELDS.contains(&field.as_str()) || id.is_empty() || id.len() > MAX_ID_LEN {
            return None;
        }
        Some(ScanHint {
            field: field.clone(),
            hashes: [id_hash(id)],
        })
    }

    pub(crate) fn select_head(
        &self,
        head: &crate::head::Head,
        tenant: &str,
        matchers: &[inferscope_model::LabelMatcher],
        range: TimeRange,
    ) -> Vec<crate::head::StreamSnapshot> {
        head.select_ids(tenant, matchers, &self.hashes, range, Some(&self.field))
    }

    /// Narrows a block's selected `(stream, rows)` to the rows the sidecar
    /// points at; streams carrying the field as a label, and blocks without
    /// a usable sidecar, keep all their rows.
    pub(crate) async fn narrow_block(
        &self,
        store: &Store,
        b: &BlockEntry,
        selected: Vec<(usize, Range<usize>)>,
    ) -> Vec<(usize, Range<usize>)> {
        let Some(ids) = store.block_ids(b).await else {
            return selected;
        };
        let rows = ids.rows_of(self.hashes[0]);
        let mut out: Vec<(usize, Range<usize>)> = Vec::new();
        for (i, all) in selected {
            if b.labels[i].get(&self.field).is_some() {
                out.push((i, all));
                continue;
            }
            let lo = rows.partition_point(|&r| (r as usize) < all.start);
            for &row in &rows[lo..] {
                let row = row as usize;
                if row >= all.end {
                    break;
                }
                match out.last_mut() {
                    Some((si, r)) if *si == i && r.end == row => r.end = row + 1,
                    _ => out.push((i, row..row + 1)),
                }
            }
        }
        out
    }
}

/// Writes a block's sidecar (nothing when it holds no id); returns its
/// manifest record.
pub(crate) async fn put_sidecar(
    store: &dyn object_store::ObjectStore,
    tenant: &str,
    block_id: &str,
    ids: &BlockIds,
) -> Result<Option<crate::manifest::IdsMeta>, StorageError> {
    if ids.is_empty() {
        return Ok(None);
    }
    let path = sidecar_path(tenant, block_id);
    let data = ids.encode();
    let size = data.len() as u64;
    store
        .put(&path, PutPayload::from(data))
        .await
        .map_err(|e| StorageError::object(&path, e))?;
    Ok(Some(crate::manifest::IdsMeta {
        path: path.to_string(),
        size,
        entries: ids.len() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(line: &str) -> Vec<String> {
        let mut v = Vec::new();
        ids_in_line(line, &mut |s| v.push(s.to_string()));
        v
    }

    #[test]
    fn extracts_from_json() {
        assert_eq!(
            ids(r#"{"level":"info","trace_id":"abc123","request_id": "r-1","x":1}"#),
            vec!["abc123", "r-1"]
        );
        assert_eq!(ids(r#"{"traceId" : 42}"#), vec!["42"]);
        assert_eq!(
            ids(r#"{"parent_trace_id":"no","trace_idx":"no"}"#),
            Vec::<String>::new()
        );
    }

    #[test]
    fn extracts_from_logfmt_and_text() {
        assert_eq!(
            ids(r#"level=info trace_id=abc request_id="r 2" msg=done"#),
            vec!["abc", "r 2"]
        );
        assert_eq!(
            ids("Finished request cmpl-1, trace_id=deadbeef, took 3s"),
            vec!["deadbeef"]
        );
        assert_eq!(ids("trace_id=a)"), vec!["a"]);
        assert_eq!(ids("trace_id= "), Vec::<String>::new());
        assert_eq!(ids("xtrace_id=a trace_id"), Vec::<String>::new());
    }

    #[test]
    fn json_escapes_are_decoded() {
        assert_eq!(ids(r#"{"trace_id":"a\"b\\c\u0041"}"#), vec!["a\"b\\cA"]);
        assert_eq!(ids(r#"{"trace_id":"bad\q"}"#), Vec::<String>::new());
        assert_eq!(ids(r#"{"trace_id":"unterminated"#), Vec::<String>::new());
    }

    #[test]
    fn metadata_and_confirmation() {
        let meta = [("trace_id".to_string(), "m1".to_string())];
        let q = IdQuery::new(&["m1"]).expect("query");
        assert!(q.matches("no id here", &MetadataRef::Pairs(&meta)));
        assert!(!q.matches("trace_id=m12", &MetadataRef::Pairs(&[])));
        assert!(q.matches("trace_id=m1", &MetadataRef::Pairs(&[])));
        assert!(IdQuery::new(&[""]).is_err());
        assert!(IdQuery::new(&[&"x".repeat(MAX_ID_LEN + 1)]).is_err());
    }

    #[test]
    fn sidecar_round_trips_and_detects_corruption() {
        let idx = BlockIds::from_pairs(vec![(5, 1), (3, 7), (5, 0), (3, 7)]);
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.rows_of(5), &[0, 1]);
        assert_eq!(idx.rows_of(4), &[] as &[u32]);
        let bytes = idx.encode();
        assert_eq!(bytes.len(), 16 + 3 * SIDECAR_ENTRY);
        assert_eq!(BlockIds::decode("k", &bytes).expect("decode"), idx);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(BlockIds::decode("k", &bad).is_err(), "flip at {i}");
        }
        assert!(BlockIds::decode("k", &bytes[..bytes.len() - 1]).is_err());
        assert!(BlockIds::decode("k", b"").is_err());
    }

    proptest! {
        #[test]
        fn extraction_never_panics(line in "\\PC{0,80}", raw in proptest::collection::vec(any::<u8>(), 0..80)) {
            ids_in_line(&line, &mut |_| {});
            let s = String::from_utf8_lossy(&raw);
            ids_in_line(&s, &mut |_| {});
            let _ = BlockIds::decode("k", &raw);
        }

        #[test]
        fn present_ids_are_found(
            id in "[A-Za-z0-9_.:-]{1,64}",
            prefix in "[a-z =,{}\":]{0,20}",
            suffix in "[a-z =,{}\":]{0,20}",
            field in 0usize..4,
        ) {
            let name = ID_FIELDS[field];
            let json = format!(r#"{prefix} {{"a":"b","{name}":"{id}","c":1}} {suffix}"#);
            let logfmt = format!("{prefix} {name}={id} {suffix}");
            prop_assert!(ids(&json).contains(&id));
            prop_assert!(ids(&logfmt).contains(&id));
        }
    }
}
