//! The multi-core pipeline gives the same records whatever the number of workers.
//!
//! Replays the demo capture (with its host events) and every corpus capture through
//! pipelines of 1, 2 and 4 workers and compares the sets of flow/tls/alert JSON lines
//! (sorted; the `stats` event dropped). Captures with host telemetry (the demo, the
//! Log4Shell incident with its Sysmon for Linux and AUOMS logs) are also compared with a
//! plain [`Engine`] fed the same merged stream: the host-joined alerts, with their joined
//! process, must be identical. The corpus parts skip with a message when
//! `../shared/corpus` is absent.

mod common;

use entrospect::capture::CaptureFile;
use entrospect::host::HostEvent;
use entrospect::host::adapters::{OpenOptions, open_host_file_with};
use entrospect::pipeline::{Backpressure, Pipeline, PipelineConfig, PipelineStats, UdpRouting};
use entrospect::{Config, Engine, Event};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn lines(events: &[Event]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, Event::Stats(_)))
        .map(|e| serde_json::to_string(e).expect("event serializes"))
        .collect();
    v.sort();
    v
}

/// Replay `path` (and host events merged by time) through `workers` workers.
fn run(path: &Path, host: &[HostEvent], workers: usize) -> (Vec<String>, u64) {
    let (events, stats) = run_with(path, host, workers, Config::default());
    (lines(&events), stats.dispatch.packets)
}

/// As [`run`], with the given UDP routing.
fn run_routed(
    path: &Path,
    host: &[HostEvent],
    workers: usize,
    udp_routing: UdpRouting,
) -> (Vec<String>, u64) {
    let (events, stats) = run_full(path, host, workers, Config::default(), udp_routing);
    (lines(&events), stats.dispatch.packets)
}

/// As [`run`], with `cfg`; returns the events and the pipeline's counters.
fn run_with(
    path: &Path,
    host: &[HostEvent],
    workers: usize,
    cfg: Config,
) -> (Vec<Event>, PipelineStats) {
    run_full(
        path,
        host,
        workers,
        cfg,
        PipelineConfig::default().udp_routing,
    )
}

/// As [`run_with`], with the given UDP routing.
fn run_full(
    path: &Path,
    host: &[HostEvent],
    workers: usize,
    cfg: Config,
    udp_routing: UdpRouting,
) -> (Vec<Event>, PipelineStats) {
    let file = Arc::new(CaptureFile::open(path).expect("capture opens"));
    run_shared(&file, host, workers, cfg, udp_routing, true)
}

/// Replay `file` (and host events merged by time) through `workers` workers, as offsets
/// into the shared file (`shared`) or copied as live packets.
fn run_shared(
    file: &Arc<CaptureFile>,
    host: &[HostEvent],
    workers: usize,
    cfg: Config,
    udp_routing: UdpRouting,
    shared: bool,
) -> (Vec<Event>, PipelineStats) {
    let pcfg = PipelineConfig {
        workers,
        udp_routing,
        // Small batches and queues exercise the batch boundaries and back-pressure.
        batch_packets: 7,
        queue_batches: 2,
        backpressure: Backpressure::Block,
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(cfg, pcfg, Vec::<Event>::new()).expect("pipeline");
    let mut host = host.iter().peekable();
    for item in file.packets() {
        let Ok(pkt) = item else { break };
        while let Some(ev) = host.next_if(|h| h.timestamp <= pkt.ts) {
            p.process_host_event(ev.clone());
        }
        if shared {
            p.push_shared(file, &pkt);
        } else {
            p.push(&pkt);
        }
    }
    for ev in host {
        p.process_host_event(ev.clone());
    }
    let (events, stats) = p.finish().expect("no worker panicked");
    assert!(
        stats.dispatch.drops.is_empty(),
        "{:?}",
        stats.dispatch.drops
    );
    if shared {
        assert_eq!(stats.dispatch.copied, 0, "file packets travel as offsets");
    }
    assert_eq!(stats.capture().packets, stats.dispatch.packets);
    (events, stats)
}

/// A plain engine fed the same merged stream (host events up to a packet's time first).
fn engine_run(path: &Path, host: &[HostEvent], cfg: Config) -> (Vec<Event>, Engine) {
    assert!(path.is_file(), "{} is missing", path.display());
    let mut engine = Engine::new(cfg).expect("config is valid");
    let (events, _) = common::feed_merged(&mut engine, Some(path), host);
    (events, engine)
}

/// The alert lines that carry a joined process.
fn joined_alerts(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.contains("\"event_type\":\"alert\"") && l.contains("\"process\":{"))
        .collect()
}

/// Engine and 1, 2, 4 workers give the same flow/tls/alert records; returns them.
fn pipeline_matches_engine(path: &Path, host: &[HostEvent], cfg: &Config) -> Vec<String> {
    let (engine, _) = engine_run(path, host, cfg.clone());
    let engine = lines(&engine);
    for workers in [1, 2, 4] {
        let (events, stats) = run_with(path, host, workers, cfg.clone());
        let piped = lines(&events);
        if piped != engine {
            let only_e: Vec<&String> = engine.iter().filter(|l| !piped.contains(l)).collect();
            let only_p: Vec<&String> = piped.iter().filter(|l| !engine.contains(l)).collect();
            panic!(
                "{}: {workers} workers differ from the engine:\n engine only {only_e:#?}\n \
                 pipeline only {only_p:#?}",
                path.display()
            );
        }
        assert_eq!(
            stats.correlation.host.events,
            host.len() as u64,
            "every host event reaches the one correlation stage once"
        );
    }
    engine
}

fn demo() -> (PathBuf, Vec<HostEvent>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let host: Vec<HostEvent> = std::fs::read_to_string(dir.join("demo.hostevents.jsonl"))
        .expect("demo host events")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("host event parses"))
        .collect();
    (dir.join("demo.pcapng"), host)
}

fn same_for_1_2_4_workers(path: &Path, host: &[HostEvent]) -> usize {
    let (one, packets) = run(path, host, 1);
    for n in [2, 4] {
        let (many, _) = run(path, host, n);
        assert_eq!(
            one,
            many,
            "{}: {n} workers differ from 1 ({packets} packets)",
            path.display()
        );
    }
    one.len()
}

#[test]
fn demo_capture_gives_the_same_records_with_1_2_and_4_workers() {
    let (path, host) = demo();
    let records = same_for_1_2_4_workers(&path, &host);
    assert!(records >= 5, "the demo has flows: {records}");
}

#[test]
fn demo_with_host_events_gives_the_engines_host_joined_alerts_with_1_2_and_4_workers() {
    let (path, host) = demo();
    assert!(!host.is_empty());
    let records = pipeline_matches_engine(&path, &host, &Config::default());
    let joined = joined_alerts(&records);
    assert!(
        !joined.is_empty(),
        "the demo's host events join at least one alert to its process: {records:#?}"
    );
}

/// The Log4Shell incident's files (`../shared/corpus/host/linux`), as `host_e2e.rs` reads
/// them.
const LOG4SHELL_PCAP: &str = "pcap_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.pcap";
const LOG4SHELL_HOST: [&str; 2] = [
    "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
    "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
];

#[test]
fn log4shell_with_sysmon_gives_the_engines_host_joined_alerts_with_1_2_and_4_workers() {
    let Some(dir) = common::corpus_dir("host/linux") else {
        return;
    };
    let pcap = dir.join(LOG4SHELL_PCAP);
    if !pcap.is_file() {
        eprintln!("SKIP: {} is absent", pcap.display());
        return;
    }
    // As in host_e2e.rs: the asymmetry test opened to any volume (the knob's documented
    // meaning) makes AN0401 fire on the reverse shell, joined to bash pid 17806.
    let mut cfg = Config::default();
    cfg.an0401.asymmetry_min_bytes = 0;
    let mut host = Vec::new();
    for name in LOG4SHELL_HOST {
        let opts = OpenOptions {
            crypto_libs: cfg.crypto_libs.clone(),
            ..OpenOptions::default()
        };
        let path = dir.join(name);
        let adapter =
            open_host_file_with(&path, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        host.extend(adapter.filter_map(Result::ok));
    }
    host.sort_by_key(|e| e.timestamp);
    assert!(host.len() > 100, "{} host events", host.len());
    let records = pipeline_matches_engine(&pcap, &host, &cfg);
    let joined = joined_alerts(&records);
    eprintln!(
        "log4shell: {} records, {} host-joined alerts, equal for engine and 1/2/4 workers",
        records.len(),
        joined.len()
    );
    assert!(
        joined.iter().any(|l| l.contains("\"pid\":17806")),
        "the reverse shell's alert carries bash 17806: {joined:#?}"
    );
}

#[test]
fn host_state_is_held_once_by_the_correlation_stage_whatever_the_workers() {
    let (path, host) = demo();
    let (_, engine) = engine_run(&path, &host, Config::default());
    let single = engine.stats();
    for workers in [1, 4] {
        let (_, stats) = run_with(&path, &host, workers, Config::default());
        assert_eq!(stats.dispatch.host_events, host.len() as u64);
        assert_eq!(stats.dispatch.host_events_dropped, 0);
        // The stage's index is the engine's, counted once.
        assert_eq!(stats.correlation.host, single.host, "{workers} workers");
        assert_eq!(stats.correlation.alerts, single.detect.alerts);
        assert_eq!(stats.correlation.correlation, engine.correlation_stats());
        // The workers hold no host state and raise no alerts of their own.
        for w in &stats.workers {
            assert_eq!(w.host.events, 0);
            assert_eq!(w.host.index.records, 0);
            assert!(w.detect.alerts.is_empty());
        }
        // The merged view reports what one engine would.
        let merged = stats.merged_json();
        assert_eq!(merged["host"]["events"], host.len() as u64);
        assert_eq!(
            merged["host"],
            serde_json::to_value(&single.host).expect("serializes")
        );
        assert_eq!(
            merged["detect"]["alerts"],
            serde_json::to_value(&single.detect.alerts).expect("serializes")
        );
    }
}

#[test]
fn one_worker_pipeline_matches_the_single_engine_on_the_demo_without_host_events() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo.pcapng");
    let (engine, _) = common::replay(&path, Config::default());
    let (pipe, _) = run(&path, &[], 1);
    assert_eq!(lines(&engine), pipe);
}

/// The other UDP routing, by address pair, stays deterministic too (1 and 2 workers).
#[test]
fn address_pair_udp_routing_gives_the_same_records_with_1_and_2_workers_on_the_corpus() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let (mut files, mut differ) = (0, Vec::new());
    for path in common::corpus_captures(&dir) {
        if CaptureFile::open(&path).is_err() {
            continue;
        }
        files += 1;
        let (one, _) = run_routed(&path, &[], 1, UdpRouting::AddressPair);
        let (two, _) = run_routed(&path, &[], 2, UdpRouting::AddressPair);
        if one != two {
            differ.push(path.display().to_string());
        }
    }
    eprintln!("address-pair UDP routing: {files} captures, records differ in {differ:?}");
    assert!(files > 50, "{files} corpus captures opened");
    assert!(
        differ.is_empty(),
        "records differ for 1/2 workers: {differ:?}"
    );
}

/// Frames of a generated capture with fragmented datagrams, built with etherparse.
mod frag_fixture {
    use etherparse::{
        EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader,
        Ipv6Header, PacketBuilder,
    };

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    pub const CLIENT4: [u8; 4] = [10, 9, 0, 1];
    pub const SERVER4: [u8; 4] = [10, 9, 0, 2];
    pub const CLIENT6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    pub const SERVER6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn eth(ether_type: EtherType, body: &[u8]) -> Vec<u8> {
        let mut f = Ethernet2Header {
            source: MAC_A,
            destination: MAC_B,
            ether_type,
        }
        .to_bytes()
        .to_vec();
        f.extend_from_slice(body);
        f
    }

    /// A whole IPv4/UDP frame.
    pub fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut f, payload)
            .expect("builds");
        f
    }

    /// The IP payload (transport header and data) of a UDP or TCP datagram.
    pub fn transport4(
        src: [u8; 4],
        dst: [u8; 4],
        (sport, dport): (u16, u16),
        tcp: bool,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::new();
        let ip = PacketBuilder::ipv4(src, dst, 64);
        if tcp {
            ip.tcp(sport, dport, 1000, 65535)
                .ack(1)
                .psh()
                .write(&mut f, payload)
                .expect("builds");
        } else {
            ip.udp(sport, dport).write(&mut f, payload).expect("builds");
        }
        f.split_off(Ipv4Header::MIN_LEN)
    }

    /// `body` cut into IPv4 fragments of `chunk` bytes (a multiple of 8), in order.
    pub fn fragments4(
        src: [u8; 4],
        dst: [u8; 4],
        proto: IpNumber,
        id: u16,
        body: &[u8],
        chunk: usize,
    ) -> Vec<Vec<u8>> {
        let n = body.len().div_ceil(chunk);
        body.chunks(chunk)
            .enumerate()
            .map(|(i, part)| {
                let mut h = Ipv4Header::new(part.len() as u16, 64, proto, src, dst).expect("fits");
                h.identification = id;
                h.dont_fragment = false;
                h.more_fragments = i + 1 < n;
                h.fragment_offset = IpFragOffset::try_new((i * chunk / 8) as u16).expect("fits");
                let mut ip = Vec::new();
                h.write(&mut ip).expect("writes");
                ip.extend_from_slice(part);
                eth(EtherType::IPV4, &ip)
            })
            .collect()
    }

    /// An IPv6 atomic fragment (RFC 6946: a fragment header with offset 0 and M clear)
    /// carrying `body` (UDP header and data). (Only the atomic case: etherparse 0.18
    /// serializes the M flag where RFC 8200 puts offset bits, fixed in 0.21.)
    pub fn atomic6(src: [u8; 16], dst: [u8; 16], id: u32, body: &[u8]) -> Vec<u8> {
        let frag = Ipv6FragmentHeader::new(IpNumber::UDP, IpFragOffset::ZERO, false, id);
        let header = Ipv6Header {
            payload_length: (8 + body.len()) as u16,
            next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
            hop_limit: 64,
            source: src,
            destination: dst,
            ..Default::default()
        };
        let mut ip = header.to_bytes().to_vec();
        ip.extend_from_slice(&frag.to_bytes());
        ip.extend_from_slice(body);
        eth(EtherType::IPV6, &ip)
    }

    /// The UDP header and data of an IPv6 datagram.
    pub fn transport6(
        src: [u8; 16],
        dst: [u8; 16],
        (sport, dport): (u16, u16),
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ipv6(src, dst, 64)
            .udp(sport, dport)
            .write(&mut f, payload)
            .expect("builds");
        f.split_off(Ipv6Header::LEN)
    }

    /// A whole IPv6/UDP frame.
    pub fn udp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(src, dst, 64)
            .udp(sport, dport)
            .write(&mut f, payload)
            .expect("builds");
        f
    }
}

/// A capture of many UDP and TCP flows between one IPv4 host pair, each with a datagram or
/// segment fragmented out of order (the first fragment last, in the middle or first) and
/// plain packets of the same flows around it; and as many IPv6 UDP flows ending with an
/// atomic fragment.
/// Returns the capture and the flows' expected `(pkts_toserver, pkts_toclient)`.
fn fragment_capture() -> (Arc<CaptureFile>, usize) {
    use entrospect::capture::LinkType;
    use entrospect::capture::writer::PcapngWriter;
    use entrospect::time::Timestamp;
    use etherparse::IpNumber;
    use frag_fixture::*;
    let mut w = PcapngWriter::new(Vec::new()).expect("writer");
    let eth = w
        .add_interface(LinkType::ETHERNET, 65535)
        .expect("interface");
    let mut t = 1_700_000_000_000_000_000u64;
    let mut put = |f: &[u8]| {
        t += 1_000_000;
        w.write_packet(eth, Timestamp(t), f).expect("writes");
    };
    let answer: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut flows = 0;
    for k in 0..24u16 {
        // The orders: first fragment last, in the middle, first.
        let order: &[usize] = match k % 3 {
            0 => &[2, 1, 0],
            1 => &[1, 0, 2],
            _ => &[0, 2, 1],
        };
        // IPv4 UDP: query, fragmented answer, second query.
        let cport = 30_000 + k;
        put(&udp4(CLIENT4, cport, SERVER4, 53, b"query"));
        let body = transport4(SERVER4, CLIENT4, (53, cport), false, &answer);
        let frags = fragments4(SERVER4, CLIENT4, IpNumber::UDP, 100 + k, &body, 800);
        assert_eq!(frags.len(), 3);
        for &i in order {
            put(&frags[i]);
        }
        put(&udp4(CLIENT4, cport, SERVER4, 53, b"again"));
        // IPv4 TCP: a plain segment, a fragmented one, a plain one.
        let tport = 40_000 + k;
        for (i, data) in [&b"hello"[..], &answer[..], &b"bye"[..]]
            .into_iter()
            .enumerate()
        {
            let seg = transport4(CLIENT4, SERVER4, (tport, 443), true, data);
            if i == 1 {
                let frags = fragments4(CLIENT4, SERVER4, IpNumber::TCP, 500 + k, &seg, 800);
                for &j in order {
                    put(&frags[j]);
                }
            } else {
                put(&fragments4(CLIENT4, SERVER4, IpNumber::TCP, 900 + k, &seg, 4000)[0]);
            }
        }
        // IPv6 UDP: query, answer, then an atomic fragment of the same flow.
        let c6 = 50_000 + k;
        put(&udp6(CLIENT6, c6, SERVER6, 53, b"query"));
        put(&udp6(SERVER6, 53, CLIENT6, c6, &answer));
        let atomic = transport6(CLIENT6, SERVER6, (c6, 53), b"atomic");
        put(&atomic6(CLIENT6, SERVER6, 9000 + u32::from(k), &atomic));
        flows += 3;
    }
    let bytes = w.into_inner().expect("finishes");
    (
        Arc::new(CaptureFile::from_bytes(bytes).expect("reads")),
        flows,
    )
}

#[test]
fn out_of_order_fragments_meet_their_flow_with_1_2_and_4_workers() {
    let (file, flows) = fragment_capture();
    let engine = {
        let mut e = Engine::new(Config::default()).expect("engine");
        for pkt in file.packets().map_while(Result::ok) {
            e.process(&pkt);
        }
        e.finish();
        e.drain_events().collect::<Vec<Event>>()
    };
    let engine = lines(&engine);
    let records: Vec<&String> = engine
        .iter()
        .filter(|l| l.contains("\"event_type\":\"flow\""))
        .collect();
    assert_eq!(records.len(), flows, "{records:#?}");
    // Each flow saw two packets from its client and one from its server (IPv4 UDP, IPv6
    // UDP with its atomic fragment) or three from its client (TCP): a reassembled datagram
    // counts once.
    for r in &records {
        let v: serde_json::Value = serde_json::from_str(r).expect("json");
        let (to_s, to_c) = (
            v["flow"]["pkts_toserver"].as_u64(),
            v["flow"]["pkts_toclient"].as_u64(),
        );
        assert!(
            matches!((to_s, to_c), (Some(2), Some(1)) | (Some(3), Some(0))),
            "{r}"
        );
    }
    for workers in [4, 2, 1] {
        for shared in [true, false] {
            let (events, stats) = run_shared(
                &file,
                &[],
                workers,
                Config::default(),
                UdpRouting::FiveTuple,
                shared,
            );
            assert_eq!(
                lines(&events),
                engine,
                "{workers} workers (shared {shared}): {:?}",
                stats.dispatch
            );
            let d = &stats.dispatch;
            // 24 rounds of 2 fragmented datagrams (UDP, TCP), 3 fragments each; per
            // datagram 2, 1 or 0 of them come before the first fragment (8 rounds each).
            assert_eq!(d.fragments, 24 * 6, "{d:?}");
            assert_eq!(d.fragments_held, 2 * (8 * 2 + 8), "{d:?}");
            assert_eq!(
                (d.fragments_by_address, d.fragment_datagrams_tracked),
                (0, 0),
                "{d:?}"
            );
            if workers > 1 {
                assert!(d.routed.iter().all(|&n| n > 0), "{d:?}");
            }
        }
    }
}

#[test]
fn fragments_whose_first_never_comes_are_still_counted_once() {
    use entrospect::capture::LinkType;
    use entrospect::capture::writer::PcapngWriter;
    use entrospect::time::Timestamp;
    use frag_fixture::*;
    // Later fragments only, then 40 s of plain traffic: the table gives up on them at the
    // reassembler's timeout (30 s) and sends them by address pair.
    let mut w = PcapngWriter::new(Vec::new()).expect("writer");
    let eth = w
        .add_interface(LinkType::ETHERNET, 65535)
        .expect("interface");
    let t0 = 1_700_000_000_000_000_000u64;
    let body = transport4(SERVER4, CLIENT4, (53, 3000), false, &[1u8; 2000]);
    let frags = fragments4(SERVER4, CLIENT4, etherparse::IpNumber::UDP, 77, &body, 800);
    for (i, f) in frags[1..].iter().enumerate() {
        w.write_packet(eth, Timestamp(t0 + i as u64), f)
            .expect("writes");
    }
    for s in 0..40u64 {
        let f = udp4(CLIENT4, 4000, SERVER4, 53, b"tick");
        w.write_packet(eth, Timestamp(t0 + (s + 1) * 1_000_000_000), &f)
            .expect("writes");
    }
    let file = Arc::new(CaptureFile::from_bytes(w.into_inner().expect("ends")).expect("reads"));
    for workers in [1, 2] {
        let (events, stats) = run_shared(
            &file,
            &[],
            workers,
            Config::default(),
            UdpRouting::FiveTuple,
            true,
        );
        let d = &stats.dispatch;
        assert_eq!(
            (d.fragments, d.fragments_held, d.fragments_by_address),
            (2, 2, 2),
            "{d:?}"
        );
        assert_eq!(stats.capture().packets, 42);
        assert_eq!(
            stats.merged_json()["defrag"]["timeouts"],
            1,
            "the worker's reassembler expired it at the same tick"
        );
        let flows = events
            .iter()
            .filter(|e| matches!(e, Event::Flow(_)))
            .count();
        assert_eq!(flows, 1);
    }
}

#[test]
fn corpus_captures_give_the_same_records_with_1_2_and_4_workers() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let mut total = 0;
    let mut files = 0;
    let mut engine_mismatch = Vec::new();
    // Fragments through the dispatcher's table, held ones, ones sent by address pair, and
    // the captures they came from.
    let (mut fragments, mut held, mut by_address, mut with_fragments) = (0, 0, 0, Vec::new());
    for path in common::corpus_captures(&dir) {
        if CaptureFile::open(&path).is_err() {
            continue;
        }
        total += same_for_1_2_4_workers(&path, &[]);
        files += 1;
        let (_, stats) = run_with(&path, &[], 2, Config::default());
        let d = &stats.dispatch;
        if d.fragments > 0 {
            fragments += d.fragments;
            held += d.fragments_held;
            by_address += d.fragments_by_address;
            if let Some(name) = path.file_name() {
                with_fragments.push(name.to_string_lossy().into_owned());
            }
        }
        let (engine, _) = common::replay(&path, Config::default());
        let (e, p) = (lines(&engine), run(&path, &[], 1).0);
        if e != p {
            let only_e: Vec<&String> = e.iter().filter(|l| !p.contains(l)).collect();
            let only_p: Vec<&String> = p.iter().filter(|l| !e.contains(l)).collect();
            eprintln!(
                "{}:\n engine only {only_e:#?}\n pipeline only {only_p:#?}",
                path.display()
            );
            engine_mismatch.push(path.display().to_string());
        }
    }
    eprintln!(
        "pipeline determinism: {files} captures, {total} records equal for 1/2/4 workers; \
         {fragments} TCP/UDP fragments routed by the fragment table ({held} held for their \
         first, {by_address} by address pair) in {with_fragments:?}"
    );
    assert!(files > 50, "{files} corpus captures opened");
    assert!(
        engine_mismatch.is_empty(),
        "1-worker pipeline differs from the single engine on {engine_mismatch:?}"
    );
}
