//! Any bytes parse to a hello, a need for more, or an error, never a panic; a complete hello
//! stays complete and the same with more bytes after it, and a need is always for more.
#![no_main]

use binding_tls::hello::{Parsed, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Parsed::Complete { hello, len }) => {
            assert!(len <= data.len());
            let again = parse(&data[..len]);
            assert_eq!(again, Ok(Parsed::Complete { hello, len }));
        }
        Ok(Parsed::Incomplete { need }) => assert!(need > data.len()),
        Err(_) => {}
    }
});
