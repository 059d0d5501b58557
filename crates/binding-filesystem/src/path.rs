//! From a requested path to a relative path that cannot leave the served location.
//!
//! Sans-IO and total: [`normalize`] percent-decodes, splits on `/`, drops empty and `.`
//! segments and **refuses** rather than resolves anything that could climb or confuse: a
//! `..` segment (written or percent-encoded), a backslash, a NUL, a malformed escape or
//! bytes that are not UTF-8. Symbolic links are the server's part: it canonicalizes the
//! joined path and checks it is still under the canonical location.

use std::path::{Component, PathBuf};

use thiserror::Error;

/// Why a path was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PathError {
    /// A `..` segment.
    #[error("the path climbs out with '..'")]
    Parent,
    /// A `%` not followed by two hex digits.
    #[error("a malformed percent escape")]
    Escape,
    /// A NUL or backslash, or bytes that are not UTF-8, after decoding.
    #[error("the path has a character files here cannot have")]
    Character,
}

/// Decodes `%XX` escapes.
fn percent_decode(path: &str) -> Result<Vec<u8>, PathError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::Escape)?;
            let text = std::str::from_utf8(hex).map_err(|_| PathError::Escape)?;
            let value = u8::from_str_radix(text, 16).map_err(|_| PathError::Escape)?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The relative path `path` names, with the query string dropped; empty for the root.
pub fn normalize(path: &str) -> Result<PathBuf, PathError> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let decoded = String::from_utf8(percent_decode(path)?).map_err(|_| PathError::Character)?;
    if decoded.contains(['\0', '\\']) {
        return Err(PathError::Character);
    }
    let mut relative = PathBuf::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(PathError::Parent),
            name => relative.push(name),
        }
    }
    // Belt and braces: what was built is plain names only.
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(PathError::Parent);
    }
    Ok(relative)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_paths() {
        assert_eq!(normalize("index.html"), Ok(PathBuf::from("index.html")));
        assert_eq!(
            normalize("/css//./site.css?v=1"),
            Ok(PathBuf::from("css/site.css"))
        );
        assert_eq!(normalize("a%20b.txt"), Ok(PathBuf::from("a b.txt")));
        assert_eq!(normalize(""), Ok(PathBuf::new()));
    }

    #[test]
    fn traversal_refused() {
        for attempt in [
            "../etc/passwd",
            "a/../../b",
            "%2e%2e/secret",
            "%2E%2E%2Fsecret",
            "..%2fsecret",
            ".%2e/secret",
            "a/%2e%2e/%2e%2e/b",
            "..\\secret",
            "a%5c..%5cb",
            "a%00.html",
            "%zz",
            "%2",
            "%c0%ae%c0%ae/secret",
        ] {
            assert!(normalize(attempt).is_err(), "{attempt} must be refused");
        }
    }

    proptest! {
        #[test]
        fn never_climbs(path in ".{0,64}") {
            if let Ok(relative) = normalize(&path) {
                prop_assert!(relative.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
    }
}
