//! Replay pcap/pcapng files through the engine and print EVE-style JSON lines.
//!
//! ```text
//! cargo run --release --example replay -- [PCAP...] [--host-events FILE]... [--config FILE]
//!                                          [--output FILE|-] [--quiet]
//! ```
//!
//! With no PCAP it replays the bundled demo capture `examples/data/demo.pcapng` (and its
//! host events, `examples/data/demo.hostevents.jsonl`, when no `--host-events` is given).
//! JSON lines go to stdout (or `--output`); a progress bar (when stderr is a terminal) and a
//! human summary go to stderr. A damaged capture is reported with the byte offset where it
//! broke; everything before the damage is still processed and printed, and the exit status
//! is 1.

/// The binary's allocator: mimalloc. Each flow's verdict allocates and frees a little
/// (findings, records), and the pipeline frees on the stage thread what workers allocated,
/// where glibc's per-thread arenas are slow. The library itself sets no global allocator:
/// an embedding product keeps its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use entrospect::capture::CaptureFile;
use entrospect::host::adapters::{OpenOptions, open_host_file_with};
use entrospect::output::{EveWriter, Sink};
use entrospect::{Config, Engine, Event};
use std::collections::HashMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Host events held in memory for the merge, at most.
const MAX_HOST_EVENTS: usize = 10_000_000;

struct Args {
    pcaps: Vec<PathBuf>,
    host_events: Vec<PathBuf>,
    config: Option<PathBuf>,
    output: Option<PathBuf>,
    quiet: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: replay [PCAP...] [--host-events FILE]... [--config FILE] [--output FILE|-] [--quiet]\n\
         With no PCAP, replays the bundled demo capture and its host events. Host-event\n\
         files: normalized JSON lines, Sysmon EVTX/XML/JSON (or a zip of them), auditd,\n\
         eslogger, Elastic Endpoint, lsof, esxcli or ESXi syslog, detected by content."
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        pcaps: Vec::new(),
        host_events: Vec::new(),
        config: None,
        output: None,
        quiet: false,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--config") => a.config = Some(it.next().unwrap_or_else(|| usage()).into()),
            Some("--host-events") => a
                .host_events
                .push(it.next().unwrap_or_else(|| usage()).into()),
            Some("--output" | "-o") => a.output = Some(it.next().unwrap_or_else(|| usage()).into()),
            Some("--quiet" | "-q") => a.quiet = true,
            Some("--help" | "-h") => usage(),
            Some(s) if s.starts_with("--") => {
                eprintln!("replay: unknown option {s}");
                usage()
            }
            _ => a.pcaps.push(arg.into()),
        }
    }
    if a.pcaps.is_empty() {
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data");
        a.pcaps.push(data.join("demo.pcapng"));
        if a.host_events.is_empty() {
            a.host_events.push(data.join("demo.hostevents.jsonl"));
        }
    }
    a
}

/// Collects what the human summary needs while passing events to the JSON writer.
#[derive(Default)]
struct Summary {
    flows: u64,
    alerts: Vec<String>,
    talkers: HashMap<IpAddr, u64>,
}

impl Summary {
    fn see(&mut self, ev: &Event) {
        match ev {
            Event::Flow(f) => {
                self.flows += 1;
                *self.talkers.entry(f.header.src_ip).or_default() += f.flow.bytes_toserver;
                *self.talkers.entry(f.header.dest_ip).or_default() += f.flow.bytes_toclient;
            }
            Event::Alert(a) => self.alerts.push(format!(
                "{} {} {}:{} -> {}:{} score {:.2}: {}",
                a.alert.analytic,
                a.alert.severity_name.as_str(),
                a.header.src_ip,
                a.header.src_port,
                a.header.dest_ip,
                a.header.dest_port,
                a.alert.score,
                a.alert.reasons.first().map(String::as_str).unwrap_or("")
            )),
            _ => {}
        }
    }
}

fn main() -> ExitCode {
    let args = parse_args();
    let cfg = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("replay: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let out: Box<dyn Write> = match &args.output {
        // `-` is stdout, as for most tools (and not a file named `-`).
        Some(p) if p.as_os_str() == "-" => Box::new(BufWriter::new(std::io::stdout().lock())),
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => {
                eprintln!("replay: cannot create {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut writer = EveWriter::new(out);
    let mut summary = Summary::default();
    let mut engine = match Engine::new(cfg) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    let started = Instant::now();
    // Host events are read up front and merged with the packets by timestamp (host files
    // are rarely sorted; a capped in-memory sort keeps that simple).
    let mut host_events = Vec::new();
    for path in &args.host_events {
        let opts = OpenOptions {
            crypto_libs: engine.config().crypto_libs.clone(),
            ..OpenOptions::default()
        };
        match open_host_file_with(path, &opts) {
            Ok(adapter) => {
                let mut skipped = 0u64;
                for item in adapter {
                    match item {
                        Ok(ev) if host_events.len() < MAX_HOST_EVENTS => host_events.push(ev),
                        Ok(_) => skipped += 1,
                        Err(e) => {
                            skipped += 1;
                            if skipped <= 3 && !args.quiet {
                                eprintln!("replay: {}: {e}", path.display());
                            }
                        }
                    }
                }
                if skipped > 0 && !args.quiet {
                    eprintln!("replay: {}: {skipped} host records skipped", path.display());
                }
            }
            Err(e) => {
                eprintln!("replay: {}: {e}", path.display());
                failed = true;
            }
        }
    }
    host_events.sort_by_key(|e| e.timestamp);
    let mut host_events = host_events.into_iter().peekable();
    let show_progress = !args.quiet && std::io::stderr().is_terminal();

    for path in &args.pcaps {
        let file = match CaptureFile::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("replay: {}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        let bar = show_progress.then(|| {
            let b = indicatif::ProgressBar::new(file.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_message(path.display().to_string());
            b
        });
        let mut seen_bytes = 0u64;
        for (i, item) in file.packets().enumerate() {
            match item {
                Ok(pkt) => {
                    seen_bytes += pkt.data.len() as u64 + 16;
                    // Look before taking: `next_if` would move the (large) peeked event
                    // back and forth on every packet.
                    while host_events.peek().is_some_and(|e| e.timestamp <= pkt.ts) {
                        if let Some(ev) = host_events.next() {
                            engine.process_host_event(ev);
                        }
                    }
                    engine.process(&pkt);
                }
                Err(e) => {
                    eprintln!(
                        "replay: {}: {e}; the packets before it were processed",
                        path.display()
                    );
                    failed = true;
                    break;
                }
            }
            if i % 4096 == 0 {
                for ev in engine.drain_events() {
                    summary.see(&ev);
                    writer.event(&ev);
                }
                if let Some(b) = &bar {
                    b.set_position(seen_bytes);
                }
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    }
    for ev in host_events {
        engine.process_host_event(ev);
    }
    engine.finish_with(|ev| {
        summary.see(&ev);
        writer.event(&ev);
    });
    if let Err(e) = writer.finish() {
        eprintln!("replay: writing output: {e}");
        return ExitCode::from(2);
    }
    if !args.quiet {
        print_summary(&engine, &summary, started.elapsed().as_secs_f64());
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_summary(engine: &Engine, s: &Summary, secs: f64) {
    let st = engine.stats();
    let pps = st.capture.packets as f64 / secs.max(1e-9);
    let gbps = st.capture.bytes as f64 * 8.0 / secs.max(1e-9) / 1e9;
    eprintln!(
        "\nreplay: {} packets, {} bytes, {} flows in {:.3} s ({:.0} packets/s, {:.2} Gbit/s; entropy kernel {})",
        st.capture.packets, st.capture.bytes, s.flows, secs, pps, gbps, st.entropy_kernel
    );
    if !st.capture.decode_errors.is_empty() {
        let errs: Vec<String> = st
            .capture
            .decode_errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        eprintln!("skipped packets: {}", errs.join(", "));
    }
    let mut top: Vec<(&IpAddr, &u64)> = s.talkers.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top
        .iter()
        .take(5)
        .map(|(ip, b)| format!("{ip} ({b} B)"))
        .collect();
    if !top.is_empty() {
        eprintln!("top talkers (bytes sent): {}", top.join(", "));
    }
    eprintln!("alerts: {}", s.alerts.len());
    for a in &s.alerts {
        eprintln!("  {a}");
    }
}
