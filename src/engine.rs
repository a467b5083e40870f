//! The engine: one instance wires capture → decode → flow → inspect → detect → output.
//!
//! An [`Engine`] is single-threaded and owns everything it needs (flow table, fragment
//! buffers, host state). Feed it packets and host events in time order; take the events it
//! produced with [`Engine::drain_events`]. Time is whatever the packets and events say.

use crate::capture::{LinkType, Packet};
use crate::config::{Config, ConfigError};
use crate::correlation::{Correlation, Finding, VerdictFlags, VerdictPoint};
use crate::decode::defrag::Defragmenter;
use crate::decode::{self, DecodeErrorKind, Decoded};
use crate::detect::an0404::{self, An0404Config, DirEvidence, FlowEvidence as An0404Evidence};
use crate::detect::correlate::FlowVerdictInput;
use crate::detect::verdict::FlowVerdict;
use crate::error::Error;
use crate::flow::{Direction, EndReason, FlowMeta, FlowTable, Inspector, Interest, TcpState};
use crate::host::HostEvent;
use crate::host::index::HostIndex;
use crate::inspect::protocol::{AppProto, Transport};
use crate::inspect::tls;
use crate::inspect::{FlowInspection, InspectorSet};
use crate::output::stats::{DecodeErrorCounts, PacketStats, StatsSection};
use crate::output::{
    EntropySection, Event, EventHeader, FlowEvent, FlowSection, ProtocolSection, StatsEvent,
    TcpSection, TlsEvent, proto_name,
};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::collections::VecDeque;

/// Events waiting in the engine before the caller drains them, on top of one per tracked
/// flow (`flow.max_flows`). Beyond that the oldest are dropped and counted, so a caller that
/// never drains cannot exhaust memory; a caller that drains after each packet loses nothing,
/// even when one timeout sweep ends every tracked flow at once.
const MAX_QUEUED_EVENTS: usize = 1 << 16;

/// Flows ended between two hand-overs of their records by [`Engine::finish_with`].
const FINISH_BATCH: usize = 1024;

/// The largest frame length believed on the wire (256 KiB, libpcap's snaplen ceiling).
pub const MAX_WIRE_LEN: u32 = 262_144;

/// Per-flow state: what the inspectors keep, plus what detection already said.
struct FlowState {
    insp: FlowInspection,
    /// A verdict point was passed while the recognisers still wanted the opening exchange.
    deferred: bool,
    /// What the correlation stage remembers of the flow (inline correlation only: a
    /// pipeline worker's stage keeps it instead).
    flags: VerdictFlags,
}

/// What an engine queues for its caller: events, and (in a pipeline worker, whose
/// correlation stage is elsewhere) the findings of its verdict points.
#[allow(
    clippy::large_enum_variant,
    reason = "events are most of the queue and stay inline as before; the rarer variants are boxed"
)]
pub(crate) enum Queued {
    /// An event for the sink.
    Event(Event),
    /// A verdict point for the pipeline's correlation stage.
    Finding(Box<Finding>),
}

/// Payload packets (both directions) that make a flow's opening exchange: the protocol
/// recognisers get them before AN0404 calls random payload unknown.
const OPENING_PAYLOAD_PACKETS: u64 = 4;

/// The stages after the flow table, seen by it as one [`Inspector`].
struct Stages {
    inspect: InspectorSet,
    /// The host state and correlator, used inline unless `forward` is set.
    correlation: Correlation,
    /// Queue findings for a pipeline's correlation stage instead of judging them here.
    forward: bool,
    an0404: An0404Config,
    queue: OutQueue,
    suppressed: BTreeMap<&'static str, u64>,
}

/// The engine's bounded output queue.
struct OutQueue {
    items: VecDeque<Queued>,
    /// Most items queued (see [`MAX_QUEUED_EVENTS`]).
    cap: usize,
    dropped: u64,
}

impl OutQueue {
    fn push(&mut self, q: Queued) {
        if self.items.len() >= self.cap {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(q);
    }
}

impl Stages {
    fn push(&mut self, ev: Event) {
        self.queue.push(Queued::Event(ev));
    }

    fn payload(
        &mut self,
        st: &mut FlowState,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest {
        let (interest, progress) = self.inspect.payload(&mut st.insp, flow, dir, ts, data);
        if progress.tls_done {
            self.report_tls(st, flow, ts);
        }
        let opening_over =
            st.deferred && flow.payload_pkts[0] + flow.payload_pkts[1] >= OPENING_PAYLOAD_PACKETS;
        if progress.verdict_point || opening_over {
            self.detect(st, flow, ts, false);
        }
        interest
    }

    /// Report the TLS session if it was not yet.
    fn report_tls(&mut self, st: &mut FlowState, flow: &FlowMeta, ts: Timestamp) {
        if !self.inspect.take_tls_report(&mut st.insp) {
            return;
        }
        let f = self.inspect.findings(&st.insp);
        if let Some(summary) = f.tls {
            let ev = Event::Tls(TlsEvent {
                header: header(flow, ts, Some(f.app_proto().as_str())),
                tls: Box::new(summary.clone()),
            });
            self.push(ev);
        }
    }

    /// Run the analytics at a verdict point (or at the flow's end).
    fn detect(&mut self, st: &mut FlowState, flow: &FlowMeta, ts: Timestamp, ended: bool) {
        let f = self.inspect.findings(&st.insp);
        let app_proto = f.app_proto();

        // AN0404: wire-only evidence.
        let dir_ev = |d: usize| -> DirEvidence {
            match &f.randomness[d] {
                Some(r) => DirEvidence {
                    sample_len: usize::try_from(r.sample_len).unwrap_or(usize::MAX),
                    bits_per_byte: r.bits_per_byte,
                    expected_random: r.expected_random,
                    random_confidence: an0404::random_confidence(r),
                    printable_ratio: r.printable_ratio,
                    first_bytes_printable: r.first_bytes_printable,
                    bytes: flow.bytes[d],
                    pkts: flow.pkts[d],
                },
                None => DirEvidence {
                    bytes: flow.bytes[d],
                    pkts: flow.pkts[d],
                    ..DirEvidence::default()
                },
            }
        };
        let transport = match flow.proto {
            decode::ip_proto::TCP => Transport::Tcp,
            decode::ip_proto::UDP => Transport::Udp,
            other => Transport::Other(other),
        };
        let recognition = f.recognition.copied();
        let ev = An0404Evidence {
            transport,
            client_port: flow.client_port,
            server_port: flow.server_port,
            server_ip: flow.server_ip,
            app_proto,
            recognition: recognition.as_ref(),
            content: f.content[0].or(f.content[1]),
            dirs: [dir_ev(0), dir_ev(1)],
            start_seen: flow.proto != decode::ip_proto::TCP || flow.initiator_by == "syn",
            // The rate that matters is the payload's: a connection can sit idle before
            // it carries data (a relay waiting for its pipeline), which would make a bulk
            // stream look slow if timed from the SYN.
            duration_ns: ts.saturating_sub(
                f.first_payload
                    .iter()
                    .flatten()
                    .min()
                    .copied()
                    .unwrap_or(flow.start),
            ),
            ended,
        };
        // During the opening exchange, wait while the recognisers still want bytes: a
        // protocol that proves itself over several messages (OpenVPN's echoed session id,
        // a QUIC connection id) must get the chance before its random payload is called
        // unknown. The verdict is then taken on the packet that ends the opening.
        let opening = flow.payload_pkts[0] + flow.payload_pkts[1] < OPENING_PAYLOAD_PACKETS;
        let recognisers_waiting = !ended && opening && !st.insp.protocol_done();
        st.deferred = recognisers_waiting;
        let an0404 = if recognisers_waiting {
            None
        } else {
            an0404::evaluate(&self.an0404, &ev)
        };
        if ended && an0404.as_ref().is_some_and(|a| a.suppressed.is_some()) {
            *self.suppressed.entry("AN0404").or_default() += 1;
        }
        // AN1496 network half: an abnormal TLS session, once its handshake is over.
        let handshake_over = st.insp.tls_handshake_over() || ended;
        let an1496 = f
            .tls
            .filter(|_| handshake_over)
            .and_then(|s| tls::an1496_score(s, self.inspect.tls_config()));
        let input = FlowVerdictInput {
            flow_id: flow.id,
            proto: flow.proto,
            client: (flow.client_ip, flow.client_port),
            server: (flow.server_ip, flow.server_port),
            start: flow.start,
            now: ts,
            bytes: flow.bytes,
            payload_bytes: flow.payload_bytes,
            pkts: flow.pkts,
            app_proto,
            randomness: f.randomness,
            an0404: an0404.as_ref(),
            tls: f.tls,
            an1496_network: an1496.as_ref(),
            ended,
        };
        let first_payload = match f.first_payload {
            [Some(a), Some(b)] => Some(a.min(b)),
            [a, b] => a.or(b),
        };
        let point = VerdictPoint {
            payload_pkts: flow.payload_pkts,
            // The opening exchange is over when the recognisers stopped waiting; a TLS
            // flow's allow also waits for its handshake, which AN1496 judges.
            allow_point: !recognisers_waiting && handshake_over,
            first_payload,
        };
        if self.forward {
            self.queue
                .push(Queued::Finding(Box::new(Finding::new(&input, point))));
        } else {
            let queue = &mut self.queue;
            self.correlation
                .judge(&mut st.flags, &input, &point, &mut |ev| {
                    queue.push(Queued::Event(ev));
                });
        }
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
    type State = FlowState;

    fn flow_start(&mut self, flow: &FlowMeta) -> FlowState {
        FlowState {
            insp: self.inspect.flow_start(flow),
            deferred: false,
            flags: VerdictFlags::default(),
        }
    }

    fn stream(
        &mut self,
        st: &mut FlowState,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest {
        self.payload(st, flow, dir, ts, data)
    }

    fn datagram(
        &mut self,
        st: &mut FlowState,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest {
        self.payload(st, flow, dir, ts, data)
    }

    fn gap(&mut self, st: &mut FlowState, _flow: &FlowMeta, dir: Direction, len: u64) {
        self.inspect.gap(&mut st.insp, dir, len);
    }

    fn flow_end(&mut self, mut st: FlowState, flow: &FlowMeta, reason: EndReason) {
        self.inspect.finish(&mut st.insp, flow.last);
        self.report_tls(&mut st, flow, flow.last);
        self.detect(&mut st, flow, flow.last, true);
        let f = self.inspect.findings(&st.insp);
        let app_proto = f.app_proto();
        let protocol = f.recognition.map(|r| ProtocolSection {
            name: r.proto.as_str(),
            evidence: r.evidence.to_string(),
            encrypted: r.proto.is_encrypted(),
        });
        let [ts_r, tc_r] = f.randomness;
        let state = match flow.tcp_state {
            TcpState::Closed => "closed",
            TcpState::None if flow.pkts[1] == 0 => "new",
            TcpState::SynSent | TcpState::SynRecv => "new",
            _ => "established",
        };
        let ev = FlowEvent {
            header: header(
                flow,
                flow.last,
                (app_proto != AppProto::Unknown).then(|| app_proto.as_str()),
            ),
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
                alerted: st.flags.alerted,
                payload_bytes_toserver: flow.payload_bytes[0],
                payload_bytes_toclient: flow.payload_bytes[1],
                gap_bytes: flow.gap_bytes[0] + flow.gap_bytes[1],
            },
            tcp: (flow.proto == decode::ip_proto::TCP)
                .then(|| TcpSection::new(flow.tcp_flags, flow.tcp_state)),
            entropy: EntropySection {
                toserver: ts_r,
                toclient: tc_r,
            },
            protocol,
        };
        self.push(Event::Flow(ev));
    }
}

/// The detection engine for one thread.
pub struct Engine {
    cfg: Config,
    defrag: Defragmenter,
    flows: FlowTable<FlowState>,
    stages: Stages,
    packets: u64,
    bytes: u64,
    decoded: u64,
    reassembled: u64,
    errors: DecodeErrorCounts,
    first_ts: Option<Timestamp>,
    last_ts: Timestamp,
}

impl Engine {
    /// An engine with this configuration.
    ///
    /// # Errors
    /// When the configuration is invalid or asks for what this machine lacks (e.g. an
    /// entropy kernel the CPU cannot run).
    pub fn new(cfg: Config) -> Result<Engine, Error> {
        cfg.validate()?;
        let inspect = InspectorSet::new(cfg.entropy.clone(), cfg.tls.clone()).map_err(|e| {
            ConfigError::Value {
                key: "entropy.kernel",
                reason: e.to_string(),
            }
        })?;
        let correlation = Correlation::new(&cfg)?;
        Ok(Engine {
            defrag: Defragmenter::new(cfg.defrag.clone()),
            flows: FlowTable::new(cfg.flow.clone()),
            stages: Stages {
                inspect,
                correlation,
                forward: false,
                an0404: cfg.an0404.clone(),
                queue: OutQueue {
                    items: VecDeque::new(),
                    cap: cfg.flow.max_flows.saturating_add(MAX_QUEUED_EVENTS),
                    dropped: 0,
                },
                suppressed: BTreeMap::new(),
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

    /// What the correlation stage learned, in baseline learn mode (save it with
    /// [`Baseline::save`](crate::detect::baseline::Baseline::save)).
    pub fn baseline(&self) -> Option<&crate::detect::baseline::Baseline> {
        self.stages.correlation.correlator().baseline()
    }

    /// Call `handler` with each inline flow verdict, on the thread that feeds the engine,
    /// from inside [`process`](Engine::process) (or `flush`/`finish` for flows that end
    /// there) at the packet that decided it: see [`crate::detect::verdict`] for when a flow
    /// is allowed, alerted or suggested for blocking. Replaces any handler set before.
    ///
    /// The handler runs on the packet path: keep it short (hand the verdict to another
    /// thread if acting on it takes time). Verdicts are not queued: without a handler,
    /// none are made.
    ///
    /// ```
    /// use entrospect::detect::verdict::Verdict;
    /// use entrospect::{Config, Engine};
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let mut engine = Engine::new(Config::default())?;
    /// engine.set_verdict_handler(move |v| {
    ///     if v.verdict == Verdict::BlockSuggested {
    ///         let _ = tx.send((v.client_ip, v.client_port, v.server_ip, v.server_port));
    ///     }
    /// });
    /// # drop(engine);
    /// # assert!(rx.try_recv().is_err());
    /// # Ok::<(), entrospect::Error>(())
    /// ```
    pub fn set_verdict_handler(&mut self, handler: impl FnMut(&FlowVerdict) + Send + 'static) {
        self.stages
            .correlation
            .set_verdict_handler(Some(Box::new(handler)));
    }

    /// Stop making verdicts (drops the handler).
    pub fn clear_verdict_handler(&mut self) {
        self.stages.correlation.set_verdict_handler(None);
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
        self.stages.correlation.ingest(ev);
    }

    /// The process index fed by host events.
    pub fn host_index(&self) -> &HostIndex {
        self.stages.correlation.host()
    }

    /// What the correlation stage counted so far: joins, alerts and allowlist
    /// suppressions per analytic, and the reason of the most recent suppression (a
    /// suppressed finding raises no alert event; this is where its reason is kept).
    pub fn correlation_stats(&self) -> crate::detect::correlate::CorrelationStats {
        self.stages.correlation.correlator().stats()
    }

    /// Expire flows and fragments idle at `now` (call periodically on live traffic when
    /// packets are sparse; replay calls it implicitly through packet time).
    pub fn flush(&mut self, now: Timestamp) {
        self.flows.expire(&mut self.stages, now);
        self.defrag.expire(now);
        self.stages.correlation.expire(now);
    }

    /// End every flow (input ended), then emit a `stats` event. The events wait in the
    /// engine for [`Engine::drain_events`], one flow record per open flow: with many open
    /// flows, [`Engine::finish_with`] hands them over as they are made instead.
    pub fn finish(&mut self) {
        let mut items = Vec::new();
        self.finish_queued(|q| items.push(q));
        // Not through `push`: every record of the finish is kept, whatever the queue cap.
        self.stages.queue.items.extend(items);
    }

    /// End every flow (input ended) and emit a `stats` event, handing every event still
    /// queued and every event the ending makes to `sink` in order, a batch of flows at a
    /// time: memory stays bounded however many flows were open.
    pub fn finish_with(&mut self, mut sink: impl FnMut(Event)) {
        self.finish_queued(|q| match q {
            Queued::Event(ev) => sink(ev),
            // Only a pipeline worker's engine queues findings, and it calls `finish`.
            Queued::Finding(_) => {}
        });
    }

    /// [`Engine::finish_with`] for everything queued, findings included.
    fn finish_queued(&mut self, mut sink: impl FnMut(Queued)) {
        self.flows
            .flush_with(&mut self.stages, FINISH_BATCH, |stages| {
                stages.queue.items.drain(..).for_each(&mut sink);
            });
        let stats = self.stats();
        self.stages.queue.items.drain(..).for_each(&mut sink);
        sink(Queued::Event(Event::Stats(StatsEvent {
            timestamp: self.last_ts,
            stats,
        })));
    }

    /// Take the events produced so far, oldest first.
    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.stages.queue.items.drain(..).filter_map(|q| match q {
            Queued::Event(ev) => Some(ev),
            // Only a pipeline worker's engine queues findings, and it drains them with
            // `drain_outputs`.
            Queued::Finding(_) => None,
        })
    }

    /// Hand every verdict point to the caller as a [`Queued::Finding`] instead of
    /// correlating it here: a pipeline worker's engine, whose correlation stage is the
    /// pipeline's. Its own host index then stays empty and it raises no alerts.
    pub(crate) fn forward_findings(&mut self) {
        self.stages.forward = true;
    }

    /// Whether any event or finding waits to be drained (most packets produce none: a
    /// caller checks this before paying for a drain).
    pub(crate) fn has_outputs(&self) -> bool {
        !self.stages.queue.items.is_empty()
    }

    /// Take the events and findings produced so far, oldest first.
    pub(crate) fn drain_outputs(&mut self) -> std::collections::vec_deque::Drain<'_, Queued> {
        self.stages.queue.items.drain(..)
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
            host: crate::output::stats::HostStats::from_index(
                self.stages.correlation.host_events(),
                &self.stages.correlation.host().stats(),
            ),
            detect: crate::output::stats::DetectStats {
                alerts: self.stages.correlation.alerts().clone(),
                suppressed: self.stages.suppressed.clone(),
            },
            entropy_kernel: self.stages.inspect.kernel().name(),
            capture_seconds: self
                .first_ts
                .map_or(0.0, |f| self.last_ts.saturating_sub(f) as f64 / 1e9),
        }
    }
}

#[cfg(test)]
mod footprint_tests {
    use std::mem::size_of;

    /// The flow table's slot holds `FlowMeta`, the engine's `FlowState` and a few words; a
    /// DNS-sized flow adds two small heap samples. Together they stay under 1 KiB per flow
    /// (measured on the benchmark capture: see the README). These bounds catch a field that
    /// would quietly add to every tracked flow.
    #[test]
    fn per_flow_state_stays_small() {
        assert!(
            size_of::<super::FlowState>() <= 104,
            "{}",
            size_of::<super::FlowState>()
        );
        assert!(
            size_of::<crate::flow::FlowMeta>() <= 216,
            "{}",
            size_of::<crate::flow::FlowMeta>()
        );
        assert!(
            size_of::<crate::inspect::FlowInspection>() <= 96,
            "{}",
            size_of::<crate::inspect::FlowInspection>()
        );
    }
}
