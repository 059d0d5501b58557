//! What a ticker sends, with no I/O: where a subscription resumes, and each event's text.

use std::time::Duration;

/// The ticker's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickerOptions {
    /// Time between events (the first is sent at once).
    pub interval: Duration,
    /// How many events a subscription gets in all (counting those before a resume); after
    /// the last one the stream ends. `None`: no end.
    pub count: Option<u64>,
    /// Events per subscription: after this many the stream ends, and a client reconnects and
    /// resumes by id (to exercise reconnection). `None`: no limit.
    pub batch: Option<u64>,
    /// The data of each event; `{counter}` is replaced by the event's number.
    pub data: String,
    /// The event type, if any.
    pub event_type: Option<String>,
}

impl Default for TickerOptions {
    fn default() -> Self {
        TickerOptions {
            interval: Duration::from_secs(1),
            count: None,
            batch: None,
            data: "tick {counter}".to_owned(),
            event_type: None,
        }
    }
}

/// The first counter of a subscription that resumes after `last_event_id`: the next number
/// after a decimal id, else 1 (an absent, empty or foreign id starts from the beginning).
pub fn first_counter(last_event_id: Option<&str>) -> u64 {
    last_event_id
        .and_then(|id| id.parse::<u64>().ok())
        .map_or(1, |n| n.saturating_add(1))
}

impl TickerOptions {
    /// The data of event number `counter`.
    pub fn render(&self, counter: u64) -> String {
        self.data.replace("{counter}", &counter.to_string())
    }

    /// Whether event number `counter` is past the end.
    pub fn is_over(&self, counter: u64) -> bool {
        self.count.is_some_and(|count| counter > count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_after_a_numeric_id() {
        assert_eq!(first_counter(None), 1);
        assert_eq!(first_counter(Some("")), 1);
        assert_eq!(first_counter(Some("AQIAAg==")), 1);
        assert_eq!(first_counter(Some("41")), 42);
        assert_eq!(first_counter(Some(&u64::MAX.to_string())), u64::MAX);
    }

    #[test]
    fn renders_and_ends() {
        let options = TickerOptions {
            count: Some(3),
            data: "{\"n\":{counter}}".to_owned(),
            ..TickerOptions::default()
        };
        assert_eq!(options.render(7), "{\"n\":7}");
        assert!(!options.is_over(3));
        assert!(options.is_over(4));
        assert!(!TickerOptions::default().is_over(u64::MAX));
    }
}
