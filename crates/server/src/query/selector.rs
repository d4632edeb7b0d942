//! Parsing the selectors of metadata endpoints (`match[]`, `query`), and the
//! id hint of log selectors.

use inferscope_model::{LabelMatcher, MatchOp};
use inferscope_query::ast::{LabelFilterExpr, Stage};
use inferscope_query::{Expr, LogSelector, parse};

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

/// The id hint of a log selector (`ScanRequest::id_hint`): `(field, id)`
/// when the pipeline, before any stage that could change labels (a parser,
/// `label_format`, `drop`, `keep`, `line_format`, `decolorize`), holds a
/// label filter `field="id"` on an indexed field, alone or in a top-level
/// `and`. Such a filter keeps only entries whose structured metadata (or
/// stream label) `field` is `id`, so storage may skip what the id index rules
/// out: `{app=~".+"} | trace_id="4bf9…"`.
pub fn id_hint(selector: &LogSelector) -> Option<(String, String)> {
    fn find(expr: &LabelFilterExpr) -> Option<(String, String)> {
        match expr {
            LabelFilterExpr::And(a, b) => find(a).or_else(|| find(b)),
            LabelFilterExpr::Matcher(m)
                if m.op == MatchOp::Eq
                    && inferscope_storage::ids::ID_FIELDS.contains(&m.name.as_str())
                    && !m.value.is_empty() =>
            {
                Some((m.name.clone(), m.value.clone()))
            }
            _ => None,
        }
    }
    for stage in &selector.stages {
        match stage {
            Stage::LineFilter(_) => continue,
            Stage::LabelFilter(expr) => {
                if let Some(hint) = find(expr) {
                    return Some(hint);
                }
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(q: &str) -> Option<(String, String)> {
        match parse(q).expect("parses") {
            Expr::Log(s) => id_hint(&s),
            Expr::Metric(_) => panic!("log query expected"),
        }
    }

    #[test]
    fn id_hints_only_where_safe() {
        let want = Some(("trace_id".to_string(), "abc".to_string()));
        assert_eq!(hint(r#"{app="a"} | trace_id="abc""#), want);
        assert_eq!(
            hint(r#"{app="a"} |= "x" | level="info" and trace_id="abc""#),
            want
        );
        assert_eq!(hint(r#"{app="a"} | trace_id="abc" | json"#), want);
        assert_eq!(hint(r#"{app="a"} | json | trace_id="abc""#), None);
        assert_eq!(hint(r#"{app="a"} | trace_id="abc" or level="x""#), None);
        assert_eq!(hint(r#"{app="a"} | trace_id=~"abc""#), None);
        assert_eq!(hint(r#"{app="a"} | span_id="abc""#), None);
        assert_eq!(
            hint(r#"{app="a"} | label_format trace_id=app | trace_id="abc""#),
            None
        );
    }
}
