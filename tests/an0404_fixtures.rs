//! AN0404 end to end: the hard cases of issue #5 as generated flows, through [`Engine`].
//!
//! Every fixture is real packets (Ethernet/IPv4/TCP with a three-way handshake, sequence
//! numbers, ACKs and FIN teardown, built by the demo generator's `wire` module on
//! etherparse's `PacketBuilder`) carrying payloads made by real implementations:
//! ChaCha20 from RustCrypto's `chacha20`, random bytes from a seeded ChaCha20 keystream,
//! gzip from flate2, Zstandard from libzstd (`zstd`), JPEG from `jpeg-encoder`, ZIP from
//! `zip`, TLS 1.3 from rustls with an rcgen certificate, and SSH from a real OpenSSH
//! session recorded on loopback (`tests/fixtures/make_ssh_4444.sh`). Each fixture says
//! what AN0404 should do and why; the assertions read the drained [`Event`]s: the alert's
//! analytic, severity and reasons, the flow record's `app_proto` and `entropy{}`.
//!
//! Run with `--nocapture` to see the outcome table (fixture, expected, severity, score).

mod common;

#[path = "../examples/gen_demo/mod.rs"]
#[allow(
    dead_code,
    reason = "only the generator's packet, payload and TLS builders are used here"
)]
mod gen_demo;

use chacha20::cipher::StreamCipher;
use chacha20::{ChaCha20, Key, KeyIvInit, Nonce};
use entrospect::capture::LinkType;
use entrospect::detect::Severity;
use entrospect::inspect::entropy::{FIRST_BYTES, is_printable};
use entrospect::output::{AlertSection, FlowEvent};
use entrospect::{Config, Engine, Event};
use gen_demo::rng::Keystream;
use gen_demo::wire::{Endpoint, Frame, MS, TcpFlow, Write};
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Nanoseconds per second.
const S: u64 = 1_000 * MS;
/// The fixtures' captures start at the demo's base time (2026-11-22T10:00:00Z).
const BASE: u64 = gen_demo::BASE_SECS * S;
/// Beacon server address (TEST-NET-3).
const C2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
/// A port no default port profile names.
const HIGH_PORT: u16 = 4444;
/// Another unprofiled port, for raw transfers.
const RAW_PORT: u16 = 9000;

fn client(port: u16) -> Endpoint {
    Endpoint {
        mac: [0x02, 0x00, 0x0a, 0x00, 0x00, 0x05],
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
        port,
        ttl: 64,
    }
}

fn server(ip: Ipv4Addr, port: u16) -> Endpoint {
    Endpoint {
        mac: [0x02, 0x00, 0x0a, 0x00, 0x00, 0x01],
        ip: IpAddr::V4(ip),
        port,
        ttl: 50,
    }
}

/// The frames of one TCP connection from 10.0.0.5:`cport` to `ip`:`port` carrying
/// `writes`; ISNs and IP ids come from a keystream labelled `label`.
fn tcp_flow(label: &str, cport: u16, ip: Ipv4Addr, port: u16, writes: &[Write]) -> Vec<Frame> {
    let mut rng = Keystream::new(label);
    TcpFlow {
        client: client(cport),
        server: server(ip, port),
        start: BASE,
        rtt: 20 * MS,
    }
    .build(writes, &mut rng)
    .unwrap_or_else(|e| panic!("{label}: building frames: {e}"))
    .frames
}

/// What the engine said about some frames.
struct Outcome {
    events: Vec<Event>,
    correlation: entrospect::detect::correlate::CorrelationStats,
}

impl Outcome {
    fn alerts(&self, analytic: &str) -> Vec<&AlertSection> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Alert(a) if a.alert.analytic == analytic => Some(&a.alert),
                _ => None,
            })
            .collect()
    }

    /// The AN0404 alert, if one was raised (never more than one per flow).
    fn an0404(&self) -> Option<&AlertSection> {
        let v = self.alerts("AN0404");
        assert!(v.len() <= 1, "AN0404 raised twice for one flow: {v:?}");
        v.first().copied()
    }

    /// The one flow record.
    fn flow(&self) -> &FlowEvent {
        let flows: Vec<&FlowEvent> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Flow(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(flows.len(), 1, "expected one flow record");
        flows[0]
    }

    fn app_proto(&self) -> Option<&'static str> {
        self.flow().header.app_proto
    }

    /// One outcome-table line: `fixture | expected | actual`.
    fn row(&self, fixture: &str, expected: &str) -> String {
        let actual = match self.an0404() {
            Some(a) => format!("AN0404 {} score {:.2}", a.severity_name.as_str(), a.score),
            None => "no AN0404".to_owned(),
        };
        let f = self.flow();
        let side = |r: &Option<entrospect::inspect::entropy::Randomness>| match r {
            Some(r) => format!("{:.2}b/B@{}", r.bits_per_byte, r.sample_len),
            None => "-".to_owned(),
        };
        let line = format!(
            "{fixture:<34} | {expected:<22} | {actual:<26} | app_proto {:<7} | ts {} tc {}",
            f.header.app_proto.unwrap_or("-"),
            side(&f.entropy.toserver),
            side(&f.entropy.toclient),
        );
        println!("{line}");
        line
    }
}

fn run(cfg: Config, frames: &[Frame]) -> Outcome {
    let mut engine = Engine::new(cfg).expect("valid config");
    let mut events = Vec::new();
    for f in frames {
        engine.process_packet(f.ts, LinkType::ETHERNET, &f.data);
        events.extend(engine.drain_events());
    }
    engine.finish();
    events.extend(engine.drain_events());
    Outcome {
        events,
        correlation: engine.correlation_stats(),
    }
}

fn run_default(frames: &[Frame]) -> Outcome {
    run(Config::default(), frames)
}

/// `n` bytes of a seeded ChaCha20 keystream: uniformly random, reproducible.
fn random(label: &str, n: usize) -> Vec<u8> {
    Keystream::new(label).bytes(n)
}

/// A 32-byte key from a seeded keystream.
fn key(label: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    Keystream::new(label).fill(&mut k);
    k
}

/// `plain` encrypted with ChaCha20 (RFC 8439 keystream) under `key` and `nonce`.
fn chacha(key: &[u8; 32], nonce: [u8; 12], plain: &[u8]) -> Vec<u8> {
    let mut c = ChaCha20::new(&Key::from(*key), &Nonce::from(nonce));
    let mut out = plain.to_vec();
    c.apply_keystream(&mut out);
    out
}

/// The 96-bit nonce for message number `n` (RFC 8439 §2.3: 32-bit fixed part zero, then
/// the counter little-endian), as a sender numbering its messages would build it.
fn nonce(n: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    for (slot, b) in out.iter_mut().skip(4).zip(n.to_le_bytes()) {
        *slot = b;
    }
    out
}

fn is_an0404_reason(a: &AlertSection, needle: &str) -> bool {
    a.reasons.iter().any(|r| r.contains(needle))
}

fn assert_entropy_fields(f: &FlowEvent, what: &str) {
    // The EVE field names DESIGN.md promises: entropy.toserver{bits_per_byte, sample_len,
    // expected_random, score, printable_ratio, popcount_mean}.
    let json = serde_json::to_value(f).expect("flow json");
    for dir in ["toserver", "toclient"] {
        let Some(d) = json["entropy"].get(dir) else {
            continue;
        };
        for field in [
            "bits_per_byte",
            "sample_len",
            "expected_random",
            "score",
            "printable_ratio",
            "popcount_mean",
        ] {
            assert!(
                d.get(field).is_some_and(|v| v.is_number()),
                "{what}: entropy.{dir}.{field} missing in {d}"
            );
        }
    }
}

// --- ChaCha20 whose first bytes are printable -------------------------------------------

/// Searches message numbers until ChaCha20 turns `plain` into a ciphertext whose first
/// [`FIRST_BYTES`] bytes are printable ASCII; returns the message number and ciphertext.
/// Each try succeeds with probability (98/256)^6 ≈ 0.3 %, so this takes a few hundred.
fn printable_prefix_ciphertext(key: &[u8; 32], plain: &[u8]) -> (u64, Vec<u8>) {
    (0..1u64 << 20)
        .map(|n| (n, chacha(key, nonce(n), plain)))
        .find(|(_, ct)| ct.iter().take(FIRST_BYTES).all(|&b| is_printable(b)))
        .expect("a printable prefix within 2^20 nonces")
}

/// Censorship-evasion exemptions (the GFW's, per Wu et al., USENIX Security 2023) let a
/// connection through when its first bytes are printable: fully encrypted proxies prepend
/// them on purpose, and plain ChaCha20 produces them by chance once in ~320 messages.
/// AN0404 must not copy that exemption: six printable bytes say nothing about the other
/// few hundred, which are random. Expected: the alert fires as for any ChaCha20 stream
/// (high: unprofiled port, low volume), and its reasons name the printable prefix.
#[test]
fn chacha20_stream_with_printable_first_bytes_still_alerts() {
    let k = key("printable prefix key");
    let checkin = br#"{"id":"ws-17","seq":0,"uid":1000,"status":"idle","host":"ws-17.corp.example","os":"linux 6.1","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let (n, first) = printable_prefix_ciphertext(&k, checkin);
    println!(
        "message number {n} gives printable prefix {:?}",
        String::from_utf8_lossy(&first[..FIRST_BYTES])
    );
    let task =
        br#"{"task":"sysinfo","args":[],"interval":5,"jitter":0.2,"next":"2026-11-22T10:00:05Z"}"#;
    let writes = vec![
        Write::client(first, 0),
        Write::server(chacha(&k, nonce(1 << 40), task), 2 * MS),
        Write::client(chacha(&k, nonce(n + 1), checkin), 5 * S),
        Write::server(chacha(&k, nonce((1 << 40) + 1), task), 2 * MS),
    ];
    let out = run_default(&tcp_flow("printable", 50_514, C2, HIGH_PORT, &writes));
    out.row("chacha20, printable first 6 bytes", "AN0404 high");

    let f = out.flow();
    let ts = f.entropy.toserver.expect("toserver entropy");
    assert!(ts.first_bytes_printable, "{ts:?}");
    assert_eq!(out.app_proto(), None, "no protocol recognised");
    let a = out.an0404().expect("AN0404 despite the printable prefix");
    assert_eq!(a.severity_name, Severity::High);
    assert!(
        is_an0404_reason(a, "printable first bytes precede the random data"),
        "{:?}",
        a.reasons
    );
    assert!(
        is_an0404_reason(a, "no handshake of any known encrypted protocol"),
        "{:?}",
        a.reasons
    );
    assert_entropy_fields(f, "printable prefix");
}

// --- Random payloads of 16 to 1460 bytes on an unknown port -----------------------------

/// One exchange (`rounds` = 1: one payload packet each way) or a short conversation of
/// `rounds` request/response pairs one second apart, each `n` random bytes.
fn random_exchange(n: usize, rounds: usize) -> Outcome {
    let label = format!("random {n} x{rounds}");
    let mut rng = Keystream::new(&label);
    let mut writes = Vec::new();
    for i in 0..rounds {
        let think = if i == 0 { 0 } else { S };
        writes.push(Write::client(rng.bytes(n), think));
        writes.push(Write::server(rng.bytes(n), MS));
    }
    run_default(&tcp_flow(&label, 50_600, C2, HIGH_PORT, &writes))
}

/// AN0404 needs [`min_sample_len`](entrospect::detect::an0404::An0404Config) = 64 bytes
/// of a direction before its randomness counts: 16 random bytes average 3.94 bits/byte
/// (at most 4 are possible), which short English words also reach, so the length-aware
/// test in `inspect::entropy` cannot tell them apart; from 64 bytes (random ≈ 5.77,
/// text ≲ 4.5) it can. Expected: one 16-byte exchange is too short (no alert); 64, 256
/// and 1460 bytes alert. A four-round conversation of 16-byte messages gathers 64
/// bytes a direction and alerts too. All these flows are a few kilobytes on an unprofiled
/// port, so the severity is high (medium, one up for low volume).
#[test]
fn random_payloads_alert_from_64_bytes_a_direction() {
    for (n, rounds, fires) in [
        (16, 1, false),
        (64, 1, true),
        (256, 1, true),
        (1460, 1, true),
        (16, 4, true),
        (64, 4, true),
        (256, 4, true),
        (1460, 4, true),
    ] {
        let out = random_exchange(n, rounds);
        let what = if rounds == 1 {
            format!("random {n} B, one exchange")
        } else {
            format!("random {n} B, {rounds} rounds")
        };
        let expected = if fires {
            "AN0404 high"
        } else {
            "none (too short)"
        };
        out.row(&what, expected);
        let f = out.flow();
        let ts = f.entropy.toserver.expect("toserver entropy");
        // The sample is the first bytes of the direction, up to the 4 KiB window.
        assert_eq!(ts.sample_len, (n * rounds).min(4096) as u64, "{what}");
        assert_entropy_fields(f, &what);
        match out.an0404() {
            Some(a) => {
                assert!(fires, "{what}: unexpected alert {a:?}");
                assert_eq!(a.severity_name, Severity::High, "{what}");
                assert!(is_an0404_reason(a, "port 4444 has no expected protocol"));
                assert!(is_an0404_reason(a, "low-volume, beacon-like"));
            }
            None => assert!(!fires, "{what}: no alert; flow {f:?}"),
        }
    }
}

// --- Compressed and media bodies ---------------------------------------------------------

/// A CSV export whose lines end in a random 32-bit checksum, so that it compresses only
/// about 2:1 and its compressed form is as random-looking as compression gets.
fn report_csv(rng: &mut Keystream, len: usize) -> Vec<u8> {
    let mut s = String::from("timestamp,host,metric,value,checksum\n");
    let mut i = 0u32;
    while s.len() < len {
        let v = rng.next_u32();
        s.push_str(&format!(
            "2026-11-22T09:{:02}:{:02}Z,host-{:03},latency_ms,{},{:08x}\n",
            (i / 60) % 60,
            i % 60,
            v % 250,
            v % 100_000,
            rng.next_u32()
        ));
        i = i.wrapping_add(1);
    }
    s.into_bytes()
}

/// One compressed or media body, how HTTP declares it, and how many leading bytes make
/// up its magic number / container header.
struct Body {
    name: &'static str,
    bytes: Vec<u8>,
    content_type: &'static str,
    content_encoding: Option<&'static str>,
    magic_len: usize,
}

fn bodies() -> Vec<Body> {
    let mut rng = Keystream::new("bodies");
    let csv = report_csv(&mut rng, 16_000);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv).expect("gzip");
    let gzip = gz.finish().expect("gzip");

    let zstd = zstd::bulk::compress(&csv, 19).expect("zstd");

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("report.csv", deflated).expect("zip entry");
    zip.write_all(&csv).expect("zip data");
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("README.txt", stored).expect("zip entry");
    zip.write_all(b"Quarterly latency report, generated 2026-11-22.\n")
        .expect("zip data");
    let zip = zip.finish().expect("zip").into_inner();

    // A photo-like image: smooth gradients plus sensor noise, which JPEG cannot squeeze
    // into long runs.
    let (w, h) = (192u16, 128u16);
    let noise = rng.bytes(usize::from(w) * usize::from(h) * 3);
    let pixels: Vec<u8> = noise
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let px = i / 3;
            let (x, y) = (px % usize::from(w), px / usize::from(w));
            let base = match i % 3 {
                0 => x * 255 / usize::from(w),
                1 => y * 255 / usize::from(h),
                _ => (x + y) * 255 / (usize::from(w) + usize::from(h)),
            };
            (base as u8).wrapping_add(n / 4)
        })
        .collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("jpeg");

    vec![
        Body {
            name: "gzip",
            bytes: gzip,
            content_type: "text/csv",
            content_encoding: Some("gzip"),
            magic_len: 10,
        },
        Body {
            name: "zstd",
            bytes: zstd,
            content_type: "text/csv",
            content_encoding: Some("zstd"),
            magic_len: 4,
        },
        Body {
            name: "zip",
            bytes: zip,
            content_type: "application/zip",
            content_encoding: None,
            magic_len: 4,
        },
        Body {
            name: "jpeg",
            bytes: jpeg,
            content_type: "image/jpeg",
            content_encoding: None,
            magic_len: 3,
        },
    ]
}

/// An HTTP/1.1 200 response; `declared` adds Content-Type and (for encodings)
/// Content-Encoding, otherwise only Content-Length frames the body.
fn http_response(b: &Body, declared: bool) -> Vec<u8> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nServer: nginx/1.26.2\r\n",
    );
    if declared {
        head.push_str(&format!("Content-Type: {}\r\n", b.content_type));
        if let Some(enc) = b.content_encoding {
            head.push_str(&format!("Content-Encoding: {enc}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        b.bytes.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(&b.bytes);
    out
}

fn http_download(b: &Body, declared: bool, port: u16) -> Vec<Frame> {
    let get = gen_demo::payloads::http_get(
        "files.example.test",
        &format!("/export/report.{}", b.name),
        "curl/8.5.0",
        "",
    );
    let writes = vec![
        Write::client(get, 0),
        Write::server(http_response(b, declared), 3 * MS),
    ];
    let label = format!("http {} {declared}", b.name);
    tcp_flow(
        &label,
        51_000,
        Ipv4Addr::new(198, 51, 100, 20),
        port,
        &writes,
    )
}

/// The server pushes `bytes` as soon as the client connects, with no protocol around
/// them (an FTP data connection, a raw `nc` transfer).
fn raw_push(label: &str, bytes: &[u8]) -> Vec<Frame> {
    let writes = vec![Write::server(bytes.to_vec(), 0)];
    tcp_flow(
        label,
        51_100,
        Ipv4Addr::new(198, 51, 100, 21),
        RAW_PORT,
        &writes,
    )
}

/// Over HTTP/1.1, compressed and media bodies are the classic AN0404 false positive:
/// random-looking, not encrypted. Expected: no AN0404 whether or not the response
/// declares Content-Type/Content-Encoding (the body's magic number explains it), on port
/// 80 and on an unprofiled port, and also with `report_cleartext_carriers` on (which
/// reports random bodies in HTTP, but not ones that compressed or media content explains).
#[test]
fn compressed_and_media_bodies_over_http_do_not_raise_an0404() {
    let hunting = Config {
        an0404: entrospect::detect::an0404::An0404Config {
            report_cleartext_carriers: true,
            ..Default::default()
        },
        ..Config::default()
    };
    for b in bodies() {
        for declared in [true, false] {
            for port in [80, 8000] {
                let frames = http_download(&b, declared, port);
                for (cfg_name, cfg) in [
                    ("default", Config::default()),
                    ("carriers", hunting.clone()),
                ] {
                    let what = format!(
                        "{} over http:{port}, {}, {cfg_name}",
                        b.name,
                        if declared { "declared" } else { "undeclared" }
                    );
                    let out = run(cfg, &frames);
                    out.row(&what, "no AN0404");
                    assert_eq!(out.app_proto(), Some("http"), "{what}");
                    assert!(out.an0404().is_none(), "{what}: {:?}", out.an0404());
                    assert_entropy_fields(out.flow(), &what);
                }
            }
        }
    }
}

/// An archive of data that does not compress (an already encrypted or compressed file):
/// gzip, zstd and zip containers around random bytes, which look random right after
/// their magic number.
fn incompressible_bodies() -> Vec<Body> {
    let payload = random("incompressible file", 6_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&payload).expect("gzip");
    let gzip = gz.finish().expect("gzip");
    let zstd = zstd::bulk::compress(&payload, 3).expect("zstd");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("vault.bin", stored).expect("zip entry");
    zip.write_all(&payload).expect("zip data");
    let zip = zip.finish().expect("zip").into_inner();
    let body = |name, bytes, magic_len| Body {
        name,
        bytes,
        content_type: "application/octet-stream",
        content_encoding: None,
        magic_len,
    };
    vec![
        body("gzip(random)", gzip, 10),
        body("zstd(random)", zstd, 4),
        body("zip(stored random)", zip, 4),
    ]
}

/// Over raw TCP on an unprofiled port, the module documentation promises that a magic
/// number alone explains an otherwise unknown flow (an FTP data connection carrying a
/// zip), a deliberate trade against prefixing a magic to evade. Expected, for each body
/// pushed by the server with no protocol around it:
///
/// - compressed text and a JPEG: no AN0404. Their magic explains them, and the same
///   bytes without the magic do not alert either: over a 4 KiB sample the length-aware
///   test tells compressed text (7.92 bits/byte) from random data (7.95 expected);
/// - containers around random data (an encrypted file archived): no AN0404 with the
///   magic; without it the same bytes alert. This is the promised trade, made visible.
#[test]
fn compressed_and_media_bodies_over_raw_tcp_are_explained_by_their_magic() {
    let cases = bodies()
        .into_iter()
        .map(|b| (b, false))
        .chain(incompressible_bodies().into_iter().map(|b| (b, true)));
    for (b, random_inside) in cases {
        let what = format!("{} raw tcp:{RAW_PORT}", b.name);
        let out = run_default(&raw_push(&what, &b.bytes));
        out.row(&what, "no AN0404 (magic)");
        assert_eq!(out.app_proto(), None, "{what}");
        assert!(out.an0404().is_none(), "{what}: {:?}", out.an0404());
        let tc = out.flow().entropy.toclient.expect("toclient entropy");
        assert!(tc.bits_per_byte > 7.8, "{what}: {tc:?}");
        assert_entropy_fields(out.flow(), &what);

        let headless = b.bytes.get(b.magic_len..).unwrap_or_default();
        let what = format!("{} raw, magic stripped", b.name);
        let control = run_default(&raw_push(&what, headless));
        let expected = if random_inside {
            "AN0404 (control)"
        } else {
            "no AN0404 (control)"
        };
        control.row(&what, expected);
        assert_eq!(
            control.an0404().is_some(),
            random_inside,
            "{what}: {:?}",
            control.an0404()
        );
    }
}

// --- Known encrypted protocols on port 4444 ----------------------------------------------

fn tls_on_4444(tls12_only: bool) -> Outcome {
    use gen_demo::tls::{DemoCa, TlsSession, Trust, Validity};
    let mut ca_rng = Keystream::new("fixture ca");
    let ca = DemoCa::new(&mut ca_rng).expect("ca");
    let mut rng = Keystream::new("fixture leaf");
    let validity = Validity {
        not_before: (2026, 1, 1),
        not_after: (2027, 1, 1),
    };
    let leaf = ca
        .issue(&mut rng, &["c2.example.test"], 0x2001, validity)
        .expect("leaf");
    let request = random("tls request", 700);
    let response = random("tls response", 6_000);
    let label = format!("tls 4444 {tls12_only}");
    let writes = gen_demo::tls::run(&TlsSession {
        label: &label,
        now_secs: gen_demo::BASE_SECS,
        tls12_only,
        server_name: "c2.example.test",
        alpn: &[],
        leaf: &leaf,
        trust: Trust::Root(ca.root()),
        request: &request,
        response: &response,
        response_delay: 5 * MS,
    })
    .expect("rustls session");
    run_default(&tcp_flow(&label, 50_700, C2, HIGH_PORT, &writes))
}

/// TLS on a port without profile: the payload after the handshake is random, but the
/// handshake explains it. Expected: `app_proto` tls, a `tls` event, no AN0404.
#[test]
fn rustls_session_on_4444_is_tls_and_raises_no_an0404() {
    for tls12_only in [false, true] {
        let out = tls_on_4444(tls12_only);
        let what = if tls12_only {
            "rustls tls1.2 on 4444"
        } else {
            "rustls tls1.3 on 4444"
        };
        out.row(what, "no AN0404");
        assert_eq!(out.app_proto(), Some("tls"), "{what}");
        assert!(
            out.events.iter().any(|e| matches!(e, Event::Tls(_))),
            "{what}: no tls event"
        );
        assert!(out.an0404().is_none(), "{what}: {:?}", out.an0404());
        let f = out.flow();
        assert!(f.entropy.toserver.is_some() && f.entropy.toclient.is_some());
        assert_entropy_fields(f, what);
    }
}

/// A real OpenSSH 9.2 session (ed25519 keys, publickey auth, one command) recorded on
/// loopback port 4444 by `tests/fixtures/make_ssh_4444.sh`. Expected: `app_proto` ssh
/// (version banner, then binary packets), no AN0404 although all that follows the key
/// exchange is ciphertext.
#[test]
fn openssh_session_on_4444_is_ssh_and_raises_no_an0404() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ssh_4444.pcap");
    let file = entrospect::capture::CaptureFile::open(&path).expect("ssh fixture");
    let mut engine = Engine::new(Config::default()).expect("engine");
    let mut events = Vec::new();
    for p in file.packets() {
        engine.process(&p.expect("packet"));
        events.extend(engine.drain_events());
    }
    engine.finish();
    events.extend(engine.drain_events());
    let out = Outcome {
        events,
        correlation: engine.correlation_stats(),
    };
    out.row("openssh 9.2 on 4444 (recorded)", "no AN0404");
    let f = out.flow();
    assert_eq!(f.header.dest_port, 4444);
    assert_eq!(out.app_proto(), Some("ssh"));
    assert!(out.an0404().is_none(), "{:?}", out.an0404());
    assert!(f.protocol.as_ref().is_some_and(|p| p.encrypted));
    assert_entropy_fields(f, "ssh");
}

// --- A low-volume ChaCha20 beacon ------------------------------------------------------------

/// A check-in of 40 ChaCha20-encrypted bytes every 5 s for two minutes, each answered
/// with a 16-byte encrypted task.
fn beacon_frames() -> Vec<Frame> {
    let k = key("beacon");
    let mut writes = Vec::new();
    for seq in 0..24u64 {
        let mut checkin =
            format!("{{\"id\":\"ws-17\",\"seq\":{seq},\"st\":\"idle\",\"p\":\"xxxxxxxxxxxxxxxx")
                .into_bytes();
        checkin.truncate(40);
        let think = if seq == 0 { 0 } else { 5 * S };
        writes.push(Write::client(chacha(&k, nonce(seq), &checkin), think));
        let task = chacha(&k, nonce(seq | 1 << 63), br#"{"task":"sleep"}"#);
        writes.push(Write::server(task, 2 * MS));
    }
    tcp_flow("beacon", 50_514, C2, HIGH_PORT, &writes)
}

/// The C2 pattern AN0404 exists for: small encrypted check-ins with no handshake.
/// Expected: AN0404 high (unprofiled port; low volume, one step up), ranked beacon-like,
/// with the sample the check-ins and tasks gathered by the verdict.
#[test]
fn chacha20_beacon_every_5s_alerts_high_as_beacon_like() {
    let frames = beacon_frames();
    let span = frames
        .last()
        .expect("frames")
        .ts
        .saturating_sub(frames[0].ts);
    assert!((110 * S..130 * S).contains(&span), "{span} ns");
    let beacon = run_default(&frames);
    beacon.row("chacha20 beacon 40 B / 5 s, 2 min", "AN0404 high");
    let a = beacon.an0404().expect("beacon alerts");
    assert_eq!(a.severity_name, Severity::High);
    assert!(
        is_an0404_reason(a, "low-volume, beacon-like"),
        "{:?}",
        a.reasons
    );
    assert!(!is_an0404_reason(a, "bulk"), "{:?}", a.reasons);
    assert!(
        is_an0404_reason(a, "no host telemetry joined"),
        "{:?}",
        a.reasons
    );
    let f = beacon.flow();
    assert!(f.flow.alerted);
    // Inline: raised on the second check-in (80 bytes up, past the 64-byte minimum),
    // not when the flow ends two minutes later.
    let raised = beacon
        .events
        .iter()
        .find_map(|e| match e {
            Event::Alert(x) if x.alert.analytic == "AN0404" => Some(x.header.timestamp),
            _ => None,
        })
        .expect("alert event");
    assert!(raised.saturating_sub(f.flow.start) < 10 * S, "{raised:?}");
    assert!(is_an0404_reason(a, "over 80 B"), "{:?}", a.reasons);
    assert_eq!(f.entropy.toserver.expect("toserver").sample_len, 24 * 40);
    assert_eq!(f.entropy.toclient.expect("toclient").sample_len, 24 * 16);
    assert_entropy_fields(f, "beacon");
}

/// A VPN-like tunnel: 1.5 MB of ChaCha20 ciphertext each way from the first packet, on
/// the beacon's port. Expected: ranked below the beacon. AN0404 decides early (when the
/// 4 KiB entropy window fills, about 6 KB into the flow), before the tunnel reaches
/// `traffic_volume_threshold`; the rate it moved that sample at (`bulk_rate_threshold`)
/// keeps it from the beacon-like step, so it stays at the base severity (medium).
#[test]
fn bulk_tunnel_ranks_below_the_beacon() {
    let k = key("tunnel");
    let mut rng = Keystream::new("tunnel");
    let writes = vec![
        Write::client(chacha(&k, nonce(0), &rng.bytes(750_000)), 0),
        Write::server(chacha(&k, nonce(1 << 63), &rng.bytes(750_000)), MS),
    ];
    let tunnel = run_default(&tcp_flow("tunnel", 50_800, C2, HIGH_PORT, &writes));
    tunnel.row(
        "chacha20 tunnel 1.5 MB",
        "AN0404 medium (fast, not beacon-like)",
    );
    let b = tunnel.an0404().expect("tunnel alerts");
    let beacon = run_default(&beacon_frames());
    let a = beacon.an0404().expect("beacon alerts");
    assert!(
        is_an0404_reason(b, "too fast for a beacon"),
        "{:?}",
        b.reasons
    );
    assert!(b.severity_name < a.severity_name, "{b:?} vs {a:?}");
}

/// The same beacon with its destination allowlisted. Expected: no alert event, the
/// flow not marked alerted, and the finding kept: counted as suppressed in the stats
/// event, with the allowlist entry as the reason.
#[test]
fn allowlisted_beacon_destination_is_suppressed_with_its_reason() {
    let cfg = Config {
        an0404: entrospect::detect::an0404::An0404Config {
            allowed_destinations: vec!["203.0.113.0/28".parse().expect("net")],
            ..Default::default()
        },
        ..Config::default()
    };
    let out = run(cfg, &beacon_frames());
    out.row("beacon, destination allowlisted", "suppressed");
    assert!(out.an0404().is_none());
    assert!(!out.flow().flow.alerted);
    let stats = out
        .events
        .iter()
        .find_map(|e| match e {
            Event::Stats(s) => Some(&s.stats),
            _ => None,
        })
        .expect("stats event");
    assert_eq!(stats.detect.suppressed.get("AN0404"), Some(&1));
    assert_eq!(stats.detect.alerts.get("AN0404"), None);
    let (analytic, why) = out
        .correlation
        .last_suppression
        .clone()
        .expect("reason kept");
    assert_eq!(analytic, "AN0404");
    assert_eq!(
        why,
        "destination 203.0.113.9 is in allowed_destinations (203.0.113.0/28)"
    );
}
