//! The sse server at stream level, with a scripted client (an http request stream) and
//! application, in virtual time: slow clients, memory bounds, heartbeats, going away.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::ext::sse::SseDataEx;
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Data, End, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{self, Acceptor, Initiator, WriterEvent};
use binding_sse::{SseOptions, SseServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An application binding that hands its streams to the test.
struct App(mpsc::UnboundedSender<Acceptor>);

impl Binding for App {
    fn name(&self) -> &str {
        "app"
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        let _ = self.0.send(stream);
    }
}

struct Setup {
    client: Initiator,
    app: Acceptor,
    worker: Worker,
}

fn get(path: &str) -> Begin {
    Begin {
        ext: BeginEx::Http(HttpBeginEx::new(vec![
            Header::new(":method", "GET"),
            Header::new(":scheme", "http"),
            Header::new(":authority", "localhost"),
            Header::new(":path", path.to_owned()),
        ])),
    }
}

/// A subscription whose application has begun its reply; the client has `credit`.
async fn subscribe(options: SseOptions, credit: u32) -> Setup {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app: Arc<dyn Binding> = Arc::new(App(tx));
    let sse = SseServer::new("sse", options, Vec::new(), Some(app));
    let worker = Worker::new(0, 1, CancellationToken::new());
    let (mut client, acceptor) = stream::open(get("/events"));
    sse.new_stream(acceptor, &worker);
    client.output.end(End::default()).unwrap();
    if credit > 0 {
        client.input.window(Window { credit, padding: 0 }).unwrap();
    }
    let mut app = rx.recv().await.unwrap();
    app.output.begin(Begin::default()).unwrap();
    match client.input.frame().await {
        Some(Frame::Begin(begin)) => {
            let BeginEx::Http(http) = begin.ext else {
                panic!("not http")
            };
            assert_eq!(http.status(), Some(200));
        }
        other => panic!("expected the response begin, got {other:?}"),
    }
    Setup {
        client,
        app,
        worker,
    }
}

/// Reads data until `n` bytes have arrived (granting the credit back as it goes).
async fn read(setup: &mut Setup, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        match setup.client.input.frame().await {
            Some(Frame::Data(data)) => got.extend_from_slice(&data.payload),
            other => panic!("expected data, got {other:?} after {got:?}"),
        }
        setup.client.input.replenish();
    }
    got
}

/// Waits for the application's reply to be reset, skipping window events.
async fn reset_reason(setup: &mut Setup) -> ReasonKind {
    loop {
        if let WriterEvent::Reset(reset) = setup.app.output.event().await {
            return reset.reason.kind;
        }
    }
}

fn event(payload: impl Into<bytes::Bytes>, continues: bool) -> Data {
    Data {
        payload: payload.into(),
        ext: DataEx::Sse(SseDataEx {
            continues,
            ..SseDataEx::default()
        }),
    }
}

fn local<F: std::future::Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, test);
}

#[test]
fn a_stalled_client_is_ended_and_memory_stays_bounded() {
    local(async {
        let options = SseOptions {
            buffer: 4096,
            stall_timeout: Duration::from_secs(30),
            heartbeat: None,
            ..SseOptions::default()
        };
        // The client grants 64 bytes and never reads again.
        let mut setup = subscribe(options, 64).await;
        let app_credit = setup.app.output.credit();
        assert_eq!(app_credit, 4096, "the application gets exactly the buffer");
        // The application writes as long as it is allowed to.
        let mut sent = 0usize;
        loop {
            let ready =
                tokio::time::timeout(Duration::from_secs(1), setup.app.output.ready(512)).await;
            if ready.is_err() {
                break;
            }
            setup.app.output.data(event(vec![b'x'; 512], true)).unwrap();
            sent += 512;
        }
        // What the server took is bounded by the buffer plus one encoding chunk.
        assert!(sent <= 4096 + 16 * 1024, "the server took {sent} bytes");
        // 29 s later nothing has happened; at 30 s the response ends cleanly.
        tokio::time::sleep(Duration::from_secs(28)).await;
        assert!(!setup.app.input.is_finished());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut frames = Vec::new();
        while let Some(frame) = setup.client.input.try_frame() {
            frames.push(frame);
        }
        assert!(
            matches!(frames.last(), Some(Frame::End(_))),
            "the response ends: {frames:?}"
        );
        assert!(matches!(
            setup.app.input.try_frame(),
            Some(Frame::Abort(abort)) if abort.reason.kind == ReasonKind::Timeout
        ));
        assert_eq!(reset_reason(&mut setup).await, ReasonKind::Timeout);
    });
}

#[test]
fn a_slow_client_that_keeps_reading_is_not_ended() {
    local(async {
        let options = SseOptions {
            buffer: 4096,
            stall_timeout: Duration::from_secs(5),
            heartbeat: None,
            ..SseOptions::default()
        };
        let mut setup = subscribe(options, 100).await;
        let preamble = read(&mut setup, 12).await;
        assert_eq!(preamble, b"retry:2000\n\n");
        let payload = vec![b'y'; 2000];
        setup.app.output.ready(2000).await.unwrap();
        setup.app.output.data(event(payload, false)).unwrap();
        // The client reads 100 bytes every 4 s: slower than the data, never stalled 5 s.
        let mut got = Vec::new();
        while got.len() < 2007 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            got.extend(read(&mut setup, 1).await);
        }
        assert_eq!(&got[..5], b"data:");
        assert_eq!(&got[got.len() - 2..], b"\n\n");
        assert!(!setup.app.input.is_finished());
    });
}

#[test]
fn heartbeats_when_idle_only() {
    local(async {
        let options = SseOptions {
            heartbeat: Some(Duration::from_secs(15)),
            ..SseOptions::default()
        };
        let mut setup = subscribe(options, 65536).await;
        assert_eq!(read(&mut setup, 12).await, b"retry:2000\n\n");
        tokio::time::sleep(Duration::from_secs(14)).await;
        assert!(setup.client.input.try_frame().is_none());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(read(&mut setup, 3).await, b":\n\n");
        // Inside a fragmented event no comment is written.
        setup.app.output.ready(1).await.unwrap();
        setup.app.output.data(event("a", true)).unwrap();
        assert_eq!(read(&mut setup, 6).await, b"data:a");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(setup.client.input.try_frame().is_none());
        setup.app.output.data(event("b", false)).unwrap();
        assert_eq!(read(&mut setup, 3).await, b"b\n\n");
        let _ = &setup.worker;
    });
}

#[test]
fn a_client_going_away_is_told_to_the_application() {
    local(async {
        let mut setup = subscribe(SseOptions::default(), 1024).await;
        setup
            .client
            .input
            .reset(Reset::new(ReasonKind::ConnectionLost, "connection closed"));
        assert_eq!(reset_reason(&mut setup).await, ReasonKind::ConnectionLost);
        assert!(matches!(
            setup.app.input.frame().await,
            Some(Frame::Abort(_))
        ));
    });
}

#[test]
fn the_application_refusing_gives_404() {
    local(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let app: Arc<dyn Binding> = Arc::new(App(tx));
        let sse = SseServer::new("sse", SseOptions::default(), Vec::new(), Some(app));
        let worker = Worker::new(0, 1, CancellationToken::new());
        let (mut client, acceptor) = stream::open(get("/nothing"));
        sse.new_stream(acceptor, &worker);
        let app = rx.recv().await.unwrap();
        app.refuse(Reset::new(ReasonKind::Refused, "no such topic"));
        match client.input.frame().await {
            Some(Frame::Begin(begin)) => {
                let BeginEx::Http(http) = begin.ext else {
                    panic!("not http")
                };
                assert_eq!(http.status(), Some(404));
            }
            other => panic!("expected a response, got {other:?}"),
        }
        assert!(matches!(client.input.frame().await, Some(Frame::End(_))));
    });
}

#[test]
fn an_application_abort_aborts_the_response() {
    local(async {
        let mut setup = subscribe(SseOptions::default(), 1024).await;
        assert_eq!(read(&mut setup, 12).await, b"retry:2000\n\n");
        setup
            .app
            .output
            .abort(Reason::new(ReasonKind::Unreachable, "kafka gone"))
            .unwrap();
        assert!(matches!(
            setup.client.input.frame().await,
            Some(Frame::Abort(_))
        ));
    });
}
