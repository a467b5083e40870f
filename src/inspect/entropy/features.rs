//! Byte features beside the histogram: printable bytes, set bits and printable runs.
//!
//! The number of printable bytes and of set bits are functions of the histogram:
//! they are derived from it at verdict time, as dot products with the constant
//! per-value tables [`PRINTABLE_TABLE`] and [`POPCOUNT_TABLE`], instead of per byte.
//! The longest printable run depends on byte order, so kernels track it in their
//! pass (only when asked). The reference kernel computes all three with the plainest
//! per-byte loop, and the test suite checks that the derived values equal it.

use super::histogram::Counter;

/// How many leading bytes [`Randomness::first_bytes_printable`](super::Randomness)
/// looks at. Six bytes cover the magic of the cleartext protocols that announce
/// themselves (`SSH-2.`, `GET / `, `HTTP/1`, `220 ` banners).
pub const FIRST_BYTES: usize = 6;

/// Whether `b` counts as printable text: ASCII graphic characters, space, and the
/// three whitespace controls text carries (`\t`, `\n`, `\r`).
///
/// A uniformly random byte is printable with probability 98/256.
#[inline]
pub const fn is_printable(b: u8) -> bool {
    matches!(b, 0x20..=0x7E | b'\t' | b'\n' | b'\r')
}

/// Number of printable byte values, out of 256.
pub(crate) const PRINTABLE_VALUES: u32 = 98;

/// 1 for each printable byte value ([`is_printable`]), 0 otherwise.
pub(crate) const PRINTABLE_TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = is_printable(b as u8) as u8;
        b += 1;
    }
    t
};

/// The number of set bits of each byte value.
pub(crate) const POPCOUNT_TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).count_ones() as u8;
        b += 1;
    }
    t
};

/// `Σ counts[b] · weights[b]`: with [`PRINTABLE_TABLE`] the number of printable bytes,
/// with [`POPCOUNT_TABLE`] the number of set bits.
///
/// Wrapping arithmetic cannot wrap: the counts sum to a number of bytes held in
/// memory (below 2^57 on every 64-bit target) and each weight is at most 8.
#[inline]
pub(crate) fn weighted_sum<C: Counter>(counts: &[C; 256], weights: &[u8; 256]) -> u64 {
    C::weighted_sum(counts, weights)
}

/// The features the reference kernel computes byte by byte, for comparison with the
/// values the fast paths derive from the histogram and their run tracking.
///
/// Integers only, so that kernels can be compared with the reference exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ByteStats {
    /// Number of printable bytes ([`is_printable`]).
    pub printable: u64,
    /// Total number of set bits.
    pub popcount: u64,
    /// Printable-run tracking, carried across calls.
    pub run: RunState,
}

/// Longest run of printable bytes, carried across calls so that a run that spans
/// packets is measured whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunState {
    /// Length of the printable run that ends at the last byte seen.
    pub current: u64,
    /// Longest printable run seen so far (including `current`).
    pub longest: u64,
}

impl RunState {
    /// Feeds one byte's printable flag.
    #[inline]
    pub fn push(&mut self, printable: bool) {
        if printable {
            self.current = self.current.saturating_add(1);
            if self.current > self.longest {
                self.longest = self.current;
            }
        } else {
            self.current = 0;
        }
    }

    /// Feeds the printable flags of 64 consecutive bytes: bit `i` of `mask` is byte `i`.
    #[inline]
    pub fn push_mask64(&mut self, mask: u64) {
        if mask == u64::MAX {
            self.current = self.current.saturating_add(64);
            if self.current > self.longest {
                self.longest = self.current;
            }
            return;
        }
        self.absorb(mask);
        // The run that reaches the last byte carries over.
        self.current = u64::from(mask.leading_ones());
    }

    /// Feeds the printable flags of `n` consecutive bytes (`1..=64`): bit `i` of `mask`
    /// is byte `i`, and the bits from `n` on must be clear. `n == 0` changes nothing.
    #[inline]
    pub fn push_partial(&mut self, mask: u64, n: u32) {
        if n == 0 {
            return;
        }
        if n >= 64 {
            self.push_mask64(mask);
            return;
        }
        let (lead, joined) = self.absorb(mask);
        self.current = if lead >= n {
            joined
        } else {
            // The run that ends at byte n - 1, read from the top after a shift.
            u64::from((mask << (64 - n)).leading_ones())
        };
    }

    /// Updates `longest` with the runs of one word of flags: the run that continues
    /// from the previous bytes, and those inside the word. Returns the word's leading
    /// run (from bit 0) and its length joined to `current`; `current` is the caller's
    /// to set.
    #[inline]
    fn absorb(&mut self, mask: u64) -> (u32, u64) {
        let lead = mask.trailing_ones();
        let joined = self.current.saturating_add(u64::from(lead));
        if joined > self.longest {
            self.longest = joined;
        }
        // Runs that start and end inside this word (none is longer than 63 unless the
        // word is full, so only look when one could beat the longest so far). Each
        // `x &= x >> 1` shortens every run by one: the number of steps to clear `x` is
        // the longest run.
        if self.longest < 63 {
            let mut x = mask;
            let mut inner = 0u64;
            while x != 0 {
                x &= x >> 1;
                inner += 1;
            }
            if inner > self.longest {
                self.longest = inner;
            }
        }
        (lead, joined)
    }
}

/// The first 64 bytes of `bytes` in a block padded with zeros (0x00 is not printable:
/// the padding adds no set bit to a printable mask), so that a tail can be classified
/// like a whole block.
#[inline(always)]
pub(crate) fn padded_block(bytes: &[u8]) -> [u8; 64] {
    let n = bytes.len().min(64);
    let mut block = [0u8; 64];
    if let (Some(dst), Some(src)) = (block.get_mut(..n), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
    block
}

/// Printable flags of up to 64 bytes, as bits (byte 0 → bit 0); the bits from
/// `bytes.len()` on are clear. Longer input is cut at 64 bytes.
#[inline]
pub(crate) fn printable_mask_short(bytes: &[u8]) -> u64 {
    let n = bytes.len().min(64);
    let block = padded_block(bytes);
    let (words, _) = block.as_chunks::<8>();
    let mut mask = 0u64;
    for (i, w) in words.iter().enumerate().take(n.div_ceil(8)) {
        mask |= printable_mask8(u64::from_le_bytes(*w)) << (8 * i);
    }
    mask
}

/// Packs the high bit of each of the 8 bytes of `x` into bits 0..8 (byte 0 → bit 0).
#[inline]
pub(crate) const fn pack_high_bits(x: u64) -> u64 {
    // Move each high bit to the low bit of its byte, then gather the eight bits into
    // the top byte with one multiplication (bit 8*i lands at bit 56 + i, and no two
    // partial products collide).
    let lows = (x >> 7) & 0x0101_0101_0101_0101;
    lows.wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Printable flags of the 8 bytes of a little-endian word, as 8 bits (byte 0 → bit 0),
/// computed with SIMD-within-a-register arithmetic (no byte can carry into another).
#[inline]
pub(crate) const fn printable_mask8(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = w & LOW7;
    // high bit set where the low 7 bits are >= 0x20 (adds at most 0x7F + 0x60 < 0x100)
    let ge20 = low7.wrapping_add(0x60 * ONES);
    // high bit set where the low 7 bits are 0x7F
    let is7f = low7.wrapping_add(ONES);
    let ascii = !w;
    let graphic = ge20 & !is7f & ascii & HIGH;
    // exact per-byte zero test of v: high bit set where the byte of v is 0
    let t = w ^ (0x09 * ONES);
    let n = w ^ (0x0A * ONES);
    let r = w ^ (0x0D * ONES);
    let zt = !(((t & LOW7).wrapping_add(LOW7)) | t);
    let zn = !(((n & LOW7).wrapping_add(LOW7)) | n);
    let zr = !(((r & LOW7).wrapping_add(LOW7)) | r);
    pack_high_bits((graphic | zt | zn | zr) & HIGH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_set_has_98_values() {
        let n = (0u8..=255).filter(|&b| is_printable(b)).count();
        assert_eq!(n, PRINTABLE_VALUES as usize);
    }

    #[test]
    fn swar_mask_matches_per_byte_test_for_every_value_in_every_lane() {
        for lane in 0..8 {
            for v in 0u8..=255 {
                // surround with bytes of both classes to catch cross-lane carries
                for filler in [0x00u8, 0x41, 0xFF, 0x7F, 0x09] {
                    let mut bytes = [filler; 8];
                    bytes[lane] = v;
                    let mask = printable_mask8(u64::from_le_bytes(bytes));
                    for (i, &b) in bytes.iter().enumerate() {
                        assert_eq!(
                            (mask >> i) & 1 == 1,
                            is_printable(b),
                            "lane {i} byte {b:#x}"
                        );
                    }
                    assert_eq!(mask >> 8, 0);
                }
            }
        }
    }

    #[test]
    fn partial_masks_give_the_runs_of_their_bytes() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..4000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (round % 66) as u32;
            let raw = seed | (seed >> 2) | (seed >> 9);
            let mask = if n >= 64 {
                raw
            } else {
                raw & ((1u64 << n) - 1)
            };
            for start in [0u64, 3, 70] {
                let mut by_mask = RunState {
                    current: start,
                    longest: start,
                };
                let mut by_byte = by_mask;
                by_mask.push_partial(mask, n);
                for i in 0..n.min(64) {
                    by_byte.push((mask >> i) & 1 == 1);
                }
                assert_eq!(by_mask, by_byte, "mask {mask:x} n {n} start {start}");
            }
        }
    }

    #[test]
    fn short_masks_equal_per_byte_flags() {
        let bytes: Vec<u8> = (0..200u32).map(|i| (i * 37 % 256) as u8).collect();
        for n in 0..=70 {
            let mask = printable_mask_short(&bytes[..n]);
            for (i, &b) in bytes.iter().enumerate().take(64) {
                let want = i < n && is_printable(b);
                assert_eq!((mask >> i) & 1 == 1, want, "n {n} bit {i}");
            }
        }
    }

    #[test]
    fn mask_runs_equal_byte_runs_for_patterned_masks() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            let mut words = [0u64; 3];
            for w in &mut words {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // bias towards long runs
                *w = seed | (seed >> 3) | (seed >> 5);
            }
            let mut by_mask = RunState::default();
            let mut by_byte = RunState::default();
            for &w in &words {
                by_mask.push_mask64(w);
                for i in 0..64 {
                    by_byte.push((w >> i) & 1 == 1);
                }
            }
            assert_eq!(by_mask, by_byte, "{words:x?}");
        }
        let mut full = RunState::default();
        full.push_mask64(u64::MAX);
        full.push_mask64(u64::MAX >> 1);
        assert_eq!(
            full,
            RunState {
                current: 0,
                longest: 127
            }
        );
    }
}
