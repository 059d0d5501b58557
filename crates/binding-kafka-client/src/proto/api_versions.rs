//! ApiVersions v0 and version negotiation.

use std::collections::HashMap;

use bytes::Bytes;

use super::wire::{DecodeError, Decoder};
use super::{ApiKey, Request};

/// The versions this client implements, per API.
pub const SUPPORTED: [(ApiKey, i16, i16); 6] = [
    (ApiKey::Produce, 3, 8),
    (ApiKey::DescribeConfigs, 1, 3),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::ListOffsets, 1, 4),
    (ApiKey::Metadata, 1, 8),
    (ApiKey::ApiVersions, 0, 0),
];

/// The ApiVersions v0 request (empty body).
pub fn request() -> Request {
    Request {
        api: ApiKey::ApiVersions,
        version: 0,
        body: Bytes::new(),
    }
}

/// What a broker supports: `api key → (min, max)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    /// Error code.
    pub error_code: i16,
    /// Version ranges by API key.
    pub apis: HashMap<i16, (i16, i16)>,
}

/// Decodes an ApiVersions v0 response.
pub fn decode(body: Bytes) -> Result<ApiVersionsResponse, DecodeError> {
    let mut d = Decoder::new(body);
    let error_code = d.i16("error_code")?;
    let n = d.array_len("api_keys", 6)?;
    let mut apis = HashMap::with_capacity(n);
    for _ in 0..n {
        let key = d.i16("api_key")?;
        let min = d.i16("min_version")?;
        let max = d.i16("max_version")?;
        apis.insert(key, (min, max));
    }
    Ok(ApiVersionsResponse { error_code, apis })
}

/// The versions to use with a broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    /// Fetch.
    pub fetch: i16,
    /// ListOffsets.
    pub list_offsets: i16,
    /// Metadata.
    pub metadata: i16,
    /// Produce.
    pub produce: i16,
    /// DescribeConfigs.
    pub describe_configs: i16,
}

/// The highest version of each API both sides support; `Err(api)` names the first API without
/// a common version.
pub fn negotiate(broker: &ApiVersionsResponse) -> Result<Versions, ApiKey> {
    let pick = |api: ApiKey| -> Result<i16, ApiKey> {
        let (_, ours_min, ours_max) = SUPPORTED
            .iter()
            .copied()
            .find(|(k, _, _)| *k == api)
            .ok_or(api)?;
        let (theirs_min, theirs_max) = broker.apis.get(&(api as i16)).copied().ok_or(api)?;
        let v = ours_max.min(theirs_max);
        if v < ours_min.max(theirs_min) {
            return Err(api);
        }
        Ok(v)
    };
    Ok(Versions {
        fetch: pick(ApiKey::Fetch)?,
        list_offsets: pick(ApiKey::ListOffsets)?,
        metadata: pick(ApiKey::Metadata)?,
        produce: pick(ApiKey::Produce)?,
        describe_configs: pick(ApiKey::DescribeConfigs)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_common_version() {
        let mut broker = ApiVersionsResponse::default();
        broker.apis.insert(1, (4, 17));
        broker.apis.insert(2, (1, 9));
        broker.apis.insert(3, (0, 5));
        broker.apis.insert(0, (3, 13));
        broker.apis.insert(32, (1, 4));
        assert_eq!(
            negotiate(&broker),
            Ok(Versions {
                fetch: 11,
                list_offsets: 4,
                metadata: 5,
                produce: 8,
                describe_configs: 3,
            })
        );
        broker.apis.insert(1, (12, 17));
        assert_eq!(negotiate(&broker), Err(ApiKey::Fetch));
    }
}
