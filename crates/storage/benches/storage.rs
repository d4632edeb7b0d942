//! Storage benchmarks: WAL append, flush to Parquet, block scan with a
//! substring filter; also prints the compression ratio on JSON log lines.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inferscope_model::{Labels, LogEntry, PushStream, TimeRange};
use inferscope_storage::{LineFilter, ScanRequest, Store, StoreConfig, WalSync};

const STREAMS: usize = 8;
const LINES_PER_BATCH: usize = 20_000;

struct Xorshift(u64);
impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Realistic JSON lines of an LLM gateway.
fn batch(seed: u64, start_ns: i64) -> (Vec<PushStream>, u64) {
    let mut rng = Xorshift(seed | 1);
    let models = [
        "llama-3-70b",
        "mistral-7b-instruct",
        "qwen2-72b",
        "gpt-oss-20b",
    ];
    let messages = [
        "request completed",
        "request completed",
        "request completed",
        "upstream timeout, retrying",
        "rate limit exceeded",
        "cache hit",
    ];
    let levels = ["INFO", "INFO", "INFO", "WARN", "ERROR"];
    let mut streams: Vec<PushStream> = (0..STREAMS)
        .map(|i| PushStream {
            labels: Labels::from_pairs([
                ("app", "aigateway".to_string()),
                ("namespace", "prod".to_string()),
                ("pod", format!("aigateway-{i}")),
            ]),
            entries: Vec::with_capacity(LINES_PER_BATCH / STREAMS),
        })
        .collect();
    let mut bytes = 0;
    for i in 0..LINES_PER_BATCH {
        let r = rng.next();
        let ts = start_ns + i as i64 * 1_000_000 + (r % 1000) as i64;
        let secs = ts / 1_000_000_000;
        let micros = (ts / 1000) % 1_000_000;
        let trace = format!("{:016x}{:016x}", rng.next(), rng.next());
        let model = models[(r >> 8) as usize % models.len()];
        let level = levels[(r >> 12) as usize % levels.len()];
        let msg = messages[(r >> 16) as usize % messages.len()];
        let line = format!(
            r#"{{"timestamp":"2026-11-21T{:02}:{:02}:{:02}.{:06}Z","level":"{level}","message":"{msg}","trace_id":"{trace}","model":"{model}","latency_ms":{},"status":{},"prompt_tokens":{},"completion_tokens":{},"route":"/v1/chat/completions","tenant":"team-{}","stream":{}}}"#,
            (secs / 3600) % 24,
            (secs / 60) % 60,
            secs % 60,
            micros,
            20 + (r >> 20) % 3000,
            if level == "ERROR" { 503 } else { 200 },
            (r >> 32) % 4096,
            (r >> 44) % 1024,
            (r >> 54) % 12,
            (r >> 60).is_multiple_of(2),
        );
        bytes += line.len() as u64;
        streams[i % STREAMS].entries.push(LogEntry::new(ts, line));
    }
    (streams, bytes)
}

async fn open(dir: &std::path::Path, sync: WalSync) -> Store {
    let mut c = StoreConfig::local(dir).expect("config");
    c.wal_sync = sync;
    c.head_max_bytes = usize::MAX;
    Store::open(c).await.expect("open")
}

struct Needle(&'static [u8]);
impl LineFilter for Needle {
    fn keep(&self, line: &[u8]) -> bool {
        memchr::memmem::find(line, self.0).is_some()
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (data, raw) = batch(42, 1_763_719_200_000_000_000);

    let mut g = c.benchmark_group("storage");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(raw));
    for (name, sync) in [
        ("append_wal_never", WalSync::Never),
        ("append_wal_always", WalSync::Always),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut store = rt.block_on(open(dir.path(), sync));
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    if i % 32 == 31 {
                        drop(store);
                        std::fs::remove_dir_all(dir.path().join("wal")).expect("rm wal");
                        store = rt.block_on(open(dir.path(), sync));
                    }
                    let t = Instant::now();
                    black_box(store.append("fake", &data).expect("append"));
                    total += t.elapsed();
                }
                total
            })
        });
    }
    // The id index's share of ingest: extraction alone, and the head append
    // that now includes it (compare with append_wal_never).
    g.bench_function("id_extraction", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in &data {
                for e in &s.entries {
                    inferscope_storage::ids::ids_in_entry(
                        &e.line,
                        e.structured_metadata
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str())),
                        &mut |v| n += v.len(),
                    );
                }
            }
            black_box(n)
        })
    });
    g.bench_function("head_append", |b| {
        b.iter(|| {
            let head = inferscope_storage::head::Head::new();
            black_box(head.append("fake", &data))
        })
    });
    const FLUSH_BATCHES: u64 = 5;
    g.throughput(Throughput::Bytes(raw * FLUSH_BATCHES));
    g.bench_function("flush", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = rt.block_on(open(dir.path(), WalSync::Never));
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..FLUSH_BATCHES {
                    store.append("fake", &data).expect("append");
                }
                let t = Instant::now();
                rt.block_on(store.flush()).expect("flush");
                total += t.elapsed();
            }
            total
        })
    });

    // One block of 10 batches for the scan and the compression ratio.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(open(dir.path(), WalSync::Never));
    let mut scan_raw = 0;
    for i in 0..10 {
        let (d, r) = batch(
            i + 1,
            1_763_719_200_000_000_000 + i as i64 * 100_000_000_000,
        );
        store.append("fake", &d).expect("append");
        scan_raw += r;
    }
    rt.block_on(store.flush()).expect("flush");
    let m = store.metrics();
    eprintln!(
        "compression: {} raw line bytes -> {} block bytes = {:.2}% ({} lines)",
        scan_raw,
        m.block_bytes,
        100.0 * m.block_bytes as f64 / scan_raw as f64,
        10 * LINES_PER_BATCH
    );
    g.throughput(Throughput::Bytes(scan_raw));
    let req = ScanRequest {
        tenant: "fake".into(),
        matchers: vec![],
        range: TimeRange::all(),
        line_filter: Some(Arc::new(Needle(b"0123456789abcdef"))),
        id_hint: None,
    };
    g.bench_function("scan_block_needle", |b| {
        b.iter(|| {
            let tasks = rt.block_on(store.scan(&req)).expect("scan");
            let mut n = 0u64;
            for t in &tasks {
                t.run(&mut |_, e| n += e.line.len() as u64).expect("run");
            }
            black_box(n)
        })
    });
    let tasks = rt.block_on(store.scan(&req)).expect("scan");
    g.bench_function("scan_block_needle_run_only", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for t in &tasks {
                t.run(&mut |_, e| n += e.line.len() as u64).expect("run");
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(storage, benches);
criterion_main!(storage);
