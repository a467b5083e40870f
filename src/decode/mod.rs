//! Decode: link layers, IPv4/IPv6, tunnels and TCP/UDP into a borrowed [`PacketView`].
//!
//! Owns the parsing of packet headers. Must not know about flows.
//!
//! Contracts:
//! - **Zero copy.** A [`PacketView`] borrows the frame; only IP fragment reassembly
//!   ([`defrag`]) copies bytes, into bounded buffers.
//! - **Never panics on input.** Every header read is bounds-checked; a damaged frame gives a
//!   [`DecodeError`] with its [`DecodeErrorKind`], layer and byte offset, which the engine
//!   counts before skipping the packet. IP and transport headers are read with etherparse's
//!   lax sliced API, link headers (small and fixed) by hand.
//! - **Innermost flow.** IP-in-IP (4in4, 6in4, 4in6, 6in6), GRE, VXLAN (udp/4789) and
//!   GENEVE (udp/6081) are followed to the innermost IP header, up to [`MAX_TUNNEL_DEPTH`]
//!   levels, so a flow is the conversation inside the tunnel (as TShark's
//!   `tcp.stream`/`udp.stream` of the innermost transport header).

pub mod defrag;
mod error;
mod link;
pub mod route;

pub use error::{DecodeError, DecodeErrorKind, Layer};
pub use route::{FragmentPart, RouteKey, route_key};

use crate::capture::LinkType;
use etherparse::{LaxIpSlice, TcpSlice, UdpSlice};
use link::NetProto;
use std::net::IpAddr;

/// How many tunnel headers are followed before a packet is counted as `tunnel_too_deep`.
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// IP protocol numbers used by the decoder and the flow table.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulation.
    pub const IPV4: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation.
    pub const IPV6: u8 = 41;
    /// GRE.
    pub const GRE: u8 = 47;
    /// IPsec ESP.
    pub const ESP: u8 = 50;
    /// IPsec AH.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits as they appear in the header's 13th byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;

    /// Whether every bit of `mask` is set.
    pub const fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
}

/// A TCP segment, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpView<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window (unscaled).
    pub window: u16,
    /// Segment payload (may be shorter than sent when the capture was cut by a snap length).
    pub payload: &'a [u8],
}

/// A UDP datagram, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpView<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Datagram payload.
    pub payload: &'a [u8],
}

/// The transport layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportView<'a> {
    /// TCP.
    Tcp(TcpView<'a>),
    /// UDP.
    Udp(UdpView<'a>),
    /// Any other IP protocol (ICMP, ESP, AH, SCTP ...): its number and payload.
    Other {
        /// IP protocol number.
        proto: u8,
        /// What follows the IP header(s).
        payload: &'a [u8],
    },
}

/// A decoded packet: innermost IP addresses and transport, borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketView<'a> {
    /// Source address of the innermost IP header.
    pub src: IpAddr,
    /// Destination address of the innermost IP header.
    pub dst: IpAddr,
    /// The transport layer.
    pub transport: TransportView<'a>,
    /// How many tunnel headers were removed to get here.
    pub tunnel_depth: u8,
}

impl PacketView<'_> {
    /// IP protocol number of the transport.
    pub fn ip_proto(&self) -> u8 {
        match self.transport {
            TransportView::Tcp(_) => ip_proto::TCP,
            TransportView::Udp(_) => ip_proto::UDP,
            TransportView::Other { proto, .. } => proto,
        }
    }
}

/// One IP fragment, borrowed; [`defrag::Defragmenter`] puts them back together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentView<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol of the reassembled payload.
    pub proto: u8,
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
    /// Byte offset of this fragment's data in the original payload.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// This fragment's data.
    pub payload: &'a [u8],
    /// Tunnel depth at which the fragment was found.
    pub tunnel_depth: u8,
}

/// What a frame decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete packet.
    Packet(PacketView<'a>),
    /// An IP fragment, to be reassembled before its transport can be read.
    Fragment(FragmentView<'a>),
}

/// Decode one frame of the given link type.
///
/// # Errors
/// A [`DecodeError`] naming the kind, layer and offset of the damage. Frames that carry no
/// IP come back as [`DecodeErrorKind::NotIp`], which callers count but need not call damage.
pub fn decode(link_type: LinkType, frame: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let (net, off) = link::strip(link_type, frame)?;
    match net {
        NetProto::Ip => {}
        NetProto::Other(_) => {
            return Err(DecodeError::new(DecodeErrorKind::NotIp, Layer::Link, off));
        }
    }
    let ip = frame.get(off..).ok_or(DecodeError::new(
        DecodeErrorKind::Truncated,
        Layer::Link,
        off,
    ))?;
    decode_ip(ip, off, 0)
}

fn ip_error(e: &etherparse::err::ip::LaxHeaderSliceError, offset: usize) -> DecodeError {
    use etherparse::err::ip::LaxHeaderSliceError as E;
    let kind = match e {
        E::Len(_) => DecodeErrorKind::Truncated,
        E::Content(_) => DecodeErrorKind::BadIpHeader,
    };
    DecodeError::new(kind, Layer::Ip, offset)
}

/// Decode an IP packet starting at `base` bytes into the frame (for error offsets).
fn decode_ip(ip: &[u8], base: usize, depth: usize) -> Result<Decoded<'_>, DecodeError> {
    if depth > MAX_TUNNEL_DEPTH {
        return Err(DecodeError::new(
            DecodeErrorKind::TunnelTooDeep,
            Layer::Tunnel,
            base,
        ));
    }
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|e| ip_error(&e, base))?;
    let src = slice.source_addr();
    let dst = slice.destination_addr();
    let payload = slice.payload();
    let proto = payload.ip_number.0;
    let data = payload.payload;
    let pay_off = base + (ip.len() - data.len().min(ip.len()));

    if payload.fragmented {
        let (id, offset, more) = match &slice {
            LaxIpSlice::Ipv4(v4) => {
                let h = v4.header();
                (
                    u32::from(h.identification()),
                    h.fragments_offset().byte_offset(),
                    h.more_fragments(),
                )
            }
            LaxIpSlice::Ipv6(_) => ipv6_fragment_header(ip).ok_or(DecodeError::new(
                DecodeErrorKind::BadFragment,
                Layer::Ip,
                base,
            ))?,
        };
        return Ok(Decoded::Fragment(FragmentView {
            src,
            dst,
            proto,
            id,
            offset,
            more,
            payload: data,
            tunnel_depth: depth as u8,
        }));
    }
    decode_transport_at(src, dst, proto, data, pay_off, depth)
}

/// Find the IPv6 fragment header by walking the extension-header chain of `ip` (RFC 8200
/// §4) with bounds-checked reads: (identification, byte offset, more fragments).
///
/// We do not use etherparse's extension iterator here: on a lax (partial) parse it builds
/// header slices without checking their length (found by fuzzing, etherparse 0.18.2), and
/// its fragment accessors use the IPv4 bit layout.
fn ipv6_fragment_header(ip: &[u8]) -> Option<(u32, u16, bool)> {
    let mut next = *ip.get(6)?;
    let mut off = 40usize;
    for _ in 0..16 {
        match next {
            44 => {
                let word = u16::from_be_bytes([*ip.get(off + 2)?, *ip.get(off + 3)?]);
                let id = u32::from_be_bytes(ip.get(off + 4..off + 8)?.try_into().ok()?);
                return Some((id, word & !7, word & 1 == 1));
            }
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: length in
            // 8-octet units, not counting the first 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let len = (usize::from(*ip.get(off + 1)?) + 1) * 8;
                next = *ip.get(off)?;
                off = off.checked_add(len)?;
            }
            // Authentication header (RFC 4302): length in 4-octet units, minus 2.
            51 => {
                let len = (usize::from(*ip.get(off + 1)?) + 2) * 4;
                next = *ip.get(off)?;
                off = off.checked_add(len)?;
            }
            _ => return None,
        }
    }
    None
}

/// Decode the transport layer of a (reassembled) IP payload.
///
/// # Errors
/// As [`decode`], for the transport layer and any tunnel inside it.
pub fn decode_transport(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &[u8],
) -> Result<Decoded<'_>, DecodeError> {
    decode_transport_at(src, dst, proto, payload, 0, 0)
}

fn decode_transport_at(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    data: &[u8],
    off: usize,
    depth: usize,
) -> Result<Decoded<'_>, DecodeError> {
    let transport = match proto {
        ip_proto::TCP => {
            let tcp = TcpSlice::from_slice(data).map_err(|e| {
                let kind = match e {
                    etherparse::err::tcp::HeaderSliceError::Len(_) => DecodeErrorKind::Truncated,
                    etherparse::err::tcp::HeaderSliceError::Content(_) => {
                        DecodeErrorKind::BadTcpHeader
                    }
                };
                DecodeError::new(kind, Layer::Transport, off)
            })?;
            let header = tcp.header_slice();
            TransportView::Tcp(TcpView {
                src_port: tcp.source_port(),
                dst_port: tcp.destination_port(),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags: TcpFlags(header.get(13).copied().unwrap_or(0)),
                window: tcp.window_size(),
                payload: tcp.payload(),
            })
        }
        ip_proto::UDP => {
            let udp = UdpSlice::from_slice_lax(data)
                .map_err(|_| DecodeError::new(DecodeErrorKind::Truncated, Layer::Transport, off))?;
            let (sp, dp, payload) = (udp.source_port(), udp.destination_port(), udp.payload());
            // Follow VXLAN/GENEVE only to an inner TCP/UDP flow; an inner ICMP (or a frame
            // that does not decode) stays the outer UDP flow, as TShark counts it.
            if let Ok(Some(inner)) = udp_tunnel(dp, payload, off + 8, depth) {
                let inner_has_ports = match inner {
                    Decoded::Packet(p) => !matches!(p.transport, TransportView::Other { .. }),
                    Decoded::Fragment(f) => f.proto == ip_proto::TCP || f.proto == ip_proto::UDP,
                };
                if inner_has_ports {
                    return Ok(inner);
                }
            }
            TransportView::Udp(UdpView {
                src_port: sp,
                dst_port: dp,
                payload,
            })
        }
        ip_proto::IPV4 | ip_proto::IPV6 => return decode_ip(data, off, depth + 1),
        ip_proto::GRE => {
            if let Some(inner) = gre(data, off, depth)? {
                return Ok(inner);
            }
            TransportView::Other {
                proto,
                payload: data,
            }
        }
        _ => TransportView::Other {
            proto,
            payload: data,
        },
    };
    Ok(Decoded::Packet(PacketView {
        src,
        dst,
        transport,
        tunnel_depth: depth as u8,
    }))
}

/// VXLAN (RFC 7348, udp/4789) and GENEVE (RFC 8926, udp/6081) carry frames we follow.
fn udp_tunnel(
    dst_port: u16,
    p: &[u8],
    off: usize,
    depth: usize,
) -> Result<Option<Decoded<'_>>, DecodeError> {
    match dst_port {
        4789 => {
            // flags byte with the I bit set, 3 reserved, VNI (3), reserved (1); then Ethernet.
            if p.len() < 8 + 14 || p[0] & 0x08 == 0 {
                return Ok(None);
            }
            inner_ethernet(p, 8, off, depth).map(Some)
        }
        6081 => {
            // version (2 bits, must be 0) + option length in 4-byte words, flags, protocol.
            let Some(&[b0, _, hi, lo]) = p.get(0..4) else {
                return Ok(None);
            };
            if b0 >> 6 != 0 {
                return Ok(None);
            }
            let hdr = 8 + usize::from(b0 & 0x3f) * 4;
            match u16::from_be_bytes([hi, lo]) {
                link::ETH_TEB => inner_ethernet(p, hdr, off, depth).map(Some),
                0x0800 | 0x86dd => match p.get(hdr..) {
                    Some(ip) => decode_ip(ip, off + hdr, depth + 1).map(Some),
                    None => Ok(None),
                },
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

fn inner_ethernet(
    p: &[u8],
    at: usize,
    off: usize,
    depth: usize,
) -> Result<Decoded<'_>, DecodeError> {
    let frame = p.get(at..).ok_or(DecodeError::new(
        DecodeErrorKind::Truncated,
        Layer::Tunnel,
        off,
    ))?;
    let (net, eth_off) = link::ethernet(frame, 0)?;
    match net {
        NetProto::Ip => {
            let ip = frame.get(eth_off..).ok_or(DecodeError::new(
                DecodeErrorKind::Truncated,
                Layer::Tunnel,
                off + at,
            ))?;
            decode_ip(ip, off + at + eth_off, depth + 1)
        }
        NetProto::Other(_) => Err(DecodeError::new(
            DecodeErrorKind::NotIp,
            Layer::Tunnel,
            off + at,
        )),
    }
}

/// GRE version 0 (RFC 2784/2890) and version 1 (PPTP, RFC 2637).
fn gre(p: &[u8], off: usize, depth: usize) -> Result<Option<Decoded<'_>>, DecodeError> {
    let Some(&[f0, f1, hi, lo]) = p.get(0..4) else {
        return Ok(None);
    };
    let proto = u16::from_be_bytes([hi, lo]);
    let version = f1 & 0x07;
    let mut hdr = 4;
    match version {
        0 => {
            if f0 & 0x80 != 0 {
                hdr += 4; // checksum + reserved
            }
            if f0 & 0x20 != 0 {
                hdr += 4; // key
            }
            if f0 & 0x10 != 0 {
                hdr += 4; // sequence number
            }
            match proto {
                0x0800 | 0x86dd => match p.get(hdr..) {
                    Some(ip) => decode_ip(ip, off + hdr, depth + 1).map(Some),
                    None => Ok(None),
                },
                link::ETH_TEB => inner_ethernet(p, hdr, off, depth).map(Some),
                _ => Ok(None),
            }
        }
        1 if proto == 0x880b => {
            hdr += 4; // payload length + call id
            if f0 & 0x10 != 0 {
                hdr += 4;
            }
            if f1 & 0x80 != 0 {
                hdr += 4; // acknowledgment number
            }
            // PPP: optional FF 03, then protocol; only IP payloads are followed.
            let mut at = hdr;
            if p.get(at..at + 2) == Some(&[0xff, 0x03]) {
                at += 2;
            }
            let ip_at = match p.get(at..at + 2) {
                Some([0x00, 0x21]) | Some([0x00, 0x57]) => at + 2,
                Some([0x21, _]) | Some([0x57, _]) => at + 1,
                _ => return Ok(None),
            };
            match p.get(ip_at..) {
                Some(ip) if !ip.is_empty() => decode_ip(ip, off + ip_at, depth + 1).map(Some),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, PacketBuilder};

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 1000, 65535)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn ethernet_ipv4_tcp_decodes_to_ports_and_payload() {
        let f = tcp_frame(b"hello");
        let Decoded::Packet(p) = decode(LinkType::ETHERNET, &f).unwrap() else {
            panic!()
        };
        let TransportView::Tcp(t) = p.transport else {
            panic!()
        };
        assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 443, 1000));
        assert!(t.flags.has(TcpFlags::SYN));
        assert_eq!(t.payload, b"hello");
        assert_eq!(p.src, IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn bad_ip_header_length_is_counted_not_panicking() {
        let mut f = tcp_frame(b"x");
        f[14] = 0x42; // IHL 2 < 5
        assert_eq!(
            decode(LinkType::ETHERNET, &f).unwrap_err().kind,
            DecodeErrorKind::BadIpHeader
        );
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error_or_a_shorter_packet() {
        let f = tcp_frame(b"payload bytes");
        for n in 0..f.len() {
            let _ = decode(LinkType::ETHERNET, &f[..n]);
            let _ = decode(LinkType::RAW, &f[..n]);
            let _ = decode(LinkType::LINUX_SLL2, &f[..n]);
        }
    }

    #[test]
    fn ipv4_in_ipv6_tunnel_yields_the_inner_flow() {
        let inner = {
            let b = PacketBuilder::ipv4([192, 168, 0, 1], [192, 168, 0, 2], 64).udp(5353, 53);
            let mut v = Vec::new();
            b.write(&mut v, b"dnsq").unwrap();
            v
        };
        let mut outer = Vec::new();
        PacketBuilder::ipv6([0x20; 16], [0x21; 16], 64)
            .write(&mut outer, IpNumber(ip_proto::IPV4), &inner)
            .unwrap();
        let Decoded::Packet(p) = decode(LinkType::RAW, &outer).unwrap() else {
            panic!()
        };
        assert_eq!(p.tunnel_depth, 1);
        assert_eq!(p.src, IpAddr::from([192, 168, 0, 1]));
        assert!(
            matches!(p.transport, TransportView::Udp(u) if u.dst_port == 53 && u.payload == b"dnsq")
        );
    }

    #[test]
    fn ipv6_fragment_header_fields_follow_rfc_8200() {
        // IPv6 header + fragment header: next 17, offset 179 (1432 bytes), M = 1, id 2.
        let mut p = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
        p.extend_from_slice(&[0x20; 16]);
        p.extend_from_slice(&[0x21; 16]);
        p.extend_from_slice(&[17, 0, 0x05, 0x99, 0, 0, 0, 2]);
        p.extend_from_slice(&[0x58; 8]);
        let Decoded::Fragment(f) = decode(LinkType::RAW, &p).unwrap() else {
            panic!()
        };
        assert_eq!((f.offset, f.more, f.id, f.proto), (1432, true, 2, 17));
    }

    #[test]
    fn ipv4_fragment_is_reported_for_reassembly() {
        let mut f = tcp_frame(&[0u8; 16]);
        // Set MF (flags byte at IP offset 6).
        f[14 + 6] |= 0x20;
        let Decoded::Fragment(fr) = decode(LinkType::ETHERNET, &f).unwrap() else {
            panic!()
        };
        assert!(fr.more);
        assert_eq!(fr.offset, 0);
        assert_eq!(fr.proto, ip_proto::TCP);
    }
}
