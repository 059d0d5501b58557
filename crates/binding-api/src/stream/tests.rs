use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn direction() -> (Writer, Reader) {
    let (initiator, acceptor) = open(Begin::default());
    (initiator.output, acceptor.input)
}

/// A subscription crosses four streams of two halves each, held for hours: a half's state
/// stays within 120 bytes (136 with its reference counts: one allocator size class below
/// where it was).
#[cfg(target_pointer_width = "64")]
#[test]
fn a_half_is_small() {
    assert_eq!(std::mem::size_of::<Half>(), 120);
}

#[test]
fn data_waits_for_credit_and_flows_in_order() {
    let (mut writer, mut reader) = direction();
    assert!(matches!(
        writer.data(Data::new("x")),
        Err(SendError::Credit(CreditError::Insufficient { .. }))
    ));
    reader
        .window(Window {
            credit: 10,
            padding: 2,
        })
        .unwrap();
    writer.data(Data::new("abc")).unwrap();
    writer.flush(Flush::default()).unwrap();
    assert_eq!(writer.credit(), 10 - 5 - 2);
    writer.end(End::default()).unwrap();
    assert_eq!(reader.try_frame(), Some(Frame::Data(Data::new("abc"))));
    assert_eq!(reader.try_frame(), Some(Frame::Flush(Flush::default())));
    assert_eq!(reader.try_frame(), Some(Frame::End(End::default())));
    assert_eq!(reader.try_frame(), None);
    assert!(reader.is_finished());
}

#[test]
fn dropping_the_writer_aborts() {
    let (writer, mut reader) = direction();
    drop(writer);
    assert!(
        matches!(reader.try_frame(), Some(Frame::Abort(a)) if a.reason.kind == ReasonKind::Dropped)
    );
}

#[test]
fn dropping_the_reader_resets() {
    let (mut writer, reader) = direction();
    drop(reader);
    match writer.data(Data::new("")) {
        Err(SendError::Reset(reset)) => assert_eq!(reset.reason.kind, ReasonKind::Dropped),
        other => panic!("expected reset, got {other:?}"),
    }
}

#[test]
fn refuse_resets_initial_and_aborts_reply() {
    let (mut initiator, acceptor) = open(Begin::default());
    acceptor.refuse(Reset::new(ReasonKind::NoRoute, "nothing at /x"));
    assert!(matches!(
        initiator.output.data(Data::new("")),
        Err(SendError::Reset(r)) if r.reason.kind == ReasonKind::NoRoute
    ));
    assert!(matches!(initiator.input.try_frame(), Some(Frame::Abort(_))));
}

#[test]
fn ready_wakes_on_window() {
    let (mut writer, mut reader) = direction();
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(writer.poll_ready(&mut cx, 4).is_pending());
    reader
        .window(Window {
            credit: 4,
            padding: 0,
        })
        .unwrap();
    assert_eq!(writer.poll_ready(&mut cx, 4), Poll::Ready(Ok(())));
    assert!(matches!(
        writer.poll_event(&mut cx),
        Poll::Ready(WriterEvent::Window {
            available: 4,
            padding: 0
        })
    ));
    assert!(writer.poll_event(&mut cx).is_pending());
}

/// Counts its wakes.
struct CountingWake(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_writer_waiting_for_reset_is_not_woken_by_windows() {
    let (mut writer, mut reader) = direction();
    let wakes = std::sync::Arc::new(CountingWake(0.into()));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(writer.poll_reset(&mut cx).is_pending());
    reader
        .window(Window {
            credit: 4,
            padding: 0,
        })
        .unwrap();
    assert_eq!(wakes.0.load(std::sync::atomic::Ordering::Relaxed), 0);
    reader.reset(Reset::new(ReasonKind::Dropped, "gone"));
    assert_eq!(wakes.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(
        matches!(writer.poll_reset(&mut cx), Poll::Ready(r) if r.reason.kind == ReasonKind::Dropped)
    );
}

#[test]
fn a_writer_waiting_for_reset_and_credit_is_woken_by_windows() {
    for reset_first in [true, false] {
        let (mut writer, mut reader) = direction();
        let wakes = std::sync::Arc::new(CountingWake(0.into()));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        if reset_first {
            assert!(writer.poll_reset(&mut cx).is_pending());
            assert!(writer.poll_ready(&mut cx, 4).is_pending());
        } else {
            assert!(writer.poll_ready(&mut cx, 4).is_pending());
            assert!(writer.poll_reset(&mut cx).is_pending());
        }
        reader
            .window(Window {
                credit: 4,
                padding: 0,
            })
            .unwrap();
        assert_eq!(wakes.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}

#[test]
fn reply_begins_once() {
    let (mut initiator, mut acceptor) = open(Begin::default());
    assert_eq!(
        acceptor.output.data(Data::new("")),
        Err(SendError::NotBegun)
    );
    acceptor.output.begin(Begin::default()).unwrap();
    assert_eq!(
        acceptor.output.begin(Begin::default()),
        Err(SendError::AlreadyBegun)
    );
    assert_eq!(
        initiator.input.try_frame(),
        Some(Frame::Begin(Begin::default()))
    );
}

#[derive(Clone, Debug)]
enum Op {
    Window(u32, u32),
    Data(usize),
    Flush,
    Receive,
    Replenish,
    End,
    Abort,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..512u32, 0..32u32).prop_map(|(c, p)| Op::Window(c, p)),
        6 => (0..256usize).prop_map(Op::Data),
        1 => Just(Op::Flush),
        4 => Just(Op::Receive),
        2 => Just(Op::Replenish),
        1 => Just(Op::End),
        1 => Just(Op::Abort),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    /// Any interleaving of writer and reader operations keeps the credit contract: the writer
    /// never gets past its credit, the bytes queued never exceed the credit granted, windows
    /// never shrink the writer's credit, empty frames spend padding, and reset or abort
    /// release all credit.
    #[test]
    fn channel_keeps_the_credit_contract(ops in proptest::collection::vec(op(), 0..300)) {
        let (mut writer, mut reader) = direction();
        let mut granted: u64 = 0;
        let mut queued_cost: u64 = 0;
        let mut closed = false;
        let mut reset = false;
        for op in ops {
            let before = writer.credit();
            match op {
                Op::Window(credit, padding) => {
                    reader.window(Window { credit, padding }).unwrap();
                    if !closed && !reset {
                        granted += u64::from(credit);
                        prop_assert_eq!(writer.credit(), before + u64::from(credit));
                    } else {
                        prop_assert_eq!(writer.credit(), 0);
                    }
                }
                Op::Data(len) => {
                    let cost = writer.cost(len);
                    prop_assert!(cost >= 1 && cost >= u64::from(writer.padding()));
                    let payload = Bytes::from(vec![0u8; len]);
                    match writer.data(Data::new(payload)) {
                        Ok(()) => {
                            prop_assert!(cost <= before);
                            prop_assert_eq!(writer.credit(), before - cost);
                            queued_cost += cost;
                        }
                        Err(SendError::Credit(CreditError::Insufficient { .. })) => {
                            prop_assert!(cost > before);
                        }
                        Err(SendError::Closed) => prop_assert!(closed),
                        Err(SendError::Reset(_)) => prop_assert!(reset),
                        Err(e) => prop_assert!(false, "unexpected {:?}", e),
                    }
                }
                Op::Flush => {
                    let cost = writer.cost(0);
                    if writer.flush(Flush::default()).is_ok() {
                        queued_cost += cost;
                    }
                }
                Op::Receive => {
                    if let Some(Frame::End(_) | Frame::Abort(_)) = reader.try_frame() {
                        prop_assert!(closed);
                    }
                }
                Op::Replenish => {
                    let consumed = reader.half.lock().consumed;
                    reader.replenish();
                    if !closed && !reset {
                        granted += consumed;
                    }
                }
                Op::End => {
                    if writer.end(End::default()).is_ok() {
                        closed = true;
                        prop_assert_eq!(writer.credit(), 0);
                    }
                }
                Op::Abort => {
                    if writer.abort(Reason::new(ReasonKind::Refused, "")).is_ok() {
                        closed = true;
                        prop_assert_eq!(writer.credit(), 0);
                    }
                }
                Op::Reset => {
                    reader.reset(Reset::new(ReasonKind::Refused, ""));
                    if !reader.half.lock().finished {
                        reset = true;
                    }
                    if reset {
                        prop_assert_eq!(writer.credit(), 0);
                        prop_assert_eq!(reader.queued(), 0);
                    }
                }
            }
            // Windows never shrink: only the writer's own spending lowers its credit, and a
            // reset or close releases it entirely.
            if !closed && !reset {
                prop_assert!(writer.credit() + queued_cost <= granted);
            }
            let state = reader.half.lock();
            let waiting: u64 = state.frames.iter().map(|(f, _)| match f {
                Frame::Data(d) => d.payload.len() as u64,
                _ => 0,
            }).sum();
            prop_assert!(waiting <= granted);
            // Queued frames are bounded by credit (every data/flush frame costs at least one).
            prop_assert!(state.frames.len() as u64 <= granted + 2);
        }
    }
}

#[test]
fn an_idle_direction_holds_no_queue_buffer() {
    let (mut initiator, mut acceptor) = open(Begin::default());
    let capacity = |reader: &Reader| reader.half.lock().frames.capacity();
    acceptor.output.begin(Begin::default()).unwrap();
    assert!(capacity(&initiator.input) > 0);
    assert!(matches!(initiator.input.try_frame(), Some(Frame::Begin(_))));
    assert_eq!(
        capacity(&initiator.input),
        0,
        "given back after a control frame"
    );

    initiator
        .input
        .window(Window {
            credit: 100,
            padding: 0,
        })
        .unwrap();
    acceptor.output.data(Data::new("a")).unwrap();
    assert!(matches!(initiator.input.try_frame(), Some(Frame::Data(_))));
    assert!(capacity(&initiator.input) > 0, "a busy stream keeps it");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(initiator.input.poll_frame(&mut cx).is_pending());
    assert!(capacity(&initiator.input) > 0, "one empty look is not idle");
    assert!(initiator.input.poll_frame(&mut cx).is_pending());
    assert_eq!(capacity(&initiator.input), 0, "two are");
    acceptor.output.data(Data::new("b")).unwrap();
    assert!(matches!(initiator.input.try_frame(), Some(Frame::Data(d)) if d.payload == "b"));
}

#[test]
fn a_severed_stream_ends_cleanly_for_its_initiator_and_closes_for_its_acceptor() {
    let (mut initiator, mut acceptor) = open(Begin::default());
    let severance = acceptor.severance();
    acceptor.output.begin(Begin::default()).unwrap();
    assert!(severance.is_live());
    severance.sever(Reason::new(ReasonKind::Shutdown, "reconfigured"));

    // The initiator: its reply begun, then ended cleanly; its initial direction reset.
    assert!(matches!(initiator.input.try_frame(), Some(Frame::Begin(_))));
    assert!(matches!(initiator.input.try_frame(), Some(Frame::End(_))));
    let reset = initiator.output.reset_reason().expect("initial reset");
    assert_eq!(reset.reason.kind, ReasonKind::Shutdown);
    // The acceptor: nothing more to read, and it can no longer write.
    assert!(acceptor.input.try_frame().is_none());
    assert!(acceptor.input.is_finished());
    assert_eq!(acceptor.output.data(Data::new("x")), Err(SendError::Closed));
    drop((initiator, acceptor));
    assert!(!severance.is_live());
}

#[test]
fn a_stream_severed_before_its_reply_began_is_aborted() {
    let (mut initiator, acceptor) = open(Begin::default());
    acceptor
        .severance()
        .sever(Reason::new(ReasonKind::Shutdown, "reconfigured"));
    assert!(matches!(initiator.input.try_frame(), Some(Frame::Abort(_))));
    // Severing twice, or after the stream is gone, changes nothing.
    acceptor
        .severance()
        .sever(Reason::new(ReasonKind::Shutdown, "again"));
    assert!(initiator.input.try_frame().is_none());
}
