//! Loki's query API: `query_range`, `query`, `labels`, `label/<name>/values`,
//! `series`, each on GET (URL parameters) and POST (form body).
//!
//! Handlers parse parameters with Loki's defaults and limits, then call the
//! query layer; they never touch storage internals.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use inferscope_model::{Direction, Labels, TimeRange};
use inferscope_query::engine::{EngineError, EvalParams, Value};
use inferscope_query::{Expr, MetricExpr, parse};

use crate::error::ApiError;
use crate::http::params::{Params, now_ns};
use crate::metrics::{QUERY_BYTES_SCANNED, QUERY_REQUESTS, QUERY_SECONDS};
use crate::query::log_query::{LogQuery, LogQueryError, QueryStats, execute};
use crate::query::metric_query::execute_blocking;
use crate::query::response::{LabelsOut, MetricData, StatsOut, StreamsData, Success};
use crate::query::selector::parse_matchers;
use crate::state::AppState;
use crate::tenant::tenant_of;
use crate::units::format_duration;

/// Default range of log queries (`since`), as in Loki.
pub(crate) const DEFAULT_QUERY_SINCE: Duration = Duration::from_secs(3600);
/// Default range of label and series queries, as in Loki.
const DEFAULT_METADATA_SINCE: Duration = Duration::from_secs(6 * 3600);
/// Default `limit`.
const DEFAULT_LIMIT: usize = 100;
/// Header Grafana sends to get labels by category.
const ENCODING_FLAGS_HEADER: &str = "X-Loki-Response-Encoding-Flags";

/// The query routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/query", get(query_instant).post(query_instant))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route(
            "/loki/api/v1/format_query",
            get(format_query).post(format_query),
        )
}

/// Records the request in the server's metrics, whatever its outcome.
pub(crate) fn observe(
    state: &AppState,
    endpoint: &'static str,
    started: Instant,
    result: Result<Response, ApiError>,
) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    let code = response.status();
    state.metrics.add(
        QUERY_REQUESTS,
        &[("endpoint", endpoint), ("code", code.as_str())],
        1.0,
    );
    state.metrics.add(
        QUERY_SECONDS,
        &[("endpoint", endpoint)],
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = query_range_inner(&state, &headers, raw.as_deref(), &body).await;
    observe(&state, "query_range", started, result)
}

async fn query_range_inner(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let tenant = tenant_of(headers, state.config.auth_enabled)?;
    let params = Params::parse(raw, Some(body))?;
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing required parameter \"query\""))?;
    let range = time_range(&params, DEFAULT_QUERY_SINCE)?;
    check_query_length(state, range)?;
    let limit = query_limit(state, &params)?;
    let direction = direction(&params)?;
    match parse(query).map_err(|e| ApiError::bad_request(e.to_string()))? {
        Expr::Log(selector) => {
            let categorize = headers
                .get(ENCODING_FLAGS_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "categorize-labels"));
            run_log_query(
                state,
                LogQuery {
                    tenant,
                    selector,
                    range,
                    limit,
                    direction,
                    categorize_labels: categorize,
                },
            )
            .await
        }
        Expr::Metric(expr) => {
            let step = match params.duration("step")? {
                Some(step) => step,
                None => default_step(range),
            };
            if step.is_zero() {
                return Err(ApiError::bad_request(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer",
                ));
            }
            // As Loki's query frontend: `Cache-Control: no-cache` bypasses the results cache.
            let use_cache = !headers
                .get(axum::http::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|d| d.trim() == "no-cache"));
            run_metric_query(
                state,
                tenant,
                expr,
                (range.start_ns, range.end_ns, step.as_nanos() as i64),
                use_cache,
            )
            .await
        }
    }
}

/// How far before an evaluation time the data of `expr` may lie (the
/// largest range plus offset of its range aggregations).
fn lookback_ns(expr: &MetricExpr) -> i64 {
    match expr {
        MetricExpr::Range(r) => r.range_ns.saturating_add(r.offset_ns.unwrap_or(0)),
        MetricExpr::Vector(v) => lookback_ns(&v.inner),
        MetricExpr::Binary(b) => lookback_ns(&b.lhs).max(lookback_ns(&b.rhs)),
        MetricExpr::LabelReplace(l) => lookback_ns(&l.inner),
        MetricExpr::Function(f) => f.args.iter().map(lookback_ns).max().unwrap_or(0),
        MetricExpr::HistogramQuantile(h) => lookback_ns(&h.phi).max(lookback_ns(&h.inner)),
        MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => 0,
    }
}

/// Loki's default step: the range / 250, at least one second.
fn default_step(range: TimeRange) -> Duration {
    let seconds = ((range.end_ns - range.start_ns) as f64 / 1e9 / 250.0)
        .floor()
        .max(1.0);
    Duration::from_secs_f64(seconds)
}

async fn query_instant(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let tenant = tenant_of(&headers, state.config.auth_enabled)?;
        let params = Params::parse(raw.as_deref(), Some(&body))?;
        let query = params
            .get("query")
            .ok_or_else(|| ApiError::bad_request("missing required parameter \"query\""))?;
        let time = params.time_ns("time")?.unwrap_or_else(now_ns);
        query_limit(&state, &params)?;
        direction(&params)?;
        match parse(query).map_err(|e| ApiError::bad_request(e.to_string()))? {
            Expr::Log(_) => Err(ApiError::bad_request(
                "log queries are not supported as an instant query type, please change your query to a range query type",
            )),
            Expr::Metric(expr) => run_metric_query(&state, tenant, expr, (time, time, 1), false).await,
        }
    }
    .await;
    observe(&state, "query", started, result)
}

/// Evaluates a metric query over the grid `(start, end, step)`; range queries
/// go through the results cache when `use_cache`.
async fn run_metric_query(
    state: &AppState,
    tenant: String,
    expr: MetricExpr,
    (start_ns, end_ns, step_ns): (i64, i64, i64),
    use_cache: bool,
) -> Result<Response, ApiError> {
    let params = EvalParams {
        start_ns,
        end_ns,
        step_ns,
        max_series: state.config.limits_config.max_query_series,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let timeout = state.config.limits_config.query_timeout;
    let store = state.store.clone();
    let cache = state.results_cache.clone();
    let runtime = tokio::runtime::Handle::current();
    let task_cancel = cancel.clone();
    let cached = use_cache && cache.enabled() && start_ns < end_ns;
    let task = tokio::task::spawn_blocking(move || {
        let run = |start_ns: i64, end_ns: i64| {
            let p = EvalParams {
                start_ns,
                end_ns,
                ..params
            };
            execute_blocking(&store, &tenant, &expr, &p, runtime.clone(), &task_cancel)
        };
        if !cached {
            return run(start_ns, end_ns);
        }
        let mut total = QueryStats::default();
        let (series, _) = cache.evaluate(
            &tenant,
            &expr.to_string(),
            (start_ns, end_ns, step_ns),
            lookback_ns(&expr),
            now_ns(),
            |a, b| {
                let (value, stats) = run(a, b)?;
                total.bytes_scanned += stats.bytes_scanned;
                total.lines_scanned += stats.lines_scanned;
                Ok::<_, EngineError>(value)
            },
        )?;
        total.entries_returned = series.iter().map(|s| s.samples.len() as u64).sum();
        Ok((Value::Matrix(series), total))
    });
    let (value, stats) = match tokio::time::timeout(timeout, task).await {
        Err(_) => {
            cancel.store(true, Ordering::Relaxed);
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "query timed out after {} (limits_config.query_timeout)",
                    format_duration(timeout)
                ),
            ));
        }
        Ok(Err(e)) => return Err(ApiError::internal("metric query task failed", &e)),
        Ok(Ok(Err(EngineError::Source(message)))) => {
            return Err(ApiError::internal("query failed in storage", &message));
        }
        Ok(Ok(Err(e))) => return Err(ApiError::bad_request(e.to_string())),
        Ok(Ok(Ok(result))) => result,
    };
    state
        .metrics
        .add(QUERY_BYTES_SCANNED, &[], stats.bytes_scanned as f64);
    let data = MetricData {
        value: &value,
        stats: StatsOut::from(&stats),
    };
    Ok(Json(Success::new(data)).into_response())
}

async fn run_log_query(state: &AppState, query: LogQuery) -> Result<Response, ApiError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let categorized = query.categorize_labels;
    let timeout = state.config.limits_config.query_timeout;
    let outcome = tokio::time::timeout(timeout, execute(&state.store, query, cancel.clone())).await;
    let (streams, stats) = match outcome {
        Err(_) => {
            cancel.store(true, Ordering::Relaxed);
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "query timed out after {} (limits_config.query_timeout)",
                    format_duration(timeout)
                ),
            ));
        }
        Ok(Err(LogQueryError::Pipeline(message))) => return Err(ApiError::bad_request(message)),
        Ok(Err(LogQueryError::Cancelled)) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "query cancelled",
            ));
        }
        Ok(Err(e @ LogQueryError::Storage(_))) => {
            return Err(ApiError::internal("query failed in storage", &e));
        }
        Ok(Ok(result)) => result,
    };
    state
        .metrics
        .add(QUERY_BYTES_SCANNED, &[], stats.bytes_scanned as f64);
    Ok(Json(Success::new(StreamsData::new(
        &streams,
        &stats,
        categorized,
    )))
    .into_response())
}

/// `format_query`: the query in canonical LogQL (Grafana's "format query" button).
async fn format_query(RawQuery(raw): RawQuery, body: Bytes) -> Result<Response, ApiError> {
    let params = Params::parse(raw.as_deref(), Some(&body))?;
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing required parameter \"query\""))?;
    let expr = parse(query).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(Success::new(expr.to_string())).into_response())
}

/// The tenant, parameters and time range of a labels or series request
/// (default range: the last 6 hours, as in Loki).
fn metadata_request(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &[u8],
) -> Result<(String, Params, TimeRange), ApiError> {
    let tenant = tenant_of(headers, state.config.auth_enabled)?;
    let params = Params::parse(raw, Some(body))?;
    let range = time_range(&params, DEFAULT_METADATA_SINCE)?;
    Ok((tenant, params, range))
}

async fn labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let (tenant, params, range) = metadata_request(&state, &headers, raw.as_deref(), &body)?;
        let matchers = params
            .get("query")
            .map(parse_matchers)
            .transpose()?
            .unwrap_or_default();
        let names = state
            .store
            .label_names(&tenant, range, &matchers)
            .await
            .map_err(|e| ApiError::internal("label names failed", &e))?;
        Ok(Json(Success::new(names)).into_response())
    }
    .await;
    observe(&state, "labels", started, result)
}

async fn label_values(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let (tenant, params, range) = metadata_request(&state, &headers, raw.as_deref(), &body)?;
        let matchers = params
            .get("query")
            .map(parse_matchers)
            .transpose()?
            .unwrap_or_default();
        let values = state
            .store
            .label_values(&tenant, &name, range, &matchers)
            .await
            .map_err(|e| ApiError::internal("label values failed", &e))?;
        Ok(Json(Success::new(values)).into_response())
    }
    .await;
    observe(&state, "label_values", started, result)
}

async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let (tenant, params, range) = metadata_request(&state, &headers, raw.as_deref(), &body)?;
        let selectors = params.all("match[]");
        let selectors = if selectors.is_empty() { params.all("match") } else { selectors };
        let mut found: Vec<Labels> = Vec::new();
        if selectors.is_empty() {
            found = state
                .store
                .series(&tenant, &[], range)
                .await
                .map_err(|e| ApiError::internal("series failed", &e))?;
        }
        for selector in selectors {
            let matchers = parse_matchers(selector)?;
            found.extend(
                state
                    .store
                    .series(&tenant, &matchers, range)
                    .await
                    .map_err(|e| ApiError::internal("series failed", &e))?,
            );
        }
        found.sort();
        found.dedup();
        let max = state.config.limits_config.max_query_series;
        if found.len() > max {
            return Err(ApiError::bad_request(format!(
                "maximum number of series ({max}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results"
            )));
        }
        let out: Vec<LabelsOut<'_>> = found.iter().map(LabelsOut).collect();
        Ok(Json(Success::new(out)).into_response())
    }
    .await;
    observe(&state, "series", started, result)
}

/// `start`/`end`/`since` with Loki's defaults: end = now, start = end - since.
pub(crate) fn time_range(params: &Params, default_since: Duration) -> Result<TimeRange, ApiError> {
    let end = params.time_ns("end")?.unwrap_or_else(now_ns);
    let since = params.duration("since")?;
    let start = match (since, params.time_ns("start")?) {
        (Some(since), _) => end.saturating_sub(since.as_nanos() as i64),
        (None, Some(start)) => start,
        (None, None) => end.saturating_sub(default_since.as_nanos() as i64),
    };
    if end < start {
        return Err(ApiError::bad_request(
            "end timestamp must not be before or equal to start time",
        ));
    }
    // Loki returns entries with timestamp >= start and < end.
    Ok(TimeRange::new(start, end))
}

pub(crate) fn check_query_length(state: &AppState, range: TimeRange) -> Result<(), ApiError> {
    let max = state.config.limits_config.max_query_length;
    let length = Duration::from_nanos(range.end_ns.saturating_sub(range.start_ns).max(0) as u64);
    if !max.is_zero() && length > max + Duration::from_nanos(1) {
        return Err(ApiError::bad_request(format!(
            "the query time range exceeds the limit (query length: {}, limit: {})",
            format_duration(length),
            format_duration(max)
        )));
    }
    Ok(())
}

fn query_limit(state: &AppState, params: &Params) -> Result<usize, ApiError> {
    let limit = params.usize("limit")?.unwrap_or(DEFAULT_LIMIT);
    let max = state.config.limits_config.max_entries_limit_per_query;
    if limit > max {
        return Err(ApiError::bad_request(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"
        )));
    }
    Ok(limit.max(1))
}

fn direction(params: &Params) -> Result<Direction, ApiError> {
    match params
        .get("direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid direction {other:?}: use forward or backward"
        ))),
    }
}
