//! Time ranges and scan direction.

/// A half-open time range `[start_ns, end_ns)` in nanoseconds since the epoch,
/// the way Loki selects log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// Inclusive start.
    pub start_ns: i64,
    /// Exclusive end.
    pub end_ns: i64,
}

impl TimeRange {
    /// The range from `start_ns` (inclusive) to `end_ns` (exclusive).
    pub fn new(start_ns: i64, end_ns: i64) -> Self {
        TimeRange { start_ns, end_ns }
    }

    /// Everything that can be stored.
    pub fn all() -> Self {
        TimeRange {
            start_ns: i64::MIN,
            end_ns: i64::MAX,
        }
    }

    /// Whether `ts_ns` falls inside the range.
    pub fn contains(&self, ts_ns: i64) -> bool {
        ts_ns >= self.start_ns && ts_ns < self.end_ns
    }

    /// Whether the closed interval `[min_ns, max_ns]` (a block's or chunk's
    /// bounds) shares at least one instant with this range.
    pub fn overlaps(&self, min_ns: i64, max_ns: i64) -> bool {
        min_ns < self.end_ns && max_ns >= self.start_ns
    }

    /// Whether the range holds no instant at all.
    pub fn is_empty(&self) -> bool {
        self.start_ns >= self.end_ns
    }
}

/// The order in which log entries are returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    #[default]
    Backward,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_half_open() {
        let r = TimeRange::new(10, 20);
        assert!(r.contains(10));
        assert!(r.contains(19));
        assert!(!r.contains(20));
        assert!(!r.contains(9));
    }

    #[test]
    fn overlap_treats_bounds_as_closed() {
        let r = TimeRange::new(10, 20);
        assert!(r.overlaps(0, 10));
        assert!(r.overlaps(19, 30));
        assert!(!r.overlaps(20, 30));
        assert!(!r.overlaps(0, 9));
    }
}
