use proptest::prelude::*;

use super::*;

fn parse_split(input: &[u8], cuts: &[usize], max: usize) -> Result<Vec<Parsed>, ParseError> {
    let mut parser = EventStreamParser::new(max);
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    let mut at = 0;
    for point in points {
        parser.feed(&input[at..point], &mut out)?;
        at = point;
    }
    Ok(out)
}

fn parse(input: &[u8]) -> Vec<Parsed> {
    parse_split(input, &[], 1 << 20).unwrap()
}

fn event(id: Option<&str>, event_type: Option<&str>, data: &str) -> Parsed {
    Parsed::Event {
        id: id.map(str::to_owned),
        event_type: event_type.map(str::to_owned),
        data: Bytes::copy_from_slice(data.as_bytes()),
    }
}

#[test]
fn fields_comments_and_multi_line_data() {
    let got =
        parse(b": hello\nretry: 300\nid: 7\nevent: tick\ndata: a\ndata:b\ndata\nunknown: x\n\n");
    assert_eq!(got, vec![event(Some("7"), Some("tick"), "a\nb\n")]);
}

#[test]
fn cr_lf_and_crlf_all_end_lines() {
    let want = vec![
        event(None, None, "1"),
        event(None, None, "2"),
        event(None, None, "3"),
    ];
    assert_eq!(parse(b"data: 1\r\n\r\ndata: 2\r\rdata: 3\n\n"), want);
}

#[test]
fn a_leading_bom_is_skipped_once() {
    assert_eq!(
        parse(b"\xEF\xBB\xBFdata: x\n\n"),
        vec![event(None, None, "x")]
    );
    // A second BOM is part of the field name: an unknown field.
    assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"), vec![]);
}

#[test]
fn blocks_without_data_move_only_the_id() {
    assert_eq!(
        parse(b"id: 9\n\nevent: x\n\n"),
        vec![Parsed::Id("9".into())]
    );
    // An empty data line is an event with empty data.
    assert_eq!(parse(b"data:\n\n"), vec![event(None, None, "")]);
    // An id with NUL is ignored; an empty id clears it.
    assert_eq!(
        parse(b"id: a\0b\ndata: x\n\nid\n\n"),
        vec![event(None, None, "x"), Parsed::Id(String::new())]
    );
}

#[test]
fn an_unfinished_event_is_not_dispatched() {
    assert_eq!(parse(b"data: x\n"), vec![]);
}

#[test]
fn events_past_the_bound_are_refused() {
    assert_eq!(
        parse_split(b"data: 0123456789\n\n", &[], 8),
        Err(ParseError::EventTooLarge(8))
    );
    assert_eq!(
        parse_split(b"data: 0123\ndata: 4567\n\n", &[3, 9, 14], 12),
        Err(ParseError::EventTooLarge(12))
    );
    // A line with no end is bounded too.
    let long = vec![b'x'; 100];
    assert!(parse_split(&long, &[10, 50], 64).is_err());
    // Events within it pass, one after another.
    assert_eq!(
        parse_split(b"data: 0123\n\ndata: 4567\n\n", &[], 12)
            .unwrap()
            .len(),
        2
    );
}

fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<Parsed>)> {
    let field = "[a-z0-9 ]{0,12}";
    let events = proptest::collection::vec(
        (
            proptest::option::of(field),
            proptest::option::of(field),
            proptest::collection::vec(field, 1..4),
            0..3usize,
        ),
        0..6,
    );
    (any::<bool>(), events).prop_map(|(bom, events)| {
        let mut wire = Vec::new();
        if bom {
            wire.extend(b"\xEF\xBB\xBF");
        }
        let mut want = Vec::new();
        for (id, event_type, lines, eol) in events {
            let eol: &[u8] = [&b"\n"[..], b"\r", b"\r\n"][eol];
            wire.extend(b": comment");
            wire.extend(eol);
            if let Some(id) = &id {
                wire.extend(format!("id: {id}").bytes());
                wire.extend(eol);
            }
            if let Some(event_type) = &event_type {
                wire.extend(format!("event: {event_type}").bytes());
                wire.extend(eol);
            }
            for line in &lines {
                wire.extend(format!("data: {line}").bytes());
                wire.extend(eol);
            }
            wire.extend(eol);
            want.push(Parsed::Event {
                id: id.clone(),
                event_type: event_type.clone(),
                data: Bytes::from(lines.join("\n")),
            });
        }
        (wire, want)
    })
}

proptest! {
    /// However the stream is split, the same events come out.
    #[test]
    fn any_split_gives_the_same_events(
        (wire, want) in stream(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        prop_assert_eq!(parse_split(&wire, &cuts, 1 << 20).unwrap(), want);
    }

    /// Any bytes give events or an error, never a panic, and never an event over the bound.
    #[test]
    fn arbitrary_bytes_stay_within_the_bound(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        if let Ok(events) = parse_split(&input, &cuts, 64) {
            for parsed in events {
                if let Parsed::Event { data, .. } = parsed {
                    prop_assert!(data.len() <= 64);
                }
            }
        }
    }
}
