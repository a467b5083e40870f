//! Capture live traffic (or replay a file) through the multi-core pipeline and print
//! EVE-style JSON lines, as `replay` does, plus a periodic `stats` line.
//!
//! ```text
//! cargo run --release --features pcap[,pnet] --example live -- -i IFACE [--filter BPF]
//!     [--backend pcap|pnet] [--workers N] [--duration SECS] [--stats-interval SECS]
//!     [--udp-routing five-tuple|address-pair] [--config FILE] [--output FILE] [--quiet]
//! cargo run --release --features pcap --example live -- --file PCAP [--workers N] ...
//! ```
//!
//! Live capture needs `CAP_NET_RAW` (root). It stops cleanly on Ctrl-C or after
//! `--duration`: every flow still open is ended and printed. Live traffic uses the `drop`
//! back-pressure policy (the capture never stalls; drops are counted in the stats line);
//! file replay uses `block`. The human summary (packets/s, Gbit/s) goes to stderr.
//!
//! `--udp-routing five-tuple` (the default) spreads the UDP flows between one host pair
//! over the workers, IP fragments following their datagram's first fragment;
//! `address-pair` sends all UDP between two hosts to one worker (see `pipeline`'s docs,
//! "Routing").

/// The binary's allocator: mimalloc. Each flow's verdict allocates and frees a little
/// (findings, records), and the pipeline frees on the stage thread what workers allocated,
/// where glibc's per-thread arenas are slow. The library itself sets no global allocator:
/// an embedding product keeps its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use entrospect::capture::live_pcap::{LiveError, LivePcap, LivePcapConfig, LiveStats};
#[cfg(feature = "pnet")]
use entrospect::capture::live_pnet::{LivePnet, LivePnetConfig};
use entrospect::capture::{CaptureFile, Packet};
use entrospect::output::EveWriter;
use entrospect::pipeline::{Backpressure, Pipeline, PipelineConfig, PipelineStats, UdpRouting};
use entrospect::{Config, Timestamp};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

struct Args {
    iface: Option<String>,
    file: Option<PathBuf>,
    filter: Option<String>,
    backend: String,
    workers: usize,
    udp_routing: UdpRouting,
    duration: Option<f64>,
    stats_interval: f64,
    config: Option<PathBuf>,
    output: Option<PathBuf>,
    quiet: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: live (-i IFACE | --file PCAP) [--filter BPF] [--backend pcap|pnet] [--workers N]\n\
         \x20           [--duration SECS] [--stats-interval SECS]\n\
         \x20           [--udp-routing five-tuple|address-pair]  (default five-tuple)\n\
         \x20           [--config FILE] [--output FILE] [--quiet]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        iface: None,
        file: None,
        filter: None,
        backend: "pcap".into(),
        workers: 2,
        udp_routing: UdpRouting::default(),
        duration: None,
        stats_interval: 10.0,
        config: None,
        output: None,
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    let val = |it: &mut dyn Iterator<Item = String>| it.next().unwrap_or_else(|| usage());
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-i" | "--interface" => a.iface = Some(val(&mut it)),
            "--file" | "-r" => a.file = Some(val(&mut it).into()),
            "--filter" => a.filter = Some(val(&mut it)),
            "--backend" => a.backend = val(&mut it),
            "--workers" => a.workers = val(&mut it).parse().unwrap_or_else(|_| usage()),
            "--udp-routing" => {
                a.udp_routing = match val(&mut it).as_str() {
                    "address-pair" => UdpRouting::AddressPair,
                    "five-tuple" => UdpRouting::FiveTuple,
                    _ => usage(),
                }
            }
            "--duration" => a.duration = Some(val(&mut it).parse().unwrap_or_else(|_| usage())),
            "--stats-interval" => {
                a.stats_interval = val(&mut it).parse().unwrap_or_else(|_| usage())
            }
            "--config" => a.config = Some(val(&mut it).into()),
            "--output" | "-o" => a.output = Some(val(&mut it).into()),
            "--quiet" | "-q" => a.quiet = true,
            _ => usage(),
        }
    }
    if a.iface.is_none() == a.file.is_none() {
        usage()
    }
    a
}

/// The wall clock as packet time (for ticks when traffic is sparse).
fn now() -> Timestamp {
    let ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Timestamp::from_nanos(ns)
}

/// The output shared by the collector thread (events) and the main thread (stats lines).
type Out = Arc<Mutex<Box<dyn Write + Send>>>;

/// The stage thread's end of the shared output. Events go through an `EveWriter`, as in
/// `replay` (its byte writer for flow records, one reused buffer), which hands over one
/// whole line per `write_all`: one lock per line, and lines never interleave with the
/// main thread's stats lines.
struct SharedOut(Out);

impl Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock()?.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.lock()?.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.lock()?.flush()
    }
}

impl SharedOut {
    fn lock(&self) -> std::io::Result<std::sync::MutexGuard<'_, Box<dyn Write + Send>>> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))
    }
}

fn write_line<T: serde::Serialize + ?Sized>(out: &Out, v: &T) {
    if let (Ok(mut w), Ok(mut s)) = (out.lock(), serde_json::to_string(v)) {
        s.push('\n');
        if let Err(e) = w.write_all(s.as_bytes()) {
            eprintln!("live: writing output: {e}");
        }
    }
}

fn stats_line(stats: &PipelineStats, live: Option<LiveStats>) -> serde_json::Value {
    serde_json::json!({
        "timestamp": now(),
        "event_type": "stats",
        "stats": stats.merged_json(),
        "pipeline": stats.dispatch,
        "correlation": stats.correlation,
        "live": live,
    })
}

/// The two live backends behind one interface.
trait Live {
    fn next(&mut self) -> Result<Option<Packet<'_>>, LiveError>;
    fn live_stats(&mut self) -> LiveStats;
}

impl Live for LivePcap {
    fn next(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        self.next_packet_timeout()
    }
    fn live_stats(&mut self) -> LiveStats {
        LivePcap::live_stats(self)
    }
}

#[cfg(feature = "pnet")]
impl Live for LivePnet {
    fn next(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        self.next_packet_timeout()
    }
    fn live_stats(&mut self) -> LiveStats {
        LivePnet::live_stats(self)
    }
}

fn open_live(a: &Args, iface: &str) -> Result<Box<dyn Live>, String> {
    match a.backend.as_str() {
        "pcap" => {
            let mut c = LivePcapConfig::new(iface);
            c.filter = a.filter.clone();
            c.timeout_ms = 100;
            LivePcap::open(&c)
                .map(|s| Box::new(s) as Box<dyn Live>)
                .map_err(|e| e.to_string())
        }
        #[cfg(feature = "pnet")]
        "pnet" => {
            if a.filter.is_some() {
                return Err("the pnet backend has no BPF filter; use --backend pcap".into());
            }
            LivePnet::open(&LivePnetConfig::new(iface))
                .map(|s| Box::new(s) as Box<dyn Live>)
                .map_err(|e| e.to_string())
        }
        other => Err(format!(
            "unknown backend {other} (pcap{})",
            if cfg!(feature = "pnet") {
                ", pnet"
            } else {
                "; build with --features pnet for pnet"
            }
        )),
    }
}

fn main() -> ExitCode {
    let a = parse_args();
    let cfg = match &a.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("live: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let sink_out: Box<dyn Write + Send> = match &a.output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => {
                eprintln!("live: cannot create {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let out: Out = Arc::new(Mutex::new(sink_out));
    let pcfg = PipelineConfig {
        workers: a.workers,
        udp_routing: a.udp_routing,
        backpressure: if a.file.is_some() {
            Backpressure::Block
        } else {
            Backpressure::Drop
        },
        ..PipelineConfig::default()
    };
    let mut pipe = match Pipeline::new(cfg, pcfg, EveWriter::new(SharedOut(Arc::clone(&out)))) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("live: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            eprintln!("live: cannot catch Ctrl-C: {e}");
        }
    }
    let started = Instant::now();
    let mut failed = false;
    let mut live_stats = None;
    if let Some(path) = &a.file {
        match CaptureFile::open(path) {
            Ok(f) => {
                if let Err(e) = pipe.replay(&Arc::new(f)) {
                    eprintln!(
                        "live: {}: {e}; the packets before it were processed",
                        path.display()
                    );
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("live: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    } else if let Some(iface) = &a.iface {
        let mut src = match open_live(&a, iface) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("live: {e}");
                return ExitCode::from(2);
            }
        };
        let deadline = a
            .duration
            .map(|d| started + Duration::from_secs_f64(d.max(0.0)));
        let stats_every = Duration::from_secs_f64(a.stats_interval.max(0.1));
        let (mut last_tick, mut last_stats) = (Instant::now(), Instant::now());
        while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
            match src.next() {
                Ok(Some(p)) => pipe.push(&p),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("live: {e}");
                    failed = true;
                    break;
                }
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                pipe.tick(now());
            }
            if last_stats.elapsed() >= stats_every {
                last_stats = Instant::now();
                write_line(&out, &stats_line(&pipe.stats(), Some(src.live_stats())));
            }
        }
        live_stats = Some(src.live_stats());
    }
    let (sink, stats) = match pipe.finish() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("live: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = sink.finish() {
        eprintln!("live: writing output: {e}");
        return ExitCode::from(2);
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    write_line(&out, &stats_line(&stats, live_stats));
    if let Ok(mut w) = out.lock()
        && let Err(e) = w.flush()
    {
        eprintln!("live: writing output: {e}");
        return ExitCode::from(2);
    }
    if !a.quiet {
        let c = stats.capture();
        eprintln!(
            "live: {} packets, {} bytes in {:.3} s with {} workers ({:.0} packets/s, {:.2} Gbit/s; \
             packets per worker {:?})",
            c.packets,
            c.bytes,
            secs,
            a.workers,
            c.packets as f64 / secs,
            c.bytes as f64 * 8.0 / secs / 1e9,
            stats.dispatch.routed
        );
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
