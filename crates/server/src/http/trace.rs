//! Trace, request and session lookup: `GET /api/v1/trace/{id}` and
//! `GET /api/v1/session/{id}`.
//!
//! Every entry of every stream of the tenant that carries the id (a trace
//! id or a request id, in structured metadata or in a JSON or logfmt field;
//! see `inferscope_storage::ids`) within `[start, end)`, oldest first, in the
//! shape of a Loki `query_range` streams result. Storage's id index picks the
//! head streams and block rows that may hold the id; blocks whose index does
//! not hold it are never fetched; each candidate entry is then confirmed.
//!
//! Parameters: `start`, `end`, `since` as in `query_range` (default: the last
//! 7 days, a trace rarely spans more, and retention bounds it anyway),
//! `limit` (default 1000, at most `max_entries_limit_per_query`): the
//! *oldest* `limit` entries are returned. With
//! `X-Loki-Response-Encoding-Flags: categorize-labels` the structured
//! metadata is returned apart; otherwise it is merged into the stream
//! labels, as Loki does.
//!
//! A session lookup keeps the entries whose `session_id` or `mcp_session_id`
//! (structured metadata, as OTLP access logs carry `session.id` and
//! `mcp.session.id`, or a JSON field) is the id, and adds `data.session`: the
//! requests of the session, their tokens and their estimated cost, summed from
//! the access logs' `gen_ai_usage_total_tokens` and `estimated_cost_usd`. Only
//! the access logs the sampling policy kept are listed; the session's exact
//! totals of dropped requests are in the `genai_access_log_*` counters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use inferscope_model::Labels;
use inferscope_storage::ids::MAX_ID_LEN;
use inferscope_storage::{IdLookupStats, IdQuery};
use rayon::prelude::*;

use crate::error::ApiError;
use crate::http::loki_query::{observe, time_range};
use crate::http::params::Params;
use crate::metrics::{TRACE_BLOCKS, TRACE_LOOKUPS};
use crate::query::log_query::{QueryStats, ResultEntry, ResultStream};
use crate::query::response::{StreamsData, Success};
use crate::state::AppState;
use crate::tenant::tenant_of;

/// Default range of a lookup.
pub const DEFAULT_TRACE_SINCE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default `limit`.
const DEFAULT_TRACE_LIMIT: usize = 1000;
/// Header Grafana sends to get labels by category.
const ENCODING_FLAGS_HEADER: &str = "X-Loki-Response-Encoding-Flags";

/// The lookup routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/trace/{id}", get(trace))
        .route("/api/v1/session/{id}", get(session))
}

/// Which entries carrying the id are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Any id field (trace, request, session).
    AnyId,
    /// Only a session field.
    Session,
}

/// Session id fields, in structured metadata and in JSON lines.
const SESSION_FIELDS: [&str; 2] = ["session_id", "mcp_session_id"];

impl Scope {
    fn confirms(self, id: &str, line: &str, meta: &inferscope_storage::MetadataRef<'_>) -> bool {
        match self {
            Scope::AnyId => true,
            Scope::Session => {
                meta.iter()
                    .any(|(k, v)| v == id && SESSION_FIELDS.contains(&k))
                    || SESSION_FIELDS
                        .iter()
                        .any(|f| line.contains(&format!("\"{f}\":\"{id}\"")))
            }
        }
    }
}

async fn session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let started = Instant::now();
    let result = lookup(
        &state,
        &headers,
        &id,
        raw.as_deref(),
        started,
        Scope::Session,
    )
    .await;
    observe(&state, "session", started, result)
}

async fn trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let started = Instant::now();
    let result = lookup(&state, &headers, &id, raw.as_deref(), started, Scope::AnyId).await;
    observe(&state, "trace", started, result)
}

/// One confirmed entry: time, stream labels, line, metadata.
type Found = (i64, Labels, String, Vec<(String, String)>);

async fn lookup(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    raw: Option<&str>,
    started: Instant,
    scope: Scope,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(headers, state.config.auth_enabled)?;
    let id = id.trim();
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ApiError::bad_request(format!(
            "invalid id: it must have 1 to {MAX_ID_LEN} bytes"
        )));
    }
    let params = Params::parse(raw, None)?;
    let range = time_range(&params, DEFAULT_TRACE_SINCE)?;
    let limit = params.usize("limit")?.unwrap_or(DEFAULT_TRACE_LIMIT);
    let max = state.config.limits_config.max_entries_limit_per_query;
    if limit > max {
        return Err(ApiError::bad_request(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"
        )));
    }
    let limit = limit.max(1);
    let categorize = headers
        .get(ENCODING_FLAGS_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|f| f.trim() == "categorize-labels"));
    let query = IdQuery::new(&[id]).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (tasks, lookup) = state
        .store
        .lookup_ids(&tenant, &query, range)
        .await
        .map_err(|e| ApiError::internal("trace lookup", &e))?;
    record_lookup(state, &lookup);
    let tasks_run = tasks.len() as u64;
    let wanted = id.to_string();
    let (mut found, scanned) = tokio::task::spawn_blocking(move || {
        let results: Vec<Result<(Vec<Found>, inferscope_storage::ScanStats), _>> = tasks
            .par_iter()
            .map(|t| {
                let mut out = Vec::new();
                let stats = t.run(&mut |labels, e| {
                    if query.matches(e.line, &e.structured_metadata)
                        && scope.confirms(&wanted, e.line, &e.structured_metadata)
                    {
                        out.push((
                            e.timestamp_ns,
                            labels.clone(),
                            e.line.to_string(),
                            e.structured_metadata.to_vec(),
                        ));
                    }
                })?;
                Ok::<_, inferscope_storage::StorageError>((out, stats))
            })
            .collect();
        let mut found = Vec::new();
        let mut scanned = inferscope_storage::ScanStats::default();
        for r in results {
            let (f, s) = r?;
            found.extend(f);
            scanned += s;
        }
        Ok::<_, inferscope_storage::StorageError>((found, scanned))
    })
    .await
    .map_err(|e| ApiError::internal("trace lookup", &e))?
    .map_err(|e| ApiError::internal("trace lookup", &e))?;
    // Oldest first; ties in a stable order (stream, line).
    found.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    found.truncate(limit);
    let summary = (scope == Scope::Session).then(|| session_summary(&found));
    let streams = group(found, categorize);
    let stats = QueryStats {
        bytes_scanned: scanned.bytes_scanned,
        lines_scanned: scanned.lines_scanned,
        lines_post_filter: streams.iter().map(|s| s.entries.len() as u64).sum(),
        entries_returned: streams.iter().map(|s| s.entries.len() as u64).sum(),
        tasks_run,
        tasks_skipped: 0,
        exec_seconds: started.elapsed().as_secs_f64(),
    };
    let data = StreamsData::new(&streams, &stats, categorize);
    let mut response = match summary {
        None => Json(Success::new(data)).into_response(),
        Some(summary) => {
            let mut value = serde_json::to_value(&data)
                .map_err(|e| ApiError::internal("session response", &e))?;
            value["session"] = summary;
            Json(Success::new(value)).into_response()
        }
    };
    let h = response.headers_mut();
    for (name, value) in [
        ("x-inferscope-blocks-read", lookup.blocks_read),
        ("x-inferscope-blocks-skipped", lookup.blocks_skipped),
    ] {
        h.insert(name, HeaderValue::from(value));
    }
    Ok(response)
}

/// A session's requests, tokens and cost, from its access log entries.
fn session_summary(found: &[Found]) -> serde_json::Value {
    let (mut requests, mut tokens, mut cost) = (0u64, 0u64, 0.0f64);
    let mut models: std::collections::BTreeMap<String, u64> = Default::default();
    for (_, labels, _, meta) in found {
        let get = |k: &str| meta.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let is_request =
            labels.get("access_log").is_some() || get("gen_ai_request_model").is_some();
        if !is_request {
            continue;
        }
        requests += 1;
        tokens += get("gen_ai_usage_total_tokens")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        cost += get("estimated_cost_usd")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if let Some(model) = get("gen_ai_response_model").or(get("gen_ai_request_model")) {
            *models.entry(model.to_string()).or_insert(0) += 1;
        }
    }
    serde_json::json!({
        "requests": requests,
        "total_tokens": tokens,
        "estimated_cost_usd": cost,
        "models": models,
    })
}

fn record_lookup(state: &AppState, s: &IdLookupStats) {
    state.metrics.add(TRACE_LOOKUPS, &[], 1.0);
    for (outcome, n) in [
        ("skipped", s.blocks_skipped),
        ("read", s.blocks_read),
        ("unindexed", s.blocks_unindexed),
    ] {
        state
            .metrics
            .add(TRACE_BLOCKS, &[("outcome", outcome)], n as f64);
    }
}

/// Groups time-ordered entries into result streams (by stream labels, plus
/// the structured metadata unless categorizing), streams ordered by their
/// first entry.
fn group(found: Vec<Found>, categorize: bool) -> Vec<ResultStream> {
    let mut streams: Vec<ResultStream> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for (ts, labels, line, meta) in found {
        let labels = if categorize || meta.is_empty() {
            labels
        } else {
            let mut pairs = labels.as_pairs().to_vec();
            for (k, v) in &meta {
                if labels.get(k).is_none() {
                    pairs.push((k.clone(), v.clone()));
                }
            }
            Labels::from_pairs(pairs)
        };
        let slot = *index.entry(labels.clone()).or_insert_with(|| {
            streams.push(ResultStream {
                labels,
                entries: Vec::new(),
            });
            streams.len() - 1
        });
        streams[slot].entries.push(ResultEntry {
            timestamp_ns: ts,
            line,
            structured_metadata: if categorize { meta } else { Vec::new() },
            parsed: Vec::new(),
        });
    }
    streams
}
