//! X.509 certificates as owned summaries ([`CertSummary`]), through `x509-parser`.
//!
//! Contracts: never panics on any DER; a certificate the parser rejects still yields a
//! summary (its DER length, SHA-1 fingerprint and `parse_error`), so that
//! `unparseable_certificate` can be reported while the rest of the chain is kept. Every
//! string from the certificate is capped and escaped ([`super::sanitize`]). Nothing here
//! reads the clock: validity is compared with packet time by the caller.
//!
//! `self_signed` is decided without verifying the signature: subject and issuer are the
//! same DER name and, when both key identifiers are present, the authority key id equals
//! the subject key id. That is what nDPI and Zeek's `self_issued` do, and it keeps the
//! default build free of a signature-verification backend.

use serde::Serialize;
use sha1::{Digest, Sha1};
use std::fmt::Write as _;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::sanitize;

/// Longest distinguished name kept (bytes, after escaping).
pub const MAX_DN_BYTES: usize = 1024;
/// Most SAN entries kept per certificate.
pub const MAX_SANS: usize = 256;

/// The kind of subject public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyType {
    /// RSA (rsaEncryption or RSASSA-PSS).
    Rsa,
    /// Elliptic curve (id-ecPublicKey).
    Ec,
    /// DSA.
    Dsa,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// Anything else.
    Other,
}

impl KeyType {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ec => "ec",
            KeyType::Dsa => "dsa",
            KeyType::Ed25519 => "ed25519",
            KeyType::Ed448 => "ed448",
            KeyType::Other => "other",
        }
    }
}

/// One certificate as sent, owned and sanitised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// DER length in bytes.
    pub der_len: usize,
    /// SHA-1 of the DER, colon-separated lowercase hex (Suricata's `fingerprint`).
    pub fingerprint: String,
    /// Subject DN (`C=US, O=..., CN=...`), sanitised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Issuer DN, sanitised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Serial number, colon-separated uppercase hex (Suricata's `serial`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// `notBefore` as `YYYY-MM-DDThh:mm:ss` (UTC, Suricata's format).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notbefore: Option<String>,
    /// `notAfter` as `YYYY-MM-DDThh:mm:ss` (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notafter: Option<String>,
    /// `notBefore` in seconds since the epoch.
    #[serde(skip)]
    pub not_before_secs: Option<i64>,
    /// `notAfter` in seconds since the epoch.
    #[serde(skip)]
    pub not_after_secs: Option<i64>,
    /// SAN dNSName entries, sanitised, at most [`MAX_SANS`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub san_dns: Vec<String>,
    /// SAN iPAddress entries in text form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub san_ip: Vec<String>,
    /// Subject commonName values, sanitised.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub common_names: Vec<String>,
    /// Subject public key type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    /// Key size in bits (RSA modulus, EC field size, DSA public value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_bits: Option<u32>,
    /// Signature algorithm name (`sha256WithRSAEncryption`) or dotted OID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_alg: Option<String>,
    /// The signature uses MD2, MD5 or SHA-1.
    pub weak_signature_alg: bool,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// Self-issued and the key identifiers (if any) agree; see the module docs.
    pub self_signed: bool,
    /// Why the parser rejected this certificate, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// JA4X (FoxIO License 1.1; feature `ja4plus`).
    #[cfg(feature = "ja4plus")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4x: Option<String>,
    /// Raw DER of the subject name (chain-order checks).
    #[serde(skip)]
    pub subject_raw: Vec<u8>,
    /// Raw DER of the issuer name (chain-order checks).
    #[serde(skip)]
    pub issuer_raw: Vec<u8>,
}

/// Colon-separated hex.
fn colon_hex(b: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(b.len().saturating_mul(3));
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = if upper {
            write!(s, "{x:02X}")
        } else {
            write!(s, "{x:02x}")
        };
    }
    s
}

/// `YYYY-MM-DDThh:mm:ss` for seconds since the epoch (proleptic Gregorian, UTC).
pub fn format_suricata_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn sig_alg_name(oid: &str) -> Option<(&'static str, bool)> {
    Some(match oid {
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", true),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", true),
        "1.2.840.113549.1.1.5" => ("sha1WithRSAEncryption", true),
        "1.3.14.3.2.29" => ("sha1WithRSAEncryption", true),
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", false),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", false),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", false),
        "1.2.840.113549.1.1.14" => ("sha224WithRSAEncryption", false),
        "1.2.840.113549.1.1.10" => ("rsassaPss", false),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", true),
        "1.2.840.10045.4.3.1" => ("ecdsa-with-SHA224", false),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", false),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", false),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", false),
        "1.2.840.10040.4.3" => ("dsa-with-sha1", true),
        "2.16.840.1.101.3.4.3.2" => ("dsa-with-sha256", false),
        "1.3.101.112" => ("ed25519", false),
        "1.3.101.113" => ("ed448", false),
        _ => return None,
    })
}

fn curve_bits(oid: &str) -> Option<u32> {
    Some(match oid {
        "1.2.840.10045.3.1.1" => 192,  // secp192r1
        "1.3.132.0.33" => 224,         // secp224r1
        "1.2.840.10045.3.1.7" => 256,  // secp256r1
        "1.3.132.0.10" => 256,         // secp256k1
        "1.3.132.0.34" => 384,         // secp384r1
        "1.3.132.0.35" => 521,         // secp521r1
        "1.3.36.3.3.2.8.1.1.7" => 256, // brainpoolP256r1
        "1.3.36.3.3.2.8.1.1.11" => 384,
        "1.3.36.3.3.2.8.1.1.13" => 512,
        _ => return None,
    })
}

/// Bits of a big-endian unsigned integer (leading zero bytes ignored).
fn uint_bits(b: &[u8]) -> u32 {
    let Some(pos) = b.iter().position(|&x| x != 0) else {
        return 0;
    };
    let rest = b.get(pos..).unwrap_or(&[]);
    let lead = rest.first().map_or(8, |x| x.leading_zeros());
    let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
    len.saturating_mul(8).saturating_sub(lead)
}

fn ip_text(b: &[u8]) -> String {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        return std::net::Ipv4Addr::from(a).to_string();
    }
    if let Ok(a) = <[u8; 16]>::try_from(b) {
        return std::net::Ipv6Addr::from(a).to_string();
    }
    colon_hex(b, false)
}

/// Summarise one DER certificate. Never fails: rejection is `parse_error`.
pub fn summarize_cert(der: &[u8]) -> CertSummary {
    let mut s = CertSummary {
        der_len: der.len(),
        fingerprint: colon_hex(&Sha1::digest(der), false),
        ..CertSummary::default()
    };
    let cert = match X509Certificate::from_der(der) {
        Ok((_, c)) => c,
        Err(e) => {
            s.parse_error = Some(sanitize(e.to_string().as_bytes(), 256));
            return s;
        }
    };
    fill(&mut s, &cert);
    s
}

fn fill(s: &mut CertSummary, cert: &X509Certificate<'_>) {
    let tbs = &cert.tbs_certificate;
    s.subject = Some(sanitize(tbs.subject.to_string().as_bytes(), MAX_DN_BYTES));
    s.issuer = Some(sanitize(tbs.issuer.to_string().as_bytes(), MAX_DN_BYTES));
    s.subject_raw = tbs.subject.as_raw().to_vec();
    s.issuer_raw = tbs.issuer.as_raw().to_vec();
    s.serial = Some(colon_hex(tbs.raw_serial(), true));
    let nb = tbs.validity.not_before.timestamp();
    let na = tbs.validity.not_after.timestamp();
    s.not_before_secs = Some(nb);
    s.not_after_secs = Some(na);
    s.notbefore = Some(format_suricata_time(nb));
    s.notafter = Some(format_suricata_time(na));
    s.common_names = tbs
        .subject
        .iter_common_name()
        .take(MAX_SANS)
        .map(|a| match a.as_str() {
            Ok(t) => sanitize(t.as_bytes(), MAX_DN_BYTES),
            Err(_) => sanitize(a.as_slice(), MAX_DN_BYTES),
        })
        .collect();

    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    match sig_alg_name(&sig_oid) {
        Some((name, weak)) => {
            s.sig_alg = Some(name.to_string());
            s.weak_signature_alg = weak;
        }
        None => s.sig_alg = Some(sig_oid),
    }

    let spki = &tbs.subject_pki;
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let (kt, bits) = match key_oid.as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => match spki.parsed() {
            Ok(PublicKey::RSA(k)) => (KeyType::Rsa, Some(uint_bits(k.modulus))),
            _ => (KeyType::Rsa, None),
        },
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let bits = curve.as_deref().and_then(curve_bits).or_else(|| {
                spki.parsed()
                    .ok()
                    .map(|k| u32::try_from(k.key_size()).unwrap_or(0))
                    .filter(|&b| b > 0)
            });
            (KeyType::Ec, bits)
        }
        "1.2.840.10040.4.1" => match spki.parsed() {
            Ok(PublicKey::DSA(y)) => (KeyType::Dsa, Some(uint_bits(y))),
            _ => (KeyType::Dsa, None),
        },
        "1.3.101.112" => (KeyType::Ed25519, Some(256)),
        "1.3.101.113" => (KeyType::Ed448, Some(456)),
        _ => (KeyType::Other, None),
    };
    s.key_type = Some(kt);
    s.key_bits = bits;

    let mut ski: Option<&[u8]> = None;
    let mut aki: Option<&[u8]> = None;
    for ext in tbs.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for gn in &san.general_names {
                    match gn {
                        GeneralName::DNSName(d) if s.san_dns.len() < MAX_SANS => {
                            s.san_dns.push(sanitize(d.as_bytes(), 256));
                        }
                        GeneralName::IPAddress(ip) if s.san_ip.len() < MAX_SANS => {
                            s.san_ip.push(ip_text(ip));
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::BasicConstraints(bc) => s.is_ca = bc.ca,
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0);
            }
            _ => {}
        }
    }
    s.self_issued = !s.subject_raw.is_empty() && s.subject_raw == s.issuer_raw;
    s.self_signed = s.self_issued
        && match (aki, ski) {
            (Some(a), Some(k)) => a == k,
            _ => true,
        };

    #[cfg(feature = "ja4plus")]
    {
        let rdn_oids = |n: &x509_parser::x509::X509Name<'_>| -> Vec<Vec<u8>> {
            n.iter_attributes()
                .map(|a| a.attr_type().as_bytes().to_vec())
                .collect()
        };
        let ext_oids: Vec<Vec<u8>> = tbs
            .extensions()
            .iter()
            .map(|e| e.oid.as_bytes().to_vec())
            .collect();
        s.ja4x = Some(super::fingerprint::ja4x(
            &rdn_oids(&tbs.issuer),
            &rdn_oids(&tbs.subject),
            &ext_oids,
        ));
    }
}

/// Whether `host` (an SNI) is covered by `pattern` (a SAN dNSName or CN).
///
/// Case-insensitive; a trailing dot is ignored; a wildcard matches exactly one whole
/// left-most label (`*.example.com` covers `a.example.com`, not `example.com` nor
/// `a.b.example.com`), and only when it is the whole left-most label (RFC 6125 §6.4.3,
/// the CA/B Forum rule; partial-label wildcards such as `f*.example.com` never match).
pub fn hostname_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if p.is_empty() || h.is_empty() {
        return false;
    }
    match p.strip_prefix("*.") {
        Some(suffix) => {
            // The suffix must itself have at least two labels (no `*.com`).
            if !suffix.contains('.') || suffix.contains('*') {
                return false;
            }
            match h.split_once('.') {
                Some((first, rest)) => !first.is_empty() && rest == suffix,
                None => false,
            }
        }
        None => !p.contains('*') && p == h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_exactly_one_left_label() {
        assert!(hostname_matches("*.example.com", "a.example.com"));
        assert!(hostname_matches("*.Example.com", "A.example.COM."));
        assert!(!hostname_matches("*.example.com", "example.com"));
        assert!(!hostname_matches("*.example.com", "a.b.example.com"));
        assert!(!hostname_matches("*.com", "example.com"));
        assert!(!hostname_matches("f*.example.com", "foo.example.com"));
        assert!(!hostname_matches("a.*.example.com", "a.b.example.com"));
        assert!(hostname_matches("www.example.com", "www.example.com"));
    }

    #[test]
    fn suricata_time_format_is_iso_without_zone() {
        assert_eq!(format_suricata_time(0), "1970-01-01T00:00:00");
        assert_eq!(format_suricata_time(1_470_009_600), "2016-08-01T00:00:00");
        assert_eq!(format_suricata_time(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_suricata_time(-1), "1969-12-31T23:59:59");
    }

    #[test]
    fn garbage_der_gives_parse_error_and_fingerprint() {
        let s = summarize_cert(&[0x30, 0x03, 0x02, 0x01]);
        assert!(s.parse_error.is_some());
        assert_eq!(s.fingerprint.len(), 59);
        assert!(s.subject.is_none());
    }

    #[test]
    fn uint_bits_ignores_leading_zero_bytes() {
        assert_eq!(uint_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(uint_bits(&[0x01, 0x00]), 9);
        assert_eq!(uint_bits(&[0, 0]), 0);
    }
}
