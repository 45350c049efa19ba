//! Fused compute on plain slices, and its binding to Burn backends.
//!
//! The slice kernels know nothing of Burn, so a later Burn or a GPU kernel
//! reuses the same arithmetic:
//!
//! - [`ltc`]: one LTC time step over the existing synapses only (grouped by
//!   destination), forward and analytic backward, and an inference over
//!   whole sequences built from the same step;
//! - [`cfc`]: a dense CfC over a whole sequence (mixed memory included),
//!   forward and backpropagation through time;
//! - [`activation`]: vectorizable activations and their derivatives, the
//!   CfC's gated mix;
//! - [`scalar`]: the one branch-free `exp`, `sigmoid`, `tanh` and LeCun
//!   `tanh` every kernel uses, in plain `core` Rust (the exporter copies
//!   this file into generated code);
//! - [`dropout`]: dropout factors from a counter-based generator, drawn
//!   in parallel from one seed;
//! - [`linear`]: a linear layer over rows, split over the threads (the
//!   sequence modules' projection); [`columns`]: the leading columns of
//!   rows as a buffer of their own (a mixed-memory CfC's outputs);
//! - [`gemm`]: the matrix product (weights a sequence multiplies by at
//!   every step packed once, for an AVX2 or AVX-512 kernel); [`memory`]:
//!   large buffers on huge pages, and the pool that keeps a training
//!   step's for the next; [`parallel`]: how work is split over threads.
//!
//! Their binding to Burn:
//!
//! - `ndarray` (feature `ndarray`): each kernel as one Burn operation on
//!   `NdArray<f32>` and `Autodiff<NdArray<f32>>`, with the plumbing they
//!   share;
//! - [`tensor`]: what the cells call: the fused operation where the
//!   backend has one, Burn's tensor ops elsewhere, and the exact tensor
//!   arithmetic every backend runs.

// Without the `ndarray` feature nothing dispatches to the slice kernels
// (every backend runs the tensor ops); they still compile, unchanged.
#![cfg_attr(not(feature = "ndarray"), allow(dead_code))]

/// Defines a function whose body is compiled twice, for AVX2 with FMA
/// and for the baseline, each call running the wider the CPU has (as
/// [`vectorized`] runs a closure). A closure reaches the wide instructions
/// only where the compiler inlines it into `vectorized`, which it declines
/// for large bodies: a kernel's whole chunk of work is defined with this
/// instead. The results are the same on both paths (no operation is
/// contracted into an FMA).
///
/// Written `vectorized_fn! { avx512; fn .. }`, the body is compiled a
/// third time, for AVX-512, which runs where the CPU has it: for bodies
/// whose arithmetic is on whole arrays of sixteen floats (the LTC's
/// groups of samples, [`ltc`]) or on a layer's rows (the CfC's chunks,
/// [`cfc`]: 64 to 1024 values at Walker2d sizes; `walker_cfc_train_b256`
/// 45.0 to 43.8 ms, medians of five alternated rounds), not on short
/// slices of any length, whose remainders AVX-512 leaves to scalar loops
/// (see [`vectorized`]).
macro_rules! vectorized_fn {
    (avx512; $($function:tt)*) => {
        vectorized_fn!(
            @define ["avx512f,avx2,fma" has_avx512, "avx2,fma" has_avx2_fma] $($function)*
        );
    };
    // Internal: the function, trying each instruction set of the list in
    // turn, the baseline last.
    (
        @define [$($features:literal $check:ident),*]
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            // The inner functions repeat the signature, which the outer one
            // answers for (lints included).
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) -> $ret $body
            vectorized_fn!(@try [$($features $check),*] body($($arg: $ty),*) -> $ret);
            body($($arg),*)
        }
    };
    // Internal: returns from the enclosing function through `$kernel`
    // compiled with the first `$features` whose `kernels::$check()` says
    // the CPU has them.
    (@try [] $kernel:ident $args:tt -> $ret:ty) => {};
    (
        @try [$features:literal $check:ident $(, $more:literal $more_check:ident)*]
        $kernel:ident($($arg:ident: $ty:ty),*) -> $ret:ty
    ) => {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            fn wide($($arg: $ty),*) -> $ret {
                $kernel($($arg),*)
            }
            if $crate::kernels::$check() {
                // SAFETY: the CPU supports the features `wide` is compiled
                // for, checked just above.
                return unsafe { wide($($arg),*) };
            }
        }
        vectorized_fn!(@try [$($more $more_check),*] $kernel($($arg: $ty),*) -> $ret);
    };
    ($($function:tt)*) => {
        vectorized_fn!(@define ["avx2,fma" has_avx2_fma] $($function)*);
    };
}

pub(crate) mod activation;
pub(crate) mod cfc;
pub(crate) mod columns;
pub(crate) mod dropout;
pub(crate) mod gemm;
pub(crate) mod linear;
pub(crate) mod ltc;
pub(crate) mod memory;
#[cfg(feature = "ndarray")]
pub(crate) mod ndarray;
pub(crate) mod parallel;
pub(crate) mod scalar;
pub(crate) mod tensor;

/// Whether the cells run their fused kernels on backend `B`:
/// `NdArray<f32>` and `Autodiff<NdArray<f32>>` (any checkpointing), with
/// the `ndarray` feature. Every other backend runs the tensor-op paths,
/// which compute the same numbers (to float32 rounding).
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use ncps::cells::fused_available;
///
/// assert!(fused_available::<NdArray<f32>>());
/// assert!(fused_available::<Autodiff<NdArray<f32>>>());
/// assert!(!fused_available::<NdArray<f64>>());
/// ```
pub fn fused_available<B: burn::prelude::Backend>() -> bool {
    #[cfg(feature = "ndarray")]
    {
        ndarray::available::<B>()
    }
    #[cfg(not(feature = "ndarray"))]
    {
        false
    }
}

/// What a sequence brings to the fused CfC operation besides its tensors
/// (the cells fill it, [`tensor::cfc_sequence`] dispatches it, the
/// `ndarray` binding runs it): the valid lengths and the
/// dropout factors (`[steps, batch, width]` per dropout layer).
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// Valid steps of each sample.
    pub lengths: Option<Vec<usize>>,
    /// Dropout factors, one vector per layer with dropout.
    pub dropout: Vec<Vec<f32>>,
    /// The model's pool of trace buffers: the backward pass leaves them
    /// there, the next forward pass fills them again.
    pub buffers: std::sync::Arc<memory::Recycled<Vec<f32>>>,
}

/// The tensors of the operation, in its input order.
pub struct CfcInputs<B: burn::prelude::Backend> {
    /// `[batch, steps, inputs]`.
    pub x: burn::prelude::Tensor<B, 3>,
    /// `[batch, steps]`.
    pub elapsed: burn::prelude::Tensor<B, 2>,
    /// `[batch, hidden]`.
    pub h0: burn::prelude::Tensor<B, 2>,
    /// `[batch, hidden]` with mixed memory (else unused).
    pub c0: Option<burn::prelude::Tensor<B, 2>>,
    /// Every weight, flat, in [`cfc::Flat`]'s order.
    pub theta: burn::prelude::Tensor<B, 1>,
}

/// The tensors one fused LTC step reads, in the operation's input order:
/// the cell's parameters as they are (the kernel gathers the existing
/// synapses and applies the positivity constraint itself, so a sequence
/// adds one graph node per step and nothing per parameter).
pub struct LtcStepInputs<B: burn::prelude::Backend> {
    /// Mapped input `[batch, S]`.
    pub input: burn::prelude::Tensor<B, 2>,
    /// State `[batch, N]`.
    pub state: burn::prelude::Tensor<B, 2>,
    /// Elapsed time `[batch, 1]`.
    pub elapsed: burn::prelude::Tensor<B, 2>,
    /// `sensory_w`, `sensory_mu`, `sensory_sigma`, `sensory_erev`, `[S, N]`.
    pub sensory: [burn::prelude::Tensor<B, 2>; 4],
    /// `w`, `mu`, `sigma`, `erev`, `[N, N]`.
    pub recurrent: [burn::prelude::Tensor<B, 2>; 4],
    /// `cm`, `gleak`, `vleak`, `[N]`.
    pub neurons: [burn::prelude::Tensor<B, 1>; 3],
    /// The same parameters gathered and constrained once for the
    /// sequence ([`tensor::ltc_gather`]), if the caller did.
    pub gathered: Option<std::sync::Arc<ltc::GatheredParams>>,
}

/// The tensors of an LTC inference over whole sequences
/// ([`tensor::ltc_sequence`]), batch-first.
pub struct LtcSequenceInputs<'a, B: burn::prelude::Backend> {
    /// Mapped inputs `[batch, steps, S]`.
    pub input: burn::prelude::Tensor<B, 3>,
    /// Elapsed times `[batch, steps]`.
    pub elapsed: burn::prelude::Tensor<B, 2>,
    /// States before the first step `[batch, N]`.
    pub initial: burn::prelude::Tensor<B, 2>,
    /// `vleak [N]`.
    pub vleak: burn::prelude::Tensor<B, 1>,
    /// The other parameters, gathered for the sequence.
    pub gathered: &'a ltc::GatheredParams,
    /// Valid steps of each sample.
    pub lengths: Option<&'a [usize]>,
}

/// `softplus(x) = ln(1 + e^x)` as torch computes it: `x` itself above 20
/// (exact and finite everywhere). The fused LTC kernel constrains its
/// positive parameters with it, and the exporter writes them through it.
pub(crate) fn softplus(x: f32) -> f32 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

/// The derivative of [`softplus`]: the logistic sigmoid (the kernels' one
/// [`scalar::sigmoid`], which is exactly 1 above 17 in float32, where
/// torch's softplus turns linear at 20).
pub(crate) fn softplus_grad(x: f32) -> f32 {
    scalar::sigmoid(x)
}

/// Runs `f` compiled for AVX2 with FMA (eight lanes) where the CPU has
/// them, the baseline (four) elsewhere. `f`'s loops must be branch-free
/// arithmetic to vectorize, and the compiler must inline `f` for the
/// instructions to reach it (it does for short closures; a kernel's whole
/// chunk of work is a [`vectorized_fn!`] instead); the results are the
/// same either way (no operation is contracted into an FMA). Not AVX-512:
/// its sixteen lanes, unrolled four times, leave slices shorter than 64
/// (the LTC kernel maps a neuron's synapses) to the scalar remainder loop;
/// `ltc_infer_b32_l64` ran 30 % slower with it. (The LTC's groups of
/// samples, whose values are whole sixteen-float arrays, and the CfC's
/// chunks, whose slices are a layer's rows, opt in: `vectorized_fn! {
/// avx512; .. }`; long slices take [`map_into`].)
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { run_avx2(f) };
    }
    f()
}

/// Whether the CPU runs AVX2 and FMA, the one check behind [`vectorized`]
/// and [`vectorized_fn!`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether the CPU runs AVX-512F as well as AVX2 and FMA: the check behind
/// `vectorized_fn! { avx512; .. }` and the matrix product's AVX-512 tile.
/// Unit tests make it answer no with `NARROWER` (defined for tests only).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx512() -> bool {
    #[cfg(test)]
    if NARROWER.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    has_avx2_fma() && std::arch::is_x86_feature_detected!("avx512f")
}

/// Set by a unit test to run the AVX2 paths on a CPU with AVX-512 and
/// compare them with the AVX-512 ones (the same operations, so the same
/// bits). Process-wide: tests that run meanwhile take the AVX2 paths,
/// which give what they would have given.
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) static NARROWER: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Applies `f` to every value in place, [`vectorized`].
#[inline(always)]
pub(crate) fn map_in_place(values: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    vectorized(|| values.iter_mut().for_each(|x| *x = f(*x)));
}

/// Writes `f` of every value of `src` into `dst`, on the widest vectors
/// the CPU has, AVX-512 included: for long slices (a chunk's rows of a
/// layer, thousands of values), whose scalar remainder is a small share.
/// The same bits on every path, as [`vectorized`].
#[inline(always)]
pub(crate) fn map_into(src: &[f32], dst: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    assert_eq!(
        src.len(),
        dst.len(),
        "map_into: source and destination differ in length"
    );
    let run = || dst.iter_mut().zip(src).for_each(|(y, &z)| *y = f(z));
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU supports AVX-512F, AVX2 and FMA, checked just above.
        return unsafe { run_avx512(run) };
    }
    vectorized(run)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
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
            let ours = super::tensor::activate(ours_x.clone(), op);
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
            let wide = super::tensor::activate(wide_x.clone(), op);
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
            let ours = super::tensor::gated_mix(
                [0, 1, 2, 3].map(|i| ours_in[i].clone()),
                ours_in[4].clone(),
                mix,
            );
            let grads = (ours.clone() * ours.clone()).sum().backward();
            let wide_in: Vec<Tensor<Wide, 2>> = heads.iter().chain([&elapsed]).map(wide).collect();
            let truth = super::tensor::gated_mix(
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
