//! The dispatcher's fragment table: sends every fragment of an IP datagram to the worker
//! that its first fragment's ports choose (module docs of `pipeline`, "Fragments").
//!
//! Only the first fragment (offset 0) carries the TCP/UDP header, so the later ones cannot
//! be routed by the 5-tuple on their own. Suricata and Zeek reassemble before they pick a
//! flow; Linux's `PACKET_FANOUT_FLAG_DEFRAG` and DPDK's IP reassembly library likewise
//! put a datagram back together before hashing it. The dispatcher cannot afford a copy of
//! every datagram, so it keeps the reassembler's *bookkeeping* without the bytes: per
//! datagram (source, destination, protocol, identification, as [`crate::decode::defrag`]
//! names it) the byte ranges seen, the end once the last fragment came, the worker chosen
//! from the first fragment, and the fragments that came before it, held (a packet's bytes
//! are copied only when it does not live in a shared capture file). The range rules are
//! the reassembler's own functions, so a datagram leaves this table exactly when a worker's
//! reassembler completes it, or drops it on a contradiction, and a reused identification
//! starts afresh in both.
//!
//! Bounds: at most `max_datagrams` datagrams (the oldest is evicted and counted), at most
//! `max_held` fragments and `max_held_bytes` copied bytes held (beyond either, the
//! datagram's held fragments and the rest of it go by address pair, counted), at most
//! `max_ranges` ranges per datagram (the reassembler's cap: beyond it the datagram is
//! dropped there too). Time is capture time: [`FragmentLanes::expire`] forgets the
//! datagrams the reassemblers forget at the same tick (`defrag.timeout_secs`).
//!
//! Never panics; every read of input-derived values is checked.

use crate::capture::{CaptureFile, LinkType};
use crate::decode::FragmentPart;
use crate::decode::defrag::{FragmentEnd, conflicts, fragment_end, insert_range, is_complete};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A datagram's identity, as the reassembler keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Ident {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub id: u32,
}

/// Where a held packet's bytes are.
#[derive(Debug)]
pub(super) enum HeldBytes {
    /// In a shared capture file: `(file, offset, length)`.
    File(Arc<CaptureFile>, usize, usize),
    /// Copied (a live packet).
    Own(Vec<u8>),
}

impl HeldBytes {
    fn copied(&self) -> usize {
        match self {
            HeldBytes::File(..) => 0,
            HeldBytes::Own(v) => v.len(),
        }
    }
}

/// A fragment waiting for its datagram's first fragment.
#[derive(Debug)]
pub(super) struct Held {
    pub ts: Timestamp,
    pub link_type: LinkType,
    pub orig_len: u32,
    pub bytes: HeldBytes,
}

/// Settings of the table.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub max_datagrams: usize,
    pub max_held: usize,
    pub max_held_bytes: usize,
    pub max_ranges: usize,
    pub timeout_ns: u64,
}

/// Counters, added to `DispatchStats`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
    pub fragments: u64,
    pub held: u64,
    pub by_address: u64,
    pub evicted: u64,
}

struct Entry {
    /// The lane its first fragment chose; `None` until it came.
    lane: Option<usize>,
    /// The lane of the datagram's address pair (where it goes when the first fragment
    /// does not come).
    addr_lane: usize,
    first_seen: Timestamp,
    /// Creation order: the oldest of equal `first_seen` is evicted first.
    order: u64,
    end: Option<u32>,
    ranges: Vec<(u32, u32)>,
    held: Vec<Held>,
    /// The datagram goes by address pair: its first fragment held no ports, or the held
    /// fragments outgrew their caps.
    fallback: bool,
}

/// Packets the caller must hand to their lanes, in order, before anything else.
pub(super) type Release = Vec<(usize, Held)>;

/// The dispatcher's fragment table (module docs).
pub(super) struct FragmentLanes {
    limits: Limits,
    entries: HashMap<Ident, Entry, foldhash::fast::RandomState>,
    held: usize,
    held_bytes: usize,
    next_order: u64,
    counts: Counts,
}

impl FragmentLanes {
    pub fn new(limits: Limits) -> FragmentLanes {
        FragmentLanes {
            limits,
            entries: HashMap::default(),
            held: 0,
            held_bytes: 0,
            next_order: 0,
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Datagrams tracked now.
    pub fn datagrams(&self) -> usize {
        self.entries.len()
    }

    /// Route one fragment of `ident`: `port_lane` is the lane of its 5-tuple when it is a
    /// first fragment holding the ports, `addr_lane` the lane of its address pair. Fills
    /// `release` with the held packets to send first and returns this fragment's lane, or
    /// `None` when it was held (`hold` gives its bytes, called only then).
    pub fn route(
        &mut self,
        ident: Ident,
        part: &FragmentPart,
        ts: Timestamp,
        lanes: (Option<usize>, usize),
        hold: impl FnOnce() -> Held,
        release: &mut Release,
    ) -> Option<usize> {
        let (port_lane, addr_lane) = lanes;
        self.counts.fragments = self.counts.fragments.saturating_add(1);
        let end = match fragment_end(part.offset, part.len, part.more) {
            FragmentEnd::End(end) => end,
            // The reassembler refuses it before reading any state: it changes nothing.
            FragmentEnd::TooLong | FragmentEnd::Misaligned => {
                return Some(
                    self.entries
                        .get(&ident)
                        .and_then(|e| e.lane)
                        .unwrap_or(addr_lane),
                );
            }
        };
        if !self.entries.contains_key(&ident) {
            self.make_room(release);
            let order = self.next_order;
            self.next_order = self.next_order.wrapping_add(1);
            self.entries.insert(
                ident,
                Entry {
                    lane: None,
                    addr_lane,
                    first_seen: ts,
                    order,
                    end: None,
                    ranges: Vec::new(),
                    held: Vec::new(),
                    fallback: false,
                },
            );
        }
        let Some(e) = self.entries.get_mut(&ident) else {
            return Some(addr_lane);
        };
        if conflicts(e.end, &e.ranges, end, part.more) || e.ranges.len() >= self.limits.max_ranges {
            // The reassembler drops the datagram: so does the table. Its held fragments
            // and this one go where the datagram was headed, to meet the same end there.
            let (lane, fallback) = match e.lane {
                Some(l) => (l, e.fallback),
                None => (e.addr_lane, true),
            };
            self.remove(&ident, release);
            if fallback {
                self.counts.by_address = self.counts.by_address.saturating_add(1);
            }
            return Some(lane);
        }
        if !part.more {
            e.end = Some(end);
        }
        insert_range(&mut e.ranges, u32::from(part.offset), end);
        let mut released = 0;
        if part.offset == 0 && e.lane.is_none() {
            let lane = match port_lane {
                Some(l) => l,
                None => {
                    e.fallback = true;
                    e.addr_lane
                }
            };
            e.lane = Some(lane);
            released = e.held.len();
            release.extend(e.held.drain(..).map(|h| (lane, h)));
        }
        let complete = is_complete(e.end, &e.ranges, part.len);
        let (lane, fallback) = (e.lane, e.fallback);
        if complete {
            self.entries.remove(&ident);
        }
        self.unhold(released, release);
        if fallback {
            let n = if lane.is_some() {
                released + 1
            } else {
                released
            };
            self.counts.by_address = self.counts.by_address.saturating_add(n as u64);
        }
        if let Some(lane) = lane {
            return Some(lane);
        }
        // Before its first fragment: hold it, within the caps.
        let h = hold();
        let bytes = h.bytes.copied();
        let fits = self.held < self.limits.max_held
            && self.held_bytes.saturating_add(bytes) <= self.limits.max_held_bytes;
        let Some(e) = self.entries.get_mut(&ident) else {
            return Some(addr_lane);
        };
        if fits {
            e.held.push(h);
            self.held = self.held.saturating_add(1);
            self.held_bytes = self.held_bytes.saturating_add(bytes);
            self.counts.held = self.counts.held.saturating_add(1);
            return None;
        }
        // Out of room: this datagram goes by address pair from now on, all of it; the
        // held fragments first.
        let lane = e.addr_lane;
        e.lane = Some(lane);
        e.fallback = true;
        let n = e.held.len();
        release.extend(e.held.drain(..).map(|h| (lane, h)));
        self.unhold(n, release);
        self.counts.by_address = self
            .counts
            .by_address
            .saturating_add(n as u64)
            .saturating_add(1);
        Some(lane)
    }

    /// Account for the last `n` packets moved into `release`.
    fn unhold(&mut self, n: usize, release: &Release) {
        let start = release.len().saturating_sub(n);
        let bytes: usize = release
            .get(start..)
            .unwrap_or_default()
            .iter()
            .map(|(_, h)| h.bytes.copied())
            .sum();
        self.held = self.held.saturating_sub(n);
        self.held_bytes = self.held_bytes.saturating_sub(bytes);
    }

    /// Forget a datagram; its held fragments go to its address pair's lane.
    fn remove(&mut self, ident: &Ident, release: &mut Release) {
        if let Some(e) = self.entries.remove(ident) {
            let n = e.held.len();
            self.counts.by_address = self.counts.by_address.saturating_add(n as u64);
            release.extend(e.held.into_iter().map(|h| (e.addr_lane, h)));
            self.unhold(n, release);
        }
    }

    /// At the cap, evict the oldest datagram (counted).
    fn make_room(&mut self, release: &mut Release) {
        while self.entries.len() >= self.limits.max_datagrams.max(1) {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.first_seen, e.order))
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.counts.evicted = self.counts.evicted.saturating_add(1);
            self.remove(&oldest, release);
        }
    }

    /// Forget the datagrams the reassemblers forget at `now` (older than the timeout);
    /// their held fragments go to their address pair's lanes, to be expired there by the
    /// same tick.
    pub fn expire(&mut self, now: Timestamp, release: &mut Release) {
        let timeout = self.limits.timeout_ns;
        let mut old: Vec<(Timestamp, u64, Ident)> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.first_seen) > timeout)
            .map(|(k, e)| (e.first_seen, e.order, *k))
            .collect();
        old.sort_unstable_by_key(|&(t, o, _)| (t, o));
        for (_, _, k) in old {
            self.remove(&k, release);
        }
    }

    /// Forget every datagram (the end of input); held fragments go to their address
    /// pair's lanes, oldest datagram first.
    pub fn drain(&mut self, release: &mut Release) {
        let mut all: Vec<(Timestamp, u64, Ident)> = self
            .entries
            .iter()
            .map(|(k, e)| (e.first_seen, e.order, *k))
            .collect();
        all.sort_unstable_by_key(|&(t, o, _)| (t, o));
        for (_, _, k) in all {
            self.remove(&k, release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_datagrams: 4,
            max_held: 8,
            max_held_bytes: 100,
            max_ranges: 64,
            timeout_ns: 30_000_000_000,
        }
    }

    fn ident(id: u32) -> Ident {
        Ident {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            proto: 17,
            id,
        }
    }

    fn part(offset: u16, more: bool, len: u32) -> FragmentPart {
        FragmentPart {
            id: 0,
            offset,
            more,
            len,
            ports: (offset == 0).then_some((1000, 53)),
        }
    }

    fn held(n: usize) -> Held {
        Held {
            ts: Timestamp(0),
            link_type: LinkType::RAW,
            orig_len: n as u32,
            bytes: HeldBytes::Own(vec![0; n]),
        }
    }

    const PORT_LANE: usize = 1;
    const ADDR_LANE: usize = 0;

    fn route(t: &mut FragmentLanes, id: u32, p: FragmentPart, ts: u64) -> (Option<usize>, Release) {
        let mut r = Vec::new();
        let lanes = (p.ports.map(|_| PORT_LANE), ADDR_LANE);
        let lane = t.route(ident(id), &p, Timestamp(ts), lanes, || held(10), &mut r);
        (lane, r)
    }

    #[test]
    fn later_fragments_follow_the_first_and_the_datagram_leaves_when_complete() {
        let mut t = FragmentLanes::new(limits());
        assert_eq!(route(&mut t, 7, part(0, true, 16), 0).0, Some(PORT_LANE));
        assert_eq!(route(&mut t, 7, part(16, false, 5), 1).0, Some(PORT_LANE));
        assert_eq!(
            t.datagrams(),
            0,
            "complete: forgotten, as by the reassembler"
        );
    }

    #[test]
    fn fragments_before_the_first_are_held_then_released_ahead_of_it() {
        let mut t = FragmentLanes::new(limits());
        let (lane, r) = route(&mut t, 7, part(16, false, 5), 0);
        assert_eq!((lane, r.len()), (None, 0));
        let (lane, r) = route(&mut t, 7, part(0, true, 16), 1);
        assert_eq!(lane, Some(PORT_LANE));
        assert_eq!(r.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [PORT_LANE]);
        assert_eq!((t.datagrams(), t.held, t.held_bytes), (0, 0, 0));
        assert_eq!(t.counts().held, 1);
    }

    #[test]
    fn a_datagram_whose_first_fragment_never_comes_is_released_by_address_at_its_timeout() {
        let mut t = FragmentLanes::new(limits());
        route(&mut t, 7, part(16, true, 8), 0);
        let mut r = Vec::new();
        t.expire(Timestamp(30_000_000_000), &mut r);
        assert!(r.is_empty(), "not older than the timeout yet");
        t.expire(Timestamp(30_000_000_001), &mut r);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, ADDR_LANE);
        assert_eq!((t.datagrams(), t.counts().by_address), (0, 1));
    }

    #[test]
    fn the_table_and_the_held_fragments_stay_within_their_caps() {
        let mut t = FragmentLanes::new(limits());
        let mut released = 0;
        for id in 0..20 {
            for k in 1..4u16 {
                let (lane, r) = route(&mut t, id, part(k * 8, true, 8), u64::from(id));
                released += r.len() + usize::from(lane.is_some());
            }
            assert!(t.datagrams() <= 4);
            assert!(t.held <= 8 && t.held_bytes <= 100);
        }
        let mut r = Vec::new();
        t.drain(&mut r);
        released += r.len();
        assert_eq!(released, 60, "every fragment is handed on exactly once");
        assert!(t.counts().evicted > 0);
        assert_eq!((t.held, t.held_bytes), (0, 0));
    }

    proptest::proptest! {
        /// The table holds a datagram exactly while a reassembler fed the same fragments
        /// does (completion, contradictions, misaligned and oversized fragments, the range
        /// cap), whatever the order, overlaps and reused identifications.
        #[test]
        fn the_table_tracks_the_datagrams_the_reassembler_tracks(
            frags in proptest::collection::vec(
                (0u32..3, 0u16..10, proptest::bool::ANY, 0usize..40),
                1..60,
            ),
        ) {
            use crate::decode::FragmentView;
            use crate::decode::defrag::{DefragConfig, Defragmenter};
            let cfg = DefragConfig { max_ranges: 4, ..DefragConfig::default() };
            let mut d = Defragmenter::new(cfg.clone());
            let mut t = FragmentLanes::new(Limits {
                max_datagrams: cfg.max_datagrams,
                max_held: 1 << 10,
                max_held_bytes: 1 << 20,
                max_ranges: cfg.max_ranges,
                timeout_ns: 30_000_000_000,
            });
            let payload = [0u8; 40];
            for (i, (id, units, more, len)) in frags.into_iter().enumerate() {
                let ts = Timestamp(i as u64);
                let view = FragmentView {
                    src: ident(id).src,
                    dst: ident(id).dst,
                    proto: 17,
                    id,
                    offset: units * 8,
                    more,
                    payload: &payload[..len],
                    tunnel_depth: 0,
                };
                let _ = d.push(ts, &view);
                let p = FragmentPart {
                    id,
                    offset: units * 8,
                    more,
                    len: len as u32,
                    ports: None,
                };
                let mut r = Vec::new();
                t.route(ident(id), &p, ts, (None, ADDR_LANE), || held(len), &mut r);
                proptest::prop_assert_eq!(t.datagrams(), d.in_progress(), "after fragment {}", i);
            }
        }
    }

    #[test]
    fn a_contradicting_fragment_drops_the_datagram_as_the_reassembler_does() {
        let mut t = FragmentLanes::new(limits());
        route(&mut t, 8, part(0, true, 16), 0);
        route(&mut t, 8, part(32, false, 8), 1);
        assert_eq!(t.datagrams(), 1);
        // A second, different end.
        assert_eq!(route(&mut t, 8, part(24, false, 8), 2).0, Some(PORT_LANE));
        assert_eq!(t.datagrams(), 0, "dropped on the contradiction");
        // A reused identification starts afresh: its later fragment waits for its first.
        assert_eq!(route(&mut t, 8, part(16, false, 8), 3).0, None);
    }
}
