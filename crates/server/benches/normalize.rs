//! Ingest normalization cost over the demo's lines (gateway, Heimdall,
//! structlog JSON and vLLM plain text): lines/s and MB/s of line bytes, with
//! the default settings. Compare with ingest's ~100 MB/s end to end.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use inferscope_datagen::{Generator, GeneratorConfig};
use inferscope_server::config::Config;
use inferscope_server::ingest::normalize::Normalizer;

const BATCH: usize = 4 << 20;

fn normalize(c: &mut Criterion) {
    let config = GeneratorConfig::default();
    let now = config.start_ns + 3_600 * 1_000_000_000;
    let batch = Generator::new(config).next_batch(BATCH);
    let lines: u64 = batch.iter().map(|s| s.entries.len() as u64).sum();
    let bytes: u64 = batch
        .iter()
        .flat_map(|s| &s.entries)
        .map(|e| e.line.len() as u64)
        .sum();
    let normalizer = Normalizer::new(&Config::default());

    let mut group = c.benchmark_group("normalize");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("datagen_4MiB_bytes", |b| {
        b.iter_batched(
            || batch.clone(),
            |streams| black_box(normalizer.normalize(streams, now)),
            BatchSize::LargeInput,
        )
    });
    group.throughput(Throughput::Elements(lines));
    group.bench_function("datagen_4MiB_lines", |b| {
        b.iter_batched(
            || batch.clone(),
            |streams| black_box(normalizer.normalize(streams, now)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, normalize);
criterion_main!(benches);
