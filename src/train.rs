//! Training helpers that Burn 0.21 lacks in the form upstream's training
//! setups use.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
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
