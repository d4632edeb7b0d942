//! [`FastHasher`]: the hasher of our in-memory maps keyed by short strings, ids
//! or values that are already hashes (series ids, id hashes, stream keys).
//! Eight bytes of a string at a time, one multiply per word or integer; not for
//! keys an attacker picks to collide, and never persisted (its output may
//! change).

use std::hash::{BuildHasherDefault, Hasher};

/// One multiply-and-rotate per 8 bytes of a string and per `u64`/`u32`; the
/// result is folded so that its low bits (a hash table's bucket) depend on
/// every input bit.
#[derive(Debug, Clone, Copy)]
pub struct FastHasher(u64);

/// A `BuildHasher` of [`FastHasher`]s, for `HashMap<K, V, FastBuildHasher>`.
pub type FastBuildHasher = BuildHasherDefault<FastHasher>;

impl Default for FastHasher {
    fn default() -> Self {
        FastHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(w));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut w = [0u8; 8];
            w[..tail.len()].copy_from_slice(tail);
            // The length tells "a" from "a\0".
            self.write_u64(u64::from_le_bytes(w) ^ ((tail.len() as u64) << 61));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(29) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(v: T) -> u64 {
        FastBuildHasher::default().hash_one(v)
    }

    #[test]
    fn distinct_small_keys_hash_apart() {
        let ids: std::collections::HashSet<u64> = (0u64..10_000).map(hash).collect();
        assert_eq!(ids.len(), 10_000);
        assert_ne!(hash("trace_id"), hash("trace_ie"));
        assert_ne!(hash(b"a".as_slice()), hash(b"a\0".as_slice()));
        let names: std::collections::HashSet<u64> = (0..10_000)
            .map(|i| hash(format!("field_{i}")) & 0xffff)
            .collect();
        assert!(names.len() > 8_000, "{}", names.len());
        assert_ne!(hash((1u64, 2u32)), hash((2u64, 1u32)));
        // Bucket bits (the low ones) differ too.
        let low: std::collections::HashSet<u64> = (0u64..1024).map(|i| hash(i) & 0xfff).collect();
        assert!(low.len() > 900, "{}", low.len());
    }
}
