//! The multi-core pipeline gives the same records whatever the number of workers.
//!
//! Replays the demo capture (with its host events) and every corpus capture through
//! pipelines of 1, 2 and 4 workers and compares the sets of flow/tls/alert JSON lines
//! (sorted; the `stats` event dropped). The corpus part skips with a message when
//! `../shared/corpus` is absent.

mod common;

use entrospect::capture::CaptureFile;
use entrospect::host::HostEvent;
use entrospect::pipeline::{Backpressure, Pipeline, PipelineConfig, UdpRouting};
use entrospect::{Config, Event};
use std::path::Path;
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
    run_routed(path, host, workers, UdpRouting::AddressPair)
}

/// As [`run`], with the given UDP routing.
fn run_routed(
    path: &Path,
    host: &[HostEvent],
    workers: usize,
    udp_routing: UdpRouting,
) -> (Vec<String>, u64) {
    let pcfg = PipelineConfig {
        workers,
        udp_routing,
        // Small batches and queues exercise the batch boundaries and back-pressure.
        batch_packets: 7,
        queue_batches: 2,
        backpressure: Backpressure::Block,
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(Config::default(), pcfg, Vec::<Event>::new()).expect("pipeline");
    let file = Arc::new(CaptureFile::open(path).expect("capture opens"));
    let mut host = host.iter().peekable();
    for item in file.packets() {
        let Ok(pkt) = item else { break };
        while let Some(ev) = host.next_if(|h| h.timestamp <= pkt.ts) {
            p.process_host_event(ev.clone());
        }
        p.push_shared(&file, &pkt);
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
    assert_eq!(stats.dispatch.copied, 0, "file packets travel as offsets");
    assert_eq!(stats.capture().packets, stats.dispatch.packets);
    (lines(&events), stats.dispatch.packets)
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let host: Vec<HostEvent> = std::fs::read_to_string(dir.join("demo.hostevents.jsonl"))
        .expect("demo host events")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("host event parses"))
        .collect();
    let records = same_for_1_2_4_workers(&dir.join("demo.pcapng"), &host);
    assert!(records >= 5, "the demo has flows: {records}");
}

#[test]
fn one_worker_pipeline_matches_the_single_engine_on_the_demo() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo.pcapng");
    let (engine, _) = common::replay(&path, Config::default());
    let (pipe, _) = run(&path, &[], 1);
    assert_eq!(lines(&engine), pipe);
}

/// Five-tuple UDP routing splits a UDP flow only when some of its datagrams are IP
/// fragments (they go by address pair): every capture whose records differ between 1 and 2
/// workers must hold fragments, by its TShark oracle.
#[test]
fn five_tuple_udp_routing_changes_records_only_where_there_are_fragments() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let (mut files, mut differ) = (0, Vec::new());
    for path in common::corpus_captures(&dir) {
        if CaptureFile::open(&path).is_err() {
            continue;
        }
        files += 1;
        let (one, _) = run_routed(&path, &[], 1, UdpRouting::FiveTuple);
        let (two, _) = run_routed(&path, &[], 2, UdpRouting::FiveTuple);
        if one != two {
            let fragments: u64 = common::oracle(&path)
                .iter()
                .filter(|v| v["type"] == "file")
                .map(|v| {
                    let c = &v["counters"];
                    c["ipv4_fragment_frames"].as_u64().unwrap_or(0)
                        + c["ipv6_fragment_frames"].as_u64().unwrap_or(0)
                })
                .sum();
            differ.push((path.display().to_string(), fragments));
        }
    }
    eprintln!(
        "five-tuple UDP routing: {files} captures, records differ for 1/2 workers in {differ:?}"
    );
    assert!(files > 50, "{files} corpus captures opened");
    assert!(
        differ.iter().all(|(_, fragments)| *fragments > 0),
        "records differ without fragments: {differ:?}"
    );
}

#[test]
fn corpus_captures_give_the_same_records_with_1_2_and_4_workers() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let mut total = 0;
    let mut files = 0;
    let mut engine_mismatch = Vec::new();
    for path in common::corpus_captures(&dir) {
        if CaptureFile::open(&path).is_err() {
            continue;
        }
        total += same_for_1_2_4_workers(&path, &[]);
        files += 1;
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
    eprintln!("pipeline determinism: {files} captures, {total} records equal for 1/2/4 workers");
    assert!(files > 50, "{files} corpus captures opened");
    assert!(
        engine_mismatch.is_empty(),
        "1-worker pipeline differs from the single engine on {engine_mismatch:?}"
    );
}
