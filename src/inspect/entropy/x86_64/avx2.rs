//! The AVX2 kernel.
//!
//! The histogram itself stays a scalar scatter (AVX2 has no scatter, and gathers of
//! counters would still serialise on equal bytes); it is the portable kernel's scatter
//! loop and table plan, inlined here. AVX2 takes over the printable classification that run tracking
//! needs: five compares and one `movemask` per 32 bytes (the portable kernel spends
//! about thirty scalar operations per 8 bytes on it). Printable and set-bit counts are
//! derived from the histogram, as in every kernel.
#![allow(unsafe_code)] // reason: unaligned vector loads and the feature-gated call (STYLE.md §3)

use core::arch::x86_64::{
    __m256i, _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
    _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
};

use crate::inspect::entropy::features::{RunState, padded_block};
use crate::inspect::entropy::histogram::Counter;
use crate::inspect::entropy::portable::{Multi, One, Plan, Scratch, Tables, scatter_block, tail};

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
