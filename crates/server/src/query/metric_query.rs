//! Executes LogQL metric queries (`sum by (app) (rate({…} | json [5m]))`).
//!
//! The evaluation of range vectors, aggregations and binary operators is the
//! query crate's engine ([`inferscope_query::engine`]); this module is its
//! [`SampleSource`] over storage: for each range aggregation it scans the
//! selected streams (line filters pushed down), runs the pipeline on every
//! core, extracts one sample per entry (1 for counts, the line length for
//! `bytes_*`, the unwrapped value otherwise) and groups samples by series.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use inferscope_model::{Labels, TimeRange};
use inferscope_query::engine::{
    EngineError, EvalParams, Sample, SampleSource, Series, Value, evaluate, group_labels,
};
use inferscope_query::{
    Grouping, MetricExpr, Pipeline, Processed, RangeAggregation, RangeOp, Stage, UnwrapConversion,
};
use inferscope_storage::{ScanRequest, ScanTask, Store};
use rayon::prelude::*;

use super::log_query::QueryStats;

/// Loki's label for a value that failed to unwrap.
const SAMPLE_EXTRACTION_ERROR: &str = "SampleExtractionErr";

/// Reads samples from storage for the engine.
struct StoreSource<'a> {
    store: &'a Store,
    tenant: &'a str,
    runtime: tokio::runtime::Handle,
    cancel: &'a AtomicBool,
    bytes_scanned: AtomicU64,
    lines_scanned: AtomicU64,
}

/// How one entry becomes a sample.
enum Extract {
    One,
    LineBytes,
    Unwrap {
        label: String,
        conversion: UnwrapConversion,
        post_filters: Option<Pipeline>,
    },
}

impl Extract {
    fn for_aggregation(agg: &RangeAggregation) -> Result<Self, EngineError> {
        if let Some(unwrap) = &agg.unwrap {
            let post_filters = if unwrap.post_filters.is_empty() {
                None
            } else {
                let stages: Vec<Stage> = unwrap
                    .post_filters
                    .iter()
                    .cloned()
                    .map(Stage::LabelFilter)
                    .collect();
                Some(
                    Pipeline::compile_stages(&stages)
                        .map_err(|e| EngineError::Invalid(e.to_string()))?,
                )
            };
            return Ok(Extract::Unwrap {
                label: unwrap.label.clone(),
                conversion: unwrap.conversion,
                post_filters,
            });
        }
        Ok(match agg.op {
            RangeOp::BytesOverTime | RangeOp::BytesRate => Extract::LineBytes,
            _ => Extract::One,
        })
    }
}

/// Converts an unwrapped label value, as Loki's `convertFloat`/`convertDuration`/`convertBytes`.
fn convert(value: &str, conversion: UnwrapConversion) -> Option<f64> {
    match conversion {
        UnwrapConversion::None => value.trim().parse::<f64>().ok(),
        UnwrapConversion::Duration | UnwrapConversion::DurationSeconds => {
            inferscope_query::duration::parse_duration(value.trim()).map(|ns| ns as f64 / 1e9)
        }
        UnwrapConversion::Bytes => {
            inferscope_query::duration::parse_bytes_value(value.trim()).map(|b| b as f64)
        }
    }
}

/// The labels the parsers must extract when only `keep`'s labels are needed:
/// those, the unwrapped one and the ones the unwrap's filters read. `None`
/// (every label) without a `by` grouping.
fn required_labels<'a>(
    agg: &'a RangeAggregation,
    keep: Option<&'a Grouping>,
) -> Option<Vec<&'a str>> {
    let keep = keep.filter(|g| !g.without)?;
    let mut names: Vec<&str> = keep.labels.iter().map(String::as_str).collect();
    if let Some(unwrap) = &agg.unwrap {
        names.push(&unwrap.label);
        for f in &unwrap.post_filters {
            f.names(&mut names);
        }
    }
    Some(names)
}

/// The series labels of a processed entry when the engine only needs `keep`'s:
/// an entry with an `__error__` keeps every label, so the error is reported.
fn kept_labels(processed: &Processed, keep: Option<&Grouping>) -> Labels {
    match keep {
        Some(g) if !g.without && processed.label("__error__").is_none() => {
            by_labels(processed, Some(g), None)
        }
        Some(g) => {
            let all = processed.all_labels();
            if all.get("__error__").is_some() {
                all
            } else {
                group_labels(&all, Some(g))
            }
        }
        None => processed.all_labels(),
    }
}

/// The `by` labels of `keep` read in place from `processed`, without `except`
/// (the unwrapped label, which a series never carries).
fn by_labels(processed: &Processed, keep: Option<&Grouping>, except: Option<&str>) -> Labels {
    let Some(g) = keep else {
        return Labels::empty();
    };
    Labels::from_pairs(
        g.labels
            .iter()
            .filter(|n| Some(n.as_str()) != except)
            .filter_map(|n| processed.label(n).map(|v| (n.as_str(), v))),
    )
}

/// Loki's error labels for a value that does not convert.
fn unwrap_error_pairs(raw: &str) -> [(String, String); 2] {
    [
        ("__error__".into(), SAMPLE_EXTRACTION_ERROR.into()),
        (
            "__error_details__".into(),
            format!("strconv.ParseFloat: parsing {raw:?}: invalid syntax"),
        ),
    ]
}

/// Every label of `processed` but the unwrapped one, plus the conversion error.
fn unwrap_error_labels(processed: &Processed, unwrapped: &str, raw: &str) -> Labels {
    let all = processed.all_labels();
    let mut pairs: Vec<(String, String)> = all
        .iter()
        .filter(|(k, _)| *k != unwrapped)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pairs.extend(unwrap_error_pairs(raw));
    Labels::from_pairs(pairs)
}

impl StoreSource<'_> {
    fn scan_tasks(
        &self,
        agg: &RangeAggregation,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<ScanTask>, EngineError> {
        let line_filter = agg.selector.line_prefilter().map(|f| {
            Arc::new(super::log_query::PushedDownFilter(f))
                as Arc<dyn inferscope_storage::LineFilter>
        });
        let request = ScanRequest {
            tenant: self.tenant.to_string(),
            matchers: agg.selector.matchers.clone(),
            // The engine's window is (start, end]; storage's is [start, end).
            range: TimeRange::new(start_ns, end_ns.saturating_add(1)),
            line_filter,
            id_hint: super::selector::id_hint(&agg.selector),
        };
        self.runtime
            .block_on(self.store.scan(&request))
            .map_err(|e| EngineError::Source(e.to_string()))
    }

    fn run_task(
        &self,
        task: &ScanTask,
        pipeline: &Pipeline,
        extract: &Extract,
        keep: Option<&Grouping>,
    ) -> Result<HashMap<Labels, Vec<Sample>>, EngineError> {
        let mut series: HashMap<Labels, Vec<Sample>> = HashMap::new();
        // Entries come stream by stream, so a run of samples of one series is
        // kept aside and hashed into the map once, not once per entry.
        let mut run: Option<(Labels, Vec<Sample>)> = None;
        // Without a pipeline, the series of a count or byte count needs no
        // `Pipeline::process`: it is the stream's labels (reduced to `keep`),
        // unless the entry's structured metadata names one of them (metadata
        // wins over stream labels, as in `Processed::all_labels`). The key of
        // the current stream is computed once per stream, not per entry.
        let fast_path = pipeline.is_noop()
            && keep.is_none_or(|g| !g.without)
            && matches!(extract, Extract::One | Extract::LineBytes);
        let mut stream_key: Option<(*const Labels, Labels)> = None;
        let stats = task
            .run(&mut |labels, entry| {
                // A timed-out query stops paying for the pipeline at once; the
                // task's remaining entries are only stepped over.
                if self.cancel.load(Ordering::Relaxed) {
                    return;
                }
                if fast_path {
                    let value = match extract {
                        Extract::LineBytes => entry.line.len() as f64,
                        _ => 1.0,
                    };
                    let sample = Sample {
                        timestamp_ns: entry.timestamp_ns,
                        value,
                    };
                    let meta = &entry.structured_metadata;
                    let meta_matters = match keep {
                        None => !meta.is_empty(),
                        Some(g) => g.labels.iter().any(|n| meta.get(n).is_some()),
                    };
                    let own_key;
                    let key: &Labels = if meta_matters {
                        let mut pairs: Vec<(&str, &str)> = labels.iter().collect();
                        pairs.extend(meta.iter());
                        let all = Labels::from_pairs(pairs);
                        own_key = match keep {
                            Some(g) => group_labels(&all, Some(g)),
                            None => all,
                        };
                        &own_key
                    } else {
                        let current = labels as *const Labels;
                        if stream_key.as_ref().is_none_or(|(p, _)| *p != current) {
                            let k = match keep {
                                Some(g) => group_labels(labels, Some(g)),
                                None => labels.clone(),
                            };
                            stream_key = Some((current, k));
                        }
                        match &stream_key {
                            Some((_, k)) => k,
                            None => return,
                        }
                    };
                    match &mut run {
                        Some((run_key, samples)) if run_key == key => samples.push(sample),
                        _ => {
                            if let Some((l, mut samples)) = run.replace((key.clone(), vec![sample]))
                            {
                                series.entry(l).or_default().append(&mut samples);
                            }
                        }
                    }
                    return;
                }
                let metadata = entry.structured_metadata.to_vec();
                let Some(processed) =
                    pipeline.process(entry.timestamp_ns, entry.line, labels, &metadata)
                else {
                    return;
                };
                let (series_labels, value) = match extract {
                    Extract::One => (kept_labels(&processed, keep), 1.0),
                    Extract::LineBytes => {
                        (kept_labels(&processed, keep), processed.line.len() as f64)
                    }
                    Extract::Unwrap {
                        label,
                        conversion,
                        post_filters: None,
                    } if keep.is_some_and(|g| !g.without)
                        && processed.label("__error__").is_none() =>
                    {
                        // Fast path: the value and the kept labels are read in place.
                        let raw = processed.label(label).unwrap_or("");
                        match convert(raw, *conversion) {
                            Some(v) => (by_labels(&processed, keep, Some(label)), v),
                            None => (unwrap_error_labels(&processed, label, raw), 0.0),
                        }
                    }
                    Extract::Unwrap {
                        label,
                        conversion,
                        post_filters,
                    } => {
                        let all = processed.all_labels();
                        let raw = all.get(label).unwrap_or("");
                        let converted = convert(raw, *conversion);
                        let mut pairs: Vec<(String, String)> = all
                            .iter()
                            .filter(|(k, _)| k != label)
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect();
                        if converted.is_none() && all.get("__error__").is_none() {
                            pairs.extend(unwrap_error_pairs(raw));
                        }
                        let mut labels = Labels::from_pairs(pairs);
                        if let Some(filters) = post_filters {
                            match filters.process(entry.timestamp_ns, entry.line, &labels, &[]) {
                                Some(p) => labels = p.all_labels(),
                                None => return,
                            }
                        }
                        if labels.get("__error__").is_none() {
                            labels = match keep {
                                Some(g) => group_labels(&labels, Some(g)),
                                None => labels,
                            };
                        }
                        (labels, converted.unwrap_or(0.0))
                    }
                };
                series.entry(series_labels).or_default().push(Sample {
                    timestamp_ns: entry.timestamp_ns,
                    value,
                });
            })
            .map_err(|e| EngineError::Source(e.to_string()))?;
        if let Some((l, mut samples)) = run {
            series.entry(l).or_default().append(&mut samples);
        }
        self.bytes_scanned
            .fetch_add(stats.bytes_scanned, Ordering::Relaxed);
        self.lines_scanned
            .fetch_add(stats.lines_scanned, Ordering::Relaxed);
        Ok(series)
    }
}

impl SampleSource for StoreSource<'_> {
    fn samples(
        &self,
        agg: &RangeAggregation,
        start_ns: i64,
        end_ns: i64,
        keep: Option<&Grouping>,
    ) -> Result<Vec<Series>, EngineError> {
        if agg.input == inferscope_query::ast::RangeInput::Series {
            return Err(EngineError::Invalid(
                "series selectors are PromQL: query them through /api/v1/query".into(),
            ));
        }
        let required = required_labels(agg, keep);
        let pipeline = agg
            .selector
            .pipeline_after_prefilter_with_required_labels(required.as_deref())
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let extract = Extract::for_aggregation(agg)?;
        let tasks = self.scan_tasks(agg, start_ns, end_ns)?;
        let per_task: Vec<Result<HashMap<Labels, Vec<Sample>>, EngineError>> = tasks
            .par_iter()
            .map(|task| {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(EngineError::Source("query timed out".into()));
                }
                self.run_task(task, &pipeline, &extract, keep)
            })
            .collect();
        // Tasks cut short by the timeout hold partial samples: never let them
        // make a result (the results cache would keep it).
        if self.cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Source("query timed out".into()));
        }
        let mut merged: HashMap<Labels, Vec<Sample>> = HashMap::new();
        for result in per_task {
            for (labels, mut samples) in result? {
                merged.entry(labels).or_default().append(&mut samples);
            }
        }
        Ok(merged
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.timestamp_ns);
                Series { labels, samples }
            })
            .collect())
    }
}

/// Evaluates a metric query; blocking (run it on the blocking pool).
pub fn execute_blocking(
    store: &Store,
    tenant: &str,
    expr: &MetricExpr,
    params: &EvalParams,
    runtime: tokio::runtime::Handle,
    cancel: &AtomicBool,
) -> Result<(Value, QueryStats), EngineError> {
    let started = std::time::Instant::now();
    let source = StoreSource {
        store,
        tenant,
        runtime,
        cancel,
        bytes_scanned: AtomicU64::new(0),
        lines_scanned: AtomicU64::new(0),
    };
    let value = evaluate(expr, params, &source)?;
    let stats = QueryStats {
        bytes_scanned: source.bytes_scanned.load(Ordering::Relaxed),
        lines_scanned: source.lines_scanned.load(Ordering::Relaxed),
        entries_returned: match &value {
            Value::Vector(v) => v.len() as u64,
            Value::Matrix(m) => m.iter().map(|s| s.samples.len() as u64).sum(),
            Value::Scalar(_) => 1,
        },
        exec_seconds: started.elapsed().as_secs_f64(),
        ..QueryStats::default()
    };
    Ok((value, stats))
}
