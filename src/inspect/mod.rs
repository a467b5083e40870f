//! Inspectors: what the engine learns from the payload of a flow direction.
//!
//! This module owns the measurements taken on reassembled payload bytes. It must not
//! parse packets or keep flow state of its own: the flow table hands each inspector
//! borrowed payload slices and keeps the inspector's per-direction state.
//!
//! Contracts: no inspector panics on any input, allocates per payload, or grows
//! without a bound.

pub mod entropy;
