//! Query orchestration: turning a parsed LogQL query into storage scans and
//! the scans' output into Loki's response shapes.
pub mod detected;
pub mod log_query;
pub mod metric_query;
pub mod patterns;
pub mod response;
pub mod results_cache;
pub mod selector;
