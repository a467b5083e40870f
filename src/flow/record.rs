//! Per-flow counters and state that output reads.

use super::Direction;
use super::key::FlowKey;
use crate::time::Timestamp;
use serde::Serialize;
use std::net::IpAddr;

/// TCP connection state as seen from the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpState {
    /// Not TCP, or nothing seen yet.
    #[default]
    None,
    /// SYN seen, no SYN-ACK yet.
    SynSent,
    /// SYN-ACK seen.
    SynRecv,
    /// Handshake done, or picked up mid-stream.
    Established,
    /// FIN seen in one direction.
    Closing,
    /// FIN seen in both directions, or RST.
    Closed,
}

/// What a flow is and what it carried so far: the read-only view inspectors and output get.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowMeta {
    /// Stable flow id (hash of key and start time).
    pub id: u64,
    /// Client (initiator) address.
    pub client_ip: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// Server (responder) address.
    pub server_ip: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// How the client was chosen: `syn` or `first_packet`.
    pub initiator_by: &'static str,
    /// First packet time.
    pub start: Timestamp,
    /// Last packet time.
    pub last: Timestamp,
    /// Packets per direction (index: [`Direction::index`]).
    pub pkts: [u64; 2],
    /// Whole-frame bytes per direction, as EVE counts them.
    pub bytes: [u64; 2],
    /// Transport payload bytes per direction (all of them, retransmissions included).
    pub payload_bytes: [u64; 2],
    /// Payload bytes handed to inspectors per direction (reassembled, within depth).
    pub inspected_bytes: [u64; 2],
    /// Payload-carrying packets per direction.
    pub payload_pkts: [u64; 2],
    /// OR of TCP flags per direction.
    pub tcp_flags: [u8; 2],
    /// TCP state.
    pub tcp_state: TcpState,
    /// Bytes lost to capture gaps per direction.
    pub gap_bytes: [u64; 2],
    /// Out-of-order segments buffered per direction.
    pub ooo_segments: [u64; 2],
    /// Retransmitted or overlapping payload bytes ignored per direction.
    pub overlap_bytes: [u64; 2],
    /// Tunnel depth of the first packet.
    pub tunnel_depth: u8,
}

impl FlowMeta {
    /// The flow's canonical key (made from its endpoints: the record does not store it).
    pub fn key(&self) -> FlowKey {
        FlowKey::new(
            self.client_ip,
            self.client_port,
            self.server_ip,
            self.server_port,
            self.proto,
        )
        .0
    }

    /// Address and port of one side: the sender of `dir`.
    pub fn sender(&self, dir: Direction) -> (IpAddr, u16) {
        match dir {
            Direction::ToServer => (self.client_ip, self.client_port),
            Direction::ToClient => (self.server_ip, self.server_port),
        }
    }

    /// Packets in both directions.
    pub fn total_pkts(&self) -> u64 {
        self.pkts[0] + self.pkts[1]
    }

    /// Frame bytes in both directions.
    pub fn total_bytes(&self) -> u64 {
        self.bytes[0] + self.bytes[1]
    }
}
