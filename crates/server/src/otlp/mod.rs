//! OpenTelemetry (OTLP) ingest: the request bodies of OTLP/HTTP
//! ([`decode`]), OTLP log records as Loki log entries ([`logs`]), and the
//! OTLP/gRPC services on `--grpc-listen` ([`grpc`]). The HTTP routes are in
//! `http/otlp.rs`; both transports end in the same functions of [`export`].
//! AI-gateway access logs are priced, sampled and counted by [`access_log`].

pub mod access_log;
pub mod decode;
pub mod export;
pub mod grpc;
pub mod logs;
