//! Trace and request lookup: `GET /api/v1/trace/{id}`.
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
    Router::new().route("/api/v1/trace/{id}", get(trace))
}

async fn trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let started = Instant::now();
    let result = trace_inner(&state, &headers, &id, raw.as_deref(), started).await;
    observe(&state, "trace", started, result)
}

/// One confirmed entry: time, stream labels, line, metadata.
type Found = (i64, Labels, String, Vec<(String, String)>);

async fn trace_inner(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    raw: Option<&str>,
    started: Instant,
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
    let (mut found, scanned) = tokio::task::spawn_blocking(move || {
        let results: Vec<Result<(Vec<Found>, inferscope_storage::ScanStats), _>> = tasks
            .par_iter()
            .map(|t| {
                let mut out = Vec::new();
                let stats = t.run(&mut |labels, e| {
                    if query.matches(e.line, &e.structured_metadata) {
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
    let mut response =
        Json(Success::new(StreamsData::new(&streams, &stats, categorize))).into_response();
    let h = response.headers_mut();
    for (name, value) in [
        ("x-inferscope-blocks-read", lookup.blocks_read),
        ("x-inferscope-blocks-skipped", lookup.blocks_skipped),
    ] {
        h.insert(name, HeaderValue::from(value));
    }
    Ok(response)
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
