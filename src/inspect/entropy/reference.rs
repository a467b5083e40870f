//! The oracle: the plainest loop that counts bytes and derives every feature.
//!
//! Never optimise this file. Every other kernel is tested against it.

use super::features::{ByteStats, RunState, is_printable};
use super::histogram::Counter;

/// Counts `bytes` into a fresh `[u64; 256]` and its features, one byte at a time.
pub(crate) fn histogram(bytes: &[u8], run_in: RunState) -> ([u64; 256], ByteStats) {
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

/// Adds `bytes` to `counts` through [`histogram`], and feeds their printable flags to
/// `run` when `RUN`.
pub(crate) fn count<C: Counter, const RUN: bool>(
    bytes: &[u8],
    counts: &mut [C; 256],
    run: &mut RunState,
) {
    let (fresh, s) = histogram(bytes, *run);
    for (c, f) in counts.iter_mut().zip(fresh) {
        // A chunk handed to a kernel is at most u32::MAX bytes (see `Kernel::count`).
        c.add(f as u32);
    }
    if RUN {
        *run = s.run;
    }
}

/// Shannon entropy in bits per byte of a histogram, by the textbook formula
/// `-Σ p·log2(p)` in floating point (0 for fewer than 2 bytes). The fast path in
/// `histogram.rs` must stay within 1e-9 of it (checked by the test suite only).
#[cfg(test)]
pub(crate) fn entropy_bits(counts: &[u64; 256]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total < 2 {
        return 0.0;
    }
    let n = total as f64;
    let mut h = 0.0;
    for &c in counts {
        if c > 0 {
            let p = c as f64 / n;
            h -= p * p.log2();
        }
    }
    h
}
