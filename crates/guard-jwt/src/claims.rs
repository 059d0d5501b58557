//! The checks on a verified token's claims (`exp`, `nbf`, `iss`, `aud`) and what is taken
//! from them (identity, roles, attributes).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::CLOCK_SKEW;
use crate::error::{Excerpt, GuardError};
use crate::options::JwtOptions;
use crate::verified::Verified;

/// The most `aud` values an error lists.
const LISTED_AUDIENCES: usize = 4;

/// The guard's options that concern claims.
#[derive(Debug)]
pub(crate) struct ClaimPolicy {
    issuer: Option<String>,
    audience: Option<String>,
    roles: String,
    identity: String,
    challenge: Option<Duration>,
    attributes: BTreeMap<String, String>,
}

impl ClaimPolicy {
    pub(crate) fn new(options: &JwtOptions) -> ClaimPolicy {
        ClaimPolicy {
            issuer: options.issuer.clone(),
            audience: options.audience.clone(),
            roles: options.roles.clone(),
            identity: options.identity.clone(),
            challenge: options
                .challenge
                .map(|secs| Duration::from_secs(secs.into())),
            attributes: options.attributes.clone(),
        }
    }

    /// Checks `claims` at `now` and takes out what the guard reports.
    pub(crate) fn evaluate(
        &self,
        claims: Map<String, Value>,
        now: SystemTime,
    ) -> Result<Verified, GuardError> {
        let expires_at =
            numeric_date(&claims, "exp")?.ok_or(GuardError::MissingClaim { claim: "exp" })?;
        if let Ok(past) = now.duration_since(expires_at)
            && past >= CLOCK_SKEW
        {
            return Err(GuardError::Expired {
                exp: unix_seconds(expires_at),
                ago: past.as_secs(),
            });
        }
        if let Some(not_before) = numeric_date(&claims, "nbf")?
            && let Ok(ahead) = not_before.duration_since(now)
            && ahead > CLOCK_SKEW
        {
            return Err(GuardError::NotYetValid {
                nbf: unix_seconds(not_before),
                ahead: ahead.as_secs(),
            });
        }
        self.check_issuer(&claims)?;
        self.check_audience(&claims)?;
        let identity = optional_string(&claims, &self.identity)?.map(str::to_owned);
        let roles = roles(&claims, &self.roles)?;
        let challenge_at = self.challenge.map(|lead| {
            expires_at
                .checked_sub(lead)
                .unwrap_or(UNIX_EPOCH)
                .max(UNIX_EPOCH)
        });
        let strings: BTreeMap<String, String> = claims
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::String(text) => Some((name, text)),
                _ => None,
            })
            .collect();
        let attributes = self
            .attributes
            .iter()
            .filter_map(|(attribute, claim)| Some((attribute.clone(), strings.get(claim)?.clone())))
            .collect();
        Ok(Verified {
            identity,
            roles,
            expires_at,
            challenge_at,
            claims: strings,
            attributes,
        })
    }

    fn check_issuer(&self, claims: &Map<String, Value>) -> Result<(), GuardError> {
        let Some(expected) = &self.issuer else {
            return Ok(());
        };
        match optional_string(claims, "iss")? {
            Some(found) if found == expected => Ok(()),
            found => Err(GuardError::WrongIssuer {
                found: found.map(Excerpt::new),
                expected: expected.clone(),
            }),
        }
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), GuardError> {
        let Some(expected) = &self.audience else {
            return Ok(());
        };
        let invalid = || GuardError::InvalidClaim {
            claim: "aud".into(),
            expected: "a string or an array of strings",
        };
        let found: Vec<&str> = match claims.get("aud") {
            None => Vec::new(),
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many
                .iter()
                .map(|item| item.as_str().ok_or_else(invalid))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid()),
        };
        if found.contains(&expected.as_str()) {
            return Ok(());
        }
        Err(GuardError::WrongAudience {
            found: found
                .into_iter()
                .take(LISTED_AUDIENCES)
                .map(Excerpt::new)
                .collect(),
            expected: expected.clone(),
        })
    }
}

/// A NumericDate claim (seconds since 1970, fractions allowed), `None` when absent.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &str,
) -> Result<Option<SystemTime>, GuardError> {
    let Some(value) = claims.get(claim) else {
        return Ok(None);
    };
    let since_epoch = match value {
        Value::Number(number) => match number.as_u64() {
            Some(secs) => Some(Duration::from_secs(secs)),
            None => number
                .as_f64()
                .and_then(|secs| Duration::try_from_secs_f64(secs).ok()),
        },
        _ => None,
    };
    since_epoch
        .and_then(|since| UNIX_EPOCH.checked_add(since))
        .map(Some)
        .ok_or_else(|| GuardError::InvalidClaim {
            claim: claim.into(),
            expected: "a date in seconds since 1970",
        })
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A string claim, `None` when absent.
fn optional_string<'c>(
    claims: &'c Map<String, Value>,
    claim: &str,
) -> Result<Option<&'c str>, GuardError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(GuardError::InvalidClaim {
            claim: claim.into(),
            expected: "a string",
        }),
    }
}

/// The roles claim: a space-separated string (as OAuth's `scope`) or an array of strings.
fn roles(claims: &Map<String, Value>, claim: &str) -> Result<Vec<String>, GuardError> {
    let invalid = || GuardError::InvalidClaim {
        claim: claim.into(),
        expected: "a space-separated string or an array of strings",
    };
    match claims.get(claim) {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text.split_ascii_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const EXP: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn policy(options: serde_json::Value) -> ClaimPolicy {
        ClaimPolicy::new(&serde_json::from_value(options).unwrap())
    }

    fn plain() -> ClaimPolicy {
        policy(json!({"keys": []}))
    }

    fn evaluate(
        policy: &ClaimPolicy,
        claims: serde_json::Value,
        now: u64,
    ) -> Result<Verified, GuardError> {
        let serde_json::Value::Object(claims) = claims else {
            panic!("claims must be an object");
        };
        policy.evaluate(claims, at(now))
    }

    #[test]
    fn expiry_allows_the_clock_skew_and_no_more() {
        let skew = CLOCK_SKEW.as_secs();
        let claims = json!({"exp": EXP});
        assert!(evaluate(&plain(), claims.clone(), EXP - 1).is_ok());
        assert!(evaluate(&plain(), claims.clone(), EXP + skew - 1).is_ok());
        assert_eq!(
            evaluate(&plain(), claims, EXP + skew).err(),
            Some(GuardError::Expired {
                exp: EXP,
                ago: skew
            })
        );
    }

    #[test]
    fn not_before_allows_the_clock_skew_and_no_more() {
        let skew = CLOCK_SKEW.as_secs();
        let nbf = EXP - 600;
        let claims = json!({"exp": EXP, "nbf": nbf});
        assert!(evaluate(&plain(), claims.clone(), nbf - skew).is_ok());
        assert_eq!(
            evaluate(&plain(), claims, nbf - skew - 1).err(),
            Some(GuardError::NotYetValid {
                nbf,
                ahead: skew + 1
            })
        );
    }

    #[test]
    fn dates_must_be_non_negative_numbers_and_exp_present() {
        assert_eq!(
            evaluate(&plain(), json!({}), EXP).err(),
            Some(GuardError::MissingClaim { claim: "exp" })
        );
        for bad in [json!("1800000000"), json!(-1), json!(1e300), json!(null)] {
            assert!(
                matches!(
                    evaluate(&plain(), json!({"exp": bad}), EXP),
                    Err(GuardError::InvalidClaim { claim, .. }) if claim == "exp"
                ),
                "{bad}"
            );
        }
        let fractional = evaluate(&plain(), json!({"exp": EXP as f64 + 0.5}), EXP).unwrap();
        assert_eq!(fractional.expires_at, at(EXP) + Duration::from_millis(500));
    }

    #[test]
    fn issuer_must_match_when_configured() {
        let policy = policy(json!({"keys": [], "issuer": "https://auth.example.com"}));
        let good = json!({"exp": EXP, "iss": "https://auth.example.com"});
        assert!(evaluate(&policy, good, EXP).is_ok());
        let missing = evaluate(&policy, json!({"exp": EXP}), EXP);
        assert!(matches!(
            missing,
            Err(GuardError::WrongIssuer { found: None, .. })
        ));
        let other = evaluate(&policy, json!({"exp": EXP, "iss": "evil"}), EXP);
        assert!(
            matches!(other, Err(GuardError::WrongIssuer { found: Some(f), .. }) if f.as_str() == "evil")
        );
        assert!(evaluate(&plain(), json!({"exp": EXP, "iss": "anyone"}), EXP).is_ok());
    }

    #[test]
    fn audience_is_a_string_or_an_array_that_must_include_the_configured_one() {
        let policy = policy(json!({"keys": [], "audience": "streams"}));
        for aud in [json!("streams"), json!(["other", "streams"])] {
            assert!(evaluate(&policy, json!({"exp": EXP, "aud": aud}), EXP).is_ok());
        }
        let many: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
        let wrong = evaluate(&policy, json!({"exp": EXP, "aud": many}), EXP);
        assert!(
            matches!(wrong, Err(GuardError::WrongAudience { found, .. }) if found.len() == LISTED_AUDIENCES)
        );
        let mixed = evaluate(&policy, json!({"exp": EXP, "aud": ["streams", 1]}), EXP);
        assert!(matches!(mixed, Err(GuardError::InvalidClaim { claim, .. }) if claim == "aud"));
    }

    #[test]
    fn roles_identity_attributes_and_challenge_come_from_the_configured_claims() {
        let policy = policy(
            json!({"keys": [], "roles": "permissions", "identity": "email",
            "challenge": 10, "attributes": {"tenant": "org", "missing": "nope", "count": "n"}}),
        );
        let claims = json!({"exp": EXP, "sub": "u1", "email": "a@example.com", "org": "acme",
            "n": 3, "permissions": ["read:stream", "proxy:stream"], "scope": "ignored"});
        let verified = evaluate(&policy, claims, EXP - 100).unwrap();
        assert_eq!(verified.identity.as_deref(), Some("a@example.com"));
        assert_eq!(verified.roles, ["read:stream", "proxy:stream"]);
        assert!(verified.has_roles(&["proxy:stream"]));
        assert!(!verified.has_roles(&["proxy:stream", "ignored"]));
        assert_eq!(verified.challenge_at, Some(at(EXP - 10)));
        assert_eq!(verified.attribute("tenant"), Some("acme"));
        assert_eq!(verified.attribute("missing"), None);
        assert_eq!(verified.attribute("count"), None);
        assert_eq!(verified.claim("sub"), Some("u1"));
        assert_eq!(verified.claim("n"), None);
    }

    #[test]
    fn roles_split_on_spaces_and_refuse_other_types() {
        let verified = evaluate(&plain(), json!({"exp": EXP, "scope": " a  b\tc "}), EXP).unwrap();
        assert_eq!(verified.roles, ["a", "b", "c"]);
        assert!(verified.has_roles(&[]));
        let bad = evaluate(&plain(), json!({"exp": EXP, "scope": {"a": 1}}), EXP);
        assert!(matches!(bad, Err(GuardError::InvalidClaim { claim, .. }) if claim == "scope"));
        let no_identity = evaluate(&plain(), json!({"exp": EXP}), EXP).unwrap();
        assert_eq!((no_identity.identity, no_identity.roles.len()), (None, 0));
        let numeric_sub = evaluate(&plain(), json!({"exp": EXP, "sub": 5}), EXP);
        assert!(
            matches!(numeric_sub, Err(GuardError::InvalidClaim { claim, .. }) if claim == "sub")
        );
    }

    #[test]
    fn a_challenge_longer_than_the_epoch_is_due_at_once() {
        let policy = policy(json!({"keys": [], "challenge": 4_000_000_000u64}));
        let verified = evaluate(&policy, json!({"exp": 100}), 0).unwrap();
        assert_eq!(verified.challenge_at, Some(UNIX_EPOCH));
    }
}
