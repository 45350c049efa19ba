//! The linear layer over rows ([`crate::kernels::linear`]) as one Burn
//! operation.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use burn::tensor::{TensorMetadata, TensorPrimitive};

use super::{Nd, available, custom_op, ndarray_tensor, values};
use crate::kernels::linear::{self, Shape};

/// The backward node of a linear layer: keeps its input and weight.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Nd, 3> for LinearBackward {
    type State = (NdArrayTensor, NdArrayTensor, Shape);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Nd>(&ops.node);
        let (x, weight, shape) = ops.state;
        let x_shape = x.shape().to_vec();
        let g = linear::backward(&values(&x), &values(&weight), &values(&grad), shape);
        let all = [
            (g.x, x_shape),
            (g.weight, vec![shape.inputs, shape.outputs]),
            (g.bias, vec![shape.outputs]),
        ];
        for (parent, (grad, shape)) in ops.parents.iter().zip(all) {
            if let Some(node) = parent {
                grads.register::<Nd>(node.id, ndarray_tensor(grad, shape));
            }
        }
    }
}

/// `x [.., inputs] · weight [inputs, outputs] + bias [outputs]` as one
/// Burn operation, the rows (every leading dimension) split over the
/// threads: `[.., outputs]`. Without a bias, a zero one (untracked).
///
/// # Panics
/// Unless [`available::<B>()`](available) and the shapes agree.
pub fn linear<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    assert!(
        available::<B>(),
        "the fused linear layer runs on NdArray<f32> only"
    );
    let [inputs, outputs] = weight.dims();
    let mut out_shape = x.dims().to_vec();
    assert_eq!(
        out_shape.last(),
        Some(&inputs),
        "linear: the input's last dimension is not the weight's rows"
    );
    let rows = out_shape[..D - 1].iter().product();
    *out_shape.last_mut().expect("rank at least 1") = outputs;
    let shape = Shape {
        rows,
        inputs,
        outputs,
    };
    let bias = bias.unwrap_or_else(|| Tensor::zeros([outputs], &weight.device()));
    let primitives = [
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.into_primitive().tensor(),
    ];
    let output = custom_op::<B, _, _>(primitives, LinearBackward, |[x, weight, bias], tracked| {
        let y = linear::forward(&values(&x), &values(&weight), Some(&values(&bias)), shape);
        let state = tracked.then_some((x, weight, shape));
        (ndarray_tensor(y, out_shape), state)
    });
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::Distribution;

    use super::*;

    type A = Autodiff<Nd>;

    fn assert_close<const D: usize>(ours: Tensor<Nd, D>, theirs: Tensor<Nd, D>, what: &str) {
        assert_eq!(ours.dims(), theirs.dims(), "{what}: shape");
        let ours = ours.into_data().to_vec::<f32>().expect("f32");
        let theirs = theirs.into_data().to_vec::<f32>().expect("f32");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    /// The values and the three gradients of [`linear`] against Burn's
    /// `linear` (what `Linear::forward` runs) on an input `x_shape`.
    fn check<const D: usize>(x_shape: [usize; D], outputs: usize, with_bias: bool) {
        let device = Default::default();
        let uniform = Distribution::Uniform(-1.0, 1.0);
        let inputs = x_shape[D - 1];
        let x = Tensor::<A, D>::random(x_shape, uniform, &device).require_grad();
        let weight = Tensor::<A, 2>::random([inputs, outputs], uniform, &device).require_grad();
        let bias =
            with_bias.then(|| Tensor::<A, 1>::random([outputs], uniform, &device).require_grad());
        let mut y_shape = x_shape;
        y_shape[D - 1] = outputs;
        let target = Tensor::<A, D>::random(y_shape, uniform, &device);
        let run = |fused: bool| {
            let args = (x.clone(), weight.clone(), bias.clone());
            let y = if fused {
                linear(args.0, args.1, args.2)
            } else {
                burn::tensor::module::linear(args.0, args.1, args.2)
            };
            let grads = (y.clone() * target.clone()).sum().backward();
            let grad_bias = bias
                .as_ref()
                .map(|b| b.grad(&grads).expect("bias gradient"));
            (
                y.inner(),
                x.grad(&grads).expect("input gradient"),
                weight.grad(&grads).expect("weight gradient"),
                grad_bias,
            )
        };
        let (ours, theirs) = (run(true), run(false));
        assert_close(ours.0, theirs.0, "y");
        assert_close(ours.1, theirs.1, "grad x");
        assert_close(ours.2, theirs.2, "grad weight");
        assert_eq!(
            ours.3.is_some(),
            with_bias,
            "a bias gradient where there is a bias"
        );
        if let (Some(a), Some(b)) = (ours.3, theirs.3) {
            assert_close(a, b, "grad bias");
        }
    }

    #[test]
    fn matches_burns_linear_with_its_gradients() {
        // A sequence's outputs (rows split over the threads), a small one
        // without bias, a step's outputs.
        check([5, 64, 64], 17, true);
        check([3, 9, 4], 2, false);
        check([7, 6], 17, true);
    }
}
