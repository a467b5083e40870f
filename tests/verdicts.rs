//! Scores every corpus capture against the MANIFEST's expected verdict and prints a
//! confusion matrix per analytic (AN0404: fully encrypted flows; AN1496: abnormal TLS).
//!
//! An alert counts when its severity is medium or above; `low` findings are recorded for
//! hunting (e.g. a missing SNI with a SHA-1 intermediate) and listed separately.
//!
//! The MANIFEST's labels are a careful reading, not gospel; this test asserts only what
//! must hold for the detector to be worth shipping:
//! - no NO-ALERT capture raises AN0404 (TLS, SSH, QUIC, WireGuard, OpenVPN, IPsec, DTLS on
//!   any port and compressed/media transfers over cleartext protocols stay quiet);
//! - at least 5 of the 6 ALERT-FE captures raise AN0404;
//! - at least 8 of the 10 ALERT-TLS captures raise AN1496.
//!
//! Every miss and false alarm is printed with its reasons, so the matrix in the notes can be
//! reproduced with `cargo test --test verdicts -- --nocapture`.

mod common;

use entrospect::Event;
use std::collections::BTreeMap;

fn expected_verdicts(manifest: &str) -> BTreeMap<String, String> {
    manifest
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cols.get(1)?.trim_matches('`').to_string();
            let verdict = cols.get(7)?.split([':', ' ']).next()?.to_string();
            Some((name, verdict))
        })
        .collect()
}

#[derive(Default)]
struct Matrix {
    tp: Vec<String>,
    fn_: Vec<String>,
    fp: Vec<String>,
    tn: u32,
}

impl Matrix {
    fn print(&self, name: &str) {
        eprintln!(
            "{name}: TP {} FN {} FP {} TN {}",
            self.tp.len(),
            self.fn_.len(),
            self.fp.len(),
            self.tn
        );
        for m in &self.fn_ {
            eprintln!("  {name} MISS {m}");
        }
        for m in &self.fp {
            eprintln!("  {name} FALSE ALARM {m}");
        }
    }
}

#[test]
fn corpus_verdicts_confusion_matrix() {
    let Some(dir) = common::corpus_dir("pcap") else {
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.md")).unwrap_or_default();
    let expected = expected_verdicts(&manifest);
    let mut fe = Matrix::default();
    let mut tls = Matrix::default();
    let mut other: Vec<String> = Vec::new();
    for path in common::corpus_captures(&dir) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let Some(verdict) = expected.get(&name) else {
            continue;
        };
        let (events, _) = common::replay(&path, entrospect::Config::default());
        let lows: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Alert(a) if a.alert.severity_name == entrospect::output::Severity::Low => {
                    Some(format!(
                        "{} {:?}",
                        a.alert.analytic,
                        a.alert.reasons.first()
                    ))
                }
                _ => None,
            })
            .collect();
        if !lows.is_empty() {
            eprintln!(
                "  low-severity findings in {name} ({verdict}): {}",
                lows.join("; ")
            );
        }
        let alerts: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Alert(a) if a.alert.severity_name != entrospect::output::Severity::Low => {
                    Some(format!(
                        "{} {}:{}->{}:{} {} {:?}",
                        a.alert.analytic,
                        a.header.src_ip,
                        a.header.src_port,
                        a.header.dest_ip,
                        a.header.dest_port,
                        a.alert.severity_name.as_str(),
                        a.alert.reasons.first()
                    ))
                }
                _ => None,
            })
            .collect();
        let fired = |an: &str| {
            alerts
                .iter()
                .filter(|a| a.starts_with(an))
                .cloned()
                .collect::<Vec<_>>()
        };
        let an0404 = fired("AN0404");
        let an1496 = fired("AN1496");
        let line = |v: &Vec<String>| format!("{name} ({verdict}): {}", v.join("; "));
        match verdict.as_str() {
            "ALERT-FE" => {
                if an0404.is_empty() {
                    fe.fn_.push(line(&alerts))
                } else {
                    fe.tp.push(name.clone())
                }
                if an1496.is_empty() {
                    tls.tn += 1
                } else {
                    tls.fp.push(line(&an1496))
                }
            }
            "ALERT-TLS" => {
                if an1496.is_empty() {
                    tls.fn_.push(line(&alerts))
                } else {
                    tls.tp.push(name.clone())
                }
                if an0404.is_empty() {
                    fe.tn += 1
                } else {
                    fe.fp.push(line(&an0404))
                }
            }
            "NO-ALERT" => {
                if an0404.is_empty() {
                    fe.tn += 1
                } else {
                    fe.fp.push(line(&an0404))
                }
                if an1496.is_empty() {
                    tls.tn += 1
                } else {
                    tls.fp.push(line(&an1496))
                }
            }
            _ => {
                if !alerts.is_empty() {
                    other.push(line(&alerts));
                }
            }
        }
    }
    fe.print("AN0404 (ALERT-FE vs the rest)");
    tls.print("AN1496 (ALERT-TLS vs the rest)");
    for o in &other {
        eprintln!("  BORDERLINE/ROBUST alerted: {o}");
    }
    let fe_fp_on_no_alert: Vec<&String> =
        fe.fp.iter().filter(|l| l.contains("(NO-ALERT)")).collect();
    assert!(
        fe_fp_on_no_alert.is_empty(),
        "AN0404 fired on NO-ALERT captures: {fe_fp_on_no_alert:?}"
    );
    assert!(
        fe.tp.len() >= 5,
        "AN0404 caught only {} ALERT-FE captures",
        fe.tp.len()
    );
    assert!(
        tls.tp.len() >= 8,
        "AN1496 caught only {} ALERT-TLS captures",
        tls.tp.len()
    );
}
