//! An incremental Server-Sent Events parser: feed it the body in any pieces, it calls back once
//! per complete event with the event's `id` (the last one seen, as the spec says) and `data`.
//! Buffers are reused: after warm-up, parsing allocates nothing per event.

/// Longest line or event accepted; a longer one is an error (memory stays bounded).
pub const MAX_EVENT: usize = 1 << 20;

/// One complete event.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The last event ID (persists across events until a new `id:` line).
    pub id: &'a [u8],
    /// The data lines joined with `\n`.
    pub data: &'a [u8],
}

/// The stream broke the parser's limits.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("SSE line or event longer than {MAX_EVENT} bytes")]
pub struct TooLong;

/// The parser's state between pieces of input.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    id: Vec<u8>,
    after_cr: bool,
    started: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event ID seen, to resume with `Last-Event-ID`.
    pub fn last_id(&self) -> &[u8] {
        &self.id
    }

    /// Starts a new stream (a reconnection): drops any partial line and event, keeps the last ID.
    pub fn reset_stream(&mut self) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.after_cr = false;
        self.started = false;
    }

    /// Parses `input`, calling `on_event` for each event it completes.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<(), TooLong> {
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        if !self.started && !input.is_empty() {
            // A leading byte-order mark is not part of the first field name.
            let bom: &[u8] = b"\xEF\xBB\xBF";
            let have = self.line.len() + input.len();
            if have < bom.len() {
                if bom.starts_with(&[&self.line[..], input].concat()) {
                    self.line.extend_from_slice(input);
                    return Ok(());
                }
            } else {
                let mut head = std::mem::take(&mut self.line);
                let take = bom.len() - head.len().min(bom.len());
                head.extend_from_slice(&input[..take]);
                if head == bom {
                    input = &input[take..];
                } else {
                    head.truncate(head.len() - take);
                    self.line = head;
                }
            }
            self.started = true;
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', input) {
            let crlf = input[end] == b'\r';
            if self.line.is_empty() {
                self.line_done(&input[..end], &mut on_event)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[..end]);
                let result = self.line_done(&line, &mut on_event);
                line.clear();
                self.line = line;
                result?;
            }
            input = &input[end + 1..];
            if crlf {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        if self.line.len() + input.len() > MAX_EVENT {
            return Err(TooLong);
        }
        self.line.extend_from_slice(input);
        Ok(())
    }

    fn line_done(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<(), TooLong> {
        if line.is_empty() {
            if self.has_data {
                on_event(SseEvent {
                    id: &self.id,
                    data: &self.data,
                });
            }
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(0) => return Ok(()),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT {
                    return Err(TooLong);
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                self.id.clear();
                self.id.extend_from_slice(value);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_pieces(pieces: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for piece in pieces {
            parser
                .feed(piece, |e| events.push((e.id.to_vec(), e.data.to_vec())))
                .unwrap();
        }
        events
    }

    #[test]
    fn parses_fields_comments_and_line_endings() {
        let input = b"\xEF\xBB\xBF: hi\r\nid: 1\r\ndata: a\r\ndata:b\r\n\r\nevent: x\ndata\n\n\rdata: c\r\rretry: 5\n\n";
        assert_eq!(
            parse_pieces(&[input]),
            vec![
                (b"1".to_vec(), b"a\nb".to_vec()),
                (b"1".to_vec(), b"".to_vec()),
                (b"1".to_vec(), b"c".to_vec()),
            ]
        );
    }

    #[test]
    fn keeps_the_last_id_across_reconnects_and_ignores_nul_ids() {
        let mut parser = SseParser::new();
        parser.feed(b"id: 7\ndata: x\n\nid: 8\0\n", |_| {}).unwrap();
        parser.reset_stream();
        assert_eq!(parser.last_id(), b"7");
    }

    #[test]
    fn refuses_endless_lines() {
        let mut parser = SseParser::new();
        let chunk = vec![b'a'; 64 * 1024];
        let result = (0..20).try_for_each(|_| parser.feed(&chunk, |_| {}));
        assert_eq!(result, Err(TooLong));
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            "[a-z0-9 ]{0,8}".prop_map(|v| format!("data: {v}")),
            "[0-9]{1,4}".prop_map(|v| format!("id: {v}")),
            Just(": comment".to_string()),
            Just(String::new()),
            Just("retry: 10".to_string()),
        ];
        let eol = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        prop::collection::vec((line, eol), 0..40).prop_map(|lines| {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            for (line, eol) in lines {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(eol.as_bytes());
            }
            out
        })
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(input in stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
            let whole = parse_pieces(&[&input]);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for p in points {
                pieces.push(&input[start..p]);
                start = p;
            }
            pieces.push(&input[start..]);
            prop_assert_eq!(parse_pieces(&pieces), whole);
        }
    }
}
