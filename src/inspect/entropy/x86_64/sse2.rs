//! SSE2 (every x86_64 CPU has it) for the per-verdict passes over a `u16` histogram.
//!
//! * The three dot products of a verdict, for counts that fit an `i16`. Baseline x86_64
//!   has no 32-bit multiply (`pmulld` is SSE4.1), so the portable loop over `u32` lanes
//!   is compiled to emulated multiplies, about 1,000 instructions for 256 bins; LLVM
//!   does not find `pmaddwd` on its own. Here each eight counts take one load and three
//!   `pmaddwd` (i16 × i16, adjacent pairs summed into i32): about 300.
//! * The map of the bins that hold at least two bytes (the only ones with a non-zero
//!   entropy term): a saturating subtract, a compare and a `pmovmskb` per 16 bins,
//!   about 100 instructions, where LLVM's version of the scalar loop takes over 1,000.
#![allow(unsafe_code)] // reason: unaligned vector loads (STYLE.md §3)

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_cmpeq_epi16, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_madd_epi16,
    _mm_movemask_epi8, _mm_packs_epi16, _mm_set1_epi16, _mm_setzero_si128, _mm_shuffle_epi32,
    _mm_subs_epu16,
};

/// Loads eight `i16`/`u16` lanes.
#[target_feature(enable = "sse2")]
#[inline]
fn load8<T>(lanes: &[T; 8]) -> __m128i {
    const { assert!(size_of::<T>() == 2) };
    // SAFETY: `lanes` is a reference to 8 two-byte values, 16 readable bytes; the load
    // has no alignment requirement.
    unsafe { _mm_loadu_si128(lanes.as_ptr().cast::<__m128i>()) }
}

/// The sum of the four i32 lanes, as the bits of a wrapping u32 sum.
#[target_feature(enable = "sse2")]
#[inline]
pub(crate) fn lane_sum(v: __m128i) -> u32 {
    let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
    let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v));
    _mm_cvtsi128_si32(v) as u32
}

/// `(Σ c·p, Σ c·w, Σ c²)` over the bins, for counts that are all at most `i16::MAX`
/// and sum to at most `u16::MAX`, and weights `p`, `w` in `0..=8`.
///
/// Exact: a product is below 2^30 and a pair of them below 2^31, so no `pmaddwd` lane
/// overflows; the totals are below 2^32 (Σ c² <= (Σ c)²), and `paddd` wraps like u32
/// addition.
#[inline]
pub(crate) fn sums_i16(counts: &[u16; 256], p: &[i16; 256], w: &[i16; 256]) -> (u32, u32, u32) {
    // Every x86_64 target enables SSE2 (it is part of the architecture's baseline); the
    // assertion stops the build of one that would not.
    const { assert!(cfg!(target_feature = "sse2")) };
    // SAFETY: SSE2 is enabled for this whole build (asserted above), so every CPU that
    // runs it has the feature `sums_sse2` is compiled for.
    unsafe { sums_sse2(counts, p, w) }
}

#[target_feature(enable = "sse2")]
fn sums_sse2(counts: &[u16; 256], p: &[i16; 256], w: &[i16; 256]) -> (u32, u32, u32) {
    let (mut sp, mut sw, mut ss) = (
        _mm_setzero_si128(),
        _mm_setzero_si128(),
        _mm_setzero_si128(),
    );
    let (cs, _) = counts.as_chunks::<8>();
    let (ps, _) = p.as_chunks::<8>();
    let (ws, _) = w.as_chunks::<8>();
    for ((c, p), w) in cs.iter().zip(ps).zip(ws) {
        let c = load8(c);
        sp = _mm_add_epi32(sp, _mm_madd_epi16(c, load8(p)));
        sw = _mm_add_epi32(sw, _mm_madd_epi16(c, load8(w)));
        ss = _mm_add_epi32(ss, _mm_madd_epi16(c, c));
    }
    (lane_sum(sp), lane_sum(sw), lane_sum(ss))
}

/// Bit `b` (of word `b / 64`) set when `counts[b] >= 2`.
#[inline]
pub(crate) fn repeated_map(counts: &[u16; 256]) -> [u64; 4] {
    const { assert!(cfg!(target_feature = "sse2")) };
    // SAFETY: SSE2 is enabled for this whole build (asserted above), so every CPU that
    // runs it has the feature `repeated_map_sse2` is compiled for.
    unsafe { repeated_map_sse2(counts) }
}

#[target_feature(enable = "sse2")]
fn repeated_map_sse2(counts: &[u16; 256]) -> [u64; 4] {
    let one = _mm_set1_epi16(1);
    let zero = _mm_setzero_si128();
    let (words, _) = counts.as_chunks::<64>();
    let mut map = [0u64; 4];
    for (m, word) in map.iter_mut().zip(words) {
        let (eights, _) = word.as_chunks::<8>();
        let mut bits = 0u64;
        for (i, pair) in eights.chunks_exact(2).enumerate() {
            // Unsigned saturating c - 1 is 0 exactly when c <= 1; 0 / -1 lanes pack to
            // 0 / -1 bytes, one bit per bin.
            let low = _mm_cmpeq_epi16(_mm_subs_epu16(load8(&pair[0]), one), zero);
            let high = _mm_cmpeq_epi16(_mm_subs_epu16(load8(&pair[1]), one), zero);
            let at_most_one = _mm_movemask_epi8(_mm_packs_epi16(low, high)) as u32;
            bits |= u64::from(!at_most_one & 0xFFFF) << (16 * i);
        }
        *m = bits;
    }
    map
}
