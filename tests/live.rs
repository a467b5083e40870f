//! Live capture on the loopback interface: a TCP client and server on 127.0.0.1, captured
//! with each compiled backend, give a flow record through the engine and the pipeline.
//!
//! Needs the `pcap` and/or `pnet` feature and `CAP_NET_RAW`: without the capability (not
//! root) each test prints why and returns.
#![cfg(any(feature = "pcap", feature = "pnet"))]

use entrospect::capture::Packet;
use entrospect::capture::live::LiveError;
use entrospect::pipeline::{Pipeline, PipelineConfig};
use entrospect::{Config, Event};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Whether this process runs as root (the capability the tests need, approximately).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn skip_if_unprivileged(what: &str) -> bool {
    if !is_root() {
        eprintln!("SKIP {what}: live capture needs root (CAP_NET_RAW)");
        return true;
    }
    false
}

fn skip_on_permission(what: &str, e: &LiveError) -> bool {
    let msg = e.to_string().to_lowercase();
    if msg.contains("permission") || msg.contains("not permitted") {
        eprintln!("SKIP {what}: {e}");
        return true;
    }
    false
}

/// A listener on 127.0.0.1 and a client thread that exchanges a request and a reply with
/// it, twice the read timeout after the capture started.
fn converse() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (mut s, _) = listener.accept().expect("accept");
        c.write_all(b"hello entrospect\n").expect("send");
        let mut buf = [0u8; 17];
        s.read_exact(&mut buf).expect("receive");
        s.write_all(b"bye\n").expect("reply");
        let mut r = [0u8; 4];
        c.read_exact(&mut r).expect("reply arrives");
        drop(c);
        drop(s);
    });
    (port, h)
}

/// Read packets for up to 3 s (or until `enough` packets of the port) through a pipeline
/// and return its flow records.
fn capture_flows(
    port: u16,
    mut next: impl FnMut(&mut dyn FnMut(&Packet<'_>)) -> Result<(), LiveError>,
) -> Vec<Event> {
    let mut p = Pipeline::new(
        Config::default(),
        PipelineConfig::default(),
        Vec::<Event>::new(),
    )
    .expect("pipeline");
    let started = Instant::now();
    // The conversation starts after 300 ms and lasts a few ms; 2 s covers a loaded machine.
    while started.elapsed() < Duration::from_secs(2) {
        next(&mut |pkt: &Packet<'_>| p.push(pkt)).expect("capture read");
    }
    let (events, stats) = p.finish().expect("finish");
    assert!(stats.dispatch.packets > 0, "no packet captured on lo");
    events
        .into_iter()
        .filter(|e| match e {
            Event::Flow(f) => f.header.dest_port == port || f.header.src_port == port,
            _ => false,
        })
        .collect()
}

fn check_flow(flows: &[Event], port: u16) {
    let Some(Event::Flow(f)) = flows.first() else {
        panic!("no flow record for port {port}: {flows:?}");
    };
    assert_eq!(f.header.src_ip.to_string(), "127.0.0.1");
    assert_eq!(f.header.dest_port, port, "the client is the source");
    assert!(
        f.flow.pkts_toserver >= 3 && f.flow.pkts_toclient >= 2,
        "{f:?}"
    );
    assert!(f.flow.payload_bytes_toserver >= 17, "{f:?}");
}

#[cfg(feature = "pcap")]
#[test]
fn loopback_tcp_conversation_is_captured_by_libpcap() {
    use entrospect::capture::live_pcap::{LivePcap, LivePcapConfig};
    if skip_if_unprivileged("libpcap") {
        return;
    }
    let (port, h) = converse();
    let mut cfg = LivePcapConfig::new("lo");
    cfg.filter = Some(format!("tcp port {port}"));
    cfg.timeout_ms = 50;
    let mut src = match LivePcap::open(&cfg) {
        Ok(s) => s,
        Err(e) if skip_on_permission("libpcap", &e) => return,
        Err(e) => panic!("{e}"),
    };
    let flows = capture_flows(port, |f| {
        if let Some(p) = src.next_packet_timeout()? {
            f(&p);
        }
        Ok(())
    });
    h.join().expect("conversation");
    check_flow(&flows, port);
    let st = src.live_stats();
    assert!(st.source.packets >= 5, "{st:?}");
    assert_eq!(st.dropped, 0, "{st:?}");
}

#[cfg(feature = "pcap")]
#[test]
fn bad_bpf_filter_is_a_filter_error() {
    use entrospect::capture::live_pcap::{LivePcap, LivePcapConfig};
    if skip_if_unprivileged("libpcap filter") {
        return;
    }
    let mut cfg = LivePcapConfig::new("lo");
    cfg.filter = Some("tcp port port port".into());
    match LivePcap::open(&cfg) {
        Err(LiveError::Filter { filter, .. }) => assert_eq!(filter, "tcp port port port"),
        Err(e) if skip_on_permission("libpcap filter", &e) => {}
        other => panic!("expected a filter error, got {other:?}"),
    }
}

#[cfg(feature = "pnet")]
#[test]
fn loopback_tcp_conversation_is_captured_by_pnet() {
    use entrospect::capture::live_pnet::{LivePnet, LivePnetConfig};
    if skip_if_unprivileged("pnet") {
        return;
    }
    let (port, h) = converse();
    let mut cfg = LivePnetConfig::new("lo");
    cfg.timeout_ms = 50;
    let mut src = match LivePnet::open(&cfg) {
        Ok(s) => s,
        Err(e) if skip_on_permission("pnet", &e) => return,
        Err(e) => panic!("{e}"),
    };
    let flows = capture_flows(port, |f| {
        if let Some(p) = src.next_packet_timeout()? {
            f(&p);
        }
        Ok(())
    });
    h.join().expect("conversation");
    check_flow(&flows, port);
}
