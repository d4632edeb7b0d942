//! Which tenant a request belongs to, and whether it may do what it asks.
//!
//! As in Loki: with `auth_enabled: false` every request is tenant `fake`; with
//! `auth_enabled: true` the `X-Scope-OrgID` header is required ([`tenant_of`],
//! called by every handler).
//!
//! Our addition, bearer tokens (`auth.tokens`): the [`authorize`] middleware
//! runs before every route. Each path is classified by [`access_of`] (open,
//! push or query; unknown paths need `query`, so a new route is closed until
//! classified). A request then needs `Authorization: Bearer <token>` naming a
//! configured token with that permission; the token's tenant is written into
//! `X-Scope-OrgID` for the handler, and a different `X-Scope-OrgID` sent by
//! the client is refused (403). Tokens are compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use inferscope_model::DEFAULT_TENANT;

use crate::config::{AuthConfig, Permission};
use crate::error::ApiError;
use crate::state::AppState;

/// The header that names the tenant.
pub const ORG_ID_HEADER: &str = "X-Scope-OrgID";

/// Resolves the tenant of a request.
pub fn tenant_of(headers: &HeaderMap, auth_enabled: bool) -> Result<String, ApiError> {
    if !auth_enabled {
        return Ok(DEFAULT_TENANT.to_string());
    }
    let value = headers
        .get(ORG_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "no org id"))?;
    check_tenant_id(value)?;
    Ok(value.to_string())
}

/// The tenant of a request that needs `access`, for callers outside the HTTP
/// middleware (OTLP/gRPC): with bearer tokens configured the token decides
/// (and must carry the permission), otherwise [`tenant_of`].
pub fn tenant_for(
    state: &AppState,
    headers: &HeaderMap,
    access: Access,
) -> Result<String, ApiError> {
    let tokens = &state.tokens;
    if !tokens.enabled() || access == Access::Open {
        return tenant_of(headers, state.config.auth_enabled);
    }
    let token = bearer_of(headers)
        .and_then(|given| tokens.find(given))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized: a valid Authorization: Bearer token is required",
            )
        })?;
    let allowed = match access {
        Access::Open => true,
        Access::Push => token.push,
        Access::Query => token.query,
    };
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "forbidden: the token of tenant {} lacks the permission",
                token.tenant
            ),
        ));
    }
    if let Some(claimed) = headers.get(ORG_ID_HEADER).map(|v| v.as_bytes())
        && claimed.trim_ascii() != token.tenant.as_bytes()
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "forbidden: {ORG_ID_HEADER} does not match the token's tenant {}",
                token.tenant
            ),
        ));
    }
    Ok(token.tenant.clone())
}

/// Loki's tenant id rules: at most 150 characters of `[A-Za-z0-9!-_.*'()]`.
pub fn check_tenant_id(value: &str) -> Result<(), ApiError> {
    if value.is_empty()
        || value.len() > 150
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
    {
        return Err(ApiError::bad_request(format!(
            "tenant ID '{value}' contains unsupported characters or is too long"
        )));
    }
    Ok(())
}

/// What a route needs from a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token: health, metrics, build info.
    Open,
    /// A token with the `push` permission.
    Push,
    /// A token with the `query` permission.
    Query,
}

/// Classifies a request path. Anything not listed as open or push is a read
/// (query, labels, series, index, tail, drilldown, deletes) and needs `query`.
pub fn access_of(path: &str) -> Access {
    match path {
        "/ready" | "/metrics" | "/loki/api/v1/status/buildinfo" | "/api/v1/status/buildinfo" => {
            Access::Open
        }
        // /flush is global (no tenant): only writers may force it.
        "/loki/api/v1/push" | "/api/prom/push" | "/flush" => Access::Push,
        p if is_otlp_export(p) => Access::Push,
        _ => Access::Query,
    }
}

/// OTLP/HTTP export paths (`/v1/logs`, `/otlp/v1/metrics`, …).
fn is_otlp_export(path: &str) -> bool {
    let path = path.strip_prefix("/otlp").unwrap_or(path);
    matches!(path, "/v1/logs" | "/v1/metrics" | "/v1/traces")
}

/// A configured token, ready for comparison.
#[derive(Clone)]
struct Token {
    secret: Vec<u8>,
    tenant: String,
    push: bool,
    query: bool,
}

/// The configured bearer tokens (empty: tokens are not used).
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.tokens.len())
    }
}

impl Tokens {
    /// From `auth:` after `token_file`s were read (tokens without a value are ignored).
    pub fn new(config: &AuthConfig) -> Tokens {
        let tokens = config
            .tokens
            .iter()
            .filter_map(|t| {
                let secret = t.token.as_ref()?.trim().as_bytes().to_vec();
                Some(Token {
                    secret,
                    tenant: t.tenant.clone(),
                    push: t.permissions.contains(&Permission::Push),
                    query: t.permissions.contains(&Permission::Query),
                })
            })
            .collect();
        Tokens { tokens }
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The token equal to `given`. Every configured token is compared in full
    /// whatever matches, so timing says nothing about which bytes matched.
    fn find(&self, given: &[u8]) -> Option<&Token> {
        let mut found = None;
        for t in &self.tokens {
            if constant_time_eq(&t.secret, given) && found.is_none() {
                found = Some(t);
            }
        }
        found
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

fn unauthorized() -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized: a valid Authorization: Bearer token is required",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_of(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Middleware: with tokens configured, authenticates and authorizes every
/// request and pins its tenant (see the module docs). Without tokens it only
/// passes the request on.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let tokens = &state.tokens;
    if !tokens.enabled() {
        return next.run(req).await;
    }
    let access = access_of(req.uri().path());
    if access == Access::Open {
        return next.run(req).await;
    }
    let Some(token) = bearer_of(req.headers()).and_then(|given| tokens.find(given)) else {
        tracing::info!(
            path = req.uri().path(),
            "request refused: missing or unknown bearer token"
        );
        return unauthorized();
    };
    let allowed = match access {
        Access::Open => true,
        Access::Push => token.push,
        Access::Query => token.query,
    };
    if !allowed {
        let needed = if access == Access::Push {
            "push"
        } else {
            "query"
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "forbidden: the token of tenant {} lacks the {needed} permission",
                token.tenant
            ),
        )
        .into_response();
    }
    let claimed = req.headers().get(ORG_ID_HEADER).map(|v| v.as_bytes());
    if let Some(claimed) = claimed
        && claimed.trim_ascii() != token.tenant.as_bytes()
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "forbidden: {ORG_ID_HEADER} does not match the token's tenant {}",
                token.tenant
            ),
        )
        .into_response();
    }
    match HeaderValue::from_str(&token.tenant) {
        Ok(v) => {
            req.headers_mut().insert(ORG_ID_HEADER, v);
        }
        Err(_) => return unauthorized(),
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants() {
        let mut h = HeaderMap::new();
        assert_eq!(tenant_of(&h, false).expect("fake"), "fake");
        assert_eq!(
            tenant_of(&h, true).expect_err("needs header").status,
            StatusCode::UNAUTHORIZED
        );
        h.insert(ORG_ID_HEADER, "team-a".parse().expect("header"));
        assert_eq!(tenant_of(&h, true).expect("ok"), "team-a");
        h.insert(ORG_ID_HEADER, "../etc".parse().expect("header"));
        assert!(tenant_of(&h, true).is_err());
    }

    #[test]
    fn constant_time_comparison_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_of(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer  tok123 ".parse().expect("h"));
        assert_eq!(bearer_of(&h), Some(&b"tok123"[..]));
        h.insert(header::AUTHORIZATION, "bearer tok".parse().expect("h"));
        assert_eq!(bearer_of(&h), Some(&b"tok"[..]));
        h.insert(
            header::AUTHORIZATION,
            "Basic dXNlcjpwdw==".parse().expect("h"),
        );
        assert_eq!(bearer_of(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().expect("h"));
        assert_eq!(bearer_of(&h), None);
    }

    /// Every `.route("…")` of `http/`, read from the sources, so a new route
    /// cannot escape classification.
    pub(crate) fn declared_routes() -> Vec<String> {
        let sources = [
            include_str!("http/drilldown.rs"),
            include_str!("http/genai.rs"),
            include_str!("http/health.rs"),
            include_str!("http/loki_delete.rs"),
            include_str!("http/loki_index.rs"),
            include_str!("http/loki_push.rs"),
            include_str!("http/loki_query.rs"),
            include_str!("http/loki_tail.rs"),
            include_str!("http/otlp.rs"),
            include_str!("http/prom_api.rs"),
            include_str!("http/trace.rs"),
        ];
        let mut routes = Vec::new();
        for source in sources {
            for (i, _) in source.match_indices(".route(") {
                let rest = source[i + ".route(".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                if let Some(end) = rest.find('"') {
                    routes.push(rest[..end].to_string());
                }
            }
        }
        routes
    }

    #[test]
    fn every_route_is_classified() {
        let routes = declared_routes();
        assert!(routes.len() >= 20, "{routes:?}");
        // The http/mod.rs module list must match the sources read above.
        let modules = include_str!("http/mod.rs")
            .lines()
            .filter(|l| l.starts_with("pub mod ") && !l.contains("params"))
            .count();
        assert_eq!(modules, 11, "a new http module: add it to declared_routes");
        for route in &routes {
            let expected = match route.as_str() {
                "/ready"
                | "/metrics"
                | "/loki/api/v1/status/buildinfo"
                | "/api/v1/status/buildinfo" => Access::Open,
                "/loki/api/v1/push" | "/api/prom/push" | "/flush" => Access::Push,
                r if r.ends_with("/v1/logs")
                    || r.ends_with("/v1/metrics")
                    || r.ends_with("/v1/traces") =>
                {
                    Access::Push
                }
                _ => Access::Query,
            };
            assert_eq!(access_of(route), expected, "{route}");
            if route.contains("query") || route.contains("label") || route.contains("series") {
                assert_eq!(access_of(route), Access::Query, "{route}");
            }
        }
        assert!(routes.iter().any(|r| r == "/loki/api/v1/tail"));
        assert!(routes.iter().any(|r| r == "/loki/api/v1/delete"));
    }

    /// Every declared route, through the real router and middleware: open
    /// routes answer without a token; the others need a token with the right
    /// permission and the token's own tenant.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_route_is_guarded_by_tokens() {
        use crate::config::{Config, TokenConfig};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            auth_enabled: true,
            ..Config::default()
        };
        config.common.path_prefix = dir.path().to_path_buf();
        config.server.http_listen_address = "127.0.0.1".into();
        config.server.http_listen_port = 0;
        config.server.grpc_listen_port = 0;
        let token = |t: &str, tenant: &str, p: &[Permission]| TokenConfig {
            token: Some(t.into()),
            token_file: None,
            tenant: tenant.into(),
            permissions: p.to_vec(),
        };
        config.auth.tokens = vec![
            token("push-token-0123456789", "team-a", &[Permission::Push]),
            token("query-token-0123456789", "team-a", &[Permission::Query]),
            token(
                "both-token-0123456789",
                "team-b",
                &[Permission::Push, Permission::Query],
            ),
        ];
        let server = crate::Server::bind(config).await.expect("bind");
        let base = format!("http://{}", server.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        tokio::task::spawn_blocking(move || {
            // A fresh connection per request: the server may close one after
            // refusing a push whose body it did not read, and a pooled connection
            // reused in that instant reads "peer disconnected".
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_idle_connections(0)
                .max_idle_connections_per_host(0)
                .build()
                .into();
            let status = |route: &str, token: Option<&str>, org: Option<&str>| -> u16 {
                let url = format!("{base}{}", route.replace("{name}", "app"));
                let auth = token.map(|t| format!("Bearer {t}"));
                let post = access_of(route) == Access::Push;
                let response = if post {
                    let mut r = agent.post(&url).header("Content-Type", "application/json");
                    if let Some(a) = &auth {
                        r = r.header("Authorization", a);
                    }
                    if let Some(o) = org {
                        r = r.header(ORG_ID_HEADER, o);
                    }
                    r.send(&br#"{"streams":[]}"#[..])
                } else {
                    let mut r = agent.get(&url);
                    if let Some(a) = &auth {
                        r = r.header("Authorization", a);
                    }
                    if let Some(o) = org {
                        r = r.header(ORG_ID_HEADER, o);
                    }
                    r.call()
                };
                response.expect("http").status().as_u16()
            };
            for route in declared_routes() {
                let access = access_of(&route);
                if access == Access::Open {
                    if route != "/flush" {
                        assert_eq!(status(&route, None, None), 200, "{route}");
                    }
                    continue;
                }
                assert_eq!(status(&route, None, None), 401, "{route} without a token");
                assert_eq!(
                    status(&route, Some("wrong-token-0123456789"), None),
                    401,
                    "{route}"
                );
                let (allowed, refused) = match access {
                    Access::Push => ("push-token-0123456789", "query-token-0123456789"),
                    _ => ("query-token-0123456789", "push-token-0123456789"),
                };
                assert_eq!(
                    status(&route, Some(refused), None),
                    403,
                    "{route} wrong permission"
                );
                assert_eq!(
                    status(&route, Some(allowed), Some("team-b")),
                    403,
                    "{route} with another tenant's org id"
                );
                let ok = status(&route, Some(allowed), Some("team-a"));
                assert!(ok != 401 && ok != 403, "{route} with the right token: {ok}");
                let ok = status(&route, Some("both-token-0123456789"), None);
                assert!(ok != 401 && ok != 403, "{route} with the right token: {ok}");
            }
        })
        .await
        .expect("requests");
        let _ = stop.send(());
        serving.await.expect("join").expect("serve");
    }
}
