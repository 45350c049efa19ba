//! A dense CfC over a whole sequence ([`crate::kernels::cfc`]) as one Burn
//! operation: the forward pass keeps what backpropagation through time
//! needs, and one registered backward node computes every gradient.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use burn::tensor::{TensorMetadata, TensorPrimitive};

use super::{Nd, available, custom_op, ndarray_tensor, values};
use crate::kernels::cfc::{self, Flat, Sequence, Spec, Trace, Wanted};
use crate::kernels::{CfcInputs, Extras};

#[derive(Clone, Debug)]
struct Saved {
    spec: Arc<Spec>,
    extras: Arc<Extras>,
    inputs: Arc<[NdArrayTensor; 5]>,
    trace: Arc<Trace>,
    batch: usize,
    steps: usize,
}

/// Runs `f` on the kernel's view of the inputs.
fn with_sequence<R>(
    spec: &Spec,
    extras: &Extras,
    inputs: &[NdArrayTensor; 5],
    batch: usize,
    steps: usize,
    f: impl FnOnce(&Flat<'_>, &Sequence<'_>) -> R,
) -> R {
    let [x, elapsed, h0, c0, theta] = inputs.each_ref().map(values);
    let flat = Flat::new(spec, &theta);
    let dropout: Vec<&[f32]> = extras.dropout.iter().map(Vec::as_slice).collect();
    let c0: &[f32] = if spec.forget_bias.is_some() { &c0 } else { &[] };
    let seq = Sequence {
        batch,
        steps,
        x: &x,
        elapsed: &elapsed,
        h0: &h0,
        c0,
        lengths: extras.lengths.as_deref(),
        dropout: &dropout,
    };
    f(&flat, &seq)
}

#[derive(Debug)]
struct CfcBackward;

impl Backward<Nd, 5> for CfcBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_out = grads.consume::<Nd>(&ops.node);
        let Saved {
            spec,
            extras,
            inputs,
            trace,
            batch,
            steps,
        } = ops.state;
        // Read in place (a copy cost a fresh allocation and its page
        // faults at every step: 4 MB at Walker2d's CfC sizes).
        let grad_out = values(&grad_out);
        // The backward pass writes gradients over the trace: it owns it
        // (a copy only if the state was ever shared).
        let trace = Arc::try_unwrap(trace).unwrap_or_else(|shared| Trace::clone(&shared));
        // The inputs' and elapsed times' gradients only where tracked.
        let wanted = Wanted {
            inputs: ops.parents[0].is_some(),
            elapsed: ops.parents[1].is_some(),
        };
        let g = with_sequence(&spec, &extras, &inputs, batch, steps, |flat, seq| {
            cfc::backward(
                &spec,
                &flat.params(),
                seq,
                trace,
                &grad_out,
                wanted,
                &extras.buffers,
            )
        });
        let all = [
            g.x,
            g.elapsed,
            Some(g.h0),
            Some(g.c0),
            Some(Flat::gradient(&spec, g.params)),
        ];
        for ((parent, grad), input) in ops.parents.iter().zip(all).zip(inputs.iter()) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<Nd>(node.id, ndarray_tensor(grad, input.shape().to_vec()));
            }
        }
    }
}

/// Runs a dense CfC over a sequence: the state after every step, `[batch,
/// steps, state_width]` (`h`, then `c` with mixed memory).
///
/// # Panics
/// Unless [`available::<B>()`](available).
pub fn fused_cfc_sequence<B: Backend>(
    spec: &Arc<Spec>,
    extras: Extras,
    inputs: CfcInputs<B>,
) -> Tensor<B, 3> {
    assert!(available::<B>(), "the fused CfC runs on NdArray<f32> only");
    let [batch, steps, _] = inputs.x.dims();
    let device = inputs.x.device();
    let c0 = inputs.c0.unwrap_or_else(|| Tensor::zeros([1, 1], &device));
    let p3 = |t: Tensor<B, 3>| t.into_primitive().tensor();
    let p2 = |t: Tensor<B, 2>| t.into_primitive().tensor();
    let primitives = [
        p3(inputs.x),
        p2(inputs.elapsed),
        p2(inputs.h0),
        p2(c0),
        inputs.theta.into_primitive().tensor(),
    ];
    let extras = Arc::new(extras);
    let shape = vec![batch, steps, spec.state_width()];
    let output = custom_op::<B, _, _>(primitives, CfcBackward, |inner, tracked| {
        let (states, trace) = with_sequence(spec, &extras, &inner, batch, steps, |flat, seq| {
            cfc::forward(spec, &flat.params(), seq, tracked, &extras.buffers)
        });
        let saved = trace.map(|trace| Saved {
            spec: Arc::clone(spec),
            extras: Arc::clone(&extras),
            inputs: Arc::new(inner),
            trace: Arc::new(trace),
            batch,
            steps,
        });
        (ndarray_tensor(states, shape), saved)
    });
    Tensor::from_primitive(TensorPrimitive::Float(output))
}
