//! What a run reports: the per-epoch log and the [`Progress`] observer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The figures of one epoch, as the metrics log (`metrics.json`) keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (each batch's loss as the
    /// objective computes it, before that batch's step).
    pub train_loss: f64,
    /// Validation loss after the epoch (the objective's mean over every item).
    pub valid_loss: f64,
    /// The objective's other validation figures (e.g. `accuracy`), means
    /// over every item.
    pub valid_metrics: BTreeMap<String, f64>,
    /// The learning rate of the epoch's first step.
    pub learning_rate: f64,
    /// Seconds of training (batches and optimizer steps).
    pub train_seconds: f64,
    /// Seconds of validation.
    pub valid_seconds: f64,
    /// Resident memory of the process at the end of the epoch, in bytes
    /// (Linux only; `None` elsewhere).
    pub resident_bytes: Option<u64>,
    /// The validation loss is the lowest so far: these weights are kept.
    pub best: bool,
}

/// How a [`Trainer`](super::Trainer) reports what it does. Every method does
/// nothing by default: `()` is the silent observer, [`PrintEpochs`] prints a
/// line per epoch, and the examples draw progress bars (`indicatif`) with
/// their own implementation, so the library forces no terminal UI on anyone.
///
/// ```
/// use ncps::train::{EpochLog, Progress};
///
/// /// Collects the validation losses.
/// struct Curve(Vec<f64>);
/// impl Progress for Curve {
///     fn epoch_end(&mut self, log: &EpochLog) {
///         self.0.push(log.valid_loss);
///     }
/// }
/// ```
pub trait Progress {
    /// A run starts at `first_epoch` (1, or the epoch after the last one
    /// a resumed run had completed) of `epochs`.
    fn start(&mut self, first_epoch: usize, epochs: usize) {
        let _ = (first_epoch, epochs);
    }

    /// An epoch of `batches` training batches starts.
    fn epoch_start(&mut self, epoch: usize, batches: usize) {
        let _ = (epoch, batches);
    }

    /// Batch `batch` (from 1) of the epoch was trained; `loss` is its loss.
    fn batch_end(&mut self, batch: usize, loss: f64) {
        let _ = (batch, loss);
    }

    /// An epoch ended (validated, and checkpointed when the run has a
    /// directory).
    fn epoch_end(&mut self, log: &EpochLog) {
        let _ = log;
    }
}

/// The silent observer.
impl Progress for () {}

/// Prints one line per epoch to standard output: training time, losses and
/// validation metrics.
#[derive(Clone, Debug, Default)]
pub struct PrintEpochs {
    /// Printed before every line (e.g. the run's name).
    pub prefix: String,
}

impl Progress for PrintEpochs {
    fn start(&mut self, first_epoch: usize, epochs: usize) {
        if first_epoch > 1 {
            println!("{}resuming at epoch {first_epoch} of {epochs}", self.prefix);
        }
    }

    fn epoch_end(&mut self, log: &EpochLog) {
        println!("{}{}", self.prefix, log.summary());
    }
}

impl EpochLog {
    /// One line, what [`PrintEpochs`] prints.
    ///
    /// ```
    /// use ncps::train::EpochLog;
    ///
    /// let log = EpochLog {
    ///     epoch: 3,
    ///     train_loss: 0.81234,
    ///     valid_loss: 0.79104,
    ///     valid_metrics: [("accuracy".to_string(), 0.612)].into(),
    ///     learning_rate: 1e-3,
    ///     train_seconds: 12.06,
    ///     valid_seconds: 0.5,
    ///     resident_bytes: None,
    ///     best: true,
    /// };
    /// assert_eq!(
    ///     log.summary(),
    ///     "epoch 3: train 12.1 s, train_loss 0.8123, valid_loss 0.7910 (best), accuracy 0.6120"
    /// );
    /// ```
    pub fn summary(&self) -> String {
        let mut line = format!(
            "epoch {}: train {:.1} s, train_loss {:.4}, valid_loss {:.4}",
            self.epoch, self.train_seconds, self.train_loss, self.valid_loss
        );
        if self.best {
            line += " (best)";
        }
        for (name, value) in &self.valid_metrics {
            line += &format!(", {name} {value:.4}");
        }
        line
    }
}

/// The process's resident memory in bytes (Linux: `VmRSS` in
/// `/proc/self/status`).
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
