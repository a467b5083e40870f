//! Host JSON-lines input: arbitrary bytes through the reader (small line cap), every
//! event that parses into a small index, then lookups. Also the `/proc` text parsers.
//! Nothing may panic; the index must stay within its caps.
#![no_main]

use entrospect::Timestamp;
use entrospect::host::adapters::jsonl::JsonlReader;
use entrospect::host::adapters::linux_proc::{
    parse_btime, parse_cmdline, parse_maps, parse_net, parse_socket_link, parse_stat,
};
use entrospect::host::index::{HostIndex, HostIndexConfig};
use entrospect::host::{HostEventKind, HostProto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = HostIndexConfig {
        max_processes: 16,
        max_connections_per_process: 4,
        max_crypto_modules_per_process: 4,
        max_string_len: 64,
        ..HostIndexConfig::default()
    };
    let mut index = HostIndex::new(config);
    let mut connects = Vec::new();
    for event in JsonlReader::with_max_line_len(data, 4096).flatten() {
        if let HostEventKind::NetworkConnect {
            proto,
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            ..
        } = &event.kind
        {
            connects.push((
                event.timestamp,
                *proto,
                *src_ip,
                *src_port,
                *dest_ip,
                *dest_port,
            ));
        }
        index.ingest(event);
        assert!(index.len() <= 16);
    }
    for (ts, proto, src_ip, src_port, dest_ip, dest_port) in connects {
        let local = src_ip.unwrap_or(dest_ip);
        if let Some(m) = index.lookup_connection(
            None,
            proto,
            (local, src_port),
            (dest_ip, dest_port),
            ts,
            1_000_000_000,
            0,
        ) {
            let _ = index
                .crypto_loads_before(m.process.id, ts, u64::MAX)
                .count();
        }
        let _ = index.lookup_connection(
            None,
            HostProto::Udp,
            (local, None),
            (dest_ip, dest_port),
            ts,
            u64::MAX,
            i64::MIN,
        );
    }
    index.expire(Timestamp::from_nanos(u64::MAX));
    assert!(index.stats().records <= 16);

    let text = String::from_utf8_lossy(data);
    let _ = parse_stat(&text);
    let _ = parse_maps(&text);
    let _ = parse_net(&text, HostProto::Tcp);
    let _ = parse_btime(&text);
    let _ = parse_socket_link(&text);
    let _ = parse_cmdline(data);
});
