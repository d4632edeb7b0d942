//! [`FastHasher`]: the hasher of our in-memory maps keyed by short strings, ids
//! or values that are already hashes (series ids, id hashes, stream keys).
//! FNV-1a per byte for strings, one multiply per integer; not for keys an
//! attacker picks to collide, and never persisted (its output may change).

use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a for bytes, one multiply-and-rotate per `u64`/`u32`.
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
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
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
        assert_ne!(hash((1u64, 2u32)), hash((2u64, 1u32)));
        // Bucket bits (the low ones) differ too.
        let low: std::collections::HashSet<u64> = (0u64..1024).map(|i| hash(i) & 0xfff).collect();
        assert!(low.len() > 900, "{}", low.len());
    }
}
