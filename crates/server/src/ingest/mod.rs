//! Ingest: decoding push bodies, validating them against limits, normalizing
//! them (event time, levels, labels), per-tenant VRL transforms, rate limiting.
pub mod accept;
pub mod cardinality;
pub mod loki_proto;
pub mod normalize;
pub mod push_decode;
pub mod rate_limit;
pub mod redact;
pub mod transform;
pub mod validate;
