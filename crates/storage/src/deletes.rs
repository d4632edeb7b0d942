//! Log deletion: Loki's delete requests, durable, honoured by every scan, then
//! applied physically by the maintenance pass.
//!
//! A request names a LogQL log selector (optionally with line filters) and an
//! inclusive time range `[start, end]`. The storage crate does not parse
//! LogQL: the server hands the store a [`DeleteCompiler`] that turns the query
//! text into label matchers and a [`LineFilter`] (the same trait object scans
//! use), so the query text is all that is persisted and requests are compiled
//! again when the store opens.
//!
//! A request goes through three states:
//!
//! ```text
//!   received ──(cancel period over, maintain)──▶ processing ──(blocks rewritten)──▶ processed
//!      │ cancel (DELETE)                           (not cancellable from here on)
//!      ▼
//!   removed
//! ```
//!
//! * **received**: cancellable. Scans hide its entries (heads and blocks);
//!   nothing is removed from storage, so a cancel restores them.
//! * **processing** (shown as `received`, as Loki does until the work is
//!   done): flushes and compactions drop its entries, and the maintenance pass
//!   rewrites every block holding some of them ([`Store::process_deletes`]).
//! * **processed**: every block published since was built without its entries;
//!   scans still hide them in the heads (entries pushed late, or replayed from
//!   the WAL) and flushes keep dropping them.
//!
//! The cost for scans is zero when no request applies: a scan snapshots the
//! tenant's requests overlapping its range once, and a scan task carries the
//! requests whose matchers select its streams (`None` otherwise).
//!
//! Persistence: `tenants/<tenant>/deletes/<version>.json`, copy-on-write
//! versions like manifests (see `FORMAT.md`). A request is written before the
//! call that adds it returns.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use inferscope_model::{LabelMatcher, Labels, matches_all};
use object_store::ObjectStore;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::manifest::BlockEntry;
use crate::retention::now_ns;
use crate::scan::LineFilter;
use crate::store::{Rewrite, Store};
use crate::versioned;

/// Current format of the delete request files.
pub const DELETES_FORMAT: u32 = 1;
/// Loki's default `compactor.delete_request_cancel_period`.
pub const DEFAULT_CANCEL_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// What a delete query selects, compiled: stream matchers and, optionally,
/// the line filters a line must pass to be deleted.
#[derive(Clone)]
pub struct DeleteSelector {
    /// Stream selector.
    pub matchers: Vec<LabelMatcher>,
    /// Lines this filter keeps are deleted; `None` deletes every line.
    pub line_filter: Option<Arc<dyn LineFilter>>,
}

impl fmt::Debug for DeleteSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeleteSelector")
            .field("matchers", &self.matchers)
            .field("line_filter", &self.line_filter.is_some())
            .finish()
    }
}

/// Compiles the LogQL of a delete request (the server implements it with the
/// LogQL crate, which the storage crate does not depend on).
pub trait DeleteCompiler: Send + Sync + fmt::Debug {
    /// The selector of `query`, or why it is not a valid delete query.
    fn compile(&self, query: &str) -> Result<DeleteSelector, String>;
}

/// Configuration of log deletion.
#[derive(Debug, Clone)]
pub struct DeleteConfig {
    /// Compiles delete queries; without one, adding a request fails and a
    /// store holding requests refuses to open.
    pub compiler: Option<Arc<dyn DeleteCompiler>>,
    /// How long a request stays cancellable before it is applied
    /// physically (Loki's `delete_request_cancel_period`).
    pub cancel_period: Duration,
}

impl Default for DeleteConfig {
    fn default() -> Self {
        DeleteConfig {
            compiler: None,
            cancel_period: DEFAULT_CANCEL_PERIOD,
        }
    }
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteStatus {
    /// Accepted; hidden from queries; not (yet) removed from storage.
    Received,
    /// Removed from every block.
    Processed,
}

/// A delete request as persisted and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// Short unique id (8 hex digits, as Loki's).
    pub request_id: String,
    /// The LogQL log selector, as given.
    pub query: String,
    /// First deleted instant (inclusive), ns since the epoch.
    pub start_ns: i64,
    /// Last deleted instant (inclusive), ns since the epoch.
    pub end_ns: i64,
    /// When the request was accepted, ns since the epoch.
    pub created_at_ns: i64,
    /// `received` or `processed`.
    pub status: DeleteStatus,
    /// When physical removal started; from then on the request can no longer
    /// be cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_started_at_ns: Option<i64>,
    /// When every block was rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at_ns: Option<i64>,
}

impl DeleteRequest {
    /// Whether entries are removed from storage (not only hidden): the
    /// request can no longer be cancelled.
    pub fn is_physical(&self) -> bool {
        self.processing_started_at_ns.is_some() || self.status == DeleteStatus::Processed
    }
}

/// What [`Store::cancel_delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The request is gone; its entries are visible again.
    Cancelled,
    /// No request of the tenant has this id.
    NotFound,
    /// Physical removal has started or is done.
    AlreadyProcessing,
}

/// Counters of log deletion since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteMetrics {
    /// Requests accepted.
    pub requests_received: u64,
    /// Requests cancelled.
    pub requests_cancelled: u64,
    /// Requests fully applied.
    pub requests_processed: u64,
    /// Requests not processed yet (gauge, all tenants).
    pub requests_pending: u64,
    /// Entries physically removed (block rewrites, flushes, compactions).
    pub deleted_lines: u64,
}

/// The persisted file of one tenant.
#[derive(Debug, Serialize, Deserialize)]
struct DeletesFile {
    format: u32,
    tenant: String,
    version: u64,
    requests: Vec<DeleteRequest>,
}

/// A request with its compiled selector.
#[derive(Debug)]
pub(crate) struct ActiveDelete {
    pub(crate) request: DeleteRequest,
    selector: DeleteSelector,
}

impl ActiveDelete {
    /// Whether the request selects a stream with these labels and data in
    /// the closed interval `[min_ts, max_ts]`.
    fn selects(&self, labels: &Labels, min_ts: i64, max_ts: i64) -> bool {
        min_ts <= self.request.end_ns
            && max_ts >= self.request.start_ns
            && matches_all(&self.selector.matchers, labels)
    }

    /// Whether some stream of `block` is selected.
    fn selects_block(&self, block: &BlockEntry) -> bool {
        block.meta.min_ts <= self.request.end_ns
            && block.meta.max_ts >= self.request.start_ns
            && block
                .meta
                .streams
                .iter()
                .zip(&block.labels)
                .any(|(s, labels)| self.selects(labels, s.min_ts, s.max_ts))
    }

    #[inline]
    fn deletes(&self, ts: i64, line: &[u8]) -> bool {
        ts >= self.request.start_ns
            && ts <= self.request.end_ns
            && self
                .selector
                .line_filter
                .as_ref()
                .is_none_or(|f| f.keep(line))
    }
}

/// Some delete requests of one tenant, for a scan, a flush or a rewrite.
#[derive(Debug, Clone)]
pub(crate) struct Tombstones(Vec<Arc<ActiveDelete>>);

impl Tombstones {
    /// The requests selecting a stream with `labels` and data in
    /// `[min_ts, max_ts]`; `None` when there is none.
    pub(crate) fn for_stream(
        &self,
        labels: &Labels,
        (min_ts, max_ts): (i64, i64),
    ) -> Option<StreamTombstones> {
        let selected: Vec<Arc<ActiveDelete>> = self
            .0
            .iter()
            .filter(|d| d.selects(labels, min_ts, max_ts))
            .cloned()
            .collect();
        (!selected.is_empty()).then_some(StreamTombstones(selected))
    }
}

/// The delete requests that apply to one stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamTombstones(Vec<Arc<ActiveDelete>>);

impl StreamTombstones {
    /// Whether the entry is deleted by one of the requests.
    #[inline]
    pub(crate) fn deletes(&self, ts: i64, line: &[u8]) -> bool {
        self.0.iter().any(|d| d.deletes(ts, line))
    }
}

/// The delete requests hiding entries of one scan task, per stream of the
/// task (a head task has one stream).
#[derive(Debug)]
pub(crate) struct TaskTombstones(Vec<Option<StreamTombstones>>);

impl TaskTombstones {
    /// Tombstones for a task over `streams` within `bounds`; `None` (no cost
    /// for the task) when no request selects any of them.
    pub(crate) fn build<'a>(
        tombstones: Option<&Tombstones>,
        streams: impl Iterator<Item = &'a Labels>,
        bounds: (i64, i64),
    ) -> Option<Box<TaskTombstones>> {
        let tombstones = tombstones?;
        let per_stream: Vec<Option<StreamTombstones>> = streams
            .map(|labels| tombstones.for_stream(labels, bounds))
            .collect();
        per_stream
            .iter()
            .any(Option::is_some)
            .then(|| Box::new(TaskTombstones(per_stream)))
    }

    /// Whether the entry of the task's `stream`-th stream is deleted.
    #[inline]
    pub(crate) fn hides(&self, stream: usize, ts: i64, line: &[u8]) -> bool {
        self.0
            .get(stream)
            .and_then(Option::as_ref)
            .is_some_and(|t| t.deletes(ts, line))
    }
}

/// The tenant's requests a scan must apply: all of them to head streams;
/// to blocks, those not processed yet (blocks published since were built
/// without the entries of processed requests).
#[derive(Debug, Clone, Default)]
pub(crate) struct ScanTombstones {
    pub(crate) heads: Option<Tombstones>,
    pub(crate) blocks: Option<Tombstones>,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    cancelled: AtomicU64,
    processed: AtomicU64,
    deleted_lines: AtomicU64,
}

/// A tenant's requests, swapped as a whole on every change.
type Requests = Arc<[Arc<ActiveDelete>]>;

/// Every tenant's delete requests, in memory and in the object store.
pub(crate) struct DeleteRegistry {
    config: DeleteConfig,
    object_store: Arc<dyn ObjectStore>,
    /// Tenant → (file version, requests). Requests are swapped as a whole.
    tenants: RwLock<HashMap<String, (u64, Requests)>>,
    /// Serializes read-modify-write of the files.
    writer: tokio::sync::Mutex<()>,
    counters: Counters,
}

impl fmt::Debug for DeleteRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeleteRegistry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn compile(
    config: &DeleteConfig,
    tenant: &str,
    request: DeleteRequest,
) -> Result<Arc<ActiveDelete>, StorageError> {
    let fail = |reason: String| StorageError::DeleteRequest {
        tenant: tenant.to_string(),
        request_id: request.request_id.clone(),
        reason,
    };
    let compiler = config
        .compiler
        .as_ref()
        .ok_or_else(|| fail("no delete query compiler is configured".into()))?;
    let selector = compiler.compile(&request.query).map_err(fail)?;
    Ok(Arc::new(ActiveDelete { request, selector }))
}

impl DeleteRegistry {
    /// Loads every tenant's newest readable delete request file and
    /// compiles its requests.
    pub(crate) async fn load(
        object_store: Arc<dyn ObjectStore>,
        config: DeleteConfig,
    ) -> Result<DeleteRegistry, StorageError> {
        let files = versioned::load_newest(
            object_store.as_ref(),
            "deletes",
            |file: &DeletesFile, version| file.version == version && file.format == DELETES_FORMAT,
        )
        .await?;
        let mut tenants = HashMap::new();
        for (version, file) in files {
            let requests = file
                .requests
                .into_iter()
                .map(|r| compile(&config, &file.tenant, r))
                .collect::<Result<Vec<_>, _>>()?;
            if !requests.is_empty() {
                tracing::info!(tenant = %file.tenant, requests = requests.len(), "loaded delete requests");
            }
            tenants.insert(file.tenant, (version, requests.into()));
        }
        Ok(DeleteRegistry {
            config,
            object_store,
            tenants: RwLock::new(tenants),
            writer: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        })
    }

    fn requests(&self, tenant: &str) -> Option<Requests> {
        self.tenants.read().get(tenant).map(|(_, r)| r.clone())
    }

    /// The requests a scan of `[start_ns, end_ns)` must apply. Take it
    /// *before* the snapshot of the blocks: a request is marked processed
    /// only after its rewritten blocks are published.
    pub(crate) fn for_scan(&self, tenant: &str, start_ns: i64, end_ns: i64) -> ScanTombstones {
        let Some(requests) = self.requests(tenant) else {
            return ScanTombstones::default();
        };
        let overlapping: Vec<Arc<ActiveDelete>> = requests
            .iter()
            .filter(|d| d.request.start_ns < end_ns && d.request.end_ns >= start_ns)
            .cloned()
            .collect();
        if overlapping.is_empty() {
            return ScanTombstones::default();
        }
        let unprocessed: Vec<Arc<ActiveDelete>> = overlapping
            .iter()
            .filter(|d| d.request.status != DeleteStatus::Processed)
            .cloned()
            .collect();
        ScanTombstones {
            blocks: (!unprocessed.is_empty()).then_some(Tombstones(unprocessed)),
            heads: Some(Tombstones(overlapping)),
        }
    }

    /// The requests whose entries are removed when blocks are written
    /// (flushes, compactions, rewrites): processing and processed ones.
    pub(crate) fn physical(&self, tenant: &str) -> Option<Tombstones> {
        let physical: Vec<Arc<ActiveDelete>> = self
            .requests(tenant)?
            .iter()
            .filter(|d| d.request.is_physical())
            .cloned()
            .collect();
        (!physical.is_empty()).then_some(Tombstones(physical))
    }

    /// Counts entries removed from storage.
    pub(crate) fn note_deleted_lines(&self, n: u64) {
        if n > 0 {
            self.counters.deleted_lines.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Writes the tenant's requests as a new version, then swaps them in
    /// memory. The caller holds `writer`.
    async fn persist(
        &self,
        tenant: &str,
        requests: Vec<Arc<ActiveDelete>>,
    ) -> Result<(), StorageError> {
        let version = self.tenants.read().get(tenant).map_or(0, |(v, _)| *v) + 1;
        let file = DeletesFile {
            format: DELETES_FORMAT,
            tenant: tenant.to_string(),
            version,
            requests: requests.iter().map(|d| d.request.clone()).collect(),
        };
        versioned::store_version(
            self.object_store.as_ref(),
            tenant,
            "deletes",
            version,
            &file,
        )
        .await?;
        self.tenants
            .write()
            .insert(tenant.to_string(), (version, requests.into()));
        Ok(())
    }

    /// Replaces some requests of `tenant` (same id) by `updated`, persisted.
    async fn update(&self, tenant: &str, updated: &[DeleteRequest]) -> Result<(), StorageError> {
        let current = self.requests(tenant).unwrap_or_else(|| Arc::new([]));
        let next: Vec<Arc<ActiveDelete>> = current
            .iter()
            .map(|d| {
                match updated
                    .iter()
                    .find(|u| u.request_id == d.request.request_id)
                {
                    Some(u) => Arc::new(ActiveDelete {
                        request: u.clone(),
                        selector: d.selector.clone(),
                    }),
                    None => d.clone(),
                }
            })
            .collect();
        self.persist(tenant, next).await
    }
}

/// An id of 8 hex digits not used by `taken`.
fn new_request_id(taken: &[Arc<ActiveDelete>]) -> String {
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(now_ns());
        let id = format!("{:08x}", h.finish() as u32);
        if !taken.iter().any(|d| d.request.request_id == id) {
            return id;
        }
    }
}

impl Store {
    /// Adds a delete request for `tenant`: entries of streams selected by
    /// `query` with a timestamp in `[start_ns, end_ns]` (inclusive) and, if
    /// the query has line filters, a line they keep, are hidden from every
    /// scan once this returns. The request is persisted first.
    pub async fn add_delete(
        &self,
        tenant: &str,
        query: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<DeleteRequest, StorageError> {
        if tenant.is_empty() {
            return Err(StorageError::InvalidInput("empty tenant".into()));
        }
        if start_ns > end_ns {
            return Err(StorageError::InvalidInput(
                "start time can't be greater than end time".into(),
            ));
        }
        let registry = self.deletes();
        let _writer = registry.writer.lock().await;
        let current = registry.requests(tenant).unwrap_or_else(|| Arc::new([]));
        let request = DeleteRequest {
            request_id: new_request_id(&current),
            query: query.to_string(),
            start_ns,
            end_ns,
            created_at_ns: now_ns(),
            status: DeleteStatus::Received,
            processing_started_at_ns: None,
            processed_at_ns: None,
        };
        let active = compile(&registry.config, tenant, request.clone())
            .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
        let mut next = current.to_vec();
        next.push(active);
        registry.persist(tenant, next).await?;
        registry.counters.received.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%tenant, request_id = %request.request_id, query, start_ns, end_ns, "delete request added");
        Ok(request)
    }

    /// The tenant's delete requests, oldest first.
    pub fn delete_requests(&self, tenant: &str) -> Vec<DeleteRequest> {
        let mut out: Vec<DeleteRequest> = self
            .deletes()
            .requests(tenant)
            .map(|r| r.iter().map(|d| d.request.clone()).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| (a.created_at_ns, &a.request_id).cmp(&(b.created_at_ns, &b.request_id)));
        out
    }

    /// Cancels a request whose physical removal has not started: it is
    /// removed (persisted) and its entries are visible again.
    pub async fn cancel_delete(
        &self,
        tenant: &str,
        request_id: &str,
    ) -> Result<CancelOutcome, StorageError> {
        let registry = self.deletes();
        let _writer = registry.writer.lock().await;
        let current = registry.requests(tenant).unwrap_or_else(|| Arc::new([]));
        let Some(found) = current.iter().find(|d| d.request.request_id == request_id) else {
            return Ok(CancelOutcome::NotFound);
        };
        if found.request.is_physical() {
            return Ok(CancelOutcome::AlreadyProcessing);
        }
        let next: Vec<Arc<ActiveDelete>> = current
            .iter()
            .filter(|d| d.request.request_id != request_id)
            .cloned()
            .collect();
        registry.persist(tenant, next).await?;
        registry.counters.cancelled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%tenant, %request_id, "delete request cancelled");
        Ok(CancelOutcome::Cancelled)
    }

    /// Counters of log deletion.
    pub fn delete_metrics(&self) -> DeleteMetrics {
        let registry = self.deletes();
        let c = &registry.counters;
        let pending = registry
            .tenants
            .read()
            .values()
            .flat_map(|(_, r)| r.iter())
            .filter(|d| d.request.status != DeleteStatus::Processed)
            .count();
        DeleteMetrics {
            requests_received: c.received.load(Ordering::Relaxed),
            requests_cancelled: c.cancelled.load(Ordering::Relaxed),
            requests_processed: c.processed.load(Ordering::Relaxed),
            requests_pending: pending as u64,
            deleted_lines: c.deleted_lines.load(Ordering::Relaxed),
        }
    }

    /// Applies the requests whose cancel period is over: marks them
    /// processing (persisted; no cancel from here on), rewrites every block
    /// holding entries they select without those entries, then marks them
    /// processed. A block that cannot be read now is retried on the next
    /// pass. Called by [`Store::maintain`] under the maintenance lock.
    pub(crate) async fn process_deletes_locked(&self) -> Result<(), StorageError> {
        let registry = self.deletes();
        let now = now_ns();
        let cancel_ns = registry
            .config
            .cancel_period
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        let tenants: Vec<(String, Requests)> = registry
            .tenants
            .read()
            .iter()
            .map(|(t, (_, r))| (t.clone(), r.clone()))
            .collect();
        for (tenant, requests) in tenants {
            let due: Vec<DeleteRequest> = requests
                .iter()
                .filter(|d| {
                    d.request.status == DeleteStatus::Received
                        && d.request.created_at_ns.saturating_add(cancel_ns) <= now
                })
                .map(|d| d.request.clone())
                .collect();
            if due.is_empty() {
                continue;
            }
            // Not cancellable from here on: persisted before any block changes.
            let starting: Vec<DeleteRequest> = due
                .iter()
                .filter(|r| r.processing_started_at_ns.is_none())
                .map(|r| DeleteRequest {
                    processing_started_at_ns: Some(now),
                    ..r.clone()
                })
                .collect();
            if !starting.is_empty() {
                let _writer = registry.writer.lock().await;
                // A cancel may have won the race for the writer lock.
                let still: Vec<DeleteRequest> = starting
                    .into_iter()
                    .filter(|r| {
                        registry
                            .requests(&tenant)
                            .is_some_and(|c| c.iter().any(|d| d.request.request_id == r.request_id))
                    })
                    .collect();
                if !still.is_empty() {
                    registry.update(&tenant, &still).await?;
                }
            }
            let Some(current) = registry.requests(&tenant) else {
                continue;
            };
            let processing: Vec<Arc<ActiveDelete>> = current
                .iter()
                .filter(|d| d.request.status == DeleteStatus::Received && d.request.is_physical())
                .cloned()
                .collect();
            if processing.is_empty() {
                continue;
            }
            let mut complete = true;
            for block in self.healthy_blocks(&tenant) {
                if !processing.iter().any(|d| d.selects_block(&block)) {
                    continue;
                }
                let level = block.meta.level;
                match self.rewrite_blocks(&tenant, &[block], level, true).await? {
                    Rewrite::Done { .. } | Rewrite::Unchanged | Rewrite::Gone => {}
                    Rewrite::Retry => complete = false,
                }
            }
            if !complete {
                tracing::warn!(%tenant, "some blocks could not be rewritten for delete requests; retrying on the next pass");
                continue;
            }
            let done_at = now_ns();
            let processed: Vec<DeleteRequest> = processing
                .iter()
                .map(|d| DeleteRequest {
                    status: DeleteStatus::Processed,
                    processed_at_ns: Some(done_at),
                    ..d.request.clone()
                })
                .collect();
            let _writer = registry.writer.lock().await;
            registry.update(&tenant, &processed).await?;
            registry
                .counters
                .processed
                .fetch_add(processed.len() as u64, Ordering::Relaxed);
            tracing::info!(%tenant, requests = processed.len(), "delete requests processed");
        }
        Ok(())
    }

    /// Runs the delete pass of [`Store::maintain`] alone.
    pub async fn process_deletes(&self) -> Result<(), StorageError> {
        let _m = self.maintenance_lock().await;
        self.process_deletes_locked().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferscope_model::MatchOp;

    #[derive(Debug)]
    struct Contains(&'static str);
    impl LineFilter for Contains {
        fn keep(&self, line: &[u8]) -> bool {
            line.windows(self.0.len()).any(|w| w == self.0.as_bytes())
        }
    }

    fn active(start: i64, end: i64, app: &str, filter: Option<&'static str>) -> Arc<ActiveDelete> {
        Arc::new(ActiveDelete {
            request: DeleteRequest {
                request_id: "00000001".into(),
                query: String::new(),
                start_ns: start,
                end_ns: end,
                created_at_ns: 0,
                status: DeleteStatus::Received,
                processing_started_at_ns: None,
                processed_at_ns: None,
            },
            selector: DeleteSelector {
                matchers: vec![LabelMatcher::new("app", MatchOp::Eq, app).expect("matcher")],
                line_filter: filter.map(|f| Arc::new(Contains(f)) as Arc<dyn LineFilter>),
            },
        })
    }

    #[test]
    fn time_range_is_inclusive_and_filters_apply() {
        let t = Tombstones(vec![
            active(10, 20, "api", None),
            active(0, 100, "api", Some("secret")),
        ]);
        let api = Labels::from_pairs([("app", "api")]);
        let web = Labels::from_pairs([("app", "web")]);
        assert!(t.for_stream(&web, (0, 100)).is_none());
        assert!(t.for_stream(&api, (101, 200)).is_none());
        let s = t.for_stream(&api, (0, 100)).expect("selected");
        assert!(s.deletes(10, b"x") && s.deletes(20, b"x"));
        assert!(!s.deletes(9, b"x") && !s.deletes(21, b"x"));
        assert!(s.deletes(50, b"a secret line"));
        assert!(!s.deletes(101, b"a secret line"));
        let task = TaskTombstones::build(Some(&t), [&web, &api].into_iter(), (0, 100))
            .expect("one stream selected");
        assert!(!task.hides(0, 15, b"x"));
        assert!(task.hides(1, 15, b"x"));
        assert!(TaskTombstones::build(Some(&t), [&web].into_iter(), (0, 100)).is_none());
        assert!(TaskTombstones::build(None, [&api].into_iter(), (0, 100)).is_none());
    }

    #[test]
    fn request_ids_are_unique_hex() {
        let id = new_request_id(&[]);
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let taken = vec![active(0, 1, "a", None)];
        assert_ne!(new_request_id(&taken), "00000001");
    }
}
