//! The socket table through `NETLINK_SOCK_DIAG` (what `ss` uses): one `inet_diag_req_v2`
//! dump request per address family and protocol, answered by `inet_diag_msg` records
//! (`man 7 sock_diag`). It is the [`LinuxProcPoller`](super::linux_proc::LinuxProcPoller)'s
//! preferred connection source: the kernel filters by state and hands over binary records,
//! where `/proc/net/{tcp,tcp6,udp,udp6}` prints every socket as text for us to parse.
//!
//! The netlink framing and record layouts are the `netlink-packet-*` crates' job; this
//! module turns their records into [`SocketEntry`] values, which never expose those
//! crates' types. Linux only.
//!
//! # Contracts
//!
//! - Only sockets the poller can use are requested: TCP sockets in every state except
//!   `TIME_WAIT`, `SYN_RECV` and `CLOSE` (they have no owning file descriptor, so no
//!   process), and connected UDP sockets (`ESTABLISHED`). Addresses of IPv6 sockets that
//!   carry IPv4 traffic (`::ffff:a.b.c.d`) are given as IPv4, as in
//!   [`parse_net_addr`](super::linux_proc::parse_net_addr).
//! - Bounded: at most `max_entries` sockets are kept (the rest are counted in
//!   [`SockDiagDump::over_cap`], and the dump is still read to its end so the netlink
//!   socket stays in step); each datagram is read into one fixed buffer.
//! - Never panics on what the kernel sends: a record that does not parse is counted in
//!   [`SockDiagDump::malformed`] and skipped.
//! - Shows the caller's network namespace only, as `/proc/net` does.

use super::linux_proc::SocketEntry;
use crate::host::{HostError, HostProto};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};
use std::net::SocketAddr;

/// Size of the receive buffer. The kernel fills a dump datagram up to 32 KiB at most
/// (`netlink_dump` caps `max_recvmsg_len` at `SKB_WITH_OVERHEAD(32768)`), so one datagram
/// always fits.
const RECV_BUF: usize = 64 << 10;

/// Datagrams read for one dump request at most: a runaway guard (a dump of a million
/// sockets takes about 10 000).
const MAX_DATAGRAMS: u32 = 1 << 20;

/// The sockets of one snapshot, and what was skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SockDiagDump {
    /// The sockets, in the order the kernel sent them.
    pub entries: Vec<SocketEntry>,
    /// Records that did not parse.
    pub malformed: u64,
    /// Sockets dropped at `max_entries`.
    pub over_cap: u64,
    /// The kernel flagged a dump as interrupted (`NLM_F_DUMP_INTR`: the table changed
    /// while it was read, so a socket may be missing or reported twice).
    pub interrupted: bool,
}

/// An open `NETLINK_SOCK_DIAG` socket. Opening one tells whether the kernel offers the
/// interface; the poller keeps it across polls.
pub struct SockDiag {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for SockDiag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockDiag").field("seq", &self.seq).finish()
    }
}

impl SockDiag {
    /// Open and bind a `NETLINK_SOCK_DIAG` socket, connected to the kernel.
    ///
    /// # Errors
    ///
    /// [`HostError::Io`] when the kernel lacks the interface (no `CONFIG_INET_DIAG`) or
    /// a sandbox forbids netlink sockets.
    pub fn open() -> Result<SockDiag, HostError> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&NetlinkAddr::new(0, 0))?;
        Ok(SockDiag {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Dump the TCP and UDP sockets of both address families (see the module docs for
    /// which states), keeping at most `max_entries`.
    ///
    /// # Errors
    ///
    /// [`HostError::Io`] when sending or receiving fails or the kernel answers a request
    /// with an error (e.g. `EINVAL` for IPv6 on a kernel without it, which is skipped,
    /// or a protocol module that is not loaded); [`HostError::Parse`] when a datagram's
    /// framing is broken, since the rest of that dump cannot be trusted.
    pub fn dump(&mut self, max_entries: usize) -> Result<SockDiagDump, HostError> {
        let mut out = SockDiagDump::default();
        let tcp_states =
            StateFlags::all() - StateFlags::TIME_WAIT - StateFlags::SYN_RECV - StateFlags::CLOSE;
        for (family, protocol, states) in [
            (AF_INET, IPPROTO_TCP, tcp_states.clone()),
            (AF_INET6, IPPROTO_TCP, tcp_states),
            (AF_INET, IPPROTO_UDP, StateFlags::ESTABLISHED),
            (AF_INET6, IPPROTO_UDP, StateFlags::ESTABLISHED),
        ] {
            let proto = if protocol == IPPROTO_TCP {
                HostProto::Tcp
            } else {
                HostProto::Udp
            };
            match self.dump_one(family, protocol, states, proto, max_entries, &mut out) {
                Ok(()) => {}
                // A kernel without IPv6 (or with ipv6.disable=1) refuses AF_INET6.
                Err(HostError::Io { source })
                    if family == AF_INET6
                        && matches!(
                            source.raw_os_error(),
                            Some(libc_errno::EINVAL | libc_errno::ENOENT)
                        ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn dump_one(
        &mut self,
        family: u8,
        protocol: u8,
        states: StateFlags,
        proto: HostProto,
        max_entries: usize,
        out: &mut SockDiagDump,
    ) -> Result<(), HostError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let socket_id = if family == AF_INET6 {
            SocketId::new_v6()
        } else {
            SocketId::new_v4()
        };
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id,
            })
            .into(),
        );
        request.finalize();
        // `serialize` needs exactly `buffer_len` bytes, which this allocates.
        let mut bytes = vec![0u8; request.buffer_len()];
        request.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;

        for _ in 0..MAX_DATAGRAMS {
            let n = {
                let mut window: &mut [u8] = &mut self.buf;
                self.socket.recv(&mut window, 0)?
            };
            let data = self.buf.get(..n).unwrap_or(&[]);
            if parse_datagram(data, seq, proto, max_entries, out)? {
                return Ok(());
            }
        }
        Err(HostError::TooLarge {
            what: "sock_diag dump (datagrams)",
            cap: u64::from(MAX_DATAGRAMS),
        })
    }
}

/// errno values this module tells apart (Linux numbering, the same on every
/// architecture for these two).
mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const EINVAL: i32 = 22;
}

/// Walk the netlink messages of one datagram. Returns true at the end of the dump
/// (`NLMSG_DONE`).
fn parse_datagram(
    mut data: &[u8],
    seq: u32,
    proto: HostProto,
    max_entries: usize,
    out: &mut SockDiagDump,
) -> Result<bool, HostError> {
    let framing = |reason: String| HostError::Parse {
        line: 0,
        reason: format!("sock_diag: {reason}"),
    };
    while !data.is_empty() {
        let frame = NetlinkBuffer::new_checked(data)
            .map_err(|e| framing(format!("bad netlink header: {e}")))?;
        let len = usize::try_from(frame.length()).unwrap_or(usize::MAX);
        if frame.flags() & NLM_F_DUMP_INTR != 0 {
            out.interrupted = true;
        }
        let this = data.get(..len).unwrap_or(data);
        // Messages are padded to 4 bytes (NLMSG_ALIGN).
        let next = len.checked_add(3).map(|l| l & !3).unwrap_or(usize::MAX);
        data = data.get(next..).unwrap_or(&[]);
        if frame.sequence_number() != seq {
            // A late answer to an earlier request: not ours.
            continue;
        }
        let msg = match NetlinkMessage::<SockDiagMessage>::deserialize(this) {
            Ok(m) => m,
            Err(_) => {
                out.malformed = out.malformed.saturating_add(1);
                continue;
            }
        };
        match msg.payload {
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(e) => {
                if e.code.is_none() {
                    continue; // An ACK.
                }
                return Err(HostError::Io { source: e.to_io() });
            }
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                let id = &r.header.socket_id;
                let entry = SocketEntry {
                    proto,
                    local: SocketAddr::new(id.source_address.to_canonical(), id.source_port),
                    remote: SocketAddr::new(
                        id.destination_address.to_canonical(),
                        id.destination_port,
                    ),
                    state: r.header.state,
                    uid: r.header.uid,
                    inode: u64::from(r.header.inode),
                };
                if out.entries.len() < max_entries {
                    out.entries.push(entry);
                } else {
                    out.over_cap = out.over_cap.saturating_add(1);
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    #[test]
    fn dump_lists_a_loopback_connection_and_its_listener() {
        let mut diag = match SockDiag::open() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipping: NETLINK_SOCK_DIAG unavailable here: {e}");
                return;
            }
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let server = listener.local_addr().unwrap();
        let client = TcpStream::connect(server).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let local = client.local_addr().unwrap();
        let dump = diag.dump(1 << 20).unwrap();
        assert_eq!(dump.malformed, 0);
        assert!(
            dump.entries
                .iter()
                .any(|e| e.local == server && e.state == super::super::linux_proc::TCP_LISTEN),
            "listener {server} missing"
        );
        let conn = dump
            .entries
            .iter()
            .find(|e| e.local == local && e.remote == server)
            .expect("client socket in the dump");
        assert_eq!(conn.proto, HostProto::Tcp);
        assert_eq!(conn.state, 0x01);
        assert_ne!(conn.inode, 0);
        // The accepted side is there too, with the addresses swapped.
        assert!(
            dump.entries
                .iter()
                .any(|e| e.local == server && e.remote == local)
        );
    }

    #[test]
    fn dump_stops_keeping_at_the_cap_and_counts_the_rest() {
        let Ok(mut diag) = SockDiag::open() else {
            eprintln!("skipping: NETLINK_SOCK_DIAG unavailable here");
            return;
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let dump = diag.dump(1).unwrap();
        assert_eq!(dump.entries.len(), 1);
        assert!(dump.over_cap >= 1);
        // The socket is still in step: the next dump works.
        assert!(diag.dump(1 << 20).unwrap().entries.len() >= 2);
    }

    #[test]
    fn truncated_datagram_is_a_framing_error_not_a_panic() {
        let mut out = SockDiagDump::default();
        assert!(matches!(
            parse_datagram(&[1, 2, 3], 1, HostProto::Tcp, 10, &mut out),
            Err(HostError::Parse { .. })
        ));
        assert!(parse_datagram(&[], 1, HostProto::Tcp, 10, &mut out).is_ok_and(|done| !done));
    }
}
