//! Live capture through libpcap (feature `pcap`), as a [`PacketSource`].
//!
//! Owns one libpcap handle opened on an interface by name, with a BPF filter, snap length,
//! promiscuous mode, kernel buffer size, immediate mode and read timeout
//! ([`LivePcapConfig`]). Packets borrow libpcap's buffer until the next read: nothing is
//! copied here.
//!
//! # Contracts
//!
//! - **No panics.** libpcap's errors become [`LiveError`]; no packet ready is not an error
//!   ([`LivePcap::next_packet_timeout`] returns `Ok(None)` after [`IDLE_SLEEP`]).
//! - **Bounded.** The snap length is capped at [`MAX_CAPLEN`]; a record longer than that
//!   (which libpcap never delivers with a valid snap length) is refused with an error.
//! - **Time.** Timestamps are libpcap's (the kernel's receive time, microseconds).
//! - **Drops.** [`LivePcap::live_stats`] reads `pcap_stats(3)`: packets the kernel dropped
//!   for lack of buffer room and packets the interface dropped.

pub use super::live::{LiveError, LiveStats, StopHandle};
use super::{CaptureError, LinkType, MAX_CAPLEN, Packet, PacketSource, SourceStats};
use crate::time::Timestamp;

/// How long an empty read waits before returning `Ok(None)`: the latency added to the first
/// packet after a quiet spell, and what keeps an idle capture loop from spinning.
pub const IDLE_SLEEP: std::time::Duration = std::time::Duration::from_millis(1);

/// Settings of a libpcap live capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePcapConfig {
    /// Interface name (`eth0`, `lo`, `any`).
    pub iface: String,
    /// BPF filter expression (`tcp port 443`); `None` captures everything.
    pub filter: Option<String>,
    /// Bytes kept of each packet (default 65 535; at most [`MAX_CAPLEN`]).
    pub snaplen: u32,
    /// Put the interface in promiscuous mode (default true).
    pub promiscuous: bool,
    /// Kernel buffer size in bytes (default 16 MiB; 0 keeps libpcap's default).
    pub buffer_size: u32,
    /// Deliver packets as soon as they arrive instead of in kernel batches (default false).
    pub immediate: bool,
    /// libpcap's buffer timeout in milliseconds: how long the kernel may hold packets to
    /// deliver them in blocks (default 100; reads themselves never block, see [`IDLE_SLEEP`]).
    pub timeout_ms: u32,
}

impl LivePcapConfig {
    /// Defaults for `iface`.
    pub fn new(iface: impl Into<String>) -> LivePcapConfig {
        LivePcapConfig {
            iface: iface.into(),
            filter: None,
            snaplen: 65_535,
            promiscuous: true,
            buffer_size: 16 << 20,
            immediate: false,
            timeout_ms: 100,
        }
    }
}

/// libpcap's `DLT_` number as our [`LinkType`] (tcpdump.org's `LINKTYPE_` numbering).
///
/// The two differ only where platforms disagreed on `DLT_` values (`pcap-common.c`,
/// `dlt_to_linktype`): `DLT_RAW` is 12 or 14 on some platforms and `LINKTYPE_RAW` is 101.
pub fn link_type_from_dlt(dlt: i32) -> LinkType {
    match dlt {
        12 | 14 => LinkType::RAW,
        n => LinkType(u32::try_from(n).unwrap_or(u32::MAX)),
    }
}

/// A libpcap live capture.
pub struct LivePcap {
    cap: pcap::Capture<pcap::Active>,
    iface: String,
    link_type: LinkType,
    stats: LiveStats,
    stop: StopHandle,
    failed: bool,
    copy: Vec<u8>,
}

impl std::fmt::Debug for LivePcap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePcap")
            .field("iface", &self.iface)
            .field("link_type", &self.link_type)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn setting(key: &'static str, v: u32) -> Result<i32, LiveError> {
    i32::try_from(v).map_err(|_| LiveError::Setting {
        key,
        reason: format!("{v} is too large"),
    })
}

impl LivePcap {
    /// Open `cfg.iface` and install the filter.
    ///
    /// # Errors
    /// [`LiveError::Open`] when the interface cannot be opened (unknown, or missing
    /// `CAP_NET_RAW`), [`LiveError::Filter`] when the filter is refused,
    /// [`LiveError::Setting`] when a setting is out of range.
    pub fn open(cfg: &LivePcapConfig) -> Result<LivePcap, LiveError> {
        if cfg.snaplen == 0 || cfg.snaplen > MAX_CAPLEN {
            return Err(LiveError::Setting {
                key: "snaplen",
                reason: format!("{} is outside 1..={MAX_CAPLEN}", cfg.snaplen),
            });
        }
        let open_err = |e: pcap::Error| LiveError::Open {
            iface: cfg.iface.clone(),
            reason: e.to_string(),
        };
        let mut inactive = pcap::Capture::from_device(cfg.iface.as_str())
            .map_err(open_err)?
            .snaplen(setting("snaplen", cfg.snaplen)?)
            .promisc(cfg.promiscuous)
            .immediate_mode(cfg.immediate)
            .timeout(setting("timeout_ms", cfg.timeout_ms)?);
        if cfg.buffer_size > 0 {
            inactive = inactive.buffer_size(setting("buffer_size", cfg.buffer_size)?);
        }
        // Non-blocking: on Linux (TPACKET_V3) libpcap's read timeout does not expire while
        // no packet arrives at all, so a blocking read could wait forever; an empty read
        // instead sleeps [`IDLE_SLEEP`] and returns `Ok(None)`.
        let mut cap = inactive
            .open()
            .and_then(pcap::Capture::setnonblock)
            .map_err(open_err)?;
        if let Some(filter) = &cfg.filter {
            cap.filter(filter, true).map_err(|e| LiveError::Filter {
                iface: cfg.iface.clone(),
                filter: filter.clone(),
                reason: e.to_string(),
            })?;
        }
        let link_type = link_type_from_dlt(cap.get_datalink().0);
        Ok(LivePcap {
            cap,
            iface: cfg.iface.clone(),
            link_type,
            stats: LiveStats::default(),
            stop: StopHandle::new(),
            failed: false,
            copy: Vec::new(),
        })
    }

    /// The link type of the packets.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// A handle that makes [`PacketSource::next_packet`] return `None`.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The next packet, or `Ok(None)` (after [`IDLE_SLEEP`]) when none is ready.
    ///
    /// # Errors
    /// [`LiveError::Read`] when libpcap fails (interface gone), [`LiveError::Oversize`]
    /// for a record beyond the cap.
    pub fn next_packet_timeout(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        read(&mut self.cap, &self.iface, self.link_type, &mut self.stats)
    }

    /// Counters, with the kernel's drop counters read now through `pcap_stats`.
    pub fn live_stats(&mut self) -> LiveStats {
        if let Ok(s) = self.cap.stats() {
            self.stats.received = u64::from(s.received);
            self.stats.dropped = u64::from(s.dropped);
            self.stats.if_dropped = u64::from(s.if_dropped);
        }
        self.stats
    }
}

/// One read, borrowing only the handle (so the caller may use its other fields).
fn read<'c>(
    cap: &'c mut pcap::Capture<pcap::Active>,
    iface: &str,
    link_type: LinkType,
    stats: &mut LiveStats,
) -> Result<Option<Packet<'c>>, LiveError> {
    match cap.next_packet() {
        Ok(p) => {
            if p.data.len() > MAX_CAPLEN as usize {
                return Err(LiveError::Oversize {
                    iface: iface.to_owned(),
                    len: p.data.len(),
                    max: MAX_CAPLEN,
                });
            }
            let tv = p.header.ts;
            let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
            let usecs = u64::try_from(tv.tv_usec).unwrap_or(0);
            let ts = Timestamp::from_nanos(
                secs.saturating_mul(1_000_000_000)
                    .saturating_add(usecs.saturating_mul(1_000)),
            );
            let pkt = Packet {
                ts,
                link_type,
                data: p.data,
                orig_len: p.header.len,
            };
            stats.source.count(&pkt);
            Ok(Some(pkt))
        }
        Err(pcap::Error::TimeoutExpired) => {
            stats.timeouts = stats.timeouts.saturating_add(1);
            std::thread::sleep(IDLE_SLEEP);
            Ok(None)
        }
        Err(e) => Err(LiveError::Read {
            iface: iface.to_owned(),
            reason: e.to_string(),
        }),
    }
}

impl PacketSource for LivePcap {
    /// Blocks across read timeouts until a packet arrives, the [`StopHandle`] is set
    /// (`None`) or the read fails (one `Err`, then `None`).
    ///
    /// Returning a borrow of libpcap's buffer from inside the retry loop is the case
    /// today's borrow checker rejects (NLL "problem case #3"), so this method copies the
    /// packet into one reused buffer of the source (no allocation after the first packet).
    /// [`LivePcap::next_packet_timeout`] is the zero-copy path.
    fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>> {
        if self.failed {
            return None;
        }
        let (ts, orig_len) = loop {
            if self.stop.is_stopped() {
                return None;
            }
            match read(&mut self.cap, &self.iface, self.link_type, &mut self.stats) {
                Ok(Some(p)) => {
                    self.copy.clear();
                    self.copy.extend_from_slice(p.data);
                    break (p.ts, p.orig_len);
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
            link_type: self.link_type,
            data: &self.copy,
            orig_len,
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
    fn platform_raw_dlts_map_to_linktype_raw() {
        assert_eq!(link_type_from_dlt(12), LinkType::RAW);
        assert_eq!(link_type_from_dlt(14), LinkType::RAW);
        assert_eq!(link_type_from_dlt(1), LinkType::ETHERNET);
        assert_eq!(link_type_from_dlt(113), LinkType::LINUX_SLL);
        assert_eq!(link_type_from_dlt(-1), LinkType(u32::MAX));
    }

    #[test]
    fn oversized_snaplen_is_refused_before_opening() {
        let mut c = LivePcapConfig::new("lo");
        c.snaplen = MAX_CAPLEN + 1;
        assert!(matches!(
            LivePcap::open(&c),
            Err(LiveError::Setting { key: "snaplen", .. })
        ));
    }

    #[test]
    fn unknown_interface_is_an_open_error_naming_it() {
        match LivePcap::open(&LivePcapConfig::new("no-such-if0")) {
            Err(e @ LiveError::Open { .. }) => assert!(e.to_string().contains("no-such-if0")),
            other => panic!("expected an open error, got {other:?}"),
        }
    }
}
