//! A tcp server on 127.0.0.1:12346 routed to an echo binding, driven by a client in the same
//! process: the bytes sent come back.
//!
//! `cargo run -p binding-tcp --example echo_server`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::route::PortRange;
use binding_echo::EchoServer;
use binding_tcp::{TcpOptions, TcpServer};
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = TcpOptions {
        host: Some("127.0.0.1".into()),
        ports: vec![PortRange::single(12346)],
    };
    let echo: Arc<dyn Binding> = Arc::new(EchoServer::new("echo"));
    let server = TcpServer::new("tcp", options, Vec::new(), Some(echo));
    server.prepare()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let shutdown = CancellationToken::new();
    let worker = Worker::new(0, 1, shutdown.clone());
    local.block_on(&runtime, async {
        server.start(&worker);
        let reply = tokio::task::spawn_blocking(|| -> std::io::Result<String> {
            let mut client = TcpStream::connect("127.0.0.1:12346")?;
            client.write_all(b"hello, tcp")?;
            client.shutdown(std::net::Shutdown::Write)?;
            let mut reply = String::new();
            client.read_to_string(&mut reply)?;
            Ok(reply)
        })
        .await??;
        println!("sent \"hello, tcp\", got back {reply:?}");
        shutdown.cancel();
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
