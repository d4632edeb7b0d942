//! The Inferscope server: one binary that ingests logs through the Loki push
//! API, stores them durably, and answers LogQL through the Loki HTTP API.
//!
//! Start reading at [`run`]; `ARCHITECTURE.md` at the repository root maps
//! the modules and the push and query flows.

pub mod allocator;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_metrics;
pub mod error;
pub mod genai_cli;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod otlp;
pub mod query;
pub mod state;
pub mod tenant;
pub mod trace_cli;
pub mod units;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use inferscope_storage::{Store, StoreConfig, WalSync};
use tokio::net::TcpListener;

use crate::config::{Config, WalSyncPolicy};
use crate::state::AppState;

/// Opens the store described by `config`.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let data_dir = &config.common.path_prefix;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("failed to create data directory {}", data_dir.display()))?;
    let s = &config.storage;
    let mut store_config = StoreConfig::local(data_dir.clone())
        .with_context(|| format!("failed to open block storage under {}", data_dir.display()))?;
    store_config.wal_sync = match s.wal_sync {
        WalSyncPolicy::Always => WalSync::Always,
        WalSyncPolicy::Interval => WalSync::Interval(s.wal_sync_interval),
        WalSyncPolicy::Never => WalSync::Never,
    };
    store_config.head_max_bytes = s.head_max_bytes as usize;
    store_config.head_max_age = s.head_max_age;
    store_config.compaction_min_blocks = s.compaction_min_blocks;
    let retention = config.limits_config.retention_period;
    store_config.retention = (!retention.is_zero()).then_some(retention);
    store_config.deletes = http::loki_delete::store_delete_config(config);
    let store = Store::open(store_config)
        .await
        .with_context(|| format!("failed to open the store in {}", data_dir.display()))?;
    Ok(Arc::new(store))
}

/// Opens the metric store under `<data dir>/metrics`, with the logs' retention.
pub fn open_metric_store(config: &Config) -> anyhow::Result<Arc<inferscope_metrics::MetricStore>> {
    let dir = config.common.path_prefix.join("metrics");
    let retention = config.limits_config.retention_period;
    let store = inferscope_metrics::MetricStore::open(
        &dir,
        inferscope_metrics::StoreOptions {
            retention_ns: i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX),
        },
    )
    .with_context(|| format!("failed to open the metric store in {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// The GenAI deriver over the configured pricing table (the shipped one when
/// `genai.pricing_file` is unset).
pub fn genai_deriver(config: &Config) -> anyhow::Result<Arc<inferscope_metrics::GenAiDeriver>> {
    use inferscope_metrics::{GenAiDeriver, PricingHandle, PricingTable};
    let table = match &config.genai.pricing_file {
        Some(path) => PricingTable::from_file(path)
            .with_context(|| format!("failed to load genai.pricing_file {}", path.display()))?,
        None => PricingTable::default_table().context("the shipped pricing table is invalid")?,
    };
    tracing::info!(
        providers = table.provider_count(),
        models = table.priced_model_count(),
        file = ?config.genai.pricing_file,
        "GenAI pricing table loaded"
    );
    Ok(Arc::new(GenAiDeriver::new(PricingHandle::new(table))))
}

/// The server's state over the stores `config` names (opened or created),
/// without any listener: what the server runs on, and what the in-process
/// benchmarks drive.
pub async fn open_state(config: Config) -> anyhow::Result<Arc<AppState>> {
    let store = open_store(&config).await?;
    let metric_store = open_metric_store(&config)?;
    let genai = genai_deriver(&config)?;
    Ok(AppState::new(config, store, metric_store, genai))
}

/// A server bound to its port, not yet serving.
pub struct Server {
    /// Shared state.
    pub state: Arc<AppState>,
    listener: TcpListener,
    grpc_listener: TcpListener,
}

impl Server {
    /// Opens the store and binds the HTTP port.
    pub async fn bind(mut config: Config) -> anyhow::Result<Server> {
        config.validate()?;
        config.auth.load_token_files()?;
        log_access_mode(&config);
        let addr = config.http_addr()?;
        let grpc_addr = config.grpc_addr()?;
        let state = open_state(config).await?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("failed to listen on {addr}"))?;
        let grpc_listener = otlp::grpc::bind(grpc_addr).await?;
        Ok(Server {
            state,
            listener,
            grpc_listener,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The bound OTLP/gRPC address (useful with port 0).
    pub fn grpc_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.grpc_listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, then flushes the head into blocks.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let maintenance = tokio::spawn(maintenance_loop(state.clone()));
        tokio::spawn(preload_id_sidecars(state.clone()));
        let pricing = tokio::spawn(pricing_reload_loop(state.clone()));
        // One shutdown signal for both transports.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut grpc_stop = stop_rx.clone();
        let grpc = tokio::spawn(otlp::grpc::serve(
            state.clone(),
            self.grpc_listener,
            async move {
                let _ = grpc_stop.wait_for(|stop| *stop).await;
            },
        ));
        let http = axum::serve(self.listener, http::router(state.clone()))
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await
            .context("HTTP server failed");
        drop(stop_rx);
        match grpc.await {
            Ok(Err(e)) => tracing::error!(error = %e, "OTLP/gRPC server failed"),
            Err(e) => tracing::error!(error = %e, "OTLP/gRPC server task failed"),
            Ok(Ok(())) => {}
        }
        http?;
        maintenance.abort();
        pricing.abort();
        tracing::info!("shutting down: flushing the in-memory head into blocks");
        state
            .store
            .flush()
            .await
            .context("failed to flush on shutdown")?;
        let metric_store = state.metric_store.clone();
        tokio::task::spawn_blocking(move || metric_store.maintain(http::params::now_ns()))
            .await
            .context("metric checkpoint task failed")?
            .context("failed to checkpoint the metric store on shutdown")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Loads the id sidecars of the stored blocks in the background, so that the
/// first trace lookups after a start do not wait for them.
async fn preload_id_sidecars(state: Arc<AppState>) {
    let started = std::time::Instant::now();
    let (sidecars, bytes) = state.store.preload_id_sidecars().await;
    if sidecars > 0 {
        tracing::info!(
            sidecars,
            bytes,
            seconds = started.elapsed().as_secs_f64(),
            "id sidecars loaded for trace lookups"
        );
    }
}

async fn maintenance_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.storage.maintenance_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.maintenance_wakeup.notified() => {}
        }
        if let Err(e) = state.store.maintain().await {
            tracing::error!(error = %e, "storage maintenance failed");
        }
        let metric_store = state.metric_store.clone();
        let checkpoint =
            tokio::task::spawn_blocking(move || metric_store.maintain(http::params::now_ns()))
                .await;
        match checkpoint {
            Ok(Err(e)) => tracing::error!(error = %e, "metric store maintenance failed"),
            Err(e) => tracing::error!(error = %e, "metric store maintenance task failed"),
            Ok(Ok(())) => {}
        }
    }
}

/// Re-reads `genai.pricing_file` when it changes; a bad edit is reported and the
/// previous table stays.
async fn pricing_reload_loop(state: Arc<AppState>) {
    let Some(path) = state.config.genai.pricing_file.clone() else {
        return;
    };
    let file = inferscope_metrics::PricingFile::new(path.clone());
    // The table loaded at startup counts as the file's first version.
    let _ = file.reload_if_changed(state.genai.pricing());
    let mut tick = tokio::time::interval(state.config.genai.pricing_reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match file.reload_if_changed(state.genai.pricing()) {
            Ok(true) => tracing::info!(file = %path.display(), "GenAI pricing table reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "GenAI pricing table not reloaded; keeping the previous one")
            }
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("received shutdown signal");
}

/// Says at startup how requests are attributed to tenants (never the tokens).
fn log_access_mode(config: &Config) {
    if !config.auth_enabled {
        tracing::info!(
            tenant = inferscope_model::DEFAULT_TENANT,
            "auth_enabled: false: every request is tenant {}",
            inferscope_model::DEFAULT_TENANT
        );
    } else if config.auth.tokens.is_empty() {
        tracing::info!("auth_enabled: true: every request needs X-Scope-OrgID");
    } else {
        tracing::info!(
            tokens = config.auth.tokens.len(),
            "auth_enabled: true with bearer tokens: the tenant is the token's"
        );
    }
    let r = &config.redaction;
    tracing::info!(
        enabled = r.enabled,
        patterns = r.patterns.len(),
        disabled_tenants = r.disabled_tenants.len(),
        "secret redaction"
    );
}
