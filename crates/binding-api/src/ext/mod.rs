//! Typed frame extensions, one module per protocol.
//!
//! Bindings of different protocols agree on these types the way Zilla's bindings agree on their
//! IDL: a tcp server puts addresses in [`BeginEx::Tcp`], an http server puts request headers in
//! its own variant, and so on. A frame whose extension a binding does not expect is treated as
//! having none.

pub mod filesystem;
pub mod http;
pub mod kafka;
pub mod sse;
pub mod tcp;
pub mod tls;

/// Extension of a [`Begin`](crate::frame::Begin).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum BeginEx {
    /// No extension.
    #[default]
    None,
    /// Addresses of a TCP connection.
    Tcp(tcp::TcpBeginEx),
    /// A decrypted TLS connection: what was negotiated.
    Tls(tls::TlsBeginEx),
    /// Request or response headers.
    Http(http::HttpBeginEx),
    /// A Kafka fetch or merged stream, or its reply.
    Kafka(kafka::KafkaBeginEx),
    /// An SSE subscription: path and last event id. Boxed: the largest extension, made once
    /// per subscription, it would make every frame of every stream as large.
    Sse(Box<sse::SseBeginEx>),
    /// A file request, or the file's metadata in reply.
    FileSystem(filesystem::FileSystemBeginEx),
}

/// Extension of a [`Data`](crate::frame::Data).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum DataEx {
    /// No extension.
    #[default]
    None,
    /// A Kafka record, or the continuation of one.
    Kafka(kafka::KafkaDataEx),
    /// An SSE event's id, type and fragmentation.
    Sse(sse::SseDataEx),
}

/// Extension of a [`Flush`](crate::frame::Flush).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum FlushEx {
    /// No extension.
    #[default]
    None,
    /// A Kafka stream caught up.
    Kafka(kafka::KafkaFlushEx),
    /// A Kafka reader fell behind a cache's retention and skipped records.
    KafkaGap(kafka::KafkaGapEx),
    /// An SSE id-only checkpoint.
    Sse(sse::SseFlushEx),
}

/// Extension of an [`End`](crate::frame::End).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum EndEx {
    /// No extension.
    #[default]
    None,
    /// HTTP trailers.
    Http(http::HttpEndEx),
    /// An SSE last id.
    Sse(sse::SseEndEx),
}

/// Extension of a [`Reset`](crate::frame::Reset).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum ResetEx {
    /// No extension.
    #[default]
    None,
    /// Why a Kafka stream was refused.
    Kafka(kafka::KafkaResetEx),
    /// A guarded route refused the stream: what the client is told.
    Guard(crate::guard::GuardRefusal),
}

/// Extension of a [`Challenge`](crate::frame::Challenge).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum ChallengeEx {
    /// No extension.
    #[default]
    None,
}
