//! Pipeline throughput (packets/s) for 1 and 2 workers over a generated capture: mixed
//! TCP/UDP traffic, a few hundred flows, about 200k packets, written with `PcapngWriter`;
//! and the dispatcher's routing cost per packet: `decode::route_key` (what the pipeline
//! uses) against a full `decode::decode`, and the whole routing hash (`pipeline::flow_hash`).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use entrospect::capture::{CaptureFile, LinkType};
use entrospect::decode;
use entrospect::pipeline::{Pipeline, PipelineConfig, flow_hash};
use entrospect::{Config, Event};
use std::sync::Arc;

mod common;
use common::PACKETS;

fn capture() -> Arc<CaptureFile> {
    Arc::new(common::mixed_capture())
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
