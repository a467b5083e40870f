//! Record framing across segments, and handshake messages across records.
//!
//! [`RecordReader`] follows one direction's byte stream record by record (RFC 8446 §5.1,
//! RFC 5246 §6.2): it keeps at most a 5-byte header and, only for records whose body
//! the caller wants (handshake, alert, change_cipher_spec), the body, capped at
//! [`MAX_CIPHERTEXT`]. Application data is skipped without buffering and only counted.
//! "Need more bytes" is the normal state between calls; a header that no TLS peer would
//! send is a [`RecordError`] and the direction stops.
//!
//! [`HandshakeReader`] cuts record bodies into handshake messages (several in one record,
//! one across several records), borrowing when a message lies in one record and
//! buffering up to a cap otherwise.

use super::handshake::TlsVersion;

/// Largest TLSPlaintext fragment: 2^14 (RFC 8446 §5.1, RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest TLSCiphertext fragment: 2^14 + 2048 (RFC 5246 §6.2.3; TLS 1.3 allows 2^14+256).
pub const MAX_CIPHERTEXT: usize = (1 << 14) + 2048;
/// Record header length.
pub const HEADER_LEN: usize = 5;

/// A record content type (IANA TLS ContentType).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentType(pub u8);

impl ContentType {
    /// change_cipher_spec.
    pub const CHANGE_CIPHER_SPEC: ContentType = ContentType(20);
    /// alert.
    pub const ALERT: ContentType = ContentType(21);
    /// handshake.
    pub const HANDSHAKE: ContentType = ContentType(22);
    /// application_data.
    pub const APPLICATION_DATA: ContentType = ContentType(23);
    /// heartbeat (RFC 6520).
    pub const HEARTBEAT: ContentType = ContentType(24);
    /// Not a wire value: marks an SSLv2-compatible ClientHello record.
    pub const SSLV2_CLIENT_HELLO: ContentType = ContentType(0x80);
}

/// A parsed record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub content_type: ContentType,
    /// Record-layer version (`legacy_record_version`).
    pub version: TlsVersion,
    /// Body length.
    pub len: usize,
}

/// Why a record stream is not (or no longer) TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer than 5 header bytes (not an error for a stream: wait for more).
    #[error("incomplete record header: need {need} bytes, have {have}")]
    Incomplete {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A content type outside 20..=24.
    #[error("bad record content type {0} at record {1}")]
    BadType(u8, u64),
    /// A record-layer version that is not 3.x (x ≤ 4).
    #[error("bad record version 0x{0:04x} at record {1}")]
    BadVersion(u16, u64),
    /// A body longer than allowed for its type.
    #[error("record {record} too long: {len} bytes, max {max}")]
    TooLong {
        /// Declared length.
        len: usize,
        /// Allowed length.
        max: usize,
        /// Record index in this direction.
        record: u64,
    },
    /// A zero-length handshake, alert or change_cipher_spec record (RFC 8446 §5.1).
    #[error("empty record of type {0} at record {1}")]
    Empty(u8, u64),
}

/// Parse and sanity-check a 5-byte record header (`index` is only for messages).
///
/// # Errors
/// [`RecordError::Incomplete`] when fewer than 5 bytes are given, else the first
/// rule the header breaks.
pub fn parse_header(b: &[u8], index: u64) -> Result<RecordHeader, RecordError> {
    let h = b.get(..HEADER_LEN).ok_or(RecordError::Incomplete {
        need: HEADER_LEN,
        have: b.len(),
    })?;
    let (ct, major, minor, l0, l1) = match *h {
        [ct, major, minor, l0, l1] => (ct, major, minor, l0, l1),
        _ => {
            return Err(RecordError::Incomplete {
                need: HEADER_LEN,
                have: b.len(),
            });
        }
    };
    if !(20..=24).contains(&ct) {
        return Err(RecordError::BadType(ct, index));
    }
    let version = u16::from_be_bytes([major, minor]);
    if major != 3 || minor > 4 {
        return Err(RecordError::BadVersion(version, index));
    }
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if len > MAX_CIPHERTEXT {
        return Err(RecordError::TooLong {
            len,
            max: MAX_CIPHERTEXT,
            record: index,
        });
    }
    Ok(RecordHeader {
        content_type: ContentType(ct),
        version: TlsVersion(version),
        len,
    })
}

/// What the reader hands to its caller for each record.
#[derive(Debug)]
pub struct Record<'a> {
    /// The header.
    pub header: RecordHeader,
    /// The body, when the caller asked for it; `None` for skipped records.
    pub body: Option<&'a [u8]>,
}

/// Which record bodies the caller wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPolicy {
    /// Bodies of handshake, alert and change_cipher_spec records; plaintext limits apply.
    Plaintext,
    /// No bodies at all (encrypted direction): headers are counted only.
    None,
}

/// One direction's record framing state.
#[derive(Debug, Default)]
pub struct RecordReader {
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    cur: Option<RecordHeader>,
    /// Body bytes still to come for `cur`.
    remaining: usize,
    /// Buffered body for `cur` when it is wanted and split across calls.
    body: Vec<u8>,
    want_body: bool,
    records: u64,
    first: bool,
    sslv2_allowed: bool,
}

impl RecordReader {
    /// A reader; `sslv2_first` allows an SSLv2-compatible ClientHello as first record.
    pub fn new(sslv2_first: bool) -> Self {
        RecordReader {
            first: true,
            sslv2_allowed: sslv2_first,
            ..RecordReader::default()
        }
    }

    /// Records completed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Whether any byte has been taken.
    pub fn started(&self) -> bool {
        !self.first || self.hdr_len > 0
    }

    /// Bytes held in buffers (header + body).
    pub fn buffered(&self) -> usize {
        self.hdr_len.saturating_add(self.body.len())
    }

    /// Feed contiguous bytes. `sink` gets every complete record (body per `policy`, read
    /// when the record *starts*) and returns `false` to stop reading this call.
    ///
    /// # Errors
    /// A malformed header; the caller should stop feeding this direction.
    pub fn feed<F>(
        &mut self,
        mut data: &[u8],
        policy: impl Fn() -> BodyPolicy,
        mut sink: F,
    ) -> Result<(), RecordError>
    where
        F: FnMut(Record<'_>) -> bool,
    {
        loop {
            if let Some(h) = self.cur {
                // Inside a body.
                let take = self.remaining.min(data.len());
                let (chunk, rest) = data.split_at(take);
                data = rest;
                self.remaining = self.remaining.saturating_sub(take);
                if self.remaining > 0 {
                    if self.want_body {
                        self.body.extend_from_slice(chunk);
                    }
                    return Ok(());
                }
                self.cur = None;
                self.records = self.records.saturating_add(1);
                let go_on = if self.want_body {
                    if self.body.is_empty() {
                        sink(Record {
                            header: h,
                            body: Some(chunk),
                        })
                    } else {
                        self.body.extend_from_slice(chunk);
                        let body = std::mem::take(&mut self.body);
                        let r = sink(Record {
                            header: h,
                            body: Some(&body),
                        });
                        self.body = body;
                        self.body.clear();
                        r
                    }
                } else {
                    sink(Record {
                        header: h,
                        body: None,
                    })
                };
                if !go_on {
                    return Ok(());
                }
                continue;
            }
            if data.is_empty() {
                return Ok(());
            }
            // Reading a header.
            let need = HEADER_LEN.saturating_sub(self.hdr_len);
            let take = need.min(data.len());
            let (chunk, rest) = data.split_at(take);
            if let Some(dst) = self
                .hdr
                .get_mut(self.hdr_len..self.hdr_len.saturating_add(take))
            {
                dst.copy_from_slice(chunk);
            }
            self.hdr_len = self.hdr_len.saturating_add(take);
            data = rest;
            // SSLv2-compatible ClientHello: 2-byte header with the high bit set.
            if self.first && self.sslv2_allowed && self.hdr[0] & 0x80 != 0 && self.hdr_len >= 3 {
                if self.hdr[2] != 1 {
                    return Err(RecordError::BadType(self.hdr[0], 0));
                }
                let len = usize::from(u16::from_be_bytes([self.hdr[0] & 0x7f, self.hdr[1]]));
                if len < 3 {
                    return Err(RecordError::Empty(self.hdr[0], 0));
                }
                // The body starts at hdr[2] (msg_type): keep the 3 header bytes we took.
                self.first = false;
                self.body.clear();
                self.body
                    .extend_from_slice(self.hdr.get(2..self.hdr_len).unwrap_or(&[]));
                let already = self.hdr_len.saturating_sub(2);
                self.hdr_len = 0;
                self.cur = Some(RecordHeader {
                    content_type: ContentType::SSLV2_CLIENT_HELLO,
                    version: TlsVersion::SSL_V2,
                    len,
                });
                self.want_body = true;
                self.remaining = len.saturating_sub(already);
                if self.remaining == 0 {
                    // Degenerate: whole body already taken with the header.
                    self.remaining = 0;
                }
                if self.remaining == 0 {
                    let h = self.cur.take();
                    self.records = self.records.saturating_add(1);
                    let body = std::mem::take(&mut self.body);
                    if let Some(h) = h
                        && !sink(Record {
                            header: h,
                            body: Some(&body),
                        })
                    {
                        return Ok(());
                    }
                }
                continue;
            }
            if self.hdr_len < HEADER_LEN {
                return Ok(());
            }
            self.first = false;
            self.hdr_len = 0;
            let h = parse_header(&self.hdr, self.records)?;
            let pol = policy();
            let ct = h.content_type;
            let control = ct == ContentType::HANDSHAKE
                || ct == ContentType::ALERT
                || ct == ContentType::CHANGE_CIPHER_SPEC;
            if pol == BodyPolicy::Plaintext && control {
                if h.len == 0 {
                    return Err(RecordError::Empty(ct.0, self.records));
                }
                if h.len > MAX_PLAINTEXT {
                    return Err(RecordError::TooLong {
                        len: h.len,
                        max: MAX_PLAINTEXT,
                        record: self.records,
                    });
                }
            }
            self.want_body = pol == BodyPolicy::Plaintext && control;
            self.body.clear();
            self.cur = Some(h);
            self.remaining = h.len;
        }
    }

    /// Forget any partial record (after a gap the framing is unknown).
    pub fn reset(&mut self) {
        self.hdr_len = 0;
        self.cur = None;
        self.remaining = 0;
        self.body = Vec::new();
    }
}

/// Why a handshake message could not be assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A message longer than the configured cap.
    #[error("handshake message type {msg_type} of {len} bytes exceeds cap {cap}")]
    Oversized {
        /// Handshake type.
        msg_type: u8,
        /// Declared length.
        len: usize,
        /// Configured cap.
        cap: usize,
    },
}

/// Cuts handshake record bodies into messages (type, body).
#[derive(Debug, Default)]
pub struct HandshakeReader {
    buf: Vec<u8>,
}

impl HandshakeReader {
    /// Bytes buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Append one handshake record body; `sink(msg_type, body)` gets every complete
    /// message. `cap` bounds one message body.
    ///
    /// # Errors
    /// [`HandshakeError::Oversized`] when a header declares more than `cap` bytes; the
    /// buffer is dropped.
    pub fn push<F>(&mut self, record: &[u8], cap: usize, mut sink: F) -> Result<(), HandshakeError>
    where
        F: FnMut(u8, &[u8]),
    {
        if self.buf.is_empty() {
            let rest = Self::drain(record, cap, &mut sink)?;
            self.buf.extend_from_slice(rest);
            return Ok(());
        }
        self.buf.extend_from_slice(record);
        let buf = std::mem::take(&mut self.buf);
        let res = Self::drain(&buf, cap, &mut sink).map(<[u8]>::to_vec);
        match res {
            Ok(rest) => {
                self.buf = rest;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Parse complete messages from `b`; returns the unparsed tail.
    fn drain<'b, F>(mut b: &'b [u8], cap: usize, sink: &mut F) -> Result<&'b [u8], HandshakeError>
    where
        F: FnMut(u8, &[u8]),
    {
        loop {
            let (Some(&t), Some(l)) = (b.first(), b.get(1..4)) else {
                return Ok(b);
            };
            let len = match *l {
                [a, c, d] => usize::from(a) << 16 | usize::from(c) << 8 | usize::from(d),
                _ => return Ok(b),
            };
            if len > cap {
                return Err(HandshakeError::Oversized {
                    msg_type: t,
                    len,
                    cap,
                });
            }
            let end = 4usize.saturating_add(len);
            let Some(body) = b.get(4..end) else {
                return Ok(b);
            };
            sink(t, body);
            b = b.get(end..).unwrap_or(&[]);
        }
    }

    /// Drop buffered bytes.
    pub fn reset(&mut self) {
        self.buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ct: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ct, 3, 3];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    type Seen = Vec<(u8, Option<Vec<u8>>)>;

    fn collect(chunks: &[&[u8]]) -> (Seen, Result<(), RecordError>) {
        let mut r = RecordReader::new(true);
        let mut out = Vec::new();
        let mut res = Ok(());
        for c in chunks {
            res = r.feed(
                c,
                || BodyPolicy::Plaintext,
                |rec| {
                    out.push((rec.header.content_type.0, rec.body.map(<[u8]>::to_vec)));
                    true
                },
            );
            if res.is_err() {
                break;
            }
        }
        (out, res)
    }

    #[test]
    fn record_split_into_single_bytes_is_reassembled() {
        let mut bytes = rec(22, b"hello");
        bytes.extend(rec(23, b"secret"));
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let (out, res) = collect(&chunks);
        assert!(res.is_ok());
        assert_eq!(out, vec![(22, Some(b"hello".to_vec())), (23, None)]);
    }

    #[test]
    fn zero_length_handshake_record_is_malformed() {
        let (_, res) = collect(&[&rec(22, b"")]);
        assert!(matches!(res, Err(RecordError::Empty(22, 0))));
    }

    #[test]
    fn zero_length_application_data_is_allowed() {
        let (out, res) = collect(&[&rec(23, b"")]);
        assert!(res.is_ok());
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn plaintext_record_of_2_14_plus_1_is_too_long() {
        let body = vec![0u8; MAX_PLAINTEXT + 1];
        let (out, res) = collect(&[&rec(22, &body)]);
        assert!(out.is_empty());
        assert!(matches!(res, Err(RecordError::TooLong { len, .. }) if len == MAX_PLAINTEXT + 1));
    }

    #[test]
    fn ciphertext_over_cap_is_rejected_at_the_header() {
        let h = [23u8, 3, 3, 0x48, 0x01]; // 18433 > 2^14 + 2048
        assert!(matches!(
            parse_header(&h, 0),
            Err(RecordError::TooLong { .. })
        ));
    }

    #[test]
    fn http_request_is_not_a_record() {
        assert!(matches!(
            parse_header(b"GET / HTTP/1.1", 0),
            Err(RecordError::BadType(b'G', 0))
        ));
        assert!(matches!(
            parse_header(&[22, 1, 0, 0, 1], 0),
            Err(RecordError::BadVersion(0x0100, 0))
        ));
        assert!(matches!(
            parse_header(&[22, 3], 0),
            Err(RecordError::Incomplete { need: 5, have: 2 })
        ));
    }

    #[test]
    fn handshake_messages_across_and_within_records() {
        let mut hr = HandshakeReader::default();
        let mut got = Vec::new();
        // Two messages in one record, then one split over two records.
        let rec1 = [1u8, 0, 0, 1, 0xaa, 2, 0, 0, 0, 11, 0, 0];
        let rec2 = [3u8, 0xbb, 0xcc, 0xdd];
        for r in [&rec1[..], &rec2[..]] {
            assert!(hr.push(r, 100, |t, b| got.push((t, b.to_vec()))).is_ok());
        }
        assert_eq!(
            got,
            vec![(1, vec![0xaa]), (2, vec![]), (11, vec![0xbb, 0xcc, 0xdd])]
        );
        assert_eq!(hr.buffered(), 0);
    }

    #[test]
    fn one_mib_handshake_message_hits_the_cap_without_buffering() {
        let mut hr = HandshakeReader::default();
        let hdr = [11u8, 0x10, 0x00, 0x00];
        let res = hr.push(&hdr, 65536, |_, _| {});
        assert!(matches!(
            res,
            Err(HandshakeError::Oversized { len: 0x100000, .. })
        ));
        assert_eq!(hr.buffered(), 0);
    }

    #[test]
    fn sslv2_client_hello_is_framed_as_one_record() {
        let msg = [1u8, 3, 1, 0, 3, 0, 0, 0, 16];
        let mut bytes = vec![0x80, (msg.len() + 3 + 16) as u8];
        bytes.extend_from_slice(&msg);
        bytes.extend_from_slice(&[0, 0, 0x2f]);
        bytes.extend_from_slice(&[7; 16]);
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let (out, res) = collect(&chunks);
        assert!(res.is_ok());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 0x80);
        assert_eq!(out[0].1.as_deref().map(<[u8]>::len), Some(msg.len() + 19));
    }
}
