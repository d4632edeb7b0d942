//! Vector aggregations (`sum`, `avg`, `min`, `max`, `count`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `sort`, `sort_desc`, PromQL's `quantile`) with `by`/`without`.
//!
//! Group keys are computed once per series; accumulators are dense per group and step
//! (the number of groups is checked against `max_series` before allocating).

use std::cmp::Ordering;
use std::collections::HashMap;

use inferscope_model::Labels;

use super::value::EngineError;
use super::{Eval, Evaluator, Order, SSeries, group_labels};
use crate::ast::{VectorAggregation, VectorOp};

/// Orders values ascending, NaN last.
pub(crate) fn cmp_value_asc(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Orders values descending, NaN last.
pub(crate) fn cmp_value_desc(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

#[derive(Clone, Copy, Default)]
struct Acc {
    count: u32,
    a: f64,
    b: f64,
}

/// Evaluates a vector aggregation over an evaluated inner expression.
pub(crate) fn eval_vector_agg(
    ev: &Evaluator<'_>,
    agg: &VectorAggregation,
    inner: Eval,
) -> Result<Eval, EngineError> {
    let Eval::Vector(mut series, _) = inner else {
        return Err(EngineError::Invalid(format!(
            "expected type instant vector in aggregation expression {}, got scalar",
            agg.op.as_str()
        )));
    };
    match agg.op {
        VectorOp::Sort => return Ok(Eval::Vector(series, Order::ValueAsc)),
        VectorOp::SortDesc => return Ok(Eval::Vector(series, Order::ValueDesc)),
        VectorOp::Topk | VectorOp::Bottomk => {
            // Deterministic tie-breaking: the series with the smaller labels wins.
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            let k = agg.param.unwrap_or(1).max(0) as usize;
            let out = topk(series, agg, k);
            ev.check_max(out.len())?;
            let order = if agg.op == VectorOp::Topk {
                Order::ValueDesc
            } else {
                Order::ValueAsc
            };
            return Ok(Eval::Vector(out, order));
        }
        _ => {}
    }

    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut keys: Vec<Labels> = Vec::new();
    let mut group_of = Vec::with_capacity(series.len());
    for s in &series {
        if s.points.is_empty() {
            group_of.push(usize::MAX);
            continue;
        }
        let key = group_labels(&s.labels, agg.grouping.as_ref());
        let g = *index.entry(key.clone()).or_insert_with(|| {
            keys.push(key);
            keys.len() - 1
        });
        group_of.push(g);
    }
    ev.check_max(keys.len())?;

    let n = ev.steps.n;
    if agg.op == VectorOp::Quantile {
        return Ok(quantile_agg(&series, &group_of, keys, n, agg.quantile));
    }
    let mut accs = vec![Acc::default(); keys.len() * n];
    for (s, &g) in series.iter().zip(&group_of) {
        if g == usize::MAX {
            continue;
        }
        let row = &mut accs[g * n..(g + 1) * n];
        for &(i, v) in &s.points {
            let acc = &mut row[i as usize];
            acc.count += 1;
            let first = acc.count == 1;
            match agg.op {
                VectorOp::Sum | VectorOp::Avg => acc.a += v,
                VectorOp::Min if first || acc.a > v || acc.a.is_nan() => acc.a = v,
                VectorOp::Max if first || acc.a < v || acc.a.is_nan() => acc.a = v,
                VectorOp::Stddev | VectorOp::Stdvar => {
                    let delta = v - acc.a;
                    acc.a += delta / f64::from(acc.count);
                    acc.b += delta * (v - acc.a);
                }
                _ => {}
            }
        }
    }

    let mut out = Vec::with_capacity(keys.len());
    for (g, labels) in keys.into_iter().enumerate() {
        let row = &accs[g * n..(g + 1) * n];
        let points = row
            .iter()
            .enumerate()
            .filter(|(_, a)| a.count > 0)
            .map(|(i, a)| {
                let c = f64::from(a.count);
                let v = match agg.op {
                    VectorOp::Sum | VectorOp::Min | VectorOp::Max => a.a,
                    VectorOp::Avg => a.a / c,
                    VectorOp::Count => c,
                    VectorOp::Stdvar => a.b / c,
                    VectorOp::Stddev => (a.b / c).sqrt(),
                    _ => f64::NAN,
                };
                (i as u32, v)
            })
            .collect();
        out.push(SSeries { labels, points });
    }
    Ok(Eval::Vector(out, Order::Labels))
}

/// `topk`/`bottomk`: per step and group, the `k` largest/smallest values (NaN last),
/// keeping each selected series' own labels.
fn topk(series: Vec<SSeries>, agg: &VectorAggregation, k: usize) -> Vec<SSeries> {
    let top = agg.op == VectorOp::Topk;
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (si, s) in series.iter().enumerate() {
        let key = group_labels(&s.labels, agg.grouping.as_ref());
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(si);
    }
    let mut selected: Vec<Vec<(u32, f64)>> = vec![Vec::new(); series.len()];
    for members in groups {
        // (step, value, series index), sorted by step then rank.
        let mut pts: Vec<(u32, f64, usize)> = members
            .iter()
            .flat_map(|&si| series[si].points.iter().map(move |&(i, v)| (i, v, si)))
            .collect();
        pts.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| {
                    if top {
                        cmp_value_desc(a.1, b.1)
                    } else {
                        cmp_value_asc(a.1, b.1)
                    }
                })
                .then_with(|| a.2.cmp(&b.2))
        });
        let mut taken = 0usize;
        let mut cur_step = u32::MAX;
        for (i, v, si) in pts {
            if i != cur_step {
                cur_step = i;
                taken = 0;
            }
            if taken < k {
                selected[si].push((i, v));
                taken += 1;
            }
        }
    }
    series
        .into_iter()
        .zip(selected)
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, points)| SSeries {
            labels: s.labels,
            points,
        })
        .collect()
}

/// PromQL `quantile(φ, v)` per group and step: [`quantile_of`](super::range::quantile_of)
/// over the group's values at that step.
fn quantile_agg(
    series: &[SSeries],
    group_of: &[usize],
    keys: Vec<Labels>,
    n: usize,
    phi: Option<f64>,
) -> Eval {
    let phi = phi.unwrap_or(f64::NAN);
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); keys.len() * n];
    for (s, &g) in series.iter().zip(group_of) {
        if g == usize::MAX {
            continue;
        }
        for &(i, v) in &s.points {
            values[g * n + i as usize].push(v);
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for (g, labels) in keys.into_iter().enumerate() {
        let points = values[g * n..(g + 1) * n]
            .iter_mut()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| (i as u32, super::range::quantile_of(phi, std::mem::take(v))))
            .collect();
        out.push(SSeries { labels, points });
    }
    Eval::Vector(out, Order::Labels)
}
