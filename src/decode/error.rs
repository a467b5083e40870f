//! Decode errors: what broke, on which layer, at which byte offset.

use serde::Serialize;
use thiserror::Error;

/// The layer a decode error happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Link layer (Ethernet, SLL, loopback, radiotap ...).
    Link,
    /// IPv4 or IPv6 header and extension headers.
    Ip,
    /// TCP, UDP or ICMP header.
    Transport,
    /// A tunnel header (GRE, VXLAN, GENEVE).
    Tunnel,
}

impl Layer {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Ip => "ip",
            Layer::Transport => "transport",
            Layer::Tunnel => "tunnel",
        }
    }
}

/// What kind of damage or unsupported content stopped decoding; counted in stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The frame ended before a header did.
    Truncated,
    /// A link type this decoder does not know.
    UnsupportedLinkType,
    /// A valid frame that carries no IP (ARP, LLDP, 802.11 management ...). Not damage.
    NotIp,
    /// An IP header whose version, length or total length is impossible.
    BadIpHeader,
    /// A TCP header whose data offset is impossible.
    BadTcpHeader,
    /// A UDP header whose length is impossible.
    BadUdpHeader,
    /// A fragment that cannot be reassembled (bad offset, conflicting end, over the cap).
    BadFragment,
    /// Tunnels nested deeper than the decoder follows.
    TunnelTooDeep,
}

impl DecodeErrorKind {
    /// Every kind, in stats order.
    pub const ALL: [DecodeErrorKind; 8] = [
        DecodeErrorKind::Truncated,
        DecodeErrorKind::UnsupportedLinkType,
        DecodeErrorKind::NotIp,
        DecodeErrorKind::BadIpHeader,
        DecodeErrorKind::BadTcpHeader,
        DecodeErrorKind::BadUdpHeader,
        DecodeErrorKind::BadFragment,
        DecodeErrorKind::TunnelTooDeep,
    ];

    /// Stable name, as used in the `stats` record.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::Truncated => "truncated",
            DecodeErrorKind::UnsupportedLinkType => "unsupported_link_type",
            DecodeErrorKind::NotIp => "not_ip",
            DecodeErrorKind::BadIpHeader => "bad_ip_header",
            DecodeErrorKind::BadTcpHeader => "bad_tcp_header",
            DecodeErrorKind::BadUdpHeader => "bad_udp_header",
            DecodeErrorKind::BadFragment => "bad_fragment",
            DecodeErrorKind::TunnelTooDeep => "tunnel_too_deep",
        }
    }

    /// Index into a per-kind counter array (`ALL` order).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A packet that could not be decoded: counted under its kind and skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("{} at {} layer, byte {offset}", kind.as_str(), layer.as_str())]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// On which layer.
    pub layer: Layer,
    /// Byte offset into the frame where the offending header starts.
    pub offset: usize,
}

impl DecodeError {
    pub(crate) const fn new(kind: DecodeErrorKind, layer: Layer, offset: usize) -> Self {
        DecodeError {
            kind,
            layer,
            offset,
        }
    }
}
