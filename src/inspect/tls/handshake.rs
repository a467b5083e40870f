//! Hello messages as neutral, owned summaries: the input of fingerprints and checks.
//!
//! Parsing uses `tls-parser` (rusticata); its types never leave this file. Wire values
//! are open newtypes ([`CipherSuite`], [`ExtensionType`], ...) so that unknown and GREASE
//! values survive: fingerprints decide what to drop, not the parser.
//!
//! Extensions are walked one by one (type, length, body) so that one extension whose body
//! `tls-parser` rejects does not lose the others: its type still counts for JA3/JA4 and
//! [`ClientHelloSummary::malformed_extensions`] is set.

use serde::Serialize;
use tls_parser::{TlsExtension, parse_tls_client_hello_extension};

/// Longest SNI / ALPN value kept (bytes). Longer values are cut (RFC 6066 allows 2^16-1).
pub const MAX_NAME_BYTES: usize = 256;
/// Most ALPN protocols kept from one ClientHello.
pub const MAX_ALPN_VALUES: usize = 16;

/// Whether `v` is a GREASE value (RFC 8701 §2: `0x?a?a` with both bytes equal).
pub const fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

macro_rules! wire_u16 {
    ($(#[$m:meta])* $name:ident { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u16);
        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v);)*
            /// Whether this is a GREASE value (RFC 8701).
            pub const fn is_grease(self) -> bool {
                is_grease(self.0)
            }
        }
    };
}

wire_u16!(
    /// A protocol version as on the wire (`0x0303` is TLS 1.2).
    TlsVersion {
        /// SSL 2.0 (as JA4 writes it).
        SSL_V2 = 0x0002,
        /// SSL 3.0.
        SSL_V3 = 0x0300,
        /// TLS 1.0.
        TLS_1_0 = 0x0301,
        /// TLS 1.1.
        TLS_1_1 = 0x0302,
        /// TLS 1.2.
        TLS_1_2 = 0x0303,
        /// TLS 1.3.
        TLS_1_3 = 0x0304,
        /// DTLS 1.0.
        DTLS_1_0 = 0xfeff,
        /// DTLS 1.2.
        DTLS_1_2 = 0xfefd,
        /// DTLS 1.3.
        DTLS_1_3 = 0xfefc,
    }
);

impl TlsVersion {
    /// Suricata's spelling ("TLS 1.2", "SSLv3", ...), `None` when unknown.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0x0002 => Some("SSLv2"),
            0x0300 => Some("SSLv3"),
            0x0301 => Some("TLS 1.0"),
            0x0302 => Some("TLS 1.1"),
            0x0303 => Some("TLS 1.2"),
            0x0304 => Some("TLS 1.3"),
            0xfeff => Some("DTLS 1.0"),
            0xfefd => Some("DTLS 1.2"),
            0xfefc => Some("DTLS 1.3"),
            _ => None,
        }
    }

    /// The name, or `0x....` hex for unknown values.
    pub fn display(self) -> String {
        self.name()
            .map_or_else(|| format!("0x{:04x}", self.0), str::to_string)
    }

    /// SSLv2, SSLv3, TLS 1.0, TLS 1.1 and DTLS 1.0 (RFC 8996 deprecates them).
    pub const fn is_obsolete(self) -> bool {
        matches!(self.0, 0x0002 | 0x0300 | 0x0301 | 0x0302 | 0xfeff)
    }
}

wire_u16!(
    /// A cipher suite id (IANA TLS Cipher Suites registry).
    CipherSuite {
        /// TLS 1.3 AES-128-GCM.
        TLS_AES_128_GCM_SHA256 = 0x1301,
        /// TLS 1.3 AES-256-GCM.
        TLS_AES_256_GCM_SHA384 = 0x1302,
        /// TLS 1.3 ChaCha20-Poly1305.
        TLS_CHACHA20_POLY1305_SHA256 = 0x1303,
        /// ECDHE-RSA AES-128-GCM.
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xc02f,
        /// RSA RC4-128 SHA.
        TLS_RSA_WITH_RC4_128_SHA = 0x0005,
        /// The renegotiation SCSV (RFC 5746).
        TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff,
    }
);

impl CipherSuite {
    /// The IANA name when `tls-parser` knows the suite.
    pub fn name(self) -> Option<&'static str> {
        tls_parser::TlsCipherSuiteID(self.0)
            .get_ciphersuite()
            .map(|c| c.name)
    }

    /// The IANA name, or `0x....` hex.
    pub fn display(self) -> String {
        self.name()
            .map_or_else(|| format!("0x{:04x}", self.0), str::to_string)
    }

    /// NULL, EXPORT, RC4, DES, 3DES, RC2 or anonymous (no authentication) suites.
    pub fn is_weak(self) -> bool {
        use tls_parser::{TlsCipherAu, TlsCipherEnc, TlsCipherKx};
        let Some(c) = tls_parser::TlsCipherSuiteID(self.0).get_ciphersuite() else {
            return false;
        };
        matches!(
            c.enc,
            TlsCipherEnc::Null
                | TlsCipherEnc::Des
                | TlsCipherEnc::TripleDes
                | TlsCipherEnc::Rc4
                | TlsCipherEnc::Rc2
        ) || c.name.contains("EXPORT")
            || c.name.contains("_anon_")
            || (c.au == TlsCipherAu::Null && c.kx != TlsCipherKx::Psk && c.kx != TlsCipherKx::Tls13)
    }
}

wire_u16!(
    /// A TLS extension type (IANA TLS ExtensionType Values).
    ExtensionType {
        /// server_name (RFC 6066).
        SERVER_NAME = 0x0000,
        /// supported_groups (RFC 8422).
        SUPPORTED_GROUPS = 0x000a,
        /// ec_point_formats (RFC 8422).
        EC_POINT_FORMATS = 0x000b,
        /// signature_algorithms (RFC 8446).
        SIGNATURE_ALGORITHMS = 0x000d,
        /// application_layer_protocol_negotiation (RFC 7301).
        ALPN = 0x0010,
        /// session_ticket (RFC 5077).
        SESSION_TICKET = 0x0023,
        /// pre_shared_key (RFC 8446).
        PRE_SHARED_KEY = 0x0029,
        /// early_data (RFC 8446).
        EARLY_DATA = 0x002a,
        /// supported_versions (RFC 8446).
        SUPPORTED_VERSIONS = 0x002b,
        /// key_share (RFC 8446).
        KEY_SHARE = 0x0033,
        /// encrypted_client_hello (draft-ietf-tls-esni, ECH).
        ENCRYPTED_CLIENT_HELLO = 0xfe0d,
        /// encrypted_server_name (ESNI drafts).
        ENCRYPTED_SERVER_NAME = 0xffce,
        /// renegotiation_info (RFC 5746).
        RENEGOTIATION_INFO = 0xff01,
    }
);

wire_u16!(
    /// A supported group / named curve (IANA TLS Supported Groups).
    NamedGroup {
        /// secp256r1.
        SECP256R1 = 0x0017,
        /// x25519.
        X25519 = 0x001d,
    }
);

wire_u16!(
    /// A signature scheme (IANA TLS SignatureScheme).
    SignatureScheme {
        /// ecdsa_secp256r1_sha256.
        ECDSA_SECP256R1_SHA256 = 0x0403,
        /// rsa_pss_rsae_sha256.
        RSA_PSS_RSAE_SHA256 = 0x0804,
    }
);

/// What a ClientHello offers, owned, with GREASE kept (fingerprints drop it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientHelloSummary {
    /// `legacy_version` of the hello body (what JA3 uses).
    pub legacy_version: TlsVersion,
    /// Cipher suites in the order sent.
    pub cipher_suites: Vec<CipherSuite>,
    /// Compression methods in the order sent.
    pub compression_methods: Vec<u8>,
    /// Extension types in the order sent.
    pub extensions: Vec<ExtensionType>,
    /// supported_groups in the order sent.
    pub supported_groups: Vec<NamedGroup>,
    /// ec_point_formats in the order sent.
    pub ec_point_formats: Vec<u8>,
    /// signature_algorithms in the order sent.
    pub signature_algorithms: Vec<SignatureScheme>,
    /// supported_versions in the order sent (empty when the extension is absent).
    pub supported_versions: Vec<TlsVersion>,
    /// Raw host_name of server_name, cut at [`MAX_NAME_BYTES`].
    pub sni: Option<Vec<u8>>,
    /// Raw ALPN protocol names, each cut at [`MAX_NAME_BYTES`], at most [`MAX_ALPN_VALUES`].
    pub alpn: Vec<Vec<u8>>,
    /// Length of the legacy session id (a non-zero length can mean resumption).
    pub session_id: Vec<u8>,
    /// A non-empty session_ticket extension (RFC 5077 resumption attempt).
    pub session_ticket: bool,
    /// A pre_shared_key extension (TLS 1.3 resumption attempt).
    pub psk: bool,
    /// An early_data extension (TLS 1.3 0-RTT).
    pub early_data: bool,
    /// An SSLv2-compatible ClientHello (RFC 5246 Appendix E.2).
    pub sslv2_compat: bool,
    /// Some extension body did not parse (its type is still listed).
    pub malformed_extensions: bool,
}

impl ClientHelloSummary {
    /// The highest non-GREASE value of supported_versions, else `legacy_version`
    /// (the JA4 rule).
    pub fn max_version(&self) -> TlsVersion {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !v.is_grease())
            .max_by_key(|v| version_rank(*v))
            .unwrap_or(self.legacy_version)
    }

    /// Whether the given extension was sent.
    pub fn has_extension(&self, t: ExtensionType) -> bool {
        self.extensions.contains(&t)
    }
}

/// Ordering of versions where DTLS counts down (0xfeff < 0xfefd).
fn version_rank(v: TlsVersion) -> u32 {
    match v.0 {
        0xfeff => 0x1_0000 + 2,
        0xfefd => 0x1_0000 + 3,
        0xfefc => 0x1_0000 + 4,
        x => u32::from(x),
    }
}

/// What a ServerHello chose, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerHelloSummary {
    /// `legacy_version` of the hello body (what JA3S uses).
    pub legacy_version: TlsVersion,
    /// The version from supported_versions, when the server sent one (TLS 1.3).
    pub selected_version: Option<TlsVersion>,
    /// The chosen cipher suite.
    pub cipher_suite: CipherSuite,
    /// The chosen compression method.
    pub compression_method: u8,
    /// Extension types in the order sent.
    pub extensions: Vec<ExtensionType>,
    /// The chosen ALPN protocol, raw, cut at [`MAX_NAME_BYTES`].
    pub alpn: Option<Vec<u8>>,
    /// Legacy session id echoed or chosen by the server.
    pub session_id: Vec<u8>,
    /// This ServerHello is a HelloRetryRequest (RFC 8446 §4.1.3 special random).
    pub hello_retry_request: bool,
}

impl ServerHelloSummary {
    /// The negotiated version: supported_versions if present, else `legacy_version`.
    pub fn version(&self) -> TlsVersion {
        self.selected_version.unwrap_or(self.legacy_version)
    }

    /// Whether the given extension was sent.
    pub fn has_extension(&self, t: ExtensionType) -> bool {
        self.extensions.contains(&t)
    }
}

/// SHA-256("HelloRetryRequest"), the ServerHello.random of a HelloRetryRequest
/// (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Why a hello could not be summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelloError {
    /// The ClientHello body did not parse.
    #[error("malformed client hello body ({len} bytes)")]
    ClientHello {
        /// Body length.
        len: usize,
    },
    /// The ServerHello body did not parse.
    #[error("malformed server hello body ({len} bytes)")]
    ServerHello {
        /// Body length.
        len: usize,
    },
    /// The SSLv2-compatible ClientHello did not parse.
    #[error("malformed sslv2 client hello ({len} bytes)")]
    Sslv2 {
        /// Message length.
        len: usize,
    },
}

fn cut(b: &[u8]) -> Vec<u8> {
    b.get(..MAX_NAME_BYTES).unwrap_or(b).to_vec()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let hi = *b.get(at)?;
    let lo = *b.get(at.checked_add(1)?)?;
    Some(u16::from_be_bytes([hi, lo]))
}

/// One extension: type, raw bytes including its 4-byte header, body.
type RawExtension<'a> = (u16, &'a [u8], &'a [u8]);

/// Walk an extension block: yields `(type, raw extension incl. header, body)`.
/// Stops (returning `false` as the second element) at the first framing error.
fn split_extensions(mut ext: &[u8]) -> (Vec<RawExtension<'_>>, bool) {
    let mut out = Vec::new();
    while !ext.is_empty() {
        let (Some(t), Some(len)) = (be16(ext, 0), be16(ext, 2)) else {
            return (out, false);
        };
        let end = 4usize.saturating_add(usize::from(len));
        let (Some(raw), Some(body)) = (ext.get(..end), ext.get(4..end)) else {
            return (out, false);
        };
        out.push((t, raw, body));
        ext = ext.get(end..).unwrap_or(&[]);
    }
    (out, true)
}

/// Summarise a ClientHello body (the handshake message without its 4-byte header).
///
/// # Errors
/// [`HelloError::ClientHello`] when the fixed part does not parse. A malformed
/// extension block keeps what parsed and sets `malformed_extensions`.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHelloSummary, HelloError> {
    let err = HelloError::ClientHello { len: body.len() };
    let (_, ch) = tls_parser::parse_tls_handshake_client_hello(body).map_err(|_| err)?;
    let mut s = ClientHelloSummary {
        legacy_version: TlsVersion(ch.version.0),
        cipher_suites: ch.ciphers.iter().map(|c| CipherSuite(c.0)).collect(),
        compression_methods: ch.comp.iter().map(|c| c.0).collect(),
        session_id: ch.session_id.unwrap_or(&[]).to_vec(),
        ..ClientHelloSummary::default()
    };
    if let Some(ext) = ch.ext {
        fill_client_extensions(&mut s, ext);
    }
    Ok(s)
}

/// Summarise a DTLS ClientHello body (it carries a cookie after the session id).
///
/// # Errors
/// [`HelloError::ClientHello`] when the fixed part does not parse.
pub fn parse_dtls_client_hello(body: &[u8]) -> Result<ClientHelloSummary, HelloError> {
    let err = HelloError::ClientHello { len: body.len() };
    // version(2) random(32) session_id<0..32> cookie<0..255> then as TLS.
    let sid_len = usize::from(*body.get(34).ok_or(err)?);
    let cookie_at = 35usize.checked_add(sid_len).ok_or(err)?;
    let cookie_len = usize::from(*body.get(cookie_at).ok_or(err)?);
    let rest_at = cookie_at
        .checked_add(1)
        .and_then(|x| x.checked_add(cookie_len))
        .ok_or(err)?;
    // Rebuild a TLS-shaped body without the cookie so one parser serves both.
    let mut tls_body = Vec::with_capacity(body.len());
    tls_body.extend_from_slice(body.get(..cookie_at).ok_or(err)?);
    tls_body.extend_from_slice(body.get(rest_at..).ok_or(err)?);
    parse_client_hello(&tls_body)
}

fn fill_client_extensions(s: &mut ClientHelloSummary, ext: &[u8]) {
    let (list, ok) = split_extensions(ext);
    if !ok {
        s.malformed_extensions = true;
    }
    for (t, raw, body) in list {
        s.extensions.push(ExtensionType(t));
        if is_grease(t) {
            continue;
        }
        match t {
            0x0023 => s.session_ticket = !body.is_empty(),
            0x0029 => s.psk = true,
            0x002a => s.early_data = true,
            _ => {}
        }
        let parsed = match parse_tls_client_hello_extension(raw) {
            Ok((_, e)) => e,
            Err(_) => {
                s.malformed_extensions = true;
                continue;
            }
        };
        match parsed {
            TlsExtension::SNI(names) => {
                // host_name is type 0 (RFC 6066 §3); the first one is the one used.
                if let Some((_, name)) = names.iter().find(|(t, _)| t.0 == 0) {
                    s.sni = Some(cut(name));
                }
            }
            TlsExtension::EllipticCurves(groups) => {
                s.supported_groups = groups.iter().map(|g| NamedGroup(g.0)).collect();
            }
            TlsExtension::EcPointFormats(f) => s.ec_point_formats = f.to_vec(),
            TlsExtension::SignatureAlgorithms(a) => {
                s.signature_algorithms = a.iter().map(|&x| SignatureScheme(x)).collect();
            }
            TlsExtension::SupportedVersions(v) => {
                s.supported_versions = v.iter().map(|x| TlsVersion(x.0)).collect();
            }
            TlsExtension::ALPN(protos) => {
                s.alpn = protos
                    .iter()
                    .take(MAX_ALPN_VALUES)
                    .map(|p| cut(p))
                    .collect();
            }
            _ => {}
        }
    }
}

/// Summarise a ServerHello body (the handshake message without its 4-byte header).
///
/// # Errors
/// [`HelloError::ServerHello`] when the fixed part does not parse.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHelloSummary, HelloError> {
    let err = HelloError::ServerHello { len: body.len() };
    // legacy_version(2) random(32) session_id<0..32> cipher(2) compression(1) ext<..>.
    // Parsed by hand: tls-parser refuses versions it does not know (DTLS, drafts), and the
    // layout has been the same since SSLv3.
    let legacy_version = TlsVersion(be16(body, 0).ok_or(err)?);
    let random = body.get(2..34).ok_or(err)?;
    let sid_len = usize::from(*body.get(34).ok_or(err)?);
    if sid_len > 32 {
        return Err(err);
    }
    let sid_end = 35usize.saturating_add(sid_len);
    let session_id = body.get(35..sid_end).ok_or(err)?.to_vec();
    let cipher_suite = CipherSuite(be16(body, sid_end).ok_or(err)?);
    let compression_method = *body.get(sid_end.saturating_add(2)).ok_or(err)?;
    let mut s = ServerHelloSummary {
        legacy_version,
        cipher_suite,
        compression_method,
        session_id,
        hello_retry_request: random == HRR_RANDOM,
        ..ServerHelloSummary::default()
    };
    let ext_at = sid_end.saturating_add(3);
    if let Some(ext_len) = be16(body, ext_at) {
        let start = ext_at.saturating_add(2);
        let ext = body
            .get(start..start.saturating_add(usize::from(ext_len)))
            .unwrap_or_else(|| body.get(start..).unwrap_or(&[]));
        let (list, _) = split_extensions(ext);
        for (t, _, b) in list {
            s.extensions.push(ExtensionType(t));
            match t {
                0x002b => s.selected_version = be16(b, 0).map(TlsVersion),
                0x0010 => {
                    // ProtocolNameList with exactly one name (RFC 7301 §3.1).
                    let n = usize::from(*b.get(2).unwrap_or(&0));
                    if let Some(p) = b.get(3..3usize.saturating_add(n)) {
                        s.alpn = Some(cut(p));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(s)
}

/// Summarise an SSLv2-compatible ClientHello *message* (after the 2-byte record header,
/// starting at msg_type 1; RFC 5246 Appendix E.2). SSLv2 cipher specs are 3 bytes; those
/// whose first byte is 0 are TLS cipher suites and are kept, the SSLv2-only kinds are
/// dropped. There are no extensions.
///
/// # Errors
/// [`HelloError::Sslv2`] when the message is too short for its own length fields.
pub fn parse_sslv2_client_hello(msg: &[u8]) -> Result<ClientHelloSummary, HelloError> {
    let err = HelloError::Sslv2 { len: msg.len() };
    if msg.first() != Some(&1) {
        return Err(err);
    }
    let version = be16(msg, 1).ok_or(err)?;
    let cs_len = usize::from(be16(msg, 3).ok_or(err)?);
    let sid_len = usize::from(be16(msg, 5).ok_or(err)?);
    let ch_len = usize::from(be16(msg, 7).ok_or(err)?);
    let cs_end = 9usize.saturating_add(cs_len);
    let specs = msg.get(9..cs_end).ok_or(err)?;
    let session_id = msg
        .get(cs_end..cs_end.saturating_add(sid_len))
        .ok_or(err)?
        .to_vec();
    let total = cs_end.saturating_add(sid_len).saturating_add(ch_len);
    if msg.len() < total || cs_len % 3 != 0 {
        return Err(err);
    }
    let cipher_suites = specs
        .chunks_exact(3)
        .filter_map(|c| match c {
            [0, hi, lo] => Some(CipherSuite(u16::from_be_bytes([*hi, *lo]))),
            _ => None,
        })
        .collect();
    Ok(ClientHelloSummary {
        legacy_version: TlsVersion(version),
        cipher_suites,
        session_id,
        sslv2_compat: true,
        ..ClientHelloSummary::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values_are_recognised_and_others_not() {
        for g in [0x0a0a, 0x1a1a, 0xfafa] {
            assert!(is_grease(g));
        }
        for v in [0x0a1a, 0x1301, 0x0000, 0xff01] {
            assert!(!is_grease(v));
        }
    }

    #[test]
    fn weak_cipher_flags_rc4_and_export_but_not_aes_gcm() {
        assert!(CipherSuite(0x0005).is_weak());
        assert!(CipherSuite(0x0003).is_weak()); // RSA_EXPORT_WITH_RC4_40_MD5
        assert!(CipherSuite(0x000a).is_weak()); // 3DES
        assert!(CipherSuite(0x0018).is_weak()); // DH_anon RC4
        assert!(!CipherSuite(0xc02f).is_weak());
        assert!(!CipherSuite(0x1301).is_weak());
    }

    #[test]
    fn truncated_server_hello_is_an_error_not_a_panic() {
        for n in 0..40 {
            let body = vec![3u8; n];
            let _ = parse_server_hello(&body);
        }
        assert!(parse_server_hello(&[3, 3]).is_err());
    }

    #[test]
    fn sslv2_hello_keeps_tls_suites_only() {
        // msg_type 1, version 3.1, cs_len 6, sid 0, challenge 16
        let mut m = vec![1, 3, 1, 0, 6, 0, 0, 0, 16];
        m.extend_from_slice(&[0, 0, 0x2f, 0x07, 0x00, 0xc0]);
        m.extend_from_slice(&[0x55; 16]);
        let s = parse_sslv2_client_hello(&m).unwrap_or_default();
        assert!(s.sslv2_compat);
        assert_eq!(s.cipher_suites, vec![CipherSuite(0x002f)]);
        assert_eq!(s.legacy_version, TlsVersion::TLS_1_0);
    }
}
