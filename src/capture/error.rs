//! `CaptureError`: what went wrong while opening or reading a capture, and where.

use std::path::PathBuf;

/// The part of a capture file that an error is about.
///
/// Its one stable name (`as_str`) is the phrase error messages use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaptureStructure {
    /// The 24-byte classic pcap file header.
    PcapFileHeader,
    /// A classic pcap record header (16 bytes, 24 in the modified format).
    PcapRecordHeader,
    /// A classic pcap record: header and captured bytes.
    PcapRecord,
    /// The first bytes of a pcapng block: type and length (8), plus the byte-order magic of
    /// a section header block (12).
    PcapngBlockHeader,
    /// A whole pcapng block.
    PcapngBlock,
    /// A pcapng Section Header Block.
    SectionHeaderBlock,
    /// A pcapng Interface Description Block.
    InterfaceDescriptionBlock,
    /// A pcapng Enhanced Packet Block.
    EnhancedPacketBlock,
    /// A pcapng Simple Packet Block.
    SimplePacketBlock,
    /// A pcapng (obsolete) Packet Block, type 2.
    PacketBlock,
}

impl CaptureStructure {
    /// The stable lowercase name used in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            CaptureStructure::PcapFileHeader => "pcap file header",
            CaptureStructure::PcapRecordHeader => "pcap record header",
            CaptureStructure::PcapRecord => "pcap record",
            CaptureStructure::PcapngBlockHeader => "pcapng block header",
            CaptureStructure::PcapngBlock => "pcapng block",
            CaptureStructure::SectionHeaderBlock => "pcapng section header block",
            CaptureStructure::InterfaceDescriptionBlock => "pcapng interface description block",
            CaptureStructure::EnhancedPacketBlock => "pcapng enhanced packet block",
            CaptureStructure::SimplePacketBlock => "pcapng simple packet block",
            CaptureStructure::PacketBlock => "pcapng packet block",
        }
    }
}

impl std::fmt::Display for CaptureStructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a pcapng block length field is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockLengthProblem {
    /// Smaller than the 12 bytes of type, length and trailing length.
    TooSmall,
    /// Not a multiple of 4 (pcapng blocks are 32-bit aligned).
    NotMultipleOf4,
}

impl BlockLengthProblem {
    /// The stable lowercase name used in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockLengthProblem::TooSmall => "smaller than 12",
            BlockLengthProblem::NotMultipleOf4 => "not a multiple of 4",
        }
    }
}

impl std::fmt::Display for BlockLengthProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error opening or reading a capture.
///
/// `open`/`from_bytes` fail only for I/O errors and for input that is not a capture file.
/// Everything else is reported by the packet iterator, once, after every packet before the
/// damage: `offset` is the byte offset of the record or block that is damaged, `packet` the
/// zero-based index the next packet would have had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("cannot read capture {path}: {source}")]
    Io {
        /// The path given to `open`.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input is empty (0 bytes).
    #[error("empty input: not a capture file (0 bytes)")]
    Empty,
    /// The first bytes are no pcap or pcapng magic number.
    #[error(
        "not a capture file: magic {magic:#010x} at byte 0 is neither pcap \
         (a1b2c3d4, a1b23c4d, a1b2cd34, either byte order) nor pcapng (0a0d0d0a)"
    )]
    NotCapture {
        /// The first four bytes, read big-endian (zero-padded when fewer).
        magic: u32,
    },
    /// A pcap file with a version other than 2.x.
    #[error("unsupported pcap version {major}.{minor} at byte 4")]
    UnsupportedPcapVersion {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A pcapng section with a major version other than 1.
    #[error(
        "unsupported pcapng section version {major}.{minor} at byte {offset} (packet {packet})"
    )]
    UnsupportedPcapngVersion {
        /// Byte offset of the section header block.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A pcapng section header whose byte-order magic is neither 1a2b3c4d nor 4d3c2b1a.
    #[error("bad pcapng byte-order magic {magic:#010x} at byte {offset} (packet {packet})")]
    BadByteOrderMagic {
        /// Byte offset of the section header block.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// The magic found, read little-endian.
        magic: u32,
    },
    /// Fewer bytes left than a header or record needs: the file was cut.
    #[error(
        "truncated {structure} at byte {offset} (packet {packet}): need {needed} bytes, have {available}"
    )]
    Truncated {
        /// What was being read.
        structure: CaptureStructure,
        /// Byte offset where it starts.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// Bytes it needs from `offset`.
        needed: u64,
        /// Bytes left from `offset`.
        available: u64,
    },
    /// A pcapng block length field that cannot be right.
    #[error("bad pcapng block length {length} at byte {offset} (packet {packet}): {problem}")]
    BadBlockLength {
        /// Byte offset of the block.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// The leading block length.
        length: u32,
        /// What is wrong with it.
        problem: BlockLengthProblem,
    },
    /// The trailing length of a pcapng block differs from its leading length.
    #[error(
        "pcapng block length mismatch at byte {offset} (packet {packet}): leading {leading}, trailing {trailing}"
    )]
    BlockLengthMismatch {
        /// Byte offset of the block.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// The leading block length.
        leading: u32,
        /// The trailing block length.
        trailing: u32,
    },
    /// A record or packet block whose captured length exceeds the snap length.
    #[error(
        "captured length {caplen} exceeds snap length {snaplen} at byte {offset} (packet {packet})"
    )]
    CaplenExceedsSnaplen {
        /// Byte offset of the record or block.
        offset: u64,
        /// Index of the packet.
        packet: u64,
        /// The captured length field.
        caplen: u32,
        /// The snap length of the file or interface.
        snaplen: u32,
    },
    /// A record or packet block whose captured length exceeds [`MAX_CAPLEN`](super::MAX_CAPLEN).
    #[error(
        "captured length {caplen} exceeds the {limit}-byte cap at byte {offset} (packet {packet})"
    )]
    CaplenTooLarge {
        /// Byte offset of the record or block.
        offset: u64,
        /// Index of the packet.
        packet: u64,
        /// The captured length field.
        caplen: u32,
        /// The cap.
        limit: u32,
    },
    /// A pcapng block whose content contradicts its own length or is otherwise unreadable.
    #[error("malformed {structure} at byte {offset} (packet {packet}): {detail}")]
    MalformedBlock {
        /// Which block.
        structure: CaptureStructure,
        /// Byte offset of the block.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// What is wrong, lowercase.
        detail: &'static str,
    },
    /// A packet block names an interface the section has not described.
    #[error(
        "packet block at byte {offset} (packet {packet}) names interface {interface}, but the section describes {described}"
    )]
    UnknownInterface {
        /// Byte offset of the packet block.
        offset: u64,
        /// Index of the packet.
        packet: u64,
        /// The interface id in the block.
        interface: u32,
        /// How many interfaces the current section describes.
        described: u32,
    },
    /// An `if_tsresol` the reader cannot represent (10^e with e > 19, or 2^e with e > 63).
    #[error(
        "bad if_tsresol {tsresol:#04x} in interface description block at byte {offset} (packet {packet})"
    )]
    BadTimestampResolution {
        /// Byte offset of the interface description block.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// The raw option value.
        tsresol: u8,
    },
    /// A section describes more interfaces than [`MAX_INTERFACES`](super::MAX_INTERFACES).
    #[error(
        "too many interfaces in one pcapng section at byte {offset} (packet {packet}): cap is {limit}"
    )]
    TooManyInterfaces {
        /// Byte offset of the interface description block over the cap.
        offset: u64,
        /// Index of the next packet.
        packet: u64,
        /// The cap.
        limit: u32,
    },
}

impl CaptureError {
    /// The byte offset the error is about, when it is about a place in the capture.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Io { .. }
            | CaptureError::Empty
            | CaptureError::UnsupportedPcapVersion { .. } => None,
            CaptureError::NotCapture { .. } => Some(0),
            CaptureError::UnsupportedPcapngVersion { offset, .. }
            | CaptureError::BadByteOrderMagic { offset, .. }
            | CaptureError::Truncated { offset, .. }
            | CaptureError::BadBlockLength { offset, .. }
            | CaptureError::BlockLengthMismatch { offset, .. }
            | CaptureError::CaplenExceedsSnaplen { offset, .. }
            | CaptureError::CaplenTooLarge { offset, .. }
            | CaptureError::MalformedBlock { offset, .. }
            | CaptureError::UnknownInterface { offset, .. }
            | CaptureError::BadTimestampResolution { offset, .. }
            | CaptureError::TooManyInterfaces { offset, .. } => Some(*offset),
        }
    }

    /// The index of the packet the error stopped at, when it happened while iterating.
    pub fn packet_index(&self) -> Option<u64> {
        match self {
            CaptureError::Io { .. }
            | CaptureError::Empty
            | CaptureError::NotCapture { .. }
            | CaptureError::UnsupportedPcapVersion { .. } => None,
            CaptureError::UnsupportedPcapngVersion { packet, .. }
            | CaptureError::BadByteOrderMagic { packet, .. }
            | CaptureError::Truncated { packet, .. }
            | CaptureError::BadBlockLength { packet, .. }
            | CaptureError::BlockLengthMismatch { packet, .. }
            | CaptureError::CaplenExceedsSnaplen { packet, .. }
            | CaptureError::CaplenTooLarge { packet, .. }
            | CaptureError::MalformedBlock { packet, .. }
            | CaptureError::UnknownInterface { packet, .. }
            | CaptureError::BadTimestampResolution { packet, .. }
            | CaptureError::TooManyInterfaces { packet, .. } => Some(*packet),
        }
    }
}
