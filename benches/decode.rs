//! Decode-only and decode+flow+inspect throughput on generated traffic.
//!
//! The input is a mix of TCP connections (handshake, 1460-byte segments, ACKs, FIN) and
//! UDP request/response pairs over IPv4 and IPv6, built with etherparse's packet builder.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use entrospect::capture::LinkType;
use entrospect::{Config, Engine, Timestamp};
use etherparse::PacketBuilder;
use std::hint::black_box;

fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut payload = vec![0u8; 1460];
    let mut x: u32 = 0x1234_5678;
    for b in payload.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    for conn in 0..200u16 {
        let c = [10, 0, (conn >> 8) as u8, conn as u8];
        let s = [192, 0, 2, 1];
        let sport = 40_000 + conn;
        let tcp = |src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, seq: u32| {
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(src, dst, 64)
                .tcp(sp, dp, seq, 65535)
        };
        let mut push = |b: etherparse::PacketBuilderStep<etherparse::TcpHeader>, p: &[u8]| {
            let mut v = Vec::with_capacity(p.len() + 64);
            b.write(&mut v, p).expect("build");
            out.push(v);
        };
        push(tcp(c, s, sport, 443, 0).syn(), &[]);
        push(tcp(s, c, 443, sport, 0).syn().ack(1), &[]);
        push(tcp(c, s, sport, 443, 1).ack(1), &[]);
        for i in 0..20u32 {
            push(tcp(s, c, 443, sport, 1 + i * 1460).ack(1), &payload);
            if i % 2 == 1 {
                push(tcp(c, s, sport, 443, 1).ack(1 + (i + 1) * 1460), &[]);
            }
        }
        push(tcp(c, s, sport, 443, 1).fin().ack(1 + 20 * 1460), &[]);
        push(tcp(s, c, 443, sport, 1 + 20 * 1460).fin().ack(2), &[]);
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([0x20; 16], [0x21; 16], 64)
            .udp(5000 + conn, 53)
            .write(&mut v, &payload[..60])
            .expect("build");
        out.push(v);
    }
    out
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("decode_only_packets", |b| {
        b.iter(|| {
            for f in &frames {
                let _ = black_box(entrospect::decode::decode(LinkType::ETHERNET, f));
            }
        })
    });
    g.bench_function("engine_packets", |b| {
        b.iter(|| {
            let mut e = Engine::new(Config::default()).expect("valid config");
            for (i, f) in frames.iter().enumerate() {
                e.process_packet(Timestamp(i as u64 * 1000), LinkType::ETHERNET, f);
            }
            e.finish();
            black_box(e.drain_events().count())
        })
    });
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("engine_bytes", |b| {
        b.iter(|| {
            let mut e = Engine::new(Config::default()).expect("valid config");
            for (i, f) in frames.iter().enumerate() {
                e.process_packet(Timestamp(i as u64 * 1000), LinkType::ETHERNET, f);
            }
            e.finish();
            black_box(e.drain_events().count())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
