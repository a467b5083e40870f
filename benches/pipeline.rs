//! Pipeline throughput (packets/s) for 1 and 2 workers over a generated capture: mixed
//! TCP/UDP traffic, a few hundred flows, about 200k packets, written with `PcapngWriter`;
//! and the dispatcher's routing cost per packet: `decode::route_key` (what the pipeline
//! uses) against a full `decode::decode`, and the whole routing hash (`pipeline::flow_hash`).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use entrospect::capture::writer::PcapngWriter;
use entrospect::capture::{CaptureFile, LinkType};
use entrospect::decode;
use entrospect::pipeline::{Pipeline, PipelineConfig, flow_hash};
use entrospect::{Config, Event, Timestamp};
use std::sync::Arc;

const FLOWS: u32 = 400;
const PACKETS: u32 = 200_000;

/// One Ethernet/IPv4 frame with a TCP or UDP header and `payload` bytes (checksums zero:
/// the engine does not verify them).
fn frame(flow: u32, to_server: bool, seq: u32, payload: &[u8]) -> Vec<u8> {
    let tcp = !flow.is_multiple_of(3);
    let client = [10, 1, (flow >> 8) as u8, flow as u8];
    let server = [192, 0, 2, (flow % 50) as u8 + 1];
    let (src, dst) = if to_server {
        (client, server)
    } else {
        (server, client)
    };
    let cport = 40_000 + (flow % 20_000) as u16;
    let sport = if tcp { 443 } else { 4500 };
    let (sp, dp) = if to_server {
        (cport, sport)
    } else {
        (sport, cport)
    };
    let l4 = if tcp { 20 } else { 8 };
    let total = 20 + l4 + payload.len();
    let mut f = Vec::with_capacity(14 + total);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64]);
    f.push(if tcp { 6 } else { 17 });
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sp.to_be_bytes());
    f.extend_from_slice(&dp.to_be_bytes());
    if tcp {
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        let ulen = (8 + payload.len()) as u16;
        f.extend_from_slice(&ulen.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    f
}

fn capture() -> Arc<CaptureFile> {
    let mut w = PcapngWriter::new(Vec::new()).expect("writer");
    let eth = w
        .add_interface(LinkType::ETHERNET, 65535)
        .expect("interface");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut seqs = vec![[1u32, 1u32]; FLOWS as usize];
    let payload: Vec<u8> = (0..1400u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for i in 0..PACKETS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let flow = (rng % u64::from(FLOWS)) as u32;
        let to_server = rng & (1 << 40) == 0;
        let len = ((rng >> 20) % 1400) as usize;
        let d = usize::from(!to_server);
        let seq = seqs[flow as usize][d];
        seqs[flow as usize][d] = seq.wrapping_add(len as u32);
        let ts = Timestamp(1_700_000_000_000_000_000 + u64::from(i) * 10_000);
        w.write_packet(eth, ts, &frame(flow, to_server, seq, &payload[..len]))
            .expect("packet");
    }
    Arc::new(CaptureFile::from_bytes(w.into_inner().expect("bytes")).expect("capture"))
}

fn bench(c: &mut Criterion) {
    let file = capture();
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(PACKETS)));
    for workers in [1, 2] {
        g.bench_function(format!("replay_{workers}_workers"), |b| {
            b.iter(|| {
                let pcfg = PipelineConfig {
                    workers,
                    ..PipelineConfig::default()
                };
                let mut p =
                    Pipeline::new(Config::default(), pcfg, Vec::<Event>::new()).expect("pipeline");
                p.replay(&file).expect("replay");
                let (events, stats) = p.finish().expect("finish");
                (events.len(), stats.dispatch.packets)
            })
        });
    }
    g.finish();
}

/// The entropy stage's share of the per-packet cost: one worker with the default
/// window, against the same run with a 1-byte window (each flow direction's
/// accumulator fills on its first payload byte, so entropy does almost no work).
fn entropy_share(c: &mut Criterion) {
    let file = capture();
    let mut g = c.benchmark_group("pipeline_entropy_share");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(PACKETS)));
    for (name, window) in [("window_4096", 4096usize), ("window_1", 1)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut cfg = Config::default();
                cfg.entropy.window = window;
                let pcfg = PipelineConfig {
                    workers: 1,
                    ..PipelineConfig::default()
                };
                let mut p = Pipeline::new(cfg, pcfg, Vec::<Event>::new()).expect("pipeline");
                p.replay(&file).expect("replay");
                let (events, stats) = p.finish().expect("finish");
                (events.len(), stats.dispatch.packets)
            })
        });
    }
    g.finish();
}

/// What the dispatcher pays per packet to pick a worker, in packets/s.
fn routing(c: &mut Criterion) {
    let file = capture();
    let frames: Vec<(LinkType, &[u8])> = file
        .packets()
        .map_while(Result::ok)
        .map(|p| (p.link_type, p.data))
        .collect();
    let mut g = c.benchmark_group("pipeline_routing");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("route_key", |b| {
        b.iter(|| {
            frames
                .iter()
                .filter(|(l, d)| decode::route_key(*l, black_box(d)).is_some())
                .count()
        })
    });
    g.bench_function("full_decode", |b| {
        b.iter(|| {
            frames
                .iter()
                .filter(|(l, d)| decode::decode(*l, black_box(d)).is_ok())
                .count()
        })
    });
    g.bench_function("flow_hash", |b| {
        b.iter(|| {
            frames
                .iter()
                .filter_map(|(l, d)| flow_hash(*l, black_box(d)))
                .fold(0u64, |a, h| a ^ h)
        })
    });
    g.finish();
}

criterion_group!(benches, bench, entropy_share, routing);
criterion_main!(benches);
