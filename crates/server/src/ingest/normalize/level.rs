//! `detected_level`, as Loki's distributor derives it (`discover_log_levels`),
//! with better rules for the plain-text formats of LLM serving stacks.
//!
//! Loki's order: an existing `detected_level` (normalized), a level stream label,
//! a level structured metadata, the level field of a JSON or logfmt line; then,
//! for plain text, words in the line. The canonical values are Loki's: `trace`,
//! `debug`, `info`, `warn`, `error`, `critical`, `fatal`, and `unknown`; a label
//! or metadata value that is none of them is stored as is, as Loki does.
//!
//! Before Loki's word search, plain-text lines are matched by their prefix, so
//! `ERROR 06-05 07:51:00 [core.py:586] … info …` is an error (Loki's search,
//! which looks for `info` first, would call it info): vLLM and uvicorn
//! (`INFO 06-05 …`, `INFO:     …`), Python logging (`WARNING:root:…`,
//! `2024-06-05 07:51:00,123 - name - WARNING - …`), timestamped text
//! (`2025-09-02T15:50:01Z  INFO main: …`), bracketed levels (`[ERROR] …`) and klog
//! (`E0605 07:51:00.123456 …`).

use inferscope_model::Level;
use inferscope_query::pipeline::logfmt;

/// The structured metadata name Loki stores the level under.
pub use inferscope_model::DETECTED_LEVEL;

/// A `detected_level` value: one of Loki's canonical levels, or (from a
/// level label or metadata Loki has no canonical spelling for) the value as
/// it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelValue {
    /// A canonical level.
    Canonical(Level),
    /// Any other value, kept as Loki keeps it.
    Other(String),
}

impl PartialEq<&str> for LevelValue {
    fn eq(&self, other: &&str) -> bool {
        match self {
            LevelValue::Canonical(level) => level == other,
            LevelValue::Other(text) => text == other,
        }
    }
}

/// Loki's default `log_level_fields`, plus `levelname` (python-json-logger).
pub const DEFAULT_LEVEL_FIELDS: [&str; 15] = [
    "level",
    "LEVEL",
    "Level",
    "log.level",
    "severity",
    "SEVERITY",
    "Severity",
    "SeverityText",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
    "levelname",
];

/// Loki's canonical level of `value` (case-insensitive), `None` when unknown.
pub fn canonical_level(value: &str) -> Option<Level> {
    const TABLE: [(&str, Level); 14] = [
        ("trace", Level::Trace),
        ("trc", Level::Trace),
        ("debug", Level::Debug),
        ("dbg", Level::Debug),
        ("info", Level::Info),
        ("inf", Level::Info),
        ("information", Level::Info),
        ("warn", Level::Warn),
        ("wrn", Level::Warn),
        ("warning", Level::Warn),
        ("error", Level::Error),
        ("err", Level::Error),
        ("critical", Level::Critical),
        ("fatal", Level::Fatal),
    ];
    TABLE
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(value))
        .map(|(_, level)| *level)
}

/// Loki's `normalizeLogLevel`: the canonical level, else the value itself
/// (a copy).
pub fn normalize_level(value: &str) -> LevelValue {
    match canonical_level(value) {
        Some(level) => LevelValue::Canonical(level),
        None => LevelValue::Other(value.to_string()),
    }
}

/// The level of a line whose level field held `field_value` (JSON or logfmt):
/// its canonical level, else (like Loki) the level found in the line's text.
pub fn level_from_field(field_value: &str, line: &str) -> Level {
    canonical_level(field_value).unwrap_or_else(|| level_from_words(line))
}

/// The level of a line that is not JSON: its prefix, then a logfmt level
/// field (keys compared case-insensitively, as Loki does), then Loki's word
/// search.
pub fn level_of_plain_text(line: &str, level_fields: &[String]) -> Level {
    if let Some(level) = level_from_prefix(line) {
        return level;
    }
    if line.contains('=') {
        let mut best: Option<(usize, String)> = None;
        let _ = logfmt::parse(line, false, &mut |key, value| {
            if let Some(rank) = level_fields
                .iter()
                .position(|f| f.eq_ignore_ascii_case(key))
                && best.as_ref().is_none_or(|(r, _)| rank < *r)
            {
                best = Some((rank, value.into_owned()));
            }
        });
        if let Some((_, value)) = best {
            return level_from_field(&value, line);
        }
    }
    level_from_words(line)
}

/// The level of a line from its first words; `None` when the prefix has none.
pub fn level_from_prefix(line: &str) -> Option<Level> {
    let line = line.trim_start();
    let bytes = line.as_bytes();
    // klog / glog: `I0605 07:51:00.123456   1 file.go:12] …`
    if bytes.len() > 6
        && bytes[1..5].iter().all(u8::is_ascii_digit)
        && bytes[5] == b' '
        && bytes.get(6).is_some_and(u8::is_ascii_digit)
    {
        match bytes[0] {
            b'I' => return Some(Level::Info),
            b'W' => return Some(Level::Warn),
            b'E' => return Some(Level::Error),
            b'F' => return Some(Level::Fatal),
            b'D' => return Some(Level::Debug),
            _ => {}
        }
    }
    // Python's `%(asctime)s - %(name)s - %(levelname)s - %(message)s`.
    let head = &line[..floor_char_boundary(line, 160)];
    if head.starts_with(|c: char| c.is_ascii_digit()) {
        for part in head.split(" - ").skip(1) {
            if let Some(level) = upper_level(part) {
                return Some(level);
            }
        }
    }
    // `LEVEL …`, `LEVEL: …`, `[LEVEL] …`, `<timestamp tokens> LEVEL …`.
    for token in line.split_ascii_whitespace().take(4) {
        let word = token
            .trim_start_matches('[')
            .split([']', ':', '|'])
            .next()
            .unwrap_or_default();
        if let Some(level) = upper_level(word) {
            return Some(level);
        }
        let bracketed = token.starts_with('[');
        if bracketed && let Some(level) = canonical_level(word) {
            return Some(level);
        }
        // Only timestamps (and the `-` of some layouts) may come before the level.
        let is_time = token.starts_with(|c: char| c.is_ascii_digit()) || token == "-";
        if !is_time {
            return None;
        }
    }
    None
}

/// A level word written in capitals (`INFO`, `WARNING`, `ERR`…); lowercase
/// words are too common in prose to be taken from a prefix.
fn upper_level(word: &str) -> Option<Level> {
    if word.len() < 3 || !word.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    canonical_level(word)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Loki's `detectLevelFromLogLine`, exactly: substrings, checked in its order
/// (info first), else `unknown`.
pub fn level_from_words(line: &str) -> Level {
    let has = |words: &[&str]| words.iter().any(|w| line.contains(w));
    if has(&["info:", "INFO:", "[info]", "[INFO]", "info", "INFO"]) {
        return Level::Info;
    }
    if has(&["err:", "ERR:", "[err]", "[ERR]", "[error]", "[ERROR]"]) {
        return Level::Error;
    }
    if has(&[
        "warn:",
        "WARN:",
        "[warn]",
        "[WARN]",
        "[warning]",
        "[WARNING]",
        "warning",
        "WARNING",
    ]) {
        return Level::Warn;
    }
    if has(&["critical:", "CRITICAL:", "[critical]", "[CRITICAL]"]) {
        return Level::Critical;
    }
    if has(&["debug:", "DEBUG:", "[debug]", "[DEBUG]", "debug", "DEBUG"]) {
        return Level::Debug;
    }
    Level::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        DEFAULT_LEVEL_FIELDS.map(String::from).to_vec()
    }

    #[test]
    fn canonical_values_are_lokis() {
        let cases = [
            ("INFO", Some("info")),
            ("Information", Some("info")),
            ("WARNING", Some("warn")),
            ("wrn", Some("warn")),
            ("ERR", Some("error")),
            ("CRITICAL", Some("critical")),
            ("fatal", Some("fatal")),
            ("TRC", Some("trace")),
            ("dbg", Some("debug")),
            ("notice", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(canonical_level(value).map(Level::as_str), want, "{value}");
        }
        assert_eq!(normalize_level("NOTICE"), "NOTICE");
        assert_eq!(normalize_level("Warning"), "warn");
    }

    #[test]
    fn plain_text_prefixes() {
        let cases = [
            (
                "INFO 06-05 07:51:00 [logger.py:43] Received request chatcmpl-1",
                "info",
            ),
            (
                "ERROR 06-05 07:51:00 [core.py:586] EngineCore failed: see info",
                "error",
            ),
            ("WARNING 06-05 07:51:00 [scheduler.py:1] preempted", "warn"),
            (
                "INFO:     10.42.0.2:40000 - \"GET /metrics\" 200 OK",
                "info",
            ),
            ("WARNING:root:disk almost full, info follows", "warn"),
            (
                "2024-06-05 07:51:00,123 - chat_api - ERROR - upstream info missing",
                "error",
            ),
            (
                "2025-09-02T15:50:01.770028Z  INFO main.init: VllmWorker ready",
                "info",
            ),
            (
                "2025-09-02T15:50:01Z ERROR failed to connect, info",
                "error",
            ),
            ("[ERROR] could not load information", "error"),
            ("[warn] slow", "warn"),
            (
                "I0605 07:51:00.123456       1 server.go:12] started",
                "info",
            ),
            ("W0605 07:51:00.123456       1 server.go:12] slow", "warn"),
            (
                "E0605 07:51:00.123456       1 server.go:12] failed",
                "error",
            ),
            ("F0605 07:51:00.123456       1 server.go:12] dead", "fatal"),
        ];
        for (line, want) in cases {
            assert_eq!(level_of_plain_text(line, &fields()), want, "{line}");
        }
    }

    #[test]
    fn logfmt_level_fields() {
        let f = fields();
        assert_eq!(
            level_of_plain_text(
                r#"time="2024-06-05T07:51:00Z" level=error msg="boom info""#,
                &f
            ),
            "error"
        );
        assert_eq!(level_of_plain_text("lvl=WRN msg=slow", &f), "warn");
        assert_eq!(level_of_plain_text("LeVeL=debug", &f), "debug");
        // An unknown value falls back to the words of the line, as in Loki.
        assert_eq!(level_of_plain_text("level=notice msg=INFO", &f), "info");
    }

    #[test]
    fn words_follow_loki_exactly() {
        assert_eq!(level_from_words("something happened"), "unknown");
        assert_eq!(level_from_words("an [error] with info"), "info");
        assert_eq!(level_from_words("ERR: disk"), "error");
        assert_eq!(level_from_words("a warning"), "warn");
        assert_eq!(level_from_words("CRITICAL: down"), "critical");
        assert_eq!(level_from_words("DEBUG stuff"), "debug");
        // Prose does not make a prefix.
        assert_eq!(level_from_prefix("error handling is fine"), None);
        assert_eq!(level_from_prefix("the ERROR was"), None);
    }
}
