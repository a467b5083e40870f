//! Inspectors: what the payload of a flow is (entropy, protocols, TLS).

pub mod tls;
