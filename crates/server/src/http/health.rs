//! Liveness and identity: `/ready`, `/metrics`, `/loki/api/v1/status/buildinfo`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde_json::json;

use crate::state::AppState;

/// The health routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ready", get(|| async { "ready\n" }))
        .route("/metrics", get(metrics))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .route("/flush", post(flush))
}

/// Loki's ingester `/flush`: writes the whole in-memory head into blocks.
async fn flush(State(state): State<Arc<AppState>>) -> Result<StatusCode, crate::error::ApiError> {
    state
        .store
        .flush()
        .await
        .map_err(|e| crate::error::ApiError::internal("flush failed", &e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn buildinfo() -> Json<serde_json::Value> {
    // Grafana and logcli read `version`; Loki's field names are kept.
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("INFERSCOPE_GIT_REVISION").unwrap_or("unknown"),
        "branch": "main",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "application": "inferscope",
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let s = state.store.metrics();
    let d = state.store.delete_metrics();
    let (cache_hits, cache_misses) = state.results_cache.counters();
    let (cache_bytes, cache_splits) = state.results_cache.size();
    let gauges = [
        (
            "inferscope_query_results_cache_hits_total",
            "Metric query splits answered from the results cache.",
            "counter",
            cache_hits as f64,
        ),
        (
            "inferscope_query_results_cache_misses_total",
            "Cacheable metric query splits that had to be evaluated.",
            "counter",
            cache_misses as f64,
        ),
        (
            "inferscope_query_results_cache_bytes",
            "Approximate bytes held by the results cache.",
            "gauge",
            cache_bytes as f64,
        ),
        (
            "inferscope_query_results_cache_entries",
            "Splits held by the results cache.",
            "gauge",
            cache_splits as f64,
        ),
        (
            "inferscope_wal_bytes_written_total",
            "Bytes written to the write-ahead log.",
            "counter",
            s.wal_bytes as f64,
        ),
        (
            "inferscope_wal_fsyncs_total",
            "fsync calls on the write-ahead log.",
            "counter",
            s.wal_fsyncs as f64,
        ),
        (
            "inferscope_head_bytes",
            "Bytes held in the in-memory head.",
            "gauge",
            s.head_bytes as f64,
        ),
        (
            "inferscope_head_streams",
            "Streams in the in-memory head.",
            "gauge",
            s.head_streams as f64,
        ),
        (
            "inferscope_blocks",
            "Blocks in the store.",
            "gauge",
            s.blocks as f64,
        ),
        (
            "inferscope_block_bytes",
            "Bytes of all blocks.",
            "gauge",
            s.block_bytes as f64,
        ),
        (
            "inferscope_flushes_total",
            "Head flushes into blocks.",
            "counter",
            s.flushes as f64,
        ),
        (
            "inferscope_compactions_total",
            "Block compactions.",
            "counter",
            s.compactions as f64,
        ),
        (
            "inferscope_corrupt_blocks_skipped_total",
            "Blocks found corrupt and skipped.",
            "counter",
            s.corrupt_blocks_skipped as f64,
        ),
        (
            "inferscope_id_sidecars_corrupt_total",
            "Id index sidecars found corrupt or missing (their blocks are scanned in full).",
            "counter",
            s.id_sidecars_corrupt as f64,
        ),
        (
            "inferscope_wal_tail_truncations_total",
            "Half-written WAL tails truncated at startup.",
            "counter",
            s.wal_tail_truncations as f64,
        ),
        (
            "inferscope_deleted_lines_total",
            "Log lines removed from storage by delete requests (Loki's loki_compactor_deleted_lines).",
            "counter",
            d.deleted_lines as f64,
        ),
        (
            "inferscope_delete_requests_processed_total",
            "Delete requests applied to storage.",
            "counter",
            d.requests_processed as f64,
        ),
        (
            "inferscope_delete_requests_cancelled_total",
            "Delete requests cancelled.",
            "counter",
            d.requests_cancelled as f64,
        ),
        (
            "inferscope_delete_requests_pending",
            "Delete requests not yet applied to storage (their entries are hidden from queries).",
            "gauge",
            d.requests_pending as f64,
        ),
        (
            "inferscope_uptime_seconds",
            "Seconds since the server started.",
            "gauge",
            state.started.elapsed().as_secs_f64(),
        ),
    ];
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
}
