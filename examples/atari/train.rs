//! `train`: behavior cloning on the recorded sequences with `burn::data`,
//! cross-entropy weighted by class, Adam; validation loss and accuracy per
//! epoch, a checkpoint (Burn record) per epoch, learning curves as PNG.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use ncps::datasets::atari::{ACTIONS, AtariBatch, AtariBatcher, AtariCloningDataset};
use serde::{Deserialize, Serialize};

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

/// One epoch's figures.
#[derive(Clone, Debug, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f32,
    pub val_loss: f32,
    pub val_accuracy: f32,
    pub seconds: f64,
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

/// A Subset of the dataset: the sequences `indices`.
struct Subset {
    inner: AtariCloningDataset,
    indices: Vec<usize>,
}

impl Dataset<ncps::datasets::atari::Sequence> for Subset {
    fn get(&self, index: usize) -> Option<ncps::datasets::atari::Sequence> {
        self.inner.get(*self.indices.get(index)?)
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// Validation loss and accuracy over the whole split (inference mode:
/// batch norm uses its running statistics).
pub fn evaluate<B: Backend>(
    model: &ConvCfC<B>,
    dataset: AtariCloningDataset,
    weights: &[f32],
    batch_size: usize,
    device: &B::Device,
) -> (f32, f32) {
    let loader = DataLoaderBuilder::<B, _, _>::new(AtariBatcher)
        .batch_size(batch_size)
        .num_workers(1)
        .set_device(device.clone())
        .build(dataset);
    let loss = CrossEntropyLossConfig::new()
        .with_weights(Some(weights.to_vec()))
        .init(device);
    let (mut total_loss, mut total_acc, mut n) = (0.0, 0.0, 0.0);
    for batch in loader.iter() {
        let items = batch.actions.dims()[0] as f32;
        let (l, acc) = loss_and_accuracy(model, batch, &loss);
        total_loss += l.into_scalar().elem::<f32>() * items;
        total_acc += acc * items;
        n += items;
    }
    (total_loss / n, total_acc / n)
}

/// What [`train`] returns.
pub struct Trained<B: AutodiffBackend> {
    pub model: ConvCfC<B>,
    pub logs: Vec<EpochLog>,
    /// Training time (validation and checkpoints included).
    pub elapsed: Duration,
}

/// Trains a fresh policy; writes `model-epoch<k>.mpk`, `model.mpk`,
/// `policy.json` and `train_log.json` to `out`.
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
    std::fs::write(
        out.join("policy.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    let mut model = ConvCfC::<B>::new(config.trunk, config.actions, device);
    println!(
        "ConvCfC ({:?} trunk): {} parameters",
        settings.trunk,
        model.num_params()
    );
    let mut optim = AdamConfig::new().init();
    let loss = CrossEntropyLossConfig::new()
        .with_weights(Some(weights.clone()))
        .init(device);
    let per_epoch = settings
        .sequences_per_epoch
        .unwrap_or(train_set.len())
        .min(train_set.len());
    let batches = per_epoch.div_ceil(settings.batch_size);
    let mut logs = Vec::new();
    let start = Instant::now();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let mut rng_state = settings.seed;
    for epoch in 1..=settings.epochs {
        if let (Some(budget), Some(last)) = (settings.time_budget, logs.last()) {
            let last: &EpochLog = last;
            if start.elapsed().as_secs_f64() + last.seconds > budget.as_secs_f64() {
                println!(
                    "stopping after {} epochs: another would end past the {:.0}-minute budget",
                    epoch - 1,
                    budget.as_secs_f64() / 60.0
                );
                break;
            }
        }
        let epoch_start = Instant::now();
        // A fresh random subset (all sequences when not limited), shuffled by the loader.
        let mut indices: Vec<usize> = (0..train_set.len()).collect();
        shuffle(&mut indices, &mut rng_state);
        indices.truncate(per_epoch);
        let loader = DataLoaderBuilder::<B, _, _>::new(AtariBatcher)
            .batch_size(settings.batch_size)
            .shuffle(settings.seed + epoch as u64)
            .num_workers(1)
            .set_device(device.clone())
            .build(Subset {
                inner: train_set.clone(),
                indices,
            });
        let bar = ProgressBar::new(batches as u64).with_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} batches  loss {msg}  {elapsed} (eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", settings.epochs));
        let (mut sum, mut n) = (0.0, 0);
        for batch in loader.iter() {
            let (l, _) = loss_and_accuracy(&model, batch, &loss);
            let value = l.clone().into_scalar().elem::<f32>();
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(settings.lr, model, grads);
            sum += value;
            n += 1;
            bar.set_message(format!("{:.4}", sum / n as f32));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let (val_loss, val_accuracy) = evaluate(
            &model.valid(),
            val_set.clone(),
            &weights,
            settings.batch_size,
            device,
        );
        let log = EpochLog {
            epoch,
            train_loss: sum / n.max(1) as f32,
            val_loss,
            val_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        println!(
            "epoch {epoch}: train_loss={:.4} val_loss={:.4} val_acc={:.2}% ({:.0} s)",
            log.train_loss,
            log.val_loss,
            100.0 * log.val_accuracy,
            log.seconds
        );
        logs.push(log);
        model
            .clone()
            .save_file(out.join(format!("model-epoch{epoch}")), &recorder)?;
    }
    let elapsed = start.elapsed();
    model.clone().save_file(out.join("model"), &recorder)?;
    std::fs::write(
        out.join("train_log.json"),
        serde_json::to_string_pretty(&logs)?,
    )?;
    Ok(Trained {
        model,
        logs,
        elapsed,
    })
}

/// Loads a policy saved by [`train`] (`policy.json` and `model.mpk` in `dir`).
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

/// The final checkpoint's path (without extension, as Burn's recorders take it).
pub fn checkpoint(dir: &Path) -> PathBuf {
    dir.join("model")
}

/// Fisher-Yates with a splitmix64 stream.
fn shuffle(items: &mut [usize], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        items.swap(i, (z % (i as u64 + 1)) as usize);
    }
}

/// The learning curves: losses and validation accuracy per epoch.
pub fn plot(out: &Path, logs: &[EpochLog]) -> Result<(), Box<dyn std::error::Error>> {
    use crate::common::{BLUE_, GREEN_, RED_, Series, line_chart, register_font};
    register_font();
    let train: Vec<f32> = logs.iter().map(|l| l.train_loss).collect();
    let val: Vec<f32> = logs.iter().map(|l| l.val_loss).collect();
    let acc: Vec<f32> = logs.iter().map(|l| 100.0 * l.val_accuracy).collect();
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
