//! The types shared by the OTLP conversion, the GenAI derivation and the store:
//! a normalized update to one series, and a histogram point in delta form.

use std::borrow::Cow;
use std::sync::Arc;

use inferscope_model::Labels;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};

use crate::naming::render_any_value;

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

/// One histogram data point after temporality normalization, as an observer sees it.
#[derive(Debug, Clone)]
pub struct ObservedPoint<'a> {
    /// The resource's attributes, rendered once per resource, sorted by key.
    pub resource: &'a Attributes,
    /// The OTLP metric name as sent (`gen_ai.server.request.duration`).
    pub metric_name: &'a str,
    /// The metric's OTLP unit as sent (`s`, `ms`, `token`).
    pub unit: &'a str,
    /// The point's attributes as sent; [`attribute`] reads one without copying.
    pub attributes: &'a [KeyValue],
    /// The point's increment.
    pub delta: HistogramDelta<'a>,
}

/// The value of attribute `key` (the first one, if repeated), rendered as a string
/// (borrowed when it is a string); `None` when absent or empty.
pub fn attribute<'a>(attrs: &'a [KeyValue], key: &str) -> Option<Cow<'a, str>> {
    let kv = attrs.iter().find(|kv| kv.key == key)?;
    let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
        _ => Cow::Owned(render_any_value(kv.value.as_ref())),
    };
    (!value.is_empty()).then_some(value)
}

/// What an observer derived from one point: one counter increment per series, all at
/// the point's time.
///
/// `series` is shared: an observer hands out the same `Arc` every time a point maps
/// to the same label sets, so the store recognizes it by pointer and reuses the
/// series ids it found the last time, without comparing labels. A different `Arc`
/// with equal contents is still correct, only slower.
#[derive(Debug, Clone, Default)]
pub struct DerivedUpdates {
    /// The derived series' label sets (`__name__` included); `None` when the point
    /// derives nothing.
    pub series: Option<Arc<[Labels]>>,
    /// The increment of each series of `series`, by position; NaN leaves that
    /// series alone for this point.
    pub values: Vec<f64>,
}

impl DerivedUpdates {
    /// Empties the updates for the next point (keeping the allocation).
    pub fn clear(&mut self) {
        self.series = None;
        self.values.clear();
    }

    /// The updates as [`PointUpdate`]s at `ts_ns`, NaN values left out.
    pub fn to_updates(&self, ts_ns: i64) -> Vec<PointUpdate> {
        let Some(series) = &self.series else {
            return Vec::new();
        };
        series
            .iter()
            .zip(&self.values)
            .filter(|(_, v)| !v.is_nan())
            .map(|(labels, &value)| PointUpdate {
                labels: labels.clone(),
                ts_ns,
                value,
                kind: UpdateKind::CounterAdd,
            })
            .collect()
    }
}

/// Receives every histogram data point after temporality normalization and may
/// derive counter increments of other series from it (the GenAI series).
pub trait HistogramObserver: Send + Sync {
    /// Called once per normalized histogram data point with `out` cleared; leaves
    /// `out.series` `None` when the point derives nothing.
    fn observe(&self, point: &ObservedPoint<'_>, out: &mut DerivedUpdates);
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
