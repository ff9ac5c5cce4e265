//! Framing a QMP byte stream into messages.
//!
//! QEMU writes each message as one JSON object followed by CRLF, or spread over many lines
//! with `-mon ...,pretty=on`. [`Framer`] therefore ignores line breaks and finds the end of
//! each top-level object with a resumable byte scanner (strings, escapes and nesting), so a
//! message split across any number of reads costs one pass over its bytes. A complete
//! object is then validated with serde_json before it is handed out.

use serde::de::IgnoredAny;

/// Default bound for one message: far above QEMU's largest reply (`query-qmp-schema`,
/// about 200 KB on QEMU 7.2).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Why a stream can not be framed any further. All are fatal for the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("QMP message exceeds the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("QMP stream is not JSON: byte 0x{byte:02x} at offset {offset} is outside any message")]
    Garbage { byte: u8, offset: u64 },
    #[error("QMP message is not valid JSON: {0}")]
    Invalid(String),
}

/// Where the scanner stands inside the buffer.
#[derive(Debug, Default, Clone)]
struct Scan {
    /// Next byte of `buf` to look at.
    pos: usize,
    /// Start of the message being scanned, if one has begun.
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escape: bool,
}

/// A bounded, incremental QMP message framer.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out; dropped at the next [`Framer::push`].
    consumed: usize,
    scan: Scan,
    max: usize,
    /// Stream offset of `buf[0]`, for error messages.
    base_offset: u64,
}

impl Framer {
    /// A framer refusing any message longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Framer {
            buf: Vec::new(),
            consumed: 0,
            scan: Scan::default(),
            max: max_message_bytes,
            base_offset: 0,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.consumed > 0 {
            self.buf.drain(..self.consumed);
            self.base_offset += self.consumed as u64;
            self.scan.pos -= self.consumed;
            if let Some(start) = self.scan.start.as_mut() {
                *start -= self.consumed;
            }
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held for a message not yet complete.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<String>, FrameError> {
        let buf = &self.buf;
        let s = &mut self.scan;
        while s.pos < buf.len() {
            let b = buf[s.pos];
            s.pos += 1;
            let Some(start) = s.start else {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => self.consumed = s.pos,
                    b'{' => {
                        s.start = Some(s.pos - 1);
                        s.depth = 1;
                    }
                    _ => {
                        return Err(FrameError::Garbage {
                            byte: b,
                            offset: self.base_offset + s.pos as u64 - 1,
                        })
                    }
                }
                continue;
            };
            if s.pos - start > self.max {
                return Err(FrameError::TooLarge { limit: self.max });
            }
            if s.in_string {
                match b {
                    _ if s.escape => s.escape = false,
                    b'\\' => s.escape = true,
                    b'"' => s.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => s.in_string = true,
                b'{' | b'[' => s.depth += 1,
                b'}' | b']' => {
                    s.depth -= 1;
                    if s.depth == 0 {
                        let end = s.pos;
                        *s = Scan {
                            pos: end,
                            ..Scan::default()
                        };
                        self.consumed = end;
                        let bytes = &buf[start..end];
                        serde_json::from_slice::<IgnoredAny>(bytes)
                            .map_err(|e| FrameError::Invalid(e.to_string()))?;
                        let text = std::str::from_utf8(bytes)
                            .map_err(|e| FrameError::Invalid(e.to_string()))?;
                        return Ok(Some(text.to_owned()));
                    }
                }
                _ => {}
            }
        }
        if let Some(start) = s.start {
            if buf.len() - start > self.max {
                return Err(FrameError::TooLarge { limit: self.max });
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#;
    const TRICKY: &str =
        r#"{"return": {"s": "a } ] { [ \" \\", "n": [1, {"x": "}"}]}, "id": "q\"1"}"#;
    const PRETTY: &str = "{\n    \"event\": \"STOP\",\n    \"data\": {\n    },\n    \"timestamp\": {\n        \"seconds\": 1,\n        \"microseconds\": 2\n    }\n}";

    fn frame_all(framer: &mut Framer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(m) = framer.next_message().expect("valid stream") {
            out.push(m);
        }
        out
    }

    fn stream() -> String {
        format!("{GREETING}\r\n{TRICKY}\r\n{PRETTY}\n{{}}\r\n")
    }

    #[test]
    fn frames_crlf_and_pretty_messages() {
        let mut f = Framer::new(1024);
        f.push(stream().as_bytes());
        let got = frame_all(&mut f);
        assert_eq!(got, vec![GREETING, TRICKY, PRETTY, "{}"]);
        assert_eq!(f.pending_bytes(), 0);
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let s = stream();
        let bytes = s.as_bytes();
        for cut in 0..=bytes.len() {
            let mut f = Framer::new(1024);
            f.push(&bytes[..cut]);
            let mut got = frame_all(&mut f);
            f.push(&bytes[cut..]);
            got.extend(frame_all(&mut f));
            assert_eq!(got, vec![GREETING, TRICKY, PRETTY, "{}"], "cut at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut f = Framer::new(1024);
        let mut got = Vec::new();
        for b in stream().bytes() {
            f.push(&[b]);
            got.extend(frame_all(&mut f));
        }
        assert_eq!(got.len(), 4);
        assert_eq!(got[2], PRETTY);
    }

    #[test]
    fn garbage_outside_a_message_is_reported_with_its_offset() {
        let mut f = Framer::new(1024);
        f.push(b"{}\r\nxyz");
        assert_eq!(f.next_message().unwrap().as_deref(), Some("{}"));
        assert_eq!(
            f.next_message(),
            Err(FrameError::Garbage {
                byte: b'x',
                offset: 4
            })
        );
    }

    #[test]
    fn top_level_non_objects_are_garbage() {
        for text in ["[1]", "42", "\"s\"", "null"] {
            let mut f = Framer::new(1024);
            f.push(text.as_bytes());
            assert!(
                matches!(f.next_message(), Err(FrameError::Garbage { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_object_is_invalid() {
        let mut f = Framer::new(1024);
        f.push(b"{\"a\" 1}");
        assert!(matches!(f.next_message(), Err(FrameError::Invalid(_))));
        let mut f = Framer::new(1024);
        f.push(b"{\"a\": [1}]");
        assert!(matches!(f.next_message(), Err(FrameError::Invalid(_))));
    }

    #[test]
    fn too_large_even_before_it_completes() {
        let mut f = Framer::new(100);
        f.push(b"{\"a\": \"");
        f.push(&[b'x'; 200]);
        assert_eq!(f.next_message(), Err(FrameError::TooLarge { limit: 100 }));
        // exactly at the limit is fine
        let msg = format!("{{\"a\": \"{}\"}}", "x".repeat(91));
        assert_eq!(msg.len(), 100);
        let mut f = Framer::new(100);
        f.push(msg.as_bytes());
        assert_eq!(f.next_message().unwrap(), Some(msg));
    }

    #[test]
    fn whitespace_between_messages_does_not_accumulate() {
        let mut f = Framer::new(16);
        for _ in 0..100 {
            f.push(b"\r\n\r\n      ");
            assert_eq!(f.next_message(), Ok(None));
        }
        assert_eq!(f.pending_bytes(), 0);
    }

    #[test]
    fn many_coalesced_messages_in_one_read() {
        let one = "{\"return\": {}, \"id\": 7}\r\n";
        let mut f = Framer::new(1024);
        f.push(one.repeat(1000).as_bytes());
        assert_eq!(frame_all(&mut f).len(), 1000);
    }
}
