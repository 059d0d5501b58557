//! SSE vocabulary: what an sse server tells the application behind it, and how the
//! application describes the events it sends.
//!
//! - The sse server opens its application stream with [`SseBeginEx`]: the request's scheme,
//!   authority and path (query string stripped), the last event id the client resumes from,
//!   whether it asked for timestamps, and what the http server's guard made of its
//!   credentials.
//! - The application answers with a reply begin, then one **event** per run of data frames.
//!   A data frame with no extension, or with [`SseDataEx`] whose `continues` is `false`, ends
//!   the event it is part of; `continues: true` says more data frames of the same event follow.
//!   The id, type and timestamp are read from the **first** frame of an event (later frames'
//!   values are ignored), so a large event can be sent in pieces that the server encodes and
//!   writes as they come, never holding the whole event.
//! - A flush with [`SseFlushEx`] carrying an id writes an id-only block (`id:…` and a blank
//!   line): the client's resume point moves without an event being fired, a cheap checkpoint
//!   past filtered-out records.
//! - An end with [`SseEndEx`] carrying an id writes that id as a last id-only block before the
//!   response ends, so the client resumes after it.

use std::sync::Arc;

use crate::guard::Authorization;

/// The longest event id, in bytes, that an sse server accepts back as a last event id, and so
/// the longest an application may give an event (a longer one could never be resumed from).
///
/// Zilla accepts 254 bytes, which a Kafka topic of about 50 partitions, or a long `etag`,
/// exceeds. 4 KiB stays within what sits between a browser and us: nginx and Apache refuse a
/// single header line over 8 KiB (`large_client_header_buffers`, `LimitRequestFieldSize`),
/// HAProxy a whole head over 16 KiB, and our own http server a head over 8 KiB by default
/// (`options.limits`), which leaves room for cookies and the rest. Browsers set no limit of
/// their own on `Last-Event-ID` short of their total header size.
pub const MAX_EVENT_ID: usize = 4096;

/// Begin extension of the stream an sse server opens towards its application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseBeginEx {
    /// `http` or `https`.
    pub scheme: String,
    /// The request's `:authority`.
    pub authority: String,
    /// The request's path without its query string.
    pub path: String,
    /// The request's query string without the `?`, as sent (not decoded); `None` when the
    /// path has none. Applications read their own parameters from it.
    pub query: Option<String>,
    /// The id the client resumes after: the `last-event-id` header, else the `lastEventId`
    /// query parameter (URL-decoded); `Some("")` when given empty, `None` when absent.
    pub last_event_id: Option<String>,
    /// Whether the client asked for timestamps (`accept: text/event-stream;ext=timestamp`).
    pub timestamp: bool,
    /// The request's credentials, as the http server's guard found them.
    pub authorization: Authorization,
}

/// Data extension of an event sent by the application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseDataEx {
    /// The event's `id`; must not contain CR, LF or NUL (such an event is dropped). Shared,
    /// so that an application sending one event to many subscribers builds its id once.
    pub id: Option<Arc<str>>,
    /// The event's type (`event:`); must not contain CR or LF (such an event is dropped).
    pub event_type: Option<String>,
    /// Milliseconds since the epoch, written as `timestamp:0x…` when the client asked.
    pub timestamp: Option<u64>,
    /// More data frames of this event follow; the event ends with a frame that says `false`.
    pub continues: bool,
}

/// Flush extension of the application's reply: an id-only checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseFlushEx {
    /// When given, written as an id-only block before the flush.
    pub id: Option<String>,
}

/// End extension of the application's reply: a last id before the response ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEndEx {
    /// When given, written as an id-only block before the response ends.
    pub id: Option<String>,
}
