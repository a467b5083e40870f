//! The fast scalar kernel: runs on every target and is the fallback.
//!
//! A scalar histogram is one read-modify-write of a counter per byte; on the Zen 3
//! machine this project measures on that is about one byte per cycle at best, and two
//! things make it slower: a counter that two nearby bytes both increment (the second
//! waits for the first's store to be forwarded), and narrow `u16` counters (their
//! read-modify-writes run at half the speed of `u32`/`u64` ones there). So the plan
//! depends on the length and on the caller's counter width ([`Plan::for_len`]):
//!
//! * short inputs count straight into the caller's table (zeroing and merging private
//!   tables would cost more than they save);
//! * into `u16` counters, from [`SCRATCH_MIN`] bytes on, count into one private `u32`
//!   table and add it to the caller's once;
//! * from [`MULTI_MIN`] bytes on, eight private `u32` tables take consecutive bytes in
//!   turn, so that a repeated byte (text) rarely waits on its own previous increment.
//!
//! Printable and set-bit counts are derived from the histogram later; only when the
//! caller tracks the printable run does the pass classify bytes, a 64-bit word at a
//! time with SIMD-within-a-register arithmetic.

use super::features::{RunState, printable_mask_short, printable_mask8};
use super::histogram::Counter;

/// From this length on, inputs into narrow (`u16`) counters are counted in a private
/// `u32` table (measured with a standalone loop at 64..4096 bytes: direct `u16`
/// increments take 40 ns for 64 bytes but 960 ns for 1460, the private table 540 ns).
pub(crate) const SCRATCH_MIN: usize = 256;

/// From this length on, eight private tables are used (measured at 1 MiB: skewed text
/// runs at 1.7 GB/s through one table and 3.0 through eight; below it, random
/// payloads, the common case, run faster through one table).
pub(crate) const MULTI_MIN: usize = 16 * 1024;

/// Number of private tables of the multi-table plan.
const LANES: usize = 8;

/// How one kernel call counts its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Straight into the caller's table.
    Direct,
    /// Into one private `u32` table, added to the caller's at the end.
    Scratch,
    /// Into [`LANES`] private `u32` tables, one per byte position mod 8.
    Multi,
}

impl Plan {
    /// The plan for `len` bytes into counters of type `C`.
    #[inline(always)]
    pub(crate) fn for_len<C: Counter>(len: usize) -> Plan {
        if len >= MULTI_MIN {
            Plan::Multi
        } else if C::NARROW && len >= SCRATCH_MIN {
            Plan::Scratch
        } else {
            Plan::Direct
        }
    }
}

/// Where a kernel's scatter loop puts its increments.
pub(crate) trait Tables {
    /// Whether [`scatter_block`] should load bytes one at a time rather than take them
    /// out of 32-bit words (faster when the increments spread over several tables:
    /// fewer ALU operations compete with the table updates).
    const BYTE_LOADS: bool = false;

    /// Counts byte `b`, seen at position `pos` (significant mod 8) of its 64-byte block.
    fn bump(&mut self, pos: usize, b: u8);
}

/// The caller's own table.
pub(crate) struct One<'a, C>(pub &'a mut [C; 256]);

impl<C: Counter> Tables for One<'_, C> {
    #[inline(always)]
    fn bump(&mut self, _pos: usize, b: u8) {
        self.0[usize::from(b)].add(1);
    }
}

/// One private `u32` table.
pub(crate) struct Scratch(pub [u32; 256]);

impl Scratch {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Scratch([0; 256])
    }

    /// Adds the table into `counts` (sound while the counted chunk fits the
    /// caller's counters: the dispatcher and the accumulator guarantee it).
    #[inline(always)]
    pub(crate) fn merge_into<C: Counter>(&self, counts: &mut [C; 256]) {
        for (c, &s) in counts.iter_mut().zip(&self.0) {
            c.add(s);
        }
    }
}

impl Tables for Scratch {
    #[inline(always)]
    fn bump(&mut self, _pos: usize, b: u8) {
        let c = &mut self.0[usize::from(b)];
        *c = c.wrapping_add(1);
    }
}

/// [`LANES`] private `u32` sub-histograms, one per byte position mod [`LANES`].
pub(crate) struct Multi(pub [[u32; 256]; LANES]);

impl Multi {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Multi([[0; 256]; LANES])
    }

    /// Adds the sub-histograms into `counts`. Sound while the counted chunk is at most
    /// `u32::MAX` bytes (the dispatcher's chunking guarantees it).
    #[inline(always)]
    pub(crate) fn merge_into<C: Counter>(&self, counts: &mut [C; 256]) {
        for (i, c) in counts.iter_mut().enumerate() {
            let s = self.0.iter().fold(0u32, |s, t| s.wrapping_add(t[i]));
            c.add(s);
        }
    }
}

impl Tables for Multi {
    const BYTE_LOADS: bool = true;

    #[inline(always)]
    fn bump(&mut self, pos: usize, b: u8) {
        let t = &mut self.0[pos % LANES];
        let c = &mut t[usize::from(b)];
        *c = c.wrapping_add(1);
    }
}

/// Scatters one 64-byte block: sixteen 32-bit loads with the bytes taken out by shifts
/// (measured 3-7 % faster into one table), or byte loads (see [`Tables::BYTE_LOADS`]).
/// Into [`Multi`], each byte's position mod 8 picks its table, so every 64-byte block
/// starts at table 0 and the tail's positions restart at 0 (any assignment counts
/// correctly; this one only spreads consecutive bytes).
#[inline(always)]
pub(crate) fn scatter_block<T: Tables>(block: &[u8; 64], tables: &mut T) {
    if T::BYTE_LOADS {
        // Eight explicit bumps per group, so that every position is a constant.
        let (octs, _) = block.as_chunks::<8>();
        for &[a, b, c, d, e, f, g, h] in octs {
            tables.bump(0, a);
            tables.bump(1, b);
            tables.bump(2, c);
            tables.bump(3, d);
            tables.bump(4, e);
            tables.bump(5, f);
            tables.bump(6, g);
            tables.bump(7, h);
        }
        return;
    }
    let (words, _) = block.as_chunks::<4>();
    for (i, w) in words.iter().enumerate() {
        let x = u32::from_le_bytes(*w);
        tables.bump(4 * i, x as u8);
        tables.bump(4 * i + 1, (x >> 8) as u8);
        tables.bump(4 * i + 2, (x >> 16) as u8);
        tables.bump(4 * i + 3, (x >> 24) as u8);
    }
}

/// Counts bytes shorter than a block one at a time, and when `RUN` feeds their
/// printable flags to `run` as one mask (classified like a block, from a zero-padded
/// copy: cheaper than a branch per byte, and most payloads end in a tail).
#[inline(always)]
pub(crate) fn tail<T: Tables, const RUN: bool>(bytes: &[u8], tables: &mut T, run: &mut RunState) {
    for (pos, &b) in bytes.iter().enumerate() {
        tables.bump(pos, b);
    }
    if RUN && !bytes.is_empty() {
        // A tail is shorter than 64 bytes: the length fits a u32.
        run.push_partial(printable_mask_short(bytes), bytes.len() as u32);
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
