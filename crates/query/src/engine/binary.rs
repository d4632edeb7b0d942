//! Binary operators between scalars and vectors, with Prometheus vector matching
//! (`on`/`ignoring`, `group_left`/`group_right`, `bool`, `and`/`or`/`unless`).
//!
//! Matching is per step (as in Prometheus) but signatures are computed once per series:
//! the "one" side is indexed as `signature → [(step, series, value)]` sorted by step.
//!
//! `__name__` follows Prometheus: signatures without `on(...)` ignore it, and
//! arithmetic or `bool` comparisons drop it from the result (plain comparisons and
//! set operators keep it). Log series have no `__name__`, so LogQL is unaffected.

use std::collections::HashMap;

use inferscope_model::Labels;

use super::range::drop_metric_name;
use super::value::EngineError;
use super::{Eval, Evaluator, Order, SSeries, merge_same_labels};
use crate::ast::{BinOp, BinaryExpr, VectorMatching};

/// Arithmetic (IEEE: `x/0` is ±Inf, `0/0` NaN, `x%0` NaN as Go's `math.Mod`).
fn arith(op: BinOp, l: f64, r: f64) -> f64 {
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Mod => l % r,
        BinOp::Pow => l.powf(r),
        _ => f64::NAN,
    }
}

/// Comparison result.
fn compare(op: BinOp, l: f64, r: f64) -> bool {
    match op {
        BinOp::Eq => l == r,
        BinOp::Neq => l != r,
        BinOp::Gt => l > r,
        BinOp::Gte => l >= r,
        BinOp::Lt => l < r,
        BinOp::Lte => l <= r,
        _ => false,
    }
}

/// Prometheus `vectorElemBinop`: the value and whether to keep the element. For
/// comparisons without `bool` the kept value is the left one.
fn elem(op: BinOp, return_bool: bool, l: f64, r: f64) -> (f64, bool) {
    if op.is_comparison() {
        let c = compare(op, l, r);
        if return_bool {
            (if c { 1.0 } else { 0.0 }, true)
        } else {
            (l, c)
        }
    } else {
        (arith(op, l, r), true)
    }
}

/// Evaluates `lhs op rhs`.
pub(crate) fn eval_binary(
    ev: &Evaluator<'_>,
    b: &BinaryExpr,
    lhs: Eval,
    rhs: Eval,
) -> Result<Eval, EngineError> {
    let op = b.op;
    match (lhs, rhs) {
        (Eval::Scalar(l), Eval::Scalar(r)) => {
            if op.is_set() {
                return Err(set_with_scalar(op));
            }
            Ok(Eval::Scalar(
                l.into_iter()
                    .zip(r)
                    .map(|(l, r)| {
                        if op.is_comparison() {
                            if compare(op, l, r) { 1.0 } else { 0.0 }
                        } else {
                            arith(op, l, r)
                        }
                    })
                    .collect(),
            ))
        }
        (Eval::Vector(v, _), Eval::Scalar(s)) => {
            if op.is_set() {
                return Err(set_with_scalar(op));
            }
            Ok(Eval::Vector(vector_scalar(b, v, &s, false)?, Order::Labels))
        }
        (Eval::Scalar(s), Eval::Vector(v, _)) => {
            if op.is_set() {
                return Err(set_with_scalar(op));
            }
            Ok(Eval::Vector(vector_scalar(b, v, &s, true)?, Order::Labels))
        }
        (Eval::Vector(l, _), Eval::Vector(r, _)) => {
            let out = match op {
                BinOp::And | BinOp::Unless => and_unless(b, l, r),
                BinOp::Or => or(b, l, r)?,
                _ => vector_vector(b, l, r)?,
            };
            ev.check_max(out.iter().filter(|s| !s.points.is_empty()).count())?;
            Ok(Eval::Vector(out, Order::Labels))
        }
    }
}

fn set_with_scalar(op: BinOp) -> EngineError {
    EngineError::Invalid(format!(
        "set operator \"{}\" not allowed in binary scalar expression",
        op.as_str()
    ))
}

/// Vector op scalar (or scalar op vector when `swap`). Comparisons keep the vector's
/// value, as Prometheus.
fn vector_scalar(
    b: &BinaryExpr,
    v: Vec<SSeries>,
    s: &[f64],
    swap: bool,
) -> Result<Vec<SSeries>, EngineError> {
    let drop_name = drops_metric_name(b);
    let out: Vec<SSeries> = v
        .into_iter()
        .map(|mut series| {
            series.points = series
                .points
                .into_iter()
                .filter_map(|(i, x)| {
                    let sv = s.get(i as usize).copied().unwrap_or(f64::NAN);
                    let (l, r) = if swap { (sv, x) } else { (x, sv) };
                    let (mut value, keep) = elem(b.op, b.return_bool, l, r);
                    if !keep {
                        return None;
                    }
                    if b.op.is_comparison() && !b.return_bool {
                        value = x;
                    }
                    Some((i, value))
                })
                .collect();
            if drop_name {
                series.labels = drop_metric_name(&series.labels);
            }
            series
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if drop_name {
        merge_same_labels(out, || EngineError::DuplicateLabelset)
    } else {
        Ok(out)
    }
}

/// Whether the result drops `__name__`: arithmetic and `bool` comparisons.
fn drops_metric_name(b: &BinaryExpr) -> bool {
    !b.op.is_set() && (!b.op.is_comparison() || b.return_bool)
}

/// The matching signature: `on` keeps the listed labels, `ignoring` drops them,
/// no matching uses all labels; without `on`, `__name__` is never part of it.
fn signature(labels: &Labels, m: Option<&VectorMatching>) -> Labels {
    match m {
        None => Labels::from_pairs(labels.iter().filter(|(k, _)| *k != "__name__")),
        Some(m) => Labels::from_pairs(labels.iter().filter(|(k, _)| {
            let listed = m.labels.iter().any(|l| l == k);
            if m.on {
                listed
            } else {
                !listed && *k != "__name__"
            }
        })),
    }
}

/// Prometheus' `resultMetric` for one-to-one matching: the left labels without
/// `__name__` when `drop_name`, reduced to the `on` labels or without the `ignoring`
/// ones.
fn one_to_one_labels(labels: &Labels, m: Option<&VectorMatching>, drop_name: bool) -> Labels {
    Labels::from_pairs(labels.iter().filter(|(k, _)| {
        if drop_name && *k == "__name__" {
            return false;
        }
        match m {
            None => true,
            Some(m) => m.labels.iter().any(|l| l == k) == m.on,
        }
    }))
}

/// Steps at which each signature is present, sorted and deduplicated.
fn presence(series: &[SSeries], m: Option<&VectorMatching>) -> HashMap<Labels, Vec<u32>> {
    let mut map: HashMap<Labels, Vec<u32>> = HashMap::new();
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        map.entry(signature(&s.labels, m))
            .or_default()
            .extend(s.points.iter().map(|p| p.0));
    }
    for steps in map.values_mut() {
        steps.sort_unstable();
        steps.dedup();
    }
    map
}

/// `and` / `unless`: keep the left points whose signature is (not) on the right at
/// the same step.
fn and_unless(b: &BinaryExpr, l: Vec<SSeries>, r: Vec<SSeries>) -> Vec<SSeries> {
    let m = b.matching.as_ref();
    let present = presence(&r, m);
    let keep_if_present = b.op == BinOp::And;
    l.into_iter()
        .filter_map(|mut s| {
            let steps = present.get(&signature(&s.labels, m));
            s.points.retain(|p| {
                let has = steps.is_some_and(|st| st.binary_search(&p.0).is_ok());
                has == keep_if_present
            });
            (!s.points.is_empty()).then_some(s)
        })
        .collect()
}

/// `or`: all left points, plus right points whose signature is absent on the left at
/// that step.
fn or(b: &BinaryExpr, l: Vec<SSeries>, r: Vec<SSeries>) -> Result<Vec<SSeries>, EngineError> {
    let m = b.matching.as_ref();
    let present = presence(&l, m);
    let mut out: Vec<SSeries> = l.into_iter().filter(|s| !s.points.is_empty()).collect();
    for mut s in r {
        let steps = present.get(&signature(&s.labels, m));
        s.points
            .retain(|p| steps.is_none_or(|st| st.binary_search(&p.0).is_err()));
        if !s.points.is_empty() {
            out.push(s);
        }
    }
    merge_same_labels(out, || EngineError::DuplicateLabelset)
}

/// Arithmetic and comparisons between two vectors.
fn vector_vector(
    b: &BinaryExpr,
    l: Vec<SSeries>,
    r: Vec<SSeries>,
) -> Result<Vec<SSeries>, EngineError> {
    let m = b.matching.as_ref();
    let group = m.and_then(|m| m.group.as_ref());
    let one_to_one = group.is_none();
    let swapped = group.is_some_and(|g| g.right);
    let (many, one) = if swapped { (r, l) } else { (l, r) };
    let drop_name = drops_metric_name(b);

    // Index the "one" side: signature → (step, series, value) sorted by step.
    let mut index: HashMap<Labels, Vec<(u32, usize, f64)>> = HashMap::new();
    for (si, s) in one.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        index
            .entry(signature(&s.labels, m))
            .or_default()
            .extend(s.points.iter().map(|&(i, v)| (i, si, v)));
    }
    for (sig, pts) in index.iter_mut() {
        pts.sort_by_key(|p| (p.0, p.1));
        if let Some(w) = pts.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EngineError::Matching(format!(
                "found duplicate series for the match group {sig} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                if swapped { "left" } else { "right" },
                one[w[0].1].labels,
                one[w[1].1].labels
            )));
        }
    }

    let mut out = Vec::with_capacity(many.len());
    for s in many {
        let sig = signature(&s.labels, m);
        let Some(pts) = index.get(&sig) else {
            continue;
        };
        let mut points = Vec::new();
        // Both sides are sorted by step: walk them together.
        let mut j = 0usize;
        let mut one_series = usize::MAX;
        for &(i, v) in &s.points {
            while j < pts.len() && pts[j].0 < i {
                j += 1;
            }
            let Some(&(pi, si, ov)) = pts.get(j) else {
                break;
            };
            if pi != i {
                continue;
            }
            let (lv, rv) = if swapped { (ov, v) } else { (v, ov) };
            let (value, keep) = elem(b.op, b.return_bool, lv, rv);
            if keep {
                points.push((i, value));
                one_series = si;
            }
        }
        if points.is_empty() {
            continue;
        }
        let labels = if one_to_one {
            one_to_one_labels(&s.labels, m, drop_name)
        } else {
            // Copy the group_x labels from the "one" side (empty/missing removes).
            // Within one series the matched "one" series can only change across steps
            // if the one side has several series with the same signature at
            // different steps; split those by step to copy the right labels.
            let include = group.map(|g| g.labels.as_slice()).unwrap_or(&[]);
            let many_labels = if drop_name {
                drop_metric_name(&s.labels)
            } else {
                s.labels.clone()
            };
            if include.is_empty() {
                many_labels
            } else {
                let by_one = split_by_one(&points, pts, one_series);
                for (si, pts_of) in by_one {
                    out.push(SSeries {
                        labels: with_included(&many_labels, &one[si].labels, include),
                        points: pts_of,
                    });
                }
                continue;
            }
        };
        out.push(SSeries { labels, points });
    }
    let msg = if one_to_one {
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    } else {
        "multiple matches for labels: grouping labels must ensure unique matches"
    };
    merge_same_labels(out, || EngineError::Matching(msg.to_string()))
}

/// Splits matched points by the "one"-side series they matched.
fn split_by_one(
    points: &[(u32, f64)],
    pts: &[(u32, usize, f64)],
    last: usize,
) -> Vec<(usize, Vec<(u32, f64)>)> {
    let mut groups: Vec<(usize, Vec<(u32, f64)>)> = Vec::new();
    for &(i, v) in points {
        let si = pts
            .binary_search_by_key(&i, |p| p.0)
            .ok()
            .map(|k| pts[k].1)
            .unwrap_or(last);
        match groups.iter_mut().find(|g| g.0 == si) {
            Some(g) => g.1.push((i, v)),
            None => groups.push((si, vec![(i, v)])),
        }
    }
    groups
}

/// `many` labels with `include` labels copied from `one`.
fn with_included(many: &Labels, one: &Labels, include: &[String]) -> Labels {
    let mut pairs: Vec<(String, String)> = many
        .iter()
        .filter(|(k, _)| !include.iter().any(|l| l == k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for l in include {
        if let Some(v) = one.get(l) {
            pairs.push((l.clone(), v.to_string()));
        }
    }
    Labels::from_pairs(pairs)
}
