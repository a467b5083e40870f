//! Every real capture of the shared corpus opens, and the reader counts the packets that
//! capinfos/tshark count (the `file` line of `NAME.tshark.jsonl`), with the same format and
//! link type.
//!
//! Documented rules behind the comparisons:
//! - Formats are sniffed by magic: `ja4__ipv6.pcapng` is a classic pcap and must read as one;
//!   several `ndpi__*.pcap` are pcapng.
//! - A header snap length below 64 bytes is not a bound (zeek's `trunc-hdr.pcap` says 1 and
//!   holds an 8-byte record; see `capture` module docs, "Snap length rule").
//! - capinfos' first/last packet times are the earliest and latest timestamps (UTC); ours
//!   must equal them to the digits the oracle prints (µs or ns, per pcapng interface).
//!   A record fraction of a second out of range (≥ 10^6 µs, as in nDPI's fuzzed
//!   `fuzz-2021-06-07-c6c72a0a56.pcap`) is carried into the seconds; TShark reads it as a
//!   signed number and prints a negative fraction (`11:19:17.-1404616`), which is no time:
//!   such oracle lines are counted as explained, not compared.
//! - A capture the MANIFEST marks truncated *at file level* would yield its packets then one
//!   error; no capture of the DEV set is cut mid-record (the "truncated" captures are
//!   snapped packets or truncated protocol headers inside complete records), so every file
//!   must read to its end without error.

use entrospect::Timestamp;
use entrospect::capture::{CaptureFile, LinkType};
use std::path::Path;

/// capinfos' encapsulation short names, as the oracle writes them.
fn link_type_named(name: &str) -> Option<&'static [LinkType]> {
    Some(match name {
        "ether" => &[LinkType::ETHERNET],
        "null" => &[LinkType::NULL],
        "rawip" => &[
            LinkType::RAW,
            LinkType::RAW_ALT12,
            LinkType::RAW_ALT14,
            LinkType::IPV4,
        ],
        "linux-sll" => &[LinkType::LINUX_SLL],
        "linux-sll2" => &[LinkType::LINUX_SLL2],
        "nflog" => &[LinkType::NFLOG],
        "ppp" => &[LinkType::PPP],
        "ieee-802-11-radiotap" => &[LinkType::IEEE802_11_RADIOTAP],
        _ => return None,
    })
}

#[test]
fn every_corpus_capture_reads_the_packet_count_of_its_oracle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pcap");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("corpus not found at {}: skipping", dir.display());
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.contains(".tshark.") && !n.contains(".expected.") && n != "MANIFEST.md")
        .filter(|n| dir.join(n).is_file())
        .collect();
    names.sort();
    let (mut files, mut count_ok, mut link_ok, mut format_ok, mut time_ok, mut failures) =
        (0, 0, 0, 0, 0, Vec::new());
    for name in &names {
        let oracle_path = dir.join(format!("{name}.tshark.jsonl"));
        let Ok(oracle) = std::fs::read_to_string(&oracle_path) else {
            continue;
        };
        let Some(file_line) = oracle.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["type"] == "file").then_some(v)
        }) else {
            failures.push(format!("{name}: oracle has no file line"));
            continue;
        };
        files += 1;
        let want_packets: u64 = match &file_line["packets"] {
            serde_json::Value::String(s) => s.parse().unwrap_or(u64::MAX),
            v => v.as_u64().unwrap_or(u64::MAX),
        };
        let capture = match CaptureFile::open(dir.join(name)) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: open failed: {e}"));
                continue;
            }
        };
        if file_line["format"].as_str() == Some(capture.format().as_str()) {
            format_ok += 1;
        } else {
            failures.push(format!(
                "{name}: format {} but oracle says {}",
                capture.format(),
                file_line["format"]
            ));
        }
        let want_links = file_line["link_type"].as_str().and_then(link_type_named);
        let mut packets = 0u64;
        let mut links_match = true;
        let mut error = None;
        let (mut first, mut last) = (Timestamp(u64::MAX), Timestamp(0));
        for item in capture.packets() {
            match item {
                Ok(p) => {
                    packets += 1;
                    first = first.min(p.ts);
                    last = last.max(p.ts);
                    if let Some(want) = want_links
                        && !want.contains(&p.link_type)
                    {
                        links_match = false;
                    }
                }
                Err(e) => error = Some(e),
            }
        }
        if let Some(e) = error {
            failures.push(format!("{name}: error after {packets} packets: {e}"));
        }
        if packets == want_packets {
            count_ok += 1;
        } else {
            failures.push(format!("{name}: {packets} packets, oracle {want_packets}"));
        }
        let want_first = file_line["first_packet_utc"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339);
        let want_last = file_line["last_packet_utc"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339);
        let negative_fraction = [
            &file_line["first_packet_utc"],
            &file_line["last_packet_utc"],
        ]
        .iter()
        .any(|v| v.as_str().is_some_and(|s| s.contains(".-")));
        match (want_first, want_last) {
            _ if negative_fraction => time_ok += 1,
            (Some(f), Some(l)) if packets > 0 => {
                if (f, l) == (first, last) {
                    time_ok += 1;
                } else {
                    failures.push(format!(
                        "{name}: first/last packet {first}/{last}, oracle {f}/{l}"
                    ));
                }
            }
            _ if packets == 0 => time_ok += 1,
            _ => failures.push(format!("{name}: oracle times unreadable")),
        }
        match (want_links, links_match) {
            (Some(_), true) => link_ok += 1,
            (Some(_), false) => failures.push(format!(
                "{name}: link type differs from oracle {}",
                file_line["link_type"]
            )),
            (None, _) => failures.push(format!(
                "{name}: oracle link type {} has no mapping in this test",
                file_line["link_type"]
            )),
        }
    }
    eprintln!(
        "capture corpus: {files} captures; packet count matches {count_ok}, \
         format matches {format_ok}, link type matches {link_ok}, \
         first/last time matches {time_ok}"
    );
    assert!(files > 0, "no capture with an oracle in {}", dir.display());
    assert!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
}
