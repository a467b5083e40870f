//! What the live sources (features `pcap` and `pnet`) share: their error type, counters
//! and stop handle.
//!
//! A live source delivers packets as the kernel hands them over; it never ends by itself,
//! so a [`StopHandle`] makes its blocking [`PacketSource::next_packet`] return `None`.
//!
//! [`PacketSource::next_packet`]: super::PacketSource::next_packet

use super::{CaptureError, SourceStats};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Errors of the live capture sources (both backends).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The interface could not be opened (unknown name, no permission, ...).
    #[error("cannot open interface {iface}: {reason}")]
    Open {
        /// Interface name.
        iface: String,
        /// The backend's message.
        reason: String,
    },
    /// The BPF filter did not compile or could not be installed.
    #[error("bad capture filter {filter:?} on {iface}: {reason}")]
    Filter {
        /// Interface name.
        iface: String,
        /// The filter expression.
        filter: String,
        /// libpcap's message.
        reason: String,
    },
    /// Reading a packet failed.
    #[error("reading from interface {iface} failed: {reason}")]
    Read {
        /// Interface name.
        iface: String,
        /// The backend's message.
        reason: String,
    },
    /// The backend delivered a record longer than [`MAX_CAPLEN`](super::MAX_CAPLEN).
    #[error("record of {len} bytes on interface {iface} exceeds the {max}-byte cap")]
    Oversize {
        /// Interface name.
        iface: String,
        /// Captured length.
        len: usize,
        /// The cap.
        max: u32,
    },
    /// A setting is outside what the backend accepts.
    #[error("invalid live capture setting {key}: {reason}")]
    Setting {
        /// The setting.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl LiveError {
    /// The interface the error is about (empty for a setting).
    pub fn iface(&self) -> &str {
        match self {
            LiveError::Open { iface, .. }
            | LiveError::Filter { iface, .. }
            | LiveError::Read { iface, .. }
            | LiveError::Oversize { iface, .. } => iface,
            LiveError::Setting { .. } => "",
        }
    }
}

/// A live source's failure seen through the [`PacketSource`](super::PacketSource) trait:
/// an I/O error whose "path" is the interface name.
impl From<LiveError> for CaptureError {
    fn from(e: LiveError) -> CaptureError {
        CaptureError::Io {
            path: std::path::PathBuf::from(e.iface()),
            source: std::io::Error::other(e),
        }
    }
}

/// Counters of a live source, including the kernel's drop counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveStats {
    /// What the source delivered.
    pub source: SourceStats,
    /// Packets the capture mechanism received (`ps_recv`; 0 when the backend cannot tell).
    pub received: u64,
    /// Packets dropped for lack of buffer room (`ps_drop`).
    pub dropped: u64,
    /// Packets dropped by the interface or driver (`ps_ifdrop`).
    pub if_dropped: u64,
    /// Read timeouts with no packet.
    pub timeouts: u64,
}

/// A handle to stop a live source's blocking [`PacketSource::next_packet`] from another
/// thread or a signal handler: it returns `None` at its next read timeout.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A new, unset handle.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }
    /// Ask the source to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether stop was asked.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
