//! Replays every capture of `../shared/corpus/pcap` and compares each TCP/UDP conversation
//! with its TShark oracle (`NAME.tshark.jsonl`): 5-tuple, orientation, packets and bytes
//! each way. Prints the match counts; every difference must be explained by one of the
//! documented rules below, or the test fails.
//!
//! Documented differences (each is counted and printed):
//! - `tshark_split`: TShark starts a new `tcp.stream` where we keep one flow, or the other
//!   way round (port reuse, timeouts); conversations with the same 5-tuple are then
//!   compared as sums.
//! - `ip_fragments`: TShark counts a reassembled datagram as one packet with the length of
//!   the frame that completed it; we count one packet with the bytes of all its fragments
//!   (the volume really sent). In captures with fragment frames, equal packet counts with
//!   different byte counts are explained.
//! - `damaged_frames`: TShark puts a frame whose TCP/UDP header is damaged (or whose
//!   fragments contradict each other) into the conversation of its ports; we count it as a
//!   decode error and skip it. Explained when we have fewer packets, never more, and the
//!   capture's missing packets are no more than our decode errors for it.
//! - `oracle_mixed_layers`: the oracle takes the innermost IP addresses and the innermost
//!   UDP header; for a tunnel whose inner packet has no ports (GENEVE carrying ICMP), that
//!   pairs inner addresses with the outer UDP ports. We report the outer UDP flow with its
//!   own addresses; explained when one of our flows has the same ports and counts.
//! - `absurd_orig_len`: a record whose original length is impossible (fuzzed headers);
//!   TShark clamps it to 2147483647, we count the captured length.

mod common;

use entrospect::Event;
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    pkts_ab: u64,
    pkts_ba: u64,
    bytes_ab: u64,
    bytes_ba: u64,
    convs: u32,
}

type Tuple = (String, IpAddr, u16, IpAddr, u16);

fn norm(t: Tuple) -> (Tuple, bool) {
    let (p, a, ap, b, bp) = t;
    if (a, ap) <= (b, bp) {
        ((p, a, ap, b, bp), false)
    } else {
        ((p, b, bp, a, ap), true)
    }
}

#[test]
fn conversations_match_the_tshark_oracle() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let mut total = 0u32;
    let mut exact = 0u32;
    let mut summed = 0u32;
    let mut unexplained = Vec::new();
    let mut orientation_diff = 0u32;
    let mut rules: HashMap<&str, u32> = HashMap::new();
    for path in common::corpus_captures(&dir) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let oracle = common::oracle(&path);
        let (events, _err) = common::replay(&path, entrospect::Config::default());
        let decode_errors: u64 = events
            .iter()
            .filter_map(|e| match e {
                Event::Stats(s) => Some(
                    s.stats
                        .capture
                        .decode_errors
                        .iter()
                        .filter(|(k, _)| **k != "not_ip")
                        .map(|(_, n)| *n)
                        .sum::<u64>()
                        + s.stats.defrag.malformed
                        + s.stats.defrag.evicted,
                ),
                _ => None,
            })
            .sum();
        let file_line = oracle.iter().find(|o| o["type"] == "file");
        let counter = |k: &str| {
            file_line
                .and_then(|f| f["counters"][k].as_u64())
                .unwrap_or(0)
        };
        let has_fragments = counter("ipv4_fragment_frames") + counter("ipv6_fragment_frames") > 0;
        let mut missing_total = 0u64;
        let mut pending_damaged = Vec::new();
        let mut ours: HashMap<Tuple, Counts> = HashMap::new();
        let mut our_orient: HashMap<Tuple, (IpAddr, u16)> = HashMap::new();
        for ev in &events {
            let Event::Flow(f) = ev else { continue };
            let p = match f.header.proto {
                "TCP" => "tcp",
                "UDP" => "udp",
                _ => continue,
            };
            let h = &f.header;
            let (k, swapped) = norm((p.to_string(), h.src_ip, h.src_port, h.dest_ip, h.dest_port));
            let c = ours.entry(k.clone()).or_default();
            let (ab_p, ba_p, ab_b, ba_b) = (
                f.flow.pkts_toserver,
                f.flow.pkts_toclient,
                f.flow.bytes_toserver,
                f.flow.bytes_toclient,
            );
            if swapped {
                c.pkts_ab += ba_p;
                c.pkts_ba += ab_p;
                c.bytes_ab += ba_b;
                c.bytes_ba += ab_b;
            } else {
                c.pkts_ab += ab_p;
                c.pkts_ba += ba_p;
                c.bytes_ab += ab_b;
                c.bytes_ba += ba_b;
            }
            c.convs += 1;
            our_orient.entry(k).or_insert((h.src_ip, h.src_port));
        }
        let mut theirs: HashMap<Tuple, Counts> = HashMap::new();
        let mut their_orient: HashMap<Tuple, (IpAddr, u16)> = HashMap::new();
        for o in oracle.iter().filter(|o| o["type"] == "conv") {
            let parse = |k: &str| o[k].as_str().and_then(|s| s.parse::<IpAddr>().ok());
            let (Some(a), Some(b)) = (parse("a_addr"), parse("b_addr")) else {
                continue;
            };
            let ap = o["a_port"].as_u64().unwrap_or(0) as u16;
            let bp = o["b_port"].as_u64().unwrap_or(0) as u16;
            let p = o["proto"].as_str().unwrap_or("").to_string();
            let (k, swapped) = norm((p, a, ap, b, bp));
            let g = |f: &str| o[f].as_u64().unwrap_or(0);
            let c = theirs.entry(k.clone()).or_default();
            if swapped {
                c.pkts_ab += g("pkts_b_to_a");
                c.pkts_ba += g("pkts_a_to_b");
                c.bytes_ab += g("bytes_b_to_a");
                c.bytes_ba += g("bytes_a_to_b");
            } else {
                c.pkts_ab += g("pkts_a_to_b");
                c.pkts_ba += g("pkts_b_to_a");
                c.bytes_ab += g("bytes_a_to_b");
                c.bytes_ba += g("bytes_b_to_a");
            }
            c.convs += 1;
            their_orient.entry(k).or_insert((a, ap));
        }
        for (k, t) in &theirs {
            total += 1;
            let o = ours.get(k).copied().unwrap_or_default();
            let same = (o.pkts_ab, o.pkts_ba, o.bytes_ab, o.bytes_ba)
                == (t.pkts_ab, t.pkts_ba, t.bytes_ab, t.bytes_ba);
            let same_pkts = (o.pkts_ab, o.pkts_ba) == (t.pkts_ab, t.pkts_ba);
            let fewer = o.pkts_ab <= t.pkts_ab && o.pkts_ba <= t.pkts_ba;
            if same && o.convs == t.convs {
                exact += 1;
            } else if same {
                summed += 1;
            } else if same_pkts && has_fragments {
                *rules.entry("ip_fragments").or_default() += 1;
            } else if same_pkts && (t.bytes_ab == 2_147_483_647 || t.bytes_ba == 2_147_483_647) {
                *rules.entry("absurd_orig_len").or_default() += 1;
            } else if o.convs == 0
                && ours.iter().any(|(ok, oc)| {
                    ok.0 == k.0
                        && ((ok.2, ok.4) == (k.2, k.4) || (ok.2, ok.4) == (k.4, k.2))
                        && oc.pkts_ab + oc.pkts_ba == t.pkts_ab + t.pkts_ba
                        && oc.bytes_ab + oc.bytes_ba == t.bytes_ab + t.bytes_ba
                })
            {
                *rules.entry("oracle_mixed_layers").or_default() += 1;
            } else if fewer {
                missing_total += (t.pkts_ab - o.pkts_ab) + (t.pkts_ba - o.pkts_ba);
                pending_damaged.push(format!("{name}: {k:?} ours {o:?} tshark {t:?}"));
            } else {
                unexplained.push(format!("{name}: {k:?} ours {o:?} tshark {t:?}"));
            }
            if our_orient.get(k) != their_orient.get(k) && t.convs == 1 && o.convs == 1 {
                orientation_diff += 1;
            }
        }
        if missing_total <= decode_errors {
            *rules.entry("damaged_frames").or_default() += pending_damaged.len() as u32;
        } else {
            for p in pending_damaged {
                unexplained.push(format!(
                    "{p} (missing {missing_total} > decode errors {decode_errors})"
                ));
            }
        }
    }
    eprintln!(
        "corpus conversations: {total} in oracle, {exact} exact, {summed} equal as sums over split streams (tshark_split), \
         {} unexplained, {orientation_diff} with a different client/server orientation; explained by rule: {rules:?}",
        unexplained.len()
    );
    for u in &unexplained {
        eprintln!("  MISMATCH {u}");
    }
    assert!(
        unexplained.is_empty(),
        "{} conversations differ from the oracle",
        unexplained.len()
    );
}
