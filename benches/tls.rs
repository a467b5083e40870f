//! TLS inspector benchmarks: handshakes per second (ClientHello + ServerHello +
//! Certificate flights of a real rustls TLS 1.2 handshake, certificate from rcgen,
//! generated here), cost per byte of application data after the handshake, and QUIC
//! client Initials per second (decrypt + CRYPTO reassembly + ClientHello summary; the
//! ClientHello is rustls's QUIC client's, sealed into a v1 Initial here).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use entrospect::Timestamp;
use entrospect::flow::Direction;
use entrospect::inspect::tls::quic::{InitialKeys, Side, VERSION_1, seal_initial};
use entrospect::inspect::tls::{TlsConfig, TlsInspector, TlsStatus};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, ServerConnection,
};

#[derive(Debug)]
struct AcceptAll;

impl ServerCertVerifier for AcceptAll {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        vec![rustls::SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

/// The handshake flights of one TLS 1.2 session, in order.
fn flights() -> Vec<(Direction, Vec<u8>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rcgen::KeyPair::generate().expect("keygen");
    let cert = rcgen::CertificateParams::new(vec!["bench.example.com".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let scfg = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .expect("server config");
    let ccfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll))
        .with_no_client_auth();
    let name = ServerName::try_from("bench.example.com").expect("name");
    let mut c = ClientConnection::new(Arc::new(ccfg), name).expect("client");
    let mut s = ServerConnection::new(Arc::new(scfg)).expect("server");
    let mut out = Vec::new();
    for _ in 0..16 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("write");
        }
        if !buf.is_empty() {
            s.read_tls(&mut &buf[..]).expect("read");
            s.process_new_packets().expect("server");
            out.push((Direction::ToServer, buf));
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).expect("write");
        }
        if !buf.is_empty() {
            c.read_tls(&mut &buf[..]).expect("read");
            c.process_new_packets().expect("client");
            out.push((Direction::ToClient, buf));
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() && !s.wants_write() {
            break;
        }
    }
    out
}

/// One QUIC v1 client Initial datagram (1200 bytes) carrying rustls's QUIC ClientHello.
fn quic_client_initial() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ccfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll))
        .with_no_client_auth();
    let mut ccfg = ccfg;
    ccfg.alpn_protocols = vec![b"h3".to_vec()];
    let name = ServerName::try_from("bench.example.com").expect("name");
    // Transport parameters (RFC 9000 §18): initial_max_data (0x04) = 1 MiB.
    let params = vec![0x04, 0x04, 0x80, 0x10, 0x00, 0x00];
    let mut conn = rustls::quic::ClientConnection::new(
        Arc::new(ccfg),
        rustls::quic::Version::V1,
        name,
        params,
    )
    .expect("quic client");
    let mut hello = Vec::new();
    let _ = conn.write_hs(&mut hello);
    let dcid = [0x51u8, 0x2e, 0x8f, 0x03, 0x77, 0xc1, 0x4a, 0x9d];
    let keys = InitialKeys::new(VERSION_1, &dcid, Side::Client).expect("keys");
    let len = u16::try_from(hello.len()).expect("hello fits");
    let mut payload = vec![0x06, 0x00, 0x40 | (len >> 8) as u8, len as u8];
    payload.extend_from_slice(&hello);
    let mut header = vec![0xc3, 0, 0, 0, 1, dcid.len() as u8];
    header.extend_from_slice(&dcid);
    header.extend_from_slice(&[0, 0]); // no SCID, no token
    let pn_and_tag = 4 + 16;
    let target = 1200 - header.len() - 2 - pn_and_tag;
    payload.resize(target.max(payload.len()), 0); // PADDING to a 1200-byte datagram
    let length = u16::try_from(payload.len() + pn_and_tag).expect("length");
    header.extend_from_slice(&(0x4000 | length).to_be_bytes());
    header.extend_from_slice(&0u32.to_be_bytes());
    seal_initial(&keys, &header, 0, &payload).expect("seal")
}

fn bench(c: &mut Criterion) {
    let cfg = TlsConfig::default();
    let ts = Timestamp::from_secs_nanos(1_780_000_000, 0);
    let fl = flights();
    let bytes: usize = fl.iter().map(|(_, b)| b.len()).sum();

    let mut g = c.benchmark_group("tls_handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("tls12_full_{bytes}B"), |b| {
        b.iter(|| {
            let mut insp = TlsInspector::new();
            let mut st = TlsStatus::NeedMore;
            for (dir, data) in &fl {
                st = insp.feed(&cfg, *dir, ts, black_box(data));
            }
            assert_eq!(st, TlsStatus::HandshakeDone);
            black_box(insp.summary().map(|s| s.anomalies.as_slice().len()))
        });
    });
    g.finish();

    let initial = quic_client_initial();
    let mut g = c.benchmark_group("quic_initial");
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        format!("client_initial_decrypt_and_summary_{}B", initial.len()),
        |b| {
            b.iter(|| {
                let mut insp = TlsInspector::new();
                insp.feed_datagram(&cfg, Direction::ToServer, ts, black_box(&initial));
                let s = insp.summary().expect("client hello summarised");
                assert!(s.ja4.as_deref().is_some_and(|j| j.starts_with("q13d")));
                black_box(s.sni.as_deref().map(str::len))
            });
        },
    );
    g.finish();

    // 64 KiB of application data as four 16 KiB records, after the handshake.
    let mut app = Vec::new();
    for _ in 0..4 {
        app.extend_from_slice(&[23, 3, 3, 0x40, 0x00]);
        app.extend(std::iter::repeat_n(0xa5u8, 1 << 14));
    }
    let mut insp = TlsInspector::new();
    for (dir, data) in &fl {
        insp.feed(&cfg, *dir, ts, data);
    }
    let mut g = c.benchmark_group("tls_after_handshake");
    g.throughput(Throughput::Bytes(app.len() as u64));
    g.bench_function("app_data_64KiB_in_1460B_segments", |b| {
        b.iter(|| {
            for seg in app.chunks(1460) {
                black_box(insp.feed(&cfg, Direction::ToClient, ts, black_box(seg)));
            }
        });
    });
    g.finish();
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
