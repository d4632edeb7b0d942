//! Loki's log deletion API (served by Loki's compactor), on the paths and
//! with the messages of Loki's `pkg/compactor/deletion/request_handler.go`:
//!
//! * `POST|PUT /loki/api/v1/delete?query=…&start=…[&end=…][&max_interval=…]`
//!   → 204 once the request is durable; its entries are hidden from every
//!   query from then on.
//! * `GET /loki/api/v1/delete` → the tenant's requests, oldest first.
//! * `DELETE /loki/api/v1/delete?request_id=…` → 204; cancels a request whose
//!   removal from storage has not started (`compactor.delete_request_cancel_period`).
//!
//! The query is a LogQL log selector with optional line filters
//! ([`compile_delete_query`]); the store persists its text and compiles it
//! again with [`LogqlDeleteCompiler`] when it opens.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use inferscope_query::{Expr, LineFilter, Stage, parse};
use inferscope_storage::{
    CancelOutcome, DeleteCompiler, DeleteConfig, DeleteRequest, DeleteSelector, DeleteStatus,
};
use serde::Serialize;

use crate::config::Config;
use crate::error::ApiError;
use crate::http::params::{Params, now_ns, parse_duration_param, parse_timestamp_ns};
use crate::metrics::DELETE_REQUESTS_RECEIVED;
use crate::query::log_query::PushedDownFilter;
use crate::state::AppState;
use crate::tenant::tenant_of;

/// The deletion routes (Loki's compactor mounts exactly these).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route(
        "/loki/api/v1/delete",
        get(list).post(add).put(add).delete(cancel),
    )
}

/// The store's deletion settings for `config`: LogQL compiler and Loki's
/// `compactor.delete_request_cancel_period`.
pub fn store_delete_config(config: &Config) -> DeleteConfig {
    DeleteConfig {
        compiler: Some(Arc::new(LogqlDeleteCompiler)),
        cancel_period: config.compactor.delete_request_cancel_period,
    }
}

/// Compiles delete queries with the LogQL parser, for the store.
#[derive(Debug)]
pub struct LogqlDeleteCompiler;

impl DeleteCompiler for LogqlDeleteCompiler {
    fn compile(&self, query: &str) -> Result<DeleteSelector, String> {
        compile_delete_query(query).map(|(selector, _)| selector)
    }
}

/// A delete query: a log selector and only line filters after it (they see
/// the raw line, so the storage can apply them). Returns the selector and
/// whether it has line filters. Errors say why, without Loki's
/// `invalid query expression: ` prefix.
pub fn compile_delete_query(query: &str) -> Result<(DeleteSelector, bool), String> {
    let selector = match parse(query).map_err(|e| e.to_string())? {
        Expr::Log(selector) => selector,
        Expr::Metric(_) => return Err("only log selector is supported".into()),
    };
    let mut filters = Vec::new();
    for stage in &selector.stages {
        match stage {
            Stage::LineFilter(f) => filters.push(f),
            _ => {
                return Err(
                    "only line filters (|=, !=, |~, !~, |>, !>) may follow the stream selector of a delete query"
                        .into(),
                );
            }
        }
    }
    let has_filter = !filters.is_empty();
    let line_filter = if has_filter {
        let compiled = LineFilter::compile(filters).map_err(|e| e.to_string())?;
        Some(Arc::new(PushedDownFilter(compiled)) as Arc<dyn inferscope_storage::LineFilter>)
    } else {
        None
    };
    Ok((
        DeleteSelector {
            matchers: selector.matchers,
            line_filter,
        },
        has_filter,
    ))
}

/// One request as Loki lists it: times in (float) seconds.
#[derive(Debug, Serialize)]
struct DeleteRequestOut {
    request_id: String,
    start_time: serde_json::Number,
    end_time: serde_json::Number,
    query: String,
    status: &'static str,
    created_at: serde_json::Number,
}

/// Seconds as Prometheus' `model.Time` prints them (millisecond precision,
/// no trailing zeros): `1700000000`, `1700000000.5`.
fn seconds(ns: i64) -> serde_json::Number {
    let ms = ns.div_euclid(1_000_000);
    if ms % 1000 == 0 {
        serde_json::Number::from(ms / 1000)
    } else {
        serde_json::Number::from_f64(ms as f64 / 1000.0).unwrap_or_else(|| (ms / 1000).into())
    }
}

impl From<DeleteRequest> for DeleteRequestOut {
    fn from(r: DeleteRequest) -> Self {
        DeleteRequestOut {
            start_time: seconds(r.start_ns),
            end_time: seconds(r.end_ns),
            created_at: seconds(r.created_at_ns),
            status: match r.status {
                DeleteStatus::Received => "received",
                DeleteStatus::Processed => "processed",
            },
            request_id: r.request_id,
            query: r.query,
        }
    }
}

fn finish(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn add(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    finish(add_inner(&state, &headers, raw.as_deref(), &body).await)
}

async fn add_inner(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let tenant = tenant_of(headers, state.config.auth_enabled)?;
    let params = Params::parse(raw, Some(body))?;
    let (query, start_ns, end_ns) = validate_add(&params, now_ns())?;
    state
        .store
        .add_delete(&tenant, query, start_ns, end_ns)
        .await
        .map_err(|e| ApiError::internal("error adding delete request to the store", &e))?;
    // After the request is visible to scans, so no result computed without it survives.
    state.results_cache.invalidate(&tenant);
    state
        .metrics
        .add(DELETE_REQUESTS_RECEIVED, &[("tenant", &tenant)], 1.0);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Checks the parameters of a new request as Loki does, in Loki's order and
/// words; returns the query and the inclusive range in nanoseconds.
///
/// `max_interval` is validated but not used: Loki splits a request with
/// line filters into intervals of that length for its compactor's sake and
/// lists them merged back as one; the store applies a request whole.
fn validate_add(params: &Params, now: i64) -> Result<(&str, i64, i64), ApiError> {
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("query not set"))?;
    let (_, has_filter) = compile_delete_query(query)
        .map_err(|e| ApiError::bad_request(format!("invalid query expression: {e}")))?;
    let start = params
        .get("start")
        .ok_or_else(|| ApiError::bad_request("start time not set"))?;
    let start = parse_timestamp_ns(start).map_err(|_| {
        ApiError::bad_request("invalid start time: require unix seconds or RFC3339 format")
    })?;
    let end = match params.get("end") {
        None => now,
        Some(end) => parse_timestamp_ns(end).map_err(|_| {
            ApiError::bad_request("invalid end time: require unix seconds or RFC3339 format")
        })?,
    };
    if end > now {
        return Err(ApiError::bad_request(
            "deletes in the future are not allowed",
        ));
    }
    if start > end {
        return Err(ApiError::bad_request(
            "start time can't be greater than end time",
        ));
    }
    if has_filter {
        let span = (end - start) as u128;
        match params.get("max_interval") {
            Some(text) => {
                let interval = parse_duration_param(text)
                    .ok()
                    .filter(|d| d.as_secs() >= 1)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid max_interval: valid time units are 's', 'm', 'h'",
                        )
                    })?;
                if interval.as_nanos() > span {
                    return Err(ApiError::bad_request(format!(
                        "max_interval can't be greater than the interval to be deleted ({})",
                        go_duration(span)
                    )));
                }
            }
            None if span < 1_000_000_000 => {
                return Err(ApiError::bad_request(
                    "difference between start time and end time must be at least one second",
                ));
            }
            None => {}
        }
    }
    Ok((query, start, end))
}

/// A duration as Go's `time.Duration.String` prints it (`1h0m0s`, `1.5s`,
/// `250ms`), for Loki's messages.
fn go_duration(ns: u128) -> String {
    fn trimmed(whole: u128, frac: u128, digits: usize) -> String {
        if frac == 0 {
            return whole.to_string();
        }
        let f = format!("{frac:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trimmed(ns / 1_000, ns % 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trimmed(ns / 1_000_000, ns % 1_000_000, 6));
    }
    let secs = ns / 1_000_000_000;
    let s = trimmed(secs % 60, ns % 1_000_000_000, 9);
    let (h, m) = (secs / 3600, secs / 60 % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    finish(
        async {
            let tenant = tenant_of(&headers, state.config.auth_enabled)?;
            let out: Vec<DeleteRequestOut> = state
                .store
                .delete_requests(&tenant)
                .into_iter()
                .map(DeleteRequestOut::from)
                .collect();
            Ok(Json(out).into_response())
        }
        .await,
    )
}

async fn cancel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    finish(
        async {
            let tenant = tenant_of(&headers, state.config.auth_enabled)?;
            let params = Params::parse(raw.as_deref(), Some(&body))?;
            let request_id = params.get("request_id").unwrap_or_default();
            let outcome = state
                .store
                .cancel_delete(&tenant, request_id)
                .await
                .map_err(|e| ApiError::internal("error cancelling the delete request", &e))?;
            match outcome {
                CancelOutcome::Cancelled => {
                    // The entries are visible again: results without them are stale.
                    state.results_cache.invalidate(&tenant);
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                CancelOutcome::NotFound => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "could not find delete request with given id",
                )),
                CancelOutcome::AlreadyProcessing => Err(ApiError::bad_request(
                    "deletion of request which is in process or already processed is not allowed",
                )),
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q), None).expect("params")
    }

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn err(q: &str) -> String {
        validate_add(&params(q), NOW).expect_err(q).message
    }

    #[test]
    fn loki_messages_for_bad_input() {
        assert_eq!(err("start=1"), "query not set");
        assert_eq!(err("query=%7Bapp%3D%22a%22%7D"), "start time not set");
        assert_eq!(
            err("query=%7Bapp%3D%22a%22%7D&start=yesterday"),
            "invalid start time: require unix seconds or RFC3339 format"
        );
        assert_eq!(
            err("query=%7Bapp%3D%22a%22%7D&start=1&end=x"),
            "invalid end time: require unix seconds or RFC3339 format"
        );
        assert_eq!(
            err("query=%7Bapp%3D%22a%22%7D&start=1699999999&end=1699999998"),
            "start time can't be greater than end time"
        );
        assert_eq!(
            err("query=%7Bapp%3D%22a%22%7D&start=1&end=1800000000"),
            "deletes in the future are not allowed"
        );
        assert!(
            err("query=%7Bapp%3D%22a%22&start=1")
                .starts_with("invalid query expression: parse error at line 1")
        );
        assert_eq!(
            err("query=count_over_time(%7Bapp%3D%22a%22%7D%5B5m%5D)&start=1"),
            "invalid query expression: only log selector is supported"
        );
        assert!(
            err("query=%7Bapp%3D%22a%22%7D%20%7C%20json&start=1").contains("only line filters")
        );
        assert_eq!(
            err("query=%7Bapp%3D%22a%22%7D%20%7C%3D%20%22x%22&start=1699999999.5"),
            "difference between start time and end time must be at least one second"
        );
        assert_eq!(
            err("query=%7Bapp%3D%22a%22%7D%20%7C%3D%20%22x%22&start=1&max_interval=0.5s"),
            "invalid max_interval: valid time units are 's', 'm', 'h'"
        );
        assert_eq!(
            err("query=%7Bapp%3D%22a%22%7D%20%7C%3D%20%22x%22&start=1699996400&max_interval=2h"),
            "max_interval can't be greater than the interval to be deleted (1h0m0s)"
        );
    }

    #[test]
    fn accepted_requests() {
        let p = params("query=%7Bapp%3D%22a%22%7D&start=1699990000");
        assert_eq!(
            validate_add(&p, NOW).expect("valid"),
            ("{app=\"a\"}", 1_699_990_000_000_000_000, NOW)
        );
        let p = params(
            "query=%7Bapp%3D%22a%22%7D%20%7C%3D%20%22x%22&start=2023-11-14T21:13:20Z&end=1700000000&max_interval=10m",
        );
        assert_eq!(
            validate_add(&p, NOW).expect("valid"),
            (
                "{app=\"a\"} |= \"x\"",
                1_699_996_400_000_000_000,
                1_700_000_000_000_000_000
            )
        );
        let (selector, has_filter) =
            compile_delete_query(r#"{app="a"} |= "secret" != "keep""#).expect("compiles");
        assert!(has_filter);
        let f = selector.line_filter.expect("filter");
        assert!(f.keep(b"a secret"));
        assert!(!f.keep(b"a secret to keep"));
        assert!(!f.keep(b"public"));
    }

    #[test]
    fn listed_like_loki() {
        assert_eq!(seconds(1_700_000_000_000_000_000).to_string(), "1700000000");
        assert_eq!(
            seconds(1_700_000_000_500_999_999).to_string(),
            "1700000000.5"
        );
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(go_duration(250_000_000), "250ms");
        let out = DeleteRequestOut::from(DeleteRequest {
            request_id: "0a1b2c3d".into(),
            query: "{app=\"a\"}".into(),
            start_ns: 1_000_000_000,
            end_ns: 2_000_000_000,
            created_at_ns: 3_000_000_000,
            status: DeleteStatus::Processed,
            processing_started_at_ns: Some(3_000_000_001),
            processed_at_ns: Some(4_000_000_000),
        });
        assert_eq!(
            serde_json::to_string(&out).expect("json"),
            r#"{"request_id":"0a1b2c3d","start_time":1,"end_time":2,"query":"{app=\"a\"}","status":"processed","created_at":3}"#
        );
    }
}
