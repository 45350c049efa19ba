//! Fused compute on plain slices, and its binding to Burn backends.
//!
//! - [`ltc`]: one LTC time step over the existing synapses only (grouped by
//!   destination), forward and analytic backward, on `f32` slices: no Burn
//!   types, so a later Burn or a GPU kernel reuses the same arithmetic.
//! - [`activation`]: vectorizable `tanh`, `sigmoid`, LeCun `tanh` and their
//!   derivatives, for the CfC's activations.
//! - [`scalar`]: the branch-free `exp`, `sigmoid` and `tanh` both use, in
//!   plain `core` Rust (the exporter copies this file into generated code).
//! - `ndarray` (feature `ndarray`): the step as one Burn operation on
//!   `NdArray<f32>` and `Autodiff<NdArray<f32>>`, dispatched at run time by
//!   [`LTCCell`](crate::cells::LTCCell); other backends use the cell's
//!   tensor-op reference path.

pub mod activation;
pub mod ltc;
pub mod scalar;

/// `softplus(x) = ln(1 + e^x)` as torch computes it: `x` itself above 20
/// (exact and finite everywhere). The fused LTC kernel constrains its
/// positive parameters with it, and the exporter writes them through it.
pub(crate) fn softplus(x: f32) -> f32 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

/// Applies `f` to every value in place, compiled twice: for the baseline
/// CPU and, chosen at run time where the CPU has them, for AVX2 and FMA
/// (eight lanes instead of four). `f` must be branch-free arithmetic for
/// the loop to vectorize; the results are the same in both versions (no
/// operation is contracted into an FMA).
#[inline(always)]
pub(crate) fn map_in_place(values: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { map_avx2(values, f) };
        return;
    }
    values.iter_mut().for_each(|x| *x = f(*x));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map_avx2(values: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    values.iter_mut().for_each(|x| *x = f(*x));
}
#[cfg(feature = "ndarray")]
pub(crate) mod ndarray;

/// Whether [`LTCCell`](crate::cells::LTCCell) runs its fused step on backend
/// `B` (`NdArray<f32>` and `Autodiff<NdArray<f32>>`; with `fused = true`,
/// the default). Other backends take the dense tensor-op path.
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
///
/// assert!(ncps::kernels::fused_ltc_available::<NdArray<f32>>());
/// assert!(ncps::kernels::fused_ltc_available::<Autodiff<NdArray<f32>>>());
/// assert!(!ncps::kernels::fused_ltc_available::<NdArray<f64>>());
/// ```
pub fn fused_ltc_available<B: burn::prelude::Backend>() -> bool {
    #[cfg(feature = "ndarray")]
    {
        ndarray::fused_ltc_available::<B>()
    }
    #[cfg(not(feature = "ndarray"))]
    {
        false
    }
}

/// The logistic sigmoid at the tensor's own precision.
///
/// Burn 0.21's `sigmoid` casts to f32 and back whatever the float type,
/// which leaves float64 models with float32 sigmoids (2e-8 off at 0.12);
/// for f64 this is `(tanh(x / 2) + 1) / 2` (exact to f64 rounding,
/// saturating without overflow, and so is its gradient). Other float
/// types keep Burn's.
pub(crate) fn sigmoid<B: burn::prelude::Backend, const D: usize>(
    x: burn::prelude::Tensor<B, D>,
) -> burn::prelude::Tensor<B, D> {
    if x.dtype() == burn::tensor::DType::F64 {
        (burn::tensor::activation::tanh(x * 0.5) + 1.0) * 0.5
    } else {
        burn::tensor::activation::sigmoid(x)
    }
}

/// An activation: one fused operation on `NdArray<f32>` (and its autodiff),
/// Burn's tensor ops elsewhere.
pub(crate) fn activate<B: burn::prelude::Backend, const D: usize>(
    x: burn::prelude::Tensor<B, D>,
    op: activation::Unary,
) -> burn::prelude::Tensor<B, D> {
    use activation::Unary;
    use burn::tensor::activation::tanh;
    #[cfg(feature = "ndarray")]
    if fused_ltc_available::<B>() {
        return ndarray::unary(x, op);
    }
    match op {
        Unary::Tanh => tanh(x),
        Unary::Sigmoid => sigmoid(x),
        Unary::LecunTanh => tanh(x * 0.666) * 1.7159,
    }
}

/// A CfC step's gated mix: one fused operation on `NdArray<f32>` (and its
/// autodiff), Burn's tensor ops elsewhere. Heads `[batch, hidden]`,
/// `elapsed [batch, 1]`.
pub(crate) fn gated_mix<B: burn::prelude::Backend>(
    heads: [burn::prelude::Tensor<B, 2>; 4],
    elapsed: burn::prelude::Tensor<B, 2>,
    mix: activation::GatedMix,
) -> burn::prelude::Tensor<B, 2> {
    use burn::tensor::activation::tanh;
    #[cfg(feature = "ndarray")]
    if fused_ltc_available::<B>() {
        return ndarray::gated_mix(heads, elapsed, mix);
    }
    let [ff1, ff2, time_a, time_b] = heads;
    let (ff1, ff2) = (tanh(ff1), tanh(ff2));
    let t = sigmoid(time_a * elapsed + time_b);
    if mix.gated {
        ff1 * (t.clone().neg() + 1.0) + t * ff2
    } else {
        ff1 + t * ff2
    }
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::prelude::*;
    use burn::tensor::Distribution;

    use super::activation::Unary;

    type B = Autodiff<NdArray<f32>>;
    type Wide = Autodiff<NdArray<f64>>;

    /// The fused activations against Burn's ops in f64: values and gradients.
    #[test]
    fn fused_activations_match_burn_in_float64() {
        let device = Default::default();
        let x = Tensor::<B, 2>::random([17, 33], Distribution::Normal(0.0, 3.0), &device);
        let data: Vec<f32> = x.to_data().to_vec().unwrap();
        for op in [Unary::Tanh, Unary::Sigmoid, Unary::LecunTanh] {
            let ours_x = x.clone().require_grad();
            let ours = super::activate(ours_x.clone(), op);
            let grads = (ours.clone() * ours.clone()).sum().backward();
            let ours_grad: Vec<f32> = ours_x.grad(&grads).unwrap().into_data().to_vec().unwrap();
            let ours: Vec<f32> = ours.into_data().to_vec().unwrap();

            let wide_x = Tensor::<Wide, 2>::from_data(
                burn::tensor::TensorData::new(
                    data.iter().map(|&v| f64::from(v)).collect(),
                    [17, 33],
                ),
                &Default::default(),
            )
            .require_grad();
            // Not fused: Burn's own ops on f64.
            let wide = super::activate(wide_x.clone(), op);
            let grads = (wide.clone() * wide.clone()).sum().backward();
            let wide_grad: Vec<f64> = wide_x
                .grad(&grads)
                .unwrap()
                .into_data()
                .convert::<f64>()
                .to_vec()
                .unwrap();
            let wide: Vec<f64> = wide.into_data().convert::<f64>().to_vec().unwrap();
            for i in 0..data.len() {
                let value = (f64::from(ours[i]) - wide[i]).abs() / wide[i].abs().max(1.0);
                let grad =
                    (f64::from(ours_grad[i]) - wide_grad[i]).abs() / wide_grad[i].abs().max(1.0);
                assert!(
                    value < 5e-7 && grad < 1e-6,
                    "{op:?} at {}: {value:.1e} / {grad:.1e}",
                    data[i]
                );
            }
        }
    }

    /// The fused gated mix against Burn's ops in f64: value and the
    /// gradients of all five inputs, gated and not.
    #[test]
    fn fused_gated_mix_matches_burn_in_float64() {
        use super::activation::GatedMix;
        let device = Default::default();
        let draw = |shape: [usize; 2], scale: f64| {
            Tensor::<B, 2>::random(shape, Distribution::Normal(0.0, scale), &device)
        };
        let heads = [
            draw([5, 7], 2.0),
            draw([5, 7], 2.0),
            draw([5, 7], 1.0),
            draw([5, 7], 1.0),
        ];
        let elapsed = draw([5, 1], 1.0).abs();
        let wide = |t: &Tensor<B, 2>| {
            let data = t.to_data().convert::<f64>();
            Tensor::<Wide, 2>::from_data(data, &Default::default()).require_grad()
        };
        for gated in [true, false] {
            let mix = GatedMix { gated };
            let ours_in: Vec<Tensor<B, 2>> = heads
                .iter()
                .chain([&elapsed])
                .map(|t| t.clone().require_grad())
                .collect();
            let ours = super::gated_mix(
                [0, 1, 2, 3].map(|i| ours_in[i].clone()),
                ours_in[4].clone(),
                mix,
            );
            let grads = (ours.clone() * ours.clone()).sum().backward();
            let wide_in: Vec<Tensor<Wide, 2>> = heads.iter().chain([&elapsed]).map(wide).collect();
            let truth = super::gated_mix(
                [0, 1, 2, 3].map(|i| wide_in[i].clone()),
                wide_in[4].clone(),
                mix,
            );
            let wide_grads = (truth.clone() * truth.clone()).sum().backward();
            let close = |a: Vec<f32>, b: Vec<f64>, what: &str| {
                for (x, y) in a.iter().zip(&b) {
                    let err = (f64::from(*x) - y).abs() / y.abs().max(1.0);
                    assert!(err < 2e-6, "gated = {gated}, {what}: {x} vs {y}");
                }
            };
            close(
                ours.into_data().to_vec().unwrap(),
                truth.into_data().convert::<f64>().to_vec().unwrap(),
                "value",
            );
            for i in 0..5 {
                close(
                    ours_in[i]
                        .grad(&grads)
                        .unwrap()
                        .into_data()
                        .to_vec()
                        .unwrap(),
                    wide_in[i]
                        .grad(&wide_grads)
                        .unwrap()
                        .into_data()
                        .convert::<f64>()
                        .to_vec()
                        .unwrap(),
                    &format!("gradient of input {i}"),
                );
            }
        }
    }
}
