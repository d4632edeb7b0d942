//! The engine's [`SampleSource`] over the metric store, for PromQL: a series
//! selector (`RangeInput::Series`) reads the stored samples of the matching
//! series; a log selector cannot appear in PromQL.

use inferscope_metrics::store::MetricStore;
use inferscope_query::MetricExpr;
use inferscope_query::ast::{Grouping, RangeAggregation, RangeInput};
use inferscope_query::engine::{
    EngineError, EvalParams, Sample, SampleSource, Series, Value, evaluate,
};

/// Reads samples from the metric store of one tenant.
pub struct MetricSource<'a> {
    /// The store.
    pub store: &'a MetricStore,
    /// Whose series.
    pub tenant: &'a str,
}

impl SampleSource for MetricSource<'_> {
    fn samples(
        &self,
        agg: &RangeAggregation,
        start_ns: i64,
        end_ns: i64,
        _keep: Option<&Grouping>,
    ) -> Result<Vec<Series>, EngineError> {
        if agg.input != RangeInput::Series {
            return Err(EngineError::Invalid(
                "log selectors are not valid in PromQL".into(),
            ));
        }
        Ok(self
            .store
            .select(self.tenant, &agg.selector.matchers, start_ns, end_ns)
            .into_iter()
            .map(|s| Series {
                labels: s.labels,
                samples: s
                    .samples
                    .into_iter()
                    .map(|(timestamp_ns, value)| Sample {
                        timestamp_ns,
                        value,
                    })
                    .collect(),
            })
            .collect())
    }
}

/// Evaluates a PromQL expression over the metric store; blocking.
pub fn execute_promql(
    store: &MetricStore,
    tenant: &str,
    expr: &MetricExpr,
    params: &EvalParams,
) -> Result<Value, EngineError> {
    evaluate(expr, params, &MetricSource { store, tenant })
}
