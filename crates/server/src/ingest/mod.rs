//! Ingest: decoding push bodies, validating them against limits, rate limiting.
pub mod accept;
pub mod loki_proto;
pub mod push_decode;
pub mod rate_limit;
pub mod redact;
pub mod validate;
