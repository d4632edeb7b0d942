//! [`MetricStore`]: the series of every tenant in memory, durable through a WAL and
//! a snapshot ([`crate::persist`]), answering selections for the PromQL engine.
//!
//! Writes (`ingest`, `apply`) are serialized by the WAL lock: each builds one batch
//! (new series, sample updates, accumulator state changes) against the current state
//! under a read lock, appends it to the WAL and fsyncs, and only then applies it
//! under the write lock, so nothing is visible or acknowledged before it is durable
//! and queries are blocked only for the in-memory apply.
//!
//! Each series keeps its samples sorted by time. Counters are the store's own
//! running totals: a `CounterAdd` adds to the total and records it at the update's
//! time (updates at the same time coalesce into one sample); a `GaugeSet` replaces
//! the sample at its time. Series are found by an order-independent hash of their
//! labels and selected through postings (label name → value → series ids).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use inferscope_model::{LabelMatcher, Labels, matches_all};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use parking_lot::{Mutex, RwLock};

use crate::accumulate::{FastMap, StreamKey, StreamState};
use crate::error::MetricsError;
use crate::otlp::{self, IngestOutcome, SeriesBase, Sink, labels_hash, pair_hash};
use crate::persist::{self, Dec, Enc, Record, SampleRec, Wal};
use crate::types::{HistogramObserver, PointUpdate, UpdateKind};

/// Store settings.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Samples older than this (relative to `maintain`'s `now_ns`) are dropped;
    /// 0 keeps everything.
    pub retention_ns: i64,
}

/// The samples of one series in a time range.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    /// The series labels, `__name__` included.
    pub labels: Labels,
    /// `(ts_ns, value)`, ascending by time.
    pub samples: Vec<(i64, f64)>,
}

/// Sizes, for `/metrics` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Tenants with any state.
    pub tenants: usize,
    /// Series in memory.
    pub series: usize,
    /// Samples in memory.
    pub samples: usize,
    /// Source streams the accumulator remembers.
    pub streams: usize,
    /// Bytes in the WAL since the last checkpoint.
    pub wal_bytes: u64,
}

struct Series {
    labels: Labels,
    samples: Vec<(i64, f64)>,
    /// Running total of a counter series (the value of its latest sample).
    total: f64,
}

impl Series {
    fn apply(&mut self, ts: i64, value: f64, kind: UpdateKind) {
        let pos = self.samples.partition_point(|s| s.0 < ts);
        match kind {
            UpdateKind::GaugeSet => match self.samples.get_mut(pos) {
                Some(s) if s.0 == ts => s.1 = value,
                _ => self.samples.insert(pos, (ts, value)),
            },
            UpdateKind::CounterAdd => {
                self.total += value;
                if pos == self.samples.len() {
                    self.samples.push((ts, self.total));
                    return;
                }
                // At or before existing samples: this one and all later ones grow.
                if self.samples[pos].0 != ts {
                    let before = if pos > 0 {
                        self.samples[pos - 1].1
                    } else {
                        self.samples[pos].1
                    };
                    self.samples.insert(pos, (ts, before));
                }
                for s in &mut self.samples[pos..] {
                    s.1 += value;
                }
            }
        }
    }

    fn range(&self, start: i64, end: i64) -> &[(i64, f64)] {
        let lo = self.samples.partition_point(|s| s.0 < start);
        let hi = self.samples.partition_point(|s| s.0 <= end);
        &self.samples[lo..hi.max(lo)]
    }
}

#[derive(Default)]
struct TenantData {
    series: FastMap<u64, Series>,
    by_hash: FastMap<u64, Vec<u64>>,
    postings: HashMap<String, HashMap<String, Vec<u64>>>,
    streams: FastMap<StreamKey, StreamState>,
    next_id: u64,
    /// Per source stream: the series its last point fed, so a known stream's updates
    /// skip building and looking up label sets. Not persisted (rebuilt on first use),
    /// cleared whenever series are dropped.
    stream_ids: FastMap<StreamKey, CachedIds>,
    /// Per source stream: the series of the observer's derived updates of its last
    /// point, by position (checked against the labels before use).
    derived_ids: FastMap<StreamKey, Box<[u64]>>,
}

/// The series one stream's points fed, for one shape (names and bounds).
struct CachedIds {
    shape: u64,
    ids: Box<[u64]>,
}

/// Cache entries a batch learned, applied with its record.
#[derive(Default)]
struct CacheUpdates {
    ids: FastMap<StreamKey, CachedIds>,
    derived: FastMap<StreamKey, Box<[u64]>>,
}

impl TenantData {
    fn add_series(&mut self, id: u64, labels: Labels) {
        if self.series.contains_key(&id) {
            return;
        }
        self.by_hash
            .entry(labels_hash(labels.iter()))
            .or_default()
            .push(id);
        for (k, v) in labels.iter() {
            self.postings
                .entry(k.to_string())
                .or_default()
                .entry(v.to_string())
                .or_default()
                .push(id);
        }
        self.series.insert(
            id,
            Series {
                labels,
                samples: Vec::new(),
                total: 0.0,
            },
        );
        self.next_id = self.next_id.max(id + 1);
    }

    fn apply(&mut self, rec: Record) {
        self.series.reserve(rec.new_series.len());
        for (id, labels) in rec.new_series {
            self.add_series(id, labels);
        }
        for s in &rec.samples {
            match self.series.get_mut(&s.id) {
                Some(series) => series.apply(s.ts, s.value, s.kind),
                None => tracing::warn!(series = s.id, "metric wal sample for an unknown series"),
            }
        }
        self.streams.reserve(rec.states.len());
        for (key, state) in rec.states {
            self.streams.insert(key, state);
        }
    }

    fn apply_cache(&mut self, cache: CacheUpdates) {
        self.stream_ids.extend(cache.ids);
        self.derived_ids.extend(cache.derived);
    }

    /// The labels of series `id`, committed or created by `batch`.
    fn labels_of<'a>(&'a self, id: u64, batch: &'a [(u64, Labels)]) -> Option<&'a Labels> {
        if let Some(s) = self.series.get(&id) {
            return Some(&s.labels);
        }
        let first = batch.first()?.0;
        let (bid, labels) = batch.get(usize::try_from(id.checked_sub(first)?).ok()?)?;
        (*bid == id).then_some(labels)
    }

    fn rebuild_index(&mut self) {
        self.by_hash.clear();
        self.postings.clear();
        self.stream_ids.clear();
        self.derived_ids.clear();
        let mut ids: Vec<u64> = self.series.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(series) = self.series.get(&id) else {
                continue;
            };
            self.by_hash
                .entry(labels_hash(series.labels.iter()))
                .or_default()
                .push(id);
            for (k, v) in series.labels.iter() {
                self.postings
                    .entry(k.to_string())
                    .or_default()
                    .entry(v.to_string())
                    .or_default()
                    .push(id);
            }
        }
    }

    /// Ids of the series that may match: narrowed by the most selective posting
    /// lists, then every matcher is checked on the labels.
    fn select_ids(&self, matchers: &[LabelMatcher]) -> Vec<u64> {
        let mut best: Option<Vec<u64>> = None;
        for m in matchers {
            if m.matches_empty() {
                continue;
            }
            let Some(values) = self.postings.get(&m.name) else {
                return Vec::new();
            };
            let mut ids: Vec<u64> = match m.op {
                inferscope_model::MatchOp::Eq => values.get(&m.value).cloned().unwrap_or_default(),
                _ => {
                    let mut ids: Vec<u64> = values
                        .iter()
                        .filter(|(v, _)| m.matches(v))
                        .flat_map(|(_, ids)| ids.iter().copied())
                        .collect();
                    ids.sort_unstable();
                    ids
                }
            };
            if let Some(prev) = &best
                && ids.len() >= prev.len()
            {
                continue;
            }
            ids.dedup();
            best = Some(ids);
        }
        let candidates = best.unwrap_or_else(|| self.series.keys().copied().collect());
        candidates
            .into_iter()
            .filter(|id| {
                self.series
                    .get(id)
                    .is_some_and(|s| matches_all(matchers, &s.labels))
            })
            .collect()
    }

    fn matching<'a>(
        &'a self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.select_ids(matchers)
            .into_iter()
            .filter_map(|id| self.series.get(&id))
            .filter(move |s| !s.range(start, end).is_empty())
    }

    /// Drops samples before `cutoff`, then empty series and stale streams.
    fn retain_after(&mut self, cutoff: i64) {
        let before = self.series.len();
        self.series.retain(|_, s| {
            let keep_from = s.samples.partition_point(|x| x.0 < cutoff);
            s.samples.drain(..keep_from);
            if s.samples.capacity() > 2 * s.samples.len() + 16 {
                s.samples.shrink_to_fit();
            }
            !s.samples.is_empty()
        });
        let cutoff_u = u64::try_from(cutoff).unwrap_or(0);
        self.streams.retain(|_, st| st.last_time() >= cutoff_u);
        if self.series.len() != before {
            self.rebuild_index();
        }
    }
}

/// The metric store. `Send + Sync`: share it behind an `Arc`.
pub struct MetricStore {
    dir: PathBuf,
    opts: StoreOptions,
    tenants: RwLock<HashMap<String, TenantData>>,
    /// Held for the whole of every write and checkpoint: orders the WAL and keeps the
    /// state a batch was built against unchanged until it is applied.
    wal: Mutex<WalState>,
}

struct WalState {
    wal: Wal,
    next_seq: u64,
}

impl std::fmt::Debug for MetricStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricStore")
            .field("dir", &self.dir)
            .field("retention_ns", &self.opts.retention_ns)
            .finish_non_exhaustive()
    }
}

impl MetricStore {
    /// Opens the store in `dir` (created if missing): loads the snapshot, replays the
    /// WAL records after it. A corrupt snapshot or WAL is an error.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Self, MetricsError> {
        std::fs::create_dir_all(dir).map_err(|e| MetricsError::io("create metrics dir", dir, e))?;
        let mut tenants = HashMap::new();
        let mut last_seq = 0;
        if let Some(body) = persist::read_snapshot(dir)? {
            last_seq = decode_snapshot(&body, &mut tenants).map_err(|reason| {
                tracing::error!(dir = %dir.display(), reason, "corrupt metric snapshot");
                MetricsError::CorruptSnapshot {
                    path: dir.join(persist::SNAPSHOT_FILE),
                    reason,
                }
            })?;
        }
        let (wal, records) = Wal::open(dir)?;
        let mut next_seq = last_seq + 1;
        let mut replayed = 0usize;
        for rec in records {
            if rec.seq <= last_seq {
                continue;
            }
            next_seq = next_seq.max(rec.seq + 1);
            replayed += 1;
            let tenant: &mut TenantData = tenants.entry(rec.tenant.clone()).or_default();
            tenant.apply(rec);
        }
        tracing::info!(dir = %dir.display(), tenants = tenants.len(), replayed, "metric store opened");
        Ok(MetricStore {
            dir: dir.to_path_buf(),
            opts,
            tenants: RwLock::new(tenants),
            wal: Mutex::new(WalState { wal, next_seq }),
        })
    }

    /// Converts and stores an OTLP request for `tenant`. Returns after the WAL record
    /// is fsynced. Rejected points are counted in the outcome, not errors; an error
    /// means nothing of the request was stored.
    pub fn ingest(
        &self,
        tenant: &str,
        req: &ExportMetricsServiceRequest,
        observer: Option<&dyn HistogramObserver>,
    ) -> Result<IngestOutcome, MetricsError> {
        let mut outcome = IngestOutcome::default();
        self.write(tenant, |builder| {
            otlp::convert(req, observer, builder, &mut outcome)
        })?;
        Ok(outcome)
    }

    /// Stores updates computed elsewhere, with the same durability as `ingest`.
    pub fn apply(&self, tenant: &str, updates: Vec<PointUpdate>) -> Result<(), MetricsError> {
        self.write(tenant, |builder| {
            for u in updates {
                builder.emit_update(u);
            }
        })
    }

    fn write(
        &self,
        tenant: &str,
        fill: impl FnOnce(&mut BatchBuilder<'_>),
    ) -> Result<(), MetricsError> {
        let mut wal = self.wal.lock();
        let (record, cache) = {
            let tenants = self.tenants.read();
            let data = tenants.get(tenant);
            let mut builder = BatchBuilder::new(data);
            fill(&mut builder);
            builder.into_record(wal.next_seq, tenant)
        };
        if record.samples.is_empty() && record.states.is_empty() && record.new_series.is_empty() {
            return Ok(());
        }
        wal.wal.append(&record)?;
        wal.next_seq += 1;
        let mut tenants = self.tenants.write();
        let data = match tenants.get_mut(tenant) {
            Some(data) => data,
            None => tenants.entry(tenant.to_string()).or_default(),
        };
        data.apply(record);
        data.apply_cache(cache);
        Ok(())
    }

    /// Samples with `start_ns <= ts <= end_ns` of every series matching all
    /// `matchers` (`__name__` included), sorted by labels.
    pub fn select(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<SeriesSamples> {
        let tenants = self.tenants.read();
        let Some(t) = tenants.get(tenant) else {
            return Vec::new();
        };
        let mut out: Vec<SeriesSamples> = t
            .matching(matchers, start_ns, end_ns)
            .map(|s| SeriesSamples {
                labels: s.labels.clone(),
                samples: s.range(start_ns, end_ns).to_vec(),
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Label sets of the matching series with samples in the range, sorted.
    pub fn series(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<Labels> {
        let tenants = self.tenants.read();
        let Some(t) = tenants.get(tenant) else {
            return Vec::new();
        };
        let mut out: Vec<Labels> = t
            .matching(matchers, start_ns, end_ns)
            .map(|s| s.labels.clone())
            .collect();
        out.sort();
        out
    }

    /// Label names of the matching series with samples in the range, sorted.
    pub fn label_names(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<String> {
        let tenants = self.tenants.read();
        let Some(t) = tenants.get(tenant) else {
            return Vec::new();
        };
        let mut names: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in t.matching(matchers, start_ns, end_ns) {
            for (k, _) in s.labels.iter() {
                if seen.insert(k) {
                    names.push(k.to_string());
                }
            }
        }
        names.sort();
        names
    }

    /// Values of label `name` among the matching series with samples in the range,
    /// sorted.
    pub fn label_values(
        &self,
        tenant: &str,
        name: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<String> {
        let tenants = self.tenants.read();
        let Some(t) = tenants.get(tenant) else {
            return Vec::new();
        };
        let mut values: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in t.matching(matchers, start_ns, end_ns) {
            if let Some(v) = s.labels.get(name)
                && seen.insert(v)
            {
                values.push(v.to_string());
            }
        }
        values.sort();
        values
    }

    /// Checkpoint: drops samples older than the retention, writes the snapshot
    /// atomically and truncates the WAL.
    pub fn maintain(&self, now_ns: i64) -> Result<(), MetricsError> {
        let mut wal = self.wal.lock();
        if self.opts.retention_ns > 0 {
            let cutoff = now_ns.saturating_sub(self.opts.retention_ns);
            let mut tenants = self.tenants.write();
            for t in tenants.values_mut() {
                t.retain_after(cutoff);
            }
            tenants.retain(|_, t| !t.series.is_empty() || !t.streams.is_empty());
        }
        let last_seq = wal.next_seq - 1;
        {
            let tenants = self.tenants.read();
            persist::write_snapshot(&self.dir, |w| encode_snapshot(w, last_seq, &tenants))?;
        }
        wal.wal.reset()
    }

    /// Current sizes.
    pub fn stats(&self) -> StoreStats {
        let wal_bytes = self.wal.lock().wal.len();
        let tenants = self.tenants.read();
        let mut stats = StoreStats {
            tenants: tenants.len(),
            wal_bytes,
            ..StoreStats::default()
        };
        for t in tenants.values() {
            stats.series += t.series.len();
            stats.samples += t.series.values().map(|s| s.samples.len()).sum::<usize>();
            stats.streams += t.streams.len();
        }
        stats
    }
}

fn encode_snapshot(
    w: &mut dyn Write,
    last_seq: u64,
    tenants: &HashMap<String, TenantData>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    let mut e = Enc(&mut buf);
    e.u64(last_seq);
    e.len(tenants.len());
    for (name, t) in tenants {
        let mut e = Enc(&mut buf);
        e.str(name);
        e.u64(t.next_id);
        e.len(t.series.len());
        for (id, s) in &t.series {
            let mut e = Enc(&mut buf);
            e.u64(*id);
            e.f64(s.total);
            e.labels(&s.labels);
            e.len(s.samples.len());
            for (ts, v) in &s.samples {
                e.i64(*ts);
                e.f64(*v);
            }
            if buf.len() > 1 << 20 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        let mut e = Enc(&mut buf);
        e.len(t.streams.len());
        for (k, st) in &t.streams {
            e.state(k, st);
            if e.0.len() > 1 << 20 {
                w.write_all(e.0)?;
                e.0.clear();
            }
        }
    }
    w.write_all(&buf)
}

fn decode_snapshot(body: &[u8], tenants: &mut HashMap<String, TenantData>) -> Result<u64, String> {
    let mut d = Dec::new(body);
    let last_seq = d.u64()?;
    let n = d.count(16)?;
    for _ in 0..n {
        let name = d.str()?;
        let mut t = TenantData {
            next_id: d.u64()?,
            ..TenantData::default()
        };
        let ns = d.count(20)?;
        for _ in 0..ns {
            let id = d.u64()?;
            let total = d.f64()?;
            let labels = d.labels()?;
            let nsamples = d.count(16)?;
            let mut samples = Vec::with_capacity(nsamples);
            for _ in 0..nsamples {
                samples.push((d.i64()?, d.f64()?));
            }
            t.add_series(id, labels);
            if let Some(s) = t.series.get_mut(&id) {
                s.samples = samples;
                s.total = total;
            }
        }
        let nst = d.count(17)?;
        for _ in 0..nst {
            let (k, st) = d.state()?;
            t.streams.insert(k, st);
        }
        tenants.insert(name, t);
    }
    if !d.done() {
        return Err("trailing bytes after snapshot".to_string());
    }
    Ok(last_seq)
}

/// Builds one WAL record against the committed state of a tenant plus what the
/// batch itself created.
struct BatchBuilder<'a> {
    tenant: Option<&'a TenantData>,
    next_id: u64,
    new_series: Vec<(u64, Labels)>,
    new_by_hash: FastMap<u64, Vec<usize>>,
    samples: Vec<SampleRec>,
    states: FastMap<StreamKey, StreamState>,
    cache: CacheUpdates,
    /// Scratch for [`Sink::emit_derived`].
    derived_scratch: Vec<u64>,
}

impl<'a> BatchBuilder<'a> {
    fn new(tenant: Option<&'a TenantData>) -> Self {
        BatchBuilder {
            tenant,
            next_id: tenant.map_or(0, |t| t.next_id),
            new_series: Vec::new(),
            new_by_hash: FastMap::default(),
            samples: Vec::new(),
            states: FastMap::default(),
            cache: CacheUpdates::default(),
            derived_scratch: Vec::new(),
        }
    }

    fn into_record(self, seq: u64, tenant: &str) -> (Record, CacheUpdates) {
        (
            Record {
                seq,
                tenant: tenant.to_string(),
                new_series: self.new_series,
                samples: self.samples,
                states: self.states.into_iter().collect(),
            },
            self.cache,
        )
    }

    /// The labels of series `id`, committed or created in this batch.
    fn labels_of(&self, id: u64) -> Option<&Labels> {
        match self.tenant {
            Some(t) => t.labels_of(id, &self.new_series),
            None => {
                let first = self.new_series.first()?.0;
                let (bid, labels) = self
                    .new_series
                    .get(usize::try_from(id.checked_sub(first)?).ok()?)?;
                (*bid == id).then_some(labels)
            }
        }
    }

    /// The id of the series `labels`, created if new; `None` when the update is
    /// dropped (no labels or a NaN value).
    fn update_id(&mut self, labels: &Labels, value: f64) -> Option<u64> {
        if labels.is_empty() || value.is_nan() {
            return None;
        }
        let hash = labels_hash(labels.iter());
        Some(self.series_id(hash, |l| l == labels, || labels.clone()))
    }

    /// The id of the series with `hash` whose labels satisfy `eq`, creating it
    /// with `make` if there is none.
    fn series_id(
        &mut self,
        hash: u64,
        eq: impl Fn(&Labels) -> bool,
        make: impl FnOnce() -> Labels,
    ) -> u64 {
        if let Some(t) = self.tenant
            && let Some(ids) = t.by_hash.get(&hash)
        {
            for id in ids {
                if t.series.get(id).is_some_and(|s| eq(&s.labels)) {
                    return *id;
                }
            }
        }
        if let Some(idx) = self.new_by_hash.get(&hash) {
            for &i in idx {
                if eq(&self.new_series[i].1) {
                    return self.new_series[i].0;
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.new_by_hash
            .entry(hash)
            .or_default()
            .push(self.new_series.len());
        self.new_series.push((id, make()));
        id
    }
}

impl Sink for BatchBuilder<'_> {
    fn stream_state(&self, key: &StreamKey) -> Option<&StreamState> {
        self.states
            .get(key)
            .or_else(|| self.tenant.and_then(|t| t.streams.get(key)))
    }

    fn set_stream_state(&mut self, key: StreamKey, state: StreamState) {
        self.states.insert(key, state);
    }

    fn emit(
        &mut self,
        base: &SeriesBase,
        name: &str,
        extra: Option<(&str, &str)>,
        ts_ns: i64,
        value: f64,
        kind: UpdateKind,
    ) -> Option<u64> {
        if base.reserved {
            let labels = Labels::from_pairs(
                base.labels
                    .iter()
                    .chain(std::iter::once(("__name__", name)))
                    .chain(extra),
            );
            let id = self.update_id(&labels, value)?;
            self.samples.push(SampleRec {
                id,
                ts: ts_ns,
                value,
                kind,
            });
            return Some(id);
        }
        let mut hash = base.hash.wrapping_add(pair_hash("__name__", name));
        if let Some((k, v)) = extra {
            hash = hash.wrapping_add(pair_hash(k, v));
        }
        let want_len = base.labels.len() + 1 + usize::from(extra.is_some());
        let eq = |l: &Labels| {
            l.len() == want_len
                && l.iter().all(|(k, v)| {
                    if k == "__name__" {
                        v == name
                    } else if let Some((ek, ev)) = extra
                        && k == ek
                    {
                        v == ev
                    } else {
                        base.labels.get(k) == Some(v)
                    }
                })
        };
        let make = || {
            Labels::from_pairs(
                base.labels
                    .iter()
                    .chain(std::iter::once(("__name__", name)))
                    .chain(extra),
            )
        };
        let id = self.series_id(hash, eq, make);
        self.samples.push(SampleRec {
            id,
            ts: ts_ns,
            value,
            kind,
        });
        Some(id)
    }

    fn emit_cached(
        &mut self,
        key: &StreamKey,
        shape: u64,
        ts_ns: i64,
        kind: UpdateKind,
        values: &[f64],
    ) -> bool {
        let cached = self
            .cache
            .ids
            .get(key)
            .or_else(|| self.tenant.and_then(|t| t.stream_ids.get(key)));
        let Some(cached) = cached.filter(|c| c.shape == shape && c.ids.len() == values.len())
        else {
            return false;
        };
        self.samples.extend(
            cached
                .ids
                .iter()
                .zip(values)
                .map(|(&id, &value)| SampleRec {
                    id,
                    ts: ts_ns,
                    value,
                    kind,
                }),
        );
        true
    }

    fn remember(&mut self, key: StreamKey, shape: u64, ids: Vec<u64>) {
        self.cache.ids.insert(
            key,
            CachedIds {
                shape,
                ids: ids.into_boxed_slice(),
            },
        );
    }

    fn emit_derived(&mut self, key: &StreamKey, updates: &mut Vec<PointUpdate>) {
        let mut ids = std::mem::take(&mut self.derived_scratch);
        ids.clear();
        let mut changed = false;
        {
            let cached: &[u64] = match self.cache.derived.get(key) {
                Some(c) => c,
                None => self
                    .tenant
                    .and_then(|t| t.derived_ids.get(key))
                    .map_or(&[][..], |c| c),
            };
            // Copied so the lookups below may create series.
            ids.extend_from_slice(cached);
            changed |= ids.len() != updates.len();
            ids.resize(updates.len(), u64::MAX);
        }
        for (i, u) in updates.drain(..).enumerate() {
            let known = ids[i];
            let id = if known != u64::MAX
                && !u.value.is_nan()
                && self.labels_of(known).is_some_and(|l| *l == u.labels)
            {
                Some(known)
            } else {
                self.update_id(&u.labels, u.value)
            };
            let stored = id.unwrap_or(u64::MAX);
            if stored != known {
                ids[i] = stored;
                changed = true;
            }
            if let Some(id) = id {
                self.samples.push(SampleRec {
                    id,
                    ts: u.ts_ns,
                    value: u.value,
                    kind: u.kind,
                });
            }
        }
        if changed {
            self.cache.derived.insert(*key, ids.as_slice().into());
        }
        self.derived_scratch = ids;
    }
}

impl BatchBuilder<'_> {
    fn emit_update(&mut self, update: PointUpdate) {
        let Some(id) = self.update_id(&update.labels, update.value) else {
            return;
        };
        self.samples.push(SampleRec {
            id,
            ts: update.ts_ns,
            value: update.value,
            kind: update.kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_adds_coalesce_and_stay_monotonic_out_of_order() {
        let mut s = Series {
            labels: Labels::empty(),
            samples: Vec::new(),
            total: 0.0,
        };
        s.apply(10, 1.0, UpdateKind::CounterAdd);
        s.apply(10, 2.0, UpdateKind::CounterAdd);
        s.apply(20, 1.0, UpdateKind::CounterAdd);
        assert_eq!(s.samples, vec![(10, 3.0), (20, 4.0)]);
        s.apply(15, 1.0, UpdateKind::CounterAdd);
        assert_eq!(s.samples, vec![(10, 3.0), (15, 4.0), (20, 5.0)]);
        s.apply(5, 1.0, UpdateKind::CounterAdd);
        assert!(s.samples.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(s.total, 6.0);
        assert_eq!(s.samples.last(), Some(&(20, 6.0)));
    }

    #[test]
    fn gauge_sets_replace_at_the_same_time() {
        let mut s = Series {
            labels: Labels::empty(),
            samples: Vec::new(),
            total: 0.0,
        };
        s.apply(10, 1.0, UpdateKind::GaugeSet);
        s.apply(10, 2.0, UpdateKind::GaugeSet);
        s.apply(5, 7.0, UpdateKind::GaugeSet);
        assert_eq!(s.samples, vec![(5, 7.0), (10, 2.0)]);
    }

    fn hist_req(
        unit: &str,
        bounds: Vec<f64>,
        time: u64,
    ) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
        use opentelemetry_proto::tonic::metrics::v1::{
            Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric::Data,
        };
        let n = bounds.len() + 1;
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "lat".into(),
                        unit: unit.into(),
                        data: Some(Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![KeyValue {
                                    key: "a".into(),
                                    value: Some(AnyValue {
                                        value: Some(any_value::Value::StringValue("x".into())),
                                    }),
                                    ..Default::default()
                                }],
                                time_unix_nano: time,
                                count: n as u64,
                                sum: Some(1.0),
                                bucket_counts: vec![1; n],
                                explicit_bounds: bounds,
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn names_and_last(store: &MetricStore) -> Vec<(String, f64)> {
        let m = [LabelMatcher::new("a", inferscope_model::MatchOp::Eq, "x").expect("matcher")];
        store
            .select("t", &m, 0, i64::MAX)
            .into_iter()
            .map(|s| (s.labels.to_string(), s.samples.last().map_or(0.0, |x| x.1)))
            .collect()
    }

    /// The per-stream series cache must give exactly what the label lookup gives:
    /// when bounds or unit change, after retention drops series, after a restart.
    #[test]
    fn stream_series_cache_follows_shape_changes_and_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = StoreOptions { retention_ns: 100 };
        let store = MetricStore::open(dir.path(), opts.clone()).expect("open");
        store
            .ingest("t", &hist_req("s", vec![1.0, 2.0], 10), None)
            .expect("ingest");
        store
            .ingest("t", &hist_req("s", vec![1.0, 2.0], 20), None)
            .expect("ingest");
        let before = names_and_last(&store);
        assert_eq!(before.len(), 5);
        assert!(before.iter().any(|(n, v)| n.contains("+Inf") && *v == 6.0));
        // New bounds: a new le series, the old ones keep their totals.
        store
            .ingest("t", &hist_req("s", vec![1.0, 3.0], 30), None)
            .expect("ingest");
        let after = names_and_last(&store);
        assert_eq!(after.len(), 6);
        assert!(
            after
                .iter()
                .any(|(n, v)| n.contains("le=\"3\"") && *v == 2.0)
        );
        assert!(after.iter().any(|(n, v)| n.contains("+Inf") && *v == 9.0));
        // New unit: new names.
        store
            .ingest("t", &hist_req("ms", vec![1.0, 3.0], 40), None)
            .expect("ingest");
        assert_eq!(names_and_last(&store).len(), 11);
        // Retention drops everything before 41; the stream's cached ids must not be
        // reused for the dropped series.
        store.maintain(141).expect("maintain");
        assert!(names_and_last(&store).is_empty());
        store
            .ingest("t", &hist_req("ms", vec![1.0, 3.0], 150), None)
            .expect("ingest");
        let fresh = names_and_last(&store);
        assert_eq!(fresh.len(), 5);
        assert!(fresh.iter().any(|(n, v)| n.contains("+Inf") && *v == 3.0));
        drop(store);
        // After a restart (empty cache) the same series are found by their labels.
        let store = MetricStore::open(dir.path(), opts).expect("reopen");
        store
            .ingest("t", &hist_req("ms", vec![1.0, 3.0], 160), None)
            .expect("ingest");
        let again = names_and_last(&store);
        assert_eq!(again.len(), 5);
        assert!(again.iter().any(|(n, v)| n.contains("+Inf") && *v == 6.0));
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<MetricStore>();
    }
}
