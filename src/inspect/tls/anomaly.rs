//! TLS handshake and certificate anomalies: the stable names that reach `tls.anomalies[]`.
//!
//! An anomaly is a *finding* (suspicious but valid input), never an error. Names are
//! stable once released: add variants, never rename them.

use serde::{Deserialize, Serialize};

/// Something abnormal about a TLS handshake or its certificates.
///
/// Serialised (and printed by [`TlsAnomaly::as_str`]) in snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TlsAnomaly {
    /// The leaf certificate is issued by itself (subject = issuer, key ids agree).
    SelfSigned,
    /// The leaf certificate's `notAfter` is before the packet timestamp.
    Expired,
    /// The leaf certificate's `notBefore` is after the packet timestamp.
    NotYetValid,
    /// The leaf's validity period is longer than `TlsConfig::max_validity_days`.
    ValidityTooLong,
    /// The leaf's validity period is shorter than `TlsConfig::min_validity_secs`.
    ValidityTooShort,
    /// The SNI is not covered by the leaf's SAN DNS names (or CN when there are none).
    HostnameMismatch,
    /// A certificate in the chain is not issued by the next one as sent.
    ChainOrderBroken,
    /// An RSA/DSA key below `weak_rsa_bits` or an EC key below `weak_ec_bits`.
    WeakKey,
    /// An MD2/MD5/SHA-1 signature on a certificate that is not self-signed.
    WeakSignature,
    /// A certificate that the X.509 parser rejects.
    UnparseableCertificate,
    /// SSLv2, SSLv3, TLS 1.0 or TLS 1.1 chosen by the server.
    ObsoleteVersion,
    /// A NULL, EXPORT, RC4, DES/3DES or anonymous cipher suite chosen by the server.
    WeakCipher,
    /// A ClientHello without a server_name extension.
    MissingSni,
    /// The flow ended (or lost bytes) before the handshake was over.
    HandshakeTruncated,
    /// An application-data record before that direction finished its handshake.
    AppDataBeforeHandshake,
    /// A record or handshake message that breaks the framing rules (RFC 8446 §5.1).
    MalformedRecord,
    /// A handshake message larger than `TlsConfig::max_handshake_message` (bounded, not parsed).
    OversizedHandshakeMessage,
}

impl TlsAnomaly {
    /// Every anomaly, in declaration order.
    pub const ALL: [TlsAnomaly; 17] = [
        TlsAnomaly::SelfSigned,
        TlsAnomaly::Expired,
        TlsAnomaly::NotYetValid,
        TlsAnomaly::ValidityTooLong,
        TlsAnomaly::ValidityTooShort,
        TlsAnomaly::HostnameMismatch,
        TlsAnomaly::ChainOrderBroken,
        TlsAnomaly::WeakKey,
        TlsAnomaly::WeakSignature,
        TlsAnomaly::UnparseableCertificate,
        TlsAnomaly::ObsoleteVersion,
        TlsAnomaly::WeakCipher,
        TlsAnomaly::MissingSni,
        TlsAnomaly::HandshakeTruncated,
        TlsAnomaly::AppDataBeforeHandshake,
        TlsAnomaly::MalformedRecord,
        TlsAnomaly::OversizedHandshakeMessage,
    ];

    /// The stable snake_case name (same as the serde form).
    pub const fn as_str(self) -> &'static str {
        match self {
            TlsAnomaly::SelfSigned => "self_signed",
            TlsAnomaly::Expired => "expired",
            TlsAnomaly::NotYetValid => "not_yet_valid",
            TlsAnomaly::ValidityTooLong => "validity_too_long",
            TlsAnomaly::ValidityTooShort => "validity_too_short",
            TlsAnomaly::HostnameMismatch => "hostname_mismatch",
            TlsAnomaly::ChainOrderBroken => "chain_order_broken",
            TlsAnomaly::WeakKey => "weak_key",
            TlsAnomaly::WeakSignature => "weak_signature",
            TlsAnomaly::UnparseableCertificate => "unparseable_certificate",
            TlsAnomaly::ObsoleteVersion => "obsolete_version",
            TlsAnomaly::WeakCipher => "weak_cipher",
            TlsAnomaly::MissingSni => "missing_sni",
            TlsAnomaly::HandshakeTruncated => "handshake_truncated",
            TlsAnomaly::AppDataBeforeHandshake => "app_data_before_handshake",
            TlsAnomaly::MalformedRecord => "malformed_record",
            TlsAnomaly::OversizedHandshakeMessage => "oversized_handshake_message",
        }
    }
}

impl std::fmt::Display for TlsAnomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small ordered set of anomalies (no duplicates, insertion order kept).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AnomalySet(Vec<TlsAnomaly>);

impl AnomalySet {
    /// Add `a` unless it is already present.
    pub fn insert(&mut self, a: TlsAnomaly) {
        if !self.0.contains(&a) {
            self.0.push(a);
        }
    }

    /// Whether `a` is present.
    pub fn contains(&self, a: TlsAnomaly) -> bool {
        self.0.contains(&a)
    }

    /// The anomalies in the order they were found.
    pub fn as_slice(&self) -> &[TlsAnomaly] {
        &self.0
    }

    /// Whether no anomaly was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_equals_as_str_for_every_anomaly() {
        for a in TlsAnomaly::ALL {
            let json = serde_json::to_string(&a).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
    }

    #[test]
    fn anomaly_set_keeps_first_insertion_only() {
        let mut s = AnomalySet::default();
        s.insert(TlsAnomaly::Expired);
        s.insert(TlsAnomaly::SelfSigned);
        s.insert(TlsAnomaly::Expired);
        assert_eq!(s.as_slice(), &[TlsAnomaly::Expired, TlsAnomaly::SelfSigned]);
    }
}
