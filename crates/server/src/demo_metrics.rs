//! The GenAI half of `serve --demo`: an Envoy AI Gateway's OTLP metrics,
//! pushed to the real `POST /v1/metrics` as protobuf every 15 s (after
//! backfilling the last ten minutes), exactly as the gateway's OTLP exporter
//! sends them: delta histograms `gen_ai.server.request.duration`,
//! `gen_ai.client.token.usage` (input, output, cached_input),
//! `gen_ai.server.time_to_first_token` and `gen_ai.server.time_per_output_token`
//! with the gateway's own bucket boundaries, for two pods and four models (one
//! of them self-hosted, so without a price).

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
    metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::http::params::now_ns;

/// Export interval of the simulated gateway.
const INTERVAL: Duration = Duration::from_secs(15);
/// History backfilled at start.
const BACKFILL: Duration = Duration::from_secs(600);

const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKEN_BOUNDS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
const TTFT_BOUNDS: [f64; 21] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    15.0, 20.0, 30.0, 45.0, 60.0,
];
const TPOT_BOUNDS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

/// (provider, model, requests per interval per pod, mean seconds, mean input tokens).
const MODELS: [(&str, &str, u32, f64, f64); 4] = [
    ("openai", "gpt-4o", 40, 2.0, 1800.0),
    ("anthropic", "claude-sonnet-4-5", 25, 4.0, 6000.0),
    ("gemini", "gemini-2.5-flash", 30, 1.2, 900.0),
    ("vllm", "meta-llama/Llama-3.1-8B-Instruct", 60, 0.8, 600.0),
];

/// Starts the metric load in a background thread.
pub fn start(port: u16) {
    std::thread::Builder::new()
        .name("demo-genai-metrics".into())
        .spawn(move || {
            if let Err(e) = run(port) {
                tracing::error!(error = %e, "demo GenAI metrics stopped");
            }
        })
        .map_err(|e| tracing::error!(error = %e, "failed to start the demo GenAI metrics"))
        .ok();
}

fn run(port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/v1/metrics");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let interval_ns = INTERVAL.as_nanos() as i64;
    let mut rng = Lcg(now_ns() as u64 | 1);
    let mut t = now_ns() - BACKFILL.as_nanos() as i64;
    loop {
        for pod in ["aigw-7b9f4d8c5-x2k4p", "aigw-7b9f4d8c5-q9z7m"] {
            let request = export_request(pod, t - interval_ns, t, &mut rng);
            let response = agent
                .post(&url)
                .header("Content-Type", "application/x-protobuf")
                .send(&request.encode_to_vec()[..])?;
            if response.status().as_u16() != 200 {
                let code = response.status();
                let text = response.into_body().read_to_string().unwrap_or_default();
                anyhow::bail!("demo OTLP metrics answered {code}: {text}");
            }
        }
        t += interval_ns;
        let ahead = t - now_ns();
        if ahead > 0 {
            std::thread::sleep(Duration::from_nanos(ahead as u64));
        }
    }
}

/// A small deterministic generator (no dependency needed for demo numbers).
struct Lcg(u64);

impl Lcg {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential-ish sample around `mean`, with a long tail.
    fn around(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next()).max(1e-9).ln()
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A delta histogram point of `values` over `bounds`.
fn point(
    attrs: Vec<KeyValue>,
    start: i64,
    end: i64,
    bounds: &[f64],
    values: &[f64],
) -> HistogramDataPoint {
    let mut counts = vec![0u64; bounds.len() + 1];
    for v in values {
        counts[bounds.partition_point(|b| b < v)] += 1;
    }
    HistogramDataPoint {
        attributes: attrs,
        start_time_unix_nano: start as u64,
        time_unix_nano: end as u64,
        count: values.len() as u64,
        sum: Some(values.iter().sum()),
        bucket_counts: counts,
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn histogram(name: &str, unit: &str, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    }
}

fn export_request(pod: &str, start: i64, end: i64, rng: &mut Lcg) -> ExportMetricsServiceRequest {
    let (mut durations, mut ttfts, mut tpots, mut tokens) = (vec![], vec![], vec![], vec![]);
    for (provider, model, rate, mean_s, mean_in) in MODELS {
        let attrs = || {
            vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.provider.name", provider),
                kv("gen_ai.request.model", model),
                kv("gen_ai.response.model", model),
                kv("gen_ai.original.model", model),
            ]
        };
        let n = (rate as f64 * (0.7 + 0.6 * rng.next())) as usize;
        let d: Vec<f64> = (0..n).map(|_| rng.around(mean_s)).collect();
        let first: Vec<f64> = d.iter().map(|s| s * (0.05 + 0.1 * rng.next())).collect();
        let per_token: Vec<f64> = (0..n).map(|_| 0.01 + 0.04 * rng.next()).collect();
        let input: Vec<f64> = (0..n).map(|_| rng.around(mean_in).ceil()).collect();
        let output: Vec<f64> = (0..n).map(|_| rng.around(mean_in / 6.0).ceil()).collect();
        let cached: Vec<f64> = input
            .iter()
            .map(|i| (i * 0.3 * rng.next()).floor())
            .collect();
        durations.push(point(attrs(), start, end, &DURATION_BOUNDS, &d));
        ttfts.push(point(attrs(), start, end, &TTFT_BOUNDS, &first));
        tpots.push(point(attrs(), start, end, &TPOT_BOUNDS, &per_token));
        for (kind, values) in [
            ("input", &input),
            ("output", &output),
            ("cached_input", &cached),
        ] {
            let mut a = attrs();
            a.push(kv("gen_ai.token.type", kind));
            tokens.push(point(a, start, end, &TOKEN_BOUNDS, values));
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "envoy-ai-gateway"),
                    kv("aigw.service", "my-ai-gateway"),
                    kv("service.instance.id", pod),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    histogram("gen_ai.server.request.duration", "s", durations),
                    histogram("gen_ai.server.time_to_first_token", "s", ttfts),
                    histogram("gen_ai.server.time_per_output_token", "s", tpots),
                    histogram("gen_ai.client.token.usage", "token", tokens),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
