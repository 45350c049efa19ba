//! Atari on the real emulator (feature `atari`): preprocessing, the
//! expert, upstream's npz layout, the dataset and batcher, recording.
//! `cargo test --features atari --test atari`; the example's policy, its
//! training and closed-loop play are tested in the example
//! (`cargo test --features atari --example atari`).

mod common;

use std::fs::File;
use std::io::BufReader;

use burn::backend::NdArray;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use common::scratch;
use ncps::datasets::atari::{
    ACTIONS, AtariBatcher, AtariCloningDataset, Breakout, EnvConfig, Expert, FRAME, OBS_LEN, STACK,
    Sequence, play_baseline, read_sequence, record, returns_table, sequence_path, write_sequence,
};
use ndarray::{Array1, Array4};
use ndarray_npy::{NpzReader, NpzWriter};

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
    let expert = play_baseline(true, 2, &config).unwrap();
    let random = play_baseline(false, 2, &config).unwrap();
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
    let root = scratch("atari-npz");
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
fn recording_writes_whole_windows_of_expert_games() {
    let root = scratch("atari-record");
    let config = EnvConfig {
        max_steps: 40,
        ..EnvConfig::default()
    };
    // Two games cut off at 40 steps: five windows of 8 steps each.
    let recorded = record(&root, 2, 1, 8, 0.25, &config).unwrap();
    assert_eq!((recorded.train, recorded.val), (5, 5));
    assert_eq!(recorded.scores.len(), 2);
    assert_eq!(recorded.steps, 80);
    assert_eq!(recorded.action_counts.iter().sum::<usize>(), 40);
    let train = AtariCloningDataset::new(&root, "breakout", "train").unwrap();
    assert_eq!(train.len(), 5);
    let first = train.get(0).unwrap();
    assert_eq!(first.len(), 8);
    // Each observation's stack shifts by one frame per step.
    let frame = |obs: &[u8], t: usize, k: usize| channel(&obs[t * OBS_LEN..(t + 1) * OBS_LEN], k);
    assert_eq!(frame(&first.obs, 5, 2), frame(&first.obs, 6, 1));
    // Recording again replaces the files.
    record(&root, 1, 0, 8, 0.0, &config).unwrap();
    assert!(AtariCloningDataset::new(&root, "breakout", "val").is_err());
    let table = returns_table(&[&play_baseline(false, 1, &config).unwrap()]);
    assert!(table.contains("| random | 1 |"));
    std::fs::remove_dir_all(root).unwrap();
}
