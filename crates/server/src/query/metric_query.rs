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
    EngineError, EvalParams, Sample, SampleSource, Series, Value, evaluate,
};
use inferscope_query::{MetricExpr, Pipeline, RangeAggregation, RangeOp, Stage, UnwrapConversion};
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
    ) -> Result<HashMap<Labels, Vec<Sample>>, EngineError> {
        let mut series: HashMap<Labels, Vec<Sample>> = HashMap::new();
        // Without a pipeline and metadata, the series is the stream. Entries come
        // stream by stream, so a run of one stream's samples is kept aside and
        // hashed into the map once, not once per entry.
        let mut run: Option<(Labels, Vec<Sample>)> = None;
        let fast_path = pipeline.is_noop() && matches!(extract, Extract::One | Extract::LineBytes);
        let stats = task
            .run(&mut |labels, entry| {
                if fast_path && entry.structured_metadata.is_empty() {
                    let value = match extract {
                        Extract::LineBytes => entry.line.len() as f64,
                        _ => 1.0,
                    };
                    let sample = Sample {
                        timestamp_ns: entry.timestamp_ns,
                        value,
                    };
                    match &mut run {
                        Some((run_labels, samples)) if run_labels == labels => samples.push(sample),
                        _ => {
                            if let Some((l, mut samples)) =
                                run.replace((labels.clone(), vec![sample]))
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
                    Extract::One => (processed.all_labels(), 1.0),
                    Extract::LineBytes => (processed.all_labels(), processed.line.len() as f64),
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
                            pairs.push(("__error__".into(), SAMPLE_EXTRACTION_ERROR.into()));
                            pairs.push((
                                "__error_details__".into(),
                                format!("strconv.ParseFloat: parsing {raw:?}: invalid syntax"),
                            ));
                        }
                        let mut labels = Labels::from_pairs(pairs);
                        if let Some(filters) = post_filters {
                            match filters.process(entry.timestamp_ns, entry.line, &labels, &[]) {
                                Some(p) => labels = p.all_labels(),
                                None => return,
                            }
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
    ) -> Result<Vec<Series>, EngineError> {
        let pipeline = agg
            .selector
            .pipeline_after_prefilter()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let extract = Extract::for_aggregation(agg)?;
        let tasks = self.scan_tasks(agg, start_ns, end_ns)?;
        let per_task: Vec<Result<HashMap<Labels, Vec<Sample>>, EngineError>> = tasks
            .par_iter()
            .map(|task| {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(EngineError::Source("query timed out".into()));
                }
                self.run_task(task, &pipeline, &extract)
            })
            .collect();
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
