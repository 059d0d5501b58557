//! # zilla-config
//!
//! `zilla.yaml` read into a tree that remembers where everything is, serde on top of it, and
//! the [`factory`] side of the binding contract: what a binding type needs to build itself from
//! its entry. Only start-up code needs this crate; a running binding speaks `binding-api`
//! alone.
//!
//! 1. [`parse`] turns YAML text into a [`Node`] tree (built from `saphyr-parser` events, every
//!    node with its 1-based line and column). Duplicate keys, several documents, nesting deeper
//!    than 64 and more than 100 000 nodes (aliases expanded) are errors, so no input can panic,
//!    recurse without bound or exhaust memory.
//! 2. [`substitute`] replaces Zilla expressions `${{ env.NAME }}` inside scalar values (not keys);
//!    a plain scalar stays plain, so it is typed afterwards (`port: ${{ env.PORT }}` is an int).
//! 3. [`from_node`] deserializes any serde type from the tree. Plain scalars are typed with the
//!    YAML 1.2 core schema; quoted ones are strings. Every error gets the position and path of
//!    the node it concerns (the key for unknown fields, the mapping for missing ones).
//! 4. [`Spanned<T>`] keeps a value's position for checks made after deserializing, and a
//!    [`Node`] field keeps a raw subtree (e.g. a binding's `options`) to deserialize later.
//!
//! Errors are [`ConfigError`]s and read like
//! `zilla.yaml:12:9: binding 'north_tcp_server': unknown option 'prot' (allowed: host, port); did you mean 'port'?`.
//!
//! ```
//! use zilla_config::{env_resolver_from, from_str};
//!
//! #[derive(Debug, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Options {
//!     host: String,
//!     port: u16,
//! }
//!
//! let env = env_resolver_from(|name| Ok((name == "PORT").then(|| "7114".to_owned())));
//! let options: Options = from_str("host: 0.0.0.0\nport: ${{ env.PORT }}\n", &env).unwrap();
//! assert_eq!((options.host.as_str(), options.port), ("0.0.0.0", 7114));
//!
//! let err = from_str::<Options>("host: 0.0.0.0\nprot: 7114\n", &env).unwrap_err();
//! assert_eq!(err.to_string(), "2:1: unknown key 'prot' (allowed: host, port); did you mean 'port'?");
//! ```

mod de;
mod error;
mod expr;
pub mod factory;
pub mod resolve;
mod scalar;
mod spanned;
mod yaml;

pub use de::{from_node, from_node_at, from_str};
pub use error::{ConfigError, ConfigErrorDetails, ConfigErrorKind};
pub use expr::{Resolution, Resolver, env_resolver, env_resolver_from, substitute};
pub use spanned::Spanned;
pub use yaml::{Limits, Mark, Node, Scalar, Value, parse, parse_with_limits};
