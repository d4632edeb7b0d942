//! The Inferscope server.
pub mod config;
pub mod error;
pub mod http;
pub mod ingest;
pub mod units;
