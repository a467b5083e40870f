//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use entrospect::capture::CaptureFile;
use entrospect::{Config, Engine, Event};
use std::path::{Path, PathBuf};

/// `../shared/corpus` beside the repository, or `None` (with a printed note) when absent.
pub fn corpus_dir(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} is absent; corpus tests need ../shared beside the repository",
            dir.display()
        );
        None
    }
}

/// The capture files of the pcap corpus (not the oracle/expected files), sorted.
pub fn corpus_captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        (n.ends_with(".pcap") || n.ends_with(".pcapng")) && p.is_file()
    });
    v.sort();
    v
}

/// Replay one capture with `cfg`; returns the events and the capture error text, if any.
pub fn replay(path: &Path, cfg: Config) -> (Vec<Event>, Option<String>) {
    let mut engine = Engine::new(cfg).expect("valid config");
    let mut events = Vec::new();
    let mut err = None;
    match CaptureFile::open(path) {
        Ok(file) => {
            for item in file.packets() {
                match item {
                    Ok(p) => engine.process(&p),
                    Err(e) => {
                        err = Some(e.to_string());
                        break;
                    }
                }
                events.extend(engine.drain_events());
            }
        }
        Err(e) => err = Some(e.to_string()),
    }
    engine.finish();
    events.extend(engine.drain_events());
    (events, err)
}

/// Feed `engine` the packets of `pcap` (none when `None`) with `host` events merged by time
/// (host events up to a packet's time first, the rest after the last packet), finish it,
/// and return every event in order, with the capture's error (where it stopped reading).
pub fn feed_merged(
    engine: &mut Engine,
    pcap: Option<&Path>,
    host: &[entrospect::host::HostEvent],
) -> (Vec<Event>, Option<String>) {
    let mut events = Vec::new();
    let mut err = None;
    let mut host = host.iter().peekable();
    match pcap.map(CaptureFile::open) {
        Some(Ok(file)) => {
            for item in file.packets() {
                let pkt = match item {
                    Ok(pkt) => pkt,
                    Err(e) => {
                        err = Some(e.to_string());
                        break;
                    }
                };
                while let Some(h) = host.next_if(|h| h.timestamp <= pkt.ts) {
                    engine.process_host_event(h.clone());
                }
                engine.process(&pkt);
                events.extend(engine.drain_events());
            }
        }
        Some(Err(e)) => err = Some(e.to_string()),
        None => {}
    }
    for h in host {
        engine.process_host_event(h.clone());
    }
    engine.finish();
    events.extend(engine.drain_events());
    (events, err)
}

/// The `NAME.tshark.jsonl` oracle lines of a capture.
pub fn oracle(path: &Path) -> Vec<serde_json::Value> {
    let mut p = path.as_os_str().to_owned();
    p.push(".tshark.jsonl");
    std::fs::read_to_string(PathBuf::from(p))
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}
