//! First-bytes recognition and the AN0404 decision: cost per flow start.
//!
//! Inputs are generated here: random first segments (the AN0404 case: every recogniser
//! must reject them), a rustls ClientHello, an HTTP response with a gzip body.
#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use entrospect::detect::an0404::{self, An0404Config, DirEvidence, FlowEvidence};
use entrospect::flow::Direction;
use entrospect::inspect::protocol::{AppProto, ProtocolState, Transport, explain_content};
use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;

fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("bench.example").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    let mut out = Vec::new();
    conn.write_tls(&mut out).expect("hello");
    out
}

fn observe(c: &mut Criterion) {
    let mut g = c.benchmark_group("protocol_observe_first_message");
    let cases: Vec<(&str, Transport, Vec<u8>)> = vec![
        ("random_tcp_1460", Transport::Tcp, random_bytes(1460, 1)),
        ("random_udp_1200", Transport::Udp, random_bytes(1200, 2)),
        ("tls_client_hello", Transport::Tcp, client_hello()),
        (
            "http_get",
            Transport::Tcp,
            b"GET /index.html HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n".to_vec(),
        ),
    ];
    for (name, transport, data) in &cases {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), data, |b, data| {
            b.iter(|| {
                let mut st = ProtocolState::new();
                black_box(st.observe(*transport, Direction::ToServer, 50_000, 4444, data))
            })
        });
    }
    g.finish();
}

fn content(c: &mut Criterion) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&random_bytes(4000, 3)).expect("gzip");
    let mut msg = b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
    msg.extend_from_slice(&gz.finish().expect("gzip"));
    let mut g = c.benchmark_group("explain_content");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("http_gzip_response", |b| {
        b.iter(|| black_box(explain_content(&msg)))
    });
    g.finish();
}

fn evaluate(c: &mut Criterion) {
    let cfg = An0404Config::default();
    let dir = DirEvidence {
        sample_len: 1460,
        bits_per_byte: 7.86,
        expected_random: 7.87,
        random_confidence: 0.97,
        printable_ratio: 0.37,
        first_bytes_printable: false,
        bytes: 9_000,
        pkts: 12,
    };
    let ev = FlowEvidence {
        transport: Transport::Tcp,
        client_port: 50_000,
        server_port: 4444,
        server_ip: "203.0.113.9".parse().expect("ip"),
        app_proto: AppProto::Unknown,
        recognition: None,
        content: None,
        dirs: [dir, dir],
        start_seen: true,
        // Judged as a whole flow: the total volume decides, not a rate.
        duration_ns: 0,
        ended: true,
    };
    let mut g = c.benchmark_group("an0404");
    g.throughput(Throughput::Elements(1));
    g.bench_function("evaluate_firing_flow", |b| {
        b.iter(|| black_box(an0404::evaluate(&cfg, black_box(&ev))))
    });
    g.finish();
}

criterion_group!(
    name = benches;
    config = Criterion::default();
    targets = observe, content, evaluate
);
criterion_main!(benches);
