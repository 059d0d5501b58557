//! Routing shared by bindings: [`Routes`], Zilla's ordered routes with a fallback exit, and
//! the condition helpers bindings match with: wildcard [`Pattern`]s with captures,
//! [`PortRange`]s and [`Cidr`] blocks.

mod pattern;
mod routes;

pub use pattern::{Captures, Cidr, Pattern, PortRange, RouteError};
pub use routes::{Resolved, Route, Routes};
