//! TCP: bounded per-direction stream reassembly.

pub mod reassembly;
