//! Generates the bundled demo capture, its host events and its README.
//!
//! ```sh
//! cargo run --example gen_demo -- examples/data
//! ```
//!
//! See `examples/data/README.md` for what each flow is and what entrospect should say.

#[path = "gen_demo/mod.rs"]
mod gen_demo;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("examples/data"));
    match gen_demo::generate(&dir) {
        Ok(demo) => {
            for f in &demo.flows {
                println!(
                    "{:<18} {} {} -> {}  {} packets, {} bytes",
                    f.name,
                    f.proto.as_str(),
                    f.client,
                    f.server,
                    f.packets,
                    f.bytes
                );
            }
            println!(
                "wrote {} ({} bytes), {} ({} events), {} into {}",
                gen_demo::PCAPNG_FILE,
                demo.pcapng.len(),
                gen_demo::HOST_EVENTS_FILE,
                demo.host_events.len(),
                gen_demo::README_FILE,
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_demo: {e}");
            ExitCode::FAILURE
        }
    }
}
