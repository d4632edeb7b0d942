//! Settings of the global allocator (mimalloc, set in `main.rs` and in the
//! benches that stand for the server).
//!
//! mimalloc hands memory that stays free for `purge_delay` milliseconds back
//! to the OS (1 s by default); the next allocation there faults the pages in
//! again and the kernel zeroes them. Under sustained ingest the heads are
//! freed and rebuilt every few seconds, so with the default much of the
//! server's CPU went to page faults and zeroing (about a sixth of the server
//! CPU per MB ingested, raw push path and pipeline alike). Memory now
//! stays with the process for [`PURGE_DELAY_MS`] after it is freed: RSS holds
//! at its high-water mark while load lasts and falls back within seconds of
//! the load ending. `MIMALLOC_PURGE_DELAY` in the environment still wins.
//!
//! The one module of the workspace that may use `unsafe`: two calls into the
//! C library, which the `mimalloc` crate does not wrap.
#![allow(unsafe_code)]

use std::os::raw::{c_int, c_long};

// Links the library these functions live in, also into binaries (tests)
// that do not make mimalloc their allocator.
use mimalloc as _;

// The options API of the mimalloc library that the `mimalloc` crate builds
// and links (`mi_option_*` in its `mimalloc.h`).
unsafe extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// How long freed memory stays with the process before it goes back to the
/// OS, in milliseconds.
pub const PURGE_DELAY_MS: c_long = 10_000;

/// Applies the server's allocator settings; call once at startup.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set takes any option index and value; the index
        // is checked against the library's default in the test below.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// The purge delay mimalloc uses now, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reading an option has no preconditions.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is mimalloc's purge delay: before `tune` it reads
    /// the library's default (1000 ms, an option no neighbour shares), after
    /// it the server's setting.
    #[test]
    fn tune_sets_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        assert_eq!(purge_delay_ms(), 1000);
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
