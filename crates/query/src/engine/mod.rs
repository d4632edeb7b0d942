//! The LogQL metric evaluation engine (pure code).
//!
//! [`evaluate`] walks a [`MetricExpr`] over the steps `start, start+step, … ≤ end`.
//! Range aggregations pull their samples from a [`SampleSource`] once (the widest
//! window any step needs) and slide a two-pointer window over each series; every
//! other node works on a series-major sparse representation (one label set per
//! series, points as `(step index, value)`), so labels are hashed/grouped once per
//! series rather than once per step.
//!
//! Semantics follow Loki 3.x / Prometheus: windows are `(t - range - offset, t - offset]`,
//! vector matching and set operators as in Prometheus, errors in their words.
//!
//! The same engine evaluates PromQL (see [`crate::promql`]): series selectors are range
//! aggregations with [`RangeInput::Series`](crate::ast::RangeInput::Series) input, an
//! instant selector is [`RangeOp::InstantSelector`](crate::ast::RangeOp::InstantSelector)
//! over the 5m lookback window, and `__name__` is dropped where Prometheus drops it
//! (range functions, arithmetic, `bool` comparisons, `without`, value functions,
//! `histogram_quantile`).

mod aggregate;
mod binary;
mod functions;
mod histogram;
mod range;
mod value;

#[cfg(test)]
mod promql_tests;
#[cfg(test)]
mod tests;

use inferscope_model::Labels;

use crate::ast::{Grouping, LabelReplace, MetricExpr};

pub use value::{EngineError, EvalParams, Sample, SampleSource, Series, Value, VectorSample};

/// Loki's limit of points per series.
const MAX_STEPS: i64 = 11_000;

/// The evaluation times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    start: i64,
    step: i64,
    n: usize,
}

impl Steps {
    /// Time of step `i`.
    pub(crate) fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// A series in the engine's internal form: points are `(step index, value)` in step order.
#[derive(Debug, Clone)]
pub(crate) struct SSeries {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<(u32, f64)>,
}

/// How an instant vector result is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Labels,
    ValueAsc,
    ValueDesc,
}

/// An evaluated sub-expression.
#[derive(Debug)]
pub(crate) enum Eval {
    /// A scalar: one value per step.
    Scalar(Vec<f64>),
    /// A vector over all steps.
    Vector(Vec<SSeries>, Order),
}

/// Evaluates a metric query.
///
/// Instant queries (`start_ns == end_ns`) give [`Value::Vector`] or [`Value::Scalar`];
/// range queries give [`Value::Matrix`] (series sorted by labels, points by time).
pub fn evaluate(
    expr: &MetricExpr,
    params: &EvalParams,
    source: &dyn SampleSource,
) -> Result<Value, EngineError> {
    let instant = params.start_ns == params.end_ns;
    if params.end_ns < params.start_ns {
        return Err(EngineError::InvalidParams(
            "end timestamp must not be before start time".into(),
        ));
    }
    let step = if instant { 1 } else { params.step_ns };
    if step <= 0 {
        return Err(EngineError::InvalidParams(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    let n = (params.end_ns - params.start_ns) / step + 1;
    if n > MAX_STEPS {
        return Err(EngineError::TooManySteps);
    }
    let steps = Steps {
        start: params.start_ns,
        step,
        n: n as usize,
    };
    let ev = Evaluator {
        steps,
        source,
        max_series: params.max_series,
    };
    let result = ev.eval(expr)?;
    Ok(match result {
        Eval::Scalar(values) => {
            if instant {
                Value::Scalar(Sample {
                    timestamp_ns: params.start_ns,
                    value: values.first().copied().unwrap_or(f64::NAN),
                })
            } else {
                Value::Matrix(vec![Series {
                    labels: Labels::empty(),
                    samples: values
                        .into_iter()
                        .enumerate()
                        .map(|(i, value)| Sample {
                            timestamp_ns: steps.ts(i),
                            value,
                        })
                        .collect(),
                }])
            }
        }
        Eval::Vector(mut series, order) => {
            series.retain(|s| !s.points.is_empty());
            ev.check_max(series.len())?;
            if instant {
                let mut out: Vec<VectorSample> = series
                    .into_iter()
                    .filter_map(|s| {
                        let (_, value) = *s.points.first()?;
                        Some(VectorSample {
                            labels: s.labels,
                            sample: Sample {
                                timestamp_ns: params.start_ns,
                                value,
                            },
                        })
                    })
                    .collect();
                match order {
                    Order::Labels => out.sort_by(|a, b| a.labels.cmp(&b.labels)),
                    Order::ValueAsc => out.sort_by(|a, b| {
                        aggregate::cmp_value_asc(a.sample.value, b.sample.value)
                            .then_with(|| a.labels.cmp(&b.labels))
                    }),
                    Order::ValueDesc => out.sort_by(|a, b| {
                        aggregate::cmp_value_desc(a.sample.value, b.sample.value)
                            .then_with(|| a.labels.cmp(&b.labels))
                    }),
                }
                Value::Vector(out)
            } else {
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(
                    series
                        .into_iter()
                        .map(|s| Series {
                            labels: s.labels,
                            samples: s
                                .points
                                .into_iter()
                                .map(|(i, value)| Sample {
                                    timestamp_ns: steps.ts(i as usize),
                                    value,
                                })
                                .collect(),
                        })
                        .collect(),
                )
            }
        }
    })
}

/// Evaluation context.
pub(crate) struct Evaluator<'a> {
    pub(crate) steps: Steps,
    pub(crate) source: &'a dyn SampleSource,
    pub(crate) max_series: usize,
}

impl Evaluator<'_> {
    pub(crate) fn check_max(&self, n: usize) -> Result<(), EngineError> {
        if n > self.max_series {
            Err(EngineError::MaxSeries {
                limit: self.max_series,
            })
        } else {
            Ok(())
        }
    }

    pub(crate) fn eval(&self, expr: &MetricExpr) -> Result<Eval, EngineError> {
        match expr {
            MetricExpr::Literal(v) => Ok(Eval::Scalar(vec![*v; self.steps.n])),
            MetricExpr::VectorLiteral(v) => Ok(Eval::Vector(
                vec![SSeries {
                    labels: Labels::empty(),
                    points: (0..self.steps.n as u32).map(|i| (i, *v)).collect(),
                }],
                Order::Labels,
            )),
            MetricExpr::Range(agg) => {
                let series = range::eval_range(agg, self.steps, self.source, None)?;
                Ok(Eval::Vector(series, Order::Labels))
            }
            MetricExpr::Vector(agg) => {
                let inner = match &agg.inner {
                    MetricExpr::Range(r) => {
                        let outer =
                            range::outer_grouping_pushdown(agg.op, agg.grouping.as_ref(), r);
                        let series = range::eval_range(r, self.steps, self.source, outer)?;
                        Eval::Vector(series, Order::Labels)
                    }
                    other => self.eval(other)?,
                };
                aggregate::eval_vector_agg(self, agg, inner)
            }
            MetricExpr::Binary(b) => {
                let lhs = self.eval(&b.lhs)?;
                let rhs = self.eval(&b.rhs)?;
                binary::eval_binary(self, b, lhs, rhs)
            }
            MetricExpr::LabelReplace(lr) => {
                let inner = self.eval(&lr.inner)?;
                self.label_replace(lr, inner)
            }
            MetricExpr::Function(call) => functions::eval_function(self, call),
            MetricExpr::HistogramQuantile(h) => histogram::eval_histogram_quantile(self, h),
        }
    }

    fn label_replace(&self, lr: &LabelReplace, inner: Eval) -> Result<Eval, EngineError> {
        let Eval::Vector(series, _) = inner else {
            return Err(EngineError::Invalid(
                "expected type instant vector in call to function \"label_replace\", got scalar"
                    .into(),
            ));
        };
        let re = regex::Regex::new(&format!("^(?s:{})$", lr.regex)).map_err(|e| {
            EngineError::Invalid(format!(
                "invalid regular expression in label_replace(): {e}"
            ))
        })?;
        if !inferscope_model::is_valid_label_name(&lr.dst) {
            return Err(EngineError::Invalid(format!(
                "invalid destination label name in label_replace(): {}",
                lr.dst
            )));
        }
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let src = s.labels.get(&lr.src).unwrap_or("");
            let labels = match re.captures(src) {
                Some(caps) => {
                    let mut res = String::new();
                    caps.expand(&lr.replacement, &mut res);
                    let mut pairs: Vec<(String, String)> = s
                        .labels
                        .into_pairs()
                        .into_iter()
                        .filter(|(k, _)| *k != lr.dst)
                        .collect();
                    // An empty value removes the label (from_pairs drops it).
                    pairs.push((lr.dst.clone(), res));
                    Labels::from_pairs(pairs)
                }
                None => s.labels,
            };
            out.push(SSeries {
                labels,
                points: s.points,
            });
        }
        let out = merge_same_labels(out, || EngineError::DuplicateLabelset)?;
        self.check_max(out.len())?;
        Ok(Eval::Vector(out, Order::Labels))
    }
}

/// The labels of `labels` kept by a grouping: `by` keeps the listed ones, `without`
/// drops them and `__name__` (as Prometheus), no grouping keeps none.
pub fn group_labels(labels: &Labels, grouping: Option<&Grouping>) -> Labels {
    match grouping {
        None => Labels::empty(),
        Some(g) => Labels::from_pairs(labels.iter().filter(|(k, _)| {
            let listed = g.labels.iter().any(|l| l == k);
            if g.without {
                !listed && *k != "__name__"
            } else {
                listed
            }
        })),
    }
}

/// Merges series that have the same labels. Their points must not share a step,
/// otherwise `err()` is returned.
pub(crate) fn merge_same_labels(
    mut series: Vec<SSeries>,
    err: impl Fn() -> EngineError,
) -> Result<Vec<SSeries>, EngineError> {
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<SSeries> = Vec::with_capacity(series.len());
    let mut merged_any = Vec::new();
    for s in series {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => {
                last.points.extend(s.points);
                if merged_any.last() != Some(&(out.len() - 1)) {
                    merged_any.push(out.len() - 1);
                }
            }
            _ => out.push(s),
        }
    }
    for i in merged_any {
        let pts = &mut out[i].points;
        pts.sort_by_key(|p| p.0);
        if pts.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(err());
        }
    }
    Ok(out)
}
