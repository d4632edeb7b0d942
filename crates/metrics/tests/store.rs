//! End-to-end tests of the metric store: OTLP in, Prometheus series out, durability,
//! rejection of bad points, retention, tenants.

use std::sync::Arc;

use inferscope_metrics::{
    DerivedUpdates, HistogramObserver, MetricStore, ObservedPoint, PointUpdate, StoreOptions,
    UpdateKind, attribute,
};
use inferscope_model::{LabelMatcher, Labels, MatchOp};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;
const SEC: u64 = 1_000_000_000;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "gw"),
                    kv("service.instance.id", "pod-1"),
                    kv("k8s.namespace.name", "prod"),
                    kv("host.name", "h1"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn hist_metric(temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: "gen_ai.server.request.duration".into(),
        unit: "s".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality,
        })),
        ..Default::default()
    }
}

fn hist_point(start: u64, time: u64, sum: f64, buckets: Vec<u64>) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: vec![kv("gen_ai.request.model", "m1")],
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: buckets.iter().sum(),
        sum: Some(sum),
        bucket_counts: buckets,
        explicit_bounds: vec![0.5, 1.0],
        ..Default::default()
    }
}

fn sum_metric(name: &str, temporality: i32, points: Vec<(u64, u64, f64)>) -> Metric {
    Metric {
        name: name.into(),
        unit: "{request}".into(),
        data: Some(Data::Sum(Sum {
            data_points: points
                .into_iter()
                .map(|(start, time, v)| NumberDataPoint {
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: temporality,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn name_eq(name: &str) -> Vec<LabelMatcher> {
    vec![LabelMatcher::new("__name__", MatchOp::Eq, name).expect("matcher")]
}

/// The values of one series (selected by name and extra matchers) over all time.
fn values(
    store: &MetricStore,
    tenant: &str,
    name: &str,
    extra: &[(&str, &str)],
) -> Vec<(i64, f64)> {
    let mut m = name_eq(name);
    for (k, v) in extra {
        m.push(LabelMatcher::new(*k, MatchOp::Eq, *v).expect("matcher"));
    }
    let got = store.select(tenant, &m, i64::MIN, i64::MAX);
    assert!(got.len() <= 1, "{got:?}");
    got.into_iter()
        .next()
        .map(|s| s.samples)
        .unwrap_or_default()
}

fn ts(sec: u64) -> i64 {
    (sec * SEC) as i64
}

fn open(dir: &std::path::Path) -> MetricStore {
    MetricStore::open(dir, StoreOptions::default()).expect("open")
}

#[test]
fn delta_histogram_becomes_cumulative_prometheus_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    for (i, buckets) in [vec![1, 1, 0], vec![0, 2, 1]].into_iter().enumerate() {
        let t = 10 + i as u64 * 10;
        let out = store
            .ingest(
                "t",
                &request(vec![hist_metric(
                    DELTA,
                    vec![hist_point(0, t * SEC, 2.0, buckets)],
                )]),
                None,
            )
            .expect("ingest");
        assert_eq!(
            (out.accepted_points, out.rejected_points),
            (1, 0),
            "{:?}",
            out.errors
        );
    }
    let base = "gen_ai_server_request_duration_seconds";
    assert_eq!(
        values(&store, "t", &format!("{base}_bucket"), &[("le", "0.5")]),
        vec![(ts(10), 1.0), (ts(20), 1.0)]
    );
    assert_eq!(
        values(&store, "t", &format!("{base}_bucket"), &[("le", "1")]),
        vec![(ts(10), 2.0), (ts(20), 4.0)]
    );
    assert_eq!(
        values(&store, "t", &format!("{base}_bucket"), &[("le", "+Inf")]),
        vec![(ts(10), 2.0), (ts(20), 5.0)]
    );
    assert_eq!(
        values(&store, "t", &format!("{base}_sum"), &[]),
        vec![(ts(10), 2.0), (ts(20), 4.0)]
    );
    assert_eq!(
        values(&store, "t", &format!("{base}_count"), &[]),
        vec![(ts(10), 2.0), (ts(20), 5.0)]
    );
    let series = store.series("t", &name_eq(&format!("{base}_count")), i64::MIN, i64::MAX);
    let want = Labels::from_pairs([
        ("__name__", format!("{base}_count").as_str()),
        ("gen_ai_request_model", "m1"),
        ("instance", "pod-1"),
        ("job", "gw"),
        ("k8s_namespace_name", "prod"),
        ("service_instance_id", "pod-1"),
        ("service_name", "gw"),
    ]);
    assert_eq!(series, vec![want]);
}

#[test]
fn cumulative_histogram_with_reset_never_decreases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let points = [
        hist_point(1, 10 * SEC, 1.0, vec![1, 0, 0]),
        hist_point(1, 20 * SEC, 3.0, vec![2, 1, 0]),
        // Reset (new start): whole value is the increment.
        hist_point(25 * SEC, 30 * SEC, 0.5, vec![1, 0, 0]),
    ];
    for p in points {
        let out = store
            .ingest("t", &request(vec![hist_metric(CUMULATIVE, vec![p])]), None)
            .expect("ingest");
        assert_eq!(out.accepted_points, 1, "{:?}", out.errors);
    }
    let base = "gen_ai_server_request_duration_seconds";
    assert_eq!(
        values(&store, "t", &format!("{base}_count"), &[]),
        vec![(ts(10), 1.0), (ts(20), 3.0), (ts(30), 4.0)]
    );
    assert_eq!(
        values(&store, "t", &format!("{base}_bucket"), &[("le", "0.5")]),
        vec![(ts(10), 1.0), (ts(20), 2.0), (ts(30), 3.0)]
    );
    assert_eq!(
        values(&store, "t", &format!("{base}_sum"), &[]),
        vec![(ts(10), 1.0), (ts(20), 3.0), (ts(30), 3.5)]
    );
}

#[test]
fn bad_points_are_rejected_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut bad_buckets = hist_point(0, 10 * SEC, 1.0, vec![1, 1]);
    bad_buckets.count = 2;
    let req = request(vec![
        sum_metric(
            "reqs",
            DELTA,
            vec![
                (0, 10 * SEC, 1.0),
                (0, 20 * SEC, f64::NAN),
                (0, 5 * SEC, 1.0),
                (0, 30 * SEC, 2.0),
            ],
        ),
        hist_metric(
            DELTA,
            vec![
                bad_buckets,
                hist_point(0, 10 * SEC, f64::NAN, vec![1, 0, 0]),
            ],
        ),
        Metric {
            name: "empty.metric".into(),
            ..Default::default()
        },
        Metric {
            name: "temp".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![
                    NumberDataPoint {
                        time_unix_nano: 10 * SEC,
                        value: Some(number_data_point::Value::AsDouble(f64::NAN)),
                        ..Default::default()
                    },
                    NumberDataPoint {
                        time_unix_nano: 10 * SEC,
                        value: Some(number_data_point::Value::AsDouble(f64::INFINITY)),
                        ..Default::default()
                    },
                ],
            })),
            ..Default::default()
        },
    ]);
    let out = store.ingest("t", &req, None).expect("ingest");
    // reqs: NaN + out of order; histogram: bad buckets + NaN sum; empty metric; NaN gauge.
    assert_eq!(out.rejected_points, 6, "{:?}", out.errors);
    assert_eq!(out.accepted_points, 3);
    assert!(
        out.errors.iter().any(|e| e.contains("empty.metric")),
        "{:?}",
        out.errors
    );
    assert!(
        out.errors.iter().any(|e| e.contains("out of order")),
        "{:?}",
        out.errors
    );
    assert!(
        out.errors.iter().any(|e| e.contains("bucket counts")),
        "{:?}",
        out.errors
    );
    assert_eq!(
        values(&store, "t", "reqs_total", &[]),
        vec![(ts(10), 1.0), (ts(30), 3.0)]
    );
    assert_eq!(
        values(&store, "t", "temp", &[]),
        vec![(ts(10), f64::INFINITY)]
    );
    // A duplicate delta in a later request is rejected too.
    let out = store
        .ingest(
            "t",
            &request(vec![sum_metric("reqs", DELTA, vec![(0, 30 * SEC, 2.0)])]),
            None,
        )
        .expect("ingest");
    assert_eq!((out.accepted_points, out.rejected_points), (0, 1));
}

#[test]
fn restart_keeps_samples_and_does_not_double_count_cumulative_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        store
            .ingest(
                "t",
                &request(vec![sum_metric(
                    "reqs",
                    CUMULATIVE,
                    vec![(1, 10 * SEC, 5.0)],
                )]),
                None,
            )
            .expect("ingest");
        store
            .ingest(
                "t",
                &request(vec![sum_metric(
                    "reqs",
                    CUMULATIVE,
                    vec![(1, 20 * SEC, 7.0)],
                )]),
                None,
            )
            .expect("ingest");
    }
    {
        // Reopen from the WAL only, resume the stream, checkpoint.
        let store = open(dir.path());
        assert_eq!(
            values(&store, "t", "reqs_total", &[]),
            vec![(ts(10), 5.0), (ts(20), 7.0)]
        );
        store
            .ingest(
                "t",
                &request(vec![sum_metric(
                    "reqs",
                    CUMULATIVE,
                    vec![(1, 30 * SEC, 10.0)],
                )]),
                None,
            )
            .expect("ingest");
        store.maintain(ts(40)).expect("maintain");
        assert_eq!(store.stats().wal_bytes, 0);
        store
            .ingest(
                "t",
                &request(vec![sum_metric(
                    "reqs",
                    CUMULATIVE,
                    vec![(1, 40 * SEC, 11.0)],
                )]),
                None,
            )
            .expect("ingest");
    }
    // Reopen from snapshot + WAL.
    let store = open(dir.path());
    assert_eq!(
        values(&store, "t", "reqs_total", &[]),
        vec![(ts(10), 5.0), (ts(20), 7.0), (ts(30), 10.0), (ts(40), 11.0)]
    );
    store
        .ingest(
            "t",
            &request(vec![sum_metric(
                "reqs",
                CUMULATIVE,
                vec![(1, 50 * SEC, 12.0)],
            )]),
            None,
        )
        .expect("ingest");
    assert_eq!(
        values(&store, "t", "reqs_total", &[]).last(),
        Some(&(ts(50), 12.0))
    );
}

#[test]
fn torn_wal_tail_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for t in [10, 20] {
            store
                .ingest(
                    "t",
                    &request(vec![sum_metric("reqs", DELTA, vec![(0, t * SEC, 1.0)])]),
                    None,
                )
                .expect("ingest");
        }
    }
    let wal = dir.path().join("wal.log");
    let data = std::fs::read(&wal).expect("read wal");
    std::fs::write(&wal, &data[..data.len() - 5]).expect("tear");
    let store = open(dir.path());
    assert_eq!(values(&store, "t", "reqs_total", &[]), vec![(ts(10), 1.0)]);
    // The stream continues after the torn record: time 20 is accepted again.
    let out = store
        .ingest(
            "t",
            &request(vec![sum_metric("reqs", DELTA, vec![(0, 20 * SEC, 1.0)])]),
            None,
        )
        .expect("ingest");
    assert_eq!(out.accepted_points, 1);
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        values(&store, "t", "reqs_total", &[]),
        vec![(ts(10), 1.0), (ts(20), 2.0)]
    );
}

#[test]
fn corrupt_snapshot_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        store
            .ingest(
                "t",
                &request(vec![sum_metric("reqs", DELTA, vec![(0, 10 * SEC, 1.0)])]),
                None,
            )
            .expect("ingest");
        store.maintain(ts(20)).expect("maintain");
    }
    let snap = dir.path().join("snapshot.zst");
    let mut data = std::fs::read(&snap).expect("read");
    data.truncate(data.len() - 4);
    std::fs::write(&snap, &data).expect("write");
    assert!(MetricStore::open(dir.path(), StoreOptions::default()).is_err());
}

#[test]
fn retention_drops_old_samples_and_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MetricStore::open(
        dir.path(),
        StoreOptions {
            retention_ns: ts(100),
        },
    )
    .expect("open");
    store
        .ingest(
            "t",
            &request(vec![sum_metric("old", DELTA, vec![(0, 10 * SEC, 1.0)])]),
            None,
        )
        .expect("ingest");
    store
        .ingest(
            "t",
            &request(vec![sum_metric(
                "reqs",
                DELTA,
                vec![(0, 10 * SEC, 1.0), (0, 150 * SEC, 1.0)],
            )]),
            None,
        )
        .expect("ingest");
    store.maintain(ts(200)).expect("maintain");
    assert_eq!(values(&store, "t", "reqs_total", &[]), vec![(ts(150), 2.0)]);
    assert!(values(&store, "t", "old_total", &[]).is_empty());
    assert_eq!(store.stats().series, 1);
    drop(store);
    let store = MetricStore::open(
        dir.path(),
        StoreOptions {
            retention_ns: ts(100),
        },
    )
    .expect("open");
    assert_eq!(values(&store, "t", "reqs_total", &[]), vec![(ts(150), 2.0)]);
}

#[test]
fn tenants_are_isolated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .ingest(
            "a",
            &request(vec![sum_metric("reqs", DELTA, vec![(0, 10 * SEC, 1.0)])]),
            None,
        )
        .expect("ingest");
    store
        .ingest(
            "b",
            &request(vec![sum_metric("reqs", DELTA, vec![(0, 10 * SEC, 5.0)])]),
            None,
        )
        .expect("ingest");
    assert_eq!(values(&store, "a", "reqs_total", &[]), vec![(ts(10), 1.0)]);
    assert_eq!(values(&store, "b", "reqs_total", &[]), vec![(ts(10), 5.0)]);
    assert!(values(&store, "c", "reqs_total", &[]).is_empty());
    assert_eq!(
        store.label_values("a", "job", &[], i64::MIN, i64::MAX),
        vec!["gw".to_string()]
    );
    assert!(
        store
            .label_names("a", &[], i64::MIN, i64::MAX)
            .contains(&"k8s_namespace_name".to_string())
    );
    assert!(
        !store
            .label_names("a", &[], i64::MIN, i64::MAX)
            .contains(&"host_name".to_string())
    );
}

/// Derives a request counter per model, and a series whose value is always NaN (so
/// never written). With `share`, the label sets of a model are one `Arc` (the
/// store's fast path); without, a new one per point (its label lookup).
#[derive(Default)]
struct CountObserver {
    share: bool,
    shared: std::sync::Mutex<std::collections::HashMap<String, Arc<[Labels]>>>,
}

impl HistogramObserver for CountObserver {
    fn observe(&self, point: &ObservedPoint<'_>, out: &mut DerivedUpdates) {
        assert_eq!(point.metric_name, "gen_ai.server.request.duration");
        assert!(
            point
                .resource
                .iter()
                .any(|(k, v)| k == "service.name" && v == "gw")
        );
        let model = attribute(point.attributes, "gen_ai.request.model").unwrap_or_default();
        let make = || -> Arc<[Labels]> {
            Arc::from([
                Labels::from_pairs([("__name__", "genai_requests_total"), ("model", &model)]),
                Labels::from_pairs([("__name__", "never_written"), ("model", &model)]),
            ])
        };
        let series = if self.share {
            let mut shared = self.shared.lock().expect("lock");
            Arc::clone(shared.entry(model.to_string()).or_insert_with(make))
        } else {
            make()
        };
        out.series = Some(series);
        out.values.extend([point.delta.count as f64, f64::NAN]);
    }
}

#[test]
fn observer_sees_normalized_deltas_and_its_updates_are_stored() {
    for share in [false, true] {
        observer_updates_are_stored(share);
    }
}

fn observer_updates_are_stored(share: bool) {
    let observer = CountObserver {
        share,
        ..Default::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    for (t, buckets) in [
        (10, vec![1, 1, 0]),
        (20, vec![2, 2, 1]),
        (25, vec![3, 2, 1]),
    ] {
        store
            .ingest(
                "t",
                &request(vec![hist_metric(
                    CUMULATIVE,
                    vec![hist_point(1, t * SEC, 1.0, buckets)],
                )]),
                Some(&observer),
            )
            .expect("ingest");
    }
    assert_eq!(
        values(&store, "t", "genai_requests_total", &[]),
        vec![(ts(10), 2.0), (ts(20), 5.0), (ts(25), 6.0)],
        "share {share}"
    );
    assert!(values(&store, "t", "never_written", &[]).is_empty());
    store
        .apply(
            "t",
            vec![PointUpdate {
                labels: Labels::from_pairs([("__name__", "genai_requests_total"), ("model", "m1")]),
                ts_ns: ts(30),
                value: 1.0,
                kind: UpdateKind::CounterAdd,
            }],
        )
        .expect("apply");
    assert_eq!(
        values(&store, "t", "genai_requests_total", &[]).last(),
        Some(&(ts(30), 7.0))
    );
}
