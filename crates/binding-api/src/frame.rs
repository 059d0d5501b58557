//! The frames that travel on a stream.
//!
//! A stream has two directions, *initial* (from the binding that opened it) and *reply*. In each
//! direction the sender writes [`Begin`], [`Data`], [`Flush`], [`End`] and [`Abort`]; the
//! receiver answers the other way with [`Window`] (credit), [`Reset`] (refusal) and
//! [`Challenge`]. Every frame may carry a typed extension of the protocol it speaks.

use std::fmt;

use bytes::Bytes;

use crate::ext::{BeginEx, ChallengeEx, DataEx, EndEx, FlushEx, ResetEx};

/// Opens one direction of a stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Begin {
    /// Protocol-specific metadata, such as addresses or request headers.
    pub ext: BeginEx,
}

/// Payload bytes, with a protocol-specific extension.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Data {
    /// The bytes; may be empty (an empty data frame still spends its padding).
    pub payload: Bytes,
    /// Protocol-specific metadata, such as a Kafka record's key and offset.
    pub ext: DataEx,
}

impl Data {
    /// Data with no extension.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Data {
            payload: payload.into(),
            ext: DataEx::None,
        }
    }
}

/// An advisory that what was sent so far should move on now (for example "caught up").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flush {
    /// Protocol-specific metadata.
    pub ext: FlushEx,
}

/// The sender has finished this direction cleanly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct End {
    /// Protocol-specific metadata.
    pub ext: EndEx,
}

/// The sender gives up on this direction abruptly.
#[derive(Clone, Debug, PartialEq)]
pub struct Abort {
    /// Why.
    pub reason: Reason,
}

/// Credit granted by the receiver: `credit` more bytes may be sent, and every frame that
/// spends credit costs its length plus `padding` (at least one byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Additional bytes of credit.
    pub credit: u32,
    /// Per-frame overhead the receiver needs, applied from now on.
    pub padding: u32,
}

/// The receiver refuses this direction, or stops accepting it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reset {
    /// Why.
    pub reason: Reason,
    /// Protocol-specific metadata, such as an HTTP status or a Kafka error code.
    pub ext: ResetEx,
}

impl Reset {
    /// A reset with a reason and no extension.
    pub fn new(kind: ReasonKind, detail: impl Into<String>) -> Self {
        Reset {
            reason: Reason::new(kind, detail),
            ext: ResetEx::None,
        }
    }
}

/// The receiver asks the sender for something out of band (for example re-authorisation).
#[derive(Clone, Debug, PartialEq)]
pub struct Challenge {
    /// Protocol-specific metadata.
    pub ext: ChallengeEx,
}

/// Why a direction was reset or aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The class of failure, for code to act on.
    pub kind: ReasonKind,
    /// A human-readable explanation for logs.
    pub detail: String,
}

impl Reason {
    /// A reason of `kind` explained by `detail`.
    pub fn new(kind: ReasonKind, detail: impl Into<String>) -> Self {
        Reason {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.detail)
        }
    }
}

/// Classes of failure carried by [`Reset`] and [`Abort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonKind {
    /// No route matched the stream.
    NoRoute,
    /// The receiver refused the stream for another reason (bad request, not found, ...).
    Refused,
    /// A remote peer could not be reached.
    Unreachable,
    /// The peer broke the protocol (sent past its credit, malformed bytes, ...).
    ProtocolViolation,
    /// Something took too long.
    Timeout,
    /// The process is shutting down.
    Shutdown,
    /// The other end went away without saying why (its handle was dropped).
    Dropped,
    /// A remote connection failed or closed abruptly.
    ConnectionLost,
    /// The request is malformed (an HTTP server answers 400).
    Invalid,
    /// A guarded route needs credentials the stream does not have, or has rejected ones (an
    /// HTTP server answers 401).
    Unauthorized,
    /// The stream's credentials verified but lack a role the route requires (an HTTP server
    /// answers 403).
    Forbidden,
}

impl fmt::Display for ReasonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReasonKind::NoRoute => "no route",
            ReasonKind::Refused => "refused",
            ReasonKind::Unreachable => "unreachable",
            ReasonKind::ProtocolViolation => "protocol violation",
            ReasonKind::Timeout => "timeout",
            ReasonKind::Shutdown => "shutting down",
            ReasonKind::Dropped => "dropped",
            ReasonKind::ConnectionLost => "connection lost",
            ReasonKind::Invalid => "invalid request",
            ReasonKind::Unauthorized => "unauthorized",
            ReasonKind::Forbidden => "forbidden",
        })
    }
}

/// A frame travelling in the direction of a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// See [`Begin`].
    Begin(Begin),
    /// See [`Data`].
    Data(Data),
    /// See [`Flush`].
    Flush(Flush),
    /// See [`End`].
    End(End),
    /// See [`Abort`].
    Abort(Abort),
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size {
    use super::Frame;

    /// Every queued frame takes the room of the largest, so an extension made once per stream
    /// goes behind a box ([`BeginEx::Sse`](crate::ext::BeginEx::Sse)) and a record's headers
    /// behind one reference ([`KafkaHeaders`](crate::ext::kafka::KafkaHeaders)); a Kafka
    /// record's data extension sets the size.
    #[test]
    fn a_frame_is_no_larger_than_a_kafka_record_data_frame() {
        assert_eq!(std::mem::size_of::<Frame>(), 128);
        assert_eq!(
            std::mem::size_of::<Frame>(),
            std::mem::size_of::<super::Data>()
        );
    }
}
