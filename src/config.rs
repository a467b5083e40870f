//! Configuration: one TOML file, every key optional, documented defaults.
//!
//! ```toml
//! [flow]
//! max_flows = 262144
//! inspection_depth = 65536
//!
//! [entropy]
//! window = 4096
//! kernel = "auto"
//! ```
//!
//! With no file at all, [`Config::default`] is what runs.

use crate::decode::defrag::DefragConfig;
use crate::detect::an0400::An0400Config;
use crate::detect::an0401::An0401Config;
use crate::detect::an0402::An0402Config;
use crate::detect::an0403::An0403Config;
use crate::detect::an0404::An0404Config;
use crate::detect::an1496::An1496Config;
use crate::detect::baseline::BaselineConfig;
use crate::detect::correlate::CorrelationConfig;
use crate::detect::verdict::{self, VerdictConfig};
use crate::flow::FlowConfig;
use crate::host::crypto_libs::CryptoLibConfig;
use crate::host::index::HostIndexConfig;
use crate::inspect::EntropyConfig;
use crate::inspect::tls::TlsConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Every setting of the engine, one section per stage or analytic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Flow table, timeouts, TCP reassembly and inspection depth.
    pub flow: FlowConfig,
    /// IP fragment reassembly limits.
    pub defrag: DefragConfig,
    /// Payload randomness measurement.
    pub entropy: EntropyConfig,
    /// The process index that host events feed (windows, skew, caps).
    pub host_index: HostIndexConfig,
    /// Extra crypto-library rules on top of the built-in table.
    pub crypto_libs: CryptoLibConfig,
    /// TLS inspection: certificate thresholds, caps, AN1496 anomaly weights.
    pub tls: TlsConfig,
    /// AN0404 (network: high-entropy flows no known protocol explains): `port_profiles`,
    /// `traffic_volume_threshold`, allowlists.
    pub an0404: An0404Config,
    /// AN0400 (Windows: symmetric crypto library, then high-entropy egress):
    /// `allowed_crypto_processes`, `entropy_threshold`, `time_window`.
    pub an0400: An0400Config,
    /// AN0401 (Linux: libcrypto in an unexpected process, then abnormal egress):
    /// `trusted_crypto_libs`, `traffic_asymmetry_ratio`.
    pub an0401: An0401Config,
    /// AN0402 (macOS: Security-framework crypto, then randomized non-TLS egress):
    /// `doh_resolvers`, `payload_entropy_threshold`.
    pub an0402: An0402Config,
    /// AN0403 (ESXi: management daemons with encrypted egress): `allowed_mgmt_hosts`.
    pub an0403: An0403Config,
    /// AN1496 (asymmetric crypto library, then abnormal TLS): allowlist, JA4 novelty.
    pub an1496: An1496Config,
    /// The flow ↔ host join: clock skew, time window.
    pub correlation: CorrelationConfig,
    /// Learning and using a per-host baseline of crypto use.
    pub baseline: BaselineConfig,
    /// Inline flow verdicts: which alerts make an alert verdict, which suggest a block.
    pub verdict: VerdictConfig,
}

/// A configuration that could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML for this schema (unknown keys are errors: a typo must not
    /// silently fall back to a default).
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of its allowed range.
    #[error("invalid config value {key}: {reason}")]
    Value {
        /// Dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Parse TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with the line and column, or [`ConfigError::Value`].
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read and parse a TOML file.
    ///
    /// # Errors
    /// As [`Config::from_toml`], or [`ConfigError::Io`].
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text)
    }

    /// The configuration as TOML (every key, with its value).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Check ranges serde cannot.
    ///
    /// # Errors
    /// [`ConfigError::Value`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.flow.max_flows == 0 {
            return Err(ConfigError::Value {
                key: "flow.max_flows",
                reason: "must be at least 1".into(),
            });
        }
        if self.entropy.window == 0 || self.entropy.window > 65_535 {
            return Err(ConfigError::Value {
                key: "entropy.window",
                reason: format!("{} is outside 1..=65535", self.entropy.window),
            });
        }
        if let Some(a) = self
            .verdict
            .block_analytics
            .iter()
            .find(|a| !verdict::ANALYTICS.contains(&a.as_str()))
        {
            return Err(ConfigError::Value {
                key: "verdict.block_analytics",
                reason: format!("{a:?} is not one of {:?}", verdict::ANALYTICS),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_defaults_and_defaults_round_trip() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        let text = Config::default().to_toml();
        assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = Config::from_toml("[flow]\nmax_flow = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_flow"), "{e}");
    }

    #[test]
    fn unknown_analytic_in_block_analytics_is_rejected() {
        let e = Config::from_toml("[verdict]\nblock_analytics = [\"AN9999\"]\n").unwrap_err();
        assert!(e.to_string().contains("AN9999"), "{e}");
        assert!(Config::from_toml("[verdict]\nblock_analytics = [\"AN0404\"]\n").is_ok());
    }

    #[test]
    fn out_of_range_window_is_rejected() {
        assert!(Config::from_toml("[entropy]\nwindow = 0\n").is_err());
    }
}
