//! The oracle: the plainest loop that counts bytes and derives every feature.
//!
//! Never optimise this file. Every other kernel is tested against it.

use super::features::{ByteStats, is_printable};
use super::histogram::Counter;

/// Counts `bytes` into a fresh `[u64; 256]` and its features, one byte at a time.
pub(crate) fn histogram(
    bytes: &[u8],
    run_in: super::features::RunState,
) -> ([u64; 256], ByteStats) {
    let mut counts = [0u64; 256];
    let mut stats = ByteStats {
        run: run_in,
        ..ByteStats::default()
    };
    for &b in bytes {
        counts[usize::from(b)] += 1;
        if is_printable(b) {
            stats.printable += 1;
        }
        stats.popcount += u64::from(b.count_ones());
        stats.run.push(is_printable(b));
    }
    (counts, stats)
}

/// Adds `bytes` to `counts` and `stats` through [`histogram`].
pub(crate) fn count<C: Counter>(bytes: &[u8], counts: &mut [C; 256], stats: &mut ByteStats) {
    let (fresh, s) = histogram(bytes, stats.run);
    for (c, f) in counts.iter_mut().zip(fresh) {
        // A chunk handed to a kernel is at most u32::MAX bytes (see `Kernel::count`).
        c.add(f as u32);
    }
    stats.printable = stats.printable.saturating_add(s.printable);
    stats.popcount = stats.popcount.saturating_add(s.popcount);
    stats.run = s.run;
}
