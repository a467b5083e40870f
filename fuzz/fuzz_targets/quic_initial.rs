//! QUIC Initial handling behind the TLS inspector's datagram entry point.
//!
//! Garbage never passes AEAD authentication, so this target seals the fuzzer's bytes as
//! the frames of real Initial packets (keys from a fixed Destination Connection ID) and
//! also feeds raw datagrams, to reach the frame walker, the CRYPTO reassembly and the
//! ClientHello/ServerHello summaries with arbitrary contents.
//!
//! Input layout: byte 0 picks the version (v1, v2, draft-29); then items
//! `[ctl, len, bytes...]`. `ctl` bit 0 picks the direction, bit 1 sends `bytes` as a raw
//! datagram instead of sealing them, bit 2 coalesces this item with the next one.
#![no_main]

use entrospect::Timestamp;
use entrospect::flow::Direction;
use entrospect::inspect::tls::quic::{InitialKeys, Side, VERSION_1, VERSION_2, seal_initial};
use entrospect::inspect::tls::{TlsConfig, TlsInspector, an1496_score};
use libfuzzer_sys::fuzz_target;

const DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
const SCID: [u8; 4] = [0xf0, 0x67, 0xa5, 0x50];

fn initial(version: u32, dir: Direction, pn: u32, frames: &[u8]) -> Vec<u8> {
    let side = if dir == Direction::ToServer {
        Side::Client
    } else {
        Side::Server
    };
    let Some(keys) = InitialKeys::new(version, &DCID, side) else {
        return Vec::new();
    };
    let mut payload = frames.to_vec();
    if payload.len() < 20 {
        payload.resize(20, 0); // PADDING, so that the header protection sample fits
    }
    let ty: u8 = if version == VERSION_2 { 1 } else { 0 };
    let mut h = vec![0xc3 | ty << 4];
    h.extend_from_slice(&version.to_be_bytes());
    let dcid: &[u8] = if dir == Direction::ToServer { &DCID } else { &SCID };
    h.push(dcid.len() as u8);
    h.extend_from_slice(dcid);
    h.push(0); // no SCID
    h.push(0); // no token
    let len = (payload.len() + 4 + 16) as u16;
    h.extend_from_slice(&(0x4000 | len).to_be_bytes());
    h.extend_from_slice(&pn.to_be_bytes());
    seal_initial(&keys, &h, u64::from(pn), &payload).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Some((&v, mut rest)) = data.split_first() else {
        return;
    };
    let version = match v % 3 {
        0 => VERSION_1,
        1 => VERSION_2,
        _ => 0xff00_001d,
    };
    let cfg = TlsConfig::default();
    let mut insp = TlsInspector::new();
    let mut pn = [0u32; 2];
    let mut t = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    while let [ctl, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        let dir = if ctl & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if ctl & 2 != 0 {
            pending.extend_from_slice(bytes);
        } else {
            let d = dir.index();
            pending.extend_from_slice(&initial(version, dir, pn[d], bytes));
            pn[d] = pn[d].wrapping_add(1);
        }
        if ctl & 4 == 0 {
            t += 1_000;
            insp.feed_datagram(&cfg, dir, Timestamp::from_nanos(t), &pending);
            pending.clear();
        }
    }
    insp.finish(&cfg, Timestamp::from_nanos(t));
    if let Some(s) = insp.summary() {
        let _ = serde_json::to_string(s);
        let _ = an1496_score(s, &cfg);
    }
});
