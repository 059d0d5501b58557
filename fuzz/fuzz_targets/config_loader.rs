//! Any bytes given as `zilla.yaml` give a built configuration or an error, never a panic,
//! an abort or unbounded memory.
#![no_main]

use zilla_config::{Resolution, Resolver};
use libfuzzer_sys::fuzz_target;

/// Resolves every `${{env.X}}` to a fixed value so expressions are exercised too.
struct FixedEnv;

impl Resolver for FixedEnv {
    fn resolve(&self, resolver: &str, name: &str) -> Resolution {
        match (resolver, name) {
            ("env", "UNSET") => Resolution::Unset,
            ("env", _) => Resolution::Value("7114".to_owned()),
            _ => Resolution::UnknownResolver,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = engine::Registry::builtin();
    if let Err(err) = engine::load_str(text, &registry, &FixedEnv) {
        // Rendering the error must not panic either.
        let _ = err.to_string();
    }
});
