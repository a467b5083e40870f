//! Writers for pcapng and classic pcap: demo captures, test fixtures and benchmarks.
//!
//! Both write little-endian files with nanosecond timestamps. They check every length they
//! write (a packet longer than a `u32` block length can hold is refused with
//! `InvalidInput`), never panic, and buffer nothing themselves: wrap a file in a
//! `BufWriter`.

use std::io::{self, Write};

use super::LinkType;
use crate::time::Timestamp;

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Zero bytes to pad `len` to a multiple of 4.
const fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// A pcapng writer: one section (little-endian), interfaces with nanosecond `if_tsresol`,
/// Enhanced Packet Blocks.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Snap length of each interface, by id.
    snaplens: Vec<u32>,
}

impl<W: Write> PcapngWriter<W> {
    /// Start a file: writes the Section Header Block (version 1.0, section length unknown).
    ///
    /// # Errors
    /// Errors of `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        out.write_all(&shb)?;
        Ok(PcapngWriter {
            out,
            snaplens: Vec::new(),
        })
    }

    /// Describe an interface (IDB with `if_tsresol` = 9, nanoseconds) and return its id.
    ///
    /// # Errors
    /// `InvalidInput` when `link_type` does not fit pcapng's 16 bits; errors of `out`.
    pub fn add_interface(&mut self, link_type: LinkType, snaplen: u32) -> io::Result<u32> {
        let link = u16::try_from(link_type.0)
            .map_err(|_| invalid("link type does not fit a pcapng interface (16 bits)"))?;
        let id = u32::try_from(self.snaplens.len())
            .map_err(|_| invalid("too many pcapng interfaces"))?;
        // type, length, link type, reserved, snaplen, if_tsresol option (4 + 1 + 3 pad),
        // opt_endofopt (4), trailing length.
        let len: u32 = 32;
        let mut idb = Vec::with_capacity(32);
        idb.extend_from_slice(&1u32.to_le_bytes());
        idb.extend_from_slice(&len.to_le_bytes());
        idb.extend_from_slice(&link.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snaplen.to_le_bytes());
        idb.extend_from_slice(&9u16.to_le_bytes()); // if_tsresol
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 0, 0]); // 10^-9 s, padded
        idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        idb.extend_from_slice(&len.to_le_bytes());
        self.out.write_all(&idb)?;
        self.snaplens.push(snaplen);
        Ok(id)
    }

    /// Write one packet, captured whole (`orig_len` = `data.len()`), as an Enhanced Packet
    /// Block.
    ///
    /// # Errors
    /// `InvalidInput` for an interface not added or data too long for a block; errors of `out`.
    pub fn write_packet(&mut self, interface: u32, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let orig_len =
            u32::try_from(data.len()).map_err(|_| invalid("packet longer than 4 GiB"))?;
        self.write_packet_with_orig_len(interface, ts, data, orig_len)
    }

    /// Write one packet whose length on the wire was `orig_len` (a snapped capture).
    ///
    /// # Errors
    /// As [`PcapngWriter::write_packet`].
    pub fn write_packet_with_orig_len(
        &mut self,
        interface: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        if interface as usize >= self.snaplens.len() {
            return Err(invalid("write_packet on an interface that was not added"));
        }
        let caplen = u32::try_from(data.len()).map_err(|_| invalid("packet longer than 4 GiB"))?;
        let pad = pad4(data.len());
        let len = data
            .len()
            .checked_add(32 + pad)
            .and_then(|l| u32::try_from(l).ok())
            .ok_or_else(|| invalid("packet too long for a pcapng block"))?;
        let units = ts.as_nanos();
        let mut head = [0u8; 28];
        let fields = [
            6u32,
            len,
            interface,
            (units >> 32) as u32,
            units as u32,
            caplen,
            orig_len,
        ];
        for (chunk, v) in head.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&len.to_le_bytes())
    }

    /// Flush and return the inner writer.
    ///
    /// # Errors
    /// Errors of `out`'s flush.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A classic pcap writer: little-endian, nanosecond magic (`a1b23c4d`), one link type.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Start a file: writes the 24-byte file header (version 2.4).
    ///
    /// # Errors
    /// Errors of `out`.
    pub fn new(mut out: W, link_type: LinkType, snaplen: u32) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&link_type.0.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Write one record: `data` as captured, `orig_len` its length on the wire.
    ///
    /// # Errors
    /// `InvalidInput` when `data` is longer than 4 GiB or the timestamp's seconds do not fit
    /// 32 bits (after 2106); errors of `out`.
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let caplen = u32::try_from(data.len()).map_err(|_| invalid("packet longer than 4 GiB"))?;
        let secs = u32::try_from(ts.secs())
            .map_err(|_| invalid("timestamp beyond the 32-bit seconds of pcap"))?;
        let mut head = [0u8; 16];
        for (chunk, v) in head
            .chunks_exact_mut(4)
            .zip([secs, ts.subsec_nanos(), caplen, orig_len])
        {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        self.out.write_all(&head)?;
        self.out.write_all(data)
    }

    /// Flush and return the inner writer.
    ///
    /// # Errors
    /// Errors of `out`'s flush.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_blocks_are_aligned_and_framed() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let i = w.add_interface(LinkType::RAW, 0).unwrap();
        w.write_packet(i, Timestamp(1), &[1, 2, 3, 4, 5]).unwrap();
        let bytes = w.into_inner().unwrap();
        // SHB 28 + IDB 32 + EPB (32 + 5 + 3 pad) 40.
        assert_eq!(bytes.len(), 28 + 32 + 40);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(&bytes[60..64], &6u32.to_le_bytes());
        assert_eq!(&bytes[64..68], &40u32.to_le_bytes());
        assert_eq!(&bytes[96..100], &40u32.to_le_bytes());
    }

    #[test]
    fn packet_on_unknown_interface_is_refused() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let err = w.write_packet(0, Timestamp(1), &[1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn link_type_wider_than_16_bits_is_refused_by_pcapng() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        assert!(w.add_interface(LinkType(70_000), 0).is_err());
    }

    #[test]
    fn pcap_header_uses_nanosecond_magic() {
        let w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(&bytes[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(bytes.len(), 24);
    }

    #[test]
    fn pcap_timestamp_after_2106_is_refused() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
        let late = Timestamp::from_secs_nanos(u64::from(u32::MAX) + 1, 0);
        assert!(w.write_packet(late, &[0], 1).is_err());
    }
}
