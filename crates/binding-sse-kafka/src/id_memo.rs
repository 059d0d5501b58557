//! The ids built lately on a worker ([`Worker::local`], through [`Ids`]), so that the subscribers of a topic at the
//! same position share one id rather than each encoding the same progress again.
//!
//! An id is a function of the id format, the progress of every partition after the record,
//! the record's key (in the key format) and its `etag`: nothing else. The memo
//! ([`Slots`]) holds [`SLOTS`] entries looked up by a hash of those; an entry is used only
//! when all of them are equal, so a collision costs a rebuild, never a wrong id. Progress
//! over [`MAX_PARTITIONS`] partitions, and keys or etags over [`MAX_FIELD`] bytes, are built
//! every time rather than held.
//!
//! [`Worker::local`]: binding_api::binding::Worker::local
//! [`Ids`]: crate::ids::Ids

use std::cell::RefCell;
use std::sync::Arc;

use binding_api::ext::kafka::Progress;
use binding_api::memo::{Mix, Slots};
use bytes::Bytes;

use crate::config::IdFormat;

/// Entries per worker.
pub const SLOTS: usize = 4096;
/// The most partitions an id kept in the memo may cover.
pub const MAX_PARTITIONS: usize = 64;
/// The longest key or etag an id kept in the memo may hold, in bytes.
pub const MAX_FIELD: usize = 256;

/// What an id is made of.
pub struct IdInput<'a> {
    /// The format.
    pub format: IdFormat,
    /// The progress after the record.
    pub progress: &'a Arc<Progress>,
    /// The record's key (read in the key format only).
    pub key: Option<&'a Bytes>,
    /// The record's etag.
    pub etag: Option<&'a str>,
}

struct Entry {
    hash: u64,
    format: IdFormat,
    progress: Arc<Progress>,
    key: Option<Bytes>,
    etag: Option<Box<str>>,
    id: Option<Arc<str>>,
}

impl Entry {
    fn matches(&self, hash: u64, input: &IdInput<'_>) -> bool {
        self.hash == hash
            && self.format == input.format
            && (Arc::ptr_eq(&self.progress, input.progress) || self.progress == *input.progress)
            && self.key.as_ref() == key_of(input)
            && self.etag.as_deref() == input.etag
    }
}

/// The ids built lately on one worker.
pub struct IdMemo(RefCell<Slots<Entry>>);

impl Default for IdMemo {
    fn default() -> Self {
        IdMemo(RefCell::new(Slots::new(SLOTS)))
    }
}

impl IdMemo {
    /// The id for `input`: the one built before on this worker for an equal input, else
    /// `build()`'s, kept for the next subscriber at the same position.
    pub fn id(
        &self,
        input: &IdInput<'_>,
        build: impl FnOnce() -> Option<String>,
    ) -> Option<Arc<str>> {
        if input.progress.partitions.len() > MAX_PARTITIONS
            || key_of(input).is_some_and(|k| k.len() > MAX_FIELD)
            || input.etag.is_some_and(|e| e.len() > MAX_FIELD)
        {
            return build().map(Arc::from);
        }
        let hash = hash(input);
        self.0.borrow_mut().read_or_build(
            hash,
            |entry| entry.matches(hash, input),
            || Entry {
                hash,
                format: input.format,
                progress: Arc::clone(input.progress),
                key: key_of(input).cloned(),
                etag: input.etag.map(Box::from),
                id: build().map(Arc::from),
            },
            |entry| entry.id.clone(),
        )
    }
}

/// The key, when the format puts it in the id.
fn key_of<'a>(input: &IdInput<'a>) -> Option<&'a Bytes> {
    match input.format {
        IdFormat::Etag => None,
        IdFormat::KeyAndEtag => input.key,
    }
}

/// What identifies the id, hashed.
fn hash(input: &IdInput<'_>) -> u64 {
    let mut mix = Mix::default().word(input.format as u64);
    for &(partition, next) in &input.progress.partitions {
        mix = mix.word(u64::from(partition as u32)).word(next as u64);
    }
    mix.bytes(key_of(input).map(|k| &k[..]))
        .bytes(input.etag.map(str::as_bytes))
        .finish()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn build(input: &IdInput<'_>) -> Option<String> {
        Some(format!(
            "{:?}/{:?}/{:?}/{:?}",
            input.format,
            input.progress.partitions,
            key_of(input),
            input.etag
        ))
    }

    proptest! {
        /// Whatever was asked before, the memo answers what building would: same progress,
        /// key and etag share an id; any difference builds another.
        #[test]
        fn the_memo_answers_what_building_would(
            asks in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec((0i32..3, 0i64..3), 0..3),
                 proptest::option::of(0u8..3), proptest::option::of(0u8..2)),
                1..200,
            )
        ) {
            let memo = IdMemo::default();
            for (key_format, partitions, key, etag) in asks {
                let format = if key_format { IdFormat::KeyAndEtag } else { IdFormat::Etag };
                let progress = Arc::new(Progress { partitions });
                let key = key.map(|k| Bytes::from(vec![k]));
                let etag = etag.map(|e| e.to_string());
                let input = IdInput { format, progress: &progress, key: key.as_ref(), etag: etag.as_deref() };
                let expected = build(&input);
                let got = memo.id(&input, || build(&input));
                prop_assert_eq!(got.as_deref(), expected.as_deref());
            }
        }
    }

    #[test]
    fn subscribers_at_the_same_position_share_one_id() {
        let a = Arc::new(Progress {
            partitions: vec![(0, 41), (1, 7)],
        });
        let b = Arc::new((*a).clone());
        let input = |p| IdInput {
            format: IdFormat::Etag,
            progress: p,
            key: None,
            etag: Some("v1"),
        };
        let memo = IdMemo::default();
        let mut builds = 0;
        let first = memo.id(&input(&a), || {
            builds += 1;
            Some("x".into())
        });
        let second = memo.id(&input(&b), || {
            builds += 1;
            Some("y".into())
        });
        assert_eq!(builds, 1);
        assert!(Arc::ptr_eq(&first.unwrap(), &second.unwrap()));
    }
}
