//! The broadcaster: a global sequence, a bounded history for `Last-Event-ID` resumption, and one
//! bounded `tokio::sync::broadcast` channel per key plus one for the all-stream.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::broadcast;

/// One published event in the history, already framed as SSE (`id: <seq>\ndata: ...\n\n`).
#[derive(Clone, Debug)]
pub struct Event {
    /// The global sequence number, also the SSE `id`.
    pub seq: u64,
    /// The key the event was published to.
    pub key: Bytes,
    /// The whole SSE frame, shared by every subscriber.
    pub frame: Bytes,
}

/// Sizes of the hub's bounded buffers.
#[derive(Clone, Copy, Debug)]
pub struct HubLimits {
    /// Capacity of the all-stream's broadcast channel; a subscriber lagging more than this is
    /// disconnected.
    pub channel_capacity: usize,
    /// Capacity of each key's broadcast channel (allocated up front, so kept small: one channel
    /// per subscribed key).
    pub key_capacity: usize,
    /// How many recent events are kept for resumption with `Last-Event-ID`.
    pub history: usize,
}

struct Inner {
    next_seq: u64,
    history: VecDeque<Event>,
    keys: HashMap<Bytes, broadcast::Sender<Bytes>>,
    all: broadcast::Sender<Bytes>,
}

/// The shared broadcaster.
pub struct Hub {
    limits: HubLimits,
    inner: Mutex<Inner>,
}

/// What a new subscriber gets: the events it missed (from history) and its live feed.
pub struct Subscription {
    /// Frames from history newer than the requested `Last-Event-ID`, oldest first.
    pub backlog: Vec<Bytes>,
    /// Live events published after the backlog.
    pub live: Live,
}

/// A subscriber's live receiver. Dropping it removes the key's channel once its last subscriber
/// is gone, so subscriptions to arbitrary keys cannot grow the key map without bound.
pub struct Live {
    receiver: Option<broadcast::Receiver<Bytes>>,
    hub: Arc<Hub>,
    key: Option<Bytes>,
}

/// Why [`Live::recv`] returned no event.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// The subscriber fell more than the channel capacity behind.
    Lagged,
    /// The hub is gone.
    Gone,
}

impl Live {
    /// The next live event's frame.
    pub async fn recv(&mut self) -> Result<Bytes, Closed> {
        let receiver = self.receiver.as_mut().ok_or(Closed::Gone)?;
        receiver.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(_) => Closed::Lagged,
            broadcast::error::RecvError::Closed => Closed::Gone,
        })
    }

    /// The next live event's frame if one is already queued.
    pub fn try_recv(&mut self) -> Option<Result<Bytes, Closed>> {
        let receiver = self.receiver.as_mut()?;
        match receiver.try_recv() {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(Err(Closed::Lagged)),
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(Closed::Gone)),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        drop(self.receiver.take());
        if let Some(key) = self.key.take() {
            let mut inner = self.hub.lock();
            if inner
                .keys
                .get(&key)
                .is_some_and(|s| s.receiver_count() == 0)
            {
                inner.keys.remove(&key);
            }
        }
    }
}

impl Hub {
    /// A hub with the given limits (each at least 1).
    pub fn new(limits: HubLimits) -> Arc<Self> {
        let limits = HubLimits {
            channel_capacity: limits.channel_capacity.max(1),
            key_capacity: limits.key_capacity.max(1),
            history: limits.history.max(1),
        };
        let (all, _) = broadcast::channel(limits.channel_capacity);
        Arc::new(Self {
            limits,
            inner: Mutex::new(Inner {
                next_seq: 1,
                history: VecDeque::with_capacity(limits.history.min(65_536)),
                keys: HashMap::new(),
                all,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `data` to `key`: frames it once, keeps it in history and sends it to the key's
    /// subscribers and to the all-stream. Returns the event's sequence number.
    pub fn publish(&self, key: &[u8], data: &[u8]) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let event = Event {
            seq,
            key: Bytes::copy_from_slice(key),
            frame: frame(seq, data),
        };
        if inner.history.len() >= self.limits.history {
            inner.history.pop_front();
        }
        if let Some(sender) = inner.keys.get(key) {
            // An error only means no receiver right now.
            let _ = sender.send(event.frame.clone());
        }
        let _ = inner.all.send(event.frame.clone());
        inner.history.push_back(event);
        seq
    }

    /// Subscribes to `key` (or to every key with `None`), first replaying the history newer than
    /// `last_id` when one is given.
    pub fn subscribe(self: &Arc<Self>, key: Option<&[u8]>, last_id: Option<u64>) -> Subscription {
        let mut inner = self.lock();
        let receiver = match key {
            None => inner.all.subscribe(),
            Some(key) => {
                let capacity = self.limits.key_capacity;
                inner
                    .keys
                    .entry(Bytes::copy_from_slice(key))
                    .or_insert_with(|| broadcast::channel(capacity).0)
                    .subscribe()
            }
        };
        let backlog = match last_id {
            None => Vec::new(),
            Some(last) => inner
                .history
                .iter()
                .filter(|e| e.seq > last && key.is_none_or(|k| e.key == k))
                .map(|e| e.frame.clone())
                .collect(),
        };
        drop(inner);
        Subscription {
            backlog,
            live: Live {
                receiver: Some(receiver),
                hub: Arc::clone(self),
                key: key.map(Bytes::copy_from_slice),
            },
        }
    }
}

/// Frames one SSE event: `id: <seq>`, one `data:` line per line of `data`, a blank line.
pub fn frame(seq: u64, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 32);
    out.put_slice(b"id: ");
    out.put_slice(seq.to_string().as_bytes());
    out.put_slice(b"\n");
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_slice(b"\n");
    }
    out.put_slice(b"\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HubLimits {
        HubLimits {
            channel_capacity: 8,
            key_capacity: 8,
            history: 4,
        }
    }

    #[test]
    fn frames_multiline_data() {
        assert_eq!(&frame(7, b"a\nb")[..], b"id: 7\ndata: a\ndata: b\n\n");
    }

    #[tokio::test]
    async fn key_and_all_subscribers_get_their_events() {
        let hub = Hub::new(limits());
        let mut k1 = hub.subscribe(Some(b"k1"), None);
        let mut all = hub.subscribe(None, None);
        hub.publish(b"k0", b"x");
        hub.publish(b"k1", b"y");
        assert_eq!(k1.live.recv().await.unwrap(), frame(2, b"y"));
        assert_eq!(all.live.recv().await.unwrap(), frame(1, b"x"));
        assert_eq!(all.live.recv().await.unwrap(), frame(2, b"y"));
    }

    #[test]
    fn resumes_from_bounded_history() {
        let hub = Hub::new(limits());
        for i in 0..6u8 {
            hub.publish(if i % 2 == 0 { b"a" } else { b"b" }, &[b'0' + i]);
        }
        // history keeps seq 3..=6; key a has 3 and 5
        let sub = hub.subscribe(Some(b"a"), Some(3));
        assert_eq!(sub.backlog, vec![frame(5, b"4")]);
        let sub = hub.subscribe(None, Some(0));
        assert_eq!(sub.backlog.len(), 4);
    }

    #[test]
    fn last_subscriber_leaving_removes_the_key() {
        let hub = Hub::new(limits());
        let a = hub.subscribe(Some(b"a"), None);
        let b = hub.subscribe(Some(b"a"), None);
        drop(a);
        assert!(hub.lock().keys.contains_key(&b"a"[..]));
        drop(b);
        assert!(hub.lock().keys.is_empty());
    }
}
