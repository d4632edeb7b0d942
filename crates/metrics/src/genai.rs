//! The `genai_*` series, derived from the OpenTelemetry GenAI metrics an AI gateway
//! (Envoy AI Gateway) or an SDK pushes, and their estimated cost.
//!
//! | OTLP histogram (as sent)              | derived series                                              |
//! |---------------------------------------|-------------------------------------------------------------|
//! | `gen_ai.server.request.duration`      | `genai_requests_total`, `genai_request_duration_seconds_{bucket,sum,count}` |
//! | `gen_ai.server.time_to_first_token`   | `genai_time_to_first_token_seconds_{bucket,sum,count}`      |
//! | `gen_ai.server.time_per_output_token` | `genai_time_per_output_token_seconds_{bucket,sum,count}`    |
//! | `gen_ai.client.token.usage`           | `genai_tokens_total`, `genai_estimated_cost_usd_total` or `genai_unpriced_tokens_total` |
//!
//! Every derived update is a [`UpdateKind::CounterAdd`] of the histogram point's
//! *delta* (the OTLP conversion hands us deltas whatever the sender's temporality), so
//! the store's running totals are ordinary Prometheus counters and histograms.
//!
//! Labels: `service` (resource `aigw.service`, else `service.name`), `instance`
//! (`service.instance.id`), `provider` (`gen_ai.provider.name`, else the older
//! `gen_ai.system`), `model` (`gen_ai.response.model`, else `gen_ai.request.model`),
//! `operation` (`gen_ai.operation.name`), `type` (`gen_ai.token.type`) and `le`. An
//! absent or empty attribute leaves its label out.
//!
//! Cost: the token sum of a point times the model's base-tier per-token rate for its
//! token type ([`crate::pricing::ModelPrice::rate_per_token`]); long-context tiers need
//! per-request sizes and do not apply here. A model without a price is never guessed:
//! its tokens go to `genai_unpriced_tokens_total` and to a small registry
//! ([`GenAiDeriver::unpriced`]) so an operator can see what to add to the pricing file.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use inferscope_model::Labels;
use parking_lot::Mutex;

use crate::accumulate::{FastMap, KeyHasher};
use crate::pricing::PricingHandle;
use crate::types::{
    Attributes, DerivedUpdates, HistogramDelta, HistogramObserver, ObservedPoint, attribute,
    format_le,
};

/// OTLP metric: request duration histogram (seconds).
pub const OTLP_REQUEST_DURATION: &str = "gen_ai.server.request.duration";
/// OTLP metric: time-to-first-token histogram (seconds, streaming only).
pub const OTLP_TIME_TO_FIRST_TOKEN: &str = "gen_ai.server.time_to_first_token";
/// OTLP metric: time-per-output-token histogram (seconds, streaming only).
pub const OTLP_TIME_PER_OUTPUT_TOKEN: &str = "gen_ai.server.time_per_output_token";
/// OTLP metric: token usage histogram (tokens per request, by `gen_ai.token.type`).
pub const OTLP_TOKEN_USAGE: &str = "gen_ai.client.token.usage";

/// Counter: requests, from the request-duration histogram's count.
pub const GENAI_REQUESTS_TOTAL: &str = "genai_requests_total";
/// Histogram (`_bucket`, `_sum`, `_count`): request duration in seconds.
pub const GENAI_REQUEST_DURATION_SECONDS: &str = "genai_request_duration_seconds";
/// Histogram (`_bucket`, `_sum`, `_count`): time to first token in seconds.
pub const GENAI_TIME_TO_FIRST_TOKEN_SECONDS: &str = "genai_time_to_first_token_seconds";
/// Histogram (`_bucket`, `_sum`, `_count`): time per output token in seconds.
pub const GENAI_TIME_PER_OUTPUT_TOKEN_SECONDS: &str = "genai_time_per_output_token_seconds";
/// Counter: tokens, by `type`.
pub const GENAI_TOKENS_TOTAL: &str = "genai_tokens_total";
/// Counter: estimated cost in USD of the priced tokens.
pub const GENAI_ESTIMATED_COST_USD_TOTAL: &str = "genai_estimated_cost_usd_total";
/// Counter: tokens of models (or token types) the pricing table has no price for.
pub const GENAI_UNPRICED_TOKENS_TOTAL: &str = "genai_unpriced_tokens_total";

/// Suffix of a histogram's cumulative bucket series.
pub const BUCKET_SUFFIX: &str = "_bucket";
/// Suffix of a histogram's sum series.
pub const SUM_SUFFIX: &str = "_sum";
/// Suffix of a histogram's count series.
pub const COUNT_SUFFIX: &str = "_count";

/// Label names of the `genai_*` series.
pub mod label {
    /// The gateway deployment: resource `aigw.service`, else `service.name`.
    pub const SERVICE: &str = "service";
    /// The gateway pod: resource `service.instance.id`.
    pub const INSTANCE: &str = "instance";
    /// `gen_ai.provider.name` (or `gen_ai.system`).
    pub const PROVIDER: &str = "provider";
    /// `gen_ai.response.model`, else `gen_ai.request.model`.
    pub const MODEL: &str = "model";
    /// `gen_ai.operation.name`.
    pub const OPERATION: &str = "operation";
    /// `gen_ai.token.type`: `input`, `output`, `cached_input`, `cache_creation_input`.
    pub const TYPE: &str = "type";
    /// A bucket's upper bound.
    pub const LE: &str = "le";
}

/// At most this many (provider, model) pairs are kept in the unpriced registry; the
/// model name comes from clients, so the registry must not grow without bound.
const MAX_UNPRICED_MODELS: usize = 1024;

/// A (provider, model) pair whose tokens could not be priced, for a report endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpricedModel {
    /// `gen_ai.provider.name` as sent (empty when absent).
    pub provider: String,
    /// The model as sent (empty when absent).
    pub model: String,
    /// Unpriced tokens by `gen_ai.token.type` since the process started.
    pub tokens: BTreeMap<String, f64>,
    /// Time of the last unpriced point, Unix nanoseconds.
    pub last_seen_ns: i64,
}

impl UnpricedModel {
    /// All unpriced tokens of the pair.
    pub fn total_tokens(&self) -> f64 {
        self.tokens.values().sum()
    }
}

/// At most this many label-set lists are memoized; past it the memo starts over (the
/// attribute values come from clients).
const MAX_MEMOIZED_SERIES: usize = 16_384;

/// Derives the `genai_*` series from the GenAI histograms; see the module docs.
#[derive(Debug)]
pub struct GenAiDeriver {
    pricing: PricingHandle,
    unpriced: Mutex<UnpricedRegistry>,
    /// The label sets derived for each identity, shared with the store (which
    /// recognizes a known list by pointer and skips its label lookups).
    memo: Mutex<SeriesMemo>,
}

/// The GenAI histograms the deriver reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GenAiMetric {
    RequestDuration,
    TimeToFirstToken,
    TimePerOutputToken,
    TokenUsage,
}

impl GenAiMetric {
    fn of(otlp_name: &str) -> Option<Self> {
        match otlp_name {
            OTLP_REQUEST_DURATION => Some(GenAiMetric::RequestDuration),
            OTLP_TIME_TO_FIRST_TOKEN => Some(GenAiMetric::TimeToFirstToken),
            OTLP_TIME_PER_OUTPUT_TOKEN => Some(GenAiMetric::TimePerOutputToken),
            OTLP_TOKEN_USAGE => Some(GenAiMetric::TokenUsage),
            _ => None,
        }
    }

    /// The derived histogram's base name, for the duration metrics.
    fn histogram_name(self) -> Option<&'static str> {
        match self {
            GenAiMetric::RequestDuration => Some(GENAI_REQUEST_DURATION_SECONDS),
            GenAiMetric::TimeToFirstToken => Some(GENAI_TIME_TO_FIRST_TOKEN_SECONDS),
            GenAiMetric::TimePerOutputToken => Some(GENAI_TIME_PER_OUTPUT_TOKEN_SECONDS),
            GenAiMetric::TokenUsage => None,
        }
    }
}

/// The series labels common to every derived update of one data point.
#[derive(Debug, PartialEq, Eq)]
struct Identity<S> {
    service: S,
    instance: S,
    provider: S,
    model: S,
    operation: S,
}

/// The first non-empty value of `key` in rendered `attrs`.
fn resource_attr<'a>(attrs: &'a Attributes, key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Whether `unit` is milliseconds (UCUM `ms`, as some SDKs send durations).
fn is_milliseconds(unit: &str) -> bool {
    matches!(unit.trim(), "ms" | "millisecond" | "milliseconds")
}

/// Whether a sum can be added to a counter (finite and not negative).
fn addable(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

impl<'a> Identity<Cow<'a, str>> {
    fn new(point: &ObservedPoint<'a>) -> Self {
        let res = |key: &str| resource_attr(point.resource, key).map(Cow::Borrowed);
        let attr = |key: &str| attribute(point.attributes, key);
        let or_empty = |v: Option<Cow<'a, str>>| v.unwrap_or(Cow::Borrowed(""));
        Identity {
            service: or_empty(res("aigw.service").or_else(|| res("service.name"))),
            instance: or_empty(res("service.instance.id")),
            provider: or_empty(attr("gen_ai.provider.name").or_else(|| attr("gen_ai.system"))),
            model: or_empty(attr("gen_ai.response.model").or_else(|| attr("gen_ai.request.model"))),
            operation: or_empty(attr("gen_ai.operation.name")),
        }
    }
}

impl<S: AsRef<str>> Identity<S> {
    fn fields(&self) -> [&str; 5] {
        [
            self.service.as_ref(),
            self.instance.as_ref(),
            self.provider.as_ref(),
            self.model.as_ref(),
            self.operation.as_ref(),
        ]
    }

    fn to_owned_identity(&self) -> Identity<String> {
        let [service, instance, provider, model, operation] = self.fields().map(str::to_string);
        Identity {
            service,
            instance,
            provider,
            model,
            operation,
        }
    }

    /// Labels `__name__`, service, instance, provider, model, and `extra`; an empty
    /// value drops its label.
    fn labels(&self, name: &str, with_operation: bool, extra: &[(&str, &str)]) -> Labels {
        let [service, instance, provider, model, operation] = self.fields();
        let mut pairs: Vec<(&str, &str)> = vec![
            ("__name__", name),
            (label::SERVICE, service),
            (label::INSTANCE, instance),
            (label::PROVIDER, provider),
            (label::MODEL, model),
        ];
        if with_operation {
            pairs.push((label::OPERATION, operation));
        }
        pairs.extend_from_slice(extra);
        Labels::from_pairs(pairs)
    }
}

/// Everything a point's derived label sets depend on.
#[derive(Debug, PartialEq, Eq)]
struct SeriesKey<S, B> {
    metric: GenAiMetric,
    identity: Identity<S>,
    /// `gen_ai.token.type` (token usage only).
    token_type: S,
    /// Whether the tokens have a price (token usage only).
    priced: bool,
    /// Whether durations are in milliseconds (scales the `le` bounds).
    millis: bool,
    /// The histogram's bounds as bits (durations only).
    bounds: B,
}

type BorrowedKey<'a> = SeriesKey<Cow<'a, str>, &'a [f64]>;
type OwnedKey = SeriesKey<String, Vec<u64>>;

impl BorrowedKey<'_> {
    fn hash(&self) -> u64 {
        let mut h = KeyHasher::new();
        h.write(&[
            self.metric as u8,
            u8::from(self.priced),
            u8::from(self.millis),
        ]);
        for field in self.identity.fields() {
            h.write(field.as_bytes());
        }
        h.write(self.token_type.as_bytes());
        for b in self.bounds {
            h.write(&b.to_bits().to_le_bytes());
        }
        let (a, b) = h.finish();
        a ^ b.rotate_left(32)
    }

    fn matches(&self, owned: &OwnedKey) -> bool {
        self.metric == owned.metric
            && self.priced == owned.priced
            && self.millis == owned.millis
            && self.identity.fields() == owned.identity.fields()
            && self.token_type == owned.token_type.as_str()
            && self.bounds.len() == owned.bounds.len()
            && self
                .bounds
                .iter()
                .zip(&owned.bounds)
                .all(|(b, o)| b.to_bits() == *o)
    }

    fn to_owned_key(&self) -> OwnedKey {
        SeriesKey {
            metric: self.metric,
            identity: self.identity.to_owned_identity(),
            token_type: self.token_type.to_string(),
            priced: self.priced,
            millis: self.millis,
            bounds: self.bounds.iter().map(|b| b.to_bits()).collect(),
        }
    }

    /// The derived label sets, in the order [`GenAiDeriver::observe`] writes values.
    fn labels(&self) -> Arc<[Labels]> {
        let id = &self.identity;
        let Some(histogram) = self.metric.histogram_name() else {
            let token_type = [(label::TYPE, self.token_type.as_ref())];
            let money = if self.priced {
                id.labels(GENAI_ESTIMATED_COST_USD_TOTAL, false, &[])
            } else {
                id.labels(GENAI_UNPRICED_TOKENS_TOTAL, false, &token_type)
            };
            return Arc::from([id.labels(GENAI_TOKENS_TOTAL, true, &token_type), money]);
        };
        let mut out = Vec::with_capacity(self.bounds.len() + 4);
        if self.metric == GenAiMetric::RequestDuration {
            out.push(id.labels(GENAI_REQUESTS_TOTAL, true, &[]));
        }
        let bucket = format!("{histogram}{BUCKET_SUFFIX}");
        let mut kept = KeptBounds::new(scale(self.millis));
        for &bound in self.bounds {
            if let Some(bound) = kept.next(bound) {
                out.push(id.labels(&bucket, true, &[(label::LE, &format_le(bound))]));
            }
        }
        out.push(id.labels(&bucket, true, &[(label::LE, "+Inf")]));
        out.push(id.labels(&format!("{histogram}{SUM_SUFFIX}"), true, &[]));
        out.push(id.labels(&format!("{histogram}{COUNT_SUFFIX}"), true, &[]));
        out.into()
    }
}

/// The divisor that turns a duration histogram's values into seconds.
fn scale(millis: bool) -> f64 {
    if millis { 1000.0 } else { 1.0 }
}

/// Which bucket bounds become `le` series: scaled to seconds, in strictly ascending
/// order, finite. A bound out of order, repeated or NaN is skipped; its count stays
/// in the cumulative total of the next emitted bound.
struct KeptBounds {
    scale: f64,
    previous: f64,
}

impl KeptBounds {
    fn new(scale: f64) -> Self {
        KeptBounds {
            scale,
            previous: f64::NEG_INFINITY,
        }
    }

    /// The bound in seconds when it is kept.
    fn next(&mut self, bound: f64) -> Option<f64> {
        let bound = bound / self.scale;
        if bound.is_finite() && bound > self.previous {
            self.previous = bound;
            Some(bound)
        } else {
            None
        }
    }
}

/// The (provider, model) pairs seen without a price, by provider then model.
#[derive(Debug, Default)]
struct UnpricedRegistry {
    by_provider: HashMap<String, HashMap<String, UnpricedModel>>,
    /// Pairs held, at most [`MAX_UNPRICED_MODELS`].
    len: usize,
}

/// One memoized label-set list and what it was derived from.
type MemoEntry = (OwnedKey, Arc<[Labels]>);

/// Memoized label-set lists by key hash.
#[derive(Debug, Default)]
struct SeriesMemo {
    by_hash: FastMap<u64, Vec<MemoEntry>>,
    len: usize,
}

impl SeriesMemo {
    /// The label sets of `key`, built on first use.
    fn get(&mut self, key: &BorrowedKey<'_>) -> Arc<[Labels]> {
        let hash = key.hash();
        if let Some(found) = self
            .by_hash
            .get(&hash)
            .and_then(|list| list.iter().find(|(k, _)| key.matches(k)))
        {
            return Arc::clone(&found.1);
        }
        if self.len >= MAX_MEMOIZED_SERIES {
            self.by_hash.clear();
            self.len = 0;
        }
        let labels = key.labels();
        self.by_hash
            .entry(hash)
            .or_default()
            .push((key.to_owned_key(), Arc::clone(&labels)));
        self.len += 1;
        labels
    }
}

impl GenAiDeriver {
    /// A deriver pricing tokens with the table `pricing` holds at each point.
    pub fn new(pricing: PricingHandle) -> Self {
        GenAiDeriver {
            pricing,
            unpriced: Mutex::new(UnpricedRegistry::default()),
            memo: Mutex::new(SeriesMemo::default()),
        }
    }

    /// The pricing handle the deriver reads.
    pub fn pricing(&self) -> &PricingHandle {
        &self.pricing
    }

    /// The (provider, model) pairs seen without a price that the current table still
    /// cannot price, most tokens first. At most 1024 pairs are tracked.
    pub fn unpriced(&self) -> Vec<UnpricedModel> {
        let table = self.pricing.current();
        let registry = self.unpriced.lock();
        let mut out: Vec<UnpricedModel> = registry
            .by_provider
            .values()
            .flat_map(HashMap::values)
            .filter(|entry| {
                let provider = Some(entry.provider.as_str()).filter(|p| !p.is_empty());
                match table.price(provider, &entry.model) {
                    None => true,
                    Some(price) => entry
                        .tokens
                        .keys()
                        .any(|t| price.rate_per_token(t).is_none()),
                }
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.total_tokens()
                .total_cmp(&a.total_tokens())
                .then_with(|| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)))
        });
        out
    }

    /// Token usage: `genai_tokens_total` and the cost (or the unpriced tokens).
    fn token_usage(
        &self,
        point: &ObservedPoint<'_>,
        identity: Identity<Cow<'_, str>>,
        out: &mut DerivedUpdates,
    ) {
        let sum = point.delta.sum;
        if !addable(sum) {
            return;
        }
        let token_type = attribute(point.attributes, "gen_ai.token.type").unwrap_or_default();
        let rate = {
            let table = self.pricing.current();
            let provider = Some(identity.provider.as_ref()).filter(|p| !p.is_empty());
            table
                .price(provider, &identity.model)
                .and_then(|price| price.rate_per_token(&token_type))
        };
        if rate.is_none() {
            self.record_unpriced(&identity, &token_type, &point.delta);
        }
        let key = SeriesKey {
            metric: GenAiMetric::TokenUsage,
            identity,
            token_type,
            priced: rate.is_some(),
            millis: false,
            bounds: &[][..],
        };
        out.series = Some(self.memo.lock().get(&key));
        out.values
            .extend([sum, rate.map_or(sum, |rate| sum * rate)]);
    }

    /// A duration histogram: its buckets (cumulative over `le`), sum and count, and
    /// for the request duration the request counter first.
    fn duration(
        &self,
        metric: GenAiMetric,
        point: &ObservedPoint<'_>,
        identity: Identity<Cow<'_, str>>,
        out: &mut DerivedUpdates,
    ) {
        let delta = &point.delta;
        let millis = is_milliseconds(point.unit);
        let count = delta.count as f64;
        if metric == GenAiMetric::RequestDuration {
            out.values.push(count);
        }
        let mut kept = KeptBounds::new(scale(millis));
        let mut cumulative: u64 = 0;
        for (i, &bound) in delta.bounds.iter().enumerate() {
            cumulative =
                cumulative.saturating_add(delta.bucket_counts.get(i).copied().unwrap_or(0));
            if kept.next(bound).is_some() {
                // A sender whose bucket counts add up to more than its count is
                // inconsistent; clamping keeps the buckets non-decreasing up to
                // `+Inf` = count.
                out.values.push(cumulative.min(delta.count) as f64);
            }
        }
        let sum = delta.sum / scale(millis);
        out.values
            .extend([count, if addable(sum) { sum } else { f64::NAN }, count]);
        let key = SeriesKey {
            metric,
            identity,
            token_type: Cow::Borrowed(""),
            priced: false,
            millis,
            bounds: delta.bounds,
        };
        out.series = Some(self.memo.lock().get(&key));
    }

    fn record_unpriced<S: AsRef<str>>(
        &self,
        identity: &Identity<S>,
        token_type: &str,
        delta: &HistogramDelta<'_>,
    ) {
        let (provider, model) = (identity.provider.as_ref(), identity.model.as_ref());
        let mut registry = self.unpriced.lock();
        let full = registry.len >= MAX_UNPRICED_MODELS;
        let known = registry
            .by_provider
            .get(provider)
            .is_some_and(|models| models.contains_key(model));
        if !known {
            if full {
                return;
            }
            registry.len += 1;
        }
        // Looked up by borrowed strings: a known pair allocates nothing.
        let models = match registry.by_provider.get_mut(provider) {
            Some(models) => models,
            None => registry
                .by_provider
                .entry(provider.to_string())
                .or_default(),
        };
        let entry = match models.get_mut(model) {
            Some(entry) => entry,
            None => models
                .entry(model.to_string())
                .or_insert_with(|| UnpricedModel {
                    provider: provider.to_string(),
                    model: model.to_string(),
                    tokens: BTreeMap::new(),
                    last_seen_ns: delta.ts_ns,
                }),
        };
        match entry.tokens.get_mut(token_type) {
            Some(total) => *total += delta.sum,
            None => {
                entry.tokens.insert(token_type.to_string(), delta.sum);
            }
        }
        entry.last_seen_ns = entry.last_seen_ns.max(delta.ts_ns);
    }
}

impl HistogramObserver for GenAiDeriver {
    /// Derives the `genai_*` increments of one GenAI histogram point; durations in
    /// `ms` are converted to seconds.
    fn observe(&self, point: &ObservedPoint<'_>, out: &mut DerivedUpdates) {
        let Some(metric) = GenAiMetric::of(point.metric_name) else {
            return;
        };
        let identity = Identity::new(point);
        match metric {
            GenAiMetric::TokenUsage => self.token_usage(point, identity, out),
            _ => self.duration(metric, point, identity, out),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pricing::PricingTable;
    use crate::types::{PointUpdate, UpdateKind};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use proptest::prelude::*;

    /// String attributes as OTLP sends them.
    fn key_values(attrs: &[(String, String)]) -> Vec<KeyValue> {
        attrs
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(v.clone())),
                }),
                ..Default::default()
            })
            .collect()
    }

    /// Runs the deriver on one point with string attributes `attrs`; appends what it
    /// derived to `out` as updates.
    fn observe(
        deriver: &GenAiDeriver,
        resource: &Attributes,
        metric_name: &str,
        unit: &str,
        attrs: &[(String, String)],
        delta: &HistogramDelta<'_>,
        out: &mut Vec<PointUpdate>,
    ) {
        let attributes = key_values(attrs);
        let point = ObservedPoint {
            resource,
            metric_name,
            unit,
            attributes: &attributes,
            delta: delta.clone(),
        };
        let mut derived = DerivedUpdates::default();
        deriver.observe(&point, &mut derived);
        assert_eq!(
            derived.values.len(),
            derived.series.as_ref().map_or(0, |s| s.len()),
            "one value per derived series"
        );
        out.extend(derived.to_updates(delta.ts_ns));
    }

    const TOKEN_BOUNDS: [f64; 14] = [
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
        4194304.0, 16777216.0, 67108864.0,
    ];
    const DURATION_BOUNDS: [f64; 14] = [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Resource attributes as the gateway sends them, with `aigw.service` set.
    fn resource() -> Vec<(String, String)> {
        pairs(&[
            ("service.instance.id", "test-instance-456"),
            ("service.name", "aigw-test-service"),
            ("aigw.service", "my-ai-gateway"),
            ("telemetry.sdk.language", "go"),
            ("telemetry.sdk.name", "opentelemetry"),
            ("telemetry.sdk.version", "1.40.0"),
        ])
    }

    /// Point attributes of the verified payload (Appendix B of the SWIP-10 proposal).
    fn point_attrs(token_type: Option<&str>) -> Vec<(String, String)> {
        let mut attrs = pairs(&[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.original.model", "llama3.2:latest"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", "llama3.2:latest"),
            ("gen_ai.response.model", "llama3.2:latest"),
        ]);
        if let Some(t) = token_type {
            attrs.push(("gen_ai.token.type".to_string(), t.to_string()));
        }
        attrs
    }

    fn labels(items: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(items.iter().copied())
    }

    fn deriver_with(yaml: &str) -> GenAiDeriver {
        GenAiDeriver::new(PricingHandle::new(
            PricingTable::from_yaml_str(yaml, "test.yml").unwrap(),
        ))
    }

    const LLAMA_PRICED: &str = "providers:\n  - provider: openai\n    prefix-match: [gpt]\n    models:\n      - name: llama3.2\n        input-estimated-cost-per-m: 0.5\n        output-estimated-cost-per-m: 2\n";

    /// One bucket count per bound plus `+Inf`, with `n` observations in bucket `i`.
    fn counts_with(len: usize, i: usize, n: u64) -> Vec<u64> {
        let mut counts = vec![0; len + 1];
        counts[i] = n;
        counts
    }

    #[test]
    fn verified_token_usage_payload_priced() {
        let deriver = deriver_with(LLAMA_PRICED);
        let resource = resource();
        let mut out = Vec::new();
        for (token_type, sum, bucket) in [("input", 31.0, 3), ("output", 3.0, 1)] {
            let counts = counts_with(TOKEN_BOUNDS.len(), bucket, 1);
            let delta = HistogramDelta {
                ts_ns: 1_000,
                count: 1,
                sum,
                bounds: &TOKEN_BOUNDS,
                bucket_counts: &counts,
            };
            observe(
                &deriver,
                &resource,
                OTLP_TOKEN_USAGE,
                "token",
                &point_attrs(Some(token_type)),
                &delta,
                &mut out,
            );
        }
        let common = [
            ("service", "my-ai-gateway"),
            ("instance", "test-instance-456"),
            ("provider", "openai"),
            ("model", "llama3.2:latest"),
        ];
        let with = |name: &str, extra: &[(&str, &str)]| {
            let mut items = vec![("__name__", name)];
            items.extend_from_slice(&common);
            items.extend_from_slice(extra);
            labels(&items)
        };
        let expected = vec![
            (
                with(
                    GENAI_TOKENS_TOTAL,
                    &[("operation", "chat"), ("type", "input")],
                ),
                31.0,
            ),
            (with(GENAI_ESTIMATED_COST_USD_TOTAL, &[]), 31.0 * 0.5e-6),
            (
                with(
                    GENAI_TOKENS_TOTAL,
                    &[("operation", "chat"), ("type", "output")],
                ),
                3.0,
            ),
            (with(GENAI_ESTIMATED_COST_USD_TOTAL, &[]), 3.0 * 2e-6),
        ];
        assert_eq!(out.len(), expected.len(), "{out:#?}");
        for (update, (labels, value)) in out.iter().zip(expected) {
            assert_eq!(update.labels, labels);
            assert!((update.value - value).abs() < 1e-15, "{update:?}");
            assert_eq!(update.ts_ns, 1_000);
            assert_eq!(update.kind, UpdateKind::CounterAdd);
        }
        assert!(deriver.unpriced().is_empty());
    }

    #[test]
    fn verified_token_usage_payload_unpriced_with_the_default_table() {
        let deriver = GenAiDeriver::new(PricingHandle::new(PricingTable::default_table().unwrap()));
        let resource = resource();
        let mut out = Vec::new();
        for (token_type, sum) in [("input", 31.0), ("output", 3.0)] {
            let counts = counts_with(TOKEN_BOUNDS.len(), 0, 1);
            let delta = HistogramDelta {
                ts_ns: 2_000,
                count: 1,
                sum,
                bounds: &TOKEN_BOUNDS,
                bucket_counts: &counts,
            };
            observe(
                &deriver,
                &resource,
                OTLP_TOKEN_USAGE,
                "token",
                &point_attrs(Some(token_type)),
                &delta,
                &mut out,
            );
        }
        let unpriced: Vec<(Labels, f64)> = out
            .iter()
            .filter(|u| u.labels.get("__name__") == Some(GENAI_UNPRICED_TOKENS_TOTAL))
            .map(|u| (u.labels.clone(), u.value))
            .collect();
        assert_eq!(
            unpriced,
            vec![
                (
                    labels(&[
                        ("__name__", GENAI_UNPRICED_TOKENS_TOTAL),
                        ("service", "my-ai-gateway"),
                        ("instance", "test-instance-456"),
                        ("provider", "openai"),
                        ("model", "llama3.2:latest"),
                        ("type", "input"),
                    ]),
                    31.0
                ),
                (
                    labels(&[
                        ("__name__", GENAI_UNPRICED_TOKENS_TOTAL),
                        ("service", "my-ai-gateway"),
                        ("instance", "test-instance-456"),
                        ("provider", "openai"),
                        ("model", "llama3.2:latest"),
                        ("type", "output"),
                    ]),
                    3.0
                ),
            ]
        );
        assert!(
            out.iter()
                .all(|u| u.labels.get("__name__") != Some(GENAI_ESTIMATED_COST_USD_TOTAL)),
            "never a guessed price"
        );
        assert_eq!(
            out.iter()
                .filter(|u| u.labels.get("__name__") == Some(GENAI_TOKENS_TOTAL))
                .count(),
            2
        );

        let report = deriver.unpriced();
        assert_eq!(
            report,
            vec![UnpricedModel {
                provider: "openai".to_string(),
                model: "llama3.2:latest".to_string(),
                tokens: BTreeMap::from([("input".to_string(), 31.0), ("output".to_string(), 3.0)]),
                last_seen_ns: 2_000,
            }]
        );
        assert_eq!(report[0].total_tokens(), 34.0);

        // Once the pricing file learns the model, the report drops it.
        deriver
            .pricing()
            .replace(PricingTable::from_yaml_str(LLAMA_PRICED, "t.yml").unwrap());
        assert!(deriver.unpriced().is_empty());
    }

    #[test]
    fn verified_request_duration_payload() {
        let deriver = deriver_with(LLAMA_PRICED);
        // 10.432428 s falls in (10.24, 20.48]: bucket index 11.
        let counts = counts_with(DURATION_BOUNDS.len(), 11, 1);
        let delta = HistogramDelta {
            ts_ns: 5_000,
            count: 1,
            sum: 10.432428,
            bounds: &DURATION_BOUNDS,
            bucket_counts: &counts,
        };
        let mut out = Vec::new();
        observe(
            &deriver,
            &resource(),
            OTLP_REQUEST_DURATION,
            "s",
            &point_attrs(None),
            &delta,
            &mut out,
        );
        let common = [
            ("service", "my-ai-gateway"),
            ("instance", "test-instance-456"),
            ("provider", "openai"),
            ("model", "llama3.2:latest"),
            ("operation", "chat"),
        ];
        let with = |name: &str, extra: &[(&str, &str)]| {
            let mut items = vec![("__name__", name)];
            items.extend_from_slice(&common);
            items.extend_from_slice(extra);
            labels(&items)
        };
        let bucket = "genai_request_duration_seconds_bucket";
        let mut expected = vec![(with(GENAI_REQUESTS_TOTAL, &[]), 1.0)];
        let les = [
            "0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64", "1.28", "2.56", "5.12", "10.24",
        ];
        for le in les {
            expected.push((with(bucket, &[("le", le)]), 0.0));
        }
        for le in ["20.48", "40.96", "81.92", "+Inf"] {
            expected.push((with(bucket, &[("le", le)]), 1.0));
        }
        expected.push((with("genai_request_duration_seconds_sum", &[]), 10.432428));
        expected.push((with("genai_request_duration_seconds_count", &[]), 1.0));
        let got: Vec<(Labels, f64)> = out.iter().map(|u| (u.labels.clone(), u.value)).collect();
        assert_eq!(got, expected);
        assert!(
            out.iter()
                .all(|u| u.ts_ns == 5_000 && u.kind == UpdateKind::CounterAdd)
        );
    }

    #[test]
    fn ttft_and_tpot_have_their_own_names_and_no_request_counter() {
        let deriver = deriver_with(LLAMA_PRICED);
        let bounds = [0.1, 0.5];
        let counts = [1, 2, 0];
        let delta = HistogramDelta {
            ts_ns: 1,
            count: 3,
            sum: 0.9,
            bounds: &bounds,
            bucket_counts: &counts,
        };
        for (metric, name) in [
            (OTLP_TIME_TO_FIRST_TOKEN, GENAI_TIME_TO_FIRST_TOKEN_SECONDS),
            (
                OTLP_TIME_PER_OUTPUT_TOKEN,
                GENAI_TIME_PER_OUTPUT_TOKEN_SECONDS,
            ),
        ] {
            let mut out = Vec::new();
            observe(
                &deriver,
                &resource(),
                metric,
                "s",
                &point_attrs(None),
                &delta,
                &mut out,
            );
            let got: Vec<(String, Option<String>, f64)> = out
                .iter()
                .map(|u| {
                    (
                        u.labels.get("__name__").unwrap().to_string(),
                        u.labels.get("le").map(str::to_string),
                        u.value,
                    )
                })
                .collect();
            let b = format!("{name}_bucket");
            assert_eq!(
                got,
                vec![
                    (b.clone(), Some("0.1".to_string()), 1.0),
                    (b.clone(), Some("0.5".to_string()), 3.0),
                    (b, Some("+Inf".to_string()), 3.0),
                    (format!("{name}_sum"), None, 0.9),
                    (format!("{name}_count"), None, 3.0),
                ],
                "{metric}"
            );
        }
    }

    #[test]
    fn millisecond_durations_become_seconds() {
        let deriver = deriver_with(LLAMA_PRICED);
        let bounds = [5.0, 100.0, 2500.0];
        let counts = [0, 1, 1, 0];
        let delta = HistogramDelta {
            ts_ns: 1,
            count: 2,
            sum: 1500.0,
            bounds: &bounds,
            bucket_counts: &counts,
        };
        let mut out = Vec::new();
        observe(
            &deriver,
            &resource(),
            OTLP_REQUEST_DURATION,
            "ms",
            &point_attrs(None),
            &delta,
            &mut out,
        );
        let got: Vec<(String, Option<String>, f64)> = out
            .iter()
            .map(|u| {
                (
                    u.labels.get("__name__").unwrap().to_string(),
                    u.labels.get("le").map(str::to_string),
                    u.value,
                )
            })
            .collect();
        let b = "genai_request_duration_seconds_bucket".to_string();
        assert_eq!(
            got,
            vec![
                (GENAI_REQUESTS_TOTAL.to_string(), None, 2.0),
                (b.clone(), Some("0.005".to_string()), 0.0),
                (b.clone(), Some("0.1".to_string()), 1.0),
                (b.clone(), Some("2.5".to_string()), 2.0),
                (b, Some("+Inf".to_string()), 2.0),
                ("genai_request_duration_seconds_sum".to_string(), None, 1.5),
                (
                    "genai_request_duration_seconds_count".to_string(),
                    None,
                    2.0
                ),
            ]
        );

        // Token usage is not a duration: a unit never rescales it.
        let mut out = Vec::new();
        observe(
            &deriver,
            &resource(),
            OTLP_TOKEN_USAGE,
            "ms",
            &point_attrs(Some("input")),
            &delta,
            &mut out,
        );
        assert_eq!(out[0].value, 1500.0);
    }

    #[test]
    fn service_model_and_provider_fallbacks() {
        let deriver = deriver_with(LLAMA_PRICED);
        let bounds = [1.0];
        let counts = [1, 0];
        let delta = HistogramDelta {
            ts_ns: 1,
            count: 1,
            sum: 0.5,
            bounds: &bounds,
            bucket_counts: &counts,
        };
        let requests = |resource: &[(String, String)], attrs: &[(String, String)]| {
            let mut out = Vec::new();
            observe(
                &deriver,
                resource,
                OTLP_REQUEST_DURATION,
                "s",
                attrs,
                &delta,
                &mut out,
            );
            out.into_iter().next().unwrap().labels
        };

        // No aigw.service (or an empty one): service.name; no instance: no label.
        let resource = pairs(&[("service.name", "aigw-test-service"), ("aigw.service", "")]);
        // No response model (or an empty one): the request model; gen_ai.system.
        let attrs = pairs(&[
            ("gen_ai.system", "anthropic"),
            ("gen_ai.response.model", ""),
            ("gen_ai.request.model", "claude-sonnet-4"),
        ]);
        assert_eq!(
            requests(&resource, &attrs),
            labels(&[
                ("__name__", GENAI_REQUESTS_TOTAL),
                ("service", "aigw-test-service"),
                ("provider", "anthropic"),
                ("model", "claude-sonnet-4"),
            ])
        );
        // gen_ai.provider.name wins over gen_ai.system; the response model wins.
        let attrs = pairs(&[
            ("gen_ai.system", "anthropic"),
            ("gen_ai.provider.name", "aws.bedrock"),
            ("gen_ai.request.model", "claude-sonnet-4"),
            ("gen_ai.response.model", "claude-sonnet-4-20250514"),
        ]);
        assert_eq!(
            requests(&[], &attrs),
            labels(&[
                ("__name__", GENAI_REQUESTS_TOTAL),
                ("provider", "aws.bedrock"),
                ("model", "claude-sonnet-4-20250514"),
            ])
        );
        // Nothing known: only the name.
        assert_eq!(
            requests(&[], &[]),
            labels(&[("__name__", GENAI_REQUESTS_TOTAL)])
        );
    }

    /// Points of one identity share one label-set list (the store's fast path);
    /// anything that changes the labels gets another.
    #[test]
    fn label_sets_are_shared_per_identity() {
        let deriver = deriver_with(LLAMA_PRICED);
        let derive = |metric: &str, unit: &str, attrs: &[(String, String)], bounds: &[f64]| {
            let counts = vec![1; bounds.len() + 1];
            let point = ObservedPoint {
                resource: &[],
                metric_name: metric,
                unit,
                attributes: &key_values(attrs),
                delta: HistogramDelta {
                    ts_ns: 1,
                    count: counts.len() as u64,
                    sum: 2.0,
                    bounds,
                    bucket_counts: &counts,
                },
            };
            let mut out = DerivedUpdates::default();
            deriver.observe(&point, &mut out);
            out.series.unwrap()
        };
        let model = |m: &str| pairs(&[("gen_ai.request.model", m), ("gen_ai.token.type", "input")]);
        let first = derive(OTLP_REQUEST_DURATION, "s", &model("a"), &[1.0, 2.0]);
        let same = derive(OTLP_REQUEST_DURATION, "s", &model("a"), &[1.0, 2.0]);
        assert!(Arc::ptr_eq(&first, &same));
        for other in [
            derive(OTLP_REQUEST_DURATION, "s", &model("b"), &[1.0, 2.0]),
            derive(OTLP_REQUEST_DURATION, "ms", &model("a"), &[1.0, 2.0]),
            derive(OTLP_REQUEST_DURATION, "s", &model("a"), &[1.0, 3.0]),
            derive(OTLP_TIME_TO_FIRST_TOKEN, "s", &model("a"), &[1.0, 2.0]),
        ] {
            assert!(!Arc::ptr_eq(&first, &other));
            assert_ne!(first[..], other[..]);
        }
        // Priced and unpriced token usage of one model name differ by token type.
        let priced = derive(
            OTLP_TOKEN_USAGE,
            "token",
            &pairs(&[
                ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", "llama3.2"),
                ("gen_ai.token.type", "input"),
            ]),
            &[],
        );
        let unpriced = derive(
            OTLP_TOKEN_USAGE,
            "token",
            &pairs(&[
                ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", "llama3.2"),
                ("gen_ai.token.type", "reasoning"),
            ]),
            &[],
        );
        assert_eq!(
            priced[1].get("__name__"),
            Some(GENAI_ESTIMATED_COST_USD_TOTAL)
        );
        assert_eq!(
            unpriced[1].get("__name__"),
            Some(GENAI_UNPRICED_TOKENS_TOTAL)
        );
    }

    #[test]
    fn other_metrics_push_nothing() {
        let deriver = deriver_with(LLAMA_PRICED);
        let delta = HistogramDelta {
            ts_ns: 1,
            count: 1,
            sum: 1.0,
            bounds: &[],
            bucket_counts: &[1],
        };
        let mut out = Vec::new();
        for name in [
            "http.server.request.duration",
            "gen_ai_client_token_usage",
            "",
        ] {
            observe(
                &deriver,
                &resource(),
                name,
                "token",
                &point_attrs(Some("input")),
                &delta,
                &mut out,
            );
        }
        assert!(out.is_empty());
    }

    #[test]
    fn priced_model_with_an_unknown_token_type_is_unpriced() {
        let deriver = deriver_with(LLAMA_PRICED);
        let delta = HistogramDelta {
            ts_ns: 7,
            count: 1,
            sum: 10.0,
            bounds: &[],
            bucket_counts: &[1],
        };
        let mut out = Vec::new();
        observe(
            &deriver,
            &resource(),
            OTLP_TOKEN_USAGE,
            "token",
            &point_attrs(Some("reasoning")),
            &delta,
            &mut out,
        );
        let names: Vec<&str> = out
            .iter()
            .map(|u| u.labels.get("__name__").unwrap())
            .collect();
        assert_eq!(names, vec![GENAI_TOKENS_TOTAL, GENAI_UNPRICED_TOKENS_TOTAL]);
        assert_eq!(out[1].labels.get("type"), Some("reasoning"));
        let report = deriver.unpriced();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].tokens.get("reasoning"), Some(&10.0));
    }

    #[test]
    fn unpriced_registry_is_bounded_and_sorted() {
        let deriver = deriver_with(LLAMA_PRICED);
        let mut out = Vec::new();
        for i in 0..(MAX_UNPRICED_MODELS + 10) {
            let delta = HistogramDelta {
                ts_ns: i as i64,
                count: 1,
                sum: i as f64,
                bounds: &[],
                bucket_counts: &[1],
            };
            let attrs = pairs(&[
                ("gen_ai.request.model", &format!("model-{i}")),
                ("gen_ai.token.type", "input"),
            ]);
            observe(
                &deriver,
                &[],
                OTLP_TOKEN_USAGE,
                "token",
                &attrs,
                &delta,
                &mut out,
            );
        }
        let report = deriver.unpriced();
        assert_eq!(report.len(), MAX_UNPRICED_MODELS);
        assert_eq!(
            report[0].model,
            format!("model-{}", MAX_UNPRICED_MODELS - 1)
        );
        assert!(
            report
                .windows(2)
                .all(|w| w[0].total_tokens() >= w[1].total_tokens())
        );
        // The series is still written for pairs beyond the registry's bound.
        assert_eq!(
            out.iter()
                .filter(|u| u.labels.get("__name__") == Some(GENAI_UNPRICED_TOKENS_TOTAL))
                .count(),
            MAX_UNPRICED_MODELS + 10
        );
    }

    #[test]
    fn inconsistent_or_odd_buckets_stay_monotonic() {
        let deriver = deriver_with(LLAMA_PRICED);
        // Bucket counts adding up past the count, a repeated bound, a NaN bound and a
        // missing bucket count.
        let bounds = [1.0, 1.0, f64::NAN, 4.0, 8.0];
        let counts = [3, 1, 1, 0];
        let delta = HistogramDelta {
            ts_ns: 1,
            count: 4,
            sum: f64::NAN,
            bounds: &bounds,
            bucket_counts: &counts,
        };
        let mut out = Vec::new();
        observe(
            &deriver,
            &resource(),
            OTLP_TIME_TO_FIRST_TOKEN,
            "s",
            &[],
            &delta,
            &mut out,
        );
        let got: Vec<(Option<&str>, &str, f64)> = out
            .iter()
            .map(|u| {
                (
                    u.labels.get("le"),
                    u.labels.get("__name__").unwrap(),
                    u.value,
                )
            })
            .collect();
        let b = "genai_time_to_first_token_seconds_bucket";
        assert_eq!(
            got,
            vec![
                (Some("1"), b, 3.0),
                (Some("4"), b, 4.0),
                (Some("8"), b, 4.0),
                (Some("+Inf"), b, 4.0),
                (None, "genai_time_to_first_token_seconds_count", 4.0),
            ],
            "a NaN sum is not added"
        );
    }

    proptest! {
        #[test]
        fn buckets_are_non_decreasing_and_inf_equals_count(
            counts in prop::collection::vec(0u64..1_000, 1..24),
            extra in 0u64..3,
            unit_ms in any::<bool>(),
        ) {
            let deriver = deriver_with(LLAMA_PRICED);
            let bounds: Vec<f64> = (0..counts.len() - 1).map(|i| 0.005 * 2f64.powi(i as i32)).collect();
            // Usually the count is the sum of the buckets; sometimes a sender says more.
            let count = counts.iter().sum::<u64>() + extra;
            let delta = HistogramDelta {
                ts_ns: 1,
                count,
                sum: 1.0,
                bounds: &bounds,
                bucket_counts: &counts,
            };
            let unit = if unit_ms { "ms" } else { "s" };
            let mut out = Vec::new();
            observe(&deriver, &resource(), OTLP_REQUEST_DURATION, unit, &point_attrs(None), &delta, &mut out);
            let buckets: Vec<(String, f64)> = out
                .iter()
                .filter(|u| u.labels.get("__name__") == Some("genai_request_duration_seconds_bucket"))
                .map(|u| (u.labels.get("le").unwrap().to_string(), u.value))
                .collect();
            prop_assert_eq!(buckets.len(), counts.len());
            prop_assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
            let (last_le, last_value) = buckets.last().unwrap();
            prop_assert_eq!(last_le.as_str(), "+Inf");
            prop_assert_eq!(*last_value, count as f64);
            // The le values are distinct and ascending.
            let les: Vec<f64> = buckets[..buckets.len() - 1].iter().map(|(le, _)| le.parse().unwrap()).collect();
            prop_assert!(les.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
