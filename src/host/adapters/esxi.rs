//! VMware ESXi telemetry into host events (platform `esxi`).
//!
//! - `esxcli network ip connection list` ([`esxcli_reader`]): columns `Proto, Recv Q,
//!   Send Q, Local Address, Foreign Address, State, World ID, CC Algo, World Name`. Rows
//!   with a peer become `network_connect` with `pid` = World ID and `image` = World Name
//!   (`hostd-worker`, `vpxa-worker` ...). UDP rows have no State and no CC Algo. As for
//!   lsof, a connection whose local port was seen in `LISTEN` earlier in the listing is
//!   inbound; otherwise a low local port to a high remote port is inbound. The command
//!   prints no time: the caller supplies the snapshot time.
//! - hostd/vpxa/shell/auth syslog ([`esxi_syslog_reader`]): the 6.x/7.x
//!   `ts level proc[pid] [Originator@6876 ... user=..] msg`, 8.x `ts In(182) proc: msg`,
//!   remote syslog `<PRI>ts host Tag: level proc[pid] ...` and shell.log
//!   `ts shell[pid]: [user]: cmd` dialects. Log lines carry process context only: the
//!   first line of each `(name, pid)` becomes one `process_start` with `image` = the
//!   daemon name (and, for shell.log, the first command as `cmdline`); later lines of the
//!   same process, lines without a pid (vmkernel, pre-6.0 `[date 'Comp' tid level]`) and
//!   continuation lines are counted as ignored.

use super::{Endpoints, LineAdapter, LineParser, Pending, connect_kind, split_host_port};
use crate::host::{ConnDirection, HostEvent, HostEventKind, HostProto, Platform};
use crate::time::Timestamp;
use std::collections::HashSet;
use std::io::BufRead;

/// Most remembered listening ports or seen processes per file.
const MAX_REMEMBERED: usize = 65_536;

/// Line parser for `esxcli network ip connection list`.
pub struct EsxcliParser {
    host: String,
    timestamp: Timestamp,
    listening: HashSet<(HostProto, u16)>,
}

impl LineParser for EsxcliParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim();
        if t.is_empty() || t.starts_with("Proto") || t.starts_with("---") {
            return;
        }
        let tok: Vec<&str> = t.split_whitespace().collect();
        let proto = match tok.first().map(|p| p.to_ascii_lowercase()).as_deref() {
            Some("tcp") => HostProto::Tcp,
            Some("udp") => HostProto::Udp,
            _ => return out.skip(line, "bad_esxcli_row", "proto is not tcp or udp"),
        };
        let (Some(local), Some(remote)) = (
            tok.get(3).and_then(|s| split_host_port(s)),
            tok.get(4).and_then(|s| split_host_port(s)),
        ) else {
            return out.skip(line, "bad_address", "local or foreign address");
        };
        // After the addresses: [State] WorldID [CCAlgo] WorldName...
        let rest = tok.get(5..).unwrap_or(&[]);
        let Some(wid_pos) = rest
            .iter()
            .position(|s| s.bytes().all(|c| c.is_ascii_digit()))
        else {
            return out.skip(line, "bad_esxcli_row", "no World ID");
        };
        let state = if wid_pos > 0 {
            rest.first().copied().unwrap_or("")
        } else {
            ""
        };
        let Some(world_id) = rest.get(wid_pos).and_then(|s| s.parse::<u32>().ok()) else {
            return out.skip(line, "bad_esxcli_row", "World ID out of range");
        };
        let after = rest.get(wid_pos.saturating_add(1)..).unwrap_or(&[]);
        let name_tokens = if proto == HostProto::Tcp && after.len() >= 2 {
            after.get(1..).unwrap_or(&[])
        } else {
            after
        };
        let world_name = name_tokens.join(" ");
        if state.eq_ignore_ascii_case("LISTEN") || remote.0.is_unspecified() {
            if self.listening.len() < MAX_REMEMBERED {
                self.listening.insert((proto, local.1));
            }
            return out.ignore();
        }
        let direction =
            if self.listening.contains(&(proto, local.1)) || (local.1 < 1024 && remote.1 >= 1024) {
                ConnDirection::Inbound
            } else {
                ConnDirection::Outbound
            };
        let image = (!world_name.is_empty()).then_some(world_name);
        out.event(HostEvent {
            timestamp: self.timestamp,
            host: self.host.clone(),
            platform: Platform::Esxi,
            kind: connect_kind(
                world_id,
                image,
                proto,
                &Endpoints {
                    local,
                    remote,
                    direction,
                },
                None,
            ),
        });
    }
}

/// Reader of one `esxcli network ip connection list` snapshot taken at `timestamp`.
pub fn esxcli_reader<R: BufRead>(
    reader: R,
    host: Option<&str>,
    timestamp: Timestamp,
) -> LineAdapter<R, EsxcliParser> {
    LineAdapter::new(
        reader,
        EsxcliParser {
            host: host.unwrap_or("unknown").to_owned(),
            timestamp,
            listening: HashSet::new(),
        },
    )
}

/// One parsed ESXi log line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EsxiLine<'a> {
    pub ts: Timestamp,
    pub host: Option<&'a str>,
    pub proc_name: Option<&'a str>,
    pub pid: Option<u32>,
    pub user: Option<&'a str>,
    pub message: &'a str,
}

/// `name[123]` or `name[123]:` → (name, pid).
fn proc_token(tok: &str) -> Option<(&str, u32)> {
    let t = tok.strip_suffix(':').unwrap_or(tok);
    let open = t.find('[')?;
    let inner = t.get(open.saturating_add(1)..)?.strip_suffix(']')?;
    let name = t.get(..open)?;
    if name.is_empty() {
        return None;
    }
    Some((name, inner.parse().ok()?))
}

/// Parse a line of any of the ESXi syslog dialects; `None` when it starts with no
/// RFC 3339 time (continuations, pre-6.0 lines).
pub(crate) fn parse_esxi_line(line: &str) -> Option<EsxiLine<'_>> {
    let mut t = line.trim();
    if t.starts_with('<')
        && let Some(end) = t.find('>')
        && t.get(1..end)
            .is_some_and(|p| p.bytes().all(|c| c.is_ascii_digit()))
    {
        t = t.get(end.saturating_add(1)..)?;
    }
    let (ts_tok, rest) = t.split_once(' ')?;
    let ts = Timestamp::parse_rfc3339(ts_tok)?;
    let tokens: Vec<&str> = rest.split_whitespace().take(6).collect();
    let mut host = None;
    // Remote syslog: `host Tag: level proc[pid]`
    if let (Some(h), Some(tag)) = (tokens.first(), tokens.get(1))
        && !h.contains('[')
        && tag.ends_with(':')
        && !tag.contains('[')
        && h.contains('.')
    {
        host = Some(*h);
    }
    let mut proc_name = None;
    let mut pid = None;
    let mut msg_start = 0usize;
    for tok in &tokens {
        if let Some((n, p)) = proc_token(tok) {
            proc_name = Some(n);
            pid = Some(p);
            if let Some(i) = rest.find(tok) {
                msg_start = i.saturating_add(tok.len());
            }
            break;
        }
    }
    let mut message = rest.get(msg_start..).unwrap_or("").trim();
    let mut user = None;
    if let Some(inner) = message.strip_prefix('[')
        && let Some(close) = inner.find(']')
    {
        let bracket = inner.get(..close).unwrap_or("");
        if bracket.starts_with("Originator@") {
            user = bracket.split(' ').find_map(|kv| kv.strip_prefix("user="));
        } else if inner
            .get(close.saturating_add(1)..)
            .is_some_and(|r| r.starts_with(':'))
        {
            user = Some(bracket);
        }
        message = inner
            .get(close.saturating_add(1)..)
            .unwrap_or("")
            .trim_start_matches(':')
            .trim();
    }
    Some(EsxiLine {
        ts,
        host,
        proc_name,
        pid,
        user,
        message,
    })
}

/// Whether a line looks like one of the ESXi syslog dialects (for format detection).
pub(crate) fn looks_like_esxi_syslog(line: &str) -> bool {
    if let Some(l) = parse_esxi_line(line) {
        return l.proc_name.is_some() || line.contains(" In(") || line.contains("vmkernel:");
    }
    let t = line.trim_start();
    t.starts_with('[')
        && t.contains("'")
        && (t.contains(" info]") || t.contains(" verbose]") || t.contains(" trivia]"))
}

/// Line parser for ESXi syslog.
pub struct EsxiSyslogParser {
    default_host: Option<String>,
    seen: HashSet<(String, u32)>,
}

impl LineParser for EsxiSyslogParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        if text.trim().is_empty() {
            return;
        }
        let Some(l) = parse_esxi_line(text) else {
            return out.ignore();
        };
        let (Some(name), Some(pid)) = (l.proc_name, l.pid) else {
            return out.ignore();
        };
        if name.len() > 256 {
            return out.skip(line, "bad_esxi_line", "process name too long");
        }
        let key = (name.to_owned(), pid);
        if self.seen.contains(&key) {
            return out.ignore();
        }
        if self.seen.len() >= MAX_REMEMBERED {
            self.seen.clear();
        }
        self.seen.insert(key);
        let cmdline = (name == "shell" && !l.message.is_empty()).then(|| l.message.to_owned());
        out.event(HostEvent {
            timestamp: l.ts,
            host: l
                .host
                .map(str::to_owned)
                .or_else(|| self.default_host.clone())
                .unwrap_or_else(|| "unknown".to_owned()),
            platform: Platform::Esxi,
            kind: HostEventKind::ProcessStart {
                pid,
                ppid: None,
                image: name.to_owned(),
                cmdline,
                user: l.user.map(str::to_owned),
                process_guid: None,
                parent_image: None,
                parent_guid: None,
            },
        });
    }
}

/// Reader of ESXi hostd/vpxa/shell/auth syslog.
pub fn esxi_syslog_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, EsxiSyslogParser> {
    LineAdapter::new(
        reader,
        EsxiSyslogParser {
            default_host: default_host.map(str::to_owned),
            seen: HashSet::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::adapters::HostAdapter;

    #[test]
    fn esxcli_rows_map_world_id_and_name() {
        let text = "Proto  Recv Q  Send Q  Local Address      Foreign Address     State        World ID  CC Algo  World Name
-----  ------  ------  -----------------  ------------------  -----------  --------  -------  ----------
tcp         0       0  0.0.0.0:443        0.0.0.0:0           LISTEN        2099101  newreno  envoy
tcp         0       0  10.0.0.10:443      10.0.0.50:51234     ESTABLISHED   2099101  newreno  envoy
tcp         0       0  10.0.0.10:31031    198.51.100.20:443   ESTABLISHED   2100777  newreno  vpxa-worker
udp         0       0  10.0.0.10:123      203.0.113.1:123                   2099443           ntpd
tcp         0       0  ::1:8307           ::1:443             ESTABLISHED   2101234  cubic    hostd worker pool
bogus row
";
        let mut a = esxcli_reader(
            std::io::Cursor::new(text),
            Some("esx-1"),
            Timestamp::from_secs_nanos(1, 0),
        );
        let items: Vec<_> = a.by_ref().collect();
        let ev: Vec<_> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ev.len(), 4);
        let HostEventKind::NetworkConnect {
            pid,
            image,
            direction,
            src_ip,
            ..
        } = &ev[0].kind
        else {
            panic!()
        };
        assert_eq!(
            (*pid, image.as_deref(), *direction),
            (2099101, Some("envoy"), ConnDirection::Inbound)
        );
        assert_eq!(src_ip.map(|i| i.to_string()).as_deref(), Some("10.0.0.50"));
        let HostEventKind::NetworkConnect {
            pid,
            image,
            direction,
            dest_port,
            ..
        } = &ev[1].kind
        else {
            panic!()
        };
        assert_eq!(
            (*pid, image.as_deref(), *direction, *dest_port),
            (2100777, Some("vpxa-worker"), ConnDirection::Outbound, 443)
        );
        let HostEventKind::NetworkConnect { image, proto, .. } = &ev[2].kind else {
            panic!()
        };
        assert_eq!((image.as_deref(), *proto), (Some("ntpd"), HostProto::Udp));
        let HostEventKind::NetworkConnect { image, dest_ip, .. } = &ev[3].kind else {
            panic!()
        };
        assert_eq!(image.as_deref(), Some("hostd worker pool"));
        assert_eq!(dest_ip.to_string(), "::1");
        assert!(
            ev.iter()
                .all(|e| e.platform == Platform::Esxi && e.host == "esx-1")
        );
        assert_eq!(a.stats().lines_skipped, 1);
        assert_eq!(a.stats().records_ignored, 1);
    }

    #[test]
    fn esxi_syslog_dialects_give_process_context() {
        let l = parse_esxi_line("2021-01-04T16:02:17.168Z info hostd[526501] [Originator@6876 sub=Libs user=root] New ERROR").unwrap();
        assert_eq!(
            (l.proc_name, l.pid, l.user, l.message),
            (Some("hostd"), Some(526501), Some("root"), "New ERROR")
        );
        let l = parse_esxi_line("<166>2019-05-21T19:27:32.479Z esxi.example Hostd: info hostd[111111] [Originator@6876 user=root] logged out").unwrap();
        assert_eq!(
            (l.host, l.proc_name, l.pid),
            (Some("esxi.example"), Some("hostd"), Some(111111))
        );
        let l = parse_esxi_line("2024-12-12T01:44:43.728Z shell[71435]: [root]: ls -la").unwrap();
        assert_eq!(
            (l.proc_name, l.pid, l.user, l.message),
            (Some("shell"), Some(71435), Some("root"), "ls -la")
        );
        let l = parse_esxi_line(
            "2024-03-12T07:48:40.079Z In(182) vmkernel: cpu21:2099003)<NMLX_ERR> attach failed",
        )
        .unwrap();
        assert_eq!(l.pid, None);
        assert!(parse_esxi_line("POST /sdk HTTP/1.1").is_none());
        assert!(looks_like_esxi_syslog(
            "[2008-05-07 09:50:04.857 'SOAP' 2260 trivia] Received soap response"
        ));
    }

    #[test]
    fn esxi_syslog_emits_one_start_per_process() {
        let text = "2024-12-12T01:44:43.728Z shell[71435]: [root]: ls -la\n2024-12-12T01:44:44.728Z shell[71435]: [root]: id\n2024-12-12T01:45:09.064Z info vpxa[71474]: Connected to hostd\nPOST /sdk HTTP/1.1\n";
        let mut a = esxi_syslog_reader(std::io::Cursor::new(text), Some("esx-2"));
        let ev: Vec<_> = a.by_ref().filter_map(Result::ok).collect();
        assert_eq!(ev.len(), 2);
        let HostEventKind::ProcessStart { image, cmdline, .. } = &ev[0].kind else {
            panic!()
        };
        assert_eq!(
            (image.as_str(), cmdline.as_deref()),
            ("shell", Some("ls -la"))
        );
        assert_eq!(a.stats().records_ignored, 2);
    }
}
