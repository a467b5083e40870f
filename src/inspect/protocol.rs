//! Known-protocol recognition from the first bytes of each direction of a flow.
//!
//! Owns [`AppProto`], the per-flow [`ProtocolState`] and the pure first-bytes recognisers
//! (in `protocol/recognise.rs`), plus [`content_kind`] / [`explain_content`] for
//! compressed and media payloads (in `protocol/content.rs`).
//!
//! # Contracts
//!
//! - **Content is proof, ports are hints.** Every recogniser checks structure (fixed
//!   values, length fields that must equal the bytes present, echoes of identifiers across
//!   directions). A port only picks a name among DNS-shaped protocols (DNS, mDNS, LLMNR,
//!   NetBIOS-NS), names TLS on 853 as DNS over TLS, and gates ESP-in-UDP and the NAT-T
//!   keepalive to udp/4500 (RFC 3948), whose content is too thin to prove alone.
//! - **False matches on random input are rare by construction.** Each recogniser documents
//!   the probability that a uniformly random buffer passes it; the sum over all of them is
//!   well below 1e-5 per buffer, checked by a test over 100 000 random buffers.
//! - **Bounded.** [`ProtocolState`] holds a verdict, 16 bytes of the first message of each
//!   direction and, only while a TCP recogniser needs more bytes than the first segment
//!   gave, a prefix buffer capped at [`MAX_TCP_PREFIX`] bytes. UDP looks at the first
//!   [`MAX_UDP_DATAGRAMS`] datagrams of each direction.
//! - **Never panics** on any input: all reads go through `get()`.
//!
//! # Example
//!
//! ```
//! use entrospect::flow::Direction;
//! use entrospect::inspect::protocol::{AppProto, ProtocolState, Transport};
//!
//! let mut st = ProtocolState::new();
//! let hello = b"SSH-2.0-OpenSSH_9.6\r\n";
//! let r = st.observe(Transport::Tcp, Direction::ToServer, 50000, 2222, hello);
//! assert_eq!(r.map(|r| r.proto), Some(AppProto::Ssh));
//! let r = st.observe(Transport::Tcp, Direction::ToClient, 50000, 2222, b"SSH-2.0-dropbear\r\n");
//! assert!(st.done());
//! assert_eq!(r.map(|r| r.confidence), Some(entrospect::inspect::protocol::Confidence::Strong));
//! ```

mod content;
mod recognise;

pub use content::{
    ContentKind, HttpHeadView, MAX_HTTP_HEAD, content_kind, explain_content, http_head,
};

use crate::flow::Direction;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Most TCP bytes per direction buffered while a recogniser waits for more.
pub const MAX_TCP_PREFIX: usize = 512;
/// Datagrams per direction handed to the recognisers before a UDP direction is given up.
pub const MAX_UDP_DATAGRAMS: u8 = 4;
/// Bytes of each direction's first message kept for cross-direction echo checks.
const HEAD_LEN: usize = 16;

/// An application protocol, as named in output (`app_proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AppProto {
    /// Nothing recognised.
    Unknown,
    /// TLS (RFC 8446 / 5246), including SSLv2-compatible ClientHellos and Tor.
    Tls,
    /// SSH (RFC 4253), versions 1 and 2.
    Ssh,
    /// QUIC v1/v2, IETF drafts and Google QUIC.
    Quic,
    /// DTLS 1.0/1.2/1.3.
    Dtls,
    /// WireGuard.
    Wireguard,
    /// OpenVPN over TCP or UDP.
    Openvpn,
    /// IPsec ESP (IP protocol 50, or UDP-encapsulated on 4500).
    Esp,
    /// IKEv1 / IKEv2.
    Ike,
    /// RDP (TPKT + X.224, then TLS/CredSSP).
    Rdp,
    /// Kerberos.
    Kerberos,
    /// SMB1/2/3 (direct or over a NetBIOS session).
    Smb,
    /// DCE/RPC connection-oriented (may be sealed with packet privacy).
    Dcerpc,
    /// HTTP/1.x, or the HTTP/2 cleartext preface.
    Http,
    /// DNS.
    Dns,
    /// DNS over TLS (TLS on 853).
    DnsOverTls,
    /// DNS over HTTPS (TLS to a configured resolver).
    DnsOverHttps,
    /// SMTP.
    Smtp,
    /// IMAP.
    Imap,
    /// POP3.
    Pop3,
    /// FTP control channel.
    Ftp,
    /// NTP / SNTP.
    Ntp,
    /// DHCP (BOOTP with the DHCP magic cookie).
    Dhcp,
    /// Multicast DNS.
    Mdns,
    /// Link-local multicast name resolution.
    Llmnr,
    /// NetBIOS name service.
    NetbiosNs,
    /// SSDP (HTTP-over-UDP discovery).
    Ssdp,
    /// SIP.
    Sip,
    /// Telnet.
    Telnet,
    /// SOCKS4/4a/5 handshake.
    Socks,
}

impl AppProto {
    /// The stable output name (same as the serde form).
    pub const fn as_str(self) -> &'static str {
        match self {
            AppProto::Unknown => "unknown",
            AppProto::Tls => "tls",
            AppProto::Ssh => "ssh",
            AppProto::Quic => "quic",
            AppProto::Dtls => "dtls",
            AppProto::Wireguard => "wireguard",
            AppProto::Openvpn => "openvpn",
            AppProto::Esp => "esp",
            AppProto::Ike => "ike",
            AppProto::Rdp => "rdp",
            AppProto::Kerberos => "kerberos",
            AppProto::Smb => "smb",
            AppProto::Dcerpc => "dcerpc",
            AppProto::Http => "http",
            AppProto::Dns => "dns",
            AppProto::DnsOverTls => "dns_over_tls",
            AppProto::DnsOverHttps => "dns_over_https",
            AppProto::Smtp => "smtp",
            AppProto::Imap => "imap",
            AppProto::Pop3 => "pop3",
            AppProto::Ftp => "ftp",
            AppProto::Ntp => "ntp",
            AppProto::Dhcp => "dhcp",
            AppProto::Mdns => "mdns",
            AppProto::Llmnr => "llmnr",
            AppProto::NetbiosNs => "netbios_ns",
            AppProto::Ssdp => "ssdp",
            AppProto::Sip => "sip",
            AppProto::Telnet => "telnet",
            AppProto::Socks => "socks",
        }
    }

    /// Whether the protocol legitimately carries random-looking payload: it encrypts
    /// (TLS, SSH, QUIC, DTLS, WireGuard, OpenVPN, ESP, IKE, RDP, DoT, DoH), carries
    /// encrypted tickets (Kerberos), or may seal or carry opaque file data by design
    /// (SMB 3 encryption and file transfer, DCE/RPC packet privacy).
    pub const fn is_encrypted(self) -> bool {
        matches!(
            self,
            AppProto::Tls
                | AppProto::Ssh
                | AppProto::Quic
                | AppProto::Dtls
                | AppProto::Wireguard
                | AppProto::Openvpn
                | AppProto::Esp
                | AppProto::Ike
                | AppProto::Rdp
                | AppProto::Kerberos
                | AppProto::Smb
                | AppProto::Dcerpc
                | AppProto::DnsOverTls
                | AppProto::DnsOverHttps
        )
    }
}

impl std::fmt::Display for AppProto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a flow runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP: `observe` gets the first contiguous bytes of each direction.
    Tcp,
    /// UDP: `observe` gets each of the first datagrams of each direction.
    Udp,
    /// Any other IP protocol, by number (50 = ESP).
    Other(u8),
}

impl Transport {
    /// IP protocol number of ESP (RFC 4303).
    pub const IP_PROTO_ESP: u8 = 50;
}

/// How sure a recognition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The structure of one direction (or one message) matched.
    Weak,
    /// The structure matched in both directions, or a value of one direction is echoed by
    /// the other (or the IP protocol number itself names the protocol).
    Strong,
}

impl Confidence {
    /// The stable output name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Confidence::Weak => "weak",
            Confidence::Strong => "strong",
        }
    }
}

/// A verdict: which protocol, what showed it, how sure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Recognition {
    /// The protocol.
    pub proto: AppProto,
    /// What matched, readable by a person (e.g. `tls record header 16 03 0x + client_hello`).
    pub evidence: &'static str,
    /// How sure.
    pub confidence: Confidence,
}

/// What one recogniser says about the bytes it was shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The bytes match; `strong` when the match itself spans both directions.
    Match {
        proto: AppProto,
        evidence: &'static str,
        strong: bool,
    },
    /// A prefix of a match: show more bytes of this direction (TCP) or datagrams (UDP).
    More,
    /// Not this protocol.
    No,
}

/// The first bytes of a direction's first message, kept for echo checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Head {
    bytes: [u8; HEAD_LEN],
    stored: u8,
}

impl Head {
    fn from_message(data: &[u8]) -> Head {
        let mut bytes = [0u8; HEAD_LEN];
        let n = data.len().min(HEAD_LEN);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        Head {
            bytes,
            stored: u8::try_from(n).unwrap_or(u8::MAX),
        }
    }

    /// The stored bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.stored)).unwrap_or(&[])
    }
}

/// Everything a recogniser may look at for one message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) transport: Transport,
    pub(crate) dir: Direction,
    pub(crate) client_port: u16,
    pub(crate) server_port: u16,
    /// The message (UDP datagram) or the TCP prefix seen so far.
    pub(crate) data: &'a [u8],
    /// Index of this datagram in its direction (always 0 for TCP).
    pub(crate) index: u8,
    /// This direction's first message, when this is not it.
    pub(crate) own_first: Option<&'a Head>,
    /// The other direction's first message, when it has been seen.
    pub(crate) peer_first: Option<&'a Head>,
    /// A verdict exists: the recognisers only confirm it.
    pub(crate) confirming: bool,
}

impl Ctx<'_> {
    /// Whether either port equals `p` (a hint, never proof).
    pub(crate) fn port_is(&self, p: u16) -> bool {
        self.client_port == p || self.server_port == p
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DirPhase {
    /// Nothing seen yet, or still reading.
    #[default]
    Open,
    /// No more bytes of this direction are needed.
    Finished,
}

#[derive(Clone, Debug, Default)]
struct DirState {
    phase: DirPhase,
    msgs: u8,
    first: Option<Head>,
    /// TCP prefix, allocated only while a recogniser asked for more bytes.
    prefix: Option<Vec<u8>>,
    /// This direction matched the verdict's protocol.
    matched: bool,
}

/// Per-flow protocol recognition state: small (two 16-byte heads and a verdict), with a
/// bounded TCP prefix buffer allocated only while a recogniser waits for more bytes.
#[derive(Clone, Debug, Default)]
pub struct ProtocolState {
    verdict: Option<Recognition>,
    dirs: [DirState; 2],
    done: bool,
}

impl ProtocolState {
    /// A fresh state for a new flow.
    pub fn new() -> Self {
        Self::default()
    }

    /// Shows the recognisers the first payload bytes of a direction.
    ///
    /// TCP: call with the first contiguous bytes of the direction, in order, possibly over
    /// several calls (each call continues the stream) until [`done`](Self::done) or until
    /// the direction has given [`MAX_TCP_PREFIX`] bytes. UDP: call with each of the first
    /// datagrams. Other IP protocols: one call is enough (ESP is recognised by its number).
    ///
    /// Returns the verdict when it is first decided or when it becomes
    /// [`Confidence::Strong`]; `None` otherwise (see [`current`](Self::current)).
    ///
    /// # Panics
    ///
    /// Never.
    pub fn observe(
        &mut self,
        transport: Transport,
        dir: Direction,
        client_port: u16,
        server_port: u16,
        data: &[u8],
    ) -> Option<Recognition> {
        if self.done {
            return None;
        }
        match transport {
            Transport::Other(Transport::IP_PROTO_ESP) => {
                self.done = true;
                let r = Recognition {
                    proto: AppProto::Esp,
                    evidence: "ip protocol 50 (esp)",
                    confidence: Confidence::Strong,
                };
                self.verdict = Some(r);
                return Some(r);
            }
            Transport::Other(_) => {
                self.done = true;
                return None;
            }
            Transport::Tcp | Transport::Udp => {}
        }
        if data.is_empty() {
            return None;
        }
        let d = dir.index();
        let peer = dir.reverse().index();
        if self
            .dirs
            .get(d)
            .is_none_or(|s| s.phase == DirPhase::Finished)
        {
            return None;
        }

        // The bytes the recognisers see: the TCP prefix (if one is being buffered) or the
        // message itself.
        let mut buffered: Option<Vec<u8>> = None;
        if transport == Transport::Tcp
            && let Some(state) = self.dirs.get_mut(d)
            && let Some(mut buf) = state.prefix.take()
        {
            let room = MAX_TCP_PREFIX.saturating_sub(buf.len());
            buf.extend_from_slice(data.get(..room.min(data.len())).unwrap_or(&[]));
            buffered = Some(buf);
        }
        let view: &[u8] = buffered.as_deref().unwrap_or(data);

        let (index, own_first) = match self.dirs.get(d) {
            Some(s) if transport == Transport::Udp => (s.msgs, s.first.as_ref()),
            _ => (0, None),
        };
        let peer_first = self.dirs.get(peer).and_then(|s| s.first.as_ref());
        let ctx = Ctx {
            transport,
            dir,
            client_port,
            server_port,
            data: view,
            index,
            own_first,
            peer_first,
            confirming: self.verdict.is_some(),
        };

        let step = match self.verdict {
            Some(v) => recognise::confirm(v.proto, &ctx),
            None => recognise::recognise(&ctx),
        };
        let first_now = Head::from_message(view);
        let mut out = None;
        let mut finished = false;
        match step {
            Step::Match {
                proto,
                evidence,
                strong,
            } => {
                let other_matched = self.dirs.get(peer).is_some_and(|s| s.matched);
                let confidence = if strong || (self.verdict.is_some() && other_matched) {
                    Confidence::Strong
                } else {
                    Confidence::Weak
                };
                let proto = refine_by_port(proto, &ctx);
                let new = match self.verdict {
                    // A confirmation keeps the first evidence, upgrading its confidence.
                    Some(v) => Recognition {
                        confidence: v.confidence.max(confidence),
                        ..v
                    },
                    None => Recognition {
                        proto,
                        evidence,
                        confidence,
                    },
                };
                if self.verdict != Some(new) {
                    out = Some(new);
                }
                self.verdict = Some(new);
                if let Some(s) = self.dirs.get_mut(d) {
                    s.matched = true;
                }
                finished = true;
            }
            Step::More => {
                if transport == Transport::Tcp {
                    if view.len() >= MAX_TCP_PREFIX {
                        finished = true;
                    } else {
                        let buf = match buffered.take() {
                            Some(b) => b,
                            // Not buffering yet: the view is this call's data.
                            None => data.to_vec(),
                        };
                        if let Some(s) = self.dirs.get_mut(d) {
                            s.prefix = Some(buf);
                        }
                    }
                }
            }
            Step::No => finished = true,
        }
        if let Some(s) = self.dirs.get_mut(d) {
            if s.first.is_none() || transport == Transport::Tcp {
                // TCP: the head follows the growing prefix; UDP: the first datagram.
                s.first = Some(first_now);
            }
            s.msgs = s.msgs.saturating_add(1);
            let udp_exhausted = transport == Transport::Udp && s.msgs >= MAX_UDP_DATAGRAMS;
            // A UDP direction keeps looking (a second datagram can confirm) unless it matched.
            let tcp_or_matched = transport == Transport::Tcp || s.matched;
            if (finished && tcp_or_matched) || udp_exhausted {
                s.phase = DirPhase::Finished;
                s.prefix = None;
            }
        }
        self.update_done();
        out
    }

    fn update_done(&mut self) {
        let strong = self
            .verdict
            .is_some_and(|v| v.confidence == Confidence::Strong);
        let all_finished = self.dirs.iter().all(|s| s.phase == DirPhase::Finished);
        if strong || all_finished {
            self.done = true;
            for s in &mut self.dirs {
                s.prefix = None;
            }
        }
    }

    /// The verdict so far, if any.
    pub fn current(&self) -> Option<&Recognition> {
        self.verdict.as_ref()
    }

    /// Whether no more bytes are needed (a strong verdict, or every direction was read as
    /// far as the recognisers go).
    pub fn done(&self) -> bool {
        self.done
    }

    /// Re-labels a TLS verdict as DNS over HTTPS when the server is a configured resolver
    /// (the `doh_resolvers` hook; the engine passes the flow's server address).
    pub fn apply_doh_resolvers(&mut self, server_ip: IpAddr, resolvers: &DohResolvers) {
        if let Some(v) = self.verdict.as_mut()
            && v.proto == AppProto::Tls
            && resolvers.contains(server_ip)
        {
            v.proto = AppProto::DnsOverHttps;
            v.evidence = "tls to a configured doh resolver";
        }
    }
}

/// Names a content-proven protocol by a port hint where the content alone cannot tell
/// siblings apart (DNS-shaped name services, DNS over TLS).
fn refine_by_port(proto: AppProto, ctx: &Ctx<'_>) -> AppProto {
    match proto {
        AppProto::Dns if ctx.port_is(5353) => AppProto::Mdns,
        AppProto::Dns if ctx.port_is(5355) => AppProto::Llmnr,
        AppProto::Dns if ctx.port_is(137) => AppProto::NetbiosNs,
        AppProto::Tls if ctx.server_port == 853 => AppProto::DnsOverTls,
        other => other,
    }
}

/// The DNS-over-HTTPS resolvers whose TLS flows are named [`AppProto::DnsOverHttps`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DohResolvers(pub Vec<IpNet>);

impl DohResolvers {
    /// Whether `ip` is inside one of the configured networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests;
