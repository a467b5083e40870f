//! Capture: reading packets from pcap/pcapng files and live sources.
//!
//! Owns the packet sources. Must not copy packet bytes: a [`Packet`] borrows the capture
//! buffer (the memory-mapped file, or a live source's ring).

use crate::time::Timestamp;
use serde::Serialize;

/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry.
///
/// An open newtype, so unknown values survive and can be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback (DLT_NULL): 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (RFC 1661 framing with optional HDLC address/control).
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP (IPv4 or IPv6 by version nibble); LINKTYPE_RAW.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback (DLT_LOOP): 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1 (SLL).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// 802.11 with a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux netfilter NFLOG.
    pub const NFLOG: LinkType = LinkType(239);
    /// Linux cooked capture v2 (SLL2).
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// DLT_RAW as some platforms number it (OpenBSD/old libpcap: 12, 14).
    pub const RAW_ALT12: LinkType = LinkType(12);
    /// DLT_RAW as some platforms number it.
    pub const RAW_ALT14: LinkType = LinkType(14);
}

/// One captured packet, borrowing its bytes from the capture buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture timestamp.
    pub ts: Timestamp,
    /// The link-layer type of `data`.
    pub link_type: LinkType,
    /// The captured bytes (possibly fewer than `orig_len` when a snap length applied).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
}
