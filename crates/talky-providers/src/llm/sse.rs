//! A small incremental decoder for `text/event-stream` bodies (protocols §7.2).
//!
//! Only `data:` fields matter for chat completions. Events are separated by a blank line; the
//! space after the colon is optional; comment lines (`:` first) and other fields are ignored.
//! Lenient on one point: a `data:` line that follows a complete JSON (or `[DONE]`) data value
//! without a blank line in between starts a new event, so servers that forget the blank line
//! still work.

use talky_core::ports::llm::LlmError;

/// Bytes in, `data` payloads out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    pending: Option<String>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends raw body bytes (any split, including inside UTF-8 sequences).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete `data` payload, or `None` when more bytes are needed.
    pub fn next_data(&mut self) -> Option<Result<String, LlmError>> {
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(out) = self.on_line(line) {
                return Some(out);
            }
        }
        None
    }

    /// Called at end of body: the last unterminated line and any pending payload.
    pub fn finish(&mut self) -> Option<Result<String, LlmError>> {
        if let Some(out) = self.next_data() {
            return Some(out);
        }
        if !self.buf.is_empty() {
            let mut line = std::mem::take(&mut self.buf);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(out) = self.on_line(line) {
                return Some(out);
            }
        }
        self.pending.take().map(Ok)
    }

    fn on_line(&mut self, line: Vec<u8>) -> Option<Result<String, LlmError>> {
        if line.is_empty() {
            return self.pending.take().map(Ok);
        }
        if line[0] == b':' {
            return None;
        }
        let line = match String::from_utf8(line) {
            Ok(l) => l,
            Err(_) => {
                return Some(Err(LlmError::Protocol(
                    "event stream line is not UTF-8".into(),
                )))
            }
        };
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        if field != "data" {
            return None;
        }
        match self.pending.take() {
            Some(prev) if is_complete(&prev) => {
                self.pending = Some(value.to_string());
                Some(Ok(prev))
            }
            Some(mut prev) => {
                prev.push('\n');
                prev.push_str(value);
                self.pending = Some(prev);
                None
            }
            None => {
                self.pending = Some(value.to_string());
                None
            }
        }
    }
}

fn is_complete(data: &str) -> bool {
    let t = data.trim();
    t == "[DONE]" || serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(d: &mut SseDecoder) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(x) = d.next_data() {
            out.push(x.unwrap());
        }
        out
    }

    #[test]
    fn splits_events_across_arbitrary_boundaries() {
        let body =
            ": keep-alive\r\n\r\ndata: {\"a\":\"é\"}\r\n\r\ndata:{\"b\":1}\n\ndata: [DONE]\n\n";
        let bytes = body.as_bytes();
        for split in 0..bytes.len() {
            let mut d = SseDecoder::new();
            d.push(&bytes[..split]);
            let mut got = drain(&mut d);
            d.push(&bytes[split..]);
            got.extend(drain(&mut d));
            if let Some(x) = d.finish() {
                got.push(x.unwrap());
            }
            assert_eq!(
                got,
                vec!["{\"a\":\"é\"}", "{\"b\":1}", "[DONE]"],
                "split {split}"
            );
        }
    }

    #[test]
    fn missing_blank_lines_and_eof_without_newline() {
        let mut d = SseDecoder::new();
        d.push(b"event: message\ndata: {\"x\":1}\ndata: {\"x\":2}\ndata: [DONE]");
        let mut got = drain(&mut d);
        while let Some(x) = d.finish() {
            got.push(x.unwrap());
        }
        assert_eq!(got, vec!["{\"x\":1}", "{\"x\":2}", "[DONE]"]);
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut d = SseDecoder::new();
        d.push(b"data: {\"x\":\ndata: 1}\n\n");
        assert_eq!(drain(&mut d), vec!["{\"x\":\n1}"]);
    }
}
