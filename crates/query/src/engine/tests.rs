//! Conformance tests: a fixed in-memory dataset (a test double of the server's
//! [`SampleSource`]) and, for each feature, a query with its exact expected result
//! computed by hand from the documented Loki/Prometheus semantics.

use inferscope_model::{Labels, matches_all};
use proptest::prelude::*;

use super::*;
use crate::ast::{Expr, Grouping, RangeAggregation, RangeInput, RangeOp};

const SEC: i64 = 1_000_000_000;

/// One log entry of the dataset: time (s), line length (bytes), unwrapped value.
pub(super) struct Entry {
    pub(super) ts: i64,
    pub(super) bytes: f64,
    pub(super) val: f64,
}

pub(super) struct Stream {
    pub(super) labels: Labels,
    pub(super) entries: Vec<Entry>,
}

/// In-memory source: streams whose labels match the selector's matchers; the value is
/// 1.0 per entry, the byte length for `bytes_*`, the unwrapped value with `| unwrap`
/// (any label name: the dataset has one numeric field). For a PromQL series selector
/// ([`RangeInput::Series`]) a stream is a metric series (labels include `__name__`)
/// and the value is the raw sample value `val`.
pub(super) struct Mem {
    pub(super) streams: Vec<Stream>,
}

impl SampleSource for Mem {
    fn samples(
        &self,
        agg: &RangeAggregation,
        start_ns: i64,
        end_ns: i64,
        keep: Option<&Grouping>,
    ) -> Result<Vec<Series>, EngineError> {
        let bytes = matches!(agg.op, RangeOp::BytesOverTime | RangeOp::BytesRate);
        let series: Vec<Series> = self
            .streams
            .iter()
            .filter(|s| matches_all(&agg.selector.matchers, &s.labels))
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s
                    .entries
                    .iter()
                    .filter(|e| e.ts >= start_ns && e.ts <= end_ns)
                    .map(|e| Sample {
                        timestamp_ns: e.ts,
                        value: if agg.unwrap.is_some() || agg.input == RangeInput::Series {
                            e.val
                        } else if bytes {
                            e.bytes
                        } else {
                            1.0
                        },
                    })
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        // Honour the hint the way the server does, so that every conformance test
        // also checks that pushing a grouping down changes no result.
        let Some(keep) = keep else {
            return Ok(series);
        };
        let mut merged: Vec<Series> = Vec::new();
        for s in series {
            let labels = if s.labels.get("__error__").is_some() {
                s.labels
            } else {
                group_labels(&s.labels, Some(keep))
            };
            match merged.iter_mut().find(|m| m.labels == labels) {
                Some(m) => {
                    m.samples.extend(s.samples);
                    m.samples.sort_by_key(|x| x.timestamp_ns);
                }
                None => merged.push(Series {
                    labels,
                    samples: s.samples,
                }),
            }
        }
        Ok(merged)
    }
}

fn labels(s: &str) -> Labels {
    Labels::parse(s).expect("test labels")
}

// The dataset (times in seconds):
// A {app="api", level="info",  pod="a"}: t=10,20,30,40,50,60  bytes 10 each, val 1,2,3,4,5,6
// B {app="api", level="error", pod="b"}: t=15,30,60           bytes 100 each, val 10,5,20
// C {app="web", level="info",  pod="c"}: t=60                 bytes 7, val 3
// D {app="bad", __error__="JSONParserErr"}: t=60
const A: &str = r#"{app="api", level="info", pod="a"}"#;
const B: &str = r#"{app="api", level="error", pod="b"}"#;
const C: &str = r#"{app="web", level="info", pod="c"}"#;

fn dataset() -> Mem {
    let mk = |l: &str, pts: &[(i64, f64, f64)]| Stream {
        labels: labels(l),
        entries: pts
            .iter()
            .map(|&(t, bytes, val)| Entry {
                ts: t * SEC,
                bytes,
                val,
            })
            .collect(),
    };
    Mem {
        streams: vec![
            mk(
                A,
                &[
                    (10, 10.0, 1.0),
                    (20, 10.0, 2.0),
                    (30, 10.0, 3.0),
                    (40, 10.0, 4.0),
                    (50, 10.0, 5.0),
                    (60, 10.0, 6.0),
                ],
            ),
            mk(B, &[(15, 100.0, 10.0), (30, 100.0, 5.0), (60, 100.0, 20.0)]),
            mk(C, &[(60, 7.0, 3.0)]),
            mk(
                r#"{app="bad", __error__="JSONParserErr"}"#,
                &[(60, 1.0, 1.0)],
            ),
        ],
    }
}

fn metric(q: &str) -> MetricExpr {
    match crate::parse(q) {
        Ok(Expr::Metric(m)) => m,
        other => panic!("{q}: not a metric query: {other:?}"),
    }
}

fn run(q: &str, start: i64, end: i64, step: i64, max_series: usize) -> Result<Value, EngineError> {
    let params = EvalParams {
        start_ns: start * SEC,
        end_ns: end * SEC,
        step_ns: step * SEC,
        max_series,
    };
    evaluate(&metric(q), &params, &dataset())
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// Instant query at `t` seconds: asserts the vector equals `want` (labels, value), in order.
#[track_caller]
fn instant(q: &str, t: i64, want: &[(&str, f64)]) {
    let got = match run(q, t, t, 1, 1000) {
        Ok(Value::Vector(v)) => v,
        other => panic!("{q}: expected a vector, got {other:?}"),
    };
    let got: Vec<(String, f64)> = got
        .into_iter()
        .map(|s| {
            assert_eq!(s.sample.timestamp_ns, t * SEC, "{q}");
            (s.labels.to_string(), s.sample.value)
        })
        .collect();
    assert_eq!(got.len(), want.len(), "{q}: got {got:?}");
    for ((gl, gv), (wl, wv)) in got.iter().zip(want) {
        assert_eq!(gl, &labels(wl).to_string(), "{q}: got {got:?}");
        assert!(close(*gv, *wv), "{q}: {gl}: got {gv}, want {wv}");
    }
}

/// Range query: asserts the matrix equals `want` (labels, [(t seconds, value)]).
#[track_caller]
fn range(q: &str, start: i64, end: i64, step: i64, want: &[(&str, &[(i64, f64)])]) {
    let got = match run(q, start, end, step, 1000) {
        Ok(Value::Matrix(m)) => m,
        other => panic!("{q}: expected a matrix, got {other:?}"),
    };
    let got: Vec<(String, Vec<(i64, f64)>)> = got
        .into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples
                    .iter()
                    .map(|p| (p.timestamp_ns / SEC, p.value))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "{q}: got {got:?}");
    for ((gl, gp), (wl, wp)) in got.iter().zip(want) {
        assert_eq!(gl, &labels(wl).to_string(), "{q}: got {got:?}");
        assert_eq!(gp.len(), wp.len(), "{q}: {gl}: got {gp:?}");
        for ((gt, gv), (wt, wv)) in gp.iter().zip(wp.iter()) {
            assert_eq!(gt, wt, "{q}: {gl}: got {gp:?}");
            assert!(close(*gv, *wv), "{q}: {gl} @{gt}: got {gv}, want {wv}");
        }
    }
}

#[track_caller]
fn error(q: &str, max_series: usize) -> String {
    match run(q, 60, 60, 1, max_series) {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{q}: expected an error, got {v:?}"),
    }
}

// ------------------------------------------------------------------ range functions

#[test]
fn count_over_time_window_is_left_open_right_closed() {
    // (30s, 60s]: A has 40,50,60 → 3; B has 60 (30 is excluded) → 1. Sorted by labels.
    instant(
        r#"count_over_time({app="api"}[30s])"#,
        60,
        &[(B, 1.0), (A, 3.0)],
    );
}

#[test]
fn count_over_time_range_query() {
    // Steps 20, 40, 60 with [20s]: A (0,20]={10,20}, (20,40]={30,40}, (40,60]={50,60};
    // B (0,20]={15}, (20,40]={30}, (40,60]={60}.
    range(
        r#"count_over_time({app="api"}[20s])"#,
        20,
        60,
        20,
        &[
            (B, &[(20, 1.0), (40, 1.0), (60, 1.0)]),
            (A, &[(20, 2.0), (40, 2.0), (60, 2.0)]),
        ],
    );
    // Steps with an empty window produce no point: web only has t=60.
    range(
        r#"count_over_time({app="web"}[10s])"#,
        40,
        70,
        10,
        &[(C, &[(60, 1.0)])],
    );
}

#[test]
fn offset_shifts_the_window() {
    // At 60 with offset 20s the window is (20, 40]: A {30,40} → 2, B {30} → 1.
    instant(
        r#"count_over_time({app="api"}[20s] offset 20s)"#,
        60,
        &[(B, 1.0), (A, 2.0)],
    );
}

#[test]
fn rate_and_bytes() {
    // A: 3 entries in (30,60] / 30s = 0.1
    instant(r#"rate({app="api", pod="a"}[30s])"#, 60, &[(A, 0.1)]);
    // (0,60]: A 6×10 = 60 bytes, B 3×100 = 300 bytes.
    instant(
        r#"bytes_over_time({app="api"}[1m])"#,
        60,
        &[(B, 300.0), (A, 60.0)],
    );
    // 300/60 = 5, 60/60 = 1.
    instant(r#"bytes_rate({app="api"}[1m])"#, 60, &[(B, 5.0), (A, 1.0)]);
}

#[test]
fn unwrapped_functions() {
    // A's values in (0,60]: 1,2,3,4,5,6.
    let a = r#"{app="api", pod="a"} | unwrap val [1m]"#;
    let q = |f: &str| format!("{f}({a})");
    instant(&q("sum_over_time"), 60, &[(A, 21.0)]); // 1+…+6
    instant(&q("avg_over_time"), 60, &[(A, 3.5)]); // 21/6
    instant(&q("min_over_time"), 60, &[(A, 1.0)]);
    instant(&q("max_over_time"), 60, &[(A, 6.0)]);
    instant(&q("first_over_time"), 60, &[(A, 1.0)]);
    instant(&q("last_over_time"), 60, &[(A, 6.0)]);
    // Σ(x-3.5)² = 6.25+2.25+0.25+0.25+2.25+6.25 = 17.5; population: /6.
    instant(&q("stdvar_over_time"), 60, &[(A, 17.5 / 6.0)]);
    instant(&q("stddev_over_time"), 60, &[(A, (17.5f64 / 6.0).sqrt())]);
    instant(&q("rate"), 60, &[(A, 0.35)]); // 21/60
}

#[test]
fn quantile_interpolation() {
    let a = r#"{app="api", pod="a"} | unwrap val [1m]"#;
    // rank = 0.9×(6-1) = 4.5 → v[4]=5, v[5]=6 → 5×0.5 + 6×0.5 = 5.5
    instant(&format!("quantile_over_time(0.9, {a})"), 60, &[(A, 5.5)]);
    // rank = 0.5×5 = 2.5 → (3+4)/2 = 3.5
    instant(&format!("quantile_over_time(0.5, {a})"), 60, &[(A, 3.5)]);
    // rank = 0.25×5 = 1.25 → 2×0.75 + 3×0.25 = 2.25
    instant(&format!("quantile_over_time(0.25, {a})"), 60, &[(A, 2.25)]);
    // φ > 1 → +Inf, φ < 0 → -Inf (Prometheus).
    instant(
        &format!("quantile_over_time(1.5, {a})"),
        60,
        &[(A, f64::INFINITY)],
    );
}

#[test]
fn rate_counter_handles_resets() {
    // B in (0,60]: 10 (t15), 5 (t30, reset), 20 (t60).
    // increase = (20 - 10) + 10 (value before the reset) = 20; / 60s.
    instant(
        r#"rate_counter({pod="b"} | unwrap val [1m])"#,
        60,
        &[(B, 20.0 / 60.0)],
    );
    // A single sample in the window: no increase → 0.
    instant(
        r#"rate_counter({pod="c"} | unwrap val [1m])"#,
        60,
        &[(C, 0.0)],
    );
}

#[test]
fn absent_over_time_labels_and_steps() {
    // Labels: the `=` matchers of the selector (not `=~`, `!=`).
    instant(
        r#"absent_over_time({app="nope", level=~"x", pod!="y"}[10s])"#,
        60,
        &[(r#"{app="nope"}"#, 1.0)],
    );
    // Nothing when data is present.
    instant(r#"absent_over_time({app="web"}[10s])"#, 60, &[]);
    // web has a sample at 60 only: (40,50] empty → 1; (50,60] has it → none; (60,70] → 1.
    range(
        r#"absent_over_time({app="web"}[10s])"#,
        50,
        70,
        10,
        &[(r#"{app="web"}"#, &[(50, 1.0), (70, 1.0)])],
    );
    // A name repeated in another matcher is dropped, as Prometheus' absent().
    instant(
        r#"absent_over_time({app="nope", app!="x", job="j"}[10s])"#,
        60,
        &[(r#"{job="j"}"#, 1.0)],
    );
}

#[test]
fn range_aggregation_grouping() {
    // by (app): A and B merged: 21 + (10+5+20) = 56.
    instant(
        r#"sum_over_time({app="api"} | unwrap val [1m]) by (app)"#,
        60,
        &[(r#"{app="api"}"#, 56.0)],
    );
    // without (pod, level): max over A ∪ B = 20.
    instant(
        r#"max_over_time({app="api"} | unwrap val [1m]) without (pod, level)"#,
        60,
        &[(r#"{app="api"}"#, 20.0)],
    );
}

// ------------------------------------------------------------------ vector aggregations

const ALL60: &str = r#"count_over_time({app=~"api|web"}[1m])"#; // A 6, B 3, C 1

#[test]
fn vector_aggregations() {
    // level: error → B 3; info → A 6 + C 1 = 7.
    instant(
        &format!("sum by (level) ({ALL60})"),
        60,
        &[(r#"{level="error"}"#, 3.0), (r#"{level="info"}"#, 7.0)],
    );
    // without (pod, level): api 6+3 = 9, web 1.
    instant(
        &format!("sum without (pod, level) ({ALL60})"),
        60,
        &[(r#"{app="api"}"#, 9.0), (r#"{app="web"}"#, 1.0)],
    );
    instant(&format!("sum({ALL60})"), 60, &[("{}", 10.0)]);
    instant(&format!("count({ALL60})"), 60, &[("{}", 3.0)]);
    instant(&format!("avg({ALL60})"), 60, &[("{}", 10.0 / 3.0)]);
    instant(&format!("min({ALL60})"), 60, &[("{}", 1.0)]);
    instant(&format!("max({ALL60})"), 60, &[("{}", 6.0)]);
    // mean 10/3; Σ(x-mean)² = (8/3)² + (-1/3)² + (-7/3)² = 114/9; /3 → 114/27.
    instant(&format!("stdvar({ALL60})"), 60, &[("{}", 114.0 / 27.0)]);
    instant(
        &format!("stddev({ALL60})"),
        60,
        &[("{}", (114.0f64 / 27.0).sqrt())],
    );
    instant(
        &format!("count by (app) ({ALL60})"),
        60,
        &[(r#"{app="api"}"#, 2.0), (r#"{app="web"}"#, 1.0)],
    );
}

#[test]
fn topk_bottomk_and_ties() {
    // (50,60]: A, B and C all have exactly 1 → tie; the smaller label set wins: B, then A.
    let w10 = r#"count_over_time({app=~"api|web"}[10s])"#;
    instant(&format!("topk(1, {w10})"), 60, &[(B, 1.0)]);
    instant(&format!("topk(2, {w10})"), 60, &[(B, 1.0), (A, 1.0)]);
    // Instant topk is ordered by value, descending.
    instant(&format!("topk(2, {ALL60})"), 60, &[(A, 6.0), (B, 3.0)]);
    instant(&format!("bottomk(1, {ALL60})"), 60, &[(C, 1.0)]);
    // Per group: api → A (6), web → C (1).
    instant(
        &format!("topk by (app) (1, {ALL60})"),
        60,
        &[(A, 6.0), (C, 1.0)],
    );
    // Per step: [20s] at 20: A 2, B 1 → A; at 40: A 2, B 1 → A; at 60: A 2, B 1, C 1 → A.
    // bottomk(1) per step: 20 → B (1); 40 → B (1); 60 → B and C tie at 1 → B (smaller labels).
    range(
        r#"bottomk(1, count_over_time({app=~"api|web"}[20s]))"#,
        20,
        60,
        20,
        &[(B, &[(20, 1.0), (40, 1.0), (60, 1.0)])],
    );
}

#[test]
fn sort_and_sort_desc() {
    instant(
        &format!("sort({ALL60})"),
        60,
        &[(C, 1.0), (B, 3.0), (A, 6.0)],
    );
    instant(
        &format!("sort_desc({ALL60})"),
        60,
        &[(A, 6.0), (B, 3.0), (C, 1.0)],
    );
}

// ------------------------------------------------------------------ binary operators

#[test]
fn grafana_health_check() {
    // Instant: a vector with one sample with empty labels.
    instant("vector(1)+vector(1)", 60, &[("{}", 2.0)]);
    // Range: one unlabeled series.
    range(
        "vector(1)+vector(1)",
        0,
        20,
        10,
        &[("{}", &[(0, 2.0), (10, 2.0), (20, 2.0)])],
    );
}

#[test]
fn scalars() {
    match run("1 + 2 * 3", 60, 60, 1, 10) {
        Ok(Value::Scalar(s)) => assert_eq!(
            s,
            Sample {
                timestamp_ns: 60 * SEC,
                value: 7.0
            }
        ),
        other => panic!("{other:?}"),
    }
    range("2 ^ 3", 0, 10, 10, &[("{}", &[(0, 8.0), (10, 8.0)])]);
}

#[test]
fn vector_scalar_arithmetic_and_comparisons() {
    // A 6, B 3, C 1 (×2).
    instant(
        &format!("{ALL60} * 2"),
        60,
        &[(B, 6.0), (A, 12.0), (C, 2.0)],
    );
    // 10 - x
    instant(
        &format!("10 - {ALL60}"),
        60,
        &[(B, 7.0), (A, 4.0), (C, 9.0)],
    );
    // Filtering keeps the vector's value, whichever side it is on.
    instant(&format!("{ALL60} > 2"), 60, &[(B, 3.0), (A, 6.0)]);
    instant(&format!("2 < {ALL60}"), 60, &[(B, 3.0), (A, 6.0)]);
    // bool: 0/1 for every element.
    instant(
        &format!("{ALL60} > bool 2"),
        60,
        &[(B, 1.0), (A, 1.0), (C, 0.0)],
    );
    instant(
        &format!("{ALL60} == bool 3"),
        60,
        &[(B, 1.0), (A, 0.0), (C, 0.0)],
    );
}

#[test]
fn vector_vector_one_to_one() {
    // [1m] vs [30s] at 60: A 6 vs 3, B 3 vs 1.
    let l = r#"count_over_time({app="api"}[1m])"#;
    let r = r#"count_over_time({app="api"}[30s])"#;
    instant(&format!("{l} - {r}"), 60, &[(B, 2.0), (A, 3.0)]);
    instant(&format!("{l} / {r}"), 60, &[(B, 3.0), (A, 2.0)]);
    // Comparison keeps the left value; bool gives 0/1.
    instant(&format!("{l} > {r}"), 60, &[(B, 3.0), (A, 6.0)]);
    instant(&format!("{r} >= bool {l}"), 60, &[(B, 0.0), (A, 0.0)]);
    // on(app): one-to-one on app; the result keeps only the `on` labels.
    // sum by (app) of [1m] = {api: 9}; of [30s] = {api: 4} → 9 / 4.
    instant(
        r#"sum by (app, level) (count_over_time({app="api", level="info"}[1m])) / on(app) sum by (app) (count_over_time({app="api"}[30s]))"#,
        60,
        &[(r#"{app="api"}"#, 6.0 / 4.0)],
    );
    // ignoring(pod) drops pod from the result.
    instant(
        r#"count_over_time({pod="a"}[1m]) + ignoring(pod) count_over_time({pod="a"}[30s])"#,
        60,
        &[(r#"{app="api", level="info"}"#, 9.0)],
    );
}

#[test]
fn group_left_copies_labels() {
    let one = format!(r#"label_replace(sum by (app) ({ALL60}), "team", "t-$1", "app", "(.*)")"#);
    // one side: {app=api, team=t-api} 9, {app=web, team=t-web} 1.
    // A 6×9 = 54, B 3×9 = 27, C 1×1 = 1; team copied from the one side.
    let want = [
        (r#"{app="api", level="error", pod="b", team="t-api"}"#, 27.0),
        (r#"{app="api", level="info", pod="a", team="t-api"}"#, 54.0),
        (r#"{app="web", level="info", pod="c", team="t-web"}"#, 1.0),
    ];
    instant(
        &format!("{ALL60} * on(app) group_left(team) {one}"),
        60,
        &want,
    );
    // group_right: the many side is on the right; same labels.
    instant(
        &format!("{one} * on(app) group_right(team) {ALL60}"),
        60,
        &want,
    );
    // Without label list: the many side's labels as they are. 6/9, 3/9, 1/1.
    instant(
        &format!("{ALL60} / on(app) group_left sum by (app) ({ALL60})"),
        60,
        &[(B, 3.0 / 9.0), (A, 6.0 / 9.0), (C, 1.0)],
    );
}

#[test]
fn matching_errors() {
    // One-to-one on(app): A and B both match {app=api}.
    assert_eq!(
        error(&format!("{ALL60} / on(app) sum by (app) ({ALL60})"), 100),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    // The "one" side (right) has duplicates for app=api.
    let e = error(
        &format!("sum by (app) ({ALL60}) / on(app) group_left {ALL60}"),
        100,
    );
    assert!(
        e.starts_with(r#"found duplicate series for the match group {app="api"} on the right hand-side of the operation"#)
            && e.ends_with("many-to-many matching not allowed: matching labels must be unique on one side"),
        "{e}"
    );
}

#[test]
fn set_operators() {
    let err = r#"count_over_time({level="error"}[1m])"#; // B 3
    instant(&format!("{ALL60} and {err}"), 60, &[(B, 3.0)]);
    instant(&format!("{ALL60} unless {err}"), 60, &[(A, 6.0), (C, 1.0)]);
    // or: B 3 from the left; the right ([30s]: A 3, B 1, C 1) adds A and C only.
    instant(
        &format!(r#"{err} or count_over_time({{app=~"api|web"}}[30s])"#),
        60,
        &[(B, 3.0), (A, 3.0), (C, 1.0)],
    );
    // and on(app): only C shares app="web".
    instant(
        &format!(r#"{ALL60} and on(app) count_over_time({{app="web"}}[1m])"#),
        60,
        &[(C, 1.0)],
    );
    // unless ignoring(pod, level): nothing from api survives.
    instant(
        &format!(
            r#"{ALL60} unless ignoring(pod, level) count_over_time({{app="api", pod="a"}}[1m])"#
        ),
        60,
        &[(C, 1.0)],
    );
}

#[test]
fn division_by_zero() {
    instant("vector(1) / vector(0)", 60, &[("{}", f64::INFINITY)]);
    instant("vector(-1) / 0", 60, &[("{}", f64::NEG_INFINITY)]);
    instant("vector(0) / vector(0)", 60, &[("{}", f64::NAN)]);
    instant("vector(5) % 0", 60, &[("{}", f64::NAN)]);
    match run("1 / 0", 60, 60, 1, 10) {
        Ok(Value::Scalar(s)) => assert_eq!(s.value, f64::INFINITY),
        other => panic!("{other:?}"),
    }
}

#[test]
fn label_replace() {
    // Anchored "(c)" matches pod="c": dst = "x-c".
    instant(
        r#"label_replace(count_over_time({app="web"}[1m]), "dst", "x-$1", "pod", "(c)")"#,
        60,
        &[(r#"{app="web", dst="x-c", level="info", pod="c"}"#, 1.0)],
    );
    // Anchored: "(e)" does not match "web" as a whole → unchanged.
    instant(
        r#"label_replace(count_over_time({app="web"}[1m]), "dst", "$1", "app", "(e)")"#,
        60,
        &[(C, 1.0)],
    );
    // An empty replacement removes the label.
    instant(
        r#"label_replace(count_over_time({app="web"}[1m]), "pod", "", "pod", ".*")"#,
        60,
        &[(r#"{app="web", level="info"}"#, 1.0)],
    );
    // Collapsing A and B onto the same labels is an error.
    assert_eq!(
        error(
            r#"label_replace(label_replace(count_over_time({app="api"}[1m]), "pod", "", "pod", ".*"), "level", "", "level", ".*")"#,
            100
        ),
        "vector cannot contain metrics with the same labelset"
    );
}

#[test]
fn max_series() {
    assert_eq!(
        error(ALL60, 2),
        "maximum of series (2) reached for a single query"
    );
    assert_eq!(run(ALL60, 60, 60, 1, 3).map(|_| ()), Ok(()));
    // An aggregation producing too many groups.
    assert_eq!(
        error(&format!("sum by (pod) ({ALL60})"), 2),
        "maximum of series (2) reached for a single query"
    );
    // Aggregating many series down to few is fine.
    assert_eq!(
        run(&format!("sum({ALL60})"), 60, 60, 1, 1).map(|_| ()),
        Ok(())
    );
}

#[test]
fn error_label_fails_the_query() {
    let e = error(r#"count_over_time({app="bad"}[1m])"#, 100);
    assert!(e.starts_with("pipeline error: 'JSONParserErr'"), "{e}");
    // Grouping drops the label (as Loki's range evaluator sees grouped labels).
    instant(
        r#"sum_over_time({app="bad"} | unwrap v [1m]) by (app)"#,
        60,
        &[(r#"{app="bad"}"#, 1.0)],
    );
}

#[test]
fn bad_params() {
    let p = EvalParams {
        start_ns: 0,
        end_ns: 10,
        step_ns: 0,
        max_series: 10,
    };
    assert!(evaluate(&metric("vector(1)"), &p, &dataset()).is_err());
    let p = EvalParams {
        start_ns: 0,
        end_ns: 20_000,
        step_ns: 1,
        max_series: 10,
    };
    assert_eq!(
        evaluate(&metric("vector(1)"), &p, &dataset()),
        Err(EngineError::TooManySteps)
    );
}

// ------------------------------------------------------------------ properties

fn arb_streams() -> impl Strategy<Value = Vec<(u8, Vec<(i64, f64)>)>> {
    prop::collection::vec(
        (
            0u8..4,
            prop::collection::vec((0i64..120, -100.0f64..100.0), 0..30),
        ),
        1..6,
    )
}

fn mem_from(streams: &[(u8, Vec<(i64, f64)>)]) -> Mem {
    Mem {
        streams: streams
            .iter()
            .enumerate()
            .map(|(i, (x, pts))| {
                let mut entries: Vec<Entry> = pts
                    .iter()
                    .map(|&(t, v)| Entry {
                        ts: t * SEC,
                        bytes: 1.0,
                        val: v,
                    })
                    .collect();
                entries.sort_by_key(|e| e.ts);
                Stream {
                    labels: Labels::from_pairs([
                        ("app", "p".to_string()),
                        ("x", format!("x{x}")),
                        ("id", format!("{i}")),
                    ]),
                    entries,
                }
            })
            .collect(),
    }
}

proptest! {
    #[test]
    fn sum_by_of_count_equals_total(streams in arb_streams(), range_s in 1i64..60, step_s in 1i64..30) {
        let mem = mem_from(&streams);
        let params = EvalParams { start_ns: 0, end_ns: 120 * SEC, step_ns: step_s * SEC, max_series: 100 };
        let q = format!(r#"sum by (x) (count_over_time({{app="p"}}[{range_s}s]))"#);
        let Ok(Value::Matrix(m)) = evaluate(&metric(&q), &params, &mem) else {
            panic!("not a matrix");
        };
        let mut t = 0;
        while t <= 120 {
            // Naive count of all entries in (t - range, t].
            let want = streams.iter().flat_map(|(_, p)| p.iter()).filter(|(ts, _)| *ts > t - range_s && *ts <= t).count() as f64;
            let got: f64 = m.iter().flat_map(|s| s.samples.iter()).filter(|p| p.timestamp_ns == t * SEC).map(|p| p.value).sum();
            prop_assert_eq!(got, want, "t={}", t);
            t += step_s;
        }
    }

    #[test]
    fn quantile_one_is_max(streams in arb_streams(), range_s in 1i64..60, step_s in 1i64..30) {
        let mem = mem_from(&streams);
        let params = EvalParams { start_ns: 0, end_ns: 120 * SEC, step_ns: step_s * SEC, max_series: 100 };
        let q1 = format!(r#"quantile_over_time(1, {{app="p"}} | unwrap v [{range_s}s])"#);
        let q2 = format!(r#"max_over_time({{app="p"}} | unwrap v [{range_s}s])"#);
        let a = evaluate(&metric(&q1), &params, &mem);
        let b = evaluate(&metric(&q2), &params, &mem);
        prop_assert_eq!(a, b);
    }
}

/// Scale check (run with `--release -- --ignored`): 4 million samples, 1440 steps.
#[test]
#[ignore]
fn scale_four_million_samples() {
    let day = 86_400i64;
    let streams: Vec<Stream> = (0..100)
        .map(|i| Stream {
            labels: Labels::from_pairs([("app", "p".to_string()), ("id", format!("{i}"))]),
            entries: (0..40_000)
                .map(|k| Entry {
                    ts: k * day * SEC / 40_000 + i,
                    bytes: 100.0,
                    val: k as f64,
                })
                .collect(),
        })
        .collect();
    let mem = Mem { streams };
    let params = EvalParams {
        start_ns: 0,
        end_ns: day * SEC,
        step_ns: 60 * SEC,
        max_series: 1000,
    };
    for q in [
        r#"sum(count_over_time({app="p"}[5m]))"#,
        r#"sum by (id) (rate({app="p"}[1h]))"#,
        r#"quantile_over_time(0.99, {app="p"} | unwrap v [5m])"#,
        r#"topk(5, sum_over_time({app="p"} | unwrap v [10m]))"#,
    ] {
        let t = std::time::Instant::now();
        let r = evaluate(&metric(q), &params, &mem);
        assert!(r.is_ok());
        eprintln!("{q}: {:?}", t.elapsed());
    }
}
