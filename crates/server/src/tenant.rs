//! Which tenant a request belongs to, as in Loki: with `auth_enabled: false`
//! every request is tenant `fake`; with `auth_enabled: true` the
//! `X-Scope-OrgID` header is required.

use axum::http::{HeaderMap, StatusCode};
use inferscope_model::DEFAULT_TENANT;

use crate::error::ApiError;

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
    if value.len() > 150
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
    {
        return Err(ApiError::bad_request(format!(
            "tenant ID '{value}' contains unsupported characters or is too long"
        )));
    }
    Ok(value.to_string())
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
}
