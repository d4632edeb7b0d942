//! The Prometheus HTTP API over the metric store, so Grafana's Prometheus data
//! source works unchanged: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values`
//! (GET or POST form), plus `/api/v1/status/buildinfo` and `/api/v1/metadata`
//! that Grafana calls when it connects.
//!
//! Times are Unix seconds (float) or RFC3339; `step` a duration or float
//! seconds. Errors use Prometheus' JSON shape
//! `{"status":"error","errorType":"bad_data","error":"…"}`: 400 for a query
//! that does not parse or bad parameters, 422 for an evaluation error, 503 for
//! a timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::DateTime;
use inferscope_model::{LabelMatcher, Labels};
use inferscope_query::engine::{EngineError, EvalParams};
use inferscope_query::promql;
use serde_json::json;

use crate::http::params::{Params, now_ns, parse_duration_param};
use crate::query::log_query::QueryStats;
use crate::query::prom_source::execute_promql;
use crate::query::response::{LabelsOut, MetricData, StatsOut, Success};
use crate::state::AppState;
use crate::tenant::tenant_of;

/// Prometheus' default range of `series`/`labels` without `start`: everything;
/// we bound it to the retention horizon instead (all stored data).
const DEFAULT_METADATA_RANGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The Prometheus API routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
}

/// A Prometheus API error.
struct PromError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl PromError {
    fn bad_data(message: impl Into<String>) -> Self {
        PromError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: message.into(),
        }
    }
}

impl From<crate::error::ApiError> for PromError {
    fn from(e: crate::error::ApiError) -> Self {
        PromError {
            status: e.status,
            kind: if e.status.is_server_error() {
                "internal"
            } else {
                "bad_data"
            },
            message: e.message,
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": "error", "errorType": self.kind, "error": self.message})),
        )
            .into_response()
    }
}

/// Parses a Prometheus time: float Unix seconds or RFC3339.
fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1e9).round() as i64);
    }
    DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .ok_or_else(|| format!("cannot parse {t:?} to a valid timestamp"))
}

fn time_param(params: &Params, key: &str) -> Result<Option<i64>, PromError> {
    params
        .get(key)
        .map(|v| {
            parse_time(v)
                .map_err(|e| PromError::bad_data(format!("invalid parameter \"{key}\": {e}")))
        })
        .transpose()
}

fn request(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &[u8],
) -> Result<(String, Params), PromError> {
    let tenant = tenant_of(headers, state.config.auth_enabled)?;
    let params = Params::parse(raw, Some(body))?;
    Ok((tenant, params))
}

async fn evaluate(
    state: &AppState,
    tenant: String,
    query: &str,
    params: EvalParams,
) -> Result<Response, PromError> {
    let expr = promql::parse(query).map_err(|e| PromError::bad_data(e.to_string()))?;
    let store = state.metric_store.clone();
    let timeout = state.config.limits_config.query_timeout;
    let task = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        execute_promql(&store, &tenant, &expr, &params).map(|v| (v, started.elapsed()))
    });
    let (value, took) = match tokio::time::timeout(timeout, task).await {
        Err(_) => {
            return Err(PromError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "timeout",
                message: "query timed out (limits_config.query_timeout)".into(),
            });
        }
        Ok(Err(e)) => {
            return Err(PromError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "internal",
                message: e.to_string(),
            });
        }
        Ok(Ok(Err(e @ EngineError::InvalidParams(_))))
        | Ok(Ok(Err(e @ EngineError::TooManySteps))) => {
            return Err(PromError::bad_data(e.to_string()));
        }
        Ok(Ok(Err(e))) => {
            return Err(PromError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                kind: "execution",
                message: e.to_string(),
            });
        }
        Ok(Ok(Ok(result))) => result,
    };
    let stats = QueryStats {
        exec_seconds: took.as_secs_f64(),
        ..QueryStats::default()
    };
    let data = MetricData {
        value: &value,
        stats: StatsOut::from(&stats),
    };
    Ok(Json(Success::new(data)).into_response())
}

async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        let (tenant, params) = request(&state, &headers, raw.as_deref(), &body)?;
        let q = params
            .get("query")
            .ok_or_else(|| PromError::bad_data("invalid parameter \"query\": missing"))?
            .to_string();
        let t = time_param(&params, "time")?.unwrap_or_else(now_ns);
        let p = EvalParams {
            start_ns: t,
            end_ns: t,
            step_ns: 1,
            max_series: state.config.limits_config.max_query_series,
        };
        evaluate(&state, tenant, &q, p).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        let (tenant, params) = request(&state, &headers, raw.as_deref(), &body)?;
        let q = params
            .get("query")
            .ok_or_else(|| PromError::bad_data("invalid parameter \"query\": missing"))?
            .to_string();
        let start = time_param(&params, "start")?
            .ok_or_else(|| PromError::bad_data("invalid parameter \"start\": missing"))?;
        let end = time_param(&params, "end")?
            .ok_or_else(|| PromError::bad_data("invalid parameter \"end\": missing"))?;
        let step = params
            .get("step")
            .ok_or_else(|| PromError::bad_data("invalid parameter \"step\": missing"))
            .and_then(|s| {
                parse_duration_param(s)
                    .map_err(|e| PromError::bad_data(format!("invalid parameter \"step\": {e}")))
            })?;
        let step_ns = i64::try_from(step.as_nanos()).unwrap_or(i64::MAX);
        if step_ns <= 0 {
            return Err(PromError::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end < start {
            return Err(PromError::bad_data("end timestamp must not be before start time"));
        }
        let p = EvalParams {
            start_ns: start,
            end_ns: end,
            step_ns,
            max_series: state.config.limits_config.max_query_series,
        };
        evaluate(&state, tenant, &q, p).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A metadata request: its tenant, the matcher sets of its `match[]`, its range.
struct MetadataRequest {
    tenant: String,
    sets: Vec<Vec<LabelMatcher>>,
    start: i64,
    end: i64,
}

impl MetadataRequest {
    /// The sorted, deduplicated union of `f` over the `match[]` sets (all series
    /// when there is none).
    fn union(&self, f: impl Fn(&str, &[LabelMatcher], i64, i64) -> Vec<String>) -> Vec<String> {
        let all: &[Vec<LabelMatcher>] = &[Vec::new()];
        let sets = if self.sets.is_empty() {
            all
        } else {
            &self.sets
        };
        let mut out: Vec<String> = sets
            .iter()
            .flat_map(|m| f(&self.tenant, m, self.start, self.end))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn metadata_request(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &[u8],
) -> Result<MetadataRequest, PromError> {
    let (tenant, params) = request(state, headers, raw, body)?;
    let end = time_param(&params, "end")?.unwrap_or_else(now_ns);
    let start =
        time_param(&params, "start")?.unwrap_or(end - DEFAULT_METADATA_RANGE.as_nanos() as i64);
    let mut sets = Vec::new();
    for selector in params.all("match[]") {
        sets.push(
            promql::parse_selector(selector).map_err(|e| PromError::bad_data(e.to_string()))?,
        );
    }
    Ok(MetadataRequest {
        tenant,
        sets,
        start,
        end,
    })
}

async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let result = (|| {
        let MetadataRequest {
            tenant,
            sets,
            start,
            end,
        } = metadata_request(&state, &headers, raw.as_deref(), &body)?;
        if sets.is_empty() {
            return Err(PromError::bad_data("no match[] parameter provided"));
        }
        let mut found: Vec<Labels> = Vec::new();
        for matchers in &sets {
            found.extend(state.metric_store.series(&tenant, matchers, start, end));
        }
        found.sort();
        found.dedup();
        let out: Vec<LabelsOut<'_>> = found.iter().map(LabelsOut).collect();
        Ok(Json(Success::new(out)).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let result = (|| {
        let req = metadata_request(&state, &headers, raw.as_deref(), &body)?;
        let names = req
            .union(|tenant, m, start, end| state.metric_store.label_names(tenant, m, start, end));
        Ok::<_, PromError>(Json(Success::new(names)).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn label_values(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let result = (|| {
        let req = metadata_request(&state, &headers, raw.as_deref(), &[])?;
        let values = req.union(|tenant, m, start, end| {
            state
                .metric_store
                .label_values(tenant, &name, m, start, end)
        });
        Ok::<_, PromError>(Json(Success::new(values)).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Metric metadata: not kept yet; an empty answer is valid for Grafana.
async fn metadata() -> Response {
    Json(Success::new(json!({}))).into_response()
}

/// What Grafana reads to pick its Prometheus dialect.
async fn buildinfo() -> Response {
    Json(Success::new(json!({
        "version": "2.53.0",
        "revision": concat!("inferscope-", env!("CARGO_PKG_VERSION")),
        "branch": "main",
        "buildUser": "inferscope",
        "buildDate": "",
        "goVersion": "none",
    })))
    .into_response()
}
