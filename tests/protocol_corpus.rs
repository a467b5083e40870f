//! Runs the first-bytes recognisers and the AN0404 decision over the real-capture corpus.
//!
//! A stand-in for the engine (which another stage owns): pcap-parser reads the captures,
//! etherparse decodes them, a plain map groups packets into flows (no IP defragmentation,
//! TCP segments in capture order with retransmissions skipped). It prints, per flow, what
//! the recognisers say against the oracle's `app_protos`, and per capture whether AN0404
//! fired against the MANIFEST verdict; it asserts agreement with the oracle on the
//! protocols both name. The randomness confidence here is a crude test-only estimate
//! (entropy against the mean and spread of random buffers of the same length), not the
//! entropy core's.
//!
//! Skips with a message when `../shared/corpus` is absent.

use entrospect::detect::an0404::{self, An0404Config, DirEvidence, FlowEvidence};
use entrospect::flow::Direction;
use entrospect::inspect::protocol::{
    AppProto, Confidence, ContentKind, ProtocolState, Transport, explain_content,
};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{Block, PcapBlockOwned, PcapError, create_reader};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::IpAddr;
use std::path::Path;

const SAMPLE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Endpoint(IpAddr, u16);

#[derive(Default)]
struct Dir {
    sample: Vec<u8>,
    bytes: u64,
    pkts: u64,
    next_seq: Option<u32>,
    syn: bool,
}

struct Flow {
    transport: Transport,
    client: Endpoint,
    server: Endpoint,
    state: ProtocolState,
    dirs: [Dir; 2],
}

fn decode(link: i32, data: &[u8]) -> Option<SlicedPacket<'_>> {
    match link {
        1 => SlicedPacket::from_ethernet(data).ok(),
        0 | 108 => SlicedPacket::from_ip(data.get(4..)?).ok(),
        101 | 228 | 229 | 12 | 14 => SlicedPacket::from_ip(data).ok(),
        // Linux cooked v1: 16-byte header whose last two bytes are the ethertype.
        113 => SlicedPacket::from_ip(data.get(16..)?).ok(),
        276 => SlicedPacket::from_ip(data.get(20..)?).ok(),
        9 => {
            // PPP in HDLC-like framing (ff 03) or bare: protocol 0x0021 IPv4, 0x0057 IPv6.
            let d = if data.starts_with(&[0xff, 0x03]) {
                data.get(2..)?
            } else {
                data
            };
            SlicedPacket::from_ip(d.get(2..)?).ok()
        }
        _ => None,
    }
}

fn read_capture(path: &Path, mut each: impl FnMut(i32, &[u8])) {
    let Ok(file) = File::open(path) else { return };
    let Ok(mut reader) = create_reader(1 << 20, file) else {
        return;
    };
    let mut legacy_link = 1i32;
    let mut ifaces: Vec<i32> = Vec::new();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => legacy_link = h.network.0,
                    PcapBlockOwned::Legacy(b) => {
                        let n = (b.caplen as usize).min(b.data.len());
                        each(legacy_link, &b.data[..n]);
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        ifaces.push(idb.linktype.0)
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let link = ifaces.get(epb.if_id as usize).copied().unwrap_or(1);
                        each(link, epb.packet_data());
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let link = ifaces.first().copied().unwrap_or(1);
                        each(link, spb.packet_data());
                    }
                    _ => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
}

fn flows_of(path: &Path) -> Vec<Flow> {
    let mut flows: Vec<Flow> = Vec::new();
    let mut index: HashMap<(u8, Endpoint, Endpoint), usize> = HashMap::new();
    read_capture(path, |link, data| {
        let Some(pkt) = decode(link, data) else {
            return;
        };
        let Some(net) = pkt.net.as_ref() else { return };
        let (src, dst) = match net {
            NetSlice::Ipv4(s) => (
                IpAddr::V4(s.header().source_addr()),
                IpAddr::V4(s.header().destination_addr()),
            ),
            NetSlice::Ipv6(s) => (
                IpAddr::V6(s.header().source_addr()),
                IpAddr::V6(s.header().destination_addr()),
            ),
            _ => return,
        };
        let Some(ip_payload) = net.ip_payload_ref() else {
            return;
        };
        if ip_payload.fragmented {
            return;
        }
        let (transport, sp, dp, payload, syn_only, seq) = match pkt.transport.as_ref() {
            Some(TransportSlice::Tcp(t)) => (
                Transport::Tcp,
                t.source_port(),
                t.destination_port(),
                t.payload(),
                t.syn() && !t.ack(),
                Some(t.sequence_number()),
            ),
            Some(TransportSlice::Udp(u)) => (
                Transport::Udp,
                u.source_port(),
                u.destination_port(),
                u.payload(),
                false,
                None,
            ),
            _ => (
                Transport::Other(ip_payload.ip_number.0),
                0,
                0,
                ip_payload.payload,
                false,
                None,
            ),
        };
        let (a, b) = (Endpoint(src, sp), Endpoint(dst, dp));
        let tnum = match transport {
            Transport::Tcp => 6,
            Transport::Udp => 17,
            Transport::Other(n) => n,
        };
        let key = if a <= b { (tnum, a, b) } else { (tnum, b, a) };
        let i = *index.entry(key).or_insert_with(|| {
            flows.push(Flow {
                transport,
                client: a,
                server: b,
                state: ProtocolState::new(),
                dirs: Default::default(),
            });
            flows.len() - 1
        });
        let f = &mut flows[i];
        if syn_only && f.client != a {
            // The SYN names the client, whatever was seen first.
            f.client = a;
            f.server = b;
            f.dirs.swap(0, 1);
        }
        let dir = if f.client == a {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let d = &mut f.dirs[dir.index()];
        d.pkts += 1;
        d.bytes += data.len() as u64;
        if payload.is_empty() {
            if syn_only {
                d.next_seq = seq.map(|s| s.wrapping_add(1));
                d.syn = true;
            }
            return;
        }
        if let (Some(s), Some(next)) = (seq, d.next_seq) {
            // Skip retransmissions (segments wholly before the next expected byte).
            let end = s.wrapping_add(payload.len() as u32);
            if (end.wrapping_sub(next) as i32) <= 0 {
                return;
            }
        }
        if let Some(s) = seq {
            d.next_seq = Some(s.wrapping_add(payload.len() as u32));
        }
        let room = SAMPLE.saturating_sub(d.sample.len());
        d.sample
            .extend_from_slice(&payload[..room.min(payload.len())]);
        let (cp, sp) = (f.client.1, f.server.1);
        f.state.observe(transport, dir, cp, sp, payload);
    });
    flows
}

fn entropy(data: &[u8]) -> f64 {
    let mut h = [0u64; 256];
    for &b in data {
        h[b as usize] += 1;
    }
    let n = data.len() as f64;
    h.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Test-only estimate: mean and spread of the entropy of random buffers of length `n`.
fn random_entropy_stats(n: usize, cache: &mut HashMap<usize, (f64, f64)>) -> (f64, f64) {
    *cache.entry(n).or_insert_with(|| {
        let mut s = 0x1234_5678_9abc_def0u64 ^ n as u64;
        let mut vals = Vec::new();
        for _ in 0..24 {
            let buf: Vec<u8> = (0..n)
                .map(|_| {
                    s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = s;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    (z ^ (z >> 31)) as u8
                })
                .collect();
            vals.push(entropy(&buf));
        }
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        (mean, var.sqrt().max(0.002))
    })
}

fn dir_evidence(d: &Dir, cache: &mut HashMap<usize, (f64, f64)>) -> DirEvidence {
    let n = d.sample.len();
    if n == 0 {
        return DirEvidence {
            bytes: d.bytes,
            pkts: d.pkts,
            ..DirEvidence::default()
        };
    }
    let h = entropy(&d.sample);
    let (mean, sd) = random_entropy_stats(n, cache);
    let gap = mean - h;
    let conf = if gap <= (4.0 * sd).max(0.05) {
        0.95
    } else {
        0.0
    };
    let printable = d
        .sample
        .iter()
        .filter(|b| (0x20..0x7f).contains(*b))
        .count() as f64
        / n as f64;
    DirEvidence {
        sample_len: n,
        bits_per_byte: h,
        expected_random: mean,
        random_confidence: conf,
        printable_ratio: printable,
        first_bytes_printable: d.sample.iter().take(8).all(|b| (0x20..0x7f).contains(b)),
        bytes: d.bytes,
        pkts: d.pkts,
    }
}

/// Oracle `app_protos` per conversation, keyed by sorted endpoints and transport.
fn oracle(path: &Path) -> HashMap<(u8, Endpoint, Endpoint), Vec<String>> {
    let mut map = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return map;
    };
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["type"] != "conv" {
            continue;
        }
        let ep = |a: &str, p: &str| -> Option<Endpoint> {
            Some(Endpoint(
                v[a].as_str()?.parse().ok()?,
                u16::try_from(v[p].as_u64()?).ok()?,
            ))
        };
        let (Some(a), Some(b)) = (ep("a_addr", "a_port"), ep("b_addr", "b_port")) else {
            continue;
        };
        let t = if v["proto"] == "tcp" { 6 } else { 17 };
        let key = if a <= b { (t, a, b) } else { (t, b, a) };
        let protos = v["app_protos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        map.insert(key, protos);
    }
    map
}

/// MANIFEST verdicts: file name -> first verdict keyword.
fn manifest(path: &Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return map;
    };
    for line in text.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 9 || !cols[1].starts_with('`') {
            continue;
        }
        let name = cols[1].trim_matches('`').to_owned();
        let verdict = cols[7]
            .split([':', ' ', '('])
            .next()
            .unwrap_or("")
            .to_owned();
        map.insert(name, verdict);
    }
    map
}

/// Oracle names that correspond to one of our protocols.
fn oracle_name(p: AppProto) -> &'static [&'static str] {
    match p {
        AppProto::Tls | AppProto::DnsOverTls | AppProto::DnsOverHttps => &["tls", "ssl"],
        AppProto::Ssh => &["ssh"],
        AppProto::Quic => &["quic", "gquic"],
        AppProto::Dtls => &["dtls"],
        AppProto::Wireguard => &["wg"],
        AppProto::Openvpn => &["openvpn"],
        AppProto::Dns | AppProto::Mdns | AppProto::Llmnr => &["dns", "mdns", "llmnr"],
        AppProto::NetbiosNs => &["nbns"],
        AppProto::Http => &["http"],
        AppProto::Ike => &["isakmp"],
        AppProto::Ntp => &["ntp"],
        AppProto::Dhcp => &["dhcp", "bootp"],
        AppProto::Smb => &["smb", "smb2", "nbss"],
        AppProto::Ftp => &["ftp"],
        AppProto::Smtp => &["smtp"],
        AppProto::Socks => &["socks"],
        _ => &[],
    }
}

#[test]
fn corpus_flows_match_the_oracle_and_an0404_verdicts_are_printed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pcap");
    if !dir.is_dir() {
        eprintln!("skipping: corpus not found at {}", dir.display());
        return;
    }
    let verdicts = manifest(&dir.join("MANIFEST.md"));
    let cfg = An0404Config::default();
    let mut cache = HashMap::new();
    // Oracle protocols we also name: (agree, disagree) per oracle name.
    let mut agreement: BTreeMap<&'static str, (u32, u32)> = BTreeMap::new();
    let mut recognised_total = 0u32;
    let mut flows_total = 0u32;
    let mut summary = Vec::new();
    for (name, verdict) in &verdicts {
        let path = dir.join(name);
        let flows = flows_of(&path);
        let truth = oracle(&dir.join(format!("{name}.tshark.jsonl")));
        let mut fired = Vec::new();
        for f in &flows {
            if f.dirs.iter().all(|d| d.sample.is_empty()) {
                continue;
            }
            flows_total += 1;
            let rec = f.state.current().copied();
            let proto = rec.map_or(AppProto::Unknown, |r| r.proto);
            if rec.is_some() {
                recognised_total += 1;
            }
            let tnum = match f.transport {
                Transport::Tcp => 6,
                Transport::Udp => 17,
                Transport::Other(n) => n,
            };
            let key = if f.client <= f.server {
                (tnum, f.client, f.server)
            } else {
                (tnum, f.server, f.client)
            };
            let oracle_protos = truth.get(&key).cloned().unwrap_or_default();
            // Agreement with the oracle's outermost protocol that we also name (TLS inside
            // QUIC, DTLS or OpenVPN is the inner layer, not the flow's protocol).
            let known = [
                "tls", "ssh", "quic", "gquic", "dtls", "wg", "openvpn", "isakmp", "http", "dns",
                "socks",
            ];
            if let Some(o) = oracle_protos
                .iter()
                .find_map(|p| known.iter().find(|k| *k == p))
            {
                let e = agreement.entry(o).or_default();
                if oracle_name(proto).contains(o) {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                    eprintln!(
                        "  disagree {name}: {:?} {}:{} -> {}:{} ours={} oracle={oracle_protos:?}",
                        f.transport, f.client.0, f.client.1, f.server.0, f.server.1, proto
                    );
                }
            }
            let dirs = [
                dir_evidence(&f.dirs[0], &mut cache),
                dir_evidence(&f.dirs[1], &mut cache),
            ];
            // Content found in a direction that looks random.
            let content = f
                .dirs
                .iter()
                .zip(&dirs)
                .filter(|(_, e)| e.random_confidence >= cfg.random_confidence)
                .find_map(|(d, _)| explain_content(&d.sample));
            let ev = FlowEvidence {
                transport: f.transport,
                client_port: f.client.1,
                server_port: f.server.1,
                server_ip: f.server.0,
                app_proto: proto,
                recognition: rec.as_ref(),
                content: content.map(|c: ContentKind| c),
                dirs,
                start_seen: f.transport != Transport::Tcp || f.dirs[0].syn,
                // Judged as a whole flow: the total volume decides, not a rate.
                duration_ns: 0,
                ended: true,
            };
            let finding = an0404::evaluate(&cfg, &ev);
            let hex = |d: &Dir| {
                d.sample
                    .iter()
                    .take(12)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            };
            eprintln!(
                "{name}: {:?} {}:{} -> {}:{} ours={}{} oracle={:?} H=[{:.2},{:.2}] n=[{},{}] pr=[{:.2},{:.2}] first=[{},{}] content={:?} an0404={}",
                f.transport,
                f.client.0,
                f.client.1,
                f.server.0,
                f.server.1,
                proto,
                match rec.map(|r| r.confidence) {
                    Some(Confidence::Strong) => "(strong)",
                    Some(Confidence::Weak) => "(weak)",
                    None => "",
                },
                oracle_protos,
                ev.dirs[0].bits_per_byte,
                ev.dirs[1].bits_per_byte,
                ev.dirs[0].sample_len,
                ev.dirs[1].sample_len,
                ev.dirs[0].printable_ratio,
                ev.dirs[1].printable_ratio,
                hex(&f.dirs[0]),
                hex(&f.dirs[1]),
                content,
                finding
                    .as_ref()
                    .map_or("-".to_owned(), |x| x.severity.as_str().to_owned()),
            );
            if let Some(x) = finding
                && x.suppressed.is_none()
            {
                fired.push(format!("{}/{}:{}", x.severity, tnum, f.server.1));
            }
        }
        summary.push(format!("{verdict:<12} {name:<55} an0404: {fired:?}"));
    }
    eprintln!("\n== AN0404 per capture (MANIFEST verdict, flows that fired) ==");
    for s in &summary {
        eprintln!("{s}");
    }
    eprintln!("\n== recognition vs oracle ==");
    for (o, (agree, disagree)) in &agreement {
        eprintln!("{o:<8} agree {agree:>4} disagree {disagree:>4}");
    }
    eprintln!("flows with payload: {flows_total}, recognised: {recognised_total}");
    for (o, (agree, disagree)) in &agreement {
        let total = agree + disagree;
        assert!(
            *agree * 10 >= total * 8,
            "{o}: only {agree} of {total} oracle flows recognised"
        );
    }
}
