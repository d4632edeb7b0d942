//! PromQL `histogram_quantile(φ, v)` over classic histograms: series with an `le`
//! label holding cumulative bucket counts.
//!
//! As Prometheus' `BucketQuantile`, at every step: the series are grouped by all
//! their labels except `le` (series without a parsable `le` are ignored); buckets
//! are sorted by upper bound, buckets with equal bounds merged (`0.2`, `2e-1`); the
//! highest bucket must be `+Inf`; counts are made monotonic (a count below its
//! predecessor is raised to it, near-equal counts within 1e-12 are made equal); with
//! fewer than two buckets or no observations the result is NaN. Otherwise the rank
//! `φ·count` is found in the first bucket whose count reaches it and linearly
//! interpolated inside it, the first bucket starting at 0 when its upper bound is
//! positive (else its upper bound is the answer); a rank in the `+Inf` bucket gives
//! the second-highest bound. φ < 0 gives -Inf, φ > 1 +Inf, NaN φ NaN. The result
//! drops `le` and `__name__`; groups that then share a label set at one step fail
//! the query ("vector cannot contain metrics with the same labelset").

use std::collections::HashMap;

use inferscope_model::Labels;

use super::functions::eval_scalar;
use super::range::drop_metric_name;
use super::value::EngineError;
use super::{Eval, Evaluator, Order, SSeries, merge_same_labels};
use crate::ast::HistogramQuantile;

/// Tolerance under which adjacent bucket counts are treated as equal (Prometheus'
/// `smallDeltaTolerance`).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// One bucket: upper bound and cumulative count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) upper: f64,
    pub(crate) count: f64,
}

/// Evaluates `histogram_quantile`.
pub(crate) fn eval_histogram_quantile(
    ev: &Evaluator<'_>,
    h: &HistogramQuantile,
) -> Result<Eval, EngineError> {
    let phi = eval_scalar(ev, &h.phi, "call to function \"histogram_quantile\"")?;
    let Eval::Vector(series, _) = ev.eval(&h.inner)? else {
        return Err(EngineError::Invalid(
            "expected type instant vector in call to function \"histogram_quantile\", got scalar"
                .into(),
        ));
    };
    let n = ev.steps.n;
    // Group key: every label but `le` (`__name__` kept until the end, as Prometheus).
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<Vec<Bucket>>)> = Vec::new();
    for s in series {
        let Some(upper) = s.labels.get("le").and_then(parse_le) else {
            continue;
        };
        let key = Labels::from_pairs(s.labels.iter().filter(|(k, _)| *k != "le"));
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, vec![Vec::new(); n]));
            groups.len() - 1
        });
        let per_step = &mut groups[g].1;
        for (i, count) in s.points {
            per_step[i as usize].push(Bucket { upper, count });
        }
    }
    ev.check_max(groups.len())?;
    let mut out = Vec::with_capacity(groups.len());
    for (labels, per_step) in groups {
        let points: Vec<(u32, f64)> = per_step
            .into_iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(i, mut buckets)| {
                let q = phi.get(i).copied().unwrap_or(f64::NAN);
                (i as u32, bucket_quantile(q, &mut buckets))
            })
            .collect();
        if !points.is_empty() {
            out.push(SSeries {
                labels: drop_metric_name(&labels),
                points,
            });
        }
    }
    let out = merge_same_labels(out, || EngineError::DuplicateLabelset)?;
    Ok(Eval::Vector(out, Order::Labels))
}

/// Parses an `le` value as Go's `strconv.ParseFloat` would (`+Inf`, `1e0`, `.2`).
fn parse_le(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Prometheus' `BucketQuantile` for one group at one step (`buckets` non-empty).
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    coalesce(buckets);
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // The first bucket (excluding +Inf) whose count reaches the rank.
    let b = buckets[..buckets.len() - 1].partition_point(|x| x.count < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        bucket_start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Merges buckets with the same upper bound (sorted input), summing their counts.
fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.drain(..) {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(b),
        }
    }
    *buckets = out;
}

/// Prometheus' `ensureMonotonicAndIgnoreSmallDeltas`.
fn ensure_monotonic(buckets: &mut [Bucket]) {
    let Some(first) = buckets.first() else {
        return;
    };
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, SMALL_DELTA_TOLERANCE) || cur < prev {
            b.count = prev;
            continue;
        }
        prev = cur;
    }
}

/// Prometheus' `almost.Equal`: equal, or relative difference below `epsilon`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(phi: f64, b: &[(f64, f64)]) -> f64 {
        let mut buckets: Vec<Bucket> = b
            .iter()
            .map(|&(upper, count)| Bucket { upper, count })
            .collect();
        bucket_quantile(phi, &mut buckets)
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn missing_inf_bucket_is_nan() {
        assert!(q(0.5, &[(0.1, 1.0), (0.2, 2.0)]).is_nan());
    }

    #[test]
    fn single_bucket_and_zero_count_are_nan() {
        assert!(q(0.5, &[(INF, 3.0)]).is_nan());
        assert!(q(0.5, &[(0.1, 0.0), (INF, 0.0)]).is_nan());
    }

    #[test]
    fn phi_out_of_range() {
        let b = [(0.1, 1.0), (INF, 2.0)];
        assert_eq!(q(-0.1, &b), f64::NEG_INFINITY);
        assert_eq!(q(1.01, &b), INF);
        assert!(q(f64::NAN, &b).is_nan());
    }

    #[test]
    fn unsorted_input_and_rank_in_inf_bucket() {
        // Rank 0.9·4 = 3.6 is in the +Inf bucket: the highest finite bound.
        assert_eq!(q(0.9, &[(INF, 4.0), (0.2, 3.0), (0.1, 1.0)]), 0.2);
    }
}
