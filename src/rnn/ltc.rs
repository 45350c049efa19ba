//! `LTC`: the liquid time-constant sequence model.

use burn::prelude::*;

use super::{Initialization, LstmOutput, Rnn, SequenceOptions, Units};
use crate::ConfigError;
use crate::cells::{LTCCell, LTCCellConfig, LTCCellOptions};
use crate::wirings::{AnyWiring, FullyConnected, Wiring};

/// Configuration of an [`LTC`]; arguments and defaults are upstream's
/// `ncps.torch.LTC(input_size, units, ...)`.
#[derive(Config, Debug)]
pub struct LTCConfig {
    /// Features of one input step.
    pub input_size: usize,
    /// A neuron count (a [`FullyConnected`] wiring whose neurons are all
    /// outputs) or a wiring.
    pub units: Units,
    /// Return every step's output. Default: true.
    #[config(default = true)]
    pub return_sequences: bool,
    /// Inputs are `[batch, time, features]`. Default: true.
    #[config(default = true)]
    pub batch_first: bool,
    /// Process each sequence from its last step to its first (keras'
    /// `go_backwards`; outputs in processing order). Default: false.
    #[config(default = false)]
    pub go_backwards: bool,
    /// Run an LSTM cell before the LTC cell at every step. Default: false.
    #[config(default = false)]
    pub mixed_memory: bool,
    /// The forget-gate bias of the mixed-memory LSTM (see
    /// [`LSTMCellConfig::forget_bias`](crate::cells::LSTMCellConfig::forget_bias)).
    /// Default: 1.0, upstream's.
    #[config(default = "crate::cells::LSTMCellConfig::DEFAULT_FORGET_BIAS")]
    pub forget_bias: f64,
    /// Where the mixed-memory LSTM's output goes: the cell's state for
    /// the step (upstream ncps) or its input (the CfC paper's TensorFlow
    /// cell). Needs `mixed_memory`. Default: [`LstmOutput::State`].
    #[config(default = "LstmOutput::State")]
    pub lstm_output: LstmOutput,
    /// How the mixed-memory LSTM starts: upstream's torch initialisation or
    /// Keras' zero bias (see [`Initialization`]; the LTC cell keeps its init
    /// ranges either way). Default: [`Initialization::Upstream`].
    #[config(default = "Initialization::Upstream")]
    pub initialization: Initialization,
    /// The cell's mappings, solver steps, epsilon and fused kernel.
    /// Default: [`LTCCellOptions::new()`], upstream's.
    #[config(default = "LTCCellOptions::new()")]
    pub cell: LTCCellOptions,
    /// Softplus on the positive parameters. Default: true (unlike the bare
    /// cell, as upstream).
    #[config(default = true)]
    pub implicit_param_constraints: bool,
}

/// A liquid time-constant network (upstream's `ncps.torch.LTC`): an
/// [`LTCCell`] run over a sequence.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::rnn::{LTCConfig, Units};
/// use ncps::wirings::AutoNCP;
///
/// let device = Default::default();
/// let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1)?)).init::<NdArray>(&device)?;
/// let input = Tensor::<NdArray, 3>::zeros([8, 48, 2], &device); // [batch, time, features]
/// let (output, state) = model.forward(input, None);
/// assert_eq!(output.dims(), [8, 48, 1]);      // the motor neuron at every step
/// assert_eq!(state.hidden.dims(), [8, 16]);   // every neuron's potential
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type LTC<B> = Rnn<B, LTCCell<B>>;

impl LTCConfig {
    /// Builds the wiring with `input_size` (its unit count when the cell
    /// reads the LSTM's output) and initialises the model.
    ///
    /// Fails when `input_size` is 0, the wiring was built with another
    /// input size, or a cell argument is invalid.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LTC<B>, ConfigError> {
        let options = self.options();
        options.check()?;
        let mut wiring: AnyWiring = match &self.units {
            Units::Count(units) => FullyConnected::new(*units, *units)?.into(),
            Units::Wiring(wiring) => wiring.clone(),
        };
        wiring.build(options.cell_input_size(wiring.units()))?;
        let cell = LTCCellConfig::new(wiring)
            .with_options(self.cell.clone())
            .with_implicit_param_constraints(self.implicit_param_constraints)
            .init(device)?;
        Rnn::assemble(cell, options, device)
    }
}

impl LTCConfig {
    fn options(&self) -> SequenceOptions {
        SequenceOptions {
            input_size: self.input_size,
            units: self.units.count(),
            return_sequences: self.return_sequences,
            batch_first: self.batch_first,
            go_backwards: self.go_backwards,
            mixed_memory: self.mixed_memory,
            forget_bias: self.forget_bias,
            lstm_output: self.lstm_output,
            initialization: self.initialization,
            proj_size: None,
        }
    }
}

impl<B: Backend> LTC<B> {
    /// Clamps the cell's `w`, `sensory_w`, `cm` and `gleak` at 0; see
    /// [`LTCCell::apply_weight_constraints`].
    pub fn apply_weight_constraints(mut self) -> Self {
        self.cell = self.cell.apply_weight_constraints();
        self
    }
}
