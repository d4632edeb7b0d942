//! Generation throughput: the benchmark loader needs ≥ 300 MB/s on one thread.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inferscope_datagen::{Generator, GeneratorConfig};

const BATCH: usize = 4 << 20;

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("datagen");
    let mut g = Generator::new(GeneratorConfig::default());
    // Throughput is per batch of ~BATCH line bytes.
    group.throughput(Throughput::Bytes(BATCH as u64));
    group.bench_function("next_batch_4MiB", |b| {
        b.iter(|| black_box(g.next_batch(BATCH)))
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
