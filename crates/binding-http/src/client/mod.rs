//! `kind: client`: takes request streams (an [`HttpBeginEx`] begin, as an http server gives
//! them) and sends each to the upstream over its own connection through the exit (a tcp or
//! tls client): HTTP/1.1 with [`request`] and [`response`], or HTTP/2 with the `h2` crate.

pub mod config;
mod http1;
mod http2;
pub mod request;
pub mod response;

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::HttpBeginEx;
use binding_api::ext::tcp::TcpBeginEx;
use binding_api::frame::{Begin, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{self, Acceptor, Duplex, Initiator};
use bytes::BytesMut;
use zilla_config::ConfigError;
use zilla_config::factory::{BindingConfig, BindingFactory, ExitRule, Kind};

use self::config::HttpClientOptions;
use self::request::RequestEncoder;
use crate::config::Version;

/// Credit granted to the application's request body, and the most response bytes held per
/// request (also HTTP/2's stream window).
pub(crate) const APP_WINDOW: u32 = 64 * 1024;

/// Credit granted to the upstream connection.
const NET_WINDOW: u32 = 64 * 1024;

/// Largest data frame sent either way.
pub(crate) const MAX_WRITE: u64 = 16 * 1024;

/// An http client binding.
pub struct HttpClient {
    name: Arc<str>,
    options: Arc<HttpClientOptions>,
    exit: Arc<dyn Binding>,
}

impl HttpClient {
    /// A client sending requests through `exit`, as `options` say.
    pub fn new(name: &str, options: HttpClientOptions, exit: Arc<dyn Binding>) -> Self {
        HttpClient {
            name: name.into(),
            options: Arc::new(options),
            exit,
        }
    }
}

impl Binding for HttpClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let (begin, mut app) = stream.split();
        let BeginEx::Http(mut request) = begin.ext else {
            app.refuse_in_place(Reset::new(
                ReasonKind::Refused,
                format!("http client '{}' takes http request streams", self.name),
            ));
            return;
        };
        self.options.overrides.apply(&mut request.headers, None);
        // Where to connect: the exit's own destination (a tcp client's host and port, which
        // a tls client in between also names its server by).
        let ext = self
            .exit
            .default_destination()
            .map_or(BeginEx::None, |remote| {
                BeginEx::Tcp(TcpBeginEx {
                    local: None,
                    remote,
                })
            });
        let (net, acceptor) = stream::open(Begin { ext });
        self.exit.new_stream(acceptor, worker);
        worker.spawn(connect(
            self.name.clone(),
            self.options.clone(),
            request,
            app,
            net,
            worker.clone(),
        ));
    }
}

/// The reason the application is given when the upstream fails before or during a response:
/// `connection lost`, which the sse and http servers answer with 502 before a response.
pub(crate) fn upstream_lost(detail: String) -> Reason {
    Reason::new(ReasonKind::ConnectionLost, format!("upstream: {detail}"))
}

/// The version to speak on a connection whose begin is `ext`: what ALPN chose over tls
/// (`h2`, else HTTP/1.1), else HTTP/2 by prior knowledge only when `versions` lists h2 alone;
/// an error when that version is not in `versions`.
fn choose_version(options: &HttpClientOptions, ext: &BeginEx) -> Result<Version, String> {
    let negotiated = match ext {
        BeginEx::Tls(tls) => tls.alpn.as_deref(),
        _ => None,
    };
    let version = match negotiated {
        Some("h2") => Version::H2,
        Some(_) => Version::Http11,
        None if options.speaks(Version::Http11) => Version::Http11,
        None => Version::H2,
    };
    if options.speaks(version) {
        Ok(version)
    } else {
        Err(format!(
            "upstream: ALPN chose {}, which options.versions does not list",
            negotiated.unwrap_or("none")
        ))
    }
}

/// Waits for the connection, then runs the exchange in the version it speaks.
async fn connect(
    binding: Arc<str>,
    options: Arc<HttpClientOptions>,
    request: HttpBeginEx,
    mut app: Duplex,
    mut net: Initiator,
    worker: Worker,
) {
    if net
        .input
        .window(Window {
            credit: NET_WINDOW,
            padding: 0,
        })
        .is_err()
    {
        return;
    }
    let first = tokio::select! {
        frame = net.input.frame() => frame,
        reset = app.output.reset_by_reader() => {
            app.input.reset(reset.clone());
            let _ = net.output.abort(reset.reason);
            return;
        }
    };
    let begin = match first {
        Some(Frame::Begin(begin)) => begin,
        other => {
            // Refused by the exit: connect failed, timed out, no route.
            let reason = match (other, net.output.reset_reason()) {
                (_, Some(reset)) => reset.reason,
                (Some(Frame::Abort(abort)), None) => abort.reason,
                _ => Reason::new(ReasonKind::ConnectionLost, "the connection closed"),
            };
            let kind = match reason.kind {
                ReasonKind::Timeout | ReasonKind::Shutdown => reason.kind,
                _ => ReasonKind::Unreachable,
            };
            tracing::debug!(binding = %binding, %reason, "http client: upstream unreachable");
            app.refuse_in_place(Reset::new(kind, format!("upstream: {reason}")));
            return;
        }
    };
    let version = match choose_version(&options, &begin.ext) {
        Ok(version) => version,
        Err(detail) => {
            tracing::debug!(binding = %binding, %detail, "http client: version refused");
            app.refuse_in_place(Reset::new(ReasonKind::Unreachable, detail.clone()));
            let _ = net.output.abort(Reason::new(ReasonKind::Refused, detail));
            return;
        }
    };
    if version == Version::H2 {
        http2::exchange(binding, request, app, net, worker).await;
        return;
    }
    let mut head = BytesMut::new();
    let encoder = match RequestEncoder::head(&request, &mut head) {
        Ok(encoder) => encoder,
        Err(err) => {
            tracing::debug!(binding = %binding, %err, "http client: request refused");
            app.refuse_in_place(Reset::new(ReasonKind::Invalid, err.to_string()));
            let _ = net
                .output
                .abort(Reason::new(ReasonKind::Invalid, err.to_string()));
            return;
        }
    };
    drop(request);
    http1::Exchange::new(binding, encoder, head, app, net).await;
}

/// Builds http bindings of `kind: client` (the engine's registry merges it with
/// [`HttpFactory`](crate::HttpFactory)'s servers under the type `http`).
#[derive(Debug, Default)]
pub struct HttpClientFactory;

impl BindingFactory for HttpClientFactory {
    fn type_name(&self) -> &'static str {
        "http"
    }

    fn kinds(&self) -> &[Kind] {
        &[Kind::Client]
    }

    fn exit_rule(&self, _kind: Kind) -> ExitRule {
        ExitRule::Required
    }

    fn build(&self, config: &BindingConfig<'_>) -> Result<Arc<dyn Binding>, ConfigError> {
        if let Some(vault) = config.vault {
            return Err(config
                .error(format!("http takes no vault (found '{vault}')"))
                .with_help("remove 'vault'; TLS is a separate binding of type tls"));
        }
        let options = config::parse_client_options(config.options)?;
        let exit = config.sole_exit(
            "http client",
            "a tcp client, or a tls client in front of one",
        )?;
        Ok(Arc::new(HttpClient::new(config.name, options, exit)))
    }
}

#[cfg(test)]
mod tests {
    use binding_api::ext::tls::TlsBeginEx;

    use super::*;

    fn options(versions: &[Version]) -> HttpClientOptions {
        HttpClientOptions {
            versions: versions.to_vec(),
            ..HttpClientOptions::default()
        }
    }

    fn tls(alpn: Option<&str>) -> BeginEx {
        BeginEx::Tls(TlsBeginEx {
            alpn: alpn.map(str::to_owned),
            ..TlsBeginEx::default()
        })
    }

    #[test]
    fn versions_follow_alpn_over_tls_and_prior_knowledge_over_tcp() {
        let both = options(&[Version::Http11, Version::H2]);
        let h2 = options(&[Version::H2]);
        let h1 = options(&[Version::Http11]);
        assert_eq!(choose_version(&both, &BeginEx::None), Ok(Version::Http11));
        assert_eq!(choose_version(&h2, &BeginEx::None), Ok(Version::H2));
        assert_eq!(choose_version(&both, &tls(Some("h2"))), Ok(Version::H2));
        assert_eq!(
            choose_version(&both, &tls(Some("http/1.1"))),
            Ok(Version::Http11)
        );
        assert_eq!(choose_version(&both, &tls(None)), Ok(Version::Http11));
        assert_eq!(choose_version(&h2, &tls(None)), Ok(Version::H2));
        assert!(choose_version(&h1, &tls(Some("h2"))).is_err());
        assert!(choose_version(&h2, &tls(Some("http/1.1"))).is_err());
    }
}
