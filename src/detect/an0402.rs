//! AN0402 (T1573.001, macOS): a launchd job or user process uses Security-framework /
//! CommonCrypto symmetric crypto, then sends outbound payloads that are random but do
//! not look like TLS (or any known encrypted protocol).
//!
//! macOS telemetry (Endpoint Security, Elastic Endpoint) has no per-file load events for
//! Security.framework or CommonCrypto: they are in the dyld shared cache of every
//! process. The host half therefore rests on process context: a process started by
//! `launchd` whose image is not an allowed Apple daemon or app, or an image in a
//! temporary or hidden location. Reasons say so. Destinations in `doh_resolvers` never
//! fire (DNS over HTTPS is random-looking by design). Never fires without a joined
//! process.

use crate::detect::correlate::{Ctx, SymSpec, Verdict, symmetric_analytic};
use crate::host::crypto_libs::CryptoClass;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The analytic id.
pub const ANALYTIC: &str = "AN0402";
/// The ATT&CK technique.
pub const TECHNIQUE: &str = "T1573.001";

/// Tunables of AN0402 (config section `[an0402]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct An0402Config {
    /// DNS-over-HTTPS resolvers that must not fire (CIDRs). Default: Cloudflare
    /// (1.1.1.1, 1.0.0.1), Google (8.8.8.8, 8.8.4.4), Quad9 (9.9.9.9, 149.112.112.112)
    /// and their IPv6 addresses: the resolvers macOS and browsers ship with.
    pub doh_resolvers: Vec<IpNet>,
    /// Smallest normalised entropy of the egress sample. Default 0.95.
    pub payload_entropy_threshold: f64,
    /// Images expected to use crypto. Default: everything under `/System/`,
    /// `/usr/libexec/`, `/usr/sbin/` and `/Applications/` (signed system and installed
    /// apps), plus named Apple daemons (`trustd`, `nsurlsessiond`, `apsd`, `cloudd`,
    /// `softwareupdated`, `mDNSResponder`) and ssh/curl.
    pub allowed_crypto_processes: Vec<String>,
    /// Seconds of the load window (used only when an adapter does report loads).
    /// Default 300.
    pub time_window: u64,
}

impl Default for An0402Config {
    fn default() -> Self {
        let doh = [
            "1.1.1.1/32",
            "1.0.0.1/32",
            "8.8.8.8/32",
            "8.8.4.4/32",
            "9.9.9.9/32",
            "149.112.112.112/32",
            "2606:4700:4700::1111/128",
            "2606:4700:4700::1001/128",
            "2001:4860:4860::8888/128",
            "2001:4860:4860::8844/128",
            "2620:fe::fe/128",
        ];
        An0402Config {
            doh_resolvers: doh.iter().filter_map(|s| s.parse().ok()).collect(),
            payload_entropy_threshold: 0.95,
            allowed_crypto_processes: [
                "/system/*",
                "/usr/libexec/*",
                "/usr/sbin/*",
                "/applications/*",
                "trustd",
                "nsurlsessiond",
                "apsd",
                "cloudd",
                "softwareupdated",
                "mdnsresponder",
                "ssh",
                "curl",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            time_window: 300,
        }
    }
}

/// Process context that stands in for the missing Security.framework load events.
fn macos_context(ctx: &Ctx<'_>) -> Option<(f32, String)> {
    let rec = ctx.joined.as_ref()?.record;
    let image = rec.image.as_deref().unwrap_or("");
    let lower = image.to_ascii_lowercase();
    let name = crate::detect::score::basename(image);
    let parent_launchd = rec
        .parent_image
        .as_deref()
        .is_some_and(|p| crate::detect::score::basename(p) == "launchd")
        || rec.ppid == Some(1);
    let odd_place = lower.starts_with("/tmp/")
        || lower.starts_with("/private/tmp/")
        || lower.starts_with("/users/shared/")
        || lower.contains("/library/application support/")
        || name.starts_with('.');
    let mut parts = Vec::new();
    let mut score = 0.0f32;
    if parent_launchd {
        score = score.max(0.5);
        parts.push("started by launchd (a launchd job)");
    }
    if odd_place {
        score = score.max(0.6);
        parts.push("image in a temporary, shared or hidden location");
    }
    if parts.is_empty() {
        score = 0.3;
        parts.push("user process outside the allowed Apple/app locations");
    }
    Some((
        score,
        format!(
            "macOS process context: {}; no per-file Security.framework/CommonCrypto load events exist on macOS, so the host half rests on process context",
            parts.join(", ")
        ),
    ))
}

/// Evaluate AN0402 on a joined macOS flow.
pub(crate) fn evaluate(cfg: &An0402Config, ctx: &Ctx<'_>) -> Verdict {
    let server = ctx.input.server.0;
    if cfg.doh_resolvers.iter().any(|n| n.contains(&server)) {
        return Verdict::Suppressed(format!("{server} is a configured DNS-over-HTTPS resolver"));
    }
    let context = macos_context(ctx);
    symmetric_analytic(
        ctx,
        &SymSpec {
            analytic: ANALYTIC,
            technique: TECHNIQUE,
            allowed: &cfg.allowed_crypto_processes,
            trusted_libs: &[],
            classes: &[CryptoClass::Symmetric],
            entropy_threshold: cfg.payload_entropy_threshold,
            time_window_secs: cfg.time_window,
            asymmetry: None,
            context,
        },
    )
}
