//! Public value types of the metric engine: samples, series, results, parameters and
//! errors, plus the [`SampleSource`] trait the server implements over storage.

use inferscope_model::Labels;

use crate::ast::{Grouping, RangeAggregation};

/// One point: a timestamp in nanoseconds and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix timestamp in nanoseconds.
    pub timestamp_ns: i64,
    /// Value.
    pub value: f64,
}

/// A labelled series of samples sorted by timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Series labels.
    pub labels: Labels,
    /// Samples sorted by timestamp.
    pub samples: Vec<Sample>,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// Series labels.
    pub labels: Labels,
    /// The value at the evaluation time.
    pub sample: Sample,
}

/// The result of [`evaluate`](super::evaluate).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Instant query (`start == end`) of a vector expression (Loki `resultType: vector`).
    Vector(Vec<VectorSample>),
    /// Range query (Loki `resultType: matrix`): series sorted by labels, points by time.
    /// A scalar expression over a range query is one series with empty labels.
    Matrix(Vec<Series>),
    /// Instant query of a scalar expression (Loki `resultType: scalar`).
    Scalar(Sample),
}

/// Evaluation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalParams {
    /// First evaluation time (ns).
    pub start_ns: i64,
    /// Last evaluation time (ns), inclusive when it falls on a step.
    pub end_ns: i64,
    /// Step (ns), > 0. Ignored for instant queries (`start_ns == end_ns`).
    pub step_ns: i64,
    /// Maximum number of series in the result or in an intermediate vector.
    pub max_series: usize,
}

/// Supplies the samples of one range aggregation's inner selector. Implemented by the
/// server over storage.
pub trait SampleSource {
    /// All samples of `agg`'s log selector (after its pipeline and unwrap, including the
    /// unwrap post-filters), with timestamps in `[start_ns, end_ns]`, grouped by series
    /// labels (the labels after the pipeline), each series' samples sorted by timestamp.
    ///
    /// For log range aggregations (`count_over_time`, `rate`, `bytes_*`,
    /// `absent_over_time`) the value is 1.0 per entry, or the line length in bytes for
    /// `bytes_over_time`/`bytes_rate`; for unwrapped ones it is the unwrapped value.
    /// Series still carrying an `__error__` label make the query fail like Loki.
    ///
    /// `keep` is a hint: when set, the engine only needs the labels that grouping
    /// keeps ([`group_labels`](super::group_labels)), so the source may reduce each
    /// series' labels to them (merging series that become equal) and tell its
    /// parsers to extract nothing else. Series with an `__error__` label must keep
    /// all their labels, so that the error is reported as without the hint.
    ///
    /// PromQL (`agg.input == RangeInput::Series`): `agg.selector.matchers` are the
    /// series selector's matchers, the metric name included as a `__name__` matcher;
    /// `agg.selector.stages` is empty and `agg.unwrap` is `None`. Return the raw
    /// stored samples of every metric series matching all the matchers, with
    /// timestamps in `[start_ns, end_ns]`, one [`Series`] per stored series whose
    /// labels include `__name__`, samples sorted by timestamp. `keep` is always
    /// `None` for series input (PromQL functions must see each series unmerged).
    fn samples(
        &self,
        agg: &RangeAggregation,
        start_ns: i64,
        end_ns: i64,
        keep: Option<&Grouping>,
    ) -> Result<Vec<Series>, EngineError>;
}

/// Why a metric query could not be evaluated. Messages follow Loki/Prometheus wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// Too many series in the result or an intermediate vector.
    #[error("maximum of series ({limit}) reached for a single query")]
    MaxSeries {
        /// The configured limit.
        limit: usize,
    },
    /// The sample source failed.
    #[error("{0}")]
    Source(String),
    /// Bad start/end/step.
    #[error("invalid query parameters: {0}")]
    InvalidParams(String),
    /// More than 11,000 steps.
    #[error(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    )]
    TooManySteps,
    /// A series kept an `__error__` label (no `| __error__=""` filter).
    #[error(
        "pipeline error: '{error}' for series: '{series}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{error}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    )]
    Pipeline {
        /// The `__error__` value.
        error: String,
        /// The series labels.
        series: String,
    },
    /// Vector matching failure in a binary operation (many-to-many, duplicates).
    #[error("{0}")]
    Matching(String),
    /// Two series ended up with the same labels at the same time.
    #[error("vector cannot contain metrics with the same labelset")]
    DuplicateLabelset,
    /// An expression the engine can't evaluate (type errors, bad regex, ...).
    #[error("{0}")]
    Invalid(String),
}
