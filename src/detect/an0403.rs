//! AN0403 (T1573.001, ESXi): `hostd`, `vpxa` or another ESXi management daemon makes an
//! external connection carrying encrypted payload (TLS or random by the length-aware
//! test) to a host outside the VMware management baseline (`allowed_mgmt_hosts`).
//!
//! Host half: the joined process is one of `daemons` on an ESXi host. Network half: the
//! destination is outside every CIDR of `allowed_mgmt_hosts` and the payload is
//! encrypted. ESXi has no module-load telemetry, so reasons say no crypto load can be
//! seen. Never fires without a joined process.

use crate::detect::correlate::{Alert, Ctx, Verdict, egress_random, process_of};
use crate::detect::score::{basename, noisy_or};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The analytic id.
pub const ANALYTIC: &str = "AN0403";
/// The ATT&CK technique.
pub const TECHNIQUE: &str = "T1573.001";

/// Tunables of AN0403 (config section `[an0403]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct An0403Config {
    /// The VMware management baseline (vCenter `vpxd` peers, update/depot servers,
    /// NTP/syslog collectors), as CIDRs. Default: loopback, RFC 1918, link-local and
    /// IPv6 ULA: management networks are private in nearly every deployment, so only
    /// egress to public addresses fires until a site lists its own peers.
    pub allowed_mgmt_hosts: Vec<IpNet>,
    /// ESXi daemons watched (file names). Default: hostd, vpxa, rhttpproxy, sfcbd,
    /// vmsyslogd, ntpd, lwsmd, vvold, hostd-probe, envoy.
    pub daemons: Vec<String>,
    /// Smallest normalised entropy for the random-payload test. Default 0.95.
    pub entropy_threshold: f64,
}

impl Default for An0403Config {
    fn default() -> Self {
        let nets = [
            "127.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
            "::1/128",
            "fc00::/7",
            "fe80::/10",
        ];
        An0403Config {
            allowed_mgmt_hosts: nets.iter().filter_map(|s| s.parse().ok()).collect(),
            daemons: [
                "hostd",
                "vpxa",
                "rhttpproxy",
                "sfcbd",
                "vmsyslogd",
                "ntpd",
                "lwsmd",
                "vvold",
                "hostd-probe",
                "envoy",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            entropy_threshold: 0.95,
        }
    }
}

/// Evaluate AN0403 on a joined ESXi flow.
pub(crate) fn evaluate(cfg: &An0403Config, ctx: &Ctx<'_>) -> Verdict {
    let Some(j) = ctx.joined.as_ref() else {
        return Verdict::None;
    };
    let image = j.record.image.as_deref().unwrap_or("");
    let name = basename(image);
    if !cfg.daemons.iter().any(|d| d.eq_ignore_ascii_case(name)) {
        return Verdict::None;
    }
    let peer = if j.outbound {
        ctx.input.server.0
    } else {
        ctx.input.client.0
    };
    if let Some(net) = cfg.allowed_mgmt_hosts.iter().find(|n| n.contains(&peer)) {
        return Verdict::Suppressed(format!(
            "{peer} is in allowed_mgmt_hosts ({net}): management traffic"
        ));
    }
    let mut reasons = j.reasons.clone();
    let net = if ctx.input.app_proto.is_encrypted() {
        reasons.push(format!(
            "encrypted protocol {:?} to {peer}, outside the management baseline",
            ctx.input.app_proto
        ));
        0.6
    } else if let Some(r) = egress_random(ctx, cfg.entropy_threshold) {
        reasons.push(format!(
            "random egress to {peer} ({r}), outside the management baseline"
        ));
        0.7
    } else {
        return Verdict::None;
    };
    reasons.push(format!(
        "ESXi management daemon {name} made this connection"
    ));
    reasons.push("no crypto module load telemetry exists on ESXi".to_owned());
    let score = noisy_or(&[0.6, net]);
    Verdict::Fire(Alert {
        analytic: ANALYTIC,
        technique: TECHNIQUE,
        severity: if score >= 0.85 {
            crate::detect::Severity::Critical
        } else {
            crate::detect::Severity::High
        },
        score,
        reasons,
        process: Some(process_of(ctx, j)),
    })
}
