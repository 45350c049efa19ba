//! The example's own tests: the policy's trunks, a training step, and the
//! record-train-save-load-play pipeline on the emulator
//! (`cargo test --features atari --example atari`).

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use ncps::datasets::atari::{
    AtariBatcher, AtariCloningDataset, Breakout, EnvConfig, Expert, OBS_LEN, Sequence,
    observations_chw, record, returns_table,
};

use crate::{model, play, train};

type A = Autodiff<NdArray>;

/// A fresh directory under the system's temporary directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ncps-atari-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn patches_match_a_convolution() {
    // The small trunk's host-side im2col equals Burn's conv2d.
    use burn::nn::conv::Conv2dConfig;
    let device = Default::default();
    let obs: Vec<u8> = (0..2 * OBS_LEN).map(|i| (i * 31 % 255) as u8).collect();
    let x = Tensor::<NdArray, 4>::from_data(
        TensorData::new(observations_chw(&obs), [2, 4, 84, 84]),
        &device,
    );
    let conv = Conv2dConfig::new([4, 3], [8, 8])
        .with_stride([4, 4])
        .with_bias(false)
        .init::<NdArray>(&device);
    let expected = conv.forward(x.clone()); // [2, 3, 20, 20]
    let values = x.into_data().into_vec::<f32>().unwrap();
    let p = Tensor::<NdArray, 2>::from_data(
        TensorData::new(model::patches(&values, 2), [2 * 400, 256]),
        &device,
    );
    let kernel = conv.weight.val().reshape([3, 256]).transpose();
    let got = p
        .matmul(kernel)
        .reshape([2, 20, 20, 3])
        .permute([0, 3, 1, 2]);
    got.into_data()
        .assert_approx_eq::<f32>(&expected.into_data(), burn::tensor::Tolerance::default());
}

fn expert_sequences(steps: usize) -> Vec<Sequence> {
    let mut env = Breakout::new(EnvConfig::default()).unwrap();
    let mut expert = Expert::new();
    env.reset();
    let mut obs = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..steps {
        obs.extend_from_slice(env.observation());
        let a = expert.act(&env.ram());
        actions.push(a as u8);
        env.step(a);
    }
    let t = steps / 2;
    vec![
        Sequence {
            obs: obs[..t * OBS_LEN].to_vec(),
            actions: actions[..t].to_vec(),
        },
        Sequence {
            obs: obs[t * OBS_LEN..].to_vec(),
            actions: actions[t..].to_vec(),
        },
    ]
}

#[test]
fn training_steps_lower_the_loss() {
    let device = Default::default();
    <A as burn::tensor::backend::Backend>::seed(&device, 3);
    let batch = Batcher::<A, _, _>::batch(&AtariBatcher, expert_sequences(16), &device);
    let mut model = model::ConvCfC::<A>::new(model::Trunk::Small, 4, &device);
    let loss = CrossEntropyLossConfig::new().init(&device);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..8 {
        let (l, _) = train::loss_and_accuracy(&model, batch.clone(), &loss);
        losses.push(l.clone().into_scalar());
        let grads = GradientsParams::from_grads(l.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    assert!(
        losses[7] < 0.7 * losses[0],
        "losses did not fall: {losses:?}"
    );
}

#[test]
fn record_train_save_load_play() {
    let root = scratch("pipeline");
    let config = EnvConfig {
        max_steps: 40,
        ..EnvConfig::default()
    };
    // Two short expert games: one for training, one for validation.
    let recorded = record(&root, 2, 1, 8, 0.25, &config).unwrap();
    assert_eq!((recorded.train, recorded.val), (5, 5));
    assert_eq!(recorded.scores.len(), 2);
    let settings = train::TrainSettings {
        trunk: model::Trunk::Small,
        epochs: 2,
        batch_size: 2,
        lr: 1e-3,
        seed: 1,
        sequences_per_epoch: Some(4),
        time_budget: None,
    };
    let device = Default::default();
    let out = root.join("policy");
    let train::Trained {
        model: trained,
        logs,
        ..
    } = train::train::<A>(&root, &out, &settings, &device).unwrap();
    assert_eq!(logs.len(), 2);
    assert!(logs.iter().all(|l| l.valid_loss.is_finite()));
    assert!(
        logs.iter()
            .all(|l| (0.0..=1.0).contains(&train::accuracy(l)))
    );
    assert!(out.join("best.mpk").exists() && out.join("metrics.json").exists());
    train::plot(&root, &logs).unwrap();
    assert!(root.join("loss.png").exists());
    // The checkpoint loads back and chooses the same actions.
    let trained = trained.valid();
    let loaded = train::load::<NdArray>(&out, &device).unwrap();
    let dataset = AtariCloningDataset::new(&root, "breakout", "val").unwrap();
    let batch =
        Batcher::<NdArray, _, _>::batch(&AtariBatcher, vec![dataset.get(0).unwrap()], &device);
    let (a, _) = trained.forward(batch.obs.clone(), None);
    let (b, _) = loaded.forward(batch.obs, None);
    assert_eq!(
        a.clone().argmax(2).into_data().to_vec::<i64>().unwrap(),
        b.clone().argmax(2).into_data().to_vec::<i64>().unwrap()
    );
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), burn::tensor::Tolerance::default());
    // A short closed-loop run: three games at once, cut off at 40 steps,
    // with the frames of the first saved.
    let frames = root.join("frames");
    let returns = play::play_policy(&loaded, 3, &config, Some(&frames), &device).unwrap();
    assert_eq!(returns.scores.len(), 3);
    assert_eq!(returns.steps, 3 * 40);
    assert!(frames.join("frame_00040.png").exists() && frames.join("game.gif").exists());
    let table = returns_table(&[&returns]);
    assert!(table.contains("| CfC policy | 3 |"));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn upstream_conv_block() {
    // `--model upstream`: upstream's ConvBlock, 1 441 344 trainable
    // parameters in torch (conv 4->64, 64->128 + bn, 128->128, 128->256 +
    // bn, 5x5 kernels); Burn also counts the batch norms' running means and
    // variances (2 * (128 + 256)).
    let device = Default::default();
    let model = model::ConvCfC::<NdArray>::new(model::Trunk::Upstream, 4, &device);
    use burn::module::Module;
    assert_eq!(model.trunk.num_params(), 1_441_344 + 768);
    let obs = Tensor::<NdArray, 5>::ones([1, 2, 4, 84, 84], &device);
    let (logits, state) = model.forward(obs, None);
    assert_eq!(logits.dims(), [1, 2, 4]);
    assert_eq!(state.hidden.dims(), [1, 64]);
}
