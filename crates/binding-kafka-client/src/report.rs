//! Rate-limited reports of what a broker did wrong: one warning per cause and subject (a
//! broker, a topic) per interval, however many streams or requests meet it. Sans I/O: the
//! caller passes the time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often one cause is warned about, at most.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// When each `(cause, subject)` was last reported.
#[derive(Debug, Default)]
pub struct Reports {
    last: RefCell<HashMap<(&'static str, String), Instant>>,
}

impl Reports {
    /// Whether `cause` about `subject` is to be reported at `now`: the first time in
    /// [`REPORT_INTERVAL`]. Entries older than the interval are forgotten, so the map holds
    /// only the causes of the last interval.
    pub fn due(&self, cause: &'static str, subject: &str, now: Instant) -> bool {
        let mut last = self.last.borrow_mut();
        last.retain(|_, at| now.saturating_duration_since(*at) < REPORT_INTERVAL);
        let key = (cause, subject.to_owned());
        if last.contains_key(&key) {
            return false;
        }
        last.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_cause_and_subject_per_interval() {
        let reports = Reports::default();
        let t0 = Instant::now();
        assert!(reports.due("crc", "b:1", t0));
        assert!(!reports.due("crc", "b:1", t0 + Duration::from_secs(1)));
        assert!(reports.due("crc", "b:2", t0));
        assert!(reports.due("decompress", "b:1", t0));
        assert!(reports.due("crc", "b:1", t0 + REPORT_INTERVAL));
        assert_eq!(reports.last.borrow().len(), 1, "older causes forgotten");
    }
}
