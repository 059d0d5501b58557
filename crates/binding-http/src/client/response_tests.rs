use proptest::prelude::*;

use super::*;

/// Decodes `input` fed in pieces split at `cuts`, with `room` bytes of body room each time,
/// then a close; returns the status, the body and whether it ended.
fn decode_split(
    input: &[u8],
    cuts: &[usize],
    room: usize,
    head_request: bool,
) -> Result<(u16, Vec<u8>, bool), ResponseError> {
    let mut decoder = ResponseDecoder::new(head_request);
    let mut buf = BytesMut::new();
    let mut status = 0;
    let mut body = Vec::new();
    let mut ended = false;
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    let mut on = |event: ResponseEvent| match event {
        ResponseEvent::Head(head) => status = head.status().unwrap_or(0),
        ResponseEvent::Body(bytes) => {
            assert!(bytes.len() <= room);
            body.extend_from_slice(&bytes);
        }
        ResponseEvent::End => ended = true,
    };
    for point in points {
        buf.extend_from_slice(&input[at..point]);
        at = point;
        while let Some(event) = decoder.decode(&mut buf, room)? {
            on(event);
        }
    }
    if let Some(event) = decoder.eof()? {
        on(event);
    }
    Ok((status, body, ended))
}

fn decode(input: &[u8]) -> Result<(u16, Vec<u8>, bool), ResponseError> {
    decode_split(input, &[], usize::MAX, false)
}

#[test]
fn content_length_body() {
    let got = decode(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(got, (200, b"hello".to_vec(), true));
}

#[test]
fn chunked_body_with_trailers() {
    let got =
        decode(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nx-t: 1\r\n\r\n")
            .unwrap();
    assert_eq!(got, (200, b"hello!".to_vec(), true));
}

#[test]
fn a_body_until_close_ends_at_eof() {
    let got =
        decode(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: 1\n\n").unwrap();
    assert_eq!(got, (200, b"data: 1\n\n".to_vec(), true));
}

#[test]
fn interim_responses_are_skipped() {
    let got = decode(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").unwrap();
    assert_eq!(got, (204, vec![], true));
}

#[test]
fn head_and_304_have_no_body() {
    let got = decode_split(
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
        &[],
        64,
        true,
    )
    .unwrap();
    assert_eq!(got, (200, vec![], true));
    let got = decode(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n").unwrap();
    assert_eq!(got, (304, vec![], true));
}

#[test]
fn head_fields_are_lowercase_without_hop_by_hop() {
    let mut decoder = ResponseDecoder::new(false);
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"[..],
    );
    let Some(ResponseEvent::Head(head)) = decoder.decode(&mut buf, 0).unwrap() else {
        panic!("no head");
    };
    assert_eq!(head.status(), Some(404));
    assert_eq!(head.get("content-type"), Some("text/plain"));
    assert_eq!(head.get("connection"), None);
    assert_eq!(
        decoder.decode(&mut buf, 0).unwrap(),
        Some(ResponseEvent::End)
    );
    assert!(decoder.is_done());
}

#[test]
fn truncated_and_malformed_responses_are_errors() {
    assert_eq!(
        decode(b"HTTP/1.1 200 OK\r\n"),
        Err(ResponseError::Truncated("before the response head"))
    );
    assert_eq!(
        decode(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc"),
        Err(ResponseError::Truncated("inside the response body"))
    );
    assert!(matches!(
        decode(b"SSH-2.0-OpenSSH\r\n\r\n"),
        Err(ResponseError::Malformed(_))
    ));
    assert!(matches!(
        decode(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
        Err(ResponseError::Malformed(_))
    ));
    assert!(matches!(
        decode(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"),
        Err(ResponseError::UnsupportedCoding(_))
    ));
    assert!(matches!(
        decode(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        Err(ResponseError::Malformed(_))
    ));
    let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    assert!(matches!(decode(&huge), Err(ResponseError::HeadTooLarge(_))));
}

#[test]
fn no_body_is_given_without_room() {
    let mut decoder = ResponseDecoder::new(false);
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"[..]);
    assert!(matches!(
        decoder.decode(&mut buf, 0),
        Ok(Some(ResponseEvent::Head(_)))
    ));
    assert_eq!(decoder.decode(&mut buf, 0), Ok(None));
    assert_eq!(
        decoder.decode(&mut buf, 2),
        Ok(Some(ResponseEvent::Body(Bytes::from_static(b"ab"))))
    );
}

fn responses() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let body = proptest::collection::vec(any::<u8>(), 0..300);
    (body, 0..3u8).prop_map(|(body, framing)| {
        let mut wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-a: b\r\n".to_vec();
        match framing {
            0 => {
                wire.extend(format!("content-length: {}\r\n\r\n", body.len()).bytes());
                wire.extend(&body);
            }
            1 => {
                wire.extend(b"transfer-encoding: chunked\r\n\r\n");
                for piece in body.chunks(7) {
                    wire.extend(format!("{:x}\r\n", piece.len()).bytes());
                    wire.extend(piece);
                    wire.extend(b"\r\n");
                }
                wire.extend(b"0\r\n\r\n");
            }
            _ => {
                wire.extend(b"\r\n");
                wire.extend(&body);
            }
        }
        (wire, body)
    })
}

proptest! {
    /// However the bytes are split and however little room there is, the body comes out
    /// whole, in order, in pieces no larger than the room, and ends.
    #[test]
    fn any_split_gives_the_same_body(
        (wire, body) in responses(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        room in 1usize..64,
    ) {
        let got = decode_split(&wire, &cuts, room, false).unwrap();
        prop_assert_eq!(got, (200, body, true));
    }

    /// Any bytes give events or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let _ = decode_split(&input, &cuts, 17, false);
    }
}
