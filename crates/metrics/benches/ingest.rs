//! Quick ingest throughput check (no criterion): 100 batches of 1,000 delta
//! histogram points (10 bounds, 1,000 distinct streams, so 14,000 series), one
//! fsynced WAL record per batch. Prints points/s.
//!
//! `cargo bench -p inferscope-metrics --bench ingest`

use std::time::Instant;

use inferscope_metrics::{MetricStore, StoreOptions};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric::Data,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

fn batch(b: u64) -> ExportMetricsServiceRequest {
    let bounds = vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
    let points = (0..1000u64)
        .map(|i| HistogramDataPoint {
            attributes: vec![
                kv("gen_ai.request.model", &format!("model-{}", i % 20)),
                kv("gen_ai.operation.name", "chat"),
                kv("route", &format!("r{}", i / 20)),
            ],
            start_time_unix_nano: 0,
            time_unix_nano: 1_700_000_000_000_000_000 + (b + 1) * 15_000_000_000,
            count: 11,
            sum: Some(3.5),
            bucket_counts: vec![1; 11],
            explicit_bounds: bounds.clone(),
            ..Default::default()
        })
        .collect();
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
                metrics: vec![Metric {
                    name: "gen_ai.server.request.duration".into(),
                    unit: "s".into(),
                    data: Some(Data::Histogram(Histogram {
                        data_points: points,
                        aggregation_temporality: 1,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MetricStore::open(dir.path(), StoreOptions::default()).expect("open");
    let batches: Vec<_> = (0..100).map(batch).collect();
    let start = Instant::now();
    let mut accepted = 0;
    for req in &batches {
        accepted += store
            .ingest("bench", req, None)
            .expect("ingest")
            .accepted_points;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = store.stats();
    println!(
        "ingested {accepted} histogram points in {elapsed:.3}s: {:.0} points/s ({} series, {} samples, {} wal bytes)",
        accepted as f64 / elapsed,
        stats.series,
        stats.samples,
        stats.wal_bytes
    );
    let t = Instant::now();
    store.maintain(i64::MAX).expect("checkpoint");
    println!("checkpoint: {:.3}s", t.elapsed().as_secs_f64());
}
