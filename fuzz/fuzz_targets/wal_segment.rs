//! Fuzzes the WAL segment reader: a segment file is read back after a crash,
//! so any bytes (torn, corrupt) must give records or a stop, never a panic.
#![no_main]

use inferscope_storage::wal::{decode_payload, scan_segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_payload(data);
    let _ = scan_segment(data, |_record| {});
});
