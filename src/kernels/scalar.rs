//! The scalar `exp`, `sigmoid` and `tanh` of the fused kernels, for `f32`,
//! branch-free so that loops over slices vectorize.
//!
//! This file is plain `core` Rust on purpose: `ncps::export` copies it,
//! as it is, into the `#![no_std]` Rust it generates (which has no
//! `f32::exp`), so that an exported model computes its sigmoids and tanh
//! with exactly the functions the crate's kernels use. Keep it
//! self-contained: no `std`, no `crate` paths, nothing but these functions.

/// `e^x` for `f32`, branch-free so that loops over slices vectorize: the
/// argument is reduced to `x = n·ln 2 + r` with `|r| <= ln 2 / 2` (ln 2 in
/// two parts, Cody and Waite), `e^r` is Cephes' degree-7 polynomial and
/// `2^n` is put into the exponent bits. Arguments are clamped to
/// `[-87.3, 88.3]` (results from 1.2e-38 to 2.2e38). Measured against f64
/// `exp` over the whole range: at most 8.0e-8 relative error, within one
/// float32 rounding as a libm `expf`; `exp_matches_float64` checks it.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// 1.5 · 2^23: adding it rounds to an integer, kept in the low bits.
    const ROUND: f32 = 12_582_912.0;
    let x = if x < -87.3 { -87.3 } else { x };
    let x = if x > 88.3 { 88.3 } else { x };
    let t = x * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    let n = t.to_bits() as i32 - ROUND.to_bits() as i32;
    e_r * f32::from_bits(((n + 127) << 23) as u32)
}

/// `tanh(x)`: Cephes' odd polynomial below |x| = 0.625, `1 - 2 / (e^2|x| + 1)`
/// above, with the sign of `x`.
#[inline(always)]
// Cephes' published coefficients, as printed there.
#[allow(clippy::excessive_precision)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1)
            * z
            * x
            + x;
    let large = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let large = if x < 0.0 { -large } else { large };
    if a < 0.625 { small } else { large }
}

/// The scale of LeCun's `tanh`, `LECUN_SCALE · tanh(LECUN_SLOPE · x)`.
pub const LECUN_SCALE: f32 = 1.7159;
/// The slope of LeCun's `tanh`.
pub const LECUN_SLOPE: f32 = 0.666;

/// LeCun's scaled `tanh`: `1.7159 · tanh(0.666 · x)` (upstream's
/// `lecun_tanh`).
#[inline(always)]
pub fn lecun_tanh(x: f32) -> f32 {
    LECUN_SCALE * tanh(LECUN_SLOPE * x)
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_float64() {
        let mut worst = 0.0f64;
        let mut x = -87.3f32;
        while x <= 88.3 {
            let truth = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x)) - truth).abs() / truth);
            x += 1.3e-3;
        }
        assert!(worst <= 1.0e-7, "exp: relative error {worst:.2e}");
        // Beyond the range: clamped, finite, and the sigmoid saturates.
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(sigmoid(-200.0) < 1e-37 && sigmoid(-200.0) >= 0.0);
        assert!(exp(f32::INFINITY).is_finite() && exp(f32::NEG_INFINITY) > 0.0);
    }
}
