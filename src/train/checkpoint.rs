//! A run's directory: the records of the last completed epoch, the best
//! weights, the metrics log, and the state file that commits them.
//!
//! After each epoch `k` the trainer writes `model-epoch<k>.mpk` and
//! `optimizer-epoch<k>.mpk`, then `train_state.json` (the commit: epoch, best
//! epoch, log, settings), then `metrics.json` and, on a new best,
//! `best.mpk`. Every file goes through a temporary file and a rename, and
//! the files an earlier state refers to are removed only after the new
//! state is written: a run killed at any moment (or stopped by a full
//! disk) resumes from the last committed epoch.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use serde::{Deserialize, Serialize};

use super::TrainConfig;
use super::TrainError;
use super::progress::EpochLog;
use crate::fs::write_atomically;

/// The commit file of a run directory.
pub(crate) const STATE_FILE: &str = "train_state.json";
/// The metrics log, one entry per completed epoch.
pub(crate) const METRICS_FILE: &str = "metrics.json";
/// The best-validation weights (a Burn `NamedMpk` record, full precision;
/// `NamedMpkFileRecorder::<FullPrecisionSettings>` loads it).
pub(crate) const BEST_FILE: &str = "best.mpk";

/// Settings that change neither the numbers nor the order of a run: a
/// resumed run may change them.
const FREE_SETTINGS: [&str; 3] = ["epochs", "prefetch", "time_budget_s"];

/// What `train_state.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct State {
    /// The settings of the run (compared on resume).
    pub config: serde_json::Value,
    /// The last completed epoch (0 before the first).
    pub epoch: usize,
    /// The epoch of the best validation loss so far.
    pub best_epoch: Option<usize>,
    /// That loss.
    pub best_valid: Option<f64>,
    /// Seconds of training and validation so far.
    pub seconds: f64,
    /// One entry per completed epoch.
    pub log: Vec<EpochLog>,
}

impl State {
    pub(crate) fn new(config: &TrainConfig) -> Self {
        Self {
            config: serde_json::to_value(config).expect("a config serializes"),
            epoch: 0,
            best_epoch: None,
            best_valid: None,
            seconds: 0.0,
            log: Vec::new(),
        }
    }
}

/// A run directory.
pub(crate) struct RunDir {
    dir: PathBuf,
}

fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::default()
}

pub(crate) fn model_file(epoch: usize) -> String {
    format!("model-epoch{epoch}.mpk")
}

pub(crate) fn optimizer_file(epoch: usize) -> String {
    format!("optimizer-epoch{epoch}.mpk")
}

impl RunDir {
    /// Creates the directory if needed.
    pub(crate) fn open(dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The committed state, if a run was started here; an error when it was
    /// started with other settings.
    pub(crate) fn load_state(&self, config: &TrainConfig) -> Result<Option<State>, TrainError> {
        let path = self.path(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TrainError::Io { path, source }),
        };
        let state: State = serde_json::from_str(&text).map_err(|e| TrainError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let given = serde_json::to_value(config).expect("a config serializes");
        if let (Some(saved), Some(given)) = (state.config.as_object(), given.as_object()) {
            for (key, value) in given {
                let before = saved.get(key).unwrap_or(&serde_json::Value::Null);
                if !FREE_SETTINGS.contains(&key.as_str()) && before != value {
                    return Err(TrainError::OtherSettings {
                        dir: self.dir.clone(),
                        setting: key.clone(),
                        saved: before.to_string(),
                        given: value.to_string(),
                    });
                }
            }
        }
        Ok(Some(state))
    }

    /// Writes a record (model or optimizer state).
    pub(crate) fn save<B: Backend, R: Record<B>>(
        &self,
        name: &str,
        record: R,
    ) -> Result<(), TrainError> {
        let path = self.path(name);
        let bytes =
            Recorder::<B>::record(&recorder(), record, ()).map_err(|e| TrainError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
        write_atomically(&path, &bytes).map_err(|source| TrainError::Io { path, source })
    }

    /// Reads a record written by [`save`](Self::save).
    pub(crate) fn load<B: Backend, R: Record<B>>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Result<R, TrainError> {
        let path = self.path(name);
        let bytes = std::fs::read(&path).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        Recorder::<B>::load(&recorder(), bytes, device).map_err(|e| TrainError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Commits `state` (its epoch's records are written), then writes the
    /// metrics log and removes the records no state refers to any more.
    pub(crate) fn commit(&self, state: &State) -> Result<(), TrainError> {
        let files = [
            (STATE_FILE, serde_json::to_vec_pretty(state)),
            (METRICS_FILE, serde_json::to_vec_pretty(&state.log)),
        ];
        for (name, bytes) in files {
            let bytes = bytes.expect("plain data serializes");
            let path = self.path(name);
            write_atomically(&path, &bytes).map_err(|source| TrainError::Io { path, source })?;
        }
        let keep = [
            model_file(state.epoch),
            optimizer_file(state.epoch),
            state.best_epoch.map(model_file).unwrap_or_default(),
        ];
        let entries = std::fs::read_dir(&self.dir).map_err(|source| TrainError::Io {
            path: self.dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let record = name.ends_with(".mpk")
                && (name.starts_with("model-epoch") || name.starts_with("optimizer-epoch"));
            if record && !keep.contains(&name) {
                // A file left behind costs disk space only: not an error.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}
