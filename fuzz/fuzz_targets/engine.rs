//! The whole engine over arbitrary frames: decode, fragments, flows, reassembly, every
//! inspector and the analytics. Input: a sequence of (link type selector, timestamp step,
//! frame) records; must never panic, hang or grow without bound.
#![no_main]

use entrospect::capture::LinkType;
use entrospect::{Config, Engine, Timestamp};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
    let Ok(mut engine) = Engine::new(Config::default()) else { return };
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut rest = data;
    // Record: [link selector][time step][len hi][len lo] frame...
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
});
