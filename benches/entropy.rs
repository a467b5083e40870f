//! Throughput of the entropy kernels: per-payload histogram + entropy at 64 and 1460
//! bytes, 1 MiB buffers of random and of text data, entropy from a histogram alone,
//! and the full `Randomness` verdict. Inputs are generated here.
//!
//! `engine_entropy_share` measures what the entropy stage adds to the engine's
//! per-packet cost, on the mixed capture of `benches/pipeline.rs` (same generator):
//! one engine on the benchmark thread with the default window against a 1-byte window
//! (every accumulator fills on its first byte), so that thread CPU time sees all the
//! work (the pipeline bench measures wall time across threads).
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID` through the
//! `cpu-time` crate), not wall time: on a shared machine whose cores are oversubscribed
//! wall time mostly measures the queue. Cache sharing with other processes still
//! shows.

use std::hint::black_box;

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use entrospect::inspect::entropy::{EntropyAccumulator, Kernel, Randomness};
use entrospect::{Config, Engine};

/// Criterion measurement of the calling thread's CPU time.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }

    fn end(&self, start: Self::Intermediate) -> Self::Value {
        start.elapsed()
    }

    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }

    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as wall time's are: reuse its formatting.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

type C = Criterion<ThreadCpu>;

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Skewed English-like text: few distinct bytes, many repeats (the hard case for
/// histogramming, since equal bytes chain through one counter).
fn text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "the ", "of ", "and ", "to ", "in ", "a ", "is ", "that ", "for ", "it ", "as ", "was ",
        "with ", "be ", "by ", "on ",
    ];
    let r = random_bytes(3, len);
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0;
    while out.len() < len {
        let w = WORDS[usize::from(r[i % len] & 15)];
        out.extend_from_slice(w.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn payloads(c: &mut C) {
    for size in [64usize, 1460] {
        let buf = random_bytes(1, size);
        let mut g = c.benchmark_group(format!("payload_{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        for k in Kernel::available() {
            g.bench_with_input(
                BenchmarkId::new("histogram_entropy", k.name()),
                &buf,
                |b, buf| b.iter(|| black_box(k.histogram(black_box(buf)).bits_per_byte())),
            );
            g.bench_with_input(BenchmarkId::new("accumulator", k.name()), &buf, |b, buf| {
                let mut acc = EntropyAccumulator::new(4096);
                b.iter(|| {
                    acc.reset();
                    acc.update_with(k, black_box(buf));
                    black_box(acc.len())
                })
            });
            g.bench_with_input(
                BenchmarkId::new("accumulator_entropy", k.name()),
                &buf,
                |b, buf| {
                    let mut acc = EntropyAccumulator::new(4096);
                    b.iter(|| {
                        acc.reset();
                        acc.update_with(k, black_box(buf));
                        black_box(acc.bits_per_byte())
                    })
                },
            );
        }
        g.bench_with_input(BenchmarkId::new("randomness", "auto"), &buf, |b, buf| {
            b.iter(|| black_box(Randomness::of(black_box(buf))))
        });
        // Skewed text of the same size: the case one table handles worst.
        let skewed = text(size);
        for k in Kernel::available() {
            g.bench_with_input(
                BenchmarkId::new("histogram_entropy_text", k.name()),
                &skewed,
                |b, buf| b.iter(|| black_box(k.histogram(black_box(buf)).bits_per_byte())),
            );
        }
        g.finish();
    }
}

/// A whole verdict (`Randomness`: every feature and the p-values) on a short sample,
/// one-shot and through an accumulator: the per-verdict cost the engine pays for most
/// flow directions.
fn verdict(c: &mut C) {
    let mut g = c.benchmark_group("verdict");
    for size in [16usize, 64, 128, 256, 512] {
        g.throughput(Throughput::Bytes(size as u64));
        for (kind, buf) in [("random", random_bytes(5, size)), ("text", text(size))] {
            g.bench_with_input(
                BenchmarkId::new(format!("of_{kind}"), size),
                &buf,
                |b, buf| b.iter(|| black_box(Randomness::of(black_box(buf)))),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("accumulator_{kind}"), size),
                &buf,
                |b, buf| {
                    let mut acc = EntropyAccumulator::new(4096);
                    b.iter(|| {
                        acc.reset();
                        acc.update(black_box(buf));
                        black_box(acc.randomness())
                    })
                },
            );
        }
    }
    g.finish();
}

fn bulk(c: &mut C) {
    const MIB: usize = 1 << 20;
    for (name, buf) in [("random", random_bytes(2, MIB)), ("text", text(MIB))] {
        let mut g = c.benchmark_group(format!("bulk_1mib_{name}"));
        g.throughput(Throughput::Bytes(MIB as u64));
        for k in Kernel::available() {
            g.bench_with_input(
                BenchmarkId::new("histogram_entropy", k.name()),
                &buf,
                |b, buf| b.iter(|| black_box(k.histogram(black_box(buf)).bits_per_byte())),
            );
        }
        g.finish();
    }
}

fn from_histogram(c: &mut C) {
    let mut g = c.benchmark_group("entropy_from_histogram");
    g.throughput(Throughput::Elements(1));
    for size in [64usize, 1460] {
        let h = Kernel::portable().histogram(&random_bytes(4, size));
        g.bench_with_input(BenchmarkId::new("bits_per_byte", size), &h, |b, h| {
            b.iter(|| black_box(black_box(h).bits_per_byte()))
        });
        // The accumulator's u16 histogram (what the engine evaluates).
        let mut acc = EntropyAccumulator::new(4096);
        acc.update(&random_bytes(4, size));
        g.bench_with_input(
            BenchmarkId::new("accumulator_bits_per_byte", size),
            &acc,
            |b, acc| b.iter(|| black_box(black_box(acc).bits_per_byte())),
        );
    }
    g.finish();
}

mod common;
use common::{PACKETS, mixed_capture};

fn engine_entropy_share(c: &mut C) {
    let file = mixed_capture();
    let mut g = c.benchmark_group("engine_entropy_share");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(PACKETS)));
    for (name, window) in [("window_4096", 4096usize), ("window_1", 1)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut cfg = Config::default();
                cfg.entropy.window = window;
                let mut engine = Engine::new(cfg).expect("engine");
                for pkt in file.packets().map_while(Result::ok) {
                    engine.process(&pkt);
                }
                engine.finish();
                engine.drain_events().count()
            })
        });
    }
    g.finish();
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group! {
        name = benches;
        config = criterion::Criterion::default().with_measurement(super::ThreadCpu);
        targets = super::payloads, super::verdict, super::bulk, super::from_histogram, super::engine_entropy_share
    }
}
use group::benches;

criterion_main!(benches);
