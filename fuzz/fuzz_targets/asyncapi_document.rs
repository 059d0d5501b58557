//! Any bytes given as an AsyncAPI document give a document or an error, never a panic, an
//! abort or unbounded memory (`$ref` loops included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match asyncapi::parse(text) {
        Ok(document) => {
            for operation in &document.operations {
                let _ = document.channel(operation);
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
