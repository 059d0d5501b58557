//! The network stream a connection runs on: its input (the tcp stream's initial direction)
//! and its output (the reply).

use binding_api::stream::{Reader, Writer};

/// Both directions of the network stream.
pub(crate) struct Net {
    /// Bytes from the client.
    pub input: Reader,
    /// Bytes to the client.
    pub output: Writer,
}
