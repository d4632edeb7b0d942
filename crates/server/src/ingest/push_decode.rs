//! Decoding of Loki push bodies into [`PushStream`]s.
//!
//! Two wire formats, as in Loki:
//! - `application/x-protobuf`: snappy *block* format around [`PushRequest`];
//! - `application/json` (the default): `{"streams":[{"stream":{..},"values":[["<ns>","line",{metadata}]]}]}`,
//!   optionally gzip-compressed (`Content-Encoding: gzip`).
//!
//! Every decompression is capped: a body that would expand past the limit is
//! refused before the memory is allocated. Nothing here validates limits:
//! that is [`super::validate`]'s job.

use std::io::Read;

use inferscope_model::{Labels, LogEntry, PushStream};
use prost::Message;
use serde::Deserialize;

use super::loki_proto::PushRequest;

/// Why a push body could not be decoded. Each message names the problem for
/// the 400 response.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The snappy frame is broken.
    #[error("failed to decompress snappy body: {0}")]
    Snappy(String),
    /// The gzip stream is broken.
    #[error("failed to decompress gzip body: {0}")]
    Gzip(String),
    /// Decompression would exceed the cap.
    #[error("decompressed body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// The protobuf message is malformed (or holds non-UTF-8 strings).
    #[error("failed to decode protobuf push request: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The JSON body is malformed.
    #[error("failed to decode JSON push request: {0}")]
    Json(#[from] serde_json::Error),
    /// A stream's label string does not parse.
    #[error("invalid labels {labels:?}: {source}")]
    Labels {
        /// The label string as sent.
        labels: String,
        /// Where it went wrong.
        #[source]
        source: inferscope_model::LabelsParseError,
    },
    /// A JSON value's timestamp is not a nanosecond integer string.
    #[error("invalid timestamp {0:?}: expected a string of nanoseconds since the epoch")]
    Timestamp(String),
    /// The `Content-Encoding` is not one we read.
    #[error("unsupported Content-Encoding {0:?}: use gzip, snappy or none")]
    Encoding(String),
    /// The `Content-Type` is not one we read.
    #[error("unsupported Content-Type {0:?}: use application/json or application/x-protobuf")]
    ContentType(String),
}

/// The body's format, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    /// Loki's JSON.
    Json,
    /// Snappy-compressed protobuf.
    Protobuf,
}

impl PushFormat {
    /// Maps a `Content-Type` header (parameters ignored). A missing header
    /// means JSON, as Loki assumes.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, DecodeError> {
        let Some(ct) = content_type else {
            return Ok(PushFormat::Json);
        };
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(PushFormat::Protobuf),
            "application/json" | "" | "text/plain" => Ok(PushFormat::Json),
            _ => Err(DecodeError::ContentType(ct.to_string())),
        }
    }
}

/// Removes a `Content-Encoding` (gzip or none; snappy is implied by protobuf),
/// refusing output larger than `limit`.
pub fn decode_content_encoding(
    encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => Ok(body.to_vec()),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let mut reader = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::Gzip(e.to_string()))?;
            if out.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            Ok(out)
        }
        Some("snappy") => Ok(body.to_vec()), // protobuf bodies are snappy anyway
        Some(other) => Err(DecodeError::Encoding(other.to_string())),
    }
}

/// Decodes a snappy-block-compressed protobuf push request.
pub fn decode_protobuf(body: &[u8], limit: usize) -> Result<Vec<PushStream>, DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    let request = PushRequest::decode(raw.as_slice())?;
    let mut streams = Vec::with_capacity(request.streams.len());
    for stream in request.streams {
        let labels = Labels::parse(&stream.labels).map_err(|source| DecodeError::Labels {
            labels: stream.labels.clone(),
            source,
        })?;
        let entries = stream
            .entries
            .into_iter()
            .map(|e| LogEntry {
                line_metadata: Vec::new(),
                detected_level: None,
                timestamp_ns: e.timestamp.map(|t| t.to_nanos()).unwrap_or(0),
                line: e.line,
                structured_metadata: e
                    .structured_metadata
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect(),
            })
            .collect();
        streams.push(PushStream { labels, entries });
    }
    Ok(streams)
}

#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<JsonValue>,
}

/// `["<ns>", "line"]` or `["<ns>", "line", {"k": "v"}]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonValue {
    Plain((String, String)),
    WithMetadata((String, String, std::collections::BTreeMap<String, String>)),
}

/// Decodes Loki's JSON push body.
pub fn decode_json(body: &[u8]) -> Result<Vec<PushStream>, DecodeError> {
    let push: JsonPush = serde_json::from_slice(body)?;
    let mut streams = Vec::with_capacity(push.streams.len());
    for stream in push.streams {
        let mut entries = Vec::with_capacity(stream.values.len());
        for value in stream.values {
            let (ts, line, metadata) = match value {
                JsonValue::Plain((ts, line)) => (ts, line, Vec::new()),
                JsonValue::WithMetadata((ts, line, md)) => (ts, line, md.into_iter().collect()),
            };
            let timestamp_ns: i64 = ts.trim().parse().map_err(|_| DecodeError::Timestamp(ts))?;
            entries.push(LogEntry {
                line_metadata: Vec::new(),
                detected_level: None,
                timestamp_ns,
                line,
                structured_metadata: metadata,
            });
        }
        streams.push(PushStream {
            labels: Labels::from_pairs(stream.stream),
            entries,
        });
    }
    Ok(streams)
}

/// Encodes streams as a snappy protobuf push body (used by the benchmark and
/// the demo load, which push through the real API).
pub fn encode_protobuf(streams: &[PushStream]) -> Vec<u8> {
    use super::loki_proto::{EntryAdapter, LabelPairAdapter, StreamAdapter, Timestamp};
    let request = PushRequest {
        streams: streams
            .iter()
            .map(|s| StreamAdapter {
                labels: s.labels.to_string(),
                entries: s
                    .entries
                    .iter()
                    .map(|e| EntryAdapter {
                        timestamp: Some(Timestamp::from_nanos(e.timestamp_ns)),
                        line: e.line.clone(),
                        // Every pair, the level and line values included.
                        structured_metadata: e
                            .metadata()
                            .map(|(name, value)| LabelPairAdapter {
                                name: name.to_string(),
                                value: value.to_string(),
                            })
                            .collect(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    // Compressing a buffer we just built cannot fail: snap only errors on
    // inputs larger than 2^32 bytes, which a caller would have split.
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn json_with_and_without_metadata() {
        let body = br#"{"streams":[{"stream":{"app":"aigateway"},"values":[
            ["1700000000000000000","plain"],
            ["1700000000000000001","with md",{"trace_id":"abc"}]]}]}"#;
        let streams = decode_json(body).expect("valid");
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].labels.get("app"), Some("aigateway"));
        let e = &streams[0].entries;
        assert_eq!(e[0].timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(
            e[1].structured_metadata,
            vec![("trace_id".into(), "abc".into())]
        );
    }

    #[test]
    fn json_errors_name_the_problem() {
        let err = decode_json(br#"{"streams":[{"stream":{},"values":[["soon","x"]]}]}"#)
            .expect_err("bad ts");
        assert!(
            err.to_string().contains("invalid timestamp \"soon\""),
            "{err}"
        );
        let err = decode_json(b"{\"streams\":").expect_err("truncated");
        assert!(
            err.to_string()
                .starts_with("failed to decode JSON push request"),
            "{err}"
        );
    }

    #[test]
    fn gzip_is_capped() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b'a'; 10_000]).expect("write");
        let body = gz.finish().expect("finish");
        assert_eq!(
            decode_content_encoding(Some("gzip"), &body, 10_000)
                .expect("fits")
                .len(),
            10_000
        );
        assert!(matches!(
            decode_content_encoding(Some("gzip"), &body, 9_999),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(decode_content_encoding(Some("gzip"), b"not gzip", LIMIT).is_err());
        assert!(decode_content_encoding(Some("br"), b"", LIMIT).is_err());
    }

    #[test]
    fn snappy_is_capped_and_checked() {
        let body = encode_protobuf(&[PushStream {
            labels: Labels::from_pairs([("app", "x")]),
            entries: vec![LogEntry::new(1, "a".repeat(5000))],
        }]);
        assert!(decode_protobuf(&body, LIMIT).is_ok());
        assert!(matches!(
            decode_protobuf(&body, 100),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_protobuf(b"\xff\xff\xff", LIMIT),
            Err(DecodeError::Snappy(_))
        ));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PushFormat::from_content_type(None).expect("ok"),
            PushFormat::Json
        );
        assert_eq!(
            PushFormat::from_content_type(Some("application/x-protobuf")).expect("ok"),
            PushFormat::Protobuf
        );
        assert_eq!(
            PushFormat::from_content_type(Some("application/json; charset=utf-8")).expect("ok"),
            PushFormat::Json
        );
        assert!(PushFormat::from_content_type(Some("image/png")).is_err());
    }

    /// A level and line values are encoded as the pairs they stand for.
    #[test]
    fn every_metadata_pair_is_encoded() {
        let mut e = LogEntry::new(5, r#"{"trace_id":"abc"}"#);
        e.structured_metadata.push(("pod".into(), "p-1".into()));
        e.detected_level = Some(inferscope_model::Level::Warn);
        e.line_metadata
            .extend(inferscope_model::LineMetadata::checked(
                "trace_id", &e.line, 13, 16,
            ));
        let pairs: Vec<(String, String)> = e
            .metadata()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let stream = PushStream {
            labels: Labels::from_pairs([("app", "a")]),
            entries: vec![e],
        };
        let decoded = decode_protobuf(&encode_protobuf(&[stream]), 1 << 20).expect("decodes");
        assert_eq!(decoded[0].entries[0].structured_metadata, pairs);
        assert_eq!(pairs.len(), 3);
    }

    fn arb_streams() -> impl Strategy<Value = Vec<PushStream>> {
        let entry = (
            any::<i64>(),
            "\\PC{0,40}",
            proptest::collection::vec(("[a-z_]{1,6}", "\\PC{0,8}"), 0..3),
        )
            .prop_map(|(ts, line, md)| LogEntry {
                line_metadata: Vec::new(),
                detected_level: None,
                timestamp_ns: ts,
                line,
                structured_metadata: md,
            });
        let stream = (
            proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,6}", "\\PC{1,8}"), 0..4),
            proptest::collection::vec(entry, 0..5),
        )
            .prop_map(|(labels, entries)| PushStream {
                labels: Labels::from_pairs(labels),
                entries,
            });
        proptest::collection::vec(stream, 0..4)
    }

    proptest! {
        #[test]
        fn protobuf_round_trips(streams in arb_streams()) {
            let body = encode_protobuf(&streams);
            prop_assert_eq!(decode_protobuf(&body, 1 << 24).expect("own encoding decodes"), streams);
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_protobuf(&bytes, LIMIT);
            let _ = decode_json(&bytes);
            let _ = decode_content_encoding(Some("gzip"), &bytes, LIMIT);
        }
    }
}
