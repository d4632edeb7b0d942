//! The Loki endpoints Grafana's Logs Drilldown app calls besides the query API:
//! `detected_fields`, `detected_field/{name}/values`, `detected_labels`, `patterns`
//! and `drilldown-limits`, each answered in Loki's JSON shape.
//!
//! ```text
//! GET /loki/api/v1/detected_fields?query={…}&line_limit=1000&limit=1000
//!   {"fields":[{"label":"latency_ms","type":"int","cardinality":37,
//!               "parsers":["json"],"jsonPath":["latency_ms"]}, …],"limit":1000}
//! GET /loki/api/v1/detected_field/latency_ms/values?query={…}
//!   {"values":["12","37",…],"limit":1000}
//! GET /loki/api/v1/detected_labels?query={…}
//!   {"detectedLabels":[{"label":"app","cardinality":4},…]}
//! GET /loki/api/v1/patterns?query={…}&step=1m
//!   {"status":"success","data":[{"pattern":"level=info msg=<_>","level":"info",
//!                                "samples":[[1700000040,12],…]},…]}
//! GET /loki/api/v1/drilldown-limits
//!   {"limits":{"discover_log_levels":true,…},"pattern_ingester_enabled":true,"version":"…"}
//! ```
//!
//! Detected fields and values sample the `line_limit` most recent lines of the log
//! query (as Loki's frontend does); patterns are mined at query time over the most
//! recent [`MAX_PATTERN_LINES`] lines of the range (Loki mines them at ingest in its
//! pattern ingesters). The analysis itself lives in `query::detected` and
//! `query::patterns`; handlers only parse parameters, run the log query and shape JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use inferscope_model::{Direction, TimeRange};
use inferscope_query::{Expr, LogSelector, parse};
use serde::Serialize;

use crate::error::ApiError;
use crate::http::loki_query::{DEFAULT_QUERY_SINCE, check_query_length, observe, time_range};
use crate::http::params::Params;
use crate::metrics::QUERY_BYTES_SCANNED;
use crate::query::detected::{
    self, DetectedField, DetectedLabel, detect_field_values, detect_fields, detect_labels,
};
use crate::query::log_query::{LogQuery, LogQueryError, ResultStream, execute};
use crate::query::patterns::{Drain, MinedPattern};
use crate::state::AppState;
use crate::tenant::tenant_of;
use crate::units::format_duration;

/// Default range of detected labels, as Loki's label API.
const DEFAULT_LABELS_SINCE: Duration = Duration::from_secs(6 * 3600);
/// Default `line_limit` and `limit` of detected fields (Loki's defaults).
const DEFAULT_DETECTED_LIMIT: usize = 1000;
/// Most recent lines mined for patterns.
pub const MAX_PATTERN_LINES: usize = 100_000;
/// Pattern samples are never finer than Loki's pattern chunks (10 s).
const MIN_PATTERN_STEP: Duration = Duration::from_secs(10);
/// Loki's `volume_max_series` default, published in drilldown-limits.
const VOLUME_MAX_SERIES: u64 = 1000;

/// The Drilldown routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/loki/api/v1/detected_fields",
            get(detected_fields).post(detected_fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(detected_field_values).post(detected_field_values),
        )
        .route(
            "/loki/api/v1/detected_labels",
            get(detected_labels).post(detected_labels),
        )
        .route("/loki/api/v1/patterns", get(patterns).post(patterns))
        .route("/loki/api/v1/drilldown-limits", get(drilldown_limits))
}

/// The required `query`, which must be a log query (a metric query is refused).
fn log_selector(params: &Params) -> Result<LogSelector, ApiError> {
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing required parameter \"query\""))?;
    match parse(query).map_err(|e| ApiError::bad_request(e.to_string()))? {
        Expr::Log(selector) => Ok(selector),
        Expr::Metric(_) => Err(ApiError::bad_request(format!(
            "only log selectors are supported, got a metric query: {query}"
        ))),
    }
}

/// A positive integer parameter with a default.
fn positive(params: &Params, key: &str, default: usize) -> Result<usize, ApiError> {
    match params.usize(key)? {
        None => Ok(default),
        Some(0) => Err(ApiError::bad_request(format!(
            "invalid parameter \"{key}\": {key} must be a positive value"
        ))),
        Some(n) => Ok(n),
    }
}

/// Runs a categorized, backward log query under `query_timeout`.
async fn sample_lines(
    state: &AppState,
    tenant: String,
    selector: LogSelector,
    range: TimeRange,
    limit: usize,
) -> Result<Vec<ResultStream>, ApiError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let timeout = state.config.limits_config.query_timeout;
    let query = LogQuery {
        tenant,
        selector,
        range,
        limit,
        direction: Direction::Backward,
        categorize_labels: true,
    };
    let outcome = tokio::time::timeout(timeout, execute(&state.store, query, cancel.clone())).await;
    match outcome {
        Err(_) => {
            cancel.store(true, Ordering::Relaxed);
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "query timed out after {} (limits_config.query_timeout)",
                    format_duration(timeout)
                ),
            ))
        }
        Ok(Err(LogQueryError::Pipeline(message))) => Err(ApiError::bad_request(message)),
        Ok(Err(LogQueryError::Cancelled)) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "query cancelled",
        )),
        Ok(Err(e @ LogQueryError::Storage(_))) => {
            Err(ApiError::internal("query failed in storage", &e))
        }
        Ok(Ok((streams, stats))) => {
            state
                .metrics
                .add(QUERY_BYTES_SCANNED, &[], stats.bytes_scanned as f64);
            Ok(streams)
        }
    }
}

/// Runs CPU-bound analysis off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, detected::DetectError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::internal("field detection failed", &e)),
        Err(e) => Err(ApiError::internal("field detection task failed", &e)),
    }
}

/// Tenant, selector, range, `line_limit` and `limit` of a detected fields request.
struct FieldsRequest {
    tenant: String,
    selector: LogSelector,
    range: TimeRange,
    line_limit: usize,
    limit: usize,
}

fn fields_request(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &[u8],
) -> Result<FieldsRequest, ApiError> {
    let tenant = tenant_of(headers, state.config.auth_enabled)?;
    let params = Params::parse(raw, Some(body))?;
    let selector = log_selector(&params)?;
    let range = time_range(&params, DEFAULT_QUERY_SINCE)?;
    check_query_length(state, range)?;
    let line_limit = positive(&params, "line_limit", DEFAULT_DETECTED_LIMIT)?;
    let max = state.config.limits_config.max_entries_limit_per_query;
    if line_limit > max {
        return Err(ApiError::bad_request(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({line_limit} > {max})"
        )));
    }
    let limit = positive(&params, "limit", DEFAULT_DETECTED_LIMIT)?;
    // `step` is accepted (Grafana sends it) and unused, as in Loki.
    params.duration("step")?;
    Ok(FieldsRequest {
        tenant,
        selector,
        range,
        line_limit,
        limit,
    })
}

/// `{"fields":[…],"limit":N}`; `limit` only when fields were found, as in Loki.
#[derive(Serialize)]
struct FieldsOut {
    fields: Vec<FieldOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
}

/// Loki's `DetectedField` JSON: `parsers` is `null` for structured metadata only,
/// `jsonPath` is left out unless the json parser found the field.
#[derive(Serialize)]
struct FieldOut {
    label: String,
    #[serde(rename = "type")]
    field_type: &'static str,
    cardinality: u64,
    parsers: Option<Vec<&'static str>>,
    #[serde(rename = "jsonPath", skip_serializing_if = "Option::is_none")]
    json_path: Option<Vec<String>>,
}

impl From<DetectedField> for FieldOut {
    fn from(f: DetectedField) -> Self {
        FieldOut {
            label: f.label,
            field_type: f.field_type.as_str(),
            cardinality: f.cardinality,
            parsers: (!f.parsers.is_empty())
                .then(|| f.parsers.iter().map(|p| p.as_str()).collect()),
            json_path: f.json_path,
        }
    }
}

async fn detected_fields(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let request = fields_request(&state, &headers, raw.as_deref(), &body)?;
        let limit = request.limit;
        let streams = sample_lines(
            &state,
            request.tenant,
            request.selector,
            request.range,
            request.line_limit,
        )
        .await?;
        let fields = blocking(move || detect_fields(detected::entries(&streams), limit)).await?;
        let out = FieldsOut {
            limit: (!fields.is_empty()).then_some(limit),
            fields: fields.into_iter().map(FieldOut::from).collect(),
        };
        Ok(Json(out).into_response())
    }
    .await;
    observe(&state, "detected_fields", started, result)
}

/// `{"values":[…],"limit":N}`; `limit` only when values were found, as in Loki.
#[derive(Serialize)]
struct ValuesOut {
    values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
}

async fn detected_field_values(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let request = fields_request(&state, &headers, raw.as_deref(), &body)?;
        let limit = request.limit;
        let streams = sample_lines(
            &state,
            request.tenant,
            request.selector,
            request.range,
            request.line_limit,
        )
        .await?;
        let values =
            blocking(move || detect_field_values(detected::entries(&streams), &name, limit))
                .await?;
        let out = ValuesOut {
            limit: (!values.is_empty()).then_some(limit),
            values,
        };
        Ok(Json(out).into_response())
    }
    .await;
    observe(&state, "detected_field_values", started, result)
}

#[derive(Serialize)]
struct LabelsOut {
    #[serde(rename = "detectedLabels")]
    detected_labels: Vec<LabelOut>,
}

#[derive(Serialize)]
struct LabelOut {
    label: String,
    cardinality: u64,
}

impl From<DetectedLabel> for LabelOut {
    fn from(l: DetectedLabel) -> Self {
        LabelOut {
            label: l.label,
            cardinality: l.cardinality,
        }
    }
}

async fn detected_labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let tenant = tenant_of(&headers, state.config.auth_enabled)?;
        let params = Params::parse(raw.as_deref(), Some(&body))?;
        let range = time_range(&params, DEFAULT_LABELS_SINCE)?;
        // The query is optional; only its stream matchers count.
        let matchers = match params.get("query") {
            Some(_) => log_selector(&params)?.matchers,
            None => Vec::new(),
        };
        let series = state
            .store
            .series(&tenant, &matchers, range)
            .await
            .map_err(|e| ApiError::internal("series failed", &e))?;
        let out = LabelsOut {
            detected_labels: detect_labels(&series)
                .into_iter()
                .map(LabelOut::from)
                .collect(),
        };
        Ok(Json(out).into_response())
    }
    .await;
    observe(&state, "detected_labels", started, result)
}

/// Loki's default step: the range / 250, at least one second.
fn default_step(range: TimeRange) -> Duration {
    let seconds = ((range.end_ns - range.start_ns) as f64 / 1e9 / 250.0)
        .floor()
        .max(1.0);
    Duration::from_secs_f64(seconds)
}

#[derive(Serialize)]
struct PatternsOut {
    status: &'static str,
    data: Vec<PatternOut>,
}

/// One pattern of one level: samples are `[unix seconds, lines]`.
#[derive(Serialize)]
struct PatternOut {
    pattern: String,
    level: String,
    samples: Vec<(i64, u64)>,
}

/// Mines the lines of `streams` per detected level, counting each line in the
/// step-aligned bucket of its timestamp.
fn mine_patterns(streams: &[ResultStream], step_ns: i64) -> Vec<PatternOut> {
    // Drain is order-sensitive: train oldest first, as lines arrive at ingest in Loki.
    let mut lines: Vec<(i64, &str, &ResultStream, usize)> = streams
        .iter()
        .flat_map(|s| {
            s.entries
                .iter()
                .enumerate()
                .map(move |(i, e)| (e.timestamp_ns, e.line.as_str(), s, i))
        })
        .collect();
    lines.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut miners: HashMap<String, Drain> = HashMap::new();
    for (ts, line, stream, index) in lines {
        let metadata = &stream.entries[index].structured_metadata;
        let level = detected::detect_level(&stream.labels, metadata, line);
        let bucket_ns = ts - ts.rem_euclid(step_ns);
        miners
            .entry(level)
            .or_default()
            .train(line, bucket_ns.div_euclid(1_000_000_000));
    }
    let mut out: Vec<(u64, PatternOut)> = miners
        .into_iter()
        .flat_map(|(level, drain)| {
            drain.patterns().into_iter().map(move |p: MinedPattern| {
                (
                    p.total(),
                    PatternOut {
                        pattern: p.pattern,
                        level: level.clone(),
                        samples: p.samples,
                    },
                )
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.level.cmp(&b.1.level))
            .then_with(|| a.1.pattern.cmp(&b.1.pattern))
    });
    out.into_iter().map(|(_, p)| p).collect()
}

async fn patterns(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = async {
        let tenant = tenant_of(&headers, state.config.auth_enabled)?;
        let params = Params::parse(raw.as_deref(), Some(&body))?;
        let selector = log_selector(&params)?;
        let range = time_range(&params, DEFAULT_QUERY_SINCE)?;
        check_query_length(&state, range)?;
        let step = match params.duration("step")? {
            Some(step) if step.is_zero() => {
                return Err(ApiError::bad_request(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer",
                ));
            }
            Some(step) => step,
            None => default_step(range),
        };
        let step_ns = step.max(MIN_PATTERN_STEP).as_nanos().min(i64::MAX as u128) as i64;
        let streams = sample_lines(&state, tenant, selector, range, MAX_PATTERN_LINES).await?;
        let data = blocking(move || Ok(mine_patterns(&streams, step_ns))).await?;
        Ok(Json(PatternsOut {
            status: "success",
            data,
        })
        .into_response())
    }
    .await;
    observe(&state, "patterns", started, result)
}

/// Loki's `DrilldownConfigResponse`: the tenant limits Loki publishes by default
/// (`tenant_limits_allow_publish`), filled from our configuration and capabilities.
async fn drilldown_limits(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let result = (|| {
        tenant_of(&headers, state.config.auth_enabled)?;
        let limits = &state.config.limits_config;
        let duration = |d: Duration| format_duration(d);
        let body = serde_json::json!({
            "limits": {
                // Derived at ingest (ingest/normalize).
                "discover_log_levels": limits.discover_log_levels,
                "discover_service_name": limits.discover_service_name,
                "log_level_fields": if limits.log_level_fields.is_empty() {
                    crate::ingest::normalize::level::DEFAULT_LEVEL_FIELDS.to_vec()
                } else {
                    limits.log_level_fields.iter().map(String::as_str).collect()
                },
                "max_entries_limit_per_query": limits.max_entries_limit_per_query,
                "max_line_size_truncate": limits.max_line_size_truncate,
                "max_query_bytes_read": "0B",
                "max_query_length": duration(limits.max_query_length),
                "max_query_lookback": "0s",
                "max_query_range": "0s",
                "max_query_series": limits.max_query_series,
                "metric_aggregation_enabled": false,
                "pattern_persistence_enabled": false,
                "query_timeout": duration(limits.query_timeout),
                "retention_period": duration(limits.retention_period),
                "retention_stream": [],
                "volume_enabled": true,
                "volume_max_series": VOLUME_MAX_SERIES,
            },
            "pattern_ingester_enabled": true,
            "version": env!("CARGO_PKG_VERSION"),
        });
        Ok(Json(body).into_response())
    })();
    observe(&state, "drilldown_limits", started, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::log_query::ResultEntry;
    use inferscope_model::Labels;

    #[test]
    fn patterns_are_split_by_level_and_bucketed_by_step() {
        let entry = |ts: i64, line: &str| ResultEntry {
            timestamp_ns: ts,
            line: line.to_string(),
            structured_metadata: vec![],
            parsed: vec![],
        };
        let s = 1_000_000_000;
        let streams = vec![ResultStream {
            labels: Labels::from_pairs([("app", "gw")]),
            entries: vec![
                entry(125 * s, "level=info msg=done took=5ms"),
                entry(61 * s, "level=info msg=done took=7ms"),
                entry(60 * s, "level=info msg=done took=9ms"),
                entry(59 * s, "level=error msg=failed code=500"),
            ],
        }];
        let out = mine_patterns(&streams, 60 * s);
        type Row<'a> = (&'a str, &'a str, Vec<(i64, u64)>);
        let summary: Vec<Row<'_>> = out
            .iter()
            .map(|p| (p.pattern.as_str(), p.level.as_str(), p.samples.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "level=info msg=done took=<_>",
                    "info",
                    vec![(60, 2), (120, 1)]
                ),
                ("level=error msg=failed code=500", "error", vec![(0, 1)]),
            ]
        );
    }

    #[test]
    fn field_json_shape_matches_loki() {
        let out = FieldsOut {
            limit: Some(1000),
            fields: vec![
                FieldOut::from(DetectedField {
                    label: "latency_ms".into(),
                    field_type: detected::FieldType::Int,
                    cardinality: 37,
                    parsers: vec![detected::FieldParser::Json],
                    json_path: Some(vec!["latency_ms".into()]),
                }),
                FieldOut::from(DetectedField {
                    label: "trace_id".into(),
                    field_type: detected::FieldType::String,
                    cardinality: 2,
                    parsers: vec![],
                    json_path: None,
                }),
            ],
        };
        assert_eq!(
            serde_json::to_value(&out).expect("json"),
            serde_json::json!({"fields": [
                {"label": "latency_ms", "type": "int", "cardinality": 37,
                 "parsers": ["json"], "jsonPath": ["latency_ms"]},
                {"label": "trace_id", "type": "string", "cardinality": 2, "parsers": null},
            ], "limit": 1000})
        );
        let empty = FieldsOut {
            fields: vec![],
            limit: None,
        };
        assert_eq!(
            serde_json::to_value(&empty).expect("json"),
            serde_json::json!({"fields": []})
        );
    }
}
