//! PromQL conformance: datasets and expected values taken from Prometheus' own
//! `promql/promqltest/testdata/functions.test` and `histograms.test` (cited per test,
//! `load 5m` series written as `(start, step, values)`), plus cases computed by hand
//! from Prometheus semantics. Queries go through [`crate::promql::parse`] and the
//! shared engine, with the in-memory [`Mem`] source serving series selectors.

use inferscope_model::Labels;

use super::tests::{Entry, Mem, Stream};
use super::*;

const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60;

/// A series loaded like promqltest's `load <step>`: `values[i]` at `i * step_s`
/// seconds; `None` is a missing sample (`_`).
fn series(labels: &str, step_s: i64, values: &[Option<f64>]) -> Stream {
    Stream {
        labels: Labels::parse(labels).expect("test labels"),
        entries: values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.map(|val| Entry {
                    ts: i as i64 * step_s * SEC,
                    bytes: 0.0,
                    val,
                })
            })
            .collect(),
    }
}

/// promqltest's `a+bxn`: n+1 values a, a+b, …, a+n·b.
fn ramp(a: f64, b: f64, n: usize) -> Vec<Option<f64>> {
    (0..=n).map(|i| Some(a + b * i as f64)).collect()
}

fn vals(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|&x| Some(x)).collect()
}

fn cat(a: Vec<Option<f64>>, b: Vec<Option<f64>>) -> Vec<Option<f64>> {
    a.into_iter().chain(b).collect()
}

fn eval_at(src: &Mem, q: &str, t_s: i64) -> Result<Value, String> {
    let expr = crate::promql::parse(q).map_err(|e| e.to_string())?;
    let params = EvalParams {
        start_ns: t_s * SEC,
        end_ns: t_s * SEC,
        step_ns: SEC,
        max_series: 1000,
    };
    evaluate(&expr, &params, src).map_err(|e| e.to_string())
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Instant query at `t_s`: the vector must equal `want` (in label order).
#[track_caller]
fn instant(src: &Mem, q: &str, t_s: i64, want: &[(&str, f64)]) {
    let got = match eval_at(src, q, t_s) {
        Ok(Value::Vector(v)) => v,
        other => panic!("{q}: expected a vector, got {other:?}"),
    };
    let got: Vec<(String, f64)> = got
        .into_iter()
        .map(|s| (s.labels.to_string(), s.sample.value))
        .collect();
    let mut want: Vec<(String, f64)> = want
        .iter()
        .map(|(l, v)| (Labels::parse(l).expect("labels").to_string(), *v))
        .collect();
    // Instant vectors come sorted by labels unless sorted by value.
    if !["sort", "topk", "bottomk"].iter().any(|p| q.starts_with(p)) {
        want.sort_by(|a, b| {
            Labels::parse(&a.0)
                .expect("labels")
                .cmp(&Labels::parse(&b.0).expect("labels"))
        });
    }
    assert_eq!(got.len(), want.len(), "{q}: got {got:?}");
    for ((gl, gv), (wl, wv)) in got.iter().zip(&want) {
        assert_eq!(gl, wl, "{q}: got {got:?}");
        assert!(close(*gv, *wv), "{q}: {gl}: got {gv}, want {wv}");
    }
}

#[track_caller]
fn fails(src: &Mem, q: &str, t_s: i64) -> String {
    match eval_at(src, q, t_s) {
        Err(e) => e,
        Ok(v) => panic!("{q}: expected an error, got {v:?}"),
    }
}

// ------------------------------------------------------------ functions.test

#[test]
fn increase_extrapolation_and_zero_cutoff() {
    // functions.test "Tests for increase()".
    let src = Mem {
        streams: vec![
            series(
                r#"{__name__="http_requests_total", path="/foo"}"#,
                5 * MIN,
                &ramp(0.0, 10.0, 10),
            ),
            series(
                r#"{__name__="http_requests_total", path="/bar"}"#,
                5 * MIN,
                &cat(ramp(0.0, 18.0, 5), ramp(0.0, 18.0, 5)),
            ),
            series(
                r#"{__name__="http_requests_total", path="/dings"}"#,
                5 * MIN,
                &ramp(10.0, 10.0, 10),
            ),
            series(
                r#"{__name__="http_requests_total", path="/bumms"}"#,
                5 * MIN,
                &ramp(1.0, 10.0, 10),
            ),
        ],
    };
    instant(
        &src,
        "increase(http_requests_total[50m])",
        50 * MIN,
        &[
            (r#"{path="/foo"}"#, 100.0),
            (r#"{path="/bar"}"#, 160.0),
            (r#"{path="/dings"}"#, 100.0),
            (r#"{path="/bumms"}"#, 100.0),
        ],
    );
    instant(
        &src,
        "increase(http_requests_total[100m])",
        50 * MIN,
        &[
            (r#"{path="/foo"}"#, 100.0),
            (r#"{path="/bar"}"#, 162.0),
            (r#"{path="/dings"}"#, 105.0),
            (r#"{path="/bumms"}"#, 101.0),
        ],
    );
}

#[test]
fn increase_counter_reset() {
    // functions.test "Test for increase() with counter reset".
    let src = Mem {
        streams: vec![series(
            r#"{__name__="http_requests_total", path="/foo"}"#,
            5 * MIN,
            &vals(&[0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0]),
        )],
    };
    instant(
        &src,
        "increase(http_requests_total[30m])",
        30 * MIN,
        &[(r#"{path="/foo"}"#, 7.0)],
    );
}

#[test]
fn rate_resets_windows_and_offset() {
    // functions.test "Tests for rate()".
    let src = Mem {
        streams: vec![
            series(
                r#"{__name__="testcounter_reset_middle_total"}"#,
                5 * MIN,
                &cat(ramp(0.0, 27.0, 4), ramp(0.0, 27.0, 5)),
            ),
            series(
                r#"{__name__="testcounter_reset_end_total"}"#,
                5 * MIN,
                &cat(ramp(0.0, 10.0, 9), vals(&[0.0, 10.0])),
            ),
            series(
                r#"{__name__="calculate_rate_offset_total", x="a"}"#,
                5 * MIN,
                &ramp(0.0, 10.0, 10),
            ),
            series(
                r#"{__name__="calculate_rate_offset_total", x="b"}"#,
                5 * MIN,
                &ramp(0.0, 20.0, 10),
            ),
            series(
                r#"{__name__="calculate_rate_window_total"}"#,
                5 * MIN,
                &ramp(0.0, 80.0, 10),
            ),
        ],
    };
    instant(
        &src,
        "rate(testcounter_reset_middle_total[50m])",
        50 * MIN,
        &[("{}", 0.08)],
    );
    instant(&src, "rate(testcounter_reset_end_total[5m])", 50 * MIN, &[]);
    instant(
        &src,
        "rate(testcounter_reset_end_total[6m])",
        50 * MIN,
        &[("{}", 0.0)],
    );
    instant(
        &src,
        "rate(calculate_rate_window_total[50m])",
        50 * MIN,
        &[("{}", 0.26666666666666666)],
    );
    instant(
        &src,
        "rate(calculate_rate_offset_total[10m] offset 5m)",
        50 * MIN,
        &[
            (r#"{x="a"}"#, 0.03333333333333333),
            (r#"{x="b"}"#, 0.06666666666666667),
        ],
    );
}

#[test]
fn rate_zero_cutoff_irregular_start() {
    // functions.test: `load 4m` testcounter_zero_cutoff_total.
    let streams = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            series(
                &format!(r#"{{__name__="testcounter_zero_cutoff_total", start="{i}m"}}"#),
                4 * MIN,
                &ramp(a, 240.0, 10),
            )
        })
        .collect();
    let src = Mem { streams };
    let want_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
    let want: Vec<(String, f64)> = want_10m
        .iter()
        .enumerate()
        .map(|(i, v)| (format!(r#"{{start="{i}m"}}"#), *v))
        .collect();
    let want: Vec<(&str, f64)> = want.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    instant(
        &src,
        "rate(testcounter_zero_cutoff_total[20m])",
        10 * MIN,
        &want,
    );
    let all_06: Vec<(&str, f64)> = want.iter().map(|(l, _)| (*l, 0.6)).collect();
    instant(
        &src,
        "rate(testcounter_zero_cutoff_total[20m])",
        50 * MIN,
        &all_06,
    );
}

#[test]
fn irate_with_counter_reset() {
    // functions.test "Tests for irate()".
    let src = Mem {
        streams: vec![
            series(
                r#"{__name__="http_requests_total", path="/foo"}"#,
                5 * MIN,
                &ramp(0.0, 10.0, 10),
            ),
            series(
                r#"{__name__="http_requests_total", path="/bar"}"#,
                5 * MIN,
                &cat(ramp(0.0, 10.0, 5), ramp(0.0, 10.0, 5)),
            ),
        ],
    };
    let third = 0.03333333333333333;
    instant(
        &src,
        "irate(http_requests_total[50m])",
        50 * MIN,
        &[(r#"{path="/foo"}"#, third), (r#"{path="/bar"}"#, third)],
    );
    instant(
        &src,
        "irate(http_requests_total[50m])",
        30 * MIN,
        &[(r#"{path="/foo"}"#, third), (r#"{path="/bar"}"#, 0.0)],
    );
}

#[test]
fn delta_and_idelta() {
    // functions.test "Tests for delta()" and "Tests for idelta()".
    let src = Mem {
        streams: vec![
            series(
                r#"{__name__="d", path="/foo"}"#,
                5 * MIN,
                &vals(&[0.0, 50.0, 100.0, 150.0, 200.0]),
            ),
            series(
                r#"{__name__="d", path="/bar"}"#,
                5 * MIN,
                &vals(&[200.0, 150.0, 100.0, 50.0, 0.0]),
            ),
            series(
                r#"{__name__="i", path="/foo"}"#,
                5 * MIN,
                &vals(&[0.0, 50.0, 100.0, 150.0]),
            ),
            series(
                r#"{__name__="i", path="/bar"}"#,
                5 * MIN,
                &vals(&[0.0, 50.0, 100.0, 50.0]),
            ),
        ],
    };
    instant(
        &src,
        "delta(d[20m])",
        20 * MIN,
        &[(r#"{path="/foo"}"#, 200.0), (r#"{path="/bar"}"#, -200.0)],
    );
    instant(
        &src,
        "idelta(i[20m])",
        20 * MIN,
        &[(r#"{path="/foo"}"#, 50.0), (r#"{path="/bar"}"#, -50.0)],
    );
}

fn resets_changes_data() -> Mem {
    Mem {
        streams: vec![
            series(
                r#"{__name__="http_requests", path="/foo"}"#,
                5 * MIN,
                &vals(&[1.0, 2.0, 3.0, 0.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0]),
            ),
            series(
                r#"{__name__="http_requests", path="/bar"}"#,
                5 * MIN,
                &vals(&[1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
            ),
            series(
                r#"{__name__="http_requests", path="/biz"}"#,
                5 * MIN,
                &vals(&[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
            ),
        ],
    }
}

#[test]
fn resets_and_changes() {
    // functions.test "Tests for resets()" / "Tests for changes()" (at 50m the last
    // sample is the one at 45m).
    let src = resets_changes_data();
    let p = |f: f64, b: f64, z: f64| {
        vec![
            (r#"{path="/foo"}"#, f),
            (r#"{path="/bar"}"#, b),
            (r#"{path="/biz"}"#, z),
        ]
    };
    instant(&src, "resets(http_requests[5m])", 50 * MIN, &[]);
    instant(
        &src,
        "resets(http_requests[20m])",
        50 * MIN,
        &p(1.0, 0.0, 0.0),
    );
    instant(
        &src,
        "resets(http_requests[32m])",
        50 * MIN,
        &p(2.0, 1.0, 0.0),
    );
    instant(
        &src,
        "resets(http_requests[50m])",
        50 * MIN,
        &p(3.0, 1.0, 0.0),
    );
    instant(
        &src,
        "changes(http_requests[20m])",
        50 * MIN,
        &p(2.0, 2.0, 0.0),
    );
    instant(
        &src,
        "changes(http_requests[30m])",
        50 * MIN,
        &p(3.0, 4.0, 0.0),
    );
    instant(
        &src,
        "changes((http_requests[50m]))",
        50 * MIN,
        &p(7.0, 8.0, 1.0),
    );
}

#[test]
fn over_time_functions() {
    let src = resets_changes_data();
    // Window (30m, 50m]: samples at 35m, 40m, 45m = /foo 1, 2, 0.
    let q = |f: &str| format!("{f}(http_requests{{path=\"/foo\"}}[20m])");
    instant(
        &src,
        &q("sum_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, 3.0)],
    );
    instant(
        &src,
        &q("avg_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, 1.0)],
    );
    instant(
        &src,
        &q("min_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, 0.0)],
    );
    instant(
        &src,
        &q("max_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, 2.0)],
    );
    instant(
        &src,
        &q("count_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, 3.0)],
    );
    instant(
        &src,
        &q("present_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, 1.0)],
    );
    // last_over_time keeps the metric name.
    instant(
        &src,
        &q("last_over_time"),
        50 * MIN,
        &[(r#"{__name__="http_requests", path="/foo"}"#, 0.0)],
    );
    instant(
        &src,
        "quantile_over_time(0.5, http_requests{path=\"/foo\"}[20m])",
        50 * MIN,
        &[(r#"{path="/foo"}"#, 1.0)],
    );
    // Population variance of 1, 2, 0: mean 1, variance (0 + 1 + 1) / 3.
    instant(
        &src,
        &q("stdvar_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, 2.0 / 3.0)],
    );
    instant(
        &src,
        &q("stddev_over_time"),
        50 * MIN,
        &[(r#"{path="/foo"}"#, (2.0f64 / 3.0).sqrt())],
    );
}

// ------------------------------------------------------------ instant selectors

fn gauges() -> Mem {
    // Samples at 0s and 60s; `other` has the same labels under another name.
    Mem {
        streams: vec![
            series(r#"{__name__="g", job="a"}"#, 60, &vals(&[1.0, 2.0])),
            series(r#"{__name__="g", job="b"}"#, 60, &vals(&[10.0, 20.0])),
            series(r#"{__name__="other", job="a"}"#, 60, &vals(&[4.0, 8.0])),
        ],
    }
}

#[test]
fn instant_selector_lookback_and_staleness() {
    let src = gauges();
    let both = [
        (r#"{__name__="g", job="a"}"#, 2.0),
        (r#"{__name__="g", job="b"}"#, 20.0),
    ];
    instant(&src, "g", 60, &both);
    // The latest sample up to 5m old is used ...
    instant(&src, "g", 60 + 299, &both);
    // ... and the window (t - 5m, t] is open on the left: gone after 5m.
    instant(&src, "g", 60 + 300, &[]);
    // Between samples the older one is current.
    instant(
        &src,
        r#"g{job="a"}"#,
        59,
        &[(r#"{__name__="g", job="a"}"#, 1.0)],
    );
}

#[test]
fn instant_selector_offset() {
    let src = gauges();
    instant(
        &src,
        r#"g{job="a"} offset 1m"#,
        90,
        &[(r#"{__name__="g", job="a"}"#, 1.0)],
    );
    instant(
        &src,
        r#"g{job="a"} offset 1m"#,
        120,
        &[(r#"{__name__="g", job="a"}"#, 2.0)],
    );
    instant(&src, r#"g{job="a"} offset 10m"#, 120, &[]);
}

#[test]
fn range_query_of_instant_selector() {
    let src = gauges();
    let expr = crate::promql::parse(r#"g{job="a"}"#).expect("parse");
    let params = EvalParams {
        start_ns: 0,
        end_ns: 420 * SEC,
        step_ns: 60 * SEC,
        max_series: 100,
    };
    let Ok(Value::Matrix(m)) = evaluate(&expr, &params, &src) else {
        panic!("expected a matrix");
    };
    assert_eq!(m.len(), 1);
    let pts: Vec<(i64, f64)> = m[0]
        .samples
        .iter()
        .map(|s| (s.timestamp_ns / SEC, s.value))
        .collect();
    // Sample at 60s is visible until 360s (exclusive).
    assert_eq!(
        pts,
        vec![
            (0, 1.0),
            (60, 2.0),
            (120, 2.0),
            (180, 2.0),
            (240, 2.0),
            (300, 2.0)
        ]
    );
}

// ------------------------------------------------------------ operators

#[test]
fn arithmetic_drops_name_comparison_keeps_it() {
    let src = gauges();
    instant(
        &src,
        "g * 2",
        60,
        &[(r#"{job="a"}"#, 4.0), (r#"{job="b"}"#, 40.0)],
    );
    instant(
        &src,
        "-g",
        60,
        &[(r#"{job="a"}"#, -2.0), (r#"{job="b"}"#, -20.0)],
    );
    instant(&src, "g > 5", 60, &[(r#"{__name__="g", job="b"}"#, 20.0)]);
    instant(
        &src,
        "g > bool 5",
        60,
        &[(r#"{job="a"}"#, 0.0), (r#"{job="b"}"#, 1.0)],
    );
    // Vectors match ignoring the metric name.
    instant(&src, "other / g", 60, &[(r#"{job="a"}"#, 4.0)]);
    instant(
        &src,
        "g < other",
        60,
        &[(r#"{__name__="g", job="a"}"#, 2.0)],
    );
    instant(
        &src,
        "g == bool on(job) other",
        60,
        &[(r#"{job="a"}"#, 0.0)],
    );
    instant(
        &src,
        "g and other",
        60,
        &[(r#"{__name__="g", job="a"}"#, 2.0)],
    );
    instant(
        &src,
        "g unless other",
        60,
        &[(r#"{__name__="g", job="b"}"#, 20.0)],
    );
    instant(
        &src,
        "other or g",
        60,
        &[
            (r#"{__name__="other", job="a"}"#, 8.0),
            (r#"{__name__="g", job="b"}"#, 20.0),
        ],
    );
}

#[test]
fn scalar_expressions_and_functions() {
    let src = gauges();
    let scalar = |q: &str, t: i64| match eval_at(&src, q, t) {
        Ok(Value::Scalar(s)) => {
            assert_eq!(s.timestamp_ns, t * SEC);
            s.value
        }
        other => panic!("{q}: expected a scalar, got {other:?}"),
    };
    assert_eq!(scalar("1 + 2 * 3", 60), 7.0);
    assert_eq!(scalar("time() - 60", 90), 30.0);
    assert_eq!(scalar(r#"scalar(g{job="b"})"#, 60), 20.0);
    // scalar() of more than one element is NaN.
    assert!(scalar("scalar(g)", 60).is_nan());
    instant(&src, "vector(3)", 60, &[("{}", 3.0)]);
    instant(&src, "vector(time())", 60, &[("{}", 60.0)]);
    instant(
        &src,
        "clamp_max(g, 5)",
        60,
        &[(r#"{job="a"}"#, 2.0), (r#"{job="b"}"#, 5.0)],
    );
    instant(
        &src,
        "clamp_min(g, 5)",
        60,
        &[(r#"{job="a"}"#, 5.0), (r#"{job="b"}"#, 20.0)],
    );
    instant(
        &src,
        "clamp(g, 3, 15)",
        60,
        &[(r#"{job="a"}"#, 3.0), (r#"{job="b"}"#, 15.0)],
    );
    instant(&src, "clamp(g, 5, 1)", 60, &[]);
    instant(
        &src,
        r#"sqrt(g{job="a"} * 8)"#,
        60,
        &[(r#"{job="a"}"#, 4.0)],
    );
    instant(
        &src,
        "round(g / 3)",
        60,
        &[(r#"{job="a"}"#, 1.0), (r#"{job="b"}"#, 7.0)],
    );
    instant(
        &src,
        "round(g, 5)",
        60,
        &[(r#"{job="a"}"#, 0.0), (r#"{job="b"}"#, 20.0)],
    );
    instant(
        &src,
        "log10(g)",
        60,
        &[
            (r#"{job="a"}"#, 2f64.log10()),
            (r#"{job="b"}"#, 20f64.log10()),
        ],
    );
    instant(&src, r#"abs(-g{job="b"})"#, 60, &[(r#"{job="b"}"#, 20.0)]);
    instant(
        &src,
        r#"label_replace(g, "team", "t-$1", "job", "(.*)")"#,
        60,
        &[
            (r#"{__name__="g", job="a", team="t-a"}"#, 2.0),
            (r#"{__name__="g", job="b", team="t-b"}"#, 20.0),
        ],
    );
    instant(
        &src,
        "sort_desc(g)",
        60,
        &[
            (r#"{__name__="g", job="b"}"#, 20.0),
            (r#"{__name__="g", job="a"}"#, 2.0),
        ],
    );
    // Dropping the name makes g{job="a"} and other{job="a"} collide.
    let e = fails(&src, r#"abs({job="a"})"#, 60);
    assert!(e.contains("same labelset"), "{e}");
}

// ------------------------------------------------------------ aggregations

fn requests() -> Mem {
    let mk = |l: &str, v: f64| series(&format!(r#"{{__name__="req", {l}}}"#), 60, &vals(&[v]));
    Mem {
        streams: vec![
            mk(r#"job="api", instance="1", code="200""#, 10.0),
            mk(r#"job="api", instance="2", code="200""#, 30.0),
            mk(r#"job="api", instance="1", code="500""#, 2.0),
            mk(r#"job="web", instance="1", code="200""#, 5.0),
        ],
    }
}

#[test]
fn aggregations_by_without_topk_quantile() {
    let src = requests();
    instant(&src, "sum(req)", 0, &[("{}", 47.0)]);
    instant(
        &src,
        "sum by (job) (req)",
        0,
        &[(r#"{job="api"}"#, 42.0), (r#"{job="web"}"#, 5.0)],
    );
    // `without` also drops the metric name.
    instant(
        &src,
        "sum without (instance) (req)",
        0,
        &[
            (r#"{code="200", job="api"}"#, 40.0),
            (r#"{code="500", job="api"}"#, 2.0),
            (r#"{code="200", job="web"}"#, 5.0),
        ],
    );
    instant(
        &src,
        "count(req) by (code)",
        0,
        &[(r#"{code="200"}"#, 3.0), (r#"{code="500"}"#, 1.0)],
    );
    instant(
        &src,
        "max by (job) (req)",
        0,
        &[(r#"{job="api"}"#, 30.0), (r#"{job="web"}"#, 5.0)],
    );
    instant(&src, "avg(req)", 0, &[("{}", 11.75)]);
    // topk keeps the series' own labels, metric name included, largest first.
    instant(
        &src,
        "topk(2, req)",
        0,
        &[
            (
                r#"{__name__="req", code="200", instance="2", job="api"}"#,
                30.0,
            ),
            (
                r#"{__name__="req", code="200", instance="1", job="api"}"#,
                10.0,
            ),
        ],
    );
    instant(
        &src,
        "bottomk by (job) (1, req)",
        0,
        &[
            (
                r#"{__name__="req", code="500", instance="1", job="api"}"#,
                2.0,
            ),
            (
                r#"{__name__="req", code="200", instance="1", job="web"}"#,
                5.0,
            ),
        ],
    );
    // Values 2, 5, 10, 30: rank 0.5·3 = 1.5 → 5 + 0.5·(10 - 5).
    instant(&src, "quantile(0.5, req)", 0, &[("{}", 7.5)]);
    // api: 2, 10, 30: rank 0.9·2 = 1.8 → 10 + 0.8·20 = 26.
    instant(
        &src,
        "quantile by (job) (0.9, req)",
        0,
        &[(r#"{job="api"}"#, 26.0), (r#"{job="web"}"#, 5.0)],
    );
    // A ratio with vector matching and group_left.
    instant(
        &src,
        "sum by (job, code) (req) / on(job) group_left sum by (job) (req)",
        0,
        &[
            (r#"{code="200", job="api"}"#, 40.0 / 42.0),
            (r#"{code="500", job="api"}"#, 2.0 / 42.0),
            (r#"{code="200", job="web"}"#, 1.0),
        ],
    );
}

// ------------------------------------------------------------ histogram_quantile

/// histograms.test's `testhistogram_bucket`, `request_duration_seconds_bucket`,
/// `nonmonotonic_bucket` and `mixed_bucket` (`load 5m`, `0+nx10`), plus a histogram
/// without `+Inf` and a duplicate of one request histogram under another name.
fn histograms() -> Mem {
    let mut streams = Vec::new();
    let mut add = |labels: String, step: f64| {
        streams.push(series(&labels, 5 * MIN, &ramp(0.0, step, 10)));
    };
    for (le, n) in [("0.1", 5.0), (".2", 7.0), ("1e0", 11.0), ("+Inf", 12.0)] {
        add(
            format!(r#"{{__name__="testhistogram_bucket", le="{le}", start="positive"}}"#),
            n,
        );
    }
    for (le, n) in [("-.2", 1.0), ("-0.1", 2.0), ("0.3", 2.0), ("+Inf", 3.0)] {
        add(
            format!(r#"{{__name__="testhistogram_bucket", le="{le}", start="negative"}}"#),
            n,
        );
    }
    for (job, ins, counts) in [
        ("job1", "ins1", [1.0, 3.0, 4.0]),
        ("job1", "ins2", [2.0, 5.0, 6.0]),
        ("job2", "ins1", [3.0, 4.0, 6.0]),
        ("job2", "ins2", [4.0, 7.0, 9.0]),
    ] {
        for (le, n) in ["0.1", "0.2", "+Inf"].iter().zip(counts) {
            add(
                format!(
                    r#"{{__name__="request_duration_seconds_bucket", job="{job}", instance="{ins}", le="{le}"}}"#
                ),
                n,
            );
        }
    }
    for (le, n) in [
        ("0.1", 2.0),
        ("1", 1.0),
        ("10", 5.0),
        ("100", 4.0),
        ("1000", 9.0),
        ("+Inf", 8.0),
    ] {
        add(
            format!(r#"{{__name__="nonmonotonic_bucket", le="{le}"}}"#),
            n,
        );
    }
    for (le, n) in [
        ("0.1", 1.0),
        ("0.2", 1.0),
        ("2e-1", 1.0),
        ("2.0e-1", 1.0),
        ("+Inf", 4.0),
    ] {
        add(
            format!(r#"{{__name__="mixed_bucket", job="job1", instance="ins1", le="{le}"}}"#),
            n,
        );
    }
    for le in ["+inf", "+Inf"] {
        add(
            format!(r#"{{__name__="mixed_bucket", job="job1", instance="ins2", le="{le}"}}"#),
            0.0,
        );
    }
    for (le, n) in [("0.1", 1.0), ("0.2", 2.0)] {
        add(format!(r#"{{__name__="noinf_bucket", le="{le}"}}"#), n);
    }
    for (le, n) in [("0.1", 1.0), ("0.2", 3.0), ("+Inf", 4.0)] {
        add(
            format!(
                r#"{{__name__="request_duration_seconds2_bucket", job="job1", instance="ins1", le="{le}"}}"#
            ),
            n,
        );
    }
    Mem { streams }
}

#[test]
fn histogram_quantile_classic_buckets() {
    let src = histograms();
    let t = 50 * MIN;
    let pn = |p: f64, n: f64| vec![(r#"{start="positive"}"#, p), (r#"{start="negative"}"#, n)];
    for inner in ["testhistogram_bucket", "rate(testhistogram_bucket[10m])"] {
        let q = |phi: &str| format!("histogram_quantile({phi}, {inner})");
        if !inner.starts_with("rate") {
            instant(&src, &q("0"), t, &pn(0.0, -0.2));
            instant(&src, &q("1"), t, &pn(1.0, 0.3));
        }
        instant(&src, &q("0.2"), t, &pn(0.048, -0.2));
        instant(&src, &q("0.5"), t, &pn(0.15, -0.15));
        instant(&src, &q("0.8"), t, &pn(0.72, 0.3));
    }
    let q = |phi: &str| format!("histogram_quantile({phi}, testhistogram_bucket)");
    instant(
        &src,
        &q("-0.1"),
        t,
        &pn(f64::NEG_INFINITY, f64::NEG_INFINITY),
    );
    instant(&src, &q("1.01"), t, &pn(f64::INFINITY, f64::INFINITY));
    instant(&src, &q("NaN"), t, &pn(f64::NAN, f64::NAN));
}

#[test]
fn histogram_quantile_aggregated() {
    let src = histograms();
    let t = 50 * MIN;
    instant(
        &src,
        "histogram_quantile(0.3, sum(rate(request_duration_seconds_bucket[10m])) by (le))",
        t,
        &[("{}", 0.075)],
    );
    instant(
        &src,
        "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[10m])))",
        t,
        &[("{}", 0.1277777777777778)],
    );
    instant(
        &src,
        "histogram_quantile(0.3, sum(rate(request_duration_seconds_bucket[10m])) by (le, job))",
        t,
        &[
            (r#"{job="job1"}"#, 0.1),
            (r#"{job="job2"}"#, 0.0642857142857143),
        ],
    );
    instant(
        &src,
        "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))",
        t,
        &[
            (r#"{instance="ins1", job="job1"}"#, 0.15),
            (r#"{instance="ins2", job="job1"}"#, 0.13333333333333333),
            (r#"{instance="ins1", job="job2"}"#, 0.1),
            (r#"{instance="ins2", job="job2"}"#, 0.11666666666666667),
        ],
    );
}

#[test]
fn histogram_quantile_edge_cases() {
    let src = histograms();
    let t = 50 * MIN;
    instant(
        &src,
        "histogram_quantile(0.01, nonmonotonic_bucket)",
        t,
        &[("{}", 0.0045)],
    );
    instant(
        &src,
        "histogram_quantile(0.5, nonmonotonic_bucket)",
        t,
        &[("{}", 8.5)],
    );
    instant(
        &src,
        "histogram_quantile(0.99, nonmonotonic_bucket)",
        t,
        &[("{}", 979.75)],
    );
    for (phi, v) in [("0.5", 0.15), ("0.75", 0.2), ("1", 0.2)] {
        instant(
            &src,
            &format!("histogram_quantile({phi}, rate(mixed_bucket[10m]))"),
            t,
            &[
                (r#"{instance="ins1", job="job1"}"#, v),
                (r#"{instance="ins2", job="job1"}"#, f64::NAN),
            ],
        );
    }
    instant(
        &src,
        "histogram_quantile(0.5, noinf_bucket)",
        t,
        &[("{}", f64::NAN)],
    );
    let e = fails(
        &src,
        r#"histogram_quantile(0.99, {__name__=~"request_duration_seconds\\d*_bucket"})"#,
        t,
    );
    assert!(e.contains("same labelset"), "{e}");
}

// ------------------------------------------------------------ errors

#[test]
fn parse_errors_and_unsupported_features() {
    use crate::promql::{PromqlError, parse};
    for q in ["rate(x[5m]", "sum by (", "x{a=}", "rate(x)", "foo bar"] {
        assert!(
            matches!(parse(q), Err(PromqlError::Parse(_))),
            "{q}: {:?}",
            parse(q)
        );
    }
    for (q, what) in [
        ("rate(x[1h:1m])", "subqueries"),
        ("max_over_time(rate(x[5m])[1h:1m])", "subqueries"),
        ("x @ 100", "`@`"),
        ("rate(x[5m] @ end())", "`@`"),
        ("predict_linear(x[5m], 60)", "predict_linear"),
        ("x[5m]", "range vector"),
        (r#"count_values("v", x)"#, "count_values"),
        ("topk(scalar(x), x)", "non-literal"),
        ("histogram_count(x)", "histogram_count"),
    ] {
        match parse(q) {
            Err(PromqlError::Unsupported(m)) => assert!(m.contains(what), "{q}: {m}"),
            other => panic!("{q}: expected unsupported, got {other:?}"),
        }
    }
}

#[test]
fn selectors_and_logql_isolation() {
    use crate::promql::{parse_selector, selectors};
    let m = parse_selector(r#"up{job=~"api|web", code!="500"}"#).expect("selector");
    let text: Vec<String> = m
        .iter()
        .map(|m| format!("{}{}{}", m.name, m.op.as_str(), m.value))
        .collect();
    assert_eq!(text, ["__name__=up", "job=~api|web", "code!=500"]);
    assert!(parse_selector("rate(up[5m])").is_err());
    assert_eq!(
        selectors("sum(rate(a[5m])) / sum(b)").expect("parse").len(),
        2
    );
    // PromQL-only range functions are not LogQL.
    assert!(crate::ast::RangeOp::from_name("increase").is_none());
    assert!(crate::parse(r#"increase({a="b"}[5m])"#).is_err());
    assert!(crate::parse(r#"sum(rate({a="b"}[5m]))"#).is_ok());
}
