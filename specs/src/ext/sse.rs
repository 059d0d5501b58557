//! The `sse` extensions in scenarios: the subscription an sse server opens (begin), and the
//! id, type, timestamp and continuation of an event (data), or the id of a flush or end.

use binding_api::ext::sse::{SseBeginEx, SseDataEx, SseEndEx, SseFlushEx};
use serde::{Deserialize, Deserializer};
use std::sync::Arc;

use crate::value::Pattern;

/// `sse:` on a begin. When matching, `last-event-id: ~` means "absent".
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SseBegin {
    /// `http` or `https`.
    pub scheme: Option<Pattern>,
    /// The request's authority.
    pub authority: Option<Pattern>,
    /// The path, without the query string.
    pub path: Option<Pattern>,
    /// The last event id: exact text, or `~` for none.
    #[serde(default, deserialize_with = "present")]
    pub last_event_id: Option<Option<String>>,
    /// Whether timestamps were asked for.
    pub timestamp: Option<bool>,
}

/// A field that is present, possibly null.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl SseBegin {
    /// The extension to send.
    pub fn build(&self) -> SseBeginEx {
        let text = |p: &Option<Pattern>| p.as_ref().map(|p| p.0.clone()).unwrap_or_default();
        SseBeginEx {
            scheme: self
                .scheme
                .as_ref()
                .map_or_else(|| "http".to_owned(), |p| p.0.clone()),
            authority: text(&self.authority),
            path: self
                .path
                .as_ref()
                .map_or_else(|| "/".to_owned(), |p| p.0.clone()),
            query: None,
            last_event_id: self.last_event_id.clone().flatten(),
            timestamp: self.timestamp.unwrap_or(false),
            authorization: Default::default(),
        }
    }

    /// Whether `got` has every field given.
    pub fn check(&self, got: &SseBeginEx) -> Result<(), String> {
        let fields = [
            ("scheme", &self.scheme, &got.scheme),
            ("authority", &self.authority, &got.authority),
            ("path", &self.path, &got.path),
        ];
        for (name, want, got) in fields {
            if let Some(want) = want
                && !want.matches(got)
            {
                return Err(format!("sse {name} is '{got}', expected {want}"));
            }
        }
        if let Some(want) = &self.last_event_id
            && want != &got.last_event_id
        {
            return Err(format!(
                "sse last-event-id is {:?}, expected {want:?}",
                got.last_event_id
            ));
        }
        if let Some(want) = self.timestamp
            && want != got.timestamp
        {
            return Err(format!(
                "sse timestamp is {}, expected {want}",
                got.timestamp
            ));
        }
        Ok(())
    }
}

/// `sse:` on a data, flush or end frame.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SseFrame {
    /// The event id (data), or the checkpoint (flush) or last (end) id.
    pub id: Option<String>,
    /// The event type (data only).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Milliseconds (data only).
    pub timestamp: Option<u64>,
    /// More data frames of the same event follow (data only).
    pub continues: Option<bool>,
}

impl SseFrame {
    /// The data extension.
    pub fn data(&self) -> SseDataEx {
        SseDataEx {
            id: self.id.as_deref().map(Arc::from),
            event_type: self.event_type.clone(),
            timestamp: self.timestamp,
            continues: self.continues.unwrap_or(false),
        }
    }

    /// The flush extension; only `id` applies.
    pub fn flush(&self) -> Result<SseFlushEx, String> {
        self.only_id("flush")?;
        Ok(SseFlushEx {
            id: self.id.clone(),
        })
    }

    /// The end extension; only `id` applies.
    pub fn end(&self) -> Result<SseEndEx, String> {
        self.only_id("end")?;
        Ok(SseEndEx {
            id: self.id.clone(),
        })
    }

    fn only_id(&self, frame: &str) -> Result<(), String> {
        if self.event_type.is_some() || self.timestamp.is_some() || self.continues.is_some() {
            return Err(format!("an sse {frame} takes only `id`"));
        }
        Ok(())
    }

    /// Whether a data extension has every field given.
    pub fn check_data(&self, got: &SseDataEx) -> Result<(), String> {
        let want = self.data();
        let same = self.id.as_ref().is_none_or(|_| want.id == got.id)
            && self
                .event_type
                .as_ref()
                .is_none_or(|_| want.event_type == got.event_type)
            && self
                .timestamp
                .is_none_or(|_| want.timestamp == got.timestamp)
            && self
                .continues
                .is_none_or(|_| want.continues == got.continues);
        if same {
            Ok(())
        } else {
            Err(format!("sse data extension is {got:?}, expected {self:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_begin() {
        let got = SseBeginEx {
            scheme: "http".into(),
            authority: "localhost:1".into(),
            path: "/events".into(),
            query: None,
            last_event_id: None,
            timestamp: false,
            authorization: Default::default(),
        };
        let want = SseBegin {
            path: Some(Pattern("/ev*".into())),
            last_event_id: Some(None),
            ..SseBegin::default()
        };
        assert!(want.check(&got).is_ok());
        let want = SseBegin {
            last_event_id: Some(Some(String::new())),
            ..SseBegin::default()
        };
        assert!(want.check(&got).is_err());
        assert_eq!(SseBegin::default().build().path, "/");
    }

    #[test]
    fn frames() {
        let frame = SseFrame {
            id: Some("1".into()),
            continues: Some(true),
            ..SseFrame::default()
        };
        assert!(frame.check_data(&frame.data()).is_ok());
        assert!(frame.check_data(&SseDataEx::default()).is_err());
        assert!(frame.end().is_err());
    }
}
