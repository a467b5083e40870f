//! entrospect: inline detection of encrypted command-and-control channels.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod capture;
pub mod config;
mod correlation;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod error;
pub mod ffi;
pub mod flow;
pub mod host;
pub mod inspect;
pub mod output;
pub mod pipeline;
pub mod time;

pub use config::Config;
pub use engine::Engine;
pub use error::{Error, Result};
pub use output::Event;
pub use time::Timestamp;
