//! QUIC Initial packets: key derivation, header protection, AEAD, frames and the CRYPTO
//! stream, so that the TLS handshake carried in QUIC can be summarised like any other.
//!
//! **Owns** the pure, stateless pieces ([`InitialKeys`], [`open_initial`],
//! [`seal_initial`], [`crypto_frames`]) and the bounded per-flow state (`QuicFlow`,
//! crate-private) that the TLS inspector drives for UDP flows whose first datagram is a
//! QUIC long header.
//!
//! **Must not** keep anything beyond its caps: at most [`MAX_CRYPTO_BYTES`] of CRYPTO
//! stream per direction, [`MAX_PENDING_FRAGMENTS`] out-of-order fragments, and
//! [`MAX_DATAGRAMS`] datagrams looked at per flow.
//!
//! # What is decrypted
//!
//! Only Initial packets: their keys derive from the Destination Connection ID of the
//! client's first Initial and a salt published per version (RFC 9001 §5.2, RFC 9369
//! §3.3.1), so a passive observer can read them. Everything after the ServerHello
//! (Handshake and 1-RTT packets) stays opaque. Versions this module does not know
//! (Google QUIC, mvfst, greased versions) are left alone; Version Negotiation and Retry
//! packets are recognised (a Retry changes the client's connection id and thus the keys).
//!
//! # References
//!
//! - RFC 9000 §12.2 (coalescing), §16 (varints), §17.2 (long header), §19 (frames),
//!   Appendix A.3 (packet number decoding)
//! - RFC 9001 §5 (Initial secrets, AEAD, header protection), Appendix A (test vectors)
//! - RFC 9369 §3 (QUIC v2 salt, labels and packet types), Appendix A (test vectors)
//! - draft-ietf-quic-tls-29 §5.2 (draft 29–32 salt), draft-23 (drafts 23–28 salt)

use std::collections::BTreeMap;

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, Payload};
use hkdf::Hkdf;
use sha2::Sha256;

/// Most CRYPTO stream bytes reassembled per direction (a ClientHello with post-quantum
/// key shares is ~2 KiB; real ones never come near this).
pub const MAX_CRYPTO_BYTES: usize = 64 * 1024;
/// Most out-of-order CRYPTO fragments held per direction.
pub const MAX_PENDING_FRAGMENTS: usize = 64;
/// Most datagrams of one flow looked at before the inspector gives up on the handshake.
pub const MAX_DATAGRAMS: u32 = 64;

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const VERSION_2: u32 = 0x6b33_43cf;

/// Why an Initial packet could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// Not a long-header packet.
    #[error("not a quic long header packet")]
    NotLongHeader,
    /// A version without known Initial salt.
    #[error("quic version {0:#010x} has no known initial salt")]
    UnknownVersion(u32),
    /// A long header that is not an Initial packet.
    #[error("quic packet is not an initial packet")]
    NotInitial,
    /// A field runs past the datagram.
    #[error("truncated quic {field} at byte {offset}: need {need} bytes, have {have}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Byte offset of the field in the datagram.
        offset: usize,
        /// Bytes needed from `offset`.
        need: usize,
        /// Bytes available from `offset`.
        have: usize,
    },
    /// A connection id longer than 20 bytes (RFC 9000 §17.2).
    #[error("quic connection id of {0} bytes (max 20)")]
    ConnectionIdTooLong(usize),
    /// The AEAD tag did not verify (wrong keys or damaged packet).
    #[error("quic initial packet failed authentication")]
    Authentication,
    /// A frame that cannot appear in an Initial packet, or a malformed one.
    #[error("malformed or unexpected quic frame type {frame_type:#x} at payload byte {offset}")]
    Frame {
        /// The frame type read.
        frame_type: u64,
        /// Its offset in the decrypted payload.
        offset: usize,
    },
}

/// Which endpoint's Initial secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// "client in": packets the client sends.
    Client,
    /// "server in": packets the server sends.
    Server,
}

/// What a version needs: Initial salt, HKDF label prefix, and the long-header packet
/// type of Initial and Retry.
#[derive(Clone, Copy, Debug)]
struct VersionParams {
    salt: [u8; 20],
    v2_labels: bool,
    initial_type: u8,
    retry_type: u8,
    handshake_type: u8,
}

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];

const fn v1_params(salt: [u8; 20]) -> VersionParams {
    VersionParams {
        salt,
        v2_labels: false,
        initial_type: 0,
        retry_type: 3,
        handshake_type: 2,
    }
}

const fn version_params(version: u32) -> Option<VersionParams> {
    let v1 = v1_params;
    match version {
        VERSION_1 => Some(v1(SALT_V1)),
        VERSION_2 => Some(VersionParams {
            salt: SALT_V2,
            v2_labels: true,
            initial_type: 1,
            retry_type: 0,
            handshake_type: 3,
        }),
        // draft-ietf-quic-tls-29 to -32 share one salt; -23 to -28 another.
        0xff00_001d..=0xff00_0020 => Some(v1(SALT_DRAFT_29)),
        0xff00_0017..=0xff00_001c => Some(v1(SALT_DRAFT_23)),
        _ => None,
    }
}

/// Whether Initial packets of `version` can be decrypted here (v1, v2, drafts 23–32).
pub const fn is_supported_version(version: u32) -> bool {
    version_params(version).is_some()
}

/// AES-128-GCM key, IV and header-protection key of one side's Initial packets.
#[derive(Clone)]
pub struct InitialKeys {
    version: u32,
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

impl std::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialKeys")
            .field("version", &format_args!("{:#010x}", self.version))
            .finish_non_exhaustive()
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?;
    let full_len = u8::try_from(label.len().checked_add(6)?).ok()?;
    let mut info = Vec::with_capacity(label.len().saturating_add(10));
    info.extend_from_slice(&len.to_be_bytes());
    info.push(full_len);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    prk.expand(&info, out).ok()
}

impl InitialKeys {
    /// The Initial keys of `side` for a connection whose client chose `dcid` as the
    /// Destination Connection ID of its first Initial. `None` for unknown versions.
    pub fn new(version: u32, dcid: &[u8], side: Side) -> Option<Self> {
        let p = version_params(version)?;
        let initial = Hkdf::<Sha256>::new(Some(&p.salt), dcid);
        let label: &[u8] = match side {
            Side::Client => b"client in",
            Side::Server => b"server in",
        };
        let mut secret = [0u8; 32];
        expand_label(&initial, label, &mut secret)?;
        let side_prk = Hkdf::<Sha256>::from_prk(&secret).ok()?;
        let (lk, li, lh): (&[u8], &[u8], &[u8]) = if p.v2_labels {
            (b"quicv2 key", b"quicv2 iv", b"quicv2 hp")
        } else {
            (b"quic key", b"quic iv", b"quic hp")
        };
        let mut k = InitialKeys {
            version,
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        expand_label(&side_prk, lk, &mut k.key)?;
        expand_label(&side_prk, li, &mut k.iv)?;
        expand_label(&side_prk, lh, &mut k.hp)?;
        Some(k)
    }

    /// The version these keys are for.
    pub fn version(&self) -> u32 {
        self.version
    }

    fn mask(&self, sample: &[u8]) -> Option<[u8; 5]> {
        let cipher = aes::Aes128::new_from_slice(&self.hp).ok()?;
        let arr: [u8; 16] = sample.get(..16)?.try_into().ok()?;
        let mut block = aes::Block::from(arr);
        cipher.encrypt_block(&mut block);
        let mut m = [0u8; 5];
        for (d, s) in m.iter_mut().zip(block.iter()) {
            *d = *s;
        }
        Some(m)
    }

    fn nonce(&self, pn: u64) -> [u8; 12] {
        let mut n = self.iv;
        for (d, s) in n.iter_mut().skip(4).zip(pn.to_be_bytes()) {
            *d ^= s;
        }
        n
    }
}

/// The fields of a long header up to the Length field (RFC 9000 §17.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongHeaderView<'a> {
    /// The first byte as sent (protected bits included).
    pub first: u8,
    /// Version (0 for Version Negotiation).
    pub version: u32,
    /// Destination Connection ID.
    pub dcid: &'a [u8],
    /// Source Connection ID.
    pub scid: &'a [u8],
    /// Long packet type bits (meaning depends on the version).
    pub packet_type: u8,
    /// Offset of the packet number (Initial, 0-RTT and Handshake), else of the payload.
    pub pn_offset: usize,
    /// End of this packet in the datagram (Length field), or the datagram's end for
    /// Retry and Version Negotiation.
    pub end: usize,
}

fn varint(b: &[u8], at: usize, field: &'static str) -> Result<(u64, usize), QuicError> {
    let first = *b.get(at).ok_or(QuicError::Truncated {
        field,
        offset: at,
        need: 1,
        have: 0,
    })?;
    let len = 1usize << (first >> 6);
    let bytes = b
        .get(at..at.saturating_add(len))
        .ok_or(QuicError::Truncated {
            field,
            offset: at,
            need: len,
            have: b.len().saturating_sub(at),
        })?;
    let mut v = u64::from(first & 0x3f);
    for &x in bytes.iter().skip(1) {
        v = v << 8 | u64::from(x);
    }
    Ok((v, at.saturating_add(len)))
}

fn take<'a>(
    b: &'a [u8],
    at: usize,
    len: usize,
    field: &'static str,
) -> Result<&'a [u8], QuicError> {
    b.get(at..at.saturating_add(len))
        .ok_or(QuicError::Truncated {
            field,
            offset: at,
            need: len,
            have: b.len().saturating_sub(at),
        })
}

/// Parse the long header at the start of `d` (one packet of a possibly coalesced
/// datagram).
///
/// # Errors
/// [`QuicError::NotLongHeader`], [`QuicError::ConnectionIdTooLong`] or
/// [`QuicError::Truncated`]. Unknown versions parse (only the invariant fields and, if
/// the version is known, the rest).
pub fn parse_long_header(d: &[u8]) -> Result<LongHeaderView<'_>, QuicError> {
    let first = *d.first().ok_or(QuicError::NotLongHeader)?;
    if first & 0x80 == 0 {
        return Err(QuicError::NotLongHeader);
    }
    let v = take(d, 1, 4, "version")?;
    let version = u32::from_be_bytes([
        v.first().copied().unwrap_or(0),
        v.get(1).copied().unwrap_or(0),
        v.get(2).copied().unwrap_or(0),
        v.get(3).copied().unwrap_or(0),
    ]);
    let dlen = usize::from(*take(d, 5, 1, "dcid length")?.first().unwrap_or(&0));
    let dcid = take(d, 6, dlen, "dcid")?;
    let at = 6usize.saturating_add(dlen);
    let slen = usize::from(*take(d, at, 1, "scid length")?.first().unwrap_or(&0));
    let scid = take(d, at.saturating_add(1), slen, "scid")?;
    let mut at = at.saturating_add(1).saturating_add(slen);
    let packet_type = (first >> 4) & 3;
    let mut view = LongHeaderView {
        first,
        version,
        dcid,
        scid,
        packet_type,
        pn_offset: at,
        end: d.len(),
    };
    let Some(p) = version_params(version) else {
        return Ok(view);
    };
    if dlen > 20 || slen > 20 {
        return Err(QuicError::ConnectionIdTooLong(dlen.max(slen)));
    }
    if packet_type == p.retry_type {
        return Ok(view);
    }
    if packet_type == p.initial_type {
        let (tlen, next) = varint(d, at, "token length")?;
        let tlen = usize::try_from(tlen).unwrap_or(usize::MAX);
        take(d, next, tlen, "token")?;
        at = next.saturating_add(tlen);
    }
    let (len, next) = varint(d, at, "length")?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    take(d, next, len, "packet payload")?;
    view.pn_offset = next;
    view.end = next.saturating_add(len);
    Ok(view)
}

/// A decrypted Initial packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedPacket {
    /// Full packet number.
    pub packet_number: u64,
    /// Decrypted frames.
    pub payload: Vec<u8>,
    /// Bytes of the datagram this packet used (the next coalesced packet starts here).
    pub len: usize,
}

/// RFC 9000 Appendix A.3: the full packet number closest to `largest + 1`.
fn decode_pn(largest: Option<u64>, truncated: u64, nbits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << nbits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62).saturating_sub(win) {
        candidate.saturating_add(win)
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// Remove header protection and decrypt the Initial packet at the start of `d` with
/// `keys`. `largest_pn` is the largest packet number decrypted so far in this
/// direction (for packet number recovery).
///
/// # Errors
/// Header errors of [`parse_long_header`], [`QuicError::UnknownVersion`],
/// [`QuicError::NotInitial`], [`QuicError::Authentication`].
pub fn open_initial(
    keys: &InitialKeys,
    d: &[u8],
    largest_pn: Option<u64>,
) -> Result<OpenedPacket, QuicError> {
    let h = parse_long_header(d)?;
    let p = version_params(h.version).ok_or(QuicError::UnknownVersion(h.version))?;
    if h.packet_type != p.initial_type || h.version != keys.version {
        return Err(QuicError::NotInitial);
    }
    let sample_at = h.pn_offset.saturating_add(4);
    let sample = take(d, sample_at, 16, "header protection sample")?;
    if sample_at.saturating_add(16) > h.end {
        return Err(QuicError::Truncated {
            field: "header protection sample",
            offset: sample_at,
            need: 16,
            have: h.end.saturating_sub(sample_at),
        });
    }
    let mask = keys.mask(sample).ok_or(QuicError::Authentication)?;
    let first = h.first ^ (mask.first().copied().unwrap_or(0) & 0x0f);
    let pn_len = usize::from(first & 3) + 1;
    let mut header = take(d, 0, h.pn_offset.saturating_add(pn_len), "packet number")?.to_vec();
    if let Some(b) = header.first_mut() {
        *b = first;
    }
    let mut truncated = 0u64;
    for (b, m) in header.iter_mut().skip(h.pn_offset).zip(mask.iter().skip(1)) {
        *b ^= m;
        truncated = truncated << 8 | u64::from(*b);
    }
    let pn = decode_pn(
        largest_pn,
        truncated,
        u32::try_from(pn_len * 8).unwrap_or(32),
    );
    let ct = d
        .get(h.pn_offset.saturating_add(pn_len)..h.end)
        .ok_or(QuicError::Authentication)?;
    let aead = Aes128Gcm::new_from_slice(&keys.key).map_err(|_| QuicError::Authentication)?;
    let nonce = aes_gcm::Nonce::from(keys.nonce(pn));
    let payload = aead
        .decrypt(
            &nonce,
            Payload {
                msg: ct,
                aad: &header,
            },
        )
        .map_err(|_| QuicError::Authentication)?;
    Ok(OpenedPacket {
        packet_number: pn,
        payload,
        len: h.end,
    })
}

/// Protect an Initial packet: `header` is the unprotected long header whose last
/// `(header[0] & 3) + 1` bytes are the packet number `pn` and whose Length field already
/// counts the 16-byte tag; `payload` the frames. For tests, benches and fuzzing (a
/// passive sensor never seals); the RFC 9001 Appendix A vectors check it.
///
/// # Errors
/// [`QuicError::Truncated`] when the packet is too short to sample (payload plus packet
/// number under 20 bytes), [`QuicError::Authentication`] if the cipher fails.
pub fn seal_initial(
    keys: &InitialKeys,
    header: &[u8],
    pn: u64,
    payload: &[u8],
) -> Result<Vec<u8>, QuicError> {
    let first = *header.first().ok_or(QuicError::NotLongHeader)?;
    let pn_len = usize::from(first & 3) + 1;
    let pn_offset = header
        .len()
        .checked_sub(pn_len)
        .ok_or(QuicError::Truncated {
            field: "packet number",
            offset: 0,
            need: pn_len,
            have: header.len(),
        })?;
    let aead = Aes128Gcm::new_from_slice(&keys.key).map_err(|_| QuicError::Authentication)?;
    let nonce = aes_gcm::Nonce::from(keys.nonce(pn));
    let ct = aead
        .encrypt(
            &nonce,
            Payload {
                msg: payload,
                aad: header,
            },
        )
        .map_err(|_| QuicError::Authentication)?;
    let mut out = header.to_vec();
    out.extend_from_slice(&ct);
    let sample_at = pn_offset.saturating_add(4);
    let sample = take(&out, sample_at, 16, "header protection sample")?.to_vec();
    let mask = keys.mask(&sample).ok_or(QuicError::Authentication)?;
    if let Some(b) = out.first_mut() {
        *b ^= mask.first().copied().unwrap_or(0) & 0x0f;
    }
    for (b, m) in out
        .iter_mut()
        .skip(pn_offset)
        .take(pn_len)
        .zip(mask.iter().skip(1))
    {
        *b ^= m;
    }
    Ok(out)
}

/// Walk the frames of a decrypted Initial payload (RFC 9000 §19; Initial packets carry
/// only PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE, §12.4) and hand every CRYPTO
/// frame's `(offset, data)` to `on_crypto`.
///
/// # Errors
/// [`QuicError::Frame`] at the first frame that is not allowed in an Initial packet or
/// does not fit; frames before it were delivered.
pub fn crypto_frames<F>(payload: &[u8], mut on_crypto: F) -> Result<(), QuicError>
where
    F: FnMut(u64, &[u8]),
{
    let mut at = 0usize;
    while at < payload.len() {
        let start = at;
        let bad = |t| QuicError::Frame {
            frame_type: t,
            offset: start,
        };
        let (t, next) = varint(payload, at, "frame type").map_err(|_| bad(0))?;
        at = next;
        match t {
            0x00 => {
                // PADDING: skip the whole run at once.
                let run = payload
                    .get(at..)
                    .map_or(0, |r| r.iter().take_while(|&&b| b == 0).count());
                at = at.saturating_add(run);
            }
            0x01 => {}
            0x02 | 0x03 => {
                // ACK: largest, delay, range count, first range, ranges, [ECN counts].
                let mut fields = 4u64;
                let mut i = 0u64;
                while i < fields {
                    let (v, n) = varint(payload, at, "ack field").map_err(|_| bad(t))?;
                    if i == 2 {
                        // Each range is a gap and a length.
                        fields = fields.saturating_add(v.saturating_mul(2));
                        if t == 0x03 {
                            fields = fields.saturating_add(3);
                        }
                    }
                    at = n;
                    i += 1;
                    if at >= payload.len() && i < fields {
                        return Err(bad(t));
                    }
                }
            }
            0x06 => {
                let (off, n) = varint(payload, at, "crypto offset").map_err(|_| bad(t))?;
                let (len, n) = varint(payload, n, "crypto length").map_err(|_| bad(t))?;
                let len = usize::try_from(len).map_err(|_| bad(t))?;
                let data = take(payload, n, len, "crypto data").map_err(|_| bad(t))?;
                on_crypto(off, data);
                at = n.saturating_add(len);
            }
            0x1c => {
                let (_, n) = varint(payload, at, "error code").map_err(|_| bad(t))?;
                let (_, n) = varint(payload, n, "frame type").map_err(|_| bad(t))?;
                let (len, n) = varint(payload, n, "reason length").map_err(|_| bad(t))?;
                let len = usize::try_from(len).map_err(|_| bad(t))?;
                take(payload, n, len, "reason").map_err(|_| bad(t))?;
                at = n.saturating_add(len);
            }
            other => return Err(bad(other)),
        }
    }
    Ok(())
}

/// Why a CRYPTO stream stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// Data beyond [`MAX_CRYPTO_BYTES`] or more than [`MAX_PENDING_FRAGMENTS`] held.
    Overflow,
}

/// One direction's CRYPTO stream: the contiguous prefix from offset 0 and held
/// out-of-order fragments, bounded.
#[derive(Debug, Default)]
pub(crate) struct CryptoStream {
    data: Vec<u8>,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Bytes of `data` already cut into handshake messages.
    consumed: usize,
}

impl CryptoStream {
    pub(crate) fn insert(&mut self, off: u64, bytes: &[u8]) -> Result<(), StreamError> {
        let off = usize::try_from(off).map_err(|_| StreamError::Overflow)?;
        let end = off.checked_add(bytes.len()).ok_or(StreamError::Overflow)?;
        if end > MAX_CRYPTO_BYTES {
            return Err(StreamError::Overflow);
        }
        let have = self.data.len();
        if end <= have || bytes.is_empty() {
            return Ok(());
        }
        if off > have {
            if self.pending.len() >= MAX_PENDING_FRAGMENTS
                || self.pending_bytes.saturating_add(bytes.len()) > MAX_CRYPTO_BYTES
            {
                return Err(StreamError::Overflow);
            }
            let key = off as u64;
            let longer = self.pending.get(&key).is_none_or(|p| p.len() < bytes.len());
            if longer {
                if let Some(old) = self.pending.insert(key, bytes.to_vec()) {
                    self.pending_bytes = self.pending_bytes.saturating_sub(old.len());
                }
                self.pending_bytes = self.pending_bytes.saturating_add(bytes.len());
            }
            return Ok(());
        }
        self.data
            .extend_from_slice(bytes.get(have.saturating_sub(off)..).unwrap_or(&[]));
        while let Some((&k, _)) = self.pending.first_key_value() {
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            if k > self.data.len() {
                break;
            }
            let Some((_, frag)) = self.pending.pop_first() else {
                break;
            };
            self.pending_bytes = self.pending_bytes.saturating_sub(frag.len());
            let skip = self.data.len().saturating_sub(k);
            if let Some(tail) = frag.get(skip..) {
                self.data.extend_from_slice(tail);
            }
        }
        Ok(())
    }

    /// Hand every complete handshake message (type, body) not handed out before to
    /// `sink`. A message declaring more than `cap` bytes is an error.
    pub(crate) fn messages<F>(&mut self, cap: usize, mut sink: F) -> Result<(), StreamError>
    where
        F: FnMut(u8, &[u8]),
    {
        loop {
            let rest = self.data.get(self.consumed..).unwrap_or(&[]);
            let (Some(&t), Some(&[a, b, c])) = (rest.first(), rest.get(1..4)) else {
                return Ok(());
            };
            let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
            if len > cap {
                return Err(StreamError::Overflow);
            }
            let end = 4usize.saturating_add(len);
            let Some(body) = rest.get(4..end) else {
                return Ok(());
            };
            sink(t, body);
            self.consumed = self.consumed.saturating_add(end);
        }
    }
}

/// What one datagram yielded.
#[derive(Debug, Default)]
pub(crate) struct DatagramOutcome {
    /// Handshake messages completed in this datagram, in stream order.
    pub(crate) messages: Vec<(u8, Vec<u8>)>,
    /// The CRYPTO stream hit a cap.
    pub(crate) overflow: bool,
    /// A decrypted Initial carried a frame not allowed there.
    pub(crate) bad_frame: bool,
    /// The client sent a Handshake packet (it has the server's handshake keys, so the
    /// ServerHello was sent).
    pub(crate) client_handshake: bool,
}

/// Bounded QUIC state of one flow (both directions).
#[derive(Debug, Default)]
pub(crate) struct QuicFlow {
    /// Client and server Initial keys, from the client's first (or post-Retry) DCID.
    keys: Option<Box<(InitialKeys, InitialKeys)>>,
    largest_pn: [Option<u64>; 2],
    streams: [CryptoStream; 2],
    stopped: [bool; 2],
    pub(crate) datagrams: u32,
    /// Initial packets decrypted.
    pub(crate) decrypted: u32,
}

impl QuicFlow {
    /// Read one datagram of direction `to_server` (index 0) or to the client (1).
    pub(crate) fn datagram(&mut self, dir: usize, data: &[u8], cap: usize) -> DatagramOutcome {
        let mut out = DatagramOutcome::default();
        self.datagrams = self.datagrams.saturating_add(1);
        let mut rest = data;
        // Coalesced packets (RFC 9000 §12.2): each long header says where it ends.
        while !rest.is_empty() {
            let Ok(h) = parse_long_header(rest) else {
                break;
            };
            let Some(p) = version_params(h.version) else {
                break; // Version Negotiation, or a version we leave alone.
            };
            if h.packet_type == p.retry_type {
                // The client's next Initial goes to the Retry's SCID with new keys.
                self.keys = None;
                self.largest_pn = [None; 2];
                break;
            }
            if h.packet_type == p.handshake_type && dir == 0 {
                out.client_handshake = true;
            }
            if h.packet_type == p.initial_type {
                let packet = rest.get(..h.end).unwrap_or(rest);
                self.initial(dir, &h, packet, cap, &mut out);
            }
            rest = rest.get(h.end..).unwrap_or(&[]);
            if h.end == 0 {
                break;
            }
        }
        out
    }

    fn initial(
        &mut self,
        dir: usize,
        h: &LongHeaderView<'_>,
        packet: &[u8],
        cap: usize,
        out: &mut DatagramOutcome,
    ) {
        if self.stopped.get(dir).copied().unwrap_or(true) {
            return;
        }
        let largest = self.largest_pn.get(dir).copied().flatten();
        let mut opened = self.keys.as_ref().and_then(|k| {
            let keys = if dir == 0 { &k.0 } else { &k.1 };
            open_initial(keys, packet, largest).ok()
        });
        if opened.is_none() && dir == 0 {
            // First client Initial (or the first after a Retry, or one whose earlier
            // Initials were not captured): its DCID decides the keys.
            let fresh = InitialKeys::new(h.version, h.dcid, Side::Client).zip(InitialKeys::new(
                h.version,
                h.dcid,
                Side::Server,
            ));
            if let Some((c, s)) = fresh
                && let Ok(o) = open_initial(&c, packet, None)
            {
                self.keys = Some(Box::new((c, s)));
                self.largest_pn = [None; 2];
                opened = Some(o);
            }
        }
        let Some(o) = opened else {
            return;
        };
        self.decrypted = self.decrypted.saturating_add(1);
        if let Some(l) = self.largest_pn.get_mut(dir) {
            *l = Some(l.map_or(o.packet_number, |x| x.max(o.packet_number)));
        }
        let Some(stream) = self.streams.get_mut(dir) else {
            return;
        };
        let mut overflow = false;
        let frames = crypto_frames(&o.payload, |off, bytes| {
            if !overflow && stream.insert(off, bytes).is_err() {
                overflow = true;
            }
        });
        out.bad_frame |= frames.is_err();
        if !overflow {
            overflow = stream
                .messages(cap, |t, b| out.messages.push((t, b.to_vec())))
                .is_err();
        }
        if overflow {
            out.overflow = true;
            if let Some(s) = self.stopped.get_mut(dir) {
                *s = true;
            }
            *stream = CryptoStream::default();
        }
    }
}

/// Whether `data` starts with a QUIC long header of a version this module decrypts
/// (the cheap test the inspector uses to route a UDP flow here).
pub fn is_quic_initial_candidate(data: &[u8]) -> bool {
    match (data.first(), data.get(1..5)) {
        (Some(&b), Some(&[v0, v1, v2, v3])) => {
            b & 0xc0 == 0xc0 && is_supported_version(u32::from_be_bytes([v0, v1, v2, v3]))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
