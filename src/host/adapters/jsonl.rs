//! The normalized JSON-lines form: one [`HostEvent`] object per line (DESIGN.md, "Host
//! events"), as written by `examples/linux_host.rs` or by a log shipper.
//!
//! [`JsonlReader`] reads it from any [`BufRead`]:
//! - blank lines and lines whose first non-blank character is `#` are skipped;
//! - a malformed line yields [`HostError::Parse`] with its 1-based line number and the
//!   iteration goes on with the next line (the caller counts and skips);
//! - a line longer than the cap ([`DEFAULT_MAX_LINE_LEN`], 1 MiB, by default) is a
//!   [`HostError::Parse`] too: the reader discards the rest of it without buffering it,
//!   so a file without newlines cannot make it allocate without bound;
//! - an I/O error yields [`HostError::Io`] once and ends the iteration.

use crate::host::{HostError, HostEvent};
use std::io::BufRead;

/// Default cap on one line, in bytes (1 MiB).
pub const DEFAULT_MAX_LINE_LEN: usize = 1 << 20;

/// Iterator over the host events of a JSON-lines stream. See the module docs.
#[derive(Debug)]
pub struct JsonlReader<R> {
    reader: R,
    max_line_len: usize,
    line_no: u64,
    buf: Vec<u8>,
    done: bool,
}

/// What reading one line produced.
enum Line {
    /// The line is in `buf` (without its newline).
    Complete,
    /// The line was longer than the cap; its bytes were discarded.
    TooLong,
    /// End of input, nothing read.
    Eof,
}

impl<R: BufRead> JsonlReader<R> {
    /// A reader with the default line cap.
    pub fn new(reader: R) -> JsonlReader<R> {
        JsonlReader::with_max_line_len(reader, DEFAULT_MAX_LINE_LEN)
    }

    /// A reader whose lines may be at most `max_line_len` bytes (newline excluded).
    pub fn with_max_line_len(reader: R, max_line_len: usize) -> JsonlReader<R> {
        JsonlReader {
            reader,
            max_line_len,
            line_no: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line_no
    }

    /// Read one line into `buf`, never holding more than `max_line_len` bytes of it.
    fn read_line(&mut self) -> std::io::Result<Line> {
        self.buf.clear();
        let mut too_long = false;
        let mut read_any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            read_any = true;
            let (part, consumed, newline) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (
                    chunk.get(..i).unwrap_or_default(),
                    i.saturating_add(1),
                    true,
                ),
                None => (chunk, chunk.len(), false),
            };
            if !too_long {
                if self.buf.len().saturating_add(part.len()) > self.max_line_len {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            self.reader.consume(consumed);
            if newline {
                break;
            }
        }
        Ok(match (read_any, too_long) {
            (false, _) => Line::Eof,
            (true, true) => Line::TooLong,
            (true, false) => Line::Complete,
        })
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<HostEvent, HostError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let line = match self.read_line() {
                Ok(l) => l,
                Err(source) => {
                    self.done = true;
                    return Some(Err(HostError::Io { source }));
                }
            };
            match line {
                Line::Eof => {
                    self.done = true;
                    return None;
                }
                Line::TooLong => {
                    self.line_no = self.line_no.saturating_add(1);
                    return Some(Err(HostError::Parse {
                        line: self.line_no,
                        reason: format!("line longer than {} bytes", self.max_line_len),
                    }));
                }
                Line::Complete => {
                    self.line_no = self.line_no.saturating_add(1);
                    let text = self.buf.trim_ascii();
                    if text.is_empty() || text.first() == Some(&b'#') {
                        continue;
                    }
                    return Some(serde_json::from_slice::<HostEvent>(text).map_err(|e| {
                        HostError::Parse {
                            line: self.line_no,
                            reason: e.to_string(),
                        }
                    }));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostEventKind;
    use std::io::{BufReader, Cursor, Read};

    const START: &str = r#"{"timestamp":"2026-11-22T10:00:00.123456Z","host":"ws-17","platform":"linux","event":"process_start","pid":4242,"ppid":1,"image":"/usr/bin/python3","cmdline":"python3 beacon.py","user":"alice","process_guid":null}"#;
    const EXIT: &str = r#"{"timestamp":"2026-11-22T10:00:03Z","host":"ws-17","platform":"linux","event":"process_exit","pid":4242}"#;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = format!("# header\n\n   \n{START}\r\n  # indented comment\n{EXIT}");
        let events: Vec<_> = JsonlReader::new(Cursor::new(text))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(
            events[0].kind,
            HostEventKind::ProcessStart { pid: 4242, .. }
        ));
        assert!(matches!(events[1].kind, HostEventKind::ProcessExit { .. }));
    }

    #[test]
    fn malformed_line_reports_its_number_and_iteration_continues() {
        let text = format!("{START}\n{{\"event\":\"bogus\"}}\nnot json\n{EXIT}\n");
        let out: Vec<_> = JsonlReader::new(Cursor::new(text)).collect();
        assert_eq!(out.len(), 4);
        assert!(out[0].is_ok());
        assert!(matches!(out[1], Err(HostError::Parse { line: 2, .. })));
        assert!(matches!(out[2], Err(HostError::Parse { line: 3, .. })));
        assert!(out[3].is_ok());
    }

    #[test]
    fn overlong_line_is_an_error_and_next_line_still_reads() {
        let long = format!("{{\"x\":\"{}\"}}", "a".repeat(10_000));
        let text = format!("{long}\n{EXIT}\n");
        // A tiny BufReader capacity forces the long line across many fill_buf calls.
        let reader = BufReader::with_capacity(64, Cursor::new(text));
        let mut r = JsonlReader::with_max_line_len(reader, 1024);
        match r.next() {
            Some(Err(HostError::Parse { line: 1, reason })) => {
                assert!(reason.contains("longer than 1024"), "{reason}")
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        assert!(r.buf.capacity() <= 1024 + 64, "buffer grew past the cap");
        assert!(matches!(r.next(), Some(Ok(_))));
        assert!(r.next().is_none());
        assert_eq!(r.line_number(), 2);
    }

    #[test]
    fn invalid_utf8_is_a_parse_error() {
        let mut bytes = b"{\"timestamp\":\"".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\"}\n");
        let out: Vec<_> = JsonlReader::new(Cursor::new(bytes)).collect();
        assert!(matches!(
            out.as_slice(),
            [Err(HostError::Parse { line: 1, .. })]
        ));
    }

    struct FailAfter {
        data: Cursor<Vec<u8>>,
    }

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.data.read(buf)?;
            if n == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            Ok(n)
        }
    }

    #[test]
    fn io_error_ends_iteration_once() {
        let reader = BufReader::new(FailAfter {
            data: Cursor::new(format!("{START}\n").into_bytes()),
        });
        let out: Vec<_> = JsonlReader::new(reader).collect();
        assert_eq!(out.len(), 2);
        assert!(out[0].is_ok());
        assert!(matches!(out[1], Err(HostError::Io { .. })));
    }

    #[test]
    fn written_events_read_back_identically() {
        let ev: HostEvent = serde_json::from_str(START).unwrap();
        let text = format!(
            "{}\n{}\n",
            serde_json::to_string(&ev).unwrap(),
            serde_json::to_string(&ev).unwrap()
        );
        let back: Vec<HostEvent> = JsonlReader::new(Cursor::new(text))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![ev.clone(), ev]);
    }
}
