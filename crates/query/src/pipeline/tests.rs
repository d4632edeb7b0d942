//! Pipeline tests: Loki documentation examples and edge cases.

use inferscope_model::Labels;

use crate::{Expr, LogSelector, Processed, parse};

fn selector(q: &str) -> LogSelector {
    match parse(q) {
        Ok(Expr::Log(s)) => s,
        other => panic!("{q:?} is not a log query: {other:?}"),
    }
}

fn run_full(
    q: &str,
    stream: &[(&str, &str)],
    meta: &[(&str, &str)],
    line: &str,
) -> Option<Processed> {
    let p = selector(q).pipeline().expect("pipeline compiles");
    let stream = Labels::from_pairs(stream.iter().copied());
    let meta: Vec<(String, String)> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    p.process(1_700_000_000_000_000_000, line, &stream, &meta)
}

fn run(q: &str, line: &str) -> Option<Processed> {
    run_full(q, &[("app", "foo")], &[], line)
}

fn labels(p: &Processed) -> Vec<(String, String)> {
    p.all_labels().into_pairs()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn noop_pipeline() {
    let p = selector(r#"{app="foo"}"#).pipeline().expect("compiles");
    assert!(p.is_noop());
    let r = run(r#"{app="foo"}"#, "hello").expect("kept");
    assert_eq!(r.line, "hello");
    assert_eq!(labels(&r), pairs(&[("app", "foo")]));
}

#[test]
fn line_filters_in_pipeline() {
    assert!(run(r#"{app="foo"} |= "err""#, "an error").is_some());
    assert!(run(r#"{app="foo"} |= "err""#, "all good").is_none());
    assert!(run(r#"{app="foo"} |= "a" or "b" != "c""#, "b").is_some());
    assert!(run(r#"{app="foo"} |= "a" or "b" != "c""#, "b c").is_none());
    assert!(run(r#"{app="foo"} |~ "(?i)ERROR""#, "an Error").is_some());
}

#[test]
fn json_docs_example() {
    let line = r#"{"protocol":"HTTP/2.0","servers":["129.0.1.1","10.2.1.3"],"request":{"time":"6.032","method":"GET","host":"foo.grafana.net","size":"55","headers":{"Accept":"*/*","User-Agent":"curl/7.68.0"}},"response":{"status":401,"size":"228","latency_seconds":"6.031"}}"#;
    let r = run(r#"{app="foo"} | json"#, line).expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("protocol", "HTTP/2.0"),
            ("request_time", "6.032"),
            ("request_method", "GET"),
            ("request_host", "foo.grafana.net"),
            ("request_size", "55"),
            ("request_headers_Accept", "*/*"),
            ("request_headers_User_Agent", "curl/7.68.0"),
            ("response_status", "401"),
            ("response_size", "228"),
            ("response_latency_seconds", "6.031"),
        ])
    );
    assert_eq!(r.line, line);
    assert_eq!(r.stream, Labels::from_pairs([("app", "foo")]));

    let r = run(
        r#"{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]", protocol"#,
        line,
    )
    .expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("first_server", "129.0.1.1"),
            ("ua", "curl/7.68.0"),
            ("protocol", "HTTP/2.0"),
        ])
    );
}

#[test]
fn json_collisions_and_errors() {
    let r = run(r#"{app="foo"} | json"#, r#"{"app":"bar","level":"info"}"#).expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[("app", "foo"), ("app_extracted", "bar"), ("level", "info")])
    );
    let r = run(r#"{app="foo"} | json"#, "not json").expect("errors are kept");
    let l = r.all_labels();
    assert_eq!(l.get("__error__"), Some("JSONParserErr"));
    assert!(l.get("__error_details__").is_some());
    assert!(run(r#"{app="foo"} | json | __error__="""#, "not json").is_none());
    assert!(run(r#"{app="foo"} | json | __error__!="""#, "not json").is_some());
    let r = run(
        r#"{app="foo"} | json | drop __error__, __error_details__"#,
        "not json",
    )
    .expect("kept");
    assert_eq!(labels(&r), pairs(&[("app", "foo")]));
    // Errors do not make other label filters drop the line.
    assert!(run(r#"{app="foo"} | json | level="error""#, "oops").is_some());
}

#[test]
fn json_then_label_filter() {
    let q = r#"{app="foo"} | json | level="error""#;
    assert!(run(q, r#"{"level":"error","msg":"x"}"#).is_some());
    assert!(run(q, r#"{"level":"info","msg":"x"}"#).is_none());
    assert!(run(q, r#"{"msg":"x"}"#).is_none());
}

#[test]
fn logfmt_docs_example() {
    let line = r#"at=info method=GET path=/ host=grafana.net fwd="124.133.124.161" service=8ms status=200"#;
    let r = run(r#"{app="foo"} | logfmt"#, line).expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("at", "info"),
            ("method", "GET"),
            ("path", "/"),
            ("host", "grafana.net"),
            ("fwd", "124.133.124.161"),
            ("service", "8ms"),
            ("status", "200"),
        ])
    );
    let r = run(r#"{app="foo"} | logfmt host, fwd_ip="fwd""#, line).expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("host", "grafana.net"),
            ("fwd_ip", "124.133.124.161")
        ])
    );
    let r = run(r#"{app="foo"} | logfmt --keep-empty"#, "a b=1").expect("kept");
    assert!(r.parsed.contains(&("a".to_string(), String::new())));
    let r = run(r#"{app="foo"} | logfmt --strict"#, "a=1 =2 b=3").expect("kept");
    assert_eq!(r.all_labels().get("__error__"), Some("LogfmtParserErr"));
    assert_eq!(r.all_labels().get("b"), None);
    let r = run(r#"{app="foo"} | logfmt"#, "a=1 =2 b=3").expect("kept");
    assert_eq!(r.all_labels().get("__error__"), None);
    assert_eq!(r.all_labels().get("b"), Some("3"));
}

#[test]
fn regexp_and_pattern_parsers() {
    let r = run(
        r#"{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+) \\((?P<status>\\d+?)\\) (?P<duration>.*)""#,
        "POST /api/prom/api/v1/query_range (200) 1.5s",
    )
    .expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("method", "POST"),
            ("path", "/api/prom/api/v1/query_range"),
            ("status", "200"),
            ("duration", "1.5s"),
        ])
    );
    let r = run(
        r#"{app="foo"} | pattern "<ip> - - <_> \"<method> <uri> <_>\" <status> <size> <_> \"<agent>\" <_>""#,
        r#"0.191.12.2 - - [10/Jun/2021:09:14:29 +0000] "GET /api/plugins/versioncheck HTTP/1.1" 200 2 "-" "Go-http-client/2.0" "13.76.247.102, 34.120.177.193" "TLSv1.2" "US" """#,
    )
    .expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("ip", "0.191.12.2"),
            ("method", "GET"),
            ("uri", "/api/plugins/versioncheck"),
            ("status", "200"),
            ("size", "2"),
            ("agent", "Go-http-client/2.0"),
        ])
    );
}

#[test]
fn unpack_replaces_line() {
    let r = run(
        r#"{app="foo"} | unpack"#,
        r#"{"container":"myapp","pod":"pod-3223f","_entry":"original log message"}"#,
    )
    .expect("kept");
    assert_eq!(r.line, "original log message");
    assert_eq!(
        labels(&r),
        pairs(&[("app", "foo"), ("container", "myapp"), ("pod", "pod-3223f")])
    );
    // Line filters after unpack see the unpacked line.
    assert!(
        run(
            r#"{app="foo"} | unpack |= "original""#,
            r#"{"_entry":"original"}"#
        )
        .is_some()
    );
    assert!(
        run(
            r#"{app="foo"} | unpack |= "_entry""#,
            r#"{"_entry":"original"}"#
        )
        .is_none()
    );
}

#[test]
fn numeric_duration_bytes_filters() {
    let q = r#"{app="foo"} | logfmt | status >= 500 and duration > 250ms"#;
    assert!(run(q, "status=503 duration=1s").is_some());
    assert!(run(q, "status=503 duration=100ms").is_none());
    assert!(run(q, "status=200 duration=1s").is_none());
    assert!(run(r#"{app="foo"} | logfmt | latency > 1m30s"#, "latency=2m").is_some());
    assert!(run(r#"{app="foo"} | logfmt | size > 20MB"#, "size=21MB").is_some());
    assert!(run(r#"{app="foo"} | logfmt | size > 20MB"#, "size=1KiB").is_none());
    assert!(run(r#"{app="foo"} | logfmt | x == 0.5"#, "x=0.50").is_some());
    assert!(run(r#"{app="foo"} | logfmt | x != 0.5"#, "x=0.5").is_none());
    assert!(run(r#"{app="foo"} | logfmt | x = 3"#, "x=3").is_some());
    // Missing label: numeric comparison fails.
    assert!(run(r#"{app="foo"} | logfmt | status > 1"#, "a=1").is_none());
    // Conversion failure: LabelFilterErr, line kept.
    let r = run(r#"{app="foo"} | logfmt | status > 1"#, "status=abc").expect("kept");
    assert_eq!(r.all_labels().get("__error__"), Some("LabelFilterErr"));
    assert!(r.all_labels().get("__error_details__").is_some());
    assert!(
        run(
            r#"{app="foo"} | logfmt | status > 1 | __error__="""#,
            "status=abc"
        )
        .is_none()
    );
}

#[test]
fn boolean_label_filters() {
    let q = r#"{app="foo"} | logfmt | (status >= 500 or status == 429), level=~"err.*""#;
    assert!(run(q, "status=429 level=error").is_some());
    assert!(run(q, "status=503 level=errors").is_some());
    assert!(run(q, "status=200 level=error").is_none());
    assert!(run(q, "status=503 level=info").is_none());
    let q = r#"{app="foo"} | logfmt | a="1" or b="2" and c="3""#;
    assert!(run(q, "a=1").is_some());
    assert!(run(q, "b=2 c=3").is_some());
    assert!(run(q, "b=2").is_none());
    // Regex label filters are anchored.
    assert!(run(r#"{app="foo"} | logfmt | level=~"err""#, "level=error").is_none());
    assert!(run(r#"{app="foo"} | logfmt | level!~"err.*""#, "level=info").is_some());
}

#[test]
fn structured_metadata_and_stream_labels_are_filterable() {
    let q = r#"{app="foo"} | trace_id="abc""#;
    assert!(run_full(q, &[("app", "foo")], &[("trace_id", "abc")], "x").is_some());
    assert!(run_full(q, &[("app", "foo")], &[("trace_id", "abd")], "x").is_none());
    assert!(run(r#"{app="foo"} | app="foo""#, "x").is_some());
    let r = run_full(
        r#"{app="foo"} | drop trace_id"#,
        &[("app", "foo")],
        &[("trace_id", "abc")],
        "x",
    )
    .expect("kept");
    assert!(r.structured_metadata.is_empty());
}

#[test]
fn ip_label_filter() {
    let q = r#"{app="foo"} | logfmt | addr = ip("192.168.0.0/16")"#;
    assert!(run(q, "addr=192.168.3.4").is_some());
    assert!(run(q, "addr=10.0.0.1").is_none());
    let q = r#"{app="foo"} | logfmt | addr != ip("192.168.0.0/16")"#;
    assert!(run(q, "addr=10.0.0.1").is_some());
}

#[test]
fn line_format_examples() {
    let r = run(
        r#"{app="foo"} | logfmt | line_format "{{.level}} {{.msg | upper}}""#,
        r#"level=info msg="hello world""#,
    )
    .expect("kept");
    assert_eq!(r.line, "info HELLO WORLD");
    let r = run(
        r#"{app="foo"} | logfmt | line_format "{{ if eq .status \"200\" }}OK{{ else }}{{.status}}{{ end }} {{ __line__ }}""#,
        "status=200",
    )
    .expect("kept");
    assert_eq!(r.line, "OK status=200");
    let r = run(
        r#"{app="foo"} | line_format "{{ __timestamp__ | unixEpoch }}""#,
        "x",
    )
    .expect("kept");
    assert_eq!(r.line, "1700000000");
    // Line filters after line_format see the new line.
    assert!(run(r#"{app="foo"} | line_format "hello" |= "hello""#, "x").is_some());
    let err = selector(r#"{app="foo"} | line_format "{{ nope .x }}""#).pipeline();
    assert!(err.is_err());
    let r = run(r#"{app="foo"} | line_format "{{ div 1 0 }}""#, "x").expect("kept");
    assert_eq!(r.line, "x");
    assert_eq!(r.all_labels().get("__error__"), Some("TemplateFormatErr"));
}

#[test]
fn label_format_examples() {
    let r = run(
        r#"{app="foo"} | logfmt | label_format new=old, other="{{.x}}-{{.y}}""#,
        "old=1 x=a y=b",
    )
    .expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("new", "1"),
            ("other", "a-b"),
            ("x", "a"),
            ("y", "b")
        ])
    );
    // Renaming a stream label keeps it a stream label.
    let r = run(r#"{app="foo"} | label_format app="{{.app}}-x""#, "l").expect("kept");
    assert_eq!(r.stream, Labels::from_pairs([("app", "foo-x")]));
    let r = run(r#"{app="foo"} | label_format application=app"#, "l").expect("kept");
    assert_eq!(labels(&r), pairs(&[("application", "foo")]));
}

#[test]
fn drop_and_keep() {
    let line = "a=1 b=2 c=3 level=debug";
    let r = run(r#"{app="foo"} | logfmt | drop a, b="2", c="9""#, line).expect("kept");
    assert_eq!(
        labels(&r),
        pairs(&[("app", "foo"), ("c", "3"), ("level", "debug")])
    );
    let r = run(r#"{app="foo"} | logfmt | drop level=~"de.*""#, line).expect("kept");
    assert_eq!(r.all_labels().get("level"), None);
    let r = run(r#"{app="foo"} | logfmt | keep a, app"#, line).expect("kept");
    assert_eq!(labels(&r), pairs(&[("app", "foo"), ("a", "1")]));
    let r = run(r#"{app="foo"} | logfmt | keep a, c="9""#, line).expect("kept");
    assert_eq!(labels(&r), pairs(&[("a", "1")]));
    assert!(r.stream.is_empty());
}

#[test]
fn decolorize_stage() {
    let r = run(r#"{app="foo"} | decolorize"#, "\x1b[31mred\x1b[0m text").expect("kept");
    assert_eq!(r.line, "red text");
}

#[test]
fn prefilter_covers_raw_line_filters_only() {
    let sel =
        selector(r#"{app="foo"} |= "a" | json | level="x" != "b" | line_format "{{.x}}" |= "c""#);
    let f = sel.line_prefilter().expect("prefilter");
    assert_eq!(f.len(), 2);
    assert!(f.matches(b"a") && !f.matches(b"a b"));
    assert!(selector(r#"{app="foo"} | json"#).line_prefilter().is_none());
    let rest = sel.pipeline_after_prefilter().expect("compiles");
    assert!(!rest.is_noop());
    // The residual pipeline no longer checks "a".
    let r = rest.process(0, r#"{"level":"x","x":"c"}"#, &Labels::empty(), &[]);
    assert_eq!(r.map(|p| p.line).as_deref(), Some("c"));
}

#[test]
fn pipeline_compile_errors() {
    assert!(selector(r#"{app="foo"} | regexp "(""#).pipeline().is_err());
    assert!(
        selector(r#"{app="foo"} | regexp "(a)""#)
            .pipeline()
            .is_err()
    );
    assert!(
        selector(r#"{app="foo"} | pattern "<_> x""#)
            .pipeline()
            .is_err()
    );
    assert!(
        selector(r#"{app="foo"} | json a="b..c""#)
            .pipeline()
            .is_err()
    );
    assert!(
        selector(r#"{app="foo"} | label_format a="{{ .x""#)
            .pipeline()
            .is_err()
    );
}

#[test]
fn pipeline_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<crate::Pipeline>();
    check::<crate::LineFilter>();
}

#[test]
fn required_label_hints_limit_extraction() {
    let sel = selector(r#"{app="foo"} | json | status >= 500 | line_format "{{.msg}}""#);
    let p = sel
        .pipeline_with_required_labels(&["level"])
        .expect("compiles");
    let r = p
        .process(
            0,
            r#"{"level":"error","status":503,"msg":"boom","extra":{"a":1},"app":"x"}"#,
            &Labels::from_pairs([("app", "foo")]),
            &[],
        )
        .expect("kept");
    assert_eq!(r.line, "boom");
    assert_eq!(
        labels(&r),
        pairs(&[
            ("app", "foo"),
            ("level", "error"),
            ("msg", "boom"),
            ("status", "503")
        ])
    );
    let p = sel
        .pipeline_with_required_labels(&["app_extracted"])
        .expect("compiles");
    let r = p
        .process(
            0,
            r#"{"status":503,"app":"x"}"#,
            &Labels::from_pairs([("app", "foo")]),
            &[],
        )
        .expect("kept");
    assert_eq!(r.all_labels().get("app_extracted"), Some("x"));
    let p = selector(r#"{app="foo"} | logfmt"#)
        .pipeline_with_required_labels(&["a"])
        .expect("compiles");
    let r = p
        .process(0, "a=1 b=2", &Labels::empty(), &[])
        .expect("kept");
    assert_eq!(r.parsed, vec![("a".to_string(), "1".to_string())]);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const QUERIES: &[&str] = &[
        r#"{app="foo"} | json | level="error" | line_format "{{.msg | upper}} {{ __line__ }}""#,
        r#"{app="foo"} | logfmt --strict | status >= 500 or latency > 1s | drop a"#,
        r#"{app="foo"} | logfmt | label_format x="{{ .a }}{{ .b | default \"z\" }}", y=a | keep x, y"#,
        r#"{app="foo"} | pattern "<a> <b> <_>" | a=~"[0-9]+" | decolorize"#,
        r#"{app="foo"} | regexp "(?P<first>\\w+)" | unpack | json x="a[0].b""#,
        r#"{app="foo"} |= "x" or "y" |~ "a.c" !> "<_> z" | addr = ip("10.0.0.0/8")"#,
    ];

    proptest! {
        #[test]
        fn pipelines_never_panic(line in "\\PC{0,80}", i in 0..QUERIES.len()) {
            let p = selector(QUERIES[i]).pipeline().expect("compiles");
            let meta = vec![("trace_id".to_string(), "t".to_string())];
            let _ = p.process(0, &line, &Labels::from_pairs([("app", "foo"), ("a", "x")]), &meta);
        }

        #[test]
        fn templates_never_panic(src in "(\\{\\{|\\}\\}|[ .a-z|()\"0-9-]|if|else|end|printf|%|upper){0,30}") {
            if let Ok(t) = super::super::template::Template::compile(&src) {
                struct D;
                impl super::super::template::TemplateData for D {
                    fn label(&self, _: &str) -> Option<&str> { Some("12") }
                    fn line(&self) -> &str { "line" }
                    fn timestamp_ns(&self) -> i64 { 1 }
                }
                let mut out = String::new();
                let _ = t.render(&D, &mut out);
            }
        }
    }
}
