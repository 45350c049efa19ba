//! `CfC`: the closed-form continuous-time sequence model.

use burn::prelude::*;

use super::{Initialization, LstmOutput, Rnn, SequenceOptions, Units};
use crate::ConfigError;
use crate::cells::{AnyCfCCell, CfCCellConfig, CfCCellOptions, WiredCfCCellConfig};
use crate::wirings::Wiring;

/// Configuration of a [`CfC`]; arguments and defaults are upstream's
/// `ncps.torch.CfC(input_size, units, ...)`.
#[derive(Config, Debug)]
pub struct CfCConfig {
    /// Features of one input step.
    pub input_size: usize,
    /// Hidden units of a dense CfC, or a wiring for a wired CfC.
    pub units: Units,
    /// A linear projection of every output to this size. Default: none.
    #[config(default = "None")]
    pub proj_size: Option<usize>,
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
    /// Run an LSTM cell before the CfC cell at every step. Default: false.
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
    /// How the weights start: upstream's torch initialisation or the CfC
    /// paper's Keras defaults (zero biases, a Glorot projection; see
    /// [`Initialization`]). Applies to the cell, the LSTM and the
    /// projection. Default: [`Initialization::Upstream`].
    #[config(default = "Initialization::Upstream")]
    pub initialization: Initialization,
    /// The cell's mode, backbone, heads and fused path. Default:
    /// [`CfCCellOptions::new()`], upstream's. With a wiring only `mode`
    /// (and `fused`, which wired cells ignore) may differ from the default.
    #[config(default = "CfCCellOptions::new()")]
    pub cell: CfCCellOptions,
}

/// A closed-form continuous-time network (upstream's `ncps.torch.CfC`): a
/// dense [`CfCCell`](crate::cells::CfCCell) or, given a wiring, a
/// [`WiredCfCCell`](crate::cells::WiredCfCCell), run over a sequence.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::rnn::{CfCConfig, Units};
///
/// let device = Default::default();
/// let model = CfCConfig::new(20, Units::from(50)).with_proj_size(Some(4)).init::<NdArray>(&device)?;
/// let (output, state) = model.forward(Tensor::<NdArray, 3>::zeros([2, 3, 20], &device), None);
/// assert_eq!(output.dims(), [2, 3, 4]);
/// assert_eq!(state.hidden.dims(), [2, 50]);
/// # Ok::<(), ncps::ConfigError>(())
/// ```
pub type CfC<B> = Rnn<B, AnyCfCCell<B>>;

impl CfCConfig {
    /// Initialises the model (building the wiring with `input_size`, or
    /// with its unit count when the cell reads the LSTM's output).
    ///
    /// Fails when `input_size` is 0, a dense-only cell option (backbone,
    /// dropout placement, head or backbone activation) differs from its
    /// default with a wiring, the wiring was built with another input size,
    /// or a cell option is invalid.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CfC<B>, ConfigError> {
        let options = self.options();
        options.check()?;
        let cell = match &self.units {
            Units::Count(units) => AnyCfCCell::Dense(
                CfCCellConfig::new(options.cell_input_size(*units), *units)
                    .with_options(self.cell.clone())
                    .with_initialization(self.initialization)
                    .init(device)?,
            ),
            Units::Wiring(wiring) => {
                if let Some(argument) = self.cell.dense_only_given() {
                    return Err(ConfigError::BackboneWithWiring { argument });
                }
                let mut wiring = wiring.clone();
                wiring.build(options.cell_input_size(wiring.units()))?;
                AnyCfCCell::Wired(
                    WiredCfCCellConfig::new(wiring)
                        .with_mode(self.cell.mode)
                        .with_initialization(self.initialization)
                        .init(device)?,
                )
            }
        };
        Rnn::assemble(cell, options, device)
    }
}

impl CfCConfig {
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
            proj_size: self.proj_size,
        }
    }
}
