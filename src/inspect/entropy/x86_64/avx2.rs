//! The AVX2 kernel.
//!
//! The histogram itself stays a scalar scatter (AVX2 has no scatter, and gathers of
//! counters would still serialise on equal bytes); it is the portable kernel's scatter
//! loop and table plan, inlined here. AVX2 takes over the printable classification that run tracking
//! needs: five compares and one `movemask` per 32 bytes (the portable kernel spends
//! about thirty scalar operations per 8 bytes on it). Printable and set-bit counts are
//! derived from the histogram, as in every kernel.
//!
//! The per-verdict passes over a `u16` histogram (see `sse2.rs`) also run here at twice
//! the width when the CPU has AVX2, whichever kernel counted the bytes, and so does the
//! map of repeated bins of a short `u64` histogram (SSE2 has no 64-bit compare).
#![allow(unsafe_code)] // reason: unaligned vector loads and the feature-gated call (STYLE.md §3)

use core::arch::x86_64::{
    __m256i, _mm_add_epi32, _mm256_add_epi32, _mm256_andnot_si256, _mm256_castsi256_pd,
    _mm256_castsi256_si128, _mm256_cmpeq_epi8, _mm256_cmpeq_epi16, _mm256_cmpgt_epi8,
    _mm256_cmpgt_epi64, _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_madd_epi16,
    _mm256_movemask_epi8, _mm256_movemask_pd, _mm256_or_si256, _mm256_packs_epi16,
    _mm256_permute4x64_epi64, _mm256_set1_epi8, _mm256_set1_epi16, _mm256_set1_epi64x,
    _mm256_setzero_si256, _mm256_subs_epu16,
};

use crate::inspect::entropy::features::{RunState, padded_block};
use crate::inspect::entropy::histogram::Counter;
use crate::inspect::entropy::portable::{Multi, One, Plan, Scratch, Tables, scatter_block, tail};
use crate::inspect::entropy::x86_64::sse2::lane_sum;

/// Proof that this CPU has AVX2: only [`Avx2::new`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// `Some` when the CPU running us supports AVX2.
    pub(crate) fn new() -> Option<Avx2> {
        if std::is_x86_feature_detected!("avx2") {
            Some(Avx2 { _private: () })
        } else {
            None
        }
    }

    /// Adds `bytes` (at most `u32::MAX` of them) to `counts`, and feeds their printable
    /// flags to `run` when `RUN`.
    #[inline]
    pub(crate) fn count<C: Counter, const RUN: bool>(
        self,
        bytes: &[u8],
        counts: &mut [C; 256],
        run: &mut RunState,
    ) {
        // SAFETY: `self` exists only if `Avx2::new` found AVX2 on this CPU.
        unsafe { count_avx2::<C, RUN>(bytes, counts, run) }
    }

    /// `(Σ c·p, Σ c·w, Σ c²)`, under the conditions of `sse2::sums_i16` (every count at
    /// most `i16::MAX`, their total at most `u16::MAX`, weights in `0..=8`) and with the
    /// same integers: `vpmaddwd` is `pmaddwd` on 16 lanes, so the exactness argument of
    /// `sse2.rs` holds lane by lane.
    #[inline]
    pub(crate) fn sums_i16(
        self,
        counts: &[u16; 256],
        p: &[i16; 256],
        w: &[i16; 256],
    ) -> (u32, u32, u32) {
        // SAFETY: `self` exists only if `Avx2::new` found AVX2 on this CPU.
        unsafe { sums_avx2(counts, p, w) }
    }

    /// Bit `b` (of word `b / 64`) set when `counts[b] >= 2`, as `sse2::repeated_map`.
    #[inline]
    pub(crate) fn repeated_map(self, counts: &[u16; 256]) -> [u64; 4] {
        // SAFETY: `self` exists only if `Avx2::new` found AVX2 on this CPU.
        unsafe { repeated_map_avx2(counts) }
    }

    /// Bit `b` (of word `b / 64`) set when `counts[b] >= 2`, for `u64` counters.
    #[inline]
    pub(crate) fn repeated_map_u64(self, counts: &[u64; 256]) -> [u64; 4] {
        // SAFETY: `self` exists only if `Avx2::new` found AVX2 on this CPU.
        unsafe { repeated_map_u64_avx2(counts) }
    }
}

/// Loads sixteen `i16`/`u16` lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn load16<T>(lanes: &[T; 16]) -> __m256i {
    const { assert!(size_of::<T>() == 2) };
    // SAFETY: `lanes` is a reference to 16 two-byte values, 32 readable bytes; the load
    // is unaligned.
    unsafe { _mm256_loadu_si256(lanes.as_ptr().cast::<__m256i>()) }
}

/// Loads four `u64` lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn load4(lanes: &[u64; 4]) -> __m256i {
    // SAFETY: `lanes` is a reference to 4 eight-byte values, 32 readable bytes; the load
    // is unaligned.
    unsafe { _mm256_loadu_si256(lanes.as_ptr().cast::<__m256i>()) }
}

/// The sum of the eight i32 lanes, as the bits of a wrapping u32 sum.
#[target_feature(enable = "avx2")]
#[inline]
fn lane_sum8(v: __m256i) -> u32 {
    lane_sum(_mm_add_epi32(
        _mm256_castsi256_si128(v),
        _mm256_extracti128_si256::<1>(v),
    ))
}

#[target_feature(enable = "avx2")]
fn sums_avx2(counts: &[u16; 256], p: &[i16; 256], w: &[i16; 256]) -> (u32, u32, u32) {
    let (mut sp, mut sw, mut ss) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    let (cs, _) = counts.as_chunks::<16>();
    let (ps, _) = p.as_chunks::<16>();
    let (ws, _) = w.as_chunks::<16>();
    for ((c, p), w) in cs.iter().zip(ps).zip(ws) {
        let c = load16(c);
        sp = _mm256_add_epi32(sp, _mm256_madd_epi16(c, load16(p)));
        sw = _mm256_add_epi32(sw, _mm256_madd_epi16(c, load16(w)));
        ss = _mm256_add_epi32(ss, _mm256_madd_epi16(c, c));
    }
    (lane_sum8(sp), lane_sum8(sw), lane_sum8(ss))
}

#[target_feature(enable = "avx2")]
fn repeated_map_avx2(counts: &[u16; 256]) -> [u64; 4] {
    let one = _mm256_set1_epi16(1);
    let zero = _mm256_setzero_si256();
    let (words, _) = counts.as_chunks::<64>();
    let mut map = [0u64; 4];
    for (m, word) in map.iter_mut().zip(words) {
        let (sixteens, _) = word.as_chunks::<16>();
        let mut bits = 0u64;
        for (i, pair) in sixteens.chunks_exact(2).enumerate() {
            // As in sse2.rs: saturating c - 1 is 0 exactly when c <= 1.
            let low = _mm256_cmpeq_epi16(_mm256_subs_epu16(load16(&pair[0]), one), zero);
            let high = _mm256_cmpeq_epi16(_mm256_subs_epu16(load16(&pair[1]), one), zero);
            // The pack works within 128-bit halves (low.0-7, high.0-7, low.8-15,
            // high.8-15); the permute puts the four quarters back in bin order.
            let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi16(low, high));
            let at_most_one = _mm256_movemask_epi8(packed) as u32;
            bits |= u64::from(!at_most_one) << (32 * i);
        }
        *m = bits;
    }
    map
}

#[target_feature(enable = "avx2")]
fn repeated_map_u64_avx2(counts: &[u64; 256]) -> [u64; 4] {
    let one = _mm256_set1_epi64x(1);
    let (words, _) = counts.as_chunks::<64>();
    let mut map = [0u64; 4];
    for (m, word) in map.iter_mut().zip(words) {
        let (fours, _) = word.as_chunks::<4>();
        let mut bits = 0u64;
        for (i, four) in fours.iter().enumerate() {
            // A signed compare: a count of 2^63 or more would read as negative, but no
            // slice in memory holds that many bytes. One sign bit per lane.
            let repeated = _mm256_cmpgt_epi64(load4(four), one);
            let lanes = _mm256_movemask_pd(_mm256_castsi256_pd(repeated)) as u32;
            bits |= u64::from(lanes & 0xF) << (4 * i);
        }
        *m = bits;
    }
    map
}

#[target_feature(enable = "avx2")]
fn count_avx2<C: Counter, const RUN: bool>(
    bytes: &[u8],
    counts: &mut [C; 256],
    run: &mut RunState,
) {
    // The portable kernel's plan (see `portable.rs`); only the classification differs.
    match Plan::for_len::<C>(bytes.len()) {
        Plan::Direct => blocks::<_, RUN>(bytes, &mut One(counts), run),
        Plan::Scratch => {
            let mut t = Scratch::new();
            blocks::<_, RUN>(bytes, &mut t, run);
            t.merge_into(counts);
        }
        Plan::Multi => {
            let mut t = Multi::new();
            blocks::<_, RUN>(bytes, &mut t, run);
            t.merge_into(counts);
        }
    }
}

#[target_feature(enable = "avx2")]
fn load(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: `bytes` is a reference to 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast::<__m256i>()) }
}

/// Printable flags of 32 bytes, as 32 bits (byte 0 → bit 0).
#[target_feature(enable = "avx2")]
fn printable_mask32(v: __m256i) -> u64 {
    // Signed compare: 0x20..=0x7F are the bytes greater than 0x1F (0x80.. are negative).
    let ge20 = _mm256_cmpgt_epi8(v, _mm256_set1_epi8(0x1F));
    let del = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x7F));
    let graphic = _mm256_andnot_si256(del, ge20);
    let tab = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x09));
    let lf = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x0A));
    let cr = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x0D));
    let p = _mm256_or_si256(_mm256_or_si256(graphic, tab), _mm256_or_si256(lf, cr));
    // movemask's i32 holds 32 flag bits; reinterpret, do not sign-extend.
    u64::from(_mm256_movemask_epi8(p) as u32)
}

#[target_feature(enable = "avx2")]
fn blocks<T: Tables, const RUN: bool>(bytes: &[u8], tables: &mut T, run: &mut RunState) {
    let (blocks, rest) = bytes.as_chunks::<64>();
    for block in blocks {
        if RUN {
            let mut mask = 0u64;
            let (halves, _) = block.as_chunks::<32>();
            for (i, half) in halves.iter().enumerate() {
                mask |= printable_mask32(load(half)) << (32 * i);
            }
            run.push_mask64(mask);
        }
        scatter_block(block, tables);
    }
    if RUN && !rest.is_empty() {
        // The tail classified as a zero-padded block (shorter than 64 bytes: its
        // length fits a u32).
        let block = padded_block(rest);
        let (halves, _) = block.as_chunks::<32>();
        let mut mask = 0u64;
        for (i, half) in halves.iter().enumerate() {
            mask |= printable_mask32(load(half)) << (32 * i);
        }
        run.push_partial(mask, rest.len() as u32);
    }
    tail::<T, false>(rest, tables, run);
}
