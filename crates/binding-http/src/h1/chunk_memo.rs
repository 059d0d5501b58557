//! Chunks framed once per worker ([`Worker::local`]) and shared by every connection that sends the
//! same payload: an sse server fanning one event out to many subscribers hands each the same
//! shared bytes, so `{size}\r\n{event}\r\n` is built for the first connection and the others
//! send it as it is, with no copy and no allocation of their own.
//!
//! An entry holds the payload it was built from, so that the payload's memory cannot be
//! reused while the entry lives: the same address and length then mean the same bytes.
//! Payloads over [`MAX_SHARED`] bytes are not framed here: their chunk goes out as three
//! slices (size, the payload itself, CRLF). The memo holds at most [`SLOTS`] entries of
//! twice that size per worker.
//!
//! [`Worker::local`]: binding_api::binding::Worker::local

use std::cell::RefCell;

use binding_api::memo::{Mix, Slots, same_buffer};
use bytes::{BufMut, Bytes, BytesMut};

/// Entries per worker.
pub const SLOTS: usize = 1024;
/// The largest payload whose chunk is framed once and shared, in bytes.
pub const MAX_SHARED: usize = 4 * 1024;

struct Entry {
    payload: Bytes,
    chunk: Bytes,
}

/// The chunks framed on one worker: each connection takes the worker's
/// ([`Worker::local`](binding_api::binding::Worker::local)).
pub struct ChunkMemo(RefCell<Slots<Entry>>);

impl Default for ChunkMemo {
    fn default() -> Self {
        ChunkMemo(RefCell::new(Slots::new(SLOTS)))
    }
}

impl ChunkMemo {
    /// The whole chunk of `payload` (at most [`MAX_SHARED`] bytes): built before on this
    /// worker for the same payload, else built now and kept.
    pub fn chunk(&self, payload: &Bytes) -> Bytes {
        let hash = Mix::default().buffer(payload).finish();
        self.0.borrow_mut().read_or_build(
            hash,
            |entry| same_buffer(&entry.payload, payload),
            || {
                let overhead = super::encode::CHUNK_OVERHEAD as usize;
                let mut chunk = BytesMut::with_capacity(payload.len() + overhead);
                super::encode::chunk_size(payload.len(), &mut chunk);
                chunk.put_slice(payload);
                chunk.put_slice(b"\r\n");
                Entry {
                    payload: payload.clone(),
                    chunk: chunk.freeze(),
                }
            },
            |entry| entry.chunk.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_payload_one_chunk_shared() {
        let payload = Bytes::from(vec![b'e'; 26]);
        let memo = ChunkMemo::default();
        let first = memo.chunk(&payload);
        let second = memo.chunk(&payload.clone());
        assert_eq!(&first[..], [&b"1a\r\n"[..], &payload[..], b"\r\n"].concat());
        assert_eq!(first.as_ptr(), second.as_ptr());
        // Another payload with the same bytes elsewhere in memory is framed on its own.
        let other = Bytes::from(payload.to_vec());
        assert_eq!(memo.chunk(&other), first);
    }
}
