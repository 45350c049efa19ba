//! Upstream's `AtariCloningDataset` as a `burn::data` dataset, and its
//! batcher.

use std::io;
use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::{ArrayD, Ix4};

use super::{FRAME, OBS_LEN, STACK, Sequence, read_sequence};

/// The demonstration files of one split (upstream's `AtariCloningDataset`):
/// every `<root>/data_atari_seq/<game>/<split>_<k>.npz`, ordered by `k`,
/// one [`Sequence`] per file, read when asked for.
#[derive(Clone, Debug)]
pub struct AtariCloningDataset {
    files: Vec<PathBuf>,
}

impl AtariCloningDataset {
    /// Lists the files of `split` (`"train"` or `"val"`); an error when there
    /// are none.
    pub fn new(root: &Path, game: &str, split: &str) -> io::Result<Self> {
        let dir = root.join("data_atari_seq").join(game);
        let prefix = format!("{split}_");
        let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(&dir)?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?;
                let k = name.strip_prefix(&prefix)?.strip_suffix(".npz")?;
                Some((k.parse().ok()?, path))
            })
            .collect();
        if files.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no {split}_<k>.npz files in {}", dir.display()),
            ));
        }
        files.sort();
        Ok(Self {
            files: files.into_iter().map(|(_, path)| path).collect(),
        })
    }

    /// The files, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl Dataset<Sequence> for AtariCloningDataset {
    /// Reads file `index`; `None` past the end.
    ///
    /// # Panics
    /// When the file cannot be read.
    fn get(&self, index: usize) -> Option<Sequence> {
        let path = self.files.get(index)?;
        Some(read_sequence(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    fn len(&self) -> usize {
        self.files.len()
    }
}

/// A batch of sequences as tensors.
#[derive(Clone, Debug)]
pub struct AtariBatch<B: Backend> {
    /// Observations `[batch, T, 4, 84, 84]`, values in `[0, 1]`.
    pub obs: Tensor<B, 5>,
    /// Actions `[batch, T]`.
    pub actions: Tensor<B, 2, Int>,
}

/// Stacks [`Sequence`]s of equal length into an [`AtariBatch`] (channels
/// first and scaled to `[0, 1]`, as upstream's loader does).
#[derive(Clone, Copy, Debug, Default)]
pub struct AtariBatcher;

impl<B: Backend> Batcher<B, Sequence, AtariBatch<B>> for AtariBatcher {
    fn batch(&self, items: Vec<Sequence>, device: &B::Device) -> AtariBatch<B> {
        let batch = items.len();
        let t = items.first().map_or(0, Sequence::len);
        assert!(
            items.iter().all(|s| s.len() == t),
            "sequences of one batch must have the same length"
        );
        let mut obs = Vec::with_capacity(batch * t * OBS_LEN);
        let mut actions = Vec::with_capacity(batch * t);
        for item in &items {
            obs.extend(observations_chw(&item.obs));
            actions.extend(item.actions.iter().map(|&a| a as i64));
        }
        AtariBatch {
            obs: Tensor::from_data(
                TensorData::new(obs, [batch, t, STACK, FRAME, FRAME]),
                device,
            ),
            actions: Tensor::from_data(TensorData::new(actions, [batch, t]), device),
        }
    }
}

/// Observations `(n, 84, 84, 4)` uint8 as `(n, 4, 84, 84)` floats in
/// `[0, 1]`: the input layout of a convolution.
pub fn observations_chw(obs: &[u8]) -> Vec<f32> {
    let n = obs.len() / OBS_LEN;
    let array = ArrayD::from_shape_vec(vec![n, FRAME, FRAME, STACK], obs.to_vec())
        .expect("whole observations")
        .into_dimensionality::<Ix4>()
        .expect("4 axes");
    let chw = array.permuted_axes([0, 3, 1, 2]);
    chw.as_standard_layout()
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect()
}
