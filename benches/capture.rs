//! Capture-file iteration speed: packets/s and GB/s over pcap and pcapng files of 100 000
//! synthetic packets of mixed sizes, generated here with the crate's own writers.
//!
//! `pcapng_pcap_parser` walks the same pcapng buffer with pcap-parser's generic block parser,
//! the alternative to our hand-checked framing, for comparison.
#![allow(missing_docs)] // `criterion_group!` generates an undocumented public function

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use entrospect::Timestamp;
use entrospect::capture::writer::{PcapWriter, PcapngWriter};
use entrospect::capture::{LinkType, packets_from_slice};
use std::hint::black_box;
use std::time::Duration;

const PACKETS: usize = 100_000;
/// A mix of small (ACK), medium and full-size Ethernet frames.
const SIZES: [usize; 8] = [60, 60, 590, 1514, 1514, 128, 1514, 42];

fn frame(i: usize) -> Vec<u8> {
    let len = SIZES[i % SIZES.len()];
    (0..len).map(|b| (b ^ i) as u8).collect()
}

fn pcap_file() -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
    for i in 0..PACKETS {
        let data = frame(i);
        let ts = Timestamp(1_700_000_000_000_000_000 + i as u64 * 10_000);
        w.write_packet(ts, &data, data.len() as u32).unwrap();
    }
    w.into_inner().unwrap()
}

fn pcapng_file() -> Vec<u8> {
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    let a = w.add_interface(LinkType::ETHERNET, 65535).unwrap();
    let b = w.add_interface(LinkType::RAW, 0).unwrap();
    for i in 0..PACKETS {
        let data = frame(i);
        let ts = Timestamp(1_700_000_000_000_000_000 + i as u64 * 10_000);
        w.write_packet(if i % 4 == 0 { b } else { a }, ts, &data)
            .unwrap();
    }
    w.into_inner().unwrap()
}

fn walk(bytes: &[u8]) -> (u64, u64) {
    let mut n = 0u64;
    let mut sum = 0u64;
    for p in packets_from_slice(bytes).unwrap() {
        let p = p.unwrap();
        n += 1;
        sum += p.data.len() as u64 + p.ts.as_nanos() % 2;
    }
    (n, sum)
}

/// pcap-parser's generic block walk over a little-endian single-section pcapng buffer.
fn walk_pcap_parser(bytes: &[u8]) -> (u64, u64) {
    use pcap_parser::pcapng::Block;
    let mut rest = bytes;
    let (mut n, mut sum) = (0u64, 0u64);
    while !rest.is_empty() {
        let (next, block) = pcap_parser::pcapng::parse_block_le(rest).unwrap();
        if let Block::EnhancedPacket(epb) = block {
            n += 1;
            sum += epb.caplen as u64 + u64::from(epb.ts_low % 2);
        }
        rest = next;
    }
    (n, sum)
}

fn configure(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
}

fn bench(c: &mut Criterion) {
    let pcap = pcap_file();
    let pcapng = pcapng_file();
    assert_eq!(walk(&pcap).0, PACKETS as u64);
    assert_eq!(walk(&pcapng).0, PACKETS as u64);
    assert_eq!(walk_pcap_parser(&pcapng).0, PACKETS as u64);

    let mut g = c.benchmark_group("capture_bytes");
    configure(&mut g);
    g.throughput(Throughput::Bytes(pcap.len() as u64));
    g.bench_function("pcap", |b| b.iter(|| walk(black_box(&pcap))));
    g.throughput(Throughput::Bytes(pcapng.len() as u64));
    g.bench_function("pcapng", |b| b.iter(|| walk(black_box(&pcapng))));
    g.bench_function("pcapng_pcap_parser", |b| {
        b.iter(|| walk_pcap_parser(black_box(&pcapng)))
    });
    g.finish();

    let mut g = c.benchmark_group("capture_packets");
    configure(&mut g);
    g.throughput(Throughput::Elements(PACKETS as u64));
    g.bench_function("pcap", |b| b.iter(|| walk(black_box(&pcap))));
    g.bench_function("pcapng", |b| b.iter(|| walk(black_box(&pcapng))));
    g.bench_function("pcapng_pcap_parser", |b| {
        b.iter(|| walk_pcap_parser(black_box(&pcapng)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
