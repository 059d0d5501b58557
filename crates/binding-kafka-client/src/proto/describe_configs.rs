//! DescribeConfigs v1–v3: a topic's configuration (`cleanup.policy`, `retention.ms`, ...).

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{DecodeError, Decoder, Encode};
use super::{ApiKey, Request};

/// Resource type of a topic.
const TOPIC: i8 = 2;

/// A request for `keys` (all when empty) of `topic`.
pub fn request(version: i16, topic: &str, keys: &[&str]) -> Request {
    let mut b = BytesMut::new();
    b.put_array_len(1);
    b.put_i8(TOPIC);
    b.put_string(topic);
    if keys.is_empty() {
        b.put_i32(-1);
    } else {
        b.put_array_len(keys.len());
        for k in keys {
            b.put_string(k);
        }
    }
    b.put_i8(0); // include_synonyms
    if version >= 3 {
        b.put_i8(0); // include_documentation
    }
    Request {
        api: ApiKey::DescribeConfigs,
        version,
        body: b.freeze(),
    }
}

/// One resource's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceConfigs {
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
    /// Resource name.
    pub name: String,
    /// `(name, value)` pairs.
    pub configs: Vec<(String, Option<String>)>,
}

/// Decodes a DescribeConfigs response of `version`.
pub fn decode(version: i16, body: Bytes) -> Result<Vec<ResourceConfigs>, DecodeError> {
    let mut d = Decoder::new(body);
    d.i32("throttle_time_ms")?;
    let n = d.array_len("results", 12)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let error_code = d.i16("error_code")?;
        let error_message = d.nullable_string("error_message")?;
        d.i8("resource_type")?;
        let name = d.string("resource_name")?;
        let nc = d.array_len("configs", 9)?;
        let mut configs = Vec::with_capacity(nc);
        for _ in 0..nc {
            let key = d.string("config name")?;
            let value = d.nullable_string("config value")?;
            d.bool("read_only")?;
            d.i8("config_source")?;
            d.bool("is_sensitive")?;
            let ns = d.array_len("synonyms", 5)?;
            for _ in 0..ns {
                d.string("synonym name")?;
                d.nullable_string("synonym value")?;
                d.i8("synonym source")?;
            }
            if version >= 3 {
                d.i8("config_type")?;
                d.nullable_string("documentation")?;
            }
            configs.push((key, value));
        }
        out.push(ResourceConfigs {
            error_code,
            error_message,
            name,
            configs,
        });
    }
    Ok(out)
}

/// Encodes a response (for scripted brokers, tests and fuzz seeds).
pub fn encode_response(version: i16, results: &[ResourceConfigs]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_array_len(results.len());
    for r in results {
        b.put_i16(r.error_code);
        b.put_nullable_string(r.error_message.as_deref());
        b.put_i8(TOPIC);
        b.put_string(&r.name);
        b.put_array_len(r.configs.len());
        for (k, v) in &r.configs {
            b.put_string(k);
            b.put_nullable_string(v.as_deref());
            b.put_i8(0);
            b.put_i8(5);
            b.put_i8(0);
            b.put_array_len(0);
            if version >= 3 {
                b.put_i8(2);
                b.put_nullable_string(None);
            }
        }
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(
            version in 1i16..=3,
            configs in proptest::collection::vec(("[a-z.]{1,12}", proptest::option::of("[0-9a-z]{0,8}")), 0..5),
        ) {
            let results = vec![ResourceConfigs { error_code: 0, error_message: None, name: "t".into(), configs }];
            prop_assert_eq!(decode(version, encode_response(version, &results)).unwrap(), results);
        }
    }
}
