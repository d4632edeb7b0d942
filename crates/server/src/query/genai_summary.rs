//! The GenAI summary: per model, provider, service or instance over a time
//! range, the figures operators ask for first (requests per minute, tokens per
//! minute by type, latency average and percentiles, TTFT, TPOT, cost per hour).
//!
//! Every figure is a PromQL instant query over the `genai_*` series at the end
//! of the range, evaluated by the same engine as `/api/v1/query`, so the
//! summary and a Grafana panel built on the same expression always agree.

use std::collections::BTreeMap;

use inferscope_metrics::store::MetricStore;
use inferscope_query::engine::{EngineError, EvalParams, Value};
use inferscope_query::promql;
use serde::Serialize;

use crate::query::prom_source::execute_promql;

/// What the rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// `model`
    Model,
    /// `provider`
    Provider,
    /// `service` (the gateway)
    Service,
    /// `instance` (the pod)
    Instance,
}

impl GroupBy {
    /// Parses `model|provider|service|instance`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "model" => GroupBy::Model,
            "provider" => GroupBy::Provider,
            "service" => GroupBy::Service,
            "instance" => GroupBy::Instance,
            _ => return None,
        })
    }

    /// The label name.
    pub fn label(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
            GroupBy::Service => "service",
            GroupBy::Instance => "instance",
        }
    }
}

/// One row of the summary. Absent figures (no data, e.g. TTFT of a
/// non-streaming model) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SummaryRow {
    /// The group's value (`""` when the label is absent).
    pub key: String,
    /// Requests over the range.
    pub requests: f64,
    /// Requests per minute.
    pub requests_per_min: f64,
    /// Tokens per minute, by type (`input`, `output`, `cached_input`, …).
    pub tokens_per_min: BTreeMap<String, f64>,
    /// Average request duration, seconds.
    pub latency_avg_s: Option<f64>,
    /// Request duration percentiles (`p50`, `p75`, `p90`, `p95`, `p99`), seconds.
    pub latency_s: BTreeMap<String, f64>,
    /// Time to first token: `avg`, `p50`, `p99`, seconds.
    pub ttft_s: BTreeMap<String, f64>,
    /// Time per output token: `avg`, `p50`, `p99`, seconds.
    pub tpot_s: BTreeMap<String, f64>,
    /// Estimated cost over the range, USD.
    pub cost_usd: f64,
    /// Estimated cost per hour, USD.
    pub cost_per_hour_usd: f64,
    /// Tokens of models without a price over the range.
    pub unpriced_tokens: f64,
}

const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p75", 0.75),
    ("p90", 0.9),
    ("p95", 0.95),
    ("p99", 0.99),
];

/// Computes the summary of `tenant` over `[start_ns, end_ns]`, rows sorted by
/// requests, busiest first.
pub fn summarize(
    store: &MetricStore,
    tenant: &str,
    by: GroupBy,
    start_ns: i64,
    end_ns: i64,
) -> Result<Vec<SummaryRow>, EngineError> {
    let range_ns = (end_ns - start_ns).max(1_000_000_000);
    let range = format!("{}s", range_ns / 1_000_000_000);
    let minutes = range_ns as f64 / 60e9;
    let g = by.label();
    let eval = |q: String| -> Result<Vec<(String, Option<String>, f64)>, EngineError> {
        let expr = promql::parse(&q).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let params = EvalParams {
            start_ns: end_ns,
            end_ns,
            step_ns: 1,
            max_series: 100_000,
        };
        Ok(match execute_promql(store, tenant, &expr, &params)? {
            Value::Vector(v) => v
                .into_iter()
                .filter(|s| s.sample.value.is_finite())
                .map(|s| {
                    (
                        s.labels.get(g).unwrap_or("").to_string(),
                        s.labels.get("type").map(str::to_string),
                        s.sample.value,
                    )
                })
                .collect(),
            _ => Vec::new(),
        })
    };
    let mut rows: BTreeMap<String, SummaryRow> = BTreeMap::new();
    for (key, _, v) in eval(format!(
        "sum by ({g}) (increase(genai_requests_total[{range}]))"
    ))? {
        let r = row_of(&mut rows, key);
        r.requests = v;
        r.requests_per_min = v / minutes;
    }
    for (key, ty, v) in eval(format!(
        "sum by ({g}, type) (increase(genai_tokens_total[{range}]))"
    ))? {
        let r = row_of(&mut rows, key);
        r.tokens_per_min.insert(ty.unwrap_or_default(), v / minutes);
    }
    let histogram = |name: &str| -> Result<Vec<(String, String, f64)>, EngineError> {
        let mut out = Vec::new();
        for (key, _, v) in eval(format!(
            "sum by ({g}) (increase({name}_sum[{range}])) / sum by ({g}) (increase({name}_count[{range}]))"
        ))? {
            out.push((key, "avg".to_string(), v));
        }
        for (label, q) in PERCENTILES {
            for (key, _, v) in eval(format!(
                "histogram_quantile({q}, sum by ({g}, le) (increase({name}_bucket[{range}])))"
            ))? {
                out.push((key, label.to_string(), v));
            }
        }
        Ok(out)
    };
    for (key, stat, v) in histogram("genai_request_duration_seconds")? {
        let r = row_of(&mut rows, key);
        if stat == "avg" {
            r.latency_avg_s = Some(v);
        } else {
            r.latency_s.insert(stat, v);
        }
    }
    for (name, field) in [
        ("genai_time_to_first_token_seconds", 0),
        ("genai_time_per_output_token_seconds", 1),
    ] {
        for (key, stat, v) in histogram(name)? {
            if !matches!(stat.as_str(), "avg" | "p50" | "p99") {
                continue;
            }
            let r = row_of(&mut rows, key);
            let map = if field == 0 {
                &mut r.ttft_s
            } else {
                &mut r.tpot_s
            };
            map.insert(stat, v);
        }
    }
    for (key, _, v) in eval(format!(
        "sum by ({g}) (increase(genai_estimated_cost_usd_total[{range}]))"
    ))? {
        let r = row_of(&mut rows, key);
        r.cost_usd = v;
        r.cost_per_hour_usd = v / (minutes / 60.0);
    }
    for (key, _, v) in eval(format!(
        "sum by ({g}) (increase(genai_unpriced_tokens_total[{range}]))"
    ))? {
        let r = row_of(&mut rows, key);
        r.unpriced_tokens = v;
    }
    let mut out: Vec<SummaryRow> = rows.into_values().collect();
    out.sort_by(|a, b| {
        b.requests
            .total_cmp(&a.requests)
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(out)
}

fn row_of(rows: &mut BTreeMap<String, SummaryRow>, key: String) -> &mut SummaryRow {
    rows.entry(key.clone()).or_insert_with(|| SummaryRow {
        key,
        ..SummaryRow::default()
    })
}
