//! Where each key's records sit in a segment, so that a reader filtering by key catches up
//! from history without looking at the records of other keys: sans-IO, no clock.
//!
//! A segment keeps, per hash of a record key, the positions of its records with that key in
//! append order. A reader whose every filter requires a key ([`key_hashes`]) asks for the
//! first position at or after its own that carries one of its keys' hashes and reads only
//! that record (its filters are still checked in full: hashes may collide). The index lives
//! and dies with its segment: bounded by the log, evicted with it, rebuilt when compaction
//! removes records from the segment.

use std::collections::HashMap;

use binding_api::ext::kafka::{Condition, Filter};
use binding_api::memo::Mix;

/// The hash a key is indexed under.
pub fn key_hash(key: &[u8]) -> u64 {
    Mix::default().bytes(Some(key)).finish()
}

/// The hashes of the keys `filters` require, one per filter, or `None` when a filter has no
/// key condition (it can match records of any key, so every record must be read).
pub fn key_hashes(filters: &[Filter]) -> Option<Vec<u64>> {
    if filters.is_empty() {
        return None;
    }
    filters
        .iter()
        .map(|filter| {
            filter.conditions.iter().find_map(|c| match c {
                Condition::Key(key) => Some(key_hash(key)),
                Condition::Header { .. } => None,
            })
        })
        .collect()
}

/// The positions of one segment's records by key hash.
#[derive(Debug, Default)]
pub struct SegmentKeys {
    positions: HashMap<u64, Vec<u32>>,
}

impl SegmentKeys {
    /// Notes that the record at `position` (the segment's next) has `key`.
    pub fn add(&mut self, key: Option<&[u8]>, position: usize) {
        if let (Some(key), Ok(position)) = (key, u32::try_from(position)) {
            self.positions
                .entry(key_hash(key))
                .or_default()
                .push(position);
        }
    }

    /// Indexes anew the keys of a segment's records, in order.
    pub fn rebuild<'a>(&mut self, keys: impl Iterator<Item = Option<&'a [u8]>>) {
        self.positions.clear();
        for (position, key) in keys.enumerate() {
            self.add(key, position);
        }
    }

    /// The first position at or after `from` whose key has one of `hashes`.
    pub fn first_from(&self, hashes: &[u64], from: usize) -> Option<usize> {
        hashes
            .iter()
            .filter_map(|hash| {
                let positions = self.positions.get(hash)?;
                let i = positions.partition_point(|&p| (p as usize) < from);
                positions.get(i).map(|&p| p as usize)
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn positions_of_the_keys_asked_for_only() {
        let mut keys = SegmentKeys::default();
        let records: [Option<&[u8]>; 6] = [
            Some(b"a"),
            Some(b"b"),
            None,
            Some(b"a"),
            Some(b"c"),
            Some(b"b"),
        ];
        keys.rebuild(records.into_iter());
        let a = [key_hash(b"a")];
        let bc = [key_hash(b"b"), key_hash(b"c")];
        assert_eq!(keys.first_from(&a, 0), Some(0));
        assert_eq!(keys.first_from(&a, 1), Some(3));
        assert_eq!(keys.first_from(&a, 4), None);
        assert_eq!(keys.first_from(&bc, 2), Some(4));
        assert_eq!(keys.first_from(&[key_hash(b"z")], 0), None);
    }

    #[test]
    fn a_filter_without_a_key_needs_every_record() {
        let key = |k: &'static [u8]| Filter {
            conditions: vec![Condition::Key(Bytes::from_static(k))],
        };
        let header = Filter {
            conditions: vec![Condition::Header {
                name: Bytes::from_static(b"h"),
                value: Bytes::from_static(b"v"),
            }],
        };
        assert_eq!(
            key_hashes(&[key(b"a"), key(b"b")]).map(|h| h.len()),
            Some(2)
        );
        assert_eq!(key_hashes(&[key(b"a"), header]), None);
        assert_eq!(key_hashes(&[]), None);
    }
}
