//! The shared training loop (`ncps::train::Trainer`): resume after an
//! interruption ends bit-identical to an uninterrupted run, settings are
//! checked on resume, the schedule, clipping and weight decay act as
//! documented, the observer sees every batch, and run files are written.
//!
//! The tests run one at a time (`common::rng_turn`): the backend's random generator,
//! which dropout and initialisation draw from, is one per process.

mod common;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::prelude::*;
use common::{AD, device, rng_turn, scratch, walker2d_fixtures};
use ncps::cells::CfCCellOptions;
use ncps::datasets::walker2d::{
    FEATURES, Walker2d, Walker2dBatcher, Walker2dConfig, Walker2dModel,
};
use ncps::rnn::{AnyCfCCell, CfCConfig, Units};
use ncps::train::{
    Clipping, EpochLog, Progress, SequenceModel, SequenceMse, TrainConfig, TrainError, Trained,
    Trainer, linear_kernels_l2,
};

type Model = Walker2dModel<AD, AnyCfCCell<AD>>;

fn data() -> Walker2d {
    let (dir, split) = walker2d_fixtures();
    Walker2dConfig::new().with_split(split).load(dir).unwrap()
}

/// A small CfC with dropout (so that the backend's generator matters).
fn model(seed: u64) -> Model {
    let device = device();
    <AD as Backend>::seed(&device, seed);
    let rnn = CfCConfig::new(FEATURES, Units::from(12))
        .with_cell(
            CfCCellOptions::new()
                .with_backbone_units(24)
                .with_backbone_layers(2)
                .with_backbone_dropout(0.2),
        )
        .init::<AD>(&device)
        .unwrap();
    Walker2dModel::new(rnn, &device)
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig::new(epochs, 4)
        .with_learning_rate(0.01)
        .with_lr_decay(0.9)
        .with_clipping(Clipping::GlobalNorm(1.0))
        .with_weight_decay(1e-4)
        .with_seed(11)
}

fn fit(
    config: TrainConfig,
    dir: Option<&std::path::Path>,
    progress: &mut dyn Progress,
) -> Result<Trained<Model>, TrainError> {
    let data = data();
    let mut trainer = Trainer::new(config, device());
    if let Some(dir) = dir {
        trainer = trainer.with_dir(dir);
    }
    trainer.fit(
        model(1),
        &SequenceMse { kernel_l2: 1e-3 },
        &data.train,
        &data.valid,
        &Walker2dBatcher,
        progress,
    )
}

/// Every parameter value, in visiting order.
fn weights<M: Module<AD>>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor<AD> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
            self.0.extend(common::values(param.val()));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// Panics at a given batch of a given epoch: a crash in the middle of an
/// epoch.
struct CrashAt {
    epoch: usize,
    batch: usize,
    current: usize,
}

impl Progress for CrashAt {
    fn epoch_start(&mut self, epoch: usize, _: usize) {
        self.current = epoch;
    }
    fn batch_end(&mut self, batch: usize, _: f64) {
        if self.current == self.epoch && batch == self.batch {
            panic!("simulated crash");
        }
    }
}

#[test]
fn a_run_killed_mid_epoch_resumes_and_ends_bit_identical() {
    let _turn = rng_turn();
    let whole = scratch("train-whole");
    let uninterrupted = fit(config(3), Some(&whole), &mut ()).unwrap();

    let dir = scratch("train-resumed");
    let crash = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut crash = CrashAt {
            epoch: 2,
            batch: 2,
            current: 0,
        };
        fit(config(3), Some(&dir), &mut crash)
    }));
    assert!(crash.is_err(), "the run crashed in epoch 2");
    // Epoch 1 was committed; epoch 2 starts over.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("train_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["epoch"], 1);
    struct Starts(Vec<usize>);
    impl Progress for Starts {
        fn start(&mut self, first: usize, _: usize) {
            self.0.push(first);
        }
    }
    let mut starts = Starts(Vec::new());
    let resumed = fit(config(3), Some(&dir), &mut starts).unwrap();
    assert_eq!(starts.0, [2]);

    assert_eq!(weights(&resumed.last), weights(&uninterrupted.last));
    assert_eq!(weights(&resumed.model), weights(&uninterrupted.model));
    assert_eq!(resumed.best_epoch, uninterrupted.best_epoch);
    let losses = |t: &Trained<Model>| -> Vec<(f64, f64)> {
        t.log.iter().map(|l| (l.train_loss, l.valid_loss)).collect()
    };
    assert_eq!(losses(&resumed), losses(&uninterrupted));
    // A finished run only reloads; more epochs continue it.
    let again = fit(config(3), Some(&dir), &mut ()).unwrap();
    assert_eq!(weights(&again.last), weights(&uninterrupted.last));
    let longer = fit(config(4), Some(&dir), &mut ()).unwrap();
    assert_eq!(longer.log.len(), 4);
    // Only the last and the best epoch's records are kept.
    let mut records: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mpk"))
        .collect();
    records.sort();
    let best = longer.best_epoch.unwrap();
    let mut expected = vec![
        "best.mpk".to_string(),
        format!("model-epoch{best}.mpk"),
        "model-epoch4.mpk".to_string(),
        "optimizer-epoch4.mpk".to_string(),
    ];
    expected.sort();
    expected.dedup();
    assert_eq!(records, expected);
    let metrics: Vec<EpochLog> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics, longer.log);
    // The same run in memory, and with batches prepared on a thread, draws
    // the same numbers.
    let in_memory = fit(config(3), None, &mut ()).unwrap();
    assert_eq!(weights(&in_memory.last), weights(&uninterrupted.last));
    let prefetched = fit(config(3).with_prefetch(2), None, &mut ()).unwrap();
    assert_eq!(weights(&prefetched.last), weights(&uninterrupted.last));
    for dir in [whole, dir] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_directory_with_other_settings_or_bad_settings_is_an_error() {
    let _turn = rng_turn();
    let dir = scratch("train-settings");
    fit(config(1), Some(&dir), &mut ()).unwrap();
    let err = fit(config(2).with_learning_rate(0.5), Some(&dir), &mut ()).unwrap_err();
    assert!(
        matches!(&err, TrainError::OtherSettings { setting, .. } if setting == "learning_rate"),
        "{err}"
    );
    assert!(err.to_string().contains("learning_rate"));
    let file = dir.join("train_state.json");
    let err = fit(config(1), Some(&file), &mut ()).unwrap_err();
    assert!(matches!(err, TrainError::Io { .. }), "{err}");
    // A damaged state file is named, not trained over.
    std::fs::write(&file, "{ not json").unwrap();
    let err = fit(config(1), Some(&dir), &mut ()).unwrap_err();
    assert!(
        matches!(&err, TrainError::Corrupt { path, .. } if path == &file),
        "{err}"
    );
    for bad in [
        TrainConfig::new(1, 0),
        config(1).with_learning_rate(-1.0),
        config(1).with_clipping(Clipping::PerTensorNorm(0.0)),
        config(1).with_weight_decay(f64::NAN),
    ] {
        assert!(matches!(
            fit(bad, None, &mut ()).unwrap_err(),
            TrainError::InvalidSetting(_)
        ));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_observer_sees_every_batch_and_the_schedule() {
    let _turn = rng_turn();
    #[derive(Default)]
    struct Record(Vec<String>);
    impl Progress for Record {
        fn start(&mut self, first: usize, epochs: usize) {
            self.0.push(format!("start {first}/{epochs}"));
        }
        fn epoch_start(&mut self, epoch: usize, batches: usize) {
            self.0.push(format!("epoch {epoch} ({batches})"));
        }
        fn batch_end(&mut self, batch: usize, loss: f64) {
            assert!(loss.is_finite());
            self.0.push(format!("batch {batch}"));
        }
        fn epoch_end(&mut self, log: &EpochLog) {
            self.0.push(format!("end {}", log.epoch));
        }
    }
    // 7 items per epoch in batches of 4: 2 batches.
    let config = config(2)
        .with_items_per_epoch(Some(7))
        .with_smooth_decay(true);
    let mut record = Record::default();
    let trained = fit(config.clone(), None, &mut record).unwrap();
    assert_eq!(
        record.0,
        [
            "start 1/2",
            "epoch 1 (2)",
            "batch 1",
            "batch 2",
            "end 1",
            "epoch 2 (2)",
            "batch 1",
            "batch 2",
            "end 2"
        ]
    );
    let rates: Vec<f64> = trained.log.iter().map(|l| l.learning_rate).collect();
    assert_eq!(rates, [0.01, 0.01 * 0.9]);
    // Smooth decay: half an epoch in, half the epoch's factor.
    assert!((config.learning_rate_at(1, 1, 2) - 0.01 * 0.9f64.sqrt()).abs() < 1e-15);
    let stepwise = config.clone().with_smooth_decay(false);
    assert_eq!(stepwise.learning_rate_at(1, 1, 2), 0.01);
    assert!(
        trained
            .log
            .iter()
            .all(|l| l.resident_bytes.is_some_and(|b| b > 0))
    );
    // A time budget of 0 s stops after the first epoch.
    let budget = fit(config.with_time_budget_s(Some(0.0)), None, &mut ()).unwrap();
    assert_eq!(budget.log.len(), 1);
}

/// Every parameter tensor's values, in visiting order.
fn tensors(model: &Model) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor<AD> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
            self.0.push(common::values(param.val()));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// The L2 norm of each tensor's update.
fn update_norms(before: &[Vec<f32>], after: &[Vec<f32>]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| f64::from(q - p).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// `lr / eps` of [`one_step`]: with Adam's eps far above every gradient,
/// the first update is `lr · g / eps` (the bias corrections make m̂ = g),
/// so clipping and weight decay show in it.
const SCALE: f64 = 1e-2;

/// One optimizer step on one Walker2d window: the weights before and after.
fn one_step(clipping: Clipping, weight_decay: f64) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let model = model(4);
    let data = data();
    let config = TrainConfig::new(1, 1)
        .with_items_per_epoch(Some(1))
        .with_learning_rate(1e6 * SCALE)
        .with_adam_epsilon(1e6)
        .with_clipping(clipping)
        .with_weight_decay(weight_decay);
    let trained = Trainer::new(config, device())
        .fit(
            model.clone(),
            &SequenceMse::default(),
            &data.train,
            &data.valid,
            &Walker2dBatcher,
            &mut (),
        )
        .unwrap();
    (tensors(&model), tensors(&trained.last))
}

#[test]
fn clipping_and_weight_decay_act_as_documented() {
    let _turn = rng_turn();
    let global = |norms: &[f64]| norms.iter().map(|n| n * n).sum::<f64>().sqrt();
    let (before, after) = one_step(Clipping::None, 0.0);
    let free = update_norms(&before, &after);
    assert!(
        global(&free) > 3.0 * 0.2 * SCALE,
        "the test needs a large gradient"
    );
    // Global norm: all updates scaled together to norm 0.2.
    let (_, clipped) = one_step(Clipping::GlobalNorm(0.2), 0.0);
    let clipped = update_norms(&before, &clipped);
    assert!(
        (global(&clipped) / SCALE - 0.2).abs() < 1e-3,
        "{}",
        global(&clipped) / SCALE
    );
    let ratio = clipped[0] / free[0];
    for (c, f) in clipped.iter().zip(&free) {
        assert!(
            (c - f * ratio).abs() <= 1e-3 * f * ratio + 1e-12,
            "directions kept"
        );
    }
    // Per tensor: each tensor's update at most 0.1, the small ones unchanged.
    let (_, per_tensor) = one_step(Clipping::PerTensorNorm(0.1), 0.0);
    let per_tensor = update_norms(&before, &per_tensor);
    assert!(free.iter().any(|&f| f > 0.1 * SCALE) && free.iter().any(|&f| f < 0.1 * SCALE));
    for (p, f) in per_tensor.iter().zip(&free) {
        let expected = f.min(0.1 * SCALE);
        assert!(
            (p - expected).abs() <= 1e-3 * expected + 1e-9,
            "{p} vs {expected}"
        );
    }
    // Coupled weight decay adds `wd · param` to every gradient: the update
    // moves by `lr · wd · param / eps` more.
    let (_, decayed) = one_step(Clipping::None, 10.0);
    for ((b, a), d) in before.iter().zip(&after).zip(&decayed) {
        for ((b, a), d) in b.iter().zip(a).zip(d) {
            let shift = f64::from(d - a);
            let expected = -10.0 * SCALE * f64::from(*b);
            assert!(
                (shift - expected).abs() <= 1e-2 * expected.abs() + 2e-7,
                "{shift} vs {expected}"
            );
        }
    }
}

#[test]
fn the_kernel_penalty_covers_the_cells_linear_weights_only() {
    let _turn = rng_turn();
    let device = device();
    let model = model(3);
    let cell = match &model.rnn.cell {
        AnyCfCCell::Dense(cell) => cell,
        AnyCfCCell::Wired(_) => unreachable!("a dense CfC"),
    };
    let squares = |t: Tensor<AD, 2>| common::values(t.square().sum())[0] as f64;
    let mut expected: f64 = cell.backbone.iter().map(|l| squares(l.weight.val())).sum();
    for head in [
        Some(&cell.ff1),
        cell.ff2.as_ref(),
        cell.time_a.as_ref(),
        cell.time_b.as_ref(),
    ] {
        expected += squares(head.unwrap().weight.val());
    }
    let l2 = common::values(model.cell_kernels_l2().unwrap())[0] as f64;
    assert!(
        (l2 - expected).abs() < 1e-4 * expected,
        "{l2} vs {expected}"
    );
    // The readout is not the cell's: the whole model's Linear layers add it.
    let all = common::values(linear_kernels_l2(&model).unwrap())[0] as f64;
    let readout = squares(model.readout.weight.val());
    assert!((all - expected - readout).abs() < 1e-4 * all);
    // The training loss adds kernel_l2 times the penalty; validation does not.
    let data = data();
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::Dataset;
    use ncps::train::Objective;
    let item = data.train.get(0).unwrap();
    let batch = Batcher::<AD, _, _>::batch(&Walker2dBatcher, vec![item.clone()], &device);
    // The same dropout draws in both.
    <AD as Backend>::seed(&device, 9);
    let plain = Objective::<AD, Model>::loss(&SequenceMse::default(), &model, batch.clone());
    <AD as Backend>::seed(&device, 9);
    let penalised = Objective::<AD, Model>::loss(&SequenceMse { kernel_l2: 0.5 }, &model, batch);
    let difference = f64::from(common::values(penalised - plain)[0]);
    assert!(
        (difference - 0.5 * l2).abs() < 1e-3 * l2,
        "{difference} vs {}",
        0.5 * l2
    );
    let inner = Batcher::<common::B, _, _>::batch(&Walker2dBatcher, vec![item], &device);
    let evaluation =
        Objective::<AD, Model>::evaluate(&SequenceMse { kernel_l2: 0.5 }, &model.valid(), inner);
    assert_eq!(evaluation.items, 1);
}
