//! Link layers: find where the network-layer packet starts and what it is.
//!
//! These headers are small and fixed, so they are read here by hand with bounds-checked
//! accessors; everything from the IP header down goes through etherparse.

use super::error::{DecodeError, DecodeErrorKind, Layer};
use crate::capture::LinkType;

/// What the link layer says follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetProto {
    /// IPv4 or IPv6: decided by the version nibble.
    Ip,
    /// Something that is not IP (ARP, LLDP, ...), by EtherType.
    Other(u16),
}

pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86dd;
pub(crate) const ETH_VLAN: u16 = 0x8100;
pub(crate) const ETH_QINQ: u16 = 0x88a8;
pub(crate) const ETH_QINQ_OLD: u16 = 0x9100;
pub(crate) const ETH_MPLS: u16 = 0x8847;
pub(crate) const ETH_MPLS_MC: u16 = 0x8848;
pub(crate) const ETH_PPPOE: u16 = 0x8864;
/// Transparent Ethernet bridging (GRE, GENEVE payload type).
pub(crate) const ETH_TEB: u16 = 0x6558;

/// The most VLAN/MPLS labels followed before the frame is called malformed.
const MAX_LABELS: usize = 16;

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline]
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn truncated(offset: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Truncated, Layer::Link, offset)
}

fn by_ethertype(et: u16) -> NetProto {
    match et {
        ETH_IPV4 | ETH_IPV6 => NetProto::Ip,
        other => NetProto::Other(other),
    }
}

/// Strip the link header of `data` (of type `link`). Returns what follows and its offset.
pub(crate) fn strip(link: LinkType, data: &[u8]) -> Result<(NetProto, usize), DecodeError> {
    match link {
        LinkType::ETHERNET => ethernet(data, 0),
        LinkType::RAW
        | LinkType::IPV4
        | LinkType::IPV6
        | LinkType::RAW_ALT12
        | LinkType::RAW_ALT14 => Ok((NetProto::Ip, 0)),
        LinkType::NULL | LinkType::LOOP => {
            // 4-byte address family: host byte order for NULL, network order for LOOP. We
            // accept either order, since captures move between machines.
            let fam = data.get(0..4).ok_or_else(|| truncated(0))?;
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD),
            // 28 (FreeBSD), 30 (macOS).
            let is_ip = |f: u32| matches!(f, 2 | 10 | 24 | 28 | 30);
            if is_ip(le) || is_ip(be) {
                Ok((NetProto::Ip, 4))
            } else {
                Ok((NetProto::Other(0), 4))
            }
        }
        LinkType::LINUX_SLL => {
            // 16-byte header: packet type, ARPHRD type, address length, 8 address bytes,
            // protocol (EtherType).
            let proto = be16(data, 14).ok_or_else(|| truncated(0))?;
            after_ethertype(data, proto, 16)
        }
        LinkType::LINUX_SLL2 => {
            // 20-byte header starting with the protocol (EtherType).
            let proto = be16(data, 0).ok_or_else(|| truncated(0))?;
            if data.len() < 20 {
                return Err(truncated(0));
            }
            after_ethertype(data, proto, 20)
        }
        LinkType::PPP => ppp(data, 0),
        LinkType::NFLOG => nflog(data),
        LinkType::IEEE802_11_RADIOTAP => radiotap(data),
        _ => Err(DecodeError::new(
            DecodeErrorKind::UnsupportedLinkType,
            Layer::Link,
            0,
        )),
    }
}

/// Continue after an EtherType found at a link header's end (`offset`).
fn after_ethertype(data: &[u8], et: u16, offset: usize) -> Result<(NetProto, usize), DecodeError> {
    match et {
        ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD | ETH_MPLS | ETH_MPLS_MC | ETH_PPPOE => {
            // Re-enter the Ethernet tag loop at this point, as if the tag followed MACs.
            ethertype_chain(data, et, offset)
        }
        _ => Ok((by_ethertype(et), offset)),
    }
}

/// Ethernet II or 802.3 with LLC/SNAP, starting at `start`.
pub(crate) fn ethernet(data: &[u8], start: usize) -> Result<(NetProto, usize), DecodeError> {
    let et = be16(data, start + 12).ok_or_else(|| truncated(start))?;
    if et < 0x0600 {
        // 802.3 length field: LLC follows. Only SNAP (AA AA 03 + OUI + EtherType) carries IP.
        let llc = start + 14;
        return match data.get(llc..llc + 3) {
            Some([0xaa, 0xaa, 0x03]) => {
                let et = be16(data, llc + 6).ok_or_else(|| truncated(llc))?;
                after_ethertype(data, et, llc + 8)
            }
            Some(_) => Ok((NetProto::Other(0), llc)),
            None => Err(truncated(llc)),
        };
    }
    ethertype_chain(data, et, start + 14)
}

/// Follow VLAN tags, MPLS labels and PPPoE to the network layer.
fn ethertype_chain(
    data: &[u8],
    mut et: u16,
    mut off: usize,
) -> Result<(NetProto, usize), DecodeError> {
    for _ in 0..MAX_LABELS {
        match et {
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                et = be16(data, off + 2).ok_or_else(|| truncated(off))?;
                off += 4;
            }
            ETH_MPLS | ETH_MPLS_MC => {
                // Pop labels to the bottom of stack, then guess by the first nibble (RFC 4928
                // keeps 4 and 6 for IP; 0 is the pseudowire control word before Ethernet).
                for _ in 0..MAX_LABELS {
                    let label = data.get(off..off + 4).ok_or_else(|| truncated(off))?;
                    off += 4;
                    if label[2] & 0x01 != 0 {
                        let first = *data.get(off).ok_or_else(|| truncated(off))?;
                        return match first >> 4 {
                            4 | 6 => Ok((NetProto::Ip, off)),
                            0 => ethernet(data, off + 4),
                            _ => Ok((NetProto::Other(ETH_MPLS), off)),
                        };
                    }
                }
                return Err(DecodeError::new(
                    DecodeErrorKind::TunnelTooDeep,
                    Layer::Link,
                    off,
                ));
            }
            ETH_PPPOE => {
                // 6-byte PPPoE session header, then the PPP protocol field.
                if data.len() < off + 6 {
                    return Err(truncated(off));
                }
                return ppp_protocol(data, off + 6);
            }
            other => return Ok((by_ethertype(other), off)),
        }
    }
    Err(DecodeError::new(
        DecodeErrorKind::TunnelTooDeep,
        Layer::Link,
        off,
    ))
}

/// PPP in HDLC-like framing (RFC 1662): optional FF 03 address/control, then the protocol.
fn ppp(data: &[u8], start: usize) -> Result<(NetProto, usize), DecodeError> {
    let off = if data.get(start..start + 2) == Some(&[0xff, 0x03]) {
        start + 2
    } else {
        start
    };
    ppp_protocol(data, off)
}

fn ppp_protocol(data: &[u8], off: usize) -> Result<(NetProto, usize), DecodeError> {
    let first = *data.get(off).ok_or_else(|| truncated(off))?;
    // Protocol-field compression (RFC 1661 §6.5): an odd first byte is a 1-byte protocol.
    let (proto, len) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        (be16(data, off).ok_or_else(|| truncated(off))?, 2)
    };
    match proto {
        0x0021 | 0x0057 => Ok((NetProto::Ip, off + len)),
        other => Ok((NetProto::Other(other), off + len)),
    }
}

/// NFLOG (DLT 239): 4-byte header then TLVs; type 9 (NFULA_PAYLOAD) holds the IP packet.
fn nflog(data: &[u8]) -> Result<(NetProto, usize), DecodeError> {
    let mut off = 4;
    if data.len() < off {
        return Err(truncated(0));
    }
    while off + 4 <= data.len() {
        let len = usize::from(le16(data, off).ok_or_else(|| truncated(off))?);
        let ty = le16(data, off + 2).ok_or_else(|| truncated(off))?;
        if len < 4 {
            return Err(truncated(off));
        }
        if ty == 9 {
            return Ok((NetProto::Ip, off + 4));
        }
        // TLVs are padded to 4 bytes.
        off = off.saturating_add((len + 3) & !3);
    }
    Ok((NetProto::Other(0), off))
}

/// Radiotap + 802.11 data frame + LLC/SNAP.
fn radiotap(data: &[u8]) -> Result<(NetProto, usize), DecodeError> {
    let rt_len = usize::from(le16(data, 2).ok_or_else(|| truncated(0))?);
    let fc = data
        .get(rt_len..rt_len + 2)
        .ok_or_else(|| truncated(rt_len))?;
    let frame_type = (fc[0] >> 2) & 0x3;
    let subtype = fc[0] >> 4;
    if frame_type != 2 {
        return Ok((NetProto::Other(0), rt_len));
    }
    // Protected frames carry ciphertext we cannot read; null-data subtypes carry nothing.
    if fc[1] & 0x40 != 0 || subtype & 0x4 != 0 {
        return Ok((NetProto::Other(0), rt_len));
    }
    let mut hdr = 24;
    if fc[1] & 0x03 == 0x03 {
        hdr += 6; // four-address frame
    }
    if subtype & 0x8 != 0 {
        hdr += 2; // QoS control
        if fc[1] & 0x80 != 0 {
            hdr += 4; // HT control
        }
    }
    let llc = rt_len + hdr;
    match data.get(llc..llc + 3) {
        Some([0xaa, 0xaa, 0x03]) => {
            let et = be16(data, llc + 6).ok_or_else(|| truncated(llc))?;
            Ok((by_ethertype(et), llc + 8))
        }
        Some(_) => Ok((NetProto::Other(0), llc)),
        None => Err(truncated(llc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qinq_ethernet_reaches_ip_after_both_tags() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[
            0x88, 0xa8, 0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x08, 0x00, 0x45,
        ]);
        assert_eq!(ethernet(&f, 0), Ok((NetProto::Ip, 22)));
    }

    #[test]
    fn mpls_bottom_of_stack_then_ipv4() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x47, 0, 0, 0, 0x40, 0, 0, 1, 0x40, 0x45]);
        assert_eq!(ethernet(&f, 0), Ok((NetProto::Ip, 22)));
    }

    #[test]
    fn truncated_vlan_is_an_error_not_a_panic() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert_eq!(
            ethernet(&f, 0).unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
    }

    #[test]
    fn null_loopback_accepts_both_byte_orders() {
        assert_eq!(
            strip(LinkType::NULL, &[2, 0, 0, 0, 0x45]),
            Ok((NetProto::Ip, 4))
        );
        assert_eq!(
            strip(LinkType::NULL, &[0, 0, 0, 30, 0x60]),
            Ok((NetProto::Ip, 4))
        );
    }

    #[test]
    fn unknown_link_type_is_counted_as_unsupported() {
        let e = strip(LinkType(9999), &[0; 64]).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnsupportedLinkType);
    }
}
