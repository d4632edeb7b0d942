//! Validation of decoded push streams against `limits_config`, in Loki's words.
//!
//! As in Loki, the valid entries of a batch are kept and every refused entry
//! is named in the response (up to [`MAX_REPORTED_ERRORS`] messages, then a
//! count), so a client knows exactly what was not stored.

use inferscope_model::{PushStream, is_valid_label_name};

use crate::config::LimitsConfig;

/// How many individual error messages a response lists.
pub const MAX_REPORTED_ERRORS: usize = 10;

/// Why entries were refused; the label of the `reason` in our own metrics
/// (Loki's discarded-samples reasons where one exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Invalid, missing or too many labels.
    InvalidLabels,
    /// Older than `reject_old_samples_max_age`.
    GreaterThanMaxSampleAge,
    /// Newer than now + `creation_grace_period`.
    TooFarInFuture,
    /// Longer than `max_line_size`.
    LineTooLong,
    /// Structured metadata over its limits.
    StructuredMetadataTooLarge,
}

impl RejectReason {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidLabels => "invalid_labels",
            RejectReason::GreaterThanMaxSampleAge => "greater_than_max_sample_age",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::StructuredMetadataTooLarge => "structured_metadata_too_large",
        }
    }
}

/// What validation kept and refused.
#[derive(Debug, Default)]
pub struct Validated {
    /// Streams with their accepted entries (streams left empty are removed).
    pub streams: Vec<PushStream>,
    /// Refused entries by reason: `(reason, entries, bytes)`.
    pub rejected: Vec<(RejectReason, usize, usize)>,
    /// Messages for the response, at most [`MAX_REPORTED_ERRORS`].
    pub messages: Vec<String>,
    /// Total number of refused entries.
    pub rejected_entries: usize,
    /// Total number of entries in the request.
    pub total_entries: usize,
}

impl Validated {
    fn reject(
        &mut self,
        reason: RejectReason,
        entries: usize,
        bytes: usize,
        message: impl FnOnce() -> String,
    ) {
        if entries == 0 {
            return;
        }
        self.rejected_entries += entries;
        match self.rejected.iter_mut().find(|(r, _, _)| *r == reason) {
            Some((_, n, b)) => {
                *n += entries;
                *b += bytes;
            }
            None => self.rejected.push((reason, entries, bytes)),
        }
        if self.messages.len() < MAX_REPORTED_ERRORS {
            self.messages.push(message());
        }
    }

    /// The 400 body when anything was refused, in Loki's form.
    pub fn error_body(&self) -> Option<String> {
        if self.rejected_entries == 0 {
            return None;
        }
        let mut body = self.messages.join("\n");
        body.push_str(&format!(
            "\ntotal ignored: {} out of {}",
            self.rejected_entries, self.total_entries
        ));
        Some(body)
    }
}

/// Checks every stream and entry; `now_ns` is the server's clock.
pub fn validate(streams: Vec<PushStream>, limits: &LimitsConfig, now_ns: i64) -> Validated {
    let mut out = Validated::default();
    let oldest_ns = if limits.reject_old_samples {
        now_ns.saturating_sub(limits.reject_old_samples_max_age.as_nanos() as i64)
    } else {
        i64::MIN
    };
    let newest_ns = now_ns.saturating_add(limits.creation_grace_period.as_nanos() as i64);
    let max_line = limits.max_line_size as usize;

    for mut stream in streams {
        out.total_entries += stream.entries.len();
        if let Err(message) = check_labels(&stream, limits) {
            let bytes = stream.entries.iter().map(|e| e.size_bytes()).sum();
            out.reject(
                RejectReason::InvalidLabels,
                stream.entries.len(),
                bytes,
                || message,
            );
            continue;
        }
        // Formatted only when an entry is refused: the messages are built lazily.
        let labels_text = &stream.labels;
        let mut kept = Vec::with_capacity(stream.entries.len());
        for mut entry in std::mem::take(&mut stream.entries) {
            let size = entry.size_bytes();
            if entry.timestamp_ns < oldest_ns {
                out.reject(RejectReason::GreaterThanMaxSampleAge, 1, size, || {
                    format!(
                        "entry for stream '{labels_text}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                        crate::http::params::format_rfc3339(entry.timestamp_ns),
                        crate::http::params::format_rfc3339(oldest_ns)
                    )
                });
                continue;
            }
            if entry.timestamp_ns > newest_ns {
                out.reject(RejectReason::TooFarInFuture, 1, size, || {
                    format!(
                        "entry for stream '{labels_text}' has timestamp too new: {}",
                        crate::http::params::format_rfc3339(entry.timestamp_ns)
                    )
                });
                continue;
            }
            if max_line > 0 && entry.line.len() > max_line {
                if limits.max_line_size_truncate {
                    let mut cut = max_line;
                    while !entry.line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    entry.line.truncate(cut);
                } else {
                    let len = entry.line.len();
                    out.reject(RejectReason::LineTooLong, 1, size, || {
                        format!(
                            "Max entry size '{max_line}' bytes exceeded for stream '{labels_text}' while adding an entry with length '{len}' bytes"
                        )
                    });
                    continue;
                }
            }
            let md_bytes: usize = entry
                .structured_metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum();
            if md_bytes as u64 > limits.max_structured_metadata_size
                || entry.structured_metadata.len() > limits.max_structured_metadata_entries_count
            {
                out.reject(RejectReason::StructuredMetadataTooLarge, 1, size, || {
                    format!(
                        "stream '{labels_text}' has structured metadata too large: '{md_bytes}' bytes in {} entries, limit: '{}' bytes, {} entries",
                        entry.structured_metadata.len(),
                        limits.max_structured_metadata_size,
                        limits.max_structured_metadata_entries_count
                    )
                });
                continue;
            }
            if let Some((name, _)) = entry
                .structured_metadata
                .iter()
                .find(|(k, _)| !is_valid_label_name(k))
            {
                let name = name.clone();
                out.reject(RejectReason::InvalidLabels, 1, size, || {
                    format!("stream '{labels_text}' has invalid structured metadata name: '{name}'")
                });
                continue;
            }
            kept.push(entry);
        }
        if !kept.is_empty() {
            stream.entries = kept;
            out.streams.push(stream);
        }
    }
    out
}

fn check_labels(stream: &PushStream, limits: &LimitsConfig) -> Result<(), String> {
    let labels = &stream.labels;
    if labels.is_empty() {
        return Err("error at least one label pair is required per stream".into());
    }
    if labels.len() > limits.max_label_names_per_series {
        return Err(format!(
            "entry for stream '{labels}' has {} label names; limit {}",
            labels.len(),
            limits.max_label_names_per_series
        ));
    }
    for (name, value) in labels.iter() {
        if !is_valid_label_name(name) {
            return Err(format!(
                "stream '{labels}' has invalid label name: '{name}'"
            ));
        }
        if name.len() > limits.max_label_name_length {
            return Err(format!(
                "stream '{labels}' has label name too long: '{name}'"
            ));
        }
        if value.len() > limits.max_label_value_length {
            return Err(format!(
                "stream '{labels}' has label value too long: '{value}'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use inferscope_model::{Labels, LogEntry};

    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn stream(labels: &[(&str, &str)], entries: Vec<LogEntry>) -> PushStream {
        PushStream {
            labels: Labels::from_pairs(labels.iter().copied()),
            entries,
        }
    }

    #[test]
    fn keeps_valid_entries_and_names_the_refused_ones() {
        let limits = LimitsConfig::default();
        let too_old = NOW - Duration::from_secs(8 * 86_400).as_nanos() as i64;
        let v = validate(
            vec![stream(
                &[("app", "x")],
                vec![
                    LogEntry::new(NOW, "ok"),
                    LogEntry::new(too_old, "old"),
                    LogEntry::new(NOW, "x".repeat(300_000)),
                ],
            )],
            &limits,
            NOW,
        );
        assert_eq!(v.streams.len(), 1);
        assert_eq!(v.streams[0].entries.len(), 1);
        assert_eq!(v.rejected_entries, 2);
        let body = v.error_body().expect("errors");
        assert!(body.contains("has timestamp too old"), "{body}");
        assert!(
            body.contains("Max entry size '262144' bytes exceeded"),
            "{body}"
        );
        assert!(body.ends_with("total ignored: 2 out of 3"), "{body}");
    }

    #[test]
    fn old_samples_are_accepted_when_the_check_is_off() {
        let limits = LimitsConfig {
            reject_old_samples: false,
            ..LimitsConfig::default()
        };
        let month_ago = NOW - Duration::from_secs(30 * 86_400).as_nanos() as i64;
        let v = validate(
            vec![stream(&[("app", "x")], vec![LogEntry::new(month_ago, "a")])],
            &limits,
            NOW,
        );
        assert_eq!(v.rejected_entries, 0);
        assert_eq!(v.streams[0].entries.len(), 1);
    }

    #[test]
    fn invalid_label_names_refuse_the_stream() {
        let limits = LimitsConfig::default();
        let v = validate(
            vec![
                stream(&[("bad-name", "x")], vec![LogEntry::new(NOW, "a")]),
                stream(&[], vec![LogEntry::new(NOW, "b")]),
            ],
            &limits,
            NOW,
        );
        assert!(v.streams.is_empty());
        let body = v.error_body().expect("errors");
        assert!(body.contains("invalid label name: 'bad-name'"), "{body}");
        assert!(
            body.contains("at least one label pair is required"),
            "{body}"
        );
    }

    #[test]
    fn long_lines_can_be_truncated_on_a_char_boundary() {
        let limits = LimitsConfig {
            max_line_size: 5,
            max_line_size_truncate: true,
            ..LimitsConfig::default()
        };
        let v = validate(
            vec![stream(&[("app", "x")], vec![LogEntry::new(NOW, "abcdé€")])],
            &limits,
            NOW,
        );
        assert_eq!(v.streams[0].entries[0].line, "abcd");
    }
}
