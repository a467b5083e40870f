//! Poll a live Linux host's `/proc` and print normalized host events as JSON lines.
//!
//! ```text
//! cargo run --example linux_host -- [--interval-ms N] [--count N] [--host NAME]
//!                                    [--socket-source auto|sock_diag|proc_net]
//! ```
//!
//! `--interval-ms` is the time between polls (default 1000), `--count` the number of
//! polls (default: until interrupted), `--host` the host name put in each event (default:
//! the kernel's host name), `--socket-source` where the socket table comes from (default
//! `auto`: `NETLINK_SOCK_DIAG`, else `/proc/net`). The first poll reports every running
//! process. Pipe the output into a file and replay it through
//! `entrospect::host::adapters::jsonl`. The poller lives in the library
//! (`entrospect::host::adapters::linux_proc`), so a sensor can run it in-process.

use entrospect::Timestamp;
use entrospect::host::adapters::linux_proc::{LinuxProcConfig, LinuxProcPoller, SocketSource};
use entrospect::host::crypto_libs::CryptoLibTable;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn usage() -> ! {
    eprintln!(
        "usage: linux_host [--interval-ms N] [--count N] [--host NAME] \
         [--socket-source auto|sock_diag|proc_net]"
    );
    std::process::exit(2);
}

fn main() {
    let mut interval_ms: u64 = 1000;
    let mut count: Option<u64> = None;
    let mut host: Option<String> = None;
    let mut socket_source = SocketSource::Auto;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--interval-ms" => interval_ms = value().parse().unwrap_or_else(|_| usage()),
            "--count" => count = Some(value().parse().unwrap_or_else(|_| usage())),
            "--host" => host = Some(value()),
            "--socket-source" => {
                socket_source = match value().as_str() {
                    "auto" => SocketSource::Auto,
                    "sock_diag" => SocketSource::SockDiag,
                    "proc_net" => SocketSource::ProcNet,
                    _ => usage(),
                }
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let host = host.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned())
    });
    let config = LinuxProcConfig {
        socket_source,
        ..LinuxProcConfig::default()
    };
    let mut poller = LinuxProcPoller::with_config(host, config, CryptoLibTable::default());
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
        "linux_host: {} polls, {} processes tracked, {} unreadable, {} malformed; \
         sockets from {} ({} sock_diag and {} /proc/net snapshots, {} sock_diag errors{})",
        stats.polls,
        stats.processes,
        stats.unreadable,
        stats.malformed,
        stats.socket_source.map_or("nowhere", SocketSource::as_str),
        stats.sock_diag_snapshots,
        stats.proc_net_snapshots,
        stats.sock_diag_errors,
        stats
            .sock_diag_last_error
            .as_deref()
            .map(|e| format!(", last: {e}"))
            .unwrap_or_default()
    );
}
