//! Secret redaction: credentials found in log lines and structured metadata
//! values are replaced by a marker before anything is written (WAL, head,
//! blocks, live tails), so a leaked key is never stored.
//!
//! Each secret is replaced by `[REDACTED:<kind>]`, where `<kind>` is one of
//! [`KINDS`] or the `name` of a user pattern; what surrounds it (a JSON key,
//! `Bearer `, `aws_secret_access_key=`) is kept, so the line stays parseable
//! and readers see what was removed.
//!
//! Cost: one Aho-Corasick scan (SIMD "Teddy" for this handful of literals)
//! looks for the trigger literals (`eyJ`, `Bearer`, `sk-`, `hf_`, `AKIA`,
//! `ASIA`, `secret`…); a line without any is left untouched and costs that
//! scan only. The regexes run only on lines holding the trigger of their kind.
//! User patterns have no trigger and run (as one `RegexSet` test) on every line.
//!
//! Invariants (property-tested below): never panics, idempotent, a line
//! without a trigger is returned byte-identical.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Captures, Regex, RegexSet};

use crate::config::RedactionConfig;
use crate::metrics::{LINES_REDACTED, Metrics, REDACTIONS};
use inferscope_model::PushStream;

/// The built-in kinds, as they appear in markers and in the `kind` label of
/// `inferscope_redactions_total`.
pub const KINDS: [&str; 7] = [
    "jwt",
    "bearer_token",
    "openai_key",
    "anthropic_key",
    "huggingface_token",
    "aws_access_key_id",
    "aws_secret_access_key",
];

// Indexes into KINDS.
const KIND_JWT: usize = 0;
const KIND_BEARER: usize = 1;
const KIND_OPENAI: usize = 2;
const KIND_ANTHROPIC: usize = 3;
const KIND_HF: usize = 4;
const KIND_AWS_KEY_ID: usize = 5;
const KIND_AWS_SECRET: usize = 6;

/// Which built-in rule a trigger literal wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Jwt = 0,
    Bearer = 1,
    SkKey = 2,
    HfToken = 3,
    AwsKeyId = 4,
    AwsSecret = 5,
}

/// Trigger literals and their rule. Case variants are listed rather than
/// searched case-insensitively: exact literals keep the SIMD prefilter.
const TRIGGERS: &[(&str, Rule)] = &[
    ("eyJ", Rule::Jwt),
    ("Bearer", Rule::Bearer),
    ("bearer", Rule::Bearer),
    ("BEARER", Rule::Bearer),
    ("sk-", Rule::SkKey),
    ("hf_", Rule::HfToken),
    ("AKIA", Rule::AwsKeyId),
    ("ASIA", Rule::AwsKeyId),
    ("secret", Rule::AwsSecret),
    ("Secret", Rule::AwsSecret),
    ("SECRET", Rule::AwsSecret),
];

const RULES: usize = 6;

/// Joins metadata values for one trigger scan (see [`Redactor::redact_streams`]).
const VALUE_SEPARATOR: char = '\n';

/// The counts of one call, by kind index (built-ins first, then user patterns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionCounts {
    /// Secrets replaced, indexed like [`Redactor::kind_name`].
    pub by_kind: Vec<u64>,
    /// Lines (or entries, counting metadata) that had at least one secret.
    pub lines: u64,
}

impl RedactionCounts {
    fn bump(&mut self, kind: usize) {
        if self.by_kind.len() <= kind {
            self.by_kind.resize(kind + 1, 0);
        }
        self.by_kind[kind] += 1;
    }

    /// Total secrets replaced.
    pub fn total(&self) -> u64 {
        self.by_kind.iter().sum()
    }

    /// Adds the counts of another call.
    pub fn merge(&mut self, other: &RedactionCounts) {
        if self.by_kind.len() < other.by_kind.len() {
            self.by_kind.resize(other.by_kind.len(), 0);
        }
        for (mine, n) in self.by_kind.iter_mut().zip(&other.by_kind) {
            *mine += n;
        }
        self.lines += other.lines;
    }
}

/// A user-configured pattern.
#[derive(Debug)]
struct UserPattern {
    marker: String,
    regex: Regex,
}

/// The compiled redaction rules. Build once at startup.
#[derive(Debug)]
pub struct Redactor {
    enabled: bool,
    disabled_tenants: Vec<String>,
    triggers: AhoCorasick,
    jwt: Regex,
    bearer: Regex,
    sk_key: Regex,
    hf_token: Regex,
    aws_key_id: Regex,
    aws_secret: Regex,
    user: Vec<UserPattern>,
    user_names: Vec<String>,
    user_set: Option<RegexSet>,
}

/// Why the configured patterns could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("redaction.patterns: pattern {name:?}: {reason}")]
pub struct PatternError {
    /// The pattern's name.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

fn builtin(re: &str) -> Regex {
    // The built-in expressions are constants covered by the unit tests.
    #[allow(clippy::expect_used)]
    Regex::new(re).expect("built-in redaction regex compiles")
}

impl Redactor {
    /// Compiles `config`; fails naming the first invalid user pattern.
    pub fn new(config: &RedactionConfig) -> Result<Redactor, PatternError> {
        let mut user = Vec::new();
        let mut user_names = Vec::new();
        for p in &config.patterns {
            let err = |reason: String| PatternError {
                name: p.name.clone(),
                reason,
            };
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(err("the name must be non-empty [A-Za-z0-9_-]".into()));
            }
            if KINDS.contains(&p.name.as_str()) || user_names.contains(&p.name) {
                return Err(err("the name is already used".into()));
            }
            let regex = Regex::new(&p.regex).map_err(|e| err(format!("invalid regex: {e}")))?;
            if regex.is_match("") {
                return Err(err("the regex matches the empty string".into()));
            }
            user.push(UserPattern {
                marker: format!("[REDACTED:{}]", p.name),
                regex,
            });
            user_names.push(p.name.clone());
        }
        let user_set = if user.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(config.patterns.iter().map(|p| &p.regex)).map_err(|e| {
                    PatternError {
                        name: "(all)".into(),
                        reason: e.to_string(),
                    }
                })?,
            )
        };
        #[allow(clippy::expect_used)]
        // Leftmost-first lets the automaton use its SIMD (Teddy) prefilter, which
        // standard semantics rule out; no trigger's suffix is another rule's
        // prefix, so the rules woken are the same.
        let triggers = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(TRIGGERS.iter().map(|(t, _)| t))
            .expect("trigger automaton builds");
        Ok(Redactor {
            enabled: config.enabled,
            disabled_tenants: config.disabled_tenants.clone(),
            triggers,
            // header.payload.signature, base64url; the signature may be empty (alg none).
            jwt: builtin(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
            // The token after `Bearer` (RFC 6750 token68); whether it is redacted
            // is decided in `replace_bearer`.
            bearer: builtin(
                r#"(?i)(authorization["']?\s*[:=]\s*["']?)?\b(bearer(?:\s|%20)+)([A-Za-z0-9\-._~+/]+=*)"#,
            ),
            // OpenAI (sk-…, sk-proj-…) and Anthropic (sk-ant-…) keys.
            sk_key: builtin(r"\bsk-[A-Za-z0-9_\-]{16,}"),
            hf_token: builtin(r"\bhf_[A-Za-z0-9]{16,}"),
            aws_key_id: builtin(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
            // By field name: JSON "k":"v", logfmt k=v, env K=V, YAML k: v.
            aws_secret: builtin(
                r#"(?i)((?:aws_?)?secret_?access_?key["']?\s*[:=]\s*["']?)([^\s"',;&}\]\[]+)"#,
            ),
            user,
            user_names,
            user_set,
        })
    }

    /// Whether anything is redacted for `tenant`.
    pub fn applies_to(&self, tenant: &str) -> bool {
        self.enabled && !self.disabled_tenants.iter().any(|t| t == tenant)
    }

    /// The name of kind `index` of [`RedactionCounts::by_kind`].
    pub fn kind_name(&self, index: usize) -> &str {
        KINDS
            .get(index)
            .copied()
            .or_else(|| self.user_names.get(index - KINDS.len()).map(String::as_str))
            .unwrap_or("unknown")
    }

    /// Redacts `streams` in place unless redaction is off for `tenant`.
    pub fn redact_for(&self, tenant: &str, streams: &mut [PushStream]) -> RedactionCounts {
        if !self.applies_to(tenant) {
            return RedactionCounts::default();
        }
        self.redact_streams(streams)
    }

    /// Adds `counts` to `inferscope_redactions_total{tenant,kind}` and
    /// `inferscope_ingest_lines_redacted_total{tenant}`.
    pub fn record(&self, metrics: &Metrics, tenant: &str, counts: &RedactionCounts) {
        if counts.lines == 0 {
            return;
        }
        metrics.add(LINES_REDACTED, &[("tenant", tenant)], counts.lines as f64);
        for (kind, n) in counts.by_kind.iter().enumerate() {
            if *n > 0 {
                let name = self.kind_name(kind);
                metrics.add(REDACTIONS, &[("tenant", tenant), ("kind", name)], *n as f64);
            }
        }
    }

    /// Redacts every line and structured metadata value of `streams` in place.
    ///
    /// An entry's metadata values (short: ids, levels) are first searched for
    /// triggers together, joined by newlines (which no trigger holds), in one
    /// SIMD scan instead of one per value; only when that finds a trigger, or
    /// user patterns are configured, is each value redacted on its own.
    pub fn redact_streams(&self, streams: &mut [PushStream]) -> RedactionCounts {
        let mut counts = RedactionCounts::default();
        let mut joined = String::new();
        for stream in streams {
            for entry in &mut stream.entries {
                let before = counts.total();
                if let Cow::Owned(line) = self.redact(&entry.line, &mut counts) {
                    // Line metadata ranges would not fit the new line: their
                    // values become text (redacted just below).
                    entry.materialize_line_metadata();
                    entry.line = line;
                }
                if !self.metadata_is_clear(&entry.structured_metadata, &mut joined) {
                    for (_, value) in &mut entry.structured_metadata {
                        if let Cow::Owned(v) = self.redact(value, &mut counts) {
                            *value = v;
                        }
                    }
                }
                if counts.total() > before {
                    counts.lines += 1;
                }
            }
        }
        counts
    }

    /// Whether one scan of the metadata values joined (in `joined`, a buffer
    /// kept across calls) shows that none can hold a secret: no trigger, and
    /// no user pattern to test. A single value is left to [`Redactor::redact`].
    fn metadata_is_clear(&self, metadata: &[(String, String)], joined: &mut String) -> bool {
        if self.user_set.is_some() || metadata.len() < 2 {
            return false;
        }
        joined.clear();
        for (_, value) in metadata {
            joined.push_str(value);
            joined.push(VALUE_SEPARATOR);
        }
        !self.triggers.is_match(joined.as_str())
    }

    /// Redacts one text; borrowed back unchanged when it holds no secret.
    ///
    /// The rules run again over a changed text until nothing changes (a
    /// replacement can uncover a match another rule's match had hidden), so
    /// the result is a fixed point: redacting it again changes nothing.
    pub fn redact<'a>(&self, text: &'a str, counts: &mut RedactionCounts) -> Cow<'a, str> {
        const MAX_PASSES: usize = 4;
        let mut out = self.redact_once(text, counts);
        for _ in 0..MAX_PASSES {
            let Cow::Owned(current) = &out else {
                break;
            };
            let next = match self.redact_once(current, counts) {
                Cow::Borrowed(_) => None,
                Cow::Owned(next) => Some(next),
            };
            match next {
                Some(next) => out = Cow::Owned(next),
                None => break,
            }
        }
        out
    }

    fn redact_once<'a>(&self, text: &'a str, counts: &mut RedactionCounts) -> Cow<'a, str> {
        let mut wake = [false; RULES];
        let mut any = false;
        for m in self.triggers.find_iter(text) {
            wake[TRIGGERS[m.pattern().as_usize()].1 as usize] = true;
            any = true;
        }
        let user_hits = self
            .user_set
            .as_ref()
            .map(|set| set.matches(text))
            .filter(|m| m.matched_any());
        if !any && user_hits.is_none() {
            return Cow::Borrowed(text);
        }
        let mut out = Cow::Borrowed(text);
        // Order matters: a JWT inside `Bearer eyJ…` is counted as a JWT.
        if wake[Rule::Jwt as usize] {
            out = replace(out, &self.jwt, |_| {
                counts.bump(KIND_JWT);
                "[REDACTED:jwt]".to_string()
            });
        }
        if wake[Rule::Bearer as usize] {
            out = replace(out, &self.bearer, |c| replace_bearer(c, counts));
        }
        if wake[Rule::SkKey as usize] {
            out = replace(out, &self.sk_key, |c| {
                let (kind, marker) = if c[0].starts_with("sk-ant-") {
                    (KIND_ANTHROPIC, "[REDACTED:anthropic_key]")
                } else {
                    (KIND_OPENAI, "[REDACTED:openai_key]")
                };
                counts.bump(kind);
                marker.to_string()
            });
        }
        if wake[Rule::HfToken as usize] {
            out = replace(out, &self.hf_token, |_| {
                counts.bump(KIND_HF);
                "[REDACTED:huggingface_token]".to_string()
            });
        }
        if wake[Rule::AwsKeyId as usize] {
            out = replace(out, &self.aws_key_id, |_| {
                counts.bump(KIND_AWS_KEY_ID);
                "[REDACTED:aws_access_key_id]".to_string()
            });
        }
        if wake[Rule::AwsSecret as usize] {
            out = replace(out, &self.aws_secret, |c| {
                counts.bump(KIND_AWS_SECRET);
                format!("{}[REDACTED:aws_secret_access_key]", &c[1])
            });
        }
        if let Some(hits) = user_hits {
            for i in hits.iter() {
                let p = &self.user[i];
                out = replace(out, &p.regex, |c| {
                    // With a capture group, only the first group is the secret.
                    let secret = c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str());
                    if secret == p.marker {
                        return c[0].to_string(); // redacted already
                    }
                    counts.bump(KINDS.len() + i);
                    match c.get(1) {
                        Some(g) => {
                            let whole = c.get(0).map_or(0..0, |m| m.range());
                            let mut s = c[0].to_string();
                            s.replace_range(
                                g.start() - whole.start..g.end() - whole.start,
                                &p.marker,
                            );
                            s
                        }
                        None => p.marker.clone(),
                    }
                });
            }
        }
        out
    }
}

/// `Bearer <token>`: the token is redacted when it follows `Authorization`
/// (header, JSON key, logfmt key) or looks like a credential (a digit or a
/// symbol, or 16+ characters), so prose such as "Bearer token missing" stays
/// readable.
fn replace_bearer(c: &Captures<'_>, counts: &mut RedactionCounts) -> String {
    let token = &c[3];
    let in_authorization = c.get(1).is_some();
    let looks_random = token.len() >= 16 || !token.bytes().all(|b| b.is_ascii_alphabetic());
    if !in_authorization && !looks_random {
        return c[0].to_string();
    }
    counts.bump(KIND_BEARER);
    let prefix = c.get(1).map_or("", |m| m.as_str());
    format!("{prefix}{}[REDACTED:bearer_token]", &c[2])
}

/// Replaces every match of `re` in `text`, keeping `text` borrowed when
/// nothing matches.
fn replace<'a>(
    text: Cow<'a, str>,
    re: &Regex,
    mut f: impl FnMut(&Captures<'_>) -> String,
) -> Cow<'a, str> {
    if !re.is_match(&text) {
        return text;
    }
    let replaced = re.replace_all(&text, |c: &Captures<'_>| f(c)).into_owned();
    if replaced == *text {
        return text;
    }
    Cow::Owned(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedactionPatternConfig;
    use proptest::prelude::*;

    /// Leftmost-first search (for the SIMD prefilter) reports every rule that
    /// standard search would as long as no trigger or suffix of one starts a
    /// trigger of another rule (or is started by one): then no match can hide
    /// another rule's.
    #[test]
    fn no_trigger_overlaps_another_rules_trigger() {
        for (a, rule_a) in TRIGGERS {
            for (b, rule_b) in TRIGGERS {
                if rule_a == rule_b {
                    continue;
                }
                for cut in 0..a.len() {
                    let suffix = &a[cut..];
                    assert!(
                        !b.starts_with(suffix) && !suffix.starts_with(b),
                        "{a} overlaps {b}"
                    );
                }
            }
        }
    }

    fn redactor() -> Redactor {
        Redactor::new(&RedactionConfig::default()).expect("defaults compile")
    }

    fn run(text: &str) -> (String, RedactionCounts) {
        let mut counts = RedactionCounts::default();
        let out = redactor().redact(text, &mut counts).into_owned();
        (out, counts)
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn each_kind_is_replaced_by_its_marker() {
        let cases = [
            (format!("token={JWT} ok"), "token=[REDACTED:jwt] ok", "jwt"),
            (
                "GET / Authorization: Bearer abcDEF123ghi".to_string(),
                "GET / Authorization: Bearer [REDACTED:bearer_token]",
                "bearer_token",
            ),
            (
                r#"{"authorization":"Bearer tokenvalue"}"#.to_string(),
                r#"{"authorization":"Bearer [REDACTED:bearer_token]"}"#,
                "bearer_token",
            ),
            (
                "key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123 used".to_string(),
                "key [REDACTED:openai_key] used",
                "openai_key",
            ),
            (
                "key=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv-x_9".to_string(),
                "key=[REDACTED:anthropic_key]",
                "anthropic_key",
            ),
            (
                "HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345 x".to_string(),
                "HF_TOKEN=[REDACTED:huggingface_token] x",
                "huggingface_token",
            ),
            (
                "id AKIAIOSFODNN7EXAMPLE,".to_string(),
                "id [REDACTED:aws_access_key_id],",
                "aws_access_key_id",
            ),
            (
                r#"{"aws_secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","n":1}"#
                    .to_string(),
                r#"{"aws_secret_access_key":"[REDACTED:aws_secret_access_key]","n":1}"#,
                "aws_secret_access_key",
            ),
            (
                "level=info aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY msg=x"
                    .to_string(),
                "level=info aws_secret_access_key=[REDACTED:aws_secret_access_key] msg=x",
                "aws_secret_access_key",
            ),
            (
                "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
                "export AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_access_key]",
                "aws_secret_access_key",
            ),
        ];
        for (input, expected, kind) in cases {
            let (out, counts) = run(&input);
            assert_eq!(out, expected, "{input}");
            let index = KINDS.iter().position(|k| *k == kind).expect("kind");
            assert_eq!(counts.by_kind.get(index).copied(), Some(1), "{input}");
            assert_eq!(counts.total(), 1, "{input}: {counts:?}");
        }
    }

    #[test]
    fn prose_and_lookalikes_stay() {
        for text in [
            "Bearer token missing",
            "task-1234567890123456789012 done",
            "disk-usage high",
            "ASIAN market",
            "secret santa",
            "the client_secret is rotated",
        ] {
            assert_eq!(run(text).0, text);
        }
    }

    #[test]
    fn a_jwt_in_a_bearer_header_is_one_redaction() {
        let (out, counts) = run(&format!("Authorization: Bearer {JWT}"));
        assert_eq!(out, "Authorization: Bearer [REDACTED:jwt]");
        assert_eq!(counts.total(), 1);
    }

    #[test]
    fn user_patterns_whole_match_or_first_group() {
        let config = RedactionConfig {
            patterns: vec![
                RedactionPatternConfig {
                    name: "password".into(),
                    regex: r"password=(\S+)".into(),
                },
                RedactionPatternConfig {
                    name: "ssn".into(),
                    regex: r"\b\d{3}-\d{2}-\d{4}\b".into(),
                },
            ],
            ..RedactionConfig::default()
        };
        let r = Redactor::new(&config).expect("compiles");
        let mut counts = RedactionCounts::default();
        let out = r.redact("user=bob password=hunter2 ssn 123-45-6789", &mut counts);
        assert_eq!(
            out,
            "user=bob password=[REDACTED:password] ssn [REDACTED:ssn]"
        );
        assert_eq!(r.kind_name(KINDS.len()), "password");
        assert_eq!(r.kind_name(KINDS.len() + 1), "ssn");
        assert_eq!(counts.total(), 2);
    }

    #[test]
    fn invalid_user_patterns_are_named() {
        let bad = |name: &str, regex: &str| {
            Redactor::new(&RedactionConfig {
                patterns: vec![RedactionPatternConfig {
                    name: name.into(),
                    regex: regex.into(),
                }],
                ..RedactionConfig::default()
            })
            .expect_err("invalid")
            .to_string()
        };
        let e = bad("internal_token", "tok(");
        assert!(
            e.contains("internal_token") && e.contains("invalid regex"),
            "{e}"
        );
        assert!(bad("x y", "a").contains("name"));
        assert!(bad("jwt", "a").contains("already used"));
        assert!(bad("empty", "a*").contains("empty string"));
    }

    #[test]
    fn streams_are_redacted_in_lines_and_metadata() {
        use inferscope_model::{Labels, LogEntry};
        let mut entry = LogEntry::new(1, "plain line");
        entry.structured_metadata = vec![
            ("trace_id".into(), "abc".into()),
            ("api_key".into(), "sk-AbCdEfGhIjKlMnOpQrStUvWx".into()),
        ];
        let mut streams = vec![PushStream {
            labels: Labels::default(),
            entries: vec![entry, LogEntry::new(2, format!("jwt {JWT}"))],
        }];
        let counts = redactor().redact_streams(&mut streams);
        assert_eq!(counts.lines, 2);
        assert_eq!(counts.total(), 2);
        let e = &streams[0].entries;
        assert_eq!(e[0].line, "plain line");
        assert_eq!(e[0].structured_metadata[1].1, "[REDACTED:openai_key]");
        assert_eq!(e[1].line, "jwt [REDACTED:jwt]");
    }

    #[test]
    fn line_metadata_of_a_redacted_line_becomes_redacted_text() {
        use inferscope_model::{Labels, LineMetadata, LogEntry};
        let line = r#"{"trace_id":"t1","user_id":"sk-AbCdEfGhIjKlMnOpQrStUvWx"}"#;
        let mut entry = LogEntry::new(1, line);
        for (name, value) in [
            ("trace_id", "t1"),
            ("user_id", "sk-AbCdEfGhIjKlMnOpQrStUvWx"),
        ] {
            let start = line.find(value).expect("in line") as u32;
            let m = LineMetadata::checked(name, line, start, start + value.len() as u32);
            entry.line_metadata.extend(m);
        }
        let mut streams = vec![PushStream {
            labels: Labels::default(),
            entries: vec![entry],
        }];
        redactor().redact_streams(&mut streams);
        let e = &streams[0].entries[0];
        // The ranges would not fit the new line: the values are text now.
        assert!(e.line_metadata.is_empty());
        assert_eq!(
            e.metadata().collect::<Vec<_>>(),
            [("trace_id", "t1"), ("user_id", "[REDACTED:openai_key]")]
        );
        assert!(e.line.contains(r#""user_id":"[REDACTED:openai_key]""#));
    }

    /// A secret of each kind, built from random parts.
    fn secret() -> impl Strategy<Value = (String, &'static str)> {
        let alnum = "[A-Za-z0-9]{20,40}";
        let b64url = "[A-Za-z0-9_-]{8,40}";
        prop_oneof![
            (b64url, b64url, b64url).prop_map(|(a, b, c)| (format!("eyJ{a}.eyJ{b}.{c}"), "jwt")),
            alnum.prop_map(|t| (format!("Authorization: Bearer {t}"), "bearer_token")),
            "[A-Za-z0-9]{8,15}"
                .prop_map(|t| (format!("\"authorization\":\"Bearer {t}\""), "bearer_token")),
            alnum.prop_map(|t| (format!("sk-{t}"), "openai_key")),
            alnum.prop_map(|t| (format!("sk-proj-{t}"), "openai_key")),
            alnum.prop_map(|t| (format!("sk-ant-api03-{t}"), "anthropic_key")),
            alnum.prop_map(|t| (format!("hf_{t}"), "huggingface_token")),
            ("(AKIA|ASIA)", "[A-Z0-9]{16}")
                .prop_map(|(p, t)| (format!("{p}{t}"), "aws_access_key_id")),
            "[A-Za-z0-9/+]{40}".prop_map(|t| (
                format!("aws_secret_access_key={t}"),
                "aws_secret_access_key"
            )),
            "[A-Za-z0-9/+]{40}".prop_map(|t| (
                format!("\"AWS_SECRET_ACCESS_KEY\": \"{t}\""),
                "aws_secret_access_key"
            )),
        ]
    }

    /// The part of a generated secret that must disappear.
    fn secret_part(secret: &str) -> &str {
        for sep in ["Bearer ", "key=", "\": \""] {
            if let Some(i) = secret.find(sep) {
                return secret[i + sep.len()..].trim_end_matches('"');
            }
        }
        secret
    }

    #[test]
    fn no_trigger_holds_the_value_separator() {
        for (trigger, _) in TRIGGERS {
            assert!(!trigger.contains(VALUE_SEPARATOR), "{trigger}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Metadata values are redacted as if each were scanned on its own,
        /// whether or not the joined scan clears them, and an entry with a
        /// secret in its line or its metadata counts as one redacted line.
        #[test]
        fn metadata_values_are_redacted_each_on_its_own(
            line in "(plain|token sk-proj-Ab3dEf6hIj9kLm2nOp5q)",
            values in proptest::collection::vec(
                prop_oneof![
                    // Mostly ids without a trigger, as ingest sees them.
                    3 => "[A-Za-z0-9._=: -]{0,36}",
                    1 => "(eyJ|Bearer |sk-|hf_|AKIA|ASIA|secret_access_key=|[A-Za-z0-9._=: -]){0,24}",
                ],
                0..5,
            ),
        ) {
            let r = redactor();
            let mut want = RedactionCounts::default();
            r.redact(&line, &mut want);
            let expected: Vec<String> = values
                .iter()
                .map(|v| r.redact(v, &mut want).into_owned())
                .collect();
            let mut streams = vec![PushStream {
                labels: inferscope_model::Labels::from_pairs([("a", "1")]),
                entries: vec![inferscope_model::LogEntry {
                    line_metadata: Vec::new(),
                    detected_level: None,
                    timestamp_ns: 1,
                    line: line.clone(),
                    structured_metadata: values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (format!("k{i}"), v.clone()))
                        .collect(),
                }],
            }];
            let got = r.redact_streams(&mut streams);
            let values: Vec<String> = streams[0].entries[0]
                .structured_metadata
                .iter()
                .map(|(_, v)| v.clone())
                .collect();
            prop_assert_eq!(values, expected);
            prop_assert_eq!(got.by_kind.iter().sum::<u64>(), want.total());
            prop_assert_eq!(got.lines, u64::from(want.total() > 0));
        }

        #[test]
        fn never_panics_and_is_idempotent(text in "\\PC{0,200}") {
            let (once, _) = run(&text);
            let (twice, counts) = run(&once);
            prop_assert_eq!(&twice, &once);
            prop_assert_eq!(counts.total(), 0);
        }

        #[test]
        fn idempotent_on_trigger_heavy_text(
            text in "(eyJ|Bearer |sk-|hf_|AKIA|ASIA|secret_access_key=|authorization: |[A-Za-z0-9._=:\" -]){0,60}"
        ) {
            let (once, _) = run(&text);
            let (twice, _) = run(&once);
            prop_assert_eq!(twice, once);
        }

        #[test]
        fn lines_without_triggers_are_untouched(text in "\\PC{0,300}") {
            let has_trigger = TRIGGERS.iter().any(|(t, _)| text.contains(t));
            prop_assume!(!has_trigger);
            let mut counts = RedactionCounts::default();
            let out = redactor().redact(&text, &mut counts);
            prop_assert!(matches!(out, Cow::Borrowed(_)));
            prop_assert_eq!(out.as_bytes(), text.as_bytes());
        }

        #[test]
        fn an_embedded_secret_is_never_readable(
            before in "\\PC{0,80}",
            after in "\\PC{0,80}",
            (secret, kind) in secret(),
        ) {
            let text = format!("{before} {secret} {after}");
            let (out, counts) = run(&text);
            let part = secret_part(&secret);
            prop_assert!(!out.contains(part), "{} still in {}", part, out);
            let marker = format!("[REDACTED:{kind}]");
            prop_assert!(out.contains(&marker), "{} not in {}", marker, out);
            prop_assert!(counts.total() >= 1);
            let (again, _) = run(&out);
            prop_assert_eq!(again, out);
        }
    }
}
