//! Reads a topic from the beginning until caught up, through a tcp client binding, and
//! prints the records per second and megabytes per second.
//!
//! ```text
//! scripts/kafka start                          # prints the bootstrap address last
//! cargo run --release -p binding-kafka-client --example consume -- 127.0.0.1:PORT TOPIC [--print]
//! ```

use std::sync::Arc;
use std::time::Instant;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::{KafkaBeginEx, KafkaDataEx, KafkaMergedBeginEx};
use binding_api::ext::{BeginEx, DataEx};
use binding_api::frame::{Begin, Frame, Window};
use binding_api::stream;
use binding_kafka_client::{KafkaClient, KafkaOptions};
use binding_tcp::{TcpClient, TcpOptions};
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, rest @ ..] = args.as_slice() else {
        return Err("usage: consume HOST:PORT TOPIC [--print]".into());
    };
    let print = rest.iter().any(|a| a == "--print");
    let (host, port) = bootstrap.rsplit_once(':').ok_or("bootstrap is host:port")?;
    let servers = vec![(host.to_owned(), port.parse()?)];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&runtime, async move {
        let tcp: Arc<dyn Binding> = Arc::new(TcpClient::new("tcp", TcpOptions::default(), vec![]));
        let kafka = KafkaClient::new(
            "kafka",
            KafkaOptions {
                servers,
                ..KafkaOptions::default()
            },
            tcp,
        );
        let begin = KafkaMergedBeginEx {
            topic: topic.clone(),
            ..Default::default()
        };
        let (mut stream, acceptor) = stream::open(Begin {
            ext: BeginEx::Kafka(KafkaBeginEx::Merged(begin)),
        });
        kafka.new_stream(acceptor, &worker);
        stream.input.window(Window {
            credit: 4 * 1024 * 1024,
            padding: 0,
        })?;
        let started = Instant::now();
        let (mut records, mut bytes) = (0u64, 0u64);
        while let Some(frame) = stream.input.frame().await {
            stream.input.replenish();
            match frame {
                Frame::Data(data) => {
                    if let DataEx::Kafka(KafkaDataEx::Record(r)) = &data.ext {
                        records += 1;
                        if print {
                            let value = String::from_utf8_lossy(&data.payload);
                            println!("{}:{} {value}", r.partition, r.offset);
                        }
                    }
                    bytes += data.payload.len() as u64;
                }
                Frame::Flush(_) => break,
                Frame::Abort(abort) => return Err(abort.reason.to_string().into()),
                _ => {}
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{records} records, {:.1} MB in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
            bytes as f64 / 1e6,
            records as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
        Ok(())
    })
}
