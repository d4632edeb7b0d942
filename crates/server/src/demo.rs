//! `serve --demo`: a realistic load pushed through the real push API.
//!
//! An AI gateway, a Go scheduler and vLLM workers (from `inferscope-datagen`)
//! log requests whose trace ids cross services. The demo first backfills the
//! last ten minutes, then keeps pushing in real time at a modest rate, as
//! snappy protobuf over HTTP, exactly like Promtail or Alloy would. 429s are
//! honoured with their `Retry-After`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use inferscope_datagen::{Generator, GeneratorConfig};

use crate::http::params::now_ns;
use crate::ingest::push_decode::encode_protobuf;
use crate::state::AppState;

/// Simulated lines per second across all demo streams.
const DEMO_LINES_PER_SECOND: u64 = 200;
/// How much history is backfilled at start.
const BACKFILL: Duration = Duration::from_secs(600);

/// Starts the demo load in a background thread and prints where to look.
pub fn start(state: Arc<AppState>, addr: SocketAddr) {
    let port = addr.port();
    std::thread::Builder::new()
        .name("demo-load".into())
        .spawn(move || {
            if let Err(e) = run(&state, port) {
                tracing::error!(error = %e, "demo load stopped");
            }
        })
        .map_err(|e| tracing::error!(error = %e, "failed to start the demo load"))
        .ok();
}

fn run(state: &AppState, port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/loki/api/v1/push");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut generator = Generator::new(GeneratorConfig {
        seed: now_ns() as u64,
        streams: 40,
        start_ns: now_ns() - BACKFILL.as_nanos() as i64,
        lines_per_second: DEMO_LINES_PER_SECOND,
        error_ratio: 0.03,
    });
    let mut banner_printed = false;
    loop {
        let batch = generator.next_batch(64 * 1024);
        if !banner_printed {
            print_banner(port, &state.config.common.path_prefix, &batch);
            banner_printed = true;
        }
        let body = encode_protobuf(&batch);
        loop {
            let response = agent
                .post(&url)
                .header("Content-Type", "application/x-protobuf")
                .send(&body[..])?;
            match response.status().as_u16() {
                204 => break,
                429 => {
                    let wait = response
                        .headers()
                        .get("Retry-After")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    std::thread::sleep(Duration::from_secs(wait));
                }
                code => {
                    let text = response.into_body().read_to_string().unwrap_or_default();
                    anyhow::bail!("demo push answered {code}: {text}");
                }
            }
        }
        // Once caught up with the wall clock, push in real time.
        let ahead_ns = generator.now_ns() - now_ns();
        if ahead_ns > 0 {
            std::thread::sleep(Duration::from_nanos(ahead_ns as u64));
        }
    }
}

/// The first gateway trace id in a batch (a query the user can try).
pub fn find_trace_id(batch: &[inferscope_model::PushStream]) -> Option<String> {
    batch
        .iter()
        .filter(|s| s.labels.get("app") == Some("aigateway"))
        .flat_map(|s| &s.entries)
        .find_map(|e| {
            let start = e.line.find("\"trace_id\":\"")? + "\"trace_id\":\"".len();
            let len = e.line[start..].find('"')?;
            Some(e.line[start..start + len].to_string())
        })
}

fn print_banner(port: u16, data_dir: &std::path::Path, batch: &[inferscope_model::PushStream]) {
    let base = format!("http://localhost:{port}");
    let trace = find_trace_id(batch).unwrap_or_else(|| "<trace id>".into());
    let namespace = batch
        .iter()
        .find_map(|s| s.labels.get("namespace"))
        .unwrap_or("llm-prod");
    println!(
        r#"
Inferscope is running at {base}, with a demo load of an AI gateway, a scheduler and vLLM workers.
Data: {data}   Metrics: {base}/metrics   Grafana: add a Loki data source with URL {base}

Queries to try:
  curl -sG {base}/loki/api/v1/query_range --data-urlencode 'query={{app="aigateway"}} | json | level="ERROR"' --data-urlencode limit=5
  curl -sG {base}/loki/api/v1/query_range --data-urlencode 'query={{namespace="{namespace}"}} |= "{trace}"' --data-urlencode direction=forward
  curl -sG {base}/loki/api/v1/query_range --data-urlencode 'query={{app="vllm", role="decode"}} |~ "(?i)out of memory"'
  curl -sG {base}/loki/api/v1/query_range --data-urlencode 'query={{app="aigateway"}} | json | latency_ms > 5000 | line_format "{{{{.model}}}} {{{{.status}}}} {{{{.latency_ms}}}}ms"'
  curl -sG {base}/loki/api/v1/query --data-urlencode 'query=sum by (app) (count_over_time({{namespace="{namespace}"}} [5m]))'
  curl -sG {base}/loki/api/v1/query --data-urlencode 'query=quantile_over_time(0.99, {{app="aigateway"}} | json | unwrap latency_ms [5m]) by (model)'
  curl -s  {base}/loki/api/v1/labels
  curl -sG {base}/loki/api/v1/series --data-urlencode 'match[]={{app="vllm"}}'
  logcli --addr={base} query '{{namespace="{namespace}"}} |= "{trace}"'
  curl -s  {base}/api/v1/trace/{trace}
  cargo run --release -- trace {trace} --addr {base}     # the request's journey as a timeline

GenAI metrics (OTLP from a simulated Envoy AI Gateway; Grafana: a Prometheus data source with URL {base}):
  curl -sG {base}/api/v1/query --data-urlencode 'query=histogram_quantile(0.99, sum by (model, le) (rate(genai_request_duration_seconds_bucket[5m])))'
  curl -sG {base}/api/v1/query --data-urlencode 'query=sum by (model) (rate(genai_estimated_cost_usd_total[5m])) * 3600'
  curl -s  '{base}/api/v1/genai/summary?by=model&since=10m'
  cargo run --release -- genai top --by model --since 10m --addr {base}
"#,
        data = data_dir.display()
    );
}
