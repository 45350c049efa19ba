//! The leading columns of a tensor's last dimension
//! ([`crate::kernels::columns`]) as one Burn operation.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

use super::{Nd, available, custom_op, ndarray_tensor, values};
use crate::kernels::columns;

/// The backward node: keeps the columns kept and the input's shape.
#[derive(Debug)]
struct LeadingBackward;

impl Backward<Nd, 1> for LeadingBackward {
    type State = (usize, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Nd>(&ops.node);
        let (keep, shape) = ops.state;
        if let Some(node) = &ops.parents[0] {
            let (&width, leading) = shape.split_last().expect("rank at least 1");
            let rows = leading.iter().product();
            let g = columns::leading_backward(&values(&grad), rows, width, keep);
            grads.register::<Nd>(node.id, ndarray_tensor(g, shape));
        }
    }
}

/// The first `keep` values of `x`'s last dimension, as a tensor of their
/// own: `[.., keep]`, the rows split over the threads.
///
/// # Panics
/// Unless [`available::<B>()`](available) and `keep` is at most the last
/// dimension.
pub fn leading_columns<B: Backend, const D: usize>(x: Tensor<B, D>, keep: usize) -> Tensor<B, D> {
    assert!(
        available::<B>(),
        "the fused column copy runs on NdArray<f32> only"
    );
    let shape = x.dims().to_vec();
    let width = shape[D - 1];
    let mut out_shape = shape.clone();
    out_shape[D - 1] = keep;
    let primitives = [x.into_primitive().tensor()];
    let output = custom_op::<B, _, _>(primitives, LeadingBackward, |[x], tracked| {
        let y = columns::leading(&values(&x), width, keep);
        (
            ndarray_tensor(y, out_shape),
            tracked.then_some((keep, shape)),
        )
    });
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::Distribution;

    use super::*;

    type A = Autodiff<Nd>;

    /// Values and gradient the same bits as Burn's slice: a small tensor
    /// (one thread), a sequence's states (rows split over the threads),
    /// every column and none.
    #[test]
    fn matches_burns_slice_with_its_gradient() {
        let device = Default::default();
        for (shape, keep) in [
            ([2, 3, 5], 2),
            ([64, 64, 16], 8),
            ([4, 2, 6], 6),
            ([3, 2, 4], 0),
        ] {
            let uniform = Distribution::Uniform(-1.0, 1.0);
            let x = Tensor::<A, 3>::random(shape, uniform, &device).require_grad();
            let [b, t, _] = shape;
            let target = Tensor::<A, 3>::random([b, t, keep], uniform, &device);
            let run = |fused: bool| {
                let y = if fused {
                    leading_columns(x.clone(), keep)
                } else {
                    x.clone().slice([0..b, 0..t, 0..keep])
                };
                let grads = (y.clone() * target.clone()).sum().backward();
                // No gradient (Burn's empty slice) is a zero one.
                let grad = x
                    .grad(&grads)
                    .unwrap_or_else(|| Tensor::zeros(shape, &device))
                    .into_data();
                (y.inner().into_data(), grad)
            };
            let (ours, burns) = (run(true), run(false));
            assert_eq!(ours.0, burns.0, "{shape:?} keep {keep}: values");
            assert_eq!(ours.1, burns.1, "{shape:?} keep {keep}: gradient");
        }
    }

    #[test]
    #[should_panic(expected = "keeping 7 of 6 columns")]
    fn more_columns_than_there_are_is_refused() {
        let x = Tensor::<Nd, 2>::zeros([2, 6], &Default::default());
        let _ = leading_columns(x, 7);
    }
}
