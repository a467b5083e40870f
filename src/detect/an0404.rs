//! AN0404 (T1573.001, network): high-entropy flows that are not TLS or any known protocol.
//!
//! A flow fires when all of these hold:
//!
//! 1. **Random from the first bytes.** In at least one direction the first bytes (a sample
//!    of at least [`An0404Config::min_sample_len`]) are consistent with uniform random data
//!    with confidence ≥ [`An0404Config::random_confidence`], and are not mostly printable.
//!    The confidence comes from the entropy core and is length-aware: a short sample's
//!    entropy is biased low (64 random bytes average about 5.7 bits/byte, not 8), so this
//!    analytic never compares bits/byte with a fixed threshold.
//!    Printable first bytes do not exempt a direction (unlike the censors' exemption for
//!    connections that open with printable ASCII): ChaCha20 output starts with six
//!    printable bytes about once in 320 messages, and the bytes after them stay random.
//!    They only add a reason ("printable first bytes precede the random data").
//! 2. **No known encrypted protocol explains it.** The flow's protocol is not one that
//!    carries random payload by design ([`AppProto::is_encrypted`]: TLS, SSH, QUIC,
//!    WireGuard, OpenVPN, IPsec, ... on any port).
//! 3. **No compressed or media content explains it.** No gzip/zlib/zstd/image/video/...
//!    magic at the start of the payload or of an HTTP body, and no declared compressing
//!    `Content-Encoding` or media `Content-Type` ([`ContentKind`]). A magic number alone
//!    explains an otherwise unknown flow (an FTP data connection carrying a zip file);
//!    that is a deliberate trade, since prefixing a magic would evade this analytic.
//!
//! Severity starts at medium and moves one step for each of:
//!
//! - the server port's profile ([`An0404Config::port_profiles`]): **up** when the port
//!   expects cleartext (random bytes on 80 or 53 are out of place), **down** when it
//!   expects an encrypted protocol (random bytes on 443 without a TLS handshake are still
//!   reported, but are the most common benign oddity), unchanged for ports without profile;
//! - volume against [`An0404Config::traffic_volume_threshold`]: **down** at or above it
//!   (bulk, VPN-like tunnels), **up** below it (low-volume, beacon-like C2). The verdict
//!   is usually taken early (when the first 4 KiB sample is full), before a tunnel has
//!   shown its volume, so an open flow that already moved a full sample
//!   ([`BULK_RATE_MIN_BYTES`]) at [`An0404Config::bulk_rate_threshold`] bytes/s or faster
//!   is **not** ranked beacon-like (no step either way: it may become a tunnel, or be a
//!   C2 stager download that goes quiet afterwards — both deserve the base severity);
//! - a recognised cleartext protocol framing the random bytes (only reported with
//!   [`An0404Config::report_cleartext_carriers`]): **down**.
//!
//! and is capped at low when the whole flow is a single packet, or when the flow's start
//! was not captured (TCP without SYN: the "first bytes" may be mid-stream ciphertext of a
//! TLS session that began before the capture).
//!
//! The score is the best direction's random confidence scaled by the severity level
//! (`confidence × (0.55 + 0.15 × level)`, plus 0.05 when both directions look random,
//! capped at 1). An allowlisted destination network or server port keeps the finding with
//! `suppressed` set to the reason and severity low, so the engine can count it without
//! alerting.

use super::Severity;
use crate::flow::Direction;
use crate::inspect::protocol::{AppProto, ContentKind, Recognition, Transport};
use ipnet::IpNet;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The analytic's ATT&CK id.
pub const ANALYTIC: &str = "AN0404";
/// The technique it detects.
pub const TECHNIQUE: &str = "T1573.001";
/// Bytes (both directions) an open flow must have moved before its rate can call it bulk:
/// the entropy core's default sample window. A smaller exchange says little about a
/// rate (a beacon's first request and reply can cross a LAN in a millisecond).
pub const BULK_RATE_MIN_BYTES: u64 = 4096;
/// A sample this printable is not random whatever the confidence says (uniform random
/// bytes are 95/256 ≈ 37% printable).
const MAX_RANDOM_PRINTABLE: f64 = 0.6;

/// What the first bytes of a port are expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortExpectation {
    /// An encrypted protocol (TLS, SSH, IKE, ...): random bytes without its handshake are
    /// still reported, one severity step lower.
    Encrypted,
    /// A cleartext protocol (or cleartext first, like STARTTLS): random first bytes are
    /// out of place, one severity step higher.
    Cleartext,
    /// No expectation: severity unchanged (use it to neutralise a default entry).
    Any,
}

impl PortExpectation {
    /// The stable output name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PortExpectation::Encrypted => "encrypted",
            PortExpectation::Cleartext => "cleartext",
            PortExpectation::Any => "any",
        }
    }
}

/// What one server port is expected to carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortProfile {
    /// Encrypted, cleartext or any.
    pub expect: PortExpectation,
    /// The protocols normally seen there (informative, named in reasons).
    #[serde(default)]
    pub protocols: Vec<AppProto>,
}

impl PortProfile {
    fn new(expect: PortExpectation, protocols: &[AppProto]) -> Self {
        PortProfile {
            expect,
            protocols: protocols.to_vec(),
        }
    }

    fn protocol_names(&self) -> String {
        if self.protocols.is_empty() {
            return "traffic".to_owned();
        }
        self.protocols
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The default port profiles: IANA well-known ports of encrypted protocols, and
/// well-known cleartext ports where random first bytes are unexpected.
pub fn default_port_profiles() -> BTreeMap<u16, PortProfile> {
    use AppProto as P;
    use PortExpectation::{Cleartext, Encrypted};
    let encrypted: &[(u16, &[AppProto])] = &[
        (22, &[P::Ssh]),
        (443, &[P::Tls, P::Quic]),
        (465, &[P::Tls]),
        (500, &[P::Ike]),
        (563, &[P::Tls]),
        (636, &[P::Tls]),
        (853, &[P::DnsOverTls]),
        (989, &[P::Tls]),
        (990, &[P::Tls]),
        (992, &[P::Tls]),
        (993, &[P::Tls]),
        (994, &[P::Tls]),
        (995, &[P::Tls]),
        (1194, &[P::Openvpn]),
        (3389, &[P::Rdp]),
        (4500, &[P::Ike, P::Esp]),
        (5061, &[P::Tls]),
        (5223, &[P::Tls]),
        (5986, &[P::Tls]),
        (6697, &[P::Tls]),
        (8443, &[P::Tls]),
        (8883, &[P::Tls]),
        (51820, &[P::Wireguard]),
    ];
    let cleartext: &[(u16, &[AppProto])] = &[
        (20, &[P::Ftp]),
        (21, &[P::Ftp]),
        (23, &[P::Telnet]),
        (25, &[P::Smtp]),
        (53, &[P::Dns]),
        (67, &[P::Dhcp]),
        (68, &[P::Dhcp]),
        (80, &[P::Http]),
        (110, &[P::Pop3]),
        (123, &[P::Ntp]),
        (135, &[P::Dcerpc]),
        (137, &[P::NetbiosNs]),
        (139, &[P::Smb]),
        (143, &[P::Imap]),
        (445, &[P::Smb]),
        (587, &[P::Smtp]),
        (1080, &[P::Socks]),
        (1900, &[P::Ssdp]),
        (3128, &[P::Http]),
        (5060, &[P::Sip]),
        (5353, &[P::Mdns]),
        (5355, &[P::Llmnr]),
        (8080, &[P::Http]),
    ];
    let mut map = BTreeMap::new();
    for (port, protos) in encrypted {
        map.insert(*port, PortProfile::new(Encrypted, protos));
    }
    for (port, protos) in cleartext {
        map.insert(*port, PortProfile::new(Cleartext, protos));
    }
    map
}

/// Reads `port_profiles` as a table keyed by port number (`443 = { expect = "encrypted" }`)
/// and lays it over the defaults: a listed port replaces its default entry.
fn merge_port_profiles<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<u16, PortProfile>, D::Error> {
    let user: BTreeMap<String, PortProfile> = BTreeMap::deserialize(d)?;
    let mut map = default_port_profiles();
    for (key, profile) in user {
        let port: u16 = key.trim().parse().map_err(|_| {
            D::Error::custom(format!(
                "an0404.port_profiles: key {key:?} is not a port number (0-65535)"
            ))
        })?;
        map.insert(port, profile);
    }
    Ok(map)
}

/// AN0404 tunables. Every field has a default, so an empty table (or none) works.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct An0404Config {
    /// Which protocols / encryption each server port is expected to carry. Entries given
    /// in the configuration replace the defaults of the same port; the others stay.
    /// Default: [`default_port_profiles`].
    #[serde(deserialize_with = "merge_port_profiles")]
    pub port_profiles: BTreeMap<u16, PortProfile>,
    /// Bytes (both directions, whole flow) at or above which a flow counts as bulk,
    /// VPN-like traffic (severity one step down); below it, as low-volume beacon-like
    /// traffic (one step up). Default: 1 000 000.
    pub traffic_volume_threshold: u64,
    /// Bytes per second (both directions, from the flow's first payload to the verdict) at
    /// or above which an open flow that moved at least [`BULK_RATE_MIN_BYTES`] is too fast
    /// to rank as a low-volume beacon before its volume is known (no severity step).
    /// Default: 125 000 (1 Mbit/s).
    pub bulk_rate_threshold: u64,
    /// Destination networks whose flows are suppressed (kept with the reason).
    /// Default: empty.
    pub allowed_destinations: Vec<IpNet>,
    /// Server ports whose flows are suppressed (kept with the reason). Default: empty.
    pub allowed_ports: Vec<u16>,
    /// The entropy core's confidence (0..1) that a sample is uniform random, at or above
    /// which a direction counts as random. Default: 0.9.
    pub random_confidence: f64,
    /// Fewest sampled payload bytes of a direction for its randomness to count. Below
    /// about 64 bytes an entropy test has little power (the most a 32-byte sample can
    /// show is 5 bits/byte, which varied text also reaches). Default: 64.
    pub min_sample_len: usize,
    /// Whether a recognised cleartext protocol (HTTP, SMTP, ...) whose payload is
    /// random-looking without declared compressed or media content is reported too (one
    /// severity step lower). AN0404 is about flows with no known protocol, so this is off
    /// by default; turn it on to hunt C2 that hides encrypted blobs in HTTP bodies.
    /// Default: false.
    pub report_cleartext_carriers: bool,
}

impl Default for An0404Config {
    fn default() -> Self {
        An0404Config {
            port_profiles: default_port_profiles(),
            traffic_volume_threshold: 1_000_000,
            bulk_rate_threshold: 125_000,
            allowed_destinations: Vec::new(),
            allowed_ports: Vec::new(),
            random_confidence: 0.9,
            min_sample_len: 64,
            report_cleartext_carriers: false,
        }
    }
}

/// The entropy core's confidence that a sample is uniform random, as
/// [`An0404Config::random_confidence`] reads it: `p / (1 - DEFAULT_CONFIDENCE)` from the
/// sample's p-value, capped at 1. A sample that random data of its length produces with
/// probability of at least 0.1 % scores 1; one the entropy test rejects at the 99.9 %
/// level scores below 1, falling towards 0 as the evidence of structure grows (the
/// default threshold 0.9 is p = 0.0009). The host-aware analytics use this same measure,
/// so they and AN0404 agree on "random". NaN (no valid p-value) stays NaN, which no
/// threshold passes.
pub fn random_confidence(r: &crate::inspect::entropy::Randomness) -> f64 {
    (r.p_value / (1.0 - crate::inspect::entropy::DEFAULT_CONFIDENCE)).clamp(0.0, 1.0)
}

/// What the entropy core measured on the first bytes of one direction, plus counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DirEvidence {
    /// Payload bytes sampled.
    pub sample_len: usize,
    /// Shannon entropy of the sample, bits per byte.
    pub bits_per_byte: f64,
    /// Expected entropy of uniform random data of this length, bits per byte.
    pub expected_random: f64,
    /// Confidence 0..1 that the sample is consistent with uniform random at this length.
    pub random_confidence: f64,
    /// Share of printable ASCII bytes in the sample.
    pub printable_ratio: f64,
    /// Whether the first few bytes are printable (a cleartext header).
    pub first_bytes_printable: bool,
    /// Bytes sent in this direction (whole frames, EVE `bytes_toserver`/`toclient`).
    pub bytes: u64,
    /// Packets sent in this direction.
    pub pkts: u64,
}

/// Everything AN0404 looks at for one flow.
#[derive(Clone, Copy, Debug)]
pub struct FlowEvidence<'a> {
    /// Transport of the flow.
    pub transport: Transport,
    /// Client port.
    pub client_port: u16,
    /// Server port.
    pub server_port: u16,
    /// Server address.
    pub server_ip: IpAddr,
    /// The recognised protocol ([`AppProto::Unknown`] if none).
    pub app_proto: AppProto,
    /// The recognition behind `app_proto`, if any.
    pub recognition: Option<&'a Recognition>,
    /// Compressed or media content found at the start of a random-looking direction, or
    /// at the start of (or declared for) an HTTP body in it
    /// ([`explain_content`](crate::inspect::protocol::explain_content)).
    pub content: Option<ContentKind>,
    /// Per-direction evidence, indexed by [`Direction::index`].
    pub dirs: [DirEvidence; 2],
    /// Whether the flow's start was seen (TCP: the SYN), so the sampled bytes are the
    /// first of each direction. Always true for UDP and other transports.
    pub start_seen: bool,
    /// Nanoseconds from the flow's first payload byte (its first packet when it has no
    /// payload) to this evaluation.
    pub duration_ns: u64,
    /// Whether the flow has ended (its volume is final).
    pub ended: bool,
}

/// An AN0404 finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct An0404Finding {
    /// 0..1.
    pub score: f32,
    /// How urgent.
    pub severity: Severity,
    /// Why it fired, one readable sentence per piece of evidence.
    pub reasons: Vec<String>,
    /// Why an allowlist suppressed it; a suppressed finding is not to be raised as an alert.
    pub suppressed: Option<String>,
}

/// Decides AN0404 for one flow; `None` when it does not fire.
///
/// # Panics
///
/// Never.
pub fn evaluate(cfg: &An0404Config, ev: &FlowEvidence<'_>) -> Option<An0404Finding> {
    // 1. Which directions are random from their first bytes.
    let random: Vec<(Direction, &DirEvidence)> = [Direction::ToServer, Direction::ToClient]
        .into_iter()
        .filter_map(|d| ev.dirs.get(d.index()).map(|e| (d, e)))
        .filter(|(_, e)| {
            e.sample_len >= cfg.min_sample_len.max(1)
                && e.random_confidence >= cfg.random_confidence
                && e.printable_ratio <= MAX_RANDOM_PRINTABLE
        })
        .collect();
    if random.is_empty() {
        return None;
    }

    // 2. A known encrypted protocol explains it.
    let proto = ev.recognition.map_or(ev.app_proto, |r| r.proto);
    if proto.is_encrypted() || ev.app_proto.is_encrypted() {
        return None;
    }
    // 3. Compressed or media content explains it.
    if ev.content.is_some() {
        return None;
    }
    // A known cleartext protocol frames the bytes: reported only when asked for.
    let cleartext_carrier = proto != AppProto::Unknown;
    if cleartext_carrier && !cfg.report_cleartext_carriers {
        return None;
    }

    let mut reasons = Vec::new();
    for (d, e) in &random {
        reasons.push(format!(
            "payload {} {:.2} bits/byte over {} B (random would be {:.2}): consistent with ciphertext (confidence {:.2})",
            d.as_str(),
            e.bits_per_byte,
            e.sample_len,
            e.expected_random,
            e.random_confidence
        ));
    }
    match (proto, ev.recognition) {
        (AppProto::Unknown, _) => {
            reasons.push("no handshake of any known encrypted protocol in the first bytes".into())
        }
        (p, Some(r)) => reasons.push(format!(
            "cleartext {p} ({}) carries random-looking bytes with no compressed or media content declared",
            r.evidence
        )),
        (p, None) => reasons.push(format!(
            "cleartext {p} carries random-looking bytes with no compressed or media content declared"
        )),
    }
    if random
        .iter()
        .any(|(_, e)| e.first_bytes_printable && proto == AppProto::Unknown)
    {
        reasons.push("printable first bytes precede the random data (a cleartext header)".into());
    }

    let mut level = Severity::Medium.level();
    let port = ev.server_port;
    match cfg.port_profiles.get(&port) {
        Some(p) if p.expect == PortExpectation::Cleartext => {
            level = level.saturating_add(1);
            reasons.push(format!(
                "port {port} expects cleartext {}",
                p.protocol_names()
            ));
        }
        Some(p) if p.expect == PortExpectation::Encrypted => {
            level = level.saturating_sub(1);
            reasons.push(format!(
                "port {port} expects encrypted {}, but none of its handshakes was seen",
                p.protocol_names()
            ));
        }
        _ => reasons.push(format!("port {port} has no expected protocol")),
    }
    let total_bytes = ev.dirs.iter().fold(0u64, |a, d| a.saturating_add(d.bytes));
    let total_pkts = ev.dirs.iter().fold(0u64, |a, d| a.saturating_add(d.pkts));
    let threshold = cfg.traffic_volume_threshold;
    // Bytes per second so far (a zero duration is one instant: no rate to judge).
    let rate = (ev.duration_ns > 0).then(|| {
        let r = u128::from(total_bytes) * 1_000_000_000 / u128::from(ev.duration_ns);
        u64::try_from(r).unwrap_or(u64::MAX)
    });
    if total_bytes >= threshold {
        level = level.saturating_sub(1);
        reasons.push(format!(
            "{total_bytes} B in the flow >= traffic_volume_threshold {threshold} B: bulk, vpn-like volume"
        ));
    } else if let Some(rate) = rate.filter(|&r| {
        !ev.ended && total_bytes >= BULK_RATE_MIN_BYTES && r >= cfg.bulk_rate_threshold
    }) {
        reasons.push(format!(
            "{total_bytes} B in {} ms so far ({rate} B/s >= bulk_rate_threshold {} B/s): too fast for a beacon, volume not yet known",
            ev.duration_ns / 1_000_000,
            cfg.bulk_rate_threshold
        ));
    } else {
        level = level.saturating_add(1);
        reasons.push(format!(
            "{total_bytes} B in the flow < traffic_volume_threshold {threshold} B: low-volume, beacon-like"
        ));
    }
    if cleartext_carrier {
        level = level.saturating_sub(1);
    }
    // Thin evidence caps the severity at low.
    if total_pkts <= 1 {
        level = level.min(0);
        reasons.push("a single packet is weak evidence".into());
    }
    if !ev.start_seen {
        level = level.min(0);
        reasons
            .push("the flow's start was not captured: the sampled bytes may be mid-stream".into());
    }
    let both = random.len() == 2;
    if both {
        reasons.push("both directions look random".into());
    }
    let mut severity = Severity::from_level(level);
    let best = random
        .iter()
        .map(|(_, e)| e.random_confidence)
        .fold(0.0f64, f64::max)
        .clamp(0.0, 1.0);
    let clamped_level = f64::from(severity.level());
    let bonus = if both { 0.05 } else { 0.0 };
    let score = (best * (0.55 + 0.15 * clamped_level) + bonus).clamp(0.0, 1.0);

    let suppressed = if let Some(net) = cfg
        .allowed_destinations
        .iter()
        .find(|n| n.contains(&ev.server_ip))
    {
        Some(format!(
            "destination {} is in allowed_destinations ({net})",
            ev.server_ip
        ))
    } else if cfg.allowed_ports.contains(&port) {
        Some(format!("server port {port} is in allowed_ports"))
    } else {
        None
    };
    if suppressed.is_some() {
        severity = Severity::Low;
    }
    // The score is clamped to 0..=1, so narrowing to f32 only rounds.
    let score = score as f32;
    Some(An0404Finding {
        score,
        severity,
        reasons,
        suppressed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::protocol::Confidence;

    /// A direction whose sample is consistent with random data.
    fn random_dir(sample_len: usize, bytes: u64, pkts: u64) -> DirEvidence {
        DirEvidence {
            sample_len,
            bits_per_byte: 7.62,
            expected_random: 7.87,
            random_confidence: 0.97,
            printable_ratio: 0.37,
            first_bytes_printable: false,
            bytes,
            pkts,
        }
    }

    /// A direction that is cleartext.
    fn text_dir(bytes: u64, pkts: u64) -> DirEvidence {
        DirEvidence {
            sample_len: 400,
            bits_per_byte: 4.9,
            expected_random: 7.5,
            random_confidence: 0.0,
            printable_ratio: 0.98,
            first_bytes_printable: true,
            bytes,
            pkts,
        }
    }

    fn flow(port: u16, proto: AppProto, dirs: [DirEvidence; 2]) -> FlowEvidence<'static> {
        FlowEvidence {
            transport: Transport::Tcp,
            client_port: 50_514,
            server_port: port,
            server_ip: "203.0.113.9".parse().expect("ip"),
            app_proto: proto,
            recognition: None,
            content: None,
            dirs,
            start_seen: true,
            duration_ns: 60_000_000_000,
            ended: true,
        }
    }

    fn beacon(port: u16) -> FlowEvidence<'static> {
        flow(
            port,
            AppProto::Unknown,
            [random_dir(1460, 9_000, 12), random_dir(600, 4_000, 10)],
        )
    }

    #[test]
    fn random_payload_on_4444_is_high() {
        let f = evaluate(&An0404Config::default(), &beacon(4444)).expect("fires");
        assert_eq!(f.severity, Severity::High);
        assert!(f.suppressed.is_none());
        assert!(f.score > 0.8, "{}", f.score);
        let text = f.reasons.join("\n");
        assert!(
            text.contains("payload toserver 7.62 bits/byte over 1460 B"),
            "{text}"
        );
        assert!(
            text.contains("no handshake of any known encrypted protocol"),
            "{text}"
        );
        assert!(
            text.contains("port 4444 has no expected protocol"),
            "{text}"
        );
    }

    #[test]
    fn tls_on_4444_is_not_reported() {
        let r = Recognition {
            proto: AppProto::Tls,
            evidence: "tls record header 16 03 0x + client_hello",
            confidence: Confidence::Strong,
        };
        let mut ev = beacon(4444);
        ev.app_proto = AppProto::Tls;
        ev.recognition = Some(&r);
        assert_eq!(evaluate(&An0404Config::default(), &ev), None);
    }

    #[test]
    fn gzip_body_over_http_is_not_reported() {
        let mut ev = flow(
            80,
            AppProto::Http,
            [text_dir(600, 3), random_dir(4096, 80_000, 60)],
        );
        ev.content = Some(ContentKind::Gzip);
        assert_eq!(evaluate(&An0404Config::default(), &ev), None);
    }

    #[test]
    fn random_body_over_http_is_left_to_other_analytics_by_default() {
        let ev = flow(
            80,
            AppProto::Http,
            [random_dir(4096, 8_000, 6), text_dir(300, 3)],
        );
        assert_eq!(evaluate(&An0404Config::default(), &ev), None);
    }

    #[test]
    fn random_body_over_http_is_reported_when_cleartext_carriers_are_asked_for() {
        let ev = flow(
            80,
            AppProto::Http,
            [random_dir(4096, 8_000, 6), text_dir(300, 3)],
        );
        let cfg = An0404Config {
            report_cleartext_carriers: true,
            ..An0404Config::default()
        };
        let f = evaluate(&cfg, &ev).expect("fires");
        assert!(
            f.reasons.iter().any(|r| r.starts_with("cleartext http")),
            "{:?}",
            f.reasons
        );
    }

    #[test]
    fn random_on_80_outranks_random_on_443() {
        let cfg = An0404Config::default();
        let on80 = evaluate(&cfg, &beacon(80)).expect("fires on 80");
        let on443 = evaluate(&cfg, &beacon(443)).expect("fires on 443");
        assert!(on80.severity > on443.severity, "{on80:?} vs {on443:?}");
        assert!(on80.score > on443.score);
        assert!(
            on80.reasons
                .iter()
                .any(|r| r == "port 80 expects cleartext http")
        );
    }

    #[test]
    fn allowlisted_destination_is_suppressed_with_reason() {
        let cfg = An0404Config {
            allowed_destinations: vec!["203.0.113.0/24".parse().expect("net")],
            ..An0404Config::default()
        };
        let f = evaluate(&cfg, &beacon(4444)).expect("kept");
        assert_eq!(f.severity, Severity::Low);
        let why = f.suppressed.expect("suppressed");
        assert!(
            why.contains("203.0.113.9") && why.contains("203.0.113.0/24"),
            "{why}"
        );
    }

    #[test]
    fn allowlisted_port_is_suppressed_with_reason() {
        let cfg = An0404Config {
            allowed_ports: vec![4444],
            ..An0404Config::default()
        };
        let f = evaluate(&cfg, &beacon(4444)).expect("kept");
        assert_eq!(
            f.suppressed.as_deref(),
            Some("server port 4444 is in allowed_ports")
        );
    }

    #[test]
    fn open_flow_moving_a_sample_fast_is_not_ranked_beacon_like() {
        let cfg = An0404Config::default();
        let mut tunnel = beacon(4444);
        tunnel.ended = false;
        tunnel.duration_ns = 5_000_000; // 13 KB in 5 ms
        let fast = evaluate(&cfg, &tunnel).expect("fires");
        assert!(
            fast.reasons
                .iter()
                .any(|r| r.contains("too fast for a beacon")),
            "{:?}",
            fast.reasons
        );
        let slow = evaluate(&cfg, &beacon(4444)).expect("fires");
        assert!(fast.severity < slow.severity, "{fast:?} vs {slow:?}");
        // The same rate over fewer bytes than a full sample says nothing about volume.
        let mut small = beacon(4444);
        small.ended = false;
        small.duration_ns = 1_000_000;
        small.dirs[0].bytes = 1_000;
        small.dirs[1].bytes = 1_000;
        let first = evaluate(&cfg, &small).expect("fires");
        assert!(
            first.reasons.iter().any(|r| r.contains("beacon-like")),
            "{:?}",
            first.reasons
        );
        // At the flow's end the total decides, not the rate.
        let mut ended = tunnel;
        ended.ended = true;
        let done = evaluate(&cfg, &ended).expect("fires");
        assert!(
            done.reasons.iter().any(|r| r.contains("beacon-like")),
            "{:?}",
            done.reasons
        );
    }

    #[test]
    fn bulk_volume_ranks_below_a_beacon() {
        let cfg = An0404Config::default();
        let mut bulk = beacon(4444);
        bulk.dirs[0].bytes = 40_000_000;
        bulk.dirs[1].bytes = 900_000_000;
        let bulk = evaluate(&cfg, &bulk).expect("fires");
        let small = evaluate(&cfg, &beacon(4444)).expect("fires");
        assert!(bulk.severity < small.severity, "{bulk:?} vs {small:?}");
        assert!(bulk.reasons.iter().any(|r| r.contains("bulk, vpn-like")));
        assert!(small.reasons.iter().any(|r| r.contains("beacon-like")));
    }

    #[test]
    fn short_sample_below_min_len_is_not_reported() {
        let ev = flow(
            4444,
            AppProto::Unknown,
            [random_dir(40, 100, 1), DirEvidence::default()],
        );
        assert_eq!(evaluate(&An0404Config::default(), &ev), None);
    }

    #[test]
    fn high_entropy_with_low_random_confidence_is_not_reported() {
        // 7.3 bits/byte looks high, but over 4 KiB random data would give 7.95: the
        // length-aware confidence says no.
        let mut d = random_dir(4096, 50_000, 40);
        d.bits_per_byte = 7.3;
        d.random_confidence = 0.01;
        let ev = flow(4444, AppProto::Unknown, [d, d]);
        assert_eq!(evaluate(&An0404Config::default(), &ev), None);
    }

    #[test]
    fn single_packet_flow_is_weaker_than_a_conversation() {
        let cfg = An0404Config::default();
        let one = flow(
            8000,
            AppProto::Unknown,
            [random_dir(900, 950, 1), DirEvidence::default()],
        );
        let one = evaluate(&cfg, &one).expect("fires");
        let many = evaluate(&cfg, &beacon(8000)).expect("fires");
        assert_eq!(one.severity, Severity::Low);
        assert!(one.severity < many.severity);
    }

    #[test]
    fn flow_whose_start_was_not_captured_is_capped_at_low() {
        let mut ev = beacon(80);
        ev.start_seen = false;
        let f = evaluate(&An0404Config::default(), &ev).expect("fires");
        assert_eq!(f.severity, Severity::Low);
        assert!(
            f.reasons
                .iter()
                .any(|r| r.contains("start was not captured"))
        );
    }

    #[test]
    fn toml_config_overrides_one_port_and_keeps_other_defaults() {
        let cfg: An0404Config = toml::from_str(
            r#"
            traffic_volume_threshold = 5000
            allowed_destinations = ["10.0.0.0/8"]
            [port_profiles]
            5222 = { expect = "encrypted", protocols = ["tls"] }
            80 = { expect = "any" }
            "#,
        )
        .expect("config");
        assert_eq!(cfg.traffic_volume_threshold, 5000);
        assert_eq!(
            cfg.port_profiles.get(&5222).map(|p| p.expect),
            Some(PortExpectation::Encrypted)
        );
        assert_eq!(
            cfg.port_profiles.get(&80).map(|p| p.expect),
            Some(PortExpectation::Any)
        );
        assert_eq!(
            cfg.port_profiles.get(&443).map(|p| p.expect),
            Some(PortExpectation::Encrypted)
        );
        assert_eq!(cfg.random_confidence, 0.9);
    }

    #[test]
    fn toml_port_profile_key_that_is_not_a_port_is_an_error() {
        let err =
            toml::from_str::<An0404Config>("[port_profiles]\nhttp = { expect = \"cleartext\" }\n")
                .expect_err("bad key");
        assert!(err.to_string().contains("not a port number"), "{err}");
    }

    #[test]
    fn finding_serializes_with_snake_case_severity() {
        let f = evaluate(&An0404Config::default(), &beacon(4444)).expect("fires");
        let json = serde_json::to_value(&f).expect("json");
        assert_eq!(json["severity"], "high");
        assert!(json["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    }
}
