//! Byte histograms and randomness measures (scalar reference; replaced by the SIMD core).

use serde::{Deserialize, Serialize};

/// Which histogram kernel to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelChoice {
    /// The fastest the CPU supports.
    #[default]
    Auto,
    /// The plain reference loop.
    Reference,
}

/// Name of the kernel in use.
pub fn kernel_name() -> &'static str {
    "reference"
}

/// Randomness measures of a sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Randomness {
    /// Shannon entropy, bits per byte.
    pub bits_per_byte: f64,
    /// Sample length in bytes.
    pub sample_len: usize,
}

impl Randomness {
    /// Measure a slice.
    pub fn of(bytes: &[u8]) -> Randomness {
        let mut a = EntropyAccumulator::new(bytes.len());
        a.update(bytes);
        a.randomness()
    }
}

/// Grows a byte histogram packet by packet up to a window.
#[derive(Clone, Debug)]
pub struct EntropyAccumulator {
    counts: Box<[u32; 256]>,
    len: usize,
    window: usize,
}

impl EntropyAccumulator {
    /// An empty accumulator that takes at most `window` bytes.
    pub fn new(window: usize) -> Self {
        EntropyAccumulator {
            counts: Box::new([0; 256]),
            len: 0,
            window,
        }
    }

    /// Add bytes (up to the window); returns how many were taken.
    pub fn update(&mut self, bytes: &[u8]) -> usize {
        let take = bytes.len().min(self.window - self.len);
        for &b in bytes.get(..take).unwrap_or_default() {
            self.counts[usize::from(b)] += 1;
        }
        self.len += take;
        take
    }

    /// Bytes taken.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the window is full.
    pub fn is_full(&self) -> bool {
        self.len >= self.window
    }

    /// The measures of what was taken so far.
    pub fn randomness(&self) -> Randomness {
        let n = self.len as f64;
        let mut h = 0.0;
        for &c in self.counts.iter() {
            if c > 0 {
                let p = f64::from(c) / n;
                h -= p * p.log2();
            }
        }
        Randomness {
            bits_per_byte: h,
            sample_len: self.len,
        }
    }
}
