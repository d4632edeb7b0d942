//! The recursive-descent LogQL parser.
//!
//! Log queries: `{matchers} stages...`. Metric queries use precedence climbing over
//! `or` < `and`/`unless` < comparisons < `+ -` < `* / %` < `^` (right-associative).
//! Semantic checks Loki performs at parse time (empty-compatible selectors, unwrap
//! with the wrong range function, missing `topk` parameter, ...) are done here too.

use inferscope_model::{LabelMatcher, MatchOp};

use crate::ast::*;
use crate::lexer::{Tok, Token, lex};
use crate::pipeline::ip::IpMatcher;
use crate::pipeline::pattern::Pattern;

/// A syntax or semantic error in a query, printed in Loki's style.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(*.line, *.col, .message))]
pub struct ParseError {
    /// 1-based line (0 when the error is not tied to a position).
    pub line: usize,
    /// 1-based column (0 when the error is not tied to a position).
    pub col: usize,
    /// The message, e.g. `syntax error: unexpected IDENTIFIER`.
    pub message: String,
}

fn render(line: usize, col: usize, message: &str) -> String {
    if line == 0 && col == 0 {
        format!("parse error : {message}")
    } else {
        format!("parse error at line {line}, col {col}: {message}")
    }
}

impl ParseError {
    /// An error not tied to a position (Loki prints `parse error : msg`).
    pub fn semantic(message: impl Into<String>) -> Self {
        ParseError {
            line: 0,
            col: 0,
            message: message.into(),
        }
    }
}

const EMPTY_SELECTOR: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// Parses a LogQL query.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = if matches!(p.peek(), Tok::LBrace) {
        Expr::Log(p.log_selector(false)?.0)
    } else {
        Expr::Metric(p.metric(0)?)
    };
    p.expect_eof()?;
    Ok(e)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Current nesting depth (parentheses, aggregations), bounded by [`MAX_DEPTH`].
    depth: usize,
}

/// Deepest nesting accepted, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

type PResult<T> = Result<T, ParseError>;

/// Keywords that end a label filter juxtaposition or cannot be label names there.
fn is_reserved(s: &str) -> bool {
    matches!(
        s,
        "and"
            | "or"
            | "unless"
            | "by"
            | "without"
            | "offset"
            | "bool"
            | "on"
            | "ignoring"
            | "group_left"
            | "group_right"
    )
}

impl Parser {
    fn tok(&self) -> &Token {
        let i = self.pos.min(self.toks.len().saturating_sub(1));
        &self.toks[i]
    }

    fn peek(&self) -> &Tok {
        &self.tok().tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.toks.len().saturating_sub(1));
        &self.toks[i].tok
    }

    fn next(&mut self) -> Tok {
        let t = self.tok().tok.clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self) -> ParseError {
        let t = self.tok();
        ParseError {
            line: t.line,
            col: t.col,
            message: format!("syntax error: unexpected {}", t.tok.name()),
        }
    }

    fn expect(&mut self, want: &Tok) -> PResult<()> {
        if self.peek() == want {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect_eof(&self) -> PResult<()> {
        if matches!(self.peek(), Tok::Eof) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Ident(i) if i == s)
    }

    fn ident(&mut self) -> PResult<String> {
        match self.peek() {
            Tok::Ident(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn string(&mut self) -> PResult<String> {
        match self.peek() {
            Tok::Str(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected()),
        }
    }

    // ------------------------------------------------------------ log queries

    /// `{...} stages`; with `in_range`, also `| unwrap` and a range / offset.
    /// Returns the selector and, in range context, the unwrap.
    fn log_selector(&mut self, in_range: bool) -> PResult<(LogSelector, Option<Unwrap>)> {
        let matchers = self.matchers()?;
        let (stages, unwrap) = self.stages(in_range)?;
        Ok((LogSelector { matchers, stages }, unwrap))
    }

    /// Pipeline stages; with `in_range`, also `| unwrap` and its post filters.
    fn stages(&mut self, in_range: bool) -> PResult<(Vec<Stage>, Option<Unwrap>)> {
        let mut stages = Vec::new();
        let mut unwrap: Option<Unwrap> = None;
        loop {
            let t = self.peek().clone();
            let op = match t {
                Tok::PipeExact => Some(LineFilterOp::Contains),
                Tok::Neq => Some(LineFilterOp::NotContains),
                Tok::PipeMatch => Some(LineFilterOp::Match),
                Tok::Nre => Some(LineFilterOp::NotMatch),
                Tok::PipePattern => Some(LineFilterOp::Pattern),
                Tok::Npa => Some(LineFilterOp::NotPattern),
                Tok::Pipe => None,
                _ => break,
            };
            if let Some(op) = op {
                if unwrap.is_some() {
                    return Err(self.unexpected());
                }
                self.next();
                stages.push(Stage::LineFilter(self.line_filter(op)?));
                continue;
            }
            self.next();
            if let Some(u) = unwrap.as_mut() {
                // After unwrap only label filters are allowed.
                u.post_filters.push(self.label_filter_or()?);
                continue;
            }
            if self.is_ident("unwrap") {
                if !in_range {
                    return Err(self.unexpected());
                }
                self.next();
                unwrap = Some(self.unwrap()?);
                continue;
            }
            stages.push(self.stage()?);
        }
        Ok((stages, unwrap))
    }

    fn matchers(&mut self) -> PResult<Vec<LabelMatcher>> {
        self.expect(&Tok::LBrace)?;
        let mut out = Vec::new();
        loop {
            out.push(self.matcher()?);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                Tok::RBrace => {
                    self.next();
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        if out.iter().all(|m| m.matches_empty()) {
            return Err(ParseError::semantic(EMPTY_SELECTOR));
        }
        Ok(out)
    }

    fn match_op(&mut self) -> PResult<MatchOp> {
        let op = match self.peek() {
            Tok::Eq => MatchOp::Eq,
            Tok::Neq => MatchOp::NotEq,
            Tok::Re => MatchOp::Re,
            Tok::Nre => MatchOp::NotRe,
            _ => return Err(self.unexpected()),
        };
        self.next();
        Ok(op)
    }

    fn matcher(&mut self) -> PResult<LabelMatcher> {
        let name = self.ident()?;
        let op = self.match_op()?;
        let at = self.tok().clone();
        let value = self.string()?;
        self.build_matcher(name, op, value, &at)
    }

    fn build_matcher(
        &self,
        name: String,
        op: MatchOp,
        value: String,
        at: &Token,
    ) -> PResult<LabelMatcher> {
        LabelMatcher::new(name, op, value).map_err(|e| ParseError {
            line: at.line,
            col: at.col,
            message: format!(
                "error parsing regexp: {}",
                first_line(&e.source.to_string())
            ),
        })
    }

    fn line_filter(&mut self, op: LineFilterOp) -> PResult<LineFilterExpr> {
        let mut values = Vec::new();
        loop {
            let at = self.tok().clone();
            let v = if self.is_ident("ip") && matches!(self.peek_at(1), Tok::LParen) {
                self.next();
                self.next();
                let s = self.string()?;
                self.expect(&Tok::RParen)?;
                if matches!(op, LineFilterOp::Match | LineFilterOp::NotMatch)
                    || matches!(op, LineFilterOp::Pattern | LineFilterOp::NotPattern)
                {
                    return Err(ParseError {
                        line: at.line,
                        col: at.col,
                        message: "syntax error: unexpected ip".into(),
                    });
                }
                IpMatcher::parse(&s).map_err(|m| ParseError {
                    line: at.line,
                    col: at.col,
                    message: m,
                })?;
                LineFilterValue::Ip(s)
            } else {
                let s = self.string()?;
                match op {
                    LineFilterOp::Match | LineFilterOp::NotMatch => {
                        regex::bytes::Regex::new(&s).map_err(|e| ParseError {
                            line: at.line,
                            col: at.col,
                            message: format!(
                                "error parsing regexp: {}",
                                first_line(&e.to_string())
                            ),
                        })?;
                    }
                    LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                        Pattern::parse(&s, false).map_err(|m| ParseError {
                            line: at.line,
                            col: at.col,
                            message: m,
                        })?;
                    }
                    _ => {}
                }
                LineFilterValue::Str(s)
            };
            values.push(v);
            if self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_) | Tok::Ident(_)) {
                self.next();
                continue;
            }
            break;
        }
        Ok(LineFilterExpr { op, values })
    }

    /// A stage after `|`.
    fn stage(&mut self) -> PResult<Stage> {
        let Tok::Ident(kw) = self.peek().clone() else {
            if matches!(self.peek(), Tok::LParen) {
                return Ok(Stage::LabelFilter(self.label_filter_or()?));
            }
            return Err(self.unexpected());
        };
        let stage = match kw.as_str() {
            "json" => {
                self.next();
                Stage::Parser(ParserStage::Json(self.extractions()?))
            }
            "logfmt" => {
                self.next();
                let (mut strict, mut keep_empty) = (false, false);
                while let Tok::Flag(f) = self.peek().clone() {
                    match f.as_str() {
                        "strict" => strict = true,
                        "keep-empty" => keep_empty = true,
                        _ => return Err(self.unexpected()),
                    }
                    self.next();
                }
                Stage::Parser(ParserStage::Logfmt {
                    strict,
                    keep_empty,
                    extractions: self.extractions()?,
                })
            }
            "regexp" => {
                self.next();
                Stage::Parser(ParserStage::Regexp(self.string()?))
            }
            "pattern" => {
                self.next();
                Stage::Parser(ParserStage::Pattern(self.string()?))
            }
            "unpack" => {
                self.next();
                Stage::Parser(ParserStage::Unpack)
            }
            "decolorize" => {
                self.next();
                Stage::Decolorize
            }
            "line_format" => {
                self.next();
                Stage::LineFormat(self.string()?)
            }
            "label_format" => {
                self.next();
                let mut ops = Vec::new();
                loop {
                    let dst = self.ident()?;
                    self.expect(&Tok::Eq)?;
                    match self.peek().clone() {
                        Tok::Ident(src) => {
                            self.next();
                            ops.push(LabelFormatOp::Rename { dst, src });
                        }
                        Tok::Str(template) => {
                            self.next();
                            ops.push(LabelFormatOp::Template { dst, template });
                        }
                        _ => return Err(self.unexpected()),
                    }
                    if matches!(self.peek(), Tok::Comma) {
                        self.next();
                    } else {
                        break;
                    }
                }
                let mut dsts: Vec<&str> =
                    ops.iter()
                        .map(|o| match o {
                            LabelFormatOp::Rename { dst, .. }
                            | LabelFormatOp::Template { dst, .. } => dst.as_str(),
                        })
                        .collect();
                dsts.sort_unstable();
                if let Some(w) = dsts.windows(2).find(|w| w[0] == w[1]) {
                    return Err(ParseError::semantic(format!(
                        "multiple label name '{}' not allowed in a single format operation",
                        w[0]
                    )));
                }
                Stage::LabelFormat(ops)
            }
            "drop" | "keep" => {
                self.next();
                let mut sel = Vec::new();
                loop {
                    let name = self.ident()?;
                    if matches!(self.peek(), Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre) {
                        let op = self.match_op()?;
                        let at = self.tok().clone();
                        let v = self.string()?;
                        sel.push(LabelSelection::Matcher(
                            self.build_matcher(name, op, v, &at)?,
                        ));
                    } else {
                        sel.push(LabelSelection::Name(name));
                    }
                    if matches!(self.peek(), Tok::Comma) {
                        self.next();
                    } else {
                        break;
                    }
                }
                if kw == "drop" {
                    Stage::Drop(sel)
                } else {
                    Stage::Keep(sel)
                }
            }
            "unwrap" => return Err(self.unexpected()),
            _ => Stage::LabelFilter(self.label_filter_or()?),
        };
        Ok(stage)
    }

    /// `a, b="c.d"` after `json`/`logfmt` (possibly empty).
    fn extractions(&mut self) -> PResult<Vec<LabelExtraction>> {
        let mut out = Vec::new();
        while let Tok::Ident(label) = self.peek().clone() {
            if is_reserved(&label) {
                break;
            }
            self.next();
            let expr = if matches!(self.peek(), Tok::Eq) {
                self.next();
                Some(self.string()?)
            } else {
                None
            };
            out.push(LabelExtraction { label, expr });
            if matches!(self.peek(), Tok::Comma) {
                self.next();
                if !matches!(self.peek(), Tok::Ident(_)) {
                    return Err(self.unexpected());
                }
            } else {
                break;
            }
        }
        Ok(out)
    }

    fn unwrap(&mut self) -> PResult<Unwrap> {
        let name = self.ident()?;
        let conv = match name.as_str() {
            "duration" => Some(UnwrapConversion::Duration),
            "duration_seconds" => Some(UnwrapConversion::DurationSeconds),
            "bytes" => Some(UnwrapConversion::Bytes),
            _ => None,
        };
        match conv {
            Some(c) if matches!(self.peek(), Tok::LParen) => {
                self.next();
                let label = self.ident()?;
                self.expect(&Tok::RParen)?;
                Ok(Unwrap {
                    label,
                    conversion: c,
                    post_filters: Vec::new(),
                })
            }
            _ => Ok(Unwrap {
                label: name,
                conversion: UnwrapConversion::None,
                post_filters: Vec::new(),
            }),
        }
    }

    // ------------------------------------------------------------ label filters

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.tok();
            return Err(ParseError {
                line: t.line,
                col: t.col,
                message: "syntax error: expression nested too deeply".into(),
            });
        }
        Ok(())
    }

    fn label_filter_or(&mut self) -> PResult<LabelFilterExpr> {
        self.enter()?;
        let r = self.label_filter_or_inner();
        self.depth -= 1;
        r
    }

    fn label_filter_or_inner(&mut self) -> PResult<LabelFilterExpr> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilterExpr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> PResult<LabelFilterExpr> {
        let mut lhs = self.label_filter_atom()?;
        loop {
            match self.peek() {
                Tok::Ident(s) if s == "and" => {
                    self.next();
                }
                Tok::Comma => {
                    self.next();
                }
                Tok::Ident(s)
                    if !is_reserved(s)
                        && matches!(
                            self.peek_at(1),
                            Tok::Eq
                                | Tok::Neq
                                | Tok::Re
                                | Tok::Nre
                                | Tok::CmpEq
                                | Tok::Gt
                                | Tok::Gte
                                | Tok::Lt
                                | Tok::Lte
                        ) => {}
                Tok::LParen => {}
                _ => break,
            }
            let rhs = self.label_filter_atom()?;
            lhs = LabelFilterExpr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_atom(&mut self) -> PResult<LabelFilterExpr> {
        if matches!(self.peek(), Tok::LParen) {
            self.next();
            let e = self.label_filter_or()?;
            self.expect(&Tok::RParen)?;
            return Ok(e);
        }
        let name = self.ident()?;
        let op_tok = self.peek().clone();
        let cmp = match op_tok {
            Tok::Eq | Tok::CmpEq => CmpOp::Eq,
            Tok::Neq => CmpOp::Neq,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Gte,
            Tok::Lt => CmpOp::Lt,
            Tok::Lte => CmpOp::Lte,
            Tok::Re | Tok::Nre => {
                let op = self.match_op()?;
                let at = self.tok().clone();
                let v = self.string()?;
                return Ok(LabelFilterExpr::Matcher(
                    self.build_matcher(name, op, v, &at)?,
                ));
            }
            _ => return Err(self.unexpected()),
        };
        self.next();
        let neg = if matches!(self.peek(), Tok::Sub)
            && matches!(self.peek_at(1), Tok::Number(_) | Tok::Duration(_))
        {
            self.next();
            true
        } else {
            false
        };
        let sign = |n: f64| if neg { -n } else { n };
        match self.peek().clone() {
            Tok::Str(v) if matches!(op_tok, Tok::Eq | Tok::Neq) && !neg => {
                let at = self.tok().clone();
                self.next();
                let op = if op_tok == Tok::Eq {
                    MatchOp::Eq
                } else {
                    MatchOp::NotEq
                };
                Ok(LabelFilterExpr::Matcher(
                    self.build_matcher(name, op, v, &at)?,
                ))
            }
            Tok::Ident(i)
                if i == "ip"
                    && matches!(op_tok, Tok::Eq | Tok::Neq)
                    && matches!(self.peek_at(1), Tok::LParen) =>
            {
                let at = self.tok().clone();
                self.next();
                self.next();
                let pattern = self.string()?;
                self.expect(&Tok::RParen)?;
                IpMatcher::parse(&pattern).map_err(|m| ParseError {
                    line: at.line,
                    col: at.col,
                    message: m,
                })?;
                Ok(LabelFilterExpr::Ip {
                    name,
                    negated: op_tok == Tok::Neq,
                    pattern,
                })
            }
            Tok::Number(n) => {
                self.next();
                Ok(LabelFilterExpr::Number {
                    name,
                    op: cmp,
                    value: sign(n),
                })
            }
            Tok::Duration(d) => {
                self.next();
                Ok(LabelFilterExpr::Duration {
                    name,
                    op: cmp,
                    value: if neg { -d } else { d },
                })
            }
            Tok::Bytes(b) if !neg => {
                self.next();
                Ok(LabelFilterExpr::Bytes {
                    name,
                    op: cmp,
                    value: b,
                })
            }
            _ => Err(self.unexpected()),
        }
    }

    // ------------------------------------------------------------ metric queries

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Add => BinOp::Add,
            Tok::Sub => BinOp::Sub,
            Tok::Mul => BinOp::Mul,
            Tok::Div => BinOp::Div,
            Tok::Mod => BinOp::Mod,
            Tok::Pow => BinOp::Pow,
            Tok::CmpEq => BinOp::Eq,
            Tok::Neq => BinOp::Neq,
            Tok::Gt => BinOp::Gt,
            Tok::Gte => BinOp::Gte,
            Tok::Lt => BinOp::Lt,
            Tok::Lte => BinOp::Lte,
            Tok::Ident(s) if s == "and" => BinOp::And,
            Tok::Ident(s) if s == "or" => BinOp::Or,
            Tok::Ident(s) if s == "unless" => BinOp::Unless,
            _ => return None,
        })
    }

    fn label_list(&mut self) -> PResult<Vec<String>> {
        self.expect(&Tok::LParen)?;
        let mut out = Vec::new();
        if matches!(self.peek(), Tok::RParen) {
            self.next();
            return Ok(out);
        }
        loop {
            out.push(self.ident()?);
            match self.next() {
                Tok::Comma => {}
                Tok::RParen => return Ok(out),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            }
        }
    }

    fn metric(&mut self, min_prec: u8) -> PResult<MetricExpr> {
        self.enter()?;
        let r = self.metric_inner(min_prec);
        self.depth -= 1;
        r
    }

    fn metric_inner(&mut self, min_prec: u8) -> PResult<MetricExpr> {
        let mut lhs = self.metric_primary()?;
        while let Some(op) = self.binop() {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_tok = self.tok().clone();
            self.next();
            let mut return_bool = false;
            if self.is_ident("bool") {
                if !op.is_comparison() {
                    return Err(ParseError::semantic(
                        "bool modifier can only be used on comparison operators",
                    ));
                }
                self.next();
                return_bool = true;
            }
            let mut matching = None;
            if self.is_ident("on") || self.is_ident("ignoring") {
                let on = self.is_ident("on");
                self.next();
                let labels = self.label_list()?;
                let mut group = None;
                if self.is_ident("group_left") || self.is_ident("group_right") {
                    let right = self.is_ident("group_right");
                    self.next();
                    let labels = if matches!(self.peek(), Tok::LParen) {
                        self.label_list()?
                    } else {
                        Vec::new()
                    };
                    group = Some(GroupModifier { right, labels });
                }
                matching = Some(VectorMatching { on, labels, group });
            }
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.metric(next_min)?;
            let lit = |e: &MetricExpr| matches!(e, MetricExpr::Literal(_));
            if op.is_set() && (lit(&lhs) || lit(&rhs)) {
                return Err(ParseError::semantic(format!(
                    "unexpected literal for {} side of logical/set binary operation ({})",
                    if lit(&lhs) { "left" } else { "right" },
                    op.as_str()
                )));
            }
            if op.is_comparison() && !return_bool && lit(&lhs) && lit(&rhs) {
                return Err(ParseError {
                    line: op_tok.line,
                    col: op_tok.col,
                    message: "comparisons between scalars must use BOOL modifier".into(),
                });
            }
            lhs = MetricExpr::Binary(Box::new(BinaryExpr {
                op,
                return_bool,
                matching,
                lhs,
                rhs,
            }));
        }
        Ok(lhs)
    }

    fn number(&mut self) -> PResult<f64> {
        let neg = match self.peek() {
            Tok::Sub => {
                self.next();
                true
            }
            Tok::Add => {
                self.next();
                false
            }
            _ => false,
        };
        match self.peek() {
            Tok::Number(n) => {
                let n = *n;
                self.next();
                Ok(if neg { -n } else { n })
            }
            _ => Err(self.unexpected()),
        }
    }

    fn metric_primary(&mut self) -> PResult<MetricExpr> {
        match self.peek().clone() {
            Tok::Number(_) | Tok::Sub | Tok::Add => Ok(MetricExpr::Literal(self.number()?)),
            Tok::LParen => {
                self.next();
                let e = self.metric(0)?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Ident(name) => {
                if let Some(op) = RangeOp::from_name(&name) {
                    self.next();
                    return self.range_aggregation(op);
                }
                if let Some(op) = VectorOp::from_name(&name) {
                    self.next();
                    return self.vector_aggregation(op);
                }
                match name.as_str() {
                    "vector" => {
                        self.next();
                        self.expect(&Tok::LParen)?;
                        let n = self.number()?;
                        self.expect(&Tok::RParen)?;
                        Ok(MetricExpr::VectorLiteral(n))
                    }
                    "label_replace" => {
                        self.next();
                        self.expect(&Tok::LParen)?;
                        let inner = self.metric(0)?;
                        let mut args = Vec::with_capacity(4);
                        for _ in 0..4 {
                            self.expect(&Tok::Comma)?;
                            args.push((self.tok().clone(), self.string()?));
                        }
                        self.expect(&Tok::RParen)?;
                        let [(_, dst), (_, replacement), (_, src), (at, regex)]: [(Token, String);
                            4] = args.try_into().map_err(|_| self.unexpected())?;
                        regex::Regex::new(&format!("^(?s:{regex})$")).map_err(|e| ParseError {
                            line: at.line,
                            col: at.col,
                            message: format!(
                                "error parsing regexp: {}",
                                first_line(&e.to_string())
                            ),
                        })?;
                        Ok(MetricExpr::LabelReplace(Box::new(LabelReplace {
                            inner,
                            dst,
                            replacement,
                            src,
                            regex,
                        })))
                    }
                    _ => Err(self.unexpected()),
                }
            }
            _ => Err(self.unexpected()),
        }
    }

    fn grouping(&mut self) -> PResult<Option<Grouping>> {
        if self.is_ident("by") || self.is_ident("without") {
            let without = self.is_ident("without");
            self.next();
            let labels = self.label_list()?;
            Ok(Some(Grouping { without, labels }))
        } else {
            Ok(None)
        }
    }

    fn range_aggregation(&mut self, op: RangeOp) -> PResult<MetricExpr> {
        self.expect(&Tok::LParen)?;
        let param = if op == RangeOp::QuantileOverTime {
            let n = self.number()?;
            self.expect(&Tok::Comma)?;
            Some(n)
        } else {
            None
        };
        // Optional parentheses around the log range.
        let parens = if matches!(self.peek(), Tok::LParen) {
            self.next();
            true
        } else {
            false
        };
        if !matches!(self.peek(), Tok::LBrace) {
            return Err(self.unexpected());
        }
        // The range may come right after the selector or after the pipeline.
        let matchers = self.matchers()?;
        let mut range = None;
        if let Tok::Range(r) = self.peek() {
            range = Some(*r);
            self.next();
        }
        let (stages, unwrap) = self.stages(true)?;
        let sel = LogSelector { matchers, stages };
        if parens {
            self.expect(&Tok::RParen)?;
        }
        if range.is_none() {
            if let Tok::Range(r) = self.peek() {
                range = Some(*r);
                self.next();
            } else {
                return Err(self.unexpected());
            }
        }
        let range_ns = range.unwrap_or_default();
        let offset_ns = if self.is_ident("offset") {
            self.next();
            match self.next() {
                Tok::Duration(d) => Some(d),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            }
        } else {
            None
        };
        self.expect(&Tok::RParen)?;
        let grouping = self.grouping()?;
        if unwrap.is_some() && !op.allows_unwrap() {
            return Err(ParseError::semantic(format!(
                "invalid aggregation {} with unwrap",
                op.as_str()
            )));
        }
        if unwrap.is_none() && !op.allows_plain() {
            return Err(ParseError::semantic(format!(
                "invalid aggregation {} without unwrap",
                op.as_str()
            )));
        }
        if grouping.is_some() && unwrap.is_none() {
            return Err(ParseError::semantic(format!(
                "grouping not allowed for {} aggregation",
                op.as_str()
            )));
        }
        Ok(MetricExpr::Range(Box::new(RangeAggregation {
            op,
            input: RangeInput::Logs,
            param,
            selector: sel,
            unwrap,
            range_ns,
            offset_ns,
            grouping,
        })))
    }

    fn vector_aggregation(&mut self, op: VectorOp) -> PResult<MetricExpr> {
        let mut grouping = self.grouping()?;
        self.expect(&Tok::LParen)?;
        let mut param = None;
        if matches!(self.peek(), Tok::Number(_) | Tok::Sub) && matches!(self.peek_at(1), Tok::Comma)
            || matches!(self.peek(), Tok::Sub) && matches!(self.peek_at(2), Tok::Comma)
        {
            let at = self.tok().clone();
            let n = self.number()?;
            self.expect(&Tok::Comma)?;
            param = Some((n, at));
        }
        let inner = self.metric(0)?;
        self.expect(&Tok::RParen)?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        let param = match (op, param) {
            (VectorOp::Topk | VectorOp::Bottomk, None) => {
                return Err(ParseError::semantic(format!(
                    "parameter required for operation {}",
                    op.as_str()
                )));
            }
            (VectorOp::Topk | VectorOp::Bottomk, Some((n, _))) => {
                if n.fract() != 0.0 || n < 1.0 || n > i64::MAX as f64 {
                    return Err(ParseError::semantic(format!(
                        "invalid parameter {}({},",
                        op.as_str(),
                        fmt_number(n)
                    )));
                }
                Some(n as i64)
            }
            (_, Some((n, _))) => {
                return Err(ParseError::semantic(format!(
                    "unsupported parameter for operation {}({},",
                    op.as_str(),
                    fmt_number(n)
                )));
            }
            (_, None) => None,
        };
        if matches!(inner, MetricExpr::Literal(_)) {
            return Err(ParseError::semantic(format!(
                "unexpected literal for {} aggregation",
                op.as_str()
            )));
        }
        Ok(MetricExpr::Vector(Box::new(VectorAggregation {
            op,
            param,
            quantile: None,
            grouping,
            inner,
        })))
    }
}

fn first_line(s: &str) -> String {
    // regex errors are multi-line; keep them compact but informative.
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
