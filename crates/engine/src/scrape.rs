//! `zilla metrics`: scrape a running engine's prometheus endpoint and print its series as a
//! table of metric, namespace, binding (attributes when there are any) and value.
//!
//! A plain HTTP/1.1 GET to `127.0.0.1:PORT/PATH` of the configuration's first prometheus
//! endpoint; the text is read with [`zilla_metrics::exposition::parse`] and its names mapped
//! back to the dotted names of `zilla.yaml`. A histogram prints as its count and sum.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use zilla_metrics::catalog::{self, Kind};
use zilla_metrics::exposition::{self, ParsedSample};

use crate::metrics_config::PrometheusEndpoint;

/// Largest response read.
const MAX_RESPONSE: u64 = 64 << 20;

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// Nothing listens there.
    #[error("cannot reach {url}: {source}; is zilla running with this configuration?")]
    Connect {
        /// What was asked.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// The connection failed midway.
    #[error("{url}: {source}")]
    Io {
        /// What was asked.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not an HTTP/1.1 response, or not a 200.
    #[error("{url}: {message}")]
    Response {
        /// What was asked.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// A body that is not the text format.
    #[error("{url}: {source}")]
    Parse {
        /// What was asked.
        url: String,
        /// Where and why.
        source: exposition::ParseError,
    },
}

/// Which series to print.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this binding.
    pub binding: Option<String>,
}

/// The samples served at `endpoint` on this host.
pub fn scrape(
    endpoint: &PrometheusEndpoint,
    timeout: Duration,
) -> Result<Vec<ParsedSample>, ScrapeError> {
    let url = format!("http://127.0.0.1:{}{}", endpoint.port, endpoint.path);
    let addr = SocketAddr::from(([127, 0, 0, 1], endpoint.port));
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|source| ScrapeError::Connect {
            url: url.clone(),
            source,
        })?;
    let io = |source| ScrapeError::Io {
        url: url.clone(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        endpoint.path, endpoint.port
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .map_err(io)?;
    let body = body(&response).map_err(|message| ScrapeError::Response {
        url: url.clone(),
        message,
    })?;
    let text = String::from_utf8_lossy(&body);
    exposition::parse(&text).map_err(|source| ScrapeError::Parse { url, source })
}

/// The body of a 200 response, de-chunked.
fn body(response: &[u8]) -> Result<Vec<u8>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head = match parsed.parse(response) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return Err("not an HTTP response".into()),
    };
    if parsed.code != Some(200) {
        return Err(format!(
            "answered {} {}",
            parsed.code.unwrap_or_default(),
            parsed.reason.unwrap_or_default()
        ));
    }
    let chunked = parsed.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value).contains("chunked")
    });
    let rest = &response[head..];
    if !chunked {
        return Ok(rest.to_vec());
    }
    let mut out = Vec::with_capacity(rest.len());
    let mut at = 0;
    loop {
        match httparse::parse_chunk_size(&rest[at..]) {
            Ok(httparse::Status::Complete((_, 0))) => return Ok(out),
            Ok(httparse::Status::Complete((len, size))) => {
                let start = at + len;
                let end = usize::try_from(size)
                    .ok()
                    .and_then(|size| start.checked_add(size))
                    .filter(|&end| end <= rest.len())
                    .ok_or("a chunk longer than the response")?;
                out.extend_from_slice(&rest[start..end]);
                // Past the chunk's CRLF (a response cut there ends at the next parse).
                at = end.saturating_add(2).min(rest.len());
            }
            _ => return Err("a malformed chunked body".into()),
        }
    }
}

/// One row of the table.
struct Row {
    metric: String,
    namespace: String,
    binding: String,
    attributes: String,
    value: String,
}

/// The samples that pass `filter`, as an aligned table; `None` when none does.
pub fn table(samples: &[ParsedSample], filter: &Filter) -> Option<String> {
    let mut rows: Vec<Row> = Vec::new();
    for metric in catalog::CATALOG {
        let base = metric.exposition_name();
        let of = |suffix: &str| {
            let name = format!("{base}{suffix}");
            samples.iter().filter(move |s| s.name == name)
        };
        let selected = |s: &&ParsedSample| {
            filter
                .namespace
                .as_deref()
                .is_none_or(|n| s.label("namespace") == Some(n))
                && filter
                    .binding
                    .as_deref()
                    .is_none_or(|b| s.label("binding") == Some(b))
        };
        if metric.kind != Kind::Histogram {
            rows.extend(
                of("")
                    .filter(selected)
                    .map(|s| row(metric.name, s, number(s.value))),
            );
            continue;
        }
        for count in of("_count").filter(selected) {
            let sum = of("_sum")
                .find(|s| s.labels == count.labels)
                .map_or(0.0, |s| s.value);
            let value = format!("count {}, sum {}", number(count.value), number(sum));
            rows.push(row(metric.name, count, value));
        }
    }
    if rows.is_empty() {
        return None;
    }
    let with_attributes = rows.iter().any(|r| !r.attributes.is_empty());
    let mut header = Row {
        metric: "METRIC".into(),
        namespace: "NAMESPACE".into(),
        binding: "BINDING".into(),
        attributes: "ATTRIBUTES".into(),
        value: "VALUE".into(),
    };
    if !with_attributes {
        header.attributes.clear();
    }
    rows.insert(0, header);
    let width = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
    let widths = [
        width(|r| &r.metric),
        width(|r| &r.namespace),
        width(|r| &r.binding),
        width(|r| &r.attributes),
    ];
    let mut out = String::new();
    for r in &rows {
        let mut line = format!(
            "{:w0$}  {:w1$}  {:w2$}  ",
            r.metric,
            r.namespace,
            r.binding,
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        if with_attributes {
            line.push_str(&format!("{:w$}  ", r.attributes, w = widths[3]));
        }
        line.push_str(&r.value);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Some(out)
}

fn row(metric: &str, sample: &ParsedSample, value: String) -> Row {
    let attributes: Vec<String> = sample
        .labels
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "namespace" | "binding" | "le"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    Row {
        metric: metric.to_owned(),
        namespace: sample.label("namespace").unwrap_or_default().to_owned(),
        binding: sample.label("binding").unwrap_or_default().to_owned(),
        attributes: attributes.join(" "),
        value,
    }
}

/// A value without `.0` when it is whole.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_of_a_scrape() {
        let text = "# TYPE stream_opens_received_total counter\n\
            stream_opens_received_total{namespace=\"a\",binding=\"tcp\"} 3\n\
            stream_opens_received_total{namespace=\"a\",binding=\"tcp2\"} 1\n\
            http_duration_seconds_bucket{namespace=\"a\",binding=\"http\",method=\"GET\",le=\"+Inf\"} 2\n\
            http_duration_seconds_sum{namespace=\"a\",binding=\"http\",method=\"GET\"} 0.25\n\
            http_duration_seconds_count{namespace=\"a\",binding=\"http\",method=\"GET\"} 2\n\
            stream_active_received{namespace=\"a\",binding=\"tcp\"} -1\n";
        let samples = exposition::parse(text).expect("text");
        let all = table(&samples, &Filter::default()).expect("rows");
        assert_eq!(
            all,
            "METRIC                  NAMESPACE  BINDING  ATTRIBUTES  VALUE\n\
             http.duration           a          http     method=GET  count 2, sum 0.25\n\
             stream.active.received  a          tcp                  -1\n\
             stream.opens.received   a          tcp                  3\n\
             stream.opens.received   a          tcp2                 1\n"
        );
        let tcp = Filter {
            namespace: Some("a".into()),
            binding: Some("tcp".into()),
        };
        assert_eq!(
            table(&samples, &tcp).expect("rows"),
            "METRIC                  NAMESPACE  BINDING  VALUE\n\
             stream.active.received  a          tcp      -1\n\
             stream.opens.received   a          tcp      3\n"
        );
        let other = Filter {
            namespace: Some("b".into()),
            binding: None,
        };
        assert_eq!(table(&samples, &other), None);
    }

    #[test]
    fn bodies_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nx 1\n";
        assert_eq!(body(plain).expect("plain"), b"x 1\n");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nx \r\n2\r\n1\n\r\n0\r\n\r\n";
        assert_eq!(body(chunked).expect("chunked"), b"x 1\n");
        let refused = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(body(refused).unwrap_err(), "answered 404 Not Found");
        assert!(body(b"SSH-2.0-OpenSSH\r\n").is_err());
        let short = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nx\r\n";
        assert!(body(short).is_err());
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx";
        assert!(body(cut).is_err());
    }
}
