//! PromQL front end: parses PromQL with the `promql-parser` crate and translates its
//! AST into this crate's [`MetricExpr`], so that the one metric engine
//! ([`engine::evaluate`](crate::engine::evaluate)) answers both LogQL and PromQL.
//!
//! Translation:
//!
//! * A series selector `m{a="b"}` becomes a [`RangeAggregation`] with
//!   [`RangeInput::Series`]: its [`LogSelector`] holds the matchers (the metric name as
//!   a `__name__="m"` matcher) and no stages, `unwrap` is `None`. The
//!   [`SampleSource`](crate::engine::SampleSource) returns the raw stored samples of
//!   every matching series.
//! * An instant selector (not inside a range function) is
//!   [`RangeOp::InstantSelector`] with a 5m range (Prometheus' default lookback
//!   delta): at each step the latest sample in `(t - 5m - offset, t - offset]`, with
//!   its labels including `__name__`. No staleness markers: a series disappears 5m
//!   after its last sample.
//! * `rate`, `increase`, `delta`, `irate`, `idelta`, `resets`, `changes`,
//!   `*_over_time` and `present_over_time` become range aggregations over the matrix
//!   selector; their results drop `__name__` (except `last_over_time`).
//! * Aggregations (`sum`, `avg`, `min`, `max`, `count`, `stddev`, `stdvar`, `topk`,
//!   `bottomk`, `quantile`) become [`VectorAggregation`]s; binary operators keep their
//!   `bool`, `on`/`ignoring` and `group_left`/`group_right` modifiers; unary minus is
//!   `-1 * x`; `histogram_quantile` becomes [`MetricExpr::HistogramQuantile`]; `abs`,
//!   `ceil`, `floor`, `round`, `sqrt`, `exp`, `ln`, `log2`, `log10`, `clamp`,
//!   `clamp_min`, `clamp_max`, `scalar`, `vector`, `time` become
//!   [`MetricExpr::Function`]; `label_replace`, `sort`, `sort_desc` reuse the LogQL
//!   nodes.
//! * Not supported (an [`PromqlError::Unsupported`], never a panic): subqueries, the
//!   `@` modifier, top-level range vectors, string results, `or`-joined selector
//!   matchers, `group`/`count_values`/`limitk`/`limit_ratio`, non-literal `topk`/
//!   `quantile`/`quantile_over_time` parameters, binary `fill` modifiers, `atan2`, and
//!   every other function (`absent`, `deriv`, `predict_linear`, `label_join`,
//!   `timestamp`, date functions, native-histogram functions, ...).

use std::time::Duration;

use inferscope_model::{LabelMatcher, MatchOp};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{
    self as pp, Expr as PExpr, LabelModifier, Offset, VectorMatchCardinality,
};

use crate::ast::{
    BinOp, BinaryExpr, Func, FunctionCall, GroupModifier, Grouping, HistogramQuantile,
    LabelReplace, LogSelector, MetricExpr, RangeAggregation, RangeInput, RangeOp,
    VectorAggregation, VectorMatching, VectorOp,
};

/// Prometheus' default lookback delta for instant selectors (5 minutes).
pub const LOOKBACK_DELTA_NS: i64 = 5 * 60 * 1_000_000_000;

/// Why a PromQL query could not be translated. Both variants map to HTTP 400
/// (`errorType: bad_data`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromqlError {
    /// promql-parser rejected the query; the message is the parser's.
    #[error("{0}")]
    Parse(String),
    /// Valid PromQL this engine does not implement.
    #[error("unsupported PromQL: {0}")]
    Unsupported(String),
}

/// Parses a PromQL query into a [`MetricExpr`] for [`engine::evaluate`](crate::engine::evaluate).
pub fn parse(query: &str) -> Result<MetricExpr, PromqlError> {
    let expr = pp::parse(query).map_err(PromqlError::Parse)?;
    translate(&expr)
}

/// Parses a series selector (a `match[]` parameter of `/api/v1/series`, `labels`,
/// `label/<name>/values`) into its matchers, the metric name as `__name__="m"`.
pub fn parse_selector(selector: &str) -> Result<Vec<LabelMatcher>, PromqlError> {
    match strip_parens(&pp::parse(selector).map_err(PromqlError::Parse)?) {
        PExpr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => matchers(vs),
        _ => Err(PromqlError::Parse(format!(
            "invalid series selector: {selector}"
        ))),
    }
}

/// The matchers of every series selector in a query, in textual order.
pub fn selectors(query: &str) -> Result<Vec<Vec<LabelMatcher>>, PromqlError> {
    Ok(parse(query)?
        .range_aggregations()
        .into_iter()
        .filter(|r| r.input == RangeInput::Series)
        .map(|r| r.selector.matchers.clone())
        .collect())
}

fn unsupported(what: impl Into<String>) -> PromqlError {
    PromqlError::Unsupported(what.into())
}

fn strip_parens(e: &PExpr) -> &PExpr {
    match e {
        PExpr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

fn translate(e: &PExpr) -> Result<MetricExpr, PromqlError> {
    match e {
        PExpr::NumberLiteral(n) => Ok(MetricExpr::Literal(n.val)),
        PExpr::Paren(p) => translate(&p.expr),
        PExpr::Unary(u) => match translate(&u.expr)? {
            MetricExpr::Literal(v) => Ok(MetricExpr::Literal(-v)),
            inner => Ok(MetricExpr::Binary(Box::new(BinaryExpr {
                op: BinOp::Mul,
                return_bool: false,
                matching: None,
                lhs: MetricExpr::Literal(-1.0),
                rhs: inner,
            }))),
        },
        PExpr::VectorSelector(vs) => Ok(series_range(
            RangeOp::InstantSelector,
            None,
            vs,
            LOOKBACK_DELTA_NS,
        )?),
        PExpr::Binary(b) => binary(b),
        PExpr::Aggregate(a) => aggregate(a),
        PExpr::Call(c) => call(c),
        PExpr::MatrixSelector(_) => Err(unsupported(
            "a range vector must be used inside a range function such as rate()",
        )),
        PExpr::Subquery(_) => Err(unsupported("subqueries (`expr[range:step]`)")),
        PExpr::StringLiteral(_) => Err(unsupported("string expressions")),
        PExpr::Extension(_) => Err(unsupported("extension expressions")),
    }
}

fn duration_ns(d: &Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The matchers of a selector, with the metric name as a `__name__` matcher.
fn matchers(vs: &pp::VectorSelector) -> Result<Vec<LabelMatcher>, PromqlError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported("`or` in series selector matchers"));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        let present = vs
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == "__name__" && m.op == PMatchOp::Equal && m.value == *name);
        if !present {
            out.push(
                LabelMatcher::new("__name__", MatchOp::Eq, name.clone())
                    .map_err(|e| PromqlError::Parse(e.to_string()))?,
            );
        }
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Eq,
            PMatchOp::NotEqual => MatchOp::NotEq,
            PMatchOp::Re(_) => MatchOp::Re,
            PMatchOp::NotRe(_) => MatchOp::NotRe,
        };
        out.push(
            LabelMatcher::new(m.name.clone(), op, m.value.clone())
                .map_err(|e| PromqlError::Parse(e.to_string()))?,
        );
    }
    Ok(out)
}

fn series_range(
    op: RangeOp,
    param: Option<f64>,
    vs: &pp::VectorSelector,
    range_ns: i64,
) -> Result<MetricExpr, PromqlError> {
    if vs.at.is_some() {
        return Err(unsupported("the `@` modifier"));
    }
    let offset_ns = match &vs.offset {
        None => None,
        Some(Offset::Pos(d)) => Some(duration_ns(d)),
        Some(Offset::Neg(d)) => Some(-duration_ns(d)),
    };
    Ok(MetricExpr::Range(Box::new(RangeAggregation {
        op,
        input: RangeInput::Series,
        param,
        selector: LogSelector {
            matchers: matchers(vs)?,
            stages: Vec::new(),
        },
        unwrap: None,
        range_ns,
        offset_ns,
        grouping: None,
    })))
}

/// A number literal parameter (`topk(5, …)`, `quantile(0.9, …)`).
fn literal(e: &PExpr, what: &str) -> Result<f64, PromqlError> {
    match translate(e)? {
        MetricExpr::Literal(v) => Ok(v),
        _ => Err(unsupported(format!("a non-literal parameter for {what}"))),
    }
}

fn string_arg(e: &PExpr, func: &str) -> Result<String, PromqlError> {
    match strip_parens(e) {
        PExpr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(PromqlError::Parse(format!(
            "expected a string argument in call to function \"{func}\""
        ))),
    }
}

fn binary(b: &pp::BinaryExpr) -> Result<MetricExpr, PromqlError> {
    let op_text = b.op.to_string();
    let op = match op_text.as_str() {
        "+" => BinOp::Add,
        "-" => BinOp::Sub,
        "*" => BinOp::Mul,
        "/" => BinOp::Div,
        "%" => BinOp::Mod,
        "^" => BinOp::Pow,
        "==" => BinOp::Eq,
        "!=" => BinOp::Neq,
        ">" => BinOp::Gt,
        ">=" => BinOp::Gte,
        "<" => BinOp::Lt,
        "<=" => BinOp::Lte,
        "and" => BinOp::And,
        "or" => BinOp::Or,
        "unless" => BinOp::Unless,
        other => return Err(unsupported(format!("the `{other}` operator"))),
    };
    let mut return_bool = false;
    let mut matching = None;
    if let Some(m) = &b.modifier {
        if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
            return Err(unsupported("fill modifiers on binary operators"));
        }
        return_bool = m.return_bool;
        let group = match &m.card {
            VectorMatchCardinality::ManyToOne(l) => Some(GroupModifier {
                right: false,
                labels: l.labels.clone(),
            }),
            VectorMatchCardinality::OneToMany(l) => Some(GroupModifier {
                right: true,
                labels: l.labels.clone(),
            }),
            VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany => None,
        };
        matching = match (&m.matching, group) {
            (Some(LabelModifier::Include(l)), group) => Some(VectorMatching {
                on: true,
                labels: l.labels.clone(),
                group,
            }),
            (Some(LabelModifier::Exclude(l)), group) => Some(VectorMatching {
                on: false,
                labels: l.labels.clone(),
                group,
            }),
            (None, Some(group)) => Some(VectorMatching {
                on: false,
                labels: Vec::new(),
                group: Some(group),
            }),
            (None, None) => None,
        };
    }
    Ok(MetricExpr::Binary(Box::new(BinaryExpr {
        op,
        return_bool,
        matching,
        lhs: translate(&b.lhs)?,
        rhs: translate(&b.rhs)?,
    })))
}

fn aggregate(a: &pp::AggregateExpr) -> Result<MetricExpr, PromqlError> {
    let name = a.op.to_string();
    let op = match name.as_str() {
        "sum" => VectorOp::Sum,
        "avg" => VectorOp::Avg,
        "min" => VectorOp::Min,
        "max" => VectorOp::Max,
        "count" => VectorOp::Count,
        "stddev" => VectorOp::Stddev,
        "stdvar" => VectorOp::Stdvar,
        "topk" => VectorOp::Topk,
        "bottomk" => VectorOp::Bottomk,
        "quantile" => VectorOp::Quantile,
        other => return Err(unsupported(format!("the `{other}` aggregation"))),
    };
    let grouping = a.modifier.as_ref().map(|m| match m {
        LabelModifier::Include(l) => Grouping {
            without: false,
            labels: l.labels.clone(),
        },
        LabelModifier::Exclude(l) => Grouping {
            without: true,
            labels: l.labels.clone(),
        },
    });
    let param_value = match &a.param {
        Some(p) => Some(literal(p, &name)?),
        None => None,
    };
    let (param, quantile) = match op {
        // Prometheus truncates k to an integer.
        VectorOp::Topk | VectorOp::Bottomk => (param_value.map(|k| k as i64), None),
        VectorOp::Quantile => (None, param_value),
        _ => (None, None),
    };
    Ok(MetricExpr::Vector(Box::new(VectorAggregation {
        op,
        param,
        quantile,
        grouping,
        inner: translate(&a.expr)?,
    })))
}

/// PromQL range functions and their engine operators.
fn range_op(name: &str) -> Option<RangeOp> {
    Some(match name {
        "rate" => RangeOp::Rate,
        "increase" => RangeOp::Increase,
        "delta" => RangeOp::Delta,
        "irate" => RangeOp::Irate,
        "idelta" => RangeOp::Idelta,
        "resets" => RangeOp::Resets,
        "changes" => RangeOp::Changes,
        "sum_over_time" => RangeOp::SumOverTime,
        "avg_over_time" => RangeOp::AvgOverTime,
        "min_over_time" => RangeOp::MinOverTime,
        "max_over_time" => RangeOp::MaxOverTime,
        "count_over_time" => RangeOp::CountOverTime,
        "stddev_over_time" => RangeOp::StddevOverTime,
        "stdvar_over_time" => RangeOp::StdvarOverTime,
        "last_over_time" => RangeOp::LastOverTime,
        "first_over_time" => RangeOp::FirstOverTime,
        "quantile_over_time" => RangeOp::QuantileOverTime,
        "present_over_time" => RangeOp::PresentOverTime,
        "absent_over_time" => RangeOp::AbsentOverTime,
        _ => return None,
    })
}

fn call(c: &pp::Call) -> Result<MetricExpr, PromqlError> {
    let name = c.func.name;
    let args: Vec<&PExpr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    let arg = |i: usize| -> Result<&PExpr, PromqlError> {
        args.get(i).copied().ok_or_else(|| {
            PromqlError::Parse(format!("wrong number of arguments for function \"{name}\""))
        })
    };
    if let Some(op) = range_op(name) {
        let (param, matrix) = if op == RangeOp::QuantileOverTime {
            (Some(literal(arg(0)?, name)?), arg(1)?)
        } else {
            (None, arg(0)?)
        };
        return match strip_parens(matrix) {
            PExpr::MatrixSelector(ms) => series_range(op, param, &ms.vs, duration_ns(&ms.range)),
            PExpr::Subquery(_) => Err(unsupported("subqueries (`expr[range:step]`)")),
            _ => Err(PromqlError::Parse(format!(
                "expected type range vector in call to function \"{name}\""
            ))),
        };
    }
    match name {
        "histogram_quantile" => Ok(MetricExpr::HistogramQuantile(Box::new(HistogramQuantile {
            phi: translate(arg(0)?)?,
            inner: translate(arg(1)?)?,
        }))),
        "label_replace" => Ok(MetricExpr::LabelReplace(Box::new(LabelReplace {
            inner: translate(arg(0)?)?,
            dst: string_arg(arg(1)?, name)?,
            replacement: string_arg(arg(2)?, name)?,
            src: string_arg(arg(3)?, name)?,
            regex: string_arg(arg(4)?, name)?,
        }))),
        "sort" | "sort_desc" => Ok(MetricExpr::Vector(Box::new(VectorAggregation {
            op: if name == "sort" {
                VectorOp::Sort
            } else {
                VectorOp::SortDesc
            },
            param: None,
            quantile: None,
            grouping: None,
            inner: translate(arg(0)?)?,
        }))),
        "vector" => match translate(arg(0)?)? {
            MetricExpr::Literal(v) => Ok(MetricExpr::VectorLiteral(v)),
            inner => Ok(MetricExpr::Function(Box::new(FunctionCall {
                func: Func::Vector,
                args: vec![inner],
            }))),
        },
        _ => {
            let Some(func) = Func::from_name(name) else {
                return Err(unsupported(format!("the function `{name}`")));
            };
            let args = args
                .iter()
                .map(|a| translate(a))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(MetricExpr::Function(Box::new(FunctionCall { func, args })))
        }
    }
}

#[cfg(test)]
mod tests;
