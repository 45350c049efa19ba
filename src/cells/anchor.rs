//! Per-sequence tensors derived from parameters, kept in one autodiff
//! graph.

use burn::prelude::*;

/// The graph that a cell's per-sequence tensors (masked weights, `|w_tau|`,
/// broadcastable rows) join when [`RecurrentCell::prepare`](super::RecurrentCell::prepare)
/// derives them.
///
/// Burn 0.21's autodiff keeps a map from every node to its graph and merges
/// graphs when an operation's parents lie in several. A merge re-points
/// every node of the merged graph except its first (its origin), which
/// keeps pointing to the emptied graph. An operation on parameters alone
/// starts a graph and is its origin: a tensor derived that way and used at
/// every step makes each step after two merges merge the sequence's whole
/// graph again, about half the time by moving it, so that training time
/// grows with the square of the sequence length (a wired CfC, 1.3 ms a
/// step at 64 steps, 13.6 ms at 1024). Joined to the anchor's graph, whose
/// origin nothing else uses, the derived tensors are never origins.
///
/// Without autodiff the anchor is a zero and joining adds it: `x + 0`,
/// which changes no value (a `-0.0` becomes `0.0`).
#[derive(Clone, Debug)]
pub(crate) struct GraphAnchor<B: Backend>(Tensor<B, 1>);

impl<B: Backend> GraphAnchor<B> {
    pub(crate) fn new(device: &B::Device) -> Self {
        // An operation on a tracked leaf: the first node of a graph.
        Self(Tensor::zeros([1], device).require_grad().mul_scalar(0.0))
    }

    /// `t` as a node of the anchor's graph, with the same values.
    pub(crate) fn join<const D: usize>(&self, t: Tensor<B, D>) -> Tensor<B, D> {
        t + self.0.clone().reshape([1; D])
    }
}
