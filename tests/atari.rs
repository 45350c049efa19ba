//! Atari behavior cloning on the real emulator (feature `atari`):
//! preprocessing, the expert, upstream's npz layout, training, closed-loop
//! play and checkpoints. `cargo test --features atari --test atari`.

#[path = "../examples/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../examples/atari/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../examples/atari/play.rs"]
mod play;
#[allow(dead_code)]
#[path = "../examples/atari/record.rs"]
mod record;
#[allow(dead_code)]
#[path = "../examples/atari/train.rs"]
mod train;

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use ncps::datasets::atari::{
    ACTIONS, AtariBatcher, AtariCloningDataset, Breakout, EnvConfig, Expert, FRAME, OBS_LEN, STACK,
    Sequence, observations_chw, read_sequence, sequence_path, write_sequence,
};
use ndarray::{Array1, Array4};
use ndarray_npy::{NpzReader, NpzWriter};

type A = Autodiff<NdArray>;

/// A fresh directory under the target dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ncps-atari-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn channel(obs: &[u8], k: usize) -> Vec<u8> {
    obs.iter().skip(k).step_by(STACK).copied().collect()
}

#[test]
fn preprocessing_shapes_and_frame_stack() {
    let mut env = Breakout::new(EnvConfig::default()).unwrap();
    let first = env.reset().to_vec();
    assert_eq!(first.len(), FRAME * FRAME * STACK);
    // After a reset the stack holds the first frame 4 times.
    for k in 1..STACK {
        assert_eq!(channel(&first, k), channel(&first, 0));
    }
    // The frame shows something (walls, bricks), not a blank screen.
    let frame = channel(&first, 3);
    assert!(frame.iter().filter(|&&v| v > 50).count() > 500);
    assert_eq!(env.lives(), 5);
    assert_eq!(ACTIONS.len(), 4);
    // Each step shifts the stack by one frame, the newest last.
    let mut previous = first;
    for action in [2, 2, 3, 0, 3, 2] {
        let step = env.step(action);
        assert!(!step.done);
        let obs = env.observation().to_vec();
        for k in 0..STACK - 1 {
            assert_eq!(channel(&obs, k), channel(&previous, k + 1));
        }
        previous = obs;
    }
    // The paddle moved: the newest frame differs from the oldest.
    assert_ne!(channel(&previous, 3), channel(&previous, 0));
    assert_eq!(env.steps(), 6);
}

#[test]
fn expert_beats_random() {
    let config = EnvConfig {
        max_steps: 1500,
        ..EnvConfig::default()
    };
    let expert = play::play_baseline(true, 2, &config).unwrap();
    let random = play::play_baseline(false, 2, &config).unwrap();
    assert!(
        expert.mean() >= 5.0 * random.mean().max(1.0),
        "expert {:?} vs random {:?}",
        expert.scores,
        random.scores
    );
    // The landing prediction mirrors off the side walls.
    let mut e = Expert::new();
    let mut ram = [0u8; 128];
    ram[57] = 5;
    ram[99] = 190;
    ram[101] = 100;
    e.act(&ram);
    ram[99] = 196;
    ram[101] = 106;
    assert_eq!(
        Expert::new().landing((196.0, 106.0)),
        None,
        "needs a previous step"
    );
    e.act(&ram);
    // Moving right and down at (3, 3) per step from (199, 109): crosses
    // y = 180 at x = 270, bounced off the right wall (201) back to 132.
    assert_eq!(e.landing((199.0, 109.0)).map(f32::round), Some(132.0));
}

#[test]
fn npz_round_trip_in_upstream_layout() {
    let root = scratch("npz");
    let t = 5;
    let sequence = Sequence {
        obs: (0..t * OBS_LEN).map(|i| (i * 7 % 251) as u8).collect(),
        actions: vec![0, 2, 3, 3, 1],
    };
    let path = sequence_path(&root, "breakout", "train", 0);
    assert!(path.ends_with("data_atari_seq/breakout/train_0.npz"));
    write_sequence(&path, &sequence).unwrap();
    // The file holds what upstream's loader reads: `obs` uint8 (T, 84, 84,
    // 4) and `actions` int64 (T,).
    let mut npz = NpzReader::new(BufReader::new(File::open(&path).unwrap())).unwrap();
    let mut names = npz.names().unwrap();
    names.sort();
    assert_eq!(names, ["actions", "obs"]);
    let obs: Array4<u8> = npz.by_name("obs").unwrap();
    assert_eq!(obs.shape(), [t, 84, 84, 4]);
    assert_eq!(
        obs[[1, 2, 3, 1]],
        sequence.obs[OBS_LEN + (2 * 84 + 3) * 4 + 1]
    );
    let actions: Array1<i64> = npz.by_name("actions").unwrap();
    assert_eq!(actions.to_vec(), [0, 2, 3, 3, 1]);
    // Another file with int32 actions, as other writers may store them.
    let other = sequence_path(&root, "breakout", "train", 1);
    let mut writer = NpzWriter::new(File::create(&other).unwrap());
    writer
        .add_array(
            "obs",
            &Array4::from_shape_vec((2, 84, 84, 4), vec![9u8; 2 * OBS_LEN]).unwrap(),
        )
        .unwrap();
    writer
        .add_array("actions", &Array1::from(vec![3i32, 2]))
        .unwrap();
    writer.finish().unwrap();
    assert_eq!(read_sequence(&other).unwrap().actions, [3, 2]);
    // The dataset lists the split in order and reads the files back.
    let dataset = AtariCloningDataset::new(&root, "breakout", "train").unwrap();
    assert_eq!(dataset.len(), 2);
    assert_eq!(dataset.get(0).unwrap(), sequence);
    assert!(AtariCloningDataset::new(&root, "breakout", "val").is_err());
    // Batches are channels first in [0, 1].
    let batch = Batcher::<NdArray, _, _>::batch(
        &AtariBatcher,
        vec![sequence.clone(), sequence.clone()],
        &Default::default(),
    );
    assert_eq!(batch.obs.dims(), [2, t, 4, 84, 84]);
    let value = batch
        .obs
        .clone()
        .slice([0..1, 1..2, 1..2, 2..3, 3..4])
        .into_scalar();
    assert_eq!(
        value,
        sequence.obs[OBS_LEN + (2 * 84 + 3) * 4 + 1] as f32 / 255.0
    );
    assert_eq!(batch.actions.dims(), [2, t]);
    std::fs::remove_dir_all(root).unwrap();
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
    let recorded = record::record(&root, 2, 1, 8, 0.25, &config).unwrap();
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
    assert!(logs.iter().all(|l| l.val_loss.is_finite()));
    assert!(out.join("model.mpk").exists() && out.join("model-epoch2.mpk").exists());
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
    let table = play::table(&[&returns]);
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
