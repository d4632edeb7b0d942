//! Quick ingest and select throughput check (no criterion).
//!
//! * plain: 100 batches of 1,000 delta histogram points (10 bounds, 1,000 distinct
//!   streams, so 13,000 series), one fsynced WAL record per batch, no observer.
//! * genai: the same shape through the GenAI observer: half of each batch is
//!   `gen_ai.server.request.duration` with GenAI attributes (so the observer derives
//!   `genai_*` series), half an ordinary histogram.
//! * select: 24 h of GenAI-like series for 50 models (15 buckets + sum + count, one
//!   sample per 60 s), then `select` of `genai_request_duration_seconds_bucket` over
//!   the 24 h.
//!
//! Prints points/s and select ms.
//!
//! `cargo bench -p inferscope-metrics --bench ingest`

/// The allocator of the `inferscope` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use inferscope_metrics::{
    GenAiDeriver, HistogramObserver, MetricStore, PointUpdate, PricingHandle, PricingTable,
    StoreOptions, UpdateKind, format_le,
};
use inferscope_model::{LabelMatcher, Labels, MatchOp};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric::Data,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

const BASE_NS: u64 = 1_700_000_000_000_000_000;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

fn point(b: u64, attributes: Vec<KeyValue>) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: 0,
        time_unix_nano: BASE_NS + (b + 1) * 15_000_000_000,
        count: 11,
        sum: Some(3.5),
        bucket_counts: vec![1; 11],
        explicit_bounds: vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        ..Default::default()
    }
}

fn histogram(name: &str, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "s".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: 1,
        })),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "aigw"),
                    kv("service.instance.id", "pod-1"),
                    kv("k8s.namespace.name", "prod"),
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

/// 1,000 points of one histogram (no GenAI derivation asked for).
fn plain_batch(b: u64) -> ExportMetricsServiceRequest {
    let points = (0..1000u64)
        .map(|i| {
            point(
                b,
                vec![
                    kv("gen_ai.request.model", &format!("model-{}", i % 20)),
                    kv("gen_ai.operation.name", "chat"),
                    kv("route", &format!("r{}", i / 20)),
                ],
            )
        })
        .collect();
    request(vec![histogram("gen_ai.server.request.duration", points)])
}

/// 500 GenAI request-duration points (derived into `genai_*`) and 500 points of an
/// ordinary histogram.
fn genai_batch(b: u64) -> ExportMetricsServiceRequest {
    let genai = (0..500u64)
        .map(|i| {
            point(
                b,
                vec![
                    kv("gen_ai.operation.name", "chat"),
                    kv("gen_ai.provider.name", "openai"),
                    kv("gen_ai.request.model", &format!("model-{}", i % 20)),
                    kv("gen_ai.response.model", &format!("model-{}", i % 20)),
                    kv("route", &format!("r{}", i / 20)),
                ],
            )
        })
        .collect();
    let http = (0..500u64)
        .map(|i| {
            point(
                b,
                vec![
                    kv("http.request.method", "POST"),
                    kv("http.route", &format!("/v1/r{}", i / 5)),
                    kv("http.response.status_code", &format!("{}", 200 + i % 5)),
                ],
            )
        })
        .collect();
    request(vec![
        histogram("gen_ai.server.request.duration", genai),
        histogram("http.server.request.duration", http),
    ])
}

fn run_ingest(
    label: &str,
    batches: &[ExportMetricsServiceRequest],
    observer: Option<&dyn HistogramObserver>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MetricStore::open(dir.path(), StoreOptions::default()).expect("open");
    let start = Instant::now();
    let mut accepted = 0;
    for req in batches {
        accepted += store
            .ingest("bench", req, observer)
            .expect("ingest")
            .accepted_points;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = store.stats();
    println!(
        "{label}: ingested {accepted} histogram points in {elapsed:.3}s: {:.0} points/s ({} series, {} samples, {} wal bytes)",
        accepted as f64 / elapsed,
        stats.series,
        stats.samples,
        stats.wal_bytes
    );
    let t = Instant::now();
    store.maintain(i64::MAX).expect("checkpoint");
    println!("{label}: checkpoint {:.3}s", t.elapsed().as_secs_f64());
}

/// 24 h of one sample per minute for 50 models' request-duration histograms, then
/// `select` of the bucket series over the whole day.
fn run_select() {
    const MODELS: usize = 50;
    const MINUTES: i64 = 1440;
    const STEP_NS: i64 = 60_000_000_000;
    let bounds = [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MetricStore::open(dir.path(), StoreOptions::default()).expect("open");
    let model_labels = |m: usize, name: &str, le: Option<&str>| {
        let model = format!("model-{m}");
        let mut pairs = vec![
            ("__name__", name),
            ("service", "aigw"),
            ("instance", "pod-1"),
            ("provider", "openai"),
            ("model", model.as_str()),
            ("operation", "chat"),
        ];
        if let Some(le) = le {
            pairs.push(("le", le));
        }
        Labels::from_pairs(pairs)
    };
    let mut les: Vec<String> = bounds.iter().map(|&b| format_le(b)).collect();
    les.push("+Inf".to_string());
    let start_ns = BASE_NS as i64;
    let t = Instant::now();
    // One apply per simulated hour.
    for hour in 0..MINUTES / 60 {
        let mut updates = Vec::new();
        for minute in hour * 60..(hour + 1) * 60 {
            let ts_ns = start_ns + minute * STEP_NS;
            let add = |labels: Labels, value: f64| PointUpdate {
                labels,
                ts_ns,
                value,
                kind: UpdateKind::CounterAdd,
            };
            for m in 0..MODELS {
                for (i, le) in les.iter().enumerate() {
                    updates.push(add(
                        model_labels(m, "genai_request_duration_seconds_bucket", Some(le)),
                        (i + 1) as f64,
                    ));
                }
                updates.push(add(
                    model_labels(m, "genai_request_duration_seconds_sum", None),
                    12.5,
                ));
                updates.push(add(
                    model_labels(m, "genai_request_duration_seconds_count", None),
                    15.0,
                ));
            }
        }
        store.apply("q", updates).expect("apply");
    }
    let stats = store.stats();
    println!(
        "select: loaded {} series, {} samples in {:.3}s",
        stats.series,
        stats.samples,
        t.elapsed().as_secs_f64()
    );
    let matchers = [LabelMatcher::new(
        "__name__",
        MatchOp::Eq,
        "genai_request_duration_seconds_bucket",
    )
    .expect("matcher")];
    let end_ns = start_ns + MINUTES * STEP_NS;
    let mut times = Vec::new();
    let mut got = (0, 0);
    for _ in 0..20 {
        let t = Instant::now();
        let out = store.select("q", &matchers, start_ns, end_ns);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        got = (
            out.len(),
            out.iter().map(|s| s.samples.len()).sum::<usize>(),
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "select: genai_request_duration_seconds_bucket over 24 h: {} series, {} samples: median {:.2} ms, min {:.2} ms",
        got.0,
        got.1,
        times[times.len() / 2],
        times[0]
    );
}

fn main() {
    let plain: Vec<_> = (0..100).map(plain_batch).collect();
    run_ingest("plain", &plain, None);
    let deriver = GenAiDeriver::new(PricingHandle::new(
        PricingTable::default_table().expect("default pricing table"),
    ));
    let genai: Vec<_> = (0..100).map(genai_batch).collect();
    run_ingest("genai", &genai, Some(&deriver));
    run_select();
}
