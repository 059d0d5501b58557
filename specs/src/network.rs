//! The network peer: a TCP client or server scripted against the binding under test.

use std::io;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

use crate::h2::{H2Action, H2Conn};
use crate::runner::{Ctx, StepFailure};
use crate::step::{NetworkAction, Step};
use crate::value::{Bytes, common_prefix, show};

/// The host `connect` and `listen` use unless told otherwise.
const DEFAULT_HOST: &str = "127.0.0.1";

/// The write side of a connection.
enum WriteSide {
    /// Ready for the next write.
    Idle(OwnedWriteHalf),
    /// A `wait: false` write is in progress; it gives the half back when done.
    Busy(JoinHandle<(OwnedWriteHalf, io::Result<()>)>),
}

/// One connection as the peer sees it.
struct Conn {
    name: Option<String>,
    /// `None` when the connection was reset before `connect` returned.
    read: Option<OwnedReadHalf>,
    write: Option<WriteSide>,
    /// Bytes read and not yet matched by a `read`.
    pending: Vec<u8>,
    /// Whether end of stream was read.
    eof: bool,
    /// The HTTP/2 client the connection was handed to by `h2: connect`.
    h2: Option<H2Conn>,
}

/// A network peer and its state.
pub(crate) struct NetworkPeer {
    name: String,
    steps: Vec<Step<NetworkAction>>,
    listener: Option<TcpListener>,
    conns: Vec<Conn>,
}

type StepResult = Result<(), String>;

impl NetworkPeer {
    /// A peer with its script.
    pub fn new(name: String, steps: Vec<Step<NetworkAction>>) -> Self {
        NetworkPeer {
            name,
            steps,
            listener: None,
            conns: Vec::new(),
        }
    }

    /// Runs every step in order; stops at the first that fails.
    pub async fn run(&mut self, ctx: &Ctx) -> Result<(), StepFailure> {
        let steps = std::mem::take(&mut self.steps);
        for step in &steps {
            let timeout = step.timeout.unwrap_or(ctx.timeout);
            let deadline = Instant::now() + timeout;
            self.step(step, ctx, deadline, timeout)
                .await
                .map_err(|message| StepFailure {
                    peer: self.name.clone(),
                    step: step.index,
                    mark: step.mark,
                    action: step.name.clone(),
                    message,
                })?;
        }
        Ok(())
    }

    async fn step(
        &mut self,
        step: &Step<NetworkAction>,
        ctx: &Ctx,
        deadline: Instant,
        limit: Duration,
    ) -> StepResult {
        let on = step.on.as_deref();
        match &step.action {
            NetworkAction::Notify(name) => {
                ctx.notify(name);
                Ok(())
            }
            NetworkAction::Await(name) => ctx.wait(name, deadline).await,
            NetworkAction::Connect(args) => {
                let host = args.host.as_deref().unwrap_or(DEFAULT_HOST);
                let port = args.port.0;
                let socket = match timeout_at(deadline, TcpStream::connect((host, port))).await {
                    Ok(Ok(socket)) => socket,
                    Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionReset => {
                        // Established, then reset before the connect completed here: a
                        // later step sees the reset.
                        self.conns.push(Conn {
                            name: args.name.clone(),
                            read: None,
                            write: None,
                            pending: Vec::new(),
                            eof: false,
                            h2: None,
                        });
                        return Ok(());
                    }
                    Ok(Err(err)) => return Err(format!("cannot connect to {host}:{port}: {err}")),
                    Err(_) => return Err(format!("connect to {host}:{port} took over {limit:?}")),
                };
                self.add(socket, args.name.clone());
                Ok(())
            }
            NetworkAction::Listen(args) => {
                if self.listener.is_some() {
                    return Err("this peer already listens".to_owned());
                }
                let host = args.host.as_deref().unwrap_or(DEFAULT_HOST);
                let listener = TcpListener::bind((host, args.port.0))
                    .await
                    .map_err(|err| format!("cannot listen on {host}:{}: {err}", args.port.0))?;
                self.listener = Some(listener);
                Ok(())
            }
            NetworkAction::Accept(args) => {
                let Some(listener) = &self.listener else {
                    return Err("`listen` first".to_owned());
                };
                let socket = match timeout_at(deadline, listener.accept()).await {
                    Ok(Ok((socket, _))) => socket,
                    Ok(Err(err)) => return Err(format!("accept failed: {err}")),
                    Err(_) => return Err(format!("no connection arrived within {limit:?}")),
                };
                self.add(socket, args.name.clone());
                Ok(())
            }
            NetworkAction::Write(bytes) => write(self.conn(on)?, bytes, deadline, limit).await,
            NetworkAction::Read(bytes) => read(self.conn(on)?, &bytes.bytes, deadline, limit).await,
            NetworkAction::ShutdownWrite => {
                let conn = self.conn(on)?;
                let mut half = idle(conn, deadline).await?;
                let result = half.shutdown().await;
                conn.write = Some(WriteSide::Idle(half));
                result.map_err(|err| format!("shutdown failed: {err}"))
            }
            NetworkAction::Close => {
                self.remove(on)?;
                Ok(())
            }
            NetworkAction::Reset => {
                let conn = self.remove(on)?;
                let Some(read) = conn.read else {
                    return Ok(());
                };
                SockRef::from(read.as_ref())
                    .set_linger(Some(Duration::ZERO))
                    .map_err(|err| format!("cannot set SO_LINGER: {err}"))?;
                // Dropping a write half sends FIN first; put the socket back together so that
                // closing it sends only the RST.
                if let Some(WriteSide::Idle(half)) = conn.write {
                    drop(read.reunite(half));
                }
                Ok(())
            }
            NetworkAction::ExpectEof => expect_end(self.conn(on)?, End::Eof, deadline, limit).await,
            NetworkAction::ExpectReset => {
                expect_end(self.conn(on)?, End::Reset, deadline, limit).await
            }
            NetworkAction::ExpectClosed => {
                expect_end(self.conn(on)?, End::Either, deadline, limit).await
            }
            NetworkAction::ExpectNothing(duration) => {
                expect_nothing(self.conn(on)?, duration.0).await
            }
            NetworkAction::H2(action) => h2_step(self.conn(on)?, action, deadline).await,
            NetworkAction::Tls(args) => {
                let conn = self.conn(on)?;
                let (Some(read), Some(WriteSide::Idle(write))) = (&mut conn.read, &mut conn.write)
                else {
                    return Err("the connection is closed or busy writing".to_owned());
                };
                crate::tls::handshake(read, write, args, deadline).await
            }
            NetworkAction::ExpectWriteBlocked(duration) => {
                let conn = self.conn(on)?;
                let Some(WriteSide::Busy(task)) = &conn.write else {
                    return Err("no `write` with `wait: false` is in progress".to_owned());
                };
                tokio::time::sleep(duration.0).await;
                if task.is_finished() {
                    return Err(format!(
                        "the bytes written with `wait: false` were all accepted within {:?}: \
                         the binding under test keeps reading",
                        duration.0
                    ));
                }
                Ok(())
            }
        }
    }

    fn add(&mut self, socket: TcpStream, name: Option<String>) {
        let _ = socket.set_nodelay(true);
        let (read, write) = socket.into_split();
        self.conns.push(Conn {
            name,
            read: Some(read),
            write: Some(WriteSide::Idle(write)),
            pending: Vec::new(),
            eof: false,
            h2: None,
        });
    }

    fn index(&self, on: Option<&str>) -> Result<usize, String> {
        match on {
            Some(name) => self
                .conns
                .iter()
                .position(|c| c.name.as_deref() == Some(name))
                .ok_or_else(|| format!("no connection is named '{name}'")),
            None => self
                .conns
                .len()
                .checked_sub(1)
                .ok_or_else(|| "no connection yet: `connect` or `accept` one first".to_owned()),
        }
    }

    fn conn(&mut self, on: Option<&str>) -> Result<&mut Conn, String> {
        let index = self.index(on)?;
        Ok(&mut self.conns[index])
    }

    fn remove(&mut self, on: Option<&str>) -> Result<Conn, String> {
        let index = self.index(on)?;
        let conn = self.conns.remove(index);
        if let Some(WriteSide::Busy(task)) = &conn.write {
            task.abort();
        }
        Ok(conn)
    }
}

/// The write half, once any `wait: false` write before has finished.
async fn idle(conn: &mut Conn, deadline: Instant) -> Result<OwnedWriteHalf, String> {
    match conn.write.take() {
        Some(WriteSide::Idle(half)) => Ok(half),
        Some(WriteSide::Busy(mut task)) => match timeout_at(deadline, &mut task).await {
            Ok(Ok((half, Ok(())))) => Ok(half),
            Ok(Ok((_, Err(err)))) => Err(format!("an earlier write (wait: false) failed: {err}")),
            Ok(Err(err)) => Err(format!("an earlier write (wait: false) broke: {err}")),
            Err(_) => {
                conn.write = Some(WriteSide::Busy(task));
                Err("an earlier write (wait: false) is still blocked".to_owned())
            }
        },
        None => Err("the connection is closed".to_owned()),
    }
}

async fn write(conn: &mut Conn, bytes: &Bytes, deadline: Instant, limit: Duration) -> StepResult {
    let mut half = idle(conn, deadline).await?;
    if bytes.wait == Some(false) {
        let data = bytes.bytes.clone();
        conn.write = Some(WriteSide::Busy(tokio::spawn(async move {
            let result = half.write_all(&data).await;
            (half, result)
        })));
        return Ok(());
    }
    let result = timeout_at(deadline, half.write_all(&bytes.bytes)).await;
    conn.write = Some(WriteSide::Idle(half));
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("write failed: {err}")),
        Err(_) => Err(format!(
            "could not write {} bytes within {limit:?}: the binding under test does not read",
            bytes.bytes.len()
        )),
    }
}

/// Reads once into `pending`: `Ok(0)` at end of stream.
async fn fill(conn: &mut Conn) -> io::Result<usize> {
    let mut buf = [0u8; 16 * 1024];
    let Some(read) = &mut conn.read else {
        return Err(io::ErrorKind::ConnectionReset.into());
    };
    let n = read.read(&mut buf).await?;
    conn.pending.extend_from_slice(&buf[..n]);
    if n == 0 {
        conn.eof = true;
    }
    Ok(n)
}

async fn read(conn: &mut Conn, want: &[u8], deadline: Instant, limit: Duration) -> StepResult {
    loop {
        let have = conn.pending.len().min(want.len());
        let agree = common_prefix(&conn.pending[..have], want);
        if agree < have {
            return Err(format!(
                "bytes differ at byte {agree}: expected {}, got {}",
                show(want),
                show(&conn.pending)
            ));
        }
        if have == want.len() {
            conn.pending.drain(..want.len());
            return Ok(());
        }
        if conn.eof {
            return Err(format!(
                "expected {}, got {} and then end of stream",
                show(want),
                conn_so_far(conn)
            ));
        }
        match timeout_at(deadline, fill(conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                return Err(format!(
                    "expected {}, got {} and then {}",
                    show(want),
                    conn_so_far(conn),
                    describe_error(&err)
                ));
            }
            Err(_) => {
                return Err(format!(
                    "expected {}, got {} within {limit:?}",
                    show(want),
                    conn_so_far(conn)
                ));
            }
        }
    }
}

fn conn_so_far(conn: &Conn) -> String {
    format!("{} bytes {}", conn.pending.len(), show(&conn.pending))
}

fn describe_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionReset => "a reset (RST)".to_owned(),
        _ => format!("error: {err}"),
    }
}

/// How a connection is expected to end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    Reset,
    Either,
}

async fn expect_end(conn: &mut Conn, want: End, deadline: Instant, limit: Duration) -> StepResult {
    let what = match want {
        End::Eof => "end of stream (FIN)",
        End::Reset => "a reset (RST)",
        End::Either => "the connection to close",
    };
    if !conn.pending.is_empty() {
        return Err(format!(
            "expected {what}, but {} were not read",
            conn_so_far(conn)
        ));
    }
    if conn.eof {
        return match want {
            End::Reset => Err(format!("expected {what}, got end of stream (FIN)")),
            _ => Ok(()),
        };
    }
    match timeout_at(deadline, fill(conn)).await {
        Ok(Ok(0)) if want != End::Reset => Ok(()),
        Ok(Ok(0)) => Err(format!("expected {what}, got end of stream (FIN)")),
        Ok(Ok(_)) => Err(format!("expected {what}, got {}", conn_so_far(conn))),
        Ok(Err(err)) => match (want, err.kind()) {
            (End::Reset, io::ErrorKind::ConnectionReset) | (End::Either, _) => Ok(()),
            _ => Err(format!("expected {what}, got {}", describe_error(&err))),
        },
        Err(_) => Err(format!(
            "expected {what}, the connection stayed open for {limit:?}"
        )),
    }
}

async fn expect_nothing(conn: &mut Conn, duration: Duration) -> StepResult {
    if conn.eof {
        return Err("the connection already ended".to_owned());
    }
    match timeout(duration, fill(conn)).await {
        Err(_) => Ok(()),
        Ok(Ok(0)) => Err(format!(
            "expected nothing for {duration:?}, got end of stream (FIN)"
        )),
        Ok(Ok(_)) => Err(format!(
            "expected nothing for {duration:?}, got {}",
            conn_so_far(conn)
        )),
        Ok(Err(err)) => Err(format!(
            "expected nothing for {duration:?}, got {}",
            describe_error(&err)
        )),
    }
}

/// Runs an `h2` step: `connect` hands the connection to an HTTP/2 client, the others use it.
async fn h2_step(conn: &mut Conn, action: &H2Action, deadline: Instant) -> StepResult {
    if let H2Action::Connect(args) = action
        && conn.h2.is_none()
    {
        let read = conn.read.take();
        let write = match conn.write.take() {
            Some(WriteSide::Idle(half)) => Some(half),
            _ => None,
        };
        let (Some(read), Some(write)) = (read, write) else {
            return Err("the connection is closed or busy writing".to_owned());
        };
        let socket = read
            .reunite(write)
            .map_err(|e| format!("cannot take the connection back: {e}"))?;
        conn.h2 = Some(H2Conn::connect(socket, args.clone().unwrap_or_default(), deadline).await?);
        return Ok(());
    }
    match &mut conn.h2 {
        Some(h2) => h2.step(action, deadline).await,
        None => Err("`h2: connect` first".to_owned()),
    }
}
