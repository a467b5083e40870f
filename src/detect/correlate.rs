//! Host ↔ flow correlation: join a flow to the process that opened (or accepted) it,
//! then run the host-aware analytics AN0400–AN0403 and AN1496, and emit AN0404 enriched
//! with the process. The [`Correlator`] is the one place that emits alerts.
//!
//! # The join
//!
//! At each verdict point the flow is looked up in the [`HostIndex`]: first as
//! (client → server), i.e. a connection the client host opened, then swapped (a
//! monitored server that accepted it). The host clock is trusted to within
//! `clock_skew_secs`, and the connection must lie within `time_window_secs` (plus the
//! skew) of the flow's first packet, either side. When that finds nothing, a process
//! identified by a guid *and* the full 5-tuple is still accepted within
//! `guid_max_skew_secs` (real Sysmon data has EID 3 stamped hours off EID 1 of the same
//! ProcessGuid); reasons say so. PIDs are reused, so a guid and a full 5-tuple outrank
//! pid and destination (the index ranks candidates that way); `pid 0` means "unknown
//! pid, joined on guid".
//!
//! # Which analytic
//!
//! By the platform of the process's host (the latest event's `platform`, else the
//! image path's shape): windows → AN0400, linux → AN0401, macos → AN0402, esxi →
//! AN0403; AN1496 runs for every platform (it rests on TLS). AN0400–AN0403 never fire
//! without a joined process: a network half alone is AN0404's job. A host half alone
//! (crypto load, no suspicious egress) emits nothing.
//!
//! # Network halves
//!
//! Egress (client → server for an outbound join, the other way for an accepted one) is
//! random when its sample has at least AN0404's `min_sample_len` bytes, passes the
//! length-aware test exactly as AN0404 does (`an0404::random_confidence` at AN0404's
//! `random_confidence`) and
//! its normalised entropy (`Randomness::score`) reaches the analytic's threshold. It
//! counts only when no known encrypted protocol explains it (TLS to a normal peer is
//! what browsers do), unless the TLS inspector's AN1496 finding flags the session.
//!
//! # Host halves and scoring
//!
//! Crypto-library loads of the right class (from `host::crypto_libs`) within the
//! analytic's `time_window` of the host's connection time, either side. No load is
//! "unknown", not "clean": the alert stays, at a lower score and severity, and says so.
//! Scores combine by noisy-or; a joined alert with a load is High (Critical at ≥ 0.85),
//! which is more than AN0404's network-only finding. Baseline departures (detect mode)
//! add reasons and score.
//!
//! # Bounds
//!
//! One small record per open flow (which analytics fired), capped at
//! [`CorrelationConfig::max_flows`]; dropped at `ended`. Never panics on input.

use crate::detect::an0404::{An0404Config, An0404Finding};
use crate::detect::baseline::{Baseline, BaselineMode, Departures, Observation};
use crate::detect::score::{basename, matches_any, noisy_or};
use crate::detect::{DetectConfig, DetectError, Severity, an0400, an0401, an0402, an0403, an1496};
use crate::host::HostProto;
use crate::host::Platform;
use crate::host::crypto_libs::{CryptoClass, EvidenceWeight};
use crate::host::index::{ConnMatch, HostIndex, ProcessRecord, clamp_i64, signed_delta};
use crate::inspect::entropy::Randomness;
use crate::inspect::protocol::AppProto;
use crate::inspect::tls::{An1496Finding, TlsSummary};
use crate::output::AlertProcess;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

const NS: u64 = 1_000_000_000;

/// Tunables of the join (config section `[correlation]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    /// How far host clocks may be off the sensor's, seconds, either way. Default 120.
    pub clock_skew_secs: u64,
    /// How far a host's connection event may be from the flow's first packet, seconds,
    /// either way (added to the skew). Default 300.
    pub time_window_secs: u64,
    /// Largest skew accepted when the process has a guid and the full 5-tuple matches,
    /// seconds. Default 172 800 (48 h; OTRF data has 33 h). 0 turns it off.
    pub guid_max_skew_secs: u64,
    /// Most flows with a per-flow record at once. Default 65 536.
    pub max_flows: usize,
    /// Known clock offsets of individual hosts: host name → seconds its clock runs ahead
    /// of the sensor's (negative: behind). A configured host is never estimated.
    /// Default: empty.
    pub host_clock_offset_secs: BTreeMap<String, i64>,
    /// Estimate each host's clock offset from connections seen on both host and wire
    /// (joined on the full 5-tuple): the median of the last
    /// [`SKEW_SAMPLES`] offsets, used once [`SKEW_MIN_SAMPLES`] agree on it. Joins of
    /// that host are then timed on the corrected clock. Default: true.
    pub estimate_clock_skew: bool,
}

/// Offsets kept per host for the clock-skew estimate.
pub const SKEW_SAMPLES: usize = 15;
/// Joined connections a host needs before its estimated offset is used.
pub const SKEW_MIN_SAMPLES: usize = 3;
/// Hosts with a clock-skew estimate at once (beyond it, new hosts are not estimated).
const MAX_SKEW_HOSTS: usize = 4096;

/// The last few host-minus-sensor offsets of one host.
#[derive(Clone, Debug, Default)]
struct SkewTrack {
    samples: [i64; SKEW_SAMPLES],
    len: usize,
    next: usize,
}

impl SkewTrack {
    fn push(&mut self, ns: i64) {
        if let Some(slot) = self.samples.get_mut(self.next) {
            *slot = ns;
        }
        self.next = (self.next + 1) % SKEW_SAMPLES;
        self.len = (self.len + 1).min(SKEW_SAMPLES);
    }

    /// The median offset, once there are enough samples.
    fn estimate(&self) -> Option<i64> {
        if self.len < SKEW_MIN_SAMPLES {
            return None;
        }
        let mut v: Vec<i64> = self.samples.get(..self.len)?.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            clock_skew_secs: 120,
            time_window_secs: 300,
            guid_max_skew_secs: 172_800,
            max_flows: 65_536,
            host_clock_offset_secs: BTreeMap::new(),
            estimate_clock_skew: true,
        }
    }
}

/// What the engine knows about a flow at one verdict point.
#[derive(Clone, Debug)]
pub struct FlowVerdictInput<'a> {
    /// The engine's flow id.
    pub flow_id: u64,
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub proto: u8,
    /// Initiator (SYN sender, else first sender).
    pub client: (IpAddr, u16),
    /// Responder.
    pub server: (IpAddr, u16),
    /// First packet.
    pub start: Timestamp,
    /// Packet time of this verdict point.
    pub now: Timestamp,
    /// Bytes per direction, index `Direction::index()` (0 = to server).
    pub bytes: [u64; 2],
    /// Application payload bytes per direction (transport headers and bare ACKs
    /// excluded), same indexing: what AN0401's asymmetry test compares, since on a small
    /// or one-way session the other direction's wire bytes are mostly ACK headers.
    pub payload_bytes: [u64; 2],
    /// Packets per direction.
    pub pkts: [u64; 2],
    /// Recognised protocol, `AppProto::Unknown` when none.
    pub app_proto: AppProto,
    /// Randomness of the first payload bytes of each direction.
    pub randomness: [Option<Randomness>; 2],
    /// The wire-only AN0404 finding, if it fired (suppressed ones included).
    pub an0404: Option<&'a An0404Finding>,
    /// TLS summary, when the flow is TLS.
    pub tls: Option<&'a TlsSummary>,
    /// The TLS inspector's AN1496 network finding.
    pub an1496_network: Option<&'a An1496Finding>,
    /// Last call for this flow.
    pub ended: bool,
}

/// One fired analytic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Analytic id ("AN0400" ...).
    pub analytic: &'static str,
    /// ATT&CK technique ("T1573.001" / "T1573.002").
    pub technique: &'static str,
    /// Severity.
    pub severity: Severity,
    /// 0..1.
    pub score: f32,
    /// Which evidence fired and which was missing.
    pub reasons: Vec<String>,
    /// The joined process, when there is one.
    pub process: Option<AlertProcess>,
}

/// Counters of the correlation stage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CorrelationStats {
    /// Verdict points where a join was tried.
    pub joins_attempted: u64,
    /// Joins that found a process.
    pub joins_succeeded: u64,
    /// Of those, to a guid-identified process.
    pub joins_guid: u64,
    /// Of those, on the full 5-tuple.
    pub joins_full_tuple: u64,
    /// Of those, on the destination only (local port unknown).
    pub joins_dest_only: u64,
    /// Of those, accepted only thanks to guid + 5-tuple beyond the time window.
    pub joins_guid_skewed: u64,
    /// Alerts emitted per analytic.
    pub alerts: BTreeMap<&'static str, u64>,
    /// Findings suppressed by an allowlist per analytic (once per flow).
    pub suppressed: BTreeMap<&'static str, u64>,
    /// Per-flow records dropped at the `max_flows` cap.
    pub flow_records_evicted: u64,
    /// The most recent suppression: analytic and reason.
    pub last_suppression: Option<(&'static str, String)>,
}

/// Outcome of one analytic on one flow.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Not applicable or not (yet) enough evidence.
    None,
    /// An allowlist or baseline suppressed it; the reason.
    Suppressed(String),
    /// Fired.
    Fire(Alert),
}

/// A flow joined to a process.
#[derive(Debug)]
pub(crate) struct Joined<'a> {
    pub(crate) record: &'a ProcessRecord,
    /// The host's time of the joined connection event (host clock).
    pub(crate) conn_ts: Timestamp,
    /// The process opened the flow (client side); false: it accepted it.
    pub(crate) outbound: bool,
    /// Accepted beyond the time window on guid + 5-tuple.
    pub(crate) skewed: bool,
    pub(crate) platform: Option<Platform>,
    pub(crate) reasons: Vec<String>,
}

/// Everything an analytic sees.
pub(crate) struct Ctx<'a> {
    pub(crate) input: &'a FlowVerdictInput<'a>,
    pub(crate) joined: Option<Joined<'a>>,
    pub(crate) departures: Option<Departures>,
    pub(crate) corr: &'a CorrelationConfig,
    pub(crate) random_confidence: f64,
    pub(crate) min_sample_len: u64,
}

/// The host half of an analytic.
pub(crate) struct HostHalf {
    pub(crate) score: f32,
    /// A load of at least `Weak` weight counted.
    pub(crate) loaded: bool,
    pub(crate) reasons: Vec<String>,
}

fn secs(ns: i128) -> String {
    // Display only: f64 precision is plenty for seconds.
    #[allow(clippy::cast_precision_loss, reason = "display of a time difference")]
    let s = ns as f64 / 1e9;
    format!("{s:.1} s")
}

/// Crypto loads of `classes`, not `trusted`, within `window_secs` of the connection.
pub(crate) fn host_half(
    ctx: &Ctx<'_>,
    j: &Joined<'_>,
    classes: &[CryptoClass],
    trusted: &[String],
    window_secs: u64,
) -> HostHalf {
    let window = u128::from(window_secs.saturating_add(ctx.corr.clock_skew_secs))
        .saturating_mul(u128::from(NS));
    let mut reasons = Vec::new();
    let mut scores = Vec::new();
    let mut loaded = false;
    let mut outside = 0u32;
    let mut weak_only = true;
    for m in &j.record.crypto_modules {
        if !classes.iter().any(|c| m.lib.classes.contains(*c)) {
            continue;
        }
        let name = basename(&m.path);
        if let Some(p) = matches_any(trusted, &m.path) {
            reasons.push(format!(
                "{name} is a trusted crypto library ({p}): not counted"
            ));
            continue;
        }
        let delta = i128::from(j.conn_ts.as_nanos()) - i128::from(m.first_load.as_nanos());
        let within = delta.unsigned_abs() <= window;
        if !within && !j.skewed {
            outside = outside.saturating_add(1);
            continue;
        }
        let when = if within {
            if delta >= 0 {
                format!("{} before the connection", secs(delta))
            } else {
                format!("{} after the connection event (clock skew)", secs(-delta))
            }
        } else {
            "outside time_window of the skewed connection event, same guid".to_owned()
        };
        let cls: Vec<&str> = m.lib.classes.iter().map(CryptoClass::as_str).collect();
        reasons.push(format!(
            "loaded {name} ({}, {} evidence) {when}",
            cls.join("+"),
            m.lib.weight.as_str()
        ));
        scores.push(m.lib.weight.score());
        if m.lib.weight > EvidenceWeight::VeryWeak {
            loaded = true;
            weak_only = false;
        }
    }
    if scores.is_empty() {
        if outside > 0 {
            reasons.push(format!(
                "{outside} crypto module load(s) seen but outside time_window: not counted"
            ));
        }
        reasons.push(
            "no crypto module load seen: statically linked or not audited (unknown, not clean)"
                .to_owned(),
        );
        return HostHalf {
            score: 0.25,
            loaded: false,
            reasons,
        };
    }
    if weak_only {
        reasons.push(
            "only very weak crypto evidence (a module nearly every process loads)".to_owned(),
        );
    }
    HostHalf {
        score: noisy_or(&scores),
        loaded,
        reasons,
    }
}

/// A description of the egress randomness when it passes the length-aware test and
/// reaches `threshold` normalised entropy.
pub(crate) fn egress_random(ctx: &Ctx<'_>, threshold: f64) -> Option<String> {
    let dir = match &ctx.joined {
        Some(j) if !j.outbound => 1,
        _ => 0,
    };
    let r = ctx.input.randomness.get(dir)?.as_ref()?;
    // The same measure and threshold as AN0404's, so both agree on "random".
    let random = crate::detect::an0404::random_confidence(r) >= ctx.random_confidence;
    if r.sample_len < ctx.min_sample_len || r.score < threshold || !random {
        return None;
    }
    Some(format!(
        "{:.2} bits/byte over {} bytes, {:.3} of random, p = {:.3}",
        r.bits_per_byte, r.sample_len, r.score, r.p_value
    ))
}

/// The alert's process object.
pub(crate) fn process_of(_ctx: &Ctx<'_>, j: &Joined<'_>) -> AlertProcess {
    let r = j.record;
    AlertProcess {
        host: r.host.clone(),
        pid: r.pid,
        process_guid: r.guid.clone(),
        image: r.image.clone().unwrap_or_default(),
        cmdline: r.cmdline.clone(),
        parent_image: r.parent_image.clone(),
        crypto_modules: r.crypto_modules.iter().map(|m| m.path.clone()).collect(),
    }
}

/// Lopsided-traffic test of AN0401.
pub(crate) struct Asymmetry {
    pub(crate) ratio: f64,
    pub(crate) min_bytes: u64,
}

/// What a symmetric-crypto analytic (AN0400–AN0402) checks.
pub(crate) struct SymSpec<'a> {
    pub(crate) analytic: &'static str,
    pub(crate) technique: &'static str,
    pub(crate) allowed: &'a [String],
    pub(crate) trusted_libs: &'a [String],
    pub(crate) classes: &'a [CryptoClass],
    pub(crate) entropy_threshold: f64,
    pub(crate) time_window_secs: u64,
    pub(crate) asymmetry: Option<Asymmetry>,
    /// Process-context evidence that stands in for load events (macOS).
    pub(crate) context: Option<(f32, String)>,
}

/// AN0400/AN0401/AN0402: joined process + crypto load + random or lopsided egress.
pub(crate) fn symmetric_analytic(ctx: &Ctx<'_>, spec: &SymSpec<'_>) -> Verdict {
    let Some(j) = ctx.joined.as_ref() else {
        return Verdict::None;
    };
    let image = j.record.image.as_deref().unwrap_or("");
    if let Some(p) = matches_any(spec.allowed, image) {
        return Verdict::Suppressed(format!(
            "image {image} matches allowed_crypto_processes ({p})"
        ));
    }
    let input = ctx.input;
    let mut net = Vec::new();
    let mut reasons = j.reasons.clone();
    if let Some(desc) = egress_random(ctx, spec.entropy_threshold) {
        if input.app_proto.is_encrypted() && input.an1496_network.is_none() {
            reasons.push(format!(
                "random egress ({desc}) explained by {:?}: not counted",
                input.app_proto
            ));
        } else {
            reasons.push(format!("random egress: {desc}"));
            net.push(0.7f32);
        }
    }
    if let Some(a) = &spec.asymmetry {
        let (up, down) = if j.outbound {
            (input.payload_bytes[0], input.payload_bytes[1])
        } else {
            (input.payload_bytes[1], input.payload_bytes[0])
        };
        let total = up.saturating_add(down);
        #[allow(clippy::cast_precision_loss, reason = "a ratio of byte counts")]
        let ratio = up.max(down) as f64 / (up.min(down).max(1)) as f64;
        if total >= a.min_bytes && ratio >= a.ratio {
            reasons.push(format!(
                "lopsided traffic: {up} payload bytes sent, {down} received (ratio {ratio:.1} >= {})",
                a.ratio
            ));
            net.push(0.5);
        }
    }
    if net.is_empty() {
        return Verdict::None;
    }
    let mut host = host_half(
        ctx,
        j,
        spec.classes,
        spec.trusted_libs,
        spec.time_window_secs,
    );
    let mut host_evidence = host.loaded;
    if let Some((s, r)) = &spec.context {
        host.score = host.score.max(*s);
        host.reasons.push(r.clone());
        host_evidence = true;
    }
    reasons.append(&mut host.reasons);
    let mut parts = vec![noisy_or(&net), host.score];
    if let Some(d) = &ctx.departures {
        parts.push(d.score());
        reasons.extend(d.reasons.iter().cloned());
    }
    let score = noisy_or(&parts);
    let severity = match (host_evidence, score >= 0.85) {
        (true, true) => Severity::Critical,
        (true, false) => Severity::High,
        (false, _) => Severity::Medium,
    };
    Verdict::Fire(Alert {
        analytic: spec.analytic,
        technique: spec.technique,
        severity,
        score,
        reasons,
        process: Some(process_of(ctx, j)),
    })
}

fn platform_from_image(image: &str) -> Option<Platform> {
    let lower = image.to_ascii_lowercase();
    if image.contains('\\') || lower.ends_with(".exe") {
        Some(Platform::Windows)
    } else if lower.starts_with("/system/")
        || lower.starts_with("/applications/")
        || lower.starts_with("/users/")
        || lower.starts_with("/private/")
    {
        Some(Platform::Macos)
    } else if matches!(basename(&lower), "hostd" | "vpxa" | "rhttpproxy") {
        Some(Platform::Esxi)
    } else if image.starts_with('/') {
        Some(Platform::Linux)
    } else {
        None
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct FlowRecord {
    fired: u8,
    suppressed: u8,
}

const ANALYTICS: [&str; 6] = ["AN0400", "AN0401", "AN0402", "AN0403", "AN0404", "AN1496"];

fn bit(analytic: &str) -> u8 {
    ANALYTICS
        .iter()
        .position(|a| *a == analytic)
        .and_then(|p| u32::try_from(p).ok())
        .and_then(|p| 1u8.checked_shl(p))
        .unwrap_or(0)
}

/// The correlation stage. See the module docs.
#[derive(Debug)]
pub struct Correlator {
    cfg: DetectConfig,
    random_confidence: f64,
    min_sample_len: u64,
    baseline: Option<Baseline>,
    /// Keyed by flow id; foldhash, as the flow table (SipHash showed in profiles).
    flows: HashMap<u64, FlowRecord, foldhash::fast::RandomState>,
    stats: CorrelationStats,
    skew: HashMap<String, SkewTrack>,
}

impl Correlator {
    /// A correlator with `cfg`; the randomness test uses AN0404's confidence and
    /// minimum sample, so the wire-only and host-aware analytics agree on "random".
    ///
    /// # Errors
    /// [`DetectError::MissingBaselinePath`] in baseline detect mode without a path,
    /// [`DetectError::Baseline`] when the baseline file cannot be loaded.
    pub fn new(cfg: &DetectConfig, an0404: &An0404Config) -> Result<Correlator, DetectError> {
        let baseline = match cfg.baseline.mode {
            BaselineMode::Off => None,
            BaselineMode::Learn => Some(Baseline::default()),
            BaselineMode::Detect => {
                let path = cfg
                    .baseline
                    .path
                    .as_deref()
                    .ok_or(DetectError::MissingBaselinePath)?;
                Some(Baseline::load(path)?)
            }
        };
        Ok(Correlator {
            cfg: cfg.clone(),
            random_confidence: an0404.random_confidence,
            min_sample_len: u64::try_from(an0404.min_sample_len).unwrap_or(u64::MAX),
            baseline,
            flows: HashMap::default(),
            stats: CorrelationStats::default(),
            skew: HashMap::new(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> CorrelationStats {
        self.stats.clone()
    }

    /// The baseline: what was learned (learn mode) or loaded (detect mode).
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// A host's clock minus the sensor's, nanoseconds, and where that figure comes from.
    fn host_skew(&self, host: &str) -> (i64, Option<&'static str>) {
        let c = &self.cfg.correlation;
        if let Some(secs) = c.host_clock_offset_secs.get(host) {
            let ns = i128::from(*secs) * i128::from(NS);
            return (clamp_i64(ns), Some("configured"));
        }
        if c.estimate_clock_skew
            && let Some(ns) = self.skew.get(host).and_then(SkewTrack::estimate)
        {
            return (ns, Some("estimated"));
        }
        (0, None)
    }

    fn join<'i>(
        &mut self,
        index: &'i HostIndex,
        input: &FlowVerdictInput<'_>,
    ) -> Option<Joined<'i>> {
        let proto = match input.proto {
            6 => HostProto::Tcp,
            17 => HostProto::Udp,
            _ => return None,
        };
        self.stats.joins_attempted = self.stats.joins_attempted.saturating_add(1);
        let c = &self.cfg.correlation;
        let window = c
            .time_window_secs
            .saturating_add(c.clock_skew_secs)
            .saturating_mul(NS);
        let skew_of = |h: &str| self.host_skew(h).0;
        let look = |w: u64| -> Option<(ConnMatch<'i>, bool)> {
            index
                .lookup_connection_per_host(
                    None,
                    proto,
                    (input.client.0, Some(input.client.1)),
                    input.server,
                    input.start,
                    w,
                    &skew_of,
                )
                .map(|m| (m, true))
                .or_else(|| {
                    index
                        .lookup_connection_per_host(
                            None,
                            proto,
                            (input.server.0, Some(input.server.1)),
                            input.client,
                            input.start,
                            w,
                            &skew_of,
                        )
                        .map(|m| (m, false))
                })
        };
        let mut skewed = false;
        let (m, outbound) = match look(window) {
            Some(x) => x,
            None => {
                let wide = c.guid_max_skew_secs.saturating_mul(NS);
                let (m, o) = look(wide)
                    .filter(|(m, _)| wide > window && m.quality.guid && m.quality.full_tuple)?;
                skewed = true;
                (m, o)
            }
        };
        let q = m.quality;
        let rec = m.process;
        let (skew_ns, skew_source) = self.host_skew(&rec.host);
        // A full 5-tuple match is the same connection seen twice: its raw offset is one
        // sample of the host's clock offset (taken once per flow, at its first join).
        if q.full_tuple && c.estimate_clock_skew && !self.flows.contains_key(&input.flow_id) {
            let raw = signed_delta(m.connection.ts, input.start);
            let room = self.skew.len() < MAX_SKEW_HOSTS;
            if let Some(track) = self.skew.get_mut(&rec.host) {
                track.push(clamp_i64(raw));
            } else if room {
                let mut track = SkewTrack::default();
                track.push(clamp_i64(raw));
                self.skew.insert(rec.host.clone(), track);
            }
        }
        let c = &self.cfg.correlation;
        let s = &mut self.stats;
        s.joins_succeeded = s.joins_succeeded.saturating_add(1);
        if q.guid {
            s.joins_guid = s.joins_guid.saturating_add(1);
        }
        if q.full_tuple {
            s.joins_full_tuple = s.joins_full_tuple.saturating_add(1);
        }
        if q.dest_only {
            s.joins_dest_only = s.joins_dest_only.saturating_add(1);
        }
        if skewed {
            s.joins_guid_skewed = s.joins_guid_skewed.saturating_add(1);
        }
        let how = match (q.full_tuple, q.guid) {
            (true, true) => "guid and full 5-tuple",
            (true, false) => "full 5-tuple",
            (false, true) => "guid and destination (local port unknown)",
            (false, false) => "destination only (local port unknown)",
        };
        let pid = if rec.pid == 0 {
            "unknown pid".to_owned()
        } else {
            format!("pid {}", rec.pid)
        };
        let mut reasons = vec![format!(
            "joined to {pid} {} on {} by {how}, {} apart{}",
            rec.image.as_deref().unwrap_or("(image unknown)"),
            rec.host,
            secs(i128::from(q.time_delta_ns).abs()),
            if outbound {
                ""
            } else {
                " (the process accepted the flow)"
            }
        )];
        if let Some(src) = skew_source.filter(|_| skew_ns != 0) {
            reasons.push(format!(
                "{}'s clock taken as {} {} the sensor's ({src})",
                rec.host,
                secs(i128::from(skew_ns).abs()),
                if skew_ns > 0 { "ahead of" } else { "behind" }
            ));
        }
        if skewed {
            reasons.push(format!(
                "host clock skew beyond the {} s window: joined on guid + 5-tuple only",
                c.time_window_secs.saturating_add(c.clock_skew_secs)
            ));
        }
        let platform = index
            .host_platform(&rec.host)
            .or_else(|| rec.image.as_deref().and_then(platform_from_image));
        Some(Joined {
            record: rec,
            conn_ts: m.connection.ts,
            outbound,
            skewed,
            platform,
            reasons,
        })
    }

    /// Evaluate one verdict point; returns the alerts to emit now (never the same
    /// analytic twice for one flow).
    pub fn evaluate(&mut self, index: &HostIndex, input: &FlowVerdictInput<'_>) -> Vec<Alert> {
        let joined = self.join(index, input);
        let departures = match (&joined, &mut self.baseline) {
            (Some(j), Some(b)) => {
                let image = j.record.image.as_deref().unwrap_or("");
                let dest = if j.outbound {
                    input.server
                } else {
                    input.client
                };
                let obs = Observation {
                    host: &j.record.host,
                    image,
                    crypto_modules: j
                        .record
                        .crypto_modules
                        .iter()
                        .map(|m| m.path.as_str())
                        .collect(),
                    destination: Some(std::net::SocketAddr::from(dest).to_string()),
                    ja4: input.tls.and_then(|t| t.ja4.as_deref()),
                };
                match self.cfg.baseline.mode {
                    BaselineMode::Learn => {
                        b.learn(&self.cfg.baseline, &obs);
                        None
                    }
                    BaselineMode::Detect => Some(b.departures(&obs)),
                    BaselineMode::Off => None,
                }
            }
            _ => None,
        };
        let ctx = Ctx {
            input,
            joined,
            departures,
            corr: &self.cfg.correlation,
            random_confidence: self.random_confidence,
            min_sample_len: self.min_sample_len,
        };
        let mut verdicts: Vec<(&'static str, Verdict)> = Vec::new();
        if let Some(j) = &ctx.joined {
            match j.platform {
                Some(Platform::Windows) => {
                    verdicts.push((an0400::ANALYTIC, an0400::evaluate(&self.cfg.an0400, &ctx)));
                }
                Some(Platform::Linux) => {
                    verdicts.push((an0401::ANALYTIC, an0401::evaluate(&self.cfg.an0401, &ctx)));
                }
                Some(Platform::Macos) => {
                    verdicts.push((an0402::ANALYTIC, an0402::evaluate(&self.cfg.an0402, &ctx)));
                }
                Some(Platform::Esxi) => {
                    verdicts.push((an0403::ANALYTIC, an0403::evaluate(&self.cfg.an0403, &ctx)));
                }
                None => {}
            }
        }
        verdicts.push((an1496::ANALYTIC, an1496::evaluate(&self.cfg.an1496, &ctx)));
        verdicts.push(("AN0404", self.an0404(&ctx)));
        let mut out = Vec::new();
        let full = self.flows.len() >= self.cfg.correlation.max_flows.max(1);
        if full
            && !self.flows.contains_key(&input.flow_id)
            && let Some(k) = self.flows.keys().next().copied()
        {
            self.flows.remove(&k);
            self.stats.flow_records_evicted = self.stats.flow_records_evicted.saturating_add(1);
        }
        let rec = self.flows.entry(input.flow_id).or_default();
        for (name, v) in verdicts {
            let b = bit(name);
            match v {
                Verdict::None => {}
                Verdict::Suppressed(why) => {
                    if rec.suppressed & b == 0 && rec.fired & b == 0 {
                        rec.suppressed |= b;
                        self.stats.last_suppression = Some((name, why));
                        let c = self.stats.suppressed.entry(name).or_insert(0);
                        *c = c.saturating_add(1);
                    }
                }
                Verdict::Fire(a) => {
                    if rec.fired & b == 0 {
                        rec.fired |= b;
                        let c = self.stats.alerts.entry(a.analytic).or_insert(0);
                        *c = c.saturating_add(1);
                        out.push(a);
                    }
                }
            }
        }
        if input.ended {
            self.flows.remove(&input.flow_id);
        }
        out
    }

    /// The AN0404 alert, enriched with the joined process and its platform's allowlist.
    fn an0404(&self, ctx: &Ctx<'_>) -> Verdict {
        let Some(f) = ctx.input.an0404 else {
            return Verdict::None;
        };
        if let Some(why) = &f.suppressed {
            return Verdict::Suppressed(why.clone());
        }
        let mut reasons = f.reasons.clone();
        let mut severity = f.severity;
        let mut score = f.score;
        let mut process = None;
        match &ctx.joined {
            Some(j) => {
                reasons.extend(j.reasons.iter().cloned());
                let allowed: &[String] = match j.platform {
                    Some(Platform::Windows) => &self.cfg.an0400.allowed_crypto_processes,
                    Some(Platform::Linux) => &self.cfg.an0401.allowed_crypto_processes,
                    Some(Platform::Macos) => &self.cfg.an0402.allowed_crypto_processes,
                    _ => &[],
                };
                let image = j.record.image.as_deref().unwrap_or("");
                if let Some(p) = matches_any(allowed, image) {
                    severity = Severity::from_level(severity.level().saturating_sub(1));
                    score *= 0.5;
                    reasons.push(format!(
                        "image {image} matches allowed_crypto_processes ({p}): severity lowered"
                    ));
                }
                process = Some(process_of(ctx, j));
            }
            None => reasons.push("no host telemetry joined".to_owned()),
        }
        Verdict::Fire(Alert {
            analytic: crate::detect::an0404::ANALYTIC,
            technique: crate::detect::an0404::TECHNIQUE,
            severity,
            score,
            reasons,
            process,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostEvent;
    use crate::host::index::HostIndexConfig;
    use sha2::{Digest, Sha256};

    const T0: u64 = 1_795_000_000 * NS;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_nanos(T0.saturating_add_signed(ms * 1_000_000))
    }

    /// Keystream-like bytes from SHA-256 in counter mode.
    fn random_bytes(n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        let mut i = 0u64;
        while out.len() < n {
            out.extend_from_slice(&Sha256::digest(i.to_le_bytes()));
            i += 1;
        }
        out.truncate(n);
        out
    }

    fn ev(v: serde_json::Value) -> HostEvent {
        serde_json::from_value(v).expect("valid host event")
    }

    fn start(
        host: &str,
        plat: &str,
        ms: i64,
        pid: u32,
        image: &str,
        guid: Option<&str>,
    ) -> HostEvent {
        ev(serde_json::json!({
            "timestamp": ts(ms).to_string(), "host": host, "platform": plat,
            "event": "process_start", "pid": pid, "ppid": 1, "image": image,
            "cmdline": image, "process_guid": guid, "parent_image": if plat == "macos" { "/sbin/launchd" } else { "/usr/bin/bash" }
        }))
    }

    fn load(
        host: &str,
        plat: &str,
        ms: i64,
        pid: u32,
        module: &str,
        guid: Option<&str>,
    ) -> HostEvent {
        ev(serde_json::json!({
            "timestamp": ts(ms).to_string(), "host": host, "platform": plat,
            "event": "module_load", "pid": pid, "module": module, "process_guid": guid
        }))
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "test helper mirrors the event fields"
    )]
    fn connect(
        host: &str,
        plat: &str,
        ms: i64,
        pid: u32,
        src: (&str, u16),
        dst: (&str, u16),
        guid: Option<&str>,
    ) -> HostEvent {
        ev(serde_json::json!({
            "timestamp": ts(ms).to_string(), "host": host, "platform": plat,
            "event": "network_connect", "pid": pid, "proto": "tcp",
            "src_ip": src.0, "src_port": src.1, "dest_ip": dst.0, "dest_port": dst.1,
            "direction": "outbound", "process_guid": guid
        }))
    }

    fn index(events: Vec<HostEvent>) -> HostIndex {
        let mut idx = HostIndex::new(HostIndexConfig::default());
        for e in events {
            idx.ingest(e);
        }
        idx
    }

    fn flow<'a>(
        client: (&str, u16),
        server: (&str, u16),
        start_ms: i64,
        random: bool,
    ) -> FlowVerdictInput<'a> {
        let r = if random {
            Randomness::of(&random_bytes(1024))
        } else {
            Randomness::of(b"GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n")
        };
        FlowVerdictInput {
            flow_id: 1,
            proto: 6,
            client: (client.0.parse().expect("ip"), client.1),
            server: (server.0.parse().expect("ip"), server.1),
            start: ts(start_ms),
            now: ts(start_ms + 2000),
            bytes: [1024, 1024],
            payload_bytes: [824, 824],
            pkts: [4, 4],
            app_proto: AppProto::Unknown,
            randomness: [Some(r), Some(r)],
            an0404: None,
            tls: None,
            an1496_network: None,
            ended: false,
        }
    }

    fn correlator(cfg: &DetectConfig) -> Correlator {
        Correlator::new(cfg, &An0404Config::default()).expect("correlator")
    }

    fn get<'a>(alerts: &'a [Alert], analytic: &str) -> Option<&'a Alert> {
        alerts.iter().find(|a| a.analytic == analytic)
    }

    const RUNDLL: &str = r"C:\Windows\System32\rundll32.exe";
    const G1: &str = "{11111111-0000-0000-0000-000000000001}";

    fn windows_rundll(load_ms: i64) -> HostIndex {
        index(vec![
            start("win-07", "windows", -600, 6120, RUNDLL, Some(G1)),
            load(
                "win-07",
                "windows",
                load_ms,
                6120,
                r"C:\Windows\System32\bcryptprimitives.dll",
                Some(G1),
            ),
            load(
                "win-07",
                "windows",
                load_ms + 10,
                6120,
                r"C:\Windows\System32\rsaenh.dll",
                Some(G1),
            ),
            connect(
                "win-07",
                "windows",
                30,
                6120,
                ("10.0.0.7", 49712),
                ("203.0.113.50", 8443),
                Some(G1),
            ),
        ])
    }

    #[test]
    fn rundll32_crypto_load_then_random_egress_fires_an0400_high() {
        let idx = windows_rundll(-400);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.7", 49712), ("203.0.113.50", 8443), 0, true),
        );
        let a = get(&alerts, "AN0400").expect("AN0400 fires");
        assert!(a.severity >= Severity::High, "{a:?}");
        assert_eq!(a.process.as_ref().map(|p| p.pid), Some(6120));
        assert!(
            a.reasons.iter().any(|r| r.contains("rsaenh.dll")),
            "{:?}",
            a.reasons
        );
        assert!(
            a.reasons
                .iter()
                .any(|r| r.contains("guid and full 5-tuple")),
            "{:?}",
            a.reasons
        );
        assert_eq!(c.stats().joins_full_tuple, 1);
    }

    #[test]
    fn crypto_load_outside_time_window_lowers_an0400_to_medium() {
        // Loaded 2 h before the connection: outside 300 s + 120 s skew.
        let idx = windows_rundll(-7_200_000);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.7", 49712), ("203.0.113.50", 8443), 0, true),
        );
        let a = get(&alerts, "AN0400").expect("still reported, lowered");
        assert_eq!(a.severity, Severity::Medium);
        assert!(
            a.reasons.iter().any(|r| r.contains("outside time_window")),
            "{:?}",
            a.reasons
        );
        assert!(
            a.reasons
                .iter()
                .any(|r| r.contains("statically linked or not audited"))
        );
    }

    /// A Linux host whose clock runs two hours ahead: three beacons from a guid-tracked
    /// process join on guid + 5-tuple despite the skew, which teaches the correlator the
    /// offset; a fourth connection from a process without a guid (no wide guid join
    /// possible) then joins on the corrected clock. Without the estimate it does not.
    fn skewed_host(estimate: bool, offsets: &[(&str, i64)]) -> (Vec<Option<String>>, Vec<String>) {
        const AHEAD: i64 = 7_200_000;
        let mut events = vec![
            start(
                "db-1",
                "linux",
                AHEAD,
                100,
                "/usr/bin/python3",
                Some("g-100"),
            ),
            start("db-1", "linux", AHEAD, 200, "/usr/bin/perl", None),
        ];
        for i in 0..3u16 {
            let at = 10_000 + i64::from(i) * 60_000;
            events.push(connect(
                "db-1",
                "linux",
                AHEAD + at + 5,
                100,
                ("10.1.0.5", 40_000 + i),
                ("198.51.100.7", 4444),
                Some("g-100"),
            ));
        }
        events.push(connect(
            "db-1",
            "linux",
            AHEAD + 400_000 + 5,
            200,
            ("10.1.0.5", 41_000),
            ("198.51.100.7", 4444),
            None,
        ));
        let idx = index(events);
        let mut cfg = DetectConfig::default();
        cfg.correlation.estimate_clock_skew = estimate;
        for (h, secs) in offsets {
            cfg.correlation
                .host_clock_offset_secs
                .insert((*h).to_owned(), *secs);
        }
        let mut c = correlator(&cfg);
        let mut images = Vec::new();
        let mut reasons = Vec::new();
        for (n, (port, at)) in [
            (40_000u16, 10_000i64),
            (40_001, 70_000),
            (40_002, 130_000),
            (41_000, 400_000),
        ]
        .into_iter()
        .enumerate()
        {
            let mut f = flow(("10.1.0.5", port), ("198.51.100.7", 4444), at, true);
            f.flow_id = 100 + n as u64;
            let j = c.join(&idx, &f);
            images.push(j.as_ref().and_then(|j| j.record.image.clone()));
            reasons.extend(j.map(|j| j.reasons).unwrap_or_default());
        }
        (images, reasons)
    }

    #[test]
    fn host_clock_offset_learned_from_joined_connections_times_later_joins() {
        let (images, reasons) = skewed_host(true, &[]);
        let py = Some("/usr/bin/python3".to_owned());
        assert_eq!(images[..3], [py.clone(), py.clone(), py], "{reasons:?}");
        assert_eq!(images[3].as_deref(), Some("/usr/bin/perl"), "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("db-1's clock taken as")
                && r.contains("ahead of the sensor's (estimated)")),
            "{reasons:?}"
        );
        // Without the estimate the guid-less process stays unjoined.
        let (images, _) = skewed_host(false, &[]);
        assert_eq!(images[3], None);
    }

    #[test]
    fn configured_host_clock_offset_is_used_from_the_first_flow() {
        let (images, reasons) = skewed_host(false, &[("db-1", 7_200)]);
        assert_eq!(images[3].as_deref(), Some("/usr/bin/perl"), "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("(configured)")),
            "{reasons:?}"
        );
        assert!(
            !reasons.iter().any(|r| r.contains("beyond the")),
            "{reasons:?}"
        );
    }

    #[test]
    fn same_analytic_never_fires_twice_for_one_flow() {
        let idx = windows_rundll(-400);
        let mut c = correlator(&DetectConfig::default());
        let f = flow(("10.0.0.7", 49712), ("203.0.113.50", 8443), 0, true);
        assert!(get(&c.evaluate(&idx, &f), "AN0400").is_some());
        assert!(get(&c.evaluate(&idx, &f), "AN0400").is_none());
        assert_eq!(c.stats().alerts.get("AN0400"), Some(&1));
    }

    fn linux_python(image: &str) -> HostIndex {
        index(vec![
            start("ws-17", "linux", -600, 4242, image, None),
            load(
                "ws-17",
                "linux",
                -400,
                4242,
                "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
                None,
            ),
            connect(
                "ws-17",
                "linux",
                24,
                4242,
                ("10.0.0.5", 50514),
                ("203.0.113.9", 4444),
                None,
            ),
        ])
    }

    #[test]
    fn python3_libcrypto_then_random_beacon_fires_an0401() {
        let idx = linux_python("/usr/bin/python3");
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, true),
        );
        let a = get(&alerts, "AN0401").expect("AN0401 fires");
        assert!(a.severity >= Severity::High);
        assert!(
            a.reasons
                .iter()
                .any(|r| r.contains("joined to pid 4242 /usr/bin/python3")),
            "{:?}",
            a.reasons
        );
        assert!(get(&alerts, "AN0400").is_none());
    }

    /// Keystream bytes whose p-value lies in [0.001, 0.1): random data lands there one
    /// time in ten. AN0404 (threshold 0.9 of `p / 0.001`) calls it random.
    fn random_with_modest_p_value() -> Randomness {
        (0u64..400)
            .map(|seed| {
                let mut out = Vec::with_capacity(2048);
                let mut i = 0u64;
                while out.len() < 2048 {
                    out.extend_from_slice(&Sha256::digest(
                        [seed.to_le_bytes(), i.to_le_bytes()].concat(),
                    ));
                    i += 1;
                }
                Randomness::of(&out)
            })
            .find(|r| (0.001..0.1).contains(&r.p_value))
            .expect("one seed in ten lands there")
    }

    #[test]
    fn egress_an0404_calls_random_counts_as_random_for_an0401_too() {
        let r = random_with_modest_p_value();
        assert!(crate::detect::an0404::random_confidence(&r) >= 0.9);
        let idx = linux_python("/usr/bin/python3");
        let mut c = correlator(&DetectConfig::default());
        let mut f = flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, true);
        f.randomness = [Some(r), Some(r)];
        let alerts = c.evaluate(&idx, &f);
        let a = get(&alerts, "AN0401").expect("AN0401 fires");
        assert!(
            a.reasons.iter().any(|r| r.starts_with("random egress")),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn loopback_flow_with_both_ends_local_joins_the_client_process() {
        // Both ends on one host: the client's outbound socket and the listener's
        // accepted socket carry the same addresses.
        let idx = index(vec![
            start(
                "lab",
                "linux",
                -900,
                700,
                "/usr/bin/python3.11",
                Some("g-server"),
            ),
            start(
                "lab",
                "linux",
                -600,
                4242,
                "/usr/bin/python3.11",
                Some("g-client"),
            ),
            load(
                "lab",
                "linux",
                -600,
                4242,
                "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
                Some("g-client"),
            ),
            connect(
                "lab",
                "linux",
                40,
                4242,
                ("127.0.0.1", 42924),
                ("127.0.0.1", 35095),
                Some("g-client"),
            ),
            ev(serde_json::json!({
                "timestamp": ts(40).to_string(), "host": "lab", "platform": "linux",
                "event": "network_connect", "pid": 700, "proto": "tcp",
                "src_ip": "127.0.0.1", "src_port": 42924,
                "dest_ip": "127.0.0.1", "dest_port": 35095,
                "direction": "inbound", "process_guid": "g-server"
            })),
        ]);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("127.0.0.1", 42924), ("127.0.0.1", 35095), 0, true),
        );
        let a = get(&alerts, "AN0401").expect("AN0401 fires");
        assert_eq!(a.process.as_ref().map(|p| p.pid), Some(4242));
        assert!(
            !a.reasons.iter().any(|r| r.contains("accepted the flow")),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn lopsided_payload_fires_an0401_though_acks_keep_wire_bytes_closer() {
        let idx = linux_python("/usr/bin/python3");
        let mut c = correlator(&DetectConfig::default());
        let mut f = flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, false);
        // 40 000 payload bytes out in 28 segments, 300 back; the ACKs bring the wire
        // bytes of the way back to 1 756 (ratio 23 on the wire, 133 on payload).
        f.bytes = [41_120, 1_756];
        f.payload_bytes = [40_000, 300];
        let alerts = c.evaluate(&idx, &f);
        let a = get(&alerts, "AN0401").expect("lopsided session fires AN0401");
        assert!(
            a.reasons
                .iter()
                .any(|r| r.contains("lopsided traffic: 40000 payload bytes sent, 300 received")),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn balanced_payload_does_not_fire_an0401_though_wire_bytes_look_lopsided() {
        let idx = linux_python("/usr/bin/python3");
        let mut c = correlator(&DetectConfig::default());
        let mut f = flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, false);
        // A request/response exchange in big segments one way and many small ones back.
        f.bytes = [60_000, 2_900];
        f.payload_bytes = [20_000, 1_500];
        assert!(get(&c.evaluate(&idx, &f), "AN0401").is_none());
        f.payload_bytes = [20_000, 19_000];
        assert!(get(&c.evaluate(&idx, &f), "AN0401").is_none());
    }

    #[test]
    fn allowlisted_image_with_random_egress_fires_nothing_and_counts_suppression() {
        let idx = linux_python("/usr/bin/wget");
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, true),
        );
        assert!(alerts.is_empty(), "{alerts:?}");
        assert_eq!(c.stats().suppressed.get("AN0401"), Some(&1));
    }

    #[test]
    fn curl_clean_tls_fires_nothing() {
        let idx = index(vec![
            start("ws-17", "linux", -600, 4188, "/usr/bin/curl", None),
            load(
                "ws-17",
                "linux",
                -400,
                4188,
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                None,
            ),
            connect(
                "ws-17",
                "linux",
                20,
                4188,
                ("10.0.0.5", 50500),
                ("198.51.100.10", 443),
                None,
            ),
        ]);
        let tls = TlsSummary::default();
        let mut f = flow(("10.0.0.5", 50500), ("198.51.100.10", 443), 0, true);
        f.app_proto = AppProto::Tls;
        f.tls = Some(&tls);
        let mut c = correlator(&DetectConfig::default());
        assert!(c.evaluate(&idx, &f).is_empty());
    }

    #[test]
    fn unknown_python_with_tls_random_payload_is_explained_by_protocol() {
        let idx = linux_python("/usr/bin/python3");
        let mut f = flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, true);
        f.app_proto = AppProto::Tls;
        let mut c = correlator(&DetectConfig::default());
        assert!(get(&c.evaluate(&idx, &f), "AN0401").is_none());
    }

    fn esxi(dst: &str) -> HostIndex {
        index(vec![
            start("esx-1", "esxi", -600, 2100, "/bin/hostd", None),
            connect(
                "esx-1",
                "esxi",
                20,
                2100,
                ("10.1.0.5", 40000),
                (dst, 443),
                None,
            ),
        ])
    }

    #[test]
    fn hostd_fires_an0403_only_outside_allowed_mgmt_hosts() {
        let mut c = correlator(&DetectConfig::default());
        let mut f = flow(("10.1.0.5", 40000), ("10.1.0.100", 443), 0, true);
        f.app_proto = AppProto::Tls;
        assert!(c.evaluate(&esxi("10.1.0.100"), &f).is_empty());
        let mut f = flow(("10.1.0.5", 40000), ("198.51.100.66", 443), 0, true);
        f.flow_id = 2;
        f.app_proto = AppProto::Tls;
        let alerts = c.evaluate(&esxi("198.51.100.66"), &f);
        assert!(get(&alerts, "AN0403").is_some(), "{alerts:?}");
    }

    #[test]
    fn macos_launchd_child_with_random_egress_fires_an0402_with_context_reason() {
        let idx = index(vec![
            start("mac-1", "macos", -600, 901, "/private/tmp/.xpcproxy", None),
            connect(
                "mac-1",
                "macos",
                20,
                901,
                ("10.0.0.40", 50001),
                ("203.0.113.80", 8080),
                None,
            ),
        ]);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.40", 50001), ("203.0.113.80", 8080), 0, true),
        );
        let a = get(&alerts, "AN0402").expect("AN0402 fires");
        assert!(
            a.reasons.iter().any(|r| r.contains("launchd")),
            "{:?}",
            a.reasons
        );
        assert!(
            a.reasons
                .iter()
                .any(|r| r.contains("no per-file Security.framework"))
        );
    }

    #[test]
    fn pid_reuse_joins_the_second_process() {
        let idx = index(vec![
            start("ws-17", "linux", -60_000, 5000, "/usr/bin/bash", None),
            ev(
                serde_json::json!({"timestamp": ts(-30_000).to_string(), "host": "ws-17", "platform": "linux", "event": "process_exit", "pid": 5000}),
            ),
            start("ws-17", "linux", -600, 5000, "/tmp/implant", None),
            connect(
                "ws-17",
                "linux",
                20,
                5000,
                ("10.0.0.5", 50600),
                ("203.0.113.9", 4444),
                None,
            ),
        ]);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.5", 50600), ("203.0.113.9", 4444), 0, true),
        );
        let a = get(&alerts, "AN0401").expect("joined alert");
        assert_eq!(
            a.process.as_ref().map(|p| p.image.as_str()),
            Some("/tmp/implant")
        );
        // No load at all: unknown, lowered, said.
        assert_eq!(a.severity, Severity::Medium);
    }

    #[test]
    fn clock_skew_of_hours_joins_on_guid_and_full_tuple() {
        let h = 3_600_000;
        let idx = index(vec![
            start("win-07", "windows", -5 * h - 600, 6120, RUNDLL, Some(G1)),
            load(
                "win-07",
                "windows",
                -5 * h - 400,
                6120,
                r"C:\Windows\System32\rsaenh.dll",
                Some(G1),
            ),
            connect(
                "win-07",
                "windows",
                -5 * h,
                6120,
                ("10.0.0.7", 49712),
                ("203.0.113.50", 8443),
                Some(G1),
            ),
        ]);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.7", 49712), ("203.0.113.50", 8443), 0, true),
        );
        let a = get(&alerts, "AN0400").expect("joined despite skew");
        assert!(
            a.reasons.iter().any(|r| r.contains("clock skew")),
            "{:?}",
            a.reasons
        );
        assert_eq!(c.stats().joins_guid_skewed, 1);
    }

    #[test]
    fn host_half_alone_without_egress_emits_nothing() {
        let idx = windows_rundll(-400);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(
            &idx,
            &flow(("10.0.0.7", 49712), ("203.0.113.50", 8443), 0, false),
        );
        assert!(
            alerts.iter().all(|a| a.severity == Severity::Low),
            "{alerts:?}"
        );
        assert!(alerts.is_empty());
    }

    #[test]
    fn network_only_an1496_reports_missing_host_telemetry() {
        let finding = An1496Finding {
            score: 0.8,
            reasons: vec!["self-signed".to_owned()],
        };
        let mut f = flow(("10.0.0.9", 53340), ("198.51.100.30", 443), 0, true);
        f.app_proto = AppProto::Tls;
        f.an1496_network = Some(&finding);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(&index(vec![]), &f);
        let a = get(&alerts, "AN1496").expect("network-only AN1496");
        assert!((a.score - 0.8).abs() < 1e-6);
        assert!(a.process.is_none());
        assert!(a.reasons.iter().any(|r| r == "no host telemetry joined"));
    }

    #[test]
    fn an0404_is_enriched_with_process_and_lowered_for_allowlisted_image() {
        let idx = linux_python("/usr/bin/curl");
        let finding = An0404Finding {
            score: 0.8,
            severity: Severity::High,
            reasons: vec!["random, no known protocol".to_owned()],
            suppressed: None,
        };
        let mut f = flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, true);
        f.an0404 = Some(&finding);
        let mut c = correlator(&DetectConfig::default());
        let alerts = c.evaluate(&idx, &f);
        let a = get(&alerts, "AN0404").expect("AN0404 emitted");
        assert_eq!(a.severity, Severity::Medium);
        assert_eq!(a.process.as_ref().map(|p| p.pid), Some(4242));
        assert!(a.reasons.iter().any(|r| r.contains("severity lowered")));
    }

    #[test]
    fn baseline_learn_then_detect_names_new_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baseline.json");
        let mut cfg = DetectConfig::default();
        cfg.baseline.mode = BaselineMode::Learn;
        let idx = linux_python("/usr/bin/python3");
        let mut c = correlator(&cfg);
        c.evaluate(
            &idx,
            &flow(("10.0.0.5", 50514), ("203.0.113.9", 4444), 0, false),
        );
        c.baseline().expect("learned").save(&path).expect("save");
        cfg.baseline.mode = BaselineMode::Detect;
        cfg.baseline.path = Some(path);
        let mut c = correlator(&cfg);
        let idx2 = index(vec![
            start("ws-17", "linux", -600, 4242, "/usr/bin/python3", None),
            load(
                "ws-17",
                "linux",
                -400,
                4242,
                "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
                None,
            ),
            connect(
                "ws-17",
                "linux",
                24,
                4242,
                ("10.0.0.5", 50515),
                ("203.0.113.99", 4444),
                None,
            ),
        ]);
        let alerts = c.evaluate(
            &idx2,
            &flow(("10.0.0.5", 50515), ("203.0.113.99", 4444), 0, true),
        );
        let a = get(&alerts, "AN0401").expect("fires");
        assert!(
            a.reasons
                .iter()
                .any(|r| r.contains("new destination 203.0.113.99:4444")),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn detect_mode_without_path_is_an_error() {
        let mut cfg = DetectConfig::default();
        cfg.baseline.mode = BaselineMode::Detect;
        assert!(matches!(
            Correlator::new(&cfg, &An0404Config::default()),
            Err(DetectError::MissingBaselinePath)
        ));
    }

    #[test]
    fn empty_toml_gives_defaults_and_unknown_key_is_rejected() {
        let cfg: DetectConfig = toml::from_str("").expect("empty config");
        assert_eq!(cfg, DetectConfig::default());
        assert!(toml::from_str::<DetectConfig>("[an0401]\nbogus = 1\n").is_err());
        let cfg: DetectConfig = toml::from_str(
            "[an0401]\ntraffic_asymmetry_ratio = 5.0\n[correlation]\nclock_skew_secs = 3\n",
        )
        .expect("keys");
        assert_eq!(cfg.correlation.clock_skew_secs, 3);
    }
}
