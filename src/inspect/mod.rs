//! Inspect: what each flow's payload says.
//!
//! Owns the per-flow inspectors: randomness of each direction ([`entropy`]), and the
//! [`InspectorSet`] that runs them behind the flow table's one hook. What it learns is
//! handed to `detect` as [`FlowFindings`]; it never decides alerts itself.
//!
//! Contracts: it must not parse packets or keep flow state of its own (the flow table
//! hands it borrowed payload and keeps its per-flow state); no inspector panics on any
//! input, allocates per payload, or grows without a bound.

pub mod entropy;
pub mod protocol;
pub mod tls;

use crate::decode::ip_proto;
use crate::flow::{Direction, FlowMeta, Interest};
use crate::time::Timestamp;
use entropy::{EntropyAccumulator, EntropyError, Kernel, Randomness};
use protocol::{AppProto, ContentKind, ProtocolState, Recognition, Transport};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use tls::{TlsConfig, TlsInspector, TlsStatus, TlsSummary};

/// Inspection settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntropyConfig {
    /// Payload bytes per direction whose randomness is measured (default 4096, at most
    /// 65 535).
    pub window: usize,
    /// Force a histogram kernel: `auto` (default: the fastest the CPU has), `reference`,
    /// `portable`, `avx2` (x86_64) or `neon` (aarch64).
    pub kernel: entropy::KernelChoice,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        EntropyConfig {
            window: entropy::DEFAULT_WINDOW,
            kernel: entropy::KernelChoice::Auto,
        }
    }
}

/// Where a flow's TLS inspection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsTrack {
    /// Not decided: bytes go to the inspector.
    Active,
    /// The first bytes were not TLS/DTLS: nothing more is fed.
    NotTls,
    /// The handshake is over; its summary was (or is about to be) reported.
    Done,
}

/// Protocol recognition of a flow: the recognisers' state (on the heap) while they look,
/// only their verdict once they are done.
#[derive(Debug)]
enum Protocol {
    /// The recognisers still want bytes.
    Active(Box<ProtocolState>),
    /// Recognition is over, with this verdict.
    Done(Option<Recognition>),
}

impl Protocol {
    fn done(&self) -> bool {
        match self {
            Protocol::Active(p) => p.done(),
            Protocol::Done(_) => true,
        }
    }

    fn current(&self) -> Option<&Recognition> {
        match self {
            Protocol::Active(p) => p.current(),
            Protocol::Done(r) => r.as_ref(),
        }
    }
}

/// Payload bytes of a direction kept as a plain copy before its 522-byte histogram is
/// built. Most flows (a DNS exchange, an HTTP request line) never carry more in a
/// direction, and their copy is smaller than the accumulator it stands for.
const INLINE_SAMPLE: usize = 512;

/// What a direction's measurement holds so far.
#[derive(Debug)]
enum Sample {
    /// The first payload bytes as they came: at most [`INLINE_SAMPLE`] and at most the
    /// window. The histogram is built from them when a verdict point asks.
    Bytes(Vec<u8>),
    /// The accumulator, once the sample outgrew the copy. It was fed the copy first, so it
    /// measures exactly what one accumulator fed from the first byte would have.
    Acc(Box<EntropyAccumulator>),
}

/// One direction's randomness measurement, on the heap from its first payload byte on (a
/// direction that never carries payload, like most of a SYN scan, costs one pointer).
#[derive(Debug)]
struct DirEntropy {
    sample: Sample,
    /// The last [`Randomness`] computed from the sample; valid while its `sample_len`
    /// equals the sample's length (the analytics, the TLS report and the flow record all
    /// ask for it, and the sample only changes when payload arrives).
    memo: Cell<Option<Randomness>>,
}

impl DirEntropy {
    fn new() -> DirEntropy {
        DirEntropy {
            sample: Sample::Bytes(Vec::new()),
            memo: Cell::new(None),
        }
    }

    /// Bytes measured.
    fn len(&self) -> usize {
        match &self.sample {
            Sample::Bytes(b) => b.len(),
            Sample::Acc(a) => a.len(),
        }
    }

    /// Whether the window is full (further payload is not measured).
    fn is_full(&self, window: usize) -> bool {
        match &self.sample {
            Sample::Bytes(b) => b.len() >= window,
            Sample::Acc(a) => a.is_full(),
        }
    }

    /// Adds the next payload bytes (those past the window are not measured).
    fn update(&mut self, kernel: Kernel, window: usize, data: &[u8]) {
        match &mut self.sample {
            Sample::Bytes(b) => {
                let take = window.saturating_sub(b.len()).min(data.len());
                let data = data.get(..take).unwrap_or_default();
                if b.len().saturating_add(take) <= INLINE_SAMPLE {
                    // Exact growth: the copy is kept because it is small.
                    b.reserve_exact(take);
                    b.extend_from_slice(data);
                } else {
                    let mut acc = Box::new(EntropyAccumulator::new(window));
                    acc.update_with(kernel, b);
                    acc.update_with(kernel, data);
                    self.sample = Sample::Acc(acc);
                }
            }
            Sample::Acc(a) => {
                a.update_with(kernel, data);
            }
        }
    }

    fn randomness(&self, kernel: Kernel) -> Randomness {
        if let Some(r) = self.memo.get()
            && usize::try_from(r.sample_len).is_ok_and(|n| n == self.len())
        {
            return r;
        }
        let r = match &self.sample {
            // The copy holds exactly the bytes an accumulator would have measured.
            Sample::Bytes(b) => Randomness::of_with(kernel, b),
            Sample::Acc(a) => a.randomness(),
        };
        self.memo.set(Some(r));
        r
    }
}

/// What the inspectors keep per flow.
///
/// About 100 bytes inline: the protocol recognisers' state (128 bytes on the heap while they
/// look, only their verdict once they are done), a TLS inspector that is one pointer until
/// the flow sends its first byte, and one pointer per direction to its
/// randomness measurement. That is on the heap from the direction's first payload byte: 128
/// bytes plus a copy of the first payload bytes while they are at most 512, then a 522-byte
/// histogram accumulator instead of the copy.
#[derive(Debug)]
pub struct FlowInspection {
    entropy: [Option<Box<DirEntropy>>; 2],
    first_payload: [Option<Timestamp>; 2],
    content: [Option<ContentKind>; 2],
    protocol: Protocol,
    tls: TlsInspector,
    tls_track: TlsTrack,
    tls_reported: bool,
    /// Verdict points already passed: bit 0/1 first payload of each direction measured with
    /// the other direction present, bit 2/3 window full.
    points: u8,
}

/// What changed with one payload call, for the engine to act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// A verdict point was reached: evaluate the analytics now.
    pub verdict_point: bool,
    /// The TLS handshake just completed: report its summary now.
    pub tls_done: bool,
}

/// What inspection found about a flow, for `detect` and `output`.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowFindings<'a> {
    /// Randomness of the first payload bytes of each direction (index: [`Direction::index`]).
    pub randomness: [Option<Randomness>; 2],
    /// When each direction's first payload byte arrived.
    pub first_payload: [Option<Timestamp>; 2],
    /// Compressed or media content that explains random-looking bytes of a direction.
    pub content: [Option<ContentKind>; 2],
    /// The recognised protocol, if any.
    pub recognition: Option<&'a Recognition>,
    /// The TLS session, once a ClientHello or ServerHello was parsed.
    pub tls: Option<&'a TlsSummary>,
}

impl FlowInspection {
    /// Whether protocol recognition has all the bytes it wants.
    pub fn protocol_done(&self) -> bool {
        self.protocol.done()
    }

    /// Whether a recogniser holds a candidate protocol that still needs confirming.
    pub fn protocol_candidate(&self) -> bool {
        !self.protocol.done() && self.protocol.current().is_some()
    }

    /// Whether the TLS handshake completed (or the flow is known not to be TLS).
    pub fn tls_handshake_over(&self) -> bool {
        self.tls_track != TlsTrack::Active
    }
}

impl FlowFindings<'_> {
    /// The application protocol: TLS when a handshake was parsed, else the recognition.
    pub fn app_proto(&self) -> AppProto {
        match (self.tls, self.recognition) {
            (Some(_), Some(r))
                if matches!(r.proto, AppProto::Dtls | AppProto::Quic | AppProto::Rdp) =>
            {
                r.proto
            }
            (Some(_), Some(r)) if r.proto.is_encrypted() && r.proto != AppProto::Unknown => r.proto,
            (Some(_), _) => AppProto::Tls,
            (None, Some(r)) => r.proto,
            (None, None) => AppProto::Unknown,
        }
    }
}

/// The inspectors, run together for every flow.
#[derive(Debug)]
pub struct InspectorSet {
    cfg: EntropyConfig,
    tls_cfg: TlsConfig,
    kernel: Kernel,
}

impl InspectorSet {
    /// Inspectors with these settings.
    ///
    /// # Errors
    /// When the configured entropy kernel cannot run on this CPU.
    pub fn new(cfg: EntropyConfig, tls_cfg: TlsConfig) -> Result<Self, EntropyError> {
        let kernel = Kernel::select(cfg.kernel)?;
        Ok(InspectorSet {
            cfg,
            tls_cfg,
            kernel,
        })
    }

    /// The entropy window in bytes, as the accumulator clamps it.
    fn window(&self) -> usize {
        self.cfg.window.min(entropy::MAX_WINDOW)
    }

    /// The histogram kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The TLS settings.
    pub fn tls_config(&self) -> &TlsConfig {
        &self.tls_cfg
    }

    /// Per-flow state for a new flow.
    pub fn flow_start(&mut self, _flow: &FlowMeta) -> FlowInspection {
        FlowInspection {
            entropy: [None, None],
            first_payload: [None; 2],
            content: [None; 2],
            protocol: Protocol::Active(Box::default()),
            tls: TlsInspector::new(),
            tls_track: TlsTrack::Active,
            tls_reported: false,
            points: 0,
        }
    }

    /// Reassembled TCP bytes or one datagram's payload of one direction.
    pub fn payload(
        &mut self,
        st: &mut FlowInspection,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> (Interest, Progress) {
        let d = dir.index();
        let mut progress = Progress::default();
        let first = st.first_payload[d].is_none();
        if first {
            st.first_payload[d] = Some(ts);
            st.content[d] = protocol::explain_content(data);
        }
        let Some(slot) = st.entropy.get_mut(d) else {
            return (Interest::Done, progress);
        };
        let window = self.window();
        let dir_entropy = slot.get_or_insert_with(|| Box::new(DirEntropy::new()));
        let was_full = dir_entropy.is_full(window);
        dir_entropy.update(self.kernel, window, data);
        if !was_full && dir_entropy.is_full(window) && st.points & (4 << d) == 0 {
            st.points |= 4 << d;
            progress.verdict_point = true;
        }
        if first && st.first_payload[1 - d].is_some() && st.points & 3 == 0 {
            st.points |= 1 << d;
            progress.verdict_point = true;
        }
        let transport = match flow.proto {
            ip_proto::TCP => Transport::Tcp,
            ip_proto::UDP => Transport::Udp,
            other => Transport::Other(other),
        };
        if let Protocol::Active(p) = &mut st.protocol {
            p.observe(transport, dir, flow.client_port, flow.server_port, data);
            if p.done() {
                // Keep the verdict, free the recognisers' state.
                st.protocol = Protocol::Done(p.current().copied());
            }
        }
        if st.tls_track == TlsTrack::Active {
            let status = match transport {
                Transport::Tcp => st.tls.feed(&self.tls_cfg, dir, ts, data),
                Transport::Udp => st.tls.feed_datagram(&self.tls_cfg, dir, ts, data),
                Transport::Other(_) => TlsStatus::NotTls,
            };
            match status {
                TlsStatus::NeedMore => {}
                TlsStatus::NotTls => {
                    st.tls_track = TlsTrack::NotTls;
                    // Nothing was summarised: free the inspector's buffers now rather than
                    // at the flow's end (most flows are not TLS).
                    if st.tls.summary().is_none() {
                        st.tls = TlsInspector::new();
                    }
                }
                TlsStatus::HandshakeDone => {
                    st.tls_track = TlsTrack::Done;
                    progress.tls_done = true;
                    progress.verdict_point = true;
                }
            }
        }
        let entropy_full = st.entropy[d].as_ref().is_some_and(|e| e.is_full(window));
        let busy = !entropy_full || !st.protocol.done() || st.tls_track == TlsTrack::Active;
        (if busy { Interest::More } else { Interest::Done }, progress)
    }

    /// A hole in one direction's stream.
    pub fn gap(&mut self, st: &mut FlowInspection, dir: Direction, _len: u64) {
        if st.tls_track == TlsTrack::Active {
            st.tls.gap(dir);
        }
    }

    /// The flow ended: close the TLS inspector (for `handshake_truncated`).
    pub fn finish(&mut self, st: &mut FlowInspection, ts: Timestamp) {
        if st.tls_track == TlsTrack::Active {
            st.tls.finish(&self.tls_cfg, ts);
        }
    }

    /// Mark the TLS summary as reported; returns whether it still had to be.
    pub fn take_tls_report(&self, st: &mut FlowInspection) -> bool {
        if st.tls_reported || st.tls.summary().is_none() {
            return false;
        }
        st.tls_reported = true;
        true
    }

    /// The findings so far.
    pub fn findings<'a>(&self, st: &'a FlowInspection) -> FlowFindings<'a> {
        let r = |e: &Option<Box<DirEntropy>>| {
            e.as_ref()
                .filter(|e| e.len() > 0)
                .map(|e| e.randomness(self.kernel))
        };
        FlowFindings {
            randomness: [r(&st.entropy[0]), r(&st.entropy[1])],
            first_payload: st.first_payload,
            content: st.content,
            recognition: st.protocol.current(),
            tls: st.tls.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes, random-looking or text-like.
    fn bytes(n: usize, seed: u64, text: bool) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if text {
                    b"the quick brown fox "[(x % 20) as usize]
                } else {
                    x as u8
                }
            })
            .collect()
    }

    #[test]
    fn a_sample_kept_as_bytes_then_as_histogram_measures_like_one_accumulator() {
        let kernel = Kernel::portable();
        for window in [1, 64, 511, 512, 513, 4096] {
            for sizes in [
                &[1usize][..],
                &[40, 60],
                &[511, 1],
                &[512, 1],
                &[300, 300],
                &[100, 900, 2000, 3000],
                &[5000],
            ] {
                for text in [false, true] {
                    let mut d = DirEntropy::new();
                    let mut one = EntropyAccumulator::new(window);
                    for (i, &n) in sizes.iter().enumerate() {
                        let b = bytes(n, i as u64 + 7, text);
                        d.update(kernel, window, &b);
                        one.update_with(kernel, &b);
                        assert_eq!(d.len(), one.len(), "window {window} sizes {sizes:?}");
                        assert_eq!(d.is_full(window), one.is_full());
                        assert_eq!(d.randomness(kernel), one.randomness());
                    }
                    let kept_as_bytes = matches!(d.sample, Sample::Bytes(_));
                    assert_eq!(kept_as_bytes, one.len() <= INLINE_SAMPLE, "{sizes:?}");
                }
            }
        }
    }
}
