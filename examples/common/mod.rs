//! What the examples share: backend choice, progress bars for the shared
//! training loop (`ncps::train`), the sine task's run, and PNG line charts
//! (`plot.rs`, which benches/scaling.rs shares).

#![allow(dead_code)] // each example uses a part

use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use ncps::cells::RecurrentCell;
use ncps::datasets::sine::{SineBatcher, SineData};
use ncps::rnn::Rnn;
use ncps::train::{Clipping, EpochLog, Progress, SequenceModel, SequenceMse, TrainConfig, Trainer};

mod plot;
pub use plot::*;

/// Burn backends an example can run on.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backend {
    /// Burn's CPU backend.
    Ndarray,
    /// Burn's GPU backend (build with `--features wgpu`).
    Wgpu,
}

/// Full training on the sine task: the loss of every epoch, the
/// predictions before and after, and the time it took.
pub struct Run {
    pub losses: Vec<f32>,
    pub before: Vec<f32>,
    pub after: Vec<f32>,
    pub final_mse: f32,
    pub elapsed: Duration,
    pub params: usize,
}

/// Trains on the sine task with the shared loop (full batch, global-norm
/// clipping at 1, as upstream's quickstart); `after` and `final_mse` are
/// those of the kept (lowest-MSE) weights, which are returned with the run.
pub fn train<B: AutodiffBackend, C>(
    label: &str,
    model: Rnn<B, C>,
    epochs: usize,
    lr: f64,
    device: &B::Device,
) -> (Run, Rnn<B, C>)
where
    C: RecurrentCell<B> + AutodiffModule<B>,
    Rnn<B, C>: AutodiffModule<B>,
    <Rnn<B, C> as AutodiffModule<B>>::InnerModule: SequenceModel<B::InnerBackend>,
{
    let params = burn::module::Module::num_params(&model);
    let data = SineData::new(48);
    let predict = |model: &<Rnn<B, C> as AutodiffModule<B>>::InnerModule| -> Vec<f32> {
        model
            .predict(data.input_tensor(device), None)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 data")
    };
    let before = predict(&model.valid());
    let config = TrainConfig::new(epochs, 1)
        .with_learning_rate(lr)
        .with_clipping(Clipping::GlobalNorm(1.0));
    let start = Instant::now();
    let trained = Trainer::new(config, device.clone())
        .fit(
            model,
            &SequenceMse::default(),
            &data,
            &data,
            &SineBatcher,
            &mut Bars::epochs(label),
        )
        .expect("the sine task trains in memory");
    let elapsed = start.elapsed();
    let best = trained.best_epoch.unwrap_or(epochs);
    let run = Run {
        losses: trained.log.iter().map(|l| l.train_loss as f32).collect(),
        before,
        after: predict(&trained.model.valid()),
        final_mse: trained.log[best - 1].valid_loss as f32,
        elapsed,
        params,
    };
    (run, trained.model)
}

/// Progress bars for the shared training loop (`indicatif`): one bar over
/// the epochs, or one bar over each epoch's batches with a summary line
/// per epoch.
pub struct Bars {
    label: String,
    per_batch: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Bars {
    /// One bar over the epochs, the last training loss as its message.
    pub fn epochs(label: &str) -> Self {
        Self {
            label: label.to_string(),
            per_batch: false,
            bar: None,
            epochs: 0,
        }
    }

    /// A bar over each epoch's batches, then the epoch's summary line.
    pub fn batches(label: &str) -> Self {
        Self {
            per_batch: true,
            ..Self::epochs(label)
        }
    }

    fn bar(len: usize, template: &str) -> ProgressBar {
        ProgressBar::new(len as u64).with_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        )
    }
}

impl Progress for Bars {
    fn start(&mut self, first_epoch: usize, epochs: usize) {
        self.epochs = epochs;
        if first_epoch > 1 {
            println!(
                "{}: resuming at epoch {first_epoch} of {epochs}",
                self.label
            );
        }
        if !self.per_batch {
            let bar = Self::bar(
                epochs,
                "{prefix:>18} [{bar:30}] {pos}/{len} epochs  loss {msg}  {elapsed}",
            );
            bar.set_prefix(self.label.clone());
            bar.set_position(first_epoch as u64 - 1);
            self.bar = Some(bar);
        }
    }

    fn epoch_start(&mut self, epoch: usize, batches: usize) {
        if self.per_batch {
            let bar = Self::bar(
                batches,
                "{prefix} [{bar:30}] {pos}/{len} batches  loss {msg}  {elapsed} (eta {eta})",
            );
            bar.set_prefix(format!("{} epoch {epoch}/{}", self.label, self.epochs));
            self.bar = Some(bar);
        }
    }

    fn batch_end(&mut self, _batch: usize, loss: f64) {
        if let (true, Some(bar)) = (self.per_batch, &self.bar) {
            bar.set_message(format!("{loss:.4}"));
            bar.inc(1);
        }
    }

    fn epoch_end(&mut self, log: &EpochLog) {
        let Some(bar) = &self.bar else { return };
        if self.per_batch {
            bar.finish_and_clear();
            println!("{}: {}", self.label, log.summary());
        } else {
            bar.set_message(format!("{:.2e}", log.train_loss));
            bar.inc(1);
            if log.epoch == self.epochs {
                bar.finish_and_clear();
            }
        }
    }
}

/// Mean and population standard deviation (numpy's default, the papers'
/// figures) of the runs' results.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, std)
}

/// The training options both examples take.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Training epochs (one full-batch Adam step each).
    #[arg(long, default_value_t = 400)]
    pub epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// Seed of the weight initialisation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
