//! The Inferscope metric store.
//!
//! OTLP metrics arrive as an `ExportMetricsServiceRequest`; [`otlp`] normalizes every
//! data point (delta or cumulative) into [`PointUpdate`]s of Prometheus-named series,
//! [`genai`] derives the `genai_*` series (requests, tokens, latency histograms,
//! estimated cost from [`pricing`]) from the `gen_ai.*` metrics, and [`store`] keeps
//! the series durably and answers selections for the PromQL engine.

pub mod genai;
pub mod pricing;
pub mod types;

pub use genai::{GenAiDeriver, UnpricedModel};
pub use pricing::{
    LongContextTier, ModelPrice, PricingError, PricingFile, PricingHandle, PricingTable, Rates,
    TokenCounts,
};
pub use types::{
    Attributes, HistogramDelta, HistogramObserver, PointUpdate, UpdateKind, format_le,
};
