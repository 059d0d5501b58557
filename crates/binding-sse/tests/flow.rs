//! Property test of the server as a whole: whatever the events (fragmented anyhow) and however
//! the client grants credit, the application never holds more credit than the buffer, the
//! client never receives more than it granted, and what it receives parses back (WHATWG) into
//! exactly the events sent.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::ext::sse::SseDataEx;
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Data, End, Frame, Window};
use binding_api::stream::{self, Acceptor};
use binding_sse::{SseOptions, SseServer};
use proptest::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[path = "support/whatwg.rs"]
mod whatwg;

struct App(mpsc::UnboundedSender<Acceptor>);

impl Binding for App {
    fn name(&self) -> &str {
        "app"
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        let _ = self.0.send(stream);
    }
}

const BUFFER: u32 = 1024;

#[derive(Clone, Debug)]
struct Event {
    id: String,
    data: Vec<u8>,
    cuts: Vec<usize>,
}

fn event() -> impl Strategy<Value = Event> {
    (
        "[a-z0-9]{1,8}",
        prop::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), b'a'..=b'z'],
            0..2500,
        ),
        prop::collection::vec(1usize..1024, 1..4),
    )
        .prop_map(|(id, data, cuts)| Event { id, data, cuts })
}

/// Runs one subscription: the application sends `events`, the client grants credit in the
/// sizes of `grants` (cycled) and reads. Returns the bytes the client received.
fn run(events: Vec<Event>, grants: Vec<u32>) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let app: Arc<dyn Binding> = Arc::new(App(tx));
        let options = SseOptions {
            buffer: BUFFER,
            heartbeat: None,
            ..SseOptions::default()
        };
        let sse = SseServer::new("sse", options, Vec::new(), Some(app));
        let worker = Worker::new(0, 1, CancellationToken::new());
        let request = HttpBeginEx::new(vec![
            Header::new(":method", "GET"),
            Header::new(":path", "/"),
        ]);
        let (mut client, acceptor) = stream::open(Begin {
            ext: BeginEx::Http(request),
        });
        sse.new_stream(acceptor, &worker);
        client.output.end(End::default()).unwrap();
        let Acceptor {
            input: _initial,
            output: mut reply,
            ..
        } = rx.recv().await.unwrap();
        reply.begin(Begin::default()).unwrap();
        let producer = tokio::task::spawn_local(async move {
            for event in events {
                let mut rest = &event.data[..];
                let mut first = true;
                for &cut in event.cuts.iter().cycle() {
                    let take = cut.min(rest.len());
                    let continues = take < rest.len();
                    reply.ready(take).await.unwrap();
                    assert!(reply.credit() <= u64::from(BUFFER), "more than the buffer");
                    let ext = SseDataEx {
                        id: first.then(|| event.id.as_str().into()),
                        continues,
                        ..SseDataEx::default()
                    };
                    reply
                        .data(Data {
                            payload: rest[..take].to_vec().into(),
                            ext: DataEx::Sse(ext),
                        })
                        .unwrap();
                    rest = &rest[take..];
                    first = false;
                    if !continues {
                        break;
                    }
                }
            }
            reply.end(End::default()).unwrap();
        });
        let mut received = Vec::new();
        let mut granted: u64 = 0;
        for &grant in grants.iter().cycle() {
            client
                .input
                .window(Window {
                    credit: grant,
                    padding: 0,
                })
                .unwrap();
            granted += u64::from(grant);
            tokio::time::sleep(Duration::from_millis(1)).await;
            let mut ended = false;
            while let Some(frame) = client.input.try_frame() {
                match frame {
                    Frame::Data(data) => received.extend_from_slice(&data.payload),
                    Frame::End(_) => ended = true,
                    Frame::Begin(_) | Frame::Flush(_) => {}
                    Frame::Abort(abort) => panic!("aborted: {abort:?}"),
                }
            }
            assert!(received.len() as u64 <= granted, "received past credit");
            if ended {
                break;
            }
        }
        producer.await.unwrap();
        received
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn events_arrive_whole_within_credit_and_buffer(
        events in prop::collection::vec(event(), 0..5),
        grants in prop::collection::vec(1u32..700, 1..6),
    ) {
        let received = run(events.clone(), grants);
        let parsed = whatwg::parse(&received);
        prop_assert_eq!(parsed.retry, Some(2000));
        prop_assert_eq!(parsed.events.len(), events.len());
        for (got, sent) in parsed.events.iter().zip(&events) {
            let data = String::from_utf8_lossy(&sent.data)
                .replace("\r\n", "\n")
                .replace('\r', "\n");
            prop_assert_eq!(&got.data, &data);
            prop_assert_eq!(&got.last_event_id, &sent.id);
        }
    }
}
