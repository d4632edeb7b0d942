//! The Inferscope metric store.
//!
//! OTLP metrics arrive as an `ExportMetricsServiceRequest`; [`otlp`] normalizes every
//! data point (delta or cumulative) into [`PointUpdate`]s of Prometheus-named series,
//! [`genai`] derives the `genai_*` series (requests, tokens, latency histograms,
//! estimated cost from [`pricing`]) from the `gen_ai.*` metrics, and [`store`] keeps
//! the series durably and answers selections for the PromQL engine.

pub mod accumulate;
pub mod error;
pub mod genai;
pub mod naming;
pub mod otlp;
pub mod persist;
pub mod pricing;
pub mod store;
pub mod types;

pub use error::MetricsError;
pub use genai::{GenAiDeriver, UnpricedModel};
pub use naming::{MetricKind, prometheus_metric_name, render_any_value, sanitize_label_name};
pub use otlp::IngestOutcome;
pub use pricing::{
    LongContextTier, ModelPrice, PricingError, PricingFile, PricingHandle, PricingTable, Rates,
    TokenCounts,
};
pub use store::{MetricStore, SeriesSamples, StoreOptions, StoreStats};

pub use types::{
    Attributes, DerivedUpdates, HistogramDelta, HistogramObserver, ObservedPoint, PointUpdate,
    UpdateKind, attribute, format_le,
};
