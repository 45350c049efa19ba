//! A dense CfC run over a whole sequence, forward and backpropagation
//! through time, on plain `f32` slices.
//!
//! One step of a sample with input `x`, state `h` (and, with mixed memory,
//! the LSTM's memory `c`) and elapsed time `ts`:
//!
//! ```text
//! mixed memory:  z = x·W_i + b_i + h·W_r;  c' = c·σ(z_f + fb) + tanh(z_i)·σ(z_g)
//!                h_in = tanh(c')·σ(z_o)                      (else h_in = h)
//! backbone:      a_0 = f([x, h_in]·W_0 + b_0),  a_l = f(a_{l-1}·W_l + b_l) (· dropout)
//!                (memory as input: a_0 = f([h_in, h]·W_0 + b_0))
//! heads:         [ff1, ff2, ta, tb] = a_L·W_h + b_h
//! default:       h' = g(ff1)·(1 - t) + t·g(ff2),  t = σ(ta·ts + tb)
//! no_gate:       h' = g(ff1) + t·g(ff2)
//! pure:          h' = -A·exp(-ts·(|w_tau| + |ff1|))·ff1 + A
//! ```
//!
//! with `g` the heads' squashing (`tanh`, or LeCun's). Without a backbone
//! the heads read `[x, h_in]` directly.
//!
//! What makes it fast: the input half of the first layer (unless it reads
//! the LSTM's output) and of the LSTM is one matrix product over all time
//! steps before the loop; each
//! step is then a few small products with the recurrent halves plus fused
//! elementwise work; the weights' gradients are added at every step of the
//! backward loop while the step's gradients are in cache, where a thread
//! runs [`STEP_ROWS`] samples or more, else one large product each after
//! the loop (over all steps and samples at once). A batch is
//! split over threads by whole sequences (samples are independent), so
//! threads meet once per call, not once per step.
//!
//! Padding: with `lengths`, the steps of a sample at or after its length
//! leave its state unchanged (their gradient passes through untouched).

use super::activation::{Backbone, lecun_tanh_grad, sigmoid, tanh, tanh_grad};
use super::gemm::{View, Weights, add_transposed_product, matmul};
use super::memory::Recycled;
use super::scalar::{exp, lecun_tanh};

/// How the heads become the next state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Four heads and the time gate: `gated` weighs `g(ff1)` by `1 - t`
    /// (mode default) or not (no_gate); `lecun` squashes with LeCun's
    /// `tanh` instead of `tanh`.
    Gated {
        /// Mode default (else no_gate).
        gated: bool,
        /// LeCun heads.
        lecun: bool,
    },
    /// The direct closed-form solution (mode pure): one head, `w_tau`, `A`.
    Pure,
}

/// The shape of a model: everything the kernel needs besides numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Features of one input step.
    pub inputs: usize,
    /// Hidden units (the CfC state).
    pub hidden: usize,
    /// Width of each backbone layer (none: heads on `[x, h]`).
    pub backbone: Vec<usize>,
    /// The backbone's activation.
    pub activation: Backbone,
    /// Which backbone layers are followed by dropout.
    pub dropout: Vec<bool>,
    /// The mix.
    pub mix: Mix,
    /// With mixed memory: the LSTM's forget-gate bias.
    pub forget_bias: Option<f32>,
    /// With mixed memory: the LSTM's output is the cell's input and the
    /// cell steps from its own state (the CfC paper's arrangement, the
    /// first layer reads `[h_in, h]`); else the LSTM's output is the
    /// cell's state for the step and the cell reads `x`.
    pub memory_as_input: bool,
}

impl Spec {
    /// Columns of the heads' product: `4 · hidden`, or `hidden` when pure.
    pub fn heads(&self) -> usize {
        match self.mix {
            Mix::Gated { .. } => 4 * self.hidden,
            Mix::Pure => self.hidden,
        }
    }

    /// Values per step of the state output: `h`, then `c` with mixed memory.
    pub fn state_width(&self) -> usize {
        if self.forget_bias.is_some() {
            2 * self.hidden
        } else {
            self.hidden
        }
    }

    /// Features the first layer reads besides the state: the LSTM's
    /// output, or `x`.
    fn cell_inputs(&self) -> usize {
        if self.memory_as_input {
            self.hidden
        } else {
            self.inputs
        }
    }

    /// Output width of layer `l` (the heads after the backbone).
    fn width(&self, l: usize) -> usize {
        self.backbone
            .get(l)
            .copied()
            .unwrap_or_else(|| self.heads())
    }

    /// Input width of layer `l` (`cell_inputs + hidden` for the first).
    fn fan_in(&self, l: usize) -> usize {
        if l == 0 {
            self.cell_inputs() + self.hidden
        } else {
            self.width(l - 1)
        }
    }

    /// Values of what a pure or gated mix keeps per hidden unit and step.
    fn mix_trace(&self) -> usize {
        match self.mix {
            Mix::Gated { .. } => 4,
            Mix::Pure => 2,
        }
    }

    fn dropout_layers(&self) -> usize {
        self.dropout.iter().filter(|&&d| d).count()
    }
}

/// A dense layer: `weight [fan_in, width]` (Burn's layout), `bias [width]`.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// `[fan_in, width]`, row-major.
    pub weight: &'a [f32],
    /// `[width]`.
    pub bias: &'a [f32],
}

/// The mixed-memory LSTM's weights.
#[derive(Clone, Copy, Debug)]
pub struct Lstm<'a> {
    /// `input_map`: `[inputs, 4·hidden]` and its bias.
    pub input: Layer<'a>,
    /// `recurrent_map`: `[hidden, 4·hidden]` (no bias).
    pub recurrent: &'a [f32],
}

/// Every weight of a model, as slices.
#[derive(Clone, Debug)]
pub struct Params<'a> {
    /// With mixed memory.
    pub lstm: Option<Lstm<'a>>,
    /// The backbone layers, then the heads (`[fan_in, heads]`, the four
    /// heads' columns side by side: `ff1 | ff2 | time_a | time_b`).
    pub layers: Vec<Layer<'a>>,
    /// Pure mode's `w_tau [hidden]` and `A [hidden]`.
    pub pure: Option<[&'a [f32]; 2]>,
}

/// The gradients of [`Params`], in the same layout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamGrads {
    /// `input_map` weight and bias, `recurrent_map` weight.
    pub lstm: Option<[Vec<f32>; 3]>,
    /// Weight and bias of each layer (heads last).
    pub layers: Vec<[Vec<f32>; 2]>,
    /// `w_tau`, `A`.
    pub pure: Option<[Vec<f32>; 2]>,
}

impl ParamGrads {
    fn zeros(spec: &Spec) -> Self {
        let h = spec.hidden;
        Self {
            lstm: spec.forget_bias.map(|_| {
                [
                    vec![0.0; spec.inputs * 4 * h],
                    vec![0.0; 4 * h],
                    vec![0.0; h * 4 * h],
                ]
            }),
            layers: (0..=spec.backbone.len())
                .map(|l| {
                    [
                        vec![0.0; spec.fan_in(l) * spec.width(l)],
                        vec![0.0; spec.width(l)],
                    ]
                })
                .collect(),
            pure: (spec.mix == Mix::Pure).then(|| [vec![0.0; h], vec![0.0; h]]),
        }
    }

    fn add(&mut self, other: &Self) {
        let add = |a: &mut Vec<f32>, b: &Vec<f32>| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        if let (Some(a), Some(b)) = (&mut self.lstm, &other.lstm) {
            a.iter_mut().zip(b).for_each(|(a, b)| add(a, b));
        }
        for (a, b) in self.layers.iter_mut().zip(&other.layers) {
            a.iter_mut().zip(b).for_each(|(a, b)| add(a, b));
        }
        if let (Some(a), Some(b)) = (&mut self.pure, &other.pure) {
            a.iter_mut().zip(b).for_each(|(a, b)| add(a, b));
        }
    }
}

/// One batch of sequences, batch-first.
#[derive(Clone, Copy, Debug)]
pub struct Sequence<'a> {
    /// Samples.
    pub batch: usize,
    /// Time steps.
    pub steps: usize,
    /// Inputs `[batch, steps, inputs]`.
    pub x: &'a [f32],
    /// Elapsed time of every step `[batch, steps]`.
    pub elapsed: &'a [f32],
    /// Initial state `[batch, hidden]`.
    pub h0: &'a [f32],
    /// Initial LSTM memory `[batch, hidden]` (empty without mixed memory).
    pub c0: &'a [f32],
    /// Valid steps of each sample (`None`: all).
    pub lengths: Option<&'a [usize]>,
    /// Dropout of each layer that has it, in layer order: `[steps, batch,
    /// width]` factors (0, or `1 / keep`).
    pub dropout: &'a [&'a [f32]],
}

impl Sequence<'_> {
    fn check(&self, spec: &Spec) {
        let (b, t, h) = (self.batch, self.steps, spec.hidden);
        assert_eq!(
            self.x.len(),
            b * t * spec.inputs,
            "x is not [batch, steps, inputs]"
        );
        assert_eq!(self.elapsed.len(), b * t, "elapsed is not [batch, steps]");
        assert!(
            !spec.memory_as_input || spec.forget_bias.is_some(),
            "memory_as_input needs mixed memory (forget_bias)"
        );
        assert_eq!(self.h0.len(), b * h, "h0 is not [batch, hidden]");
        let c = if spec.forget_bias.is_some() { b * h } else { 0 };
        assert_eq!(
            self.c0.len(),
            c,
            "c0 is not [batch, hidden] (mixed memory only)"
        );
        if let Some(lengths) = self.lengths {
            assert_eq!(lengths.len(), b, "one length per sample");
        }
        assert_eq!(
            self.dropout.len(),
            spec.dropout_layers(),
            "one dropout factor tensor per dropout layer"
        );
        let widths = spec.backbone.iter().zip(&spec.dropout).filter(|(_, d)| **d);
        for (mask, (&w, _)) in self.dropout.iter().zip(widths) {
            assert_eq!(
                mask.len(),
                t * b * w,
                "dropout factors are not [steps, batch, width]"
            );
        }
    }

    /// Whether step `t` of sample `b` is padding.
    fn padded(&self, b: usize, t: usize) -> bool {
        self.lengths.is_some_and(|l| t >= l[b])
    }
}

/// What the backward pass needs from the forward pass, for each chunk of
/// samples one thread ran.
#[derive(Clone, Debug)]
pub struct Trace {
    chunks: Vec<Chunk>,
}

/// One chunk's saved values, time-major (`[steps, rows, ..]`).
#[derive(Clone, Debug)]
struct Chunk {
    first: usize,
    rows: usize,
    /// Inputs.
    x: Vec<f32>,
    /// The state before each step.
    h_prev: Vec<f32>,
    /// The LSTM memory before each step (mixed memory).
    c_prev: Vec<f32>,
    /// `tanh(z_i), σ(z_g), σ(z_f + fb), σ(z_o), tanh(c')` (mixed memory).
    gates: Vec<f32>,
    /// The LSTM's output, the cell's input state (mixed memory).
    h_in: Vec<f32>,
    /// Pre-activations of each backbone layer (the first layer's, or the
    /// heads' without a backbone, also hold the input half).
    z: Vec<Vec<f32>>,
    /// Activations of each backbone layer.
    y: Vec<Vec<f32>>,
    /// Activations after dropout, for the layers that have it.
    dropped: Vec<Vec<f32>>,
    /// Gated: `g(ff1), g(ff2), t, ta`; pure: `ff1`, the decay.
    mix: Vec<f32>,
}

/// The backward pass's results.
#[derive(Debug)]
pub struct Grads {
    /// The weights'.
    pub params: ParamGrads,
    /// Of the inputs, `[batch, steps, inputs]`, when [`Wanted::inputs`].
    pub x: Option<Vec<f32>>,
    /// Of the elapsed times, `[batch, steps]`, when [`Wanted::elapsed`].
    pub elapsed: Option<Vec<f32>>,
    /// Of the initial state, `[batch, hidden]`.
    pub h0: Vec<f32>,
    /// Of the initial memory (mixed memory).
    pub c0: Vec<f32>,
}

/// Samples per thread below which a batch runs on one thread: the b32
/// workloads (`cargo bench --bench workloads`) split over both cores,
/// smaller batches do not (a thread hand-off per call costs ~10 µs).
const SAMPLES_PER_THREAD: usize = 16;

/// Runs the sequences: returns the state after every step, `[batch,
/// steps, state_width]` (`h`, then `c` with mixed memory), and the trace
/// when `keep_trace`.
pub fn forward(
    spec: &Spec,
    params: &Params<'_>,
    seq: &Sequence<'_>,
    keep_trace: bool,
    buffers: &Recycled<Vec<f32>>,
) -> (Vec<f32>, Option<Trace>) {
    seq.check(spec);
    let weights = StepWeights::new(spec, params, seq.batch, false);
    // Each chunk writes its samples' states in place (no copy joining
    // them on the calling thread).
    let len = seq.batch * seq.steps * spec.state_width();
    let chunks = std::sync::Mutex::new(Vec::new());
    let sample_len = seq.steps * spec.state_width();
    let run = |first: usize, rows: usize, out: &mut [f32]| {
        let chunk = forward_chunk(
            spec, params, &weights, seq, first, rows, keep_trace, buffers, out,
        );
        if let Some(chunk) = chunk {
            chunks.lock().unwrap_or_else(|e| e.into_inner()).push(chunk);
        }
    };
    let states = if sample_len == 0 {
        // No states to split by: every sample on this thread.
        run(0, seq.batch, &mut []);
        Vec::new()
    } else {
        super::parallel::new_rows(len, sample_len, SAMPLES_PER_THREAD, |first, out| {
            run(first, out.len() / sample_len, out)
        })
    };
    // What this pass did not reuse is freed (a pool holds one step's
    // buffers at most).
    buffers.clear();
    let mut chunks = chunks.into_inner().unwrap_or_else(|e| e.into_inner());
    chunks.sort_by_key(|c| c.first);
    (states, keep_trace.then_some(Trace { chunks }))
}

/// Every row of `out` set to `bias`.
fn set_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

/// `bias` added to every row of `out`.
fn add_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
    }
}

vectorized_fn! {
    avx512;
    #[allow(clippy::too_many_arguments)]
    fn forward_chunk(
        spec: &Spec,
        p: &Params<'_>,
        step_weights: &StepWeights<'_>,
        seq: &Sequence<'_>,
        first: usize,
        rows: usize,
        keep: bool,
        buffers: &Recycled<Vec<f32>>,
        states: &mut [f32],
    ) -> Option<Chunk> {
        let (steps, ni, h) = (seq.steps, spec.inputs, spec.hidden);
        let layers = spec.backbone.len();
        let heads = spec.heads();
        let sw = spec.state_width();
        let slots = if keep { steps } else { 1 };
        let slot = |t: usize| if keep { t } else { 0 };
        let block = |width: usize, s: usize| s * rows * width..(s + 1) * rows * width;

        // Time-major inputs, then the input halves of the first layer and of
        // the LSTM for every step at once. Their biases are added at each
        // step, while the step's rows are in cache (a pass setting every
        // step's rows to the bias first wrote 8 MB a thread at Walker2d
        // sizes); the product kernel adds its sums to what `c` holds, so
        // `x·W + b` is the `b + x·W` it computed before, to the bit.
        let mut x = buffers.buffer(steps * rows * ni);
        for r in 0..rows {
            for t in 0..steps {
                let src = ((first + r) * steps + t) * ni;
                x[(t * rows + r) * ni..][..ni].copy_from_slice(&seq.x[src..src + ni]);
            }
        }
        let xs = View::new(&x, steps * rows, ni);
        let w0 = spec.width(0);
        let ci = spec.cell_inputs();
        let first_layer = p.layers[0];
        let w0_in = View::new(&first_layer.weight[..ci * w0], ci, w0);
        let mut z0 = buffers.buffer(steps * rows * w0);
        if !spec.memory_as_input {
            matmul(xs, w0_in, &mut z0, w0, false);
        }
        let mut lstm_z = p.lstm.map(|lstm| {
            let mut z = buffers.buffer(steps * rows * 4 * h);
            matmul(
                xs,
                View::new(lstm.input.weight, ni, 4 * h),
                &mut z,
                4 * h,
                false,
            );
            z
        });

        let mixed = p.lstm.is_some();
        let mut h_prev = buffers.buffer(slots * rows * h);
        let mut c_prev = buffers.buffer(if mixed { slots * rows * h } else { 0 });
        let mut gates = buffers.buffer(if mixed { slots * rows * 5 * h } else { 0 });
        let mut h_in = buffers.buffer(if mixed { slots * rows * h } else { 0 });
        // Layers after the first keep their pre-activations here (the first's
        // are `z0`).
        let mut z: Vec<Vec<f32>> = (1..layers)
            .map(|l| buffers.buffer(slots * rows * spec.width(l)))
            .collect();
        // A layer's output is kept for every step where the backward pass
        // reads it (the derivative, or the next layer's input when there is
        // no dropout); else one step's room.
        let y_slot = |l: usize, t: usize| if keep_output(spec, l) { slot(t) } else { 0 };
        let mut y: Vec<Vec<f32>> = (0..layers)
            .map(|l| {
                let kept = if keep_output(spec, l) { slots } else { 1 };
                buffers.buffer(kept * rows * spec.width(l))
            })
            .collect();
        let mut dropped: Vec<Vec<f32>> = (0..layers)
            .filter(|&l| spec.dropout[l])
            .map(|l| buffers.buffer(slots * rows * spec.width(l)))
            .collect();
        let mut mix = buffers.buffer(slots * rows * spec.mix_trace() * h);
        let mut head_buf = vec![0.0f32; rows * heads];

        let mut state: Vec<f32> = seq.h0[first * h..(first + rows) * h].to_vec();
        let mut memory: Vec<f32> = if mixed {
            seq.c0[first * h..(first + rows) * h].to_vec()
        } else {
            Vec::new()
        };
        let mut next = vec![0.0f32; rows * h];

        for t in 0..steps {
            let s = slot(t);
            if keep {
                // The backward pass reads it (no one does at inference).
                h_prev[block(h, s)].copy_from_slice(&state);
            }
            // Mixed memory: the LSTM step gives the cell's input state.
            if let (Some(recurrent), Some(fb), Some(lz), Some(lstm)) =
                (&step_weights.lstm, spec.forget_bias, lstm_z.as_mut(), p.lstm)
            {
                c_prev[block(h, s)].copy_from_slice(&memory);
                let zt = &mut lz[block(4 * h, t)];
                add_rows(zt, lstm.input.bias);
                recurrent.multiply(View::new(&state, rows, h), zt, 4 * h, true);
                let g = &mut gates[block(5 * h, s)];
                let hi = &mut h_in[block(h, s)];
                for r in 0..rows {
                    let rows_h = r * h..(r + 1) * h;
                    lstm_forward(
                        h,
                        &zt[r * 4 * h..(r + 1) * 4 * h],
                        fb,
                        &mut memory[rows_h.clone()],
                        &mut hi[rows_h],
                        &mut g[r * 5 * h..(r + 1) * 5 * h],
                    );
                }
            }
            // First layer: its input half (the LSTM's output, when it is the
            // cell's input) plus the state half.
            let zt0 = &mut z0[block(w0, t)];
            if spec.memory_as_input {
                set_rows(zt0, first_layer.bias);
            } else {
                add_rows(zt0, first_layer.bias);
            }
            let cell_state: &[f32] = if spec.memory_as_input {
                step_weights
                    .first_input()
                    .multiply(View::new(&h_in[block(h, s)], rows, h), zt0, w0, true);
                &state
            } else if mixed {
                &h_in[block(h, s)]
            } else {
                &state
            };
            step_weights.first_state.multiply(View::new(cell_state, rows, h), zt0, w0, true);
            // Backbone.
            let mut d = 0;
            for l in 0..layers {
                let width = spec.width(l);
                let ys = y_slot(l, t);
                if l > 0 {
                    let input = layer_output(spec, &y, &dropped, l - 1, s, rows);
                    let zl = &mut z[l - 1][block(width, s)];
                    set_rows(zl, p.layers[l].bias);
                    step_weights.layers[l - 1]
                        .multiply(View::new(input, rows, spec.width(l - 1)), zl, width, true);
                }
                let zl: &[f32] = if l == 0 {
                    &z0[block(w0, t)]
                } else {
                    &z[l - 1][block(width, s)]
                };
                spec.activation.forward(zl, &mut y[l][block(width, ys)]);
                if spec.dropout[l] {
                    let factors = &seq.dropout[d][(t * seq.batch + first) * width..][..rows * width];
                    let out = &mut dropped[d][block(width, s)];
                    out.iter_mut()
                        .zip(&y[l][block(width, ys)])
                        .zip(factors)
                        .for_each(|((o, &v), &m)| *o = v * m);
                    d += 1;
                }
            }
            // Heads. After a backbone, the product is written without the
            // bias, which each row gets just before the mix reads it, in
            // cache (setting every row to the bias first was a pass over
            // all of them, and the product then read them back).
            if layers > 0 {
                let input = layer_output(spec, &y, &dropped, layers - 1, s, rows);
                let width = spec.width(layers - 1);
                step_weights.layers[layers - 1]
                    .multiply(View::new(input, rows, width), &mut head_buf, heads, false);
            }
            let m = &mut mix[block(spec.mix_trace() * h, s)];
            for r in 0..rows {
                let ts = seq.elapsed[(first + r) * steps + t];
                let g: &[f32] = if layers == 0 {
                    &z0[block(heads, t)][r * heads..(r + 1) * heads]
                } else {
                    let g = &mut head_buf[r * heads..(r + 1) * heads];
                    add_rows(g, p.layers[layers].bias);
                    g
                };
                let out = &mut next[r * h..(r + 1) * h];
                let mr = &mut m[r * spec.mix_trace() * h..(r + 1) * spec.mix_trace() * h];
                mix_forward(spec, p, g, ts, out, mr);
            }
            // Padding keeps the state; the rest moves on (the buffers
            // swapped, not copied).
            for r in 0..rows {
                if seq.padded(first + r, t) {
                    next[r * h..(r + 1) * h].copy_from_slice(&state[r * h..(r + 1) * h]);
                    if mixed {
                        memory[r * h..(r + 1) * h]
                            .copy_from_slice(&c_prev[block(h, s)][r * h..(r + 1) * h]);
                    }
                }
            }
            std::mem::swap(&mut state, &mut next);
            for r in 0..rows {
                let out = &mut states[(r * steps + t) * sw..(r * steps + t + 1) * sw];
                out[..h].copy_from_slice(&state[r * h..(r + 1) * h]);
                if mixed {
                    out[h..].copy_from_slice(&memory[r * h..(r + 1) * h]);
                }
            }
        }
        buffers.keep_large(lstm_z);
        keep.then(|| Chunk {
            first,
            rows,
            x,
            h_prev,
            c_prev,
            gates,
            h_in,
            z: std::iter::once(z0).chain(z).collect(),
            y,
            dropped,
            mix,
        })
    }
}

/// The weights every step multiplies by, each packed once per sequence
/// for all threads' chunks of the batch ([`Weights`]: when the batch has
/// more than four samples): the LSTM's recurrent weights, the first
/// layer's input half (read at every step when it is the LSTM's output)
/// and state half, and each later layer's, heads last. The backward pass
/// multiplies by their transposes.
struct StepWeights<'a> {
    lstm: Option<Weights<'a>>,
    first_input: Option<Weights<'a>>,
    first_state: Weights<'a>,
    /// Layers `1..=backbone.len()`.
    layers: Vec<Weights<'a>>,
}

impl<'a> StepWeights<'a> {
    /// For the chunks of a batch of `batch` samples, `transposed` for the
    /// backward pass.
    fn new(spec: &Spec, p: &Params<'a>, batch: usize, transposed: bool) -> Self {
        let (h, ci, w0) = (spec.hidden, spec.cell_inputs(), spec.width(0));
        let first = p.layers[0].weight;
        let pack = |view: View<'a>| Weights::new(if transposed { view.t() } else { view }, batch);
        Self {
            lstm: p.lstm.map(|lstm| pack(View::new(lstm.recurrent, h, 4 * h))),
            first_input: spec
                .memory_as_input
                .then(|| pack(View::new(&first[..ci * w0], ci, w0))),
            first_state: pack(View::new(&first[ci * w0..], h, w0)),
            layers: (1..=spec.backbone.len())
                .map(|l| {
                    pack(View::new(
                        p.layers[l].weight,
                        spec.width(l - 1),
                        spec.width(l),
                    ))
                })
                .collect(),
        }
    }

    fn first_input(&self) -> &Weights<'a> {
        self.first_input
            .as_ref()
            .expect("memory as input has the first layer's input half")
    }
}

/// Whether the forward pass keeps backbone layer `l`'s output `y` for
/// every step: where the derivative is computed from it, or where it is
/// the next layer's input (no dropout). A layer with dropout and a
/// derivative from `z` (SiLU, ReLU, GELU) needs only `z` and the dropped
/// output.
fn keep_output(spec: &Spec, l: usize) -> bool {
    spec.activation.derives_from_output() || !spec.dropout[l]
}

/// The output of backbone layer `l` at slot `s`: after dropout if it has
/// it (without, its `y` is kept for every step: [`keep_output`]).
fn layer_output<'a>(
    spec: &Spec,
    y: &'a [Vec<f32>],
    dropped: &'a [Vec<f32>],
    l: usize,
    s: usize,
    rows: usize,
) -> &'a [f32] {
    let width = spec.width(l);
    let range = s * rows * width..(s + 1) * rows * width;
    if spec.dropout[l] {
        let d = spec.dropout[..l].iter().filter(|&&d| d).count();
        &dropped[d][range]
    } else {
        &y[l][range]
    }
}

/// One sample's mix: heads `g`, elapsed `ts` → next state `out`; keeps
/// what the backward pass needs in `m`.
#[inline(always)]
fn mix_forward(spec: &Spec, p: &Params<'_>, g: &[f32], ts: f32, out: &mut [f32], m: &mut [f32]) {
    let h = spec.hidden;
    match spec.mix {
        // One loop per setting, so that no branch is left inside it to
        // keep it from vectorizing.
        Mix::Gated { gated, lecun } => match (gated, lecun) {
            (true, false) => gated_mix_forward::<true, false>(h, g, ts, out, m),
            (true, true) => gated_mix_forward::<true, true>(h, g, ts, out, m),
            (false, false) => gated_mix_forward::<false, false>(h, g, ts, out, m),
            (false, true) => gated_mix_forward::<false, true>(h, g, ts, out, m),
        },
        Mix::Pure => {
            let [w_tau, a] = p.pure.expect("pure parameters");
            for j in 0..h {
                let ff1 = g[j];
                let decay = exp(-ts * (w_tau[j].abs() + ff1.abs()));
                out[j] = -a[j] * decay * ff1 + a[j];
                m[j] = ff1;
                m[h + j] = decay;
            }
        }
    }
}

/// The gated mix of one sample: heads `g` (`ff1 | ff2 | time_a | time_b`,
/// `hidden` each) and elapsed `ts` → next state `out`; keeps `g(ff1)`,
/// `g(ff2)`, the gate and `time_a` in `m`.
#[inline(always)]
fn gated_mix_forward<const GATED: bool, const LECUN: bool>(
    h: usize,
    g: &[f32],
    ts: f32,
    out: &mut [f32],
    m: &mut [f32],
) {
    let squash = |v: f32| if LECUN { lecun_tanh(v) } else { tanh(v) };
    let (ff1, rest) = g[..4 * h].split_at(h);
    let (ff2, rest) = rest.split_at(h);
    let (time_a, time_b) = rest.split_at(h);
    let (m_f1, rest) = m[..4 * h].split_at_mut(h);
    let (m_f2, rest) = rest.split_at_mut(h);
    let (m_gate, m_ta) = rest.split_at_mut(h);
    let out = &mut out[..h];
    for j in 0..h {
        let f1 = squash(ff1[j]);
        let f2 = squash(ff2[j]);
        let ta = time_a[j];
        let gate = sigmoid(ta * ts + time_b[j]);
        out[j] = if GATED {
            f1 * (1.0 - gate) + gate * f2
        } else {
            f1 + gate * f2
        };
        m_f1[j] = f1;
        m_f2[j] = f2;
        m_gate[j] = gate;
        m_ta[j] = ta;
    }
}

/// The gated mix's backward for one sample: from `dh`, the heads'
/// gradients into `dg`; returns the elapsed time's gradient when
/// `elapsed`, else 0.
#[inline(always)]
fn gated_mix_backward<const GATED: bool, const LECUN: bool>(
    h: usize,
    m: &[f32],
    ts: f32,
    dh: &[f32],
    dg: &mut [f32],
    elapsed: bool,
) -> f32 {
    let squash_grad = |f: f32| {
        if LECUN {
            lecun_tanh_grad(f)
        } else {
            tanh_grad(f)
        }
    };
    let (m_f1, rest) = m[..4 * h].split_at(h);
    let (m_f2, rest) = rest.split_at(h);
    let (m_gate, m_ta) = rest.split_at(h);
    let (d_ff1, rest) = dg[..4 * h].split_at_mut(h);
    let (d_ff2, rest) = rest.split_at_mut(h);
    let (d_ta, d_tb) = rest.split_at_mut(h);
    let dh = &dh[..h];
    for j in 0..h {
        let (f1, f2, gate) = (m_f1[j], m_f2[j], m_gate[j]);
        let (d_f1, d_gate) = if GATED {
            (dh[j] * (1.0 - gate), dh[j] * (f2 - f1))
        } else {
            (dh[j], dh[j] * f2)
        };
        let d_z = d_gate * gate * (1.0 - gate);
        d_ff1[j] = d_f1 * squash_grad(f1);
        d_ff2[j] = dh[j] * gate * squash_grad(f2);
        d_ta[j] = d_z * ts;
        d_tb[j] = d_z;
    }
    // The sum apart, in order: a reduction would keep the loop above from
    // vectorizing, and reordering it would change the rounding.
    let mut d_ts = 0.0f32;
    if !elapsed {
        return d_ts;
    }
    for (&d_z, &ta) in d_tb.iter().zip(m_ta) {
        d_ts += d_z * ta;
    }
    d_ts
}

/// One sample's LSTM step (mixed memory): pre-activations `z` (`i | g |
/// f | o`, `hidden` each) and the forget gate's bias `fb`; updates
/// `memory` in place, writes the cell's input state `h_in`, keeps
/// `tanh(z_i), σ(z_g), σ(z_f + fb), σ(z_o), tanh(c')` in `gates`.
#[inline(always)]
fn lstm_forward(
    h: usize,
    z: &[f32],
    fb: f32,
    memory: &mut [f32],
    h_in: &mut [f32],
    gates: &mut [f32],
) {
    let (z_i, rest) = z[..4 * h].split_at(h);
    let (z_g, rest) = rest.split_at(h);
    let (z_f, z_o) = rest.split_at(h);
    let (g_i, rest) = gates[..5 * h].split_at_mut(h);
    let (g_g, rest) = rest.split_at_mut(h);
    let (g_f, rest) = rest.split_at_mut(h);
    let (g_o, g_tc) = rest.split_at_mut(h);
    let (memory, h_in) = (&mut memory[..h], &mut h_in[..h]);
    for j in 0..h {
        let i = tanh(z_i[j]);
        let ig = sigmoid(z_g[j]);
        let f = sigmoid(z_f[j] + fb);
        let o = sigmoid(z_o[j]);
        let c = memory[j] * f + i * ig;
        let tc = tanh(c);
        memory[j] = c;
        h_in[j] = tc * o;
        g_i[j] = i;
        g_g[j] = ig;
        g_f[j] = f;
        g_o[j] = o;
        g_tc[j] = tc;
    }
}

/// One sample's LSTM step backward: from the kept `gates`, the memory
/// before the step and the gradients of the cell's input state and of the
/// memory after the step (`[d_h_in, d_c]`), the pre-activations' gradients
/// `dz` and the previous memory's `dc_prev`. A padded step passes the
/// memory's gradient through.
#[inline(always)]
fn lstm_backward(
    h: usize,
    gates: &[f32],
    c_prev: &[f32],
    padded: bool,
    [d_h_in, dc]: [&[f32]; 2],
    dz: &mut [f32],
    dc_prev: &mut [f32],
) {
    let (g_i, rest) = gates[..5 * h].split_at(h);
    let (g_g, rest) = rest.split_at(h);
    let (g_f, rest) = rest.split_at(h);
    let (g_o, g_tc) = rest.split_at(h);
    let (dz_i, rest) = dz[..4 * h].split_at_mut(h);
    let (dz_g, rest) = rest.split_at_mut(h);
    let (dz_f, dz_o) = rest.split_at_mut(h);
    let (c_prev, d_h_in, dc, dc_prev) = (&c_prev[..h], &d_h_in[..h], &dc[..h], &mut dc_prev[..h]);
    for j in 0..h {
        let (i, ig, f, o, tc) = (g_i[j], g_g[j], g_f[j], g_o[j], g_tc[j]);
        let dhl = d_h_in[j];
        let dct = if padded {
            0.0
        } else {
            dc[j] + dhl * o * tanh_grad(tc)
        };
        dz_i[j] = dct * ig * tanh_grad(i);
        dz_g[j] = dct * i * ig * (1.0 - ig);
        dz_f[j] = dct * c_prev[j] * f * (1.0 - f);
        dz_o[j] = dhl * tc * o * (1.0 - o);
        dc_prev[j] = if padded { dc[j] } else { dct * f };
    }
}

/// Samples a thread runs from which the backward pass adds the weights'
/// gradients at every step, while the step's gradients are in cache (the
/// product kernel reads them in place: `gemm::add_transposed_product`);
/// with fewer, one product over all steps after the loop (the same
/// kernel, a block of rows at a time), as
/// per step the products are too small (`cfc_train_b32_l64`, 16 samples a
/// thread: 4.9 ms a step became 6.8). With glibc holding freed memory
/// (docs/performance.md), five alternated rounds each:
/// `walker_nogate_train_b128` (64 a thread) 54.5 to 49.9 ms,
/// `walker_mixed_train_b128` (64) 64.3 to 58.5, `walker_cfc_train_b256`
/// (128) 46.0 to 45.7 (medians).
const STEP_ROWS: usize = 64;

/// Steps whose weights' gradients the backward pass adds at once (a
/// span), for a chunk of `rows` samples: one from [`STEP_ROWS`] on, else
/// all `steps`.
fn spans(rows: usize, steps: usize) -> usize {
    if rows >= STEP_ROWS { 1 } else { steps.max(1) }
}

/// The row stride of the heads' gradients kept for a span of steps: 16
/// values (64 bytes) more than their `width`, so that rows a power of two
/// apart (the heads' 256 or 1024 values) do not fall into the same few
/// sets of the L1 cache when the product kernel reads them in place (a
/// product of 128 rows by 256 columns: 140 GFLOP/s with the rows 1 KB
/// apart, 155 with 64 bytes more).
fn padded(width: usize) -> usize {
    width + 16
}

/// Adds one span's share of a layer's gradients: `dw += inputᵀ · dz` and
/// `db += Σ dz` over the span's rows, with `dz` `[rows, width]` and each
/// `(input, columns)` of `inputs` `[rows, columns]` (contiguous), their
/// rows of `dw` (`[Σ columns, width]`) in order.
fn add_layer_grads(dz: View<'_>, inputs: &[(&[f32], usize)], dw: &mut [f32], db: &mut [f32]) {
    let (rows, width) = dz.shape();
    dz.add_column_sums(db);
    let mut rest = dw;
    for &(input, columns) in inputs {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(columns * width);
        add_transposed_product(View::new(input, rows, columns), dz, part);
        rest = tail;
    }
}

/// `|x|`'s derivative as torch takes it: `sign(x)`, 0 at 0.
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Which gradients a backward pass computes besides the weights' and the
/// initial state's (which come with the pass): the inputs' cost a product
/// over every step and the elapsed times' a sum per sample and step, and a
/// model fed from data (its inputs and times untracked) needs neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The inputs' gradient, [`Grads::x`].
    pub inputs: bool,
    /// The elapsed times' gradient, [`Grads::elapsed`].
    pub elapsed: bool,
}

/// Backpropagation through time: from the gradient of every step's state
/// output (`[batch, steps, state_width]`, as [`forward`] returns), the
/// gradients of the weights and initial state, and those of the inputs and
/// elapsed times that are `wanted`.
pub fn backward(
    spec: &Spec,
    params: &Params<'_>,
    seq: &Sequence<'_>,
    trace: Trace,
    grad_states: &[f32],
    wanted: Wanted,
    buffers: &Recycled<Vec<f32>>,
) -> Grads {
    seq.check(spec);
    let sw = spec.state_width();
    assert_eq!(
        grad_states.len(),
        seq.batch * seq.steps * sw,
        "grad_states is not [batch, steps, state_width]"
    );
    let weights = StepWeights::new(spec, params, seq.batch, true);
    let parts = super::parallel::for_each(trace.chunks, |chunk| {
        backward_chunk(
            spec,
            params,
            &weights,
            seq,
            chunk,
            grad_states,
            wanted,
            buffers,
        )
    });
    let h = spec.hidden;
    let mut grads = Grads {
        params: ParamGrads::zeros(spec),
        x: wanted
            .inputs
            .then(|| Vec::with_capacity(seq.batch * seq.steps * spec.inputs)),
        elapsed: wanted
            .elapsed
            .then(|| Vec::with_capacity(seq.batch * seq.steps)),
        h0: Vec::with_capacity(seq.batch * h),
        c0: Vec::with_capacity(if spec.forget_bias.is_some() {
            seq.batch * h
        } else {
            0
        }),
    };
    // A wanted gradient's parts, in batch order (every part has one).
    let join = |all: &mut Option<Vec<f32>>, part: Option<Vec<f32>>| {
        if let (Some(all), Some(part)) = (all, part) {
            all.extend(part);
        }
    };
    for part in parts {
        grads.params.add(&part.params);
        join(&mut grads.x, part.x);
        join(&mut grads.elapsed, part.elapsed);
        grads.h0.extend(part.h0);
        grads.c0.extend(part.c0);
    }
    grads
}

vectorized_fn! {
    avx512;
    #[allow(clippy::too_many_arguments)]
    fn backward_chunk(
        spec: &Spec,
        p: &Params<'_>,
        step_weights: &StepWeights<'_>,
        seq: &Sequence<'_>,
        c: Chunk,
        grad_states: &[f32],
        wanted: Wanted,
        buffers: &Recycled<Vec<f32>>,
    ) -> Grads {
        let mut c = c;
        let (steps, ni, h, rows, first) = (seq.steps, spec.inputs, spec.hidden, c.rows, c.first);
        let layers = spec.backbone.len();
        let heads = spec.heads();
        let sw = spec.state_width();
        let mt = spec.mix_trace();
        let block = |width: usize, t: usize| t * rows * width..(t + 1) * rows * width;
        let mixed = p.lstm.is_some();

        let mut grads = ParamGrads::zeros(spec);
        let mut grad_elapsed = wanted.elapsed.then(|| vec![0.0f32; rows * steps]);
        // Gradients of each layer's pre-activations (heads last) and of the
        // LSTM's, for every step: the weights' gradients are products of these
        // with the layers' inputs, a span of steps at a time, the inputs'
        // after the loop. Each step's are written over what only that step
        // needed: a layer's over its pre-activations, the heads' over the
        // mix's trace where it has their size (gated) or over the
        // pre-activations without a backbone. Where a span is shorter than
        // the sequence (`ring`), the heads' are kept for one span only, in
        // rows of their own, padded.
        let span = spans(rows, steps);
        let ring = layers > 0 && span < steps;
        let heads_over_mix = layers > 0 && !ring && mt * h == heads;
        let heads_stride = if ring { padded(heads) } else { heads };
        let heads_at = |t: usize| (if ring { t % span } else { t }) * rows * heads_stride;
        let mut dz: Vec<Vec<f32>> = std::mem::take(&mut c.z);
        if layers > 0 {
            dz.push(if ring {
                vec![0.0; span * rows * heads_stride]
            } else if heads_over_mix {
                std::mem::take(&mut c.mix)
            } else {
                buffers.buffer(steps * rows * heads)
            });
        }
        let mut mix_row = vec![0.0f32; if heads_over_mix { heads } else { 0 }];
        let mut dz_lstm = buffers.buffer(if mixed { steps * rows * 4 * h } else { 0 });
        let mut carry_h = vec![0.0f32; rows * h];
        let mut carry_c = vec![0.0f32; if mixed { rows * h } else { 0 }];
        let mut dh = vec![0.0f32; rows * h];
        let mut dc = vec![0.0f32; if mixed { rows * h } else { 0 }];
        let mut d_out: Vec<f32> = Vec::new();
        let mut d_cell = vec![0.0f32; rows * h];
        let mut d_lstm_out = vec![0.0f32; if spec.memory_as_input { rows * h } else { 0 }];
        let w0 = spec.width(0);
        let ci = spec.cell_inputs();

        for t in (0..steps).rev() {
            // The gradient reaching this step's state: from its output and
            // from the next step.
            for r in 0..rows {
                let g = &grad_states[((first + r) * steps + t) * sw..][..sw];
                let rows_h = r * h..(r + 1) * h;
                let sum = |out: &mut [f32], a: &[f32], b: &[f32]| {
                    out.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o = a + b)
                };
                sum(&mut dh[rows_h.clone()], &g[..h], &carry_h[rows_h.clone()]);
                if mixed {
                    sum(&mut dc[rows_h.clone()], &g[h..], &carry_c[rows_h]);
                }
            }
            let padded: Vec<bool> = (0..rows).map(|r| seq.padded(first + r, t)).collect();
            // Padding: the step did nothing; its gradient passes through.
            let mut dh_step = dh.clone();
            for (r, &pad) in padded.iter().enumerate() {
                if pad {
                    dh_step[r * h..(r + 1) * h].fill(0.0);
                }
            }
            // The mix: the heads' gradients, into their own rows, or written
            // over the mix's trace (each row's copied out first) or the
            // heads' pre-activations.
            let dg = &mut dz[layers][heads_at(t)..];
            for r in 0..rows {
                let b = first + r;
                let ts = seq.elapsed[b * steps + t];
                let dgr = &mut dg[r * heads_stride..r * heads_stride + heads];
                let trace = mt * h;
                let mr: &[f32] = if heads_over_mix {
                    mix_row.copy_from_slice(dgr);
                    &mix_row
                } else {
                    &c.mix[block(trace, t)][r * trace..(r + 1) * trace]
                };
                let dhr = &dh_step[r * h..(r + 1) * h];
                let pure = grads.pure.as_mut();
                let d_ts = mix_backward(spec, p, mr, ts, dhr, dgr, pure, wanted.elapsed);
                if let Some(grad_elapsed) = grad_elapsed.as_mut() {
                    grad_elapsed[r * steps + t] = d_ts;
                }
            }
            // Back through the heads and the backbone to the cell's input
            // state.
            for l in (0..layers).rev() {
                let width = spec.width(l);
                let out_width = spec.width(l + 1);
                let upstream = if l + 1 == layers {
                    View::strided(&dz[layers][heads_at(t)..], rows, heads, heads_stride)
                } else {
                    View::new(&dz[l + 1][block(out_width, t)], rows, out_width)
                };
                d_out.resize(rows * width, 0.0);
                step_weights.layers[l].multiply(
                    upstream,
                    &mut d_out,
                    width,
                    false,
                );
                if spec.dropout[l] {
                    let d = spec.dropout[..l].iter().filter(|&&d| d).count();
                    let factors = &seq.dropout[d][(t * seq.batch + first) * width..][..rows * width];
                    d_out.iter_mut().zip(factors).for_each(|(g, &f)| *g *= f);
                }
                // Over the pre-activations, which `dz` still holds.
                let y: &[f32] = if spec.activation.derives_from_output() {
                    &c.y[l][block(width, t)]
                } else {
                    &[]
                };
                spec.activation.backward_over(&d_out, y, &mut dz[l][block(width, t)]);
            }
            let dz0 = View::new(&dz[0][block(w0, t)], rows, w0);
            step_weights.first_state.multiply(dz0, &mut d_cell, h, false);
            if spec.memory_as_input {
                step_weights.first_input().multiply(dz0, &mut d_lstm_out, h, false);
            }
            // Mixed memory: back through the LSTM to the previous state.
            let mut dh_prev = if let Some(recurrent) = &step_weights.lstm {
                let gates = &c.gates[block(5 * h, t)];
                let c_prev = &c.c_prev[block(h, t)];
                let dzl = &mut dz_lstm[block(4 * h, t)];
                let mut dc_prev = vec![0.0f32; rows * h];
                let d_out = if spec.memory_as_input { &d_lstm_out } else { &d_cell };
                for r in 0..rows {
                    let rows_h = r * h..(r + 1) * h;
                    lstm_backward(
                        h,
                        &gates[r * 5 * h..(r + 1) * 5 * h],
                        &c_prev[rows_h.clone()],
                        padded[r],
                        [&d_out[rows_h.clone()], &dc[rows_h.clone()]],
                        &mut dzl[r * 4 * h..(r + 1) * 4 * h],
                        &mut dc_prev[rows_h],
                    );
                }
                carry_c = dc_prev;
                // The state reaches the LSTM, and the cell too when the
                // cell steps from it.
                let mut dh_prev = if spec.memory_as_input {
                    d_cell.clone()
                } else {
                    vec![0.0f32; rows * h]
                };
                recurrent.multiply(
                    View::new(dzl, rows, 4 * h),
                    &mut dh_prev,
                    h,
                    spec.memory_as_input,
                );
                dh_prev
            } else {
                d_cell.clone()
            };
            for (r, &pad) in padded.iter().enumerate() {
                if pad {
                    dh_prev[r * h..(r + 1) * h].copy_from_slice(&dh[r * h..(r + 1) * h]);
                }
            }
            carry_h = dh_prev;
            // A span's first step: the weights' gradients over its steps.
            if t % span == 0 {
                let len = span.min(steps - t);
                let rows_of = |width: usize| t * rows * width..(t + len) * rows * width;
                let n = len * rows;
                for (l, (dz_l, [dw, db])) in dz.iter().zip(grads.layers.iter_mut()).enumerate() {
                    let width = spec.width(l);
                    let dz_l = if l == layers && layers > 0 {
                        View::strided(&dz_l[heads_at(t)..], n, width, heads_stride)
                    } else {
                        View::new(&dz_l[rows_of(width)], n, width)
                    };
                    if l == 0 {
                        // Its input half and its state half.
                        let (inputs, states) = match (mixed, spec.memory_as_input) {
                            (true, true) => (&c.h_in, &c.h_prev),
                            (true, false) => (&c.x, &c.h_in),
                            (false, _) => (&c.x, &c.h_prev),
                        };
                        let halves = [(&inputs[rows_of(ci)], ci), (&states[rows_of(h)], h)];
                        add_layer_grads(dz_l, &halves, dw, db);
                    } else {
                        let fan_in = spec.width(l - 1);
                        let to_span_end =
                            layer_output(spec, &c.y, &c.dropped, l - 1, 0, (t + len) * rows);
                        let input = &to_span_end[t * rows * fan_in..];
                        add_layer_grads(dz_l, &[(input, fan_in)], dw, db);
                    }
                }
                // The LSTM's: `input_map` from `x`, `recurrent_map` from the
                // state.
                if let Some([dw_i, db_i, dw_r]) = grads.lstm.as_mut() {
                    let dzl = View::new(&dz_lstm[rows_of(4 * h)], n, 4 * h);
                    add_layer_grads(dzl, &[(&c.x[rows_of(ni)], ni)], dw_i, db_i);
                    add_transposed_product(View::new(&c.h_prev[rows_of(h)], n, h), dzl, dw_r);
                }
            }
        }

        let dx = wanted.inputs.then(|| {
            let dz0 = View::new(&dz[0], steps * rows, w0);
            input_gradients(spec, p, dz0, &dz_lstm, rows, steps)
        });
        // The trace's buffers, for the next step's forward pass.
        buffers.keep_large([c.x, c.h_prev, c.c_prev, c.gates, c.h_in, c.mix, dz_lstm]);
        buffers.keep_large(dz.into_iter().chain(c.y).chain(c.dropped));
        Grads {
            params: grads,
            x: dx,
            elapsed: grad_elapsed,
            h0: carry_h,
            c0: carry_c,
        }
    }
}

/// The inputs' gradients of a chunk of `rows` samples, `[rows, steps,
/// inputs]`, from its steps' gradients of the first layer's
/// pre-activations `dz0` and of the LSTM's (`dz_lstm`, with mixed memory),
/// time-major: through the first layer (unless it reads the LSTM's
/// output) and the LSTM, one product over all steps and rows each.
fn input_gradients(
    spec: &Spec,
    p: &Params<'_>,
    dz0: View<'_>,
    dz_lstm: &[f32],
    rows: usize,
    steps: usize,
) -> Vec<f32> {
    let (n, ni, h) = (steps * rows, spec.inputs, spec.hidden);
    let w0 = spec.width(0);
    let mut dx_t = vec![0.0f32; n * ni];
    if !spec.memory_as_input {
        let first_layer = p.layers[0];
        matmul(
            dz0,
            View::new(&first_layer.weight[..ni * w0], ni, w0).t(),
            &mut dx_t,
            ni,
            false,
        );
    }
    if let Some(lstm) = p.lstm {
        let dzl = View::new(dz_lstm, n, 4 * h);
        matmul(
            dzl,
            View::new(lstm.input.weight, ni, 4 * h).t(),
            &mut dx_t,
            ni,
            true,
        );
    }
    let mut dx = vec![0.0f32; n * ni];
    for r in 0..rows {
        for t in 0..steps {
            dx[(r * steps + t) * ni..][..ni].copy_from_slice(&dx_t[(t * rows + r) * ni..][..ni]);
        }
    }
    dx
}

/// One sample's mix backward: from `dh` (of the next state), writes the
/// heads' gradients into `dg`, adds pure mode's parameter gradients, and
/// returns the elapsed time's gradient (gated: 0 unless `elapsed`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mix_backward(
    spec: &Spec,
    p: &Params<'_>,
    m: &[f32],
    ts: f32,
    dh: &[f32],
    dg: &mut [f32],
    pure: Option<&mut [Vec<f32>; 2]>,
    elapsed: bool,
) -> f32 {
    let h = spec.hidden;
    let mut d_ts = 0.0f32;
    match spec.mix {
        Mix::Gated { gated, lecun } => {
            d_ts = match (gated, lecun) {
                (true, false) => gated_mix_backward::<true, false>(h, m, ts, dh, dg, elapsed),
                (true, true) => gated_mix_backward::<true, true>(h, m, ts, dh, dg, elapsed),
                (false, false) => gated_mix_backward::<false, false>(h, m, ts, dh, dg, elapsed),
                (false, true) => gated_mix_backward::<false, true>(h, m, ts, dh, dg, elapsed),
            }
        }
        Mix::Pure => {
            let [w_tau, a] = p.pure.expect("pure parameters");
            let [d_w_tau, d_a] = pure.expect("pure gradients");
            for j in 0..h {
                let (ff1, decay) = (m[j], m[h + j]);
                // h' = A·(1 - decay·ff1), decay = exp(-ts·(|w_tau| + |ff1|))
                d_a[j] += dh[j] * (1.0 - decay * ff1);
                let d_decay = -a[j] * ff1 * dh[j];
                let d_exponent = d_decay * decay; // of -ts·(|w_tau| + |ff1|)
                dg[j] = -a[j] * decay * dh[j] - d_exponent * ts * sign(ff1);
                d_w_tau[j] -= d_exponent * ts * sign(w_tau[j]);
                d_ts -= d_exponent * (w_tau[j].abs() + ff1.abs());
            }
        }
    }
    d_ts
}

/// The weights of a model in one flat vector, as the Burn operation
/// receives them: with mixed memory `input_map` weight and bias and
/// `recurrent_map` weight; each backbone layer's weight and bias; then the
/// heads: gated, their four weights side by side as one `[fan_in,
/// 4·hidden]` matrix (`ff1 | ff2 | time_a | time_b`) and their biases as
/// one `[4·hidden]`; pure, `ff1`'s weight and bias, `w_tau`, `A`. Weights
/// are `[fan_in, width]`, row-major: every block is a [`Layer`] as the
/// kernel reads it, so nothing is copied.
#[derive(Debug)]
pub struct Flat<'a> {
    spec: &'a Spec,
    theta: &'a [f32],
}

impl<'a> Flat<'a> {
    /// The sizes of the blocks of `theta`, in order.
    pub fn sizes(spec: &Spec) -> Vec<usize> {
        let (i, h) = (spec.inputs, spec.hidden);
        let mut sizes = Vec::new();
        if spec.forget_bias.is_some() {
            sizes.extend([i * 4 * h, 4 * h, h * 4 * h]);
        }
        for l in 0..=spec.backbone.len() {
            sizes.extend([spec.fan_in(l) * spec.width(l), spec.width(l)]);
        }
        if spec.mix == Mix::Pure {
            sizes.extend([h, h]);
        }
        sizes
    }

    /// Reads `theta`.
    ///
    /// # Panics
    /// When `theta` does not hold [`sizes`](Self::sizes)' values.
    pub fn new(spec: &'a Spec, theta: &'a [f32]) -> Self {
        let total: usize = Self::sizes(spec).iter().sum();
        assert_eq!(
            theta.len(),
            total,
            "theta has {} values, the model {total}",
            theta.len()
        );
        Self { spec, theta }
    }

    /// The kernel's view of the weights.
    pub fn params(&self) -> Params<'_> {
        let mut rest = self.theta;
        let blocks: Vec<&[f32]> = Self::sizes(self.spec)
            .into_iter()
            .map(|n| {
                let (block, tail) = rest.split_at(n);
                rest = tail;
                block
            })
            .collect();
        let lstm = self.spec.forget_bias.map(|_| Lstm {
            input: Layer {
                weight: blocks[0],
                bias: blocks[1],
            },
            recurrent: blocks[2],
        });
        let at = if lstm.is_some() { 3 } else { 0 };
        let layers: Vec<Layer<'_>> = (0..=self.spec.backbone.len())
            .map(|l| Layer {
                weight: blocks[at + 2 * l],
                bias: blocks[at + 2 * l + 1],
            })
            .collect();
        let at = at + 2 * layers.len();
        let pure = (self.spec.mix == Mix::Pure).then(|| [blocks[at], blocks[at + 1]]);
        Params { lstm, layers, pure }
    }

    /// The gradient of `theta` from the kernel's gradients: their blocks
    /// in `theta`'s order.
    pub fn gradient(spec: &Spec, grads: ParamGrads) -> Vec<f32> {
        let mut out = Vec::with_capacity(Self::sizes(spec).iter().sum());
        let blocks = grads
            .lstm
            .into_iter()
            .flatten()
            .chain(grads.layers.into_iter().flatten())
            .chain(grads.pure.into_iter().flatten());
        for block in blocks {
            out.extend(block);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(backbone: &[usize], activation: Backbone, mix: Mix, mixed: Option<bool>) -> Spec {
        Spec {
            inputs: 3,
            hidden: 5,
            backbone: backbone.to_vec(),
            activation,
            dropout: backbone.iter().enumerate().map(|(l, _)| l == 0).collect(),
            mix,
            forget_bias: mixed.map(|_| 1.0),
            memory_as_input: mixed == Some(true),
        }
    }

    /// Forward and backward of `spec` over `batch` samples of 6 steps (the
    /// last sample padded after 4), the gradients `wanted`: the states and
    /// the gradients.
    fn run(spec: &Spec, batch: usize, wanted: Wanted) -> (Vec<f32>, Grads) {
        let steps = 6;
        let (ni, h) = (spec.inputs, spec.hidden);
        let wave =
            |n: usize, f: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * f).sin()).collect() };
        let theta: Vec<f32> = wave(Flat::sizes(spec).iter().sum(), 0.37);
        let theta: Vec<f32> = theta.iter().map(|w| 0.4 * w).collect();
        let x = wave(batch * steps * ni, 0.61);
        let elapsed: Vec<f32> = (0..batch * steps).map(|i| (i % 7) as f32 / 3.0).collect();
        let h0 = wave(batch * h, 0.23);
        let c0 = if spec.forget_bias.is_some() {
            wave(batch * h, 0.29)
        } else {
            Vec::new()
        };
        let mut lengths = vec![steps; batch];
        lengths[batch - 1] = 4;
        let masks: Vec<Vec<f32>> = (0..spec.backbone.len())
            .filter(|&l| spec.dropout[l])
            .map(|l| {
                let n = steps * batch * spec.width(l);
                (0..n)
                    .map(|i| if i % 5 == 2 { 0.0 } else { 1.25 })
                    .collect()
            })
            .collect();
        let dropout: Vec<&[f32]> = masks.iter().map(Vec::as_slice).collect();
        let seq = Sequence {
            batch,
            steps,
            x: &x,
            elapsed: &elapsed,
            h0: &h0,
            c0: &c0,
            lengths: Some(&lengths),
            dropout: &dropout,
        };
        let flat = Flat::new(spec, &theta);
        let buffers = Recycled::default();
        let (states, trace) = forward(spec, &flat.params(), &seq, true, &buffers);
        let grad_states: Vec<f32> = states.iter().map(|s| (3.0 * s).cos()).collect();
        let trace = trace.expect("kept");
        let grads = backward(
            spec,
            &flat.params(),
            &seq,
            trace,
            &grad_states,
            wanted,
            &buffers,
        );
        (states, grads)
    }

    fn specs() -> Vec<Spec> {
        let gated = Mix::Gated {
            gated: true,
            lecun: false,
        };
        let no_gate = Mix::Gated {
            gated: false,
            lecun: true,
        };
        vec![
            spec(&[16], Backbone::Silu, gated, None),
            spec(&[8, 7], Backbone::LecunTanh, no_gate, None),
            spec(&[], Backbone::Relu, Mix::Pure, None),
            spec(&[9], Backbone::Gelu, gated, Some(false)),
            spec(&[9], Backbone::Tanh, gated, Some(true)),
        ]
    }

    const ALL: Wanted = Wanted {
        inputs: true,
        elapsed: true,
    };

    /// The inputs' and elapsed times' gradients, when not wanted, are not
    /// computed, and the others are the same to the bit; when wanted, they
    /// have their shapes. Batches of 5 (one product of the weights'
    /// gradients over all steps) and 140 (one a step, `STEP_ROWS`).
    #[test]
    fn unwanted_gradients_are_skipped_and_change_nothing_else() {
        for spec in specs() {
            for batch in [5, 140] {
                let (states, all) = run(&spec, batch, ALL);
                let none = Wanted {
                    inputs: false,
                    elapsed: false,
                };
                let (same_states, some) = run(&spec, batch, none);
                assert_eq!(states, same_states, "{spec:?}");
                assert_eq!(some.params, all.params, "{spec:?} batch {batch}");
                assert_eq!((&some.h0, &some.c0), (&all.h0, &all.c0), "{spec:?}");
                assert!(some.x.is_none() && some.elapsed.is_none());
                let x = all.x.expect("inputs wanted");
                let elapsed = all.elapsed.expect("elapsed wanted");
                assert_eq!(x.len(), batch * 6 * spec.inputs);
                assert_eq!(elapsed.len(), batch * 6);
                assert!(x.iter().any(|&g| g != 0.0) && elapsed.iter().any(|&g| g != 0.0));
            }
        }
    }

    /// Where the CPU has AVX-512, the chunks compiled for it give the AVX2
    /// build's bits: states and every gradient (the same operations, none
    /// contracted into an FMA; the products' tiles agree, `gemm::panels`).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_chunks_give_the_avx2_bits() {
        use std::sync::atomic::Ordering::Relaxed;
        if !crate::kernels::has_avx512() {
            return;
        }
        for spec in specs() {
            for batch in [5, 140] {
                let (states, grads) = run(&spec, batch, ALL);
                crate::kernels::NARROWER.store(true, Relaxed);
                let (narrower_states, narrower) = run(&spec, batch, ALL);
                crate::kernels::NARROWER.store(false, Relaxed);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&narrower_states),
                    bits(&states),
                    "{spec:?} batch {batch}"
                );
                assert_eq!(narrower.params, grads.params, "{spec:?} batch {batch}");
                for (a, b) in [(&narrower.x, &grads.x), (&narrower.elapsed, &grads.elapsed)] {
                    assert_eq!(
                        bits(a.as_ref().unwrap()),
                        bits(b.as_ref().unwrap()),
                        "{spec:?}"
                    );
                }
                assert_eq!(bits(&narrower.h0), bits(&grads.h0), "{spec:?}");
                assert_eq!(bits(&narrower.c0), bits(&grads.c0), "{spec:?}");
            }
        }
    }
}
