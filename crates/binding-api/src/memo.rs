//! A small direct-mapped memo for values that many streams of one worker build alike: the
//! event id of a position, the bytes of an event, the chunk framing of a payload. Each
//! binding keeps its own, per worker ([`Worker::local`](crate::binding::Worker::local)), so
//! that lookups take no lock.
//!
//! A lookup hashes what the value is made of and looks at one slot; the caller's `matches`
//! decides whether the entry there is the same, so a collision costs a rebuild, never a
//! wrong value. An entry replaces whatever held its slot: the memo never holds more than
//! [`Slots::new`]'s count of entries.
//!
//! ```
//! use binding_api::memo::{Mix, Slots};
//!
//! let mut memo: Slots<(u64, String)> = Slots::new(64);
//! let key = 42u64;
//! let hash = Mix::default().word(key).finish();
//! let made = memo.read_or_build(hash, |(k, _)| *k == key, || (key, key.to_string()), |e| e.1.clone());
//! assert_eq!(made, "42");
//! ```

use bytes::Bytes;

/// Entries in slots chosen by hash.
#[derive(Debug)]
pub struct Slots<E> {
    count: usize,
    slots: Vec<Option<E>>,
}

impl<E> Slots<E> {
    /// A memo of `count` slots (at least one), allocated on first use.
    pub const fn new(count: usize) -> Self {
        Slots {
            count: if count == 0 { 1 } else { count },
            slots: Vec::new(),
        }
    }

    /// [`Slots::read_or_insert`] for an entry whose building cannot fail.
    pub fn read_or_build<V>(
        &mut self,
        hash: u64,
        matches: impl Fn(&E) -> bool,
        make: impl FnOnce() -> E,
        read: impl FnOnce(&E) -> V,
    ) -> V {
        match self.read_or_insert(
            hash,
            matches,
            || Ok::<_, std::convert::Infallible>(make()),
            read,
        ) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// `read` of the entry in `hash`'s slot when `matches` says it is the one wanted, else of
    /// the one `make` builds, which takes the slot (a failed build leaves the slot as it was).
    /// A hit moves nothing: the entry is read where it lies.
    pub fn read_or_insert<V, X>(
        &mut self,
        hash: u64,
        matches: impl Fn(&E) -> bool,
        make: impl FnOnce() -> Result<E, X>,
        read: impl FnOnce(&E) -> V,
    ) -> Result<V, X> {
        if self.slots.is_empty() {
            self.slots.resize_with(self.count, || None);
        }
        let slot = &mut self.slots[(hash % self.count as u64) as usize];
        if let Some(entry) = slot.as_ref()
            && matches(entry)
        {
            return Ok(read(entry));
        }
        let entry = make()?;
        Ok(read(slot.insert(entry)))
    }
}

/// Whether `given` is the very buffer an entry `held`: the same address and length. Sound
/// because the entry holds its own reference, so that memory cannot be freed and reused for
/// other bytes while the entry lives; [`Mix::buffer`] hashes the same identity.
pub fn same_buffer(held: &Bytes, given: &Bytes) -> bool {
    held.as_ptr() == given.as_ptr() && held.len() == given.len()
}

/// A fast, non-cryptographic hash (multiply and rotate): enough to spread memo keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mix(u64);

impl Mix {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    /// Adds a word.
    #[must_use]
    pub fn word(self, word: u64) -> Mix {
        Mix((self.0.rotate_left(23) ^ word).wrapping_mul(Self::K))
    }

    /// Adds the identity of a shared buffer (its address and length), not its bytes.
    #[must_use]
    pub fn buffer(self, bytes: &Bytes) -> Mix {
        self.word(bytes.as_ptr() as u64).word(bytes.len() as u64)
    }

    /// Adds bytes, or a mark for none.
    #[must_use]
    pub fn bytes(self, bytes: Option<&[u8]>) -> Mix {
        let Some(bytes) = bytes else {
            return self.word(u64::MAX);
        };
        let mut mix = self.word(bytes.len() as u64);
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            mix = mix.word(u64::from_le_bytes(word));
        }
        mix
    }

    /// The hash.
    pub fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collision_rebuilds_rather_than_answers_wrong() {
        let mut memo: Slots<u32> = Slots::new(1);
        assert_eq!(memo.read_or_build(1, |v| *v == 1, || 1, |v| *v), 1);
        // Same slot, another value: rebuilt.
        assert_eq!(memo.read_or_build(2, |v| *v == 2, || 2, |v| *v), 2);
        // The first is gone, the second is found without building.
        let mut built = false;
        let found = memo.read_or_build(
            2,
            |v| *v == 2,
            || {
                built = true;
                0
            },
            |v| *v,
        );
        assert_eq!(found, 2);
        assert!(!built);
    }

    #[test]
    fn a_failed_build_leaves_the_slot() {
        let mut memo: Slots<u32> = Slots::new(4);
        assert_eq!(
            memo.read_or_insert(0, |_| false, || Ok::<_, ()>(7), |v| *v),
            Ok(7)
        );
        assert_eq!(
            memo.read_or_insert(0, |_| false, || Err(()), |v| *v),
            Err(())
        );
        assert_eq!(
            memo.read_or_insert(0, |v| *v == 7, || Err(()), |v| *v),
            Ok(7)
        );
    }

    #[test]
    fn mixed_inputs_differ() {
        let a = Mix::default().bytes(Some(b"abc")).finish();
        let b = Mix::default().bytes(Some(b"abd")).finish();
        let none = Mix::default().bytes(None).finish();
        assert!(a != b && a != none && b != none);
    }
}
