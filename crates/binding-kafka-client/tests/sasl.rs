//! SASL against the broker's SASL_PLAINTEXT listener (`scripts/kafka start` gives every broker
//! one, on its port + 2, with user `zilla` / `zilla-secret`): PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512 read a topic; a wrong password is refused with a reason naming the mechanism
//! and the user.

mod support;

use std::time::Duration;

use binding_api::ext::kafka::KafkaBeginEx;
use binding_kafka_client::config::{Mechanism, Sasl};
use e2e_tests::kafka::{create_topic, produce, unique_topic};
use support::{Outcome, Rec, bootstrap, client_with, merged, open, read, run};

fn sasl_server() -> Option<(String, u16)> {
    let (host, port) = bootstrap();
    let sasl = (host, port + 2);
    match std::net::TcpStream::connect((sasl.0.as_str(), sasl.1)) {
        Ok(_) => Some(sasl),
        Err(_) => {
            eprintln!("no SASL listener on {}:{}: skipped", sasl.0, sasl.1);
            None
        }
    }
}

fn read_with(topic: &str, server: (String, u16), sasl: Sasl) -> (Vec<Rec>, Outcome) {
    let begin = merged(topic);
    run(|worker| async move {
        let client = client_with(vec![server], Some(sasl));
        let mut stream = open(&client, &worker, KafkaBeginEx::Merged(begin));
        let mut out = Vec::new();
        let outcome = read(
            &mut stream,
            65536,
            usize::MAX,
            true,
            Duration::from_secs(30),
            &mut out,
        )
        .await;
        (out, outcome)
    })
}

fn user(mechanism: Mechanism, password: &str) -> Sasl {
    Sasl {
        mechanism,
        username: "zilla".into(),
        password: password.into(),
    }
}

#[test]
fn plain_and_scram_users_read_a_topic() {
    let Some(server) = sasl_server() else { return };
    let topic = unique_topic("sasl");
    create_topic(&topic, 1, &[]);
    produce(&topic, ["secret-1", "secret-2"]);
    for mechanism in [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ] {
        let (got, outcome) = read_with(&topic, server.clone(), user(mechanism, "zilla-secret"));
        assert!(
            matches!(outcome, Outcome::CaughtUp(_)),
            "{mechanism:?}: {outcome:?}"
        );
        let values: Vec<String> = got.iter().map(Rec::value_str).collect();
        assert_eq!(values, vec!["secret-1", "secret-2"], "{mechanism:?}");
    }
}

#[test]
fn a_wrong_password_is_refused_naming_mechanism_and_user() {
    let Some(server) = sasl_server() else { return };
    let topic = unique_topic("sasl-bad");
    create_topic(&topic, 1, &[]);
    for mechanism in [Mechanism::Plain, Mechanism::ScramSha512] {
        let (_, outcome) = read_with(&topic, server.clone(), user(mechanism, "wrong"));
        match outcome {
            Outcome::Refused(_, reason) => {
                assert!(reason.contains(mechanism.name()), "{reason}");
                assert!(reason.contains("'zilla'"), "{reason}");
            }
            other => panic!("{mechanism:?}: {other:?}"),
        }
    }
}
