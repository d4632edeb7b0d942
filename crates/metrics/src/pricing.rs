//! The model pricing table: per-million-token list prices per provider and model,
//! read from SkyWalking's `gen-ai-config.yml` format, and the cost of token counts.
//!
//! # File format
//!
//! The file is SkyWalking's `gen-ai-config.yml`, read as SkyWalking reads it, plus a
//! few keys of our own in the same style (marked *ext* below):
//!
//! ```yaml
//! last-updated: 2026-03-23
//! providers:
//!   - provider: openai
//!     prefix-match: [gpt]            # model-name prefixes that identify the provider
//!     models:
//!       - name: gpt-4o
//!         aliases: [gpt-4o-latest]   # other names for the same entry
//!         input-estimated-cost-per-m: 2.5
//!         output-estimated-cost-per-m: 10.0
//!         cached-input-estimated-cost-per-m: 1.25          # ext, defaults to input
//!         cache-creation-input-estimated-cost-per-m: 2.5   # ext, defaults to input
//!         long-context:                                    # ext, per-request tiers
//!           - threshold-input-tokens: 200000
//!             input-estimated-cost-per-m: 5.0
//!             output-estimated-cost-per-m: 15.0
//!   - provider: bytedance
//!     prefix-match: [doubao]         # a provider may have no models
//! ```
//!
//! Unknown keys are ignored (SkyWalking files carry extra keys and comments). A model
//! entry without both an input and an output price is kept as a *known but unpriced*
//! model: it matches, and its lookup answers `None` (SkyWalking would price it at 0;
//! we never guess). Anything else malformed is a [`PricingError`] naming the file and
//! the field (`providers[2].models[0].input-estimated-cost-per-m`).
//!
//! # Lookup
//!
//! [`PricingTable::price`] picks the provider entries named like `gen_ai.provider.name`
//! (ASCII case-insensitive) and, within them, the model entry whose name or alias is
//! the longest prefix of the model (an exact name is the longest prefix of all), so
//! `gpt-4o-mini-2024-07-18` finds `gpt-4o-mini` and `gpt-4o-2024-08-06` finds
//! `gpt-4o`. When no provider has that name, or its entries do not match (the gateway
//! often reports a backend name such as `openai-backend` or `ollama`), the search runs
//! over every provider whose `prefix-match` entry is a prefix of the model. Model
//! names and prefixes also compare ASCII case-insensitively.
//!
//! # Cost
//!
//! Token types are disjoint, as the gateway reports them: `input` (uncached prompt
//! tokens), `cached_input`, `cache_creation_input` and `output`, each at its own rate.
//! Long-context tiers apply to a *single request* whose prompt (all three input
//! types together) exceeds the tier threshold, and then to the whole request: only
//! per-request data (access logs) can use them. The metrics path only sees token sums
//! over many requests and prices them with the base tier ([`ModelPrice::rate_per_token`]).
//!
//! # Hot reload
//!
//! A [`PricingHandle`] shares the current table; [`PricingFile::reload_if_changed`]
//! re-reads the file when its modification time or length changed and swaps the
//! table in, keeping the previous one when the new file does not parse.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use serde_yaml::Value;

/// The pricing table compiled into the binary (see `default_pricing.yaml`).
const DEFAULT_PRICING_YAML: &str = include_str!("default_pricing.yaml");

/// Why a pricing file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The file could not be read (or its metadata could not be read).
    #[error("failed to read pricing file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("invalid pricing file {origin}: {source}")]
    Yaml {
        /// The file path, or a name for an embedded table.
        origin: String,
        /// The YAML error (with its line and column).
        #[source]
        source: serde_yaml::Error,
    },
    /// The file is YAML but a field is missing or has the wrong shape.
    #[error("invalid pricing file {origin}: {field}: {reason}")]
    Field {
        /// The file path, or a name for an embedded table.
        origin: String,
        /// The field, as a path from the document root: `providers[1].models[0].name`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Per-million-token prices (USD) of one tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Uncached input (prompt) tokens.
    pub input_per_m: f64,
    /// Output (completion) tokens.
    pub output_per_m: f64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input_per_m: f64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_creation_input_per_m: f64,
}

impl Rates {
    /// The per-million price of a token type as the gateway names it in
    /// `gen_ai.token.type`; `None` for a type with no price (e.g. `total`).
    pub fn per_m(&self, token_type: &str) -> Option<f64> {
        match token_type {
            "input" => Some(self.input_per_m),
            "output" => Some(self.output_per_m),
            "cached_input" => Some(self.cached_input_per_m),
            "cache_creation_input" => Some(self.cache_creation_input_per_m),
            _ => None,
        }
    }
}

/// A long-context tier: the rates of a request whose prompt exceeds the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct LongContextTier {
    /// The tier applies when a request's prompt tokens (input + cached input + cache
    /// creation input) are strictly more than this.
    pub threshold_input_tokens: u64,
    /// The tier's rates, for the whole request.
    pub rates: Rates,
}

/// The price of one model entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPrice {
    /// The provider entry the model was found under, as written in the file.
    pub provider: String,
    /// The model entry's `name`, as written in the file.
    pub model: String,
    /// The base tier.
    pub rates: Rates,
    /// Long-context tiers, ascending by threshold.
    pub long_context: Vec<LongContextTier>,
}

/// The tokens of one request (or any set of tokens priced together), by type. The
/// types are disjoint: `input` excludes the cached and cache-creation tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens read from the prompt cache.
    pub cached_input: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input: u64,
}

impl TokenCounts {
    /// All prompt tokens of the request: input, cached input and cache creation input.
    pub fn prompt_tokens(&self) -> u64 {
        self.input
            .saturating_add(self.cached_input)
            .saturating_add(self.cache_creation_input)
    }
}

impl ModelPrice {
    /// The rates of a single request with `prompt_tokens` prompt tokens: the tier with
    /// the highest threshold below the prompt size, else the base tier.
    pub fn rates_for_prompt(&self, prompt_tokens: u64) -> &Rates {
        self.long_context
            .iter()
            .rev()
            .find(|tier| prompt_tokens > tier.threshold_input_tokens)
            .map_or(&self.rates, |tier| &tier.rates)
    }

    /// The estimated cost in USD of a single request's tokens: each token type at its
    /// own rate, from the long-context tier its prompt size selects.
    pub fn cost(&self, tokens: &TokenCounts) -> f64 {
        let rates = self.rates_for_prompt(tokens.prompt_tokens());
        (tokens.input as f64 * rates.input_per_m
            + tokens.output as f64 * rates.output_per_m
            + tokens.cached_input as f64 * rates.cached_input_per_m
            + tokens.cache_creation_input as f64 * rates.cache_creation_input_per_m)
            / 1_000_000.0
    }

    /// The base-tier price in USD of one token of `token_type` (`input`, `output`,
    /// `cached_input`, `cache_creation_input`); `None` for another type.
    ///
    /// For aggregated data (the OTLP metrics), where per-request prompt sizes are
    /// unknown: long-context tiers are not applied, so very long prompts are
    /// under-estimated there.
    pub fn rate_per_token(&self, token_type: &str) -> Option<f64> {
        self.rates.per_m(token_type).map(|p| p / 1_000_000.0)
    }
}

/// One model entry of a provider.
#[derive(Debug, Clone)]
struct ModelEntry {
    /// `name` and `aliases`, the keys the model name is matched against.
    keys: Vec<String>,
    /// `None` for an entry without input and output prices.
    price: Option<ModelPrice>,
}

/// One provider entry.
#[derive(Debug, Clone)]
struct ProviderEntry {
    name: String,
    prefix_match: Vec<String>,
    models: Vec<ModelEntry>,
}

/// The parsed pricing file. Cheap to share behind an `Arc` (see [`PricingHandle`]).
#[derive(Debug, Clone, Default)]
pub struct PricingTable {
    last_updated: Option<String>,
    providers: Vec<ProviderEntry>,
}

/// Whether `prefix` is an ASCII case-insensitive prefix of `s`.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The best match of `model` in `provider` (longest key that is a prefix of it), as
/// `(key length, entry)`.
fn best_model_match<'a>(
    provider: &'a ProviderEntry,
    model: &str,
) -> Option<(usize, &'a ModelEntry)> {
    let mut best: Option<(usize, &ModelEntry)> = None;
    for entry in &provider.models {
        for key in &entry.keys {
            if starts_with_ignore_case(model, key) && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), entry));
            }
        }
    }
    best
}

impl PricingTable {
    /// The table compiled into the binary (`default_pricing.yaml`): list prices of the
    /// major providers, estimates to verify against the providers' pricing pages.
    pub fn default_table() -> Result<Self, PricingError> {
        Self::from_yaml_str(DEFAULT_PRICING_YAML, "<default pricing table>")
    }

    /// Reads and parses a pricing file.
    pub fn from_file(path: &Path) -> Result<Self, PricingError> {
        let text = std::fs::read_to_string(path).map_err(|source| PricingError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// Parses a pricing file's text; `origin` names it in errors (a path).
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self, PricingError> {
        let doc: Value = serde_yaml::from_str(text).map_err(|source| PricingError::Yaml {
            origin: origin.to_string(),
            source,
        })?;
        Parser { origin }.table(&doc)
    }

    /// The `last-updated` value of the file, as written.
    pub fn last_updated(&self) -> Option<&str> {
        self.last_updated.as_deref()
    }

    /// Number of provider entries.
    pub fn provider_count(&self) -> usize {
        self.providers.len()
    }

    /// Number of model entries with a price, over all providers.
    pub fn priced_model_count(&self) -> usize {
        self.providers
            .iter()
            .flat_map(|p| &p.models)
            .filter(|m| m.price.is_some())
            .count()
    }

    /// The price of `model` as reported with `provider` (`gen_ai.provider.name`), by
    /// the rules in the module docs; `None` when no entry matches or the matching
    /// entry has no price.
    pub fn price(&self, provider: Option<&str>, model: &str) -> Option<&ModelPrice> {
        if model.is_empty() {
            return None;
        }
        if let Some(provider) = provider.filter(|p| !p.is_empty()) {
            let named = self
                .providers
                .iter()
                .filter(|p| p.name.eq_ignore_ascii_case(provider));
            if let Some(entry) = Self::best_over(named, model) {
                return entry.price.as_ref();
            }
        }
        let by_prefix = self.providers.iter().filter(|p| {
            p.prefix_match
                .iter()
                .any(|prefix| starts_with_ignore_case(model, prefix))
        });
        Self::best_over(by_prefix, model).and_then(|entry| entry.price.as_ref())
    }

    /// The longest match of `model` over `providers` (the first on equal length).
    fn best_over<'a>(
        providers: impl Iterator<Item = &'a ProviderEntry>,
        model: &str,
    ) -> Option<&'a ModelEntry> {
        let mut best: Option<(usize, &ModelEntry)> = None;
        for provider in providers {
            if let Some((len, entry)) = best_model_match(provider, model)
                && best.is_none_or(|(best_len, _)| len > best_len)
            {
                best = Some((len, entry));
            }
        }
        best.map(|(_, entry)| entry)
    }
}

/// Walks the YAML document and builds the table, naming fields in errors.
struct Parser<'a> {
    origin: &'a str,
}

/// Strips a YAML tag (`!tag value`), which carries no meaning here.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

/// A short description of a value's kind for error messages.
fn kind_of(value: &Value) -> String {
    match untag(value) {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(_) => "a tagged value".to_string(),
    }
}

impl Parser<'_> {
    fn error(&self, field: &str, reason: impl Into<String>) -> PricingError {
        PricingError::Field {
            origin: self.origin.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// A field of a mapping; a null value counts as absent.
    fn get<'v>(map: &'v Value, key: &str) -> Option<&'v Value> {
        match untag(map) {
            Value::Mapping(m) => m.get(key).map(untag).filter(|v| !v.is_null()),
            _ => None,
        }
    }

    /// A scalar rendered as a string (names may be numbers or dates in YAML).
    fn string(&self, value: &Value, field: &str) -> Result<String, PricingError> {
        match untag(value) {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(self.error(field, format!("expected a string, got {}", kind_of(other)))),
        }
    }

    /// A non-empty string field that must be present.
    fn required_name(&self, map: &Value, key: &str, at: &str) -> Result<String, PricingError> {
        let field = format!("{at}.{key}");
        let value = Self::get(map, key).ok_or_else(|| self.error(&field, "missing"))?;
        let name = self.string(value, &field)?;
        if name.trim().is_empty() {
            return Err(self.error(&field, "must not be empty"));
        }
        Ok(name.trim().to_string())
    }

    /// A list of strings; absent or null is empty; a single string is a one-item list.
    fn string_list(&self, map: &Value, key: &str, at: &str) -> Result<Vec<String>, PricingError> {
        let field = format!("{at}.{key}");
        let Some(value) = Self::get(map, key) else {
            return Ok(Vec::new());
        };
        let items: Vec<&Value> = match value {
            Value::Sequence(seq) => seq.iter().collect(),
            single @ (Value::String(_) | Value::Number(_)) => vec![single],
            other => {
                return Err(self.error(&field, format!("expected a list, got {}", kind_of(other))));
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            if untag(item).is_null() {
                continue;
            }
            let s = self.string(item, &format!("{field}[{i}]"))?;
            // An empty prefix or alias would match every model: ignore it.
            if !s.trim().is_empty() {
                out.push(s.trim().to_string());
            }
        }
        Ok(out)
    }

    /// A price per million tokens: a non-negative finite number (or a string holding
    /// one, as SkyWalking accepts); `None` when absent.
    fn cost(&self, map: &Value, key: &str, at: &str) -> Result<Option<f64>, PricingError> {
        let field = format!("{at}.{key}");
        let Some(value) = Self::get(map, key) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            Some(v) => Err(self.error(&field, format!("expected a non-negative price, got {v}"))),
            None => Err(self.error(&field, format!("expected a number, got {}", kind_of(value)))),
        }
    }

    /// The four rates of a model entry or a tier; `None` when input or output is absent.
    fn rates(&self, map: &Value, at: &str) -> Result<Option<Rates>, PricingError> {
        let input = self.cost(map, "input-estimated-cost-per-m", at)?;
        let output = self.cost(map, "output-estimated-cost-per-m", at)?;
        let cached = self.cost(map, "cached-input-estimated-cost-per-m", at)?;
        let creation = self.cost(map, "cache-creation-input-estimated-cost-per-m", at)?;
        let (Some(input), Some(output)) = (input, output) else {
            return Ok(None);
        };
        Ok(Some(Rates {
            input_per_m: input,
            output_per_m: output,
            cached_input_per_m: cached.unwrap_or(input),
            cache_creation_input_per_m: creation.unwrap_or(input),
        }))
    }

    fn seq<'v>(&self, value: &'v Value, field: &str) -> Result<&'v [Value], PricingError> {
        match untag(value) {
            Value::Sequence(seq) => Ok(seq),
            other => Err(self.error(field, format!("expected a list, got {}", kind_of(other)))),
        }
    }

    fn table(&self, doc: &Value) -> Result<PricingTable, PricingError> {
        if !matches!(untag(doc), Value::Mapping(_)) {
            return Err(self.error(
                "<document>",
                format!("expected a mapping, got {}", kind_of(doc)),
            ));
        }
        let last_updated = match Self::get(doc, "last-updated") {
            Some(v) => Some(self.string(v, "last-updated")?),
            None => None,
        };
        let providers_value =
            Self::get(doc, "providers").ok_or_else(|| self.error("providers", "missing"))?;
        let mut providers = Vec::new();
        for (i, provider) in self.seq(providers_value, "providers")?.iter().enumerate() {
            providers.push(self.provider(provider, &format!("providers[{i}]"))?);
        }
        Ok(PricingTable {
            last_updated,
            providers,
        })
    }

    fn provider(&self, value: &Value, at: &str) -> Result<ProviderEntry, PricingError> {
        if !matches!(untag(value), Value::Mapping(_)) {
            return Err(self.error(at, format!("expected a mapping, got {}", kind_of(value))));
        }
        let name = self.required_name(value, "provider", at)?;
        let prefix_match = self.string_list(value, "prefix-match", at)?;
        let mut models = Vec::new();
        if let Some(models_value) = Self::get(value, "models") {
            let field = format!("{at}.models");
            for (i, model) in self.seq(models_value, &field)?.iter().enumerate() {
                models.push(self.model(model, &name, &format!("{field}[{i}]"))?);
            }
        }
        Ok(ProviderEntry {
            name,
            prefix_match,
            models,
        })
    }

    fn model(&self, value: &Value, provider: &str, at: &str) -> Result<ModelEntry, PricingError> {
        if !matches!(untag(value), Value::Mapping(_)) {
            return Err(self.error(at, format!("expected a mapping, got {}", kind_of(value))));
        }
        let name = self.required_name(value, "name", at)?;
        let mut keys = vec![name.clone()];
        keys.extend(self.string_list(value, "aliases", at)?);
        let base = self.rates(value, at)?;
        let mut long_context = Vec::new();
        if let Some(tiers) = Self::get(value, "long-context") {
            let field = format!("{at}.long-context");
            for (i, tier) in self.seq(tiers, &field)?.iter().enumerate() {
                let tier_at = format!("{field}[{i}]");
                long_context.push(self.tier(tier, &tier_at)?);
            }
        }
        long_context.sort_by_key(|t| t.threshold_input_tokens);
        if let Some(pair) = long_context
            .windows(2)
            .find(|w| w[0].threshold_input_tokens == w[1].threshold_input_tokens)
        {
            return Err(self.error(
                &format!("{at}.long-context"),
                format!(
                    "two tiers share the threshold {}",
                    pair[0].threshold_input_tokens
                ),
            ));
        }
        let price = base.map(|rates| ModelPrice {
            provider: provider.to_string(),
            model: name,
            rates,
            long_context,
        });
        Ok(ModelEntry { keys, price })
    }

    fn tier(&self, value: &Value, at: &str) -> Result<LongContextTier, PricingError> {
        if !matches!(untag(value), Value::Mapping(_)) {
            return Err(self.error(at, format!("expected a mapping, got {}", kind_of(value))));
        }
        let threshold_field = format!("{at}.threshold-input-tokens");
        let threshold = match Self::get(value, "threshold-input-tokens") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(_) => None,
            None => return Err(self.error(&threshold_field, "missing")),
        }
        .ok_or_else(|| self.error(&threshold_field, "expected a non-negative integer"))?;
        let rates = self.rates(value, at)?.ok_or_else(|| {
            self.error(
                at,
                "a long-context tier needs input-estimated-cost-per-m and output-estimated-cost-per-m",
            )
        })?;
        Ok(LongContextTier {
            threshold_input_tokens: threshold,
            rates,
        })
    }
}

/// The current pricing table, shared by the ingest path and the reloader. Cloning is
/// cheap; readers take an `Arc` snapshot and never wait for a reload to parse.
#[derive(Debug, Clone)]
pub struct PricingHandle {
    table: Arc<RwLock<Arc<PricingTable>>>,
}

impl PricingHandle {
    /// A handle holding `table`.
    pub fn new(table: PricingTable) -> Self {
        PricingHandle {
            table: Arc::new(RwLock::new(Arc::new(table))),
        }
    }

    /// The current table.
    pub fn current(&self) -> Arc<PricingTable> {
        Arc::clone(&self.table.read())
    }

    /// Replaces the table for every clone of this handle.
    pub fn replace(&self, table: PricingTable) {
        *self.table.write() = Arc::new(table);
    }
}

/// A pricing file on disk, polled for changes.
#[derive(Debug)]
pub struct PricingFile {
    path: PathBuf,
    /// Modification time and length of the last version read (parsed or not).
    seen: Mutex<Option<(Option<SystemTime>, u64)>>,
}

impl PricingFile {
    /// A file not read yet: the first [`PricingFile::reload_if_changed`] reads it.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PricingFile {
            path: path.into(),
            seen: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file into `handle` if its modification time or length changed since
    /// the last call (always on the first call). `Ok(true)` when a new table was
    /// installed, `Ok(false)` when the file is unchanged. On error the previous table
    /// stays in place; a version that failed to parse is not parsed again until the
    /// file changes, so polling reports each bad version once.
    pub fn reload_if_changed(&self, handle: &PricingHandle) -> Result<bool, PricingError> {
        let io_error = |source| PricingError::Io {
            path: self.path.clone(),
            source,
        };
        let meta = std::fs::metadata(&self.path).map_err(io_error)?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut seen = self.seen.lock();
        if *seen == Some(stamp) {
            return Ok(false);
        }
        let text = std::fs::read_to_string(&self.path).map_err(io_error)?;
        let parsed = PricingTable::from_yaml_str(&text, &self.path.display().to_string());
        *seen = Some(stamp);
        let table = parsed?;
        tracing::info!(
            path = %self.path.display(),
            providers = table.provider_count(),
            priced_models = table.priced_model_count(),
            "loaded pricing table"
        );
        handle.replace(table);
        Ok(true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A trimmed copy of SkyWalking's `gen-ai-config.yml`, comments, a provider
    /// without models and a provider with a null `prefix-match` included.
    const SKYWALKING: &str = r#"
# This file configures GenAI provider matching rules and estimated pricing.
#Here is a example
#- provider: ollama
#  prefix-match:
#    - ollama

last-updated: 2026-03-23

# --- IMPORTANT NOTES
# 1. ESTIMATED COSTS ONLY

providers:
  - provider: openai
    prefix-match:
      - gpt
    models:
      - name: gpt-5
        input-estimated-cost-per-m: 1.25
        output-estimated-cost-per-m: 10.0
      - name: gpt-4o
        input-estimated-cost-per-m: 2.5
        output-estimated-cost-per-m: 10.0
      - name: gpt-4o-mini
        input-estimated-cost-per-m: 0.15
        output-estimated-cost-per-m: 0.6

  - provider: anthropic
    prefix-match:
      - claude
    models:
      - name: claude-4-sonnet
        aliases: [claude-sonnet-4]
        # Base Input pricing
        input-estimated-cost-per-m: 3.0
        output-estimated-cost-per-m: 15.0

  - provider: gemini
    prefix-match:
        - gemini
    models:
        # --- Gemini 2.5 Series ---
      - name: gemini-2.5-pro
         # Pricing for prompt <= 200k (Tier 1)
        input-estimated-cost-per-m: 1.25
        output-estimated-cost-per-m: 10.0

  - provider: bytedance
    prefix-match:
      - doubao

  - provider: tencent
    prefix-match:
      - hunyuan
      - Tencent
    models:
      - name: hunyuan-t1
        input-estimated-cost-per-m: 0.15
        output-estimated-cost-per-m: 0.58

  - provider: ollama
    prefix-match:
"#;

    fn skywalking() -> PricingTable {
        PricingTable::from_yaml_str(SKYWALKING, "gen-ai-config.yml").unwrap()
    }

    fn model_of(table: &PricingTable, provider: Option<&str>, model: &str) -> Option<String> {
        table.price(provider, model).map(|p| p.model.clone())
    }

    #[test]
    fn skywalking_file_parses() {
        let table = skywalking();
        assert_eq!(table.last_updated(), Some("2026-03-23"));
        assert_eq!(table.provider_count(), 6);
        assert_eq!(table.priced_model_count(), 6);
        let gpt4o = table.price(Some("openai"), "gpt-4o").unwrap();
        assert_eq!(gpt4o.provider, "openai");
        assert_eq!(gpt4o.rates.input_per_m, 2.5);
        assert_eq!(gpt4o.rates.output_per_m, 10.0);
        // Cached and cache-creation prices default to the input price.
        assert_eq!(gpt4o.rates.cached_input_per_m, 2.5);
        assert_eq!(gpt4o.rates.cache_creation_input_per_m, 2.5);
        assert!(gpt4o.long_context.is_empty());
        // A provider without models is known but prices nothing.
        assert_eq!(table.price(Some("bytedance"), "doubao-pro-32k"), None);
        assert_eq!(table.price(None, "doubao-pro-32k"), None);
    }

    #[test]
    fn lookup_exact_and_longest_prefix() {
        let table = skywalking();
        let cases = [
            ("gpt-4o", "gpt-4o"),
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("gpt-4o-mini", "gpt-4o-mini"),
            ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
            ("gpt-5-2025-08-07", "gpt-5"),
            ("GPT-4o-Mini", "gpt-4o-mini"),
        ];
        for (model, expected) in cases {
            assert_eq!(
                model_of(&table, Some("openai"), model).as_deref(),
                Some(expected),
                "{model}"
            );
        }
    }

    #[test]
    fn lookup_by_provider_name_and_by_prefix_match() {
        let table = skywalking();
        // By provider name, case-insensitive.
        assert_eq!(
            model_of(&table, Some("OpenAI"), "gpt-4o").as_deref(),
            Some("gpt-4o")
        );
        // No provider: by prefix-match (case-insensitive, as `Tencent` is written).
        assert_eq!(
            model_of(&table, None, "claude-sonnet-4-20250514").as_deref(),
            Some("claude-4-sonnet")
        );
        assert_eq!(
            model_of(&table, None, "tencent-hunyuan-t1").as_deref(),
            None,
            "prefix-match picks the provider, the model must still match an entry"
        );
        assert_eq!(
            model_of(&table, None, "hunyuan-t1-latest").as_deref(),
            Some("hunyuan-t1")
        );
        // Aliases match like names, by longest prefix.
        assert_eq!(
            model_of(&table, Some("anthropic"), "claude-4-sonnet").as_deref(),
            Some("claude-4-sonnet")
        );
    }

    #[test]
    fn lookup_falls_back_to_prefix_match_when_the_named_provider_does_not_match() {
        let table = skywalking();
        // A gateway backend name, not a provider of the file.
        assert_eq!(
            model_of(&table, Some("openai-backend"), "gpt-4o-mini").as_deref(),
            Some("gpt-4o-mini")
        );
        // A provider of the file without a matching model (ollama has none).
        assert_eq!(
            model_of(&table, Some("ollama"), "gemini-2.5-pro").as_deref(),
            Some("gemini-2.5-pro")
        );
        // A named provider whose entries match wins over prefix-match.
        assert_eq!(
            model_of(&table, Some("openai"), "gpt-4o").as_deref(),
            Some("gpt-4o")
        );
    }

    #[test]
    fn unknown_models_are_never_priced() {
        let table = skywalking();
        assert_eq!(table.price(Some("openai"), "llama3.2:latest"), None);
        assert_eq!(table.price(None, "llama3.2:latest"), None);
        assert_eq!(table.price(Some("openai"), "gpt-3.5-turbo"), None);
        assert_eq!(table.price(None, "o3"), None);
        assert_eq!(table.price(Some("openai"), ""), None);
    }

    #[test]
    fn model_without_prices_is_known_but_unpriced() {
        let yaml = r#"
providers:
  - provider: openai
    prefix-match: [gpt]
    models:
      - name: gpt-4o
        input-estimated-cost-per-m: 2.5
        output-estimated-cost-per-m: 10
      - name: gpt-4o-audio
        input-estimated-cost-per-m: 2.5
"#;
        let table = PricingTable::from_yaml_str(yaml, "t.yml").unwrap();
        assert_eq!(table.priced_model_count(), 1);
        // Not priced as gpt-4o: the more specific entry has no price.
        assert_eq!(table.price(None, "gpt-4o-audio-preview"), None);
        assert!(table.price(None, "gpt-4o-2024-08-06").is_some());
    }

    const EXTENDED: &str = r#"
providers:
  - provider: anthropic
    prefix-match: [claude]
    models:
      - name: claude-sonnet-4
        input-estimated-cost-per-m: 3
        output-estimated-cost-per-m: 15
        cached-input-estimated-cost-per-m: 0.3
        cache-creation-input-estimated-cost-per-m: 3.75
        unknown-key: ignored
        long-context:
          - threshold-input-tokens: 200000
            input-estimated-cost-per-m: 6
            output-estimated-cost-per-m: 22.5
            cached-input-estimated-cost-per-m: 0.6
            cache-creation-input-estimated-cost-per-m: 7.5
  - provider: gemini
    prefix-match: [gemini]
    models:
      - name: gemini-2.5-pro
        input-estimated-cost-per-m: "1.25"
        output-estimated-cost-per-m: 10
        long-context:
          - threshold-input-tokens: 200000
            input-estimated-cost-per-m: 2.5
            output-estimated-cost-per-m: 15
"#;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cost_prices_each_token_type_at_its_rate() {
        let table = PricingTable::from_yaml_str(EXTENDED, "t.yml").unwrap();
        let sonnet = table
            .price(Some("anthropic"), "claude-sonnet-4-20250514")
            .unwrap();
        let tokens = TokenCounts {
            input: 1_000,
            output: 500,
            cached_input: 10_000,
            cache_creation_input: 2_000,
        };
        // 1000×3 + 500×15 + 10000×0.3 + 2000×3.75 = 3000 + 7500 + 3000 + 7500 = 21000 per M.
        assert!(
            close(sonnet.cost(&tokens), 0.021),
            "{}",
            sonnet.cost(&tokens)
        );
        assert!(close(sonnet.rate_per_token("input").unwrap(), 3e-6));
        assert!(close(sonnet.rate_per_token("output").unwrap(), 15e-6));
        assert!(close(
            sonnet.rate_per_token("cached_input").unwrap(),
            0.3e-6
        ));
        assert!(close(
            sonnet.rate_per_token("cache_creation_input").unwrap(),
            3.75e-6
        ));
        assert_eq!(sonnet.rate_per_token("total"), None);
        assert_eq!(sonnet.cost(&TokenCounts::default()), 0.0);
    }

    #[test]
    fn long_context_tier_applies_to_the_whole_request_above_the_threshold() {
        let table = PricingTable::from_yaml_str(EXTENDED, "t.yml").unwrap();
        let sonnet = table.price(None, "claude-sonnet-4").unwrap();
        // At the threshold: base tier.
        let at = TokenCounts {
            input: 200_000,
            output: 1_000,
            ..TokenCounts::default()
        };
        assert!(close(
            sonnet.cost(&at),
            (200_000.0 * 3.0 + 1_000.0 * 15.0) / 1e6
        ));
        // Above it through cached tokens (they count toward the prompt size): the tier
        // prices every token type of the request.
        let above = TokenCounts {
            input: 100_000,
            output: 1_000,
            cached_input: 100_001,
            cache_creation_input: 0,
        };
        let expected = (100_000.0 * 6.0 + 1_000.0 * 22.5 + 100_001.0 * 0.6) / 1e6;
        assert!(close(sonnet.cost(&above), expected));
        // The metrics path uses the base tier.
        assert!(close(sonnet.rate_per_token("input").unwrap(), 3e-6));

        // Tier cached/cache-creation default to the tier's input price.
        let gemini = table.price(Some("gemini"), "gemini-2.5-pro").unwrap();
        assert_eq!(
            gemini.rates.input_per_m, 1.25,
            "a numeric string is a price"
        );
        assert_eq!(gemini.long_context[0].rates.cached_input_per_m, 2.5);
        let big = TokenCounts {
            input: 250_000,
            output: 2_000,
            cached_input: 0,
            cache_creation_input: 0,
        };
        assert!(close(
            gemini.cost(&big),
            (250_000.0 * 2.5 + 2_000.0 * 15.0) / 1e6
        ));
    }

    #[test]
    fn malformed_files_name_the_field() {
        let cases = [
            ("providers: {}", "providers: expected a list"),
            ("last-updated: x", "providers: missing"),
            (
                "providers:\n  - prefix-match: [gpt]",
                "providers[0].provider: missing",
            ),
            (
                "providers:\n  - provider: openai\n    models:\n      - name: gpt-4o\n        input-estimated-cost-per-m: abc\n        output-estimated-cost-per-m: 1",
                "providers[0].models[0].input-estimated-cost-per-m: expected a number, got the string \"abc\"",
            ),
            (
                "providers:\n  - provider: openai\n    models:\n      - input-estimated-cost-per-m: 1",
                "providers[0].models[0].name: missing",
            ),
            (
                "providers:\n  - provider: openai\n    models:\n      - name: x\n        input-estimated-cost-per-m: -1\n        output-estimated-cost-per-m: 1",
                "providers[0].models[0].input-estimated-cost-per-m: expected a non-negative price",
            ),
            (
                "providers:\n  - provider: openai\n    models:\n      - name: x\n        input-estimated-cost-per-m: 1\n        output-estimated-cost-per-m: 1\n        long-context:\n          - input-estimated-cost-per-m: 2\n            output-estimated-cost-per-m: 2",
                "providers[0].models[0].long-context[0].threshold-input-tokens: missing",
            ),
            (
                "providers:\n  - provider: openai\n    prefix-match: {a: b}",
                "providers[0].prefix-match: expected a list",
            ),
        ];
        for (yaml, expected) in cases {
            let err = PricingTable::from_yaml_str(yaml, "/etc/pricing.yml").unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("invalid pricing file /etc/pricing.yml: ")
                    && message.contains(expected),
                "{yaml:?}: {message}"
            );
        }
        let err = PricingTable::from_yaml_str("providers: [", "/etc/pricing.yml").unwrap_err();
        assert!(matches!(err, PricingError::Yaml { .. }), "{err}");
        assert!(err.to_string().contains("/etc/pricing.yml"));
    }

    #[test]
    fn default_table_parses_and_prices_major_models() {
        let table = PricingTable::default_table().unwrap();
        assert!(table.last_updated().is_some());
        let cases: [(Option<&str>, &str, &str, f64, f64); 10] = [
            (Some("openai"), "gpt-5", "gpt-5", 1.25, 10.0),
            (
                Some("openai"),
                "gpt-5-mini-2025-08-07",
                "gpt-5-mini",
                0.25,
                2.0,
            ),
            (
                Some("openai"),
                "gpt-4o-mini-2024-07-18",
                "gpt-4o-mini",
                0.15,
                0.6,
            ),
            (
                Some("openai-backend"),
                "gpt-4.1-mini",
                "gpt-4.1-mini",
                0.4,
                1.6,
            ),
            (None, "o4-mini", "o4-mini", 1.1, 4.4),
            (
                Some("anthropic"),
                "claude-sonnet-4-5-20250929",
                "claude-sonnet-4-5",
                3.0,
                15.0,
            ),
            (
                None,
                "claude-opus-4-1-20250805",
                "claude-opus-4-1",
                15.0,
                75.0,
            ),
            (
                Some("gcp.gemini"),
                "gemini-2.5-flash",
                "gemini-2.5-flash",
                0.3,
                2.5,
            ),
            (None, "deepseek-chat", "deepseek-chat", 0.28, 0.42),
            (
                Some("groq"),
                "llama-3.3-70b-versatile",
                "llama-3.3-70b-versatile",
                0.59,
                0.79,
            ),
        ];
        for (provider, model, entry, input, output) in cases {
            let price = table
                .price(provider, model)
                .unwrap_or_else(|| panic!("{model} has no price"));
            assert_eq!(price.model, entry, "{model}");
            assert_eq!(price.rates.input_per_m, input, "{model}");
            assert_eq!(price.rates.output_per_m, output, "{model}");
        }
        // Anthropic cache prices: 0.1× input to read, 1.25× input to write.
        let haiku = table.price(None, "claude-haiku-4-5-20251001").unwrap();
        assert!(close(
            haiku.rates.cached_input_per_m,
            0.1 * haiku.rates.input_per_m
        ));
        assert!(close(
            haiku.rates.cache_creation_input_per_m,
            1.25 * haiku.rates.input_per_m
        ));
        // Gemini 2.5 Pro has a 200k long-context tier.
        let pro = table.price(Some("gemini"), "gemini-2.5-pro").unwrap();
        assert_eq!(pro.long_context.len(), 1);
        assert_eq!(pro.long_context[0].threshold_input_tokens, 200_000);
        assert!(pro.long_context[0].rates.input_per_m > pro.rates.input_per_m);
        // A local model served through an OpenAI-compatible backend is not priced.
        assert_eq!(table.price(Some("openai"), "llama3.2:latest"), None);
        assert_eq!(table.price(Some("openai"), "qwen2.5:0.5b"), None);
        assert!(table.price(Some("alibaba"), "qwen-plus").is_some());
    }

    #[test]
    fn reload_picks_up_changes_and_keeps_the_old_table_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gen-ai-config.yml");
        let v1 = "providers:\n  - provider: openai\n    prefix-match: [gpt]\n    models:\n      - name: gpt-4o\n        input-estimated-cost-per-m: 2.5\n        output-estimated-cost-per-m: 10\n";
        std::fs::write(&path, v1).unwrap();

        let handle = PricingHandle::new(PricingTable::default());
        let reader = handle.clone();
        let file = PricingFile::new(&path);
        assert_eq!(file.path(), path.as_path());
        assert!(reader.current().price(None, "gpt-4o").is_none());
        assert!(file.reload_if_changed(&handle).unwrap());
        assert_eq!(
            reader
                .current()
                .price(None, "gpt-4o")
                .unwrap()
                .rates
                .input_per_m,
            2.5
        );
        // Unchanged: nothing to do.
        assert!(!file.reload_if_changed(&handle).unwrap());

        // A new version (different length) is read.
        let v2 = v1.replace("2.5", "3.75");
        std::fs::write(&path, &v2).unwrap();
        assert!(file.reload_if_changed(&handle).unwrap());
        assert_eq!(
            reader
                .current()
                .price(None, "gpt-4o")
                .unwrap()
                .rates
                .input_per_m,
            3.75
        );

        // A malformed version is an error and the previous table stays.
        std::fs::write(&path, "providers:\n  - provider: openai\n    models: 12\n").unwrap();
        let err = file.reload_if_changed(&handle).unwrap_err();
        assert!(err.to_string().contains("providers[0].models"), "{err}");
        assert_eq!(
            reader
                .current()
                .price(None, "gpt-4o")
                .unwrap()
                .rates
                .input_per_m,
            3.75
        );
        // Reported once: the same bad version is not parsed again.
        assert!(!file.reload_if_changed(&handle).unwrap());

        // A missing file is an I/O error, the table stays.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            file.reload_if_changed(&handle),
            Err(PricingError::Io { .. })
        ));
        assert!(reader.current().price(None, "gpt-4o").is_some());
    }
}
