//! Write-ahead log: CRC-framed records in numbered segment files.
//!
//! Every [`crate::Store::append`] call becomes exactly one record
//! `[len u32 LE][crc32 u32 LE][payload]` appended to the current segment
//! `data_dir/wal/<segment id, 20 digits>.wal` (which starts with the 8-byte
//! magic `ISCWAL01`). The payload encoding is described in `FORMAT.md` and
//! implemented by [`encode_record`] / [`decode_payload`].
//!
//! Durability follows [`WalSync`]. With [`WalSync::Always`] appenders use
//! group commit: whoever finds no fsync in progress syncs everything written
//! so far, and every appender whose record is covered returns without its
//! own fsync.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use inferscope_model::{Labels, Level, LineMetadata, LogEntry, PushStream, level_code};
use parking_lot::{Condvar, Mutex};

use crate::error::StorageError;

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"ISCWAL01";
/// Version byte at the start of every record payload written: 2 added each
/// entry's line metadata (ranges of its line), 3 its `detected_level` as one
/// byte; version 1 and 2 records, which have neither or no level byte, are
/// still read.
pub const PAYLOAD_VERSION: u8 = 3;
/// Size of the record frame header (`len` + `crc`).
pub const FRAME_HEADER: usize = 8;
/// Upper bound on a single record, to reject garbage lengths early.
pub const MAX_RECORD: usize = 1 << 30;

/// When the WAL is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalSync {
    /// fsync before `append` returns; concurrent appends share one fsync.
    #[default]
    Always,
    /// fsync at most once per interval (checked on append and on `maintain`).
    Interval(Duration),
    /// Never fsync the WAL explicitly (the OS writes it back eventually).
    Never,
}

/// One decoded WAL record: a push for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// The tenant the push belongs to.
    pub tenant: String,
    /// The pushed streams.
    pub streams: Vec<PushStream>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Encodes one complete framed record (header included) for `tenant`.
pub fn encode_record(tenant: &str, streams: &[PushStream]) -> Vec<u8> {
    let mut cap = FRAME_HEADER + 16 + tenant.len();
    for s in streams {
        cap += 10;
        for (k, v) in s.labels.iter() {
            cap += k.len() + v.len() + 10;
        }
        for e in &s.entries {
            cap += e.line.len() + 8 + 6 + 2;
            for (k, v) in &e.structured_metadata {
                cap += k.len() + v.len() + 10;
            }
            for m in &e.line_metadata {
                cap += m.name.len() + 15;
            }
        }
    }
    let mut out = Vec::with_capacity(cap);
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    out.push(PAYLOAD_VERSION);
    put_str(&mut out, tenant);
    put_varint(&mut out, streams.len() as u64);
    for s in streams {
        put_varint(&mut out, s.labels.len() as u64);
        for (k, v) in s.labels.iter() {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
        put_varint(&mut out, s.entries.len() as u64);
        for e in &s.entries {
            out.extend_from_slice(&e.timestamp_ns.to_le_bytes());
            put_str(&mut out, &e.line);
            put_varint(&mut out, e.structured_metadata.len() as u64);
            for (k, v) in &e.structured_metadata {
                put_str(&mut out, k);
                put_str(&mut out, v);
            }
            out.push(level_code(e.detected_level));
            put_varint(&mut out, e.line_metadata.len() as u64);
            for m in &e.line_metadata {
                put_str(&mut out, m.name);
                put_varint(&mut out, u64::from(m.start));
                put_varint(&mut out, u64::from(m.end));
            }
        }
    }
    let payload_len = (out.len() - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[FRAME_HEADER..]);
    out[0..4].copy_from_slice(&payload_len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = *self.b.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            if shift >= 64 {
                return Err("varint overflow".into());
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn count(&mut self, min_item: usize) -> Result<usize, String> {
        let n = self.varint()?;
        // Each item needs at least `min_item` bytes; reject absurd counts so a
        // corrupt length cannot trigger a huge allocation.
        let left = (self.b.len() - self.pos) as u64;
        if n.saturating_mul(min_item.max(1) as u64) > left {
            return Err(format!("count {n} exceeds remaining {left} bytes"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.b.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.varint()? as usize;
        let s = self.bytes(n)?;
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|e| format!("invalid UTF-8: {e}"))
    }

    fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.varint()?).map_err(|_| "offset beyond u32".to_string())
    }

    fn i64(&mut self) -> Result<i64, String> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(i64::from_le_bytes(a))
    }
}

/// Decodes a record payload (without the frame header).
pub fn decode_payload(payload: &[u8]) -> Result<WalRecord, String> {
    let mut d = Decoder { b: payload, pos: 0 };
    let version = *d.bytes(1)?.first().ok_or("empty payload")?;
    if !(1..=PAYLOAD_VERSION).contains(&version) {
        return Err(format!("unknown payload version {version}"));
    }
    // Line metadata names recur on every entry: interned once per record.
    let mut names: Vec<&'static str> = Vec::new();
    let tenant = d.string()?;
    let n_streams = d.count(2)?;
    let mut streams = Vec::with_capacity(n_streams);
    for _ in 0..n_streams {
        let n_labels = d.count(2)?;
        let mut pairs = Vec::with_capacity(n_labels);
        for _ in 0..n_labels {
            pairs.push((d.string()?, d.string()?));
        }
        let n_entries = d.count(10)?;
        let mut entries = Vec::with_capacity(n_entries);
        for _ in 0..n_entries {
            let timestamp_ns = d.i64()?;
            let line = d.string()?;
            let n_meta = d.count(2)?;
            let mut structured_metadata = Vec::with_capacity(n_meta);
            for _ in 0..n_meta {
                structured_metadata.push((d.string()?, d.string()?));
            }
            let detected_level = match version {
                3.. => {
                    let code = *d.bytes(1)?.first().ok_or("truncated level")?;
                    match code {
                        0 => None,
                        code => Some(
                            Level::from_code(code)
                                .ok_or_else(|| format!("unknown level {code}"))?,
                        ),
                    }
                }
                _ => None,
            };
            let n_line_meta = if version >= 2 { d.count(3)? } else { 0 };
            let mut line_metadata = Vec::with_capacity(n_line_meta);
            for _ in 0..n_line_meta {
                let name = d.string()?;
                let name = match names.iter().find(|n| **n == name) {
                    Some(n) => *n,
                    None => {
                        let n = inferscope_model::intern(&name);
                        names.push(n);
                        n
                    }
                };
                let (start, end) = (d.u32()?, d.u32()?);
                line_metadata.push(LineMetadata::checked(name, &line, start, end).ok_or_else(
                    || format!("line metadata range {start}..{end} outside its line"),
                )?);
            }
            entries.push(LogEntry {
                timestamp_ns,
                line,
                structured_metadata,
                detected_level,
                line_metadata,
            });
        }
        streams.push(PushStream {
            labels: Labels::from_pairs(pairs),
            entries,
        });
    }
    if d.pos != payload.len() {
        return Err(format!("{} trailing bytes", payload.len() - d.pos));
    }
    Ok(WalRecord { tenant, streams })
}

/// Outcome of parsing one segment's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SegmentScan {
    /// Offset just past the last good record.
    pub good_len: u64,
    /// The first problem found, with its offset, if any.
    pub error: Option<(u64, String)>,
}

/// Parses the records of a segment image, calling `f` for each good one, and
/// stops at the first bad or truncated record.
pub fn scan_segment(buf: &[u8], mut f: impl FnMut(WalRecord)) -> SegmentScan {
    if buf.len() < SEGMENT_MAGIC.len() {
        return SegmentScan {
            good_len: 0,
            error: (!buf.is_empty()).then(|| (0, "truncated segment header".to_string())),
        };
    }
    if &buf[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        return SegmentScan {
            good_len: 0,
            error: Some((0, "bad segment magic".into())),
        };
    }
    let mut pos = SEGMENT_MAGIC.len();
    loop {
        if pos == buf.len() {
            return SegmentScan {
                good_len: pos as u64,
                error: None,
            };
        }
        let fail = |reason: String| SegmentScan {
            good_len: pos as u64,
            error: Some((pos as u64, reason)),
        };
        let Some(hdr) = buf.get(pos..pos + FRAME_HEADER) else {
            return fail("truncated record header".into());
        };
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        if len > MAX_RECORD {
            return fail(format!("record length {len} too large"));
        }
        let start = pos + FRAME_HEADER;
        let Some(payload) = buf.get(start..start + len) else {
            return fail(format!("truncated record: {len} bytes announced"));
        };
        if crc32fast::hash(payload) != crc {
            return fail("checksum mismatch".into());
        }
        match decode_payload(payload) {
            Ok(rec) => f(rec),
            Err(e) => return fail(format!("undecodable payload: {e}")),
        }
        pos = start + len;
    }
}

/// Counters shared with the store's metrics.
#[derive(Debug, Default)]
pub struct WalCounters {
    /// Bytes appended to the WAL since open.
    pub bytes: AtomicU64,
    /// fsync calls issued.
    pub fsyncs: AtomicU64,
    /// Records appended.
    pub records: AtomicU64,
}

struct Active {
    file: Arc<File>,
    path: PathBuf,
    segment: u64,
    offset: u64,
    seq: u64,
    last_sync: Instant,
}

struct SyncState {
    synced: u64,
    syncing: bool,
}

/// The WAL writer.
pub struct Wal {
    dir: PathBuf,
    policy: WalSync,
    active: Mutex<Active>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    /// Counters exported as metrics.
    pub counters: WalCounters,
}

/// Path of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// Lists the segment ids present in `dir`, sorted.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut ids = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".wal")
            && let Ok(id) = stem.parse::<u64>()
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io(dir, e))?;
    }
    let _ = dir;
    Ok(())
}

fn create_segment(dir: &Path, id: u64) -> Result<(File, PathBuf), StorageError> {
    let path = segment_path(dir, id);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io(&path, e))?;
    f.write_all(SEGMENT_MAGIC)
        .and_then(|_| f.sync_all())
        .map_err(|e| StorageError::io(&path, e))?;
    sync_dir(dir)?;
    Ok((f, path))
}

/// Statistics of a replay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    /// Records decoded and handed to the callback.
    pub records: u64,
    /// Torn tails cut off the last segment.
    pub tail_truncations: u64,
    /// Corrupt records found before the end of a non-last segment.
    pub corrupt_records: u64,
    /// Highest segment id seen (0 if none).
    pub last_segment: u64,
}

/// Replays every segment in `dir` in order. A bad record in the last segment
/// truncates the file there; a bad record in an earlier segment is reported
/// and the rest of that segment skipped.
pub fn replay(dir: &Path, mut f: impl FnMut(u64, WalRecord)) -> Result<ReplayStats, StorageError> {
    let ids = list_segments(dir)?;
    let mut stats = ReplayStats::default();
    for (i, &id) in ids.iter().enumerate() {
        let path = segment_path(dir, id);
        let mut buf = Vec::new();
        File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut buf))
            .map_err(|e| StorageError::io(&path, e))?;
        let scan = scan_segment(&buf, |r| {
            stats.records += 1;
            f(id, r)
        });
        stats.last_segment = id;
        if let Some((offset, reason)) = scan.error {
            if i + 1 == ids.len() {
                tracing::warn!(path = %path.display(), offset, %reason, "truncating torn WAL tail");
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| StorageError::io(&path, e))?;
                file.set_len(scan.good_len)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| StorageError::io(&path, e))?;
                stats.tail_truncations += 1;
            } else {
                tracing::warn!(path = %path.display(), offset, %reason, "corrupt WAL record; skipping the rest of the segment");
                stats.corrupt_records += 1;
            }
        }
    }
    Ok(stats)
}

impl Wal {
    /// Opens a new segment with id `segment` in `dir` (created if missing).
    pub fn create(dir: &Path, segment: u64, policy: WalSync) -> Result<Wal, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let (file, path) = create_segment(dir, segment)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            policy,
            active: Mutex::new(Active {
                file: Arc::new(file),
                path,
                segment,
                offset: SEGMENT_MAGIC.len() as u64,
                seq: 0,
                last_sync: Instant::now(),
            }),
            sync: Mutex::new(SyncState {
                synced: 0,
                syncing: false,
            }),
            synced_cv: Condvar::new(),
            counters: WalCounters::default(),
        })
    }

    /// Appends one framed record (from [`encode_record`]) and makes it as
    /// durable as the policy asks before returning.
    pub fn append(&self, frame: &[u8]) -> Result<(), StorageError> {
        let (seq, due) = {
            let mut a = self.active.lock();
            if let Err(e) = (&*a.file).write_all(frame) {
                // Cut off the partial record so later records stay readable.
                let _ = a.file.set_len(a.offset);
                let _ = (&*a.file).seek(SeekFrom::Start(a.offset));
                return Err(StorageError::io(&a.path, e));
            }
            a.offset += frame.len() as u64;
            a.seq += 1;
            let due = match self.policy {
                WalSync::Always => true,
                WalSync::Interval(d) => a.last_sync.elapsed() >= d,
                WalSync::Never => false,
            };
            (a.seq, due)
        };
        self.counters
            .bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        if due {
            self.sync_to(seq)?;
        }
        Ok(())
    }

    /// Blocks until every record up to `seq` is fsynced (group commit).
    fn sync_to(&self, seq: u64) -> Result<(), StorageError> {
        let mut s = self.sync.lock();
        loop {
            if s.synced >= seq {
                return Ok(());
            }
            if s.syncing {
                self.synced_cv.wait(&mut s);
                continue;
            }
            s.syncing = true;
            drop(s);
            let (target, file, path) = {
                let mut a = self.active.lock();
                a.last_sync = Instant::now();
                (a.seq, a.file.clone(), a.path.clone())
            };
            let res = file.sync_data();
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            s = self.sync.lock();
            s.syncing = false;
            if res.is_ok() {
                s.synced = s.synced.max(target);
            }
            self.synced_cv.notify_all();
            res.map_err(|e| StorageError::io(&path, e))?;
        }
    }

    /// fsyncs everything written so far (used by `maintain` for the
    /// interval policy).
    pub fn sync_now(&self) -> Result<(), StorageError> {
        let seq = self.active.lock().seq;
        self.sync_to(seq)
    }

    /// Seals the current segment (fsynced) and starts a new one. Returns the
    /// new segment id: every record written before the call lives in a
    /// segment with a smaller id. The caller must hold off appenders.
    pub fn rotate(&self) -> Result<u64, StorageError> {
        let mut a = self.active.lock();
        a.file
            .sync_data()
            .map_err(|e| StorageError::io(&a.path, e))?;
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        let next = a.segment + 1;
        let (file, path) = create_segment(&self.dir, next)?;
        a.file = Arc::new(file);
        a.path = path;
        a.segment = next;
        a.offset = SEGMENT_MAGIC.len() as u64;
        a.last_sync = Instant::now();
        // Everything before the rotation is durable now.
        let seq = a.seq;
        drop(a);
        let mut s = self.sync.lock();
        s.synced = s.synced.max(seq);
        Ok(next)
    }

    /// Deletes every segment with an id below `segment`.
    pub fn remove_below(&self, segment: u64) -> Result<(), StorageError> {
        for id in list_segments(&self.dir)? {
            if id < segment {
                let p = segment_path(&self.dir, id);
                std::fs::remove_file(&p).map_err(|e| StorageError::io(&p, e))?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Total bytes of all segment files on disk.
    pub fn disk_bytes(&self) -> u64 {
        list_segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| std::fs::metadata(segment_path(&self.dir, id)).ok())
            .map(|m| m.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(tenant: &str, n: usize, seed: u64) -> WalRecord {
        WalRecord {
            tenant: tenant.into(),
            streams: vec![PushStream {
                labels: Labels::from_pairs([("app", format!("a{seed}"))]),
                entries: (0..n)
                    .map(|i| {
                        let line = format!("line {seed} {i} é");
                        // The seed's digits, as a range of the line.
                        let seed_end = 5 + seed.to_string().len() as u32;
                        LogEntry {
                            timestamp_ns: seed as i64 * 1000 + i as i64,
                            structured_metadata: vec![("k".into(), format!("v{i}"))],
                            // Every level, and none.
                            detected_level: Level::from_code(i as u8 % 9),
                            line_metadata: LineMetadata::checked("seed", &line, 5, seed_end)
                                .into_iter()
                                .collect(),
                            line,
                        }
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let r = rec("t1", 5, 7);
        let frame = encode_record(&r.tenant, &r.streams);
        let got = decode_payload(&frame[FRAME_HEADER..]).expect("decodes");
        assert_eq!(got, r);
    }

    #[test]
    fn metadata_round_trips_and_ranges_are_checked_against_their_line() {
        let r = rec("t1", 10, 42);
        let meta: Vec<(&str, &str)> = r.streams[0].entries[1].metadata().collect();
        assert_eq!(
            meta,
            [("detected_level", "trace"), ("k", "v1"), ("seed", "42")]
        );
        let frame = encode_record(&r.tenant, &r.streams);
        let got = decode_payload(&frame[FRAME_HEADER..]).expect("decodes");
        assert_eq!(got, r);
        // A range past its line is refused, not served as a wrong value.
        let mut bad = r.clone();
        bad.streams[0].entries[0].line_metadata[0].end = 99;
        let frame = encode_record(&bad.tenant, &bad.streams);
        let err = decode_payload(&frame[FRAME_HEADER..]).expect_err("refused");
        assert!(err.contains("outside its line"), "{err}");
    }

    #[test]
    fn a_level_is_one_byte_and_an_unknown_code_is_refused() {
        let mut r = rec("t1", 1, 42);
        let entry = &mut r.streams[0].entries[0];
        entry.detected_level = None;
        let without = encode_record(&r.tenant, &r.streams).len();
        r.streams[0].entries[0].detected_level = Some(Level::Warn);
        let frame = encode_record(&r.tenant, &r.streams);
        assert_eq!(frame.len(), without, "the byte is there either way");
        // The level byte follows the one owned pair ("k" = "v0") and comes
        // before the line metadata: a count, "seed", a start and an end.
        let mut payload = frame[FRAME_HEADER..].to_vec();
        let at = payload.len() - (1 + 5 + 1 + 1) - 1;
        assert_eq!(&payload[at - 3..=at], b"\x02v0\x04");
        payload[at] = 9;
        let err = decode_payload(&payload).expect_err("refused");
        assert!(err.contains("unknown level 9"), "{err}");
    }

    #[test]
    fn version_2_records_still_decode() {
        // A version 2 payload as the previous release wrote it: line
        // metadata, and a level as an ordinary pair.
        let mut p = vec![2u8];
        put_str(&mut p, "t");
        put_varint(&mut p, 1);
        put_varint(&mut p, 0);
        put_varint(&mut p, 1);
        p.extend_from_slice(&7i64.to_le_bytes());
        put_str(&mut p, "id=abc");
        put_varint(&mut p, 1);
        put_str(&mut p, "detected_level");
        put_str(&mut p, "warn");
        put_varint(&mut p, 1);
        put_str(&mut p, "id");
        put_varint(&mut p, 3);
        put_varint(&mut p, 6);
        let got = decode_payload(&p).expect("decodes");
        let e = &got.streams[0].entries[0];
        assert_eq!(e.detected_level, None);
        let meta: Vec<(&str, &str)> = e.metadata().collect();
        assert_eq!(meta, [("detected_level", "warn"), ("id", "abc")]);
    }

    #[test]
    fn version_1_records_still_decode() {
        // A version 1 payload as earlier releases wrote it: no line metadata.
        let mut p = vec![1u8];
        put_str(&mut p, "t");
        put_varint(&mut p, 1);
        put_varint(&mut p, 1);
        put_str(&mut p, "app");
        put_str(&mut p, "api");
        put_varint(&mut p, 1);
        p.extend_from_slice(&7i64.to_le_bytes());
        put_str(&mut p, "hello");
        put_varint(&mut p, 1);
        put_str(&mut p, "trace_id");
        put_str(&mut p, "abc");
        let got = decode_payload(&p).expect("decodes");
        let mut e = LogEntry::new(7, "hello");
        e.structured_metadata
            .push(("trace_id".into(), "abc".into()));
        assert_eq!(got.streams[0].entries, [e]);
        assert_eq!(got.streams[0].labels, Labels::from_pairs([("app", "api")]));
    }

    #[test]
    fn group_commit_writes_and_replays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Arc::new(Wal::create(dir.path(), 1, WalSync::Always).expect("create"));
        std::thread::scope(|s| {
            for t in 0..4 {
                let wal = wal.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        let r = rec("t", 3, t * 100 + i);
                        wal.append(&encode_record(&r.tenant, &r.streams))
                            .expect("append");
                    }
                });
            }
        });
        assert!(wal.counters.fsyncs.load(Ordering::Relaxed) <= 100);
        let mut n = 0;
        let stats = replay(dir.path(), |_, _| n += 1).expect("replay");
        assert_eq!(n, 100);
        assert_eq!(stats.tail_truncations, 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn damaged_segment_replays_a_prefix(
            sizes in proptest::collection::vec(0usize..6, 1..12),
            cut in any::<prop::sample::Index>(),
            flip in any::<Option<prop::sample::Index>>(),
        ) {
            let records: Vec<WalRecord> = sizes.iter().enumerate().map(|(i, &n)| rec("t", n, i as u64)).collect();
            let mut buf = SEGMENT_MAGIC.to_vec();
            for r in &records {
                buf.extend_from_slice(&encode_record(&r.tenant, &r.streams));
            }
            let cut = cut.index(buf.len() + 1);
            buf.truncate(cut);
            if let Some(flip) = flip && !buf.is_empty() {
                let i = flip.index(buf.len());
                buf[i] ^= 0x5a;
            }
            let mut got = Vec::new();
            let scan = scan_segment(&buf, |r| got.push(r));
            prop_assert!(got.len() <= records.len());
            prop_assert_eq!(&records[..got.len()], &got[..]);
            prop_assert!(scan.good_len as usize <= buf.len());
        }
    }

    #[test]
    fn torn_tail_is_truncated_on_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::create(dir.path(), 3, WalSync::Never).expect("create");
        for i in 0..3 {
            let r = rec("t", 2, i);
            wal.append(&encode_record(&r.tenant, &r.streams))
                .expect("append");
        }
        let p = segment_path(dir.path(), 3);
        let len = std::fs::metadata(&p).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&p).expect("open");
        f.set_len(len - 5).expect("truncate");
        let mut n = 0;
        let stats = replay(dir.path(), |_, _| n += 1).expect("replay");
        assert_eq!(n, 2);
        assert_eq!(stats.tail_truncations, 1);
        let mut n2 = 0;
        let stats2 = replay(dir.path(), |_, _| n2 += 1).expect("replay");
        assert_eq!((n2, stats2.tail_truncations), (2, 0));
    }
}
