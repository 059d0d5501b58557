//! A header block HPACK cannot decode ends the HTTP/2 connection with GOAWAY. RFC 9113 §4.3
//! asks for COMPRESSION_ERROR; the `h2` crate (0.4.20) sends PROTOCOL_ERROR and gives us no
//! way to choose (docs/architecture.md, "HPACK errors"). This test pins what `h2` does, so
//! that an `h2` upgrade that changes it is noticed and the docs are corrected.

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tls::TlsBeginEx;
use binding_api::frame::{Begin, Data, Frame, Window};
use binding_api::stream::{self, Acceptor};
use binding_http::{HttpOptions, HttpServer};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

/// An application no request should reach.
struct Unreachable;

impl Binding for Unreachable {
    fn name(&self) -> &str {
        "app"
    }

    fn new_stream(&self, _stream: Acceptor, _worker: &Worker) {
        panic!("a request with an undecodable header block reached the application");
    }
}

/// The frames in `bytes` as (type, flags, stream, payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        let payload = bytes[9..9 + len].to_vec();
        out.push((bytes[3], bytes[4], stream, payload));
        bytes = &bytes[9 + len..];
    }
    out
}

#[test]
fn an_hpack_decoding_error_ends_the_connection_with_h2s_goaway_code() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    let app: Arc<dyn Binding> = Arc::new(Unreachable);
    let server = HttpServer::new("http", HttpOptions::default(), Vec::new(), Some(app));
    let written = local.block_on(&runtime, async {
        let begin = Begin {
            ext: BeginEx::Tls(TlsBeginEx {
                alpn: Some("h2".into()),
                ..TlsBeginEx::default()
            }),
        };
        let (initiator, acceptor) = stream::open(begin);
        server.new_stream(acceptor, &worker);
        let mut to_server = initiator.output;
        let mut from_server = initiator.input;
        from_server
            .window(Window {
                credit: 64 * 1024,
                padding: 0,
            })
            .unwrap();
        // Preface, empty SETTINGS, then HEADERS on stream 1 (END_STREAM | END_HEADERS) whose
        // block is an indexed field with index 0: a decoding error (RFC 7541 §6.1).
        let mut client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        client.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        client.extend_from_slice(&[0, 0, 1, 1, 5, 0, 0, 0, 1, 0x80]);
        to_server.ready(client.len()).await.unwrap();
        to_server.data(Data::new(Bytes::from(client))).unwrap();
        let mut written = Vec::new();
        let wait = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while let Some(frame) = from_server.frame().await {
                match frame {
                    Frame::Data(data) => {
                        written.extend_from_slice(&data.payload);
                        from_server.replenish();
                    }
                    Frame::End(_) | Frame::Abort(_) => break,
                    _ => {}
                }
            }
        });
        wait.await.expect("the connection ends");
        written
    });
    let goaway: Vec<_> = frames(&written)
        .into_iter()
        .filter(|(kind, ..)| *kind == 7)
        .collect();
    assert_eq!(goaway.len(), 1, "{written:02x?}");
    let payload = &goaway[0].3;
    let last_stream = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
    assert_eq!(last_stream, 0);
    // PROTOCOL_ERROR (1), h2's choice; RFC 9113 §4.3 says COMPRESSION_ERROR (9).
    assert_eq!(
        code, 1,
        "h2 changed its GOAWAY code: update docs/architecture.md"
    );
}
