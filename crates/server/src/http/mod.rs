//! The HTTP API: one module per API, each exporting `routes()`, merged here.

pub mod drilldown;
pub mod genai;
pub mod health;
pub mod loki_delete;
pub mod loki_index;
pub mod loki_push;
pub mod loki_query;
pub mod loki_tail;
pub mod otlp;
pub mod params;
pub mod prom_api;
pub mod trace;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::state::AppState;

/// The whole HTTP API over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(drilldown::routes())
        .merge(loki_index::routes())
        .merge(loki_push::routes())
        .merge(loki_query::routes())
        .merge(loki_tail::routes())
        .merge(loki_delete::routes())
        .merge(trace::routes())
        .merge(otlp::routes())
        .merge(prom_api::routes())
        .merge(genai::routes())
        .layer(DefaultBodyLimit::max(loki_push::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::tenant::authorize,
        ))
        .with_state(state)
}
