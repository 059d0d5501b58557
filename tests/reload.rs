//! Configuration reload with the real binary: a valid change applies without touching the
//! streams of unchanged bindings; a changed route's streams end cleanly and the client finds
//! the new route; an invalid change is refused with its file:line:col and the running
//! configuration goes on; SIGHUP reloads; a keystore rotated on disk is served to new TLS
//! connections while an open one runs on; routes added keep every open stream, and the http
//! server's idle connections close so that the next request meets the new routes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use e2e_tests::kafka::{self, Record};
use e2e_tests::sse::curl_status;
use e2e_tests::zilla::Zilla;

/// The north path (tcp → http → sse → sse-kafka → cache → kafka) on `port`, routing
/// `route` to the topic named by its `{topic}`, and an echo server on `echo_port`.
fn config(port: u16, route: &str, echo_port: u16) -> String {
    format!(
        "# reload test\n\
         name: reload\n\
         bindings:\n\
         \x20 north_tcp_server: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {port}}}, exit: north_http_server}}\n\
         \x20 north_http_server: {{type: http, kind: server, exit: north_sse_server}}\n\
         \x20 north_sse_server: {{type: sse, kind: server, exit: north_sse_kafka_mapping}}\n\
         \x20 north_sse_kafka_mapping:\n\
         \x20   type: sse-kafka\n\
         \x20   kind: proxy\n\
         \x20   routes:\n\
         \x20     - when: [{{path: '{route}'}}]\n\
         \x20       exit: north_kafka_cache_client\n\
         \x20       with: {{topic: '${{params.topic}}'}}\n\
         \x20 north_kafka_cache_client: {{type: kafka, kind: cache_client, exit: south_kafka_cache_server}}\n\
         \x20 south_kafka_cache_server: {{type: kafka, kind: cache_server, exit: south_kafka_client}}\n\
         \x20 south_kafka_client: {{type: kafka, kind: client, options: {{servers: ['{bootstrap}']}}, exit: south_tcp_client}}\n\
         \x20 south_tcp_client: {{type: tcp, kind: client}}\n\
         \x20 echo_tcp_server: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {echo_port}}}, exit: echo_server}}\n\
         \x20 echo_server: {{type: echo, kind: server}}\n",
        bootstrap = kafka::bootstrap(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zilla-reload-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Replaces the file's content in one step (as an editor saving it does), so the engine never
/// reads half of it.
fn rewrite(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).expect("write config");
    std::fs::rename(&next, path).expect("replace config");
}

/// A `curl -N` reading an event stream, line by line.
struct Subscriber {
    child: Child,
    lines: Receiver<String>,
}

impl Subscriber {
    fn open(url: &str) -> Subscriber {
        Subscriber::open_with(url, "--http1.1")
    }

    /// `version`: `--http1.1` or `--http2-prior-knowledge`.
    fn open_with(url: &str, version: &str) -> Subscriber {
        let mut child = Command::new("curl")
            .args(["-sN", version, "--max-time", "60", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl must be installed");
        let lines = e2e_tests::stdout_lines(&mut child);
        Subscriber { child, lines }
    }

    /// The next `data:` line within 15 s.
    fn next_data(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(data) = line.strip_prefix("data:") {
                        return data.to_owned();
                    }
                }
                Err(err) => panic!("no event within 15 s: {err}"),
            }
        }
    }

    /// Waits for curl to exit (the response ended); its exit status.
    fn ended(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("curl status") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("curl status").is_none()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path) -> Zilla {
    Zilla::start_with_args(config, &["-w", "2"], &[])
}

/// A fresh topic and the proxy serving it on `/{topic}`, from a configuration file of its own.
struct Served {
    topic: String,
    port: u16,
    echo_port: u16,
    path: PathBuf,
    config: String,
    zilla: Zilla,
}

impl Served {
    /// Starts [`config`] from a file in a temporary directory named after `name`.
    fn start(name: &str) -> Served {
        let topic = kafka::unique_topic("reload");
        kafka::create_topic(&topic, 1, &[]);
        let (port, echo_port) = (e2e_tests::free_port(), e2e_tests::free_port());
        let path = temp_dir(name).join("zilla.yaml");
        let config = config(port, "/{topic}", echo_port);
        std::fs::write(&path, &config).expect("config");
        let zilla = start(&path);
        Served {
            topic,
            port,
            echo_port,
            path,
            config,
            zilla,
        }
    }

    /// The URL of the topic under `prefix` (`""` for the route the proxy starts with).
    fn url(&self, prefix: &str) -> String {
        format!("http://127.0.0.1:{}{prefix}/{}", self.port, self.topic)
    }
}

/// The data of every event `url` serves within 3 s.
fn event_data(url: &str) -> Vec<String> {
    e2e_tests::sse::events(&e2e_tests::sse::curl(url, &[], 3))
        .into_iter()
        .map(|e| e.data)
        .collect()
}

fn echoes(port: u16) -> bool {
    let Ok(mut socket) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let _ = socket.write_all(b"ping");
    let mut reply = [0u8; 4];
    socket.read_exact(&mut reply).is_ok() && &reply == b"ping"
}

/// Waits for the `n`th "configuration reloaded" or "not reloaded" line; returns it.
fn nth_reload(zilla: &mut Zilla, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let lines: Vec<String> = zilla
            .log()
            .into_iter()
            .filter(|l| l.contains("configuration reloaded") || l.contains("not reloaded"))
            .collect();
        if let Some(line) = lines.get(n - 1) {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no reload #{n}; log:\n{}",
            zilla.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_valid_change_applies_and_streams_of_unchanged_bindings_run_on() {
    let topic = kafka::unique_topic("reload");
    kafka::create_topic(&topic, 1, &[]);
    let (port, echo_before, echo_after) = (
        e2e_tests::free_port(),
        e2e_tests::free_port(),
        e2e_tests::free_port(),
    );
    let path = temp_dir("valid").join("zilla.yaml");
    std::fs::write(&path, config(port, "/{topic}", echo_before)).expect("config");
    let mut zilla = start(&path);
    assert!(echoes(echo_before));

    let mut subscriber = Subscriber::open(&format!("http://127.0.0.1:{port}/{topic}"));
    kafka::produce(&topic, [Record::new("one")]);
    assert_eq!(subscriber.next_data(), "one");

    // The echo server moves to another port; nothing on the SSE path changes.
    rewrite(&path, &config(port, "/{topic}", echo_after));
    let line = nth_reload(&mut zilla, 1);
    assert!(line.contains("configuration reloaded"), "{line}");
    assert!(line.contains("changed=[\"echo_tcp_server\"]"), "{line}");
    assert!(line.contains("kept=9"), "{line}");
    assert!(line.contains("streams_ended=0"), "{line}");
    assert!(echoes(echo_after), "the new port echoes");
    assert!(!echoes(echo_before), "the old port is closed");

    // The same response goes on: the next record arrives once, on the open stream.
    kafka::produce(&topic, [Record::new("two")]);
    assert_eq!(subscriber.next_data(), "two");
    assert!(subscriber.is_running());
    // New subscribers are served too, from the start of the topic.
    assert_eq!(
        event_data(&format!("http://127.0.0.1:{port}/{topic}")),
        ["one", "two"]
    );

    // SIGHUP reloads too; with nothing changed, nothing is rebuilt.
    let status = Command::new("kill")
        .args(["-HUP", &zilla.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let line = nth_reload(&mut zilla, 2);
    assert!(line.contains("cause=\"SIGHUP\""), "{line}");
    assert!(line.contains("changed=[]"), "{line}");
    assert!(line.contains("kept=10"), "{line}");
    assert!(subscriber.is_running());
}

#[test]
fn a_changed_route_ends_its_streams_cleanly_and_clients_find_the_new_one() {
    let mut served = Served::start("route");
    let (port, echo_port) = (served.port, served.echo_port);
    kafka::produce(&served.topic, [Record::new("one")]);
    let mut subscriber = Subscriber::open(&served.url(""));
    assert_eq!(subscriber.next_data(), "one");

    // The route moves; the tcp server changes too, on the same address (it takes over the
    // listening socket).
    let moved = config(port, "/v2/{topic}", echo_port).replacen(
        "exit: north_http_server}",
        &format!("routes: [{{when: [{{port: {port}}}], exit: north_http_server}}]}}"),
        1,
    );
    rewrite(&served.path, &moved);
    let line = nth_reload(&mut served.zilla, 1);
    assert!(
        line.contains("changed=[\"north_sse_kafka_mapping\", \"north_tcp_server\"]"),
        "{line}"
    );
    assert!(line.contains("streams_ended=1"), "{line}");
    // The response ended cleanly (curl exits 0 on a complete chunked response).
    assert_eq!(subscriber.ended(Duration::from_secs(10)), Some(0));

    assert_eq!(curl_status(&served.url(""), &[]).0, 404);
    assert_eq!(event_data(&served.url("/v2")), ["one"]);
}

#[test]
fn routes_added_keep_open_streams_and_idle_connections_close_to_meet_them() {
    let mut served = Served::start("added");
    let (topic, port) = (served.topic.clone(), served.port);
    kafka::produce(&topic, [Record::new("one")]);
    let url = served.url("");
    let h1 = Subscriber::open(&url);
    let h2 = Subscriber::open_with(&url, "--http2-prior-knowledge");
    assert_eq!(h1.next_data(), "one");
    assert_eq!(h2.next_data(), "one");
    // A keep-alive connection, idle after its request was answered (no route: 404).
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    idle.write_all(format!("GET /v2/{topic} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .expect("request");
    let mut answer = [0u8; 1024];
    let read = idle.read(&mut answer).expect("answer");
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 404"),
        "{:?}",
        String::from_utf8_lossy(&answer[..read])
    );

    // The http server and the mapping each gain a route, in front of the one they had.
    let added = served
        .config
        .replacen(
            "kind: server, exit: north_sse_server}",
            "kind: server, exit: north_sse_server, routes: [{when: [{headers: {':path': '/v2/*'}}], exit: north_sse_server}]}",
            1,
        )
        .replacen(
            "\x20   routes:\n",
            "\x20   routes:\n\x20     - when: [{path: '/v2/{topic}'}]\n\x20       exit: north_kafka_cache_client\n\x20       with: {topic: '${params.topic}'}\n",
            1,
        );
    assert_ne!(added, served.config);
    rewrite(&served.path, &added);
    let line = nth_reload(&mut served.zilla, 1);
    assert!(
        line.contains("extended=[\"north_http_server\", \"north_sse_kafka_mapping\"]"),
        "{line}"
    );
    assert!(line.contains("changed=[]"), "{line}");
    assert!(line.contains("streams_ended=0"), "{line}");

    // The idle connection closes now, not at its head timeout (10 s): the next request
    // opens one to the new routes.
    idle.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let closed = idle.read(&mut answer);
    assert!(matches!(closed, Ok(0)), "{closed:?}");
    // Open streams run on, over HTTP/1.1 and HTTP/2 (GOAWAY ends no open stream).
    kafka::produce(&topic, [Record::new("two")]);
    assert_eq!(h1.next_data(), "two");
    assert_eq!(h2.next_data(), "two");
    assert_eq!(event_data(&served.url("/v2")), ["one", "two"]);
}

#[test]
fn an_invalid_change_is_refused_with_its_position_and_the_running_configuration_goes_on() {
    let Served {
        topic,
        port,
        echo_port,
        path,
        config: valid,
        mut zilla,
    } = Served::start("invalid");
    let mut subscriber = Subscriber::open(&format!("http://127.0.0.1:{port}/{topic}"));
    kafka::produce(&topic, [Record::new("one")]);
    assert_eq!(subscriber.next_data(), "one");

    // A typo in a kind.
    let typo = valid.replace(
        "north_sse_server: {type: sse, kind: server",
        "north_sse_server: {type: sse, kind: sever",
    );
    let line_number = 1 + typo
        .lines()
        .position(|l| l.contains("kind: sever"))
        .expect("the typo");
    rewrite(&path, &typo);
    let line = nth_reload(&mut zilla, 1);
    assert!(line.contains("not reloaded"), "{line}");
    assert!(
        line.contains(&format!("{}:{line_number}:", path.display())),
        "{line}"
    );
    assert!(line.contains("north_sse_server"), "{line}");

    kafka::produce(&topic, [Record::new("two")]);
    assert_eq!(subscriber.next_data(), "two");
    assert!(subscriber.is_running());
    assert!(echoes(echo_port));
    // Fixed again: applied, nothing changed against what runs.
    rewrite(&path, &valid);
    let line = nth_reload(&mut zilla, 2);
    assert!(line.contains("configuration reloaded"), "{line}");
    assert!(line.contains("changed=[]"), "{line}");
}

#[test]
fn a_rotated_keystore_is_served_to_new_connections_and_open_ones_run_on() {
    const PASSWORD: &str = "reload-test";
    let dir = temp_dir("tls");
    let create = e2e_tests::repo_root().join("examples/sse.kafka.fanout/tls/create");
    let make_store = || {
        let status = Command::new(&create)
            .arg(&dir)
            .env("KEYSTORE_PASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .status()
            .expect("tls/create runs (needs openssl)");
        assert!(status.success());
    };
    make_store();
    let port = e2e_tests::free_port();
    let config = format!(
        "name: reload-tls\n\
         vaults:\n  v:\n    type: filesystem\n    options:\n      keys:\n        store: localhost.p12\n        password: {PASSWORD}\n\
         bindings:\n\
         \x20 tcp: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {port}}}, exit: tls}}\n\
         \x20 tls: {{type: tls, kind: server, vault: v, options: {{keys: [localhost], sni: [localhost]}}, exit: echo}}\n\
         \x20 echo: {{type: echo, kind: server}}\n"
    );
    let path = dir.join("zilla.yaml");
    std::fs::write(&path, config).expect("config");
    let mut zilla = start(&path);

    let before = served_certificate(port);
    assert_eq!(before, stored_certificate(&dir, PASSWORD));
    let mut open = TlsEcho::connect(port);
    assert_eq!(open.round_trip("before"), "before");

    make_store();
    let line = nth_reload(&mut zilla, 1);
    assert!(line.contains("refreshed=[\"tls\"]"), "{line}");
    let after = served_certificate(port);
    assert_ne!(after, before, "a new connection gets the new certificate");
    assert_eq!(after, stored_certificate(&dir, PASSWORD));
    assert_eq!(
        open.round_trip("after"),
        "after",
        "the open connection runs on"
    );
}

/// The SHA-256 fingerprint of the certificate a new TLS connection to `port` gets.
fn served_certificate(port: u16) -> String {
    let connect = format!("127.0.0.1:{port}");
    let shell = format!(
        "openssl s_client -connect {connect} -servername localhost </dev/null 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    );
    fingerprint_of(&shell)
}

/// The SHA-256 fingerprint of the certificate in the keystore.
fn stored_certificate(dir: &Path, password: &str) -> String {
    let shell = format!(
        "openssl pkcs12 -in {} -nokeys -passin pass:{password} 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256",
        dir.join("localhost.p12").display()
    );
    fingerprint_of(&shell)
}

fn fingerprint_of(shell: &str) -> String {
    let output = Command::new("sh")
        .args(["-c", shell])
        .output()
        .expect("openssl must be installed");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(text.contains("Fingerprint="), "openssl said: {text:?}");
    text
}

/// An `openssl s_client` connection kept open, echoing lines.
struct TlsEcho {
    child: Child,
    lines: Receiver<String>,
}

impl TlsEcho {
    fn connect(port: u16) -> TlsEcho {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "localhost"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl must be installed");
        let lines = e2e_tests::stdout_lines(&mut child);
        TlsEcho { child, lines }
    }

    fn round_trip(&mut self, text: &str) -> String {
        let stdin = self.child.stdin.as_mut().expect("piped");
        writeln!(stdin, "{text}").expect("write");
        stdin.flush().expect("flush");
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("an echo within 10 s")
    }
}

impl Drop for TlsEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_changed_asyncapi_document_rebuilds_what_it_expands_to() {
    let (first, second) = (
        kafka::unique_topic("reload-asyncapi"),
        kafka::unique_topic("reload-asyncapi"),
    );
    kafka::create_topic(&first, 1, &[]);
    kafka::create_topic(&second, 1, &[]);
    kafka::produce(&first, [Record::new("from the first").with_key("1")]);
    kafka::produce(&second, [Record::new("from the second").with_key("1")]);
    let example = e2e_tests::repo_root().join("examples/asyncapi.sse.kafka.proxy");
    let read = |file: &str| std::fs::read_to_string(example.join(file)).expect(file);
    let dir = temp_dir("asyncapi");
    std::fs::create_dir_all(dir.join("specs")).expect("specs dir");
    let port = e2e_tests::free_port();
    std::fs::write(
        dir.join("zilla.yaml"),
        read("zilla.yaml").replace("7114", &port.to_string()),
    )
    .expect("config");
    std::fs::write(
        dir.join("specs/sse-asyncapi.yaml"),
        read("specs/sse-asyncapi.yaml"),
    )
    .expect("sse spec");
    let kafka_spec = read("specs/kafka-asyncapi.yaml");
    let kafka_path = dir.join("specs/kafka-asyncapi.yaml");
    std::fs::write(
        &kafka_path,
        kafka_spec.replace("address: events", &format!("address: {first}")),
    )
    .expect("kafka spec");
    let broker = kafka::resolve_seed_broker();
    let address = broker.strip_prefix("kafka:29092:").expect("address");
    let resolve = format!("kafka.examples.dev:29092:{address}");
    let mut zilla = Zilla::start_with_args(&dir.join("zilla.yaml"), &["--resolve", &resolve], &[]);
    let url = format!("http://localhost:{port}/events");
    let data = |text: String| -> Vec<String> {
        e2e_tests::sse::events(&text)
            .into_iter()
            .map(|e| e.data)
            .filter(|d| !d.is_empty())
            .collect()
    };
    assert_eq!(data(e2e_tests::sse::curl(&url, &[], 3)), ["from the first"]);

    // The Kafka document now names the second topic: a catalog file, not zilla.yaml, changed.
    rewrite(
        &kafka_path,
        &kafka_spec.replace("address: events", &format!("address: {second}")),
    );
    let line = nth_reload(&mut zilla, 1);
    assert!(line.contains("configuration reloaded"), "{line}");
    assert!(!line.contains("changed=[]"), "{line}");
    assert_eq!(
        data(e2e_tests::sse::curl(&url, &[], 3)),
        ["from the second"]
    );
}
