//! The cardinality guard: a tenant may not create streams without bound.
//!
//! Two limits, checked on every push before anything is stored:
//! - `limits_config.max_global_streams_per_user` (Loki's name and default,
//!   5000): streams active at once. Over it the push answers 429 in Loki's
//!   words, since streams that go idle free room again.
//! - `limits_config.max_values_per_label` (ours, 1000): distinct values one
//!   label name may take among the active streams. Over it the push answers
//!   400 naming the label, because a label with that many values is almost
//!   always a high-cardinality field (a trace id, a user id) that belongs in
//!   structured metadata; the store stays healthy instead of degrading.
//!
//! A stream (or a label value) is *active* while it was pushed within the
//! last [`ACTIVE_WINDOW`], as a Loki ingester keeps idle streams in memory for
//! a while. A refused push stores nothing (all or nothing, like the rate limit).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use inferscope_model::PushStream;
use parking_lot::Mutex;

/// How long a stream stays active after its last push.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(3600);

/// The guard's limits (0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardinalityLimits {
    /// Active streams per tenant.
    pub max_streams: usize,
    /// Distinct values of one label name among a tenant's active streams.
    pub max_values_per_label: usize,
}

/// Why a push was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Too many active streams.
    #[error(
        "Maximum active stream limit exceeded, reduce the number of active streams (reduce labels or reduce label values), or contact your administrator to see if the limit can be increased, user: '{tenant}' (limits_config.max_global_streams_per_user: {limit})"
    )]
    Streams {
        /// The tenant.
        tenant: String,
        /// The limit.
        limit: usize,
    },
    /// One label has too many values.
    #[error(
        "label '{label}' has more than {limit} distinct values among the active streams of user '{tenant}' (limits_config.max_values_per_label): keep high-cardinality fields such as ids in structured metadata, not in stream labels"
    )]
    LabelValues {
        /// The tenant.
        tenant: String,
        /// The offending label name.
        label: String,
        /// The limit.
        limit: usize,
    },
}

#[derive(Debug, Default)]
struct TenantState {
    /// Stream fingerprint → last push.
    streams: HashMap<u64, Instant>,
    /// Label name → (value → last push).
    values: HashMap<String, HashMap<String, Instant>>,
}

impl TenantState {
    fn prune(&mut self, now: Instant) {
        let active = |t: &mut Instant| now.duration_since(*t) < ACTIVE_WINDOW;
        self.streams.retain(|_, t| active(t));
        for values in self.values.values_mut() {
            values.retain(|_, t| active(t));
        }
        self.values.retain(|_, v| !v.is_empty());
    }
}

/// Tracks each tenant's active streams and label values.
#[derive(Debug)]
pub struct CardinalityGuard {
    limits: CardinalityLimits,
    tenants: Mutex<HashMap<String, TenantState>>,
}

impl CardinalityGuard {
    /// A guard with nothing seen yet.
    pub fn new(limits: CardinalityLimits) -> Self {
        CardinalityGuard {
            limits,
            tenants: Mutex::default(),
        }
    }

    /// Admits the streams of one push, or refuses the whole push; an admitted
    /// push's streams and values become (or stay) active.
    pub fn admit(&self, tenant: &str, streams: &[PushStream]) -> Result<(), Refusal> {
        self.admit_at(tenant, streams, Instant::now())
    }

    fn admit_at(&self, tenant: &str, streams: &[PushStream], now: Instant) -> Result<(), Refusal> {
        let limits = self.limits;
        if limits.max_streams == 0 && limits.max_values_per_label == 0 {
            return Ok(());
        }
        let mut tenants = self.tenants.lock();
        let state = tenants.entry(tenant.to_string()).or_default();
        let fps: Vec<u64> = streams.iter().map(|s| s.labels.fingerprint()).collect();
        let check = |state: &TenantState| -> Result<(), Refusal> {
            let mut new_streams = 0;
            let mut new_values: HashMap<&str, usize> = HashMap::new();
            for (stream, fp) in streams.iter().zip(&fps) {
                if state.streams.contains_key(fp) {
                    continue;
                }
                new_streams += 1;
                for (name, value) in stream.labels.iter() {
                    let known = state.values.get(name);
                    if !known.is_some_and(|v| v.contains_key(value)) {
                        *new_values.entry(name).or_default() += 1;
                    }
                }
            }
            if limits.max_streams > 0 && state.streams.len() + new_streams > limits.max_streams {
                return Err(Refusal::Streams {
                    tenant: tenant.to_string(),
                    limit: limits.max_streams,
                });
            }
            if limits.max_values_per_label > 0 {
                // The worst label first, so the error names it.
                let mut over: Vec<(&str, usize)> = new_values
                    .into_iter()
                    .map(|(name, n)| (name, n + state.values.get(name).map_or(0, HashMap::len)))
                    .filter(|(_, total)| *total > limits.max_values_per_label)
                    .collect();
                over.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                if let Some((label, _)) = over.first() {
                    return Err(Refusal::LabelValues {
                        tenant: tenant.to_string(),
                        label: label.to_string(),
                        limit: limits.max_values_per_label,
                    });
                }
            }
            Ok(())
        };
        if check(state).is_err() {
            // Idle streams may have freed room: prune, then decide.
            state.prune(now);
            check(state)?;
        }
        for (stream, fp) in streams.iter().zip(&fps) {
            state.streams.insert(*fp, now);
            for (name, value) in stream.labels.iter() {
                let values = state.values.entry(name.to_string()).or_default();
                match values.get_mut(value) {
                    Some(t) => *t = now,
                    None => {
                        values.insert(value.to_string(), now);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferscope_model::Labels;

    fn stream(labels: &str) -> PushStream {
        PushStream {
            labels: Labels::parse(labels).expect("labels"),
            entries: Vec::new(),
        }
    }

    #[test]
    fn the_stream_limit_refuses_new_streams_only() {
        let guard = CardinalityGuard::new(CardinalityLimits {
            max_streams: 2,
            max_values_per_label: 0,
        });
        let now = Instant::now();
        assert!(
            guard
                .admit_at("t", &[stream(r#"{a="1"}"#), stream(r#"{a="2"}"#)], now)
                .is_ok()
        );
        // Known streams keep flowing; a third is refused with Loki's message.
        assert!(guard.admit_at("t", &[stream(r#"{a="1"}"#)], now).is_ok());
        let err = guard
            .admit_at("t", &[stream(r#"{a="1"}"#), stream(r#"{a="3"}"#)], now)
            .expect_err("over the limit");
        assert!(matches!(err, Refusal::Streams { limit: 2, .. }));
        assert!(
            err.to_string()
                .contains("Maximum active stream limit exceeded")
        );
        // Another tenant has its own count.
        assert!(guard.admit_at("u", &[stream(r#"{a="3"}"#)], now).is_ok());
        // Once the others go idle, there is room again.
        let later = now + ACTIVE_WINDOW + Duration::from_secs(1);
        assert!(guard.admit_at("t", &[stream(r#"{a="3"}"#)], later).is_ok());
    }

    #[test]
    fn the_label_value_limit_names_the_label() {
        let guard = CardinalityGuard::new(CardinalityLimits {
            max_streams: 0,
            max_values_per_label: 3,
        });
        let now = Instant::now();
        for i in 0..3 {
            let s = stream(&format!(r#"{{app="gw", trace_id="{i}"}}"#));
            assert!(guard.admit_at("t", &[s], now).is_ok());
        }
        let err = guard
            .admit_at("t", &[stream(r#"{app="gw", trace_id="3"}"#)], now)
            .expect_err("a fourth trace id");
        assert_eq!(
            err,
            Refusal::LabelValues {
                tenant: "t".into(),
                label: "trace_id".into(),
                limit: 3
            }
        );
        assert!(err.to_string().contains("label 'trace_id'"));
        // A refused push recorded nothing: a known value still passes.
        assert!(
            guard
                .admit_at("t", &[stream(r#"{app="gw", trace_id="2"}"#)], now)
                .is_ok()
        );
    }
}
