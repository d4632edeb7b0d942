//! `POST /loki/api/v1/push` (and Loki's legacy `/api/prom/push`).
//!
//! Body size is capped by the router's `DefaultBodyLimit`; decompression is
//! capped here. All CPU work (decompress, decode, validate, WAL append) runs
//! on the blocking pool. 204 on success; 400 naming what was refused (the
//! rest is stored, as in Loki); 413 over the size cap; 415 for an unknown
//! content type; 429 with `Retry-After` over the rate limits.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;

use crate::error::ApiError;
use crate::ingest::accept::accept;
use crate::ingest::push_decode::{
    DecodeError, PushFormat, decode_content_encoding, decode_json, decode_protobuf,
};
use crate::metrics::PUSH_REQUESTS;
use crate::state::AppState;
use crate::tenant::tenant_of;

/// Largest accepted request body, compressed (Loki's `distributor.max_recv_msg_size`).
pub const MAX_BODY_BYTES: usize = 100 << 20;
/// Largest body after decompression.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// The push routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/api/prom/push", post(push))
}

async fn push(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let result = push_inner(&state, &headers, body).await;
    let code = match &result {
        Ok(code) => *code,
        Err(e) => e.status,
    };
    state
        .metrics
        .add(PUSH_REQUESTS, &[("code", code.as_str())], 1.0);
    result
}

async fn push_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant_of(headers, state.config.auth_enabled)?;
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let format = PushFormat::from_content_type(header_str(header::CONTENT_TYPE))
        .map_err(|e| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string()))?;
    let encoding = header_str(header::CONTENT_ENCODING).map(str::to_string);
    let state = state.clone();
    let accepted = tokio::task::spawn_blocking(move || {
        let streams = match format {
            PushFormat::Protobuf => decode_protobuf(&body, MAX_DECOMPRESSED_BYTES),
            PushFormat::Json => {
                decode_content_encoding(encoding.as_deref(), &body, MAX_DECOMPRESSED_BYTES)
                    .and_then(|raw| decode_json(&raw))
            }
        }
        .map_err(decode_error)?;
        accept(&state, &tenant, streams)
    })
    .await
    .map_err(|e| ApiError::internal("push task failed", &e))??;
    match accepted.partial_error {
        Some(message) => Err(ApiError::bad_request(message)),
        None => Ok(StatusCode::NO_CONTENT),
    }
}

fn decode_error(e: DecodeError) -> ApiError {
    let status = match e {
        DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DecodeError::Encoding(_) | DecodeError::ContentType(_) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}
