//! Range-vector functions (`count_over_time`, `rate`, `*_over_time`, ...).
//!
//! The source is asked once for `[first step - range - offset, last step - offset]`.
//! Each series is then swept with two pointers: the window of step `t` is
//! `(t - range - offset, t - offset]`, and since steps increase both ends only move
//! forward. Functions that need every value of the window (sum, quantile, ...) look
//! only at that window, so the cost is `samples × range/step`, as in Loki.
//!
//! With [`RangeInput::Series`] (PromQL) the samples are raw stored metric values and
//! the functions follow Prometheus 3.x: `rate`/`increase`/`delta` extrapolate as
//! Prometheus' `extrapolatedRate`, `irate`/`idelta` use the last two samples, and
//! every function but `last_over_time` and the instant selector drops `__name__`
//! (two results that then share a label set at one step fail the query, as in
//! Prometheus).

use std::collections::HashMap;

use inferscope_model::{Labels, MatchOp};

use super::value::{EngineError, Sample, Series};
use super::{SSeries, SampleSource, Steps, group_labels, merge_same_labels};
use crate::ast::{Grouping, RangeAggregation, RangeInput, RangeOp, VectorOp};

/// Evaluates one range aggregation into series sorted by labels.
///
/// `outer` is the grouping of an enclosing `sum` whose result does not change
/// when series that it puts together are merged before this range function
/// (see [`outer_grouping_pushdown`]).
pub(crate) fn eval_range(
    agg: &RangeAggregation,
    steps: Steps,
    source: &dyn SampleSource,
    outer: Option<&Grouping>,
) -> Result<Vec<SSeries>, EngineError> {
    let offset = agg.offset_ns.unwrap_or(0);
    let range = agg.range_ns;
    let last_ts = steps.ts(steps.n.saturating_sub(1));
    let from = steps.ts(0).saturating_sub(range).saturating_sub(offset);
    let to = last_ts.saturating_sub(offset);
    // The range function's own grouping merges series anyway; otherwise an outer
    // `sum`'s grouping may be pushed down. `absent_over_time` needs no labels hint.
    // PromQL functions are not additive over series: never merge them.
    let series_input = agg.input == RangeInput::Series;
    let keep = match (agg.op, &agg.grouping) {
        _ if series_input => None,
        (RangeOp::AbsentOverTime, _) => None,
        (_, Some(g)) => Some(g),
        (_, None) => outer,
    };
    let raw = source.samples(agg, from, to, keep)?;
    if agg.op == RangeOp::AbsentOverTime {
        return Ok(absent_over_time(agg, raw, steps, range, offset));
    }

    // Group series (by the grouping, or by identical labels) and merge their samples.
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<Vec<Sample>>)> = Vec::new();
    for s in raw {
        let key = match &agg.grouping {
            Some(g) => group_labels(&s.labels, Some(g)),
            None => s.labels,
        };
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(s.samples);
    }

    let range_secs = range as f64 / 1e9;
    let mut out = Vec::with_capacity(groups.len());
    for (labels, parts) in groups {
        let samples = merge_parts(parts);
        let points = if series_input {
            sweep(&samples, steps, range, offset, |w, start, end| {
                apply_series(agg, w, start, end)
            })
        } else {
            sweep(&samples, steps, range, offset, |w, _, _| {
                apply(agg, w, range_secs)
            })
        };
        if series_input {
            if !points.is_empty() {
                out.push(SSeries { labels, points });
            }
            continue;
        }
        if !points.is_empty() {
            // As Loki: a result series still carrying `__error__` fails the query
            // (unless `__preserve_error__="true"`); grouping may have dropped it.
            if let Some(e) = labels.get("__error__")
                && labels.get("__preserve_error__") != Some("true")
            {
                return Err(EngineError::Pipeline {
                    error: e.to_string(),
                    series: labels.to_string(),
                });
            }
            out.push(SSeries { labels, points });
        }
    }
    if series_input && !matches!(agg.op, RangeOp::InstantSelector | RangeOp::LastOverTime) {
        for s in &mut out {
            s.labels = drop_metric_name(&s.labels);
        }
        return merge_same_labels(out, || EngineError::DuplicateLabelset);
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// `labels` without `__name__`.
pub(crate) fn drop_metric_name(labels: &Labels) -> Labels {
    if labels.get("__name__").is_none() {
        return labels.clone();
    }
    Labels::from_pairs(labels.iter().filter(|(k, _)| *k != "__name__"))
}

/// The grouping of `sum by/without (…) (op(…))` that may be pushed down into `op`:
/// summing the range function over merged series equals summing it over each
/// series when the function is additive over samples (counts, byte counts, sums
/// and their rates), as in Loki's vector-grouping injection.
pub(crate) fn outer_grouping_pushdown<'a>(
    outer_op: VectorOp,
    outer_grouping: Option<&'a Grouping>,
    inner: &RangeAggregation,
) -> Option<&'a Grouping> {
    let additive = matches!(
        inner.op,
        RangeOp::CountOverTime
            | RangeOp::Rate
            | RangeOp::BytesOverTime
            | RangeOp::BytesRate
            | RangeOp::SumOverTime
    );
    // A `rate` over an unwrap is additive too (sum of values / range). A `sum`
    // without `by`/`without` keeps no label: it pushes down `by ()`, so that ids in
    // structured metadata do not make one series per line.
    static BY_NOTHING: Grouping = Grouping {
        without: false,
        labels: Vec::new(),
    };
    (outer_op == VectorOp::Sum
        && additive
        && inner.grouping.is_none()
        && inner.input == RangeInput::Logs)
        .then(|| outer_grouping.unwrap_or(&BY_NOTHING))
}

/// Concatenates sample lists and sorts them by time (stable), skipping the sort when
/// there is a single already-sorted list.
fn merge_parts(mut parts: Vec<Vec<Sample>>) -> Vec<Sample> {
    let mut samples = if parts.len() == 1 {
        parts.pop().unwrap_or_default()
    } else {
        parts.concat()
    };
    if !samples
        .windows(2)
        .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns)
    {
        samples.sort_by_key(|s| s.timestamp_ns);
    }
    samples
}

/// Slides the window over `samples` for every step and calls `f` on each non-empty
/// window with the window bounds `(start, end]`; `f` returning `None` produces no point.
fn sweep(
    samples: &[Sample],
    steps: Steps,
    range: i64,
    offset: i64,
    mut f: impl FnMut(&[Sample], i64, i64) -> Option<f64>,
) -> Vec<(u32, f64)> {
    let mut points = Vec::new();
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..steps.n {
        let end = steps.ts(i).saturating_sub(offset);
        let start = end.saturating_sub(range);
        while hi < samples.len() && samples[hi].timestamp_ns <= end {
            hi += 1;
        }
        while lo < hi && samples[lo].timestamp_ns <= start {
            lo += 1;
        }
        if lo == hi {
            continue;
        }
        if let Some(v) = f(&samples[lo..hi], start, end) {
            points.push((i as u32, v));
        }
    }
    points
}

/// `absent_over_time`: 1 at the steps where no series has a sample in the window.
fn absent_over_time(
    agg: &RangeAggregation,
    raw: Vec<Series>,
    steps: Steps,
    range: i64,
    offset: i64,
) -> Vec<SSeries> {
    let mut ts: Vec<i64> = raw
        .iter()
        .flat_map(|s| s.samples.iter().map(|x| x.timestamp_ns))
        .collect();
    ts.sort_unstable();
    let mut points = Vec::new();
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..steps.n {
        let end = steps.ts(i).saturating_sub(offset);
        let start = end.saturating_sub(range);
        while hi < ts.len() && ts[hi] <= end {
            hi += 1;
        }
        while lo < hi && ts[lo] <= start {
            lo += 1;
        }
        if lo == hi {
            points.push((i as u32, 1.0));
        }
    }
    if points.is_empty() {
        return Vec::new();
    }
    vec![SSeries {
        labels: absent_labels(agg),
        points,
    }]
}

/// The labels of `absent_over_time`'s result, as Prometheus' `absent`: every `=`
/// matcher of the stream selector, except names that also appear in another matcher.
pub(crate) fn absent_labels(agg: &RangeAggregation) -> Labels {
    let mut set: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &agg.selector.matchers {
        if m.name == "__name__" {
            continue;
        }
        if m.op == MatchOp::Eq && !seen.contains(&m.name.as_str()) {
            set.retain(|(k, _)| *k != m.name);
            set.push((m.name.clone(), m.value.clone()));
            seen.push(&m.name);
        } else {
            set.retain(|(k, _)| *k != m.name);
        }
    }
    Labels::from_pairs(set)
}

/// Applies the function to a non-empty window.
fn apply(agg: &RangeAggregation, w: &[Sample], range_secs: f64) -> Option<f64> {
    let n = w.len() as f64;
    let sum = || w.iter().map(|s| s.value).sum::<f64>();
    Some(match agg.op {
        RangeOp::CountOverTime => n,
        RangeOp::Rate if agg.unwrap.is_none() => n / range_secs,
        RangeOp::Rate => sum() / range_secs,
        RangeOp::BytesOverTime | RangeOp::SumOverTime => sum(),
        RangeOp::BytesRate => sum() / range_secs,
        RangeOp::AvgOverTime => avg(w),
        RangeOp::MinOverTime => w
            .iter()
            .map(|s| s.value)
            .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
        RangeOp::MaxOverTime => w
            .iter()
            .map(|s| s.value)
            .fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
        RangeOp::StdvarOverTime => stdvar(w),
        RangeOp::StddevOverTime => stdvar(w).sqrt(),
        RangeOp::QuantileOverTime => quantile(agg.param.unwrap_or(f64::NAN), w),
        RangeOp::FirstOverTime => w[0].value,
        RangeOp::LastOverTime => w[w.len() - 1].value,
        RangeOp::RateCounter => counter_increase(w) / range_secs,
        // Handled separately; never a point here.
        RangeOp::AbsentOverTime => return None,
        // PromQL-only operators (series input).
        RangeOp::Increase
        | RangeOp::Delta
        | RangeOp::Irate
        | RangeOp::Idelta
        | RangeOp::Resets
        | RangeOp::Changes
        | RangeOp::PresentOverTime
        | RangeOp::InstantSelector => return None,
    })
}

/// Applies a PromQL range function to a non-empty window `(start, end]` of raw
/// series samples.
fn apply_series(agg: &RangeAggregation, w: &[Sample], start: i64, end: i64) -> Option<f64> {
    let last = w[w.len() - 1].value;
    Some(match agg.op {
        RangeOp::InstantSelector | RangeOp::LastOverTime => last,
        RangeOp::Rate => extrapolated_rate(w, start, end, true, true)?,
        RangeOp::Increase => extrapolated_rate(w, start, end, true, false)?,
        RangeOp::Delta => extrapolated_rate(w, start, end, false, false)?,
        RangeOp::Irate | RangeOp::Idelta => {
            if w.len() < 2 {
                return None;
            }
            let (prev, cur) = (w[w.len() - 2], w[w.len() - 1]);
            if agg.op == RangeOp::Idelta {
                return Some(cur.value - prev.value);
            }
            let interval = (cur.timestamp_ns - prev.timestamp_ns) as f64 / 1e9;
            if interval == 0.0 {
                return None;
            }
            // A decrease is a counter reset: the counter restarted from zero.
            let increase = if cur.value < prev.value {
                cur.value
            } else {
                cur.value - prev.value
            };
            increase / interval
        }
        RangeOp::Resets => w.windows(2).filter(|p| p[1].value < p[0].value).count() as f64,
        RangeOp::Changes => w
            .windows(2)
            .filter(|p| {
                let (a, b) = (p[0].value, p[1].value);
                !(a == b || (a.is_nan() && b.is_nan()))
            })
            .count() as f64,
        RangeOp::PresentOverTime => 1.0,
        RangeOp::CountOverTime
        | RangeOp::SumOverTime
        | RangeOp::AvgOverTime
        | RangeOp::MinOverTime
        | RangeOp::MaxOverTime
        | RangeOp::StdvarOverTime
        | RangeOp::StddevOverTime
        | RangeOp::QuantileOverTime
        | RangeOp::FirstOverTime => apply(agg, w, 1.0)?,
        // Not reachable from PromQL.
        RangeOp::RateCounter
        | RangeOp::BytesOverTime
        | RangeOp::BytesRate
        | RangeOp::AbsentOverTime => return None,
    })
}

/// Prometheus' `extrapolatedRate` for float samples in the window `(start, end]`
/// (nanoseconds). Needs two samples. For counters, decreases are resets (the value
/// before the reset is added back). The increase between the first and last sample is
/// extrapolated towards each window edge, all the way when the gap to the edge is
/// below 1.1 × the average sample interval, else by half an average interval; for
/// counters the start is never extrapolated below the point where the counter would
/// have been zero. `rate` divides by the window length in seconds.
fn extrapolated_rate(
    w: &[Sample],
    start: i64,
    end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.value - first.value;
    if is_counter {
        let mut prev = first.value;
        for s in &w[1..] {
            if s.value < prev {
                result += prev;
            }
            prev = s.value;
        }
    }
    let secs = |ns: i64| ns as f64 / 1e9;
    let mut duration_to_start = secs(first.timestamp_ns - start);
    let mut duration_to_end = secs(end - last.timestamp_ns);
    let sampled_interval = secs(last.timestamp_ns - first.timestamp_ns);
    let average_between_samples = sampled_interval / (w.len() - 1) as f64;
    let threshold = average_between_samples * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_between_samples / 2.0;
    }
    if is_counter && result > 0.0 && first.value >= 0.0 {
        let duration_to_zero = sampled_interval * (first.value / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_between_samples / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= secs(end - start);
    }
    Some(result * factor)
}

/// Loki's incremental mean (keeps an infinite mean when finite values follow).
fn avg(w: &[Sample]) -> f64 {
    let (mut mean, mut count) = (0.0f64, 0.0f64);
    for s in w {
        count += 1.0;
        if mean.is_infinite() {
            if s.value.is_infinite() && (mean > 0.0) == (s.value > 0.0) {
                continue;
            }
            if s.value.is_finite() {
                continue;
            }
        }
        mean += s.value / count - mean / count;
    }
    mean
}

/// Population variance (Welford).
fn stdvar(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for s in w {
        count += 1.0;
        let delta = s.value - mean;
        mean += delta / count;
        m2 += delta * (s.value - mean);
    }
    m2 / count
}

/// Prometheus `quantile`: φ < 0 → -Inf, φ > 1 → +Inf, linear interpolation between
/// the closest ranks `φ·(n-1)`.
pub(crate) fn quantile(q: f64, w: &[Sample]) -> f64 {
    quantile_of(q, w.iter().map(|s| s.value).collect())
}

/// [`quantile`] of plain values (`v` non-empty, φ already in `[0, 1]` or handled).
pub(crate) fn quantile_of(q: f64, mut v: Vec<f64>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let rank = q * (n - 1) as f64;
    let lower = (rank.floor() as usize).min(n - 1);
    let upper = (lower + 1).min(n - 1);
    let weight = rank - rank.floor();
    if weight == 0.0 {
        return v[lower];
    }
    v[lower] * (1.0 - weight) + v[upper] * weight
}

/// Counter increase over the window with reset handling: `last - first`, plus the
/// value before each decrease. Fewer than two samples: 0.
///
/// Loki calls Prometheus' `extrapolatedRate` here, but with nanosecond sample times
/// against a millisecond range, which makes the extrapolation factor
/// `1 + range_s / (sampled interval in µs)`, i.e. practically 1: this is the
/// no-extrapolation equivalent.
fn counter_increase(w: &[Sample]) -> f64 {
    if w.len() < 2 {
        return 0.0;
    }
    let mut result = w[w.len() - 1].value - w[0].value;
    let mut prev = w[0].value;
    for s in &w[1..] {
        if s.value < prev {
            result += prev;
        }
        prev = s.value;
    }
    result
}
