//! `GET /api/v1/genai/summary?by=model|provider|service|instance&start=…&end=…`
//! (or `since=1h`): the GenAI summary of [`crate::query::genai_summary`] as
//! JSON, for the UI and `inferscope genai top`, plus the models seen without a
//! price.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::ApiError;
use crate::http::params::{Params, now_ns};
use crate::query::genai_summary::{GroupBy, summarize};
use crate::query::response::Success;
use crate::state::AppState;
use crate::tenant::tenant_of;

/// The GenAI routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/genai/summary", get(summary))
}

async fn summary(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let result = async {
        let tenant = tenant_of(&headers, state.config.auth_enabled)?;
        let params = Params::parse(raw.as_deref(), None)?;
        let by_text = params.get("by").unwrap_or("model");
        let by = GroupBy::parse(by_text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid parameter \"by\": {by_text:?}: use model, provider, service or instance"
            ))
        })?;
        let end = params.time_ns("end")?.unwrap_or_else(now_ns);
        let since = params
            .duration("since")?
            .unwrap_or(std::time::Duration::from_secs(3600));
        let start = params
            .time_ns("start")?
            .unwrap_or(end - i64::try_from(since.as_nanos()).unwrap_or(i64::MAX));
        if end <= start {
            return Err(ApiError::bad_request("end must be after start"));
        }
        let store = state.metric_store.clone();
        let rows = tokio::task::spawn_blocking(move || summarize(&store, &tenant, by, start, end))
            .await
            .map_err(|e| ApiError::internal("summary task failed", &e))?
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let unpriced: Vec<serde_json::Value> = state
            .genai
            .unpriced()
            .into_iter()
            .map(|u| {
                json!({"provider": u.provider, "model": u.model, "tokens": u.tokens,
                       "last_seen_ns": u.last_seen_ns.to_string()})
            })
            .collect();
        Ok::<_, ApiError>(
            Json(Success::new(json!({
                "by": by.label(),
                "start": start.to_string(),
                "end": end.to_string(),
                "rows": rows,
                "unpriced": unpriced,
            })))
            .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
