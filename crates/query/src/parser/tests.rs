//! Parser tests: accepted queries, canonical printing, error messages, proptests.

use super::*;
use proptest::prelude::*;

fn ok(q: &str) -> Expr {
    match parse(q) {
        Ok(e) => e,
        Err(e) => panic!("{q:?} should parse: {e}"),
    }
}

fn err(q: &str) -> String {
    match parse(q) {
        Ok(e) => panic!("{q:?} should fail, got {e:?}"),
        Err(e) => e.to_string(),
    }
}

fn round_trip(q: &str) {
    let e = ok(q);
    let text = e.to_string();
    let again = parse(&text).unwrap_or_else(|err| panic!("{q:?} printed as {text:?}: {err}"));
    assert_eq!(again, e, "{q:?} printed as {text:?}");
    assert_eq!(again.to_string(), text);
}

const LOG_QUERIES: &[&str] = &[
    r#"{app="foo"}"#,
    r#"{app="foo", env!="dev", ns=~"prod|staging", pod!~"canary-.*"}"#,
    "{app=`foo\\bar`}",
    r#"{app="a\"b\\c\n"}"#,
    r#"{app="foo"} |= "error""#,
    r#"{app="foo"} |= "error" != "timeout" |~ "status=5.." !~ "(?i)debug""#,
    r#"{app="foo"} |= "a" or "b" != "c" or "d""#,
    r#"{app="foo"} |> "<_> level=error <_>" !> "<_> msg=ok""#,
    r#"{app="foo"} |= ip("192.168.0.0/16")"#,
    r#"{app="foo"} != ip("10.0.0.1-10.0.0.9")"#,
    r#"{app="foo"} | json"#,
    r#"{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]", level"#,
    r#"{app="foo"} | logfmt"#,
    r#"{app="foo"} | logfmt --strict --keep-empty"#,
    r#"{app="foo"} | logfmt --strict host, fwd_ip="fwd""#,
    r#"{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+)""#,
    r#"{app="foo"} | pattern "<ip> - - <_> \"<method> <uri> <_>\" <status>""#,
    r#"{app="foo"} | unpack"#,
    r#"{app="foo"} | json | level="error""#,
    r#"{app="foo"} | logfmt | status >= 500 and duration > 250ms or size > 20MB"#,
    r#"{app="foo"} | logfmt | (status >= 500 or status == 429), level=~"err.*" latency <= 1m30s"#,
    r#"{app="foo"} | logfmt | status != 200 | x < 0.5 | y = 3 | z > -1.5"#,
    r#"{app="foo"} | json | __error__="""#,
    r#"{app="foo"} | json | __error__!="" | drop __error__, __error_details__"#,
    r#"{app="foo"} | logfmt | addr = ip("10.0.0.0/8") | peer != ip("::1")"#,
    r#"{app="foo"} | line_format "{{.level}} {{.msg | upper}}""#,
    r#"{app="foo"} | label_format new=old, other="{{.x}}-{{.y}}""#,
    r#"{app="foo"} | decolorize"#,
    r#"{app="foo"} | drop a, b="v", c=~"re.*", d!="x""#,
    r#"{app="foo"} | keep a, b"#,
    r#"{app="foo"} | trace_id="abc""#,
    "{app=\"foo\"}\n  |= \"x\" # a comment\n  | json",
];

const METRIC_QUERIES: &[&str] = &[
    r#"count_over_time({app="foo"}[5m])"#,
    r#"rate({app="foo"} |= "error" [1m])"#,
    r#"bytes_over_time({app="foo"}[1h30m] offset 1d)"#,
    r#"bytes_rate({app="foo"} | json [5m])"#,
    r#"absent_over_time({app="foo"}[1w])"#,
    r#"count_over_time({app="foo"}[5m] | json)"#,
    r#"sum_over_time({app="foo"} | logfmt | unwrap bytes_sent [5m])"#,
    r#"avg_over_time({app="foo"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (host)"#,
    r#"max_over_time({app="foo"} | logfmt | unwrap duration_seconds(latency) [5m]) without (pod)"#,
    r#"quantile_over_time(0.99, {app="foo"} | json | unwrap bytes(size) [1m]) by (path)"#,
    r#"rate({app="foo"} | logfmt | unwrap requests [1m])"#,
    r#"rate_counter({app="foo"} | logfmt | unwrap requests [1m])"#,
    r#"first_over_time({app="foo"} | logfmt | unwrap x [1m])"#,
    r#"last_over_time({app="foo"} | logfmt | unwrap x [1m] offset 5m)"#,
    r#"stddev_over_time({app="foo"} | logfmt | unwrap x [1m])"#,
    r#"stdvar_over_time({app="foo"} | logfmt | unwrap x [1m])"#,
    r#"min_over_time({app="foo"} | logfmt | unwrap x [1m])"#,
    r#"sum by (level) (count_over_time({app="foo"} | json [5m]))"#,
    r#"sum(count_over_time({app="foo"}[5m])) by (level)"#,
    r#"sum without (pod) (rate({app="foo"}[5m]))"#,
    r#"topk(5, sum by (path) (rate({app="foo"}[5m])))"#,
    r#"bottomk by (a) (3, rate({app="foo"}[5m]))"#,
    r#"avg(rate({app="foo"}[5m]))"#,
    r#"count(rate({app="foo"}[5m]))"#,
    r#"stddev(rate({app="foo"}[5m])) + stdvar(rate({app="foo"}[5m]))"#,
    r#"sort(rate({app="foo"}[5m]))"#,
    r#"sort_desc(rate({app="foo"}[5m]))"#,
    r#"min(rate({app="foo"}[5m])) / max(rate({app="foo"}[5m]))"#,
    "vector(1)",
    "1 + 2 * 3 ^ 2 ^ 2",
    "(1 + 2) * 3",
    "-1 + +2",
    r#"label_replace(rate({app="foo"}[5m]), "dst", "$1", "src", "(.*)")"#,
    r#"sum by (a) (rate({app="foo"}[5m])) / on (a) group_left (b) sum by (a, b) (rate({app="bar"}[5m]))"#,
    r#"rate({app="foo"}[5m]) > bool 10"#,
    r#"rate({app="foo"}[5m]) > 10 and rate({app="bar"}[5m]) or vector(0) unless rate({app="baz"}[5m])"#,
    r#"rate({app="foo"}[5m]) * ignoring (pod) group_right rate({app="bar"}[5m])"#,
    r#"sum(rate({app="foo"}[5m])) % 2 - 1 >= 0.5"#,
    "1 == bool 1",
    r#"rate({app="foo"}[5m] |= "x")"#,
];

#[test]
fn accepts_and_round_trips_log_queries() {
    for q in LOG_QUERIES {
        assert!(matches!(ok(q), Expr::Log(_)), "{q}");
        round_trip(q);
    }
}

#[test]
fn accepts_and_round_trips_metric_queries() {
    for q in METRIC_QUERIES {
        assert!(matches!(ok(q), Expr::Metric(_)), "{q}");
        round_trip(q);
    }
}

#[test]
fn selectors_helper() {
    let e = ok(
        r#"sum(rate({a="1"}[5m])) / on (x) vector(1) + label_replace(count_over_time({b="2"}[1m]), "d", "$1", "s", "(.*)")"#,
    );
    let sels: Vec<String> = e.selectors().iter().map(|s| s.to_string()).collect();
    assert_eq!(sels, vec![r#"{a="1"}"#, r#"{b="2"}"#]);
    assert_eq!(ok(r#"{a="1"} | json"#).selectors().len(), 1);
}

#[test]
fn canonical_text() {
    let canon = |q: &str| ok(q).to_string();
    assert_eq!(
        canon(r#"sum(count_over_time({app="foo"}[5m])) by (level)"#),
        r#"sum by (level) (count_over_time({app="foo"}[5m]))"#
    );
    assert_eq!(
        canon("{app=`foo`}|=`x`|json|status>=500,level=\"error\""),
        r#"{app="foo"} |= "x" | json | status>=500 and level="error""#
    );
    assert_eq!(
        canon(
            r#"quantile_over_time(0.99,{app="foo"}|logfmt|unwrap duration(latency)[1h30m]offset 1d)by(host)"#
        ),
        r#"quantile_over_time(0.99, {app="foo"} | logfmt | unwrap duration(latency)[1h30m] offset 1d) by (host)"#
    );
    assert_eq!(canon("(1 + 2) * 3"), "(1 + 2) * 3");
    assert_eq!(canon("1 + (2 * 3)"), "1 + 2 * 3");
    assert_eq!(canon("1 - (2 - 3)"), "1 - (2 - 3)");
    assert_eq!(canon("(2 ^ 3) ^ 2"), "(2 ^ 3) ^ 2");
    assert_eq!(
        canon(r#"{a="b"} | size > 1KiB | d < 90s"#),
        r#"{a="b"} | size>1024B | d<1m30s"#
    );
    assert_eq!(
        canon(r#"{a="b"} | (x="1" or y="2") and z="3""#),
        r#"{a="b"} | (x="1" or y="2") and z="3""#
    );
}

#[test]
fn log_query_ast_shape() {
    let Expr::Log(sel) = ok(r#"{app="foo"} |= "a" or "b" | json | status >= 500, level="error""#)
    else {
        panic!("log query")
    };
    assert_eq!(sel.matchers.len(), 1);
    assert_eq!(
        sel.stages[0],
        Stage::LineFilter(LineFilterExpr {
            op: LineFilterOp::Contains,
            values: vec![
                LineFilterValue::Str("a".into()),
                LineFilterValue::Str("b".into())
            ]
        })
    );
    assert_eq!(sel.stages[1], Stage::Parser(ParserStage::Json(vec![])));
    let Stage::LabelFilter(LabelFilterExpr::And(a, b)) = &sel.stages[2] else {
        panic!("and filter: {:?}", sel.stages[2])
    };
    assert_eq!(
        **a,
        LabelFilterExpr::Number {
            name: "status".into(),
            op: CmpOp::Gte,
            value: 500.0
        }
    );
    assert!(matches!(&**b, LabelFilterExpr::Matcher(m) if m.name == "level" && m.value == "error"));
}

#[test]
fn precedence_and_associativity() {
    let Expr::Metric(MetricExpr::Binary(b)) = ok("1 + 2 * 3") else {
        panic!()
    };
    assert_eq!(b.op, BinOp::Add);
    let Expr::Metric(MetricExpr::Binary(b)) = ok("2 ^ 3 ^ 2") else {
        panic!()
    };
    assert_eq!(b.lhs, MetricExpr::Literal(2.0));
    assert!(matches!(&b.rhs, MetricExpr::Binary(r) if r.op == BinOp::Pow));
    let Expr::Metric(MetricExpr::Binary(b)) = ok("1 - 2 - 3") else {
        panic!()
    };
    assert!(matches!(&b.lhs, MetricExpr::Binary(l) if l.op == BinOp::Sub));
    let q = r#"vector(1) or vector(2) and vector(3)"#;
    let Expr::Metric(MetricExpr::Binary(b)) = ok(q) else {
        panic!()
    };
    assert_eq!(b.op, BinOp::Or);
    let Expr::Log(sel) = ok(r#"{a="b"} | x="1" or y="2" and z="3""#) else {
        panic!()
    };
    assert!(matches!(
        &sel.stages[0],
        Stage::LabelFilter(LabelFilterExpr::Or(..))
    ));
}

#[test]
fn range_aggregation_ast() {
    let Expr::Metric(MetricExpr::Range(r)) = ok(
        r#"quantile_over_time(0.99, {app="foo"} | json | unwrap duration(latency) | __error__="" [5m] offset 1h) by (host)"#,
    ) else {
        panic!()
    };
    assert_eq!(r.op, RangeOp::QuantileOverTime);
    assert_eq!(r.param, Some(0.99));
    assert_eq!(r.range_ns, 300_000_000_000);
    assert_eq!(r.offset_ns, Some(3_600_000_000_000));
    let u = r.unwrap.as_ref().expect("unwrap");
    assert_eq!(u.label, "latency");
    assert_eq!(u.conversion, UnwrapConversion::Duration);
    assert_eq!(u.post_filters.len(), 1);
    assert_eq!(
        r.grouping,
        Some(Grouping {
            without: false,
            labels: vec!["host".into()]
        })
    );
    // The range may also come before the pipeline.
    assert_eq!(
        ok(r#"count_over_time({app="foo"}[5m] |= "x")"#),
        ok(r#"count_over_time({app="foo"} |= "x" [5m])"#)
    );
}

#[test]
fn error_messages_match_loki() {
    assert_eq!(
        err(r#"{app="foo"} |= "x" foo"#),
        "parse error at line 1, col 20: syntax error: unexpected IDENTIFIER"
    );
    assert_eq!(
        err(r#"{app="foo" bar}"#),
        "parse error at line 1, col 12: syntax error: unexpected IDENTIFIER"
    );
    assert_eq!(
        err(r#"{app=~".*"}"#),
        r#"parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will"#
    );
    assert!(err(r#"{app=""}"#).contains("empty-compatible"));
    assert!(err(r#"{app="", b!="x"}"#).contains("empty-compatible"));
    assert_eq!(
        err("{}"),
        "parse error at line 1, col 2: syntax error: unexpected }"
    );
    assert_eq!(
        err(""),
        "parse error at line 1, col 1: syntax error: unexpected $end"
    );
    assert_eq!(
        err(r#"{app="foo"} | json | x >"#),
        "parse error at line 1, col 25: syntax error: unexpected $end"
    );
    assert_eq!(
        err("{app=\"foo\"}\n| json\n| unwrap x"),
        "parse error at line 3, col 3: syntax error: unexpected unwrap"
    );
    assert_eq!(
        err(r#"count_over_time({app="foo"} | json | unwrap x [5m])"#),
        "parse error : invalid aggregation count_over_time with unwrap"
    );
    assert_eq!(
        err(r#"sum_over_time({app="foo"}[5m])"#),
        "parse error : invalid aggregation sum_over_time without unwrap"
    );
    assert_eq!(
        err(r#"count_over_time({app="foo"})"#),
        "parse error at line 1, col 28: syntax error: unexpected )"
    );
    assert_eq!(
        err(r#"topk(sum(rate({app="foo"}[5m])))"#),
        "parse error : parameter required for operation topk"
    );
    assert_eq!(
        err(r#"sum(5, rate({app="foo"}[5m]))"#),
        "parse error : unsupported parameter for operation sum(5,"
    );
    assert_eq!(
        err(r#"count_over_time({app="foo"}[5m]) by (x)"#),
        "parse error : grouping not allowed for count_over_time aggregation"
    );
    assert!(err(r#"{app="foo"} |~ "(""#).contains("error parsing regexp"));
    assert!(err(r#"{app=~"("}"#).contains("error parsing regexp"));
    assert!(err(r#"{app="foo"} |= "unterminated"#).contains("literal not terminated"));
    assert!(err(r#"{app="foo"} |> "<a><b>""#).contains("consecutive capture"));
    assert!(err("1 > 2").contains("comparisons between scalars must use BOOL modifier"));
    assert!(err(r#"{app="foo"} + 1"#).contains("unexpected +"));
    assert!(err(r#"rate({app="foo"}[5x])"#).contains("invalid duration"));
    assert!(err(r#"{app="foo"} | json | status > "x""#).contains("unexpected STRING"));
    assert_eq!(
        err(r#"{app="foo"} | label_format a=b, a="{{.c}}""#),
        "parse error : multiple label name 'a' not allowed in a single format operation"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let q = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(err(&q).contains("nested too deeply"));
    let q = format!(
        r#"{{a="b"}} | {}x="1"{}"#,
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(err(&q).contains("nested too deeply"));
    let q = format!("{}1{}", "-(".repeat(5_000), ")".repeat(5_000));
    assert!(parse(&q).is_err());
}

#[test]
fn parse_error_display_format() {
    let e = ParseError {
        line: 1,
        col: 11,
        message: "syntax error: unexpected IDENTIFIER".into(),
    };
    assert_eq!(
        e.to_string(),
        "parse error at line 1, col 11: syntax error: unexpected IDENTIFIER"
    );
}

// ------------------------------------------------------------------ proptests

fn arb_label() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,5}".prop_filter("not a keyword", |s| {
        !matches!(
            s.as_str(),
            "and"
                | "or"
                | "unless"
                | "by"
                | "without"
                | "offset"
                | "bool"
                | "on"
                | "ignoring"
                | "ip"
                | "json"
                | "logfmt"
                | "regexp"
                | "pattern"
                | "unpack"
                | "unwrap"
                | "line_format"
                | "label_format"
                | "decolorize"
                | "drop"
                | "keep"
        )
    })
}

fn arb_cmp() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Neq),
        Just(CmpOp::Gt),
        Just(CmpOp::Gte),
        Just(CmpOp::Lt),
        Just(CmpOp::Lte)
    ]
}

fn arb_label_filter() -> impl Strategy<Value = LabelFilterExpr> {
    let leaf = prop_oneof![
        (arb_label(), "\\PC{0,6}").prop_map(|(n, v)| LabelFilterExpr::Matcher(
            inferscope_model::LabelMatcher::new(n, inferscope_model::MatchOp::Eq, v)
                .expect("eq matcher")
        )),
        (arb_label(), arb_cmp(), -1000.0f64..1000.0)
            .prop_map(|(name, op, value)| { LabelFilterExpr::Number { name, op, value } }),
        (arb_label(), arb_cmp(), 0i64..10_000_000_000_000)
            .prop_map(|(name, op, value)| { LabelFilterExpr::Duration { name, op, value } }),
        (arb_label(), arb_cmp(), 0u64..u64::MAX / 2)
            .prop_map(|(name, op, value)| { LabelFilterExpr::Bytes { name, op, value } }),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| LabelFilterExpr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| LabelFilterExpr::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn arb_stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        (
            prop_oneof![
                Just(LineFilterOp::Contains),
                Just(LineFilterOp::NotContains)
            ],
            proptest::collection::vec("\\PC{0,8}", 1..3)
        )
            .prop_map(|(op, vs)| Stage::LineFilter(LineFilterExpr {
                op,
                values: vs.into_iter().map(LineFilterValue::Str).collect()
            })),
        Just(Stage::Parser(ParserStage::Json(vec![]))),
        (any::<bool>(), any::<bool>()).prop_map(|(strict, keep_empty)| Stage::Parser(
            ParserStage::Logfmt {
                strict,
                keep_empty,
                extractions: vec![]
            }
        )),
        (arb_label(), "[a-z.\\[\\]0-9]{1,8}").prop_map(|(label, p)| Stage::Parser(
            ParserStage::Json(vec![LabelExtraction {
                label,
                expr: Some(p)
            }])
        )),
        arb_label_filter().prop_map(Stage::LabelFilter),
        "\\PC{0,10}".prop_map(Stage::LineFormat),
        (arb_label(), arb_label())
            .prop_map(|(dst, src)| Stage::LabelFormat(vec![LabelFormatOp::Rename { dst, src }])),
        Just(Stage::Decolorize),
        proptest::collection::vec(arb_label().prop_map(LabelSelection::Name), 1..3)
            .prop_map(Stage::Drop),
        proptest::collection::vec(arb_label().prop_map(LabelSelection::Name), 1..3)
            .prop_map(Stage::Keep),
    ]
}

fn arb_selector() -> impl Strategy<Value = LogSelector> {
    (
        arb_label(),
        "\\PC{1,8}",
        proptest::collection::vec(arb_stage(), 0..5).prop_filter(
            "`| drop a != \"x\"` is ambiguous (as in Loki): it reads as a drop matcher",
            |stages| {
                !stages.windows(2).any(|w| {
                    matches!(&w[0], Stage::Drop(s) | Stage::Keep(s)
                        if matches!(s.last(), Some(LabelSelection::Name(_))))
                        && matches!(&w[1], Stage::LineFilter(l)
                            if matches!(l.op, LineFilterOp::NotContains | LineFilterOp::NotMatch))
                })
            },
        ),
    )
        .prop_map(|(n, v, stages)| LogSelector {
            matchers: vec![
                inferscope_model::LabelMatcher::new(n, inferscope_model::MatchOp::Eq, v)
                    .expect("eq matcher"),
            ],
            stages,
        })
}

fn arb_metric() -> impl Strategy<Value = MetricExpr> {
    let leaf = prop_oneof![
        (0.0f64..1e6).prop_map(MetricExpr::Literal),
        (0.0f64..10.0).prop_map(MetricExpr::VectorLiteral),
        (
            arb_selector(),
            1i64..100_000_000_000_000,
            prop_oneof![
                Just(RangeOp::CountOverTime),
                Just(RangeOp::Rate),
                Just(RangeOp::BytesRate)
            ]
        )
            .prop_map(|(selector, range_ns, op)| MetricExpr::Range(Box::new(
                RangeAggregation {
                    op,
                    input: RangeInput::Logs,
                    param: None,
                    selector,
                    unwrap: None,
                    range_ns,
                    offset_ns: None,
                    grouping: None,
                }
            ))),
    ];
    let ops = prop_oneof![
        Just(BinOp::Add),
        Just(BinOp::Sub),
        Just(BinOp::Mul),
        Just(BinOp::Div),
        Just(BinOp::Mod),
        Just(BinOp::Pow),
        Just(BinOp::Eq),
        Just(BinOp::Gt),
        Just(BinOp::Lte),
        Just(BinOp::And),
        Just(BinOp::Or),
        Just(BinOp::Unless),
    ];
    leaf.prop_recursive(3, 10, 2, move |inner| {
        prop_oneof![
            (inner.clone(), inner.clone(), ops.clone()).prop_map(|(lhs, rhs, op)| {
                let lit = |e: &MetricExpr| matches!(e, MetricExpr::Literal(_));
                // Keep only type-correct expressions.
                let (lhs, rhs) = if op.is_set() {
                    (
                        if lit(&lhs) {
                            MetricExpr::VectorLiteral(1.0)
                        } else {
                            lhs
                        },
                        if lit(&rhs) {
                            MetricExpr::VectorLiteral(2.0)
                        } else {
                            rhs
                        },
                    )
                } else {
                    (lhs, rhs)
                };
                let return_bool = op.is_comparison() && lit(&lhs) && lit(&rhs);
                MetricExpr::Binary(Box::new(BinaryExpr {
                    op,
                    return_bool,
                    matching: None,
                    lhs,
                    rhs,
                }))
            }),
            (inner, any::<bool>()).prop_map(|(inner, by)| {
                let inner = if matches!(inner, MetricExpr::Literal(_)) {
                    MetricExpr::VectorLiteral(1.0)
                } else {
                    inner
                };
                MetricExpr::Vector(Box::new(VectorAggregation {
                    op: VectorOp::Sum,
                    param: None,
                    quantile: None,
                    grouping: by.then(|| Grouping {
                        without: false,
                        labels: vec!["a".into()],
                    }),
                    inner,
                }))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn display_parse_round_trips_log_asts(sel in arb_selector()) {
        let e = Expr::Log(sel);
        let text = e.to_string();
        let back = parse(&text);
        prop_assert!(back.is_ok(), "{text:?}: {:?}", back);
        prop_assert_eq!(back.expect("checked"), e);
    }

    #[test]
    fn display_parse_round_trips_metric_asts(m in arb_metric()) {
        let e = Expr::Metric(m);
        let text = e.to_string();
        let back = parse(&text);
        prop_assert!(back.is_ok(), "{text:?}: {:?}", back);
        prop_assert_eq!(back.expect("checked"), e);
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,80}") {
        let _ = parse(&s);
    }

    #[test]
    fn parser_never_panics_on_query_like_input(
        parts in proptest::collection::vec(prop_oneof![
            Just("{"), Just("}"), Just("app"), Just("=\"x\""), Just("|="), Just("|"), Just("json"),
            Just("logfmt"), Just("unwrap"), Just("["), Just("5m"), Just("]"), Just("("), Just(")"),
            Just("sum"), Just("by"), Just("rate"), Just("count_over_time"), Just(","), Just("1"),
            Just(">"), Just("and"), Just("or"), Just("\""), Just("`"), Just("topk"), Just("offset"),
            Just("line_format"), Just("ip"), Just("-"), Just("bool"), Just("on"), Just("group_left"),
        ], 0..25)
    ) {
        let q = parts.join(" ");
        if let Ok(e) = parse(&q) {
            let text = e.to_string();
            prop_assert_eq!(parse(&text).ok(), Some(e));
        }
    }
}
