//! Fuzzes `inspect::protocol`: the per-flow recogniser state over arbitrary message
//! sequences, and the content / HTTP-head parsers over arbitrary bytes.
//!
//! Input layout: byte 0 picks the transport (tcp, udp, esp, other), bytes 1..5 the
//! client and server ports; the rest is a sequence of messages, each a header byte (bit 7:
//! direction, bits 0..6: length, 0 = 127) followed by that many bytes.
#![no_main]

use entrospect::flow::Direction;
use entrospect::inspect::protocol::{
    ProtocolState, Transport, content_kind, explain_content, http_head,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = content_kind(data);
    let _ = explain_content(data);
    if let Some(head) = http_head(data) {
        assert!(head.body_offset <= data.len());
    }

    let Some((&t, rest)) = data.split_first() else {
        return;
    };
    let transport = match t % 4 {
        0 => Transport::Tcp,
        1 => Transport::Udp,
        2 => Transport::Other(Transport::IP_PROTO_ESP),
        _ => Transport::Other(t),
    };
    let Some((ports, mut msgs)) = rest.split_at_checked(4) else {
        return;
    };
    let client_port = u16::from_be_bytes([ports[0], ports[1]]);
    let server_port = u16::from_be_bytes([ports[2], ports[3]]);
    let mut st = ProtocolState::new();
    while let Some((&h, tail)) = msgs.split_first() {
        let dir = if h & 0x80 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let want = match usize::from(h & 0x7f) {
            0 => 127,
            n => n,
        };
        let n = want.min(tail.len());
        let (msg, next) = tail.split_at(n);
        msgs = next;
        let before = st.current().copied();
        let out = st.observe(transport, dir, client_port, server_port, msg);
        // A returned verdict is the current one; a verdict never disappears.
        if let Some(r) = out {
            assert_eq!(st.current(), Some(&r));
        }
        if before.is_some() {
            assert!(st.current().is_some());
        }
        if st.done() {
            // Once done, nothing changes.
            let snapshot = st.current().copied();
            assert!(
                st.observe(transport, dir, client_port, server_port, msg)
                    .is_none()
            );
            assert_eq!(st.current().copied(), snapshot);
        }
    }
});
