//! Reader tests over files built by the writers and by a small block builder.

use super::writer::{PcapWriter, PcapngWriter};
use super::*;

/// Builds pcapng blocks in either byte order, for block types the writer does not emit.
struct Ng {
    out: Vec<u8>,
    be: bool,
}

impl Ng {
    fn new() -> Ng {
        Ng {
            out: Vec::new(),
            be: false,
        }
    }

    fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn block(&mut self, ty: u32, body: &[u8]) -> &mut Ng {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let (t, l) = (self.u32(ty), self.u32(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(&[0u8; 3][..pad]);
        self.out.extend_from_slice(&l);
        self
    }

    fn shb(&mut self, be: bool) -> &mut Ng {
        self.be = be;
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(0x1a2b_3c4d));
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&[0xff; 8]);
        self.block(0x0a0d_0d0a, &body)
    }

    fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, Vec<u8>)]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16(link));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&self.u32(snaplen));
        for (code, value) in opts {
            body.extend_from_slice(&self.u16(*code));
            body.extend_from_slice(&self.u16(value.len() as u16));
            body.extend_from_slice(value);
            body.extend_from_slice(&[0u8; 3][..(4 - value.len() % 4) % 4]);
        }
        if !opts.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body)
    }

    fn epb(&mut self, iface: u32, units: u64, data: &[u8], orig: u32) -> &mut Ng {
        let mut body = Vec::new();
        for v in [
            iface,
            (units >> 32) as u32,
            units as u32,
            data.len() as u32,
            orig,
        ] {
            body.extend_from_slice(&self.u32(v));
        }
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    fn pb(&mut self, iface: u16, units: u64, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16(iface));
        body.extend_from_slice(&self.u16(0));
        for v in [
            (units >> 32) as u32,
            units as u32,
            data.len() as u32,
            data.len() as u32,
        ] {
            body.extend_from_slice(&self.u32(v));
        }
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    fn spb(&mut self, orig: u32, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(orig));
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}

fn collect(bytes: &[u8]) -> (Vec<Packet<'_>>, Option<CaptureError>) {
    let mut packets = Vec::new();
    let mut error = None;
    let mut it = packets_from_slice(bytes).unwrap();
    for item in it.by_ref() {
        match item {
            Ok(p) => packets.push(p),
            Err(e) => {
                assert!(error.is_none(), "a second error after {error:?}: {e}");
                error = Some(e);
            }
        }
    }
    assert!(it.next().is_none(), "iterator resumed after its end");
    (packets, error)
}

fn payload(i: usize) -> Vec<u8> {
    (0..(i * 37) % 1600).map(|b| (b ^ i) as u8).collect()
}

#[test]
fn pcapng_round_trip_keeps_bytes_link_types_and_nanoseconds() {
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    let eth = w.add_interface(LinkType::ETHERNET, 65535).unwrap();
    let raw = w.add_interface(LinkType::RAW, 0).unwrap();
    let mut want = Vec::new();
    for i in 0..50usize {
        let (iface, link) = if i % 3 == 0 {
            (raw, LinkType::RAW)
        } else {
            (eth, LinkType::ETHERNET)
        };
        let ts = Timestamp(1_700_000_000_123_456_789 + i as u64 * 1_001);
        let data = payload(i);
        w.write_packet(iface, ts, &data).unwrap();
        want.push((ts, link, data));
    }
    let file = CaptureFile::from_bytes(w.into_inner().unwrap()).unwrap();
    assert_eq!(file.format(), CaptureFormat::Pcapng);
    let got: Vec<_> = file.packets().map(Result::unwrap).collect();
    assert_eq!(got.len(), want.len());
    for (p, (ts, link, data)) in got.iter().zip(&want) {
        assert_eq!(p.ts, *ts);
        assert_eq!(p.link_type, *link);
        assert_eq!(p.data, &data[..]);
        assert_eq!(p.orig_len as usize, data.len());
    }
}

#[test]
fn pcap_round_trip_keeps_snapped_lengths_and_nanoseconds() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::LINUX_SLL, 1000).unwrap();
    let mut want = Vec::new();
    for i in 0..40usize {
        let mut data = payload(i);
        let orig = data.len() as u32;
        data.truncate(1000);
        let ts = Timestamp(1_600_000_000_000_000_001 + i as u64 * 7);
        w.write_packet(ts, &data, orig).unwrap();
        want.push((ts, data, orig));
    }
    let file = CaptureFile::from_bytes(w.into_inner().unwrap()).unwrap();
    assert_eq!(
        file.format(),
        CaptureFormat::Pcap {
            nanos: true,
            big_endian: false
        }
    );
    let mut packets = file.packets();
    for (ts, data, orig) in &want {
        let p = packets.next().unwrap().unwrap();
        assert_eq!((p.ts, p.data, p.orig_len), (*ts, &data[..], *orig));
        assert_eq!(p.link_type, LinkType::LINUX_SLL);
    }
    assert!(packets.next().is_none());
    let stats = packets.stats();
    assert_eq!(stats.packets, 40);
    assert!(stats.snapped > 0);
    assert_eq!(stats.errors, 0);
}

#[test]
fn sections_of_both_byte_orders_read_with_their_own_interfaces() {
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 65535, &[])
        .epb(0, 5_000_001, b"le-us", 5)
        .shb(true)
        // Binary resolution 2^-20 s and an offset of 100 s, both big-endian.
        .idb(
            101,
            0,
            &[(9, vec![0x80 | 20]), (14, 100i64.to_be_bytes().to_vec())],
        )
        .idb(113, 2048, &[(9, vec![9])])
        .epb(0, (3 << 20) + (1 << 19), b"be-binary", 9)
        .epb(1, 42, b"be-ns", 5);
    let (packets, err) = collect(&ng.out);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(packets.len(), 3);
    assert_eq!(packets[0].ts, Timestamp(5_000_001_000));
    assert_eq!(packets[0].link_type, LinkType::ETHERNET);
    assert_eq!(packets[1].ts, Timestamp(103_500_000_000));
    assert_eq!(packets[1].link_type, LinkType::RAW);
    assert_eq!(packets[1].data, b"be-binary");
    assert_eq!(packets[2].ts, Timestamp(42));
    assert_eq!(packets[2].link_type, LinkType::LINUX_SLL);
}

#[test]
fn new_section_forgets_the_interfaces_of_the_last() {
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 0, &[])
        .idb(1, 0, &[])
        .epb(1, 1, b"ok", 2)
        .shb(false)
        .idb(1, 0, &[])
        .epb(1, 1, b"gone", 4);
    let (packets, err) = collect(&ng.out);
    assert_eq!(packets.len(), 1);
    let err = err.unwrap();
    assert!(matches!(
        err,
        CaptureError::UnknownInterface {
            interface: 1,
            described: 1,
            packet: 1,
            ..
        }
    ));
    assert_eq!(err.offset(), Some((ng.out.len() - 36) as u64));
}

#[test]
fn simple_packet_block_takes_interface_zero_snaplen_and_last_time() {
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 4, &[(9, vec![9])])
        .epb(0, 77, b"abcd", 4)
        .spb(10, b"0123456789");
    let (packets, err) = collect(&ng.out);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(packets[1].data, b"0123");
    assert_eq!(packets[1].orig_len, 10);
    assert_eq!(packets[1].ts, Timestamp(77));
}

#[test]
fn simple_packet_longer_than_its_block_is_malformed() {
    let mut ng = Ng::new();
    ng.shb(false).idb(1, 0, &[]).spb(100, b"short");
    let (packets, err) = collect(&ng.out);
    assert!(packets.is_empty());
    assert!(matches!(
        err,
        Some(CaptureError::MalformedBlock {
            structure: CaptureStructure::SimplePacketBlock,
            ..
        })
    ));
}

#[test]
fn obsolete_packet_block_reads_like_an_enhanced_one() {
    let mut ng = Ng::new();
    ng.shb(true).idb(1, 0, &[]).pb(0, 2_000_000, b"legacy");
    let (packets, err) = collect(&ng.out);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(packets[0].data, b"legacy");
    assert_eq!(packets[0].ts, Timestamp(2_000_000_000));
}

#[test]
fn secrets_statistics_custom_and_unknown_blocks_are_skipped_and_counted() {
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 0, &[])
        .block(0x0000_000a, b"TLSK\x05\0\0\0CLIENT") // decryption secrets
        .block(0x0000_0004, &[0; 4]) // name resolution (end of records)
        .epb(0, 1, b"x", 1)
        .block(0x0000_0005, &[0; 12]) // interface statistics
        .block(0x0000_0bad, b"\x00\x00\x7e\x7eabc") // custom
        .block(0x1234_5678, b"?") // unknown
        .epb(0, 2, b"y", 1);
    let mut it = packets_from_slice(&ng.out).unwrap();
    let got: Vec<_> = it.by_ref().map(|p| p.unwrap().data).collect();
    assert_eq!(got, vec![&b"x"[..], &b"y"[..]]);
    assert_eq!(it.stats().skipped_blocks, 5);
    assert_eq!(it.stats().sections, 1);
}

#[test]
fn second_section_with_bad_byte_order_magic_errors_at_its_offset() {
    let mut ng = Ng::new();
    ng.shb(false).idb(1, 0, &[]).epb(0, 1, b"first", 5);
    let mut bad = ng.out.clone();
    let shb_at = bad.len();
    bad.extend_from_slice(&ng.out[..28]);
    bad[shb_at + 8] = 0x00;
    let (packets, err) = collect(&bad);
    assert_eq!(packets.len(), 1);
    assert!(matches!(
        err,
        Some(CaptureError::BadByteOrderMagic { offset, packet: 1, .. }) if offset == shb_at as u64
    ));
}

#[test]
fn unsupported_section_version_is_an_error() {
    let mut ng = Ng::new();
    ng.shb(false);
    ng.out[12] = 2;
    let (_, err) = collect(&ng.out);
    assert!(matches!(
        err,
        Some(CaptureError::UnsupportedPcapngVersion { major: 2, .. })
    ));
}

#[test]
fn unrepresentable_tsresol_is_an_error_at_its_interface() {
    let mut ng = Ng::new();
    ng.shb(false).idb(1, 0, &[(9, vec![25])]);
    let (_, err) = collect(&ng.out);
    assert!(matches!(
        err,
        Some(CaptureError::BadTimestampResolution {
            offset: 28,
            tsresol: 25,
            ..
        })
    ));
}

#[test]
fn modified_pcap_records_skip_their_extra_eight_bytes() {
    for be in [false, true] {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut b = Vec::new();
        b.extend_from_slice(&w32(0xa1b2_cd34));
        b.extend_from_slice(&w16(2));
        b.extend_from_slice(&w16(4));
        for v in [0, 0, 65535, 1] {
            b.extend_from_slice(&w32(v));
        }
        for i in 0..3u32 {
            for v in [10 + i, 500, 3, 3] {
                b.extend_from_slice(&w32(v));
            }
            b.extend_from_slice(&[0xee; 8]); // ifindex, protocol, pkt_type, pad
            b.extend_from_slice(&[i as u8; 3]);
        }
        let file = CaptureFile::from_bytes(b).unwrap();
        assert_eq!(file.format(), CaptureFormat::ModifiedPcap);
        let got: Vec<_> = file.packets().map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].data, &[2, 2, 2]);
        assert_eq!(got[2].ts, Timestamp(12_000_500_000));
    }
}

#[test]
fn text_starting_like_a_section_header_is_not_a_capture() {
    let err = CaptureFile::from_bytes(b"\n\r\r\nhello, world".to_vec()).unwrap_err();
    assert!(matches!(
        err,
        CaptureError::BadByteOrderMagic { offset: 0, .. }
    ));
    let err = CaptureFile::from_bytes(b"GET / HTTP/1.1\r\n".to_vec()).unwrap_err();
    assert!(matches!(
        err,
        CaptureError::NotCapture { magic: 0x4745_5420 }
    ));
    assert_eq!(
        err.to_string(),
        "not a capture file: magic 0x47455420 at byte 0 is neither pcap \
         (a1b2c3d4, a1b23c4d, a1b2cd34, either byte order) nor pcapng (0a0d0d0a)"
    );
}

#[test]
fn packet_source_trait_yields_what_the_iterator_yields() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW, 65535).unwrap();
    for i in 0..5u64 {
        w.write_packet(Timestamp(i), &[i as u8; 20], 20).unwrap();
    }
    let file = CaptureFile::from_bytes(w.into_inner().unwrap()).unwrap();
    let mut source: Box<dyn PacketSource + '_> = Box::new(file.packets());
    let mut n = 0u64;
    while let Some(p) = source.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.data[0] as u64, n);
        n += 1;
    }
    assert_eq!(n, 5);
    assert_eq!(source.stats().packets, 5);
    assert_eq!(source.stats().bytes, 100);
}
