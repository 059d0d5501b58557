//! `kind: server`: takes network streams (from tcp or tls), chooses HTTP/1.1 or HTTP/2 for
//! each, and runs it.

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::frame::{End, Frame, Window};
use binding_api::route::{Route, Routes};
use binding_api::stream::Acceptor;
use bytes::BytesMut;

use crate::config::{Condition, HttpOptions, Version};
use crate::dispatch::Shared;
use crate::h1::server::{H1, Outcome, begin_output};
use crate::h2;
use crate::net::Net;
use crate::overrides::Overrides;

/// An http server binding.
pub struct HttpServer {
    shared: Arc<Shared>,
}

impl HttpServer {
    /// A server with `options` that routes requests by `routes`, then to `exit`. Requests
    /// towards an exit get `options.overrides`, then their route's overrides.
    pub fn new(
        name: impl Into<String>,
        options: HttpOptions,
        mut routes: Vec<Route<Condition, Overrides>>,
        exit: Option<Arc<dyn Binding>>,
    ) -> Self {
        for route in &mut routes {
            route.with = options.overrides.then(&route.with);
        }
        HttpServer {
            shared: Arc::new(Shared {
                name: name.into(),
                options,
                routes: Routes::new(routes, exit),
            }),
        }
    }
}

impl Binding for HttpServer {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        worker.spawn(connection(self.shared.clone(), stream, worker.clone()));
    }
}

/// Runs one network connection.
async fn connection(shared: Arc<Shared>, stream: Acceptor, worker: Worker) {
    let Acceptor {
        begin,
        initial,
        reply,
    } = stream;
    let mut net = Net {
        input: initial,
        output: reply,
    };
    if !begin_output(&mut net.output) {
        return;
    }
    let (alpn, scheme) = match &begin.ext {
        BeginEx::Tls(tls) => (tls.alpn.clone(), "https"),
        _ => (None, "http"),
    };
    let options = &shared.options;
    let window = options.limits.head.max_head() + 4096;
    let credit = u32::try_from(window).unwrap_or(u32::MAX);
    if net.input.window(Window { credit, padding: 0 }).is_err() {
        return;
    }
    let h1 = options.speaks(Version::Http11);
    let h2 = options.speaks(Version::H2);
    if alpn.as_deref() == Some("h2") || (h2 && !h1) {
        // Boxed, here and below: an HTTP/1.1 connection's task should not be as large as the
        // HTTP/2 one it does not run.
        Box::pin(h2::serve(
            shared,
            net,
            worker,
            Default::default(),
            None,
            scheme,
        ))
        .await;
        return;
    }
    let mut inbuf = BytesMut::new();
    if h2 {
        // Prior knowledge: the client may start with the HTTP/2 preface.
        let timeout = options.limits.request_header_timeout;
        let sniff = async {
            while inbuf.len() < h2::PREFACE.len() && h2::PREFACE.starts_with(&inbuf) {
                match net.input.frame().await {
                    Some(Frame::Data(data)) => inbuf.extend_from_slice(&data.payload),
                    Some(Frame::Begin(_) | Frame::Flush(_)) => {}
                    Some(Frame::End(_)) if inbuf.is_empty() => return false,
                    Some(Frame::End(_)) => return true,
                    Some(Frame::Abort(_)) | None => return false,
                }
            }
            true
        };
        match tokio::time::timeout(timeout, sniff).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let _ = net.output.end(End::default());
                return;
            }
        }
        if inbuf.starts_with(h2::PREFACE) {
            Box::pin(h2::serve(shared, net, worker, inbuf.freeze(), None, scheme)).await;
            return;
        }
    }
    let outcome = H1::new(shared.clone(), worker.clone(), net, inbuf, scheme)
        .run()
        .await;
    if let Outcome::Upgrade(net, upgrade) = outcome {
        Box::pin(h2::serve(
            shared,
            net,
            worker,
            upgrade.rest.freeze(),
            Some(upgrade.head),
            scheme,
        ))
        .await;
    }
}
