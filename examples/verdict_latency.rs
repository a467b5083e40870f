//! How soon inline verdicts come: replays captures through one engine with a verdict
//! handler and prints percentiles of the verdict latency, three ways:
//!
//! - **payload packets**: the verdict was decided on the flow's N-th payload-carrying
//!   packet (both directions counted);
//! - **packet time**: from the flow's first payload byte to the deciding packet, as the
//!   capture's timestamps say;
//! - **engine time**: wall clock from the start of the `Engine::process` call for the
//!   deciding packet to the handler call (the library itself never reads the clock: this
//!   example takes the time before the call and in the handler).
//!
//! Verdicts decided when a flow ends (timeout, end of input) are counted apart: they are not
//! inline.
//!
//! ```text
//! cargo run --release --example verdict_latency                 # the demo, with host events
//! cargo run --release --example verdict_latency -- DIR_OR_FILE... [--host EVENTS.jsonl]
//! ```

use entrospect::capture::CaptureFile;
use entrospect::detect::verdict::Verdict;
use entrospect::host::HostEvent;
use entrospect::{Config, Engine};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

thread_local! {
    /// When the current `process` call started.
    static CALL_START: Cell<Option<Instant>> = const { Cell::new(None) };
}

#[derive(Default)]
struct Samples {
    payload_packets: Vec<u64>,
    packet_time_us: Vec<u64>,
    engine_ns: Vec<u64>,
    at_end: u64,
}

#[derive(Default)]
struct All {
    allow: Samples,
    alert: Samples,
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn line(name: &str, unit: &str, v: &mut [u64], scale: f64) {
    println!(
        "  {name:<16} n={:<6} p50={:<10.1} p90={:<10.1} p99={:<10.1} max={:<10.1} {unit}",
        v.len(),
        pct(v, 0.5) as f64 / scale,
        pct(v, 0.9) as f64 / scale,
        pct(v, 0.99) as f64 / scale,
        pct(v, 1.0) as f64 / scale,
    );
}

fn captures(args: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(a)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            v.retain(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"));
            v.sort();
            out.extend(v);
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn host_events(path: &Path) -> Vec<HostEvent> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn main() {
    let mut args: Vec<PathBuf> = Vec::new();
    let mut host_path = None;
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        if a == "--host" {
            host_path = it.next().map(PathBuf::from);
        } else {
            args.push(PathBuf::from(a));
        }
    }
    if args.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
        args.push(dir.join("demo.pcapng"));
        host_path = Some(dir.join("demo.hostevents.jsonl"));
    }
    let host = host_path.as_deref().map(host_events).unwrap_or_default();
    let all = Arc::new(Mutex::new(All::default()));
    let (mut files, mut packets) = (0u64, 0u64);
    for path in captures(&args) {
        let Ok(file) = CaptureFile::open(&path) else {
            eprintln!("skipping {}: does not open", path.display());
            continue;
        };
        let mut engine = match Engine::new(Config::default()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("engine: {e}");
                std::process::exit(1);
            }
        };
        let sink = Arc::clone(&all);
        engine.set_verdict_handler(move |v| {
            let now = Instant::now();
            let mut all = sink.lock().unwrap_or_else(|p| p.into_inner());
            let s = match v.verdict {
                Verdict::Allow => &mut all.allow,
                Verdict::Alert | Verdict::BlockSuggested => &mut all.alert,
            };
            if v.at_flow_end {
                s.at_end += 1;
                return;
            }
            s.payload_packets.push(v.payload_packets);
            s.packet_time_us.push(v.latency_ns / 1000);
            if let Some(start) = CALL_START.get() {
                s.engine_ns
                    .push(u64::try_from((now - start).as_nanos()).unwrap_or(u64::MAX));
            }
        });
        let mut h = host.iter().peekable();
        for item in file.packets() {
            let Ok(pkt) = item else { break };
            while let Some(ev) = h.next_if(|ev| ev.timestamp <= pkt.ts) {
                engine.process_host_event(ev.clone());
            }
            CALL_START.set(Some(Instant::now()));
            engine.process(&pkt);
            CALL_START.set(None);
            packets += 1;
            engine.drain_events().for_each(drop);
        }
        engine.finish();
        engine.drain_events().for_each(drop);
        files += 1;
    }
    let mut guard = all.lock().unwrap_or_else(|p| p.into_inner());
    let all = &mut *guard;
    println!("{files} capture(s), {packets} packets");
    for (name, s) in [("allow", &mut all.allow), ("alert/block", &mut all.alert)] {
        println!(
            "{name}: {} inline, {} at flow end",
            s.payload_packets.len(),
            s.at_end
        );
        line("payload packets", "", &mut s.payload_packets, 1.0);
        line("packet time", "ms", &mut s.packet_time_us, 1000.0);
        line("engine time", "us", &mut s.engine_ns, 1000.0);
    }
}
