//! Why a training run could not go on.

use std::path::PathBuf;

/// Why a run could not go on. A run that failed (a full disk, a kill)
/// resumes from its last committed epoch when started again with the same
/// directory and settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A setting outside its range.
    #[error("invalid training setting: {0}")]
    InvalidSetting(String),
    /// A dataset without items.
    #[error("the {0} set is empty")]
    EmptyDataset(&'static str),
    /// Reading or writing a file of the run directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file of the run directory cannot be decoded.
    #[error("{path}: cannot be read back: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// The directory holds a run with other settings.
    #[error(
        "{dir} holds a run trained with {setting} = {saved}, not {given}: \
         use another directory (or delete this one) to start a new run"
    )]
    OtherSettings {
        /// The run directory.
        dir: PathBuf,
        /// The setting that differs.
        setting: String,
        /// Its value in the directory's run.
        saved: String,
        /// Its value now.
        given: String,
    },
}
