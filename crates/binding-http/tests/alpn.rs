//! A network stream that a tls binding would open with ALPN `h2` is served as HTTP/2 at once
//! (no preface sniffing) with `:scheme` `https`. The test plays the tls binding: it opens the
//! stream with `BeginEx::Tls` and bridges it to an `h2` client through an in-memory pipe.

use std::sync::{Arc, Mutex};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::HttpBeginEx;
use binding_api::ext::tls::TlsBeginEx;
use binding_api::frame::{Begin, Data, End, Frame, Window};
use binding_api::stream::{self, Acceptor};
use binding_http::{HttpOptions, HttpServer};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// An application that answers every request 200 with its `:scheme` as the body.
struct SchemeEcho {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Binding for SchemeEcho {
    fn name(&self) -> &str {
        "app"
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let BeginEx::Http(head) = &stream.begin.ext else {
            panic!("expected an http request");
        };
        let scheme = head.get(":scheme").unwrap_or("").to_owned();
        self.seen.lock().expect("not poisoned").push(scheme.clone());
        let Acceptor {
            output: mut reply, ..
        } = stream;
        worker.spawn(async move {
            let begin = Begin {
                ext: BeginEx::Http(HttpBeginEx::response(200, [])),
            };
            reply.begin(begin).expect("begin");
            reply.ready(scheme.len()).await.expect("credit");
            reply.data(Data::new(scheme)).expect("data");
            reply.end(End::default()).expect("end");
        });
    }
}

#[test]
fn alpn_h2_is_served_as_http2_with_https_scheme() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app: Arc<dyn Binding> = Arc::new(SchemeEcho { seen: seen.clone() });
    let server = HttpServer::new("http", HttpOptions::default(), Vec::new(), Some(app));
    local.block_on(&runtime, async {
        let begin = Begin {
            ext: BeginEx::Tls(TlsBeginEx {
                alpn: Some("h2".into()),
                ..TlsBeginEx::default()
            }),
        };
        let (initiator, acceptor) = stream::open(begin);
        server.new_stream(acceptor, &worker);
        let (client_io, bridge_io) = tokio::io::duplex(64 * 1024);
        let (mut from_client, mut to_client) = tokio::io::split(bridge_io);
        let mut to_server = initiator.output;
        let mut from_server = initiator.input;
        from_server
            .window(Window {
                credit: 64 * 1024,
                padding: 0,
            })
            .unwrap();
        tokio::task::spawn_local(async move {
            loop {
                to_server.ready(1).await.unwrap();
                let room = to_server.credit().min(16 * 1024) as usize;
                let mut buf = BytesMut::with_capacity(room);
                match (&mut from_client)
                    .take(room as u64)
                    .read_buf(&mut buf)
                    .await
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => to_server.data(Data::new(buf.freeze())).unwrap(),
                }
            }
        });
        tokio::task::spawn_local(async move {
            while let Some(frame) = from_server.frame().await {
                if let Frame::Data(data) = frame {
                    to_client.write_all(&data.payload).await.unwrap();
                    from_server.replenish();
                }
            }
        });
        // Straight to HTTP/2: the client sends its preface first, nothing else.
        let (mut client, connection) = h2::client::handshake(client_io).await.unwrap();
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        let request = http::Request::get("https://example.com/x")
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut got = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk: Bytes = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, b"https");
    });
    assert_eq!(*seen.lock().unwrap(), vec!["https".to_owned()]);
}
