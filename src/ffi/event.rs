//! `entrospect_event`: one output event as the callback sees it.

use crate::output::{Event, proto_name};
use std::ffi::{c_char, c_float};
use std::net::IpAddr;

/// The kind of an output event (EVE's `event_type`).
///
/// The engine may grow event types; one this library version does not name is delivered
/// as `ENTROSPECT_EVENT_TYPE_OTHER` with its full JSON line.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_event_type {
    /// An event type without a number of its own here: read `event_type` in the JSON.
    Other = 0,
    /// `flow`: a flow ended.
    Flow = 1,
    /// `alert`: an analytic fired.
    Alert = 2,
    /// `stats`: engine counters.
    Stats = 3,
    /// `tls`: a TLS handshake was seen.
    Tls = 4,
}

/// The address family of an address field.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_addr_family {
    /// No address (the field's bytes are zero).
    None = 0,
    /// IPv4: the address is in the first 4 bytes, network order; the rest are zero.
    Ipv4 = 4,
    /// IPv6: all 16 bytes, network order.
    Ipv6 = 6,
}

/// An alert's severity (`alert.severity_name` in the JSON).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_severity {
    /// Not an alert (or a severity this version does not name).
    None = 0,
    /// `low`.
    Low = 1,
    /// `medium`.
    Medium = 2,
    /// `high`.
    High = 3,
    /// `critical`.
    Critical = 4,
}

/// One output event, handed to the callback set by `entrospect_engine_set_callback`.
///
/// **Lifetime:** the struct and everything its pointers reach (`analytic`, `json`) are
/// borrowed for the duration of the callback call only; copy what you keep. Read a field
/// only when `struct_size` covers it (fields are only ever appended).
///
/// The summary fields are a convenience; `json` is the complete event. Fields an event
/// type lacks are zero (`flow_id`, addresses, ports, `ip_proto` for `stats`) or NULL
/// (`analytic` for everything but alerts).
#[repr(C)]
#[derive(Debug)]
pub struct entrospect_event {
    /// `sizeof(entrospect_event)` of the library that filled it in.
    pub struct_size: usize,
    /// What kind of event this is.
    pub event_type: entrospect_event_type,
    /// When it happened, in nanoseconds since the Unix epoch (packet or host time).
    pub timestamp_ns: u64,
    /// The flow's id, shared by all events of one flow (EVE `flow_id`); 0 when none.
    pub flow_id: u64,
    /// Client address (EVE `src_ip`).
    pub src_addr: [u8; 16],
    /// Family of `src_addr`.
    pub src_family: entrospect_addr_family,
    /// Server address (EVE `dest_ip`).
    pub dst_addr: [u8; 16],
    /// Family of `dst_addr`.
    pub dst_family: entrospect_addr_family,
    /// Client port (EVE `src_port`).
    pub src_port: u16,
    /// Server port (EVE `dest_port`).
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, ...); 0 when the event has no flow.
    pub ip_proto: u8,
    /// ATT&CK analytic id of an alert (`"AN0404"`), NUL-terminated; NULL otherwise.
    pub analytic: *const c_char,
    /// Severity of an alert.
    pub severity: entrospect_severity,
    /// Score of an alert in [0, 1]; 0 otherwise.
    pub score: c_float,
    /// The event as one EVE JSON object (no newline), NUL-terminated.
    pub json: *const c_char,
    /// Length of `json` in bytes, without the NUL.
    pub json_len: usize,
}

/// Buffers an event's strings live in while the callback runs; reused between events.
#[derive(Default)]
pub(crate) struct EventScratch {
    json: Vec<u8>,
    analytic: Vec<u8>,
}

pub(super) fn addr(ip: IpAddr) -> ([u8; 16], entrospect_addr_family) {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            let (head, _) = out.split_at_mut(4);
            head.copy_from_slice(&v4.octets());
            (out, entrospect_addr_family::Ipv4)
        }
        IpAddr::V6(v6) => (v6.octets(), entrospect_addr_family::Ipv6),
    }
}

fn ip_proto_number(name: &str) -> u8 {
    (0..=u8::MAX).find(|&p| proto_name(p) == name).unwrap_or(0)
}

fn event_type(name: &str) -> entrospect_event_type {
    match name {
        "flow" => entrospect_event_type::Flow,
        "alert" => entrospect_event_type::Alert,
        "stats" => entrospect_event_type::Stats,
        "tls" => entrospect_event_type::Tls,
        _ => entrospect_event_type::Other,
    }
}

pub(super) fn severity(name: &str) -> entrospect_severity {
    match name {
        "low" => entrospect_severity::Low,
        "medium" => entrospect_severity::Medium,
        "high" => entrospect_severity::High,
        "critical" => entrospect_severity::Critical,
        _ => entrospect_severity::None,
    }
}

impl EventScratch {
    /// Describe `ev` for C; the result points into `self` until the next call.
    ///
    /// # Errors
    /// When the event does not serialize (its JSON form is then unavailable).
    pub(crate) fn describe(&mut self, ev: &Event) -> Result<entrospect_event, serde_json::Error> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, ev)?;
        let json_len = self.json.len();
        self.json.push(0);
        let mut out = entrospect_event {
            struct_size: size_of::<entrospect_event>(),
            event_type: event_type(ev.event_type()),
            timestamp_ns: 0,
            flow_id: 0,
            src_addr: [0; 16],
            src_family: entrospect_addr_family::None,
            dst_addr: [0; 16],
            dst_family: entrospect_addr_family::None,
            src_port: 0,
            dst_port: 0,
            ip_proto: 0,
            analytic: std::ptr::null(),
            severity: entrospect_severity::None,
            score: 0.0,
            json: self.json.as_ptr().cast(),
            json_len,
        };
        if let Some(h) = ev.header() {
            out.timestamp_ns = h.timestamp.as_nanos();
            out.flow_id = h.flow_id;
            (out.src_addr, out.src_family) = addr(h.src_ip);
            (out.dst_addr, out.dst_family) = addr(h.dest_ip);
            out.src_port = h.src_port;
            out.dst_port = h.dest_port;
            out.ip_proto = ip_proto_number(h.proto);
        }
        match ev {
            Event::Stats(s) => out.timestamp_ns = s.timestamp.as_nanos(),
            Event::Alert(a) => {
                self.analytic.clear();
                self.analytic.extend_from_slice(a.alert.analytic.as_bytes());
                self.analytic.push(0);
                out.analytic = self.analytic.as_ptr().cast();
                out.severity = severity(a.alert.severity_name.as_str());
                out.score = a.alert.score;
            }
            _ => {}
        }
        // The JSON buffer may have moved while growing: take the pointer last.
        out.json = self.json.as_ptr().cast();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_names_map_back_to_their_numbers() {
        assert_eq!(ip_proto_number("TCP"), 6);
        assert_eq!(ip_proto_number("UDP"), 17);
        assert_eq!(ip_proto_number("IPv6-ICMP"), 58);
        assert_eq!(ip_proto_number("253"), 253);
        assert_eq!(ip_proto_number("not a protocol"), 0);
    }

    #[test]
    fn ipv4_address_fills_first_four_bytes_only() {
        let (a, f) = addr("10.1.2.3".parse().unwrap());
        assert_eq!(f, entrospect_addr_family::Ipv4);
        assert_eq!(a, [10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (b, g) = addr("2001:db8::1".parse().unwrap());
        assert_eq!(g, entrospect_addr_family::Ipv6);
        assert_eq!(b[0..2], [0x20, 0x01]);
        assert_eq!(b[15], 1);
    }

    #[test]
    fn unknown_event_type_and_severity_names_fall_back_to_zero() {
        assert_eq!(event_type("dns"), entrospect_event_type::Other);
        assert_eq!(event_type("tls"), entrospect_event_type::Tls);
        assert_eq!(severity("apocalyptic"), entrospect_severity::None);
        assert_eq!(severity("critical"), entrospect_severity::Critical);
    }
}
