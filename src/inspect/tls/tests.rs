//! Inspector tests on real handshakes: rustls (client and server in memory) with
//! certificates from rcgen.
//!
//! Two fixtures need keys that ring cannot handle (RSA-1024, SHA-1 signatures). For those
//! the *certificates* are still built and signed by rcgen, through a stand-in signer
//! ([`FakeRsa`]) whose public key is a well-formed RSA key of the wanted size and whose
//! signature bytes are filler; the SHA-1 certificate is then made by changing the
//! signature OID `sha256WithRSAEncryption` (…01 01 0b) to `sha1WithRSAEncryption`
//! (…01 01 05), same length. The inspector never verifies signatures, and the rustls
//! client here accepts any certificate and signature (it is an observer's fixture, not a
//! trust test), so the handshakes themselves are complete and real.

use super::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData,
    SigningKey as RcSigningKey,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, ServerConnection,
    SignatureAlgorithm, SignatureScheme as RSig,
};
use std::io::Write;
use std::sync::Arc;

type Flights = Vec<(Direction, Vec<u8>)>;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap_or(Timestamp::ZERO)
}

const NOW: &str = "2026-06-01T00:00:00Z";

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
    fn supported_verify_schemes(&self) -> Vec<RSig> {
        vec![
            RSig::ECDSA_NISTP256_SHA256,
            RSig::RSA_PSS_SHA256,
            RSig::RSA_PKCS1_SHA256,
            RSig::ED25519,
        ]
    }
}

/// An RSA public key of `bits` bits that signs with filler bytes (see module docs).
struct FakeRsa {
    spk: Vec<u8>,
    bits: usize,
}

impl FakeRsa {
    fn new(bits: usize, seed: u8) -> FakeRsa {
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let n_len = bits / 8;
        let mut n = vec![0u8]; // leading zero: positive INTEGER
        for i in 0..n_len {
            n.push((i as u8).wrapping_mul(31).wrapping_add(seed) | 1);
        }
        n[1] |= 0x80;
        let mut int = vec![0x02];
        der_len(&mut int, n.len());
        int.extend_from_slice(&n);
        int.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut spk = vec![0x30];
        der_len(&mut spk, int.len());
        spk.extend_from_slice(&int);
        FakeRsa { spk, bits }
    }
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

impl PublicKeyData for FakeRsa {
    fn der_bytes(&self) -> &[u8] {
        &self.spk
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl RcSigningKey for FakeRsa {
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(vec![0x5a; self.bits / 8])
    }
}

/// A rustls server key that signs with filler bytes (the client accepts anything).
#[derive(Debug)]
struct FillerKey(SignatureAlgorithm);

#[derive(Debug)]
struct FillerSigner(RSig);

impl Signer for FillerSigner {
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(vec![0x5a; 128])
    }
    fn scheme(&self) -> RSig {
        self.0
    }
}

impl SigningKey for FillerKey {
    fn choose_scheme(&self, offered: &[RSig]) -> Option<Box<dyn Signer>> {
        let want: &[RSig] = match self.0 {
            SignatureAlgorithm::RSA => &[RSig::RSA_PSS_SHA256, RSig::RSA_PKCS1_SHA256],
            _ => &[RSig::ECDSA_NISTP256_SHA256],
        };
        want.iter()
            .find(|s| offered.contains(s))
            .map(|s| Box::new(FillerSigner(*s)) as Box<dyn Signer>)
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        self.0
    }
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(tls13: bool) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static V13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static V12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    if tls13 { &V13 } else { &V12 }
}

/// A server chain and its signing key.
struct Chain {
    certs: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
}

fn params(sans: &[&str], cn: &str, from: (i32, u8, u8), to: (i32, u8, u8)) -> CertificateParams {
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap_or_default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    p.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    p
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = params(&[], cn, (2020, 1, 1), (2040, 1, 1));
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

fn real_key(kp: &KeyPair) -> Arc<dyn SigningKey> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der()));
    match rustls::crypto::ring::sign::any_supported_type(&der) {
        Ok(k) => k,
        Err(_) => Arc::new(FillerKey(SignatureAlgorithm::ECDSA)),
    }
}

fn kp() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|e| panic!("rcgen keygen: {e}"))
}

const LEAF_FROM: (i32, u8, u8) = (2026, 3, 1);
const LEAF_TO: (i32, u8, u8) = (2026, 9, 1);

/// A leaf for `sans` signed by a fresh local CA; chain [leaf, ca].
fn ca_chain(sans: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> Chain {
    let ca_key = kp();
    let ca_p = ca_params("Test Local CA");
    let ca_cert = ca_p.self_signed(&ca_key).unwrap_or_else(|e| panic!("{e}"));
    let issuer = Issuer::new(ca_p, ca_key);
    let leaf_key = kp();
    let leaf = params(sans, sans.first().copied().unwrap_or("leaf"), from, to)
        .signed_by(&leaf_key, &issuer)
        .unwrap_or_else(|e| panic!("{e}"));
    Chain {
        certs: vec![leaf.der().clone(), ca_cert.der().clone()],
        key: real_key(&leaf_key),
    }
}

fn server_config(chain: &Chain, tls13: bool) -> ServerConfig {
    let ck = CertifiedKey::new(chain.certs.clone(), chain.key.clone());
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(tls13))
        .unwrap_or_else(|e| panic!("{e}"))
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(ck))))
}

fn client_config(tls13: bool, sni: bool) -> ClientConfig {
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(tls13))
        .unwrap_or_else(|e| panic!("{e}"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll))
        .with_no_client_auth();
    c.enable_sni = sni;
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    c
}

fn pump(client: &mut ClientConnection, server: &mut ServerConnection, flights: &mut Flights) {
    for _ in 0..32 {
        let mut progressed = false;
        let mut buf = Vec::new();
        while client.wants_write() {
            if client.write_tls(&mut buf).is_err() {
                break;
            }
        }
        if !buf.is_empty() {
            progressed = true;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                if server.read_tls(&mut rd).is_err() {
                    break;
                }
                server
                    .process_new_packets()
                    .unwrap_or_else(|e| panic!("server: {e}"));
            }
            flights.push((Direction::ToServer, buf));
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            if server.write_tls(&mut buf).is_err() {
                break;
            }
        }
        if !buf.is_empty() {
            progressed = true;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                if client.read_tls(&mut rd).is_err() {
                    break;
                }
                client
                    .process_new_packets()
                    .unwrap_or_else(|e| panic!("client: {e}"));
            }
            flights.push((Direction::ToClient, buf));
        }
        if !progressed {
            return;
        }
    }
}

/// Run a full handshake plus one application message each way; the flights in order.
fn handshake(chain: &Chain, tls13: bool, sni: Option<&str>) -> Flights {
    let ccfg = client_config(tls13, sni.is_some());
    let name = ServerName::try_from(sni.unwrap_or("198.51.100.7").to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut client = ClientConnection::new(Arc::new(ccfg), name).unwrap_or_else(|e| panic!("{e}"));
    let mut server = ServerConnection::new(Arc::new(server_config(chain, tls13)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut flights = Vec::new();
    pump(&mut client, &mut server, &mut flights);
    assert!(!client.is_handshaking() && !server.is_handshaking());
    let _ = client.writer().write_all(b"ping");
    let _ = server.writer().write_all(b"pong");
    pump(&mut client, &mut server, &mut flights);
    flights
}

/// Feed flights cut into chunks of sizes from `sizes` (cycled); returns the last status.
fn feed_chunks(insp: &mut TlsInspector, flights: &Flights, sizes: &[usize]) -> TlsStatus {
    let cfg = TlsConfig::default();
    let mut st = TlsStatus::NeedMore;
    let mut k = 0;
    for (dir, bytes) in flights {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = sizes[k % sizes.len()].clamp(1, rest.len());
            k += 1;
            let (a, b) = rest.split_at(n);
            st = insp.feed(&cfg, *dir, ts(NOW), a);
            rest = b;
        }
    }
    st
}

fn inspect(flights: &Flights) -> (TlsSummary, TlsStatus) {
    let mut insp = TlsInspector::new();
    let st = feed_chunks(&mut insp, flights, &[usize::MAX]);
    insp.finish(&TlsConfig::default(), ts(NOW));
    (insp.summary().cloned().unwrap_or_default(), st)
}

fn anomalies(s: &TlsSummary) -> Vec<&'static str> {
    let mut v: Vec<_> = s.anomalies.as_slice().iter().map(|a| a.as_str()).collect();
    v.sort_unstable();
    v
}

#[test]
fn clean_tls12_chain_from_local_ca_has_no_anomaly() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let (s, st) = inspect(&handshake(&chain, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), Vec::<&str>::new());
    assert_eq!(st, TlsStatus::HandshakeDone);
    assert_eq!(s.version.as_deref(), Some("TLS 1.2"));
    assert_eq!(s.sni.as_deref(), Some("test.example.com"));
    assert_eq!(s.subject.as_deref(), Some("CN=test.example.com"));
    assert_eq!(s.issuerdn.as_deref(), Some("CN=Test Local CA"));
    assert_eq!(s.notbefore.as_deref(), Some("2026-03-01T00:00:00"));
    assert!(s.cert_visible && !s.handshake_encrypted);
    assert_eq!(s.certs.len(), 2);
    assert_eq!(s.alpn, vec!["h2", "http/1.1"]);
    assert!(
        s.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS_ECDHE_ECDSA_WITH_"))
    );
    assert!(s.ja3.is_some() && s.ja3s.is_some());
    assert!(
        s.ja4
            .as_deref()
            .is_some_and(|j| j.starts_with("t12d") && j.contains("h2_"))
    );
    assert_eq!(s.certs[0].key_type, Some(KeyType::Ec));
    assert_eq!(s.certs[0].key_bits, Some(256));
    assert_eq!(s.counters.toserver.app_data_records, 1);
    assert_eq!(s.counters.toclient.app_data_records, 1);
}

#[test]
fn clean_tls13_hides_certificate_and_finishes() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let (s, st) = inspect(&handshake(&chain, true, Some("test.example.com")));
    assert_eq!(anomalies(&s), Vec::<&str>::new());
    assert_eq!(st, TlsStatus::HandshakeDone);
    assert_eq!(s.version.as_deref(), Some("TLS 1.3"));
    assert!(!s.cert_visible && s.handshake_encrypted);
    assert!(s.certs.is_empty() && s.subject.is_none());
    assert_eq!(s.offered_versions, vec!["TLS 1.3"]);
    assert!(s.cipher.as_deref().is_some_and(|c| c.starts_with("TLS_")));
}

#[test]
fn byte_by_byte_and_random_chunks_give_the_same_summary() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    for tls13 in [false, true] {
        let flights = handshake(&chain, tls13, Some("test.example.com"));
        let (whole, _) = inspect(&flights);
        let want = serde_json::to_string(&whole).unwrap_or_default();
        let mut rng_state = 0x9e37_79b9u32;
        let random: Vec<usize> = (0..64)
            .map(|_| {
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 17;
                rng_state ^= rng_state << 5;
                (rng_state % 700) as usize + 1
            })
            .collect();
        for sizes in [&[1usize][..], &random[..], &[3, 5, 7][..]] {
            let mut insp = TlsInspector::new();
            feed_chunks(&mut insp, &flights, sizes);
            insp.finish(&TlsConfig::default(), ts(NOW));
            let got = serde_json::to_string(&insp.summary().cloned().unwrap_or_default())
                .unwrap_or_default();
            assert_eq!(
                got,
                want,
                "tls13={tls13} sizes={:?}",
                &sizes[..sizes.len().min(3)]
            );
        }
    }
}

#[test]
fn self_signed_leaf_is_only_self_signed() {
    let k = kp();
    let cert = params(
        &["test.example.com"],
        "test.example.com",
        LEAF_FROM,
        LEAF_TO,
    )
    .self_signed(&k)
    .unwrap_or_else(|e| panic!("{e}"));
    let chain = Chain {
        certs: vec![cert.der().clone()],
        key: real_key(&k),
    };
    let (s, _) = inspect(&handshake(&chain, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), vec!["self_signed"]);
}

#[test]
fn expired_leaf_is_expired_relative_to_packet_time() {
    let chain = ca_chain(&["test.example.com"], (2025, 1, 1), (2025, 6, 1));
    let (s, _) = inspect(&handshake(&chain, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), vec!["expired"]);
}

#[test]
fn future_leaf_is_not_yet_valid() {
    let chain = ca_chain(&["test.example.com"], (2027, 1, 1), (2027, 6, 1));
    let (s, _) = inspect(&handshake(&chain, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), vec!["not_yet_valid"]);
}

#[test]
fn validity_length_limits_are_flagged() {
    let chain = ca_chain(&["test.example.com"], (2025, 1, 1), (2028, 1, 1));
    let (s, _) = inspect(&handshake(&chain, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), vec!["validity_too_long"]);
    let chain = ca_chain(&["test.example.com"], (2026, 6, 1), (2026, 6, 1));
    let flights = handshake(&chain, false, Some("test.example.com"));
    let mut insp = TlsInspector::new();
    feed_chunks(&mut insp, &flights, &[usize::MAX]);
    let s = insp.summary().cloned().unwrap_or_default();
    assert_eq!(anomalies(&s), vec!["validity_too_short"]);
}

#[test]
fn sni_not_in_san_is_hostname_mismatch() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let (s, _) = inspect(&handshake(&chain, false, Some("other.example.org")));
    assert_eq!(anomalies(&s), vec!["hostname_mismatch"]);
}

#[test]
fn wildcard_san_covers_one_label_only() {
    let chain = ca_chain(&["*.example.com"], LEAF_FROM, LEAF_TO);
    let cases = [
        ("a.example.com", vec![]),
        ("a.b.example.com", vec!["hostname_mismatch"]),
        ("example.com", vec!["hostname_mismatch"]),
    ];
    for (sni, want) in cases {
        let (s, _) = inspect(&handshake(&chain, false, Some(sni)));
        assert_eq!(anomalies(&s), want, "{sni}");
    }
}

#[test]
fn rsa_1024_leaf_is_weak_key() {
    let ca_key = kp();
    let ca_p = ca_params("Test Local CA");
    let ca_cert = ca_p.self_signed(&ca_key).unwrap_or_else(|e| panic!("{e}"));
    let issuer = Issuer::new(ca_p, ca_key);
    let leaf = params(
        &["test.example.com"],
        "test.example.com",
        LEAF_FROM,
        LEAF_TO,
    )
    .signed_by(&FakeRsa::new(1024, 7), &issuer)
    .unwrap_or_else(|e| panic!("{e}"));
    let chain = Chain {
        certs: vec![leaf.der().clone(), ca_cert.der().clone()],
        key: Arc::new(FillerKey(SignatureAlgorithm::RSA)),
    };
    let (s, _) = inspect(&handshake(&chain, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), vec!["weak_key"]);
    assert_eq!(s.certs[0].key_type, Some(KeyType::Rsa));
    assert_eq!(s.certs[0].key_bits, Some(1024));
}

#[test]
fn sha1_signed_leaf_is_weak_signature() {
    let ca_p = ca_params("Test RSA CA");
    let ca_key = FakeRsa::new(2048, 3);
    let ca_cert = ca_p.self_signed(&ca_key).unwrap_or_else(|e| panic!("{e}"));
    let issuer = Issuer::new(ca_p, ca_key);
    let leaf_key = kp();
    let leaf = params(
        &["test.example.com"],
        "test.example.com",
        LEAF_FROM,
        LEAF_TO,
    )
    .signed_by(&leaf_key, &issuer)
    .unwrap_or_else(|e| panic!("{e}"));
    let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    let mut der = leaf.der().to_vec();
    let mut patched = 0;
    let mut i = 0;
    while i + sha256_rsa.len() <= der.len() {
        if der[i..i + sha256_rsa.len()] == sha256_rsa {
            der[i + sha256_rsa.len() - 1] = 0x05;
            patched += 1;
        }
        i += 1;
    }
    assert_eq!(patched, 2, "tbs.signature and signatureAlgorithm");
    let chain = Chain {
        certs: vec![CertificateDer::from(der), ca_cert.der().clone()],
        key: real_key(&leaf_key),
    };
    let (s, _) = inspect(&handshake(&chain, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), vec!["weak_signature"]);
    assert_eq!(s.certs[0].sig_alg.as_deref(), Some("sha1WithRSAEncryption"));
    // The CA's own signature is sha256 (and self-signed): not weak.
    assert!(!s.certs[1].weak_signature_alg);
}

#[test]
fn chain_sent_out_of_order_is_flagged() {
    let root_key = kp();
    let root_p = ca_params("Test Root");
    let root = root_p
        .self_signed(&root_key)
        .unwrap_or_else(|e| panic!("{e}"));
    let root_issuer = Issuer::new(root_p, root_key);
    let int_key = kp();
    let int_p = ca_params("Test Intermediate");
    let int = int_p
        .signed_by(&int_key, &root_issuer)
        .unwrap_or_else(|e| panic!("{e}"));
    let int_issuer = Issuer::new(int_p, int_key);
    let leaf_key = kp();
    let leaf = params(
        &["test.example.com"],
        "test.example.com",
        LEAF_FROM,
        LEAF_TO,
    )
    .signed_by(&leaf_key, &int_issuer)
    .unwrap_or_else(|e| panic!("{e}"));
    let good = Chain {
        certs: vec![leaf.der().clone(), int.der().clone(), root.der().clone()],
        key: real_key(&leaf_key),
    };
    let (s, _) = inspect(&handshake(&good, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), Vec::<&str>::new());
    let bad = Chain {
        certs: vec![leaf.der().clone(), root.der().clone(), int.der().clone()],
        key: real_key(&leaf_key),
    };
    let (s, _) = inspect(&handshake(&bad, false, Some("test.example.com")));
    assert_eq!(anomalies(&s), vec!["chain_order_broken"]);
}

#[test]
fn client_without_sni_is_missing_sni() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let (s, _) = inspect(&handshake(&chain, false, None));
    assert_eq!(anomalies(&s), vec!["missing_sni"]);
    assert!(s.sni.is_none());
    let cfg = TlsConfig::default();
    assert!(
        an1496_score(&s, &cfg).is_none(),
        "missing_sni alone is weak"
    );
}

#[test]
fn anomalies_combine_into_an1496_score_with_reasons() {
    let k = kp();
    let cert = params(&["c2.invalid"], "c2.invalid", (2024, 1, 1), (2025, 1, 1))
        .self_signed(&k)
        .unwrap_or_else(|e| panic!("{e}"));
    let chain = Chain {
        certs: vec![cert.der().clone()],
        key: real_key(&k),
    };
    let (s, _) = inspect(&handshake(&chain, false, Some("update.example.com")));
    assert_eq!(
        anomalies(&s),
        vec!["expired", "hostname_mismatch", "self_signed"]
    );
    let f = an1496_score(&s, &TlsConfig::default());
    let f = f.unwrap_or_else(|| panic!("expected a finding"));
    assert!(f.score > 0.85 && f.score <= 1.0, "{}", f.score);
    assert_eq!(f.reasons.len(), 3);
    assert!(f.reasons.iter().any(|r| r.starts_with("self_signed: ")));
}

#[test]
fn client_hello_alone_is_truncated_at_finish() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let flights = handshake(&chain, false, Some("test.example.com"));
    let mut insp = TlsInspector::new();
    let cfg = TlsConfig::default();
    let (dir, ch) = &flights[0];
    assert_eq!(*dir, Direction::ToServer);
    for b in ch.chunks(1) {
        assert_eq!(insp.feed(&cfg, *dir, ts(NOW), b), TlsStatus::NeedMore);
    }
    insp.finish(&cfg, ts(NOW));
    let s = insp.summary().cloned().unwrap_or_default();
    assert_eq!(anomalies(&s), vec!["handshake_truncated"]);
    assert!(s.ja3.is_some() && s.ja4.is_some());
}

#[test]
fn app_data_before_server_hello_is_flagged() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let flights = handshake(&chain, false, Some("test.example.com"));
    let mut insp = TlsInspector::new();
    let cfg = TlsConfig::default();
    insp.feed(&cfg, Direction::ToServer, ts(NOW), &flights[0].1);
    insp.feed(
        &cfg,
        Direction::ToServer,
        ts(NOW),
        &[23, 3, 3, 0, 2, 0xde, 0xad],
    );
    let s = insp.summary().cloned().unwrap_or_default();
    assert!(s.anomalies.contains(TlsAnomaly::AppDataBeforeHandshake));
}

#[test]
fn zero_length_and_oversized_records_are_malformed() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let flights = handshake(&chain, false, Some("test.example.com"));
    let cfg = TlsConfig::default();
    for bad in [vec![22u8, 3, 3, 0, 0], {
        let mut v = vec![22u8, 3, 3, 0x40, 0x01];
        v.extend(std::iter::repeat_n(0u8, (1 << 14) + 1));
        v
    }] {
        let mut insp = TlsInspector::new();
        insp.feed(&cfg, Direction::ToServer, ts(NOW), &flights[0].1);
        insp.feed(&cfg, Direction::ToServer, ts(NOW), &bad);
        let s = insp.summary().cloned().unwrap_or_default();
        assert!(s.anomalies.contains(TlsAnomaly::MalformedRecord));
    }
}

#[test]
fn one_mib_certificate_message_hits_the_cap() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let flights = handshake(&chain, false, Some("test.example.com"));
    let cfg = TlsConfig::default();
    let mut insp = TlsInspector::new();
    insp.feed(&cfg, Direction::ToServer, ts(NOW), &flights[0].1);
    // A Certificate message of 1 MiB, sent as 16 KiB records.
    let total = 1usize << 20;
    let mut msg = vec![11u8, (total >> 16) as u8, (total >> 8) as u8, total as u8];
    msg.resize(4 + total, 0x41);
    let mut st = TlsStatus::NeedMore;
    for chunk in msg.chunks(1 << 14) {
        let mut rec = vec![22u8, 3, 3];
        rec.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        rec.extend_from_slice(chunk);
        st = insp.feed(&cfg, Direction::ToClient, ts(NOW), &rec);
    }
    assert_ne!(st, TlsStatus::NotTls);
    let s = insp.summary().cloned().unwrap_or_default();
    assert!(s.anomalies.contains(TlsAnomaly::OversizedHandshakeMessage));
    assert!(s.counters.caps_hit >= 1);
    assert!(s.certs.is_empty());
}

#[test]
fn http_is_not_tls_at_once() {
    let cfg = TlsConfig::default();
    let mut insp = TlsInspector::new();
    let st = insp.feed(
        &cfg,
        Direction::ToServer,
        ts(NOW),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(st, TlsStatus::NotTls);
    assert!(insp.summary().is_none());
    let mut insp = TlsInspector::new();
    assert_eq!(
        insp.feed(
            &cfg,
            Direction::ToClient,
            ts(NOW),
            b"SSH-2.0-OpenSSH_9.6\r\n"
        ),
        TlsStatus::NotTls
    );
}

#[test]
fn gap_before_handshake_end_is_truncated_and_stops_that_direction() {
    let chain = ca_chain(&["test.example.com"], LEAF_FROM, LEAF_TO);
    let flights = handshake(&chain, false, Some("test.example.com"));
    let cfg = TlsConfig::default();
    let mut insp = TlsInspector::new();
    insp.feed(&cfg, Direction::ToServer, ts(NOW), &flights[0].1);
    insp.gap(Direction::ToClient);
    // Bytes after the gap are ignored, never parsed as a new record start.
    insp.feed(&cfg, Direction::ToClient, ts(NOW), &flights[1].1[7..]);
    let s = insp.summary().cloned().unwrap_or_default();
    assert!(s.anomalies.contains(TlsAnomaly::HandshakeTruncated));
    assert!(s.server_hello.is_none());
    assert_eq!(s.counters.toclient.gaps, 1);
}

#[test]
fn idle_inspector_is_one_pointer() {
    assert_eq!(
        std::mem::size_of::<TlsInspector>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn sanitize_escapes_controls_and_caps_length() {
    assert_eq!(sanitize(b"a\x00b\x1bc\\", 64), "a\\x00b\\x1bc\\\\");
    assert_eq!(sanitize(&[0xff, b'x'], 64), "\u{fffd}x");
    assert_eq!(sanitize(&[b'a'; 300], 256).len(), 256);
}

#[test]
fn config_from_empty_toml_is_default() {
    let c: TlsConfig = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c, TlsConfig::default());
    let c: TlsConfig =
        toml::from_str("max_validity_days = 398\n[an1496_weights]\nmissing_sni = 0.5\n")
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.max_validity_days, 398);
    assert_eq!(c.an1496_weights.get(&TlsAnomaly::MissingSni), Some(&0.5));
}

#[test]
fn sslv2_compatible_client_hello_is_summarised_without_ja3() {
    // Built field by field (RFC 5246 Appendix E.2): no library emits SSLv2 hellos any more.
    let specs: [[u8; 3]; 3] = [[0, 0, 0x2f], [0, 0, 0x35], [0x07, 0x00, 0xc0]];
    let challenge = [0x11u8; 16];
    let mut msg = vec![1u8, 3, 1];
    msg.extend_from_slice(&((specs.len() * 3) as u16).to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    msg.extend_from_slice(&(challenge.len() as u16).to_be_bytes());
    for s in specs {
        msg.extend_from_slice(&s);
    }
    msg.extend_from_slice(&challenge);
    let mut rec = vec![0x80 | (msg.len() >> 8) as u8, msg.len() as u8];
    rec.extend_from_slice(&msg);
    let cfg = TlsConfig::default();
    let mut insp = TlsInspector::new();
    for b in rec.chunks(1) {
        assert_eq!(
            insp.feed(&cfg, Direction::ToServer, ts(NOW), b),
            TlsStatus::NeedMore
        );
    }
    let s = insp.summary().cloned().unwrap_or_default();
    assert!(s.sslv2_client_hello);
    assert!(s.ja3.is_none());
    assert_eq!(
        s.ja4.as_deref(),
        Some("t10i020000_f54dd463d39b_000000000000")
    );
    assert!(!s.anomalies.contains(TlsAnomaly::MissingSni));
    assert_eq!(s.offered_versions, vec!["TLS 1.0"]);
}

/// RFC 9147 §4 unified header: 0b001CSLEE, then the connection id (C), an 8- or 16-bit
/// sequence number (S), and a 16-bit length (L). Only records without a connection id and
/// with a length can be delimited by an observer.
#[test]
fn dtls13_unified_header_is_delimited_only_with_length_and_no_connection_id() {
    // S=1 (16-bit seq), L=1, no CID: 1 + 2 + 2 header bytes, then 3 body bytes.
    let rec = [0x2c, 0x00, 0x07, 0x00, 0x03, 0xaa, 0xbb, 0xcc, 0x2c];
    assert_eq!(unified_header_len(0x2c, &rec), Some(8));
    // S=0 (8-bit seq), L=1: 1 + 1 + 2, then 1 body byte.
    assert_eq!(
        unified_header_len(0x24, &[0x24, 0x01, 0x00, 0x01, 0xff]),
        Some(5)
    );
    // C bit: the connection id's length is only known to the endpoints.
    assert_eq!(unified_header_len(0x3c, &rec), None);
    // No L bit: the record runs to the end of the datagram.
    assert_eq!(unified_header_len(0x28, &rec), None);
    // Length beyond the datagram, or a truncated header.
    assert_eq!(
        unified_header_len(0x2c, &[0x2c, 0x00, 0x07, 0x01, 0x00, 0xaa]),
        None
    );
    assert_eq!(unified_header_len(0x2c, &[0x2c, 0x00]), None);
    // Not a unified header at all (a DTLS 1.2 handshake record's first byte).
    assert_eq!(unified_header_len(22, &rec), None);
}
