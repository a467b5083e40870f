//! Linux audit telemetry into host events: raw `audit.log`, AUOMS, Tetragon.
//!
//! Raw `audit.log` ([`auditd_reader`]): records `type=T msg=audit(SECS.MS:SERIAL): k=v ...`
//! are grouped by serial. A group ends at its `EOE` record, when it falls more than
//! [`SERIAL_WINDOW`] serials behind the newest one seen (records of one event may be
//! interleaved with others), when more than [`MAX_OPEN_GROUPS`] groups are open (oldest
//! first), or at end of input. A finished group becomes:
//! - `execve`/`execveat` that succeeded → `process_start` (image from `exe=`, argv from
//!   the `EXECVE` record with hex-encoded and split `aN[i]` arguments, else `PROCTITLE`);
//! - `connect` with an AF_INET/AF_INET6 `SOCKADDR` → `network_connect` with the destination
//!   only (auditd does not know the source); success or `EINPROGRESS` (-115) only; the
//!   protocol is not in the record and is written as `tcp`;
//! - `open`/`openat`/`mmap` whose `PATH` names a crypto library → `module_load`, where
//!   "crypto library" is what [`crate::host::crypto_libs`] classifies (the built-in table,
//!   or the table extended by the `crypto_libs` config through [`auditd_reader_with`]);
//! - `exit_group` → `process_exit`.
//!
//! Syscall numbers are those of x86_64 and aarch64; the enriched `SYSCALL=name` field
//! (after the `0x1d` separator) is used when present.
//!
//! AUOMS ([`auoms_reader`]): Azure Syslog JSON rows whose `SyslogMessage` holds one
//! `AUOMS_EXECVE` record (one record per event; `cmdline="..."` may contain unescaped
//! quotes). Tetragon ([`tetragon_reader`]): `process_exec`/`process_exit` JSON rows, with
//! `exec_id` as the process identity. Azure VM Insights `VMConnection`
//! ([`vm_connection_reader`]): one row per process and remote endpoint per 1-minute
//! bucket; it has no pid (written as 0) and no source port, and its opaque `Process` id
//! becomes `process_guid`. Its byte counts have no field in the normalized event.

use super::{LineAdapter, LineParser, Outcome, Pending, normalize_guid, parse_pid};
use crate::host::crypto_libs::{CryptoLibConfig, CryptoLibTable};
use crate::host::{ConnDirection, HostEvent, HostEventKind, HostProto, Platform};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most audit event groups kept open at once.
pub const MAX_OPEN_GROUPS: usize = 1024;
/// A group is closed when the newest serial is this far ahead of it.
pub const SERIAL_WINDOW: u64 = 256;
/// Most records kept in one group (a long `EXECVE` is split over many).
const MAX_RECORDS_PER_GROUP: usize = 512;

/// `key=value` pairs of one audit record body, in order.
///
/// Values: `"quoted"` (the closing quote is the one followed by a space and a `key=`, or
/// the end, so that AUOMS `cmdline="a "b""` keeps its inner quotes), or bare up to the
/// next space. Fields after the `0x1d` separator (enriched logs) are included.
pub(crate) fn parse_kv(body: &str) -> Vec<(&str, KvValue<'_>)> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches([' ', '\u{1d}', '\t']);
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let key = rest.get(..eq).unwrap_or("");
        if key.contains(' ') {
            // Stray word: skip it.
            let sp = rest.find(' ').unwrap_or(rest.len());
            rest = rest.get(sp..).unwrap_or("");
            continue;
        }
        let after = rest.get(eq.saturating_add(1)..).unwrap_or("");
        if let Some(q) = after.strip_prefix('"') {
            let end = closing_quote(q);
            out.push((key, KvValue::Quoted(q.get(..end).unwrap_or(""))));
            rest = q.get(end.saturating_add(1)..).unwrap_or("");
        } else if after.starts_with('[') {
            let end = after
                .find("] ")
                .map(|i| i.saturating_add(1))
                .unwrap_or(after.len());
            out.push((key, KvValue::Bare(after.get(..end).unwrap_or(""))));
            rest = after.get(end..).unwrap_or("");
        } else {
            let end = after.find([' ', '\u{1d}']).unwrap_or(after.len());
            out.push((key, KvValue::Bare(after.get(..end).unwrap_or(""))));
            rest = after.get(end..).unwrap_or("");
        }
    }
    out
}

fn closing_quote(q: &str) -> usize {
    let b = q.as_bytes();
    let mut last = None;
    for (i, &c) in b.iter().enumerate() {
        if c != b'"' {
            continue;
        }
        last = Some(i);
        let next = b.get(i.saturating_add(1)..).unwrap_or(&[]);
        if next.is_empty() || next.first() == Some(&0x1d) {
            return i;
        }
        if next.first() == Some(&b' ') {
            let word = next.get(1..).unwrap_or(&[]);
            let w_end = word
                .iter()
                .position(|&c| c == b' ' || c == b'"')
                .unwrap_or(word.len());
            let w = word.get(..w_end).unwrap_or(&[]);
            if let Some(eq) = w.iter().position(|&c| c == b'=')
                && eq > 0
                && w.get(..eq).is_some_and(|k| {
                    k.iter().all(|c| {
                        c.is_ascii_alphanumeric() || *c == b'_' || *c == b'[' || *c == b']'
                    })
                })
            {
                return i;
            }
        }
    }
    last.unwrap_or(q.len())
}

/// A field value as the kernel wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KvValue<'a> {
    /// `"text"`: printable, as is.
    Quoted(&'a str),
    /// Bare: a number, `(null)`, or hex-encoded bytes for an untrusted string.
    Bare(&'a str),
}

impl<'a> KvValue<'a> {
    /// The value as text: quoted as is, bare hex decoded when it is even-length hex and
    /// `hex_string` says the field is an encodable string.
    fn text(&self, hex_string: bool) -> String {
        match *self {
            KvValue::Quoted(s) => s.to_owned(),
            KvValue::Bare(s) if hex_string => decode_hex_string(s).unwrap_or_else(|| s.to_owned()),
            KvValue::Bare(s) => s.to_owned(),
        }
    }
    fn raw(self) -> &'a str {
        match self {
            KvValue::Quoted(s) | KvValue::Bare(s) => s,
        }
    }
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 2);
    let b = s.as_bytes();
    for pair in b.chunks_exact(2) {
        let hi = (*pair.first()? as char).to_digit(16)?;
        let lo = (*pair.get(1)? as char).to_digit(16)?;
        out.push(u8::try_from(hi * 16 + lo).ok()?);
    }
    Some(out)
}

/// Hex-encoded string (NULs, as in `PROCTITLE`, become spaces).
fn decode_hex_string(s: &str) -> Option<String> {
    let bytes = hex_bytes(s)?;
    let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
    Some(text.trim_end().to_owned())
}

/// Decode a hex `saddr` into `(ip, port)` for AF_INET (2) and AF_INET6 (10); `None` for
/// other families (AF_UNIX, netlink ...) or short data.
pub(crate) fn decode_sockaddr(hex: &str) -> Option<(IpAddr, u16)> {
    let b = hex_bytes(hex)?;
    let family = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        2 => {
            let a = b.get(4..8)?;
            Some((
                IpAddr::V4(Ipv4Addr::new(
                    *a.first()?,
                    *a.get(1)?,
                    *a.get(2)?,
                    *a.get(3)?,
                )),
                port,
            ))
        }
        10 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some((IpAddr::V6(Ipv6Addr::from(a)), port))
        }
        _ => None,
    }
}

/// Syscalls the adapter maps, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sys {
    Execve,
    Connect,
    Open,
    Mmap,
    ExitGroup,
    Other,
}

fn syscall_of(arch: &str, number: &str) -> Sys {
    match number {
        "execve" | "execveat" => return Sys::Execve,
        "connect" => return Sys::Connect,
        "open" | "openat" | "openat2" => return Sys::Open,
        "mmap" => return Sys::Mmap,
        "exit_group" => return Sys::ExitGroup,
        _ => {}
    }
    let Ok(n) = number.parse::<u32>() else {
        return Sys::Other;
    };
    match arch {
        // x86_64
        "c000003e" | "x86_64" => match n {
            59 | 322 => Sys::Execve,
            42 => Sys::Connect,
            2 | 257 | 437 => Sys::Open,
            9 => Sys::Mmap,
            231 => Sys::ExitGroup,
            _ => Sys::Other,
        },
        // aarch64
        "c00000b7" | "aarch64" => match n {
            221 | 281 => Sys::Execve,
            203 => Sys::Connect,
            56 | 437 => Sys::Open,
            222 => Sys::Mmap,
            94 => Sys::ExitGroup,
            _ => Sys::Other,
        },
        _ => Sys::Other,
    }
}

#[derive(Debug, Default)]
struct Group {
    ts: Timestamp,
    first_line: u64,
    node: Option<String>,
    records: Vec<(String, String)>,
}

/// The header of a raw audit line: `(node, type, secs_ms, serial, body)`.
fn split_header(line: &str) -> Option<(Option<&str>, &str, Timestamp, u64, &str)> {
    let mut rest = line.trim_start();
    let mut node = None;
    if let Some(r) = rest.strip_prefix("node=") {
        let sp = r.find(' ')?;
        node = r.get(..sp);
        rest = r.get(sp..)?.trim_start();
    }
    let r = rest.strip_prefix("type=")?;
    let sp = r.find(' ')?;
    let rtype = r.get(..sp)?;
    let r = r.get(sp..)?.trim_start();
    let r = r
        .strip_prefix("msg=audit(")
        .or_else(|| r.strip_prefix("audit("))?;
    let close = r.find(')')?;
    let inside = r.get(..close)?;
    let (ts, serial) = inside.split_once(':')?;
    let serial: u64 = serial.parse().ok()?;
    let ts = parse_epoch(ts)?;
    let body = r.get(close.saturating_add(1)..)?;
    let body = body.strip_prefix(':').unwrap_or(body);
    Some((node, rtype, ts, serial, body))
}

/// `1604990501.123` seconds since the epoch.
pub(crate) fn parse_epoch(s: &str) -> Option<Timestamp> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = secs.parse().ok()?;
    let mut nanos: u64 = 0;
    let mut digits = 0;
    for c in frac.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        if digits < 9 {
            nanos = nanos.saturating_mul(10).saturating_add(u64::from(c - b'0'));
            digits += 1;
        }
    }
    for _ in digits..9 {
        nanos = nanos.saturating_mul(10);
    }
    Some(Timestamp::from_secs_nanos(secs, u32::try_from(nanos).ok()?))
}

/// Raw `audit.log` line parser.
pub struct AuditdParser {
    default_host: Option<String>,
    groups: BTreeMap<u64, Group>,
    newest: u64,
    crypto: CryptoLibTable,
}

impl AuditdParser {
    fn flush_one(&mut self, serial: u64, out: &mut Pending) {
        if let Some(g) = self.groups.remove(&serial) {
            self.emit(g, out);
        }
    }

    fn emit(&self, g: Group, out: &mut Pending) {
        let mut fields_by_type: HashMap<&str, Vec<Vec<(&str, KvValue<'_>)>>> = HashMap::new();
        for (t, body) in &g.records {
            fields_by_type
                .entry(t.as_str())
                .or_default()
                .push(parse_kv(body));
        }
        let Some(sys) = fields_by_type.get("SYSCALL").and_then(|v| v.first()) else {
            out.ignore();
            return;
        };
        let get = |k: &str| sys.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let arch = get("arch").map(|v| v.raw().to_owned()).unwrap_or_default();
        let number = get("SYSCALL")
            .or_else(|| get("syscall"))
            .map(|v| v.raw().to_owned())
            .unwrap_or_default();
        let mut kind = syscall_of(&arch, &number);
        if kind == Sys::Other
            && let Some(n) = get("syscall")
        {
            kind = syscall_of(&arch, n.raw());
        }
        let Some(pid) = get("pid").and_then(|v| parse_pid(v.raw())) else {
            out.skip(g.first_line, "no_pid", "SYSCALL record without pid");
            return;
        };
        let success = get("success").map(|v| v.raw()).unwrap_or("yes");
        let exit = get("exit").map(|v| v.raw()).unwrap_or("0");
        let image = get("exe").map(|v| v.text(true)).filter(|s| s != "(null)");
        let host = g
            .node
            .clone()
            .or_else(|| self.default_host.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let event = |kind: HostEventKind| HostEvent {
            timestamp: g.ts,
            host: host.clone(),
            platform: Platform::Linux,
            kind,
        };
        match kind {
            Sys::Execve => {
                if success != "yes" {
                    out.ignore();
                    return;
                }
                let cmdline = fields_by_type
                    .get("EXECVE")
                    .map(|recs| execve_cmdline(recs))
                    .filter(|s| !s.is_empty())
                    .or_else(|| {
                        fields_by_type
                            .get("PROCTITLE")
                            .and_then(|r| r.first())
                            .and_then(|f| f.iter().find(|(k, _)| *k == "proctitle"))
                            .map(|(_, v)| v.text(true))
                    });
                let user = get("UID")
                    .map(|v| v.text(false))
                    .or_else(|| get("uid").map(|v| v.text(false)));
                out.event(event(HostEventKind::ProcessStart {
                    pid,
                    ppid: get("ppid").and_then(|v| parse_pid(v.raw())),
                    image: image.unwrap_or_default(),
                    cmdline,
                    user,
                    process_guid: None,
                    parent_image: None,
                    parent_guid: None,
                }));
            }
            Sys::Connect => {
                if success != "yes" && exit != "-115" {
                    out.ignore();
                    return;
                }
                let addr = fields_by_type
                    .get("SOCKADDR")
                    .and_then(|r| r.first())
                    .and_then(|f| f.iter().find(|(k, _)| *k == "saddr"))
                    .and_then(|(_, v)| decode_sockaddr(v.raw()));
                let Some((dest_ip, dest_port)) = addr else {
                    out.ignore();
                    return;
                };
                out.event(event(HostEventKind::NetworkConnect {
                    pid,
                    image,
                    proto: HostProto::Tcp,
                    src_ip: None,
                    src_port: None,
                    dest_ip,
                    dest_port,
                    direction: ConnDirection::Outbound,
                    process_guid: None,
                }));
            }
            Sys::Open | Sys::Mmap => {
                if success != "yes" {
                    out.ignore();
                    return;
                }
                let module = fields_by_type.get("PATH").and_then(|recs| {
                    recs.iter()
                        .filter_map(|f| {
                            f.iter()
                                .find(|(k, _)| *k == "name")
                                .map(|(_, v)| v.text(true))
                        })
                        .find(|n| self.crypto.classify(n).is_some())
                });
                match module {
                    Some(module) => out.event(event(HostEventKind::ModuleLoad {
                        pid,
                        image,
                        module,
                        process_guid: None,
                    })),
                    None => out.ignore(),
                }
            }
            Sys::ExitGroup => out.event(event(HostEventKind::ProcessExit {
                pid,
                process_guid: None,
            })),
            Sys::Other => out.ignore(),
        }
    }
}

/// Rebuild argv from `EXECVE` records: `argc`, `aN`, or `aN_len` + `aN[i]` fragments;
/// bare values are hex-encoded strings.
fn execve_cmdline(recs: &[Vec<(&str, KvValue<'_>)>]) -> String {
    let mut args: BTreeMap<u32, String> = BTreeMap::new();
    for f in recs {
        for (k, v) in f {
            let Some(rest) = k.strip_prefix('a') else {
                continue;
            };
            if rest.ends_with("_len") {
                continue;
            }
            let (idx, frag) = match rest.split_once('[') {
                Some((i, _)) => (i, true),
                None => (rest, false),
            };
            let Ok(idx) = idx.parse::<u32>() else {
                continue;
            };
            let text = v.text(true);
            let slot = args.entry(idx).or_default();
            if frag {
                slot.push_str(&text);
            } else {
                *slot = text;
            }
        }
    }
    args.into_values().collect::<Vec<_>>().join(" ")
}

impl LineParser for AuditdParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim();
        if t.is_empty() || t.starts_with('#') {
            return;
        }
        let Some((node, rtype, ts, serial, body)) = split_header(t) else {
            return out.skip(
                line,
                "bad_audit_record",
                "no type=... msg=audit(ts:serial) header",
            );
        };
        if rtype == "EOE" {
            self.flush_one(serial, out);
            return;
        }
        self.newest = self.newest.max(serial);
        let g = self.groups.entry(serial).or_insert_with(|| Group {
            ts,
            first_line: line,
            node: node.map(str::to_owned),
            records: Vec::new(),
        });
        if g.records.len() < MAX_RECORDS_PER_GROUP {
            g.records.push((rtype.to_owned(), body.to_owned()));
        }
        // Close groups that fell behind, and keep the open count bounded.
        let horizon = self.newest.saturating_sub(SERIAL_WINDOW);
        let stale: Vec<u64> = self.groups.range(..horizon).map(|(s, _)| *s).collect();
        for s in stale {
            self.flush_one(s, out);
        }
        while self.groups.len() > MAX_OPEN_GROUPS {
            let Some(oldest) = self.groups.keys().next().copied() else {
                break;
            };
            self.flush_one(oldest, out);
        }
    }

    fn finish(&mut self, out: &mut Pending) {
        let serials: Vec<u64> = self.groups.keys().copied().collect();
        for s in serials {
            self.flush_one(s, out);
        }
    }
}

/// Reader of raw Linux `audit.log` lines; crypto-library opens are recognised by the
/// built-in [`CryptoLibTable`].
pub fn auditd_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, AuditdParser> {
    auditd_reader_with(reader, default_host, &CryptoLibConfig::default())
}

/// [`auditd_reader`] with the crypto-library table extended by `crypto_libs` (the
/// engine's `crypto_libs` config), so that a library the user added is reported as a
/// `module_load` when a process opens or maps it.
pub fn auditd_reader_with<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
    crypto_libs: &CryptoLibConfig,
) -> LineAdapter<R, AuditdParser> {
    LineAdapter::new(
        reader,
        AuditdParser {
            default_host: default_host.map(str::to_owned),
            groups: BTreeMap::new(),
            newest: 0,
            crypto: CryptoLibTable::new(crypto_libs),
        },
    )
}

// ---- AUOMS ----

/// Parse one AUOMS record (`type=AUOMS_EXECVE audit(ts:serial): k=v ...`).
pub(crate) fn convert_auoms(msg: &str, host: Option<&str>) -> Outcome {
    let Some((_, rtype, ts, _, body)) = split_header(msg) else {
        return Outcome::Malformed(
            "bad_auoms_record",
            "no type=... audit(ts:serial) header".into(),
        );
    };
    if rtype != "AUOMS_EXECVE" {
        return Outcome::Ignored;
    }
    let kv = parse_kv(body);
    let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    if get("success").map(|v| v.raw()) != Some("yes") {
        return Outcome::Ignored;
    }
    let Some(pid) = get("pid").and_then(|v| parse_pid(v.raw())) else {
        return Outcome::Malformed("no_pid", "AUOMS_EXECVE without pid".into());
    };
    let host = get("node")
        .map(|v| v.text(false))
        .or_else(|| host.map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    Outcome::Event(HostEvent {
        timestamp: ts,
        host,
        platform: Platform::Linux,
        kind: HostEventKind::ProcessStart {
            pid,
            ppid: get("ppid").and_then(|v| parse_pid(v.raw())),
            image: get("exe").map(|v| v.text(true)).unwrap_or_default(),
            cmdline: get("cmdline").map(|v| v.text(false)),
            user: get("user").map(|v| v.text(false)),
            process_guid: None,
            parent_image: None,
            parent_guid: None,
        },
    })
}

/// Azure Syslog JSON rows carrying AUOMS records.
pub struct AuomsParser {
    default_host: Option<String>,
}

impl LineParser for AuomsParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim();
        if t.is_empty() {
            return;
        }
        if t.starts_with("type=") {
            return out.outcome(line, convert_auoms(t, self.default_host.as_deref()));
        }
        let v: serde_json::Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(e) => return out.skip(line, "bad_json", e),
        };
        let Some(msg) = v.get("SyslogMessage").and_then(|m| m.as_str()) else {
            return out.skip(line, "not_an_event", "no SyslogMessage");
        };
        let host = v
            .get("Computer")
            .or_else(|| v.get("HostName"))
            .and_then(|h| h.as_str())
            .or(self.default_host.as_deref());
        out.outcome(line, convert_auoms(msg, host));
    }
}

/// Reader of AUOMS records (Azure Syslog JSON rows or bare lines).
pub fn auoms_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, AuomsParser> {
    LineAdapter::new(
        reader,
        AuomsParser {
            default_host: default_host.map(str::to_owned),
        },
    )
}

// ---- Tetragon ----

/// Tetragon JSON export rows.
pub struct TetragonParser {
    default_host: Option<String>,
}

fn tetragon_time(v: &serde_json::Value, proc_: &serde_json::Value) -> Option<Timestamp> {
    v.get("time")
        .and_then(|t| t.as_str())
        .or_else(|| proc_.get("start_time").and_then(|t| t.as_str()))
        .and_then(Timestamp::parse_rfc3339)
}

impl LineParser for TetragonParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim();
        if t.is_empty() {
            return;
        }
        let v: serde_json::Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(e) => return out.skip(line, "bad_json", e),
        };
        let (body, exit) = match (v.get("process_exec"), v.get("process_exit")) {
            (Some(b), _) => (b, false),
            (None, Some(b)) => (b, true),
            _ => return out.ignore(),
        };
        let p = body.get("process").unwrap_or(&serde_json::Value::Null);
        let Some(pid) = p
            .get("pid")
            .and_then(|x| x.as_u64())
            .and_then(|x| u32::try_from(x).ok())
        else {
            return out.skip(line, "no_pid", "tetragon event without process.pid");
        };
        let Some(ts) = tetragon_time(&v, p) else {
            return out.skip(
                line,
                "no_timestamp",
                "tetragon event without time or start_time",
            );
        };
        let host = v
            .get("node_name")
            .and_then(|h| h.as_str())
            .map(str::to_owned)
            .or_else(|| self.default_host.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let guid = p.get("exec_id").and_then(|x| x.as_str()).map(str::to_owned);
        let kind = if exit {
            HostEventKind::ProcessExit {
                pid,
                process_guid: guid,
            }
        } else {
            let binary = p
                .get("binary")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_owned();
            let cmdline = match p.get("arguments").and_then(|x| x.as_str()) {
                Some(a) if !a.is_empty() => Some(format!("{binary} {a}")),
                _ => Some(binary.clone()),
            };
            let parent = body.get("parent");
            HostEventKind::ProcessStart {
                pid,
                ppid: parent
                    .and_then(|q| q.get("pid"))
                    .and_then(|x| x.as_u64())
                    .and_then(|x| u32::try_from(x).ok()),
                image: binary,
                cmdline,
                user: p.get("uid").and_then(|x| x.as_u64()).map(|u| u.to_string()),
                process_guid: guid,
                parent_image: parent
                    .and_then(|q| q.get("binary"))
                    .and_then(|x| x.as_str())
                    .map(str::to_owned),
                parent_guid: p
                    .get("parent_exec_id")
                    .and_then(|x| x.as_str())
                    .and_then(normalize_guid_keep_case),
            }
        };
        out.event(HostEvent {
            timestamp: ts,
            host,
            platform: Platform::Linux,
            kind,
        });
    }
}

/// Tetragon exec ids are base64 (case matters): keep them as they are.
fn normalize_guid_keep_case(s: &str) -> Option<String> {
    normalize_guid(s).map(|_| s.trim().to_owned())
}

/// Reader of Tetragon JSON exports.
pub fn tetragon_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, TetragonParser> {
    LineAdapter::new(
        reader,
        TetragonParser {
            default_host: default_host.map(str::to_owned),
        },
    )
}

// ---- Azure VM Insights VMConnection ----

/// Azure VM Insights `VMConnection` JSON rows.
pub struct VmConnectionParser {
    default_host: Option<String>,
}

impl LineParser for VmConnectionParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim();
        if t.is_empty() {
            return;
        }
        let v: serde_json::Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(e) => return out.skip(line, "bad_json", e),
        };
        let text_of = |k: &str| v.get(k).and_then(|x| x.as_str());
        let Some(ts) = text_of("TimeGenerated").and_then(Timestamp::parse_rfc3339) else {
            return out.skip(
                line,
                "no_timestamp",
                "VMConnection row without TimeGenerated",
            );
        };
        let proto = match text_of("Protocol") {
            Some("tcp") => HostProto::Tcp,
            Some("udp") => HostProto::Udp,
            _ => return out.ignore(),
        };
        let ip = |k: &str| text_of(k).and_then(super::parse_ip);
        let port = v
            .get("DestinationPort")
            .and_then(|p| p.as_u64())
            .and_then(|p| u16::try_from(p).ok());
        let (Some(src), Some(dst), Some(dport)) = (ip("SourceIp"), ip("DestinationIp"), port)
        else {
            return out.skip(
                line,
                "bad_address",
                "VMConnection source, destination or port",
            );
        };
        let direction = if text_of("Direction") == Some("inbound") {
            ConnDirection::Inbound
        } else {
            ConnDirection::Outbound
        };
        let host = text_of("Computer")
            .map(str::to_owned)
            .or_else(|| self.default_host.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        out.event(HostEvent {
            timestamp: ts,
            host,
            platform: Platform::Linux,
            kind: HostEventKind::NetworkConnect {
                pid: 0,
                image: text_of("ProcessName").map(str::to_owned),
                proto,
                src_ip: Some(src),
                src_port: None,
                dest_ip: dst,
                dest_port: dport,
                direction,
                process_guid: text_of("Process").map(str::to_owned),
            },
        });
    }
}

/// Reader of Azure VM Insights `VMConnection` rows.
pub fn vm_connection_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, VmConnectionParser> {
    LineAdapter::new(
        reader,
        VmConnectionParser {
            default_host: default_host.map(str::to_owned),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostError;
    use crate::host::adapters::HostAdapter;
    use std::io::Cursor;

    fn run(
        text: &str,
    ) -> (
        Vec<Result<HostEvent, HostError>>,
        crate::host::adapters::AdapterStats,
    ) {
        let mut a = auditd_reader(Cursor::new(text.to_owned()), Some("lx"));
        let items: Vec<_> = a.by_ref().collect();
        (items, a.stats().clone())
    }

    #[test]
    fn sockaddr_decodes_inet_inet6_and_rejects_unix() {
        assert_eq!(
            decode_sockaddr("02002BCB7F0000010000000000000000"),
            Some(("127.0.0.1".parse().unwrap(), 11211))
        );
        assert_eq!(
            decode_sockaddr("0A002BCB000000000000000000000000000000000000000100000000"),
            Some(("::1".parse().unwrap(), 11211))
        );
        assert_eq!(decode_sockaddr("01002F7661722F72756E"), None);
        assert_eq!(decode_sockaddr("0200"), None);
        assert_eq!(decode_sockaddr("zz"), None);
    }

    #[test]
    fn interleaved_groups_become_exec_and_connect() {
        let text = "type=SYSCALL msg=audit(1604990501.123:4567): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=1 pid=4242 uid=1000 comm=\"python3\" exe=2F7573722F62696E2F707974686F6E33 key=(null)
type=SYSCALL msg=audit(1604990501.200:4568): arch=c000003e syscall=42 success=no exit=-115 a0=3 ppid=1 pid=4242 uid=1000 comm=\"python3\" exe=\"/usr/bin/python3\"
type=EXECVE msg=audit(1604990501.123:4567): argc=3 a0=\"python3\" a1_len=8 a1[0]=626561 a1[1]=636F6E2E7079 a2=\"-q\"
type=SOCKADDR msg=audit(1604990501.200:4568): saddr=020011D1CB0071090000000000000000
type=EOE msg=audit(1604990501.200:4568):
garbage that is not audit
type=PROCTITLE msg=audit(1604990501.123:4567): proctitle=707974686F6E3300626561636F6E2E7079
type=EOE msg=audit(1604990501.123:4567):
";
        let (items, stats) = run(text);
        assert!(matches!(items[1], Err(HostError::Parse { line: 6, .. })));
        let ev: Vec<_> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ev.len(), 2);
        let HostEventKind::NetworkConnect {
            pid,
            dest_ip,
            dest_port,
            src_ip,
            ..
        } = &ev[0].kind
        else {
            panic!("not a connect");
        };
        assert_eq!(
            (*pid, dest_ip.to_string(), *dest_port, *src_ip),
            (4242, "203.0.113.9".to_owned(), 4561, None)
        );
        let HostEventKind::ProcessStart {
            image,
            cmdline,
            ppid,
            ..
        } = &ev[1].kind
        else {
            panic!("not a start");
        };
        assert_eq!(image, "/usr/bin/python3");
        assert_eq!(cmdline.as_deref(), Some("python3 beacon.py -q"));
        assert_eq!(*ppid, Some(1));
        assert_eq!(ev[1].timestamp.to_string(), "2020-11-10T06:41:41.123000Z");
        assert_eq!(ev[1].host, "lx");
        assert_eq!(stats.lines_skipped, 1);
    }

    #[test]
    fn open_groups_flush_at_end_and_failures_are_ignored() {
        let text = "node=web1 type=SYSCALL msg=audit(1.5:10): arch=c000003e syscall=257 success=yes exit=3 pid=7 exe=\"/usr/bin/curl\"
node=web1 type=PATH msg=audit(1.5:10): item=0 name=\"/usr/lib/x86_64-linux-gnu/libssl.so.3\" nametype=NORMAL
type=SYSCALL msg=audit(1.6:11): arch=c000003e syscall=59 success=no exit=-2 pid=8 exe=\"/bin/sh\"
type=SYSCALL msg=audit(1.7:12): arch=c00000b7 syscall=94 success=yes exit=0 pid=7
";
        let (items, stats) = run(text);
        let ev: Vec<_> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(ev.len(), 2);
        assert!(
            matches!(&ev[0].kind, HostEventKind::ModuleLoad { module, .. } if module.ends_with("libssl.so.3"))
        );
        assert_eq!(ev[0].host, "web1");
        assert!(matches!(
            ev[1].kind,
            HostEventKind::ProcessExit { pid: 7, .. }
        ));
        assert_eq!(stats.records_ignored, 1);
    }

    #[test]
    fn auoms_keeps_inner_quotes_and_skips_failed_exec() {
        let ok = r#"type=AUOMS_EXECVE audit(1652292621.990:84143): node=UBUNTU5 syscall=execve success=yes exit=0 ppid=1340 pid=17790 user=tomcat comm="bash" exe="/bin/bash" cmdline="bash -c "{echo,YmFz}|{bash,-i}"" redactors= containerid="#;
        let Outcome::Event(ev) = convert_auoms(ok, None) else {
            panic!("no event")
        };
        let HostEventKind::ProcessStart {
            pid,
            ppid,
            cmdline,
            user,
            ..
        } = &ev.kind
        else {
            panic!()
        };
        assert_eq!((*pid, *ppid), (17790, Some(1340)));
        assert_eq!(
            cmdline.as_deref(),
            Some(r#"bash -c "{echo,YmFz}|{bash,-i}""#)
        );
        assert_eq!(user.as_deref(), Some("tomcat"));
        assert_eq!(ev.host, "UBUNTU5");
        let failed = ok.replace("success=yes", "success=no");
        assert!(matches!(convert_auoms(&failed, None), Outcome::Ignored));
        assert!(matches!(
            convert_auoms("garbage", None),
            Outcome::Malformed(..)
        ));
    }

    #[test]
    fn tetragon_exec_uses_exec_id_as_identity() {
        let text = r#"{"process_exec":{"process":{"exec_id":"Z2tlOjEzNjY1ODIyNjI0ODU2OjY4Nzkw","pid":68790,"uid":0,"binary":"/usr/bin/netserver","arguments":"-D","start_time":"2022-10-18T03:16:18.273546829Z","parent_exec_id":"Z2tlOjE="},"parent":{"pid":1,"binary":"/sbin/init"}},"node_name":"node-1","time":"2022-10-18T03:16:18.273546829Z"}
{"process_exec":{}}"#;
        let mut a = tetragon_reader(Cursor::new(text), None);
        let items: Vec<_> = a.by_ref().collect();
        let ev = items[0].as_ref().unwrap();
        let HostEventKind::ProcessStart {
            pid,
            ppid,
            process_guid,
            cmdline,
            ..
        } = &ev.kind
        else {
            panic!()
        };
        assert_eq!((*pid, *ppid), (68790, Some(1)));
        assert_eq!(
            process_guid.as_deref(),
            Some("Z2tlOjEzNjY1ODIyNjI0ODU2OjY4Nzkw")
        );
        assert_eq!(cmdline.as_deref(), Some("/usr/bin/netserver -D"));
        assert_eq!(ev.host, "node-1");
        assert!(items[1].is_err());
    }
}
