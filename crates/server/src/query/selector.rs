//! Parsing the selectors of metadata endpoints (`match[]`, `query`).

use inferscope_model::LabelMatcher;
use inferscope_query::{Expr, parse};

use crate::error::ApiError;

/// Parses `{a="b"}` (a log selector without pipeline) into matchers.
pub fn parse_matchers(selector: &str) -> Result<Vec<LabelMatcher>, ApiError> {
    match parse(selector).map_err(|e| ApiError::bad_request(e.to_string()))? {
        Expr::Log(log) if log.stages.is_empty() => Ok(log.matchers),
        _ => Err(ApiError::bad_request(format!(
            "invalid selector {selector:?}: expected a stream selector such as {{app=\"aigateway\"}}"
        ))),
    }
}
