//! Real processes on loopback, end to end: `tcpdump -i lo` records the packets while the
//! library's `/proc` poller (run in-process, as `examples/linux_host.rs` does) records the
//! processes, their crypto libraries and their sockets; the capture and the host events
//! are then replayed through `Engine`, merged in time order as `examples/replay.rs` does.
//!
//! Both ends of each connection are local, so the poller sees the client's socket
//! (outbound) and the server's (inbound) with the same addresses: the join must pick the
//! client for the client side.
//!
//! Needs Linux, root (for tcpdump), tcpdump and python3 with `ssl` (and `cryptography`
//! for the beacon, `curl` for the HTTPS fetch); each test skips with a message when one
//! is missing.

mod common;

use entrospect::host::HostEvent;
use entrospect::host::adapters::linux_proc::{
    LinuxProcConfig, LinuxProcPoller, LinuxProcStats, SocketSource,
};
use entrospect::host::crypto_libs::CryptoLibTable;
use entrospect::output::AlertEvent;
use entrospect::{Config, Engine, Event, Timestamp};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time between two polls of `/proc`: fast enough to see a socket that lives 0.5 s.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

fn wall_now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

/// Kills and reaps a child even when an assertion fails.
struct ChildGuard(Child);

impl ChildGuard {
    /// Ask it to stop with `signal` (tcpdump flushes its file on INT), then reap it.
    fn stop(mut self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The python3 binary itself (not a launcher script such as a pyenv shim), so the child
/// pid is the interpreter's from the start.
fn python() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, sys, ssl; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Why this machine cannot run the scenarios, if it cannot.
fn missing_requirement(extra: &[(&str, &[&str])]) -> Option<String> {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self/stat").exists() {
        return Some("needs Linux with /proc".into());
    }
    if !is_root() {
        return Some("needs root to capture on lo".into());
    }
    if !runs("tcpdump", &["--version"]) {
        return Some("tcpdump is not installed".into());
    }
    if python().is_none() {
        return Some("python3 with ssl is not installed".into());
    }
    for (cmd, args) in extra {
        if !runs(cmd, args) {
            return Some(format!("`{cmd} {}` failed", args.join(" ")));
        }
    }
    None
}

/// Start a python script that prints its listening port on its first line.
fn start_server(py: &Path, script: &Path, args: &[&str], cwd: &Path) -> (ChildGuard, u16) {
    let mut child = Command::new(py)
        .arg(script)
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server");
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the server's port");
    let port = line.trim().parse().expect("the server prints its port");
    (guard, port)
}

/// `tcpdump -i lo` on one TCP port, started and listening.
fn start_capture(pcap: &Path, port: u16) -> ChildGuard {
    let mut child = Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-n", "-s", "0", "-w"])
        .arg(pcap)
        .args(["tcp", "port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcpdump");
    let stderr = child.stderr.take().expect("piped stderr");
    let guard = ChildGuard(child);
    // tcpdump says "listening on lo, ..." once the capture is armed.
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read tcpdump's stderr");
        assert!(n > 0, "tcpdump exited before listening");
        if line.contains("listening on") {
            break;
        }
    }
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    guard
}

/// The `/proc` poller on its own thread, polling every [`POLL_INTERVAL`].
struct HostPoller {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(Vec<HostEvent>, LinuxProcStats)>,
}

impl HostPoller {
    fn start(socket_source: SocketSource) -> HostPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let config = LinuxProcConfig {
                socket_source,
                ..LinuxProcConfig::default()
            };
            let mut poller =
                LinuxProcPoller::with_config("scenario-host", config, CryptoLibTable::default());
            let mut events = poller.poll(wall_now());
            let _ = ready_tx.send(());
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(POLL_INTERVAL);
                events.extend(poller.poll(wall_now()));
            }
            // One more, so the exits are seen.
            events.extend(poller.poll(wall_now()));
            (events, poller.stats().clone())
        });
        ready_rx.recv().expect("the first poll finishes");
        HostPoller { stop, handle }
    }

    fn finish(self) -> (Vec<HostEvent>, LinuxProcStats) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("poller thread")
    }
}

/// Replay a capture and host events through the engine, merged by timestamp.
fn replay(pcap: &Path, mut host: Vec<HostEvent>, cfg: Config) -> (Vec<Event>, Engine) {
    let mut engine = Engine::new(cfg).expect("valid config");
    host.sort_by_key(|e| e.timestamp);
    let (events, err) = common::feed_merged(&mut engine, Some(pcap), &host);
    assert_eq!(err, None, "tcpdump wrote a capture that reads to its end");
    (events, engine)
}

/// One line per alert, for the test log.
fn describe(events: &[Event], engine: &Engine) {
    for a in alerts(events) {
        eprintln!(
            "alert {} {:?} score {:.2} pid {:?}: {}",
            a.alert.analytic,
            a.alert.severity_name,
            a.alert.score,
            a.alert.process.as_ref().map(|p| p.pid),
            a.alert.reasons.join("; ")
        );
    }
    let c = engine.correlation_stats();
    eprintln!(
        "joins {} of {} (full tuple {}), suppressed {:?}, last {:?}",
        c.joins_succeeded, c.joins_attempted, c.joins_full_tuple, c.suppressed, c.last_suppression
    );
}

fn alerts(events: &[Event]) -> Vec<&AlertEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Alert(a) => Some(a),
            _ => None,
        })
        .collect()
}

const LISTENER: &str = r#"
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)
while True:
    conn, _ = srv.accept()
    while conn.recv(65536):
        pass
    conn.close()
"#;

/// An implant-like beacon: loads libssl/libcrypto (`import ssl`), then sends AES-256-CTR
/// encrypted check-ins (a fresh nonce each, about 400 bytes) over one long-lived TCP
/// connection, `gap` seconds apart, and prints its local port.
const BEACON: &str = r#"
import hashlib, os, socket, ssl, sys, time
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
port, count, gap = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
key = hashlib.sha256(os.urandom(32)).digest()
s = socket.create_connection(("127.0.0.1", port))
print(s.getsockname()[1], flush=True)
for i in range(count):
    nonce = os.urandom(16)
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    body = b"id=%d;host=lab-7;user=svc;cmd=poll;" % i * 12
    s.sendall(nonce + enc.update(body) + enc.finalize())
    time.sleep(gap)
s.close()
"#;

/// Run the beacon against a local listener with tcpdump and the poller running.
/// Returns the replayed events, the engine, the beacon's pid, image and local port,
/// and the listener's port.
struct BeaconRun {
    events: Vec<Event>,
    engine: Engine,
    pid: u32,
    image: String,
    client_port: u16,
    server_port: u16,
    poller: LinuxProcStats,
}

fn run_beacon(source: SocketSource, cfg: impl FnOnce(&str) -> Config) -> BeaconRun {
    let py = python().expect("checked by missing_requirement");
    let tmp = tempfile::tempdir().expect("tempdir");
    let listener_py = tmp.path().join("listener.py");
    let beacon_py = tmp.path().join("beacon.py");
    std::fs::write(&listener_py, LISTENER).expect("write listener");
    std::fs::write(&beacon_py, BEACON).expect("write beacon");
    let pcap = tmp.path().join("beacon.pcap");

    let poller = HostPoller::start(source);
    let (listener, port) = start_server(&py, &listener_py, &[], tmp.path());
    let capture = start_capture(&pcap, port);
    let mut beacon = Command::new(&py)
        .arg(&beacon_py)
        .args([&port.to_string(), "6", "0.5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the beacon");
    let pid = beacon.id();
    let image = std::fs::read_link(format!("/proc/{pid}/exe"))
        .expect("beacon exe link")
        .to_string_lossy()
        .into_owned();
    let mut line = String::new();
    BufReader::new(beacon.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("beacon prints its port");
    let client_port = line.trim().parse().expect("a port");
    let status = beacon.wait().expect("beacon runs");
    assert!(status.success(), "the beacon failed: {status}");
    // Let the last FIN/ACK reach the capture and the poller see the exit.
    std::thread::sleep(Duration::from_millis(200));
    capture.stop("-INT");
    listener.stop("-TERM");
    let (host, stats) = poller.finish();
    let (events, engine) = replay(&pcap, host, cfg(&image));
    BeaconRun {
        events,
        engine,
        pid,
        image,
        client_port,
        server_port: port,
        poller: stats,
    }
}

const NEEDS_CRYPTOGRAPHY: &[(&str, &[&str])] = &[(
    "python3",
    &["-c", "import cryptography.hazmat.primitives.ciphers"],
)];

#[test]
fn python_aes_beacon_on_loopback_raises_an0401_with_its_pid_and_image() {
    if let Some(why) = missing_requirement(NEEDS_CRYPTOGRAPHY) {
        eprintln!("skipping: {why}");
        return;
    }
    let run = run_beacon(SocketSource::Auto, |_| Config::default());
    describe(&run.events, &run.engine);
    let all = alerts(&run.events);
    let an0401 = all
        .iter()
        .find(|a| a.alert.analytic == "AN0401")
        .unwrap_or_else(|| {
            panic!(
                "no AN0401; alerts: {all:#?}\ncorrelation: {:?}\npoller: {:?}",
                run.engine.correlation_stats(),
                run.poller
            )
        });
    let process = an0401.alert.process.as_ref().expect("a joined process");
    assert_eq!(process.pid, run.pid, "joined to the wrong process");
    assert_eq!(process.image, run.image);
    assert!(
        process
            .crypto_modules
            .iter()
            .any(|m| m.contains("libcrypto") || m.contains("libssl")),
        "no libssl/libcrypto in {:?}",
        process.crypto_modules
    );
    // The client side of the flow: the beacon's ephemeral port to the listener.
    assert_eq!(an0401.header.src_port, run.client_port);
    assert_eq!(an0401.header.dest_port, run.server_port);
    assert!(
        an0401.alert.severity_name >= entrospect::detect::Severity::High,
        "{:?}",
        an0401.alert
    );
    assert!(
        an0401
            .alert
            .reasons
            .iter()
            .any(|r| r.contains("random egress")),
        "{:?}",
        an0401.alert.reasons
    );
    // Netlink unless the sandbox forbids it, in which case the fallback says why.
    let expected = if run.poller.sock_diag_errors == 0 {
        SocketSource::SockDiag
    } else {
        SocketSource::ProcNet
    };
    assert_eq!(run.poller.socket_source, Some(expected), "{:?}", run.poller);
}

#[test]
fn python_aes_beacon_from_an_allowed_image_raises_no_an0401_and_says_why() {
    if let Some(why) = missing_requirement(NEEDS_CRYPTOGRAPHY) {
        eprintln!("skipping: {why}");
        return;
    }
    // This run reads the socket table from /proc/net, the fallback source.
    let run = run_beacon(SocketSource::ProcNet, |image| {
        let mut cfg = Config::default();
        cfg.an0401.allowed_crypto_processes.push(image.to_owned());
        cfg
    });
    describe(&run.events, &run.engine);
    let all = alerts(&run.events);
    assert!(
        !all.iter().any(|a| a.alert.analytic == "AN0401"),
        "AN0401 fired for an allowed image: {all:#?}"
    );
    assert_eq!(run.poller.socket_source, Some(SocketSource::ProcNet));
    let corr = run.engine.correlation_stats();
    assert_eq!(corr.suppressed.get("AN0401"), Some(&1), "{corr:?}");
    let (analytic, why) = corr.last_suppression.clone().expect("a suppression");
    assert_eq!(analytic, "AN0401");
    assert!(
        why.contains(&run.image) && why.contains("allowed_crypto_processes"),
        "{why}"
    );
    // The wire-only finding may stand, but joined to the allowed image it is lowered
    // below high and says so.
    for a in &all {
        assert!(
            a.alert.severity_name < entrospect::detect::Severity::High,
            "{:?}",
            a.alert
        );
        if a.alert.analytic == "AN0404" {
            assert_eq!(a.alert.process.as_ref().map(|p| p.pid), Some(run.pid));
            assert!(
                a.alert
                    .reasons
                    .iter()
                    .any(|r| r.contains("allowed_crypto_processes")),
                "{:?}",
                a.alert.reasons
            );
        }
    }
}

/// An HTTPS server with a certificate from a local CA; each response waits `delay`
/// seconds, so the client's connection lives long enough for the poller to see it.
const HTTPS_SERVER: &str = r#"
import http.server, ssl, sys, time
cert, key, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
class Slow(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        time.sleep(delay)
        super().do_GET()
    def log_message(self, *args):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.HTTPServer(("127.0.0.1", 0), Slow)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// A CA and a leaf for `localhost`/127.0.0.1 signed by it, as PEM files in `dir`:
/// (ca.pem, leaf.pem, leaf.key).
fn local_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "entrospect scenario CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");
    let paths = (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).expect("write ca");
    std::fs::write(&paths.1, leaf_cert.pem()).expect("write leaf");
    std::fs::write(&paths.2, leaf_key.serialize_pem()).expect("write key");
    (paths.0, paths.1, paths.2)
}

#[test]
fn curl_fetching_https_from_a_trusted_local_server_raises_nothing() {
    if let Some(why) = missing_requirement(&[("curl", &["--version"])]) {
        eprintln!("skipping: {why}");
        return;
    }
    let py = python().expect("checked");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ca, leaf, key) = local_ca(tmp.path());
    let server_py = tmp.path().join("https_server.py");
    std::fs::write(&server_py, HTTPS_SERVER).expect("write server");
    let www = tmp.path().join("www");
    std::fs::create_dir(&www).expect("www dir");
    std::fs::write(www.join("index.html"), "<html><body>hello</body></html>\n")
        .expect("write page");
    let pcap = tmp.path().join("curl.pcap");

    let poller = HostPoller::start(SocketSource::Auto);
    let (server, port) = start_server(
        &py,
        &server_py,
        &[
            leaf.to_str().expect("utf-8 path"),
            key.to_str().expect("utf-8 path"),
            "0.5",
        ],
        &www,
    );
    let capture = start_capture(&pcap, port);
    let mut curl_pids = Vec::new();
    for _ in 0..3 {
        let child = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--fail", "--cacert"])
            .arg(&ca)
            .arg(format!("https://localhost:{port}/index.html"))
            .spawn()
            .expect("start curl");
        curl_pids.push(child.id());
        let out = child.wait_with_output().expect("curl runs");
        assert!(out.status.success(), "curl failed: {}", out.status);
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(200));
    capture.stop("-INT");
    server.stop("-TERM");
    let (host, _) = poller.finish();
    let (events, engine) = replay(&pcap, host, Config::default());
    describe(&events, &engine);

    // The joins happened (so "no alert" is a verdict, not a missing join): curl's
    // connections are in the index.
    let idx = engine.host_index();
    let joined = curl_pids
        .iter()
        .filter(|pid| {
            events.iter().any(|e| match e {
                Event::Flow(f) => idx
                    .lookup_connection(
                        None,
                        entrospect::host::HostProto::Tcp,
                        (f.header.src_ip, Some(f.header.src_port)),
                        (f.header.dest_ip, f.header.dest_port),
                        f.flow.start,
                        10_000_000_000,
                        0,
                    )
                    .is_some_and(|m| m.process.pid == **pid),
                _ => false,
            })
        })
        .count();
    assert!(joined >= 1, "no curl flow joined to its curl process");
    let flows = events
        .iter()
        .filter(|e| matches!(e, Event::Flow(_)))
        .count();
    assert!(flows >= 3, "expected three flows, got {flows}");
    let loud: Vec<_> = alerts(&events)
        .into_iter()
        .filter(|a| a.alert.severity_name >= entrospect::detect::Severity::Medium)
        .collect();
    assert!(loud.is_empty(), "alerts for curl: {loud:#?}");
}

/// Time per full socket-table snapshot, `NETLINK_SOCK_DIAG` against the text tables of
/// `/proc/net`, with `ENTROSPECT_SNAPSHOT_CONNS` (default 1000) loopback connections open
/// in this process (both ends, so twice as many sockets), plus whatever else runs on the
/// host. Also one full poll (fd walk of every process included) with each source.
/// Prints the numbers; speed is never asserted.
///
/// `cargo test --test scenario_loopback -- --ignored --nocapture measure_socket_snapshot`
#[cfg(target_os = "linux")]
#[test]
#[ignore = "measurement, not a check"]
fn measure_socket_snapshot_sock_diag_vs_proc_net() {
    use entrospect::host::adapters::linux_proc::read_proc_net;
    use entrospect::host::adapters::sock_diag::SockDiag;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::time::Instant;

    let Ok(mut diag) = SockDiag::open() else {
        eprintln!("skipping: NETLINK_SOCK_DIAG unavailable");
        return;
    };
    let want: usize = std::env::var("ENTROSPECT_SNAPSHOT_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut held = Vec::with_capacity(want.saturating_mul(2));
    for _ in 0..want {
        let Ok(c) = TcpStream::connect(addr) else {
            break;
        };
        let Ok((s, _)) = listener.accept() else {
            break;
        };
        held.push(c);
        held.push(s);
    }
    let conns = held.len() / 2;
    let rounds = 50u32;
    let time = |f: &mut dyn FnMut() -> usize| -> (f64, usize) {
        let mut n = f(); // warm-up
        let t = Instant::now();
        for _ in 0..rounds {
            n = f();
        }
        (t.elapsed().as_secs_f64() * 1e3 / f64::from(rounds), n)
    };
    let (ms_diag, n_diag) = time(&mut || diag.dump(1 << 22).expect("dump").entries.len());
    let proc_root = Path::new("/proc");
    let (ms_proc, n_proc) = time(&mut || read_proc_net(proc_root, 256 << 20).0.len());
    eprintln!(
        "{conns} loopback connections open: sock_diag {ms_diag:.3} ms/snapshot ({n_diag} sockets, \
         TIME_WAIT/SYN_RECV/CLOSE and unconnected UDP filtered by the kernel); \
         /proc/net {ms_proc:.3} ms/snapshot ({n_proc} lines, all states)"
    );
    for source in [SocketSource::SockDiag, SocketSource::ProcNet] {
        let config = LinuxProcConfig {
            socket_source: source,
            ..LinuxProcConfig::default()
        };
        let mut poller = LinuxProcPoller::with_config("measure", config, CryptoLibTable::default());
        let first = poller.poll(wall_now()).len();
        let polls = 5u32;
        let t = Instant::now();
        for _ in 0..polls {
            poller.poll(wall_now());
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / f64::from(polls);
        eprintln!(
            "full poll with {}: {ms:.1} ms (first poll {first} events; source used {:?})",
            source.as_str(),
            poller.stats().socket_source
        );
    }
    drop(held);
}
