//! AN0400 (T1573.001, Windows): a process that does not normally do cryptography loads
//! a symmetric-crypto library, then opens an outbound connection whose payload is random
//! by the length-aware test and not explained by a known encrypted protocol.
//!
//! Host half: symmetric-class loads from `host::crypto_libs` (weight decides: a lone
//! `bcryptprimitives.dll` is very weak, `aes.dll`/`rsaenh.dll` strong) within
//! `time_window` of the connection, in an image outside `allowed_crypto_processes`.
//! Network half: see [`crate::detect::correlate`]. Never fires without a joined process;
//! the result is an [`crate::detect::correlate::Alert`].

use crate::detect::correlate::{Ctx, SymSpec, Verdict, symmetric_analytic};
use crate::host::crypto_libs::CryptoClass;
use serde::{Deserialize, Serialize};

/// The analytic id.
pub const ANALYTIC: &str = "AN0400";
/// The ATT&CK technique.
pub const TECHNIQUE: &str = "T1573.001";

/// Tunables of AN0400 (config section `[an0400]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct An0400Config {
    /// Images expected to use crypto (globs over the file name, or the path when the
    /// pattern has a separator). Default: browsers, Office/Teams/OneDrive, Windows and
    /// vendor updaters, Defender, and the svchost/lsass-hosted crypto services, which
    /// load CNG for every TLS session they make. Script hosts and LOLBins (powershell,
    /// rundll32, regsvr32, mshta, installutil) are deliberately absent: they are the
    /// usual carriers of implants.
    pub allowed_crypto_processes: Vec<String>,
    /// Smallest normalised entropy (`Randomness::score`, entropy over what random data
    /// of the same length shows) of the egress sample. Default 0.95. The length-aware
    /// randomness test must pass as well.
    pub entropy_threshold: f64,
    /// Seconds between crypto module load and connection (either side, after skew).
    /// Default 300.
    pub time_window: u64,
}

/// Default Windows crypto allowlist (shared with AN1496).
pub fn default_windows_allowlist() -> Vec<String> {
    [
        "chrome.exe",
        "msedge.exe",
        "firefox.exe",
        "iexplore.exe",
        "brave.exe",
        "opera.exe",
        "outlook.exe",
        "teams.exe",
        "ms-teams.exe",
        "onedrive.exe",
        "winword.exe",
        "excel.exe",
        "svchost.exe",
        "lsass.exe",
        "msmpeng.exe",
        "mssense.exe",
        "nissrv.exe",
        "smartscreen.exe",
        "googleupdate.exe",
        "microsoftedgeupdate.exe",
        "onedrivestandaloneupdater.exe",
        "wuauclt.exe",
        "usoclient.exe",
        "mousocoreworker.exe",
        "backgroundtransferhost.exe",
        "searchapp.exe",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

impl Default for An0400Config {
    fn default() -> Self {
        An0400Config {
            allowed_crypto_processes: default_windows_allowlist(),
            entropy_threshold: 0.95,
            time_window: 300,
        }
    }
}

/// Evaluate AN0400 on a joined Windows flow.
pub(crate) fn evaluate(cfg: &An0400Config, ctx: &Ctx<'_>) -> Verdict {
    symmetric_analytic(
        ctx,
        &SymSpec {
            analytic: ANALYTIC,
            technique: TECHNIQUE,
            allowed: &cfg.allowed_crypto_processes,
            trusted_libs: &[],
            classes: &[CryptoClass::Symmetric],
            entropy_threshold: cfg.entropy_threshold,
            time_window_secs: cfg.time_window,
            asymmetry: None,
            context: None,
        },
    )
}
