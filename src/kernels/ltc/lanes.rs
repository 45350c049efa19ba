//! The LTC step of [`LANES`] samples at once ("lanes over the batch").
//!
//! Every value of a group is a [`Lane`], one float per sample, laid out
//! `[neuron][lane]`: the synapse loops then run across samples, so the
//! gathers, the per-destination sums and the backward's per-synapse
//! products vectorize, where [`Step::forward`] and [`Step::backward`] run
//! one sample at a time. Lane `l` of the forward pass computes what
//! [`Step::forward`] computes for its sample, the same operations in the
//! same order, so the states are the same bit for bit. The backward pass
//! sums each parameter's gradient per lane over a thread's groups and adds
//! the lanes at the end, another order than the per-sample pass (whose
//! gradients it matches to rounding).
//!
//! Each synapse parameter's gradient is summed in [`SUMS`] lanes, half
//! of [`LANES`]: the backward pass reads and writes those sums at every
//! synapse of every unfold, and in sixteen lanes FullyConnected(128)'s
//! would have taken 4 MB a thread, twice the L2 cache of the machine
//! they were measured on (docs/performance.md, "Sixteen samples at
//! once").
//!
//! A group of fewer samples repeats its last sample in the free lanes and
//! gives them a zero gradient, so they add nothing.

use super::{Batch, Grads, Step, SynapseParams, SynapseRows, TracePool, back_synapse};
use crate::kernels::memory::huge_pages;
use crate::kernels::scalar::sigmoid;

/// Samples one group advances together: one AVX-512 register per value
/// (two AVX2 ones).
pub(super) const LANES: usize = 16;

/// One value per lane.
pub(super) type Lane = [f32; LANES];

/// Lanes in which a synapse parameter's gradient is summed: lane `l`
/// holds the sum of lanes `l` and `l + SUMS` of every contribution.
const SUMS: usize = LANES / 2;

/// A synapse parameter's gradient, [`SUMS`] partial sums.
type Sums = [f32; SUMS];

fn zeros(len: usize) -> Vec<Lane> {
    vec![[0.0; LANES]; len]
}

/// What the backward pass of a group needs from its forward pass, as
/// [`super::SampleTrace`] keeps it for one sample, lane by lane.
#[derive(Clone, Debug)]
pub struct LaneTrace {
    /// Samples of the group.
    pub(super) count: usize,
    /// Potentials before each unfold and after the last: `(unfolds + 1) · N`.
    potentials: Vec<Lane>,
    /// Denominator of each unfold: `unfolds · N`.
    denominators: Vec<Lane>,
    /// Sigmoid of every recurrent synapse at each unfold: `unfolds · nnz`
    /// (most of the trace; the backward pass recomputing them from the
    /// potentials measured 10 % slower).
    activations: Vec<Lane>,
    /// Sigmoid of every sensory synapse: `nnz_sensory`.
    sensory_activations: Vec<Lane>,
    /// `gleak · vleak + Σ a_s·erev_s`: `N`.
    numerator_leak: Vec<Lane>,
    /// `gleak + Σ a_s + epsilon`: `N`.
    denominator_leak: Vec<Lane>,
}

/// The samples of a group: their indices in the batch, the last repeated
/// in the free lanes.
fn lanes_of(samples: std::ops::Range<usize>) -> ([usize; LANES], usize) {
    let count = samples.len();
    assert!(
        (1..=LANES).contains(&count),
        "a group holds 1 to {LANES} samples"
    );
    let mut of = [samples.start + count - 1; LANES];
    for (l, b) in samples.enumerate() {
        of[l] = b;
    }
    (of, count)
}

/// Gathers `[batch, width]` rows of `values` into lanes.
fn gather(values: &[f32], width: usize, of: &[usize; LANES], out: &mut [Lane]) {
    for (l, &b) in of.iter().enumerate() {
        for (i, x) in values[b * width..(b + 1) * width].iter().enumerate() {
            out[i][l] = *x;
        }
    }
}

/// Scatters the first `count` lanes of `values` into `[count, width]` rows.
fn scatter(values: &[Lane], count: usize, out: &mut [f32]) {
    let width = values.len();
    for (l, row) in out.chunks_exact_mut(width).take(count).enumerate() {
        for (o, v) in row.iter_mut().zip(values) {
            *o = v[l];
        }
    }
}

/// One thread's working memory for the forward pass of its groups.
pub(super) struct Lanes {
    inputs: Vec<Lane>,
    potentials: Vec<Lane>,
    next: Vec<Lane>,
    denominators: Vec<Lane>,
    sensory: Vec<Lane>,
    activations: Vec<Lane>,
    numerator_leak: Vec<Lane>,
    denominator_leak: Vec<Lane>,
}

impl Lanes {
    pub(super) fn new(step: &Step<'_>, inputs: usize) -> Self {
        let n = step.neurons();
        Self {
            inputs: zeros(inputs),
            potentials: zeros(n),
            next: zeros(n),
            denominators: zeros(n),
            sensory: zeros(step.sensory.len()),
            activations: zeros(step.recurrent.len()),
            numerator_leak: zeros(n),
            denominator_leak: zeros(n),
        }
    }

    /// Advances `samples` (1 to [`LANES`] of them) of `batch`, writing
    /// their next states `[samples · N]` to `out`; returns their trace
    /// when given a pool to take its buffers from.
    pub(super) fn forward(
        &mut self,
        step: &Step<'_>,
        batch: Batch<'_>,
        inputs: usize,
        samples: std::ops::Range<usize>,
        out: &mut [f32],
        keep_trace: Option<&TracePool>,
    ) -> Option<LaneTrace> {
        let n = step.neurons();
        let (of, count) = lanes_of(samples);
        gather(batch.inputs, inputs, &of, &mut self.inputs);
        gather(batch.states, n, &of, &mut self.potentials);
        let elapsed = of.map(|b| batch.elapsed[b]);
        let mut trace = keep_trace.map(|pool| match pool.take_best(|_| Some(0)) {
            Some(mut recycled) => {
                recycled.count = count;
                recycled.potentials.clear();
                recycled.denominators.clear();
                recycled
            }
            None => LaneTrace {
                count,
                potentials: Vec::with_capacity((step.unfolds + 1) * n),
                denominators: Vec::with_capacity(step.unfolds * n),
                // Zeroed pages from the system, written once.
                activations: huge_pages(zeros(step.unfolds * step.recurrent.len())),
                sensory_activations: Vec::new(),
                numerator_leak: Vec::new(),
                denominator_leak: Vec::new(),
            },
        });
        advance(self, step, elapsed, trace.as_mut());
        let result = if step.unfolds == 0 {
            &self.potentials
        } else {
            &self.next
        };
        scatter(result, count, out);
        trace
    }
}

vectorized_fn! {
    avx512;
    /// [`Step::forward`] over lanes, from `lanes.inputs` and
    /// `lanes.potentials` to `lanes.next`, recording into `trace`.
    fn advance(
        lanes: &mut Lanes,
        step: &Step<'_>,
        elapsed: Lane,
        trace: Option<&mut LaneTrace>,
    ) -> () {
        let mut trace = trace;
        let (rec, sen) = (step.recurrent, step.sensory);
        activations(sen, step.sensory_params, &lanes.inputs, &mut lanes.sensory);
        let h = elapsed.map(|t| t / step.unfolds as f32);
        let leak = lanes.numerator_leak.iter_mut().zip(&mut lanes.denominator_leak);
        for (d, (nl, dl)) in leak.enumerate() {
            let (num, den) = sums(sen, step.sensory_params, &lanes.sensory, d);
            let gleak = step.gleak[d];
            *nl = std::array::from_fn(|l| gleak * step.vleak[d] + num[l]);
            *dl = std::array::from_fn(|l| gleak + den[l] + step.epsilon);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.sensory_activations.clone_from(&lanes.sensory);
            t.numerator_leak.clone_from(&lanes.numerator_leak);
            t.denominator_leak.clone_from(&lanes.denominator_leak);
            t.potentials.extend_from_slice(&lanes.potentials);
        }
        let nnz = rec.len();
        if let Some(t) = trace.as_deref_mut() {
            // Written in place below (a recycled trace has the length).
            t.activations.resize(step.unfolds * nnz, [0.0; LANES]);
        }
        for unfold in 0..step.unfolds {
            if unfold > 0 {
                std::mem::swap(&mut lanes.potentials, &mut lanes.next);
            }
            // Without a trace, all sigmoids first (one flat loop), then the
            // sums. With one, each destination's sigmoids go from the
            // registers into the sums and, past the caches, into the trace
            // (the only copy: 3 GB a training step of FullyConnected(128),
            // read again only by the backward pass).
            let p = step.recurrent_params;
            let mut kept = match trace.as_deref_mut() {
                Some(t) => {
                    let kept = &mut t.activations[unfold * nnz..(unfold + 1) * nnz];
                    Some(Streamed::new(kept))
                }
                None => {
                    activations(rec, p, &lanes.potentials, &mut lanes.activations);
                    None
                }
            };
            // Whole lanes in and out of plain slices: stores through the
            // struct's vectors would make the compiler reload them per lane.
            let (v, next) = (&lanes.potentials[..], &mut lanes.next[..]);
            let denominators = &mut lanes.denominators[..];
            let leak = lanes.numerator_leak.iter().zip(&lanes.denominator_leak);
            for (d, (nl, dl)) in leak.enumerate() {
                let (num, den) = match kept.as_mut() {
                    Some(out) => activations_and_sums(rec, p, v, d, out),
                    None => sums(rec, p, &lanes.activations, d),
                };
                let (cm, v) = (step.cm[d], v[d]);
                let denominator: Lane = std::array::from_fn(|l| cm + h[l] * (dl[l] + den[l]));
                next[d] = std::array::from_fn(|l| {
                    (cm * v[l] + h[l] * (nl[l] + num[l])) / denominator[l]
                });
                denominators[d] = denominator;
            }
            if let Some(t) = trace.as_deref_mut() {
                t.denominators.extend_from_slice(&lanes.denominators);
                t.potentials.extend_from_slice(&lanes.next);
            }
        }
        if trace.is_some() {
            Streamed::fence();
        }
    }
}

/// `out[k] = sigmoid(sigma[k] · (pre[src[k]] - mu[k]))` lane by lane: the
/// gather, then the sigmoids over one flat slice.
#[inline(always)]
fn activations(synapses: &SynapseRows, p: SynapseParams<'_>, pre: &[Lane], out: &mut [Lane]) {
    let params = p.sigma.iter().zip(p.mu).zip(&synapses.sources);
    for (z, ((&sigma, &mu), &src)) in out.iter_mut().zip(params) {
        let pre = &pre[src];
        for l in 0..LANES {
            z[l] = sigma * (pre[l] - mu);
        }
    }
    for x in out.as_flattened_mut() {
        *x = sigmoid(*x);
    }
}

/// Per lane, `Σ w·s·erev` and `Σ w·s` over the synapses into `destination`.
/// Whole lanes at a time (each a vector register): written lane by lane
/// the compiler kept sixteen scalar sums, half of them on the stack.
#[inline(always)]
fn sums(
    synapses: &SynapseRows,
    p: SynapseParams<'_>,
    activations: &[Lane],
    destination: usize,
) -> (Lane, Lane) {
    let row = synapses.offsets[destination]..synapses.offsets[destination + 1];
    let mut sums = ([0.0f32; LANES], [0.0f32; LANES]);
    for ((&w, &erev), s) in p.w[row.clone()]
        .iter()
        .zip(&p.erev[row.clone()])
        .zip(&activations[row])
    {
        add_synapse(&mut sums, w, erev, s);
    }
    sums
}

/// [`activations`] and [`sums`] of one destination in one pass, each
/// sigmoid stored to `out` (the trace) as it is added: the same
/// operations in the same order, so the same bits.
#[inline(always)]
fn activations_and_sums(
    synapses: &SynapseRows,
    p: SynapseParams<'_>,
    pre: &[Lane],
    destination: usize,
    out: &mut Streamed<'_>,
) -> (Lane, Lane) {
    let row = synapses.offsets[destination]..synapses.offsets[destination + 1];
    let mut sums = ([0.0f32; LANES], [0.0f32; LANES]);
    // Slices of one length: no bounds checks in the loop.
    let sources = &synapses.sources[row.clone()];
    let (sigma, mu) = (&p.sigma[row.clone()], &p.mu[row.clone()]);
    let (w, erev) = (&p.w[row.clone()], &p.erev[row.clone()]);
    for k in 0..sources.len() {
        let v = &pre[sources[k]];
        let s: Lane = std::array::from_fn(|l| sigmoid(sigma[k] * (v[l] - mu[k])));
        out.store(row.start + k, &s);
        add_synapse(&mut sums, w[k], erev[k], &s);
    }
    sums
}

/// `num += w·s·erev`, `den += w·s`, lane by lane.
#[inline(always)]
fn add_synapse((num, den): &mut (Lane, Lane), w: f32, erev: f32, s: &Lane) {
    let a: Lane = std::array::from_fn(|l| w * s[l]);
    *num = std::array::from_fn(|l| num[l] + a[l] * erev);
    *den = std::array::from_fn(|l| den[l] + a[l]);
}

/// Lanes written past the caches ("non-temporal" stores) where the CPU
/// has them and the memory is aligned for them, plainly elsewhere: a
/// trace is read again only by the backward pass, after the whole
/// sequence, and would otherwise first be read into the caches to be
/// overwritten (docs/performance.md, "One pass, past the caches").
struct Streamed<'a> {
    lanes: &'a mut [Lane],
    aligned: bool,
}

impl<'a> Streamed<'a> {
    fn new(lanes: &'a mut [Lane]) -> Self {
        let aligned = cfg!(target_arch = "x86_64") && lanes.as_ptr().addr().is_multiple_of(16);
        Self { lanes, aligned }
    }

    #[inline(always)]
    fn store(&mut self, k: usize, lane: &Lane) {
        let to = &mut self.lanes[k];
        // `aligned` is never set elsewhere than on x86_64.
        if self.aligned {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
                let (to, from) = (to.as_mut_ptr(), lane.as_ptr());
                // SAFETY: `to` is a whole lane (LANES floats, a multiple
                // of four) of a slice whose start, and so every lane's
                // and every fourth float's after it, is 16-byte aligned,
                // as `_mm_stream_ps` needs; SSE is part of x86_64.
                unsafe {
                    for i in (0..LANES).step_by(4) {
                        _mm_stream_ps(to.add(i), _mm_loadu_ps(from.add(i)));
                    }
                }
                return;
            }
        }
        *to = *lane;
    }

    /// Orders the streamed stores before whatever this thread writes next
    /// (the hand-off to the thread that reads the trace).
    fn fence() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE is part of x86_64.
        unsafe {
            std::arch::x86_64::_mm_sfence()
        };
    }
}

/// Gradients of one synapse group's `w, mu, sigma, erev`, in [`SUMS`]
/// partial sums each.
struct LaneSynapseGrads([Vec<Sums>; 4]);

impl LaneSynapseGrads {
    fn zeros(len: usize) -> Self {
        Self(std::array::from_fn(|_| vec![[0.0; SUMS]; len]))
    }
}

/// Adds a synapse's contributions of all lanes to its partial sums, lane
/// `l` and lane `l + SUMS` to sum `l`.
#[inline(always)]
fn fold(sums: &mut Sums, contributions: &Lane) {
    for l in 0..SUMS {
        sums[l] += contributions[l] + contributions[l + SUMS];
    }
}

/// One thread's backward pass over its groups: each parameter's gradient
/// per lane, summed over the groups, and the working memory of a group.
pub(super) struct LaneGrads {
    recurrent: LaneSynapseGrads,
    sensory: LaneSynapseGrads,
    cm: Vec<Lane>,
    gleak: Vec<Lane>,
    vleak: Vec<Lane>,
    inputs: Vec<Lane>,
    grad_inputs: Vec<Lane>,
    grad_v: Vec<Lane>,
    grad_prev: Vec<Lane>,
    grad_numerator_leak: Vec<Lane>,
    grad_denominator_leak: Vec<Lane>,
}

/// Where a group's sample gradients go: `[count · S]`, `[count · N]`,
/// `[count]`.
pub(super) struct GroupGrads<'a> {
    pub inputs: &'a mut [f32],
    pub states: &'a mut [f32],
    pub elapsed: &'a mut [f32],
}

impl LaneGrads {
    pub(super) fn new(step: &Step<'_>, inputs: usize) -> Self {
        let n = step.neurons();
        Self {
            recurrent: LaneSynapseGrads::zeros(step.recurrent.len()),
            sensory: LaneSynapseGrads::zeros(step.sensory.len()),
            cm: zeros(n),
            gleak: zeros(n),
            vleak: zeros(n),
            inputs: zeros(inputs),
            grad_inputs: zeros(inputs),
            grad_v: zeros(n),
            grad_prev: zeros(n),
            grad_numerator_leak: zeros(n),
            grad_denominator_leak: zeros(n),
        }
    }

    /// Back-propagates the group of samples `first..` that `trace`
    /// covers, from `grad_out [batch · N]`, writing their sample gradients
    /// to `out` (this was built for the batch's input width).
    pub(super) fn backward(
        &mut self,
        step: &Step<'_>,
        batch: Batch<'_>,
        first: usize,
        trace: &LaneTrace,
        grad_out: &[f32],
        out: GroupGrads<'_>,
    ) {
        let (n, inputs) = (step.neurons(), self.inputs.len());
        let (of, count) = lanes_of(first..first + trace.count);
        gather(batch.inputs, inputs, &of, &mut self.inputs);
        gather(grad_out, n, &of, &mut self.grad_v);
        // The free lanes repeat a sample: a zero gradient keeps them out.
        for g in &mut self.grad_v {
            g[count..].fill(0.0);
        }
        let elapsed = of.map(|b| batch.elapsed[b]);
        let grad_elapsed = back(self, step, trace, elapsed);
        scatter(&self.grad_inputs, count, out.inputs);
        scatter(&self.grad_v, count, out.states);
        out.elapsed.copy_from_slice(&grad_elapsed[..count]);
    }

    /// Adds the lanes of every parameter's gradient, in lane order, to
    /// `grads`.
    pub(super) fn add_to(&self, grads: &mut Grads) {
        fn add<const L: usize>(sum: &mut [f32], lanes: &[[f32; L]]) {
            for (s, lane) in sum.iter_mut().zip(lanes) {
                for g in lane {
                    *s += g;
                }
            }
        }
        for (ours, theirs) in [
            (&self.recurrent, &mut grads.recurrent),
            (&self.sensory, &mut grads.sensory),
        ] {
            let [w, mu, sigma, erev] = &ours.0;
            add(&mut theirs.w, w);
            add(&mut theirs.mu, mu);
            add(&mut theirs.sigma, sigma);
            add(&mut theirs.erev, erev);
        }
        add(&mut grads.cm, &self.cm);
        add(&mut grads.gleak, &self.gleak);
        add(&mut grads.vleak, &self.vleak);
    }
}

vectorized_fn! {
    avx512;
    /// [`Step::backward`] over lanes: from `g.grad_v` (the gradient of the
    /// next states) and `g.inputs`, leaves the states' gradient in
    /// `g.grad_v` and the inputs' in `g.grad_inputs`, adds the parameters'
    /// to `g`'s sums, and returns the elapsed times'.
    fn back(g: &mut LaneGrads, step: &Step<'_>, trace: &LaneTrace, elapsed: Lane) -> Lane {
        let n = step.neurons();
        let (rec, sen) = (step.recurrent, step.sensory);
        let (p, ps) = (step.recurrent_params, step.sensory_params);
        let nnz = rec.len();
        g.grad_numerator_leak.fill([0.0; LANES]);
        g.grad_denominator_leak.fill([0.0; LANES]);
        let h = elapsed.map(|t| t / step.unfolds as f32);
        let mut grad_h = [0.0f32; LANES];
        let [gw, gmu, gsigma, gerev] = g.recurrent.0.each_mut().map(Vec::as_mut_slice);
        for unfold in (0..step.unfolds).rev() {
            let v = &trace.potentials[unfold * n..(unfold + 1) * n];
            let v_next = &trace.potentials[(unfold + 1) * n..(unfold + 2) * n];
            let denominators = &trace.denominators[unfold * n..(unfold + 1) * n];
            let activations = &trace.activations[unfold * nnz..(unfold + 1) * nnz];
            g.grad_prev.fill([0.0; LANES]);
            // Whole lanes through plain slices (see `advance`).
            let grad_prev = g.grad_prev.as_mut_slice();
            let (grad_v, grad_cm) = (&g.grad_v[..], &mut g.cm[..]);
            let grad_nl = &mut g.grad_numerator_leak[..];
            let grad_dl = &mut g.grad_denominator_leak[..];
            for d in 0..n {
                let (cm, gv, den, vn, vd) = (step.cm[d], grad_v[d], denominators[d], v_next[d], v[d]);
                let grad_num: Lane = std::array::from_fn(|l| gv[l] / den[l]);
                let grad_den: Lane = std::array::from_fn(|l| -grad_num[l] * vn[l]);
                let gp = grad_prev[d];
                grad_prev[d] = std::array::from_fn(|l| gp[l] + grad_num[l] * cm);
                let gc = grad_cm[d];
                grad_cm[d] = std::array::from_fn(|l| gc[l] + (grad_num[l] * vd[l] + grad_den[l]));
                let grad_num_h: Lane = std::array::from_fn(|l| grad_num[l] * h[l]);
                let grad_den_h: Lane = std::array::from_fn(|l| grad_den[l] * h[l]);
                let (gn, gd) = (grad_nl[d], grad_dl[d]);
                grad_nl[d] = std::array::from_fn(|l| gn[l] + grad_num_h[l]);
                grad_dl[d] = std::array::from_fn(|l| gd[l] + grad_den_h[l]);
                let (mut synaptic_num, mut synaptic_den) = ([0.0f32; LANES], [0.0f32; LANES]);
                // Slices of one length: no bounds checks in the loop.
                let row = rec.offsets[d]..rec.offsets[d + 1];
                let sources = &rec.sources[row.clone()];
                let (pw, perev) = (&p.w[row.clone()], &p.erev[row.clone()]);
                let (pmu, psigma) = (&p.mu[row.clone()], &p.sigma[row.clone()]);
                let activations = &activations[row.clone()];
                let (gerev, gw) = (&mut gerev[row.clone()], &mut gw[row.clone()]);
                let (gsigma, gmu) = (&mut gsigma[row.clone()], &mut gmu[row]);
                for k in 0..sources.len() {
                    let src = sources[k];
                    let params = [pw[k], pmu[k], psigma[k], perev[k]];
                    let (s, pre) = (activations[k], v[src]);
                    // Each lane array in registers, written back once.
                    let (mut gws, mut gm) = (gw[k], gmu[k]);
                    let (mut gs, mut ge) = (gsigma[k], gerev[k]);
                    let mut grad_pre = grad_prev[src];
                    let mut c = [[0.0f32; LANES]; 4];
                    for l in 0..LANES {
                        let a = params[0] * s[l];
                        synaptic_num[l] += a * params[3];
                        synaptic_den[l] += a;
                        let grad_sums = (grad_num_h[l], grad_den_h[l]);
                        let mut own = [0.0; 4];
                        grad_pre[l] =
                            back_synapse(params, s[l], pre[l], grad_sums, &mut own, grad_pre[l]);
                        [c[0][l], c[1][l], c[2][l], c[3][l]] = own;
                    }
                    fold(&mut gws, &c[0]);
                    fold(&mut gm, &c[1]);
                    fold(&mut gs, &c[2]);
                    fold(&mut ge, &c[3]);
                    (gw[k], gmu[k], gsigma[k], gerev[k]) = (gws, gm, gs, ge);
                    grad_prev[src] = grad_pre;
                }
                for l in 0..LANES {
                    grad_h[l] += grad_num[l] * (trace.numerator_leak[d][l] + synaptic_num[l])
                        + grad_den[l] * (trace.denominator_leak[d][l] + synaptic_den[l]);
                }
            }
            std::mem::swap(&mut g.grad_v, &mut g.grad_prev);
        }
        for d in 0..n {
            let (gnl, gdl) = (g.grad_numerator_leak[d], g.grad_denominator_leak[d]);
            for l in 0..LANES {
                g.gleak[d][l] += gnl[l] * step.vleak[d] + gdl[l];
                g.vleak[d][l] += gnl[l] * step.gleak[d];
            }
        }
        g.grad_inputs.fill([0.0; LANES]);
        let [gw, gmu, gsigma, gerev] = g.sensory.0.each_mut().map(Vec::as_mut_slice);
        let grad_inputs = g.grad_inputs.as_mut_slice();
        for d in 0..n {
            let (gnl, gdl) = (g.grad_numerator_leak[d], g.grad_denominator_leak[d]);
            for k in sen.offsets[d]..sen.offsets[d + 1] {
                let (src, params) = (sen.sources[k], ps.at(k));
                let (s, x) = (trace.sensory_activations[k], g.inputs[src]);
                let (mut gws, mut gm) = (gw[k], gmu[k]);
                let (mut gs, mut ge) = (gsigma[k], gerev[k]);
                let mut grad_x = grad_inputs[src];
                let mut c = [[0.0f32; LANES]; 4];
                for l in 0..LANES {
                    let mut own = [0.0; 4];
                    let grad_sums = (gnl[l], gdl[l]);
                    grad_x[l] = back_synapse(params, s[l], x[l], grad_sums, &mut own, grad_x[l]);
                    [c[0][l], c[1][l], c[2][l], c[3][l]] = own;
                }
                fold(&mut gws, &c[0]);
                fold(&mut gm, &c[1]);
                fold(&mut gs, &c[2]);
                fold(&mut ge, &c[3]);
                (gw[k], gmu[k], gsigma[k], gerev[k]) = (gws, gm, gs, ge);
                grad_inputs[src] = grad_x;
            }
        }
        grad_h.map(|gh| gh / step.unfolds as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_lanes_land_where_plain_stores_would() {
        // At every offset of a float: 16-byte aligned (streamed) or not.
        let lanes: Vec<Lane> = (0..37)
            .map(|k| std::array::from_fn(|l| (k * LANES + l) as f32))
            .collect();
        let mut streamed_at = Vec::new();
        for offset in 0..4 {
            let mut floats = vec![-1.0f32; offset + lanes.len() * LANES];
            let (out, rest) = floats[offset..].as_chunks_mut::<LANES>();
            assert!(rest.is_empty());
            let mut streamed = Streamed::new(out);
            if streamed.aligned {
                streamed_at.push(offset);
            }
            for (k, lane) in lanes.iter().enumerate().rev() {
                streamed.store(k, lane);
            }
            Streamed::fence();
            assert_eq!(out, &lanes[..], "offset {offset}");
            assert!(floats[..offset].iter().all(|&x| x == -1.0));
        }
        // Exactly one of four offsets is 16-byte aligned.
        let expected = usize::from(cfg!(target_arch = "x86_64"));
        assert_eq!(streamed_at.len(), expected, "streamed at {streamed_at:?}");
    }
}
