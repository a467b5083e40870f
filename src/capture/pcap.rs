//! Classic pcap (libpcap) files: the 24-byte file header and the records after it.
//!
//! Format: <https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html> (file header §4,
//! record header §5). Both byte orders, microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`)
//! timestamps, and the "modified" format of Alexey Kuznetzov's patches (`a1b2cd34`), whose
//! record headers carry 8 more bytes (interface index, protocol, packet type, padding) that
//! we skip.
//!
//! The header and records are a handful of fixed-size integers, read here directly:
//! pcap-parser's `parse_pcap_frame*` would do the same four reads, lacks the byte-swapped
//! modified format, and reports an `Incomplete` without saying which field ran short.
//! The file header's `thiszone` is ignored, as libpcap does (writers always set 0). A record
//! fraction out of range (≥ 10^6 µs or 10^9 ns, seen in fuzzed files) is carried into the
//! seconds, never rejected: the packet bytes are still good.

use super::error::{CaptureError, CaptureStructure};
use super::{CaptureFormat, LinkType, MAX_CAPLEN, Packet, read_u32, snaplen_limit};
use crate::time::Timestamp;

/// Size of the classic pcap file header.
pub(crate) const FILE_HEADER_LEN: usize = 24;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

/// Whether four leading bytes are a classic pcap magic number, in either byte order.
pub(crate) fn is_pcap_magic(magic_be: u32) -> bool {
    [MAGIC_MICROS, MAGIC_NANOS, MAGIC_MODIFIED]
        .iter()
        .any(|&m| m == magic_be || m.swap_bytes() == magic_be)
}

/// The reader state of a classic pcap file: everything its file header says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PcapReader {
    big_endian: bool,
    nanos: bool,
    modified: bool,
    link_type: LinkType,
    snaplen: u32,
}

impl PcapReader {
    /// Parse the file header. `bytes` starts with a pcap magic (checked by the caller).
    pub(crate) fn parse_header(bytes: &[u8]) -> Result<PcapReader, CaptureError> {
        let magic_be = read_u32(bytes, 0, true).ok_or(CaptureError::Empty)?;
        let (big_endian, magic) = if [MAGIC_MICROS, MAGIC_NANOS, MAGIC_MODIFIED].contains(&magic_be)
        {
            (true, magic_be)
        } else {
            (false, magic_be.swap_bytes())
        };
        if bytes.len() < FILE_HEADER_LEN {
            return Err(CaptureError::Truncated {
                structure: CaptureStructure::PcapFileHeader,
                offset: 0,
                packet: 0,
                needed: FILE_HEADER_LEN as u64,
                available: bytes.len() as u64,
            });
        }
        let version = read_u32(bytes, 4, big_endian).unwrap_or(0);
        // Major then minor, each 16 bits, in file byte order.
        let (major, minor) = if big_endian {
            ((version >> 16) as u16, version as u16)
        } else {
            (version as u16, (version >> 16) as u16)
        };
        if major != 2 {
            return Err(CaptureError::UnsupportedPcapVersion { major, minor });
        }
        let snaplen = read_u32(bytes, 16, big_endian).unwrap_or(0);
        // The link-type field's upper 16 bits may hold an FCS length and flags
        // (draft-ietf-opsawg-pcap §4, "LinkType and additional information"): libpcap keeps
        // the low 26 bits (`LT_LINKTYPE`), and so do we.
        let link_type = LinkType(read_u32(bytes, 20, big_endian).unwrap_or(0) & 0x03ff_ffff);
        Ok(PcapReader {
            big_endian,
            nanos: magic == MAGIC_NANOS,
            modified: magic == MAGIC_MODIFIED,
            link_type,
            snaplen,
        })
    }

    /// The format this header announces.
    pub(crate) fn format(&self) -> CaptureFormat {
        if self.modified {
            CaptureFormat::ModifiedPcap
        } else {
            CaptureFormat::Pcap {
                nanos: self.nanos,
                big_endian: self.big_endian,
            }
        }
    }

    /// The file's link type.
    #[cfg(test)]
    pub(crate) fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// Read the record at `*pos`. `None` at a clean end of file; on success `*pos` moves
    /// past the record; on error it stays.
    #[inline]
    pub(crate) fn next<'a>(
        &self,
        buf: &'a [u8],
        pos: &mut usize,
        packet: u64,
    ) -> Option<Result<Packet<'a>, CaptureError>> {
        let start = *pos;
        let rest = buf.get(start..)?;
        if rest.is_empty() {
            return None;
        }
        let header_len: usize = if self.modified { 24 } else { 16 };
        let offset = start as u64;
        let available = rest.len() as u64;
        let (Some(ts_sec), Some(ts_frac), Some(caplen), Some(orig_len)) = (
            read_u32(rest, 0, self.big_endian),
            read_u32(rest, 4, self.big_endian),
            read_u32(rest, 8, self.big_endian),
            read_u32(rest, 12, self.big_endian),
        ) else {
            return Some(Err(truncated(
                CaptureStructure::PcapRecordHeader,
                offset,
                packet,
                header_len as u64,
                available,
            )));
        };
        if rest.len() < header_len {
            return Some(Err(truncated(
                CaptureStructure::PcapRecordHeader,
                offset,
                packet,
                header_len as u64,
                available,
            )));
        }
        if caplen > MAX_CAPLEN {
            return Some(Err(CaptureError::CaplenTooLarge {
                offset,
                packet,
                caplen,
                limit: MAX_CAPLEN,
            }));
        }
        if let Some(snaplen) = snaplen_limit(self.snaplen)
            && caplen > snaplen
        {
            return Some(Err(CaptureError::CaplenExceedsSnaplen {
                offset,
                packet,
                caplen,
                snaplen,
            }));
        }
        // caplen <= MAX_CAPLEN, so this cannot overflow.
        let record_len = header_len + caplen as usize;
        let Some(data) = rest.get(header_len..record_len) else {
            return Some(Err(truncated(
                CaptureStructure::PcapRecord,
                offset,
                packet,
                record_len as u64,
                available,
            )));
        };
        let frac_ns = if self.nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1_000
        };
        let ts = Timestamp(
            u64::from(ts_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(frac_ns),
        );
        *pos = start.saturating_add(record_len);
        Some(Ok(Packet {
            ts,
            link_type: self.link_type,
            data,
            orig_len,
        }))
    }
}

fn truncated(
    structure: CaptureStructure,
    offset: u64,
    packet: u64,
    needed: u64,
    available: u64,
) -> CaptureError {
    CaptureError::Truncated {
        structure,
        offset,
        packet,
        needed,
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic_le: u32, big_endian: bool, snaplen: u32, link: u32) -> Vec<u8> {
        let words: [u32; 5] = [magic_le, 0, 0, snaplen, link];
        let mut out = Vec::new();
        let put32 = |out: &mut Vec<u8>, v: u32| {
            if big_endian {
                out.extend_from_slice(&v.to_be_bytes())
            } else {
                out.extend_from_slice(&v.to_le_bytes())
            }
        };
        let put16 = |out: &mut Vec<u8>, v: u16| {
            if big_endian {
                out.extend_from_slice(&v.to_be_bytes())
            } else {
                out.extend_from_slice(&v.to_le_bytes())
            }
        };
        put32(&mut out, words[0]);
        put16(&mut out, 2);
        put16(&mut out, 4);
        put32(&mut out, words[1]);
        put32(&mut out, words[2]);
        put32(&mut out, words[3]);
        put32(&mut out, words[4]);
        out
    }

    #[test]
    fn big_endian_micro_header_reads_fields_in_file_order() {
        let bytes = header(MAGIC_MICROS, true, 65535, 1);
        let r = PcapReader::parse_header(&bytes).unwrap();
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanos: false,
                big_endian: true
            }
        );
        assert_eq!(r.link_type(), LinkType::ETHERNET);
        assert_eq!(r.snaplen, 65535);
    }

    #[test]
    fn swapped_modified_magic_is_recognised_both_ways() {
        for be in [false, true] {
            let bytes = header(MAGIC_MODIFIED, be, 262144, 1);
            let r = PcapReader::parse_header(&bytes).unwrap();
            assert_eq!(r.format(), CaptureFormat::ModifiedPcap);
            assert!(r.modified);
        }
    }

    #[test]
    fn version_other_than_two_is_rejected() {
        let mut bytes = header(MAGIC_MICROS, false, 65535, 1);
        bytes[4] = 3;
        assert!(matches!(
            PcapReader::parse_header(&bytes),
            Err(CaptureError::UnsupportedPcapVersion { major: 3, minor: 4 })
        ));
    }

    #[test]
    fn link_type_upper_bits_are_fcs_info_and_dropped() {
        let bytes = header(MAGIC_NANOS, false, 65535, 0x1400_0001);
        let r = PcapReader::parse_header(&bytes).unwrap();
        assert_eq!(r.link_type(), LinkType::ETHERNET);
    }

    #[test]
    fn micro_and_nano_fractions_scale_to_nanoseconds() {
        for (magic, frac, want) in [
            (MAGIC_MICROS, 123_456u32, 5_123_456_000u64),
            (MAGIC_NANOS, 123_456_789, 5_123_456_789),
        ] {
            let mut bytes = header(magic, false, 65535, 1);
            for v in [5u32, frac, 1, 60] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            bytes.push(0xab);
            let r = PcapReader::parse_header(&bytes).unwrap();
            let mut pos = FILE_HEADER_LEN;
            let p = r.next(&bytes, &mut pos, 0).unwrap().unwrap();
            assert_eq!(p.ts, Timestamp(want));
            assert_eq!(p.data, &[0xab]);
            assert_eq!(p.orig_len, 60);
            assert!(r.next(&bytes, &mut pos, 1).is_none());
        }
    }
}
