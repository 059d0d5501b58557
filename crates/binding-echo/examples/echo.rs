//! Opens a stream to an echo binding, sends two data frames and an end, and prints what comes
//! back on the reply.
//!
//! `cargo run -p binding-echo --example echo`

use binding_api::binding::{Binding, Worker};
use binding_api::frame::{Begin, Data, End, Frame, Window};
use binding_api::stream;
use binding_echo::EchoServer;
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&runtime, async {
        let echo = EchoServer::new("echo");
        let (mut initiator, acceptor) = stream::open(Begin::default());
        echo.new_stream(acceptor, &worker);

        initiator.input.window(Window {
            credit: 1024,
            padding: 0,
        })?;
        initiator.output.ready(5).await?;
        initiator.output.data(Data::new("hello"))?;
        initiator.output.ready(6).await?;
        initiator.output.data(Data::new(", echo"))?;
        initiator.output.end(End::default())?;

        while let Some(frame) = initiator.input.frame().await {
            match frame {
                Frame::Data(data) => println!("reply data: {:?}", data.payload),
                other => println!("reply frame: {other:?}"),
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
