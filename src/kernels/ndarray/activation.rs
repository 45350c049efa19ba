//! The CfC and LSTM activations and the CfC's gated mix
//! ([`crate::kernels::activation`]) as Burn operations.

use std::borrow::Cow;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use burn::tensor::{TensorMetadata, TensorPrimitive};

use super::{Nd, available, custom_op, ndarray_tensor, values};
use crate::kernels::activation::{GatedMix, MixTrace, Unary};

/// The backward node of an elementwise activation: keeps the outputs.
#[derive(Debug)]
struct UnaryBackward;

impl Backward<Nd, 1> for UnaryBackward {
    type State = (Unary, NdArrayTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Nd>(&ops.node);
        let (op, output) = ops.state;
        let mut grad = values(&grad).into_owned();
        op.backward(&values(&output), &mut grad);
        if let Some(node) = &ops.parents[0] {
            grads.register::<Nd>(node.id, ndarray_tensor(grad, output.shape().to_vec()));
        }
    }
}

/// An activation computed by [`super::activation`] as one Burn operation
/// (with its backward under autodiff).
///
/// # Panics
/// Unless [`available::<B>()`](available).
pub fn unary<B: Backend, const D: usize>(tensor: Tensor<B, D>, op: Unary) -> Tensor<B, D> {
    assert!(
        available::<B>(),
        "the fused activations run on NdArray<f32> only"
    );
    let shape = tensor.dims().to_vec();
    let apply = |input: &NdArrayTensor| {
        let mut out = values(input).into_owned();
        op.forward(&mut out);
        ndarray_tensor(out, shape.clone())
    };
    let primitives = [tensor.into_primitive().tensor()];
    let output = custom_op::<B, _, _>(primitives, UnaryBackward, |[input], tracked| {
        let output = apply(&input);
        let state = tracked.then(|| (op, output.clone()));
        (output, state)
    });
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The backward node of a CfC's gated mix.
#[derive(Debug)]
struct MixBackward;

impl Backward<Nd, 5> for MixBackward {
    type State = (
        GatedMix,
        Arc<MixTrace>,
        NdArrayTensor,
        NdArrayTensor,
        Vec<usize>,
    );

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Nd>(&ops.node);
        let (mix, trace, time_a, elapsed, shape) = ops.state;
        let g = mix.backward(&trace, &values(&time_a), &values(&elapsed), &values(&grad));
        let [ff1, ff2, a, b] = g.heads;
        let all = [ff1, ff2, a, b, g.elapsed];
        for (i, (parent, grad)) in ops.parents.iter().zip(all).enumerate() {
            if let Some(node) = parent {
                let shape = if i == 4 {
                    vec![shape[0], 1]
                } else {
                    shape.clone()
                };
                grads.register::<Nd>(node.id, ndarray_tensor(grad, shape));
            }
        }
    }
}

/// A CfC step's gated mix ([`GatedMix`]) as one Burn operation: heads
/// `ff1`, `ff2`, `time_a`, `time_b` `[batch, hidden]`, `elapsed [batch, 1]`.
///
/// # Panics
/// Unless [`available::<B>()`](available).
pub fn gated_mix<B: Backend>(
    heads: [Tensor<B, 2>; 4],
    elapsed: Tensor<B, 2>,
    mix: GatedMix,
) -> Tensor<B, 2> {
    assert!(available::<B>(), "the fused mix runs on NdArray<f32> only");
    let shape = heads[0].dims().to_vec();
    let [ff1, ff2, a, b] = heads;
    let primitives = [ff1, ff2, a, b, elapsed].map(|t| t.into_primitive().tensor());
    let run = |inner: &[NdArrayTensor; 5], keep: bool| {
        let v: Vec<Cow<'_, [f32]>> = inner.iter().map(values).collect();
        mix.forward([&v[0], &v[1], &v[2], &v[3]], &v[4], keep)
    };
    let output = custom_op::<B, _, _>(primitives, MixBackward, |inner, tracked| {
        let (out, trace) = run(&inner, tracked);
        let state = trace.map(|trace| {
            let [_, _, time_a, _, elapsed] = inner;
            (mix, Arc::new(trace), time_a, elapsed, shape.clone())
        });
        (ndarray_tensor(out, shape.clone()), state)
    });
    Tensor::from_primitive(TensorPrimitive::Float(output))
}
