//! The event ids records get: Zilla's formats, shared by subscribers at the same position,
//! kept within what a client can send back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use binding_api::ext::kafka::{KafkaHeader, Progress};
use bytes::Bytes;

use crate::config::IdFormat;
use crate::event_id::{self, Fitted, KeyField};
use crate::id_memo::{self, IdInput};

/// Encodes record metadata as SSE event ids.
pub struct Ids {
    /// Which of Zilla's formats.
    pub format: IdFormat,
}

impl Ids {
    /// The record's id, within [`MAX_EVENT_ID`](binding_api::ext::sse::MAX_EVENT_ID): what
    /// did not fit is left out and logged (at most once a minute).
    /// Subscribers at the same position share the id ([`id_memo`]).
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
        id_memo::id(&input, || {
            let key = match self.format {
                IdFormat::Etag => KeyField::Absent,
                IdFormat::KeyAndEtag => KeyField::Key(key.map(|k| &k[..])),
            };
            let fitted = event_id::fitted_id(&progress.partitions, key, etag);
            if fitted.id.is_none() || fitted.etag_dropped {
                warn_oversized(&fitted, progress.partitions.len(), etag.map_or(0, str::len));
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

/// When the last oversized-id warning was logged, in seconds since the Unix epoch.
static LAST_OVERSIZED_WARNING: AtomicU64 = AtomicU64::new(0);

/// Logs, at most once a minute for the whole process, that an id lost its etag or was left
/// out to stay within the limit every client can send back.
fn warn_oversized(fitted: &Fitted, partitions: usize, etag_len: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_OVERSIZED_WARNING.load(Ordering::Relaxed);
    if now < last.saturating_add(60)
        || LAST_OVERSIZED_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
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
