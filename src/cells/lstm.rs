//! The LSTM cell of mixed memory.

use burn::module::Initializer;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Initialization, materialize, xavier_linear};
use crate::ConfigError;
use crate::kernels::activation::Unary::{Sigmoid, Tanh};
use crate::kernels::tensor::activate;

/// Configuration of an [`LSTMCell`].
#[derive(Config, Debug)]
pub struct LSTMCellConfig {
    /// Features of one input step.
    pub input_size: usize,
    /// Size of `h` and `c`.
    pub hidden_size: usize,
    /// Added to the forget gate's pre-activation: `c' = c·σ(fg +
    /// forget_bias) + ...`. Default: 1.0 (upstream ncps fixes it there; the
    /// CfC paper's mixed-memory Walker2d runs used 2.1).
    #[config(default = "LSTMCellConfig::DEFAULT_FORGET_BIAS")]
    pub forget_bias: f64,
    /// How the weights start: upstream's (`input_map` bias U(-0.1, 0.1)) or
    /// Keras' (bias 0). Default: [`Initialization::Upstream`].
    #[config(default = "Initialization::Upstream")]
    pub initialization: Initialization,
}

/// The LSTM cell that mixed-memory models run before their ODE cell at every
/// step (upstream's `ncps.torch.LSTMCell`): `z = input_map(x) +
/// recurrent_map(h)` (no recurrent bias), gates `i, ig, fg, og` = the four
/// chunks of `z`, `c' = c·σ(fg + b) + tanh(i)·σ(ig)`, `h' = tanh(c')·σ(og)`,
/// with the forget bias `b` = 1 (upstream's; see
/// [`LSTMCellConfig::forget_bias`]).
///
/// Initialisation as upstream: `input_map` weight Xavier-uniform,
/// `recurrent_map` weight orthogonal, biases U(-0.1, 0.1) (0 with
/// [`Initialization::Keras`]).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::cells::LSTMCellConfig;
///
/// let device = Default::default();
/// let lstm = LSTMCellConfig::new(3, 8).init::<NdArray>(&device)?;
/// let (h, c) = lstm.forward(Tensor::zeros([2, 3], &device), Tensor::zeros([2, 8], &device), Tensor::zeros([2, 8], &device));
/// assert_eq!((h.dims(), c.dims()), ([2, 8], [2, 8]));
/// # Ok::<(), ncps::ConfigError>(())
/// ```
#[derive(Module, Debug)]
pub struct LSTMCell<B: Backend> {
    /// `[input → 4·hidden]`, with bias.
    pub input_map: Linear<B>,
    /// `[hidden → 4·hidden]`, without bias.
    pub recurrent_map: Linear<B>,
    /// Added to the forget gate's pre-activation (a constant, not trained).
    pub forget_bias: f64,
}

impl LSTMCellConfig {
    /// Upstream's forget-gate bias.
    pub const DEFAULT_FORGET_BIAS: f64 = 1.0;

    /// Initialises the cell on `device`. Fails when a size is 0 or the
    /// forget bias is not finite.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LSTMCell<B>, ConfigError> {
        if self.input_size == 0 {
            return Err(ConfigError::invalid("input_size", 0, "at least 1"));
        }
        if self.hidden_size == 0 {
            return Err(ConfigError::invalid("hidden_size", 0, "at least 1"));
        }
        if !self.forget_bias.is_finite() {
            return Err(ConfigError::invalid(
                "forget_bias",
                self.forget_bias,
                "a finite number",
            ));
        }
        let gates = 4 * self.hidden_size;
        let mut input_map = xavier_linear(self.input_size, gates, self.initialization, device);
        if self.initialization == Initialization::Upstream {
            input_map.bias = Some(
                Initializer::Uniform {
                    min: -0.1,
                    max: 0.1,
                }
                .init([gates], device),
            );
        }
        let recurrent_map = LinearConfig::new(self.hidden_size, gates)
            .with_bias(false)
            .with_initializer(Initializer::Orthogonal { gain: 1.0 })
            .init(device);
        Ok(materialize(LSTMCell {
            input_map,
            recurrent_map,
            forget_bias: self.forget_bias,
        }))
    }
}

impl<B: Backend> LSTMCell<B> {
    /// One step.
    ///
    /// # Shapes
    /// - input: `[batch, input_size]`
    /// - h, c: `[batch, hidden_size]`
    /// - returns: `(h', c')`, each `[batch, hidden_size]`
    pub fn forward(
        &self,
        input: Tensor<B, 2>,
        h: Tensor<B, 2>,
        c: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let z = self.input_map.forward(input) + self.recurrent_map.forward(h);
        let [i, ig, fg, og]: [Tensor<B, 2>; 4] = z.chunk(4, 1).try_into().expect("4 gates");
        let c = c * activate(fg + self.forget_bias, Sigmoid)
            + activate(i, Tanh) * activate(ig, Sigmoid);
        let h = activate(c.clone(), Tanh) * activate(og, Sigmoid);
        (h, c)
    }
}

/// Where a mixed-memory model's LSTM output goes at every step.
///
/// Both arrangements run the LSTM on the step's input `x` with the model's
/// state `h` as its recurrent input and its own memory `c`:
/// `(y, c') = lstm(x, h, c)`. They differ in what the cell then reads:
///
/// | arrangement | cell step | cell input size |
/// |---|---|---|
/// | [`State`](Self::State) (default) | `h' = cell(x, y)` | `input_size` |
/// | [`Input`](Self::Input) | `h' = cell(y, h)` | the state size |
///
/// ```
/// use burn::backend::NdArray;
/// use ncps::cells::{LstmOutput, RecurrentCell};
/// use ncps::rnn::{CfCConfig, Units};
///
/// let device = Default::default();
/// let paper = CfCConfig::new(17, Units::from(8))
///     .with_mixed_memory(true)
///     .with_lstm_output(LstmOutput::Input)
///     .init::<NdArray>(&device)?;
/// assert_eq!(paper.input_size(), 17);
/// // The LSTM reads the 17 features; the cell reads the LSTM's 8 outputs.
/// assert_eq!(paper.lstm.as_ref().unwrap().input_map.weight.dims(), [17, 32]);
/// assert_eq!(paper.cell.input_size(), 8);
/// # Ok::<(), ncps::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LstmOutput {
    /// Upstream ncps (torch and keras): the LSTM output replaces the
    /// cell's state for the step, and the cell reads `x`.
    #[default]
    State,
    /// The CfC paper's TensorFlow cell (`MixedCfcCell` in raminmh/CfC's
    /// `tf_cfc.py`, which produced its Walker2d mixed-memory row): the LSTM
    /// output is the cell's input, and the cell steps from its own state.
    /// The cell's input size is the state size. Python ncps has no such
    /// model, so it does not export to Python.
    Input,
}

/// The mixed-memory LSTM of a sequence model and where its output goes,
/// as [`RecurrentCell::fused_sequence`](super::RecurrentCell::fused_sequence)
/// receives them.
#[derive(Debug)]
pub struct MixedMemory<'a, B: Backend> {
    /// The LSTM cell.
    pub lstm: &'a LSTMCell<B>,
    /// Where its output goes.
    pub output: LstmOutput,
}

// By hand: a derive would ask `B: Copy`.
impl<B: Backend> Clone for MixedMemory<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for MixedMemory<'_, B> {}
