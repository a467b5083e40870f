//! Application payloads: HTTP messages, a gzip body, a ChaCha20 beacon conversation,
//! DNS messages and plain random bytes.

use super::GenError;
use super::rng::Keystream;
use super::wire::{MS, Write};
use chacha20::cipher::StreamCipher;
use chacha20::{ChaCha20, Key, KeyIvInit, Nonce};
use flate2::Compression;
use flate2::write::GzEncoder;
use simple_dns::rdata::{A, AAAA, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, ResourceRecord, TYPE};
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Words for generated prose and log lines.
const WORDS: &[&str] = &[
    "network",
    "sensor",
    "flow",
    "packet",
    "report",
    "quarterly",
    "status",
    "update",
    "service",
    "latency",
    "window",
    "segment",
    "archive",
    "backup",
    "config",
    "metric",
    "cluster",
    "region",
    "invoice",
    "customer",
    "order",
    "shipment",
    "pending",
    "complete",
    "failed",
    "retry",
    "queue",
    "worker",
    "thread",
    "cache",
    "disk",
    "memory",
    "north",
    "south",
    "east",
    "west",
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
];

fn word(rng: &mut Keystream) -> &'static str {
    let i = rng.range(0, WORDS.len() as u32 - 1) as usize;
    WORDS.get(i).copied().unwrap_or("word")
}

/// An HTML page of about `len` bytes of prose.
pub fn html_page(rng: &mut Keystream, title: &str, len: usize) -> Vec<u8> {
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
    );
    while page.len() < len {
        page.push_str("<p>");
        for _ in 0..rng.range(20, 40) {
            page.push_str(word(rng));
            page.push(' ');
        }
        page.push_str("</p>\n");
    }
    page.push_str("</body>\n</html>\n");
    page.into_bytes()
}

/// An HTTP/1.1 GET request.
pub fn http_get(host: &str, path: &str, user_agent: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// An HTTP/1.1 200 response with `body`.
pub fn http_ok(content_type: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nServer: nginx/1.26.2\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A gzip-compressed (RFC 1952, via flate2) CSV export of at least `min_compressed` bytes.
pub fn gzip_report(rng: &mut Keystream, min_compressed: usize) -> Result<Vec<u8>, GenError> {
    let mut text = String::from("timestamp,host,service,metric,value,status\n");
    let mut line = 0u32;
    loop {
        // Grow in steps, then compress the whole text once it is probably big enough.
        for _ in 0..400 {
            line = line.wrapping_add(1);
            text.push_str(&format!(
                "2026-11-22T09:{:02}:{:02}Z,host-{:03},{},{}_{},{},{}\n",
                (line / 60) % 60,
                line % 60,
                rng.range(1, 250),
                word(rng),
                word(rng),
                word(rng),
                rng.range(0, 99_999),
                word(rng),
            ));
        }
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(text.as_bytes())?;
        let gz = enc.finish()?;
        if gz.len() >= min_compressed {
            return Ok(gz);
        }
    }
}

/// The C2 beacon conversation: ChaCha20 (RFC 8439) with a pre-shared key and one
/// keystream per direction, no handshake, no framing: nothing but ciphertext on the wire.
///
/// The client checks in every 5 s with 40–120 bytes; the server answers with a short
/// task; after the fifth check-in the client uploads ~8 KB ("exfil").
pub fn chacha_beacon(rng: &mut Keystream, beacons: u32) -> Vec<Write> {
    let key = Key::from(array32(rng));
    let mut up = ChaCha20::new(&key, &Nonce::from([1u8; 12]));
    let mut down = ChaCha20::new(&key, &Nonce::from([2u8; 12]));
    let mut writes = Vec::new();
    for seq in 0..beacons {
        let think = if seq == 0 { 0 } else { 5_000 * MS };
        let pad = rng.range(0, 60) as usize;
        let mut beacon = format!(
            "{{\"id\":\"ws-17\",\"seq\":{seq},\"uid\":1000,\"status\":\"idle\",\"pad\":\"{}\"}}",
            "x".repeat(pad)
        )
        .into_bytes();
        beacon.truncate(120);
        up.apply_keystream(&mut beacon);
        writes.push(Write::client(beacon, think));

        let task: &str = match seq {
            4 => "{\"task\":\"upload\",\"path\":\"/home/alice/.ssh\"}",
            2 => "{\"task\":\"sysinfo\"}",
            _ => "{\"task\":\"sleep\",\"s\":5}",
        };
        let mut task = task.as_bytes().to_vec();
        down.apply_keystream(&mut task);
        writes.push(Write::server(task, 2 * MS));

        if seq == 4 {
            let mut exfil = Vec::with_capacity(8192);
            while exfil.len() < 8192 {
                exfil.extend_from_slice(b"-----BEGIN OPENSSH PRIVATE KEY-----\n");
                exfil.extend_from_slice(&rng.bytes(48));
            }
            exfil.truncate(8192);
            up.apply_keystream(&mut exfil);
            writes.push(Write::client(exfil, 150 * MS));
            let mut ok = b"{\"ok\":true}".to_vec();
            down.apply_keystream(&mut ok);
            writes.push(Write::server(ok, MS));
        }
    }
    writes
}

fn array32(rng: &mut Keystream) -> [u8; 32] {
    let mut a = [0u8; 32];
    rng.fill(&mut a);
    a
}

/// A DNS query for `name` (RFC 1035 §4.1) with recursion desired.
pub fn dns_query(id: u16, name: &str, aaaa: bool) -> Result<Vec<u8>, GenError> {
    let mut q = Packet::new_query(id);
    q.set_flags(PacketFlag::RECURSION_DESIRED);
    q.questions.push(question(name, aaaa)?);
    q.build_bytes_vec().map_err(dns_err)
}

/// The resolver's answer: the question echoed and one address record.
pub fn dns_answer(
    id: u16,
    name: &str,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    aaaa: bool,
) -> Result<Vec<u8>, GenError> {
    let mut r = Packet::new_reply(id);
    r.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    r.questions.push(question(name, aaaa)?);
    let owner = Name::new(name).map_err(dns_err)?;
    let rdata = if aaaa {
        RData::AAAA(AAAA {
            address: u128::from(v6),
        })
    } else {
        RData::A(A {
            address: u32::from(v4),
        })
    };
    r.answers
        .push(ResourceRecord::new(owner, CLASS::IN, 300, rdata));
    r.build_bytes_vec_compressed().map_err(dns_err)
}

fn question(name: &str, aaaa: bool) -> Result<Question<'_>, GenError> {
    let qtype = if aaaa { TYPE::AAAA } else { TYPE::A };
    Ok(Question::new(
        Name::new(name).map_err(dns_err)?,
        qtype.into(),
        CLASS::IN.into(),
        false,
    ))
}

fn dns_err(e: simple_dns::SimpleDnsError) -> GenError {
    GenError::Packet(format!("dns message: {e}"))
}
