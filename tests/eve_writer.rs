//! The EVE writer's flow records are byte for byte what serde_json makes of the event: on
//! every flow of the pcap corpus and the bundled demo, and on hand-made edge cases (IPv6,
//! strings that need escaping, absent optional sections).

mod common;

use entrospect::inspect::entropy::Randomness;
use entrospect::output::{
    EntropySection, EveWriter, Event, EventHeader, FlowEvent, FlowSection, ProtocolSection,
    TcpSection,
};
use entrospect::{Config, time::Timestamp};
use std::path::Path;

/// What the writer prints for `ev`, and what serde_json prints.
fn both(ev: &Event) -> (String, String) {
    let mut w = EveWriter::new(Vec::new());
    w.write_event(ev).expect("writing to a Vec cannot fail");
    let ours = String::from_utf8(w.finish().expect("no error")).expect("utf-8");
    let serde = serde_json::to_string(ev).expect("serializable") + "\n";
    (ours, serde)
}

#[test]
fn flow_records_of_real_captures_are_what_serde_json_writes() {
    let mut checked = 0usize;
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo.pcapng");
    let mut captures = vec![demo];
    if let Some(dir) = common::corpus_dir("pcap") {
        captures.extend(common::corpus_captures(&dir));
    }
    for path in &captures {
        let (events, _) = common::replay(path, Config::default());
        for ev in events.iter().filter(|e| matches!(e, Event::Flow(_))) {
            let (ours, serde) = both(ev);
            assert_eq!(ours, serde, "{}", path.display());
            checked += 1;
        }
    }
    eprintln!(
        "{checked} flow records of {} captures compared",
        captures.len()
    );
    assert!(checked > 0);
}

fn record(
    src: &str,
    dst: &str,
    app: Option<&'static str>,
    evidence: &str,
    gap_bytes: u64,
    tcp: bool,
    entropy: [Option<&[u8]>; 2],
) -> Event {
    let t = Timestamp::from_secs_nanos(1_795_000_000, 123_456_789);
    Event::Flow(FlowEvent {
        header: EventHeader {
            timestamp: t,
            flow_id: u64::MAX >> 12,
            src_ip: src.parse().expect("address"),
            src_port: 65_535,
            dest_ip: dst.parse().expect("address"),
            dest_port: 0,
            proto: "IPv6-ICMP",
            app_proto: app,
        },
        flow: FlowSection {
            pkts_toserver: 0,
            pkts_toclient: u64::MAX,
            bytes_toserver: 1,
            bytes_toclient: 10_000_000_000,
            start: Timestamp::from_secs_nanos(0, 0),
            end: t,
            age: 7,
            state: "closed",
            reason: "timeout",
            alerted: true,
            payload_bytes_toserver: 0,
            payload_bytes_toclient: 12,
            gap_bytes,
        },
        tcp: tcp.then(|| TcpSection::new([0x1b, 0x04], entrospect::flow::TcpState::SynRecv)),
        entropy: EntropySection {
            toserver: entropy[0].map(Randomness::of),
            toclient: entropy[1].map(Randomness::of),
        },
        protocol: Some(ProtocolSection {
            name: "dns",
            evidence: evidence.to_string(),
            encrypted: false,
        }),
    })
}

#[test]
fn edge_cases_are_written_as_serde_json_writes_them() {
    let random: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases = [
        record(
            "2001:db8::1",
            "::ffff:10.0.0.1",
            Some("tls"),
            "plain",
            0,
            true,
            [Some(b"x"), None],
        ),
        record(
            "10.0.0.1",
            "255.255.255.255",
            None,
            "quote \" back\\slash",
            5,
            false,
            [None, Some(&random)],
        ),
        record("0.0.0.0", "fe80::1", None, "", 0, true, [None, None]),
        record(
            "192.168.1.1",
            "::",
            Some("dns"),
            "ctl \u{1}\n\t\u{7f} ünïcode ✓",
            1,
            false,
            [Some(&random), Some(b"")],
        ),
    ];
    for ev in cases.iter() {
        let (ours, serde) = both(ev);
        assert_eq!(ours, serde);
    }
}
