//! The stream peer: runs a script of frames against the binding under test, through a
//! `type: spec` binding.

use std::time::Duration;

use binding_api::frame::{Begin, Data, End, Flush, Frame, Reason, ReasonKind, Reset, Window};
use binding_api::stream::{self, Reader, SendError, Writer, WriterEvent};
use tokio::time::{Instant, timeout_at};

use crate::binding::PeerEnd;
use crate::ext::{FrameExt, show_begin};
use crate::runner::{Ctx, StepFailure};
use crate::step::{
    AcceptArgs, AtMostArgs, ExpectFrame, OpenArgs, ReasonArgs, SendFrame, Step, StreamAction,
    WindowArgs, WindowExpect,
};
use crate::value::{ReasonName, common_prefix, show};

/// One stream as the peer sees it.
struct Handle {
    name: Option<String>,
    /// The direction the peer reads: the initial one of an accepted stream, the reply of an
    /// opened one.
    reader: Reader,
    /// The direction the peer writes.
    writer: Writer,
    /// Data bytes received and not yet matched by an `expect`.
    pending: Vec<u8>,
}

/// A stream peer and its state.
pub(crate) struct StreamPeer {
    name: String,
    end: PeerEnd,
    steps: Vec<Step<StreamAction>>,
    streams: Vec<Handle>,
}

type StepResult = Result<(), String>;

impl StreamPeer {
    /// A peer playing the spec binding whose harness end is `end`.
    pub fn new(name: String, end: PeerEnd, steps: Vec<Step<StreamAction>>) -> Self {
        StreamPeer {
            name,
            end,
            steps,
            streams: Vec::new(),
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
        step: &Step<StreamAction>,
        ctx: &Ctx,
        deadline: Instant,
        timeout: Duration,
    ) -> StepResult {
        let on = step.on.as_deref();
        match &step.action {
            StreamAction::Notify(name) => {
                ctx.notify(name);
                Ok(())
            }
            StreamAction::Await(name) => ctx.wait(name, deadline).await,
            StreamAction::Accept(args) => self.accept(args, deadline, timeout).await,
            StreamAction::Open(args) => self.open(args),
            StreamAction::Send(frame) => {
                let ext = step.ext.clone().unwrap_or_default();
                send(self.handle(on)?, frame, &ext, deadline, timeout).await
            }
            StreamAction::Window(args) => window(self.handle(on)?, *args),
            StreamAction::Reset(args) => {
                let kind = reason_kind(args);
                self.handle(on)?
                    .reader
                    .reset(Reset::new(kind, "reset by the scenario"));
                Ok(())
            }
            StreamAction::Refuse(args) => {
                let kind = reason_kind(args);
                let handle = self.handle(on)?;
                handle
                    .reader
                    .reset(Reset::new(kind, "refused by the scenario"));
                // The binding may already have answered the reset by resetting this end's
                // writer too: the refusal is complete either way.
                match handle
                    .writer
                    .abort(Reason::new(kind, "refused by the scenario"))
                {
                    Ok(()) | Err(SendError::Reset(_) | SendError::Closed) => Ok(()),
                    Err(err) => Err(send_error(err)),
                }
            }
            StreamAction::Expect(frame) => {
                let ext = step.ext.as_ref();
                expect(self.handle(on)?, frame, ext, deadline, timeout).await
            }
            StreamAction::ExpectNothing(duration) => {
                expect_at_most(self.handle(on)?, None, duration.0).await
            }
            StreamAction::ExpectAtMost(AtMostArgs { bytes, duration }) => {
                expect_at_most(self.handle(on)?, Some(*bytes), duration.0).await
            }
        }
    }

    fn handle(&mut self, on: Option<&str>) -> Result<&mut Handle, String> {
        match on {
            Some(name) => self
                .streams
                .iter_mut()
                .find(|h| h.name.as_deref() == Some(name))
                .ok_or_else(|| format!("no stream is named '{name}'")),
            None => self
                .streams
                .last_mut()
                .ok_or_else(|| "no stream yet: `accept` or `open` one first".to_owned()),
        }
    }

    async fn accept(
        &mut self,
        args: &AcceptArgs,
        deadline: Instant,
        timeout: Duration,
    ) -> StepResult {
        let PeerEnd::Server(accepted) = &mut self.end else {
            return Err("only a server spec binding accepts streams".to_owned());
        };
        let stream = match timeout_at(deadline, accepted.recv()).await {
            Ok(Some(stream)) => stream,
            Ok(None) => return Err("the engine stopped".to_owned()),
            Err(_) => {
                return Err(format!(
                    "no stream arrived within {timeout:?} from the binding under test"
                ));
            }
        };
        if let Some(want) = &args.begin {
            want.check(&stream.begin.ext)
                .map_err(|err| format!("begin: {err} (got {})", show_begin(&stream.begin.ext)))?;
        }
        self.streams.push(Handle {
            name: args.name.clone(),
            reader: stream.input,
            writer: stream.output,
            pending: Vec::new(),
        });
        Ok(())
    }

    fn open(&mut self, args: &OpenArgs) -> StepResult {
        let PeerEnd::Client(opener) = &self.end else {
            return Err("only a client spec binding opens streams".to_owned());
        };
        let ext = args.begin.clone().unwrap_or_default().build()?;
        let (initiator, acceptor) = stream::open(Begin { ext });
        opener
            .send(acceptor)
            .map_err(|_| "the engine stopped".to_owned())?;
        self.streams.push(Handle {
            name: args.name.clone(),
            reader: initiator.input,
            writer: initiator.output,
            pending: Vec::new(),
        });
        Ok(())
    }
}

fn reason_kind(args: &ReasonArgs) -> ReasonKind {
    args.reason.map_or(ReasonKind::Refused, ReasonName::kind)
}

fn send_error(err: SendError) -> String {
    format!("cannot send: {err}")
}

async fn send(
    handle: &mut Handle,
    frame: &SendFrame,
    ext: &FrameExt,
    deadline: Instant,
    timeout: Duration,
) -> StepResult {
    let writer = &mut handle.writer;
    match frame {
        SendFrame::Begin(ext) => {
            let ext = ext.clone().unwrap_or_default().build()?;
            writer.begin(Begin { ext }).map_err(send_error)
        }
        SendFrame::Data(bytes) => {
            let len = bytes.bytes.len();
            wait_credit(writer, len, deadline, timeout).await?;
            writer
                .data(Data {
                    payload: bytes.bytes.clone().into(),
                    ext: ext.data(len),
                })
                .map_err(send_error)
        }
        SendFrame::Flush(_) => {
            wait_credit(writer, 0, deadline, timeout).await?;
            writer
                .flush(Flush { ext: ext.flush()? })
                .map_err(send_error)
        }
        SendFrame::End(_) => writer.end(End { ext: ext.end()? }).map_err(send_error),
        SendFrame::Abort(args) => writer
            .abort(Reason::new(
                args.as_ref().map_or(ReasonKind::Refused, reason_kind),
                "aborted by the scenario",
            ))
            .map_err(send_error),
    }
}

async fn wait_credit(
    writer: &mut Writer,
    len: usize,
    deadline: Instant,
    timeout: Duration,
) -> StepResult {
    match timeout_at(deadline, writer.ready(len)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(send_error(err)),
        Err(_) => Err(format!(
            "the binding under test granted {} bytes of credit (padding {}) within {timeout:?}; \
             sending {len} bytes costs {}",
            writer.credit(),
            writer.padding(),
            writer.cost(len)
        )),
    }
}

fn window(handle: &mut Handle, args: WindowArgs) -> StepResult {
    handle
        .reader
        .window(Window {
            credit: args.credit,
            padding: args.padding,
        })
        .map_err(|err| format!("cannot grant credit: {err}"))
}

/// A frame for messages.
fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Begin(begin) => format!("begin ({})", show_begin(&begin.ext)),
        Frame::Data(data) => format!("data {}", show(&data.payload)),
        Frame::Flush(_) => "flush".to_owned(),
        Frame::End(_) => "end".to_owned(),
        Frame::Abort(abort) => format!("abort ({})", abort.reason),
    }
}

/// The next frame on the direction read, or why there is none.
async fn next_frame(
    handle: &mut Handle,
    deadline: Instant,
    timeout: Duration,
    want: &str,
) -> Result<Frame, String> {
    match timeout_at(deadline, handle.reader.frame()).await {
        Ok(Some(frame)) => Ok(frame),
        Ok(None) => Err(format!(
            "expected {want}, but the direction is over (it ended, aborted or was reset)"
        )),
        Err(_) => Err(format!(
            "expected {want}, nothing arrived within {timeout:?}"
        )),
    }
}

async fn expect(
    handle: &mut Handle,
    frame: &ExpectFrame,
    ext: Option<&FrameExt>,
    deadline: Instant,
    timeout: Duration,
) -> StepResult {
    let want = match frame {
        ExpectFrame::Data(bytes) => {
            return match ext {
                Some(ext) => expect_data_frame(handle, &bytes.bytes, ext, deadline, timeout).await,
                None => expect_data(handle, &bytes.bytes, deadline, timeout).await,
            };
        }
        ExpectFrame::Window(args) => {
            return expect_window(
                &mut handle.writer,
                args.unwrap_or_default(),
                deadline,
                timeout,
            )
            .await;
        }
        ExpectFrame::Reset(args) => {
            return expect_reset(&mut handle.writer, args.as_ref(), deadline, timeout).await;
        }
        ExpectFrame::Begin(_) => "begin",
        ExpectFrame::Flush(_) => "flush",
        ExpectFrame::End(_) => "end",
        ExpectFrame::Abort(_) => "abort",
    };
    if !handle.pending.is_empty() {
        return Err(format!(
            "expected {want}, but {} data bytes arrived that no step expected: {}",
            handle.pending.len(),
            show(&handle.pending)
        ));
    }
    let got = next_frame(handle, deadline, timeout, want).await?;
    match (frame, &got) {
        (ExpectFrame::Begin(ext), Frame::Begin(begin)) => match ext {
            Some(ext) => ext
                .check(&begin.ext)
                .map_err(|err| format!("begin: {err} (got {})", show_begin(&begin.ext))),
            None => Ok(()),
        },
        (ExpectFrame::Flush(_), Frame::Flush(flush)) => {
            ext.map_or(Ok(()), |ext| ext.check_flush(&flush.ext))
        }
        (ExpectFrame::End(_), Frame::End(end)) => ext.map_or(Ok(()), |ext| ext.check_end(&end.ext)),
        (ExpectFrame::Abort(args), Frame::Abort(abort)) => {
            check_reason(args.as_ref(), &abort.reason, "abort")
        }
        _ => Err(format!("expected {want}, got {}", describe(&got))),
    }
}

fn check_reason(args: Option<&ReasonArgs>, got: &Reason, what: &str) -> StepResult {
    match args.and_then(|a| a.reason) {
        Some(want) if want.kind() != got.kind => Err(format!(
            "{what} reason is '{got}', expected '{}'",
            want.kind()
        )),
        _ => Ok(()),
    }
}

/// With an extension, data is one frame: the next frame is data with exactly these bytes and
/// an extension with every field given.
async fn expect_data_frame(
    handle: &mut Handle,
    want: &[u8],
    ext: &FrameExt,
    deadline: Instant,
    timeout: Duration,
) -> StepResult {
    if !handle.pending.is_empty() {
        return Err(format!(
            "expected one data frame, but {} data bytes arrived that no step expected: {}",
            handle.pending.len(),
            show(&handle.pending)
        ));
    }
    match next_frame(handle, deadline, timeout, "data").await? {
        Frame::Data(data) if data.payload[..] == *want => ext.check_data(&data.ext),
        Frame::Data(data) => Err(format!(
            "expected data {}, got {}",
            show(want),
            show(&data.payload)
        )),
        other => Err(format!("expected data, got {}", describe(&other))),
    }
}

/// Data may arrive split or merged in any way: frames are collected until `want.len()` bytes
/// are there; bytes beyond stay for the next `expect: data`.
async fn expect_data(
    handle: &mut Handle,
    want: &[u8],
    deadline: Instant,
    timeout: Duration,
) -> StepResult {
    loop {
        let have = handle.pending.len().min(want.len());
        let agree = common_prefix(&handle.pending[..have], want);
        if agree < have {
            return Err(format!(
                "data differs at byte {agree}: expected {}, got {}",
                show(want),
                show(&handle.pending)
            ));
        }
        if have == want.len() {
            handle.pending.drain(..want.len());
            return Ok(());
        }
        let got = match timeout_at(deadline, handle.reader.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                return Err(format!(
                    "expected data {}, got {} bytes {} and then the direction was over",
                    show(want),
                    handle.pending.len(),
                    show(&handle.pending)
                ));
            }
            Err(_) => {
                return Err(format!(
                    "expected data {}, got {} bytes {} within {timeout:?}",
                    show(want),
                    handle.pending.len(),
                    show(&handle.pending)
                ));
            }
        };
        match got {
            Frame::Data(data) => handle.pending.extend_from_slice(&data.payload),
            other => {
                return Err(format!(
                    "expected data {}, got {} after {} bytes {}",
                    show(want),
                    describe(&other),
                    handle.pending.len(),
                    show(&handle.pending)
                ));
            }
        }
    }
}

async fn expect_window(
    writer: &mut Writer,
    want: WindowExpect,
    deadline: Instant,
    timeout: Duration,
) -> StepResult {
    let credit = want.credit.unwrap_or(1);
    loop {
        let padding_ok = want.padding.is_none_or(|p| p == writer.padding());
        if writer.credit() >= credit && padding_ok {
            return Ok(());
        }
        let event = timeout_at(deadline, writer.event()).await;
        match event {
            Ok(WriterEvent::Reset(reset)) => {
                return Err(format!(
                    "expected a window, the direction was reset ({})",
                    reset.reason
                ));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(format!(
                    "expected credit of at least {credit}{}; after {timeout:?} it is {} (padding {})",
                    want.padding
                        .map_or_else(String::new, |p| format!(" with padding {p}")),
                    writer.credit(),
                    writer.padding()
                ));
            }
        }
    }
}

async fn expect_reset(
    writer: &mut Writer,
    args: Option<&ReasonArgs>,
    deadline: Instant,
    timeout: Duration,
) -> StepResult {
    loop {
        if let Some(reset) = writer.reset_reason() {
            return check_reason(args, &reset.reason, "reset");
        }
        if timeout_at(deadline, writer.event()).await.is_err() {
            return Err(format!("expected a reset, none came within {timeout:?}"));
        }
    }
}

/// Watches the direction read for `duration`: at most `bytes` data bytes (none when `None`)
/// and no other frame may arrive. Data that arrives stays for the next `expect: data`.
async fn expect_at_most(handle: &mut Handle, bytes: Option<u64>, duration: Duration) -> StepResult {
    let until = Instant::now() + duration;
    let limit = bytes.unwrap_or(0);
    let mut seen: u64 = 0;
    loop {
        let frame = match timeout_at(until, handle.reader.frame()).await {
            Err(_) => return Ok(()),
            Ok(None) => {
                return Err("the direction is over (it ended, aborted or was reset)".to_owned());
            }
            Ok(Some(frame)) => frame,
        };
        match frame {
            Frame::Data(data) => {
                seen += data.payload.len() as u64;
                handle.pending.extend_from_slice(&data.payload);
                if bytes.is_none() || seen > limit {
                    return Err(format!(
                        "{seen} data bytes arrived within {duration:?}, at most {limit} may: {}",
                        show(&handle.pending)
                    ));
                }
            }
            other => {
                return Err(format!(
                    "expected nothing{} for {duration:?}, got {}",
                    if limit > 0 { " but data" } else { "" },
                    describe(&other)
                ));
            }
        }
    }
}
