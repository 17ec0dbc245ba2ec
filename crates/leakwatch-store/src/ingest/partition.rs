//! A distributed ingest's partitions: every kind of index record split into
//! disjoint ranges of its sorted key, so that each job writes final segments
//! of its own and no record needs to meet another job's.
//!
//! What makes the split exact: whatever the ingest merges or counts together
//! shares the key that decides the partition. A record of an account (its
//! breach entry, its domain alias, its stealer-log pairs) goes by the
//! account's stored key, so duplicates of an account meet in one job and the
//! check against the breach's stored accounts is the local ingest's. A
//! password's triple goes by its digest (SHA-1 and NTLM apart, as each
//! corpus counts its own triples), so every triple of a digest is counted in
//! one job, and a digest's count is whole in one segment. Ranges of the
//! sorted key (not a hash modulo) keep each segment to one slice of the key
//! space: a lookup, or a `/range` prefix, reads one partition's blocks.

use serde::{Deserialize, Serialize};

/// Partition `index` of `count`: the keys whose first 32 bits, scaled to
/// `count`, fall on `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// Partition `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Partition> {
        (index < count).then_some(Partition { index, count })
    }

    /// Whether the record sorted under `key` (at least 4 bytes) is this
    /// partition's.
    #[inline]
    pub fn owns(&self, key: &[u8]) -> bool {
        let top = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        ((u64::from(top) * u64::from(self.count)) >> 32) as u32 == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key has exactly one partition, and each partition is one
    /// contiguous range of keys, in partition order.
    #[test]
    fn partitions_are_disjoint_contiguous_ranges() {
        for count in [1u32, 2, 3, 7, 64] {
            let parts: Vec<Partition> = (0..count).map(|i| Partition::new(i, count).unwrap()).collect();
            let mut last = 0u32;
            for top in (0..=u32::MAX).step_by(65_521).chain([u32::MAX]) {
                let key = top.to_be_bytes();
                let owners: Vec<u32> = parts.iter().filter(|p| p.owns(&key)).map(|p| p.index).collect();
                assert_eq!(owners.len(), 1, "{count} partitions, key {top:#x}: {owners:?}");
                assert!(owners[0] >= last, "ranges in order");
                last = owners[0];
            }
            assert_eq!(last, count - 1, "the last partition ends the key space");
        }
        assert!(Partition::new(2, 2).is_none());
    }
}
