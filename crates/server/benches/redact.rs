//! Throughput of secret redaction over generated LLM-serving logs:
//! `cargo bench -p inferscope-server --bench redact`.
//!
//! Two inputs of the same lines: none carries a secret (the usual case, the
//! prefilter only), and 1 % carry one (an OpenAI key, a JWT, an AWS secret by
//! field name, in turn). A third runs `redact_streams` over normalized
//! entries, as ingest does: lines plus their structured metadata (ids copied
//! from the lines, `detected_level`), throughput counted in line bytes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inferscope_datagen::{Generator, GeneratorConfig};
use inferscope_server::config::{Config, RedactionConfig};
use inferscope_server::ingest::normalize::Normalizer;
use inferscope_server::ingest::redact::{RedactionCounts, Redactor};

fn lines(bytes: usize) -> Vec<String> {
    let mut g = Generator::new(GeneratorConfig::default());
    let mut out = Vec::new();
    let mut total = 0;
    while total < bytes {
        for s in g.next_batch(1 << 20) {
            for e in s.entries {
                total += e.line.len();
                out.push(e.line);
            }
        }
    }
    out
}

fn with_secrets(lines: &[String]) -> Vec<String> {
    const SECRETS: [&str; 3] = [
        " api_key=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        " token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        " aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ];
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i % 100 == 0 {
                format!("{l}{}", SECRETS[(i / 100) % SECRETS.len()])
            } else {
                l.clone()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let redactor = Redactor::new(&RedactionConfig::default()).expect("default config compiles");
    let clean = lines(16 << 20);
    let dirty = with_secrets(&clean);
    let mut group = c.benchmark_group("redact");
    group.sample_size(10);
    for (name, input) in [("no_secrets", &clean), ("1pct_secrets", &dirty)] {
        let bytes: usize = input.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut counts = RedactionCounts::default();
                let mut changed = 0usize;
                for line in input.iter() {
                    if let std::borrow::Cow::Owned(_) = redactor.redact(line, &mut counts) {
                        changed += 1;
                    }
                }
                (changed, counts)
            })
        });
    }
    let config = GeneratorConfig::default();
    let now = config.start_ns + 3_600 * 1_000_000_000;
    let (mut streams, _) = Normalizer::new(&Config::default())
        .normalize(Generator::new(config).next_batch(16 << 20), now);
    let bytes: usize = streams
        .iter()
        .flat_map(|s| &s.entries)
        .map(|e| e.line.len())
        .sum();
    group.throughput(Throughput::Bytes(bytes as u64));
    // Nothing is redacted, so every iteration sees the same entries.
    group.bench_function("normalized_entries", |b| {
        b.iter(|| redactor.redact_streams(&mut streams))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
