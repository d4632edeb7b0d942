//! Loki's canonical detected levels.
//!
//! Ingest gives almost every entry a `detected_level` structured metadata pair
//! (Loki's `discover_log_levels`), and nearly always one of eight canonical
//! values. Held as a [`Level`], it is one byte through the WAL, the head and
//! blocks instead of a name and a value per entry; readers see the same
//! `detected_level` pair as before.

/// The structured metadata name Loki stores the level under.
pub const DETECTED_LEVEL: &str = "detected_level";

/// A canonical `detected_level` value, as Loki spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// `trace`
    Trace = 1,
    /// `debug`
    Debug = 2,
    /// `info`
    Info = 3,
    /// `warn`
    Warn = 4,
    /// `error`
    Error = 5,
    /// `critical`
    Critical = 6,
    /// `fatal`
    Fatal = 7,
    /// `unknown`: no level was found.
    Unknown = 8,
}

impl Level {
    /// Every level, in code order.
    pub const ALL: [Level; 8] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Critical,
        Level::Fatal,
        Level::Unknown,
    ];

    /// The value as Loki writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
            Level::Fatal => "fatal",
            Level::Unknown => "unknown",
        }
    }

    /// The level spelled exactly `value` (`"info"`, not `"INFO"`); `None`
    /// for anything else.
    pub fn from_canonical(value: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == value)
    }

    /// The stored code, 1 to 8 (0 stands for "no level" where a code is
    /// stored per entry).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The level of a stored code; `None` for 0 and unknown codes.
    pub fn from_code(code: u8) -> Option<Level> {
        Level::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

impl PartialEq<&str> for Level {
    /// Whether `other` is this level's canonical spelling.
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The stored code of an optional level: 0 for none.
pub fn level_code(level: Option<Level>) -> u8 {
    level.map_or(0, Level::code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_spellings_round_trip() {
        for level in Level::ALL {
            assert_eq!(Level::from_code(level.code()), Some(level));
            assert_eq!(Level::from_canonical(level.as_str()), Some(level));
        }
        assert_eq!(Level::from_code(0), None);
        assert_eq!(Level::from_code(9), None);
        assert_eq!(level_code(None), 0);
        assert_eq!(Level::from_canonical("INFO"), None);
        assert_eq!(Level::from_canonical("warning"), None);
    }
}
