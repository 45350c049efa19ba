//! The sinusoid task of upstream's quickstart.
//!
//! Inputs `sin` and `cos` of `linspace(0, 3π, N)`, target
//! `sin(linspace(0, 6π, N))`, one sequence: a model must learn to double the
//! frequency of its input. [`SineData`] is a `burn::data` dataset of that
//! one sequence and [`SineBatcher`] batches it, so the shared
//! [`Trainer`](crate::train::Trainer) trains on it with
//! [`SequenceMse`](crate::train::SequenceMse): full-batch Adam on the mean
//! squared error, the gradients' global norm clipped at 1 (upstream's
//! Lightning setup). The `sinusoid` and `wiring_comparison` examples, the
//! `sine_ltc_epoch` benchmark and the tests train this way.
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use ncps::datasets::sine::{SineBatcher, SineData};
//! use ncps::rnn::{LTCConfig, Units};
//! use ncps::train::{Clipping, SequenceMse, TrainConfig, Trainer};
//! use ncps::wirings::AutoNCP;
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1)?)).init::<B>(&device)?;
//! let data = SineData::new(48);
//! let config = TrainConfig::new(20, 1)
//!     .with_learning_rate(0.01)
//!     .with_clipping(Clipping::GlobalNorm(1.0));
//! let trained = Trainer::new(config, device)
//!     .fit(model, &SequenceMse::default(), &data, &data, &SineBatcher, &mut ())?;
//! assert!(trained.log[19].valid_loss < trained.log[0].valid_loss);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::f32::consts::PI;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::train::SequenceBatch;

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

/// The task as a `burn::data` dataset of one item: the whole sequence, so
/// that every epoch is one full-batch step.
impl Dataset<SineData> for SineData {
    fn get(&self, index: usize) -> Option<SineData> {
        (index == 0).then(|| self.clone())
    }

    fn len(&self) -> usize {
        1
    }
}

/// Stacks [`SineData`] sequences of one length into a
/// [`SequenceBatch`]: inputs `[n, N, 2]`, targets `[n, N, 1]`, one time
/// unit per step.
#[derive(Clone, Copy, Debug, Default)]
pub struct SineBatcher;

impl<B: Backend> Batcher<B, SineData, SequenceBatch<B>> for SineBatcher {
    fn batch(&self, items: Vec<SineData>, device: &B::Device) -> SequenceBatch<B> {
        let steps = items.first().map_or(0, SineData::steps);
        assert!(
            items.iter().all(|item| item.steps() == steps),
            "sequences of one batch must have the same length"
        );
        let n = items.len();
        let inputs = items.iter().flat_map(|item| item.inputs.iter().copied());
        let targets = items.iter().flat_map(|item| item.targets.iter().copied());
        SequenceBatch {
            input: Tensor::from_data(TensorData::new(inputs.collect(), [n, steps, 2]), device),
            timespans: None,
            target: Tensor::from_data(TensorData::new(targets.collect(), [n, steps, 1]), device),
        }
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
