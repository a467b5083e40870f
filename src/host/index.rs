//! The bounded process index: per host, which process (image, lineage, crypto modules,
//! connections) existed when, so that the correlation stage can join a flow to the
//! process that opened it.
//!
//! # Identity
//!
//! A process is identified by its `process_guid` when the telemetry has one (Sysmon's
//! ProcessGuid, `/proc` pid + start time ...), else by its pid *and its lifetime*: PIDs are
//! reused, so each pid has a list of generations ordered by start time, and an event
//! without a guid goes to the generation whose lifetime holds its timestamp. A generation
//! ends at its `process_exit`, or at the start of the next process with the same pid
//! (an inferred exit, counted in [`HostIndexStats::pid_reuse_inferred_exits`]). The index
//! never joins an event to a generation whose lifetime is farther than the configured
//! clock skew from the event's time: it creates a new record instead.
//!
//! # Out-of-order events
//!
//! Real telemetry stamps some `module_load`/`network_connect` events before their own
//! `process_start` (Sysmon on a busy host, or a delivery that reorders). An event for an
//! unknown process creates a *provisional* record keyed by its pid (and guid when there
//! is one). A later `process_start` adopts it (counted in
//! [`HostIndexStats::out_of_order_adoptions`]) when:
//! - both carry the same guid (whatever the times: the guid is the identity, and OTRF
//!   data has Sysmon EID 3 stamped 33 h before EID 1 of the same ProcessGuid), or
//! - neither conflicts on guid, the pid is the same, the provisional record's first event
//!   is within `clock_skew` of the start (either side), and no other known process with
//!   that pid started in between.
//!
//! An event without a guid that arrives before its process's start can only be joined by
//! pid and time, possibly to the previous process with that pid (still open, or exited
//! less than `clock_skew` earlier). When the late start arrives, the events the previous
//! record received at or after that start are moved to the new one
//! ([`HostIndexStats::rehomed_events`]): a pid belongs to one process at a time.
//!
//! The index trusts that delivery reorders events by less than `clock_skew` (guid-keyed
//! events excepted): a start delivered much later than its process's other events leaves
//! them on a provisional record, never on a wrong process.
//!
//! # Bounds and time
//!
//! All time comes from event timestamps, never from the wall clock: each host has its own
//! "now", the latest timestamp it has sent (so one host's clock never expires another
//! host's records; a single event stamped far in the future does expire that host's
//! exited records early). A process is evicted `time_window` after its
//! exit (its late flows can still be joined until then). At most
//! [`HostIndexConfig::max_processes`] records are kept: at the cap, the oldest exited
//! record goes first, else the least recently active one. Connections
//! ([`HostIndexConfig::max_connections_per_process`]), crypto modules and strings are
//! capped per record. Every eviction and drop is counted in [`HostIndexStats`].
//!
//! Nothing here panics on input.

use crate::host::crypto_libs::{CryptoLib, CryptoLibTable};
use crate::host::{ConnDirection, HostEvent, HostEventKind, HostProto, Platform};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

/// Tunables of the process index (config section `host_index`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostIndexConfig {
    /// How long an exited process stays joinable.
    ///
    /// Default 300 s: flow tables flush idle TCP flows after minutes, so a flow can be
    /// reported well after its process exited; and real Sysmon network events lag the
    /// wire by up to about 3 minutes (OTRF LSASS campaign: EID 3 ~3 min after Zeek's
    /// conn.log), so the same window covers both.
    pub time_window_ns: u64,
    /// Tolerance for clock disagreement and delivery reordering between events of one
    /// host: how far before a process's start (or after its exit) an event may be stamped
    /// and still belong to it, and how far a provisional record's first event may be from
    /// the `process_start` that adopts it. Default 5 s (Sysmon event reordering is in the
    /// millisecond-to-second range).
    pub clock_skew_ns: u64,
    /// Most process records kept, over all hosts. Default 100 000.
    pub max_processes: usize,
    /// Most connections kept per process (the oldest go first). Default 256.
    pub max_connections_per_process: usize,
    /// Most distinct crypto modules kept per process. Default 32.
    pub max_crypto_modules_per_process: usize,
    /// Longest string (image, command line, user, module path, host) kept, in bytes;
    /// longer ones are truncated at a character boundary. Default 4096.
    pub max_string_len: usize,
}

impl Default for HostIndexConfig {
    fn default() -> Self {
        HostIndexConfig {
            time_window_ns: 300 * 1_000_000_000,
            clock_skew_ns: 5 * 1_000_000_000,
            max_processes: 100_000,
            max_connections_per_process: 256,
            max_crypto_modules_per_process: 32,
            max_string_len: 4096,
        }
    }
}

/// Opaque handle of one process record (unique for the life of the index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ProcessId(u64);

/// A crypto library a process loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CryptoModuleLoad {
    /// The module path as the telemetry gave it (capped).
    pub path: String,
    /// Its classification.
    pub lib: CryptoLib,
    /// The earliest load time seen.
    pub first_load: Timestamp,
    /// Joined to its process by guid (never moved by PID-reuse repair).
    #[serde(skip)]
    by_guid: bool,
}

/// One connection a process opened or accepted, in local/remote terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnRecord {
    /// When the host saw it.
    pub ts: Timestamp,
    /// Transport protocol.
    pub proto: HostProto,
    /// Who initiated it.
    pub direction: ConnDirection,
    /// Local address, when the telemetry gave it.
    pub local_ip: Option<IpAddr>,
    /// Local port, when the telemetry gave it (auditd gives only the destination).
    pub local_port: Option<u16>,
    /// Remote address, when known.
    pub remote_ip: Option<IpAddr>,
    /// Remote port, when known.
    pub remote_port: Option<u16>,
    #[serde(skip)]
    seq: u64,
    #[serde(skip)]
    indexed: bool,
    /// Joined to its process by guid (never moved by PID-reuse repair).
    #[serde(skip)]
    by_guid: bool,
}

/// Everything the index knows about one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessRecord {
    /// The record's handle.
    pub id: ProcessId,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Unique process identity, when the telemetry has one.
    pub guid: Option<String>,
    /// Executable path.
    pub image: Option<String>,
    /// Command line.
    pub cmdline: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Parent pid.
    pub ppid: Option<u32>,
    /// Parent's unique identity.
    pub parent_guid: Option<String>,
    /// Parent image: from the event, else from the parent's record.
    pub parent_image: Option<String>,
    /// Start time, from `process_start` (None while provisional).
    pub start: Option<Timestamp>,
    /// Earliest event time seen for this process.
    pub first_seen: Timestamp,
    /// Latest event time seen for this process.
    pub last_seen: Timestamp,
    /// Exit time: from `process_exit`, or inferred from the next process with this pid.
    pub exit: Option<Timestamp>,
    /// Whether `exit` was inferred from PID reuse rather than reported.
    pub exit_inferred: bool,
    /// True until a `process_start` for this process has been seen.
    pub provisional: bool,
    /// Crypto modules loaded (capped, first load time each).
    pub crypto_modules: Vec<CryptoModuleLoad>,
    /// Connections seen (capped, oldest dropped first).
    pub connections: VecDeque<ConnRecord>,
    /// Connections dropped at the per-process cap.
    pub connections_dropped: u64,
    /// `module_load` events seen (crypto or not).
    pub modules_loaded: u64,
}

impl ProcessRecord {
    /// The start used for ordering generations: `start`, else the first event's time.
    pub fn effective_start(&self) -> Timestamp {
        self.start.unwrap_or(self.first_seen)
    }
}

/// Which fields of a flow matched a host connection, and how far apart in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MatchQuality {
    /// The process is identified by a guid (not only by pid and time).
    pub guid: bool,
    /// Local address and port, remote address and port and protocol all matched.
    pub full_tuple: bool,
    /// Only the destination (remote address, port, protocol) could be compared: the host
    /// event or the flow lacked the local port (auditd-style `connect()` records).
    pub dest_only: bool,
    /// Host event time, corrected by the skew, minus the flow time (ns).
    pub time_delta_ns: i64,
}

/// The answer of [`HostIndex::lookup_connection`].
#[derive(Clone, Copy, Debug)]
pub struct ConnMatch<'a> {
    /// The process that opened or accepted the connection.
    pub process: &'a ProcessRecord,
    /// The matching host connection.
    pub connection: &'a ConnRecord,
    /// How well it matched.
    pub quality: MatchQuality,
}

/// Counters of the index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostIndexStats {
    /// `process_start` events ingested.
    pub process_start_events: u64,
    /// `module_load` events ingested.
    pub module_load_events: u64,
    /// `network_connect` events ingested.
    pub network_connect_events: u64,
    /// `process_exit` events ingested.
    pub process_exit_events: u64,
    /// Records created for events of a process not yet started.
    pub provisional_created: u64,
    /// Provisional records adopted by a later `process_start`.
    pub out_of_order_adoptions: u64,
    /// `process_start` events for a process already started (fields merged).
    pub duplicate_starts: u64,
    /// Exits inferred because a new process took the pid.
    pub pid_reuse_inferred_exits: u64,
    /// Records evicted `time_window` after their exit.
    pub evicted_expired: u64,
    /// Exited records evicted at the record cap.
    pub evicted_cap_exited: u64,
    /// Live records evicted at the record cap (least recently active).
    pub evicted_cap_live: u64,
    /// Connections dropped at the per-process cap.
    pub connections_dropped: u64,
    /// Connections and crypto loads moved from a process to the next one with its pid,
    /// once that one's (late) start showed they were stamped in its lifetime.
    pub rehomed_events: u64,
    /// Connections kept but not joinable (no remote address/port, or unspecified).
    pub unindexable_connections: u64,
    /// Crypto modules dropped at the per-process cap.
    pub crypto_modules_dropped: u64,
    /// Records held now.
    pub records: u64,
    /// Hosts with at least one record now.
    pub hosts: u64,
}

/// Where a connection is indexed: its remote endpoint and, when known, its local port
/// (so that a busy remote endpoint, a DNS resolver or a C2 server beaconing with a new
/// source port each time, does not make every lookup scan all its connections).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RemoteKey {
    proto: HostProto,
    ip: IpAddr,
    port: u16,
    local_port: Option<u16>,
}

impl RemoteKey {
    /// The key of a connection record, `None` when it cannot be joined (remote address or
    /// port unknown or unspecified).
    fn of(c: &ConnRecord) -> Option<RemoteKey> {
        match (c.remote_ip, c.remote_port) {
            (Some(ip), Some(port)) if !ip.is_unspecified() && port != 0 => Some(RemoteKey {
                proto: c.proto,
                ip,
                port,
                local_port: c.local_port.filter(|p| *p != 0),
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ConnRef {
    id: ProcessId,
    seq: u64,
}

#[derive(Debug, Default)]
struct HostState {
    now: Timestamp,
    /// Platform of the latest event from this host.
    platform: Option<Platform>,
    records: usize,
    by_guid: HashMap<String, ProcessId>,
    /// Generations of each pid, sorted by effective start.
    by_pid: HashMap<u32, Vec<ProcessId>>,
    by_remote: HashMap<RemoteKey, Vec<ConnRef>>,
    exits: BTreeSet<(Timestamp, ProcessId)>,
}

/// The bounded, per-host process index. See the module docs.
///
/// ```
/// use entrospect::host::HostEvent;
/// use entrospect::host::index::{HostIndex, HostIndexConfig};
/// use entrospect::host::HostProto;
///
/// let mut index = HostIndex::new(HostIndexConfig::default());
/// for line in [
///     r#"{"timestamp":"2026-11-22T10:00:00Z","host":"ws-17","platform":"linux","event":"process_start","pid":4242,"image":"/usr/bin/python3","process_guid":null}"#,
///     r#"{"timestamp":"2026-11-22T10:00:01Z","host":"ws-17","platform":"linux","event":"module_load","pid":4242,"module":"/usr/lib/x86_64-linux-gnu/libcrypto.so.3"}"#,
///     r#"{"timestamp":"2026-11-22T10:00:02Z","host":"ws-17","platform":"linux","event":"network_connect","pid":4242,"proto":"tcp","src_ip":"10.0.0.5","src_port":50514,"dest_ip":"203.0.113.9","dest_port":4444}"#,
/// ] {
///     index.ingest(serde_json::from_str::<HostEvent>(line)?);
/// }
/// // A flow seen on the wire 300 ms later (sensor clock), host clock in sync.
/// let flow_ts = entrospect::Timestamp::parse_rfc3339("2026-11-22T10:00:02.3Z").unwrap();
/// let m = index
///     .lookup_connection(
///         Some("ws-17"),
///         HostProto::Tcp,
///         ("10.0.0.5".parse()?, Some(50514)),
///         ("203.0.113.9".parse()?, 4444),
///         flow_ts,
///         5_000_000_000,
///         0,
///     )
///     .expect("joined");
/// assert_eq!(m.process.image.as_deref(), Some("/usr/bin/python3"));
/// assert!(m.quality.full_tuple);
/// let crypto: Vec<_> = index
///     .crypto_loads_before(m.process.id, flow_ts, 300_000_000_000)
///     .map(|l| l.lib.name.as_ref())
///     .collect();
/// assert_eq!(crypto, ["libcrypto.so*"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct HostIndex {
    config: HostIndexConfig,
    crypto: CryptoLibTable,
    records: HashMap<ProcessId, ProcessRecord>,
    hosts: HashMap<String, HostState>,
    /// (last_seen, id) of every record: least recently active first.
    activity: BTreeSet<(Timestamp, ProcessId)>,
    /// (exit, id) of every exited record, over all hosts.
    exited: BTreeSet<(Timestamp, ProcessId)>,
    next_id: u64,
    next_seq: u64,
    stats: HostIndexStats,
}

/// Fields of a `process_start`, owned.
struct StartFields {
    pid: u32,
    ppid: Option<u32>,
    image: String,
    cmdline: Option<String>,
    user: Option<String>,
    guid: Option<String>,
    parent_image: Option<String>,
    parent_guid: Option<String>,
}

/// Fields of a `network_connect`, owned.
struct ConnFields {
    by_guid: bool,
    proto: HostProto,
    src_ip: Option<IpAddr>,
    src_port: Option<u16>,
    dest_ip: IpAddr,
    dest_port: u16,
    direction: ConnDirection,
}

fn cap_string(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `a - b` in nanoseconds, signed.
pub(crate) fn signed_delta(a: Timestamp, b: Timestamp) -> i128 {
    i128::from(a.as_nanos()) - i128::from(b.as_nanos())
}

/// `v` saturated to the `i64` range.
pub(crate) fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Pick the generation of a pid whose lifetime holds `ts` (latest start wins), else the
/// one whose lifetime is nearest to `ts` within `tol`.
fn pick_generation(
    records: &HashMap<ProcessId, ProcessRecord>,
    gens: &[ProcessId],
    ts: Timestamp,
    tol: u64,
) -> Option<ProcessId> {
    let mut best: Option<(u64, ProcessId)> = None;
    for (i, id) in gens.iter().enumerate() {
        let Some(rec) = records.get(id) else { continue };
        let start = rec.effective_start();
        let next_start = gens
            .get(i.saturating_add(1))
            .and_then(|n| records.get(n))
            .map(ProcessRecord::effective_start);
        let end = match (rec.exit, next_start) {
            (Some(e), Some(n)) => Some(e.min(n)),
            (e, n) => e.or(n),
        };
        let distance = if ts < start {
            start.saturating_sub(ts)
        } else {
            end.map_or(0, |e| ts.saturating_sub(e))
        };
        // `<=` so that among equal distances the latest generation wins.
        if distance <= tol && best.is_none_or(|(d, _)| distance <= d) {
            best = Some((distance, *id));
        }
    }
    best.map(|(_, id)| id)
}

impl HostIndex {
    /// An empty index with the built-in crypto-library table.
    pub fn new(config: HostIndexConfig) -> HostIndex {
        HostIndex::with_crypto_table(config, CryptoLibTable::default())
    }

    /// An empty index classifying modules with `crypto`.
    pub fn with_crypto_table(config: HostIndexConfig, crypto: CryptoLibTable) -> HostIndex {
        HostIndex {
            config,
            crypto,
            records: HashMap::new(),
            hosts: HashMap::new(),
            activity: BTreeSet::new(),
            exited: BTreeSet::new(),
            next_id: 0,
            next_seq: 0,
            stats: HostIndexStats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &HostIndexConfig {
        &self.config
    }

    /// The counters (with `records` and `hosts` filled in).
    pub fn stats(&self) -> HostIndexStats {
        let mut s = self.stats.clone();
        s.records = u64::try_from(self.records.len()).unwrap_or(u64::MAX);
        s.hosts = u64::try_from(self.hosts.len()).unwrap_or(u64::MAX);
        s
    }

    /// Number of process records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the index holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Add one host event. Never fails: events that cannot be placed exactly create a
    /// provisional record; caps evict and count.
    pub fn ingest(&mut self, event: HostEvent) {
        let max = self.config.max_string_len;
        let host = cap_string(event.host, max);
        let ts = event.timestamp;
        let platform = Some(event.platform);
        match self.hosts.get_mut(&host) {
            Some(state) => {
                state.now = state.now.max(ts);
                state.platform = platform;
            }
            None => {
                let state = HostState {
                    now: ts,
                    platform,
                    ..HostState::default()
                };
                self.hosts.insert(host.clone(), state);
            }
        }
        let cap = |s: Option<String>| s.map(|s| cap_string(s, max));
        match event.kind {
            HostEventKind::ProcessStart {
                pid,
                ppid,
                image,
                cmdline,
                user,
                process_guid,
                parent_image,
                parent_guid,
            } => {
                self.stats.process_start_events = self.stats.process_start_events.saturating_add(1);
                let fields = StartFields {
                    pid,
                    ppid,
                    image: cap_string(image, max),
                    cmdline: cap(cmdline),
                    user: cap(user),
                    guid: cap(process_guid),
                    parent_image: cap(parent_image),
                    parent_guid: cap(parent_guid),
                };
                self.on_start(&host, ts, fields);
            }
            HostEventKind::ModuleLoad {
                pid,
                image,
                module,
                process_guid,
            } => {
                self.stats.module_load_events = self.stats.module_load_events.saturating_add(1);
                let by_guid = process_guid.is_some();
                let id = self.resolve(&host, pid, cap(process_guid), ts, cap(image));
                self.on_module(id, cap_string(module, max), ts, by_guid);
            }
            HostEventKind::NetworkConnect {
                pid,
                image,
                proto,
                src_ip,
                src_port,
                dest_ip,
                dest_port,
                direction,
                process_guid,
            } => {
                self.stats.network_connect_events =
                    self.stats.network_connect_events.saturating_add(1);
                let by_guid = process_guid.is_some();
                let id = self.resolve(&host, pid, cap(process_guid), ts, cap(image));
                let fields = ConnFields {
                    by_guid,
                    proto,
                    src_ip,
                    src_port,
                    dest_ip,
                    dest_port,
                    direction,
                };
                self.on_connect(&host, id, ts, fields);
            }
            HostEventKind::ProcessExit { pid, process_guid } => {
                self.stats.process_exit_events = self.stats.process_exit_events.saturating_add(1);
                let id = self.resolve(&host, pid, cap(process_guid), ts, None);
                self.set_exit(&host, id, ts, false);
            }
        }
        let now = self.hosts.get(&host).map_or(ts, |s| s.now);
        self.expire_host(&host, now);
        self.drop_host_if_empty(&host);
    }

    /// Evict, on every host, the processes that exited more than `time_window` before
    /// `now` (for a periodic flush when a host has gone quiet).
    pub fn expire(&mut self, now: Timestamp) {
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for h in hosts {
            self.expire_host(&h, now);
            self.drop_host_if_empty(&h);
        }
    }

    /// The platform of `host`, from its latest event (`None` for an unknown host).
    pub fn host_platform(&self, host: &str) -> Option<Platform> {
        self.hosts.get(host)?.platform
    }

    /// The record behind a handle, if it has not been evicted.
    pub fn process(&self, id: ProcessId) -> Option<&ProcessRecord> {
        self.records.get(&id)
    }

    /// The record with this guid on this host.
    pub fn process_by_guid(&self, host: &str, guid: &str) -> Option<&ProcessRecord> {
        let id = self.hosts.get(host)?.by_guid.get(guid)?;
        self.records.get(id)
    }

    /// The process that had `pid` on `host` at `ts`: the generation whose lifetime holds
    /// `ts`, else the nearest one within the configured clock skew.
    pub fn process_at(&self, host: &str, pid: u32, ts: Timestamp) -> Option<&ProcessRecord> {
        let gens = self.hosts.get(host)?.by_pid.get(&pid)?;
        let id = pick_generation(&self.records, gens, ts, self.config.clock_skew_ns)?;
        self.records.get(&id)
    }

    /// The crypto modules `id` loaded at or before `ts` and at most `window_ns` before it.
    pub fn crypto_loads_before(
        &self,
        id: ProcessId,
        ts: Timestamp,
        window_ns: u64,
    ) -> impl Iterator<Item = &CryptoModuleLoad> + '_ {
        self.records
            .get(&id)
            .into_iter()
            .flat_map(|r| r.crypto_modules.iter())
            .filter(move |m| m.first_load <= ts && ts.saturating_sub(m.first_load) <= window_ns)
    }

    /// Find the host connection matching a flow.
    ///
    /// `local` is the flow endpoint on the host (its port may be unknown), `remote` the
    /// peer; for a flow the host opened, that is (client, server). `ts` is the flow's
    /// time on the sensor's clock; `skew_ns` is the host clock minus the sensor clock, so
    /// a host event at `t` is compared at `t - skew_ns`; it matches when within
    /// `window_ns` of `ts` in either direction. `host = None` searches every host.
    ///
    /// Candidates whose local address or port is known and differs are rejected. Among
    /// the rest the best is: a full 5-tuple before a partial one, then a guid-identified
    /// process, then the smallest time difference.
    #[allow(
        clippy::too_many_arguments,
        reason = "the correlation stage's agreed signature: each argument is one part of the flow"
    )]
    pub fn lookup_connection(
        &self,
        host: Option<&str>,
        proto: HostProto,
        local: (IpAddr, Option<u16>),
        remote: (IpAddr, u16),
        ts: Timestamp,
        window_ns: u64,
        skew_ns: i64,
    ) -> Option<ConnMatch<'_>> {
        self.lookup_connection_per_host(host, proto, local, remote, ts, window_ns, &|_| skew_ns)
    }

    /// [`lookup_connection`](Self::lookup_connection) with each host's own clock skew:
    /// `skew_of(host)` is that host's clock minus the sensor's, nanoseconds.
    #[allow(
        clippy::too_many_arguments,
        reason = "lookup_connection's signature with a per-host skew"
    )]
    pub fn lookup_connection_per_host(
        &self,
        host: Option<&str>,
        proto: HostProto,
        local: (IpAddr, Option<u16>),
        remote: (IpAddr, u16),
        ts: Timestamp,
        window_ns: u64,
        skew_of: &dyn Fn(&str) -> i64,
    ) -> Option<ConnMatch<'_>> {
        let dest_key = RemoteKey {
            proto,
            ip: remote.0.to_canonical(),
            port: remote.1,
            local_port: None,
        };
        let local_ip = local.0.to_canonical();
        let states: Vec<(&String, &HostState)> = match host {
            Some(h) => self.hosts.get_key_value(h).into_iter().collect(),
            None => self.hosts.iter().collect(),
        };
        let mut best: Option<((bool, bool, u128), ConnMatch<'_>)> = None;
        for (name, state) in states {
            let skew_ns = skew_of(name);
            let buckets: Vec<&Vec<ConnRef>> = match local.1.filter(|p| *p != 0) {
                // The fast path: the exact local port, and the connections without one.
                Some(p) => [
                    RemoteKey {
                        local_port: Some(p),
                        ..dest_key
                    },
                    dest_key,
                ]
                .iter()
                .filter_map(|k| state.by_remote.get(k))
                .collect(),
                // The flow lacks its local port: every key of this remote endpoint.
                None => state
                    .by_remote
                    .iter()
                    .filter(|(k, _)| k.proto == proto && k.ip == dest_key.ip && k.port == remote.1)
                    .map(|(_, v)| v)
                    .collect(),
            };
            for r in buckets.into_iter().flatten() {
                let Some(rec) = self.records.get(&r.id) else {
                    continue;
                };
                let Ok(pos) = rec.connections.binary_search_by_key(&r.seq, |c| c.seq) else {
                    continue;
                };
                let Some(conn) = rec.connections.get(pos) else {
                    continue;
                };
                let ip_known = conn.local_ip.filter(|ip| !ip.is_unspecified());
                if ip_known.is_some_and(|ip| ip != local_ip) {
                    continue;
                }
                let ports = match (conn.local_port.filter(|p| *p != 0), local.1) {
                    (Some(a), Some(b)) if a != b => continue,
                    (Some(_), Some(_)) => true,
                    _ => false,
                };
                let delta = signed_delta(conn.ts, ts) - i128::from(skew_ns);
                if delta.unsigned_abs() > u128::from(window_ns) {
                    continue;
                }
                let full_tuple = ports && ip_known.is_some();
                let quality = MatchQuality {
                    guid: rec.guid.is_some(),
                    full_tuple,
                    dest_only: !ports,
                    time_delta_ns: clamp_i64(delta),
                };
                let rank = (full_tuple, quality.guid, u128::MAX - delta.unsigned_abs());
                if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                    best = Some((
                        rank,
                        ConnMatch {
                            process: rec,
                            connection: conn,
                            quality,
                        },
                    ));
                }
            }
        }
        best.map(|(_, m)| m)
    }

    // ---- ingest internals ----

    fn touch(&mut self, id: ProcessId, ts: Timestamp) {
        let Some(rec) = self.records.get_mut(&id) else {
            return;
        };
        let old = rec.last_seen;
        rec.first_seen = rec.first_seen.min(ts);
        if ts > old {
            rec.last_seen = ts;
            self.activity.remove(&(old, id));
            self.activity.insert((ts, id));
        }
    }

    /// The record an event of (`pid`, `guid`) at `ts` belongs to, creating a provisional
    /// record when there is none.
    fn resolve(
        &mut self,
        host: &str,
        pid: u32,
        guid: Option<String>,
        ts: Timestamp,
        image: Option<String>,
    ) -> ProcessId {
        // A guid names the process image, and Sysmon for Linux assigns it at exec: a
        // forked child's events carry its parent's guid (with the child's own pid) until
        // the child execs, e.g. the connect that `bash -i >& /dev/tcp/..` makes in the
        // child before it execs. When the guid's process has another known pid, the
        // event belongs to the pid, and the guid is not the pid's.
        let guid_owner = guid
            .as_ref()
            .and_then(|g| self.hosts.get(host)?.by_guid.get(g).copied());
        let forked = pid != 0
            && guid_owner.is_some_and(|id| {
                self.records
                    .get(&id)
                    .is_some_and(|r| r.pid != 0 && r.pid != pid)
            });
        let guid = if forked { None } else { guid };
        let found = match &guid {
            Some(_) => guid_owner,
            None => self.hosts.get(host).and_then(|state| {
                state.by_pid.get(&pid).and_then(|gens| {
                    pick_generation(&self.records, gens, ts, self.config.clock_skew_ns)
                })
            }),
        };
        let id = match found {
            Some(id) => id,
            None => {
                self.stats.provisional_created = self.stats.provisional_created.saturating_add(1);
                self.create(host, pid, guid, ts, None)
            }
        };
        if let Some(rec) = self.records.get_mut(&id)
            && rec.image.is_none()
        {
            rec.image = image;
        }
        self.touch(id, ts);
        id
    }

    /// Create a record (after making room at the cap) and index it by guid and pid.
    fn create(
        &mut self,
        host: &str,
        pid: u32,
        guid: Option<String>,
        ts: Timestamp,
        start: Option<Timestamp>,
    ) -> ProcessId {
        while self.records.len() >= self.config.max_processes.max(1) {
            if !self.evict_one_for_cap() {
                break;
            }
        }
        let id = ProcessId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let rec = ProcessRecord {
            id,
            host: host.to_owned(),
            pid,
            guid: guid.clone(),
            image: None,
            cmdline: None,
            user: None,
            ppid: None,
            parent_guid: None,
            parent_image: None,
            start,
            first_seen: ts,
            last_seen: ts,
            exit: None,
            exit_inferred: false,
            provisional: start.is_none(),
            crypto_modules: Vec::new(),
            connections: VecDeque::new(),
            connections_dropped: 0,
            modules_loaded: 0,
        };
        self.records.insert(id, rec);
        self.activity.insert((ts, id));
        let state = self.hosts.entry(host.to_owned()).or_default();
        state.records = state.records.saturating_add(1);
        if let Some(g) = guid {
            state.by_guid.insert(g, id);
        }
        state.by_pid.entry(pid).or_default().push(id);
        self.resort_pid(host, pid);
        id
    }

    fn resort_pid(&mut self, host: &str, pid: u32) {
        let records = &self.records;
        if let Some(gens) = self
            .hosts
            .get_mut(host)
            .and_then(|s| s.by_pid.get_mut(&pid))
        {
            gens.sort_by_key(|id| {
                (
                    records
                        .get(id)
                        .map_or(Timestamp::ZERO, ProcessRecord::effective_start),
                    *id,
                )
            });
        }
    }

    /// A provisional record of `pid` that a start at `ts` with `guid` may adopt.
    fn adoptable(
        &self,
        host: &str,
        pid: u32,
        guid: Option<&str>,
        ts: Timestamp,
    ) -> Option<ProcessId> {
        let state = self.hosts.get(host)?;
        if let Some(g) = guid
            && let Some(id) = state.by_guid.get(g)
        {
            return Some(*id);
        }
        let gens = state.by_pid.get(&pid)?;
        let earliest = ts.as_nanos().saturating_sub(self.config.clock_skew_ns);
        let latest = ts.saturating_add_nanos(self.config.clock_skew_ns);
        let mut pick: Option<&ProcessRecord> = None;
        for id in gens {
            let Some(rec) = self.records.get(id) else {
                continue;
            };
            let eff = rec.effective_start();
            if !rec.provisional {
                // A known process started between `ts` and the provisional's first
                // event: anything later is its, not ours.
                if eff > ts && pick.is_none() {
                    return None;
                }
                continue;
            }
            let guid_ok = match (guid, rec.guid.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if guid_ok
                && rec.first_seen.as_nanos() >= earliest
                && rec.first_seen <= latest
                && pick.is_none()
            {
                pick = Some(rec);
            }
        }
        pick.map(|r| r.id)
    }

    fn on_start(&mut self, host: &str, ts: Timestamp, f: StartFields) {
        let pid = f.pid;
        let id = match self.adoptable(host, pid, f.guid.as_deref(), ts) {
            Some(id) => {
                let provisional = self.records.get(&id).is_some_and(|r| r.provisional);
                if provisional {
                    self.stats.out_of_order_adoptions =
                        self.stats.out_of_order_adoptions.saturating_add(1);
                } else {
                    self.stats.duplicate_starts = self.stats.duplicate_starts.saturating_add(1);
                }
                if let Some(rec) = self.records.get_mut(&id) {
                    if provisional || rec.start.is_none() {
                        rec.start = Some(ts);
                    }
                    rec.provisional = false;
                }
                if let Some(g) = &f.guid {
                    let needs_guid = self.records.get(&id).is_some_and(|r| r.guid.is_none());
                    if needs_guid {
                        if let Some(rec) = self.records.get_mut(&id) {
                            rec.guid = Some(g.clone());
                        }
                        if let Some(state) = self.hosts.get_mut(host) {
                            state.by_guid.insert(g.clone(), id);
                        }
                    }
                }
                self.resort_pid(host, pid);
                id
            }
            None => self.create(host, pid, f.guid.clone(), ts, Some(ts)),
        };
        self.touch(id, ts);
        // Lineage: the parent's image from its record when the event lacks it.
        let parent = {
            let state = self.hosts.get(host);
            let by_guid = f
                .parent_guid
                .as_ref()
                .and_then(|g| state.and_then(|s| s.by_guid.get(g)).copied());
            by_guid
                .or_else(|| {
                    let gens = state?.by_pid.get(&f.ppid?)?;
                    pick_generation(&self.records, gens, ts, self.config.clock_skew_ns)
                })
                .filter(|p| *p != id)
                .and_then(|p| self.records.get(&p))
                .map(|p| (p.image.clone(), p.pid))
        };
        if let Some(rec) = self.records.get_mut(&id) {
            rec.image = Some(f.image);
            if f.cmdline.is_some() {
                rec.cmdline = f.cmdline;
            }
            if f.user.is_some() {
                rec.user = f.user;
            }
            rec.ppid = f.ppid.or(rec.ppid).or(parent.as_ref().map(|p| p.1));
            if f.parent_guid.is_some() {
                rec.parent_guid = f.parent_guid;
            }
            rec.parent_image = f
                .parent_image
                .or(rec.parent_image.take())
                .or(parent.and_then(|p| p.0));
        }
        self.rehome_from_previous(host, pid, id);
        self.infer_reuse_exits(host, pid);
    }

    /// Move to `id` what the previous generation of its pid received at or after `id`'s
    /// start (and before the next generation's): while `id`'s start was unknown, those
    /// events could only be joined to the previous process by pid and time. Events that
    /// were joined by guid are never moved.
    fn rehome_from_previous(&mut self, host: &str, pid: u32, id: ProcessId) {
        let Some(gens) = self.hosts.get(host).and_then(|s| s.by_pid.get(&pid)) else {
            return;
        };
        let Some(pos) = gens.iter().position(|g| *g == id) else {
            return;
        };
        let Some(prev) = pos.checked_sub(1).and_then(|p| gens.get(p)).copied() else {
            return;
        };
        let until = gens
            .get(pos.saturating_add(1))
            .and_then(|n| self.records.get(n))
            .map(ProcessRecord::effective_start);
        let Some(since) = self.records.get(&id).and_then(|r| r.start) else {
            return;
        };
        let in_range = |t: Timestamp| t >= since && until.is_none_or(|u| t < u);
        let Some(from) = self.records.get_mut(&prev) else {
            return;
        };
        let (moved_conns, kept): (Vec<ConnRecord>, Vec<ConnRecord>) = from
            .connections
            .drain(..)
            .partition(|c| !c.by_guid && in_range(c.ts));
        from.connections = kept.into();
        let (moved_mods, kept): (Vec<CryptoModuleLoad>, Vec<CryptoModuleLoad>) = from
            .crypto_modules
            .drain(..)
            .partition(|m| !m.by_guid && in_range(m.first_load));
        from.crypto_modules = kept;
        if moved_conns.is_empty() && moved_mods.is_empty() {
            return;
        }
        let moved = moved_conns.len().saturating_add(moved_mods.len());
        self.stats.rehomed_events = self
            .stats
            .rehomed_events
            .saturating_add(u64::try_from(moved).unwrap_or(u64::MAX));
        let cap = self.config.max_connections_per_process.max(1);
        let mod_cap = self.config.max_crypto_modules_per_process;
        let Some(to) = self.records.get_mut(&id) else {
            return;
        };
        for m in moved_mods {
            if let Some(have) = to
                .crypto_modules
                .iter_mut()
                .find(|h| h.path.eq_ignore_ascii_case(&m.path))
            {
                have.first_load = have.first_load.min(m.first_load);
            } else if to.crypto_modules.len() < mod_cap {
                to.crypto_modules.push(m);
            }
        }
        let mut all: Vec<ConnRecord> = to.connections.drain(..).collect();
        all.extend(moved_conns.iter().cloned());
        all.sort_by_key(|c| c.seq);
        let excess = all.len().saturating_sub(cap);
        let dropped: Vec<ConnRecord> = all.drain(..excess).collect();
        to.connections_dropped = to
            .connections_dropped
            .saturating_add(u64::try_from(dropped.len()).unwrap_or(u64::MAX));
        to.connections = all.into();
        let Some(state) = self.hosts.get_mut(host) else {
            return;
        };
        for c in &moved_conns {
            unindex_conn(state, prev, c);
        }
        for c in &dropped {
            // Dropped ones were indexed under `prev` (moved) or `id` (already there).
            unindex_conn(state, prev, c);
            unindex_conn(state, id, c);
        }
        for c in moved_conns.iter().filter(|c| c.indexed) {
            if dropped.iter().any(|d| d.seq == c.seq) {
                continue;
            }
            if let Some(key) = RemoteKey::of(c) {
                state
                    .by_remote
                    .entry(key)
                    .or_default()
                    .push(ConnRef { id, seq: c.seq });
            }
        }
    }

    /// Each generation of `pid` without an exit ends where the next one starts.
    fn infer_reuse_exits(&mut self, host: &str, pid: u32) {
        let Some(gens) = self
            .hosts
            .get(host)
            .and_then(|s| s.by_pid.get(&pid))
            .cloned()
        else {
            return;
        };
        for pair in gens.windows(2) {
            let [a, b] = pair else { continue };
            let (Some(ra), Some(rb)) = (self.records.get(a), self.records.get(b)) else {
                continue;
            };
            if ra.exit.is_none() && !rb.provisional {
                let at = rb.effective_start();
                self.stats.pid_reuse_inferred_exits =
                    self.stats.pid_reuse_inferred_exits.saturating_add(1);
                self.set_exit(host, *a, at, true);
            }
        }
    }

    fn set_exit(&mut self, host: &str, id: ProcessId, ts: Timestamp, inferred: bool) {
        let Some(rec) = self.records.get_mut(&id) else {
            return;
        };
        if inferred && rec.exit.is_some() {
            return;
        }
        let old = rec.exit.replace(ts);
        rec.exit_inferred = inferred;
        if let Some(old) = old {
            self.exited.remove(&(old, id));
            if let Some(s) = self.hosts.get_mut(host) {
                s.exits.remove(&(old, id));
            }
        }
        self.exited.insert((ts, id));
        if let Some(s) = self.hosts.get_mut(host) {
            s.exits.insert((ts, id));
        }
    }

    fn on_module(&mut self, id: ProcessId, module: String, ts: Timestamp, by_guid: bool) {
        let lib = self.crypto.classify(&module);
        let cap = self.config.max_crypto_modules_per_process;
        let Some(rec) = self.records.get_mut(&id) else {
            return;
        };
        rec.modules_loaded = rec.modules_loaded.saturating_add(1);
        let Some(lib) = lib else { return };
        if let Some(m) = rec
            .crypto_modules
            .iter_mut()
            .find(|m| m.path.eq_ignore_ascii_case(&module))
        {
            m.first_load = m.first_load.min(ts);
        } else if rec.crypto_modules.len() < cap {
            rec.crypto_modules.push(CryptoModuleLoad {
                path: module,
                lib,
                first_load: ts,
                by_guid,
            });
        } else {
            self.stats.crypto_modules_dropped = self.stats.crypto_modules_dropped.saturating_add(1);
        }
    }

    fn on_connect(&mut self, host: &str, id: ProcessId, ts: Timestamp, f: ConnFields) {
        let canon = |ip: Option<IpAddr>| ip.map(|i| i.to_canonical());
        let (local_ip, local_port, remote_ip, remote_port) = match f.direction {
            ConnDirection::Outbound => (
                canon(f.src_ip),
                f.src_port,
                Some(f.dest_ip.to_canonical()),
                Some(f.dest_port),
            ),
            ConnDirection::Inbound => (
                Some(f.dest_ip.to_canonical()),
                Some(f.dest_port),
                canon(f.src_ip),
                f.src_port,
            ),
        };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        let mut conn = ConnRecord {
            ts,
            proto: f.proto,
            direction: f.direction,
            local_ip,
            local_port,
            remote_ip,
            remote_port,
            seq,
            indexed: false,
            by_guid: f.by_guid,
        };
        let key = RemoteKey::of(&conn);
        conn.indexed = key.is_some();
        if key.is_none() {
            self.stats.unindexable_connections =
                self.stats.unindexable_connections.saturating_add(1);
        }
        let cap = self.config.max_connections_per_process.max(1);
        let Some(rec) = self.records.get_mut(&id) else {
            return;
        };
        let mut dropped = Vec::new();
        while rec.connections.len() >= cap {
            if let Some(old) = rec.connections.pop_front() {
                rec.connections_dropped = rec.connections_dropped.saturating_add(1);
                dropped.push(old);
            } else {
                break;
            }
        }
        // Keep `connections` sorted by seq (binary search in lookups).
        rec.connections.push_back(conn);
        self.stats.connections_dropped = self
            .stats
            .connections_dropped
            .saturating_add(u64::try_from(dropped.len()).unwrap_or(u64::MAX));
        let Some(state) = self.hosts.get_mut(host) else {
            return;
        };
        for old in dropped {
            unindex_conn(state, id, &old);
        }
        if let Some(key) = key {
            state
                .by_remote
                .entry(key)
                .or_default()
                .push(ConnRef { id, seq });
        }
    }

    // ---- eviction ----

    fn expire_host(&mut self, host: &str, now: Timestamp) {
        let window = self.config.time_window_ns;
        loop {
            let first = self.hosts.get(host).and_then(|s| s.exits.first().copied());
            match first {
                Some((exit, id)) if exit.saturating_add_nanos(window) < now => {
                    self.remove(id);
                    self.stats.evicted_expired = self.stats.evicted_expired.saturating_add(1);
                }
                _ => break,
            }
        }
    }

    /// Evict one record to make room: the oldest exited, else the least recently active.
    fn evict_one_for_cap(&mut self) -> bool {
        if let Some((_, id)) = self.exited.first().copied() {
            self.remove(id);
            self.stats.evicted_cap_exited = self.stats.evicted_cap_exited.saturating_add(1);
            return true;
        }
        if let Some((_, id)) = self.activity.first().copied() {
            self.remove(id);
            self.stats.evicted_cap_live = self.stats.evicted_cap_live.saturating_add(1);
            return true;
        }
        false
    }

    fn remove(&mut self, id: ProcessId) {
        let Some(rec) = self.records.remove(&id) else {
            // Keep the ordered sets consistent even if a stale entry slipped in.
            self.exited.retain(|(_, i)| *i != id);
            self.activity.retain(|(_, i)| *i != id);
            return;
        };
        self.activity.remove(&(rec.last_seen, id));
        if let Some(e) = rec.exit {
            self.exited.remove(&(e, id));
        }
        let Some(state) = self.hosts.get_mut(&rec.host) else {
            return;
        };
        state.records = state.records.saturating_sub(1);
        if let Some(e) = rec.exit {
            state.exits.remove(&(e, id));
        }
        if let Some(g) = &rec.guid
            && state.by_guid.get(g) == Some(&id)
        {
            state.by_guid.remove(g);
        }
        if let Some(gens) = state.by_pid.get_mut(&rec.pid) {
            gens.retain(|g| *g != id);
            if gens.is_empty() {
                state.by_pid.remove(&rec.pid);
            }
        }
        for c in &rec.connections {
            unindex_conn(state, id, c);
        }
        // Host states are dropped lazily by `drop_host_if_empty`, so that a caller in
        // the middle of an ingest keeps its host's clock.
    }

    fn drop_host_if_empty(&mut self, host: &str) {
        if self.hosts.get(host).is_some_and(|s| s.records == 0) {
            self.hosts.remove(host);
        }
    }
}

fn unindex_conn(state: &mut HostState, id: ProcessId, c: &ConnRecord) {
    if !c.indexed {
        return;
    }
    let Some(key) = RemoteKey::of(c) else {
        return;
    };
    if let Some(v) = state.by_remote.get_mut(&key) {
        v.retain(|r| !(r.id == id && r.seq == c.seq));
        if v.is_empty() {
            state.by_remote.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Platform;

    const S: u64 = 1_000_000_000;
    const T0: u64 = 1_795_000_000 * S;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_nanos(T0 + secs * S)
    }

    fn ev(ts: Timestamp, kind: HostEventKind) -> HostEvent {
        HostEvent {
            timestamp: ts,
            host: "ws-17".into(),
            platform: Platform::Linux,
            kind,
        }
    }

    fn start(ts: Timestamp, pid: u32, image: &str, guid: Option<&str>) -> HostEvent {
        ev(
            ts,
            HostEventKind::ProcessStart {
                pid,
                ppid: Some(1),
                image: image.into(),
                cmdline: Some(format!("{image} --run")),
                user: Some("alice".into()),
                process_guid: guid.map(Into::into),
                parent_image: None,
                parent_guid: None,
            },
        )
    }

    fn connect(
        ts: Timestamp,
        pid: u32,
        sport: Option<u16>,
        dport: u16,
        guid: Option<&str>,
    ) -> HostEvent {
        ev(
            ts,
            HostEventKind::NetworkConnect {
                pid,
                image: None,
                proto: HostProto::Tcp,
                src_ip: sport.map(|_| "10.0.0.5".parse().unwrap()),
                src_port: sport,
                dest_ip: "203.0.113.9".parse().unwrap(),
                dest_port: dport,
                direction: ConnDirection::Outbound,
                process_guid: guid.map(Into::into),
            },
        )
    }

    fn module(ts: Timestamp, pid: u32, path: &str, guid: Option<&str>) -> HostEvent {
        ev(
            ts,
            HostEventKind::ModuleLoad {
                pid,
                image: None,
                module: path.into(),
                process_guid: guid.map(Into::into),
            },
        )
    }

    fn exit(ts: Timestamp, pid: u32, guid: Option<&str>) -> HostEvent {
        ev(
            ts,
            HostEventKind::ProcessExit {
                pid,
                process_guid: guid.map(Into::into),
            },
        )
    }

    fn lookup<'a>(
        idx: &'a HostIndex,
        sport: Option<u16>,
        dport: u16,
        ts: Timestamp,
        skew: i64,
    ) -> Option<ConnMatch<'a>> {
        idx.lookup_connection(
            Some("ws-17"),
            HostProto::Tcp,
            ("10.0.0.5".parse().unwrap(), sport),
            ("203.0.113.9".parse().unwrap(), dport),
            ts,
            10 * S,
            skew,
        )
    }

    fn image_of(m: Option<ConnMatch<'_>>) -> Option<String> {
        m.and_then(|m| m.process.image.clone())
    }

    #[test]
    fn pid_reuse_joins_each_connection_to_the_right_process() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 4242, "/usr/bin/curl", None));
        idx.ingest(connect(at(1), 4242, Some(50000), 443, None));
        // curl's exit was never reported; a new process takes the pid.
        idx.ingest(start(at(20), 4242, "/usr/bin/python3", None));
        idx.ingest(connect(at(21), 4242, Some(50001), 4444, None));
        idx.ingest(connect(at(22), 4242, Some(50002), 443, None));

        assert_eq!(
            image_of(lookup(&idx, Some(50000), 443, at(1), 0)).as_deref(),
            Some("/usr/bin/curl")
        );
        assert_eq!(
            image_of(lookup(&idx, Some(50001), 4444, at(21), 0)).as_deref(),
            Some("/usr/bin/python3")
        );
        assert_eq!(
            image_of(lookup(&idx, Some(50002), 443, at(22), 0)).as_deref(),
            Some("/usr/bin/python3")
        );
        assert_eq!(
            idx.process_at("ws-17", 4242, at(5))
                .and_then(|p| p.image.as_deref()),
            Some("/usr/bin/curl")
        );
        assert_eq!(
            idx.process_at("ws-17", 4242, at(30))
                .and_then(|p| p.image.as_deref()),
            Some("/usr/bin/python3")
        );
        let curl = idx.process_at("ws-17", 4242, at(5)).unwrap();
        assert_eq!(curl.exit, Some(at(20)));
        assert!(curl.exit_inferred);
        assert_eq!(idx.stats().pid_reuse_inferred_exits, 1);
    }

    #[test]
    fn pid_reuse_with_explicit_exit_keeps_generations_apart() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 7, "/bin/a", None));
        idx.ingest(exit(at(10), 7, None));
        idx.ingest(start(at(60), 7, "/bin/b", None));
        // A connection between the two lifetimes (farther than the skew from both)
        // must not join either: it gets a provisional record.
        idx.ingest(connect(at(35), 7, Some(40000), 80, None));
        let m = lookup(&idx, Some(40000), 80, at(35), 0).unwrap();
        assert!(m.process.provisional);
        assert_eq!(m.process.image, None);
        assert_eq!(idx.stats().pid_reuse_inferred_exits, 0);
    }

    #[test]
    fn connect_before_process_start_is_adopted() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        // Stamped 1 s before its own process_start and delivered first.
        idx.ingest(connect(at(9), 500, Some(50514), 4444, None));
        idx.ingest(module(
            at(9),
            500,
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            None,
        ));
        idx.ingest(start(at(10), 500, "/usr/bin/python3", None));
        let m = lookup(&idx, Some(50514), 4444, at(9), 0).unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/usr/bin/python3"));
        assert!(!m.process.provisional);
        assert_eq!(m.process.crypto_modules.len(), 1);
        assert_eq!(idx.len(), 1);
        let st = idx.stats();
        assert_eq!(st.out_of_order_adoptions, 1);
        assert_eq!(st.provisional_created, 1);
    }

    #[test]
    fn start_does_not_adopt_provisional_far_before_it() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        // An old process (start never seen) used pid 600 a minute earlier.
        idx.ingest(connect(at(0), 600, Some(1111), 22, None));
        idx.ingest(start(at(60), 600, "/usr/bin/new", None));
        let m = lookup(&idx, Some(1111), 22, at(0), 0).unwrap();
        assert!(m.process.provisional);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.stats().out_of_order_adoptions, 0);
    }

    #[test]
    fn guid_start_adopts_provisional_despite_large_skew() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        // Sysmon EID 3 stamped 33 h before the EID 1 of the same ProcessGuid.
        let guid = "{a1b2c3d4-0000-1111-2222-333344445555}";
        let g = Some(guid);
        idx.ingest(connect(at(0), 3000, Some(51745), 8443, g));
        idx.ingest(start(at(33 * 3600), 3000, r"C:\Users\x\payload.exe", g));
        let rec = idx.process_by_guid("ws-17", guid).unwrap();
        assert_eq!(rec.image.as_deref(), Some(r"C:\Users\x\payload.exe"));
        assert_eq!(rec.connections.len(), 1);
        assert_eq!(idx.stats().out_of_order_adoptions, 1);
        // The wire saw the flow 33 h after the host's stamp: the skew corrects it.
        let skew = -(33 * 3600 * S as i64);
        let m = lookup(&idx, Some(51745), 8443, at(33 * 3600), skew).unwrap();
        assert_eq!(m.process.id, rec.id);
        assert!(m.quality.guid && m.quality.full_tuple);
        assert!(lookup(&idx, Some(51745), 8443, at(33 * 3600), 0).is_none());
    }

    #[test]
    fn guid_keyed_event_beats_pid_lookup() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 100, "/bin/first", Some("g-1")));
        idx.ingest(start(at(5), 100, "/bin/second", Some("g-2")));
        // Stamped when pid 100 belonged to "second", but the guid names "first".
        idx.ingest(connect(at(6), 100, Some(2000), 443, Some("g-1")));
        let m = lookup(&idx, Some(2000), 443, at(6), 0).unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/bin/first"));
        assert!(m.quality.guid);
    }

    #[test]
    fn guid_match_ranks_above_pid_only_match_at_same_tuple() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 1, "/bin/pid-only", None));
        idx.ingest(start(at(0), 2, "/bin/with-guid", Some("g")));
        idx.ingest(connect(at(3), 1, Some(3000), 443, None));
        idx.ingest(connect(at(3), 2, Some(3000), 443, Some("g")));
        let m = lookup(&idx, Some(3000), 443, at(3), 0).unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/bin/with-guid"));
    }

    #[test]
    fn dest_only_connection_matches_flow_with_any_source_port() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 77, "/usr/bin/php", None));
        // auditd connect(): destination only.
        idx.ingest(connect(at(2), 77, None, 11211, None));
        let m = lookup(&idx, Some(40404), 11211, at(2), 0).unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/usr/bin/php"));
        assert!(m.quality.dest_only);
        assert!(!m.quality.full_tuple);
        // Another destination port does not match.
        assert!(lookup(&idx, Some(40404), 11212, at(2), 0).is_none());
    }

    #[test]
    fn flow_without_local_port_still_finds_connection_by_destination() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 10, "/bin/x", None));
        idx.ingest(connect(at(1), 10, Some(5555), 443, None));
        let m = lookup(&idx, None, 443, at(1), 0).unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/bin/x"));
        assert!(m.quality.dest_only && !m.quality.full_tuple);
        assert!(lookup(&idx, None, 444, at(1), 0).is_none());
    }

    #[test]
    fn full_tuple_beats_closer_dest_only() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 10, "/bin/exact", None));
        idx.ingest(start(at(0), 11, "/bin/partial", None));
        idx.ingest(connect(at(5), 10, Some(5555), 443, None));
        idx.ingest(connect(at(8), 11, None, 443, None));
        let m = lookup(&idx, Some(5555), 443, at(8), 0).unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/bin/exact"));
        assert!(m.quality.full_tuple);
        assert_eq!(m.quality.time_delta_ns, -3 * S as i64);
    }

    #[test]
    fn different_source_port_is_rejected() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 10, "/bin/x", None));
        idx.ingest(connect(at(1), 10, Some(5555), 443, None));
        assert!(lookup(&idx, Some(5556), 443, at(1), 0).is_none());
    }

    #[test]
    fn clock_skew_is_corrected_in_both_directions() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 10, "/bin/x", None));
        idx.ingest(connect(at(100), 10, Some(6000), 443, None));
        // Host clock 60 s ahead of the sensor: flow at sensor time 40 s.
        assert!(lookup(&idx, Some(6000), 443, at(40), 0).is_none());
        let m = lookup(&idx, Some(6000), 443, at(40), 60 * S as i64).unwrap();
        assert_eq!(m.quality.time_delta_ns, 0);
        // Host clock 60 s behind: flow at sensor time 160 s.
        assert!(lookup(&idx, Some(6000), 443, at(160), 0).is_none());
        let m = lookup(&idx, Some(6000), 443, at(163), -60 * S as i64).unwrap();
        assert_eq!(m.quality.time_delta_ns, -3 * S as i64);
        // The window applies on both sides of the corrected time.
        assert!(lookup(&idx, Some(6000), 443, at(111), 0).is_none());
        assert!(lookup(&idx, Some(6000), 443, at(89), 0).is_none());
        assert!(lookup(&idx, Some(6000), 443, at(90), 0).is_some());
    }

    #[test]
    fn exited_process_is_evicted_after_window() {
        let cfg = HostIndexConfig {
            time_window_ns: 60 * S,
            ..HostIndexConfig::default()
        };
        let mut idx = HostIndex::new(cfg);
        idx.ingest(start(at(0), 10, "/bin/gone", None));
        idx.ingest(connect(at(1), 10, Some(7000), 443, None));
        idx.ingest(exit(at(2), 10, None));
        idx.ingest(start(at(50), 11, "/bin/other", None));
        assert!(
            lookup(&idx, Some(7000), 443, at(1), 0).is_some(),
            "still joinable"
        );
        idx.ingest(start(at(63), 12, "/bin/later", None));
        assert!(lookup(&idx, Some(7000), 443, at(1), 0).is_none());
        assert!(idx.process_at("ws-17", 10, at(1)).is_none());
        assert_eq!(idx.stats().evicted_expired, 1);
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn expire_evicts_on_quiet_hosts() {
        let cfg = HostIndexConfig {
            time_window_ns: 60 * S,
            ..HostIndexConfig::default()
        };
        let mut idx = HostIndex::new(cfg);
        idx.ingest(start(at(0), 10, "/bin/gone", None));
        idx.ingest(exit(at(2), 10, None));
        idx.expire(at(30));
        assert_eq!(idx.len(), 1);
        idx.expire(at(100));
        assert!(idx.is_empty());
        assert_eq!(idx.stats().hosts, 0);
    }

    #[test]
    fn record_cap_evicts_oldest_exited_first_then_least_active() {
        let cfg = HostIndexConfig {
            max_processes: 3,
            ..HostIndexConfig::default()
        };
        let mut idx = HostIndex::new(cfg);
        idx.ingest(start(at(0), 1, "/bin/a", None));
        idx.ingest(start(at(1), 2, "/bin/b", None));
        idx.ingest(start(at(2), 3, "/bin/c", None));
        idx.ingest(exit(at(3), 2, None));
        idx.ingest(start(at(4), 4, "/bin/d", None));
        assert_eq!(idx.len(), 3);
        assert!(
            idx.process_at("ws-17", 2, at(1)).is_none(),
            "exited b went first"
        );
        assert!(idx.process_at("ws-17", 1, at(4)).is_some());
        idx.ingest(connect(at(5), 1, Some(1), 443, None)); // a is active again
        idx.ingest(start(at(6), 5, "/bin/e", None));
        assert_eq!(idx.len(), 3);
        assert!(
            idx.process_at("ws-17", 3, at(6)).is_none(),
            "c was least active"
        );
        assert!(idx.process_at("ws-17", 1, at(6)).is_some());
        let st = idx.stats();
        assert_eq!(st.evicted_cap_exited, 1);
        assert_eq!(st.evicted_cap_live, 1);
    }

    #[test]
    fn connection_cap_drops_oldest_and_unindexes_it() {
        let cfg = HostIndexConfig {
            max_connections_per_process: 2,
            ..HostIndexConfig::default()
        };
        let mut idx = HostIndex::new(cfg);
        idx.ingest(start(at(0), 1, "/bin/beacon", None));
        for i in 0..5u16 {
            idx.ingest(connect(at(1 + u64::from(i)), 1, Some(50000 + i), 80, None));
        }
        let rec = idx.process_at("ws-17", 1, at(1)).unwrap();
        assert_eq!(rec.connections.len(), 2);
        assert_eq!(rec.connections_dropped, 3);
        assert!(lookup(&idx, Some(50000), 80, at(1), 0).is_none());
        assert!(lookup(&idx, Some(50004), 80, at(5), 0).is_some());
        assert_eq!(idx.stats().connections_dropped, 3);
    }

    #[test]
    fn crypto_modules_are_classified_deduplicated_and_windowed() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(
            at(0),
            1,
            r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            Some("g"),
        ));
        idx.ingest(module(
            at(1),
            1,
            r"C:\Windows\System32\kernel32.dll",
            Some("g"),
        ));
        idx.ingest(module(
            at(2),
            1,
            r"C:\Windows\System32\rsaenh.dll",
            Some("g"),
        ));
        idx.ingest(module(
            at(3),
            1,
            r"C:\Windows\System32\RSAENH.DLL",
            Some("g"),
        ));
        idx.ingest(module(
            at(100),
            1,
            r"C:\Windows\System32\schannel.dll",
            Some("g"),
        ));
        let rec = idx.process_by_guid("ws-17", "g").unwrap();
        assert_eq!(rec.modules_loaded, 4);
        assert_eq!(rec.crypto_modules.len(), 2);
        let id = rec.id;
        let names: Vec<_> = idx
            .crypto_loads_before(id, at(10), 30 * S)
            .map(|m| m.lib.name.to_string())
            .collect();
        assert_eq!(names, vec!["rsaenh.dll"]);
        assert_eq!(idx.crypto_loads_before(id, at(150), 60 * S).count(), 1);
        assert_eq!(idx.crypto_loads_before(id, at(150), 200 * S).count(), 2);
    }

    #[test]
    fn parent_image_is_resolved_from_parent_record() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 1, "/sbin/init", None));
        idx.ingest(start(at(1), 300, "/bin/bash", None));
        let rec = idx.process_at("ws-17", 300, at(1)).unwrap();
        assert_eq!(rec.parent_image.as_deref(), Some("/sbin/init"));
    }

    #[test]
    fn inbound_connection_matches_with_remote_as_client() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 9, "/usr/sbin/sshd", None));
        idx.ingest(ev(
            at(1),
            HostEventKind::NetworkConnect {
                pid: 9,
                image: None,
                proto: HostProto::Tcp,
                src_ip: Some("198.51.100.7".parse().unwrap()),
                src_port: Some(61000),
                dest_ip: "10.0.0.5".parse().unwrap(),
                dest_port: 22,
                direction: ConnDirection::Inbound,
                process_guid: None,
            },
        ));
        let m = idx
            .lookup_connection(
                None,
                HostProto::Tcp,
                ("10.0.0.5".parse().unwrap(), Some(22)),
                ("198.51.100.7".parse().unwrap(), 61000),
                at(1),
                S,
                0,
            )
            .unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/usr/sbin/sshd"));
        assert!(m.quality.full_tuple);
    }

    #[test]
    fn unspecified_endpoints_are_kept_but_not_joinable() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 9, "/usr/bin/java", None));
        idx.ingest(ev(
            at(1),
            HostEventKind::NetworkConnect {
                pid: 9,
                image: None,
                proto: HostProto::Tcp,
                src_ip: Some("0.0.0.0".parse().unwrap()),
                src_port: Some(0),
                dest_ip: "0.0.0.0".parse().unwrap(),
                dest_port: 0,
                direction: ConnDirection::Outbound,
                process_guid: None,
            },
        ));
        assert_eq!(idx.stats().unindexable_connections, 1);
        assert_eq!(
            idx.process_at("ws-17", 9, at(1)).unwrap().connections.len(),
            1
        );
    }

    #[test]
    fn ipv4_mapped_addresses_match_plain_ipv4() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 9, "/bin/x", None));
        idx.ingest(ev(
            at(1),
            HostEventKind::NetworkConnect {
                pid: 9,
                image: None,
                proto: HostProto::Tcp,
                src_ip: Some("::ffff:10.0.0.5".parse().unwrap()),
                src_port: Some(1234),
                dest_ip: "::ffff:203.0.113.9".parse().unwrap(),
                dest_port: 443,
                direction: ConnDirection::Outbound,
                process_guid: None,
            },
        ));
        assert!(
            lookup(&idx, Some(1234), 443, at(1), 0)
                .unwrap()
                .quality
                .full_tuple
        );
    }

    #[test]
    fn connect_after_exit_within_skew_moves_to_late_starting_successor() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 7, "/bin/a", None));
        idx.ingest(exit(at(10), 7, None));
        // B (pid 7 again) connects at 12; its start (11) is delivered after the connect.
        idx.ingest(connect(at(12), 7, Some(1200), 443, None));
        assert_eq!(
            image_of(lookup(&idx, Some(1200), 443, at(12), 0)).as_deref(),
            Some("/bin/a"),
            "before B's start only A is known"
        );
        idx.ingest(start(at(11), 7, "/bin/b", None));
        assert_eq!(
            image_of(lookup(&idx, Some(1200), 443, at(12), 0)).as_deref(),
            Some("/bin/b")
        );
        assert_eq!(idx.stats().rehomed_events, 1);
    }

    #[test]
    fn events_after_late_start_leave_open_predecessor() {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        idx.ingest(start(at(0), 7, "/bin/a", None));
        idx.ingest(connect(at(5), 7, Some(1000), 443, None));
        idx.ingest(connect(at(21), 7, Some(1001), 443, None));
        idx.ingest(module(at(21), 7, "/usr/lib/libssl.so.3", None));
        idx.ingest(start(at(20), 7, "/bin/b", None));
        assert_eq!(
            image_of(lookup(&idx, Some(1000), 443, at(5), 0)).as_deref(),
            Some("/bin/a")
        );
        let m = lookup(&idx, Some(1001), 443, at(21), 0).unwrap();
        assert_eq!(m.process.image.as_deref(), Some("/bin/b"));
        assert_eq!(m.process.crypto_modules.len(), 1);
        let a = idx.process_at("ws-17", 7, at(5)).unwrap();
        assert!(a.crypto_modules.is_empty());
        assert_eq!(a.connections.len(), 1);
        assert_eq!(a.exit, Some(at(20)));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// One process of the ground truth: pid generation with its lifetime.
        #[derive(Debug, Clone)]
        struct Proc {
            duration: u64,
            gap: u64,
            explicit_exit: bool,
            guid: bool,
            conn_offsets: Vec<u64>,
        }

        fn proc_strategy() -> impl Strategy<Value = Proc> {
            (
                1u64..50,
                6u64..60,
                any::<bool>(),
                any::<bool>(),
                proptest::collection::vec(0u64..50, 0..4),
            )
                .prop_map(|(duration, gap, explicit_exit, guid, offs)| Proc {
                    duration,
                    gap,
                    explicit_exit,
                    guid,
                    conn_offsets: offs.into_iter().map(|o| o % (duration + 1)).collect(),
                })
        }

        proptest! {
            /// Whatever the PID reuse and the delivery reordering (bounded by half the
            /// clock skew), every connection joins the process that made it.
            #[test]
            fn reordered_events_never_join_the_wrong_process(
                pids in proptest::collection::vec(
                    proptest::collection::vec(proc_strategy(), 1..4), 1..4),
                jitter in proptest::collection::vec(0u64..2_500, 64),
            ) {
                let mut events = Vec::new();
                let mut truth = Vec::new(); // (sport, ts, image)
                let mut sport = 10_000u16;
                for (pi, gens) in pids.iter().enumerate() {
                    let pid = 100 + pi as u32;
                    let mut t = 0u64;
                    for (gi, p) in gens.iter().enumerate() {
                        let image = format!("/bin/p{pi}g{gi}");
                        let guid = p.guid.then(|| format!("g-{pi}-{gi}"));
                        let g = guid.as_deref();
                        events.push((t * 1000, start(at(t), pid, &image, g)));
                        for off in &p.conn_offsets {
                            sport += 1;
                            let ts = at(t + off);
                            events.push(((t + off) * 1000, connect(ts, pid, Some(sport), 443, g)));
                            truth.push((sport, ts, image.clone()));
                        }
                        if p.explicit_exit {
                            events.push(((t + p.duration) * 1000, exit(at(t + p.duration), pid, g)));
                        }
                        t += p.duration + p.gap;
                    }
                }
                // Delivery order: time plus a jitter below half the skew (in ms).
                let mut keyed: Vec<(u64, usize, HostEvent)> = events
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ms, e))| (ms + jitter[i % jitter.len()], i, e))
                    .collect();
                keyed.sort_by_key(|(k, i, _)| (*k, *i));
                let mut idx = HostIndex::new(HostIndexConfig::default());
                for (_, _, e) in keyed {
                    idx.ingest(e);
                }
                for (sport, ts, image) in truth {
                    let m = idx.lookup_connection(
                        Some("ws-17"),
                        HostProto::Tcp,
                        ("10.0.0.5".parse().unwrap(), Some(sport)),
                        ("203.0.113.9".parse().unwrap(), 443),
                        ts,
                        S,
                        0,
                    );
                    let got = m.and_then(|m| m.process.image.clone());
                    prop_assert_eq!(got.as_deref(), Some(image.as_str()), "sport {}", sport);
                }
            }

            /// Arbitrary event soup never breaks the caps or panics.
            #[test]
            fn arbitrary_events_respect_caps(
                ops in proptest::collection::vec((0u8..4, 0u32..6, 0u64..400, any::<bool>(), 0u16..8), 0..200),
            ) {
                let cfg = HostIndexConfig {
                    max_processes: 8,
                    max_connections_per_process: 3,
                    max_crypto_modules_per_process: 2,
                    time_window_ns: 60 * S,
                    ..HostIndexConfig::default()
                };
                let mut idx = HostIndex::new(cfg);
                for (kind, pid, t, has_guid, port) in ops {
                    let g = has_guid.then(|| format!("g{pid}"));
                    let g = g.as_deref();
                    let e = match kind {
                        0 => start(at(t), pid, "/bin/x", g),
                        1 => connect(at(t), pid, Some(port), 443, g),
                        2 => module(at(t), pid, if port % 2 == 0 { "/lib/libssl.so.3" } else { "/lib/libsodium.so.23" }, g),
                        _ => exit(at(t), pid, g),
                    };
                    idx.ingest(e);
                    prop_assert!(idx.len() <= 8);
                    for rec in idx.records.values() {
                        prop_assert!(rec.connections.len() <= 3);
                        prop_assert!(rec.crypto_modules.len() <= 2);
                    }
                    let refs: usize = idx.hosts.values().flat_map(|h| h.by_remote.values()).map(Vec::len).sum();
                    let indexed: usize = idx.records.values().flat_map(|r| r.connections.iter()).filter(|c| c.indexed).count();
                    prop_assert_eq!(refs, indexed);
                    let gens: usize = idx.hosts.values().flat_map(|h| h.by_pid.values()).map(Vec::len).sum();
                    prop_assert_eq!(gens, idx.len());
                    prop_assert_eq!(idx.activity.len(), idx.len());
                }
            }
        }
    }

    #[test]
    fn long_strings_are_capped_at_char_boundary() {
        let cfg = HostIndexConfig {
            max_string_len: 5,
            ..HostIndexConfig::default()
        };
        let mut idx = HostIndex::new(cfg);
        idx.ingest(start(at(0), 1, "/bin/ééé", None));
        let rec = idx.process_at("ws-17", 1, at(0)).unwrap();
        assert_eq!(rec.image.as_deref(), Some("/bin/"));
        assert_eq!(cap_string("aéb".into(), 2), "a");
    }
}
