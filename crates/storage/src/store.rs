//! The store: WAL + head + blocks behind one handle.
//!
//! Lock order: `maintenance` (tokio, serializes flush/compaction/retention)
//! → `rotation` (appenders share it; freezing takes it exclusively so a WAL
//! segment and its head always hold the same records) → `state` (head,
//! frozen heads and manifests, swapped atomically so queries never see a gap
//! or a duplicate). `fetch_gate` keeps block files alive while a scan that
//! saw them in the manifest is still fetching them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use inferscope_model::{LabelMatcher, Labels, PushStream, TimeRange, matches_all};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::{Mutex, RwLock};

use crate::block::OptionalColumns;
use crate::block::reader::LoadedBlock;
use crate::block::writer::{BlockBuilder, BuiltBlock};
use crate::compaction;
use crate::deletes::{DeleteConfig, DeleteRegistry, TaskTombstones, Tombstones};
use crate::error::StorageError;
use crate::head::{Head, HeadStream};
use crate::manifest::{self, BlockEntry, BlockMeta, MANIFEST_FORMAT, Manifest};
use crate::retention;
use crate::scan::{ScanRequest, ScanTask, TaskKind};
use crate::wal::{self, Wal, WalSync};

/// Selected streams of a block: (stream index, row range), in row order.
type StreamRows = Vec<(usize, Range<usize>)>;

/// Rows per block scan task (a block's selected streams are split into
/// tasks of about this many rows).
const TASK_ROWS: u64 = 256 * 1024;
/// Blocks fetched concurrently by a scan.
const FETCH_CONCURRENCY: usize = 8;

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync + 'static>() {}
    is::<Store>();
    is::<ScanTask>();
}

/// Configuration of a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Local directory; the WAL lives in `data_dir/wal`.
    pub data_dir: PathBuf,
    /// Where blocks and manifests live.
    pub object_store: Arc<dyn ObjectStore>,
    /// WAL fsync policy.
    pub wal_sync: WalSync,
    /// Flush when the head holds more than this many bytes.
    pub head_max_bytes: usize,
    /// Flush when the oldest head data is older than this.
    pub head_max_age: Duration,
    /// Delete data older than this (`None` keeps everything).
    pub retention: Option<Duration>,
    /// Merge when a tenant has at least this many small blocks in one window.
    pub compaction_min_blocks: usize,
    /// Log deletion (delete requests): query compiler and cancel period.
    pub deletes: DeleteConfig,
}

impl StoreConfig {
    /// Defaults with blocks on the local file system under `data_dir/blocks`
    /// (created if missing).
    pub fn local(data_dir: impl Into<PathBuf>) -> Result<StoreConfig, StorageError> {
        let data_dir = data_dir.into();
        let blocks = data_dir.join("blocks");
        std::fs::create_dir_all(&blocks).map_err(|e| StorageError::io(&blocks, e))?;
        // fsync every object (blocks, manifests, delete requests) before a
        // put returns: WAL segments are deleted once the blocks covering them
        // are published, and delete requests are acknowledged once written.
        let fs = LocalFileSystem::new_with_prefix(&blocks)
            .map_err(|e| StorageError::object(blocks.display(), e))?
            .with_fsync(true);
        Ok(StoreConfig {
            data_dir,
            object_store: Arc::new(fs),
            wal_sync: WalSync::Always,
            head_max_bytes: 128 << 20,
            head_max_age: Duration::from_secs(300),
            retention: None,
            compaction_min_blocks: 4,
            deletes: DeleteConfig::default(),
        })
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Entries added.
    pub entries: u64,
    /// Bytes the entries take in the head ([`crate::head::held_bytes`]).
    pub bytes: u64,
    /// Bytes written to the WAL.
    pub wal_bytes: u64,
}

/// A snapshot of the store's counters and gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMetrics {
    /// Bytes appended to the WAL since open.
    pub wal_bytes: u64,
    /// WAL fsyncs since open.
    pub wal_fsyncs: u64,
    /// WAL records appended since open.
    pub wal_records: u64,
    /// Bytes held by the active and frozen heads.
    pub head_bytes: u64,
    /// Entries held by the active and frozen heads.
    pub head_entries: u64,
    /// Streams in the active head.
    pub head_streams: u64,
    /// Frozen heads waiting to be written.
    pub frozen_heads: u64,
    /// Blocks in all manifests.
    pub blocks: u64,
    /// Bytes of those blocks.
    pub block_bytes: u64,
    /// Flushes completed.
    pub flushes: u64,
    /// Blocks written by flushes.
    pub flushed_blocks: u64,
    /// Compactions completed.
    pub compactions: u64,
    /// Blocks deleted by retention.
    pub retention_deleted_blocks: u64,
    /// Corrupt or missing blocks found (each counted once).
    pub corrupt_blocks_skipped: u64,
    /// WAL records replayed at open.
    pub wal_records_replayed: u64,
    /// Torn WAL tails truncated at open.
    pub wal_tail_truncations: u64,
    /// Corrupt WAL records found at open (rest of segment skipped).
    pub wal_corrupt_records: u64,
    /// Entries appended since open.
    pub appended_entries: u64,
    /// Id sidecars found corrupt or missing (their blocks are scanned).
    pub id_sidecars_corrupt: u64,
}

#[derive(Default)]
struct Counters {
    flushes: AtomicU64,
    flushed_blocks: AtomicU64,
    compactions: AtomicU64,
    retention_deleted: AtomicU64,
    corrupt: AtomicU64,
    replayed: AtomicU64,
    truncations: AtomicU64,
    wal_corrupt: AtomicU64,
    appended: AtomicU64,
    bad_sidecars: AtomicU64,
}

/// What [`Store::rewrite_blocks`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// The blocks were replaced; `deleted` entries were left out.
    Done { deleted: u64 },
    /// No entry was left out, so nothing was written (`skip_unchanged`).
    Unchanged,
    /// A block is corrupt or missing: it is never served again.
    Gone,
    /// A block could not be fetched now, or the manifest changed.
    Retry,
}

struct Frozen {
    head: Arc<Head>,
    /// Every WAL record of this head is in a segment below this id.
    wal_boundary: u64,
}

#[derive(Clone)]
struct TenantBlocks {
    version: u64,
    wal_through: u64,
    blocks: Vec<Arc<BlockEntry>>,
}

struct State {
    head: Arc<Head>,
    frozen: Vec<Arc<Frozen>>,
    tenants: HashMap<String, TenantBlocks>,
}

struct Inner {
    config: StoreConfig,
    wal: Wal,
    rotation: RwLock<()>,
    state: RwLock<State>,
    maintenance: tokio::sync::Mutex<()>,
    fetch_gate: tokio::sync::RwLock<()>,
    bad_blocks: Mutex<HashSet<String>>,
    counters: Counters,
    block_seq: AtomicU64,
    deletes: DeleteRegistry,
}

/// The durable log store. Cheap to share as `Arc<Store>`.
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

fn obj_err(key: &ObjPath) -> impl FnOnce(object_store::Error) -> StorageError + '_ {
    move |e| StorageError::object(key, e)
}

impl Store {
    /// Opens the store: loads manifests, checks that blocks exist, replays
    /// the WAL into the head (truncating a torn tail).
    pub async fn open(config: StoreConfig) -> Result<Store, StorageError> {
        let wal_dir = config.data_dir.join("wal");
        let os = config.object_store.clone();
        let manifests = manifest::load_all(os.as_ref()).await?;
        let deletes = DeleteRegistry::load(os.clone(), config.deletes.clone()).await?;
        let counters = Counters::default();
        let mut bad = HashSet::new();
        let mut tenants = HashMap::new();
        let checks: Vec<(String, String, u64)> = manifests
            .iter()
            .flat_map(|m| m.blocks.iter())
            .map(|b| (b.id.clone(), b.path.clone(), b.size))
            .collect();
        let results: Vec<_> = futures::stream::iter(checks)
            .map(|(id, path, size)| {
                let os = os.clone();
                async move {
                    let r = os.head(&ObjPath::from(path.as_str())).await;
                    (id, path, size, r)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (id, path, size, r) in results {
            match r {
                Ok(meta) if meta.size == size => {}
                Ok(meta) => {
                    tracing::warn!(block = %path, size = meta.size, expected = size, "block has the wrong size; it will be skipped");
                    bad.insert(id);
                    counters.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                Err(object_store::Error::NotFound { .. }) => {
                    tracing::warn!(block = %path, "block is missing; it will be skipped");
                    bad.insert(id);
                    counters.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(block = %path, error = %e, "could not check block"),
            }
        }
        for m in manifests {
            tenants.insert(
                m.tenant.clone(),
                TenantBlocks {
                    version: m.version,
                    wal_through: m.wal_through,
                    blocks: m.blocks.into_iter().map(BlockEntry::new).collect(),
                },
            );
        }
        let through: HashMap<String, u64> = tenants
            .iter()
            .map(|(t, b)| (t.clone(), b.wal_through))
            .collect();
        let max_through = through.values().copied().max().unwrap_or(0);
        let policy = config.wal_sync;
        let (head, stats, wal) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&wal_dir).map_err(|e| StorageError::io(&wal_dir, e))?;
            let head = Head::new();
            let stats = wal::replay(&wal_dir, |segment, rec| {
                if through.get(&rec.tenant).is_some_and(|&t| segment <= t) {
                    return; // already in a block
                }
                head.append(&rec.tenant, &rec.streams);
            })?;
            let next = stats.last_segment.max(max_through) + 1;
            let wal = Wal::create(&wal_dir, next, policy)?;
            Ok::<_, StorageError>((head, stats, wal))
        })
        .await??;
        counters.replayed.store(stats.records, Ordering::Relaxed);
        counters
            .truncations
            .store(stats.tail_truncations, Ordering::Relaxed);
        counters
            .wal_corrupt
            .store(stats.corrupt_records, Ordering::Relaxed);
        if stats.records > 0 {
            tracing::info!(
                records = stats.records,
                entries = head.entries(),
                "replayed WAL"
            );
        }
        Ok(Store {
            inner: Arc::new(Inner {
                config,
                wal,
                rotation: RwLock::new(()),
                state: RwLock::new(State {
                    head: Arc::new(head),
                    frozen: Vec::new(),
                    tenants,
                }),
                maintenance: tokio::sync::Mutex::new(()),
                fetch_gate: tokio::sync::RwLock::new(()),
                bad_blocks: Mutex::new(bad),
                counters,
                block_seq: AtomicU64::new(0),
                deletes,
            }),
        })
    }

    /// Appends a push for `tenant`: one WAL record, synced per policy, then
    /// the head. Blocking; call it from `spawn_blocking`.
    pub fn append(
        &self,
        tenant: &str,
        streams: &[PushStream],
    ) -> Result<AppendStats, StorageError> {
        if tenant.is_empty() {
            return Err(StorageError::InvalidInput("empty tenant".into()));
        }
        if streams.iter().all(|s| s.entries.is_empty()) {
            return Ok(AppendStats::default());
        }
        let frame = wal::encode_record(tenant, streams);
        let inner = &self.inner;
        let _rotation = inner.rotation.read();
        inner.wal.append(&frame)?;
        let head = inner.state.read().head.clone();
        let (entries, bytes) = head.append(tenant, streams);
        inner
            .counters
            .appended
            .fetch_add(entries as u64, Ordering::Relaxed);
        Ok(AppendStats {
            entries: entries as u64,
            bytes: bytes as u64,
            wal_bytes: frame.len() as u64,
        })
    }

    pub(crate) fn snapshot(&self, tenant: &str) -> (Vec<Arc<Head>>, Vec<Arc<BlockEntry>>) {
        let st = self.inner.state.read();
        let mut heads = vec![st.head.clone()];
        heads.extend(st.frozen.iter().map(|f| f.head.clone()));
        let blocks = st
            .tenants
            .get(tenant)
            .map(|t| t.blocks.clone())
            .unwrap_or_default();
        let bad = self.inner.bad_blocks.lock();
        let blocks = blocks
            .into_iter()
            .filter(|b| !bad.contains(&b.meta.id))
            .collect();
        (heads, blocks)
    }

    /// Every block of every tenant, as the manifest lists them now.
    pub(crate) fn all_blocks(&self) -> Vec<Arc<BlockEntry>> {
        let st = self.inner.state.read();
        st.tenants
            .values()
            .flat_map(|t| t.blocks.iter().cloned())
            .collect()
    }

    fn mark_bad(&self, b: &BlockMeta, err: &StorageError) {
        tracing::warn!(block = %b.path, error = %err, "skipping corrupt or missing block");
        if self.inner.bad_blocks.lock().insert(b.id.clone()) {
            self.inner.counters.corrupt.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.config.object_store
    }

    pub(crate) async fn fetch_gate_read(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.fetch_gate.read().await
    }

    pub(crate) fn note_bad_sidecar(&self) {
        self.inner
            .counters
            .bad_sidecars
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) async fn load_block_for_lookup(&self, b: &BlockEntry) -> Option<Arc<LoadedBlock>> {
        self.load_block(b).await
    }

    /// Fetches and verifies a block. Corrupt or missing blocks are marked
    /// bad, reported and yield `None`.
    async fn load_block(&self, b: &BlockEntry) -> Option<Arc<LoadedBlock>> {
        let path = ObjPath::from(b.meta.path.as_str());
        let fetched = async {
            let r = self.inner.config.object_store.get(&path).await?;
            r.bytes().await
        }
        .await;
        let data: Bytes = match fetched {
            Ok(d) => d,
            Err(e) => {
                let not_found = matches!(e, object_store::Error::NotFound { .. });
                let err = StorageError::object(&path, e);
                if not_found {
                    self.mark_bad(&b.meta, &err);
                } else {
                    tracing::warn!(block = %b.meta.path, error = %err, "could not fetch block; skipping it");
                }
                return None;
            }
        };
        let key = b.meta.path.clone();
        let (size, crc) = (b.meta.size, b.meta.crc32);
        match tokio::task::spawn_blocking(move || LoadedBlock::load(&key, data, size, crc)).await {
            Ok(Ok(l)) => Some(Arc::new(l)),
            Ok(Err(e)) => {
                self.mark_bad(&b.meta, &e);
                None
            }
            Err(e) => {
                tracing::warn!(block = %b.meta.path, error = %e, "block verification task failed");
                None
            }
        }
    }

    /// Plans a scan: snapshots matching head streams and fetches the
    /// matching blocks into memory. Corrupt blocks are skipped and reported.
    pub async fn scan(&self, req: &ScanRequest) -> Result<Vec<ScanTask>, StorageError> {
        let range = req.range;
        let mut tasks = Vec::new();
        if range.is_empty() {
            return Ok(tasks);
        }
        let clamp = |lo: i64, hi: i64| (lo.max(range.start_ns), hi.min(range.end_ns - 1));
        let _gate = self.inner.fetch_gate.read().await;
        // Before the snapshot: see `DeleteRegistry::for_scan`.
        let tombstones = self
            .inner
            .deletes
            .for_scan(&req.tenant, range.start_ns, range.end_ns);
        let (heads, blocks) = self.snapshot(&req.tenant);
        let hint = crate::ids::ScanHint::new(req.id_hint.as_ref());
        for h in heads {
            let selected = match &hint {
                Some(hint) => hint.select_head(&h, &req.tenant, &req.matchers, range),
                None => h.select(&req.tenant, &req.matchers, range),
            };
            for snap in selected {
                tasks.push(ScanTask {
                    deletes: TaskTombstones::build(
                        tombstones.heads.as_ref(),
                        std::iter::once(&snap.labels),
                        (snap.min_ts, snap.max_ts),
                    ),
                    bounds: clamp(snap.min_ts, snap.max_ts),
                    kind: TaskKind::Head(snap),
                    range,
                    filter: req.line_filter.clone(),
                });
            }
        }
        // Which streams of which blocks are wanted, decided from the manifest alone.
        // (block, [(stream index, rows)])
        let mut wanted: Vec<(Arc<BlockEntry>, StreamRows)> = Vec::new();
        for b in blocks {
            if !range.overlaps(b.meta.min_ts, b.meta.max_ts) {
                continue;
            }
            let mut idx: Vec<(usize, Range<usize>)> = (0..b.meta.streams.len())
                .filter(|&i| {
                    let s = &b.meta.streams[i];
                    range.overlaps(s.min_ts, s.max_ts) && matches_all(&req.matchers, &b.labels[i])
                })
                .map(|i| {
                    let s = &b.meta.streams[i];
                    (
                        i,
                        s.row_start as usize..(s.row_start + s.row_count) as usize,
                    )
                })
                .collect();
            if let Some(hint) = &hint
                && !idx.is_empty()
            {
                idx = hint.narrow_block(self, &b, idx).await;
            }
            if !idx.is_empty() {
                wanted.push((b, idx));
            }
        }
        let loaded: Vec<_> = futures::stream::iter(wanted)
            .map(|(b, idx)| async move {
                let l = self.load_block(&b).await;
                (b, idx, l)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;
        for (b, idx, l) in loaded {
            let Some(l) = l else { continue };
            let mut group: Vec<(Labels, Range<usize>)> = Vec::new();
            let mut rows = 0;
            let mut bounds = (i64::MAX, i64::MIN);
            let mut emit = |group: &mut Vec<(Labels, Range<usize>)>, bounds: &mut (i64, i64)| {
                if group.is_empty() {
                    return;
                }
                let deletes = TaskTombstones::build(
                    tombstones.blocks.as_ref(),
                    group.iter().map(|(labels, _)| labels),
                    *bounds,
                );
                tasks.push(ScanTask {
                    deletes,
                    kind: TaskKind::Block {
                        block: l.clone(),
                        with_metadata: b.meta.meta_pairs != Some(0),
                        streams: std::mem::take(group),
                    },
                    range,
                    filter: req.line_filter.clone(),
                    bounds: clamp(bounds.0, bounds.1),
                });
                *bounds = (i64::MAX, i64::MIN);
            };
            for (i, rows_of_stream) in idx {
                let s = &b.meta.streams[i];
                rows += rows_of_stream.len() as u64;
                group.push((b.labels[i].clone(), rows_of_stream));
                bounds = (bounds.0.min(s.min_ts), bounds.1.max(s.max_ts));
                if rows >= TASK_ROWS {
                    emit(&mut group, &mut bounds);
                    rows = 0;
                }
            }
            emit(&mut group, &mut bounds);
        }
        Ok(tasks)
    }

    fn for_each_labels(
        &self,
        tenant: &str,
        range: TimeRange,
        matchers: &[LabelMatcher],
        mut f: impl FnMut(&Labels),
    ) {
        let (heads, blocks) = self.snapshot(tenant);
        for h in heads {
            h.for_each_labels(tenant, matchers, range, &mut f);
        }
        for b in blocks {
            if !range.overlaps(b.meta.min_ts, b.meta.max_ts) {
                continue;
            }
            for (s, labels) in b.meta.streams.iter().zip(&b.labels) {
                if range.overlaps(s.min_ts, s.max_ts) && matches_all(matchers, labels) {
                    f(labels);
                }
            }
        }
    }

    /// Label names of streams matching `matchers` (all streams when empty)
    /// with data in `range`; sorted and unique.
    pub async fn label_names(
        &self,
        tenant: &str,
        range: TimeRange,
        matchers: &[LabelMatcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut out = BTreeSet::new();
        self.for_each_labels(tenant, range, matchers, |l| {
            for (k, _) in l.iter() {
                if !out.contains(k) {
                    out.insert(k.to_string());
                }
            }
        });
        Ok(out.into_iter().collect())
    }

    /// Values of label `name` over matching streams; sorted and unique.
    pub async fn label_values(
        &self,
        tenant: &str,
        name: &str,
        range: TimeRange,
        matchers: &[LabelMatcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut out = BTreeSet::new();
        self.for_each_labels(tenant, range, matchers, |l| {
            if let Some(v) = l.get(name)
                && !out.contains(v)
            {
                out.insert(v.to_string());
            }
        });
        Ok(out.into_iter().collect())
    }

    /// Label sets of the streams matching `matchers` with data in `range`;
    /// sorted and unique.
    pub async fn series(
        &self,
        tenant: &str,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Labels>, StorageError> {
        let mut out = BTreeSet::new();
        self.for_each_labels(tenant, range, matchers, |l| {
            if !out.contains(l) {
                out.insert(l.clone());
            }
        });
        Ok(out.into_iter().collect())
    }

    /// Cuts the whole head into blocks now.
    pub async fn flush(&self) -> Result<(), StorageError> {
        let _m = self.inner.maintenance.lock().await;
        self.flush_locked().await
    }

    async fn flush_locked(&self) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _w = inner.rotation.write();
            if inner.state.read().head.entries() == 0 {
                return Ok::<_, StorageError>(());
            }
            let boundary = inner.wal.rotate()?;
            let mut st = inner.state.write();
            let old = std::mem::replace(&mut st.head, Arc::new(Head::new()));
            st.frozen.push(Arc::new(Frozen {
                head: old,
                wal_boundary: boundary,
            }));
            Ok(())
        })
        .await??;
        let frozen: Vec<Arc<Frozen>> = self.inner.state.read().frozen.clone();
        for f in frozen {
            self.write_frozen(&f).await?;
        }
        Ok(())
    }

    fn new_block_id(&self) -> String {
        let seq = self.inner.block_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{:06x}", retention::now_ns(), seq & 0xff_ffff)
    }

    async fn put_block(
        &self,
        tenant: &str,
        id: &str,
        built: BuiltBlock,
        level: u32,
    ) -> Result<BlockMeta, StorageError> {
        let ids = crate::ids::put_sidecar(
            self.inner.config.object_store.as_ref(),
            tenant,
            id,
            &built.ids,
        )
        .await?;
        let path = manifest::block_path(tenant, id);
        let crc32 = crc32fast::hash(&built.data);
        let size = built.data.len() as u64;
        self.inner
            .config
            .object_store
            .put(&path, PutPayload::from(built.data))
            .await
            .map_err(obj_err(&path))?;
        Ok(BlockMeta {
            id: id.to_string(),
            path: path.to_string(),
            min_ts: built.min_ts,
            max_ts: built.max_ts,
            size,
            crc32,
            rows: built.rows,
            line_bytes: built.line_bytes,
            meta_pairs: Some(built.meta_pairs),
            level,
            ids,
            streams: built.streams,
        })
    }

    /// Publishes manifests for `updates` (tenant → new block list) and
    /// applies them, plus `state_change`, to the in-memory state atomically.
    async fn publish(
        &self,
        updates: Vec<(String, Vec<Arc<BlockEntry>>, u64)>,
        state_change: impl FnOnce(&mut State),
    ) -> Result<(), StorageError> {
        let mut applied = Vec::new();
        for (tenant, blocks, wal_through) in updates {
            let version = self
                .inner
                .state
                .read()
                .tenants
                .get(&tenant)
                .map_or(0, |t| t.version)
                + 1;
            let m = Manifest {
                format: MANIFEST_FORMAT,
                tenant: tenant.clone(),
                version,
                wal_through,
                blocks: blocks.iter().map(|b| b.meta.clone()).collect(),
            };
            manifest::store_manifest(self.inner.config.object_store.as_ref(), &m).await?;
            applied.push((
                tenant,
                TenantBlocks {
                    version,
                    wal_through,
                    blocks,
                },
            ));
        }
        let mut st = self.inner.state.write();
        for (t, tb) in applied {
            st.tenants.insert(t, tb);
        }
        state_change(&mut st);
        Ok(())
    }

    async fn write_frozen(&self, f: &Arc<Frozen>) -> Result<(), StorageError> {
        let cutoff = retention::cutoff_ns(self.inner.config.retention, retention::now_ns());
        let mut updates = Vec::new();
        for tenant in f.head.tenants() {
            let id = self.new_block_id();
            let key = manifest::block_path(&tenant, &id).to_string();
            let head = f.head.clone();
            let t = tenant.clone();
            let deletes = self.inner.deletes.physical(&tenant);
            let (built, deleted) = tokio::task::spawn_blocking(move || {
                build_from_head(&head, &t, &key, cutoff, deletes.as_ref())
            })
            .await??;
            self.inner.deletes.note_deleted_lines(deleted);
            let (mut blocks, mut wal_through) = {
                let st = self.inner.state.read();
                st.tenants
                    .get(&tenant)
                    .map(|t| (t.blocks.clone(), t.wal_through))
                    .unwrap_or_default()
            };
            if let Some(built) = built {
                let meta = self.put_block(&tenant, &id, built, 0).await?;
                self.inner
                    .counters
                    .flushed_blocks
                    .fetch_add(1, Ordering::Relaxed);
                blocks.push(BlockEntry::new(meta));
            }
            wal_through = wal_through.max(f.wal_boundary - 1);
            updates.push((tenant, blocks, wal_through));
        }
        let target = f.clone();
        self.publish(updates, move |st| {
            st.frozen.retain(|x| !Arc::ptr_eq(x, &target));
        })
        .await?;
        let inner = self.inner.clone();
        let boundary = f.wal_boundary;
        tokio::task::spawn_blocking(move || inner.wal.remove_below(boundary)).await??;
        self.inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Line bytes held in the active and frozen heads, and how many frozen
    /// heads are waiting to be written: the cheap part of [`Store::metrics`],
    /// for the server's backpressure check on every push.
    pub fn head_pressure(&self) -> (u64, usize) {
        let st = self.inner.state.read();
        let bytes = st.head.bytes() + st.frozen.iter().map(|f| f.head.bytes()).sum::<usize>();
        (bytes as u64, st.frozen.len())
    }

    /// Whether the head is over `head_max_bytes` or older than
    /// `head_max_age`, i.e. whether [`Store::maintain`] would flush now. The
    /// server can poll it after appends to call `maintain` early and keep
    /// memory bounded under heavy ingest.
    pub fn flush_due(&self) -> bool {
        let cfg = &self.inner.config;
        let st = self.inner.state.read();
        st.head.bytes() > cfg.head_max_bytes
            || st
                .head
                .first_insert()
                .is_some_and(|t| t.elapsed() >= cfg.head_max_age)
    }

    /// Periodic work: sync the WAL for the interval policy, flush the head
    /// when it is too large or too old, compact small blocks, apply retention.
    pub async fn maintain(&self) -> Result<(), StorageError> {
        let _m = self.inner.maintenance.lock().await;
        let cfg = &self.inner.config;
        if matches!(cfg.wal_sync, WalSync::Interval(_)) {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || inner.wal.sync_now()).await??;
        }
        let (due, pending) = {
            let st = self.inner.state.read();
            let h = &st.head;
            let due = h.bytes() > cfg.head_max_bytes
                || h.first_insert()
                    .is_some_and(|t| t.elapsed() >= cfg.head_max_age);
            (due, !st.frozen.is_empty())
        };
        if due || pending {
            self.flush_locked().await?;
        }
        self.compact_locked().await?;
        self.process_deletes_locked().await?;
        self.retention_locked().await?;
        Ok(())
    }

    async fn compact_locked(&self) -> Result<(), StorageError> {
        let tenants: Vec<(String, Vec<Arc<BlockEntry>>)> = {
            let st = self.inner.state.read();
            st.tenants
                .iter()
                .map(|(t, b)| (t.clone(), b.blocks.clone()))
                .collect()
        };
        let bad = self.inner.bad_blocks.lock().clone();
        for (tenant, blocks) in tenants {
            let healthy: Vec<_> = blocks
                .into_iter()
                .filter(|b| !bad.contains(&b.meta.id))
                .collect();
            for group in compaction::plan(&healthy, self.inner.config.compaction_min_blocks) {
                self.compact_group(&tenant, group).await?;
            }
        }
        Ok(())
    }

    async fn compact_group(
        &self,
        tenant: &str,
        group: Vec<Arc<BlockEntry>>,
    ) -> Result<(), StorageError> {
        let level = group.iter().map(|b| b.meta.level).max().unwrap_or(0) + 1;
        if let Rewrite::Done { .. } = self.rewrite_blocks(tenant, &group, level, false).await? {
            self.inner
                .counters
                .compactions
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Replaces `group` by one block at `level` holding their entries minus
    /// those of delete requests being applied (compaction merges; delete
    /// processing rewrites one block). With `skip_unchanged`, nothing is
    /// written when no entry is left out. Caller holds the maintenance lock.
    pub(crate) async fn rewrite_blocks(
        &self,
        tenant: &str,
        group: &[Arc<BlockEntry>],
        level: u32,
        skip_unchanged: bool,
    ) -> Result<Rewrite, StorageError> {
        let mut inputs = Vec::with_capacity(group.len());
        for b in group {
            match self.load_block(b).await {
                Some(l) => inputs.push((b.clone(), l)),
                // Reported; a bad block is never served again, anything else
                // is retried later.
                None if self.inner.bad_blocks.lock().contains(&b.meta.id) => {
                    return Ok(Rewrite::Gone);
                }
                None => return Ok(Rewrite::Retry),
            }
        }
        let id = self.new_block_id();
        let key = manifest::block_path(tenant, &id).to_string();
        let deletes = self.inner.deletes.physical(tenant);
        let (built, deleted) =
            tokio::task::spawn_blocking(move || compaction::merge(&key, &inputs, deletes.as_ref()))
                .await??;
        if deleted == 0 && skip_unchanged {
            return Ok(Rewrite::Unchanged);
        }
        let (blocks, wal_through) = {
            let st = self.inner.state.read();
            match st.tenants.get(tenant) {
                Some(t) => (t.blocks.clone(), t.wal_through),
                None => return Ok(Rewrite::Retry),
            }
        };
        let old: HashSet<String> = group.iter().map(|b| b.meta.id.clone()).collect();
        if blocks.iter().filter(|b| old.contains(&b.meta.id)).count() != old.len() {
            return Ok(Rewrite::Retry); // the manifest changed under us; try again later
        }
        let mut next: Vec<Arc<BlockEntry>> = blocks
            .into_iter()
            .filter(|b| !old.contains(&b.meta.id))
            .collect();
        if built.rows > 0 {
            let meta = self.put_block(tenant, &id, built, level).await?;
            next.push(BlockEntry::new(meta));
        }
        self.publish(vec![(tenant.to_string(), next, wal_through)], |_| {})
            .await?;
        self.delete_blocks(group).await;
        self.inner.deletes.note_deleted_lines(deleted);
        Ok(Rewrite::Done { deleted })
    }

    /// The tenant's blocks that are not known to be corrupt.
    pub(crate) fn healthy_blocks(&self, tenant: &str) -> Vec<Arc<BlockEntry>> {
        self.snapshot(tenant).1
    }

    pub(crate) fn deletes(&self) -> &DeleteRegistry {
        &self.inner.deletes
    }

    pub(crate) async fn maintenance_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.maintenance.lock().await
    }

    /// Deletes block files no longer in any manifest, once no scan that may
    /// have seen them is still fetching.
    async fn delete_blocks(&self, blocks: &[Arc<BlockEntry>]) {
        let _gate = self.inner.fetch_gate.write().await;
        for b in blocks {
            let path = ObjPath::from(b.meta.path.as_str());
            if let Err(e) = self.inner.config.object_store.delete(&path).await {
                tracing::warn!(block = %b.meta.path, error = %e, "could not delete block file");
            }
            if let Some(ids) = &b.meta.ids {
                let path = ObjPath::from(ids.path.as_str());
                if let Err(e) = self.inner.config.object_store.delete(&path).await {
                    tracing::warn!(sidecar = %ids.path, error = %e, "could not delete id sidecar");
                }
            }
        }
    }

    async fn retention_locked(&self) -> Result<(), StorageError> {
        let Some(cutoff) = retention::cutoff_ns(self.inner.config.retention, retention::now_ns())
        else {
            return Ok(());
        };
        let tenants: Vec<(String, TenantBlocks)> = {
            let st = self.inner.state.read();
            st.tenants
                .iter()
                .map(|(t, b)| (t.clone(), b.clone()))
                .collect()
        };
        for (tenant, tb) in tenants {
            let expired = retention::expired(&tb.blocks, cutoff);
            if expired.is_empty() {
                continue;
            }
            let gone: HashSet<&str> = expired.iter().map(|b| b.meta.id.as_str()).collect();
            let next = tb
                .blocks
                .iter()
                .filter(|b| !gone.contains(b.meta.id.as_str()))
                .cloned()
                .collect();
            self.publish(vec![(tenant.clone(), next, tb.wal_through)], |_| {})
                .await?;
            tracing::info!(%tenant, blocks = expired.len(), "retention deleted blocks");
            self.delete_blocks(&expired).await;
            self.inner
                .counters
                .retention_deleted
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A snapshot of the store's metrics.
    pub fn metrics(&self) -> StoreMetrics {
        let inner = &self.inner;
        let c = &inner.counters;
        let st = inner.state.read();
        let heads = std::iter::once(&st.head).chain(st.frozen.iter().map(|f| &f.head));
        let (mut head_bytes, mut head_entries) = (0u64, 0u64);
        for h in heads {
            head_bytes += h.bytes() as u64;
            head_entries += h.entries() as u64;
        }
        let blocks = st.tenants.values().flat_map(|t| t.blocks.iter());
        let (mut nblocks, mut block_bytes) = (0u64, 0u64);
        for b in blocks {
            nblocks += 1;
            block_bytes += b.meta.size;
        }
        StoreMetrics {
            wal_bytes: inner.wal.counters.bytes.load(Ordering::Relaxed),
            wal_fsyncs: inner.wal.counters.fsyncs.load(Ordering::Relaxed),
            wal_records: inner.wal.counters.records.load(Ordering::Relaxed),
            head_bytes,
            head_entries,
            head_streams: st.head.streams() as u64,
            frozen_heads: st.frozen.len() as u64,
            blocks: nblocks,
            block_bytes,
            flushes: c.flushes.load(Ordering::Relaxed),
            flushed_blocks: c.flushed_blocks.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            retention_deleted_blocks: c.retention_deleted.load(Ordering::Relaxed),
            corrupt_blocks_skipped: c.corrupt.load(Ordering::Relaxed),
            wal_records_replayed: c.replayed.load(Ordering::Relaxed),
            wal_tail_truncations: c.truncations.load(Ordering::Relaxed),
            wal_corrupt_records: c.wal_corrupt.load(Ordering::Relaxed),
            appended_entries: c.appended.load(Ordering::Relaxed),
            id_sidecars_corrupt: c.bad_sidecars.load(Ordering::Relaxed),
        }
    }
}

/// Encodes one tenant of a frozen head as a block, without entries older
/// than `cutoff` or removed by `deletes`; `None` when nothing is left. Also
/// returns how many entries `deletes` removed.
pub(crate) fn build_from_head(
    head: &Head,
    tenant: &str,
    key: &str,
    cutoff: Option<i64>,
    deletes: Option<&Tombstones>,
) -> Result<(Option<BuiltBlock>, u64), StorageError> {
    let mut deleted = 0;
    let built = head.with_tenant(tenant, |th| {
        let mut order: Vec<&HeadStream> = th.streams.iter().collect();
        order.sort_by_cached_key(|s| (s.labels.fingerprint(), s.labels.clone()));
        let chunks = || order.iter().flat_map(|s| &s.chunks);
        let columns = OptionalColumns {
            line_metadata: chunks().any(|c| c.has_line_metadata()),
            levels: chunks().any(|c| c.has_levels()),
        };
        let mut b = BlockBuilder::new(key, columns)?;
        for s in order {
            b.begin_stream(&s.labels);
            let tombstones = deletes.and_then(|d| d.for_stream(&s.labels, (s.min_ts, s.max_ts)));
            for (ts, ci, i) in s.sorted_positions() {
                if cutoff.is_some_and(|c| ts < c) {
                    continue;
                }
                let c = &s.chunks[ci as usize];
                let i = i as usize;
                if tombstones
                    .as_ref()
                    .is_some_and(|t| t.deletes(ts, c.line(i).as_bytes()))
                {
                    deleted += 1;
                    continue;
                }
                b.push(ts, c.line(i), c.meta(i).iter_stored())?;
            }
        }
        b.finish()
    });
    match built {
        Some(Ok(b)) if b.rows > 0 => Ok((Some(b), deleted)),
        Some(Err(e)) => Err(e),
        _ => Ok((None, deleted)),
    }
}
