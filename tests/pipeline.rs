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
    run_full(path, host, workers, cfg, UdpRouting::AddressPair)
}

/// As [`run_with`], with the given UDP routing.
fn run_full(
    path: &Path,
    host: &[HostEvent],
    workers: usize,
    cfg: Config,
    udp_routing: UdpRouting,
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
