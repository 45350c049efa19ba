//! Elementwise activations on `f32` slices, branch-free so that the loops
//! vectorize: `tanh`, `sigmoid` and LeCun's scaled `tanh`, with their
//! derivatives from the outputs (what a backward pass keeps).
//!
//! libm's scalar `tanh` was half of a CfC step's time on the CPU; these run
//! several values per instruction at the same accuracy (within one or two
//! float32 roundings, measured against f64 in the tests below).

use super::scalar::{LECUN_SCALE, LECUN_SLOPE, lecun_tanh};
pub use super::scalar::{sigmoid, tanh};

/// Which activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `1.7159 · tanh(0.666 · x)` (upstream's `lecun_tanh`).
    LecunTanh,
}

impl Unary {
    /// Applies the activation to every value in place.
    pub fn forward(self, values: &mut [f32]) {
        match self {
            Unary::Tanh => super::map_in_place(values, tanh),
            Unary::Sigmoid => super::map_in_place(values, sigmoid),
            Unary::LecunTanh => super::map_in_place(values, lecun_tanh),
        }
    }

    /// Turns `grad` (of the outputs) into the gradient of the inputs, from
    /// the outputs `y`.
    #[inline(always)]
    pub fn backward(self, outputs: &[f32], grad: &mut [f32]) {
        let pairs = grad.iter_mut().zip(outputs);
        match self {
            Unary::Tanh => pairs.for_each(|(g, &y)| *g *= tanh_grad(y)),
            Unary::Sigmoid => pairs.for_each(|(g, &y)| *g *= y * (1.0 - y)),
            Unary::LecunTanh => pairs.for_each(|(g, &y)| *g *= lecun_tanh_grad(y)),
        }
    }
}

/// The derivative of `tanh` from its output `y`: `1 - y²`.
#[inline(always)]
pub(crate) fn tanh_grad(y: f32) -> f32 {
    1.0 - y * y
}

/// The derivative of LeCun's tanh from its output `y`:
/// `1.7159 · 0.666 · (1 - (y / 1.7159)²)`.
#[inline(always)]
pub(crate) fn lecun_tanh_grad(y: f32) -> f32 {
    let t = y / LECUN_SCALE;
    LECUN_SCALE * LECUN_SLOPE * tanh_grad(t)
}

/// A CfC backbone's activation, on slices: `y = f(z)` and the derivative
/// from the one of `z` and `y` it is computed from
/// ([`derives_from_output`](Self::derives_from_output)), so a forward
/// pass keeps only that one for the backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backbone {
    /// `1.7159 · tanh(0.666 · z)`.
    LecunTanh,
    /// `z · sigmoid(z)`.
    Silu,
    /// `max(z, 0)`.
    Relu,
    /// `tanh(z)`.
    Tanh,
    /// `z · Φ(z)` with the exact (erf) normal CDF, as `torch.nn.GELU()`.
    Gelu,
}

impl Backbone {
    /// `y = f(z)`, elementwise.
    pub fn forward(self, z: &[f32], y: &mut [f32]) {
        use super::map_into as map;
        match self {
            Backbone::LecunTanh => map(z, y, lecun_tanh),
            Backbone::Silu => map(z, y, |z| z * sigmoid(z)),
            Backbone::Relu => map(z, y, |z| if z > 0.0 { z } else { 0.0 }),
            Backbone::Tanh => map(z, y, tanh),
            Backbone::Gelu => map(z, y, |z| {
                z * 0.5 * (1.0 + libm::erff(z * std::f32::consts::FRAC_1_SQRT_2))
            }),
        }
    }

    /// Whether the derivative is computed from the output `y` (`tanh`,
    /// LeCun's `tanh`) rather than from the input `z` (the others).
    pub fn derives_from_output(self) -> bool {
        matches!(self, Backbone::LecunTanh | Backbone::Tanh)
    }

    /// `dz = grad · f'(z)`, written over the pre-activations `z` that `dz`
    /// holds on entry (in one pass: no copy of the gradient into them),
    /// the derivative taken from `z`, or from the output `y` where the
    /// activation [`derives_from_output`](Self::derives_from_output) (`y`
    /// is read only then). All three of one length.
    #[inline(always)]
    pub fn backward_over(self, grad: &[f32], y: &[f32], dz: &mut [f32]) {
        assert_eq!(
            grad.len(),
            dz.len(),
            "gradient and pre-activations differ in length"
        );
        // `rule(g, kept)`, with `kept` = `y` (`Some`) or the entry's `z`.
        #[inline(always)]
        fn each(grad: &[f32], y: Option<&[f32]>, dz: &mut [f32], rule: impl Fn(f32, f32) -> f32) {
            match y {
                Some(y) => {
                    assert_eq!(
                        y.len(),
                        dz.len(),
                        "outputs and pre-activations differ in length"
                    );
                    let values = dz.iter_mut().zip(grad).zip(y);
                    values.for_each(|((d, &g), &y)| *d = rule(g, y));
                }
                None => dz.iter_mut().zip(grad).for_each(|(d, &g)| *d = rule(g, *d)),
            }
        }
        match self {
            Backbone::LecunTanh => each(grad, Some(y), dz, |g, y| g * lecun_tanh_grad(y)),
            Backbone::Tanh => each(grad, Some(y), dz, |g, y| g * tanh_grad(y)),
            Backbone::Relu => each(grad, None, dz, |g, z| if z > 0.0 { g } else { 0.0 }),
            Backbone::Silu => each(grad, None, dz, |g, z| {
                let s = sigmoid(z);
                g * (s * (1.0 + z * (1.0 - s)))
            }),
            Backbone::Gelu => each(grad, None, dz, |g, z| {
                // Φ(z) + z·φ(z)
                let cdf = 0.5 * (1.0 + libm::erff(z * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = super::scalar::exp(-0.5 * z * z) * 0.398_942_3;
                g * (cdf + z * pdf)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worst(f: impl Fn(f32) -> f32, truth: impl Fn(f64) -> f64) -> f64 {
        let mut worst = 0.0f64;
        let mut x = -40.0f32;
        while x <= 40.0 {
            let t = truth(f64::from(x));
            // Relative where the value is not tiny: absolute below 1e-30.
            worst = worst.max((f64::from(f(x)) - t).abs() / t.abs().max(1e-30));
            x += 7.7e-4;
        }
        worst
    }

    #[test]
    fn activations_match_float64() {
        let tanh_error = worst(tanh, f64::tanh);
        let sigmoid_error = worst(sigmoid, |x| 1.0 / (1.0 + (-x).exp()));
        assert!(
            tanh_error <= 2.5e-7,
            "tanh: relative error {tanh_error:.2e}"
        );
        assert!(
            sigmoid_error <= 2.5e-7,
            "sigmoid: relative error {sigmoid_error:.2e}"
        );
        for x in [1e-30f32, -1e-20, 1e-8, 0.0] {
            assert_eq!(tanh(x), x, "tanh is exact for tiny x");
        }
        assert_eq!((tanh(f32::INFINITY), tanh(f32::NEG_INFINITY)), (1.0, -1.0));
    }

    #[test]
    fn derivatives_from_outputs() {
        for (op, f) in [
            (Unary::Tanh, f64::tanh as fn(f64) -> f64),
            (Unary::Sigmoid, |x: f64| 1.0 / (1.0 + (-x).exp())),
            (Unary::LecunTanh, |x: f64| 1.7159 * (0.666 * x).tanh()),
        ] {
            for x in [-3.0f32, -0.4, 0.0, 0.3, 2.5] {
                let mut y = [x];
                op.forward(&mut y);
                let mut g = [1.0f32];
                op.backward(&y, &mut g);
                let h = 1e-4;
                let numeric = (f(f64::from(x) + h) - f(f64::from(x) - h)) / (2.0 * h);
                assert!((f64::from(g[0]) - numeric).abs() < 1e-5, "{op:?} at {x}");
            }
        }
    }
}

/// The gated mix of a CfC step, elementwise over `[batch, hidden]`:
/// `t = sigmoid(time_a · elapsed + time_b)`, then
/// `tanh(ff1) · (1 - t) + t · tanh(ff2)` (`gated`) or
/// `tanh(ff1) + t · tanh(ff2)` (upstream's `no_gate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatedMix {
    /// Whether `tanh(ff1)` is weighted by `1 - t`.
    pub gated: bool,
}

/// What [`GatedMix::backward`] needs from the forward pass, `[batch · hidden]` each.
#[derive(Clone, Debug, Default)]
pub struct MixTrace {
    ff1: Vec<f32>,
    ff2: Vec<f32>,
    gate: Vec<f32>,
}

/// Gradients of the mix's inputs.
#[derive(Clone, Debug)]
pub struct MixGrads {
    /// Of `ff1`, `ff2`, `time_a`, `time_b`, `[batch · hidden]` each.
    pub heads: [Vec<f32>; 4],
    /// Of the elapsed time, `[batch]`.
    pub elapsed: Vec<f32>,
}

impl GatedMix {
    /// The mix of `[batch · hidden]` head outputs with `elapsed [batch]`;
    /// keeps a trace when asked.
    pub fn forward(
        self,
        heads: [&[f32]; 4],
        elapsed: &[f32],
        keep_trace: bool,
    ) -> (Vec<f32>, Option<MixTrace>) {
        let [ff1, ff2, time_a, time_b] = heads;
        let hidden = ff1.len() / elapsed.len().max(1);
        let mut f1: Vec<f32> = ff1.to_vec();
        let mut f2: Vec<f32> = ff2.to_vec();
        Unary::Tanh.forward(&mut f1);
        Unary::Tanh.forward(&mut f2);
        let mut gate: Vec<f32> = time_a
            .iter()
            .zip(time_b)
            .enumerate()
            .map(|(i, (&a, &b))| a * elapsed[i / hidden] + b)
            .collect();
        Unary::Sigmoid.forward(&mut gate);
        let out = f1
            .iter()
            .zip(&f2)
            .zip(&gate)
            .map(|((&f1, &f2), &t)| {
                if self.gated {
                    f1 * (1.0 - t) + t * f2
                } else {
                    f1 + t * f2
                }
            })
            .collect();
        let trace = keep_trace.then_some(MixTrace {
            ff1: f1,
            ff2: f2,
            gate,
        });
        (out, trace)
    }

    /// The inputs' gradients from the output's, `time_a` and `elapsed`.
    pub fn backward(
        self,
        trace: &MixTrace,
        time_a: &[f32],
        elapsed: &[f32],
        grad: &[f32],
    ) -> MixGrads {
        let n = grad.len();
        let hidden = n / elapsed.len().max(1);
        let mut heads: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0f32; n]);
        let mut grad_elapsed = vec![0.0f32; elapsed.len()];
        for i in 0..n {
            let (f1, f2, t, g) = (trace.ff1[i], trace.ff2[i], trace.gate[i], grad[i]);
            let (d_f1, d_t) = if self.gated {
                (1.0 - t, f2 - f1)
            } else {
                (1.0, f2)
            };
            heads[0][i] = g * d_f1 * (1.0 - f1 * f1);
            heads[1][i] = g * t * (1.0 - f2 * f2);
            let g_z = g * d_t * t * (1.0 - t);
            let b = i / hidden;
            heads[2][i] = g_z * elapsed[b];
            heads[3][i] = g_z;
            grad_elapsed[b] += g_z * time_a[i];
        }
        MixGrads {
            heads,
            elapsed: grad_elapsed,
        }
    }
}
