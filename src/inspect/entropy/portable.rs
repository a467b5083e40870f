//! The fast scalar kernel: runs on every target and is the fallback.
//!
//! Histogramming is bound by the store-to-load chain of a counter that two nearby
//! bytes both increment. Small payloads count straight into the caller's table (the
//! fixed cost of extra tables would dominate); larger ones spread consecutive bytes
//! over four private `u32` sub-histograms, merged once at the end. Printable and
//! set-bit counts are derived from the histogram later; only when the caller tracks
//! the printable run does the pass classify bytes, a 64-bit word at a time with
//! SIMD-within-a-register arithmetic.

use super::features::{RunState, is_printable, printable_mask8};
use super::histogram::Counter;

/// Payloads at least this long use four sub-histograms (measured with
/// `benches/entropy.rs`: below it, zeroing and merging 4 KiB of tables costs more
/// than the broken dependency chains save).
pub(crate) const MULTI_TABLE_MIN: usize = 1024;

/// Where a kernel's scatter loop puts its increments.
pub(crate) trait Tables {
    /// Counts byte `b`, seen at position `lane` (mod 4) of its group of four.
    fn bump(&mut self, lane: usize, b: u8);
}

/// The caller's own table, for small payloads.
pub(crate) struct One<'a, C>(pub &'a mut [C; 256]);

impl<C: Counter> Tables for One<'_, C> {
    #[inline(always)]
    fn bump(&mut self, _lane: usize, b: u8) {
        self.0[usize::from(b)].add(1);
    }
}

/// Four private sub-histograms, one per byte position mod 4.
pub(crate) struct Four(pub [[u32; 256]; 4]);

impl Four {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Four([[0; 256]; 4])
    }

    /// Adds the four sub-histograms into `counts`. Sound while the counted chunk is
    /// at most `u32::MAX` bytes (the dispatcher's chunking guarantees it).
    #[inline(always)]
    pub(crate) fn merge_into<C: Counter>(&self, counts: &mut [C; 256]) {
        let [t0, t1, t2, t3] = &self.0;
        for (i, c) in counts.iter_mut().enumerate() {
            let s = t0[i]
                .wrapping_add(t1[i])
                .wrapping_add(t2[i])
                .wrapping_add(t3[i]);
            c.add(s);
        }
    }
}

impl Tables for Four {
    #[inline(always)]
    fn bump(&mut self, lane: usize, b: u8) {
        let t = &mut self.0[lane & 3];
        let c = &mut t[usize::from(b)];
        *c = c.wrapping_add(1);
    }
}

/// Scatters one 64-byte block, four bytes at a time with a constant lane each.
#[inline(always)]
pub(crate) fn scatter_block<T: Tables>(block: &[u8; 64], tables: &mut T) {
    let (quads, _) = block.as_chunks::<4>();
    for &[a, b, c, d] in quads {
        tables.bump(0, a);
        tables.bump(1, b);
        tables.bump(2, c);
        tables.bump(3, d);
    }
}

/// Counts bytes shorter than a block one at a time, feeding their printable flags to
/// `run` when `RUN`.
#[inline(always)]
pub(crate) fn tail<T: Tables, const RUN: bool>(bytes: &[u8], tables: &mut T, run: &mut RunState) {
    for &b in bytes {
        tables.bump(0, b);
        if RUN {
            run.push(is_printable(b));
        }
    }
}

#[inline(always)]
fn blocks<T: Tables, const RUN: bool>(bytes: &[u8], tables: &mut T, run: &mut RunState) {
    let (blocks, rest) = bytes.as_chunks::<64>();
    for block in blocks {
        if RUN {
            let mut mask = 0u64;
            let (words, _) = block.as_chunks::<8>();
            for (i, word) in words.iter().enumerate() {
                mask |= printable_mask8(u64::from_le_bytes(*word)) << (8 * i);
            }
            run.push_mask64(mask);
        }
        scatter_block(block, tables);
    }
    tail::<T, RUN>(rest, tables, run);
}

/// Adds `bytes` (at most `u32::MAX` of them) to `counts`, and feeds their printable
/// flags to `run` when `RUN`.
pub(crate) fn count<C: Counter, const RUN: bool>(
    bytes: &[u8],
    counts: &mut [C; 256],
    run: &mut RunState,
) {
    if bytes.len() < MULTI_TABLE_MIN {
        blocks::<_, RUN>(bytes, &mut One(counts), run);
    } else {
        let mut four = Four::new();
        blocks::<_, RUN>(bytes, &mut four, run);
        four.merge_into(counts);
    }
}
