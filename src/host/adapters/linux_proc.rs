//! A poller for a live Linux host that needs no kernel module, no eBPF and no audit
//! rules: it reads `/proc` and diffs each snapshot against the previous one.
//!
//! Each [`LinuxProcPoller::poll`] emits:
//! - `process_start` for a pid not seen before, or a pid whose start time (field 22 of
//!   `/proc/PID/stat`, in clock ticks since boot) changed: that is how PID reuse is seen.
//!   The event is stamped with the real start time (`btime` of `/proc/stat` plus the
//!   start ticks), and carries a `process_guid` `linux:<boot_id>:<pid>:<start_ticks>`,
//!   unique per process per boot, so the index never confuses two users of one pid;
//! - `module_load` for each crypto library (per [`CryptoLibTable`]) newly found in
//!   `/proc/PID/maps`; stamped with the process start for a new process (libraries
//!   linked at start), else with the poll time;
//! - `process_exit` for a pid that disappeared (or was reused), stamped with the poll time;
//! - `network_connect` for each TCP socket (not listening, not closed) and each connected
//!   UDP socket newly seen, joined to its process through the `socket:[inode]` links of
//!   `/proc/PID/fd`; stamped with the poll time. A TCP socket whose local port is
//!   listening is reported `inbound`. The socket table comes from `NETLINK_SOCK_DIAG`
//!   ([`super::sock_diag`], Linux) when available, else from
//!   `/proc/net/{tcp,tcp6,udp,udp6}` ([`SocketSource`]); [`LinuxProcStats`] says which.
//!
//! # Limits
//!
//! - Polling misses what lives and dies between two polls: short processes and, above
//!   all, short connections (a DNS query, a one-shot HTTP beacon). Unconnected UDP
//!   sockets (`sendto`) have no remote address in the socket table and are not reported.
//!   `sock_diag` makes a snapshot cheaper, so polls can be closer together, but only
//!   auditd or eBPF catch every `connect()`.
//! - The socket table (netlink or `/proc/net/*`) shows the poller's network namespace
//!   only; processes of other users are only partly readable without root (their
//!   unreadable parts are counted in [`LinuxProcStats::unreadable`] and skipped).
//! - An `execve` is seen as a changed `/proc/PID/exe` of a known pid with the same start
//!   time (with `rescan_maps`), reported as a `process_start` with the same guid; two
//!   `execve`s between polls show as one.
//! - Kernel threads (no executable and an empty command line) are ignored.
//! - A socket shared by several processes (inherited across `fork`) is reported once,
//!   for the lowest pid holding it (usually the parent that opened it).
//!
//! # Bounds
//!
//! Every file is read through a byte cap ([`LinuxProcConfig`]); the tracked processes and
//! connections are capped, and what exceeds a cap is counted in [`LinuxProcStats`].
//! The parsing functions are pure, never panic, and are tested on text samples.

use crate::host::crypto_libs::CryptoLibTable;
use crate::host::{ConnDirection, HostError, HostEvent, HostEventKind, HostProto, Platform};
use crate::time::Timestamp;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`). It is 100 on every
/// Linux architecture in use (x86, arm, arm64, riscv, ppc, s390): the kernel converts
/// to this fixed unit for user space whatever its internal `HZ`.
pub const USER_HZ: u64 = 100;

/// Tunables of the poller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxProcConfig {
    /// Root of the proc file system (default `/proc`).
    pub proc_root: PathBuf,
    /// Most processes tracked (default 65 536).
    pub max_processes: usize,
    /// Most connections remembered between polls (default 65 536). A `sock_diag`
    /// snapshot keeps at most four times as many sockets (listeners and sockets no
    /// process holds count too); the rest are counted in `connections_over_cap`.
    pub max_connections: usize,
    /// Most crypto modules remembered per process (default 64).
    pub max_modules_per_process: usize,
    /// Most file descriptors examined per process per poll (default 65 536).
    pub max_fds_per_process: usize,
    /// Byte cap for `/proc/PID/maps` (default 8 MiB).
    pub max_maps_bytes: u64,
    /// Byte cap for each `/proc/net/*` table (default 32 MiB).
    pub max_net_bytes: u64,
    /// Byte cap for a command line (default 64 KiB).
    pub max_cmdline_bytes: u64,
    /// Re-read `maps` and the `exe` link of known processes every poll to catch
    /// `dlopen` and `execve` (default true).
    pub rescan_maps: bool,
    /// Where the socket table comes from (default [`SocketSource::Auto`]).
    pub socket_source: SocketSource,
}

/// Where the poller reads the socket table from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketSource {
    /// `NETLINK_SOCK_DIAG` when `proc_root` is the live `/proc` and netlink works, else
    /// `/proc/net` (a `proc_root` elsewhere is a recorded or test tree, which the
    /// kernel's netlink answer would not match).
    #[default]
    Auto,
    /// `NETLINK_SOCK_DIAG` ([`super::sock_diag`], Linux only); `/proc/net` for a poll
    /// where it fails or on other systems.
    SockDiag,
    /// The text tables `/proc/net/{tcp,tcp6,udp,udp6}` under `proc_root`.
    ProcNet,
}

impl SocketSource {
    /// The stable name (`auto`, `sock_diag`, `proc_net`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SocketSource::Auto => "auto",
            SocketSource::SockDiag => "sock_diag",
            SocketSource::ProcNet => "proc_net",
        }
    }
}

impl Default for LinuxProcConfig {
    fn default() -> Self {
        LinuxProcConfig {
            proc_root: PathBuf::from("/proc"),
            max_processes: 65_536,
            max_connections: 65_536,
            max_modules_per_process: 64,
            max_fds_per_process: 65_536,
            max_maps_bytes: 8 << 20,
            max_net_bytes: 32 << 20,
            max_cmdline_bytes: 64 << 10,
            rescan_maps: true,
            socket_source: SocketSource::Auto,
        }
    }
}

/// Counters of the poller.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinuxProcStats {
    /// Polls done.
    pub polls: u64,
    /// Processes tracked after the last poll.
    pub processes: u64,
    /// Files or links that could not be read (permissions, races with exit).
    pub unreadable: u64,
    /// Lines of `/proc` files that did not parse.
    pub malformed: u64,
    /// Processes not tracked because of `max_processes`.
    pub processes_over_cap: u64,
    /// Connections not remembered because of `max_connections`.
    pub connections_over_cap: u64,
    /// The socket source of the last poll ([`SocketSource::SockDiag`] or
    /// [`SocketSource::ProcNet`]; `None` before the first poll).
    pub socket_source: Option<SocketSource>,
    /// Socket snapshots taken through `NETLINK_SOCK_DIAG`.
    pub sock_diag_snapshots: u64,
    /// Socket snapshots taken from `/proc/net`.
    pub proc_net_snapshots: u64,
    /// `NETLINK_SOCK_DIAG` failures (open or dump) that made a poll fall back to
    /// `/proc/net`.
    pub sock_diag_errors: u64,
    /// The last of those failures.
    pub sock_diag_last_error: Option<String>,
}

/// The fields of `/proc/PID/stat` the poller uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 1: process id.
    pub pid: u32,
    /// Field 2: the command name, without its parentheses (may hold spaces and `)`).
    pub comm: String,
    /// Field 3: state letter.
    pub state: char,
    /// Field 4: parent pid.
    pub ppid: u32,
    /// Field 22: start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Parse one `/proc/PID/stat` line. The command name sits between the first `(` and the
/// *last* `)`, since it may itself contain spaces and parentheses.
///
/// # Errors
///
/// [`HostError::Parse`] (line 1) when a field is missing or not a number.
pub fn parse_stat(line: &str) -> Result<ProcStat, HostError> {
    let err = |reason: &str| HostError::Parse {
        line: 1,
        reason: format!("/proc/PID/stat: {reason}"),
    };
    let open = line
        .find('(')
        .ok_or_else(|| err("no '(' before the command name"))?;
    let close = line
        .rfind(')')
        .ok_or_else(|| err("no ')' after the command name"))?;
    if close < open {
        return Err(err("')' before '('"));
    }
    let pid = line
        .get(..open)
        .map(str::trim)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("bad pid"))?;
    let comm = line
        .get(open.saturating_add(1)..close)
        .unwrap_or("")
        .to_owned();
    let rest: Vec<&str> = line
        .get(close.saturating_add(1)..)
        .unwrap_or("")
        .split_ascii_whitespace()
        .collect();
    // rest[0] is field 3, so field N is rest[N - 3].
    let state = rest
        .first()
        .and_then(|s| s.chars().next())
        .ok_or_else(|| err("no state field"))?;
    let ppid = rest
        .get(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("bad ppid (field 4)"))?;
    let start_ticks = rest
        .get(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("bad starttime (field 22)"))?;
    Ok(ProcStat {
        pid,
        comm,
        state,
        ppid,
        start_ticks,
    })
}

/// Turn the NUL-separated `/proc/PID/cmdline` into one line (arguments joined by
/// spaces); `None` when empty (kernel threads, zombies).
pub fn parse_cmdline(raw: &[u8]) -> Option<String> {
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.is_empty() {
        None
    } else {
        Some(args.join(" "))
    }
}

/// The distinct file paths mapped in a `/proc/PID/maps` text, in order of first
/// appearance; pseudo-paths (`[heap]`, `[vdso]` ...) and anonymous maps are left out, and
/// a trailing ` (deleted)` is stripped.
pub fn parse_maps(text: &str) -> Vec<&str> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        // address perms offset dev inode [pathname]; the path may contain spaces.
        let mut rest = line;
        let mut ok = true;
        for _ in 0..5 {
            rest = rest.trim_start();
            match rest.find([' ', '\t']) {
                Some(i) => rest = rest.get(i..).unwrap_or(""),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let path = rest.trim();
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        if path.starts_with('/') && seen.insert(path) {
            out.push(path);
        }
    }
    out
}

/// One socket line of `/proc/net/{tcp,tcp6,udp,udp6}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketEntry {
    /// Transport protocol (from the table it came from).
    pub proto: HostProto,
    /// Local address and port (IPv4-mapped IPv6 addresses are given as IPv4).
    pub local: SocketAddr,
    /// Remote address and port (`0.0.0.0:0` when not connected).
    pub remote: SocketAddr,
    /// Kernel socket state (TCP: 01 established, 02 syn-sent, 0A listen, 07 close ...).
    pub state: u8,
    /// Owner uid.
    pub uid: u32,
    /// Socket inode (what `/proc/PID/fd/N -> socket:[inode]` names).
    pub inode: u64,
}

/// TCP state `TCP_LISTEN` in `/proc/net/tcp`.
pub const TCP_LISTEN: u8 = 0x0A;
/// TCP state `TCP_CLOSE` in `/proc/net/tcp` (also unconnected UDP).
pub const TCP_CLOSE: u8 = 0x07;

/// Parse an address of `/proc/net/*`: `0100007F:1F90` (IPv4) or 32 hex digits (IPv6),
/// each 32-bit word printed as the kernel holds it in memory, colon, hex port.
/// The bytes are recovered in native byte order, correct on the host that wrote them.
pub fn parse_net_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i.checked_mul(8)?..i.checked_mul(8)?.checked_add(8)?)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b)).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parse a `/proc/net/{tcp,tcp6,udp,udp6}` table. Returns the entries and the number of
/// lines (after the header) that did not parse.
pub fn parse_net(text: &str, proto: HostProto) -> (Vec<SocketEntry>, u64) {
    let mut out = Vec::new();
    let mut bad = 0u64;
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        match parse_net_line(line, proto) {
            Some(e) => out.push(e),
            None => bad = bad.saturating_add(1),
        }
    }
    (out, bad)
}

fn parse_net_line(line: &str, proto: HostProto) -> Option<SocketEntry> {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    let f: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
    Some(SocketEntry {
        proto,
        local: parse_net_addr(f.get(1)?)?,
        remote: parse_net_addr(f.get(2)?)?,
        state: u8::from_str_radix(f.get(3)?, 16).ok()?,
        uid: f.get(7)?.parse().ok()?,
        inode: f.get(9)?.parse().ok()?,
    })
}

/// The inode of a `/proc/PID/fd/N` link target `socket:[12345]`.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The boot time (`btime`, seconds since the epoch) in `/proc/stat`.
pub fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// uid → user name from an `/etc/passwd` text.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

/// Read the socket tables `net/{tcp,tcp6,udp,udp6}` under `proc_root`, each through a
/// `max_bytes` cap. Returns the entries and the number of lines that did not parse; a
/// missing table (`tcp6`/`udp6` without IPv6) is skipped.
pub fn read_proc_net(proc_root: &Path, max_bytes: u64) -> (Vec<SocketEntry>, u64) {
    let mut out = Vec::new();
    let mut malformed = 0u64;
    for (file, proto) in [
        ("net/tcp", HostProto::Tcp),
        ("net/tcp6", HostProto::Tcp),
        ("net/udp", HostProto::Udp),
        ("net/udp6", HostProto::Udp),
    ] {
        let Ok(raw) = read_capped(&proc_root.join(file), max_bytes) else {
            continue;
        };
        let (entries, bad) = parse_net(&String::from_utf8_lossy(&raw), proto);
        malformed = malformed.saturating_add(bad);
        out.extend(entries);
    }
    (out, malformed)
}

/// Read at most `cap` bytes of a file.
fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(cap).read_to_end(&mut buf)?;
    Ok(buf)
}

/// What the poller remembers of a process between polls.
#[derive(Debug)]
struct KnownProc {
    start_ticks: u64,
    start: Timestamp,
    guid: String,
    image: String,
    kernel: bool,
    crypto: HashSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    pid: u32,
    inode: u64,
    local: SocketAddr,
    remote: SocketAddr,
}

/// The `/proc` poller. See the module docs.
#[derive(Debug)]
pub struct LinuxProcPoller {
    host: String,
    config: LinuxProcConfig,
    crypto: CryptoLibTable,
    boot_time_ns: Option<u64>,
    boot_id: String,
    users: HashMap<u32, String>,
    procs: HashMap<u32, KnownProc>,
    conns: HashSet<ConnKey>,
    stats: LinuxProcStats,
    /// The netlink socket, opened at the first poll that wants it; `None` also after a
    /// failure (reopened at the next poll).
    #[cfg(target_os = "linux")]
    sock_diag: Option<super::sock_diag::SockDiag>,
}

impl LinuxProcPoller {
    /// A poller of `/proc` for the host named `host_name`, with the default config and
    /// crypto-library table.
    pub fn new(host_name: impl Into<String>) -> LinuxProcPoller {
        LinuxProcPoller::with_config(
            host_name,
            LinuxProcConfig::default(),
            CryptoLibTable::default(),
        )
    }

    /// A poller with its own config and crypto-library table. Reads `btime`, the boot
    /// id and `/etc/passwd` once.
    pub fn with_config(
        host_name: impl Into<String>,
        config: LinuxProcConfig,
        crypto: CryptoLibTable,
    ) -> LinuxProcPoller {
        let root = config.proc_root.clone();
        let text = |p: PathBuf| {
            read_capped(&p, 1 << 20)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let boot_time_ns = text(root.join("stat"))
            .as_deref()
            .and_then(parse_btime)
            .map(|s| s.saturating_mul(1_000_000_000));
        let boot_id = text(root.join("sys/kernel/random/boot_id"))
            .map(|s| s.trim().chars().take(64).collect::<String>())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let users = text(PathBuf::from("/etc/passwd"))
            .as_deref()
            .map(parse_passwd)
            .unwrap_or_default();
        LinuxProcPoller {
            host: host_name.into(),
            config,
            crypto,
            boot_time_ns,
            boot_id,
            users,
            procs: HashMap::new(),
            conns: HashSet::new(),
            stats: LinuxProcStats::default(),
            #[cfg(target_os = "linux")]
            sock_diag: None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &LinuxProcStats {
        &self.stats
    }

    fn event(&self, ts: Timestamp, kind: HostEventKind) -> HostEvent {
        HostEvent {
            timestamp: ts,
            host: self.host.clone(),
            platform: Platform::Linux,
            kind,
        }
    }

    fn unreadable(&mut self) {
        self.stats.unreadable = self.stats.unreadable.saturating_add(1);
    }

    /// Take one snapshot of `/proc` and return what changed since the previous poll
    /// (the first poll reports every running process). `now` stamps exits, later module
    /// loads and connections; the library never reads the clock itself.
    pub fn poll(&mut self, now: Timestamp) -> Vec<HostEvent> {
        self.stats.polls = self.stats.polls.saturating_add(1);
        let root = self.config.proc_root.clone();
        let mut pids: Vec<u32> = match std::fs::read_dir(&root) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect(),
            Err(_) => {
                self.unreadable();
                Vec::new()
            }
        };
        pids.sort_unstable();
        if pids.len() > self.config.max_processes {
            let over = pids.len().saturating_sub(self.config.max_processes);
            self.stats.processes_over_cap = self
                .stats
                .processes_over_cap
                .saturating_add(u64::try_from(over).unwrap_or(u64::MAX));
            pids.truncate(self.config.max_processes);
        }

        let mut exits = Vec::new();
        let mut starts = Vec::new();
        let mut modules = Vec::new();
        let mut alive: HashSet<u32> = HashSet::with_capacity(pids.len());

        for &pid in &pids {
            let dir = root.join(pid.to_string());
            let Ok(raw) = read_capped(&dir.join("stat"), 4096) else {
                // Gone between readdir and now, or unreadable.
                continue;
            };
            let stat = match parse_stat(&String::from_utf8_lossy(&raw)) {
                Ok(s) => s,
                Err(_) => {
                    self.stats.malformed = self.stats.malformed.saturating_add(1);
                    continue;
                }
            };
            alive.insert(pid);
            let is_new = match self.procs.get(&pid) {
                Some(k) if k.start_ticks == stat.start_ticks => false,
                Some(k) => {
                    // PID reused: the old process is gone.
                    exits.push(self.event(
                        now,
                        HostEventKind::ProcessExit {
                            pid,
                            process_guid: Some(k.guid.clone()),
                        },
                    ));
                    true
                }
                None => true,
            };
            if is_new {
                let known = self.new_process(&dir, &stat, now);
                if !known.kernel {
                    let cmdline = self.read_cmdline(&dir);
                    starts.push(
                        self.event(
                            known.start,
                            HostEventKind::ProcessStart {
                                pid,
                                ppid: Some(stat.ppid),
                                image: known.image.clone(),
                                cmdline,
                                user: self.user_of(&dir),
                                process_guid: Some(known.guid.clone()),
                                parent_image: None,
                                parent_guid: self
                                    .procs
                                    .get(&stat.ppid)
                                    .filter(|_| stat.ppid != pid)
                                    .map(|p| p.guid.clone()),
                            },
                        ),
                    );
                }
                self.procs.insert(pid, known);
            }
            if !is_new
                && self.config.rescan_maps
                && let Some(ev) = self.check_exec(pid, &dir, stat.ppid, now)
            {
                starts.push(ev);
            }
            let kernel = self.procs.get(&pid).is_none_or(|k| k.kernel);
            if !kernel && (is_new || self.config.rescan_maps) {
                self.scan_maps(pid, &dir, is_new, now, &mut modules);
            }
        }

        let gone: Vec<u32> = self
            .procs
            .keys()
            .filter(|p| !alive.contains(p))
            .copied()
            .collect();
        for pid in gone {
            if let Some(k) = self.procs.remove(&pid)
                && !k.kernel
            {
                exits.push(self.event(
                    now,
                    HostEventKind::ProcessExit {
                        pid,
                        process_guid: Some(k.guid),
                    },
                ));
            }
        }

        let connects = self.scan_sockets(&pids, now);
        self.stats.processes = u64::try_from(self.procs.len()).unwrap_or(u64::MAX);

        starts.sort_by_key(|e| e.timestamp);
        let mut out = exits;
        out.extend(starts);
        out.extend(modules);
        out.extend(connects);
        out
    }

    fn new_process(&mut self, dir: &Path, stat: &ProcStat, now: Timestamp) -> KnownProc {
        let exe = std::fs::read_link(dir.join("exe")).ok();
        let start = self
            .boot_time_ns
            .map(|b| {
                let ns = stat.start_ticks.saturating_mul(1_000_000_000 / USER_HZ);
                Timestamp::from_nanos(b.saturating_add(ns))
            })
            .map_or(now, |t| t.min(now));
        let guid = format!("linux:{}:{}:{}", self.boot_id, stat.pid, stat.start_ticks);
        // Kernel threads: children of kthreadd (pid 2) or kthreadd itself, no exe.
        let kernel = exe.is_none() && (stat.pid == 2 || stat.ppid == 2);
        let image = match exe {
            Some(p) => p.to_string_lossy().into_owned(),
            None => {
                if !kernel {
                    self.unreadable();
                }
                stat.comm.clone()
            }
        };
        KnownProc {
            start_ticks: stat.start_ticks,
            start,
            guid,
            image,
            kernel,
            crypto: HashSet::new(),
        }
    }

    /// A known process whose executable changed kept its pid and start time: it called
    /// `execve` (a shell's `exec`, a launcher script such as a pyenv shim). Report it as
    /// a `process_start` with the same guid, so the index takes the new image and
    /// command line, and forget its crypto modules, since the old address space is gone.
    fn check_exec(&mut self, pid: u32, dir: &Path, ppid: u32, now: Timestamp) -> Option<HostEvent> {
        let exe = std::fs::read_link(dir.join("exe")).ok()?;
        let exe = exe.to_string_lossy().into_owned();
        let known = self.procs.get_mut(&pid)?;
        if known.kernel || known.image == exe {
            return None;
        }
        known.image.clone_from(&exe);
        known.crypto.clear();
        let guid = known.guid.clone();
        let cmdline = self.read_cmdline(dir);
        let parent_guid = self
            .procs
            .get(&ppid)
            .filter(|_| ppid != pid)
            .map(|p| p.guid.clone());
        Some(self.event(
            now,
            HostEventKind::ProcessStart {
                pid,
                ppid: Some(ppid),
                image: exe,
                cmdline,
                user: self.user_of(dir),
                process_guid: Some(guid),
                parent_image: None,
                parent_guid,
            },
        ))
    }

    fn read_cmdline(&mut self, dir: &Path) -> Option<String> {
        match read_capped(&dir.join("cmdline"), self.config.max_cmdline_bytes) {
            Ok(raw) => parse_cmdline(&raw),
            Err(_) => {
                self.unreadable();
                None
            }
        }
    }

    fn user_of(&self, dir: &Path) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(dir).ok()?.uid();
        Some(
            self.users
                .get(&uid)
                .cloned()
                .unwrap_or_else(|| uid.to_string()),
        )
    }

    fn scan_maps(
        &mut self,
        pid: u32,
        dir: &Path,
        is_new: bool,
        now: Timestamp,
        out: &mut Vec<HostEvent>,
    ) {
        let raw = match read_capped(&dir.join("maps"), self.config.max_maps_bytes) {
            Ok(r) => r,
            Err(_) => {
                self.unreadable();
                return;
            }
        };
        let text = String::from_utf8_lossy(&raw);
        let found: Vec<String> = parse_maps(&text)
            .into_iter()
            .filter(|p| self.crypto.classify(p).is_some())
            .map(str::to_owned)
            .collect();
        let cap = self.config.max_modules_per_process;
        let Some(known) = self.procs.get_mut(&pid) else {
            return;
        };
        let ts = if is_new { known.start } else { now };
        let mut new_mods = Vec::new();
        for path in found {
            if known.crypto.len() >= cap {
                break;
            }
            if known.crypto.insert(path.clone()) {
                new_mods.push((path, known.image.clone(), known.guid.clone()));
            }
        }
        for (module, image, guid) in new_mods {
            out.push(self.event(
                ts,
                HostEventKind::ModuleLoad {
                    pid,
                    image: Some(image),
                    module,
                    process_guid: Some(guid),
                },
            ));
        }
    }

    /// One snapshot of the socket table from the configured source.
    fn socket_table(&mut self) -> Vec<SocketEntry> {
        let netlink = match self.config.socket_source {
            SocketSource::SockDiag => true,
            SocketSource::ProcNet => false,
            SocketSource::Auto => self.config.proc_root == Path::new("/proc"),
        };
        if netlink && let Some(entries) = self.sock_diag_table() {
            self.stats.socket_source = Some(SocketSource::SockDiag);
            self.stats.sock_diag_snapshots = self.stats.sock_diag_snapshots.saturating_add(1);
            return entries;
        }
        let (entries, bad) = read_proc_net(&self.config.proc_root, self.config.max_net_bytes);
        self.stats.malformed = self.stats.malformed.saturating_add(bad);
        self.stats.socket_source = Some(SocketSource::ProcNet);
        self.stats.proc_net_snapshots = self.stats.proc_net_snapshots.saturating_add(1);
        entries
    }

    /// The socket table through `NETLINK_SOCK_DIAG`; `None` (counted) when it fails.
    #[cfg(target_os = "linux")]
    fn sock_diag_table(&mut self) -> Option<Vec<SocketEntry>> {
        use super::sock_diag::SockDiag;
        let result = match self.sock_diag.take() {
            Some(d) => Ok(d),
            None => SockDiag::open(),
        }
        .and_then(|mut d| {
            let dump = d.dump(self.config.max_connections.saturating_mul(4))?;
            Ok((d, dump))
        });
        match result {
            Ok((d, dump)) => {
                self.sock_diag = Some(d);
                self.stats.malformed = self.stats.malformed.saturating_add(dump.malformed);
                self.stats.connections_over_cap = self
                    .stats
                    .connections_over_cap
                    .saturating_add(dump.over_cap);
                Some(dump.entries)
            }
            Err(e) => {
                self.stats.sock_diag_errors = self.stats.sock_diag_errors.saturating_add(1);
                self.stats.sock_diag_last_error = Some(e.to_string());
                None
            }
        }
    }

    /// `NETLINK_SOCK_DIAG` is Linux's; elsewhere the poller reads `/proc/net`.
    #[cfg(not(target_os = "linux"))]
    fn sock_diag_table(&mut self) -> Option<Vec<SocketEntry>> {
        None
    }

    /// Read the socket table, join it to pids through their fd links, and report the
    /// sockets not seen in the previous poll.
    fn scan_sockets(&mut self, pids: &[u32], now: Timestamp) -> Vec<HostEvent> {
        let root = self.config.proc_root.clone();
        let mut candidates: HashMap<u64, SocketEntry> = HashMap::new();
        let mut listening: HashSet<(IpAddr, u16)> = HashSet::new();
        for e in self.socket_table() {
            if e.proto == HostProto::Tcp && e.state == TCP_LISTEN {
                listening.insert((e.local.ip(), e.local.port()));
                continue;
            }
            let connected = e.remote.port() != 0 && !e.remote.ip().is_unspecified();
            let keep = match e.proto {
                HostProto::Tcp => connected && e.state != TCP_CLOSE,
                HostProto::Udp => connected,
            };
            if keep {
                candidates.insert(e.inode, e);
            }
        }
        let mut current: HashSet<ConnKey> = HashSet::new();
        let mut events = Vec::new();
        if candidates.is_empty() {
            self.conns = current;
            return events;
        }
        let mut claimed: HashSet<u64> = HashSet::new();
        for &pid in pids {
            if self.procs.get(&pid).is_none_or(|k| k.kernel) {
                continue;
            }
            let Ok(rd) = std::fs::read_dir(root.join(pid.to_string()).join("fd")) else {
                self.unreadable();
                continue;
            };
            for entry in rd.take(self.config.max_fds_per_process).flatten() {
                let Ok(target) = std::fs::read_link(entry.path()) else {
                    continue;
                };
                let Some(inode) = target.to_str().and_then(parse_socket_link) else {
                    continue;
                };
                let Some(sock) = candidates.get(&inode) else {
                    continue;
                };
                if !claimed.insert(inode) {
                    continue;
                }
                let key = ConnKey {
                    pid,
                    inode,
                    local: sock.local,
                    remote: sock.remote,
                };
                if current.len() >= self.config.max_connections {
                    self.stats.connections_over_cap =
                        self.stats.connections_over_cap.saturating_add(1);
                    continue;
                }
                current.insert(key);
                if self.conns.contains(&key) {
                    continue;
                }
                let inbound = sock.proto == HostProto::Tcp
                    && (listening.contains(&(sock.local.ip(), sock.local.port()))
                        || listening
                            .iter()
                            .any(|(ip, port)| *port == sock.local.port() && ip.is_unspecified()));
                let (src, dst, direction) = if inbound {
                    (sock.remote, sock.local, ConnDirection::Inbound)
                } else {
                    (sock.local, sock.remote, ConnDirection::Outbound)
                };
                let (image, guid) = self
                    .procs
                    .get(&pid)
                    .map(|k| (Some(k.image.clone()), Some(k.guid.clone())))
                    .unwrap_or_default();
                events.push(self.event(
                    now,
                    HostEventKind::NetworkConnect {
                        pid,
                        image,
                        proto: sock.proto,
                        src_ip: Some(src.ip()),
                        src_port: Some(src.port()),
                        dest_ip: dst.ip(),
                        dest_port: dst.port(),
                        direction,
                        process_guid: guid,
                    },
                ));
            }
        }
        self.conns = current;
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parentheses_in_name_parses() {
        let line = "4242 (my (evil) proc) S 1 4242 4242 0 -1 4194560 1167 0 0 0 \
                    3 1 0 0 20 0 1 0 123456 12345678 900 18446744073709551615 1 1 0 0 0 0 0 \
                    4096 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "my (evil) proc");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_ticks, 123_456);
    }

    #[test]
    fn stat_truncated_before_starttime_is_an_error() {
        assert!(matches!(
            parse_stat("12 (sh) S 1 12 12 0"),
            Err(HostError::Parse { .. })
        ));
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat(") x (").is_err());
        assert!(parse_stat("").is_err());
    }

    #[test]
    fn cmdline_joins_nul_separated_args() {
        assert_eq!(
            parse_cmdline(b"python3\0-c\0import ssl\0").as_deref(),
            Some("python3 -c import ssl")
        );
        assert_eq!(parse_cmdline(b""), None);
        assert_eq!(parse_cmdline(b"\0\0"), None);
    }

    const MAPS: &str = "\
55d0c6a00000-55d0c6a2e000 r--p 00000000 08:01 1316004                    /usr/bin/python3.11
7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 
7f1c2b200000-7f1c2b25e000 r--p 00000000 08:01 1320122                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2b25e000-7f1c2b2b9000 r-xp 0005e000 08:01 1320122                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2b400000-7f1c2b6b7000 r--p 00000000 08:01 1320119                    /usr/lib/x86_64-linux-gnu/libcrypto.so.3
7f1c2c000000-7f1c2c001000 r--p 00000000 08:01 999                        /tmp/my lib.so (deleted)
7ffd1e3f2000-7ffd1e413000 rw-p 00000000 00:00 0                          [stack]
7ffd1e5e5000-7ffd1e5e7000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn maps_yields_distinct_file_paths() {
        assert_eq!(
            parse_maps(MAPS),
            vec![
                "/usr/bin/python3.11",
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
                "/tmp/my lib.so",
            ]
        );
        assert!(parse_maps("short line\n").is_empty());
    }

    #[test]
    fn maps_crypto_libraries_are_classified() {
        let t = CryptoLibTable::default();
        let crypto: Vec<_> = parse_maps(MAPS)
            .into_iter()
            .filter(|p| t.classify(p).is_some())
            .collect();
        assert_eq!(
            crypto,
            vec![
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
            ]
        );
    }

    // Literal lines as the kernel prints them on a little-endian machine.
    const NET_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0500000A:C5D2 097100CB:115C 01 00000000:00000000 02:000A7D8F 00000000  1000        0 61234 2 0000000000000000 20 4 30 10 -1
   2: this line is broken
";

    #[cfg(target_endian = "little")]
    #[test]
    fn net_tcp_lines_decode_addresses_ports_states_and_inodes() {
        let (entries, bad) = parse_net(NET_TCP, HostProto::Tcp);
        assert_eq!(bad, 1);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(entries[0].state, TCP_LISTEN);
        assert_eq!(entries[0].inode, 51234);
        assert_eq!(entries[1].local, "10.0.0.5:50642".parse().unwrap());
        assert_eq!(entries[1].remote, "203.0.113.9:4444".parse().unwrap());
        assert_eq!(entries[1].state, 0x01);
        assert_eq!(entries[1].uid, 1000);
        assert_eq!(entries[1].inode, 61234);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn net_tcp6_lines_decode_v6_and_v4_mapped() {
        let text = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:A1B2 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 20002 1 0000000000000000 20 4 30 10 -1
";
        let (entries, bad) = parse_net(text, HostProto::Tcp);
        assert_eq!(bad, 0);
        assert_eq!(entries[0].local, "[::1]:22".parse().unwrap());
        assert_eq!(entries[1].local, "127.0.0.1:41394".parse().unwrap());
        assert_eq!(entries[1].remote, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn bad_net_addresses_are_rejected() {
        assert_eq!(parse_net_addr("0100007F"), None);
        assert_eq!(parse_net_addr("0100007F:ZZZZ"), None);
        assert_eq!(parse_net_addr("01007F:0050"), None);
        assert_eq!(parse_net_addr("é100007F:0050"), None);
        assert_eq!(parse_net_addr("GGGGGGGG:0050"), None);
    }

    #[test]
    fn socket_links_parse_only_sockets() {
        assert_eq!(parse_socket_link("socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link("pipe:[12345]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("socket:[]"), None);
    }

    /// A minimal proc tree: `stat` with `btime`, one process (pid 4242) with `exe`,
    /// `cmdline`, empty `maps` and `fd/`, and empty socket tables.
    fn fake_proc(root: &Path, exe: &str, cmdline: &[u8]) {
        std::fs::write(root.join("stat"), "cpu 1 2 3\nbtime 1795000000\n").unwrap();
        for t in ["tcp", "tcp6", "udp", "udp6"] {
            std::fs::create_dir_all(root.join("net")).unwrap();
            std::fs::write(root.join("net").join(t), "  sl  local_address\n").unwrap();
        }
        let dir = root.join("4242");
        std::fs::create_dir_all(dir.join("fd")).unwrap();
        std::fs::write(
            dir.join("stat"),
            "4242 (sh) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 1000 10 0",
        )
        .unwrap();
        std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        std::fs::write(dir.join("maps"), "").unwrap();
        let _ = std::fs::remove_file(dir.join("exe"));
        std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn exec_in_a_known_process_is_reported_as_a_start_with_the_same_guid() {
        let tmp = tempfile::tempdir().unwrap();
        fake_proc(tmp.path(), "/usr/bin/bash", b"/bin/sh\0launcher\0");
        let config = LinuxProcConfig {
            proc_root: tmp.path().to_path_buf(),
            ..LinuxProcConfig::default()
        };
        let mut poller = LinuxProcPoller::with_config("h", config, CryptoLibTable::default());
        let t0 = Timestamp::from_nanos(1_795_000_100_000_000_000);
        let first = poller.poll(t0);
        let start = |evs: &[HostEvent]| {
            evs.iter().find_map(|e| match &e.kind {
                HostEventKind::ProcessStart {
                    pid: 4242,
                    image,
                    process_guid,
                    cmdline,
                    ..
                } => Some((image.clone(), process_guid.clone(), cmdline.clone())),
                _ => None,
            })
        };
        let (image, guid, _) = start(&first).expect("start of pid 4242");
        assert_eq!(image, "/usr/bin/bash");
        assert_eq!(poller.stats().socket_source, Some(SocketSource::ProcNet));
        // Nothing changed: no new start.
        assert!(start(&poller.poll(t0)).is_none());

        fake_proc(tmp.path(), "/usr/bin/python3.12", b"python3\0beacon.py\0");
        let second = poller.poll(t0);
        let (image2, guid2, cmd2) = start(&second).expect("exec reported as a start");
        assert_eq!(image2, "/usr/bin/python3.12");
        assert_eq!(guid2, guid);
        assert_eq!(cmd2.as_deref(), Some("python3 beacon.py"));
        assert!(
            !second
                .iter()
                .any(|e| matches!(e.kind, HostEventKind::ProcessExit { .. }))
        );

        // The index keeps one record and takes the new image.
        let mut idx = crate::host::index::HostIndex::new(Default::default());
        for e in first.into_iter().chain(second) {
            idx.ingest(e);
        }
        let rec = idx.process_at("h", 4242, t0).expect("record");
        assert_eq!(rec.image.as_deref(), Some("/usr/bin/python3.12"));
    }

    #[test]
    fn btime_and_passwd_parse() {
        let stat = "cpu  1 2 3 4\nintr 5\nbtime 1795000000\nprocesses 77\n";
        assert_eq!(parse_btime(stat), Some(1_795_000_000));
        assert_eq!(parse_btime("cpu 1\n"), None);
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# c\nalice:x:1000:1000::/home/alice:/bin/sh\nbad\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&1000).map(String::as_str), Some("alice"));
        assert_eq!(users.len(), 2);
    }
}
