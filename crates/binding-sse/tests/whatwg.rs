//! Round trip through a WHATWG event-stream parser: any event our encoder writes (arbitrary
//! id, type and data bytes, arbitrarily fragmented, with heartbeats and id-only blocks in
//! between) is read back as the same event by a conformant client, or the encoder refuses it.
//!
//! The parser (`support/whatwg.rs`) follows the HTML standard's "interpreting an event
//! stream" algorithm.

#![allow(clippy::unwrap_used)]

use binding_sse::encoder::{self, BREAK_LEN, Encoder, Head, valid_id, valid_type};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

#[path = "support/whatwg.rs"]
mod whatwg;

use whatwg::{Fired, parse};

#[test]
fn parser_follows_the_standard() {
    let stream = "\u{feff}retry:10\n: hi\ndata: a\r\ndata\revent:x\nid:7\n\ndata:b\n\nid:\0\ndata:c\n\ndata:d";
    let parsed = parse(stream.as_bytes());
    assert_eq!(parsed.retry, Some(10));
    let fired = |t: &str, d: &str, id: &str| Fired {
        event_type: t.into(),
        data: d.into(),
        last_event_id: id.into(),
    };
    assert_eq!(
        parsed.events,
        vec![
            fired("x", "a\n", "7"),
            fired("message", "b", "7"),
            fired("message", "c", "7"),
        ]
    );
}

/// An event the application sends, and how it is cut into data frames and encoded.
#[derive(Clone, Debug)]
struct Sent {
    id: Option<String>,
    event_type: Option<String>,
    data: Vec<u8>,
    /// Fragment sizes (cycled).
    cuts: Vec<usize>,
    /// Output room per call (cycled, at least BREAK_LEN).
    rooms: Vec<usize>,
    /// What to write before the event.
    before: Interlude,
}

#[derive(Clone, Debug)]
enum Interlude {
    Nothing,
    Heartbeat,
    Checkpoint(String),
}

/// Text with many of the characters that matter: line breaks, NUL, spaces, colons.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('\r'),
            Just('\n'),
            Just('\0'),
            Just(' '),
            Just(':'),
            Just('\u{feff}'),
            any::<char>(),
            prop::char::range('a', 'e'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(b' '),
            Just(b':'),
            Just(0u8),
            Just(0xe2u8),
            any::<u8>(),
            b'a'..b'e',
        ],
        0..64,
    )
}

fn sent() -> impl Strategy<Value = Sent> {
    (
        prop::option::of(tricky_text()),
        prop::option::of(tricky_text()),
        tricky_bytes(),
        prop::collection::vec(1usize..20, 1..5),
        prop::collection::vec(BREAK_LEN..40, 1..5),
        prop_oneof![
            Just(Interlude::Nothing),
            Just(Interlude::Heartbeat),
            "[a-z0-9]{0,6}".prop_map(Interlude::Checkpoint),
        ],
    )
        .prop_map(|(id, event_type, data, cuts, rooms, before)| Sent {
            id,
            event_type,
            data,
            cuts,
            rooms,
            before,
        })
}

/// Encodes `events` as the server would, returning the stream and the events a client must see.
fn encode(events: &[Sent], retry: u32) -> (Vec<u8>, Vec<Fired>, String) {
    let mut out = BytesMut::from(&encoder::preamble(retry, true)[..]);
    let mut encoder = Encoder::new(false);
    let mut expected = Vec::new();
    let mut last_id = String::new();
    for event in events {
        match &event.before {
            Interlude::Nothing => {}
            Interlude::Heartbeat => out.extend_from_slice(encoder::HEARTBEAT),
            Interlude::Checkpoint(id) => {
                encoder::id_only(id, &mut out).unwrap();
                last_id = id.clone();
            }
        }
        let head = Head {
            id: event.id.as_deref(),
            event_type: event.event_type.as_deref(),
            timestamp: None,
        };
        let valid = event.id.as_deref().is_none_or(valid_id)
            && event.event_type.as_deref().is_none_or(valid_type);
        match encoder.start_event(head, &mut out) {
            Err(_) => {
                assert!(!valid, "refused a valid event {event:?}");
                continue;
            }
            Ok(()) => assert!(valid, "accepted an invalid event {event:?}"),
        }
        let mut rest = &event.data[..];
        let mut rooms = event.rooms.iter().cycle();
        for &cut in event.cuts.iter().cycle() {
            let take = cut.min(rest.len());
            let mut fragment = Bytes::copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            while !fragment.is_empty() {
                let room = *rooms.next().unwrap();
                let before = out.len();
                let written = encoder.data(&mut fragment, &mut out, room);
                assert_eq!(written, out.len() - before);
                assert!(written <= room, "wrote {written} into room for {room}");
            }
            if rest.is_empty() {
                break;
            }
        }
        encoder.finish_event(&mut out);
        if let Some(id) = &event.id {
            last_id = id.clone();
        }
        let data = String::from_utf8_lossy(&event.data)
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        expected.push(Fired {
            event_type: match event.event_type.as_deref() {
                None | Some("") => "message".to_owned(),
                Some(t) => t.to_owned(),
            },
            data,
            last_event_id: last_id.clone(),
        });
    }
    (out.to_vec(), expected, last_id)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn whatwg_parser_reads_back_what_we_encode(
        events in prop::collection::vec(sent(), 0..6),
        retry in 0u32..100_000,
    ) {
        let (stream, expected, last_id) = encode(&events, retry);
        let parsed = parse(&stream);
        prop_assert_eq!(parsed.retry, Some(u64::from(retry)));
        prop_assert_eq!(parsed.events, expected);
        prop_assert_eq!(parsed.last_event_id, last_id);
    }

    #[test]
    fn ids_and_types_are_refused_exactly_when_they_cannot_be_one_field(
        id in tricky_text(),
        event_type in tricky_text(),
    ) {
        let mut out = BytesMut::new();
        let head = Head { id: Some(&id), event_type: Some(&event_type), timestamp: None };
        let refused = Encoder::new(false).start_event(head, &mut out).is_err();
        let breaks = |s: &str| s.contains(['\r', '\n']);
        prop_assert_eq!(refused, breaks(&id) || id.contains('\0') || breaks(&event_type));
    }
}
