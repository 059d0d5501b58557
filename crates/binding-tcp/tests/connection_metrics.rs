//! A tcp server counts the connections it accepts, those that closed, those open now, the
//! bytes read and written, and the connections the network failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, Worker};
use binding_api::route::PortRange;
use binding_echo::EchoServer;
use binding_tcp::{TcpOptions, TcpServer};
use tokio_util::sync::CancellationToken;
use zilla_metrics::catalog::{
    STREAM_ACTIVE_RECEIVED, STREAM_CLOSES_RECEIVED, STREAM_DATA_RECEIVED, STREAM_DATA_SENT,
    STREAM_ERRORS_RECEIVED, STREAM_ERRORS_SENT, STREAM_OPENS_RECEIVED,
};
use zilla_metrics::{Registry, Selection, Value};

#[test]
fn connections_accepted_closed_and_active() {
    let registry = Registry::new("test", &[]).unwrap();
    let selection = Selection {
        metrics: vec![
            &STREAM_OPENS_RECEIVED,
            &STREAM_CLOSES_RECEIVED,
            &STREAM_ACTIVE_RECEIVED,
            &STREAM_DATA_RECEIVED,
            &STREAM_DATA_SENT,
            &STREAM_ERRORS_RECEIVED,
            &STREAM_ERRORS_SENT,
        ],
        attributes: Vec::new(),
    };
    let options = TcpOptions {
        host: Some("127.0.0.1".into()),
        ports: vec![PortRange::single(0)],
    };
    let echo: Arc<dyn Binding> = Arc::new(EchoServer::new("echo"));
    let server = TcpServer::new("tcp", options, Vec::new(), Some(echo))
        .with_metrics(registry.binding("tcp", selection).unwrap());
    server.prepare().unwrap();
    let addr = server.local_addrs()[0];

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let shutdown = CancellationToken::new();
    let worker = Worker::new(0, 1, shutdown.clone());
    local.block_on(&runtime, async {
        server.start(&worker);
        // Two connections that close, one the client resets, one that stays open.
        let held = tokio::task::spawn_blocking(move || {
            for _ in 0..2 {
                let mut client = TcpStream::connect(addr).unwrap();
                client.write_all(b"x").unwrap();
                client.shutdown(std::net::Shutdown::Write).unwrap();
                let mut echoed = Vec::new();
                client.read_to_end(&mut echoed).unwrap();
                assert_eq!(echoed, b"x");
            }
            let mut reset = TcpStream::connect(addr).unwrap();
            reset.write_all(b"z").unwrap();
            let mut echoed = [0u8; 1];
            reset.read_exact(&mut echoed).unwrap();
            socket2::SockRef::from(&reset)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(reset);
            let mut open = TcpStream::connect(addr).unwrap();
            open.write_all(b"y").unwrap();
            let mut echoed = [0u8; 1];
            open.read_exact(&mut echoed).unwrap();
            open
        })
        .await
        .unwrap();
        let want = [
            (&STREAM_OPENS_RECEIVED, Value::Counter(4)),
            (&STREAM_CLOSES_RECEIVED, Value::Counter(3)),
            (&STREAM_ACTIVE_RECEIVED, Value::Gauge(1)),
            (&STREAM_DATA_RECEIVED, Value::Counter(4)),
            (&STREAM_DATA_SENT, Value::Counter(4)),
            (&STREAM_ERRORS_RECEIVED, Value::Counter(1)),
            (&STREAM_ERRORS_SENT, Value::Counter(0)),
        ];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let snapshot = registry.snapshot();
            let now: Vec<_> = want
                .iter()
                .map(|(metric, _)| snapshot.value(metric.name, "tcp", &[]).cloned())
                .collect();
            if now
                .iter()
                .zip(&want)
                .all(|(n, (_, w))| n.as_ref() == Some(w))
            {
                break;
            }
            assert!(Instant::now() < deadline, "{now:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        shutdown.cancel();
    });
}
