//! The JWS `alg` values this guard verifies, and only those.

/// A signature algorithm from RFC 7518 that the guard verifies: RSASSA-PKCS1-v1_5 and ECDSA.
///
/// There is deliberately no `none` and no HMAC (`HS*`): keys here are public keys, and a
/// public key must never be usable as an HMAC secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Es256,
    Es384,
}

/// Every RSA algorithm, what an RSA key without `alg` accepts.
pub(crate) const RSA_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512];

impl Algorithm {
    /// The algorithm a JWS `alg` (or JWK `alg`) names, if supported. Names are
    /// case-sensitive, as RFC 7515 has them.
    pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "RS384" => Some(Algorithm::Rs384),
            "RS512" => Some(Algorithm::Rs512),
            "ES256" => Some(Algorithm::Es256),
            "ES384" => Some(Algorithm::Es384),
            _ => None,
        }
    }

    /// The `alg` name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
        }
    }

    /// ring's parameters for an RSA algorithm (moduli of 2048 to 8192 bits), `None` for ECDSA.
    pub(crate) fn rsa_parameters(self) -> Option<&'static ring::signature::RsaParameters> {
        match self {
            Algorithm::Rs256 => Some(&ring::signature::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::Rs384 => Some(&ring::signature::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::Rs512 => Some(&ring::signature::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::Es256 | Algorithm::Es384 => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for alg in [
            Algorithm::Rs256,
            Algorithm::Rs384,
            Algorithm::Rs512,
            Algorithm::Es256,
            Algorithm::Es384,
        ] {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        for name in ["none", "HS256", "PS256", "ES512", "EdDSA", "rs256", ""] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }
}
