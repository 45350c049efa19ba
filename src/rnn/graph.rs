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
/// with the square of the sequence length: a wired CfC on AutoNCP(64, 8)
/// took 1.3 ms a step at 64 steps and 13.6 ms at 1024 (one thread,
/// forward and backward). Joined here, the steps' parameters are ordinary
/// nodes of one graph and no step merges it.
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
