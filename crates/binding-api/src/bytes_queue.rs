//! Output waiting for a stream's credit, as a queue of byte slices.
//!
//! A binding that writes protocol framing around payloads it did not make (SSE fields around
//! a record, HTTP/1.1 chunk sizes around an event) writes the small framing into the queue's
//! tail buffer and appends the payload as the shared [`Bytes`] it received: no copy of the
//! payload, and the network side gets the pieces in order, to send with one vectored write.
//!
//! ```
//! use binding_api::bytes_queue::ByteQueue;
//! use bytes::{BufMut, Bytes};
//!
//! let mut out = ByteQueue::default();
//! out.tail().put_slice(b"5\r\n");
//! out.push(Bytes::from_static(b"hello"));
//! out.tail().put_slice(b"\r\n");
//! assert_eq!(out.len(), 10);
//! assert_eq!(out.take(usize::MAX).unwrap(), "5\r\n");
//! assert_eq!(out.take(3).unwrap(), "hel");
//! assert_eq!(out.take(usize::MAX).unwrap(), "lo");
//! assert_eq!(out.take(usize::MAX).unwrap(), "\r\n");
//! assert!(out.is_empty());
//! ```

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Slices to be written in order: shared payloads as they came, framing gathered in a tail.
#[derive(Debug, Default)]
pub struct ByteQueue {
    /// Everything before the tail, oldest first (rarely more than a few: the length is
    /// summed when asked rather than kept, which keeps the queue small inside every
    /// connection's state).
    parts: VecDeque<Bytes>,
    /// Small writes after the last part.
    tail: BytesMut,
}

impl ByteQueue {
    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum::<usize>() + self.tail.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer after everything queued, for framing and other small writes.
    pub fn tail(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Appends `bytes` as it is (no copy), after what the tail holds.
    pub fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.seal();
        if self.parts.capacity() == 0 {
            // Room for two (a head and a body, an event and its framing), not the four a
            // first push makes: a quiet stream keeps this buffer; a busy one grows it.
            self.parts.reserve_exact(2);
        }
        self.parts.push_back(bytes);
    }

    /// Takes the next slice, at most `max` bytes of it; `None` when empty or `max` is 0.
    pub fn take(&mut self, max: usize) -> Option<Bytes> {
        if max == 0 {
            return None;
        }
        let Some(front) = self.parts.front_mut() else {
            return (!self.tail.is_empty())
                .then(|| self.tail.split_to(max.min(self.tail.len())).freeze());
        };
        if front.len() <= max {
            self.parts.pop_front()
        } else {
            Some(front.split_to(max))
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.parts.clear();
        self.tail.clear();
    }

    /// Moves what the tail holds to the parts, keeping the tail's spare room.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            let sealed = self.tail.split().freeze();
            self.parts.push_back(sealed);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Tail(Vec<u8>),
        Push(Vec<u8>),
        Take(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Op::Tail),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Op::Push),
            (0usize..30).prop_map(Op::Take),
        ]
    }

    proptest! {
        /// Whatever the writes and takes, the bytes come out in the order they went in, never
        /// more than asked at a time, and `len` counts what is left.
        #[test]
        fn bytes_leave_in_order(ops in proptest::collection::vec(op(), 0..60)) {
            let mut queue = ByteQueue::default();
            let mut written = Vec::new();
            let mut taken = Vec::new();
            for op in ops {
                match op {
                    Op::Tail(bytes) => {
                        queue.tail().put_slice(&bytes);
                        written.extend_from_slice(&bytes);
                    }
                    Op::Push(bytes) => {
                        written.extend_from_slice(&bytes);
                        queue.push(Bytes::from(bytes));
                    }
                    Op::Take(max) => {
                        if let Some(slice) = queue.take(max) {
                            prop_assert!(!slice.is_empty() && slice.len() <= max);
                            taken.extend_from_slice(&slice);
                        }
                    }
                }
                prop_assert_eq!(queue.len(), written.len() - taken.len());
            }
            while let Some(slice) = queue.take(7) {
                taken.extend_from_slice(&slice);
            }
            prop_assert_eq!(taken, written);
            prop_assert!(queue.is_empty());
        }
    }

    #[test]
    fn a_pushed_payload_is_not_copied() {
        let payload = Bytes::from(vec![7u8; 100]);
        let mut queue = ByteQueue::default();
        queue.tail().put_slice(b"64\r\n");
        queue.push(payload.clone());
        queue.take(usize::MAX);
        let out = queue.take(usize::MAX).unwrap();
        assert_eq!(out.as_ptr(), payload.as_ptr());
    }
}
