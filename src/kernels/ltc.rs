//! One LTC time step over the existing synapses only, forward and analytic
//! backward, on plain `f32` slices.
//!
//! For one sample with mapped input `x [S]`, state `v [N]` and elapsed time
//! `t`, every synapse `k` (from `src` to `dest`) is
//! `a_k = w_k · sigmoid(sigma_k · (v_src - mu_k))`, and `ode_unfolds` fused
//! semi-implicit Euler steps give
//!
//! ```text
//! h  = t / unfolds
//! v' = (cm · v + h · (gleak · vleak + Σ a·erev + Σ a_s·erev_s))
//!    / (cm + h · (gleak + Σ a + Σ a_s + epsilon))
//! ```
//!
//! with the sensory synapses `a_s` evaluated once on `x`. This is
//! upstream's `cm_t = cm / h` update with numerator and denominator
//! multiplied by `h`: the same function for `t > 0`, and for `t = 0` it
//! leaves the state unchanged (the ODE's answer) where `cm / 0` gives NaN.
//!
//! SynapseRows are grouped by destination ([`SynapseRows`], compressed rows), so
//! a neuron reads only its own inputs: the cost is `batch · unfolds · nnz`,
//! not `batch · unfolds · N²` as a dense evaluation.
//!
//! The backward pass is the exact derivative of the same arithmetic: it
//! replays the unfolds in reverse from the [`Trace`] the forward pass kept
//! (each unfold's potentials, denominators and synapse activations).
//!
//! [`Step::forward`] and [`Step::backward`] run one sample. A thread with
//! [`MIN_GROUP`] samples or more runs them in groups of sixteen instead,
//! one float per sample in each value ([`lanes`]), so that the loops over
//! synapses vectorize across samples; the states are the same bit for bit.
//! [`forward`] and [`backward`] run a batch's step; [`forward_sequences`]
//! runs whole sequences without a trace (inference), each thread taking
//! its samples through every step.

/// SynapseRows grouped by destination neuron (compressed sparse rows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynapseRows {
    /// SynapseRows of destination `d` are `offsets[d]..offsets[d + 1]`.
    pub offsets: Vec<usize>,
    /// Presynaptic index of each synapse (neuron or input).
    pub sources: Vec<usize>,
}

impl SynapseRows {
    /// The synapses `(src, dest)` of a `rows x cols` matrix, grouped by
    /// destination, sources ascending; also returns each synapse's flat
    /// index `src * cols + dest` into the matrix.
    ///
    /// # Panics
    /// When a synapse lies outside the matrix.
    pub fn from_synapses(
        synapses: impl IntoIterator<Item = (usize, usize)>,
        rows: usize,
        cols: usize,
    ) -> (Self, Vec<usize>) {
        let mut by_dest: Vec<Vec<usize>> = vec![Vec::new(); cols];
        for (src, dest) in synapses {
            assert!(
                src < rows && dest < cols,
                "synapse ({src}, {dest}) outside a {rows}x{cols} matrix"
            );
            by_dest[dest].push(src);
        }
        let mut offsets = Vec::with_capacity(cols + 1);
        let (mut sources, mut flat) = (Vec::new(), Vec::new());
        offsets.push(0);
        for (dest, mut srcs) in by_dest.into_iter().enumerate() {
            srcs.sort_unstable();
            flat.extend(srcs.iter().map(|&src| src * cols + dest));
            sources.extend(srcs);
            offsets.push(sources.len());
        }
        (Self { offsets, sources }, flat)
    }

    /// The synapses of a `rows x cols` 0/1 mask (`mask[src * cols + dest]`),
    /// as [`from_synapses`](Self::from_synapses).
    pub fn from_mask(mask: &[f32], rows: usize, cols: usize) -> (Self, Vec<usize>) {
        assert_eq!(mask.len(), rows * cols, "mask is not {rows}x{cols}");
        let synapses = (0..rows * cols)
            .filter(|&i| mask[i] != 0.0)
            .map(|i| (i / cols, i % cols));
        Self::from_synapses(synapses, rows, cols)
    }

    /// Number of synapses.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Number of destination neurons.
    pub fn destinations(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// The four parameters of every synapse, one value per synapse in the
/// order of a [`SynapseRows`] plan (`w` already constrained positive).
#[derive(Clone, Copy, Debug)]
pub struct SynapseParams<'a> {
    /// Conductances.
    pub w: &'a [f32],
    /// Sigmoid centres.
    pub mu: &'a [f32],
    /// Sigmoid slopes.
    pub sigma: &'a [f32],
    /// Reversal potentials.
    pub erev: &'a [f32],
}

impl SynapseParams<'_> {
    /// `[w, mu, sigma, erev]` of synapse `k`.
    #[inline(always)]
    fn at(&self, k: usize) -> [f32; 4] {
        [self.w[k], self.mu[k], self.sigma[k], self.erev[k]]
    }
}

/// The synapse plans of one cell, built once from its wiring, and the
/// trace buffers its training steps recycle.
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
    /// Trace buffers of the last backward pass, for the next forward pass.
    pub traces: TracePool,
}

impl LtcPlan {
    /// The plans of a wiring's `[N, N]` adjacency and `[S, N]` sensory
    /// matrices.
    pub fn new(adjacency: &SynapseMatrix, sensory: &SynapseMatrix) -> Self {
        let pairs = |m: &SynapseMatrix| {
            let synapses = m.synapses().map(|(src, dest, _)| (src, dest));
            SynapseRows::from_synapses(synapses, m.rows(), m.cols())
        };
        let (recurrent, recurrent_flat) = pairs(adjacency);
        let (sensory, sensory_flat) = pairs(sensory);
        Self {
            recurrent,
            sensory,
            recurrent_flat,
            sensory_flat,
            traces: TracePool::default(),
        }
    }
}

/// Group traces ([`lanes`]) a backward pass is done with, kept for the next
/// training step's forward pass to fill again ([`Recycled`]).
///
/// A training step of a large dense wiring keeps gigabytes of traces
/// (FullyConnected(128) at batch 128 and 64 steps: 3.3 GB), which the
/// next step faulted in again when freed (`walker_ltc_train_b128`:
/// docs/performance.md); a forward pass that keeps no traces (inference,
/// validation) empties the pool.
pub type TracePool = Recycled<lanes::LaneTrace>;

impl TracePool {
    /// Keeps the group traces of a finished backward pass.
    pub fn recycle(&self, traces: Vec<Trace>) {
        self.keep(traces.into_iter().filter_map(|trace| match trace {
            Trace::Lanes(group) => Some(*group),
            Trace::Sample(_) => None,
        }));
    }
}

/// Solver settings of a step.
#[derive(Clone, Copy, Debug)]
pub struct Solver {
    /// Steps per time step.
    pub unfolds: usize,
    /// Added to every denominator.
    pub epsilon: f32,
    /// `w`, `sensory_w`, `cm` and `gleak` pass through a softplus.
    pub implicit_constraints: bool,
}

/// A cell's parameters as the kernel reads them: every synapse's values
/// gathered from the matrices in plan order, the positive ones
/// constrained. Gathered once per sequence (by `LTCCell::prepare`) so that
/// the steps skip the gathers and the softplus.
pub struct GatheredParams {
    /// `w` (constrained), `mu`, `sigma`, `erev` of every sensory synapse.
    pub sensory: [Vec<f32>; 4],
    /// The same for the recurrent synapses.
    pub recurrent: [Vec<f32>; 4],
    /// `cm`, constrained.
    pub cm: Vec<f32>,
    /// `gleak`, constrained.
    pub gleak: Vec<f32>,
}

impl GatheredParams {
    /// From the sensory `w, mu, sigma, erev` (`[S, N]` each), the
    /// recurrent ones (`[N, N]`), `cm` and `gleak` (`[N]`), in that order.
    pub fn new(plan: &LtcPlan, implicit_constraints: bool, params: &[&[f32]; 10]) -> Self {
        let positive = |x: f32| {
            if implicit_constraints {
                super::softplus(x)
            } else {
                x
            }
        };
        let gather = |first: usize, flat: &[usize]| -> [Vec<f32>; 4] {
            std::array::from_fn(|i| {
                let values = flat.iter().map(|&f| params[first + i][f]);
                if i == 0 {
                    values.map(positive).collect()
                } else {
                    values.collect()
                }
            })
        };
        Self {
            sensory: gather(0, &plan.sensory_flat),
            recurrent: gather(4, &plan.recurrent_flat),
            cm: params[8].iter().copied().map(positive).collect(),
            gleak: params[9].iter().copied().map(positive).collect(),
        }
    }

    /// The kernel's view of the synapses, `sensory` then `recurrent`.
    pub fn synapses(&self) -> [SynapseParams<'_>; 2] {
        [&self.sensory, &self.recurrent].map(|p| SynapseParams {
            w: &p[0],
            mu: &p[1],
            sigma: &p[2],
            erev: &p[3],
        })
    }
}

impl std::fmt::Debug for GatheredParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatheredParams")
            .field("synapses", &self.recurrent[0].len())
            .field("sensory_synapses", &self.sensory[0].len())
            .finish()
    }
}

/// Everything a step reads besides the sample: plans, parameters, solver
/// settings.
#[derive(Clone, Copy, Debug)]
pub struct Step<'a> {
    /// Neuron → neuron synapses.
    pub recurrent: &'a SynapseRows,
    /// Input → neuron synapses.
    pub sensory: &'a SynapseRows,
    /// Parameters of the recurrent synapses.
    pub recurrent_params: SynapseParams<'a>,
    /// Parameters of the sensory synapses.
    pub sensory_params: SynapseParams<'a>,
    /// Membrane capacitance `[N]` (constrained positive).
    pub cm: &'a [f32],
    /// Leak conductance `[N]` (constrained positive).
    pub gleak: &'a [f32],
    /// Leak potential `[N]`.
    pub vleak: &'a [f32],
    /// Solver steps per time step.
    pub unfolds: usize,
    /// Added to every denominator.
    pub epsilon: f32,
}

/// What the backward pass of a batch needs from its forward pass: one
/// trace per sample or per group of samples advanced together, in batch
/// order.
#[derive(Clone, Debug)]
pub enum Trace {
    /// One sample's.
    Sample(SampleTrace),
    /// A group's ([`lanes`]).
    Lanes(Box<lanes::LaneTrace>),
}

impl Trace {
    /// Samples it covers.
    fn samples(&self) -> usize {
        match self {
            Trace::Sample(_) => 1,
            Trace::Lanes(group) => group.count,
        }
    }
}

/// What the backward pass of one sample needs from its forward pass.
#[derive(Clone, Debug, Default)]
pub struct SampleTrace {
    /// Potentials before each unfold and after the last: `(unfolds + 1) · N`.
    potentials: Vec<f32>,
    /// Denominator of each unfold: `unfolds · N`.
    denominators: Vec<f32>,
    /// Sigmoid of every recurrent synapse at each unfold: `unfolds · nnz`.
    activations: Vec<f32>,
    /// Sigmoid of every sensory synapse: `nnz_sensory`.
    sensory_activations: Vec<f32>,
    /// `gleak · vleak + Σ a_s·erev_s`: `N`.
    numerator_leak: Vec<f32>,
    /// `gleak + Σ a_s + epsilon`: `N`.
    denominator_leak: Vec<f32>,
}

mod lanes;

use super::memory::Recycled;
use super::scalar::sigmoid;
use crate::wirings::SynapseMatrix;
use lanes::{GroupGrads, LANES, LaneGrads, Lanes};

/// The sigmoid of every synapse of a group for the presynaptic values
/// `pre`: `out[k] = sigmoid(sigma[k] · (pre[src[k]] - mu[k]))`. The gather
/// and the sigmoids are separate loops, so the sigmoids vectorize.
fn activations(synapses: &SynapseRows, p: SynapseParams<'_>, pre: &[f32], out: &mut [f32]) {
    let params = p.sigma.iter().zip(p.mu).zip(&synapses.sources);
    for (z, ((&sigma, &mu), &src)) in out.iter_mut().zip(params) {
        *z = sigma * (pre[src] - mu);
    }
    super::map_in_place(out, sigmoid);
}

/// Per destination: `Σ w·s·erev` and `Σ w·s` over its synapses.
fn weighted_sums(
    synapses: &SynapseRows,
    p: SynapseParams<'_>,
    activations: &[f32],
    destination: usize,
) -> (f32, f32) {
    let row = synapses.offsets[destination]..synapses.offsets[destination + 1];
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for ((&w, &erev), &s) in p.w[row.clone()]
        .iter()
        .zip(&p.erev[row.clone()])
        .zip(&activations[row])
    {
        let a = w * s;
        num += a * erev;
        den += a;
    }
    (num, den)
}

/// One synapse's part of the backward pass into a destination whose sums
/// `Σ a·erev` and `Σ a` (`a = w·s`, `s = sigmoid(sigma·(pre - mu))`) have
/// the gradients `grad_num` and `grad_den`: adds the synapse's parameter
/// gradients to `grads = [w, mu, sigma, erev]` and returns `grad_pre` plus
/// the gradient of its presynaptic value `pre`. Recurrent and sensory
/// synapses, a sample ([`Step::backward`]) and a lane of a group run this
/// one function, so a sample's gradients have the same bits either way.
#[inline(always)]
fn back_synapse(
    [w, mu, sigma, erev]: [f32; 4],
    s: f32,
    pre: f32,
    (grad_num, grad_den): (f32, f32),
    grads: &mut [f32; 4],
    grad_pre: f32,
) -> f32 {
    let a = w * s;
    let grad_a = grad_num * erev + grad_den;
    grads[3] += grad_num * a;
    grads[0] += grad_a * s;
    let grad_z = grad_a * w * s * (1.0 - s);
    grads[2] += grad_z * (pre - mu);
    grads[1] -= grad_z * sigma;
    grad_pre + grad_z * sigma
}

impl Step<'_> {
    fn neurons(&self) -> usize {
        self.cm.len()
    }

    /// Checks that the slices fit the plans (once per call, not per sample).
    fn check(&self) {
        let n = self.neurons();
        assert_eq!(self.recurrent.destinations(), n, "recurrent plan size");
        assert_eq!(self.sensory.destinations(), n, "sensory plan size");
        for (what, len, expected) in [
            ("gleak", self.gleak.len(), n),
            ("vleak", self.vleak.len(), n),
            ("w", self.recurrent_params.w.len(), self.recurrent.len()),
            ("mu", self.recurrent_params.mu.len(), self.recurrent.len()),
            (
                "sigma",
                self.recurrent_params.sigma.len(),
                self.recurrent.len(),
            ),
            (
                "erev",
                self.recurrent_params.erev.len(),
                self.recurrent.len(),
            ),
            ("sensory_w", self.sensory_params.w.len(), self.sensory.len()),
            (
                "sensory_mu",
                self.sensory_params.mu.len(),
                self.sensory.len(),
            ),
            (
                "sensory_sigma",
                self.sensory_params.sigma.len(),
                self.sensory.len(),
            ),
            (
                "sensory_erev",
                self.sensory_params.erev.len(),
                self.sensory.len(),
            ),
        ] {
            assert_eq!(
                len, expected,
                "{what} has {len} values, the plan {expected}"
            );
        }
    }

    /// Advances one sample: `input [S]`, `state [N]` → `out [N]`, keeping
    /// the trace when one is given.
    pub fn forward(
        &self,
        input: &[f32],
        state: &[f32],
        elapsed: f32,
        out: &mut [f32],
        mut trace: Option<&mut SampleTrace>,
    ) {
        let n = self.neurons();
        let (rec, sen) = (self.recurrent, self.sensory);
        // Leak and sensory terms, constant over the unfolds.
        let mut sensory = vec![0.0f32; sen.len()];
        activations(sen, self.sensory_params, input, &mut sensory);
        let mut numerator_leak = vec![0.0f32; n];
        let mut denominator_leak = vec![0.0f32; n];
        let h = elapsed / self.unfolds as f32;
        for d in 0..n {
            let (num, den) = weighted_sums(sen, self.sensory_params, &sensory, d);
            numerator_leak[d] = self.gleak[d] * self.vleak[d] + num;
            denominator_leak[d] = self.gleak[d] + den + self.epsilon;
        }
        if let Some(t) = trace.as_deref_mut() {
            t.sensory_activations = sensory;
            t.potentials.clear();
            t.potentials.extend_from_slice(state);
            t.denominators.clear();
            t.activations.clear();
            t.activations.resize(self.unfolds * rec.len(), 0.0);
            t.numerator_leak.clone_from(&numerator_leak);
            t.denominator_leak.clone_from(&denominator_leak);
        }
        let mut v = state.to_vec();
        let mut act = vec![0.0f32; rec.len()];
        for unfold in 0..self.unfolds {
            activations(rec, self.recurrent_params, &v, &mut act);
            for d in 0..n {
                let (num, den) = weighted_sums(rec, self.recurrent_params, &act, d);
                let denominator = self.cm[d] + h * (denominator_leak[d] + den);
                out[d] = (self.cm[d] * v[d] + h * (numerator_leak[d] + num)) / denominator;
                if let Some(t) = trace.as_deref_mut() {
                    t.denominators.push(denominator);
                }
            }
            v.copy_from_slice(&out[..n]);
            if let Some(t) = trace.as_deref_mut() {
                t.potentials.extend_from_slice(&v);
                t.activations[unfold * rec.len()..(unfold + 1) * rec.len()].copy_from_slice(&act);
            }
        }
        if self.unfolds == 0 {
            out.copy_from_slice(state);
        }
    }

    /// Back-propagates `grad_out [N]` (the gradient of the loss with
    /// respect to the step's output state) through one sample's step.
    /// Adds the parameters' gradients to `grads` and writes the sample's
    /// input, state and elapsed-time gradients.
    // The synapse index `k` addresses parallel arrays: a range loop reads best.
    #[allow(clippy::needless_range_loop)]
    pub fn backward(
        &self,
        input: &[f32],
        elapsed: f32,
        trace: &SampleTrace,
        grad_out: &[f32],
        grads: &mut Grads,
        sample: SampleGrads<'_>,
    ) {
        let n = self.neurons();
        let (rec, sen) = (self.recurrent, self.sensory);
        let (p, ps) = (self.recurrent_params, self.sensory_params);
        let mut grad_v = grad_out.to_vec();
        let mut grad_prev = vec![0.0f32; n];
        let mut grad_numerator_leak = vec![0.0f32; n];
        let mut grad_denominator_leak = vec![0.0f32; n];
        // h = t / unfolds
        let h = elapsed / self.unfolds as f32;
        let mut grad_h = 0.0f32;
        for unfold in (0..self.unfolds).rev() {
            let v = &trace.potentials[unfold * n..(unfold + 1) * n];
            let v_next = &trace.potentials[(unfold + 1) * n..(unfold + 2) * n];
            let denominators = &trace.denominators[unfold * n..(unfold + 1) * n];
            let activations = &trace.activations[unfold * rec.len()..(unfold + 1) * rec.len()];
            grad_prev.fill(0.0);
            for d in 0..n {
                // v' = num / den, num = cm·v + h·(numerator_leak + Σ a·erev),
                // den = cm + h·(denominator_leak + Σ a)
                let grad_num = grad_v[d] / denominators[d];
                let grad_den = -grad_num * v_next[d];
                grad_prev[d] += grad_num * self.cm[d];
                grads.cm[d] += grad_num * v[d] + grad_den;
                let (grad_num_h, grad_den_h) = (grad_num * h, grad_den * h);
                grad_numerator_leak[d] += grad_num_h;
                grad_denominator_leak[d] += grad_den_h;
                let (mut synaptic_num, mut synaptic_den) = (0.0f32, 0.0f32);
                for k in rec.offsets[d]..rec.offsets[d + 1] {
                    let (src, s) = (rec.sources[k], activations[k]);
                    let a = p.w[k] * s;
                    synaptic_num += a * p.erev[k];
                    synaptic_den += a;
                    let g = &mut grads.recurrent;
                    let mut sums = [g.w[k], g.mu[k], g.sigma[k], g.erev[k]];
                    grad_prev[src] = back_synapse(
                        p.at(k),
                        s,
                        v[src],
                        (grad_num_h, grad_den_h),
                        &mut sums,
                        grad_prev[src],
                    );
                    [g.w[k], g.mu[k], g.sigma[k], g.erev[k]] = sums;
                }
                grad_h += grad_num * (trace.numerator_leak[d] + synaptic_num)
                    + grad_den * (trace.denominator_leak[d] + synaptic_den);
            }
            std::mem::swap(&mut grad_v, &mut grad_prev);
        }
        sample.state.copy_from_slice(&grad_v);
        *sample.elapsed = grad_h / self.unfolds as f32;

        for d in 0..n {
            // numerator_leak = gleak·vleak + Σ a_s·erev_s
            // denominator_leak = gleak + Σ a_s + epsilon
            let (gnl, gdl) = (grad_numerator_leak[d], grad_denominator_leak[d]);
            grads.gleak[d] += gnl * self.vleak[d] + gdl;
            grads.vleak[d] += gnl * self.gleak[d];
        }

        sample.input.fill(0.0);
        for d in 0..n {
            let grad_sums = (grad_numerator_leak[d], grad_denominator_leak[d]);
            for k in sen.offsets[d]..sen.offsets[d + 1] {
                let (src, s) = (sen.sources[k], trace.sensory_activations[k]);
                let g = &mut grads.sensory;
                let mut sums = [g.w[k], g.mu[k], g.sigma[k], g.erev[k]];
                sample.input[src] = back_synapse(
                    ps.at(k),
                    s,
                    input[src],
                    grad_sums,
                    &mut sums,
                    sample.input[src],
                );
                [g.w[k], g.mu[k], g.sigma[k], g.erev[k]] = sums;
            }
        }
    }
}

/// Gradients of one synapse group's parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynapseGrads {
    /// Of the conductances.
    pub w: Vec<f32>,
    /// Of the sigmoid centres.
    pub mu: Vec<f32>,
    /// Of the sigmoid slopes.
    pub sigma: Vec<f32>,
    /// Of the reversal potentials.
    pub erev: Vec<f32>,
}

impl SynapseGrads {
    fn zeros(len: usize) -> Self {
        Self {
            w: vec![0.0; len],
            mu: vec![0.0; len],
            sigma: vec![0.0; len],
            erev: vec![0.0; len],
        }
    }

    fn add(&mut self, other: &Self) {
        for (a, b) in [
            (&mut self.w, &other.w),
            (&mut self.mu, &other.mu),
            (&mut self.sigma, &other.sigma),
            (&mut self.erev, &other.erev),
        ] {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        }
    }
}

/// Gradients of a step's parameters, summed over the samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grads {
    /// Recurrent synapses.
    pub recurrent: SynapseGrads,
    /// Sensory synapses.
    pub sensory: SynapseGrads,
    /// Membrane capacitance.
    pub cm: Vec<f32>,
    /// Leak conductance.
    pub gleak: Vec<f32>,
    /// Leak potential.
    pub vleak: Vec<f32>,
}

impl Grads {
    /// Zero gradients for a step's plans.
    pub fn zeros(step: &Step<'_>) -> Self {
        let n = step.neurons();
        Self {
            recurrent: SynapseGrads::zeros(step.recurrent.len()),
            sensory: SynapseGrads::zeros(step.sensory.len()),
            cm: vec![0.0; n],
            gleak: vec![0.0; n],
            vleak: vec![0.0; n],
        }
    }

    /// Adds another partial sum (of other samples).
    pub fn add(&mut self, other: &Self) {
        self.recurrent.add(&other.recurrent);
        self.sensory.add(&other.sensory);
        for (a, b) in [
            (&mut self.cm, &other.cm),
            (&mut self.gleak, &other.gleak),
            (&mut self.vleak, &other.vleak),
        ] {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        }
    }
}

/// Where one sample's input, state and elapsed-time gradients go.
#[derive(Debug)]
pub struct SampleGrads<'a> {
    /// `[S]`.
    pub input: &'a mut [f32],
    /// `[N]`.
    pub state: &'a mut [f32],
    /// The elapsed time's.
    pub elapsed: &'a mut f32,
}

/// A batch: `inputs [batch · S]`, `states [batch · N]`, `elapsed [batch]`,
/// row-major.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Mapped inputs.
    pub inputs: &'a [f32],
    /// States before the step.
    pub states: &'a [f32],
    /// Elapsed time of each sample.
    pub elapsed: &'a [f32],
}

impl Batch<'_> {
    fn size(&self) -> usize {
        self.elapsed.len()
    }
}

/// Samples of a thread's share from which they run in groups of [`LANES`]
/// ([`lanes`]) rather than one by one: a group costs what it costs full,
/// about five samples one by one (one thread, `RAYON_NUM_THREADS=1 cargo
/// bench --bench scaling -- --only
/// ltc_infer_b4_l64,ltc_train_b4_l64,ltc_infer_b16_l64,ltc_train_b16_l64`,
/// two rounds, 2026-12-05: one by one 2.09-2.15 and 11.3-11.5 ms at batch
/// 4, 8.4-8.6 and 35.1-35.2 ms at batch 16; as one group 2.77 and 11.9-12.0
/// ms at batch 4, 2.87 and 12.5-12.7 ms at batch 16).
const MIN_GROUP: usize = 6;

/// Samples per thread below which a batch runs on the calling thread.
const SAMPLES_PER_THREAD: usize = 8;

/// The forward pass of a batch: returns the next states `[batch · N]` and,
/// with a pool, the traces for the backward pass (group traces recycled
/// from the pool where it has some). A thread's chunk of at least
/// [`MIN_GROUP`] samples runs in groups of [`LANES`] ([`lanes`]).
pub fn forward(
    step: &Step<'_>,
    batch: Batch<'_>,
    keep_traces: Option<&TracePool>,
) -> (Vec<f32>, Vec<Trace>) {
    step.check();
    let (n, s, size) = (
        step.neurons(),
        step.sensory_params_inputs(batch),
        batch.size(),
    );
    let parts = super::parallel::for_chunks(size, SAMPLES_PER_THREAD, |first, count| {
        let mut out = vec![0.0f32; count * n];
        let mut lanes = (count >= MIN_GROUP).then(|| Lanes::new(step, s));
        let traces = step_samples(
            step,
            batch,
            first..first + count,
            &mut out,
            lanes.as_mut(),
            keep_traces,
        );
        (out, traces)
    });
    let mut out = Vec::with_capacity(size * n);
    let mut traces = Vec::new();
    for (o, t) in parts {
        out.extend(o);
        traces.extend(t);
    }
    (out, traces)
}

/// Advances the `samples` of `batch` one step, writing their next states
/// to `out [samples · N]`: in groups of [`LANES`] through `lanes` when
/// given, else one by one. Returns their traces when given a pool.
fn step_samples(
    step: &Step<'_>,
    batch: Batch<'_>,
    samples: std::ops::Range<usize>,
    out: &mut [f32],
    lanes: Option<&mut Lanes>,
    keep_traces: Option<&TracePool>,
) -> Vec<Trace> {
    let (n, s) = (step.neurons(), batch.inputs.len() / batch.size());
    let first = samples.start;
    let mut traces = Vec::new();
    if let Some(lanes) = lanes {
        for group in samples.clone().step_by(LANES) {
            let end = (group + LANES).min(samples.end);
            let written = &mut out[(group - first) * n..(end - first) * n];
            let trace = lanes.forward(step, batch, s, group..end, written, keep_traces);
            traces.extend(trace.map(|t| Trace::Lanes(Box::new(t))));
        }
        return traces;
    }
    for (i, b) in samples.enumerate() {
        let mut trace = keep_traces.map(|_| SampleTrace::default());
        step.forward(
            &batch.inputs[b * s..(b + 1) * s],
            &batch.states[b * n..(b + 1) * n],
            batch.elapsed[b],
            &mut out[i * n..(i + 1) * n],
            trace.as_mut(),
        );
        traces.extend(trace.map(Trace::Sample));
    }
    traces
}

/// A batch of whole sequences for [`forward_sequences`], row-major and
/// batch-first.
#[derive(Clone, Copy, Debug)]
pub struct Sequences<'a> {
    /// Mapped inputs `[batch · steps · S]`.
    pub inputs: &'a [f32],
    /// Elapsed time of every step `[batch · steps]`.
    pub elapsed: &'a [f32],
    /// States before the first step `[batch · N]`.
    pub initial: &'a [f32],
    /// Valid steps of each sample (`[batch]`, each in `1..=steps`): after
    /// them a sample's state stays as it was. `None`: all steps are valid.
    pub lengths: Option<&'a [usize]>,
}

/// Inference over whole sequences: the state after every step, `[batch ·
/// steps · N]`. Each thread takes its samples through every step, so a
/// sequence costs one hand-off between threads rather than one per step;
/// the states are those of [`forward`] step by step, bit for bit (the
/// same per-sample arithmetic in the same groups).
pub fn forward_sequences(step: &Step<'_>, sequences: Sequences<'_>) -> Vec<f32> {
    step.check();
    let n = step.neurons();
    let size = sequences.initial.len() / n.max(1);
    assert_eq!(
        sequences.initial.len(),
        size * n,
        "initial states are not [batch, {n}]"
    );
    assert!(
        size > 0 && sequences.elapsed.len().is_multiple_of(size),
        "elapsed times are not [batch, steps]"
    );
    let steps = sequences.elapsed.len() / size;
    assert!(
        steps > 0 && sequences.inputs.len().is_multiple_of(size * steps),
        "inputs are not [batch, steps, inputs]"
    );
    let s = sequences.inputs.len() / (size * steps);
    if let Some(lengths) = sequences.lengths {
        assert_eq!(lengths.len(), size, "lengths are not [batch]");
    }
    let parts = super::parallel::for_chunks(size, SAMPLES_PER_THREAD, |first, count| {
        let samples = first..first + count;
        let mut lanes = (count >= MIN_GROUP).then(|| Lanes::new(step, s));
        let mut out = vec![0.0f32; count * steps * n];
        let mut states = sequences.initial[first * n..(first + count) * n].to_vec();
        let mut next = vec![0.0f32; count * n];
        let (mut inputs, mut elapsed) = (vec![0.0f32; count * s], vec![0.0f32; count]);
        for t in 0..steps {
            for (i, b) in samples.clone().enumerate() {
                let row = (b * steps + t) * s;
                inputs[i * s..(i + 1) * s].copy_from_slice(&sequences.inputs[row..row + s]);
                elapsed[i] = sequences.elapsed[b * steps + t];
            }
            let batch = Batch {
                inputs: &inputs,
                states: &states,
                elapsed: &elapsed,
            };
            step_samples(step, batch, 0..count, &mut next, lanes.as_mut(), None);
            for (i, b) in samples.clone().enumerate() {
                let state = &mut states[i * n..(i + 1) * n];
                if sequences.lengths.is_none_or(|l| t < l[b]) {
                    state.copy_from_slice(&next[i * n..(i + 1) * n]);
                }
                out[(i * steps + t) * n..(i * steps + t + 1) * n].copy_from_slice(state);
            }
        }
        out
    });
    parts.concat()
}

/// Gradients of a batch's step.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchGrads {
    /// Parameters, summed over the batch.
    pub params: Grads,
    /// Inputs `[batch · S]`.
    pub inputs: Vec<f32>,
    /// States before the step `[batch · N]`.
    pub states: Vec<f32>,
    /// Elapsed times `[batch]`.
    pub elapsed: Vec<f32>,
}

/// The backward pass of a batch, from the forward pass's traces and the
/// gradient of the next states `grad_out [batch · N]`.
pub fn backward(
    step: &Step<'_>,
    batch: Batch<'_>,
    traces: &[Trace],
    grad_out: &[f32],
) -> BatchGrads {
    step.check();
    let (n, s, size) = (
        step.neurons(),
        step.sensory_params_inputs(batch),
        batch.size(),
    );
    // The first sample of each trace, and the end of the last.
    let mut starts = Vec::with_capacity(traces.len() + 1);
    starts.push(0);
    for trace in traces {
        starts.push(starts[starts.len() - 1] + trace.samples());
    }
    assert_eq!(starts[traces.len()], size, "the traces cover the batch");
    // As many threads as the forward pass's `SAMPLES_PER_THREAD` gives.
    let per_thread = (traces.len() * SAMPLES_PER_THREAD).div_ceil(size).max(1);
    let parts = super::parallel::for_chunks(traces.len(), per_thread, |first, count| {
        let (from, to) = (starts[first], starts[first + count]);
        let samples = to - from;
        let mut params = Grads::zeros(step);
        let mut inputs = vec![0.0f32; samples * s];
        let mut states = vec![0.0f32; samples * n];
        let mut elapsed = vec![0.0f32; samples];
        let mut lane_grads: Option<LaneGrads> = None;
        for t in first..first + count {
            let (b, i, end) = (starts[t], starts[t] - from, starts[t + 1] - from);
            match &traces[t] {
                Trace::Sample(trace) => step.backward(
                    &batch.inputs[b * s..(b + 1) * s],
                    batch.elapsed[b],
                    trace,
                    &grad_out[b * n..(b + 1) * n],
                    &mut params,
                    SampleGrads {
                        input: &mut inputs[i * s..(i + 1) * s],
                        state: &mut states[i * n..(i + 1) * n],
                        elapsed: &mut elapsed[i],
                    },
                ),
                Trace::Lanes(trace) => lane_grads
                    .get_or_insert_with(|| LaneGrads::new(step, s))
                    .backward(
                        step,
                        batch,
                        b,
                        trace,
                        grad_out,
                        GroupGrads {
                            inputs: &mut inputs[i * s..end * s],
                            states: &mut states[i * n..end * n],
                            elapsed: &mut elapsed[i..end],
                        },
                    ),
            }
        }
        if let Some(lane_grads) = &lane_grads {
            lane_grads.add_to(&mut params);
        }
        BatchGrads {
            params,
            inputs,
            states,
            elapsed,
        }
    });
    let mut parts = parts.into_iter();
    let mut total = parts.next().expect("at least one chunk");
    for part in parts {
        total.params.add(&part.params);
        total.inputs.extend(part.inputs);
        total.states.extend(part.states);
        total.elapsed.extend(part.elapsed);
    }
    total
}

impl Step<'_> {
    /// Input features per sample, checked against the batch's slices.
    fn sensory_params_inputs(&self, batch: Batch<'_>) -> usize {
        let (n, size) = (self.neurons(), batch.size());
        assert_eq!(batch.states.len(), size * n, "states are not [batch, {n}]");
        assert!(
            size > 0 && batch.inputs.len().is_multiple_of(size),
            "inputs are not [batch, inputs]"
        );
        batch.inputs.len() / size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible generator of uniform values.
    struct Uniform(u64);

    impl Uniform {
        fn next(&mut self, lo: f32, hi: f32) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            lo + (hi - lo) * ((self.0 >> 40) as f32 / (1u64 << 24) as f32)
        }

        fn values(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
            (0..len).map(|_| self.next(lo, hi)).collect()
        }

        /// `w, mu, sigma, erev` of `len` synapses, in upstream's init ranges.
        fn synapses(&mut self, len: usize) -> [Vec<f32>; 4] {
            [
                self.values(len, 0.001, 1.0),
                self.values(len, 0.3, 0.8),
                self.values(len, 3.0, 8.0),
                self.values(len, -1.0, 1.0),
            ]
        }

        /// A `rows x cols` mask with about 40% synapses, and its plan.
        fn plan(&mut self, rows: usize, cols: usize) -> SynapseRows {
            let mask: Vec<f32> = (0..rows * cols)
                .map(|_| f32::from(self.next(0.0, 1.0) < 0.4))
                .collect();
            SynapseRows::from_mask(&mask, rows, cols).0
        }
    }

    #[test]
    fn lanes_are_the_per_sample_step() {
        let (n, inputs) = (11, 5);
        let mut rng = Uniform(7);
        let recurrent = rng.plan(n, n);
        let sensory = rng.plan(inputs, n);
        let rec = rng.synapses(recurrent.len());
        let sen = rng.synapses(sensory.len());
        let (cm, gleak, vleak) = (
            rng.values(n, 0.4, 0.6),
            rng.values(n, 0.001, 1.0),
            rng.values(n, -0.2, 0.2),
        );
        fn view(p: &[Vec<f32>; 4]) -> SynapseParams<'_> {
            SynapseParams {
                w: &p[0],
                mu: &p[1],
                sigma: &p[2],
                erev: &p[3],
            }
        }
        let mut draw = |len: usize, lo: f32, hi: f32| rng.values(len, lo, hi);
        for unfolds in [0, 1, 6] {
            let step = Step {
                recurrent: &recurrent,
                sensory: &sensory,
                recurrent_params: view(&rec),
                sensory_params: view(&sen),
                cm: &cm,
                gleak: &gleak,
                vleak: &vleak,
                unfolds,
                epsilon: 1e-8,
            };
            // Batches below, at and past the lane count and the thread split.
            for size in [1, 3, 5, 8, 13, 40] {
                let x = draw(size * inputs, -2.0, 2.0);
                let states = draw(size * n, -1.0, 1.0);
                let elapsed = draw(size, 0.0, 2.0);
                let batch = Batch {
                    inputs: &x,
                    states: &states,
                    elapsed: &elapsed,
                };
                let mut expected = vec![0.0f32; size * n];
                for b in 0..size {
                    step.forward(
                        &x[b * inputs..(b + 1) * inputs],
                        &states[b * n..(b + 1) * n],
                        elapsed[b],
                        &mut expected[b * n..(b + 1) * n],
                        None,
                    );
                }
                let (ours, traces) = forward(&step, batch, None);
                assert!(traces.is_empty());
                assert_eq!(ours, expected, "batch {size}, {unfolds} unfolds");
                // One partial group of lanes directly.
                let mut lanes = Lanes::new(&step, inputs);
                let count = size.min(3);
                let mut partial = vec![0.0f32; count * n];
                lanes.forward(&step, batch, inputs, 0..count, &mut partial, None);
                assert_eq!(partial, expected[..count * n], "partial group");
                if unfolds == 0 {
                    continue;
                }
                // Backward: each sample on its own, then the batch (lanes
                // where a thread has MIN_GROUP samples or more).
                let grad_out = draw(size * n, -1.0, 1.0);
                let mut params = Grads::zeros(&step);
                let mut sample_grads = (
                    vec![0.0f32; size * inputs],
                    vec![0.0f32; size * n],
                    vec![0.0f32; size],
                );
                for b in 0..size {
                    let mut trace = SampleTrace::default();
                    let mut next = vec![0.0f32; n];
                    let x = &x[b * inputs..(b + 1) * inputs];
                    let state = &states[b * n..(b + 1) * n];
                    step.forward(x, state, elapsed[b], &mut next, Some(&mut trace));
                    step.backward(
                        x,
                        elapsed[b],
                        &trace,
                        &grad_out[b * n..(b + 1) * n],
                        &mut params,
                        SampleGrads {
                            input: &mut sample_grads.0[b * inputs..(b + 1) * inputs],
                            state: &mut sample_grads.1[b * n..(b + 1) * n],
                            elapsed: &mut sample_grads.2[b],
                        },
                    );
                }
                // Group traces of other states, recycled: the step must
                // overwrite all of them.
                let pool = TracePool::default();
                let other: Vec<f32> = states.iter().map(|v| 0.5 - v).collect();
                let (_, stale) = forward(
                    &step,
                    Batch {
                        states: &other,
                        ..batch
                    },
                    Some(&pool),
                );
                pool.recycle(stale);
                let recycled = pool.len();
                assert_eq!(recycled > 0, size >= MIN_GROUP, "group traces kept");
                let (next, traces) = forward(&step, batch, Some(&pool));
                assert!(recycled == 0 || pool.len() < recycled, "traces reused");
                assert_eq!(next, expected, "states with traces");
                let grads = backward(&step, batch, &traces, &grad_out);
                // The samples' gradients run the same arithmetic per lane.
                assert_eq!(grads.inputs, sample_grads.0, "input gradients");
                assert_eq!(grads.states, sample_grads.1, "state gradients");
                assert_eq!(grads.elapsed, sample_grads.2, "elapsed gradients");
                // The parameters' sum over the samples in another order.
                let close = |ours: &[f32], theirs: &[f32], what: &str| {
                    for (a, b) in ours.iter().zip(theirs) {
                        let scale = a.abs().max(b.abs()).max(1.0);
                        assert!((a - b).abs() <= 1e-5 * scale, "{what}: {a} vs {b}");
                    }
                };
                // The AVX2 lanes give the AVX-512 lanes' bits (where the CPU
                // has AVX-512; elsewhere both runs take the same path).
                #[cfg(target_arch = "x86_64")]
                {
                    use std::sync::atomic::Ordering::Relaxed;
                    crate::kernels::NARROWER.store(true, Relaxed);
                    let (narrower, traces) = forward(&step, batch, Some(&TracePool::default()));
                    let narrower_grads = backward(&step, batch, &traces, &grad_out);
                    crate::kernels::NARROWER.store(false, Relaxed);
                    assert_eq!(narrower, next, "AVX2 states, batch {size}");
                    assert_eq!(narrower_grads, grads, "AVX2 gradients, batch {size}");
                }
                for (ours, theirs, what) in [
                    (&grads.params.recurrent.w, &params.recurrent.w, "w"),
                    (&grads.params.recurrent.mu, &params.recurrent.mu, "mu"),
                    (
                        &grads.params.recurrent.sigma,
                        &params.recurrent.sigma,
                        "sigma",
                    ),
                    (&grads.params.recurrent.erev, &params.recurrent.erev, "erev"),
                    (&grads.params.sensory.w, &params.sensory.w, "sensory w"),
                    (&grads.params.sensory.mu, &params.sensory.mu, "sensory mu"),
                    (
                        &grads.params.sensory.sigma,
                        &params.sensory.sigma,
                        "sensory sigma",
                    ),
                    (
                        &grads.params.sensory.erev,
                        &params.sensory.erev,
                        "sensory erev",
                    ),
                    (&grads.params.cm, &params.cm, "cm"),
                    (&grads.params.gleak, &params.gleak, "gleak"),
                    (&grads.params.vleak, &params.vleak, "vleak"),
                ] {
                    close(ours, theirs, what);
                }
            }
        }
    }

    #[test]
    fn synapses_are_grouped_by_destination() {
        // 3 neurons: 0 -> 1, 2 -> 1, 1 -> 2, 2 -> 2.
        let mut mask = vec![0.0; 9];
        for (src, dest) in [(0, 1), (2, 1), (1, 2), (2, 2)] {
            mask[src * 3 + dest] = 1.0;
        }
        let (plan, flat) = SynapseRows::from_mask(&mask, 3, 3);
        assert_eq!(plan.offsets, vec![0, 0, 2, 4]);
        assert_eq!(plan.sources, vec![0, 2, 1, 2]);
        assert_eq!(flat, vec![1, 7, 5, 8]);
    }
}
