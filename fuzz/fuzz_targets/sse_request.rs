//! Any request an http server could hand the sse binding (any path and query, any
//! `last-event-id` bytes) gets a subscription or a refusal, never a panic; an accepted last
//! event id is at most 254 bytes, the header's when one was sent, and the path has no query.
#![no_main]

use binding_api::ext::http::{Header, HttpBeginEx};
use binding_sse::request::{MAX_LAST_EVENT_ID, subscription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: which parts to send; the rest: the path, then (after a 0) the header value.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (path, header) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let mut headers = vec![
        Header::new(":method", if mode & 1 == 0 { "GET" } else { "POST" }),
        Header::new(":path", String::from_utf8_lossy(path).into_owned()),
    ];
    if let Some(value) = header.filter(|_| mode & 2 == 0) {
        headers.push(Header::new("last-event-id", value.to_vec()));
    }
    let request = HttpBeginEx::new(headers);
    if let Ok(sub) = subscription(&request) {
        assert!(!sub.path.contains('?'));
        if let Some(id) = &sub.last_event_id {
            assert!(id.len() <= MAX_LAST_EVENT_ID);
        }
        if let Some(value) = request.get_bytes("last-event-id") {
            assert_eq!(sub.last_event_id.as_deref().map(str::as_bytes), Some(value));
        }
    }
});
