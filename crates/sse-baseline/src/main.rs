//! The `sse-baseline` binary: see the library's documentation and the crate's README.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use sse_baseline::{Baseline, HubLimits};
use tokio::net::{TcpListener, TcpSocket};

/// A plain hyper + tokio SSE broadcaster (no Kafka): the benchmarks' near-limit reference.
#[derive(Parser, Debug)]
#[command(name = "sse-baseline", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one; see the first line on stdout).
    #[arg(long, default_value = "127.0.0.1:7200")]
    listen: SocketAddr,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// Capacity of the all-stream's broadcast channel; a subscriber lagging further is
    /// disconnected.
    #[arg(long, default_value_t = 16_384)]
    channel_capacity: usize,
    /// Capacity of each key's broadcast channel (allocated per subscribed key).
    #[arg(long, default_value_t = 256)]
    key_capacity: usize,
    /// Events kept for resumption with Last-Event-ID.
    #[arg(long, default_value_t = 65_536)]
    history: usize,
    /// Also serve https (ALPN h2 and http/1.1) on this address (needs --tls-cert, --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_listen: Option<SocketAddr>,
    /// The PEM certificate chain for --tls-listen.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("cannot build the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error(transparent)]
    Tls(#[from] sse_baseline::TlsError),
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("sse-baseline: {e}");
        std::process::exit(1);
    }
}

/// Raises the open-file limit: every subscriber is a descriptor. Above the hard limit when the
/// process may (root), else to the hard limit.
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const WANTED: u64 = 262_144;
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: Some(WANTED),
        maximum: Some(WANTED),
    };
    if limit.maximum.is_some_and(|hard| hard < WANTED)
        && setrlimit(Resource::Nofile, raised).is_ok()
    {
        return;
    }
    // Keeping the lower limit is the only thing to do if this fails.
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

fn run(args: &Args) -> Result<(), Error> {
    raise_fd_limit();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.enable_all().build().map_err(Error::Runtime)?;
    runtime.block_on(serve(args))
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    // A long accept queue: thousands of subscribers connect at once in the benchmarks.
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| Error::Listen(addr, e))?;
    socket
        .set_reuseaddr(true)
        .and_then(|()| socket.bind(addr))
        .map_err(|e| Error::Listen(addr, e))?;
    let listener = socket.listen(65_535).map_err(|e| Error::Listen(addr, e))?;
    let local = listener.local_addr().map_err(|e| Error::Listen(addr, e))?;
    println!("listening on {local}");
    let _ = std::io::stdout().flush();
    Ok(listener)
}

async fn serve(args: &Args) -> Result<(), Error> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(sse_baseline::tls_config(cert, key)?),
        _ => None,
    };
    let baseline = Baseline::new(HubLimits {
        channel_capacity: args.channel_capacity,
        key_capacity: args.key_capacity,
        history: args.history,
    });
    let plain = listen(args.listen).await?;
    match (args.tls_listen, tls) {
        (Some(addr), Some(tls)) => {
            let secure = listen(addr).await?;
            tokio::join!(
                baseline.serve(plain, None),
                baseline.serve(secure, Some(tls))
            );
        }
        _ => baseline.serve(plain, None).await,
    }
    Ok(())
}
