//! Arbitrary bytes, cut into arbitrary pieces, fed to the sse client's event-stream parser
//! with a small event bound. It must never panic, never give an event over the bound, and
//! must parse the same events however the bytes are split.
#![no_main]

use binding_sse::client::parser::{EventStreamParser, Parsed};
use libfuzzer_sys::fuzz_target;

const MAX_EVENT: usize = 256;

fn parse(input: &[u8], cuts: &[u8]) -> (Vec<Parsed>, bool) {
    let mut parser = EventStreamParser::new(MAX_EVENT);
    let mut out = Vec::new();
    let mut at = 0;
    let mut pieces = cuts
        .iter()
        .map(|&c| usize::from(c))
        .chain(std::iter::repeat(input.len()));
    while at < input.len() {
        let n = pieces.next().unwrap_or(input.len()).min(input.len() - at);
        let fed = parser.feed(&input[at..at + n], &mut out);
        at += n;
        if fed.is_err() {
            return (out, true);
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let cut_len = usize::from(data[0] % 32).min(data.len() - 1);
    let (cuts, input) = data[1..].split_at(cut_len);
    let whole = parse(input, &[]);
    let split = parse(input, cuts);
    for parsed in &whole.0 {
        if let Parsed::Event { data, .. } = parsed {
            assert!(data.len() <= MAX_EVENT);
        }
    }
    // A bound crossed ends both parses; the events before it are the same.
    assert_eq!(
        whole.1, split.1,
        "the split changed whether the bound was crossed"
    );
    assert_eq!(whole.0, split.0, "the split changed the events");
});
