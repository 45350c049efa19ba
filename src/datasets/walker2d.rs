//! Walker2d kinematic modelling, the CfC paper's irregularly sampled
//! benchmark (upstream's `Walker2dImitationData`).
//!
//! 400 rollouts of a MuJoCo Walker2d agent, `rollout_000.npy` ..
//! `rollout_399.npy` (float64 `[T, 17]`, one row per simulator step): what
//! a user gets by unzipping upstream's `walker.zip` (the `raminmh/CfC`
//! repository's `data/walker/`). The task, as upstream defines it:
//!
//! 1. upstream's split of the files ([`Split::upstream`]: 300 training, 40
//!    validation and 60 test rollouts, the lists embedded in the crate);
//! 2. per file, inputs `x = rows[..T-1]`, targets `y = rows[1..]` (predict
//!    the next state);
//! 3. irregular sampling: walk the steps, keep each with probability 0.9
//!    (one seeded generator over the training, then validation, then test
//!    files, as upstream); a kept step's elapsed time is the number of steps
//!    since the previous kept one (1, or 2, 3... after drops; the first
//!    kept step counts from the start);
//! 4. windows of 64 steps every 16 (`range(0, len - 64, 16)`).
//!
//! Upstream's generator (numpy's, seed 891374) gives 9,684 training, 1,272
//! validation and 1,937 test windows; the crate draws with ChaCha8, so its
//! counts differ by a few windows (the task is the same statistically).
//!
//! [`Walker2dSplit`] is a `burn::data` dataset of [`Walker2dWindow`]s and
//! [`Walker2dBatcher`] batches them as [`SequenceBatch`]es (inputs and
//! targets `[batch, 64, 17]`, elapsed times `[batch, 64]`) for
//! [`SequenceMse`](crate::train::SequenceMse); [`Walker2dModel`] is the
//! task's model, a recurrent network then a `Linear` readout to 17 outputs.
//!
//! ```
//! use burn::data::dataset::Dataset;
//! use ncps::datasets::walker2d::{Split, Walker2dConfig};
//!
//! // Four rollouts shipped with the tests, in a split of their own.
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/walker2d");
//! let split = Split {
//!     train: vec!["rollout_012.npy".into(), "rollout_144.npy".into()],
//!     valid: vec!["rollout_279.npy".into()],
//!     test: vec!["rollout_184.npy".into()],
//! };
//! let data = Walker2dConfig::new().with_split(split).load(dir)?;
//! let window = data.train.get(0).unwrap();
//! assert_eq!((window.x.len(), window.elapsed.len()), (64 * 17, 64));
//! assert!(window.elapsed.iter().all(|&t| t >= 1.0));
//! # Ok::<(), ncps::datasets::walker2d::Walker2dError>(())
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyError, ReadNpyExt};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cells::{Initialization, RecurrentCell, projection};
use crate::rnn::Rnn;
use crate::train::{SequenceBatch, SequenceModel};

/// Features of one state (and of one input and one output step).
pub const FEATURES: usize = 17;

/// Upstream's split of the 400 rollouts, computed with upstream's code
/// (`np.random.RandomState(125487).shuffle` of the sorted names; 15% test,
/// 10% validation, the rest training).
const UPSTREAM_SPLIT: &str = include_str!("walker2d_split.json");

/// Which rollout files form each split (file names in the data directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Training files.
    pub train: Vec<String>,
    /// Validation files.
    pub valid: Vec<String>,
    /// Test files.
    pub test: Vec<String>,
}

impl Split {
    /// Upstream's split: 300 training, 40 validation and 60 test files, so
    /// that test figures compare with upstream's.
    pub fn upstream() -> Self {
        serde_json::from_str(UPSTREAM_SPLIT).expect("the embedded split is valid JSON")
    }
}

/// Why the Walker2d data cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Walker2dError {
    /// The data directory does not exist.
    #[error(
        "{0}: no such directory. The Walker2d data are upstream's walker.zip (the CfC \
         paper's repository, raminmh/CfC, data/walker/): unzip it and pass the folder \
         holding rollout_000.npy .. rollout_399.npy"
    )]
    MissingDirectory(PathBuf),
    /// A file the split lists cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file is not a float `.npy` array.
    #[error("{path}: not a float32/float64 .npy array: {message}")]
    NotFloat {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A file's array is not `[T, 17]` with `T >= 2`.
    #[error("{path}: an array of shape {shape:?}, expected [T, 17] with T >= 2")]
    Shape {
        /// The file.
        path: PathBuf,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A setting outside its range.
    #[error("invalid {0}")]
    InvalidSetting(String),
}

/// How the task is built from the files. The defaults are upstream's.
#[derive(Config, Debug)]
pub struct Walker2dConfig {
    /// The split. Default: [`Split::upstream`].
    #[config(default = "Split::upstream()")]
    pub split: Split,
    /// Probability of keeping a step. Default: 0.9.
    #[config(default = 0.9)]
    pub keep_probability: f64,
    /// Seed of the sampling. Default: 891374 (upstream's numpy seed; the
    /// crate's generator is ChaCha8, so the draws differ).
    #[config(default = 891374)]
    pub seed: u64,
    /// Steps per window. Default: 64.
    #[config(default = 64)]
    pub seq_len: usize,
    /// Steps between window starts. Default: 16 (`seq_len / 4`).
    #[config(default = 16)]
    pub stride: usize,
}

/// The three splits of the task.
#[derive(Clone, Debug)]
pub struct Walker2d {
    /// Training windows.
    pub train: Walker2dSplit,
    /// Validation windows.
    pub valid: Walker2dSplit,
    /// Test windows.
    pub test: Walker2dSplit,
}

impl Walker2d {
    /// Loads `dir` with upstream's settings ([`Walker2dConfig::new`]).
    ///
    /// # Errors
    /// See [`Walker2dConfig::load`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, Walker2dError> {
        Walker2dConfig::new().load(dir)
    }
}

impl Walker2dConfig {
    /// Reads the split's files from `dir`, samples them irregularly and cuts
    /// the windows.
    ///
    /// # Errors
    /// A missing directory (the message says where the data come from), a
    /// listed file that cannot be read, a file that is not a float `.npy`
    /// array of shape `[T, 17]`, or a setting out of range.
    pub fn load(&self, dir: impl AsRef<Path>) -> Result<Walker2d, Walker2dError> {
        let dir = dir.as_ref();
        if !(0.0..=1.0).contains(&self.keep_probability) || self.keep_probability == 0.0 {
            return Err(Walker2dError::InvalidSetting(format!(
                "keep_probability = {}: must be in (0, 1]",
                self.keep_probability
            )));
        }
        if self.seq_len == 0 || self.stride == 0 {
            return Err(Walker2dError::InvalidSetting(format!(
                "seq_len = {}, stride = {}: both must be at least 1",
                self.seq_len, self.stride
            )));
        }
        if !dir.is_dir() {
            return Err(Walker2dError::MissingDirectory(dir.to_path_buf()));
        }
        // One generator over train, valid, test, in this order (upstream's).
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut split = |files: &[String]| -> Result<Walker2dSplit, Walker2dError> {
            let mut steps = Steps::default();
            let mut starts = Vec::new();
            for name in files {
                let rows = read_rollout(&dir.join(name))?;
                let first = steps.len();
                steps.push_sampled(&rows, self.keep_probability, &mut rng);
                let len = steps.len() - first;
                starts.extend(
                    (0..len.saturating_sub(self.seq_len))
                        .step_by(self.stride)
                        .map(|s| first + s),
                );
            }
            Ok(Walker2dSplit {
                steps: Arc::new(steps),
                starts: Arc::new(starts),
                seq_len: self.seq_len,
            })
        };
        Ok(Walker2d {
            train: split(&self.split.train)?,
            valid: split(&self.split.valid)?,
            test: split(&self.split.test)?,
        })
    }
}

/// Reads one rollout as float64 rows `[T, 17]`.
fn read_rollout(path: &Path) -> Result<Vec<f64>, Walker2dError> {
    let bytes = std::fs::read(path).map_err(|source| Walker2dError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let not_float = |e: ReadNpyError| Walker2dError::NotFloat {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let array = match ArrayD::<f64>::read_npy(Cursor::new(&bytes)) {
        Ok(array) => array,
        Err(ReadNpyError::WrongDescriptor(_)) => ArrayD::<f32>::read_npy(Cursor::new(&bytes))
            .map_err(not_float)?
            .mapv(f64::from),
        Err(e) => return Err(not_float(e)),
    };
    let shape = array.shape().to_vec();
    if shape.len() != 2 || shape[1] != FEATURES || shape[0] < 2 {
        return Err(Walker2dError::Shape {
            path: path.to_path_buf(),
            shape,
        });
    }
    Ok(array.as_standard_layout().iter().copied().collect())
}

/// The kept steps of a split's files, back to back.
#[derive(Debug, Default)]
struct Steps {
    /// Inputs, `[steps, 17]` row-major.
    x: Vec<f32>,
    /// Targets (the next state), `[steps, 17]`.
    y: Vec<f32>,
    /// Elapsed time of each kept step.
    elapsed: Vec<f32>,
}

impl Steps {
    fn len(&self) -> usize {
        self.elapsed.len()
    }

    /// Appends the kept steps of one rollout (`rows`, `[T, 17]`).
    fn push_sampled(&mut self, rows: &[f64], keep: f64, rng: &mut ChaCha8Rng) {
        let row = |t: usize| {
            rows[t * FEATURES..(t + 1) * FEATURES]
                .iter()
                .map(|&v| v as f32)
        };
        let steps = rows.len() / FEATURES - 1;
        let mut since = 0;
        for t in 0..steps {
            since += 1;
            if rng.random::<f64>() < keep {
                self.x.extend(row(t));
                self.y.extend(row(t + 1));
                self.elapsed.push(since as f32);
                since = 0;
            }
        }
    }
}

/// One split of the task: a `burn::data` dataset of windows. Cloning is
/// cheap (the steps are shared).
#[derive(Clone, Debug)]
pub struct Walker2dSplit {
    steps: Arc<Steps>,
    /// Index of the first step of each window.
    starts: Arc<Vec<usize>>,
    seq_len: usize,
}

/// One window: `seq_len` kept steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Walker2dWindow {
    /// Inputs `[seq_len, 17]`, row-major.
    pub x: Vec<f32>,
    /// Elapsed time of each step `[seq_len]`.
    pub elapsed: Vec<f32>,
    /// Targets `[seq_len, 17]`: the state after each input.
    pub y: Vec<f32>,
}

impl Dataset<Walker2dWindow> for Walker2dSplit {
    fn get(&self, index: usize) -> Option<Walker2dWindow> {
        let start = *self.starts.get(index)?;
        let steps = start..start + self.seq_len;
        let rows = start * FEATURES..(start + self.seq_len) * FEATURES;
        Some(Walker2dWindow {
            x: self.steps.x[rows.clone()].to_vec(),
            elapsed: self.steps.elapsed[steps].to_vec(),
            y: self.steps.y[rows].to_vec(),
        })
    }

    fn len(&self) -> usize {
        self.starts.len()
    }
}

impl Walker2dSplit {
    /// Kept steps in the split's files (before windowing).
    pub fn steps(&self) -> usize {
        self.steps.len()
    }

    /// Steps per window.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }
}

/// Stacks windows into a [`SequenceBatch`]: inputs and targets `[batch,
/// seq_len, 17]`, elapsed times `[batch, seq_len]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Walker2dBatcher;

impl<B: Backend> Batcher<B, Walker2dWindow, SequenceBatch<B>> for Walker2dBatcher {
    fn batch(&self, items: Vec<Walker2dWindow>, device: &B::Device) -> SequenceBatch<B> {
        let n = items.len();
        let len = items.first().map_or(0, |w| w.elapsed.len());
        assert!(
            items.iter().all(|w| w.elapsed.len() == len),
            "windows of one batch must have the same length"
        );
        let stack = |part: fn(&Walker2dWindow) -> &[f32]| -> Vec<f32> {
            items.iter().flat_map(|w| part(w).iter().copied()).collect()
        };
        SequenceBatch {
            input: Tensor::from_data(TensorData::new(stack(|w| &w.x), [n, len, FEATURES]), device),
            timespans: Some(Tensor::from_data(
                TensorData::new(stack(|w| &w.elapsed), [n, len]),
                device,
            )),
            target: Tensor::from_data(TensorData::new(stack(|w| &w.y), [n, len, FEATURES]), device),
        }
    }
}

/// The task's model: a recurrent network over `(x, elapsed)` returning
/// every step's output, then a `Linear` readout to the 17 state features
/// (the paper's `RNN → Dense(17)`; upstream's torch script's `Linear`).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::datasets::walker2d::{FEATURES, Walker2dModel};
/// use ncps::rnn::{CfCConfig, Units};
/// use ncps::train::SequenceModel;
///
/// let device = Default::default();
/// let rnn = CfCConfig::new(FEATURES, Units::from(16)).init::<NdArray>(&device)?;
/// let model = Walker2dModel::new(rnn, &device);
/// let x = Tensor::<NdArray, 3>::zeros([2, 64, FEATURES], &device);
/// let elapsed = Tensor::<NdArray, 2>::ones([2, 64], &device);
/// assert_eq!(model.predict(x, Some(elapsed)).dims(), [2, 64, FEATURES]);
/// # Ok::<(), ncps::ConfigError>(())
/// ```
#[derive(Module, Debug)]
pub struct Walker2dModel<B: Backend, C> {
    /// The recurrent network.
    pub rnn: Rnn<B, C>,
    /// `[rnn output → 17]`.
    pub readout: Linear<B>,
}

impl<B: Backend, C: RecurrentCell<B>> Walker2dModel<B, C> {
    /// `rnn` followed by a fresh readout, PyTorch's `nn.Linear` as
    /// upstream's walker example.
    ///
    /// # Panics
    /// When `rnn` does not take 17 input features or does not return
    /// sequences.
    pub fn new(rnn: Rnn<B, C>, device: &B::Device) -> Self {
        Self::with_initialization(rnn, Initialization::Upstream, device)
    }

    /// `rnn` followed by a fresh readout initialised as `initialization`
    /// says: `nn.Linear`'s default or, with [`Initialization::Keras`], the
    /// paper's Keras `Dense` (Glorot-uniform kernel, zero bias).
    ///
    /// # Panics
    /// When `rnn` does not take 17 input features or does not return
    /// sequences.
    pub fn with_initialization(
        rnn: Rnn<B, C>,
        initialization: Initialization,
        device: &B::Device,
    ) -> Self {
        assert_eq!(
            rnn.input_size(),
            FEATURES,
            "rnn must take the 17 Walker2d features"
        );
        assert!(rnn.return_sequences, "rnn must return every step's output");
        // Drawn now, so that the model and its clones hold the same readout.
        let readout = projection(rnn.output_size(), FEATURES, initialization, device);
        Self { rnn, readout }
    }
}

impl<B: Backend, C: RecurrentCell<B> + Module<B>> SequenceModel<B> for Walker2dModel<B, C> {
    fn predict(&self, input: Tensor<B, 3>, timespans: Option<Tensor<B, 2>>) -> Tensor<B, 3> {
        self.readout.forward(self.rnn.predict(input, timespans))
    }

    fn cell_kernels_l2(&self) -> Option<Tensor<B, 1>> {
        self.rnn.cell_kernels_l2()
    }
}
