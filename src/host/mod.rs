//! Host events: the normalized telemetry the engine joins with flows.
//!
//! Owns [`HostEvent`] (process start, module load, network connect, process exit), the
//! per-platform adapters that produce it, and the bounded process index. Must not know
//! about packets.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub mod adapters;
pub mod crypto_libs;
pub mod index;

/// Errors of the host stage: reading telemetry files and turning them into [`HostEvent`]s.
///
/// Adapters yield [`HostError::Parse`] for one bad line or record and carry on with the
/// next; the other variants end the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Reading the telemetry failed.
    #[error("host telemetry i/o error: {source}")]
    Io {
        /// The underlying error.
        #[from]
        source: std::io::Error,
    },
    /// One line or record could not be turned into an event; the adapter skipped it.
    ///
    /// `reason` starts with a short stable category, then `: ` and the detail
    /// ([`HostError::skip_reason`] returns the category).
    #[error("unusable host record at line {line}: {reason}")]
    Parse {
        /// 1-based line (or record) number in the input.
        line: u64,
        /// Why it was skipped.
        reason: String,
    },
    /// The file is not in a format the adapters read.
    #[error("unsupported host telemetry format: {0}")]
    UnsupportedFormat(String),
    /// A container (zip, EVTX) could not be opened or read.
    #[error("cannot read {container} container: {reason}")]
    Container {
        /// `zip` or `evtx`.
        container: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// An input exceeded a size cap.
    #[error("{what} exceeds the cap of {cap} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The cap in bytes.
        cap: u64,
    },
}

impl HostError {
    /// The short category of a skipped record (the part of a [`HostError::Parse`] reason
    /// before the first `:`), or the variant's name for the other errors.
    pub fn skip_reason(&self) -> &str {
        match self {
            HostError::Parse { reason, .. } => reason.split(':').next().unwrap_or(reason).trim(),
            HostError::Io { .. } => "io",
            HostError::UnsupportedFormat(_) => "unsupported_format",
            HostError::Container { .. } => "container",
            HostError::TooLarge { .. } => "too_large",
        }
    }
}

/// The platform a host event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Microsoft Windows (Sysmon, Security log).
    Windows,
    /// Linux (auditd, Sysmon for Linux, /proc).
    Linux,
    /// macOS (Endpoint Security).
    Macos,
    /// VMware ESXi.
    Esxi,
}

/// Transport protocol of a host-observed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Which side opened a host-observed connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnDirection {
    /// The local process initiated it (`src` is local).
    #[default]
    Outbound,
    /// A remote peer initiated it (`dest` is local).
    Inbound,
}

/// One normalized host event, the JSON-lines form of DESIGN.md.
///
/// ```json
/// {"timestamp":"2026-11-22T10:00:00.123456Z","host":"ws-17","platform":"linux","event":"process_start","pid":4242,"ppid":1,"image":"/usr/bin/python3","cmdline":"python3 beacon.py","user":"alice","process_guid":null}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    /// When the host says the event happened.
    pub timestamp: Timestamp,
    /// Host name as the telemetry gives it.
    pub host: String,
    /// The platform of the source.
    pub platform: Platform,
    /// What happened.
    #[serde(flatten)]
    pub kind: HostEventKind,
}

/// The four kinds of host event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HostEventKind {
    /// A process started.
    ProcessStart {
        /// Process id (reused by the OS: prefer `process_guid`).
        pid: u32,
        /// Parent process id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ppid: Option<u32>,
        /// Full path of the executable.
        image: String,
        /// Command line, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cmdline: Option<String>,
        /// User name, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// Unique process identity (Sysmon ProcessGuid or equivalent), when there is one.
        #[serde(default)]
        process_guid: Option<String>,
        /// Parent image, when the source gives it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_image: Option<String>,
        /// Parent's unique identity, when the source gives it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_guid: Option<String>,
    },
    /// A process mapped a library (DLL, shared object, framework).
    ModuleLoad {
        /// Process id.
        pid: u32,
        /// The process's image, when the source gives it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// Full path (or name) of the loaded module.
        module: String,
        /// Unique process identity, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process_guid: Option<String>,
    },
    /// A process opened (or accepted) a network connection.
    NetworkConnect {
        /// Process id.
        pid: u32,
        /// The process's image, when the source gives it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// Transport protocol.
        proto: HostProto,
        /// Local address for outbound connections (may be missing, e.g. auditd).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        src_ip: Option<IpAddr>,
        /// Local port for outbound connections (may be missing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        src_port: Option<u16>,
        /// Remote address for outbound connections.
        dest_ip: IpAddr,
        /// Remote port for outbound connections.
        dest_port: u16,
        /// Who initiated it.
        #[serde(default)]
        direction: ConnDirection,
        /// Unique process identity, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process_guid: Option<String>,
    },
    /// A process exited.
    ProcessExit {
        /// Process id.
        pid: u32,
        /// Unique process identity, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process_guid: Option<String>,
    },
}

impl HostEventKind {
    /// The process id the event is about.
    pub fn pid(&self) -> u32 {
        match self {
            HostEventKind::ProcessStart { pid, .. }
            | HostEventKind::ModuleLoad { pid, .. }
            | HostEventKind::NetworkConnect { pid, .. }
            | HostEventKind::ProcessExit { pid, .. } => *pid,
        }
    }

    /// The stable name of the event kind (`process_start`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            HostEventKind::ProcessStart { .. } => "process_start",
            HostEventKind::ModuleLoad { .. } => "module_load",
            HostEventKind::NetworkConnect { .. } => "network_connect",
            HostEventKind::ProcessExit { .. } => "process_exit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_md_lines_round_trip() {
        let lines = [
            r#"{"timestamp":"2026-11-22T10:00:00.123456Z","host":"ws-17","platform":"linux","event":"process_start","pid":4242,"ppid":1,"image":"/usr/bin/python3","cmdline":"python3 beacon.py","user":"alice","process_guid":null}"#,
            r#"{"timestamp":"2026-11-22T10:00:01Z","host":"ws-17","platform":"linux","event":"module_load","pid":4242,"image":"/usr/bin/python3","module":"/usr/lib/x86_64-linux-gnu/libcrypto.so.3"}"#,
            r#"{"timestamp":"2026-11-22T10:00:02Z","host":"ws-17","platform":"linux","event":"network_connect","pid":4242,"image":"/usr/bin/python3","proto":"tcp","src_ip":"10.0.0.5","src_port":50514,"dest_ip":"203.0.113.9","dest_port":4444,"direction":"outbound"}"#,
            r#"{"timestamp":"2026-11-22T10:00:03Z","host":"ws-17","platform":"linux","event":"process_exit","pid":4242}"#,
        ];
        for line in lines {
            let ev: HostEvent = serde_json::from_str(line).unwrap();
            let back: HostEvent =
                serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
            assert_eq!(ev, back);
            assert_eq!(ev.kind.pid(), 4242);
        }
    }
}
