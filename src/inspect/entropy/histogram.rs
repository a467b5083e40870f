//! Byte histograms and the one function that turns a histogram into entropy.
//!
//! Entropy never calls `log2` per bin: `H = log2(n) - (1/n) * Σ c·log2(c)`, and
//! `c·log2(c)` comes from a table of every count below [`NLOG2N_TABLE_LEN`], summed in
//! four independent accumulators. Only a bin holding 65 536 or more bytes (possible
//! only in a one-shot sample that large) computes its term directly.

use std::sync::OnceLock;

use super::features::ByteStats;

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

/// Σ term(c) over the bins (`term` must be 0 for counts 0 and 1), in eight independent accumulators (the adds do not wait
/// for each other), combined in a fixed order so that every caller rounds alike.
#[inline(always)]
fn sum_terms<C: Counter>(counts: &[C; 256], term: impl Fn(C) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let (octs, _) = counts.as_chunks::<8>();
    for oct in octs {
        // Counts of 0 and 1 add nothing (0·log2 0 = 1·log2 1 = 0): skip groups of
        // eight such bins, the common case for short payloads. Skipping `+ 0.0`
        // leaves every accumulator bit-identical.
        if oct.iter().fold(0u64, |m, &c| m | (c.into() >> 1)) == 0 {
            continue;
        }
        for (a, &c) in acc.iter_mut().zip(oct) {
            *a += term(c);
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
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
    let sum = if total < NLOG2N_TABLE_LEN as u64 {
        // Every count is at most `total`, so the cast is lossless and indexes the
        // table: no check and no fallback in the loop.
        sum_terms(counts, |c| table[usize::from(c.into() as u16)])
    } else {
        sum_terms(counts, |c| c.nlog2n(table))
    };
    let n = total as f64;
    let h = nlog2n(table, total) / n - sum / n;
    h.clamp(0.0, 8.0)
}

/// Σ c² over the bins (for the chi-square statistic), saturating.
pub(crate) fn sum_of_squares<C: Counter>(counts: &[C; 256]) -> u128 {
    counts
        .iter()
        .map(|&c| {
            let c = u128::from(c.into());
            c * c
        })
        .fold(0u128, u128::saturating_add)
}

/// The byte histogram of one sample, with the features computed in the same pass.
///
/// Built by [`Kernel::histogram`](super::Kernel::histogram); every kernel builds an
/// equal value for equal input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteHistogram {
    pub(crate) counts: [u64; 256],
    pub(crate) len: u64,
    pub(crate) stats: ByteStats,
}

impl Default for ByteHistogram {
    fn default() -> Self {
        ByteHistogram {
            counts: [0; 256],
            len: 0,
            stats: ByteStats::default(),
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

    /// Number of printable bytes ([`is_printable`](super::is_printable)).
    pub fn printable(&self) -> u64 {
        self.stats.printable
    }

    /// Total number of set bits in the sample.
    pub fn popcount(&self) -> u64 {
        self.stats.popcount
    }

    /// Longest run of consecutive printable bytes.
    pub fn longest_printable_run(&self) -> u64 {
        self.stats.run.longest
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
