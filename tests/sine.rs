//! The sinusoid example's training path: data, the shared loop, gradient
//! clipping.

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use ncps::datasets::sine::{SineBatcher, SineData};
use ncps::rnn::{CfCConfig, LTC, LTCConfig, Units};
use ncps::train::{
    Clipping, SequenceModel, SequenceMse, TrainConfig, Trainer, clip_grad_norm, evaluate,
};
use ncps::wirings::AutoNCP;

type B = Autodiff<NdArray<f32>>;

/// The sinusoid example's run: full batch, Adam at 0.01, global-norm
/// clipping at 1.
fn sine_run(epochs: usize) -> Trainer<B> {
    let config = TrainConfig::new(epochs, 1)
        .with_learning_rate(0.01)
        .with_clipping(Clipping::GlobalNorm(1.0));
    Trainer::new(config, Default::default())
}

#[test]
fn the_sinusoid_training_path_lowers_the_loss() {
    let device = Default::default();
    let data = SineData::new(48);
    B::seed(&device, 1);
    let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap()))
        .init::<B>(&device)
        .unwrap();
    let before = evaluate::<B, LTC<B>, _, _, _>(
        &model.valid(),
        &SequenceMse::default(),
        &data,
        &SineBatcher,
        1,
        &device,
    )
    .loss;
    let trained = sine_run(30)
        .fit(
            model,
            &SequenceMse::default(),
            &data,
            &data,
            &SineBatcher,
            &mut (),
        )
        .unwrap();
    assert!(
        (trained.log[0].train_loss - before).abs() < 1e-5,
        "an epoch's training loss is the loss before its step"
    );
    let best = trained.best_epoch.unwrap();
    let after = trained.log[best - 1].valid_loss;
    assert!(after < 0.8 * before, "LTC: {before} -> {after}");
    let prediction = trained
        .model
        .valid()
        .predict(data.input_tensor(&device), None);
    assert_eq!(prediction.dims(), [1, 48, 1]);

    let model = CfCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap()))
        .init::<B>(&device)
        .unwrap();
    let trained = sine_run(30)
        .fit(
            model,
            &SequenceMse::default(),
            &data,
            &data,
            &SineBatcher,
            &mut (),
        )
        .unwrap();
    let (first, last) = (trained.log[0].train_loss, trained.log[29].valid_loss);
    assert!(last < 0.8 * first, "CfC: {first} -> {last}");
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
