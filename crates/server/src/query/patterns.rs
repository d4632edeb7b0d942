//! Log pattern mining for `/loki/api/v1/patterns`: a Drain miner modelled on Loki's
//! pattern ingester (`pkg/pattern/drain`), run at query time over the query's lines.
//!
//! Drain (He et al., ICWS 2017) keeps a fixed-depth prefix tree: the first level splits
//! lines by token count, the next levels by their first tokens (a token holding a digit
//! goes down the `<_>` branch; a node has at most `max_children` children, after which
//! new tokens share `<_>`), and each leaf holds clusters. A line joins the most similar
//! cluster of its leaf (share of equal tokens ≥ `sim_th`, ties to the cluster with more
//! `<_>`), whose template then replaces every differing token by `<_>`; otherwise it
//! starts a cluster. Loki's defaults: depth 30, `sim_th` 0.3, 15 children.
//!
//! Tokens come from Loki's punctuation tokenizer: split at spaces, `=` and Unicode
//! punctuation other than `_ - . : /`, keeping the punctuation as tokens and the spaces
//! as positions, so a pattern joins back into the line's own shape
//! (`level=info msg="request <_>" took=<_>`); runs of `<_>` collapse into one.
//!
//! Unlike Loki, which drops lines of fewer than 4 or more than 80 tokens, lines longer
//! than 3000 bytes, and evicts clusters past 300, every line counts here exactly once:
//! long lines are cut at 3000 bytes (a line keeps at most 127 tokens, the rest being
//! one last token, as in Loki) and clusters are never evicted.

use std::collections::{BTreeMap, HashMap};

/// The placeholder for a variable token.
pub const PARAM: &str = "<_>";
/// Longest line tokenized; the rest is cut (Loki's `MaxAllowedLineLength`).
const MAX_LINE_BYTES: usize = 3000;
/// Most tokens per line; the remainder becomes one token (as in Loki).
const MAX_TOKENS: usize = 127;

/// Miner settings (Loki's `drain.DefaultConfig`).
#[derive(Debug, Clone, Copy)]
pub struct MinerConfig {
    /// Prefix tree depth; the first `depth - 2` tokens route a line.
    pub depth: usize,
    /// Share of equal tokens a line needs to join a cluster.
    pub sim_th: f64,
    /// Most children per tree node before new tokens share the `<_>` child.
    pub max_children: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            depth: 30,
            sim_th: 0.3,
            max_children: 15,
        }
    }
}

/// Splits a line the way Loki's punctuation tokenizer does. Returns the tokens and,
/// for each space in the line, the index of the token it follows.
pub fn tokenize(line: &str) -> (Vec<String>, Vec<usize>) {
    let mut cut = line.len().min(MAX_LINE_BYTES);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    let line = &line[..cut];
    let mut tokens: Vec<String> = Vec::new();
    let mut spaces_after: Vec<usize> = Vec::new();
    let mut start = 0;
    for (i, c) in line.char_indices() {
        if tokens.len() >= MAX_TOKENS {
            break;
        }
        if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/') {
            continue;
        }
        if c == ' ' || c == '=' || is_punctuation(c) {
            if i > start {
                tokens.push(line[start..i].to_string());
            }
            if c == ' ' {
                // A leading space follows no token: Loki loses it too.
                if let Some(last) = tokens.len().checked_sub(1) {
                    spaces_after.push(last);
                }
            } else {
                tokens.push(c.to_string());
            }
            start = i + c.len_utf8();
        }
    }
    if start < line.len() {
        tokens.push(line[start..].to_string());
    }
    (tokens, spaces_after)
}

/// Go's `unicode.IsPunct` for the characters logs are made of: ASCII punctuation
/// other than the symbols Go classes apart (`$ + < = > ^ \` | ~`), and the Unicode
/// punctuation blocks.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation()
            && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~');
    }
    matches!(c,
        '\u{a1}' | '\u{a7}' | '\u{ab}' | '\u{b6}' | '\u{b7}' | '\u{bb}' | '\u{bf}'
        | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205e}' | '\u{3001}'..='\u{3003}'
        | '\u{3008}'..='\u{3011}')
}

/// Joins tokens back with the spaces of the cluster's first line, collapsing runs of
/// `<_>` (Loki's `deduplicatePlaceholders`).
fn join(tokens: &[String], spaces_after: &[usize]) -> String {
    let mut out = String::new();
    let mut spaces = spaces_after.iter().peekable();
    for (i, token) in tokens.iter().enumerate() {
        if token == PARAM && out.ends_with(PARAM) {
            // `<_><_>` becomes `<_>`; the spaces after it still apply.
        } else {
            out.push_str(token);
        }
        while spaces.next_if(|s| **s == i).is_some() {
            out.push(' ');
        }
    }
    out
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<String, Node>,
    clusters: Vec<usize>,
}

/// One pattern being mined.
#[derive(Debug, Clone)]
struct Cluster {
    tokens: Vec<String>,
    spaces_after: Vec<usize>,
    /// Line count per bucket (any caller-chosen key, e.g. a step-aligned timestamp).
    samples: BTreeMap<i64, u64>,
}

/// A mined pattern with its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinedPattern {
    /// The template, variables as `<_>`.
    pub pattern: String,
    /// `(bucket, lines)`, buckets ascending, only non-empty ones.
    pub samples: Vec<(i64, u64)>,
}

impl MinedPattern {
    /// All lines of the pattern.
    pub fn total(&self) -> u64 {
        self.samples.iter().map(|(_, n)| n).sum()
    }
}

/// A Drain miner.
#[derive(Debug)]
pub struct Drain {
    config: MinerConfig,
    root: Node,
    clusters: Vec<Cluster>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new(MinerConfig::default())
    }
}

impl Drain {
    /// An empty miner.
    pub fn new(config: MinerConfig) -> Self {
        Drain {
            config: MinerConfig {
                depth: config.depth.max(3),
                ..config
            },
            root: Node::default(),
            clusters: Vec::new(),
        }
    }

    fn max_node_depth(&self) -> usize {
        self.config.depth - 2
    }

    /// Adds one line, counted in `bucket`.
    pub fn train(&mut self, line: &str, bucket: i64) {
        let (tokens, spaces_after) = tokenize(line);
        let id = match self.tree_search(&tokens) {
            Some(id) => {
                let cluster = &mut self.clusters[id];
                for (template, token) in cluster.tokens.iter_mut().zip(&tokens) {
                    if template != token && template != PARAM {
                        *template = PARAM.to_string();
                    }
                }
                id
            }
            None => {
                let id = self.clusters.len();
                self.clusters.push(Cluster {
                    tokens,
                    spaces_after,
                    samples: BTreeMap::new(),
                });
                self.add_to_tree(id);
                id
            }
        };
        *self.clusters[id].samples.entry(bucket).or_insert(0) += 1;
    }

    /// The leaf for `tokens`, following exact tokens then `<_>`; `None` when the path
    /// does not exist.
    fn tree_search(&self, tokens: &[String]) -> Option<usize> {
        let count = tokens.len();
        let mut node = self.root.children.get(&count.to_string())?;
        if count < 2 {
            return node.clusters.first().copied();
        }
        // Depth 1 is the token-count level; each routing token goes one deeper.
        for (depth, token) in (1..).zip(tokens) {
            if depth >= self.max_node_depth() || depth == count {
                break;
            }
            node = node
                .children
                .get(token)
                .or_else(|| node.children.get(PARAM))?;
        }
        self.fast_match(&node.clusters, tokens)
    }

    fn fast_match(&self, ids: &[usize], tokens: &[String]) -> Option<usize> {
        let mut best: Option<(usize, f64, usize)> = None;
        for &id in ids {
            let template = &self.clusters[id].tokens;
            if template.len() != tokens.len() {
                continue;
            }
            let mut same = 0usize;
            let mut params = 0usize;
            for (t, token) in template.iter().zip(tokens) {
                if t == PARAM {
                    params += 1;
                } else if t == token {
                    same += 1;
                }
            }
            let sim = if template.is_empty() {
                1.0
            } else {
                same as f64 / template.len() as f64
            };
            let better = match best {
                None => true,
                Some((_, best_sim, best_params)) => {
                    sim > best_sim || (sim == best_sim && params > best_params)
                }
            };
            if better {
                best = Some((id, sim, params));
            }
        }
        best.filter(|(_, sim, _)| *sim >= self.config.sim_th)
            .map(|(id, _, _)| id)
    }

    fn add_to_tree(&mut self, id: usize) {
        let max_depth = self.max_node_depth();
        let max_children = self.config.max_children;
        let tokens = self.clusters[id].tokens.clone();
        let count = tokens.len();
        let mut node = self.root.children.entry(count.to_string()).or_default();
        if count == 0 {
            node.clusters.push(id);
            return;
        }
        for (depth, token) in (1..).zip(&tokens) {
            if depth >= max_depth || depth >= count {
                node.clusters.push(id);
                return;
            }
            let key = if node.children.contains_key(token) {
                token.clone()
            } else if token.chars().any(char::is_numeric) {
                PARAM.to_string()
            } else if node.children.contains_key(PARAM) {
                if node.children.len() < max_children {
                    token.clone()
                } else {
                    PARAM.to_string()
                }
            } else if node.children.len() + 1 < max_children {
                token.clone()
            } else {
                PARAM.to_string()
            };
            node = node.children.entry(key).or_default();
        }
        // Only reached by a one-token line, which the depth check above handles.
        node.clusters.push(id);
    }

    /// The mined patterns, most lines first (ties by pattern), identical templates
    /// merged.
    pub fn patterns(&self) -> Vec<MinedPattern> {
        let mut merged: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
        for cluster in &self.clusters {
            let samples = merged
                .entry(join(&cluster.tokens, &cluster.spaces_after))
                .or_default();
            for (bucket, n) in &cluster.samples {
                *samples.entry(*bucket).or_insert(0) += n;
            }
        }
        let mut out: Vec<MinedPattern> = merged
            .into_iter()
            .map(|(pattern, samples)| MinedPattern {
                pattern,
                samples: samples.into_iter().collect(),
            })
            .collect();
        out.sort_by(|a, b| b.total().cmp(&a.total()).then(a.pattern.cmp(&b.pattern)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mine(lines: &[&str]) -> Vec<MinedPattern> {
        let mut drain = Drain::default();
        for (i, line) in lines.iter().enumerate() {
            drain.train(line, i as i64 / 2);
        }
        drain.patterns()
    }

    #[test]
    fn tokenizer_keeps_the_line_shape() {
        let line = r#"level=info msg="request done" path=/api/v1 took=5.2ms"#;
        let (tokens, spaces) = tokenize(line);
        assert_eq!(
            tokens,
            vec![
                "level", "=", "info", "msg", "=", "\"", "request", "done", "\"", "path", "=",
                "/api/v1", "took", "=", "5.2ms"
            ]
        );
        assert_eq!(join(&tokens, &spaces), line);
        let (tokens, _) = tokenize(&"a ".repeat(500));
        assert_eq!(tokens.len(), MAX_TOKENS + 1);
    }

    #[test]
    fn similar_lines_merge_and_numbers_become_variables() {
        let patterns = mine(&[
            r#"level=info msg="request done" status=200 took=12ms"#,
            r#"level=info msg="request done" status=404 took=7ms"#,
            r#"level=info msg="request done" status=200 took=150ms"#,
        ]);
        assert_eq!(patterns.len(), 1, "{patterns:?}");
        assert_eq!(
            patterns[0].pattern,
            r#"level=info msg="request done" status=<_> took=<_>"#
        );
        assert_eq!(patterns[0].samples, vec![(0, 2), (1, 1)]);
    }

    #[test]
    fn ids_become_variables_and_runs_collapse() {
        let patterns = mine(&[
            "user 7f3a9c2e-1111-4d2b-9c1a-aaaaaaaaaaaa logged in from 10.0.0.1",
            "user 0b1e4d77-2222-4c3b-8d2a-bbbbbbbbbbbb logged in from 10.0.0.2",
        ]);
        assert_eq!(patterns.len(), 1, "{patterns:?}");
        assert_eq!(patterns[0].pattern, "user <_> logged in from <_>");
        assert_eq!(patterns[0].total(), 2);
    }

    #[test]
    fn different_shapes_stay_apart() {
        let patterns = mine(&[
            r#"level=info msg="request done" status=200 took=12ms"#,
            r#"level=info msg="request done" status=500 took=9ms"#,
            "connection refused by upstream host",
            "connection refused by upstream host",
            r#"{"level":"error","msg":"boom"}"#,
        ]);
        let texts: Vec<&str> = patterns.iter().map(|p| p.pattern.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "connection refused by upstream host",
                r#"level=info msg="request done" status=<_> took=<_>"#,
                r#"{"level":"error","msg":"boom"}"#,
            ]
        );
        assert_eq!(patterns.iter().map(MinedPattern::total).sum::<u64>(), 5);
    }

    proptest! {
        #[test]
        fn every_line_counts_once_and_mining_never_panics(
            lines in proptest::collection::vec(
                prop_oneof![
                    "[a-z]{1,6}( [a-z0-9=\"{}:,.]{1,8}){0,12}",
                    "\\PC{0,60}",
                    Just(String::new()),
                    Just(" ".to_string()),
                ],
                0..80,
            ),
            buckets in 1i64..5,
        ) {
            let mut drain = Drain::default();
            for (i, line) in lines.iter().enumerate() {
                drain.train(line, i as i64 % buckets);
            }
            let patterns = drain.patterns();
            let total: u64 = patterns.iter().map(MinedPattern::total).sum();
            prop_assert_eq!(total, lines.len() as u64);
            for p in &patterns {
                prop_assert!(p.samples.iter().all(|(_, n)| *n > 0));
                prop_assert!(p.samples.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }
}
