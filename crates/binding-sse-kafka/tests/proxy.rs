//! The proxy between a scripted SSE side and a scripted Kafka exit, at the stream level.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::kafka::{
    Condition, KafkaBeginEx, KafkaDataEx, KafkaFlushEx, KafkaHeader, KafkaMergedBeginEx,
    KafkaRecordEx, KafkaReplyBeginEx, KafkaResetEx, Progress, StartPosition,
};
use binding_api::ext::sse::{SseBeginEx, SseDataEx, SseFlushEx};
use binding_api::ext::{BeginEx, DataEx, FlushEx, ResetEx};
use binding_api::frame::{Begin, Data, Flush, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::guard::{Authorization, GuardRefusal, Session};
use binding_api::stream::{self, Acceptor, Initiator};
use binding_sse_kafka::SseKafkaFactory;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use zilla_config::factory::{BindingConfig, BindingFactory, Kind, RouteConfig};
use zilla_config::parse;

/// A Kafka exit that hands every stream it gets to the test.
#[derive(Default)]
struct KafkaExit {
    streams: Mutex<Vec<Acceptor>>,
    opened: tokio::sync::Notify,
}

impl Binding for KafkaExit {
    fn name(&self) -> &str {
        "kafka"
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        self.streams.lock().unwrap().push(stream);
        self.opened.notify_one();
    }
}

impl KafkaExit {
    async fn next(&self) -> Acceptor {
        loop {
            if let Some(stream) = self.streams.lock().unwrap().pop() {
                return stream;
            }
            tokio::time::timeout(Duration::from_secs(5), self.opened.notified())
                .await
                .expect("no kafka stream was opened");
        }
    }
}

fn proxy(with: &str, exit: Arc<KafkaExit>) -> Arc<dyn Binding> {
    proxy_guarded(with, &[], exit)
}

/// A proxy whose one route is guarded by `guarded` (guard, roles).
fn proxy_guarded(
    with: &str,
    guarded: &[(&str, &[&str])],
    exit: Arc<KafkaExit>,
) -> Arc<dyn Binding> {
    let yaml = format!(
        "- when:\n    - path: /{{topic}}\n  exit: kafka\n  with:\n{}\n",
        with.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let routes_node = parse(&yaml).unwrap();
    let route = &routes_node.as_seq().unwrap()[0];
    let routes = vec![RouteConfig {
        mark: route.mark,
        when: route.get("when").unwrap().as_seq().unwrap().to_vec(),
        exit: Some("kafka".into()),
        with: route.get("with").cloned(),
        guarded: guarded
            .iter()
            .map(|(guard, roles)| {
                (
                    guard.to_string(),
                    roles.iter().map(|r| r.to_string()).collect(),
                )
            })
            .collect(),
    }];
    let mut exits = std::collections::BTreeMap::new();
    exits.insert("kafka".to_owned(), exit as Arc<dyn Binding>);
    let config = BindingConfig {
        name: "sse_kafka",
        kind: Kind::Proxy,
        mark: route.mark,
        options: None,
        routes: &routes,
        exit: None,
        vault: None,
        exits: &exits,
        vaults: &Default::default(),
        guards: &Default::default(),
        base: std::path::Path::new("."),
        run: &Default::default(),
        metrics: &Default::default(),
    };
    SseKafkaFactory.build(&config).unwrap()
}

fn subscribe(path: &str, last_event_id: Option<&str>) -> (Initiator, Acceptor) {
    subscribe_with_query(path, None, last_event_id)
}

fn subscribe_as(path: &str, authorization: Authorization) -> (Initiator, Acceptor) {
    stream::open(Begin {
        ext: BeginEx::Sse(Box::new(SseBeginEx {
            path: path.into(),
            authorization,
            ..SseBeginEx::default()
        })),
    })
}

/// A session of guard `jwt` for alice, of tenant acme, with `roles`.
fn alice(roles: &[&str]) -> Authorization {
    Authorization::Verified(Arc::new(Session {
        guard: "jwt".into(),
        identity: Some("alice".into()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        attributes: [("tenant".to_owned(), "acme".to_owned())].into(),
        expires_at: std::time::SystemTime::now(),
        challenge_at: None,
        live: None,
    }))
}

fn subscribe_with_query(
    path: &str,
    query: Option<&str>,
    last_event_id: Option<&str>,
) -> (Initiator, Acceptor) {
    stream::open(Begin {
        ext: BeginEx::Sse(Box::new(SseBeginEx {
            scheme: "http".into(),
            authority: "localhost".into(),
            path: path.into(),
            query: query.map(str::to_owned),
            last_event_id: last_event_id.map(str::to_owned),
            timestamp: false,
            authorization: Default::default(),
        })),
    })
}

fn merged(acceptor: &Acceptor) -> KafkaMergedBeginEx {
    match &acceptor.begin.ext {
        BeginEx::Kafka(KafkaBeginEx::Merged(m)) => m.clone(),
        other => panic!("expected a merged begin, got {other:?}"),
    }
}

fn record(
    partition: i32,
    offset: i64,
    key: Option<&str>,
    value: Option<&str>,
    progress: &[(i32, i64)],
) -> Data {
    Data {
        payload: Bytes::from(value.unwrap_or("").to_owned()),
        ext: DataEx::Kafka(KafkaDataEx::Record(KafkaRecordEx {
            partition,
            offset,
            timestamp: 1_700_000_000_000,
            key: key.map(|k| Bytes::from(k.to_owned())),
            headers: Default::default(),
            value_len: value.map(|v| v.len() as u32),
            high_watermark: offset + 1,
            progress: Some(Arc::new(Progress {
                partitions: progress.to_vec(),
            })),
        })),
    }
}

async fn event(sse: &mut Initiator) -> (SseDataEx, Bytes) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), sse.input.frame()).await {
            Ok(Some(Frame::Data(Data {
                payload,
                ext: DataEx::Sse(ex),
            }))) => {
                sse.input.replenish();
                return (ex, payload);
            }
            Ok(Some(Frame::Begin(_) | Frame::Flush(_))) => sse.input.replenish(),
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

fn run<F: std::future::Future<Output = ()>>(test: impl FnOnce(Worker) -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&runtime, test(worker));
}

fn kafka_begin(topic: &str, partitions: Vec<i32>) -> Begin {
    Begin {
        ext: BeginEx::Kafka(KafkaBeginEx::Reply(KafkaReplyBeginEx {
            topic: topic.into(),
            partitions,
        })),
    }
}

#[test]
fn records_become_events_with_zilla_ids() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/events", None);
        sse.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        let m = merged(&kafka);
        assert_eq!(m.topic, "events");
        assert_eq!(m.default_start, StartPosition::Earliest);
        assert!(m.partitions.is_empty());
        kafka
            .output
            .begin(kafka_begin("events", vec![0, 1]))
            .unwrap();
        kafka.output.ready(64).await.unwrap();
        kafka
            .output
            .data(record(
                0,
                1,
                Some("key"),
                Some("Hello, world"),
                &[(0, 2), (1, 1)],
            ))
            .unwrap();
        kafka.output.ready(64).await.unwrap();
        kafka
            .output
            .data(record(0, 2, Some("key"), None, &[(0, 3), (1, 1)]))
            .unwrap();

        let (ex, payload) = event(&mut sse).await;
        assert_eq!(ex.id.as_deref(), Some("AQQABAIC"));
        assert_eq!(ex.event_type, None);
        assert!(!ex.continues);
        assert_eq!(&payload[..], b"Hello, world");
        let (ex, payload) = event(&mut sse).await;
        assert_eq!(ex.id.as_deref(), Some("AQQABgIC"));
        assert_eq!(ex.event_type.as_deref(), Some("delete"));
        assert_eq!(&payload[..], b"a2V5");
    });
}

#[test]
fn key_format_and_etag() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let with = "topic: ${params.topic}\nevent:\n  id: '[\"${base64(key)}\",\"${etag}\"]'";
        let proxy = proxy(with, exit.clone());
        let (mut sse, acceptor) = subscribe("/events", None);
        sse.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        kafka
            .output
            .begin(kafka_begin("events", vec![0, 1]))
            .unwrap();
        let mut data = record(0, 1, Some("key"), Some("v"), &[(0, 2), (1, 1)]);
        if let DataEx::Kafka(KafkaDataEx::Record(r)) = &mut data.ext {
            r.headers = vec![KafkaHeader {
                name: Bytes::from_static(b"etag"),
                value: Some(Bytes::from_static(b"revision=42")),
            }]
            .into();
        }
        kafka.output.ready(64).await.unwrap();
        kafka.output.data(data).unwrap();
        kafka.output.ready(64).await.unwrap();
        kafka
            .output
            .data(record(1, 1, None, Some("w"), &[(0, 2), (1, 2)]))
            .unwrap();
        let (ex, _) = event(&mut sse).await;
        assert_eq!(ex.id.as_deref(), Some(r#"["a2V5","AQQABAIC/revision=42"]"#));
        let (ex, _) = event(&mut sse).await;
        assert_eq!(ex.id.as_deref(), Some(r#"[null,"AQQABAIE"]"#));
    });
}

#[test]
fn resumes_from_last_event_id_and_filters_from_params() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let with =
            "topic: events\nfilters:\n  - key: ${params.topic}\n    headers:\n      tag: nasdaq";
        let proxy = proxy(with, exit.clone());
        let (_sse, acceptor) = subscribe("/AAPL", Some(r#"["a2V5","AQQABAIC/revision=42"]"#));
        proxy.new_stream(acceptor, &worker);
        let kafka = exit.next().await;
        let m = merged(&kafka);
        assert_eq!(m.topic, "events");
        assert_eq!(
            m.partitions,
            vec![(0, StartPosition::Offset(2)), (1, StartPosition::Offset(1))]
        );
        assert_eq!(
            m.default_start,
            StartPosition::Earliest,
            "partitions not in the id start earliest"
        );
        assert_eq!(m.filters.len(), 1);
        assert_eq!(
            m.filters[0].conditions,
            vec![
                Condition::Key(Bytes::from_static(b"AAPL")),
                Condition::Header {
                    name: Bytes::from_static(b"tag"),
                    value: Bytes::from_static(b"nasdaq")
                },
            ]
        );
    });
}

#[test]
fn malformed_last_event_id_is_refused_as_invalid() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/events", Some("AwQABAIC"));
        proxy.new_stream(acceptor, &worker);
        match sse.output.reset_reason() {
            Some(reset) => {
                assert_eq!(reset.reason.kind, ReasonKind::Invalid);
                assert!(
                    reset.reason.detail.contains("unknown progress kind 3"),
                    "{}",
                    reset.reason
                );
            }
            None => panic!("expected a refusal"),
        }
        assert!(
            exit.streams.lock().unwrap().is_empty(),
            "no Kafka stream for a bad id"
        );
        assert!(matches!(sse.input.try_frame(), Some(Frame::Abort(_))));
    });
}

#[test]
fn unknown_topic_is_refused_before_the_response() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/nope", None);
        proxy.new_stream(acceptor, &worker);
        let kafka = exit.next().await;
        kafka.refuse(Reset {
            reason: Reason::new(ReasonKind::Refused, "unknown topic 'nope'"),
            ext: ResetEx::Kafka(KafkaResetEx::UnknownTopic {
                topic: "nope".into(),
            }),
        });
        match tokio::time::timeout(Duration::from_secs(5), sse.input.frame()).await {
            Ok(Some(Frame::Abort(abort))) => assert!(abort.reason.detail.contains("unknown topic")),
            other => panic!("expected the subscription refused, got {other:?}"),
        }
        assert_eq!(
            sse.output.reset_reason().map(|r| r.reason.kind),
            Some(ReasonKind::Refused)
        );
    });
}

#[test]
fn response_begins_when_kafka_is_slow_and_events_follow() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/events", None);
        sse.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        // No Kafka begin: the response still begins after the start timeout.
        match tokio::time::timeout(Duration::from_secs(5), sse.input.frame()).await {
            Ok(Some(Frame::Begin(_))) => {}
            other => panic!("expected the response to begin, got {other:?}"),
        }
        kafka.output.begin(kafka_begin("events", vec![0])).unwrap();
        kafka.output.ready(8).await.unwrap();
        kafka
            .output
            .data(record(0, 0, None, Some("late"), &[(0, 1)]))
            .unwrap();
        let (ex, payload) = event(&mut sse).await;
        assert_eq!(ex.id.as_deref(), Some("AQIAAg=="));
        assert_eq!(&payload[..], b"late");
    });
}

#[test]
fn large_values_stream_in_pieces() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/events", None);
        sse.input
            .window(Window {
                credit: 1 << 20,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        kafka.output.begin(kafka_begin("events", vec![0])).unwrap();
        let value = "x".repeat(100_000);
        let mut first = record(0, 0, None, Some(&value), &[(0, 1)]);
        first.payload = Bytes::from(value[..40_000].to_owned());
        kafka.output.ready(40_000).await.unwrap();
        kafka.output.data(first).unwrap();
        for chunk in [&value[40_000..80_000], &value[80_000..]] {
            kafka.output.ready(chunk.len()).await.unwrap();
            kafka
                .output
                .data(Data {
                    payload: Bytes::from(chunk.to_owned()),
                    ext: DataEx::Kafka(KafkaDataEx::Continuation),
                })
                .unwrap();
        }
        let (ex, a) = event(&mut sse).await;
        assert_eq!(ex.id.as_deref(), Some("AQIAAg=="));
        assert!(ex.continues);
        let (ex, b) = event(&mut sse).await;
        assert!(ex.continues && ex.id.is_none());
        let (ex, c) = event(&mut sse).await;
        assert!(!ex.continues);
        assert_eq!(a.len() + b.len() + c.len(), 100_000);
    });
}

#[test]
fn caught_up_flush_checkpoints_the_progress() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/events", None);
        sse.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        kafka.output.begin(kafka_begin("events", vec![0])).unwrap();
        kafka.output.ready(0).await.unwrap();
        kafka
            .output
            .flush(Flush {
                ext: FlushEx::Kafka(KafkaFlushEx {
                    progress: Arc::new(Progress {
                        partitions: vec![(0, 5)],
                    }),
                }),
            })
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), sse.input.frame()).await {
                Ok(Some(Frame::Begin(_))) => {}
                Ok(Some(Frame::Flush(Flush {
                    ext: FlushEx::Sse(SseFlushEx { id }),
                }))) => {
                    assert_eq!(id.as_deref(), Some("AQIACg=="));
                    break;
                }
                other => panic!("expected a flush, got {other:?}"),
            }
        }
    });
}

#[test]
fn offset_out_of_range_reopens_at_earliest_and_says_so() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/events", Some("AQIAAg=="));
        sse.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let kafka = exit.next().await;
        assert_eq!(
            merged(&kafka).partitions,
            vec![(0, StartPosition::Offset(1))]
        );
        kafka.refuse(Reset {
            reason: Reason::new(ReasonKind::Refused, "offset out of range"),
            ext: ResetEx::Kafka(KafkaResetEx::OffsetOutOfRange {
                partition: 0,
                requested: 1,
                earliest: 7,
                latest: 9,
            }),
        });
        let kafka = exit.next().await;
        assert_eq!(
            merged(&kafka).partitions,
            vec![(0, StartPosition::Offset(7))]
        );
        let (ex, payload) = event(&mut sse).await;
        assert_eq!(ex.event_type.as_deref(), Some("gap"));
        assert_eq!(
            &payload[..],
            br#"{"partition":0,"requested":1,"earliest":7}"#
        );
    });
}

/// A resume offset past a partition's end (the topic was deleted and recreated): the stream
/// reopens where the route's start policy says, after what the client was already sent in the
/// other partitions, and says so with a gap event.
fn past_the_end(route_start: &str, resumed_at: i64) {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let with = format!("topic: ${{params.topic}}\nstart: {route_start}");
        let proxy = proxy(&with, exit.clone());
        // [p0 → 1, p1 → 100]
        let id = binding_sse_kafka::event_id::encode_progress(&[(0, 1), (1, 100)]);
        let (mut sse, acceptor) = subscribe("/events", Some(&id));
        sse.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        kafka
            .output
            .begin(kafka_begin("events", vec![0, 1]))
            .unwrap();
        kafka.output.ready(64).await.unwrap();
        kafka
            .output
            .data(record(0, 1, None, Some("a"), &[(0, 2), (1, 100)]))
            .unwrap();
        let (_, payload) = event(&mut sse).await;
        assert_eq!(&payload[..], b"a");
        kafka.refuse(Reset {
            reason: Reason::new(ReasonKind::Refused, "offset out of range"),
            ext: ResetEx::Kafka(KafkaResetEx::OffsetOutOfRange {
                partition: 1,
                requested: 100,
                earliest: 0,
                latest: 3,
            }),
        });
        let kafka = exit.next().await;
        let mut starts = merged(&kafka).partitions;
        starts.sort_by_key(|(p, _)| *p);
        assert_eq!(
            starts,
            vec![
                (0, StartPosition::Offset(2)),
                (1, StartPosition::Offset(resumed_at))
            ]
        );
        let (ex, payload) = event(&mut sse).await;
        assert_eq!(ex.event_type.as_deref(), Some("gap"));
        let expected = format!(r#"{{"partition":1,"requested":100,"earliest":{resumed_at}}}"#);
        assert_eq!(&payload[..], expected.as_bytes());
    });
}

#[test]
fn past_the_end_resumes_from_the_start_on_a_historical_route() {
    past_the_end("historical", 0);
}

#[test]
fn past_the_end_resumes_from_the_end_on_a_live_route() {
    past_the_end("live", 3);
}

#[test]
fn client_going_away_closes_the_kafka_stream() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (sse, acceptor) = subscribe("/events", None);
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        kafka.output.begin(kafka_begin("events", vec![0])).unwrap();
        drop(sse);
        match tokio::time::timeout(Duration::from_secs(5), kafka.input.frame()).await {
            Ok(Some(Frame::End(_))) | Ok(None) => {}
            other => panic!("expected the kafka stream to end, got {other:?}"),
        }
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), kafka.output.event())
                .await
                .expect("kafka reply reset");
            if matches!(event, binding_api::stream::WriterEvent::Reset(_)) {
                break;
            }
        }
    });
}

#[test]
fn the_request_chooses_where_to_start_unless_it_resumes() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}\nstart: live", exit.clone());
        let cases = [
            (None, None, StartPosition::Latest),
            (Some("start=historical"), None, StartPosition::Earliest),
            (
                Some("since=2026-11-27T12:00:00Z"),
                None,
                StartPosition::Timestamp(1_795_780_800_000),
            ),
            (Some("start=1000"), None, StartPosition::Timestamp(1000)),
            (
                Some("start=live"),
                Some("AQIAAg=="),
                StartPosition::Earliest,
            ),
        ];
        for (query, last_event_id, expected) in cases {
            let (_sse, acceptor) = subscribe_with_query("/events", query, last_event_id);
            proxy.new_stream(acceptor, &worker);
            let kafka = exit.next().await;
            assert_eq!(
                merged(&kafka).default_start,
                expected,
                "{query:?} {last_event_id:?}"
            );
        }
        let (sse, acceptor) = subscribe_with_query("/events", Some("start=yesterday"), None);
        proxy.new_stream(acceptor, &worker);
        let reset = sse.output.reset_reason().expect("refused");
        assert_eq!(reset.reason.kind, ReasonKind::Invalid);
        assert!(
            reset.reason.detail.contains("invalid start parameter"),
            "{}",
            reset.reason
        );
    });
}

#[test]
fn a_cache_gap_becomes_a_gap_event() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let proxy = proxy("topic: ${params.topic}", exit.clone());
        let (mut sse, acceptor) = subscribe("/events", None);
        sse.input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        proxy.new_stream(acceptor, &worker);
        let mut kafka = exit.next().await;
        kafka.output.begin(kafka_begin("events", vec![0])).unwrap();
        kafka.output.ready(0).await.unwrap();
        kafka
            .output
            .flush(Flush {
                ext: FlushEx::KafkaGap(binding_api::ext::kafka::KafkaGapEx {
                    partition: 0,
                    from: 3,
                    to: 9,
                }),
            })
            .unwrap();
        let (ex, payload) = event(&mut sse).await;
        assert_eq!(ex.event_type.as_deref(), Some("gap"));
        assert_eq!(
            &payload[..],
            br#"{"partition":0,"requested":3,"earliest":9}"#
        );
    });
}

#[test]
fn the_session_fills_topic_key_and_headers() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let with = "topic: ${guarded['jwt'].attributes.tenant}-${params.topic}\n\
                    filters:\n  - key: ${guarded['jwt'].identity}\n    headers:\n      \
                    owner: ${guarded['jwt'].identity}\n      other: x${guarded['other'].identity}";
        let proxy = proxy(with, exit.clone());
        let (_sse, acceptor) = subscribe_as("/events", alice(&[]));
        proxy.new_stream(acceptor, &worker);
        let m = merged(&exit.next().await);
        assert_eq!(m.topic, "acme-events");
        assert_eq!(
            m.filters[0].conditions,
            [
                Condition::Key(Bytes::from_static(b"alice")),
                Condition::Header {
                    name: Bytes::from_static(b"other"),
                    value: Bytes::from_static(b"x"),
                },
                Condition::Header {
                    name: Bytes::from_static(b"owner"),
                    value: Bytes::from_static(b"alice"),
                },
            ]
        );
        // Without a session (the route is not guarded) the values are empty, as in Zilla.
        let (_sse, acceptor) = subscribe_as("/events", Authorization::Anonymous);
        proxy.new_stream(acceptor, &worker);
        let m = merged(&exit.next().await);
        assert_eq!(m.topic, "-events");
        assert_eq!(m.filters[0].conditions[0], Condition::Key(Bytes::new()));
    });
}

#[test]
fn a_guarded_route_refuses_without_the_session_it_needs() {
    run(|worker| async move {
        let exit = Arc::new(KafkaExit::default());
        let with = "topic: ${params.topic}\nfilters:\n  - key: ${guarded['jwt'].identity}";
        let proxy = proxy_guarded(with, &[("jwt", &["read"])], exit.clone());
        let refused = |authorization| {
            let (sse, acceptor) = subscribe_as("/events", authorization);
            proxy.new_stream(acceptor, &worker);
            let reset = sse.output.reset_reason().expect("a refusal");
            (reset.reason.kind, reset.ext)
        };
        assert_eq!(
            refused(Authorization::Anonymous),
            (
                ReasonKind::Unauthorized,
                ResetEx::Guard(GuardRefusal::Unauthenticated {
                    guard: "jwt".into(),
                    rejected: None
                })
            )
        );
        let expired = Authorization::Rejected {
            guard: "jwt".into(),
            description: "the token expired",
        };
        assert!(matches!(
            refused(expired),
            (
                ReasonKind::Unauthorized,
                ResetEx::Guard(GuardRefusal::Unauthenticated {
                    rejected: Some(_),
                    ..
                })
            )
        ));
        assert_eq!(
            refused(alice(&["write"])),
            (
                ReasonKind::Forbidden,
                ResetEx::Guard(GuardRefusal::Forbidden {
                    guard: "jwt".into(),
                    missing: "read".into()
                })
            )
        );
        assert!(exit.streams.lock().unwrap().is_empty(), "no Kafka stream");
        let (_sse, acceptor) = subscribe_as("/events", alice(&["read"]));
        proxy.new_stream(acceptor, &worker);
        let m = merged(&exit.next().await);
        assert_eq!(
            m.filters[0].conditions[0],
            Condition::Key(Bytes::from_static(b"alice"))
        );
    });
}
