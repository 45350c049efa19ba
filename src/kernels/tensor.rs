//! What the cells call for their activations and arithmetic: one fused
//! operation on `NdArray<f32>` (and its autodiff), Burn's tensor ops on
//! every other backend, written so that they stay exact under any of
//! Burn's features.

use std::sync::Arc;

use burn::prelude::*;

use super::activation::{self, Unary};
use super::scalar::{LECUN_SCALE, LECUN_SLOPE};
use super::{CfcInputs, Extras};

/// The logistic sigmoid at the tensor's own precision.
///
/// Burn 0.21's `sigmoid` casts to f32 and back whatever the float type,
/// which leaves float64 models with float32 sigmoids (2e-8 off at 0.12);
/// for f64 this is `(tanh(x / 2) + 1) / 2` (exact to f64 rounding,
/// saturating without overflow, and so is its gradient). Other float
/// types keep Burn's.
pub(crate) fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() == burn::tensor::DType::F64 {
        (burn::tensor::activation::tanh(x * 0.5) + 1.0) * 0.5
    } else {
        burn::tensor::activation::sigmoid(x)
    }
}

/// An activation: one fused operation on `NdArray<f32>` (and its autodiff),
/// Burn's tensor ops elsewhere.
pub(crate) fn activate<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    op: activation::Unary,
) -> Tensor<B, D> {
    use burn::tensor::activation::tanh;
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        return super::ndarray::activation::unary(x, op);
    }
    match op {
        Unary::Tanh => tanh(x),
        Unary::Sigmoid => sigmoid(x),
        Unary::LecunTanh => tanh(x * LECUN_SLOPE) * LECUN_SCALE,
    }
}

/// `layer` applied to `x [.., inputs]`: one fused operation over all rows
/// on `NdArray<f32>` (and its autodiff), `Linear::forward` elsewhere.
pub(crate) fn linear<B: Backend, const D: usize>(
    layer: &burn::nn::Linear<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        let bias = layer.bias.as_ref().map(|b| b.val());
        return super::ndarray::linear::linear(x, layer.weight.val(), bias);
    }
    layer.forward(x)
}

/// The first `keep` values of `x`'s last dimension (a mixed-memory CfC's
/// outputs, the `h` half of its states): one operation on `NdArray<f32>`
/// (and its autodiff) whose result has its own buffer, Burn's slice
/// elsewhere.
pub(crate) fn leading_columns<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    keep: usize,
) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        return super::ndarray::columns::leading_columns(x, keep);
    }
    let mut ranges = x.dims().map(|d| 0..d);
    ranges[D - 1] = 0..keep;
    x.slice(ranges)
}

/// A CfC step's gated mix: one fused operation on `NdArray<f32>` (and its
/// autodiff), Burn's tensor ops elsewhere. Heads `[batch, hidden]`,
/// `elapsed [batch, 1]`.
pub(crate) fn gated_mix<B: Backend>(
    heads: [Tensor<B, 2>; 4],
    elapsed: Tensor<B, 2>,
    mix: activation::GatedMix,
) -> Tensor<B, 2> {
    use burn::tensor::activation::tanh;
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        return super::ndarray::activation::gated_mix(heads, elapsed, mix);
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

/// `numerator / denominator`, elementwise, with an exact value and an exact
/// gradient on every backend and under every Burn feature.
///
/// Burn 0.21's division backward multiplies the numerator's gradient by
/// `recip(denominator)`, and burn-ndarray's default `simd` feature computes
/// that reciprocal with the approximate x86 instructions (3.9e-5 relative
/// error measured here): an LTC's gradients then miss the float64 truth by
/// up to 2e-3. The value is the true division; on an autodiff backend the
/// gradient is attached through `p - p` with `p = numerator * (1 /
/// denominator)` (the second `p` detached): exactly 0, with the gradient of
/// a product and of the reciprocal of a constant (`-1 / d²`, a true
/// division), both exact.
pub(crate) fn div<B: Backend, const D: usize>(
    numerator: Tensor<B, D>,
    denominator: Tensor<B, D>,
) -> Tensor<B, D> {
    let quotient = numerator.clone().detach() / denominator.clone().detach();
    if !B::ad_enabled(&numerator.device()) {
        return quotient;
    }
    let product = numerator * (denominator.ones_like() / denominator);
    quotient + (product.clone() - product.detach())
}

/// `softplus(x) = ln(1 + e^x)` as torch computes it, with an exact
/// gradient on every backend and under every Burn feature.
///
/// The value: `x` itself above 20, `ln_1p(e^x)` below, so that it is exact
/// and finite everywhere (Burn's `softplus` overflows to infinity above 88
/// and returns exactly 0 below -17); the fused kernel computes the same.
/// The gradient, `sigmoid(x)`, is attached through `(x - x) * sigmoid(x)`
/// with the second `x` and the sigmoid detached: a term that is exactly 0
/// and whose derivative is exactly the sigmoid. Differentiating `ln_1p`
/// instead would multiply by Burn's reciprocal, which burn-ndarray's
/// `simd` feature approximates (3.9e-5): an LTC's `w` gradients then missed
/// the float64 truth by 3e-5 (`cargo test --features burn-ndarray-defaults
/// --test parity`, a CI step). First derivatives only.
pub(crate) fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let constant = x.clone().detach();
    let linear = constant.clone().greater_elem(20.0);
    let value = constant
        .clone()
        .clamp_max(20.0)
        .exp()
        .log1p()
        .mask_where(linear, constant.clone());
    let slope = sigmoid(constant.clone());
    value + (x - constant) * slope
}

/// A dense CfC over a whole sequence as one fused operation
/// ([`super::cfc`]): the state after every step, `[batch, steps,
/// state_width]`; `None` where the backend has no fused kernel (the time
/// loop then runs the cell's steps).
pub(crate) fn cfc_sequence<B: Backend>(
    spec: &Arc<super::cfc::Spec>,
    extras: Extras,
    inputs: CfcInputs<B>,
) -> Option<Tensor<B, 3>> {
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        return Some(super::ndarray::cfc::fused_cfc_sequence(
            spec, extras, inputs,
        ));
    }
    let _ = (spec, extras, inputs);
    None
}

/// `tensor` with a buffer of its own where the backend is `NdArray<f32>`
/// (a copy of its values), `tensor` itself elsewhere: what a stepped model
/// returns while it keeps the same values as its state, so that the
/// caller's `into_data` takes the buffer instead of reading a shared one
/// value by value (`cfc_step_b1`, docs/performance.md).
pub(crate) fn own_buffer<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        let primitive = tensor.into_primitive().tensor();
        let owned = super::ndarray::own_buffer::<B>(primitive).unwrap_or_else(|same| same);
        return Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(owned));
    }
    tensor
}

/// A cell's synapse parameters gathered and constrained once for a
/// sequence of fused LTC steps ([`super::ltc::GatheredParams`]); `None`
/// where the backend has no fused kernel.
pub(crate) fn ltc_gather<B: Backend>(
    plan: &super::ltc::LtcPlan,
    implicit_constraints: bool,
    sensory: &[Tensor<B, 2>; 4],
    recurrent: &[Tensor<B, 2>; 4],
    neurons: &[Tensor<B, 1>; 3],
) -> Option<Arc<super::ltc::GatheredParams>> {
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        return Some(super::ndarray::ltc::gather_params(
            plan,
            implicit_constraints,
            sensory,
            recurrent,
            neurons,
        ));
    }
    let _ = (plan, implicit_constraints, sensory, recurrent, neurons);
    None
}

/// One LTC step as one fused operation ([`super::ltc`]): the next state
/// `[batch, N]`; `None` where the backend has no fused kernel.
pub(crate) fn ltc_step<B: Backend>(
    plan: &Arc<super::ltc::LtcPlan>,
    solver: super::ltc::Solver,
    inputs: super::LtcStepInputs<B>,
) -> Option<Tensor<B, 2>> {
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() {
        return Some(super::ndarray::ltc::fused_ltc_step(plan, solver, inputs));
    }
    let _ = (plan, solver, inputs);
    None
}

/// An LTC inference over whole sequences as one fused operation
/// ([`super::ltc::forward_sequences`]): the state after every step,
/// `[batch, steps, N]`; `None` where the backend has no fused kernel or
/// tracks gradients (the time loop then runs the fused steps).
pub(crate) fn ltc_sequence<B: Backend>(
    plan: &super::ltc::LtcPlan,
    solver: super::ltc::Solver,
    inputs: super::LtcSequenceInputs<'_, B>,
) -> Option<Tensor<B, 3>> {
    #[cfg(feature = "ndarray")]
    if super::fused_available::<B>() && !B::ad_enabled(&inputs.initial.device()) {
        return Some(super::ndarray::ltc::fused_ltc_sequence(
            plan, solver, inputs,
        ));
    }
    let _ = (plan, solver, inputs);
    None
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::prelude::*;

    use super::own_buffer;

    /// The values of a plain ndarray tensor, and where they live.
    fn buffer(tensor: &Tensor<NdArray<f32>, 2>) -> (Vec<f32>, *const f32) {
        let primitive = tensor.clone().into_primitive().tensor();
        let values = crate::kernels::ndarray::values(&primitive);
        (values.to_vec(), values.as_ptr())
    }

    #[test]
    fn a_shared_tensor_gets_a_copy_of_its_own() {
        let device = Default::default();
        let state = Tensor::<NdArray<f32>, 2>::from_floats([[1.0, -2.5, 3.0]], &device);
        let output = own_buffer(state.clone());
        let (ours, at) = buffer(&output);
        let (theirs, shared) = buffer(&state);
        assert_eq!(ours, theirs);
        assert_ne!(at, shared, "the output still shares the state's buffer");
        let data: Vec<f32> = output.into_data().to_vec().unwrap();
        assert_eq!(data, theirs);
    }

    /// Built as a primitive: a `Tensor<NdArray<f64>>` in this process
    /// would change the device's default float type for the other tests.
    #[test]
    fn a_float64_primitive_keeps_its_own_type() {
        use burn::backend::ndarray::NdArrayTensor;
        use burn::tensor::{DType, TensorData, TensorMetadata};
        let wide = NdArrayTensor::from_data(TensorData::new(vec![0.1f64, 2.0], [1, 2]));
        let kept = crate::kernels::ndarray::own_buffer::<NdArray<f32>>(wide)
            .expect_err("only float32 tensors are copied");
        assert_eq!(kept.dtype(), DType::F64);
        assert_eq!(kept.shape().to_vec(), [1, 2]);
    }

    #[test]
    fn a_tracked_tensor_stays_tracked() {
        type B = Autodiff<NdArray<f32>>;
        let device = Default::default();
        let x = Tensor::<B, 2>::from_floats([[1.0, 2.0]], &device).require_grad();
        let y = own_buffer(x.clone() * 3.0);
        let grads = y.sum().backward();
        let grad: Vec<f32> = x
            .grad(&grads)
            .expect("a gradient")
            .to_data()
            .to_vec()
            .unwrap();
        assert_eq!(grad, [3.0, 3.0]);
    }
}
