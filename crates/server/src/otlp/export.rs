//! The OTLP export operations, shared by OTLP/HTTP and OTLP/gRPC: each takes a
//! decoded request of one tenant and answers the OTLP response, with
//! `partial_success` naming what was refused. Blocking: call them from
//! `spawn_blocking`.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::error::ApiError;
use crate::http::params::now_ns;
use crate::ingest::accept::accept;
use crate::metrics::{OTLP_POINTS_REJECTED, OTLP_RECORDS};
use crate::otlp::access_log;
use crate::otlp::logs::{into_streams, records};
use crate::state::AppState;

/// The blocking export of one signal for a tenant, as both transports call it.
pub type ExportFn<Req, Resp> = fn(&AppState, &str, &Req) -> Result<Resp, ApiError>;

/// Stores the log records of `request` through the same path as Loki pushes
/// (validation, normalization, redaction, limits, WAL). AI-gateway access logs
/// are priced and sampled first ([`access_log`]): records the policy drops are
/// not stored, and every access log, kept or dropped, is counted in the
/// `genai_access_log_*` series once the kept ones are stored. Refused records
/// are counted in `partial_success` (sampled-out ones are not refusals); an
/// overload or a refused batch is an error, and then nothing is counted.
pub fn export_logs(
    state: &AppState,
    tenant: &str,
    request: &ExportLogsServiceRequest,
) -> Result<ExportLogsServiceResponse, ApiError> {
    let now = now_ns();
    let records = records(request, now);
    state
        .metrics
        .add(OTLP_RECORDS, &[("signal", "logs")], records.len() as f64);
    let mut sampled = access_log::sample(state, tenant, records);
    let kept = std::mem::take(&mut sampled.kept);
    let total = kept.len();
    let streams = into_streams(kept.into_iter().map(|r| (r.labels, r.entry)));
    let accepted = if streams.is_empty() {
        Default::default()
    } else {
        accept(state, tenant, streams)?
    };
    sampled.record(state, tenant, now)?;
    let rejected = total.saturating_sub(accepted.entries);
    Ok(ExportLogsServiceResponse {
        partial_success: (rejected > 0 || accepted.partial_error.is_some()).then(|| {
            ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: accepted.partial_error.unwrap_or_default(),
            }
        }),
    })
}

/// Stores the metric points of `request` in the metric store (Prometheus-named
/// series, plus the `genai_*` series derived from `gen_ai.*` histograms).
/// Points refused as the OTLP spec says (NaN, bad buckets, out-of-order
/// deltas, unknown types) are counted in `partial_success` with the first
/// reasons; everything else is durable before the answer.
pub fn export_metrics(
    state: &AppState,
    tenant: &str,
    request: &ExportMetricsServiceRequest,
) -> Result<ExportMetricsServiceResponse, ApiError> {
    let outcome = state
        .metric_store
        .ingest(tenant, request, Some(state.genai.as_ref()))
        .map_err(|e| ApiError::internal("metric store write failed", &e))?;
    state.metrics.add(
        OTLP_RECORDS,
        &[("signal", "metrics")],
        (outcome.accepted_points + outcome.rejected_points) as f64,
    );
    if outcome.rejected_points > 0 {
        state.metrics.add(
            OTLP_POINTS_REJECTED,
            &[("tenant", tenant)],
            outcome.rejected_points as f64,
        );
    }
    Ok(ExportMetricsServiceResponse {
        partial_success: (outcome.rejected_points > 0 || !outcome.errors.is_empty()).then(|| {
            ExportMetricsPartialSuccess {
                rejected_data_points: outcome.rejected_points as i64,
                error_message: outcome.errors.join("; "),
            }
        }),
    })
}

/// Traces are not stored by this version: every span is reported as rejected,
/// with the reason, so senders see it instead of losing spans silently.
pub fn export_traces(
    state: &AppState,
    request: &ExportTraceServiceRequest,
) -> ExportTraceServiceResponse {
    let spans: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    state
        .metrics
        .add(OTLP_RECORDS, &[("signal", "traces")], spans as f64);
    ExportTraceServiceResponse {
        partial_success: (spans > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: spans as i64,
            error_message: "traces are not stored by Inferscope yet; \
                            send logs and metrics here and spans to a tracing backend"
                .into(),
        }),
    }
}
