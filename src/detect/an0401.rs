//! AN0401 (T1573.001, Linux): an unexpected process (shell, interpreter, custom binary)
//! maps `libcrypto`/`libssl` or another crypto library, then opens an outbound session
//! whose egress payload is random by the length-aware test (and not a known encrypted
//! protocol), or whose traffic is lopsided (payload bytes sent vs received beyond
//! `traffic_asymmetry_ratio`, above a minimum volume).
//!
//! Host half: any crypto-class load not in `trusted_crypto_libs`, within the window, in
//! an image outside `allowed_crypto_processes`. A missing load is "unknown" (statically
//! linked implants and Go binaries load nothing), which lowers the score but keeps the
//! alert. Never fires without a joined process.

use crate::detect::correlate::{Asymmetry, Ctx, SymSpec, Verdict, symmetric_analytic};
use crate::host::crypto_libs::CryptoClass;
use serde::{Deserialize, Serialize};

/// The analytic id.
pub const ANALYTIC: &str = "AN0401";
/// The ATT&CK technique.
pub const TECHNIQUE: &str = "T1573.001";

/// Tunables of AN0401 (config section `[an0401]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct An0401Config {
    /// Images expected to use crypto. Default: ssh/sshd/scp/sftp, curl, wget, package
    /// managers and their fetchers (apt, apt-get, the `https` apt method, dnf, yum,
    /// zypper, snapd, flatpak), git and `git-remote-https`, browsers, and the system
    /// daemons that do TLS for the OS (systemd-resolved, NetworkManager, chronyd for
    /// NTS). Interpreters (python, perl, ruby, node) and shells are deliberately absent.
    pub allowed_crypto_processes: Vec<String>,
    /// Crypto libraries whose load is not evidence (globs over the file name). Default:
    /// `libgcrypt.so*`, `libnettle.so*`, `libhogweed.so*`: systemd, GnuTLS and
    /// libsecret pull them into most processes of a desktop.
    pub trusted_crypto_libs: Vec<String>,
    /// Payload bytes one way over payload bytes the other way (transport headers and
    /// bare ACKs not counted) at or above which a session is lopsided. Default 20.
    pub traffic_asymmetry_ratio: f64,
    /// Smallest total payload volume (bytes, both ways) for the asymmetry test.
    /// Default 16 384.
    pub asymmetry_min_bytes: u64,
    /// Smallest normalised entropy of the egress sample. Default 0.95.
    pub entropy_threshold: f64,
    /// Seconds between crypto module load and connection. Default 300.
    pub time_window: u64,
}

impl Default for An0401Config {
    fn default() -> Self {
        An0401Config {
            allowed_crypto_processes: [
                "ssh",
                "sshd",
                "scp",
                "sftp",
                "curl",
                "wget",
                "apt",
                "apt-get",
                "/usr/lib/apt/methods/*",
                "dnf",
                "yum",
                "zypper",
                "snapd",
                "flatpak",
                "git",
                "git-remote-http*",
                "firefox*",
                "chrome",
                "chromium*",
                "systemd-resolved",
                "networkmanager",
                "chronyd",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            trusted_crypto_libs: ["libgcrypt.so*", "libnettle.so*", "libhogweed.so*"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            traffic_asymmetry_ratio: 20.0,
            asymmetry_min_bytes: 16_384,
            entropy_threshold: 0.95,
            time_window: 300,
        }
    }
}

/// Evaluate AN0401 on a joined Linux flow.
pub(crate) fn evaluate(cfg: &An0401Config, ctx: &Ctx<'_>) -> Verdict {
    symmetric_analytic(
        ctx,
        &SymSpec {
            analytic: ANALYTIC,
            technique: TECHNIQUE,
            allowed: &cfg.allowed_crypto_processes,
            trusted_libs: &cfg.trusted_crypto_libs,
            classes: &[
                CryptoClass::Symmetric,
                CryptoClass::Asymmetric,
                CryptoClass::Tls,
            ],
            entropy_threshold: cfg.entropy_threshold,
            time_window_secs: cfg.time_window,
            asymmetry: Some(Asymmetry {
                ratio: cfg.traffic_asymmetry_ratio,
                min_bytes: cfg.asymmetry_min_bytes,
            }),
            context: None,
        },
    )
}
