//! `options.authorization` over HTTP/1.1 and HTTP/2: the request's credentials are verified
//! once and the outcome reaches the application in the request's begin; a guard's refusal
//! from the application is answered 401 with `WWW-Authenticate`; a challenge response (POST,
//! `application/x-challenge-response`) re-authorizes the client's live streams and is
//! answered by the server itself.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::HttpBeginEx;
use binding_api::ext::tls::TlsBeginEx;
use binding_api::frame::{Begin, Data, End, Frame, Window};
use binding_api::guard::{Authorization, Denied, Guard, GuardRefusal, LiveSessions, Session};
use binding_api::stream::{self, Acceptor};
use binding_http::{Authorizer, CredentialPattern, CredentialSources, HttpOptions, HttpServer};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;

/// Accepts the token `good-NAME` as NAME, with the role `stream`, for a minute; refuses
/// anything else. Keeps live sessions.
#[derive(Debug)]
struct TestGuard {
    live: Arc<LiveSessions>,
}

impl TestGuard {
    fn new() -> TestGuard {
        TestGuard {
            live: LiveSessions::new("jwt"),
        }
    }
}

impl Guard for TestGuard {
    fn name(&self) -> &str {
        "jwt"
    }

    fn verify(&self, credentials: &str, now: SystemTime) -> Result<Session, Denied> {
        let Some(identity) = credentials.strip_prefix("good-") else {
            return Err(Denied {
                description: "the token is malformed",
                detail: "not a test token".into(),
            });
        };
        Ok(Session {
            guard: "jwt".into(),
            identity: Some(identity.to_owned()),
            roles: vec!["stream".into()],
            attributes: BTreeMap::new(),
            expires_at: now + Duration::from_secs(60),
            challenge_at: None,
            live: Some(self.live.clone()),
        })
    }
}

/// Answers with what the request's authorization came to; refuses `/guarded` as a guarded
/// route would, for want of a session.
struct App;

impl Binding for App {
    fn name(&self) -> &str {
        "app"
    }

    fn new_stream(&self, stream: Acceptor, worker: &Worker) {
        let BeginEx::Http(request) = &stream.begin.ext else {
            panic!("expected an http request");
        };
        if request.path() == Some("/guarded") {
            let refusal = GuardRefusal::Unauthenticated {
                guard: "jwt".into(),
                rejected: None,
            };
            stream.refuse(refusal.into_reset());
            return;
        }
        let body = match &request.authorization {
            Authorization::Anonymous => "anonymous".to_owned(),
            Authorization::Verified(session) => {
                format!("verified {}", session.identity.as_deref().unwrap_or(""))
            }
            Authorization::Rejected { guard, description } => {
                format!("rejected by {guard}: {description}")
            }
        };
        let Acceptor {
            output: mut reply, ..
        } = stream;
        worker.spawn(async move {
            let length = body.len().to_string();
            let head = HttpBeginEx::response(
                200,
                [binding_api::ext::http::Header::new(
                    "content-length",
                    length,
                )],
            );
            reply
                .begin(Begin {
                    ext: BeginEx::Http(head),
                })
                .expect("begin");
            reply.ready(body.len()).await.expect("credit");
            reply.data(Data::new(body)).expect("data");
            reply.end(End::default()).expect("end");
        });
    }
}

fn server() -> HttpServer {
    server_with(Arc::new(TestGuard::new()))
}

fn server_with(guard: Arc<TestGuard>) -> HttpServer {
    let sources = CredentialSources {
        headers: vec![(
            "authorization".into(),
            CredentialPattern::parse("Bearer {credentials}").unwrap(),
        )],
        query: vec![(
            "access_token".into(),
            CredentialPattern::parse("{credentials}").unwrap(),
        )],
        cookies: Vec::new(),
    };
    let options = HttpOptions {
        authorization: Some(Authorizer::new(guard, sources)),
        ..HttpOptions::default()
    };
    HttpServer::new("http", options, Vec::new(), Some(Arc::new(App)))
}

/// Opens a network stream to `server` (as a tls server with ALPN `alpn` would, or a tcp
/// server) and bridges it to the returned end of an in-memory pipe.
fn connect(server: &HttpServer, worker: &Worker, alpn: Option<&str>) -> DuplexStream {
    let ext = match alpn {
        Some(alpn) => BeginEx::Tls(TlsBeginEx {
            alpn: Some(alpn.into()),
            ..TlsBeginEx::default()
        }),
        None => BeginEx::None,
    };
    let (initiator, acceptor) = stream::open(Begin { ext });
    server.new_stream(acceptor, worker);
    let (client_io, bridge_io) = tokio::io::duplex(64 * 1024);
    let (mut from_client, mut to_client) = tokio::io::split(bridge_io);
    let mut to_server = initiator.output;
    let mut from_server = initiator.input;
    from_server
        .window(Window {
            credit: 64 * 1024,
            padding: 0,
        })
        .unwrap();
    tokio::task::spawn_local(async move {
        loop {
            to_server.ready(1).await.unwrap();
            let room = to_server.credit().min(16 * 1024) as usize;
            let mut buf = BytesMut::with_capacity(room);
            match (&mut from_client)
                .take(room as u64)
                .read_buf(&mut buf)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => to_server.data(Data::new(buf.freeze())).unwrap(),
            }
        }
    });
    tokio::task::spawn_local(async move {
        while let Some(frame) = from_server.frame().await {
            if let Frame::Data(data) = frame {
                to_client.write_all(&data.payload).await.unwrap();
                from_server.replenish();
            }
        }
        let _ = to_client.shutdown().await;
    });
    client_io
}

/// Runs `test` on a worker of its own.
fn on_worker<F: std::future::Future<Output = ()>>(test: impl FnOnce(Worker) -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(0, 1, CancellationToken::new());
    local.block_on(&runtime, test(worker));
}

/// One HTTP/1.1 request on a connection of its own: the response as text.
async fn h1(server: &HttpServer, worker: &Worker, path: &str, headers: &str) -> String {
    request(server, worker, "GET", path, headers).await
}

/// One HTTP/1.1 request with `method` on a connection of its own: the response as text.
async fn request(
    server: &HttpServer,
    worker: &Worker,
    method: &str,
    path: &str,
    headers: &str,
) -> String {
    let mut io = connect(server, worker, None);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{headers}\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    io.read_to_end(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()
}

#[test]
fn http1_requests_carry_what_their_credentials_came_to() {
    on_worker(|worker| async move {
        let server = server();
        let bearer = h1(
            &server,
            &worker,
            "/e",
            "authorization: Bearer good-alice\r\n",
        )
        .await;
        assert!(bearer.ends_with("\r\n\r\nverified alice"), "{bearer}");
        let query = h1(&server, &worker, "/e?a=1&access_token=good-bob", "").await;
        assert!(query.ends_with("\r\n\r\nverified bob"), "{query}");
        let none = h1(&server, &worker, "/e", "").await;
        assert!(none.ends_with("\r\n\r\nanonymous"), "{none}");
        let bad = h1(&server, &worker, "/e", "authorization: Bearer forged\r\n").await;
        assert!(
            bad.ends_with("\r\n\r\nrejected by jwt: the token is malformed"),
            "{bad}"
        );
    });
}

#[test]
fn http1_answers_a_guard_refusal_with_401_and_its_challenge() {
    on_worker(|worker| async move {
        let refused = h1(&server(), &worker, "/guarded", "").await;
        assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
        assert!(
            refused
                .to_ascii_lowercase()
                .contains("\r\nwww-authenticate: bearer realm=\"jwt\"\r\n"),
            "{refused}"
        );
    });
}

#[test]
fn http2_requests_carry_what_their_credentials_came_to_and_refusals_get_401() {
    on_worker(|worker| async move {
        let server = server();
        let io = connect(&server, &worker, Some("h2"));
        let (mut client, connection) = h2::client::handshake(io).await.unwrap();
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        let mut get = async |path: &str, authorization: Option<&str>| {
            let mut request = http::Request::get(format!("https://localhost{path}"));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let (response, _) = client
                .send_request(request.body(()).unwrap(), true)
                .unwrap();
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let mut body = response.into_body();
            let mut text = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk: Bytes = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                text.extend_from_slice(&chunk);
            }
            (status, challenge, String::from_utf8(text).unwrap())
        };
        let (status, _, body) = get("/e", Some("Bearer good-carol")).await;
        assert_eq!((status, body.as_str()), (200, "verified carol"));
        let (_, _, body) = get("/e?access_token=good-dave", None).await;
        assert_eq!(body, "verified dave");
        let (_, _, body) = get("/e", Some("Bearer nope")).await;
        assert_eq!(body, "rejected by jwt: the token is malformed");
        let (status, challenge, _) = get("/guarded", None).await;
        assert_eq!(status, 401);
        assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="jwt""#));
    });
}

/// A stream of `identity`'s, admitted with the role `stream` a minute ago and expiring now.
fn live_stream(guard: &TestGuard, identity: &str) -> binding_api::guard::Lease {
    let now = SystemTime::now();
    let admitted = Session {
        guard: "jwt".into(),
        identity: Some(identity.to_owned()),
        roles: vec!["stream".into()],
        attributes: BTreeMap::new(),
        expires_at: now,
        challenge_at: None,
        live: Some(guard.live.clone()),
    };
    guard.live.hold(&admitted, &["stream".to_owned()])
}

#[test]
fn http1_challenge_responses_reauthorize_live_streams_and_reach_no_application() {
    on_worker(|worker| async move {
        let guard = Arc::new(TestGuard::new());
        let server = server_with(guard.clone());
        let alice = live_stream(&guard, "alice");
        let bob = live_stream(&guard, "bob");
        let before = alice.expires_at();
        let challenge = "content-type: application/x-challenge-response\r\ncontent-length: 0\r\n";

        let renewed = request(
            &server,
            &worker,
            "POST",
            "/events",
            &format!("{challenge}authorization: Bearer good-alice\r\n"),
        )
        .await;
        assert!(renewed.starts_with("HTTP/1.1 204 "), "{renewed}");
        assert!(alice.expires_at() >= before + Duration::from_secs(59));
        assert_eq!(bob.expires_at(), before, "another identity's stream");

        let missing = request(&server, &worker, "POST", "/events", challenge).await;
        assert!(missing.starts_with("HTTP/1.1 401 "), "{missing}");
        assert!(
            missing
                .to_ascii_lowercase()
                .contains("\r\nwww-authenticate: bearer realm=\"jwt\"\r\n"),
            "{missing}"
        );
        let forged = request(
            &server,
            &worker,
            "POST",
            "/events?access_token=forged",
            "content-type: Application/X-Challenge-Response; charset=utf-8\r\n",
        )
        .await;
        assert!(forged.starts_with("HTTP/1.1 401 "), "{forged}");
        assert!(forged.contains("error=\"invalid_token\""), "{forged}");
        // Any other POST goes to the application as before.
        let other = request(
            &server,
            &worker,
            "POST",
            "/events",
            "content-type: text/plain\r\ncontent-length: 0\r\nauthorization: Bearer good-bob\r\n",
        )
        .await;
        assert!(other.ends_with("\r\n\r\nverified bob"), "{other}");
        assert_eq!(bob.expires_at(), before);
    });
}

#[test]
fn http2_challenge_responses_reauthorize_live_streams() {
    on_worker(|worker| async move {
        let guard = Arc::new(TestGuard::new());
        let server = server_with(guard.clone());
        let carol = live_stream(&guard, "carol");
        let before = carol.expires_at();
        let io = connect(&server, &worker, Some("h2"));
        let (mut client, connection) = h2::client::handshake(io).await.unwrap();
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        let mut post = async |token: &str| {
            let request =
                http::Request::post(format!("https://localhost/events?access_token={token}"))
                    .header("content-type", "application/x-challenge-response")
                    .body(())
                    .unwrap();
            let (response, _) = client.send_request(request, true).unwrap();
            response.await.unwrap().status().as_u16()
        };
        assert_eq!(post("forged").await, 401);
        assert_eq!(carol.expires_at(), before);
        assert_eq!(post("good-carol").await, 204);
        assert!(carol.expires_at() >= before + Duration::from_secs(59));
    });
}
