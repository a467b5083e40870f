//! Pure first-bytes recognisers: one function per protocol, no state of their own.
//!
//! Each takes the [`Ctx`] of one message (a UDP datagram or the TCP prefix so far) and
//! answers [`Step::Match`], [`Step::More`] or [`Step::No`]. The doc line of each gives the
//! probability that uniformly random bytes produce a `Match` (the false-match rate that
//! matters for AN0404: a random flow named as a known protocol would be explained away).
//! `More` on random input only costs a bounded buffer, never a verdict.

use super::{AppProto, Ctx, Step, Transport};
use crate::flow::Direction;
use memchr::memmem;

type Recogniser = fn(&Ctx<'_>) -> Step;

/// TCP recognisers, in the order they are tried (cheapest and most common first).
const TCP: &[Recogniser] = &[
    tls,
    sslv2,
    ssh,
    http,
    rdp,
    kerberos_tcp,
    smb,
    dcerpc,
    openvpn_tcp,
    dns_tcp,
    banner,
    socks_request,
    telnet,
    sip,
];
/// UDP recognisers, in the order they are tried.
const UDP: &[Recogniser] = &[
    quic,
    dtls,
    wireguard,
    ike,
    openvpn_udp,
    esp_udp,
    dns_udp,
    ntp,
    dhcp,
    kerberos_udp,
    ssdp,
    sip,
    // Last: a fallback for QUIC flows whose handshake preceded the capture.
    quic_short_repeated,
];
/// Recognisers that only confirm a verdict decided by the other direction: their
/// structure is too thin to name a protocol alone.
const CONFIRM_ONLY: &[Recogniser] = &[tls_alert, socks_reply, client_command];

/// Runs every recogniser of the transport over a message with no verdict yet.
pub(crate) fn recognise(ctx: &Ctx<'_>) -> Step {
    let list = match ctx.transport {
        Transport::Tcp => TCP,
        Transport::Udp => UDP,
        Transport::Other(_) => return Step::No,
    };
    let mut more = false;
    for f in list {
        match f(ctx) {
            m @ Step::Match { .. } => return m,
            Step::More => more = true,
            Step::No => {}
        }
    }
    if more { Step::More } else { Step::No }
}

/// Checks a message of the other direction (or a later datagram) against a verdict.
pub(crate) fn confirm(verdict: AppProto, ctx: &Ctx<'_>) -> Step {
    let list = match ctx.transport {
        Transport::Tcp => TCP,
        Transport::Udp => UDP,
        Transport::Other(_) => return Step::No,
    };
    let want = family(verdict);
    let mut more = false;
    for f in list.iter().chain(CONFIRM_ONLY) {
        match f(ctx) {
            Step::Match {
                proto,
                evidence,
                strong,
            } if family(proto) == want => {
                return Step::Match {
                    proto,
                    evidence,
                    strong,
                };
            }
            Step::More => more = true,
            _ => {}
        }
    }
    if more { Step::More } else { Step::No }
}

/// Protocols that share one wire format share a family for confirmation.
fn family(p: AppProto) -> AppProto {
    match p {
        AppProto::DnsOverTls | AppProto::DnsOverHttps => AppProto::Tls,
        AppProto::Mdns | AppProto::Llmnr | AppProto::NetbiosNs => AppProto::Dns,
        other => other,
    }
}

fn weak(proto: AppProto, evidence: &'static str) -> Step {
    Step::Match {
        proto,
        evidence,
        strong: false,
    }
}

fn strong(proto: AppProto, evidence: &'static str) -> Step {
    Step::Match {
        proto,
        evidence,
        strong: true,
    }
}

fn byte(d: &[u8], at: usize) -> Option<u8> {
    d.get(at).copied()
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    be16(d, at).map(u16::swap_bytes)
}

fn be24(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at.checked_add(3)?)?;
    Some(u32::from_be_bytes([0, *b.first()?, *b.get(1)?, *b.get(2)?]))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// `More` when `d` is a proper prefix of something still possible, else `No`.
fn more_if(cond: bool) -> Step {
    if cond { Step::More } else { Step::No }
}

/// Whether `d` starts with `prefix`, or is a shorter prefix of it (`Some(false)`).
fn starts(d: &[u8], prefix: &[u8]) -> Option<bool> {
    let n = d.len().min(prefix.len());
    if d.get(..n) != prefix.get(..n) {
        None
    } else {
        Some(d.len() >= prefix.len())
    }
}

fn ascii_starts_ci(d: &[u8], prefix: &[u8]) -> bool {
    d.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// The first line (without its terminator) if it is complete, printable and short.
fn first_line(d: &[u8], max: usize) -> Result<&[u8], Step> {
    let limit = d.len().min(max);
    let window = d.get(..limit).unwrap_or(&[]);
    match memchr::memchr(b'\n', window) {
        Some(end) => {
            let line = window.get(..end).unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line
                .iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
            {
                Ok(line)
            } else {
                Err(Step::No)
            }
        }
        None => {
            let printable = window
                .iter()
                .all(|&b| b == b'\t' || b == b'\r' || (0x20..0x7f).contains(&b) || b >= 0x80);
            Err(more_if(printable && d.len() < max))
        }
    }
}

// ---------------------------------------------------------------------------------------
// TLS family (TCP)
// ---------------------------------------------------------------------------------------

/// TLS record header `16 03 0{0..4}` + length + handshake type (client_hello to the
/// server, server_hello to the client; either is accepted in either direction, since a
/// capture that missed the SYN swaps the roles) + handshake length + legacy version
/// `03 0{0..4}` (RFC 8446 §5.1, §4). Random match: about 2^-44 (seven fixed or bounded bytes).
fn tls(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    match byte(d, 0) {
        Some(0x16) => {}
        _ => return Step::No,
    }
    if byte(d, 1).is_some_and(|b| b != 3) || byte(d, 2).is_some_and(|b| b > 4) {
        return Step::No;
    }
    // RFC 8446 §5.2: a record is at most 2^14 + 256 bytes; TLS 1.2 allows 2^14 + 2048.
    if be16(d, 3).is_some_and(|l| !(4..=16384 + 2048).contains(&l)) {
        return Step::No;
    }
    // Either hello in either direction: when the capture missed the SYN, the flow's
    // "client" may be the server (costs a factor 2 in the random-match rate).
    if byte(d, 5).is_some_and(|t| t != 1 && t != 2) {
        return Step::No;
    }
    // Handshake length: a ServerHello body is at least 38 bytes, a ClientHello 41.
    if be24(d, 6).is_some_and(|l| l < 38) {
        return Step::No;
    }
    match (byte(d, 9), byte(d, 10)) {
        (Some(3), Some(minor)) if minor <= 4 => match byte(d, 5) {
            Some(1) => weak(AppProto::Tls, "tls record header 16 03 0x + client_hello"),
            _ => weak(AppProto::Tls, "tls record header 16 03 0x + server_hello"),
        },
        (Some(_), Some(_)) => Step::No,
        (Some(3), None) | (None, _) => Step::More,
        (Some(_), None) => Step::No,
    }
}

/// A TLS alert record from the server (`15 03 0x 00 02`): confirms a TLS client only.
/// Random match: 2^-37, and it never decides a verdict alone.
fn tls_alert(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if ctx.transport != Transport::Tcp || ctx.dir != Direction::ToClient {
        return Step::No;
    }
    match starts(d, &[0x15, 0x03]) {
        Some(true) if byte(d, 2).is_some_and(|b| b <= 4) && be16(d, 3) == Some(2) => {
            weak(AppProto::Tls, "tls alert record 15 03 0x")
        }
        Some(false) => Step::More,
        _ => Step::No,
    }
}

/// SSLv2-compatible ClientHello (RFC 6101 appendix E.2 / RFC 5246 appendix E.2): 2-byte
/// header with the high bit set, msg type 1, version, then cipher-spec, session-id and
/// challenge lengths that must add up to the record length. Random match: about 2^-50.
fn sslv2(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if ctx.dir != Direction::ToServer {
        return Step::No;
    }
    let Some(b0) = byte(d, 0) else {
        return Step::More;
    };
    if b0 & 0x80 == 0 || byte(d, 2).is_some_and(|t| t != 1) {
        return Step::No;
    }
    let (Some(b1), Some(ver), Some(cs), Some(sid), Some(chal)) =
        (byte(d, 1), be16(d, 3), be16(d, 5), be16(d, 7), be16(d, 9))
    else {
        return more_if(d.len() < 11);
    };
    let rec_len = (u32::from(b0 & 0x7f) << 8) | u32::from(b1);
    let version_ok = ver == 0x0002 || (0x0300..=0x0304).contains(&ver);
    let parts = 9 + u32::from(cs) + u32::from(sid) + u32::from(chal);
    if version_ok
        && cs > 0
        && cs.is_multiple_of(3)
        && (sid == 0 || sid == 16)
        && (16..=32).contains(&chal)
        && parts == rec_len
    {
        weak(AppProto::Tls, "sslv2-compatible client_hello")
    } else {
        Step::No
    }
}

// ---------------------------------------------------------------------------------------
// SSH, RDP, HTTP, SIP, SSDP
// ---------------------------------------------------------------------------------------

/// SSH identification string `SSH-<digit>.<digits>-` (RFC 4253 §4.2).
/// Random match: 2^-56 (seven fixed-class bytes).
fn ssh(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    match starts(d, b"SSH-") {
        None => return Step::No,
        Some(false) => return Step::More,
        Some(true) => {}
    }
    let rest = d.get(4..).unwrap_or(&[]);
    // protoversion: digit '.' digits '-'
    let mut i = 0usize;
    let mut state = 0u8; // 0: major digit, 1: '.', 2: minor digits, 3: done
    for &b in rest.iter().take(8) {
        match (state, b) {
            (0, b'1' | b'2') => state = 1,
            (1, b'.') => state = 2,
            (2, b'0'..=b'9') => {}
            (2, b'-') if i >= 3 => {
                state = 3;
                break;
            }
            _ => return Step::No,
        }
        i = i.saturating_add(1);
    }
    match state {
        3 => weak(AppProto::Ssh, "ssh identification string SSH-x.y-"),
        _ => more_if(rest.len() < 8),
    }
}

/// TPKT version 3 (RFC 1006) whose length equals the bytes present, carrying an X.224
/// Connection Request or Connection Confirm (either direction) whose length
/// indicator matches (ITU-T X.224 §13.3, [MS-RDPBCGR] 2.2.1.1). Random match: about 2^-44.
fn rdp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    match starts(d, &[0x03, 0x00]) {
        None => return Step::No,
        Some(false) => return Step::More,
        Some(true) => {}
    }
    let (Some(len), Some(li), Some(code)) = (be16(d, 2), byte(d, 4), byte(d, 5)) else {
        return Step::More;
    };
    let len = usize::from(len);
    // CR (0xe0) or CC (0xd0), in either direction (roles may be swapped, see `tls`).
    if len >= 11 && usize::from(li) + 5 == len && matches!(code & 0xf0, 0xe0 | 0xd0) {
        if d.len() < len {
            return Step::More;
        }
        weak(AppProto::Rdp, "tpkt + x.224 connection request/confirm")
    } else {
        Step::No
    }
}

const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"SEARCH ",
    b"REPORT ",
];

/// HTTP/1.x request line `METHOD SP target SP HTTP/1.d` or status line `HTTP/1.d NNN`
/// (RFC 9112 §3, §4), or the HTTP/2 cleartext preface (RFC 9113 §3.4).
/// Random match: below 2^-60 (a method token, a space and `HTTP/1.`).
fn http(ctx: &Ctx<'_>) -> Step {
    http_like(ctx, AppProto::Http)
}

/// SSDP: HTTP-shaped requests (`M-SEARCH * HTTP/1.1`, `NOTIFY * HTTP/1.1`) and `HTTP/1.1`
/// responses over UDP (UPnP Device Architecture 1.1 §1). Random match: below 2^-60.
fn ssdp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if ascii_starts_ci(d, b"M-SEARCH * HTTP/1.") || ascii_starts_ci(d, b"NOTIFY * HTTP/1.") {
        return weak(AppProto::Ssdp, "ssdp request line over udp");
    }
    match http_like(ctx, AppProto::Ssdp) {
        Step::Match { .. } => weak(AppProto::Ssdp, "http-shaped message over udp"),
        _ => Step::No,
    }
}

fn http_like(ctx: &Ctx<'_>, proto: AppProto) -> Step {
    let d = ctx.data;
    if let Some(done) = starts(d, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") {
        return if done {
            weak(proto, "http/2 cleartext connection preface")
        } else {
            Step::More
        };
    }
    if let Some(done) = starts(d, b"HTTP/1.") {
        if !done {
            return Step::More;
        }
        let status_ok = byte(d, 7).is_some_and(|b| b.is_ascii_digit())
            && byte(d, 8) == Some(b' ')
            && (9..12).all(|i| byte(d, i).is_some_and(|b| b.is_ascii_digit()));
        return if status_ok {
            weak(proto, "http/1.x status line")
        } else {
            more_if(d.len() < 12)
        };
    }
    let mut method_prefix = false;
    for m in HTTP_METHODS {
        match starts(d, m) {
            Some(true) => return http_request_line(d, m.len(), proto),
            Some(false) => method_prefix = true,
            None => {}
        }
    }
    more_if(method_prefix)
}

fn http_request_line(d: &[u8], method_len: usize, proto: AppProto) -> Step {
    let line = match first_line(d, super::MAX_TCP_PREFIX) {
        Ok(line) => line,
        Err(Step::More) => {
            // A very long target: accept once enough of it is printable.
            let target = d.get(method_len..).unwrap_or(&[]);
            let plausible = matches!(target.first(), Some(b'/' | b'*' | b'h' | b'H'))
                && target.len() >= 256
                && !target.contains(&b' ');
            return if plausible {
                weak(proto, "http/1.x request line (long target)")
            } else {
                Step::More
            };
        }
        Err(other) => return other,
    };
    let rest = line.get(method_len..).unwrap_or(&[]);
    let Some(sp) = memchr::memrchr(b' ', rest) else {
        // HTTP/0.9 simple request (RFC 1945 §4.1): `GET SP /path CRLF`.
        let simple = method_len == 4
            && rest.first() == Some(&b'/')
            && rest.iter().all(|b| (0x21..0x7f).contains(b))
            && d.starts_with(b"GET ");
        return if simple {
            weak(proto, "http/0.9 simple request")
        } else {
            Step::No
        };
    };
    let target = rest.get(..sp).unwrap_or(&[]);
    let version = rest.get(sp.saturating_add(1)..).unwrap_or(&[]);
    let version_ok = version.len() == 8
        && (version.starts_with(b"HTTP/1.") || version.starts_with(b"HTTP/0."))
        && version.get(7).is_some_and(|b| b.is_ascii_digit());
    if version_ok && !target.is_empty() && !target.contains(&b' ') {
        weak(proto, "http/1.x request line")
    } else {
        Step::No
    }
}

const SIP_METHODS: &[&[u8]] = &[
    b"INVITE ",
    b"REGISTER ",
    b"OPTIONS ",
    b"ACK ",
    b"BYE ",
    b"CANCEL ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"MESSAGE ",
    b"INFO ",
    b"PRACK ",
    b"UPDATE ",
    b"REFER ",
    b"PUBLISH ",
];

/// SIP request line `METHOD SP sip:... SP SIP/2.0` or status line `SIP/2.0 NNN`
/// (RFC 3261 §7.1, §7.2), on UDP or TCP. Random match: below 2^-60.
fn sip(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if let Some(done) = starts(d, b"SIP/2.0 ") {
        if !done {
            return Step::More;
        }
        let ok = (8..11).all(|i| byte(d, i).is_some_and(|b| b.is_ascii_digit()));
        return if ok {
            weak(AppProto::Sip, "sip status line")
        } else {
            more_if(d.len() < 11)
        };
    }
    for m in SIP_METHODS {
        if starts(d, m) == Some(true) {
            let line = match first_line(d, super::MAX_TCP_PREFIX) {
                Ok(l) => l,
                Err(s) => return s,
            };
            let rest = line.get(m.len()..).unwrap_or(&[]);
            return if (ascii_starts_ci(rest, b"sip:") || ascii_starts_ci(rest, b"sips:"))
                && line.ends_with(b" SIP/2.0")
            {
                weak(AppProto::Sip, "sip request line")
            } else {
                Step::No
            };
        }
    }
    Step::No
}

// ---------------------------------------------------------------------------------------
// Cleartext banners and commands (SMTP, FTP, IMAP, POP3), Telnet, SOCKS
// ---------------------------------------------------------------------------------------

/// Server greetings: `220 `/`220-` (SMTP RFC 5321 §4.2, FTP RFC 959 §4.2), `* OK `/
/// `* PREAUTH ` (IMAP RFC 9051 §7.1), `+OK` (POP3 RFC 1939 §4), each a complete printable
/// first line. Random match: below 2^-50 (four fixed bytes and an all-printable line).
fn banner(ctx: &Ctx<'_>) -> Step {
    // Either direction: the roles are swapped when the capture missed the SYN.
    let d = ctx.data;
    let candidates: [(&[u8], AppProto); 5] = [
        (b"220 ", AppProto::Smtp),
        (b"220-", AppProto::Smtp),
        (b"* OK ", AppProto::Imap),
        (b"* PREAUTH ", AppProto::Imap),
        (b"+OK", AppProto::Pop3),
    ];
    let mut more = false;
    for (prefix, proto) in candidates {
        match starts(d, prefix) {
            Some(true) => {
                let line = match first_line(d, super::MAX_TCP_PREFIX) {
                    Ok(l) => l,
                    Err(s) => return s,
                };
                return match proto {
                    AppProto::Smtp => {
                        let ftp = memmem::find(&line.to_ascii_lowercase(), b"ftp").is_some();
                        let smtp = memmem::find(&line.to_ascii_lowercase(), b"smtp").is_some();
                        if !smtp && (ftp || ctx.port_is(21)) {
                            weak(AppProto::Ftp, "ftp 220 greeting")
                        } else {
                            weak(AppProto::Smtp, "smtp 220 greeting")
                        }
                    }
                    AppProto::Imap => weak(AppProto::Imap, "imap * ok greeting"),
                    _ => {
                        if line.len() == 3 || line.get(3) == Some(&b' ') {
                            weak(AppProto::Pop3, "pop3 +ok greeting")
                        } else {
                            Step::No
                        }
                    }
                };
            }
            Some(false) => more = true,
            None => {}
        }
    }
    more_if(more)
}

/// A client command that confirms a greeting: `EHLO`/`HELO` (SMTP), `USER`/`AUTH`/
/// `FEAT`/`SYST`/`OPTS` (FTP), `CAPA`/`USER`/`APOP`/`STLS`/`AUTH` (POP3), `tag SP word`
/// (IMAP). Never decides a verdict alone.
fn client_command(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if ctx.dir != Direction::ToServer || ctx.transport != Transport::Tcp {
        return Step::No;
    }
    let line = match first_line(d, 256) {
        Ok(l) => l,
        Err(s) => return s,
    };
    let is = |w: &[u8]| ascii_starts_ci(line, w);
    if is(b"EHLO ") || is(b"HELO ") || is(b"EHLO\r") {
        return weak(AppProto::Smtp, "smtp ehlo/helo command");
    }
    if is(b"USER ") || is(b"AUTH ") || is(b"FEAT") || is(b"SYST") || is(b"OPTS ") {
        return weak(AppProto::Ftp, "ftp command");
    }
    if is(b"CAPA") || is(b"APOP ") || is(b"STLS") {
        return weak(AppProto::Pop3, "pop3 command");
    }
    // IMAP: tag SP command, tag made of atom characters.
    if let Some(sp) = memchr::memchr(b' ', line) {
        let tag = line.get(..sp).unwrap_or(&[]);
        let cmd = line.get(sp.saturating_add(1)..).unwrap_or(&[]);
        if !tag.is_empty()
            && tag.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'.')
            && cmd.first().is_some_and(|b| b.is_ascii_alphabetic())
        {
            return weak(AppProto::Imap, "imap tagged command");
        }
    }
    Step::No
}

/// Telnet option negotiation: consecutive `IAC (WILL|WONT|DO|DONT|SB) option` triples
/// (RFC 854, RFC 855) filling the message, or at least two of them. Random match: 2^-16
/// for a message of exactly three bytes, 2^-33 otherwise.
fn telnet(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let mut n = 0usize;
    let mut at = 0usize;
    while let Some(0xff) = byte(d, at) {
        let (Some(cmd), Some(opt)) = (byte(d, at.saturating_add(1)), byte(d, at.saturating_add(2)))
        else {
            return if n == 0 { Step::More } else { Step::No };
        };
        if !(0xfa..=0xfe).contains(&cmd) || (opt > 49 && opt != 0xff) {
            return Step::No;
        }
        n = n.saturating_add(1);
        at = at.saturating_add(3);
        if n >= 2 {
            break;
        }
    }
    if n >= 2 || (n == 1 && at == d.len()) {
        weak(AppProto::Telnet, "telnet iac option negotiation")
    } else {
        Step::No
    }
}

/// SOCKS5 greeting `05 n methods[n]` with exactly `2 + n` bytes (RFC 1928 §3), or a
/// SOCKS4/4a request `04 01|02 port ip userid 00` ending the message.
/// Random match: about 2^-21 for the few lengths it allows, 2^-23 for SOCKS4.
fn socks_request(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if ctx.dir != Direction::ToServer {
        return Step::No;
    }
    match byte(d, 0) {
        Some(5) => {
            let Some(n) = byte(d, 1) else {
                return Step::More;
            };
            let methods = d.get(2..).unwrap_or(&[]);
            if (1..=9).contains(&n)
                && methods.len() == usize::from(n)
                && methods
                    .iter()
                    .all(|&m| m <= 3 || (0x80..=0xfe).contains(&m))
            {
                weak(AppProto::Socks, "socks5 method selection request")
            } else {
                more_if(methods.len() < usize::from(n))
            }
        }
        Some(4) => {
            if byte(d, 1).is_some_and(|c| c != 1 && c != 2) {
                return Step::No;
            }
            if d.len() < 9 {
                return Step::More;
            }
            let tail = d.get(8..).unwrap_or(&[]);
            let Some(nul) = memchr::memchr(0, tail) else {
                return more_if(tail.iter().all(|b| (0x20..0x7f).contains(b)));
            };
            let userid = tail.get(..nul).unwrap_or(&[]);
            let after = tail.get(nul.saturating_add(1)..).unwrap_or(&[]);
            let socks4a = d.get(4..7) == Some(&[0, 0, 0]) && byte(d, 7).is_some_and(|b| b != 0);
            let printable = |s: &[u8]| s.iter().all(|b| (0x20..0x7f).contains(b));
            let ok = printable(userid)
                && if socks4a {
                    after.last() == Some(&0)
                        && after.len() >= 2
                        && printable(after.get(..after.len().saturating_sub(1)).unwrap_or(&[]))
                } else {
                    after.is_empty()
                };
            if ok {
                weak(AppProto::Socks, "socks4 connect request")
            } else {
                Step::No
            }
        }
        None => Step::More,
        Some(_) => Step::No,
    }
}

/// SOCKS replies: `05 00|01|02|ff` (2 bytes) or the 8-byte SOCKS4 reply `00 5a..5d`.
/// Never decides a verdict alone.
fn socks_reply(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if ctx.dir != Direction::ToClient {
        return Step::No;
    }
    let ok5 =
        d.len() >= 2 && byte(d, 0) == Some(5) && byte(d, 1).is_some_and(|m| m <= 2 || m == 0xff);
    let ok4 = d.len() >= 8
        && byte(d, 0) == Some(0)
        && byte(d, 1).is_some_and(|c| (0x5a..=0x5d).contains(&c));
    if ok5 || ok4 {
        weak(AppProto::Socks, "socks reply")
    } else {
        more_if(d.len() < 2)
    }
}

// ---------------------------------------------------------------------------------------
// Kerberos, SMB, DCE/RPC
// ---------------------------------------------------------------------------------------

/// Length of a DER length field at `at`: (header bytes, content length).
fn der_len(d: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = byte(d, at)?;
    match first {
        0..=0x7f => Some((1, usize::from(first))),
        0x81 => Some((2, usize::from(byte(d, at.checked_add(1)?)?))),
        0x82 => Some((3, usize::from(be16(d, at.checked_add(1)?)?))),
        0x83 => Some((4, usize::try_from(be24(d, at.checked_add(1)?)?).ok()?)),
        _ => None,
    }
}

/// A Kerberos message at `d`: APPLICATION tag 10–14 or 30 (RFC 4120 §5.4.1, §5.5.1,
/// §5.9.1) whose DER length spans `total` bytes, a SEQUENCE, then `pvno [0|1] INTEGER 5`.
fn krb_message(d: &[u8], total: usize) -> Step {
    let Some(tag) = byte(d, 0) else {
        return Step::More;
    };
    if !matches!(tag, 0x6a..=0x6e | 0x7e) {
        return Step::No;
    }
    let Some((h, len)) = der_len(d, 1) else {
        return more_if(d.len() < 5);
    };
    if h.saturating_add(1).saturating_add(len) != total {
        return Step::No;
    }
    let seq = h.saturating_add(1);
    if byte(d, seq).is_some_and(|b| b != 0x30) {
        return Step::No;
    }
    let Some((h2, _)) = der_len(d, seq.saturating_add(1)) else {
        return more_if(d.len() < seq.saturating_add(5));
    };
    let body = seq.saturating_add(1).saturating_add(h2);
    // KDC-REQ (AS-REQ 10, TGS-REQ 12) puts pvno at [1]; the others at [0].
    let pvno_tag = if tag == 0x6a || tag == 0x6c {
        0xa1
    } else {
        0xa0
    };
    let want = [pvno_tag, 0x03, 0x02, 0x01, 0x05];
    match d.get(body..body.saturating_add(5)) {
        Some(got) if got == want => weak(
            AppProto::Kerberos,
            "kerberos asn.1 application tag + pvno 5",
        ),
        Some(_) => Step::No,
        None => more_if(d.get(body..).is_none_or(|p| want.starts_with(p))),
    }
}

/// Kerberos over TCP: 4-byte record length (high bit clear) equal to the message
/// (RFC 4120 §7.2.2). Random match: about 2^-70.
fn kerberos_tcp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let Some(len) = be32(d, 0) else {
        return more_if(d.first().is_none_or(|b| *b == 0));
    };
    let Ok(len) = usize::try_from(len) else {
        return Step::No;
    };
    if len == 0 || len > 1 << 20 {
        return Step::No;
    }
    krb_message(d.get(4..).unwrap_or(&[]), len)
}

/// Kerberos over UDP: the datagram is one message. Random match: about 2^-60.
fn kerberos_udp(ctx: &Ctx<'_>) -> Step {
    match krb_message(ctx.data, ctx.data.len()) {
        Step::More => Step::No,
        s => s,
    }
}

/// SMB over TCP/445 or a NetBIOS session (RFC 1002 §4.3.1): message type 0, 24-bit
/// length, then the protocol id `\xffSMB` (SMB1), `\xfeSMB` (SMB2), `\xfdSMB` (SMB3
/// transform: encrypted) or `\xfcSMB` (compressed) ([MS-SMB2] 2.2.1, 2.2.41); or a
/// NetBIOS session request (type 0x81) with two first-level-encoded names.
/// Random match: about 2^-40.
fn smb(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    match byte(d, 0) {
        Some(0x00) => {
            let Some(len) = be24(d, 1) else {
                return Step::More;
            };
            if len < 32 {
                return Step::No;
            }
            let magic = d.get(4..8);
            match magic {
                Some([0xff, b'S', b'M', b'B']) => {
                    weak(AppProto::Smb, "netbios session + smb1 header")
                }
                Some([0xfe, b'S', b'M', b'B']) => {
                    weak(AppProto::Smb, "netbios session + smb2 header")
                }
                Some([0xfd, b'S', b'M', b'B']) => weak(
                    AppProto::Smb,
                    "netbios session + smb3 transform header (encrypted)",
                ),
                Some([0xfc, b'S', b'M', b'B']) => {
                    weak(AppProto::Smb, "netbios session + smb2 compression header")
                }
                Some(_) => Step::No,
                None => {
                    let have = d.get(4..).unwrap_or(&[]);
                    let any = [0xffu8, 0xfe, 0xfd, 0xfc].iter().any(|&m| {
                        let full = [m, b'S', b'M', b'B'];
                        full.starts_with(have)
                    });
                    more_if(any)
                }
            }
        }
        Some(0x81) if ctx.dir == Direction::ToServer => {
            if d.len() < 38 {
                return more_if(byte(d, 1).is_none_or(|f| f == 0));
            }
            let encoded = d.get(5..37).unwrap_or(&[]);
            if byte(d, 1) == Some(0)
                && be16(d, 2).is_some_and(|l| usize::from(l) + 4 <= d.len() && l >= 68)
                && byte(d, 4) == Some(0x20)
                && encoded.iter().all(|b| (b'A'..=b'P').contains(b))
            {
                weak(AppProto::Smb, "netbios session request")
            } else {
                Step::No
            }
        }
        None => Step::More,
        Some(_) => Step::No,
    }
}

/// Connection-oriented DCE/RPC PDU header (C706 §12.6.3.1): version 5.0/5.1, PDU type,
/// data representation, and a fragment length of at least the header, at least the auth
/// length. Client PDUs: request, bind, alter_context; server: response, fault, bind_ack,
/// bind_nak, alter_context_resp. Random match: about 2^-42.
fn dcerpc(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if byte(d, 0).is_some_and(|b| b != 5) || byte(d, 1).is_some_and(|b| b > 1) {
        return Step::No;
    }
    let (Some(ptype), Some(drep0), Some(drep1), Some(drep2), Some(drep3)) =
        (byte(d, 2), byte(d, 4), byte(d, 5), byte(d, 6), byte(d, 7))
    else {
        return more_if(d.len() < 8);
    };
    // Client PDUs (request, bind, alter_context) or server PDUs (response, fault,
    // bind_ack, bind_nak, alter_context_resp), in either direction.
    let ptype_ok = matches!(ptype, 0 | 2 | 3 | 11..=15);
    if !ptype_ok || drep0 & 0xef != 0 || drep1 > 3 || drep2 != 0 || drep3 != 0 {
        return Step::No;
    }
    let little = drep0 & 0x10 != 0;
    let rd = |at| if little { le16(d, at) } else { be16(d, at) };
    let (Some(frag), Some(auth)) = (rd(8), rd(10)) else {
        return Step::More;
    };
    if frag >= 16 && auth <= frag.saturating_sub(16) {
        weak(AppProto::Dcerpc, "dce/rpc connection-oriented pdu header")
    } else {
        Step::No
    }
}

// ---------------------------------------------------------------------------------------
// OpenVPN
// ---------------------------------------------------------------------------------------

/// OpenVPN opcodes (`openvpn/src/openvpn/ssl_pkt.h`): the high 5 bits of the first byte.
mod ovpn {
    pub const HARD_RESET_CLIENT_V1: u8 = 1;
    pub const HARD_RESET_SERVER_V1: u8 = 2;
    pub const SOFT_RESET_V1: u8 = 3;
    pub const CONTROL_V1: u8 = 4;
    pub const ACK_V1: u8 = 5;
    pub const HARD_RESET_CLIENT_V2: u8 = 7;
    pub const HARD_RESET_SERVER_V2: u8 = 8;
    pub const HARD_RESET_CLIENT_V3: u8 = 10;
    pub const CONTROL_WKC_V1: u8 = 11;

    /// Whether `op` is a control-channel opcode (anything but data packets 6 and 9).
    pub fn is_control(op: u8) -> bool {
        matches!(
            op,
            HARD_RESET_CLIENT_V1
                | HARD_RESET_SERVER_V1
                | SOFT_RESET_V1
                | CONTROL_V1
                | ACK_V1
                | HARD_RESET_CLIENT_V2
                | HARD_RESET_SERVER_V2
                | HARD_RESET_CLIENT_V3
                | CONTROL_WKC_V1
        )
    }

    /// Whether `b` (opcode and key id) is a client's hard reset with key id 0.
    pub fn is_client_reset(b: u8) -> bool {
        b & 7 == 0
            && matches!(
                b >> 3,
                HARD_RESET_CLIENT_V1 | HARD_RESET_CLIENT_V2 | HARD_RESET_CLIENT_V3
            )
    }

    /// Whether `b` is a server's hard reset with key id 0.
    pub fn is_server_reset(b: u8) -> bool {
        b & 7 == 0 && matches!(b >> 3, HARD_RESET_SERVER_V1 | HARD_RESET_SERVER_V2)
    }

    /// Whether `b` is a hard reset of either side. Either is accepted as the first packet
    /// of either direction, since a capture that missed the client's first packet swaps
    /// the roles.
    pub fn is_reset(b: u8) -> bool {
        is_client_reset(b) || is_server_reset(b)
    }
}

/// One OpenVPN control packet `op|key, session_id[8], ...`: checks the opcode of a
/// direction's first packet (a hard reset) and, when the client's first packet is known,
/// whether the server's reply echoes the client's session id (the ACK's remote session
/// id, RFC-less but fixed by OpenVPN's `ssl_pkt.c`), or whether a later packet of the
/// same direction repeats the session id.
fn openvpn_packet(
    ctx: &Ctx<'_>,
    pkt: &[u8],
    first_of_dir: bool,
    own_first_sid: Option<&[u8]>,
    peer_first_sid: Option<&[u8]>,
) -> Step {
    let Some(b0) = byte(pkt, 0) else {
        return Step::More;
    };
    if pkt.len() < 9 {
        return more_if(ctx.transport == Transport::Tcp);
    }
    let sid = pkt.get(1..9).unwrap_or(&[]);
    if first_of_dir {
        if !ovpn::is_reset(b0) {
            return Step::No;
        }
        if let Some(client_sid) = peer_first_sid
            && ovpn::is_server_reset(b0)
            && client_sid.len() == 8
            && memmem::find(pkt.get(9..).unwrap_or(&[]), client_sid).is_some()
        {
            return strong(
                AppProto::Openvpn,
                "openvpn hard reset; server echoes the client session id",
            );
        }
        return Step::More;
    }
    // A later packet of the same direction: a control opcode and the same session id.
    if ovpn::is_control(b0 >> 3) && own_first_sid.is_some_and(|s| s == sid) {
        return weak(
            AppProto::Openvpn,
            "openvpn hard reset then control packets repeating the session id",
        );
    }
    Step::No
}

/// OpenVPN over UDP: the first datagram of a direction is a hard reset; it is named only
/// when the server echoes the client's session id (random match 2^-64) or a later datagram
/// of the same direction repeats it with a control opcode (random match 2^-70).
fn openvpn_udp(ctx: &Ctx<'_>) -> Step {
    let own = ctx.own_first.filter(|h| h.bytes().len() >= 9);
    let peer = ctx.peer_first.filter(|h| {
        h.bytes().len() >= 9 && h.bytes().first().is_some_and(|&b| ovpn::is_client_reset(b))
    });
    let own_sid = own
        .filter(|h| h.bytes().first().is_some_and(|&b| ovpn::is_reset(b)))
        .and_then(|h| h.bytes().get(1..9));
    if ctx.index > 0 && own_sid.is_none() {
        return Step::No;
    }
    openvpn_packet(
        ctx,
        ctx.data,
        ctx.index == 0,
        own_sid,
        peer.and_then(|h| h.bytes().get(1..9)),
    )
}

/// OpenVPN over TCP: packets carry a 2-byte length prefix (`openvpn/src/openvpn/ssl.c`,
/// "packet length" for stream transports). The first packet of the stream must be a hard
/// reset; the verdict needs the session-id echo or a second framed packet repeating it.
/// Random match: 2^-64.
fn openvpn_tcp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let Some(len) = be16(d, 0) else {
        return Step::More;
    };
    let len = usize::from(len);
    if !(9..=1600).contains(&len) {
        return Step::No;
    }
    let Some(b0) = byte(d, 2) else {
        return Step::More;
    };
    if !ovpn::is_reset(b0) {
        return Step::No;
    }
    let first = d.get(2..len.saturating_add(2).min(d.len())).unwrap_or(&[]);
    let peer_sid = ctx
        .peer_first
        .map(|h| h.bytes())
        .filter(|b| b.get(2).is_some_and(|&x| ovpn::is_client_reset(x)))
        .and_then(|b| b.get(3..11));
    match openvpn_packet(ctx, first, true, None, peer_sid) {
        m @ Step::Match { .. } => return m,
        Step::No => return Step::No,
        Step::More => {}
    }
    // A second framed packet in the same direction.
    let next = len.saturating_add(2);
    let Some(len2) = be16(d, next) else {
        return Step::More;
    };
    let start2 = next.saturating_add(2);
    let second = d
        .get(start2..start2.saturating_add(usize::from(len2)).min(d.len()))
        .unwrap_or(&[]);
    openvpn_packet(ctx, second, false, first.get(1..9), None)
}

// ---------------------------------------------------------------------------------------
// QUIC, DTLS, WireGuard, IKE, ESP-in-UDP
// ---------------------------------------------------------------------------------------

/// QUIC long header (RFC 9000 §17.2, RFC 9369 for v2, RFC 8999 invariants): form and
/// fixed bits, a known version (v1, v2, drafts `ff0000xx`, Google `Q046+`/`T05x`,
/// mvfst `faceb00x`), connection-id lengths ≤ 20 that fit; a client's first packet must
/// be an Initial padded to ≥ 1200 bytes (RFC 9000 §14.1). Also Google QUIC ≤ Q043's
/// public header with a `Q0dd` version. Random match: about 2^-32.
fn quic(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let Some(b0) = byte(d, 0) else {
        return Step::No;
    };
    if b0 & 0x80 == 0 {
        return gquic_legacy(ctx);
    }
    let Some(version) = be32(d, 1) else {
        return Step::No;
    };
    let ietf = version == 1 || version == 0x6b33_43cf || (version >> 8) == 0x00ff_0000;
    let google = {
        let [a, b, c, e] = version.to_be_bytes();
        (a == b'Q' || a == b'T') && b == b'0' && c.is_ascii_digit() && e.is_ascii_digit()
    };
    let mvfst = (version >> 4) == 0x0fac_eb00;
    let negotiation = version == 0 && ctx.dir == Direction::ToClient;
    if !(ietf || google || mvfst || negotiation) {
        return Step::No;
    }
    if !negotiation && b0 & 0x40 == 0 {
        return Step::No;
    }
    let (Some(dcid_len), Some(scid_len)) = (
        byte(d, 5),
        byte(
            d,
            6usize.saturating_add(usize::from(byte(d, 5).unwrap_or(0))),
        ),
    ) else {
        return Step::No;
    };
    if dcid_len > 20 || scid_len > 20 {
        return Step::No;
    }
    let after_cids = 7usize
        .saturating_add(usize::from(dcid_len))
        .saturating_add(usize::from(scid_len));
    if after_cids > d.len() {
        return Step::No;
    }
    if negotiation {
        let rest = d.len().saturating_sub(after_cids);
        return if rest >= 4 && rest.is_multiple_of(4) {
            weak(AppProto::Quic, "quic version negotiation")
        } else {
            Step::No
        };
    }
    let ptype = (b0 >> 4) & 3;
    let initial = if version == 0x6b33_43cf {
        ptype == 1
    } else {
        ptype == 0
    };
    match ctx.dir {
        Direction::ToServer if initial && d.len() >= 1200 => weak(
            AppProto::Quic,
            "quic long header initial, known version, padded to >= 1200 bytes",
        ),
        Direction::ToServer => Step::No,
        Direction::ToClient => weak(
            AppProto::Quic,
            "quic long header from server, known version",
        ),
    }
}

/// Google QUIC up to Q043: public flags (version bit 0x01, 8-byte connection id 0x08,
/// reserved 0x80 clear), connection id, then `Q0dd`; a client hello is padded like
/// IETF QUIC. Server packets echo the client's connection id.
fn gquic_legacy(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let Some(flags) = byte(d, 0) else {
        return Step::No;
    };
    match ctx.dir {
        Direction::ToServer => {
            let version = d.get(9..13);
            let version_ok = matches!(version, Some([b'Q', b'0', x, y]) if x.is_ascii_digit() && y.is_ascii_digit());
            if flags & 0x09 == 0x09 && flags & 0x80 == 0 && version_ok && d.len() >= 1200 {
                weak(
                    AppProto::Quic,
                    "google quic public header with version Q0xx",
                )
            } else {
                Step::No
            }
        }
        Direction::ToClient => {
            let client = ctx.peer_first.map(|h| h.bytes());
            let client_cid = client
                .filter(|b| b.first().is_some_and(|f| f & 0x09 == 0x09))
                .and_then(|b| b.get(1..9));
            if flags & 0x08 != 0
                && flags & 0x80 == 0
                && client_cid.is_some()
                && d.get(1..9) == client_cid
            {
                strong(
                    AppProto::Quic,
                    "google quic server echoes the client connection id",
                )
            } else {
                Step::No
            }
        }
    }
}

/// QUIC short header (RFC 9000 §17.3: form bit 0, fixed bit 1) or Google QUIC public
/// header with the connection-id flag, in two datagrams of one direction that carry the
/// same 8 bytes after the first byte (the connection id). Only on udp/443: a repeated
/// 8-byte prefix is thin proof alone. Names QUIC flows whose handshake preceded the
/// capture. Random match: 2^-64 (and only on udp/443).
fn quic_short_repeated(ctx: &Ctx<'_>) -> Step {
    if !ctx.port_is(443) {
        return Step::No;
    }
    let d = ctx.data;
    let shaped = |b: u8| b & 0x80 == 0 && (b & 0x40 != 0 || b & 0x08 != 0);
    if !byte(d, 0).is_some_and(shaped) || d.len() < 20 {
        return Step::No;
    }
    if ctx.index == 0 {
        return Step::More;
    }
    let own = ctx.own_first.map(|h| h.bytes());
    match own {
        Some(o) if o.first().is_some_and(|&b| shaped(b)) && o.get(1..9) == d.get(1..9) => weak(
            AppProto::Quic,
            "quic short-header packets repeating an 8-byte connection id on udp/443",
        ),
        _ => Step::No,
    }
}

/// DTLS record header (RFC 6347 §4.1, RFC 9147 §4): content type 20–25, version
/// `fe ff|fd|fc`, epoch, 48-bit sequence, length fitting the datagram; a first message
/// must be a handshake in epoch 0 (ClientHello to the server; ServerHello or
/// HelloVerifyRequest to the client). Random match: about 2^-45.
fn dtls(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let (Some(ct), Some(v0), Some(v1), Some(epoch), Some(len)) =
        (byte(d, 0), byte(d, 1), byte(d, 2), be16(d, 3), be16(d, 11))
    else {
        return Step::No;
    };
    if !(20..=25).contains(&ct) || v0 != 0xfe || !matches!(v1, 0xff | 0xfd | 0xfc) {
        return Step::No;
    }
    if 13usize.saturating_add(usize::from(len)) > d.len() || len == 0 {
        return Step::No;
    }
    let hs = byte(d, 13);
    let first_ok = ct == 22
        && epoch == 0
        && match ctx.dir {
            Direction::ToServer => hs == Some(1),
            Direction::ToClient => matches!(hs, Some(2 | 3)),
        };
    if first_ok {
        weak(
            AppProto::Dtls,
            "dtls record header fe fx + hello in epoch 0",
        )
    } else if ctx.confirming {
        // Any well-formed record confirms a DTLS verdict decided earlier.
        weak(AppProto::Dtls, "dtls record header")
    } else {
        Step::No
    }
}

/// WireGuard messages (whitepaper §5.4): type 1–4 then three zero bytes, with exact
/// lengths 148 (initiation), 92 (response), 64 (cookie reply), 32 + 16n (transport data).
/// A response that echoes the initiator's sender index, or transport data carrying the
/// peer's index, is strong. Random match: 2^-32 and an exact length.
fn wireguard(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let (Some(t), Some([0, 0, 0])) = (byte(d, 0), d.get(1..4)) else {
        return Step::No;
    };
    let len_ok = match t {
        1 => d.len() == 148,
        2 => d.len() == 92,
        3 => d.len() == 64,
        4 => d.len() >= 32 && d.len().saturating_sub(32).is_multiple_of(16),
        _ => false,
    };
    if !len_ok {
        return Step::No;
    }
    let peer = ctx.peer_first.map(|h| h.bytes());
    // The peer's sender index (initiation bytes 4..8, response bytes 4..8).
    let peer_sender = peer
        .filter(|b| matches!(b.first(), Some(1 | 2)) && b.get(1..4) == Some(&[0, 0, 0]))
        .and_then(|b| b.get(4..8));
    match t {
        1 => weak(
            AppProto::Wireguard,
            "wireguard handshake initiation (type 1, 148 bytes)",
        ),
        2 | 3 => {
            // Response: receiver index at 8..12; cookie reply: receiver index at 4..8.
            let receiver = if t == 2 { d.get(8..12) } else { d.get(4..8) };
            if peer_sender.is_some() && receiver == peer_sender {
                strong(
                    AppProto::Wireguard,
                    "wireguard handshake response echoes the initiator index",
                )
            } else {
                weak(
                    AppProto::Wireguard,
                    "wireguard handshake response/cookie (exact length)",
                )
            }
        }
        _ => {
            let receiver = d.get(4..8);
            if peer_sender.is_some() && receiver == peer_sender {
                return strong(
                    AppProto::Wireguard,
                    "wireguard transport data to the peer's index",
                );
            }
            let own = ctx.own_first.map(|h| h.bytes());
            let same_stream =
                own.is_some_and(|b| b.first() == Some(&4) && b.get(1..8) == d.get(1..8));
            if ctx.index > 0 && same_stream {
                weak(
                    AppProto::Wireguard,
                    "wireguard transport data repeating the receiver index",
                )
            } else if ctx.index == 0 {
                Step::More
            } else {
                Step::No
            }
        }
    }
}

/// IKE header (RFC 7296 §3.1, RFC 2408 §3.1), optionally after the 4-byte non-ESP marker
/// (RFC 3948 §2.2): non-zero initiator SPI, version 0x10 or 0x20, a known exchange type,
/// and a length field equal to the datagram length. The responder echoing the initiator
/// SPI is strong. Random match: about 2^-45.
fn ike(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let off = if d.get(..4) == Some(&[0, 0, 0, 0]) {
        4
    } else {
        0
    };
    let h = d.get(off..).unwrap_or(&[]);
    let (Some(ispi), Some(version), Some(exch), Some(len)) =
        (h.get(..8), byte(h, 17), byte(h, 18), be32(h, 24))
    else {
        return Step::No;
    };
    if ispi.iter().all(|&b| b == 0) {
        return Step::No;
    }
    let exch_ok = match version {
        0x10 => matches!(exch, 1..=5 | 32 | 33),
        0x20 => matches!(exch, 34..=37 | 43),
        _ => false,
    };
    if !exch_ok || usize::try_from(len).ok() != Some(h.len()) {
        return Step::No;
    }
    let peer_ispi = ctx.peer_first.and_then(|p| {
        let b = p.bytes();
        let o: usize = if b.get(..4) == Some(&[0, 0, 0, 0]) {
            4
        } else {
            0
        };
        b.get(o..o.saturating_add(8))
    });
    if peer_ispi == Some(ispi) {
        strong(
            AppProto::Ike,
            "ike header; responder echoes the initiator spi",
        )
    } else {
        weak(
            AppProto::Ike,
            "ike header with length equal to the datagram",
        )
    }
}

/// ESP in UDP on port 4500 (RFC 3948 §2.1; the port is required because the content, an
/// SPI and a sequence number, is too thin alone): a non-zero SPI repeated by a later
/// datagram with a sequence number a little higher; or a NAT-keepalive byte 0xff (§2.3).
/// Random match: 2^-32 for the pair (and only on udp/4500).
fn esp_udp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if !ctx.port_is(4500) {
        return Step::No;
    }
    if d == [0xff] {
        return weak(AppProto::Esp, "nat-t keepalive 0xff on udp/4500");
    }
    let (Some(spi), Some(seq)) = (be32(d, 0), be32(d, 4)) else {
        return Step::No;
    };
    if spi == 0 || d.len() < 16 {
        return Step::No;
    }
    if ctx.index == 0 {
        return Step::More;
    }
    let own = ctx.own_first.map(|h| h.bytes());
    let (Some(spi0), Some(seq0)) = (own.and_then(|b| be32(b, 0)), own.and_then(|b| be32(b, 4)))
    else {
        return Step::No;
    };
    if spi0 == spi
        && seq
            .checked_sub(seq0)
            .is_some_and(|step| (1..4096).contains(&step))
    {
        weak(
            AppProto::Esp,
            "esp-in-udp spi repeated with rising sequence numbers on udp/4500",
        )
    } else {
        Step::No
    }
}

// ---------------------------------------------------------------------------------------
// DNS-shaped, NTP, DHCP
// ---------------------------------------------------------------------------------------

/// Skips a DNS name at `at` (RFC 1035 §4.1.4): labels of 1–63 bytes, or a compression
/// pointer to an earlier offset; at most 255 bytes. Returns the offset after the name.
fn dns_name_end(d: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    let mut total = 0usize;
    loop {
        let len = byte(d, at)?;
        match len {
            0 => return at.checked_add(1),
            1..=63 => {
                total = total.checked_add(usize::from(len) + 1)?;
                if total > 255 {
                    return None;
                }
                at = at.checked_add(usize::from(len) + 1)?;
                if at >= d.len() {
                    return None;
                }
            }
            0xc0..=0xff => {
                let ptr = usize::from(be16(d, at)? & 0x3fff);
                if ptr < 12 || ptr >= start {
                    return None;
                }
                return at.checked_add(2);
            }
            _ => return None,
        }
    }
}

/// A DNS message (RFC 1035 §4.1): header sanity (1–16 questions, a known opcode, Z bit
/// clear, rcode ≤ 10, bounded counts) and a question that parses with a known class; for
/// a response without questions (mDNS announcements), the first answer record.
fn dns_message(d: &[u8]) -> bool {
    let (Some(flags), Some(qd), Some(an), Some(ns), Some(ar)) =
        (be16(d, 2), be16(d, 4), be16(d, 6), be16(d, 8), be16(d, 10))
    else {
        return false;
    };
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let rcode = flags & 0xf;
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5) || flags & 0x0040 != 0 || rcode > 10 {
        return false;
    }
    if !qr && rcode != 0 {
        return false;
    }
    if an > 256 || ns > 256 || ar > 256 {
        return false;
    }
    let class_ok = |c: u16| matches!(c & 0x7fff, 1 | 3 | 4 | 254 | 255);
    if (1..=16).contains(&qd) {
        let Some(end) = dns_name_end(d, 12) else {
            return false;
        };
        let (Some(qtype), Some(qclass)) = (be16(d, end), be16(d, end.saturating_add(2))) else {
            return false;
        };
        qtype != 0 && class_ok(qclass)
    } else if qd == 0 && qr && an >= 1 {
        let Some(end) = dns_name_end(d, 12) else {
            return false;
        };
        let (Some(rtype), Some(class), Some(rdlen)) = (
            be16(d, end),
            be16(d, end.saturating_add(2)),
            be16(d, end.saturating_add(8)),
        ) else {
            return false;
        };
        rtype != 0
            && class_ok(class)
            && end.saturating_add(10).saturating_add(usize::from(rdlen)) <= d.len()
    } else {
        false
    }
}

/// DNS over UDP (and mDNS, LLMNR, NetBIOS-NS, which share the format; the port names
/// them). Random match: about 2^-27 (question count, flags, a name that ends, a class).
fn dns_udp(ctx: &Ctx<'_>) -> Step {
    if dns_message(ctx.data) {
        weak(AppProto::Dns, "dns header + question")
    } else {
        Step::No
    }
}

/// DNS over TCP: a 2-byte length prefix (RFC 1035 §4.2.2) then a DNS message.
/// Random match: about 2^-43.
fn dns_tcp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    let Some(len) = be16(d, 0) else {
        return Step::More;
    };
    let len = usize::from(len);
    if len < 17 {
        return Step::No;
    }
    let msg = d.get(2..).unwrap_or(&[]);
    if msg.len() < len.min(64) {
        // The header and question may still be arriving.
        return more_if(msg.len() < 12 || !dns_message(msg));
    }
    if dns_message(msg.get(..len.min(msg.len())).unwrap_or(&[])) {
        weak(
            AppProto::Dns,
            "dns over tcp: length prefix + header + question",
        )
    } else {
        Step::No
    }
}

/// NTP (RFC 5905 §7.3): 48 bytes (plus a 20/24-byte MAC), version 1–4, mode 1–5,
/// stratum ≤ 16, and root delay and root dispersion below 256 seconds; a client request
/// also has a poll exponent ≤ 17. Random match: about 2^-33 at the allowed lengths.
fn ntp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if !matches!(d.len(), 48 | 68 | 72) {
        return Step::No;
    }
    let (Some(b0), Some(stratum), Some(poll)) = (byte(d, 0), byte(d, 1), byte(d, 2)) else {
        return Step::No;
    };
    let vn = (b0 >> 3) & 7;
    let mode = b0 & 7;
    let small_roots = d.get(4..6) == Some(&[0, 0]) && byte(d, 8) == Some(0);
    let mode_ok = match mode {
        3 => poll <= 17,
        1 | 2 | 4 | 5 => true,
        _ => false,
    };
    if (1..=4).contains(&vn) && mode_ok && stratum <= 16 && small_roots {
        weak(AppProto::Ntp, "ntp header: version, mode, 48-byte packet")
    } else {
        Step::No
    }
}

/// DHCP (RFC 2131 §2, RFC 2132 §2): BOOTP op 1/2, Ethernet hardware type and length 6,
/// ≤ 16 hops, and the magic cookie 63 82 53 63 at offset 236. Random match: about 2^-52.
fn dhcp(ctx: &Ctx<'_>) -> Step {
    let d = ctx.data;
    if d.len() >= 240
        && matches!(byte(d, 0), Some(1 | 2))
        && matches!(byte(d, 1), Some(1 | 6))
        && byte(d, 2) == Some(6)
        && byte(d, 3).is_some_and(|h| h <= 16)
        && be32(d, 236) == Some(0x6382_5363)
    {
        weak(AppProto::Dhcp, "bootp header + dhcp magic cookie")
    } else {
        Step::No
    }
}
