//! OTLP/HTTP bodies: `application/x-protobuf` or `application/json` (the OTLP
//! JSON mapping: camelCase fields, hex ids, 64-bit integers as strings),
//! optionally gzip-compressed, capped before and after decompression. The
//! response uses the request's encoding, as the OTLP/HTTP spec asks.

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ingest::push_decode::{DecodeError, decode_content_encoding};

/// The encoding of an OTLP/HTTP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpFormat {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

/// Why an OTLP body was refused.
#[derive(Debug, thiserror::Error)]
pub enum OtlpDecodeError {
    /// Neither protobuf nor JSON.
    #[error(
        "unsupported content type {0:?}: OTLP/HTTP takes application/x-protobuf or application/json"
    )]
    ContentType(String),
    /// Bad compression or over the size cap.
    #[error(transparent)]
    Body(#[from] DecodeError),
    /// The protobuf did not decode.
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The JSON did not decode.
    #[error("invalid OTLP JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl OtlpFormat {
    /// The format named by a `Content-Type` header.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, OtlpDecodeError> {
        let essence = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(OtlpFormat::Protobuf),
            "application/json" => Ok(OtlpFormat::Json),
            _ => Err(OtlpDecodeError::ContentType(
                content_type.unwrap_or("").to_string(),
            )),
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            OtlpFormat::Protobuf => "application/x-protobuf",
            OtlpFormat::Json => "application/json",
        }
    }

    /// Decodes a request body (after `Content-Encoding`), at most `limit` bytes
    /// once decompressed.
    pub fn decode<T: Message + Default + DeserializeOwned>(
        self,
        encoding: Option<&str>,
        body: &[u8],
        limit: usize,
    ) -> Result<T, OtlpDecodeError> {
        if body.len() > limit {
            return Err(DecodeError::TooLarge { limit }.into());
        }
        let raw = decode_content_encoding(encoding, body, limit)?;
        Ok(match self {
            OtlpFormat::Protobuf => T::decode(raw.as_slice())?,
            OtlpFormat::Json => serde_json::from_slice(&raw)?,
        })
    }

    /// Encodes a response message.
    pub fn encode<T: Message + Serialize>(self, message: &T) -> Vec<u8> {
        match self {
            OtlpFormat::Protobuf => message.encode_to_vec(),
            // Serializing generated messages cannot fail. Unset fields are
            // left out, as the OTLP JSON mapping writes them (not `null`).
            OtlpFormat::Json => {
                let mut value = serde_json::to_value(message).unwrap_or_default();
                drop_nulls(&mut value);
                serde_json::to_vec(&value).unwrap_or_default()
            }
        }
    }
}

fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            OtlpFormat::from_content_type(Some("application/x-protobuf")).unwrap(),
            OtlpFormat::Protobuf
        );
        assert_eq!(
            OtlpFormat::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            OtlpFormat::Json
        );
        let err = OtlpFormat::from_content_type(Some("text/plain")).unwrap_err();
        assert!(err.to_string().contains("text/plain"), "{err}");
    }

    #[test]
    fn json_mapping_with_hex_ids_and_string_integers() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"gw"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000001","severityNumber":17,
            "body":{"stringValue":"boom"},"traceId":"5b8efff798038103d269b633813fc60c"}]}]}]}"#;
        let req: ExportLogsServiceRequest = OtlpFormat::Json.decode(None, body, 1 << 20).unwrap();
        let record = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(record.trace_id.len(), 16);
        assert_eq!(record.trace_id[0], 0x5b);
    }

    #[test]
    fn size_cap_and_garbage() {
        let err = OtlpFormat::Protobuf
            .decode::<ExportLogsServiceRequest>(None, &[0u8; 100], 10)
            .unwrap_err();
        assert!(matches!(
            err,
            OtlpDecodeError::Body(DecodeError::TooLarge { .. })
        ));
        let err = OtlpFormat::Protobuf
            .decode::<ExportLogsServiceRequest>(None, &[0xff, 0xff, 0xff], 1 << 20)
            .unwrap_err();
        assert!(matches!(err, OtlpDecodeError::Protobuf(_)), "{err}");
    }
}
