//! Puts an sse server in front of a tiny application that sends three events, opens a request
//! stream into it as an http server would, and prints the response.
//!
//! `cargo run -p binding-sse --example events`

use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::ext::sse::SseDataEx;
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Data, End, Frame, Window};
use binding_api::stream::{self, Acceptor};
use binding_sse::{SseOptions, SseServer};
use tokio_util::sync::CancellationToken;

/// The application: three events with ids, then the end.
struct Countdown;

impl Binding for Countdown {
    fn name(&self) -> &str {
        "countdown"
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        worker.spawn(async move {
            // Keep `initial` open: dropping it would reset the subscription.
            let Acceptor {
                input: _initial,
                output: mut reply,
                ..
            } = stream;
            if reply.begin(Begin::default()).is_err() {
                return;
            }
            for n in (1..=3).rev() {
                let data = Data {
                    payload: format!("{n}...").into(),
                    ext: DataEx::Sse(SseDataEx {
                        id: Some(n.to_string().into()),
                        ..SseDataEx::default()
                    }),
                };
                if reply.ready(data.payload.len()).await.is_err() || reply.data(data).is_err() {
                    return;
                }
            }
            let _ = reply.end(End::default());
        });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&runtime, async {
        let app: Arc<dyn Binding> = Arc::new(Countdown);
        let sse = SseServer::new("sse", SseOptions::default(), Vec::new(), Some(app));
        let request = HttpBeginEx::new(vec![
            Header::new(":method", "GET"),
            Header::new(":scheme", "http"),
            Header::new(":authority", "localhost"),
            Header::new(":path", "/countdown"),
        ]);
        let (mut client, acceptor) = stream::open(Begin {
            ext: BeginEx::Http(request),
        });
        sse.new_stream(acceptor, &worker);
        client.input.window(Window {
            credit: 4096,
            padding: 0,
        })?;
        client.output.end(End::default())?;
        while let Some(frame) = client.input.frame().await {
            match frame {
                Frame::Begin(begin) => println!("response: {:?}", begin.ext),
                Frame::Data(data) => print!("{}", String::from_utf8_lossy(&data.payload)),
                other => println!("{other:?}"),
            }
            client.input.replenish();
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
