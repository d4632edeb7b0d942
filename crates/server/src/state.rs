//! What every request handler shares: config, the store, limits, metrics.

use std::sync::Arc;
use std::time::Instant;

use inferscope_metrics::{GenAiDeriver, MetricStore};
use inferscope_storage::Store;

use crate::config::Config;
use crate::ingest::cardinality::{CardinalityGuard, CardinalityLimits};
use crate::ingest::rate_limit::{RateLimiter, RateLimits};
use crate::ingest::redact::Redactor;
use crate::ingest::transform::Transforms;
use crate::metrics::Metrics;
use crate::query::results_cache::{CacheSettings, ResultsCache};
use crate::tenant::Tokens;

/// Shared server state, cheap to clone behind an `Arc`.
#[derive(Debug)]
pub struct AppState {
    /// The validated configuration.
    pub config: Config,
    /// The log store.
    pub store: Arc<Store>,
    /// Ingestion rate limits.
    pub limiter: RateLimiter,
    /// The server's own counters.
    pub metrics: Metrics,
    /// When the server started.
    pub started: Instant,
    /// Wakes the maintenance loop early, when the head is due for a flush.
    pub maintenance_wakeup: tokio::sync::Notify,
    /// Every accepted batch, for live tails (`/loki/api/v1/tail`).
    pub tail_feed: tokio::sync::broadcast::Sender<Arc<TailBatch>>,
    /// Cached metric query results, by split.
    pub results_cache: Arc<ResultsCache>,
    /// Secret redaction rules, applied before anything is stored.
    pub redactor: Redactor,
    /// Per-tenant VRL programs, run on entries after normalization.
    pub transforms: Transforms,
    /// Bearer tokens (`auth.tokens`); empty when not configured.
    pub tokens: Tokens,
    /// Active streams and label values per tenant, against their limits.
    pub cardinality: CardinalityGuard,
    /// OTLP metrics as Prometheus series, with the derived `genai_*` series.
    pub metric_store: Arc<MetricStore>,
    /// Derives the `genai_*` series (and cost) from `gen_ai.*` histograms.
    pub genai: Arc<GenAiDeriver>,
}

/// A batch of accepted streams of one tenant, as live tails see it.
#[derive(Debug)]
pub struct TailBatch {
    /// Whose data it is.
    pub tenant: String,
    /// The accepted streams.
    pub streams: Vec<inferscope_model::PushStream>,
}

/// Batches a slow tail may fall behind before it reports dropped entries.
const TAIL_FEED_CAPACITY: usize = 1024;

impl AppState {
    /// State for a running server over an opened store.
    pub fn new(
        config: Config,
        store: Arc<Store>,
        metric_store: Arc<MetricStore>,
        genai: Arc<GenAiDeriver>,
    ) -> Arc<Self> {
        const MB: f64 = 1024.0 * 1024.0;
        let l = &config.limits_config;
        let limiter = RateLimiter::new(RateLimits {
            tenant_rate: l.ingestion_rate_mb * MB,
            tenant_burst: l.ingestion_burst_size_mb * MB,
            stream_rate: l.per_stream_rate_limit as f64,
            stream_burst: l.per_stream_rate_limit_burst.max(l.per_stream_rate_limit) as f64,
        });
        let cache = &config.query_range.results_cache.cache.embedded_cache;
        let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let results_cache = Arc::new(ResultsCache::new(CacheSettings {
            enabled: config.query_range.cache_results && cache.enabled,
            max_bytes: usize::try_from(cache.max_size_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            ttl: cache.ttl,
            split_ns: nanos(l.split_queries_by_interval).max(1),
            freshness_ns: nanos(l.max_cache_freshness_per_query),
            retention_ns: (!l.retention_period.is_zero()).then(|| nanos(l.retention_period)),
        }));
        // Config::validate compiled the same patterns: this cannot fail after it.
        #[allow(clippy::expect_used)]
        let redactor = Redactor::new(&config.redaction)
            .expect("redaction patterns are checked by Config::validate");
        #[allow(clippy::expect_used)]
        let transforms = Transforms::new(&config.ingest.transforms)
            .expect("VRL programs are checked by Config::validate");
        for warning in transforms.warnings() {
            tracing::warn!(warning = %warning, "VRL program compiled with warnings");
        }
        let tokens = Tokens::new(&config.auth);
        let cardinality = CardinalityGuard::new(CardinalityLimits {
            max_streams: l.max_global_streams_per_user,
            max_values_per_label: l.max_values_per_label,
        });
        Arc::new(AppState {
            cardinality,
            redactor,
            transforms,
            tokens,
            config,
            store,
            limiter,
            metrics: Metrics::default(),
            started: Instant::now(),
            maintenance_wakeup: tokio::sync::Notify::new(),
            tail_feed: tokio::sync::broadcast::channel(TAIL_FEED_CAPACITY).0,
            results_cache,
            metric_store,
            genai,
        })
    }
}
