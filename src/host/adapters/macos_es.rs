//! macOS telemetry into host events: Endpoint Security (`eslogger`) and Elastic
//! Endpoint process documents.
//!
//! `eslogger` ([`eslogger_reader`]) writes one JSON object a line; the single key of its
//! `event` object names the event:
//! - `exec` → `process_start` of `event.exec.target` (pid from `audit_token.pid`, image
//!   from `executable.path`, `cmdline` from `event.exec.args`);
//! - `fork` → `process_start` of `event.fork.child` (parent = the forking process);
//! - `exit` → `process_exit`;
//! - `mmap` (`event.mmap.source.path`) → `module_load`; `open` of a `.dylib`, a framework
//!   binary or a crypto library ([`crate::host::crypto_libs`], extended by the
//!   `crypto_libs` config through [`eslogger_reader_with`]) → `module_load`; other opens
//!   are ignored.
//!
//! The process identity (`process_guid`) is `pid-pidversion` from the audit token.
//!
//! Note for AN0402: Security.framework and CommonCrypto (`libcommonCrypto.dylib`,
//! `libcorecrypto.dylib`) live in the dyld shared cache, so processes that use them
//! produce no per-file `mmap`/`open` of those libraries. The host half of AN0402 must
//! therefore rest on process context: a `launchd` parent (ppid 1), the image path
//! (interpreters, hidden or temporary paths), and what `exec` carries. Signing
//! identity (`signing_id`, `team_id`, `is_platform_binary`) is in the eslogger record
//! but has no field in the normalized event yet.
//!
//! eslogger has no network events: pair it with [`super::lsof`] snapshots.
//!
//! Elastic Endpoint ([`ElasticReader`]): ECS documents (`_source` of Elasticsearch hits,
//! EQL `{"hits":{"events":[...]}}` envelopes, bare documents, arrays). Kibana exports are
//! often not strict JSON: `"""triple-quoted"""` strings, documents joined by commas and
//! trailing commas are accepted. `event.action` `exec`/`fork`/`start` → `process_start`,
//! `end`/`exit` → `process_exit`; ECS network documents (`event.category: network` with
//! `source`/`destination`) → `network_connect`. The file is read whole, up to
//! [`super::MAX_DOCUMENT_BYTES`].

use super::{
    AdapterStats, Endpoints, HostAdapter, LineAdapter, LineParser, MAX_DOCUMENT_BYTES, Outcome,
    Pending, connect_kind, parse_ip,
};
use crate::host::crypto_libs::{CryptoLibConfig, CryptoLibTable};
use crate::host::{ConnDirection, HostError, HostEvent, HostEventKind, HostProto, Platform};
use crate::time::Timestamp;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, Read};

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))?.as_str()
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    let x = path.iter().try_fold(v, |cur, k| cur.get(*k))?;
    x.as_u64().or_else(|| x.as_str()?.trim().parse().ok())
}

fn pid_of(v: &Value, path: &[&str]) -> Option<u32> {
    u(v, path).and_then(|p| u32::try_from(p).ok())
}

// ---- eslogger ----

/// Audit-token pid of an ES process object, and its `pid-pidversion` identity.
fn es_process(p: &Value) -> Option<(u32, Option<String>)> {
    let pid = pid_of(p, &["audit_token", "pid"])?;
    let guid = u(p, &["audit_token", "pidversion"]).map(|v| format!("{pid}-{v}"));
    Some((pid, guid))
}

/// Map one eslogger record.
pub(crate) fn convert_eslogger(
    v: &Value,
    default_host: Option<&str>,
    crypto: &CryptoLibTable,
) -> Outcome {
    let Some(event) = v.get("event").and_then(Value::as_object) else {
        return Outcome::Malformed("not_an_event", "no event object".into());
    };
    let Some((name, body)) = event.iter().next() else {
        return Outcome::Malformed("not_an_event", "empty event object".into());
    };
    let Some(ts) = s(v, &["time"]).and_then(Timestamp::parse_rfc3339) else {
        return Outcome::Malformed("no_timestamp", "eslogger record without time".into());
    };
    let proc_ = v.get("process").unwrap_or(&Value::Null);
    let Some((pid, guid)) = es_process(proc_) else {
        return Outcome::Malformed("no_pid", "process.audit_token.pid missing".into());
    };
    let image = s(proc_, &["executable", "path"]).map(str::to_owned);
    let user = u(proc_, &["audit_token", "euid"]).map(|e| e.to_string());
    let kind = match name.as_str() {
        "exec" => {
            let target = body.get("target").unwrap_or(&Value::Null);
            let Some((tpid, tguid)) = es_process(target) else {
                return Outcome::Malformed("no_pid", "exec target without audit_token.pid".into());
            };
            let args: Option<Vec<&str>> = body
                .get("args")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect());
            HostEventKind::ProcessStart {
                pid: tpid,
                ppid: pid_of(target, &["ppid"]),
                image: s(target, &["executable", "path"])
                    .unwrap_or_default()
                    .to_owned(),
                cmdline: args.map(|a| a.join(" ")),
                user: u(target, &["audit_token", "euid"])
                    .map(|e| e.to_string())
                    .or(user),
                process_guid: tguid,
                parent_image: None,
                parent_guid: None,
            }
        }
        "fork" => {
            let child = body.get("child").unwrap_or(&Value::Null);
            let Some((cpid, cguid)) = es_process(child) else {
                return Outcome::Malformed("no_pid", "fork child without audit_token.pid".into());
            };
            HostEventKind::ProcessStart {
                pid: cpid,
                ppid: Some(pid),
                image: s(child, &["executable", "path"])
                    .map(str::to_owned)
                    .or(image.clone())
                    .unwrap_or_default(),
                cmdline: None,
                user,
                process_guid: cguid,
                parent_image: image,
                parent_guid: guid,
            }
        }
        "exit" => HostEventKind::ProcessExit {
            pid,
            process_guid: guid,
        },
        "mmap" => {
            let Some(path) = s(body, &["source", "path"]) else {
                return Outcome::Ignored;
            };
            HostEventKind::ModuleLoad {
                pid,
                image,
                module: path.to_owned(),
                process_guid: guid,
            }
        }
        "open" => {
            let Some(path) = s(body, &["file", "path"]) else {
                return Outcome::Ignored;
            };
            if !(path.ends_with(".dylib")
                || path.contains(".framework/")
                || crypto.classify(path).is_some())
            {
                return Outcome::Ignored;
            }
            HostEventKind::ModuleLoad {
                pid,
                image,
                module: path.to_owned(),
                process_guid: guid,
            }
        }
        _ => return Outcome::Ignored,
    };
    Outcome::Event(HostEvent {
        timestamp: ts,
        host: default_host.unwrap_or("unknown").to_owned(),
        platform: Platform::Macos,
        kind,
    })
}

/// Line parser for `eslogger` JSON lines.
pub struct EsloggerParser {
    default_host: Option<String>,
    crypto: CryptoLibTable,
}

impl LineParser for EsloggerParser {
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending) {
        let t = text.trim();
        if t.is_empty() {
            return;
        }
        match serde_json::from_str::<Value>(t) {
            Ok(v) => out.outcome(
                line,
                convert_eslogger(&v, self.default_host.as_deref(), &self.crypto),
            ),
            Err(e) => out.skip(line, "bad_json", e),
        }
    }
}

/// Reader of `eslogger` JSON lines. eslogger records carry no host name: give one.
/// Crypto-library opens are recognised by the built-in [`CryptoLibTable`].
pub fn eslogger_reader<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
) -> LineAdapter<R, EsloggerParser> {
    eslogger_reader_with(reader, default_host, &CryptoLibConfig::default())
}

/// [`eslogger_reader`] with the crypto-library table extended by `crypto_libs` (the
/// engine's `crypto_libs` config).
pub fn eslogger_reader_with<R: BufRead>(
    reader: R,
    default_host: Option<&str>,
    crypto_libs: &CryptoLibConfig,
) -> LineAdapter<R, EsloggerParser> {
    LineAdapter::new(
        reader,
        EsloggerParser {
            default_host: default_host.map(str::to_owned),
            crypto: CryptoLibTable::new(crypto_libs),
        },
    )
}

// ---- Elastic Endpoint (ECS) ----

/// Map one ECS document (`_source`).
pub(crate) fn convert_ecs(doc: &Value, default_host: Option<&str>) -> Outcome {
    let Some(ts) = s(doc, &["@timestamp"]).and_then(Timestamp::parse_rfc3339) else {
        return Outcome::Malformed("no_timestamp", "ECS document without @timestamp".into());
    };
    let host = s(doc, &["host", "hostname"])
        .or_else(|| s(doc, &["host", "name"]))
        .or(default_host)
        .unwrap_or("unknown")
        .to_owned();
    let platform =
        match s(doc, &["host", "os", "family"]).or_else(|| s(doc, &["host", "os", "type"])) {
            Some("windows") => Platform::Windows,
            Some("linux") | Some("debian") | Some("redhat") | Some("ubuntu") => Platform::Linux,
            _ => Platform::Macos,
        };
    let p = doc.get("process").unwrap_or(&Value::Null);
    let Some(pid) = pid_of(p, &["pid"]) else {
        return Outcome::Malformed("no_pid", "ECS document without process.pid".into());
    };
    let guid = s(p, &["entity_id"])
        .filter(|g| !g.is_empty())
        .map(str::to_owned);
    let image = s(p, &["executable"]).map(str::to_owned);
    let action = s(doc, &["event", "action"]).unwrap_or("");
    let category = doc.get("event").and_then(|e| e.get("category"));
    let is_network = match category {
        Some(Value::String(c)) => c == "network",
        Some(Value::Array(a)) => a.iter().any(|c| c.as_str() == Some("network")),
        _ => false,
    };
    let kind = if is_network {
        let src = (
            s(doc, &["source", "ip"]).and_then(parse_ip),
            pid_of(doc, &["source", "port"]),
        );
        let dst = (
            s(doc, &["destination", "ip"]).and_then(parse_ip),
            pid_of(doc, &["destination", "port"]),
        );
        let (Some(sip), Some(sport), Some(dip), Some(dport)) = (src.0, src.1, dst.0, dst.1) else {
            return Outcome::Ignored;
        };
        let (Ok(sport), Ok(dport)) = (u16::try_from(sport), u16::try_from(dport)) else {
            return Outcome::Malformed("bad_address", "port out of range".into());
        };
        let proto = match s(doc, &["network", "transport"]) {
            Some("udp") => HostProto::Udp,
            _ => HostProto::Tcp,
        };
        // ECS source is the initiator; `network.direction` says whether that is us.
        let inbound = matches!(
            s(doc, &["network", "direction"]),
            Some("inbound" | "incoming" | "ingress")
        ) || action.contains("accept");
        let ep = if inbound {
            Endpoints {
                local: (dip, dport),
                remote: (sip, sport),
                direction: ConnDirection::Inbound,
            }
        } else {
            Endpoints {
                local: (sip, sport),
                remote: (dip, dport),
                direction: ConnDirection::Outbound,
            }
        };
        connect_kind(pid, image, proto, &ep, guid)
    } else {
        match action {
            "exec" | "fork" | "start" | "process_started" => {
                let cmdline = s(p, &["command_line"]).map(str::to_owned).or_else(|| {
                    p.get("args").and_then(Value::as_array).map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                });
                HostEventKind::ProcessStart {
                    pid,
                    ppid: pid_of(p, &["parent", "pid"]),
                    image: image.unwrap_or_default(),
                    cmdline,
                    user: s(doc, &["user", "name"]).map(str::to_owned),
                    process_guid: guid,
                    parent_image: s(p, &["parent", "executable"]).map(str::to_owned),
                    parent_guid: s(p, &["parent", "entity_id"])
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned),
                }
            }
            "end" | "exit" | "process_stopped" => HostEventKind::ProcessExit {
                pid,
                process_guid: guid,
            },
            _ => return Outcome::Ignored,
        }
    };
    Outcome::Event(HostEvent {
        timestamp: ts,
        host,
        platform,
        kind,
    })
}

/// Make Kibana-style JSON strict: `"""raw"""` strings become JSON strings, and commas
/// before `}`/`]` are dropped. Text inside ordinary strings is left alone.
pub(crate) fn repair_kibana_json(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    let mut in_str = false;
    let mut escaped = false;
    while let Some(c) = rest.chars().next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            rest = rest.get(c.len_utf8()..).unwrap_or("");
            continue;
        }
        if let Some(r) = rest.strip_prefix("\"\"\"") {
            let end = r.find("\"\"\"").unwrap_or(r.len());
            let raw = r.get(..end).unwrap_or("");
            out.push_str(&serde_json::to_string(raw).unwrap_or_else(|_| "\"\"".to_owned()));
            rest = r.get(end.saturating_add(3)..).unwrap_or("");
            continue;
        }
        if c == ',' {
            let after = rest.get(1..).unwrap_or("").trim_start();
            if after.starts_with('}') || after.starts_with(']') {
                rest = rest.get(1..).unwrap_or("");
                continue;
            }
        }
        if c == '"' {
            in_str = true;
        }
        out.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    out
}

/// Collect the ECS documents inside any envelope.
fn collect_docs<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: u32) {
    if depth > 8 {
        return;
    }
    match v {
        Value::Array(a) => a
            .iter()
            .for_each(|x| collect_docs(x, out, depth.saturating_add(1))),
        Value::Object(o) => {
            if let Some(src) = o.get("_source") {
                out.push(src);
            } else if let Some(h) = o.get("hits") {
                for key in ["events", "hits", "sequences"] {
                    if let Some(x) = h.get(key) {
                        collect_docs(x, out, depth.saturating_add(1));
                    }
                }
            } else if o.contains_key("@timestamp") && o.contains_key("process") {
                out.push(v);
            } else if let Some(ev) = o.get("events") {
                collect_docs(ev, out, depth.saturating_add(1));
            }
        }
        _ => {}
    }
}

/// Reader of Elastic Endpoint ECS documents (strict or Kibana-style JSON).
pub struct ElasticReader {
    queue: VecDeque<Result<HostEvent, HostError>>,
    stats: AdapterStats,
}

impl ElasticReader {
    /// Read and parse the whole input (up to [`MAX_DOCUMENT_BYTES`]).
    ///
    /// # Errors
    /// [`HostError::Io`] on a read error, [`HostError::TooLarge`] over the cap. Bad
    /// documents are yielded as [`HostError::Parse`] by the iterator.
    pub fn new<R: Read>(reader: R, default_host: Option<&str>) -> Result<Self, HostError> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_DOCUMENT_BYTES.saturating_add(1))
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(HostError::TooLarge {
                what: "elastic document file",
                cap: MAX_DOCUMENT_BYTES,
            });
        }
        let text = String::from_utf8_lossy(&bytes);
        let fixed = repair_kibana_json(&text);
        let mut pending = Pending::default();
        let mut rest = fixed.as_str();
        let mut offset = 0usize;
        loop {
            let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
            offset = offset.saturating_add(rest.len().saturating_sub(trimmed.len()));
            rest = trimmed;
            if rest.is_empty() {
                break;
            }
            let line = line_of(&fixed, offset);
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            match stream.next() {
                Some(Ok(v)) => {
                    let used = stream.byte_offset();
                    let mut docs = Vec::new();
                    collect_docs(&v, &mut docs, 0);
                    if docs.is_empty() {
                        pending.ignore();
                    }
                    for d in docs {
                        pending.outcome(line, convert_ecs(d, default_host));
                    }
                    offset = offset.saturating_add(used);
                    rest = rest.get(used..).unwrap_or("");
                }
                Some(Err(e)) => {
                    pending.skip(line, "bad_json", e);
                    break;
                }
                None => break,
            }
        }
        let stats = AdapterStats {
            records_ignored: pending.ignored,
            ..AdapterStats::default()
        };
        Ok(ElasticReader {
            queue: pending.queue,
            stats,
        })
    }
}

fn line_of(text: &str, offset: usize) -> u64 {
    let upto = text.get(..offset).unwrap_or(text);
    (memchr::memchr_iter(b'\n', upto.as_bytes()).count() as u64).saturating_add(1)
}

impl Iterator for ElasticReader {
    type Item = Result<HostEvent, HostError>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = self.queue.pop_front()?;
        self.stats.record(&item);
        Some(item)
    }
}

impl HostAdapter for ElasticReader {
    fn stats(&self) -> &AdapterStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn eslogger_exec_fork_exit_and_mmap() {
        let text = r#"{"event_type":9,"time":"2023-03-01T12:00:00.5Z","process":{"audit_token":{"pid":500,"pidversion":3,"euid":501},"executable":{"path":"/bin/zsh"},"ppid":1},"event":{"exec":{"target":{"audit_token":{"pid":500,"pidversion":4,"euid":501},"executable":{"path":"/usr/bin/curl"},"ppid":1},"args":["curl","-s","https://example.net"]}}}
{"event_type":11,"time":"2023-03-01T12:00:01Z","process":{"audit_token":{"pid":1,"pidversion":1,"euid":0},"executable":{"path":"/sbin/launchd"}},"event":{"fork":{"child":{"audit_token":{"pid":600,"pidversion":9},"executable":{"path":"/sbin/launchd"}}}}}
{"event_type":12,"time":"2023-03-01T12:00:02Z","process":{"audit_token":{"pid":600,"pidversion":9}},"event":{"mmap":{"source":{"path":"/usr/lib/libcrypto.46.dylib"}}}}
{"event_type":13,"time":"2023-03-01T12:00:03Z","process":{"audit_token":{"pid":600,"pidversion":9}},"event":{"open":{"file":{"path":"/etc/hosts"}}}}
{"event_type":32,"time":"2023-03-01T12:00:04Z","process":{"audit_token":{"pid":600,"pidversion":9}},"event":{"exit":{"stat":0}}}
{"event_type":32,"process":{}}"#;
        let mut a = eslogger_reader(Cursor::new(text), Some("mac"));
        let items: Vec<_> = a.by_ref().collect();
        let ev: Vec<_> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ev.len(), 4);
        let HostEventKind::ProcessStart {
            pid,
            image,
            cmdline,
            process_guid,
            ..
        } = &ev[0].kind
        else {
            panic!()
        };
        assert_eq!((*pid, image.as_str()), (500, "/usr/bin/curl"));
        assert_eq!(cmdline.as_deref(), Some("curl -s https://example.net"));
        assert_eq!(process_guid.as_deref(), Some("500-4"));
        let HostEventKind::ProcessStart {
            pid,
            ppid,
            parent_image,
            ..
        } = &ev[1].kind
        else {
            panic!()
        };
        assert_eq!(
            (*pid, *ppid, parent_image.as_deref()),
            (600, Some(1), Some("/sbin/launchd"))
        );
        assert!(
            matches!(&ev[2].kind, HostEventKind::ModuleLoad { module, .. } if module.contains("libcrypto"))
        );
        assert!(matches!(
            ev[3].kind,
            HostEventKind::ProcessExit { pid: 600, .. }
        ));
        assert!(
            ev.iter()
                .all(|e| e.platform == Platform::Macos && e.host == "mac")
        );
        assert_eq!(a.stats().records_ignored, 1);
        assert_eq!(a.stats().lines_skipped, 1);
    }

    #[test]
    fn kibana_json_with_triple_quotes_trailing_commas_and_joined_docs() {
        let text = r#"{
  "_source": {
    "@timestamp": "2021-01-09T19:13:43.945128Z",
    "event": {"action": "exec", "category": ["process"],},
    "host": {"hostname": "mac-1", "os": {"family": "macos"}},
    "process": {"pid": 4465, "executable": "/bin/sh", "entity_id": "YzJk",
      "command_line": """sh -c "x" \path""",
      "parent": {"pid": 1, "executable": "/sbin/launchd"},
    },
  }
},
{"hits": {"events": [{"_source": {"@timestamp": "2021-01-09T19:13:44Z", "event": {"action": "end"}, "process": {"pid": 4465}}}]}}
"#;
        let mut r = ElasticReader::new(Cursor::new(text), None).unwrap();
        let items: Vec<_> = r.by_ref().collect();
        assert_eq!(items.len(), 2);
        let ev = items[0].as_ref().unwrap();
        let HostEventKind::ProcessStart {
            pid,
            ppid,
            cmdline,
            parent_image,
            ..
        } = &ev.kind
        else {
            panic!()
        };
        assert_eq!((*pid, *ppid), (4465, Some(1)));
        assert_eq!(cmdline.as_deref(), Some(r#"sh -c "x" \path"#));
        assert_eq!(parent_image.as_deref(), Some("/sbin/launchd"));
        assert_eq!(ev.host, "mac-1");
        assert!(matches!(
            items[1].as_ref().unwrap().kind,
            HostEventKind::ProcessExit { pid: 4465, .. }
        ));
        assert_eq!(r.stats().count("process_start"), 1);
    }

    #[test]
    fn broken_elastic_document_is_one_error_with_its_line() {
        let text = "{\"_source\": {\"@timestamp\": \"2021-01-09T19:13:43Z\", \"event\": {\"action\": \"exec\"}, \"process\": {\"pid\": 1}}}\n{\"_source\": {oops\n";
        let items: Vec<_> = ElasticReader::new(Cursor::new(text), None)
            .unwrap()
            .collect();
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1], Err(HostError::Parse { line: 2, .. })));
    }
}
