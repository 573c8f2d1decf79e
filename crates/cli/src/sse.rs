//! A Server-Sent Events parser (the WHATWG event-stream format) for the streams the API serves:
//! bytes in, whole events out.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `message` when the stream named none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen on the stream, if any.
    pub id: Option<String>,
}

/// Feeds on chunks of bytes that may split lines (and UTF-8 characters) anywhere.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` that starts the next one belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `chunk` and returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.line_done(&String::from_utf8_lossy(&line)) {
                        out.push(ev);
                    }
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields: nothing to do for this client
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event: if event.is_empty() {
                "message".to_string()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(str::to_string),
        }
    }

    #[test]
    fn events_fields_and_blank_lines() {
        let mut p = SseParser::new();
        let got = p.feed(b"event: log\nid: 1\ndata: first line\n\nevent: end\ndata: EXPOSED\n\n");
        assert_eq!(
            got,
            vec![
                ev("log", "first line", Some("1")),
                ev("end", "EXPOSED", Some("1"))
            ]
        );
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let mut p = SseParser::new();
        let got = p.feed(b"data: a\ndata:b\ndata:  c\ndata\n\n");
        assert_eq!(got, vec![ev("message", "a\nb\n c\n", None)]);
    }

    #[test]
    fn chunks_split_anywhere_give_the_same_events() {
        let stream = "event: log\r\nid: 7\r\ndata: héllo wörld\r\n\r\n: keep-alive\n\nevent: end\rdata: FAILED\r\r";
        let whole = SseParser::new().feed(stream.as_bytes());
        assert_eq!(
            whole,
            vec![
                ev("log", "héllo wörld", Some("7")),
                ev("end", "FAILED", Some("7"))
            ]
        );
        for size in 1..stream.len() {
            let mut p = SseParser::new();
            let got: Vec<SseEvent> = stream
                .as_bytes()
                .chunks(size)
                .flat_map(|c| p.feed(c))
                .collect();
            assert_eq!(got, whole, "chunks of {size} bytes");
        }
    }

    #[test]
    fn comments_and_events_without_data_dispatch_nothing() {
        let mut p = SseParser::new();
        assert!(p.feed(b":\n\nevent: log\n\nretry: 10\n\n").is_empty());
        // The event name of the data-less event does not leak into the next one.
        assert_eq!(p.feed(b"data: x\n\n"), vec![ev("message", "x", None)]);
    }

    #[test]
    fn an_unfinished_event_waits_for_its_blank_line() {
        let mut p = SseParser::new();
        assert!(p.feed(b"event: log\ndata: partial").is_empty());
        assert_eq!(p.feed(b"\n\n"), vec![ev("log", "partial", None)]);
    }
}
