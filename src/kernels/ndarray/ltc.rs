//! The LTC kernel ([`crate::kernels::ltc`]) as Burn operations: one step
//! (with its backward), and an inference over whole sequences.

use std::borrow::Cow;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{TensorMetadata, TensorPrimitive};

use super::{Nd, available, custom_op, into_type, ndarray_primitive, ndarray_tensor, values};
use crate::kernels::ltc::{self, Batch, GatheredParams, LtcPlan, Solver, Trace};
use crate::kernels::softplus_grad;
use crate::kernels::{LtcSequenceInputs, LtcStepInputs};

/// Inputs of the op: `input`, `state`, `elapsed`, 4 sensory and 4 recurrent
/// synapse parameter vectors, `cm`, `gleak`, `vleak`.
const INPUTS: usize = 14;

impl<B: Backend> LtcStepInputs<B> {
    fn into_primitives(self) -> [FloatTensor<B>; INPUTS] {
        let [sw, smu, ssigma, serev] = self.sensory;
        let [w, mu, sigma, erev] = self.recurrent;
        let [cm, gleak, vleak] = self.neurons;
        let _ = self.gathered;
        let p1 = |t: Tensor<B, 1>| t.into_primitive().tensor();
        let p2 = |t: Tensor<B, 2>| t.into_primitive().tensor();
        [
            p2(self.input),
            p2(self.state),
            p2(self.elapsed),
            p2(sw),
            p2(smu),
            p2(ssigma),
            p2(serev),
            p2(w),
            p2(mu),
            p2(sigma),
            p2(erev),
            p1(cm),
            p1(gleak),
            p1(vleak),
        ]
    }
}

/// Index of each input in the op's input order.
mod at {
    pub const INPUT: usize = 0;
    pub const STATE: usize = 1;
    pub const ELAPSED: usize = 2;
    pub const SENSORY: usize = 3;
    pub const RECURRENT: usize = 7;
    pub const CM: usize = 11;
    pub const GLEAK: usize = 12;
    pub const VLEAK: usize = 13;
}

/// Gathers and constrains a cell's synapse parameters for a sequence.
///
/// # Panics
/// Unless [`available::<B>()`](available).
pub fn gather_params<B: Backend>(
    plan: &LtcPlan,
    implicit_constraints: bool,
    sensory: &[Tensor<B, 2>; 4],
    recurrent: &[Tensor<B, 2>; 4],
    neurons: &[Tensor<B, 1>; 3],
) -> Arc<GatheredParams> {
    let tensors: Vec<NdArrayTensor> = sensory
        .iter()
        .chain(recurrent)
        .map(|t| ndarray_primitive::<B>(t.clone().into_primitive().tensor()))
        .chain(
            neurons[..2]
                .iter()
                .map(|t| ndarray_primitive::<B>(t.clone().into_primitive().tensor())),
        )
        .collect();
    let v: Vec<Cow<'_, [f32]>> = tensors.iter().map(values).collect();
    let params: [&[f32]; 10] = std::array::from_fn(|i| &*v[i]);
    Arc::new(GatheredParams::new(plan, implicit_constraints, &params))
}

/// Runs `f` on the kernel's view of the 14 inputs.
fn with_step<R>(
    plan: &LtcPlan,
    solver: Solver,
    inputs: &[NdArrayTensor; INPUTS],
    gathered: Option<&GatheredParams>,
    f: impl FnOnce(&ltc::Step<'_>, Batch<'_>, &[Cow<'_, [f32]>]) -> R,
) -> R {
    let v: Vec<Cow<'_, [f32]>> = inputs.iter().map(values).collect();
    let computed;
    let g = match gathered {
        Some(g) => g,
        None => {
            let params: [&[f32]; 10] = std::array::from_fn(|i| &*v[at::SENSORY + i]);
            computed = GatheredParams::new(plan, solver.implicit_constraints, &params);
            &computed
        }
    };
    let step = step_view(plan, solver, g, &v[at::VLEAK]);
    let batch = Batch {
        inputs: &v[at::INPUT],
        states: &v[at::STATE],
        elapsed: &v[at::ELAPSED],
    };
    f(&step, batch, &v)
}

/// The kernel's view of a cell: its plan, gathered parameters and `vleak`.
fn step_view<'a>(
    plan: &'a LtcPlan,
    solver: Solver,
    g: &'a GatheredParams,
    vleak: &'a [f32],
) -> ltc::Step<'a> {
    let [sensory_params, recurrent_params] = g.synapses();
    ltc::Step {
        recurrent: &plan.recurrent,
        sensory: &plan.sensory,
        sensory_params,
        recurrent_params,
        cm: &g.cm,
        gleak: &g.gleak,
        vleak,
        unfolds: solver.unfolds,
        epsilon: solver.epsilon,
    }
}

/// What the backward node keeps.
#[derive(Clone, Debug)]
struct Saved {
    plan: Arc<LtcPlan>,
    gathered: Option<Arc<GatheredParams>>,
    solver: Solver,
    inputs: Arc<[NdArrayTensor; INPUTS]>,
    traces: Arc<Vec<Trace>>,
}

#[derive(Debug)]
struct LtcStepBackward;

/// Scatters per-synapse gradients into a zero matrix of `len` entries,
/// times the positivity constraint's derivative where `raw` is given.
fn scatter(grad: &[f32], flat: &[usize], len: usize, raw: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![0.0f32; len];
    for (&g, &f) in grad.iter().zip(flat) {
        out[f] = match raw {
            Some(raw) => g * softplus_grad(raw[f]),
            None => g,
        };
    }
    out
}

impl Backward<Nd, INPUTS> for LtcStepBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, INPUTS>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_out = grads.consume::<Nd>(&ops.node);
        let saved = ops.state;
        // Read in place (a copy cost a fresh allocation and its page
        // faults at every step: 4 MB at Walker2d's CfC sizes).
        let grad_out = values(&grad_out);
        let plan = &saved.plan;
        let implicit = saved.solver.implicit_constraints;
        let all: [Vec<f32>; INPUTS] = with_step(
            plan,
            saved.solver,
            &saved.inputs,
            saved.gathered.as_deref(),
            |step, batch, v| {
                let g = ltc::backward(step, batch, &saved.traces, &grad_out);
                let p = g.params;
                let constrained = |i: usize| implicit.then_some(&*v[i]);
                let matrix = |grad: &[f32], i: usize, flat: &[usize], raw: Option<&[f32]>| {
                    scatter(grad, flat, v[i].len(), raw)
                };
                let (sf, rf) = (&plan.sensory_flat, &plan.recurrent_flat);
                let neuron = |grad: Vec<f32>, i: usize| match constrained(i) {
                    Some(raw) => grad
                        .iter()
                        .zip(raw)
                        .map(|(g, &r)| g * softplus_grad(r))
                        .collect(),
                    None => grad,
                };
                [
                    g.inputs,
                    g.states,
                    g.elapsed,
                    matrix(&p.sensory.w, at::SENSORY, sf, constrained(at::SENSORY)),
                    matrix(&p.sensory.mu, at::SENSORY + 1, sf, None),
                    matrix(&p.sensory.sigma, at::SENSORY + 2, sf, None),
                    matrix(&p.sensory.erev, at::SENSORY + 3, sf, None),
                    matrix(
                        &p.recurrent.w,
                        at::RECURRENT,
                        rf,
                        constrained(at::RECURRENT),
                    ),
                    matrix(&p.recurrent.mu, at::RECURRENT + 1, rf, None),
                    matrix(&p.recurrent.sigma, at::RECURRENT + 2, rf, None),
                    matrix(&p.recurrent.erev, at::RECURRENT + 3, rf, None),
                    neuron(p.cm, at::CM),
                    neuron(p.gleak, at::GLEAK),
                    p.vleak,
                ]
            },
        );
        for ((parent, grad), input) in ops.parents.iter().zip(all).zip(saved.inputs.iter()) {
            if let Some(node) = parent {
                grads.register::<Nd>(node.id, ndarray_tensor(grad, input.shape().to_vec()));
            }
        }
        // The last user of the traces: their buffers go to the next step.
        if let Ok(traces) = Arc::try_unwrap(saved.traces) {
            saved.plan.traces.recycle(traces);
        }
    }
}

/// One LTC step through the fused kernel: the next state `[batch, N]`.
///
/// # Panics
/// Unless [`available::<B>()`](available).
pub fn fused_ltc_step<B: Backend>(
    plan: &Arc<LtcPlan>,
    solver: Solver,
    inputs: LtcStepInputs<B>,
) -> Tensor<B, 2> {
    assert!(
        available::<B>(),
        "the fused LTC step runs on NdArray<f32> only"
    );
    let [batch, _] = inputs.state.dims();
    let neurons = plan.recurrent.destinations();
    let shape = vec![batch, neurons];
    let gathered = inputs.gathered.clone();
    let forward = |inner: &[NdArrayTensor; INPUTS], keep_traces: bool| {
        with_step(
            plan,
            solver,
            inner,
            gathered.as_deref(),
            |step, batch, _| {
                if keep_traces {
                    ltc::forward(step, batch, Some(&plan.traces))
                } else {
                    // Inference: no training step will need the buffers.
                    plan.traces.clear();
                    ltc::forward(step, batch, None)
                }
            },
        )
    };
    let output = custom_op::<B, _, _>(
        inputs.into_primitives(),
        LtcStepBackward,
        |inner, tracked| {
            let (next, traces) = forward(&inner, tracked);
            let saved = tracked.then(|| Saved {
                plan: Arc::clone(plan),
                gathered: gathered.clone(),
                solver,
                inputs: Arc::new(inner),
                traces: Arc::new(traces),
            });
            (ndarray_tensor(next, shape), saved)
        },
    );
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// An LTC inference over whole sequences through the fused kernel
/// ([`ltc::forward_sequences`]): the state after every step, `[batch,
/// steps, N]`. Untracked: for `NdArray<f32>` itself (no autodiff).
///
/// # Panics
/// Unless `B` is `NdArray<f32>`.
pub fn fused_ltc_sequence<B: Backend>(
    plan: &LtcPlan,
    solver: Solver,
    inputs: LtcSequenceInputs<'_, B>,
) -> Tensor<B, 3> {
    assert!(
        available::<B>() && !B::ad_enabled(&inputs.initial.device()),
        "the fused LTC sequence runs on NdArray<f32> without autodiff"
    );
    let [batch, steps, _] = inputs.input.dims();
    let [input, elapsed, initial, vleak] = [
        inputs.input.into_primitive().tensor(),
        inputs.elapsed.into_primitive().tensor(),
        inputs.initial.into_primitive().tensor(),
        inputs.vleak.into_primitive().tensor(),
    ]
    .map(ndarray_primitive::<B>);
    let vleak = values(&vleak);
    let step = step_view(plan, solver, inputs.gathered, &vleak);
    // Inference: no training step will need the trace buffers.
    plan.traces.clear();
    let states = ltc::forward_sequences(
        &step,
        ltc::Sequences {
            inputs: &values(&input),
            elapsed: &values(&elapsed),
            initial: &values(&initial),
            lengths: inputs.lengths,
        },
    );
    let neurons = step.cm.len();
    let output = ndarray_tensor(states, vec![batch, steps, neurons]);
    Tensor::from_primitive(TensorPrimitive::Float(into_type(output)))
}
