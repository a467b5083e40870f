//! The correlation stage: the host state, the correlator, the verdicts and the alert
//! events, behind one call ([`Correlation::judge`]) that both embeddings share.
//!
//! A plain [`Engine`](crate::Engine) owns one [`Correlation`] and calls `judge` inline at
//! each verdict point of a flow. A [`Pipeline`](crate::pipeline::Pipeline) gives its
//! workers' engines none: they hand each verdict point over as an owned [`Finding`], and
//! the pipeline's one correlation thread calls the same `judge` on it, in the order a
//! single engine would have (see the pipeline's module docs, "Correlation stage").
//!
//! Owns: the only [`HostIndex`] and [`Correlator`] of an engine or pipeline, the alert
//! counters, the verdict handler. Must not: look at packets or flow tables. Contracts: no
//! panics on input; its per-flow state ([`VerdictFlags`]) is kept by the caller (in the
//! engine's flow state, or in the pipeline stage's bounded map).

use crate::config::{Config, ConfigError};
use crate::detect::DetectConfig;
use crate::detect::an0404::An0404Finding;
use crate::detect::correlate::{Correlator, FlowVerdictInput};
use crate::detect::verdict::{self, FlowVerdict, Verdict, VerdictConfig};
use crate::error::Error;
use crate::host::HostEvent;
use crate::host::crypto_libs::CryptoLibTable;
use crate::host::index::HostIndex;
use crate::inspect::entropy::Randomness;
use crate::inspect::protocol::AppProto;
use crate::inspect::tls::{An1496Finding, TlsSummary};
use crate::output::{AlertEvent, AlertSection, Event, EventHeader, eve_severity, proto_name};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The caller's verdict handler (see [`Engine::set_verdict_handler`](crate::Engine::set_verdict_handler)).
pub(crate) type VerdictHandler = Box<dyn FnMut(&FlowVerdict) + Send>;

/// What the correlation stage remembers of one flow between its verdict points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VerdictFlags {
    /// Whether any analytic alerted on this flow (the flow record's `alerted`).
    pub(crate) alerted: bool,
    /// The flow's allow verdict was given.
    pub(crate) allowed: bool,
    /// The flow's alert (or block-suggested) verdict was given.
    pub(crate) alert_verdict: bool,
}

/// What a verdict needs beyond the correlator's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VerdictPoint {
    /// Payload-carrying packets per direction so far.
    pub(crate) payload_pkts: [u64; 2],
    /// The opening exchange is over (recognisers no longer waiting, TLS handshake over):
    /// a flow may be allowed here.
    pub(crate) allow_point: bool,
    /// Packet time of the flow's first payload byte, either direction.
    pub(crate) first_payload: Option<Timestamp>,
}

/// One verdict point of a flow, owned: what [`FlowVerdictInput`] borrows, plus the
/// [`VerdictPoint`]. A pipeline worker sends it to the correlation stage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Finding {
    flow_id: u64,
    proto: u8,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    start: Timestamp,
    now: Timestamp,
    bytes: [u64; 2],
    payload_bytes: [u64; 2],
    pkts: [u64; 2],
    app_proto: AppProto,
    randomness: [Option<Randomness>; 2],
    an0404: Option<An0404Finding>,
    tls: Option<Box<TlsSummary>>,
    an1496_network: Option<An1496Finding>,
    ended: bool,
    /// The verdict's extra inputs.
    pub(crate) point: VerdictPoint,
}

impl Finding {
    /// An owned copy of `input` with its verdict point.
    pub(crate) fn new(input: &FlowVerdictInput<'_>, point: VerdictPoint) -> Finding {
        Finding {
            flow_id: input.flow_id,
            proto: input.proto,
            client: input.client,
            server: input.server,
            start: input.start,
            now: input.now,
            bytes: input.bytes,
            payload_bytes: input.payload_bytes,
            pkts: input.pkts,
            app_proto: input.app_proto,
            randomness: input.randomness,
            an0404: input.an0404.cloned(),
            tls: input.tls.map(|t| Box::new(t.clone())),
            an1496_network: input.an1496_network.cloned(),
            ended: input.ended,
            point,
        }
    }

    /// The flow's id.
    pub(crate) fn flow_id(&self) -> u64 {
        self.flow_id
    }

    /// The correlator's view of this finding.
    pub(crate) fn input(&self) -> FlowVerdictInput<'_> {
        FlowVerdictInput {
            flow_id: self.flow_id,
            proto: self.proto,
            client: self.client,
            server: self.server,
            start: self.start,
            now: self.now,
            bytes: self.bytes,
            payload_bytes: self.payload_bytes,
            pkts: self.pkts,
            app_proto: self.app_proto,
            randomness: self.randomness,
            an0404: self.an0404.as_ref(),
            tls: self.tls.as_deref(),
            an1496_network: self.an1496_network.as_ref(),
            ended: self.ended,
        }
    }
}

/// The host state and the host-aware half of detection (see the module docs).
pub(crate) struct Correlation {
    correlator: Correlator,
    host: HostIndex,
    host_events: u64,
    alerts: BTreeMap<&'static str, u64>,
    verdict_cfg: VerdictConfig,
    verdict_handler: Option<VerdictHandler>,
}

impl Correlation {
    /// The stage for `cfg`.
    ///
    /// # Errors
    /// A baseline that cannot be loaded (reported under the `baseline` key).
    pub(crate) fn new(cfg: &Config) -> Result<Correlation, Error> {
        let detect = DetectConfig {
            an0400: cfg.an0400.clone(),
            an0401: cfg.an0401.clone(),
            an0402: cfg.an0402.clone(),
            an0403: cfg.an0403.clone(),
            an1496: cfg.an1496.clone(),
            correlation: cfg.correlation.clone(),
            baseline: cfg.baseline.clone(),
        };
        let correlator = Correlator::new(&detect, &cfg.an0404).map_err(|e| ConfigError::Value {
            key: "baseline",
            reason: e.to_string(),
        })?;
        Ok(Correlation {
            correlator,
            host: HostIndex::with_crypto_table(
                cfg.host_index.clone(),
                CryptoLibTable::new(&cfg.crypto_libs),
            ),
            host_events: 0,
            alerts: BTreeMap::new(),
            verdict_cfg: cfg.verdict.clone(),
            verdict_handler: None,
        })
    }

    /// Ingest one host event.
    pub(crate) fn ingest(&mut self, ev: HostEvent) {
        self.host_events = self.host_events.saturating_add(1);
        self.host.ingest(ev);
    }

    /// Expire host state idle at `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        self.host.expire(now);
    }

    /// The process index.
    pub(crate) fn host(&self) -> &HostIndex {
        &self.host
    }

    /// Host events ingested.
    pub(crate) fn host_events(&self) -> u64 {
        self.host_events
    }

    /// The correlator.
    pub(crate) fn correlator(&self) -> &Correlator {
        &self.correlator
    }

    /// Alerts raised, per analytic.
    pub(crate) fn alerts(&self) -> &BTreeMap<&'static str, u64> {
        &self.alerts
    }

    /// Replace (or with `None` drop) the verdict handler.
    pub(crate) fn set_verdict_handler(&mut self, handler: Option<VerdictHandler>) {
        self.verdict_handler = handler;
    }

    /// Evaluate one verdict point of a flow: run the correlator against the host index,
    /// hand the flow's verdict (if one is due) to the handler, and `emit` one alert event
    /// per analytic that fired. `flags` is this flow's memory of earlier verdict points.
    pub(crate) fn judge(
        &mut self,
        flags: &mut VerdictFlags,
        input: &FlowVerdictInput<'_>,
        point: &VerdictPoint,
        emit: &mut dyn FnMut(Event),
    ) {
        let alerts = self.correlator.evaluate(&self.host, input);
        if let Some(handler) = self.verdict_handler.as_mut() {
            let decided = if flags.alert_verdict {
                None
            } else {
                verdict::decide(&self.verdict_cfg, &alerts)
            };
            let mut v = FlowVerdict {
                flow_id: input.flow_id,
                proto: input.proto,
                client_ip: input.client.0,
                client_port: input.client.1,
                server_ip: input.server.0,
                server_port: input.server.1,
                verdict: Verdict::Allow,
                analytics: Vec::new(),
                severity: None,
                score: 0.0,
                process_joined: false,
                packets: input.pkts[0].saturating_add(input.pkts[1]),
                payload_packets: point.payload_pkts[0].saturating_add(point.payload_pkts[1]),
                decided_at: input.now,
                first_payload: point.first_payload,
                latency_ns: point
                    .first_payload
                    .map_or(0, |f| input.now.saturating_sub(f)),
                at_flow_end: input.ended,
            };
            if let Some(d) = decided {
                flags.alert_verdict = true;
                v.verdict = d.verdict;
                v.analytics = d.analytics;
                v.severity = Some(d.severity);
                v.score = d.score;
                v.process_joined = d.process_joined;
                handler(&v);
            } else if point.allow_point && !flags.allowed && !flags.alert_verdict {
                flags.allowed = true;
                handler(&v);
            }
        }
        let app_proto = input.app_proto;
        for a in alerts {
            flags.alerted = true;
            let n = self.alerts.entry(a.analytic).or_default();
            *n = n.saturating_add(1);
            emit(Event::Alert(AlertEvent {
                header: EventHeader {
                    timestamp: input.now,
                    flow_id: input.flow_id,
                    src_ip: input.client.0,
                    src_port: input.client.1,
                    dest_ip: input.server.0,
                    dest_port: input.server.1,
                    proto: proto_name(input.proto),
                    app_proto: (app_proto != AppProto::Unknown).then(|| app_proto.as_str()),
                },
                alert: AlertSection {
                    action: "allowed",
                    signature_id: signature_id(a.analytic),
                    signature: format!("{} {}", a.analytic, signature_of(a.analytic)),
                    category: "Encrypted Channel",
                    severity: eve_severity(a.severity),
                    analytic: a.analytic,
                    technique: a.technique,
                    severity_name: a.severity,
                    score: a.score,
                    reasons: a.reasons,
                    process: a.process,
                },
            }));
        }
    }
}

/// A stable Suricata-style signature id: 1 000 000 + the analytic's number (AN0404 →
/// 1000404).
fn signature_id(analytic: &str) -> u32 {
    let n: u32 = analytic.trim_start_matches("AN").parse().unwrap_or(0);
    1_000_000 + n
}

/// One-line description of each analytic, for `alert.signature`.
fn signature_of(analytic: &str) -> &'static str {
    match analytic {
        "AN0400" => "symmetric crypto library load then high-entropy egress (Windows)",
        "AN0401" => "crypto library in an unexpected process then abnormal egress (Linux)",
        "AN0402" => "Security-framework crypto then randomized non-TLS egress (macOS)",
        "AN0403" => "ESXi management daemon with encrypted egress outside the baseline",
        "AN0404" => "high-entropy flow that matches no known encrypted protocol",
        "AN1496" => "asymmetric crypto library then abnormal TLS",
        _ => "encrypted channel",
    }
}
