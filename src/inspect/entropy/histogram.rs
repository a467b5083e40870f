//! Byte histograms and the one function that turns a histogram into entropy.
//!
//! Entropy never calls `log2` per bin: `H = (N·log2 N − Σ c·log2 c) / N`, and every
//! `c·log2 c` is a fixed-point integer, `round(c·log2(c)·2^40)`, read from a table of
//! every count below [`NLOG2N_TABLE_LEN`]. The terms are summed in integers, which is
//! associative: whatever order a loop, an unrolled lane or a vector unit adds them in,
//! the sum is the same, and so is the entropy, bit for bit, on every CPU. The only
//! floating-point steps are one conversion and one division at the end.
//!
//! Precision: a table entry is within 2^-41 plus one `f64` rounding (relative 2^-53)
//! of `c·log2 c`; after the division by `N` the entropy is within about 1e-13
//! bits/byte of the exact value (`tests.rs` checks 1e-9 against the oracle's
//! floating-point formula, and prints the largest difference it saw).
//!
//! Three ways through a histogram of fewer than 65 536 bytes, giving the same integer:
//! when every count of a `u16` histogram is below [`PAIR_SIDE`] (every sample shorter
//! than 16 bytes, 97 % of random 1460-byte samples) bins `i` and `i + 128`
//! are looked up together in a 256-entry table of `T[a] + T[b]` (half the table loads,
//! byte indices built with vector instructions; below [`SPARSE_MAX`] bytes only the
//! pairs with a non-zero term); otherwise, on x86_64, when at most
//! [`REPEATED_VISIT_MAX`] bins hold two bytes or more (only they have a non-zero
//! term), a vector map of them and one lookup each (SSE2 or AVX2 for a `u16`
//! histogram; AVX2 for a `u64` one below [`MAP_FIRST_BELOW`] bytes); otherwise one
//! lookup per bin.
//! Larger one-shot histograms sum in `u128` and compute the terms of counts beyond the table directly.

use std::hint::black_box;
use std::sync::OnceLock;

use super::features::{POPCOUNT_TABLE, PRINTABLE_TABLE, pack_high_bits, weighted_sum};

/// Counts below this length get their `c·log2(c)` from a table (512 KiB of `u64`,
/// built once per process on first use). It covers every count an
/// [`EntropyAccumulator`](super::EntropyAccumulator) can hold.
pub const NLOG2N_TABLE_LEN: usize = 1 << 16;

/// Fraction bits of the fixed-point `c·log2(c)` terms.
const FRAC_BITS: i32 = 40;

/// Counts of a pair-table lookup are below this (a 16×16 table of `u64`, 2 KiB,
/// indexed by one byte: no bounds check).
const PAIR_SIDE: u64 = 16;

/// `u16` histograms with fewer bytes than this visit only the pairs with a non-zero
/// term (most bins of a short sample hold 0 or 1 byte): 36 ns instead of 45 for 64
/// random bytes, measured with a standalone loop on the Zen 3 benchmark machine.
const SPARSE_MAX: u64 = 128;

/// A histogram counter: `u16` inside an accumulator (bounded by its window), `u64` in
/// a one-shot histogram.
pub(crate) trait Counter: Copy + Default + Into<u64> {
    /// Narrow counters, whose read-modify-writes are slow (see `portable.rs`), and whose
    /// entropy sum takes the pair table.
    const NARROW: bool;

    /// Adds `n` to the counter. Callers guarantee that the sum fits: an accumulator
    /// never admits more bytes than its window (at most `u16::MAX`), and a `u64`
    /// counter cannot overflow on a slice held in memory.
    fn add(&mut self, n: u32);

    /// `Σ counts[b] · weights[b]` (see [`weighted_sum`]).
    fn weighted_sum(counts: &[Self; 256], weights: &[u8; 256]) -> u64;

    /// `Σ c²` over the bins, saturating.
    fn sum_of_squares(counts: &[Self; 256]) -> u128;

    /// The three dot products a verdict needs, in one pass over the bins: printable
    /// bytes, set bits, and `Σ c²` (saturating). Equal to [`weighted_sum`] with
    /// [`PRINTABLE_TABLE`] and [`POPCOUNT_TABLE`] and to [`Counter::sum_of_squares`].
    fn sums(counts: &[Self; 256]) -> Sums;

    /// Bit `b` (of word `b / 64`) set when `counts[b] >= 2`, made with vector
    /// instructions, or `None` when this CPU has none for this counter width.
    #[cfg(target_arch = "x86_64")]
    fn repeated_map(counts: &[Self; 256]) -> Option<[u64; 4]>;

    /// Writes `a·16 + b` (truncated to a byte) for each pair of bins `a = counts[i]`,
    /// `b = counts[i + 128]`, and returns the bitwise OR of all counts (the indices are
    /// meaningful when it is below [`PAIR_SIDE`]).
    fn pair_index(counts: &[Self; 256], index: &mut [u8; 128]) -> u64;
}

/// [`PRINTABLE_TABLE`] and [`POPCOUNT_TABLE`] widened to `i16`, so that a dot product
/// with `i16` counts is one multiply-add of equal lanes.
#[cfg(target_arch = "x86_64")]
const PRINTABLE_I16: [i16; 256] = widen(&PRINTABLE_TABLE);
#[cfg(target_arch = "x86_64")]
const POPCOUNT_I16: [i16; 256] = widen(&POPCOUNT_TABLE);

#[cfg(target_arch = "x86_64")]
const fn widen(t: &[u8; 256]) -> [i16; 256] {
    let mut w = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        w[i] = t[i] as i16;
        i += 1;
    }
    w
}

/// The dot products of [`Counter::sums`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sums {
    /// Number of printable bytes.
    pub printable: u64,
    /// Number of set bits.
    pub popcount: u64,
    /// `Σ c²`, saturating.
    pub squares: u128,
}

impl Counter for u16 {
    const NARROW: bool = true;

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn repeated_map(counts: &[u16; 256]) -> Option<[u64; 4]> {
        Some(super::x86_64::repeated_map(counts))
    }

    #[inline]
    fn sums(counts: &[u16; 256]) -> Sums {
        // The counts sum to at most u16::MAX (the window), so every product and every
        // sum fits a u32 (Σ c² <= (Σ c)² < 2^32).
        #[cfg(target_arch = "x86_64")]
        if counts.iter().fold(0u16, |a, &c| a | c) <= i16::MAX as u16 {
            // Every count fits an i16 (always below 32 KiB): SSE2's multiply-add (AVX2's
            // where the CPU has it), a third of the instructions of the u32 loop below,
            // whose multiplies baseline x86_64 has to emulate.
            let (printable, popcount, squares) =
                super::x86_64::sums_i16(counts, &PRINTABLE_I16, &POPCOUNT_I16);
            return Sums {
                printable: u64::from(printable),
                popcount: u64::from(popcount),
                squares: u128::from(squares),
            };
        }
        // u32 lanes. The printable weight is 0 or 1: a mask, not a multiply. The
        // tables go through `black_box`: with their contents in view, LLVM unrolls the
        // 256 bins into scalar code specialised per weight (about 3 instructions a
        // bin) instead of vectorising the loop.
        let (pt, wt) = (black_box(&PRINTABLE_TABLE), black_box(&POPCOUNT_TABLE));
        let mut printable = 0u32;
        let mut popcount = 0u32;
        let mut squares = 0u32;
        for ((&c, &p), &w) in counts.iter().zip(pt).zip(wt) {
            let c = u32::from(c);
            printable = printable.wrapping_add(c & 0u32.wrapping_sub(u32::from(p)));
            popcount = popcount.wrapping_add(c * u32::from(w));
            squares = squares.wrapping_add(c * c);
        }
        Sums {
            printable: u64::from(printable),
            popcount: u64::from(popcount),
            squares: u128::from(squares),
        }
    }

    #[inline(always)]
    fn pair_index(counts: &[u16; 256], index: &mut [u8; 128]) -> u64 {
        // u16 lanes throughout, so that the loop vectorises well.
        let (lo, hi) = counts.split_at(128);
        let mut any = 0u16;
        for ((i, &a), &b) in index.iter_mut().zip(lo).zip(hi) {
            any |= a | b;
            *i = ((a << 4) | b) as u8;
        }
        u64::from(any)
    }

    #[inline]
    fn add(&mut self, n: u32) {
        // Truncation is sound by the caller's contract (n <= window <= u16::MAX).
        *self = self.wrapping_add(n as u16);
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
    const NARROW: bool = false;

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn repeated_map(counts: &[u64; 256]) -> Option<[u64; 4]> {
        super::x86_64::repeated_map_u64(counts)
    }

    #[inline]
    fn sums(counts: &[u64; 256]) -> Sums {
        // Below 2^32 bytes (every one-shot sample in practice) each count and each
        // square fits a u64 and so does Σ c² <= (Σ c)²: plain 64-bit arithmetic, no
        // u128 on the way. Larger samples take the general path.
        let total = counts.iter().fold(0u64, |a, &c| a.wrapping_add(c));
        if total > u64::from(u32::MAX) {
            return Sums {
                printable: Self::weighted_sum(counts, &PRINTABLE_TABLE),
                popcount: Self::weighted_sum(counts, &POPCOUNT_TABLE),
                squares: Self::sum_of_squares(counts),
            };
        }
        let mut printable = 0u64;
        let mut popcount = 0u64;
        let mut squares = 0u64;
        for ((&c, &p), &w) in counts.iter().zip(&PRINTABLE_TABLE).zip(&POPCOUNT_TABLE) {
            printable = printable.wrapping_add(c & 0u64.wrapping_sub(u64::from(p)));
            popcount = popcount.wrapping_add(c * u64::from(w));
            squares = squares.wrapping_add(c * c);
        }
        Sums {
            printable,
            popcount,
            squares: u128::from(squares),
        }
    }

    #[inline(always)]
    fn pair_index(counts: &[u64; 256], index: &mut [u8; 128]) -> u64 {
        let (lo, hi) = counts.split_at(128);
        let mut any = 0u64;
        for ((i, &a), &b) in index.iter_mut().zip(lo).zip(hi) {
            any |= a | b;
            *i = ((a << 4) | b) as u8;
        }
        any
    }

    #[inline]
    fn add(&mut self, n: u32) {
        *self = self.wrapping_add(u64::from(n));
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

/// The fixed-point tables: `c·log2(c)` for every count below [`NLOG2N_TABLE_LEN`], and
/// `T[a] + T[b]` for every pair of counts below [`PAIR_SIDE`] (index `a·16 + b`).
struct NlogTables {
    single: Box<[u64; NLOG2N_TABLE_LEN]>,
    pair: [u64; 256],
}

/// `round(c·log2(c)·2^40)` (0 for `c < 2`); below `2^64·64·2^40 = 2^110`, so it fits.
fn fixed_term(c: u64) -> u128 {
    // Finite and non-negative: the cast never saturates.
    fixed_term_f64(c) as u128
}

/// [`fixed_term`] of a count below 2^16, whose term (below 2^60) fits a `u64`: the
/// same value, converted without `u128` (65 536 of them make the table, built at
/// start-up).
fn fixed_term_small(c: u64) -> u64 {
    // Finite, non-negative and below 2^60 for c < 2^16: the cast is exact.
    fixed_term_f64(c) as u64
}

/// `round(c·log2(c)·2^40)` as an integer-valued `f64` (0 for `c < 2`).
#[inline]
fn fixed_term_f64(c: u64) -> f64 {
    if c < 2 {
        return 0.0;
    }
    let x = c as f64;
    (x * x.log2() * 2f64.powi(FRAC_BITS)).round()
}

fn tables() -> &'static NlogTables {
    static TABLES: OnceLock<NlogTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        // Built on the heap (512 KiB does not belong on a stack); the conversion
        // cannot fail since the lengths match.
        let mut single: Box<[u64; NLOG2N_TABLE_LEN]> = vec![0u64; NLOG2N_TABLE_LEN]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| Box::new([0; NLOG2N_TABLE_LEN]));
        for (c, v) in (0u64..).zip(single.iter_mut()) {
            *v = fixed_term_small(c);
        }
        let mut pair = [0u64; 256];
        for (i, v) in (0u64..).zip(pair.iter_mut()) {
            let (a, b) = (i / PAIR_SIDE, i % PAIR_SIDE);
            *v = fixed_term(a)
                .saturating_add(fixed_term(b))
                .try_into()
                .unwrap_or(u64::MAX);
        }
        NlogTables { single, pair }
    })
}

/// Σ T[c] over the bins by pairs (bin `i` with bin `i + 128`) from the pair table, or
/// `None` when a count is [`PAIR_SIDE`] or more. With `sparse`, only the pairs whose
/// term is not zero are looked up (the same sum).
#[inline(always)]
fn sum_pairs<C: Counter>(counts: &[C; 256], pair: &[u64; 256], sparse: bool) -> Option<u64> {
    let mut index = [0u8; 128];
    if C::pair_index(counts, &mut index) >= PAIR_SIDE {
        return None;
    }
    if sparse {
        return Some(sum_nonzero_pairs(&index, pair));
    }
    let mut acc = [0u64; 4];
    let (quads, _) = index.as_chunks::<4>();
    for q in quads {
        for (a, &i) in acc.iter_mut().zip(q) {
            *a = a.wrapping_add(pair[usize::from(i)]);
        }
    }
    Some(acc.iter().fold(0, |s, &a| s.wrapping_add(a)))
}

/// Σ pair[i] over the pair indices whose term is not zero: a pair's term is zero when
/// both its counts are 0 or 1, i.e. when bits 1..=3 and 5..=7 of its index are clear.
/// A branch-free mask of the others first, then one lookup per set bit.
#[inline(always)]
fn sum_nonzero_pairs(index: &[u8; 128], pair: &[u64; 256]) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let mut mask = 0u128;
    let (words, _) = index.as_chunks::<8>();
    for (k, w) in words.iter().enumerate() {
        let t = u64::from_le_bytes(*w) & 0xEEEE_EEEE_EEEE_EEEE;
        // high bit of each byte set where that byte of t is non-zero
        let nonzero = (((t & LOW7).wrapping_add(LOW7)) | t) & HIGH;
        mask |= u128::from(pack_high_bits(nonzero)) << (8 * k);
    }
    let mut sum = 0u64;
    while mask != 0 {
        let j = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        if let Some(&i) = index.get(j) {
            sum = sum.wrapping_add(pair[usize::from(i)]);
        }
    }
    sum
}

/// Σ T[c] over the bins, one lookup per bin, for a histogram whose total is below
/// [`NLOG2N_TABLE_LEN`] (so is every count: the truncation to `u16` is lossless, and
/// every `u16` is an index of the table).
#[inline(always)]
fn sum_dense<C: Counter>(counts: &[C; 256], single: &[u64; NLOG2N_TABLE_LEN]) -> u64 {
    let mut acc = [0u64; 4];
    let (quads, _) = counts.as_chunks::<4>();
    for q in quads {
        for (a, &c) in acc.iter_mut().zip(q) {
            *a = a.wrapping_add(single[usize::from(c.into() as u16)]);
        }
    }
    acc.iter().fold(0, |s, &a| s.wrapping_add(a))
}

/// Σ T[c] over the bins for any counts (one-shot histograms of 64 KiB or more), in
/// `u128`, computing the terms of counts beyond the table directly.
fn sum_general<C: Counter>(counts: &[C; 256], single: &[u64; NLOG2N_TABLE_LEN]) -> u128 {
    counts
        .iter()
        .map(|&c| {
            let c = c.into();
            match usize::try_from(c).ok().and_then(|i| single.get(i)) {
                Some(&t) => u128::from(t),
                None => fixed_term(c),
            }
        })
        .fold(0u128, u128::saturating_add)
}

/// Up to this many bins of two bytes or more, [`sum_small`] visits them one by one
/// (about 6 instructions each, after a map of about 220) rather than all 128 pairs or
/// 256 bins.
#[cfg(target_arch = "x86_64")]
const REPEATED_VISIT_MAX: u32 = 48;

/// Below this many bytes [`sum_small`] tries the visit before the pairs (random bytes
/// fill about 48 bins twice at 190 bytes). Measured on the bench capture with
/// callgrind: visiting first at every length saves 8 M of 1,131 M instructions, but
/// adds the map's cost to a long random sample (522 -> 746 instructions at 1460 bytes).
#[cfg(target_arch = "x86_64")]
const MAP_FIRST_BELOW: u64 = 192;

/// Σ T[c] over the bins whose bit is set in `map` (bit `b` of word `b / 64`).
#[cfg(target_arch = "x86_64")]
#[inline]
fn sum_visit<C: Counter>(
    counts: &[C; 256],
    map: [u64; 4],
    single: &[u64; NLOG2N_TABLE_LEN],
) -> u64 {
    let mut sum = 0u64;
    for (base, mut m) in (0usize..).step_by(64).zip(map) {
        while m != 0 {
            let b = (base + m.trailing_zeros() as usize) & 0xFF;
            m &= m - 1;
            // Below the table's length: a u16 always is, and [`sum_small`]'s callers
            // give `u64` histograms whose total is. The mask only drops the bounds
            // check.
            let c: u64 = counts[b].into();
            sum = sum.wrapping_add(single[(c as usize) & (NLOG2N_TABLE_LEN - 1)]);
        }
    }
    sum
}

/// Σ T[c] over the bins of a histogram whose total is below [`NLOG2N_TABLE_LEN`], by
/// the path suited to it (both give the same integer).
#[inline]
fn sum_small<C: Counter>(counts: &[C; 256], total: u64, t: &NlogTables) -> u64 {
    // Only bins of two bytes or more have a non-zero term. Short samples have few of
    // them (random bytes: about 23 in 128 bytes, 68 in 256), so they visit just those
    // first; longer ones try the pairs first, and visit only when a count of 16 or
    // more declines the pairs (the zeros of a DNS message do) and the bins are few.
    #[cfg(target_arch = "x86_64")]
    if total < MAP_FIRST_BELOW
        && let Some(s) = sum_repeated(counts, &t.single)
    {
        return s;
    }
    // Only narrow counts take the pairs: building the byte indices from u64 counts
    // costs more than the pairs save (measured: 99-108 ns against 88-93 at 64 bytes).
    if C::NARROW
        && let Some(s) = sum_pairs(counts, &t.pair, total < SPARSE_MAX)
    {
        return s;
    }
    // (u64 counts skip this: without the pairs, a long sample's map would mostly be
    // made in vain, as random bytes fill more than 48 bins twice from 190 bytes on.)
    #[cfg(target_arch = "x86_64")]
    if C::NARROW
        && total >= MAP_FIRST_BELOW
        && let Some(s) = sum_repeated(counts, &t.single)
    {
        return s;
    }
    sum_dense(counts, &t.single)
}

/// Σ T[c] over the bins of two bytes or more, visited one by one, or `None` when there
/// are more than [`REPEATED_VISIT_MAX`] of them.
#[cfg(target_arch = "x86_64")]
#[inline]
fn sum_repeated<C: Counter>(counts: &[C; 256], single: &[u64; NLOG2N_TABLE_LEN]) -> Option<u64> {
    let map = C::repeated_map(counts)?;
    if map.iter().map(|m| m.count_ones()).sum::<u32>() > REPEATED_VISIT_MAX {
        return None;
    }
    Some(sum_visit(counts, map, single))
}

/// Shannon entropy in bits per byte of a histogram whose counts sum to `total`.
///
/// The one shared entropy function: every kernel's histogram goes through it, and the
/// sum it forms is an integer, so equal histograms give bit-identical entropy.
/// Returns 0 for fewer than 2 bytes; the result is clamped to `[0, 8]`.
pub(crate) fn entropy_bits<C: Counter>(counts: &[C; 256], total: u64) -> f64 {
    if total < 2 {
        return 0.0;
    }
    let t = tables();
    let scale = total as f64 * 2f64.powi(FRAC_BITS);
    // N·log2 N − Σ c·log2 c >= 0 in exact arithmetic; the saturation only absorbs
    // rounding of a sample that holds one value (entropy 0).
    let h = match u16::try_from(total) {
        Ok(n) => {
            let top = t.single[usize::from(n)];
            top.saturating_sub(sum_small(counts, total, t)) as f64 / scale
        }
        Err(_) => fixed_term(total).saturating_sub(sum_general(counts, &t.single)) as f64 / scale,
    };
    h.clamp(0.0, 8.0)
}

/// Σ c² over the bins (for the chi-square statistic), saturating.
#[cfg(test)]
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

    /// Histograms of many shapes: sparse, dense, skewed, with counts near the pair
    /// table's edge, and some beyond the `u16` table.
    fn histograms() -> Vec<[u64; 256]> {
        let mut out = Vec::new();
        let mut x = 99u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for round in 0..600u64 {
            let mut counts = [0u64; 256];
            let spread = match round % 6 {
                0 => 2,
                1 => 3,
                2 => 16,
                3 => 17,
                4 => 300,
                _ => 2 + round * 7,
            };
            for c in counts.iter_mut() {
                let r = next();
                // many zero bins in some rounds
                *c = if round % 4 == 0 && r % 3 != 0 {
                    0
                } else {
                    r % spread
                };
            }
            if round % 10 == 9 {
                counts[(next() % 256) as usize] = 70_000 + next() % 1000;
            }
            out.push(counts);
        }
        out
    }

    #[test]
    fn small_terms_equal_the_general_terms() {
        for c in 0..NLOG2N_TABLE_LEN as u64 {
            assert_eq!(u128::from(fixed_term_small(c)), fixed_term(c), "c {c}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn repeated_map_marks_bins_of_two_or_more() {
        let mut counts = [0u16; 256];
        for (b, c) in counts.iter_mut().enumerate() {
            *c = [0, 1, 2, 3, 15, 16, 32_767, 32_768, 65_535][b % 9];
        }
        // Both the SSE2 map and the one this CPU dispatches to (AVX2 where present).
        for map in [
            super::super::x86_64::sse2::repeated_map(&counts),
            super::super::x86_64::repeated_map(&counts),
        ] {
            for (b, &c) in counts.iter().enumerate() {
                assert_eq!(
                    (map[b / 64] >> (b % 64)) & 1 == 1,
                    c >= 2,
                    "bin {b} count {c}"
                );
            }
        }
    }

    #[test]
    fn fused_sums_equal_the_separate_dot_products_for_both_counter_widths() {
        let mut wide = histograms();
        // Beyond 2^32 bytes the u64 path must fall back to the general arithmetic.
        let mut huge = [3u64; 256];
        huge[7] = u64::from(u32::MAX) * 5;
        huge[200] = 1 << 40;
        wide.push(huge);
        for counts in &wide {
            let want = Sums {
                printable: u64::weighted_sum(counts, &PRINTABLE_TABLE),
                popcount: u64::weighted_sum(counts, &POPCOUNT_TABLE),
                squares: u64::sum_of_squares(counts),
            };
            assert_eq!(u64::sums(counts), want);
            // The same bins as u16 counters, scaled to fit a window.
            let total: u64 = counts.iter().sum();
            if total <= u64::from(u16::MAX) {
                let narrow: [u16; 256] = std::array::from_fn(|i| counts[i] as u16);
                let want = Sums {
                    printable: u16::weighted_sum(&narrow, &PRINTABLE_TABLE),
                    popcount: u16::weighted_sum(&narrow, &POPCOUNT_TABLE),
                    squares: u16::sum_of_squares(&narrow),
                };
                assert_eq!(u16::sums(&narrow), want);
            }
        }
        // A full u16 window of one value: the largest square a u16 histogram holds.
        let mut full = [0u16; 256];
        full[0x41] = u16::MAX;
        assert_eq!(
            u16::sums(&full).squares,
            u128::from(u16::MAX) * u128::from(u16::MAX)
        );
        assert_eq!(u16::sums(&full).printable, u64::from(u16::MAX));
    }

    #[test]
    fn uniform_histogram_has_eight_bits() {
        let counts = [3u64; 256];
        assert!((entropy_bits(&counts, 768) - 8.0).abs() < 1e-12);
        let ones = [1u16; 256];
        assert_eq!(entropy_bits(&ones, 256), 8.0);
    }

    #[test]
    fn single_value_histogram_has_zero_bits() {
        for n in [2u64, 3, 127, 128, 1460, 65_535, 65_536, 70_000] {
            let mut counts = [0u64; 256];
            counts[7] = n;
            assert_eq!(entropy_bits(&counts, n), 0.0, "n {n}");
        }
    }

    #[test]
    fn fixed_point_entropy_is_within_1e_9_of_direct_log2_formula() {
        let mut worst = 0.0f64;
        for counts in histograms() {
            let total: u64 = counts.iter().sum();
            let d = (entropy_bits(&counts, total) - super::super::reference::entropy_bits(&counts))
                .abs();
            worst = worst.max(d);
            assert!(d <= 1e-9, "{d} for total {total}");
        }
        eprintln!("largest difference from the direct formula: {worst:.3e} bits/byte");
    }

    #[test]
    fn pair_dense_and_general_sums_are_identical() {
        let t = tables();
        let mut pairs_taken = 0;
        for mut counts in histograms() {
            // keep to the table's range, as the small paths require
            for c in counts.iter_mut() {
                *c %= NLOG2N_TABLE_LEN as u64 / 256;
            }
            let dense = sum_dense(&counts, &t.single);
            assert_eq!(sum_general(&counts, &t.single), u128::from(dense));
            if let Some(p) = sum_pairs(&counts, &t.pair, false) {
                pairs_taken += 1;
                assert_eq!(p, dense);
                assert_eq!(sum_pairs(&counts, &t.pair, true), Some(dense));
            }
            let narrow: [u16; 256] = counts.map(|c| c as u16);
            assert_eq!(sum_dense(&narrow, &t.single), dense);
            #[cfg(target_arch = "x86_64")]
            {
                let map = super::super::x86_64::sse2::repeated_map(&narrow);
                assert_eq!(sum_visit(&narrow, map, &t.single), dense);
                let total: u64 = counts.iter().sum();
                if total < NLOG2N_TABLE_LEN as u64 {
                    assert_eq!(sum_small(&narrow, total, t), dense);
                    // u64 counters, through the AVX2 map where the CPU has it.
                    assert_eq!(sum_small(&counts, total, t), dense);
                    if let Some(map) = super::super::x86_64::repeated_map_u64(&counts) {
                        assert_eq!(sum_visit(&counts, map, &t.single), dense);
                    }
                }
            }
            assert_eq!(
                sum_pairs(&narrow, &t.pair, false),
                sum_pairs(&counts, &t.pair, false)
            );
            assert_eq!(
                sum_pairs(&narrow, &t.pair, true),
                sum_pairs(&counts, &t.pair, false)
            );
        }
        assert!(pairs_taken > 100, "{pairs_taken}");
    }

    #[test]
    fn pair_path_declines_a_count_of_16() {
        let t = tables();
        let mut counts = [15u16; 256];
        assert!(sum_pairs(&counts, &t.pair, true).is_some());
        counts[200] = 16;
        assert_eq!(sum_pairs(&counts, &t.pair, false), None);
        counts[200] = 15;
        counts[3] = 16;
        assert_eq!(sum_pairs(&counts, &t.pair, false), None);
        counts[3] = 256; // truncated index would look small
        assert_eq!(sum_pairs(&counts, &t.pair, false), None);
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
