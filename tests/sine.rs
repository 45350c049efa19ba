//! The sinusoid example's training path: data, Adam, gradient clipping.

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use ncps::datasets::sine::{SineData, SineTrainer};
use ncps::rnn::{CfCConfig, LTCConfig, Units};
use ncps::train::clip_grad_norm;
use ncps::wirings::AutoNCP;

type B = Autodiff<NdArray<f32>>;

#[test]
fn the_sinusoid_training_path_lowers_the_loss() {
    let device = Default::default();
    B::seed(&device, 1);
    let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap()))
        .init::<B>(&device)
        .unwrap();
    let mut trainer = SineTrainer::new(model, SineData::new(48), 0.01, &device);
    let before = trainer.mse();
    let losses: Vec<f32> = (0..30).map(|_| trainer.epoch()).collect();
    assert!(
        (losses[0] - before).abs() < 1e-5,
        "epoch() reports the loss before its step"
    );
    assert!(
        trainer.mse() < 0.8 * before,
        "LTC: {before} -> {}",
        trainer.mse()
    );
    assert_eq!(trainer.predict().len(), 48);

    let model = CfCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap()))
        .init::<B>(&device)
        .unwrap();
    let mut trainer = SineTrainer::new(model, SineData::new(48), 0.01, &device);
    let before = trainer.mse();
    for _ in 0..30 {
        trainer.epoch();
    }
    assert!(
        trainer.mse() < 0.8 * before,
        "CfC: {before} -> {}",
        trainer.mse()
    );
}

/// The global L2 norm of a model's gradients.
fn global_norm<M: AutodiffModule<B>>(model: &M, grads: &GradientsParams) -> f64 {
    struct Sum<'a>(&'a GradientsParams, f64);
    impl ModuleVisitor<B> for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.0.get::<NdArray<f32>, D>(param.id) {
                self.1 += f64::from(g.square().sum().into_scalar());
            }
        }
    }
    let mut sum = Sum(grads, 0.0);
    model.visit(&mut sum);
    sum.1.sqrt()
}

#[test]
fn gradient_clipping_bounds_the_global_norm_and_keeps_directions() {
    let device = Default::default();
    let model = CfCConfig::new(2, Units::from(8))
        .with_proj_size(Some(1))
        .init::<B>(&device)
        .unwrap();
    let data = SineData::new(48);
    let (output, _) = model.forward(data.input_tensor(&device), None);
    let loss = (output - data.target_tensor(&device)).square().sum() * 100.0;
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    let before = global_norm(&model, &grads);
    assert!(
        before > 1.0,
        "the test needs a large gradient, got {before}"
    );
    let reported = clip_grad_norm(&model, &mut grads, 1.0);
    assert!((reported - before).abs() < 1e-6 * before.max(1.0));
    let after = global_norm(&model, &grads);
    assert!((after - 1.0).abs() < 1e-4, "clipped norm {after}");
    // Small gradients are left alone.
    let mut small = GradientsParams::from_grads(
        ((model.forward(data.input_tensor(&device), None).0) * 1e-6)
            .sum()
            .backward(),
        &model,
    );
    let norm = global_norm(&model, &small);
    clip_grad_norm(&model, &mut small, 1.0);
    assert!((global_norm(&model, &small) - norm).abs() < 1e-12);
    assert!(model.num_params() > 0);
}
