//! Temporality normalization: every OTLP point becomes an *increment* of its source
//! stream (metric name + resource + point attributes), so the store can keep each
//! counter as its own running total that never decreases.
//!
//! * DELTA points are increments as sent; a point whose time is not after the
//!   stream's last point is out of order or a duplicate and is rejected.
//! * CUMULATIVE points are diffed against the previous point of the stream: with the
//!   same `start_time_unix_nano` the increment is `value - previous`; a new start
//!   time, a decrease, or no previous point is a reset and the whole value is the
//!   increment. A point not after the previous one is rejected.
//! * Histograms are diffed per bucket, sum and count. When the bounds change between
//!   two cumulative points of one start (an exponential histogram changing scale or
//!   offset), the previous buckets are re-bucketed into the new bounds first.
//!
//! The per-stream state ([`StreamState`]) is what must survive a restart: the store
//! logs every changed state in the same WAL record as the samples it produced, and
//! keeps all of them in its snapshot.

/// Identity of a source stream: a 128-bit hash of the tenant-local metric name,
/// resource attributes and point attributes (two FNV-1a passes with different bases,
/// stable across processes and versions since it is stored on disk).
pub(crate) type StreamKey = (u64, u64);

/// A `HashMap` keyed by ids or hashes.
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, inferscope_model::hash::FastBuildHasher>;

/// FNV-1a state for building a [`StreamKey`] incrementally.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHasher(u64, u64);

impl KeyHasher {
    pub(crate) fn new() -> Self {
        KeyHasher(0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0100_0000_01b3;
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
            self.1 = (self.1 ^ u64::from(b)).wrapping_mul(PRIME);
        }
        // A separator so ("ab","c") and ("a","bc") differ.
        self.0 = (self.0 ^ 0xff).wrapping_mul(PRIME);
        self.1 = (self.1 ^ 0xfe).wrapping_mul(PRIME);
    }

    pub(crate) fn finish(self) -> StreamKey {
        (self.0, self.1)
    }
}

/// What the accumulator remembers of one source stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamState {
    /// A number stream. For delta counters only `last_time` matters; cumulative
    /// counters keep their last value; delta up-down sums keep their running value.
    Number {
        start: u64,
        last_time: u64,
        value: f64,
    },
    /// A histogram (or summary) stream; the vectors are empty for delta streams.
    Histogram(HistState),
}

impl StreamState {
    pub(crate) fn last_time(&self) -> u64 {
        match self {
            StreamState::Number { last_time, .. } => *last_time,
            StreamState::Histogram(h) => h.last_time,
        }
    }
}

/// The previous cumulative histogram point of a stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistState {
    pub(crate) start: u64,
    pub(crate) last_time: u64,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) bounds: Vec<f64>,
    pub(crate) buckets: Vec<u64>,
}

/// Aggregation temporality of a sum or histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Temporality {
    Delta,
    Cumulative,
}

/// A monotonic counter point: returns the increment and the stream's new state, or
/// why the point is rejected.
pub(crate) fn counter_increment(
    prev: Option<&StreamState>,
    temporality: Temporality,
    start: u64,
    time: u64,
    value: f64,
) -> Result<(f64, StreamState), String> {
    if !value.is_finite() {
        return Err(format!("non-finite value {value} in a monotonic sum"));
    }
    if value < 0.0 {
        return Err(format!("negative value {value} in a monotonic sum"));
    }
    if let Some(prev) = prev
        && time <= prev.last_time()
    {
        return Err(out_of_order(time, prev.last_time()));
    }
    match temporality {
        Temporality::Delta => Ok((
            value,
            StreamState::Number {
                start,
                last_time: time,
                value: 0.0,
            },
        )),
        Temporality::Cumulative => {
            let increment = match prev {
                Some(StreamState::Number {
                    start: prev_start,
                    value: prev_value,
                    ..
                }) if *prev_start == start && value >= *prev_value => value - prev_value,
                _ => value,
            };
            Ok((
                increment,
                StreamState::Number {
                    start,
                    last_time: time,
                    value,
                },
            ))
        }
    }
}

/// A delta point of a non-monotonic sum: returns the new running value.
pub(crate) fn updown_delta(
    prev: Option<&StreamState>,
    time: u64,
    value: f64,
) -> Result<(f64, StreamState), String> {
    if value.is_nan() {
        return Err("NaN value in a sum".to_string());
    }
    let mut running = value;
    if let Some(prev) = prev {
        if time <= prev.last_time() {
            return Err(out_of_order(time, prev.last_time()));
        }
        if let StreamState::Number { value: v, .. } = prev {
            running += v;
        }
    }
    Ok((
        running,
        StreamState::Number {
            start: 0,
            last_time: time,
            value: running,
        },
    ))
}

fn out_of_order(time: u64, last: u64) -> String {
    format!(
        "point at {time} is not after the stream's last point at {last} (out of order or duplicate)"
    )
}

/// A histogram point as sent (explicit buckets, not cumulative over `le`).
pub(crate) struct HistPoint<'a> {
    pub(crate) start: u64,
    pub(crate) time: u64,
    pub(crate) count: u64,
    pub(crate) sum: Option<f64>,
    pub(crate) bounds: &'a [f64],
    pub(crate) buckets: &'a [u64],
}

/// The increment of a histogram point since the previous point of its stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistIncrement {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    /// Per bucket (not cumulative over `le`), `bounds.len() + 1` of them.
    pub(crate) buckets: Vec<u64>,
}

/// Validates a histogram point and computes its increment and the stream's new
/// state. A count that disagrees with the buckets is accepted with a warning pushed
/// to `warnings` (the buckets' sum is used as the count).
pub(crate) fn histogram_increment(
    prev: Option<&StreamState>,
    temporality: Temporality,
    p: &HistPoint<'_>,
    warnings: &mut Vec<String>,
) -> Result<(HistIncrement, StreamState), String> {
    if p.buckets.len() != p.bounds.len() + 1 {
        return Err(format!(
            "{} bucket counts for {} explicit bounds (want bounds + 1)",
            p.buckets.len(),
            p.bounds.len()
        ));
    }
    if p.bounds.iter().any(|b| !b.is_finite()) || p.bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("explicit bounds are not finite and strictly increasing".to_string());
    }
    if let Some(sum) = p.sum
        && !sum.is_finite()
    {
        return Err(format!("non-finite histogram sum {sum}"));
    }
    let Some(bucket_total) = p.buckets.iter().try_fold(0u64, |a, &b| a.checked_add(b)) else {
        return Err("bucket counts overflow".to_string());
    };
    let count = if bucket_total != p.count {
        warnings.push(format!(
            "histogram count {} differs from the sum of its bucket counts {bucket_total}; using the buckets",
            p.count
        ));
        bucket_total
    } else {
        p.count
    };
    if let Some(prev) = prev
        && p.time <= prev.last_time()
    {
        return Err(out_of_order(p.time, prev.last_time()));
    }
    let sum = p.sum.unwrap_or(0.0);
    match temporality {
        Temporality::Delta => Ok((
            HistIncrement {
                count,
                sum,
                buckets: p.buckets.to_vec(),
            },
            StreamState::Histogram(HistState {
                start: p.start,
                last_time: p.time,
                count: 0,
                sum: 0.0,
                bounds: Vec::new(),
                buckets: Vec::new(),
            }),
        )),
        Temporality::Cumulative => {
            let state = HistState {
                start: p.start,
                last_time: p.time,
                count,
                sum,
                bounds: p.bounds.to_vec(),
                buckets: p.buckets.to_vec(),
            };
            let diff = match prev {
                Some(StreamState::Histogram(h))
                    if h.start == p.start && h.buckets.len() == h.bounds.len() + 1 =>
                {
                    cumulative_diff(h, p, count, sum)
                }
                _ => None,
            };
            let increment = diff.unwrap_or_else(|| HistIncrement {
                count,
                sum,
                buckets: p.buckets.to_vec(),
            });
            Ok((increment, StreamState::Histogram(state)))
        }
    }
}

/// `p - prev`, or `None` when anything decreased (a reset).
fn cumulative_diff(
    prev: &HistState,
    p: &HistPoint<'_>,
    count: u64,
    sum: f64,
) -> Option<HistIncrement> {
    let count = count.checked_sub(prev.count)?;
    let prev_buckets = if prev.bounds == p.bounds {
        prev.buckets.clone()
    } else {
        rebucket(&prev.bounds, &prev.buckets, p.bounds)
    };
    let buckets = p
        .buckets
        .iter()
        .zip(&prev_buckets)
        .map(|(now, before)| now.checked_sub(*before))
        .collect::<Option<Vec<u64>>>()?;
    Some(HistIncrement {
        count,
        sum: sum - prev.sum,
        buckets,
    })
}

/// Moves each old bucket's count into the first new bucket whose upper bound is at
/// least the old one's (exact when the new bounds refine or coarsen the old ones,
/// as exponential histograms do when they change scale or offset).
fn rebucket(old_bounds: &[f64], old_buckets: &[u64], new_bounds: &[f64]) -> Vec<u64> {
    let mut out = vec![0u64; new_bounds.len() + 1];
    for (i, &count) in old_buckets.iter().enumerate() {
        let target = match old_bounds.get(i) {
            Some(&ub) => new_bounds.partition_point(|&b| b < ub),
            None => new_bounds.len(),
        };
        out[target] = out[target].saturating_add(count);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hp<'a>(
        start: u64,
        time: u64,
        sum: f64,
        bounds: &'a [f64],
        buckets: &'a [u64],
    ) -> HistPoint<'a> {
        HistPoint {
            start,
            time,
            count: buckets.iter().sum(),
            sum: Some(sum),
            bounds,
            buckets,
        }
    }

    #[test]
    fn cumulative_counter_diffs_and_resets() {
        let (inc, st) = counter_increment(None, Temporality::Cumulative, 1, 10, 5.0).expect("ok");
        assert_eq!(inc, 5.0);
        let (inc, st) =
            counter_increment(Some(&st), Temporality::Cumulative, 1, 20, 8.0).expect("ok");
        assert_eq!(inc, 3.0);
        // A decrease is a reset.
        let (inc, st) =
            counter_increment(Some(&st), Temporality::Cumulative, 1, 30, 2.0).expect("ok");
        assert_eq!(inc, 2.0);
        // A new start time is a reset even if the value is higher.
        let (inc, st) =
            counter_increment(Some(&st), Temporality::Cumulative, 25, 40, 4.0).expect("ok");
        assert_eq!(inc, 4.0);
        assert!(counter_increment(Some(&st), Temporality::Cumulative, 25, 40, 9.0).is_err());
    }

    #[test]
    fn delta_counter_rejects_bad_points() {
        let (_, st) = counter_increment(None, Temporality::Delta, 0, 10, 1.0).expect("ok");
        assert!(counter_increment(Some(&st), Temporality::Delta, 0, 10, 1.0).is_err());
        assert!(counter_increment(Some(&st), Temporality::Delta, 0, 5, 1.0).is_err());
        assert!(counter_increment(Some(&st), Temporality::Delta, 0, 11, f64::NAN).is_err());
        assert!(counter_increment(Some(&st), Temporality::Delta, 0, 11, f64::INFINITY).is_err());
        assert!(counter_increment(Some(&st), Temporality::Delta, 0, 11, -1.0).is_err());
    }

    #[test]
    fn cumulative_histogram_diffs_per_bucket_and_resets() {
        let bounds = [1.0, 2.0];
        let mut w = Vec::new();
        let (inc, st) = histogram_increment(
            None,
            Temporality::Cumulative,
            &hp(1, 10, 3.0, &bounds, &[1, 1, 0]),
            &mut w,
        )
        .expect("ok");
        assert_eq!(inc.buckets, vec![1, 1, 0]);
        let (inc, st) = histogram_increment(
            Some(&st),
            Temporality::Cumulative,
            &hp(1, 20, 10.0, &bounds, &[2, 1, 1]),
            &mut w,
        )
        .expect("ok");
        assert_eq!((inc.count, inc.sum, inc.buckets), (2, 7.0, vec![1, 0, 1]));
        // Reset: a bucket went down.
        let (inc, _) = histogram_increment(
            Some(&st),
            Temporality::Cumulative,
            &hp(1, 30, 1.0, &bounds, &[1, 0, 0]),
            &mut w,
        )
        .expect("ok");
        assert_eq!((inc.count, inc.sum, inc.buckets), (1, 1.0, vec![1, 0, 0]));
        assert!(w.is_empty());
    }

    #[test]
    fn changed_bounds_are_rebucketed_not_reset() {
        let mut w = Vec::new();
        let (_, st) = histogram_increment(
            None,
            Temporality::Cumulative,
            &hp(1, 10, 3.0, &[1.0, 2.0, 4.0], &[1, 2, 3, 0]),
            &mut w,
        )
        .expect("ok");
        // Coarser: bounds [2, 4]; old le=1 and le=2 fold into le=2.
        let (inc, _) = histogram_increment(
            Some(&st),
            Temporality::Cumulative,
            &hp(1, 20, 5.0, &[2.0, 4.0], &[4, 3, 1]),
            &mut w,
        )
        .expect("ok");
        assert_eq!(inc.buckets, vec![1, 0, 1]);
        assert_eq!(inc.count, 2);
    }

    #[test]
    fn histogram_validation() {
        let mut w = Vec::new();
        assert!(
            histogram_increment(
                None,
                Temporality::Delta,
                &hp(0, 1, 0.0, &[1.0], &[1]),
                &mut w
            )
            .is_err()
        );
        assert!(
            histogram_increment(
                None,
                Temporality::Delta,
                &hp(0, 1, f64::NAN, &[1.0], &[1, 0]),
                &mut w
            )
            .is_err()
        );
        assert!(
            histogram_increment(
                None,
                Temporality::Delta,
                &hp(0, 1, 0.0, &[2.0, 1.0], &[1, 0, 0]),
                &mut w
            )
            .is_err()
        );
        let mut p = hp(0, 1, 1.0, &[1.0], &[1, 1]);
        p.count = 7;
        let (inc, _) = histogram_increment(None, Temporality::Delta, &p, &mut w).expect("accepted");
        assert_eq!(inc.count, 2);
        assert_eq!(w.len(), 1);
    }

    proptest! {
        /// Random delta sequences (including out-of-order and bad values): the running
        /// total never decreases and equals the sum of the accepted increments.
        #[test]
        fn delta_running_total_is_monotonic(points in proptest::collection::vec((0u64..50, prop_oneof![4 => 0.0f64..100.0, 1 => Just(f64::NAN), 1 => Just(-1.0)]), 0..60)) {
            let mut state: Option<StreamState> = None;
            let mut total = 0.0f64;
            let mut accepted = Vec::new();
            for (time, value) in points {
                if let Ok((inc, st)) = counter_increment(state.as_ref(), Temporality::Delta, 0, time, value) {
                    prop_assert!(inc >= 0.0);
                    let before = total;
                    total += inc;
                    prop_assert!(total >= before);
                    accepted.push(inc);
                    state = Some(st);
                }
            }
            let sum: f64 = accepted.iter().sum();
            prop_assert!((sum - total).abs() < 1e-9);
        }
    }
}
