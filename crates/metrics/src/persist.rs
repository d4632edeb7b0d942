//! The metric store on disk: a write-ahead log and a snapshot, both written and read
//! here, plus the little binary codec they share.
//!
//! ```text
//! <dir>/wal.log        records, appended and fsynced once per ingest/apply call:
//!                      ┌──────────┬──────────┬─────────────────────────────┐
//!                      │ len u32le│ crc32 u32│ payload (len bytes)          │
//!                      └──────────┴──────────┴─────────────────────────────┘
//!                      payload = version u8 (1) | seq u64 | tenant str
//!                              | new series  u32 n × (id u64, labels)
//!                              | samples     u32 n × (id u64, ts i64, value f64, kind u8)
//!                              | states      u32 n × (key 2×u64, state)
//! <dir>/snapshot.zst   "ISMSNAP1" | zstd( body | crc32(body) u32le )
//!                      body = last_seq u64 | tenants u32 n ×
//!                             (name str, next_id u64,
//!                              series u32 n × (id u64, total f64, labels, samples u32 n × (ts i64, value f64)),
//!                              states u32 n × (key 2×u64, state))
//! <dir>/snapshot.zst.tmp   the next snapshot while it is written (fsync, rename, fsync dir)
//!
//! str = len u32 | utf-8 bytes;  labels = u32 n × (str, str)
//! state = 0 | start u64 | last_time u64 | value f64                       (number)
//!       | 1 | start u64 | last_time u64 | count u64 | sum f64
//!           | bounds u32 n × f64 | buckets u32 n × u64                      (histogram)
//! ```
//!
//! Every WAL record carries a sequence number and the snapshot the last one it
//! includes, so a crash between writing a snapshot and truncating the WAL replays
//! nothing twice. A damaged *last* WAL record is a torn write (crash mid-append): it
//! is skipped with a warning and cut off. Damage before the last record, or a
//! snapshot whose checksum or structure is wrong, is an error: never served.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use inferscope_model::Labels;

use crate::accumulate::{HistState, StreamKey, StreamState};
use crate::error::MetricsError;
use crate::types::UpdateKind;

pub(crate) const WAL_FILE: &str = "wal.log";
pub(crate) const SNAPSHOT_FILE: &str = "snapshot.zst";
const SNAPSHOT_TMP: &str = "snapshot.zst.tmp";
const SNAPSHOT_MAGIC: &[u8; 8] = b"ISMSNAP1";
const RECORD_VERSION: u8 = 1;
/// Larger records are taken as corruption.
const MAX_RECORD: u32 = 1 << 30;

/// One sample update in a WAL record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SampleRec {
    pub(crate) id: u64,
    pub(crate) ts: i64,
    pub(crate) value: f64,
    pub(crate) kind: UpdateKind,
}

/// One WAL record: everything one ingest/apply call changed in one tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) tenant: String,
    pub(crate) new_series: Vec<(u64, Labels)>,
    pub(crate) samples: Vec<SampleRec>,
    pub(crate) states: Vec<(StreamKey, StreamState)>,
}

// ---- codec -------------------------------------------------------------------

pub(crate) struct Enc<'a>(pub(crate) &'a mut Vec<u8>);

impl Enc<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn labels(&mut self, l: &Labels) {
        self.len(l.len());
        for (k, v) in l.iter() {
            self.str(k);
            self.str(v);
        }
    }
    pub(crate) fn state(&mut self, key: &StreamKey, st: &StreamState) {
        self.u64(key.0);
        self.u64(key.1);
        match st {
            StreamState::Number {
                start,
                last_time,
                value,
            } => {
                self.u8(0);
                self.u64(*start);
                self.u64(*last_time);
                self.f64(*value);
            }
            StreamState::Histogram(h) => {
                self.u8(1);
                self.u64(h.start);
                self.u64(h.last_time);
                self.u64(h.count);
                self.f64(h.sum);
                self.len(h.bounds.len());
                for b in &h.bounds {
                    self.f64(*b);
                }
                self.len(h.buckets.len());
                for b in &h.buckets {
                    self.u64(*b);
                }
            }
        }
    }
}

pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }
    pub(crate) fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!("truncated at byte {}", self.pos));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.arr::<1>()?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A count of items of at least `min_size` bytes each, checked against the
    /// remaining input so a corrupt count cannot make us allocate wildly.
    pub(crate) fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() - self.pos {
            return Err(format!("count {n} larger than the remaining input"));
        }
        Ok(n)
    }
    pub(crate) fn str(&mut self) -> Result<String, String> {
        let n = self.count(1)?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not utf-8".to_string())
    }
    pub(crate) fn labels(&mut self) -> Result<Labels, String> {
        let n = self.count(8)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((self.str()?, self.str()?));
        }
        Ok(Labels::from_pairs(pairs))
    }
    pub(crate) fn state(&mut self) -> Result<(StreamKey, StreamState), String> {
        let key = (self.u64()?, self.u64()?);
        let st = match self.u8()? {
            0 => StreamState::Number {
                start: self.u64()?,
                last_time: self.u64()?,
                value: self.f64()?,
            },
            1 => {
                let start = self.u64()?;
                let last_time = self.u64()?;
                let count = self.u64()?;
                let sum = self.f64()?;
                let nb = self.count(8)?;
                let bounds = (0..nb).map(|_| self.f64()).collect::<Result<_, _>>()?;
                let nc = self.count(8)?;
                let buckets = (0..nc).map(|_| self.u64()).collect::<Result<_, _>>()?;
                StreamState::Histogram(HistState {
                    start,
                    last_time,
                    count,
                    sum,
                    bounds,
                    buckets,
                })
            }
            t => return Err(format!("unknown stream state tag {t}")),
        };
        Ok((key, st))
    }
}

fn kind_byte(kind: UpdateKind) -> u8 {
    match kind {
        UpdateKind::CounterAdd => 0,
        UpdateKind::GaugeSet => 1,
    }
}

pub(crate) fn encode_record(r: &Record, out: &mut Vec<u8>) {
    let mut e = Enc(out);
    e.u8(RECORD_VERSION);
    e.u64(r.seq);
    e.str(&r.tenant);
    e.len(r.new_series.len());
    for (id, labels) in &r.new_series {
        e.u64(*id);
        e.labels(labels);
    }
    e.len(r.samples.len());
    e.0.reserve(r.samples.len() * 25 + r.states.len() * 64 + 4);
    for s in &r.samples {
        let mut b = [0u8; 25];
        b[..8].copy_from_slice(&s.id.to_le_bytes());
        b[8..16].copy_from_slice(&s.ts.to_le_bytes());
        b[16..24].copy_from_slice(&s.value.to_bits().to_le_bytes());
        b[24] = kind_byte(s.kind);
        e.0.extend_from_slice(&b);
    }
    e.len(r.states.len());
    for (k, st) in &r.states {
        e.state(k, st);
    }
}

pub(crate) fn decode_record(buf: &[u8]) -> Result<Record, String> {
    let mut d = Dec::new(buf);
    let version = d.u8()?;
    if version != RECORD_VERSION {
        return Err(format!("unknown record version {version}"));
    }
    let seq = d.u64()?;
    let tenant = d.str()?;
    let n = d.count(12)?;
    let mut new_series = Vec::with_capacity(n);
    for _ in 0..n {
        new_series.push((d.u64()?, d.labels()?));
    }
    let n = d.count(25)?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let id = d.u64()?;
        let ts = d.i64()?;
        let value = d.f64()?;
        let kind = match d.u8()? {
            0 => UpdateKind::CounterAdd,
            1 => UpdateKind::GaugeSet,
            k => return Err(format!("unknown update kind {k}")),
        };
        samples.push(SampleRec {
            id,
            ts,
            value,
            kind,
        });
    }
    let n = d.count(17)?;
    let mut states = Vec::with_capacity(n);
    for _ in 0..n {
        states.push(d.state()?);
    }
    if !d.done() {
        return Err("trailing bytes after record".to_string());
    }
    Ok(Record {
        seq,
        tenant,
        new_series,
        samples,
        states,
    })
}

// ---- WAL ---------------------------------------------------------------------

/// The append side of the WAL.
pub(crate) struct Wal {
    path: PathBuf,
    file: File,
    len: u64,
    buf: Vec<u8>,
}

impl Wal {
    /// Opens (creating) the WAL, returns it with every intact record. A torn last
    /// record is cut off; damage before it is an error.
    pub(crate) fn open(dir: &Path) -> Result<(Wal, Vec<Record>), MetricsError> {
        let path = dir.join(WAL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| MetricsError::io("open wal", &path, e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| MetricsError::io("read wal", &path, e))?;
        let mut records = Vec::new();
        let mut pos = 0usize;
        let total = data.len();
        while pos < total {
            let header = data.get(pos..pos + 8);
            let torn = |reason: &str| {
                tracing::warn!(path = %path.display(), offset = pos, reason, "skipping torn last metric wal record");
            };
            let Some(header) = header else {
                torn("short header");
                break;
            };
            let mut len_bytes = [0u8; 4];
            len_bytes.copy_from_slice(&header[..4]);
            let mut crc_bytes = [0u8; 4];
            crc_bytes.copy_from_slice(&header[4..]);
            let len = u32::from_le_bytes(len_bytes);
            let crc = u32::from_le_bytes(crc_bytes);
            let end = pos + 8 + len as usize;
            if len > MAX_RECORD || end > total {
                // The length runs past the end of the file: a record cut short.
                torn("record runs past the end of the file");
                break;
            }
            let payload = &data[pos + 8..end];
            let bad = if crc32fast::hash(payload) != crc {
                Some("checksum mismatch".to_string())
            } else {
                match decode_record(payload) {
                    Ok(r) => {
                        records.push(r);
                        None
                    }
                    Err(e) => Some(e),
                }
            };
            if let Some(reason) = bad {
                if end == total {
                    torn(&reason);
                    break;
                }
                return Err(MetricsError::CorruptWal {
                    path,
                    offset: pos as u64,
                    reason,
                });
            }
            pos = end;
        }
        if pos < total {
            file.set_len(pos as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| MetricsError::io("truncate torn wal tail", &path, e))?;
        }
        Ok((
            Wal {
                path,
                file,
                len: pos as u64,
                buf: Vec::new(),
            },
            records,
        ))
    }

    /// Appends one record and fsyncs. On failure the file is cut back to its
    /// previous length so no partial record stays in the middle of the log.
    pub(crate) fn append(&mut self, record: &Record) -> Result<(), MetricsError> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; 8]);
        encode_record(record, &mut self.buf);
        let payload_len = self.buf.len() - 8;
        let len32 = u32::try_from(payload_len)
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or_else(|| {
                MetricsError::io(
                    "append to wal",
                    &self.path,
                    std::io::Error::other("record too large"),
                )
            })?;
        let crc = crc32fast::hash(&self.buf[8..]);
        self.buf[..4].copy_from_slice(&len32.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let result = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(MetricsError::io("append to wal", &self.path, e))
            }
        }
    }

    /// Empties the WAL after a snapshot holds everything in it.
    pub(crate) fn reset(&mut self) -> Result<(), MetricsError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| MetricsError::io("truncate wal", &self.path, e))?;
        self.len = 0;
        Ok(())
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

// ---- snapshot ----------------------------------------------------------------

/// A writer that checksums what passes through it.
struct CrcWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot atomically: `body` is called with a writer for the body and a
/// scratch buffer; the file is written to a temporary name, fsynced, renamed over
/// the old snapshot, and the directory fsynced.
pub(crate) fn write_snapshot(
    dir: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), MetricsError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let path = dir.join(SNAPSHOT_FILE);
    let tmp_ref = &tmp;
    let io = |op: &'static str| move |e| MetricsError::io(op, tmp_ref, e);
    let file = File::create(&tmp).map_err(io("create snapshot"))?;
    let mut out = BufWriter::new(file);
    out.write_all(SNAPSHOT_MAGIC)
        .map_err(io("write snapshot"))?;
    let encoder = zstd::Encoder::new(out, 1).map_err(io("start snapshot compression"))?;
    let mut crc = CrcWriter {
        inner: encoder,
        hasher: crc32fast::Hasher::new(),
    };
    body(&mut crc).map_err(io("write snapshot"))?;
    let CrcWriter { mut inner, hasher } = crc;
    inner
        .write_all(&hasher.finalize().to_le_bytes())
        .map_err(io("write snapshot"))?;
    let out = inner.finish().map_err(io("finish snapshot compression"))?;
    let file = out
        .into_inner()
        .map_err(|e| io("flush snapshot")(e.into_error()))?;
    file.sync_all().map_err(io("fsync snapshot"))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| MetricsError::io("rename snapshot", &path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MetricsError::io("fsync metrics dir", dir, e))?;
    Ok(())
}

/// Reads and checks the snapshot body; `None` when there is no snapshot.
pub(crate) fn read_snapshot(dir: &Path) -> Result<Option<Vec<u8>>, MetricsError> {
    let path = dir.join(SNAPSHOT_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MetricsError::io("read snapshot", &path, e)),
    };
    let corrupt = |reason: String| MetricsError::CorruptSnapshot {
        path: path.clone(),
        reason,
    };
    let Some(compressed) = data.strip_prefix(SNAPSHOT_MAGIC.as_slice()) else {
        return Err(corrupt("bad magic".to_string()));
    };
    let mut body =
        zstd::decode_all(compressed).map_err(|e| corrupt(format!("decompression failed: {e}")))?;
    if body.len() < 4 {
        return Err(corrupt("too short".to_string()));
    }
    let crc_at = body.len() - 4;
    let mut crc_bytes = [0u8; 4];
    crc_bytes.copy_from_slice(&body[crc_at..]);
    body.truncate(crc_at);
    if crc32fast::hash(&body) != u32::from_le_bytes(crc_bytes) {
        return Err(corrupt("checksum mismatch".to_string()));
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            tenant: "t".into(),
            new_series: vec![(1, Labels::from_pairs([("__name__", "x")]))],
            samples: vec![SampleRec {
                id: 1,
                ts: 5,
                value: 2.5,
                kind: UpdateKind::CounterAdd,
            }],
            states: vec![
                (
                    (1, 2),
                    StreamState::Number {
                        start: 1,
                        last_time: 2,
                        value: 3.0,
                    },
                ),
                (
                    (3, 4),
                    StreamState::Histogram(HistState {
                        start: 1,
                        last_time: 2,
                        count: 3,
                        sum: 4.0,
                        bounds: vec![1.0],
                        buckets: vec![1, 2],
                    }),
                ),
            ],
        }
    }

    #[test]
    fn record_round_trips() {
        let r = record(7);
        let mut buf = Vec::new();
        encode_record(&r, &mut buf);
        assert_eq!(decode_record(&buf).expect("decodes"), r);
        for cut in 0..buf.len() {
            assert!(decode_record(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn torn_tail_is_cut_and_middle_damage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut wal, recs) = Wal::open(dir.path()).expect("open");
            assert!(recs.is_empty());
            wal.append(&record(1)).expect("append");
            wal.append(&record(2)).expect("append");
        }
        let path = dir.path().join(WAL_FILE);
        let full = fs::read(&path).expect("read");
        // Torn: the last record cut in half.
        fs::write(&path, &full[..full.len() - 10]).expect("write");
        let (wal, recs) = Wal::open(dir.path()).expect("torn tail is skipped");
        assert_eq!(recs.len(), 1);
        assert_eq!(wal.len(), (full.len() / 2) as u64);
        drop(wal);
        // Damage in the first of two records.
        let mut bad = full.clone();
        bad[12] ^= 0xff;
        fs::write(&path, &bad).expect("write");
        assert!(matches!(
            Wal::open(dir.path()),
            Err(MetricsError::CorruptWal { .. })
        ));
    }

    #[test]
    fn corrupt_snapshot_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_snapshot(dir.path(), |w| w.write_all(b"hello snapshot")).expect("write");
        assert_eq!(
            read_snapshot(dir.path()).expect("read").as_deref(),
            Some(&b"hello snapshot"[..])
        );
        let path = dir.path().join(SNAPSHOT_FILE);
        let mut data = fs::read(&path).expect("read");
        let last = data.len() - 3;
        data[last] ^= 0x55;
        fs::write(&path, &data).expect("write");
        assert!(matches!(
            read_snapshot(dir.path()),
            Err(MetricsError::CorruptSnapshot { .. })
        ));
    }
}
