//! Deterministic generator of realistic LLM-serving logs for the demo, benchmarks and tests.
//!
//! The generator simulates requests flowing through an LLM-serving platform,
//! one deployment unit per inference service:
//!
//! * `chat-api`, a Python structlog service (`{"event":…,"level":"info","timestamp":…}`),
//! * the AI gateway (`app="aigateway"`, Rust JSON: `timestamp`/`level` in UPPERCASE/`message`),
//! * the Heimdall scheduler (`app="heimdall"`, Go slog JSON: `time`/`level`/`msg`),
//! * vLLM prefill and decode workers (`app="vllm"`, plain text `INFO 11-21 10:00:00 [file.py:N] …`).
//!
//! One request leaves lines in every service with the same `trace_id`.
//! A fraction `error_ratio` of requests fails (CUDA OOM, upstream timeout, no
//! ready endpoint), and about 10 % of entries carry `trace_id` as structured
//! metadata. The output depends only on the configuration: the same seed
//! gives the same lines with the same timestamps, whatever the batch sizes.

use std::fmt::Write as _;

use inferscope_model::{Labels, LogEntry, PushStream};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Seed of the pseudo-random generator.
    pub seed: u64,
    /// Total number of streams (distinct label sets), at least 1.
    pub streams: usize,
    /// Timestamp of the first line, in nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// Simulated rate across all streams: lines are spaced `1e9 / lines_per_second` ns apart.
    pub lines_per_second: u64,
    /// Fraction of requests that fail (5xx, timeouts, CUDA OOM).
    pub error_ratio: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 0x5eed,
            streams: 200,
            // 2026-11-21T10:00:00Z
            start_ns: 1_795_255_200_000_000_000,
            lines_per_second: 10_000,
            error_ratio: 0.02,
        }
    }
}

/// SplitMix64: tiny, fast, good enough for synthetic data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; `n` must be > 0.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, mut v: u64, digits: usize) {
    let mut buf = [0u8; 16];
    for i in (0..digits).rev() {
        buf[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
    out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or_default());
}

fn push_u64(out: &mut String, v: u64) {
    let _ = write!(out, "{v}");
}

/// Pushes `v / 10^decimals` with exactly `decimals` decimals.
fn push_fixed(out: &mut String, v: u64, decimals: u32) {
    let p = 10u64.pow(decimals);
    let _ = write!(
        out,
        "{}.{:0width$}",
        v / p,
        v % p,
        width = decimals as usize
    );
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Cached text of the current second in the two layouts we need.
#[derive(Debug, Default)]
struct Clock {
    second: Option<i64>,
    /// `2026-11-21T10:00:00`
    rfc3339: String,
    /// `11-21 10:00:00` (vLLM's layout)
    vllm: String,
}

impl Clock {
    fn set(&mut self, ns: i64) {
        let sec = ns.div_euclid(1_000_000_000);
        if self.second == Some(sec) {
            return;
        }
        self.second = Some(sec);
        let (y, mo, d) = civil_from_days(sec.div_euclid(86_400));
        let s = sec.rem_euclid(86_400);
        let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
        self.rfc3339.clear();
        let _ = write!(self.rfc3339, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}");
        self.vllm.clear();
        let _ = write!(self.vllm, "{mo:02}-{d:02} {h:02}:{mi:02}:{se:02}");
    }
}

/// A model served by one inference service.
struct Model {
    service: &'static str,
    served_name: &'static str,
}

const MODELS: &[Model] = &[
    Model {
        service: "llama-3-3-70b-instruct",
        served_name: "meta-llama/Llama-3.3-70B-Instruct",
    },
    Model {
        service: "qwen2-5-72b-instruct",
        served_name: "Qwen/Qwen2.5-72B-Instruct",
    },
    Model {
        service: "deepseek-r1-distill-32b",
        served_name: "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
    },
    Model {
        service: "mixtral-8x7b-instruct",
        served_name: "mistralai/Mixtral-8x7B-Instruct-v0.1",
    },
    Model {
        service: "gemma-2-27b-it",
        served_name: "google/gemma-2-27b-it",
    },
    Model {
        service: "llama-3-1-8b-instruct",
        served_name: "meta-llama/Llama-3.1-8B-Instruct",
    },
    Model {
        service: "mistral-small-24b",
        served_name: "mistralai/Mistral-Small-24B-Instruct-2501",
    },
];

const NAMESPACES: &[&str] = &["llm-prod", "llm-staging", "research"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sev {
    Info = 0,
    Warn = 1,
    Error = 2,
}

/// Stream indices of one deployment unit (an inference service).
#[derive(Debug, Default)]
struct Unit {
    model: usize,
    /// Request share of this unit, relative.
    weight: f64,
    gateway: [Option<usize>; 3],
    heimdall: [Option<usize>; 3],
    chat: [Option<usize>; 3],
    /// (stream, pod ip) per worker.
    prefill: Vec<(usize, String)>,
    decode: Vec<(usize, String)>,
}

/// A stream slot of a unit, in the order slots are filled when streams run short.
#[derive(Clone, Copy)]
enum Slot {
    Gateway(Sev),
    Heimdall(Sev),
    Chat(Sev),
    Prefill(usize),
    Decode(usize),
}

const SLOTS: &[Slot] = &[
    Slot::Gateway(Sev::Info),
    Slot::Heimdall(Sev::Info),
    Slot::Prefill(0),
    Slot::Decode(0),
    Slot::Chat(Sev::Info),
    Slot::Gateway(Sev::Error),
    Slot::Gateway(Sev::Warn),
    Slot::Heimdall(Sev::Error),
    Slot::Heimdall(Sev::Warn),
    Slot::Chat(Sev::Error),
    Slot::Chat(Sev::Warn),
    Slot::Decode(1),
    Slot::Prefill(1),
    Slot::Decode(2),
    Slot::Decode(3),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    RateLimited,
    CudaOom,
    Timeout,
    NoEndpoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    ChatRequest,
    GwReceived,
    Picked,
    PrefillReceived,
    DecodeAdded,
    DecodeFinished,
    GwCompleted,
    ChatResponse,
    GwRateLimited,
    DecodeOom,
    GwUpstreamError,
    GwTimeout,
    NoEndpoint,
    GwNoEndpoint,
    ChatFailed,
}

impl Outcome {
    fn steps(self) -> &'static [Step] {
        use Step::*;
        match self {
            Outcome::Ok => &[
                ChatRequest,
                GwReceived,
                Picked,
                PrefillReceived,
                DecodeAdded,
                DecodeFinished,
                GwCompleted,
                ChatResponse,
            ],
            Outcome::RateLimited => &[ChatRequest, GwReceived, GwRateLimited, ChatFailed],
            Outcome::CudaOom => &[
                ChatRequest,
                GwReceived,
                Picked,
                PrefillReceived,
                DecodeAdded,
                DecodeOom,
                GwUpstreamError,
                ChatFailed,
            ],
            Outcome::Timeout => &[
                ChatRequest,
                GwReceived,
                Picked,
                PrefillReceived,
                DecodeAdded,
                GwTimeout,
                ChatFailed,
            ],
            Outcome::NoEndpoint => &[
                ChatRequest,
                GwReceived,
                NoEndpoint,
                GwNoEndpoint,
                ChatFailed,
            ],
        }
    }
}

/// One request in flight.
#[derive(Debug, Clone)]
struct Request {
    unit: usize,
    outcome: Outcome,
    step: usize,
    trace_id: String,
    request_id: String,
    completion_id: String,
    user: u64,
    prefill: usize,
    decode: usize,
    prompt_tokens: u64,
    output_tokens: u64,
    /// Simulated end-to-end latency and time to first token, in ms.
    latency_ms: u64,
    ttft_ms: u64,
}

/// Requests interleaved at any time.
const IN_FLIGHT: usize = 24;
/// Probability that a line is background noise (metrics, health checks) rather than a request step.
const BACKGROUND: f64 = 0.15;
/// Probability that a request line carries `trace_id` as structured metadata (≈ 10 % of all lines).
const METADATA: f64 = 0.12;

/// The log generator. See the crate documentation.
#[derive(Debug)]
pub struct Generator {
    config: GeneratorConfig,
    rng: Rng,
    step_ns: i64,
    now_ns: i64,
    clock: Clock,
    labels: Vec<Labels>,
    units: Vec<Unit>,
    total_weight: f64,
    in_flight: Vec<Request>,
    bytes: u64,
    lines: u64,
}

impl Generator {
    /// A generator positioned at `config.start_ns`.
    pub fn new(config: GeneratorConfig) -> Self {
        let mut rng = Rng(config.seed);
        let (labels, units) = topology(&mut rng, config.streams.max(1));
        let total_weight = units.iter().map(|u| u.weight).sum();
        let step_ns = (1_000_000_000 / config.lines_per_second.max(1)).max(1) as i64;
        let mut g = Generator {
            now_ns: config.start_ns,
            config,
            rng,
            step_ns,
            clock: Clock::default(),
            labels,
            units,
            total_weight,
            in_flight: Vec::with_capacity(IN_FLIGHT),
            bytes: 0,
            lines: 0,
        };
        for _ in 0..IN_FLIGHT {
            let r = g.new_request();
            g.in_flight.push(r);
        }
        g
    }

    /// Generates lines until about `approx_bytes` bytes of lines (at least one
    /// line), grouped by stream, entries in time order within each stream.
    pub fn next_batch(&mut self, approx_bytes: usize) -> Vec<PushStream> {
        let mut per_stream: Vec<Vec<LogEntry>> = vec![Vec::new(); self.labels.len()];
        let mut batch_bytes = 0usize;
        while batch_bytes < approx_bytes.max(1) {
            if let Some((stream, entry)) = self.next_line() {
                batch_bytes += entry.line.len();
                per_stream[stream].push(entry);
            }
        }
        per_stream
            .into_iter()
            .enumerate()
            .filter(|(_, e)| !e.is_empty())
            .map(|(i, entries)| PushStream {
                labels: self.labels[i].clone(),
                entries,
            })
            .collect()
    }

    /// Bytes of lines generated so far.
    pub fn bytes_generated(&self) -> u64 {
        self.bytes
    }

    /// Lines generated so far.
    pub fn lines_generated(&self) -> u64 {
        self.lines
    }

    /// Timestamp the next line will get.
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// The label sets of all streams the generator may write to.
    pub fn stream_labels(&self) -> &[Labels] {
        &self.labels
    }

    fn new_request(&mut self) -> Request {
        let mut x = self.rng.f64() * self.total_weight;
        let mut unit = self.units.len() - 1;
        for (i, u) in self.units.iter().enumerate() {
            if x < u.weight {
                unit = i;
                break;
            }
            x -= u.weight;
        }
        let r = self.rng.f64();
        let err = self.config.error_ratio;
        let outcome = if r < err {
            *self.rng.pick(&[
                Outcome::CudaOom,
                Outcome::Timeout,
                Outcome::Timeout,
                Outcome::NoEndpoint,
            ])
        } else if r < err + 0.01 {
            Outcome::RateLimited
        } else {
            Outcome::Ok
        };
        let mut trace_id = String::with_capacity(32);
        push_hex(&mut trace_id, self.rng.next_u64(), 16);
        push_hex(&mut trace_id, self.rng.next_u64(), 16);
        let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
        let mut request_id = String::with_capacity(36);
        push_hex(&mut request_id, a >> 32, 8);
        request_id.push('-');
        push_hex(&mut request_id, (a >> 16) & 0xffff, 4);
        request_id.push_str("-4");
        push_hex(&mut request_id, a & 0xfff, 3);
        request_id.push('-');
        push_hex(&mut request_id, 0x8000 | (b >> 48) & 0x3fff, 4);
        request_id.push('-');
        push_hex(&mut request_id, b & 0xffff_ffff_ffff, 12);
        let mut completion_id = String::with_capacity(41);
        completion_id.push_str("chatcmpl-");
        push_hex(&mut completion_id, self.rng.next_u64(), 16);
        push_hex(&mut completion_id, self.rng.next_u64(), 16);
        let u = &self.units[unit];
        let prefill = self.rng.below(u.prefill.len().max(1) as u64) as usize;
        let decode = self.rng.below(u.decode.len().max(1) as u64) as usize;
        // Prompt sizes: mostly chat-sized, sometimes long RAG prompts.
        let prompt_tokens = if self.rng.f64() < 0.2 {
            self.rng.range(2_000, 16_000)
        } else {
            self.rng.range(20, 1_500)
        };
        let output_tokens = self.rng.range(1, 1_024);
        let ttft_ms = 40 + prompt_tokens / 20 + self.rng.below(200);
        let latency_ms = ttft_ms + output_tokens * (15 + self.rng.below(25));
        Request {
            unit,
            outcome,
            step: 0,
            trace_id,
            request_id,
            completion_id,
            user: self.rng.below(5_000),
            prefill,
            decode,
            prompt_tokens,
            output_tokens,
            latency_ms,
            ttft_ms,
        }
    }

    /// Produces the next line, or `None` when the chosen service has no stream
    /// (tiny `streams` configurations). Time only advances when a line is produced.
    fn next_line(&mut self) -> Option<(usize, LogEntry)> {
        if self.rng.f64() < BACKGROUND {
            return self.background_line();
        }
        let slot = self.rng.below(self.in_flight.len() as u64) as usize;
        // Taken out and put back (at the end) rather than cloned: this is the hot path.
        let mut req = self.in_flight.swap_remove(slot);
        let step = req.outcome.steps()[req.step];
        req.step += 1;
        let line = self.stream_of(&req, step).map(|stream| {
            self.clock.set(self.now_ns);
            (stream, self.request_line(&req, step))
        });
        let metadata = match line {
            Some(_) if self.rng.f64() < METADATA => {
                vec![("trace_id".to_string(), req.trace_id.clone())]
            }
            _ => Vec::new(),
        };
        if req.step == req.outcome.steps().len() {
            req = self.new_request();
        }
        self.in_flight.push(req);
        let (stream, line) = line?;
        Some(self.finish(stream, line, metadata))
    }

    fn finish(
        &mut self,
        stream: usize,
        line: String,
        metadata: Vec<(String, String)>,
    ) -> (usize, LogEntry) {
        let entry = LogEntry {
            line_metadata: Vec::new(),
            detected_level: None,
            timestamp_ns: self.now_ns,
            line,
            structured_metadata: metadata,
        };
        self.now_ns += self.step_ns;
        self.bytes += entry.line.len() as u64;
        self.lines += 1;
        (stream, entry)
    }

    fn stream_of(&self, req: &Request, step: Step) -> Option<usize> {
        let u = &self.units[req.unit];
        match step {
            Step::ChatRequest | Step::ChatResponse => u.chat[Sev::Info as usize],
            Step::ChatFailed => match req.outcome {
                Outcome::RateLimited => u.chat[Sev::Warn as usize],
                _ => u.chat[Sev::Error as usize],
            },
            Step::GwReceived | Step::GwCompleted => u.gateway[Sev::Info as usize],
            Step::GwRateLimited => u.gateway[Sev::Warn as usize],
            Step::GwUpstreamError | Step::GwTimeout | Step::GwNoEndpoint => {
                u.gateway[Sev::Error as usize]
            }
            Step::Picked => u.heimdall[Sev::Info as usize],
            Step::NoEndpoint => u.heimdall[Sev::Error as usize],
            Step::PrefillReceived => u.prefill.get(req.prefill).map(|w| w.0),
            Step::DecodeAdded | Step::DecodeFinished | Step::DecodeOom => {
                u.decode.get(req.decode).map(|w| w.0)
            }
        }
    }

    fn request_line(&mut self, req: &Request, step: Step) -> String {
        let mut s = String::with_capacity(384);
        let model = &MODELS[self.units[req.unit].model];
        let elapsed_ms = req.latency_ms;
        match step {
            Step::ChatRequest | Step::ChatResponse | Step::ChatFailed => {
                let (event, level) = match (step, req.outcome) {
                    (Step::ChatRequest, _) => ("chat.request", "info"),
                    (Step::ChatResponse, _) => ("chat.response", "info"),
                    (_, Outcome::RateLimited) => ("chat.rate_limited", "warning"),
                    _ => ("chat.failed", "error"),
                };
                s.push_str("{\"event\":\"");
                s.push_str(event);
                s.push_str("\",\"level\":\"");
                s.push_str(level);
                s.push_str("\",\"timestamp\":\"");
                self.push_micros(&mut s);
                s.push_str("\",\"service\":\"chat-api\",\"logger\":\"chat_api.routes.chat\",\"trace_id\":\"");
                s.push_str(&req.trace_id);
                s.push_str("\",\"user_id\":\"u_");
                push_u64(&mut s, req.user);
                s.push_str("\",\"model_tag\":\"");
                s.push_str(model.service);
                s.push('"');
                match step {
                    Step::ChatRequest => {
                        s.push_str(
                            ",\"method\":\"POST\",\"path\":\"/api/chat\",\"conversation_turns\":",
                        );
                        push_u64(&mut s, 1 + req.user % 9);
                    }
                    Step::ChatResponse => {
                        s.push_str(",\"status_code\":200,\"inference_time_ms\":");
                        push_u64(&mut s, elapsed_ms);
                        s.push_str(",\"output_tokens\":");
                        push_u64(&mut s, req.output_tokens);
                    }
                    _ => {
                        let (code, error) = gateway_error(req.outcome);
                        s.push_str(",\"status_code\":");
                        push_u64(&mut s, code);
                        s.push_str(",\"error\":\"gateway returned ");
                        push_u64(&mut s, code);
                        s.push_str(": ");
                        s.push_str(error);
                        s.push('"');
                    }
                }
                s.push('}');
            }
            Step::GwReceived
            | Step::GwCompleted
            | Step::GwRateLimited
            | Step::GwUpstreamError
            | Step::GwTimeout
            | Step::GwNoEndpoint => {
                let (level, message) = match step {
                    Step::GwReceived => ("INFO", "request.received"),
                    Step::GwCompleted => ("INFO", "request.completed"),
                    Step::GwRateLimited => ("WARN", "request.rate_limited"),
                    Step::GwTimeout => ("ERROR", "request.timeout"),
                    _ => ("ERROR", "request.failed"),
                };
                s.push_str("{\"timestamp\":\"");
                self.push_micros(&mut s);
                s.push_str("\",\"level\":\"");
                s.push_str(level);
                s.push_str("\",\"target\":\"aigateway::proxy\",\"message\":\"");
                s.push_str(message);
                s.push_str("\",\"trace_id\":\"");
                s.push_str(&req.trace_id);
                s.push_str("\",\"request_id\":\"");
                s.push_str(&req.request_id);
                s.push_str("\",\"model\":\"");
                s.push_str(model.served_name);
                s.push_str("\",\"provider\":\"vllm\",\"method\":\"POST\",\"path\":\"/v1/chat/completions\"");
                match step {
                    Step::GwReceived => {
                        s.push_str(",\"stream\":");
                        s.push_str(if req.user.is_multiple_of(3) {
                            "false"
                        } else {
                            "true"
                        });
                        s.push_str(",\"input_tokens\":");
                        push_u64(&mut s, req.prompt_tokens);
                    }
                    Step::GwCompleted => {
                        s.push_str(",\"status\":200,\"latency_ms\":");
                        push_u64(&mut s, elapsed_ms);
                        s.push_str(",\"ttft_ms\":");
                        push_u64(&mut s, req.ttft_ms);
                        s.push_str(",\"input_tokens\":");
                        push_u64(&mut s, req.prompt_tokens);
                        s.push_str(",\"output_tokens\":");
                        push_u64(&mut s, req.output_tokens);
                    }
                    _ => {
                        let (code, error) = gateway_error(req.outcome);
                        s.push_str(",\"status\":");
                        push_u64(&mut s, code);
                        s.push_str(",\"latency_ms\":");
                        push_u64(
                            &mut s,
                            if req.outcome == Outcome::Timeout {
                                60_000
                            } else {
                                elapsed_ms
                            },
                        );
                        s.push_str(",\"input_tokens\":");
                        push_u64(&mut s, req.prompt_tokens);
                        s.push_str(",\"output_tokens\":0,\"error\":\"");
                        s.push_str(error);
                        s.push('"');
                    }
                }
                s.push('}');
            }
            Step::Picked | Step::NoEndpoint => {
                let u = &self.units[req.unit];
                s.push_str("{\"time\":\"");
                self.push_nanos(&mut s);
                if step == Step::Picked {
                    s.push_str("\",\"level\":\"info\",\"msg\":\"picked endpoint\",\"trace_id\":\"");
                } else {
                    s.push_str(
                        "\",\"level\":\"error\",\"msg\":\"no ready endpoint\",\"trace_id\":\"",
                    );
                }
                s.push_str(&req.trace_id);
                s.push_str("\",\"request_id\":\"");
                s.push_str(&req.request_id);
                s.push_str("\",\"pool\":\"");
                s.push_str(model.service);
                s.push_str("-pool\"");
                if step == Step::Picked {
                    s.push_str(",\"endpoint\":\"");
                    if let Some((_, ip)) = u.decode.get(req.decode) {
                        s.push_str(ip);
                    } else {
                        s.push_str("10.42.0.1");
                    }
                    s.push_str(":8000\",\"score\":0.");
                    let score = 5_000 + self.rng.below(4_999);
                    push_u64(&mut s, score);
                    s.push_str(",\"queue_depth\":");
                    push_u64(&mut s, self.rng.below(12));
                    s.push_str(",\"kv_cache_usage\":0.");
                    let _ = write!(s, "{:02}", self.rng.range(5, 95));
                    s.push_str(",\"prefix_hit\":");
                    s.push_str(if req.user.is_multiple_of(2) {
                        "true"
                    } else {
                        "false"
                    });
                } else {
                    s.push_str(",\"candidates\":");
                    push_u64(&mut s, u.decode.len() as u64);
                    s.push_str(",\"error\":\"all endpoints filtered: kv cache usage above threshold 0.95\"");
                }
                s.push('}');
            }
            Step::PrefillReceived => {
                s.push_str("INFO ");
                s.push_str(&self.clock.vllm);
                s.push_str(" [logger.py:43] Received request ");
                s.push_str(&req.completion_id);
                s.push_str(": prompt_token_ids_len=");
                push_u64(&mut s, req.prompt_tokens);
                s.push_str(
                    ", params: SamplingParams(n=1, temperature=0.7, top_p=0.95, max_tokens=",
                );
                push_u64(&mut s, 1_024.max(req.output_tokens));
                s.push_str("), kv_transfer_params={'do_remote_decode': True}, trace_id=");
                s.push_str(&req.trace_id);
            }
            Step::DecodeAdded => {
                s.push_str("INFO ");
                s.push_str(&self.clock.vllm);
                s.push_str(" [async_llm.py:270] Added request ");
                s.push_str(&req.completion_id);
                s.push_str(", trace_id=");
                s.push_str(&req.trace_id);
            }
            Step::DecodeFinished => {
                s.push_str("INFO ");
                s.push_str(&self.clock.vllm);
                s.push_str(" [logger.py:71] Finished request ");
                s.push_str(&req.completion_id);
                s.push_str(": prompt_tokens=");
                push_u64(&mut s, req.prompt_tokens);
                s.push_str(", generation_tokens=");
                push_u64(&mut s, req.output_tokens);
                s.push_str(", e2e_latency=");
                push_fixed(&mut s, elapsed_ms, 3);
                s.push_str("s, trace_id=");
                s.push_str(&req.trace_id);
            }
            Step::DecodeOom => {
                s.push_str("ERROR ");
                s.push_str(&self.clock.vllm);
                s.push_str(" [core.py:586] EngineCore failed request ");
                s.push_str(&req.completion_id);
                s.push_str(": torch.OutOfMemoryError: CUDA out of memory. Tried to allocate ");
                push_fixed(&mut s, self.rng.range(50, 800), 2);
                s.push_str(" GiB. GPU 0 has a total capacity of 79.25 GiB of which ");
                push_fixed(&mut s, self.rng.range(5, 99), 2);
                s.push_str(" GiB is free. trace_id=");
                s.push_str(&req.trace_id);
            }
        }
        s
    }

    fn background_line(&mut self) -> Option<(usize, LogEntry)> {
        let unit = self.rng.below(self.units.len() as u64) as usize;
        let kind = self.rng.below(10);
        self.clock.set(self.now_ns);
        let mut s = String::with_capacity(256);
        let u = &self.units[unit];
        let stream = match kind {
            // vLLM engine stats, the most common background line.
            0..=4 => {
                let w = self
                    .rng
                    .below((u.prefill.len() + u.decode.len()).max(1) as u64)
                    as usize;
                let stream = u.prefill.iter().chain(&u.decode).nth(w).map(|w| w.0);
                s.push_str("INFO ");
                s.push_str(&self.clock.vllm);
                s.push_str(" [loggers.py:123] Engine 000: Avg prompt throughput: ");
                push_fixed(&mut s, self.rng.below(60_000), 1);
                s.push_str(" tokens/s, Avg generation throughput: ");
                push_fixed(&mut s, self.rng.below(20_000), 1);
                s.push_str(" tokens/s, Running: ");
                push_u64(&mut s, self.rng.below(64));
                s.push_str(" reqs, Waiting: ");
                push_u64(&mut s, self.rng.below(4));
                s.push_str(" reqs, GPU KV cache usage: ");
                push_fixed(&mut s, self.rng.below(1_000), 1);
                s.push_str("%, Prefix cache hit rate: ");
                push_fixed(&mut s, self.rng.below(1_000), 1);
                s.push('%');
                stream
            }
            // uvicorn access log of the metrics scrape.
            5..=6 => {
                let w = self
                    .rng
                    .below((u.prefill.len() + u.decode.len()).max(1) as u64)
                    as usize;
                let stream = u.prefill.iter().chain(&u.decode).nth(w).map(|w| w.0);
                s.push_str("INFO:     10.42.");
                push_u64(&mut s, self.rng.below(4));
                s.push('.');
                push_u64(&mut s, 2 + self.rng.below(3));
                s.push(':');
                push_u64(&mut s, 40_000 + self.rng.below(20_000));
                s.push_str(" - \"GET /metrics HTTP/1.1\" 200 OK");
                stream
            }
            // Heimdall scrapes endpoint metrics; sometimes one is stale.
            7..=8 => {
                let stale = self.rng.f64() < 0.1;
                let stream = u.heimdall[if stale { Sev::Warn } else { Sev::Info } as usize];
                let ip = u
                    .decode
                    .get(self.rng.below(u.decode.len().max(1) as u64) as usize);
                s.push_str("{\"time\":\"");
                self.push_nanos(&mut s);
                if stale {
                    s.push_str("\",\"level\":\"warn\",\"msg\":\"endpoint metrics stale\"");
                } else {
                    s.push_str("\",\"level\":\"info\",\"msg\":\"refreshed endpoint metrics\"");
                }
                s.push_str(",\"endpoint\":\"");
                s.push_str(ip.map_or("10.42.0.1", |w| w.1.as_str()));
                s.push_str(":8000\",\"waiting\":");
                push_u64(&mut s, self.rng.below(8));
                s.push_str(",\"running\":");
                push_u64(&mut s, self.rng.below(64));
                s.push_str(",\"kv_cache_usage\":0.");
                let _ = write!(s, "{:02}", self.rng.below(100));
                s.push_str(",\"age_ms\":");
                push_u64(
                    &mut s,
                    if stale {
                        5_000 + self.rng.below(10_000)
                    } else {
                        self.rng.below(1_000)
                    },
                );
                s.push('}');
                stream
            }
            // Gateway upstream health check.
            _ => {
                s.push_str("{\"timestamp\":\"");
                self.push_micros(&mut s);
                s.push_str("\",\"level\":\"INFO\",\"target\":\"aigateway::health\",\"message\":\"upstream.healthy\",\"upstream\":\"");
                s.push_str(MODELS[u.model].service);
                s.push_str("\",\"healthy_endpoints\":");
                push_u64(&mut s, u.decode.len() as u64);
                s.push_str(",\"check_ms\":");
                push_u64(&mut s, 1 + self.rng.below(30));
                s.push('}');
                u.gateway[Sev::Info as usize]
            }
        }?;
        Some(self.finish(stream, s, Vec::new()))
    }

    /// `2026-11-21T10:00:00.123456Z`
    fn push_micros(&self, s: &mut String) {
        s.push_str(&self.clock.rfc3339);
        let _ = write!(s, ".{:06}Z", self.now_ns.rem_euclid(1_000_000_000) / 1_000);
    }

    /// `2026-11-21T10:00:00.123456789Z`
    fn push_nanos(&self, s: &mut String) {
        s.push_str(&self.clock.rfc3339);
        let _ = write!(s, ".{:09}Z", self.now_ns.rem_euclid(1_000_000_000));
    }
}

fn gateway_error(outcome: Outcome) -> (u64, &'static str) {
    match outcome {
        Outcome::RateLimited => (429, "rate limit exceeded for api key tier free"),
        Outcome::CudaOom => (500, "upstream engine error: CUDA out of memory"),
        Outcome::Timeout => (504, "upstream request timeout after 60000ms"),
        Outcome::NoEndpoint => (503, "no healthy upstream"),
        Outcome::Ok => (200, ""),
    }
}

/// Builds the stream label sets and the deployment units that own them.
fn topology(rng: &mut Rng, streams: usize) -> (Vec<Labels>, Vec<Unit>) {
    let mut labels = Vec::with_capacity(streams);
    let mut units = Vec::new();
    let mut i = 0usize;
    while labels.len() < streams {
        let model = i % MODELS.len();
        let namespace = NAMESPACES[(i / MODELS.len()) % NAMESPACES.len()];
        let generation = i / (MODELS.len() * NAMESPACES.len());
        let service = if generation == 0 {
            MODELS[model].service.to_string()
        } else {
            format!("{}-{}", MODELS[model].service, generation + 1)
        };
        let pool = format!("{service}-pool");
        let node_base = rng.below(40);
        let pod_hash = |rng: &mut Rng| {
            let mut h = String::new();
            push_hex(&mut h, rng.next_u64(), 9);
            h.push('-');
            const ALNUM: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            for _ in 0..5 {
                h.push(ALNUM[rng.below(ALNUM.len() as u64) as usize] as char);
            }
            h
        };
        let gateway_pod = format!("aigateway-{}", pod_hash(rng));
        let heimdall_pod = format!("heimdall-{}", pod_hash(rng));
        let chat_pod = format!("chat-api-{}", pod_hash(rng));
        let mut unit = Unit {
            model,
            // Zipf-like popularity: a few services take most of the traffic.
            weight: 1.0 / (1.0 + i as f64).sqrt(),
            ..Unit::default()
        };
        for slot in SLOTS {
            if labels.len() == streams {
                break;
            }
            let idx = labels.len();
            let node = |k: u64| format!("gpu-node-{:02}", (node_base + k) % 40 + 1);
            let base = |app: &str, pod: &str, node: String| {
                vec![
                    ("namespace", namespace.to_string()),
                    ("app", app.to_string()),
                    ("inference_service", service.clone()),
                    ("pool_name", pool.clone()),
                    ("node_name", node),
                    ("pod", pod.to_string()),
                ]
            };
            let pairs = match *slot {
                Slot::Gateway(sev) => {
                    unit.gateway[sev as usize] = Some(idx);
                    let mut p = base(
                        "aigateway",
                        &gateway_pod,
                        format!("cpu-node-{:02}", node_base % 8 + 1),
                    );
                    p.push(("level", ["INFO", "WARN", "ERROR"][sev as usize].to_string()));
                    p
                }
                Slot::Heimdall(sev) => {
                    unit.heimdall[sev as usize] = Some(idx);
                    let mut p = base(
                        "heimdall",
                        &heimdall_pod,
                        format!("cpu-node-{:02}", (node_base + 3) % 8 + 1),
                    );
                    p.push(("level", ["info", "warn", "error"][sev as usize].to_string()));
                    p
                }
                Slot::Chat(sev) => {
                    unit.chat[sev as usize] = Some(idx);
                    let mut p = base(
                        "chat-api",
                        &chat_pod,
                        format!("cpu-node-{:02}", (node_base + 5) % 8 + 1),
                    );
                    p.push((
                        "level",
                        ["info", "warning", "error"][sev as usize].to_string(),
                    ));
                    p
                }
                Slot::Prefill(k) => {
                    let ip = format!("10.42.{}.{}", i % 250, 10 + k);
                    unit.prefill.push((idx, ip));
                    let mut p = base("vllm", &format!("{service}-prefill-{k}"), node(k as u64));
                    p.push(("role", "prefill".to_string()));
                    p
                }
                Slot::Decode(k) => {
                    let ip = format!("10.42.{}.{}", i % 250, 20 + k);
                    unit.decode.push((idx, ip));
                    let mut p = base("vllm", &format!("{service}-decode-{k}"), node(2 + k as u64));
                    p.push(("role", "decode".to_string()));
                    p
                }
            };
            labels.push(Labels::from_pairs(pairs));
        }
        units.push(unit);
        i += 1;
    }
    (labels, units)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn lines(g: &mut Generator, bytes: usize) -> Vec<(Labels, LogEntry)> {
        let mut out = Vec::new();
        while g.bytes_generated() < bytes as u64 {
            for s in g.next_batch(64 * 1024) {
                for e in s.entries {
                    out.push((s.labels.clone(), e));
                }
            }
        }
        out
    }

    fn sorted(mut v: Vec<(Labels, LogEntry)>) -> Vec<(Labels, LogEntry)> {
        v.sort_by_key(|(_, e)| e.timestamp_ns);
        v
    }

    #[test]
    fn same_seed_same_output_whatever_the_batch_size() {
        let cfg = GeneratorConfig::default();
        let mut a = Generator::new(cfg.clone());
        let mut b = Generator::new(cfg.clone());
        let batch_a = a.next_batch(100_000);
        assert_eq!(batch_a, b.next_batch(100_000));
        assert_eq!(a.bytes_generated(), b.bytes_generated());
        assert_eq!(a.now_ns(), b.now_ns());

        // Small batches yield the same lines as one big one.
        let mut c = Generator::new(cfg.clone());
        let mut small = Vec::new();
        while c.lines_generated() < a.lines_generated() {
            for s in c.next_batch(1_000) {
                small.extend(s.entries.into_iter().map(|e| (s.labels.clone(), e)));
            }
        }
        let mut small = sorted(small);
        small.truncate(a.lines_generated() as usize);
        let big: Vec<_> = batch_a
            .into_iter()
            .flat_map(|s| s.entries.into_iter().map(move |e| (s.labels.clone(), e)))
            .collect();
        assert!(small == sorted(big));

        let mut other = Generator::new(GeneratorConfig { seed: 7, ..cfg });
        assert_ne!(
            other.next_batch(10_000),
            Generator::new(GeneratorConfig::default()).next_batch(10_000)
        );
    }

    #[test]
    fn batches_are_grouped_by_stream_and_time_ordered() {
        let cfg = GeneratorConfig::default();
        let mut g = Generator::new(cfg.clone());
        let mut last: HashMap<Labels, i64> = HashMap::new();
        let mut total = 0u64;
        for _ in 0..5 {
            let batch = g.next_batch(200_000);
            let bytes: usize = batch
                .iter()
                .flat_map(|s| &s.entries)
                .map(|e| e.line.len())
                .sum();
            assert!((200_000..200_000 + 4096).contains(&bytes), "{bytes}");
            total += bytes as u64;
            let ids: HashSet<_> = batch.iter().map(|s| &s.labels).collect();
            assert_eq!(ids.len(), batch.len(), "one PushStream per stream");
            for s in &batch {
                for e in &s.entries {
                    let prev = last.insert(s.labels.clone(), e.timestamp_ns);
                    assert!(prev.is_none_or(|p| p < e.timestamp_ns));
                }
            }
        }
        assert_eq!(total, g.bytes_generated());
        let step = 1_000_000_000 / cfg.lines_per_second as i64;
        assert_eq!(g.now_ns(), cfg.start_ns + step * g.lines_generated() as i64);
        // Every stream except the rare error/warning ones gets traffic.
        let rare = ["ERROR", "WARN", "error", "warn", "warning"];
        for l in g.stream_labels() {
            assert!(
                last.contains_key(l) || l.get("level").is_some_and(|v| rare.contains(&v)),
                "{l} got nothing"
            );
        }
        assert_eq!(g.stream_labels().len(), cfg.streams);
    }

    #[test]
    fn labels_follow_the_collector_conventions() {
        let g = Generator::new(GeneratorConfig::default());
        for l in g.stream_labels() {
            for name in [
                "namespace",
                "app",
                "inference_service",
                "pool_name",
                "node_name",
                "pod",
            ] {
                assert!(l.get(name).is_some(), "{l} lacks {name}");
            }
            let app = l.get("app").expect("app");
            assert_eq!(l.get("role").is_some(), app == "vllm", "{l}");
            assert_eq!(l.get("level").is_some(), app != "vllm", "{l}");
        }
        let apps: HashSet<_> = g
            .stream_labels()
            .iter()
            .filter_map(|l| l.get("app"))
            .collect();
        assert_eq!(
            apps,
            HashSet::from(["aigateway", "heimdall", "vllm", "chat-api"])
        );
    }

    #[test]
    fn every_json_line_is_valid_and_matches_its_stream() {
        let mut g = Generator::new(GeneratorConfig::default());
        let mut json_lines = 0;
        for (labels, e) in lines(&mut g, 2_000_000) {
            let app = labels.get("app").expect("app");
            if app == "vllm" {
                let first = e.line.split(' ').next().expect("word");
                assert!(["INFO", "ERROR", "INFO:"].contains(&first), "{}", e.line);
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(&e.line).unwrap_or_else(|err| panic!("{err}: {}", e.line));
            json_lines += 1;
            let (msg, time) = match app {
                "aigateway" => ("message", "timestamp"),
                "heimdall" => ("msg", "time"),
                _ => ("event", "timestamp"),
            };
            assert!(v[msg].is_string(), "{}", e.line);
            assert_eq!(v["level"].as_str(), labels.get("level"), "{}", e.line);
            let ts = v[time].as_str().expect("time");
            let mut clock = Clock::default();
            clock.set(e.timestamp_ns);
            assert!(ts.starts_with(&clock.rfc3339) && ts.ends_with('Z'), "{ts}");
        }
        assert!(json_lines > 1_000);
    }

    #[test]
    fn trace_ids_cross_services() {
        let mut g = Generator::new(GeneratorConfig::default());
        let mut apps: HashMap<String, HashSet<String>> = HashMap::new();
        for (labels, e) in lines(&mut g, 3_000_000) {
            let Some(pos) = e.line.find("trace_id") else {
                continue;
            };
            let rest = &e.line[pos + 8..];
            let start = rest.find(|c: char| c.is_ascii_hexdigit()).expect("id");
            let id = &rest[start..start + 32];
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{}", e.line);
            apps.entry(id.to_string())
                .or_default()
                .insert(labels.get("app").expect("app").to_string());
        }
        let full = apps.values().filter(|a| a.len() == 4).count();
        assert!(
            full * 2 > apps.len(),
            "{full} of {} traces reach all four apps",
            apps.len()
        );
    }

    #[test]
    fn errors_and_metadata_come_at_the_configured_rates() {
        let mut g = Generator::new(GeneratorConfig::default());
        let all = lines(&mut g, 5_000_000);
        let requests = all
            .iter()
            .filter(|(_, e)| e.line.contains("\"request.received\""))
            .count();
        let failed = all
            .iter()
            .filter(|(l, e)| {
                l.get("app") == Some("aigateway")
                    && l.get("level") == Some("ERROR")
                    && e.line.contains("\"status\":5")
            })
            .count();
        let ratio = failed as f64 / requests as f64;
        assert!((0.012..0.03).contains(&ratio), "{ratio}");
        assert!(all.iter().any(|(_, e)| e.line.contains("CUDA out of memory") && e.line.starts_with("ERROR ")));

        let with_meta: Vec<_> = all
            .iter()
            .filter(|(_, e)| !e.structured_metadata.is_empty())
            .collect();
        let share = with_meta.len() as f64 / all.len() as f64;
        assert!((0.07..0.13).contains(&share), "{share}");
        for (_, e) in with_meta {
            let [(k, v)] = e.structured_metadata.as_slice() else {
                panic!("one pair")
            };
            assert_eq!(k, "trace_id");
            assert!(e.line.contains(v.as_str()));
        }

        let mut none = Generator::new(GeneratorConfig {
            error_ratio: 0.0,
            ..GeneratorConfig::default()
        });
        assert!(
            lines(&mut none, 1_000_000)
                .iter()
                .all(|(l, _)| l.get("level") != Some("ERROR"))
        );
    }

    #[test]
    fn tiny_stream_counts_work() {
        for streams in [1, 2, 5, 16, 1000] {
            let mut g = Generator::new(GeneratorConfig {
                streams,
                ..GeneratorConfig::default()
            });
            let batch = g.next_batch(50_000);
            assert!(!batch.is_empty());
            assert_eq!(g.stream_labels().len(), streams);
            let distinct: HashSet<_> = g.stream_labels().iter().collect();
            assert_eq!(distinct.len(), streams);
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(1_795_255_200 / 86_400), (2026, 11, 21));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let mut c = Clock::default();
        c.set(GeneratorConfig::default().start_ns + 61_500_000_000);
        assert_eq!(c.rfc3339, "2026-11-21T10:01:01");
        assert_eq!(c.vllm, "11-21 10:01:01");
    }
}
