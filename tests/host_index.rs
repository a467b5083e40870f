//! Host-state integration tests: the live `/proc` poller against a real Python TLS-capable
//! client, and its events replayed through the JSON-lines reader into the process index.

use entrospect::Timestamp;
use entrospect::host::adapters::jsonl::JsonlReader;
use entrospect::host::adapters::linux_proc::LinuxProcPoller;
use entrospect::host::index::{HostIndex, HostIndexConfig};
use entrospect::host::{ConnDirection, HostEvent, HostEventKind, HostProto};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn wall_now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

/// Kills and reaps the child even when an assertion fails.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_with_ssl() -> bool {
    Command::new("python3")
        .args(["-c", "import ssl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[test]
fn poller_reports_python_start_ssl_load_and_connect_then_index_joins_flow() {
    if !cfg!(target_os = "linux") || !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("skipping: needs Linux with /proc");
        return;
    }
    if !python_with_ssl() {
        eprintln!("skipping: python3 with the ssl module is not available");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local addr").port();
    let script = format!(
        "import ssl, socket, time; s=socket.create_connection((\"127.0.0.1\", {port})); time.sleep(30)"
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn python3");
    let mut child = ChildGuard(child);
    let pid = child.0.id();

    // Wait (bounded) for the client to connect.
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (_stream, peer) = loop {
        match listener.accept() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "python3 did not connect in 60 s");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };

    let mut poller = LinuxProcPoller::new("test-host");
    let t1 = wall_now();
    let first = poller.poll(t1);

    let start = first
        .iter()
        .find(|e| matches!(e.kind, HostEventKind::ProcessStart { pid: p, .. } if p == pid))
        .expect("process_start for the python pid");
    let HostEventKind::ProcessStart {
        image,
        process_guid,
        cmdline,
        ..
    } = &start.kind
    else {
        unreachable!()
    };
    assert!(
        file_name(image).starts_with("python3"),
        "image {image:?} is not python3"
    );
    assert!(process_guid.is_some());
    assert!(
        cmdline
            .as_deref()
            .is_some_and(|c| c.contains("create_connection"))
    );
    assert!(start.timestamp <= t1);

    let modules: Vec<&str> = first
        .iter()
        .filter_map(|e| match &e.kind {
            HostEventKind::ModuleLoad { pid: p, module, .. } if *p == pid => Some(module.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        modules
            .iter()
            .any(|m| file_name(m).starts_with("libssl") || file_name(m).starts_with("libcrypto")),
        "no libssl/libcrypto module_load for python: {modules:?}"
    );

    let connect = first
        .iter()
        .find(|e| {
            matches!(&e.kind, HostEventKind::NetworkConnect { pid: p, dest_port, dest_ip, direction, .. }
                if *p == pid && *dest_port == port
                    && *dest_ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
                    && *direction == ConnDirection::Outbound)
        })
        .expect("outbound network_connect from python to 127.0.0.1:PORT");
    assert!(
        matches!(connect.kind, HostEventKind::NetworkConnect { src_port: Some(sp), .. } if sp == peer.port())
    );
    // Our own accepted socket is reported as inbound to the listening port.
    let me = std::process::id();
    assert!(first.iter().any(|e| matches!(&e.kind,
        HostEventKind::NetworkConnect { pid: p, dest_port, direction: ConnDirection::Inbound, .. }
            if *p == me && *dest_port == port)));

    // The next poll reports only changes: no second start or connect for python.
    let second = poller.poll(wall_now());
    assert!(
        !second.iter().any(|e| e.kind.pid() == pid
            && matches!(
                e.kind,
                HostEventKind::ProcessStart { .. } | HostEventKind::NetworkConnect { .. }
            )),
        "second poll repeated python's events"
    );

    // Replay: JSON lines -> reader -> index -> flow lookup.
    let mut text = String::from("# poller output\n");
    for ev in &first {
        text.push_str(&serde_json::to_string(ev).expect("serialize"));
        text.push('\n');
    }
    let replayed: Vec<HostEvent> = JsonlReader::new(text.as_bytes())
        .collect::<Result<_, _>>()
        .expect("read back");
    // JSON carries microseconds, so compare everything but sub-microsecond time.
    assert_eq!(replayed.len(), first.len());
    for (a, b) in replayed.iter().zip(&first) {
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.timestamp.as_nanos() / 1000, b.timestamp.as_nanos() / 1000);
    }
    let mut index = HostIndex::new(HostIndexConfig::default());
    for ev in replayed {
        index.ingest(ev);
    }
    let m = index
        .lookup_connection(
            Some("test-host"),
            HostProto::Tcp,
            (IpAddr::V4(Ipv4Addr::LOCALHOST), Some(peer.port())),
            (IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            t1,
            5_000_000_000,
            0,
        )
        .expect("index joins the flow to python");
    assert_eq!(m.process.pid, pid);
    assert!(m.quality.full_tuple && m.quality.guid);
    assert!(
        index
            .crypto_loads_before(m.process.id, t1, 3_600_000_000_000)
            .next()
            .is_some(),
        "no crypto load before the connection"
    );

    // Exit is seen once the process is gone.
    let _ = child.0.kill();
    let _ = child.0.wait();
    let third = poller.poll(wall_now());
    assert!(
        third
            .iter()
            .any(|e| matches!(e.kind, HostEventKind::ProcessExit { pid: p, .. } if p == pid)),
        "no process_exit after kill"
    );
    eprintln!(
        "poller: {} events in first poll, {} processes, {} unreadable",
        first.len(),
        poller.stats().processes,
        poller.stats().unreadable
    );
}
