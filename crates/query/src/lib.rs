//! LogQL: parser, AST and the log pipeline stages. Pure.
//!
//! * [`parse`] turns query text into an [`Expr`] (log or metric query), reporting
//!   errors in Loki's format (`parse error at line 1, col 11: syntax error: ...`, or
//!   `parse error : ...` for errors Loki reports without a position).
//! * [`Expr`]'s `Display` prints canonical LogQL, and `parse(&e.to_string()) == Ok(e)`.
//! * [`LogSelector::line_prefilter`] gives the byte-level line filters the storage can
//!   push down; [`LogSelector::pipeline`] compiles every stage into a [`Pipeline`].
//!
//! Integration notes:
//!
//! * The stream matchers are `inferscope_model::LabelMatcher`s (regexes anchored).
//! * [`LogSelector::pipeline`] re-applies every line filter. When the storage already
//!   applied [`LogSelector::line_prefilter`], use
//!   [`LogSelector::pipeline_after_prefilter`] to skip the duplicated work.
//! * Lines whose parsing failed are *kept* with `__error__`/`__error_details__` in
//!   [`Processed::parsed`], as in Loki; `| __error__=""` removes them.
//! * [`Processed::all_labels`] is the result stream identity (stream ∪ metadata ∪
//!   parsed); group entries by it to build Loki's `streams` result.
//! * Metric queries are parsed into [`MetricExpr`] only. A range aggregation's
//!   [`RangeAggregation::selector`] holds the stages before `| unwrap`; the unwrap
//!   and its post filters are in [`RangeAggregation::unwrap`]. For `sum by (...)`
//!   style queries, [`LogSelector::pipeline_with_required_labels`] extracts only the
//!   labels the grouping needs.
//! * Known ambiguity (shared with Loki's grammar): `| drop a != "x"` is a drop
//!   matcher, never `| drop a` followed by a `!= "x"` line filter.
//! * [`promql::parse`] translates PromQL into the same [`MetricExpr`], evaluated by the
//!   same [`engine`].
#![warn(missing_docs)]

pub mod ast;
pub mod duration;
pub mod engine;
pub mod lexer;
pub mod line_filter;
mod parser;
pub mod pipeline;
pub mod promql;

pub use ast::*;
pub use line_filter::LineFilter;
pub use parser::{ParseError, parse};
pub use pipeline::{Pipeline, PipelineError, Processed};

impl LogSelector {
    /// Index of the first stage that may rewrite the line (`line_format`,
    /// `decolorize`, `unpack`). Line filters before it see the raw line.
    fn raw_line_prefix(&self) -> usize {
        self.stages
            .iter()
            .position(|s| {
                matches!(
                    s,
                    Stage::LineFormat(_) | Stage::Decolorize | Stage::Parser(ParserStage::Unpack)
                )
            })
            .unwrap_or(self.stages.len())
    }

    /// The line filters that see the raw line (all line filters before the first
    /// `line_format`/`decolorize`/`unpack` stage; label-only stages in between do not
    /// change the result), compiled to run on raw bytes. `None` when there is none.
    pub fn line_prefilter(&self) -> Option<LineFilter> {
        let exprs: Vec<&LineFilterExpr> = self.stages[..self.raw_line_prefix()]
            .iter()
            .filter_map(|s| match s {
                Stage::LineFilter(l) => Some(l),
                _ => None,
            })
            .collect();
        if exprs.is_empty() {
            return None;
        }
        LineFilter::compile(exprs).ok()
    }

    /// Compiles all stages. Errors for things the parser accepted but can't compile
    /// (bad regex in `| regexp`, bad pattern, bad template, bad JSON path).
    pub fn pipeline(&self) -> Result<Pipeline, PipelineError> {
        Pipeline::compile(self)
    }

    /// Like [`LogSelector::pipeline`], for callers that only need the result labels in
    /// `required` (e.g. `sum by (level) (count_over_time(...))`): parsers skip every
    /// other field. [`Processed::parsed`] is then incomplete by design.
    pub fn pipeline_with_required_labels(
        &self,
        required: &[&str],
    ) -> Result<Pipeline, PipelineError> {
        Pipeline::compile_with_hints(&self.stages, Some(required))
    }

    /// Like [`LogSelector::pipeline`] but without the line filters that
    /// [`LogSelector::line_prefilter`] covers: use it when the storage already applied
    /// the prefilter, to avoid scanning every line twice.
    pub fn pipeline_after_prefilter(&self) -> Result<Pipeline, PipelineError> {
        self.pipeline_after_prefilter_with_required_labels(None)
    }

    /// [`LogSelector::pipeline_after_prefilter`] with the parser hints of
    /// [`LogSelector::pipeline_with_required_labels`] (`None`: every label).
    pub fn pipeline_after_prefilter_with_required_labels(
        &self,
        required: Option<&[&str]>,
    ) -> Result<Pipeline, PipelineError> {
        let prefix = self.raw_line_prefix();
        let stages: Vec<Stage> = self
            .stages
            .iter()
            .enumerate()
            .filter(|(i, s)| !(*i < prefix && matches!(s, Stage::LineFilter(_))))
            .map(|(_, s)| s.clone())
            .collect();
        Pipeline::compile_with_hints(&stages, required)
    }
}
