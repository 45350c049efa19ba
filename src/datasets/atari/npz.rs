//! Demonstration sequences in upstream's npz layout.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array4, Ix1, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpzError};

#[cfg(doc)]
use super::Breakout;
use super::{ACTIONS, FRAME, OBS_LEN, STACK};

/// One demonstration sequence: `obs` `(T, 84, 84, 4)` and `actions` `(T,)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Observations, `T * 84 * 84 * 4` bytes, each as [`Breakout::observation`].
    pub obs: Vec<u8>,
    /// The action taken at each step, indices into [`ACTIONS`].
    pub actions: Vec<u8>,
}

impl Sequence {
    /// Steps in the sequence.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether the sequence has no steps.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// The path of sequence `k` of a split in upstream's layout:
/// `<root>/data_atari_seq/<game>/<split>_<k>.npz`.
pub fn sequence_path(root: &Path, game: &str, split: &str, k: usize) -> PathBuf {
    root.join("data_atari_seq")
        .join(game)
        .join(format!("{split}_{k}.npz"))
}

/// Writes one sequence as upstream's npz: `obs` uint8 `(T, 84, 84, 4)`,
/// `actions` int64 `(T,)` (compressed), through a temporary file and a
/// rename, so that a failed write leaves no half-written file.
pub fn write_sequence(path: &Path, sequence: &Sequence) -> io::Result<()> {
    let t = sequence.len();
    assert_eq!(
        sequence.obs.len(),
        t * OBS_LEN,
        "obs must be T * 84 * 84 * 4"
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let obs = Array4::from_shape_vec((t, FRAME, FRAME, STACK), sequence.obs.clone())
        .map_err(io::Error::other)?;
    let actions: Array1<i64> = sequence.actions.iter().map(|&a| a as i64).collect();
    // Built in memory, then written through a temporary file and a rename:
    // an interrupted recording never leaves a half-written file that loads.
    let mut npz = NpzWriter::new_compressed(io::Cursor::new(Vec::new()));
    npz.add_array("obs", &obs).map_err(io::Error::other)?;
    npz.add_array("actions", &actions)
        .map_err(io::Error::other)?;
    let bytes = npz.finish().map_err(io::Error::other)?.into_inner();
    crate::fs::write_atomically(path, &bytes)
}

/// Reads one sequence from an npz file in upstream's layout (`obs` uint8
/// `(T, 84, 84, 4)`; `actions` `(T,)` of any integer type).
pub fn read_sequence(path: &Path) -> io::Result<Sequence> {
    let mut npz = NpzReader::new(BufReader::new(File::open(path)?)).map_err(io::Error::other)?;
    let obs: Array4<u8> = npz.by_name("obs").map_err(io::Error::other)?;
    let t = obs.shape()[0];
    if obs.shape() != [t, FRAME, FRAME, STACK] {
        return Err(io::Error::other(format!(
            "{}: obs has shape {:?}, expected (T, 84, 84, 4)",
            path.display(),
            obs.shape()
        )));
    }
    let actions = read_actions(&mut npz).map_err(io::Error::other)?;
    if actions.len() != t || actions.iter().any(|&a| a < 0 || a >= ACTIONS.len() as i64) {
        return Err(io::Error::other(format!(
            "{}: actions must be T = {t} indices below 4",
            path.display()
        )));
    }
    Ok(Sequence {
        obs: obs.as_standard_layout().iter().copied().collect(),
        actions: actions.iter().map(|&a| a as u8).collect(),
    })
}

/// `actions` as i64 whatever integer type the file stores.
fn read_actions<R: io::Read + io::Seek>(npz: &mut NpzReader<R>) -> Result<Vec<i64>, ReadNpzError> {
    macro_rules! try_type {
        ($($t:ty),*) => {$(
            if let Ok(a) = npz.by_name::<OwnedRepr<$t>, Ix1>("actions") {
                return Ok(a.iter().map(|&v| v as i64).collect());
            }
        )*};
    }
    try_type!(i64, i32, u8, i16, u16, u32, u64, i8);
    // Report the error of the expected type.
    npz.by_name::<OwnedRepr<i64>, Ix1>("actions")
        .map(|a| a.to_vec())
}
