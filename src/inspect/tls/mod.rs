//! TLS inspection: records, handshakes, certificates, fingerprints and anomalies.
//!
//! **Owns** one [`TlsInspector`] per flow (both directions), fed by the flow layer with
//! each direction's reassembled, in-order bytes; it produces a [`TlsSummary`] (the EVE
//! `tls` object, Suricata's field names where Suricata has them) and, for the network
//! half of AN1496, [`an1496_score`].
//!
//! **Must not** read the clock (certificate validity is checked against the packet
//! timestamp handed to [`TlsInspector::feed`]), decode packets, or keep per-flow state
//! beyond its caps.
//!
//! # Contracts
//!
//! - Never panics on input; every buffer is capped: one record body at
//!   [`record::MAX_CIPHERTEXT`] and only for handshake/alert/CCS records, one handshake
//!   message at [`TlsConfig::max_handshake_message`], certificates at
//!   [`TlsConfig::max_certs`], strings at 256 bytes (SNI, ALPN) or 1 KiB (DNs), escaped
//!   by [`sanitize`].
//! - Idle size: [`TlsInspector`] is one pointer until its first byte; the state is boxed.
//! - Not TLS: the first bytes of either direction that are not a plausible record header
//!   give [`TlsStatus::NotTls`] at once; the engine should stop calling.
//! - After the handshake [`TlsStatus::HandshakeDone`] is returned. The engine may stop
//!   calling; if it keeps feeding, the inspector only walks record headers (no
//!   buffering) and counts application-data records and bytes per direction
//!   ([`TlsCounters`]).
//! - UDP ([`TlsInspector::feed_datagram`]): a flow whose first datagram is a QUIC long
//!   header of a known version is read as QUIC ([`quic`]: Initial packets decrypted, the
//!   CRYPTO stream reassembled up to [`quic::MAX_CRYPTO_BYTES`] per direction, at most
//!   [`quic::MAX_DATAGRAMS`] datagrams looked at); otherwise as DTLS, with handshake
//!   fragments reassembled per `message_seq` ([`dtls`], bounded in messages and ranges).
//! - A gap ([`TlsInspector::gap`]) ends parsing of that direction (framing cannot be
//!   recovered without guessing); before the handshake is over it counts as
//!   `handshake_truncated`.
//!
//! # Wiring
//!
//! ```
//! use entrospect::flow::Direction;
//! use entrospect::inspect::tls::{TlsConfig, TlsInspector, TlsStatus};
//! use entrospect::Timestamp;
//!
//! let cfg = TlsConfig::default();
//! let mut tls = TlsInspector::new();
//! let st = tls.feed(&cfg, Direction::ToServer, Timestamp::ZERO, b"GET / HTTP/1.1\r\n");
//! assert_eq!(st, TlsStatus::NotTls);
//! assert!(tls.summary().is_none());
//! ```

pub mod anomaly;
pub mod cert;
pub mod dtls;
pub mod fingerprint;
pub mod handshake;
pub mod quic;
pub mod record;
pub mod state;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::flow::Direction;
use crate::time::Timestamp;

pub use anomaly::{AnomalySet, TlsAnomaly};
pub use cert::{CertSummary, KeyType};
pub use fingerprint::{Ja3, Ja4, Ja4Transport};
pub use handshake::{
    CipherSuite, ClientHelloSummary, ExtensionType, NamedGroup, ServerHelloSummary,
    SignatureScheme, TlsVersion,
};

use record::{BodyPolicy, ContentType, HandshakeReader, RecordReader};
use state::{HsEvent, HsState};

/// Cap a byte string and make it safe for output: lossy UTF-8, control characters and
/// backslashes escaped as `\xNN` / `\\`, cut at `max` bytes on a character boundary.
pub fn sanitize(b: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(b.get(..max).unwrap_or(b));
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let piece = if c.is_control() {
            format!("\\x{:02x}", u32::from(c) & 0xff)
        } else if c == '\\' {
            "\\\\".to_string()
        } else {
            c.to_string()
        };
        if out.len().saturating_add(piece.len()) > max {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// Settings of TLS inspection. Every field has a documented default; an empty TOML
/// table gives [`TlsConfig::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// A leaf valid for longer than this many days is `validity_too_long`. Default 825
    /// (the CA/Browser Forum limit of 2018–2020; public CAs issue ≤ 398 today).
    pub max_validity_days: u64,
    /// A leaf valid for less than this many seconds is `validity_too_short`. Default
    /// 86 400 (one day; ACME short-lived certificates last 6 days).
    pub min_validity_secs: u64,
    /// RSA/DSA keys with fewer bits are `weak_key`. Default 2048 (NIST SP 800-131A).
    pub weak_rsa_bits: u32,
    /// EC keys with fewer bits are `weak_key`. Default 224 (NIST SP 800-131A).
    pub weak_ec_bits: u32,
    /// Largest handshake message assembled (bytes); longer ones are skipped with
    /// `oversized_handshake_message`. Default 65 536 (real chains are < 20 KiB).
    pub max_handshake_message: usize,
    /// Most certificates summarised per Certificate message. Default 10.
    pub max_certs: usize,
    /// AN1496 weight of each anomaly, 0..1; anomalies absent or at 0 do not count.
    /// Default: strong (0.5–0.6) for self_signed, expired, not_yet_valid,
    /// hostname_mismatch, weak_key, weak_cipher, obsolete_version; 0.4 weak_signature;
    /// 0.3 chain_order_broken, unparseable_certificate, app_data_before_handshake;
    /// 0.2 validity_too_long/short, malformed_record, oversized_handshake_message;
    /// 0.1 missing_sni; 0.05 handshake_truncated. A table given in TOML replaces the
    /// whole default table.
    pub an1496_weights: BTreeMap<TlsAnomaly, f32>,
    /// Smallest AN1496 score reported. Default 0.3 (so `missing_sni` alone, 0.1, is not).
    pub an1496_min_score: f32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        use TlsAnomaly as A;
        let an1496_weights = [
            (A::SelfSigned, 0.6),
            (A::Expired, 0.5),
            (A::NotYetValid, 0.5),
            (A::HostnameMismatch, 0.5),
            (A::WeakKey, 0.5),
            (A::WeakCipher, 0.6),
            (A::ObsoleteVersion, 0.5),
            (A::WeakSignature, 0.4),
            (A::ChainOrderBroken, 0.3),
            (A::UnparseableCertificate, 0.3),
            (A::AppDataBeforeHandshake, 0.3),
            (A::ValidityTooLong, 0.2),
            (A::ValidityTooShort, 0.2),
            (A::MalformedRecord, 0.2),
            (A::OversizedHandshakeMessage, 0.2),
            (A::MissingSni, 0.1),
            (A::HandshakeTruncated, 0.05),
        ]
        .into_iter()
        .collect();
        TlsConfig {
            max_validity_days: 825,
            min_validity_secs: 86_400,
            weak_rsa_bits: 2048,
            weak_ec_bits: 224,
            max_handshake_message: 1 << 16,
            max_certs: 10,
            an1496_weights,
            an1496_min_score: 0.3,
        }
    }
}

/// What the engine should do next with this flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsStatus {
    /// Keep feeding.
    NeedMore,
    /// Not TLS (or no longer parseable): stop calling.
    NotTls,
    /// The handshake is over; stop feeding bytes (further bytes are only counted).
    HandshakeDone,
}

/// Per-direction counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirCounters {
    /// Records seen.
    pub records: u64,
    /// Application-data records seen.
    pub app_data_records: u64,
    /// Application-data body bytes (record lengths).
    pub app_data_bytes: u64,
    /// Gaps reported by the flow layer.
    pub gaps: u64,
}

/// Counters of the whole flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsCounters {
    /// Client to server.
    pub toserver: DirCounters,
    /// Server to client.
    pub toclient: DirCounters,
    /// Caps hit (oversized messages, certificates over `max_certs`).
    pub caps_hit: u64,
    /// Alerts seen (both directions).
    pub alerts: u64,
}

/// Session resumption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Resumption {
    /// The client offered a session id, ticket or PSK.
    pub offered: bool,
    /// The server accepted (same session id without Certificate, or a PSK chosen).
    pub resumed: bool,
}

/// The EVE `tls` object of one flow, plus details. Owned and sanitised.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TlsSummary {
    /// Negotiated version in Suricata's spelling ("TLS 1.2", "TLS 1.3", "SSLv3"...);
    /// before a ServerHello, the client's highest offered version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// server_name, sanitised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Leaf subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Leaf issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuerdn: Option<String>,
    /// Leaf serial (`AB:CD:...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Leaf SHA-1 (`ab:cd:...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Leaf notBefore (`2016-08-01T00:00:00`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notbefore: Option<String>,
    /// Leaf notAfter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notafter: Option<String>,
    /// JA3 of the first ClientHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<Ja3>,
    /// JA3S of the ServerHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<Ja3>,
    /// JA4 of the first ClientHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// JA4 raw and original-order variants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4_variants: Option<Ja4>,
    /// JA4S (FoxIO License 1.1; feature `ja4plus`).
    #[cfg(feature = "ja4plus")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4s: Option<String>,
    /// JA4X of the leaf (FoxIO License 1.1; feature `ja4plus`).
    #[cfg(feature = "ja4plus")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4x: Option<String>,
    /// ALPN protocols offered by the client, sanitised.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// ALPN protocol chosen by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn_server: Option<String>,
    /// Anomalies found, stable names.
    pub anomalies: AnomalySet,
    /// Versions the client offered (supported_versions, else legacy_version), GREASE
    /// removed, Suricata spelling or hex.
    pub offered_versions: Vec<String>,
    /// Chosen cipher suite, IANA name or `0x....`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Client cipher suites as sent (GREASE kept).
    pub cipher_suites: Vec<CipherSuite>,
    /// Client extensions as sent.
    pub extensions: Vec<ExtensionType>,
    /// Server extensions as sent.
    pub server_extensions: Vec<ExtensionType>,
    /// supported_groups as sent.
    pub supported_groups: Vec<NamedGroup>,
    /// signature_algorithms as sent.
    pub signature_algorithms: Vec<SignatureScheme>,
    /// Session resumption.
    pub resumption: Resumption,
    /// The server certificate was visible (TLS ≤ 1.2 and sent).
    pub cert_visible: bool,
    /// The rest of the handshake is encrypted (TLS 1.3).
    pub handshake_encrypted: bool,
    /// The ClientHello carried encrypted_client_hello (0xfe0d).
    pub ech: bool,
    /// The ClientHello carried encrypted_server_name (0xffce).
    pub esni: bool,
    /// The first ClientHello was SSLv2-compatible.
    pub sslv2_client_hello: bool,
    /// A HelloRetryRequest was seen.
    pub hello_retry_request: bool,
    /// Server certificate chain as sent (at most `max_certs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<CertSummary>,
    /// Client certificate chain (mutual TLS), as sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_certs: Vec<CertSummary>,
    /// Counters.
    pub counters: TlsCounters,
    /// The client hello as parsed (neutral input for other fingerprints).
    #[serde(skip)]
    pub client_hello: Option<ClientHelloSummary>,
    /// The server hello as parsed.
    #[serde(skip)]
    pub server_hello: Option<ServerHelloSummary>,
}

/// How one direction is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Parsing records and handshake messages.
    Parse,
    /// Given up (malformed, gap): bytes are ignored.
    Stopped,
}

#[derive(Debug)]
struct DirState {
    rec: RecordReader,
    hs: HandshakeReader,
    mode: Mode,
    cert_seen: bool,
    dtls: dtls::DtlsReassembler,
}

impl DirState {
    fn new(dir: Direction) -> Self {
        DirState {
            rec: RecordReader::new(dir == Direction::ToServer),
            hs: HandshakeReader::default(),
            mode: Mode::Parse,
            cert_seen: false,
            dtls: dtls::DtlsReassembler::default(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    dirs: [DirState; 2],
    state: HsState,
    summary: TlsSummary,
    has_hello: bool,
    not_tls: bool,
    dtls: bool,
    /// QUIC Initial state, once the first datagram was a QUIC long header.
    quic: Option<Box<quic::QuicFlow>>,
    /// Handshake types of messages seen (for the truncated check and tests).
    server_msgs: u32,
}

/// Per-flow TLS inspector (both directions). See the module docs for the contract.
#[derive(Debug, Default)]
pub struct TlsInspector {
    inner: Option<Box<Inner>>,
}

impl TlsInspector {
    /// An idle inspector (one pointer; state is allocated at the first byte).
    pub fn new() -> Self {
        TlsInspector { inner: None }
    }

    fn inner(&mut self) -> &mut Inner {
        self.inner.get_or_insert_with(|| {
            Box::new(Inner {
                dirs: [
                    DirState::new(Direction::ToServer),
                    DirState::new(Direction::ToClient),
                ],
                state: HsState::Idle,
                summary: TlsSummary::default(),
                has_hello: false,
                not_tls: false,
                dtls: false,
                quic: None,
                server_msgs: 0,
            })
        })
    }

    /// Feed the next contiguous bytes of `dir`; `data` continues exactly where the
    /// previous call for `dir` ended. `ts` is the timestamp of the packet that completed
    /// these bytes (certificate validity is checked against it).
    pub fn feed(
        &mut self,
        cfg: &TlsConfig,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> TlsStatus {
        let inner = self.inner();
        inner.feed(cfg, dir, ts, data);
        inner.status()
    }

    /// A hole in the stream of `dir`: that direction stops being parsed (framing is
    /// lost; no guessing). Before the handshake is over this is `handshake_truncated`.
    pub fn gap(&mut self, dir: Direction) {
        let inner = self.inner();
        let d = &mut inner.dirs[dir.index()];
        d.mode = Mode::Stopped;
        d.rec.reset();
        d.hs.reset();
        let c = inner.counters_mut(dir);
        c.gaps = c.gaps.saturating_add(1);
        if inner.has_hello && inner.state != HsState::Done {
            inner
                .summary
                .anomalies
                .insert(TlsAnomaly::HandshakeTruncated);
        }
    }

    /// One UDP datagram of DTLS (RFC 6347 / RFC 9147 record layer) or QUIC.
    ///
    /// A flow whose first datagram is a QUIC long header of a known version
    /// ([`quic::is_quic_initial_candidate`]) is read as QUIC: Initial packets are
    /// decrypted, their CRYPTO frames reassembled and the ClientHello/ServerHello
    /// summarised (JA4 with the `q` prefix); see [`quic`]. Otherwise DTLS records are
    /// read and fragmented handshake messages reassembled per `message_seq`.
    pub fn feed_datagram(
        &mut self,
        cfg: &TlsConfig,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> TlsStatus {
        // Most datagram flows (DNS above all) are neither: say so before allocating the
        // inspector. The same first-record test as `feed_dtls`, which would say NotTls.
        let dtls_start =
            matches!(data, [ct, 0xfe, ..] if (20..=24).contains(ct)) && data.len() >= 13;
        if self.inner.is_none() && !dtls_start && !quic::is_quic_initial_candidate(data) {
            return TlsStatus::NotTls;
        }
        let inner = self.inner();
        if inner.quic.is_some() || (!inner.dtls && quic::is_quic_initial_candidate(data)) {
            inner.feed_quic(cfg, dir, ts, data);
            return inner.status();
        }
        inner.dtls = true;
        inner.feed_dtls(cfg, dir, ts, data);
        inner.status()
    }

    /// The flow ended: a handshake that started but did not finish (and was not ended by
    /// an alert) is `handshake_truncated`.
    pub fn finish(&mut self, _cfg: &TlsConfig, _ts: Timestamp) {
        if let Some(inner) = self.inner.as_mut()
            && inner.has_hello
            && inner.state != HsState::Done
            && inner.summary.counters.alerts == 0
            && !(inner.dtls && inner.state != HsState::ClientHello)
        {
            inner
                .summary
                .anomalies
                .insert(TlsAnomaly::HandshakeTruncated);
        }
    }

    /// The summary, `None` until a ClientHello or ServerHello was parsed.
    pub fn summary(&self) -> Option<&TlsSummary> {
        self.inner
            .as_ref()
            .filter(|i| i.has_hello)
            .map(|i| &i.summary)
    }
}

impl Inner {
    fn status(&self) -> TlsStatus {
        if self.not_tls {
            return TlsStatus::NotTls;
        }
        if self.state == HsState::Done {
            return TlsStatus::HandshakeDone;
        }
        if self.dirs.iter().all(|d| d.mode == Mode::Stopped) {
            return if self.has_hello {
                TlsStatus::HandshakeDone
            } else {
                TlsStatus::NotTls
            };
        }
        TlsStatus::NeedMore
    }

    fn counters_mut(&mut self, dir: Direction) -> &mut DirCounters {
        match dir {
            Direction::ToServer => &mut self.summary.counters.toserver,
            Direction::ToClient => &mut self.summary.counters.toclient,
        }
    }

    fn feed(&mut self, cfg: &TlsConfig, dir: Direction, ts: Timestamp, data: &[u8]) {
        if self.not_tls || data.is_empty() {
            return;
        }
        let i = dir.index();
        let Some(d) = self.dirs.get_mut(i) else {
            return;
        };
        if d.mode == Mode::Stopped {
            return;
        }
        let mut rec = std::mem::take(&mut d.rec);
        let state_cell = std::cell::Cell::new(self.state);
        let res = rec.feed(
            data,
            || {
                if state_cell.get().protected(dir) {
                    BodyPolicy::None
                } else {
                    BodyPolicy::Plaintext
                }
            },
            |r| {
                self.on_record(cfg, dir, ts, r.header.content_type, r.header.len, r.body);
                state_cell.set(self.state);
                !self.not_tls && self.dirs.get(i).is_some_and(|d| d.mode == Mode::Parse)
            },
        );
        if let Some(d) = self.dirs.get_mut(i) {
            d.rec = rec;
            if res.is_err() {
                d.mode = Mode::Stopped;
                d.hs.reset();
            }
        }
        if res.is_err() {
            if self.has_hello
                || self.summary.counters.toserver.records > 0
                || self.summary.counters.toclient.records > 0
            {
                self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
            } else {
                self.not_tls = true;
            }
        }
    }

    fn on_record(
        &mut self,
        cfg: &TlsConfig,
        dir: Direction,
        ts: Timestamp,
        ct: ContentType,
        len: usize,
        body: Option<&[u8]>,
    ) {
        let early_data = self
            .summary
            .client_hello
            .as_ref()
            .is_some_and(|c| c.early_data);
        let c = self.counters_mut(dir);
        c.records = c.records.saturating_add(1);
        match ct {
            ContentType::APPLICATION_DATA => {
                let c = self.counters_mut(dir);
                c.app_data_records = c.app_data_records.saturating_add(1);
                c.app_data_bytes = c.app_data_bytes.saturating_add(len as u64);
                self.event(HsEvent::AppData(dir), early_data);
            }
            ContentType::CHANGE_CIPHER_SPEC => {
                self.event(HsEvent::ChangeCipherSpec(dir), early_data)
            }
            ContentType::ALERT => {
                self.summary.counters.alerts = self.summary.counters.alerts.saturating_add(1);
                self.event(HsEvent::Alert(dir), early_data);
            }
            ContentType::HANDSHAKE => {
                if let Some(b) = body {
                    self.on_handshake_record(cfg, dir, ts, b);
                }
            }
            ContentType::SSLV2_CLIENT_HELLO => {
                if let Some(b) = body {
                    match handshake::parse_sslv2_client_hello(b) {
                        Ok(ch) => self.on_client_hello(ch, Ja4Transport::Tcp),
                        Err(_) => self.malformed(dir),
                    }
                }
            }
            _ => {}
        }
    }

    fn event(&mut self, ev: HsEvent, early_data: bool) {
        let st = self.state.step(ev, early_data);
        if st.premature_app_data {
            self.summary
                .anomalies
                .insert(TlsAnomaly::AppDataBeforeHandshake);
        }
        self.state = st.next;
    }

    fn malformed(&mut self, dir: Direction) {
        self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
        if let Some(d) = self.dirs.get_mut(dir.index()) {
            d.mode = Mode::Stopped;
            d.hs.reset();
        }
    }

    fn on_handshake_record(&mut self, cfg: &TlsConfig, dir: Direction, ts: Timestamp, body: &[u8]) {
        let Some(d) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        let mut hs = std::mem::take(&mut d.hs);
        let mut msgs: Vec<(u8, Vec<u8>)> = Vec::new();
        // Messages are collected first (bounded by the record size and the cap), then
        // handled, so that the reader's buffer is not borrowed while state changes.
        let res = hs.push(body, cfg.max_handshake_message, |t, b| {
            msgs.push((t, b.to_vec()))
        });
        if let Some(d) = self.dirs.get_mut(dir.index()) {
            d.hs = hs;
        }
        for (t, b) in msgs {
            self.on_message(cfg, dir, ts, t, &b, Ja4Transport::Tcp);
            if self
                .dirs
                .get(dir.index())
                .is_none_or(|d| d.mode != Mode::Parse)
            {
                return;
            }
        }
        if res.is_err() {
            self.summary
                .anomalies
                .insert(TlsAnomaly::OversizedHandshakeMessage);
            self.summary.counters.caps_hit = self.summary.counters.caps_hit.saturating_add(1);
            if let Some(d) = self.dirs.get_mut(dir.index()) {
                d.mode = Mode::Stopped;
                d.hs.reset();
                d.rec.reset();
            }
        }
    }

    fn on_message(
        &mut self,
        cfg: &TlsConfig,
        dir: Direction,
        ts: Timestamp,
        msg_type: u8,
        body: &[u8],
        transport: Ja4Transport,
    ) {
        let early_data = self
            .summary
            .client_hello
            .as_ref()
            .is_some_and(|c| c.early_data);
        match (msg_type, dir) {
            (1, Direction::ToServer) => {
                let parsed = if transport == Ja4Transport::Dtls {
                    handshake::parse_dtls_client_hello(body)
                } else {
                    handshake::parse_client_hello(body)
                };
                match parsed {
                    Ok(ch) => self.on_client_hello(ch, transport),
                    Err(_) => self.malformed(dir),
                }
            }
            (2, Direction::ToClient) => match handshake::parse_server_hello(body) {
                Ok(sh) => self.on_server_hello(sh, transport),
                Err(_) => self.malformed(dir),
            },
            (11, _) => {
                self.server_msgs = self.server_msgs.saturating_add(1);
                if self.dirs.get(dir.index()).is_some_and(|d| d.cert_seen) {
                    return;
                }
                if let Some(d) = self.dirs.get_mut(dir.index()) {
                    d.cert_seen = true;
                }
                self.on_certificate(cfg, dir, ts, body);
                self.event(HsEvent::Handshake(dir), early_data);
            }
            _ => self.event(HsEvent::Handshake(dir), early_data),
        }
    }

    fn on_client_hello(&mut self, ch: ClientHelloSummary, transport: Ja4Transport) {
        let early = ch.early_data;
        self.event(HsEvent::ClientHello, early);
        if self.summary.client_hello.is_some() {
            // Second ClientHello (after HelloRetryRequest): fingerprints stay on the first.
            return;
        }
        let s = &mut self.summary;
        s.sni = ch
            .sni
            .as_deref()
            .map(|b| sanitize(b, handshake::MAX_NAME_BYTES));
        s.alpn = ch
            .alpn
            .iter()
            .map(|a| sanitize(a, handshake::MAX_NAME_BYTES))
            .collect();
        let offered: Vec<TlsVersion> = if ch.supported_versions.is_empty() {
            vec![ch.legacy_version]
        } else {
            ch.supported_versions
                .iter()
                .copied()
                .filter(|v| !v.is_grease())
                .collect()
        };
        s.offered_versions = offered.iter().map(|v| v.display()).collect();
        if s.version.is_none() {
            s.version = Some(ch.max_version().display());
        }
        s.cipher_suites = ch.cipher_suites.clone();
        s.extensions = ch.extensions.clone();
        s.supported_groups = ch.supported_groups.clone();
        s.signature_algorithms = ch.signature_algorithms.clone();
        s.ech = ch.has_extension(ExtensionType::ENCRYPTED_CLIENT_HELLO);
        s.esni = ch.has_extension(ExtensionType::ENCRYPTED_SERVER_NAME);
        s.sslv2_client_hello = ch.sslv2_compat;
        s.resumption.offered = !ch.session_id.is_empty() || ch.session_ticket || ch.psk;
        s.ja3 = fingerprint::ja3(&ch);
        let j4 = fingerprint::ja4(&ch, transport);
        s.ja4 = Some(j4.ja4.clone());
        s.ja4_variants = Some(j4);
        if ch.sni.is_none() && !ch.sslv2_compat {
            s.anomalies.insert(TlsAnomaly::MissingSni);
        }
        if ch.malformed_extensions {
            s.anomalies.insert(TlsAnomaly::MalformedRecord);
        }
        s.client_hello = Some(ch);
        self.has_hello = true;
    }

    fn on_server_hello(&mut self, sh: ServerHelloSummary, transport: Ja4Transport) {
        let v = sh.version();
        let tls13 = v == TlsVersion::TLS_1_3 || v == TlsVersion::DTLS_1_3;
        let early = self
            .summary
            .client_hello
            .as_ref()
            .is_some_and(|c| c.early_data);
        self.event(
            HsEvent::ServerHello {
                tls13,
                hrr: sh.hello_retry_request,
            },
            early,
        );
        let s = &mut self.summary;
        if sh.hello_retry_request {
            // JA3S is taken from the first ServerHello-shaped message, HelloRetryRequest
            // included, as TShark and Suricata do; version and cipher wait for the real one.
            s.hello_retry_request = true;
            if s.ja3s.is_none() {
                s.ja3s = Some(fingerprint::ja3s(&sh));
            }
            return;
        }
        if s.server_hello.is_some() {
            return;
        }
        s.version = Some(v.display());
        s.cipher = Some(sh.cipher_suite.display());
        s.server_extensions = sh.extensions.clone();
        s.alpn_server = sh
            .alpn
            .as_deref()
            .map(|a| sanitize(a, handshake::MAX_NAME_BYTES));
        if s.ja3s.is_none() {
            s.ja3s = Some(fingerprint::ja3s(&sh));
        }
        #[cfg(feature = "ja4plus")]
        {
            s.ja4s = Some(fingerprint::ja4s(&sh, transport));
        }
        let _ = transport;
        s.handshake_encrypted = tls13;
        let client_sid = s.client_hello.as_ref().map(|c| c.session_id.clone());
        s.resumption.resumed = if tls13 {
            sh.has_extension(ExtensionType::PRE_SHARED_KEY)
        } else {
            !sh.session_id.is_empty() && client_sid.as_deref() == Some(sh.session_id.as_slice())
        };
        if v.is_obsolete() {
            s.anomalies.insert(TlsAnomaly::ObsoleteVersion);
        }
        if sh.cipher_suite.is_weak() {
            s.anomalies.insert(TlsAnomaly::WeakCipher);
        }
        s.server_hello = Some(sh);
        self.has_hello = true;
    }

    fn on_certificate(&mut self, cfg: &TlsConfig, dir: Direction, ts: Timestamp, body: &[u8]) {
        // Certificate (RFC 5246 §7.4.2): certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>.
        let Some(list) = cert_list(body) else {
            self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
            return;
        };
        let mut certs = Vec::new();
        let mut rest = list;
        while let (Some(l), false) = (rest.get(..3), rest.is_empty()) {
            let len = match *l {
                [a, b, c] => usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c),
                _ => break,
            };
            let Some(der) = rest.get(3..3usize.saturating_add(len)) else {
                self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
                break;
            };
            if certs.len() >= cfg.max_certs {
                self.summary.counters.caps_hit = self.summary.counters.caps_hit.saturating_add(1);
                break;
            }
            certs.push(cert::summarize_cert(der));
            rest = rest.get(3usize.saturating_add(len)..).unwrap_or(&[]);
        }
        if dir == Direction::ToServer {
            self.summary.client_certs = certs;
            return;
        }
        let s = &mut self.summary;
        s.cert_visible = !certs.is_empty();
        check_chain(cfg, ts, s, &certs);
        if let Some(leaf) = certs.first() {
            s.subject = leaf.subject.clone();
            s.issuerdn = leaf.issuer.clone();
            s.serial = leaf.serial.clone();
            s.fingerprint = Some(leaf.fingerprint.clone());
            s.notbefore = leaf.notbefore.clone();
            s.notafter = leaf.notafter.clone();
            #[cfg(feature = "ja4plus")]
            {
                s.ja4x = leaf.ja4x.clone();
            }
        }
        s.certs = certs;
    }

    fn feed_quic(&mut self, cfg: &TlsConfig, dir: Direction, ts: Timestamp, data: &[u8]) {
        if self.not_tls || self.state == HsState::Done {
            return;
        }
        let q = self.quic.get_or_insert_with(Box::default);
        let out = q.datagram(dir.index(), data, cfg.max_handshake_message);
        let budget_spent = q.datagrams >= quic::MAX_DATAGRAMS;
        for (t, b) in out.messages {
            self.on_message(cfg, dir, ts, t, &b, Ja4Transport::Quic);
        }
        if out.overflow {
            self.summary
                .anomalies
                .insert(TlsAnomaly::OversizedHandshakeMessage);
            self.summary.counters.caps_hit = self.summary.counters.caps_hit.saturating_add(1);
        }
        if out.bad_frame && self.has_hello {
            self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
        }
        let client_hello = self.summary.client_hello.is_some();
        // Everything after the ServerHello is in Handshake and 1-RTT packets, which a
        // passive observer cannot read: the visible handshake is over.
        if client_hello && (self.summary.server_hello.is_some() || out.client_handshake) {
            self.state = HsState::Done;
        } else if budget_spent {
            if self.has_hello {
                self.state = HsState::Done;
            } else {
                self.not_tls = true;
            }
        }
    }

    fn feed_dtls(&mut self, cfg: &TlsConfig, dir: Direction, ts: Timestamp, data: &[u8]) {
        if self.not_tls {
            return;
        }
        // DTLS record: type(1) version(2) epoch(2) seq(6) length(2) (RFC 6347 §4.1).
        let mut rest = data;
        let mut first = true;
        while !rest.is_empty() {
            let (Some(&ct), Some(&maj)) = (rest.first(), rest.get(1)) else {
                return;
            };
            let len = match rest.get(11..13) {
                Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
                _ => 0,
            };
            // After the hellos, DTLS 1.3 protects records with the unified header
            // (RFC 9147 §4: 0b001CSLEE) and DTLS 1.2 with connection IDs uses `tls12_cid`
            // records (RFC 9146, type 25). Neither is readable here, and a record with a
            // connection id cannot even be delimited without the negotiated id length.
            if self.has_hello && (ct & 0xe0 == 0x20 || (ct == 25 && maj == 0xfe)) {
                let c = self.counters_mut(dir);
                c.records = c.records.saturating_add(1);
                match unified_header_len(ct, rest) {
                    Some(next) => {
                        rest = rest.get(next..).unwrap_or(&[]);
                        first = false;
                        continue;
                    }
                    // A connection id or no length field: the record runs to the
                    // datagram's end, or cannot be delimited. Either way nothing more of
                    // this datagram is readable.
                    None => return,
                }
            }
            let plausible = (20..=24).contains(&ct) && maj == 0xfe && rest.len() >= 13;
            if !plausible {
                if first && !self.has_hello {
                    self.not_tls = true;
                } else {
                    self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
                }
                return;
            }
            first = false;
            let end = 13usize.saturating_add(len);
            let Some(body) = rest.get(13..end) else {
                self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
                return;
            };
            let epoch = match rest.get(3..5) {
                Some(&[a, b]) => u16::from_be_bytes([a, b]),
                _ => 0,
            };
            rest = rest.get(end..).unwrap_or(&[]);
            let c = self.counters_mut(dir);
            c.records = c.records.saturating_add(1);
            match ct {
                22 if epoch == 0 => self.dtls_handshake(cfg, dir, ts, body),
                23 => {
                    let c = self.counters_mut(dir);
                    c.app_data_records = c.app_data_records.saturating_add(1);
                    c.app_data_bytes = c.app_data_bytes.saturating_add(len as u64);
                }
                21 => self.summary.counters.alerts = self.summary.counters.alerts.saturating_add(1),
                _ => {}
            }
        }
    }

    fn dtls_handshake(&mut self, cfg: &TlsConfig, dir: Direction, ts: Timestamp, body: &[u8]) {
        use dtls::FragmentOutcome as O;
        let Some(d) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        // Fragments are collected first, then handled, so that the reassembler is not
        // borrowed while the summary changes.
        let mut done: Vec<(u8, Vec<u8>)> = Vec::new();
        let (mut oversized, mut dropped, mut bad) = (false, false, false);
        let whole = dtls::fragments(body, |h, frag| {
            match d.dtls.push(h, frag, cfg.max_handshake_message) {
                O::Complete(t, b) => done.push((t, b)),
                O::Held | O::Duplicate => {}
                O::Oversized => oversized = true,
                O::Dropped => dropped = true,
                O::Inconsistent => bad = true,
            }
        });
        for (t, b) in done {
            self.on_message(cfg, dir, ts, t, &b, Ja4Transport::Dtls);
        }
        if oversized {
            self.summary
                .anomalies
                .insert(TlsAnomaly::OversizedHandshakeMessage);
        }
        if oversized || dropped {
            self.summary.counters.caps_hit = self.summary.counters.caps_hit.saturating_add(1);
        }
        if bad || !whole {
            self.summary.anomalies.insert(TlsAnomaly::MalformedRecord);
        }
    }
}

/// Bytes taken by a DTLS 1.3 unified-header record (header + body) that starts `rec`,
/// when it can be delimited: no connection id (C bit clear) and an explicit length (L bit
/// set). `None` otherwise (the record then runs to the end of the datagram, or its
/// connection id has a length only the handshake knows). `tls12_cid` records always carry
/// a connection id, so they give `None` too.
fn unified_header_len(first: u8, rec: &[u8]) -> Option<usize> {
    if first & 0xe0 != 0x20 || first & 0x10 != 0 || first & 0x04 == 0 {
        return None;
    }
    let seq_len = if first & 0x08 != 0 { 2 } else { 1 };
    let len_at = 1 + seq_len;
    let len = match rec.get(len_at..len_at + 2) {
        Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
        _ => return None,
    };
    let total = (len_at + 2).saturating_add(len);
    (total <= rec.len()).then_some(total)
}

fn cert_list(body: &[u8]) -> Option<&[u8]> {
    // TLS 1.2 and DTLS: 3-byte list length first. (TLS 1.3 certificates are encrypted.)
    let l = match body.get(..3)? {
        &[a, b, c] => usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c),
        _ => return None,
    };
    body.get(3..3usize.saturating_add(l))
}

/// Certificate checks on the chain as sent (leaf first), against packet time `ts`.
fn check_chain(cfg: &TlsConfig, ts: Timestamp, s: &mut TlsSummary, certs: &[CertSummary]) {
    use TlsAnomaly as A;
    let now = i64::try_from(ts.secs()).unwrap_or(i64::MAX);
    let a = &mut s.anomalies;
    for c in certs {
        if c.parse_error.is_some() {
            a.insert(A::UnparseableCertificate);
        }
        let weak_key = match (c.key_type, c.key_bits) {
            (Some(KeyType::Rsa | KeyType::Dsa), Some(b)) => b < cfg.weak_rsa_bits,
            (Some(KeyType::Ec), Some(b)) => b < cfg.weak_ec_bits,
            _ => false,
        };
        if weak_key {
            a.insert(A::WeakKey);
        }
        if c.weak_signature_alg && !c.self_signed {
            a.insert(A::WeakSignature);
        }
    }
    for pair in certs.windows(2) {
        if let [child, parent] = pair
            && child.parse_error.is_none()
            && parent.parse_error.is_none()
            && child.issuer_raw != parent.subject_raw
        {
            a.insert(A::ChainOrderBroken);
        }
    }
    let Some(leaf) = certs.first() else {
        return;
    };
    if leaf.self_signed {
        a.insert(A::SelfSigned);
    }
    if let (Some(nb), Some(na)) = (leaf.not_before_secs, leaf.not_after_secs) {
        if now > na {
            a.insert(A::Expired);
        }
        if now < nb {
            a.insert(A::NotYetValid);
        }
        let span = na.saturating_sub(nb);
        let max = i64::try_from(cfg.max_validity_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
        if span > max {
            a.insert(A::ValidityTooLong);
        }
        if span < i64::try_from(cfg.min_validity_secs).unwrap_or(i64::MAX) {
            a.insert(A::ValidityTooShort);
        }
    }
    if let Some(sni) = s.sni.as_deref()
        && leaf.parse_error.is_none()
        && !sni_covered(sni, leaf)
    {
        a.insert(A::HostnameMismatch);
    }
}

/// SNI vs SAN DNS names (IP SNI vs SAN IPs), else subject CN when the leaf has no SAN.
fn sni_covered(sni: &str, leaf: &CertSummary) -> bool {
    if let Ok(ip) = sni.parse::<std::net::IpAddr>() {
        let t = ip.to_string();
        return leaf.san_ip.contains(&t);
    }
    if !leaf.san_dns.is_empty() {
        return leaf.san_dns.iter().any(|p| cert::hostname_matches(p, sni));
    }
    leaf.common_names
        .iter()
        .any(|p| cert::hostname_matches(p, sni))
}

/// What the network half of AN1496 concludes about one TLS session.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct An1496Finding {
    /// 0..1, noisy-or of the weights of the anomalies present.
    pub score: f32,
    /// One line per counted anomaly, for a person.
    pub reasons: Vec<String>,
}

/// AN1496 network half: score the anomalies of `summary` with `cfg.an1496_weights`
/// (noisy-or: `1 - Π(1 - w)`). `None` when the score is below `cfg.an1496_min_score`.
pub fn an1496_score(summary: &TlsSummary, cfg: &TlsConfig) -> Option<An1496Finding> {
    let mut keep = 1.0f32;
    let mut reasons = Vec::new();
    for &a in summary.anomalies.as_slice() {
        let w = cfg
            .an1496_weights
            .get(&a)
            .copied()
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        if w <= 0.0 {
            continue;
        }
        keep *= 1.0 - w;
        reasons.push(reason_text(a, summary));
    }
    let score = (1.0 - keep).clamp(0.0, 1.0);
    if reasons.is_empty() || score < cfg.an1496_min_score {
        return None;
    }
    Some(An1496Finding { score, reasons })
}

fn reason_text(a: TlsAnomaly, s: &TlsSummary) -> String {
    use TlsAnomaly as A;
    let subj = s.subject.as_deref().unwrap_or("?");
    let detail = match a {
        A::SelfSigned => format!("leaf certificate \"{subj}\" is self-signed"),
        A::Expired => format!(
            "leaf certificate expired at {}",
            s.notafter.as_deref().unwrap_or("?")
        ),
        A::NotYetValid => format!(
            "leaf certificate not valid before {}",
            s.notbefore.as_deref().unwrap_or("?")
        ),
        A::HostnameMismatch => format!(
            "server name \"{}\" not covered by certificate \"{subj}\"",
            s.sni.as_deref().unwrap_or("")
        ),
        A::ObsoleteVersion => format!("obsolete protocol {}", s.version.as_deref().unwrap_or("?")),
        A::WeakCipher => format!("weak cipher {}", s.cipher.as_deref().unwrap_or("?")),
        A::WeakKey => "certificate key below the configured strength".to_string(),
        A::WeakSignature => "certificate signed with MD5 or SHA-1".to_string(),
        A::MissingSni => "client sent no server name".to_string(),
        A::ChainOrderBroken => "certificate chain out of order".to_string(),
        _ => "see anomaly name".to_string(),
    };
    format!("{}: {detail}", a.as_str())
}

#[cfg(test)]
mod tests;
