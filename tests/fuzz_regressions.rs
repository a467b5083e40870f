//! Replays every input under `fuzz/regressions/<target>/` that once crashed a fuzz target,
//! the way that target feeds it (`x509-parser`'s `run_all_fuzz_files.rs` model).
//!
//! - `engine/ipv6_ext_iter_unchecked_slice`: etherparse 0.18.2's IPv6 extension iterator
//!   built an unchecked slice on a lax parse (UB; a panic in debug). The decoder now walks
//!   the extension chain itself.

use entrospect::capture::LinkType;
use entrospect::{Config, Engine, Timestamp};
use std::path::Path;

/// The `engine` fuzz target's record format: [link selector][time step][len hi][len lo] frame.
fn run_engine(data: &[u8]) {
    const LINKS: [LinkType; 8] = [
        LinkType::ETHERNET,
        LinkType::RAW,
        LinkType::NULL,
        LinkType::LINUX_SLL,
        LinkType::LINUX_SLL2,
        LinkType::PPP,
        LinkType::NFLOG,
        LinkType::IEEE802_11_RADIOTAP,
    ];
    let mut engine = Engine::new(Config::default()).expect("valid config");
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut rest = data;
    while let [sel, step, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (frame, next) = tail.split_at(len);
        ts += u64::from(*step) * 10_000_000;
        engine.process_packet(Timestamp(ts), LINKS[usize::from(*sel) % LINKS.len()], frame);
        let _ = engine.drain_events().count();
        rest = next;
    }
    engine.flush(Timestamp(ts + 3_600_000_000_000));
    engine.finish();
    let _ = engine.drain_events().count();
}

#[test]
fn every_recorded_engine_crash_now_runs_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/engine");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions dir").flatten() {
        run_engine(&std::fs::read(entry.path()).expect("read"));
        n += 1;
    }
    assert!(n >= 1, "no regression inputs found in {}", dir.display());
}
