//! The Walker2d task (`ncps::datasets::walker2d`) on four real rollouts
//! (tests/fixtures/walker2d): files, split, irregular sampling, windows,
//! batches, errors, and a short training run with the shared loop.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use common::{AD, B, device, scratch, walker2d_fixtures};
use ncps::cells::CfCCellOptions;
use ncps::datasets::walker2d::{
    FEATURES, Split, Walker2d, Walker2dBatcher, Walker2dConfig, Walker2dError, Walker2dModel,
};
use ncps::rnn::{CfCConfig, Units};
use ncps::train::{SequenceMse, TrainConfig, Trainer, evaluate};
use ndarray::Array2;

/// A rollout's rows as f32, `[T][17]`.
fn rows(name: &str) -> Vec<Vec<f32>> {
    let (dir, _) = walker2d_fixtures();
    let array: Array2<f64> = ndarray_npy::read_npy(dir.join(name)).unwrap();
    array
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| v as f32).collect())
        .collect()
}

/// Windows of a file with `n` kept steps: `len(range(0, n - 64, 16))`.
fn windows(n: usize) -> usize {
    (0..n.saturating_sub(64)).step_by(16).count()
}

fn load(keep: f64, seed: u64) -> Walker2d {
    let (dir, split) = walker2d_fixtures();
    Walker2dConfig::new()
        .with_split(split)
        .with_keep_probability(keep)
        .with_seed(seed)
        .load(dir)
        .unwrap()
}

#[test]
fn every_step_kept_gives_upstreams_windows_of_the_raw_rows() {
    let data = load(1.0, 0);
    let lengths = |names: &[&str]| -> Vec<usize> { names.iter().map(|n| rows(n).len()).collect() };
    let train = lengths(&["rollout_012.npy", "rollout_144.npy"]);
    assert_eq!(train, [135, 150]);
    // T rows give T - 1 (input, next state) steps.
    assert_eq!(data.train.steps(), 134 + 149);
    assert_eq!(data.train.len(), windows(134) + windows(149));
    assert_eq!(data.train.len(), 5 + 6);
    assert_eq!(data.valid.len(), windows(135));
    assert_eq!(data.test.len(), windows(130));
    // Window 1 starts 16 steps in; targets are the next rows.
    let file = rows("rollout_012.npy");
    let window = data.train.get(1).unwrap();
    for k in [0, 17, 63] {
        assert_eq!(
            &window.x[k * FEATURES..(k + 1) * FEATURES],
            &file[16 + k][..]
        );
        assert_eq!(
            &window.y[k * FEATURES..(k + 1) * FEATURES],
            &file[17 + k][..]
        );
    }
    assert!(window.elapsed.iter().all(|&t| t == 1.0));
    // The second file's windows follow the first's.
    let second = data.train.get(5).unwrap();
    assert_eq!(&second.x[..FEATURES], &rows("rollout_144.npy")[0][..]);
    assert!(data.train.get(11).is_none());
}

#[test]
fn irregular_sampling_keeps_nine_steps_in_ten_and_counts_the_gaps() {
    let data = load(0.9, 891374);
    let file = rows("rollout_012.npy");
    let total = data.train.steps() + data.valid.steps() + data.test.steps();
    let all = 134 + 149 + 135 + 130;
    let kept = total as f64 / all as f64;
    assert!((0.85..0.95).contains(&kept), "kept {kept}");
    assert!(
        [&data.train, &data.valid, &data.test]
            .iter()
            .all(|s| !s.is_empty())
    );
    // In the first window, each input is the file row `elapsed` steps after
    // the previous input's, and each target is the row after its input.
    let window = data.train.get(0).unwrap();
    let index_of = |row: &[f32]| file.iter().position(|r| r[..] == *row).unwrap();
    let mut previous: Option<usize> = None;
    for k in 0..64 {
        let at = index_of(&window.x[k * FEATURES..(k + 1) * FEATURES]);
        assert_eq!(
            &window.y[k * FEATURES..(k + 1) * FEATURES],
            &file[at + 1][..]
        );
        let elapsed = window.elapsed[k];
        assert!(elapsed >= 1.0 && elapsed.fract() == 0.0);
        let expected = match previous {
            Some(p) => at - p,
            // The first kept step counts from the start of the file.
            None => at + 1,
        };
        assert_eq!(elapsed, expected as f32, "step {k}");
        previous = Some(at);
    }
    assert!(
        window.elapsed.iter().any(|&t| t > 1.0),
        "some steps were dropped"
    );
    // Seeded: the same seed draws the same task, another seed another.
    assert_eq!(load(0.9, 891374).train.get(3), data.train.get(3));
    assert_ne!(load(0.9, 7).train.get(0), data.train.get(0));
    // Windows per file follow the kept counts.
    let kept_steps = data.valid.steps();
    assert_eq!(data.valid.len(), windows(kept_steps));
}

#[test]
fn upstreams_split_is_embedded() {
    let split = Split::upstream();
    assert_eq!(
        (split.train.len(), split.valid.len(), split.test.len()),
        (300, 40, 60)
    );
    let all: BTreeSet<&String> = split
        .train
        .iter()
        .chain(&split.valid)
        .chain(&split.test)
        .collect();
    let expected: BTreeSet<String> = (0..400).map(|i| format!("rollout_{i:03}.npy")).collect();
    assert_eq!(all.len(), 400, "the three lists are disjoint");
    assert!(all.into_iter().all(|name| expected.contains(name)));
    // Upstream's order, as its shuffle left it.
    assert_eq!(split.test[0], "rollout_263.npy");
}

#[test]
fn batches_are_sequences_with_their_elapsed_times() {
    let data = load(0.9, 1);
    let items = vec![data.train.get(0).unwrap(), data.train.get(2).unwrap()];
    let batch = Batcher::<B, _, _>::batch(&Walker2dBatcher, items.clone(), &device());
    assert_eq!(batch.input.dims(), [2, 64, FEATURES]);
    assert_eq!(batch.target.dims(), [2, 64, FEATURES]);
    let timespans = batch.timespans.unwrap();
    assert_eq!(timespans.dims(), [2, 64]);
    let values = common::values(timespans);
    assert_eq!(&values[64..], &items[1].elapsed[..]);
    assert_eq!(
        common::values(batch.input)[..FEATURES],
        items[0].x[..FEATURES]
    );
}

fn write_npy<A: ndarray_npy::WritableElement>(path: &Path, array: &ndarray::ArrayD<A>) {
    ndarray_npy::write_npy(path, array).unwrap();
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let (_, split) = walker2d_fixtures();
    let missing = Walker2d::load("/nonexistent/walker").unwrap_err();
    assert!(matches!(missing, Walker2dError::MissingDirectory(_)));
    assert!(missing.to_string().contains("walker.zip"), "{missing}");

    let dir = scratch("walker2d-bad");
    let config = |name: &str| {
        Walker2dConfig::new().with_split(Split {
            train: vec![name.into()],
            valid: vec![],
            test: vec![],
        })
    };
    let err = config("rollout_000.npy").load(&dir).unwrap_err();
    assert!(
        matches!(&err, Walker2dError::Io { path, .. } if path.ends_with("rollout_000.npy")),
        "{err}"
    );
    write_npy(
        &dir.join("ints.npy"),
        &ndarray::ArrayD::<i32>::zeros(vec![10, 17]),
    );
    let err = config("ints.npy").load(&dir).unwrap_err();
    assert!(matches!(err, Walker2dError::NotFloat { .. }), "{err}");
    assert!(err.to_string().contains("ints.npy"));
    write_npy(
        &dir.join("narrow.npy"),
        &ndarray::ArrayD::<f64>::zeros(vec![10, 3]),
    );
    let err = config("narrow.npy").load(&dir).unwrap_err();
    assert!(
        matches!(&err, Walker2dError::Shape { shape, .. } if shape == &[10, 3]),
        "{err}"
    );
    write_npy(
        &dir.join("flat.npy"),
        &ndarray::ArrayD::<f64>::zeros(vec![17]),
    );
    assert!(matches!(
        config("flat.npy").load(&dir).unwrap_err(),
        Walker2dError::Shape { .. }
    ));
    std::fs::write(dir.join("text.npy"), "not a numpy file").unwrap();
    assert!(matches!(
        config("text.npy").load(&dir).unwrap_err(),
        Walker2dError::NotFloat { .. }
    ));
    // float32 files load too.
    write_npy(
        &dir.join("single.npy"),
        &ndarray::ArrayD::<f32>::ones(vec![90, 17]),
    );
    let data = config("single.npy").load(&dir).unwrap();
    assert_eq!(data.train.get(0).unwrap().x[0], 1.0);
    assert!(matches!(
        Walker2dConfig::new()
            .with_split(split)
            .with_keep_probability(0.0)
            .load(walker2d_fixtures().0)
            .unwrap_err(),
        Walker2dError::InvalidSetting(_)
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_short_run_lowers_the_validation_loss_and_restores_the_best_weights() {
    let data = load(0.9, 891374);
    let device = device();
    <AD as Backend>::seed(&device, 3);
    let rnn = CfCConfig::new(FEATURES, Units::from(16))
        .with_cell(CfCCellOptions::new().with_backbone_units(32))
        .init::<AD>(&device)
        .unwrap();
    let model = Walker2dModel::new(rnn, &device);
    let dir = scratch("walker2d-run");
    let config = TrainConfig::new(4, 4).with_learning_rate(0.02).with_seed(5);
    let trained = Trainer::new(config, device)
        .with_dir(&dir)
        .fit(
            model,
            &SequenceMse::default(),
            &data.train,
            &data.valid,
            &Walker2dBatcher,
            &mut (),
        )
        .unwrap();
    let log = &trained.log;
    assert_eq!(log.len(), 4);
    assert!(
        log[3].valid_loss < 0.9 * log[0].valid_loss,
        "validation MSE per epoch: {:?}",
        log.iter().map(|l| l.valid_loss).collect::<Vec<_>>()
    );
    // The returned model holds the best epoch's weights: its validation
    // loss is that epoch's, exactly.
    let best = trained.best_epoch.unwrap();
    let objective = SequenceMse::default();
    type M = Walker2dModel<AD, ncps::rnn::AnyCfCCell<AD>>;
    let figures = |model: &<M as AutodiffModule<AD>>::InnerModule| {
        evaluate::<AD, M, _, _, _>(model, &objective, &data.valid, &Walker2dBatcher, 4, &device)
    };
    assert_eq!(
        figures(&trained.model.valid()).loss,
        log[best - 1].valid_loss
    );
    assert!(log[best - 1].best);
    // best.mpk holds the same weights for Burn's file recorder.
    let fresh: Walker2dModel<B, ncps::rnn::AnyCfCCell<B>> = Walker2dModel::new(
        CfCConfig::new(FEATURES, Units::from(16))
            .with_cell(CfCCellOptions::new().with_backbone_units(32))
            .init::<B>(&device)
            .unwrap(),
        &device,
    );
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let loaded =
        burn::module::Module::load_file(fresh, dir.join("best"), &recorder, &device).unwrap();
    assert_eq!(figures(&loaded).loss, log[best - 1].valid_loss);
    std::fs::remove_dir_all(dir).unwrap();
}
