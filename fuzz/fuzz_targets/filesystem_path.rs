//! The filesystem server's path normalisation: any input either is refused or gives a
//! relative path of plain names (no root, no `..`, no `.`), and normalising is stable:
//! the result, written back with `/`, normalises to itself.

#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(relative) = binding_filesystem::path::normalize(text) {
        assert!(
            relative
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
            "{text:?} gave {relative:?}"
        );
        let names: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        // Names may hold '%', '?' or '#' once decoded; re-encode those for the round trip.
        let encoded: Vec<String> = names
            .iter()
            .map(|n| {
                n.replace('%', "%25")
                    .replace('?', "%3F")
                    .replace('#', "%23")
            })
            .collect();
        let again = binding_filesystem::path::normalize(&encoded.join("/"));
        assert_eq!(again.as_ref(), Ok(&relative), "{text:?}");
    }
});
