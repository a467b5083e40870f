//! DTLS handshake message reassembly (RFC 6347 §4.2.3, RFC 9147 §5.5).
//!
//! DTLS cuts a handshake message into fragments, each with the 12-byte header
//! `msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)`, spread
//! over records and datagrams that may be lost, retransmitted (possibly cut
//! differently), reordered or overlapping. [`DtlsReassembler`] collects the fragments of
//! each `message_seq` and hands out a message once every byte of it arrived.
//!
//! **Bounds**: at most [`MAX_IN_FLIGHT`] messages are being assembled per direction (a
//! fragment of a further one is dropped and counted), each at most the inspector's
//! `max_handshake_message` bytes, each tracked with at most [`MAX_RANGES`] disjoint byte
//! ranges. Messages already delivered are remembered (the last [`MAX_DELIVERED`]
//! sequence numbers) so that retransmissions are not summarised twice.
//!
//! Pure state: no I/O, no clock, never panics on input.

use std::collections::{BTreeMap, VecDeque};

/// Messages assembled at once per direction (a DTLS 1.2 server flight is ServerHello,
/// Certificate, ServerKeyExchange, CertificateRequest, ServerHelloDone: five).
pub const MAX_IN_FLIGHT: usize = 8;
/// Disjoint byte ranges tracked per message (more means pathological fragmentation).
pub const MAX_RANGES: usize = 64;
/// Delivered message sequence numbers remembered per direction.
pub const MAX_DELIVERED: usize = 32;

/// One fragment's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Handshake message type.
    pub msg_type: u8,
    /// Length of the whole message.
    pub length: usize,
    /// message_seq.
    pub message_seq: u16,
    /// fragment_offset.
    pub offset: usize,
    /// fragment_length.
    pub fragment_length: usize,
}

/// What happened to one fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FragmentOutcome {
    /// Kept; the message is not complete yet.
    Held,
    /// The message is complete: its type and body. Delivered once per `message_seq`.
    Complete(u8, Vec<u8>),
    /// A retransmission of a delivered message, or bytes already held.
    Duplicate,
    /// The message is larger than the cap.
    Oversized,
    /// Too many messages or ranges in flight: the fragment was dropped.
    Dropped,
    /// Inconsistent with the header (beyond the message end, or type/length differing
    /// from earlier fragments of the same `message_seq`).
    Inconsistent,
}

#[derive(Debug)]
struct Partial {
    msg_type: u8,
    data: Vec<u8>,
    /// Sorted, disjoint, non-adjacent `[start, end)` ranges received.
    ranges: Vec<(usize, usize)>,
}

impl Partial {
    fn complete(&self) -> bool {
        match self.ranges.as_slice() {
            [] => self.data.is_empty(),
            [(0, end)] => *end == self.data.len(),
            _ => false,
        }
    }

    /// Merge `[s, e)`; false when the range table is full.
    fn add_range(&mut self, s: usize, e: usize) -> bool {
        let mut merged = (s, e);
        let mut out = Vec::with_capacity(self.ranges.len().saturating_add(1));
        let mut placed = false;
        for &(a, b) in &self.ranges {
            if b < merged.0 {
                out.push((a, b));
            } else if a > merged.1 {
                if !placed {
                    out.push(merged);
                    placed = true;
                }
                out.push((a, b));
            } else {
                merged = (a.min(merged.0), b.max(merged.1));
            }
        }
        if !placed {
            out.push(merged);
        }
        if out.len() > MAX_RANGES {
            return false;
        }
        self.ranges = out;
        true
    }
}

/// Reassembly of one direction's DTLS handshake messages. See the module docs.
#[derive(Debug, Default)]
pub struct DtlsReassembler {
    partial: BTreeMap<u16, Partial>,
    delivered: VecDeque<u16>,
}

impl DtlsReassembler {
    /// Add one fragment (`body` is exactly its `fragment_length` bytes). `cap` bounds
    /// the message length.
    pub fn push(&mut self, h: FragmentHeader, body: &[u8], cap: usize) -> FragmentOutcome {
        if self.delivered.contains(&h.message_seq) {
            return FragmentOutcome::Duplicate;
        }
        if h.length > cap {
            return FragmentOutcome::Oversized;
        }
        let Some(end) = h.offset.checked_add(h.fragment_length) else {
            return FragmentOutcome::Inconsistent;
        };
        if end > h.length || body.len() != h.fragment_length {
            return FragmentOutcome::Inconsistent;
        }
        if !self.partial.contains_key(&h.message_seq) && self.partial.len() >= MAX_IN_FLIGHT {
            return FragmentOutcome::Dropped;
        }
        let p = self
            .partial
            .entry(h.message_seq)
            .or_insert_with(|| Partial {
                msg_type: h.msg_type,
                data: vec![0; h.length],
                ranges: Vec::new(),
            });
        if p.msg_type != h.msg_type || p.data.len() != h.length {
            return FragmentOutcome::Inconsistent;
        }
        let covered = end > h.offset && p.ranges.iter().any(|&(a, b)| a <= h.offset && end <= b);
        if covered {
            return FragmentOutcome::Duplicate;
        }
        if let Some(dst) = p.data.get_mut(h.offset..end) {
            dst.copy_from_slice(body);
        }
        if end > h.offset && !p.add_range(h.offset, end) {
            return FragmentOutcome::Dropped;
        }
        if !p.complete() {
            return FragmentOutcome::Held;
        }
        let Some(done) = self.partial.remove(&h.message_seq) else {
            return FragmentOutcome::Held;
        };
        if self.delivered.len() >= MAX_DELIVERED {
            self.delivered.pop_front();
        }
        self.delivered.push_back(h.message_seq);
        FragmentOutcome::Complete(done.msg_type, done.data)
    }

    /// Messages being assembled.
    pub fn in_flight(&self) -> usize {
        self.partial.len()
    }
}

/// Split a DTLS handshake record body into fragments: `(header, fragment bytes)`.
/// Stops at the first fragment that does not fit; returns whether the body was
/// consumed exactly.
pub fn fragments<F>(mut body: &[u8], mut each: F) -> bool
where
    F: FnMut(FragmentHeader, &[u8]),
{
    let u24 = |b: &[u8], at: usize| -> Option<usize> {
        match b.get(at..at.checked_add(3)?)? {
            &[x, y, z] => Some(usize::from(x) << 16 | usize::from(y) << 8 | usize::from(z)),
            _ => None,
        }
    };
    while !body.is_empty() {
        let (Some(&t), Some(len), Some(&[s0, s1]), Some(off), Some(flen)) = (
            body.first(),
            u24(body, 1),
            body.get(4..6),
            u24(body, 6),
            u24(body, 9),
        ) else {
            return false;
        };
        let end = 12usize.saturating_add(flen);
        let Some(frag) = body.get(12..end) else {
            return false;
        };
        each(
            FragmentHeader {
                msg_type: t,
                length: len,
                message_seq: u16::from_be_bytes([s0, s1]),
                offset: off,
                fragment_length: flen,
            },
            frag,
        );
        body = body.get(end..).unwrap_or(&[]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(seq: u16, len: usize, off: usize, flen: usize) -> FragmentHeader {
        FragmentHeader {
            msg_type: 11,
            length: len,
            message_seq: seq,
            offset: off,
            fragment_length: flen,
        }
    }

    #[test]
    fn fragments_out_of_order_with_overlap_complete_once() {
        let msg: Vec<u8> = (0..100u8).collect();
        let mut r = DtlsReassembler::default();
        assert_eq!(
            r.push(h(1, 100, 60, 40), &msg[60..], 1000),
            FragmentOutcome::Held
        );
        assert_eq!(
            r.push(h(1, 100, 0, 30), &msg[..30], 1000),
            FragmentOutcome::Held
        );
        assert_eq!(
            r.push(h(1, 100, 10, 10), &msg[10..20], 1000),
            FragmentOutcome::Duplicate
        );
        assert_eq!(
            r.push(h(1, 100, 25, 40), &msg[25..65], 1000),
            FragmentOutcome::Complete(11, msg.clone())
        );
        // A retransmission of the whole message is not delivered again.
        assert_eq!(
            r.push(h(1, 100, 0, 100), &msg, 1000),
            FragmentOutcome::Duplicate
        );
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn oversized_inconsistent_and_excess_messages_are_refused() {
        let mut r = DtlsReassembler::default();
        assert_eq!(
            r.push(h(0, 2000, 0, 1), &[1], 1000),
            FragmentOutcome::Oversized
        );
        assert_eq!(
            r.push(h(0, 10, 8, 4), &[1; 4], 1000),
            FragmentOutcome::Inconsistent
        );
        assert_eq!(
            r.push(h(0, 10, 0, 4), &[1; 3], 1000),
            FragmentOutcome::Inconsistent
        );
        for seq in 0..MAX_IN_FLIGHT as u16 {
            assert_eq!(r.push(h(seq, 10, 0, 1), &[1], 1000), FragmentOutcome::Held);
        }
        assert_eq!(
            r.push(h(99, 10, 0, 1), &[1], 1000),
            FragmentOutcome::Dropped
        );
        // Same seq, different length: inconsistent.
        assert_eq!(
            r.push(h(0, 11, 0, 1), &[1], 1000),
            FragmentOutcome::Inconsistent
        );
    }

    #[test]
    fn empty_message_completes_at_once() {
        let mut r = DtlsReassembler::default();
        let hdr = FragmentHeader {
            msg_type: 14,
            ..h(2, 0, 0, 0)
        };
        assert_eq!(
            r.push(hdr, &[], 10),
            FragmentOutcome::Complete(14, Vec::new())
        );
    }

    #[test]
    fn every_other_byte_fragmentation_hits_the_range_cap() {
        let mut r = DtlsReassembler::default();
        let mut last = FragmentOutcome::Held;
        for i in 0..=MAX_RANGES {
            last = r.push(h(0, 1000, 2 * i, 1), &[7], 1000);
        }
        assert_eq!(last, FragmentOutcome::Dropped);
    }

    #[test]
    fn record_body_splits_into_fragment_headers() {
        let mut body = vec![11, 0, 0, 5, 0, 3, 0, 0, 2, 0, 0, 2, 0xaa, 0xbb];
        let mut seen = Vec::new();
        assert!(fragments(&body, |hd, f| seen.push((hd, f.to_vec()))));
        assert_eq!(seen, vec![(h(3, 5, 2, 2), vec![0xaa, 0xbb])]);
        body.push(1);
        assert!(!fragments(&body, |_, _| {}));
    }
}
