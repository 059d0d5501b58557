//! Drives the kafka client binding directly with streams, over a real tcp client, against the
//! broker of `e2e_tests::kafka::bootstrap()`.
#![allow(dead_code)]

use std::future::Future;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::{
    KafkaBeginEx, KafkaDataEx, KafkaHeader, KafkaMergedBeginEx, KafkaResetEx, Progress,
};
use binding_api::ext::{BeginEx, DataEx, FlushEx, ResetEx};
use binding_api::frame::{Begin, Frame, Window};
use binding_api::stream::{self, Initiator, WriterEvent};
use binding_kafka_client::config::Sasl;
use binding_kafka_client::{KafkaClient, KafkaOptions};
use binding_tcp::{TcpClient, TcpOptions};
use tokio_util::sync::CancellationToken;

/// A record as a test sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<String>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<String>)>,
    pub(crate) frames: usize,
    pub(crate) progress: Option<Arc<Progress>>,
}

impl Rec {
    pub(crate) fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or(b"<null>")).into_owned()
    }
}

/// How a read ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Caught up (flush), with the progress.
    CaughtUp(Arc<Progress>),
    /// Enough records.
    Enough,
    /// Refused with this extension and reason.
    Refused(Option<KafkaResetEx>, String),
    /// Timed out.
    Timeout,
}

pub(crate) fn bootstrap() -> (String, u16) {
    let addr = e2e_tests::kafka::bootstrap();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("port"))
}

/// Runs `f` on a current-thread runtime with a local set, as on a worker.
pub(crate) fn run<F: Future>(f: impl FnOnce(Worker) -> F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&rt, f(worker))
}

pub(crate) fn client(servers: Vec<(String, u16)>) -> Arc<dyn Binding> {
    client_with(servers, None)
}

pub(crate) fn client_with(servers: Vec<(String, u16)>, sasl: Option<Sasl>) -> Arc<dyn Binding> {
    let tcp: Arc<dyn Binding> = Arc::new(TcpClient::new("tcp", TcpOptions::default(), vec![]));
    Arc::new(KafkaClient::new(
        "kafka",
        KafkaOptions {
            servers,
            sasl,
            ..KafkaOptions::default()
        },
        tcp,
    ))
}

pub(crate) fn open(client: &Arc<dyn Binding>, worker: &Worker, ext: KafkaBeginEx) -> Initiator {
    let (initiator, acceptor) = stream::open(Begin {
        ext: BeginEx::Kafka(ext),
    });
    client.new_stream(acceptor, worker);
    initiator
}

pub(crate) fn merged(topic: &str) -> KafkaMergedBeginEx {
    KafkaMergedBeginEx {
        topic: topic.to_owned(),
        ..Default::default()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reads records until caught up (when `until_flush`), `want` records, or `timeout`.
pub(crate) async fn read(
    stream: &mut Initiator,
    window: u32,
    want: usize,
    until_flush: bool,
    timeout: Duration,
    out: &mut Vec<Rec>,
) -> Outcome {
    let _ = stream.input.window(Window {
        credit: window,
        padding: 0,
    });
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if out.len() >= want {
            return Outcome::Enough;
        }
        let frame = tokio::select! {
            f = stream.input.frame() => f,
            ev = stream.output.event() => match ev {
                WriterEvent::Reset(reset) => {
                    let ext = match reset.ext {
                        ResetEx::Kafka(ext) => Some(ext),
                        _ => None,
                    };
                    return Outcome::Refused(ext, reset.reason.to_string());
                }
                _ => continue,
            },
            _ = tokio::time::sleep_until(deadline) => return Outcome::Timeout,
        };
        stream.input.replenish();
        match frame {
            Some(Frame::Begin(_)) => {}
            Some(Frame::Data(data)) => match data.ext {
                DataEx::Kafka(KafkaDataEx::Record(r)) => out.push(Rec {
                    partition: r.partition,
                    offset: r.offset,
                    key: r.key.as_deref().map(text),
                    value: r.value_len.map(|_| data.payload.to_vec()),
                    headers: r
                        .headers
                        .iter()
                        .map(|KafkaHeader { name, value }| (text(name), value.as_deref().map(text)))
                        .collect(),
                    frames: 1,
                    progress: r.progress.clone(),
                }),
                DataEx::Kafka(KafkaDataEx::Continuation) => {
                    let last = out.last_mut().expect("a continuation follows a record");
                    last.value
                        .as_mut()
                        .expect("value")
                        .extend_from_slice(&data.payload);
                    last.frames += 1;
                }
                other => panic!("unexpected data ext {other:?}"),
            },
            Some(Frame::Flush(flush)) => {
                if let FlushEx::Kafka(f) = flush.ext
                    && until_flush
                {
                    return Outcome::CaughtUp(f.progress);
                }
            }
            Some(Frame::Abort(a)) => {
                let reset = stream.output.reset_reason();
                let ext = reset.and_then(|r| match r.ext {
                    ResetEx::Kafka(ext) => Some(ext),
                    _ => None,
                });
                return Outcome::Refused(ext, a.reason.to_string());
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Produces `lines` (`key<TAB>value`, or a plain value) with the console producer and extra
/// producer properties, in batches (no `--sync`).
pub(crate) fn produce_with(topic: &str, lines: &[String], properties: &[&str]) {
    let script = e2e_tests::kafka::script();
    let mut args: Vec<String> = vec![
        "produce".into(),
        "--bootstrap-server".into(),
        e2e_tests::kafka::bootstrap().into(),
        "--topic".into(),
        topic.into(),
        "--property".into(),
        "parse.key=true".into(),
        "--property".into(),
        "key.separator=\t".into(),
    ];
    for p in properties {
        args.push("--producer-property".into());
        args.push((*p).into());
    }
    let mut child = Command::new(script)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scripts/kafka produce");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for line in lines {
            writeln!(stdin, "{line}").expect("write");
        }
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
