//! Flows: the bidirectional flow key, the flow table and TCP reassembly.

use serde::Serialize;

/// Which way a packet or a byte stream goes, relative to the flow's client.
///
/// The client is the sender of the TCP SYN (without ACK), else the first sender seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the client (initiator) to the server.
    ToServer,
    /// From the server (responder) to the client.
    ToClient,
}

impl Direction {
    /// The other direction.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    /// 0 for to-server, 1 for to-client: an index into per-direction arrays.
    pub const fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// The EVE-style name: `toserver` or `toclient`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::ToServer => "toserver",
            Direction::ToClient => "toclient",
        }
    }
}
