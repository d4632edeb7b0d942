//! OTLP metrics to normalized series updates.
//!
//! The server decodes the request; this module walks an `ExportMetricsServiceRequest`,
//! names every series as Prometheus does ([`crate::naming`]), normalizes temporality
//! per source stream ([`crate::accumulate`]) and hands each update to a [`Sink`] (the
//! store's batch builder). Series labels are `__name__`, the point attributes and the
//! resource labels: `job` (`service.namespace/service.name` or `service.name`),
//! `instance` (`service.instance.id`), and the promoted resource attributes
//! `service.name`, `service.namespace`, `service.instance.id`, `aigw.service`,
//! `deployment.environment` and every `k8s.*`, with sanitized names. Other resource
//! attributes are not labels (they still distinguish source streams).
//!
//! Bad points are rejected, counted and described in the [`IngestOutcome`], never a
//! panic.

use inferscope_model::Labels;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, metric::Data,
    number_data_point,
};

use crate::accumulate::{
    HistIncrement, HistPoint, KeyHasher, StreamKey, StreamState, Temporality, counter_increment,
    histogram_increment, updown_delta,
};
use crate::naming::{MetricKind, prometheus_metric_name, render_any_value, sanitize_label_name};
use crate::types::{HistogramDelta, HistogramObserver, PointUpdate, UpdateKind, format_le};

/// How many error messages an [`IngestOutcome`] keeps.
const MAX_ERRORS: usize = 10;

/// OTLP's `DataPointFlags.NO_RECORDED_VALUE`: the point carries no value.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// What became of an ingest request's data points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestOutcome {
    /// Points stored.
    pub accepted_points: u64,
    /// Points rejected (bad values, bad buckets, out of order, no data).
    pub rejected_points: u64,
    /// The first few messages, for OTLP `partial_success.error_message` (warnings
    /// about accepted points, such as a count that disagrees with the buckets,
    /// included).
    pub errors: Vec<String>,
}

impl IngestOutcome {
    fn reject(&mut self, metric: &str, reason: impl std::fmt::Display) {
        self.rejected_points += 1;
        self.note(format!("metric {metric}: {reason}"));
    }

    fn note(&mut self, message: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(message);
        }
    }
}

/// A point's labels without `__name__`, with the commutative hash the store indexes
/// series by, so the `_bucket`/`_sum`/`_count` series of one point are found without
/// building their label sets.
pub(crate) struct SeriesBase {
    pub(crate) labels: Labels,
    pub(crate) hash: u64,
    /// Whether the attributes hold `__name__`, `le` or `quantile` themselves (then the
    /// store builds the full label set instead).
    pub(crate) reserved: bool,
}

impl SeriesBase {
    pub(crate) fn new(labels: Labels) -> Self {
        let hash = labels_hash(labels.iter());
        let reserved = ["__name__", "le", "quantile"]
            .iter()
            .any(|k| labels.get(k).is_some());
        SeriesBase {
            labels,
            hash,
            reserved,
        }
    }
}

/// Hash of one label pair, well mixed so that sums of them make a set hash.
pub(crate) fn pair_hash(name: &str, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([0xff]).chain(value.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finalizer.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Order-independent hash of a label set (sum of [`pair_hash`]).
pub(crate) fn labels_hash<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    pairs.fold(0u64, |acc, (k, v)| acc.wrapping_add(pair_hash(k, v)))
}

/// Receives the normalized updates and keeps the accumulator state.
pub(crate) trait Sink {
    /// The stream's state, including changes made earlier in this batch.
    fn stream_state(&self, key: &StreamKey) -> Option<&StreamState>;
    /// Records a stream's new state.
    fn set_stream_state(&mut self, key: StreamKey, state: StreamState);
    /// One update of the series `base` + `__name__=name` (+ `extra`); returns the
    /// series id, or `None` when the update was dropped.
    fn emit(
        &mut self,
        base: &SeriesBase,
        name: &str,
        extra: Option<(&str, &str)>,
        ts_ns: i64,
        value: f64,
        kind: UpdateKind,
    ) -> Option<u64>;
    /// Fast path for a known stream: when the stream `key` last fed, with the same
    /// `shape` (series names, bounds), exactly `values.len()` series, adds `values[i]`
    /// to the `i`-th of them and returns true; otherwise does nothing and returns
    /// false (the caller then emits through [`Sink::emit`] and [`Sink::remember`]s).
    fn emit_cached(
        &mut self,
        key: &StreamKey,
        shape: u64,
        ts_ns: i64,
        kind: UpdateKind,
        values: &[f64],
    ) -> bool;
    /// Remembers the series ids a stream fed with `shape`, in emission order.
    fn remember(&mut self, key: StreamKey, shape: u64, ids: Vec<u64>);
    /// The updates the observer derived from one point of stream `key` (drained).
    fn emit_derived(&mut self, key: &StreamKey, updates: &mut Vec<PointUpdate>);
}

/// Mixes `v` into the shape hash `h` (series names and bounds of a stream's points).
fn shape_mix(h: u64, v: u64) -> u64 {
    let x = (h.rotate_left(23) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Shape hash of a series name.
fn shape_of_name(name: &str) -> u64 {
    let mut k = KeyHasher::new();
    k.write(name.as_bytes());
    let (a, b) = k.finish();
    a ^ b.rotate_left(32)
}

/// Resource attributes promoted to labels, besides `k8s.*`.
const PROMOTED: [&str; 5] = [
    "service.name",
    "service.namespace",
    "service.instance.id",
    "aigw.service",
    "deployment.environment",
];

fn render_attrs(attrs: &[KeyValue]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = attrs
        .iter()
        .map(|kv| (kv.key.clone(), render_any_value(kv.value.as_ref())))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The labels a resource contributes to its series.
fn resource_labels(attrs: &[(String, String)]) -> Vec<(String, String)> {
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let mut out: Vec<(String, String)> = attrs
        .iter()
        .filter(|(k, _)| PROMOTED.contains(&k.as_str()) || k.starts_with("k8s."))
        .map(|(k, v)| (sanitize_label_name(k), v.clone()))
        .collect();
    if let Some(name) = get("service.name") {
        let job = match get("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        out.push(("job".to_string(), job));
    }
    if let Some(instance) = get("service.instance.id") {
        out.push(("instance".to_string(), instance.to_string()));
    }
    out
}

fn time_ns(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn temporality(raw: i32) -> Option<Temporality> {
    match raw {
        1 => Some(Temporality::Delta),
        2 => Some(Temporality::Cumulative),
        _ => None,
    }
}

/// Converts one request into `sink`, counting accepted and rejected points.
pub(crate) fn convert<S: Sink>(
    req: &ExportMetricsServiceRequest,
    observer: Option<&dyn HistogramObserver>,
    sink: &mut S,
    outcome: &mut IngestOutcome,
) {
    let mut conv = Converter {
        sink,
        observer,
        outcome,
        le_bounds: Vec::new(),
        le_strings: Vec::new(),
        warnings: Vec::new(),
        derived: Vec::new(),
        order: Vec::new(),
        values: Vec::new(),
    };
    for rm in &req.resource_metrics {
        let resource_attrs = render_attrs(rm.resource.as_ref().map_or(&[][..], |r| &r.attributes));
        let res_labels = resource_labels(&resource_attrs);
        let mut res_key = KeyHasher::new();
        for (k, v) in &resource_attrs {
            res_key.write(k.as_bytes());
            res_key.write(v.as_bytes());
        }
        res_key.write(b"\x00resource-end");
        let resource = Resource {
            attrs: &resource_attrs,
            labels: &res_labels,
            key: res_key,
        };
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                conv.metric(&resource, metric);
            }
        }
    }
}

struct Resource<'a> {
    attrs: &'a [(String, String)],
    labels: &'a [(String, String)],
    key: KeyHasher,
}

struct Converter<'a, S: Sink> {
    sink: &'a mut S,
    observer: Option<&'a dyn HistogramObserver>,
    outcome: &'a mut IngestOutcome,
    /// The `le` strings of the last bounds seen (bounds rarely change between points).
    le_bounds: Vec<f64>,
    le_strings: Vec<String>,
    warnings: Vec<String>,
    derived: Vec<PointUpdate>,
    /// Scratch: attribute indices sorted by key.
    order: Vec<usize>,
    /// Scratch: the values of one histogram point's series.
    values: Vec<f64>,
}

/// A point's attributes, labels and stream key.
struct PointId {
    base: SeriesBase,
    key: StreamKey,
}

impl<S: Sink> Converter<'_, S> {
    fn point_id(&self, res: &Resource<'_>, metric_key: KeyHasher, attrs: &[KeyValue]) -> PointId {
        let attrs = render_attrs(attrs);
        let mut key = metric_key;
        for (k, v) in &attrs {
            key.write(k.as_bytes());
            key.write(v.as_bytes());
        }
        let labels = Labels::from_pairs(
            attrs
                .iter()
                .map(|(k, v)| (sanitize_label_name(k), v.clone()))
                .chain(res.labels.iter().cloned()),
        );
        PointId {
            base: SeriesBase::new(labels),
            key: key.finish(),
        }
    }

    /// The stream key of a point, as [`Self::point_id`] computes it, without
    /// rendering the attributes into owned strings.
    fn point_key(&mut self, metric_key: KeyHasher, attrs: &[KeyValue]) -> StreamKey {
        self.order.clear();
        self.order.extend(0..attrs.len());
        // Stable, as `render_attrs`' sort is.
        self.order.sort_by(|&a, &b| attrs[a].key.cmp(&attrs[b].key));
        let mut key = metric_key;
        for &i in &self.order {
            let kv = &attrs[i];
            key.write(kv.key.as_bytes());
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => key.write(s.as_bytes()),
                _ => key.write(render_any_value(kv.value.as_ref()).as_bytes()),
            }
        }
        key.finish()
    }

    /// A point's series labels from its rendered attributes.
    fn series_base(res: &Resource<'_>, attrs: &[(String, String)]) -> SeriesBase {
        SeriesBase::new(Labels::from_pairs(
            attrs
                .iter()
                .map(|(k, v)| (sanitize_label_name(k), v.clone()))
                .chain(res.labels.iter().cloned()),
        ))
    }

    /// One update of the single series `prom` of a number point's stream.
    #[allow(clippy::too_many_arguments)]
    fn emit_one(
        &mut self,
        res: &Resource<'_>,
        key: StreamKey,
        attrs: &[KeyValue],
        prom: &str,
        ts: i64,
        value: f64,
        kind: UpdateKind,
    ) {
        let shape = shape_mix(shape_of_name(prom), kind as u64);
        if self.sink.emit_cached(&key, shape, ts, kind, &[value]) {
            return;
        }
        let base = Self::series_base(res, &render_attrs(attrs));
        if let Some(id) = self.sink.emit(&base, prom, None, ts, value, kind) {
            self.sink.remember(key, shape, vec![id]);
        }
    }

    fn metric(
        &mut self,
        res: &Resource<'_>,
        metric: &opentelemetry_proto::tonic::metrics::v1::Metric,
    ) {
        let name = metric.name.as_str();
        if name.is_empty() {
            self.outcome.reject("(empty name)", "metric has no name");
            return;
        }
        let mut metric_key = res.key;
        metric_key.write(name.as_bytes());
        match &metric.data {
            None => self.outcome.reject(name, "no data or unknown metric type"),
            Some(Data::Gauge(g)) => {
                let prom = prometheus_metric_name(name, &metric.unit, MetricKind::Gauge);
                for p in &g.data_points {
                    self.gauge_point(res, metric_key, name, &prom, p);
                }
            }
            Some(Data::Sum(s)) => {
                let kind = if s.is_monotonic {
                    MetricKind::Counter
                } else {
                    MetricKind::Gauge
                };
                let prom = prometheus_metric_name(name, &metric.unit, kind);
                let Some(temp) = temporality(s.aggregation_temporality) else {
                    for _ in &s.data_points {
                        self.outcome
                            .reject(name, "sum with unspecified aggregation temporality");
                    }
                    return;
                };
                for p in &s.data_points {
                    if s.is_monotonic {
                        self.counter_point(res, metric_key, name, &prom, temp, p);
                    } else if temp == Temporality::Cumulative {
                        self.gauge_point(res, metric_key, name, &prom, p);
                    } else {
                        self.updown_delta_point(res, metric_key, name, &prom, p);
                    }
                }
            }
            Some(Data::Histogram(h)) => {
                let names = HistNames::new(name, &metric.unit, MetricKind::Histogram);
                let Some(temp) = temporality(h.aggregation_temporality) else {
                    for _ in &h.data_points {
                        self.outcome
                            .reject(name, "histogram with unspecified aggregation temporality");
                    }
                    return;
                };
                for p in &h.data_points {
                    self.histogram_point(res, metric_key, name, &names, temp, p);
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                let names = HistNames::new(name, &metric.unit, MetricKind::Histogram);
                let Some(temp) = temporality(h.aggregation_temporality) else {
                    for _ in &h.data_points {
                        self.outcome
                            .reject(name, "histogram with unspecified aggregation temporality");
                    }
                    return;
                };
                for p in &h.data_points {
                    match exponential_to_explicit(p) {
                        Ok(explicit) => {
                            self.histogram_point(res, metric_key, name, &names, temp, &explicit)
                        }
                        Err(reason) => self.outcome.reject(name, reason),
                    }
                }
            }
            Some(Data::Summary(s)) => {
                let names = HistNames::new(name, &metric.unit, MetricKind::Summary);
                for p in &s.data_points {
                    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    if p.time_unix_nano == 0 {
                        self.outcome.reject(name, "point has no time");
                        continue;
                    }
                    let id = self.point_id(res, metric_key, &p.attributes);
                    let prev = self.sink.stream_state(&id.key);
                    // A summary's count and sum are cumulative: diff them like a
                    // histogram with a single bucket.
                    let point = HistPoint {
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        count: p.count,
                        sum: Some(p.sum),
                        bounds: &[],
                        buckets: &[p.count],
                    };
                    match histogram_increment(
                        prev,
                        Temporality::Cumulative,
                        &point,
                        &mut self.warnings,
                    ) {
                        Err(reason) => self.outcome.reject(name, reason),
                        Ok((inc, state)) => {
                            self.sink.set_stream_state(id.key, state);
                            let ts = time_ns(p.time_unix_nano);
                            self.sink.emit(
                                &id.base,
                                &names.sum,
                                None,
                                ts,
                                inc.sum,
                                UpdateKind::CounterAdd,
                            );
                            self.sink.emit(
                                &id.base,
                                &names.count,
                                None,
                                ts,
                                inc.count as f64,
                                UpdateKind::CounterAdd,
                            );
                            for q in &p.quantile_values {
                                if q.value.is_nan() {
                                    continue;
                                }
                                let quantile = format_le(q.quantile);
                                self.sink.emit(
                                    &id.base,
                                    &names.base,
                                    Some(("quantile", &quantile)),
                                    ts,
                                    q.value,
                                    UpdateKind::GaugeSet,
                                );
                            }
                            self.outcome.accepted_points += 1;
                        }
                    }
                }
            }
        }
        for w in self.warnings.drain(..) {
            self.outcome.note(format!("metric {name}: {w}"));
        }
    }

    fn number_value(p: &NumberDataPoint) -> Option<f64> {
        match p.value? {
            number_data_point::Value::AsDouble(d) => Some(d),
            number_data_point::Value::AsInt(i) => Some(i as f64),
        }
    }

    /// Common checks of a number point: `None` when skipped or rejected.
    fn number_checks(&mut self, name: &str, p: &NumberDataPoint) -> Option<f64> {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return None;
        }
        if p.time_unix_nano == 0 {
            self.outcome.reject(name, "point has no time");
            return None;
        }
        let Some(v) = Self::number_value(p) else {
            self.outcome.reject(name, "point has no value");
            return None;
        };
        Some(v)
    }

    fn gauge_point(
        &mut self,
        res: &Resource<'_>,
        mk: KeyHasher,
        name: &str,
        prom: &str,
        p: &NumberDataPoint,
    ) {
        let Some(v) = self.number_checks(name, p) else {
            return;
        };
        if v.is_nan() {
            self.outcome.reject(name, "NaN gauge value");
            return;
        }
        let key = self.point_key(mk, &p.attributes);
        self.emit_one(
            res,
            key,
            &p.attributes,
            prom,
            time_ns(p.time_unix_nano),
            v,
            UpdateKind::GaugeSet,
        );
        self.outcome.accepted_points += 1;
    }

    /// A monotonic sum's point: an increment of its running total.
    fn counter_point(
        &mut self,
        res: &Resource<'_>,
        mk: KeyHasher,
        name: &str,
        prom: &str,
        temp: Temporality,
        p: &NumberDataPoint,
    ) {
        let (start, time) = (p.start_time_unix_nano, p.time_unix_nano);
        self.stateful_number_point(res, mk, name, prom, p, UpdateKind::CounterAdd, |prev, v| {
            counter_increment(prev, temp, start, time, v)
        });
    }

    /// A delta non-monotonic sum's point: its running value, as a gauge.
    fn updown_delta_point(
        &mut self,
        res: &Resource<'_>,
        mk: KeyHasher,
        name: &str,
        prom: &str,
        p: &NumberDataPoint,
    ) {
        let time = p.time_unix_nano;
        self.stateful_number_point(res, mk, name, prom, p, UpdateKind::GaugeSet, |prev, v| {
            updown_delta(prev, time, v)
        });
    }

    /// A number point whose stored value depends on its stream's previous state:
    /// `step` gives the value to store and the stream's new state, or why the
    /// point is refused.
    #[allow(clippy::too_many_arguments)]
    fn stateful_number_point(
        &mut self,
        res: &Resource<'_>,
        mk: KeyHasher,
        name: &str,
        prom: &str,
        p: &NumberDataPoint,
        kind: UpdateKind,
        step: impl FnOnce(Option<&StreamState>, f64) -> Result<(f64, StreamState), String>,
    ) {
        let Some(v) = self.number_checks(name, p) else {
            return;
        };
        let key = self.point_key(mk, &p.attributes);
        let prev = self.sink.stream_state(&key);
        match step(prev, v) {
            Err(reason) => self.outcome.reject(name, reason),
            Ok((value, state)) => {
                self.sink.set_stream_state(key, state);
                self.emit_one(
                    res,
                    key,
                    &p.attributes,
                    prom,
                    time_ns(p.time_unix_nano),
                    value,
                    kind,
                );
                self.outcome.accepted_points += 1;
            }
        }
    }

    fn histogram_point(
        &mut self,
        res: &Resource<'_>,
        mk: KeyHasher,
        name: &str,
        names: &HistNames,
        temp: Temporality,
        p: &HistogramDataPoint,
    ) {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return;
        }
        if p.time_unix_nano == 0 {
            self.outcome.reject(name, "point has no time");
            return;
        }
        let key = self.point_key(mk, &p.attributes);
        let prev = self.sink.stream_state(&key);
        let point = HistPoint {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            bounds: &p.explicit_bounds,
            buckets: &p.bucket_counts,
        };
        let (inc, state) = match histogram_increment(prev, temp, &point, &mut self.warnings) {
            Ok(r) => r,
            Err(reason) => {
                self.outcome.reject(name, reason);
                return;
            }
        };
        self.sink.set_stream_state(key, state);
        let ts = time_ns(p.time_unix_nano);
        let has_sum = p.sum.is_some();
        // The series values in emission order: buckets per bound (cumulative over
        // `le`), `+Inf`, `_sum` when sent, `_count`.
        self.values.clear();
        let mut cumulative = 0u64;
        let mut shape = shape_mix(names.shape, u64::from(has_sum));
        for (i, b) in p.explicit_bounds.iter().enumerate() {
            cumulative += inc.buckets.get(i).copied().unwrap_or(0);
            self.values.push(cumulative as f64);
            shape = shape_mix(shape, b.to_bits());
        }
        self.values.push(inc.count as f64);
        if has_sum {
            self.values.push(inc.sum);
        }
        self.values.push(inc.count as f64);
        let mut attrs = None;
        if !self
            .sink
            .emit_cached(&key, shape, ts, UpdateKind::CounterAdd, &self.values)
        {
            let rendered = render_attrs(&p.attributes);
            let base = Self::series_base(res, &rendered);
            if let Some(ids) =
                self.emit_histogram(&base, names, &p.explicit_bounds, &inc, has_sum, ts)
            {
                self.sink.remember(key, shape, ids);
            }
            attrs = Some(rendered);
        }
        if let Some(observer) = self.observer {
            let attrs = attrs.unwrap_or_else(|| render_attrs(&p.attributes));
            let delta = HistogramDelta {
                ts_ns: ts,
                count: inc.count,
                sum: inc.sum,
                bounds: &p.explicit_bounds,
                bucket_counts: &inc.buckets,
            };
            observer.observe(
                res.attrs,
                name,
                &names.unit,
                &attrs,
                &delta,
                &mut self.derived,
            );
            self.sink.emit_derived(&key, &mut self.derived);
            self.derived.clear();
        }
        self.outcome.accepted_points += 1;
    }

    /// Emits one histogram point's series through the slow path; returns their ids
    /// in emission order when none was dropped.
    fn emit_histogram(
        &mut self,
        base: &SeriesBase,
        names: &HistNames,
        bounds: &[f64],
        inc: &HistIncrement,
        has_sum: bool,
        ts: i64,
    ) -> Option<Vec<u64>> {
        if self.le_bounds != bounds {
            self.le_bounds = bounds.to_vec();
            self.le_strings = bounds.iter().map(|&b| format_le(b)).collect();
        }
        let mut ids = Vec::with_capacity(bounds.len() + 3);
        let mut complete = true;
        let mut cumulative = 0u64;
        for (i, le) in self.le_strings.iter().enumerate() {
            cumulative += inc.buckets.get(i).copied().unwrap_or(0);
            let id = self.sink.emit(
                base,
                &names.bucket,
                Some(("le", le)),
                ts,
                cumulative as f64,
                UpdateKind::CounterAdd,
            );
            complete &= id.is_some();
            ids.extend(id);
        }
        let id = self.sink.emit(
            base,
            &names.bucket,
            Some(("le", "+Inf")),
            ts,
            inc.count as f64,
            UpdateKind::CounterAdd,
        );
        complete &= id.is_some();
        ids.extend(id);
        if has_sum {
            let id = self
                .sink
                .emit(base, &names.sum, None, ts, inc.sum, UpdateKind::CounterAdd);
            complete &= id.is_some();
            ids.extend(id);
        }
        let id = self.sink.emit(
            base,
            &names.count,
            None,
            ts,
            inc.count as f64,
            UpdateKind::CounterAdd,
        );
        complete &= id.is_some();
        ids.extend(id);
        complete.then_some(ids)
    }
}

/// The Prometheus names of a histogram's or summary's series.
struct HistNames {
    /// The OTLP unit as sent (the observer converts `ms` to seconds).
    unit: String,
    base: String,
    bucket: String,
    sum: String,
    count: String,
    /// Shape hash of the names.
    shape: u64,
}

impl HistNames {
    fn new(name: &str, unit: &str, kind: MetricKind) -> Self {
        let base = prometheus_metric_name(name, unit, kind);
        HistNames {
            shape: shape_of_name(&base),
            unit: unit.to_string(),
            bucket: format!("{base}_bucket"),
            sum: format!("{base}_sum"),
            count: format!("{base}_count"),
            base,
        }
    }
}

/// Converts an exponential histogram point to explicit buckets.
///
/// Positive bucket `i` covers `(base^(offset+i), base^(offset+i+1)]` with
/// `base = 2^(2^-scale)`, so its explicit upper bound is `base^(offset+i+1)`. The
/// zero bucket and all negative buckets are folded into one bucket with upper bound
/// `0` (`le="0"`): negative observations lose their distribution, and observations in
/// a zero bucket wider than 0 (`zero_threshold > 0`) count as `<= 0`. The `+Inf`
/// bucket is empty. Count, sum, times and attributes are kept.
pub(crate) fn exponential_to_explicit(
    p: &ExponentialHistogramDataPoint,
) -> Result<HistogramDataPoint, String> {
    if !(-10..=20).contains(&p.scale) {
        return Err(format!(
            "exponential histogram scale {} out of range",
            p.scale
        ));
    }
    let negative: u64 = p.negative.as_ref().map_or(0, |b| {
        b.bucket_counts
            .iter()
            .fold(0u64, |a, &c| a.saturating_add(c))
    });
    let (offset, positive) = p
        .positive
        .as_ref()
        .map_or((0, &[][..]), |b| (b.offset, b.bucket_counts.as_slice()));
    let exponent_step = (-f64::from(p.scale)).exp2();
    let mut bounds = Vec::with_capacity(positive.len() + 1);
    bounds.push(0.0);
    for i in 0..positive.len() {
        let index = i64::from(offset) + i as i64 + 1;
        let bound = (index as f64 * exponent_step).exp2();
        if !bound.is_finite() || bound <= bounds.last().copied().unwrap_or(0.0) {
            return Err("exponential histogram bucket bounds out of range".to_string());
        }
        bounds.push(bound);
    }
    let mut bucket_counts = Vec::with_capacity(bounds.len() + 1);
    bucket_counts.push(p.zero_count.saturating_add(negative));
    bucket_counts.extend_from_slice(positive);
    bucket_counts.push(0);
    Ok(HistogramDataPoint {
        attributes: p.attributes.clone(),
        start_time_unix_nano: p.start_time_unix_nano,
        time_unix_nano: p.time_unix_nano,
        count: p.count,
        sum: p.sum,
        bucket_counts,
        explicit_bounds: bounds,
        exemplars: Vec::new(),
        flags: p.flags,
        min: p.min,
        max: p.max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

    #[test]
    fn exponential_buckets_become_explicit_bounds() {
        let p = ExponentialHistogramDataPoint {
            scale: 0,
            zero_count: 1,
            count: 6,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![2, 3],
            }),
            negative: Some(Buckets {
                offset: 0,
                bucket_counts: vec![0],
            }),
            time_unix_nano: 5,
            ..Default::default()
        };
        let e = exponential_to_explicit(&p).expect("converts");
        assert_eq!(e.explicit_bounds, vec![0.0, 2.0, 4.0]);
        assert_eq!(e.bucket_counts, vec![1, 2, 3, 0]);
        let p1 = ExponentialHistogramDataPoint {
            scale: 1,
            positive: Some(Buckets {
                offset: -1,
                bucket_counts: vec![1, 1],
            }),
            ..Default::default()
        };
        let e = exponential_to_explicit(&p1).expect("converts");
        assert_eq!(e.explicit_bounds[1], 1.0);
        assert!((e.explicit_bounds[2] - std::f64::consts::SQRT_2).abs() < 1e-12);
    }

    #[test]
    fn resource_labels_promote_the_listed_attributes() {
        let attrs = vec![
            ("aigw.service".to_string(), "gw".to_string()),
            ("host.name".to_string(), "h".to_string()),
            ("k8s.pod.name".to_string(), "p".to_string()),
            ("service.instance.id".to_string(), "i-1".to_string()),
            ("service.name".to_string(), "api".to_string()),
            ("service.namespace".to_string(), "prod".to_string()),
            ("telemetry.sdk.name".to_string(), "otel".to_string()),
        ];
        let labels = Labels::from_pairs(resource_labels(&attrs));
        assert_eq!(labels.get("job"), Some("prod/api"));
        assert_eq!(labels.get("instance"), Some("i-1"));
        assert_eq!(labels.get("aigw_service"), Some("gw"));
        assert_eq!(labels.get("k8s_pod_name"), Some("p"));
        assert_eq!(labels.get("service_name"), Some("api"));
        assert_eq!(labels.get("host_name"), None);
        assert_eq!(labels.get("telemetry_sdk_name"), None);
    }
}
