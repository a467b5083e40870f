//! The flow table: bidirectional flows with timeouts, a count cap and eviction.
//!
//! Flows live in a slab (chunks of slots, reused through a free list) indexed by a hash map
//! from [`FlowKey`] to slot; creating a flow allocates nothing once the slab has grown to
//! its working size. The table is driven by packet time only:
//! - **Timeouts** are checked in a sweep whenever packet time has advanced by
//!   [`FlowConfig::sweep_interval_ms`]; each protocol has its own idle timeout, and a TCP
//!   flow closed by FIN/RST ends after a short `tcp_closed_timeout_secs` (so the last ACKs
//!   still count) or when a new SYN reuses its key.
//! - **The cap** (`max_flows`): a new flow at the cap evicts the least recently seen of 8
//!   sampled flows (the approximate LRU of Redis), O(1) whatever the table size.

use super::Direction;
use super::inspector::{EndReason, Inspector, Interest};
use super::key::{FlowKey, mix64};
use super::record::{FlowMeta, TcpState};
use super::slab::Slab;
use super::tcp::reassembly::{Chunk, Stream, StreamLimits};
use crate::decode::{PacketView, TcpFlags, TransportView, ip_proto};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

/// Flow-table and reassembly settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Flows tracked at once; at the cap the least recently seen (sampled) is evicted.
    /// Default 262 144.
    pub max_flows: usize,
    /// Idle timeout of an established TCP flow, seconds (default 600).
    pub tcp_timeout_secs: u64,
    /// Idle timeout of a TCP flow that never completed its handshake, seconds (default 60).
    pub tcp_new_timeout_secs: u64,
    /// Linger after FIN in both directions or RST, seconds (default 10).
    pub tcp_closed_timeout_secs: u64,
    /// Idle timeout of a UDP flow, seconds (default 120).
    pub udp_timeout_secs: u64,
    /// Idle timeout of other IP protocols (ICMP, ESP ...), seconds (default 60).
    pub other_timeout_secs: u64,
    /// Reassembled payload bytes handed to inspectors per direction (default 65 536).
    /// Counters go on beyond it.
    pub inspection_depth: u64,
    /// Out-of-order bytes buffered per TCP direction (default 65 536).
    pub max_ooo_bytes: usize,
    /// Out-of-order segments buffered per TCP direction (default 64).
    pub max_ooo_segments: usize,
    /// Packet-time interval between timeout sweeps, milliseconds (default 1000).
    pub sweep_interval_ms: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 262_144,
            tcp_timeout_secs: 600,
            tcp_new_timeout_secs: 60,
            tcp_closed_timeout_secs: 10,
            udp_timeout_secs: 120,
            other_timeout_secs: 60,
            inspection_depth: 65_536,
            max_ooo_bytes: 65_536,
            max_ooo_segments: 64,
            sweep_interval_ms: 1000,
        }
    }
}

/// Flow-table counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows ended for any reason.
    pub ended: u64,
    /// Flows ended by idle timeout.
    pub timed_out: u64,
    /// Flows evicted at the cap.
    pub evicted: u64,
    /// Closed TCP flows ended because a SYN reused their key.
    pub reused: u64,
    /// Flows active now.
    pub active: u64,
    /// Most flows active at once.
    pub peak_active: u64,
    /// TCP payload bytes reported as capture gaps.
    pub gap_bytes: u64,
    /// TCP payload bytes ignored as retransmitted/overlapping.
    pub overlap_bytes: u64,
    /// TCP segments buffered out of order.
    pub ooo_segments: u64,
}

struct Slot<S> {
    meta: FlowMeta,
    /// TCP reassembly of both directions; `None` for other protocols (and in TCP until its
    /// first packet is accounted), which need none.
    streams: Option<Box<[Stream; 2]>>,
    want: [bool; 2],
    closed_at: Option<Timestamp>,
    fin: [bool; 2],
    state: S,
}

/// The flow table, generic over the inspectors' per-flow state.
pub struct FlowTable<S> {
    cfg: FlowConfig,
    limits: StreamLimits,
    /// Slot index of each active flow, found by the hash of its key (the key itself is
    /// read from the slot: 4 bytes a flow here instead of 48).
    map: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    slots: Slab<Slot<S>>,
    free: Vec<u32>,
    last_sweep: Option<Timestamp>,
    rng: u64,
    stats: FlowStats,
}

impl<S> FlowTable<S> {
    /// An empty table.
    pub fn new(cfg: FlowConfig) -> Self {
        let limits = StreamLimits {
            depth: cfg.inspection_depth,
            max_ooo_bytes: cfg.max_ooo_bytes,
            max_ooo_segments: cfg.max_ooo_segments,
        };
        FlowTable {
            cfg,
            limits,
            map: hashbrown::HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Slab::new(),
            free: Vec::new(),
            last_sweep: None,
            rng: 0x9e37_79b9_7f4a_7c15,
            stats: FlowStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Flows active now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no flow is active.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Metadata of the active flow with this key.
    pub fn get(&self, key: &FlowKey) -> Option<&FlowMeta> {
        let idx = self.find(key)?;
        self.slots.get(idx)?.as_ref().map(|s| &s.meta)
    }

    /// Account one decoded packet (`wire_len`: the frame's length on the wire) and run
    /// the inspectors on its payload.
    pub fn process<I: Inspector<State = S>>(
        &mut self,
        insp: &mut I,
        ts: Timestamp,
        pkt: &PacketView<'_>,
        wire_len: u32,
    ) {
        self.maybe_sweep(insp, ts);
        let (sport, dport, tcp) = match pkt.transport {
            TransportView::Tcp(t) => (t.src_port, t.dst_port, Some(t)),
            TransportView::Udp(u) => (u.src_port, u.dst_port, None),
            TransportView::Other { .. } => (0, 0, None),
        };
        let proto = pkt.ip_proto();
        let (key, _) = FlowKey::new(pkt.src, sport, pkt.dst, dport, proto);
        let flags = tcp.map_or(TcpFlags(0), |t| t.flags);
        let is_syn = flags.has(TcpFlags::SYN) && !flags.has(TcpFlags::ACK);

        let mut idx = self.find(&key);
        if let (Some(i), true) = (idx, is_syn) {
            // A new SYN on a closed connection's key starts a new flow.
            let reuse = self
                .slot(i)
                .is_some_and(|s| s.closed_at.is_some() || s.meta.tcp_state == TcpState::Closed);
            if reuse {
                self.stats.reused += 1;
                self.end(insp, i, EndReason::Reused);
                idx = None;
            }
        }
        let idx = match idx {
            Some(i) => i,
            None => self.create(insp, key, ts, pkt, sport, dport, flags),
        };
        let limits = self.limits;
        let Some(slot) = self.slots.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let dir = if (pkt.src, sport) == (slot.meta.client_ip, slot.meta.client_port) {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let d = dir.index();
        let m = &mut slot.meta;
        m.last = m.last.max(ts);
        m.pkts[d] += 1;
        m.bytes[d] += u64::from(wire_len);

        match pkt.transport {
            TransportView::Tcp(t) => {
                m.tcp_flags[d] |= flags.0;
                m.payload_bytes[d] += t.payload.len() as u64;
                if !t.payload.is_empty() {
                    m.payload_pkts[d] += 1;
                }
                update_tcp_state(slot, dir, flags, ts, !t.payload.is_empty());
                let streams = slot
                    .streams
                    .get_or_insert_with(|| Box::new([Stream::default(), Stream::default()]));
                if flags.has(TcpFlags::SYN) {
                    streams[d].syn(t.seq);
                }
                // This packet's ACK may reveal a hole in the other direction.
                if flags.has(TcpFlags::ACK) {
                    let o = dir.reverse();
                    let oi = o.index();
                    if slot.want[oi] {
                        let Slot {
                            meta,
                            streams,
                            state,
                            want,
                            ..
                        } = slot;
                        let Some(streams) = streams.as_deref_mut() else {
                            return;
                        };
                        let oc = streams[oi]
                            .ack(t.ack, &limits, &mut |c| feed(insp, state, meta, o, ts, c));
                        meta.gap_bytes[oi] += oc.gap;
                        meta.inspected_bytes[oi] += oc.delivered;
                        self.stats.gap_bytes += oc.gap;
                        want[oi] = !streams[oi].is_done();
                    }
                }
                if slot.want[d] && (!t.payload.is_empty() || flags.has(TcpFlags::FIN)) {
                    let Slot {
                        meta,
                        streams,
                        state,
                        want,
                        ..
                    } = slot;
                    let Some(streams) = streams.as_deref_mut() else {
                        return;
                    };
                    let fin = flags.has(TcpFlags::FIN);
                    let oc = streams[d].segment(t.seq, t.payload, fin, &limits, &mut |c| {
                        feed(insp, state, meta, dir, ts, c)
                    });
                    meta.overlap_bytes[d] += oc.overlap;
                    meta.gap_bytes[d] += oc.gap;
                    meta.inspected_bytes[d] += oc.delivered;
                    if oc.buffered {
                        meta.ooo_segments[d] += 1;
                        self.stats.ooo_segments += 1;
                    }
                    self.stats.overlap_bytes += oc.overlap;
                    self.stats.gap_bytes += oc.gap;
                    want[d] = !streams[d].is_done();
                } else if flags.has(TcpFlags::FIN)
                    && let Some(streams) = slot.streams.as_deref_mut()
                {
                    streams[d].segment(t.seq, &[], true, &limits, &mut |_| Interest::Done);
                }
            }
            TransportView::Udp(u) => {
                Self::datagram(insp, slot, dir, ts, u.payload, limits.depth);
            }
            TransportView::Other { payload, .. } => {
                Self::datagram(insp, slot, dir, ts, payload, limits.depth);
            }
        }
        insp.packet(&mut slot.state, &slot.meta, dir, ts);
    }

    fn datagram<I: Inspector<State = S>>(
        insp: &mut I,
        slot: &mut Slot<S>,
        dir: Direction,
        ts: Timestamp,
        payload: &[u8],
        depth: u64,
    ) {
        let d = dir.index();
        let m = &mut slot.meta;
        m.payload_bytes[d] += payload.len() as u64;
        if payload.is_empty() {
            return;
        }
        m.payload_pkts[d] += 1;
        if slot.want[d] {
            let room = depth.saturating_sub(m.inspected_bytes[d]);
            let take = (payload.len() as u64).min(room) as usize;
            m.inspected_bytes[d] += take as u64;
            let interest = insp.datagram(
                &mut slot.state,
                &slot.meta,
                dir,
                ts,
                payload.get(..take).unwrap_or_default(),
            );
            if interest == Interest::Done || slot.meta.inspected_bytes[d] >= depth {
                slot.want[d] = false;
            }
        }
    }

    /// The slot index of the active flow with this key.
    fn find(&self, key: &FlowKey) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.map
            .find(hash, |&i| {
                slots
                    .get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.meta.key() == *key)
            })
            .copied()
    }

    fn slot(&self, idx: u32) -> Option<&Slot<S>> {
        self.slots.get(idx).and_then(Option::as_ref)
    }

    #[allow(clippy::too_many_arguments)] // the packet's parts, read once by the caller
    fn create<I: Inspector<State = S>>(
        &mut self,
        insp: &mut I,
        key: FlowKey,
        ts: Timestamp,
        pkt: &PacketView<'_>,
        sport: u16,
        dport: u16,
        flags: TcpFlags,
    ) -> u32 {
        if self.map.len() >= self.cfg.max_flows.max(1) {
            self.evict_one(insp);
        }
        // Orientation: the SYN sender is the client; a SYN-ACK's receiver is; else the
        // first sender.
        let proto = pkt.ip_proto();
        let syn = flags.has(TcpFlags::SYN);
        let synack = syn && flags.has(TcpFlags::ACK);
        let (client, server, by) = if synack {
            ((pkt.dst, dport), (pkt.src, sport), "syn")
        } else if syn {
            ((pkt.src, sport), (pkt.dst, dport), "syn")
        } else {
            ((pkt.src, sport), (pkt.dst, dport), "first_packet")
        };
        let id = mix64(key.symmetric_hash() ^ ts.as_nanos()) & ((1 << 52) - 1);
        let meta = FlowMeta {
            id,
            client_ip: client.0,
            client_port: client.1,
            server_ip: server.0,
            server_port: server.1,
            proto,
            initiator_by: by,
            start: ts,
            last: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            payload_bytes: [0; 2],
            inspected_bytes: [0; 2],
            payload_pkts: [0; 2],
            tcp_flags: [0; 2],
            tcp_state: TcpState::None,
            gap_bytes: [0; 2],
            ooo_segments: [0; 2],
            overlap_bytes: [0; 2],
            tunnel_depth: pkt.tunnel_depth,
        };
        let state = insp.flow_start(&meta);
        let slot = Slot {
            meta,
            streams: None,
            want: [self.cfg.inspection_depth > 0; 2],
            closed_at: None,
            fin: [false; 2],
            state,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i) {
                    *s = Some(slot);
                }
                i
            }
            None => self.slots.push(slot),
        };
        let hash = self.hasher.hash_one(key);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.map.insert_unique(hash, idx, |&i| {
            slots
                .get(i)
                .and_then(Option::as_ref)
                .map_or(0, |s| hasher.hash_one(s.meta.key()))
        });
        self.stats.created += 1;
        self.stats.active = self.map.len() as u64;
        self.stats.peak_active = self.stats.peak_active.max(self.stats.active);
        idx
    }

    fn evict_one<I: Inspector<State = S>>(&mut self, insp: &mut I) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        let mut victim: Option<(u32, Timestamp)> = None;
        let mut tries = 0;
        while tries < 64 && (victim.is_none() || tries < 8) {
            tries += 1;
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let i = (self.rng % n as u64) as u32;
            if let Some(s) = self.slot(i)
                && victim.is_none_or(|(_, t)| s.meta.last < t)
            {
                victim = Some((i, s.meta.last));
            }
        }
        // A sparse slab can miss with sampling: fall back to the first occupied slot.
        let victim = victim
            .map(|(i, _)| i)
            .or_else(|| self.map.iter().next().copied());
        if let Some(i) = victim {
            self.stats.evicted += 1;
            self.end(insp, i, EndReason::Evicted);
        }
    }

    fn end<I: Inspector<State = S>>(&mut self, insp: &mut I, idx: u32, reason: EndReason) {
        let Some(mut slot) = self.slots.get_mut(idx).and_then(Option::take) else {
            return;
        };
        let hash = self.hasher.hash_one(slot.meta.key());
        if let Ok(entry) = self.map.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        self.free.push(idx);
        // Whatever is still buffered out of order goes to the inspectors after its gap.
        let limits = self.limits;
        for dir in [Direction::ToServer, Direction::ToClient] {
            let d = dir.index();
            if slot.want[d] {
                let Slot {
                    meta,
                    streams,
                    state,
                    ..
                } = &mut slot;
                let Some(streams) = streams.as_deref_mut() else {
                    continue;
                };
                let ts = meta.last;
                let oc = streams[d].finish(&limits, &mut |c| feed(insp, state, meta, dir, ts, c));
                meta.gap_bytes[d] += oc.gap;
                meta.inspected_bytes[d] += oc.delivered;
            }
        }
        self.stats.ended += 1;
        if reason == EndReason::Timeout {
            self.stats.timed_out += 1;
        }
        self.stats.active = self.map.len() as u64;
        insp.flow_end(slot.state, &slot.meta, reason);
    }

    fn timeout_of(&self, s: &Slot<S>) -> u64 {
        let secs = if let Some(_closed) = s.closed_at {
            self.cfg.tcp_closed_timeout_secs
        } else {
            match s.meta.proto {
                ip_proto::TCP => match s.meta.tcp_state {
                    TcpState::Established | TcpState::Closing => self.cfg.tcp_timeout_secs,
                    _ => self.cfg.tcp_new_timeout_secs,
                },
                ip_proto::UDP => self.cfg.udp_timeout_secs,
                _ => self.cfg.other_timeout_secs,
            }
        };
        secs.saturating_mul(1_000_000_000)
    }

    fn maybe_sweep<I: Inspector<State = S>>(&mut self, insp: &mut I, now: Timestamp) {
        let interval = self.cfg.sweep_interval_ms.saturating_mul(1_000_000);
        match self.last_sweep {
            None => self.last_sweep = Some(now),
            Some(last) if now.saturating_sub(last) >= interval => {
                self.last_sweep = Some(now);
                self.expire(insp, now);
            }
            Some(_) => {}
        }
    }

    /// End every flow idle for longer than its timeout at `now`.
    pub fn expire<I: Inspector<State = S>>(&mut self, insp: &mut I, now: Timestamp) {
        let mut expired = Vec::new();
        for (i, s) in self.slots.iter() {
            if let Some(s) = s {
                let idle_since = s.closed_at.map_or(s.meta.last, |c| c.max(s.meta.last));
                if now.saturating_sub(idle_since) > self.timeout_of(s) {
                    expired.push(i);
                }
            }
        }
        for i in expired {
            self.end(insp, i, EndReason::Timeout);
        }
    }

    /// End every flow (input ended, or the caller flushes).
    pub fn flush<I: Inspector<State = S>>(&mut self, insp: &mut I) {
        self.flush_with(insp, usize::MAX, |_| {});
    }

    /// End every flow like [`FlowTable::flush`], calling `between` after every `batch`
    /// flows and after the last (so the caller can take the records made so far).
    pub fn flush_with<I: Inspector<State = S>>(
        &mut self,
        insp: &mut I,
        batch: usize,
        mut between: impl FnMut(&mut I),
    ) {
        let mut all: Vec<(Timestamp, u32)> = self
            .slots
            .iter()
            .filter_map(|(i, s)| s.as_ref().map(|s| (s.meta.start, i)))
            .collect();
        // Deterministic order: by start time, then slot.
        all.sort_unstable();
        for chunk in all.chunks(batch.max(1)) {
            for &(_, i) in chunk {
                self.end(insp, i, EndReason::Shutdown);
            }
            between(insp);
        }
    }
}

fn feed<I: Inspector>(
    insp: &mut I,
    state: &mut I::State,
    meta: &FlowMeta,
    dir: Direction,
    ts: Timestamp,
    c: Chunk<'_>,
) -> Interest {
    match c {
        Chunk::Data(b) => insp.stream(state, meta, dir, ts, b),
        Chunk::Gap(n) => {
            insp.gap(state, meta, dir, n);
            Interest::More
        }
    }
}

fn update_tcp_state<S>(
    slot: &mut Slot<S>,
    dir: Direction,
    flags: TcpFlags,
    ts: Timestamp,
    has_payload: bool,
) {
    let m = &mut slot.meta;
    // SYN with RST or FIN is impossible on a real stack (fuzzers and scanners send it):
    // it changes no state.
    if flags.has(TcpFlags::SYN) && (flags.0 & (TcpFlags::RST | TcpFlags::FIN)) != 0 {
        return;
    }
    // Payload after a close means the close was not one (a forged or fuzzed RST/FIN, or a
    // close the capture saw out of order): the connection goes on.
    if slot.closed_at.is_some()
        && has_payload
        && !flags.has(TcpFlags::RST)
        && !flags.has(TcpFlags::FIN)
    {
        slot.closed_at = None;
        slot.fin = [false; 2];
        m.tcp_state = TcpState::Established;
        return;
    }
    if flags.has(TcpFlags::RST) {
        m.tcp_state = TcpState::Closed;
        slot.closed_at.get_or_insert(ts);
        return;
    }
    if flags.has(TcpFlags::FIN) {
        slot.fin[dir.index()] = true;
        m.tcp_state = if slot.fin[0] && slot.fin[1] {
            TcpState::Closed
        } else {
            TcpState::Closing
        };
        if m.tcp_state == TcpState::Closed {
            slot.closed_at.get_or_insert(ts);
        }
        return;
    }
    let syn = flags.has(TcpFlags::SYN);
    let ack = flags.has(TcpFlags::ACK);
    m.tcp_state = match (m.tcp_state, syn, ack) {
        (TcpState::None, true, false) => TcpState::SynSent,
        (TcpState::None | TcpState::SynSent, true, true) => TcpState::SynRecv,
        (TcpState::SynRecv, false, true) => TcpState::Established,
        (TcpState::None, false, _) => TcpState::Established,
        (s, _, _) => s,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::decode::{Decoded, decode};
    use etherparse::PacketBuilder;

    /// Counts what the table tells it; the state is the flow's creation number.
    #[derive(Default)]
    struct Count {
        started: u32,
        ended: Vec<(u32, EndReason)>,
        bytes: u64,
    }

    impl Inspector for Count {
        type State = u32;
        fn flow_start(&mut self, _: &FlowMeta) -> u32 {
            self.started += 1;
            self.started
        }
        fn stream(
            &mut self,
            _: &mut u32,
            _: &FlowMeta,
            _: Direction,
            _: Timestamp,
            d: &[u8],
        ) -> Interest {
            self.bytes += d.len() as u64;
            Interest::More
        }
        fn datagram(
            &mut self,
            _: &mut u32,
            _: &FlowMeta,
            _: Direction,
            _: Timestamp,
            d: &[u8],
        ) -> Interest {
            self.bytes += d.len() as u64;
            Interest::More
        }
        fn gap(&mut self, _: &mut u32, _: &FlowMeta, _: Direction, _: u64) {}
        fn flow_end(&mut self, state: u32, _: &FlowMeta, reason: EndReason) {
            self.ended.push((state, reason));
        }
    }

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut v, b"abc")
            .map(|_| v)
            .unwrap_or_default()
    }

    fn feed(t: &mut FlowTable<u32>, c: &mut Count, frame: &[u8], ms: u64) {
        if let Ok(Decoded::Packet(p)) = decode(LinkType::ETHERNET, frame) {
            t.process(
                c,
                Timestamp::from_nanos(ms * 1_000_000),
                &p,
                frame.len() as u32,
            );
        } else {
            panic!("test frame does not decode");
        }
    }

    #[test]
    fn both_directions_of_many_flows_find_their_own_slot() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut c = Count::default();
        for i in 0..3000u16 {
            let a = [10, 0, (i >> 8) as u8, i as u8];
            feed(&mut t, &mut c, &udp(a, 40000 + i, [10, 9, 9, 9], 53), 1);
            feed(&mut t, &mut c, &udp([10, 9, 9, 9], 53, a, 40000 + i), 2);
        }
        assert_eq!(t.len(), 3000);
        assert_eq!(c.started, 3000, "a reply never starts a flow of its own");
        for i in [0u16, 1, 255, 256, 2999] {
            let a = [10, 0, (i >> 8) as u8, i as u8].into();
            let (key, _) = FlowKey::new([10, 9, 9, 9].into(), 53, a, 40000 + i, 17);
            let m = t.get(&key).map(|m| (m.client_port, m.pkts));
            assert_eq!(m, Some((40000 + i, [1, 1])));
        }
        t.flush(&mut c);
        assert!(t.is_empty());
        assert_eq!(c.ended.len(), 3000);
        assert_eq!(c.bytes, 6 * 3000);
    }

    #[test]
    fn at_the_cap_each_new_flow_evicts_one_and_every_flow_ends_once() {
        let cfg = FlowConfig {
            max_flows: 8,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut c = Count::default();
        for i in 0..100u16 {
            feed(
                &mut t,
                &mut c,
                &udp([10, 0, 0, 1], 1000 + i, [10, 0, 0, 2], 53),
                u64::from(i),
            );
            assert!(t.len() <= 8);
        }
        assert_eq!(t.stats().evicted, 92);
        t.flush(&mut c);
        let mut ids: Vec<u32> = c.ended.iter().map(|&(s, _)| s).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 100, "no flow ended twice or never");
        // A flow that was evicted comes back as a new flow.
        feed(
            &mut t,
            &mut c,
            &udp([10, 0, 0, 1], 1000, [10, 0, 0, 2], 53),
            200,
        );
        assert_eq!(c.started, 101);
    }
}
