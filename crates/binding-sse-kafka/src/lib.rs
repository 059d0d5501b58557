//! # binding-sse-kafka
//!
//! Zilla's `sse-kafka` binding (`kind: proxy`): each SSE stream becomes a merged Kafka fetch of
//! a topic, each Kafka record an SSE event whose id carries the progress of every partition, so
//! a client that reconnects with `Last-Event-ID` resumes exactly where it left off.
//!
//! This crate grows with the sse-kafka work; today it holds its sans-IO parts: the event-id
//! codec, [`event_id`], byte-compatible with ids issued by Zilla, and the route value
//! substitutions, [`template`].

pub mod event_id;
pub mod template;
