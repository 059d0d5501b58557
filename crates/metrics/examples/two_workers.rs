//! Two worker threads record into their own cells; a scrape sums them and prints the
//! Prometheus text.
//!
//! `cargo run -p zilla-metrics --example two_workers`

use zilla_metrics::catalog::{
    HTTP_REQUEST_METHOD, HTTP_REQUEST_SIZE, STREAM_ACTIVE_RECEIVED, STREAM_OPENS_RECEIVED,
};
use zilla_metrics::{Attribute, AttributeValue, Registry, Selection};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::new("example", &[])?;
    let selection = Selection {
        metrics: vec![
            &STREAM_OPENS_RECEIVED,
            &STREAM_ACTIVE_RECEIVED,
            &HTTP_REQUEST_SIZE,
        ],
        attributes: vec![Attribute {
            name: "method".into(),
            value: AttributeValue::Source(&HTTP_REQUEST_METHOD),
        }],
    };
    let metrics = registry.binding("north_http_server", selection)?;
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                // Handles are made on the worker that records with them.
                let opens = metrics.counter(worker, &STREAM_OPENS_RECEIVED);
                let active = metrics.gauge(worker, &STREAM_ACTIVE_RECEIVED);
                let sizes = metrics.histograms(worker, &HTTP_REQUEST_SIZE);
                for request in 0..1000u64 {
                    opens.increment();
                    active.increment();
                    let method = if request % 3 == 0 { "POST" } else { "GET" };
                    sizes.get(&[method]).record(request);
                    active.decrement();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")?;
    }
    print!("{}", zilla_metrics::exposition::write(&registry.snapshot()));
    Ok(())
}
