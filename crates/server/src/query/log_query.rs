//! Executes LogQL log queries (`{…} |= "x" | json | level="error"`).
//!
//! 1. The leading line filters are pushed down into the storage scan, so
//!    lines that cannot match are dropped next to the decompressed bytes.
//! 2. Storage returns independent scan tasks (head streams, block row
//!    ranges). They run on the rayon pool, newest first for `backward`
//!    (oldest first for `forward`), in waves of a few tasks.
//! 3. Each task keeps only its best `limit` entries in a heap; once the global
//!    heap is full and no remaining task can beat its worst entry, the rest
//!    is skipped. Entries that cannot make the cut skip the pipeline.
//! 4. The survivors are grouped into result streams by their final labels.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use inferscope_model::{Direction, Labels, TimeRange};
use inferscope_query::{LineFilter, LogSelector, Pipeline};
use inferscope_storage::{ScanRequest, ScanTask, Store};
use rayon::prelude::*;

/// A log query, ready to run.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// Tenant whose data is read.
    pub tenant: String,
    /// The parsed query.
    pub selector: LogSelector,
    /// `[start, end)`.
    pub range: TimeRange,
    /// Most entries returned, over all streams.
    pub limit: usize,
    /// Newest first or oldest first.
    pub direction: Direction,
    /// Keep stream labels, structured metadata and parsed labels apart
    /// (`X-Loki-Response-Encoding-Flags: categorize-labels`).
    pub categorize_labels: bool,
}

/// One entry of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultEntry {
    /// Nanoseconds since the epoch.
    pub timestamp_ns: i64,
    /// The line after the pipeline.
    pub line: String,
    /// Structured metadata (only filled when categorizing).
    pub structured_metadata: Vec<(String, String)>,
    /// Parsed labels (only filled when categorizing).
    pub parsed: Vec<(String, String)>,
}

/// A result stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultStream {
    /// The stream's labels (all labels, or only stream labels when categorizing).
    pub labels: Labels,
    /// Entries in the query's direction.
    pub entries: Vec<ResultEntry>,
}

/// Execution statistics for the `stats` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    /// Line bytes looked at.
    pub bytes_scanned: u64,
    /// Lines looked at.
    pub lines_scanned: u64,
    /// Lines that passed the whole pipeline.
    pub lines_post_filter: u64,
    /// Entries returned.
    pub entries_returned: u64,
    /// Scan tasks run.
    pub tasks_run: u64,
    /// Scan tasks skipped because the limit was reached.
    pub tasks_skipped: u64,
    /// Wall time in seconds.
    pub exec_seconds: f64,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum LogQueryError {
    /// The pipeline did not compile.
    #[error("{0}")]
    Pipeline(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] inferscope_storage::StorageError),
    /// Cancelled by the query timeout.
    #[error("query timed out")]
    Cancelled,
}

/// Pushes a LogQL line filter down into the storage scan.
pub(crate) struct PushedDownFilter(pub(crate) LineFilter);

impl inferscope_storage::LineFilter for PushedDownFilter {
    fn keep(&self, line: &[u8]) -> bool {
        self.0.matches(line)
    }
}

/// A candidate result entry; ordered so the heap's top is the *worst* kept one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    /// Sort key: ts for backward (keep largest: min-heap by Reverse), -ts for forward.
    key: Reverse<(i64, u64)>,
    labels: Labels,
    entry: ResultEntry,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Keeps the best `limit` candidates: the newest for backward, oldest for forward.
struct TopK {
    heap: BinaryHeap<Candidate>,
    limit: usize,
    direction: Direction,
    seq: u64,
}

impl TopK {
    fn new(limit: usize, direction: Direction) -> Self {
        TopK {
            heap: BinaryHeap::with_capacity(limit.min(4096) + 1),
            limit,
            direction,
            seq: 0,
        }
    }

    /// Larger is better.
    fn score(&self, ts: i64) -> i64 {
        match self.direction {
            Direction::Backward => ts,
            Direction::Forward => ts.checked_neg().unwrap_or(i64::MAX),
        }
    }

    /// Whether an entry at `ts` could still enter the set.
    fn admits(&self, ts: i64) -> bool {
        self.heap.len() < self.limit
            || self
                .heap
                .peek()
                .is_some_and(|worst| self.score(ts) > worst.key.0.0)
    }

    fn push(&mut self, labels: Labels, entry: ResultEntry) {
        self.seq += 1;
        let key = Reverse((self.score(entry.timestamp_ns), self.seq));
        self.heap.push(Candidate { key, labels, entry });
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    fn merge(&mut self, other: TopK) {
        for c in other.heap {
            if self.admits(c.entry.timestamp_ns) {
                self.push(c.labels, c.entry);
            }
        }
    }

    /// The score of the worst kept entry once full.
    fn cutoff(&self) -> Option<i64> {
        (self.heap.len() >= self.limit)
            .then(|| self.heap.peek().map(|c| c.key.0.0))
            .flatten()
    }
}

#[derive(Default)]
struct TaskOutput {
    bytes: u64,
    lines: u64,
    post_filter: u64,
}

fn run_task(
    task: &ScanTask,
    pipeline: &Pipeline,
    query: &LogQuery,
    mut top: TopK,
) -> Result<(TopK, TaskOutput), inferscope_storage::StorageError> {
    let mut out = TaskOutput::default();
    let stats = task.run(&mut |labels, entry| {
        if !top.admits(entry.timestamp_ns) {
            return;
        }
        let metadata: Vec<(String, String)> = entry.structured_metadata.to_vec();
        let Some(processed) = pipeline.process(entry.timestamp_ns, entry.line, labels, &metadata)
        else {
            return;
        };
        out.post_filter += 1;
        let (labels, structured_metadata, parsed) = if query.categorize_labels {
            (
                processed.stream.clone(),
                processed.structured_metadata.clone(),
                processed.parsed.clone(),
            )
        } else {
            (processed.all_labels(), Vec::new(), Vec::new())
        };
        top.push(
            labels,
            ResultEntry {
                timestamp_ns: entry.timestamp_ns,
                line: processed.line,
                structured_metadata,
                parsed,
            },
        );
    })?;
    out.bytes = stats.bytes_scanned;
    out.lines = stats.lines_scanned;
    Ok((top, out))
}

/// Runs a log query to completion (or until `cancel` is set).
pub async fn execute(
    store: &Store,
    query: LogQuery,
    cancel: Arc<AtomicBool>,
) -> Result<(Vec<ResultStream>, QueryStats), LogQueryError> {
    let started = Instant::now();
    // Storage already applied the pushed-down line filters.
    let pipeline = query
        .selector
        .pipeline_after_prefilter()
        .map_err(|e| LogQueryError::Pipeline(e.to_string()))?;
    let line_filter = query
        .selector
        .line_prefilter()
        .map(|f| Arc::new(PushedDownFilter(f)) as Arc<dyn inferscope_storage::LineFilter>);
    let request = ScanRequest {
        tenant: query.tenant.clone(),
        matchers: query.selector.matchers.clone(),
        range: query.range,
        line_filter,
        id_hint: super::selector::id_hint(&query.selector),
    };
    let tasks = store.scan(&request).await?;
    let (streams, mut stats) =
        tokio::task::spawn_blocking(move || run_tasks(tasks, &pipeline, &query, &cancel))
            .await
            .map_err(|_| LogQueryError::Cancelled)??;
    stats.exec_seconds = started.elapsed().as_secs_f64();
    Ok((streams, stats))
}

fn run_tasks(
    mut tasks: Vec<ScanTask>,
    pipeline: &Pipeline,
    query: &LogQuery,
    cancel: &AtomicBool,
) -> Result<(Vec<ResultStream>, QueryStats), LogQueryError> {
    // Best tasks first: newest max for backward, oldest min for forward.
    match query.direction {
        Direction::Backward => tasks.sort_by_key(|t| Reverse(t.time_bounds().1)),
        Direction::Forward => tasks.sort_by_key(|t| t.time_bounds().0),
    }
    let mut stats = QueryStats::default();
    let mut global = TopK::new(query.limit, query.direction);
    let wave = rayon::current_num_threads().max(1) * 2;
    let mut next = 0;
    while next < tasks.len() {
        if cancel.load(Ordering::Relaxed) {
            return Err(LogQueryError::Cancelled);
        }
        // Skip what cannot beat the current worst kept entry.
        if let Some(cutoff) = global.cutoff() {
            let best_possible = |t: &ScanTask| {
                let (min, max) = t.time_bounds();
                match query.direction {
                    Direction::Backward => max,
                    Direction::Forward => min.checked_neg().unwrap_or(i64::MAX),
                }
            };
            if best_possible(&tasks[next]) <= cutoff {
                // Tasks are sorted best-first, so none after can either.
                stats.tasks_skipped += (tasks.len() - next) as u64;
                break;
            }
        }
        let end = (next + wave).min(tasks.len());
        let results: Vec<_> = tasks[next..end]
            .par_iter()
            .map(|task| {
                run_task(
                    task,
                    pipeline,
                    query,
                    TopK::new(query.limit, query.direction),
                )
            })
            .collect();
        for result in results {
            let (top, out) = result?;
            stats.bytes_scanned += out.bytes;
            stats.lines_scanned += out.lines;
            stats.lines_post_filter += out.post_filter;
            global.merge(top);
        }
        stats.tasks_run += (end - next) as u64;
        next = end;
    }

    let mut by_stream: BTreeMap<Labels, Vec<ResultEntry>> = BTreeMap::new();
    for candidate in global.heap {
        by_stream
            .entry(candidate.labels)
            .or_default()
            .push(candidate.entry);
    }
    let mut streams: Vec<ResultStream> = by_stream
        .into_iter()
        .map(|(labels, mut entries)| {
            // A client that retries a push (after a timeout or a 5xx) sends the
            // same entries again: like Loki, identical (timestamp, line) pairs
            // of one stream are returned once.
            entries.sort_by(|a, b| (a.timestamp_ns, &a.line).cmp(&(b.timestamp_ns, &b.line)));
            entries.dedup_by(|a, b| a.timestamp_ns == b.timestamp_ns && a.line == b.line);
            match query.direction {
                Direction::Backward => entries.sort_by_key(|e| Reverse(e.timestamp_ns)),
                Direction::Forward => entries.sort_by_key(|e| e.timestamp_ns),
            }
            ResultStream { labels, entries }
        })
        .collect();
    streams.sort_by(|a, b| a.labels.cmp(&b.labels));
    stats.entries_returned = streams.iter().map(|s| s.entries.len() as u64).sum();
    Ok((streams, stats))
}
