//! `zilla-loadgen`: the benchmark load generator. It opens N Server-Sent Events subscribers
//! (HTTP/1.1 or HTTP/2, plain or TLS, spread over loopback source addresses), produces paced
//! traffic to Kafka or to the `sse-baseline` broadcaster, and measures deliveries/s,
//! produce-to-receive latency, lost and duplicated events, the target's memory and CPU, and the
//! broker's fetch requests. Scenarios: `idle`, `fanout`, `filtered`, `reconnect`, `replay`.
//!
//! ```text
//! sse-baseline --listen 127.0.0.1:7200 &
//! zilla-loadgen fanout --url 'http://127.0.0.1:7200/events/{key}' -n 1000 \
//!     --produce http://127.0.0.1:7200/publish-stream --rate 1000 --size 256 --duration 10 \
//!     --pid $(pgrep -n sse-baseline) --label baseline --json fanout.json
//! ```
//! See the crate's README for every flag and for driving zilla-rs and Centrifugo.

mod chunked;
mod cli;
mod h1;
mod h2;
mod net;
mod payload;
mod procstat;
mod produce;
mod report;
mod run;
mod sse;
mod stats;
mod subscriber;
mod template;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zilla-loadgen: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let report = match runtime.block_on(run::run(&args)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("zilla-loadgen: {e}");
            std::process::exit(1);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json
        && let Err(e) = std::fs::write(path, report.json())
    {
        eprintln!("zilla-loadgen: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    // Subscriber tasks may still be closing; they hold nothing worth waiting for.
    runtime.shutdown_background();
}
