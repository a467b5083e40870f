//! entrospect: inline detection of encrypted command-and-control channels.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod capture;
pub mod flow;
pub mod host;
pub mod inspect;
pub mod time;

pub use time::Timestamp;
