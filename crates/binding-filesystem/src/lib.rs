//! # binding-filesystem
//!
//! Zilla's `filesystem` binding, `kind: server`: answers filesystem streams (from an
//! http-filesystem proxy) with the files under `options.location`.
//!
//! ## Configuration
//!
//! ```yaml
//! east_filesystem_server:
//!   type: filesystem
//!   kind: server
//!   options:
//!     location: /var/www/      # relative paths are relative to zilla.yaml's directory
//!     symlinks: ignore         # default; or follow
//! ```
//!
//! When the location is not a readable directory at start, the engine starts anyway (as
//! Zilla does) with a `filesystem_location_missing` warning, and every request is answered
//! 404 until the directory exists.
//!
//! ## Streams
//!
//! Takes a stream whose begin is
//! [`BeginEx::FileSystem`](binding_api::ext::BeginEx) ([`FileSystemBeginEx`](binding_api::ext::filesystem::FileSystemBeginEx):
//! path, whether to read the bytes, the client's tag). The path is percent-decoded and
//! normalised by [`path::normalize`], which refuses `..` (also encoded), backslashes, NUL
//! and malformed escapes. With `symlinks: ignore` (Zilla's default) a path through a symbolic
//! link below the location is not served; with `symlinks: follow` links are followed. Either
//! way the file is then canonicalized and must still be under the canonical location, so no
//! link leads out of it. A directory serves its `index.html`.
//!
//! The reply begins with the file's content type (by extension), size and tag (size and
//! modification time), then carries the bytes within the reader's credit, 64 KiB at most per
//! frame, and ends. No bytes follow when the request wanted none (HEAD) or its tag is the
//! file's (304 upstream). Anything not served is refused with reason `no-route`, which the
//! http server answers 404; the reason says why only in the debug log. Files are read with
//! blocking reads on the worker, fine for the small static pages this serves.
//!
//! The path rules are unit- and property-tested here and fuzzed (`fuzz/fuzz_targets/filesystem_path.rs`);
//! `crates/binding-http-filesystem/tests/serve.rs` serves a temporary directory through both bindings.

mod mime;
pub mod path;
mod server;

use std::path::Path;
use std::sync::Arc;

use binding_api::binding::Binding;
use serde::Deserialize;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind, from_node_at};

pub use mime::content_type;
pub use server::{FileSystemServer, Symlinks, resolve};

/// `options` of a filesystem binding.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    location: String,
    #[serde(default)]
    symlinks: Symlinks,
}

/// Builds filesystem bindings from configuration.
#[derive(Debug, Default)]
pub struct FileSystemFactory;

impl BindingFactory for FileSystemFactory {
    fn type_name(&self) -> &'static str {
        "filesystem"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Server]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Forbidden
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        let Some(node) = config.options else {
            return Err(config
                .error("a filesystem server needs options.location")
                .with_help("add options: {location: /var/www/}"));
        };
        let options: Options = from_node_at(node, "options")?;
        if let Some(route) = config.routes.first() {
            return Err(ConfigError::at(
                route.mark,
                ConfigErrorKind::Custom("a filesystem server takes no routes".into()),
            )
            .with_help("remove 'routes'"));
        }
        let location = config.base.join(Path::new(&options.location));
        Ok(Arc::new(FileSystemServer::new(
            config.name,
            location,
            options.symlinks,
        )))
    }
}
