//! Byte histograms and the one function that turns a histogram into entropy.
//!
//! Entropy never calls `log2` per bin: `H = log2(n) - (1/n) * Σ c·log2(c)`, and
//! `c·log2(c)` comes from a table of every count below [`NLOG2N_TABLE_LEN`], summed in
//! eight independent accumulators. Only a bin holding 65 536 or more bytes (possible
//! only in a one-shot sample that large) computes its term directly.
//!
//! Every path through [`entropy_bits`] adds, for each accumulator lane `j`, the
//! non-zero terms of bins `j, j + 8, j + 16, ...` in that order, and combines the
//! lanes in one fixed order: the result is bit-identical whichever path (dense,
//! sparse, direct) a histogram takes, and on every CPU.

use std::sync::OnceLock;

use super::features::{POPCOUNT_TABLE, PRINTABLE_TABLE, weighted_sum};

/// Counts below this length get their `c·log2(c)` from a table (512 KiB of `f64`,
/// built once per process on first use). It covers every count an
/// [`EntropyAccumulator`](super::EntropyAccumulator) can hold.
pub const NLOG2N_TABLE_LEN: usize = 1 << 16;

/// A histogram counter: `u16` inside an accumulator (bounded by its window), `u64` in
/// a one-shot histogram.
pub(crate) trait Counter: Copy + Default + Into<u64> {
    /// Adds `n` to the counter. Callers guarantee that the sum fits: an accumulator
    /// never admits more bytes than its window (at most `u16::MAX`), and a `u64`
    /// counter cannot overflow on a slice held in memory.
    fn add(&mut self, n: u32);

    /// `c·log2(c)` of this count, from `table` when the count is in it.
    fn nlog2n(self, table: &[f64; NLOG2N_TABLE_LEN]) -> f64;

    /// `Σ counts[b] · weights[b]` (see [`weighted_sum`]).
    fn weighted_sum(counts: &[Self; 256], weights: &[u8; 256]) -> u64;

    /// `Σ c²` over the bins, saturating.
    fn sum_of_squares(counts: &[Self; 256]) -> u128;
}

impl Counter for u16 {
    #[inline]
    fn add(&mut self, n: u32) {
        // Truncation is sound by the caller's contract (n <= window <= u16::MAX).
        *self = self.wrapping_add(n as u16);
    }

    #[inline(always)]
    fn nlog2n(self, table: &[f64; NLOG2N_TABLE_LEN]) -> f64 {
        // Every u16 is an index of the table: no check, no fallback.
        table[usize::from(self)]
    }

    #[inline]
    fn weighted_sum(counts: &[u16; 256], weights: &[u8; 256]) -> u64 {
        // u16 counters sum to at most u16::MAX (the window), so Σ c·w <= 8·u16::MAX
        // fits a u32: narrow lanes, which vectorise well.
        let s = counts
            .iter()
            .zip(weights)
            .map(|(&c, &w)| u32::from(c) * u32::from(w))
            .fold(0u32, u32::wrapping_add);
        u64::from(s)
    }

    #[inline]
    fn sum_of_squares(counts: &[u16; 256]) -> u128 {
        // Σ c² <= (Σ c)² <= u16::MAX²: fits a u64.
        let s = counts
            .iter()
            .map(|&c| u64::from(c) * u64::from(c))
            .fold(0u64, u64::wrapping_add);
        u128::from(s)
    }
}

impl Counter for u64 {
    #[inline]
    fn add(&mut self, n: u32) {
        *self = self.wrapping_add(u64::from(n));
    }

    #[inline(always)]
    fn nlog2n(self, table: &[f64; NLOG2N_TABLE_LEN]) -> f64 {
        nlog2n(table, self)
    }

    #[inline]
    fn weighted_sum(counts: &[u64; 256], weights: &[u8; 256]) -> u64 {
        counts
            .iter()
            .zip(weights)
            .map(|(&c, &w)| c.wrapping_mul(u64::from(w)))
            .fold(0u64, u64::wrapping_add)
    }

    fn sum_of_squares(counts: &[u64; 256]) -> u128 {
        counts
            .iter()
            .map(|&c| {
                let c = u128::from(c);
                c * c
            })
            .fold(0u128, u128::saturating_add)
    }
}

fn nlog2n_table() -> &'static [f64; NLOG2N_TABLE_LEN] {
    static TABLE: OnceLock<Box<[f64; NLOG2N_TABLE_LEN]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Built on the heap (a 512 KiB array does not belong on a stack); the
        // conversion cannot fail since the lengths match.
        let mut t: Box<[f64; NLOG2N_TABLE_LEN]> = vec![0.0f64; NLOG2N_TABLE_LEN]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| Box::new([0.0; NLOG2N_TABLE_LEN]));
        for (n, v) in t.iter_mut().enumerate().skip(2) {
            *v = n as f64 * (n as f64).log2();
        }
        t
    })
}

/// `c·log2(c)`, from the table when `c` is in it.
#[inline]
fn nlog2n(table: &[f64], c: u64) -> f64 {
    match usize::try_from(c).ok().and_then(|i| table.get(i)) {
        Some(v) => *v,
        None => c as f64 * (c as f64).log2(),
    }
}

/// Combines the eight lane sums in the one fixed order every path uses.
#[inline(always)]
fn combine(acc: [f64; 8]) -> f64 {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Totals below this take the sparse path: most bins then hold 0 or 1 byte, whose
/// terms are 0, and groups of eight such bins are skipped. From it on nearly every
/// group has a term and the dense loop does no test at all (measured with
/// `benches/entropy.rs`: the dense loop takes 85 ns instead of 111 at 1460 bytes; a
/// bit-mask walk over the bins with a term was slower than the group skip at 64).
const SPARSE_MAX: u64 = 512;

/// Σ c·log2(c) over the bins, every count below [`NLOG2N_TABLE_LEN`]: no test per
/// bin; lane `j` takes bins `j, j + 8, ...` (two loads and one add per bin).
#[inline(always)]
fn sum_dense<C: Counter>(counts: &[C; 256], table: &[f64; NLOG2N_TABLE_LEN]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (octs, _) = counts.as_chunks::<8>();
    for oct in octs {
        for (a, &c) in acc.iter_mut().zip(oct) {
            // Every count is below the table length (the caller checked the total),
            // so the truncation is lossless and the index needs no check.
            *a += table[usize::from(c.into() as u16)];
        }
    }
    combine(acc)
}

/// Σ c·log2(c) over the bins, every count below [`NLOG2N_TABLE_LEN`], skipping
/// groups of eight bins that hold 0 or 1 byte each (skipping `+ 0.0` leaves every
/// accumulator bit-identical to the dense loop's).
#[inline(always)]
fn sum_sparse<C: Counter>(counts: &[C; 256], table: &[f64; NLOG2N_TABLE_LEN]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (octs, _) = counts.as_chunks::<8>();
    for oct in octs {
        if oct.iter().fold(0u64, |m, &c| m | (c.into() >> 1)) == 0 {
            continue;
        }
        for (a, &c) in acc.iter_mut().zip(oct) {
            // As in `sum_dense`: every count is below the table length.
            *a += table[usize::from(c.into() as u16)];
        }
    }
    combine(acc)
}

/// Σ c·log2(c) over the bins for any counts (one-shot histograms of 64 KiB or more),
/// computing the terms of large counts directly.
fn sum_general<C: Counter>(counts: &[C; 256], table: &[f64; NLOG2N_TABLE_LEN]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (octs, _) = counts.as_chunks::<8>();
    for oct in octs {
        for (a, &c) in acc.iter_mut().zip(oct) {
            *a += c.nlog2n(table);
        }
    }
    combine(acc)
}

/// Shannon entropy in bits per byte of a histogram whose counts sum to `total`.
///
/// The one shared entropy function: every kernel's histogram goes through it, so equal
/// histograms give bit-identical entropy. Returns 0 for fewer than 2 bytes; the
/// result is clamped to `[0, 8]` against rounding.
pub(crate) fn entropy_bits<C: Counter>(counts: &[C; 256], total: u64) -> f64 {
    if total < 2 {
        return 0.0;
    }
    let table = nlog2n_table();
    let sum = if total < SPARSE_MAX {
        sum_sparse(counts, table)
    } else if total < NLOG2N_TABLE_LEN as u64 {
        sum_dense(counts, table)
    } else {
        sum_general(counts, table)
    };
    let n = total as f64;
    let h = nlog2n(table, total) / n - sum / n;
    h.clamp(0.0, 8.0)
}

/// Σ c² over the bins (for the chi-square statistic), saturating.
pub(crate) fn sum_of_squares<C: Counter>(counts: &[C; 256]) -> u128 {
    C::sum_of_squares(counts)
}

/// The byte histogram of one sample.
///
/// Built by [`Kernel::histogram`](super::Kernel::histogram); every kernel builds an
/// equal value for equal input. The features that depend only on the byte counts
/// (printable bytes, set bits, entropy) are derived from it on demand; the longest
/// printable run depends on byte order and is part of [`Randomness`](super::Randomness).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteHistogram {
    pub(crate) counts: [u64; 256],
    pub(crate) len: u64,
}

impl Default for ByteHistogram {
    fn default() -> Self {
        ByteHistogram {
            counts: [0; 256],
            len: 0,
        }
    }
}

impl ByteHistogram {
    /// How many times each byte value occurs.
    pub fn counts(&self) -> &[u64; 256] {
        &self.counts
    }

    /// Number of bytes counted.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was counted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of printable bytes ([`is_printable`](super::is_printable)), derived from
    /// the counts.
    pub fn printable(&self) -> u64 {
        weighted_sum(&self.counts, &PRINTABLE_TABLE)
    }

    /// Total number of set bits in the sample, derived from the counts.
    pub fn popcount(&self) -> u64 {
        weighted_sum(&self.counts, &POPCOUNT_TABLE)
    }

    /// Shannon entropy of the sample in bits per byte (0 for fewer than 2 bytes).
    pub fn bits_per_byte(&self) -> f64 {
        entropy_bits(&self.counts, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_histogram_has_eight_bits() {
        let counts = [3u64; 256];
        assert!((entropy_bits(&counts, 768) - 8.0).abs() < 1e-12);
    }

    #[test]
    fn single_value_histogram_has_zero_bits() {
        let mut counts = [0u64; 256];
        counts[7] = 70_000;
        assert_eq!(entropy_bits(&counts, 70_000), 0.0);
    }

    #[test]
    fn table_entropy_equals_direct_log2_formula() {
        let mut counts = [0u64; 256];
        let mut x = 12345u64;
        for c in counts.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *c = (x >> 40) % 200_000; // some beyond the table
        }
        let total: u64 = counts.iter().sum();
        let direct: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total as f64;
                -p * p.log2()
            })
            .sum();
        assert!((entropy_bits(&counts, total) - direct).abs() < 1e-9);
    }

    #[test]
    fn dense_sparse_and_general_sums_are_bit_identical() {
        let table = nlog2n_table();
        let mut x = 99u64;
        for round in 0..500u64 {
            let mut counts = [0u64; 256];
            for c in counts.iter_mut() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // mostly 0 and 1 in early rounds (whole groups to skip), larger later
                let r = (x >> 33) % (2 + round);
                *c = if r < 2 + round / 2 { r % 2 } else { r };
            }
            let dense = sum_dense(&counts, table);
            assert_eq!(sum_sparse(&counts, table).to_bits(), dense.to_bits());
            assert_eq!(sum_general(&counts, table).to_bits(), dense.to_bits());
        }
    }

    #[test]
    fn u16_and_u64_counters_give_identical_entropy() {
        let mut a = [0u16; 256];
        let mut b = [0u64; 256];
        for i in 0..256 {
            a[i] = (i * 37 % 101) as u16;
            b[i] = (i * 37 % 101) as u64;
        }
        let total: u64 = b.iter().sum();
        assert_eq!(
            entropy_bits(&a, total).to_bits(),
            entropy_bits(&b, total).to_bits()
        );
        assert_eq!(sum_of_squares(&a), sum_of_squares(&b));
    }
}
