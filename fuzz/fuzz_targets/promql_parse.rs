//! Fuzzes the PromQL front end: arbitrary UTF-8 must never panic in
//! promql-parser or in our translation, and `match[]` selector parsing.
#![no_main]

use inferscope_query::promql;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = promql::parse(input);
    let _ = promql::parse_selector(input);
});
