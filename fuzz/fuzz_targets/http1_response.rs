//! Arbitrary bytes, cut into arbitrary pieces, fed to the http client's HTTP/1.1 response
//! decoder with arbitrary body room, then a close. It must never panic, never give more
//! body than the room, never wait on more than a head's worth of bytes, and must decode the
//! same response however the bytes are split.
#![no_main]

use binding_http::client::response::{MAX_HEAD, ResponseDecoder, ResponseEvent};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

/// Decodes `input` fed in the pieces `cuts` gives, with body room `room`, then a close;
/// returns the head, the body and how it ended.
fn decode(
    input: &[u8],
    cuts: &[u8],
    room: usize,
    head_request: bool,
) -> (Vec<String>, Vec<u8>, String) {
    let mut decoder = ResponseDecoder::new(head_request);
    let mut buf = BytesMut::new();
    let mut heads = Vec::new();
    let mut body = Vec::new();
    let mut at = 0;
    let mut pieces = cuts
        .iter()
        .map(|&c| usize::from(c) + 1)
        .chain(std::iter::repeat(input.len()));
    let on = |event: ResponseEvent, heads: &mut Vec<String>, body: &mut Vec<u8>| match event {
        ResponseEvent::Head(head) => heads.push(format!("{head:?}")),
        ResponseEvent::Body(bytes) => {
            assert!(!bytes.is_empty() && bytes.len() <= room);
            body.extend_from_slice(&bytes);
        }
        ResponseEvent::End => heads.push("end".into()),
    };
    while at < input.len() {
        let n = pieces.next().unwrap_or(input.len()).min(input.len() - at);
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        loop {
            match decoder.decode(&mut buf, room) {
                Ok(Some(event)) => on(event, &mut heads, &mut body),
                Ok(None) => break,
                Err(err) => return (heads, body, err.to_string()),
            }
        }
        if !decoder.has_head() {
            assert!(buf.len() <= MAX_HEAD + n, "{} buffered", buf.len());
        }
    }
    // Whatever the room held back is taken now, as the client does at a close.
    loop {
        match decoder.decode(&mut buf, usize::MAX) {
            Ok(Some(event)) => on(event, &mut heads, &mut body),
            Ok(None) => break,
            Err(err) => return (heads, body, err.to_string()),
        }
    }
    let closed = match decoder.eof() {
        Ok(Some(event)) => {
            on(event, &mut heads, &mut body);
            "closed".to_owned()
        }
        Ok(None) => "done".to_owned(),
        Err(err) => err.to_string(),
    };
    (heads, body, closed)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cut_len = usize::from(data[0] % 32).min(data.len() - 1);
    let room = usize::from(data[1]) + 1;
    let head_request = data[0] & 0x80 != 0;
    let (cuts, input) = data[1..].split_at(cut_len);
    let whole = decode(input, &[], usize::MAX, head_request);
    let split = decode(input, cuts, room, head_request);
    assert_eq!(whole, split, "the split changed the result");
});
