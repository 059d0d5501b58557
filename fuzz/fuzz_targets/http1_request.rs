//! Arbitrary bytes, cut into arbitrary pieces, fed to the HTTP/1.1 request decoder with
//! arbitrary body room. It must never panic, never hold more than the head limits allow
//! while waiting for a head, and must decode the same events however the bytes are split.
#![no_main]

use binding_http::h1::decode::{Event, HeadLimits, RequestDecoder};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

/// Decodes `input` fed in the pieces `cuts` gives, with body room `room`; returns the
/// events (body bytes merged per request) and the error status, if any.
fn decode(input: &[u8], cuts: &[u8], room: usize) -> (Vec<String>, Option<u16>) {
    let limits = HeadLimits {
        max_request_line: 256,
        max_header_list: 512,
        max_headers: 16,
    };
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut body = Vec::new();
    let mut at = 0;
    let mut pieces = cuts
        .iter()
        .map(|&c| usize::from(c) + 1)
        .chain(std::iter::repeat(input.len()));
    while at < input.len() {
        let n = pieces.next().unwrap_or(input.len()).min(input.len() - at);
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        loop {
            match decoder.decode(&mut buf, room) {
                Ok(Some(Event::Head(head))) => events.push(format!("{head:?}")),
                Ok(Some(Event::Body(bytes))) => {
                    assert!(!bytes.is_empty() && bytes.len() <= room);
                    body.extend_from_slice(&bytes);
                }
                Ok(Some(Event::End)) => events.push(format!("body {body:?}")),
                Ok(None) => break,
                Err(err) => return (events, Some(err.status())),
            }
            if matches!(events.last(), Some(e) if e.starts_with("body")) {
                body.clear();
            }
        }
        if decoder.wants_head() {
            // Waiting for a head never holds more than the limits allow.
            assert!(buf.len() <= limits.max_head() + 2, "{} buffered", buf.len());
        }
    }
    (events, None)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cut_len = usize::from(data[0] % 32).min(data.len() - 1);
    let room = usize::from(data[1]) + 1;
    let (cuts, input) = data[1..].split_at(cut_len);
    let whole = decode(input, &[], usize::MAX);
    let split = decode(input, cuts, room);
    assert_eq!(whole, split, "the split changed the result");
});
