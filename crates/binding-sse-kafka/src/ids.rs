//! The event ids records get: Zilla's formats, shared by subscribers at the same position,
//! kept within what a client can send back.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use binding_api::ext::kafka::{KafkaHeader, Progress};
use bytes::Bytes;

use crate::config::IdFormat;
use crate::event_id::{self, Fitted, KeyField};
use crate::id_memo::{IdInput, IdMemo};

/// Encodes record metadata as SSE event ids.
pub struct Ids {
    format: IdFormat,
    shared: Rc<WorkerIds>,
}

/// What the subscriptions of one worker share ([`Worker::local`]): the ids built lately and
/// when an oversized id was last logged.
///
/// [`Worker::local`]: binding_api::binding::Worker::local
#[derive(Default)]
pub struct WorkerIds {
    memo: IdMemo,
    /// When the last oversized-id warning was logged, in seconds since the Unix epoch.
    last_oversized_warning: Cell<u64>,
}

impl Ids {
    /// Ids in `format`, sharing what was built with the other subscriptions of the worker
    /// whose `shared` this is.
    pub fn new(format: IdFormat, shared: Rc<WorkerIds>) -> Self {
        Ids { format, shared }
    }

    /// The record's id, within [`MAX_EVENT_ID`](binding_api::ext::sse::MAX_EVENT_ID): what
    /// did not fit is left out and logged (at most once a minute per worker).
    /// Subscribers at the same position share the id ([`id_memo`](crate::id_memo)).
    pub fn record_id(
        &self,
        progress: &Arc<Progress>,
        key: Option<&Bytes>,
        etag: Option<&str>,
    ) -> Option<Arc<str>> {
        let input = IdInput {
            format: self.format,
            progress,
            key,
            etag,
        };
        self.shared.memo.id(&input, || {
            let key = match self.format {
                IdFormat::Etag => KeyField::Absent,
                IdFormat::KeyAndEtag => KeyField::Key(key.map(|k| &k[..])),
            };
            let fitted = event_id::fitted_id(&progress.partitions, key, etag);
            if fitted.id.is_none() || fitted.etag_dropped {
                let last = &self.shared.last_oversized_warning;
                let (partitions, etag_len) = (progress.partitions.len(), etag.map_or(0, str::len));
                warn_oversized(last, &fitted, partitions, etag_len);
            }
            fitted.id
        })
    }

    /// An id-only checkpoint: only in the etag format, where it reads like any other id.
    pub fn checkpoint(&self, progress: &Progress) -> Option<String> {
        match self.format {
            IdFormat::Etag => event_id::fitted_id(&progress.partitions, KeyField::Absent, None).id,
            IdFormat::KeyAndEtag => None,
        }
    }
}

/// Logs, at most once a minute per worker (`last`: when it last did), that an id lost its
/// etag or was left out to stay within the limit every client can send back.
fn warn_oversized(last: &Cell<u64>, fitted: &Fitted, partitions: usize, etag_len: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now < last.get().saturating_add(60) {
        return;
    }
    last.set(now);
    if fitted.id.is_none() {
        tracing::warn!(
            partitions,
            limit = binding_api::ext::sse::MAX_EVENT_ID,
            "an event id cannot hold the progress of this many partitions: events go without an id (clients resume from the last id they had); further cases are not logged for a minute"
        );
    } else {
        tracing::warn!(
            etag_bytes = etag_len,
            partitions,
            limit = binding_api::ext::sse::MAX_EVENT_ID,
            "an etag too long for the event id was left out of it (the id still resumes exactly); further cases are not logged for a minute"
        );
    }
}

/// The `etag` header's value, when it can be part of an id.
pub fn etag(headers: &[KafkaHeader]) -> Option<&str> {
    let value = headers
        .iter()
        .find(|h| &h.name[..] == b"etag")?
        .value
        .as_ref()?;
    std::str::from_utf8(value)
        .ok()
        .filter(|v| !v.contains(['\r', '\n', '\0']))
}
