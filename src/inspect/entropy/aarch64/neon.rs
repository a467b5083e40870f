//! The NEON kernel.
//!
//! As in the AVX2 kernel, the histogram stays the portable kernel's scalar scatter and
//! table plan (NEON has no scatter either); NEON takes over the printable
//! classification that run tracking needs. Per 64-byte block: one de-interleaving load
//! (`ld4`), four operations per 16 bytes to classify (a range compare for the graphic
//! bytes, one table lookup for `\t`, `\n`, `\r`), and the shift-insert/narrowing-shift
//! sequence that packs the 64 flags into one `u64` (NEON has no `movemask`). The
//! portable kernel spends about thirty scalar operations per 8 bytes on it. Printable and
//! set-bit counts are derived from the histogram, as in every kernel.
#![allow(unsafe_code)] // reason: vector loads and the feature-gated call (STYLE.md §3)

use core::arch::aarch64::{
    uint8x16_t, vcltq_u8, vdupq_n_u8, vget_lane_u64, vld1q_u8, vld4q_u8, vorrq_u8, vqtbl1q_u8,
    vreinterpret_u64_u8, vreinterpretq_u16_u8, vshrn_n_u16, vsriq_n_u8, vsubq_u8,
};

use crate::inspect::entropy::features::{RunState, padded_block};
use crate::inspect::entropy::histogram::Counter;
use crate::inspect::entropy::portable::{Multi, One, Plan, Scratch, Tables, scatter_block, tail};

/// Proof that this CPU has NEON: only [`Neon::new`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Neon {
    _private: (),
}

impl Neon {
    /// `Some` when the CPU running us supports NEON (every aarch64 Linux CPU does; the
    /// check keeps the kernel's contract the same as on other architectures).
    pub(crate) fn new() -> Option<Neon> {
        if std::arch::is_aarch64_feature_detected!("neon") {
            Some(Neon { _private: () })
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
        // SAFETY: `self` exists only if `Neon::new` found NEON on this CPU.
        unsafe { count_neon::<C, RUN>(bytes, counts, run) }
    }

    /// Printable flags of one 64-byte block (byte `i` → bit `i`).
    #[cfg(test)]
    fn mask64(self, block: &[u8; 64]) -> u64 {
        // SAFETY: `self` exists only if `Neon::new` found NEON on this CPU.
        let whitespace = unsafe { whitespace_table() };
        // SAFETY: `self` exists only if `Neon::new` found NEON on this CPU.
        unsafe { printable_mask64(block, whitespace) }
    }
}

#[target_feature(enable = "neon")]
fn count_neon<C: Counter, const RUN: bool>(
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

/// `0xFF` at indices 9, 10 and 13 (`\t`, `\n`, `\r`), 0 elsewhere: the table lookup
/// that classifies the printable control bytes (`tbl` gives 0 for indices 16..=255).
const WHITESPACE: [u8; 16] = {
    let mut t = [0u8; 16];
    t[b'\t' as usize] = 0xFF;
    t[b'\n' as usize] = 0xFF;
    t[b'\r' as usize] = 0xFF;
    t
};

#[target_feature(enable = "neon")]
fn whitespace_table() -> uint8x16_t {
    // SAFETY: `WHITESPACE` is a 16-byte array, exactly what `ld1` of 16 lanes reads.
    unsafe { vld1q_u8(WHITESPACE.as_ptr()) }
}

/// `0xFF` in each lane whose byte is printable ([`is_printable`]), 0 elsewhere.
///
/// [`is_printable`]: crate::inspect::entropy::is_printable
#[target_feature(enable = "neon")]
fn printable16(v: uint8x16_t, whitespace: uint8x16_t) -> uint8x16_t {
    // 0x20..=0x7E are the bytes b with (b - 0x20) mod 256 < 0x5F.
    let graphic = vcltq_u8(vsubq_u8(v, vdupq_n_u8(0x20)), vdupq_n_u8(0x5F));
    vorrq_u8(graphic, vqtbl1q_u8(whitespace, v))
}

/// Printable flags of 64 bytes, as 64 bits (byte 0 → bit 0).
#[target_feature(enable = "neon")]
fn printable_mask64(block: &[u8; 64], whitespace: uint8x16_t) -> u64 {
    // SAFETY: `block` is a reference to 64 readable bytes, exactly what `ld4` of four
    // 16-lane registers reads (no alignment needed).
    let v = unsafe { vld4q_u8(block.as_ptr()) };
    // De-interleaved: lane j of register k holds byte 4j + k.
    let c0 = printable16(v.0, whitespace);
    let c1 = printable16(v.1, whitespace);
    let c2 = printable16(v.2, whitespace);
    let c3 = printable16(v.3, whitespace);
    // Shift-insert (`sri` keeps the top N bits of its first operand and fills the rest
    // with the second shifted right by N): afterwards bit 4 + k of lane j holds byte
    // 4j + k, and bits 3..0 repeat bits 7..4.
    let t01 = vsriq_n_u8::<1>(c1, c0);
    let t23 = vsriq_n_u8::<1>(c3, c2);
    let t = vsriq_n_u8::<2>(t23, t01);
    let t = vsriq_n_u8::<4>(t, t);
    // Narrow each 16-bit pair of lanes by 4: its low byte takes the high nibble of lane
    // 2i (bytes 8i..8i+4) and the low nibble of lane 2i + 1 (bytes 8i+4..8i+8).
    let packed = vshrn_n_u16::<4>(vreinterpretq_u16_u8(t));
    vget_lane_u64::<0>(vreinterpret_u64_u8(packed))
}

#[target_feature(enable = "neon")]
fn blocks<T: Tables, const RUN: bool>(bytes: &[u8], tables: &mut T, run: &mut RunState) {
    let whitespace = whitespace_table();
    let (blocks, rest) = bytes.as_chunks::<64>();
    for block in blocks {
        if RUN {
            run.push_mask64(printable_mask64(block, whitespace));
        }
        scatter_block(block, tables);
    }
    if RUN && !rest.is_empty() {
        // The tail classified as a zero-padded block (shorter than 64 bytes: its
        // length fits a u32).
        run.push_partial(
            printable_mask64(&padded_block(rest), whitespace),
            rest.len() as u32,
        );
    }
    tail::<T, false>(rest, tables, run);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::entropy::is_printable;

    #[test]
    fn neon_is_detected_on_aarch64_linux() {
        // NEON is part of the aarch64 Linux baseline: a `None` here would mean the
        // detection, not the CPU, is broken.
        assert!(Neon::new().is_some());
    }

    #[test]
    fn mask_matches_per_byte_test_for_every_value_in_every_lane() {
        let Some(k) = Neon::new() else {
            eprintln!("skipping: this cpu lacks neon");
            return;
        };
        for lane in 0..64 {
            for v in 0u8..=255 {
                // surround with bytes of both classes to catch lane mix-ups
                for filler in [0x00u8, 0x41, 0xFF, 0x7F, 0x09, 0x20] {
                    let mut block = [filler; 64];
                    block[lane] = v;
                    let mask = k.mask64(&block);
                    for (i, &b) in block.iter().enumerate() {
                        assert_eq!(
                            (mask >> i) & 1 == 1,
                            is_printable(b),
                            "lane {i} byte {b:#x} (value {v:#x} in lane {lane})"
                        );
                    }
                }
            }
        }
    }
}
