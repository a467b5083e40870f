//! Bounded TCP stream reassembly for one direction.
//!
//! Delivers contiguous in-order bytes, each exactly once, up to an inspection depth.
//! In-order segments are handed over **without copying** (borrowed from the packet);
//! only segments that arrive ahead of a hole are copied into a bounded out-of-order buffer.
//!
//! Policy, in one place:
//! - **Overlaps and retransmissions: first copy wins.** Bytes already delivered are never
//!   delivered again, whatever a later segment claims they were; a buffered segment that
//!   overlaps another is trimmed to the bytes nobody covered yet. (A sensor must pick one
//!   policy; targets differ, see Ptacek & Newsham 1998. First-wins is what most stacks do
//!   for in-window retransmissions and keeps evasion-by-rewrite out of the inspected bytes.)
//! - **Sequence wrap-around** is handled with 32-bit serial arithmetic (RFC 1982).
//! - **Mid-stream pickup**: with no SYN seen, the first payload segment of a direction
//!   starts its stream.
//! - **Gaps**: when the peer acknowledges bytes the capture never saw, or the out-of-order
//!   buffer is full, the hole is reported as a gap (so inspectors resynchronise instead of
//!   guessing) and delivery continues after it.
//! - **Caps**: out-of-order bytes and segments per direction; at the depth the stream stops
//!   delivering and frees its buffer, while the flow's counters go on.

use crate::flow::Interest;

/// A piece of the stream handed to the consumer.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// In-order bytes.
    Data(&'a [u8]),
    /// This many bytes were never seen.
    Gap(u64),
}

/// Limits of one direction's reassembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Bytes delivered before the stream stops (inspection depth).
    pub depth: u64,
    /// Out-of-order bytes buffered at most.
    pub max_ooo_bytes: usize,
    /// Out-of-order segments buffered at most.
    pub max_ooo_segments: usize,
}

/// What happened to one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentOutcome {
    /// Bytes ignored because they were already delivered or buffered.
    pub overlap: u64,
    /// Whether the segment was buffered out of order.
    pub buffered: bool,
    /// Bytes delivered as a result of this segment.
    pub delivered: u64,
    /// Bytes reported as gaps.
    pub gap: u64,
}

/// `a - b` in sequence space: positive when `a` is after `b`.
#[inline]
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// Segments further ahead of the expected sequence number than this are not buffered
/// (they are outside any plausible window and would only pin memory).
const MAX_AHEAD: i64 = 1 << 24;

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Stream {
    next: Option<u32>,
    delivered: u64,
    ooo: Vec<(u32, Vec<u8>)>,
    ooo_bytes: usize,
    fin_end: Option<u32>,
    done: bool,
}

impl Stream {
    /// Bytes delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether delivery has stopped (depth reached, or the consumer said `Done`).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Stop delivering and free the buffer.
    pub fn stop(&mut self) {
        self.done = true;
        self.ooo = Vec::new();
        self.ooo_bytes = 0;
    }

    /// Bytes currently held out of order.
    pub fn buffered_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// A SYN with sequence number `seq` (it consumes one sequence number).
    pub fn syn(&mut self, seq: u32) {
        if self.delivered == 0 && self.ooo.is_empty() {
            self.next = Some(seq.wrapping_add(1));
        }
    }

    /// A segment of this direction. `fin` is the segment's FIN flag.
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        fin: bool,
        limits: &StreamLimits,
        out: &mut dyn FnMut(Chunk<'_>) -> Interest,
    ) -> SegmentOutcome {
        let mut oc = SegmentOutcome::default();
        let len = data.len() as u64;
        if fin {
            self.fin_end = Some(seq.wrapping_add(data.len() as u32).wrapping_add(1));
        }
        if self.done || data.is_empty() {
            return oc;
        }
        let next = *self.next.get_or_insert(seq);
        let d = seq_diff(seq, next);
        if d <= 0 {
            let skip = d.unsigned_abs();
            if skip >= len {
                oc.overlap = len;
                return oc;
            }
            oc.overlap = skip;
            let fresh = data.get(skip as usize..).unwrap_or_default();
            self.deliver(fresh, limits, out, &mut oc);
            self.drain(limits, out, &mut oc);
        } else if d > MAX_AHEAD {
            oc.overlap = len;
        } else {
            oc.buffered = self.buffer(seq, data, next, &mut oc);
            if self.ooo.len() > limits.max_ooo_segments || self.ooo_bytes > limits.max_ooo_bytes {
                self.skip_to_buffered(limits, out, &mut oc);
            }
        }
        oc
    }

    /// The peer acknowledged up to `ack`: bytes before it that were never seen are a gap.
    pub fn ack(
        &mut self,
        ack: u32,
        limits: &StreamLimits,
        out: &mut dyn FnMut(Chunk<'_>) -> Interest,
    ) -> SegmentOutcome {
        let mut oc = SegmentOutcome::default();
        let Some(next) = self.next else { return oc };
        if self.done || seq_diff(ack, next) <= 0 {
            return oc;
        }
        // The FIN's own sequence number is acknowledged too; that is not a hole.
        if self.fin_end == Some(ack) && seq_diff(ack, next) == 1 && self.ooo.is_empty() {
            self.next = Some(ack);
            return oc;
        }
        if seq_diff(ack, next) > MAX_AHEAD {
            return oc;
        }
        match self.ooo.first() {
            Some(&(s, _)) if seq_diff(s, ack) <= 0 => self.skip_to_buffered(limits, out, &mut oc),
            _ => {
                let hole = seq_diff(ack, next) as u64;
                self.ooo.clear();
                self.ooo_bytes = 0;
                self.next = Some(ack);
                self.gap(hole, out, &mut oc);
            }
        }
        oc
    }

    /// End of flow: whatever is buffered is delivered after reporting the holes before it.
    pub fn finish(
        &mut self,
        limits: &StreamLimits,
        out: &mut dyn FnMut(Chunk<'_>) -> Interest,
    ) -> SegmentOutcome {
        let mut oc = SegmentOutcome::default();
        while !self.ooo.is_empty() && !self.done {
            self.skip_to_buffered(limits, out, &mut oc);
        }
        oc
    }

    fn gap(
        &mut self,
        hole: u64,
        out: &mut dyn FnMut(Chunk<'_>) -> Interest,
        oc: &mut SegmentOutcome,
    ) {
        oc.gap += hole;
        if out(Chunk::Gap(hole)) == Interest::Done {
            self.stop();
        }
    }

    fn skip_to_buffered(
        &mut self,
        limits: &StreamLimits,
        out: &mut dyn FnMut(Chunk<'_>) -> Interest,
        oc: &mut SegmentOutcome,
    ) {
        let (Some(next), Some(&(s, _))) = (self.next, self.ooo.first()) else {
            return;
        };
        let hole = seq_diff(s, next);
        if hole > 0 {
            self.next = Some(s);
            self.gap(hole as u64, out, oc);
        }
        self.drain(limits, out, oc);
    }

    fn buffer(&mut self, seq: u32, data: &[u8], next: u32, oc: &mut SegmentOutcome) -> bool {
        // Trim against buffered neighbours (first copy wins), then insert sorted.
        let mut start = seq;
        let mut bytes = data;
        let rel = |s: u32| seq_diff(s, next);
        let pos = self.ooo.partition_point(|&(s, _)| rel(s) <= rel(seq));
        if let Some((ps, pd)) = pos.checked_sub(1).and_then(|i| self.ooo.get(i)) {
            let prev_end = ps.wrapping_add(pd.len() as u32);
            let covered = seq_diff(prev_end, start);
            if covered > 0 {
                let c = (covered as usize).min(bytes.len());
                oc.overlap += c as u64;
                bytes = bytes.get(c..).unwrap_or_default();
                start = start.wrapping_add(c as u32);
            }
        }
        if let Some((ns, _)) = self.ooo.get(pos) {
            let room = seq_diff(*ns, start);
            if room <= 0 {
                oc.overlap += bytes.len() as u64;
                return false;
            }
            if (room as usize) < bytes.len() {
                oc.overlap += (bytes.len() - room as usize) as u64;
                bytes = bytes.get(..room as usize).unwrap_or_default();
            }
        }
        if bytes.is_empty() {
            return false;
        }
        self.ooo_bytes += bytes.len();
        self.ooo.insert(pos, (start, bytes.to_vec()));
        true
    }

    fn drain(
        &mut self,
        limits: &StreamLimits,
        out: &mut dyn FnMut(Chunk<'_>) -> Interest,
        oc: &mut SegmentOutcome,
    ) {
        while !self.done {
            let Some(next) = self.next else { return };
            let Some((s, _)) = self.ooo.first() else {
                return;
            };
            let d = seq_diff(*s, next);
            if d > 0 {
                return;
            }
            let (_, seg) = self.ooo.remove(0);
            self.ooo_bytes = self.ooo_bytes.saturating_sub(seg.len());
            let skip = d.unsigned_abs() as usize;
            if skip >= seg.len() {
                oc.overlap += seg.len() as u64;
                continue;
            }
            oc.overlap += skip as u64;
            self.deliver(seg.get(skip..).unwrap_or_default(), limits, out, oc);
        }
    }

    fn deliver(
        &mut self,
        data: &[u8],
        limits: &StreamLimits,
        out: &mut dyn FnMut(Chunk<'_>) -> Interest,
        oc: &mut SegmentOutcome,
    ) {
        if let Some(n) = self.next.as_mut() {
            *n = n.wrapping_add(data.len() as u32);
        }
        let room = limits.depth.saturating_sub(self.delivered);
        let take = (data.len() as u64).min(room) as usize;
        let part = data.get(..take).unwrap_or_default();
        if !part.is_empty() {
            self.delivered += part.len() as u64;
            oc.delivered += part.len() as u64;
            if out(Chunk::Data(part)) == Interest::Done {
                self.stop();
                return;
            }
        }
        if self.delivered >= limits.depth {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIM: StreamLimits = StreamLimits {
        depth: 1 << 20,
        max_ooo_bytes: 1 << 20,
        max_ooo_segments: 4096,
    };

    fn run(stream: &mut Stream, segs: &[(u32, &[u8])]) -> (Vec<u8>, u64) {
        let mut got = Vec::new();
        let mut gaps = 0;
        for (seq, d) in segs {
            stream.segment(*seq, d, false, &LIM, &mut |c| {
                match c {
                    Chunk::Data(b) => got.extend_from_slice(b),
                    Chunk::Gap(n) => gaps += n,
                }
                Interest::More
            });
        }
        (got, gaps)
    }

    #[test]
    fn in_order_segments_are_delivered_as_is() {
        let mut s = Stream::default();
        s.syn(99);
        let (got, gaps) = run(&mut s, &[(100, b"abc"), (103, b"def")]);
        assert_eq!(got, b"abcdef");
        assert_eq!(gaps, 0);
    }

    #[test]
    fn overlapping_segment_keeps_first_copy() {
        let mut s = Stream::default();
        s.syn(0);
        let (got, _) = run(&mut s, &[(1, b"abcd"), (3, b"XXef")]);
        assert_eq!(got, b"abcdef");
    }

    #[test]
    fn out_of_order_segments_are_reordered() {
        let mut s = Stream::default();
        s.syn(0);
        let (got, _) = run(&mut s, &[(4, b"def"), (7, b"g"), (1, b"abc")]);
        assert_eq!(got, b"abcdefg");
        assert_eq!(s.buffered_bytes(), 0);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut s = Stream::default();
        s.syn(u32::MAX - 2);
        let (got, _) = run(
            &mut s,
            &[(u32::MAX, b"ab"), (1, b"cd"), (u32::MAX - 1, b"z")],
        );
        assert_eq!(got, b"zabcd");
    }

    #[test]
    fn ack_beyond_seen_bytes_reports_a_gap_then_resumes() {
        let mut s = Stream::default();
        s.syn(0);
        run(&mut s, &[(1, b"ab")]);
        let mut gaps = 0;
        s.ack(10, &LIM, &mut |c| {
            if let Chunk::Gap(n) = c {
                gaps += n;
            }
            Interest::More
        });
        assert_eq!(gaps, 7);
        let (got, _) = run(&mut s, &[(10, b"xy")]);
        assert_eq!(got, b"xy");
    }

    #[test]
    fn ack_of_fin_is_not_a_gap() {
        let mut s = Stream::default();
        s.syn(0);
        s.segment(1, b"ab", true, &LIM, &mut |_| Interest::More);
        let oc = s.ack(4, &LIM, &mut |_| Interest::More);
        assert_eq!(oc.gap, 0);
    }

    #[test]
    fn depth_stops_delivery_and_frees_buffer() {
        let lim = StreamLimits { depth: 4, ..LIM };
        let mut s = Stream::default();
        s.syn(0);
        let mut got = Vec::new();
        for (seq, d) in [(1u32, &b"abc"[..]), (4, b"def"), (7, b"ghi")] {
            s.segment(seq, d, false, &lim, &mut |c| {
                if let Chunk::Data(b) = c {
                    got.extend_from_slice(b);
                }
                Interest::More
            });
        }
        assert_eq!(got, b"abcd");
        assert!(s.is_done());
    }

    #[test]
    fn out_of_order_buffer_is_capped() {
        let lim = StreamLimits {
            max_ooo_segments: 4,
            ..LIM
        };
        let mut s = Stream::default();
        s.syn(0);
        for i in 0..100u32 {
            s.segment(1000 + i * 10, b"12345", false, &lim, &mut |_| {
                Interest::More
            });
            assert!(s.ooo.len() <= 5);
        }
    }

    proptest! {
        #[test]
        fn any_arrival_order_delivers_the_stream_once(
            data in proptest::collection::vec(any::<u8>(), 1..2000),
            cuts in proptest::collection::vec(1usize..200, 1..40),
            order_seed in any::<u64>(),
            isn in any::<u32>(),
        ) {
            // Cut into segments, shuffle with duplicates, feed; with a large buffer nothing
            // may be lost or repeated.
            let mut segs = Vec::new();
            let mut at = 0usize;
            for c in cuts.iter().cycle() {
                if at >= data.len() { break; }
                let end = (at + c).min(data.len());
                segs.push((isn.wrapping_add(1).wrapping_add(at as u32), &data[at..end]));
                at = end;
            }
            let mut rng = order_seed | 1;
            let mut order: Vec<usize> = (0..segs.len()).collect();
            for i in (1..order.len()).rev() {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            let dup = order.first().copied();
            let mut s = Stream::default();
            s.syn(isn);
            let mut feed: Vec<(u32, &[u8])> = order.iter().map(|&i| segs[i]).collect();
            if let Some(d) = dup { feed.push(segs[d]); }
            let (got, gaps) = run(&mut s, &feed);
            prop_assert_eq!(gaps, 0);
            prop_assert_eq!(got, data);
        }
    }
}
