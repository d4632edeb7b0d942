//! Evaluation of label filter expressions (`| status >= 500 and level="error"`).
//!
//! Semantics follow Loki: once `__error__` is set, filters other than those on
//! `__error__` itself let the line through; a value that cannot be converted for a
//! numeric/duration/bytes comparison sets `__error__=LabelFilterErr` and keeps the
//! line; a missing label fails numeric comparisons; `and` evaluates both sides.

use crate::ast::{CmpOp, LabelFilterExpr};
use crate::duration::{parse_bytes_value, parse_duration};
use crate::pipeline::ip::IpMatcher;
use crate::pipeline::state::{ERROR_LABEL, State};

/// Error value for failed conversions.
pub const LABEL_FILTER_ERR: &str = "LabelFilterErr";

/// A compiled label filter.
#[derive(Debug, Clone)]
pub enum CompiledLabelFilter {
    /// Both.
    And(Box<CompiledLabelFilter>, Box<CompiledLabelFilter>),
    /// Either.
    Or(Box<CompiledLabelFilter>, Box<CompiledLabelFilter>),
    /// A string matcher.
    Matcher(inferscope_model::LabelMatcher),
    /// Numeric comparison.
    Number(String, CmpOp, f64),
    /// Duration comparison (ns).
    Duration(String, CmpOp, i64),
    /// Bytes comparison.
    Bytes(String, CmpOp, u64),
    /// IP match.
    Ip(String, bool, IpMatcher),
}

impl CompiledLabelFilter {
    /// Compiles an AST label filter.
    pub fn compile(e: &LabelFilterExpr) -> Result<Self, String> {
        Ok(match e {
            LabelFilterExpr::And(a, b) => {
                Self::And(Box::new(Self::compile(a)?), Box::new(Self::compile(b)?))
            }
            LabelFilterExpr::Or(a, b) => {
                Self::Or(Box::new(Self::compile(a)?), Box::new(Self::compile(b)?))
            }
            LabelFilterExpr::Matcher(m) => Self::Matcher(m.clone()),
            LabelFilterExpr::Number { name, op, value } => Self::Number(name.clone(), *op, *value),
            LabelFilterExpr::Duration { name, op, value } => {
                Self::Duration(name.clone(), *op, *value)
            }
            LabelFilterExpr::Bytes { name, op, value } => Self::Bytes(name.clone(), *op, *value),
            LabelFilterExpr::Ip {
                name,
                negated,
                pattern,
            } => Self::Ip(name.clone(), *negated, IpMatcher::parse(pattern)?),
        })
    }

    /// Collects the label names the filter reads.
    pub fn names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Self::And(a, b) | Self::Or(a, b) => {
                a.names(out);
                b.names(out);
            }
            Self::Matcher(m) => out.push(&m.name),
            Self::Number(n, ..) | Self::Duration(n, ..) | Self::Bytes(n, ..) | Self::Ip(n, ..) => {
                out.push(n)
            }
        }
    }

    /// Evaluates the filter, possibly setting `__error__`.
    pub fn eval(&self, st: &mut State<'_>) -> bool {
        match self {
            Self::And(a, b) => {
                let l = a.eval(st);
                let r = b.eval(st);
                l && r
            }
            Self::Or(a, b) => a.eval(st) || b.eval(st),
            Self::Matcher(m) => {
                if m.name == ERROR_LABEL {
                    return m.matches(st.get(ERROR_LABEL).unwrap_or(""));
                }
                if st.has_err() {
                    return true;
                }
                m.matches(st.get(&m.name).unwrap_or(""))
            }
            Self::Number(name, op, want) => {
                if st.has_err() {
                    return true;
                }
                let Some(v) = st.get(name) else { return false };
                match v.trim().parse::<f64>() {
                    Ok(x) => op.cmp(x, *want),
                    Err(_) => {
                        let details = format!("strconv.ParseFloat: parsing {v:?}: invalid syntax");
                        st.set_error(LABEL_FILTER_ERR, &details);
                        true
                    }
                }
            }
            Self::Duration(name, op, want) => {
                if st.has_err() {
                    return true;
                }
                let Some(v) = st.get(name) else { return false };
                let t = v.trim();
                let parsed = match t.strip_prefix('-') {
                    Some(r) => parse_duration(r).map(|d| -d),
                    None => parse_duration(t.strip_prefix('+').unwrap_or(t)),
                };
                match parsed {
                    Some(x) => op.cmp(x, *want),
                    None => {
                        let details = format!("time: invalid duration {v:?}");
                        st.set_error(LABEL_FILTER_ERR, &details);
                        true
                    }
                }
            }
            Self::Bytes(name, op, want) => {
                if st.has_err() {
                    return true;
                }
                let Some(v) = st.get(name) else { return false };
                match parse_bytes_value(v) {
                    Some(x) => op.cmp(x, *want),
                    None => {
                        let details = format!("strconv.ParseFloat: parsing {v:?}: invalid syntax");
                        st.set_error(LABEL_FILTER_ERR, &details);
                        true
                    }
                }
            }
            Self::Ip(name, negated, ip) => {
                if st.has_err() {
                    return true;
                }
                let Some(v) = st.get(name) else {
                    return *negated;
                };
                ip.matches_value(v) != *negated
            }
        }
    }
}
