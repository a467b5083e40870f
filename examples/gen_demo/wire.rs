//! Turns a conversation (who wrote which bytes, when) into Ethernet frames: a TCP
//! three-way handshake, MSS segmentation, receiver ACKs, PSH on the last segment of each
//! write, FIN/ACK teardown; or a UDP exchange. Headers and checksums come from
//! `etherparse::PacketBuilder`.
//!
//! The capture point is the client's LAN: client packets are stamped when sent, server
//! packets one round-trip after the client packet they answer.

use super::GenError;
use super::rng::Keystream;
use entrospect::Timestamp;
use etherparse::{
    IpHeaders, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder, TcpHeader, TcpOptionElement,
};
use std::net::IpAddr;

/// Nanoseconds per microsecond / millisecond.
pub const US: u64 = 1_000;
/// Nanoseconds per millisecond.
pub const MS: u64 = 1_000_000;

/// Time to put one full-sized frame on a 100 Mbit/s link (1514 bytes ≈ 121 µs).
const SEGMENT_GAP: u64 = 121 * US;
/// How long after receiving data the client's ACK leaves (capture is on the client side).
const CLIENT_ACK_DELAY: u64 = 40 * US;
/// Server-side processing before it answers.
const SERVER_TURNAROUND: u64 = 300 * US;
/// Client-side processing before it writes after reading.
const CLIENT_TURNAROUND: u64 = 200 * US;
/// Window scale both sides announce (RFC 7323 §2).
const WINDOW_SCALE: u8 = 7;
/// Window in the SYN (unscaled, as Linux sends it).
const SYN_WINDOW: u16 = 64_240;
/// Window after the handshake: 502 << 7 = 64 256 bytes.
const SCALED_WINDOW: u16 = 502;

/// A link-layer and network address pair for one side of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The MAC of the frames this side sends on the captured LAN.
    pub mac: [u8; 6],
    /// IP address.
    pub ip: IpAddr,
    /// Transport port.
    pub port: u16,
    /// IPv4 TTL / IPv6 hop limit of its packets as seen at the capture point.
    pub ttl: u8,
}

/// Which side wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The connection's initiator.
    Client,
    /// The responder.
    Server,
}

/// One application write: bytes from one side, after `think` ns of idle time.
#[derive(Clone, Debug)]
pub struct Write {
    /// Who sends.
    pub from: Side,
    /// What the application handed to the socket.
    pub bytes: Vec<u8>,
    /// Idle time before the write, on top of the network turnaround.
    pub think: u64,
}

impl Write {
    /// A client write after `think` ns.
    pub fn client(bytes: Vec<u8>, think: u64) -> Write {
        Write {
            from: Side::Client,
            bytes,
            think,
        }
    }

    /// A server write after `think` ns.
    pub fn server(bytes: Vec<u8>, think: u64) -> Write {
        Write {
            from: Side::Server,
            bytes,
            think,
        }
    }
}

/// One frame with its capture time.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Capture timestamp.
    pub ts: Timestamp,
    /// Ethernet II frame.
    pub data: Vec<u8>,
}

/// Per-side sender state: addresses, next sequence number, IP id.
struct Sender {
    ep: Endpoint,
    peer: Endpoint,
    seq: u32,
    ip_id: u16,
    flow_label: u32,
}

impl Sender {
    fn frame(
        &mut self,
        ts: u64,
        flags: Flags,
        ack: u32,
        options: &[TcpOptionElement],
        payload: &[u8],
    ) -> Result<Frame, GenError> {
        let window = if flags.syn { SYN_WINDOW } else { SCALED_WINDOW };
        let mut tcp = TcpHeader::new(self.ep.port, self.peer.port, self.seq, window);
        tcp.syn = flags.syn;
        tcp.fin = flags.fin;
        tcp.psh = flags.psh;
        if flags.ack {
            tcp.ack = true;
            tcp.acknowledgment_number = ack;
        }
        tcp.set_options(options)
            .map_err(|e| GenError::Packet(format!("tcp options: {e}")))?;
        let ip = self.ip_header()?;
        let builder = PacketBuilder::ethernet2(self.ep.mac, self.peer.mac)
            .ip(ip)
            .tcp_header(tcp);
        let mut data = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut data, payload)
            .map_err(|e| GenError::Packet(format!("tcp frame: {e}")))?;
        // Sequence space: SYN and FIN take one number each (RFC 9293 §3.4).
        let used = u32::try_from(payload.len())
            .map_err(|_| GenError::Packet("segment longer than 4 GiB".into()))?
            .wrapping_add(u32::from(flags.syn) + u32::from(flags.fin));
        self.seq = self.seq.wrapping_add(used);
        Ok(Frame {
            ts: Timestamp::from_nanos(ts),
            data,
        })
    }

    fn udp_frame(&mut self, ts: u64, payload: &[u8]) -> Result<Frame, GenError> {
        let ip = self.ip_header()?;
        let builder = PacketBuilder::ethernet2(self.ep.mac, self.peer.mac)
            .ip(ip)
            .udp(self.ep.port, self.peer.port);
        let mut data = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut data, payload)
            .map_err(|e| GenError::Packet(format!("udp frame: {e}")))?;
        Ok(Frame {
            ts: Timestamp::from_nanos(ts),
            data,
        })
    }

    /// The IP header of the next packet (payload length and checksum are filled in by
    /// the builder); IPv4 ids count up per sender, DF set as Linux and Windows do.
    fn ip_header(&mut self) -> Result<IpHeaders, GenError> {
        match (self.ep.ip, self.peer.ip) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut h = Ipv4Header::new(
                    0,
                    self.ep.ttl,
                    etherparse::IpNumber::TCP,
                    src.octets(),
                    dst.octets(),
                )
                .map_err(|e| GenError::Packet(format!("ipv4 header: {e}")))?;
                h.identification = self.ip_id;
                h.dont_fragment = true;
                self.ip_id = self.ip_id.wrapping_add(1);
                Ok(IpHeaders::Ipv4(h, Default::default()))
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let h = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Ipv6FlowLabel::try_new(self.flow_label & 0xF_FFFF)
                        .map_err(|e| GenError::Packet(format!("ipv6 flow label: {e}")))?,
                    payload_length: 0,
                    next_header: etherparse::IpNumber::TCP,
                    hop_limit: self.ep.ttl,
                    source: src.octets(),
                    destination: dst.octets(),
                };
                Ok(IpHeaders::Ipv6(h, Default::default()))
            }
            _ => Err(GenError::Packet(
                "client and server use different IP versions".into(),
            )),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
}

const ACK: Flags = Flags {
    syn: false,
    ack: true,
    psh: false,
    fin: false,
};

/// A TCP connection to synthesise.
pub struct TcpFlow {
    /// The initiator.
    pub client: Endpoint,
    /// The responder.
    pub server: Endpoint,
    /// Time of the SYN, ns since the epoch.
    pub start: u64,
    /// Round-trip time between the capture point and the server.
    pub rtt: u64,
}

/// What a synthesised flow produced.
pub struct FlowFrames {
    /// The frames, in capture order.
    pub frames: Vec<Frame>,
    /// Time of the last frame.
    pub end: Timestamp,
}

impl TcpFlow {
    /// Builds the frames of the whole connection: handshake, `writes`, teardown.
    pub fn build(&self, writes: &[Write], rng: &mut Keystream) -> Result<FlowFrames, GenError> {
        let mss: u16 = if self.client.ip.is_ipv6() { 1440 } else { 1460 };
        let mut c = Sender {
            ep: self.client,
            peer: self.server,
            seq: rng.next_u32(),
            ip_id: rng.next_u32() as u16,
            flow_label: rng.next_u32(),
        };
        let mut s = Sender {
            ep: self.server,
            peer: self.client,
            seq: rng.next_u32(),
            ip_id: rng.next_u32() as u16,
            flow_label: rng.next_u32(),
        };
        let syn_options = [
            TcpOptionElement::MaximumSegmentSize(mss),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(WINDOW_SCALE),
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgementPermitted,
        ];
        let mut frames = Vec::new();
        let t0 = self.start;
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        frames.push(c.frame(t0, syn, 0, &syn_options, &[])?);
        let synack = Flags {
            syn: true,
            ack: true,
            ..Flags::default()
        };
        let t_synack = t0 + self.rtt;
        frames.push(s.frame(t_synack, synack, c.seq, &syn_options, &[])?);
        let mut last_client = t_synack + CLIENT_ACK_DELAY;
        frames.push(c.frame(last_client, ACK, s.seq, &[], &[])?);
        // Last time a server packet reached the capture point.
        let mut last_server = t_synack;

        let seg_len = usize::from(mss);
        for (i, w) in writes.iter().enumerate() {
            // The receiver piggybacks its final ACK on an immediate reply.
            let next_replies = writes
                .get(i + 1)
                .is_some_and(|n| n.from != w.from && n.think == 0);
            let chunks: Vec<&[u8]> = w.bytes.chunks(seg_len).collect();
            let n = chunks.len();
            match w.from {
                Side::Client => {
                    let mut t = last_client.max(last_server) + CLIENT_TURNAROUND + w.think;
                    for (k, chunk) in chunks.iter().enumerate() {
                        let last = k + 1 == n;
                        let flags = Flags { psh: last, ..ACK };
                        frames.push(c.frame(t, flags, s.seq, &[], chunk)?);
                        last_client = t;
                        if (k % 2 == 1 && !last) || (last && !next_replies) {
                            let ta = t + self.rtt;
                            frames.push(s.frame(ta, ACK, c.seq, &[], &[])?);
                            last_server = last_server.max(ta);
                        }
                        t += SEGMENT_GAP;
                    }
                }
                Side::Server => {
                    let mut t =
                        (last_client + self.rtt).max(last_server) + SERVER_TURNAROUND + w.think;
                    for (k, chunk) in chunks.iter().enumerate() {
                        let last = k + 1 == n;
                        let flags = Flags { psh: last, ..ACK };
                        frames.push(s.frame(t, flags, c.seq, &[], chunk)?);
                        last_server = t;
                        if (k % 2 == 1 && !last) || (last && !next_replies) {
                            let ta = t + CLIENT_ACK_DELAY;
                            frames.push(c.frame(ta, ACK, s.seq, &[], &[])?);
                            last_client = last_client.max(ta);
                        }
                        t += SEGMENT_GAP;
                    }
                }
            }
        }

        // Client closes: FIN/ACK, server FIN/ACK, final ACK (RFC 9293 §3.6).
        let fin = Flags { fin: true, ..ACK };
        let t_fin = last_client.max(last_server) + CLIENT_TURNAROUND;
        frames.push(c.frame(t_fin, fin, s.seq, &[], &[])?);
        let t_sfin = t_fin + self.rtt;
        frames.push(s.frame(t_sfin, fin, c.seq, &[], &[])?);
        let t_end = t_sfin + CLIENT_ACK_DELAY;
        frames.push(c.frame(t_end, ACK, s.seq, &[], &[])?);

        frames.sort_by_key(|f| f.ts);
        Ok(FlowFrames {
            frames,
            end: Timestamp::from_nanos(t_end),
        })
    }
}

/// A UDP request/response pair (DNS).
pub struct UdpExchange {
    /// The requester.
    pub client: Endpoint,
    /// The responder.
    pub server: Endpoint,
    /// Time of the request.
    pub start: u64,
    /// Time until the response reaches the capture point.
    pub rtt: u64,
}

impl UdpExchange {
    /// The request frame and the response frame.
    pub fn build(
        &self,
        request: &[u8],
        response: &[u8],
        rng: &mut Keystream,
    ) -> Result<FlowFrames, GenError> {
        let mut c = Sender {
            ep: self.client,
            peer: self.server,
            seq: 0,
            ip_id: rng.next_u32() as u16,
            flow_label: rng.next_u32(),
        };
        let mut s = Sender {
            ep: self.server,
            peer: self.client,
            seq: 0,
            ip_id: rng.next_u32() as u16,
            flow_label: rng.next_u32(),
        };
        let t_resp = self.start + self.rtt;
        let frames = vec![
            c.udp_frame(self.start, request)?,
            s.udp_frame(t_resp, response)?,
        ];
        Ok(FlowFrames {
            frames,
            end: Timestamp::from_nanos(t_resp),
        })
    }
}
