//! The push path in process, with the ingest pipeline on and off: the same
//! snappy protobuf bodies go through `decode_protobuf` and `accept` (validate,
//! normalize, redact, cardinality, rate limit, WAL append with fsync, head),
//! once into a store configured like `inferscope bench --compare-raw`'s raw
//! path and once with the defaults.
//!
//! No HTTP and no block writes are timed (blocks are flushed between rounds,
//! untimed): the costs both paths share are left out, so the pipeline's share
//! of the time is larger here than end to end — the stricter measure of the
//! "≥ 80 % of the raw push path" target. Rounds alternate between the two
//! stores, on one thread, and the medians are compared.
//!
//! `cargo bench -p inferscope-server --bench accept [-- MB_PER_ROUND ROUNDS] [raw|pipeline]`
//! (naming one path runs only that one, for a profiler).

use std::sync::Arc;
use std::time::Instant;

use inferscope_datagen::{Generator, GeneratorConfig};
use inferscope_server::bench::bench_config;
use inferscope_server::config::Config;
use inferscope_server::ingest::accept::accept;
use inferscope_server::ingest::push_decode::{decode_protobuf, encode_protobuf};
use inferscope_server::state::AppState;

/// The allocator of the `inferscope` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Raw bytes per push body, as `inferscope bench` sends them.
const BODY_BYTES: usize = 1 << 20;

fn state(
    pipeline: bool,
    dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
) -> Arc<AppState> {
    let mut config = Config::from_yaml(&bench_config(pipeline)).expect("bench config");
    config.common.path_prefix = dir.to_path_buf();
    config.validate().expect("valid bench config");
    runtime
        .block_on(inferscope_server::open_state(config))
        .expect("server state")
}

/// CPU time of the calling thread in seconds (`/proc/thread-self/schedstat`):
/// unlike wall time, it leaves out waiting for fsync, the noisiest part.
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}

/// Wall and CPU seconds of one round.
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

/// Pushes every body through decode and `accept`.
fn round(state: &AppState, bodies: &[Vec<u8>]) -> Timing {
    let (started, cpu) = (Instant::now(), thread_cpu_seconds());
    for body in bodies {
        let streams = decode_protobuf(body, 64 << 20).expect("decode");
        let accepted = accept(state, "fake", streams).expect("accept");
        assert!(
            accepted.partial_error.is_none(),
            "{:?}",
            accepted.partial_error
        );
    }
    Timing {
        wall: started.elapsed().as_secs_f64(),
        cpu: thread_cpu_seconds() - cpu,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    inferscope_server::allocator::tune();
    // `cargo bench` passes `--bench`; the figures are the first numbers given.
    let numbers: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let mb_per_round = numbers.first().copied().unwrap_or(64);
    let rounds = numbers.get(1).copied().unwrap_or(7).max(1);
    let only = std::env::args().find(|a| a == "raw" || a == "pipeline");
    let runs = |path: &str| only.as_deref().is_none_or(|o| o == path);

    let mut generator = Generator::new(GeneratorConfig::default());
    let mut raw_bytes = 0usize;
    let mut lines = 0usize;
    let bodies: Vec<Vec<u8>> = (0..mb_per_round)
        .map(|_| {
            let batch = generator.next_batch(BODY_BYTES);
            for stream in &batch {
                lines += stream.entries.len();
                raw_bytes += stream.entries.iter().map(|e| e.line.len()).sum::<usize>();
            }
            encode_protobuf(&batch)
        })
        .collect();
    println!(
        "accept: {rounds} rounds of {:.1} MB raw ({lines} lines, {} bodies) per path",
        raw_bytes as f64 / 1e6,
        bodies.len()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let pipeline_dir = tempfile::tempdir().expect("tempdir");
    let raw = state(false, raw_dir.path(), &runtime);
    let pipeline = state(true, pipeline_dir.path(), &runtime);

    let skipped = Timing {
        wall: f64::NAN,
        cpu: f64::NAN,
    };
    let mb = raw_bytes as f64 / 1e6;
    let (mut raw_times, mut pipeline_times) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let time = |path: &str, state: &AppState| {
            if runs(path) {
                round(state, &bodies)
            } else {
                skipped
            }
        };
        // Alternate which path goes first, so drift affects both alike.
        let (r, p) = if i % 2 == 0 {
            let r = time("raw", &raw);
            (r, time("pipeline", &pipeline))
        } else {
            let p = time("pipeline", &pipeline);
            (time("raw", &raw), p)
        };
        for s in [&raw, &pipeline] {
            runtime.block_on(s.store.flush()).expect("flush");
        }
        println!(
            "round {i}: raw path {:>6.1} MB/s ({:>6.1} per CPU second), \
             pipeline {:>6.1} MB/s ({:>6.1} per CPU second)",
            mb / r.wall,
            mb / r.cpu,
            mb / p.wall,
            mb / p.cpu,
        );
        raw_times.push(r);
        pipeline_times.push(p);
    }
    for (name, s) in [("raw path", &raw), ("pipeline", &pipeline)] {
        let m = s.store.metrics();
        println!(
            "{name}: WAL {:.1} MB for {:.1} MB raw ({:.2}×), blocks {:.1} MB",
            m.wal_bytes as f64 / 1e6,
            mb * rounds as f64,
            m.wal_bytes as f64 / 1e6 / (mb * rounds as f64),
            m.block_bytes as f64 / 1e6,
        );
    }
    let wall = |t: &[Timing]| median(&mut t.iter().map(|t| t.wall).collect::<Vec<_>>());
    let cpu = |t: &[Timing]| median(&mut t.iter().map(|t| t.cpu).collect::<Vec<_>>());
    let (rw, pw) = (wall(&raw_times), wall(&pipeline_times));
    let (rc, pc) = (cpu(&raw_times), cpu(&pipeline_times));
    println!(
        "median wall: raw path {:.1} MB/s ({:.0} lines/s), pipeline {:.1} MB/s ({:.0} lines/s): \
         {:.0} % of the raw path",
        mb / rw,
        lines as f64 / rw,
        mb / pw,
        lines as f64 / pw,
        100.0 * rw / pw
    );
    println!(
        "median CPU:  raw path {:.1} MB per CPU second, pipeline {:.1}: {:.0} % of the raw path; \
         the pipeline adds {:.2} ms of CPU per MB",
        mb / rc,
        mb / pc,
        100.0 * rc / pc,
        1e3 * (pc - rc) / mb
    );
}
