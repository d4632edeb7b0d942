//! OpenTelemetry (OTLP) ingest: the request bodies of OTLP/HTTP
//! ([`decode`]), OTLP log records as Loki log entries ([`logs`]), and the
//! OTLP/gRPC services on `--grpc-listen` ([`grpc`]). The HTTP routes are in
//! `http/otlp.rs`; both transports end in the same functions of [`export`].

pub mod decode;
pub mod export;
pub mod grpc;
pub mod logs;
