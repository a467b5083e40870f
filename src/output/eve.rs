//! Event records and their EVE field names.

use super::stats::StatsEvent;
use crate::time::Timestamp;
use serde::Serialize;
use std::net::IpAddr;

/// Fields every flow-related event starts with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventHeader {
    /// When the event happened (packet time).
    pub timestamp: Timestamp,
    /// The flow's id, shared by all events of one flow.
    pub flow_id: u64,
    /// Client address.
    pub src_ip: IpAddr,
    /// Client port (0 for protocols without ports).
    pub src_port: u16,
    /// Server address.
    pub dest_ip: IpAddr,
    /// Server port.
    pub dest_port: u16,
    /// Transport protocol name (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, `ESP`, or the number).
    pub proto: &'static str,
    /// Application protocol recognised, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
}

/// EVE's name for an IP protocol number (as Suricata prints it).
pub fn proto_name(p: u8) -> &'static str {
    const NUMS: [&str; 256] = {
        let mut t = [""; 256];
        t[1] = "ICMP";
        t[2] = "IGMP";
        t[6] = "TCP";
        t[17] = "UDP";
        t[41] = "IPv6";
        t[47] = "GRE";
        t[50] = "ESP";
        t[51] = "AH";
        t[58] = "IPv6-ICMP";
        t[132] = "SCTP";
        t
    };
    let n = NUMS[p as usize];
    if n.is_empty() {
        DIGIT_STRS[p as usize]
    } else {
        n
    }
}

macro_rules! digit_strs {
    ($($n:literal)*) => { [$(stringify!($n)),*] };
}
const DIGIT_STRS: [&str; 256] = digit_strs!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39
    40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76
    77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110
    111 112 113 114 115 116 117 118 119 120 121 122 123 124 125 126 127 128 129 130 131 132 133 134 135 136 137 138
    139 140 141 142 143 144 145 146 147 148 149 150 151 152 153 154 155 156 157 158 159 160 161 162 163 164 165 166
    167 168 169 170 171 172 173 174 175 176 177 178 179 180 181 182 183 184 185 186 187 188 189 190 191 192 193 194
    195 196 197 198 199 200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 215 216 217 218 219 220 221 222
    223 224 225 226 227 228 229 230 231 232 233 234 235 236 237 238 239 240 241 242 243 244 245 246 247 248 249 250
    251 252 253 254 255
);

/// EVE's `flow{}` object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowSection {
    /// Packets client → server.
    pub pkts_toserver: u64,
    /// Packets server → client.
    pub pkts_toclient: u64,
    /// Frame bytes client → server.
    pub bytes_toserver: u64,
    /// Frame bytes server → client.
    pub bytes_toclient: u64,
    /// First packet.
    pub start: Timestamp,
    /// Last packet.
    pub end: Timestamp,
    /// Seconds between first and last packet.
    pub age: u64,
    /// `new`, `established` or `closed`.
    pub state: &'static str,
    /// Why the record was written: `timeout`, `evicted`, `reused` or `shutdown`.
    pub reason: &'static str,
    /// Whether any alert fired on the flow.
    pub alerted: bool,
    /// Transport payload bytes client → server (not in EVE).
    pub payload_bytes_toserver: u64,
    /// Transport payload bytes server → client (not in EVE).
    pub payload_bytes_toclient: u64,
    /// Bytes lost to capture gaps (both directions; not in EVE).
    #[serde(skip_serializing_if = "is_zero")]
    pub gap_bytes: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Randomness measures of each direction (`entropy{toserver, toclient}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EntropySection {
    /// Client → server sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toserver: Option<crate::inspect::entropy::Randomness>,
    /// Server → client sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toclient: Option<crate::inspect::entropy::Randomness>,
}

/// How the application protocol was recognised (`protocol{}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtocolSection {
    /// What was recognised.
    pub name: &'static str,
    /// The evidence, readable.
    pub evidence: String,
    /// Whether the protocol legitimately carries random-looking payload.
    pub encrypted: bool,
}

/// A flow record (`event_type: "flow"`), written when a flow ends.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowEvent {
    /// Common fields.
    #[serde(flatten)]
    pub header: EventHeader,
    /// Counters.
    pub flow: FlowSection,
    /// TCP flags, when TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSection>,
    /// Randomness per direction.
    pub entropy: EntropySection,
    /// Protocol recognition evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolSection>,
}

/// EVE's `tcp{}` object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TcpSection {
    /// OR of all flags, hex (`"1b"`).
    pub tcp_flags: String,
    /// Flags client → server.
    pub tcp_flags_ts: String,
    /// Flags server → client.
    pub tcp_flags_tc: String,
    /// SYN seen.
    pub syn: bool,
    /// FIN seen.
    pub fin: bool,
    /// RST seen.
    pub rst: bool,
    /// PSH seen.
    pub psh: bool,
    /// ACK seen.
    pub ack: bool,
    /// Connection state.
    pub state: crate::flow::TcpState,
}

impl TcpSection {
    /// From per-direction OR-ed flags.
    pub fn new(flags: [u8; 2], state: crate::flow::TcpState) -> Self {
        let all = flags[0] | flags[1];
        TcpSection {
            tcp_flags: format!("{all:02x}"),
            tcp_flags_ts: format!("{:02x}", flags[0]),
            tcp_flags_tc: format!("{:02x}", flags[1]),
            syn: all & 0x02 != 0,
            fin: all & 0x01 != 0,
            rst: all & 0x04 != 0,
            psh: all & 0x08 != 0,
            ack: all & 0x10 != 0,
            state,
        }
    }
}

pub use crate::detect::Severity;

/// Suricata's numeric alert severity for a [`Severity`] (1 is the most severe).
pub const fn eve_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical | Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
    }
}

/// The process an alert was joined to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertProcess {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Unique process identity, when the telemetry has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_guid: Option<String>,
    /// Executable.
    pub image: String,
    /// Command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// Parent's executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_image: Option<String>,
    /// Crypto libraries the process loaded.
    pub crypto_modules: Vec<String>,
}

/// EVE's `alert{}` object, with the analytic that fired and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertSection {
    /// `allowed` or `blocked`: entrospect only observes.
    pub action: &'static str,
    /// Stable id of the rule-like analytic (1000000 + numeric ATT&CK analytic id).
    pub signature_id: u32,
    /// One-line description.
    pub signature: String,
    /// `Encrypted Channel`.
    pub category: &'static str,
    /// Suricata-style numeric severity (1 most severe).
    pub severity: u8,
    /// ATT&CK analytic id (`AN0404`).
    pub analytic: &'static str,
    /// ATT&CK technique (`T1573.001`).
    pub technique: &'static str,
    /// Our severity name.
    pub severity_name: Severity,
    /// Score in [0, 1].
    pub score: f32,
    /// The evidence that made it fire, and the evidence that was missing.
    pub reasons: Vec<String>,
    /// The process, when host telemetry joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<AlertProcess>,
}

/// An alert (`event_type: "alert"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertEvent {
    /// Common fields (for host-only alerts, the host connection's tuple).
    #[serde(flatten)]
    pub header: EventHeader,
    /// The alert.
    pub alert: AlertSection,
}

/// A TLS session record (`event_type: "tls"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsEvent {
    /// Common fields.
    #[serde(flatten)]
    pub header: EventHeader,
    /// The session (Suricata's `tls{}` field names, plus details).
    pub tls: Box<crate::inspect::tls::TlsSummary>,
}

/// One output event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum Event {
    /// A flow ended.
    Flow(FlowEvent),
    /// A TLS handshake was seen.
    Tls(TlsEvent),
    /// An analytic fired.
    Alert(AlertEvent),
    /// Engine counters.
    Stats(StatsEvent),
}

impl Event {
    /// The event type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::Flow(_) => "flow",
            Event::Tls(_) => "tls",
            Event::Alert(_) => "alert",
            Event::Stats(_) => "stats",
        }
    }

    /// The common header, for flow-related events.
    pub fn header(&self) -> Option<&EventHeader> {
        match self {
            Event::Flow(e) => Some(&e.header),
            Event::Tls(e) => Some(&e.header),
            Event::Alert(e) => Some(&e.header),
            Event::Stats(_) => None,
        }
    }
}
