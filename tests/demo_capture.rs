//! Checks of the bundled demo capture (`examples/data/`), independent of the engine.
//!
//! The committed `demo.pcapng` is parsed with pcap-parser and etherparse; checksums are
//! verified with a ones'-complement sum written here (RFC 1071), not by the library that
//! built them. The generator is compiled in (`#[path]`) to check that regenerating gives
//! the committed files.

#[path = "../examples/gen_demo/mod.rs"]
mod gen_demo;

use entrospect::host::{HostEvent, HostEventKind, HostProto};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::pcapng::{Block, parse_block_le};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data")
}

fn committed_capture() -> Vec<u8> {
    let path = data_dir().join(gen_demo::PCAPNG_FILE);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

const TCP: u8 = 6;
const UDP: u8 = 17;

/// One decoded frame.
#[derive(Clone, Debug)]
struct Seg {
    ts: u64,
    proto: u8,
    src: SocketAddr,
    dst: SocketAddr,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    seq: u32,
    ack_no: u32,
    payload: Vec<u8>,
}

/// RFC 1071 ones'-complement sum of `chunks`, folded to 16 bits.
fn ones_complement_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut carry_byte: Option<u8> = None;
    for chunk in chunks {
        for &b in *chunk {
            match carry_byte.take() {
                None => carry_byte = Some(b),
                Some(hi) => sum += u64::from(u16::from_be_bytes([hi, b])),
            }
        }
    }
    if let Some(hi) = carry_byte {
        sum += u64::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Decodes one Ethernet frame and verifies its IPv4 header checksum and its TCP/UDP
/// checksum (a correct checksum makes the sum over pseudo-header and segment 0xFFFF).
fn decode(ts: u64, frame: &[u8]) -> Result<Seg, String> {
    let sliced = SlicedPacket::from_ethernet(frame).map_err(|e| format!("slicing: {e}"))?;
    let (src_ip, dst_ip, proto, segment, pseudo): (IpAddr, IpAddr, u8, &[u8], Vec<u8>) =
        match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                if ones_complement_sum(&[h.slice()]) != 0xFFFF {
                    return Err("bad ipv4 header checksum".into());
                }
                let seg = ip.payload().payload;
                let len = u16::try_from(seg.len()).map_err(|_| "ipv4 payload too long")?;
                let proto = ip.payload().ip_number.0;
                let mut pseudo = Vec::new();
                pseudo.extend_from_slice(&h.source());
                pseudo.extend_from_slice(&h.destination());
                pseudo.extend_from_slice(&[0, proto]);
                pseudo.extend_from_slice(&len.to_be_bytes());
                (
                    IpAddr::from(h.source()),
                    IpAddr::from(h.destination()),
                    proto,
                    seg,
                    pseudo,
                )
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                let seg = ip.payload().payload;
                let len = u32::try_from(seg.len()).map_err(|_| "ipv6 payload too long")?;
                let proto = ip.payload().ip_number.0;
                let mut pseudo = Vec::new();
                pseudo.extend_from_slice(&h.source());
                pseudo.extend_from_slice(&h.destination());
                pseudo.extend_from_slice(&len.to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, proto]);
                (
                    IpAddr::from(h.source()),
                    IpAddr::from(h.destination()),
                    proto,
                    seg,
                    pseudo,
                )
            }
            other => return Err(format!("not IP: {other:?}")),
        };
    if ones_complement_sum(&[&pseudo, segment]) != 0xFFFF {
        return Err(format!("bad transport checksum (ip proto {proto})"));
    }
    match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => Ok(Seg {
            ts,
            proto: TCP,
            src: SocketAddr::new(src_ip, t.source_port()),
            dst: SocketAddr::new(dst_ip, t.destination_port()),
            syn: t.syn(),
            ack: t.ack(),
            fin: t.fin(),
            rst: t.rst(),
            seq: t.sequence_number(),
            ack_no: t.acknowledgment_number(),
            payload: t.payload().to_vec(),
        }),
        Some(TransportSlice::Udp(u)) => Ok(Seg {
            ts,
            proto: UDP,
            src: SocketAddr::new(src_ip, u.source_port()),
            dst: SocketAddr::new(dst_ip, u.destination_port()),
            syn: false,
            ack: false,
            fin: false,
            rst: false,
            seq: 0,
            ack_no: 0,
            payload: u.payload().to_vec(),
        }),
        other => Err(format!("not TCP or UDP: {other:?}")),
    }
}

/// All frames of a pcapng stream as (ns timestamp, bytes); checks link type and
/// nanosecond resolution of the single interface.
fn read_pcapng(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut rest = bytes;
    let mut out = Vec::new();
    let mut interfaces = 0;
    while !rest.is_empty() {
        let (next, block) = parse_block_le(rest).expect("well-formed pcapng block");
        match block {
            Block::SectionHeader(_) => {}
            Block::InterfaceDescription(idb) => {
                assert_eq!(idb.linktype.0, 1, "ethernet link type");
                assert_eq!(idb.ts_resolution(), Some(1_000_000_000), "ns resolution");
                interfaces += 1;
            }
            Block::EnhancedPacket(epb) => {
                assert_eq!(epb.if_id, 0);
                assert_eq!(epb.caplen, epb.origlen, "no snap length applied");
                let len = epb.caplen as usize;
                let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                out.push((
                    ts,
                    epb.data.get(..len).expect("caplen within block").to_vec(),
                ));
            }
            other => panic!("unexpected block {other:?}"),
        }
        rest = next;
    }
    assert_eq!(interfaces, 1);
    out
}

fn decode_all(bytes: &[u8]) -> Vec<Seg> {
    read_pcapng(bytes)
        .into_iter()
        .enumerate()
        .map(|(i, (ts, frame))| {
            decode(ts, &frame).unwrap_or_else(|e| panic!("packet {}: {e}", i + 1))
        })
        .collect()
}

/// Flow key: protocol and (client, server), the client being whoever sent first.
type FlowKey = (u8, SocketAddr, SocketAddr);

fn flows(segs: &[Seg]) -> BTreeMap<FlowKey, Vec<Seg>> {
    let mut by_pair: BTreeMap<(u8, SocketAddr, SocketAddr), FlowKey> = BTreeMap::new();
    let mut out: BTreeMap<FlowKey, Vec<Seg>> = BTreeMap::new();
    for s in segs {
        let pair = (s.proto, s.src.min(s.dst), s.src.max(s.dst));
        let key = *by_pair.entry(pair).or_insert((s.proto, s.src, s.dst));
        out.entry(key).or_default().push(s.clone());
    }
    out
}

fn sock(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

/// The flows the task asks for: (name, proto, client, server).
fn required_flows() -> Vec<(&'static str, u8, SocketAddr, SocketAddr)> {
    vec![
        ("dns A", UDP, sock("10.0.0.5:41873"), sock("10.0.0.53:53")),
        (
            "dns AAAA",
            UDP,
            sock("10.0.0.5:41874"),
            sock("10.0.0.53:53"),
        ),
        (
            "tls 1.3 clean",
            TCP,
            sock("10.0.0.5:50500"),
            sock("198.51.100.10:443"),
        ),
        (
            "chacha beacon",
            TCP,
            sock("10.0.0.5:50514"),
            sock("203.0.113.9:4444"),
        ),
        (
            "tls 1.2 bad cert",
            TCP,
            sock("10.0.0.7:49712"),
            sock("203.0.113.50:443"),
        ),
        (
            "http gzip",
            TCP,
            sock("10.0.0.22:51000"),
            sock("198.51.100.20:80"),
        ),
        (
            "tls 1.3 odd port v6",
            TCP,
            sock("[2001:db8:10::31]:52210"),
            sock("[2001:db8:20::443]:4443"),
        ),
        (
            "random on port 80",
            TCP,
            sock("10.0.0.9:53311"),
            sock("203.0.113.77:80"),
        ),
        (
            "tls 1.3 no sni",
            TCP,
            sock("10.0.0.9:53340"),
            sock("198.51.100.30:443"),
        ),
    ]
}

fn payload_from(segs: &[Seg], sender: SocketAddr) -> Vec<u8> {
    segs.iter()
        .filter(|s| s.src == sender)
        .flat_map(|s| s.payload.iter().copied())
        .collect()
}

#[test]
fn committed_capture_is_under_one_megabyte() {
    let len = committed_capture().len();
    assert!(len < 1_000_000, "demo.pcapng is {len} bytes");
    assert!(
        len > 50_000,
        "demo.pcapng is suspiciously small: {len} bytes"
    );
}

#[test]
fn every_packet_has_valid_ip_and_transport_checksums() {
    // decode() fails on any bad checksum.
    let segs = decode_all(&committed_capture());
    assert!(segs.len() > 100, "only {} packets", segs.len());
}

#[test]
fn timestamps_are_ordered_and_span_about_two_minutes() {
    let frames = read_pcapng(&committed_capture());
    let base = gen_demo::BASE_SECS * 1_000_000_000;
    assert!(frames.windows(2).all(|w| w[0].0 <= w[1].0), "out of order");
    let first = frames.first().expect("packets").0;
    let last = frames.last().expect("packets").0;
    assert!(
        first >= base && first < base + 2_000_000_000,
        "first at {first}"
    );
    let span_s = (last - first) / 1_000_000_000;
    assert!((60..=150).contains(&span_s), "capture spans {span_s} s");
}

#[test]
fn every_scenario_flow_exists_with_handshake_and_fin() {
    let segs = decode_all(&committed_capture());
    let flows = flows(&segs);
    assert_eq!(
        flows.len(),
        required_flows().len(),
        "flows: {:?}",
        flows.keys()
    );
    for (name, proto, client, server) in required_flows() {
        let f = flows
            .get(&(proto, client, server))
            .unwrap_or_else(|| panic!("{name}: flow {client} -> {server} missing"));
        if proto == UDP {
            assert_eq!(f.len(), 2, "{name}: query and answer");
            assert_eq!((f[0].src, f[1].src), (client, server), "{name}");
            continue;
        }
        assert!(f.iter().all(|s| !s.rst), "{name}: no RST");
        // Three-way handshake (RFC 9293 §3.5).
        let (syn, synack, ack) = (&f[0], &f[1], &f[2]);
        assert!(
            syn.syn && !syn.ack && syn.src == client,
            "{name}: SYN first"
        );
        assert!(
            synack.syn && synack.ack && synack.src == server,
            "{name}: SYN/ACK"
        );
        assert_eq!(
            synack.ack_no,
            syn.seq.wrapping_add(1),
            "{name}: SYN/ACK acks ISN+1"
        );
        assert!(
            ack.ack && !ack.syn && ack.src == client,
            "{name}: third ACK"
        );
        assert_eq!(
            ack.ack_no,
            synack.seq.wrapping_add(1),
            "{name}: ACK acks ISN+1"
        );
        // Each side's sequence numbers run without gaps, and ACKs never run ahead.
        for (sender, isn) in [(client, syn.seq), (server, synack.seq)] {
            let mut next = isn.wrapping_add(1);
            for s in f.iter().skip(2).filter(|s| s.src == sender) {
                assert_eq!(s.seq, next, "{name}: contiguous sequence from {sender}");
                next = next.wrapping_add(s.payload.len() as u32 + u32::from(s.fin));
            }
        }
        // Teardown: FIN from both sides, the client's first, and a last ACK.
        let fins: Vec<&Seg> = f.iter().filter(|s| s.fin).collect();
        assert_eq!(fins.len(), 2, "{name}: two FINs");
        assert_eq!(
            (fins[0].src, fins[1].src),
            (client, server),
            "{name}: FIN order"
        );
        let last = f.last().expect("packets");
        assert!(
            last.ack && !last.fin && last.src == client,
            "{name}: final ACK"
        );
        assert_eq!(
            last.ack_no,
            fins[1].seq.wrapping_add(1),
            "{name}: final ACK acks FIN"
        );
    }
}

#[test]
fn no_tcp_segment_exceeds_the_mss() {
    let segs = decode_all(&committed_capture());
    let max = segs
        .iter()
        .filter(|s| s.proto == TCP)
        .map(|s| s.payload.len())
        .max()
        .expect("tcp packets");
    assert!(max <= 1460, "largest segment payload {max}");
    assert!(max >= 1400, "bulk transfers fill segments (largest {max})");
}

#[test]
fn tls_flows_start_with_a_handshake_record_both_ways() {
    let segs = decode_all(&committed_capture());
    let flows = flows(&segs);
    let tls: Vec<_> = flows
        .iter()
        .filter(|((p, _, server), _)| *p == TCP && matches!(server.port(), 443 | 4443))
        .collect();
    assert_eq!(tls.len(), 4, "four TLS flows");
    for ((_, client, server), f) in tls {
        for sender in [*client, *server] {
            let p = payload_from(f, sender);
            assert_eq!(
                p.get(..2),
                Some(&[0x16, 0x03][..]),
                "{sender} in {client}->{server} starts with a TLS handshake record"
            );
        }
    }
}

fn printable_ratio(bytes: &[u8]) -> f64 {
    let printable = bytes
        .iter()
        .filter(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n' | b'\t'))
        .count();
    printable as f64 / bytes.len().max(1) as f64
}

#[test]
fn beacon_on_port_4444_is_not_printable_but_http_request_is() {
    let segs = decode_all(&committed_capture());
    let flows = flows(&segs);
    let client = sock("10.0.0.5:50514");
    let server = sock("203.0.113.9:4444");
    let f = &flows[&(TCP, client, server)];
    for sender in [client, server] {
        let p = payload_from(f, sender);
        assert!(p.len() > 150, "{sender} sent {} bytes", p.len());
        let r = printable_ratio(&p);
        // Uniform bytes are printable with probability 98/256 ≈ 0.38.
        assert!(r < 0.5, "{sender}: printable ratio {r:.2}");
    }
    let upload = payload_from(f, client).len();
    assert!(
        (8_000..12_000).contains(&upload),
        "beacons + exfil = {upload} bytes"
    );
    let beacons = f
        .iter()
        .filter(|s| s.src == client && !s.payload.is_empty() && s.payload.len() <= 120)
        .count();
    assert!((6..=10).contains(&beacons), "{beacons} beacons");

    let http = &flows[&(TCP, sock("10.0.0.22:51000"), sock("198.51.100.20:80"))];
    let req = payload_from(http, sock("10.0.0.22:51000"));
    assert!(req.starts_with(b"GET "), "http request");
    assert!(printable_ratio(&req) > 0.99);
    let resp = payload_from(http, sock("198.51.100.20:80"));
    let body_at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers")
        + 4;
    let head = String::from_utf8_lossy(&resp[..body_at]);
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    assert_eq!(
        resp.get(body_at..body_at + 2),
        Some(&[0x1f, 0x8b][..]),
        "gzip magic"
    );
    assert!(resp.len() - body_at >= 30_000, "gzip body ~30 KB");
}

fn committed_host_events() -> Vec<HostEvent> {
    let path = data_dir().join(gen_demo::HOST_EVENTS_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1))
        })
        .collect()
}

#[test]
fn host_events_parse_and_each_connect_matches_a_captured_flow() {
    let events = committed_host_events();
    let segs = decode_all(&committed_capture());
    let flows = flows(&segs);
    let mut connects = 0;
    for ev in &events {
        if let HostEventKind::NetworkConnect {
            proto,
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            ..
        } = &ev.kind
        {
            connects += 1;
            let p = match proto {
                HostProto::Tcp => TCP,
                HostProto::Udp => UDP,
            };
            let client = SocketAddr::new(src_ip.expect("src_ip"), src_port.expect("src_port"));
            let server = SocketAddr::new(*dest_ip, *dest_port);
            let f = flows
                .get(&(p, client, server))
                .unwrap_or_else(|| panic!("no flow for {ev:?}"));
            let syn_ts = f[0].ts;
            let dt = ev.timestamp.as_nanos().abs_diff(syn_ts);
            assert!(dt < 2_000_000_000, "connect {dt} ns away from the SYN");
        }
    }
    assert_eq!(connects, 3, "curl, python3 and rundll32 connect");
}

#[test]
fn host_events_tell_the_scenario_stories() {
    let events = committed_host_events();
    assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    let of = |host: &str, image_end: &str| -> Vec<&HostEvent> {
        let pid = events
            .iter()
            .find_map(|e| match &e.kind {
                HostEventKind::ProcessStart { pid, image, .. }
                    if e.host == host && image.ends_with(image_end) =>
                {
                    Some(*pid)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{host}: no {image_end} start"));
        events
            .iter()
            .filter(|e| e.host == host && e.kind.pid() == pid)
            .collect()
    };
    let kinds = |evs: &[&HostEvent]| evs.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>();
    let modules = |evs: &[&HostEvent]| {
        evs.iter()
            .filter_map(|e| match &e.kind {
                HostEventKind::ModuleLoad { module, .. } => Some(module.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };

    let python = of("ws-17", "/python3");
    assert_eq!(
        kinds(&python),
        [
            "process_start",
            "module_load",
            "network_connect",
            "process_exit"
        ]
    );
    assert_eq!(
        modules(&python),
        ["/usr/lib/x86_64-linux-gnu/libcrypto.so.3"]
    );

    let curl = of("ws-17", "/curl");
    assert_eq!(kinds(&curl).first(), Some(&"process_start"));
    assert!(modules(&curl).iter().any(|m| m.ends_with("libssl.so.3")));

    let rundll = of("win-07", "rundll32.exe");
    assert!(kinds(&rundll).contains(&"network_connect"));
    assert!(rundll.iter().all(|e| match &e.kind {
        HostEventKind::ProcessStart { process_guid, .. } => process_guid.is_some(),
        _ => true,
    }));
    let chrome = of("win-07", "chrome.exe");
    assert_eq!(modules(&chrome), modules(&rundll), "same DLLs");
    assert!(
        !kinds(&chrome).contains(&"network_connect"),
        "chrome connects nowhere"
    );
}

fn flow_shape(capture: &[u8]) -> BTreeMap<FlowKey, usize> {
    flows(&decode_all(capture))
        .into_iter()
        .map(|(k, v)| (k, v.len()))
        .collect()
}

#[test]
fn regenerating_into_a_temp_dir_reproduces_the_committed_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = gen_demo::generate(dir.path()).expect("generation");
    let fresh = std::fs::read(dir.path().join(gen_demo::PCAPNG_FILE)).expect("fresh capture");
    let committed = committed_capture();
    // Same flows (5-tuples) with the same packet counts.
    assert_eq!(flow_shape(&fresh), flow_shape(&committed));
    assert_eq!(demo.flows.len(), required_flows().len());
    // All randomness is seeded, so the bytes are the same too (with the locked
    // dependency versions; after a rustls upgrade, regenerate and commit).
    assert!(
        fresh == committed,
        "examples/data is stale: run `cargo run --example gen_demo -- examples/data`"
    );
    for name in [gen_demo::HOST_EVENTS_FILE, gen_demo::README_FILE] {
        let a = std::fs::read(dir.path().join(name)).expect("fresh file");
        let b = std::fs::read(data_dir().join(name)).expect("committed file");
        assert!(a == b, "{name} is stale: regenerate examples/data");
    }
}

#[test]
fn two_builds_are_byte_identical() {
    let a = gen_demo::build().expect("first build");
    let b = gen_demo::build().expect("second build");
    assert!(a.pcapng == b.pcapng, "capture differs between runs");
    assert_eq!(a.host_events, b.host_events);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn tls12_flow_shows_sni_and_an_expired_localhost_certificate_in_clear() {
    let segs = decode_all(&committed_capture());
    let flows = flows(&segs);
    let client = sock("10.0.0.7:49712");
    let server = sock("203.0.113.50:443");
    let f = &flows[&(TCP, client, server)];
    let hello = payload_from(f, client);
    assert!(
        contains(&hello, b"update.example.test"),
        "SNI in ClientHello"
    );
    let flight = payload_from(f, server);
    // TLS 1.2 sends the certificate unencrypted: its name and its notAfter UTCTime.
    assert!(contains(&flight, b"localhost"));
    assert!(
        !contains(&flight, b"update.example.test"),
        "name not in cert"
    );
    assert!(contains(&flight, b"260101000000Z"), "notAfter 2026-01-01");

    let clean = &flows[&(TCP, sock("10.0.0.5:50500"), sock("198.51.100.10:443"))];
    assert!(contains(
        &payload_from(clean, sock("10.0.0.5:50500")),
        b"www.example.test"
    ));
}
