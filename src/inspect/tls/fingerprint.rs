//! TLS fingerprints from hello summaries: JA3, JA3S, JA4 (+ JA4S and JA4X behind the
//! `ja4plus` feature).
//!
//! # Definitions followed
//!
//! - **JA3** (Salesforce, BSD-3-Clause): `SSLVersion,Ciphers,Extensions,EllipticCurves,
//!   EllipticCurvePointFormats`, decimal values joined by `-`, GREASE (RFC 8701) removed
//!   from ciphers, extensions and groups; MD5 of that string. The version is the
//!   ClientHello `legacy_version`. **JA3S**: `SSLVersion,Cipher,Extensions`.
//! - **JA4** (FoxIO, BSD-3-Clause; `technical_details/JA4.md`):
//!   `{t|q|d}{ver}{d|i}{nn ciphers}{nn exts}{alpn}_{sha256(sorted ciphers)[..12]}_
//!   {sha256(sorted exts minus SNI/ALPN "_" sig algs in order)[..12]}`. The version is
//!   the highest non-GREASE supported_versions value, else `legacy_version`. Counts are
//!   capped at 99. Empty cipher / extension lists give `000000000000`. No signature
//!   algorithms: no trailing `_` before hashing. ALPN: first and last character of the
//!   first value; if either byte is not ASCII alphanumeric, the first and last hex digit
//!   of the value's hex form instead (spec examples `0xAB 0xCD` → `ad`).
//!   `ja4_o`/`ja4_ro` keep wire order and, per the spec, *include* SNI and ALPN in the
//!   extension list; `ja4_r`/`ja4_ro` are the un-hashed strings.
//!
//! ## Differences from public implementations
//!
//! - Suricata (`rust/src/ja4.rs`) and some other implementations take the ALPN
//!   characters from the raw bytes even when they are not alphanumeric; we follow the
//!   spec's hex rule above.
//! - An SSLv2-compatible ClientHello gets no JA3 (Wireshark and Suricata compute none);
//!   its JA4 takes the version from the hello's version field (`0x0301` gives `10`), as
//!   the spec's version rule says; `s2` only when that field is `0x0002`.
//! - FoxIO's own reference output (`ja4__tls-non-ascii-alpn`) writes `99` for a
//!   non-ASCII first ALPN value, from an older text of the spec; we follow the current
//!   hex rule.

use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::handshake::{ClientHelloSummary, ExtensionType, ServerHelloSummary, TlsVersion};

/// The transport a hello travelled over: the first character of JA4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ja4Transport {
    /// TLS over TCP (`t`).
    Tcp,
    /// QUIC (`q`).
    Quic,
    /// DTLS (`d`).
    Dtls,
}

impl Ja4Transport {
    const fn letter(self) -> char {
        match self {
            Ja4Transport::Tcp => 't',
            Ja4Transport::Quic => 'q',
            Ja4Transport::Dtls => 'd',
        }
    }
}

/// A JA3 or JA3S fingerprint: the string and its MD5 (EVE `tls.ja3{hash,string}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ja3 {
    /// Lowercase hex MD5 of `string`.
    pub hash: String,
    /// The comma/dash string.
    pub string: String,
}

impl Ja3 {
    fn from_string(string: String) -> Ja3 {
        let digest = Md5::digest(string.as_bytes());
        Ja3 {
            hash: hex(&digest),
            string,
        }
    }
}

/// A JA4 fingerprint with its raw and original-order variants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ja4 {
    /// `ja4`: sorted, hashed.
    pub ja4: String,
    /// `ja4_r`: sorted, raw.
    pub ja4_r: String,
    /// `ja4_o`: wire order, hashed.
    pub ja4_o: String,
    /// `ja4_ro`: wire order, raw.
    pub ja4_ro: String,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex digit of the low nibble of `n`.
fn nibble(n: u16) -> char {
    char::from(HEX[usize::from(n & 0xf)])
}

/// Lower-case hex of `b`, two digits a byte. (Digit by digit: the fingerprints make a few
/// hundred of these per handshake, and `write!` costs ten times more.)
fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len().saturating_mul(2));
    for &x in b {
        s.push(nibble(u16::from(x >> 4)));
        s.push(nibble(u16::from(x)));
    }
    s
}

fn join_dec<I: Iterator<Item = u16>>(it: I) -> String {
    let mut s = String::new();
    let mut buf = itoa::Buffer::new();
    for (i, v) in it.enumerate() {
        if i > 0 {
            s.push('-');
        }
        s.push_str(buf.format(v));
    }
    s
}

fn join_hex<I: Iterator<Item = u16>>(it: I) -> String {
    let mut s = String::new();
    for (i, v) in it.enumerate() {
        if i > 0 {
            s.push(',');
        }
        for shift in [12, 8, 4, 0] {
            s.push(nibble(v >> shift));
        }
    }
    s
}

/// JA3 of a ClientHello; `None` for an SSLv2-compatible hello.
pub fn ja3(ch: &ClientHelloSummary) -> Option<Ja3> {
    if ch.sslv2_compat {
        return None;
    }
    let s = format!(
        "{},{},{},{},{}",
        ch.legacy_version.0,
        join_dec(
            ch.cipher_suites
                .iter()
                .filter(|c| !c.is_grease())
                .map(|c| c.0)
        ),
        join_dec(ch.extensions.iter().filter(|e| !e.is_grease()).map(|e| e.0)),
        join_dec(
            ch.supported_groups
                .iter()
                .filter(|g| !g.is_grease())
                .map(|g| g.0)
        ),
        join_dec(ch.ec_point_formats.iter().map(|&f| u16::from(f))),
    );
    Some(Ja3::from_string(s))
}

/// JA3S of a ServerHello.
pub fn ja3s(sh: &ServerHelloSummary) -> Ja3 {
    let s = format!(
        "{},{},{}",
        sh.legacy_version.0,
        sh.cipher_suite.0,
        join_dec(sh.extensions.iter().filter(|e| !e.is_grease()).map(|e| e.0)),
    );
    Ja3::from_string(s)
}

/// The two-character JA4 version code.
fn ja4_version(v: TlsVersion) -> &'static str {
    match v.0 {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The two ALPN characters of JA4 (spec "ALPN Extension Value").
fn ja4_alpn(first: Option<&[u8]>) -> String {
    let Some(v) = first.filter(|v| !v.is_empty()) else {
        return "00".to_string();
    };
    let (Some(&a), Some(&z)) = (v.first(), v.last()) else {
        return "00".to_string();
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        let mut s = String::with_capacity(2);
        s.push(char::from(a));
        s.push(char::from(z));
        return s;
    }
    let h = hex(v);
    let mut s = String::with_capacity(2);
    s.push(h.chars().next().unwrap_or('0'));
    s.push(h.chars().last().unwrap_or('0'));
    s
}

fn sha12(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    let mut h = hex(&d);
    h.truncate(12);
    h
}

fn count2(n: usize) -> String {
    format!("{:02}", n.min(99))
}

/// JA4 of a ClientHello (FoxIO spec; see the module docs).
pub fn ja4(ch: &ClientHelloSummary, transport: Ja4Transport) -> Ja4 {
    let ciphers: Vec<u16> = ch
        .cipher_suites
        .iter()
        .filter(|c| !c.is_grease())
        .map(|c| c.0)
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .filter(|e| !e.is_grease())
        .map(|e| e.0)
        .collect();
    let sigs: Vec<u16> = ch
        .signature_algorithms
        .iter()
        .filter(|s| !s.is_grease())
        .map(|s| s.0)
        .collect();
    let version = ch.max_version();
    let a = format!(
        "{}{}{}{}{}{}",
        transport.letter(),
        ja4_version(version),
        if ch.has_extension(ExtensionType::SERVER_NAME) {
            'd'
        } else {
            'i'
        },
        count2(ciphers.len()),
        count2(exts.len()),
        ja4_alpn(ch.alpn.first().map(Vec::as_slice)),
    );

    let mut sorted_ciphers = ciphers.clone();
    sorted_ciphers.sort_unstable();
    let sorted_exts: Vec<u16> = {
        let mut v: Vec<u16> = exts
            .iter()
            .copied()
            .filter(|&e| e != ExtensionType::SERVER_NAME.0 && e != ExtensionType::ALPN.0)
            .collect();
        v.sort_unstable();
        v
    };

    let part_c = |ext_list: &[u16]| -> String {
        let mut s = join_hex(ext_list.iter().copied());
        if !sigs.is_empty() {
            s.push('_');
            s.push_str(&join_hex(sigs.iter().copied()));
        }
        s
    };
    let hash_or_zero = |list_empty: bool, s: &str| -> String {
        if list_empty {
            "000000000000".to_string()
        } else {
            sha12(s)
        }
    };

    let b_sorted = join_hex(sorted_ciphers.iter().copied());
    let b_orig = join_hex(ciphers.iter().copied());
    let c_sorted = part_c(&sorted_exts);
    let c_orig = part_c(&exts);

    Ja4 {
        ja4: format!(
            "{a}_{}_{}",
            hash_or_zero(ciphers.is_empty(), &b_sorted),
            hash_or_zero(sorted_exts.is_empty(), &c_sorted)
        ),
        ja4_r: format!("{a}_{b_sorted}_{c_sorted}"),
        ja4_o: format!(
            "{a}_{}_{}",
            hash_or_zero(ciphers.is_empty(), &b_orig),
            hash_or_zero(exts.is_empty(), &c_orig)
        ),
        ja4_ro: format!("{a}_{b_orig}_{c_orig}"),
    }
}

/// JA4S of a ServerHello (FoxIO JA4+ spec, FoxIO License 1.1: see `NOTICE`):
/// `{t|q|d}{ver}{nn exts}{alpn}_{cipher hex}_{sha256(exts in order)[..12]}`.
#[cfg(feature = "ja4plus")]
pub fn ja4s(sh: &ServerHelloSummary, transport: Ja4Transport) -> String {
    let exts: Vec<u16> = sh
        .extensions
        .iter()
        .filter(|e| !e.is_grease())
        .map(|e| e.0)
        .collect();
    let a = format!(
        "{}{}{}{}",
        transport.letter(),
        ja4_version(sh.version()),
        count2(exts.len()),
        ja4_alpn(sh.alpn.as_deref()),
    );
    let c = if exts.is_empty() {
        "000000000000".to_string()
    } else {
        sha12(&join_hex(exts.iter().copied()))
    };
    format!("{a}_{:04x}_{c}", sh.cipher_suite.0)
}

/// JA4X from the raw OIDs of a certificate (FoxIO JA4+ spec, FoxIO License 1.1: see
/// `NOTICE`): `sha256(issuer RDN OIDs)[..12]_sha256(subject RDN OIDs)[..12]_
/// sha256(extension OIDs)[..12]`, each OID as the hex of its DER content bytes, joined
/// by `,`, in certificate order. Empty lists give `000000000000`.
#[cfg(feature = "ja4plus")]
pub fn ja4x(issuer_oids: &[Vec<u8>], subject_oids: &[Vec<u8>], ext_oids: &[Vec<u8>]) -> String {
    let part = |l: &[Vec<u8>]| -> String {
        if l.is_empty() {
            return "000000000000".to_string();
        }
        let s = l.iter().map(|o| hex(o)).collect::<Vec<_>>().join(",");
        sha12(&s)
    };
    format!(
        "{}_{}_{}",
        part(issuer_oids),
        part(subject_oids),
        part(ext_oids)
    )
}

#[cfg(test)]
mod tests {
    use super::super::handshake::{CipherSuite, SignatureScheme};
    use super::*;

    /// The worked example of FoxIO's JA4.md.
    fn spec_example() -> ClientHelloSummary {
        let ciphers = [
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let exts = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
            0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ];
        let sigs = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        ClientHelloSummary {
            legacy_version: TlsVersion::TLS_1_2,
            cipher_suites: std::iter::once(CipherSuite(0x2a2a))
                .chain(ciphers.iter().map(|&c| CipherSuite(c)))
                .collect(),
            extensions: std::iter::once(ExtensionType(0x5a5a))
                .chain(exts.iter().map(|&e| ExtensionType(e)))
                .collect(),
            signature_algorithms: sigs.iter().map(|&s| SignatureScheme(s)).collect(),
            supported_versions: vec![TlsVersion(0x3a3a), TlsVersion::TLS_1_3, TlsVersion::TLS_1_2],
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            sni: Some(b"example.com".to_vec()),
            ..ClientHelloSummary::default()
        }
    }

    #[test]
    fn ja4_matches_the_spec_worked_example() {
        let f = ja4(&spec_example(), Ja4Transport::Tcp);
        assert_eq!(f.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert!(f.ja4_r.starts_with("t13d1516h2_002f,0035,009c"));
        assert!(
            f.ja4_r
                .ends_with("4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601")
        );
        assert!(f.ja4_ro.contains("_001b,0000,0033,0010,"));
    }

    #[test]
    fn ja4_without_sig_algs_hashes_without_underscore() {
        let mut ch = spec_example();
        ch.signature_algorithms.clear();
        let f = ja4(&ch, Ja4Transport::Quic);
        assert!(f.ja4.starts_with("q13d"));
        assert!(f.ja4.ends_with("_6d807ffa2a79"));
    }

    #[test]
    fn ja4_alpn_uses_hex_when_not_alphanumeric() {
        let cases: [(&[u8], &str); 8] = [
            (&[0xab], "ab"),
            (&[0x20], "20"),
            (&[0xab, 0xcd], "ad"),
            (&[0x20, 0x61], "21"),
            (&[0x30, 0xab], "3b"),
            (&[0x61, 0x20], "60"),
            (&[0x30, 0x31, 0xab, 0xcd], "3d"),
            (&[0x30, 0xab, 0xcd, 0x31], "01"),
        ];
        for (v, want) in cases {
            assert_eq!(ja4_alpn(Some(v)), want, "{v:02x?}");
        }
        assert_eq!(ja4_alpn(Some(b"http/1.1")), "h1");
        assert_eq!(ja4_alpn(Some(b"x")), "xx");
        assert_eq!(ja4_alpn(None), "00");
    }

    #[test]
    fn empty_lists_give_zero_hashes() {
        let ch = ClientHelloSummary {
            legacy_version: TlsVersion(0x9999),
            ..ClientHelloSummary::default()
        };
        assert_eq!(
            ja4(&ch, Ja4Transport::Dtls).ja4,
            "d00i000000_000000000000_000000000000"
        );
    }

    #[test]
    fn ja3_drops_grease_everywhere() {
        let mut ch = spec_example();
        ch.supported_groups = vec![
            super::super::handshake::NamedGroup(0x8a8a),
            super::super::handshake::NamedGroup(29),
        ];
        ch.ec_point_formats = vec![0];
        let j = ja3(&ch).map(|j| j.string).unwrap_or_default();
        assert!(j.starts_with("771,4865-4866-4867-49195"));
        assert!(j.ends_with(",29,0"));
        assert!(!j.contains("10794") && !j.contains("23130"));
    }
}
