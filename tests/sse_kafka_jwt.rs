//! JWT-guarded SSE streams end to end, as Zilla's `sse.kafka.fanout.jwt`: the real binary
//! with `tests/configs/sse.kafka.jwt.yaml` (a jwt guard with an EC key made here, http
//! credentials from `Authorization: Bearer` or `?access_token=`, the sse route guarded by
//! `proxy:stream`, the Kafka key filtered by the token's `sub`), a real broker, curl, and
//! tokens signed here with ring.

use std::path::Path;
use std::time::Duration;

use e2e_tests::jwt::Issuer;
use e2e_tests::kafka::{self, Record};
use e2e_tests::sse::{curl, events};
use e2e_tests::zilla::Zilla;

const CONFIG: &str = "tests/configs/sse.kafka.jwt.yaml";

fn start(issuer: &Issuer) -> (Zilla, u16) {
    let port = e2e_tests::free_port();
    let (x, y) = issuer.public_point();
    let env = [
        ("PORT", port.to_string()),
        ("KAFKA_BOOTSTRAP", kafka::bootstrap().to_owned()),
        ("JWK_X", x),
        ("JWK_Y", y),
        // Requests are logged at debug level: the test checks no token reaches the log.
        ("ZILLA_LOG", "binding_http=debug,info".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (Zilla::start(Path::new(CONFIG), &env), port)
}

/// The response's head as curl prints it with `-D -` (body discarded).
fn head(url: &str, extra: &[&str]) -> String {
    let mut args = vec!["-D", "-", "-o", "/dev/null"];
    args.extend_from_slice(extra);
    curl(url, &args, 6).to_ascii_lowercase()
}

fn data(text: &str) -> Vec<String> {
    events(text).into_iter().map(|e| e.data).collect()
}

#[test]
fn each_user_streams_their_own_records_and_bad_tokens_are_refused() {
    let issuer = Issuer::new();
    let topic = kafka::unique_topic("jwt");
    kafka::create_topic(&topic, 2, &[]);
    kafka::produce(
        &topic,
        [
            Record::new("alice-1").with_key("alice"),
            Record::new("bob-1").with_key("bob"),
            Record::new("alice-2").with_key("alice"),
        ],
    );
    let (zilla, port) = start(&issuer);
    let url = format!("http://127.0.0.1:{port}/{topic}");
    let alice = issuer.token("alice", "proxy:stream", 300);
    let bob = issuer.token("bob", "read proxy:stream", 300);

    // Alice with the header (HTTP/1.1), Bob with the query parameter (h2c), both live.
    let bearer = format!("authorization: Bearer {alice}");
    let alice_url = url.clone();
    let alice_stream =
        std::thread::spawn(move || curl(&alice_url, &["--http1.1", "-H", &bearer], 8));
    let bob_url = format!("{url}?access_token={bob}");
    let bob_stream = std::thread::spawn(move || curl(&bob_url, &["--http2-prior-knowledge"], 8));
    std::thread::sleep(Duration::from_secs(3));
    kafka::produce(
        &topic,
        [
            Record::new("bob-2").with_key("bob"),
            Record::new("alice-3").with_key("alice"),
        ],
    );
    let alice_got = data(&alice_stream.join().expect("curl thread"));
    let bob_got = data(&bob_stream.join().expect("curl thread"));
    assert_eq!(alice_got, ["alice-1", "alice-2", "alice-3"], "alice");
    assert_eq!(
        bob_got,
        ["bob-1", "bob-2"],
        "bob never sees alice's, nor she his"
    );

    // No token: 401 with the guard's challenge.
    let none = head(&url, &[]);
    assert!(none.starts_with("http/1.1 401"), "{none}");
    assert!(
        none.contains("www-authenticate: bearer realm=\"authn_jwt\"\r\n"),
        "{none}"
    );
    // An expired token (past the 30 s clock skew): 401, invalid_token.
    let expired = issuer.token("alice", "proxy:stream", -120);
    let stale = head(&url, &["-H", &format!("authorization: Bearer {expired}")]);
    assert!(stale.starts_with("http/1.1 401"), "{stale}");
    assert!(
        stale.contains(
            "www-authenticate: bearer realm=\"authn_jwt\", error=\"invalid_token\", \
             error_description=\"the token expired\""
        ),
        "{stale}"
    );
    // Signed by another key: 401 as well.
    let forged = Issuer::new().token("alice", "proxy:stream", 300);
    let forged = head(&format!("{url}?access_token={forged}"), &[]);
    assert!(forged.starts_with("http/1.1 401"), "{forged}");
    // A valid token without the role: 403, over h2c too.
    let reader = issuer.token("carol", "read", 300);
    let denied = head(
        &url,
        &[
            "--http2-prior-knowledge",
            "-H",
            &format!("authorization: Bearer {reader}"),
        ],
    );
    assert!(denied.starts_with("http/2 403"), "{denied}");
    assert!(denied.contains("error=\"insufficient_scope\""), "{denied}");

    // The request log names the path but never a token.
    let log = zilla.log().join("\n");
    assert!(log.contains("access_token=(hidden)"), "{log}");
    assert!(!log.contains(&bob), "bob's token leaked into the log");
}
