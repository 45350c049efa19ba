//! The step of an exported model, in plain `core` Rust: no allocation, no
//! global mutable state, no `unsafe`. Generated files hold this module's
//! text as it is, after the model's weights (a [`Model`] of `static`
//! arrays), with `super::Index` (the smallest unsigned integer that holds the
//! model's synapse indices) and `super::math` (`exp`, `sigmoid`, `tanh`, `lecun_tanh`:
//! the crate's `kernels::scalar`) beside it.
//!
//! The arithmetic is the crate's, operation for operation: the LTC step is
//! `kernels::ltc::Step::forward` (same synapse order, same sums), the CfC
//! and LSTM steps those of `cells::cfc` and `cells::lstm`.

use super::Index;
use super::math::{exp, lecun_tanh, sigmoid, tanh};

/// `y = W·x + b` (PyTorch's `nn.Linear`).
#[derive(Clone, Copy)]
pub struct Linear<'a> {
    /// Row-major `[outputs][inputs]`.
    pub weight: &'a [f32],
    /// `[outputs]`, or empty for no bias.
    pub bias: &'a [f32],
}

impl Linear<'_> {
    /// `y = W·x + b`, with `y.len()` outputs and `x.len()` inputs. Each dot
    /// product sums in eight lanes (then the remainder), so that it
    /// vectorizes; the order is fixed, the result the same everywhere.
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        let inputs = x.len();
        let whole = inputs - inputs % 8;
        for (j, out) in y.iter_mut().enumerate() {
            let row = &self.weight[j * inputs..(j + 1) * inputs];
            let mut lanes = [0.0f32; 8];
            for (w, v) in row[..whole].chunks_exact(8).zip(x[..whole].chunks_exact(8)) {
                for i in 0..8 {
                    lanes[i] += w[i] * v[i];
                }
            }
            // Halves added lane by lane, then the four sums pairwise: a
            // vector's horizontal sum.
            let half = [
                lanes[0] + lanes[4],
                lanes[1] + lanes[5],
                lanes[2] + lanes[6],
                lanes[3] + lanes[7],
            ];
            let mut sum = (half[0] + half[2]) + (half[1] + half[3]);
            for (w, v) in row[whole..].iter().zip(&x[whole..]) {
                sum += w * v;
            }
            *out = if self.bias.is_empty() {
                sum
            } else {
                sum + self.bias[j]
            };
        }
    }
}

/// A CfC backbone's activation.
#[derive(Clone, Copy)]
pub enum Activation {
    /// `1.7159 · tanh(0.666 · x)`.
    LecunTanh,
    /// `x · sigmoid(x)`.
    Silu,
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    fn apply(self, values: &mut [f32]) {
        for v in values.iter_mut() {
            let x = *v;
            *v = match self {
                Activation::LecunTanh => lecun_tanh(x),
                Activation::Silu => x * sigmoid(x),
                Activation::Relu => {
                    if x > 0.0 {
                        x
                    } else {
                        0.0
                    }
                }
                Activation::Tanh => tanh(x),
            };
        }
    }
}

/// How a CfC layer turns its heads into the next state.
#[derive(Clone, Copy)]
pub enum Head<'a> {
    /// `t = sigmoid(time_a · elapsed + time_b)`, then `s(ff1) · (1 - t)
    /// + t · s(ff2)` (`gated`, upstream's `default` mode) or `s(ff1)
    /// + t · s(ff2)` (`no_gate`), `s` being `tanh` or LeCun's tanh.
    Gated {
        /// Second head.
        ff2: Linear<'a>,
        /// Time-gate slope head.
        time_a: Linear<'a>,
        /// Time-gate offset head.
        time_b: Linear<'a>,
        /// Whether `s(ff1)` is weighted by `1 - t`.
        gated: bool,
        /// Whether `s` is LeCun's tanh (else `tanh`).
        lecun: bool,
    },
    /// `-A · exp(-elapsed · (|w_tau| + |ff1|)) · ff1 + A`.
    Pure {
        /// `[hidden]`.
        w_tau: &'a [f32],
        /// `[hidden]` (upstream's `A`).
        a: &'a [f32],
    },
}

/// One CfC cell: a dense CfC, or one layer of a wired CfC (no backbone, its
/// `ff1`/`ff2` weights already multiplied by the layer's mask).
#[derive(Clone, Copy)]
pub struct CfcLayer<'a> {
    /// Features this layer reads.
    pub inputs: usize,
    /// Its state size.
    pub hidden: usize,
    /// Backbone layers, each followed by the activation.
    pub backbone: &'a [Linear<'a>],
    /// Width of the backbone layers (0 without a backbone).
    pub backbone_units: usize,
    /// The backbone activation.
    pub activation: Activation,
    /// First head.
    pub ff1: Linear<'a>,
    /// The other heads.
    pub head: Head<'a>,
}

impl CfcLayer<'_> {
    /// Advances `h` (`[hidden]`) by one observation `x` (`[inputs]`);
    /// `scratch` holds `inputs + hidden + 2·backbone_units + 4·hidden`
    /// floats.
    pub fn step(&self, x: &[f32], h: &mut [f32], elapsed: f32, scratch: &mut [f32]) {
        let (cat, rest) = scratch.split_at_mut(self.inputs + self.hidden);
        cat[..self.inputs].copy_from_slice(x);
        cat[self.inputs..].copy_from_slice(h);
        let (ping, rest) = rest.split_at_mut(self.backbone_units);
        let (pong, heads) = rest.split_at_mut(self.backbone_units);
        // Backbone layers alternate between the two buffers.
        for (i, layer) in self.backbone.iter().enumerate() {
            if i % 2 == 0 {
                layer.forward(if i == 0 { &*cat } else { &*pong }, ping);
                self.activation.apply(ping);
            } else {
                layer.forward(ping, pong);
                self.activation.apply(pong);
            }
        }
        let features: &[f32] = match self.backbone.len() {
            0 => cat,
            layers if layers % 2 == 1 => ping,
            _ => pong,
        };
        let (ff1, heads) = heads.split_at_mut(self.hidden);
        self.ff1.forward(features, ff1);
        match self.head {
            Head::Gated {
                ff2,
                time_a,
                time_b,
                gated,
                lecun,
            } => {
                let squash = if lecun { lecun_tanh } else { tanh };
                let (f2, heads) = heads.split_at_mut(self.hidden);
                let (ta, tb) = heads.split_at_mut(self.hidden);
                ff2.forward(features, f2);
                time_a.forward(features, ta);
                time_b.forward(features, &mut tb[..self.hidden]);
                for i in 0..self.hidden {
                    let (f1, f2) = (squash(ff1[i]), squash(f2[i]));
                    let t = sigmoid(ta[i] * elapsed + tb[i]);
                    h[i] = if gated {
                        f1 * (1.0 - t) + t * f2
                    } else {
                        f1 + t * f2
                    };
                }
            }
            Head::Pure { w_tau, a } => {
                for i in 0..self.hidden {
                    let decay = exp(-elapsed * (w_tau[i].abs() + ff1[i].abs()));
                    h[i] = -a[i] * decay * ff1[i] + a[i];
                }
            }
        }
    }
}

/// The synapses of an LTC grouped by destination neuron, as the crate's
/// fused kernel stores them: those of neuron `d` are
/// `offsets[d]..offsets[d + 1]`.
#[derive(Clone, Copy)]
pub struct Synapses<'a> {
    /// `[neurons + 1]`.
    pub offsets: &'a [Index],
    /// The presynaptic input or neuron of each synapse.
    pub sources: &'a [Index],
    /// Conductances (positive: softplus already applied where the model
    /// constrains them).
    pub w: &'a [f32],
    /// Sigmoid centres.
    pub mu: &'a [f32],
    /// Sigmoid slopes.
    pub sigma: &'a [f32],
    /// Reversal potentials.
    pub erev: &'a [f32],
}

impl Synapses<'_> {
    /// `a = w · sigmoid(sigma · (pre[src] - mu))` of every synapse, into
    /// `act`: the gather, then the sigmoids in a loop of their own, which
    /// vectorizes.
    fn activate(&self, pre: &[f32], act: &mut [f32]) {
        let act = &mut act[..self.sources.len()];
        let params = self.sigma.iter().zip(self.mu).zip(self.sources);
        for (z, ((&sigma, &mu), &src)) in act.iter_mut().zip(params) {
            *z = sigma * (pre[src as usize] - mu);
        }
        for (z, &w) in act.iter_mut().zip(self.w) {
            *z = w * sigmoid(*z);
        }
    }

    /// `f(dest, Σ a·erev, Σ a)` for every destination in turn, with `a`
    /// from [`activate`](Self::activate).
    fn sums(&self, act: &[f32], mut f: impl FnMut(usize, f32, f32)) {
        let mut synapses = act.iter().zip(self.erev);
        for (dest, bounds) in self.offsets.windows(2).enumerate() {
            let (mut num, mut den) = (0.0f32, 0.0f32);
            for (&a, &erev) in synapses.by_ref().take((bounds[1] - bounds[0]) as usize) {
                num += a * erev;
                den += a;
            }
            f(dest, num, den);
        }
    }
}

/// A liquid time-constant cell.
#[derive(Clone, Copy)]
pub struct Ltc<'a> {
    /// Neurons (the state size).
    pub neurons: usize,
    /// Motor neurons (the first ones): the cell's outputs.
    pub motor: usize,
    /// Input map weight `[inputs]`, or empty.
    pub input_w: &'a [f32],
    /// Input map bias `[inputs]`, or empty.
    pub input_b: &'a [f32],
    /// Output map weight `[motor]`, or empty.
    pub output_w: &'a [f32],
    /// Output map bias `[motor]`, or empty.
    pub output_b: &'a [f32],
    /// Sensory synapses (sources are inputs).
    pub sensory: Synapses<'a>,
    /// Recurrent synapses (sources are neurons).
    pub recurrent: Synapses<'a>,
    /// Membrane capacitance `[neurons]` (positive).
    pub cm: &'a [f32],
    /// Leak conductance `[neurons]` (positive).
    pub gleak: &'a [f32],
    /// Leak potential `[neurons]`.
    pub vleak: &'a [f32],
    /// Solver steps per observation.
    pub unfolds: usize,
    /// Added to every denominator.
    pub epsilon: f32,
}

/// `x · w + b` in place, for the maps that are there.
fn map(values: &mut [f32], weight: &[f32], bias: &[f32]) {
    if !weight.is_empty() {
        for (v, w) in values.iter_mut().zip(weight) {
            *v *= w;
        }
    }
    if !bias.is_empty() {
        for (v, b) in values.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

impl Ltc<'_> {
    /// Advances the potentials `v` (`[neurons]`) by one observation `x`:
    /// `unfolds` semi-implicit Euler steps of `h = elapsed / unfolds`,
    /// `v' = (cm·v + h·(gleak·vleak + Σ a·erev)) / (cm + h·(gleak + Σ a +
    /// epsilon))`. Writes the mapped motor potentials to `out` (`[motor]`);
    /// `scratch` holds `inputs + 3·neurons` floats and one a synapse (of
    /// the larger group).
    pub fn step(
        &self,
        x: &[f32],
        v: &mut [f32],
        elapsed: f32,
        out: &mut [f32],
        scratch: &mut [f32],
    ) {
        let n = self.neurons;
        let (mapped, rest) = scratch.split_at_mut(x.len());
        let (numerator_leak, rest) = rest.split_at_mut(n);
        let (denominator_leak, rest) = rest.split_at_mut(n);
        let (next, act) = rest.split_at_mut(n);
        mapped.copy_from_slice(x);
        map(mapped, self.input_w, self.input_b);
        self.sensory.activate(mapped, act);
        self.sensory.sums(act, |d, num, den| {
            numerator_leak[d] = self.gleak[d] * self.vleak[d] + num;
            denominator_leak[d] = self.gleak[d] + den + self.epsilon;
        });
        let h = elapsed / self.unfolds as f32;
        for _ in 0..self.unfolds {
            self.recurrent.activate(v, act);
            self.recurrent.sums(act, |d, num, den| {
                let denominator = self.cm[d] + h * (denominator_leak[d] + den);
                next[d] = (self.cm[d] * v[d] + h * (numerator_leak[d] + num)) / denominator;
            });
            v.copy_from_slice(next);
        }
        out.copy_from_slice(&v[..self.motor]);
        map(out, self.output_w, self.output_b);
    }
}

/// The LSTM cell mixed-memory models run before their cell.
#[derive(Clone, Copy)]
pub struct Lstm<'a> {
    /// `[4·hidden][inputs]`, with bias.
    pub input_map: Linear<'a>,
    /// `[4·hidden][hidden]`, no bias.
    pub recurrent_map: Linear<'a>,
    /// Added to the forget gate's pre-activation (upstream's 1).
    pub forget_bias: f32,
}

impl Lstm<'_> {
    /// `z = input_map(x) + recurrent_map(h)`, gates `i, ig, fg, og`;
    /// `c' = c·σ(fg + forget_bias) + tanh(i)·σ(ig)`, `h' = tanh(c')·σ(og)`,
    /// `h` overwritten in place; `scratch` holds `8·hidden` floats.
    pub fn step(&self, x: &[f32], h: &mut [f32], c: &mut [f32], scratch: &mut [f32]) {
        let hidden = h.len();
        let (z, rest) = scratch.split_at_mut(4 * hidden);
        let recurrent = &mut rest[..4 * hidden];
        self.input_map.forward(x, z);
        self.recurrent_map.forward(h, recurrent);
        for (z, r) in z.iter_mut().zip(recurrent.iter()) {
            *z += r;
        }
        for j in 0..hidden {
            let (i, ig, fg, og) = (z[j], z[hidden + j], z[2 * hidden + j], z[3 * hidden + j]);
            c[j] = c[j] * sigmoid(fg + self.forget_bias) + tanh(i) * sigmoid(ig);
            h[j] = tanh(c[j]) * sigmoid(og);
        }
    }
}

/// The recurrent cell of a model.
#[derive(Clone, Copy)]
pub enum Cell<'a> {
    /// A liquid time-constant cell.
    Ltc(&'a Ltc<'a>),
    /// CfC layers, each reading the previous one's new state (one layer for
    /// a dense CfC), and the positions of the outputs in the last layer
    /// (empty: all of it).
    Cfc {
        /// The layers, first first; the state holds theirs in this order.
        layers: &'a [CfcLayer<'a>],
        /// Output positions within the last layer, or empty.
        outputs: &'a [Index],
    },
}

/// A whole model: optional LSTM, the cell, optional projection.
#[derive(Clone, Copy)]
pub struct Model<'a> {
    /// The cell's state size (the LSTM's memory has the same size).
    pub units: usize,
    /// The cell's outputs (the projection's inputs).
    pub cell_outputs: usize,
    /// Mixed memory.
    pub lstm: Option<Lstm<'a>>,
    /// The LSTM's output is the cell's input, and the cell steps from its
    /// own state (`LstmOutput::Input`); else it is the cell's state for
    /// the step and the cell reads the observation (upstream's).
    pub lstm_input: bool,
    /// The cell.
    pub cell: Cell<'a>,
    /// The projection of the cell's outputs.
    pub projection: Option<Linear<'a>>,
}

impl Model<'_> {
    /// One observation: `state` is `[units]` (with mixed memory `[2·units]`:
    /// hidden, then memory). `scratch` holds the exporter's `SCRATCH`
    /// floats: the cell's outputs, the LSTM's output when it is the cell's
    /// input (`units`), then the larger of the LSTM's and the cell's
    /// scratch.
    pub fn step(
        &self,
        state: &mut [f32],
        input: &[f32],
        elapsed: f32,
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let (cell_out, scratch) = scratch.split_at_mut(self.cell_outputs);
        let (hidden, memory) = state.split_at_mut(self.units);
        let lstm_out = if self.lstm_input { self.units } else { 0 };
        let (lstm_out, scratch) = scratch.split_at_mut(lstm_out);
        let input: &[f32] = match &self.lstm {
            // The LSTM reads the cell's state and writes its output apart.
            Some(lstm) if self.lstm_input => {
                lstm_out.copy_from_slice(hidden);
                lstm.step(input, lstm_out, memory, scratch);
                lstm_out
            }
            Some(lstm) => {
                lstm.step(input, hidden, memory, scratch);
                input
            }
            None => input,
        };
        match &self.cell {
            Cell::Ltc(ltc) => ltc.step(input, hidden, elapsed, cell_out, scratch),
            Cell::Cfc { layers, outputs } => {
                let mut start = 0;
                for (l, layer) in layers.iter().enumerate() {
                    let (before, rest) = hidden.split_at_mut(start);
                    let h = &mut rest[..layer.hidden];
                    if l == 0 {
                        layer.step(input, h, elapsed, scratch);
                    } else {
                        let previous = &before[start - layer.inputs..];
                        layer.step(previous, h, elapsed, scratch);
                    }
                    start += layer.hidden;
                }
                let last = &hidden[start - layers[layers.len() - 1].hidden..start];
                if outputs.is_empty() {
                    cell_out.copy_from_slice(last);
                } else {
                    for (o, &p) in cell_out.iter_mut().zip(outputs.iter()) {
                        *o = last[p as usize];
                    }
                }
            }
        }
        match &self.projection {
            Some(fc) => fc.forward(cell_out, output),
            None => output.copy_from_slice(cell_out),
        }
    }
}
