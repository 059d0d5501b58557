//! What a binding was built from, so a configuration reload can tell the bindings it must
//! rebuild from those it keeps running.
//!
//! A binding's [`Fingerprint`] is its own entry in `zilla.yaml` (after `${{env.X}}`
//! substitution), the namespace, and the vaults and guards it names, written without
//! positions (a binding moved down the file by an edit above it is unchanged); apart, its
//! routes, one by one, so a reload can tell a binding that only gained routes (its streams
//! all took routes that are still there) from one that changed; and the size and
//! modification time of the files those vaults read, so a certificate rotated in a keystore
//! rebuilds the tls binding that uses it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use zilla_config::{Node, Value};

/// What a binding was built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Its configuration but its routes, and the configuration of what it names.
    pub config: String,
    /// Its routes, each written on its own, in order.
    pub routes: Vec<String>,
    /// The files it reads, with what they were when it was built.
    pub files: Vec<FileStamp>,
}

/// A file's size and modification time, or none when it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp {
    /// The file.
    pub path: PathBuf,
    /// Its size and modification time.
    pub seen: Option<(u64, SystemTime)>,
}

impl FileStamp {
    /// The file as it is now.
    pub fn now(path: PathBuf) -> FileStamp {
        let seen = std::fs::metadata(&path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        FileStamp { path, seen }
    }

    /// Whether the file differs from when it was stamped.
    pub fn changed(&self) -> bool {
        FileStamp::now(self.path.clone()).seen != self.seen
    }
}

impl Fingerprint {
    /// Whether this is `before` with routes added and nothing else changed: every route of
    /// `before` is still here, as it was.
    pub fn only_adds_routes_to(&self, before: &Fingerprint) -> bool {
        self.config == before.config
            && self.routes != before.routes
            && before
                .routes
                .iter()
                .all(|route| self.routes.contains(route))
    }
}

/// Builds a fingerprint: the binding's entry, then each named section it refers to.
pub struct Builder {
    config: String,
    routes: Vec<String>,
    names: BTreeSet<String>,
    files: Vec<FileStamp>,
}

impl Builder {
    /// Starts with the namespace and the binding's own entry.
    pub fn new(namespace: &str, entry: &Node) -> Builder {
        let mut config = format!("name={namespace};");
        let is_routes = |(key, value): &&(Node, Node)| {
            key.as_str() == Some("routes") && value.as_seq().is_some()
        };
        let routes = match entry.as_map() {
            Some(entries) => {
                write_map(entries.iter().filter(|e| !is_routes(e)), &mut config);
                let routes = entries.iter().find(is_routes).and_then(|(_, v)| v.as_seq());
                routes
                    .unwrap_or_default()
                    .iter()
                    .map(|route| {
                        let mut text = String::new();
                        write_node(route, &mut text);
                        text
                    })
                    .collect()
            }
            None => {
                write_node(entry, &mut config);
                Vec::new()
            }
        };
        let mut names = BTreeSet::new();
        collect_words(entry, &mut names);
        Builder {
            config,
            routes,
            names,
            files: Vec::new(),
        }
    }

    /// Whether the binding's entry mentions `name` (a vault or guard), as a key or a value.
    pub fn mentions(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Adds a section the binding refers to (`what` says which: `guard authn_jwt`).
    pub fn refers_to(&mut self, what: &str, section: Option<&Node>) {
        let _ = write!(self.config, "|{what}=");
        if let Some(section) = section {
            write_node(section, &mut self.config);
        }
    }

    /// Adds files the binding reads.
    pub fn reads(&mut self, files: impl IntoIterator<Item = PathBuf>) {
        self.files.extend(files.into_iter().map(FileStamp::now));
    }

    /// The fingerprint.
    pub fn finish(self) -> Fingerprint {
        Fingerprint {
            config: self.config,
            routes: self.routes,
            files: self.files,
        }
    }
}

/// Writes `node` without positions, unambiguously (lengths before texts).
fn write_node(node: &Node, out: &mut String) {
    match &node.value {
        Value::Null => out.push('~'),
        Value::Scalar(scalar) => {
            let quote = if scalar.plain { 'p' } else { 'q' };
            let _ = write!(out, "{quote}{}:{}", scalar.text.len(), scalar.text);
        }
        Value::Seq(items) => {
            out.push('[');
            for item in items {
                write_node(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Map(entries) => write_map(entries.iter(), out),
    }
}

/// Writes map entries as [`write_node`] writes a map.
fn write_map<'a>(entries: impl Iterator<Item = &'a (Node, Node)>, out: &mut String) {
    out.push('{');
    for (key, value) in entries {
        write_node(key, out);
        out.push('=');
        write_node(value, out);
        out.push(',');
    }
    out.push('}');
}

/// Every scalar of `node`, keys included.
fn collect_words(node: &Node, into: &mut BTreeSet<String>) {
    match &node.value {
        Value::Null => {}
        Value::Scalar(scalar) => {
            into.insert(scalar.text.clone());
        }
        Value::Seq(items) => items.iter().for_each(|item| collect_words(item, into)),
        Value::Map(entries) => {
            for (key, value) in entries {
                collect_words(key, into);
                collect_words(value, into);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> Node {
        zilla_config::parse(text).unwrap()
    }

    #[test]
    fn positions_do_not_count_and_values_do() {
        let a = Builder::new("ns", &entry("type: tcp\nkind: server\n")).finish();
        let moved = Builder::new("ns", &entry("\n\n\ntype: tcp\nkind:    server\n")).finish();
        assert_eq!(a, moved);
        let other = Builder::new("ns", &entry("type: tcp\nkind: client\n")).finish();
        assert_ne!(a, other);
        let quoted = Builder::new("ns", &entry("type: tcp\nkind: 'server'\n")).finish();
        assert_ne!(a, quoted, "a quoted scalar may read differently");
        let renamed = Builder::new("other", &entry("type: tcp\nkind: server\n")).finish();
        assert_ne!(a, renamed);
    }

    #[test]
    fn routes_added_are_told_from_routes_changed() {
        let fingerprint = |text: &str| Builder::new("ns", &entry(text)).finish();
        let one = fingerprint("type: sse-kafka\nroutes:\n  - when: [{path: /a}]\n    exit: k\n");
        let two = fingerprint(
            "type: sse-kafka\nroutes:\n  - when: [{path: /b}]\n    exit: k\n  - when: [{path: /a}]\n    exit: k\n",
        );
        assert!(two.only_adds_routes_to(&one));
        assert!(!one.only_adds_routes_to(&two), "a route removed");
        assert!(!one.only_adds_routes_to(&one), "nothing changed");
        let changed =
            fingerprint("type: sse-kafka\nroutes:\n  - when: [{path: /a}]\n    exit: j\n");
        assert!(!changed.only_adds_routes_to(&one), "a route changed");
        let options = fingerprint(
            "type: sse-kafka\noptions: {x: 1}\nroutes:\n  - when: [{path: /a}]\n    exit: k\n  - when: [{path: /b}]\n    exit: k\n",
        );
        assert!(!options.only_adds_routes_to(&one), "options changed too");
        let first = fingerprint("type: sse-kafka\nexit: k\n");
        let routed =
            fingerprint("type: sse-kafka\nexit: k\nroutes:\n  - when: [{path: /a}]\n    exit: j\n");
        assert!(routed.only_adds_routes_to(&first));
    }

    #[test]
    fn a_named_guard_counts_and_an_unnamed_one_does_not() {
        let node = entry("type: sse\nroutes:\n  - guarded: {authn_jwt: [read]}\n");
        let guard = entry("type: jwt\noptions: {issuer: a}\n");
        let mut builder = Builder::new("ns", &node);
        assert!(builder.mentions("authn_jwt"));
        assert!(!builder.mentions("other"));
        builder.refers_to("guard authn_jwt", Some(&guard));
        let with_guard = builder.finish();
        let changed = entry("type: jwt\noptions: {issuer: b}\n");
        let mut builder = Builder::new("ns", &node);
        builder.refers_to("guard authn_jwt", Some(&changed));
        assert_ne!(with_guard, builder.finish());
    }

    #[test]
    fn a_file_stamp_sees_a_rewrite() {
        let dir = std::env::temp_dir().join(format!("zilla-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.p12");
        std::fs::write(&path, b"one").unwrap();
        let stamp = FileStamp::now(path.clone());
        assert!(!stamp.changed());
        std::fs::write(&path, b"three").unwrap();
        assert!(stamp.changed());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(FileStamp::now(path).seen.is_none());
    }
}
