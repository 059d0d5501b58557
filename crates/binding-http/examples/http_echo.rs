//! A tcp server on 127.0.0.1:12347 in front of an http server routed to an echo binding,
//! driven by a client in the same process: a POST comes back as the response body.
//!
//! `cargo run -p binding-http --example http_echo`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::route::PortRange;
use binding_echo::EchoServer;
use binding_http::{HttpOptions, HttpServer};
use binding_tcp::{TcpOptions, TcpServer};
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let echo: Arc<dyn Binding> = Arc::new(EchoServer::new("echo"));
    let http: Arc<dyn Binding> = Arc::new(HttpServer::new(
        "http",
        HttpOptions::default(),
        Vec::new(),
        Some(echo),
    ));
    let options = TcpOptions {
        host: Some("127.0.0.1".into()),
        ports: vec![PortRange::single(12347)],
    };
    let tcp = TcpServer::new("tcp", options, Vec::new(), Some(http));
    tcp.prepare()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let shutdown = CancellationToken::new();
    let worker = Worker::new(0, 1, shutdown.clone());
    local.block_on(&runtime, async {
        tcp.start(&worker);
        let response = tokio::task::spawn_blocking(|| -> std::io::Result<String> {
            let mut client = TcpStream::connect("127.0.0.1:12347")?;
            client.write_all(
                b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\
                  Connection: close\r\n\r\nhello, http",
            )?;
            let mut response = String::new();
            client.read_to_string(&mut response)?;
            Ok(response)
        })
        .await??;
        println!("{response}");
        shutdown.cancel();
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
