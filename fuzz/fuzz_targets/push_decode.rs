//! Fuzzes the Loki push decoders: snappy protobuf, gzip and JSON bodies, then
//! validation. Arbitrary bytes must give an error value, never a panic, and a
//! decompression must never exceed its cap.
#![no_main]

use inferscope_server::config::LimitsConfig;
use inferscope_server::ingest::push_decode::{decode_content_encoding, decode_json, decode_protobuf, encode_protobuf};
use inferscope_server::ingest::validate::validate;
use libfuzzer_sys::fuzz_target;

const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let limits = LimitsConfig::default();
    if let Ok(streams) = decode_protobuf(data, CAP) {
        // What decodes must re-encode and decode to the same streams.
        let again = decode_protobuf(&encode_protobuf(&streams), usize::MAX).expect("own encoding decodes");
        assert_eq!(again, streams);
        let _ = validate(streams, &limits, 1_700_000_000_000_000_000);
    }
    if let Ok(raw) = decode_content_encoding(Some("gzip"), data, CAP) {
        assert!(raw.len() <= CAP);
        let _ = decode_json(&raw);
    }
    if let Ok(streams) = decode_json(data) {
        let _ = validate(streams, &limits, 1_700_000_000_000_000_000);
    }
});
