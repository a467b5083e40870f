//! The `stats` record: what the engine saw and did.

use crate::decode::DecodeErrorKind;
use crate::decode::defrag::DefragStats;
use crate::flow::FlowStats;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// Packet counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PacketStats {
    /// Packets handed to the engine.
    pub packets: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// Packets decoded into a flow.
    pub decoded: u64,
    /// Packets skipped, by reason (`not_ip` is valid non-IP traffic, the rest damage).
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Datagrams rebuilt from IP fragments.
    pub reassembled_datagrams: u64,
}

/// Host-telemetry counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostStats {
    /// Host events ingested.
    pub events: u64,
    /// The process index's own counters.
    pub index: crate::host::index::HostIndexStats,
}

impl HostStats {
    /// From the engine's count and the index's counters.
    pub fn from_index(events: u64, index: &crate::host::index::HostIndexStats) -> Self {
        HostStats {
            events,
            index: index.clone(),
        }
    }
}

/// Counters of the detection stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DetectStats {
    /// Alerts emitted, by analytic.
    pub alerts: BTreeMap<&'static str, u64>,
    /// Findings suppressed by an allowlist, by analytic.
    pub suppressed: BTreeMap<&'static str, u64>,
}

/// Everything in the `stats{}` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsSection {
    /// Packets.
    pub capture: PacketStats,
    /// Flow table.
    pub flow: FlowStats,
    /// Fragment reassembly.
    pub defrag: DefragStats,
    /// Host events.
    pub host: HostStats,
    /// Detection.
    pub detect: DetectStats,
    /// The entropy kernel in use.
    pub entropy_kernel: &'static str,
    /// Packet time covered, seconds.
    pub capture_seconds: f64,
}

/// The `stats` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsEvent {
    /// When (packet time of the last packet).
    pub timestamp: Timestamp,
    /// The counters.
    pub stats: StatsSection,
}

/// Per-kind decode error counters, in a fixed array for the hot path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeErrorCounts(pub [u64; DecodeErrorKind::ALL.len()]);

impl DecodeErrorCounts {
    /// Count one error.
    pub fn add(&mut self, k: DecodeErrorKind) {
        if let Some(c) = self.0.get_mut(k.index()) {
            *c += 1;
        }
    }

    /// As a name → count map without zeros.
    pub fn to_map(&self) -> BTreeMap<&'static str, u64> {
        DecodeErrorKind::ALL
            .iter()
            .zip(self.0.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.as_str(), *n))
            .collect()
    }
}
