//! Loki's pattern syntax: literals and `<name>` / `<_>` captures.
//!
//! As in Loki, the first literal (if the pattern starts with one) must match at the
//! start of the line, each capture extends to the next literal, and a trailing capture
//! takes the rest of the line. The parser returns partial captures when a literal is
//! missing; the `|>` line filter requires the whole pattern to match.

use memchr::memmem;

#[derive(Debug, Clone)]
enum Node {
    Lit(Vec<u8>),
    Capture(Option<String>),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    nodes: Vec<Node>,
    names: Vec<String>,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

impl Pattern {
    /// Parses a pattern. With `require_named`, at least one named capture is needed
    /// (the `| pattern` parser); the `|>` filter accepts `<_>` only.
    pub fn parse(src: &str, require_named: bool) -> Result<Self, String> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut lit = Vec::new();
        let b = src.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'<'
                && let Some(end) = b[i + 1..].iter().position(|&c| c == b'>')
            {
                let name = &src[i + 1..i + 1 + end];
                let valid = name == "_" || inferscope_model::is_valid_label_name(name);
                if valid && !name.is_empty() {
                    if !lit.is_empty() {
                        nodes.push(Node::Lit(std::mem::take(&mut lit)));
                    }
                    if matches!(nodes.last(), Some(Node::Capture(_))) {
                        return Err("syntax error: consecutive capture".to_string());
                    }
                    let cap = (name != "_").then(|| name.to_string());
                    nodes.push(Node::Capture(cap));
                    i += end + 2;
                    continue;
                }
            }
            lit.push(b[i]);
            i += 1;
        }
        if !lit.is_empty() {
            nodes.push(Node::Lit(lit));
        }
        let mut names = Vec::new();
        for n in &nodes {
            if let Node::Capture(Some(name)) = n {
                if names.contains(name) {
                    return Err(format!("syntax error: duplicate capture name ({name})"));
                }
                names.push(name.clone());
            }
        }
        if nodes.is_empty() {
            return Err("syntax error: empty pattern".to_string());
        }
        if require_named && names.is_empty() {
            return Err("syntax error: at least one capture is required".to_string());
        }
        Ok(Pattern { nodes, names })
    }

    /// The named captures in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Extracts named captures (possibly fewer than [`Pattern::names`]).
    pub fn captures<'a>(&self, line: &'a [u8], out: &mut Vec<(usize, &'a [u8])>) {
        out.clear();
        if line.is_empty() {
            return;
        }
        let mut input = line;
        let mut nodes = &self.nodes[..];
        if let Some(Node::Lit(l)) = nodes.first() {
            if !input.starts_with(l) {
                return;
            }
            input = &input[l.len()..];
            nodes = &nodes[1..];
        }
        let mut idx = 0;
        while let Some(Node::Capture(name)) = nodes.first() {
            let Some(Node::Lit(l)) = nodes.get(1) else {
                if name.is_some() {
                    out.push((idx, input));
                }
                return;
            };
            nodes = &nodes[2..];
            match memmem::find(input, l) {
                None => {
                    if name.is_some() {
                        out.push((idx, input));
                    }
                    return;
                }
                Some(i) => {
                    if name.is_some() {
                        out.push((idx, &input[..i]));
                        idx += 1;
                    }
                    input = &input[i + l.len()..];
                }
            }
        }
    }

    /// Whether the whole pattern matches (the `|>` filter).
    pub fn test(&self, line: &[u8]) -> bool {
        if line.is_empty() {
            return false;
        }
        let mut input = line;
        let mut nodes = &self.nodes[..];
        if let Some(Node::Lit(l)) = nodes.first() {
            if !input.starts_with(l) {
                return false;
            }
            input = &input[l.len()..];
            nodes = &nodes[1..];
        }
        while !nodes.is_empty() {
            let Some(Node::Lit(l)) = nodes.get(1) else {
                return true;
            };
            nodes = &nodes[2..];
            match memmem::find(input, l) {
                None => return false,
                Some(i) => input = &input[i + l.len()..],
            }
        }
        input.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(p: &str, line: &str) -> Vec<(String, String)> {
        let pat = Pattern::parse(p, true).expect("valid pattern");
        let mut out = Vec::new();
        pat.captures(line.as_bytes(), &mut out);
        out.iter()
            .map(|(i, v)| {
                (
                    pat.names()[*i].clone(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn loki_doc_nginx_example() {
        let line = r#"188.23.54.2 - - [04/Jun/2021:07:46:20 +0000] "GET /api/v1 HTTP/1.1" 200 932 "-" "curl""#;
        let got = caps(
            r#"<ip> - - <_> "<method> <uri> <_>" <status> <size> <_> "<agent>" <_>"#,
            line,
        );
        assert_eq!(got[0], ("ip".into(), "188.23.54.2".into()));
        assert_eq!(got[1], ("method".into(), "GET".into()));
        assert_eq!(got[2], ("uri".into(), "/api/v1".into()));
        assert_eq!(got[3], ("status".into(), "200".into()));
        assert_eq!(got[4], ("size".into(), "932".into()));
    }

    #[test]
    fn partial_and_trailing_captures() {
        assert_eq!(
            caps("<a> x <b>", "1 x 2 3"),
            vec![("a".into(), "1".into()), ("b".into(), "2 3".into())]
        );
        assert_eq!(
            caps("<a> x <b>", "1 y 2"),
            vec![("a".into(), "1 y 2".into())]
        );
        assert!(caps("foo <a>", "bar 1").is_empty());
    }

    #[test]
    fn validation() {
        assert!(Pattern::parse("<a><b>", true).is_err());
        assert!(Pattern::parse("<_> x", true).is_err());
        assert!(Pattern::parse("<_> x", false).is_ok());
        assert!(Pattern::parse("<a> <a>", true).is_err());
    }

    #[test]
    fn filter_requires_full_match() {
        let p = Pattern::parse("<_> level=error <_>", false).expect("valid");
        assert!(p.test(b"ts=1 level=error msg=x"));
        assert!(!p.test(b"ts=1 level=info msg=x"));
        let q = Pattern::parse("<_> done", false).expect("valid");
        assert!(q.test(b"job done"));
        assert!(!q.test(b"job done twice"));
    }
}
