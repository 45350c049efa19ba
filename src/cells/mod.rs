//! Recurrent cells: one time step of a model.
//!
//! | cell | upstream | state |
//! |---|---|---|
//! | [`LTCCell`] | `ncps.torch.LTCCell` | membrane potentials of the wiring's neurons |
//! | [`CfCCell`] | `ncps.torch.CfCCell` | `hidden_size` units |
//! | [`WiredCfCCell`] | `ncps.torch.WiredCfCCell` | the wiring's neurons, layer after layer |
//! | [`LSTMCell`] | `ncps.torch.LSTMCell` (mixed memory) | `(h, c)` |
//!
//! Every cell but the LSTM implements [`RecurrentCell`]: one step maps an
//! input `[batch, input_size]`, a state `[batch, state_size]` and the elapsed
//! time of the step `[batch]` to an output `[batch, output_size]` and the next
//! state. The sequence modules of [`crate::rnn`] drive any `RecurrentCell`
//! through time with one shared loop.

mod any_cfc;
mod cfc;
mod lstm;
mod ltc;
mod mask;
mod wired_cfc;

use burn::module::{Initializer, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use crate::wirings::{SynapseMatrix, Wiring};

pub use crate::kernels::fused_available;
pub use any_cfc::AnyCfCCell;
pub use cfc::{
    Activation, CfCCell, CfCCellConfig, CfCCellOptions, CfCMode, DropoutMasks, DropoutPlacement,
    HeadActivation,
};
pub use lstm::{LSTMCell, LSTMCellConfig, LstmOutput, MixedMemory};
pub use ltc::{LTCCell, LTCCellConfig, LTCCellOptions, Mapping};
pub use mask::Mask;
pub use wired_cfc::{WiredCfCCell, WiredCfCCellConfig};

/// One time step of a continuous-time recurrent cell.
///
/// Implementors provide [`prepare`](Self::prepare), which derives from the
/// parameters what every step of a sequence reuses (masked, constrained
/// weights), and [`step_unchecked`](Self::step_unchecked), which advances the state by one
/// observation. [`forward`](Self::forward) is both for a single step, with
/// its shapes checked.
pub trait RecurrentCell<B: Backend>: Module<B> {
    /// What [`prepare`](Self::prepare) derives once per sequence.
    type Prepared;

    /// Features of one input step.
    fn input_size(&self) -> usize;

    /// Size of the state (the number of neurons or hidden units).
    fn state_size(&self) -> usize;

    /// Features of one output step (the motor neurons of a wiring).
    fn output_size(&self) -> usize;

    /// Derives the per-sequence constants from the parameters.
    fn prepare(&self) -> Self::Prepared;

    /// Derives the constants for one step alone ([`forward`](Self::forward),
    /// [`Rnn::step`](crate::rnn::Rnn::step)). The default is
    /// [`prepare`](Self::prepare); a cell whose per-sequence constants cost
    /// more to derive than they save in a single step returns cheaper ones
    /// (a dense [`CfCCell`] skips gathering its weights for the fused step).
    fn prepare_single_step(&self) -> Self::Prepared {
        self.prepare()
    }

    /// Advances one step without shape checks (the sequence modules check
    /// once per sequence).
    ///
    /// # Shapes
    /// - input: `[batch, input_size]`
    /// - state: `[batch, state_size]`
    /// - elapsed: `[batch, 1]`, the time since the previous step
    /// - returns: output `[batch, output_size]`, next state `[batch, state_size]`
    fn step_unchecked(
        &self,
        prepared: &Self::Prepared,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>);

    /// Runs a whole sequence as one fused operation where this cell and
    /// the backend have one (a dense [`CfCCell`] on `NdArray<f32>`, with
    /// or without autodiff; an [`LTCCell`] on `NdArray<f32>` without
    /// autodiff and without mixed memory); `None` tells the caller to run
    /// the steps.
    /// Both compute the same numbers to float32 rounding, gradients
    /// included. `memory` is the mixed-memory LSTM run before the cell at
    /// every step.
    ///
    /// The default runs nothing.
    fn fused_sequence(
        &self,
        memory: Option<MixedMemory<'_, B>>,
        inputs: &SequenceInputs<B>,
    ) -> Option<SequenceOutputs<B>> {
        let _ = (memory, inputs);
        None
    }

    /// One step with checked shapes: upstream's `cell(input, hx, ts)`.
    ///
    /// # Shapes
    /// - input: `[batch, input_size]`
    /// - state: `[batch, state_size]`
    /// - elapsed: `[batch]`, the time since the previous step (1.0 for
    ///   regularly sampled data)
    /// - returns: output `[batch, output_size]`, next state `[batch, state_size]`
    ///
    /// # Panics
    /// With a message naming the argument when a shape does not fit.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use burn::prelude::*;
    /// use ncps::cells::{CfCCellConfig, RecurrentCell};
    ///
    /// let device = Default::default();
    /// let cell = CfCCellConfig::new(3, 8).init::<NdArray>(&device)?;
    /// let (output, state) = cell.forward(
    ///     Tensor::zeros([2, 3], &device),
    ///     Tensor::zeros([2, 8], &device),
    ///     Tensor::ones([2], &device),
    /// );
    /// assert_eq!(output.dims(), [2, 8]);
    /// assert_eq!(state.dims(), [2, 8]);
    /// # Ok::<(), ncps::ConfigError>(())
    /// ```
    fn forward(
        &self,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [batch, features] = input.dims();
        check_features("input", features, self.input_size());
        check_shape("state", &state.dims(), &[batch, self.state_size()]);
        check_shape("elapsed", &elapsed.dims(), &[batch]);
        check_elapsed("elapsed", &elapsed);
        let prepared = self.prepare_single_step();
        self.step_unchecked(&prepared, input, state, elapsed.unsqueeze_dim(1))
    }
}

/// A whole sequence for [`RecurrentCell::fused_sequence`], batch-first.
#[derive(Clone, Debug)]
pub struct SequenceInputs<B: Backend> {
    /// `[batch, steps, input_size]`.
    pub input: Tensor<B, 3>,
    /// Elapsed time of every step, `[batch, steps]`.
    pub elapsed: Tensor<B, 2>,
    /// The initial state, `[batch, state_size]`.
    pub hidden: Tensor<B, 2>,
    /// The mixed-memory LSTM's initial memory, `[batch, state_size]`.
    pub memory: Option<Tensor<B, 2>>,
    /// Valid steps of each sample (each in `1..=steps`); the steps after
    /// them are padding and leave the sample's state unchanged. `None`:
    /// every step is valid.
    pub lengths: Option<Vec<usize>>,
}

/// What [`RecurrentCell::fused_sequence`] returns.
#[derive(Clone, Debug)]
pub struct SequenceOutputs<B: Backend> {
    /// The cell's output at every step, `[batch, steps, output_size]`.
    pub outputs: Tensor<B, 3>,
    /// The state after the last step, `[batch, state_size]`.
    pub hidden: Tensor<B, 2>,
    /// The LSTM's memory after the last step (mixed memory).
    pub memory: Option<Tensor<B, 2>>,
}

/// Draws every lazily initialised parameter now.
///
/// Burn initialises parameters on first use, and a clone of a module whose
/// parameters were never used draws its own values: `init` materialises
/// them so that a model and its clones are the same model.
pub(crate) fn materialize<B: Backend, M: Module<B>>(module: M) -> M {
    struct Touch;
    impl<B: Backend> ModuleVisitor<B> for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}

/// How a model's weights start: upstream's torch initialisation or the
/// Keras defaults of the CfC paper's TensorFlow code.
///
/// | weights | [`Upstream`](Self::Upstream) (default) | [`Keras`](Self::Keras) |
/// |---|---|---|
/// | CfC backbone and head kernels | Xavier-uniform | Glorot-uniform (the same distribution) |
/// | CfC backbone and head biases | U(±1/√fan_in), as `nn.Linear` | 0 |
/// | Cf-S (`pure`) `w_tau`, `A` | Xavier-uniform | 0 and 1 |
/// | LSTM input kernel, recurrent kernel | Xavier-uniform, orthogonal | the same |
/// | LSTM bias | U(±0.1) | 0 |
/// | projection (`proj_size`) kernel | U(±1/√fan_in), as `nn.Linear` | Glorot-uniform |
/// | projection bias | U(±1/√fan_in) | 0 |
///
/// The LTC cell's own parameters start from its init ranges in both.
///
/// ```
/// use burn::backend::NdArray;
/// use ncps::cells::Initialization;
/// use ncps::rnn::{CfCConfig, Units};
///
/// let device = Default::default();
/// let model = CfCConfig::new(17, Units::from(8))
///     .with_proj_size(Some(17))
///     .with_initialization(Initialization::Keras)
///     .init::<NdArray>(&device)?;
/// let bias = model.fc.as_ref().unwrap().bias.as_ref().unwrap().val();
/// assert_eq!(bias.abs().max().into_scalar(), 0.0);
/// # Ok::<(), ncps::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Initialization {
    /// Upstream ncps 1.0.1 (torch): its `init_weights` over PyTorch's
    /// `nn.Linear` defaults.
    #[default]
    Upstream,
    /// Keras' defaults, as in the CfC paper's `tf_cfc.py` (raminmh/CfC),
    /// which produced its Walker2d table: Glorot-uniform kernels, zero biases.
    Keras,
}

/// A `[d_input → d_output]` `Linear` with a Xavier/Glorot-uniform weight
/// and the bias `initialization` gives a CfC layer: PyTorch's default
/// (U(±1/√d_input)) or zeros.
pub(crate) fn xavier_linear<B: Backend>(
    d_input: usize,
    d_output: usize,
    initialization: Initialization,
    device: &B::Device,
) -> Linear<B> {
    let mut layer = LinearConfig::new(d_input, d_output).init(device);
    layer.weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
        [d_input, d_output],
        Some(d_input),
        Some(d_output),
        device,
    );
    if initialization == Initialization::Keras {
        layer.bias = Some(Initializer::Zeros.init([d_output], device));
    }
    layer
}

/// The projection of a sequence model (`proj_size`): PyTorch's `nn.Linear`
/// as upstream, or a Keras `Dense` (Glorot-uniform kernel, zero bias).
pub(crate) fn projection<B: Backend>(
    d_input: usize,
    d_output: usize,
    initialization: Initialization,
    device: &B::Device,
) -> Linear<B> {
    materialize(match initialization {
        Initialization::Upstream => LinearConfig::new(d_input, d_output).init(device),
        Initialization::Keras => xavier_linear(d_input, d_output, initialization, device),
    })
}

/// A constant 0/1 mask tensor of a synapse matrix (`|entry|`), in its
/// `[rows, cols]` layout: how every cell turns a wiring into a mask.
pub(crate) fn mask_tensor<B: Backend>(matrix: &SynapseMatrix, device: &B::Device) -> Mask<B> {
    Mask::new(Tensor::from_data(
        TensorData::new(matrix.mask_f32(), matrix.shape()),
        device,
    ))
}

/// The polarities of a synapse matrix (`-1`, `0`, `+1`) as a tensor: the
/// initial reversal potentials of an LTC cell.
pub(crate) fn polarity_tensor<B: Backend>(
    matrix: &SynapseMatrix,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(matrix.to_f32(), matrix.shape()), device)
}

/// The wiring as a cell's display shows it: its kind and synapse counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct WiringSummary {
    pub(crate) kind: &'static str,
    pub(crate) synapses: usize,
    pub(crate) sensory_synapses: usize,
}

impl WiringSummary {
    /// Adds the wiring's kind and synapse counts to a module's display.
    pub(crate) fn describe(&self, content: burn::module::Content) -> burn::module::Content {
        content
            .add("wiring", self.kind)
            .add("synapses", &self.synapses)
            .add("sensory_synapses", &self.sensory_synapses)
    }

    pub(crate) fn of(wiring: &crate::wirings::AnyWiring) -> Self {
        Self {
            kind: wiring.kind(),
            synapses: wiring.synapse_count(),
            sensory_synapses: wiring.sensory_synapse_count(),
        }
    }
}

/// Display settings of the cells: every attribute on one line, as burn-nn's
/// `Linear` prints.
pub(crate) fn one_line() -> Option<burn::module::DisplaySettings> {
    burn::module::DisplaySettings::new()
        .with_new_line_after_attribute(false)
        .optional()
}

/// Panics unless an input's feature size is the expected one.
pub(crate) fn check_features(argument: &str, found: usize, expected: usize) {
    assert!(
        found == expected,
        "{argument} has {found} features, but the model expects {expected} (its input_size)"
    );
}

/// Panics unless `dims` equals `expected`, naming the argument.
pub(crate) fn check_shape(argument: &str, dims: &[usize], expected: &[usize]) {
    assert!(
        dims == expected,
        "{argument} has shape {dims:?}, but {expected:?} was expected"
    );
}

/// Panics unless every elapsed time is finite and non-negative, naming the
/// argument and the first offending value. One reduction and one read
/// back per call (a sequence's timespans are checked once, not per step).
///
/// Zero is valid (no time passes: an LTC's state stays where it is); a
/// negative time runs the ODE backwards, which its solver cannot do
/// stably, and NaN or infinity have no meaning as durations.
pub(crate) fn check_elapsed<B: Backend, const D: usize>(argument: &str, elapsed: &Tensor<B, D>) {
    let valid = elapsed
        .clone()
        .is_finite()
        .bool_and(elapsed.clone().greater_equal_elem(0.0))
        .all()
        .into_scalar()
        .elem::<bool>();
    if !valid {
        let (index, value) = elapsed
            .to_data()
            .iter::<f64>()
            .enumerate()
            .find(|(_, t)| !(t.is_finite() && *t >= 0.0))
            .unwrap_or((0, f64::NAN));
        panic!(
            "{argument} must be finite and >= 0 (elapsed times; 0 means no time passes), \
             but element {index} (flat index) is {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use crate::rnn::{CfCConfig, LTCConfig, Units};
    use crate::wirings::AutoNCP;

    #[test]
    fn softplus_is_exact_and_finite_everywhere_with_its_gradient() {
        use burn::backend::Autodiff;
        use burn::prelude::*;
        type B = Autodiff<NdArray<f32>>;
        let inputs = [-1e4f32, -88.0, -17.0, -1.0, 0.0, 0.5, 19.0, 21.0, 88.0, 1e4];
        let x = Tensor::<B, 1>::from_floats(inputs, &Default::default()).require_grad();
        let y = crate::kernels::tensor::softplus(x.clone());
        let grads = y.clone().sum().backward();
        let values: Vec<f32> = y.into_data().to_vec().unwrap();
        let slopes: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        for ((&x, &y), &slope) in inputs.iter().zip(&values).zip(&slopes) {
            let x64 = f64::from(x);
            let truth = if x64 > 20.0 { x64 } else { x64.exp().ln_1p() };
            let sigmoid = 1.0 / (1.0 + (-x64).exp());
            assert!(
                y.is_finite() && slope.is_finite(),
                "softplus({x}) = {y}, slope {slope}"
            );
            let error = (f64::from(y) - truth).abs() / truth.abs().max(1e-300);
            assert!(error < 2e-7, "softplus({x}) = {y}, truth {truth}");
            // To f32 rounding (an approximate reciprocal would be 3.9e-5 off).
            assert!(
                (f64::from(slope) - sigmoid).abs() <= 6e-7 * sigmoid.max(1e-20),
                "slope at {x}: {slope}, truth {sigmoid}"
            );
        }
    }

    #[test]
    fn models_print_their_units_wiring_and_synapse_counts() {
        let device = Default::default();
        let wiring = AutoNCP::new(12, 2).unwrap();
        let ltc = LTCConfig::new(3, Units::from(wiring.clone()))
            .init::<NdArray>(&device)
            .unwrap();
        let cfc = CfCConfig::new(3, Units::from(wiring))
            .init::<NdArray>(&device)
            .unwrap();
        let dense = CfCConfig::new(3, Units::from(8))
            .with_proj_size(Some(2))
            .init::<NdArray>(&device)
            .unwrap();
        for (model, expected) in [
            (
                format!("{ltc}"),
                &[
                    "LTCCell {",
                    "units: 12",
                    "input_size: 3",
                    "motor: 2",
                    "wiring: AutoNCP",
                    "synapses: 20",
                    "sensory_synapses: 10",
                    "fused: true",
                ][..],
            ),
            (
                format!("{cfc}"),
                &[
                    "WiredCfCCell {",
                    "units: 12",
                    "layer_sizes: [6, 4, 2]",
                    "wiring: AutoNCP",
                    "synapses: 20",
                ][..],
            ),
            (
                format!("{dense}"),
                &[
                    "CfCCell {",
                    "hidden_size: 8",
                    "backbone_units: 128",
                    "d_output: 2",
                ][..],
            ),
        ] {
            for part in expected {
                assert!(model.contains(part), "{part:?} missing in\n{model}");
            }
        }
    }
}
