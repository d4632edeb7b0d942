//! OTLP/gRPC on `--grpc-listen` (default `:4317`): `LogsService/Export`,
//! `MetricsService/Export` and `TraceService/Export`, gzip accepted. The
//! tenant comes from the `x-scope-orgid` metadata (with `auth_enabled`), or
//! from the bearer token of `authorization` when `auth.tokens` is configured,
//! exactly as for HTTP requests.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::metrics::OTLP_REQUESTS;
use crate::otlp::export;
use crate::state::AppState;
use crate::tenant::{Access, tenant_for};

/// Largest gRPC message accepted (decoded), as the HTTP body cap.
pub const MAX_MESSAGE_BYTES: usize = crate::http::loki_push::MAX_BODY_BYTES;

/// The OTLP services over `state`.
#[derive(Clone)]
pub struct Otlp {
    state: Arc<AppState>,
}

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let otlp = Otlp { state };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(
            LogsServiceServer::new(otlp.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            MetricsServiceServer::new(otlp.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            TraceServiceServer::new(otlp)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Binds the gRPC address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to listen for OTLP/gRPC on {addr}"))
}

/// The tenant of a gRPC request, as the HTTP middleware and handlers decide it.
pub(crate) fn tenant_of_request<T>(
    state: &AppState,
    request: &Request<T>,
) -> Result<String, Status> {
    let headers = request.metadata().clone().into_headers();
    tenant_for(state, &headers, Access::Push).map_err(to_status)
}

/// Maps an API error to the gRPC status OTLP clients expect (retryable codes
/// for overload).
pub(crate) fn to_status(e: ApiError) -> Status {
    let code = match e.status {
        StatusCode::BAD_REQUEST => tonic::Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
        StatusCode::FORBIDDEN => tonic::Code::PermissionDenied,
        StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::InvalidArgument,
        StatusCode::TOO_MANY_REQUESTS => tonic::Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    };
    Status::new(code, e.message)
}

/// Counts a request and passes its result on.
pub(crate) fn count<T>(
    state: &AppState,
    signal: &str,
    result: Result<T, Status>,
) -> Result<T, Status> {
    let code = match &result {
        Ok(_) => "OK".to_string(),
        Err(s) => format!("{:?}", s.code()),
    };
    state.metrics.add(
        OTLP_REQUESTS,
        &[("signal", signal), ("transport", "grpc"), ("code", &code)],
        1.0,
    );
    result
}

/// Runs a blocking export for the request's tenant and counts it under `signal`.
async fn export_blocking<Req, Resp>(
    state: &Arc<AppState>,
    request: Request<Req>,
    signal: &'static str,
    export: export::ExportFn<Req, Resp>,
) -> Result<Response<Resp>, Status>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    let result = async {
        let tenant = tenant_of_request(state, &request)?;
        let body = request.into_inner();
        let st = state.clone();
        tokio::task::spawn_blocking(move || export(&st, &tenant, &body))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map(Response::new)
            .map_err(to_status)
    }
    .await;
    count(state, signal, result)
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        export_blocking(&self.state, request, "logs", export::export_logs).await
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        export_blocking(&self.state, request, "metrics", export::export_metrics).await
    }
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let result = tenant_of_request(&self.state, &request)
            .map(|_| Response::new(export::export_traces(&self.state, request.get_ref())));
        count(&self.state, "traces", result)
    }
}
