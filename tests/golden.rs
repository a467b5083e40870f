//! Golden outputs: the JSON lines of a replay, per configuration and capture, compared
//! with `tests/golden/<config>/<capture>.jsonl` (nDPI's `tests/cfgs/<config>/result`
//! layout). `ENTROSPECT_BLESS=1 cargo test --test golden` rewrites them; review the diff.
//!
//! The `stats` event is left out: it names the entropy kernel, which depends on the CPU.

use entrospect::capture::CaptureFile;
use entrospect::host::adapters::jsonl::JsonlReader;
use entrospect::{Config, Engine, Event};
use std::io::BufReader;
use std::path::Path;

fn replay_lines(pcap: &Path, host_events: Option<&Path>, cfg: Config) -> String {
    let mut engine = Engine::new(cfg).expect("valid config");
    let mut host: Vec<_> = match host_events {
        Some(p) => JsonlReader::new(BufReader::new(std::fs::File::open(p).expect("host events")))
            .map(|r| r.expect("valid host event"))
            .collect(),
        None => Vec::new(),
    };
    host.sort_by_key(|e| e.timestamp);
    let mut host = host.into_iter().peekable();
    let file = CaptureFile::open(pcap).expect("capture");
    let mut out = String::new();
    let emit = |engine: &mut Engine, out: &mut String| {
        for ev in engine.drain_events() {
            if !matches!(ev, Event::Stats(_)) {
                out.push_str(&serde_json::to_string(&ev).expect("json"));
                out.push('\n');
            }
        }
    };
    for pkt in file.packets() {
        let pkt = pkt.expect("demo capture is intact");
        while let Some(ev) = host.next_if(|e| e.timestamp <= pkt.ts) {
            engine.process_host_event(ev);
        }
        engine.process(&pkt);
        emit(&mut engine, &mut out);
    }
    for ev in host {
        engine.process_host_event(ev);
    }
    engine.finish();
    emit(&mut engine, &mut out);
    out
}

fn check(config: &str, name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(config)
        .join(format!("{name}.jsonl"));
    if std::env::var_os("ENTROSPECT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, got).expect("write golden");
        eprintln!("blessed {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let first = want.lines().zip(got.lines()).position(|(a, b)| a != b);
        panic!(
            "{} differs from this build's output (first differing line: {:?}; {} vs {} lines). \
             If the change is intended, run ENTROSPECT_BLESS=1 cargo test --test golden and review the diff.",
            path.display(),
            first.map(|i| i + 1),
            want.lines().count(),
            got.lines().count()
        );
    }
}

#[test]
fn demo_capture_with_host_events_matches_golden_output() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let got = replay_lines(
        &data.join("demo.pcapng"),
        Some(&data.join("demo.hostevents.jsonl")),
        Config::default(),
    );
    check("default", "demo", &got);
}

#[test]
fn demo_capture_without_host_events_matches_golden_output() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let got = replay_lines(&data.join("demo.pcapng"), None, Config::default());
    check("no_host_events", "demo", &got);
}
