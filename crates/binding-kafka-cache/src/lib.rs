//! # binding-kafka-cache
//!
//! Zilla's kafka cache (placeholder docs, completed below).

pub mod log;
