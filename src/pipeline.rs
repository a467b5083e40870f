//! The multi-core pipeline: packets sharded by flow to worker threads, each with its own
//! [`Engine`].
//!
//! ```text
//!                      ┌─► worker 0: Engine ─┐
//! caller ─► dispatcher ┼─► worker 1: Engine ─┼─► collector thread ─► Sink
//!  (push, replay,      └─► worker N: Engine ─┘     (one output channel)
//!   host events)   ◄── recycled batches ──┘
//! ```
//!
//! Owns the threads and the channels between them; knows nothing of what an engine does.
//!
//! # Routing
//!
//! The dispatcher reads only the headers that name each packet's flow ([`decode::route_key`],
//! which answers exactly as a full [`decode::decode`] would) and sends it to worker `hash % workers`, so both directions of a flow meet in one engine
//! (shared-nothing: no locks on the packet path):
//!
//! - **TCP**: the symmetric hash of the 5-tuple ([`FlowKey::symmetric_hash`]).
//! - **UDP and other IP protocols**: the symmetric hash of the address pair and protocol
//!   (ports zeroed). IP fragments after the first carry no ports, so fragments are routed by
//!   address pair and protocol only; routing whole UDP datagrams the same way makes a
//!   reassembled datagram meet the unfragmented datagrams of its flow. The cost is balance:
//!   all UDP between two hosts lands on one worker (on a capture where one host pair
//!   exchanges thousands of DNS flows, one worker does nearly all the per-flow work).
//!   [`PipelineConfig::udp_routing`] = [`UdpRouting::FiveTuple`] routes whole UDP datagrams
//!   by the 5-tuple, as TCP, and accepts for fragmented UDP the limit TCP has (below).
//! - **Everything else** (non-IP, undecodable): worker 0, where it is still counted.
//!
//! Known limit: a fragmented *TCP* segment is routed by address pair, its flow's other
//! segments by 5-tuple, so they may meet in different engines (fragmented TCP is rare and
//! usually an evasion attempt). A fragmented tunnel packet is routed by its outer
//! addresses.
//!
//! # Batches, buffers and back-pressure
//!
//! Packets travel in batches of up to [`PipelineConfig::batch_packets`] packets through one
//! **bounded** channel per worker ([`PipelineConfig::queue_batches`] batches deep). For file
//! replay ([`Pipeline::replay`]) a batch carries offsets into the shared capture
//! (`Arc<CaptureFile>`), never copies. For live packets ([`Pipeline::push`]) the bytes are
//! copied into the batch's buffer, and workers send emptied batches back through a return
//! channel, so steady-state capture allocates nothing per packet. A full queue either
//! blocks the dispatcher ([`Backpressure::Block`]) or drops the batch, counting its packets
//! under [`DropReason::QueueFull`] ([`Backpressure::Drop`]).
//!
//! # Time
//!
//! Workers' engines do not sweep their flow tables by themselves (their
//! `flow.sweep_interval_ms` is set to "never"): the dispatcher inserts a tick at the same
//! packet times in every worker's stream, every `sweep_interval_ms` of packet time, where a
//! single engine would sweep (its sweep clock advances on whole IP packets, which the
//! dispatcher sees too), and each worker calls [`Engine::flush`] there. Flow timeouts
//! therefore do not depend on how packets were spread, and one worker gives the records of
//! one plain engine. (A single engine also advances its clock on a datagram completed from
//! fragments, which the dispatcher cannot know; there the two may differ.) On live traffic call
//! [`Pipeline::tick`] with the wall clock when packets are sparse: it also sends the
//! partly filled batches.
//!
//! # Host events
//!
//! A host event is broadcast to every worker, in order with the packets, and each worker's
//! engine keeps its own process index: memory for host state is multiplied by the number
//! of workers (the index is bounded by `host_index` caps, so at most `workers ×` that).
//! One correlation stage holding the only host index, fed by the workers' flow findings,
//! is the planned refinement (DESIGN.md).
//!
//! # Inline verdicts
//!
//! [`Pipeline::with_verdict_handler`] gives every worker's engine the same handler: the
//! verdicts of [`crate::detect::verdict`] are delivered on the worker threads, at the packet
//! that decided them, without going through the collector.
//!
//! # Output
//!
//! Workers send their events through one bounded channel to a collector thread that hands
//! them to the [`Sink`] given at construction (an [`EveWriter`](crate::output::EveWriter),
//! a `Vec<Event>`, a closure). Events of different workers interleave in arrival order.
//! The engines' own `stats` events are not forwarded: [`Pipeline::finish`] returns the
//! merged counters instead, and [`Pipeline::stats`] gives them while running.
//!
//! # Contracts
//!
//! No panics on input; every queue is bounded; a worker that panics is reported by
//! [`Pipeline::finish`] as [`PipelineError::WorkerPanicked`]. Dropping a `Pipeline` without
//! `finish` closes the queues; the threads end on their own after draining them.

use crate::capture::{CaptureError, CaptureFile, LinkType, MAX_CAPLEN, Packet, SourceStats};
use crate::config::Config;
use crate::decode::{self, ip_proto};
use crate::detect::verdict::FlowVerdict;
use crate::engine::Engine;
use crate::error::Error;
use crate::flow::FlowKey;
use crate::host::HostEvent;
use crate::output::stats::{PacketStats, StatsSection};
use crate::output::{Event, Sink};
use crate::time::Timestamp;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A verdict handler shared by the workers.
type SharedVerdictHandler = Arc<dyn Fn(&FlowVerdict) + Send + Sync>;

/// The most worker threads a pipeline may have.
pub const MAX_WORKERS: usize = 256;

/// What the dispatcher does when a worker's queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backpressure {
    /// Wait until the worker takes a batch (replay: lose nothing).
    #[default]
    Block,
    /// Drop the batch and count its packets (live: never stall the capture).
    Drop,
}

impl Backpressure {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backpressure::Block => "block",
            Backpressure::Drop => "drop",
        }
    }
}

/// How the dispatcher routes whole UDP datagrams (fragments always go by address pair and
/// protocol, since only the first carries ports). See the module docs, "Routing".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpRouting {
    /// By address pair and protocol, ports zeroed: a datagram reassembled from fragments
    /// meets the unfragmented datagrams of its flow; all UDP between two hosts lands on one
    /// worker.
    #[default]
    AddressPair,
    /// By the symmetric 5-tuple, as TCP: the UDP flows between two hosts spread over the
    /// workers; a fragmented datagram goes where its address pair routes, which may be
    /// another engine than the rest of its flow (the flow then has two records there).
    FiveTuple,
}

impl UdpRouting {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            UdpRouting::AddressPair => "address_pair",
            UdpRouting::FiveTuple => "five_tuple",
        }
    }
}

/// Why the dispatcher dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropReason {
    /// The worker's queue was full under [`Backpressure::Drop`].
    QueueFull,
    /// The packet is longer than a batch buffer can hold ([`PipelineConfig::batch_bytes`]).
    PacketTooLarge,
    /// The worker thread is gone (it panicked).
    WorkerGone,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::PacketTooLarge,
        DropReason::WorkerGone,
    ];

    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::PacketTooLarge => "packet_too_large",
            DropReason::WorkerGone => "worker_gone",
        }
    }

    const fn index(self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::PacketTooLarge => 1,
            DropReason::WorkerGone => 2,
        }
    }
}

/// Settings of a [`Pipeline`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Worker threads, 1..=[`MAX_WORKERS`] (default 2).
    pub workers: usize,
    /// Packets per batch (default 64).
    pub batch_packets: usize,
    /// Bytes of copied packet data per batch for [`Pipeline::push`] (default 256 KiB, at
    /// least [`MAX_CAPLEN`] so that any packet fits).
    pub batch_bytes: usize,
    /// Batches queued per worker (default 16).
    pub queue_batches: usize,
    /// Events queued between the workers and the collector (default 4096).
    pub output_queue: usize,
    /// What to do when a worker's queue is full.
    pub backpressure: Backpressure,
    /// How whole UDP datagrams are routed (default [`UdpRouting::AddressPair`]).
    pub udp_routing: UdpRouting,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 2,
            batch_packets: 64,
            batch_bytes: MAX_CAPLEN as usize,
            queue_batches: 16,
            output_queue: 4096,
            backpressure: Backpressure::Block,
            udp_routing: UdpRouting::AddressPair,
        }
    }
}

/// Errors of the pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A setting is out of range.
    #[error("invalid pipeline setting {key}: {reason}")]
    Setting {
        /// The setting.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A worker's engine could not be built.
    #[error("cannot build the engine of worker {worker}: {source}")]
    Engine {
        /// Worker index.
        worker: usize,
        /// The engine's error.
        source: Error,
    },
    /// A thread could not be started.
    #[error("cannot start pipeline thread {name}: {source}")]
    Spawn {
        /// Thread name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A worker thread panicked; its flows are lost.
    #[error("pipeline worker {worker} panicked")]
    WorkerPanicked {
        /// Worker index.
        worker: usize,
    },
    /// The collector thread (running the sink) panicked.
    #[error("pipeline collector (the event sink) panicked")]
    CollectorPanicked,
}

/// The dispatcher's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchStats {
    /// Packets handed to the pipeline.
    pub packets: u64,
    /// Packets sent to each worker (dropped ones excluded).
    pub routed: Vec<u64>,
    /// Packets sent as offsets into a shared capture (no copy).
    pub zero_copy: u64,
    /// Packets copied into a batch buffer.
    pub copied: u64,
    /// Batches sent.
    pub batches: u64,
    /// Batch buffers allocated (the rest were recycled).
    pub batches_allocated: u64,
    /// Host events broadcast.
    pub host_events: u64,
    /// Host-event copies lost with dropped batches.
    pub host_events_dropped: u64,
    /// Flow-table ticks broadcast.
    pub ticks: u64,
    /// Packets dropped, by reason (zeros left out).
    pub drops: BTreeMap<&'static str, u64>,
}

/// Counters of the whole pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PipelineStats {
    /// The dispatcher.
    pub dispatch: DispatchStats,
    /// Each worker's engine, as of its last tick (or its end, after `finish`).
    pub workers: Vec<StatsSection>,
}

impl PipelineStats {
    /// The workers' packet counters summed.
    pub fn capture(&self) -> PacketStats {
        let mut sum = PacketStats::default();
        for w in &self.workers {
            let c = &w.capture;
            sum.packets = sum.packets.saturating_add(c.packets);
            sum.bytes = sum.bytes.saturating_add(c.bytes);
            sum.decoded = sum.decoded.saturating_add(c.decoded);
            sum.reassembled_datagrams = sum
                .reassembled_datagrams
                .saturating_add(c.reassembled_datagrams);
            for (k, n) in &c.decode_errors {
                let e = sum.decode_errors.entry(k).or_default();
                *e = e.saturating_add(*n);
            }
        }
        sum
    }

    /// The workers' `stats` sections merged into one JSON object, as one engine would
    /// report it: integer counters are summed (gauges such as `flow.active` too, which is
    /// right for shared-nothing workers; peaks such as `flow.peak_active` become an upper
    /// bound), `capture_seconds` and other floats take the largest, strings the first.
    pub fn merged_json(&self) -> serde_json::Value {
        let mut acc = serde_json::Value::Null;
        for w in &self.workers {
            if let Ok(v) = serde_json::to_value(w) {
                merge_json(&mut acc, v);
            }
        }
        acc
    }
}

fn merge_json(acc: &mut serde_json::Value, v: serde_json::Value) {
    use serde_json::Value;
    match (acc, v) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, bv) in b {
                match a.get_mut(&k) {
                    Some(av) => merge_json(av, bv),
                    None => {
                        a.insert(k, bv);
                    }
                }
            }
        }
        (a @ Value::Number(_), Value::Number(b)) => {
            let sum = match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => Some(Value::from(x.saturating_add(y))),
                _ => None,
            };
            *a = match sum {
                Some(s) => s,
                None => {
                    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                    Value::from(x.max(y))
                }
            };
        }
        (a @ Value::Null, b) => *a = b,
        _ => {}
    }
}

/// The routing hash of a packet, by the rules of the module docs: `None` for a packet that
/// is not IP or does not decode (the pipeline sends those to worker 0).
pub fn flow_hash(link_type: LinkType, data: &[u8]) -> Option<u64> {
    route(link_type, data, UdpRouting::AddressPair).0
}

/// The routing hash, and whether the packet is a whole IP packet (which advances a flow
/// table's sweep clock; fragments and undecodable frames do not). The key comes from
/// [`decode::route_key`], which reads only the headers routing needs and gives exactly what
/// a full [`decode::decode`] would.
fn route(link_type: LinkType, data: &[u8], udp: UdpRouting) -> (Option<u64>, bool) {
    match decode::route_key(link_type, data) {
        Some(k) => {
            let ports = !k.fragment
                && (k.proto == ip_proto::TCP
                    || (k.proto == ip_proto::UDP && udp == UdpRouting::FiveTuple));
            let (sp, dp) = if ports {
                (k.src_port, k.dst_port)
            } else {
                (0, 0)
            };
            let h = FlowKey::new(k.src, sp, k.dst, dp, k.proto)
                .0
                .symmetric_hash();
            (Some(h), !k.fragment)
        }
        None => (None, false),
    }
}

/// Where a packet's bytes are.
#[derive(Clone, Copy, Debug)]
enum Bytes {
    /// In the batch's shared capture file.
    File { off: usize, len: usize },
    /// In the batch's own buffer.
    Own { off: usize, len: usize },
}

#[derive(Debug)]
enum Item {
    Packet {
        ts: Timestamp,
        link_type: LinkType,
        orig_len: u32,
        bytes: Bytes,
    },
    Tick(Timestamp),
    Host(Box<HostEvent>),
}

/// A batch of work for one worker; travels back to the dispatcher empty.
#[derive(Debug, Default)]
struct Batch {
    items: Vec<Item>,
    packets: usize,
    buf: Vec<u8>,
    file: Option<Arc<CaptureFile>>,
}

impl Batch {
    fn clear(&mut self) {
        self.items.clear();
        self.packets = 0;
        self.buf.clear();
        self.file = None;
    }

    fn host_events(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Host(_)))
            .count() as u64
    }
}

struct Lane {
    tx: Option<Sender<Batch>>,
    batch: Batch,
}

/// N worker threads, each with its own [`Engine`], fed by flow-hash sharding; see the
/// module docs.
pub struct Pipeline<S: Sink + Send + 'static> {
    cfg: PipelineConfig,
    lanes: Vec<Lane>,
    recycle_rx: Receiver<Batch>,
    spare: Vec<Batch>,
    workers: Vec<JoinHandle<()>>,
    collector: Option<JoinHandle<S>>,
    snapshots: Vec<Arc<Mutex<StatsSection>>>,
    stats: DispatchStats,
    drops: [u64; DropReason::ALL.len()],
    tick_ns: u64,
    last_tick: Option<Timestamp>,
}

impl<S: Sink + Send + 'static> std::fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn check(key: &'static str, v: usize, lo: usize, hi: usize) -> Result<(), PipelineError> {
    if v < lo || v > hi {
        return Err(PipelineError::Setting {
            key,
            reason: format!("{v} is outside {lo}..={hi}"),
        });
    }
    Ok(())
}

impl<S: Sink + Send + 'static> Pipeline<S> {
    /// Start `pcfg.workers` workers, each with an engine built from `cfg`, and a collector
    /// thread that hands every event to `sink`.
    ///
    /// # Errors
    /// [`PipelineError::Setting`] for settings out of range, [`PipelineError::Engine`] when
    /// `cfg` is invalid, [`PipelineError::Spawn`] when a thread cannot start.
    pub fn new(cfg: Config, pcfg: PipelineConfig, sink: S) -> Result<Pipeline<S>, PipelineError> {
        Pipeline::start(cfg, pcfg, sink, None)
    }

    /// As [`Pipeline::new`], and every worker's engine hands its inline flow verdicts to
    /// `handler` (see [`Engine::set_verdict_handler`] and [`crate::detect::verdict`]).
    ///
    /// The handler is called **on the worker threads**, concurrently when there are several
    /// workers, from the packet path: it must be `Send + Sync` and fast (hand the verdict to
    /// a channel if acting on it takes time; a slow handler stalls its worker and, through
    /// back-pressure, the dispatcher). Verdicts of one flow come from one worker, in order;
    /// verdicts of different flows interleave in no fixed order.
    ///
    /// # Errors
    /// As [`Pipeline::new`].
    pub fn with_verdict_handler(
        cfg: Config,
        pcfg: PipelineConfig,
        sink: S,
        handler: impl Fn(&FlowVerdict) + Send + Sync + 'static,
    ) -> Result<Pipeline<S>, PipelineError> {
        Pipeline::start(cfg, pcfg, sink, Some(Arc::new(handler)))
    }

    fn start(
        cfg: Config,
        pcfg: PipelineConfig,
        sink: S,
        handler: Option<SharedVerdictHandler>,
    ) -> Result<Pipeline<S>, PipelineError> {
        check("workers", pcfg.workers, 1, MAX_WORKERS)?;
        check("batch_packets", pcfg.batch_packets, 1, 1 << 16)?;
        check(
            "batch_bytes",
            pcfg.batch_bytes,
            MAX_CAPLEN as usize,
            64 << 20,
        )?;
        check("queue_batches", pcfg.queue_batches, 1, 1 << 16)?;
        check("output_queue", pcfg.output_queue, 1, 1 << 24)?;
        let tick_ns = cfg.flow.sweep_interval_ms.saturating_mul(1_000_000);
        let mut wcfg = cfg;
        // The dispatcher's ticks replace the engines' own sweeps (module docs, "Time").
        wcfg.flow.sweep_interval_ms = u64::MAX;
        let mut engines = Vec::with_capacity(pcfg.workers);
        for worker in 0..pcfg.workers {
            let mut engine = Engine::new(wcfg.clone())
                .map_err(|source| PipelineError::Engine { worker, source })?;
            if let Some(h) = &handler {
                let h = Arc::clone(h);
                engine.set_verdict_handler(move |v| h(v));
            }
            engines.push(engine);
        }
        let pool = pcfg
            .workers
            .saturating_mul(pcfg.queue_batches.saturating_add(2));
        let (recycle_tx, recycle_rx) = crossbeam_channel::bounded::<Batch>(pool);
        let (out_tx, out_rx) = crossbeam_channel::bounded::<Event>(pcfg.output_queue);
        let mut sink = sink;
        let collector = std::thread::Builder::new()
            .name("entrospect-collect".into())
            .spawn(move || {
                for ev in out_rx {
                    sink.event(&ev);
                }
                sink
            })
            .map_err(|source| PipelineError::Spawn {
                name: "entrospect-collect".into(),
                source,
            })?;
        let mut lanes = Vec::with_capacity(pcfg.workers);
        let mut workers = Vec::with_capacity(pcfg.workers);
        let mut snapshots = Vec::with_capacity(pcfg.workers);
        for (i, engine) in engines.into_iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(pcfg.queue_batches);
            let snap = Arc::new(Mutex::new(engine.stats()));
            let w = Worker {
                engine,
                rx,
                recycle: recycle_tx.clone(),
                out: out_tx.clone(),
                snapshot: Arc::clone(&snap),
            };
            let name = format!("entrospect-w{i}");
            let handle = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || w.run())
                .map_err(|source| PipelineError::Spawn { name, source })?;
            lanes.push(Lane {
                tx: Some(tx),
                batch: Batch::default(),
            });
            workers.push(handle);
            snapshots.push(snap);
        }
        let stats = DispatchStats {
            routed: vec![0; pcfg.workers],
            ..DispatchStats::default()
        };
        Ok(Pipeline {
            cfg: pcfg,
            lanes,
            recycle_rx,
            spare: Vec::new(),
            workers,
            collector: Some(collector),
            snapshots,
            stats,
            drops: [0; DropReason::ALL.len()],
            tick_ns,
            last_tick: None,
        })
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.lanes.len()
    }

    /// The lane of a packet; ticks first when it advances the sweep clock.
    fn lane_of(&mut self, ts: Timestamp, link_type: LinkType, data: &[u8]) -> usize {
        let n = self.lanes.len() as u64;
        let (hash, whole) = route(link_type, data, self.cfg.udp_routing);
        if whole {
            self.maybe_tick(ts);
        }
        hash.and_then(|h| h.checked_rem(n))
            .map_or(0, |i| i as usize)
    }

    /// Insert a tick into every worker's stream when packet time has advanced by the sweep
    /// interval (the schedule of the flow table's own sweep).
    fn maybe_tick(&mut self, ts: Timestamp) {
        match self.last_tick {
            None => self.last_tick = Some(ts),
            Some(last) if ts.saturating_sub(last) >= self.tick_ns => {
                self.last_tick = Some(ts);
                self.stats.ticks = self.stats.ticks.saturating_add(1);
                for i in 0..self.lanes.len() {
                    self.append(i, Item::Tick(ts));
                }
            }
            Some(_) => {}
        }
    }

    fn new_batch(&mut self) -> Batch {
        if let Some(b) = self.spare.pop() {
            return b;
        }
        match self.recycle_rx.try_recv() {
            Ok(b) => b,
            Err(_) => {
                self.stats.batches_allocated = self.stats.batches_allocated.saturating_add(1);
                Batch {
                    items: Vec::with_capacity(self.cfg.batch_packets.saturating_add(4)),
                    ..Batch::default()
                }
            }
        }
    }

    fn drop_packets(&mut self, reason: DropReason, n: u64) {
        if let Some(c) = self.drops.get_mut(reason.index()) {
            *c = c.saturating_add(n);
        }
    }

    /// Send lane `i`'s current batch (if it holds anything) under the back-pressure policy.
    fn send(&mut self, i: usize) {
        if self.lanes.get(i).is_none_or(|l| l.batch.items.is_empty()) {
            return;
        }
        let fresh = self.new_batch();
        let Some(lane) = self.lanes.get_mut(i) else {
            return;
        };
        let batch = std::mem::replace(&mut lane.batch, fresh);
        let packets = batch.packets as u64;
        let hosts = batch.host_events();
        let outcome = match (&lane.tx, self.cfg.backpressure) {
            (None, _) => Err((batch, true)),
            (Some(tx), Backpressure::Block) => tx.send(batch).map_err(|e| (e.into_inner(), true)),
            (Some(tx), Backpressure::Drop) => tx.try_send(batch).map_err(|e| match e {
                TrySendError::Full(b) => (b, false),
                TrySendError::Disconnected(b) => (b, true),
            }),
        };
        match outcome {
            Ok(()) => {
                self.stats.batches = self.stats.batches.saturating_add(1);
                if let Some(r) = self.stats.routed.get_mut(i) {
                    *r = r.saturating_add(packets);
                }
            }
            Err((mut b, gone)) => {
                if gone {
                    lane.tx = None;
                }
                self.stats.host_events_dropped =
                    self.stats.host_events_dropped.saturating_add(hosts);
                let reason = if gone {
                    DropReason::WorkerGone
                } else {
                    DropReason::QueueFull
                };
                self.drop_packets(reason, packets);
                b.clear();
                if self.spare.len() < self.lanes.len() {
                    self.spare.push(b);
                }
            }
        }
    }

    fn append(&mut self, i: usize, item: Item) {
        let full = match self.lanes.get_mut(i) {
            Some(lane) => {
                if matches!(item, Item::Packet { .. }) {
                    lane.batch.packets = lane.batch.packets.saturating_add(1);
                }
                lane.batch.items.push(item);
                lane.batch.packets >= self.cfg.batch_packets
            }
            None => false,
        };
        if full {
            self.send(i);
        }
    }

    /// Hand one packet to the pipeline, copying its bytes into a batch buffer (live
    /// capture: the source's buffer is reused by its next read).
    pub fn push(&mut self, pkt: &Packet<'_>) {
        self.stats.packets = self.stats.packets.saturating_add(1);
        let len = pkt.data.len();
        if len > self.cfg.batch_bytes {
            self.drop_packets(DropReason::PacketTooLarge, 1);
            return;
        }
        let i = self.lane_of(pkt.ts, pkt.link_type, pkt.data);
        let room = self
            .lanes
            .get(i)
            .is_some_and(|l| l.batch.buf.len().saturating_add(len) <= self.cfg.batch_bytes);
        if !room {
            self.send(i);
        }
        let Some(lane) = self.lanes.get_mut(i) else {
            return;
        };
        let off = lane.batch.buf.len();
        lane.batch.buf.extend_from_slice(pkt.data);
        self.stats.copied = self.stats.copied.saturating_add(1);
        self.append(
            i,
            Item::Packet {
                ts: pkt.ts,
                link_type: pkt.link_type,
                orig_len: pkt.orig_len,
                bytes: Bytes::Own { off, len },
            },
        );
    }

    /// Hand one packet that borrows `file`'s bytes: it is sent as an offset into the
    /// shared file, never copied (a packet from elsewhere is copied as by
    /// [`Pipeline::push`]). For callers that interleave packets with host events.
    pub fn push_shared(&mut self, file: &Arc<CaptureFile>, pkt: &Packet<'_>) {
        let base = file.bytes().as_ptr() as usize;
        let start = pkt.data.as_ptr() as usize;
        let len = pkt.data.len();
        let off = start.wrapping_sub(base);
        let inside = start >= base
            && off
                .checked_add(len)
                .is_some_and(|end| end <= file.bytes().len());
        if !inside {
            self.push(pkt);
            return;
        }
        self.stats.packets = self.stats.packets.saturating_add(1);
        let i = self.lane_of(pkt.ts, pkt.link_type, pkt.data);
        let other_file = self
            .lanes
            .get(i)
            .is_some_and(|l| l.batch.file.as_ref().is_some_and(|f| !Arc::ptr_eq(f, file)));
        if other_file {
            self.send(i);
        }
        let Some(lane) = self.lanes.get_mut(i) else {
            return;
        };
        if lane.batch.file.is_none() {
            lane.batch.file = Some(Arc::clone(file));
        }
        self.stats.zero_copy = self.stats.zero_copy.saturating_add(1);
        self.append(
            i,
            Item::Packet {
                ts: pkt.ts,
                link_type: pkt.link_type,
                orig_len: pkt.orig_len,
                bytes: Bytes::File { off, len },
            },
        );
    }

    /// Replay every packet of `file`; the workers read the packets from the shared file.
    ///
    /// # Errors
    /// The capture error that ended the file (the packets before it were processed).
    pub fn replay(&mut self, file: &Arc<CaptureFile>) -> Result<SourceStats, CaptureError> {
        let mut packets = file.packets();
        for item in packets.by_ref() {
            let pkt = item?;
            self.push_shared(file, &pkt);
        }
        Ok(packets.stats())
    }

    /// Broadcast a host event to every worker, in order with the packets.
    pub fn process_host_event(&mut self, ev: HostEvent) {
        self.stats.host_events = self.stats.host_events.saturating_add(1);
        for i in 0..self.lanes.len() {
            self.append(i, Item::Host(Box::new(ev.clone())));
        }
    }

    /// Expire idle flows at `now` in every worker and send every partly filled batch (call
    /// periodically with the wall clock on live traffic).
    pub fn tick(&mut self, now: Timestamp) {
        self.stats.ticks = self.stats.ticks.saturating_add(1);
        self.last_tick = Some(now);
        for i in 0..self.lanes.len() {
            self.append(i, Item::Tick(now));
            self.send(i);
        }
    }

    /// Send every partly filled batch now.
    pub fn flush_batches(&mut self) {
        for i in 0..self.lanes.len() {
            self.send(i);
        }
    }

    /// Counters so far: the dispatcher's, and each worker's as of its last tick.
    pub fn stats(&self) -> PipelineStats {
        let mut dispatch = self.stats.clone();
        dispatch.drops = DropReason::ALL
            .iter()
            .zip(self.drops.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (r.as_str(), *n))
            .collect();
        PipelineStats {
            dispatch,
            workers: self
                .snapshots
                .iter()
                .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
                .collect(),
        }
    }

    /// Send what is queued, end every flow in every worker, wait for the threads, and return
    /// the sink with the final counters.
    ///
    /// # Errors
    /// [`PipelineError::WorkerPanicked`] or [`PipelineError::CollectorPanicked`].
    pub fn finish(mut self) -> Result<(S, PipelineStats), PipelineError> {
        // The last batches go out whatever the policy: nothing more will arrive.
        self.cfg.backpressure = Backpressure::Block;
        self.flush_batches();
        for lane in &mut self.lanes {
            lane.tx = None;
        }
        let mut failed = None;
        for (worker, h) in std::mem::take(&mut self.workers).into_iter().enumerate() {
            if h.join().is_err() && failed.is_none() {
                failed = Some(worker);
            }
        }
        let stats = self.stats();
        let sink = match self.collector.take().map(JoinHandle::join) {
            Some(Ok(s)) => s,
            _ => return Err(PipelineError::CollectorPanicked),
        };
        match failed {
            Some(worker) => Err(PipelineError::WorkerPanicked { worker }),
            None => Ok((sink, stats)),
        }
    }
}

/// One worker thread's state.
struct Worker {
    engine: Engine,
    rx: Receiver<Batch>,
    recycle: Sender<Batch>,
    out: Sender<Event>,
    snapshot: Arc<Mutex<StatsSection>>,
}

impl Worker {
    fn run(mut self) {
        while let Ok(mut batch) = self.rx.recv() {
            let file = batch.file.take();
            for item in batch.items.drain(..) {
                match item {
                    Item::Packet {
                        ts,
                        link_type,
                        orig_len,
                        bytes,
                    } => {
                        let data = match bytes {
                            Bytes::File { off, len } => file
                                .as_ref()
                                .and_then(|f| f.bytes().get(off..off.checked_add(len)?)),
                            Bytes::Own { off, len } => {
                                off.checked_add(len).and_then(|end| batch.buf.get(off..end))
                            }
                        };
                        if let Some(data) = data {
                            self.engine.process(&Packet {
                                ts,
                                link_type,
                                data,
                                orig_len,
                            });
                        }
                    }
                    Item::Tick(now) => {
                        self.engine.flush(now);
                        self.publish();
                    }
                    Item::Host(ev) => self.engine.process_host_event(*ev),
                }
            }
            drop(file);
            batch.clear();
            let _ = self.recycle.try_send(batch);
            self.forward();
        }
        self.engine.finish();
        self.forward();
        self.publish();
    }

    fn forward(&mut self) {
        for ev in self.engine.drain_events() {
            if matches!(ev, Event::Stats(_)) {
                continue;
            }
            if self.out.send(ev).is_err() {
                break;
            }
        }
    }

    fn publish(&self) {
        let s = self.engine.stats();
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::writer::PcapngWriter;

    /// An Ethernet/IPv4/UDP frame from `src:sport` to `dst:dport` (checksums zero).
    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
        let total = (20 + 8 + payload.len()) as u16;
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&(total - 20).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    fn packet(data: &[u8], i: u64) -> Packet<'_> {
        Packet {
            ts: Timestamp(1_700_000_000_000_000_000 + i * 1_000_000),
            link_type: LinkType::ETHERNET,
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn both_directions_hash_alike_and_non_ip_has_no_hash() {
        let a = udp([10, 0, 0, 1], 5353, [10, 0, 0, 2], 53, b"q");
        let b = udp([10, 0, 0, 2], 53, [10, 0, 0, 1], 5353, b"r");
        let ha = flow_hash(LinkType::ETHERNET, &a);
        assert!(ha.is_some());
        assert_eq!(ha, flow_hash(LinkType::ETHERNET, &b));
        let mut arp = a.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(flow_hash(LinkType::ETHERNET, &arp), None);
        assert_eq!(flow_hash(LinkType::ETHERNET, &[]), None);
    }

    #[test]
    fn out_of_range_settings_are_refused_by_name() {
        for (pcfg, key) in [
            (
                PipelineConfig {
                    workers: 0,
                    ..PipelineConfig::default()
                },
                "workers",
            ),
            (
                PipelineConfig {
                    batch_bytes: 1000,
                    ..PipelineConfig::default()
                },
                "batch_bytes",
            ),
        ] {
            match Pipeline::new(Config::default(), pcfg, Vec::<Event>::new()) {
                Err(PipelineError::Setting { key: k, .. }) => assert_eq!(k, key),
                other => panic!("expected a setting error for {key}, got {other:?}"),
            }
        }
    }

    #[test]
    fn copied_packets_reach_the_workers_and_are_counted_once() {
        let pcfg = PipelineConfig {
            workers: 3,
            batch_packets: 4,
            ..PipelineConfig::default()
        };
        let (pcfg_workers, pcfg_queue) = (pcfg.workers, pcfg.queue_batches);
        let mut p = Pipeline::new(Config::default(), pcfg, Vec::<Event>::new()).unwrap();
        let mut arp = udp([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, b"");
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        for i in 0..100u16 {
            let f = udp(
                [10, 0, 0, 1],
                1000 + i % 10,
                [10, 0, 0, (i % 7) as u8 + 2],
                53,
                b"x",
            );
            p.push(&packet(&f, u64::from(i)));
        }
        p.push(&packet(&arp, 100));
        let (events, stats) = p.finish().unwrap();
        assert_eq!(stats.dispatch.packets, 101);
        assert_eq!(stats.dispatch.copied, 101);
        assert_eq!(stats.dispatch.routed.iter().sum::<u64>(), 101);
        assert!(stats.dispatch.routed[0] >= 1, "non-IP goes to worker 0");
        assert_eq!(stats.capture().packets, 101);
        assert_eq!(stats.capture().decoded, 100);
        // UDP is routed by address pair: 7 pairs, one flow each per 5-tuple.
        let flows = events
            .iter()
            .filter(|e| matches!(e, Event::Flow(_)))
            .count();
        assert_eq!(flows, 70);
        assert!(!events.iter().any(|e| matches!(e, Event::Stats(_))));
        // Batch memory is bounded by what can be in flight (each worker's queue, the one it
        // works on and the one being filled), whatever the scheduling; how many are reused
        // depends on thread timing, so it is not asserted here.
        let in_flight = pcfg_workers * (pcfg_queue + 2);
        assert!(
            stats.dispatch.batches_allocated <= stats.dispatch.batches.min(in_flight as u64),
            "{stats:?}"
        );
    }

    #[test]
    fn five_tuple_udp_routing_spreads_one_host_pair_and_address_pair_does_not() {
        for (udp_routing, spread) in [
            (UdpRouting::AddressPair, false),
            (UdpRouting::FiveTuple, true),
        ] {
            let pcfg = PipelineConfig {
                workers: 2,
                udp_routing,
                ..PipelineConfig::default()
            };
            let mut p = Pipeline::new(Config::default(), pcfg, Vec::<Event>::new()).unwrap();
            for i in 0..200u16 {
                let q = udp([10, 0, 0, 1], 30_000 + i, [10, 0, 0, 2], 53, b"q");
                let r = udp([10, 0, 0, 2], 53, [10, 0, 0, 1], 30_000 + i, b"r");
                p.push(&packet(&q, u64::from(i) * 2));
                p.push(&packet(&r, u64::from(i) * 2 + 1));
            }
            let (events, stats) = p.finish().unwrap();
            let routed = &stats.dispatch.routed;
            assert_eq!(routed.iter().sum::<u64>(), 400);
            assert_eq!(
                routed.iter().all(|&n| n > 0),
                spread,
                "{udp_routing:?}: {routed:?}"
            );
            // Either way each query/answer pair is one flow: both directions met.
            let flows: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Flow(f) => Some(f),
                    _ => None,
                })
                .collect();
            assert_eq!(flows.len(), 200, "{udp_routing:?}");
            assert!(
                flows
                    .iter()
                    .all(|f| f.flow.pkts_toserver == 1 && f.flow.pkts_toclient == 1),
                "{udp_routing:?}"
            );
        }
    }

    #[test]
    fn drop_policy_counts_packets_of_a_full_queue() {
        let pcfg = PipelineConfig {
            workers: 1,
            batch_packets: 1,
            queue_batches: 1,
            backpressure: Backpressure::Drop,
            ..PipelineConfig::default()
        };
        // A sink that blocks until released keeps the worker stuck on its output, so its
        // queue fills.
        let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
        let sink = move |_: &Event| {
            let _ = gate_rx.recv();
        };
        let mut cfg = Config::default();
        cfg.flow.udp_timeout_secs = 0;
        let mut p = Pipeline::new(
            cfg,
            PipelineConfig {
                output_queue: 1,
                ..pcfg
            },
            sink,
        )
        .unwrap();
        for i in 0..2000u64 {
            let f = udp([10, 0, 0, 1], (i % 60_000) as u16, [10, 0, 0, 2], 53, b"x");
            // Packet time jumps 2 s per packet: each tick times out the previous flows,
            // whose records then wait on the gated sink.
            p.push(&Packet {
                ts: Timestamp(1_700_000_000_000_000_000 + i * 2_000_000_000),
                ..packet(&f, 0)
            });
        }
        let st = p.stats();
        drop(gate_tx); // release the sink
        assert!(
            st.dispatch.drops.get("queue_full").copied().unwrap_or(0) > 0,
            "{:?}",
            st.dispatch
        );
        let (_, fin) = p.finish().unwrap();
        let dropped = fin.dispatch.drops.get("queue_full").copied().unwrap_or(0);
        assert_eq!(fin.dispatch.routed[0] + dropped, 2000);
        assert_eq!(fin.capture().packets, fin.dispatch.routed[0]);
    }

    #[test]
    fn replay_sends_offsets_into_the_shared_file() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let eth = w.add_interface(LinkType::ETHERNET, 65535).unwrap();
        for i in 0..50u64 {
            let f = udp(
                [10, 0, 0, 1],
                4000,
                [10, 0, 0, (i % 5) as u8 + 2],
                53,
                b"abc",
            );
            w.write_packet(eth, packet(&f, i).ts, &f).unwrap();
        }
        let file = Arc::new(CaptureFile::from_bytes(w.into_inner().unwrap()).unwrap());
        let mut p =
            Pipeline::new(Config::default(), PipelineConfig::default(), Vec::new()).unwrap();
        let src = p.replay(&file).unwrap();
        assert_eq!(src.packets, 50);
        let (events, stats): (Vec<Event>, _) = p.finish().unwrap();
        assert_eq!(stats.dispatch.zero_copy, 50);
        assert_eq!(stats.dispatch.copied, 0);
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn merged_json_sums_counters_and_keeps_the_largest_float() {
        let mut a = StatsSection::default();
        a.capture.packets = 3;
        a.capture_seconds = 1.5;
        let mut b = StatsSection::default();
        b.capture.packets = 4;
        b.capture_seconds = 2.5;
        let st = PipelineStats {
            dispatch: DispatchStats::default(),
            workers: vec![a, b],
        };
        let m = st.merged_json();
        assert_eq!(m["capture"]["packets"], 7);
        assert_eq!(m["capture_seconds"], 2.5);
    }

    #[test]
    fn drop_reason_names_are_stable() {
        let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["queue_full", "packet_too_large", "worker_gone"]);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
