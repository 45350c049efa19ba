//! The sinusoid task of upstream's quickstart, and its training loop.
//!
//! Inputs `sin` and `cos` of `linspace(0, 3π, N)`, target
//! `sin(linspace(0, 6π, N))`, one sequence: a model must learn to double the
//! frequency of its input. The `sinusoid` and `wiring_comparison` examples,
//! the `sine_ltc_epoch` benchmark and the tests train on it with
//! [`SineTrainer`]: full-batch Adam on the mean squared error, with the
//! gradients' global norm clipped at 1 (upstream's Lightning setup).
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use ncps::rnn::{LTCConfig, Units};
//! use ncps::datasets::sine::{SineData, SineTrainer};
//! use ncps::wirings::AutoNCP;
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1)?)).init::<B>(&device)?;
//! let mut trainer = SineTrainer::new(model, SineData::new(48), 0.01, &device);
//! let first = trainer.epoch();
//! for _ in 0..20 {
//!     trainer.epoch();
//! }
//! assert!(trainer.mse() < first);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::f32::consts::PI;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;

use crate::cells::RecurrentCell;
use crate::rnn::Rnn;
use crate::train::clip_grad_norm;

/// The sinusoid data: `N` steps of `(sin, cos)` inputs and a sine target of
/// twice the frequency.
#[derive(Clone, Debug, PartialEq)]
pub struct SineData {
    /// Inputs, `[N, 2]` row-major: `sin(t), cos(t)`, `t` in `linspace(0, 3π, N)`.
    pub inputs: Vec<f32>,
    /// Targets, `[N]`: `sin(2t)`.
    pub targets: Vec<f32>,
}

/// numpy's `linspace(start, stop, n)`, endpoint included.
fn linspace(start: f32, stop: f32, n: usize) -> impl Iterator<Item = f32> {
    let step = if n > 1 {
        (stop - start) / (n - 1) as f32
    } else {
        0.0
    };
    (0..n).map(move |i| start + step * i as f32)
}

impl SineData {
    /// `steps` time steps (upstream uses 48).
    ///
    /// # Panics
    /// When `steps` is 0.
    pub fn new(steps: usize) -> Self {
        assert!(steps > 0, "steps must be at least 1");
        let inputs = linspace(0.0, 3.0 * PI, steps)
            .flat_map(|t| [t.sin(), t.cos()])
            .collect();
        let targets = linspace(0.0, 6.0 * PI, steps).map(f32::sin).collect();
        Self { inputs, targets }
    }

    /// Number of time steps.
    pub fn steps(&self) -> usize {
        self.targets.len()
    }

    /// The inputs as one sequence, `[1, N, 2]`.
    pub fn input_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3> {
        Tensor::from_data(
            TensorData::new(self.inputs.clone(), [1, self.steps(), 2]),
            device,
        )
    }

    /// The targets, `[1, N, 1]`.
    pub fn target_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3> {
        Tensor::from_data(
            TensorData::new(self.targets.clone(), [1, self.steps(), 1]),
            device,
        )
    }
}

/// Full-batch training on [`SineData`]: Adam (PyTorch's defaults, ε = 1e-8)
/// on the MSE, gradient norm clipped at 1.
pub struct SineTrainer<B: AutodiffBackend, C>
where
    C: RecurrentCell<B> + AutodiffModule<B>,
    Rnn<B, C>: AutodiffModule<B>,
{
    model: Option<Rnn<B, C>>,
    optimizer: OptimizerAdaptor<Adam, Rnn<B, C>, B>,
    learning_rate: f64,
    inputs: Tensor<B, 3>,
    targets: Tensor<B, 3>,
    last_mse: f32,
}

impl<B: AutodiffBackend, C> SineTrainer<B, C>
where
    C: RecurrentCell<B> + AutodiffModule<B>,
    Rnn<B, C>: AutodiffModule<B>,
{
    /// A trainer for `model` (input size 2, one output) at `learning_rate`.
    ///
    /// # Panics
    /// When the model's input size is not 2 or its output size not 1.
    pub fn new(model: Rnn<B, C>, data: SineData, learning_rate: f64, device: &B::Device) -> Self {
        assert_eq!(model.input_size(), 2, "the sine task has 2 input features");
        assert_eq!(model.output_size(), 1, "the sine task has 1 output");
        Self {
            model: Some(model),
            optimizer: AdamConfig::new().with_epsilon(1e-8).init(),
            learning_rate,
            inputs: data.input_tensor(device),
            targets: data.target_tensor(device),
            last_mse: f32::NAN,
        }
    }

    /// The model's prediction, `[N]`.
    pub fn predict(&self) -> Vec<f32> {
        let (output, _) = self.model().forward(self.inputs.clone(), None);
        output
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 data")
    }

    /// One epoch (one Adam step); returns the MSE before the step.
    pub fn epoch(&mut self) -> f32 {
        let model = self.model.take().expect("the model is always put back");
        let (output, _) = model.forward(self.inputs.clone(), None);
        let loss = (output - self.targets.clone()).square().mean();
        self.last_mse = loss.clone().into_scalar().elem::<f32>();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clip_grad_norm(&model, &mut grads, 1.0);
        self.model = Some(self.optimizer.step(self.learning_rate, model, grads));
        self.last_mse
    }

    /// The MSE of the current model.
    pub fn mse(&self) -> f32 {
        let prediction = self.predict();
        let targets: Vec<f32> = self
            .targets
            .to_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 data");
        prediction
            .iter()
            .zip(&targets)
            .map(|(p, t)| (p - t).powi(2))
            .sum::<f32>()
            / targets.len() as f32
    }

    /// The model being trained.
    pub fn model(&self) -> &Rnn<B, C> {
        self.model.as_ref().expect("the model is always put back")
    }

    /// The trained model.
    pub fn into_model(self) -> Rnn<B, C> {
        self.model.expect("the model is always put back")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_matches_upstream_linspace() {
        let data = SineData::new(48);
        assert_eq!(data.steps(), 48);
        assert_eq!(data.inputs[..2], [0.0, 1.0]);
        // Endpoint included: t = 3π at the last step.
        let last = &data.inputs[94..];
        assert!((last[0] - (3.0 * PI).sin()).abs() < 1e-6 && (last[1] + 1.0).abs() < 1e-6);
        assert!(data.targets[47].abs() < 1e-5);
        assert!((data.targets[4] - (6.0 * PI * 4.0 / 47.0).sin()).abs() < 1e-6);
    }
}
