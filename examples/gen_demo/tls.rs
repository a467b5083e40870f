//! Real TLS sessions: a rustls client and a rustls server talk through memory; every
//! flight each side writes becomes a [`Write`] for the TCP synthesiser.
//!
//! Reproducibility: rustls takes its randomness (client/server randoms, session ids,
//! ticket nonces) from the provider's `SecureRandom`, and its ephemeral keys from the
//! provider's key-exchange groups. Both are replaced here by seeded versions (a ChaCha20
//! keystream and X25519 from `x25519-dalek` with seeded scalars); certificates use Ed25519,
//! whose signatures are deterministic, and both sides read a fixed clock (the capture
//! time). The same inputs therefore give the same bytes on every run.

use super::GenError;
use super::rng::Keystream;
use super::wire::{MS, Write};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, SanType, SerialNumber,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, NamedGroup, RootCertStore,
    ServerConfig, ServerConnection, SignatureScheme,
};
use std::io::{Read, Write as _};
use std::sync::{Arc, Mutex};

/// Cap on handshake round trips before the driver gives up.
const MAX_ROUNDS: usize = 8;

/// rustls randomness from a seeded keystream.
#[derive(Debug)]
struct SeededRandom(Mutex<KeystreamCell>);

/// `Keystream` has no `Debug`; this wrapper gives it one.
struct KeystreamCell(Keystream);

impl std::fmt::Debug for KeystreamCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keystream")
    }
}

impl SecureRandom for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        let mut ks = self.0.lock().map_err(|_| GetRandomFailed)?;
        ks.0.fill(buf);
        Ok(())
    }
}

/// X25519 (RFC 7748) with private scalars drawn from the seeded keystream.
#[derive(Debug)]
struct SeededX25519 {
    rng: &'static SeededRandom,
}

impl SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let mut scalar = [0u8; 32];
        self.rng
            .fill(&mut scalar)
            .map_err(|_| rustls::Error::FailedToGetRandomBytes)?;
        let secret = x25519_dalek::StaticSecret::from(scalar);
        let public = x25519_dalek::PublicKey::from(&secret);
        Ok(Box::new(ActiveX25519 { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct ActiveX25519 {
    secret: x25519_dalek::StaticSecret,
    public: x25519_dalek::PublicKey,
}

impl ActiveKeyExchange for ActiveX25519 {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, rustls::Error> {
        let peer: [u8; 32] = peer_pub_key
            .try_into()
            .map_err(|_| rustls::PeerMisbehaved::InvalidKeyShare)?;
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(rustls::PeerMisbehaved::InvalidKeyShare.into());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// A clock stopped at the capture time, for certificate validity and ticket ages.
#[derive(Debug)]
struct FixedClock(u64);

impl TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            self.0,
        )))
    }
}

/// The ring provider with seeded randomness and seeded X25519 first in its group list
/// (the NIST groups stay listed, so the ClientHello offers what real clients offer).
fn seeded_provider(label: &str) -> Arc<CryptoProvider> {
    let rng: &'static SeededRandom = Box::leak(Box::new(SeededRandom(Mutex::new(KeystreamCell(
        Keystream::new(label),
    )))));
    let x25519: &'static SeededX25519 = Box::leak(Box::new(SeededX25519 { rng }));
    let base = rustls::crypto::ring::default_provider();
    let mut kx_groups: Vec<&'static dyn SupportedKxGroup> = vec![x25519];
    kx_groups.extend(
        base.kx_groups
            .iter()
            .copied()
            .filter(|g| g.name() != NamedGroup::X25519),
    );
    Arc::new(CryptoProvider {
        kx_groups,
        secure_random: rng,
        ..base
    })
}

/// An Ed25519 key pair from a seeded keystream, in PKCS#8 as rcgen and rustls take it.
fn ed25519_key(rng: &mut Keystream) -> Result<KeyPair, GenError> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let mut seed = [0u8; 32];
    rng.fill(&mut seed);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let der = signing
        .to_pkcs8_der()
        .map_err(|e| GenError::Cert(format!("pkcs8 encoding: {e}")))?;
    let pkcs8 = PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
    KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_ED25519)
        .map_err(|e| GenError::Cert(format!("ed25519 key: {e}")))
}

/// A certificate and its private key.
pub struct Leaf {
    /// The DER chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Validity window as calendar dates (UTC midnight).
#[derive(Clone, Copy)]
pub struct Validity {
    /// First valid day (year, month, day).
    pub not_before: (i32, u8, u8),
    /// Last valid day (year, month, day).
    pub not_after: (i32, u8, u8),
}

/// The demo's private certificate authority.
pub struct DemoCa {
    cert: CertificateDer<'static>,
    params: CertificateParams,
    key: KeyPair,
}

impl DemoCa {
    /// A root CA, valid 2026-01-01 to 2031-01-01.
    pub fn new(rng: &mut Keystream) -> Result<DemoCa, GenError> {
        let key = ed25519_key(rng)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params.distinguished_name = dn("Entrospect Demo Root CA", "Example Test Org");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2031, 1, 1);
        params.serial_number = Some(SerialNumber::from(0x1001u64));
        let cert = params.self_signed(&key).map_err(cert_err)?;
        Ok(DemoCa {
            cert: cert.der().clone(),
            params,
            key,
        })
    }

    /// The root certificate, for the client's trust store.
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// A server certificate for `sans` (DNS names or IP literals), signed by this CA.
    pub fn issue(
        &self,
        rng: &mut Keystream,
        sans: &[&str],
        serial: u64,
        validity: Validity,
    ) -> Result<Leaf, GenError> {
        let key = ed25519_key(rng)?;
        let params = leaf_params(sans, serial, validity)?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(cert_err)?;
        Ok(Leaf {
            chain: vec![cert.der().clone(), self.cert.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

/// A self-signed server certificate (no CA), e.g. for the anomalous scenario.
pub fn self_signed(
    rng: &mut Keystream,
    sans: &[&str],
    serial: u64,
    validity: Validity,
) -> Result<Leaf, GenError> {
    let key = ed25519_key(rng)?;
    let params = leaf_params(sans, serial, validity)?;
    let cert = params.self_signed(&key).map_err(cert_err)?;
    Ok(Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

fn leaf_params(
    sans: &[&str],
    serial: u64,
    validity: Validity,
) -> Result<CertificateParams, GenError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    for san in sans {
        params.subject_alt_names.push(match san.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                (*san)
                    .try_into()
                    .map_err(|e| GenError::Cert(format!("san {san:?}: {e}")))?,
            ),
        });
    }
    let cn = sans.first().copied().unwrap_or("server");
    params.distinguished_name = dn(cn, "Example Test Org");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let (y, m, d) = validity.not_before;
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = validity.not_after;
    params.not_after = rcgen::date_time_ymd(y, m, d);
    params.serial_number = Some(SerialNumber::from(serial));
    Ok(params)
}

fn dn(cn: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, org);
    dn
}

fn cert_err(e: rcgen::Error) -> GenError {
    GenError::Cert(e.to_string())
}

fn tls_err(e: rustls::Error) -> GenError {
    GenError::Tls(e.to_string())
}

/// How the client checks the server.
pub enum Trust<'a> {
    /// Full WebPKI verification against this root.
    Root(&'a CertificateDer<'static>),
    /// Accept any certificate (handshake signatures are still checked), like malware
    /// that pins nothing.
    AnyCertificate,
}

/// What one TLS session should look like.
pub struct TlsSession<'a> {
    /// Seed label for all randomness of the session.
    pub label: &'a str,
    /// Capture time in seconds since the epoch (the clock both sides read).
    pub now_secs: u64,
    /// Offer TLS 1.2 only (`false`: TLS 1.3 only).
    pub tls12_only: bool,
    /// The name the client connects to: a DNS name (sent as SNI) or an IP literal (no SNI).
    pub server_name: &'a str,
    /// ALPN protocols the client offers (and the server accepts).
    pub alpn: &'a [&'a str],
    /// The server's certificate.
    pub leaf: &'a Leaf,
    /// How the client verifies it.
    pub trust: Trust<'a>,
    /// The application request (sent once the client may send data).
    pub request: &'a [u8],
    /// The server's application response.
    pub response: &'a [u8],
    /// Server think time before the response.
    pub response_delay: u64,
}

/// Runs the session and returns each side's TLS bytes, flight by flight.
pub fn run(session: &TlsSession<'_>) -> Result<Vec<Write>, GenError> {
    let provider = seeded_provider(session.label);
    let clock: Arc<dyn TimeProvider> = Arc::new(FixedClock(session.now_secs));
    let versions: &[&'static rustls::SupportedProtocolVersion] = if session.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = ClientConfig::builder_with_details(provider.clone(), clock.clone())
        .with_protocol_versions(versions)
        .map_err(tls_err)?;
    let mut client_config = match session.trust {
        Trust::Root(root) => {
            let mut roots = RootCertStore::empty();
            roots.add(root.clone()).map_err(tls_err)?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    client_config.alpn_protocols = session.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();

    let mut server_config = ServerConfig::builder_with_details(provider, clock)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(session.leaf.chain.clone(), session.leaf.key.clone_key())
        .map_err(tls_err)?;
    server_config.alpn_protocols = client_config.alpn_protocols.clone();

    let name = ServerName::try_from(session.server_name.to_owned())
        .map_err(|e| GenError::Tls(format!("server name {:?}: {e}", session.server_name)))?;
    let mut client =
        Connection::Client(ClientConnection::new(Arc::new(client_config), name).map_err(tls_err)?);
    let mut server =
        Connection::Server(ServerConnection::new(Arc::new(server_config)).map_err(tls_err)?);

    let mut writes = Vec::new();
    let mut request_sent = false;
    let mut server_plain = Vec::new();
    for _ in 0..MAX_ROUNDS {
        if !client.is_handshaking() && !request_sent {
            // The request leaves with the client's last handshake flight (TLS 1.3) or
            // right after the server's Finished (TLS 1.2).
            client.writer().write_all(session.request)?;
            request_sent = true;
        }
        let c = drain(&mut client)?;
        if !c.is_empty() {
            server_plain.extend(deliver(&mut server, &c)?);
            writes.push(Write::client(c, 0));
        }
        if request_sent && !server.is_handshaking() {
            break;
        }
        let s = drain(&mut server)?;
        if s.is_empty() {
            return Err(GenError::Tls(
                "handshake stalled: server has nothing to send".into(),
            ));
        }
        deliver(&mut client, &s)?;
        writes.push(Write::server(s, 0));
    }
    if !request_sent || server_plain != session.request {
        return Err(GenError::Tls(format!(
            "handshake did not finish in {MAX_ROUNDS} rounds"
        )));
    }

    server.writer().write_all(session.response)?;
    let s = drain(&mut server)?;
    let client_plain = deliver(&mut client, &s)?;
    if client_plain != session.response {
        return Err(GenError::Tls(
            "client did not read the whole response".into(),
        ));
    }
    writes.push(Write::server(s, session.response_delay));

    client.send_close_notify();
    let c = drain(&mut client)?;
    deliver(&mut server, &c)?;
    writes.push(Write::client(c, 40 * MS));
    server.send_close_notify();
    let s = drain(&mut server)?;
    deliver(&mut client, &s)?;
    writes.push(Write::server(s, 0));
    Ok(writes)
}

/// Everything `conn` wants to send now.
fn drain(conn: &mut Connection) -> Result<Vec<u8>, GenError> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    Ok(out)
}

/// Feeds `bytes` to `conn` and returns the application data it yields.
fn deliver(conn: &mut Connection, mut bytes: &[u8]) -> Result<Vec<u8>, GenError> {
    let mut plain = Vec::new();
    let mut buf = [0u8; 4096];
    while !bytes.is_empty() {
        conn.read_tls(&mut bytes)?;
        conn.process_new_packets().map_err(tls_err)?;
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(plain)
}

/// Accepts any server certificate but still checks the handshake signature against it.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
