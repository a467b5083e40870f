//! Damaged and hostile capture files: the reader never panics, yields every packet before
//! the damage, then exactly one error that names where it is.

use entrospect::Timestamp;
use entrospect::capture::writer::{PcapWriter, PcapngWriter};
use entrospect::capture::{
    BlockLengthProblem, CaptureError, CaptureFile, CaptureStructure, LinkType, MAX_CAPLEN, Packet,
    packets_from_slice,
};

/// Packets read and the one error (if any). Fails the test on a second error or on an
/// iterator that resumes after its end.
fn drain(bytes: &[u8]) -> Result<(Vec<Packet<'_>>, Option<CaptureError>), CaptureError> {
    let mut it = packets_from_slice(bytes)?;
    let mut packets = Vec::new();
    let mut error = None;
    for item in it.by_ref() {
        match item {
            Ok(p) => {
                assert!(error.is_none(), "packet after the error");
                packets.push(p);
            }
            Err(e) => {
                assert!(error.is_none(), "second error: {e}");
                error = Some(e);
            }
        }
    }
    assert!(it.next().is_none());
    Ok((packets, error))
}

fn frame(i: usize) -> Vec<u8> {
    (0..(13 + i * 29) % 300)
        .map(|b| (b * 7 + i) as u8)
        .collect()
}

/// A small pcap (little-endian, ns) file and the byte offsets where each record ends.
fn small_pcap() -> (Vec<u8>, Vec<usize>) {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
    let mut ends = vec![24];
    for i in 0..6 {
        let data = frame(i);
        w.write_packet(Timestamp(1_000 + i as u64), &data, data.len() as u32)
            .unwrap();
        ends.push(ends.last().unwrap() + 16 + data.len());
    }
    (w.into_inner().unwrap(), ends)
}

/// A small big-endian microsecond pcap, written by hand (the writer only writes little-endian).
fn small_pcap_be() -> (Vec<u8>, Vec<usize>) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&4u16.to_be_bytes());
    for v in [0u32, 0, 65535, 1] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    let mut ends = vec![24];
    for i in 0..5 {
        let data = frame(i);
        for v in [
            1_000 + i as u32,
            999_999,
            data.len() as u32,
            data.len() as u32,
        ] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&data);
        ends.push(b.len());
    }
    (b, ends)
}

/// A small pcapng file: one section, two interfaces; block ends and which blocks are packets.
fn small_pcapng() -> (Vec<u8>, Vec<(usize, bool)>) {
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    let a = w.add_interface(LinkType::ETHERNET, 0).unwrap();
    let b = w.add_interface(LinkType::RAW, 0).unwrap();
    let mut ends = vec![(28, false), (60, false), (92, false)];
    for i in 0..6 {
        let data = frame(i);
        w.write_packet(if i % 2 == 0 { a } else { b }, Timestamp(i as u64), &data)
            .unwrap();
        let len = 32 + data.len().div_ceil(4) * 4;
        ends.push((ends.last().unwrap().0 + len, true));
    }
    (w.into_inner().unwrap(), ends)
}

/// Cut `bytes` at every length; check packets-before-the-cut, and one error at the
/// start of the record the cut falls in.
fn check_every_cut(name: &str, bytes: &[u8], ends: &[(usize, bool)], header_len: usize) {
    for cut in 0..bytes.len() {
        let part = &bytes[..cut];
        let (packets, err) = match drain(part) {
            Ok(r) => r,
            Err(e) => {
                assert!(cut < header_len, "{name}: open failed at cut {cut}: {e}");
                assert!(
                    cut == 0 || e.offset() == Some(0),
                    "{name}: header error without offset at cut {cut}: {e}"
                );
                continue;
            }
        };
        let complete = ends
            .iter()
            .filter(|(end, is_packet)| *is_packet && *end <= cut)
            .count();
        assert_eq!(packets.len(), complete, "{name}: packets before cut {cut}");
        let at_boundary = ends.iter().any(|(end, _)| *end == cut);
        if at_boundary {
            assert!(err.is_none(), "{name}: error at clean cut {cut}: {err:?}");
        } else {
            let err = err.unwrap_or_else(|| panic!("{name}: no error at cut {cut}"));
            let record_start = ends
                .iter()
                .map(|(end, _)| *end)
                .filter(|end| *end <= cut)
                .max()
                .unwrap_or(0);
            assert_eq!(
                err.offset(),
                Some(record_start as u64),
                "{name} cut {cut}: {err}"
            );
            assert_eq!(
                err.packet_index(),
                Some(complete as u64),
                "{name} cut {cut}"
            );
            assert!(
                matches!(err, CaptureError::Truncated { .. }),
                "{name} cut {cut}: {err}"
            );
        }
    }
}

#[test]
fn pcap_cut_at_every_byte_yields_earlier_packets_then_one_error() {
    let (bytes, ends) = small_pcap();
    let ends: Vec<_> = ends.iter().enumerate().map(|(i, e)| (*e, i > 0)).collect();
    check_every_cut("pcap", &bytes, &ends, 24);
}

#[test]
fn big_endian_pcap_cut_at_every_byte_yields_earlier_packets_then_one_error() {
    let (bytes, ends) = small_pcap_be();
    let (packets, err) = drain(&bytes).unwrap();
    assert!(err.is_none());
    assert_eq!(packets[0].ts, Timestamp(1_000_999_999_000));
    let ends: Vec<_> = ends.iter().enumerate().map(|(i, e)| (*e, i > 0)).collect();
    check_every_cut("pcap-be", &bytes, &ends, 24);
}

#[test]
fn pcapng_cut_at_every_byte_yields_earlier_packets_then_one_error() {
    let (bytes, ends) = small_pcapng();
    check_every_cut("pcapng", &bytes, &ends, 12);
}

#[test]
fn truncated_block_error_names_offset_packet_and_sizes() {
    let (bytes, ends) = small_pcapng();
    // Cut 10 bytes into the third packet block.
    let start = ends[4].0;
    let cut = start + 10;
    let (packets, err) = drain(&bytes[..cut]).unwrap();
    assert_eq!(packets.len(), 2);
    let need = ends[5].0 - start;
    assert_eq!(
        err.unwrap().to_string(),
        format!("truncated pcapng block at byte {start} (packet 2): need {need} bytes, have 10")
    );
}

fn set_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn pcapng_block_length_below_twelve_is_rejected() {
    let (mut bytes, ends) = small_pcapng();
    let at = ends[3].0; // second packet block
    set_u32(&mut bytes, at + 4, 8);
    let (packets, err) = drain(&bytes).unwrap();
    assert_eq!(packets.len(), 1);
    assert!(matches!(
        err,
        Some(CaptureError::BadBlockLength { offset, packet: 1, length: 8, problem: BlockLengthProblem::TooSmall })
            if offset == at as u64
    ));
}

#[test]
fn pcapng_block_length_not_multiple_of_four_is_rejected() {
    let (mut bytes, ends) = small_pcapng();
    let at = ends[3].0;
    set_u32(&mut bytes, at + 4, 41);
    let (_, err) = drain(&bytes).unwrap();
    let err = err.unwrap();
    assert!(matches!(
        err,
        CaptureError::BadBlockLength {
            problem: BlockLengthProblem::NotMultipleOf4,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("bad pcapng block length 41 at byte {at} (packet 1): not a multiple of 4")
    );
}

#[test]
fn pcapng_trailing_length_mismatch_is_rejected() {
    let (mut bytes, ends) = small_pcapng();
    let (at, end) = (ends[3].0, ends[4].0);
    let len = (end - at) as u32;
    set_u32(&mut bytes, end - 4, len + 4);
    let (packets, err) = drain(&bytes).unwrap();
    assert_eq!(packets.len(), 1);
    assert!(matches!(
        err,
        Some(CaptureError::BlockLengthMismatch { leading, trailing, .. })
            if leading == len && trailing == len + 4
    ));
}

#[test]
fn pcapng_block_longer_than_the_file_is_truncated_not_allocated() {
    let (mut bytes, ends) = small_pcapng();
    let at = ends[3].0;
    set_u32(&mut bytes, at + 4, 0xffff_fff0);
    let (packets, err) = drain(&bytes).unwrap();
    assert_eq!(packets.len(), 1);
    assert!(matches!(
        err,
        Some(CaptureError::Truncated {
            structure: CaptureStructure::PcapngBlock,
            needed: 0xffff_fff0,
            ..
        })
    ));
}

#[test]
fn pcapng_caplen_beyond_its_block_is_malformed() {
    let (mut bytes, ends) = small_pcapng();
    let at = ends[3].0;
    set_u32(&mut bytes, at + 20, 4000); // captured length
    let (_, err) = drain(&bytes).unwrap();
    assert!(matches!(
        err,
        Some(CaptureError::MalformedBlock {
            structure: CaptureStructure::EnhancedPacketBlock,
            ..
        })
    ));
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "entrospect-bad-input-{}-{name}",
        std::process::id()
    ))
}

#[test]
fn zero_length_file_is_refused_clearly() {
    let path = temp_path("empty.pcap");
    std::fs::File::create(&path).unwrap();
    let err = CaptureFile::open(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(err, CaptureError::Empty));
    assert_eq!(err.to_string(), "empty input: not a capture file (0 bytes)");
}

#[test]
fn non_capture_file_is_refused_with_its_magic() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let err = CaptureFile::open(path).unwrap_err();
    assert!(matches!(err, CaptureError::NotCapture { .. }), "{err}");
    assert!(err.to_string().starts_with("not a capture file: magic 0x"));
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = temp_path("missing.pcap");
    let err = CaptureFile::open(&path).unwrap_err();
    assert!(matches!(err, CaptureError::Io { .. }));
    assert!(err.to_string().contains("missing.pcap"), "{err}");
}

#[test]
fn jumbo_frame_of_64_kib_is_accepted_in_both_formats() {
    let jumbo: Vec<u8> = (0..65_535u32).map(|i| i as u8).collect();
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 262_144).unwrap();
    w.write_packet(Timestamp(1), &jumbo, 65_535).unwrap();
    let pcap = w.into_inner().unwrap();
    let mut ng = PcapngWriter::new(Vec::new()).unwrap();
    let i = ng.add_interface(LinkType::ETHERNET, 0).unwrap();
    ng.write_packet(i, Timestamp(1), &jumbo).unwrap();
    let pcapng = ng.into_inner().unwrap();
    for bytes in [pcap, pcapng] {
        let (packets, err) = drain(&bytes).unwrap();
        assert!(err.is_none(), "{err:?}");
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].data, &jumbo[..]);
    }
}

#[test]
fn caplen_above_snaplen_is_corrupt() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 1514).unwrap();
    w.write_packet(Timestamp(1), &[0; 60], 60).unwrap();
    w.write_packet(Timestamp(2), &[0; 1600], 1600).unwrap();
    let bytes = w.into_inner().unwrap();
    let (packets, err) = drain(&bytes).unwrap();
    assert_eq!(packets.len(), 1);
    assert!(matches!(
        err,
        Some(CaptureError::CaplenExceedsSnaplen {
            offset: 100,
            packet: 1,
            caplen: 1600,
            snaplen: 1514
        })
    ));

    let mut ng = PcapngWriter::new(Vec::new()).unwrap();
    let i = ng.add_interface(LinkType::ETHERNET, 128).unwrap();
    ng.write_packet(i, Timestamp(1), &[0; 129]).unwrap();
    let bytes = ng.into_inner().unwrap();
    let (packets, err) = drain(&bytes).unwrap();
    assert!(packets.is_empty());
    assert!(matches!(
        err,
        Some(CaptureError::CaplenExceedsSnaplen {
            offset: 60,
            packet: 0,
            ..
        })
    ));
}

#[test]
fn caplen_above_the_cap_is_corrupt_even_without_snaplen() {
    // Header says 4 GiB - 1 bytes follow: refused by the cap, never allocated or trusted.
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 0).unwrap();
    w.write_packet(Timestamp(1), &[1; 10], 10).unwrap();
    let mut bytes = w.into_inner().unwrap();
    bytes[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let (_, err) = drain(&bytes).unwrap();
    assert!(matches!(
        err,
        Some(CaptureError::CaplenTooLarge { caplen: u32::MAX, limit, .. }) if limit == MAX_CAPLEN
    ));
}

#[test]
fn tiny_header_snaplen_is_not_a_bound() {
    // zeek's trunc-hdr.pcap: snaplen 1, one 8-byte record; libpcap and Wireshark read it.
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 1).unwrap();
    w.write_packet(Timestamp(1), &[7; 8], 8).unwrap();
    let bytes = w.into_inner().unwrap();
    let (packets, err) = drain(&bytes).unwrap();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(packets[0].data, &[7; 8]);
}

#[test]
fn arbitrary_garbage_after_a_valid_header_never_panics() {
    // A deterministic pseudo-random walk over many tails: every outcome is packets + at most
    // one error (drain checks that).
    let (pcap, _) = small_pcap();
    let (pcapng, _) = small_pcapng();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for base in [pcap, pcapng] {
        for _ in 0..2_000 {
            let mut bytes = base.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = 12 + (state as usize) % (bytes.len() - 12);
                bytes[at] = (state >> 32) as u8;
            }
            // `drain` asserts the contract; the outcome itself may be anything.
            let _ = drain(&bytes);
        }
    }
}

#[test]
fn committed_fuzz_seeds_read_to_the_end_without_error() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/pcap_reader");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no fuzz seeds at {}: skipping", dir.display());
        return;
    };
    let mut seen = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let (packets, err) = drain(&bytes).unwrap();
        assert!(err.is_none(), "{}: {err:?}", path.display());
        assert!(!packets.is_empty(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 3);
}
