//! Retention: which blocks and head entries are too old to keep.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::manifest::BlockEntry;

/// Current wall-clock time in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

/// Entries older than the returned timestamp are dropped (`None` keeps all).
pub fn cutoff_ns(retention: Option<Duration>, now_ns: i64) -> Option<i64> {
    retention.map(|r| now_ns.saturating_sub(r.as_nanos().min(i64::MAX as u128) as i64))
}

/// Blocks whose newest entry is older than `cutoff`.
pub fn expired(blocks: &[Arc<BlockEntry>], cutoff: i64) -> Vec<Arc<BlockEntry>> {
    blocks
        .iter()
        .filter(|b| b.meta.max_ts < cutoff)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_now_minus_retention() {
        assert_eq!(cutoff_ns(None, 100), None);
        assert_eq!(cutoff_ns(Some(Duration::from_nanos(30)), 100), Some(70));
        assert_eq!(cutoff_ns(Some(Duration::MAX), 0), Some(-i64::MAX));
    }
}
