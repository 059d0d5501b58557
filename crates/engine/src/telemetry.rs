//! `telemetry.exporters.<name>.type: stdout`: one JSON line on standard output per event an
//! operator acts on.
//!
//! Human-oriented logs always go to standard error. With a stdout exporter configured, the
//! engine also writes, to standard output, one JSON object per line for:
//!
//! - every log event that names itself with an `event` field: `config_error`, `start_error`,
//!   `tls_handshake_failed` (tls server and client), `connect_failed` (tcp client),
//!   `kafka_connection_failed` (the first failure in a row to reach a broker) and
//!   `kafka_connection_restored` (a broker reached again, with the number of `failures`),
//!   `filesystem_location_missing` (a filesystem server's location is not there yet);
//! - the engine's life cycle: `listening` (one per port), `started`, `stopping`, `stopped`;
//! - every warning and error (stream errors, accept failures), as `warning` / `error`.
//!
//! Each line has `time` (RFC 3339, UTC, milliseconds), `level`, `event`, `message` and the
//! event's own fields, for example:
//!
//! ```text
//! {"time":"2026-11-27T13:40:09.296Z","level":"INFO","event":"tls_handshake_failed","message":"tls handshake failed","binding":"north_tls_server","peer":"127.0.0.1:46882","error":"received corrupt message of type InvalidContentType"}
//! ```
//!
//! Debug and trace events are never exported. The exporter is switched on by
//! [`StdoutExporter::enable`] once the configuration is known (a configuration error is exported when the
//! file, even if invalid, names a stdout exporter).

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Life-cycle messages exported even without an `event` field.
const LIFE_CYCLE: [&str; 4] = ["listening", "started", "stopping", "stopped"];

/// The tracing layer that writes exported events to standard output while enabled; its
/// clones share the switch, so the engine keeps one to turn on the layer it installed.
#[derive(Clone, Debug, Default)]
pub struct StdoutExporter {
    enabled: Arc<AtomicBool>,
}

impl StdoutExporter {
    /// Turns the exporter on.
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Exports an event that does not go through the log (a configuration or start-up
    /// error, already printed on standard error), if the exporter is on.
    pub fn export(&self, level: Level, event: &str, message: &str) {
        if !self.enabled() {
            return;
        }
        let fields = Fields {
            message: message.to_owned(),
            ..Fields::default()
        };
        let line = json_line(level, event, &fields, SystemTime::now());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// Whether a configuration file, valid or not, names a stdout exporter.
pub fn names_stdout_exporter(text: &str) -> bool {
    let Ok(root) = zilla_config::parse(text) else {
        return false;
    };
    let exporters = root.get("telemetry").and_then(|t| t.get("exporters"));
    exporters.and_then(|e| e.as_map()).is_some_and(|map| {
        map.iter().any(|(_, exporter)| {
            exporter
                .get("type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t == "stdout")
        })
    })
}

impl<S: Subscriber> Layer<S> for StdoutExporter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if !self.enabled() || level > Level::INFO {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let name = match (&fields.event, level) {
            (Some(name), _) => name.clone(),
            (None, Level::ERROR) => "error".to_owned(),
            (None, Level::WARN) => "warning".to_owned(),
            (None, _) if LIFE_CYCLE.contains(&fields.message.as_str()) => fields.message.clone(),
            (None, _) => return,
        };
        let line = json_line(level, &name, &fields, SystemTime::now());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// An event's fields, `message` and `event` apart.
#[derive(Default)]
struct Fields {
    message: String,
    event: Option<String>,
    /// Name, value, and whether the value is a JSON number or boolean already.
    rest: Vec<(&'static str, String, bool)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "event" => self.event = Some(value.to_owned()),
            name => self.rest.push((name, value.to_owned(), false)),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name(), value.to_string(), true));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name(), value.to_string(), true));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.push((field.name(), value.to_string(), true));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

fn json_line(level: Level, event: &str, fields: &Fields, now: SystemTime) -> String {
    let mut line = String::with_capacity(160);
    line.push_str("{\"time\":");
    quote(&mut line, &rfc3339(now));
    line.push_str(",\"level\":");
    quote(&mut line, level.as_str());
    line.push_str(",\"event\":");
    quote(&mut line, event);
    line.push_str(",\"message\":");
    quote(&mut line, &fields.message);
    for (name, value, raw) in &fields.rest {
        line.push(',');
        quote(&mut line, name);
        line.push(':');
        if *raw {
            line.push_str(value);
        } else {
            quote(&mut line, value);
        }
    }
    line.push_str("}\n");
    line
}

/// Appends `text` as a JSON string.
fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_786_809_296);
        assert_eq!(rfc3339(t), "2026-11-27T13:40:09.296Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn lines_are_json() {
        let fields = Fields {
            message: "tls handshake failed".into(),
            event: Some("tls_handshake_failed".into()),
            rest: vec![
                ("error", "bad \"hello\"\n\u{1}".into(), false),
                ("workers", "2".into(), true),
            ],
        };
        let line = json_line(Level::INFO, "tls_handshake_failed", &fields, UNIX_EPOCH);
        assert_eq!(
            line,
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"INFO\",\"event\":\"tls_handshake_failed\",\
             \"message\":\"tls handshake failed\",\"error\":\"bad \\\"hello\\\"\\n\\u0001\",\"workers\":2}\n"
        );
    }
}
