//! `CfC`: the closed-form continuous-time sequence model.

use burn::prelude::*;

use super::{Rnn, SequenceOptions, Units};
use crate::ConfigError;
use crate::cells::{
    Activation, AnyCfCCell, CfCCellConfig, CfCMode, DropoutPlacement, HeadActivation,
    WiredCfCCellConfig,
};
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
    /// Default: [`CfCMode::Default`].
    #[config(default = "CfCMode::Default")]
    pub mode: CfCMode,
    /// Backbone activation (dense only). Default: [`Activation::LecunTanh`].
    #[config(default = "Activation::LecunTanh")]
    pub activation: Activation,
    /// Backbone width; 128 when `None`. An error with a wiring.
    #[config(default = "None")]
    pub backbone_units: Option<usize>,
    /// Backbone depth; 1 when `None`. An error with a wiring.
    #[config(default = "None")]
    pub backbone_layers: Option<usize>,
    /// Backbone dropout; 0 when `None`. An error with a wiring.
    #[config(default = "None")]
    pub backbone_dropout: Option<f64>,
    /// Which backbone layers dropout follows (dense only). Default:
    /// [`DropoutPlacement::LaterLayers`], upstream's.
    #[config(default = "DropoutPlacement::LaterLayers")]
    pub dropout_placement: DropoutPlacement,
    /// The heads' squashing (dense only). Default: [`HeadActivation::Tanh`],
    /// upstream's.
    #[config(default = "HeadActivation::Tanh")]
    pub head_activation: HeadActivation,
    /// Run whole sequences as one fused operation where the backend has one
    /// (dense cells; see [`CfCCellConfig::fused`]). Default: true.
    #[config(default = true)]
    pub fused: bool,
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
    /// Initialises the model (building the wiring with `input_size`).
    ///
    /// Fails when `input_size` is 0, a backbone argument (or a
    /// non-default `dropout_placement` or `head_activation`) is given with a
    /// wiring, the wiring was built with another input size, or a cell
    /// argument is invalid.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CfC<B>, ConfigError> {
        let options = self.options();
        options.check()?;
        let cell = match &self.units {
            Units::Count(units) => AnyCfCCell::Dense(
                CfCCellConfig::new(self.input_size, *units)
                    .with_mode(self.mode)
                    .with_activation(self.activation)
                    .with_backbone_units(
                        self.backbone_units
                            .unwrap_or(CfCCellConfig::DEFAULT_BACKBONE_UNITS),
                    )
                    .with_backbone_layers(
                        self.backbone_layers
                            .unwrap_or(CfCCellConfig::DEFAULT_BACKBONE_LAYERS),
                    )
                    .with_backbone_dropout(
                        self.backbone_dropout
                            .unwrap_or(CfCCellConfig::DEFAULT_BACKBONE_DROPOUT),
                    )
                    .with_dropout_placement(self.dropout_placement)
                    .with_head_activation(self.head_activation)
                    .with_fused(self.fused)
                    .init(device)?,
            ),
            Units::Wiring(wiring) => {
                for (argument, given) in [
                    ("backbone_units", self.backbone_units.is_some()),
                    ("backbone_layers", self.backbone_layers.is_some()),
                    ("backbone_dropout", self.backbone_dropout.is_some()),
                ] {
                    if given {
                        return Err(ConfigError::BackboneWithWiring { argument });
                    }
                }
                if self.dropout_placement != DropoutPlacement::default() {
                    return Err(ConfigError::BackboneWithWiring {
                        argument: "dropout_placement",
                    });
                }
                if self.head_activation != HeadActivation::default() {
                    return Err(ConfigError::invalid(
                        "head_activation",
                        format!("{:?}", self.head_activation),
                        "Tanh with a wiring (the wired cells keep upstream's heads)",
                    ));
                }
                let mut wiring = wiring.clone();
                wiring.build(self.input_size)?;
                AnyCfCCell::Wired(
                    WiredCfCCellConfig::new(wiring)
                        .with_mode(self.mode)
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
            proj_size: self.proj_size,
        }
    }
}
