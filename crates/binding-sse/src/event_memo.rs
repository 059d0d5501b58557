//! Whole events encoded once per worker ([`Worker::local`]) and shared by every subscription sent the
//! same one: an application fanning a record out to many subscribers sends each the same
//! payload (the same shared [`Bytes`]) and, at the same position, the same id, so the bytes
//! of the event are built for the first and handed to the others as they are.
//!
//! The memo ([`Slots`]) holds [`SLOTS`] entries. An entry holds the payload it was
//! built from, so that the payload's memory cannot be reused while the entry lives: the same
//! address and length then mean the same bytes. An entry is used only when the payload, id,
//! type and (when written) timestamp are all the same, so a collision costs an encoding, never
//! a wrong event. Payloads over [`MAX_SHARED`] bytes are encoded per subscription, in pieces,
//! as before: the memo holds at most `SLOTS` × (2 × `MAX_SHARED` + fields) bytes per worker.
//!
//! [`Worker::local`]: binding_api::binding::Worker::local

use std::cell::RefCell;
use std::sync::Arc;

use binding_api::memo::{Mix, Slots, same_buffer};
use bytes::{Bytes, BytesMut};

use crate::encoder::{Encoder, Head, Refused};

/// Entries per worker.
pub const SLOTS: usize = 1024;
/// The largest payload whose event is shared, in bytes.
pub const MAX_SHARED: usize = 4 * 1024;

/// An event to encode whole.
pub struct Event<'a> {
    /// Its fields.
    pub head: Head<'a>,
    /// The shared id the head's id came from, when there is one (compared by address first).
    pub shared_id: Option<&'a Arc<str>>,
    /// All of its data.
    pub payload: &'a Bytes,
    /// Whether `timestamp:` lines are written.
    pub timestamps: bool,
}

struct Entry {
    hash: u64,
    payload: Bytes,
    id: Option<Arc<str>>,
    event_type: Option<Box<str>>,
    timestamp: Option<u64>,
    timestamps: bool,
    encoded: Bytes,
}

impl Entry {
    fn matches(&self, hash: u64, event: &Event<'_>) -> bool {
        self.hash == hash
            && same_buffer(&self.payload, event.payload)
            && self.timestamps == event.timestamps
            && self.timestamp == timestamp_of(event)
            && self.event_type.as_deref() == event.head.event_type
            && match (&self.id, event.shared_id) {
                (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
                (id, _) => id.as_deref() == event.head.id,
            }
    }
}

/// The events encoded on one worker: each subscription takes the worker's
/// ([`Worker::local`](binding_api::binding::Worker::local)).
pub struct EventMemo(RefCell<Slots<Entry>>);

impl Default for EventMemo {
    fn default() -> Self {
        EventMemo(RefCell::new(Slots::new(SLOTS)))
    }
}

/// Whether `event` may be looked up and kept (its payload is small enough).
pub fn shareable(payload: &Bytes) -> bool {
    payload.len() <= MAX_SHARED
}

impl EventMemo {
    /// The bytes of `event`: those built before on this worker for the same event, else
    /// built now and kept. Refuses what [`Encoder::start_event`] refuses.
    pub fn encoded(&self, event: &Event<'_>) -> Result<Bytes, Refused> {
        let hash = hash(event);
        self.0.borrow_mut().read_or_insert(
            hash,
            |entry| entry.matches(hash, event),
            || {
                Ok(Entry {
                    hash,
                    payload: event.payload.clone(),
                    id: match event.shared_id {
                        Some(id) => Some(Arc::clone(id)),
                        None => event.head.id.map(Arc::from),
                    },
                    event_type: event.head.event_type.map(Box::from),
                    timestamp: timestamp_of(event),
                    timestamps: event.timestamps,
                    encoded: encode(event)?,
                })
            },
            |entry| entry.encoded.clone(),
        )
    }
}

/// The event's bytes, as a subscription's own encoder writes them.
fn encode(event: &Event<'_>) -> Result<Bytes, Refused> {
    let mut encoder = Encoder::new(event.timestamps);
    let fields = event.head.id.map_or(0, str::len) + event.head.event_type.map_or(0, str::len);
    let mut out = BytesMut::with_capacity(event.payload.len() + fields + 48);
    encoder.event(event.head, event.payload, &mut out)?;
    Ok(out.freeze())
}

/// The timestamp, when it is written.
fn timestamp_of(event: &Event<'_>) -> Option<u64> {
    event.timestamps.then_some(event.head.timestamp).flatten()
}

/// What identifies the event, hashed.
fn hash(event: &Event<'_>) -> u64 {
    Mix::default()
        .buffer(event.payload)
        .word(timestamp_of(event).unwrap_or(u64::MAX))
        .bytes(event.head.id.map(str::as_bytes))
        .bytes(event.head.event_type.map(str::as_bytes))
        .finish()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever was encoded before on this worker, the memo gives the bytes a fresh encoder
        /// writes for the event, and refuses what it refuses.
        #[test]
        fn the_memo_gives_what_encoding_gives(
            events in proptest::collection::vec(
                (0usize..4, proptest::option::of("[a-c\r]{0,3}"), proptest::option::of("[xy\n]{0,2}"),
                 proptest::option::of(0u64..3), any::<bool>()),
                1..200,
            ),
        ) {
            let memo = EventMemo::default();
            let payloads: Vec<Bytes> = ["", "a", "a\r\nb", " lead"]
                .iter()
                .map(|p| Bytes::from(p.to_string()))
                .collect();
            for (payload, id, event_type, timestamp, timestamps) in events {
                let payload = &payloads[payload];
                let head = Head {
                    id: id.as_deref(),
                    event_type: event_type.as_deref(),
                    timestamp,
                };
                let event = Event { head, shared_id: None, payload, timestamps };
                prop_assert_eq!(memo.encoded(&event), encode(&event));
            }
        }
    }

    #[test]
    fn the_same_event_is_built_once() {
        let payload = Bytes::from_static(b"{\"price\":1}");
        let id: Arc<str> = Arc::from("AQIAAg==");
        let event = || Event {
            head: Head {
                id: Some(&id),
                event_type: None,
                timestamp: None,
            },
            shared_id: Some(&id),
            payload: &payload,
            timestamps: false,
        };
        let memo = EventMemo::default();
        let first = memo.encoded(&event()).unwrap();
        let second = memo.encoded(&event()).unwrap();
        assert_eq!(&first[..], b"id:AQIAAg==\ndata:{\"price\":1}\n\n");
        assert_eq!(first.as_ptr(), second.as_ptr());
    }
}
