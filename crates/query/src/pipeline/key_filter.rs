//! [`KeyFilter`]: the set of flattened JSON keys a [`flatten_only`] caller
//! wants, looked up once for every key of every scanned line.
//!
//! The keys are few (tens) and known when the filter is built, the lookups
//! many (every key of every line, most of them unwanted), so the table is
//! built for the miss: a bitmask of the wanted key lengths rejects most keys
//! without reading them, and the rest are placed by their length and three of
//! their bytes (first, middle, last) in a small open-addressing table, then
//! compared once. No general-purpose hash runs over the key.
//!
//! [`flatten_only`]: super::json::flatten_only

/// What a [`KeyFilter`] knows of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    /// Position of the key among the wanted names, when it is one.
    pub wanted: Option<usize>,
    /// A wanted key lies below it (`request` for `request_id`).
    pub parent: bool,
}

/// The flattened keys a [`flatten_only`](super::json::flatten_only) caller
/// wants, and the keys of the objects they lie below.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    /// Keys and what is known of them.
    keys: Vec<(Box<str>, Interest)>,
    /// Open addressing: `index + 1` into `keys`, 0 for an empty slot.
    slots: Vec<u16>,
    /// `slots.len() - 1` (a power of two minus one).
    mask: usize,
    /// Bit `n` set when some key has `n` bytes (keys of 63 bytes or more share
    /// bit 63).
    lengths: u64,
}

impl Default for KeyFilter {
    fn default() -> Self {
        KeyFilter::new::<&str>(&[])
    }
}

impl KeyFilter {
    /// A filter for the flattened (sanitized) key names `names`; a name given
    /// twice keeps its first position.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let mut keys: Vec<(Box<str>, Interest)> = Vec::new();
        fn interest<'k>(keys: &'k mut Vec<(Box<str>, Interest)>, key: &str) -> &'k mut Interest {
            let i = match keys.iter().position(|(k, _)| &**k == key) {
                Some(i) => i,
                None => {
                    keys.push((key.into(), Interest::default()));
                    keys.len() - 1
                }
            };
            &mut keys[i].1
        }
        for (position, name) in names.iter().map(AsRef::as_ref).enumerate() {
            interest(&mut keys, name).wanted.get_or_insert(position);
            for (i, b) in name.bytes().enumerate() {
                if b == b'_' && i > 0 {
                    interest(&mut keys, &name[..i]).parent = true;
                }
            }
        }
        // Keys beyond u16 slots cannot be indexed; no caller comes near.
        keys.truncate(usize::from(u16::MAX) - 1);
        let size = (keys.len() * 4).next_power_of_two().max(8);
        let mask = size - 1;
        let mut slots = vec![0u16; size];
        let mut lengths = 0u64;
        for (i, (key, _)) in keys.iter().enumerate() {
            lengths |= length_bit(key.len());
            let mut slot = slot_of(place(key.as_bytes()), mask);
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            // `i + 1` fits: keys were truncated above.
            slots[slot] = (i + 1) as u16;
        }
        KeyFilter {
            keys,
            slots,
            mask,
            lengths,
        }
    }

    /// What is known of `key` (nothing for a key no wanted name involves).
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Interest {
        let bytes = key.as_bytes();
        if self.lengths & length_bit(bytes.len()) == 0 {
            return Interest::default();
        }
        let mut slot = slot_of(place(bytes), self.mask);
        loop {
            let Some(i) = usize::from(self.slots[slot]).checked_sub(1) else {
                return Interest::default();
            };
            let (k, interest) = &self.keys[i];
            if k.as_bytes() == bytes {
                return *interest;
            }
            slot = (slot + 1) & self.mask;
        }
    }
}

fn length_bit(len: usize) -> u64 {
    1u64 << len.min(63)
}

/// The slot where a key of hash `hash` starts probing.
#[inline]
fn slot_of(hash: u64, mask: usize) -> usize {
    (hash >> 40) as usize & mask
}

/// A key's hash: its length and first, middle and last bytes, mixed by one
/// multiply (slots are taken from the product's high bits).
#[inline]
fn place(key: &[u8]) -> u64 {
    let n = key.len();
    let (first, middle, last) = match n {
        0 => (0, 0, 0),
        _ => (key[0], key[n / 2], key[n - 1]),
    };
    let word =
        (n as u64) | u64::from(first) << 16 | u64::from(middle) << 24 | u64::from(last) << 32;
    word.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wanted_keys_report_their_first_position_and_parents_are_marked() {
        let f = KeyFilter::new(&["trace_id", "level", "trace_id", "request_id", "a_b_c"]);
        assert_eq!(f.get("trace_id").wanted, Some(0));
        assert_eq!(f.get("level").wanted, Some(1));
        assert_eq!(f.get("request_id").wanted, Some(3));
        assert_eq!(
            f.get("trace"),
            Interest {
                wanted: None,
                parent: true
            }
        );
        assert!(f.get("a").parent);
        assert!(f.get("a_b").parent);
        assert_eq!(f.get("a_b_c").wanted, Some(4));
        assert!(!f.get("a_b_c").parent);
        for miss in ["", "trace_ie", "Level", "levels", "msg", "_trace_id"] {
            assert_eq!(f.get(miss), Interest::default(), "{miss}");
        }
        assert_eq!(KeyFilter::default().get("x"), Interest::default());
    }

    #[test]
    fn a_wanted_name_that_is_also_a_parent_is_both() {
        let f = KeyFilter::new(&["request", "request_id"]);
        assert_eq!(
            f.get("request"),
            Interest {
                wanted: Some(0),
                parent: true
            }
        );
    }

    proptest! {
        /// The table answers exactly as a linear search over the names does,
        /// for names that collide on length and sampled bytes too.
        #[test]
        fn lookups_match_a_linear_search(
            names in proptest::collection::vec("[a-c_]{0,6}", 0..40),
            probes in proptest::collection::vec("[a-c_]{0,7}", 0..40),
        ) {
            let f = KeyFilter::new(&names);
            for probe in names.iter().chain(&probes) {
                let wanted = names.iter().position(|n| n == probe);
                let parent = names.iter().any(|n| {
                    n.len() > probe.len()
                        && n.starts_with(probe.as_str())
                        && n.as_bytes()[probe.len()] == b'_'
                        && !probe.is_empty()
                });
                prop_assert_eq!(f.get(probe), Interest { wanted, parent }, "{:?}", probe);
            }
        }
    }
}
