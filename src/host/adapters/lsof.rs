//! `lsof -i -n -P` output into `network_connect` events.
//!
//! macOS Endpoint Security (`eslogger`) has no network events, so a periodic
//! `lsof -i -n -P` snapshot is the host's view of which process owns which socket:
//!
//! ```text
//! COMMAND     PID  USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME
//! curl      4242 alice    5u  IPv4 0x8b7c9d2e3f4a5b6c      0t0  TCP 10.0.0.5:50514->203.0.113.9:443 (ESTABLISHED)
//! ```
//!
//! Only rows with a peer (`local->remote`) become events; `LISTEN` rows and unconnected
//! UDP sockets are counted as ignored, but their ports are remembered: a connection whose
//! local port was seen listening earlier in the same output is inbound. Without that,
//! a connection from a port below 1024 to a port at or above 1024 is taken as inbound,
//! anything else as outbound. lsof prints no time: the caller supplies the snapshot time,
//! and the host name. Works for lsof on Linux as well (platform is the caller's).

use super::{Endpoints, LineAdapter, LineParser, Pending, connect_kind, split_host_port};
use crate::host::{ConnDirection, HostEvent, HostProto, Platform};
use crate::time::Timestamp;
use std::collections::HashSet;
use std::io::BufRead;

/// Most listening ports remembered per snapshot.
const MAX_LISTEN_PORTS: usize = 65_536;

/// Line parser for `lsof -i -n -P` output.
pub struct LsofParser {
    host: String,
    timestamp: Timestamp,
    platform: Platform,
    listening: HashSet<(HostProto, u16)>,
}

impl LsofParser {
    /// A parser for one snapshot taken at `timestamp` on `host`.
    pub fn new(host: &str, timestamp: Timestamp, platform: Platform) -> Self {
        LsofParser {
            host: host.to_owned(),
            timestamp,
            platform,
            listening: HashSet::new(),
        }
    }
}

impl LineParser for LsofParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim();
        if t.is_empty() || t.starts_with("COMMAND") {
            return;
        }
        let tokens: Vec<&str> = t.split_whitespace().collect();
        let Some(proto_idx) = tokens.iter().position(|x| *x == "TCP" || *x == "UDP") else {
            return out.skip(line, "bad_lsof_row", "no TCP/UDP node column");
        };
        let proto = if tokens.get(proto_idx) == Some(&"TCP") {
            HostProto::Tcp
        } else {
            HostProto::Udp
        };
        let (Some(command), Some(pid)) = (
            tokens.first(),
            tokens.get(1).and_then(|p| p.parse::<u32>().ok()),
        ) else {
            return out.skip(line, "bad_lsof_row", "no COMMAND and PID columns");
        };
        let Some(name) = tokens.get(proto_idx.saturating_add(1)) else {
            return out.skip(line, "bad_lsof_row", "no NAME column");
        };
        let state = tokens
            .get(proto_idx.saturating_add(2))
            .copied()
            .unwrap_or("");
        let Some((local, remote)) = name.split_once("->") else {
            if let Some((_, port)) = name
                .rsplit_once(':')
                .and_then(|(a, p)| Some((a, p.parse::<u16>().ok()?)))
                && (state == "(LISTEN)" || proto == HostProto::Udp)
                && self.listening.len() < MAX_LISTEN_PORTS
            {
                self.listening.insert((proto, port));
            }
            return out.ignore();
        };
        let (Some(local), Some(remote)) = (split_host_port(local), split_host_port(remote)) else {
            return out.skip(line, "bad_address", format_args!("cannot parse {name}"));
        };
        let direction =
            if self.listening.contains(&(proto, local.1)) || (local.1 < 1024 && remote.1 >= 1024) {
                ConnDirection::Inbound
            } else {
                ConnDirection::Outbound
            };
        let ep = Endpoints {
            local,
            remote,
            direction,
        };
        out.event(HostEvent {
            timestamp: self.timestamp,
            host: self.host.clone(),
            platform: self.platform,
            kind: connect_kind(pid, Some(unescape_lsof(command)), proto, &ep, None),
        });
    }
}

/// lsof writes non-printable bytes of COMMAND as `\xNN` (a space is `\x20`).
fn unescape_lsof(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        out.push_str(rest.get(..i).unwrap_or(""));
        let hex = rest.get(i.saturating_add(2)..i.saturating_add(4));
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = rest.get(i.saturating_add(4)..).unwrap_or("");
            }
            None => {
                out.push_str("\\x");
                rest = rest.get(i.saturating_add(2)..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reader of one `lsof -i -n -P` snapshot taken at `timestamp` on a macOS host.
pub fn lsof_reader<R: BufRead>(
    reader: R,
    host: Option<&str>,
    timestamp: Timestamp,
) -> LineAdapter<R, LsofParser> {
    LineAdapter::new(
        reader,
        LsofParser::new(host.unwrap_or("unknown"), timestamp, Platform::Macos),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostEventKind;
    use crate::host::adapters::HostAdapter;

    const SAMPLE: &str = "COMMAND     PID  USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME
launchd       1  root   11u  IPv6 0x8b7c9d2e3f4a5b01      0t0  TCP *:22 (LISTEN)
curl       4242 alice    5u  IPv4 0x8b7c9d2e3f4a5b6c      0t0  TCP 10.0.0.5:50514->203.0.113.9:443 (ESTABLISHED)
sshd       5000  root    4u  IPv4 0x8b7c9d2e3f4a5b6d      0t0  TCP 10.0.0.5:22->198.51.100.7:61000 (ESTABLISHED)
Google\\x20  777 alice   30u  IPv6 0x8b7c9d2e3f4a5b6e      0t0  UDP [2001:db8::5]:55000->[2001:db8::53]:443
garbage line without columns
";

    #[test]
    fn lsof_rows_become_canonical_connections() {
        let mut a = lsof_reader(
            std::io::Cursor::new(SAMPLE),
            Some("mac-1"),
            Timestamp::from_secs_nanos(1_700_000_000, 0),
        );
        let items: Vec<_> = a.by_ref().collect();
        let events: Vec<_> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(events.len(), 3);
        let HostEventKind::NetworkConnect {
            pid,
            image,
            dest_ip,
            dest_port,
            src_port,
            direction,
            ..
        } = &events[0].kind
        else {
            panic!("not a connect");
        };
        assert_eq!(
            (*pid, image.as_deref(), *dest_port, *src_port),
            (4242, Some("curl"), 443, Some(50514))
        );
        assert_eq!(dest_ip.to_string(), "203.0.113.9");
        assert_eq!(*direction, ConnDirection::Outbound);
        // sshd on the listening port 22: inbound, src is the remote client
        let HostEventKind::NetworkConnect {
            src_ip,
            dest_port,
            direction,
            ..
        } = &events[1].kind
        else {
            panic!("not a connect");
        };
        assert_eq!(*direction, ConnDirection::Inbound);
        assert_eq!(
            src_ip.map(|i| i.to_string()).as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(*dest_port, 22);
        let HostEventKind::NetworkConnect { image, proto, .. } = &events[2].kind else {
            panic!("not a connect");
        };
        assert_eq!(image.as_deref(), Some("Google "));
        assert_eq!(*proto, HostProto::Udp);
        assert!(matches!(
            items.last(),
            Some(Err(crate::host::HostError::Parse { line: 6, .. }))
        ));
        assert_eq!(a.stats().records_ignored, 1);
        assert_eq!(events[0].host, "mac-1");
    }
}
