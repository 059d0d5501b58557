//! Measures what the stream contract costs: a tcp server → echo binding pipeline against a
//! plain tokio echo server, side by side, with the same client.
//!
//! `cargo run --release -p binding-tcp --example echo_bench [MIB] [ROUND_TRIPS]`
//!
//! Each server runs on its own single-threaded runtime thread, like one engine worker; the
//! client runs on another. Throughput: MIB mebibytes sent and echoed back over one connection
//! (writer and reader concurrent). Latency: ROUND_TRIPS 64-byte ping-pongs, one at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use binding_api::binding::{Binding, Worker};
use binding_api::route::PortRange;
use binding_echo::EchoServer;
use binding_tcp::{TcpOptions, TcpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mebibytes: usize = args.next().map_or(Ok(1024), |a| a.parse())?;
    let round_trips: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;

    let baseline = start_baseline()?;
    let ours = start_ours()?;
    println!("| server | throughput MiB/s | round trip p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    let mut results = Vec::new();
    for (name, addr) in [
        ("plain tokio echo (baseline)", baseline),
        ("tcp → echo bindings", ours),
    ] {
        let (throughput, p50, p99) = measure(addr, mebibytes, round_trips)?;
        println!("| {name} | {throughput:.0} | {p50:.1} | {p99:.1} |");
        results.push((throughput, p50, p99));
    }
    let (base, ours) = (results[0], results[1]);
    println!(
        "\nratio ours/baseline: throughput {:.2}, p50 latency {:.2}, p99 latency {:.2}",
        ours.0 / base.0,
        ours.1 / base.1,
        ours.2 / base.2
    );
    Ok(())
}

fn start_baseline() -> Result<SocketAddr, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::task::spawn_local(async move {
                    // The same 64 KiB reads the tcp binding makes.
                    let (mut rd, mut wr) = socket.into_split();
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = rd.read(&mut buf).await {
                        if n == 0 || wr.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    });
    Ok(addr)
}

fn start_ours() -> Result<SocketAddr, BoxError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let options = TcpOptions {
        host: Some("127.0.0.1".into()),
        ports: vec![PortRange::single(port)],
    };
    let echo: Arc<dyn Binding> = Arc::new(EchoServer::new("echo"));
    let server = Arc::new(TcpServer::new("tcp", options, Vec::new(), Some(echo)));
    server.prepare()?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        let worker = Worker::new(0, 1, CancellationToken::new());
        local.block_on(&runtime, async move {
            server.start(&worker);
            std::future::pending::<()>().await;
        });
    });
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn measure(
    addr: SocketAddr,
    mebibytes: usize,
    round_trips: usize,
) -> Result<(f64, f64, f64), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Throughput: write and read concurrently on one connection.
        let socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let (mut rd, mut wr) = socket.into_split();
        let total = mebibytes << 20;
        let began = Instant::now();
        let writer = async move {
            let chunk = vec![0x5au8; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                wr.write_all(&chunk).await?;
                sent += chunk.len();
            }
            wr.shutdown().await?;
            Ok::<_, std::io::Error>(())
        };
        let reader = async move {
            let mut buf = vec![0u8; 256 * 1024];
            let mut got = 0;
            while got < total {
                let n = rd.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            Ok::<_, std::io::Error>(got)
        };
        let (written, got) = tokio::join!(writer, reader);
        written?;
        let got = got?;
        let elapsed = began.elapsed();
        assert_eq!(got, total, "every byte echoed");
        let throughput = got as f64 / (1 << 20) as f64 / elapsed.as_secs_f64();

        // Latency: one small message at a time.
        let mut socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let ping = [7u8; 64];
        let mut pong = [0u8; 64];
        let mut samples: Vec<Duration> = Vec::with_capacity(round_trips);
        for _ in 0..round_trips {
            let t = Instant::now();
            socket.write_all(&ping).await?;
            socket.read_exact(&mut pong).await?;
            samples.push(t.elapsed());
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        Ok((throughput, micros(at(0.50)), micros(at(0.99))))
    })
}
