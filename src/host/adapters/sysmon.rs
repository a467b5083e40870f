//! Windows Sysmon and Security auditing (and Sysmon for Linux) into host events.
//!
//! Event ids read: Sysmon 1 (process create), 3 (network connection), 5 (process
//! terminated), 7 (image loaded); Security 4688 (process creation) and 5156 (WFP
//! connection permitted). Other ids are counted as ignored.
//!
//! Three carriers share one mapping (`WinRecord` → [`HostEvent`]):
//! - EVTX files ([`EvtxReader`], through the `evtx` crate, one chunk at a time);
//! - rendered XML (`<Event><System>..</System><EventData><Data Name=..>`), one or many
//!   events per line or spread over lines ([`sysmon_xml_reader`]);
//! - SIEM JSON lines ([`sysmon_json_reader`]): flat Mordor/nxlog fields, Winlogbeat
//!   `winlog.event_data.*`, evtx_dump-style `{"Event":{"System":..,"EventData":..}}`,
//!   event data embedded as a JSON or XML string, and Azure Syslog rows whose
//!   `SyslogMessage` holds Sysmon-for-Linux XML.
//!
//! Pitfalls handled (see the corpus MANIFEST):
//! - nxlog exports put the Sysmon *service* pid in a top-level `ProcessID`; the subject
//!   `ProcessId` is then only in `Message` and is taken from there.
//! - Times: Sysmon's own `UtcTime` is preferred; collector times (`@timestamp`,
//!   `TimeCreated`, `EventTime`) labelled `Z` are sometimes local time and are used only
//!   when the event has no `UtcTime` (Security events in JSON exports).
//! - `ProcessGuid` is kept without braces, lowercase. IPv6 is parsed as `IpAddr`
//!   (Sysmon writes it uncompressed). `&amp;`-style escapes in image names are decoded.
//! - Sysmon EID 3 orientation: `Initiated=true` means the Source side is local. For
//!   `Initiated=false` Sysmon is inconsistent, so the local (accepting) side is the one
//!   on a service port when the other is ephemeral (>= 32768), else the one whose host
//!   name alone matches the computer, else the one on the lower port.
//! - WFP 5156 always writes the local side as Source; `Direction` `%%14592` (inbound) flips
//!   the canonical tuple.
//! - Image paths of 5156 stay in the `\device\harddiskvolumeN\...` form the event has.

use super::{
    Endpoints, HostAdapter, LineAdapter, LineParser, Outcome, Pending, connect_kind, html_unescape,
    normalize_guid, parse_ip, parse_pid, parse_port,
};
use crate::host::{ConnDirection, HostError, HostEvent, HostEventKind, HostProto, Platform};
use crate::time::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Read, Seek};

/// One Windows-style event, whatever carried it.
#[derive(Debug, Default, Clone)]
pub(crate) struct WinRecord {
    pub event_id: u32,
    pub channel: String,
    pub provider: String,
    pub computer: Option<String>,
    /// `System/TimeCreated/@SystemTime` (real UTC in XML/EVTX; collector time in JSON).
    pub time_created: Option<Timestamp>,
    pub data: HashMap<String, String>,
    pub message: Option<String>,
}

impl WinRecord {
    fn get(&self, name: &str) -> Option<&str> {
        self.data
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && *s != "-")
    }

    /// A `Name: value` field of the rendered `Message` text (Sysmon writes
    /// `ProcessId: 4892`, Security writes `\tProcess ID:\t\t3188`).
    fn message_field(&self, name: &str) -> Option<&str> {
        let msg = self.message.as_deref()?;
        msg.lines().find_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix(name)?;
            let v = rest.strip_prefix(':')?.trim();
            (!v.is_empty()).then_some(v)
        })
    }

    fn is_sysmon(&self) -> bool {
        let c = self.channel.to_ascii_lowercase();
        c.contains("sysmon") || self.provider.to_ascii_lowercase().contains("sysmon")
    }

    fn is_security(&self) -> bool {
        self.channel.eq_ignore_ascii_case("security")
            || self
                .provider
                .eq_ignore_ascii_case("Microsoft-Windows-Security-Auditing")
    }

    fn platform(&self) -> Platform {
        if self.provider.starts_with("Linux-") || self.channel.starts_with("Linux-") {
            Platform::Linux
        } else {
            Platform::Windows
        }
    }

    /// Sysmon subject pid: `ProcessId`, else from `Message` (nxlog).
    fn sysmon_pid(&self) -> Option<u32> {
        self.get("ProcessId")
            .and_then(parse_pid)
            .or_else(|| self.message_field("ProcessId").and_then(parse_pid))
    }
}

/// Most `ProcessGuid → pid` pairs remembered by one reader.
const MAX_GUID_PIDS: usize = 65_536;

/// Remembers the pid of each Sysmon `ProcessGuid` seen with one, for exports that drop
/// `ProcessId` from some events (nxlog 2020 Mordor files have none in EID 7).
#[derive(Debug, Default)]
pub(crate) struct PidResolver {
    map: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl PidResolver {
    fn learn(&mut self, guid: &str, pid: u32) {
        if self.map.insert(guid.to_owned(), pid).is_none() {
            self.order.push_back(guid.to_owned());
            if self.order.len() > MAX_GUID_PIDS
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
        }
    }

    /// The pid of a Sysmon event: its own field, else the remembered pid of its
    /// `ProcessGuid`, else 0 when there is a `ProcessGuid` to join on.
    fn resolve(&mut self, rec: &WinRecord, guid: Option<&str>) -> Option<u32> {
        match (rec.sysmon_pid(), guid) {
            (Some(pid), Some(g)) => {
                self.learn(g, pid);
                Some(pid)
            }
            (Some(pid), None) => Some(pid),
            (None, Some(g)) => Some(self.map.get(g).copied().unwrap_or(0)),
            (None, None) => None,
        }
    }
}

fn image(s: Option<&str>) -> Option<String> {
    s.map(html_unescape)
}

/// Map a Windows event to a host event.
///
/// A Sysmon event without any pid but with a `ProcessGuid` gets the pid last seen with
/// that guid, or pid 0 ("unknown": join on `process_guid`).
pub(crate) fn convert(
    rec: &WinRecord,
    default_host: Option<&str>,
    pids: &mut PidResolver,
) -> Outcome {
    let sysmon = rec.is_sysmon();
    let security = rec.is_security();
    let relevant = match rec.event_id {
        1 | 3 | 5 | 7 => sysmon,
        4688 | 5156 => security,
        _ => false,
    };
    if !relevant {
        return Outcome::Ignored;
    }
    let timestamp = if sysmon {
        rec.get("UtcTime")
            .and_then(Timestamp::parse_rfc3339)
            .or(rec.time_created)
    } else {
        rec.time_created
    };
    let Some(timestamp) = timestamp else {
        return Outcome::Malformed(
            "no_timestamp",
            format!("event {} has no time", rec.event_id),
        );
    };
    let host = rec
        .computer
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| default_host.map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let platform = rec.platform();
    let guid = rec.get("ProcessGuid").and_then(normalize_guid);
    let kind = match rec.event_id {
        1 => {
            let Some(pid) = pids.resolve(rec, guid.as_deref()) else {
                return Outcome::Malformed("no_pid", "sysmon event 1 without ProcessId".into());
            };
            HostEventKind::ProcessStart {
                pid,
                ppid: rec.get("ParentProcessId").and_then(parse_pid),
                image: image(rec.get("Image")).unwrap_or_default(),
                cmdline: rec.get("CommandLine").map(str::to_owned),
                user: rec.get("User").map(str::to_owned),
                process_guid: guid,
                parent_image: image(rec.get("ParentImage")),
                parent_guid: rec.get("ParentProcessGuid").and_then(normalize_guid),
            }
        }
        3 => {
            let Some(pid) = pids.resolve(rec, guid.as_deref()) else {
                return Outcome::Malformed("no_pid", "sysmon event 3 without ProcessId".into());
            };
            match sysmon_endpoints(rec) {
                Ok((proto, ep)) => connect_kind(pid, image(rec.get("Image")), proto, &ep, guid),
                Err(None) => return Outcome::Ignored,
                Err(Some((cat, detail))) => return Outcome::Malformed(cat, detail.to_owned()),
            }
        }
        5 => {
            let Some(pid) = pids.resolve(rec, guid.as_deref()) else {
                return Outcome::Malformed("no_pid", "sysmon event 5 without ProcessId".into());
            };
            HostEventKind::ProcessExit {
                pid,
                process_guid: guid,
            }
        }
        7 => {
            let Some(pid) = pids.resolve(rec, guid.as_deref()) else {
                return Outcome::Malformed("no_pid", "sysmon event 7 without ProcessId".into());
            };
            let Some(module) = image(rec.get("ImageLoaded")) else {
                return Outcome::Malformed(
                    "no_module",
                    "sysmon event 7 without ImageLoaded".into(),
                );
            };
            HostEventKind::ModuleLoad {
                pid,
                image: image(rec.get("Image")),
                module,
                process_guid: guid,
            }
        }
        4688 => {
            let Some(pid) = rec
                .get("NewProcessId")
                .and_then(parse_pid)
                .or_else(|| rec.message_field("New Process ID").and_then(parse_pid))
            else {
                return Outcome::Malformed(
                    "no_pid",
                    "security event 4688 without NewProcessId".into(),
                );
            };
            let user = match (rec.get("SubjectDomainName"), rec.get("SubjectUserName")) {
                (Some(d), Some(u)) => Some(format!("{d}\\{u}")),
                (None, Some(u)) => Some(u.to_owned()),
                _ => None,
            };
            HostEventKind::ProcessStart {
                pid,
                ppid: rec
                    .message_field("Creator Process ID")
                    .and_then(parse_pid)
                    .or_else(|| rec.get("ProcessId").and_then(parse_pid)),
                image: image(rec.get("NewProcessName")).unwrap_or_default(),
                cmdline: rec.get("CommandLine").map(str::to_owned),
                user,
                process_guid: None,
                parent_image: image(rec.get("ParentProcessName")),
                parent_guid: None,
            }
        }
        _ => {
            // 5156
            let pid = rec
                .get("ProcessId")
                .and_then(parse_pid)
                .or_else(|| rec.message_field("Process ID").and_then(parse_pid))
                .or_else(|| rec.get("ProcessID").and_then(parse_pid));
            let Some(pid) = pid else {
                return Outcome::Malformed(
                    "no_pid",
                    "security event 5156 without ProcessId".into(),
                );
            };
            let proto = match rec.get("Protocol") {
                Some("6") => HostProto::Tcp,
                Some("17") => HostProto::Udp,
                _ => return Outcome::Ignored,
            };
            let local = endpoint(rec.get("SourceAddress"), rec.get("SourcePort"));
            let remote = endpoint(rec.get("DestAddress"), rec.get("DestPort"));
            let (Some(local), Some(remote)) = (local, remote) else {
                return Outcome::Malformed(
                    "bad_address",
                    "security event 5156 address or port".into(),
                );
            };
            let direction = match rec.get("Direction") {
                Some(d) if d == "%%14592" || d.eq_ignore_ascii_case("inbound") => {
                    ConnDirection::Inbound
                }
                _ => ConnDirection::Outbound,
            };
            connect_kind(
                pid,
                image(rec.get("Application")),
                proto,
                &Endpoints {
                    local,
                    remote,
                    direction,
                },
                None,
            )
        }
    };
    Outcome::Event(HostEvent {
        timestamp,
        host,
        platform,
        kind,
    })
}

fn endpoint(ip: Option<&str>, port: Option<&str>) -> Option<(std::net::IpAddr, u16)> {
    Some((parse_ip(ip?)?, parse_port(port?)?))
}

fn same_host(a: Option<&str>, computer: Option<&str>) -> bool {
    match (a, computer) {
        (Some(a), Some(c)) => {
            let a = a.split('.').next().unwrap_or(a);
            let c = c.split('.').next().unwrap_or(c);
            !a.is_empty() && a.eq_ignore_ascii_case(c)
        }
        _ => false,
    }
}

/// Lowest port taken as a client's ephemeral port (Linux 32768+, Windows 49152+).
const EPHEMERAL_PORT_MIN: u16 = 32768;

fn sysmon_endpoints(
    rec: &WinRecord,
) -> Result<(HostProto, Endpoints), Option<(&'static str, &'static str)>> {
    let proto = match rec.get("Protocol").map(str::to_ascii_lowercase).as_deref() {
        Some("tcp") => HostProto::Tcp,
        Some("udp") => HostProto::Udp,
        _ => return Err(None),
    };
    let src = endpoint(rec.get("SourceIp"), rec.get("SourcePort"));
    let dst = endpoint(rec.get("DestinationIp"), rec.get("DestinationPort"));
    let (Some(src), Some(dst)) = (src, dst) else {
        return Err(Some((
            "bad_address",
            "sysmon event 3 source or destination",
        )));
    };
    if src.0.is_unspecified() && dst.0.is_unspecified() {
        return Err(Some((
            "no_endpoint",
            "sysmon event 3 with 0.0.0.0 on both sides",
        )));
    }
    let initiated = rec
        .get("Initiated")
        .map(|s| s.eq_ignore_ascii_case("true"))
        .unwrap_or(true);
    if initiated {
        return Ok((
            proto,
            Endpoints {
                local: src,
                remote: dst,
                direction: ConnDirection::Outbound,
            },
        ));
    }
    // Inbound: find which side is this host.
    let computer = rec.computer.as_deref();
    let src_named = same_host(rec.get("SourceHostname"), computer);
    let dst_named = same_host(rec.get("DestinationHostname"), computer);
    let (src_eph, dst_eph) = (src.1 >= EPHEMERAL_PORT_MIN, dst.1 >= EPHEMERAL_PORT_MIN);
    let src_local = if src_eph != dst_eph {
        // Accepted connection: this host is on the service (non-ephemeral) port.
        !src_eph
    } else if src_named != dst_named {
        src_named
    } else {
        // Both or neither named after this host (loopback, no names): the
        // accepting side is the one on the lower (service) port.
        src.1 < dst.1
    };
    let (local, remote) = if src_local { (src, dst) } else { (dst, src) };
    Ok((
        proto,
        Endpoints {
            local,
            remote,
            direction: ConnDirection::Inbound,
        },
    ))
}

// ---- XML ----

/// Parse one rendered `<Event>` element; when it is not well-formed XML (syslog
/// truncation at 2 KiB, `&lt ` without `;` in Sysmon for Linux), fall back to a lenient
/// scan of the System fields and `<Data Name=..>` elements.
pub(crate) fn record_from_xml(xml: &str) -> Result<WinRecord, String> {
    match record_from_xml_strict(xml) {
        Ok(r) => Ok(r),
        Err(e) => record_from_xml_lenient(xml).ok_or(e),
    }
}

/// Text between `open` and the next `close` after it.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)?.saturating_add(open.len());
    let rest = s.get(start..)?;
    let end = rest.find(close)?;
    rest.get(..end)
}

fn record_from_xml_lenient(xml: &str) -> Option<WinRecord> {
    let event_id = between(xml, "<EventID", "</EventID>")
        .and_then(|t| t.rsplit('>').next())
        .and_then(|t| t.trim().parse().ok())?;
    let mut rec = WinRecord {
        event_id,
        channel: between(xml, "<Channel>", "</Channel>")
            .unwrap_or("")
            .to_owned(),
        provider: between(xml, "<Provider Name=\"", "\"")
            .unwrap_or("")
            .to_owned(),
        computer: between(xml, "<Computer>", "</Computer>").map(html_unescape),
        time_created: between(xml, "SystemTime=\"", "\"").and_then(Timestamp::parse_rfc3339),
        ..WinRecord::default()
    };
    let mut rest = xml;
    while let Some(i) = rest.find("<Data Name=") {
        let after = rest.get(i.saturating_add(11)..).unwrap_or("");
        let quote = after.chars().next().unwrap_or('"');
        let after = after.get(1..).unwrap_or("");
        let Some(name_end) = after.find(quote) else {
            break;
        };
        let name = after.get(..name_end).unwrap_or("");
        let after = after.get(name_end.saturating_add(1)..).unwrap_or("");
        if let Some(body) = after.strip_prefix('>') {
            // A value cut by truncation has no `</Data>`: keep what is there.
            let end = body.find("</Data>").unwrap_or(body.len());
            let value = body.get(..end).unwrap_or("");
            rec.data.insert(name.to_owned(), html_unescape(value));
            rest = body.get(end..).unwrap_or("");
        } else {
            rec.data.insert(name.to_owned(), String::new());
            rest = after;
        }
    }
    Some(rec)
}

fn record_from_xml_strict(xml: &str) -> Result<WinRecord, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "Event" {
        return Err(format!("root element is {}", root.tag_name().name()));
    }
    let mut rec = WinRecord::default();
    for section in root.children().filter(|n| n.is_element()) {
        match section.tag_name().name() {
            "System" => {
                for f in section.children().filter(|n| n.is_element()) {
                    match f.tag_name().name() {
                        "EventID" => {
                            rec.event_id = f.text().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
                        }
                        "Channel" => rec.channel = f.text().unwrap_or("").trim().to_owned(),
                        "Computer" => rec.computer = f.text().map(|t| t.trim().to_owned()),
                        "Provider" => rec.provider = f.attribute("Name").unwrap_or("").to_owned(),
                        "TimeCreated" => {
                            rec.time_created =
                                f.attribute("SystemTime").and_then(Timestamp::parse_rfc3339)
                        }
                        _ => {}
                    }
                }
            }
            "EventData" | "UserData" => collect_data(section, &mut rec.data),
            "RenderingInfo" => {
                rec.message = section
                    .children()
                    .find(|n| n.tag_name().name() == "Message")
                    .and_then(|n| n.text())
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    Ok(rec)
}

fn collect_data(node: roxmltree::Node<'_, '_>, data: &mut HashMap<String, String>) {
    for d in node.descendants().filter(|n| n.is_element()) {
        if d.tag_name().name() == "Data" {
            if let Some(name) = d.attribute("Name") {
                data.insert(name.to_owned(), d.text().unwrap_or("").to_owned());
            }
        } else if !d.children().any(|c| c.is_element())
            && let Some(t) = d.text()
        {
            data.entry(d.tag_name().name().to_owned())
                .or_insert_with(|| t.to_owned());
        }
    }
}

/// Longest single `<Event>` element accepted by the XML reader (1 MiB).
const MAX_XML_EVENT: usize = 1 << 20;

/// Line parser for rendered XML: finds `<Event ...>...</Event>` across or within lines.
pub struct SysmonXmlParser {
    pids: PidResolver,
    buf: String,
    start_line: u64,
    default_host: Option<String>,
}

impl LineParser for SysmonXmlParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        if self.buf.is_empty() {
            self.start_line = line;
        }
        self.buf.push_str(text);
        self.buf.push('\n');
        loop {
            let Some(start) = find_event_start(&self.buf) else {
                // Nothing open: drop the text (prolog, <Events> wrapper, blank lines).
                self.buf.clear();
                return;
            };
            let Some(end_rel) = self.buf.get(start..).and_then(|s| s.find("</Event>")) else {
                if self.buf.len() > MAX_XML_EVENT {
                    out.skip(
                        self.start_line,
                        "event_too_long",
                        format_args!("over {MAX_XML_EVENT} bytes"),
                    );
                    self.buf.clear();
                } else if start > 0 {
                    self.buf.drain(..start);
                }
                return;
            };
            let end = start
                .saturating_add(end_rel)
                .saturating_add("</Event>".len());
            let chunk = self.buf.get(start..end).unwrap_or("");
            match record_from_xml(chunk) {
                Ok(rec) => out.outcome(
                    self.start_line,
                    convert(&rec, self.default_host.as_deref(), &mut self.pids),
                ),
                Err(e) => out.skip(self.start_line, "bad_xml", e),
            }
            self.buf.drain(..end);
            self.start_line = line;
        }
    }

    fn finish(&mut self, out: &mut Pending) {
        if find_event_start(&self.buf).is_some() {
            out.skip(
                self.start_line,
                "truncated_xml",
                "unterminated <Event> at end of input",
            );
        }
        self.buf.clear();
    }
}

/// Offset of the next `<Event>` or `<Event ` (not `<Events>`).
fn find_event_start(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s.get(from..).and_then(|r| r.find("<Event")) {
        let at = from.saturating_add(i);
        match s.as_bytes().get(at.saturating_add(6)) {
            Some(b'>' | b' ' | b'\t' | b'\r' | b'\n') => return Some(at),
            _ => from = at.saturating_add(6),
        }
    }
    None
}

/// Reader of rendered event XML (Windows or Sysmon for Linux).
pub fn sysmon_xml_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, SysmonXmlParser> {
    LineAdapter::new(
        reader,
        SysmonXmlParser {
            pids: PidResolver::default(),
            buf: String::new(),
            start_line: 0,
            default_host: default_host.map(str::to_owned),
        },
    )
}

// ---- JSON ----

fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_time(obj: &serde_json::Map<String, serde_json::Value>, keys: &[&str]) -> Option<Timestamp> {
    keys.iter()
        .filter_map(|k| obj.get(*k)?.as_str())
        .find_map(Timestamp::parse_rfc3339)
}

fn merge_flat(
    obj: &serde_json::Map<String, serde_json::Value>,
    data: &mut HashMap<String, String>,
) {
    for (k, v) in obj {
        if let Some(t) = value_text(v) {
            data.entry(k.clone()).or_insert(t);
        }
    }
}

/// Merge embedded event data: an object, a JSON string or an XML string of `<Data>`.
fn merge_embedded(v: &serde_json::Value, data: &mut HashMap<String, String>) {
    match v {
        serde_json::Value::Object(o) => {
            // evtx_dump JSON keeps `{"Data": [{"#text": .., "Name": ..}]}` sometimes
            merge_flat(o, data);
        }
        serde_json::Value::String(s) => {
            let t = s.trim();
            if t.starts_with('{') {
                if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(t) {
                    merge_flat(&o, data);
                }
            } else if t.starts_with('<') {
                let wrapped = format!("<EventData>{t}</EventData>");
                if let Ok(doc) = roxmltree::Document::parse(&wrapped) {
                    collect_data(doc.root_element(), data);
                }
            }
        }
        _ => {}
    }
}

/// Parse one JSON-lines row of any supported Windows-event shape.
pub(crate) fn record_from_json(v: &serde_json::Value) -> Result<Option<WinRecord>, String> {
    let Some(obj) = v.as_object() else {
        return Err("line is not a JSON object".into());
    };
    // Azure Syslog row carrying Sysmon-for-Linux XML.
    if let Some(msg) = obj.get("SyslogMessage").and_then(|m| m.as_str()) {
        if let Some(start) = find_event_start(msg) {
            let mut rec = record_from_xml(msg.get(start..).unwrap_or(""))?;
            if rec.computer.is_none() {
                rec.computer = ["Computer", "HostName"]
                    .iter()
                    .find_map(|k| obj.get(*k).and_then(|h| h.as_str()).map(str::to_owned));
            }
            return Ok(Some(rec));
        }
        return Ok(None);
    }
    // evtx_dump JSON: {"Event": {"System": {...}, "EventData": {...}}}
    if let Some(ev) = obj.get("Event").and_then(|e| e.as_object()) {
        let mut rec = WinRecord::default();
        if let Some(sys) = ev.get("System").and_then(|s| s.as_object()) {
            rec.event_id = sys
                .get("EventID")
                .and_then(|e| {
                    e.as_u64()
                        .or_else(|| e.get("#text").and_then(|t| t.as_u64()))
                })
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            rec.channel = sys.get("Channel").and_then(value_text).unwrap_or_default();
            rec.computer = sys.get("Computer").and_then(value_text);
            rec.provider = sys
                .get("Provider")
                .and_then(|p| {
                    p.get("#attributes")
                        .and_then(|a| a.get("Name"))
                        .or_else(|| p.get("Name"))
                })
                .and_then(value_text)
                .unwrap_or_default();
            rec.time_created = sys
                .get("TimeCreated")
                .and_then(|t| {
                    t.get("#attributes")
                        .and_then(|a| a.get("SystemTime"))
                        .or_else(|| t.get("SystemTime"))
                })
                .and_then(|t| t.as_str())
                .and_then(Timestamp::parse_rfc3339);
        }
        if let Some(d) = ev.get("EventData").or_else(|| ev.get("UserData")) {
            merge_embedded(d, &mut rec.data);
        }
        return Ok(Some(rec));
    }
    // Winlogbeat: winlog.event_data.*
    if let Some(w) = obj.get("winlog").and_then(|w| w.as_object()) {
        let mut rec = WinRecord {
            event_id: w
                .get("event_id")
                .and_then(value_text)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            channel: w.get("channel").and_then(value_text).unwrap_or_default(),
            provider: w
                .get("provider_name")
                .and_then(value_text)
                .unwrap_or_default(),
            computer: w.get("computer_name").and_then(value_text).or_else(|| {
                obj.get("host")
                    .and_then(|h| h.get("name"))
                    .and_then(value_text)
            }),
            time_created: json_time(obj, &["@timestamp"]),
            data: HashMap::new(),
            message: obj.get("message").and_then(value_text),
        };
        if let Some(d) = w.get("event_data") {
            merge_embedded(d, &mut rec.data);
        }
        if let Some(pid) = w
            .get("process")
            .and_then(|p| p.get("pid"))
            .and_then(value_text)
        {
            rec.data.entry("ExecutionProcessID".into()).or_insert(pid);
        }
        return Ok(Some(rec));
    }
    // Flat Mordor / nxlog / SIEM rows.
    let Some(event_id) = obj
        .get("EventID")
        .or_else(|| obj.get("EventId"))
        .or_else(|| obj.get("event_id"))
        .and_then(value_text)
        .and_then(|t| t.trim().parse::<u32>().ok())
    else {
        return Err("no EventID".into());
    };
    let mut rec = WinRecord {
        event_id,
        channel: obj.get("Channel").and_then(value_text).unwrap_or_default(),
        provider: ["SourceName", "ProviderName", "Provider"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(value_text))
            .unwrap_or_default(),
        computer: ["Hostname", "Computer", "ComputerName", "MachineName"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(value_text)),
        time_created: json_time(
            obj,
            &["TimeCreated", "@timestamp", "EventTime", "TimeGenerated"],
        ),
        data: HashMap::new(),
        message: obj.get("Message").and_then(value_text),
    };
    for key in ["EventData", "EventDataXml", "event_data"] {
        if let Some(d) = obj.get(key) {
            merge_embedded(d, &mut rec.data);
        }
    }
    merge_flat(obj, &mut rec.data);
    Ok(Some(rec))
}

/// Line parser for SIEM JSON-lines exports of Windows events.
pub struct SysmonJsonParser {
    pids: PidResolver,
    default_host: Option<String>,
}

impl LineParser for SysmonJsonParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim().trim_end_matches(',');
        if t.is_empty() || t == "[" || t == "]" {
            return;
        }
        let v: serde_json::Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(e) => return out.skip(line, "bad_json", e),
        };
        match record_from_json(&v) {
            Ok(Some(rec)) => out.outcome(
                line,
                convert(&rec, self.default_host.as_deref(), &mut self.pids),
            ),
            Ok(None) => out.ignore(),
            Err(e) => out.skip(line, "not_an_event", e),
        }
    }
}

/// Reader of SIEM JSON-lines exports of Windows (and Sysmon-for-Linux) events.
pub fn sysmon_json_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, SysmonJsonParser> {
    LineAdapter::new(
        reader,
        SysmonJsonParser {
            pids: PidResolver::default(),
            default_host: default_host.map(str::to_owned),
        },
    )
}

// ---- EVTX ----

/// Reader of Windows EVTX files, one 64 KiB chunk in memory at a time.
///
/// Records are rendered to XML by the `evtx` crate and mapped as rendered XML is; a
/// record number stands in for the line number in errors.
pub struct EvtxReader<R: Read + Seek> {
    chunks: evtx::IntoIterChunks<R>,
    settings: std::sync::Arc<evtx::ParserSettings>,
    queue: VecDeque<Result<HostEvent, HostError>>,
    default_host: Option<String>,
    pids: PidResolver,
    stats: crate::host::adapters::AdapterStats,
    done: bool,
}

impl<R: Read + Seek> EvtxReader<R> {
    /// Open an EVTX stream.
    ///
    /// # Errors
    /// [`HostError::Container`] when the file header is not EVTX.
    pub fn new(reader: R, default_host: Option<&str>) -> Result<Self, HostError> {
        let settings = evtx::ParserSettings::new().num_threads(1);
        let parser = evtx::EvtxParser::from_read_seek(reader)
            .map_err(|e| HostError::Container {
                container: "evtx",
                reason: e.to_string(),
            })?
            .with_configuration(settings.clone());
        Ok(EvtxReader {
            chunks: parser.into_chunks(),
            settings: std::sync::Arc::new(settings),
            queue: VecDeque::new(),
            default_host: default_host.map(str::to_owned),
            pids: PidResolver::default(),
            stats: Default::default(),
            done: false,
        })
    }

    fn load_chunk(&mut self, mut data: evtx::EvtxChunkData) {
        let first = data.header.first_event_record_id;
        let mut chunk = match data.parse(self.settings.clone()) {
            Ok(c) => c,
            Err(e) => {
                self.queue.push_back(Err(HostError::Parse {
                    line: first,
                    reason: format!("bad_evtx_chunk: {e}"),
                }));
                return;
            }
        };
        let mut pending = Pending::default();
        for (i, rec) in chunk.iter().enumerate() {
            let line = first.saturating_add(i as u64);
            match rec.and_then(|r| r.into_xml()) {
                Ok(x) => match record_from_xml(&x.data) {
                    Ok(w) => pending.outcome(
                        x.event_record_id,
                        convert(&w, self.default_host.as_deref(), &mut self.pids),
                    ),
                    Err(e) => pending.skip(x.event_record_id, "bad_xml", e),
                },
                Err(e) => pending.skip(line, "bad_evtx_record", e),
            }
        }
        self.stats.records_ignored = self.stats.records_ignored.saturating_add(pending.ignored);
        self.queue.extend(pending.queue);
    }
}

impl<R: Read + Seek> Iterator for EvtxReader<R> {
    type Item = Result<HostEvent, HostError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                self.stats.record(&item);
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.chunks.next() {
                None => self.done = true,
                Some(Ok(data)) => self.load_chunk(data),
                Some(Err(e)) => self.queue.push_back(Err(HostError::Parse {
                    line: 0,
                    reason: format!("bad_evtx_chunk: {e}"),
                })),
            }
        }
    }
}

impl<R: Read + Seek> HostAdapter for EvtxReader<R> {
    fn stats(&self) -> &crate::host::adapters::AdapterStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::adapters::HostAdapter;
    use std::io::Cursor;

    fn events(
        text: &str,
    ) -> (
        Vec<Result<HostEvent, HostError>>,
        crate::host::adapters::AdapterStats,
    ) {
        let mut a = sysmon_json_reader(Cursor::new(text.to_owned()), Some("fallback"));
        let items: Vec<_> = a.by_ref().collect();
        (items, a.stats().clone())
    }

    #[test]
    fn flat_eid1_prefers_utctime_and_normalizes_guid_and_escapes() {
        let line = r#"{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","SourceName":"Microsoft-Windows-Sysmon","Hostname":"WS5","@timestamp":"2021-06-11T09:07:15.635Z","UtcTime":"2021-06-12 01:07:15.6331234","ProcessGuid":"{E2C04BB9-08C3-60C4-1C17-400100000000}","ProcessId":"2164","Image":"C:\\Tools\\a&amp;b.exe","CommandLine":"a.exe -x","User":"WS5\\bob","ParentProcessId":"5632","ParentImage":"C:\\Windows\\System32\\cmd.exe","ParentProcessGuid":"{E2C04BB9-D0F0-60C3-48DA-EC0000000000}"}"#;
        let (items, stats) = events(line);
        let ev = items[0].as_ref().unwrap();
        assert_eq!(ev.timestamp.to_string(), "2021-06-12T01:07:15.633123Z");
        assert_eq!(ev.host, "WS5");
        assert_eq!(ev.platform, Platform::Windows);
        let HostEventKind::ProcessStart {
            pid,
            ppid,
            image,
            process_guid,
            parent_guid,
            ..
        } = &ev.kind
        else {
            panic!("not a process start");
        };
        assert_eq!((*pid, *ppid), (2164, Some(5632)));
        assert_eq!(image, "C:\\Tools\\a&b.exe");
        assert_eq!(
            process_guid.as_deref(),
            Some("e2c04bb9-08c3-60c4-1c17-400100000000")
        );
        assert_eq!(
            parent_guid.as_deref(),
            Some("e2c04bb9-d0f0-60c3-48da-ec0000000000")
        );
        assert_eq!(stats.count("process_start"), 1);
    }

    #[test]
    fn nxlog_row_takes_subject_pid_from_message_not_service_pid() {
        let line = r#"{"EventID":7,"Channel":"Microsoft-Windows-Sysmon/Operational","SourceName":"Microsoft-Windows-Sysmon","Hostname":"IT001.shire.com","ProcessID":3140,"UtcTime":"2019-12-05 01:49:48.010","ProcessGuid":"{a158f72c-623c-5de8-0000-0010b14b7400}","Image":"C:\\Windows\\System32\\gpupdate.exe","ImageLoaded":"C:\\Windows\\System32\\bcrypt.dll","Message":"Image loaded:\r\nRuleName: \r\nProcessGuid: {a158f72c-623c-5de8-0000-0010b14b7400}\r\nProcessId: 4892\r\nImage: C:\\Windows\\System32\\gpupdate.exe"}"#;
        let (items, _) = events(line);
        let HostEventKind::ModuleLoad { pid, module, .. } = &items[0].as_ref().unwrap().kind else {
            panic!("not a module load");
        };
        assert_eq!(*pid, 4892);
        assert!(module.ends_with("bcrypt.dll"));
    }

    #[test]
    fn eid7_without_any_pid_uses_pid_learned_from_guid_else_zero() {
        let text = [
            r#"{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"h","UtcTime":"2020-09-19 21:17:00.000","ProcessGuid":"{b34bc01c-add5-5f66-2210-000000000400}","ProcessId":"812","Image":"C:\\x\\InstallUtil.exe"}"#,
            r#"{"EventID":7,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"h","UtcTime":"2020-09-19 21:17:01.000","ProcessGuid":"{b34bc01c-add5-5f66-2210-000000000400}","ImageLoaded":"C:\\Windows\\System32\\rsaenh.dll"}"#,
            r#"{"EventID":7,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"h","UtcTime":"2020-09-19 21:17:02.000","ProcessGuid":"{b34bc01c-0000-0000-0000-000000000999}","ImageLoaded":"C:\\Windows\\System32\\crypt32.dll"}"#,
            r#"{"EventID":7,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"h","UtcTime":"2020-09-19 21:17:02.000","ImageLoaded":"C:\\Windows\\System32\\crypt32.dll"}"#,
        ]
        .join("\n");
        let (items, stats) = events(&text);
        assert_eq!(items[1].as_ref().unwrap().kind.pid(), 812);
        assert_eq!(items[2].as_ref().unwrap().kind.pid(), 0);
        assert!(
            matches!(&items[3], Err(HostError::Parse { line: 4, reason }) if reason.starts_with("no_pid"))
        );
        assert_eq!(stats.skip_reasons.get("no_pid"), Some(&1));
    }

    #[test]
    fn inbound_eid3_is_oriented_by_host_name_and_ipv6_is_normalized() {
        let line = r#"{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"HFDC01.shire.com","UtcTime":"2019-12-05 01:49:28.817","ProcessId":"4","Image":"System","Protocol":"tcp","Initiated":"false","SourceIp":"fe80:0:0:0:5d54:ed5a:760f:c4ff","SourceHostname":"-","SourcePort":"59324","DestinationIp":"fe80:0:0:0:5d54:ed5a:760f:c4fe","DestinationHostname":"HFDC01.shire.com","DestinationPort":"445"}"#;
        let (items, _) = events(line);
        let HostEventKind::NetworkConnect {
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            direction,
            proto,
            ..
        } = &items[0].as_ref().unwrap().kind
        else {
            panic!("not a connect");
        };
        assert_eq!(*direction, ConnDirection::Inbound);
        assert_eq!(*proto, HostProto::Tcp);
        assert_eq!(src_ip.unwrap().to_string(), "fe80::5d54:ed5a:760f:c4ff");
        assert_eq!(*src_port, Some(59324));
        assert_eq!(dest_ip.to_string(), "fe80::5d54:ed5a:760f:c4fe");
        assert_eq!(*dest_port, 445);
    }

    #[test]
    fn inbound_eid3_without_host_names_puts_service_port_on_dest() {
        // Sysmon wrote the local listener as Source here.
        let line = r#"{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"ws","UtcTime":"2019-12-05 01:49:28.817","ProcessId":"900","Protocol":"tcp","Initiated":"false","SourceIp":"10.0.0.2","SourcePort":"3389","DestinationIp":"10.0.0.9","DestinationPort":"50123"}"#;
        let (items, _) = events(line);
        let HostEventKind::NetworkConnect {
            src_ip,
            dest_port,
            direction,
            ..
        } = &items[0].as_ref().unwrap().kind
        else {
            panic!("not a connect");
        };
        assert_eq!(*direction, ConnDirection::Inbound);
        assert_eq!(src_ip.unwrap().to_string(), "10.0.0.9");
        assert_eq!(*dest_port, 3389);
    }

    #[test]
    fn security_5156_and_4688_map_pids_and_direction() {
        let text = [
            r#"{"EventID":5156,"Channel":"Security","SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"Pedro01","TimeCreated":"2022-08-04T08:36:15.748Z","ProcessID":"3720","Application":"\\device\\harddiskvolume2\\windows\\system32\\svchost.exe","Direction":"%%14592","SourceAddress":"192.168.56.43","SourcePort":"3389","DestAddress":"192.168.56.40","DestPort":"50000","Protocol":"6"}"#,
            r#"{"EventID":4688,"Channel":"Security","Hostname":"Pedro01","TimeCreated":"2022-08-04T08:36:23.570Z","NewProcessId":"0x2560","NewProcessName":"C:\\Windows\\System32\\smartscreen.exe","ProcessId":"0x31c","CommandLine":"smartscreen.exe -Embedding","SubjectDomainName":"WORKGROUP","SubjectUserName":"PEDRO01$","ParentProcessName":"C:\\Windows\\System32\\svchost.exe"}"#,
        ]
        .join("\n");
        let (items, _) = events(&text);
        let HostEventKind::NetworkConnect {
            pid,
            src_ip,
            dest_port,
            direction,
            ..
        } = &items[0].as_ref().unwrap().kind
        else {
            panic!("not a connect");
        };
        assert_eq!(
            (*pid, *dest_port, *direction),
            (3720, 3389, ConnDirection::Inbound)
        );
        assert_eq!(src_ip.unwrap().to_string(), "192.168.56.40");
        let HostEventKind::ProcessStart {
            pid, ppid, user, ..
        } = &items[1].as_ref().unwrap().kind
        else {
            panic!("not a start");
        };
        assert_eq!((*pid, *ppid), (0x2560, Some(0x31c)));
        assert_eq!(user.as_deref(), Some("WORKGROUP\\PEDRO01$"));
    }

    #[test]
    fn winlogbeat_and_embedded_xml_shapes_are_read() {
        let text = [
            r#"{"@timestamp":"2023-01-01T00:00:00Z","winlog":{"event_id":"5","channel":"Microsoft-Windows-Sysmon/Operational","provider_name":"Microsoft-Windows-Sysmon","computer_name":"beat-1","event_data":{"UtcTime":"2023-01-01 00:00:01.000","ProcessGuid":"{aaaaaaaa-0000-0000-0000-000000000001}","ProcessId":"77","Image":"C:\\a.exe"}}}"#,
            r#"{"EventID":7,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"x","EventData":"<Data Name=\"UtcTime\">2023-01-01 00:00:02.000</Data><Data Name=\"ProcessId\">78</Data><Data Name=\"ImageLoaded\">C:\\w\\ncrypt.dll</Data>"}"#,
            "{not json",
        ]
        .join("\n");
        let (items, stats) = events(&text);
        assert_eq!(items[0].as_ref().unwrap().host, "beat-1");
        assert!(matches!(
            items[0].as_ref().unwrap().kind,
            HostEventKind::ProcessExit { pid: 77, .. }
        ));
        assert!(
            matches!(&items[1].as_ref().unwrap().kind, HostEventKind::ModuleLoad { pid: 78, module, .. } if module.ends_with("ncrypt.dll"))
        );
        assert!(matches!(items[2], Err(HostError::Parse { line: 3, .. })));
        assert_eq!(stats.lines_skipped, 1);
    }

    #[test]
    fn xml_reader_handles_split_joined_and_broken_events() {
        let ev = |pid: u32| {
            format!(
                "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Linux-Sysmon'/><EventID>5</EventID><TimeCreated SystemTime='2022-05-11T18:10:20.399931000Z'/><Channel>Linux-Sysmon/Operational</Channel><Computer>UBUNTU5</Computer></System><EventData><Data Name='UtcTime'>2022-05-11 18:10:20.395</Data><Data Name='ProcessGuid'>{{94325212-f5aa-627b-082b-60e4b9550000}}</Data><Data Name='ProcessId'>{pid}</Data><Data Name='Image'>&lt;unknown&gt;</Data></EventData></Event>"
            )
        };
        let split = ev(3).replace("<EventData>", "\n<EventData>\n");
        let text = format!(
            "<Events>\n{}{}\n{}\n<Event><System><EventID>1</EventID></Sys\n</Events>\n",
            ev(1),
            ev(2),
            split
        );
        let mut a = sysmon_xml_reader(Cursor::new(text), None);
        let items: Vec<_> = a.by_ref().collect();
        let pids: Vec<u32> = items
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|e| e.kind.pid())
            .collect();
        assert_eq!(pids, vec![1, 2, 3]);
        let first = items[0].as_ref().unwrap();
        assert_eq!(first.platform, Platform::Linux);
        assert_eq!(first.host, "UBUNTU5");
        assert_eq!(a.stats().lines_skipped, 1);
    }

    #[test]
    fn lenient_xml_salvages_truncated_and_unescaped_events() {
        let cut = "<Event><System><Provider Name=\"Linux-Sysmon\"/><EventID>1</EventID><TimeCreated SystemTime=\"2022-05-11T18:10:21.990Z\"/><Channel>Linux-Sysmon/Operational</Channel><Computer>UBUNTU5</Computer></System><EventData><Data Name=\"UtcTime\">2022-05-11 18:10:21.990</Data><Data Name=\"ProcessId\">17790</Data><Data Name=\"Image\">&lt unknown process&gt </Data><Data Name=\"CommandLine\">bash -c {echo,YmFz";
        let rec = record_from_xml(cut).unwrap();
        assert_eq!(rec.event_id, 1);
        assert_eq!(rec.get("ProcessId"), Some("17790"));
        assert_eq!(rec.get("CommandLine"), Some("bash -c {echo,YmFz"));
        assert!(record_from_xml("<Event><System></System>").is_err());
    }
}
