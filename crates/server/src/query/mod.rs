//! Query orchestration: turning a parsed LogQL query into storage scans and
//! the scans' output into Loki's response shapes; PromQL over the metric store
//! ([`prom_source`]) and the GenAI summary built on it ([`genai_summary`]).
pub mod detected;
pub mod genai_summary;
pub mod log_query;
pub mod metric_query;
pub mod patterns;
pub mod prom_source;
pub mod response;
pub mod results_cache;
pub mod selector;
