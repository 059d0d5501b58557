//! HTTP/2 client steps of a network peer (`h2: ...`), played with the `h2` crate over the
//! peer's TCP connection: prior-knowledge connection, requests, and checks on responses,
//! with explicit control of the client's flow-control window.

use std::collections::BTreeMap;
use std::future::poll_fn;

use bytes::Bytes;
use h2::RecvStream;
use h2::client::{ResponseFuture, SendRequest};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

use crate::value::{self, Dur, Pattern, common_prefix, show};

/// What an `h2` step does.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum H2Action {
    /// Starts HTTP/2 with prior knowledge on the connection.
    Connect(Option<ConnectArgs>),
    /// Sends a request on a new stream.
    Request(RequestArgs),
    /// The latest stream's response head arrives, with this status and headers.
    ExpectResponse(ResponseArgs),
    /// The latest stream's body carries these bytes next.
    ExpectData(value::Bytes),
    /// The latest stream's body ends.
    ExpectEnd(Option<crate::step::Empty>),
    /// The latest stream is reset by the server (RST_STREAM).
    ExpectReset(Option<crate::step::Empty>),
    /// No body byte arrives on the latest stream for this long.
    ExpectNothing(Dur),
    /// Gives the server this many bytes of stream window back (for data already read).
    Release(u32),
}

/// `h2: {connect: ...}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectArgs {
    /// The client's initial stream window (default 65535). Data read is given back only by
    /// `release` when this is set, automatically otherwise.
    pub window: Option<u32>,
}

/// `h2: {request: ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestArgs {
    /// `:method`, `:path` (with `:authority`, `:scheme` optional) and headers.
    pub headers: BTreeMap<String, String>,
    /// A body to send.
    pub data: Option<value::Bytes>,
    /// Whether the request ends after the data (default true).
    pub end: Option<bool>,
}

/// `h2: {expect-response: ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseArgs {
    /// The status.
    pub status: u16,
    /// Headers that must be present with a matching value (`~`: absent).
    pub headers: Option<BTreeMap<String, Option<Pattern>>>,
}

struct Stream {
    response: Option<ResponseFuture>,
    body: Option<RecvStream>,
    pending: Vec<u8>,
}

/// An HTTP/2 client connection and its streams.
pub(crate) struct H2Conn {
    send: SendRequest<Bytes>,
    streams: Vec<Stream>,
    manual_window: bool,
    driver: JoinHandle<()>,
}

impl Drop for H2Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

type StepResult = Result<(), String>;

impl H2Conn {
    /// Hands the connection to an HTTP/2 client.
    pub(crate) async fn connect(
        socket: TcpStream,
        args: ConnectArgs,
        deadline: Instant,
    ) -> Result<H2Conn, String> {
        let mut builder = h2::client::Builder::new();
        if let Some(window) = args.window {
            builder.initial_window_size(window);
        }
        let (send, connection) = timeout_at(deadline, builder.handshake(socket))
            .await
            .map_err(|_| "the HTTP/2 handshake did not complete in time".to_owned())?
            .map_err(|e| format!("HTTP/2 handshake failed: {e}"))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(H2Conn {
            send,
            streams: Vec::new(),
            manual_window: args.window.is_some(),
            driver,
        })
    }

    /// Runs one `h2` step.
    pub(crate) async fn step(&mut self, action: &H2Action, deadline: Instant) -> StepResult {
        match action {
            H2Action::Connect(_) => Err("this connection already speaks HTTP/2".to_owned()),
            H2Action::Request(args) => self.request(args, deadline).await,
            H2Action::ExpectResponse(args) => {
                let stream = self.latest()?;
                let future = stream
                    .response
                    .take()
                    .ok_or_else(|| "the response head was already checked".to_owned())?;
                let response = timeout_at(deadline, future)
                    .await
                    .map_err(|_| "no response head arrived in time".to_owned())?
                    .map_err(|e| format!("expected a response, got {e}"))?;
                let (parts, body) = response.into_parts();
                stream.body = Some(body);
                if parts.status.as_u16() != args.status {
                    return Err(format!(
                        "status is {}, expected {}",
                        parts.status.as_u16(),
                        args.status
                    ));
                }
                for (name, want) in args.headers.iter().flatten() {
                    let got = parts.headers.get(name.as_str()).map(|v| v.as_bytes());
                    let got = got.map(String::from_utf8_lossy);
                    match (want, got) {
                        (None, None) => {}
                        (Some(want), Some(got)) if want.matches(&got) => {}
                        (want, got) => {
                            return Err(format!(
                                "header {name} is {got:?}, expected {:?}",
                                want.as_ref().map(|w| w.0.as_str())
                            ));
                        }
                    }
                }
                Ok(())
            }
            H2Action::ExpectData(want) => self.expect_data(&want.bytes, deadline).await,
            H2Action::ExpectEnd(_) => {
                let manual = self.manual_window;
                let body = self.body()?;
                loop {
                    match timeout_at(deadline, body.data()).await {
                        Ok(None) => return Ok(()),
                        // END_STREAM may come on an empty DATA frame.
                        Ok(Some(Ok(data))) if data.is_empty() => {}
                        Ok(Some(Ok(data))) => {
                            if !manual {
                                let _ = body.flow_control().release_capacity(data.len());
                            }
                            return Err(format!("expected the end, got data {}", show(&data)));
                        }
                        Ok(Some(Err(e))) => return Err(format!("expected the end, got {e}")),
                        Err(_) => return Err("the body did not end in time".to_owned()),
                    }
                }
            }
            H2Action::ExpectReset(_) => {
                let stream = self.latest()?;
                if let Some(future) = stream.response.take() {
                    return match timeout_at(deadline, future).await {
                        Ok(Err(e)) if e.is_reset() => Ok(()),
                        Ok(Err(e)) => Err(format!("expected a reset, got {e}")),
                        Ok(Ok(_)) => Err("expected a reset, got a response".to_owned()),
                        Err(_) => Err("no reset arrived in time".to_owned()),
                    };
                }
                let body = self.body()?;
                loop {
                    match timeout_at(deadline, body.data()).await {
                        Ok(Some(Err(e))) if e.is_reset() => return Ok(()),
                        Ok(Some(Err(e))) => return Err(format!("expected a reset, got {e}")),
                        Ok(Some(Ok(data))) => {
                            let _ = body.flow_control().release_capacity(data.len());
                        }
                        Ok(None) => return Err("expected a reset, the body ended".to_owned()),
                        Err(_) => return Err("no reset arrived in time".to_owned()),
                    }
                }
            }
            H2Action::ExpectNothing(duration) => {
                let stream = self.latest()?;
                if !stream.pending.is_empty() {
                    return Err(format!("{} unexpected", show(&stream.pending)));
                }
                let body = self.body()?;
                match timeout(duration.0, body.data()).await {
                    Err(_) => Ok(()),
                    Ok(Some(Ok(data))) => Err(format!(
                        "expected nothing for {:?}, got data {}",
                        duration.0,
                        show(&data)
                    )),
                    Ok(other) => Err(format!(
                        "expected nothing for {:?}, got {}",
                        duration.0,
                        match other {
                            Some(Err(e)) => e.to_string(),
                            _ => "the end of the body".to_owned(),
                        }
                    )),
                }
            }
            H2Action::Release(n) => {
                let n = *n as usize;
                self.body()?
                    .flow_control()
                    .release_capacity(n)
                    .map_err(|e| format!("cannot release {n} bytes: {e}"))
            }
        }
    }

    async fn request(&mut self, args: &RequestArgs, deadline: Instant) -> StepResult {
        let get = |name: &str| args.headers.get(name).map(String::as_str);
        let uri = format!(
            "{}://{}{}",
            get(":scheme").unwrap_or("http"),
            get(":authority").unwrap_or("localhost"),
            get(":path").unwrap_or("/")
        );
        let mut request = http::Request::builder()
            .method(get(":method").unwrap_or("GET"))
            .uri(uri);
        for (name, value) in &args.headers {
            if !name.starts_with(':') {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        let request = request
            .body(())
            .map_err(|e| format!("invalid request: {e}"))?;
        timeout_at(deadline, poll_fn(|cx| self.send.poll_ready(cx)))
            .await
            .map_err(|_| "the server allowed no new stream in time".to_owned())?
            .map_err(|e| format!("cannot open a stream: {e}"))?;
        let end = args.end.unwrap_or(true);
        let data = args.data.as_ref().map(|d| Bytes::from(d.bytes.clone()));
        let (response, mut send) = self
            .send
            .send_request(request, end && data.is_none())
            .map_err(|e| format!("cannot send the request: {e}"))?;
        if let Some(data) = data {
            send.send_data(data, end)
                .map_err(|e| format!("cannot send the body: {e}"))?;
        }
        self.streams.push(Stream {
            response: Some(response),
            body: None,
            pending: Vec::new(),
        });
        Ok(())
    }

    async fn expect_data(&mut self, want: &[u8], deadline: Instant) -> StepResult {
        let manual = self.manual_window;
        let stream = self.latest()?;
        let Some(body) = stream.body.as_mut() else {
            return Err("check the response with `expect-response` first".to_owned());
        };
        loop {
            let have = stream.pending.len().min(want.len());
            let agree = common_prefix(&stream.pending[..have], want);
            if agree < have {
                return Err(format!(
                    "data differs at byte {agree}: expected {}, got {}",
                    show(want),
                    show(&stream.pending)
                ));
            }
            if have == want.len() {
                stream.pending.drain(..want.len());
                return Ok(());
            }
            match timeout_at(deadline, body.data()).await {
                Ok(Some(Ok(data))) => {
                    if !manual {
                        let _ = body.flow_control().release_capacity(data.len());
                    }
                    stream.pending.extend_from_slice(&data);
                }
                Ok(Some(Err(e))) => {
                    return Err(format!(
                        "expected data {}, got {} and then {e}",
                        show(want),
                        show(&stream.pending)
                    ));
                }
                Ok(None) => {
                    return Err(format!(
                        "expected data {}, got {} and then the end",
                        show(want),
                        show(&stream.pending)
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "expected data {}, got {} in time",
                        show(want),
                        show(&stream.pending)
                    ));
                }
            }
        }
    }

    fn latest(&mut self) -> Result<&mut Stream, String> {
        self.streams
            .last_mut()
            .ok_or_else(|| "no HTTP/2 request yet: `h2: {request: ...}` first".to_owned())
    }

    fn body(&mut self) -> Result<&mut RecvStream, String> {
        self.latest()?
            .body
            .as_mut()
            .ok_or_else(|| "check the response with `expect-response` first".to_owned())
    }
}
