//! Fuzzes the LogQL parser: arbitrary UTF-8 must never panic; when it parses, the
//! canonical text must parse back to the same AST, and compiling and running the
//! pipeline on a few lines must not panic either.
#![no_main]

use inferscope_model::Labels;
use inferscope_query::{Expr, MetricExpr, parse};
use libfuzzer_sys::fuzz_target;

fn run_selector(sel: &inferscope_query::LogSelector, input: &str) {
    let _ = sel.line_prefilter().map(|f| f.matches(input.as_bytes()));
    if let Ok(p) = sel.pipeline() {
        let stream = Labels::from_pairs([("app", "fuzz"), ("level", "info")]);
        let meta = vec![("trace_id".to_string(), "abc".to_string())];
        for line in [
            input,
            r#"{"level":"error","msg":"x","n":{"a":1},"arr":[1,2]}"#,
            r#"level=info msg="hello world" status=500 latency=1.5s size=20MB"#,
            "\x1b[31mred\x1b[0m 10.0.0.1 - - GET /",
        ] {
            let _ = p.process(1_700_000_000_000_000_000, line, &stream, &meta);
        }
    }
}

fn walk_metric(m: &MetricExpr, input: &str) {
    match m {
        MetricExpr::Range(r) => run_selector(&r.selector, input),
        MetricExpr::Vector(v) => walk_metric(&v.inner, input),
        MetricExpr::Binary(b) => {
            walk_metric(&b.lhs, input);
            walk_metric(&b.rhs, input);
        }
        MetricExpr::LabelReplace(l) => walk_metric(&l.inner, input),
        // PromQL-only nodes; LogQL never produces them.
        MetricExpr::Function(_) | MetricExpr::HistogramQuantile(_) => {}
        MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(input) else {
        return;
    };
    let text = expr.to_string();
    match parse(&text) {
        Ok(again) => assert_eq!(again, expr, "round trip changed the AST: {text}"),
        Err(e) => panic!("canonical text does not parse: {text:?}: {e}"),
    }
    match &expr {
        Expr::Log(sel) => run_selector(sel, input),
        Expr::Metric(m) => walk_metric(m, input),
    }
});
