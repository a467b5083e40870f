//! Poll a live Linux host's `/proc` and print normalized host events as JSON lines.
//!
//! ```text
//! cargo run --example linux_host -- [--interval-ms N] [--count N] [--host NAME]
//! ```
//!
//! `--interval-ms` is the time between polls (default 1000), `--count` the number of
//! polls (default: until interrupted), `--host` the host name put in each event (default:
//! the kernel's host name). The first poll reports every running process. Pipe the
//! output into a file and replay it through `entrospect::host::adapters::jsonl`.

use entrospect::Timestamp;
use entrospect::host::adapters::linux_proc::LinuxProcPoller;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn usage() -> ! {
    eprintln!("usage: linux_host [--interval-ms N] [--count N] [--host NAME]");
    std::process::exit(2);
}

fn main() {
    let mut interval_ms: u64 = 1000;
    let mut count: Option<u64> = None;
    let mut host: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--interval-ms" => interval_ms = value().parse().unwrap_or_else(|_| usage()),
            "--count" => count = Some(value().parse().unwrap_or_else(|_| usage())),
            "--host" => host = Some(value()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let host = host.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned())
    });
    let mut poller = LinuxProcPoller::new(host);
    let stdout = std::io::stdout();
    let mut polls = 0u64;
    loop {
        // The example reads the clock; the library only takes the time it is given.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos()))
            .unwrap_or_default();
        let events = poller.poll(now);
        let mut out = stdout.lock();
        for ev in &events {
            let line = match serde_json::to_string(ev) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("linux_host: cannot serialize event: {e}");
                    continue;
                }
            };
            if writeln!(out, "{line}").is_err() {
                return; // Reader went away (broken pipe).
            }
        }
        if out.flush().is_err() {
            return;
        }
        drop(out);
        polls += 1;
        if count.is_some_and(|c| polls >= c) {
            break;
        }
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
    let stats = poller.stats();
    eprintln!(
        "linux_host: {} polls, {} processes tracked, {} unreadable, {} malformed",
        stats.polls, stats.processes, stats.unreadable, stats.malformed
    );
}
