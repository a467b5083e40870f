//! Live capture through pnet's datalink channel (feature `pnet`), as a [`PacketSource`].
//!
//! Owns one layer-2 channel on an interface: an `AF_PACKET` socket on Linux (BPF devices on
//! the BSDs and macOS), with no C library. Frames are Ethernet ([`LinkType::ETHERNET`]);
//! on Linux loopback they carry zeroed MAC addresses.
//!
//! # Contracts and limits
//!
//! - **No panics.** Socket errors become [`LiveError`]; a read timeout is `Ok(None)` from
//!   [`LivePnet::next_packet_timeout`].
//! - **Bounded.** The read buffer is `snaplen` bytes (at most [`MAX_CAPLEN`]); the kernel
//!   cuts longer frames to it, and since the socket does not report the length on the
//!   wire, `orig_len` is the captured length.
//! - **Time.** The channel gives no kernel timestamp, so a packet is stamped with the wall
//!   clock when it is read: the one place besides the examples where the crate reads the
//!   clock, and only because the packet has no other time.
//! - **No filter, no drop counters.** pnet installs no BPF program and reads no
//!   `PACKET_STATISTICS`; use the `pcap` backend when those matter. On Linux `lo` an
//!   `AF_PACKET` socket sees each frame twice (outgoing and incoming), which libpcap hides.

pub use super::live::{LiveError, LiveStats, StopHandle};
use super::{CaptureError, LinkType, MAX_CAPLEN, Packet, PacketSource, SourceStats};
use crate::time::Timestamp;
use std::time::{Duration, SystemTime};

/// Settings of a pnet live capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePnetConfig {
    /// Interface name (`eth0`, `lo`).
    pub iface: String,
    /// Read buffer, the largest frame kept (default 65 536; at most [`MAX_CAPLEN`]).
    pub snaplen: u32,
    /// Put the interface in promiscuous mode (default true).
    pub promiscuous: bool,
    /// Read timeout in milliseconds (default 100).
    pub timeout_ms: u32,
}

impl LivePnetConfig {
    /// Defaults for `iface`.
    pub fn new(iface: impl Into<String>) -> LivePnetConfig {
        LivePnetConfig {
            iface: iface.into(),
            snaplen: 65_536,
            promiscuous: true,
            timeout_ms: 100,
        }
    }
}

/// A pnet datalink live capture.
pub struct LivePnet {
    rx: Box<dyn pnet_datalink::DataLinkReceiver>,
    iface: String,
    stats: LiveStats,
    stop: StopHandle,
    failed: bool,
    copy: Vec<u8>,
}

impl std::fmt::Debug for LivePnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePnet")
            .field("iface", &self.iface)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl LivePnet {
    /// Open a layer-2 channel on `cfg.iface`.
    ///
    /// # Errors
    /// [`LiveError::Open`] when the interface is unknown or the socket cannot be opened
    /// (missing `CAP_NET_RAW`), [`LiveError::Setting`] for a snap length out of range.
    pub fn open(cfg: &LivePnetConfig) -> Result<LivePnet, LiveError> {
        if cfg.snaplen == 0 || cfg.snaplen > MAX_CAPLEN {
            return Err(LiveError::Setting {
                key: "snaplen",
                reason: format!("{} is outside 1..={MAX_CAPLEN}", cfg.snaplen),
            });
        }
        let open_err = |reason: String| LiveError::Open {
            iface: cfg.iface.clone(),
            reason,
        };
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == cfg.iface)
            .ok_or_else(|| open_err("no such interface".into()))?;
        let dl_cfg = pnet_datalink::Config {
            read_buffer_size: cfg.snaplen as usize,
            read_timeout: Some(Duration::from_millis(u64::from(cfg.timeout_ms.max(1)))),
            promiscuous: cfg.promiscuous,
            ..pnet_datalink::Config::default()
        };
        match pnet_datalink::channel(&iface, dl_cfg) {
            Ok(pnet_datalink::Channel::Ethernet(_tx, rx)) => Ok(LivePnet {
                rx,
                iface: cfg.iface.clone(),
                stats: LiveStats::default(),
                stop: StopHandle::new(),
                failed: false,
                copy: Vec::new(),
            }),
            Ok(_) => Err(open_err("not an ethernet channel".into())),
            Err(e) => Err(open_err(e.to_string())),
        }
    }

    /// The link type of the packets (always Ethernet).
    pub fn link_type(&self) -> LinkType {
        LinkType::ETHERNET
    }

    /// A handle that makes [`PacketSource::next_packet`] return `None`.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The next packet, or `Ok(None)` when the read timeout passed with none.
    ///
    /// # Errors
    /// [`LiveError::Read`] when the socket fails.
    pub fn next_packet_timeout(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        read(self.rx.as_mut(), &self.iface, &mut self.stats)
    }

    /// Counters (pnet reports no kernel drops: those stay 0).
    pub fn live_stats(&self) -> LiveStats {
        self.stats
    }
}

/// The wall clock as a [`Timestamp`] (0 if the clock is before 1970).
fn now() -> Timestamp {
    let ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Timestamp::from_nanos(ns)
}

/// One read, borrowing only the receiver.
fn read<'c>(
    rx: &'c mut dyn pnet_datalink::DataLinkReceiver,
    iface: &str,
    stats: &mut LiveStats,
) -> Result<Option<Packet<'c>>, LiveError> {
    match rx.next() {
        Ok(data) => {
            let pkt = Packet {
                ts: now(),
                link_type: LinkType::ETHERNET,
                data,
                orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            };
            stats.source.count(&pkt);
            stats.received = stats.received.saturating_add(1);
            Ok(Some(pkt))
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::Interrupted
            ) =>
        {
            stats.timeouts = stats.timeouts.saturating_add(1);
            Ok(None)
        }
        Err(e) => Err(LiveError::Read {
            iface: iface.to_owned(),
            reason: e.to_string(),
        }),
    }
}

impl PacketSource for LivePnet {
    /// Blocks across read timeouts until a packet arrives, the [`StopHandle`] is set
    /// (`None`) or the read fails (one `Err`, then `None`). Copies the frame into one
    /// reused buffer for the reason given at `LivePcap`'s `next_packet`;
    /// [`LivePnet::next_packet_timeout`] is the zero-copy path.
    fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>> {
        if self.failed {
            return None;
        }
        let ts = loop {
            if self.stop.is_stopped() {
                return None;
            }
            match read(self.rx.as_mut(), &self.iface, &mut self.stats) {
                Ok(Some(p)) => {
                    self.copy.clear();
                    self.copy.extend_from_slice(p.data);
                    break p.ts;
                }
                Ok(None) => continue,
                Err(e) => {
                    self.failed = true;
                    self.stats.source.errors = self.stats.source.errors.saturating_add(1);
                    return Some(Err(e.into()));
                }
            }
        };
        Some(Ok(Packet {
            ts,
            link_type: LinkType::ETHERNET,
            data: &self.copy,
            orig_len: u32::try_from(self.copy.len()).unwrap_or(u32::MAX),
        }))
    }

    fn stats(&self) -> SourceStats {
        self.stats.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interface_is_an_open_error_naming_it() {
        let e = LivePnet::open(&LivePnetConfig::new("no-such-if0")).unwrap_err();
        assert!(matches!(e, LiveError::Open { .. }), "{e}");
        assert!(e.to_string().contains("no-such-if0"), "{e}");
    }

    #[test]
    fn zero_snaplen_is_refused() {
        let mut c = LivePnetConfig::new("lo");
        c.snaplen = 0;
        assert!(matches!(
            LivePnet::open(&c),
            Err(LiveError::Setting { key: "snaplen", .. })
        ));
    }
}
