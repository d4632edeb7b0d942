//! OTLP figures that the GenAI issues set targets for, printed (not timed tests):
//!
//! * **access logs**: records/s through protobuf decode, record mapping,
//!   pricing, sampling, counting and storage (WAL fsync included) of what is
//!   kept, on one thread — so the figure is per core (target ≥ 50,000/s);
//! * **histogram_quantile** over 24 h of GenAI series for 50 models (the
//!   `genai_request_duration_seconds_bucket` histogram of two pods, one
//!   sample per minute): a 24 h range query at 5 m steps and an instant query
//!   over `[24h]` (target < 100 ms).
//!
//! `cargo bench -p inferscope-server --bench otlp`

use std::sync::Arc;
use std::time::Instant;

use inferscope_metrics::{PointUpdate, UpdateKind, format_le};
use inferscope_model::Labels;
use inferscope_query::engine::EvalParams;
use inferscope_query::promql;
use inferscope_server::config::Config;
use inferscope_server::otlp::decode::OtlpFormat;
use inferscope_server::otlp::export::export_logs;
use inferscope_server::query::prom_source::execute_promql;
use inferscope_server::state::AppState;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// The allocator of the `inferscope` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS_PER_REQUEST: usize = 1_000;
const REQUESTS: usize = 100;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One request of gateway access logs: 1 in 20 fails, 1 in 25 is expensive,
/// 1 in 50 is slow; the rest are ordinary (dropped by the default policy).
fn access_log_request(batch: usize, now_ns: i64) -> Vec<u8> {
    let models = [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-sonnet-4-5",
        "gemini-2.5-flash",
    ];
    let records = (0..RECORDS_PER_REQUEST)
        .map(|i| {
            let n = batch * RECORDS_PER_REQUEST + i;
            let input = if n.is_multiple_of(25) {
                15_000
            } else {
                300 + n % 2_000
            };
            LogRecord {
                time_unix_nano: (now_ns + n as i64 * 1_000) as u64,
                attributes: vec![
                    kv("x-request-id", &format!("req-{n}")),
                    kv("request.path", "/v1/chat/completions"),
                    kv("gen_ai.request.model", models[n % models.len()]),
                    kv("gen_ai.response.model", models[n % models.len()]),
                    kv("gen_ai.provider.name", "openai"),
                    kv("gen_ai.usage.input_tokens", &input.to_string()),
                    kv("gen_ai.usage.output_tokens", &(50 + n % 700).to_string()),
                    kv(
                        "response_code",
                        if n.is_multiple_of(20) { "503" } else { "200" },
                    ),
                    kv(
                        "duration",
                        if n.is_multiple_of(50) {
                            "45000"
                        } else {
                            "1835"
                        },
                    ),
                    kv("upstream_transport_failure_reason", "-"),
                    kv("connection_termination_details", "-"),
                    kv("session.id", &format!("sess-{}", n % 5_000)),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "envoy-ai-gateway"),
                    kv("aigw.service", "my-ai-gateway"),
                    kv("service.instance.id", "aigw-pod-1"),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn state(dir: &std::path::Path, runtime: &tokio::runtime::Runtime) -> Arc<AppState> {
    let mut config = Config::default();
    config.common.path_prefix = dir.to_path_buf();
    config.limits_config.ingestion_rate_mb = 1e6;
    config.limits_config.ingestion_burst_size_mb = 1e6;
    runtime
        .block_on(inferscope_server::open_state(config))
        .expect("server state")
}

fn access_logs(runtime: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path(), runtime);
    let now = inferscope_server::http::params::now_ns();
    let bodies: Vec<Vec<u8>> = (0..REQUESTS).map(|b| access_log_request(b, now)).collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut kept = 0;
    for body in &bodies {
        let request: ExportLogsServiceRequest = OtlpFormat::Protobuf
            .decode(None, body, 64 << 20)
            .expect("decode");
        export_logs(&state, "fake", &request).expect("export");
        kept += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let records = (REQUESTS * RECORDS_PER_REQUEST) as f64;
    println!(
        "access logs: {records} records ({:.1} MB protobuf, {kept} requests) in {secs:.2} s: \
         {:.0} records/s on one thread ({:.1} MB/s)",
        bytes as f64 / 1e6,
        records / secs,
        bytes as f64 / 1e6 / secs
    );
}

fn histogram_quantile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = inferscope_metrics::MetricStore::open(dir.path(), Default::default())
        .expect("metric store");
    const BOUNDS: [f64; 14] = [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];
    let minute = 60_000_000_000i64;
    let end = 1_800_000_000_000_000_000i64;
    let start = end - 24 * 60 * minute;
    let mut series = 0;
    let mut totals = std::collections::HashMap::new();
    let loading = Instant::now();
    for step in 0..=24 * 60 {
        let ts = start + step * minute;
        let mut updates = Vec::new();
        for model in 0..50 {
            for pod in ["pod-a", "pod-b"] {
                let base = |le: &str| {
                    Labels::from_pairs([
                        ("__name__", "genai_request_duration_seconds_bucket"),
                        ("service", "gw"),
                        ("instance", pod),
                        ("provider", "openai"),
                        ("model", &format!("model-{model:02}")),
                        ("operation", "chat"),
                        ("le", le),
                    ])
                };
                for (i, b) in BOUNDS.iter().chain([f64::INFINITY].iter()).enumerate() {
                    // A steady request mix: more requests in the higher buckets.
                    let add = ((i + model % 5) as f64).min(15.0);
                    let labels = base(&format_le(*b));
                    *totals.entry(labels.clone()).or_insert(0.0) += add;
                    updates.push(PointUpdate {
                        labels,
                        ts_ns: ts,
                        value: add,
                        kind: UpdateKind::CounterAdd,
                    });
                }
            }
        }
        series = updates.len();
        store.apply("fake", updates).expect("apply");
    }
    println!(
        "histogram_quantile data: {series} series × 1,441 samples loaded in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    for (name, query, range_start, step) in [
        (
            "range 24h, step 5m",
            "histogram_quantile(0.99, sum by (model, le) (rate(genai_request_duration_seconds_bucket[5m])))",
            start,
            5 * minute,
        ),
        (
            "instant over [24h]",
            "histogram_quantile(0.99, sum by (model, le) (increase(genai_request_duration_seconds_bucket[24h])))",
            end,
            1,
        ),
    ] {
        let expr = promql::parse(query).expect("parse");
        let params = EvalParams {
            start_ns: range_start,
            end_ns: end,
            step_ns: step,
            max_series: 100_000,
        };
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let value = execute_promql(&store, "fake", &expr, &params).expect("query");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(value);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "histogram_quantile, 50 models, {name}: best {:.1} ms, median {:.1} ms",
            times[0], times[2]
        );
    }
}

fn main() {
    inferscope_server::allocator::tune();
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    access_logs(&runtime);
    histogram_quantile();
}
