//! Vector kernels for x86_64. Each is chosen at run time, only when the CPU has its
//! feature; none is compiled for other targets.

pub(crate) mod avx2;
pub(crate) mod sse2;

/// `(Σ c·p, Σ c·w, Σ c²)` of a `u16` histogram whose counts all fit an `i16`, with the
/// widest vectors this CPU has (the same integers either way; see `sse2::sums_i16`).
#[inline]
pub(crate) fn sums_i16(counts: &[u16; 256], p: &[i16; 256], w: &[i16; 256]) -> (u32, u32, u32) {
    match avx2::Avx2::new() {
        Some(k) => k.sums_i16(counts, p, w),
        None => sse2::sums_i16(counts, p, w),
    }
}

/// Bit `b` (of word `b / 64`) set when `counts[b] >= 2`, with the widest vectors this
/// CPU has.
#[inline]
pub(crate) fn repeated_map(counts: &[u16; 256]) -> [u64; 4] {
    match avx2::Avx2::new() {
        Some(k) => k.repeated_map(counts),
        None => sse2::repeated_map(counts),
    }
}

/// Bit `b` (of word `b / 64`) set when `counts[b] >= 2`, for `u64` counters, or `None`
/// without AVX2 (SSE2 has no 64-bit compare; the scalar loop costs more than the
/// lookups it would save).
#[inline]
pub(crate) fn repeated_map_u64(counts: &[u64; 256]) -> Option<[u64; 4]> {
    avx2::Avx2::new().map(|k| k.repeated_map_u64(counts))
}

#[cfg(test)]
mod tests {
    use super::{avx2::Avx2, sse2};

    /// Histograms that fit an i16 per bin and a u16 in total, with the edge values.
    fn histograms() -> Vec<[u16; 256]> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = vec![[0u16; 256], [1u16; 256], [2u16; 256], [255u16; 256]];
        let mut edge = [0u16; 256];
        edge[0] = i16::MAX as u16;
        edge[255] = 2;
        edge[128] = 1;
        out.push(edge);
        for round in 0..2_000u64 {
            let spread = [2, 3, 17, 255, 256][(round % 5) as usize];
            let mut h = [0u16; 256];
            let mut total = 0u32;
            for c in h.iter_mut() {
                let v = (next() % spread) as u16;
                if total + u32::from(v) <= u32::from(u16::MAX) {
                    *c = v;
                    total += u32::from(v);
                }
            }
            out.push(h);
        }
        out
    }

    #[test]
    fn avx2_passes_equal_the_sse2_passes() {
        let Some(k) = Avx2::new() else {
            println!("skipped: this CPU has no AVX2");
            return;
        };
        let p: [i16; 256] = std::array::from_fn(|i| (i % 2) as i16);
        let w: [i16; 256] = std::array::from_fn(|i| (i as u8).count_ones() as i16);
        for h in histograms() {
            assert_eq!(k.sums_i16(&h, &p, &w), sse2::sums_i16(&h, &p, &w), "{h:?}");
            assert_eq!(k.repeated_map(&h), sse2::repeated_map(&h), "{h:?}");
        }
        // Counts past i16 are outside the sums' domain but not the map's.
        let mut big = [0u16; 256];
        for (b, c) in big.iter_mut().enumerate() {
            *c = [0, 1, 2, 3, 15, 16, 32_767, 32_768, 65_535][b % 9];
        }
        assert_eq!(k.repeated_map(&big), sse2::repeated_map(&big));
    }

    #[test]
    fn avx2_u64_map_marks_bins_of_two_or_more() {
        let Some(k) = Avx2::new() else {
            println!("skipped: this CPU has no AVX2");
            return;
        };
        let mut wide: Vec<[u64; 256]> = histograms().iter().map(|h| h.map(u64::from)).collect();
        let mut edge = [0u64; 256];
        for (b, c) in edge.iter_mut().enumerate() {
            *c = [
                0,
                1,
                2,
                3,
                65_535,
                65_536,
                1 << 32,
                (1 << 62) + 1,
                i64::MAX as u64,
            ][b % 9];
        }
        wide.push(edge);
        for h in &wide {
            let map = k.repeated_map_u64(h);
            for (b, &c) in h.iter().enumerate() {
                assert_eq!(
                    (map[b / 64] >> (b % 64)) & 1 == 1,
                    c >= 2,
                    "bin {b} count {c}"
                );
            }
        }
    }
}
