//! JSON Web Keys (RFC 7517) as configured, and the verifying keys made from them.
//!
//! Every check of a key happens here, once, when keys are loaded: a key that is malformed,
//! too weak, private, symmetric or of an unsupported type is a [`KeysError`] naming it, so
//! the verify path only ever meets keys that can verify.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::algorithm::{Algorithm, RSA_ALGORITHMS};
use crate::error::{Excerpt, GuardError, KeysError, KeysOrigin};

/// The smallest RSA modulus accepted, in bits (ring's lower bound, and NIST's).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (ring's upper bound).
pub const MAX_RSA_BITS: usize = 8192;

/// One JSON Web Key, as written in the guard's `keys` or in a JWKS file.
///
/// Only public RSA (`n`, `e`) and EC (`crv` P-256 or P-384, `x`, `y`) keys are accepted.
/// Members not listed here (`x5c`, `key_ops`, …) are ignored, as RFC 7517 asks, so a JWKS
/// published by an identity provider reads as it is.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Jwk {
    /// Key type: `RSA` or `EC`.
    pub kty: String,
    /// Key id, matched against a token's `kid`.
    pub kid: Option<String>,
    /// The one algorithm the key may verify; without it an RSA key verifies RS256, RS384 and
    /// RS512, and an EC key the algorithm of its curve.
    pub alg: Option<String>,
    /// `sig` or `enc`; keys for encryption (`enc`) are skipped.
    #[serde(rename = "use")]
    pub usage: Option<String>,
    /// RSA modulus, base64url.
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    pub e: Option<String>,
    /// EC curve: `P-256` or `P-384`.
    pub crv: Option<String>,
    /// EC x coordinate, base64url.
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    pub y: Option<String>,
    /// A private exponent: present only to refuse private keys.
    #[serde(rename = "d")]
    private: Option<IgnoredAny>,
}

/// A JWK Set document: `{"keys": [...]}`; other members are ignored.
#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// An elliptic curve a key can be on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            _ => None,
        }
    }

    /// The bytes of one coordinate.
    fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// The only algorithm a key on this curve verifies.
    fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Curve::P256 => &[Algorithm::Es256],
            Curve::P384 => &[Algorithm::Es384],
        }
    }

    /// ring's verification with JWS's fixed-width `r || s` signatures.
    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }
}

/// The public half of a key, decoded.
#[derive(Debug)]
enum PublicKey {
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
    /// `point` is the uncompressed SEC1 encoding, `04 || x || y`.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
}

/// A key ready to verify signatures.
#[derive(Debug)]
pub(crate) struct VerifyingKey {
    kid: Option<String>,
    /// The algorithms this key verifies: its `alg`, or every one its type allows.
    algorithms: &'static [Algorithm],
    public: PublicKey,
}

impl VerifyingKey {
    /// Checks `signature` over `message` with `alg`, which must be one of this key's.
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), GuardError> {
        if !self.algorithms.contains(&alg) {
            return Err(GuardError::KeyAlgMismatch {
                alg: alg.name(),
                kid: self.kid_or_empty(),
                accepts: names(self.algorithms),
            });
        }
        let verified = match &self.public {
            PublicKey::Rsa(components) => alg
                .rsa_parameters()
                .is_some_and(|params| components.verify(params, message, signature).is_ok()),
            PublicKey::Ec { curve, point } => UnparsedPublicKey::new(curve.verification(), point)
                .verify(message, signature)
                .is_ok(),
        };
        if verified {
            Ok(())
        } else {
            Err(GuardError::BadSignature {
                kid: self.kid_or_empty(),
            })
        }
    }

    fn kid_or_empty(&self) -> String {
        self.kid.clone().unwrap_or_default()
    }
}

fn names(algorithms: &[Algorithm]) -> String {
    let names: Vec<&str> = algorithms.iter().map(|alg| alg.name()).collect();
    names.join(", ")
}

/// The keys a guard verifies with, all checked.
#[derive(Debug)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// Checks and decodes `jwks`; keys for encryption are skipped.
    pub(crate) fn from_jwks(jwks: &[Jwk], origin: &KeysOrigin) -> Result<KeySet, KeysError> {
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(jwks.len());
        for (index, jwk) in jwks.iter().enumerate() {
            let invalid = |reason: String| KeysError::InvalidKey {
                origin: origin.clone(),
                key: jwk.kid.clone().unwrap_or_else(|| format!("#{index}")),
                reason,
            };
            let Some(key) = verifying_key(jwk).map_err(invalid)? else {
                continue;
            };
            if let Some(kid) = &key.kid
                && keys.iter().any(|k| k.kid.as_ref() == Some(kid))
            {
                return Err(KeysError::DuplicateKid {
                    origin: origin.clone(),
                    kid: kid.clone(),
                });
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeysError::NoKeys {
                origin: origin.clone(),
            });
        }
        Ok(KeySet { keys })
    }

    /// Reads and checks a JWKS file.
    pub(crate) fn read_file(path: &Path) -> Result<KeySet, KeysError> {
        let bytes = std::fs::read(path).map_err(|source| KeysError::Read {
            path: path.to_owned(),
            source,
        })?;
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|source| KeysError::Json {
            path: path.to_owned(),
            source,
        })?;
        KeySet::from_jwks(&set.keys, &KeysOrigin::File(path.to_owned()))
    }

    /// The key a token's `kid` names; a token without `kid` gets the only key, if there is
    /// exactly one.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerifyingKey, GuardError> {
        let found = match kid {
            Some(kid) => self.keys.iter().find(|key| key.kid.as_deref() == Some(kid)),
            None => match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        };
        found.ok_or_else(|| GuardError::UnknownKey {
            kid: kid.map(Excerpt::new),
            known: self.kids(),
        })
    }

    /// The keys' `kid`s, `(no kid)` for a key without one.
    pub(crate) fn kids(&self) -> Vec<String> {
        let kids = self.keys.iter().map(|key| key.kid.as_deref());
        kids.map(|kid| kid.unwrap_or("(no kid)").to_owned())
            .collect()
    }

    /// How many keys there are.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The verifying key a JWK describes, `None` for a key meant for encryption, or why it is
/// unusable.
fn verifying_key(jwk: &Jwk) -> Result<Option<VerifyingKey>, String> {
    if jwk.private.is_some() {
        return Err("is a private key (it has \"d\"): configure the public key only".into());
    }
    match jwk.usage.as_deref() {
        None | Some("sig") => {}
        Some("enc") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "has \"use\": {other:?}, neither \"sig\" nor \"enc\""
            ));
        }
    }
    let pinned = match jwk.alg.as_deref() {
        None => None,
        Some(name) => Some(Algorithm::from_name(name).ok_or_else(|| {
            format!("has alg {name:?}; supported: RS256, RS384, RS512, ES256, ES384")
        })?),
    };
    let (public, allowed): (PublicKey, &'static [Algorithm]) = match jwk.kty.as_str() {
        "RSA" => (rsa_key(jwk)?, &RSA_ALGORITHMS),
        "EC" => {
            let (curve, point) = ec_key(jwk)?;
            (PublicKey::Ec { curve, point }, curve.algorithms())
        }
        "oct" => return Err("is symmetric (kty \"oct\"): HMAC tokens are not accepted".into()),
        other => return Err(format!("has kty {other:?}; supported: RSA, EC")),
    };
    let algorithms = match pinned {
        None => allowed,
        Some(alg) => {
            let Some(position) = allowed.iter().position(|a| *a == alg) else {
                return Err(format!(
                    "has alg {} but is a {} key ({})",
                    alg.name(),
                    jwk.kty,
                    names(allowed)
                ));
            };
            &allowed[position..=position]
        }
    };
    Ok(Some(VerifyingKey {
        kid: jwk.kid.clone(),
        algorithms,
        public,
    }))
}

fn rsa_key(jwk: &Jwk) -> Result<PublicKey, String> {
    let n = strip_leading_zeros(decode_member(jwk.n.as_deref(), "n")?);
    let e = strip_leading_zeros(decode_member(jwk.e.as_deref(), "e")?);
    let bits = bit_len(&n);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!(
            "has a {bits}-bit modulus; RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits"
        ));
    }
    // ring verifies with exponents from 3 to 2^33 - 1; an even one is never an RSA exponent.
    let odd = e.last().is_some_and(|low| low & 1 == 1);
    if !odd || bit_len(&e) > 33 || e == [1] {
        return Err("has an exponent e that is not odd, at least 3 and at most 33 bits".into());
    }
    Ok(PublicKey::Rsa(RsaPublicKeyComponents { n, e }))
}

fn ec_key(jwk: &Jwk) -> Result<(Curve, Vec<u8>), String> {
    let name = jwk.crv.as_deref().ok_or("is an EC key without crv")?;
    let curve = Curve::from_name(name)
        .ok_or_else(|| format!("has crv {name:?}; supported: P-256, P-384"))?;
    let x = decode_member(jwk.x.as_deref(), "x")?;
    let y = decode_member(jwk.y.as_deref(), "y")?;
    let len = curve.coordinate_len();
    if x.len() != len || y.len() != len {
        return Err(format!(
            "has coordinates of {} and {} bytes; {name} needs {len} each",
            x.len(),
            y.len()
        ));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((curve, point))
}

fn decode_member(value: Option<&str>, member: &str) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("has no {member:?}"))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| format!("has a {member:?} that is not unpadded base64url"))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// The bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(json: serde_json::Value) -> Jwk {
        serde_json::from_value(json).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ec_p256(kid: &str) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    fn rsa(bits: usize, e: &[u8]) -> serde_json::Value {
        let mut n = vec![0xff; bits / 8];
        n.insert(0, 0); // a leading zero, as some libraries write
        serde_json::json!({"kty": "RSA", "kid": "r", "n": b64(&n), "e": b64(e)})
    }

    fn reason(json: serde_json::Value) -> String {
        match verifying_key(&jwk(json)) {
            Err(reason) => reason,
            Ok(key) => panic!("accepted: {key:?}"),
        }
    }

    #[test]
    fn an_ec_key_verifies_its_curves_algorithm_only() {
        let key = verifying_key(&jwk(ec_p256("e"))).ok().flatten();
        assert_eq!(key.map(|k| k.algorithms), Some(&[Algorithm::Es256][..]));
    }

    #[test]
    fn an_rsa_key_without_alg_verifies_every_rs_algorithm_and_with_alg_one() {
        let key = verifying_key(&jwk(rsa(2048, &[1, 0, 1]))).ok().flatten();
        assert_eq!(key.map(|k| k.algorithms), Some(&RSA_ALGORITHMS[..]));
        let mut pinned = rsa(2048, &[1, 0, 1]);
        pinned["alg"] = "RS384".into();
        let key = verifying_key(&jwk(pinned)).ok().flatten();
        assert_eq!(key.map(|k| k.algorithms), Some(&[Algorithm::Rs384][..]));
    }

    #[test]
    fn unusable_keys_are_refused_with_the_reason() {
        assert!(reason(rsa(1024, &[1, 0, 1])).contains("1024-bit modulus"));
        assert!(reason(rsa(2048, &[2])).contains("exponent"));
        assert!(reason(rsa(2048, &[1])).contains("exponent"));
        let mut es_on_rsa = rsa(2048, &[3]);
        es_on_rsa["alg"] = "ES256".into();
        assert!(reason(es_on_rsa).contains("has alg ES256 but is a RSA key"));
        let mut private = ec_p256("p");
        private["d"] = b64(&[3; 32]).into();
        assert!(reason(private).contains("private key"));
        let mut p521 = ec_p256("c");
        p521["crv"] = "P-521".into();
        assert!(reason(p521).contains("P-521"));
        let mut short = ec_p256("s");
        short["y"] = b64(&[2; 31]).into();
        assert!(reason(short).contains("32 each"));
        let mut padded = ec_p256("b");
        padded["x"] = format!("{}=", b64(&[1; 32])).into();
        assert!(reason(padded).contains("base64url"));
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(reason(oct).contains("symmetric"));
        let mut none = ec_p256("n");
        none["alg"] = "none".into();
        assert!(reason(none).contains("\"none\""));
    }

    #[test]
    fn encryption_keys_are_skipped_and_an_empty_set_refused() {
        let mut enc = rsa(2048, &[1, 0, 1]);
        enc["use"] = "enc".into();
        let set = KeySet::from_jwks(&[jwk(enc.clone()), jwk(ec_p256("e"))], &KeysOrigin::Inline);
        assert_eq!(set.map(|s| s.kids()).ok(), Some(vec!["e".to_owned()]));
        let only_enc = KeySet::from_jwks(&[jwk(enc)], &KeysOrigin::Inline);
        assert!(matches!(only_enc, Err(KeysError::NoKeys { .. })));
    }

    #[test]
    fn duplicate_kids_are_refused() {
        let set = KeySet::from_jwks(&[jwk(ec_p256("a")), jwk(ec_p256("a"))], &KeysOrigin::Inline);
        assert!(matches!(set, Err(KeysError::DuplicateKid { kid, .. }) if kid == "a"));
    }

    #[test]
    fn a_token_without_kid_gets_the_only_key() {
        let one = KeySet::from_jwks(&[jwk(ec_p256("a"))], &KeysOrigin::Inline);
        assert!(one.is_ok_and(|set| set.select(None).is_ok()));
        let two = KeySet::from_jwks(&[jwk(ec_p256("a")), jwk(ec_p256("b"))], &KeysOrigin::Inline);
        let err = two.map(|set| set.select(None).map(|_| ()));
        assert!(matches!(
            err,
            Ok(Err(GuardError::UnknownKey { kid: None, known })) if known == ["a", "b"]
        ));
    }

    #[test]
    fn bit_length_counts_from_the_highest_set_bit() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01, 0, 0, 0, 0]), 33);
    }
}
