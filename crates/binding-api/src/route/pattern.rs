//! Zilla's wildcard patterns with captures, port ranges and CIDR blocks.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

/// A malformed pattern, port or CIDR in configuration.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RouteError {
    /// A `{` without its `}`, or an empty or invalid capture name.
    #[error("invalid capture in pattern '{pattern}': {reason}")]
    Capture {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A port or port range that is not `1-65535` or `a-b` with `a <= b`.
    #[error("invalid port '{0}': expected a number from 1 to 65535 or a range \"a-b\" with a <= b")]
    Port(String),
    /// A CIDR block that does not parse.
    #[error("invalid cidr '{0}': expected an address and prefix length such as 10.0.0.0/8")]
    Cidr(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: any text, possibly empty.
    Any,
    /// `{name}`: any non-empty text, captured.
    Capture(String),
}

/// A Zilla wildcard pattern: `*` matches any text, `{name}` matches and captures non-empty text,
/// everything else is literal, and the whole value must match. Like Zilla's regular
/// expressions, each wildcard takes as much as it can while the rest still matches, so
/// `/{topic}/{key}` gives topic `a/b` and key `c` for `/a/b/c`.
///
/// Matching takes time proportional to the pattern's tokens times the input's length, whatever
/// the input: patterns come from configuration, inputs from the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    tokens: Vec<Token>,
}

/// Values captured by a [`Pattern`], in pattern order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures<'a> {
    values: Vec<(&'a str, &'a str)>,
}

impl<'a> Captures<'a> {
    /// The value captured for `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// All captures as `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.values.iter().copied()
    }
}

impl Pattern {
    /// Parses a pattern.
    pub fn new(source: &str) -> Result<Pattern, RouteError> {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices();
        while let Some((_, c)) = chars.next() {
            match c {
                '*' => {
                    if !literal.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    }
                    if tokens.last() != Some(&Token::Any) {
                        tokens.push(Token::Any);
                    }
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    let reason = if !closed {
                        Some("'{' has no matching '}'")
                    } else if name.is_empty() {
                        Some("a capture needs a name")
                    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        Some("capture names use letters, digits and '_'")
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        return Err(RouteError::Capture {
                            pattern: source.to_owned(),
                            reason,
                        });
                    }
                    if !literal.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    }
                    tokens.push(Token::Capture(name));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Pattern {
            source: source.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern ends with `*`.
    pub fn ends_with_wildcard(&self) -> bool {
        self.tokens.last() == Some(&Token::Any)
    }

    /// Names of the captures, in order.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().filter_map(|t| match t {
            Token::Capture(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether `input` matches the whole pattern.
    pub fn matches(&self, input: &str) -> bool {
        self.captures(input).is_some()
    }

    /// Matches the whole of `input`, returning the captures.
    pub fn captures<'a>(&'a self, input: &'a str) -> Option<Captures<'a>> {
        let table = self.feasibility(input);
        if !table.get(0, 0) {
            return None;
        }
        let mut values = Vec::new();
        let mut pos = 0;
        for (i, token) in self.tokens.iter().enumerate() {
            match token {
                Token::Literal(lit) => pos += lit.len(),
                Token::Any | Token::Capture(_) => {
                    let min = if matches!(token, Token::Capture(_)) {
                        1
                    } else {
                        0
                    };
                    // Greedy: the longest span after which the rest still matches.
                    let end = (pos + min..=input.len())
                        .rev()
                        .find(|&end| input.is_char_boundary(end) && table.get(i + 1, end))?;
                    if let Token::Capture(name) = token {
                        values.push((name.as_str(), &input[pos..end]));
                    }
                    pos = end;
                }
            }
        }
        Some(Captures { values })
    }

    /// Matches an HTTP `:path` the way Zilla does: a pattern that does not end in `*` still
    /// matches when a query string follows.
    pub fn matches_path(&self, path: &str) -> bool {
        self.path_captures(path).is_some()
    }

    /// Like [`Pattern::matches_path`], returning the captures.
    pub fn path_captures<'a>(&'a self, path: &'a str) -> Option<Captures<'a>> {
        if let Some(captures) = self.captures(path) {
            return Some(captures);
        }
        if self.ends_with_wildcard() {
            return None;
        }
        path.match_indices('?')
            .find_map(|(at, _)| self.captures(&path[..at]))
    }

    /// `table.get(i, p)`: whether tokens `i..` match `input[p..]`.
    fn feasibility(&self, input: &str) -> Table {
        let width = input.len() + 1;
        let mut table = Table {
            width,
            cells: vec![false; (self.tokens.len() + 1) * width],
        };
        table.set(self.tokens.len(), input.len());
        for (i, token) in self.tokens.iter().enumerate().rev() {
            match token {
                Token::Literal(lit) => {
                    for p in 0..width {
                        if input.is_char_boundary(p)
                            && input[p..].starts_with(lit.as_str())
                            && table.get(i + 1, p + lit.len())
                        {
                            table.set(i, p);
                        }
                    }
                }
                Token::Any | Token::Capture(_) => {
                    let min = usize::from(matches!(token, Token::Capture(_)));
                    // Scan from the end, remembering whether any reachable end matches.
                    let mut any_from = vec![false; width + 1];
                    for q in (0..width).rev() {
                        any_from[q] =
                            any_from[q + 1] || (input.is_char_boundary(q) && table.get(i + 1, q));
                    }
                    for p in 0..width {
                        if input.is_char_boundary(p) && p + min < width + 1 && any_from[p + min] {
                            table.set(i, p);
                        }
                    }
                }
            }
        }
        table
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Pattern {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::new(s)
    }
}

struct Table {
    width: usize,
    cells: Vec<bool>,
}

impl Table {
    fn get(&self, token: usize, pos: usize) -> bool {
        pos < self.width && self.cells[token * self.width + pos]
    }

    fn set(&mut self, token: usize, pos: usize) {
        self.cells[token * self.width + pos] = true;
    }
}

/// An inclusive range of TCP ports, written `7114` or `"8000-8100"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port, inclusive.
    pub last: u16,
}

impl PortRange {
    /// A single port.
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// The ports of the range.
    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }

    /// Checks a number from configuration.
    pub fn from_number(n: i64) -> Result<Self, RouteError> {
        match u16::try_from(n) {
            Ok(port) if port > 0 => Ok(PortRange::single(port)),
            _ => Err(RouteError::Port(n.to_string())),
        }
    }
}

impl FromStr for PortRange {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RouteError::Port(s.to_owned());
        let parse = |t: &str| -> Result<u16, RouteError> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            match t.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(bad()),
            }
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let p = parse(s)?;
                (p, p)
            }
        };
        if first > last {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A CIDR block such as `10.0.0.0/8` or `::1/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    /// Whether `addr` is inside the block. IPv4-mapped IPv6 addresses match IPv4 blocks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        self.0.contains(&addr)
    }
}

impl FromStr for Cidr {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<ipnet::IpNet>()
            .map(Cidr)
            .map_err(|_| RouteError::Cidr(s.to_owned()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literal_and_wildcards() {
        let p = Pattern::new("/events/*").unwrap();
        assert!(p.matches("/events/"));
        assert!(p.matches("/events/a/b"));
        assert!(!p.matches("/event"));
        let p = Pattern::new("a.b").unwrap();
        assert!(p.matches("a.b"));
        assert!(!p.matches("axb"), "'.' is literal");
    }

    #[test]
    fn captures_are_greedy_and_non_empty() {
        let p = Pattern::new("/{topic}/{key}").unwrap();
        let c = p.captures("/a/b/c").unwrap();
        assert_eq!(c.get("topic"), Some("a/b"));
        assert_eq!(c.get("key"), Some("c"));
        assert!(p.captures("/a/").is_none());
        assert!(p.captures("//b").is_none());
    }

    #[test]
    fn path_matches_with_query_unless_wildcard() {
        let p = Pattern::new("/events").unwrap();
        assert!(p.matches_path("/events"));
        assert!(p.matches_path("/events?lastEventId=1"));
        assert!(!p.matches_path("/events/x"));
        let p = Pattern::new("/{topic}").unwrap();
        assert_eq!(
            p.path_captures("/t?x=1").unwrap().get("topic"),
            Some("t?x=1")
        );
    }

    #[test]
    fn bad_patterns() {
        assert!(Pattern::new("/{topic").is_err());
        assert!(Pattern::new("/{}").is_err());
        assert!(Pattern::new("/{a-b}").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!("7114".parse(), Ok(PortRange::single(7114)));
        assert_eq!(
            "8000-8002"
                .parse::<PortRange>()
                .unwrap()
                .ports()
                .collect::<Vec<_>>(),
            vec![8000, 8001, 8002]
        );
        assert!("0".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        assert!("9-8".parse::<PortRange>().is_err());
        assert!("+1".parse::<PortRange>().is_err());
        assert!(PortRange::from_number(65536).is_err());
    }

    #[test]
    fn cidr() {
        let c: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(c.contains("127.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }

    /// A reference matcher by plain backtracking, for small inputs.
    fn reference(tokens: &[Token], input: &str) -> bool {
        match tokens.split_first() {
            None => input.is_empty(),
            Some((Token::Literal(l), rest)) => {
                input.starts_with(l.as_str()) && reference(rest, &input[l.len()..])
            }
            Some((t, rest)) => {
                let min = usize::from(matches!(t, Token::Capture(_)));
                (min..=input.len())
                    .filter(|&n| input.is_char_boundary(n))
                    .any(|n| reference(rest, &input[n..]))
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_backtracking(pattern in "[ab/*]{0,6}|[ab/]{0,3}\\{x\\}[ab/*]{0,3}",
                                    input in "[ab/é]{0,10}") {
            let p = Pattern::new(&pattern).unwrap();
            prop_assert_eq!(p.matches(&input), reference(&p.tokens, &input));
            if let Some(c) = p.captures(&input) {
                // Captures rebuild the input with the literals.
                let mut rebuilt = String::new();
                let mut caps = c.iter();
                let mut ok = true;
                for t in &p.tokens {
                    match t {
                        Token::Literal(l) => rebuilt.push_str(l),
                        Token::Capture(_) => rebuilt.push_str(caps.next().map(|(_, v)| v).unwrap_or("")),
                        Token::Any => ok = false,
                    }
                }
                if ok {
                    prop_assert_eq!(rebuilt.as_str(), input.as_str());
                }
            }
        }

        #[test]
        fn never_panics(pattern in "\\PC{0,12}", input in "\\PC{0,40}") {
            if let Ok(p) = Pattern::new(&pattern) {
                let _ = p.path_captures(&input);
            }
        }
    }
}
