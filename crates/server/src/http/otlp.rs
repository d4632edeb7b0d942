//! OTLP/HTTP: `POST /v1/logs`, `/v1/metrics`, `/v1/traces`, and the same under
//! Loki's `/otlp` prefix. Bodies are protobuf or JSON (optionally gzip); the
//! response is the OTLP `Export…ServiceResponse` in the request's encoding,
//! with `partial_success` naming what was refused. Errors carry a
//! `google.rpc.Status` body as the OTLP/HTTP spec asks: 400 for a body that
//! does not decode, 413 over the size cap, 415 for another content type, 429
//! with `Retry-After` over the rate limits.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::Serialize;

use crate::error::ApiError;
use crate::ingest::push_decode::DecodeError;
use crate::metrics::OTLP_REQUESTS;
use crate::otlp::decode::{OtlpDecodeError, OtlpFormat};
use crate::otlp::export;
use crate::state::AppState;
use crate::tenant::tenant_of;

/// Largest OTLP body, compressed or not (as the Loki push cap).
pub const MAX_OTLP_BYTES: usize = crate::http::loki_push::MAX_BODY_BYTES;

/// The OTLP/HTTP routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/logs", post(logs))
        .route("/otlp/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        .route("/otlp/v1/metrics", post(metrics))
        .route("/v1/traces", post(traces))
        .route("/otlp/v1/traces", post(traces))
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, Message, Serialize)]
pub struct RpcStatus {
    /// gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// An OTLP/HTTP error in the request's encoding.
pub(crate) fn error_response(format: OtlpFormat, e: ApiError) -> Response {
    let code = match e.status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => 3, // INVALID_ARGUMENT
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::TOO_MANY_REQUESTS => 8, // RESOURCE_EXHAUSTED
        StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
        _ => 13,
    };
    let body = format.encode(&RpcStatus {
        code,
        message: e.message.clone(),
    });
    let mut response = (e.status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Some(secs) = e.retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// A successful OTLP/HTTP response.
pub(crate) fn ok_response<T: Message + Serialize>(format: OtlpFormat, message: &T) -> Response {
    let mut response = (StatusCode::OK, format.encode(message)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// The format, tenant and decoded body of an OTLP/HTTP request.
pub(crate) fn decode_request<T>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(OtlpFormat, String, T), (OtlpFormat, ApiError)>
where
    T: Message + Default + serde::de::DeserializeOwned,
{
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = OtlpFormat::from_content_type(header_str(header::CONTENT_TYPE)).map_err(|e| {
        (
            OtlpFormat::Json,
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string()),
        )
    })?;
    let tenant = tenant_of(headers, state.config.auth_enabled).map_err(|e| (format, e))?;
    let request = format
        .decode::<T>(header_str(header::CONTENT_ENCODING), body, MAX_OTLP_BYTES)
        .map_err(|e| (format, decode_error(e)))?;
    Ok((format, tenant, request))
}

fn decode_error(e: OtlpDecodeError) -> ApiError {
    let status = match &e {
        OtlpDecodeError::Body(DecodeError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        OtlpDecodeError::Body(DecodeError::Encoding(_)) | OtlpDecodeError::ContentType(_) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

/// Counts an HTTP export request by signal and status.
pub(crate) fn count(state: &AppState, signal: &str, response: Response) -> Response {
    state.metrics.add(
        OTLP_REQUESTS,
        &[
            ("signal", signal),
            ("transport", "http"),
            ("code", response.status().as_str()),
        ],
        1.0,
    );
    response
}

/// Decodes a request, runs `export` on the blocking pool, answers in the
/// request's encoding and counts the request under `signal`.
async fn export_request<Req, Resp>(
    state: Arc<AppState>,
    headers: &HeaderMap,
    body: &[u8],
    signal: &'static str,
    export: export::ExportFn<Req, Resp>,
) -> Response
where
    Req: Message + Default + serde::de::DeserializeOwned + Send + 'static,
    Resp: Message + Serialize + Send + 'static,
{
    let response = match decode_request::<Req>(&state, headers, body) {
        Err((format, e)) => error_response(format, e),
        Ok((format, tenant, request)) => {
            let st = state.clone();
            let result = tokio::task::spawn_blocking(move || export(&st, &tenant, &request))
                .await
                .map_err(|e| ApiError::internal("OTLP export task failed", &e))
                .and_then(|r| r);
            match result {
                Ok(response) => ok_response(format, &response),
                Err(e) => error_response(format, e),
            }
        }
    };
    count(&state, signal, response)
}

async fn logs(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    export_request::<ExportLogsServiceRequest, _>(
        state,
        &headers,
        &body,
        "logs",
        export::export_logs,
    )
    .await
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    export_request::<ExportMetricsServiceRequest, _>(
        state,
        &headers,
        &body,
        "metrics",
        export::export_metrics,
    )
    .await
}

async fn traces(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let response = match decode_request::<ExportTraceServiceRequest>(&state, &headers, &body) {
        Err((format, e)) => error_response(format, e),
        Ok((format, _tenant, request)) => {
            ok_response(format, &export::export_traces(&state, &request))
        }
    };
    count(&state, "traces", response)
}
