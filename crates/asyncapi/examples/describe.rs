//! Prints what an AsyncAPI 3.0 document offers: its servers and operations.
//!
//! ```sh
//! cargo run -p asyncapi --example describe -- examples/asyncapi.sse.kafka.proxy/specs/sse-asyncapi.yaml
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: describe FILE");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{path}: {err}");
            return ExitCode::from(2);
        }
    };
    let document = match asyncapi::parse(&text) {
        Ok(document) => document,
        Err(err) => {
            eprintln!("{path}:{err}");
            return ExitCode::from(2);
        }
    };
    println!("AsyncAPI {}", document.version);
    for server in &document.servers {
        println!(
            "server {}: {}://{}",
            server.name, server.protocol, server.host
        );
    }
    for operation in &document.operations {
        let channel = document.channel(operation);
        let sse = if operation.sse.is_some() {
            " (SSE)"
        } else {
            ""
        };
        println!(
            "operation {}: {:?} {}{sse}, {} filter(s)",
            operation.name,
            operation.action,
            channel.address,
            operation.filters.len()
        );
    }
    ExitCode::SUCCESS
}
