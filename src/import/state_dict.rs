//! [`StateDict`]: the tensors of an upstream `state_dict` by name, read
//! from a file or collected from a model under upstream's names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use burn_store::{ModuleStore, SafetensorsStore};

use super::ImportError;
use super::names::{Slot, UpstreamParams};
use super::pt::{self, PtError};

/// The tensors of an upstream `state_dict`, by name, as read from a file.
///
/// ```
/// use ncps::import::StateDict;
///
/// let dict = StateDict::read("tests/fixtures/reference/cfc_default.safetensors")?
///     .strip_prefix("param.");
/// assert_eq!(dict.shape("rnn_cell.ff1.weight"), Some(&[8, 128][..]));
/// # Ok::<(), ncps::import::ImportError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    pub(super) tensors: BTreeMap<String, (Vec<usize>, TensorData)>,
}

impl StateDict {
    /// Reads a safetensors file (`.safetensors`) or a PyTorch pickle
    /// (`.pt`, `.pth`, `.bin`, or anything else) written by
    /// `torch.save(model.state_dict(), path)`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ImportError> {
        let path = path.as_ref();
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let failed = |message: String| ImportError::Read {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(failed("no such file".into()));
        }
        if is_safetensors {
            Self::from_store(&mut SafetensorsStore::from_file(path)).map_err(failed)
        } else {
            let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
            Self::read_pt(&bytes).map_err(|source| ImportError::Pt {
                path: path.to_path_buf(),
                source,
            })
        }
    }

    /// Reads safetensors bytes.
    pub fn from_safetensors_bytes(bytes: Vec<u8>) -> Result<Self, ImportError> {
        Self::from_store(&mut SafetensorsStore::from_bytes(Some(bytes))).map_err(|message| {
            ImportError::Read {
                path: PathBuf::from("<bytes>"),
                message,
            }
        })
    }

    /// Reads the bytes of a `.pt` file written by `torch.save(state_dict,
    /// path)` (the zip format of PyTorch 1.6 and later). Views
    /// (transposed, sliced, offset tensors, as upstream saves the wired
    /// CfC's masks) are read with their strides; every tensor keeps its
    /// element type until it is loaded into a model.
    pub fn from_pt_bytes(bytes: &[u8]) -> Result<Self, ImportError> {
        Self::read_pt(bytes).map_err(|source| ImportError::Pt {
            path: PathBuf::from("<bytes>"),
            source,
        })
    }

    fn read_pt(bytes: &[u8]) -> Result<Self, PtError> {
        let tensors = pt::read_pt(bytes)?
            .into_iter()
            .map(|t| (t.name, (t.data.shape.to_vec(), t.data)))
            .collect();
        Ok(Self { tensors })
    }

    fn from_store<S: ModuleStore>(store: &mut S) -> Result<Self, String> {
        let snapshots = store.get_all_snapshots().map_err(|e| e.to_string())?;
        let mut tensors = BTreeMap::new();
        for (name, snapshot) in snapshots {
            let data = snapshot
                .to_data()
                .map_err(|e| format!("tensor {name}: {e:?}"))?;
            tensors.insert(name.clone(), (snapshot.shape.to_vec(), data));
        }
        Ok(Self { tensors })
    }

    /// Keeps the tensors whose name starts with `prefix`, without it (the
    /// fixtures store parameters as `param.<name>`).
    pub fn strip_prefix(self, prefix: &str) -> Self {
        let tensors = self
            .tensors
            .into_iter()
            .filter_map(|(name, t)| name.strip_prefix(prefix).map(|n| (n.to_string(), t)))
            .collect();
        Self { tensors }
    }

    /// The tensors of a model under upstream's names (masks included, Linear
    /// weights in PyTorch's `(out, in)` layout): what upstream's
    /// `state_dict()` would hold.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use ncps::import::{LoadStateDict, StateDict};
    /// use ncps::rnn::{LTCConfig, Units};
    ///
    /// let device = Default::default();
    /// let a = LTCConfig::new(2, Units::from(4)).init::<NdArray>(&device)?;
    /// let dict = StateDict::from_model(&a);
    /// assert_eq!(dict.shape("rnn_cell.sensory_w"), Some(&[2, 4][..]));
    /// let b = LTCConfig::new(2, Units::from(4)).init::<NdArray>(&device)?.load_state_dict(&dict)?;
    /// assert_eq!(dict.values("rnn_cell.w"), StateDict::from_model(&b).values("rnn_cell.w"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_model<B: Backend, M: UpstreamParams<B> + Clone>(model: &M) -> Self {
        Self::collect(model, |slot| match slot {
            Slot::Vector(p) => Some(p.val().into_data()),
            Slot::Matrix(p) => Some(p.val().into_data()),
            Slot::LinearWeight(p) => Some(p.val().transpose().into_data()),
            Slot::Mask { mask, transposed } => {
                let mask: Tensor<B, 2> = (*mask).clone();
                Some(if *transposed { mask.transpose() } else { mask }.into_data())
            }
        })
    }

    /// The gradients of a model's trainable parameters under upstream's
    /// names, in upstream's layout (what `param.grad` holds in PyTorch after
    /// `loss.backward()`); parameters without a gradient are left out.
    pub fn gradients<B: AutodiffBackend, M: UpstreamParams<B> + Clone>(
        model: &M,
        grads: &B::Gradients,
    ) -> Self {
        Self::collect(model, |slot| match slot {
            Slot::Vector(p) => p.val().grad(grads).map(Tensor::into_data),
            Slot::Matrix(p) => p.val().grad(grads).map(Tensor::into_data),
            Slot::LinearWeight(p) => p.val().grad(grads).map(|g| g.transpose().into_data()),
            Slot::Mask { .. } => None,
        })
    }

    fn collect<B: Backend, M: UpstreamParams<B> + Clone>(
        model: &M,
        mut read: impl FnMut(&Slot<'_, B>) -> Option<TensorData>,
    ) -> Self {
        let mut model = model.clone();
        let mut slots = Vec::new();
        model.upstream_slots("", &mut slots);
        let tensors = slots
            .iter()
            .filter_map(|(name, slot)| {
                read(slot).map(|data| (name.clone(), (data.shape.to_vec(), data)))
            })
            .collect();
        Self { tensors }
    }

    /// Removes a tensor, returning its shape and values.
    pub fn remove(&mut self, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        self.tensors.remove(name).map(|(shape, data)| {
            let values = data.convert::<f32>().to_vec::<f32>();
            (shape, values.expect("converted to f32"))
        })
    }

    /// Adds (or replaces) a tensor, e.g. to rename a key of a model saved
    /// with another wrapper around the upstream module.
    ///
    /// # Panics
    /// When `values` does not hold `shape`'s element count.
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) {
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "values do not fill shape {shape:?}"
        );
        let data = TensorData::new(values, shape.clone());
        self.tensors.insert(name.into(), (shape, data));
    }

    /// The names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(shape, _)| shape.as_slice())
    }

    /// The values of a tensor (row-major, converted to `f32`), if present.
    pub fn values(&self, name: &str) -> Option<Vec<f32>> {
        self.tensors.get(name).map(|(_, data)| {
            let values = data.clone().convert::<f32>().to_vec::<f32>();
            values.expect("converted to f32")
        })
    }

    /// The element type of a tensor as stored in the file (or the model),
    /// if present. Loading converts it to the model's float type.
    pub fn dtype(&self, name: &str) -> Option<burn::tensor::DType> {
        self.tensors.get(name).map(|(_, data)| data.dtype)
    }
}
