//! PromQL functions on instant vectors and scalars: `abs`, `ceil`, `floor`, `round`,
//! `sqrt`, `exp`, `ln`, `log2`, `log10`, `clamp`, `clamp_min`, `clamp_max`, `scalar`,
//! `vector` and `time`.
//!
//! As in Prometheus, the value functions drop `__name__` (two results that then share
//! a label set at one step fail the query), `clamp` with `min > max` gives an empty
//! vector, and `min`/`max` propagate NaN like Go's `math.Min`/`math.Max`.

use inferscope_model::Labels;

use super::range::drop_metric_name;
use super::value::EngineError;
use super::{Eval, Evaluator, Order, SSeries, merge_same_labels};
use crate::ast::{Func, FunctionCall, MetricExpr};

/// Evaluates a function call.
pub(crate) fn eval_function(ev: &Evaluator<'_>, call: &FunctionCall) -> Result<Eval, EngineError> {
    let n = ev.steps.n;
    match call.func {
        Func::Time => Ok(Eval::Scalar(
            (0..n).map(|i| ev.steps.ts(i) as f64 / 1e9).collect(),
        )),
        Func::Vector => {
            let values = scalar_arg(ev, call, 0)?;
            Ok(Eval::Vector(
                vec![SSeries {
                    labels: Labels::empty(),
                    points: values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (i as u32, v))
                        .collect(),
                }],
                Order::Labels,
            ))
        }
        Func::Scalar => {
            let series = vector_arg(ev, call)?;
            // (number of points, value) per step.
            let mut at: Vec<(u32, f64)> = vec![(0, f64::NAN); n];
            for s in &series {
                for &(i, v) in &s.points {
                    let slot = &mut at[i as usize];
                    slot.0 += 1;
                    slot.1 = v;
                }
            }
            Ok(Eval::Scalar(
                at.into_iter()
                    .map(|(c, v)| if c == 1 { v } else { f64::NAN })
                    .collect(),
            ))
        }
        _ => {
            let series = vector_arg(ev, call)?;
            let extra: Vec<Vec<f64>> = (1..call.args.len())
                .map(|k| scalar_arg(ev, call, k))
                .collect::<Result<_, _>>()?;
            let arg = |k: usize, i: u32| -> f64 {
                extra
                    .get(k)
                    .and_then(|v| v.get(i as usize))
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            let func = call.func;
            let mut out = Vec::with_capacity(series.len());
            for s in series {
                let points: Vec<(u32, f64)> = s
                    .points
                    .into_iter()
                    .filter_map(|(i, v)| {
                        let value = match func {
                            Func::Abs => v.abs(),
                            Func::Ceil => v.ceil(),
                            Func::Floor => v.floor(),
                            Func::Round => {
                                let to_nearest = if extra.is_empty() { 1.0 } else { arg(0, i) };
                                // Prometheus: floor(v / to_nearest + 0.5) * to_nearest,
                                // computed with the inverse to avoid rounding errors.
                                let inverse = 1.0 / to_nearest;
                                (v * inverse + 0.5).floor() / inverse
                            }
                            Func::Sqrt => v.sqrt(),
                            Func::Exp => v.exp(),
                            Func::Ln => v.ln(),
                            Func::Log2 => v.log2(),
                            Func::Log10 => v.log10(),
                            Func::Clamp => {
                                let (min, max) = (arg(0, i), arg(1, i));
                                if max < min {
                                    return None;
                                }
                                go_max(min, go_min(max, v))
                            }
                            Func::ClampMin => go_max(arg(0, i), v),
                            Func::ClampMax => go_min(arg(0, i), v),
                            Func::Time | Func::Vector | Func::Scalar => return None,
                        };
                        Some((i, value))
                    })
                    .collect();
                if !points.is_empty() {
                    out.push(SSeries {
                        labels: drop_metric_name(&s.labels),
                        points,
                    });
                }
            }
            let out = merge_same_labels(out, || EngineError::DuplicateLabelset)?;
            Ok(Eval::Vector(out, Order::Labels))
        }
    }
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn vector_arg(ev: &Evaluator<'_>, call: &FunctionCall) -> Result<Vec<SSeries>, EngineError> {
    match call.args.first().map(|a| ev.eval(a)).transpose()? {
        Some(Eval::Vector(series, _)) => Ok(series),
        _ => Err(EngineError::Invalid(format!(
            "expected type instant vector in call to function \"{}\"",
            call.func.as_str()
        ))),
    }
}

fn scalar_arg(ev: &Evaluator<'_>, call: &FunctionCall, k: usize) -> Result<Vec<f64>, EngineError> {
    match call.args.get(k).map(|a| ev.eval(a)).transpose()? {
        Some(Eval::Scalar(v)) => Ok(v),
        _ => Err(EngineError::Invalid(format!(
            "expected type scalar in call to function \"{}\"",
            call.func.as_str()
        ))),
    }
}

/// Evaluates a scalar-valued expression (e.g. φ) into one value per step.
pub(crate) fn eval_scalar(
    ev: &Evaluator<'_>,
    e: &MetricExpr,
    what: &str,
) -> Result<Vec<f64>, EngineError> {
    match ev.eval(e)? {
        Eval::Scalar(v) => Ok(v),
        Eval::Vector(..) => Err(EngineError::Invalid(format!(
            "expected type scalar in {what}, got instant vector"
        ))),
    }
}
