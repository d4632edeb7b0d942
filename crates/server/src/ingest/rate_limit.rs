//! Token-bucket ingestion limits: per tenant (`ingestion_rate_mb`,
//! `ingestion_burst_size_mb`) and per stream (`per_stream_rate_limit`,
//! `per_stream_rate_limit_burst`).
//!
//! A request is checked against every bucket it touches before any token is
//! taken, and refused whole when one is short: nothing of a 429'd request is
//! stored, so the client's retry creates no duplicates.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A token bucket in bytes.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
    }
}

/// Refusal details for the 429 response.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimited {
    /// The message, in Loki's words.
    pub message: String,
    /// When a retry may succeed.
    pub retry_after: Duration,
}

/// Rates in bytes per second and bursts in bytes.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Per-tenant rate.
    pub tenant_rate: f64,
    /// Per-tenant burst.
    pub tenant_burst: f64,
    /// Per-stream rate.
    pub stream_rate: f64,
    /// Per-stream burst.
    pub stream_burst: f64,
}

/// The buckets of every tenant and stream.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<String, Bucket>,
    streams: HashMap<(String, u64), Bucket>,
    last_prune: Option<Instant>,
}

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// Takes `total_bytes` from the tenant's bucket and each stream's bytes
    /// from its bucket, or takes nothing and says why.
    pub fn admit(
        &self,
        tenant: &str,
        total_bytes: usize,
        total_lines: usize,
        streams: &[(u64, usize, &dyn Fn() -> String)],
    ) -> Result<(), RateLimited> {
        self.admit_at(tenant, total_bytes, total_lines, streams, Instant::now())
    }

    fn admit_at(
        &self,
        tenant: &str,
        total_bytes: usize,
        total_lines: usize,
        streams: &[(u64, usize, &dyn Fn() -> String)],
        now: Instant,
    ) -> Result<(), RateLimited> {
        let l = self.limits;
        let mut state = self.state.lock();
        state.prune(now);
        let tenant_bucket = state
            .tenants
            .entry(tenant.to_string())
            .or_insert_with(|| Bucket::full(l.tenant_burst, now));
        tenant_bucket.refill(l.tenant_rate, l.tenant_burst, now);
        let need = total_bytes as f64;
        if need > tenant_bucket.tokens {
            let wait = if need > l.tenant_burst {
                // Can never fit whole: the client must split it.
                Duration::from_secs(1)
            } else {
                Duration::from_secs_f64((need - tenant_bucket.tokens) / l.tenant_rate)
            };
            return Err(RateLimited {
                message: format!(
                    "Ingestion rate limit exceeded for user {tenant} (limit: {} bytes/sec) while attempting to ingest '{total_lines}' lines totaling '{total_bytes}' bytes, reduce log volume or contact your Inferscope administrator to see if the limit can be increased",
                    l.tenant_rate as u64
                ),
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
        for (fingerprint, bytes, describe) in streams {
            let key = (tenant.to_string(), *fingerprint);
            let bucket = state
                .streams
                .entry(key)
                .or_insert_with(|| Bucket::full(l.stream_burst, now));
            bucket.refill(l.stream_rate, l.stream_burst, now);
            if *bytes as f64 > bucket.tokens {
                let wait = ((*bytes as f64 - bucket.tokens) / l.stream_rate).clamp(1.0, 60.0);
                return Err(RateLimited {
                    message: format!(
                        "Per stream rate limit exceeded (limit: {} bytes/sec) while attempting to ingest for stream '{}' totaling {bytes} bytes, reduce log volume or contact your Inferscope administrator to see if the limit can be increased",
                        l.stream_rate as u64,
                        describe()
                    ),
                    retry_after: Duration::from_secs_f64(wait),
                });
            }
        }
        // Every bucket has room: take the tokens.
        if let Some(b) = state.tenants.get_mut(tenant) {
            b.tokens -= need;
        }
        for (fingerprint, bytes, _) in streams {
            if let Some(b) = state.streams.get_mut(&(tenant.to_string(), *fingerprint)) {
                b.tokens -= *bytes as f64;
            }
        }
        Ok(())
    }
}

impl State {
    /// Forgets stream buckets that have refilled completely: they carry no
    /// state, and keeping them would grow memory with stream churn.
    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(60))
        {
            return;
        }
        self.last_prune = Some(now);
        self.streams
            .retain(|_, b| now.saturating_duration_since(b.updated) < Duration::from_secs(600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimits {
            tenant_rate: 1000.0,
            tenant_burst: 2000.0,
            stream_rate: 500.0,
            stream_burst: 800.0,
        })
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let l = limiter();
        let t0 = Instant::now();
        let name = || "{app=\"x\"}".to_string();
        assert!(l.admit_at("a", 700, 1, &[(1, 700, &name)], t0).is_ok());
        let err = l
            .admit_at("a", 700, 1, &[(1, 700, &name)], t0)
            .expect_err("stream bucket empty");
        assert!(
            err.message.starts_with("Per stream rate limit exceeded"),
            "{}",
            err.message
        );
        // Refused request took nothing from the tenant bucket: another stream fits.
        assert!(l.admit_at("a", 700, 1, &[(2, 700, &name)], t0).is_ok());
        let err = l
            .admit_at("a", 700, 1, &[(3, 700, &name)], t0)
            .expect_err("tenant bucket empty");
        assert!(
            err.message
                .starts_with("Ingestion rate limit exceeded for user a"),
            "{}",
            err.message
        );
        assert!(err.retry_after >= Duration::from_secs(1));
        // Tenants are independent.
        assert!(l.admit_at("b", 700, 1, &[(1, 700, &name)], t0).is_ok());
        // After a second, the buckets have refilled enough.
        assert!(
            l.admit_at("a", 700, 1, &[(1, 700, &name)], t0 + Duration::from_secs(2))
                .is_ok()
        );
    }
}
