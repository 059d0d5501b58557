//! # binding-kafka-client
//!
//! Zilla's `kafka` binding, `kind: client`.

pub mod proto;
pub mod record;
