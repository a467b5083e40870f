//! The synthetic mixed capture shared by the engine benches (`entropy`, `pipeline`).
#![allow(dead_code)] // each bench uses its own subset

use entrospect::Timestamp;
use entrospect::capture::writer::PcapngWriter;
use entrospect::capture::{CaptureFile, LinkType};

/// Flows in the mixed capture.
pub const FLOWS: u32 = 400;
/// Packets in the mixed capture.
pub const PACKETS: u32 = 200_000;

/// One Ethernet/IPv4 frame with a TCP or UDP header and `payload` bytes (checksums zero:
/// the engine does not verify them).
pub fn frame(flow: u32, to_server: bool, seq: u32, payload: &[u8]) -> Vec<u8> {
    let tcp = !flow.is_multiple_of(3);
    let client = [10, 1, (flow >> 8) as u8, flow as u8];
    let server = [192, 0, 2, (flow % 50) as u8 + 1];
    let (src, dst) = if to_server {
        (client, server)
    } else {
        (server, client)
    };
    let cport = 40_000 + (flow % 20_000) as u16;
    let sport = if tcp { 443 } else { 4500 };
    let (sp, dp) = if to_server {
        (cport, sport)
    } else {
        (sport, cport)
    };
    let l4 = if tcp { 20 } else { 8 };
    let total = 20 + l4 + payload.len();
    let mut f = Vec::with_capacity(14 + total);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64]);
    f.push(if tcp { 6 } else { 17 });
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sp.to_be_bytes());
    f.extend_from_slice(&dp.to_be_bytes());
    if tcp {
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        let ulen = (8 + payload.len()) as u16;
        f.extend_from_slice(&ulen.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    f
}

/// 200 000 packets of 400 flows (two thirds TCP to 443, one third UDP to 4500), payloads of
/// 0..1400 random-looking bytes, 10 µs apart.
pub fn mixed_capture() -> CaptureFile {
    let mut w = PcapngWriter::new(Vec::new()).expect("writer");
    let eth = w
        .add_interface(LinkType::ETHERNET, 65535)
        .expect("interface");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut seqs = vec![[1u32, 1u32]; FLOWS as usize];
    let payload: Vec<u8> = (0..1400u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for i in 0..PACKETS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let flow = (rng % u64::from(FLOWS)) as u32;
        let to_server = rng & (1 << 40) == 0;
        let len = ((rng >> 20) % 1400) as usize;
        let d = usize::from(!to_server);
        let seq = seqs[flow as usize][d];
        seqs[flow as usize][d] = seq.wrapping_add(len as u32);
        let ts = Timestamp(1_700_000_000_000_000_000 + u64::from(i) * 10_000);
        w.write_packet(eth, ts, &frame(flow, to_server, seq, &payload[..len]))
            .expect("packet");
    }
    CaptureFile::from_bytes(w.into_inner().expect("bytes")).expect("capture")
}
