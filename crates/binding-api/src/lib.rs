//! # binding-api
//!
//! The contract every binding of this Zilla-compatible proxy speaks, and the pieces bindings
//! share:
//!
//! - [`stream`]: bidirectional streams of [`frame`]s between bindings, with byte credit
//!   ([`credit`]): begin, data, flush, end, abort one way; window, reset, challenge the other.
//! - [`ext`]: typed frame extensions, one module per protocol.
//! - [`bytes_queue`]: output waiting for credit as shared slices, framing beside payloads
//!   rather than copied around them; [`memo`]: what many streams of a worker build alike,
//!   built once.
//! - [`route`]: Zilla's routes (in order, the first match wins, else the binding's `exit`), and
//!   the patterns (`*`, `{name}` captures), port ranges and CIDR blocks they match with.
//! - [`vault`]: keys and certificates by alias, for TLS.
//! - [`guard`]: credentials verified into sessions, the roles guarded routes require, and the
//!   leases that re-authorization extends.
//! - [`binding`]: the [`Binding`](binding::Binding) trait the engine drives on its workers.
//!
//! Configuration (`zilla.yaml`, and the factories that build bindings from it) is the
//! `zilla-config` crate's job: this crate is what a binding needs at run time.
//!
//! A binding crate depends on this crate only, never on another binding.
//!
//! ```
//! use binding_api::frame::{Begin, Data, Frame, Window};
//! use binding_api::stream;
//!
//! let (mut initiator, mut acceptor) = stream::open(Begin::default());
//! // The acceptor grants 1024 bytes of credit with 0 padding...
//! acceptor.input.window(Window { credit: 1024, padding: 0 }).unwrap();
//! // ...so the initiator may send.
//! initiator.output.data(Data::new("hello")).unwrap();
//! assert_eq!(acceptor.input.try_frame(), Some(Frame::Data(Data::new("hello"))));
//! ```

pub mod binding;
pub mod bytes_queue;
pub mod credit;
pub mod ext;
pub mod frame;
pub mod guard;
pub mod memo;
pub mod route;
pub mod shutdown;
pub mod stream;
mod task;
pub mod timer;
pub mod vault;
