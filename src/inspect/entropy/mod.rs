//! Payload randomness: byte histograms, entropy and a length-aware verdict.
//!
//! This module owns the engine's core signal: how random the payload of a flow
//! direction is. It must not recognise protocols or content (magic numbers belong to
//! `inspect::protocol`), read the clock, or allocate per payload.
//!
//! # Two entry points
//!
//! * [`Randomness::of`] measures one slice in one pass.
//! * [`EntropyAccumulator`] lives in each flow direction (522 bytes: `u16` counters
//!   bounded by its window) and grows packet by packet with
//!   [`update`](EntropyAccumulator::update); it is evaluated only at verdict points with
//!   [`randomness`](EntropyAccumulator::randomness), never recomputed from scratch.
//!   Printable runs and the first bytes are tracked across packet boundaries.
//!
//! ```
//! use entrospect::inspect::entropy::{EntropyAccumulator, Randomness};
//!
//! let mut acc = EntropyAccumulator::new(4096);
//! acc.update(b"GET /index.html HTTP/1.1\r\nHost: example.org\r\n");
//! acc.update(b"Accept: */*\r\n\r\n");
//! let r = acc.randomness();
//! assert!(r.first_bytes_printable);
//! assert!(!r.looks_random(0.999));
//! assert_eq!(r, Randomness::of(b"GET /index.html HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n"));
//! ```
//!
//! # Length-aware verdict
//!
//! Raw Shannon entropy of a short sample is biased low: uniformly random bytes show
//! about 3.94 bits/byte at 16 bytes, 5.77 at 64, 7.18 at 256 and 7.87 at 1460. A
//! [`Randomness`] therefore carries the exact expectation for its length
//! (`expected_random`), a z-score, and a p-value (`p_value`) of the hypothesis
//! "uniformly random bytes"; [`Randomness::looks_random`] turns a confidence into a
//! decision that holds its false-negative rate at every length (method in `stats.rs`,
//! measured in `tests.rs`).
//!
//! # Kernels
//!
//! A kernel computes the histogram, and the longest printable run when asked, in one
//! pass: `reference` (the plain oracle), `portable` (scalar; straight into the
//! caller's counters for short inputs, a private `u32` table for longer ones into `u16`
//! counters, eight sub-histograms from 16 KiB on) and, on CPUs that have it, `avx2`
//! (x86_64) or `neon` (aarch64). The
//! printable and set-bit counts are derived from the histogram at verdict time (on
//! x86_64 with SSE2 multiply-adds, or AVX2's where the CPU has it whatever the kernel:
//! see `x86_64/sse2.rs`). The choice is made once
//! ([`Kernel::auto`], cached) or forced with [`KernelChoice`]; never per payload. Every
//! kernel's histogram and features equal the reference's exactly, and entropy comes
//! from the histogram through one shared function that sums fixed-point integers
//! (`histogram.rs`), so the choice never changes a result, down to the last bit.
//!
//! # Contracts
//!
//! Nothing here panics on any input. An accumulator never holds more than its window
//! (at most [`MAX_WINDOW`] bytes). The process-wide tables (`c·log2 c` in fixed point
//! for counts below 65 536, 512 KiB, and for pairs of counts below 16, 2 KiB; the
//! moments of up to [`EXACT_MAX`] lengths, 96 KiB) are built lazily once.

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod features;
mod histogram;
mod portable;
mod reference;
mod stats;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use features::RunState;
use histogram::Counter;

pub use features::{FIRST_BYTES, is_printable};
pub use histogram::{ByteHistogram, NLOG2N_TABLE_LEN};
pub use stats::EXACT_MAX;

/// Default accumulator window in bytes.
pub const DEFAULT_WINDOW: usize = 4096;

/// Largest accumulator window: its counters are `u16`.
pub const MAX_WINDOW: usize = u16::MAX as usize;

/// Default confidence for [`Randomness::looks_random`]: a random payload is called
/// non-random about once in a thousand samples.
pub const DEFAULT_CONFIDENCE: f64 = 0.999;

/// The most bytes handed to a kernel at once, so its `u32` sub-histograms cannot
/// overflow.
const KERNEL_CHUNK: usize = 1 << 31;

/// Which kernel to use ([`Kernel::select`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelChoice {
    /// The fastest kernel this CPU supports.
    #[default]
    Auto,
    /// The plain oracle (slow; for checking).
    Reference,
    /// The fast scalar kernel, available everywhere.
    Portable,
    /// The AVX2 kernel (x86_64 CPUs with AVX2).
    Avx2,
    /// The NEON kernel (aarch64 CPUs).
    Neon,
}

impl KernelChoice {
    /// The stable name, as in configuration files.
    pub const fn as_str(self) -> &'static str {
        match self {
            KernelChoice::Auto => "auto",
            KernelChoice::Reference => "reference",
            KernelChoice::Portable => "portable",
            KernelChoice::Avx2 => "avx2",
            KernelChoice::Neon => "neon",
        }
    }
}

/// Errors of the entropy module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntropyError {
    /// A forced kernel needs a CPU feature this machine lacks.
    #[error("entropy kernel {kernel} is not supported by this cpu")]
    KernelUnavailable {
        /// The kernel asked for.
        kernel: &'static str,
    },
}

/// A histogram kernel this CPU can run. Cheap to copy; choose it once and keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    imp: Imp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    Reference,
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86_64::avx2::Avx2),
    #[cfg(target_arch = "aarch64")]
    Neon(aarch64::neon::Neon),
}

impl Kernel {
    /// The plain oracle kernel.
    pub const fn reference() -> Kernel {
        Kernel {
            imp: Imp::Reference,
        }
    }

    /// The fast scalar kernel.
    pub const fn portable() -> Kernel {
        Kernel { imp: Imp::Portable }
    }

    /// The AVX2 kernel, or `None` when this CPU (or target) lacks AVX2.
    pub fn avx2() -> Option<Kernel> {
        #[cfg(target_arch = "x86_64")]
        {
            x86_64::avx2::Avx2::new().map(|k| Kernel { imp: Imp::Avx2(k) })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// The NEON kernel, or `None` when this CPU (or target) lacks NEON.
    pub fn neon() -> Option<Kernel> {
        #[cfg(target_arch = "aarch64")]
        {
            aarch64::neon::Neon::new().map(|k| Kernel { imp: Imp::Neon(k) })
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            None
        }
    }

    /// The fastest kernel this CPU supports, detected on first call and cached.
    pub fn auto() -> Kernel {
        static AUTO: OnceLock<Kernel> = OnceLock::new();
        *AUTO.get_or_init(|| {
            Kernel::avx2()
                .or_else(Kernel::neon)
                .unwrap_or(Kernel::portable())
        })
    }

    /// The kernel `choice` names.
    ///
    /// # Errors
    ///
    /// [`EntropyError::KernelUnavailable`] when the CPU lacks the kernel's feature.
    pub fn select(choice: KernelChoice) -> Result<Kernel, EntropyError> {
        match choice {
            KernelChoice::Auto => Ok(Kernel::auto()),
            KernelChoice::Reference => Ok(Kernel::reference()),
            KernelChoice::Portable => Ok(Kernel::portable()),
            KernelChoice::Avx2 => {
                Kernel::avx2().ok_or(EntropyError::KernelUnavailable { kernel: "avx2" })
            }
            KernelChoice::Neon => {
                Kernel::neon().ok_or(EntropyError::KernelUnavailable { kernel: "neon" })
            }
        }
    }

    /// Every kernel this CPU can run, reference first.
    pub fn available() -> Vec<Kernel> {
        let mut all = vec![Kernel::reference(), Kernel::portable()];
        all.extend(Kernel::avx2());
        all.extend(Kernel::neon());
        all
    }

    /// The kernel's stable name (`reference`, `portable`, `avx2`, `neon`), for stats.
    pub const fn name(self) -> &'static str {
        self.choice().as_str()
    }

    /// The choice that selects exactly this kernel.
    pub const fn choice(self) -> KernelChoice {
        match self.imp {
            Imp::Reference => KernelChoice::Reference,
            Imp::Portable => KernelChoice::Portable,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(_) => KernelChoice::Avx2,
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(_) => KernelChoice::Neon,
        }
    }

    /// The byte histogram of `bytes` (no per-byte feature work: printable and set-bit
    /// counts are derived from it).
    pub fn histogram(self, bytes: &[u8]) -> ByteHistogram {
        let mut h = ByteHistogram::default();
        self.count::<_, false>(bytes, &mut h.counts, &mut RunState::default());
        h.len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        h
    }

    /// Adds `bytes` to `counts`, and feeds their printable flags to `run` when `RUN`.
    /// `counts` must have room for them (always true for `u64`; the accumulator bounds
    /// its `u16` counters by its window).
    fn count<C: Counter, const RUN: bool>(
        self,
        bytes: &[u8],
        counts: &mut [C; 256],
        run: &mut RunState,
    ) {
        for chunk in bytes.chunks(KERNEL_CHUNK) {
            match self.imp {
                Imp::Reference => reference::count::<C, RUN>(chunk, counts, run),
                Imp::Portable => portable::count::<C, RUN>(chunk, counts, run),
                #[cfg(target_arch = "x86_64")]
                Imp::Avx2(k) => k.count::<C, RUN>(chunk, counts, run),
                #[cfg(target_arch = "aarch64")]
                Imp::Neon(k) => k.count::<C, RUN>(chunk, counts, run),
            }
        }
    }
}

/// Name of the kernel [`Kernel::auto`] uses on this CPU.
pub fn kernel_name() -> &'static str {
    Kernel::auto().name()
}

/// How random a sample is, judged against uniformly random bytes of the same length.
///
/// Serialized with the field names of the `entropy.toserver{...}` object of the EVE
/// output. Never holds NaN.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Randomness {
    /// Shannon entropy of the sample, in bits per byte (0..=8; 0 below 2 bytes).
    pub bits_per_byte: f64,
    /// Number of bytes measured.
    pub sample_len: u64,
    /// Expected `bits_per_byte` of uniformly random bytes of this length (exact; see
    /// the module docs).
    pub expected_random: f64,
    /// `bits_per_byte / expected_random`, at most 1: entropy normalised to what random
    /// data of this length shows (0 below 2 bytes). Near 1 for random and compressed
    /// data at every length. For a decision use [`Randomness::looks_random`].
    pub score: f64,
    /// `(bits_per_byte - expected_random) / sd`, with `sd` the standard deviation of
    /// random data's entropy at this length: how many standard deviations from random
    /// (strongly negative for structured data; 0 below 2 bytes).
    pub z_score: f64,
    /// Probability that uniformly random bytes of this length look at least this
    /// non-random, by the entropy test or the printable-count test (Bonferroni:
    /// twice the smaller of the two one-sided p-values, at most 1).
    pub p_value: f64,
    /// Share of printable bytes ([`is_printable`]); 98/256 ≈ 0.383 for random bytes.
    pub printable_ratio: f64,
    /// Mean number of set bits per byte; 4 for random bytes.
    pub popcount_mean: f64,
    /// Pearson's chi-square statistic against the uniform distribution (255 degrees of
    /// freedom; meaningful when the sample has several bytes per value, n ≳ 1280).
    pub chi_square: f64,
    /// Longest run of consecutive printable bytes.
    pub longest_printable_run: u64,
    /// The first [`FIRST_BYTES`] bytes (or all of a shorter, non-empty sample) are
    /// printable. Text protocols announce themselves this way.
    pub first_bytes_printable: bool,
}

impl Randomness {
    /// Measures `bytes` with the kernel of [`Kernel::auto`].
    pub fn of(bytes: &[u8]) -> Randomness {
        Randomness::of_with(Kernel::auto(), bytes)
    }

    /// Measures `bytes` with `kernel`.
    ///
    /// The result is the same, bit for bit, whatever the kernel. Up to [`MAX_WINDOW`]
    /// bytes the fast kernels count into `u16` counters, as an accumulator does (the
    /// reference kernel stays the plain oracle: `u64` counters).
    pub fn of_with(kernel: Kernel, bytes: &[u8]) -> Randomness {
        let first = !bytes.is_empty() && bytes.iter().take(FIRST_BYTES).all(|&b| is_printable(b));
        if kernel.imp != Imp::Reference && bytes.len() <= MAX_WINDOW {
            // What an accumulator holds: u16 counters, a quarter of the table to clear,
            // and SSE2's (or AVX2's) multiply-add for the sums on x86_64.
            Randomness::counted::<u16>(kernel, bytes, first)
        } else {
            Randomness::counted::<u64>(kernel, bytes, first)
        }
    }

    /// Counts `bytes` into `C` counters (which must hold them) and measures them.
    fn counted<C: Counter>(kernel: Kernel, bytes: &[u8], first: bool) -> Randomness {
        let mut counts = [C::default(); 256];
        let mut run = RunState::default();
        kernel.count::<_, true>(bytes, &mut counts, &mut run);
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        Randomness::from_parts(&counts, len, run.longest, first)
    }

    /// `longest_run` and `first` come from the pass over the bytes; everything else is
    /// derived from the histogram.
    fn from_parts<C: Counter>(
        counts: &[C; 256],
        len: u64,
        longest_run: u64,
        first: bool,
    ) -> Randomness {
        let sums = C::sums(counts);
        let (printable, popcount) = (sums.printable, sums.popcount);
        let bits = histogram::entropy_bits(counts, len);
        let null = stats::null(len);
        let m = null.moments;
        let sd = m.var.sqrt();
        let n = len as f64;
        let ratio = |x: u64| if len == 0 { 0.0 } else { x as f64 / n };
        let score = if len >= 2 && m.mean > 0.0 {
            (bits / m.mean).min(1.0)
        } else {
            0.0
        };
        let z_score = if sd > 0.0 { (bits - m.mean) / sd } else { 0.0 };
        let p_entropy = stats::entropy_p_value(bits, &null);
        let p_printable = stats::printable_p_value(printable, len);
        let chi_square = if len == 0 {
            0.0
        } else {
            (256.0 * sums.squares as f64 / n - n).max(0.0)
        };
        Randomness {
            bits_per_byte: bits,
            sample_len: len,
            expected_random: m.mean,
            score,
            z_score,
            p_value: (2.0 * p_entropy.min(p_printable)).min(1.0),
            printable_ratio: ratio(printable),
            popcount_mean: ratio(popcount),
            chi_square,
            longest_printable_run: longest_run,
            first_bytes_printable: first,
        }
    }

    /// Whether the sample is consistent with uniformly random bytes at `confidence`
    /// (e.g. [`DEFAULT_CONFIDENCE`]): `false` only when random data of this length would
    /// look this structured with probability below `1 - confidence`.
    ///
    /// Compressed data passes too (it is close to random); encrypted and compressed
    /// payloads are told apart by protocol context, not by this test. A sample of
    /// fewer than 2 bytes always passes (no evidence).
    pub fn looks_random(&self, confidence: f64) -> bool {
        // NaN confidence compares false: no rejection without a valid confidence.
        self.p_value.partial_cmp(&(1.0 - confidence)) != Some(std::cmp::Ordering::Less)
    }
}

/// Randomness of one flow direction, grown packet by packet up to a window.
///
/// Small (522 bytes: 256 `u16` counters and a few fields) so that it can live in every
/// flow direction; [`reset`](EntropyAccumulator::reset) is a 512-byte clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntropyAccumulator {
    counts: [u16; 256],
    len: u16,
    window: u16,
    run_current: u16,
    run_longest: u16,
    /// How many of the first [`FIRST_BYTES`] bytes were checked, and whether all
    /// of them were printable.
    prefix_seen: u8,
    prefix_printable: bool,
}

impl Default for EntropyAccumulator {
    fn default() -> Self {
        EntropyAccumulator::new(DEFAULT_WINDOW)
    }
}

impl EntropyAccumulator {
    /// An empty accumulator that measures at most `window` bytes (clamped to
    /// [`MAX_WINDOW`]).
    pub fn new(window: usize) -> EntropyAccumulator {
        EntropyAccumulator {
            counts: [0; 256],
            len: 0,
            window: u16::try_from(window).unwrap_or(u16::MAX),
            run_current: 0,
            run_longest: 0,
            prefix_seen: 0,
            prefix_printable: true,
        }
    }

    /// Adds the next payload bytes with the kernel of [`Kernel::auto`]; returns how many
    /// were taken (bytes past the window are ignored).
    pub fn update(&mut self, bytes: &[u8]) -> usize {
        self.update_with(Kernel::auto(), bytes)
    }

    /// Adds the next payload bytes with `kernel`; returns how many were taken.
    pub fn update_with(&mut self, kernel: Kernel, bytes: &[u8]) -> usize {
        let room = usize::from(self.window.saturating_sub(self.len));
        let take = room.min(bytes.len());
        let Some(chunk) = bytes.get(..take) else {
            return 0;
        };
        if chunk.is_empty() {
            return 0;
        }
        let want = FIRST_BYTES.saturating_sub(usize::from(self.prefix_seen));
        for &b in chunk.iter().take(want) {
            self.prefix_printable &= is_printable(b);
            self.prefix_seen = self.prefix_seen.saturating_add(1);
        }
        let mut run = RunState {
            current: self.run_current.into(),
            longest: self.run_longest.into(),
        };
        kernel.count::<_, true>(chunk, &mut self.counts, &mut run);
        // Every quantity below is bounded by the window.
        let narrow = |x: u64| u16::try_from(x).unwrap_or(u16::MAX);
        self.len = narrow(u64::from(self.len).saturating_add(take as u64));
        self.run_current = narrow(run.current);
        self.run_longest = narrow(run.longest);
        take
    }

    /// Shannon entropy of the bytes measured so far, in bits per byte (0 below 2
    /// bytes): [`Randomness::bits_per_byte`] without the other features, for a caller
    /// that needs only this number.
    pub fn bits_per_byte(&self) -> f64 {
        histogram::entropy_bits(&self.counts, self.len.into())
    }

    /// Whether the window is full: further updates take nothing.
    pub fn is_full(&self) -> bool {
        self.len >= self.window
    }

    /// Number of bytes measured.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether nothing was measured yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The window this accumulator was made with (after clamping).
    pub fn window(&self) -> usize {
        usize::from(self.window)
    }

    /// The randomness of the bytes measured so far. Equal to [`Randomness::of`] on
    /// their concatenation.
    pub fn randomness(&self) -> Randomness {
        let first = self.len > 0 && self.prefix_printable;
        Randomness::from_parts(
            &self.counts,
            self.len.into(),
            self.run_longest.into(),
            first,
        )
    }

    /// Forgets everything measured; keeps the window.
    pub fn reset(&mut self) {
        *self = EntropyAccumulator::new(self.window.into());
    }
}
