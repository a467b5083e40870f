//! Inline flow verdicts: what the verdict handler receives, checked against the EVE output
//! of the same replay.
//!
//! Every flow gets at most one `allow` and at most one `alert`/`block_suggested` (an alert
//! may follow an allow); a flow gets an alert verdict exactly when an analytic fired on it
//! at or above `[verdict] alert_severity`, and an allow otherwise; the verdicts do not
//! change the events. The corpus part skips with a message when `../shared/corpus` is
//! absent.

mod common;

use entrospect::capture::CaptureFile;
use entrospect::detect::Severity;
use entrospect::detect::verdict::{FlowVerdict, Verdict};
use entrospect::host::HostEvent;
use entrospect::pipeline::{Pipeline, PipelineConfig};
use entrospect::{Config, Engine, Event};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn demo() -> (PathBuf, Vec<HostEvent>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let host = std::fs::read_to_string(dir.join("demo.hostevents.jsonl"))
        .expect("demo host events")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("host event parses"))
        .collect();
    (dir.join("demo.pcapng"), host)
}

/// Replay `path` with `host` merged by time; with a verdict handler when `verdicts`.
fn replay(
    path: &Path,
    host: &[HostEvent],
    cfg: Config,
    verdicts: bool,
) -> (Vec<Event>, Vec<FlowVerdict>) {
    let mut engine = Engine::new(cfg).expect("valid config");
    let seen = Arc::new(Mutex::new(Vec::new()));
    if verdicts {
        let s = Arc::clone(&seen);
        engine.set_verdict_handler(move |v| s.lock().expect("not poisoned").push(v.clone()));
    }
    let (events, _) = common::feed_merged(&mut engine, Some(path), host);
    let v = seen.lock().expect("not poisoned").clone();
    (events, v)
}

/// Per flow: the analytics of its `alert` events at or above `min`.
fn alerting_flows(events: &[Event], min: Severity) -> BTreeMap<u64, BTreeSet<&'static str>> {
    let mut m: BTreeMap<u64, BTreeSet<&'static str>> = BTreeMap::new();
    for e in events {
        if let Event::Alert(a) = e
            && a.alert.severity_name >= min
        {
            m.entry(a.header.flow_id)
                .or_default()
                .insert(a.alert.analytic);
        }
    }
    m
}

/// Check the verdict contract against the events of the same replay; returns the number of
/// flows.
fn check_contract(name: &str, events: &[Event], verdicts: &[FlowVerdict]) -> usize {
    let flows: BTreeSet<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Flow(f) => Some(f.header.flow_id),
            _ => None,
        })
        .collect();
    let alerting = alerting_flows(events, Config::default().verdict.alert_severity);
    let mut per_flow: BTreeMap<u64, Vec<&FlowVerdict>> = BTreeMap::new();
    for v in verdicts {
        per_flow.entry(v.flow_id).or_default().push(v);
    }
    for (id, vs) in &per_flow {
        assert!(flows.contains(id), "{name}: verdict for unknown flow {id}");
        let kinds: Vec<Verdict> = vs.iter().map(|v| v.verdict).collect();
        let allows = kinds.iter().filter(|k| **k == Verdict::Allow).count();
        let alerts = kinds.len() - allows;
        assert!(
            allows <= 1 && alerts <= 1,
            "{name}: flow {id} got {kinds:?}"
        );
        if alerts == 1 && allows == 1 {
            assert_eq!(
                kinds[0],
                Verdict::Allow,
                "{name}: flow {id}: allow comes first"
            );
        }
        for v in vs.iter().filter(|v| v.verdict != Verdict::Allow) {
            let fired = alerting.get(id).cloned().unwrap_or_default();
            assert!(
                !v.analytics.is_empty() && v.analytics.iter().all(|a| fired.contains(a)),
                "{name}: flow {id} verdict names {:?}, its alerts {fired:?}",
                v.analytics
            );
            assert!(v.severity.is_some(), "{name}: alert verdict has a severity");
        }
        for v in vs {
            assert!(v.payload_packets <= v.packets, "{name}: {v:?}");
            if let Some(first) = v.first_payload {
                assert_eq!(v.latency_ns, v.decided_at.saturating_sub(first));
            }
        }
    }
    for id in &flows {
        let vs = per_flow.get(id).map(Vec::as_slice).unwrap_or_default();
        let alerted = vs.iter().any(|v| v.verdict != Verdict::Allow);
        assert_eq!(
            alerted,
            alerting.contains_key(id),
            "{name}: flow {id}: alert verdict iff an alert at or above the threshold: {vs:?}"
        );
        assert!(!vs.is_empty(), "{name}: flow {id} got no verdict");
    }
    flows.len()
}

#[test]
fn demo_flows_each_get_one_verdict_and_the_c2_flows_are_flagged_before_they_end() {
    let (path, host) = demo();
    let (events, verdicts) = replay(&path, &host, Config::default(), true);
    let flows = check_contract("demo", &events, &verdicts);
    for v in &verdicts {
        eprintln!(
            "flow {} {}:{} -> {}:{} {} {:?} payload packet {} of {} packets, {} us packet time, end {}",
            v.flow_id,
            v.client_ip,
            v.client_port,
            v.server_ip,
            v.server_port,
            v.verdict.as_str(),
            v.analytics,
            v.payload_packets,
            v.packets,
            v.latency_ns / 1000,
            v.at_flow_end
        );
    }
    assert!(flows >= 5, "{flows} flows");
    // Host evidence joined to a high or critical alert suggests a block; the demo's python
    // beacon and its abnormal-TLS client are both joined to their processes.
    let blocks = verdicts
        .iter()
        .filter(|v| v.verdict == Verdict::BlockSuggested)
        .count();
    assert!(blocks >= 2, "{blocks} block suggestions");
    assert!(
        verdicts
            .iter()
            .filter(|v| v.verdict == Verdict::BlockSuggested)
            .all(|v| v.process_joined)
    );
    // Inline: every alerting verdict comes while its flow is still open.
    for v in verdicts.iter().filter(|v| v.verdict != Verdict::Allow) {
        assert!(!v.at_flow_end, "decided only at the flow's end: {v:?}");
        assert!(v.payload_packets >= 1, "{v:?}");
    }
}

#[test]
fn without_host_events_wire_only_alerts_are_not_block_suggestions() {
    let (path, _) = demo();
    let (events, verdicts) = replay(&path, &[], Config::default(), true);
    check_contract("demo without host events", &events, &verdicts);
    assert!(verdicts.iter().any(|v| v.verdict == Verdict::Alert));
    assert!(
        !verdicts
            .iter()
            .any(|v| v.verdict == Verdict::BlockSuggested),
        "{verdicts:?}"
    );
}

#[test]
fn block_analytics_turns_a_wire_only_alert_into_a_block_suggestion() {
    let (path, _) = demo();
    let cfg = Config::from_toml("[verdict]\nblock_analytics = [\"AN0404\"]\n").expect("config");
    let (_, verdicts) = replay(&path, &[], cfg, true);
    assert!(
        verdicts
            .iter()
            .any(|v| v.verdict == Verdict::BlockSuggested && v.analytics.contains(&"AN0404")),
        "{verdicts:?}"
    );
}

#[test]
fn setting_a_verdict_handler_leaves_the_events_unchanged() {
    let (path, host) = demo();
    let text = |evs: &[Event]| -> Vec<String> {
        evs.iter()
            .map(|e| serde_json::to_string(e).expect("serializes"))
            .collect()
    };
    let (with, _) = replay(&path, &host, Config::default(), true);
    let (without, none) = replay(&path, &host, Config::default(), false);
    assert!(none.is_empty());
    assert_eq!(text(&with), text(&without));
}

fn sorted(mut v: Vec<FlowVerdict>) -> Vec<String> {
    v.sort_by_key(|v| (v.flow_id, v.verdict));
    v.iter().map(|v| format!("{v:?}")).collect()
}

#[test]
fn pipeline_workers_give_the_verdicts_of_one_engine() {
    let (path, host) = demo();
    let (_, engine) = replay(&path, &host, Config::default(), true);
    for workers in [1, 3] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let mut p = Pipeline::with_verdict_handler(
            Config::default(),
            PipelineConfig {
                workers,
                ..PipelineConfig::default()
            },
            Vec::<Event>::new(),
            move |v| s.lock().expect("not poisoned").push(v.clone()),
        )
        .expect("pipeline");
        let file = Arc::new(CaptureFile::open(&path).expect("demo opens"));
        let mut h = host.iter().peekable();
        for item in file.packets() {
            let pkt = item.expect("demo reads");
            while let Some(ev) = h.next_if(|ev| ev.timestamp <= pkt.ts) {
                p.process_host_event(ev.clone());
            }
            p.push_shared(&file, &pkt);
        }
        p.finish().expect("no worker panicked");
        let got = seen.lock().expect("not poisoned").clone();
        assert_eq!(sorted(got), sorted(engine.clone()), "{workers} workers");
    }
}

#[test]
fn corpus_flows_follow_the_verdict_contract() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let (mut files, mut flows, mut alerts, mut allows) = (0, 0, 0, 0);
    for path in common::corpus_captures(&dir) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (events, verdicts) = replay(&path, &[], Config::default(), true);
        flows += check_contract(&name, &events, &verdicts);
        alerts += verdicts
            .iter()
            .filter(|v| v.verdict != Verdict::Allow)
            .count();
        allows += verdicts
            .iter()
            .filter(|v| v.verdict == Verdict::Allow)
            .count();
        files += 1;
    }
    eprintln!("verdicts: {files} captures, {flows} flows, {allows} allow, {alerts} alert/block");
    assert!(
        files > 50 && flows > files,
        "{files} captures, {flows} flows"
    );
}
