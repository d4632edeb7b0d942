//! The LogQL abstract syntax tree and its canonical text form.
//!
//! Every node implements [`Display`] so that
//! `parse(&expr.to_string()) == Ok(expr)`: strings are re-quoted with Go escapes,
//! durations printed canonically (`1h30m`), byte sizes as plain bytes (`20000000B`),
//! and binary/boolean sub-expressions parenthesised where precedence needs it.

use std::fmt::{self, Display, Formatter, Write as _};

use inferscope_model::LabelMatcher;

use crate::duration::format_duration;
use crate::lexer::quote;

/// A whole LogQL query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A log query: a stream selector and its pipeline.
    Log(LogSelector),
    /// A metric query.
    Metric(MetricExpr),
}

/// `{matchers} stages...`
#[derive(Debug, Clone, PartialEq)]
pub struct LogSelector {
    /// Stream matchers; at least one does not match the empty string.
    pub matchers: Vec<LabelMatcher>,
    /// Pipeline stages in order.
    pub stages: Vec<Stage>,
}

/// One pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "a" or "b"`, `!~ "re"`, `|> "<_> pattern"`, `|= ip("10.0.0.0/8")`.
    LineFilter(LineFilterExpr),
    /// `| json`, `| logfmt`, `| regexp`, `| pattern`, `| unpack`.
    Parser(ParserStage),
    /// `| level="error" and status >= 500`.
    LabelFilter(LabelFilterExpr),
    /// `| line_format "template"` (the template source).
    LineFormat(String),
    /// `| label_format a=b, c="{{.x}}"`.
    LabelFormat(Vec<LabelFormatOp>),
    /// `| decolorize`
    Decolorize,
    /// `| drop a, b="v"`
    Drop(Vec<LabelSelection>),
    /// `| keep a, b="v"`
    Keep(Vec<LabelSelection>),
}

/// A line filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=` contains.
    Contains,
    /// `!=` does not contain.
    NotContains,
    /// `|~` regex matches (unanchored).
    Match,
    /// `!~` regex does not match.
    NotMatch,
    /// `|>` pattern matches.
    Pattern,
    /// `!>` pattern does not match.
    NotPattern,
}

impl LineFilterOp {
    /// The operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Match => "|~",
            LineFilterOp::NotMatch => "!~",
            LineFilterOp::Pattern => "|>",
            LineFilterOp::NotPattern => "!>",
        }
    }

    /// Whether the operator is negated.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            LineFilterOp::NotContains | LineFilterOp::NotMatch | LineFilterOp::NotPattern
        )
    }
}

/// A line filter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFilterValue {
    /// A string (literal, regex or pattern depending on the operator).
    Str(String),
    /// `ip("...")`: an address, range `a-b` or CIDR.
    Ip(String),
}

/// `op v1 or v2 ...`: a positive operator matches when any value matches; a negated
/// one when none does (Loki's semantics for `!= "a" or "b"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFilterExpr {
    /// Operator.
    pub op: LineFilterOp,
    /// Alternatives, at least one.
    pub values: Vec<LineFilterValue>,
}

/// `name` or `name="path"` in `| json` / `| logfmt` extraction lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelExtraction {
    /// The label to produce.
    pub label: String,
    /// JSON path / logfmt key; `None` means the label name itself.
    pub expr: Option<String>,
}

/// A parser stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParserStage {
    /// `| json` (empty list: extract all) or `| json a="b.c"`.
    Json(Vec<LabelExtraction>),
    /// `| logfmt [--strict] [--keep-empty] [a, b="c"]`.
    Logfmt {
        /// `--strict`: stop and set an error at the first malformed pair.
        strict: bool,
        /// `--keep-empty`: keep standalone keys with an empty value.
        keep_empty: bool,
        /// Extraction list (empty: extract all).
        extractions: Vec<LabelExtraction>,
    },
    /// `| regexp "(?P<name>...)"`.
    Regexp(String),
    /// `| pattern "<ip> - <_>"`.
    Pattern(String),
    /// `| unpack`.
    Unpack,
}

/// Numeric comparison operator in label filters and binary expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` (also written `=` in label filters)
    Eq,
    /// `!=`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

impl CmpOp {
    /// The operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        }
    }

    /// Applies the comparison.
    pub fn cmp<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Neq => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
        }
    }
}

/// A label filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilterExpr {
    /// `a and b`, `a, b`, `a b`.
    And(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    /// `a or b`.
    Or(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    /// `name="v"`, `!=`, `=~` (anchored), `!~`.
    Matcher(LabelMatcher),
    /// `name > 0.5`.
    Number {
        /// Label name.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Right-hand side.
        value: f64,
    },
    /// `name > 250ms` (value in nanoseconds).
    Duration {
        /// Label name.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Right-hand side in nanoseconds.
        value: i64,
    },
    /// `name > 20MB` (value in bytes).
    Bytes {
        /// Label name.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Right-hand side in bytes.
        value: u64,
    },
    /// `name = ip("...")` / `name != ip("...")`.
    Ip {
        /// Label name.
        name: String,
        /// `!=`
        negated: bool,
        /// Address, range or CIDR.
        pattern: String,
    },
}

/// One `label_format` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFormatOp {
    /// `dst=src`: rename (the source label is removed).
    Rename {
        /// New name.
        dst: String,
        /// Existing label.
        src: String,
    },
    /// `dst="{{template}}"`.
    Template {
        /// Label to set.
        dst: String,
        /// Template source.
        template: String,
    },
}

/// One item of `drop`/`keep`: a bare name or a matcher.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSelection {
    /// `name`
    Name(String),
    /// `name="v"` etc.
    Matcher(LabelMatcher),
}

impl LabelSelection {
    /// The label name.
    pub fn name(&self) -> &str {
        match self {
            LabelSelection::Name(n) => n,
            LabelSelection::Matcher(m) => &m.name,
        }
    }
}

// ---------------------------------------------------------------- metric queries

/// A metric query expression.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricExpr {
    /// `rate({..}[5m])` and friends.
    Range(Box<RangeAggregation>),
    /// `sum by (a) (...)` and friends.
    Vector(Box<VectorAggregation>),
    /// `lhs op rhs`.
    Binary(Box<BinaryExpr>),
    /// A number literal (scalar).
    Literal(f64),
    /// `vector(1)`.
    VectorLiteral(f64),
    /// `label_replace(v, "dst", "repl", "src", "regex")`.
    LabelReplace(Box<LabelReplace>),
    /// A PromQL function on instant vectors or scalars (`abs(v)`, `clamp(v, 0, 1)`,
    /// `scalar(v)`, `time()`, ...). Never produced by the LogQL parser.
    Function(Box<FunctionCall>),
    /// PromQL `histogram_quantile(φ, v)` over classic `le` buckets. Never produced by
    /// the LogQL parser.
    HistogramQuantile(Box<HistogramQuantile>),
}

/// Where a range aggregation's samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RangeInput {
    /// A LogQL log selector and pipeline: samples are derived from log entries
    /// (1 per entry, byte length, or the unwrapped value).
    #[default]
    Logs,
    /// A PromQL series selector: [`RangeAggregation::selector`]'s matchers (including
    /// `__name__`) select stored metric series and the samples are their raw values.
    /// `selector.stages` is empty and `unwrap` is `None`.
    Series,
}

/// Range aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// `count_over_time`
    CountOverTime,
    /// `rate` (log rate, or per-second rate of an unwrapped sum)
    Rate,
    /// `rate_counter` (unwrap only)
    RateCounter,
    /// `bytes_over_time`
    BytesOverTime,
    /// `bytes_rate`
    BytesRate,
    /// `absent_over_time`
    AbsentOverTime,
    /// `sum_over_time` (unwrap)
    SumOverTime,
    /// `avg_over_time` (unwrap)
    AvgOverTime,
    /// `min_over_time` (unwrap)
    MinOverTime,
    /// `max_over_time` (unwrap)
    MaxOverTime,
    /// `stdvar_over_time` (unwrap)
    StdvarOverTime,
    /// `stddev_over_time` (unwrap)
    StddevOverTime,
    /// `quantile_over_time(φ, ...)` (unwrap)
    QuantileOverTime,
    /// `first_over_time` (unwrap)
    FirstOverTime,
    /// `last_over_time` (unwrap)
    LastOverTime,
    /// PromQL `increase` (series input only).
    Increase,
    /// PromQL `delta` (series input only).
    Delta,
    /// PromQL `irate` (series input only).
    Irate,
    /// PromQL `idelta` (series input only).
    Idelta,
    /// PromQL `resets` (series input only).
    Resets,
    /// PromQL `changes` (series input only).
    Changes,
    /// PromQL `present_over_time` (series input only).
    PresentOverTime,
    /// A PromQL instant vector selector `m{..}`: the latest sample of each series in
    /// the lookback window `(t - range - offset, t - offset]` (series input only;
    /// the range is the 5m lookback delta). Keeps `__name__`.
    InstantSelector,
}

impl RangeOp {
    /// All LogQL range operators (the PromQL-only ones are not listed, so that
    /// [`RangeOp::from_name`] never finds them).
    pub const ALL: [RangeOp; 15] = [
        RangeOp::CountOverTime,
        RangeOp::Rate,
        RangeOp::RateCounter,
        RangeOp::BytesOverTime,
        RangeOp::BytesRate,
        RangeOp::AbsentOverTime,
        RangeOp::SumOverTime,
        RangeOp::AvgOverTime,
        RangeOp::MinOverTime,
        RangeOp::MaxOverTime,
        RangeOp::StdvarOverTime,
        RangeOp::StddevOverTime,
        RangeOp::QuantileOverTime,
        RangeOp::FirstOverTime,
        RangeOp::LastOverTime,
    ];

    /// The function name.
    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::RateCounter => "rate_counter",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::AbsentOverTime => "absent_over_time",
            RangeOp::SumOverTime => "sum_over_time",
            RangeOp::AvgOverTime => "avg_over_time",
            RangeOp::MinOverTime => "min_over_time",
            RangeOp::MaxOverTime => "max_over_time",
            RangeOp::StdvarOverTime => "stdvar_over_time",
            RangeOp::StddevOverTime => "stddev_over_time",
            RangeOp::QuantileOverTime => "quantile_over_time",
            RangeOp::FirstOverTime => "first_over_time",
            RangeOp::LastOverTime => "last_over_time",
            RangeOp::Increase => "increase",
            RangeOp::Delta => "delta",
            RangeOp::Irate => "irate",
            RangeOp::Idelta => "idelta",
            RangeOp::Resets => "resets",
            RangeOp::Changes => "changes",
            RangeOp::PresentOverTime => "present_over_time",
            RangeOp::InstantSelector => "",
        }
    }

    /// Looks a LogQL operator up by name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether the operator is valid without `| unwrap`.
    pub fn allows_plain(self) -> bool {
        matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }

    /// Whether the operator is valid with `| unwrap`.
    pub fn allows_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }
}

/// How `| unwrap` converts the label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapConversion {
    /// Plain float.
    None,
    /// `duration(x)` / `duration_seconds(x)`: Go duration → seconds.
    Duration,
    /// `duration_seconds(x)`.
    DurationSeconds,
    /// `bytes(x)`: humanized bytes → bytes.
    Bytes,
}

/// `| unwrap [conv(]label[)] [| post filters]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    /// The label to unwrap.
    pub label: String,
    /// Conversion.
    pub conversion: UnwrapConversion,
    /// Label filters after the unwrap (typically `| __error__=""`).
    pub post_filters: Vec<LabelFilterExpr>,
}

/// `by (a, b)` or `without (a)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// `without` instead of `by`.
    pub without: bool,
    /// Label names (may be empty).
    pub labels: Vec<String>,
}

/// `op([param,] selector [| unwrap x] [range] [offset d]) [grouping]`, or a PromQL
/// range function / instant selector when `input` is [`RangeInput::Series`].
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAggregation {
    /// Function.
    pub op: RangeOp,
    /// Log selector (LogQL) or series selector (PromQL).
    pub input: RangeInput,
    /// `quantile_over_time` parameter.
    pub param: Option<f64>,
    /// The log selector and its pipeline (before unwrap).
    pub selector: LogSelector,
    /// The unwrap stage, if any.
    pub unwrap: Option<Unwrap>,
    /// The range in nanoseconds.
    pub range_ns: i64,
    /// `offset` in nanoseconds.
    pub offset_ns: Option<i64>,
    /// Grouping (only unwrapped aggregations).
    pub grouping: Option<Grouping>,
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk(k, ...)`
    Topk,
    /// `bottomk(k, ...)`
    Bottomk,
    /// `sort`
    Sort,
    /// `sort_desc`
    SortDesc,
    /// PromQL `quantile(φ, ...)` (φ in [`VectorAggregation::quantile`]; not LogQL).
    Quantile,
}

impl VectorOp {
    /// All operators.
    pub const ALL: [VectorOp; 11] = [
        VectorOp::Sum,
        VectorOp::Avg,
        VectorOp::Min,
        VectorOp::Max,
        VectorOp::Count,
        VectorOp::Stddev,
        VectorOp::Stdvar,
        VectorOp::Topk,
        VectorOp::Bottomk,
        VectorOp::Sort,
        VectorOp::SortDesc,
    ];

    /// The function name.
    pub fn as_str(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Min => "min",
            VectorOp::Max => "max",
            VectorOp::Count => "count",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Topk => "topk",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
            VectorOp::Quantile => "quantile",
        }
    }

    /// Looks an operator up by name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// `op [grouping] ([param,] inner)`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAggregation {
    /// Operator.
    pub op: VectorOp,
    /// `k` for topk/bottomk.
    pub param: Option<i64>,
    /// φ for the PromQL `quantile` aggregation.
    pub quantile: Option<f64>,
    /// Grouping.
    pub grouping: Option<Grouping>,
    /// Aggregated expression.
    pub inner: MetricExpr,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// The operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Neq => "!=",
            BinOp::Gt => ">",
            BinOp::Gte => ">=",
            BinOp::Lt => "<",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    /// Binding power: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Neq | BinOp::Gt | BinOp::Gte | BinOp::Lt | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// Whether this is a comparison operator.
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// Whether this is a set operator (`and`, `or`, `unless`).
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// `group_left`/`group_right`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupModifier {
    /// `group_right` instead of `group_left`.
    pub right: bool,
    /// Extra labels to copy (may be empty).
    pub labels: Vec<String>,
}

/// `on(...)`/`ignoring(...)` with an optional group modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` instead of `ignoring`.
    pub on: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// `group_left`/`group_right`.
    pub group: Option<GroupModifier>,
}

/// `lhs op [bool] [on(..)|ignoring(..)] [group_x(..)] rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    /// Operator.
    pub op: BinOp,
    /// `bool` modifier on comparisons.
    pub return_bool: bool,
    /// Vector matching.
    pub matching: Option<VectorMatching>,
    /// Left operand.
    pub lhs: MetricExpr,
    /// Right operand.
    pub rhs: MetricExpr,
}

/// `label_replace(inner, "dst", "replacement", "src", "regex")`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelReplace {
    /// Input.
    pub inner: MetricExpr,
    /// Destination label.
    pub dst: String,
    /// Replacement (`$1` references).
    pub replacement: String,
    /// Source label.
    pub src: String,
    /// Anchored regex.
    pub regex: String,
}

/// PromQL functions on instant vectors and scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `abs(v)`
    Abs,
    /// `ceil(v)`
    Ceil,
    /// `floor(v)`
    Floor,
    /// `round(v [, to_nearest])`
    Round,
    /// `sqrt(v)`
    Sqrt,
    /// `exp(v)`
    Exp,
    /// `ln(v)`
    Ln,
    /// `log2(v)`
    Log2,
    /// `log10(v)`
    Log10,
    /// `clamp(v, min, max)`
    Clamp,
    /// `clamp_min(v, min)`
    ClampMin,
    /// `clamp_max(v, max)`
    ClampMax,
    /// `scalar(v)`: the value of a one-element vector, NaN otherwise.
    Scalar,
    /// `vector(s)`: a one-element vector without labels.
    Vector,
    /// `time()`: the evaluation time in seconds.
    Time,
}

impl Func {
    /// Every function.
    pub const ALL: [Func; 15] = [
        Func::Abs,
        Func::Ceil,
        Func::Floor,
        Func::Round,
        Func::Sqrt,
        Func::Exp,
        Func::Ln,
        Func::Log2,
        Func::Log10,
        Func::Clamp,
        Func::ClampMin,
        Func::ClampMax,
        Func::Scalar,
        Func::Vector,
        Func::Time,
    ];

    /// The function name.
    pub fn as_str(self) -> &'static str {
        match self {
            Func::Abs => "abs",
            Func::Ceil => "ceil",
            Func::Floor => "floor",
            Func::Round => "round",
            Func::Sqrt => "sqrt",
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Log2 => "log2",
            Func::Log10 => "log10",
            Func::Clamp => "clamp",
            Func::ClampMin => "clamp_min",
            Func::ClampMax => "clamp_max",
            Func::Scalar => "scalar",
            Func::Vector => "vector",
            Func::Time => "time",
        }
    }

    /// Looks a function up by name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// `func(args...)`: the first argument of the vector functions is the instant vector,
/// the others are scalars.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    /// Function.
    pub func: Func,
    /// Arguments.
    pub args: Vec<MetricExpr>,
}

/// `histogram_quantile(φ, inner)`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramQuantile {
    /// φ, a scalar expression.
    pub phi: MetricExpr,
    /// The bucket series (with an `le` label).
    pub inner: MetricExpr,
}

impl Expr {
    /// Every log selector in the query (one for a log query; one per range
    /// aggregation for a metric query), in textual order.
    pub fn selectors(&self) -> Vec<&LogSelector> {
        match self {
            Expr::Log(l) => vec![l],
            Expr::Metric(m) => m
                .range_aggregations()
                .into_iter()
                .map(|r| &r.selector)
                .collect(),
        }
    }
}

impl MetricExpr {
    /// Every range aggregation in the expression, in textual order.
    pub fn range_aggregations(&self) -> Vec<&RangeAggregation> {
        let mut out = Vec::new();
        self.collect_ranges(&mut out);
        out
    }

    fn collect_ranges<'a>(&'a self, out: &mut Vec<&'a RangeAggregation>) {
        match self {
            MetricExpr::Range(r) => out.push(r),
            MetricExpr::Vector(v) => v.inner.collect_ranges(out),
            MetricExpr::Binary(b) => {
                b.lhs.collect_ranges(out);
                b.rhs.collect_ranges(out);
            }
            MetricExpr::LabelReplace(l) => l.inner.collect_ranges(out),
            MetricExpr::Function(f) => f.args.iter().for_each(|a| a.collect_ranges(out)),
            MetricExpr::HistogramQuantile(h) => {
                h.phi.collect_ranges(out);
                h.inner.collect_ranges(out);
            }
            MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => {}
        }
    }
}

// ---------------------------------------------------------------- Display

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => l.fmt(f),
            Expr::Metric(m) => m.fmt(f),
        }
    }
}

fn write_matcher(f: &mut Formatter<'_>, m: &LabelMatcher) -> fmt::Result {
    write!(f, "{}{}{}", m.name, m.op.as_str(), quote(&m.value))
}

impl Display for LogSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('{')?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_matcher(f, m)?;
        }
        f.write_char('}')?;
        for s in &self.stages {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}

fn write_extractions(f: &mut Formatter<'_>, ex: &[LabelExtraction]) -> fmt::Result {
    for (i, e) in ex.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        match &e.expr {
            None => f.write_str(&e.label)?,
            Some(p) => write!(f, "{}={}", e.label, quote(p))?,
        }
    }
    Ok(())
}

fn write_selections(f: &mut Formatter<'_>, sel: &[LabelSelection]) -> fmt::Result {
    for (i, s) in sel.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        match s {
            LabelSelection::Name(n) => f.write_str(n)?,
            LabelSelection::Matcher(m) => write_matcher(f, m)?,
        }
    }
    Ok(())
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(lf) => lf.fmt(f),
            Stage::Parser(p) => p.fmt(f),
            Stage::LabelFilter(e) => write!(f, "| {e}"),
            Stage::LineFormat(t) => write!(f, "| line_format {}", quote(t)),
            Stage::LabelFormat(ops) => {
                f.write_str("| label_format")?;
                for (i, op) in ops.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    match op {
                        LabelFormatOp::Rename { dst, src } => write!(f, "{dst}={src}")?,
                        LabelFormatOp::Template { dst, template } => {
                            write!(f, "{dst}={}", quote(template))?
                        }
                    }
                }
                Ok(())
            }
            Stage::Decolorize => f.write_str("| decolorize"),
            Stage::Drop(s) => {
                f.write_str("| drop")?;
                write_selections(f, s)
            }
            Stage::Keep(s) => {
                f.write_str("| keep")?;
                write_selections(f, s)
            }
        }
    }
}

impl Display for LineFilterExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(" or")?;
            }
            match v {
                LineFilterValue::Str(s) => write!(f, " {}", quote(s))?,
                LineFilterValue::Ip(s) => write!(f, " ip({})", quote(s))?,
            }
        }
        Ok(())
    }
}

impl Display for ParserStage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ParserStage::Json(ex) => {
                f.write_str("| json")?;
                write_extractions(f, ex)
            }
            ParserStage::Logfmt {
                strict,
                keep_empty,
                extractions,
            } => {
                f.write_str("| logfmt")?;
                if *strict {
                    f.write_str(" --strict")?;
                }
                if *keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                write_extractions(f, extractions)
            }
            ParserStage::Regexp(r) => write!(f, "| regexp {}", quote(r)),
            ParserStage::Pattern(p) => write!(f, "| pattern {}", quote(p)),
            ParserStage::Unpack => f.write_str("| unpack"),
        }
    }
}

/// Prints an f64 so that the lexer reads it back exactly.
pub(crate) fn fmt_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{n}")
    }
}

impl LabelFilterExpr {
    /// Appends the label names this filter reads to `out`.
    pub fn names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
                a.names(out);
                b.names(out);
            }
            LabelFilterExpr::Matcher(m) => out.push(&m.name),
            LabelFilterExpr::Number { name, .. }
            | LabelFilterExpr::Duration { name, .. }
            | LabelFilterExpr::Bytes { name, .. }
            | LabelFilterExpr::Ip { name, .. } => out.push(name),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            LabelFilterExpr::Or(..) => 1,
            LabelFilterExpr::And(..) => 2,
            _ => 3,
        }
    }
}

impl Display for LabelFilterExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let side = |f: &mut Formatter<'_>, e: &LabelFilterExpr, min: u8| -> fmt::Result {
            if e.precedence() < min {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            LabelFilterExpr::And(a, b) => {
                side(f, a, 2)?;
                f.write_str(" and ")?;
                side(f, b, 3)
            }
            LabelFilterExpr::Or(a, b) => {
                side(f, a, 1)?;
                f.write_str(" or ")?;
                side(f, b, 2)
            }
            LabelFilterExpr::Matcher(m) => write_matcher(f, m),
            LabelFilterExpr::Number { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), fmt_number(*value))
            }
            LabelFilterExpr::Duration { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), format_duration(*value))
            }
            LabelFilterExpr::Bytes { name, op, value } => {
                write!(f, "{name}{}{value}B", op.as_str())
            }
            LabelFilterExpr::Ip {
                name,
                negated,
                pattern,
            } => write!(
                f,
                "{name}{}ip({})",
                if *negated { "!=" } else { "=" },
                quote(pattern)
            ),
        }
    }
}

fn write_labels(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    f.write_char('(')?;
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(l)?;
    }
    f.write_char(')')
}

impl Display for Grouping {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(if self.without { "without " } else { "by " })?;
        write_labels(f, &self.labels)
    }
}

impl Display for MetricExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Range(r) => r.fmt(f),
            MetricExpr::Vector(v) => v.fmt(f),
            MetricExpr::Binary(b) => b.fmt(f),
            MetricExpr::Literal(n) => f.write_str(&fmt_number(*n)),
            MetricExpr::VectorLiteral(n) => write!(f, "vector({})", fmt_number(*n)),
            MetricExpr::LabelReplace(l) => write!(
                f,
                "label_replace({}, {}, {}, {}, {})",
                l.inner,
                quote(&l.dst),
                quote(&l.replacement),
                quote(&l.src),
                quote(&l.regex)
            ),
            MetricExpr::Function(c) => {
                write!(f, "{}(", c.func.as_str())?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.fmt(f)?;
                }
                f.write_char(')')
            }
            MetricExpr::HistogramQuantile(h) => {
                write!(f, "histogram_quantile({}, {})", h.phi, h.inner)
            }
        }
    }
}

/// A PromQL series selector `{a="b", __name__="m"}` (the metric name as a matcher).
fn write_series_selector(f: &mut Formatter<'_>, agg: &RangeAggregation) -> fmt::Result {
    agg.selector.fmt(f)?;
    if agg.op != RangeOp::InstantSelector {
        write!(f, "[{}]", format_duration(agg.range_ns))?;
    }
    if let Some(o) = agg.offset_ns {
        write!(f, " offset {}", format_duration(o))?;
    }
    Ok(())
}

impl Display for RangeAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.input == RangeInput::Series {
            if self.op == RangeOp::InstantSelector {
                return write_series_selector(f, self);
            }
            write!(f, "{}(", self.op.as_str())?;
            if let Some(p) = self.param {
                write!(f, "{}, ", fmt_number(p))?;
            }
            write_series_selector(f, self)?;
            return f.write_char(')');
        }
        write!(f, "{}(", self.op.as_str())?;
        if let Some(p) = self.param {
            write!(f, "{}, ", fmt_number(p))?;
        }
        self.selector.fmt(f)?;
        if let Some(u) = &self.unwrap {
            f.write_str(" | unwrap ")?;
            match u.conversion {
                UnwrapConversion::None => f.write_str(&u.label)?,
                UnwrapConversion::Duration => write!(f, "duration({})", u.label)?,
                UnwrapConversion::DurationSeconds => write!(f, "duration_seconds({})", u.label)?,
                UnwrapConversion::Bytes => write!(f, "bytes({})", u.label)?,
            }
            for p in &u.post_filters {
                write!(f, " | {p}")?;
            }
        }
        write!(f, "[{}]", format_duration(self.range_ns))?;
        if let Some(o) = self.offset_ns {
            write!(f, " offset {}", format_duration(o))?;
        }
        f.write_char(')')?;
        if let Some(g) = &self.grouping {
            write!(f, " {g}")?;
        }
        Ok(())
    }
}

impl Display for VectorAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if let Some(g) = &self.grouping {
            write!(f, " {g} ")?;
        }
        f.write_char('(')?;
        if let Some(p) = self.param {
            write!(f, "{p}, ")?;
        }
        if let Some(q) = self.quantile {
            write!(f, "{}, ", fmt_number(q))?;
        }
        write!(f, "{})", self.inner)
    }
}

impl Display for BinaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let prec = self.op.precedence();
        let right_assoc = self.op == BinOp::Pow;
        let needs_paren = |e: &MetricExpr, is_rhs: bool| -> bool {
            match e {
                MetricExpr::Binary(b) => {
                    let p = b.op.precedence();
                    if right_assoc {
                        if is_rhs { p < prec } else { p <= prec }
                    } else if is_rhs {
                        p <= prec
                    } else {
                        p < prec
                    }
                }
                // A negative literal on the left of ^ would read as -(x^y).
                MetricExpr::Literal(n) => right_assoc && !is_rhs && n.is_sign_negative(),
                _ => false,
            }
        };
        if needs_paren(&self.lhs, false) {
            write!(f, "({})", self.lhs)?;
        } else {
            write!(f, "{}", self.lhs)?;
        }
        write!(f, " {}", self.op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(m) = &self.matching {
            f.write_str(if m.on { " on " } else { " ignoring " })?;
            write_labels(f, &m.labels)?;
            if let Some(g) = &m.group {
                f.write_str(if g.right {
                    " group_right "
                } else {
                    " group_left "
                })?;
                write_labels(f, &g.labels)?;
            }
        }
        if needs_paren(&self.rhs, true) {
            write!(f, " ({})", self.rhs)
        } else {
            write!(f, " {}", self.rhs)
        }
    }
}
