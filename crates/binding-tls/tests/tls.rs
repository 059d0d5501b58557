//! The tls server and client back to back in memory (client → server → a probe that
//! records the tls begin extension and echoes), with keys made by openssl and read through
//! the filesystem vault: ALPN and SNI selection, routes, a refused server name, a hello
//! naming no server (routed as Zilla does, refused only when nothing takes it), a bad hello,
//! mutual TLS, revoked client certificates, start-up errors, a large transfer within credit
//! both ways, and the proxy routing hellos to servers without terminating them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use binding_api::ext::tls::TlsBeginEx;
use binding_api::frame::{Begin, Data, End, Frame, ReasonKind, Window};
use binding_api::route::Route;
use binding_api::stream::{self, Acceptor, Initiator};
use binding_api::vault::Vault;
use binding_tls::{Condition, TlsClient, TlsOptions, TlsProxy, TlsServer};
use tokio_util::sync::CancellationToken;
use vault_filesystem::{FilesystemVault, StoreConfig};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a `localhost` key signed by it (`keys.p12`, alias `localhost`) and the CA alone
/// (`trust.p12`).
fn keys() -> PathBuf {
    static MADE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MADE.get_or_init(make_keys).clone()
}

fn make_keys() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("binding-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-days",
                "2",
                "-subj",
                "/CN=test ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        ]
        .concat(),
        &dir,
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "localhost.key",
                "-out",
                "localhost.csr",
            ],
        ]
        .concat(),
        &dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "localhost.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "localhost.crt",
        ],
        &dir,
    );
    openssl(
        &[
            "pkcs12",
            "-export",
            "-name",
            "localhost",
            "-inkey",
            "localhost.key",
            "-in",
            "localhost.crt",
            "-passout",
            "pass:secret",
            "-out",
            "keys.p12",
        ],
        &dir,
    );
    openssl(
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            "ca.crt",
            "-passout",
            "pass:secret",
            "-out",
            "trust.p12",
        ],
        &dir,
    );
    make_client_keys(&dir, &ec);
    dir
}

/// Client certificates signed by the CA, `good.p12` and `revoked.p12` (aliases `good` and
/// `revoked`), and `ca.crl`: the CA's revocation list naming `revoked`.
fn make_client_keys(dir: &Path, ec: &[&str]) {
    std::fs::write(
        dir.join("client.cnf"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("ext");
    for name in ["good", "revoked"] {
        let (key, csr, crt, p12) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.p12"),
        );
        let subject = format!("/CN={name}");
        openssl(
            &[
                &["req"],
                ec,
                &["-subj", &subject, "-keyout", &key, "-out", &csr],
            ]
            .concat(),
            dir,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-days",
                "2",
                "-extfile",
                "client.cnf",
                "-out",
                &crt,
            ],
            dir,
        );
        openssl(
            &[
                "pkcs12",
                "-export",
                "-name",
                name,
                "-inkey",
                &key,
                "-in",
                &crt,
                "-passout",
                "pass:secret",
                "-out",
                &p12,
            ],
            dir,
        );
    }
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\n\
         default_md=sha256\ndefault_crl_days=2\n",
    )
    .expect("ca config");
    std::fs::write(dir.join("index.txt"), "").expect("index");
    std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
    let ca = ["-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key"];
    openssl(
        &[&["ca"], &ca[..], &["-revoke", "revoked.crt"]].concat(),
        dir,
    );
    openssl(
        &[&["ca"], &ca[..], &["-gencrl", "-out", "ca.crl"]].concat(),
        dir,
    );
}

fn vault() -> Arc<dyn Vault> {
    let dir = keys();
    Arc::new(
        FilesystemVault::new("test")
            .with_keys(StoreConfig::new(dir.join("keys.p12")).password("secret"))
            .with_trust(StoreConfig::new(dir.join("trust.p12")).password("secret")),
    )
}

/// Records each stream's tls extension, then echoes it.
#[derive(Default)]
struct Probe {
    seen: Mutex<Vec<TlsBeginEx>>,
}

impl Binding for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        if let BeginEx::Tls(ext) = &stream.begin.ext {
            self.seen.lock().expect("lock").push(ext.clone());
        }
        worker.spawn(binding_echo::echo(stream));
    }
}

fn server_options(alpn: &[&str]) -> TlsOptions {
    TlsOptions {
        keys: vec!["localhost".into()],
        sni: vec!["localhost".into()],
        alpn: alpn.iter().map(|s| s.to_string()).collect(),
        ..TlsOptions::default()
    }
}

fn client_options(alpn: &[&str], sni: Option<&str>) -> TlsOptions {
    TlsOptions {
        trust: vec!["test ca".into()],
        sni: sni.into_iter().map(str::to_owned).collect(),
        alpn: alpn.iter().map(|s| s.to_string()).collect(),
        ..TlsOptions::default()
    }
}

fn run(test: impl AsyncFnOnce(Worker)) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&runtime, test(worker));
}

fn to_localhost() -> Begin {
    Begin {
        ext: BeginEx::Tcp(TcpBeginEx {
            local: None,
            remote: Endpoint::Host {
                host: "localhost".into(),
                port: 7143,
            },
        }),
    }
}

/// Sends `text` on the application stream and reads it back; returns the reply's begin.
async fn echo_through(app: &mut Initiator, text: &str) -> Result<Begin, String> {
    app.input
        .window(Window {
            credit: 64 * 1024,
            padding: 0,
        })
        .map_err(|e| e.to_string())?;
    let begin = match app.input.frame().await {
        Some(Frame::Begin(begin)) => begin,
        Some(Frame::Abort(abort)) => {
            return Err(format!("{:?}: {}", abort.reason.kind, abort.reason.detail));
        }
        other => return Err(format!("unexpected {other:?}")),
    };
    app.output
        .ready(text.len())
        .await
        .map_err(|e| e.to_string())?;
    app.output
        .data(Data::new(text.to_owned()))
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    while got.len() < text.len() {
        match app.input.frame().await {
            Some(Frame::Data(data)) => {
                got.extend_from_slice(&data.payload);
                app.input.replenish();
            }
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    assert_eq!(got, text.as_bytes());
    Ok(begin)
}

fn pair(server_alpn: &[&str], client: TlsOptions) -> (Arc<Probe>, TlsClient) {
    let probe = Arc::new(Probe::default());
    let server = Arc::new(TlsServer::new(
        "server",
        server_options(server_alpn),
        vault(),
        Vec::new(),
        Some(probe.clone()),
    ));
    server.prepare().expect("server keys");
    let client = TlsClient::new("client", client, Some(vault()), server);
    client.prepare().expect("client trust");
    (probe, client)
}

#[test]
fn alpn_h2_and_sni_reach_the_application() {
    run(async |worker| {
        let (probe, client) = pair(
            &["http/1.1", "h2"],
            client_options(&["h2", "http/1.1"], None),
        );
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        let begin = echo_through(&mut app, "hello over tls")
            .await
            .expect("echo");
        let BeginEx::Tls(ext) = begin.ext else {
            panic!("tls begin expected")
        };
        assert_eq!(ext.alpn.as_deref(), Some("h2"));
        assert_eq!(ext.server_name.as_deref(), Some("localhost"));
        let seen = probe.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].alpn.as_deref(), Some("h2"));
        assert_eq!(seen[0].server_name.as_deref(), Some("localhost"));
        app.output.end(End::default()).expect("end");
        loop {
            match app.input.frame().await {
                Some(Frame::End(_)) => break,
                Some(Frame::Data(_)) => app.input.replenish(),
                other => panic!("expected end, got {other:?}"),
            }
        }
    });
}

#[test]
fn alpn_http11_when_the_client_offers_only_that() {
    run(async |worker| {
        let (probe, client) = pair(&["http/1.1", "h2"], client_options(&["http/1.1"], None));
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        echo_through(&mut app, "x").await.expect("echo");
        assert_eq!(
            probe.seen.lock().expect("lock")[0].alpn.as_deref(),
            Some("http/1.1")
        );
    });
}

#[test]
fn large_transfer_both_ways_within_credit() {
    run(async |worker| {
        let (_probe, client) = pair(&[], client_options(&[], None));
        transfer(&client, &worker).await;
    });
}

#[test]
fn large_transfer_through_a_proxy() {
    run(async |worker| {
        let probe = Arc::new(Probe::default());
        let proxy = Arc::new(TlsProxy::new(
            "proxy",
            Vec::new(),
            Some(proxied_server(probe)),
        ));
        let client = TlsClient::new("client", client_options(&[], None), Some(vault()), proxy);
        client.prepare().expect("trust");
        transfer(&client, &worker).await;
    });
}

/// 200 000 bytes out and back through `client`, sent as credit allows.
async fn transfer(client: &TlsClient, worker: &Worker) {
    let (mut app, acceptor) = stream::open(to_localhost());
    client.new_stream(acceptor, worker);
    let text: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let begin = echo_through(&mut app, "warm").await.expect("echo");
    assert!(matches!(begin.ext, BeginEx::Tls(_)));
    let mut sent = 0;
    let mut got = Vec::new();
    while got.len() < text.len() {
        if sent < text.len() && app.output.credit() > 0 {
            let n = (app.output.credit() as usize)
                .min(text.len() - sent)
                .min(5000);
            app.output
                .data(Data::new(text[sent..sent + n].to_owned()))
                .expect("data");
            sent += n;
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            frame = app.input.frame() => match frame {
                Some(Frame::Data(data)) => {
                    got.extend_from_slice(&data.payload);
                    app.input.replenish();
                }
                other => panic!("unexpected {other:?}"),
            },
            _ = app.output.ready(1), if sent < text.len() => {}
        }
    }
    assert_eq!(got, text.as_bytes());
}

#[test]
fn a_name_outside_sni_is_refused() {
    run(async |worker| {
        let (probe, client) = pair(&["h2"], client_options(&["h2"], Some("elsewhere")));
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        let err = echo_through(&mut app, "x").await.expect_err("refused");
        assert!(err.starts_with("Unreachable"), "{err}");
        assert!(probe.seen.lock().expect("lock").is_empty());
    });
}

/// A server with this `sni`, these routes and exit, and whether a client that names no server
/// (its name is an IP address, so it sends no SNI) gets through.
async fn nameless_hello(
    worker: &Worker,
    sni: &[&str],
    routes: Vec<Route<Condition>>,
    exit: Arc<Probe>,
) -> Result<(), String> {
    let options = TlsOptions {
        sni: sni.iter().map(|s| s.to_string()).collect(),
        ..server_options(&["h2"])
    };
    let server = Arc::new(TlsServer::new(
        "server",
        options,
        vault(),
        routes,
        Some(exit),
    ));
    server.prepare().expect("keys");
    let client = TlsClient::new(
        "client",
        client_options(&["h2"], Some("127.0.0.1")),
        Some(vault()),
        server,
    );
    client.prepare().expect("trust");
    let (mut app, acceptor) = stream::open(to_localhost());
    client.new_stream(acceptor, worker);
    echo_through(&mut app, "x").await.map(|_| ())
}

#[test]
fn a_hello_without_a_name_is_refused_only_when_nothing_takes_it() {
    run(async |worker| {
        let exit = Arc::new(Probe::default());
        let by_authority = |exit: &Arc<Probe>| {
            vec![Route {
                when: vec![Condition {
                    authority: Some("localhost".into()),
                    ..Condition::default()
                }],
                exit: exit.clone(),
                with: (),
            }]
        };
        // Routes by authority only, and no exit: refused in the handshake.
        let options = TlsOptions {
            sni: vec!["localhost".into()],
            ..server_options(&["h2"])
        };
        let server = Arc::new(TlsServer::new(
            "server",
            options,
            vault(),
            by_authority(&exit),
            None,
        ));
        server.prepare().expect("keys");
        let client = TlsClient::new(
            "client",
            client_options(&["h2"], Some("127.0.0.1")),
            Some(vault()),
            server,
        );
        client.prepare().expect("trust");
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        let err = echo_through(&mut app, "x").await.expect_err("refused");
        assert!(err.starts_with("Unreachable"), "{err}");
        assert!(exit.seen.lock().expect("lock").is_empty());
    });
}

#[test]
fn a_hello_without_a_name_takes_a_route_without_authority_or_the_exit_as_in_zilla() {
    run(async |worker| {
        let by_alpn = Arc::new(Probe::default());
        let exit = Arc::new(Probe::default());
        let routes = vec![Route {
            when: vec![Condition {
                alpn: Some("h2".into()),
                ..Condition::default()
            }],
            exit: by_alpn.clone(),
            with: (),
        }];
        nameless_hello(&worker, &["localhost"], routes, exit.clone())
            .await
            .expect("a route without authority takes it");
        assert_eq!(by_alpn.seen.lock().expect("lock")[0].server_name, None);
        // With sni listing names and only the exit: the exit takes it (a health check by
        // address that Zilla answers).
        nameless_hello(&worker, &["localhost"], Vec::new(), exit.clone())
            .await
            .expect("the exit takes it whatever sni says");
        assert_eq!(exit.seen.lock().expect("lock")[0].server_name, None);
    });
}

#[test]
fn routes_select_by_alpn() {
    run(async |worker| {
        let h2 = Arc::new(Probe::default());
        let other = Arc::new(Probe::default());
        let routes = vec![Route {
            when: vec![Condition {
                alpn: Some("h2".into()),
                ..Condition::default()
            }],
            exit: h2.clone(),
            with: (),
        }];
        let server = Arc::new(TlsServer::new(
            "server",
            server_options(&["h2", "http/1.1"]),
            vault(),
            routes,
            Some(other.clone()),
        ));
        server.prepare().expect("keys");
        for alpn in ["h2", "http/1.1"] {
            let client = TlsClient::new(
                "client",
                client_options(&[alpn], None),
                Some(vault()),
                server.clone(),
            );
            client.prepare().expect("trust");
            let (mut app, acceptor) = stream::open(to_localhost());
            client.new_stream(acceptor, &worker);
            echo_through(&mut app, "x").await.expect("echo");
        }
        assert_eq!(h2.seen.lock().expect("lock").len(), 1);
        assert_eq!(
            other.seen.lock().expect("lock")[0].alpn.as_deref(),
            Some("http/1.1")
        );
    });
}

#[test]
fn a_bad_hello_closes_that_connection_only() {
    run(async |worker| {
        let probe = Arc::new(Probe::default());
        let server = Arc::new(TlsServer::new(
            "server",
            server_options(&["h2"]),
            vault(),
            Vec::new(),
            Some(probe.clone()),
        ));
        server.prepare().expect("keys");
        let (mut net, acceptor) = stream::open(Begin::default());
        server.new_stream(acceptor, &worker);
        net.input
            .window(Window {
                credit: 64 * 1024,
                padding: 0,
            })
            .expect("window");
        net.output.ready(32).await.expect("credit");
        net.output
            .data(Data::new(&b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..]))
            .expect("data");
        let mut alert = Vec::new();
        loop {
            match net.input.frame().await {
                Some(Frame::Begin(_)) => {}
                Some(Frame::Data(data)) => alert.extend_from_slice(&data.payload),
                Some(Frame::End(_)) => break,
                other => panic!("expected an alert and end, got {other:?}"),
            }
        }
        assert_eq!(alert.first(), Some(&0x15), "a TLS alert record");
        // The server still serves the next connection.
        let client = TlsClient::new(
            "client",
            client_options(&["h2"], None),
            Some(vault()),
            server.clone(),
        );
        client.prepare().expect("trust");
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        echo_through(&mut app, "still here").await.expect("echo");
        assert_eq!(probe.seen.lock().expect("lock").len(), 1);
    });
}

#[test]
fn start_up_errors_name_vault_file_and_cause() {
    let dir = keys();
    let wrong: Arc<dyn Vault> = Arc::new(
        FilesystemVault::new("my_servers")
            .with_keys(StoreConfig::new(dir.join("keys.p12")).password("nope")),
    );
    let server = TlsServer::new(
        "north_tls_server",
        server_options(&[]),
        wrong,
        Vec::new(),
        Some(Arc::new(Probe::default())),
    );
    let err = server.prepare().expect_err("wrong password").to_string();
    assert!(
        err.starts_with("binding 'north_tls_server': vault 'my_servers': keys store '"),
        "{err}"
    );
    assert!(err.contains("wrong password"), "{err}");
    let server = TlsServer::new(
        "s",
        TlsOptions {
            keys: vec!["nobody".into()],
            ..TlsOptions::default()
        },
        vault(),
        Vec::new(),
        Some(Arc::new(Probe::default())),
    );
    let err = server.prepare().expect_err("alias").to_string();
    assert!(
        err.contains("has no entry 'nobody' (entries: localhost)"),
        "{err}"
    );
    let _ = ReasonKind::Refused;
}

#[test]
fn mutual_required_needs_a_trusted_client_certificate() {
    run(async |worker| {
        let probe = Arc::new(Probe::default());
        let options = TlsOptions {
            trust: vec!["test ca".into()],
            mutual: Some(binding_tls::Mutual::Required),
            ..server_options(&[])
        };
        let server = Arc::new(TlsServer::new(
            "server",
            options,
            vault(),
            Vec::new(),
            Some(probe.clone()),
        ));
        server.prepare().expect("keys and trust");
        // Without a certificate: refused (with TLS 1.3 the client may already have finished
        // its side of the handshake, so the refusal can arrive as the stream's reset).
        let client = TlsClient::new(
            "client",
            client_options(&[], None),
            Some(vault()),
            server.clone(),
        );
        client.prepare().expect("trust");
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        let err = echo_through(&mut app, "x")
            .await
            .expect_err("no certificate");
        assert!(
            err.contains("Unreachable") || err.contains("CertificateRequired"),
            "{err}"
        );
        assert!(probe.seen.lock().expect("lock").is_empty());
        // With the CA-signed key as client certificate: served.
        let client = TlsClient::new(
            "client",
            TlsOptions {
                keys: vec!["localhost".into()],
                ..client_options(&[], None)
            },
            Some(vault()),
            server.clone(),
        );
        client.prepare().expect("trust and key");
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        echo_through(&mut app, "mutual").await.expect("echo");
        assert_eq!(probe.seen.lock().expect("lock").len(), 1);
    });
}

/// A client vault holding the key `alias` (from `<alias>.p12`) and the CA.
fn client_vault(alias: &str) -> Arc<dyn Vault> {
    let dir = keys();
    Arc::new(
        FilesystemVault::new("client")
            .with_keys(StoreConfig::new(dir.join(format!("{alias}.p12"))).password("secret"))
            .with_trust(StoreConfig::new(dir.join("trust.p12")).password("secret")),
    )
}

fn revoking_server(probe: Arc<Probe>, crls: Vec<PathBuf>) -> Arc<TlsServer> {
    let dir = keys();
    let vault: Arc<dyn Vault> = Arc::new(
        FilesystemVault::new("my_servers")
            .with_keys(StoreConfig::new(dir.join("keys.p12")).password("secret"))
            .with_trust(StoreConfig::new(dir.join("trust.p12")).password("secret"))
            .with_revocation_lists(crls),
    );
    let options = TlsOptions {
        trust: vec!["test ca".into()],
        mutual: Some(binding_tls::Mutual::Requested),
        ..server_options(&[])
    };
    Arc::new(TlsServer::new(
        "server",
        options,
        vault,
        Vec::new(),
        Some(probe),
    ))
}

#[test]
fn a_revoked_client_certificate_is_refused() {
    run(async |worker| {
        let probe = Arc::new(Probe::default());
        let unchecked = revoking_server(probe.clone(), Vec::new());
        let err = unchecked.prepare().expect_err("no lists").to_string();
        assert!(err.contains("holds no revocation list"), "{err}");
        let server = revoking_server(probe.clone(), vec![keys().join("ca.crl")]);
        server.prepare().expect("keys, trust and crl");
        let connect = async |keys: &[&str], alias: &str| {
            let client = TlsClient::new(
                "client",
                TlsOptions {
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                    ..client_options(&[], None)
                },
                Some(client_vault(alias)),
                server.clone(),
            );
            client.prepare().expect("client");
            let (mut app, acceptor) = stream::open(to_localhost());
            client.new_stream(acceptor, &worker);
            echo_through(&mut app, "x").await
        };
        // `mutual: requested`: no certificate is fine, a valid one too.
        connect(&[], "good").await.expect("anonymous");
        connect(&["good"], "good").await.expect("valid certificate");
        assert_eq!(probe.seen.lock().expect("lock").len(), 2);
        // The revoked one is refused (with TLS 1.3 possibly after the client's side is done).
        let err = connect(&["revoked"], "revoked")
            .await
            .expect_err("revoked certificate");
        assert!(
            err.contains("Unreachable") || err.contains("CertificateRevoked"),
            "{err}"
        );
        assert_eq!(probe.seen.lock().expect("lock").len(), 2);
        // Without the list the same certificate is served: the list is what refuses it.
        let options = TlsOptions {
            trust: vec!["test ca".into()],
            mutual: Some(binding_tls::Mutual::Requested),
            ..server_options(&[])
        };
        let plain = Arc::new(TlsServer::new(
            "plain",
            options,
            vault(),
            Vec::new(),
            Some(probe.clone()),
        ));
        plain.prepare().expect("keys and trust");
        let client = TlsClient::new(
            "client",
            TlsOptions {
                keys: vec!["revoked".into()],
                ..client_options(&[], None)
            },
            Some(client_vault("revoked")),
            plain,
        );
        client.prepare().expect("client");
        let (mut app, acceptor) = stream::open(to_localhost());
        client.new_stream(acceptor, &worker);
        echo_through(&mut app, "x")
            .await
            .expect("served without the list");
    });
}

#[test]
fn an_unreadable_revocation_list_stops_start_up() {
    let server = revoking_server(
        Arc::new(Probe::default()),
        vec![keys().join("ca.crt"), keys().join("ca.crl")],
    );
    let err = server.prepare().expect_err("not a crl").to_string();
    assert!(
        err.starts_with("binding 'server': vault 'my_servers': revocation list '"),
        "{err}"
    );
    assert!(
        err.contains("ca.crt': the file holds no 'X509 CRL' section"),
        "{err}"
    );
}

fn proxied_server(probe: Arc<Probe>) -> Arc<dyn Binding> {
    let server = Arc::new(TlsServer::new(
        "server",
        server_options(&["h2", "http/1.1"]),
        vault(),
        Vec::new(),
        Some(probe),
    ));
    server.prepare().expect("keys");
    server
}

fn when(authority: Option<&str>, alpn: Option<&str>) -> Vec<Condition> {
    vec![Condition {
        authority: authority.map(str::to_owned),
        alpn: alpn.map(str::to_owned),
        ..Condition::default()
    }]
}

/// Connects a tls client offering `alpn` through `proxy` and echoes one message.
async fn through_proxy(proxy: &Arc<TlsProxy>, alpn: &str, worker: &Worker) -> Result<(), String> {
    let client = TlsClient::new(
        "client",
        client_options(&[alpn], None),
        Some(vault()),
        proxy.clone(),
    );
    client.prepare().expect("trust");
    let (mut app, acceptor) = stream::open(to_localhost());
    client.new_stream(acceptor, worker);
    echo_through(&mut app, "through the proxy").await.map(drop)
}

#[test]
fn a_proxy_routes_by_server_name_and_alpn_without_terminating() {
    run(async |worker| {
        let (h2, other, named) = (
            Arc::new(Probe::default()),
            Arc::new(Probe::default()),
            Arc::new(Probe::default()),
        );
        let routes = vec![
            Route {
                when: when(Some("elsewhere"), None),
                exit: proxied_server(named.clone()),
                with: (),
            },
            Route {
                when: when(Some("LOCALHOST"), Some("h2")),
                exit: proxied_server(h2.clone()),
                with: (),
            },
        ];
        let proxy = Arc::new(TlsProxy::new(
            "proxy",
            routes,
            Some(proxied_server(other.clone())),
        ));
        through_proxy(&proxy, "h2", &worker).await.expect("h2");
        through_proxy(&proxy, "http/1.1", &worker)
            .await
            .expect("http/1.1");
        // The servers behind terminated TLS: they saw what the client negotiated.
        assert_eq!(h2.seen.lock().expect("lock")[0].alpn.as_deref(), Some("h2"));
        let seen = other.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].alpn.as_deref(), Some("http/1.1"));
        assert!(named.seen.lock().expect("lock").is_empty());
    });
}

#[test]
fn a_proxy_without_a_route_closes_the_connection() {
    run(async |worker| {
        let probe = Arc::new(Probe::default());
        let routes = vec![Route {
            when: when(None, Some("h2")),
            exit: proxied_server(probe.clone()),
            with: (),
        }];
        let proxy = Arc::new(TlsProxy::new("proxy", routes, None));
        let err = through_proxy(&proxy, "http/1.1", &worker)
            .await
            .expect_err("no route");
        assert!(
            err.starts_with("Unreachable") || err.starts_with("Dropped"),
            "{err}"
        );
        assert!(probe.seen.lock().expect("lock").is_empty());
        through_proxy(&proxy, "h2", &worker)
            .await
            .expect("the next one is routed");
        assert_eq!(probe.seen.lock().expect("lock").len(), 1);
    });
}

#[test]
fn a_proxy_closes_what_is_not_a_hello() {
    run(async |worker| {
        let probe = Arc::new(Probe::default());
        let proxy = Arc::new(TlsProxy::new("proxy", Vec::new(), Some(probe.clone())));
        let (mut net, acceptor) = stream::open(Begin::default());
        proxy.new_stream(acceptor, &worker);
        net.input
            .window(Window {
                credit: 1024,
                padding: 0,
            })
            .expect("window");
        net.output.ready(40).await.expect("credit");
        net.output
            .data(Data::new(&b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..]))
            .expect("data");
        loop {
            match net.input.frame().await {
                Some(Frame::Begin(_)) => {}
                Some(Frame::End(_)) => break,
                other => panic!("expected end, got {other:?}"),
            }
        }
        assert!(probe.seen.lock().expect("lock").is_empty());
    });
}
