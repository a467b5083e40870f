//! Inspection: what the payload of a flow is (protocol recognition, randomness, TLS).
//!
//! Inspectors read borrowed payload bytes handed over by the flow stage and produce
//! findings for `detect`; they never copy packet bytes beyond small bounded state.

pub mod protocol;
