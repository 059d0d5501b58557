//! One connection to one broker, through the binding's exit (a tcp client stream): requests
//! are pipelined with correlation ids, responses matched in order.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use binding_api::frame::{Begin, Data, Frame, Reason, ReasonKind, Window};
use binding_api::stream::{self, Reader, Writer};
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use crate::ClientError;
use crate::config::{Mechanism, Sasl};
use crate::proto::api_versions::{self, Versions};
use crate::proto::sasl;
use crate::proto::{Request, frame_request, split_response};
use crate::scram::{Scram, ScramHash};

/// Credit granted to the exit for response bytes; replenished as bytes are taken.
const READ_WINDOW: u32 = 1024 * 1024;
/// Requests queued for a connection's writer at most; a stream asking beyond that waits.
const MAX_QUEUED: usize = 1024;
/// The largest response accepted (a fetch asks for far less).
pub const MAX_RESPONSE: usize = 128 * 1024 * 1024;

struct Pending {
    request: Request,
    reply: oneshot::Sender<Result<Bytes, ClientError>>,
}

/// A live connection to a broker.
pub struct Connection {
    tx: mpsc::Sender<Pending>,
    alive: Rc<Cell<bool>>,
    /// The API versions negotiated with the broker.
    pub versions: Versions,
    /// Where it goes, for messages.
    pub endpoint: String,
}

impl Connection {
    /// Opens a connection to `host:port` through `exit` and negotiates versions.
    pub async fn open(
        exit: &Arc<dyn Binding>,
        worker: &Worker,
        host: &str,
        port: u16,
        credentials: Option<&Sasl>,
    ) -> Result<Rc<Connection>, ClientError> {
        let endpoint = format!("{host}:{port}");
        let begin = Begin {
            ext: BeginEx::Tcp(TcpBeginEx {
                local: None,
                remote: Endpoint::Host {
                    host: host.to_owned(),
                    port,
                },
            }),
        };
        let (mut initiator, acceptor) = stream::open(begin);
        exit.new_stream(acceptor, worker);
        let unreachable = |detail: String| ClientError::Unreachable {
            endpoint: endpoint.clone(),
            detail,
        };
        match initiator.reply.frame().await {
            Some(Frame::Begin(_)) => {}
            Some(Frame::Abort(abort)) => return Err(unreachable(abort.reason.to_string())),
            _ => {
                let why = initiator.initial.reset_reason().map_or_else(
                    || "the exit closed the stream".to_owned(),
                    |r| r.reason.to_string(),
                );
                return Err(unreachable(why));
            }
        }
        initiator
            .reply
            .window(Window {
                credit: READ_WINDOW,
                padding: 0,
            })
            .map_err(|e| unreachable(e.to_string()))?;
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        let alive = Rc::new(Cell::new(true));
        worker.spawn(run(
            initiator.initial,
            initiator.reply,
            rx,
            alive.clone(),
            endpoint.clone(),
        ));
        let mut conn = Connection {
            tx,
            alive,
            versions: Versions {
                fetch: 4,
                list_offsets: 1,
                metadata: 1,
                produce: 3,
                describe_configs: 1,
            },
            endpoint: endpoint.clone(),
        };
        let body = conn.send(api_versions::request()).await?;
        let response = api_versions::decode(body)?;
        if response.error_code != 0 {
            return Err(ClientError::Broker {
                endpoint,
                code: response.error_code,
            });
        }
        conn.versions =
            api_versions::negotiate(&response).map_err(|api| ClientError::Unsupported { api })?;
        if let Some(credentials) = credentials {
            conn.authenticate(credentials).await?;
        }
        Ok(Rc::new(conn))
    }

    /// SaslHandshake, then SaslAuthenticate rounds for the mechanism.
    async fn authenticate(&self, credentials: &Sasl) -> Result<(), ClientError> {
        let mechanism = credentials.mechanism.name();
        let fail = |detail: String| ClientError::Sasl {
            mechanism,
            user: credentials.username.clone(),
            detail,
        };
        let (code, enabled) =
            sasl::decode_handshake(self.send(sasl::handshake_request(mechanism)).await?)?;
        if code != 0 {
            return Err(fail(format!(
                "the broker enables only {} (error {code})",
                enabled.join(", ")
            )));
        }
        let round = |bytes: Vec<u8>| async move {
            let response =
                sasl::decode_authenticate(self.send(sasl::authenticate_request(&bytes)).await?)?;
            if response.error_code != 0 {
                let message = response.error_message.unwrap_or_default();
                return Err(fail(format!("{message} (error {})", response.error_code)));
            }
            Ok(String::from_utf8_lossy(&response.auth_bytes).into_owned())
        };
        let hash = match credentials.mechanism {
            Mechanism::Plain => {
                let token = format!("\0{}\0{}", credentials.username, credentials.password);
                round(token.into_bytes()).await?;
                return Ok(());
            }
            Mechanism::ScramSha256 => ScramHash::Sha256,
            Mechanism::ScramSha512 => ScramHash::Sha512,
        };
        let nonce = crate::scram::nonce().map_err(fail)?;
        let (mut scram, first) =
            Scram::start(hash, &credentials.username, &credentials.password, &nonce);
        let server_first = round(first.into_bytes()).await?;
        let last = scram.answer(&server_first).map_err(fail)?;
        let server_final = round(last.into_bytes()).await?;
        scram.finish(&server_final).map_err(fail)
    }

    /// Whether the connection still works.
    pub fn is_alive(&self) -> bool {
        self.alive.get()
    }

    /// Sends a request and waits for its response body.
    pub async fn send(&self, request: Request) -> Result<Bytes, ClientError> {
        let lost = || ClientError::ConnectionLost {
            endpoint: self.endpoint.clone(),
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { request, reply })
            .await
            .map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }
}

async fn write_all(writer: &mut Writer, mut bytes: Bytes) -> bool {
    while !bytes.is_empty() {
        if writer.ready(1).await.is_err() {
            return false;
        }
        let room = writer.credit().saturating_sub(u64::from(writer.padding()));
        let n = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .clamp(1, bytes.len());
        if writer.data(Data::new(bytes.split_to(n))).is_err() {
            return false;
        }
    }
    true
}

async fn run(
    mut writer: Writer,
    mut reader: Reader,
    mut rx: mpsc::Receiver<Pending>,
    alive: Rc<Cell<bool>>,
    endpoint: String,
) {
    let mut in_flight: VecDeque<(i32, oneshot::Sender<Result<Bytes, ClientError>>)> =
        VecDeque::new();
    let mut next_id: i32 = 1;
    let mut buf = BytesMut::new();
    let failure = loop {
        tokio::select! {
            pending = rx.recv() => {
                let Some(pending) = pending else { break None };
                let id = next_id;
                next_id = next_id.wrapping_add(1).max(1);
                in_flight.push_back((id, pending.reply));
                if !write_all(&mut writer, frame_request(&pending.request, id)).await {
                    break Some("the connection closed while writing".to_owned());
                }
            }
            frame = reader.frame() => match frame {
                Some(Frame::Data(data)) => {
                    buf.extend_from_slice(&data.payload);
                    reader.replenish();
                    let mut bad = None;
                    loop {
                        match split_response(&mut buf, MAX_RESPONSE) {
                            Ok(Some((id, body))) => match in_flight.pop_front() {
                                Some((want, reply)) if want == id => {
                                    let _ = reply.send(Ok(body));
                                }
                                _ => {
                                    bad = Some(format!("unexpected correlation id {id}"));
                                    break;
                                }
                            },
                            Ok(None) => break,
                            Err(e) => {
                                bad = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    if let Some(bad) = bad {
                        break Some(bad);
                    }
                }
                Some(Frame::Abort(abort)) => break Some(abort.reason.to_string()),
                Some(_) => break Some("the broker closed the connection".to_owned()),
                None => break Some("the connection went away".to_owned()),
            }
        }
    };
    alive.set(false);
    if let Some(detail) = &failure {
        tracing::debug!(%endpoint, %detail, "kafka connection lost");
    }
    let _ = writer.abort(Reason::new(
        ReasonKind::ConnectionLost,
        "kafka connection closed",
    ));
    for (_, reply) in in_flight {
        let _ = reply.send(Err(ClientError::ConnectionLost {
            endpoint: endpoint.clone(),
        }));
    }
    rx.close();
    while let Ok(pending) = rx.try_recv() {
        let _ = pending.reply.send(Err(ClientError::ConnectionLost {
            endpoint: endpoint.clone(),
        }));
    }
}
