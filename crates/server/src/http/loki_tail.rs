//! `GET /loki/api/v1/tail`: live tail over WebSocket, as logcli `--tail` and
//! Grafana's live view use it.
//!
//! The query is checked before the upgrade, so a bad one is a plain 400. Once
//! upgraded, the tailer subscribes to the push path (every accepted batch is
//! broadcast, see `ingest/accept.rs`), sends the stored history from `start`
//! (default: one hour ago, at most `limit` entries), then forwards each new
//! entry that matches the selector and passes the pipeline, held back
//! `delay_for` seconds and sent in timestamp order. Like Loki's, a tail
//! follows what arrives, whatever its timestamp. A client too slow for the
//! feed is told how many batches it missed through `dropped_entries`. The
//! loop ends as soon as the client closes or a send fails.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use inferscope_model::{Direction, Labels, TimeRange, matches_all};
use inferscope_query::{Expr, LogSelector, parse};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::http::params::{Params, now_ns};
use crate::query::log_query::{LogQuery, execute};
use crate::query::response::LabelsOut;
use crate::state::AppState;
use crate::tenant::tenant_of;

/// Loki's cap on `delay_for`.
const MAX_DELAY_FOR: Duration = Duration::from_secs(5);
/// How often held-back entries are sent.
const SEND_INTERVAL: Duration = Duration::from_millis(200);

/// The tail route.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/loki/api/v1/tail", get(tail))
}

struct Tail {
    tenant: String,
    selector: LogSelector,
    limit: usize,
    delay: Duration,
    from_ns: i64,
}

async fn tail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(&headers, state.config.auth_enabled)?;
    let params = Params::parse(raw.as_deref(), None)?;
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing required parameter \"query\""))?;
    let Expr::Log(selector) = parse(query).map_err(|e| ApiError::bad_request(e.to_string()))?
    else {
        return Err(ApiError::bad_request("tail queries must be log queries"));
    };
    selector
        .pipeline()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let delay = params.duration("delay_for")?.unwrap_or_default();
    if delay > MAX_DELAY_FOR {
        return Err(ApiError::bad_request("delay_for can't be greater than 5"));
    }
    let limit = params.usize("limit")?.unwrap_or(100).max(1);
    let max = state.config.limits_config.max_entries_limit_per_query;
    if limit > max {
        return Err(ApiError::bad_request(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"
        )));
    }
    let from_ns = params
        .time_ns("start")?
        .unwrap_or_else(|| now_ns() - 3_600_000_000_000);
    let tail = Tail {
        tenant,
        selector,
        limit,
        delay,
        from_ns,
    };
    Ok(ws
        .on_upgrade(move |socket| run(state, socket, tail))
        .into_response())
}

async fn run(state: Arc<AppState>, mut socket: WebSocket, tail: Tail) {
    tracing::debug!(tenant = %tail.tenant, "tail started");
    // Subscribe before reading the history, so nothing falls in between.
    let mut feed = state.tail_feed.subscribe();
    let history = LogQuery {
        tenant: tail.tenant.clone(),
        selector: tail.selector.clone(),
        range: TimeRange::new(tail.from_ns, now_ns()),
        limit: tail.limit,
        direction: Direction::Forward,
        categorize_labels: false,
    };
    match execute(&state.store, history, Arc::new(AtomicBool::new(false))).await {
        Ok((streams, _)) if !streams.is_empty() => {
            let entries = streams
                .iter()
                .flat_map(|s| {
                    s.entries
                        .iter()
                        .map(|e| (s.labels.clone(), e.timestamp_ns, e.line.clone()))
                })
                .collect();
            if socket
                .send(Message::Text(frame(entries, 0).into()))
                .await
                .is_err()
            {
                return;
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "tail history query failed");
            return;
        }
    }
    let Ok(pipeline) = tail.selector.pipeline() else {
        return;
    };
    let mut pending: Vec<(Instant, Labels, i64, String)> = Vec::new();
    let mut dropped_batches = 0u64;
    let mut tick = tokio::time::interval(SEND_INTERVAL);
    loop {
        tokio::select! {
            message = socket.recv() => match message {
                // The client closed, or the connection broke.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => continue,
            },
            batch = feed.recv() => match batch {
                Ok(batch) if batch.tenant == tail.tenant => {
                    let arrived = Instant::now();
                    for stream in batch.streams.iter().filter(|s| matches_all(&tail.selector.matchers, &s.labels)) {
                        for e in &stream.entries {
                            let metadata: Vec<(String, String)> =
                                e.metadata().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                            if let Some(p) = pipeline.process(e.timestamp_ns, &e.line, &stream.labels, &metadata) {
                                pending.push((arrived, p.all_labels(), e.timestamp_ns, p.line));
                            }
                        }
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    dropped_batches += n;
                    continue;
                }
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {}
        }
        // Send what has waited `delay_for`, in timestamp order, `limit` at a time.
        let due = Instant::now()
            .checked_sub(tail.delay)
            .unwrap_or_else(Instant::now);
        let ready = pending
            .iter()
            .take_while(|p| p.0 <= due)
            .count()
            .min(tail.limit);
        if ready == 0 && dropped_batches == 0 {
            continue;
        }
        let mut batch: Vec<(Labels, i64, String)> = pending
            .drain(..ready)
            .map(|(_, l, ts, line)| (l, ts, line))
            .collect();
        batch.sort_by_key(|e| e.1);
        let text = frame(batch, std::mem::take(&mut dropped_batches));
        if socket.send(Message::Text(text.into())).await.is_err() {
            break;
        }
    }
    tracing::debug!(tenant = %tail.tenant, "tail ended");
}

/// Loki's tail frame: entries grouped by stream, and one `dropped_entries`
/// item per batch of the feed this client was too slow to receive.
fn frame(entries: Vec<(Labels, i64, String)>, dropped_batches: u64) -> String {
    #[derive(serde::Serialize)]
    struct StreamOut<'a> {
        stream: LabelsOut<'a>,
        values: Vec<(String, &'a str)>,
    }
    #[derive(serde::Serialize)]
    struct Dropped {
        labels: std::collections::BTreeMap<String, String>,
        timestamp: String,
    }
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        streams: Vec<StreamOut<'a>>,
        dropped_entries: Vec<Dropped>,
    }
    let mut by_stream: Vec<(&Labels, Vec<(String, &str)>)> = Vec::new();
    for (labels, ts, line) in &entries {
        match by_stream.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, values)) => values.push((ts.to_string(), line)),
            None => by_stream.push((labels, vec![(ts.to_string(), line)])),
        }
    }
    let now = now_ns().to_string();
    let out = Frame {
        streams: by_stream
            .into_iter()
            .map(|(labels, values)| StreamOut {
                stream: LabelsOut(labels),
                values,
            })
            .collect(),
        dropped_entries: (0..dropped_batches)
            .map(|_| Dropped {
                labels: Default::default(),
                timestamp: now.clone(),
            })
            .collect(),
    };
    serde_json::to_string(&out).unwrap_or_else(|_| "{\"streams\":[]}".into())
}
