//! AI-gateway access logs over OTLP (Envoy AI Gateway's LLM and MCP access log
//! records): per-request tokens and estimated cost, a sampling policy that
//! keeps what matters, and exact counters for every record, kept or dropped.
//!
//! A record is an **LLM access log** when it carries `gen_ai.*` attributes,
//! an **MCP access log** when it carries `mcp.method.name`; anything else is an
//! ordinary log and passes through untouched. For each access log, before
//! anything is stored:
//!
//! 1. tokens are read (`gen_ai.usage.input_tokens`, `…output_tokens`, cached
//!    and cache-creation input when sent; `total = input + output (+ cached)`,
//!    or `gen_ai.usage.total_tokens` when only that is sent) and priced with the
//!    pricing table (`ModelPrice::cost`, long-context tiers included);
//! 2. the policy decides keep or drop, and why (`sampled_reason`): `tokens`
//!    (`total ≥ min_total_tokens`), `error` (`response_code ≥
//!    min_response_code`), `slow` (`duration ≥ min_duration_ms`),
//!    `upstream_failure` (`upstream_transport_failure_reason` or
//!    `connection_termination_details` set to something other than empty or
//!    `-`), `baseline` (a deterministic 1-in-N of the others, by request id), and
//!    `missing_tokens` (an LLM record whose token counts are missing or not
//!    numbers is kept as an ordinary log: the sampler never drops a record for a
//!    missing field). MCP records are sampled on errors and slow calls only;
//! 3. the record is counted into `genai_access_log_requests_total`,
//!    `genai_access_log_tokens_total` and `genai_access_log_cost_usd_total`
//!    (`mcp_access_log_requests_total` for MCP), labelled with the decision, so
//!    rates and costs stay exact whatever is dropped;
//! 4. a kept record gets structured metadata `gen_ai_usage_total_tokens`,
//!    `estimated_cost_usd` (and `unpriced="true"` for a model without a price)
//!    and `sampled_reason`, and the stream label `access_log="llm"|"mcp"`, so
//!    `{service_name="envoy-ai-gateway"} | estimated_cost_usd > 0.5` works and
//!    MCP traffic has its own stream per gateway.

use std::collections::HashMap;

use inferscope_metrics::{PointUpdate, PricingTable, TokenCounts, UpdateKind};
use inferscope_model::Labels;

use crate::config::{AccessLogConfig, SamplingPolicy};
use crate::error::ApiError;
use crate::metrics::{ACCESS_LOG_MISSING_TOKENS, ACCESS_LOGS};
use crate::otlp::logs::Record;
use crate::state::AppState;

impl AccessLogConfig {
    /// The policy for a tenant's service, and whether sampling is on for it.
    pub fn policy_for(&self, tenant: &str, service: &str) -> (bool, SamplingPolicy) {
        let mut policy = self.policy.clone();
        let mut enabled = self.sampling_enabled;
        if let Some(o) = self.overrides.iter().find(|o| {
            o.tenant.as_deref().is_none_or(|t| t == tenant)
                && o.service.as_deref().is_none_or(|s| s == service)
        }) {
            policy.min_total_tokens = o.min_total_tokens.unwrap_or(policy.min_total_tokens);
            policy.min_response_code = o.min_response_code.unwrap_or(policy.min_response_code);
            policy.min_duration_ms = o.min_duration_ms.unwrap_or(policy.min_duration_ms);
            policy.keep_upstream_failures = o
                .keep_upstream_failures
                .unwrap_or(policy.keep_upstream_failures);
            policy.baseline_one_in = o.baseline_one_in.unwrap_or(policy.baseline_one_in);
            enabled = o.sampling_enabled.unwrap_or(enabled);
        }
        (enabled, policy)
    }
}

/// What kind of record it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An LLM request (`gen_ai.*` attributes).
    Llm,
    /// An MCP call (`mcp.method.name`).
    Mcp,
    /// Any other log record.
    Other,
}

/// Why a record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `total_tokens >= min_total_tokens`.
    Tokens,
    /// `response_code >= min_response_code`.
    Error,
    /// `duration >= min_duration_ms`.
    Slow,
    /// Upstream transport failure or connection termination.
    UpstreamFailure,
    /// The deterministic 1-in-N baseline.
    Baseline,
    /// Token counts missing or not numbers: kept as an ordinary log.
    MissingTokens,
    /// Sampling is off for this tenant/service.
    SamplingOff,
}

impl Reason {
    /// The name written in `sampled_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Tokens => "tokens",
            Reason::Error => "error",
            Reason::Slow => "slow",
            Reason::UpstreamFailure => "upstream_failure",
            Reason::Baseline => "baseline",
            Reason::MissingTokens => "missing_tokens",
            Reason::SamplingOff => "sampling_off",
        }
    }
}

/// The facts of one access log record the policy and the counters read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessFacts {
    /// The gateway (`aigw.service`, else `service.name`).
    pub service: String,
    /// `gen_ai.provider.name` or `mcp.provider.name`.
    pub provider: String,
    /// `gen_ai.response.model`, else `gen_ai.request.model` (LLM only).
    pub model: String,
    /// `mcp.method.name` (MCP only).
    pub method: String,
    /// HTTP status, when sent as a number.
    pub response_code: Option<u32>,
    /// Duration in ms, when sent as a number.
    pub duration_ms: Option<u64>,
    /// Tokens by type, when all sent counts are numbers (LLM only).
    pub tokens: Option<TokenCounts>,
    /// `input + output (+ cached)`, or `gen_ai.usage.total_tokens`.
    pub total_tokens: Option<u64>,
    /// Estimated cost in USD; `None` when unpriced or without tokens.
    pub cost_usd: Option<f64>,
    /// Whether the model has no price in the table.
    pub unpriced: bool,
    /// Upstream transport failure or connection termination reported.
    pub upstream_failure: bool,
    /// The request id (`x-request-id`, `jsonrpc.request.id`, trace id) for the baseline.
    pub request_key: String,
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty() && *v != "-")
}

/// The kind of a record from its attributes.
pub fn kind_of(attrs: &[(String, String)]) -> Kind {
    if attrs.iter().any(|(k, _)| k == "mcp.method.name") {
        Kind::Mcp
    } else if attrs.iter().any(|(k, _)| k.starts_with("gen_ai.")) {
        Kind::Llm
    } else {
        Kind::Other
    }
}

/// A token count: `None` when absent, `Err` when present but not a number.
fn count(attrs: &[(String, String)], keys: &[&str]) -> Result<Option<u64>, ()> {
    for key in keys {
        if let Some(v) = attr(attrs, key) {
            return v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(|n| Some(n.round() as u64))
                .ok_or(());
        }
    }
    Ok(None)
}

/// Reads the facts of an access log record and prices it.
pub fn facts(record: &Record, kind: Kind, pricing: &PricingTable) -> AccessFacts {
    let attrs = &record.attributes;
    let resource = &record.resource;
    let service = attr(resource, "aigw.service")
        .or_else(|| attr(resource, "service.name"))
        .unwrap_or("")
        .to_string();
    let number = |key: &str| attr(attrs, key).and_then(|v| v.trim().parse::<f64>().ok());
    let mut f = AccessFacts {
        service,
        response_code: number("response_code")
            .filter(|n| (0.0..1000.0).contains(n))
            .map(|n| n as u32),
        duration_ms: number("duration")
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|n| n as u64),
        upstream_failure: attr(attrs, "upstream_transport_failure_reason").is_some()
            || attr(attrs, "connection_termination_details").is_some(),
        request_key: attr(attrs, "x-request-id")
            .or_else(|| attr(attrs, "jsonrpc.request.id"))
            .map(str::to_string)
            .unwrap_or_else(|| {
                record
                    .entry
                    .structured_metadata
                    .iter()
                    .find(|(k, _)| k == "trace_id")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| {
                        format!("{}{}", record.entry.timestamp_ns, record.entry.line)
                    })
            }),
        ..AccessFacts::default()
    };
    match kind {
        Kind::Mcp => {
            f.provider = attr(attrs, "mcp.provider.name").unwrap_or("").to_string();
            f.method = attr(attrs, "mcp.method.name").unwrap_or("").to_string();
        }
        Kind::Llm => {
            f.provider = attr(attrs, "gen_ai.provider.name")
                .unwrap_or("")
                .to_string();
            f.model = attr(attrs, "gen_ai.response.model")
                .or_else(|| attr(attrs, "gen_ai.request.model"))
                .unwrap_or("")
                .to_string();
            let counts = (|| -> Result<(Option<TokenCounts>, Option<u64>), ()> {
                let input = count(attrs, &["gen_ai.usage.input_tokens"])?;
                let output = count(attrs, &["gen_ai.usage.output_tokens"])?;
                let cached = count(
                    attrs,
                    &[
                        "gen_ai.usage.cached_input_tokens",
                        "gen_ai.usage.cache_read.input_tokens",
                        "gen_ai.usage.cache_read_input_tokens",
                    ],
                )?;
                let creation = count(
                    attrs,
                    &[
                        "gen_ai.usage.cache_creation_input_tokens",
                        "gen_ai.usage.cache_creation.input_tokens",
                    ],
                )?;
                let total = count(attrs, &["gen_ai.usage.total_tokens"])?;
                match (input, output) {
                    (Some(i), Some(o)) => {
                        let tokens = TokenCounts {
                            input: i,
                            output: o,
                            cached_input: cached.unwrap_or(0),
                            cache_creation_input: creation.unwrap_or(0),
                        };
                        let sum = i + o + cached.unwrap_or(0) + creation.unwrap_or(0);
                        Ok((Some(tokens), Some(sum)))
                    }
                    // Only a total: it counts for the policy, not for pricing.
                    _ => Ok((None, total)),
                }
            })();
            if let Ok((tokens, total)) = counts {
                f.tokens = tokens;
                f.total_tokens = total;
            }
            if let Some(tokens) = &f.tokens {
                let provider = (!f.provider.is_empty()).then_some(f.provider.as_str());
                match pricing.price(provider, &f.model) {
                    Some(price) => f.cost_usd = Some(price.cost(tokens)),
                    None => f.unpriced = true,
                }
            }
        }
        Kind::Other => {}
    }
    f
}

/// The policy's decision: the reasons to keep (empty = drop).
pub fn decide(kind: Kind, f: &AccessFacts, enabled: bool, p: &SamplingPolicy) -> Vec<Reason> {
    if !enabled {
        return vec![Reason::SamplingOff];
    }
    let mut reasons = Vec::new();
    if kind == Kind::Llm {
        match f.total_tokens {
            Some(t) if t >= p.min_total_tokens => reasons.push(Reason::Tokens),
            Some(_) => {}
            None => reasons.push(Reason::MissingTokens),
        }
    }
    if f.response_code.is_some_and(|c| c >= p.min_response_code) {
        reasons.push(Reason::Error);
    }
    if f.duration_ms.is_some_and(|d| d >= p.min_duration_ms) {
        reasons.push(Reason::Slow);
    }
    if p.keep_upstream_failures && f.upstream_failure {
        reasons.push(Reason::UpstreamFailure);
    }
    if reasons.is_empty()
        && p.baseline_one_in > 0
        && inferscope_storage::ids::id_hash(&f.request_key).is_multiple_of(p.baseline_one_in)
    {
        reasons.push(Reason::Baseline);
    }
    reasons
}

/// Sums of counter increments of one export batch. Records are summed by a
/// cheap key first; label sets are built once per key, in [`Counters::into_updates`].
#[derive(Debug, Default)]
pub struct Counters {
    llm: HashMap<CounterKey, LlmSums>,
    mcp: HashMap<CounterKey, f64>,
}

/// `(service, provider, model or method, response class, kept)`.
type CounterKey = (String, String, String, &'static str, bool);

/// An LLM key's sums: requests, tokens by type, cost.
#[derive(Debug, Default, Clone, Copy)]
struct LlmSums {
    requests: f64,
    tokens: [f64; 4],
    cost: f64,
}

const TOKEN_TYPES: [&str; 4] = ["input", "output", "cached_input", "cache_creation_input"];

/// `2xx`, `4xx`, `5xx`…, or `unknown`.
pub fn class_of(code: Option<u32>) -> &'static str {
    match code {
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "unknown",
    }
}

impl Counters {
    /// Counts one record.
    pub fn count(&mut self, kind: Kind, f: &AccessFacts, kept: bool) {
        let class = class_of(f.response_code);
        match kind {
            Kind::Llm => {
                let key = (
                    f.service.clone(),
                    f.provider.clone(),
                    f.model.clone(),
                    class,
                    kept,
                );
                let sums = self.llm.entry(key).or_default();
                sums.requests += 1.0;
                if let Some(t) = &f.tokens {
                    let n = [t.input, t.output, t.cached_input, t.cache_creation_input];
                    for (sum, n) in sums.tokens.iter_mut().zip(n) {
                        *sum += n as f64;
                    }
                }
                sums.cost += f.cost_usd.unwrap_or(0.0);
            }
            Kind::Mcp => {
                let key = (
                    f.service.clone(),
                    f.provider.clone(),
                    f.method.clone(),
                    class,
                    kept,
                );
                *self.mcp.entry(key).or_insert(0.0) += 1.0;
            }
            Kind::Other => {}
        }
    }

    /// The increments as store updates at `ts_ns`.
    pub fn into_updates(self, ts_ns: i64) -> Vec<PointUpdate> {
        let mut out = Vec::new();
        let mut push = |pairs: Vec<(&str, &str)>, value: f64| {
            out.push(PointUpdate {
                labels: Labels::from_pairs(pairs),
                ts_ns,
                value,
                kind: UpdateKind::CounterAdd,
            });
        };
        let decision = |kept: bool| if kept { "kept" } else { "dropped" };
        for ((service, provider, model, class, kept), sums) in &self.llm {
            let base = |name: &'static str| {
                vec![
                    ("__name__", name),
                    ("service", service.as_str()),
                    ("provider", provider.as_str()),
                    ("model", model.as_str()),
                    ("response_class", *class),
                    ("decision", decision(*kept)),
                ]
            };
            push(base("genai_access_log_requests_total"), sums.requests);
            for (ty, n) in TOKEN_TYPES.iter().zip(sums.tokens) {
                if n > 0.0 {
                    let mut pairs = base("genai_access_log_tokens_total");
                    pairs.push(("type", ty));
                    push(pairs, n);
                }
            }
            if sums.cost > 0.0 {
                push(base("genai_access_log_cost_usd_total"), sums.cost);
            }
        }
        for ((service, provider, method, class, kept), n) in &self.mcp {
            push(
                vec![
                    ("__name__", "mcp_access_log_requests_total"),
                    ("service", service.as_str()),
                    ("provider", provider.as_str()),
                    ("method", method.as_str()),
                    ("response_class", *class),
                    ("decision", decision(*kept)),
                ],
                *n,
            );
        }
        out
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.llm.is_empty() && self.mcp.is_empty()
    }
}

/// Adds what a kept access log carries: tokens, cost, reasons, and its stream label.
pub fn annotate(record: &mut Record, kind: Kind, f: &AccessFacts, reasons: &[Reason]) {
    let md = &mut record.entry.structured_metadata;
    if let Some(total) = f.total_tokens {
        md.push(("gen_ai_usage_total_tokens".into(), total.to_string()));
    }
    if kind == Kind::Llm && f.tokens.is_some() {
        md.push((
            "estimated_cost_usd".into(),
            format!("{}", f.cost_usd.unwrap_or(0.0)),
        ));
        if f.unpriced {
            md.push(("unpriced".into(), "true".into()));
        }
    }
    let reasons: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    md.push(("sampled_reason".into(), reasons.join(",")));
    let mut pairs = record.labels.clone().into_pairs();
    pairs.push((
        "access_log".into(),
        if kind == Kind::Mcp { "mcp" } else { "llm" }.into(),
    ));
    record.labels = Labels::from_pairs(pairs);
}

/// The outcome of sampling one export batch.
#[derive(Debug, Default)]
pub struct Sampled {
    /// Records to store (ordinary logs, and access logs the policy keeps).
    pub kept: Vec<Record>,
    /// Counter increments of every access log, kept or dropped.
    pub counters: Counters,
    /// `(kind, decision) → records`, for the server's own metrics.
    decisions: HashMap<(&'static str, &'static str), u64>,
    /// LLM records kept because their token counts were missing or not numbers.
    missing_tokens: u64,
}

impl Sampled {
    /// Writes the counters to the metric store and the server's own metrics.
    /// Call it once the kept records are stored.
    pub fn record(self, state: &AppState, tenant: &str, now_ns: i64) -> Result<(), ApiError> {
        for ((kind, decision), n) in &self.decisions {
            state.metrics.add(
                ACCESS_LOGS,
                &[("tenant", tenant), ("kind", kind), ("decision", decision)],
                *n as f64,
            );
        }
        if self.missing_tokens > 0 {
            state.metrics.add(
                ACCESS_LOG_MISSING_TOKENS,
                &[("tenant", tenant)],
                self.missing_tokens as f64,
            );
        }
        if self.counters.is_empty() {
            return Ok(());
        }
        state
            .metric_store
            .apply(tenant, self.counters.into_updates(now_ns))
            .map_err(|e| ApiError::internal("access log counters", &e))
    }
}

/// Prices, samples and counts the access logs among `records`; ordinary logs
/// pass through.
pub fn sample(state: &AppState, tenant: &str, records: Vec<Record>) -> Sampled {
    let pricing = state.genai.pricing().current();
    let config = &state.config.access_logs;
    let mut out = Sampled {
        kept: Vec::with_capacity(records.len()),
        ..Sampled::default()
    };
    for mut record in records {
        let kind = kind_of(&record.attributes);
        if kind == Kind::Other {
            out.kept.push(record);
            continue;
        }
        let f = facts(&record, kind, &pricing);
        let (enabled, policy) = config.policy_for(tenant, &f.service);
        let reasons = decide(kind, &f, enabled, &policy);
        let keep = !reasons.is_empty();
        out.counters.count(kind, &f, keep);
        let kind_name = if kind == Kind::Mcp { "mcp" } else { "llm" };
        *out.decisions
            .entry((kind_name, if keep { "kept" } else { "dropped" }))
            .or_insert(0) += 1;
        if reasons.contains(&Reason::MissingTokens) {
            out.missing_tokens += 1;
        }
        if keep {
            annotate(&mut record, kind, &f, &reasons);
            out.kept.push(record);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use inferscope_model::LogEntry;

    use super::*;

    const PRICING: &str = "providers:\n  - provider: openai\n    prefix-match: [gpt]\n    models:\n      - name: gpt-4o\n        input-estimated-cost-per-m: 2.5\n        output-estimated-cost-per-m: 10.0\n";

    fn record(attrs: &[(&str, &str)]) -> Record {
        Record {
            labels: Labels::from_pairs([("service_name", "envoy-ai-gateway")]),
            resource: vec![
                ("service.name".into(), "envoy-ai-gateway".into()),
                ("aigw.service".into(), "gw".into()),
            ]
            .into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            entry: LogEntry::new(1, ""),
        }
    }

    fn llm(input: &str, output: &str, code: &str, duration: &str) -> Record {
        record(&[
            ("gen_ai.request.model", "gpt-4o"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.usage.input_tokens", input),
            ("gen_ai.usage.output_tokens", output),
            ("response_code", code),
            ("duration", duration),
            ("upstream_transport_failure_reason", "-"),
            ("connection_termination_details", "-"),
            ("x-request-id", "r-1"),
        ])
    }

    fn reasons_of(r: &Record) -> Vec<&'static str> {
        let table = PricingTable::from_yaml_str(PRICING, "test").unwrap();
        let kind = kind_of(&r.attributes);
        let f = facts(r, kind, &table);
        decide(kind, &f, true, &SamplingPolicy::default())
            .iter()
            .map(|r| r.as_str())
            .collect()
    }

    #[test]
    fn default_policy_keeps_what_matters_and_drops_the_rest() {
        assert!(reasons_of(&llm("100", "50", "200", "900")).is_empty());
        assert_eq!(reasons_of(&llm("9000", "1000", "200", "900")), ["tokens"]);
        assert_eq!(reasons_of(&llm("100", "50", "503", "900")), ["error"]);
        assert_eq!(reasons_of(&llm("100", "50", "200", "30000")), ["slow"]);
        assert_eq!(
            reasons_of(&llm("20000", "50", "500", "31000")),
            ["tokens", "error", "slow"]
        );
        let mut failed = llm("10", "5", "200", "100");
        failed.attributes[6].1 = "connection timeout".into();
        assert_eq!(reasons_of(&failed), ["upstream_failure"]);
        // A missing or non-numeric count never gets a record dropped.
        assert_eq!(
            reasons_of(&llm("abc", "5", "200", "100")),
            ["missing_tokens"]
        );
        let mut missing = llm("1", "1", "200", "100");
        missing
            .attributes
            .retain(|(k, _)| !k.starts_with("gen_ai.usage"));
        assert_eq!(reasons_of(&missing), ["missing_tokens"]);
    }

    #[test]
    fn facts_price_the_request_and_total_the_tokens() {
        let table = PricingTable::from_yaml_str(PRICING, "test").unwrap();
        let mut r = llm("1000", "200", "200", "10");
        r.attributes
            .push(("gen_ai.usage.cached_input_tokens".into(), "300".into()));
        let f = facts(&r, Kind::Llm, &table);
        assert_eq!(f.total_tokens, Some(1500));
        assert_eq!(f.service, "gw");
        // Cached input is priced at the input price when the table has no cached price.
        let expected = (1000.0 * 2.5 + 200.0 * 10.0 + 300.0 * 2.5) / 1e6;
        assert!((f.cost_usd.unwrap() - expected).abs() < 1e-12);
        let mut unknown = llm("1000", "200", "200", "10");
        unknown.attributes[0].1 = "my-local-llama".into();
        let f = facts(&unknown, Kind::Llm, &table);
        assert!(f.unpriced && f.cost_usd.is_none());
        // Only a total: it counts for the policy.
        let total_only = record(&[
            ("gen_ai.request.model", "gpt-4o"),
            ("gen_ai.usage.total_tokens", "12000"),
        ]);
        let f = facts(&total_only, Kind::Llm, &table);
        assert_eq!((f.total_tokens, f.tokens), (Some(12000), None));
    }

    #[test]
    fn mcp_records_are_sampled_on_errors_and_slowness_only() {
        let mcp = |code: &str, duration: &str| {
            record(&[
                ("mcp.method.name", "tools/call"),
                ("mcp.provider.name", "kiwi"),
                ("response_code", code),
                ("duration", duration),
            ])
        };
        assert_eq!(kind_of(&mcp("200", "5").attributes), Kind::Mcp);
        assert!(reasons_of(&mcp("200", "5")).is_empty());
        assert_eq!(reasons_of(&mcp("500", "5")), ["error"]);
        assert_eq!(reasons_of(&mcp("200", "60000")), ["slow"]);
        assert_eq!(
            kind_of(&record(&[("http.method", "GET")]).attributes),
            Kind::Other
        );
    }

    #[test]
    fn baseline_is_deterministic_and_overrides_apply() {
        let p = SamplingPolicy {
            baseline_one_in: 3,
            ..SamplingPolicy::default()
        };
        let mut kept = 0;
        for i in 0..3000 {
            let f = AccessFacts {
                total_tokens: Some(10),
                request_key: format!("req-{i}"),
                ..AccessFacts::default()
            };
            let first = decide(Kind::Llm, &f, true, &p);
            assert_eq!(first, decide(Kind::Llm, &f, true, &p));
            kept += usize::from(!first.is_empty());
        }
        assert!((800..1200).contains(&kept), "{kept}");

        let config = AccessLogConfig {
            overrides: vec![crate::config::PolicyOverride {
                service: Some("gw".into()),
                min_total_tokens: Some(100),
                ..Default::default()
            }],
            ..AccessLogConfig::default()
        };
        assert_eq!(config.policy_for("fake", "gw").1.min_total_tokens, 100);
        assert_eq!(
            config.policy_for("fake", "other").1.min_total_tokens,
            10_000
        );
    }

    #[test]
    fn counters_count_every_record_with_its_decision() {
        let table = PricingTable::from_yaml_str(PRICING, "test").unwrap();
        let mut c = Counters::default();
        let r = llm("1000", "200", "200", "10");
        let f = facts(&r, Kind::Llm, &table);
        c.count(Kind::Llm, &f, false);
        c.count(Kind::Llm, &f, false);
        let updates = c.into_updates(7);
        let get = |name: &str, ty: Option<&str>| {
            updates
                .iter()
                .find(|u| u.labels.get("__name__") == Some(name) && u.labels.get("type") == ty)
                .map(|u| u.value)
        };
        assert_eq!(get("genai_access_log_requests_total", None), Some(2.0));
        assert_eq!(
            get("genai_access_log_tokens_total", Some("input")),
            Some(2000.0)
        );
        let cost = get("genai_access_log_cost_usd_total", None).unwrap();
        assert!((cost - 2.0 * (2500.0 + 2000.0) / 1e6).abs() < 1e-12);
        let u = &updates[0];
        assert_eq!(u.labels.get("decision"), Some("dropped"));
        assert_eq!(u.labels.get("response_class"), Some("2xx"));
        assert_eq!(u.ts_ns, 7);
    }
}
