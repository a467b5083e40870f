//! Flows: the bidirectional flow key, the flow table and TCP reassembly.
//!
//! Owns per-flow counters, client/server orientation, timeouts and memory caps, and the
//! reassembly of each TCP direction up to the inspection depth. Must not parse
//! application data: payload goes to an [`Inspector`], the one hook through which the
//! `inspect` stage plugs in.
//!
//! Contracts: time is packet time; every per-flow cost is bounded (flow count, out-of-order
//! buffer, inspection depth); nothing here panics on input.

pub mod inspector;
pub mod key;
pub mod record;
mod slab;
pub mod table;
pub mod tcp;

pub use inspector::{EndReason, Inspector, Interest};
pub use key::FlowKey;
pub use record::{FlowMeta, TcpState};
pub use table::{FlowConfig, FlowStats, FlowTable};

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
