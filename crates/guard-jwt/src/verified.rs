//! What a verified token says about its bearer.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// A token that verified: who it is for, what they may do, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The identity claim's value (`sub` unless the guard's `identity` names another claim).
    pub identity: Option<String>,
    /// The roles claim's values (`scope` unless the guard's `roles` names another claim),
    /// from a space-separated string or an array of strings; empty without the claim.
    pub roles: Vec<String>,
    /// The token's `exp`: the stream must end (or be re-authorized) by then.
    pub expires_at: SystemTime,
    /// `exp` less the guard's `challenge` seconds: when to ask the client for a fresh token.
    /// `None` when the guard has no `challenge`.
    pub challenge_at: Option<SystemTime>,
    /// Every top-level claim whose value is a string.
    pub(crate) claims: BTreeMap<String, String>,
    /// The guard's `attributes`, each resolved to its claim's string value.
    pub(crate) attributes: BTreeMap<String, String>,
}

impl Verified {
    /// Whether the token carries every one of `required` (Zilla's `guarded` roles); true for
    /// none required.
    pub fn has_roles(&self, required: &[&str]) -> bool {
        required
            .iter()
            .all(|role| self.roles.iter().any(|held| held == role))
    }

    /// A top-level string claim by its name (`email`, `tenant`, …).
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).map(String::as_str)
    }

    /// An attribute from the guard's `attributes` map (attribute name → claim), as used in
    /// `${guarded['name'].attributes.NAME}`; `None` if it is not configured or its claim is
    /// absent or not a string.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}
