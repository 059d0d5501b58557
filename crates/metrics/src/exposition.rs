//! The Prometheus text exposition format (version 0.0.4): [`write()`] a [`Snapshot`], and
//! [`parse`] one back (what `zilla metrics` does with a scrape).
//!
//! Written here rather than with a crate: the maintained ones (`prometheus`,
//! `prometheus-client`) format the values of their own metric types or registries, and
//! ours are per-worker cells summed on scrape; the format itself is a few lines per kind.

use std::fmt::Write as _;

use crate::catalog::Unit;
use crate::handle::bucket_bound;
use crate::snapshot::{Snapshot, Value};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The snapshot in the text format: `# HELP` and `# TYPE` once per metric, then a line per
/// series (histograms: cumulative `_bucket` lines with `le`, `_sum`, `_count`).
pub fn write(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(snapshot.samples().len() * 96);
    let mut current = None;
    let mut name = String::new();
    for sample in snapshot.samples() {
        let metric = sample.metric;
        if current != Some(metric.name) {
            current = Some(metric.name);
            name = metric.exposition_name();
            let _ = writeln!(out, "# HELP {name} {}", escape(metric.help, false));
            let _ = writeln!(out, "# TYPE {name} {}", metric.kind.as_str());
        }
        let labels = labels(&sample.labels);
        match &sample.value {
            Value::Counter(total) => line(&mut out, &name, "", &labels, None, &total.to_string()),
            Value::Gauge(value) => line(&mut out, &name, "", &labels, None, &value.to_string()),
            Value::Histogram(histogram) => {
                let mut cumulative = 0u64;
                for (index, count) in histogram.buckets.iter().enumerate() {
                    cumulative = cumulative.wrapping_add(*count);
                    let le = bucket_bound(index)
                        .map_or_else(|| "+Inf".to_owned(), |b| scaled(b, metric.unit));
                    line(
                        &mut out,
                        &name,
                        "_bucket",
                        &labels,
                        Some(&le),
                        &cumulative.to_string(),
                    );
                }
                let sum = scaled(histogram.sum, metric.unit);
                line(&mut out, &name, "_sum", &labels, None, &sum);
                let count = histogram.count().to_string();
                line(&mut out, &name, "_count", &labels, None, &count);
            }
        }
    }
    out
}

/// `l1="v1",l2="v2"`.
fn labels(labels: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in labels {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"{}\"", escape(value, true));
    }
    out
}

fn line(out: &mut String, name: &str, suffix: &str, labels: &str, le: Option<&str>, value: &str) {
    out.push_str(name);
    out.push_str(suffix);
    out.push('{');
    out.push_str(labels);
    if let Some(le) = le {
        if !labels.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "le=\"{le}\"");
    }
    out.push_str("} ");
    out.push_str(value);
    out.push('\n');
}

/// Escapes `\` and line feeds, and `"` in label values.
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// A recorded value in the unit Prometheus expects: microseconds as seconds.
fn scaled(value: u64, unit: Unit) -> String {
    match unit {
        Unit::Count | Unit::Bytes => value.to_string(),
        Unit::Microseconds => {
            let fraction = format!("{:06}", value % 1_000_000);
            let fraction = fraction.trim_end_matches('0');
            match fraction {
                "" => (value / 1_000_000).to_string(),
                f => format!("{}.{f}", value / 1_000_000),
            }
        }
    }
}

/// One line of a scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    /// The sample's name, with any `_bucket`, `_sum`, `_count` or `_total` suffix.
    pub name: String,
    /// Its labels, in order.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl ParsedSample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a scrape's text could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: &'static str,
}

/// The samples of a text exposition (comments and blank lines skipped).
pub fn parse(text: &str) -> Result<Vec<ParsedSample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message| ParseError {
            line: index + 1,
            message,
        };
        samples.push(parse_line(line).map_err(error)?);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<ParsedSample, &'static str> {
    let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    if name.is_empty() {
        return Err("no metric name");
    }
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest.split_once("=\"").ok_or("a label without =\"")?;
            let (value, after) =
                unescape_until_quote(after).ok_or("an unterminated label value")?;
            labels.push((label.trim().to_owned(), value));
            rest = after;
        }
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = value
        .parse::<f64>()
        .map_err(|_| "a value that is not a number")?;
    Ok(ParsedSample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The escaped text up to the closing `"`, and what follows it.
fn unescape_until_quote(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[at + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}
