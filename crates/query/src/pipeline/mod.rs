//! The compiled log pipeline: runs a [`LogSelector`]'s stages over one entry.
//!
//! [`Pipeline::process`] takes a line with its stream labels and structured metadata
//! and returns the (possibly rewritten) line and labels, or `None` when a filter drops
//! it. Parser failures add `__error__`/`__error_details__` like Loki
//! (`JSONParserErr`, `LogfmtParserErr`, `LabelFilterErr`, `TemplateFormatErr`); lines
//! with errors are kept, so `| __error__=""` filters them out.

pub mod ip;
pub mod json;
mod key_filter;
pub mod label_filter;
pub mod logfmt;
pub mod pattern;
pub mod state;
pub mod template;

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

thread_local! {
    /// Per-thread pool of label string pairs, recycled across dropped lines.
    static SPARE: Cell<Vec<(String, String)>> = const { Cell::new(Vec::new()) };
}

/// Upper bound on pooled pairs per thread.
const MAX_SPARE: usize = 256;

use inferscope_model::{LabelMatcher, Labels};

use crate::ast::{LabelExtraction, LabelFormatOp, LabelSelection, LogSelector, ParserStage, Stage};
use crate::line_filter::LineFilter;
use label_filter::CompiledLabelFilter;
use state::{ERROR_DETAILS_LABEL, ERROR_LABEL, State};
use template::{Template, TemplateData};

/// `__error__` value for JSON parse failures.
pub const JSON_PARSER_ERR: &str = "JSONParserErr";
/// `__error__` value for logfmt parse failures.
pub const LOGFMT_PARSER_ERR: &str = "LogfmtParserErr";
/// `__error__` value for template execution failures.
pub const TEMPLATE_FORMAT_ERR: &str = "TemplateFormatErr";

/// Why a pipeline cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// Bad regex in `| regexp` or elsewhere.
    #[error("invalid regexp {pattern:?}: {message}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// Compiler message.
        message: String,
    },
    /// `| regexp` without named groups.
    #[error("at least one named capture must be supplied")]
    NoNamedCapture,
    /// Invalid `| pattern`.
    #[error("invalid pattern {pattern:?}: {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Reason.
        message: String,
    },
    /// Invalid JSON path in `| json a="..."`.
    #[error("{0}")]
    JsonPath(String),
    /// Template compile error in `line_format`/`label_format`.
    #[error("{0}")]
    Template(#[from] template::TemplateError),
    /// Invalid line or label filter.
    #[error("{0}")]
    Filter(String),
}

#[derive(Debug, Clone)]
enum Compiled {
    LineFilter(LineFilter),
    /// `| json`; with `Some`, only these (final) label names are extracted.
    JsonAll(Option<json::KeyFilter>),
    JsonPaths(Vec<(String, json::JsonPath)>),
    Logfmt {
        strict: bool,
        keep_empty: bool,
        /// (key in the line, label) — empty means all.
        keys: Vec<(String, String)>,
        /// With `Some`, only these (final) label names are extracted.
        only: Option<Vec<String>>,
    },
    Regexp(regex::Regex, Vec<Option<String>>),
    Pattern(pattern::Pattern),
    Unpack,
    LabelFilter(CompiledLabelFilter),
    LineFormat(Template),
    LabelFormat(Vec<(String, LabelFmt)>),
    Decolorize,
    Drop(Vec<LabelSelection>),
    Keep(Vec<LabelSelection>),
}

#[derive(Debug, Clone)]
enum LabelFmt {
    Rename(String),
    Template(Template),
}

/// A compiled pipeline. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Pipeline {
    stages: Arc<[Compiled]>,
}

/// The result of running a pipeline over one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The line after `line_format`/`decolorize`/`unpack` (the original when unchanged).
    pub line: String,
    /// Stream labels after `label_format`/`drop`/`keep`.
    pub stream: Labels,
    /// Structured metadata after `drop`/`keep`/`label_format`.
    pub structured_metadata: Vec<(String, String)>,
    /// Labels extracted by parsers (and `__error__`/`__error_details__`).
    pub parsed: Vec<(String, String)>,
}

impl Processed {
    /// stream ∪ metadata ∪ parsed (parsed wins, then metadata): Loki's default
    /// result stream identity. Empty values are dropped.
    pub fn all_labels(&self) -> Labels {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(
            self.stream.len() + self.structured_metadata.len() + self.parsed.len(),
        );
        pairs.extend(self.stream.iter());
        pairs.extend(
            self.structured_metadata
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        pairs.extend(self.parsed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Labels::from_pairs(pairs)
    }

    /// The value of `name` in [`Processed::all_labels`] (parsed wins, then
    /// metadata, then stream), without building the label set.
    pub fn label(&self, name: &str) -> Option<&str> {
        let found = self
            .parsed
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .or_else(|| {
                self.structured_metadata
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
            })
            .map(|(_, v)| v.as_str())
            .or_else(|| self.stream.get(name));
        found.filter(|v| !v.is_empty())
    }
}

fn compile_extractions(ex: &[LabelExtraction]) -> Vec<(String, String)> {
    ex.iter()
        .map(|e| {
            (
                e.expr.clone().unwrap_or_else(|| e.label.clone()),
                e.label.clone(),
            )
        })
        .collect()
}

impl Pipeline {
    /// Compiles the stages of a selector.
    pub fn compile(sel: &LogSelector) -> Result<Self, PipelineError> {
        Self::compile_stages(&sel.stages)
    }

    /// Compiles a list of stages.
    pub fn compile_stages(stages: &[Stage]) -> Result<Self, PipelineError> {
        Self::compile_with_hints(stages, None)
    }

    /// Compiles a list of stages for a caller that only needs the result labels in
    /// `required` (e.g. the `by (...)` labels of a metric query). `| json` and
    /// `| logfmt` then only extract those labels plus the ones later stages read, so
    /// [`Processed::parsed`] is *not* the complete Loki label set. `None` = all.
    pub fn compile_with_hints(
        stages: &[Stage],
        required: Option<&[&str]>,
    ) -> Result<Self, PipelineError> {
        let mut out = Vec::with_capacity(stages.len());
        for (idx, s) in stages.iter().enumerate() {
            let only = || required.map(|r| needed_after(&stages[idx + 1..], r));
            let c = match s {
                Stage::LineFilter(lf) => {
                    // Merge consecutive line filters into one conjunction.
                    let f = LineFilter::compile([lf])
                        .map_err(|e| PipelineError::Filter(e.to_string()))?;
                    Compiled::LineFilter(f)
                }
                Stage::Parser(ParserStage::Json(ex)) if ex.is_empty() => {
                    Compiled::JsonAll(only().map(|names| json::KeyFilter::new(&names)))
                }
                Stage::Parser(ParserStage::Json(ex)) => {
                    let mut paths = Vec::with_capacity(ex.len());
                    for e in ex {
                        let p = json::JsonPath::parse(e.expr.as_deref().unwrap_or(&e.label))
                            .map_err(PipelineError::JsonPath)?;
                        paths.push((e.label.clone(), p));
                    }
                    Compiled::JsonPaths(paths)
                }
                Stage::Parser(ParserStage::Logfmt {
                    strict,
                    keep_empty,
                    extractions,
                }) => Compiled::Logfmt {
                    strict: *strict,
                    keep_empty: *keep_empty,
                    keys: compile_extractions(extractions),
                    only: only(),
                },
                Stage::Parser(ParserStage::Regexp(re)) => {
                    let r = regex::Regex::new(re).map_err(|e| PipelineError::Regex {
                        pattern: re.clone(),
                        message: e.to_string(),
                    })?;
                    let names: Vec<Option<String>> =
                        r.capture_names().map(|n| n.map(str::to_string)).collect();
                    if names.iter().all(Option::is_none) {
                        return Err(PipelineError::NoNamedCapture);
                    }
                    for n in names.iter().flatten() {
                        if !inferscope_model::is_valid_label_name(n) {
                            return Err(PipelineError::Regex {
                                pattern: re.clone(),
                                message: format!("invalid extracted label name {n:?}"),
                            });
                        }
                    }
                    Compiled::Regexp(r, names)
                }
                Stage::Parser(ParserStage::Pattern(p)) => {
                    Compiled::Pattern(pattern::Pattern::parse(p, true).map_err(|message| {
                        PipelineError::Pattern {
                            pattern: p.clone(),
                            message,
                        }
                    })?)
                }
                Stage::Parser(ParserStage::Unpack) => Compiled::Unpack,
                Stage::LabelFilter(e) => Compiled::LabelFilter(
                    CompiledLabelFilter::compile(e).map_err(PipelineError::Filter)?,
                ),
                Stage::LineFormat(t) => Compiled::LineFormat(Template::compile(t)?),
                Stage::LabelFormat(ops) => {
                    let mut v = Vec::with_capacity(ops.len());
                    for op in ops {
                        v.push(match op {
                            LabelFormatOp::Rename { dst, src } => {
                                (dst.clone(), LabelFmt::Rename(src.clone()))
                            }
                            LabelFormatOp::Template { dst, template } => (
                                dst.clone(),
                                LabelFmt::Template(Template::compile(template)?),
                            ),
                        });
                    }
                    Compiled::LabelFormat(v)
                }
                Stage::Decolorize => Compiled::Decolorize,
                Stage::Drop(s) => Compiled::Drop(s.clone()),
                Stage::Keep(s) => Compiled::Keep(s.clone()),
            };
            out.push(c);
        }
        Ok(Pipeline { stages: out.into() })
    }

    /// Whether the pipeline has no stage (every entry passes unchanged).
    pub fn is_noop(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs the pipeline over one entry. `None` when a filter drops it.
    pub fn process(
        &self,
        timestamp_ns: i64,
        line: &str,
        stream: &Labels,
        structured_metadata: &[(String, String)],
    ) -> Option<Processed> {
        let mut st = State {
            stream: Cow::Borrowed(stream.as_pairs()),
            meta: Cow::Borrowed(structured_metadata),
            parsed: Vec::with_capacity(16),
            spare: SPARE.with(Cell::take),
        };
        let mut line: Cow<'_, str> = Cow::Borrowed(line);
        for stage in self.stages.iter() {
            if !run_stage(stage, timestamp_ns, &mut line, &mut st) {
                // Dropped: keep the parsed strings' buffers for the next line.
                let mut spare = std::mem::take(&mut st.spare);
                if spare.len() < MAX_SPARE {
                    // Only small buffers are worth keeping around.
                    spare.extend(
                        st.parsed
                            .drain(..)
                            .filter(|(k, v)| k.capacity() <= 128 && v.capacity() <= 512),
                    );
                }
                SPARE.with(|s| s.set(spare));
                return None;
            }
        }
        SPARE.with(|s| s.set(std::mem::take(&mut st.spare)));
        Some(Processed {
            line: line.into_owned(),
            stream: match st.stream {
                Cow::Borrowed(_) => stream.clone(),
                Cow::Owned(v) => Labels::from_pairs(v),
            },
            structured_metadata: st.meta.into_owned(),
            parsed: st.parsed,
        })
    }
}

/// The label names a parser must produce: `required` plus every label the later
/// stages read (with `_extracted` stems so collisions with stream labels still work).
fn needed_after(later: &[Stage], required: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = required.iter().map(|s| s.to_string()).collect();
    for s in later {
        match s {
            Stage::LabelFilter(e) => {
                if let Ok(c) = CompiledLabelFilter::compile(e) {
                    let mut v = Vec::new();
                    c.names(&mut v);
                    names.extend(v.into_iter().map(str::to_string));
                }
            }
            Stage::LineFormat(t) => {
                if let Ok(t) = Template::compile(t) {
                    names.extend(t.fields().iter().cloned());
                }
            }
            Stage::LabelFormat(ops) => {
                for op in ops {
                    match op {
                        LabelFormatOp::Rename { src, .. } => names.push(src.clone()),
                        LabelFormatOp::Template { template, .. } => {
                            if let Ok(t) = Template::compile(template) {
                                names.extend(t.fields().iter().cloned());
                            }
                        }
                    }
                }
            }
            Stage::Keep(sel) | Stage::Drop(sel) => {
                names.extend(sel.iter().map(|s| s.name().to_string()));
            }
            _ => {}
        }
    }
    let stems: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix("_extracted").map(str::to_string))
        .collect();
    names.extend(stems);
    names.sort();
    names.dedup();
    names
}

struct Data<'a> {
    st: &'a State<'a>,
    line: &'a str,
    ts: i64,
}

impl TemplateData for Data<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.st.get(name)
    }
    fn line(&self) -> &str {
        self.line
    }
    fn timestamp_ns(&self) -> i64 {
        self.ts
    }
}

fn selection_matches(sel: &LabelSelection, name: &str, value: &str) -> bool {
    match sel {
        LabelSelection::Name(n) => n == name,
        LabelSelection::Matcher(m) => m.name == name && matcher_ok(m, value),
    }
}

fn matcher_ok(m: &LabelMatcher, v: &str) -> bool {
    m.matches(v)
}

fn run_stage(stage: &Compiled, ts: i64, line: &mut Cow<'_, str>, st: &mut State<'_>) -> bool {
    match stage {
        Compiled::LineFilter(f) => return f.matches(line.as_bytes()),
        Compiled::JsonAll(None) => {
            if let Err(e) = json::flatten(line, &mut |k, v| st.set_extracted(k, &v)) {
                st.set_error(JSON_PARSER_ERR, &e.to_string());
            }
        }
        Compiled::JsonAll(Some(only)) => {
            if let Err(e) =
                json::flatten_only(line, Some(only), &mut |k, _, v| st.set_extracted(k, &v))
            {
                st.set_error(JSON_PARSER_ERR, &e.to_string());
            }
        }
        Compiled::JsonPaths(paths) => {
            if let Err(e) = json::validate(line) {
                st.set_error(JSON_PARSER_ERR, &e.to_string());
                return true;
            }
            for (label, path) in paths {
                if let Some(v) = json::extract(line, path) {
                    st.set_extracted(label, &v);
                }
            }
        }
        Compiled::Logfmt {
            strict,
            keep_empty,
            keys,
            only,
        } => {
            let mut extracted: Vec<(String, String)> = Vec::new();
            let res = logfmt::parse(line, *strict, &mut |k, v| {
                if v.is_empty() && !*keep_empty {
                    return;
                }
                if keys.is_empty() {
                    let name = json::sanitize_key(k);
                    let wanted = only.as_ref().is_none_or(|o| o.contains(&name));
                    if !name.is_empty() && wanted {
                        extracted.push((name, v.into_owned()));
                    }
                } else {
                    for (key, label) in keys {
                        if key == k {
                            extracted.push((label.clone(), v.to_string()));
                        }
                    }
                }
            });
            for (k, v) in &extracted {
                st.set_extracted(k, v);
            }
            if let Err(e) = res {
                st.set_error(LOGFMT_PARSER_ERR, &e.to_string());
            }
        }
        Compiled::Regexp(re, names) => {
            if let Some(c) = re.captures(line) {
                for (i, n) in names.iter().enumerate() {
                    if let (Some(n), Some(m)) = (n, c.get(i)) {
                        st.set_extracted(n, m.as_str());
                    }
                }
            }
        }
        Compiled::Pattern(p) => {
            let mut caps = Vec::new();
            p.captures(line.as_bytes(), &mut caps);
            let found: Vec<(String, String)> = caps
                .iter()
                .filter_map(|(i, v)| {
                    Some((
                        p.names().get(*i)?.clone(),
                        String::from_utf8_lossy(v).into_owned(),
                    ))
                })
                .collect();
            for (k, v) in &found {
                st.set_extracted(k, v);
            }
        }
        Compiled::Unpack => match json::unpack(line) {
            Ok((entry, labels)) => {
                for (k, v) in &labels {
                    let name = json::sanitize_key(k);
                    if !name.is_empty() {
                        st.set_extracted(&name, v);
                    }
                }
                if let Some(e) = entry {
                    *line = Cow::Owned(e);
                }
            }
            Err(e) => st.set_error(JSON_PARSER_ERR, &e.to_string()),
        },
        Compiled::LabelFilter(f) => return f.eval(st),
        Compiled::LineFormat(t) => {
            let mut out = String::with_capacity(line.len());
            let res = t.render(&Data { st, line, ts }, &mut out);
            match res {
                Ok(()) => *line = Cow::Owned(out),
                Err(e) => st.set_error(TEMPLATE_FORMAT_ERR, &e.to_string()),
            }
        }
        Compiled::LabelFormat(ops) => {
            // All values are computed against the labels before this stage.
            let mut results: Vec<(&str, Option<&str>, Result<String, String>)> =
                Vec::with_capacity(ops.len());
            for (dst, op) in ops {
                match op {
                    LabelFmt::Rename(src) => {
                        results.push((dst, Some(src), Ok(st.get(src).unwrap_or("").to_string())))
                    }
                    LabelFmt::Template(t) => {
                        let mut out = String::new();
                        let r = t
                            .render(&Data { st, line, ts }, &mut out)
                            .map(|()| out)
                            .map_err(|e| e.to_string());
                        results.push((dst, None, r));
                    }
                }
            }
            for (dst, src, r) in results {
                match r {
                    Ok(v) => {
                        if let Some(src) = src
                            && src != dst
                        {
                            st.delete(src);
                        }
                        st.set_any(dst, v);
                    }
                    Err(e) => st.set_error(TEMPLATE_FORMAT_ERR, &e),
                }
            }
        }
        Compiled::Decolorize => {
            if line.contains('\x1b') {
                *line = Cow::Owned(decolorize(line));
            }
        }
        Compiled::Drop(sel) => {
            let keep = |(k, v): &(String, String)| !sel.iter().any(|s| selection_matches(s, k, v));
            st.retain(keep);
        }
        Compiled::Keep(sel) => {
            let keep = |(k, v): &(String, String)| {
                k == ERROR_LABEL
                    || k == ERROR_DETAILS_LABEL
                    || sel.iter().any(|s| selection_matches(s, k, v))
            };
            st.retain(keep);
        }
    }
    true
}

/// Removes ANSI escape sequences (CSI `ESC [ ... final` and two-byte `ESC x`).
pub fn decolorize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
