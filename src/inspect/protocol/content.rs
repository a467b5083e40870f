//! Compressed and media content: the random-looking payloads that are not encryption.
//!
//! [`content_kind`] reads a file-format magic number at the start of a body;
//! [`http_head`] finds the end of HTTP/1.x headers and the declared `Content-Type` and
//! `Content-Encoding`; [`explain_content`] combines both for the first bytes of a
//! direction. Pure functions over borrowed bytes; nothing allocates.

use memchr::memmem;
use serde::{Deserialize, Serialize};

/// A compressed or media format whose bytes look random without being encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentKind {
    /// gzip (RFC 1952).
    Gzip,
    /// zlib (RFC 1950).
    Zlib,
    /// Raw deflate, known only from `Content-Encoding: deflate` without a zlib header.
    Deflate,
    /// Brotli (RFC 7932), known only from `Content-Encoding: br` (it has no magic).
    Brotli,
    /// Zstandard (RFC 8878).
    Zstd,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// 7-Zip.
    SevenZip,
    /// zip, and the formats built on it (jar, docx, xlsx, apk, ...).
    Zip,
    /// RAR 1.5–5.
    Rar,
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// GIF.
    Gif,
    /// WebP (RIFF container).
    Webp,
    /// ISO base media (mp4, mov, heic, ...).
    IsoBmff,
    /// PDF (streams inside are usually deflated).
    Pdf,
    /// Ogg.
    Ogg,
    /// Matroska / WebM (EBML).
    Matroska,
    /// MP3 with an ID3v2 tag.
    Mp3,
    /// WOFF/WOFF2 web font.
    Font,
    /// Microsoft Cabinet (`MSCF`), e.g. Windows updates.
    Cab,
    /// Unix `ar` archive (Debian packages).
    Ar,
    /// RPM package.
    Rpm,
    /// LZ4 frame.
    Lz4,
    /// Some other image, audio or video type, known only from its declared media type.
    DeclaredMedia,
    /// Some other compressed or archive type, known only from its declared media type.
    DeclaredCompressed,
}

impl ContentKind {
    /// The stable output name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ContentKind::Gzip => "gzip",
            ContentKind::Zlib => "zlib",
            ContentKind::Deflate => "deflate",
            ContentKind::Brotli => "brotli",
            ContentKind::Zstd => "zstd",
            ContentKind::Bzip2 => "bzip2",
            ContentKind::Xz => "xz",
            ContentKind::SevenZip => "seven_zip",
            ContentKind::Zip => "zip",
            ContentKind::Rar => "rar",
            ContentKind::Png => "png",
            ContentKind::Jpeg => "jpeg",
            ContentKind::Gif => "gif",
            ContentKind::Webp => "webp",
            ContentKind::IsoBmff => "iso_bmff",
            ContentKind::Pdf => "pdf",
            ContentKind::Ogg => "ogg",
            ContentKind::Matroska => "matroska",
            ContentKind::Mp3 => "mp3",
            ContentKind::Font => "font",
            ContentKind::Cab => "cab",
            ContentKind::Ar => "ar",
            ContentKind::Rpm => "rpm",
            ContentKind::Lz4 => "lz4",
            ContentKind::DeclaredMedia => "declared_media",
            ContentKind::DeclaredCompressed => "declared_compressed",
        }
    }
}

impl std::fmt::Display for ContentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format whose magic number starts `bytes`, if any.
///
/// Magics are the formats' own (gzip `1f 8b 08` with reserved flag bits clear, zlib `78 01|5e|9c|da`, zstd `28 b5 2f fd`, bzip2 `BZh1-9`, xz `fd 37 7a 58 5a 00`,
/// 7z `37 7a bc af 27 1c`, zip `PK 03 04`/`PK 05 06`/`PK 07 08`, RAR `Rar! 1a 07`, PNG's
/// 8-byte signature, JPEG `ff d8 ff`, `GIF87a`/`GIF89a`, `RIFF....WEBP`, ISO-BMFF `ftyp`
/// at offset 4, `%PDF-`, `OggS`, EBML `1a 45 df a3`, `ID3`, `wOFF`/`wOF2`, cabinet
/// `MSCF`, `!<arch>`, RPM `ed ab ee db`, LZ4 `04 22 4d 18`).
///
/// # Panics
///
/// Never.
pub fn content_kind(bytes: &[u8]) -> Option<ContentKind> {
    let b = bytes;
    let starts = |m: &[u8]| b.starts_with(m);
    if b.len() >= 10 && starts(&[0x1f, 0x8b, 0x08]) && b.get(3).is_some_and(|f| f & 0xe0 == 0) {
        return Some(ContentKind::Gzip);
    }
    // zlib (RFC 1950 §2.2): only the 32 KiB window (CMF 0x78) with the FLG values zlib
    // writes for its four levels, so random bytes match with probability 2^-14 only.
    if matches!(b.get(..2), Some([0x78, 0x01 | 0x5e | 0x9c | 0xda])) {
        return Some(ContentKind::Zlib);
    }
    let table: [(&[u8], ContentKind); 24] = [
        (b"MSCF\0\0\0\0", ContentKind::Cab),
        (b"!<arch>\n", ContentKind::Ar),
        (&[0xed, 0xab, 0xee, 0xdb], ContentKind::Rpm),
        (&[0x04, 0x22, 0x4d, 0x18], ContentKind::Lz4),
        (&[0x28, 0xb5, 0x2f, 0xfd], ContentKind::Zstd),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], ContentKind::Xz),
        (&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c], ContentKind::SevenZip),
        (b"PK\x03\x04", ContentKind::Zip),
        (b"PK\x05\x06", ContentKind::Zip),
        (b"PK\x07\x08", ContentKind::Zip),
        (b"Rar!\x1a\x07", ContentKind::Rar),
        (b"\x89PNG\r\n\x1a\n", ContentKind::Png),
        (&[0xff, 0xd8, 0xff], ContentKind::Jpeg),
        (b"GIF87a", ContentKind::Gif),
        (b"GIF89a", ContentKind::Gif),
        (b"%PDF-", ContentKind::Pdf),
        (b"OggS\x00", ContentKind::Ogg),
        (&[0x1a, 0x45, 0xdf, 0xa3], ContentKind::Matroska),
        (b"ID3", ContentKind::Mp3),
        (b"wOFF", ContentKind::Font),
        (b"wOF2", ContentKind::Font),
        (b"BZh", ContentKind::Bzip2),
        (b"RIFF", ContentKind::Webp),
        (b"\x00\x00\x00", ContentKind::IsoBmff),
    ];
    // The first byte rules out all but one or two magics; comparing it first keeps a
    // slice comparison (a memcmp call) per magic off the path of every payload.
    let first = b.first();
    for (magic, kind) in table {
        if magic.first() != first || !starts(magic) {
            continue;
        }
        let ok = match kind {
            ContentKind::Bzip2 => b.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)),
            ContentKind::Webp => b.get(8..12) == Some(b"WEBP"),
            ContentKind::Mp3 => b.get(3).is_some_and(|v| (2..=4).contains(v)),
            // ISO-BMFF: a box size then `ftyp` at offset 4.
            ContentKind::IsoBmff => b.get(4..8) == Some(b"ftyp"),
            _ => true,
        };
        if ok {
            return Some(kind);
        }
    }
    None
}

/// The head of an HTTP/1.x message: where its body starts and what it declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpHeadView<'a> {
    /// Offset of the first body byte (just after `\r\n\r\n`).
    pub body_offset: usize,
    /// The `Content-Type` value, trimmed, if present.
    pub content_type: Option<&'a [u8]>,
    /// The `Content-Encoding` value, trimmed, if present.
    pub content_encoding: Option<&'a [u8]>,
}

impl HttpHeadView<'_> {
    /// What the declared headers say about the body: a compressing content coding, or a
    /// media/compressed media type. `application/octet-stream` explains nothing.
    pub fn declared_kind(&self) -> Option<ContentKind> {
        if let Some(enc) = self.content_encoding {
            let enc = trim(enc);
            let is = |v: &[u8]| enc.eq_ignore_ascii_case(v);
            if is(b"gzip") || is(b"x-gzip") {
                return Some(ContentKind::Gzip);
            }
            if is(b"br") {
                return Some(ContentKind::Brotli);
            }
            if is(b"deflate") {
                return Some(ContentKind::Deflate);
            }
            if is(b"zstd") {
                return Some(ContentKind::Zstd);
            }
        }
        let ct = self.content_type?;
        let essence = ct.split(|&b| b == b';').next().map(trim).unwrap_or(&[]);
        let lower = essence.to_ascii_lowercase();
        let named: [(&[u8], ContentKind); 12] = [
            (b"image/png", ContentKind::Png),
            (b"image/jpeg", ContentKind::Jpeg),
            (b"image/gif", ContentKind::Gif),
            (b"image/webp", ContentKind::Webp),
            (b"application/pdf", ContentKind::Pdf),
            (b"application/zip", ContentKind::Zip),
            (b"application/gzip", ContentKind::Gzip),
            (b"application/x-gzip", ContentKind::Gzip),
            (b"application/zstd", ContentKind::Zstd),
            (b"application/x-7z-compressed", ContentKind::SevenZip),
            (b"application/x-bzip2", ContentKind::Bzip2),
            (b"application/vnd.rar", ContentKind::Rar),
        ];
        if let Some((_, k)) = named.iter().find(|(n, _)| lower.as_slice() == *n) {
            return Some(*k);
        }
        if lower.starts_with(b"image/")
            || lower.starts_with(b"audio/")
            || lower.starts_with(b"video/")
            || lower.starts_with(b"font/")
        {
            return Some(ContentKind::DeclaredMedia);
        }
        let compressed_words: [&[u8]; 6] = [
            b"zip",
            b"compressed",
            b"archive",
            b"x-xz",
            b"x-tar",
            b"java-archive",
        ];
        if lower.starts_with(b"application/")
            && compressed_words
                .iter()
                .any(|w| memmem::find(&lower, w).is_some())
        {
            return Some(ContentKind::DeclaredCompressed);
        }
        None
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    v.get(start..end.max(start)).unwrap_or(&[])
}

/// Most header bytes searched for the end of an HTTP head.
pub const MAX_HTTP_HEAD: usize = 16 * 1024;

/// Parses the head of an HTTP/1.x request or response at the start of `bytes`: `None`
/// when `bytes` does not start like one or the blank line ending the headers is not within
/// the first [`MAX_HTTP_HEAD`] bytes.
///
/// # Panics
///
/// Never.
pub fn http_head(bytes: &[u8]) -> Option<HttpHeadView<'_>> {
    let window = bytes.get(..bytes.len().min(MAX_HTTP_HEAD))?;
    let looks_http = window.starts_with(b"HTTP/1.")
        || memchr::memchr(b'\n', window).is_some_and(|eol| {
            let line = window.get(..eol).unwrap_or(&[]);
            memmem::find(line, b" HTTP/1.").is_some()
        });
    if !looks_http {
        return None;
    }
    let end = memmem::find(window, b"\r\n\r\n")?;
    let head = window.get(..end)?;
    let mut view = HttpHeadView {
        body_offset: end.checked_add(4)?,
        content_type: None,
        content_encoding: None,
    };
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line.get(..colon).unwrap_or(&[]);
        let value = trim(line.get(colon.saturating_add(1)..).unwrap_or(&[]));
        if name.eq_ignore_ascii_case(b"content-type") {
            view.content_type = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            view.content_encoding = Some(value);
        }
    }
    Some(view)
}

/// What explains random-looking bytes at the start of a direction, if anything: for an
/// HTTP message, the declared encoding or type of its body or the magic at the body's
/// start; otherwise a magic number at the very start (e.g. an FTP data connection carrying
/// a zip file).
///
/// # Panics
///
/// Never.
pub fn explain_content(first_bytes: &[u8]) -> Option<ContentKind> {
    if let Some(head) = http_head(first_bytes) {
        let body = first_bytes.get(head.body_offset..).unwrap_or(&[]);
        return head.declared_kind().or_else(|| content_kind(body));
    }
    content_kind(first_bytes)
}
