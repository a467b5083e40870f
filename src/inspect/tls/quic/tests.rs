use super::*;

#[path = "rfc_vectors.rs"]
mod rfc_vectors;
use rfc_vectors as v;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn client_payload() -> Vec<u8> {
    let mut p = hex(v::V1_CLIENT_CRYPTO_FRAME);
    p.resize(1162, 0);
    p
}

#[test]
fn rfc9001_client_keys_match_appendix_a1() {
    let k = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Client).unwrap();
    assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
    assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
    assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    let s = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Server).unwrap();
    assert_eq!(s.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
    assert_eq!(s.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
    assert_eq!(s.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
}

#[test]
fn rfc9369_v2_keys_match_appendix_a1() {
    let k = InitialKeys::new(VERSION_2, &hex(v::DCID), Side::Client).unwrap();
    assert_eq!(k.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
    assert_eq!(k.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
    assert_eq!(k.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    let s = InitialKeys::new(VERSION_2, &hex(v::DCID), Side::Server).unwrap();
    assert_eq!(s.key.to_vec(), hex("82db637861d55e1d011f19ea71d5d2a7"));
    assert_eq!(s.iv.to_vec(), hex("dd13c276499c0249d3310652"));
    assert_eq!(s.hp.to_vec(), hex("edf6d05c83121201b436e16877593c3a"));
}

#[test]
fn rfc9001_client_initial_round_trips() {
    let k = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Client).unwrap();
    let sealed = seal_initial(&k, &hex(v::V1_CLIENT_HEADER), 2, &client_payload()).unwrap();
    assert_eq!(sealed, hex(v::V1_CLIENT_PROTECTED));
    let opened = open_initial(&k, &sealed, None).unwrap();
    assert_eq!(opened.packet_number, 2);
    assert_eq!(opened.len, 1200);
    assert_eq!(opened.payload, client_payload());
}

#[test]
fn rfc9001_server_initial_round_trips() {
    let k = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Server).unwrap();
    let sealed =
        seal_initial(&k, &hex(v::V1_SERVER_HEADER), 1, &hex(v::V1_SERVER_PAYLOAD)).unwrap();
    assert_eq!(sealed, hex(v::V1_SERVER_PROTECTED));
    let opened = open_initial(&k, &sealed, None).unwrap();
    assert_eq!(
        (opened.packet_number, opened.payload),
        (1, hex(v::V1_SERVER_PAYLOAD))
    );
}

#[test]
fn rfc9369_v2_client_and_server_initials_round_trip() {
    let c = InitialKeys::new(VERSION_2, &hex(v::DCID), Side::Client).unwrap();
    let sealed = seal_initial(&c, &hex(v::V2_CLIENT_HEADER), 2, &client_payload()).unwrap();
    assert_eq!(sealed, hex(v::V2_CLIENT_PROTECTED));
    assert_eq!(
        open_initial(&c, &sealed, None).unwrap().payload,
        client_payload()
    );
    let s = InitialKeys::new(VERSION_2, &hex(v::DCID), Side::Server).unwrap();
    let sealed =
        seal_initial(&s, &hex(v::V2_SERVER_HEADER), 1, &hex(v::V1_SERVER_PAYLOAD)).unwrap();
    assert_eq!(sealed, hex(v::V2_SERVER_PROTECTED));
    assert_eq!(
        open_initial(&s, &sealed, None).unwrap().payload,
        hex(v::V1_SERVER_PAYLOAD)
    );
}

#[test]
fn wrong_keys_or_flipped_bit_fail_authentication() {
    let k = InitialKeys::new(VERSION_1, b"\x01\x02\x03\x04\x05\x06\x07\x08", Side::Client).unwrap();
    let pkt = hex(v::V1_CLIENT_PROTECTED);
    assert_eq!(open_initial(&k, &pkt, None), Err(QuicError::Authentication));
    let good = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Client).unwrap();
    let mut bad = pkt.clone();
    bad[600] ^= 1;
    assert_eq!(
        open_initial(&good, &bad, None),
        Err(QuicError::Authentication)
    );
}

#[test]
fn every_truncation_of_an_initial_is_an_error_not_a_panic() {
    let k = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Client).unwrap();
    let pkt = hex(v::V1_CLIENT_PROTECTED);
    for n in 0..pkt.len() {
        assert!(open_initial(&k, &pkt[..n], None).is_err(), "prefix {n}");
    }
}

#[test]
fn crypto_frames_reports_crypto_and_skips_padding_ping_ack() {
    let p = hex(v::V1_SERVER_PAYLOAD);
    let mut got = Vec::new();
    crypto_frames(&p, |off, d| got.push((off, d.len()))).unwrap();
    assert_eq!(got, vec![(0, 0x5a)]);
    let mut ping_pad = vec![0x01, 0x00, 0x00];
    ping_pad.extend_from_slice(&p);
    assert!(crypto_frames(&ping_pad, |_, _| {}).is_ok());
    // STREAM (0x08) is not allowed in an Initial packet.
    assert!(matches!(
        crypto_frames(&[0x01, 0x08, 0x00], |_, _| {}),
        Err(QuicError::Frame {
            frame_type: 8,
            offset: 1
        })
    ));
}

#[test]
fn crypto_stream_reassembles_out_of_order_and_overlapping_fragments() {
    let msg: Vec<u8> = {
        let mut m = vec![1u8, 0, 0, 10];
        m.extend(0..10u8);
        m
    };
    let mut s = CryptoStream::default();
    s.insert(8, &msg[8..]).unwrap();
    s.insert(3, &msg[3..9]).unwrap();
    let mut out = Vec::new();
    s.messages(1 << 16, |t, b| out.push((t, b.to_vec())))
        .unwrap();
    assert!(out.is_empty());
    s.insert(0, &msg[..4]).unwrap();
    s.insert(0, &msg[..2]).unwrap();
    s.messages(1 << 16, |t, b| out.push((t, b.to_vec())))
        .unwrap();
    assert_eq!(out, vec![(1, (0..10u8).collect())]);
}

#[test]
fn crypto_stream_beyond_its_cap_is_refused() {
    let mut s = CryptoStream::default();
    assert_eq!(
        s.insert(MAX_CRYPTO_BYTES as u64, &[1]),
        Err(StreamError::Overflow)
    );
    assert_eq!(s.insert(u64::MAX, &[1]), Err(StreamError::Overflow));
    for i in 0..MAX_PENDING_FRAGMENTS as u64 {
        s.insert(10 + 2 * i, &[1]).unwrap();
    }
    assert_eq!(s.insert(1000, &[1]), Err(StreamError::Overflow));
}

#[test]
fn packet_numbers_decode_as_rfc9000_appendix_a3() {
    assert_eq!(decode_pn(Some(0xa82f30ea), 0x9b32, 16), 0xa82f9b32);
    assert_eq!(decode_pn(None, 2, 32), 2);
    assert_eq!(decode_pn(Some(0xff), 0x01, 8), 0x101);
}

#[test]
fn client_initial_split_over_two_datagrams_gives_one_client_hello() {
    // The RFC ClientHello cut into two CRYPTO frames in two Initial packets, sent in
    // reverse order (as Chrome does with large post-quantum key shares).
    let k = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Client).unwrap();
    let frame = hex(v::V1_CLIENT_CRYPTO_FRAME);
    let ch = &frame[4..]; // after type 0x06, offset 0x00, length 0x40f1
    let (a, b) = ch.split_at(100);
    let packet = |pn: u8, off: u16, data: &[u8]| {
        let mut payload = vec![0x06, 0x40 | (off >> 8) as u8, off as u8];
        payload.extend_from_slice(&[0x40 | (data.len() >> 8) as u8, data.len() as u8]);
        payload.extend_from_slice(data);
        payload.resize(1162, 0);
        let mut h = hex(v::V1_CLIENT_HEADER);
        let last = h.len() - 1;
        h[last] = pn;
        seal_initial(&k, &h, u64::from(pn), &payload).unwrap()
    };
    let mut q = QuicFlow::default();
    let first = q.datagram(0, &packet(3, 100, b), 1 << 16);
    assert!(first.messages.is_empty());
    let second = q.datagram(0, &packet(2, 0, a), 1 << 16);
    assert_eq!(second.messages.len(), 1);
    assert_eq!(second.messages[0].0, 1);
    assert_eq!(second.messages[0].1.len(), ch.len() - 4);
    assert_eq!(q.decrypted, 2);
}

#[test]
fn coalesced_server_initial_and_garbage_tail_are_read() {
    let c = InitialKeys::new(VERSION_1, &hex(v::DCID), Side::Client).unwrap();
    let client = seal_initial(&c, &hex(v::V1_CLIENT_HEADER), 2, &client_payload()).unwrap();
    let mut q = QuicFlow::default();
    assert_eq!(q.datagram(0, &client, 1 << 16).messages.len(), 1);
    let mut dgram = hex(v::V1_SERVER_PROTECTED);
    dgram.extend_from_slice(&[0xe0, 0, 0, 0, 1, 0xff]); // a cut Handshake header
    let out = q.datagram(1, &dgram, 1 << 16);
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].0, 2);
}

#[test]
fn unknown_versions_and_version_negotiation_are_left_alone() {
    let mut pkt = hex(v::V1_CLIENT_PROTECTED);
    pkt[1..5].copy_from_slice(&0x1a2a_3a4au32.to_be_bytes());
    let mut q = QuicFlow::default();
    assert!(q.datagram(0, &pkt, 1 << 16).messages.is_empty());
    pkt[1..5].copy_from_slice(&[0, 0, 0, 0]);
    assert!(q.datagram(1, &pkt, 1 << 16).messages.is_empty());
    assert_eq!(q.decrypted, 0);
    assert!(!is_quic_initial_candidate(&pkt));
    assert!(is_quic_initial_candidate(&hex(v::V1_CLIENT_PROTECTED)));
}
