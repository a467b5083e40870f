//! The engine: one instance wires capture → decode → flow → inspect → detect → output.
//!
//! An [`Engine`] is single-threaded and owns everything it needs (flow table, fragment
//! buffers, host state). Feed it packets and host events in time order; take the events it
//! produced with [`Engine::drain_events`]. Time is whatever the packets and events say.

use crate::capture::{LinkType, Packet};
use crate::config::{Config, ConfigError};
use crate::decode::defrag::Defragmenter;
use crate::decode::{self, DecodeErrorKind, Decoded};
use crate::error::Error;
use crate::flow::{Direction, EndReason, FlowMeta, FlowTable, Inspector, Interest, TcpState};
use crate::host::HostEvent;
use crate::host::crypto_libs::CryptoLibTable;
use crate::host::index::HostIndex;
use crate::inspect::{FlowInspection, InspectorSet};
use crate::output::stats::{DecodeErrorCounts, PacketStats, StatsSection};
use crate::output::{
    EntropySection, Event, EventHeader, FlowEvent, FlowSection, StatsEvent, proto_name,
};
use crate::time::Timestamp;
use std::collections::VecDeque;

/// Events waiting in the engine before the caller drains them. Beyond this the oldest are
/// dropped and counted, so a caller that never drains cannot exhaust memory.
const MAX_QUEUED_EVENTS: usize = 1 << 16;

/// The largest frame length believed on the wire (256 KiB, libpcap's snaplen ceiling).
pub const MAX_WIRE_LEN: u32 = 262_144;

/// The stages after the flow table, seen by it as one [`Inspector`].
struct Stages {
    inspect: InspectorSet,
    queue: VecDeque<Event>,
    dropped_events: u64,
}

impl Stages {
    fn push(&mut self, ev: Event) {
        if self.queue.len() >= MAX_QUEUED_EVENTS {
            self.queue.pop_front();
            self.dropped_events += 1;
        }
        self.queue.push_back(ev);
    }
}

fn header(flow: &FlowMeta, ts: Timestamp, app_proto: Option<&'static str>) -> EventHeader {
    EventHeader {
        timestamp: ts,
        flow_id: flow.id,
        src_ip: flow.client_ip,
        src_port: flow.client_port,
        dest_ip: flow.server_ip,
        dest_port: flow.server_port,
        proto: proto_name(flow.proto),
        app_proto,
    }
}

impl Inspector for Stages {
    type State = FlowInspection;

    fn flow_start(&mut self, flow: &FlowMeta) -> FlowInspection {
        self.inspect.flow_start(flow)
    }

    fn stream(
        &mut self,
        st: &mut FlowInspection,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest {
        self.inspect.payload(st, flow, dir, ts, data)
    }

    fn datagram(
        &mut self,
        st: &mut FlowInspection,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest {
        self.inspect.payload(st, flow, dir, ts, data)
    }

    fn gap(&mut self, st: &mut FlowInspection, _flow: &FlowMeta, dir: Direction, len: u64) {
        self.inspect.gap(st, dir, len);
    }

    fn flow_end(&mut self, st: FlowInspection, flow: &FlowMeta, reason: EndReason) {
        let f = self.inspect.findings(&st);
        let [ts_r, tc_r] = f.randomness;
        let state = match flow.tcp_state {
            TcpState::Closed => "closed",
            TcpState::None if flow.pkts[1] == 0 => "new",
            TcpState::SynSent | TcpState::SynRecv => "new",
            _ => "established",
        };
        let ev = FlowEvent {
            header: header(flow, flow.last, None),
            flow: FlowSection {
                pkts_toserver: flow.pkts[0],
                pkts_toclient: flow.pkts[1],
                bytes_toserver: flow.bytes[0],
                bytes_toclient: flow.bytes[1],
                start: flow.start,
                end: flow.last,
                age: flow.last.saturating_sub(flow.start) / 1_000_000_000,
                state,
                reason: reason.as_str(),
                alerted: false,
                payload_bytes_toserver: flow.payload_bytes[0],
                payload_bytes_toclient: flow.payload_bytes[1],
                gap_bytes: flow.gap_bytes[0] + flow.gap_bytes[1],
            },
            tcp: (flow.proto == decode::ip_proto::TCP)
                .then(|| crate::output::TcpSection::new(flow.tcp_flags, flow.tcp_state)),
            entropy: EntropySection {
                toserver: ts_r,
                toclient: tc_r,
            },
            protocol: None,
        };
        self.push(Event::Flow(ev));
    }
}

/// The detection engine for one thread.
pub struct Engine {
    cfg: Config,
    defrag: Defragmenter,
    flows: FlowTable<FlowInspection>,
    stages: Stages,
    packets: u64,
    bytes: u64,
    decoded: u64,
    reassembled: u64,
    errors: DecodeErrorCounts,
    first_ts: Option<Timestamp>,
    last_ts: Timestamp,
    host: HostIndex,
    host_events: u64,
}

impl Engine {
    /// An engine with this configuration.
    ///
    /// # Errors
    /// When the configuration is invalid or asks for what this machine lacks (e.g. an
    /// entropy kernel the CPU cannot run).
    pub fn new(cfg: Config) -> Result<Engine, Error> {
        cfg.validate()?;
        let inspect = InspectorSet::new(cfg.entropy.clone()).map_err(|e| ConfigError::Value {
            key: "entropy.kernel",
            reason: e.to_string(),
        })?;
        Ok(Engine {
            host: HostIndex::with_crypto_table(
                cfg.host_index.clone(),
                CryptoLibTable::new(&cfg.crypto_libs),
            ),
            host_events: 0,
            defrag: Defragmenter::new(cfg.defrag.clone()),
            flows: FlowTable::new(cfg.flow.clone()),
            stages: Stages {
                inspect,
                queue: VecDeque::new(),
                dropped_events: 0,
            },
            cfg,
            packets: 0,
            bytes: 0,
            decoded: 0,
            reassembled: 0,
            errors: DecodeErrorCounts::default(),
            first_ts: None,
            last_ts: Timestamp::ZERO,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Process one captured packet (its `orig_len` is what byte counters count).
    ///
    /// An `orig_len` below the captured length or above [`MAX_WIRE_LEN`] is impossible
    /// (fuzzed or corrupt record headers); the captured length is counted instead.
    pub fn process(&mut self, pkt: &Packet<'_>) {
        let caplen = pkt.data.len() as u32;
        let wire = if pkt.orig_len < caplen || pkt.orig_len > MAX_WIRE_LEN {
            caplen
        } else {
            pkt.orig_len
        };
        self.process_frame(pkt.ts, pkt.link_type, pkt.data, wire);
    }

    /// Process one frame of `link_type` seen at `ts`; its length on the wire is
    /// `data.len()`. The bytes are only borrowed for the call.
    pub fn process_packet(&mut self, ts: Timestamp, link_type: LinkType, data: &[u8]) {
        self.process_frame(ts, link_type, data, data.len() as u32);
    }

    fn process_frame(&mut self, ts: Timestamp, link_type: LinkType, data: &[u8], wire_len: u32) {
        self.packets += 1;
        self.bytes += u64::from(wire_len);
        self.first_ts.get_or_insert(ts);
        self.last_ts = self.last_ts.max(ts);
        match decode::decode(link_type, data) {
            Ok(Decoded::Packet(view)) => {
                self.decoded += 1;
                self.flows.process(&mut self.stages, ts, &view, wire_len);
            }
            Ok(Decoded::Fragment(frag)) => match self.defrag.push(ts, &frag) {
                Ok(Some(done)) => {
                    self.reassembled += 1;
                    match decode::decode_transport(done.src, done.dst, done.proto, &done.data) {
                        Ok(Decoded::Packet(view)) => {
                            self.decoded += 1;
                            // The reassembled datagram is counted once, with its last
                            // fragment's frame length plus the bytes carried by the others.
                            let len = wire_len
                                .saturating_add(done.data.len() as u32)
                                .saturating_sub(frag.payload.len() as u32);
                            let view = decode::PacketView {
                                tunnel_depth: done.tunnel_depth,
                                ..view
                            };
                            self.flows.process(&mut self.stages, ts, &view, len);
                        }
                        Ok(Decoded::Fragment(_)) => self.errors.add(DecodeErrorKind::BadFragment),
                        Err(e) => self.errors.add(e.kind),
                    }
                    self.defrag.recycle(done.data);
                }
                Ok(None) => self.decoded += 1,
                Err(e) => self.errors.add(e.kind),
            },
            Err(e) => self.errors.add(e.kind),
        }
    }

    /// Ingest one normalized host event (process start, module load, connection, exit).
    ///
    /// Host events and packets should arrive in roughly the same time order (replay merges
    /// them by timestamp); the process index tolerates the reordering and clock skew
    /// described in `host::index`.
    pub fn process_host_event(&mut self, ev: HostEvent) {
        self.host_events += 1;
        self.host.ingest(ev);
    }

    /// The process index fed by host events.
    pub fn host_index(&self) -> &HostIndex {
        &self.host
    }

    /// Expire flows and fragments idle at `now` (call periodically on live traffic when
    /// packets are sparse; replay calls it implicitly through packet time).
    pub fn flush(&mut self, now: Timestamp) {
        self.flows.expire(&mut self.stages, now);
        self.defrag.expire(now);
        self.host.expire(now);
    }

    /// End every flow (input ended), then emit a `stats` event.
    pub fn finish(&mut self) {
        self.flows.flush(&mut self.stages);
        let stats = self.stats();
        self.stages.push(Event::Stats(StatsEvent {
            timestamp: self.last_ts,
            stats,
        }));
    }

    /// Take the events produced so far, oldest first.
    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.stages.queue.drain(..)
    }

    /// Counters so far.
    pub fn stats(&self) -> StatsSection {
        StatsSection {
            capture: PacketStats {
                packets: self.packets,
                bytes: self.bytes,
                decoded: self.decoded,
                decode_errors: self.errors.to_map(),
                reassembled_datagrams: self.reassembled,
            },
            flow: self.flows.stats(),
            defrag: self.defrag.stats(),
            host: crate::output::stats::HostStats::from_index(self.host_events, &self.host.stats()),
            detect: Default::default(),
            entropy_kernel: self.stages.inspect.kernel().name(),
            capture_seconds: self
                .first_ts
                .map_or(0.0, |f| self.last_ts.saturating_sub(f) as f64 / 1e9),
        }
    }
}
