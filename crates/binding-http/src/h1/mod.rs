//! HTTP/1.1: a sans-IO request decoder and response encoder ([`decode`], [`encode`]), and the
//! connection that drives them over a network stream; chunks framed once and shared across
//! connections ([`chunk_memo`]).

pub mod chunk_memo;
pub(crate) mod chunked;
pub mod decode;
pub mod encode;
pub(crate) mod server;
