//! A minimal pcapng writer: one section, any number of interfaces, enhanced packet blocks.
//!
//! // replaced by entrospect::capture::writer at merge
//!
//! Block layouts follow draft-ietf-opsawg-pcapng §4.1 (SHB), §4.2 (IDB) and §4.3 (EPB). All
//! blocks are written little-endian; every block body is padded to 32 bits and framed by
//! its total length at both ends.

use entrospect::Timestamp;
use entrospect::capture::LinkType;
use std::io::{self, Write};

/// Block type of the Section Header Block.
const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// Block type of the Interface Description Block.
const IDB_TYPE: u32 = 0x0000_0001;
/// Block type of the Enhanced Packet Block.
const EPB_TYPE: u32 = 0x0000_0006;
/// Byte-order magic of the SHB.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// IDB option code `if_tsresol`.
const OPT_IF_TSRESOL: u16 = 9;
/// `if_tsresol` value for nanoseconds (10^-9).
const TSRESOL_NANOS: u8 = 9;

/// Writes a pcapng stream: the SHB on creation, then IDBs and EPBs.
pub struct PcapngWriter<W: Write> {
    out: W,
    interfaces: u32,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a stream on `out` and writes its Section Header Block.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes()); // major version
        body.extend_from_slice(&0u16.to_le_bytes()); // minor version
        body.extend_from_slice(&u64::MAX.to_le_bytes()); // section length: unspecified
        write_block(&mut out, SHB_TYPE, &body)?;
        Ok(PcapngWriter { out, interfaces: 0 })
    }

    /// Describes one more interface (IDB with `if_tsresol` = 9, nanoseconds) and
    /// returns its id for [`PcapngWriter::write_packet`].
    pub fn add_interface(&mut self, link_type: LinkType, snaplen: u32) -> io::Result<u32> {
        let link = u16::try_from(link_type.0).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcapng link type {} does not fit 16 bits", link_type.0),
            )
        })?;
        let mut body = Vec::with_capacity(20);
        body.extend_from_slice(&link.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes()); // reserved
        body.extend_from_slice(&snaplen.to_le_bytes());
        // Option if_tsresol: code, length 1, value, 3 bytes padding.
        body.extend_from_slice(&OPT_IF_TSRESOL.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[TSRESOL_NANOS, 0, 0, 0]);
        // opt_endofopt.
        body.extend_from_slice(&[0, 0, 0, 0]);
        write_block(&mut self.out, IDB_TYPE, &body)?;
        let id = self.interfaces;
        self.interfaces = self.interfaces.checked_add(1).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "too many pcapng interfaces")
        })?;
        Ok(id)
    }

    /// Writes one Enhanced Packet Block on `interface`, timestamped in nanoseconds.
    pub fn write_packet(&mut self, interface: u32, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        if interface >= self.interfaces {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pcapng interface {interface} not described (have {})",
                    self.interfaces
                ),
            ));
        }
        let len = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("packet of {} bytes too long for pcapng", data.len()),
            )
        })?;
        let ns = ts.as_nanos();
        let mut body = Vec::with_capacity(20 + data.len() + 3);
        body.extend_from_slice(&interface.to_le_bytes());
        body.extend_from_slice(&((ns >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ns as u32).to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes()); // captured length
        body.extend_from_slice(&len.to_le_bytes()); // original length
        body.extend_from_slice(data);
        write_block(&mut self.out, EPB_TYPE, &body)
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes one block: type, total length, body padded to 32 bits, total length.
fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8]) -> io::Result<()> {
    let padding = (4 - body.len() % 4) % 4;
    let total = body
        .len()
        .checked_add(padding + 12)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pcapng block too long"))?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0u8; 3][..padding])?;
    out.write_all(&total.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_parser::pcapng::{Block, parse_block_le};

    #[test]
    fn written_stream_parses_back_with_nanosecond_timestamps() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let eth = w.add_interface(LinkType::ETHERNET, 65_535).expect("idb");
        let raw = w.add_interface(LinkType::RAW, 1_500).expect("idb");
        assert_eq!((eth, raw), (0, 1));
        let ts = Timestamp::from_nanos(1_795_341_600_123_456_789);
        w.write_packet(raw, ts, &[1, 2, 3, 4, 5]).expect("epb");
        w.write_packet(eth, ts.saturating_add_nanos(1), &[9; 60])
            .expect("epb");
        let bytes = w.into_inner().expect("flush");
        assert_eq!(bytes.len() % 4, 0, "blocks are 32-bit aligned");

        let mut rest = &bytes[..];
        let mut seen = Vec::new();
        while !rest.is_empty() {
            let (next, block) = parse_block_le(rest).expect("block");
            match block {
                Block::SectionHeader(_) => seen.push("shb".to_owned()),
                Block::InterfaceDescription(idb) => {
                    assert_eq!(idb.ts_resolution(), Some(1_000_000_000));
                    seen.push(format!("idb {}", idb.linktype.0));
                }
                Block::EnhancedPacket(epb) => {
                    let t = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    let data = &epb.data[..epb.caplen as usize];
                    seen.push(format!(
                        "epb if{} t{} len{} {:?}",
                        epb.if_id,
                        t,
                        epb.origlen,
                        &data[..2]
                    ));
                }
                other => panic!("unexpected block {other:?}"),
            }
            rest = next;
        }
        assert_eq!(
            seen,
            [
                "shb",
                "idb 1",
                "idb 101",
                "epb if1 t1795341600123456789 len5 [1, 2]",
                "epb if0 t1795341600123456790 len60 [9, 9]",
            ]
        );
    }

    #[test]
    fn packet_on_undeclared_interface_is_refused() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let err = w
            .write_packet(0, Timestamp::ZERO, &[0; 4])
            .expect_err("no interface yet");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = w
            .add_interface(LinkType(70_000), 0)
            .expect_err("link type over 16 bits");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
