//! Describe streams against the real broker: a topic's own config, the names asked for, and
//! an unknown topic refused.

mod support;

use std::time::Duration;

use binding_api::ext::kafka::{KafkaBeginEx, KafkaDataEx, KafkaDescribeBeginEx, KafkaResetEx};
use binding_api::ext::{BeginEx, DataEx, ResetEx};
use binding_api::frame::{Frame, Window};
use e2e_tests::kafka::{create_topic, unique_topic};
use support::{bootstrap, client, open, run};

fn describe(topic: &str) -> KafkaBeginEx {
    KafkaBeginEx::Describe(KafkaDescribeBeginEx {
        topic: topic.to_owned(),
        configs: vec!["cleanup.policy".into(), "retention.bytes".into()],
    })
}

#[test]
fn a_describe_stream_gives_the_topic_config_asked_for() {
    let topic = unique_topic("describe");
    create_topic(
        &topic,
        1,
        &[("cleanup.policy", "compact"), ("retention.bytes", "4096")],
    );
    let servers = vec![bootstrap()];
    run(|worker| async move {
        let client = client(servers);
        let mut stream = open(&client, &worker, describe(&topic));
        stream
            .input
            .window(Window {
                credit: 1024,
                padding: 0,
            })
            .expect("window");
        let wait = Duration::from_secs(30);
        let begin = tokio::time::timeout(wait, stream.input.frame()).await;
        let Ok(Some(Frame::Begin(begin))) = begin else {
            panic!("expected the reply begin, got {begin:?}");
        };
        assert!(matches!(
            begin.ext,
            BeginEx::Kafka(KafkaBeginEx::Reply(ref r)) if r.topic == topic
        ));
        let data = tokio::time::timeout(wait, stream.input.frame()).await;
        let Ok(Some(Frame::Data(data))) = data else {
            panic!("expected the configs, got {data:?}");
        };
        let DataEx::Kafka(KafkaDataEx::Configs(configs)) = data.ext else {
            panic!("expected configs, got {:?}", data.ext);
        };
        assert!(data.payload.is_empty());
        assert_eq!(configs.get("cleanup.policy"), Some("compact"));
        assert_eq!(configs.get("retention.bytes"), Some("4096"));
        assert_eq!(configs.configs.len(), 2, "only the names asked for");

        let mut unknown = open(&client, &worker, describe("no-such-topic-describe"));
        let end = tokio::time::timeout(wait, unknown.input.frame()).await;
        assert!(matches!(end, Ok(Some(Frame::Abort(_)))), "got {end:?}");
        let reset = unknown.output.reset_reason().expect("reset");
        assert!(matches!(
            reset.ext,
            ResetEx::Kafka(KafkaResetEx::UnknownTopic { .. })
        ));
    });
}
