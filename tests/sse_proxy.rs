//! An SSE upstream behind zilla, end to end, as Zilla's `sse.proxy.jwt` example: the real
//! binary runs `tests/configs/sse.proxy.jwt.yaml` (tcp → http with a jwt guard → sse, route
//! guarded by `proxy:stream` → sse client → http client → tcp client), and a second zilla
//! is the upstream (`tests/configs/sse.upstream.ticker.yaml`: an sse server over the ticker,
//! speaking one http version). curl reads through the proxy: events with their ids and types,
//! Last-Event-ID resume, HTTP/1.1 and h2 (prior knowledge) upstream, h2 by ALPN to a TLS
//! upstream, Node's `eventsource` resuming through the proxy, and the refusals.

use std::path::Path;

use e2e_tests::jwt::{self, Issuer};
use e2e_tests::sse::{Event, curl, events};
use e2e_tests::zilla::{self, Zilla};

const PROXY: &str = "tests/configs/sse.proxy.jwt.yaml";
const UPSTREAM: &str = "tests/configs/sse.upstream.ticker.yaml";

/// The upstream: a second zilla speaking only `version`, an event every 100 ms.
fn start_upstream(version: &str) -> (Zilla, u16) {
    start_upstream_with(version, 100, 1_000_000, "tick")
}

/// The upstream, an event of type `event_type` every `interval` ms, `batch` per
/// subscription.
fn start_upstream_with(version: &str, interval: u64, batch: u64, event_type: &str) -> (Zilla, u16) {
    let port = e2e_tests::free_port();
    let env = [
        ("PORT", port.to_string()),
        ("HTTP_VERSION", version.to_owned()),
        ("INTERVAL", interval.to_string()),
        ("BATCH", batch.to_string()),
        ("TYPE", event_type.to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (Zilla::start(Path::new(UPSTREAM), &env), port)
}

/// The proxy's environment: the guard's key, the page directory, the upstream.
fn proxy_env(
    issuer: &Issuer,
    port: u16,
    www: &Path,
    upstream: u16,
    version: &str,
) -> Vec<(String, String)> {
    let (x, y) = issuer.public_point();
    vec![
        ("PORT".into(), port.to_string()),
        ("JWK_X".into(), x),
        ("JWK_Y".into(), y),
        ("JWK_KID".into(), jwt::KID.into()),
        ("WWW".into(), www.display().to_string()),
        ("UPSTREAM_HOST".into(), "127.0.0.1".into()),
        ("UPSTREAM_PORT".into(), upstream.to_string()),
        ("UPSTREAM_VERSION".into(), version.into()),
    ]
}

fn proxy(env: &[(String, String)]) -> Zilla {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Zilla::start(Path::new(PROXY), &env)
}

/// A directory with a page, for the configuration's filesystem route.
fn www() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zilla-sse-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::write(dir.join("index.html"), "<p>sse.proxy.jwt</p>\n").expect("the page");
    dir
}

/// The ticker's event number `n`, as it reaches a client through the proxy.
fn tick(n: u64) -> Event {
    Event {
        id: Some(n.to_string()),
        event_type: Some("tick".into()),
        data: format!("tick {n}"),
    }
}

fn status(url: &str, extra: &[&str]) -> String {
    let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    args.extend_from_slice(extra);
    curl(url, &args, 5)
}

#[test]
fn zilla_validates_the_sse_proxy_jwt_configuration() {
    let issuer = Issuer::new();
    let env = proxy_env(&issuer, 7114, &www(), 8001, "http/1.1");
    let output = std::process::Command::new(zilla::binary())
        .args(["validate", "-c", PROXY])
        .current_dir(e2e_tests::repo_root())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("cannot run zilla");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn events_ids_and_resume_pass_through_over_http11_and_h2() {
    let issuer = Issuer::new();
    let www = www();
    for version in ["http/1.1", "h2"] {
        let (_upstream, upstream_port) = start_upstream(version);
        let port = e2e_tests::free_port();
        let _proxy = proxy(&proxy_env(&issuer, port, &www, upstream_port, version));
        let url = format!("http://localhost:{port}/events");
        let bearer = format!(
            "authorization: Bearer {}",
            issuer.token("alice", "proxy:stream", 300)
        );

        // From the start, downstream over HTTP/1.1: ids, types and data as the upstream sent.
        let got = events(&curl(&url, &["--http1.1", "-H", &bearer], 2));
        assert!(got.len() >= 5, "{version}: {got:?}");
        assert_eq!(
            got[..5],
            [tick(1), tick(2), tick(3), tick(4), tick(5)],
            "{version}"
        );

        // Resumed with the header (downstream h2c), then with the query parameter: the
        // upstream is asked to resume after 41, and goes on at 42.
        let got = events(&curl(
            &url,
            &[
                "--http2-prior-knowledge",
                "-H",
                &bearer,
                "-H",
                "last-event-id: 41",
            ],
            2,
        ));
        assert_eq!(got.first(), Some(&tick(42)), "{version}: {got:?}");
        let got = events(&curl(&format!("{url}?lastEventId=7"), &["-H", &bearer], 2));
        assert_eq!(got.first(), Some(&tick(8)), "{version}: {got:?}");

        // The rest of the configuration runs as written: its page route.
        let page = curl(
            &format!("http://localhost:{port}/index.html"),
            &["-H", &bearer],
            3,
        );
        assert_eq!(page, "<p>sse.proxy.jwt</p>\n", "{version}");
    }
}

/// Node's `eventsource` (the WHATWG EventSource API) through the proxy, with the token as
/// `?access_token=` as a browser page passes it: the upstream ends each subscription after
/// two events, the end travels through the proxy, and the client's reconnections resume
/// through it with Last-Event-ID, missing and repeating nothing.
#[test]
fn eventsource_resumes_through_the_proxy_when_the_upstream_ends() {
    let issuer = Issuer::new();
    let dir = e2e_tests::node_modules();
    // Typed `message`, the type `onmessage` listens to.
    let (_upstream, upstream_port) = start_upstream_with("h2", 20, 2, "message");
    let port = e2e_tests::free_port();
    let _proxy = proxy(&proxy_env(&issuer, port, &www(), upstream_port, "h2"));
    let url = format!(
        "http://localhost:{port}/events?access_token={}",
        issuer.token("alice", "proxy:stream", 300)
    );
    let output = std::process::Command::new("node")
        .args(["eventsource.mjs", &url, "6"])
        .current_dir(&dir)
        .output()
        .expect("node must be installed");
    assert!(output.status.success(), "{output:?}");
    let want: Vec<String> = (1..=6)
        .map(|n| format!("{{\"id\":\"{n}\",\"data\":\"tick {n}\"}}"))
        .collect();
    let want = format!("{{\"opens\":3,\"events\":[{}]}}", want.join(","));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), want);
}

#[test]
fn refusals_keep_their_meaning_through_the_proxy() {
    let issuer = Issuer::new();
    let www = www();
    let (upstream, upstream_port) = start_upstream("h2");
    let port = e2e_tests::free_port();
    let _proxy = proxy(&proxy_env(&issuer, port, &www, upstream_port, "h2"));
    let url = format!("http://localhost:{port}/events");
    let bearer = format!(
        "authorization: Bearer {}",
        issuer.token("alice", "proxy:stream", 300)
    );
    let reader = format!(
        "authorization: Bearer {}",
        issuer.token("alice", "read", 300)
    );
    assert_eq!(status(&url, &["-H", &bearer, "-m", "1"]), "200");
    // The guard in front: no token 401, a token without the role 403.
    assert_eq!(status(&url, &[]), "401");
    assert_eq!(status(&url, &["-H", &reader]), "403");
    // An upstream that stopped: 502.
    drop(upstream);
    assert_eq!(status(&url, &["-H", &bearer]), "502");

    // A proxy speaking HTTP/1.1 to an upstream that speaks only h2: 502, not a hang.
    let (_upstream, upstream_port) = start_upstream("h2");
    let port = e2e_tests::free_port();
    let _proxy = proxy(&proxy_env(&issuer, port, &www, upstream_port, "http/1.1"));
    let url = format!("http://localhost:{port}/events");
    assert_eq!(status(&url, &["-H", &bearer]), "502");
}

/// Over TLS the http client speaks what ALPN chose: the upstream (tls → http speaking only
/// h2) is reached through a tls client offering `h2`, while the http client lists both
/// versions, so only the negotiated protocol can make the events arrive.
#[test]
fn h2_chosen_by_alpn_reaches_a_tls_upstream() {
    const PASSWORD: &str = "sse-proxy";
    let dir = std::env::temp_dir().join(format!("zilla-sse-proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let root = e2e_tests::repo_root();
    let run = |command: &mut std::process::Command| {
        let output = command.output().expect("the command runs (needs openssl)");
        assert!(output.status.success(), "{output:?}");
    };
    run(
        std::process::Command::new(root.join("examples/sse.kafka.fanout/tls/create"))
            .arg(&dir)
            .env("KEYSTORE_PASSWORD", PASSWORD),
    );
    // The self-signed certificate alone, as the proxy's trust store.
    let pass = format!("pass:{PASSWORD}");
    run(std::process::Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-passin", &pass, "-in"])
        .arg(dir.join("localhost.p12"))
        .arg("-out")
        .arg(dir.join("cert.pem")));
    run(std::process::Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-nokeys",
            "-caname",
            "localhost",
            "-passout",
            &pass,
        ])
        .arg("-in")
        .arg(dir.join("cert.pem"))
        .arg("-out")
        .arg(dir.join("trust.p12")));
    let upstream_port = e2e_tests::free_port();
    let upstream = format!(
        "name: upstream\n\
         vaults:\n  server:\n    type: filesystem\n    options:\n      keys:\n        store: localhost.p12\n        password: ${{{{env.KEYSTORE_PASSWORD}}}}\n\
         bindings:\n\
         \x20 tcp: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {upstream_port}}}, exit: tls}}\n\
         \x20 tls: {{type: tls, kind: server, vault: server, options: {{keys: [localhost], alpn: [h2, http/1.1]}}, exit: http}}\n\
         \x20 http: {{type: http, kind: server, options: {{versions: [h2]}}, exit: sse}}\n\
         \x20 sse: {{type: sse, kind: server, exit: ticker}}\n\
         \x20 ticker: {{type: ticker, kind: server, options: {{interval: 50}}}}\n"
    );
    let port = e2e_tests::free_port();
    let proxy = format!(
        "name: proxy\n\
         vaults:\n  client:\n    type: filesystem\n    options:\n      trust:\n        store: trust.p12\n        password: ${{{{env.KEYSTORE_PASSWORD}}}}\n\
         bindings:\n\
         \x20 tcp: {{type: tcp, kind: server, options: {{host: 127.0.0.1, port: {port}}}, exit: http}}\n\
         \x20 http: {{type: http, kind: server, exit: sse}}\n\
         \x20 sse: {{type: sse, kind: server, exit: sse_client}}\n\
         \x20 sse_client: {{type: sse, kind: client, exit: http_client}}\n\
         \x20 http_client: {{type: http, kind: client, options: {{versions: [http/1.1, h2]}}, exit: tls_client}}\n\
         \x20 tls_client: {{type: tls, kind: client, vault: client, options: {{trust: [localhost], sni: [localhost], alpn: [h2]}}, exit: tcp_client}}\n\
         \x20 tcp_client: {{type: tcp, kind: client, options: {{host: 127.0.0.1, port: {upstream_port}}}}}\n"
    );
    std::fs::write(dir.join("upstream.yaml"), upstream).expect("the upstream's configuration");
    std::fs::write(dir.join("proxy.yaml"), proxy).expect("the proxy's configuration");
    let env = [("KEYSTORE_PASSWORD", PASSWORD)];
    let _upstream = Zilla::start(&dir.join("upstream.yaml"), &env);
    let _proxy = Zilla::start(&dir.join("proxy.yaml"), &env);
    let got = events(&curl(
        &format!("http://127.0.0.1:{port}/events"),
        &["-H", "last-event-id: 10"],
        2,
    ));
    let ids: Vec<Option<String>> = got.iter().take(3).map(|e| e.id.clone()).collect();
    assert_eq!(
        ids,
        [Some("11".into()), Some("12".into()), Some("13".into())],
        "{got:?}"
    );
}
