//! Routing keys: the flow identity a dispatcher needs, read straight from the raw frame.
//!
//! A multi-core dispatcher must pick a worker for every packet before any worker sees it,
//! on one thread, so what it reads must cost a few loads, not a full [`decode`]. This
//! module owns that shortcut: [`route_key`] reads the link header (Ethernet with up to
//! [`MAX_VLAN_TAGS`] 802.1Q/802.1ad tags, Linux SLL/SLL2, BSD null/loop, raw IP), the IPv4
//! header (IHL, total length, fragment offset and MF), the IPv6 header and its extension
//! headers (hop-by-hop, routing, destination options, fragment; at most
//! [`MAX_IPV6_EXTENSIONS`]) and the TCP/UDP ports, and hands anything else (tunnels:
//! IP-in-IP, GRE, VXLAN, GENEVE; MPLS, PPPoE, 802.3 LLC/SNAP, PPP, NFLOG, radiotap; IPv4/IPv6
//! authentication headers; unusual extension chains) to the full decoder,
//! [`route_key_decoded`].
//!
//! Contract: for **every** frame, `route_key(l, f) == route_key_decoded(l, f)`. The fast
//! path copies the decoder's rules, including etherparse's lax length handling (an IPv4
//! total length below the header length or beyond the frame falls back to the frame
//! length; an IPv6 payload length of zero or beyond the frame likewise) and its reading of
//! the IPv6 fragment header (see `decode::ipv6`). `tests/route_corpus.rs` checks the contract over
//! every packet of the shared corpus, the unit tests below over truncated and mutated
//! frames, and `fuzz/fuzz_targets/route.rs` over arbitrary bytes.
//!
//! Must not know about flows: the key is addresses, ports, protocol and, for an IP
//! fragment, where it belongs ([`FragmentPart`]: the datagram's identification, the
//! fragment's offset and length, and the ports at the start of a first fragment); how a
//! dispatcher hashes it is its own business. IPv6 fragments go to the decoder (its walk of
//! the extension chain names the fragment header). Never panics: every read
//! is a bounds-checked `get`.
//!
//! [`decode`]: super::decode

use super::{Decoded, TransportView, decode, ip_proto};
use crate::capture::LinkType;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How many 802.1Q/802.1ad tags the fast path steps over before handing the frame to the
/// decoder (which follows up to 16).
pub const MAX_VLAN_TAGS: usize = 4;

/// How many IPv6 extension headers the fast path walks before handing the packet to the
/// decoder.
pub const MAX_IPV6_EXTENSIONS: usize = 8;

use super::link::{
    ETH_IPV4, ETH_IPV6, ETH_MPLS, ETH_MPLS_MC, ETH_PPPOE, ETH_QINQ, ETH_QINQ_OLD, ETH_VLAN,
};

/// IPv6 extension header numbers (RFC 8200 §4).
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTIONS: u8 = 60;

/// UDP ports the decoder looks inside for a tunnelled frame (VXLAN, GENEVE).
const UDP_VXLAN: u16 = 4789;
const UDP_GENEVE: u16 = 6081;

/// The innermost flow identity of a frame, as the decoder would find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteKey {
    /// Source address of the innermost IP header.
    pub src: IpAddr,
    /// Destination address of the innermost IP header.
    pub dst: IpAddr,
    /// TCP/UDP source port; 0 for other protocols and for fragments.
    pub src_port: u16,
    /// TCP/UDP destination port; 0 for other protocols and for fragments.
    pub dst_port: u16,
    /// IP protocol of the transport (of the reassembled payload, for a fragment).
    pub proto: u8,
    /// For an IP fragment, its place in its datagram (its transport header, if any, is not
    /// read as such); `None` for a whole packet.
    pub fragment: Option<FragmentPart>,
}

impl RouteKey {
    /// Whether the packet is an IP fragment rather than a whole packet.
    pub fn is_fragment(&self) -> bool {
        self.fragment.is_some()
    }
}

/// Where an IP fragment belongs, as the reassembler ([`super::defrag`]) will file it: its
/// datagram is named by the key's addresses and protocol and [`FragmentPart::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentPart {
    /// IPv4 identification (RFC 791) or IPv6 fragment identification (RFC 8200 §4.5).
    pub id: u32,
    /// Byte offset of this fragment's data in the datagram's payload.
    pub offset: u16,
    /// More fragments follow (MF / M flag).
    pub more: bool,
    /// Bytes of datagram payload this fragment carries.
    pub len: u32,
    /// For the first fragment (offset 0) of TCP or UDP holding at least 4 bytes: the
    /// source and destination ports at the start of its payload, which the reassembled
    /// datagram's transport header will carry (the reassembler keeps the first copy of
    /// every byte). `None` otherwise.
    pub ports: Option<(u16, u16)>,
}

impl FragmentPart {
    fn new(proto: u8, id: u32, offset: u16, more: bool, payload: &[u8]) -> FragmentPart {
        let ports = match (offset, proto) {
            (0, ip_proto::TCP | ip_proto::UDP) => be16(payload, 0).zip(be16(payload, 2)),
            _ => None,
        };
        FragmentPart {
            id,
            offset,
            more,
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            ports,
        }
    }
}

/// What the fast path found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fast {
    /// The key, exactly as the decoder would give it.
    Key(RouteKey),
    /// The decoder would fail on this frame (not IP, truncated, malformed).
    NoKey,
    /// Not handled here: ask the decoder.
    Slow,
}

/// The routing key of a frame of link type `link`, or `None` when the frame carries no IP
/// or does not decode: exactly what [`route_key_decoded`] returns, read from the raw bytes
/// for the common encapsulations and by the full decoder for the rest (module docs).
///
/// # Panics
/// Never.
pub fn route_key(link: LinkType, frame: &[u8]) -> Option<RouteKey> {
    match fast(link, frame) {
        Fast::Key(k) => Some(k),
        Fast::NoKey => None,
        Fast::Slow => route_key_decoded(link, frame),
    }
}

/// The routing key of a frame by the full decoder ([`decode`]): the
/// reference [`route_key`] must agree with, and its fallback.
///
/// # Panics
/// Never.
pub fn route_key_decoded(link: LinkType, frame: &[u8]) -> Option<RouteKey> {
    match decode(link, frame) {
        Ok(Decoded::Packet(p)) => {
            let (src_port, dst_port) = match p.transport {
                TransportView::Tcp(t) => (t.src_port, t.dst_port),
                TransportView::Udp(u) => (u.src_port, u.dst_port),
                TransportView::Other { .. } => (0, 0),
            };
            Some(RouteKey {
                src: p.src,
                dst: p.dst,
                src_port,
                dst_port,
                proto: p.ip_proto(),
                fragment: None,
            })
        }
        Ok(Decoded::Fragment(f)) => Some(RouteKey {
            src: f.src,
            dst: f.dst,
            src_port: 0,
            dst_port: 0,
            proto: f.proto,
            fragment: Some(FragmentPart::new(
                f.proto, f.id, f.offset, f.more, f.payload,
            )),
        }),
        Err(_) => None,
    }
}

/// Whether the fast path answers for this frame by itself (no full decode). For
/// benchmarks and coverage counts.
pub fn route_is_fast(link: LinkType, frame: &[u8]) -> bool {
    !matches!(fast(link, frame), Fast::Slow)
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at.checked_add(1)?)?,
    ]))
}

/// Where the IP header starts, by the link layer (the rules of `link::strip`).
enum Link {
    Ip(usize),
    NotIp,
    Slow,
}

fn fast(link: LinkType, frame: &[u8]) -> Fast {
    let off = match link_offset(link, frame) {
        Link::Ip(off) => off,
        Link::NotIp => return Fast::NoKey,
        Link::Slow => return Fast::Slow,
    };
    match frame.get(off..) {
        Some(ip) => ip_packet(ip),
        None => Fast::NoKey,
    }
}

fn link_offset(link: LinkType, f: &[u8]) -> Link {
    match link {
        LinkType::ETHERNET => {
            let Some(et) = be16(f, 12) else {
                return Link::NotIp;
            };
            if et < 0x0600 {
                // 802.3 length field with LLC/SNAP: left to the decoder.
                return Link::Slow;
            }
            ethertype(f, et, 14)
        }
        LinkType::RAW
        | LinkType::IPV4
        | LinkType::IPV6
        | LinkType::RAW_ALT12
        | LinkType::RAW_ALT14 => Link::Ip(0),
        LinkType::NULL | LinkType::LOOP => {
            let Some(&[a, b, c, d]) = f.get(0..4) else {
                return Link::NotIp;
            };
            // Either byte order; AF_INET 2, AF_INET6 10, 24, 28, 30 (as the decoder).
            let is_ip = |fam: u32| matches!(fam, 2 | 10 | 24 | 28 | 30);
            if is_ip(u32::from_le_bytes([a, b, c, d])) || is_ip(u32::from_be_bytes([a, b, c, d])) {
                Link::Ip(4)
            } else {
                Link::NotIp
            }
        }
        LinkType::LINUX_SLL => match be16(f, 14) {
            Some(et) => ethertype(f, et, 16),
            None => Link::NotIp,
        },
        LinkType::LINUX_SLL2 => match be16(f, 0) {
            Some(et) if f.len() >= 20 => ethertype(f, et, 20),
            _ => Link::NotIp,
        },
        _ => Link::Slow,
    }
}

/// Follow VLAN tags from the EtherType `et` found just before `off`.
fn ethertype(f: &[u8], mut et: u16, mut off: usize) -> Link {
    for _ in 0..=MAX_VLAN_TAGS {
        match et {
            ETH_IPV4 | ETH_IPV6 => return Link::Ip(off),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                let Some(next) = off.checked_add(2).and_then(|at| be16(f, at)) else {
                    return Link::NotIp;
                };
                et = next;
                off = off.saturating_add(4);
            }
            ETH_MPLS | ETH_MPLS_MC | ETH_PPPOE => return Link::Slow,
            _ => return Link::NotIp,
        }
    }
    Link::Slow
}

/// An IP packet: the version nibble decides, as in etherparse's `LaxIpSlice`.
fn ip_packet(p: &[u8]) -> Fast {
    match p.first().map(|b| b >> 4) {
        Some(4) => ipv4(p),
        Some(6) => ipv6(p),
        _ => Fast::NoKey,
    }
}

fn ipv4(p: &[u8]) -> Fast {
    let Some(&b0) = p.first() else {
        return Fast::NoKey;
    };
    let header_len = usize::from(b0 & 0x0f) * 4;
    if header_len < 20 || p.len() < header_len {
        return Fast::NoKey;
    }
    let (Some(total), Some(frag), Some(&proto), Some(s), Some(d)) = (
        be16(p, 2),
        be16(p, 6),
        p.get(9),
        p.get(12..16),
        p.get(16..20),
    ) else {
        return Fast::NoKey;
    };
    let (Ok(s), Ok(d)) = (<[u8; 4]>::try_from(s), <[u8; 4]>::try_from(d)) else {
        return Fast::NoKey;
    };
    let (src, dst) = (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)));
    if proto == ip_proto::AH {
        // etherparse reads an authentication header after IPv4: left to the decoder.
        return Fast::Slow;
    }
    // Lax length: a total length below the header or beyond the frame means "to the end".
    let total = usize::from(total);
    let end = if total < header_len || p.len() < total {
        p.len()
    } else {
        total
    };
    let Some(payload) = p.get(header_len..end) else {
        return Fast::NoKey;
    };
    // RFC 791: MF is 0x2000 of the flags/offset word, the offset its low 13 bits (in
    // 8-byte units).
    if frag & 0x3fff != 0 {
        let (Some(id), offset) = (be16(p, 4), (frag & 0x1fff) << 3) else {
            return Fast::NoKey;
        };
        let part = FragmentPart::new(proto, u32::from(id), offset, frag & 0x2000 != 0, payload);
        return Fast::Key(RouteKey {
            src,
            dst,
            src_port: 0,
            dst_port: 0,
            proto,
            fragment: Some(part),
        });
    }
    transport(src, dst, proto, payload)
}

/// IPv6 (RFC 8200) with its extension-header chain, read as etherparse 0.18's lax
/// `Ipv6ExtensionsSlice` reads it: hop-by-hop only first, then routing, destination options
/// and fragment headers in any order; the packet counts as fragmented when any fragment
/// header has a non-zero byte 2 or a bit of `0x9f` set in byte 3 (etherparse's test, which
/// takes bit 7 for the M flag; RFC 8200 puts M in bit 0, which the mask also covers). The
/// decoder then finds the same fragment header with its own walk, so this never disagrees.
fn ipv6(p: &[u8]) -> Fast {
    let (Some(plen), Some(&first_next), Some(s), Some(d)) =
        (be16(p, 4), p.get(6), p.get(8..24), p.get(24..40))
    else {
        return Fast::NoKey;
    };
    let (Ok(s), Ok(d)) = (<[u8; 16]>::try_from(s), <[u8; 16]>::try_from(d)) else {
        return Fast::NoKey;
    };
    let (src, dst) = (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)));
    let after = p.get(40..).unwrap_or_default();
    let plen = usize::from(plen);
    // Lax length: zero (jumbogram or unset) or beyond the frame means "to the end".
    let mut rest = if plen == 0 || after.len() < plen {
        after
    } else {
        after.get(..plen).unwrap_or(after)
    };
    let mut next = first_next;
    let mut fragmented = false;
    for i in 0..=MAX_IPV6_EXTENSIONS {
        if i == MAX_IPV6_EXTENSIONS {
            return Fast::Slow;
        }
        let len = match next {
            IPV6_HOP_BY_HOP if i == 0 => ext_len(rest),
            IPV6_ROUTING | IPV6_DEST_OPTIONS => ext_len(rest),
            IPV6_FRAGMENT => {
                let (Some(&b2), Some(&b3)) = (rest.get(2), rest.get(3)) else {
                    return Fast::Slow;
                };
                fragmented |= b2 != 0 || b3 & 0x9f != 0;
                Some(8)
            }
            // A hop-by-hop header not first, or an authentication header: the decoder's.
            IPV6_HOP_BY_HOP | ip_proto::AH => return Fast::Slow,
            _ => break,
        };
        let (Some(len), Some(&n)) = (len, rest.first()) else {
            return Fast::Slow;
        };
        let Some(tail) = rest.get(len..) else {
            return Fast::Slow;
        };
        next = n;
        rest = tail;
    }
    if fragmented {
        // The decoder takes the fragment's identity from its own walk of the chain and its
        // payload from etherparse's: left to it (fragments are rare).
        return Fast::Slow;
    }
    transport(src, dst, next, rest)
}

/// Length of a generic IPv6 extension header (RFC 8200 §4.3–4.6: 8-octet units, not
/// counting the first 8), when at least 8 bytes are there.
fn ext_len(rest: &[u8]) -> Option<usize> {
    if rest.len() < 8 {
        return None;
    }
    Some((usize::from(*rest.get(1)?) + 1) * 8)
}

/// The transport header of a whole packet, with etherparse's checks: TCP needs 20 bytes and
/// a data offset of at least 5 words that fits; UDP needs its 8-byte header.
fn transport(src: IpAddr, dst: IpAddr, proto: u8, d: &[u8]) -> Fast {
    let (src_port, dst_port) = match proto {
        ip_proto::TCP => {
            let (Some(sp), Some(dp), Some(&off)) = (be16(d, 0), be16(d, 2), d.get(12)) else {
                return Fast::NoKey;
            };
            let header_len = usize::from(off >> 4) * 4;
            if d.len() < 20 || header_len < 20 || d.len() < header_len {
                return Fast::NoKey;
            }
            (sp, dp)
        }
        ip_proto::UDP => {
            let (Some(sp), Some(dp)) = (be16(d, 0), be16(d, 2)) else {
                return Fast::NoKey;
            };
            if d.len() < 8 {
                return Fast::NoKey;
            }
            if dp == UDP_VXLAN || dp == UDP_GENEVE {
                return Fast::Slow;
            }
            (sp, dp)
        }
        ip_proto::IPV4 | ip_proto::IPV6 | ip_proto::GRE => return Fast::Slow,
        _ => (0, 0),
    };
    Fast::Key(RouteKey {
        src,
        dst,
        src_port,
        dst_port,
        proto,
        fragment: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, PacketBuilder};
    use proptest::prelude::*;

    fn built(b: etherparse::PacketBuilderStep<etherparse::UdpHeader>, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    fn tcp4(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 1, 65535)
            .ack(7)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn udp6(payload: &[u8]) -> Vec<u8> {
        built(
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv6([0x20; 16], [0x21; 16], 64)
                .udp(5353, 53),
            payload,
        )
    }

    fn vlan_udp4(payload: &[u8]) -> Vec<u8> {
        built(
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .double_vlan(
                    etherparse::VlanId::try_new(10).unwrap(),
                    etherparse::VlanId::try_new(20).unwrap(),
                )
                .ipv4([192, 168, 1, 1], [192, 168, 1, 2], 64)
                .udp(1000, 2000),
            payload,
        )
    }

    fn sll2(inner_ip: &[u8]) -> Vec<u8> {
        let mut f = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        f.extend_from_slice(inner_ip);
        f
    }

    /// IPv6 extension headers for [`raw_ipv6_with`].
    #[derive(Clone, Copy)]
    enum Ext {
        HopByHop,
        Routing,
        DestOptions,
        Fragment { offset: u16, more: bool },
    }

    impl Ext {
        fn number(self) -> u8 {
            match self {
                Ext::HopByHop => IPV6_HOP_BY_HOP,
                Ext::Routing => IPV6_ROUTING,
                Ext::DestOptions => IPV6_DEST_OPTIONS,
                Ext::Fragment { .. } => IPV6_FRAGMENT,
            }
        }
    }

    /// A raw IPv6 packet with the given extension headers, then `payload` of protocol
    /// `last`; every header serialized by etherparse.
    fn raw_ipv6_with(exts: &[Ext], last: u8, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, e) in exts.iter().enumerate() {
            let next = IpNumber(exts.get(i + 1).map_or(last, |n| n.number()));
            match *e {
                Ext::Fragment { offset, more } => body.extend_from_slice(
                    &etherparse::Ipv6FragmentHeader::new(
                        next,
                        etherparse::IpFragOffset::try_new(offset).unwrap(),
                        more,
                        9,
                    )
                    .to_bytes(),
                ),
                _ => body.extend_from_slice(
                    &etherparse::Ipv6RawExtHeader::new_raw(next, &[1, 4, 0, 0, 0, 0])
                        .unwrap()
                        .to_bytes(),
                ),
            }
        }
        body.extend_from_slice(payload);
        let header = etherparse::Ipv6Header {
            payload_length: u16::try_from(body.len()).unwrap(),
            next_header: IpNumber(exts.first().map_or(last, |n| n.number())),
            hop_limit: 64,
            source: [0x30; 16],
            destination: [0x31; 16],
            ..Default::default()
        };
        let mut v = header.to_bytes().to_vec();
        v.extend_from_slice(&body);
        v
    }

    fn agree(link: LinkType, f: &[u8]) {
        assert_eq!(
            route_key(link, f),
            route_key_decoded(link, f),
            "link {link:?}, frame {f:02x?}"
        );
    }

    const LINKS: [LinkType; 9] = [
        LinkType::ETHERNET,
        LinkType::RAW,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::NULL,
        LinkType::LOOP,
        LinkType::LINUX_SLL,
        LinkType::LINUX_SLL2,
        LinkType::PPP,
    ];

    #[test]
    fn ethernet_tcp_gives_the_five_tuple_without_decoding() {
        let f = tcp4(b"hello");
        assert!(route_is_fast(LinkType::ETHERNET, &f));
        let k = route_key(LinkType::ETHERNET, &f).unwrap();
        assert_eq!((k.src_port, k.dst_port, k.proto), (40000, 443, 6));
        assert_eq!(k.src, IpAddr::from([10, 0, 0, 1]));
        assert!(!k.is_fragment());
        agree(LinkType::ETHERNET, &f);
    }

    #[test]
    fn qinq_udp_and_ipv6_udp_take_the_fast_path_and_agree() {
        for f in [vlan_udp4(b"x"), udp6(b"query")] {
            assert!(route_is_fast(LinkType::ETHERNET, &f));
            assert_eq!(route_key(LinkType::ETHERNET, &f).unwrap().proto, 17);
            agree(LinkType::ETHERNET, &f);
        }
    }

    #[test]
    fn ipv4_fragments_carry_their_identity_and_the_first_one_its_ports() {
        let mut f = tcp4(&[0u8; 32]);
        f[14 + 4..14 + 6].copy_from_slice(&0x1234u16.to_be_bytes());
        f[14 + 6] |= 0x20; // MF
        let k = route_key(LinkType::ETHERNET, &f).unwrap();
        assert_eq!((k.src_port, k.dst_port, k.proto), (0, 0, 6));
        let part = k.fragment.unwrap();
        assert_eq!((part.id, part.offset, part.more), (0x1234, 0, true));
        assert_eq!(part.len, 20 + 32, "the TCP header and data");
        assert_eq!(
            part.ports,
            Some((40000, 443)),
            "offset 0 starts with the ports"
        );
        agree(LinkType::ETHERNET, &f);
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10; // offset 16 words, MF clear
        let part = route_key(LinkType::ETHERNET, &f).unwrap().fragment.unwrap();
        assert_eq!((part.offset, part.more, part.ports), (128, false, None));
        agree(LinkType::ETHERNET, &f);
    }

    #[test]
    fn ipv6_extension_chain_with_fragment_header_is_walked() {
        let udp = built(
            PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 1).udp(7, 9),
            b"u",
        );
        let udp_hdr = &udp[20..];
        for (offset, more, fragmented) in [
            (0, false, false), // atomic fragment: offset 0, M clear
            (0, true, true),
            (179, false, true),
        ] {
            let chain = [
                Ext::HopByHop,
                Ext::Routing,
                Ext::DestOptions,
                Ext::Fragment { offset, more },
            ];
            let p = raw_ipv6_with(&chain, 17, udp_hdr);
            // A fragment's identity is the decoder's to read; an atomic fragment is a
            // whole packet, routed by its ports.
            assert_eq!(route_is_fast(LinkType::RAW, &p), !fragmented);
            let k = route_key(LinkType::RAW, &p).unwrap();
            assert_eq!((k.is_fragment(), k.proto), (fragmented, 17));
            if let Some(part) = k.fragment {
                // (etherparse 0.18 writes M where RFC 8200 keeps offset bits, so only the
                // identification is compared here; the decoder's reading is agreed below.)
                assert_eq!(part.id, 9);
            } else {
                assert_eq!((k.src_port, k.dst_port), (7, 9));
            }
            agree(LinkType::RAW, &p);
        }
    }

    #[test]
    fn tunnels_and_authentication_headers_fall_back_to_the_decoder() {
        let inner = built(
            PacketBuilder::ipv4([192, 168, 0, 1], [192, 168, 0, 2], 64).udp(5353, 53),
            b"q",
        );
        let mut outer = Vec::new();
        PacketBuilder::ipv6([0x20; 16], [0x21; 16], 64)
            .write(&mut outer, IpNumber(ip_proto::IPV4), &inner)
            .unwrap();
        assert!(!route_is_fast(LinkType::RAW, &outer));
        let k = route_key(LinkType::RAW, &outer).unwrap();
        assert_eq!(k.src, IpAddr::from([192, 168, 0, 1]));
        agree(LinkType::RAW, &outer);
        let vx = built(
            PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).udp(1, UDP_VXLAN),
            b"12345678",
        );
        assert!(!route_is_fast(LinkType::RAW, &vx));
        agree(LinkType::RAW, &vx);
    }

    #[test]
    fn non_ip_and_damaged_frames_have_no_key() {
        let mut arp = tcp4(b"");
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(route_key(LinkType::ETHERNET, &arp), None);
        let mut bad_ihl = tcp4(b"x");
        bad_ihl[14] = 0x42;
        assert_eq!(route_key(LinkType::ETHERNET, &bad_ihl), None);
        let mut bad_tcp_offset = tcp4(b"x");
        bad_tcp_offset[14 + 20 + 12] = 0x40; // data offset 4 words
        assert_eq!(route_key(LinkType::ETHERNET, &bad_tcp_offset), None);
        assert_eq!(route_key(LinkType::ETHERNET, &[]), None);
        assert_eq!(route_key(LinkType(9999), &[0x45; 64]), None);
        for f in [arp, bad_ihl, bad_tcp_offset] {
            agree(LinkType::ETHERNET, &f);
        }
    }

    #[test]
    fn every_truncation_of_every_frame_agrees_with_the_decoder() {
        let ip4 = tcp4(b"payload")[14..].to_vec();
        let frames = [
            tcp4(b"payload"),
            udp6(b"dns"),
            vlan_udp4(b"abc"),
            sll2(&ip4),
            ip4.clone(),
            raw_ipv6_with(&[Ext::Routing, Ext::DestOptions], 6, &tcp4(b"t")[34..]),
        ];
        for f in &frames {
            for n in 0..=f.len() {
                for link in LINKS {
                    agree(link, &f[..n]);
                }
            }
        }
    }

    #[test]
    fn every_single_byte_change_of_the_headers_agrees_with_the_decoder() {
        let frames = [tcp4(b"payload"), udp6(b"dns"), vlan_udp4(b"abc")];
        for f in &frames {
            let headers = f.len().min(80);
            for at in 0..headers {
                for v in [0x00, 0x01, 0x06, 0x11, 0x2c, 0x3c, 0x45, 0x60, 0x81, 0xff] {
                    let mut g = f.clone();
                    g[at] = v;
                    for link in LINKS {
                        agree(link, &g);
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn random_frames_agree_with_the_decoder(
            link in prop::sample::select(LINKS.to_vec()),
            prefix in prop::sample::select(vec![
                vec![],
                vec![0u8; 12],
                vec![0x08, 0x00],
                vec![0x86, 0xdd],
                vec![2, 0, 0, 0],
                vec![0, 0, 0, 30],
            ]),
            version in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00]),
            body in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut f = prefix;
            if link == LinkType::ETHERNET && f.len() == 12 {
                f.extend_from_slice(&[0x08, 0x00]);
            }
            f.push(version);
            f.extend_from_slice(&body);
            prop_assert_eq!(route_key(link, &f), route_key_decoded(link, &f));
        }
    }
}
