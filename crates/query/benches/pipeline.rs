//! Throughput of the line prefilter and the `| json | level="error"` pipeline over
//! 100k realistic LLM-serving JSON log lines. Run with
//! `cargo bench -p inferscope-query --bench pipeline`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inferscope_model::Labels;
use inferscope_query::pipeline::json::{KeyFilter, flatten, flatten_only};
use inferscope_query::{Expr, LogSelector, parse};

fn lines() -> Vec<String> {
    let models = ["llama-3-70b", "mistral-7b", "qwen2-72b", "gpt-oss-20b"];
    let msgs = [
        "request completed",
        "request queued",
        "kv cache hit",
        "upstream timeout waiting for worker",
        "batch scheduled",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..100_000)
        .map(|i| {
            let r = next();
            let level = match r % 100 {
                0..=4 => "error",
                5..=14 => "warn",
                15..=59 => "info",
                _ => "debug",
            };
            format!(
                r#"{{"ts":"2026-11-21T10:{:02}:{:02}.{:03}Z","level":"{level}","msg":"{}","model":"{}","request_id":"req-{:016x}","prompt_tokens":{},"completion_tokens":{},"latency_ms":{}.{},"user":{{"id":"u{}","tier":"{}"}},"status":{}}}"#,
                (i / 60_000) % 60,
                (i / 1000) % 60,
                i % 1000,
                msgs[(r >> 8) as usize % msgs.len()],
                models[(r >> 16) as usize % models.len()],
                next(),
                (r >> 20) % 4000,
                (r >> 32) % 2000,
                (r >> 40) % 5000,
                (r >> 50) % 10,
                (r >> 24) % 10_000,
                if r % 3 == 0 { "pro" } else { "free" },
                if level == "error" { 500 } else { 200 },
            )
        })
        .collect()
}

fn selector(q: &str) -> LogSelector {
    match parse(q) {
        Ok(Expr::Log(s)) => s,
        other => panic!("bad bench query {q}: {other:?}"),
    }
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let total: u64 = lines.iter().map(|l| l.len() as u64).sum();
    let stream = Labels::from_pairs([("app", "vllm"), ("namespace", "prod")]);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));

    for (name, q) in [
        ("prefilter_literal", r#"{app="vllm"} |= "timeout""#),
        (
            "prefilter_literal_regex_alt",
            r#"{app="vllm"} |~ "timeout|refused""#,
        ),
        ("prefilter_regex_ci", r#"{app="vllm"} |~ "(?i)TIME[a-z]+T""#),
    ] {
        let f = selector(q).line_prefilter().expect("has a prefilter");
        g.bench_function(name, |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|l| f.matches(black_box(l.as_bytes())))
                    .count()
            })
        });
    }

    for (name, q) in [
        ("json_level_error", r#"{app="vllm"} | json | level="error""#),
        (
            "json_paths_level_error",
            r#"{app="vllm"} | json level | level="error""#,
        ),
        (
            "json_line_format",
            r#"{app="vllm"} | json | line_format "{{.level}} {{.msg}}""#,
        ),
    ] {
        let p = selector(q).pipeline().expect("compiles");
        g.bench_function(name, |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter_map(|l| p.process(0, black_box(l), &stream, &[]))
                    .count()
            })
        });
    }
    // The scanner alone: every leaf, and only the keys ingest normalization
    // looks for (time, level, ids), the others skipped undecoded.
    g.bench_function("json_flatten_all", |b| {
        b.iter(|| {
            let mut leaves = 0usize;
            for l in &lines {
                let _ = flatten(black_box(l), &mut |_, _| leaves += 1);
            }
            leaves
        })
    });
    let ingest_keys = KeyFilter::new(&[
        "level",
        "severity",
        "lvl",
        "levelname",
        "timestamp",
        "time",
        "ts",
        "trace_id",
        "span_id",
        "request_id",
        "x_request_id",
        "user_id",
        "session_id",
    ]);
    g.bench_function("json_flatten_only_ingest_keys", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for l in &lines {
                let _ = flatten_only(black_box(l), Some(&ingest_keys), &mut |_, _, _| found += 1);
            }
            found
        })
    });
    let hinted = selector(r#"{app="vllm"} | json | level="error""#)
        .pipeline_with_required_labels(&["model"])
        .expect("compiles");
    g.bench_function("json_level_error_hinted_by_model", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter_map(|l| hinted.process(0, black_box(l), &stream, &[]))
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
