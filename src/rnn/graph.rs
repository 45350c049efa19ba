//! The parameters of a sequence's steps, joined to one autodiff graph.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;

/// Replaces every trainable parameter of the modules it maps by the same
/// values as a node of one fresh autodiff graph, for the steps of one
/// sequence; gradients reach the original parameters through it.
///
/// Burn 0.21's autodiff keeps a map from every node to its graph; each
/// trainable parameter starts a graph of its own, of which it is the first
/// node (the origin), and graphs merge when an operation's parents lie in
/// several. A merge re-points every node of the merged graph except its
/// origin, which keeps pointing to the emptied graph. A parameter used at
/// every step is such an origin: once the graph that absorbed it is merged
/// again (two graphs meet at some step), each later use of the parameter
/// finds the stale graph and merges the sequence's whole graph once more,
/// about half the time by moving it node by node. Training time then grows
/// with the square of the sequence length: a wired CfC on AutoNCP(64, 8),
/// batch 32, took 3.4 s a training step at 512 steps and 67 ms at 64
/// (`cargo bench --bench workloads -- --only wired_cfc_train_b32_l512`;
/// 0.24 s and 25 ms joined). Joined here, the steps' parameters are
/// ordinary nodes of one graph and no step merges it.
///
/// Each parameter becomes `p + z`, `z` a zero of that graph: the values
/// are unchanged (a `-0.0` becomes `0.0`). Parameters that take no
/// gradient are left as they are.
pub(super) struct JoinParameters<B: Backend> {
    zero: Tensor<B, 1>,
}

impl<B: Backend> JoinParameters<B> {
    pub(super) fn new(device: &B::Device) -> Self {
        Self {
            zero: Tensor::zeros([1], device).require_grad().mul_scalar(0.0),
        }
    }

    /// `module`, its trainable parameters joined.
    pub(super) fn join<M: Module<B>>(&mut self, module: M) -> M {
        module.map(self)
    }
}

impl<B: Backend> ModuleMapper<B> for JoinParameters<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = if tensor.is_require_grad() {
            tensor + self.zero.clone().reshape([1; D])
        } else {
            tensor
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::{Linear, LinearConfig};

    type AD = Autodiff<NdArray<f32>>;

    /// The joined copy computes the same values, and a backward pass through
    /// it gives the original parameters the gradients they get directly.
    #[test]
    fn joined_parameters_keep_values_and_pass_gradients_to_the_originals() {
        let device = Default::default();
        let linear: Linear<AD> = LinearConfig::new(3, 2).init(&device);
        let x = Tensor::<AD, 2>::from_floats([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], &device);
        let direct = linear.forward(x.clone());
        let grads_direct = direct.clone().powi_scalar(2).sum().backward();

        let joined = JoinParameters::new(&device).join(linear.clone());
        let through = joined.forward(x);
        assert_eq!(
            through.to_data().to_vec::<f32>().unwrap(),
            direct.to_data().to_vec::<f32>().unwrap(),
        );
        assert_eq!(
            joined.weight.id, linear.weight.id,
            "the parameter keeps its id"
        );
        let grads_joined = through.powi_scalar(2).sum().backward();
        let bias = linear.bias.as_ref().expect("a bias").val();
        let weight = linear.weight.val();
        assert_eq!(
            weight
                .grad(&grads_direct)
                .expect("a direct gradient")
                .to_data(),
            weight
                .grad(&grads_joined)
                .expect("a gradient through the join")
                .to_data(),
            "weight"
        );
        assert_eq!(
            bias.grad(&grads_direct)
                .expect("a direct gradient")
                .to_data(),
            bias.grad(&grads_joined)
                .expect("a gradient through the join")
                .to_data(),
            "bias"
        );
    }

    /// A parameter that takes no gradient is left as it is.
    #[test]
    fn parameters_without_gradients_are_left_alone() {
        let device = Default::default();
        let linear: Linear<AD> = LinearConfig::new(2, 2).init(&device).no_grad();
        let joined = JoinParameters::new(&device).join(linear.clone());
        assert!(!joined.weight.val().is_require_grad());
        assert_eq!(joined.weight.val().to_data(), linear.weight.val().to_data());
    }
}
