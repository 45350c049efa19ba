//! The settings of a training run.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How gradients are clipped before the optimizer step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Clipping {
    /// No clipping (default).
    #[default]
    None,
    /// All gradients scaled together so that their global L2 norm is at most
    /// this (PyTorch's `clip_grad_norm_`, upstream ncps' training scripts;
    /// see [`clip_grad_norm`](super::clip_grad_norm)).
    GlobalNorm(f64),
    /// Each parameter's gradient scaled so that its own L2 norm is at most
    /// this (Keras' `clipnorm`, the CfC paper's TensorFlow runs; Burn's
    /// `GradientClipping::Norm`).
    PerTensorNorm(f64),
}

/// Settings of a [`Trainer`](super::Trainer) run. Defaults are PyTorch's
/// Adam (`lr = 1e-3`, betas 0.9 and 0.999, `eps = 1e-8`), a constant
/// learning rate, no weight decay and no clipping.
///
/// The learning rate of epoch `e` (from 1) is `learning_rate · lr_decay^(e -
/// 1)` (PyTorch's `ExponentialLR` stepped once per epoch); with
/// `smooth_decay` it decays at every step instead, `learning_rate ·
/// lr_decay^(s / batches_per_epoch)` after `s` steps (Keras'
/// `ExponentialDecay(lr, batches_per_epoch, lr_decay)`).
///
/// ```
/// use ncps::train::{Clipping, TrainConfig};
///
/// // The CfC paper's Walker2d recipe for the default CfC.
/// let config = TrainConfig::new(50, 256)
///     .with_learning_rate(0.02)
///     .with_lr_decay(0.95)
///     .with_clipping(Clipping::GlobalNorm(1.0));
/// assert!((config.learning_rate_at(3, 0, 38) - 0.02 * 0.95 * 0.95).abs() < 1e-12);
/// ```
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Epochs (passes over the training set).
    pub epochs: usize,
    /// Items per training batch (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Items per validation batch; the training batch size when `None`.
    #[config(default = "None")]
    pub valid_batch_size: Option<usize>,
    /// Adam's learning rate at the first step. Default: 1e-3.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Factor applied to the learning rate per epoch. Default: 1 (constant).
    #[config(default = 1.0)]
    pub lr_decay: f64,
    /// Decay at every step (Keras) instead of once per epoch (PyTorch).
    /// Default: false.
    #[config(default = false)]
    pub smooth_decay: bool,
    /// Adam's `eps`. Default: 1e-8 (PyTorch's; Burn's own default is 1e-5).
    #[config(default = 1e-8)]
    pub adam_epsilon: f64,
    /// PyTorch Adam's `weight_decay`: `weight_decay · param` added to every
    /// parameter's gradient after clipping (coupled, not AdamW's). For the
    /// Keras-style L2 penalty in the loss, see
    /// [`linear_kernels_l2`](super::linear_kernels_l2). Default: 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Gradient clipping. Default: [`Clipping::None`].
    #[config(default = "Clipping::None")]
    pub clipping: Clipping,
    /// Seed of the run: the data order of every epoch and the backend's
    /// random draws (dropout) derive from it and the epoch number, so that a
    /// resumed run draws what an uninterrupted one does. Default: 0.
    #[config(default = 0)]
    pub seed: u64,
    /// Train on at most this many items per epoch, a new random subset every
    /// epoch; all when `None` (default).
    #[config(default = "None")]
    pub items_per_epoch: Option<usize>,
    /// Batches prepared ahead on a background thread (reading and batching
    /// items while the model trains); 0 (default) prepares each batch when
    /// it is needed. Memory holds at most this many batches beyond the one
    /// training.
    #[config(default = 0)]
    pub prefetch: usize,
    /// Stop before an epoch that, judged by the previous epoch's duration,
    /// would end past this many seconds of training. Default: none.
    #[config(default = "None")]
    pub time_budget_s: Option<f64>,
}

impl TrainConfig {
    /// The learning rate of step `step` (from 0) of epoch `epoch` (from 1),
    /// with `batches` steps per epoch.
    pub fn learning_rate_at(&self, epoch: usize, step: usize, batches: usize) -> f64 {
        let epochs_done = if self.smooth_decay {
            (epoch - 1) as f64 + step as f64 / batches.max(1) as f64
        } else {
            (epoch - 1) as f64
        };
        self.learning_rate * self.lr_decay.powf(epochs_done)
    }

    /// Checks the values, naming the first invalid one.
    pub(crate) fn check(&self) -> Result<(), String> {
        let positive = |name: &str, value: f64| {
            if value > 0.0 && value.is_finite() {
                Ok(())
            } else {
                Err(format!("{name} = {value} must be finite and > 0"))
            }
        };
        if self.batch_size == 0 {
            return Err("batch_size = 0 must be at least 1".into());
        }
        if self.valid_batch_size == Some(0) {
            return Err("valid_batch_size = 0 must be at least 1".into());
        }
        if self.items_per_epoch == Some(0) {
            return Err("items_per_epoch = 0 must be at least 1".into());
        }
        positive("learning_rate", self.learning_rate)?;
        positive("lr_decay", self.lr_decay)?;
        positive("adam_epsilon", self.adam_epsilon)?;
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!(
                "weight_decay = {} must be finite and >= 0",
                self.weight_decay
            ));
        }
        match self.clipping {
            Clipping::GlobalNorm(norm) => positive("clipping norm", norm)?,
            Clipping::PerTensorNorm(norm) => positive("clipping norm", norm)?,
            Clipping::None => {}
        }
        Ok(())
    }
}
