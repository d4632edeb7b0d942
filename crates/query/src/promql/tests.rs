//! Translation tests: PromQL text → [`MetricExpr`] shape.

use super::*;

fn range(q: &str) -> RangeAggregation {
    match parse(q) {
        Ok(MetricExpr::Range(r)) => *r,
        other => panic!("{q}: {other:?}"),
    }
}

#[test]
fn instant_selector_is_a_lookback_range() {
    let r = range(r#"up{job="a"} offset 1m"#);
    assert_eq!(r.op, RangeOp::InstantSelector);
    assert_eq!(r.input, RangeInput::Series);
    assert_eq!(r.range_ns, LOOKBACK_DELTA_NS);
    assert_eq!(r.offset_ns, Some(60_000_000_000));
    assert!(r.selector.stages.is_empty() && r.unwrap.is_none());
    assert_eq!(r.selector.matchers[0].name, "__name__");
    assert_eq!(r.selector.matchers[0].value, "up");
    assert_eq!(r.to_string(), r#"{__name__="up", job="a"} offset 1m"#);
}

#[test]
fn range_function() {
    let r = range("rate(http_requests_total[5m] offset -1m)");
    assert_eq!(r.op, RangeOp::Rate);
    assert_eq!(r.range_ns, 300_000_000_000);
    assert_eq!(r.offset_ns, Some(-60_000_000_000));
    let r = range("quantile_over_time(0.9, x[1m])");
    assert_eq!((r.op, r.param), (RangeOp::QuantileOverTime, Some(0.9)));
    assert_eq!(
        r.to_string(),
        r#"quantile_over_time(0.9, {__name__="x"}[1m])"#
    );
}

#[test]
fn binary_modifiers() {
    let Ok(MetricExpr::Binary(b)) = parse("a > bool on(x) group_left(y) b") else {
        panic!("binary");
    };
    assert!(b.return_bool);
    assert_eq!(
        b.matching,
        Some(VectorMatching {
            on: true,
            labels: vec!["x".into()],
            group: Some(GroupModifier {
                right: false,
                labels: vec!["y".into()]
            }),
        })
    );
    let Ok(MetricExpr::Binary(b)) = parse("a unless ignoring(z) b") else {
        panic!("binary");
    };
    assert_eq!(b.op, BinOp::Unless);
    assert_eq!(
        b.matching.map(|m| (m.on, m.labels)),
        Some((false, vec!["z".into()]))
    );
}

#[test]
fn aggregation_parameters() {
    let Ok(MetricExpr::Vector(v)) = parse("topk by (a) (3, x)") else {
        panic!("vector");
    };
    assert_eq!((v.op, v.param), (VectorOp::Topk, Some(3)));
    let Ok(MetricExpr::Vector(v)) = parse("quantile without (a) (0.95, x)") else {
        panic!("vector");
    };
    assert_eq!((v.op, v.quantile), (VectorOp::Quantile, Some(0.95)));
    assert_eq!(v.grouping.map(|g| g.without), Some(true));
}

#[test]
fn literals_and_unary_minus() {
    assert_eq!(
        parse("-(1 + 2)").ok().map(|e| e.to_string()),
        Some("-1 * (1 + 2)".into())
    );
    assert_eq!(parse("-5"), Ok(MetricExpr::Literal(-5.0)));
    assert_eq!(parse("vector(2)"), Ok(MetricExpr::VectorLiteral(2.0)));
}
