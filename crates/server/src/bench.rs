//! `inferscope bench`: an end-to-end benchmark on a realistic LLM-stack dataset.
//!
//! 1. Generates `--size` bytes of log lines (gateway, scheduler, vLLM workers;
//!    200 streams over 24 h) with `inferscope-datagen`, encodes them as snappy
//!    protobuf push bodies, and writes the raw lines to `raw.log`.
//! 2. Starts `inferscope serve` as a child process (so its peak RSS is its
//!    own) and pushes the bodies over loopback HTTP on `--connections`
//!    connections; then `POST /flush` writes every block.
//! 3. Runs a fixed set of LogQL queries through `query_range`, then times
//!    `GET /api/v1/trace/{id}` for a trace id from the middle of the data.
//! 4. Runs the simple references over the same raw bytes: `zstd -3`,
//!    `zstd -dc | grep -F` and `grep -F`.
//!
//! It prints ingest MB/s and lines/s, bytes on disk and the compression
//! ratio, peak RSS, and per query latency and scanned MB/s per core.
//!
//! With `--compare-raw`, the dataset is also pushed into servers with the
//! ingest pipeline off (`--rounds` times, alternating with the pipeline,
//! after one warm-up ingest that is not counted), and the pipeline's
//! throughput and server CPU per MB are printed as a share of that raw push
//! path's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use inferscope_datagen::{Generator, GeneratorConfig};

use crate::ingest::push_decode::encode_protobuf;
use crate::units::parse_bytes;

/// Options of `inferscope bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Raw log bytes to generate and ingest (e.g. 1GB, 200MB).
    #[arg(long, default_value = "1GB", value_parser = parse_bytes)]
    pub size: u64,
    /// Working directory for the dataset and the server's data [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Concurrent push connections.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Raw bytes per push request.
    #[arg(long, default_value = "1MB", value_parser = parse_bytes)]
    pub batch_bytes: u64,
    /// Times each query runs (the best and the median are printed).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Server config to use instead of the benchmark's own (which lifts the
    /// rate limits and accepts old samples; keep those settings in yours).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Skip the zstd/grep reference measurements.
    #[arg(long)]
    pub skip_reference: bool,
    /// Also ingest the dataset once with the ingest pipeline off (no
    /// normalization, `detected_level`, ids as metadata or redaction), after
    /// an uncounted warm-up ingest, and print the pipeline's throughput as a
    /// share of that raw push path.
    #[arg(long)]
    pub compare_raw: bool,
    /// With `--compare-raw`: ingest the dataset this many times each way,
    /// alternating (raw, pipeline, raw, …), and compare the medians, which a
    /// noisy machine needs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
}

/// The fixed queries: name, LogQL, limit.
struct BenchQuery {
    name: &'static str,
    query: String,
    limit: usize,
    /// For metric queries: the span before the end of the data, and the step.
    span_and_step: Option<(Duration, Duration)>,
}

fn log_query(name: &'static str, query: String, limit: usize) -> BenchQuery {
    BenchQuery {
        name,
        query,
        limit,
        span_and_step: None,
    }
}

fn metric_query(name: &'static str, query: &str, span: Duration, step: Duration) -> BenchQuery {
    BenchQuery {
        name,
        query: query.to_string(),
        limit: 100,
        span_and_step: Some((span, step)),
    }
}

/// The fixed queries: the log queries of the log-store issue, then the
/// metric queries of the LogQL-metrics issue.
fn queries(needle: &str) -> Vec<BenchQuery> {
    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);
    vec![
        log_query(
            "needle |= over all streams",
            format!("{{namespace=~\".+\"}} |= \"{needle}\""),
            100,
        ),
        log_query(
            "json | level=\"ERROR\"",
            "{app=\"aigateway\"} | json | level=\"ERROR\"".into(),
            100,
        ),
        log_query(
            "json | level=\"ERROR\" (5000)",
            "{app=\"aigateway\"} | json | level=\"ERROR\"".into(),
            5000,
        ),
        log_query(
            "label-only selector",
            "{app=\"vllm\", role=\"decode\"}".into(),
            1000,
        ),
        metric_query(
            "errors by app [1h], 24 h step 1h",
            "sum by (app) (count_over_time({app=~\"aigateway|heimdall|chat-api\"} | json | level=~\"(?i)error\" [1h]))",
            24 * HOUR,
            HOUR,
        ),
        metric_query(
            "count [1m], 1 h step 1m",
            "sum(count_over_time({app=\"aigateway\"} [1m]))",
            HOUR,
            MINUTE,
        ),
        metric_query(
            "p99 unwrap latency by pod, 1 h",
            "quantile_over_time(0.99, {app=\"aigateway\"} | json | unwrap latency_ms | __error__=\"\" [5m]) by (pod)",
            HOUR,
            5 * MINUTE,
        ),
    ]
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let temp;
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("failed to create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&work)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "inferscope bench: {} of raw logs, {cores} cores, work dir {}",
        human(args.size),
        work.display()
    );

    let dataset = generate(&args, &work)?;
    let own_config = write_config(&work, "bench.yaml", &bench_config(true))?;
    // Earlier rounds of the comparison; the last pipeline round is the main
    // ingest below, whose data the queries then read.
    let mut raw_rounds = Vec::new();
    let mut pipeline_rounds = Vec::new();
    if args.compare_raw {
        let config = write_config(&work, "bench-raw.yaml", &bench_config(false))?;
        // The first ingest after generating the dataset runs up to a half
        // slower than the rest (seen on every run on this 2-core VM), and it
        // would always be a raw one: it warms up and is not counted.
        let warm_up = throwaway_ingest(&work, &config, &dataset, args.connections)?;
        println!(
            "warm-up  {:>9.1} MB/s raw   (raw path, not counted)",
            dataset.raw_bytes as f64 / 1e6 / warm_up.push_seconds
        );
        for round in 0..args.rounds {
            raw_rounds.push(throwaway_ingest(
                &work,
                &config,
                &dataset,
                args.connections,
            )?);
            if round + 1 < args.rounds {
                pipeline_rounds.push(throwaway_ingest(
                    &work,
                    &own_config,
                    &dataset,
                    args.connections,
                )?);
            }
        }
    }
    let port = free_port()?;
    let config = args.config.as_deref().unwrap_or(&own_config);
    let mut server = start_server(config, &work.join("data"), port)?;
    let result = (|| -> anyhow::Result<()> {
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&base)?;
        let ingest = ingest(&base, &dataset, args.connections, server.id())?;
        let peak_rss = peak_rss_bytes(server.id());
        let blocks = dir_size(&work.join("data").join("blocks"));
        println!();
        println!(
            "ingest   {:>9.1} MB/s raw   {:>10.0} lines/s   ({} in {:.2} s, {} requests)",
            dataset.raw_bytes as f64 / 1e6 / ingest.push_seconds,
            dataset.lines as f64 / ingest.push_seconds,
            human(dataset.raw_bytes),
            ingest.push_seconds,
            dataset.bodies.len()
        );
        if !raw_rounds.is_empty() {
            pipeline_rounds.push(ingest.clone());
            print_comparison(&dataset, &pipeline_rounds, &raw_rounds);
        }
        println!(
            "flush    {:>9.2} s to write all blocks",
            ingest.flush_seconds
        );
        println!(
            "on disk  {:>9} in blocks = {:.1} % of raw",
            human(blocks),
            100.0 * blocks as f64 / dataset.raw_bytes as f64
        );
        println!(
            "peak RSS {:>9} during ingest, {} with the final flush (server process, VmHWM)",
            human(ingest.peak_rss_ingest),
            human(peak_rss.unwrap_or(0))
        );
        println!();
        println!(
            "{:<32} {:>10} {:>10} {:>10} {:>10} {:>16}",
            "query", "best", "median", "cached", "entries", "scanned MB/s/core"
        );
        for q in queries(&dataset.needle) {
            // Timed runs bypass the results cache (`Cache-Control: no-cache`).
            let mut times = Vec::new();
            let mut last = QueryFigures::default();
            for _ in 0..args.repeat.max(1) {
                last = run_query(&base, &q, dataset.start_ns, dataset.end_ns, false)?;
                times.push(last.seconds);
            }
            times.sort_by(f64::total_cmp);
            let scanned_rate =
                last.bytes_processed as f64 / 1e6 / last.exec_seconds.max(1e-9) / cores as f64;
            // A dashboard's repeat: one run fills the cache, the next is timed.
            let cached = match q.span_and_step {
                Some(_) => {
                    run_query(&base, &q, dataset.start_ns, dataset.end_ns, true)?;
                    let again = run_query(&base, &q, dataset.start_ns, dataset.end_ns, true)?;
                    format!("{:.3} s", again.seconds)
                }
                None => "-".to_string(),
            };
            println!(
                "{:<32} {:>8.3} s {:>8.3} s {:>10} {:>10} {:>16.0}",
                q.name,
                times[0],
                times[times.len() / 2],
                cached,
                last.entries,
                scanned_rate
            );
        }
        trace_lookups(&base, &dataset, args.repeat)?;
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    result?;

    if !args.skip_reference {
        println!();
        reference(&work, &dataset.needle, dataset.raw_bytes)?;
    }
    Ok(())
}

struct Dataset {
    bodies: Vec<Vec<u8>>,
    raw_bytes: u64,
    lines: u64,
    needle: String,
    start_ns: i64,
    end_ns: i64,
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn generate(args: &BenchArgs, work: &Path) -> anyhow::Result<Dataset> {
    // About 24 h of data for the typical line length; starting 48 h back keeps
    // the timeline in the past whatever the generated lines' real length.
    const AVG_LINE: u64 = 250;
    let start_ns = crate::http::params::now_ns() - 48 * 3600 * 1_000_000_000;
    let mut generator = Generator::new(GeneratorConfig {
        seed: 42,
        streams: 200,
        start_ns,
        lines_per_second: (args.size / AVG_LINE / (24 * 3600)).max(1),
        error_ratio: 0.02,
    });
    let mut raw =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(work.join("raw.log"))?);
    let bar = progress(args.size, "generate");
    let mut bodies = Vec::new();
    let mut needle = None;
    let mut raw_bytes = 0u64;
    let mut lines = 0u64;
    while raw_bytes < args.size {
        let batch = generator.next_batch(args.batch_bytes as usize);
        for stream in &batch {
            for entry in &stream.entries {
                raw.write_all(entry.line.as_bytes())?;
                raw.write_all(b"\n")?;
                raw_bytes += entry.line.len() as u64;
                lines += 1;
            }
        }
        // A trace id from the middle of the data: a needle that occurs a handful of times.
        if needle.is_none() && raw_bytes >= args.size / 2 {
            needle = crate::demo::find_trace_id(&batch);
        }
        bodies.push(encode_protobuf(&batch));
        bar.set_position(raw_bytes.min(args.size));
    }
    // Written back now, not during the first ingest, whose WAL fsyncs would
    // wait behind it.
    raw.into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
        .context("failed to sync raw.log")?;
    bar.finish();
    let end_ns = generator.now_ns() + 1;
    let Some(needle) = needle else {
        bail!("the generated data holds no trace id to search for");
    };
    Ok(Dataset {
        bodies,
        raw_bytes,
        lines,
        needle,
        start_ns,
        end_ns,
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The benchmark's own server settings: no rate limits, old samples accepted;
/// without `pipeline`, the ingest pipeline off (no `detected_level`,
/// `service_name`, event time, metadata copies or redaction): the raw push path.
pub fn bench_config(pipeline: bool) -> String {
    let mut config = format!(
        "limits_config:\n  reject_old_samples: false\n  ingestion_rate_mb: 100000\n  \
         ingestion_burst_size_mb: 100000\n  per_stream_rate_limit: 10GB\n  \
         per_stream_rate_limit_burst: 10GB\n  max_entries_limit_per_query: 50000\n  \
         retention_period: 0\n  discover_log_levels: {pipeline}\n"
    );
    if !pipeline {
        config.push_str(
            "  discover_service_name: []\ningest:\n  event_time:\n    enabled: false\n  \
             labels:\n    structured_metadata_fields: []\nredaction:\n  enabled: false\n",
        );
    }
    config
}

fn write_config(work: &Path, name: &str, config: &str) -> anyhow::Result<PathBuf> {
    let path = work.join(name);
    std::fs::write(&path, config)?;
    Ok(path)
}

/// The pipeline against the raw path: throughput (wall clock) and the
/// server's CPU per MB, medians over the rounds, measured two ways:
///
/// * **push**: until the last push is acknowledged (in the WAL and the head);
/// * **to blocks**: push plus the final `POST /flush`, until every entry is
///   in a block. This is the fair comparison: a head is written to a block
///   whenever it reaches `head_max_bytes`, so during the push each path has
///   written a different share of its data to blocks (the pipeline's head
///   fills faster, with its metadata), and the rest, left to the final flush,
///   is work the push figure leaves out — up to a whole head's worth.
fn print_comparison(dataset: &Dataset, pipeline: &[IngestFigures], raw: &[IngestFigures]) {
    let mb = dataset.raw_bytes as f64 / 1e6;
    let median = |rounds: &[IngestFigures], f: &dyn Fn(&IngestFigures) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let push_rate = |r: &IngestFigures| mb / r.push_seconds;
    let stored_rate = |r: &IngestFigures| mb / (r.push_seconds + r.flush_seconds);
    let push_cpu = |r: &IngestFigures| 1e3 * r.server_cpu_seconds / mb;
    let stored_cpu = |r: &IngestFigures| 1e3 * (r.server_cpu_seconds + r.flush_cpu_seconds) / mb;
    let (pipeline_rate, raw_rate) = (median(pipeline, &push_rate), median(raw, &push_rate));
    let (pipeline_stored, raw_stored) = (median(pipeline, &stored_rate), median(raw, &stored_rate));
    let (pipeline_cpu, raw_cpu) = (median(pipeline, &push_cpu), median(raw, &push_cpu));
    let (pipeline_stored_cpu, raw_stored_cpu) =
        (median(pipeline, &stored_cpu), median(raw, &stored_cpu));
    println!(
        "raw path {:>9.1} MB/s raw   {:>10.0} lines/s   (pipeline off); with the pipeline: {:.0} % of it",
        raw_rate,
        raw_rate * dataset.lines as f64 / mb,
        100.0 * pipeline_rate / raw_rate
    );
    println!(
        "to blocks {:>8.1} MB/s with the pipeline, {:.1} without: {:.0} % (push and final flush, until every entry is in a block)",
        pipeline_stored,
        raw_stored,
        100.0 * pipeline_stored / raw_stored
    );
    println!(
        "server CPU {:>7.2} ms per MB with the pipeline, {:.2} without: {:.0} % of the raw path's MB per CPU second; to blocks {:.2} and {:.2}: {:.0} %",
        pipeline_cpu,
        raw_cpu,
        100.0 * raw_cpu / pipeline_cpu,
        pipeline_stored_cpu,
        raw_stored_cpu,
        100.0 * raw_stored_cpu / pipeline_stored_cpu
    );
    if raw.len() > 1 {
        // Each pipeline round against the raw round just before it: the
        // median of these ratios cancels the host's drift within a run,
        // which the ratio of the two medians does not.
        let paired = |share: &dyn Fn(&IngestFigures, &IngestFigures) -> f64| {
            let mut v: Vec<f64> = pipeline.iter().zip(raw).map(|(p, r)| share(p, r)).collect();
            v.sort_by(f64::total_cmp);
            100.0 * v[v.len() / 2]
        };
        println!(
            "paired   rounds: the pipeline at {:.0} % of the raw path pushing, {:.0} % to blocks; \
             server CPU {:.0} % and {:.0} % (medians of each round's share of the raw round before it)",
            paired(&|p, r| push_rate(p) / push_rate(r)),
            paired(&|p, r| stored_rate(p) / stored_rate(r)),
            paired(&|p, r| push_cpu(r) / push_cpu(p)),
            paired(&|p, r| stored_cpu(r) / stored_cpu(p)),
        );
        let list = |rounds: &[IngestFigures], rate: &dyn Fn(&IngestFigures) -> f64| {
            rounds
                .iter()
                .map(|r| format!("{:.1}", rate(r)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        type Figure<'f> = &'f dyn Fn(&IngestFigures) -> f64;
        let figures: [(&str, Figure); 4] = [
            ("rounds   MB/s", &push_rate),
            ("         to blocks,", &stored_rate),
            ("         server CPU ms per MB pushing,", &push_cpu),
            ("         and to blocks,", &stored_cpu),
        ];
        for (what, figure) in figures {
            println!(
                "{what} with the pipeline: {}; raw path: {}",
                list(pipeline, figure),
                list(raw, figure)
            );
        }
        println!("         (medians above)");
    }
}

/// Ingests the dataset into a server of its own (its data is deleted
/// afterwards), for the comparison with the raw path.
fn throwaway_ingest(
    work: &Path,
    config: &Path,
    dataset: &Dataset,
    connections: usize,
) -> anyhow::Result<IngestFigures> {
    let port = free_port()?;
    let data = work.join("data-throwaway");
    let mut server = start_server(config, &data, port)?;
    let base = format!("http://127.0.0.1:{port}");
    let result = wait_ready(&base).and_then(|()| ingest(&base, dataset, connections, server.id()));
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
    result
}

fn start_server(config: &Path, data: &Path, port: u16) -> anyhow::Result<Child> {
    let _ = std::fs::remove_dir_all(data);
    Command::new(std::env::current_exe()?)
        .args(["serve", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .env("INFERSCOPE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("failed to start the server")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

fn wait_ready(base: &str) -> anyhow::Result<()> {
    let agent = agent();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = agent.get(&format!("{base}/ready")).call()
            && r.status() == 200
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the server did not become ready in 30 s")
}

#[derive(Clone)]
struct IngestFigures {
    push_seconds: f64,
    /// CPU time the server process used while the dataset was pushed.
    server_cpu_seconds: f64,
    /// Wall and server CPU time of the final `POST /flush`, which writes the
    /// head left after the push to blocks.
    flush_seconds: f64,
    flush_cpu_seconds: f64,
    peak_rss_ingest: u64,
}

fn ingest(
    base: &str,
    dataset: &Dataset,
    connections: usize,
    server_pid: u32,
) -> anyhow::Result<IngestFigures> {
    let url = format!("{base}/loki/api/v1/push");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let bar = progress(dataset.bodies.len() as u64, "ingest");
    bar.set_style(
        ProgressStyle::with_template("{msg:10} [{bar:40}] {pos}/{len} requests ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let cpu_before = process_cpu_seconds(server_pid);
    std::thread::scope(|scope| {
        for _ in 0..connections.max(1) {
            scope.spawn(|| {
                let agent = agent();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = dataset.bodies.get(i) else {
                        break;
                    };
                    match agent
                        .post(&url)
                        .header("Content-Type", "application/x-protobuf")
                        .send(&body[..])
                    {
                        Ok(r) if r.status() == 204 => bar.inc(1),
                        Ok(r) => {
                            let code = r.status();
                            let text = r.into_body().read_to_string().unwrap_or_default();
                            *failure.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(format!("push answered {code}: {text}"));
                            break;
                        }
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(format!("push failed: {e}"));
                            break;
                        }
                    }
                }
            });
        }
    });
    let push_seconds = started.elapsed().as_secs_f64();
    let server_cpu_seconds = process_cpu_seconds(server_pid) - cpu_before;
    bar.finish();
    if let Some(f) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        bail!(f);
    }
    let peak_rss_ingest = peak_rss_bytes(server_pid).unwrap_or(0);
    let flush_started = Instant::now();
    let cpu_before_flush = process_cpu_seconds(server_pid);
    let r = agent().post(&format!("{base}/flush")).send_empty()?;
    if r.status() != 204 {
        bail!("flush answered {}", r.status());
    }
    Ok(IngestFigures {
        push_seconds,
        server_cpu_seconds,
        flush_seconds: flush_started.elapsed().as_secs_f64(),
        flush_cpu_seconds: process_cpu_seconds(server_pid) - cpu_before_flush,
        peak_rss_ingest,
    })
}

#[derive(Default)]
struct QueryFigures {
    seconds: f64,
    exec_seconds: f64,
    bytes_processed: u64,
    entries: u64,
}

/// Times `GET /api/v1/trace/{id}` for the dataset's needle trace id: the
/// first lookup (which loads the blocks' id sidecars), then `repeat` more.
fn trace_lookups(base: &str, dataset: &Dataset, repeat: usize) -> anyhow::Result<()> {
    let lookup = || -> anyhow::Result<(f64, u64, String)> {
        let started = Instant::now();
        let response = agent()
            .get(&format!("{base}/api/v1/trace/{}", dataset.needle))
            .query("start", dataset.start_ns.to_string())
            .query("end", dataset.end_ns.to_string())
            .call()?;
        let status = response.status();
        let blocks = format!(
            "{} read, {} skipped",
            header(&response, "x-inferscope-blocks-read"),
            header(&response, "x-inferscope-blocks-skipped")
        );
        let text = response.into_body().read_to_string()?;
        let seconds = started.elapsed().as_secs_f64();
        if status != 200 {
            bail!("trace lookup answered {status}: {text}");
        }
        let json: serde_json::Value = serde_json::from_str(&text)?;
        let entries = json["data"]["stats"]["summary"]["totalEntriesReturned"]
            .as_u64()
            .unwrap_or(0);
        Ok((seconds, entries, blocks))
    };
    let (first, entries, blocks) = lookup()?;
    let mut times = Vec::new();
    for _ in 0..repeat.max(1) {
        times.push(lookup()?.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{:<32} {:>8.3} s {:>8.3} s {:>10} {:>10}   first {:.3} s; blocks {blocks}",
        "trace lookup /api/v1/trace/{id}",
        times[0],
        times[times.len() / 2],
        "-",
        entries,
        first
    );
    Ok(())
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string()
}

fn run_query(
    base: &str,
    q: &BenchQuery,
    start_ns: i64,
    end_ns: i64,
    use_cache: bool,
) -> anyhow::Result<QueryFigures> {
    let (start_ns, step) = match q.span_and_step {
        Some((span, step)) => (
            end_ns - span.as_nanos() as i64,
            Some(step.as_secs().to_string()),
        ),
        None => (start_ns, None),
    };
    let query = q.query.as_str();
    let limit = q.limit;
    let started = Instant::now();
    let mut request = agent()
        .get(&format!("{base}/loki/api/v1/query_range"))
        .query("query", query)
        .query("limit", limit.to_string())
        .query("start", start_ns.to_string())
        .query("end", end_ns.to_string())
        .query("step", step.unwrap_or_default());
    if !use_cache {
        request = request.header("Cache-Control", "no-cache");
    }
    let response = request.call()?;
    let status = response.status();
    let text = response.into_body().read_to_string()?;
    let seconds = started.elapsed().as_secs_f64();
    if status != 200 {
        bail!("query {query} answered {status}: {text}");
    }
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let summary = &json["data"]["stats"]["summary"];
    Ok(QueryFigures {
        seconds,
        exec_seconds: summary["execTime"].as_f64().unwrap_or(seconds),
        bytes_processed: summary["totalBytesProcessed"].as_u64().unwrap_or(0),
        entries: summary["totalEntriesReturned"].as_u64().unwrap_or(0),
    })
}

/// User and system CPU time of process `pid` and its threads, in seconds
/// (`/proc/<pid>/stat` counts in USER_HZ ticks, 100 a second on Linux); NaN
/// when it cannot be read.
fn process_cpu_seconds(pid: u32) -> f64 {
    const USER_HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces), from field 3 on.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15: 12 and 13 after the name.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) as f64 / USER_HZ,
        _ => f64::NAN,
    }
}

fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn shell_seconds(script: &str, work: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(work)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() && status.code() != Some(1) {
        bail!("reference command failed: {script}");
    }
    Ok(started.elapsed().as_secs_f64())
}

fn reference(work: &Path, needle: &str, raw_bytes: u64) -> anyhow::Result<()> {
    let has_zstd = Command::new("zstd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    println!("reference on the same {} of raw lines:", human(raw_bytes));
    if has_zstd {
        let secs = shell_seconds("zstd -q -f -3 -T1 raw.log -o raw.zst", work)?;
        let size = std::fs::metadata(work.join("raw.zst"))?.len();
        println!(
            "  zstd -3 -T1            {:>8.2} s   {:.1} % of raw",
            secs,
            100.0 * size as f64 / raw_bytes as f64
        );
        let secs = shell_seconds(&format!("zstd -dc raw.zst | grep -F '{needle}'"), work)?;
        println!("  zstd -dc | grep -F     {secs:>8.3} s");
    } else {
        println!("  zstd not installed: skipped (apt-get install zstd)");
    }
    shell_seconds(&format!("grep -F '{needle}' raw.log"), work)?; // warm the page cache
    let secs = shell_seconds(&format!("grep -F '{needle}' raw.log"), work)?;
    println!("  grep -F (page cache)   {secs:>8.3} s");
    Ok(())
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::{bench_config, process_cpu_seconds};
    use crate::config::Config;

    #[test]
    fn process_cpu_time_is_read_and_grows() {
        let me = std::process::id();
        let before = process_cpu_seconds(me);
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = process_cpu_seconds(me);
        assert!(before.is_finite() && before >= 0.0, "{before}");
        assert!(after >= before + 0.02, "{before} -> {after}");
        assert!(process_cpu_seconds(u32::MAX).is_nan());
    }

    #[test]
    fn raw_path_config_turns_the_pipeline_off() {
        let on = Config::from_yaml(&bench_config(true)).expect("pipeline config");
        assert!(on.limits_config.discover_log_levels);
        assert!(on.redaction.enabled);
        assert!(!on.limits_config.reject_old_samples);

        let off = Config::from_yaml(&bench_config(false)).expect("raw path config");
        assert!(!off.limits_config.discover_log_levels);
        assert!(off.limits_config.discover_service_name.is_empty());
        assert!(!off.ingest.event_time.enabled);
        assert!(off.ingest.labels.structured_metadata_fields.is_empty());
        assert!(!off.redaction.enabled);
        assert!(!off.limits_config.reject_old_samples);
    }
}
