//! Capture: reading packets from pcap/pcapng files and live sources.
//!
//! Owns the packet sources. Must not copy packet bytes: a [`Packet`] borrows the capture
//! buffer (the memory-mapped file, or a live source's ring).
//!
//! # Files
//!
//! [`CaptureFile::open`] maps a file ([`CaptureBuffer`], the project's one memory map),
//! sniffs its format **by magic number, never by name** (classic pcap in both byte orders
//! with micro- or nanosecond timestamps, the "modified" pcap format, pcapng), and
//! [`CaptureFile::packets`] walks it:
//!
//! ```
//! use entrospect::capture::{CaptureFile, writer::PcapngWriter, LinkType};
//! use entrospect::Timestamp;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut w = PcapngWriter::new(Vec::new())?;
//! let eth = w.add_interface(LinkType::ETHERNET, 65535)?;
//! w.write_packet(eth, Timestamp(1_700_000_000_000_000_000), &[0u8; 60])?;
//! let file = CaptureFile::from_bytes(w.into_inner()?)?;
//! for packet in file.packets() {
//!     let packet = packet?; // the one error after the last good packet, if the file is damaged
//!     assert_eq!(packet.data.len(), 60);
//! }
//! # Ok(()) }
//! ```
//!
//! # Contracts
//!
//! - **No panics, no allocation per packet.** Every length read from the file is checked
//!   against the bytes that remain before it is used; packet data is a slice of the buffer.
//! - **Bounded.** A record whose captured length exceeds [`MAX_CAPLEN`] (256 KiB) or the
//!   snap length of its file or interface is corrupt: the iterator stops there with an error
//!   instead of trusting it. A section may describe at most [`MAX_INTERFACES`] interfaces.
//!   Unmapped sources (pipes) are read up to [`mmap::MAX_READ_BYTES`].
//! - **Damage ends the stream once.** The iterator yields every packet before the first
//!   damaged record or block, then **one** `Err` naming its byte offset and the packet
//!   index, then `None`. `open` fails only for I/O errors and input that is not a capture.
//! - **Time.** Timestamps become [`Timestamp`] (ns since the epoch), honouring each pcapng
//!   interface's `if_tsresol` (power of 10 or of 2) and `if_tsoffset`. Simple Packet Blocks
//!   carry no timestamp and get the previous packet's.
//!
//! # Snap length rule
//!
//! A captured length larger than the snap length is an error, except that a header snap
//! length below [`SNAPLEN_FLOOR`] (64 bytes) is not trusted as a bound: 0 means "unlimited"
//! in pcapng, and real files exist whose header says 1 while their records hold a whole
//! link header (zeek's `trunc-hdr.pcap`: snaplen 1, one 8-byte record, which Wireshark and
//! tshark read whole and libpcap cuts to the snap length). For such files only
//! [`MAX_CAPLEN`] applies, and the record is delivered whole.

pub mod error;
#[cfg(any(feature = "pcap", feature = "pnet"))]
pub mod live;
#[cfg(feature = "pcap")]
pub mod live_pcap;
#[cfg(feature = "pnet")]
pub mod live_pnet;
pub mod mmap;
mod pcap;
mod pcapng;
pub mod writer;

pub use error::{BlockLengthProblem, CaptureError, CaptureStructure};
pub use mmap::CaptureBuffer;

use crate::time::Timestamp;
use serde::Serialize;
use std::path::Path;

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

/// The largest captured length accepted for one record (256 KiB, Wireshark's largest
/// snap length for ordinary link types). Larger means the record header is corrupt.
pub const MAX_CAPLEN: u32 = 256 * 1024;

/// The most interfaces one pcapng section may describe.
pub const MAX_INTERFACES: u32 = 65_536;

/// Header snap lengths below this are not used as a bound on captured lengths (see the
/// module docs, "Snap length rule").
pub const SNAPLEN_FLOOR: u32 = 64;

/// The bound a header snap length puts on captured lengths, if any.
#[inline]
pub(crate) fn snaplen_limit(snaplen: u32) -> Option<u32> {
    (snaplen >= SNAPLEN_FLOOR).then_some(snaplen)
}

/// A u32 at `at` in the given byte order, or `None` when fewer than 4 bytes remain.
#[inline]
pub(crate) fn read_u32(bytes: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// The container format of a capture, as sniffed from its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        /// Nanosecond timestamps (magic `a1b23c4d`) rather than microseconds (`a1b2c3d4`).
        nanos: bool,
        /// Written big-endian.
        big_endian: bool,
    },
    /// pcapng (sections may differ in byte order).
    Pcapng,
    /// The "modified" libpcap format (magic `a1b2cd34`, 24-byte record headers).
    ModifiedPcap,
}

impl CaptureFormat {
    /// Stable name, as capinfos/the corpus oracle spell it: `pcap`, `pcapng`, `modpcap`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CaptureFormat::Pcap { .. } => "pcap",
            CaptureFormat::Pcapng => "pcapng",
            CaptureFormat::ModifiedPcap => "modpcap",
        }
    }
}

impl std::fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CaptureFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Counters of a packet source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SourceStats {
    /// Packets delivered.
    pub packets: u64,
    /// Captured bytes delivered (sum of `data.len()`).
    pub bytes: u64,
    /// Bytes on the wire (sum of `orig_len`).
    pub wire_bytes: u64,
    /// Packets captured shorter than on the wire (snap length applied).
    pub snapped: u64,
    /// pcapng blocks skipped: name resolution, statistics, decryption secrets, custom, unknown.
    pub skipped_blocks: u64,
    /// pcapng sections read.
    pub sections: u64,
    /// Errors that ended the stream (0 or 1 for a file).
    pub errors: u64,
}

impl SourceStats {
    #[inline]
    fn count(&mut self, p: &Packet<'_>) {
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(p.data.len() as u64);
        self.wire_bytes = self.wire_bytes.saturating_add(u64::from(p.orig_len));
        if (p.data.len() as u64) < u64::from(p.orig_len) {
            self.snapped = self.snapped.saturating_add(1);
        }
    }
}

/// A source of packets: the file iterator here, live sources (features `pcap`, `pnet`) later.
///
/// A lending interface: the packet borrows the source until the next call.
pub trait PacketSource {
    /// The next packet; `Some(Err(_))` once when the source fails, then `None`.
    fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>>;
    /// Counters so far.
    fn stats(&self) -> SourceStats;
}

/// How to start reading a sniffed buffer.
#[derive(Clone, Copy, Debug)]
enum Sniffed {
    Pcap(pcap::PcapReader),
    Pcapng,
}

impl Sniffed {
    fn format(self) -> CaptureFormat {
        match self {
            Sniffed::Pcap(r) => r.format(),
            Sniffed::Pcapng => CaptureFormat::Pcapng,
        }
    }

    fn start(self) -> (Reader, usize) {
        match self {
            Sniffed::Pcap(r) => (Reader::Pcap(r), pcap::FILE_HEADER_LEN),
            Sniffed::Pcapng => (Reader::Pcapng(pcapng::PcapngReader::new()), 0),
        }
    }
}

/// Recognise the format by magic number and check its file header.
fn sniff(bytes: &[u8]) -> Result<Sniffed, CaptureError> {
    if bytes.is_empty() {
        return Err(CaptureError::Empty);
    }
    let mut head = [0u8; 4];
    for (d, s) in head.iter_mut().zip(bytes) {
        *d = *s;
    }
    let magic = u32::from_be_bytes(head);
    if bytes.len() >= 4 && pcap::is_pcap_magic(magic) {
        return pcap::PcapReader::parse_header(bytes).map(Sniffed::Pcap);
    }
    if bytes.len() >= 4 && magic == pcapng::SHB_TYPE {
        // The byte-order magic tells pcapng from a text file that starts with "\n\r\r\n".
        let Some(bom) = read_u32(bytes, 8, false) else {
            return Err(CaptureError::Truncated {
                structure: CaptureStructure::PcapngBlockHeader,
                offset: 0,
                packet: 0,
                needed: 12,
                available: bytes.len() as u64,
            });
        };
        if bom != 0x1a2b_3c4d && bom != 0x4d3c_2b1a {
            return Err(CaptureError::BadByteOrderMagic {
                offset: 0,
                packet: 0,
                magic: bom,
            });
        }
        return Ok(Sniffed::Pcapng);
    }
    Err(CaptureError::NotCapture { magic })
}

/// A capture file held in a [`CaptureBuffer`] (memory map or owned bytes).
#[derive(Debug)]
pub struct CaptureFile {
    buf: CaptureBuffer,
    sniffed: Sniffed,
}

impl CaptureFile {
    /// Map (or, for pipes and empty files, read) `path` and sniff its format.
    ///
    /// Another process must not truncate the file while it is open: see
    /// [`CaptureBuffer::open`]. Use [`CaptureFile::open_unmapped`] for a file still being
    /// written.
    ///
    /// # Errors
    /// [`CaptureError::Io`] when the file cannot be read; [`CaptureError::Empty`],
    /// [`CaptureError::NotCapture`] and header errors when it is not a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureFile, CaptureError> {
        let path = path.as_ref();
        let buf = CaptureBuffer::open(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CaptureFile::from_buffer(buf)
    }

    /// Like [`CaptureFile::open`], but copies the file into memory instead of mapping it.
    ///
    /// # Errors
    /// As [`CaptureFile::open`].
    pub fn open_unmapped(path: impl AsRef<Path>) -> Result<CaptureFile, CaptureError> {
        let path = path.as_ref();
        let buf = CaptureBuffer::read(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CaptureFile::from_buffer(buf)
    }

    /// A capture already in memory.
    ///
    /// # Errors
    /// As [`CaptureFile::open`], without the I/O errors.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<CaptureFile, CaptureError> {
        CaptureFile::from_buffer(CaptureBuffer::from_vec(bytes))
    }

    /// Sniff the format of a buffer.
    ///
    /// # Errors
    /// As [`CaptureFile::from_bytes`].
    pub fn from_buffer(buf: CaptureBuffer) -> Result<CaptureFile, CaptureError> {
        let sniffed = sniff(&buf)?;
        Ok(CaptureFile { buf, sniffed })
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.sniffed.format()
    }

    /// Iterate over the packets, borrowing the buffer.
    pub fn packets(&self) -> Packets<'_> {
        Packets::new(&self.buf, self.sniffed)
    }

    /// The size of the capture in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the capture has no bytes (never true for an opened file: empty input is refused).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The raw bytes of the capture.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the bytes are a memory map of the file.
    pub fn is_mapped(&self) -> bool {
        self.buf.is_mapped()
    }
}

/// Iterate over the packets of a capture in memory (a buffer of any origin; fuzzing).
///
/// # Errors
/// [`CaptureError::Empty`], [`CaptureError::NotCapture`] and file-header errors.
pub fn packets_from_slice(bytes: &[u8]) -> Result<Packets<'_>, CaptureError> {
    sniff(bytes).map(|s| Packets::new(bytes, s))
}

#[derive(Debug)]
enum Reader {
    Pcap(pcap::PcapReader),
    Pcapng(pcapng::PcapngReader),
}

/// The packets of a capture: an `Iterator<Item = Result<Packet, CaptureError>>` that yields
/// every packet before any damage, then one error, then `None`.
#[derive(Debug)]
pub struct Packets<'a> {
    buf: &'a [u8],
    pos: usize,
    reader: Reader,
    format: CaptureFormat,
    stats: SourceStats,
    done: bool,
}

impl<'a> Packets<'a> {
    fn new(buf: &'a [u8], sniffed: Sniffed) -> Packets<'a> {
        let (reader, pos) = sniffed.start();
        Packets {
            buf,
            pos,
            reader,
            format: sniffed.format(),
            stats: SourceStats::default(),
            done: false,
        }
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Byte offset of the next record or block to read.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Counters so far.
    pub fn stats(&self) -> SourceStats {
        self.stats
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<Packet<'a>, CaptureError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let index = self.stats.packets;
        let item = match &mut self.reader {
            Reader::Pcap(r) => r.next(self.buf, &mut self.pos, index),
            Reader::Pcapng(r) => r.next(self.buf, &mut self.pos, index, &mut self.stats),
        };
        match &item {
            Some(Ok(p)) => self.stats.count(p),
            Some(Err(_)) => {
                self.stats.errors = self.stats.errors.saturating_add(1);
                self.done = true;
            }
            None => self.done = true,
        }
        item
    }
}

impl std::iter::FusedIterator for Packets<'_> {}

impl PacketSource for Packets<'_> {
    fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>> {
        self.next()
    }

    fn stats(&self) -> SourceStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
