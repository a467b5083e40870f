//! AN1496 (T1573.002, asymmetric crypto then abnormal TLS).
//!
//! Network half: the TLS inspector's AN1496 finding (self-signed, expired, hostname
//! mismatch, obsolete version ... scored by `inspect::tls::an1496_score`), or, in
//! baseline detect mode with `ja4_novelty` on, a JA4 the (host, image) never sent.
//! Host half: an asymmetric-crypto or TLS library load (`rsaenh`, `crypt32`, `ncrypt`,
//! `schannel`, `dssenh`, `ncryptsslp`, `libssl` ...) within the window, in an image
//! outside `allowed_crypto_processes`.
//!
//! Joined, the alert is High or Critical. The network half alone (no host telemetry for
//! the flow) is reported at the finding's own score with "no host telemetry joined". An
//! allowlisted image keeps the network score, at most Medium, and says why.

use crate::detect::Severity;
use crate::detect::correlate::{Alert, Ctx, Verdict, host_half, process_of};
use crate::detect::score::{matches_any, noisy_or};
use crate::host::crypto_libs::CryptoClass;
use serde::{Deserialize, Serialize};

/// The analytic id.
pub const ANALYTIC: &str = "AN1496";
/// The ATT&CK technique.
pub const TECHNIQUE: &str = "T1573.002";

/// Tunables of AN1496 (config section `[an1496]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct An1496Config {
    /// Images expected to do TLS with their own choice of peers (same default as
    /// AN0400's, plus the Linux and macOS TLS clients of AN0401/AN0402).
    pub allowed_crypto_processes: Vec<String>,
    /// In baseline detect mode, a JA4 the (host, image) never sent is network evidence.
    /// Default true.
    pub ja4_novelty: bool,
    /// Seconds between crypto module load and connection. Default 300.
    pub time_window: u64,
}

impl Default for An1496Config {
    fn default() -> Self {
        let mut allowed = crate::detect::an0400::default_windows_allowlist();
        allowed.extend(
            [
                "curl",
                "wget",
                "ssh",
                "git-remote-http*",
                "trustd",
                "nsurlsessiond",
            ]
            .into_iter()
            .map(str::to_owned),
        );
        An1496Config {
            allowed_crypto_processes: allowed,
            ja4_novelty: true,
            time_window: 300,
        }
    }
}

/// Severity of the network half alone: one strong anomaly (self-signed, expired, hostname
/// mismatch, weak key, obsolete version, weak cipher: weights 0.5–0.6) is Medium, two are
/// High; weak ones piling up (a missing SNI with a SHA-1 intermediate, 0.46) stay Low.
fn network_only_severity(score: f32) -> Severity {
    if score >= 0.75 {
        Severity::High
    } else if score >= 0.5 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// Evaluate AN1496.
pub(crate) fn evaluate(cfg: &An1496Config, ctx: &Ctx<'_>) -> Verdict {
    let mut reasons = Vec::new();
    let mut net: Vec<f32> = Vec::new();
    if let Some(f) = ctx.input.an1496_network {
        net.push(f.score);
        reasons.extend(f.reasons.iter().cloned());
    }
    let novel_ja4 = cfg.ja4_novelty && ctx.departures.as_ref().is_some_and(|d| d.new_ja4);
    if novel_ja4 && ctx.input.tls.is_some() {
        net.push(0.4);
    }
    if net.is_empty() {
        return Verdict::None;
    }
    let net_score = noisy_or(&net);
    let Some(j) = ctx.joined.as_ref() else {
        reasons.push("no host telemetry joined".to_owned());
        return Verdict::Fire(Alert {
            analytic: ANALYTIC,
            technique: TECHNIQUE,
            severity: network_only_severity(net_score),
            score: net_score,
            reasons,
            process: None,
        });
    };
    let mut all = j.reasons.clone();
    all.append(&mut reasons);
    if let Some(d) = &ctx.departures {
        all.extend(d.reasons.iter().cloned());
    }
    let image = j.record.image.as_deref().unwrap_or("");
    if let Some(p) = matches_any(&cfg.allowed_crypto_processes, image) {
        all.push(format!(
            "image matches allowed_crypto_processes ({p}): host half not counted, kept at network score"
        ));
        return Verdict::Fire(Alert {
            analytic: ANALYTIC,
            technique: TECHNIQUE,
            severity: network_only_severity(net_score),
            score: net_score,
            reasons: all,
            process: Some(process_of(ctx, j)),
        });
    }
    let host = host_half(
        ctx,
        j,
        &[CryptoClass::Asymmetric, CryptoClass::Tls],
        &[],
        cfg.time_window,
    );
    all.extend(host.reasons);
    let score = noisy_or(&[net_score, host.score]);
    let severity = if host.loaded && score >= 0.85 {
        Severity::Critical
    } else {
        Severity::High
    };
    Verdict::Fire(Alert {
        analytic: ANALYTIC,
        technique: TECHNIQUE,
        severity,
        score,
        reasons: all,
        process: Some(process_of(ctx, j)),
    })
}
