//! The closed-form continuous-time cell.

use burn::module::{Content, DisplaySettings, Initializer, ModuleDisplay, Param};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::linear;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use burn::tensor::Distribution;

use super::{
    Initialization, LSTMCell, LstmOutput, Mask, MixedMemory, RecurrentCell, SequenceInputs,
    SequenceOutputs, mask_tensor, materialize, one_line, xavier_linear,
};
use crate::ConfigError;
use crate::kernels::activation::{Backbone, GatedMix, Unary};
use crate::kernels::cfc::{Mix, Spec};
use crate::kernels::dropout;
use crate::kernels::memory::Recycled;
use crate::kernels::scalar::{LECUN_SCALE, LECUN_SLOPE};
use crate::kernels::tensor::{activate, cfc_sequence, gated_mix, leading_columns, sigmoid};
use crate::kernels::{CfcInputs, Extras};
use crate::wirings::SynapseMatrix;

/// How a [`CfCCell`] turns its heads into the next state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CfCMode {
    /// `h = tanh(ff1) * (1 - t) + t * tanh(ff2)`, `t = sigmoid(time_a * ts + time_b)`.
    #[default]
    Default,
    /// The direct closed-form solution: `h = -A * exp(-ts * (|w_tau| + |ff1|)) * ff1 + A`.
    Pure,
    /// `h = tanh(ff1) + t * tanh(ff2)`.
    NoGate,
}

/// The squashing of a [`CfCCell`]'s `ff1` and `ff2` heads before the
/// time-gated mix (modes `Default` and `NoGate`; the pure mode's head is
/// linear).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeadActivation {
    /// `tanh`, upstream ncps' (default).
    #[default]
    Tanh,
    /// `1.7159 * tanh(0.666 * x)`, the CfC paper's TensorFlow code
    /// (`tf_cfc.py`): heads range over ±1.7159 instead of ±1.
    LecunTanh,
}

/// Where a [`CfCCell`]'s backbone applies dropout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropoutPlacement {
    /// After backbone layers 2 and later (upstream ncps' torch code; a
    /// one-layer backbone has no dropout) (default).
    #[default]
    LaterLayers,
    /// After every backbone layer, the first included (the CfC paper's
    /// TensorFlow code).
    EveryLayer,
}

/// How the fused path (see [`CfCCellOptions::fused`]) draws a training
/// sequence's dropout masks. Both are reproducible under
/// `B::seed(&device, seed)`; the tensor-op path always draws Burn
/// `Dropout`'s masks, one step at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropoutMasks {
    /// One seed per sequence from the backend's RNG, every unit's mask
    /// derived from it by a counter-based generator (SplitMix64), in
    /// parallel (default). Other units than the tensor-op path drops,
    /// with the same distribution: each kept with probability
    /// `1 - backbone_dropout`, independently.
    #[default]
    Counter,
    /// The backend's RNG, step by step and layer by layer, in the order
    /// the tensor-op path draws: a seeded run drops the same units with
    /// `fused` on or off. Slower: one RNG draw per unit on the calling
    /// thread (at the Walker2d CfC's sizes, 64 × 256 × 256 draws a
    /// batch).
    Stepwise,
}

/// The backbone's activation function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `1.7159 * tanh(0.666 * x)` (default).
    #[default]
    LecunTanh,
    /// `x * sigmoid(x)`.
    Silu,
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// The exact (erf) GELU, as `torch.nn.GELU()`.
    Gelu,
}

impl Activation {
    /// Applies the activation.
    pub fn apply<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Activation::LecunTanh => activate(x, Unary::LecunTanh),
            // x·sigmoid(x) with the crate's sigmoid (exact in float64).
            Activation::Silu => x.clone() * sigmoid(x),
            Activation::Relu => relu(x),
            Activation::Tanh => activate(x, Unary::Tanh),
            // Burn 0.21's `gelu` differentiates the tanh approximation; the
            // erf form keeps forward and gradient exact, as torch's.
            Activation::Gelu => x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5,
        }
    }
}

/// The options of a [`CfCCell`] besides its sizes and sparsity: held as one
/// value by [`CfCCellConfig::options`] and by the sequence model's
/// [`CfCConfig::cell`](crate::rnn::CfCConfig::cell). Defaults are upstream's.
///
/// ```
/// use ncps::cells::{Activation, CfCCellOptions, CfCMode};
///
/// // upstream's CfC(..., mode="no_gate", backbone_units=256, activation="silu")
/// let options = CfCCellOptions::new()
///     .with_mode(CfCMode::NoGate)
///     .with_backbone_units(256)
///     .with_activation(Activation::Silu);
/// assert_eq!(options.backbone_layers, 1); // upstream's default
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct CfCCellOptions {
    /// Default: [`CfCMode::Default`].
    #[config(default = "CfCMode::Default")]
    pub mode: CfCMode,
    /// Backbone activation. Default: [`Activation::LecunTanh`].
    #[config(default = "Activation::LecunTanh")]
    pub activation: Activation,
    /// Width of each backbone layer. Default: 128.
    #[config(default = "CfCCellOptions::DEFAULT_BACKBONE_UNITS")]
    pub backbone_units: usize,
    /// Backbone layers; 0 feeds `[input, state]` to the heads directly.
    /// Default: 1.
    #[config(default = "CfCCellOptions::DEFAULT_BACKBONE_LAYERS")]
    pub backbone_layers: usize,
    /// Dropout rate of the backbone (after layers 2 and later, as
    /// upstream, unless `dropout_placement` says otherwise). Default: 0.
    #[config(default = "CfCCellOptions::DEFAULT_BACKBONE_DROPOUT")]
    pub backbone_dropout: f64,
    /// Which backbone layers dropout follows. Default:
    /// [`DropoutPlacement::LaterLayers`] (upstream's).
    #[config(default = "DropoutPlacement::LaterLayers")]
    pub dropout_placement: DropoutPlacement,
    /// How the fused path draws dropout masks. Default:
    /// [`DropoutMasks::Counter`].
    #[config(default = "DropoutMasks::Counter")]
    pub dropout_masks: DropoutMasks,
    /// The heads' squashing. Default: [`HeadActivation::Tanh`] (upstream's).
    #[config(default = "HeadActivation::Tanh")]
    pub head_activation: HeadActivation,
    /// Run whole sequences as one fused operation where the backend has
    /// one (`NdArray<f32>`, with or without autodiff; dense cells only);
    /// `false` always takes the tensor-op path, which every backend runs.
    /// Both compute the same numbers (to float32 rounding); in training
    /// with dropout, from the same masks under
    /// [`DropoutMasks::Stepwise`] only. Default: true.
    #[config(default = true)]
    pub fused: bool,
}

impl CfCCellOptions {
    /// Upstream's `backbone_units`.
    pub const DEFAULT_BACKBONE_UNITS: usize = 128;
    /// Upstream's `backbone_layers`.
    pub const DEFAULT_BACKBONE_LAYERS: usize = 1;
    /// Upstream's `backbone_dropout`.
    pub const DEFAULT_BACKBONE_DROPOUT: f64 = 0.0;

    /// Fails when `backbone_units` is 0 under a backbone, `backbone_dropout`
    /// is outside `[0, 1)`, or pure mode is given a head activation.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.backbone_layers > 0 && self.backbone_units == 0 {
            return Err(ConfigError::invalid(
                "backbone_units",
                0,
                "at least 1 when backbone_layers > 0",
            ));
        }
        if !(0.0..1.0).contains(&self.backbone_dropout) {
            return Err(ConfigError::invalid(
                "backbone_dropout",
                self.backbone_dropout,
                "in [0, 1)",
            ));
        }
        if self.mode == CfCMode::Pure && self.head_activation != HeadActivation::Tanh {
            return Err(ConfigError::invalid(
                "head_activation",
                format!("{:?}", self.head_activation),
                "Tanh in pure mode (its head is linear)",
            ));
        }
        Ok(())
    }

    /// The first option a wired CfC (which has no backbone and keeps
    /// upstream's heads) cannot take, by name.
    pub(crate) fn dense_only_given(&self) -> Option<&'static str> {
        let default = Self::new();
        [
            (
                "backbone_units",
                self.backbone_units != default.backbone_units,
            ),
            (
                "backbone_layers",
                self.backbone_layers != default.backbone_layers,
            ),
            (
                "backbone_dropout",
                self.backbone_dropout != default.backbone_dropout,
            ),
            (
                "dropout_placement",
                self.dropout_placement != default.dropout_placement,
            ),
            ("dropout_masks", self.dropout_masks != default.dropout_masks),
            (
                "head_activation",
                self.head_activation != default.head_activation,
            ),
            ("activation", self.activation != default.activation),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }
}

/// Configuration of a [`CfCCell`]. Defaults are upstream's `CfCCell`'s.
#[derive(Config, Debug)]
pub struct CfCCellConfig {
    /// Features of one input step.
    pub input_size: usize,
    /// Hidden units (the state size).
    pub hidden_size: usize,
    /// Mode, backbone, heads and the fused path. Default:
    /// [`CfCCellOptions::new()`], upstream's.
    #[config(default = "CfCCellOptions::new()")]
    pub options: CfCCellOptions,
    /// Sparsity mask of the `ff1`/`ff2` heads, `[input_size + hidden_size,
    /// hidden_size]`, `[src][dest]` (absolute values are used); needs
    /// `options.backbone_layers = 0`. Default: none.
    #[config(default = "None")]
    pub sparsity_mask: Option<SynapseMatrix>,
    /// How the weights start. Default: [`Initialization::Upstream`].
    #[config(default = "Initialization::Upstream")]
    pub initialization: Initialization,
}

/// A closed-form continuous-time cell (Hasani et al., Nature Machine
/// Intelligence 2022): a backbone MLP over `[input, state]` feeds heads whose
/// time-gated mix approximates the LTC ODE's solution in closed form.
///
/// Every 2-D weight is initialised Xavier-uniform, biases as PyTorch's
/// `nn.Linear` (U(±1/√fan_in)). Pure mode's `w_tau [1, H]` and `a [1, H]`
/// (upstream's `A`) are Xavier-uniform too, U(±√(6 / (H + 1))), as upstream
/// torch's `init_weights` leaves them (its constructor's 0 and 1 are
/// overwritten). [`Initialization::Keras`] starts the biases at 0, `w_tau`
/// at 0 and `a` at 1 instead.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::cells::{Activation, CfCCellConfig, CfCCellOptions, CfCMode, RecurrentCell};
///
/// let device = Default::default();
/// let options = CfCCellOptions::new()
///     .with_mode(CfCMode::NoGate)
///     .with_activation(Activation::Silu)
///     .with_backbone_layers(2);
/// let cell = CfCCellConfig::new(3, 16).with_options(options).init::<NdArray>(&device)?;
/// let (output, state) = cell.forward(Tensor::zeros([5, 3], &device), Tensor::zeros([5, 16], &device), Tensor::ones([5], &device));
/// assert_eq!(output.dims(), [5, 16]);
/// # let _ = state;
/// # Ok::<(), ncps::ConfigError>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct CfCCell<B: Backend> {
    /// Backbone layers, `[input + hidden → units]`, then `[units → units]`.
    pub backbone: Vec<Linear<B>>,
    /// Dropout after backbone layers (see `dropout_placement`).
    pub dropout: Dropout,
    /// First head `[cat → hidden]`.
    pub ff1: Linear<B>,
    /// Second head (not in pure mode).
    pub ff2: Option<Linear<B>>,
    /// Time gate slope head (not in pure mode).
    pub time_a: Option<Linear<B>>,
    /// Time gate offset head (not in pure mode).
    pub time_b: Option<Linear<B>>,
    /// Pure mode's time constants `[1, hidden]`.
    pub w_tau: Option<Param<Tensor<B, 2>>>,
    /// Pure mode's amplitude `[1, hidden]` (upstream's `A`).
    pub a: Option<Param<Tensor<B, 2>>>,
    /// Sparsity mask of `ff1`/`ff2`, `[cat, hidden]` (constant).
    pub sparsity_mask: Mask<B>,
    /// The state-update rule.
    #[module(skip)]
    pub mode: CfCMode,
    /// The backbone activation.
    #[module(skip)]
    pub activation: Activation,
    /// Which backbone layers dropout follows.
    #[module(skip)]
    pub dropout_placement: DropoutPlacement,
    /// How the fused path draws dropout masks.
    #[module(skip)]
    pub dropout_masks: DropoutMasks,
    /// The heads' squashing.
    #[module(skip)]
    pub head_activation: HeadActivation,
    /// Features of one input step.
    pub input_size: usize,
    /// Hidden units.
    pub hidden_size: usize,
    /// Run whole sequences fused where the backend has the kernel.
    pub fused: bool,
    /// The fused kernel's trace buffers, from one training step's backward
    /// pass to the next step's forward pass (shared by clones).
    #[module(skip)]
    pub(crate) trace_buffers: Arc<Recycled<Vec<f32>>>,
}

impl<B: Backend> ModuleDisplay for CfCCell<B> {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        one_line()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let backbone_units = self.backbone.first().map_or(0, |l| l.weight.dims()[1]);
        content
            .add("input_size", &self.input_size)
            .add("hidden_size", &self.hidden_size)
            .add("mode", format!("{:?}", self.mode).as_str())
            .add("activation", format!("{:?}", self.activation).as_str())
            .add("backbone_layers", &self.backbone.len())
            .add("backbone_units", &backbone_units)
            .add("sparsity_mask", &self.sparsity_mask.get().is_some())
            .optional()
    }
}

/// A `[1, hidden]` parameter of pure mode: Xavier-uniform as torch
/// initialises a 2-D tensor of that shape (fan in `hidden`, fan out 1), or
/// the constant `keras` (Keras' `w_tau` 0, `A` 1).
fn pure_row<B: Backend>(
    hidden: usize,
    initialization: Initialization,
    keras: f64,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    match initialization {
        Initialization::Upstream => Initializer::XavierUniform { gain: 1.0 }.init_with(
            [1, hidden],
            Some(hidden),
            Some(1),
            device,
        ),
        Initialization::Keras => Initializer::Constant { value: keras }.init([1, hidden], device),
    }
}

impl CfCCellConfig {
    /// Initialises the cell on `device`.
    ///
    /// Fails when a size is 0, `backbone_dropout` is outside `[0, 1)`, or a
    /// sparsity mask is given with a backbone or of the wrong shape.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CfCCell<B>, ConfigError> {
        if self.input_size == 0 {
            return Err(ConfigError::invalid("input_size", 0, "at least 1"));
        }
        if self.hidden_size == 0 {
            return Err(ConfigError::invalid("hidden_size", 0, "at least 1"));
        }
        let options = &self.options;
        options.check()?;
        let cat = self.input_size + self.hidden_size;
        let sparsity_mask = match &self.sparsity_mask {
            None => Mask::none(),
            Some(_) if options.backbone_layers > 0 => {
                return Err(ConfigError::invalid(
                    "sparsity_mask",
                    "a mask",
                    "used with backbone_layers = 0 only",
                ));
            }
            Some(mask) if mask.shape() != [cat, self.hidden_size] => {
                return Err(ConfigError::invalid(
                    "sparsity_mask",
                    format!("{:?}", mask.shape()),
                    format!(
                        "of shape [input_size + hidden_size, hidden_size] = [{cat}, {}]",
                        self.hidden_size
                    ),
                ));
            }
            Some(mask) => mask_tensor(mask, device),
        };
        let init = self.initialization;
        let backbone: Vec<Linear<B>> = (0..options.backbone_layers)
            .map(|i| {
                let d_input = if i == 0 { cat } else { options.backbone_units };
                xavier_linear(d_input, options.backbone_units, init, device)
            })
            .collect();
        let head_input = if options.backbone_layers == 0 {
            cat
        } else {
            options.backbone_units
        };
        let head = || xavier_linear(head_input, self.hidden_size, init, device);
        let gated = options.mode != CfCMode::Pure;
        Ok(materialize(CfCCell {
            backbone,
            dropout: DropoutConfig::new(options.backbone_dropout).init(),
            ff1: head(),
            ff2: gated.then(head),
            time_a: gated.then(head),
            time_b: gated.then(head),
            w_tau: (!gated).then(|| pure_row(self.hidden_size, init, 0.0, device)),
            a: (!gated).then(|| pure_row(self.hidden_size, init, 1.0, device)),
            sparsity_mask,
            mode: options.mode,
            activation: options.activation,
            dropout_placement: options.dropout_placement,
            dropout_masks: options.dropout_masks,
            head_activation: options.head_activation,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            fused: options.fused,
            trace_buffers: Arc::default(),
        }))
    }
}

impl<B: Backend> CfCCell<B> {
    /// A head: with a sparsity mask, through its masked weight (`masked`,
    /// derived once per sequence).
    fn head(
        &self,
        layer: &Linear<B>,
        masked: Option<&Tensor<B, 2>>,
        x: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        match masked {
            Some(weight) => linear(x, weight.clone(), layer.bias.as_ref().map(Param::val)),
            None => layer.forward(x),
        }
    }

    /// What the tensor-op steps derive from the parameters once per
    /// sequence: the weights of `ff1` and `ff2` times the sparsity mask (as
    /// upstream, the time heads are not masked), pure mode's `|w_tau|` and
    /// `A`.
    pub(crate) fn prepare_tensor_ops(&self) -> CfCPrepared<B> {
        let masked = self.sparsity_mask.get().map(|mask| {
            std::iter::once(&self.ff1)
                .chain(&self.ff2)
                .map(|head| head.weight.val() * mask.clone())
                .collect()
        });
        let pure = self
            .w_tau
            .as_ref()
            .zip(self.a.as_ref())
            .map(|(w_tau, a)| [w_tau.val().abs(), a.val()]);
        CfCPrepared {
            fused: None,
            masked,
            pure,
        }
    }
}

impl<B: Backend> CfCCell<B> {
    /// The fused kernel's description of this cell with `lstm` before it,
    /// and which backbone layers drop out now (training, a rate above 0);
    /// `None` when the kernel cannot run it (a sparsity mask, a layer
    /// without bias, `fused: false`, or a backend without the kernel).
    fn fused_spec(&self, memory: Option<MixedMemory<'_, B>>, training: bool) -> Option<Spec> {
        let lstm = memory.map(|m| m.lstm);
        let has_bias = |l: &Linear<B>| l.bias.is_some();
        let heads = [
            Some(&self.ff1),
            self.ff2.as_ref(),
            self.time_a.as_ref(),
            self.time_b.as_ref(),
        ];
        if !self.fused
            || !crate::kernels::fused_available::<B>()
            || self.sparsity_mask.get().is_some()
            || !self
                .backbone
                .iter()
                .chain(heads.into_iter().flatten())
                .all(has_bias)
            || lstm.is_some_and(|l| l.input_map.bias.is_none())
        {
            return None;
        }
        let drops = training && self.dropout.prob > 0.0;
        let memory_as_input = memory.is_some_and(|m| m.output == LstmOutput::Input);
        Some(Spec {
            // What the sequence feeds: the LSTM's input when the cell reads
            // the LSTM's output.
            inputs: match lstm {
                Some(lstm) if memory_as_input => lstm.input_map.weight.dims()[0],
                _ => self.input_size,
            },
            memory_as_input,
            hidden: self.hidden_size,
            backbone: self.backbone.iter().map(|l| l.weight.dims()[1]).collect(),
            activation: match self.activation {
                Activation::LecunTanh => Backbone::LecunTanh,
                Activation::Silu => Backbone::Silu,
                Activation::Relu => Backbone::Relu,
                Activation::Tanh => Backbone::Tanh,
                Activation::Gelu => Backbone::Gelu,
            },
            dropout: (0..self.backbone.len())
                .map(|i| drops && (i > 0 || self.dropout_placement == DropoutPlacement::EveryLayer))
                .collect(),
            mix: match self.mode {
                CfCMode::Pure => Mix::Pure,
                mode => Mix::Gated {
                    gated: mode == CfCMode::Default,
                    lecun: self.head_activation == HeadActivation::LecunTanh,
                },
            },
            forget_bias: lstm.map(|l| l.forget_bias as f32),
        })
    }

    /// Every weight, flat, in the order of [`crate::kernels::cfc::Flat`].
    fn flat_weights(&self, lstm: Option<&LSTMCell<B>>) -> Tensor<B, 1> {
        let mut blocks: Vec<Tensor<B, 1>> = Vec::new();
        let mut linear = |l: &Linear<B>| {
            blocks.push(l.weight.val().flatten(0, 1));
            if let Some(bias) = &l.bias {
                blocks.push(bias.val());
            }
        };
        if let Some(lstm) = lstm {
            linear(&lstm.input_map);
            linear(&lstm.recurrent_map);
        }
        for layer in &self.backbone {
            linear(layer);
        }
        match (&self.ff2, &self.time_a, &self.time_b) {
            // The four heads side by side: one `[fan_in, 4 * hidden]`
            // matrix and one bias (`fused_spec` checked that they have one).
            (Some(ff2), Some(time_a), Some(time_b)) => {
                let heads = [&self.ff1, ff2, time_a, time_b];
                let weights = heads.iter().map(|l| l.weight.val()).collect();
                blocks.push(Tensor::cat(weights, 1).flatten(0, 1));
                let biases = heads.iter().filter_map(|l| l.bias.as_ref());
                blocks.push(Tensor::cat(biases.map(Param::val).collect(), 0));
            }
            _ => linear(&self.ff1),
        }
        for row in [&self.w_tau, &self.a].into_iter().flatten() {
            blocks.push(row.val().flatten(0, 1));
        }
        // The blocks outlive the concatenation's registration in the
        // autodiff graph: each flattened weight is a graph of its own until
        // then, and burn-autodiff 0.21's cleanup (run by a backward pass on
        // any thread) frees such a graph once no tensor refers to it, which
        // lost the weights' gradients when tests ran in parallel.
        let theta = Tensor::cat(blocks.clone(), 0);
        drop(blocks);
        theta
    }

    /// Dropout factors (0, or `1 / keep`) for each layer `spec` drops out,
    /// `[steps, batch, width]`, drawn as `dropout_masks` says.
    fn dropout_factors(
        &self,
        spec: &Spec,
        batch: usize,
        steps: usize,
        device: &B::Device,
    ) -> Vec<Vec<f32>> {
        let widths: Vec<usize> = (0..spec.backbone.len())
            .filter(|&l| spec.dropout[l])
            .map(|l| spec.backbone[l])
            .collect();
        if widths.is_empty() {
            return Vec::new();
        }
        let keep = 1.0 - self.dropout.prob;
        match self.dropout_masks {
            DropoutMasks::Counter => {
                let seed = draw_seed::<B>(device);
                let factors = widths.iter().enumerate().map(|(stream, &width)| {
                    let mut factors = vec![0.0; steps * batch * width];
                    dropout::counter_factors(seed, stream as u64, keep, &mut factors);
                    factors
                });
                factors.collect()
            }
            DropoutMasks::Stepwise => {
                let scale = (1.0 / keep) as f32;
                let mut factors: Vec<Vec<f32>> = widths
                    .iter()
                    .map(|&width| Vec::with_capacity(steps * batch * width))
                    .collect();
                for _ in 0..steps {
                    for (factor, &width) in factors.iter_mut().zip(&widths) {
                        let mask = Tensor::<B, 2>::random(
                            [batch, width],
                            Distribution::Bernoulli(keep),
                            device,
                        );
                        let values = mask.into_data().convert::<f32>();
                        let values = values.as_slice::<f32>().expect("f32 data");
                        factor.extend(values.iter().map(|m| m * scale));
                    }
                }
                factors
            }
        }
    }
}

/// A 64-bit seed from the backend's RNG (four 16-bit draws), so that
/// `B::seed` fixes what is derived from it.
fn draw_seed<B: Backend>(device: &B::Device) -> u64 {
    let draws = Tensor::<B, 1>::random([4], Distribution::Uniform(0.0, 65536.0), device);
    let draws = draws.into_data().convert::<f32>();
    let draws = draws.as_slice::<f32>().expect("f32 data");
    draws
        .iter()
        .fold(0, |seed, &draw| seed << 16 | (draw as u64 & 0xffff))
}

/// What a [`CfCCell`] derives once per sequence (or once per control loop,
/// in a [`Stateful`](crate::rnn::Stateful)): on a backend with the fused
/// kernel and without autodiff, its weights gathered flat, so that each
/// step is one fused operation (a batch-1 control step runs about ten
/// tensor operations otherwise); for the tensor-op steps, the heads'
/// masked weights and pure mode's `|w_tau|` and `A`.
///
/// Deriving those once per sequence rather than at every step matters
/// under autodiff: Burn 0.21 starts a new graph for an operation whose
/// only tracked parent is a parameter, and the step then merges it into
/// the sequence's graph, about half the time by moving the large one into
/// the new one: training time grew with the square of the sequence length
/// (see also `rnn`'s joined parameters, docs/performance.md).
#[derive(Clone, Debug)]
pub struct CfCPrepared<B: Backend> {
    fused: Option<(Arc<Spec>, Tensor<B, 1>)>,
    /// The weights of `ff1` and `ff2` (when gated) times the sparsity mask.
    masked: Option<Vec<Tensor<B, 2>>>,
    /// Pure mode: `|w_tau|` and `A`.
    pure: Option<[Tensor<B, 2>; 2]>,
}

impl<B: Backend> RecurrentCell<B> for CfCCell<B> {
    type Prepared = CfCPrepared<B>;

    fn input_size(&self) -> usize {
        self.input_size
    }

    fn state_size(&self) -> usize {
        self.hidden_size
    }

    fn output_size(&self) -> usize {
        self.hidden_size
    }

    fn prepare(&self) -> CfCPrepared<B> {
        // Under autodiff the steps keep the tensor ops (dropout and the
        // graph are theirs); a sequence runs fused through `fused_sequence`.
        if B::ad_enabled(&self.ff1.weight.device()) {
            return self.prepare_tensor_ops();
        }
        match self.fused_spec(None, false) {
            Some(spec) => CfCPrepared {
                fused: Some((Arc::new(spec), self.flat_weights(None))),
                masked: None,
                pure: None,
            },
            None => self.prepare_tensor_ops(),
        }
    }

    /// Gathering the weights costs more than the fused kernel saves in
    /// one step: a single step runs the tensor ops.
    fn prepare_single_step(&self) -> CfCPrepared<B> {
        self.prepare_tensor_ops()
    }

    fn fused_sequence(
        &self,
        memory: Option<MixedMemory<'_, B>>,
        inputs: &SequenceInputs<B>,
    ) -> Option<SequenceOutputs<B>> {
        let device = inputs.input.device();
        let spec = Arc::new(self.fused_spec(memory, B::ad_enabled(&device))?);
        let lstm = memory.map(|m| m.lstm);
        let [batch, steps, _] = inputs.input.dims();
        let extras = Extras {
            lengths: inputs.lengths.clone(),
            dropout: self.dropout_factors(&spec, batch, steps, &device),
            buffers: Arc::clone(&self.trace_buffers),
        };
        let states = cfc_sequence(
            &spec,
            extras,
            CfcInputs {
                x: inputs.input.clone(),
                elapsed: inputs.elapsed.clone(),
                h0: inputs.hidden.clone(),
                c0: inputs.memory.clone(),
                theta: self.flat_weights(lstm),
            },
        )?;
        let h = self.hidden_size;
        // Without mixed memory the states are the outputs: no copy. With
        // it, the `h` halves as a tensor of their own (Burn's slice copied
        // them value by value and built a zero gradient of all the states,
        // on the calling thread).
        let outputs = match lstm {
            Some(_) => leading_columns(states.clone(), h),
            None => states.clone(),
        };
        let last = |range: std::ops::Range<usize>| {
            states
                .clone()
                .slice([0..batch, steps - 1..steps, range])
                .reshape([batch, h])
        };
        Some(SequenceOutputs {
            hidden: last(0..h),
            memory: lstm.map(|_| last(h..2 * h)),
            outputs,
        })
    }

    fn step_unchecked(
        &self,
        prepared: &CfCPrepared<B>,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        if let Some((spec, theta)) = &prepared.fused {
            let batch = input.dims()[0];
            let inputs = CfcInputs {
                x: input.unsqueeze_dim(1),
                elapsed,
                h0: state,
                c0: None,
                theta: theta.clone(),
            };
            let hidden = cfc_sequence(spec, Extras::default(), inputs)
                .expect("prepare() checked that the backend has the fused kernel")
                .reshape([batch, self.hidden_size]);
            return (hidden.clone(), hidden);
        }
        let mut x = Tensor::cat(vec![input, state], 1);
        for (i, layer) in self.backbone.iter().enumerate() {
            x = self.activation.apply(layer.forward(x));
            if i > 0 || self.dropout_placement == DropoutPlacement::EveryLayer {
                x = self.dropout.forward(x);
            }
        }
        let masked = |i: usize| prepared.masked.as_ref().map(|m| &m[i]);
        let ff1 = self.head(&self.ff1, masked(0), x.clone());
        let hidden = match (&self.ff2, &self.time_a, &self.time_b, &prepared.pure) {
            (Some(ff2), Some(time_a), Some(time_b), _) => {
                let ff2 = self.head(ff2, masked(1), x.clone());
                let mix = GatedMix {
                    gated: self.mode != CfCMode::NoGate,
                };
                let (time_a, time_b) = (time_a.forward(x.clone()), time_b.forward(x));
                match self.head_activation {
                    HeadActivation::Tanh => gated_mix([ff1, ff2, time_a, time_b], elapsed, mix),
                    // The mix is linear in the squashed heads: 1.7159 ·
                    // mix(tanh(0.666 · ff1), tanh(0.666 · ff2)).
                    HeadActivation::LecunTanh => {
                        let heads = [ff1 * LECUN_SLOPE, ff2 * LECUN_SLOPE, time_a, time_b];
                        gated_mix(heads, elapsed, mix) * LECUN_SCALE
                    }
                }
            }
            (_, _, _, Some([w_tau_abs, a])) => {
                // A · (1 - decay · ff1), as upstream's `-A · decay · ff1 + A`
                // (negating is exact, so the same bits).
                let decay = (elapsed.neg() * (w_tau_abs.clone() + ff1.clone().abs())).exp();
                a.clone() - a.clone() * decay * ff1
            }
            _ => unreachable!("init() gives gated heads, or pure parameters prepared"),
        };
        (hidden.clone(), hidden)
    }
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::module::AutodiffModule;
    use burn::tensor::Distribution;

    use super::*;
    use crate::cells::AnyCfCCell;
    use crate::rnn::{CfC, CfCConfig, Units};

    /// A training step leaves its large trace buffers in the cell for the
    /// next one, which takes them and computes the same gradients bit for
    /// bit (in debug builds over NaN-poisoned buffers: a value read before
    /// it is written would show); inference frees them.
    #[test]
    fn training_steps_recycle_their_trace_buffers_and_inference_frees_them() {
        type AD = Autodiff<NdArray<f32>>;
        let device = Default::default();
        // 2,048 units over 16 samples (one thread) and 32 steps: 4 MiB per
        // backbone buffer, the size from which buffers are kept.
        let model: CfC<AD> = CfCConfig::new(3, Units::from(4))
            .with_cell(CfCCellOptions::new().with_backbone_units(2048))
            .init(&device)
            .unwrap();
        let AnyCfCCell::Dense(cell) = &model.cell else {
            panic!("a dense CfC");
        };
        let kept = || cell.trace_buffers.len();
        let x = Tensor::<AD, 3>::random([16, 32, 3], Distribution::Normal(0.0, 1.0), &device);
        // The gradient of the first layer's weight, and the buffers kept
        // after the forward pass and after the backward pass.
        let step = || {
            let (y, _) = model.forward(x.clone(), None);
            let during = kept();
            let grads = y.sum().backward();
            let weight = &cell.backbone[0].weight;
            (weight.grad(&grads).unwrap().into_data(), during, kept())
        };
        let (first, _, recycled) = step();
        assert!(recycled > 0, "a backward pass hands its buffers back");
        let (second, during, _) = step();
        assert!(during < recycled, "the next step takes them");
        assert_eq!(first, second, "the same gradients from recycled buffers");
        let _ = model.valid().forward(x.inner(), None);
        assert_eq!(kept(), 0, "inference frees them");
    }

    /// A prepared step is fused exactly where a whole sequence would be:
    /// a dense cell on `NdArray<f32>` without autodiff, `fused` on; one
    /// step alone never pays for gathering the weights.
    #[test]
    fn prepared_steps_run_fused_only_where_the_kernel_runs() {
        let device = Default::default();
        let cell = |options: CfCCellOptions| CfCCellConfig::new(3, 8).with_options(options);
        let plain = cell(CfCCellOptions::new())
            .init::<NdArray<f32>>(&device)
            .unwrap();
        assert!(plain.prepare().fused.is_some());
        assert!(plain.prepare_single_step().fused.is_none());
        for mode in [CfCMode::Pure, CfCMode::NoGate] {
            let options = CfCCellOptions::new()
                .with_mode(mode)
                .with_backbone_layers(0);
            let cell = cell(options).init::<NdArray<f32>>(&device).unwrap();
            assert!(cell.prepare().fused.is_some(), "{mode:?}");
        }
        let off = cell(CfCCellOptions::new().with_fused(false));
        assert!(
            off.init::<NdArray<f32>>(&device)
                .unwrap()
                .prepare()
                .fused
                .is_none()
        );
        let tracked = cell(CfCCellOptions::new()).init::<Autodiff<NdArray<f32>>>(&device);
        assert!(tracked.unwrap().prepare().fused.is_none());
    }

    /// The default masks: one `[steps, batch, width]` vector per dropped
    /// layer, each unit 0 or `1 / keep` at the keep rate, a new draw for
    /// each sequence and each layer.
    #[test]
    fn counter_masks_are_drawn_per_sequence_and_per_layer() {
        let device = Default::default();
        let options = CfCCellOptions::new()
            .with_backbone_layers(3)
            .with_backbone_units(64)
            .with_backbone_dropout(0.25)
            .with_dropout_placement(DropoutPlacement::LaterLayers);
        let cell = CfCCellConfig::new(3, 8)
            .with_options(options)
            .init::<Autodiff<NdArray<f32>>>(&device)
            .unwrap();
        assert_eq!(cell.dropout_masks, DropoutMasks::Counter);
        let spec = cell.fused_spec(None, true).unwrap();
        assert_eq!(spec.dropout, [false, true, true]);
        let (batch, steps) = (32, 20);
        let first = cell.dropout_factors(&spec, batch, steps, &device);
        let second = cell.dropout_factors(&spec, batch, steps, &device);
        assert_eq!(first.len(), 2);
        let n = steps * batch * 64;
        for layer in first.iter().chain(&second) {
            assert_eq!(layer.len(), n);
            assert!(layer.iter().all(|&f| f == 0.0 || f == 1.0 / 0.75));
            let kept = layer.iter().filter(|&&f| f > 0.0).count() as f64 / n as f64;
            // Five standard deviations of a binomial proportion.
            assert!((kept - 0.75).abs() < 5.0 * (0.75 * 0.25 / n as f64).sqrt());
        }
        // Independent masks at keep 0.75 agree on 0.75² + 0.25² of the units.
        let agree = |a: &[f32], b: &[f32]| {
            a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n as f64
        };
        for (a, b) in [(&first[0], &first[1]), (&first[0], &second[0])] {
            assert!((agree(a, b) - 0.625).abs() < 0.03, "{}", agree(a, b));
        }
    }
}
