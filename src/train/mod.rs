//! Training: the one loop every example uses, and its helpers.
//!
//! - [`Trainer`] (in `trainer.rs`): epochs of Adam over a
//!   `burn::data` [`Dataset`](burn::data::dataset::Dataset) and
//!   [`Batcher`](burn::data::dataloader::batcher::Batcher), an exponential
//!   learning-rate decay, weight decay, gradient clipping, validation each
//!   epoch, the best-validation weights kept, a metrics log, and resume
//!   from the last completed epoch of an interrupted run. What is learned
//!   is an [`Objective`]: the loss of a batch and what validation measures.
//! - [`TrainConfig`] (in `config.rs`): the settings, with their defaults
//!   (PyTorch's Adam, no decay, no clipping).
//! - [`Progress`] (in `progress.rs`): how a run reports what it does; the
//!   library prints nothing unless asked ([`PrintEpochs`] prints one line per
//!   epoch; the examples draw progress bars with their own `Progress`).
//! - [`SequenceMse`] (in `regression.rs`): the mean squared error of a
//!   [`SequenceModel`] on [`SequenceBatch`]es, the objective of the sinusoid
//!   and Walker2d tasks.
//! - [`CrossEntropy`] (in `classification.rs`): a [`SequenceClassifier`]
//!   (an [`Rnn`](crate::rnn::Rnn) or [`Bidirectional`](crate::rnn::Bidirectional)
//!   encoder, each sample's last valid output, a linear readout) on padded
//!   batches with lengths, the objective of the UEA tasks; validation
//!   reports the accuracy.
//! - [`clip_grad_norm`] and [`linear_kernels_l2`]: PyTorch's global-norm
//!   clipping and Keras' L2 kernel penalty, which Burn 0.21 lacks.

mod checkpoint;
mod classification;
mod config;
mod error;
mod progress;
mod regression;
mod trainer;

pub use classification::{CrossEntropy, SequenceClassifier, SequenceEncoder, accuracy};
pub use config::{Clipping, TrainConfig};
pub use error::TrainError;
pub use progress::{EpochLog, PrintEpochs, Progress};
pub use regression::{SequenceBatch, SequenceModel, SequenceMse};
pub use trainer::{Evaluation, Objective, Stepper, Trained, Trainer, evaluate};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// Scales all gradients so that their global L2 norm is at most `max_norm`,
/// as PyTorch's `clip_grad_norm_` (Burn's own clipping works per tensor).
/// Returns the norm before clipping.
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use burn::optim::GradientsParams;
/// use burn::prelude::*;
/// use ncps::rnn::{CfCConfig, Units};
/// use ncps::train::clip_grad_norm;
///
/// type B = Autodiff<NdArray>;
/// let device = Default::default();
/// let model = CfCConfig::new(2, Units::from(4)).init::<B>(&device)?;
/// let (output, _) = model.forward(Tensor::ones([1, 3, 2], &device), None);
/// let mut grads = GradientsParams::from_grads(output.sum().mul_scalar(1e3).backward(), &model);
/// let before = clip_grad_norm(&model, &mut grads, 1.0);
/// assert!(before > 1.0);
/// assert!((clip_grad_norm(&model, &mut grads, 1.0) - 1.0).abs() < 1e-4);
/// # Ok::<(), ncps::ConfigError>(())
/// ```
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        sum: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.sum += grad.square().sum().into_scalar().elem::<f64>();
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads.register(param.id, grad * self.factor);
            }
        }
    }

    let mut norm = SquaredNorm { grads, sum: 0.0 };
    model.visit(&mut norm);
    let total = norm.sum.sqrt();
    let factor = max_norm / (total + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
    total
}

/// The sum of squares of the weight (kernel) of every `Linear` layer in
/// `module`: Keras' `kernel_regularizer=L2(1)`, which the CfC paper's
/// TensorFlow code puts on the cell's `Dense` layers (backbone, `ff1`,
/// `ff2`, `time_a`, `time_b`; not biases, not the readout). Multiply by the
/// penalty and add it to the loss; `None` when `module` has no `Linear`.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use ncps::train::linear_kernels_l2;
///
/// let device = Default::default();
/// let layer = LinearConfig::new(3, 2).init::<NdArray>(&device);
/// let expected = layer.weight.val().square().sum().into_scalar();
/// let l2 = linear_kernels_l2(&layer).unwrap().into_scalar();
/// assert_eq!(l2, expected);
/// ```
pub fn linear_kernels_l2<B: Backend, M: Module<B>>(module: &M) -> Option<Tensor<B, 1>> {
    struct Kernels<B: Backend> {
        /// Whether each field entered is a `Linear`'s `weight`, innermost last.
        stack: Vec<bool>,
        sum: Option<Tensor<B, 1>>,
    }
    impl<B: Backend> ModuleVisitor<B> for Kernels<B> {
        // Burn enters each field with the name of the struct that holds it.
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.stack
                .push(name == "weight" && container_type == "Struct:Linear");
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.stack.last() == Some(&true) {
                let squares = param.val().square().sum();
                self.sum = Some(match self.sum.take() {
                    Some(sum) => sum + squares,
                    None => squares,
                });
            }
        }
    }
    let mut kernels = Kernels {
        stack: Vec::new(),
        sum: None,
    };
    module.visit(&mut kernels);
    kernels.sum
}
