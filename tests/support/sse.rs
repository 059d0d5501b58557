//! Reading event streams as a client does: curl, and a parser of what it prints.

use std::process::Command;

/// One SSE event as curl printed it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Event {
    /// The `id:` field.
    pub id: Option<String>,
    /// The `event:` field.
    pub event_type: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

/// Parses an event stream (enough of the WHATWG rules for our encoder's output).
pub fn events(text: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut current = Event::default();
    let mut has_data = false;
    for line in text.split('\n') {
        if line.is_empty() {
            if has_data {
                events.push(std::mem::take(&mut current));
            }
            current = Event::default();
            has_data = false;
        } else if let Some(id) = line.strip_prefix("id:") {
            current.id = Some(id.to_owned());
        } else if let Some(kind) = line.strip_prefix("event:") {
            current.event_type = Some(kind.to_owned());
        } else if let Some(data) = line.strip_prefix("data:") {
            if has_data {
                current.data.push('\n');
            }
            current.data.push_str(data);
            has_data = true;
        }
    }
    events
}

/// Reads `url` with curl for at most `seconds`, returning what arrived.
pub fn curl(url: &str, extra: &[&str], seconds: u32) -> String {
    let output = Command::new("curl")
        .args(["-sN", "--max-time", &seconds.to_string()])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl must be installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// curl's status code and body for `url` (at most 5 s); status 0 when nothing answered.
pub fn curl_status(url: &str, extra: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "5", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}
