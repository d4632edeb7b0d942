//! The types shared by the OTLP conversion, the GenAI derivation and the store:
//! a normalized update to one series, and a histogram point in delta form.

use inferscope_model::Labels;

/// How an update changes its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Add the value to a monotonic counter (the store keeps the running total, so
    /// every stored counter is cumulative and never decreases).
    CounterAdd,
    /// Set a gauge to the value.
    GaugeSet,
}

/// One normalized update of one series, ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PointUpdate {
    /// The series labels, `__name__` included (Prometheus naming).
    pub labels: Labels,
    /// Time of the point, Unix nanoseconds.
    pub ts_ns: i64,
    /// The increment (`CounterAdd`) or the value (`GaugeSet`).
    pub value: f64,
    /// How to apply it.
    pub kind: UpdateKind,
}

/// A histogram data point's increment since the previous point of its stream, after
/// temporality normalization (a delta point as sent; a cumulative point minus the
/// previous one, or whole after a reset).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramDelta<'a> {
    /// Time of the point, Unix nanoseconds.
    pub ts_ns: i64,
    /// Number of observations in the increment.
    pub count: u64,
    /// Sum of the observations in the increment.
    pub sum: f64,
    /// Explicit upper bounds, ascending (the sender's own boundaries).
    pub bounds: &'a [f64],
    /// Observations per bucket (not cumulative), `bounds.len() + 1` of them; the last
    /// one is the `+Inf` bucket.
    pub bucket_counts: &'a [u64],
}

/// Attributes as `(OTLP key, value rendered as a string)` pairs, keys kept dotted
/// (`gen_ai.request.model`, `service.instance.id`).
pub type Attributes = [(String, String)];

/// Receives every histogram data point after temporality normalization, with its
/// resource and point attributes, and may add derived updates (the GenAI series).
pub trait HistogramObserver: Send + Sync {
    /// Called once per normalized histogram data point; pushes derived updates to
    /// `out`. `unit` is the metric's OTLP unit as sent (`s`, `ms`, `token`).
    fn observe(
        &self,
        resource: &Attributes,
        metric_name: &str,
        unit: &str,
        attrs: &Attributes,
        delta: &HistogramDelta<'_>,
        out: &mut Vec<PointUpdate>,
    );
}

/// Formats a bucket upper bound as the `le` label value the Prometheus clients write:
/// `0.01`, `1`, `2.5`, `+Inf`.
pub fn format_le(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".to_string()
    } else if bound == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{bound}")
    }
}

#[cfg(test)]
mod tests {
    use super::format_le;

    #[test]
    fn le_values_are_formatted_as_prometheus_clients_do() {
        assert_eq!(format_le(0.01), "0.01");
        assert_eq!(format_le(1.0), "1");
        assert_eq!(format_le(67108864.0), "67108864");
        assert_eq!(format_le(2.5), "2.5");
        assert_eq!(format_le(f64::INFINITY), "+Inf");
    }
}
