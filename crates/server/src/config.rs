//! The configuration tree: defaults, then the YAML file, then environment
//! variables and flags, then [`Config::validate`].
//!
//! Where a setting means the same as one of Loki's, it has Loki's name and
//! place (`auth_enabled`, `server.http_listen_port`, `common.path_prefix`,
//! `limits_config.*`), so a Loki user's settings carry over. Settings of our
//! own embedded storage live under `storage:`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::units::serde_units;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// As in Loki: `false` runs single-tenant (tenant `fake`); `true` requires
    /// `X-Scope-OrgID` on every request.
    pub auth_enabled: bool,
    /// Listen addresses.
    pub server: ServerConfig,
    /// Paths shared by every component.
    pub common: CommonConfig,
    /// The embedded store.
    pub storage: StorageSettings,
    /// Per-tenant limits, with Loki's names and defaults.
    pub limits_config: LimitsConfig,
    /// The query frontend's results cache (Loki's `query_range:` block).
    pub query_range: QueryRangeConfig,
    /// Loki's `compactor:` block: log deletion settings.
    pub compactor: CompactorConfig,
    /// Our own: bearer tokens that map to a tenant and permissions.
    pub auth: AuthConfig,
    /// Our own: secrets replaced by a marker before anything is stored.
    pub redaction: RedactionConfig,
    /// Our own ingest normalization settings (event time, label policy); see
    /// `ingest/normalize`.
    pub ingest: IngestConfig,
    /// Our own: GenAI metrics (pricing table).
    pub genai: GenAiConfig,
    /// Our own: the sampling policy of AI-gateway access logs received over OTLP.
    pub access_logs: AccessLogConfig,
}

/// `access_logs:` — the sampling policy (our own block).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Off: every access log is stored (still counted and priced).
    pub sampling_enabled: bool,
    /// The default thresholds.
    #[serde(flatten)]
    pub policy: SamplingPolicy,
    /// Overrides for a tenant and/or a service (the gateway: `aigw.service`, else
    /// `service.name`); the first that matches wins, and only the thresholds it
    /// sets change.
    pub overrides: Vec<PolicyOverride>,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            sampling_enabled: true,
            policy: SamplingPolicy::default(),
            overrides: Vec::new(),
        }
    }
}

/// The thresholds of the sampling policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingPolicy {
    /// Keep when input + output (+ cached) tokens reach this.
    pub min_total_tokens: u64,
    /// Keep when the response code is at least this.
    pub min_response_code: u32,
    /// Keep when the duration (ms) reaches this.
    pub min_duration_ms: u64,
    /// Keep when the upstream failed (transport failure or connection termination).
    pub keep_upstream_failures: bool,
    /// Keep 1 in N of the other records (deterministic by request id); 0 = none.
    pub baseline_one_in: u64,
}

impl Default for SamplingPolicy {
    fn default() -> Self {
        SamplingPolicy {
            min_total_tokens: 10_000,
            min_response_code: 400,
            min_duration_ms: 30_000,
            keep_upstream_failures: true,
            baseline_one_in: 0,
        }
    }
}

/// A partial policy for some tenant and/or service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyOverride {
    /// Tenant it applies to (any when unset).
    pub tenant: Option<String>,
    /// Service it applies to (any when unset).
    pub service: Option<String>,
    /// See [`SamplingPolicy`].
    pub min_total_tokens: Option<u64>,
    /// See [`SamplingPolicy`].
    pub min_response_code: Option<u32>,
    /// See [`SamplingPolicy`].
    pub min_duration_ms: Option<u64>,
    /// See [`SamplingPolicy`].
    pub keep_upstream_failures: Option<bool>,
    /// See [`SamplingPolicy`].
    pub baseline_one_in: Option<u64>,
    /// Turn sampling off (keep everything) for these records.
    pub sampling_enabled: Option<bool>,
}

/// `genai:`: how GenAI series are derived from OTLP metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenAiConfig {
    /// A pricing table in SkyWalking's `gen-ai-config.yml` format (extended with
    /// cached-input, cache-creation and long-context prices); the table shipped
    /// with the binary when unset. Reloaded when the file changes.
    pub pricing_file: Option<PathBuf>,
    /// How often the pricing file is checked for changes.
    #[serde(deserialize_with = "serde_units::duration")]
    pub pricing_reload_interval: Duration,
}

impl Default for GenAiConfig {
    fn default() -> Self {
        GenAiConfig {
            pricing_file: None,
            pricing_reload_interval: Duration::from_secs(10),
        }
    }
}

/// How pushed lines are normalized at ingest (our own block; Loki's
/// `discover_log_levels` and `discover_service_name` stay in `limits_config`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Taking the entry's timestamp from the line.
    pub event_time: EventTimeConfig,
    /// Which JSON fields become labels or structured metadata, and how
    /// Kubernetes pod labels are named.
    pub labels: LabelPolicyConfig,
    /// Per-tenant VRL programs run on every entry after normalization, before
    /// redaction (see `ingest/transform.rs`).
    pub transforms: Vec<TransformConfig>,
}

/// One tenant's VRL program (`ingest.transforms[]`), as a Vector `remap`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformConfig {
    /// The tenant, or `*` for every tenant without a program of its own.
    pub tenant: String,
    /// The program's text; set this or `file`.
    pub source: Option<String>,
    /// A file holding the program, read at startup.
    pub file: Option<PathBuf>,
}

/// Event time taken from a JSON line's time field.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventTimeConfig {
    /// Replace the push timestamp by the line's own time when it lies in the
    /// accepted window (`reject_old_samples_max_age`, `creation_grace_period`).
    pub enabled: bool,
    /// Top-level JSON fields holding the event time, first present wins:
    /// RFC 3339 (any precision) or epoch s/ms/µs/ns (unit decided by magnitude).
    pub fields: Vec<String>,
}

impl Default for EventTimeConfig {
    fn default() -> Self {
        EventTimeConfig {
            enabled: true,
            fields: ["timestamp", "time", "ts", "@timestamp"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// The label policy of ingest.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelPolicyConfig {
    /// Top-level JSON fields lifted into stream labels (low cardinality only:
    /// every distinct value is a new stream). Empty by default: labels are
    /// usually set by the collector.
    pub from_fields: Vec<String>,
    /// Top-level JSON fields copied into structured metadata (the line stays
    /// intact) when the entry does not carry them already, so trace lookups
    /// find them without parsing lines.
    pub structured_metadata_fields: Vec<String>,
    /// Stream label (as pushed, or as written on the pod:
    /// `app.kubernetes.io/name`) → label added with the same value when the
    /// stream does not have it. The source label is kept.
    pub kubernetes: std::collections::BTreeMap<String, String>,
}

impl Default for LabelPolicyConfig {
    fn default() -> Self {
        LabelPolicyConfig {
            from_fields: Vec::new(),
            structured_metadata_fields: [
                "trace_id",
                "span_id",
                "request_id",
                "x_request_id",
                "user_id",
                "session_id",
            ]
            .map(String::from)
            .to_vec(),
            kubernetes: [
                ("app_kubernetes_io_name", "app"),
                ("app_kubernetes_io_instance", "inference_service"),
                ("app_kubernetes_io_component", "component"),
                ("nvidia_com_dynamo_component_type", "component"),
                ("mif_moreh_io_pool", "pool_name"),
                ("mif_moreh_io_role", "role"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }
}

/// `auth:`: optional bearer tokens (Loki has none; it leaves authentication
/// to a proxy). With at least one token, every request except `/ready`,
/// `/metrics` and buildinfo needs `Authorization: Bearer <token>`, and the
/// tenant is the token's. Requires `auth_enabled: true`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The accepted tokens.
    pub tokens: Vec<TokenConfig>,
}

/// One accepted bearer token.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// The token itself; prefer `token_file` to keep it out of the config.
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace ignored), read at startup.
    pub token_file: Option<PathBuf>,
    /// The tenant the token acts as.
    pub tenant: String,
    /// What the token may do.
    pub permissions: Vec<Permission>,
}

impl std::fmt::Debug for TokenConfig {
    // Never print a secret, not even in a debug dump of the config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("tenant", &self.tenant)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// What a bearer token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// `POST /loki/api/v1/push` (and `/api/prom/push`, `/flush`).
    Push,
    /// Every read API: queries, labels, series, index, tail, drilldown, deletes.
    Query,
}

impl AuthConfig {
    /// Reads every `token_file` into `token`, so the server holds the tokens
    /// in memory and later file changes need a restart.
    pub fn load_token_files(&mut self) -> Result<(), ConfigError> {
        for t in &mut self.tokens {
            if let Some(path) = &t.token_file {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let token = text.trim();
                if token.len() < 16 {
                    return Err(ConfigError::Invalid(format!(
                        "auth.tokens: the token in {} must be at least 16 characters",
                        path.display()
                    )));
                }
                t.token = Some(token.to_string());
                t.token_file = None;
            }
        }
        Ok(())
    }
}

/// `redaction:`: secrets replaced by `[REDACTED:<kind>]` in lines and
/// structured metadata before they are written (see `ingest/redact.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// On by default.
    pub enabled: bool,
    /// Extra patterns; a match (or its first capture group) becomes
    /// `[REDACTED:<name>]`.
    pub patterns: Vec<RedactionPatternConfig>,
    /// Tenants whose data is stored as sent.
    pub disabled_tenants: Vec<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            enabled: true,
            patterns: Vec::new(),
            disabled_tenants: Vec::new(),
        }
    }
}

/// A user-configured secret pattern.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionPatternConfig {
    /// Names the marker and the `kind` label: `[A-Za-z0-9_-]+`.
    pub name: String,
    /// A Rust `regex` expression.
    pub regex: String,
}

/// Loki's `query_range:` block: caching of metric query results.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryRangeConfig {
    /// Cache metric query results by split (on by default, unlike Loki).
    pub cache_results: bool,
    /// Where results are cached.
    pub results_cache: ResultsCacheConfig,
}

impl Default for QueryRangeConfig {
    fn default() -> Self {
        QueryRangeConfig {
            cache_results: true,
            results_cache: ResultsCacheConfig::default(),
        }
    }
}

/// Loki's `results_cache:` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResultsCacheConfig {
    /// The cache backend; only the embedded (in-process) one exists here.
    pub cache: CacheBackendConfig,
}

/// Loki's cache backend block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheBackendConfig {
    /// The in-process cache.
    pub embedded_cache: EmbeddedCacheConfig,
}

/// Loki's `embedded_cache:` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedCacheConfig {
    /// Whether the cache is used.
    pub enabled: bool,
    /// Most memory the cached results may take, in MB.
    pub max_size_mb: u64,
    /// How long a cached result may be served.
    #[serde(deserialize_with = "serde_units::duration")]
    pub ttl: Duration,
}

impl Default for EmbeddedCacheConfig {
    fn default() -> Self {
        EmbeddedCacheConfig {
            enabled: true,
            max_size_mb: 100,
            ttl: Duration::from_secs(3600),
        }
    }
}

/// The settings of Loki's `compactor:` block that apply here (the embedded
/// store compacts in its maintenance pass; see `storage:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactorConfig {
    /// How long a delete request can be cancelled before its entries are
    /// removed from storage (they are hidden from queries at once).
    #[serde(deserialize_with = "serde_units::duration")]
    pub delete_request_cancel_period: Duration,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig {
            delete_request_cancel_period: Duration::from_secs(24 * 3600),
        }
    }
}

/// Listen addresses (Loki's `server:` block).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP address to bind.
    pub http_listen_address: String,
    /// HTTP port (Loki's 3100).
    pub http_listen_port: u16,
    /// gRPC address to bind (OTLP).
    pub grpc_listen_address: String,
    /// gRPC port (OTLP's 4317).
    pub grpc_listen_port: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_address: "0.0.0.0".into(),
            http_listen_port: 3100,
            grpc_listen_address: "0.0.0.0".into(),
            grpc_listen_port: 4317,
        }
    }
}

/// Loki's `common:` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommonConfig {
    /// Where all data lives (WAL and, on the embedded default, blocks).
    pub path_prefix: PathBuf,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            path_prefix: PathBuf::from("./data"),
        }
    }
}

/// When the write-ahead log is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalSyncPolicy {
    /// fsync before a push is acknowledged (concurrent pushes share one fsync).
    Always,
    /// fsync every `wal_sync_interval`: a crash may lose that much.
    Interval,
    /// Leave it to the OS: a machine crash may lose recent pushes.
    Never,
}

/// Settings of the embedded store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// WAL fsync policy; `always` is the safe default.
    pub wal_sync: WalSyncPolicy,
    /// Period for `wal_sync: interval`.
    #[serde(deserialize_with = "serde_units::duration")]
    pub wal_sync_interval: Duration,
    /// Flush the in-memory head into a block once it holds this many bytes.
    #[serde(deserialize_with = "serde_units::bytes")]
    pub head_max_bytes: u64,
    /// Flush head data older than this.
    #[serde(deserialize_with = "serde_units::duration")]
    pub head_max_age: Duration,
    /// Merge small blocks once a time window holds this many.
    pub compaction_min_blocks: usize,
    /// How often flush, compaction and retention run.
    #[serde(deserialize_with = "serde_units::duration")]
    pub maintenance_interval: Duration,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            wal_sync: WalSyncPolicy::Always,
            wal_sync_interval: Duration::from_secs(1),
            head_max_bytes: 64 << 20,
            head_max_age: Duration::from_secs(300),
            compaction_min_blocks: 4,
            maintenance_interval: Duration::from_secs(5),
        }
    }
}

/// Loki's `limits_config:` block, with Loki's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Refuse entries older than `reject_old_samples_max_age`.
    pub reject_old_samples: bool,
    /// See `reject_old_samples`.
    #[serde(deserialize_with = "serde_units::duration")]
    pub reject_old_samples_max_age: Duration,
    /// Refuse entries more than this far in the future.
    #[serde(deserialize_with = "serde_units::duration")]
    pub creation_grace_period: Duration,
    /// Per-tenant ingestion rate in MB/s.
    pub ingestion_rate_mb: f64,
    /// Per-tenant burst in MB.
    pub ingestion_burst_size_mb: f64,
    /// Per-stream rate.
    #[serde(deserialize_with = "serde_units::bytes")]
    pub per_stream_rate_limit: u64,
    /// Per-stream burst.
    #[serde(deserialize_with = "serde_units::bytes")]
    pub per_stream_rate_limit_burst: u64,
    /// Longest accepted line; 0 = no limit.
    #[serde(deserialize_with = "serde_units::bytes")]
    pub max_line_size: u64,
    /// Truncate longer lines instead of refusing them.
    pub max_line_size_truncate: bool,
    /// Most labels a stream may have.
    pub max_label_names_per_series: usize,
    /// Longest label name.
    pub max_label_name_length: usize,
    /// Longest label value.
    pub max_label_value_length: usize,
    /// Largest structured metadata of one entry.
    #[serde(deserialize_with = "serde_units::bytes")]
    pub max_structured_metadata_size: u64,
    /// Most structured metadata pairs on one entry.
    pub max_structured_metadata_entries_count: usize,
    /// Largest `limit` a log query may ask for.
    pub max_entries_limit_per_query: usize,
    /// Most series a query may return.
    pub max_query_series: usize,
    /// Most streams a tenant may have active (pushed within the last hour); 0 = no limit.
    pub max_global_streams_per_user: usize,
    /// Our own: most distinct values one label name may take among a tenant's
    /// active streams (a guard against ids used as labels); 0 = no limit.
    pub max_values_per_label: usize,
    /// Longest time range of a query; 0 = no limit.
    #[serde(deserialize_with = "serde_units::duration")]
    pub max_query_length: Duration,
    /// A query taking longer is cancelled.
    #[serde(deserialize_with = "serde_units::duration")]
    pub query_timeout: Duration,
    /// Delete data older than this; 0 keeps it forever.
    #[serde(deserialize_with = "serde_units::duration")]
    pub retention_period: Duration,
    /// Metric query results are cached in splits of this length.
    #[serde(deserialize_with = "serde_units::duration")]
    pub split_queries_by_interval: Duration,
    /// Results of the most recent stretch of time are never cached (data
    /// there may still arrive).
    #[serde(deserialize_with = "serde_units::duration")]
    pub max_cache_freshness_per_query: Duration,
    /// Add `detected_level` structured metadata to every entry (Loki's key).
    pub discover_log_levels: bool,
    /// Fields a level is read from (labels, metadata, JSON or logfmt keys);
    /// empty means Loki's default list (Loki's key).
    pub log_level_fields: Vec<String>,
    /// Labels a missing `service_name` label is taken from, first present
    /// wins, else `unknown_service`; empty turns it off (Loki's key and list).
    pub discover_service_name: Vec<String>,
}

/// Loki's default `discover_service_name` list.
pub const DEFAULT_SERVICE_NAME_LABELS: [&str; 12] = [
    "service_name",
    "service",
    "app",
    "application",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
];

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(7 * 86_400),
            creation_grace_period: Duration::from_secs(600),
            ingestion_rate_mb: 4.0,
            ingestion_burst_size_mb: 6.0,
            per_stream_rate_limit: 3 << 20,
            per_stream_rate_limit_burst: 15 << 20,
            max_line_size: 256 * 1024,
            max_line_size_truncate: false,
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_structured_metadata_size: 64 * 1024,
            max_structured_metadata_entries_count: 128,
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            max_global_streams_per_user: 5000,
            max_values_per_label: 1000,
            max_query_length: Duration::from_secs(721 * 3600),
            query_timeout: Duration::from_secs(60),
            retention_period: Duration::from_secs(90 * 86_400),
            split_queries_by_interval: Duration::from_secs(3600),
            max_cache_freshness_per_query: Duration::from_secs(600),
            discover_log_levels: true,
            log_level_fields: Vec::new(),
            discover_service_name: DEFAULT_SERVICE_NAME_LABELS.map(String::from).to_vec(),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde said, with line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a YAML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_yaml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses YAML over the defaults (an empty document gives the defaults).
    pub fn from_yaml(text: &str) -> Result<Config, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text)
    }

    /// The HTTP address to bind.
    pub fn http_addr(&self) -> Result<SocketAddr, ConfigError> {
        join_addr(
            &self.server.http_listen_address,
            self.server.http_listen_port,
        )
    }

    /// The gRPC address to bind.
    pub fn grpc_addr(&self) -> Result<SocketAddr, ConfigError> {
        join_addr(
            &self.server.grpc_listen_address,
            self.server.grpc_listen_port,
        )
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits_config;
        if l.ingestion_rate_mb <= 0.0 || l.ingestion_burst_size_mb <= 0.0 {
            return Err(ConfigError::Invalid(
                "limits_config.ingestion_rate_mb and ingestion_burst_size_mb must be > 0".into(),
            ));
        }
        if l.max_entries_limit_per_query == 0 {
            return Err(ConfigError::Invalid(
                "limits_config.max_entries_limit_per_query must be > 0".into(),
            ));
        }
        if l.query_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "limits_config.query_timeout must be > 0".into(),
            ));
        }
        if l.split_queries_by_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "limits_config.split_queries_by_interval must be > 0".into(),
            ));
        }
        let policy = &self.ingest.labels;
        for (source, target) in &policy.kubernetes {
            if source.is_empty() || !inferscope_model::is_valid_label_name(target) {
                return Err(ConfigError::Invalid(format!(
                    "ingest.labels.kubernetes: {source:?} -> {target:?} needs a source and a valid label name"
                )));
            }
        }
        if self.storage.head_max_bytes < 1 << 20 {
            return Err(ConfigError::Invalid(
                "storage.head_max_bytes must be at least 1MB".into(),
            ));
        }
        self.validate_auth()?;
        crate::ingest::redact::Redactor::new(&self.redaction)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        crate::ingest::transform::Transforms::new(&self.ingest.transforms)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.http_addr()?;
        self.grpc_addr()?;
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let tokens = &self.auth.tokens;
        if tokens.is_empty() {
            return Ok(());
        }
        if !self.auth_enabled {
            return Err(ConfigError::Invalid(
                "auth.tokens needs auth_enabled: true (tokens name tenants)".into(),
            ));
        }
        for (i, t) in tokens.iter().enumerate() {
            let invalid = |what: &str| {
                ConfigError::Invalid(format!("auth.tokens[{i}] (tenant {:?}): {what}", t.tenant))
            };
            match (&t.token, &t.token_file) {
                (Some(_), Some(_)) => return Err(invalid("set token or token_file, not both")),
                (None, None) => return Err(invalid("needs token or token_file")),
                (Some(token), None) if token.trim().len() < 16 => {
                    return Err(invalid("token must be at least 16 characters"));
                }
                _ => {}
            }
            if crate::tenant::check_tenant_id(&t.tenant).is_err() {
                return Err(invalid("invalid tenant id"));
            }
            if t.permissions.is_empty() {
                return Err(invalid("needs permissions: [push] and/or [query]"));
            }
        }
        Ok(())
    }
}

fn join_addr(host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let text = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    text.parse()
        .map_err(|_| ConfigError::Invalid(format!("invalid listen address {text:?}")))
}

/// Splits `host:port` (or `:port`) into the config's two fields.
pub fn split_listen(text: &str) -> Result<(String, u16), ConfigError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| ConfigError::Invalid(format!("listen address {text:?} needs host:port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| ConfigError::Invalid(format!("invalid port in listen address {text:?}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_loki() {
        let c = Config::default();
        assert!(!c.auth_enabled);
        assert_eq!(c.server.http_listen_port, 3100);
        assert!(c.limits_config.reject_old_samples);
        assert_eq!(
            c.limits_config.reject_old_samples_max_age,
            Duration::from_secs(168 * 3600)
        );
        assert_eq!(c.limits_config.max_line_size, 256 * 1024);
        assert_eq!(c.limits_config.max_entries_limit_per_query, 5000);
        assert_eq!(
            c.limits_config.retention_period,
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(
            c.compactor.delete_request_cancel_period,
            Duration::from_secs(24 * 3600)
        );
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let text = include_str!("../../../deploy/inferscope.example.yaml");
        let c = Config::from_yaml(text).expect("example config parses");
        c.validate().expect("example config is valid");
        assert_eq!(c.limits_config.ingestion_rate_mb, 30.0);
        assert_eq!(c.limits_config.max_entries_limit_per_query, 50_000);
        assert_eq!(
            c.limits_config.retention_period,
            Duration::from_secs(2160 * 3600)
        );
        assert_eq!(
            c.compactor.delete_request_cancel_period,
            Duration::from_secs(24 * 3600)
        );
        assert!(c.limits_config.discover_log_levels);
        assert_eq!(
            c.limits_config.discover_service_name,
            DEFAULT_SERVICE_NAME_LABELS.map(String::from).to_vec()
        );
        assert_eq!(
            c.ingest
                .labels
                .kubernetes
                .get("app.kubernetes.io/name")
                .map(String::as_str),
            Some("app")
        );
        assert_eq!(
            c.ingest.labels.structured_metadata_fields,
            LabelPolicyConfig::default().structured_metadata_fields
        );
        let zero = Config::from_yaml("compactor:\n  delete_request_cancel_period: 0s\n")
            .expect("zero cancel period");
        assert!(zero.compactor.delete_request_cancel_period.is_zero());
    }

    #[test]
    fn redaction_and_tokens_are_validated() {
        let c = Config::default();
        assert!(c.redaction.enabled, "redaction is on by default");
        assert!(c.auth.tokens.is_empty());
        let bad_regex = Config::from_yaml(
            "redaction:\n  patterns:\n    - name: internal_token\n      regex: 'tok(['\n",
        )
        .expect("parses");
        let err = bad_regex.validate().expect_err("invalid regex").to_string();
        assert!(err.contains("internal_token"), "{err}");
        let off = Config::from_yaml("redaction:\n  enabled: false\n").expect("parses");
        assert!(!off.redaction.enabled);
        let tokens = "auth:\n  tokens:\n    - token: 0123456789abcdef01\n      tenant: team-a\n      permissions: [push, query]\n";
        let without_auth = Config::from_yaml(tokens).expect("parses");
        let err = without_auth
            .validate()
            .expect_err("needs auth_enabled")
            .to_string();
        assert!(err.contains("auth_enabled"), "{err}");
        let ok = Config::from_yaml(&format!("auth_enabled: true\n{tokens}")).expect("parses");
        ok.validate().expect("valid");
        assert_eq!(
            ok.auth.tokens[0].permissions,
            vec![Permission::Push, Permission::Query]
        );
        assert!(
            !format!("{ok:?}").contains("0123456789abcdef01"),
            "tokens never printed"
        );
        let short = Config::from_yaml(
            "auth_enabled: true\nauth:\n  tokens:\n    - {token: short, tenant: a, permissions: [push]}\n",
        )
        .expect("parses");
        assert!(short.validate().is_err());
    }

    #[test]
    fn token_files_are_read_at_startup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "  file-token-0123456789\n").expect("write");
        let mut c = Config::from_yaml(&format!(
            "auth_enabled: true\nauth:\n  tokens:\n    - token_file: {}\n      tenant: team-a\n      permissions: [query]\n",
            path.display()
        ))
        .expect("parses");
        c.validate().expect("valid");
        c.auth.load_token_files().expect("reads");
        assert_eq!(
            c.auth.tokens[0].token.as_deref(),
            Some("file-token-0123456789")
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Config::from_yaml("limits_config:\n  max_line_sise: 1KB\n").expect_err("typo");
        assert!(err.to_string().contains("max_line_sise"), "{err}");
    }

    #[test]
    fn ingest_settings_refuse_unknown_keys_and_bad_targets() {
        let err =
            Config::from_yaml("ingest:\n  labels:\n    form_fields: [a]\n").expect_err("typo");
        assert!(err.to_string().contains("form_fields"), "{err}");
        let c = Config::from_yaml("ingest:\n  labels:\n    kubernetes: {a.b/c: bad-name}\n")
            .expect("parses");
        assert!(c.validate().is_err());
        let c = Config::from_yaml(
            "limits_config:\n  discover_log_levels: false\n  discover_service_name: []\n",
        )
        .expect("parses");
        assert!(!c.limits_config.discover_log_levels);
        assert!(c.limits_config.discover_service_name.is_empty());
    }

    #[test]
    fn listen_addresses_split() {
        assert_eq!(
            split_listen("127.0.0.1:3100").expect("ok"),
            ("127.0.0.1".into(), 3100)
        );
        assert_eq!(split_listen(":4317").expect("ok"), ("0.0.0.0".into(), 4317));
        assert_eq!(split_listen("[::1]:80").expect("ok"), ("::1".into(), 80));
        assert!(split_listen("nope").is_err());
    }
}
