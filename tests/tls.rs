//! The real binary over TLS: https with HTTP/2 and HTTP/1.1 by ALPN (curl), the page served
//! by the filesystem binding, a bad client hello answered with an alert and reported as a
//! `tls_handshake_failed` telemetry line on stdout; and keystore errors that stop start-up
//! with exit code 1, naming the vault, the file and the cause. And zilla as a TLS client:
//! SSE subscribers get records from Kafka's SSL listener.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use e2e_tests::kafka;
use e2e_tests::zilla::Zilla;

const PASSWORD: &str = "tls-test";

/// A keystore and a configuration serving the example's page over TLS on `port`.
fn setup(port: u16, store: &str) -> PathBuf {
    let root = e2e_tests::repo_root();
    let dir = std::env::temp_dir().join(format!("zilla-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let status = Command::new(root.join("examples/sse.kafka.fanout/tls/create"))
        .arg(&dir)
        .env("KEYSTORE_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .status()
        .expect("tls/create runs (needs openssl)");
    assert!(status.success());
    let www = root.join("examples/sse.kafka.fanout/www");
    let config = format!(
        "name: tls\n\
         vaults:\n  v:\n    type: filesystem\n    options:\n      keys:\n        store: {store}\n        password: ${{{{env.KEYSTORE_PASSWORD}}}}\n\
         bindings:\n\
         \x20 tcp: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {port}}}, exit: tls}}\n\
         \x20 tls: {{type: tls, kind: server, vault: v, options: {{keys: [localhost], sni: [localhost], alpn: [http/1.1, h2]}}, exit: http}}\n\
         \x20 http: {{type: http, kind: server, exit: files}}\n\
         \x20 files: {{type: http-filesystem, kind: proxy, routes: [{{when: [{{path: '/{{path}}'}}], with: {{path: '${{params.path}}'}}, exit: fs}}]}}\n\
         \x20 fs: {{type: filesystem, kind: server, options: {{location: {}}}}}\n\
         telemetry:\n  exporters:\n    out:\n      type: stdout\n",
        www.display()
    );
    let path = dir.join("zilla.yaml");
    std::fs::write(&path, config).expect("config");
    path
}

fn zilla(config: &Path, password: &str) -> Command {
    let mut command = Command::new(e2e_tests::zilla::binary());
    command
        .args(["start", "-c"])
        .arg(config)
        .env("KEYSTORE_PASSWORD", password)
        .stdin(Stdio::null());
    command
}

fn lines(stdout: impl Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    receive
}

fn until(lines: &Receiver<String>, needle: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no stdout line with {needle}"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn https_by_alpn_serves_the_page_and_a_bad_hello_is_reported() {
    let port = e2e_tests::free_port();
    let config = setup(port, "localhost.p12");
    let mut child = zilla(&config, PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("zilla");
    let stdout = lines(child.stdout.take().expect("stdout"));
    until(&stdout, "\"event\":\"started\"");
    let url = format!("https://localhost:{port}/index.html");
    let h2 = curl(&["--http2", "-w", "\n%{http_version} %{http_code}", &url]);
    assert!(h2.ends_with("\n2 200"), "{h2}");
    assert!(h2.contains("EventSource"), "{h2}");
    let h1 = curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &url,
    ]);
    assert_eq!(h1, "1.1 200");

    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    socket.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    let mut answer = Vec::new();
    socket
        .read_to_end(&mut answer)
        .expect("alert, then end of stream");
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert record: {answer:?}"
    );
    let event = until(&stdout, "tls_handshake_failed");
    assert!(event.contains("\"binding\":\"tls\""), "{event}");
    // The server still serves.
    let again = curl(&["--http2", "-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert_eq!(again, "200");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn keystore_errors_stop_start_up_naming_vault_file_and_cause() {
    let port = e2e_tests::free_port();
    let config = setup(port, "localhost.p12");
    let out = zilla(&config, "wrong").output().expect("zilla");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("binding 'tls': vault 'v': keys store '")
            && stderr.contains("localhost.p12': wrong password"),
        "{stderr}"
    );
    assert!(!stderr.contains(" started"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"event\":\"start_error\""), "{stdout}");

    let config = setup(e2e_tests::free_port(), "missing.p12");
    let out = zilla(&config, PASSWORD).output().expect("zilla");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.p12': No such file"), "{stderr}");
}

/// tcp → http → sse → sse-kafka → kafka client → tls client → tcp client, to the broker's
/// SSL listener: the tls client trusts the broker's CA from a PKCS#12 trust store in a
/// filesystem vault and names the broker `localhost` (`sni`); records produced with kcat
/// (over SSL too) reach every SSE subscriber, those from before and after they subscribed.
#[test]
fn sse_subscribers_receive_records_from_kafka_over_tls() {
    let (ssl, ca) = kafka::ssl();
    let topic = kafka::unique_topic("kafka-tls");
    kafka::create_topic(&topic, 1, &[]);
    kcat_ssl(&ssl, &ca, &topic, &["before-1", "before-2"]);
    // The port last: the tools' own connections take ephemeral ports too.
    let port = e2e_tests::free_port();
    let path = kafka_over_tls(port, &ssl, &ca, "localhost");
    let zilla = Zilla::start(&path, &[("KEYSTORE_PASSWORD", PASSWORD)]);
    let url = format!("http://127.0.0.1:{port}/{topic}");
    let subscribers: Vec<Child> = (0..2)
        .map(|_| {
            Command::new("curl")
                .args(["-sN", "--max-time", "12", &url])
                .stdout(Stdio::piped())
                .spawn()
                .expect("curl must be installed")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    kcat_ssl(&ssl, &ca, &topic, &["after-1", "after-2"]);
    for subscriber in subscribers {
        let out = subscriber.wait_with_output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let data: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .collect();
        assert_eq!(
            data,
            ["before-1", "before-2", "after-1", "after-2"],
            "{text}\nzilla log:\n{}",
            zilla.log().join("\n")
        );
    }
    assert!(
        !zilla
            .log()
            .iter()
            .any(|l| l.contains("tls_handshake_failed")),
        "{:?}",
        zilla.log()
    );
}

/// A configuration on `port`: tcp → http → sse → sse-kafka → kafka client → tls client
/// (trusting `ca` from a PKCS#12 trust store, asking for `sni`) → tcp client to `ssl`, with
/// the stdout telemetry exporter.
fn kafka_over_tls(port: u16, ssl: &str, ca: &Path, sni: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zilla-kafka-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trust = dir.join("truststore.p12");
    let status = Command::new("openssl")
        .args(["pkcs12", "-export", "-nokeys", "-caname", "kafka-ca", "-in"])
        .arg(ca)
        .arg("-out")
        .arg(&trust)
        .arg(format!("-passout=pass:{PASSWORD}"))
        .status()
        .expect("openssl must be installed");
    assert!(status.success(), "openssl made no trust store");
    let config = format!(
        "name: kafka-tls\n\
         vaults:\n  broker_ca:\n    type: filesystem\n    options:\n      trust:\n        store: truststore.p12\n        type: pkcs12\n        password: ${{{{env.KEYSTORE_PASSWORD}}}}\n\
         bindings:\n\
         \x20 tcp: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {port}}}, exit: http}}\n\
         \x20 http: {{type: http, kind: server, exit: sse}}\n\
         \x20 sse: {{type: sse, kind: server, exit: mapping}}\n\
         \x20 mapping: {{type: sse-kafka, kind: proxy, routes: [{{when: [{{path: '/{{topic}}'}}], with: {{topic: '${{params.topic}}'}}, exit: kafka}}]}}\n\
         \x20 kafka: {{type: kafka, kind: client, options: {{servers: ['{ssl}']}}, exit: tls}}\n\
         \x20 tls: {{type: tls, kind: client, vault: broker_ca, options: {{trust: [kafka-ca], sni: [{sni}]}}, exit: south}}\n\
         \x20 south: {{type: tcp, kind: client}}\n\
         telemetry:\n  exporters:\n    out:\n      type: stdout\n"
    );
    let path = dir.join("zilla.yaml");
    std::fs::write(&path, config).expect("config");
    path
}

/// The same path with a server name the broker's certificate does not cover: the tls
/// client's handshake fails, and stdout says so (`tls_handshake_failed` from the tls client,
/// `kafka_connection_failed` from the kafka client) while the subscriber gets no record.
#[test]
fn a_broker_certificate_for_another_name_is_refused_and_reported() {
    let (ssl, ca) = kafka::ssl();
    let topic = kafka::unique_topic("kafka-tls-refused");
    kafka::create_topic(&topic, 1, &[]);
    kcat_ssl(&ssl, &ca, &topic, &["never-shown"]);
    let port = e2e_tests::free_port();
    let path = kafka_over_tls(port, &ssl, &ca, "elsewhere.example");
    let mut child = zilla(&path, PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("zilla");
    let stdout = lines(child.stdout.take().expect("stdout"));
    until(&stdout, "\"event\":\"started\"");
    let body = Command::new("curl")
        .args(["-sN", "--max-time", "4"])
        .arg(format!("http://127.0.0.1:{port}/{topic}"))
        .output()
        .expect("curl must be installed");
    let body = String::from_utf8_lossy(&body.stdout);
    assert!(!body.contains("never-shown"), "{body}");
    let failed = until(&stdout, "\"event\":\"tls_handshake_failed\"");
    assert!(failed.contains("\"binding\":\"tls\""), "{failed}");
    assert!(failed.contains("elsewhere.example"), "{failed}");
    let kafka = until(&stdout, "\"event\":\"kafka_connection_failed\"");
    assert!(kafka.contains(&format!("\"broker\":\"{ssl}\"")), "{kafka}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Produces `values` with kcat through the broker's SSL listener, verifying it with `ca`.
fn kcat_ssl(ssl: &str, ca: &Path, topic: &str, values: &[&str]) {
    let mut child = Command::new("kcat")
        .args([
            "-P",
            "-b",
            ssl,
            "-t",
            topic,
            "-X",
            "security.protocol=ssl",
            "-X",
        ])
        .arg(format!("ssl.ca.location={}", ca.display()))
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat must be installed");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{}\n", values.join("\n")).as_bytes())
        .expect("kcat stdin");
    drop(stdin);
    assert!(child.wait().expect("kcat").success(), "kcat failed");
}
