//! The client against a scripted broker (an exit binding that answers Kafka requests from a
//! script): leadership errors refresh metadata and fetch again from the same offset; corrupt
//! record batches refuse the stream instead of panicking.

mod script;
mod support;

use std::sync::Arc;
use std::time::Duration;

use binding_api::binding::Binding;
use binding_api::ext::DataEx;
use binding_api::ext::kafka::KafkaBeginEx;
use binding_api::ext::kafka::KafkaDataEx;
use binding_api::frame::{Frame, Window};
use bytes::Bytes;
use script::{batch, client, consume, fetch_count, partition, scripted, scripted_with};
use support::{Outcome, merged, open, read, run};

#[test]
fn not_leader_refreshes_metadata_and_fetches_again_from_the_same_offset() {
    let broker = scripted(|n, offset| match (n, offset) {
        (1, 0) => partition(0, batch(0, &["a", "b"]), 5),
        (2, 2) => partition(6, Bytes::new(), 5), // NOT_LEADER_OR_FOLLOWER
        (3, 2) => partition(74, Bytes::new(), 5), // FENCED_LEADER_EPOCH
        (_, 2) => partition(0, batch(2, &["c", "d", "e"]), 5),
        (_, o) => partition(0, Bytes::new(), o),
    });
    let (values, outcome) = consume(broker.clone(), usize::MAX);
    assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
    assert_eq!(values, vec!["a", "b", "c", "d", "e"]);
    let log = broker.log.lock().expect("lock").clone();
    let metadata = log.iter().filter(|l| *l == "metadata").count();
    assert!(
        metadata >= 3,
        "metadata refreshed after each error: {log:?}"
    );
    let fetches: Vec<&String> = log.iter().filter(|l| l.starts_with("fetch")).collect();
    assert_eq!(fetches[..4], ["fetch 0", "fetch 2", "fetch 2", "fetch 2"]);
}

#[test]
fn streams_share_the_connections_to_a_broker() {
    let script = scripted(|_, offset| match offset {
        0 => partition(0, batch(0, &["a", "b"]), 2),
        o => partition(0, Bytes::new(), o),
    });
    let counted = script.clone();
    let values = run(|worker| async move {
        let client: Arc<dyn Binding> = client(script);
        let mut all = Vec::new();
        let mut streams: Vec<_> = (0..3)
            .map(|_| open(&client, &worker, KafkaBeginEx::Merged(merged("t"))))
            .collect();
        for stream in &mut streams {
            let mut out = Vec::new();
            let outcome = read(
                stream,
                65536,
                usize::MAX,
                true,
                Duration::from_secs(20),
                &mut out,
            )
            .await;
            assert!(matches!(outcome, Outcome::CaughtUp(_)), "{outcome:?}");
            all.extend(out.iter().map(|r| r.value_str()));
        }
        all
    });
    assert_eq!(values, ["a", "b", "a", "b", "a", "b"]);
    // One bootstrap connection (metadata) and two to the leader, node 1: one for ListOffsets,
    // one for the fetches of all three streams.
    assert_eq!(*counted.connections.lock().expect("lock"), 3);
}

#[test]
fn starts_are_asked_in_one_request_per_leader_beside_the_fetches() {
    // 64 partitions led by one broker: one ListOffsets for all of them (not one each), on a
    // connection no Fetch uses, so a start never waits behind another stream's long poll.
    let script = scripted_with(64, |_, o| partition(0, Bytes::new(), o));
    let counted = script.clone();
    let watched = script.clone();
    run(|worker| async move {
        let client: Arc<dyn Binding> = client(script);
        let mut streams = Vec::new();
        for _ in 0..2 {
            let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
            let begin = tokio::time::timeout(Duration::from_secs(10), stream.input.frame()).await;
            assert!(matches!(begin, Ok(Some(Frame::Begin(_)))), "{begin:?}");
            stream
                .input
                .window(Window {
                    credit: 65536,
                    padding: 0,
                })
                .expect("window");
            streams.push(stream);
        }
        // Until both streams have fetched.
        for _ in 0..200 {
            let fetches = fetch_count(&watched);
            if fetches >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let requests = counted.requests.lock().expect("lock").clone();
    let list_offsets: Vec<_> = requests.iter().filter(|r| r.0 == 2).collect();
    assert_eq!(list_offsets.len(), 2, "one per stream: {requests:?}");
    assert!(list_offsets.iter().all(|r| r.2 == 64), "{requests:?}");
    let fetch_conns: Vec<usize> = requests.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    assert!(!fetch_conns.is_empty(), "{requests:?}");
    assert!(
        list_offsets.iter().all(|r| !fetch_conns.contains(&r.1)),
        "ListOffsets shares a connection with Fetch: {requests:?}"
    );
}

#[test]
fn a_corrupt_batch_refuses_the_stream() {
    let broker = scripted(|_, _| {
        let mut bad = batch(0, &["x"]).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        partition(0, Bytes::from(bad), 1)
    });
    let (values, outcome) = consume(broker, usize::MAX);
    assert!(values.is_empty());
    match outcome {
        Outcome::Refused(_, reason) => assert!(reason.contains("CRC32C"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the window and padding, every record arrives whole and in order, in one frame
    /// when its value fits the room the window leaves, else split into continuations.
    #[test]
    fn any_credit_delivers_every_record_whole(
        sizes in proptest::collection::vec(0usize..3000, 1..10),
        window in 64u32..4096,
        padding in 0u32..64,
    ) {
        let values: Vec<String> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| char::from(b'a' + (i % 26) as u8).to_string().repeat(*n))
            .collect();
        let count = values.len() as i64;
        let batch_values = values.clone();
        let script = scripted(move |n, offset| {
            if n == 1 && offset == 0 {
                let refs: Vec<&str> = batch_values.iter().map(String::as_str).collect();
                partition(0, batch(0, &refs), count)
            } else {
                partition(0, Bytes::new(), count)
            }
        });
        let got = run(|worker| async move {
            let client = client(script);
            let mut stream = open(&client, &worker, KafkaBeginEx::Merged(merged("t")));
            stream.input.window(Window { credit: window, padding }).expect("window");
            let mut got: Vec<(Vec<u8>, usize)> = Vec::new();
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(10), stream.input.frame())
                    .await
                    .expect("a frame in time");
                stream.input.replenish();
                match frame {
                    Some(Frame::Data(data)) => {
                        assert!(data.payload.len() as u64 + u64::from(padding) <= u64::from(window));
                        match data.ext {
                            DataEx::Kafka(KafkaDataEx::Record(_)) => got.push((data.payload.to_vec(), 1)),
                            DataEx::Kafka(KafkaDataEx::Continuation) => {
                                let last = got.last_mut().expect("a record first");
                                last.0.extend_from_slice(&data.payload);
                                last.1 += 1;
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    Some(Frame::Flush(_)) => break got,
                    Some(Frame::Begin(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
        });
        proptest::prop_assert_eq!(got.len(), values.len());
        let room = (window - padding) as usize;
        for ((bytes, frames), want) in got.iter().zip(&values) {
            proptest::prop_assert_eq!(bytes, want.as_bytes());
            proptest::prop_assert_eq!(*frames == 1, want.len() <= room, "{} bytes in {} frames, room {}", want.len(), frames, room);
        }
    }
}
