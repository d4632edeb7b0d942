//! Label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
//!
//! Regexes are fully anchored as in Prometheus and Loki (RE2 semantics via the
//! `regex` crate). A label that is absent matches as the empty string, so
//! `{env=""}` selects streams without `env`.

use regex::Regex;

use crate::Labels;

/// The comparison a matcher applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

impl MatchOp {
    /// The operator as written in a selector.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// Why a matcher could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?} for label {name}: {source}")]
pub struct MatcherError {
    /// The label the matcher is for.
    pub name: String,
    /// The offending pattern.
    pub pattern: String,
    /// What the regex compiler said.
    #[source]
    pub source: regex::Error,
}

/// One label matcher, with its regex compiled once.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Literal value or regex source.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for LabelMatcher {}

impl LabelMatcher {
    /// Builds a matcher, compiling the anchored regex for `=~` and `!~`.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(Regex::new(&format!("^(?s:{value})$")).map_err(
                |source| MatcherError {
                    name: name.clone(),
                    pattern: value.clone(),
                    source,
                },
            )?),
            MatchOp::Eq | MatchOp::NotEq => None,
        };
        Ok(LabelMatcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// Whether a label value (`""` when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::NotEq, _) => value != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(value),
            (MatchOp::NotRe, Some(re)) => !re.is_match(value),
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }

    /// Whether the matcher selects the empty value, i.e. also matches streams
    /// that lack the label. Loki requires at least one matcher that does not.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Whether `labels` satisfy every matcher.
pub fn matches_all(matchers: &[LabelMatcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, op: MatchOp, v: &str) -> LabelMatcher {
        LabelMatcher::new(name, op, v).expect("valid matcher")
    }

    #[test]
    fn regex_is_fully_anchored() {
        let re = m("app", MatchOp::Re, "gate.*");
        assert!(re.matches("gateway"));
        assert!(!re.matches("aigateway"));
        let alt = m("app", MatchOp::Re, "a|b");
        assert!(alt.matches("a") && alt.matches("b") && !alt.matches("ab"));
    }

    #[test]
    fn absent_label_matches_as_empty() {
        let labels = Labels::from_pairs([("app", "x")]);
        assert!(matches_all(&[m("env", MatchOp::Eq, "")], &labels));
        assert!(!matches_all(&[m("env", MatchOp::NotEq, "")], &labels));
        assert!(matches_all(&[m("env", MatchOp::NotRe, "prod")], &labels));
    }

    #[test]
    fn bad_regex_is_an_error_naming_the_label() {
        let err = LabelMatcher::new("app", MatchOp::Re, "(").expect_err("invalid");
        assert!(err.to_string().contains("label app"), "{err}");
    }
}
