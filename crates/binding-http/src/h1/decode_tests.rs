use super::*;
use proptest::prelude::*;

/// Everything the decoder makes of `input` fed in the pieces `splits` cut it into: each
/// head, body bytes merged per request, ends, and the error if any.
fn run(input: &[u8], splits: &[usize]) -> Vec<String> {
    let mut decoder = RequestDecoder::new(HeadLimits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut body = Vec::new();
    let mut cuts: Vec<usize> = splits.iter().map(|s| s % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut at = 0;
    for cut in cuts {
        buf.extend_from_slice(&input[at..cut]);
        at = cut;
        loop {
            match decoder.decode(&mut buf, 7) {
                Ok(Some(Event::Head(head))) => out.push(format!("{head:?}")),
                Ok(Some(Event::Body(bytes))) => body.extend_from_slice(&bytes),
                Ok(Some(Event::End)) => {
                    out.push(format!("body {:?}", String::from_utf8_lossy(&body)));
                    body.clear();
                    out.push("end".into());
                }
                Ok(None) => break,
                Err(err) => {
                    out.push(format!("error {err}"));
                    return out;
                }
            }
        }
    }
    out
}

fn heads(input: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let mut decoder = RequestDecoder::new(HeadLimits::default());
    let mut buf = BytesMut::from(input);
    let mut events = Vec::new();
    while let Some(event) = decoder.decode(&mut buf, usize::MAX)? {
        events.push(event);
    }
    Ok(events)
}

fn head_of(event: &Event) -> &RequestHead {
    match event {
        Event::Head(head) => head,
        other => panic!("expected a head, got {other:?}"),
    }
}

#[test]
fn get_with_pseudo_headers() {
    let events = heads(b"GET /events?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: text/event-stream\r\nConnection: keep-alive\r\n\r\n").unwrap();
    assert_eq!(events.len(), 2);
    let head = head_of(&events[0]);
    assert_eq!(head.method, "GET");
    assert_eq!(head.path, "/events?x=1");
    assert_eq!(head.authority, "example.com");
    assert_eq!(head.header("accept"), Some("text/event-stream"));
    assert!(head.header("connection").is_none(), "hop-by-hop removed");
    assert!(head.keep_alive);
    assert_eq!(events[1], Event::End);
}

#[test]
fn pipelined_with_bodies() {
    let input = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\nGET /c HTTP/1.0\r\n\r\n";
    let out = run(input, &[]);
    assert!(out[0].contains("\"/a\""));
    assert_eq!(out[1], "body \"hello\"");
    assert!(out[3].contains("\"/b\""));
    assert_eq!(out[4], "body \"abcde\"");
    assert!(out[6].contains("\"/c\"") && out[6].contains("keep_alive: false"));
}

#[test]
fn limits_give_their_status() {
    let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
    assert_eq!(heads(long_line.as_bytes()).unwrap_err().status(), 414);
    let long_line_partial = format!("GET /{}", "a".repeat(9000));
    assert_eq!(
        heads(long_line_partial.as_bytes()).unwrap_err().status(),
        414
    );
    let big = format!("GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n", "b".repeat(9000));
    assert_eq!(heads(big.as_bytes()).unwrap_err().status(), 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
    for i in 0..120 {
        many.push_str(&format!("X-{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(heads(many.as_bytes()).unwrap_err().status(), 431);
}

#[test]
fn malformed_requests_are_400() {
    for bad in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
    ] {
        let err = heads(bad).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(err.status(), 400, "{}", String::from_utf8_lossy(bad));
    }
    assert_eq!(
        heads(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n")
            .unwrap_err()
            .status(),
        501
    );
}

#[test]
fn upgrade_and_continue_are_noticed() {
    let events = heads(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n").unwrap();
    assert_eq!(
        head_of(&events[0]).h2c_settings,
        Some(Ok(Bytes::from_static(&[
            0, 3, 0, 0, 0, 100, 0, 4, 0, 160, 0, 0, 0, 2, 0, 0, 0, 0
        ])))
    );
    let events =
        heads(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap();
    assert!(head_of(&events[0]).expect_continue);
}

#[test]
fn h2c_settings_must_be_one_base64url_value_of_whole_settings() {
    let settings = |fields: &str| {
        let request = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n{fields}\r\n"
        );
        let events = heads(request.as_bytes()).unwrap();
        head_of(&events[0]).h2c_settings.clone()
    };
    let six = Bytes::from_static(&[0, 3, 0, 0, 0, 100]);
    assert_eq!(settings("HTTP2-Settings: AAMAAABk\r\n"), Some(Ok(six)));
    assert_eq!(settings("HTTP2-Settings: \r\n"), Some(Ok(Bytes::new())));
    // Padding is optional; 4 bytes (AAMAAA==) are not a whole setting.
    for bad in [
        "HTTP2-Settings: AAMAAA==\r\n",
        "HTTP2-Settings: AAMAAA\r\n",
        "HTTP2-Settings: AAMAAABk+/\r\n",
        "HTTP2-Settings: AAM*AABk\r\n",
        "",
        "HTTP2-Settings: AAMAAABk\r\nHTTP2-Settings: AAMAAABk\r\n",
    ] {
        assert!(matches!(settings(bad), Some(Err(_))), "{bad:?}");
    }
    // Not an upgrade without both Upgrade: h2c and Connection: upgrade.
    let events =
        heads(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: x\r\n\r\n").unwrap();
    assert_eq!(head_of(&events[0]).h2c_settings, None);
}

#[test]
fn absolute_form_gives_authority() {
    let events = heads(b"GET http://example.com:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n").unwrap();
    let head = head_of(&events[0]);
    assert_eq!(head.authority, "example.com:8080");
    assert_eq!(head.path, "/x?y");
}

#[test]
fn leading_empty_lines_do_not_depend_on_splits() {
    // Found by the fuzz target: blank lines then a garbled start without a line end.
    let input = b"\n\n\n\n\r\n0G\x81";
    assert_eq!(run(input, &[]), run(input, &[1, 2, 3, 4]));
    assert_eq!(run(input, &[]), Vec::<String>::new());
}

#[test]
fn body_waits_for_room() {
    let mut decoder = RequestDecoder::new(HeadLimits::default());
    let mut buf =
        BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd"[..]);
    assert!(matches!(
        decoder.decode(&mut buf, 0),
        Ok(Some(Event::Head(_)))
    ));
    assert_eq!(decoder.decode(&mut buf, 0), Ok(None));
    assert_eq!(
        decoder.decode(&mut buf, 3),
        Ok(Some(Event::Body(Bytes::from_static(b"abc"))))
    );
    assert_eq!(
        decoder.decode(&mut buf, 3),
        Ok(Some(Event::Body(Bytes::from_static(b"d"))))
    );
    assert_eq!(decoder.decode(&mut buf, 3), Ok(Some(Event::End)));
}

fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("G T")];
    let body = proptest::collection::vec(any::<u8>(), 0..40);
    (method, "[a-z/?=]{0,12}", body, any::<bool>(), any::<bool>()).prop_map(
        |(method, path, body, chunked, close)| {
            let mut out = format!("{method} /{path} HTTP/1.1\r\nHost: h\r\n");
            if close {
                out.push_str("Connection: close\r\n");
            }
            let mut bytes = if chunked {
                out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                let mut b = out.into_bytes();
                for piece in body.chunks(7) {
                    b.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    b.extend_from_slice(piece);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(b"0\r\n\r\n");
                b
            } else {
                out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                let mut b = out.into_bytes();
                b.extend_from_slice(&body);
                b
            };
            bytes.shrink_to_fit();
            bytes
        },
    )
}

proptest! {
    /// The decoder's result does not depend on how the bytes are split.
    #[test]
    fn any_split_gives_the_same_result(
        requests in proptest::collection::vec(request_bytes(), 1..4),
        noise in proptest::collection::vec(any::<u8>(), 0..8),
        splits in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut input: Vec<u8> = requests.concat();
        input.extend_from_slice(&noise);
        let whole = run(&input, &[]);
        prop_assert_eq!(run(&input, &splits), whole.clone());
        let bytewise: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(run(&input, &bytewise), whole);
    }

    /// Arbitrary bytes never panic, in any split.
    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..300),
        splits in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let _ = run(&input, &splits);
    }
}
