//! # binding-http-filesystem
//!
//! Zilla's `http-filesystem` binding, `kind: proxy`: maps an HTTP `GET` or `HEAD` request to
//! a filesystem stream for the path its route computes, and the file server's answer back to
//! an HTTP response.
//!
//! ## Configuration
//!
//! ```yaml
//! east_http_filesystem_mapping:
//!   type: http-filesystem
//!   kind: proxy
//!   routes:
//!     - when:
//!         - path: /{path}          # a pattern over the request path (query ignored)
//!       with:
//!         path: ${params.path}   # the file path: captures substituted
//!       exit: east_filesystem_server
//! ```
//!
//! A route without `with` passes the request path without its leading `/`. A request no
//! route matches is refused (404).
//!
//! ## Streams
//!
//! Takes an http request stream ([`BeginEx::Http`](binding_api::ext::BeginEx)); opens a
//! filesystem stream ([`FileSystemBeginEx`](binding_api::ext::filesystem::FileSystemBeginEx))
//! with the path, `read_payload` (GET) and the request's `If-None-Match` as `tag`. The
//! file server's reply begin becomes `200` with `content-type`, `content-length` and `etag`,
//! or `304` with the `etag` when the tags match; its data frames are the body, passed on
//! within the HTTP response's credit (at most 64 KiB in flight per request). A refusal from
//! the file server (`no-route`) is passed on as a refusal, which the http server answers
//! `404`. Methods other than GET and HEAD get `405` with `allow: GET, HEAD`.
//!
//! `tests/serve.rs` runs it with a filesystem server: `cargo test -p binding-http-filesystem`.

mod proxy;

use std::sync::Arc;

use binding_api::binding::Binding;
use binding_api::route::{Pattern, Route};
use serde::Deserialize;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};
use zilla_config::{ConfigError, ConfigErrorKind, from_node_at};

pub use proxy::{HttpFileSystemProxy, Template};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWith {
    path: String,
}

/// Builds http-filesystem bindings from configuration.
#[derive(Debug, Default)]
pub struct HttpFileSystemFactory;

impl BindingFactory for HttpFileSystemFactory {
    fn type_name(&self) -> &'static str {
        "http-filesystem"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Proxy]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(options) = config.options {
            return Err(ConfigError::at(
                options.mark,
                ConfigErrorKind::Custom("http-filesystem takes no options".into()),
            )
            .with_help("remove 'options'"));
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in config.routes {
            let mut paths = Vec::with_capacity(route.when.len());
            for node in &route.when {
                let raw: RawCondition = from_node_at(node, "routes.when")?;
                let pattern = Pattern::new(&raw.path).map_err(|e| {
                    ConfigError::at(node.mark, ConfigErrorKind::Custom(e.to_string()))
                })?;
                paths.push(pattern);
            }
            let with = match &route.with {
                None => None,
                Some(node) => {
                    let raw: RawWith = from_node_at(node, "routes.with")?;
                    let template = Template::parse(&raw.path).map_err(|e| {
                        ConfigError::at(node.mark, ConfigErrorKind::Custom(e))
                            .with_help("write captures as ${params.NAME}")
                    })?;
                    for name in template.params() {
                        if !paths.iter().all(|p| p.capture_names().any(|c| c == name)) {
                            return Err(ConfigError::at(
                                node.mark,
                                ConfigErrorKind::Custom(format!(
                                    "${{params.{name}}} is not captured by every path of this route"
                                )),
                            )
                            .with_help("capture it in 'when', e.g. path: /{path}"));
                        }
                    }
                    Some(template)
                }
            };
            let Some(exit) = &route.exit else {
                return Err(ConfigError::at(
                    route.mark,
                    ConfigErrorKind::MissingField {
                        field: "exit".into(),
                    },
                ));
            };
            routes.push(Route {
                when: paths,
                exit: config.exit_binding(exit, route.mark)?,
                with,
            });
        }
        let exit = match config.exit {
            Some(exit) => Some(config.exit_binding(exit, config.mark)?),
            None => None,
        };
        Ok(Arc::new(HttpFileSystemProxy::new(
            config.name,
            routes,
            exit,
        )))
    }
}
