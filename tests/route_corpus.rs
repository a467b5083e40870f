//! The dispatcher's routing shortcut (`decode::route_key`) against the full decoder, over
//! every packet of every capture of the shared corpus, each also cut short at every length
//! up to its first 128 bytes; and the pipeline's worker choice against the routing rules
//! computed from a full decode (the rules of `src/pipeline.rs`, "Routing").

mod common;

use entrospect::capture::{CaptureFile, LinkType};
use entrospect::decode::route::{route_is_fast, route_key_decoded};
use entrospect::decode::{self, Decoded, TransportView, ip_proto, route_key};
use entrospect::flow::FlowKey;
use entrospect::pipeline::flow_hash;
use std::collections::BTreeMap;

/// The routing hash by the documented rules, from a full decode (what the dispatcher
/// computed before the shortcut existed).
fn hash_by_decode(link: LinkType, data: &[u8]) -> Option<u64> {
    match decode::decode(link, data) {
        Ok(Decoded::Packet(p)) => Some(match p.transport {
            TransportView::Tcp(t) => {
                FlowKey::new(p.src, t.src_port, p.dst, t.dst_port, ip_proto::TCP)
                    .0
                    .symmetric_hash()
            }
            _ => FlowKey::new(p.src, 0, p.dst, 0, p.ip_proto())
                .0
                .symmetric_hash(),
        }),
        Ok(Decoded::Fragment(f)) => {
            Some(FlowKey::new(f.src, 0, f.dst, 0, f.proto).0.symmetric_hash())
        }
        Err(_) => None,
    }
}

#[test]
fn route_key_matches_the_full_decoder_on_every_corpus_packet() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let captures = common::corpus_captures(&dir);
    let (mut packets, mut fast, mut keyed, mut cut_checks) = (0u64, 0u64, 0u64, 0u64);
    let mut by_link: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for path in &captures {
        let Ok(file) = CaptureFile::open(path) else {
            continue;
        };
        for pkt in file.packets().map_while(Result::ok) {
            packets += 1;
            let (link, data) = (pkt.link_type, pkt.data);
            let key = route_key(link, data);
            let is_fast = route_is_fast(link, data);
            fast += u64::from(is_fast);
            keyed += u64::from(key.is_some());
            let e = by_link.entry(link.0).or_default();
            e.0 += 1;
            e.1 += u64::from(is_fast);
            if key != route_key_decoded(link, data)
                || flow_hash(link, data) != hash_by_decode(link, data)
            {
                mismatches.push(format!("{} packet {packets}", path.display()));
            }
            for n in 0..data.len().min(128) {
                cut_checks += 1;
                let cut = &data[..n];
                if route_key(link, cut) != route_key_decoded(link, cut)
                    || flow_hash(link, cut) != hash_by_decode(link, cut)
                {
                    mismatches.push(format!("{} packet {packets} cut to {n}", path.display()));
                }
            }
        }
    }
    println!(
        "route_key: {} captures, {packets} packets ({keyed} with a key), {fast} answered \
         without a full decode, {cut_checks} truncations checked; by link type \
         (packets, fast): {by_link:?}",
        captures.len()
    );
    assert!(packets > 0, "no packets read from {}", dir.display());
    assert!(
        mismatches.is_empty(),
        "{} disagreements, first: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}
