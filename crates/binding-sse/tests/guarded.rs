//! Guarded sse routes: a session of the guard with every role opens the subscription (and
//! travels on to the application); no credentials or rejected ones get 401, a missing role
//! 403, each with its `WWW-Authenticate` challenge; an application's guard refusal too. A
//! guarded stream challenges its client before its session expires, ends at the expiry, and
//! goes on when the client re-authorizes (paused time).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::http::{Header, HttpBeginEx};
use binding_api::frame::{Begin, End, Frame, ReasonKind, Window};
use binding_api::guard::{Authorization, GuardRefusal, Guarded, LiveSessions, Session};
use binding_api::route::{Pattern, Route};
use binding_api::stream::{self, Acceptor, Initiator};
use binding_sse::{SseOptions, SseServer};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// How long the application may take to get a stream.
const SECOND: Duration = Duration::from_secs(1);

/// An application binding that hands its streams to the test.
struct App(mpsc::UnboundedSender<Acceptor>);

impl Binding for App {
    fn name(&self) -> &str {
        "app"
    }

    fn new_stream(&self, stream: Acceptor, _worker: &Worker) {
        let _ = self.0.send(stream);
    }
}

fn verified(guard: &str, roles: &[&str]) -> Authorization {
    Authorization::Verified(Arc::new(Session {
        guard: guard.into(),
        identity: Some("alice".into()),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        attributes: BTreeMap::new(),
        expires_at: SystemTime::now() + Duration::from_secs(60),
        challenge_at: None,
        live: None,
    }))
}

/// `/events` guarded by `jwt` with the role `stream`; `/open/*` not guarded; no exit.
fn server(app: Arc<dyn Binding>) -> SseServer {
    let routes = vec![
        Route {
            when: vec![Pattern::new("/events").unwrap()],
            exit: app.clone(),
            with: Guarded::new([("jwt", ["stream"])]),
        },
        Route {
            when: vec![Pattern::new("/open/*").unwrap()],
            exit: app,
            with: Guarded::default(),
        },
    ];
    SseServer::new("sse", SseOptions::default(), routes, None)
}

fn get(path: &str, authorization: Authorization) -> Begin {
    let mut request = HttpBeginEx::new(vec![
        Header::new(":method", "GET"),
        Header::new(":scheme", "http"),
        Header::new(":authority", "localhost"),
        Header::new(":path", path.to_owned()),
    ]);
    request.authorization = authorization;
    Begin {
        ext: BeginEx::Http(request),
    }
}

/// The response's status and `www-authenticate`.
async fn response(client: &mut Initiator) -> (u16, Option<String>) {
    match client.input.frame().await {
        Some(Frame::Begin(begin)) => {
            let BeginEx::Http(http) = begin.ext else {
                panic!("not http")
            };
            let status = http.status().unwrap();
            (status, http.get("www-authenticate").map(str::to_owned))
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

fn local<F: std::future::Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, test);
}

/// What the server answers `path` with `authorization` when it refuses it itself.
async fn refused(path: &str, authorization: Authorization) -> (u16, Option<String>) {
    let (tx, _rx) = mpsc::unbounded_channel();
    let sse = server(Arc::new(App(tx)));
    let worker = Worker::new(0, 1, CancellationToken::new());
    let (mut client, acceptor) = stream::open(get(path, authorization));
    sse.new_stream(acceptor, &worker);
    response(&mut client).await
}

#[test]
fn no_credentials_or_rejected_ones_get_401_with_a_challenge() {
    local(async {
        assert_eq!(
            refused("/events", Authorization::Anonymous).await,
            (401, Some(r#"Bearer realm="jwt""#.into()))
        );
        let expired = Authorization::Rejected {
            guard: "jwt".into(),
            description: "the token expired",
        };
        assert_eq!(
            refused("/events", expired).await,
            (
                401,
                Some(
                    r#"Bearer realm="jwt", error="invalid_token", error_description="the token expired""#
                        .into()
                )
            )
        );
        assert_eq!(
            refused("/events", verified("other", &["stream"])).await.0,
            401,
            "a session of another guard"
        );
    });
}

#[test]
fn a_session_lacking_a_role_gets_403() {
    local(async {
        assert_eq!(
            refused("/events", verified("jwt", &["read"])).await,
            (
                403,
                Some(r#"Bearer realm="jwt", error="insufficient_scope""#.into())
            )
        );
        assert_eq!(
            refused("/elsewhere", Authorization::Anonymous).await,
            (404, None)
        );
    });
}

#[test]
fn a_session_with_every_role_subscribes_and_its_authorization_travels_on() {
    local(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sse = server(Arc::new(App(tx)));
        let worker = Worker::new(0, 1, CancellationToken::new());
        let authorization = verified("jwt", &["read", "stream"]);
        let (_client, acceptor) = stream::open(get("/events", authorization.clone()));
        sse.new_stream(acceptor, &worker);
        let app = timeout(SECOND, rx.recv()).await.unwrap().unwrap();
        let BeginEx::Sse(subscription) = &app.begin.ext else {
            panic!("not sse")
        };
        assert_eq!(subscription.authorization, authorization);
        // An unguarded route takes anyone.
        let (_client, acceptor) = stream::open(get("/open/x", Authorization::Anonymous));
        sse.new_stream(acceptor, &worker);
        assert!(timeout(SECOND, rx.recv()).await.unwrap().is_some());
    });
}

#[test]
fn an_application_refusing_for_its_guard_gets_the_status_and_challenge() {
    local(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sse = server(Arc::new(App(tx)));
        let worker = Worker::new(0, 1, CancellationToken::new());
        let (mut client, acceptor) = stream::open(get("/open/x", Authorization::Anonymous));
        sse.new_stream(acceptor, &worker);
        let app = timeout(SECOND, rx.recv()).await.unwrap().unwrap();
        let refusal = GuardRefusal::Forbidden {
            guard: "kafka_jwt".into(),
            missing: "read".into(),
        };
        app.refuse(refusal.into_reset());
        assert_eq!(
            response(&mut client).await,
            (
                403,
                Some(r#"Bearer realm="kafka_jwt", error="insufficient_scope""#.into())
            )
        );
    });
}

#[test]
fn a_guarded_stream_ends_cleanly_when_its_session_expires() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sse = server(Arc::new(App(tx)));
        let worker = Worker::new(0, 1, CancellationToken::new());
        let Authorization::Verified(session) = verified("jwt", &["stream"]) else {
            unreachable!()
        };
        let mut session = Session::clone(&session);
        session.expires_at = SystemTime::now() + Duration::from_secs(60);
        let authorization = Authorization::Verified(Arc::new(session));
        let (mut client, acceptor) = stream::open(get("/events", authorization));
        sse.new_stream(acceptor, &worker);
        client.output.end(End::default()).unwrap();
        client
            .input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        let mut app = timeout(SECOND, rx.recv()).await.unwrap().unwrap();
        app.output.begin(Begin::default()).unwrap();
        assert_eq!(response(&mut client).await.0, 200);
        // Open until the session expires (heartbeats aside), then ended, not aborted: the
        // client resumes by id with fresh credentials.
        let started = tokio::time::Instant::now();
        let last = timeout(Duration::from_secs(120), async {
            loop {
                match client.input.frame().await {
                    Some(Frame::Data(_) | Frame::Flush(_)) => {}
                    other => break other,
                }
            }
        })
        .await
        .expect("the response did not end");
        assert!(matches!(last, Some(Frame::End(_))), "got {last:?}");
        let open = started.elapsed();
        assert!(
            open >= Duration::from_secs(59) && open <= Duration::from_secs(61),
            "ended after {open:?}"
        );
        // The application is told why.
        let told = loop {
            match app.input.frame().await {
                Some(Frame::Abort(abort)) => break Some(abort.reason.kind),
                Some(_) => {}
                None => break None,
            }
        };
        assert_eq!(told, Some(ReasonKind::Unauthorized));
    });
}

/// The challenge event, as Zilla writes it.
const CHALLENGE: &str = "event:challenge\ndata:{\"method\":\"POST\",\"headers\":{\"content-type\":\"application/x-challenge-response\"}}\n\n";

/// A session of `jwt` for alice with the role `stream`, kept by `live`, expiring `lifetime`
/// after `start` and challenged 10 s before.
fn lasting(live: &Arc<LiveSessions>, start: SystemTime, lifetime: u64) -> Session {
    let expires_at = start + Duration::from_secs(lifetime);
    Session {
        guard: "jwt".into(),
        identity: Some("alice".into()),
        roles: vec!["stream".into()],
        attributes: BTreeMap::new(),
        expires_at,
        challenge_at: Some(expires_at - Duration::from_secs(10)),
        live: Some(live.clone()),
    }
}

/// What the client sees next, after heartbeats and the preamble: a challenge (`Ok`, with
/// when it came, from `started`), or the frame that ended the response (`Err`).
async fn next_challenge(
    client: &mut Initiator,
    started: tokio::time::Instant,
) -> Result<Duration, Option<Frame>> {
    let mut text = String::new();
    loop {
        match client.input.frame().await {
            Some(Frame::Data(data)) => {
                text.push_str(std::str::from_utf8(&data.payload).unwrap());
                client.input.replenish();
                if text.contains(CHALLENGE) {
                    return Ok(started.elapsed());
                }
            }
            Some(Frame::Flush(_)) => {}
            other => return Err(other),
        }
    }
}

/// Opens a guarded subscription with `session` on a paused clock and runs `test` with the
/// client's end, once the response began.
fn subscribed<F: std::future::Future<Output = ()>>(
    session: Session,
    test: impl FnOnce(Initiator, tokio::time::Instant) -> F,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sse = server(Arc::new(App(tx)));
        let worker = Worker::new(0, 1, CancellationToken::new());
        let started = tokio::time::Instant::now();
        let authorization = Authorization::Verified(Arc::new(session));
        let (mut client, acceptor) = stream::open(get("/events", authorization));
        sse.new_stream(acceptor, &worker);
        client.output.end(End::default()).unwrap();
        client
            .input
            .window(Window {
                credit: 65536,
                padding: 0,
            })
            .unwrap();
        let mut app = timeout(SECOND, rx.recv()).await.unwrap().unwrap();
        app.output.begin(Begin::default()).unwrap();
        assert_eq!(response(&mut client).await.0, 200);
        test(client, started).await;
        drop(app);
    });
}

/// Whether `elapsed` is `secs` give or take the lease's precision (expiries are kept in whole
/// milliseconds of the wall clock, so a deadline may fall up to a millisecond early) and
/// within a second after.
fn around(elapsed: Duration, secs: u64) -> bool {
    let at = Duration::from_secs(secs);
    elapsed + Duration::from_millis(2) >= at && elapsed < at + SECOND
}

#[test]
fn a_guarded_stream_is_challenged_before_its_session_expires_then_ends() {
    let live = LiveSessions::new("jwt");
    subscribed(
        lasting(&live, SystemTime::now(), 60),
        |mut client, started| async move {
            let challenged = next_challenge(&mut client, started).await.unwrap();
            assert!(around(challenged, 50), "challenged after {challenged:?}");
            let ended = next_challenge(&mut client, started).await.unwrap_err();
            assert!(matches!(ended, Some(Frame::End(_))), "got {ended:?}");
            assert!(
                around(started.elapsed(), 60),
                "ended after {:?}",
                started.elapsed()
            );
        },
    );
}

#[test]
fn a_reauthorized_stream_goes_on_past_its_first_expiry_and_is_challenged_again() {
    let live = LiveSessions::new("jwt");
    let start = SystemTime::now();
    let session = lasting(&live, start, 60);
    subscribed(session, |mut client, started| async move {
        assert_eq!(live.len(), 1, "the stream's lease is kept");
        let challenged = next_challenge(&mut client, started).await.unwrap();
        assert!(around(challenged, 50), "challenged after {challenged:?}");
        // The client answers with a fresh token that lasts until 120 s.
        assert_eq!(live.renew(&lasting(&live, start, 120)), 1);
        let again = next_challenge(&mut client, started).await.unwrap();
        assert!(around(again, 110), "challenged again after {again:?}");
        let ended = next_challenge(&mut client, started).await.unwrap_err();
        assert!(matches!(ended, Some(Frame::End(_))), "got {ended:?}");
        assert!(
            around(started.elapsed(), 120),
            "ended after {:?}",
            started.elapsed()
        );
        tokio::task::yield_now().await;
        assert!(live.is_empty(), "forgotten when the stream ended");
    });
}

#[test]
fn an_expired_session_is_refused_with_401() {
    local(async {
        let live = LiveSessions::new("jwt");
        let mut session = lasting(&live, SystemTime::now(), 0);
        session.challenge_at = None;
        let (status, challenge) =
            refused("/events", Authorization::Verified(Arc::new(session))).await;
        assert_eq!(status, 401);
        assert!(
            challenge
                .unwrap()
                .contains(r#"error_description="the token expired""#),
            "refused as rejected credentials"
        );
    });
}
