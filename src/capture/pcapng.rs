//! pcapng files: sections, interfaces and packet blocks.
//!
//! Format: <https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html>. A file is one or
//! more sections, each opened by a Section Header Block (SHB) whose byte-order magic sets the
//! byte order of every block up to the next SHB. Interface Description Blocks (IDB) number
//! the interfaces of their section from 0; each carries its link type, snap length and
//! timestamp resolution (`if_tsresol`, default 10^-6 s) and offset (`if_tsoffset`, seconds).
//!
//! Packets come from Enhanced Packet Blocks (EPB, type 6), Simple Packet Blocks (SPB, type
//! 3: interface 0, no timestamp, captured length `min(original length, snaplen)`) and the
//! obsolete Packet Block (type 2). Every other block (name resolution, interface statistics,
//! decryption secrets, custom, systemd journal, unknown) is skipped by its length.
//!
//! Framing (type, leading length, 32-bit alignment, trailing length) is checked here for every
//! block, so each error can say which length field is wrong and where; the per-packet hot path
//! reads the packet block's five fixed fields directly. Section and interface headers, and
//! their options, go through rusticata's `pcap-parser`, whose types stay inside this file.

use pcap_parser::pcapng::{
    InterfaceDescriptionBlock, OptionCode, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le,
};

use super::error::{BlockLengthProblem, CaptureError, CaptureStructure};
use super::{LinkType, MAX_CAPLEN, MAX_INTERFACES, Packet, SourceStats, read_u32, snaplen_limit};
use crate::time::Timestamp;

/// Block type of a Section Header Block: the same in both byte orders.
pub(crate) const SHB_TYPE: u32 = 0x0a0d_0d0a;
const IDB_TYPE: u32 = 1;
const PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// How raw timestamp units of one interface become nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    /// 10^-e s with e <= 9: multiply by 10^(9-e).
    Multiply(u64),
    /// 10^-e s with 9 < e <= 19: divide by 10^(e-9).
    Divide(u64),
    /// 2^-p s with p <= 63.
    Binary(u32),
}

impl Resolution {
    /// From the raw `if_tsresol` byte; `None` when it cannot be represented.
    fn from_tsresol(tsresol: u8) -> Option<Resolution> {
        if tsresol & 0x80 != 0 {
            let p = u32::from(tsresol & 0x7f);
            (p <= 63).then_some(Resolution::Binary(p))
        } else {
            let e = u32::from(tsresol);
            if e <= 9 {
                Some(Resolution::Multiply(10u64.pow(9 - e)))
            } else if e <= 19 {
                Some(Resolution::Divide(10u64.pow(e - 9)))
            } else {
                None
            }
        }
    }

    #[inline]
    fn to_nanos(self, units: u64) -> u64 {
        match self {
            Resolution::Multiply(m) => units.saturating_mul(m),
            // `d` is at least 10 by construction.
            Resolution::Divide(d) => units / d.max(1),
            Resolution::Binary(p) => {
                let secs = units >> p;
                let frac = u128::from(units & ((1u64 << p) - 1));
                let frac_ns = (frac * u128::from(NANOS_PER_SEC)) >> p;
                secs.saturating_mul(NANOS_PER_SEC)
                    .saturating_add(u64::try_from(frac_ns).unwrap_or(u64::MAX))
            }
        }
    }
}

/// One interface of the current section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    resolution: Resolution,
    /// `if_tsoffset` in nanoseconds.
    offset_ns: i128,
}

impl Interface {
    #[inline]
    fn timestamp(&self, high: u32, low: u32) -> Timestamp {
        let units = (u64::from(high) << 32) | u64::from(low);
        let ns = self.resolution.to_nanos(units);
        if self.offset_ns == 0 {
            return Timestamp(ns);
        }
        let shifted = i128::from(ns).saturating_add(self.offset_ns);
        Timestamp(u64::try_from(shifted.max(0)).unwrap_or(u64::MAX))
    }
}

/// The reader state of a pcapng file.
#[derive(Debug, Default)]
pub(crate) struct PcapngReader {
    big_endian: bool,
    /// Whether an SHB has been read: nothing else may come first.
    in_section: bool,
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, given to Simple Packet Blocks (which have none).
    last_ts: Timestamp,
}

/// The fixed fields of a packet block.
struct PacketFields {
    interface: u32,
    ts_high: u32,
    ts_low: u32,
    caplen: u32,
    orig_len: u32,
}

impl PcapngReader {
    /// A reader at the start of a file (whose first block must be an SHB).
    pub(crate) fn new() -> PcapngReader {
        PcapngReader::default()
    }

    /// Read blocks from `*pos` until a packet, a clean end of file, or an error. On success
    /// `*pos` moves past the packet's block; on error it stays at the damaged block.
    pub(crate) fn next<'a>(
        &mut self,
        buf: &'a [u8],
        pos: &mut usize,
        packet: u64,
        stats: &mut SourceStats,
    ) -> Option<Result<Packet<'a>, CaptureError>> {
        loop {
            let start = *pos;
            let rest = buf.get(start..)?;
            if rest.is_empty() {
                return None;
            }
            let offset = start as u64;
            let available = rest.len() as u64;
            let Some(raw_type) = read_u32(rest, 0, false) else {
                return Some(Err(truncated_header(offset, packet, 8, available)));
            };
            if raw_type == SHB_TYPE {
                let Some(bom) = read_u32(rest, 8, false) else {
                    return Some(Err(truncated_header(offset, packet, 12, available)));
                };
                self.big_endian = match bom {
                    BYTE_ORDER_MAGIC => false,
                    m if m == BYTE_ORDER_MAGIC.swap_bytes() => true,
                    magic => {
                        return Some(Err(CaptureError::BadByteOrderMagic {
                            offset,
                            packet,
                            magic,
                        }));
                    }
                };
            } else if !self.in_section {
                return Some(Err(CaptureError::MalformedBlock {
                    structure: CaptureStructure::PcapngBlock,
                    offset,
                    packet,
                    detail: "block before the first section header block",
                }));
            }
            let be = self.big_endian;
            let (Some(block_type), Some(length)) = (read_u32(rest, 0, be), read_u32(rest, 4, be))
            else {
                return Some(Err(truncated_header(offset, packet, 8, available)));
            };
            let problem = if length < 12 {
                Some(BlockLengthProblem::TooSmall)
            } else if length % 4 != 0 {
                Some(BlockLengthProblem::NotMultipleOf4)
            } else {
                None
            };
            if let Some(problem) = problem {
                return Some(Err(CaptureError::BadBlockLength {
                    offset,
                    packet,
                    length,
                    problem,
                }));
            }
            let Some(block) = usize::try_from(length).ok().and_then(|l| rest.get(..l)) else {
                return Some(Err(CaptureError::Truncated {
                    structure: CaptureStructure::PcapngBlock,
                    offset,
                    packet,
                    needed: u64::from(length),
                    available,
                }));
            };
            let trailing = read_u32(block, block.len().saturating_sub(4), be).unwrap_or(0);
            if trailing != length {
                return Some(Err(CaptureError::BlockLengthMismatch {
                    offset,
                    packet,
                    leading: length,
                    trailing,
                }));
            }
            // The block is framed: `block` is exactly `length` bytes, body between the
            // 8-byte header and the 4-byte trailer.
            let body = block.get(8..block.len().saturating_sub(4)).unwrap_or(&[]);
            let next_pos = start.saturating_add(block.len());
            let err = |structure, detail| {
                Some(Err(CaptureError::MalformedBlock {
                    structure,
                    offset,
                    packet,
                    detail,
                }))
            };
            match block_type {
                SHB_TYPE => {
                    // body: byte-order magic (4), major (2), minor (2), section length (8).
                    let Some(version) = read_u32(body, 4, be) else {
                        return err(
                            CaptureStructure::SectionHeaderBlock,
                            "shorter than its 16 fixed bytes",
                        );
                    };
                    if body.len() < 16 {
                        return err(
                            CaptureStructure::SectionHeaderBlock,
                            "shorter than its 16 fixed bytes",
                        );
                    }
                    let (major, minor) = if be {
                        ((version >> 16) as u16, version as u16)
                    } else {
                        (version as u16, (version >> 16) as u16)
                    };
                    if major != 1 {
                        return Some(Err(CaptureError::UnsupportedPcapngVersion {
                            offset,
                            packet,
                            major,
                            minor,
                        }));
                    }
                    self.in_section = true;
                    self.interfaces.clear();
                    stats.sections = stats.sections.saturating_add(1);
                }
                IDB_TYPE => {
                    if let Err(e) = self.add_interface(block, offset, packet) {
                        return Some(Err(e));
                    }
                }
                EPB_TYPE | PB_TYPE => {
                    let (structure, fields) = if block_type == EPB_TYPE {
                        (
                            CaptureStructure::EnhancedPacketBlock,
                            read_u32(body, 0, be).map(|id| (id, 0)),
                        )
                    } else {
                        // Packet Block: 16-bit interface id, 16-bit drop count.
                        let id = body.get(0..2).and_then(|b| <[u8; 2]>::try_from(b).ok());
                        let id = id.map(|b| {
                            if be {
                                u16::from_be_bytes(b)
                            } else {
                                u16::from_le_bytes(b)
                            }
                        });
                        (
                            CaptureStructure::PacketBlock,
                            id.map(|id| (u32::from(id), 0)),
                        )
                    };
                    let (
                        Some((interface, _)),
                        Some(ts_high),
                        Some(ts_low),
                        Some(caplen),
                        Some(orig_len),
                    ) = (
                        fields,
                        read_u32(body, 4, be),
                        read_u32(body, 8, be),
                        read_u32(body, 12, be),
                        read_u32(body, 16, be),
                    )
                    else {
                        return err(structure, "shorter than its 20 fixed bytes");
                    };
                    let fields = PacketFields {
                        interface,
                        ts_high,
                        ts_low,
                        caplen,
                        orig_len,
                    };
                    let result = self.packet(body, 20, fields, offset, packet, structure);
                    if result.is_ok() {
                        *pos = next_pos;
                    }
                    return Some(result);
                }
                SPB_TYPE => {
                    let Some(orig_len) = read_u32(body, 0, be) else {
                        return err(
                            CaptureStructure::SimplePacketBlock,
                            "shorter than its 4 fixed bytes",
                        );
                    };
                    let Some(iface) = self.interfaces.first().copied() else {
                        return Some(Err(CaptureError::UnknownInterface {
                            offset,
                            packet,
                            interface: 0,
                            described: 0,
                        }));
                    };
                    // Captured length: min(original length, snaplen of interface 0), where a
                    // snaplen of 0 means "no limit" (pcapng §4.4).
                    let caplen = match iface.snaplen {
                        0 => orig_len,
                        s => orig_len.min(s),
                    };
                    if caplen > MAX_CAPLEN {
                        return Some(Err(CaptureError::CaplenTooLarge {
                            offset,
                            packet,
                            caplen,
                            limit: MAX_CAPLEN,
                        }));
                    }
                    let Some(data) = body.get(4..).and_then(|d| d.get(..caplen as usize)) else {
                        return err(
                            CaptureStructure::SimplePacketBlock,
                            "packet length exceeds the block's data",
                        );
                    };
                    *pos = next_pos;
                    return Some(Ok(Packet {
                        ts: self.last_ts,
                        link_type: iface.link_type,
                        data,
                        orig_len,
                    }));
                }
                _ => {
                    stats.skipped_blocks = stats.skipped_blocks.saturating_add(1);
                }
            }
            *pos = next_pos;
        }
    }

    /// Validate a packet block's fixed fields and slice its data.
    #[inline]
    fn packet<'a>(
        &mut self,
        body: &'a [u8],
        data_start: usize,
        f: PacketFields,
        offset: u64,
        packet: u64,
        structure: CaptureStructure,
    ) -> Result<Packet<'a>, CaptureError> {
        let Some(iface) = self.interfaces.get(f.interface as usize).copied() else {
            return Err(CaptureError::UnknownInterface {
                offset,
                packet,
                interface: f.interface,
                described: u32::try_from(self.interfaces.len()).unwrap_or(u32::MAX),
            });
        };
        if f.caplen > MAX_CAPLEN {
            return Err(CaptureError::CaplenTooLarge {
                offset,
                packet,
                caplen: f.caplen,
                limit: MAX_CAPLEN,
            });
        }
        if let Some(snaplen) = snaplen_limit(iface.snaplen)
            && f.caplen > snaplen
        {
            return Err(CaptureError::CaplenExceedsSnaplen {
                offset,
                packet,
                caplen: f.caplen,
                snaplen,
            });
        }
        let Some(data) = body
            .get(data_start..)
            .and_then(|d| d.get(..f.caplen as usize))
        else {
            return Err(CaptureError::MalformedBlock {
                structure,
                offset,
                packet,
                detail: "captured length exceeds the block's data",
            });
        };
        let ts = iface.timestamp(f.ts_high, f.ts_low);
        self.last_ts = ts;
        Ok(Packet {
            ts,
            link_type: iface.link_type,
            data,
            orig_len: f.orig_len,
        })
    }

    /// Parse a framed Interface Description Block and append its interface.
    fn add_interface(
        &mut self,
        block: &[u8],
        offset: u64,
        packet: u64,
    ) -> Result<(), CaptureError> {
        let parsed = if self.big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let Ok((_, idb)) = parsed else {
            return Err(CaptureError::MalformedBlock {
                structure: CaptureStructure::InterfaceDescriptionBlock,
                offset,
                packet,
                detail: "unreadable fixed fields or options",
            });
        };
        if self.interfaces.len() >= MAX_INTERFACES as usize {
            return Err(CaptureError::TooManyInterfaces {
                offset,
                packet,
                limit: MAX_INTERFACES,
            });
        }
        let (tsresol, tsoffset) = time_options(&idb, self.big_endian);
        let Some(resolution) = Resolution::from_tsresol(tsresol) else {
            return Err(CaptureError::BadTimestampResolution {
                offset,
                packet,
                tsresol,
            });
        };
        self.interfaces.push(Interface {
            link_type: LinkType(u32::from(u16::try_from(idb.linktype.0).unwrap_or(0))),
            snaplen: idb.snaplen,
            resolution,
            offset_ns: i128::from(tsoffset) * i128::from(NANOS_PER_SEC),
        });
        Ok(())
    }
}

/// `if_tsresol` (default 6: microseconds) and `if_tsoffset` (default 0) of an IDB, the
/// offset decoded in the section's byte order (pcap-parser's own helper assumes little-endian).
fn time_options(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> (u8, i64) {
    let mut tsresol = 6u8;
    let mut tsoffset = 0i64;
    for opt in &idb.options {
        let Ok(value) = opt.as_bytes() else { continue };
        if opt.code == OptionCode::IfTsresol {
            if let Some(&v) = value.first() {
                tsresol = v;
            }
        } else if opt.code == OptionCode::IfTsoffset
            && let Some(b) = value.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok())
        {
            tsoffset = if big_endian {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            };
        }
    }
    (tsresol, tsoffset)
}

/// Fewer bytes than a block's type and length (8), or an SHB's byte-order magic (12).
fn truncated_header(offset: u64, packet: u64, needed: u64, available: u64) -> CaptureError {
    CaptureError::Truncated {
        structure: CaptureStructure::PcapngBlockHeader,
        offset,
        packet,
        needed,
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_resolutions_scale_to_nanoseconds() {
        let us = Resolution::from_tsresol(6).unwrap();
        assert_eq!(us.to_nanos(1_500_000), 1_500_000_000);
        let ns = Resolution::from_tsresol(9).unwrap();
        assert_eq!(ns.to_nanos(42), 42);
        let ps = Resolution::from_tsresol(12).unwrap();
        assert_eq!(ps.to_nanos(1_234_567), 1_234);
        let s = Resolution::from_tsresol(0).unwrap();
        assert_eq!(s.to_nanos(3), 3_000_000_000);
    }

    #[test]
    fn binary_resolution_splits_seconds_and_fraction() {
        // 2^-10 s units: 1024 units = 1 s; 512 units = 0.5 s.
        let r = Resolution::from_tsresol(0x80 | 10).unwrap();
        assert_eq!(r.to_nanos(1024 + 512), 1_500_000_000);
        let r30 = Resolution::from_tsresol(0x80 | 30).unwrap();
        assert_eq!(r30.to_nanos(1 << 30), 1_000_000_000);
        let r0 = Resolution::from_tsresol(0x80).unwrap();
        assert_eq!(r0.to_nanos(7), 7_000_000_000);
    }

    #[test]
    fn unrepresentable_resolutions_are_refused() {
        assert!(Resolution::from_tsresol(20).is_none());
        assert!(Resolution::from_tsresol(0x80 | 64).is_none());
        assert!(Resolution::from_tsresol(19).is_some());
        assert!(Resolution::from_tsresol(0x80 | 63).is_some());
    }

    #[test]
    fn huge_timestamps_saturate_instead_of_wrapping() {
        let s = Resolution::from_tsresol(0).unwrap();
        assert_eq!(s.to_nanos(u64::MAX), u64::MAX);
        let r = Resolution::from_tsresol(0x80 | 1).unwrap();
        assert_eq!(r.to_nanos(u64::MAX), u64::MAX);
    }

    #[test]
    fn negative_offset_clamps_at_epoch() {
        let iface = Interface {
            link_type: LinkType::ETHERNET,
            snaplen: 0,
            resolution: Resolution::Multiply(1),
            offset_ns: -5 * i128::from(NANOS_PER_SEC),
        };
        assert_eq!(iface.timestamp(0, 1), Timestamp(0));
        assert_eq!(iface.timestamp(0, 6_000_000_000u64 as u32), {
            let ns = u64::from(6_000_000_000u64 as u32);
            Timestamp(ns.saturating_sub(5_000_000_000))
        });
    }
}
