//! `train`: behavior cloning on the recorded sequences with the shared loop
//! (`ncps::train::Trainer`): cross-entropy weighted by class, Adam,
//! validation loss and accuracy per epoch, checkpoints that an interrupted
//! run resumes from, the best-validation weights kept; learning curves as
//! PNG.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use ncps::datasets::atari::{ACTIONS, AtariBatch, AtariBatcher, AtariCloningDataset};
use ncps::train::{EpochLog, Evaluation, Objective, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};

use crate::common::Bars;
use crate::model::{ConvCfC, Trunk};

/// Everything needed to rebuild the policy a checkpoint holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyConfig {
    pub trunk: Trunk,
    pub actions: usize,
}

/// The training settings.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    pub trunk: Trunk,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    /// Train on at most this many sequences per epoch (a random subset,
    /// new every epoch); all when `None`.
    pub sequences_per_epoch: Option<usize>,
    /// No new epoch starts unless it is expected (from the last epoch's
    /// time) to end within this much training time.
    pub time_budget: Option<Duration>,
}

/// Class weights `n / (k * count)` from the training actions (`k` classes
/// present), clamped to at most 10; a class without examples gets 1 (Burn
/// wants positive weights; with no targets of that class it changes nothing).
pub fn class_weights(counts: &[usize; 4]) -> Vec<f32> {
    let n: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                (n as f32 / (present as f32 * c as f32)).min(10.0)
            }
        })
        .collect()
}

/// Counts the actions of a dataset.
pub fn action_counts(dataset: &AtariCloningDataset) -> [usize; 4] {
    let mut counts = [0; 4];
    for i in 0..dataset.len() {
        for &a in &dataset.get(i).expect("in range").actions {
            counts[a as usize] += 1;
        }
    }
    counts
}

/// Cross-entropy of the flattened logits `[batch * time, 4]`, and the
/// accuracy of their argmax.
pub fn loss_and_accuracy<B: Backend>(
    model: &ConvCfC<B>,
    batch: AtariBatch<B>,
    loss: &CrossEntropyLoss<B>,
) -> (Tensor<B, 1>, f32) {
    let (logits, _) = model.forward(batch.obs, None);
    let [b, t, k] = logits.dims();
    let logits = logits.reshape([b * t, k]);
    let targets = batch.actions.reshape([b * t]);
    let correct = logits
        .clone()
        .argmax(1)
        .reshape([b * t])
        .equal(targets.clone())
        .int()
        .sum()
        .into_scalar()
        .elem::<i64>();
    (
        loss.forward(logits, targets),
        correct as f32 / (b * t) as f32,
    )
}

/// Behavior cloning: cross-entropy weighted by class; validation reports
/// it with the accuracy.
pub struct Cloning {
    pub weights: Vec<f32>,
}

impl Cloning {
    fn loss<B: Backend>(&self, device: &B::Device) -> CrossEntropyLoss<B> {
        CrossEntropyLossConfig::new()
            .with_weights(Some(self.weights.clone()))
            .init(device)
    }
}

impl<B: AutodiffBackend> Objective<B, ConvCfC<B>> for Cloning {
    type TrainBatch = AtariBatch<B>;
    type ValidBatch = AtariBatch<B::InnerBackend>;

    fn loss(&self, model: &ConvCfC<B>, batch: AtariBatch<B>) -> Tensor<B, 1> {
        let loss = self.loss(&batch.obs.device());
        loss_and_accuracy(model, batch, &loss).0
    }

    fn evaluate(
        &self,
        model: &ConvCfC<B::InnerBackend>,
        batch: AtariBatch<B::InnerBackend>,
    ) -> Evaluation {
        let items = batch.actions.dims()[0];
        let loss = self.loss(&batch.obs.device());
        let (loss, accuracy) = loss_and_accuracy(model, batch, &loss);
        Evaluation::new(loss.into_scalar().elem(), items).with_metric("accuracy", accuracy.into())
    }
}

/// What [`train`] returns.
pub struct Trained<B: AutodiffBackend> {
    /// The weights of the best validation loss.
    pub model: ConvCfC<B>,
    pub logs: Vec<EpochLog>,
    /// Training time (validation and checkpoints included).
    pub elapsed: Duration,
}

/// Trains a fresh policy with the shared loop (`ncps::train::Trainer`),
/// checkpointing every epoch to `out` (a run interrupted there resumes);
/// writes `policy.json` and the loop's files (`best.mpk`, `metrics.json`).
pub fn train<B: AutodiffBackend>(
    root: &Path,
    out: &Path,
    settings: &TrainSettings,
    device: &B::Device,
) -> Result<Trained<B>, Box<dyn std::error::Error>> {
    B::seed(device, settings.seed);
    let train_set = AtariCloningDataset::new(root, "breakout", "train")?;
    let val_set = AtariCloningDataset::new(root, "breakout", "val")?;
    let counts = action_counts(&train_set);
    let weights = class_weights(&counts);
    println!(
        "training on {} sequences (validation {}), class weights {}",
        train_set.len(),
        val_set.len(),
        ACTIONS
            .iter()
            .zip(&weights)
            .map(|(a, w)| format!("{a} {w:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let config = PolicyConfig {
        trunk: settings.trunk,
        actions: ACTIONS.len(),
    };
    std::fs::create_dir_all(out)?;
    ncps::fs::write_atomically(
        &out.join("policy.json"),
        &serde_json::to_vec_pretty(&config)?,
    )?;
    let model = ConvCfC::<B>::new(config.trunk, config.actions, device);
    println!(
        "ConvCfC ({:?} trunk): {} parameters",
        settings.trunk,
        model.num_params()
    );
    let train_config = TrainConfig::new(settings.epochs, settings.batch_size)
        .with_learning_rate(settings.lr)
        .with_seed(settings.seed)
        .with_items_per_epoch(settings.sequences_per_epoch)
        .with_prefetch(2)
        .with_time_budget_s(settings.time_budget.map(|b| b.as_secs_f64()));
    let start = Instant::now();
    let trained = Trainer::new(train_config, device.clone())
        .with_dir(out)
        .fit(
            model,
            &Cloning { weights },
            &train_set,
            &val_set,
            &AtariBatcher,
            &mut Bars::batches("atari"),
        )?;
    if trained.log.len() < settings.epochs {
        println!(
            "stopped after {} epochs: another would end past the time budget",
            trained.log.len()
        );
    }
    Ok(Trained {
        model: trained.model,
        logs: trained.log,
        elapsed: start.elapsed(),
    })
}

/// Loads the policy [`train`] kept (`policy.json` and `best.mpk` in `dir`).
pub fn load<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<ConvCfC<B>, Box<dyn std::error::Error>> {
    let config: PolicyConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("policy.json"))?)?;
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let model = ConvCfC::<B>::new(config.trunk, config.actions, device);
    Ok(model.load_file(checkpoint(dir), &recorder, device)?)
}

/// The best weights' path (without extension, as Burn's recorders take it).
pub fn checkpoint(dir: &Path) -> PathBuf {
    dir.join("best")
}

/// The learning curves: losses and validation accuracy per epoch.
pub fn plot(out: &Path, logs: &[EpochLog]) -> Result<(), Box<dyn std::error::Error>> {
    use crate::common::{BLUE_, GREEN_, RED_, Series, line_chart, register_font};
    register_font();
    let train: Vec<f32> = logs.iter().map(|l| l.train_loss as f32).collect();
    let val: Vec<f32> = logs.iter().map(|l| l.valid_loss as f32).collect();
    let acc: Vec<f32> = logs.iter().map(|l| 100.0 * accuracy(l) as f32).collect();
    // Epoch 1 at x = 0.
    line_chart(
        &out.join("loss.png"),
        "Behavior cloning loss (weighted cross-entropy)",
        "epoch - 1",
        "loss",
        &[
            Series {
                label: "training",
                values: &train,
                color: RED_,
                dashed: false,
            },
            Series {
                label: "validation",
                values: &val,
                color: BLUE_,
                dashed: true,
            },
        ],
        false,
    )?;
    line_chart(
        &out.join("accuracy.png"),
        "Validation accuracy",
        "epoch - 1",
        "accuracy (%)",
        &[Series {
            label: "validation",
            values: &acc,
            color: GREEN_,
            dashed: false,
        }],
        false,
    )?;
    Ok(())
}

/// An epoch's validation accuracy.
pub fn accuracy(log: &EpochLog) -> f64 {
    log.valid_metrics
        .get("accuracy")
        .copied()
        .unwrap_or(f64::NAN)
}
