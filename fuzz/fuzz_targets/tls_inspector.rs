//! TLS inspector over arbitrary segment sequences in both directions.
//!
//! Input layout: a sequence of `[ctl, len, bytes...]` items. `ctl` bit 0 picks the
//! direction, bit 1 a gap before the segment, bit 2 a datagram (DTLS) instead of a
//! stream segment; `len` bytes follow (fewer at the end of the input).
#![no_main]

use entrospect::Timestamp;
use entrospect::flow::Direction;
use entrospect::inspect::tls::{TlsConfig, TlsInspector, an1496_score};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = TlsConfig::default();
    let mut insp = TlsInspector::new();
    let mut rest = data;
    let mut t = 0u64;
    while let [ctl, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (seg, next) = tail.split_at(n);
        rest = next;
        t += 1_000;
        let dir = if ctl & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if ctl & 2 != 0 {
            insp.gap(dir);
        }
        let ts = Timestamp::from_nanos(t);
        if ctl & 4 != 0 {
            insp.feed_datagram(&cfg, dir, ts, seg);
        } else {
            insp.feed(&cfg, dir, ts, seg);
        }
    }
    insp.finish(&cfg, Timestamp::from_nanos(t));
    if let Some(s) = insp.summary() {
        let _ = serde_json::to_string(s);
        let _ = an1496_score(s, &cfg);
    }
});
