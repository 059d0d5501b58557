//! Subscribes to a ticker (as an sse server would), resuming after id 40, and prints three
//! events.
//!
//! `cargo run -p binding-ticker --example ticker`

use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::sse::SseBeginEx;
use binding_api::frame::{Begin, Frame, Window};
use binding_api::stream;
use binding_ticker::{Ticker, TickerOptions};
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&runtime, async {
        let options = TickerOptions {
            interval: Duration::from_millis(100),
            count: Some(43),
            ..TickerOptions::default()
        };
        let ticker = Ticker::new("ticker", options);
        let subscription = SseBeginEx {
            path: "/ticks".into(),
            last_event_id: Some("40".into()),
            ..SseBeginEx::default()
        };
        let (mut subscriber, acceptor) = stream::open(Begin {
            ext: BeginEx::Sse(Box::new(subscription)),
        });
        ticker.new_stream(acceptor, &worker);
        subscriber.input.window(Window {
            credit: 4096,
            padding: 0,
        })?;
        while let Some(frame) = subscriber.input.frame().await {
            match frame {
                Frame::Data(data) => println!("{:?}: {:?}", data.ext, data.payload),
                other => println!("{other:?}"),
            }
            subscriber.input.replenish();
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
