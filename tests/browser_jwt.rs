//! `examples/sse.kafka.fanout.jwt` in headless Chromium (driven by tests/node/pages.mjs): the
//! example's page, served by zilla, gets tokens from a token endpoint run here (a key made
//! in the test signs them), subscribes with `EventSource` and `?access_token=`, answers the
//! guard's challenge with a POST of a fresh token and shows the user's records from a real
//! broker. Checked, over HTTP/1.1 (the POST comes on another connection than the stream's):
//!
//! - a stream whose challenge is answered goes on past its first token's expiry on the same
//!   connection, every record produced before, during and after the challenge arriving once
//!   and in order;
//! - a stream whose challenge goes unanswered ends at its token's expiry, and EventSource's
//!   reconnection with the expired token gets 401 (the page stops);
//! - each user sees only their records; an expired token gets 401, a token without the role
//!   403.
//!
//! The example's configuration is used as it is, with its port, JWKS file and file location
//! moved, its `challenge` shortened to 3 s and the test's topic routed like `/events`.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e_tests::jwt::Issuer;
use e2e_tests::kafka::{self, Record};
use e2e_tests::zilla::Zilla;
use serde_json::Value;

const EXAMPLE: &str = "examples/sse.kafka.fanout.jwt";

/// The example's configuration on `port`, with `jwks` as its key file, its page from the
/// example's `www/`, a challenge 3 s before expiry and `/jwtb-*` (the test's topics) routed
/// like `/events`; returns its path.
fn config(dir: &Path, port: u16, jwks: &str) -> PathBuf {
    let root = e2e_tests::repo_root();
    std::fs::create_dir_all(dir).expect("temp dir");
    std::fs::write(dir.join("jwks.json"), jwks).expect("jwks.json");
    let text = std::fs::read_to_string(root.join(EXAMPLE).join("zilla.yaml"))
        .expect("example config")
        .replace("port: 7114", &format!("port: {port}"))
        .replace("challenge: 10", "challenge: 3")
        .replace(":path: /events", ":path: /jwtb-*")
        .replace(
            "location: www/",
            &format!("location: {}/", root.join(EXAMPLE).join("www").display()),
        );
    let path = dir.join("zilla.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A token endpoint for the pages, as the example's issuer.mjs serves one:
/// `GET /token?sub=NAME&ttl=SECONDS` → a token with the scope `proxy:stream`.
fn token_endpoint(issuer: Arc<Issuer>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            answer_token_request(&issuer, stream);
        }
    });
    port
}

fn answer_token_request(issuer: &Issuer, mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match std::io::Read::read(&mut stream, &mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or_default();
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    let sub = param("sub").unwrap_or_else(|| "alice".into());
    let ttl = param("ttl").and_then(|t| t.parse().ok()).unwrap_or(60);
    let token = issuer.token(&sub, "proxy:stream", ttl);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\naccess-control-allow-origin: *\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{token}",
        token.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// The pages in Chromium, and what they reported so far.
struct Pages {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<Value>,
}

impl Pages {
    fn open(urls: &[String]) -> Pages {
        let mut child = Command::new("node")
            .arg("pages.mjs")
            .arg("300")
            .args(urls)
            .current_dir(e2e_tests::node_modules())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed");
        let lines = e2e_tests::stdout_lines(&mut child);
        let stdin = child.stdin.take();
        Pages {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first report (seen already or to come within 30 s) that `matches`.
    fn until(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().find(|entry| matches(entry)) {
            return found.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} from the pages; saw {:#?}", self.seen));
            let entry: Value = serde_json::from_str(&line).expect("a JSON line");
            let found = matches(&entry);
            self.seen.push(entry.clone());
            if found {
                return entry;
            }
        }
    }

    /// Reports of `page` of `kind`, in order.
    fn of(&self, page: u64, kind: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .filter(|entry| entry["page"] == page && entry["type"] == kind)
            .collect()
    }

    /// The data of `page`'s events, in order.
    fn events(&self, page: u64) -> Vec<&str> {
        self.of(page, "event")
            .into_iter()
            .filter_map(|entry| entry["data"].as_str())
            .collect()
    }

    /// Evaluates `expression` (a promise is awaited) in `page`.
    fn eval(&mut self, page: u64, expression: &str) -> Value {
        let command = serde_json::json!({"page": page, "eval": expression});
        let stdin = self.stdin.as_mut().expect("the driver's stdin");
        writeln!(stdin, "{command}").expect("the driver reads commands");
        self.until(expression, |entry| {
            entry["page"] == page && entry["eval"] == expression
        })["result"]
            .clone()
    }

    fn close(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("node");
        assert!(status.success(), "the driver failed: {:#?}", self.seen);
    }
}

fn event(page: u64, data: &'static str) -> impl Fn(&Value) -> bool {
    move |entry| entry["page"] == page && entry["type"] == "event" && entry["data"] == data
}

fn unix_millis() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[test]
fn chromium_answers_challenges_and_streams_only_its_users_records() {
    let issuer = Arc::new(Issuer::new());
    let topic = kafka::unique_topic("jwtb");
    kafka::create_topic(&topic, 2, &[]);
    let record = |key: &str, value: &str| Record::new(value.to_owned()).with_key(key.to_owned());
    kafka::produce(
        &topic,
        [
            record("alice", "alice-1"),
            record("bob", "bob-1"),
            record("alice", "alice-2"),
            record("carol", "carol-1"),
        ],
    );
    let port = e2e_tests::free_port();
    let dir = std::env::temp_dir().join(format!("zilla-browser-jwt-{}", std::process::id()));
    let config = config(&dir, port, &issuer.jwks());
    let _zilla = Zilla::start(&config, &[("KAFKA_BOOTSTRAP", kafka::bootstrap())]);
    let tokens = token_endpoint(issuer.clone());
    let page = |user: &str, ttl: u32, extra: &str| {
        format!(
            "http://localhost:{port}/index.html?user={user}&ttl={ttl}&path=/{topic}\
             &issuer=http://127.0.0.1:{tokens}/token{extra}"
        )
    };
    // Alice answers challenges (tokens of 8 s: challenged at 5 s), Bob's token lasts, Carol
    // leaves her challenge unanswered (a token of 6 s).
    let mut pages = Pages::open(&[
        page("alice", 8, ""),
        page("bob", 300, ""),
        page("carol", 6, "&answer=no"),
    ]);
    pages.until("alice-2", event(0, "alice-2"));
    pages.until("bob-1", event(1, "bob-1"));
    pages.until("carol-1", event(2, "carol-1"));
    let first_exp = pages.of(0, "token")[0]["exp"].as_u64().expect("exp");

    // During the first token's life, and after the challenge was answered.
    kafka::produce(&topic, [record("alice", "alice-3"), record("bob", "bob-2")]);
    let reauthorized = pages.until("alice's re-authorization", |entry| {
        entry["page"] == 0 && entry["type"] == "reauthorized"
    });
    assert_eq!(reauthorized["status"], 204, "{:#?}", pages.seen);
    kafka::produce(&topic, [record("alice", "alice-4")]);
    // Past the first token's expiry.
    while unix_millis() < first_exp * 1000 + 1500 {
        std::thread::sleep(Duration::from_millis(100));
    }
    kafka::produce(&topic, [record("alice", "alice-5"), record("bob", "bob-3")]);
    pages.until("alice-5", event(0, "alice-5"));
    pages.until("bob-3", event(1, "bob-3"));
    assert_eq!(
        pages.events(0),
        ["alice-1", "alice-2", "alice-3", "alice-4", "alice-5"],
        "every record once, in order: {:#?}",
        pages.seen
    );
    assert_eq!(
        pages.of(0, "open").len(),
        1,
        "the same stream went on past the first token's expiry: {:#?}",
        pages.seen
    );
    assert!(pages.of(0, "error").is_empty(), "{:#?}", pages.seen);
    assert_eq!(pages.events(1), ["bob-1", "bob-2", "bob-3"], "bob's own");
    assert_eq!(pages.events(2), ["carol-1"], "carol's own");

    // Carol's challenge goes unanswered: her stream ends when her token expires, and the
    // reconnection with that token is refused (EventSource gives up: readyState CLOSED).
    pages.until("carol's challenge", |entry| {
        entry["page"] == 2 && entry["type"] == "challenge"
    });
    let carol_exp = pages.of(2, "token")[0]["exp"].as_u64().expect("exp");
    let ended = pages.until("the end of carol's stream", |entry| {
        entry["page"] == 2 && entry["type"] == "error"
    });
    let ended_at = ended["at"].as_u64().expect("at");
    assert!(
        ended_at + 500 >= carol_exp * 1000 && ended_at < carol_exp * 1000 + 2000,
        "ended at {ended_at}, the token expired at {carol_exp}000"
    );
    pages.until("carol's page giving up", |entry| {
        entry["page"] == 2 && entry["type"] == "error" && entry["readyState"] == 2
    });
    let status = pages.eval(2, "fetch(window.lastUrl).then((r) => r.status)");
    assert_eq!(status, 401, "the expired token");
    assert!(pages.of(2, "reauthorized").is_empty());

    // Refusals as the browser sees them.
    let probe = |token: &str| {
        format!(
            "fetch('/{topic}?access_token={token}').then((r) => \
             r.status + ' ' + r.headers.get('www-authenticate'))"
        )
    };
    let expired = pages.eval(1, &probe(&issuer.token("bob", "proxy:stream", -120)));
    assert_eq!(
        expired,
        "401 Bearer realm=\"authn_jwt\", error=\"invalid_token\", \
         error_description=\"the token expired\""
    );
    let reader = pages.eval(1, &probe(&issuer.token("bob", "read", 300)));
    assert_eq!(
        reader,
        "403 Bearer realm=\"authn_jwt\", error=\"insufficient_scope\""
    );
    assert!(
        pages
            .of(0, "event")
            .iter()
            .chain(&pages.of(2, "event"))
            .all(|entry| !entry["data"]
                .as_str()
                .unwrap_or_default()
                .starts_with("bob")),
        "nobody else sees bob's records"
    );
    pages.close();
}
