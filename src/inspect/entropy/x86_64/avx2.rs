//! The AVX2 kernel.
//!
//! The histogram itself stays a scalar scatter (AVX2 has no scatter, and gathers of
//! counters would still serialise on equal bytes); it is the portable kernel's scatter
//! loop, inlined here. AVX2 takes over the features: the printable classification
//! becomes five compares and one `movemask` per 32 bytes (the portable kernel spends
//! about thirty scalar operations per 8 bytes on it), and the set-bit count becomes a
//! nibble table lookup (`vpshufb`) summed with `vpsadbw`.
#![allow(unsafe_code)] // reason: unaligned vector loads and the feature-gated call (STYLE.md §3)

use core::arch::x86_64::{
    __m256i, _mm256_add_epi8, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256,
    _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_extract_epi64, _mm256_loadu_si256,
    _mm256_movemask_epi8, _mm256_or_si256, _mm256_sad_epu8, _mm256_set1_epi8, _mm256_setr_epi8,
    _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi16,
};

use crate::inspect::entropy::features::ByteStats;
use crate::inspect::entropy::histogram::Counter;
use crate::inspect::entropy::portable::{Four, MULTI_TABLE_MIN, One, Tables, scatter_block, tail};

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

    /// Adds `bytes` (at most `u32::MAX` of them) to `counts` and `stats`.
    #[inline]
    pub(crate) fn count<C: Counter>(
        self,
        bytes: &[u8],
        counts: &mut [C; 256],
        stats: &mut ByteStats,
    ) {
        // SAFETY: `self` exists only if `Avx2::new` found AVX2 on this CPU.
        unsafe { count_avx2(bytes, counts, stats) }
    }
}

#[target_feature(enable = "avx2")]
fn count_avx2<C: Counter>(bytes: &[u8], counts: &mut [C; 256], stats: &mut ByteStats) {
    if bytes.len() < MULTI_TABLE_MIN {
        blocks(bytes, &mut One(counts), stats);
    } else {
        let mut four = Four::new();
        blocks(bytes, &mut four, stats);
        four.merge_into(counts);
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

/// Per-byte set-bit counts of 32 bytes (each 0..=8).
#[target_feature(enable = "avx2")]
fn popcount_bytes(v: __m256i) -> __m256i {
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3,
        3, 4,
    );
    let nibble = _mm256_set1_epi8(0x0F);
    let lo = _mm256_and_si256(v, nibble);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble);
    _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi))
}

#[target_feature(enable = "avx2")]
fn blocks<T: Tables>(bytes: &[u8], tables: &mut T, stats: &mut ByteStats) {
    let (blocks, rest) = bytes.as_chunks::<64>();
    let zero = _mm256_setzero_si256();
    let mut pop = _mm256_setzero_si256();
    let mut printable = 0u64;
    for block in blocks {
        let mut mask = 0u64;
        let (halves, _) = block.as_chunks::<32>();
        for (i, half) in halves.iter().enumerate() {
            let v = load(half);
            mask |= printable_mask32(v) << (32 * i);
            // vpsadbw sums each 8 byte counts (<= 64) into one 64-bit lane.
            pop = _mm256_add_epi64(pop, _mm256_sad_epu8(popcount_bytes(v), zero));
        }
        printable += u64::from(mask.count_ones());
        stats.run.push_mask64(mask);
        scatter_block(block, tables);
    }
    let lanes = [
        _mm256_extract_epi64::<0>(pop),
        _mm256_extract_epi64::<1>(pop),
        _mm256_extract_epi64::<2>(pop),
        _mm256_extract_epi64::<3>(pop),
    ];
    // Each lane is a sum of non-negative byte counts far below i64::MAX.
    let popcount = lanes.iter().fold(0u64, |s, &l| s.saturating_add(l as u64));
    stats.printable = stats.printable.saturating_add(printable);
    stats.popcount = stats.popcount.saturating_add(popcount);
    tail(rest, tables, stats);
}
