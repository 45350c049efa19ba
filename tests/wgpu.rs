//! The GPU code path: the same model on Burn's wgpu backend computes what it
//! computes on ndarray, and trains. Runs with `--features wgpu` (on a real
//! GPU, or on Mesa's lavapipe software Vulkan device in CI).
#![cfg(feature = "wgpu")]

use burn::backend::{Autodiff, NdArray, Wgpu};
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::{Device, TensorData};
use ncps::cells::RecurrentCell;
use ncps::datasets::sine::{SineBatcher, SineData};
use ncps::import::{LoadStateDict, StateDict, UpstreamParams};
use ncps::rnn::{CfCConfig, LTCConfig, Rnn, RnnState, Units};
use ncps::train::{Clipping, SequenceMse, TrainConfig, Trainer};
use ncps::wirings::AutoNCP;

type Cpu = NdArray<f32>;
type Gpu = Wgpu;

/// Runs `cpu`, and the same weights on the GPU (moved with their upstream
/// names); compares outputs and final states.
fn same_on_gpu<C, G>(cpu: Rnn<Cpu, C>, gpu: Rnn<Gpu, G>)
where
    C: RecurrentCell<Cpu> + UpstreamParams<Cpu> + Clone,
    G: RecurrentCell<Gpu> + UpstreamParams<Gpu>,
    Rnn<Cpu, C>: Module<Cpu>,
    Rnn<Gpu, G>: Module<Gpu>,
{
    let gpu = gpu.load_state_dict(&StateDict::from_model(&cpu)).unwrap();
    let cpu_device: Device<Cpu> = Default::default();
    let gpu_device: Device<Gpu> = Default::default();
    let input: Vec<f32> = (0..2 * 6 * 3)
        .map(|i| ((i * 37 % 11) as f32 / 5.0) - 1.0)
        .collect();
    let timespans: Vec<f32> = (0..12).map(|i| 0.5 + (i % 3) as f32 * 0.25).collect();
    let (a, sa) = cpu.forward_timed(
        Tensor::from_data(TensorData::new(input.clone(), [2, 6, 3]), &cpu_device),
        Tensor::<Cpu, 2>::from_data(TensorData::new(timespans.clone(), [2, 6]), &cpu_device),
        None,
    );
    let (b, sb): (Tensor<Gpu, 3>, RnnState<Gpu, 2>) = gpu.forward_timed(
        Tensor::from_data(TensorData::new(input, [2, 6, 3]), &gpu_device),
        Tensor::<Gpu, 2>::from_data(TensorData::new(timespans, [2, 6]), &gpu_device),
        None,
    );
    let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-4);
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), tolerance);
    sa.hidden
        .into_data()
        .assert_approx_eq::<f32>(&sb.hidden.into_data(), tolerance);
}

#[test]
fn ltc_on_wgpu_matches_ndarray() {
    let config =
        LTCConfig::new(3, Units::from(AutoNCP::new(12, 2).unwrap())).with_mixed_memory(true);
    same_on_gpu(
        config.init::<Cpu>(&Default::default()).unwrap(),
        config.init::<Gpu>(&Default::default()).unwrap(),
    );
}

#[test]
fn cfc_on_wgpu_matches_ndarray() {
    let dense = CfCConfig::new(3, Units::from(16)).with_proj_size(Some(2));
    same_on_gpu(
        dense.init::<Cpu>(&Default::default()).unwrap(),
        dense.init::<Gpu>(&Default::default()).unwrap(),
    );
    let wired = CfCConfig::new(3, Units::from(AutoNCP::new(12, 2).unwrap()));
    same_on_gpu(
        wired.init::<Cpu>(&Default::default()).unwrap(),
        wired.init::<Gpu>(&Default::default()).unwrap(),
    );
}

#[test]
fn ltc_trains_on_wgpu() {
    type B = Autodiff<Gpu>;
    let device = Default::default();
    let model = LTCConfig::new(2, Units::from(AutoNCP::new(8, 1).unwrap()))
        .init::<B>(&device)
        .unwrap();
    let data = SineData::new(24);
    let config = TrainConfig::new(15, 1)
        .with_learning_rate(0.02)
        .with_clipping(Clipping::GlobalNorm(1.0));
    let trained = Trainer::new(config, device)
        .fit(
            model,
            &SequenceMse::default(),
            &data,
            &data,
            &SineBatcher,
            &mut (),
        )
        .unwrap();
    let (first, last) = (trained.log[0].valid_loss, trained.log[14].valid_loss);
    assert!(last < first, "{first} -> {last}");
}
