//! Label sets: the identity of a log stream.
//!
//! A [`Labels`] value is always sorted by name with unique names, so two sets
//! that hold the same pairs compare equal, print the same and have the same
//! [`Labels::fingerprint`]. The text form is Prometheus's and Loki's:
//! `{app="aigateway", namespace="prod"}`.

use std::fmt;

/// A sorted set of label name/value pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

/// Why a label set in text form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label set at byte {offset}: {reason}")]
pub struct LabelsParseError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What was expected or found.
    pub reason: String,
}

/// Whether `name` is a valid Prometheus/Loki label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Labels {
    /// Builds a label set from pairs in any order. When a name repeats, the
    /// last value wins. Pairs with an empty value are dropped, as Prometheus
    /// and Loki treat an empty label as an absent one.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable sort keeps input order among equal names, so "last wins"
        // after dedup_by keeps the later one.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = val,
                _ => out.push((k, val)),
            }
        }
        out.retain(|(_, v)| !v.is_empty());
        Labels(out)
    }

    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Iterates the pairs in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The pairs in name order.
    pub fn as_pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Consumes the set into its sorted pairs.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set has no label.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable 64-bit hash of the set (FNV-1a over `name 0xff value 0xff`…).
    /// Stable across processes and versions, so it can be stored on disk.
    pub fn fingerprint(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0100_0000_01b3;
        let mut h = OFFSET;
        for (k, v) in &self.0 {
            for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(PRIME);
            }
        }
        h
    }

    /// Parses the Prometheus text form `{name="value", ...}` used by Loki's
    /// protobuf push. Values use Go string escapes (`\"`, `\\`, `\n`, `\t`).
    pub fn parse(input: &str) -> Result<Self, LabelsParseError> {
        LabelsParser {
            s: input.as_bytes(),
            pos: 0,
        }
        .parse()
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}=\"")?;
            for c in v.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

struct LabelsParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl LabelsParser<'_> {
    fn err(&self, reason: impl Into<String>) -> LabelsParseError {
        LabelsParseError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), LabelsParseError> {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected '{}'", c as char)))
        }
    }

    fn parse(mut self) -> Result<Labels, LabelsParseError> {
        self.expect(b'{')?;
        let mut pairs = Vec::new();
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                let name = self.name()?;
                self.expect(b'=')?;
                let value = self.quoted()?;
                pairs.push((name, value));
                self.skip_ws();
                match self.s.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or '}'")),
                }
            }
        }
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(self.err("unexpected text after '}'"));
        }
        Ok(Labels::from_pairs(pairs))
    }

    fn name(&mut self) -> Result<String, LabelsParseError> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
        {
            self.pos += 1;
        }
        let name = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default();
        if !is_valid_label_name(name) {
            self.pos = start;
            return Err(self.err("expected a label name"));
        }
        Ok(name.to_string())
    }

    fn quoted(&mut self) -> Result<String, LabelsParseError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = match self.s.get(self.pos + 1) {
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        _ => return Err(self.err("invalid escape")),
                    };
                    out.push(c);
                    self.pos += 2;
                }
                Some(&b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.err("label value is not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorts_and_dedups_with_last_wins() {
        let l = Labels::from_pairs([("b", "1"), ("a", "2"), ("b", "3"), ("c", "")]);
        assert_eq!(
            l.as_pairs(),
            &[("a".into(), "2".into()), ("b".into(), "3".into())]
        );
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn parses_loki_protobuf_label_strings() {
        let l = Labels::parse(r#"{app="aigateway", msg="say \"hi\"\n"}"#).expect("valid");
        assert_eq!(l.get("app"), Some("aigateway"));
        assert_eq!(l.get("msg"), Some("say \"hi\"\n"));
        assert_eq!(Labels::parse("{}").expect("empty"), Labels::empty());
    }

    #[test]
    fn rejects_malformed_label_strings() {
        for bad in [
            r#"app="x""#,
            r#"{app="x""#,
            r#"{1app="x"}"#,
            r#"{app=x}"#,
            r#"{app="x"} z"#,
        ] {
            assert!(Labels::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn fingerprint_is_stable() {
        // Pinned: blocks on disk store this value.
        let l = Labels::from_pairs([("app", "x")]);
        // FNV-1a of b"app\xffx\xff", computed independently.
        assert_eq!(l.fingerprint(), 0x4090_6840_b457_7f94);
        assert_ne!(
            l.fingerprint(),
            Labels::from_pairs([("app", "y")]).fingerprint()
        );
        assert_ne!(
            Labels::from_pairs([("a", "bc")]).fingerprint(),
            Labels::from_pairs([("ab", "c")]).fingerprint()
        );
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(pairs in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,12}"), 0..6)) {
            let l = Labels::from_pairs(pairs);
            let text = l.to_string();
            prop_assert_eq!(Labels::parse(&text).expect("own output parses"), l);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Labels::parse(&s);
        }
    }
}
