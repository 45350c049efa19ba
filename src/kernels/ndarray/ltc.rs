//! One LTC step ([`crate::kernels::ltc`]) as a Burn operation.

use std::borrow::Cow;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{TensorMetadata, TensorPrimitive};

use super::{Nd, available, custom_op, ndarray_primitive, ndarray_tensor, values};
use crate::kernels::ltc::{self, Batch, SynapseParams, SynapseRows, Trace};
use crate::kernels::{softplus, softplus_grad};

/// Inputs of the op: `input`, `state`, `elapsed`, 4 sensory and 4 recurrent
/// synapse parameter vectors, `cm`, `gleak`, `vleak`.
const INPUTS: usize = 14;

/// The synapse plans of one cell, built once from its masks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LtcPlan {
    /// Neuron → neuron synapses by destination.
    pub recurrent: SynapseRows,
    /// Input → neuron synapses by destination.
    pub sensory: SynapseRows,
    /// Flat index `src · N + dest` of each recurrent synapse in `[N, N]`.
    pub recurrent_flat: Vec<usize>,
    /// Flat index `src · N + dest` of each sensory synapse in `[S, N]`.
    pub sensory_flat: Vec<usize>,
}

impl LtcPlan {
    /// The plans of a `[N, N]` and a `[S, N]` 0/1 mask.
    pub fn new(mask: &[f32], sensory_mask: &[f32], neurons: usize) -> Self {
        let inputs = sensory_mask.len() / neurons.max(1);
        let (recurrent, recurrent_flat) = SynapseRows::from_mask(mask, neurons, neurons);
        let (sensory, sensory_flat) = SynapseRows::from_mask(sensory_mask, inputs, neurons);
        Self {
            recurrent,
            sensory,
            recurrent_flat,
            sensory_flat,
        }
    }
}

/// The tensors one fused step reads, in the op's input order: the cell's
/// parameters as they are (the kernel gathers the existing synapses and
/// applies the positivity constraint itself, so a sequence adds one graph
/// node per step and nothing per parameter).
pub struct LtcStepInputs<B: Backend> {
    /// Mapped input `[batch, S]`.
    pub input: Tensor<B, 2>,
    /// State `[batch, N]`.
    pub state: Tensor<B, 2>,
    /// Elapsed time `[batch, 1]`.
    pub elapsed: Tensor<B, 2>,
    /// `sensory_w`, `sensory_mu`, `sensory_sigma`, `sensory_erev`, `[S, N]`.
    pub sensory: [Tensor<B, 2>; 4],
    /// `w`, `mu`, `sigma`, `erev`, `[N, N]`.
    pub recurrent: [Tensor<B, 2>; 4],
    /// `cm`, `gleak`, `vleak`, `[N]`.
    pub neurons: [Tensor<B, 1>; 3],
    /// The same parameters gathered and constrained by [`gather_params`],
    /// when the caller did that once for the sequence.
    pub gathered: Option<Arc<GatheredParams>>,
}

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

/// Solver settings of the op.
#[derive(Clone, Copy, Debug)]
pub struct Solver {
    /// Steps per time step.
    pub unfolds: usize,
    /// Added to every denominator.
    pub epsilon: f32,
    /// `w`, `sensory_w`, `cm` and `gleak` pass through a softplus.
    pub implicit_constraints: bool,
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

/// The kernel's parameters: every synapse's values gathered from the
/// matrices, the positive ones constrained.
struct Gathered {
    sensory: [Vec<f32>; 4],
    recurrent: [Vec<f32>; 4],
    cm: Vec<f32>,
    gleak: Vec<f32>,
}

impl Gathered {
    /// From the parameters in the op's input order (`values[3..14]`).
    fn new(plan: &LtcPlan, implicit_constraints: bool, params: &[&[f32]]) -> Self {
        let positive = |x: f32| {
            if implicit_constraints { softplus(x) } else { x }
        };
        let param = |at: usize| params[at - at::SENSORY];
        let gather = |first: usize, flat: &[usize]| -> [Vec<f32>; 4] {
            std::array::from_fn(|i| {
                let matrix = param(first + i);
                let values = flat.iter().map(|&f| matrix[f]);
                if i == 0 {
                    values.map(positive).collect()
                } else {
                    values.collect()
                }
            })
        };
        Self {
            sensory: gather(at::SENSORY, &plan.sensory_flat),
            recurrent: gather(at::RECURRENT, &plan.recurrent_flat),
            cm: param(at::CM).iter().copied().map(positive).collect(),
            gleak: param(at::GLEAK).iter().copied().map(positive).collect(),
        }
    }
}

/// The constrained synapse parameters of a cell, gathered once per sequence
/// (by `LTCCell::prepare`) so that the steps skip the gathers and the
/// softplus.
#[derive(Debug)]
pub struct GatheredParams(Gathered);

impl std::fmt::Debug for Gathered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gathered")
            .field("synapses", &self.recurrent[0].len())
            .field("sensory_synapses", &self.sensory[0].len())
            .finish()
    }
}

/// Gathers and constrains a cell's synapse parameters for a sequence.
///
/// # Panics
/// Unless [`available::<B>()`](fused_ltc_available).
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
    let params: Vec<&[f32]> = v.iter().map(|c| &**c).collect();
    Arc::new(GatheredParams(Gathered::new(
        plan,
        implicit_constraints,
        &params,
    )))
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
        Some(GatheredParams(g)) => g,
        None => {
            let params: Vec<&[f32]> = v[at::SENSORY..].iter().map(|c| &**c).collect();
            computed = Gathered::new(plan, solver.implicit_constraints, &params);
            &computed
        }
    };
    fn synapses(p: &[Vec<f32>; 4]) -> SynapseParams<'_> {
        SynapseParams {
            w: &p[0],
            mu: &p[1],
            sigma: &p[2],
            erev: &p[3],
        }
    }
    let step = ltc::Step {
        recurrent: &plan.recurrent,
        sensory: &plan.sensory,
        sensory_params: synapses(&g.sensory),
        recurrent_params: synapses(&g.recurrent),
        cm: &g.cm,
        gleak: &g.gleak,
        vleak: &v[at::VLEAK],
        unfolds: solver.unfolds,
        epsilon: solver.epsilon,
    };
    let batch = Batch {
        inputs: &v[at::INPUT],
        states: &v[at::STATE],
        elapsed: &v[at::ELAPSED],
    };
    f(&step, batch, &v)
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
        let grad_out = values(&grad_out).into_owned();
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
    }
}

/// One LTC step through the fused kernel: the next state `[batch, N]`.
///
/// # Panics
/// Unless [`available::<B>()`](fused_ltc_available).
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
            |step, batch, _| ltc::forward(step, batch, keep_traces),
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
