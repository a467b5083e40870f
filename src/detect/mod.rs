//! Detection: the MITRE ATT&CK analytics of `ANALYTICS.md`, one module per analytic.
//!
//! Owns each analytic's tunables (a `...Config` per analytic, serde with documented
//! defaults), its decision over neutral evidence, and the reasons it gives. Must not parse
//! packets or host logs: inputs are the summaries that `inspect` and `host` produce, as
//! plain numbers and enums, so each analytic can be tested without a capture.
//!
//! Contracts: decisions are pure functions of their inputs (no clock, no I/O), never
//! panic, and every finding says in `reasons` which evidence made it fire and, when an
//! allowlist lowered it, why.

use serde::{Deserialize, Serialize};

pub mod an0400;
pub mod an0401;
pub mod an0402;
pub mod an0403;
pub mod an0404;
pub mod an1496;
pub mod baseline;
pub mod correlate;
pub(crate) mod score;
pub mod verdict;

/// Tunables of the host-aware analytics and the correlation stage (config keys are the
/// ATT&CK tunables, snake_case, under the analytic that owns them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// `[an0400]`.
    pub an0400: an0400::An0400Config,
    /// `[an0401]`.
    pub an0401: an0401::An0401Config,
    /// `[an0402]`.
    pub an0402: an0402::An0402Config,
    /// `[an0403]`.
    pub an0403: an0403::An0403Config,
    /// `[an1496]`.
    pub an1496: an1496::An1496Config,
    /// `[correlation]`.
    pub correlation: correlate::CorrelationConfig,
    /// `[baseline]`.
    pub baseline: baseline::BaselineConfig,
}

/// Errors of the detection stage's setup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// Baseline detect mode needs `[baseline] path`.
    #[error("baseline mode \"detect\" needs [baseline] path")]
    MissingBaselinePath,
    /// The baseline file could not be loaded.
    #[error(transparent)]
    Baseline(#[from] baseline::BaselineError),
}

/// How urgent a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth recording; rarely worth a look alone.
    Low,
    /// Worth a look.
    Medium,
    /// Likely malicious.
    High,
    /// Act now.
    Critical,
}

impl Severity {
    /// The stable output name (same as the serde form).
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity at `level` on the scale 0 (low) ..= 3 (critical), clamped.
    pub const fn from_level(level: i32) -> Severity {
        match level {
            i32::MIN..=0 => Severity::Low,
            1 => Severity::Medium,
            2 => Severity::High,
            _ => Severity::Critical,
        }
    }

    /// The position on the scale 0 (low) ..= 3 (critical).
    pub const fn level(self) -> i32 {
        match self {
            Severity::Low => 0,
            Severity::Medium => 1,
            Severity::High => 2,
            Severity::Critical => 3,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
