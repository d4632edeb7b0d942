//! Interned metadata names.
//!
//! Line metadata ([`crate::LineMetadata`]) names are few (the configured id
//! fields, `detected_level`) and recur on every entry. Held as `&'static str`,
//! a pair costs no reference count: cloning and dropping it touch no shared
//! counter (an `Arc<str>` name cost two atomic operations per pair, about 4 %
//! of what the ingest pipeline adds). Each distinct name is kept once, for the
//! life of the process; names come from the configuration and from the WAL,
//! which holds only names the configuration gave.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The one `&'static str` holding `name`.
pub fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&known) = names.get(name) {
        return known;
    }
    let kept: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(kept);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_kept_once() {
        let a = intern("trace_id");
        let b = intern(&String::from("trace_id"));
        assert_eq!(a, "trace_id");
        assert!(std::ptr::eq(a, b), "the same text");
        assert!(!std::ptr::eq(a, intern("span_id")));
    }
}
