//! Host adapters: turn each platform's native telemetry into normalized [`super::HostEvent`]s.

pub mod jsonl;
pub mod linux_proc;
