//! Inspect: what each flow's payload says.
//!
//! Owns the per-flow inspectors: randomness of each direction ([`entropy`]), and the
//! [`InspectorSet`] that runs them behind the flow table's one hook. What it learns is
//! handed to `detect` as [`FlowFindings`]; it never decides alerts itself.
//!
//! Contracts: it must not parse packets or keep flow state of its own (the flow table
//! hands it borrowed payload and keeps its per-flow state); no inspector panics on any
//! input, allocates per payload, or grows without a bound.

pub mod entropy;
pub mod protocol;
pub mod tls;

use crate::flow::{Direction, FlowMeta, Interest};
use crate::time::Timestamp;
use entropy::{EntropyAccumulator, EntropyError, Kernel, Randomness};
use serde::{Deserialize, Serialize};

/// Inspection settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntropyConfig {
    /// Payload bytes per direction whose randomness is measured (default 4096).
    pub window: usize,
    /// Force a histogram kernel (`auto` picks the fastest the CPU has).
    pub kernel: entropy::KernelChoice,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        EntropyConfig {
            window: 4096,
            kernel: entropy::KernelChoice::Auto,
        }
    }
}

/// What the inspectors keep per flow.
#[derive(Debug)]
pub struct FlowInspection {
    entropy: [EntropyAccumulator; 2],
    first_payload: [Option<Timestamp>; 2],
}

/// What inspection found about a flow, for `detect` and `output`.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowFindings {
    /// Randomness of the first payload bytes of each direction (index: [`Direction::index`]).
    pub randomness: [Option<Randomness>; 2],
    /// When each direction's first payload byte arrived.
    pub first_payload: [Option<Timestamp>; 2],
}

/// The inspectors, run together for every flow.
#[derive(Debug)]
pub struct InspectorSet {
    cfg: EntropyConfig,
    kernel: Kernel,
}

impl InspectorSet {
    /// Inspectors with these settings.
    ///
    /// # Errors
    /// When the configured entropy kernel cannot run on this CPU.
    pub fn new(cfg: EntropyConfig) -> Result<Self, EntropyError> {
        let kernel = Kernel::select(cfg.kernel)?;
        Ok(InspectorSet { cfg, kernel })
    }

    /// The histogram kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Per-flow state for a new flow.
    pub fn flow_start(&mut self, _flow: &FlowMeta) -> FlowInspection {
        FlowInspection {
            entropy: [
                EntropyAccumulator::new(self.cfg.window),
                EntropyAccumulator::new(self.cfg.window),
            ],
            first_payload: [None; 2],
        }
    }

    /// Reassembled or datagram payload of one direction.
    pub fn payload(
        &mut self,
        st: &mut FlowInspection,
        _flow: &FlowMeta,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
    ) -> Interest {
        let d = dir.index();
        st.first_payload[d].get_or_insert(ts);
        let acc = &mut st.entropy[d];
        acc.update_with(self.kernel, data);
        if acc.is_full() {
            Interest::Done
        } else {
            Interest::More
        }
    }

    /// A hole in one direction's stream.
    pub fn gap(&mut self, _st: &mut FlowInspection, _dir: Direction, _len: u64) {}

    /// The findings so far.
    pub fn findings(&self, st: &FlowInspection) -> FlowFindings {
        let r = |a: &EntropyAccumulator| (!a.is_empty()).then(|| a.randomness());
        FlowFindings {
            randomness: [r(&st.entropy[0]), r(&st.entropy[1])],
            first_payload: st.first_payload,
        }
    }
}
