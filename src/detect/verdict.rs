//! Inline flow verdicts: what a host product may do with a live flow.
//!
//! The engine hands each flow at most two verdicts, through the handler set with
//! [`Engine::set_verdict_handler`](crate::Engine::set_verdict_handler) (or
//! [`Pipeline::with_verdict_handler`](crate::pipeline::Pipeline::with_verdict_handler), or
//! `entrospect_engine_set_verdict_callback` in C), as soon as the evidence is in:
//!
//! - [`Verdict::Allow`], at most once: the engine has seen the flow's opening exchange (the
//!   protocol recognisers stopped waiting or four payload packets passed, and a TLS
//!   handshake, if any, completed) and no analytic fired at or above
//!   [`VerdictConfig::alert_severity`]. A product holding the flow may release it. A flow
//!   that ends before that point gets its allow when it ends
//!   ([`FlowVerdict::at_flow_end`]).
//! - [`Verdict::Alert`] or [`Verdict::BlockSuggested`], at most one of them, once: the first
//!   verdict point where analytics fire at or above `alert_severity`. **It may follow an
//!   allow**: evidence that comes later (the entropy window filling up, traffic asymmetry
//!   at the flow's end, a host event joined late) can still make an analytic fire. When
//!   later verdict points fire more analytics, no further verdict is given (the `alert`
//!   events of the EVE output list them all).
//!
//! An alert becomes [`Verdict::BlockSuggested`] when one of its analytics is listed in
//! [`VerdictConfig::block_analytics`], or when its severity is at least
//! [`VerdictConfig::block_severity`] and (unless [`VerdictConfig::block_requires_process`]
//! is false) the flow was joined to the process that opened it: wire-only evidence alone
//! does not suggest blocking by default, so a misfire on odd but benign traffic costs an
//! alert, not a broken connection. The engine never blocks anything itself.
//!
//! Verdicts are not part of the EVE output (DESIGN.md has no place for them); alerts are.
//!
//! Contracts: [`decide`] is a pure function of the fired alerts and the configuration.

use super::Severity;
use super::correlate::Alert;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What a product may do with a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing fired by the end of the opening exchange: release the flow.
    Allow,
    /// An analytic fired: report it, let the flow go on.
    Alert,
    /// An analytic fired with enough weight to suggest cutting the flow (see the module docs
    /// for the rule).
    BlockSuggested,
}

impl Verdict {
    /// The stable name (same as the serde form): `allow`, `alert`, `block_suggested`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Alert => "alert",
            Verdict::BlockSuggested => "block_suggested",
        }
    }
}

/// When an alert is a verdict and when it suggests a block (config section `[verdict]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerdictConfig {
    /// Lowest severity of a fired analytic that makes an alert verdict; weaker findings are
    /// kept for hunting in the EVE output and the flow may still be allowed. Default
    /// `"medium"`.
    pub alert_severity: Severity,
    /// Lowest severity that suggests a block (with a joined process, see
    /// `block_requires_process`). Default `"high"`.
    pub block_severity: Severity,
    /// Whether `block_severity` suggests a block only when the flow was joined to the
    /// process that opened it (host evidence and wire evidence agree). Default `true`.
    pub block_requires_process: bool,
    /// Analytics (`"AN0404"`, ...) whose alerts always suggest a block, whatever their
    /// severity (at least `alert_severity`) and join. Default empty.
    pub block_analytics: Vec<String>,
}

impl Default for VerdictConfig {
    fn default() -> Self {
        VerdictConfig {
            alert_severity: Severity::Medium,
            block_severity: Severity::High,
            block_requires_process: true,
            block_analytics: Vec::new(),
        }
    }
}

/// The analytics a verdict may name, for checking `block_analytics`.
pub const ANALYTICS: [&str; 6] = ["AN0400", "AN0401", "AN0402", "AN0403", "AN0404", "AN1496"];

/// The alert part of a verdict: which analytics fired, how strongly.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertVerdict {
    /// [`Verdict::Alert`] or [`Verdict::BlockSuggested`].
    pub verdict: Verdict,
    /// Analytics that fired at or above `alert_severity`, strongest first.
    pub analytics: Vec<&'static str>,
    /// The highest severity among them.
    pub severity: Severity,
    /// The highest score among them, in [0, 1].
    pub score: f32,
    /// Whether one of them was joined to a process.
    pub process_joined: bool,
}

/// The verdict that `alerts` (fired at one verdict point) make under `cfg`: `None` when
/// none reaches `cfg.alert_severity`.
pub fn decide(cfg: &VerdictConfig, alerts: &[Alert]) -> Option<AlertVerdict> {
    let mut strong: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.severity >= cfg.alert_severity)
        .collect();
    strong.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.score.total_cmp(&a.score))
            .then(a.analytic.cmp(b.analytic))
    });
    let top = strong.first()?;
    let severity = top.severity;
    let score = strong.iter().map(|a| a.score).fold(0.0f32, f32::max);
    let process_joined = strong.iter().any(|a| a.process.is_some());
    let listed = strong
        .iter()
        .any(|a| cfg.block_analytics.iter().any(|b| b == a.analytic));
    let heavy = strong.iter().any(|a| {
        a.severity >= cfg.block_severity && (a.process.is_some() || !cfg.block_requires_process)
    });
    let mut analytics: Vec<&'static str> = Vec::with_capacity(strong.len());
    for a in &strong {
        if !analytics.contains(&a.analytic) {
            analytics.push(a.analytic);
        }
    }
    Some(AlertVerdict {
        verdict: if listed || heavy {
            Verdict::BlockSuggested
        } else {
            Verdict::Alert
        },
        analytics,
        severity,
        score,
        process_joined,
    })
}

/// One verdict on one flow, handed to the verdict handler (borrowed for the call).
#[derive(Clone, Debug, PartialEq)]
pub struct FlowVerdict {
    /// The engine's flow id (EVE `flow_id` of the flow's events).
    pub flow_id: u64,
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub proto: u8,
    /// Initiator address (EVE `src_ip`).
    pub client_ip: IpAddr,
    /// Initiator port (EVE `src_port`).
    pub client_port: u16,
    /// Responder address (EVE `dest_ip`).
    pub server_ip: IpAddr,
    /// Responder port (EVE `dest_port`).
    pub server_port: u16,
    /// What to do.
    pub verdict: Verdict,
    /// For alert and block verdicts: the analytics that fired, strongest first; empty for
    /// allow.
    pub analytics: Vec<&'static str>,
    /// For alert and block verdicts: the highest severity; `None` for allow.
    pub severity: Option<Severity>,
    /// For alert and block verdicts: the highest score in [0, 1]; 0 for allow.
    pub score: f32,
    /// Whether an alert was joined to the process that opened the flow.
    pub process_joined: bool,
    /// Packets of the flow seen so far (both directions), the deciding one included.
    pub packets: u64,
    /// Payload-carrying packets of the flow so far (both directions): the verdict was
    /// decided on the `payload_packets`-th one (0 when the flow carried no payload).
    pub payload_packets: u64,
    /// Packet time of the decision.
    pub decided_at: Timestamp,
    /// Packet time of the flow's first payload byte, either direction.
    pub first_payload: Option<Timestamp>,
    /// Packet time from `first_payload` to `decided_at`, nanoseconds (0 without payload).
    pub latency_ns: u64,
    /// The verdict was decided when the flow ended (timeout, close, end of input), not
    /// while it was open.
    pub at_flow_end: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::AlertProcess;

    fn alert(analytic: &'static str, severity: Severity, score: f32, joined: bool) -> Alert {
        Alert {
            analytic,
            technique: "T1573.001",
            severity,
            score,
            reasons: vec![],
            process: joined.then(|| AlertProcess {
                host: "ws-17".into(),
                pid: 4242,
                process_guid: None,
                image: "/usr/bin/python3".into(),
                cmdline: None,
                parent_image: None,
                crypto_modules: vec![],
            }),
        }
    }

    #[test]
    fn no_alert_or_only_low_alerts_give_no_alert_verdict() {
        let cfg = VerdictConfig::default();
        assert_eq!(decide(&cfg, &[]), None);
        assert_eq!(
            decide(&cfg, &[alert("AN1496", Severity::Low, 0.3, true)]),
            None
        );
    }

    #[test]
    fn high_wire_only_alert_is_an_alert_and_with_a_process_a_block() {
        let cfg = VerdictConfig::default();
        let wire = decide(&cfg, &[alert("AN0404", Severity::High, 0.8, false)]).unwrap();
        assert_eq!(wire.verdict, Verdict::Alert);
        assert_eq!(wire.analytics, ["AN0404"]);
        let joined = decide(&cfg, &[alert("AN0401", Severity::High, 0.9, true)]).unwrap();
        assert_eq!(joined.verdict, Verdict::BlockSuggested);
        assert!(joined.process_joined);
        let lax = VerdictConfig {
            block_requires_process: false,
            ..VerdictConfig::default()
        };
        let wire = decide(&lax, &[alert("AN0404", Severity::High, 0.8, false)]).unwrap();
        assert_eq!(wire.verdict, Verdict::BlockSuggested);
    }

    #[test]
    fn listed_analytic_suggests_a_block_at_medium_severity() {
        let cfg = VerdictConfig {
            block_analytics: vec!["AN0404".into()],
            ..VerdictConfig::default()
        };
        let v = decide(&cfg, &[alert("AN0404", Severity::Medium, 0.5, false)]).unwrap();
        assert_eq!(v.verdict, Verdict::BlockSuggested);
        let other = decide(&cfg, &[alert("AN1496", Severity::Medium, 0.5, false)]).unwrap();
        assert_eq!(other.verdict, Verdict::Alert);
    }

    #[test]
    fn several_alerts_are_named_strongest_first_with_the_top_severity_and_score() {
        let cfg = VerdictConfig::default();
        let v = decide(
            &cfg,
            &[
                alert("AN1496", Severity::Medium, 0.9, false),
                alert("AN0404", Severity::High, 0.6, false),
                alert("AN0402", Severity::Low, 1.0, false),
            ],
        )
        .unwrap();
        assert_eq!(v.analytics, ["AN0404", "AN1496"]);
        assert_eq!(v.severity, Severity::High);
        assert_eq!(v.score, 0.9);
    }

    #[test]
    fn verdict_names_are_snake_case_and_stable() {
        for v in [Verdict::Allow, Verdict::Alert, Verdict::BlockSuggested] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        assert_eq!(Verdict::BlockSuggested.as_str(), "block_suggested");
    }
}
