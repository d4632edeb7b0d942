//! Compiled line filters that run on raw bytes.
//!
//! Literal filters use `memchr::memmem::Finder`; regex filters use
//! `regex::bytes::Regex` (RE2 semantics, unanchored), except that regexes that are
//! pure literals or alternations of literals (optionally wrapped in `.*`) are turned
//! into substring searches. A [`LineFilter`] is a conjunction of filters.

use std::sync::Arc;

use memchr::memmem::Finder;
use regex_syntax::hir::{Hir, HirKind};

use crate::ast::{LineFilterExpr, LineFilterOp, LineFilterValue};
use crate::pipeline::ip::IpMatcher;
use crate::pipeline::pattern::Pattern;

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // Substr is the hot, common variant: keep it inline.
enum Matcher {
    /// Empty needle: always matches.
    All,
    Substr(Finder<'static>),
    Regex(regex::bytes::Regex),
    Ip(IpMatcher),
    Pattern(Pattern),
}

impl Matcher {
    fn matches(&self, line: &[u8]) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Substr(f) => f.find(line).is_some(),
            Matcher::Regex(r) => r.is_match(line),
            Matcher::Ip(ip) => ip.matches_line(line),
            Matcher::Pattern(p) => p.test(line),
        }
    }
}

#[derive(Debug, Clone)]
struct One {
    negated: bool,
    alts: Vec<Matcher>,
}

/// A conjunction of compiled line filters. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct LineFilter {
    filters: Arc<[One]>,
}

/// Why a line filter cannot be compiled (the parser already rejects these).
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid line filter: {0}")]
pub struct LineFilterError(pub String);

/// If the regex is a literal or alternation of literals (possibly surrounded by
/// `.*`), returns them.
fn literal_alternatives(re: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new().build().parse(re).ok()?;
    fn strip_dotstar(h: &Hir) -> &Hir {
        if let HirKind::Concat(parts) = h.kind() {
            let is_dotstar = |p: &Hir| {
                matches!(p.kind(), HirKind::Repetition(r) if r.min == 0 && r.max.is_none()
                    && matches!(r.sub.kind(), HirKind::Class(_)))
            };
            let inner: Vec<&Hir> = parts.iter().collect();
            let mut lo = 0;
            let mut hi = inner.len();
            while lo < hi && is_dotstar(inner[lo]) {
                lo += 1;
            }
            while hi > lo && is_dotstar(inner[hi - 1]) {
                hi -= 1;
            }
            if hi - lo == 1 {
                return inner[lo];
            }
        }
        h
    }
    fn lit(h: &Hir) -> Option<Vec<u8>> {
        match h.kind() {
            HirKind::Literal(l) => Some(l.0.to_vec()),
            HirKind::Capture(c) => lit(&c.sub),
            HirKind::Concat(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.extend(lit(p)?);
                }
                Some(out)
            }
            _ => None,
        }
    }
    let h = strip_dotstar(&hir);
    let h = if let HirKind::Capture(c) = h.kind() {
        strip_dotstar(&c.sub)
    } else {
        h
    };
    // `.*` alone would strip to itself; only accept literal shapes below.
    match h.kind() {
        HirKind::Alternation(alts) => alts.iter().map(lit).collect(),
        _ => lit(h).map(|l| vec![l]),
    }
}

fn compile_one(e: &LineFilterExpr) -> Result<One, LineFilterError> {
    let mut alts = Vec::with_capacity(e.values.len());
    for v in &e.values {
        let m = match (e.op, v) {
            (_, LineFilterValue::Ip(p)) => {
                Matcher::Ip(IpMatcher::parse(p).map_err(LineFilterError)?)
            }
            (LineFilterOp::Contains | LineFilterOp::NotContains, LineFilterValue::Str(s)) => {
                if s.is_empty() {
                    Matcher::All
                } else {
                    Matcher::Substr(Finder::new(s.as_bytes()).into_owned())
                }
            }
            (LineFilterOp::Match | LineFilterOp::NotMatch, LineFilterValue::Str(s)) => {
                match literal_alternatives(s) {
                    Some(lits) if lits.iter().any(Vec::is_empty) => Matcher::All,
                    Some(lits) if lits.len() == 1 => {
                        Matcher::Substr(Finder::new(&lits[0]).into_owned())
                    }
                    Some(lits) if lits.len() <= 4 => {
                        for l in lits {
                            alts.push(Matcher::Substr(Finder::new(&l).into_owned()));
                        }
                        continue;
                    }
                    _ => Matcher::Regex(
                        regex::bytes::Regex::new(s).map_err(|e| LineFilterError(e.to_string()))?,
                    ),
                }
            }
            (LineFilterOp::Pattern | LineFilterOp::NotPattern, LineFilterValue::Str(s)) => {
                Matcher::Pattern(Pattern::parse(s, false).map_err(LineFilterError)?)
            }
        };
        alts.push(m);
    }
    Ok(One {
        negated: e.op.is_negated(),
        alts,
    })
}

impl LineFilter {
    /// Compiles a conjunction of line filter expressions.
    pub fn compile<'a>(
        exprs: impl IntoIterator<Item = &'a LineFilterExpr>,
    ) -> Result<Self, LineFilterError> {
        let filters: Vec<One> = exprs
            .into_iter()
            .map(compile_one)
            .collect::<Result<_, _>>()?;
        Ok(LineFilter {
            filters: filters.into(),
        })
    }

    /// Whether the line passes every filter.
    #[inline]
    pub fn matches(&self, line: &[u8]) -> bool {
        self.filters.iter().all(|f| {
            let any = f.alts.iter().any(|m| m.matches(line));
            any != f.negated
        })
    }

    /// Number of filters in the conjunction.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether there is no filter (everything matches).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Expr, Stage};

    fn filter(q: &str) -> LineFilter {
        let Ok(Expr::Log(sel)) = crate::parse(q) else {
            panic!("not a log query: {q}")
        };
        let exprs: Vec<&LineFilterExpr> = sel
            .stages
            .iter()
            .filter_map(|s| match s {
                Stage::LineFilter(l) => Some(l),
                _ => None,
            })
            .collect();
        LineFilter::compile(exprs).expect("compiles")
    }

    #[test]
    fn literal_and_negated_filters() {
        let f = filter(r#"{a="b"} |= "error" != "timeout""#);
        assert!(f.matches(b"an error occurred"));
        assert!(!f.matches(b"an error: timeout"));
        assert!(!f.matches(b"all good"));
    }

    #[test]
    fn or_alternatives() {
        let f = filter(r#"{a="b"} |= "foo" or "bar""#);
        assert!(f.matches(b"xx bar") && f.matches(b"foo") && !f.matches(b"baz"));
        let n = filter(r#"{a="b"} != "foo" or "bar""#);
        assert!(!n.matches(b"xx bar") && !n.matches(b"foo") && n.matches(b"baz"));
    }

    #[test]
    fn regex_filters_are_unanchored_re2() {
        let f = filter(r#"{a="b"} |~ "status=5[0-9]{2}""#);
        assert!(f.matches(b"GET / status=503 took=1s"));
        assert!(!f.matches(b"status=404"));
        let ci = filter(r#"{a="b"} |~ "(?i)ERROR""#);
        assert!(ci.matches(b"an error") && ci.matches(b"ErRoR!"));
        let neg = filter(r#"{a="b"} !~ "debug|trace""#);
        assert!(neg.matches(b"info x") && !neg.matches(b"a trace here"));
        let all = filter(r#"{a="b"} |~ ".*""#);
        assert!(all.matches(b""));
    }

    #[test]
    fn literal_regexes_become_substring_searches() {
        assert_eq!(literal_alternatives("foo"), Some(vec![b"foo".to_vec()]));
        assert_eq!(
            literal_alternatives("foo|bar"),
            Some(vec![b"foo".to_vec(), b"bar".to_vec()])
        );
        assert_eq!(literal_alternatives(".*foo.*"), Some(vec![b"foo".to_vec()]));
        assert_eq!(literal_alternatives(r"a\.b"), Some(vec![b"a.b".to_vec()]));
        assert_eq!(literal_alternatives("fo+"), None);
        assert_eq!(literal_alternatives("(?i)foo"), None);
        assert_eq!(literal_alternatives("^foo"), None);
    }

    #[test]
    fn pattern_and_ip_filters() {
        let p = filter(r#"{a="b"} |> "<_> level=error <_>""#);
        assert!(p.matches(b"ts=1 level=error msg=x"));
        assert!(!p.matches(b"ts=1 level=info msg=x"));
        let np = filter(r#"{a="b"} !> "<_> level=error <_>""#);
        assert!(np.matches(b"ts=1 level=info msg=x"));
        let ip = filter(r#"{a="b"} |= ip("192.168.0.0/16")"#);
        assert!(ip.matches(b"from 192.168.1.1 ok") && !ip.matches(b"from 10.0.0.1"));
    }
}
