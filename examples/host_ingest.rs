//! Convert host telemetry files to normalized host-event JSON lines.
//!
//! ```text
//! host_ingest [--format F] [--host NAME] [--at RFC3339] FILE...
//! ```
//!
//! The format is detected from each file's content unless `--format` names one
//! (`sysmon-evtx`, `sysmon-xml`, `sysmon-json`, `auditd`, `auoms`, `tetragon`,
//! `eslogger`, `elastic-endpoint`, `lsof`, `esxcli`, `esxi-syslog`, `jsonl`). Events go
//! to stdout, one JSON object a line; a per-file summary (events by kind, records
//! ignored, lines skipped and why) goes to stderr. `--host` names the host for formats
//! that carry none; `--at` is the time an lsof/esxcli snapshot was taken.

use entrospect::Timestamp;
use entrospect::host::adapters::{HostFormat, OpenOptions, open_host_file_with};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut format = None;
    let mut host = None;
    let mut at = Timestamp::ZERO;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--format" => {
                let Some(name) = args.next() else {
                    eprintln!("--format needs a value");
                    return ExitCode::from(2);
                };
                let Some(f) = HostFormat::from_name(&name) else {
                    let names: Vec<_> = HostFormat::ALL.iter().map(|f| f.as_str()).collect();
                    eprintln!("unknown format {name:?}; one of {}", names.join(", "));
                    return ExitCode::from(2);
                };
                format = Some(f);
            }
            "--host" => host = args.next(),
            "--at" => {
                let Some(t) = args.next().as_deref().and_then(Timestamp::parse_rfc3339) else {
                    eprintln!("--at needs an RFC 3339 time");
                    return ExitCode::from(2);
                };
                at = t;
            }
            "-h" | "--help" => {
                eprintln!("usage: host_ingest [--format F] [--host NAME] [--at RFC3339] FILE...");
                return ExitCode::SUCCESS;
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() {
        eprintln!("usage: host_ingest [--format F] [--host NAME] [--at RFC3339] FILE...");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for path in &files {
        let opts = OpenOptions {
            format,
            default_host: host.clone(),
            snapshot_time: at,
            ..OpenOptions::default()
        };
        let mut adapter = match open_host_file_with(path, &opts) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        for item in adapter.by_ref() {
            match item {
                Ok(ev) => match serde_json::to_string(&ev) {
                    Ok(line) => {
                        if writeln!(out, "{line}").is_err() {
                            return ExitCode::FAILURE;
                        }
                    }
                    Err(e) => eprintln!("{}: cannot serialize event: {e}", path.display()),
                },
                Err(e) if std::env::var_os("HOST_INGEST_VERBOSE").is_some() => {
                    eprintln!("{}: {e}", path.display())
                }
                Err(_) => {}
            }
        }
        let s = adapter.stats();
        let kinds: Vec<String> = s
            .events_by_kind
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        let reasons: Vec<String> = s
            .skip_reasons
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        eprintln!(
            "{}: events {} [{}], ignored {}, skipped {} [{}]",
            path.display(),
            s.events(),
            kinds.join(" "),
            s.records_ignored,
            s.lines_skipped,
            reasons.join(" ")
        );
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
