//! The demo scenario's known flows, built by hand as `FlowVerdictInput`s, against the
//! demo's real host events (`examples/data/demo.hostevents.jsonl`) in a real
//! `HostIndex`. The end-to-end replay test belongs to the engine.

use entrospect::detect::DetectConfig;
use entrospect::detect::Severity;
use entrospect::detect::an0404::An0404Config;
use entrospect::detect::correlate::{Alert, Correlator, FlowVerdictInput};
use entrospect::host::HostEvent;
use entrospect::host::index::{HostIndex, HostIndexConfig};
use entrospect::inspect::entropy::Randomness;
use entrospect::inspect::protocol::AppProto;
use entrospect::inspect::tls::{TlsAnomaly, TlsConfig, TlsSummary, an1496_score};
use entrospect::time::Timestamp;
use sha2::{Digest, Sha256};
use std::path::Path;

fn demo_index() -> HostIndex {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo.hostevents.jsonl");
    let text = std::fs::read_to_string(&path).expect("demo host events are in the repo");
    let mut idx = HostIndex::new(HostIndexConfig::default());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let ev: HostEvent = serde_json::from_str(line).expect("demo event parses");
        idx.ingest(ev);
    }
    idx
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("timestamp")
}

/// Keystream-like bytes (SHA-256 in counter mode) standing in for the ChaCha20 beacon.
fn random(n: usize) -> Randomness {
    let mut out = Vec::with_capacity(n);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(&Sha256::digest(i.to_le_bytes()));
        i += 1;
    }
    out.truncate(n);
    Randomness::of(&out)
}

fn input<'a>(
    id: u64,
    client: (&str, u16),
    server: (&str, u16),
    start: &str,
) -> FlowVerdictInput<'a> {
    let t = at(start);
    FlowVerdictInput {
        flow_id: id,
        proto: 6,
        client: (client.0.parse().expect("ip"), client.1),
        server: (server.0.parse().expect("ip"), server.1),
        start: t,
        now: t.saturating_add_nanos(1_000_000_000),
        bytes: [2048, 2048],
        payload_bytes: [1736, 1736],
        pkts: [6, 6],
        app_proto: AppProto::Unknown,
        randomness: [None, None],
        an0404: None,
        tls: None,
        an1496_network: None,
        ended: false,
    }
}

fn find<'a>(alerts: &'a [Alert], analytic: &str) -> Option<&'a Alert> {
    alerts.iter().find(|a| a.analytic == analytic)
}

fn correlator() -> Correlator {
    Correlator::new(&DetectConfig::default(), &An0404Config::default()).expect("correlator")
}

#[test]
fn demo_python_beacon_gives_an0401_joined_to_pid_4242() {
    let idx = demo_index();
    let mut c = correlator();
    let mut f = input(
        4,
        ("10.0.0.5", 50514),
        ("203.0.113.9", 4444),
        "2026-11-22T10:00:10Z",
    );
    f.randomness = [Some(random(4096)), Some(random(4096))];
    let alerts = c.evaluate(&idx, &f);
    let a = find(&alerts, "AN0401").expect("AN0401 fires");
    let p = a.process.as_ref().expect("joined process");
    assert_eq!(p.pid, 4242);
    assert_eq!(p.image, "/usr/bin/python3");
    assert!(a.severity >= Severity::High, "{a:?}");
    assert!(
        a.reasons.iter().any(|r| r.contains("libcrypto.so.3")),
        "{:?}",
        a.reasons
    );
    assert_eq!(c.stats().joins_full_tuple, 1);
}

#[test]
fn demo_rundll32_bad_certificate_gives_joined_an1496() {
    let idx = demo_index();
    let mut tls = TlsSummary {
        version: Some("TLS 1.2".to_owned()),
        sni: Some("update.example.test".to_owned()),
        subject: Some("CN=localhost".to_owned()),
        ..TlsSummary::default()
    };
    for a in [
        TlsAnomaly::SelfSigned,
        TlsAnomaly::Expired,
        TlsAnomaly::HostnameMismatch,
    ] {
        tls.anomalies.insert(a);
    }
    let finding = an1496_score(&tls, &TlsConfig::default()).expect("network half scores");
    let mut f = input(
        5,
        ("10.0.0.7", 49712),
        ("203.0.113.50", 443),
        "2026-11-22T10:00:20Z",
    );
    f.app_proto = AppProto::Tls;
    f.tls = Some(&tls);
    f.an1496_network = Some(&finding);
    let mut c = correlator();
    let alerts = c.evaluate(&idx, &f);
    let a = find(&alerts, "AN1496").expect("AN1496 fires");
    assert!(a.severity >= Severity::High, "{a:?}");
    assert!(a.score >= finding.score);
    let p = a.process.as_ref().expect("joined");
    assert_eq!(p.pid, 6120);
    assert!(p.image.ends_with("rundll32.exe"));
    assert!(
        a.reasons.iter().any(|r| r.contains("rsaenh.dll")),
        "{:?}",
        a.reasons
    );
}

#[test]
fn demo_curl_clean_tls_gives_nothing() {
    let idx = demo_index();
    let tls = TlsSummary {
        version: Some("TLS 1.3".to_owned()),
        sni: Some("www.example.test".to_owned()),
        ..TlsSummary::default()
    };
    let mut f = input(
        3,
        ("10.0.0.5", 50500),
        ("198.51.100.10", 443),
        "2026-11-22T10:00:01Z",
    );
    f.app_proto = AppProto::Tls;
    f.tls = Some(&tls);
    f.randomness = [Some(random(4096)), Some(random(4096))];
    assert!(an1496_score(&tls, &TlsConfig::default()).is_none());
    let mut c = correlator();
    assert!(c.evaluate(&idx, &f).is_empty());
    assert_eq!(c.stats().joins_succeeded, 1);
}

#[test]
fn demo_chrome_crypto_loads_without_a_flow_stay_quiet() {
    // chrome.exe loads rsaenh/crypt32 and connects nowhere: an unrelated flow from
    // win-07 must not be pinned on it.
    let idx = demo_index();
    let mut f = input(
        9,
        ("10.0.0.7", 50000),
        ("198.51.100.99", 443),
        "2026-11-22T10:00:15Z",
    );
    f.randomness = [Some(random(4096)), Some(random(4096))];
    let mut c = correlator();
    let alerts = c.evaluate(&idx, &f);
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(c.stats().joins_succeeded, 0);
}

/// Real Sysmon-for-Linux telemetry of the OTRF Log4Shell incident: the bash reverse
/// shell 192.168.2.5:39634 -> 192.168.2.6:443 joins to bash (pid 17806) by full
/// 5-tuple; it is cleartext and tiny (183 B / 8 B), so AN0401 stays quiet.
#[test]
fn corpus_log4shell_bash_reverse_shell_joins_and_cleartext_stays_quiet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/host");
    if !dir.is_dir() {
        eprintln!("skipping: host corpus not found at {}", dir.display());
        return;
    }
    let rel = "linux/syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json";
    let mut adapter =
        entrospect::host::adapters::open_host_file(&dir.join(rel), None, Some("corpus-host"))
            .expect("open corpus file");
    let events: Vec<HostEvent> = adapter.by_ref().filter_map(Result::ok).collect();
    let conn_ts = events
        .iter()
        .find(|e| {
            matches!(
                &e.kind,
                entrospect::host::HostEventKind::NetworkConnect {
                    pid: 17806,
                    src_port: Some(39634),
                    ..
                }
            )
        })
        .map(|e| e.timestamp)
        .expect("the reverse shell's EID 3");
    let mut idx = HostIndex::new(HostIndexConfig::default());
    for e in events {
        idx.ingest(e);
    }
    let mut f = input(
        1,
        ("192.168.2.5", 39634),
        ("192.168.2.6", 443),
        "2022-05-11T18:10:20Z",
    );
    f.start = conn_ts;
    f.now = conn_ts;
    f.bytes = [183, 8];
    let mut c = correlator();
    let alerts = c.evaluate(&idx, &f);
    let stats = c.stats();
    eprintln!("log4shell join: {stats:?}");
    assert_eq!(stats.joins_succeeded, 1);
    assert_eq!(stats.joins_full_tuple, 1);
    assert!(find(&alerts, "AN0401").is_none(), "{alerts:?}");
}

/// Throughput of `Correlator::evaluate` on a joined flow (prints, never asserts speed).
/// Run with `cargo test --test correlate -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn measure_evaluate_throughput() {
    let idx = demo_index();
    let mut c = correlator();
    let r = random(4096);
    let n = 100_000u64;
    let t = std::time::Instant::now();
    for i in 0..n {
        let mut f = input(
            i,
            ("10.0.0.5", 50514),
            ("203.0.113.9", 4444),
            "2026-11-22T10:00:10Z",
        );
        f.randomness = [Some(r), Some(r)];
        f.ended = true;
        std::hint::black_box(c.evaluate(&idx, &f));
    }
    let el = t.elapsed();
    eprintln!(
        "{n} joined verdicts in {el:?}: {:.2} us each",
        el.as_secs_f64() * 1e6 / n as f64
    );
}
