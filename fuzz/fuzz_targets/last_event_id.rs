//! Any `Last-Event-ID` text parses to progress or to an error, never a panic, and whatever
//! parses re-encodes to an id that parses to the same progress.
#![no_main]

use binding_sse_kafka::event_id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(last)) = event_id::parse(text) {
        let again = event_id::format_id(&last.progress, last.etag.as_deref());
        let reparsed = event_id::parse(&again).ok().flatten().map(|l| l.progress);
        assert_eq!(reparsed.as_ref(), Some(&last.progress));
    }
});
