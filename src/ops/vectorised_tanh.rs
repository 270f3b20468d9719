//! tanh of an f32 in plain arithmetic, so that a loop over it vectorises.
//!
//! The C library's `tanhf` is a call per value (with `expm1f` inside it); G's output passes
//! every pixel of every generated and reconstructed image through it, a few percent of a
//! training step at 64×64 and more at 128×128. Here every step is an addition, a
//! multiplication, a division, a comparison or a bit operation, which the compiler turns into
//! vector instructions on any target, and which round the same way on every CPU.
//!
//! Accuracy: within 2 units in the last place of the exact value for every finite input
//! (checked against f64 over the whole range in the tests); ±1 for ±∞, NaN for NaN, −0 for −0.

/// Below this magnitude tanh is its Taylor series; above it, `(1 − e^{−2a}) / (1 + e^{−2a})`,
/// where `e^{−2a} ≤ e^{−1.1}` keeps `1 − e^{−2a}` free of cancellation.
const SERIES_BELOW: f32 = 0.55;

/// Magnitudes are clamped here before the exponential: from 9.02 on, tanh rounds to 1 in f32,
/// and `e^{−20}` is still a normal number.
const SATURATED_FROM: f32 = 10.0;

/// The odd Taylor coefficients of tanh after the first, x³ to x¹⁵: at |x| = 0.55 the first
/// term left out (x¹⁷) is under a tenth of a unit in the last place.
const SERIES: [f32; 7] = [
    -1.0 / 3.0,
    2.0 / 15.0,
    -17.0 / 315.0,
    62.0 / 2835.0,
    -1382.0 / 155_925.0,
    21844.0 / 6_081_075.0,
    -929_569.0 / 638_512_875.0,
];

/// `1 / k!` for k = 2 to 7: e^r on |r| ≤ ln 2 / 2 to a twentieth of a unit in the last place.
const EXP_SERIES: [f32; 6] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
];

/// ln 2 split in two (Cody and Waite): the first part has trailing zero bits, so that k · it is
/// exact for the |k| ≤ 29 used here.
const LN2_HIGH: f32 = 0.693_145_75;
const LN2_LOW: f32 = 1.428_606_8e-6;

/// Adding then subtracting 1.5 · 2²³ rounds an f32 of magnitude below 2²² to the nearest
/// integer with two additions (no rounding instruction needed on the baseline target).
const ROUNDER: f32 = 12_582_912.0;

/// tanh(x); see the module for its accuracy.
#[inline(always)]
pub(super) fn tanh(x: f32) -> f32 {
    let a = x.abs().min(SATURATED_FROM);
    // Near zero: x + x³ · P(x²), by Horner's rule.
    let a2 = a * a;
    let mut p = SERIES[SERIES.len() - 1];
    for &c in SERIES[..SERIES.len() - 1].iter().rev() {
        p = p * a2 + c;
    }
    let near_zero = a + a * a2 * p;
    // Elsewhere: t = e^{−2a} = 2^k · e^r with r = −2a − k · ln 2.
    let y = -2.0 * a;
    let k = (y * std::f32::consts::LOG2_E + ROUNDER) - ROUNDER;
    let r = (y - k * LN2_HIGH) - k * LN2_LOW;
    let mut q = EXP_SERIES[EXP_SERIES.len() - 1];
    for &c in EXP_SERIES[..EXP_SERIES.len() - 1].iter().rev() {
        q = q * r + c;
    }
    let exp_r = 1.0 + r + r * r * q;
    // k is an integer in [−29, 0]: 2^k built from its exponent bits.
    let two_k = f32::from_bits(((k as i32 + 127) as u32) << 23);
    let t = exp_r * two_k;
    let far = (1.0 - t) / (1.0 + t);
    let magnitude = if a < SERIES_BELOW { near_zero } else { far };
    if x.is_nan() {
        x
    } else {
        magnitude.copysign(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distance between `got` and the exact `want`, in units of the last place of the f32
    /// nearest to `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let nearest = want as f32;
        let ulp = f64::from(f32::from_bits(nearest.abs().to_bits() + 1) - nearest.abs());
        (f64::from(got) - want).abs() / ulp
    }

    /// Every input from 2⁻¹⁴⁰ to 20, both signs, 1 in 97 of the f32 values between (about
    /// 11 million), and both sides of the two thresholds.
    #[test]
    fn is_within_two_units_in_the_last_place_everywhere() {
        let (first, last) = (2f32.powi(-140).to_bits(), 20f32.to_bits());
        let mut worst = (0.0, 0f32);
        let around = |c: f32| (c.to_bits() - 50..c.to_bits() + 50).collect::<Vec<_>>();
        let bits = (first..last)
            .step_by(97)
            .chain(around(SERIES_BELOW))
            .chain(around(9.02))
            .chain([f32::MIN_POSITIVE.to_bits(), 1, SATURATED_FROM.to_bits()]);
        for b in bits {
            for x in [f32::from_bits(b), -f32::from_bits(b)] {
                let error = ulps(tanh(x), f64::from(x).tanh());
                if error > worst.0 {
                    worst = (error, x);
                }
            }
        }
        assert!(worst.0 <= 2.0, "{} ulp at {}", worst.0, worst.1);
    }

    #[test]
    fn keeps_signed_zeros_infinities_and_nan() {
        assert_eq!(tanh(0.0).to_bits(), 0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0f32).to_bits());
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(1e30), 1.0);
        assert_eq!(tanh(-9.5), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        let tiny = f32::from_bits(1);
        assert_eq!(tanh(tiny), tiny);
    }
}
