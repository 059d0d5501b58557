//! One connection to one broker, through the binding's exit (a tcp client stream): requests
//! are pipelined with correlation ids, responses matched in order.
//!
//! Memory: a response reserves its announced size from the [`ResponseBudget`] the worker's
//! connections to the cluster share before more than the read window ([`READ_WINDOW`]) of it
//! is taken, and frees it once whole; a connection that cannot reserve stops granting credit
//! until another frees some. What a worker holds of responses being received is thus at most
//! the budget plus one read window per connection, however many node ids a broker advertises.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use binding_api::binding::{Binding, Worker};
use binding_api::ext::BeginEx;
use binding_api::ext::tcp::{Endpoint, TcpBeginEx};
use binding_api::frame::{Begin, Data, Frame, Reason, ReasonKind, Window};
use binding_api::stream::{self, Reader, Writer};
use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::ClientError;
use crate::config::{Mechanism, Sasl};
use crate::proto::api_versions::{self, Versions};
use crate::proto::sasl;
use crate::proto::{Request, frame_request, response_size, split_response};
use crate::report::Reports;
use crate::scram::{Scram, ScramHash};

/// Credit granted to the exit for response bytes; replenished as bytes are taken.
pub const READ_WINDOW: u32 = 1024 * 1024;
/// Requests queued for a connection's writer at most; a stream asking beyond that waits.
const MAX_QUEUED: usize = 1024;
/// The largest response accepted (a fetch asks for far less).
pub const MAX_RESPONSE: usize = 128 * 1024 * 1024;

/// The response bytes a worker's connections to one cluster may be receiving at once
/// (`maxBufferedBytes`).
#[derive(Clone, Debug)]
pub struct ResponseBudget {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ResponseBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        ResponseBudget {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// What a worker's connections to one cluster share.
#[derive(Clone, Debug)]
pub struct Common {
    /// The response budget.
    pub budget: ResponseBudget,
    /// Reports of brokers misbehaving.
    pub reports: Rc<Reports>,
}

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
        shared: &Common,
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
        // Shared by every stream to this broker on the worker: a task of its own.
        worker.standalone(|worker| exit.new_stream(acceptor, worker));
        let unreachable = |detail: String| ClientError::Unreachable {
            endpoint: endpoint.clone(),
            detail,
        };
        match initiator.input.frame().await {
            Some(Frame::Begin(_)) => {}
            Some(Frame::Abort(abort)) => return Err(unreachable(abort.reason.to_string())),
            _ => {
                let why = initiator.output.reset_reason().map_or_else(
                    || "the exit closed the stream".to_owned(),
                    |r| r.reason.to_string(),
                );
                return Err(unreachable(why));
            }
        }
        initiator
            .input
            .window(Window {
                credit: READ_WINDOW,
                padding: 0,
            })
            .map_err(|e| unreachable(e.to_string()))?;
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        let alive = Rc::new(Cell::new(true));
        worker.spawn_task(run(
            initiator.output,
            initiator.input,
            rx,
            alive.clone(),
            endpoint.clone(),
            shared.clone(),
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

/// Why a connection ended.
enum Failure {
    /// The peer or the exit closed it.
    Closed(String),
    /// The broker sent what is not a response to what was asked.
    Protocol(String),
}

/// Responses at the front of `buf` whose size the budget covers, handed to their requests;
/// `Ok(Some(size))` when the next one waits for `size` bytes of budget.
fn take_responses(
    buf: &mut BytesMut,
    held: &mut Option<OwnedSemaphorePermit>,
    budget: &ResponseBudget,
    in_flight: &mut VecDeque<(i32, oneshot::Sender<Result<Bytes, ClientError>>)>,
) -> Result<Option<u32>, String> {
    let max = MAX_RESPONSE.min(budget.limit);
    loop {
        if held.is_none() {
            let Some(size) = response_size(buf, max).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let size = u32::try_from(size).map_err(|_| format!("response of {size} bytes"))?;
            match budget.permits.clone().try_acquire_many_owned(size) {
                Ok(permit) => *held = Some(permit),
                Err(_) => return Ok(Some(size)),
            }
        }
        let Some((id, body)) = split_response(buf, max).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        *held = None;
        match in_flight.pop_front() {
            Some((want, reply)) if want == id => {
                let _ = reply.send(Ok(body));
            }
            _ => return Err(format!("unexpected correlation id {id}")),
        }
    }
}

/// `size` bytes of `budget` once free; never when nothing waits.
async fn reserve(budget: &ResponseBudget, size: Option<u32>) -> Option<OwnedSemaphorePermit> {
    match size {
        Some(size) => budget.permits.clone().acquire_many_owned(size).await.ok(),
        None => std::future::pending().await,
    }
}

async fn run(
    mut writer: Writer,
    mut reader: Reader,
    mut rx: mpsc::Receiver<Pending>,
    alive: Rc<Cell<bool>>,
    endpoint: String,
    shared: Common,
) {
    let mut in_flight: VecDeque<(i32, oneshot::Sender<Result<Bytes, ClientError>>)> =
        VecDeque::new();
    let mut next_id: i32 = 1;
    let mut buf = BytesMut::new();
    let budget = &shared.budget;
    // The budget reserved for the response being received, or the size waiting for it.
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut waiting: Option<u32> = None;
    let failure = loop {
        tokio::select! {
            pending = rx.recv() => {
                let Some(pending) = pending else { break None };
                let id = next_id;
                next_id = next_id.wrapping_add(1).max(1);
                in_flight.push_back((id, pending.reply));
                if !write_all(&mut writer, frame_request(&pending.request, id)).await {
                    break Some(Failure::Closed("the connection closed while writing".to_owned()));
                }
            }
            permit = reserve(budget, waiting), if waiting.is_some() => {
                held = permit;
                match take_responses(&mut buf, &mut held, budget, &mut in_flight) {
                    Ok(wait) => waiting = wait,
                    Err(bad) => break Some(Failure::Protocol(bad)),
                }
                if waiting.is_none() {
                    reader.replenish();
                }
            }
            frame = reader.frame() => match frame {
                Some(Frame::Data(data)) => {
                    buf.extend_from_slice(&data.payload);
                    if waiting.is_none() {
                        match take_responses(&mut buf, &mut held, budget, &mut in_flight) {
                            Ok(wait) => waiting = wait,
                            Err(bad) => break Some(Failure::Protocol(bad)),
                        }
                    }
                    // Credit only while the response being received has its budget.
                    if waiting.is_none() {
                        reader.replenish();
                    }
                }
                Some(Frame::Abort(abort)) => break Some(Failure::Closed(abort.reason.to_string())),
                Some(_) => break Some(Failure::Closed("the broker closed the connection".to_owned())),
                None => break Some(Failure::Closed("the connection went away".to_owned())),
            }
        }
    };
    alive.set(false);
    drop(held);
    let lost = || ClientError::ConnectionLost {
        endpoint: endpoint.clone(),
    };
    let error = match &failure {
        Some(Failure::Protocol(detail)) => {
            if shared
                .reports
                .due("unparseable response", &endpoint, Instant::now())
            {
                tracing::warn!(
                    broker = %endpoint,
                    %detail,
                    "kafka broker sent an unparseable response; connection closed (reported once a minute)"
                );
            }
            ClientError::Protocol {
                endpoint: endpoint.clone(),
                detail: detail.clone(),
            }
        }
        Some(Failure::Closed(detail)) => {
            tracing::debug!(%endpoint, %detail, "kafka connection lost");
            lost()
        }
        None => lost(),
    };
    let _ = writer.abort(Reason::new(
        ReasonKind::ConnectionLost,
        "kafka connection closed",
    ));
    for (_, reply) in in_flight {
        let _ = reply.send(Err(error.clone()));
    }
    rx.close();
    while let Ok(pending) = rx.try_recv() {
        let _ = pending.reply.send(Err(lost()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn response(id: i32, len: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i32(i32::try_from(len + 4).expect("len"));
        b.put_i32(id);
        b.extend(std::iter::repeat_n(7u8, len));
        b
    }

    #[test]
    fn a_response_waits_for_budget_and_frees_it_once_whole() {
        let budget = ResponseBudget::new(100);
        let (tx, mut rx) = oneshot::channel();
        let mut in_flight = VecDeque::from([(1, tx)]);
        let mut buf = BytesMut::from(&response(1, 60)[..10]);
        let mut held = None;
        // Another connection holds 50: 64 bytes do not fit until it frees them.
        let other = budget
            .permits
            .clone()
            .try_acquire_many_owned(50)
            .expect("50");
        let wait = take_responses(&mut buf, &mut held, &budget, &mut in_flight);
        assert_eq!(wait, Ok(Some(64)));
        drop(other);
        let wait = take_responses(&mut buf, &mut held, &budget, &mut in_flight);
        assert_eq!((wait, budget.available()), (Ok(None), 36));
        buf.extend_from_slice(&response(1, 60)[10..]);
        let wait = take_responses(&mut buf, &mut held, &budget, &mut in_flight);
        assert_eq!((wait, budget.available()), (Ok(None), 100));
        assert_eq!(rx.try_recv().expect("answered").expect("ok").len(), 60);
    }

    #[test]
    fn a_response_larger_than_the_budget_is_a_protocol_error() {
        let budget = ResponseBudget::new(100);
        let mut buf = BytesMut::from(&response(1, 200)[..]);
        let wait = take_responses(&mut buf, &mut None, &budget, &mut VecDeque::new());
        assert!(wait.is_err_and(|e| e.contains("limit 100")));
    }
}
