//! Sequence models: [`LTC`] and [`CfC`], one time loop for both.
//!
//! Both are an [`Rnn`]: a [`RecurrentCell`] driven through time, optionally
//! preceded at every step by the [`LSTMCell`] of mixed memory and followed by
//! a projection. Every entry point (`forward`, `forward_timed`,
//! `forward_unbatched`, `step`, [`Stateful`]) runs the same step code, so a
//! model fed one observation at a time computes exactly what it computes on
//! the whole sequence.

mod bidirectional;
mod cfc;
mod graph;
mod ltc;

use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Also at [`crate::cells::AnyCfCCell`], where it lives: the cell type of a
/// [`CfC`], named here beside it.
pub use crate::cells::AnyCfCCell;
pub use bidirectional::{BiState, Bidirectional, Merge};
pub use cfc::{CfC, CfCConfig};
pub use ltc::{LTC, LTCConfig};

use crate::ConfigError;
use burn::tensor::TensorData;
use graph::JoinParameters;

pub use crate::cells::{Initialization, LstmOutput};
use crate::cells::{
    LSTMCell, LSTMCellConfig, MixedMemory, RecurrentCell, SequenceInputs, check_elapsed,
    check_features, check_shape, projection,
};
use crate::wirings::{AnyWiring, AutoNCP, Custom, FullyConnected, NCP, Random};

/// The `units` argument of [`LTCConfig`] and [`CfCConfig`]: a neuron count
/// (a fully connected LTC, a dense CfC) or a wiring.
///
/// ```
/// use ncps::rnn::Units;
/// use ncps::wirings::AutoNCP;
///
/// let dense = Units::from(32);
/// let wired = Units::from(AutoNCP::new(16, 1)?);
/// assert!(matches!(dense, Units::Count(32)));
/// assert!(matches!(wired, Units::Wiring(_)));
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Units {
    /// This many neurons (hidden units).
    Count(usize),
    /// The neurons and synapses of a wiring.
    Wiring(AnyWiring),
}

impl Units {
    /// The dense unit count; `None` for a wiring (which checks its own sizes).
    pub(crate) fn count(&self) -> Option<usize> {
        match self {
            Units::Count(units) => Some(*units),
            Units::Wiring(_) => None,
        }
    }
}

impl From<usize> for Units {
    fn from(units: usize) -> Self {
        Units::Count(units)
    }
}

macro_rules! units_from_wiring {
    ($($wiring:ty),*) => {$(
        impl From<$wiring> for Units {
            fn from(wiring: $wiring) -> Self {
                Units::Wiring(wiring.into())
            }
        }
    )*};
}
units_from_wiring!(AnyWiring, FullyConnected, Random, NCP, AutoNCP, Custom);

/// The recurrent state of a model: the cell's state and, with mixed memory,
/// the LSTM's memory cell. `D = 2` for `[batch, state_size]` tensors, `D =
/// 1` for the unbatched `[state_size]` form.
#[derive(Clone, Debug)]
pub struct RnnState<B: Backend, const D: usize> {
    /// The cell's state (`hx`): membrane potentials or hidden units.
    pub hidden: Tensor<B, D>,
    /// The LSTM memory cell (`cx`); present exactly with mixed memory.
    pub memory: Option<Tensor<B, D>>,
}

impl<B: Backend, const D: usize> RnnState<B, D> {
    /// A state without mixed memory.
    pub fn new(hidden: Tensor<B, D>) -> Self {
        Self {
            hidden,
            memory: None,
        }
    }

    /// A mixed-memory state: `(h, c)`.
    pub fn with_memory(hidden: Tensor<B, D>, memory: Tensor<B, D>) -> Self {
        Self {
            hidden,
            memory: Some(memory),
        }
    }
}

/// A recurrent cell driven through time: the common body of [`LTC`] and
/// [`CfC`] (which are `Rnn`s of their cells).
///
/// Parameter names follow upstream's modules: `cell` is upstream's
/// `rnn_cell`, `lstm` the mixed-memory LSTM, `fc` the projection.
#[derive(Module, Debug)]
pub struct Rnn<B: Backend, C> {
    /// The cell (upstream's `rnn_cell`).
    pub cell: C,
    /// The LSTM cell of mixed memory, run before the cell at every step.
    pub lstm: Option<LSTMCell<B>>,
    /// Projection of every output (CfC's `proj_size`).
    pub fc: Option<Linear<B>>,
    /// Inputs and outputs are `[batch, time, features]` (else `[time, batch, features]`).
    pub batch_first: bool,
    /// Return every step's output (else only the last step's).
    pub return_sequences: bool,
    /// Process each sequence from its last step to its first (keras'
    /// `go_backwards`); outputs come in processing order. A setting, not
    /// part of the record (records saved before it existed still load).
    #[module(skip)]
    pub go_backwards: bool,
    /// Where the mixed-memory LSTM's output goes (a setting, not part of
    /// the record; records saved before it existed still load).
    #[module(skip)]
    pub lstm_output: LstmOutput,
}

/// The options [`LTCConfig`] and [`CfCConfig`] share.
pub(crate) struct SequenceOptions {
    pub input_size: usize,
    /// The dense unit count (`None` with a wiring, which checks its own).
    pub units: Option<usize>,
    pub return_sequences: bool,
    pub batch_first: bool,
    pub go_backwards: bool,
    pub mixed_memory: bool,
    /// The mixed-memory LSTM's forget-gate bias.
    pub forget_bias: f64,
    /// Where the mixed-memory LSTM's output goes.
    pub lstm_output: LstmOutput,
    pub proj_size: Option<usize>,
    /// How the LSTM and the projection start.
    pub initialization: Initialization,
}

impl SequenceOptions {
    /// Checks the options both configs share, before any cell is built.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.input_size == 0 {
            return Err(ConfigError::invalid("input_size", 0, "at least 1"));
        }
        if self.units == Some(0) {
            return Err(ConfigError::invalid("units", 0, "at least 1"));
        }
        if self.proj_size == Some(0) {
            return Err(ConfigError::invalid("proj_size", 0, "at least 1 (or None)"));
        }
        if self.lstm_output == LstmOutput::Input && !self.mixed_memory {
            return Err(ConfigError::invalid(
                "lstm_output",
                "Input",
                "LstmOutput::State without mixed_memory (there is no LSTM)",
            ));
        }
        Ok(())
    }

    /// Features the cell reads at every step, for a cell of `state_size`
    /// neurons: the LSTM's output when it is the cell's input, else the
    /// model's input.
    pub(crate) fn cell_input_size(&self, state_size: usize) -> usize {
        match self.lstm_output {
            LstmOutput::Input => state_size,
            LstmOutput::State => self.input_size,
        }
    }
}

impl<B: Backend, C: RecurrentCell<B>> Rnn<B, C> {
    /// Wraps an initialised cell with the LSTM and projection the options ask for.
    pub(crate) fn assemble(
        cell: C,
        options: SequenceOptions,
        device: &B::Device,
    ) -> Result<Self, ConfigError> {
        let lstm = if options.mixed_memory {
            Some(
                LSTMCellConfig::new(options.input_size, cell.state_size())
                    .with_forget_bias(options.forget_bias)
                    .with_initialization(options.initialization)
                    .init(device)?,
            )
        } else {
            None
        };
        let fc = options
            .proj_size
            .map(|size| projection(cell.output_size(), size, options.initialization, device));
        Ok(Self {
            cell,
            lstm,
            fc,
            batch_first: options.batch_first,
            return_sequences: options.return_sequences,
            go_backwards: options.go_backwards,
            lstm_output: options.lstm_output,
        })
    }

    /// Features of one input step (the LSTM's, when the cell reads the
    /// LSTM's output).
    pub fn input_size(&self) -> usize {
        match (&self.lstm, self.lstm_output) {
            (Some(lstm), LstmOutput::Input) => lstm.input_map.weight.dims()[0],
            _ => self.cell.input_size(),
        }
    }

    /// The mixed-memory LSTM and where its output goes.
    fn memory(&self) -> Option<MixedMemory<'_, B>> {
        self.lstm.as_ref().map(|lstm| MixedMemory {
            lstm,
            output: self.lstm_output,
        })
    }

    /// Size of the hidden state `hx` (and of the memory `cx`).
    pub fn state_size(&self) -> usize {
        self.cell.state_size()
    }

    /// Features of one output step (the projection's size if any).
    pub fn output_size(&self) -> usize {
        match &self.fc {
            Some(fc) => fc.weight.dims()[1],
            None => self.cell.output_size(),
        }
    }

    /// Whether the model carries an LSTM memory (`mixed_memory`).
    pub fn has_memory(&self) -> bool {
        self.lstm.is_some()
    }

    /// Runs a sequence with one time unit between steps.
    ///
    /// # Shapes
    /// - input: `[batch, time, input_size]` (`[time, batch, input_size]`
    ///   when not `batch_first`)
    /// - state: `hidden` `[batch, state_size]`, and `memory` of the same
    ///   shape with mixed memory; zeros when `None`
    /// - returns: the outputs `[batch, time, output_size]` (time-major when
    ///   not `batch_first`; the time axis has length 1 when not
    ///   `return_sequences`) and the final state
    ///
    /// # Panics
    /// With a message naming the argument when the input's feature size or
    /// the state's shape does not fit the model, or the input has no time
    /// steps. The input's rank is part of its type: a rank-4 input does
    /// not compile.
    ///
    /// ```compile_fail
    /// use burn::backend::NdArray;
    /// use burn::prelude::*;
    /// use ncps::rnn::{CfCConfig, Units};
    ///
    /// let device = Default::default();
    /// let model = CfCConfig::new(3, Units::from(8)).init::<NdArray>(&device).unwrap();
    /// let input = Tensor::<NdArray, 4>::zeros([2, 5, 3, 1], &device);
    /// model.forward(input, None); // expected `Tensor<_, 3>`, found `Tensor<_, 4>`
    /// ```
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        state: Option<RnnState<B, 2>>,
    ) -> (Tensor<B, 3>, RnnState<B, 2>) {
        self.run(input, state, Pass::new(None, self.return_sequences))
    }

    /// Runs a sequence with the elapsed time of every step of every sample
    /// (irregular sampling).
    ///
    /// # Shapes
    /// - input: as [`forward`](Self::forward)
    /// - timespans: in the input's layout, `[batch, time]` (`[time, batch]`
    ///   when not `batch_first`), optionally with a trailing axis of 1
    ///   (`[batch, time, 1]`, as upstream's examples shape them)
    /// - returns: as [`forward`](Self::forward)
    ///
    /// Elapsed times must be finite and `>= 0`. An elapsed time of 0 means
    /// no time passes: an LTC's state stays where it is (the ODE's answer;
    /// upstream divides by it and gives NaN), a CfC's time gate takes its
    /// bias. The check reads the timespans back once per call.
    ///
    /// # Panics
    /// As [`forward`](Self::forward), when `timespans` does not have one
    /// value per step of every sample, and when an elapsed time is
    /// negative, NaN or infinite.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use burn::prelude::*;
    /// use ncps::rnn::{CfCConfig, Units};
    ///
    /// let device = Default::default();
    /// let model = CfCConfig::new(3, Units::from(8)).init::<NdArray>(&device)?;
    /// let input = Tensor::<NdArray, 3>::zeros([2, 5, 3], &device); // [batch, time, features]
    /// let timespans = Tensor::<NdArray, 2>::full([2, 5], 0.5, &device); // [batch, time]
    /// let (output, _) = model.forward_timed(input.clone(), timespans, None);
    /// assert_eq!(output.dims(), [2, 5, 8]);
    /// let column = Tensor::<NdArray, 3>::full([2, 5, 1], 0.5, &device); // [batch, time, 1]
    /// let (same, _) = model.forward_timed(input, column, None);
    /// assert_eq!(same.into_data(), output.into_data());
    /// # Ok::<(), ncps::ConfigError>(())
    /// ```
    pub fn forward_timed<const D: usize>(
        &self,
        input: Tensor<B, 3>,
        timespans: Tensor<B, D>,
        state: Option<RnnState<B, 2>>,
    ) -> (Tensor<B, 3>, RnnState<B, 2>) {
        let timespans = self.timespans_2d(&input, timespans);
        self.run(
            input,
            state,
            Pass::new(Some(timespans), self.return_sequences),
        )
    }

    /// Runs a batch of sequences of different lengths, padded to the
    /// longest: sample `b`'s steps at and after `lengths[b]` are padding.
    /// A padded step leaves its sample's state unchanged and outputs zeros
    /// (keras' `zero_output_for_mask`); the returned state of each sample
    /// is its state after its last valid step, and without
    /// `return_sequences` the output is each sample's last valid output.
    /// Every sample gets what running it alone at its own length gives,
    /// gradients included (`tests/padding.rs`). With `go_backwards`, each
    /// sample's valid steps are read from its last to its first.
    ///
    /// A mask of valid steps that are a prefix of each sample (keras'
    /// `mask`) is `lengths = mask.int().sum_dim(1)`.
    ///
    /// # Shapes
    /// - input: as [`forward`](Self::forward)
    /// - lengths: `[batch]`, each in `1..=time`
    /// - timespans: `[batch, time]` (`[time, batch]` when not
    ///   `batch_first`), or `None` for one time unit per step
    /// - returns: as [`forward`](Self::forward)
    ///
    /// # Panics
    /// As [`forward_timed`](Self::forward_timed), and when `lengths` is
    /// not `[batch]` or a length is 0 or above the time axis (the message
    /// names the sample). The lengths are read back once per call.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use burn::prelude::*;
    /// use ncps::rnn::{CfCConfig, Units};
    ///
    /// let device = Default::default();
    /// let model = CfCConfig::new(3, Units::from(8)).init::<NdArray>(&device)?;
    /// let padded = Tensor::<NdArray, 3>::ones([2, 5, 3], &device); // 2 samples, 5 steps
    /// let lengths = Tensor::<NdArray, 1, Int>::from_ints([5, 2], &device);
    /// let (output, state) = model.forward_padded(padded.clone(), lengths, None, None);
    /// assert_eq!(output.dims(), [2, 5, 8]);
    /// // The second sample alone, at its own length:
    /// let (alone, alone_state) = model.forward(padded.slice([1..2, 0..2]), None);
    /// let ours = state.hidden.slice([1..2, 0..8]);
    /// assert!(ours.sub(alone_state.hidden).abs().max().into_scalar() < 1e-6);
    /// # Ok::<(), ncps::ConfigError>(())
    /// ```
    pub fn forward_padded(
        &self,
        input: Tensor<B, 3>,
        lengths: Tensor<B, 1, Int>,
        timespans: Option<Tensor<B, 2>>,
        state: Option<RnnState<B, 2>>,
    ) -> (Tensor<B, 3>, RnnState<B, 2>) {
        let timespans = timespans.map(|t| self.timespans_2d(&input, t));
        let mut pass = Pass::new(timespans, self.return_sequences);
        pass.lengths = Some(lengths);
        self.run(input, state, pass)
    }

    /// Each sample's last output as a `[batch, output_size]` matrix,
    /// whatever `return_sequences` says: the input of a classifier head.
    /// With `lengths` (see [`forward_padded`](Self::forward_padded)), each
    /// sample's last valid output.
    ///
    /// # Shapes
    /// - input, state: as [`forward`](Self::forward)
    /// - timespans: `[batch, time]` (`[time, batch]` when not
    ///   `batch_first`), or `None` for one time unit per step
    /// - lengths: `[batch]`, or `None` when no sample is padded
    /// - returns: the last step's output `[batch, output_size]` and the
    ///   final state
    ///
    /// # Panics
    /// As [`forward_timed`](Self::forward_timed).
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use burn::prelude::*;
    /// use ncps::rnn::{CfCConfig, Units};
    ///
    /// let device = Default::default();
    /// let model = CfCConfig::new(3, Units::from(8)).init::<NdArray>(&device)?;
    /// let input = Tensor::<NdArray, 3>::ones([2, 5, 3], &device);
    /// let (last, _) = model.forward_last(input.clone(), None, None, None);
    /// assert_eq!(last.dims(), [2, 8]);
    /// let (every, _) = model.forward(input, None);
    /// let step5 = every.slice([0..2, 4..5]).reshape([2, 8]);
    /// assert_eq!(last.into_data(), step5.into_data());
    /// # Ok::<(), ncps::ConfigError>(())
    /// ```
    pub fn forward_last(
        &self,
        input: Tensor<B, 3>,
        timespans: Option<Tensor<B, 2>>,
        lengths: Option<Tensor<B, 1, Int>>,
        state: Option<RnnState<B, 2>>,
    ) -> (Tensor<B, 2>, RnnState<B, 2>) {
        let timespans = timespans.map(|t| self.timespans_2d(&input, t));
        let [first, second, _] = input.dims();
        let batch = if self.batch_first { first } else { second };
        let mut pass = Pass::new(timespans, false);
        pass.lengths = lengths;
        let (output, state) = self.run(input, state, pass);
        (output.reshape([batch, self.output_size()]), state)
    }

    /// Timespans `[batch, time]` (or with a trailing axis of 1) in the
    /// input's layout, as a matrix; panics naming the argument otherwise.
    fn timespans_2d<const D: usize>(
        &self,
        input: &Tensor<B, 3>,
        timespans: Tensor<B, D>,
    ) -> Tensor<B, 2> {
        let [first, second, _] = input.dims();
        let layout = if self.batch_first {
            "[batch, time]"
        } else {
            "[time, batch]"
        };
        let dims = timespans.dims();
        let fits = match dims[..] {
            [a, b] | [a, b, 1] => [a, b] == [first, second],
            _ => false,
        };
        assert!(
            fits,
            "timespans has shape {dims:?}, but {layout} = {:?} (or with a trailing axis of 1) \
             was expected: one elapsed time per step of every sample, in the input's layout",
            [first, second]
        );
        timespans.reshape([first, second])
    }

    /// Runs one sequence without a batch axis (upstream's 2-D input).
    ///
    /// # Shapes
    /// - input: `[time, input_size]`
    /// - timespans: `[time]`, or `None` for one time unit per step
    /// - state: `hidden` (and `memory`) `[state_size]`
    /// - returns: outputs `[time, output_size]` (`[1, output_size]` when not
    ///   `return_sequences`) and the final state, `[state_size]` each
    pub fn forward_unbatched(
        &self,
        input: Tensor<B, 2>,
        timespans: Option<Tensor<B, 1>>,
        state: Option<RnnState<B, 1>>,
    ) -> (Tensor<B, 2>, RnnState<B, 1>) {
        let batch_axis = if self.batch_first { 0 } else { 1 };
        let [time, _] = input.dims();
        let state = state.map(|s| RnnState {
            hidden: s.hidden.unsqueeze_dim(0),
            memory: s.memory.map(|m| m.unsqueeze_dim(0)),
        });
        let timespans = timespans.map(|t| {
            check_shape("timespans", &t.dims(), &[time]);
            t.unsqueeze_dim(batch_axis)
        });
        let (output, state) = self.run(
            input.unsqueeze_dim(batch_axis),
            state,
            Pass::new(timespans, self.return_sequences),
        );
        let state = RnnState {
            hidden: state.hidden.squeeze_dim(0),
            memory: state.memory.map(|m| m.squeeze_dim(0)),
        };
        (output.squeeze_dim(batch_axis), state)
    }

    /// One step for control loops: feed one observation, get the output and
    /// the state to pass back next time. Computes exactly what
    /// [`forward`](Self::forward) computes at that step.
    ///
    /// # Shapes
    /// - input: `[batch, input_size]`
    /// - state: as [`forward`](Self::forward); zeros when `None`
    /// - elapsed: `[batch]`, or `None` for one time unit
    /// - returns: output `[batch, output_size]` and the next state
    pub fn step(
        &self,
        input: Tensor<B, 2>,
        state: Option<RnnState<B, 2>>,
        elapsed: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, RnnState<B, 2>) {
        let [batch, features] = input.dims();
        check_features("input", features, self.input_size());
        let state = self.initial_state(state, batch, &input.device());
        let elapsed = match elapsed {
            Some(e) => elapsed_column(e, batch),
            None => Tensor::ones([batch, 1], &input.device()),
        };
        self.advance(&self.cell.prepare_single_step(), input, state, elapsed)
    }

    /// Zeros, or the given state after checking its shape.
    fn initial_state(
        &self,
        state: Option<RnnState<B, 2>>,
        batch: usize,
        device: &B::Device,
    ) -> RnnState<B, 2> {
        let shape = [batch, self.state_size()];
        let Some(state) = state else {
            let zeros = || Tensor::zeros(shape, device);
            return RnnState {
                hidden: zeros(),
                memory: self.has_memory().then(zeros),
            };
        };
        check_shape("state.hidden", &state.hidden.dims(), &shape);
        match (&state.memory, self.has_memory()) {
            (Some(memory), true) => check_shape("state.memory", &memory.dims(), &shape),
            (None, true) => {
                panic!("state.memory is missing: a mixed-memory model needs (hidden, memory)")
            }
            (Some(_), false) => panic!("state.memory was given, but the model has no mixed memory"),
            (None, false) => {}
        }
        state
    }

    /// The one step every entry point runs: mixed-memory LSTM, cell, projection.
    fn advance(
        &self,
        prepared: &C::Prepared,
        input: Tensor<B, 2>,
        state: RnnState<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, RnnState<B, 2>) {
        // The cell's input and state for the step, and the next memory.
        let (input, hidden, memory) = match (&self.lstm, state.memory) {
            (Some(lstm), Some(memory)) => {
                let (y, c) = lstm.forward(input.clone(), state.hidden.clone(), memory);
                match self.lstm_output {
                    LstmOutput::State => (input, y, Some(c)),
                    LstmOutput::Input => (y, state.hidden, Some(c)),
                }
            }
            (_, memory) => (input, state.hidden, memory),
        };
        let (output, hidden) = self.cell.step_unchecked(prepared, input, hidden, elapsed);
        let output = match &self.fc {
            Some(fc) => crate::kernels::tensor::linear(fc, output),
            None => output,
        };
        (output, RnnState { hidden, memory })
    }

    /// The time loop. `timespans` is in the input's layout.
    fn run(
        &self,
        input: Tensor<B, 3>,
        state: Option<RnnState<B, 2>>,
        pass: Pass<B>,
    ) -> (Tensor<B, 3>, RnnState<B, 2>) {
        let (input, timespans) = if self.batch_first {
            (input, pass.timespans)
        } else {
            (
                input.swap_dims(0, 1),
                pass.timespans.map(|t| t.swap_dims(0, 1)),
            )
        };
        let [batch, steps, features] = input.dims();
        check_features("input", features, self.input_size());
        assert!(steps > 0, "input has no time steps");
        let device = input.device();
        let state = self.initial_state(state, batch, &device);
        let elapsed = match timespans {
            Some(t) => {
                check_shape("timespans", &t.dims(), &[batch, steps]);
                check_elapsed("timespans", &t);
                t
            }
            None => Tensor::ones([batch, steps], &device),
        };
        let lengths = pass.lengths.map(|l| check_lengths(l, batch, steps));
        let reverse = (self.go_backwards || pass.backward_half)
            .then(|| Reverse::new(lengths.as_deref(), batch, steps, &device));
        let (input, elapsed) = match &reverse {
            Some(reverse) => (reverse.apply(input), reverse.apply_2d(elapsed)),
            None => (input, elapsed),
        };
        let sequence = SequenceInputs {
            input,
            elapsed,
            hidden: state.hidden,
            memory: state.memory,
            lengths: lengths.clone(),
        };
        let every_step = pass.sequences || lengths.is_some();
        let (outputs, state) = match self.cell.fused_sequence(self.memory(), &sequence) {
            Some(run) => {
                let outputs = if every_step {
                    run.outputs
                } else {
                    run.outputs.slice([0..batch, steps - 1..steps])
                };
                let state = RnnState {
                    hidden: run.hidden,
                    memory: run.memory,
                };
                let outputs = match &self.fc {
                    Some(fc) => crate::kernels::tensor::linear(fc, outputs),
                    None => outputs,
                };
                (outputs, state)
            }
            // Projected at every step by `advance`. Under autodiff the steps
            // use the parameters joined to one graph (`JoinParameters`).
            None if B::ad_enabled(&device) => {
                let mut joiner = JoinParameters::new(&device);
                let joined = Rnn {
                    cell: joiner.join(self.cell.clone()),
                    lstm: self.lstm.clone().map(|lstm| joiner.join(lstm)),
                    fc: self.fc.clone().map(|fc| joiner.join(fc)),
                    ..*self
                };
                joined.step_through(sequence, every_step)
            }
            None => self.step_through(sequence, every_step),
        };
        let outputs = match (&reverse, pass.backward_half && every_step) {
            (Some(reverse), true) => reverse.apply(outputs),
            _ => outputs,
        };
        let outputs = match lengths {
            Some(lengths) => {
                let out = self.output_size();
                let padded = padding_mask(&lengths, steps, &device)
                    .unsqueeze_dim::<3>(2)
                    .expand([batch, steps, out]);
                let outputs = outputs.mask_fill(padded, 0.0);
                if pass.sequences {
                    outputs
                } else {
                    let last: Vec<i64> = lengths
                        .iter()
                        .flat_map(|&l| std::iter::repeat_n(l as i64 - 1, out))
                        .collect();
                    let index = Tensor::from_data(TensorData::new(last, [batch, 1, out]), &device);
                    outputs.gather(1, index)
                }
            }
            None => outputs,
        };
        (self.to_layout(outputs), state)
    }

    /// The steps one by one (cells without a fused sequence): every step's
    /// output, or only the last one's. A padded step (beyond a sample's
    /// length) leaves that sample's state as it was.
    fn step_through(
        &self,
        sequence: SequenceInputs<B>,
        every_step: bool,
    ) -> (Tensor<B, 3>, RnnState<B, 2>) {
        let SequenceInputs {
            input,
            elapsed,
            hidden,
            memory,
            lengths,
        } = sequence;
        let [batch, steps, _] = input.dims();
        let device = input.device();
        let padded = lengths.map(|l| padding_mask(&l, steps, &device));
        let mut state = RnnState { hidden, memory };
        let prepared = self.cell.prepare();
        let mut outputs = Vec::with_capacity(if every_step { steps } else { 1 });
        let inputs = input.split(1, 1).into_iter().zip(elapsed.split(1, 1));
        for (t, (x, elapsed)) in inputs.enumerate() {
            let (output, next) = self.advance(&prepared, x.squeeze_dim(1), state.clone(), elapsed);
            state = match &padded {
                Some(padded) => hold(next, state, padded.clone().slice([0..batch, t..t + 1])),
                None => next,
            };
            if every_step || outputs.is_empty() {
                outputs.push(output);
            } else {
                outputs[0] = output;
            }
        }
        (Tensor::stack(outputs, 1), state)
    }

    /// A batch-first output in the model's layout.
    fn to_layout(&self, output: Tensor<B, 3>) -> Tensor<B, 3> {
        if self.batch_first {
            output
        } else {
            output.swap_dims(0, 1)
        }
    }
}

impl<B: Backend, C: RecurrentCell<B>> Rnn<B, C> {
    /// A small wrapper that keeps the state between [`Stateful::step`]
    /// calls (and the cell's per-sequence constants, computed once),
    /// borrowing the model. [`into_stateful`](Self::into_stateful) gives
    /// one that owns it.
    pub fn stateful(&self) -> Stateful<'_, B, C> {
        Stateful {
            prepared: self.cell.prepare(),
            model: Held::Borrowed(self),
            state: None,
        }
    }

    /// As [`stateful`](Self::stateful), owning the model: a controller
    /// struct can hold it (`Stateful<'static, B, C>`) without a lifetime.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use burn::prelude::*;
    /// use ncps::rnn::{CfC, CfCConfig, Stateful, Units};
    /// use ncps::rnn::AnyCfCCell;
    ///
    /// struct Controller {
    ///     policy: Stateful<'static, NdArray, AnyCfCCell<NdArray>>,
    /// }
    ///
    /// let device = Default::default();
    /// let model: CfC<NdArray> = CfCConfig::new(4, Units::from(8)).init(&device)?;
    /// let mut controller = Controller { policy: model.into_stateful() };
    /// let action = controller.policy.step(Tensor::zeros([1, 4], &device));
    /// assert_eq!(action.dims(), [1, 8]);
    /// # Ok::<(), ncps::ConfigError>(())
    /// ```
    pub fn into_stateful(self) -> Stateful<'static, B, C> {
        Stateful {
            prepared: self.cell.prepare(),
            model: Held::Owned(self),
            state: None,
        }
    }
}

/// How [`Rnn::run`] treats a sequence beyond its tensors.
struct Pass<B: Backend> {
    /// In the input's layout.
    timespans: Option<Tensor<B, 2>>,
    /// Valid steps of each sample (the rest is padding).
    lengths: Option<Tensor<B, 1, Int>>,
    /// Every step's output (else each sample's last valid one).
    sequences: bool,
    /// A [`Bidirectional`]'s backward half: the sequence processed in
    /// reverse whatever `go_backwards` says, and every step's output put
    /// back at the step it read.
    backward_half: bool,
}

impl<B: Backend> Pass<B> {
    fn new(timespans: Option<Tensor<B, 2>>, sequences: bool) -> Self {
        Self {
            timespans,
            lengths: None,
            sequences,
            backward_half: false,
        }
    }
}

/// Reads the lengths back (once per call) and panics, naming the
/// argument, unless there is one per sample, each in `1..=steps`.
fn check_lengths<B: Backend>(lengths: Tensor<B, 1, Int>, batch: usize, steps: usize) -> Vec<usize> {
    check_shape("lengths", &lengths.dims(), &[batch]);
    let values: Vec<i64> = lengths
        .into_data()
        .convert::<i64>()
        .to_vec()
        .expect("integer lengths");
    values
        .iter()
        .enumerate()
        .map(|(b, &l)| {
            assert!(
                l >= 1 && l as usize <= steps,
                "lengths[{b}] is {l}, but a sample's length must be in 1..={steps} \
                 (the padded time axis)"
            );
            l as usize
        })
        .collect()
}

/// A control-loop step's elapsed times `[batch]`, checked, as the column
/// `[batch, 1]` the cells take.
fn elapsed_column<B: Backend>(elapsed: Tensor<B, 1>, batch: usize) -> Tensor<B, 2> {
    check_shape("elapsed", &elapsed.dims(), &[batch]);
    check_elapsed("elapsed", &elapsed);
    elapsed.unsqueeze_dim(1)
}

/// The state after a step where it is valid, the state before it where a
/// sample's step is padding (`padded`: `[batch, 1]`).
fn hold<B: Backend>(
    next: RnnState<B, 2>,
    before: RnnState<B, 2>,
    padded: Tensor<B, 2, Bool>,
) -> RnnState<B, 2> {
    let keep = padded.expand(next.hidden.dims());
    RnnState {
        hidden: next.hidden.mask_where(keep.clone(), before.hidden),
        memory: match (next.memory, before.memory) {
            (Some(memory), Some(old)) => Some(memory.mask_where(keep, old)),
            (memory, _) => memory,
        },
    }
}

/// `[batch, steps]`, true at the padding (steps at or after a sample's length).
fn padding_mask<B: Backend>(
    lengths: &[usize],
    steps: usize,
    device: &B::Device,
) -> Tensor<B, 2, Bool> {
    let padded: Vec<bool> = lengths
        .iter()
        .flat_map(|&l| (0..steps).map(move |t| t >= l))
        .collect();
    Tensor::from_data(TensorData::new(padded, [lengths.len(), steps]), device)
}

/// The time reversal of `go_backwards`: each sample's valid steps in
/// reverse order, its padding left where it is (so that the reversed
/// sequence starts at the sample's last valid step).
struct Reverse<B: Backend> {
    /// `[batch, steps]` source step of each step (`None`: a plain flip).
    index: Option<Tensor<B, 2, Int>>,
}

impl<B: Backend> Reverse<B> {
    fn new(lengths: Option<&[usize]>, batch: usize, steps: usize, device: &B::Device) -> Self {
        let index = lengths.map(|lengths| {
            let index: Vec<i64> = lengths
                .iter()
                .flat_map(|&l| (0..steps).map(move |t| if t < l { l - 1 - t } else { t } as i64))
                .collect();
            Tensor::from_data(TensorData::new(index, [batch, steps]), device)
        });
        Self { index }
    }

    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, steps, features] = x.dims();
        match &self.index {
            Some(index) => x.gather(
                1,
                index
                    .clone()
                    .unsqueeze_dim::<3>(2)
                    .expand([batch, steps, features]),
            ),
            None => x.flip([1]),
        }
    }

    fn apply_2d(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.index {
            Some(index) => x.gather(1, index.clone()),
            None => x.flip([1]),
        }
    }
}

/// A model with its state kept between steps: the deployment loop of a
/// controller. Created by [`Rnn::stateful`] (borrowing the model) or
/// [`Rnn::into_stateful`] (owning it).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::rnn::{CfCConfig, Units};
///
/// let device = Default::default();
/// let model = CfCConfig::new(4, Units::from(16)).init::<NdArray>(&device)?;
/// let mut policy = model.stateful();
/// for _ in 0..3 {
///     let observation = Tensor::<NdArray, 2>::zeros([1, 4], &device);
///     let action = policy.step(observation);
///     assert_eq!(action.dims(), [1, 16]);
/// }
/// policy.reset();
/// # Ok::<(), ncps::ConfigError>(())
/// ```
pub struct Stateful<'a, B: Backend, C: RecurrentCell<B>> {
    model: Held<'a, Rnn<B, C>>,
    prepared: C::Prepared,
    state: Option<RnnState<B, 2>>,
}

/// A model a [`Stateful`] borrows or owns.
enum Held<'a, T> {
    Borrowed(&'a T),
    Owned(T),
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Held::Borrowed(model) => model,
            Held::Owned(model) => model,
        }
    }
}

impl<B: Backend, C: RecurrentCell<B>> Stateful<'_, B, C> {
    /// The model being stepped.
    pub fn model(&self) -> &Rnn<B, C> {
        &self.model
    }

    /// Feeds one observation `[batch, input_size]` one time unit after the
    /// previous one; returns the output `[batch, output_size]`.
    pub fn step(&mut self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        let [batch, _] = input.dims();
        let elapsed = Tensor::ones([batch, 1], &input.device());
        self.advance(input, elapsed, None)
    }

    /// Feeds one observation `elapsed` (`[batch]`) after the previous one.
    ///
    /// # Panics
    /// When `elapsed` is not `[batch]`, or an elapsed time is negative,
    /// NaN or infinite (0 is valid: see [`Rnn::forward_timed`]).
    pub fn step_elapsed(&mut self, input: Tensor<B, 2>, elapsed: Tensor<B, 1>) -> Tensor<B, 2> {
        let elapsed = elapsed_column(elapsed, input.dims()[0]);
        self.advance(input, elapsed, None)
    }

    /// Feeds one observation to the samples where `valid` (`[batch]`) is
    /// true; the others are at padding: they keep their state and output
    /// zeros, as a padded step of [`Rnn::forward_padded`] does. Stepping a
    /// padded batch with `valid = t < length` computes what `forward_padded`
    /// computes.
    ///
    /// # Panics
    /// When `elapsed` or `valid` is not `[batch]`, or an elapsed time is
    /// negative, NaN or infinite.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use burn::prelude::*;
    /// use ncps::rnn::{CfCConfig, Units};
    ///
    /// let device = Default::default();
    /// let mut policy = CfCConfig::new(3, Units::from(8)).init::<NdArray>(&device)?.into_stateful();
    /// // Two streams; the second has no observation at this step.
    /// let valid = Tensor::<NdArray, 1, Bool>::from_bool([true, false].into(), &device);
    /// let elapsed = Tensor::<NdArray, 1>::ones([2], &device);
    /// let output = policy.step_masked(Tensor::ones([2, 3], &device), elapsed, valid);
    /// assert_eq!(output.dims(), [2, 8]);
    /// let idle: Vec<f32> = output.slice([1..2]).into_data().to_vec().unwrap();
    /// assert!(idle.iter().all(|&v| v == 0.0));
    /// # Ok::<(), ncps::ConfigError>(())
    /// ```
    pub fn step_masked(
        &mut self,
        input: Tensor<B, 2>,
        elapsed: Tensor<B, 1>,
        valid: Tensor<B, 1, Bool>,
    ) -> Tensor<B, 2> {
        let batch = input.dims()[0];
        check_shape("valid", &valid.dims(), &[batch]);
        let elapsed = elapsed_column(elapsed, batch);
        self.advance(input, elapsed, Some(valid.bool_not().unsqueeze_dim(1)))
    }

    /// One step from the kept state; samples where `padded` (`[batch, 1]`)
    /// is true keep their state and output zeros.
    fn advance(
        &mut self,
        input: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
        padded: Option<Tensor<B, 2, Bool>>,
    ) -> Tensor<B, 2> {
        let [batch, features] = input.dims();
        check_features("input", features, self.model.input_size());
        let before = self
            .model
            .initial_state(self.state.take(), batch, &input.device());
        let (output, next) = self
            .model
            .advance(&self.prepared, input, before.clone(), elapsed);
        match padded {
            None => {
                self.state = Some(next);
                // The output may share the state's buffer (a CfC's is its
                // state): one of its own makes the caller's `into_data` a move.
                crate::kernels::tensor::own_buffer(output)
            }
            Some(padded) => {
                self.state = Some(hold(next, before, padded.clone()));
                let shape = output.dims();
                output.mask_fill(padded.expand(shape), 0.0)
            }
        }
    }

    /// The current state (`None` before the first step or after `reset`).
    pub fn state(&self) -> Option<&RnnState<B, 2>> {
        self.state.as_ref()
    }

    /// Starts over from the zero state.
    pub fn reset(&mut self) {
        self.state = None;
    }

    /// Continues from a given state (checked at the next step).
    pub fn set_state(&mut self, state: RnnState<B, 2>) {
        self.state = Some(state);
    }
}
