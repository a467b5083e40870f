//! The one hook through which inspectors plug into the flow table.

use super::Direction;
use super::record::FlowMeta;
use crate::time::Timestamp;

/// Whether an inspector wants more bytes of a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Keep delivering payload.
    More,
    /// Stop delivering this direction's payload (counters go on).
    Done,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No packet for the protocol's idle timeout (or the closed-state timeout after
    /// FIN/RST).
    Timeout,
    /// Evicted to respect the flow-count cap.
    Evicted,
    /// A new connection (SYN) reused the key of a closed one.
    Reused,
    /// The input ended (or the caller flushed).
    Shutdown,
}

impl EndReason {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Evicted => "evicted",
            EndReason::Reused => "reused",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Per-flow inspection. The flow table calls these hooks; it never looks at payload itself.
///
/// TCP payload arrives reassembled: contiguous, in order, without retransmitted bytes, up
/// to the inspection depth of each direction. UDP (and other IP protocols') payload arrives
/// one datagram per call.
pub trait Inspector {
    /// What the inspector keeps per flow.
    type State;

    /// A flow was created by its first packet.
    fn flow_start(&mut self, flow: &FlowMeta) -> Self::State;

    /// In-order TCP bytes of `dir`, continuing where the previous call for `dir` ended.
    fn stream(
        &mut self,
        state: &mut Self::State,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest;

    /// One datagram's payload (UDP or another non-TCP protocol).
    fn datagram(
        &mut self,
        state: &mut Self::State,
        flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest;

    /// Bytes of `dir` were lost (never seen by the capture); the next `stream` call
    /// continues after the hole.
    fn gap(&mut self, state: &mut Self::State, flow: &FlowMeta, dir: Direction, len: u64);

    /// Called after every packet's counters were updated (cheap; for verdicts that depend on
    /// counts, such as traffic asymmetry).
    fn packet(
        &mut self,
        _state: &mut Self::State,
        _flow: &FlowMeta,
        _dir: Direction,
        _ts: Timestamp,
    ) {
    }

    /// The flow ended; the state is handed back for the last time.
    fn flow_end(&mut self, state: Self::State, flow: &FlowMeta, reason: EndReason);
}
