//! End to end on real paired data: the Log4Shell incident of OTRF's Security-Datasets
//! (`../shared/corpus/host/linux/`: the wire capture, Sysmon for Linux, AUOMS and VM
//! Insights `VMConnection` of the same minutes on host UBUNTU5 = 192.168.2.5), replayed
//! through [`Engine`] the way `examples/replay.rs --host-events` does it: host files
//! opened by format detection, their events sorted by time and merged with the packets
//! (every host event up to a packet's time goes in before that packet).
//!
//! What happened (MANIFEST and the records themselves): java (tomcat, pid 1340) is hit
//! by a JNDI lookup, connects to 192.168.2.6:1389 (LDAP) and :8888 (HTTP class fetch),
//! then runs `bash -c {echo,..}|{base64,-d}|{bash,-i}`; the last bash (pid 17806) opens
//! the reverse shell 192.168.2.5:39634 -> 192.168.2.6:443 and talks **cleartext** on it.
//!
//! What a careful analyst expects from the DET0143 analytics (ANALYTICS.md):
//! - AN0404 (random payload without a known handshake) does not fire: the shell's bytes
//!   are printable prompts and commands, not random.
//! - AN0401 (Linux: unexpected process + crypto library + random or lopsided egress)
//!   with its defaults does not fire either: there is no crypto library (Sysmon for
//!   Linux does not log module loads, so "unknown"), the payload is not random, and the
//!   session is lopsided (183 bytes out, 8 in, ratio 22.9) but far below the volume
//!   (`asymmetry_min_bytes`, 16 KiB) under which a ratio says little. That is right: a
//!   cleartext shell is T1059/T1571, not an encrypted channel.
//! - With the asymmetry test opened to any volume (`asymmetry_min_bytes = 0`, the
//!   knob's documented meaning, not a value fitted to this file), AN0401 fires on the
//!   bash flow and its alert carries the joined process (pid 17806, /bin/bash, its
//!   bash parent) and says which evidence it used and which was missing.
//!
//! The joins themselves are checked against the engine's own host index with the
//! correlator's window, for every flow of the capture.

mod common;

use entrospect::host::HostEvent;
use entrospect::host::HostProto;
use entrospect::host::adapters::{OpenOptions, open_host_file_with};
use entrospect::host::index::ConnMatch;
use entrospect::output::AlertEvent;
use entrospect::time::Timestamp;
use entrospect::{Config, Engine, Event};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const PCAP: &str = "pcap_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.pcap";
const SYSMON: &str = "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json";
const AUOMS: &str =
    "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json";
const VMCONN: &str =
    "vminsights_vmconnection_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json";

fn linux_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/host/linux");
    if dir.join(PCAP).is_file() {
        Some(dir)
    } else {
        eprintln!(
            "paired Log4Shell data not found under {}: skipping",
            dir.display()
        );
        None
    }
}

/// Host events of `files`, read as `replay --host-events` reads them, sorted by time.
fn host_events(files: &[PathBuf], cfg: &Config) -> Vec<HostEvent> {
    let mut out = Vec::new();
    for path in files {
        let opts = OpenOptions {
            crypto_libs: cfg.crypto_libs.clone(),
            ..OpenOptions::default()
        };
        let adapter =
            open_host_file_with(path, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.extend(adapter.filter_map(Result::ok));
    }
    out.sort_by_key(|e| e.timestamp);
    out
}

/// The replay example's merge: host events up to each packet's time, then the packet.
fn replay(pcap: Option<&Path>, files: &[PathBuf], cfg: Config) -> (Engine, Vec<Event>) {
    let hosts = host_events(files, &cfg);
    let mut engine = Engine::new(cfg).expect("config is valid");
    let (events, err) = common::feed_merged(&mut engine, pcap, &hosts);
    assert_eq!(err, None, "capture opens and is intact");
    (engine, events)
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

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip literal")
}

/// The correlator's outbound lookup for a flow seen on the wire, with its window.
fn join<'a>(
    engine: &'a Engine,
    client: (&str, u16),
    server: (&str, u16),
    start: Timestamp,
) -> Option<ConnMatch<'a>> {
    let c = &engine.config().correlation;
    let window = c
        .time_window_secs
        .saturating_add(c.clock_skew_secs)
        .saturating_mul(1_000_000_000);
    engine.host_index().lookup_connection(
        None,
        HostProto::Tcp,
        (ip(client.0), Some(client.1)),
        (ip(server.0), server.1),
        start,
        window,
        0,
    )
}

/// First packet (the SYN) of each client -> server conversation, from the engine's flow
/// records.
fn flow_start(events: &[Event], client_port: u16, server_port: u16) -> Timestamp {
    events
        .iter()
        .find_map(|e| match e {
            Event::Flow(f)
                if f.header.src_port == client_port && f.header.dest_port == server_port =>
            {
                Some(f.flow.start)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("flow :{client_port} -> :{server_port} in the capture"))
}

fn files(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| dir.join(n)).collect()
}

#[test]
fn log4shell_flows_join_to_java_1340_and_bash_17806_within_milliseconds() {
    let Some(dir) = linux_dir() else { return };
    let (engine, events) = replay(
        Some(&dir.join(PCAP)),
        &files(&dir, &[SYSMON, AUOMS]),
        Config::default(),
    );
    let shell_start = flow_start(&events, 39634, 443);
    let shell = join(
        &engine,
        ("192.168.2.5", 39634),
        ("192.168.2.6", 443),
        shell_start,
    )
    .expect("reverse shell joins a process");
    assert_eq!(shell.process.pid, 17806);
    assert_eq!(shell.process.image.as_deref(), Some("/bin/bash"));
    assert_eq!(shell.process.cmdline.as_deref(), Some("bash -i"));
    assert_eq!(shell.process.parent_image.as_deref(), Some("/bin/bash"));
    assert!(shell.quality.full_tuple, "Sysmon EID 3 has the source port");
    // Lineage: 17806 <- 17794 (bash -i) <- 17790 (bash -c {echo,..}) <- java 1340.
    let host = shell.process.host.as_str();
    let mut lineage = vec![shell.process.pid];
    let mut cur = shell.process;
    while let Some(ppid) = cur.ppid {
        lineage.push(ppid);
        match engine.host_index().process_at(host, ppid, shell_start) {
            Some(p) if lineage.len() < 8 => cur = p,
            _ => break,
        }
    }
    eprintln!("reverse shell lineage (pids): {lineage:?}");
    assert_eq!(lineage.get(..4), Some(&[17806, 17794, 17790, 1340][..]));

    // Clock skew: Sysmon stamps the connect 7-8 ms after the wire's SYN, for all three.
    let mut skews = Vec::new();
    for (sport, dport, pid) in [
        (39634u16, 443u16, 17806u32),
        (41696, 1389, 1340),
        (41878, 8888, 1340),
    ] {
        let start = flow_start(&events, sport, dport);
        let m = join(
            &engine,
            ("192.168.2.5", sport),
            ("192.168.2.6", dport),
            start,
        )
        .unwrap_or_else(|| panic!(":{sport} -> :{dport} joins"));
        assert_eq!(m.process.pid, pid, ":{sport} -> :{dport}");
        assert!(m.quality.full_tuple);
        let skew_ms = m.quality.time_delta_ns / 1_000_000;
        eprintln!(
            ":{sport} -> 192.168.2.6:{dport}: pid {} {} host - wire = {skew_ms} ms",
            m.process.pid,
            m.process.image.as_deref().unwrap_or("?")
        );
        skews.push(skew_ms);
    }
    assert!(
        skews.iter().all(|s| (0..=50).contains(s)),
        "host clock a few ms behind the wire: {skews:?}"
    );
    // java's image is the full path in one EID 3 and the comm (`java`) in the other.
    let ldap = join(
        &engine,
        ("192.168.2.5", 41696),
        ("192.168.2.6", 1389),
        flow_start(&events, 41696, 1389),
    )
    .expect("ldap joins");
    assert!(
        ldap.process
            .image
            .as_deref()
            .is_some_and(|i| i.ends_with("java"))
    );
    // The inbound exploit request to tomcat :8080 has no host record (Sysmon logged no
    // accept): no join, and none is invented.
    assert!(
        join(
            &engine,
            ("192.168.2.5", 8080),
            ("192.168.2.6", 38782),
            flow_start(&events, 38782, 8080)
        )
        .is_none()
    );
}

#[test]
fn cleartext_reverse_shell_raises_nothing_with_default_tunables() {
    let Some(dir) = linux_dir() else { return };
    let (engine, events) = replay(
        Some(&dir.join(PCAP)),
        &files(&dir, &[SYSMON, AUOMS, VMCONN]),
        Config::default(),
    );
    let all = alerts(&events);
    for a in &all {
        eprintln!(
            "{} {} {}:{} -> {}:{} {:?}",
            a.alert.analytic,
            a.alert.severity_name.as_str(),
            a.header.src_ip,
            a.header.src_port,
            a.header.dest_ip,
            a.header.dest_port,
            a.alert.reasons
        );
    }
    assert!(
        all.is_empty(),
        "a cleartext shell and cleartext LDAP/HTTP are no encrypted channel"
    );
    let st = engine.stats();
    assert!(
        st.host.events > 100,
        "host events went in: {}",
        st.host.events
    );
}

#[test]
fn reverse_shell_alert_at_any_volume_names_bash_17806_and_the_missing_crypto_evidence() {
    let Some(dir) = linux_dir() else { return };
    let mut cfg = Config::default();
    cfg.an0401.asymmetry_min_bytes = 0;
    let (_, events) = replay(
        Some(&dir.join(PCAP)),
        &files(&dir, &[SYSMON, AUOMS, VMCONN]),
        cfg,
    );
    let all = alerts(&events);
    for a in &all {
        eprintln!("{}", serde_json::to_string(&a.alert).unwrap_or_default());
    }
    let shell: Vec<_> = all
        .iter()
        .filter(|a| a.header.src_port == 39634 && a.header.dest_port == 443)
        .collect();
    assert_eq!(shell.len(), 1, "one alert for the shell flow");
    let a = &shell[0].alert;
    assert_eq!(a.analytic, "AN0401");
    let p = a.process.as_ref().expect("alert carries the process");
    assert_eq!(p.pid, 17806);
    assert_eq!(p.image, "/bin/bash");
    assert_eq!(p.parent_image.as_deref(), Some("/bin/bash"));
    assert!(p.crypto_modules.is_empty());
    let has = |needle: &str| a.reasons.iter().any(|r| r.contains(needle));
    assert!(has("joined to pid 17806 /bin/bash"), "{:?}", a.reasons);
    assert_eq!(p.cmdline.as_deref(), Some("bash -i"));
    assert!(has("lopsided traffic"), "{:?}", a.reasons);
    assert!(has("no crypto module load seen"), "{:?}", a.reasons);
    // Without crypto evidence the alert stays below High.
    assert_eq!(a.severity_name.as_str(), "medium");
    // The java flows are balanced (LDAP 129/196, HTTP 218/1220 bytes): nothing there.
    assert!(all.iter().all(|a| a.header.dest_port == 443));
}

#[test]
fn vmconnection_rows_alone_join_on_destination_within_their_minute_bucket() {
    let Some(dir) = linux_dir() else { return };
    let (engine, events) = replay(
        Some(&dir.join(PCAP)),
        &files(&dir, &[VMCONN]),
        Config::default(),
    );
    // No source port and a bucket start 43 s before the flows: joined on host address,
    // destination and time, to the process the agent names (no pid).
    for (sport, dport, image) in [
        (39634u16, 443u16, "bash"),
        (41696, 1389, "java"),
        (41878, 8888, "java"),
    ] {
        let start = flow_start(&events, sport, dport);
        let m = join(
            &engine,
            ("192.168.2.5", sport),
            ("192.168.2.6", dport),
            start,
        )
        .unwrap_or_else(|| panic!(":{sport} -> :{dport} joins a VMConnection row"));
        assert!(m.quality.dest_only && !m.quality.full_tuple);
        assert_eq!(m.process.image.as_deref(), Some(image));
        assert_eq!(m.process.pid, 0, "VMConnection has no pid");
        let bucket_lead_s = -m.quality.time_delta_ns / 1_000_000_000;
        eprintln!(":{sport} -> :{dport}: {image}, bucket starts {bucket_lead_s} s before the SYN");
        assert!((0..60).contains(&bucket_lead_s));
    }
    // A destination no row names does not join, even from a known source address.
    assert!(
        join(
            &engine,
            ("192.168.2.5", 39634),
            ("192.168.2.6", 444),
            flow_start(&events, 39634, 443)
        )
        .is_none()
    );
}

/// The corpus MANIFEST's negative controls: crypto-library loads with no C2 egress,
/// inbound-only OpenSSL use, TLS to a valid public certificate. None has a paired
/// capture, so each goes through the engine alone (as `replay --host-events FILE` with
/// an empty capture would): whatever the host half sees, nothing above low severity may
/// come out (a host half alone is never an alert; ANALYTICS.md).
#[test]
fn negative_controls_through_the_engine_raise_nothing_above_low() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/host");
    if !dir.is_dir() {
        eprintln!("host corpus not found at {}: skipping", dir.display());
        return;
    }
    let controls = [
        (
            "windows/aptsimulator_cobaltstrike.zip",
            "crypto loads, no egress",
        ),
        ("windows/Sysmon_UACME_64.evtx", "crypto loads, no C2"),
        (
            "windows/psh_python_webserver.zip",
            "OpenSSL DLLs, inbound only",
        ),
        (
            "windows/psh_mshta_html_application_execution.zip",
            "TLS to a valid public cert",
        ),
        (
            "windows/PanacheSysmon_vs_AtomicRedTeam01.evtx",
            "LOLBin downloads from CDNs",
        ),
    ];
    eprintln!(
        "{:<52} {:<28} {:>7} {:>7} {:>7} {:>6}",
        "file", "control", "events", "modules", "connect", "alerts"
    );
    for (rel, what) in controls {
        let (engine, events) = replay(None, &[dir.join(rel)], Config::default());
        let st = engine.stats();
        let above_low: Vec<_> = alerts(&events)
            .into_iter()
            .filter(|a| a.alert.severity_name.level() > entrospect::detect::Severity::Low.level())
            .collect();
        eprintln!(
            "{:<52} {:<28} {:>7} {:>7} {:>7} {:>6}",
            rel,
            what,
            st.host.events,
            st.host.index.module_load_events,
            st.host.index.network_connect_events,
            alerts(&events).len()
        );
        assert!(st.host.events > 0, "{rel}: host events went in");
        assert!(above_low.is_empty(), "{rel}: {above_low:?}");
    }
}
