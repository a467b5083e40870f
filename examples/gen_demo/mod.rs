//! The demo capture generator: one table of scenarios drives the packets
//! (`demo.pcapng`), the host telemetry (`demo.hostevents.jsonl`) and the README table,
//! so the three cannot drift apart.
//!
//! Shared by `examples/gen_demo.rs` (which writes the files) and `tests/demo_capture.rs`
//! (which regenerates them and checks the committed copies).

// Public so that tests can build their own flows with the same packet and TLS code.
pub mod payloads;
pub mod rng;
pub mod tls;
pub mod wire;

use entrospect::Timestamp;
use entrospect::capture::LinkType;
use entrospect::host::{ConnDirection, HostEvent, HostEventKind, HostProto, Platform};
use rng::Keystream;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use wire::{Endpoint, Frame, MS, TcpFlow, UdpExchange, Write};

/// Name of the capture file in the output directory.
pub const PCAPNG_FILE: &str = "demo.pcapng";
/// Name of the host-events file in the output directory.
pub const HOST_EVENTS_FILE: &str = "demo.hostevents.jsonl";
/// Name of the README in the output directory.
pub const README_FILE: &str = "README.md";
/// The capture starts here: 2026-11-22T10:00:00Z.
pub const BASE_SECS: u64 = 1_795_341_600;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// Writing an output file or an in-memory stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// rustls refused a configuration or the in-memory handshake failed.
    #[error("tls session: {0}")]
    Tls(String),
    /// rcgen or the key encoding failed.
    #[error("certificate: {0}")]
    Cert(String),
    /// A header or message could not be built.
    #[error("packet building: {0}")]
    Packet(String),
    /// Host events could not be serialized.
    #[error("host events: {0}")]
    Json(#[from] serde_json::Error),
}

/// Transport of a scenario's flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// Lowercase name, as in EVE's `proto` (upper-cased there).
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What a scenario's flow carries.
enum Traffic {
    /// TLS 1.3 with a certificate from the demo CA.
    TrustedTls13 {
        server_name: &'static str,
        san: &'static str,
        path: &'static str,
        user_agent: &'static str,
        body_len: usize,
    },
    /// TLS 1.2 only, self-signed expired certificate for another name, client accepts
    /// anything.
    BadCertTls12,
    /// ChaCha20 ciphertext with no handshake.
    ChachaBeacon,
    /// HTTP download with a gzip body.
    HttpGzip,
    /// Random bytes on a port where HTTP is expected.
    RandomOnHttpPort,
    /// A DNS query and answer.
    Dns { aaaa: bool },
}

/// The process behind a scenario's connection, as the host reports it.
struct Process {
    host: &'static str,
    platform: Platform,
    pid: u32,
    ppid: u32,
    parent_image: &'static str,
    image: &'static str,
    cmdline: &'static str,
    user: &'static str,
    guid: Option<&'static str>,
    modules: &'static [&'static str],
}

/// One row of the demo: a flow, its process (if the host reported one) and what
/// entrospect is expected to say about it.
struct Scenario {
    name: &'static str,
    title: &'static str,
    client_host: &'static str,
    client: Endpoint,
    server: Endpoint,
    offset_ms: u64,
    rtt_ms: u64,
    traffic: Traffic,
    process: Option<Process>,
    expected: &'static str,
}

/// Router MAC: every off-LAN server's frames carry it.
const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x00, 0x01];

fn lan_v4(last: u8, port: u16) -> Endpoint {
    Endpoint {
        mac: [0x02, 0x00, 0x0a, 0x00, 0x00, last],
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        port,
        ttl: 64,
    }
}

fn remote(ip: IpAddr, port: u16, ttl: u8) -> Endpoint {
    Endpoint {
        mac: GATEWAY_MAC,
        ip,
        port,
        ttl,
    }
}

const WWW_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const WWW_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 0x10);
const PYTHON_MODULES: &[&str] = &["/usr/lib/x86_64-linux-gnu/libcrypto.so.3"];
const CURL_MODULES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
];
const WIN_CRYPTO_MODULES: &[&str] = &[
    "C:\\Windows\\System32\\rsaenh.dll",
    "C:\\Windows\\System32\\crypt32.dll",
];

/// The scenario table. Ports, addresses and times here are the only source of truth.
fn scenarios() -> Vec<Scenario> {
    let curl = Process {
        host: "ws-17",
        platform: Platform::Linux,
        pid: 4188,
        ppid: 3101,
        parent_image: "/usr/bin/bash",
        image: "/usr/bin/curl",
        cmdline: "curl -sO https://www.example.test/index.html",
        user: "alice",
        guid: None,
        modules: CURL_MODULES,
    };
    let dns_client = lan_v4(5, 41_873);
    let resolver = lan_v4(53, 53);
    let mut dns_aaaa_client = dns_client;
    dns_aaaa_client.port = 41_874;
    vec![
        Scenario {
            name: "dns_a",
            title: "DNS A query for www.example.test",
            client_host: "ws-17",
            client: dns_client,
            server: resolver,
            offset_ms: 900,
            rtt_ms: 4,
            traffic: Traffic::Dns { aaaa: false },
            process: None,
            expected: "`app_proto` dns; low-entropy cleartext; no alert",
        },
        Scenario {
            name: "dns_aaaa",
            title: "DNS AAAA query for www.example.test",
            client_host: "ws-17",
            client: dns_aaaa_client,
            server: resolver,
            offset_ms: 901,
            rtt_ms: 4,
            traffic: Traffic::Dns { aaaa: true },
            process: None,
            expected: "`app_proto` dns; no alert",
        },
        Scenario {
            name: "tls13_clean",
            title: "TLS 1.3, trusted chain, SNI www.example.test, HTTP/1.1 GET and ~20 KB page",
            client_host: "ws-17",
            client: lan_v4(5, 50_500),
            server: remote(IpAddr::V4(WWW_V4), 443, 52),
            offset_ms: 1_000,
            rtt_ms: 20,
            traffic: Traffic::TrustedTls13 {
                server_name: "www.example.test",
                san: "www.example.test",
                path: "/index.html",
                user_agent: "curl/8.5.0",
                body_len: 20_000,
            },
            process: Some(curl),
            expected: "`tls` event: version 1.3, sni www.example.test, no anomalies, JA3/JA4; \
                       high entropy but known protocol: no alert (curl loads libssl/libcrypto: trusted)",
        },
        Scenario {
            name: "chacha_beacon",
            title: "ChaCha20 stream, no handshake, 8 beacons every 5 s, tasks, one ~8 KB upload",
            client_host: "ws-17",
            client: lan_v4(5, 50_514),
            server: remote(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 4444, 47),
            offset_ms: 10_000,
            rtt_ms: 24,
            traffic: Traffic::ChachaBeacon,
            process: Some(Process {
                host: "ws-17",
                platform: Platform::Linux,
                pid: 4242,
                ppid: 3101,
                parent_image: "/usr/bin/bash",
                image: "/usr/bin/python3",
                cmdline: "python3 beacon.py",
                user: "alice",
                guid: None,
                modules: PYTHON_MODULES,
            }),
            expected: "**AN0404 alert** (high entropy both ways, no known protocol, port 4444); \
                       joined with python3 + libcrypto.so.3 on ws-17 (AN0401 host half)",
        },
        Scenario {
            name: "tls12_bad_cert",
            title: "TLS 1.2 only, self-signed certificate for `localhost`, expired 2026-01-01, SNI update.example.test",
            client_host: "win-07",
            client: lan_v4(7, 49_712),
            server: remote(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 50)), 443, 49),
            offset_ms: 20_000,
            rtt_ms: 30,
            traffic: Traffic::BadCertTls12,
            process: Some(Process {
                host: "win-07",
                platform: Platform::Windows,
                pid: 6120,
                ppid: 5532,
                parent_image: "C:\\Windows\\explorer.exe",
                image: "C:\\Windows\\System32\\rundll32.exe",
                cmdline: "rundll32.exe C:\\Users\\bob\\AppData\\Local\\Temp\\upd.dll,Start",
                user: "EXAMPLE\\bob",
                guid: Some("{6f3c1a7e-5b2d-6931-1c00-000000002a00}"),
                modules: WIN_CRYPTO_MODULES,
            }),
            expected: "`tls.anomalies` self_signed, expired, hostname_mismatch; \
                       **AN1496 alert** joined with rundll32.exe + rsaenh.dll/crypt32.dll on win-07",
        },
        Scenario {
            name: "http_gzip",
            title: "HTTP/1.1 download, `Content-Encoding: gzip` body of ~30 KB",
            client_host: "ws-22",
            client: lan_v4(22, 51_000),
            server: remote(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20)), 80, 54),
            offset_ms: 30_000,
            rtt_ms: 18,
            traffic: Traffic::HttpGzip,
            process: None,
            expected: "`app_proto` http; to-client entropy near 8 bits/byte but cleartext protocol: \
                       **no alert** (false-positive trap)",
        },
        Scenario {
            name: "tls13_odd_port_v6",
            title: "TLS 1.3 over IPv6 on port 4443, trusted chain, SNI api.example.test",
            client_host: "ws-31",
            client: Endpoint {
                mac: [0x02, 0x00, 0x0a, 0x00, 0x00, 0x1f],
                ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x31)),
                port: 52_210,
                ttl: 64,
            },
            server: remote(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 0x443)),
                4443,
                56,
            ),
            offset_ms: 45_000,
            rtt_ms: 22,
            traffic: Traffic::TrustedTls13 {
                server_name: "api.example.test",
                san: "api.example.test",
                path: "/v1/status",
                user_agent: "demo-agent/1.0",
                body_len: 12_000,
            },
            process: None,
            expected: "`tls` event, version 1.3 on port 4443: known protocol on an odd port, \
                       **no AN0404 alert** (negative control)",
        },
        Scenario {
            name: "random_port80",
            title: "Random-looking bytes on port 80, no HTTP",
            client_host: "lab-09",
            client: lan_v4(9, 53_311),
            server: remote(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77)), 80, 50),
            offset_ms: 70_000,
            rtt_ms: 26,
            traffic: Traffic::RandomOnHttpPort,
            process: None,
            expected: "not HTTP on an HTTP port, high entropy: **AN0404 alert** (short flow, \
                       lower confidence)",
        },
        Scenario {
            name: "tls13_no_sni",
            title: "TLS 1.3 to an IP address: ClientHello without SNI, certificate for the IP",
            client_host: "lab-09",
            client: lan_v4(9, 53_340),
            server: remote(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 30)), 443, 52),
            offset_ms: 90_000,
            rtt_ms: 20,
            traffic: Traffic::TrustedTls13 {
                server_name: "198.51.100.30",
                san: "198.51.100.30",
                path: "/",
                user_agent: "demo-agent/1.0",
                body_len: 1_200,
            },
            process: None,
            expected: "`tls` event without sni, `tls.anomalies` missing_sni; no host half, \
                       so at most a network-only AN1496 finding",
        },
    ]
}

/// Processes that loaded crypto libraries but opened no connection (negative controls).
fn idle_processes() -> Vec<(u64, Process)> {
    vec![(
        15_000,
        Process {
            host: "win-07",
            platform: Platform::Windows,
            pid: 7400,
            ppid: 5532,
            parent_image: "C:\\Windows\\explorer.exe",
            image: "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            cmdline: "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\"",
            user: "EXAMPLE\\bob",
            guid: Some("{6f3c1a7e-5b2d-6931-1d00-000000002b00}"),
            modules: WIN_CRYPTO_MODULES,
        },
    )]
}

/// One generated flow, as the test and the README see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    /// Scenario name.
    pub name: &'static str,
    /// Transport.
    pub proto: Proto,
    /// Initiator.
    pub client: SocketAddr,
    /// Responder.
    pub server: SocketAddr,
    /// Frames in both directions.
    pub packets: usize,
    /// Frame bytes in both directions.
    pub bytes: usize,
    /// First frame.
    pub start: Timestamp,
    /// Last frame.
    pub end: Timestamp,
    /// Whether the host reported the process behind it.
    pub has_process: bool,
}

/// Everything the generator produces.
pub struct Demo {
    /// The capture.
    pub pcapng: Vec<u8>,
    /// Host events, in time order.
    pub host_events: Vec<HostEvent>,
    /// The flows, in table order.
    pub flows: Vec<FlowInfo>,
    /// The README text.
    pub readme: String,
}

impl Demo {
    /// The host events as JSON lines.
    pub fn host_events_jsonl(&self) -> Result<String, GenError> {
        let mut out = String::new();
        for ev in &self.host_events {
            out.push_str(&serde_json::to_string(ev)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Writes `demo.pcapng`, `demo.hostevents.jsonl` and `README.md` into `dir`.
    pub fn write_to(&self, dir: &Path) -> Result<(), GenError> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(PCAPNG_FILE), &self.pcapng)?;
        std::fs::write(dir.join(HOST_EVENTS_FILE), self.host_events_jsonl()?)?;
        std::fs::write(dir.join(README_FILE), &self.readme)?;
        Ok(())
    }
}

/// Builds the whole demo in memory.
pub fn build() -> Result<Demo, GenError> {
    let base = BASE_SECS * 1_000_000_000;
    let mut ca_rng = Keystream::new("demo ca");
    let ca = tls::DemoCa::new(&mut ca_rng)?;
    let mut all_frames: Vec<Frame> = Vec::new();
    let mut flows = Vec::new();
    let mut host_events = Vec::new();

    for sc in &scenarios() {
        let mut rng = Keystream::new(sc.name);
        let start = base + sc.offset_ms * MS;
        let rtt = sc.rtt_ms * MS;
        let (proto, flow) = match &sc.traffic {
            Traffic::Dns { aaaa } => {
                let id = rng.next_u32() as u16;
                let name = "www.example.test";
                let query = payloads::dns_query(id, name, *aaaa)?;
                let answer = payloads::dns_answer(id, name, WWW_V4, WWW_V6, *aaaa)?;
                let x = UdpExchange {
                    client: sc.client,
                    server: sc.server,
                    start,
                    rtt,
                };
                (Proto::Udp, x.build(&query, &answer, &mut rng)?)
            }
            traffic => {
                let writes = tcp_writes(sc, traffic, &ca, &mut rng, start)?;
                let f = TcpFlow {
                    client: sc.client,
                    server: sc.server,
                    start,
                    rtt,
                };
                (Proto::Tcp, f.build(&writes, &mut rng)?)
            }
        };
        let first = flow
            .frames
            .first()
            .map(|f| f.ts)
            .unwrap_or(Timestamp::from_nanos(start));
        if let Some(p) = &sc.process {
            process_events(&mut host_events, p, first, flow.end, Some((sc, proto, rtt)));
        }
        flows.push(FlowInfo {
            name: sc.name,
            proto,
            client: SocketAddr::new(sc.client.ip, sc.client.port),
            server: SocketAddr::new(sc.server.ip, sc.server.port),
            packets: flow.frames.len(),
            bytes: flow.frames.iter().map(|f| f.data.len()).sum(),
            start: first,
            end: flow.end,
            has_process: sc.process.is_some(),
        });
        all_frames.extend(flow.frames);
    }
    for (offset_ms, p) in idle_processes() {
        let at = Timestamp::from_nanos(base + offset_ms * MS);
        process_events(&mut host_events, &p, at, at, None);
    }
    host_events.sort_by_key(|e| e.timestamp);
    all_frames.sort_by_key(|f| f.ts);

    let mut w = entrospect::capture::writer::PcapngWriter::new(Vec::new())?;
    let iface = w.add_interface(LinkType::ETHERNET, 65_535)?;
    for f in &all_frames {
        w.write_packet(iface, f.ts, &f.data)?;
    }
    let pcapng = w.into_inner()?;
    let readme = readme(&flows, pcapng.len());
    Ok(Demo {
        pcapng,
        host_events,
        flows,
        readme,
    })
}

/// Builds the demo and writes it into `dir`.
pub fn generate(dir: &Path) -> Result<Demo, GenError> {
    let demo = build()?;
    demo.write_to(dir)?;
    Ok(demo)
}

/// The application writes of a TCP scenario.
fn tcp_writes(
    sc: &Scenario,
    traffic: &Traffic,
    ca: &tls::DemoCa,
    rng: &mut Keystream,
    start: u64,
) -> Result<Vec<Write>, GenError> {
    let now_secs = start / 1_000_000_000;
    match traffic {
        Traffic::TrustedTls13 {
            server_name,
            san,
            path,
            user_agent,
            body_len,
        } => {
            let validity = tls::Validity {
                not_before: (2026, 11, 1),
                not_after: (2027, 2, 1),
            };
            let serial = u64::from(rng.next_u32());
            let leaf = ca.issue(rng, &[san], serial, validity)?;
            let body = payloads::html_page(rng, server_name, *body_len);
            let response = payloads::http_ok("text/html; charset=utf-8", "", &body);
            let request = payloads::http_get(server_name, path, user_agent, "");
            tls::run(&tls::TlsSession {
                label: sc.name,
                now_secs,
                tls12_only: false,
                server_name,
                alpn: &["http/1.1"],
                leaf: &leaf,
                trust: tls::Trust::Root(ca.root()),
                request: &request,
                response: &response,
                response_delay: 3 * MS,
            })
        }
        Traffic::BadCertTls12 => {
            let validity = tls::Validity {
                not_before: (2025, 1, 1),
                not_after: (2026, 1, 1),
            };
            let leaf = tls::self_signed(rng, &["localhost"], 1, validity)?;
            let request = payloads::http_get(
                "update.example.test",
                "/api/v2/check?id=7f3a",
                "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0)",
                "",
            );
            let body = rng.bytes(1_024);
            let response = payloads::http_ok("application/octet-stream", "", &body);
            tls::run(&tls::TlsSession {
                label: sc.name,
                now_secs,
                tls12_only: true,
                server_name: "update.example.test",
                alpn: &[],
                leaf: &leaf,
                trust: tls::Trust::AnyCertificate,
                request: &request,
                response: &response,
                response_delay: 5 * MS,
            })
        }
        Traffic::ChachaBeacon => Ok(payloads::chacha_beacon(rng, 8)),
        Traffic::HttpGzip => {
            let gz = payloads::gzip_report(rng, 30_000)?;
            let request = payloads::http_get(
                "files.example.test",
                "/exports/metrics-2026-11-21.csv",
                "Wget/1.21.4",
                "Accept-Encoding: gzip\r\n",
            );
            let response = payloads::http_ok("text/csv", "Content-Encoding: gzip\r\n", &gz);
            Ok(vec![
                Write::client(request, 0),
                Write::server(response, 4 * MS),
            ])
        }
        Traffic::RandomOnHttpPort => Ok(vec![
            Write::client(rng.bytes(412), 0),
            Write::server(rng.bytes(268), MS),
            Write::client(rng.bytes(903), 300 * MS),
            Write::server(rng.bytes(655), MS),
        ]),
        Traffic::Dns { .. } => Err(GenError::Packet(format!(
            "scenario {} is UDP, not TCP",
            sc.name
        ))),
    }
}

/// Host events of one process: start, module loads, the connection (if any), exit.
fn process_events(
    out: &mut Vec<HostEvent>,
    p: &Process,
    first_packet: Timestamp,
    last_packet: Timestamp,
    flow: Option<(&Scenario, Proto, u64)>,
) {
    let ev = |at: Timestamp, kind: HostEventKind| HostEvent {
        timestamp: at,
        host: p.host.to_owned(),
        platform: p.platform,
        kind,
    };
    let before = |ms: u64| Timestamp::from_nanos(first_packet.as_nanos().saturating_sub(ms * MS));
    let guid = p.guid.map(str::to_owned);
    out.push(ev(
        before(600),
        HostEventKind::ProcessStart {
            pid: p.pid,
            ppid: Some(p.ppid),
            image: p.image.to_owned(),
            cmdline: Some(p.cmdline.to_owned()),
            user: Some(p.user.to_owned()),
            process_guid: guid.clone(),
            parent_image: Some(p.parent_image.to_owned()),
            parent_guid: None,
        },
    ));
    for (i, module) in p.modules.iter().enumerate() {
        out.push(ev(
            before(400 - 20 * i as u64),
            HostEventKind::ModuleLoad {
                pid: p.pid,
                image: Some(p.image.to_owned()),
                module: (*module).to_owned(),
                process_guid: guid.clone(),
            },
        ));
    }
    if let Some((sc, proto, rtt)) = flow {
        // Reported once the connection is up: one round trip after the SYN.
        out.push(ev(
            first_packet.saturating_add_nanos(rtt),
            HostEventKind::NetworkConnect {
                pid: p.pid,
                image: Some(p.image.to_owned()),
                proto: match proto {
                    Proto::Tcp => HostProto::Tcp,
                    Proto::Udp => HostProto::Udp,
                },
                src_ip: Some(sc.client.ip),
                src_port: Some(sc.client.port),
                dest_ip: sc.server.ip,
                dest_port: sc.server.port,
                direction: ConnDirection::Outbound,
                process_guid: guid.clone(),
            },
        ));
        out.push(ev(
            last_packet.saturating_add_nanos(500 * MS),
            HostEventKind::ProcessExit {
                pid: p.pid,
                process_guid: guid,
            },
        ));
    }
}

/// The README: how to regenerate, and one row per flow.
fn readme(flows: &[FlowInfo], pcapng_len: usize) -> String {
    let table = scenarios();
    let mut s = String::new();
    s.push_str(
        "# Demo capture\n\n\
         `demo.pcapng` and `demo.hostevents.jsonl` are what `cargo run --example replay` reads \
         when given no file. They are generated, never edited by hand: every handshake comes \
         from rustls (client and server talking in memory), certificates from rcgen, the C2 \
         ciphertext from RustCrypto's `chacha20`, the gzip body from flate2, DNS messages \
         from simple-dns, and every header and checksum from etherparse's `PacketBuilder`. \
         This README is written by the same generator.\n\n\
         Regenerate (deterministic: same bytes on every run with the same dependency \
         versions, since all randomness is seeded):\n\n\
         ```sh\n\
         cargo run --example gen_demo -- examples/data\n\
         ```\n\n\
         `cargo test --test demo_capture` checks the committed files (checksums, handshakes, \
         segment sizes, host events matching flows) and that regenerating gives the same flows.\n\n",
    );
    let _ = writeln!(
        s,
        "Capture: Ethernet, {} packets, {} bytes; starts 2026-11-22T10:00:00Z. \
         Client side of the LAN is 10.0.0.0/24 (gateway MAC 02:00:0a:00:00:01); RTTs {}–{} ms.\n",
        flows.iter().map(|f| f.packets).sum::<usize>(),
        pcapng_len,
        table.iter().map(|sc| sc.rtt_ms).min().unwrap_or(0),
        table.iter().map(|sc| sc.rtt_ms).max().unwrap_or(0),
    );
    s.push_str(
        "| # | flow | client → server | pkts | what it is | expected from entrospect |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for (i, (f, sc)) in flows.iter().zip(table.iter()).enumerate() {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} {} ({}) → {} | {} | {} | {} |",
            i + 1,
            f.name,
            f.proto.as_str(),
            f.client,
            sc.client_host,
            f.server,
            f.packets,
            sc.title,
            sc.expected
        );
    }
    s.push_str(
        "\n## Host events\n\n\
         `demo.hostevents.jsonl` holds normalized host events (`entrospect::host::HostEvent`, \
         one JSON object a line), written from the same scenario table:\n\n\
         | host | platform | process | pid | loads | connects to (flow) |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    let idle = idle_processes();
    let mut rows: Vec<(&Process, String)> = table
        .iter()
        .filter_map(|sc| {
            let to = SocketAddr::new(sc.server.ip, sc.server.port);
            sc.process
                .as_ref()
                .map(|p| (p, format!("{to} (`{}`)", sc.name)))
        })
        .collect();
    rows.extend(
        idle.iter()
            .map(|(_, p)| (p, "nothing (negative control)".to_owned())),
    );
    for (p, to) in rows {
        let modules: Vec<&str> = p
            .modules
            .iter()
            .map(|m| m.rsplit(['/', '\\']).next().unwrap_or(m))
            .collect();
        let _ = writeln!(
            s,
            "| `{}` | {} | `{}`{} | {} | {} | {} |",
            p.host,
            format!("{:?}", p.platform).to_lowercase(),
            p.cmdline,
            p.guid.map(|g| format!(" guid `{g}`")).unwrap_or_default(),
            p.pid,
            modules.join(", "),
            to
        );
    }
    s.push_str(
        "\nEach `process_start` comes 600 ms before the flow's SYN, module loads 400 ms before, \
         `network_connect` one RTT after the SYN, `process_exit` 500 ms after the last packet.\n",
    );
    s
}
