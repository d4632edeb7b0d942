//! The results cache of metric range queries: a repeated dashboard query
//! recomputes only what may have changed since it last ran.
//!
//! Every point of a range query depends only on the data in its own window,
//! so a query's points can be cut into *splits* of
//! `limits_config.split_queries_by_interval` (aligned to the epoch, as Loki
//! aligns them) and each split cached on its own, keyed by tenant, canonical
//! query, step and split start. A query then evaluates only the runs of
//! splits it does not find, in as few evaluations as there are runs (a cold
//! query is one evaluation, as without the cache).
//!
//! A cached split remembers which of its grid points it holds (an *extent*,
//! as Loki's results cache keeps them): a query whose points in the split are
//! among them is answered from it, so the partial first split of a sliding
//! dashboard range is reused too. A split is cached only when it is old
//! enough (it ends before `now - max_cache_freshness_per_query`) and young
//! enough (its data window starts after the retention cutoff). It stays valid while its tenant's
//! *epoch* is unchanged: the epoch moves on every write of an entry older
//! than the freshness horizon (late data could land in a cached window) and
//! on every deletion. Writes of recent entries — the normal case — leave the
//! cached splits alone, since no cached split covers their time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use inferscope_model::Labels;
use inferscope_query::engine::{Sample, Series, Value};
use parking_lot::Mutex;

/// Settings, from `query_range` and `limits_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Whether results are cached at all.
    pub enabled: bool,
    /// Most bytes the cached results may take.
    pub max_bytes: usize,
    /// How long a cached split may be served.
    pub ttl: Duration,
    /// Split length in nanoseconds.
    pub split_ns: i64,
    /// Splits ending after `now - freshness_ns` are not cached.
    pub freshness_ns: i64,
    /// Data older than this is removed by retention (`None`: kept forever).
    pub retention_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SplitKey {
    tenant: String,
    query: String,
    step_ns: i64,
    /// Where the step grid falls (`start mod step`).
    phase_ns: i64,
    /// The split's number (its start / split length).
    split: i64,
}

#[derive(Debug)]
struct Cached {
    epoch: u64,
    /// First and last grid point held.
    from_ns: i64,
    to_ns: i64,
    stored: Instant,
    series: Arc<Vec<Series>>,
    bytes: usize,
    tick: u64,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<SplitKey, Cached>,
    /// Least recently used first.
    lru: BTreeMap<u64, SplitKey>,
    tick: u64,
    bytes: usize,
}

/// What one cached evaluation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheOutcome {
    /// Splits answered from the cache.
    pub hits: u64,
    /// Cacheable splits that had to be evaluated.
    pub misses: u64,
    /// Evaluations run (runs of splits not found).
    pub evaluations: u64,
}

/// The cache; shared by every query of the server.
#[derive(Debug)]
pub struct ResultsCache {
    settings: CacheSettings,
    entries: Mutex<Entries>,
    epochs: Mutex<HashMap<String, u64>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// One split of a query: the points `first..=last` (indices into the grid).
#[derive(Debug, Clone, Copy)]
struct Split {
    first: usize,
    last: usize,
    cacheable: bool,
}

impl ResultsCache {
    /// An empty cache.
    pub fn new(settings: CacheSettings) -> Self {
        ResultsCache {
            settings,
            entries: Mutex::default(),
            epochs: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether results are cached.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Records a write of entries whose oldest timestamp is `min_ts_ns`.
    pub fn note_write(&self, tenant: &str, min_ts_ns: i64, now_ns: i64) {
        if self.settings.enabled && min_ts_ns <= now_ns - self.settings.freshness_ns {
            self.invalidate(tenant);
        }
    }

    /// Forgets every cached result of `tenant` (after a deletion, say).
    pub fn invalidate(&self, tenant: &str) {
        *self.epochs.lock().entry(tenant.to_string()).or_default() += 1;
    }

    fn epoch(&self, tenant: &str) -> u64 {
        self.epochs.lock().get(tenant).copied().unwrap_or(0)
    }

    /// (hits, misses) since start, for `/metrics`.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bytes held and number of cached splits.
    pub fn size(&self) -> (usize, usize) {
        let e = self.entries.lock();
        (e.bytes, e.map.len())
    }

    /// Cuts the grid `start, start+step, …, ≤ end` into splits; `lookback_ns`
    /// is how far before a point its data window starts (range + offset).
    fn splits(&self, start: i64, end: i64, step: i64, lookback_ns: i64, now_ns: i64) -> Vec<Split> {
        let s = &self.settings;
        let n = ((end - start) / step + 1) as usize;
        let point = |i: usize| start + i as i64 * step;
        let mut out: Vec<Split> = Vec::new();
        for i in 0..n {
            let k = point(i).div_euclid(s.split_ns);
            match out.last_mut() {
                Some(last) if point(last.first).div_euclid(s.split_ns) == k => last.last = i,
                _ => out.push(Split {
                    first: i,
                    last: i,
                    cacheable: false,
                }),
            }
        }
        let ttl_ns = i64::try_from(s.ttl.as_nanos()).unwrap_or(i64::MAX);
        for split in &mut out {
            let k = point(split.first).div_euclid(s.split_ns);
            let hi = (k + 1) * s.split_ns;
            let settled = hi <= now_ns - s.freshness_ns;
            // Retention must not reach the split's data while it is cached,
            // or the cached result would go stale without any write.
            let window_start = point(split.first).saturating_sub(lookback_ns);
            let retained = s
                .retention_ns
                .is_none_or(|r| window_start > (now_ns - r).saturating_add(ttl_ns));
            split.cacheable = s.enabled && settled && retained;
        }
        out
    }

    /// The cached series of `key` restricted to the points `from..=to`, if
    /// a valid entry holds them all.
    fn get(&self, key: &SplitKey, epoch: u64, from: i64, to: i64) -> Option<Vec<Series>> {
        let mut e = self.entries.lock();
        let entries = &mut *e;
        let cached = entries.map.get_mut(key)?;
        if cached.epoch != epoch
            || cached.stored.elapsed() > self.settings.ttl
            || from < cached.from_ns
            || to > cached.to_ns
        {
            return None;
        }
        entries.tick += 1;
        entries.lru.remove(&cached.tick);
        cached.tick = entries.tick;
        entries.lru.insert(cached.tick, key.clone());
        let series = cached.series.clone();
        drop(e);
        Some(slice(&series, from, to))
    }

    /// Caches `series` as the points `from..=to` of `key`, unless a valid
    /// entry already holds more.
    fn put(&self, key: SplitKey, epoch: u64, (from, to): (i64, i64), series: Vec<Series>) {
        let bytes = size_of_series(&series);
        if bytes > self.settings.max_bytes {
            return;
        }
        let mut e = self.entries.lock();
        let entries = &mut *e;
        if let Some(old) = entries.map.get(&key)
            && old.epoch == epoch
            && old.from_ns <= from
            && old.to_ns >= to
            && old.stored.elapsed() <= self.settings.ttl
        {
            return;
        }
        entries.tick += 1;
        let tick = entries.tick;
        if let Some(old) = entries.map.remove(&key) {
            entries.lru.remove(&old.tick);
            entries.bytes -= old.bytes;
        }
        entries.lru.insert(tick, key.clone());
        entries.bytes += bytes;
        entries.map.insert(
            key,
            Cached {
                epoch,
                from_ns: from,
                to_ns: to,
                stored: Instant::now(),
                series: Arc::new(series),
                bytes,
                tick,
            },
        );
        while entries.bytes > self.settings.max_bytes {
            let Some((_, oldest)) = entries.lru.pop_first() else {
                break;
            };
            if let Some(old) = entries.map.remove(&oldest) {
                entries.bytes -= old.bytes;
            }
        }
    }

    /// Evaluates the range query `query` (canonical text) of `tenant` over the
    /// grid `start, start+step, …, ≤ end`, taking what it can from the cache.
    /// `eval(a, b)` evaluates the same query over the grid points `a..=b`.
    pub fn evaluate<E>(
        &self,
        tenant: &str,
        query: &str,
        (start, end, step): (i64, i64, i64),
        lookback_ns: i64,
        now_ns: i64,
        mut eval: impl FnMut(i64, i64) -> Result<Value, E>,
    ) -> Result<(Vec<Series>, CacheOutcome), E> {
        let mut outcome = CacheOutcome::default();
        if step <= 0 || end < start {
            return Ok((as_series(eval(start, end)?, start), outcome));
        }
        let epoch = self.epoch(tenant);
        let point = |i: usize| start + i as i64 * step;
        let key = |split: &Split| SplitKey {
            tenant: tenant.to_string(),
            query: query.to_string(),
            step_ns: step,
            phase_ns: start.rem_euclid(step),
            split: point(split.first).div_euclid(self.settings.split_ns),
        };
        let splits = self.splits(start, end, step, lookback_ns, now_ns);
        let found: Vec<Option<Vec<Series>>> = splits
            .iter()
            .map(|s| {
                s.cacheable
                    .then(|| self.get(&key(s), epoch, point(s.first), point(s.last)))
                    .flatten()
            })
            .collect();
        let mut found = found;
        let mut parts: Vec<Vec<Series>> = Vec::new();
        let mut i = 0;
        while i < splits.len() {
            // Entries before `i` were taken; only later ones are looked at.
            if let Some(hit) = found[i].take() {
                outcome.hits += 1;
                parts.push(hit);
                i += 1;
                continue;
            }
            // A run of splits not found: one evaluation, then cut it up.
            let mut j = i;
            while j + 1 < splits.len() && found[j + 1].is_none() {
                j += 1;
            }
            let (a, b) = (point(splits[i].first), point(splits[j].last));
            let run = as_series(eval(a, b)?, a);
            outcome.evaluations += 1;
            for split in &splits[i..=j] {
                if split.cacheable {
                    outcome.misses += 1;
                    let (from, to) = (point(split.first), point(split.last));
                    self.put(key(split), epoch, (from, to), slice(&run, from, to));
                }
            }
            parts.push(run);
            i = j + 1;
        }
        self.hits.fetch_add(outcome.hits, Ordering::Relaxed);
        self.misses.fetch_add(outcome.misses, Ordering::Relaxed);
        Ok((merge(parts), outcome))
    }
}

/// A result as series: an instant vector or scalar (a one-point run) becomes
/// series of one sample at `at`, as a range query would return them.
fn as_series(value: Value, at: i64) -> Vec<Series> {
    match value {
        Value::Matrix(m) => m,
        Value::Vector(v) => v
            .into_iter()
            .map(|s| Series {
                labels: s.labels,
                samples: vec![Sample {
                    timestamp_ns: at,
                    value: s.sample.value,
                }],
            })
            .collect(),
        Value::Scalar(s) => vec![Series {
            labels: Labels::empty(),
            samples: vec![Sample {
                timestamp_ns: at,
                value: s.value,
            }],
        }],
    }
}

/// The samples of `run` with timestamps in `[from, to]`.
fn slice(run: &[Series], from: i64, to: i64) -> Vec<Series> {
    run.iter()
        .filter_map(|s| {
            let samples: Vec<Sample> = s
                .samples
                .iter()
                .filter(|p| p.timestamp_ns >= from && p.timestamp_ns <= to)
                .copied()
                .collect();
            (!samples.is_empty()).then(|| Series {
                labels: s.labels.clone(),
                samples,
            })
        })
        .collect()
}

/// Joins consecutive parts (in time order) into series sorted by labels.
fn merge(parts: Vec<Vec<Series>>) -> Vec<Series> {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let mut by_labels: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for part in parts {
        for s in part {
            by_labels.entry(s.labels).or_default().extend(s.samples);
        }
    }
    by_labels
        .into_iter()
        .map(|(labels, samples)| Series { labels, samples })
        .collect()
}

/// Approximate heap bytes of cached series.
fn size_of_series(series: &[Series]) -> usize {
    series
        .iter()
        .map(|s| {
            96 + s
                .labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
                + s.samples.len() * std::mem::size_of::<Sample>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const H: i64 = 3600 * S;

    fn settings() -> CacheSettings {
        CacheSettings {
            enabled: true,
            max_bytes: 1 << 20,
            ttl: Duration::from_secs(3600),
            split_ns: H,
            freshness_ns: 600 * S,
            retention_ns: None,
        }
    }

    /// A fake query: one series whose value at t is t in seconds, so any
    /// mix-up of points shows; records what it was asked.
    fn fake(
        calls: &mut Vec<(i64, i64)>,
        step: i64,
    ) -> impl FnMut(i64, i64) -> Result<Value, ()> + '_ {
        move |a, b| {
            calls.push((a, b));
            let samples = (0..=(b - a) / step)
                .map(|i| Sample {
                    timestamp_ns: a + i * step,
                    value: ((a + i * step) / S) as f64,
                })
                .collect();
            Ok(Value::Matrix(vec![Series {
                labels: Labels::parse(r#"{app="gw"}"#).expect("labels"),
                samples,
            }]))
        }
    }

    fn expected(start: i64, end: i64, step: i64) -> Vec<Series> {
        let mut calls = Vec::new();
        match fake(&mut calls, step)(start, end) {
            Ok(Value::Matrix(m)) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_repeated_query_is_answered_from_settled_splits() {
        let cache = ResultsCache::new(settings());
        let now = 100 * H + 30 * 60 * S;
        let step = 60 * S;
        // 24 h ending now, start not on an hour: the first split is partial
        // (cached as an extent), the last one (within 10 min of now) is not settled.
        let (start, end) = (now - 24 * H, now);
        let mut calls = Vec::new();
        let (first, o) = cache
            .evaluate(
                "fake",
                "q",
                (start, end, step),
                0,
                now,
                fake(&mut calls, step),
            )
            .expect("eval");
        assert_eq!(first, expected(start, end, step));
        assert_eq!(calls, vec![(start, end)], "a cold query is one evaluation");
        assert_eq!((o.hits, o.misses), (0, 24));

        let mut calls = Vec::new();
        let (second, o) = cache
            .evaluate(
                "fake",
                "q",
                (start, end, step),
                0,
                now,
                fake(&mut calls, step),
            )
            .expect("eval");
        assert_eq!(second, first);
        assert_eq!(o.hits, 24);
        // Only the current hour is evaluated.
        assert_eq!(calls, vec![(100 * H, end)]);

        // The range slides by two steps: the first split's points are still
        // among the cached ones; the rest as before.
        let later = (start + 2 * step, end + 2 * step);
        let mut calls = Vec::new();
        let (third, o) = cache
            .evaluate(
                "fake",
                "q",
                (later.0, later.1, step),
                0,
                now,
                fake(&mut calls, step),
            )
            .expect("eval");
        assert_eq!(third, expected(later.0, later.1, step));
        assert_eq!(o.hits, 24);
        assert_eq!(calls, vec![(100 * H, later.1)]);

        // Sliding back before the cached extent misses the first split only.
        let earlier = (start - step, end - step);
        let mut calls = Vec::new();
        let (fourth, o) = cache
            .evaluate(
                "fake",
                "q",
                (earlier.0, earlier.1, step),
                0,
                now,
                fake(&mut calls, step),
            )
            .expect("eval");
        assert_eq!(fourth, expected(earlier.0, earlier.1, step));
        assert_eq!(o.hits, 23);
        assert_eq!(
            calls,
            vec![(earlier.0, 77 * H - step), (100 * H, earlier.1)]
        );
    }

    #[test]
    fn late_writes_and_deletions_invalidate_recent_writes_do_not() {
        let cache = ResultsCache::new(settings());
        let now = 50 * H;
        let step = 60 * S;
        let run = |cache: &ResultsCache| {
            let mut calls = Vec::new();
            cache
                .evaluate(
                    "t",
                    "q",
                    (40 * H, 48 * H - step, step),
                    0,
                    now,
                    fake(&mut calls, step),
                )
                .expect("eval")
                .1
        };
        assert_eq!(run(&cache).misses, 8);
        cache.note_write("t", now - 60 * S, now); // recent: fine
        cache.note_write("other", 0, now); // another tenant: fine
        assert_eq!(run(&cache).hits, 8);
        cache.note_write("t", 41 * H, now); // late data
        assert_eq!(run(&cache).hits, 0);
        assert_eq!(run(&cache).hits, 8);
        cache.invalidate("t");
        assert_eq!(run(&cache).hits, 0);
    }

    #[test]
    fn memory_is_bounded_and_the_least_recently_used_goes_first() {
        let cache = ResultsCache::new(CacheSettings {
            max_bytes: 3 * 1024,
            ..settings()
        });
        let now = 50 * H;
        let step = 60 * S;
        let mut calls = Vec::new();
        for q in ["a", "b", "c", "d"] {
            cache
                .evaluate(
                    "t",
                    q,
                    (40 * H, 41 * H - step, step),
                    0,
                    now,
                    fake(&mut calls, step),
                )
                .expect("eval");
        }
        let (bytes, count) = cache.size();
        assert!(bytes <= 3 * 1024, "{bytes}");
        assert!(count < 4);
        let mut calls = Vec::new();
        let (_, o) = cache
            .evaluate(
                "t",
                "d",
                (40 * H, 41 * H - step, step),
                0,
                now,
                fake(&mut calls, step),
            )
            .expect("eval");
        assert_eq!(o.hits, 1, "the newest entry survives");
    }

    #[test]
    fn splits_whose_data_retention_may_remove_are_not_cached() {
        let cache = ResultsCache::new(CacheSettings {
            retention_ns: Some(24 * H),
            ..settings()
        });
        let now = 100 * H;
        let step = 60 * S;
        // Points from 76 h to 84 h with a 2 h lookback: data from 74 h; the
        // retention cutoff is 76 h, plus the 1 h ttl: splits up to 79 h are out.
        let mut calls = Vec::new();
        let (_, o) = cache
            .evaluate(
                "t",
                "q",
                (76 * H, 84 * H - step, step),
                2 * H,
                now,
                fake(&mut calls, step),
            )
            .expect("eval");
        assert_eq!(o.misses, 4, "76..79 h are not cacheable, 80..83 h are");
    }

    #[test]
    fn disabled_or_fresh_or_misaligned_splits_are_not_cached() {
        let now = 50 * H;
        let step = 60 * S;
        let off = ResultsCache::new(CacheSettings {
            enabled: false,
            ..settings()
        });
        let mut calls = Vec::new();
        let (_, o) = off
            .evaluate(
                "t",
                "q",
                (40 * H, 48 * H, step),
                0,
                now,
                fake(&mut calls, step),
            )
            .expect("eval");
        assert_eq!(
            o,
            CacheOutcome {
                hits: 0,
                misses: 0,
                evaluations: 1
            }
        );
        let cache = ResultsCache::new(settings());
        // A 7-minute step does not tile an hour: results stay right.
        let step = 7 * 60 * S;
        for _ in 0..2 {
            let mut calls = Vec::new();
            let (got, _) = cache
                .evaluate(
                    "t",
                    "q7",
                    (40 * H, 49 * H, step),
                    0,
                    now,
                    fake(&mut calls, step),
                )
                .expect("eval");
            assert_eq!(got, expected(40 * H, 49 * H, step));
        }
    }
}
