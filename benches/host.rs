//! Host-state throughput: events/s into the process index, flow lookups/s, and
//! JSON-lines parsing. Inputs are generated here.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use entrospect::Timestamp;
use entrospect::host::adapters::jsonl::JsonlReader;
use entrospect::host::index::{HostIndex, HostIndexConfig};
use entrospect::host::{ConnDirection, HostEvent, HostEventKind, HostProto, Platform};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_795_000_000 * S;

/// `procs` processes on 4 hosts, each: start, 3 module loads (1 crypto), 4 connects, exit.
/// PIDs wrap at 4096 so PID reuse is exercised.
fn workload(procs: u32) -> Vec<HostEvent> {
    let mut out = Vec::new();
    for i in 0..procs {
        let host = format!("host-{}", i % 4);
        let pid = 1000 + (i % 4096);
        let t = T0 + u64::from(i) * 10_000_000; // 100 process starts per second
        let ev = |dt: u64, kind| HostEvent {
            timestamp: Timestamp::from_nanos(t + dt),
            host: host.clone(),
            platform: Platform::Linux,
            kind,
        };
        out.push(ev(
            0,
            HostEventKind::ProcessStart {
                pid,
                ppid: Some(1),
                image: format!("/usr/bin/tool{}", i % 50),
                cmdline: Some(format!("tool{} --job {i}", i % 50)),
                user: Some("svc".into()),
                process_guid: None,
                parent_image: None,
                parent_guid: None,
            },
        ));
        for (k, m) in ["libc.so.6", "libz.so.1", "libcrypto.so.3"]
            .iter()
            .enumerate()
        {
            out.push(ev(
                1000 + k as u64,
                HostEventKind::ModuleLoad {
                    pid,
                    image: None,
                    module: format!("/usr/lib/x86_64-linux-gnu/{m}"),
                    process_guid: None,
                },
            ));
        }
        for c in 0..4u32 {
            out.push(ev(
                2_000_000 + u64::from(c),
                HostEventKind::NetworkConnect {
                    pid,
                    image: None,
                    proto: HostProto::Tcp,
                    src_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))),
                    src_port: Some(((i * 4 + c) % 28_000 + 32_768) as u16),
                    dest_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, (c % 200) as u8)),
                    dest_port: 443,
                    direction: ConnDirection::Outbound,
                    process_guid: None,
                },
            ));
        }
        out.push(ev(
            5_000_000,
            HostEventKind::ProcessExit {
                pid,
                process_guid: None,
            },
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    let events = workload(20_000);
    let mut g = c.benchmark_group("host_index");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("ingest", |b| {
        b.iter_batched(
            || events.clone(),
            |evs| {
                let mut idx = HostIndex::new(HostIndexConfig::default());
                for e in evs {
                    idx.ingest(e);
                }
                black_box(idx.len())
            },
            BatchSize::LargeInput,
        )
    });
    let mut idx = HostIndex::new(HostIndexConfig::default());
    for e in events.iter().cloned() {
        idx.ingest(e);
    }
    let queries: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            HostEventKind::NetworkConnect {
                src_ip: Some(ip),
                src_port,
                dest_ip,
                dest_port,
                ..
            } => Some((e.timestamp, *ip, *src_port, *dest_ip, *dest_port)),
            _ => None,
        })
        .collect();
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function("lookup_connection", |b| {
        b.iter(|| {
            let mut hits = 0u32;
            for (ts, ip, sp, dip, dp) in &queries {
                if idx
                    .lookup_connection(None, HostProto::Tcp, (*ip, *sp), (*dip, *dp), *ts, S, 0)
                    .is_some()
                {
                    hits += 1;
                }
            }
            black_box(hits)
        })
    });
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
        .collect();
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("jsonl_read", |b| {
        b.iter(|| black_box(JsonlReader::new(text.as_bytes()).flatten().count()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
