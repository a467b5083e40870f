//! What uniformly random bytes look like at a given length, and how surprising a
//! sample is under that hypothesis.
//!
//! # Expected entropy and its spread
//!
//! Under H0 (bytes i.i.d. uniform), bin counts are multinomial and each is
//! `Binomial(n, 1/256)`. With `g(k) = -(k/n)·log2(k/n)` and `H = Σ g(c_i)`:
//!
//! * `E[H] = 256 · Σ_k P(c = k) g(k)` (exact);
//! * `Var[H] = 256 · E[g(c₁)²] + 256·255 · E[g(c₁) g(c₂)] − E[H]²`, where the joint term
//!   is exact too: given `c₁ = a`, `c₂ ~ Binomial(n − a, 1/255)`.
//!
//! Both are computed exactly (sums truncated where the binomial mass is below 1e-18)
//! for every `n ≤` [`EXACT_MAX`], lazily and cached per `n`. Above it the second-order
//! expansions of the plug-in estimator for a uniform source are used,
//! `E[H] ≈ 8 − 255/(2n ln 2) − (256² − 1)/(12 n² ln 2)` and
//! `Var[H] ≈ 255/(2 n² ln² 2)` (Miller–Madow bias; `2n ln2 (8 − H)` is the G statistic,
//! χ² with 255 degrees of freedom); a test checks they agree with the exact values at
//! `EXACT_MAX`.
//!
//! # The entropy test
//!
//! The deficit `D = Hmax − H` (with `Hmax = log2(min(n, 256))`) is non-negative and
//! right-skewed: a shifted Poisson count of collisions for `n ≪ 256`, a scaled χ²₂₅₅
//! for `n ≫ 256`. It is approximated by the gamma distribution with the exact mean and
//! variance of `D`, which is exact in the large-`n` limit and follows the Poisson's
//! skew for short samples, where a normal approximation understates the tail. The
//! p-value is the gamma upper tail at the observed deficit. `tests.rs` measures the
//! resulting false-negative rate on random buffers of 16 to 1460 bytes.
//!
//! # The printable test
//!
//! The number of printable bytes is `Binomial(n, 98/256)` under H0; its upper tail is
//! exact for `n ≤ 256` and the normal approximation with continuity correction above.

use std::f64::consts::LN_2;
use std::sync::OnceLock;

use super::features::PRINTABLE_VALUES;

/// Largest sample length whose moments are computed exactly.
pub const EXACT_MAX: usize = 4096;

/// Mean and variance of the Shannon entropy (bits/byte) of `n` uniformly random bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Moments {
    pub mean: f64,
    pub var: f64,
}

/// Everything the entropy test needs about random data of one length: the moments and
/// the gamma law fitted to the deficit (see the module documentation). Made once per
/// length, so that a sample's p-value costs only the incomplete-gamma evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Null {
    /// Mean and variance of the entropy.
    pub moments: Moments,
    /// `log2(min(n, 256))`, the largest entropy `n` bytes can have.
    hmax: f64,
    /// Shape of the deficit's gamma law; 0 when there is no test (`n < 2`).
    shape: f64,
    /// Scale of the deficit's gamma law.
    scale: f64,
    /// `ln Γ(shape)`.
    ln_gamma_shape: f64,
}

impl Null {
    fn new(n: u64, m: Moments) -> Null {
        let hmax = (n.min(256) as f64).log2();
        let mu = hmax - m.mean;
        let testable = n >= 2 && m.var > 0.0 && mu > 0.0;
        let (shape, scale) = if testable {
            (mu * mu / m.var, m.var / mu)
        } else {
            (0.0, 0.0)
        };
        Null {
            moments: m,
            hmax,
            shape,
            scale,
            ln_gamma_shape: if testable { ln_gamma(shape) } else { 0.0 },
        }
    }
}

static EXACT: [OnceLock<Null>; EXACT_MAX + 1] = [const { OnceLock::new() }; EXACT_MAX + 1];

/// The null model for `n` random bytes (exact moments up to [`EXACT_MAX`], cached).
pub(crate) fn null(n: u64) -> Null {
    match usize::try_from(n).ok().and_then(|i| EXACT.get(i)) {
        Some(slot) => *slot.get_or_init(|| Null::new(n, exact_moments(n))),
        None => Null::new(n, asymptotic_moments(n)),
    }
}

/// Moments of the entropy of `n` random bytes (exact up to [`EXACT_MAX`], cached).
#[cfg(test)]
pub(crate) fn moments(n: u64) -> Moments {
    null(n).moments
}

/// Binomial(m, p) probabilities for k = 0.. until the mass left is negligible.
fn binomial_pmf(m: u64, p: f64, out: &mut Vec<f64>) {
    out.clear();
    let q = 1.0 - p;
    let mut pk = q.powf(m as f64);
    let ratio = p / q;
    let mean = m as f64 * p;
    let mut k = 0u64;
    loop {
        out.push(pk);
        if k >= m || (k as f64 > mean && pk < 1e-18) {
            break;
        }
        pk *= (m - k) as f64 / (k + 1) as f64 * ratio;
        k += 1;
    }
}

/// Exact moments for `n` bytes (see the module documentation).
pub(crate) fn exact_moments(n: u64) -> Moments {
    if n < 2 {
        return Moments {
            mean: 0.0,
            var: 0.0,
        };
    }
    let nf = n as f64;
    let term = |k: usize| -> f64 {
        if k == 0 {
            0.0
        } else {
            let x = k as f64 / nf;
            -x * x.log2()
        }
    };
    let mut pa = Vec::new();
    binomial_pmf(n, 1.0 / 256.0, &mut pa);
    // g(k) for every k the sums reach, computed once (the inner sums below would
    // otherwise take a log2 per term, for every `a`).
    let mut g: Vec<f64> = (0..pa.len()).map(term).collect();
    let mut e1 = 0.0;
    let mut e2 = 0.0;
    for (&p, &gk) in pa.iter().zip(&g) {
        e1 += p * gk;
        e2 += p * gk * gk;
    }
    let mut pb = Vec::new();
    let mut cross = 0.0;
    for (a, &p) in pa.iter().enumerate() {
        let ga = g.get(a).copied().unwrap_or_else(|| term(a));
        if ga == 0.0 {
            continue;
        }
        binomial_pmf(n - a as u64, 1.0 / 255.0, &mut pb);
        while g.len() < pb.len() {
            g.push(term(g.len()));
        }
        let inner: f64 = pb.iter().zip(&g).map(|(&q, &gb)| q * gb).sum();
        cross += p * ga * inner;
    }
    let mean = 256.0 * e1;
    let var = (256.0 * e2 + 256.0 * 255.0 * cross - mean * mean).max(0.0);
    Moments { mean, var }
}

/// Second-order expansions for large `n` (see the module documentation).
pub(crate) fn asymptotic_moments(n: u64) -> Moments {
    let nf = n as f64;
    let mean = 8.0 - 255.0 / (2.0 * nf * LN_2) - (65536.0 - 1.0) / (12.0 * nf * nf * LN_2);
    let var = 255.0 / (2.0 * nf * nf * LN_2 * LN_2);
    Moments { mean, var }
}

/// Probability, under H0, of an entropy at most `bits` for a sample of the length `null`
/// describes (lower tail).
pub(crate) fn entropy_p_value(bits: f64, null: &Null) -> f64 {
    if null.shape <= 0.0 {
        return 1.0;
    }
    let deficit = null.hmax - bits;
    gamma_q_ln(null.shape, null.ln_gamma_shape, deficit / null.scale)
}

/// Probability, under H0, of at least `printable` printable bytes out of `n`.
pub(crate) fn printable_p_value(printable: u64, n: u64) -> f64 {
    if printable == 0 || n == 0 {
        return 1.0;
    }
    let p = f64::from(PRINTABLE_VALUES) / 256.0;
    if n <= EXACT_PRINTABLE_MAX {
        // Exact, from the tails of this `n` computed once (every flow direction asks).
        let tails = PRINTABLE_TAILS
            .get(n as usize)
            .map(|slot| slot.get_or_init(|| printable_tails(n, p)));
        let k = usize::try_from(printable).unwrap_or(usize::MAX);
        return tails.and_then(|t| t.get(k)).copied().unwrap_or(0.0);
    }
    let nf = n as f64;
    let z = (printable as f64 - 0.5 - nf * p) / (nf * p * (1.0 - p)).sqrt();
    normal_upper_tail(z)
}

/// Largest sample length whose printable-count p-value is exact (binomial tail).
const EXACT_PRINTABLE_MAX: u64 = 256;

/// For each `n` up to [`EXACT_PRINTABLE_MAX`], `P(at least k printable of n)` for every
/// `k` in `0..=n`, made on first use (at most 257 tables, 264 KiB in all).
static PRINTABLE_TAILS: [OnceLock<Box<[f64]>>; EXACT_PRINTABLE_MAX as usize + 1] =
    [const { OnceLock::new() }; EXACT_PRINTABLE_MAX as usize + 1];

/// The binomial(n, p) upper tails for `k = 0..=n`: walk the pmf from `j = 0` and add the
/// terms `j ≥ k` in increasing `j`, so each tail is the very sum a direct walk would make.
fn printable_tails(n: u64, p: f64) -> Box<[f64]> {
    let q = 1.0 - p;
    let mut pmf = Vec::with_capacity(n as usize + 1);
    let mut pk = q.powf(n as f64);
    for k in 0..=n {
        pmf.push(pk);
        pk *= (n - k) as f64 / (k + 1) as f64 * (p / q);
    }
    (0..pmf.len())
        .map(|k| {
            let tail: f64 = pmf.iter().skip(k).fold(0.0, |acc, &x| acc + x);
            tail.min(1.0)
        })
        .collect()
}

/// `P(Z ≥ z)` for a standard normal `Z`.
pub(crate) fn normal_upper_tail(z: f64) -> f64 {
    let half = 0.5 * gamma_q(0.5, z * z / 2.0);
    if z >= 0.0 { half } else { 1.0 - half }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection: Γ(x)Γ(1−x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Upper regularized incomplete gamma `Q(a, x) = Γ(a, x) / Γ(a)`, for `a > 0`.
///
/// Series for `x < a + 1`, Lentz's continued fraction otherwise (the standard split,
/// each converging fast on its side).
pub(crate) fn gamma_q(a: f64, x: f64) -> f64 {
    if a.is_nan() || a <= 0.0 {
        return 1.0;
    }
    gamma_q_ln(a, ln_gamma(a), x)
}

/// [`gamma_q`] with `ln Γ(a)` given (`lg`), for callers that evaluate one `a` often.
fn gamma_q_ln(a: f64, lg: f64, x: f64) -> f64 {
    if a.is_nan() || a <= 0.0 || x.is_nan() {
        return 1.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    let prefactor = (-x + a * x.ln() - lg).exp();
    if x < a + 1.0 {
        let mut ap = a;
        let mut del = 1.0 / a;
        let mut sum = del;
        for _ in 0..1000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * prefactor).clamp(0.0, 1.0)
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let i = f64::from(i);
            let an = -i * (i - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (prefactor * h).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_printable_tails_equal_a_direct_walk_bit_for_bit() {
        let p = f64::from(PRINTABLE_VALUES) / 256.0;
        let q = 1.0 - p;
        for n in 1..=EXACT_PRINTABLE_MAX {
            for printable in 1..=n + 1 {
                let mut pk = q.powf(n as f64);
                let mut tail = 0.0;
                for k in 0..=n {
                    if k >= printable {
                        tail += pk;
                    }
                    pk *= (n - k) as f64 / (k + 1) as f64 * (p / q);
                }
                let direct: f64 = tail.min(1.0);
                let cached = printable_p_value(printable, n);
                assert_eq!(
                    cached.to_bits(),
                    direct.to_bits(),
                    "n {n} printable {printable}"
                );
            }
        }
    }

    #[test]
    fn expected_entropy_matches_published_values_for_random_bytes() {
        // 3.94 at 16 B, 5.77 at 64 B, 7.18 at 256 B, 7.87 at 1460 B
        for (n, want) in [(16, 3.94), (64, 5.77), (256, 7.18), (1460, 7.87)] {
            let m = moments(n);
            assert!((m.mean - want).abs() < 0.006, "n={n}: {}", m.mean);
        }
    }

    #[test]
    fn two_bytes_entropy_moments_are_exact() {
        // H = 1 unless both bytes are equal (p = 1/256), then 0.
        let m = exact_moments(2);
        let p = 1.0 / 256.0;
        assert!((m.mean - (1.0 - p)).abs() < 1e-12);
        assert!((m.var - p * (1.0 - p)).abs() < 1e-12);
    }

    #[test]
    fn asymptotic_moments_agree_with_exact_at_the_switch() {
        let e = exact_moments(EXACT_MAX as u64);
        let a = asymptotic_moments(EXACT_MAX as u64);
        let deficit = 8.0 - e.mean;
        assert!(
            ((8.0 - a.mean) - deficit).abs() < 0.01 * deficit,
            "{e:?} {a:?}"
        );
        assert!(
            (a.var.sqrt() - e.var.sqrt()).abs() < 0.05 * e.var.sqrt(),
            "{e:?} {a:?}"
        );
    }

    #[test]
    fn gamma_q_matches_known_normal_and_exponential_tails() {
        assert!((normal_upper_tail(1.959_963_984_540_054) - 0.025).abs() < 1e-9);
        assert!((normal_upper_tail(-1.0) - 0.841_344_746_068_542_9).abs() < 1e-9);
        // Q(1, x) = e^-x
        for x in [0.1, 1.0, 5.0, 30.0] {
            assert!((gamma_q(1.0, x) - (-x).exp()).abs() < 1e-12 * (1.0 + (-x).exp()));
        }
        // Q(k, x) for integer k is a Poisson cdf: Q(3, 2) = e^-2 (1 + 2 + 2)
        assert!((gamma_q(3.0, 2.0) - 5.0 * (-2.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn printable_tail_is_one_at_zero_and_tiny_when_all_printable() {
        assert_eq!(printable_p_value(0, 64), 1.0);
        let all = printable_p_value(64, 64);
        assert!(all < 1e-25 && all > 0.0, "{all}");
        let big = printable_p_value(1460, 1460);
        assert!(big < 1e-100, "{big}");
        let mid = printable_p_value(559, 1460); // about the mean 1460·98/256
        assert!(mid > 0.4 && mid < 0.6, "{mid}");
    }
}
