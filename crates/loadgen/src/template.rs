//! The subscriber URL template: `http[s]://HOST:PORT/PATH` where the path and query may hold
//! `{key}` and `{i}`, substituted literally (no escaping) per subscriber.

/// A template was not a usable URL.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Only `http://` and `https://` are served.
    #[error("URL must start with http:// or https://: {0}")]
    Scheme(String),
    /// The port is not a number.
    #[error("bad port in URL: {0}")]
    Port(String),
    /// There is no host.
    #[error("no host in URL: {0}")]
    Host(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Key,
    Index,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    /// `https://`.
    pub tls: bool,
    /// Host name or address as written (without IPv6 brackets).
    pub host: String,
    /// The port (default 80 / 443).
    pub port: u16,
    /// The `Host` / `:authority` value, as written.
    pub authority: String,
    parts: Vec<Part>,
}

impl UrlTemplate {
    /// Parses a template.
    pub fn parse(url: &str) -> Result<Self, TemplateError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(TemplateError::Scheme(url.to_string()));
        };
        let slash = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..slash];
        let path = if slash == rest.len() {
            "/"
        } else {
            &rest[slash..]
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let close = v6
                .find(']')
                .ok_or_else(|| TemplateError::Host(url.to_string()))?;
            (&v6[..close], v6[close + 1..].strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(TemplateError::Host(url.to_string()));
        }
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| TemplateError::Port(url.to_string()))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            parts: split(path),
        })
    }

    /// Whether the path holds `{key}` (each subscriber then sees only its own key).
    pub fn has_key(&self) -> bool {
        self.parts.contains(&Part::Key)
    }

    /// The request target (path and query) for a subscriber.
    pub fn path(&self, key: &str, index: usize) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Key => out.push_str(key),
                Part::Index => out.push_str(&index.to_string()),
            }
        }
        out
    }
}

fn split(mut path: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    while !path.is_empty() {
        if let Some(rest) = path.strip_prefix("{key}") {
            parts.push(Part::Text(std::mem::take(&mut text)));
            parts.push(Part::Key);
            path = rest;
        } else if let Some(rest) = path.strip_prefix("{i}") {
            parts.push(Part::Text(std::mem::take(&mut text)));
            parts.push(Part::Index);
            path = rest;
        } else {
            let c = path.chars().next().unwrap_or('/');
            text.push(c);
            path = &path[c.len_utf8()..];
        }
    }
    parts.push(Part::Text(text));
    parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_key_and_index_literally() {
        let t = UrlTemplate::parse(
            "http://127.0.0.1:8000/connection/uni_sse?cf_connect=%7B%22channels%22%3A%5B%22{key}%22%5D%7D&n={i}",
        )
        .unwrap();
        assert!(!t.tls && t.has_key());
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8000));
        assert_eq!(
            t.path("k3", 12),
            "/connection/uni_sse?cf_connect=%7B%22channels%22%3A%5B%22k3%22%5D%7D&n=12"
        );
    }

    #[test]
    fn defaults_ports_and_paths() {
        let t = UrlTemplate::parse("https://localhost").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path("k", 0)),
            (true, 443, "/".to_string())
        );
        assert!(!t.has_key());
        let t = UrlTemplate::parse("http://[::1]:7114/events/{key}").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("::1", 7114, "[::1]:7114")
        );
        assert_eq!(t.path("k0", 0), "/events/k0");
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(matches!(
            UrlTemplate::parse("ftp://x/"),
            Err(TemplateError::Scheme(_))
        ));
        assert!(matches!(
            UrlTemplate::parse("http://x:y/"),
            Err(TemplateError::Port(_))
        ));
        assert!(matches!(
            UrlTemplate::parse("http:///a"),
            Err(TemplateError::Host(_))
        ));
    }
}
