//! The one path by which decoded log streams enter the store, whatever the
//! protocol: validate → redact → normalize (→ VRL transform → redact, for a
//! tenant with a program) → cardinality → rate limit → append (WAL first) →
//! count.
//!
//! Invariant: a caller acknowledges only after [`accept`] returns `Ok`, and
//! `Ok` means the WAL holds every accepted entry.

use std::time::Duration;

use axum::http::StatusCode;
use inferscope_model::PushStream;

use crate::error::ApiError;
use crate::http::params::now_ns;
use crate::ingest::cardinality::Refusal;
use crate::ingest::redact::RedactionCounts;
use crate::ingest::validate::validate;
use crate::metrics::{BYTES_RECEIVED, LINES_DISCARDED, LINES_RECEIVED};
use crate::state::AppState;

/// What a successful call stored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Entries stored.
    pub entries: usize,
    /// Bytes stored (lines and metadata).
    pub bytes: usize,
    /// Refused entries, in Loki's words; `None` when everything was stored.
    pub partial_error: Option<String>,
}

/// Validates, rate-limits and stores `streams` for `tenant`. Blocking: call it
/// from `spawn_blocking`.
pub fn accept(
    state: &AppState,
    tenant: &str,
    streams: Vec<PushStream>,
) -> Result<Accepted, ApiError> {
    let limits = &state.config.limits_config;
    let mut validated = validate(streams, limits, now_ns());
    // Secrets never reach the WAL, the head, blocks or live tails. Without a
    // VRL program, lines (and pushed metadata) are redacted before
    // normalization, so what it copies from a line into structured metadata
    // is clean already and is not searched again.
    let program = state.transforms.program_for(tenant).is_some();
    let mut redacted = RedactionCounts::default();
    if !program {
        redacted = state.redactor.redact_for(tenant, &mut validated.streams);
    }
    let (streams, normalized) = crate::ingest::normalize::normalize_push(
        &state.config,
        &state.metrics,
        tenant,
        std::mem::take(&mut validated.streams),
        now_ns(),
    );
    validated.streams = streams;
    if program {
        // The program sees normalized entries.
        state.transforms.transform_push(
            limits,
            &state.metrics,
            tenant,
            &mut validated.streams,
            now_ns(),
        );
    }
    // Redacted (again) after normalization when a program may have written
    // anything, or when a copied value was decoded from JSON escapes
    // (`sk\u002d…`) and so was not in the line as the redactor read it.
    if program || normalized.escaped_metadata > 0 {
        redacted.merge(&state.redactor.redact_for(tenant, &mut validated.streams));
    }
    for (reason, entries, _bytes) in &validated.rejected {
        state.metrics.add(
            LINES_DISCARDED,
            &[("tenant", tenant), ("reason", reason.as_str())],
            *entries as f64,
        );
    }

    // Before the rate limit, so a push refused for its labels costs no quota.
    if let Err(refusal) = state.cardinality.admit(tenant, &validated.streams) {
        let (status, reason) = match refusal {
            Refusal::Streams { .. } => (StatusCode::TOO_MANY_REQUESTS, "stream_limit"),
            Refusal::LabelValues { .. } => (StatusCode::BAD_REQUEST, "label_value_limit"),
        };
        let lines: usize = validated.streams.iter().map(|s| s.entries.len()).sum();
        state.metrics.add(
            LINES_DISCARDED,
            &[("tenant", tenant), ("reason", reason)],
            lines as f64,
        );
        let mut err = ApiError::new(status, refusal.to_string());
        if status == StatusCode::TOO_MANY_REQUESTS {
            err.retry_after_secs = Some(60);
        }
        return Err(err);
    }

    let sizes: Vec<(u64, usize)> = validated
        .streams
        .iter()
        .map(|s| {
            (
                s.labels.fingerprint(),
                s.entries.iter().map(|e| e.size_bytes()).sum(),
            )
        })
        .collect();
    let total_bytes: usize = sizes.iter().map(|(_, b)| b).sum();
    let total_lines: usize = validated.streams.iter().map(|s| s.entries.len()).sum();
    if total_lines > 0 {
        let describers: Vec<Box<dyn Fn() -> String + '_>> = validated
            .streams
            .iter()
            .map(|s| Box::new(move || s.labels.to_string()) as Box<dyn Fn() -> String + '_>)
            .collect();
        let per_stream: Vec<(u64, usize, &dyn Fn() -> String)> = sizes
            .iter()
            .zip(&describers)
            .map(|((fp, bytes), d)| (*fp, *bytes, d.as_ref()))
            .collect();
        if let Err(limited) = state
            .limiter
            .admit(tenant, total_bytes, total_lines, &per_stream)
        {
            state.metrics.add(
                LINES_DISCARDED,
                &[("tenant", tenant), ("reason", "rate_limited")],
                total_lines as f64,
            );
            let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, limited.message);
            err.retry_after_secs = Some(limited.retry_after.max(Duration::from_secs(1)).as_secs());
            return Err(err);
        }
        wait_for_flush(state)?;
        state
            .store
            .append(tenant, &validated.streams)
            .map_err(|e| ApiError::internal("failed to append to the write-ahead log", &e))?;
        // Late entries may land in time windows whose results are cached.
        let oldest = validated
            .streams
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.timestamp_ns))
            .min();
        if let Some(oldest) = oldest {
            state.results_cache.note_write(tenant, oldest, now_ns());
        }
        // Live tails see what was stored; the batch is copied only when one is open.
        if state.tail_feed.receiver_count() > 0 {
            let batch = crate::state::TailBatch {
                tenant: tenant.to_string(),
                streams: validated.streams.clone(),
            };
            let _ = state.tail_feed.send(std::sync::Arc::new(batch));
        }
        // Under sustained ingest the head would outgrow head_max_bytes before the
        // next maintenance tick: start the flush now, to keep memory bounded.
        if state.store.flush_due() {
            state.maintenance_wakeup.notify_one();
        }
        state
            .metrics
            .add(LINES_RECEIVED, &[("tenant", tenant)], total_lines as f64);
        state
            .metrics
            .add(BYTES_RECEIVED, &[("tenant", tenant)], total_bytes as f64);
        state.redactor.record(&state.metrics, tenant, &redacted);
    }
    Ok(Accepted {
        entries: total_lines,
        bytes: total_bytes,
        partial_error: validated.error_body(),
    })
}

/// How long a push may wait for the head to be flushed before it gets a 429.
const MAX_FLUSH_WAIT: Duration = Duration::from_secs(10);

/// Backpressure: while a frozen head is still being written and the heads
/// (active and frozen together) hold more than 1.5 × `head_max_bytes`, ingest
/// is faster than flushing and memory would grow without bound. The push waits for the flush (the
/// client sees latency, not an error); past [`MAX_FLUSH_WAIT`] it is refused
/// with a 429 and nothing of it is stored.
fn wait_for_flush(state: &AppState) -> Result<(), ApiError> {
    let limit = state.config.storage.head_max_bytes.saturating_mul(3) / 2;
    let started = std::time::Instant::now();
    loop {
        let (head_bytes, frozen_heads) = state.store.head_pressure();
        if frozen_heads == 0 || head_bytes <= limit {
            return Ok(());
        }
        state.maintenance_wakeup.notify_one();
        if started.elapsed() > MAX_FLUSH_WAIT {
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ingestion is faster than the store can flush to blocks: retry later",
            );
            err.retry_after_secs = Some(1);
            return Err(err);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
